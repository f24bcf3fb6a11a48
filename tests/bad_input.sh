#!/bin/sh
# Bad command-line values and bad data files, end to end, without the
# real data. It checks that:
# - every numeric option rejects the same malformed values (spaces, an
#   empty value, hex, inf, a fraction for an integer option) and values
#   out of range, with exit status 2 and one message form. A float option
#   also rejects a value that is not a normal float, such as 1e-40, and a
#   --model spec rejects a dropout rate that rounds to 1 as a float.
# - an invalid --model spec is a usage error too (status 2), and so is
#   --batch 1 or --train-limit 1 with a bn layer after a dense layer or
#   on a 1x1 map, whether the model comes from --model, --preset or
#   --load; after a convolution, bn trains on batches of one.
# - a directory or a symbolic link loop named like a data file is
#   reported as what it is, not as missing (status 1).
# - a gzip file cut off inside its header is reported as truncated, not
#   as empty (status 1).
# - --threads above the shards of a batch is lowered to one thread per
#   shard, with a note saying so.
# - exploring headless (--epochs 0) prints the test result and no
#   training header.
# - a --load file that is missing is reported with the fix (status 1).
#   One that contains another model than --model or --preset is a usage
#   error (status 2). A resumed run's header names the optimiser and
#   learning rate it took over.
# - a step schedule that would take the learning rate below FLT_MIN
#   before the last epoch is rejected with that epoch (status 1).
# - getopt's errors, empty paths and options that contradict each other
#   are usage errors (status 2) with a message in the usual form.
# - --save and --log reject a FIFO or a symbolic link, and any two of
#   --load, --save, --log and the data files that are the same file
#   (--load and --save excepted); a damaged --load fails before the data
#   is read, and a --load file that is a log or no checkpoint at all
#   is named as such, with how to make a checkpoint. --log also rejects a checkpoint or other binary file, which
#   appending would damage, and a text file whose header is not fmnist's.
# - a second run with the --save file of a running one is a usage error
#   naming the first run's pid, and the lock file goes at the end. A
#   FILE.lock that fmnist did not write is a usage error, never removed,
#   and so is a --save that names a lock file.
# - control characters, C1 controls included, in the names of --save,
#   --load, --log and --data files are escaped in the log and in the
#   lines on stderr and stdout, under LANG=C and in UTF-8.
set -u

fmnist=${FMNIST:-./fmnist}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_usage EXPECTED ARG...: fmnist ARG... exits 2, and the first line
# of its stderr is "fmnist: EXPECTED". A data directory that does not
# exist makes a value accepted by mistake end the run with status 1.
expect_usage() {
    expected=$1
    shift
    "$fmnist" --data "$tmp/none" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] || { fail "$*: status $rc, expected 2"; return; }
    first=$(head -n 1 "$tmp/err")
    [ "$first" = "fmnist: $expected" ] \
        || fail "$*: message '$first', expected 'fmnist: $expected'"
}

# ---------------------------------------------------------------- options
# Option, its range as the message gives it, and a valid value.
while read -r opt range good; do
    case $range in
    integer:*) kind="an integer" ;;
    zero:*) kind="0 or a number" ;;
    *) kind="a number" ;;
    esac
    range=$(echo "${range#*:}" | tr _ ' ')
    for bad in " $good" "$good " "" "0x1" "inf" "nan" "1 2" "--1"; do
        expect_usage "invalid value '$bad' for $opt: expected $kind from $range" \
            "$opt" "$bad"
    done
    [ "$kind" = "an integer" ] && expect_usage \
        "invalid value '1.5' for $opt: expected $kind from $range" "$opt" 1.5
    # A valid value passes, so the error comes from the option after it.
    expect_usage "invalid value '0' for --threads: expected an integer from 1 to 256" \
        "$opt" "$good" --threads 0
done <<'EOF'
--train-limit integer:1_to_2147483647 100
--epochs integer:0_to_100000 3
--batch integer:1_to_4096 16
--seed integer:0_to_9007199254740991 7
--threads integer:1_to_256 2
--val integer:0_to_2147483647 10
--shift integer:0_to_4 2
--lr-step integer:1_to_100000 5
--lr number:1.2e-38_to_10,_excluding_10 0.01
--lr-gamma number:1.2e-38_to_1 0.5
--weight-decay zero:1.2e-38_to_1,_excluding_1 .05
EOF

# Out of range, including values that only leave the range as a float.
expect_usage "invalid value '5' for --shift: expected an integer from 0 to 4" \
    --shift 5
expect_usage "invalid value '257' for --threads: expected an integer from 1 to 256" \
    --threads 257
expect_usage "invalid value '9007199254740992' for --seed: expected an integer from 0 to 9007199254740991" \
    --seed 9007199254740992
lr_range="a number from 1.2e-38 to 10, excluding 10"
expect_usage "invalid value '0' for --lr: expected $lr_range" --lr 0
expect_usage "invalid value '1e-50' for --lr: expected $lr_range" --lr 1e-50
expect_usage "invalid value '10' for --lr: expected $lr_range" --lr 10
expect_usage "invalid value '1e6' for --lr: expected $lr_range" --lr 1e6
# 1e-40 is subnormal as a float (below 1.18e-38) but normal as a double.
# 1.19e-38 is a normal float, but below the bound the message prints.
expect_usage "invalid value '1e-40' for --lr: expected $lr_range" --lr 1e-40
expect_usage "invalid value '1.19e-38' for --lr: expected $lr_range" \
    --lr 1.19e-38
expect_usage "invalid value '-1e-40' for --lr: expected $lr_range" --lr -1e-40
expect_usage "invalid value '1e-40' for --lr-gamma: expected a number from 1.2e-38 to 1" \
    --lr-gamma 1e-40
decay_range="0 or a number from 1.2e-38 to 1, excluding 1"
expect_usage "invalid value '1e-40' for --weight-decay: expected $decay_range" \
    --weight-decay 1e-40
expect_usage "invalid value '-1e-40' for --weight-decay: expected $decay_range" \
    --weight-decay -1e-40
# The bounds the messages print, and 0 for --weight-decay, are valid: the
# error comes from the option after them.
for valid in "--lr 1.2e-38" "--lr-gamma 1.2e-38" "--lr-gamma 1" \
             "--weight-decay 1.2e-38" "--weight-decay 0"; do
    # shellcheck disable=SC2086
    expect_usage "invalid value '0' for --threads: expected an integer from 1 to 256" \
        $valid --threads 0
done
expect_usage "invalid value '0.9999999999' for --weight-decay: expected $decay_range" \
    --weight-decay 0.9999999999
expect_usage "invalid value '1.5' for --lr-gamma: expected a number from 1.2e-38 to 1" \
    --lr-gamma 1.5
# 0.99999999999 is below 1 as a double, but 1 as a float.
expect_usage "invalid value 'dropout0.99999999999,dense10' for --model: token 1 \"dropout0.99999999999\": expected a drop probability in [0, 1)" \
    --model dropout0.99999999999,dense10
expect_usage "invalid value 'conv3x3x0' for --model: token 1 \"conv3x3x0\": expected a positive number of filters" \
    --model conv3x3x0
expect_usage "invalid value 'bogus' for --model: not a preset name (default, small, tf or best); as a spec, token 1 \"bogus\": expected a layer: convKxKxF, pool2, flatten, denseN, relu, dropoutP or bn" \
    --model bogus
expect_usage "invalid value 'bogus' for --preset: expected best" --preset bogus
expect_usage "invalid value '4097' for --batch: expected an integer from 1 to 4096" \
    --batch 4097

# A bn layer after a dense layer, or on a 1x1 map, normalises one value
# per channel and sample, so it cannot train on a single sample. Three
# poolings leave a 3x3 map, which a 3x3 convolution turns into 1x1 maps.
one_sample="normalises each value of a sample over the samples of a batch, and one sample has no variance"
expect_usage "invalid value '1' for --batch: token 5 \"bn\" of the model $one_sample; use --batch 2 or more, or no bn after a dense layer" \
    --model conv3x3x16,relu,pool2,dense64,bn,relu,dense10 --batch 1
expect_usage "invalid value '1' for --batch: token 10 \"bn\" of the model $one_sample; use --batch 2 or more, or no bn after a dense layer" \
    --preset best --batch 1
expect_usage "invalid value '1' for --train-limit: token 5 \"bn\" of the model $one_sample; use --train-limit 2 or more, or no bn on a 1x1 map" \
    --model pool2,pool2,pool2,conv3x3x8,bn,relu,dense10 --train-limit 1

# getopt's own errors, in the form of the other usage errors.
expect_usage "unknown option '--no-such-option'" --no-such-option
expect_usage "unknown option '-x'" -x
expect_usage "option '--save' requires a value" --save
expect_usage "option '-d' requires a value" -d
expect_usage "option '--flip' takes no value" --flip=1
expect_usage "unexpected argument 'extra'" --version extra
expect_usage "unexpected argument 'extra'" --help extra

# Empty paths.
expect_usage "invalid --load '': expected a checkpoint file name" --load ''
expect_usage "invalid --log '': expected a file name" --log ''
expect_usage "invalid --save '': expected a file name" --save ''
"$fmnist" --data '' >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "--data '': status $rc, expected 2"
grep -q "^fmnist: invalid --data '': expected a directory" "$tmp/err" \
    || fail "--data '': $(cat "$tmp/err")"

# A spec longer than a checkpoint can contain fails before training,
# not at the first save.
long_spec=relu
i=0
while [ "$i" -lt 1000 ]; do
    long_spec="$long_spec,relu"
    i=$((i + 1))
done
expect_usage "invalid --model: the spec is 5012 bytes, but a checkpoint holds at most 4096; give a shorter spec" \
    --model "$long_spec,dense10"

# Options that contradict each other.
expect_usage "--eval evaluates a saved model and cannot train or save: drop --save or --eval" \
    --load x.ckpt --eval --save y.ckpt
for opt in --flip "--shift 1" "--lr 0.1" "--optimizer sgd" \
           "--schedule cosine" "--weight-decay 0.1" "--val 1000" \
           "--train-limit 10" "--log x.csv"; do
    # shellcheck disable=SC2086
    expect_usage "--eval evaluates a saved model and cannot train or save: drop ${opt% *} or --eval" \
        --load x.ckpt --eval $opt
done
expect_usage "--epochs 0 only explores a model and trains nothing, so --save would never write: drop --save or give --epochs 1 or more" \
    --epochs 0 --save x.ckpt
expect_usage "--epochs 0 only explores a model and trains nothing, so --log would get no line: drop --log or give --epochs 1 or more" \
    --epochs 0 --log x.csv
expect_usage "--lr-step applies to the step schedule only: add --schedule step" \
    --lr-step 5
expect_usage "--lr-gamma applies to the step schedule only: add --schedule step" \
    --schedule cosine --lr-gamma 0.5
expect_usage "--decay-mode applies only with weight decay: add --weight-decay F" \
    --decay-mode l2
expect_usage "invalid value 'dense100000' for --model: token 1 \"dense100000\": expected denseN with N an integer from 1 to 65536, e.g. dense128" \
    --model dense100000
echo "options done"

# ---------------------------------------------------------------- data
# The search checks only that the four names exist, so most files can be
# empty. The test set has one black 28x28 image.
data=$tmp/data
mkdir "$data"
: >"$data/train-images-idx3-ubyte.gz"
: >"$data/train-labels-idx1-ubyte.gz"
{
    printf '\000\000\010\003\000\000\000\001\000\000\000\034\000\000\000\034'
    head -c 784 /dev/zero
} >"$data/t10k-images-idx3-ubyte"
printf '\000\000\010\001\000\000\000\001\000' >"$data/t10k-labels-idx1-ubyte"

run_data() {
    "$fmnist" --data "$data" --model dense10 --epochs 0 --headless "$@" \
        >"$tmp/out" 2>"$tmp/err"
}

run_data
rc=$?
[ "$rc" -eq 0 ] || fail "the test data does not load: status $rc: $(cat "$tmp/err")"

# A directory named like a data file.
rm "$data/train-images-idx3-ubyte.gz"
mkdir "$data/train-images-idx3-ubyte.gz"
run_data
rc=$?
[ "$rc" -eq 1 ] || fail "directory as data file: status $rc, expected 1"
grep -q "$data/train-images-idx3-ubyte.gz is a directory, expected a regular file" \
    "$tmp/err" || fail "directory as data file: $(cat "$tmp/err")"
grep -q "missing" "$tmp/err" \
    && fail "directory as data file reported as missing: $(cat "$tmp/err")"
rmdir "$data/train-images-idx3-ubyte.gz"
: >"$data/train-images-idx3-ubyte.gz"

# A symbolic link loop named like a data file.
rm "$data/train-labels-idx1-ubyte.gz"
ln -s train-labels-idx1-ubyte.gz "$data/train-labels-idx1-ubyte.gz"
run_data
rc=$?
[ "$rc" -eq 1 ] || fail "symbolic link loop: status $rc, expected 1"
grep -q "$data/train-labels-idx1-ubyte.gz is a symbolic link loop, expected a regular file" \
    "$tmp/err" || fail "symbolic link loop: $(cat "$tmp/err")"
rm "$data/train-labels-idx1-ubyte.gz"
: >"$data/train-labels-idx1-ubyte.gz"

# The first 20 bytes of a gzip file whose header contains the original
# file name (23 bytes with its terminating zero), so no data byte decodes.
labels=$data/t10k-labels-idx1-ubyte
gzip -c "$labels" | head -c 20 >"$labels.gz"
mv "$labels" "$tmp/labels"
run_data
rc=$?
[ "$rc" -eq 1 ] || fail "truncated gzip: status $rc, expected 1"
grep -q "$labels.gz: truncated: not a complete gzip stream" "$tmp/err" \
    || fail "truncated gzip: $(cat "$tmp/err")"
grep -q "empty" "$tmp/err" && fail "truncated gzip reported as empty"
rm "$labels.gz"
mv "$tmp/labels" "$labels"
echo "data files done"

# ---------------------------------------------------------------- threads
# A batch of 16 is 2 shards of 8 images.
run_data --batch 16 --threads 256
rc=$?
[ "$rc" -eq 0 ] || fail "--threads 256: status $rc: $(cat "$tmp/err")"
grep -q "^fmnist: using 2 threads, not 256: a batch of 16 splits into 2 shards" \
    "$tmp/err" || fail "--threads 256: no note on the thread count: $(cat "$tmp/err")"
run_data --batch 16 --threads 2
grep -q "using" "$tmp/err" && fail "--threads 2: note without a cap: $(cat "$tmp/err")"
run_data --batch 8 --threads 4
grep -q "^fmnist: using 1 thread, not 4: a batch of 8 splits into 1 shard of" \
    "$tmp/err" || fail "--batch 8 --threads 4: the note is not in the singular: $(cat "$tmp/err")"
echo "threads done"

# ---------------------------------------------------------------- explore
# Headless exploring prints the test result like --eval, and no training
# header.
run_data
[ "$(cat "$tmp/out")" = "test accuracy: 100.00%  test loss: 2.3026" ] \
    || fail "--epochs 0 headless: output '$(cat "$tmp/out")'"
grep -q "training\|batch" "$tmp/err" \
    && fail "--epochs 0 headless: a training header: $(cat "$tmp/err")"
grep -q "^fmnist: no --load, so this network is untrained$" "$tmp/err" \
    || fail "--epochs 0 headless without --load: no note: $(cat "$tmp/err")"

# ---------------------------------------------------------------- --load
"$fmnist" --data "$data" --load "$tmp/none.ckpt" --eval >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "missing --load file: status $rc, expected 1"
grep -qx "fmnist: --load $tmp/none.ckpt: cannot read: No such file or directory; give a checkpoint that --save or the s key wrote" \
    "$tmp/err" || fail "missing --load file: $(cat "$tmp/err")"

# Eight black training images make a checkpoint to load.
{
    printf '\000\000\010\003\000\000\000\010\000\000\000\034\000\000\000\034'
    head -c 6272 /dev/zero
} >"$data/train-images-idx3-ubyte"
printf '\000\000\010\001\000\000\000\010\000\001\002\003\004\005\006\007' \
    >"$data/train-labels-idx1-ubyte"
rm "$data/train-images-idx3-ubyte.gz" "$data/train-labels-idx1-ubyte.gz"
"$fmnist" --data "$data" --model dense10 --epochs 1 --batch 8 --headless \
    --optimizer sgd --lr 0.05 --save "$tmp/small.ckpt" >/dev/null 2>"$tmp/err" \
    || fail "training on 8 images failed: $(cat "$tmp/err")"

# With fewer training images than --batch, the threads stop at the
# shards of the whole training set: 8 images make one shard. A
# validation split of one image is named in the singular.
"$fmnist" --data "$data" --model dense10 --epochs 1 --batch 4096 \
    --threads 256 --val 1 --headless >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "--batch 4096 on 7 images: status $rc: $(cat "$tmp/err")"
grep -qx "fmnist: using 1 thread, not 256: a batch of 7 (every training image) splits into 1 shard of up to 8 images, one per thread" \
    "$tmp/err" || fail "--batch 4096 on 7 images: $(cat "$tmp/err")"
grep -q "on 1 thread\$" "$tmp/err" \
    || fail "--batch 4096 on 7 images: not trained on 1 thread: $(cat "$tmp/err")"
grep -q ", 1 validation image\$" "$tmp/err" \
    || fail "--val 1: not in the singular: $(cat "$tmp/err")"

# A resumed run names the optimiser and the rate it took over.
"$fmnist" --data "$data" --load "$tmp/small.ckpt" --epochs 1 --batch 8 \
    --headless >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "resumed run: status $rc: $(cat "$tmp/err")"
grep -qx "fmnist: batch 8, sgd, lr 0.05, constant schedule" "$tmp/err" \
    || fail "resumed run: header without the optimiser: $(cat "$tmp/err")"

# The step factor keeps the digits that tell it from 1, and one epoch
# is named in the singular.
for case in "1 0.9999999 every epoch" "3 0.5 every 3 epochs"; do
    set -- $case
    lr_step=$1
    gamma=$2
    shift 2
    "$fmnist" --data "$data" --model dense10 --epochs 1 --batch 8 --headless \
        --optimizer sgd --lr 0.05 --schedule step --lr-step "$lr_step" \
        --lr-gamma "$gamma" >/dev/null 2>"$tmp/err" \
        || fail "--lr-gamma $gamma: $(cat "$tmp/err")"
    grep -qx "fmnist: batch 8, sgd, lr 0.05, step schedule (x$gamma $*)" \
        "$tmp/err" || fail "--lr-gamma $gamma: $(cat "$tmp/err")"
done

# A step schedule that would take the rate below FLT_MIN, where an
# update changes no weight, is rejected with the first such epoch, in a
# new run and in a resumed one (which counts on from the checkpoint's
# epoch 1). With 1e-10, epoch 5 of a new run gets 1e-3 * 1e-40.
floor_fix="below the smallest normal float (1.18e-38), where updates no longer change the weights; give a larger --lr-gamma, --lr-step or --lr"
"$fmnist" --data "$data" --model dense10 --epochs 6 --batch 8 --headless \
    --schedule step --lr-step 1 --lr-gamma 1e-10 >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "step schedule below FLT_MIN: status $rc, expected 1"
[ "$(cat "$tmp/err")" = "fmnist: step schedule: the learning rate would fall to 9.95e-44 in epoch 5 (rate 0.001, times 1e-10 every epoch), $floor_fix, or --epochs 4 or fewer" ] \
    || fail "step schedule below FLT_MIN: $(cat "$tmp/err")"
"$fmnist" --data "$data" --model dense10 --epochs 4 --batch 8 --headless \
    --schedule step --lr-step 1 --lr-gamma 1e-10 >/dev/null 2>"$tmp/err" \
    || fail "step schedule that stays above FLT_MIN: $(cat "$tmp/err")"
"$fmnist" --data "$data" --load "$tmp/small.ckpt" --epochs 4 --batch 8 \
    --headless --schedule step --lr-step 2 --lr-gamma 1e-20 \
    >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "resumed step schedule below FLT_MIN: status $rc, expected 1"
[ "$(cat "$tmp/err")" = "fmnist: step schedule: the learning rate would fall to 5e-42 in epoch 5 (rate 0.05, times 1e-20 every 2 epochs), $floor_fix, or --epochs 3 or fewer" ] \
    || fail "resumed step schedule below FLT_MIN: $(cat "$tmp/err")"

# The model of a checkpoint is checked like --model: a bn layer after a
# dense layer cannot train on batches of one sample, one after a
# convolution can.
"$fmnist" --data "$data" --model dense16,bn,relu,dense10 --epochs 1 \
    --batch 8 --headless --save "$tmp/bn.ckpt" >/dev/null 2>"$tmp/err" \
    || fail "training a bn model on 8 images failed: $(cat "$tmp/err")"
expect_usage "invalid value '1' for --batch: token 2 \"bn\" of the model in $tmp/bn.ckpt $one_sample; use --batch 2 or more, or a new model with no bn after a dense layer" \
    --load "$tmp/bn.ckpt" --batch 1
"$fmnist" --data "$data" --model conv3x3x4,bn,relu,pool2,dense10 --epochs 1 \
    --batch 1 --headless >/dev/null 2>"$tmp/err" \
    || fail "bn after a convolution, --batch 1: $(cat "$tmp/err")"

# A training set of one image is a usage error (status 2) as well, with
# a usage message, whether --val or the data leaves it.
# expect_data_usage DIR EXPECTED ARG...: like expect_usage on the data
# in DIR, for one epoch.
expect_data_usage() {
    dir=$1
    expected=$2
    shift 2
    "$fmnist" --data "$dir" --epochs 1 --batch 8 --headless "$@" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] || { fail "$*: status $rc, expected 2: $(cat "$tmp/err")"; return; }
    first=$(head -n 1 "$tmp/err")
    [ "$first" = "fmnist: $expected" ] \
        || fail "$*: message '$first', expected 'fmnist: $expected'"
    sed -n 2p "$tmp/err" | grep -q "^Try 'fmnist --help'" \
        || fail "$*: no usage line: $(cat "$tmp/err")"
}
expect_data_usage "$data" "invalid value '7' for --val: it leaves 1 of the 8 training images to train on, but token 2 \"bn\" of the model $one_sample; use --val 6 or less, or no bn after a dense layer" \
    --model dense16,bn,relu,dense10 --val 7
expect_data_usage "$data" "invalid value '7' for --val: it leaves 1 of the 8 training images to train on, but token 2 \"bn\" of the model in $tmp/bn.ckpt $one_sample; use --val 6 or less, or a new model with no bn after a dense layer" \
    --load "$tmp/bn.ckpt" --val 7
# Makes data directory $1 with the test files of $data and $2 (below 256)
# blank training images, all labelled 0.
blank_train_set() {
    mkdir "$1"
    cp "$data"/t10k-* "$1"
    n=$(printf '\\%03o' "$2")
    {
        printf "\000\000\010\003\000\000\000$n\000\000\000\034\000\000\000\034"
        head -c $(($2 * 784)) /dev/zero
    } >"$1/train-images-idx3-ubyte"
    {
        printf "\000\000\010\001\000\000\000$n"
        head -c "$2" /dev/zero
    } >"$1/train-labels-idx1-ubyte"
}
one=$tmp/one
blank_train_set "$one" 1
expect_data_usage "$one" "the training set in $one has 1 image, but token 3 \"bn\" of the model $one_sample; give --data a directory with 2 or more training images, or use no bn on a 1x1 map" \
    --model pool2,conv14x14x4,bn,relu,dense10
# With two images, --val 1 leaves one: the fix is to drop --val.
two=$tmp/two
blank_train_set "$two" 2
expect_data_usage "$two" "invalid value '1' for --val: it leaves 1 of the 2 training images to train on, but token 2 \"bn\" of the model $one_sample; drop --val, or use no bn after a dense layer" \
    --model dense16,bn,relu,dense10 --val 1
# Without a bn over single values, one image trains.
"$fmnist" --data "$one" --model dense16,relu,dense10 --epochs 1 --headless \
    >/dev/null 2>"$tmp/err" \
    || fail "training a model without bn on 1 image failed: $(cat "$tmp/err")"

# Another --model than the checkpoint's is a usage error with the fix,
# as another --preset is, before the data loads: expect_usage gives a
# data directory that does not exist. A run that trains may drop either
# option, and one that evaluates or explores needs the checkpoint.
expect_usage "--load $tmp/small.ckpt contains model dense10, but --model requests model dense20,dense10; drop --model to continue the checkpoint's run, or drop --load to train --model afresh" \
    --load "$tmp/small.ckpt" --model dense20,dense10
expect_usage "--load $tmp/small.ckpt contains model dense10, but --model requests model dense20,dense10; drop --model to evaluate the checkpoint's model" \
    --load "$tmp/small.ckpt" --model dense20,dense10 --eval
# A preset name is given back as typed, before its layers.
small=conv3x3x32,relu,pool2,conv3x3x64,relu,pool2,dense128,relu,dense10
expect_usage "--load $tmp/small.ckpt contains model dense10, but --model small requests model $small; drop --model to evaluate the checkpoint's model" \
    --load "$tmp/small.ckpt" --model small --epochs 0 --headless

# A --preset whose network differs from the checkpoint's names the preset,
# since no --model was given.
best=conv3x3x32:same,bn,relu,pool2,conv3x3x64:same,bn,relu,pool2,dense256,bn,relu,dropout0.3,dense10
expect_usage "--load $tmp/small.ckpt contains model dense10, but --preset best trains model $best; drop --preset to continue the checkpoint's run, or drop --load to start the preset afresh" \
    --load "$tmp/small.ckpt" --preset best
expect_usage "--load $tmp/small.ckpt contains model dense10, but --preset best requests model $best; drop --preset to evaluate the checkpoint's model" \
    --load "$tmp/small.ckpt" --preset best --eval
echo "explore and load done"

# ---------------------------------------------------------------- paths
# expect_path_error STATUS EXPECTED ARG...: like expect_usage with the
# test data, for a given status.
expect_path_error() {
    status=$1
    expected=$2
    shift 2
    "$fmnist" --data "$data" --model dense10 --batch 8 --headless "$@" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq "$status" ] || { fail "$*: status $rc, expected $status: $(cat "$tmp/err")"; return; }
    first=$(head -n 1 "$tmp/err")
    [ "$first" = "fmnist: $expected" ] \
        || fail "$*: message '$first', expected 'fmnist: $expected'"
}

# --save and --log never replace or open what is not a regular file.
mkfifo "$tmp/fifo"
echo old >"$tmp/target.ckpt"
ln -s target.ckpt "$tmp/link.ckpt"
expect_path_error 2 "--save $tmp/fifo is a FIFO, not a regular file, and a save would replace it; give the path of a regular file or a new one" \
    --save "$tmp/fifo" --epochs 1
[ -p "$tmp/fifo" ] || fail "--save FIFO: the FIFO was replaced"
expect_path_error 2 "--save $tmp/link.ckpt is a symbolic link, not a regular file, and a save would replace it; give the path of a regular file or a new one, such as the link's target" \
    --save "$tmp/link.ckpt" --epochs 1
[ -L "$tmp/link.ckpt" ] || fail "--save link: the link was replaced"
[ "$(cat "$tmp/target.ckpt")" = old ] || fail "--save link: the target was written"
# A FIFO without a reader would block the open of --log forever, and
# one without a writer the open of --load.
expect_path_error 2 "--log $tmp/fifo is a FIFO, not a regular file; give the name of a regular file or a new one" \
    --log "$tmp/fifo" --epochs 1
expect_path_error 2 "--load $tmp/fifo is a FIFO, not a regular file; give a checkpoint that --save or the s key wrote" \
    --load "$tmp/fifo" --eval
expect_path_error 2 "cannot write checkpoints to $tmp/none/x.ckpt: directory $tmp/none: No such file or directory; give a path in a writable directory" \
    --save "$tmp/none/x.ckpt" --epochs 1

# A --save name with no room for the temporary file's suffix fails at
# the start, not at every save.
name_max=$(getconf NAME_MAX "$tmp" 2>/dev/null)
if [ -n "$name_max" ] && [ "$name_max" != undefined ]; then
    long_name=$(printf "%0${name_max}d" 0)
    expect_path_error 2 "--save file name is $name_max bytes, but saves write it with 11 more and this directory allows $name_max; give a name of at most $((name_max - 11)) bytes" \
        --save "$tmp/$long_name" --epochs 1
fi

# Two options naming the same file, also through a hard link.
cp "$tmp/small.ckpt" "$tmp/keep.ckpt"
ln "$tmp/small.ckpt" "$tmp/hard.ckpt"
expect_path_error 2 "--load $tmp/small.ckpt and --log $tmp/hard.ckpt are the same file; give --log another name" \
    --load "$tmp/small.ckpt" --log "$tmp/hard.ckpt" --epochs 1
cmp -s "$tmp/small.ckpt" "$tmp/keep.ckpt" || fail "--log over --load: the checkpoint changed"
expect_path_error 2 "--save $tmp/small.ckpt and --log $tmp/small.ckpt are the same file; give --log another name" \
    --save "$tmp/small.ckpt" --log "$tmp/small.ckpt" --epochs 1
expect_path_error 2 "--save $data/t10k-labels-idx1-ubyte and data file $data/t10k-labels-idx1-ubyte are the same file; give --save another name" \
    --save "$data/t10k-labels-idx1-ubyte" --epochs 1
# A --save that would replace another run's checkpoint is rejected.
expect_path_error 2 "--save $tmp/keep.ckpt contains a checkpoint (model dense10, 1 epoch trained), which this run would replace; give a new file name, --load it to continue that run, or remove it first" \
    --save "$tmp/keep.ckpt" --epochs 1
cmp -s "$tmp/small.ckpt" "$tmp/keep.ckpt" || fail "--save over a checkpoint: it changed"
# So is one that starts like a checkpoint but does not load: trailing
# bytes, a newer format version or a damaged body. Each stays as it was.
size=$(wc -c <"$tmp/keep.ckpt")
{ cat "$tmp/keep.ckpt"; echo extra; } >"$tmp/trailing.ckpt"
{ head -c 8 "$tmp/keep.ckpt"; printf '\003\000\000\000'; tail -c +13 "$tmp/keep.ckpt"; } \
    >"$tmp/newer.ckpt"
{ head -c 100 "$tmp/keep.ckpt"; printf 'XXXX'; tail -c +105 "$tmp/keep.ckpt"; } \
    >"$tmp/damaged.ckpt"
rejected="starts like a checkpoint but fails the checks that --load runs"
for name in trailing newer damaged; do
    cp "$tmp/$name.ckpt" "$tmp/$name.keep"
done
expect_path_error 2 "--save $tmp/trailing.ckpt $rejected ($((size + 6)) bytes, but its header describes $size), and this run would replace it; give --save a new file name, or remove $tmp/trailing.ckpt first" \
    --save "$tmp/trailing.ckpt" --epochs 1
expect_path_error 2 "--save $tmp/newer.ckpt $rejected (checkpoint format version 3, but this program reads version 2), and this run would replace it; give --save a new file name, or remove $tmp/newer.ckpt first" \
    --save "$tmp/newer.ckpt" --epochs 1
"$fmnist" --data "$data" --model dense10 --batch 8 --headless \
    --save "$tmp/damaged.ckpt" --epochs 1 >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "--save over a damaged checkpoint: status $rc, expected 2"
grep -qx "fmnist: --save $tmp/damaged.ckpt $rejected (corrupted: CRC-32 mismatch (stored [0-9a-f]*, computed [0-9a-f]*)), and this run would replace it; give --save a new file name, or remove $tmp/damaged.ckpt first" \
    "$tmp/err" || fail "--save over a damaged checkpoint: $(cat "$tmp/err")"
for name in trailing newer damaged; do
    cmp -s "$tmp/$name.ckpt" "$tmp/$name.keep" \
        || fail "--save over an unreadable checkpoint ($name): it changed"
done
# --log typed for --load, and a binary --log: the file stays as it was.
expect_path_error 2 "--log $tmp/keep.ckpt is an fmnist checkpoint, and appending the log would damage it; give --log a new file name (or did you mean --load $tmp/keep.ckpt?)" \
    --log "$tmp/keep.ckpt" --epochs 1
cmp -s "$tmp/small.ckpt" "$tmp/keep.ckpt" || fail "--log over a checkpoint: it changed"
printf 'epoch,\033[0m\n' >"$tmp/escape.csv"
cp "$tmp/escape.csv" "$tmp/escape.keep"
expect_path_error 2 "--log $tmp/escape.csv is not a text file (the byte at offset 6 is 0x1b), and appending the log would damage it; give --log a new file name or a log that fmnist wrote" \
    --log "$tmp/escape.csv" --epochs 1
cmp -s "$tmp/escape.csv" "$tmp/escape.keep" || fail "--log over a binary file: it changed"
# A text file with another header, also after comments and blank lines
# and with a header cut to its first 120 bytes in the message: the file
# stays as it was. The message shows the first line that is neither
# blank nor a comment, and suggests removing only a file whose header
# starts like fmnist's.
printf 'id,name,price\n1,shirt,20\n' >"$tmp/other.csv"
printf '# prices\r\nid,name,price\r\n' >"$tmp/notes.csv"
printf '# Title\n\nSome text.\n' >"$tmp/readme.md"
long_header=$(awk 'BEGIN { for (i = 1; i <= 30; i++) printf "column%03d,", i }')
echo "$long_header" >"$tmp/wide.csv"
echo >"$tmp/blank.csv"
printf 'epoch,train_loss,acc\n1,0.5,0.8\n' >"$tmp/older.csv"
for name in other.csv notes.csv readme.md wide.csv blank.csv older.csv; do
    cp "$tmp/$name" "$tmp/$name.keep"
done
foreign="expected 'epoch,train_loss,...'; give --log another file name"
nonblank="its first line that is neither blank nor a # comment is"
expect_path_error 2 "--log $tmp/other.csv is not an fmnist log: $nonblank 'id,name,price', $foreign" \
    --log "$tmp/other.csv" --epochs 1
expect_path_error 2 "--log $tmp/notes.csv is not an fmnist log: $nonblank 'id,name,price', $foreign" \
    --log "$tmp/notes.csv" --epochs 1
expect_path_error 2 "--log $tmp/readme.md is not an fmnist log: $nonblank 'Some text.', $foreign" \
    --log "$tmp/readme.md" --epochs 1
expect_path_error 2 "--log $tmp/wide.csv is not an fmnist log: $nonblank '$(echo "$long_header" | cut -c 1-120)...', $foreign" \
    --log "$tmp/wide.csv" --epochs 1
expect_path_error 2 "--log $tmp/blank.csv is not an fmnist log: it has blank lines where the header 'epoch,train_loss,...' should be; give --log another file name" \
    --log "$tmp/blank.csv" --epochs 1
expect_path_error 2 "--log $tmp/older.csv has the header 'epoch,train_loss,acc', not the columns of this fmnist's log, 'epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec,val_loss,val_acc,lr'; give --log a new file name, or remove $tmp/older.csv first" \
    --log "$tmp/older.csv" --epochs 1
for name in other.csv notes.csv readme.md wide.csv blank.csv older.csv; do
    cmp -s "$tmp/$name" "$tmp/$name.keep" \
        || fail "--log over $name with another header: it changed"
done
# An empty file, a file of comments and fmnist's logs of both widths,
# one with a CRLF header, are valid logs and get the epoch line.
: >"$tmp/empty.csv"
printf '# notes\n' >"$tmp/comments.csv"
printf 'epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec,val_loss,val_acc,lr\r\n' \
    >"$tmp/ten.csv"
printf 'epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec\n' \
    >"$tmp/seven.csv"
for name in empty comments ten seven; do
    "$fmnist" --data "$data" --model dense10 --batch 8 --headless --epochs 1 \
        --log "$tmp/$name.csv" >/dev/null 2>"$tmp/err" \
        || fail "--log $name.csv: $(cat "$tmp/err")"
    [ "$(grep -c '^1,' "$tmp/$name.csv")" -eq 1 ] \
        || fail "--log $name.csv: no epoch line: $(cat "$tmp/$name.csv")"
done
# The line that starts a run in a log with lines names the model spec.
grep -Eqx "# fmnist: new run at [0-9-]+ [0-9:]+ UTC, model dense10" \
    "$tmp/ten.csv" || fail "--log ten.csv: the new run's line: $(cat "$tmp/ten.csv")"
# A write to --log that fails after the start (here past the file-size
# limit, in the middle of the first epoch line) is reported once, the
# run trains to its end, and it exits 1, because the log is incomplete.
# The log is padded so that stderr stays below the limit.
if command -v prlimit >/dev/null 2>&1; then
    {
        echo "epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec,val_loss,val_acc,lr"
        i=0
        while [ "$i" -lt 60 ]; do
            echo "# padding, so that the limit leaves room for stderr"
            i=$((i + 1))
        done
    } >"$tmp/full.csv"
    # The run's first line, "# fmnist: new run at DATE TIME UTC, model
    # dense10", is 60 bytes, and 20 more bytes cut the first epoch line.
    limit=$(($(wc -c <"$tmp/full.csv") + 60 + 20))
    prlimit --fsize="$limit" "$fmnist" --data "$data" --model dense10 \
        --batch 8 --headless --epochs 3 --log "$tmp/full.csv" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 1 ] || fail "--log write failure: status $rc, expected 1"
    grep -q "^epoch 3/3 " "$tmp/out" \
        || fail "--log write failure: training stopped: $(cat "$tmp/out")"
    [ "$(grep -c "writing --log" "$tmp/err")" -eq 1 ] \
        || fail "--log write failure: not reported once: $(cat "$tmp/err")"
    grep -qx "fmnist: writing --log $tmp/full.csv failed: File too large; training goes on, but the log gets no more lines" \
        "$tmp/err" || fail "--log write failure: $(cat "$tmp/err")"
    [ "$(tail -n 1 "$tmp/err")" = "fmnist: --log $tmp/full.csv is incomplete: a write failed (File too large)" ] \
        || fail "--log write failure: the end does not say so: $(tail -n 1 "$tmp/err")"
    [ "$(wc -c <"$tmp/full.csv")" -eq "$limit" ] \
        || fail "--log write failure: the log is not cut at the limit"
fi
# Control characters in --load and --save names are escaped in log
# lines, so that a newline cannot start a line of its own there. The
# save fails past the file-size limit, which the log stays below.
nl='
'
cp "$tmp/small.ckpt" "$tmp/new${nl}1,fake.ckpt"
cp "$tmp/ten.csv" "$tmp/names.csv"
"$fmnist" --data "$data" --batch 8 --headless --epochs 1 \
    --load "$tmp/new${nl}1,fake.ckpt" --log "$tmp/names.csv" \
    >/dev/null 2>"$tmp/err" || fail "--load with a newline: $(cat "$tmp/err")"
grep -Eqx "# fmnist: run resumed from $tmp/new\\\\n1,fake.ckpt at [0-9-]+ [0-9:]+ UTC, model dense10" \
    "$tmp/names.csv" || fail "--load with a newline: the log got $(cat "$tmp/names.csv")"
if command -v prlimit >/dev/null 2>&1; then
    prlimit --fsize=20000 "$fmnist" --data "$data" --model dense10 --batch 8 \
        --headless --epochs 1 --save "$tmp/bad${nl}2,fake.ckpt" \
        --log "$tmp/names.csv" >/dev/null 2>"$tmp/err"
    grep -Eqx "# fmnist: checkpoint not saved: $tmp/bad\\\\n2,fake.ckpt: .*File too large" \
        "$tmp/names.csv" || fail "--save with a newline: the log got $(cat "$tmp/names.csv")"
fi
grep -q "^[12],fake" "$tmp/names.csv" \
    && fail "a name with a newline made a CSV line: $(cat "$tmp/names.csv")"
# Control characters in names are escaped in stderr and stdout lines as
# well, C1 controls included, in both locales, so that a name cannot send
# a control sequence to the terminal. Written raw, ESC [31m turned the
# rest of the terminal red, and 0x9b is CSI on some terminals.
# no_raw_esc LABEL: the last run wrote no ESC and no 0x9b byte.
no_raw_esc() {
    cat "$tmp/out" "$tmp/err" | LC_ALL=C grep -q "$(printf '[\033\233]')" \
        && fail "$1: a control character in the name was written raw"
}
esc=$(printf 'e\033[31m\302\233')
shown='e\x1b[31m\xc2\x9b'
for locale in C C.UTF-8; do
    LC_ALL=$locale "$fmnist" --data "$data" --model dense10 --batch 8 \
        --headless --epochs 1 --save "$tmp/$esc.ckpt" \
        --log "$tmp/$esc.csv" >"$tmp/out" 2>"$tmp/err" \
        || fail "$locale: --save with ESC: $(cat "$tmp/err")"
    grep -Fqx "fmnist: checkpoint $tmp/$shown.ckpt after each epoch" \
        "$tmp/err" || fail "$locale: --save with ESC: $(cat "$tmp/err")"
    no_raw_esc "$locale: --save with ESC"
    LC_ALL=$locale "$fmnist" --data "$data" --eval \
        --load "$tmp/missing$esc.ckpt" >"$tmp/out" 2>"$tmp/err"
    grep -Fq "fmnist: --load $tmp/missing$shown.ckpt: cannot read: " \
        "$tmp/err" || fail "$locale: --load with ESC: $(cat "$tmp/err")"
    no_raw_esc "$locale: --load with ESC"
    LC_ALL=$locale "$fmnist" --data "$data" --epochs 1 \
        --save "$tmp/$esc.ckpt" >"$tmp/out" 2>"$tmp/err"
    grep -Fq "fmnist: --save $tmp/$shown.ckpt contains a checkpoint" \
        "$tmp/err" || fail "$locale: usage error with ESC: $(cat "$tmp/err")"
    no_raw_esc "$locale: usage error with ESC"
    LC_ALL=$locale "$fmnist" --data "$tmp/none$esc" --epochs 1 \
        >"$tmp/out" 2>"$tmp/err"
    grep -Fq "$tmp/none$shown" "$tmp/err" \
        || fail "$locale: --data with ESC: $(cat "$tmp/err")"
    no_raw_esc "$locale: --data with ESC"
    rm -f "$tmp/$esc.ckpt" "$tmp/$esc.csv"
done

# --load and --save may name the same file; --seed then only warns.
expect_path_error 0 "warning: --load $tmp/small.ckpt continues the random state of its run, so --seed has no effect; drop --seed" \
    --load "$tmp/small.ckpt" --save "$tmp/small.ckpt" --seed 3 --epochs 1
[ "$(grep -c "warning: .*--seed" "$tmp/err")" -eq 1 ] \
    || fail "--seed with --load: not warned once: $(cat "$tmp/err")"

# A bad checkpoint fails before the data is read: the data directory
# does not exist here.
head -c 100 "$tmp/small.ckpt" >"$tmp/short.ckpt"
"$fmnist" --data "$tmp/none" --load "$tmp/short.ckpt" --eval >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "truncated --load: status $rc, expected 1"
grep -q "^fmnist: --load $tmp/short.ckpt: truncated: ends after 100 of [0-9]* bytes; .*use an earlier checkpoint$" \
    "$tmp/err" || fail "truncated --load: $(cat "$tmp/err")"

# A --load file that is no checkpoint at all: a log that --log wrote,
# another file and an empty one. The message names --load and how to
# make a checkpoint.
"$fmnist" --data "$data" --model dense10 --epochs 1 --batch 8 --headless \
    --log "$tmp/run.csv" >/dev/null 2>"$tmp/err" \
    || fail "training with --log failed: $(cat "$tmp/err")"
printf 'hello world\n' >"$tmp/hello.txt"
: >"$tmp/empty.ckpt"
make_one="a checkpoint is the binary file that --save FILE or the s key writes, as after 'fmnist --epochs 1 --save model.ckpt'; give that file to --load"
for case in "run.csv:is a CSV log that --log wrote, not a checkpoint" \
            "hello.txt:is not an fmnist checkpoint: it starts with bytes 68656c6c6f20776f, expected \"FMNISTCK\"" \
            "empty.ckpt:is an empty file, not a checkpoint"; do
    name=${case%%:*}
    "$fmnist" --data "$tmp/none" --load "$tmp/$name" --eval >/dev/null 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 1 ] || fail "--load $name: status $rc, expected 1"
    [ "$(cat "$tmp/err")" = "fmnist: --load $tmp/$name ${case#*:}; $make_one" ] \
        || fail "--load $name: $(cat "$tmp/err")"
done
# Two runs with the same --save file: the second exits with status 2
# and the first one's pid while the first holds FILE.lock, so it cannot
# replace the first run's checkpoints. The first run's first save shows
# that it holds the lock.
"$fmnist" --data "$data" --model dense10 --batch 8 --headless \
    --epochs 100000 --save "$tmp/busy.ckpt" >/dev/null 2>"$tmp/busy.err" &
busy_pid=$!
tries=0
while [ ! -f "$tmp/busy.ckpt" ] && [ "$tries" -lt 100 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
[ -f "$tmp/busy.ckpt" ] || fail "--save lock: the first run saved nothing: $(cat "$tmp/busy.err")"
expect_path_error 2 "--save $tmp/busy.ckpt is in use: another fmnist (pid $busy_pid) saves to it and holds $tmp/busy.ckpt.lock; give this run another --save file, or start it after pid $busy_pid ends" \
    --epochs 1 --save "$tmp/busy.ckpt"
# Nor can its lock file be another run's --save, which would rename a
# checkpoint over the live lock; a left-behind lock file is rejected too.
expect_path_error 2 "--save $tmp/busy.ckpt.lock is the lock file of fmnist pid $busy_pid, which saves to $tmp/busy.ckpt; give another --save name" \
    --epochs 1 --save "$tmp/busy.ckpt.lock"
[ "$(cat "$tmp/busy.ckpt.lock")" = "fmnist --save lock" ] \
    || fail "--save over a live lock file: it changed"
kill -TERM "$busy_pid"
wait "$busy_pid"
rc=$?
[ "$rc" -eq 143 ] || fail "--save lock: the first run ended with status $rc, expected 143"
[ ! -e "$tmp/busy.ckpt.lock" ] || fail "--save lock: the lock file is left after the run"
"$fmnist" --data "$data" --load "$tmp/busy.ckpt" --eval >/dev/null 2>"$tmp/err" \
    || fail "--save lock: the first run's checkpoint does not load: $(cat "$tmp/err")"
# A lock file that a killed run left behind is not locked, so the next
# run takes it over and removes it at its end. So is an empty one, which
# a run leaves when it dies before writing the lock file's line.
for contents in 'fmnist --save lock' ''; do
    if [ -n "$contents" ]; then
        echo "$contents" >"$tmp/stale.ckpt.lock"
    else
        : >"$tmp/stale.ckpt.lock"
    fi
    "$fmnist" --data "$data" --model dense10 --batch 8 --headless --epochs 1 \
        --save "$tmp/stale.ckpt" >/dev/null 2>"$tmp/err" \
        || fail "--save with a stale lock file '$contents': $(cat "$tmp/err")"
    [ ! -e "$tmp/stale.ckpt.lock" ] \
        || fail "--save with a stale lock file '$contents': it is left"
    rm -f "$tmp/stale.ckpt"
done
echo 'fmnist --save lock' >"$tmp/left.ckpt.lock"
expect_path_error 2 "--save $tmp/left.ckpt.lock is the lock file that a run saving to $tmp/left.ckpt left behind; give another --save name, or remove $tmp/left.ckpt.lock if no fmnist saves to $tmp/left.ckpt" \
    --epochs 1 --save "$tmp/left.ckpt.lock"
[ "$(cat "$tmp/left.ckpt.lock")" = "fmnist --save lock" ] \
    || fail "--save over a stale lock file: it changed"
# A new --save name ending in .lock would become the lock file of a run
# saving to the name without it, and that run would take it over.
expect_path_error 2 "--save $tmp/new.ckpt.lock ends in .lock, which names the lock file of a run saving to $tmp/new.ckpt; give a name that does not end in .lock" \
    --epochs 1 --save "$tmp/new.ckpt.lock"
[ ! -e "$tmp/new.ckpt.lock" ] || fail "--save new.ckpt.lock: it saved"
# FILE.lock that fmnist did not create is neither taken over nor removed:
# other contents, a directory, a symbolic link (even to a lock file), a
# FIFO and a file with a second name. Each is a usage error, and the file
# stays as it was.
not_lock="is not an fmnist lock file"
printf 'my notes\n' >"$tmp/notes.ckpt.lock"
printf 'fmnist --save lock\nmore\n' >"$tmp/longer.ckpt.lock"
mkdir "$tmp/dir.ckpt.lock"
echo 'fmnist --save lock' >"$tmp/real.lock"
ln -s real.lock "$tmp/symlink.ckpt.lock"
mkfifo "$tmp/fifo.ckpt.lock"
# An empty file with a second name would get the lock line under both.
: >"$tmp/keep-empty"
ln "$tmp/keep-empty" "$tmp/linked.ckpt.lock"
for case in "notes:(9 bytes)" "longer:(24 bytes)" "dir:(it is a directory)" \
            "symlink:(it is a symbolic link)" "fifo:(it is a FIFO)" \
            "linked:(it has 2 names)"; do
    name=${case%%:*}
    expect_path_error 2 "--save $tmp/$name.ckpt: $tmp/$name.ckpt.lock exists and $not_lock ${case#*:}; move it or give another --save name" \
        --epochs 1 --save "$tmp/$name.ckpt"
    [ ! -e "$tmp/$name.ckpt" ] || fail "--save $name.ckpt over a foreign lock file: it saved"
done
[ "$(cat "$tmp/notes.ckpt.lock")" = "my notes" ] && [ ! -s "$tmp/keep-empty" ] \
    || fail "--save with a foreign lock file: the file changed"
[ -d "$tmp/dir.ckpt.lock" ] && [ -L "$tmp/symlink.ckpt.lock" ] \
    && [ -p "$tmp/fifo.ckpt.lock" ] \
    || fail "--save with a foreign lock file: a file was removed"
echo "paths done"

[ "$failures" -eq 0 ] || exit 1
echo "ok"
