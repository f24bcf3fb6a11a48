#!/bin/sh
# End to end on the real data: a short headless run on 10,000 training
# images must reach the accuracy floor below, write the CSV log and a
# checkpoint, and the checkpoint must evaluate to the logged accuracy and
# resume. Runs that diverge must keep no checkpoint, a trained model
# with huge weights must load, a run stopped by SIGSTOP must leave the
# stop out of its logged training time, and one interrupted while its
# data loads must not train. Skipped (exit 77) when the
# data package is not installed.
set -u

data=/usr/share/datasets/fashion-mnist
floor=0.75   # one epoch of the default model on 10,000 images reaches 0.81 to 0.82
fmnist=${FMNIST:-./fmnist}

if [ ! -f "$data/t10k-labels-idx1-ubyte.gz" ]; then
    echo "skip: $data not found (apt-get install dataset-fashion-mnist)"
    exit 77
fi
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

# Train one epoch, logging and saving.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 10000 \
    --log "$tmp/log.csv" --save "$tmp/model.ckpt" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
[ "$rc" -eq 0 ] || fail "training exited with status $rc"
grep -q '^epoch 1/1 ' "$tmp/out" || fail "no per-epoch line on stdout"
grep -Eq '^epoch 1/1 .*  lr [0-9.e-]+  elapsed [0-9]+\.[0-9]s  [0-9]+ img/s$' \
    "$tmp/out" || fail "epoch line without its elapsed time: $(cat "$tmp/out")"

header=$(head -n 1 "$tmp/log.csv")
[ "$header" = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec,val_loss,val_acc,lr" ] \
    || fail "unexpected CSV header: $header"
# Without --val the validation columns are empty, and lr is Adam's default.
[ "$(sed -n 2p "$tmp/log.csv" | cut -d, -f8-)" = ",,0.001" ] \
    || fail "unexpected validation and lr columns: $(sed -n 2p "$tmp/log.csv")"
[ "$(wc -l <"$tmp/log.csv")" -eq 2 ] || fail "CSV log should have 2 lines"
acc=$(sed -n 2p "$tmp/log.csv" | cut -d, -f5)
awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a >= f && a <= 1) }' \
    || fail "test accuracy $acc is below the floor $floor"
echo "test accuracy after one epoch on 10000 images: $acc (floor $floor)"

# The saved model evaluates to the logged accuracy. The log has the
# fraction with six decimals and --eval the percentage with two, and with
# 10,000 test images both are exact.
"$fmnist" --data "$data" --load "$tmp/model.ckpt" --eval >"$tmp/eval" 2>&1 \
    || { cat "$tmp/eval"; fail "--eval exited with an error"; }
cat "$tmp/eval"
eval_acc=$(sed -n 's/^test accuracy: \([0-9]*\.[0-9][0-9]\)%  test loss: [0-9]*\.[0-9]\{4\}$/\1/p' \
    "$tmp/eval")
[ -n "$eval_acc" ] || fail "--eval printed no 'test accuracy: NN.NN%  test loss: N.NNNN' line"
awk -v a="$acc" -v b="$eval_acc" 'BEGIN { d = 100 * a - b; exit !(d < 1e-3 && d > -1e-3) }' \
    || fail "--eval accuracy '$eval_acc%' differs from the logged $acc"
grep -q '^class  *precision  *recall  *F1  *support$' "$tmp/eval" \
    || fail "--eval printed no per-class header with F1"
# Every class line ends in three percentages with one decimal and the
# support, also for the class name with a space.
for class in Shirt 'Ankle boot'; do
    grep -Eq "^$class +[0-9]{1,3}\.[0-9] +[0-9]{1,3}\.[0-9] +[0-9]{1,3}\.[0-9] +1000\$" \
        "$tmp/eval" || fail "--eval printed no per-class line for $class in percent"
done

# Resuming trains epoch 2 and appends to the same log.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 10000 \
    --load "$tmp/model.ckpt" --log "$tmp/log.csv" >"$tmp/out2" 2>&1 \
    || { cat "$tmp/out2"; fail "resuming exited with an error"; }
grep -q '^epoch 2/2 ' "$tmp/out2" || { cat "$tmp/out2"; fail "resume did not run epoch 2"; }
[ "$(grep -c '^[0-9]' "$tmp/log.csv")" -eq 2 ] \
    || fail "resume did not append one CSV line"
spec='conv3x3x32:same,relu,pool2,conv3x3x64:same,relu,pool2,dense128,relu,dropout0.5,dense10'
grep -Eqx "# fmnist: run resumed from $tmp/model.ckpt at [0-9-]+ [0-9:]+ UTC, model $spec" \
    "$tmp/log.csv" || fail "the log does not mark where the resumed run starts"

# The training options: a validation split is reported on the epoch line,
# and a bn model with augmentation and a schedule saves and evaluates.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 2000 --val 1000 \
    --model conv3x3x8,bn,relu,pool2,dense10 --flip --shift 2 \
    --schedule cosine --weight-decay 0.01 --save "$tmp/bn.ckpt" \
    --log "$tmp/val.csv" \
    >"$tmp/out3" 2>&1 || { cat "$tmp/out3"; fail "bn run exited with an error"; }
grep -q '^epoch 1/1 .* val_acc 0\.[0-9]* ' "$tmp/out3" \
    || { cat "$tmp/out3"; fail "no val_acc on the epoch line"; }
# The log's val_acc, with six decimals, rounds to the epoch line's four.
line_val=$(sed -n 's/.* val_acc \([0-9.]*\) .*/\1/p' "$tmp/out3")
log_val=$(sed -n 2p "$tmp/val.csv" | cut -d, -f9)
[ -n "$log_val" ] && [ "$(awk -v v="$log_val" 'BEGIN { printf "%.4f", v }')" = "$line_val" ] \
    || fail "the log's val_acc '$log_val' is not the epoch line's $line_val"

# A log from before the validation and lr columns keeps its seven.
printf 'epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec\n' \
    >"$tmp/seven.csv"
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 500 \
    --log "$tmp/seven.csv" >/dev/null 2>&1 || fail "appending to a seven-column log failed"
[ "$(tail -n 1 "$tmp/seven.csv" | awk -F, '{ print NF }')" -eq 7 ] \
    || fail "a run appended $(tail -n 1 "$tmp/seven.csv") to a seven-column log"

# With stdout and stderr closed, the log keeps only its own lines: the
# epoch lines and notes must not reach it through descriptor 1 or 2.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 500 \
    --log "$tmp/closed.csv" >&- 2>&- || fail "a run with stdout closed failed"
[ "$(grep -Ecv '^(epoch,|[0-9])' "$tmp/closed.csv")" -eq 0 ] \
    || fail "with stdout closed the log got: $(grep -Ev '^(epoch,|[0-9])' "$tmp/closed.csv" | head -n 2)"

# A run whose every save failed reports it and exits 1, since the
# trained model is not on disk as --save asked.
if command -v prlimit >/dev/null 2>&1; then
    prlimit --fsize=10000 "$fmnist" --data "$data" --headless --epochs 1 \
        --train-limit 500 --save "$tmp/big.ckpt" >/dev/null 2>"$tmp/err5"
    rc=$?
    [ "$rc" -eq 1 ] || fail "all saves failed, but the status is $rc"
    grep -qx 'fmnist: no checkpoint written: every save failed' "$tmp/err5" \
        || fail "all saves failed, but the end says: $(tail -n 1 "$tmp/err5")"
fi

# A deep linear stack at --lr 9.9 gets a NaN loss within a few batches.
# The run must give the loss as the reason, then report that nothing was
# saved because training failed, not that --save would write a
# checkpoint.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 2000 \
    --model dense256,dense256,dense256,dense10 --optimizer sgd --lr 9.9 \
    --save "$tmp/diverged.ckpt" >/dev/null 2>"$tmp/err6"
rc=$?
[ "$rc" -eq 1 ] || fail "a diverged run exited with status $rc, expected 1"
tail -n 2 "$tmp/err6" | head -n 1 | grep -q '^fmnist: training stopped: the loss of batch [0-9]* in epoch 1 is NaN; try a lower learning rate$' \
    || fail "a diverged run does not name the loss: $(cat "$tmp/err6")"
tail -n 1 "$tmp/err6" | grep -qx 'fmnist: no checkpoint written, because training failed' \
    || fail "a diverged run ends with: $(cat "$tmp/err6")"
grep -q "writes one" "$tmp/err6" \
    && fail "a diverged run suggests how to save: $(cat "$tmp/err6")"
[ ! -e "$tmp/diverged.ckpt" ] || fail "a diverged run wrote a checkpoint"

# With 3 batches at --lr 9.9, the last update leaves finite weights with
# which a layer outputs infinity, so every prediction would be NaN and
# --load would reject the file. The run stops as diverged instead and
# keeps no checkpoint from those weights.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 192 \
    --model dense256,dense256,dense256,dense10 --optimizer sgd --lr 9.9 \
    --save "$tmp/overflow.ckpt" >/dev/null 2>"$tmp/err7"
rc=$?
[ "$rc" -eq 1 ] || fail "a run whose outputs overflow exited with status $rc, expected 1"
grep -qx 'fmnist: training stopped: layer [0-9]* (dense) outputs infinity or NaN after epoch 1, although every weight is finite; try a lower learning rate' "$tmp/err7" \
    || fail "a run whose outputs overflow does not name the layer: $(cat "$tmp/err7")"
[ ! -e "$tmp/overflow.ckpt" ] || fail "a run whose outputs overflow wrote a checkpoint"

# The same at a lower rate on 64 images overflows only in epoch 3, so
# the --save file contains the model of epoch 2, and the last line says
# so.
"$fmnist" --data "$data" --headless --epochs 6 --train-limit 64 \
    --model dense256,dense256,dense256,dense10 --optimizer sgd --lr 4 \
    --save "$tmp/early.ckpt" >/dev/null 2>"$tmp/err8"
rc=$?
[ "$rc" -eq 1 ] || fail "a run that overflows in epoch 3 exited with status $rc, expected 1"
tail -n 1 "$tmp/err8" | grep -qx "fmnist: training failed, so $tmp/early.ckpt still holds the model of epoch 2" \
    || fail "a run that overflows in epoch 3 ends with: $(cat "$tmp/err8")"
"$fmnist" --data "$data" --load "$tmp/early.ckpt" --eval >/dev/null 2>&1 \
    || fail "the checkpoint of epoch 2 before the overflow does not load"

# Continuing that checkpoint into the same file at --lr 9.9 keeps the
# loaded model in it.
cp "$tmp/early.ckpt" "$tmp/kept.ckpt"
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 192 \
    --optimizer sgd --lr 9.9 --load "$tmp/kept.ckpt" --save "$tmp/kept.ckpt" \
    >/dev/null 2>"$tmp/err9"
rc=$?
[ "$rc" -eq 1 ] || fail "a resumed run that fails exited with status $rc, expected 1"
tail -n 1 "$tmp/err9" | grep -qx "fmnist: training failed, so $tmp/kept.ckpt still holds the model loaded from it" \
    || fail "a resumed run that fails ends with: $(cat "$tmp/err9")"
cmp -s "$tmp/early.ckpt" "$tmp/kept.ckpt" \
    || fail "a resumed run that fails changed its --load file"

# Without --save, a failed run prints nothing about checkpoints.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 2000 \
    --model dense256,dense256,dense256,dense10 --optimizer sgd --lr 9.9 \
    >/dev/null 2>"$tmp/err10"
rc=$?
[ "$rc" -eq 1 ] || fail "a diverged run without --save exited with status $rc, expected 1"
grep -q 'checkpoint' "$tmp/err10" \
    && fail "a diverged run without --save mentions a checkpoint: $(cat "$tmp/err10")"

# A checkpoint that gives NaN predictions for some test images (see
# tests/nan_checkpoint.sh).
. "$(dirname "$0")/nan_checkpoint.sh"
make_nan_checkpoint "$tmp/nan.ckpt" \
    || fail "training the dense10 model for the NaN checkpoint failed"
nan_msg="fmnist: --load $tmp/nan.ckpt gives NaN predictions for [0-9]* of 10000 test images: its weights are too large for them; use an earlier checkpoint"

# --eval and a headless --epochs 0 both fail with the same message and
# print no accuracy, which would count those images as predictions.
"$fmnist" --data "$data" --load "$tmp/nan.ckpt" --eval >"$tmp/out11" 2>"$tmp/err11"
rc=$?
[ "$rc" -eq 1 ] || fail "--eval of the NaN checkpoint exited with status $rc, expected 1"
grep -qx "$nan_msg" "$tmp/err11" \
    || fail "--eval of the NaN checkpoint: $(cat "$tmp/err11")"
"$fmnist" --data "$data" --load "$tmp/nan.ckpt" --epochs 0 --headless \
    >"$tmp/out12" 2>"$tmp/err12"
rc=$?
[ "$rc" -eq 1 ] || fail "--epochs 0 with the NaN checkpoint exited with status $rc, expected 1"
[ "$(cat "$tmp/err12")" = "$(cat "$tmp/err11")" ] \
    || fail "--epochs 0 and --eval differ: $(cat "$tmp/err12")"
grep -q 'accuracy' "$tmp/out12" \
    && fail "--epochs 0 with the NaN checkpoint printed an accuracy: $(cat "$tmp/out12")"

# Resuming it blames the checkpoint, not the learning rate, before any
# training, and leaves the file as it was.
cp "$tmp/nan.ckpt" "$tmp/nan.before"
"$fmnist" --data "$data" --headless --epochs 2 --train-limit 2000 \
    --load "$tmp/nan.ckpt" --save "$tmp/nan.ckpt" >/dev/null 2>"$tmp/err13"
rc=$?
[ "$rc" -eq 1 ] || fail "resuming the NaN checkpoint exited with status $rc, expected 1"
grep -qx "fmnist: training not started: --load $tmp/nan.ckpt already gives NaN predictions for [0-9]* of 10000 test images: its weights are too large for them; use an earlier checkpoint" \
    "$tmp/err13" || fail "resuming the NaN checkpoint: $(cat "$tmp/err13")"
grep -q 'learning rate' "$tmp/err13" \
    && fail "resuming the NaN checkpoint blames the learning rate: $(cat "$tmp/err13")"
tail -n 1 "$tmp/err13" | grep -qx "fmnist: training failed, so $tmp/nan.ckpt still holds the model loaded from it" \
    || fail "resuming the NaN checkpoint ends with: $(cat "$tmp/err13")"
cmp -s "$tmp/nan.ckpt" "$tmp/nan.before" \
    || fail "resuming the NaN checkpoint changed the file"

# "small" at SGD --lr 3 reaches weights of about 1e25 while its outputs
# stay finite. The checkpoint it saves must load.
"$fmnist" --data "$data" --headless --epochs 1 --train-limit 1000 \
    --model small --optimizer sgd --lr 3 --save "$tmp/huge.ckpt" \
    >/dev/null 2>"$tmp/err8" || fail "the --lr 3 run failed: $(cat "$tmp/err8")"
"$fmnist" --data "$data" --load "$tmp/huge.ckpt" --eval >"$tmp/eval8" 2>&1 \
    || fail "the checkpoint of the --lr 3 run does not load: $(cat "$tmp/eval8")"

# Every epoch's save is reported, though the message is the same each
# time.
"$fmnist" --data "$data" --headless --epochs 2 --train-limit 500 \
    --save "$tmp/twice.ckpt" >"$tmp/out4" 2>&1 \
    || { cat "$tmp/out4"; fail "the two-epoch run exited with an error"; }
[ "$(grep -c "^fmnist: saved $tmp/twice.ckpt\$" "$tmp/out4")" -eq 2 ] \
    || { cat "$tmp/out4"; fail "two epochs with --save did not report two saves"; }

# Appended lines start on a line of their own, and a log of comments only
# gets the header before its first epoch line.
printf 'epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec' \
    >"$tmp/nonl.csv"
printf '# notes\n' >"$tmp/notes.csv"
for log in nonl notes; do
    "$fmnist" --data "$data" --headless --epochs 1 --train-limit 500 \
        --log "$tmp/$log.csv" >/dev/null 2>&1 || fail "appending to $log.csv failed"
done
[ "$(grep -v '^#' "$tmp/nonl.csv" | awk -F, '{ print NF }' | sort -u)" = 7 ] \
    || fail "a header without a newline got lines of other widths: $(cat "$tmp/nonl.csv")"
[ "$(grep -v '^#' "$tmp/notes.csv" | head -n 1)" = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec,val_loss,val_acc,lr" ] \
    || fail "a log of comments got no header: $(cat "$tmp/notes.csv")"
"$fmnist" --data "$data" --load "$tmp/bn.ckpt" --eval >"$tmp/eval3" 2>&1 \
    || { cat "$tmp/eval3"; fail "--eval of the bn checkpoint exited with an error"; }

# The AVX2 and AVX-512 kernels sum every product in the same order, so the
# same run saves byte-identical checkpoints with either. The first
# convolution and its pooling run on phase planes, the second
# convolution's weight gradient takes the blocked GEMM, and its forward
# pass and input gradient run through Winograd, whose transforms are the
# same code for both.
spec=conv5x5x32:same,relu,pool2,conv5x5x16:same,relu,pool2,dense64,relu,dense10
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    for kernel in avx2 avx512; do
        FMNIST_GEMM=$kernel "$fmnist" --data "$data" --headless --epochs 1 \
            --train-limit 640 -j 2 --model "$spec" --save "$tmp/$kernel.ckpt" \
            >"$tmp/out-$kernel" 2>&1 \
            || { cat "$tmp/out-$kernel"; fail "FMNIST_GEMM=$kernel run failed"; }
        if grep -q 'warning:.*FMNIST_GEMM' "$tmp/out-$kernel"; then
            cat "$tmp/out-$kernel"
            fail "FMNIST_GEMM=$kernel was ignored on a CPU that lists avx512f"
        fi
    done
    cmp "$tmp/avx2.ckpt" "$tmp/avx512.ckpt" \
        || fail "FMNIST_GEMM=avx2 and avx512 saved different checkpoints"
fi

# In a locale that writes decimal commas, options still take and the log
# still gets decimal points. The locale is built from Debian's locales
# package, which setup.sh installs; without it the check is skipped.
if localedef -i de_DE -f UTF-8 "$tmp/de_DE.UTF-8" >/dev/null 2>&1; then
    LOCPATH=$tmp LC_ALL=de_DE.UTF-8 "$fmnist" --data "$data" --headless \
        --epochs 1 --train-limit 500 --lr 0.002 --log "$tmp/de.csv" \
        >"$tmp/out-de" 2>&1 \
        || { cat "$tmp/out-de"; fail "--lr 0.002 failed in a decimal-comma locale"; }
    [ "$(sed -n 2p "$tmp/de.csv" | awk -F, '{ print NF }')" = 10 ] \
        || fail "the log in a decimal-comma locale has other columns: $(sed -n 2p "$tmp/de.csv")"
    grep -Eq '^epoch 1/1 .*loss [0-9]+\.[0-9]+' "$tmp/out-de" \
        || fail "the epoch line in a decimal-comma locale lacks a decimal point: $(cat "$tmp/out-de")"
else
    echo "skip: no de_DE locale to build (apt-get install locales)"
fi

# A tiny network, for the runs that only need epochs to pass quickly.
tiny="--model pool2,conv3x3x4,relu,pool2,dense10 --batch 16 -j 1"

# A reader that exits early: fmnist ignores SIGPIPE, trains, logs and
# saves all three epochs, then names the error and exits 1. Before, the
# signal killed it while it wrote a later epoch's line, before that
# epoch's save.
{
    "$fmnist" --data "$data" $tiny --headless --epochs 3 --train-limit 500 \
        --save "$tmp/pipe.ckpt" --log "$tmp/pipe.csv" 2>"$tmp/pipe.err"
    echo $? >"$tmp/pipe.rc"
} | head -c 10 >/dev/null
[ "$(cat "$tmp/pipe.rc")" = 1 ] \
    || fail "stdout closed by its reader: status $(cat "$tmp/pipe.rc"), expected 1: $(cat "$tmp/pipe.err")"
grep -qx 'fmnist: cannot write to standard output: Broken pipe' "$tmp/pipe.err" \
    || fail "stdout closed by its reader: no error line: $(cat "$tmp/pipe.err")"
[ "$(grep -c '^[0-9]' "$tmp/pipe.csv")" -eq 3 ] \
    || fail "stdout closed by its reader: the log lacks epochs: $(cat "$tmp/pipe.csv")"
"$fmnist" --data "$data" $tiny --headless --epochs 1 --train-limit 500 \
    --load "$tmp/pipe.ckpt" >"$tmp/pipe.resume" 2>&1
grep -q '^epoch 4/4 ' "$tmp/pipe.resume" \
    || fail "stdout closed by its reader: the checkpoint lacks epochs: $(cat "$tmp/pipe.resume")"

# A reader that never reads: once the pipe is full, training must go on,
# and SIGTERM must stop the run and save. The FIFO is opened for reading
# and writing on descriptor 3 of this shell, so fmnist's open does not
# wait for a reader. A pipe buffer is 64 KiB on Linux, about 550 epoch
# lines, so 1000 lines in the log mean that training went past it.
mkfifo "$tmp/full.fifo" || fail "mkfifo failed"
exec 3<>"$tmp/full.fifo"
"$fmnist" --data "$data" $tiny --headless --epochs 100000 --train-limit 100 \
    --save "$tmp/full.ckpt" --log "$tmp/full.csv" >"$tmp/full.fifo" \
    2>"$tmp/full.err" &
pid=$!
# logged_epochs FILE: the number of epoch lines in the log FILE, 0 while
# it does not exist.
logged_epochs() {
    n=$(grep -c '^[0-9]' "$1" 2>/dev/null)
    echo "${n:-0}"
}
# The loop ends as soon as the log has 1000 lines. Its limit of 600 s
# only matters on a busy machine: a run of the sanitizer build with other
# work on both cores logged 983 epochs in 120 s.
tries=3000
while [ "$(logged_epochs "$tmp/full.csv")" -lt 1000 ] && [ "$tries" -gt 0 ]; do
    tries=$((tries - 1))
    sleep 0.2
done
if [ "$tries" -eq 0 ]; then
    kill -KILL "$pid"
    fail "stdout full: training stopped at $(logged_epochs "$tmp/full.csv") epochs"
fi
kill -TERM "$pid"
tries=150
while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
    tries=$((tries - 1))
    sleep 0.2
done
if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    fail "stdout full: SIGTERM did not stop the run within 30 s"
fi
wait "$pid"
rc=$?
exec 3<&-
[ "$rc" -eq 143 ] || fail "stdout full: status $rc after SIGTERM, expected 143"
grep -q '^fmnist: stopped by SIGTERM' "$tmp/full.err" \
    || fail "stdout full: no line saying where SIGTERM stopped: $(cat "$tmp/full.err")"
"$fmnist" --data "$data" --load "$tmp/full.ckpt" --eval >/dev/null 2>&1 \
    || fail "stdout full: --eval rejects the checkpoint"

# Write errors on stdout are reported and fail the run, whose training
# still runs to its end and saves.
if [ -w /dev/full ]; then
    "$fmnist" --data "$data" $tiny --headless --epochs 1 --train-limit 500 \
        --save "$tmp/devfull.ckpt" >/dev/full 2>"$tmp/devfull.err"
    rc=$?
    [ "$rc" -eq 1 ] || fail "headless to /dev/full: status $rc, expected 1"
    grep -qx 'fmnist: cannot write to standard output: No space left on device' \
        "$tmp/devfull.err" || fail "headless to /dev/full: no error line: $(cat "$tmp/devfull.err")"
    [ -s "$tmp/devfull.ckpt" ] || fail "headless to /dev/full: no checkpoint"
    "$fmnist" --data "$data" --load "$tmp/devfull.ckpt" --eval >/dev/full \
        2>"$tmp/evalfull.err"
    rc=$?
    [ "$rc" -eq 1 ] || fail "--eval to /dev/full: status $rc, expected 1"
    grep -qx 'fmnist: cannot write to standard output: No space left on device' \
        "$tmp/evalfull.err" || fail "--eval to /dev/full: no error line: $(cat "$tmp/evalfull.err")"
fi

# A checkpoint does not store the schedule, weight decay, decay mode or
# augmentation, so resuming one of the best network without --preset best warns that
# this run trains without that recipe, and names the option to add. With
# --preset best, or with the recipe given option by option, there is no
# warning.
"$fmnist" --data "$data" --headless --model best --epochs 1 \
    --train-limit 200 --save "$tmp/best.ckpt" >/dev/null 2>"$tmp/err" \
    || { cat "$tmp/err"; fail "training the best network failed"; }
"$fmnist" --data "$data" --headless --load "$tmp/best.ckpt" \
    --save "$tmp/best.ckpt" --epochs 1 --train-limit 200 >/dev/null \
    2>"$tmp/err" || { cat "$tmp/err"; fail "resuming without --preset failed"; }
grep -qx "fmnist: warning: --load $tmp/best.ckpt has model best, but this run has a constant schedule, no weight decay and no flips; add --preset best if that preset trained it" \
    "$tmp/err" || fail "resuming without --preset: no recipe warning: $(cat "$tmp/err")"
for recipe in "--preset best" \
    "--schedule cosine --weight-decay 0.05 --flip"; do
    # shellcheck disable=SC2086 # the recipe is several words
    "$fmnist" --data "$data" --headless --load "$tmp/best.ckpt" \
        --save "$tmp/best.ckpt" --epochs 1 --train-limit 200 $recipe \
        >/dev/null 2>"$tmp/err" \
        || { cat "$tmp/err"; fail "resuming with $recipe failed"; }
    grep -q 'warning' "$tmp/err" \
        && fail "resuming with $recipe: a warning: $(cat "$tmp/err")"
done
# The preset's decay is decoupled, so L2 decay at its rate is a gap too.
"$fmnist" --data "$data" --headless --load "$tmp/best.ckpt" \
    --save "$tmp/best.ckpt" --epochs 1 --train-limit 200 --schedule cosine \
    --weight-decay 0.05 --decay-mode l2 --flip >/dev/null 2>"$tmp/err" \
    || { cat "$tmp/err"; fail "resuming with L2 decay failed"; }
grep -qx "fmnist: warning: --load $tmp/best.ckpt has model best, but this run has l2 weight decay 0.05; add --preset best if that preset trained it" \
    "$tmp/err" || fail "resuming with L2 decay: no recipe warning: $(cat "$tmp/err")"

# A resumed run stopped before it finishes an epoch reports that, rather
# than "after 1 of 4 epochs", which reads as an epoch of its own. A full epoch
# takes seconds, so SIGTERM comes well before its end.
"$fmnist" --data "$data" --headless --load "$tmp/model.ckpt" --epochs 3 \
    >/dev/null 2>"$tmp/stop.err" &
pid=$!
tries=150
while ! grep -q 'not written to a file' "$tmp/stop.err" && [ "$tries" -gt 0 ]; do
    tries=$((tries - 1))
    sleep 0.2
done
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 143 ] || fail "resumed and stopped: status $rc, expected 143"
grep -Eq '^fmnist: stopped by SIGTERM in epoch 2 (after [0-9]+ of 938 batches|of 4, before its first batch)$' \
    "$tmp/stop.err" || fail "resumed and stopped: no line saying where: $(cat "$tmp/stop.err")"
grep -qx 'fmnist: 1 epoch was loaded, and this run finished none' "$tmp/stop.err" \
    || fail "resumed and stopped: no line saying no epoch finished: $(cat "$tmp/stop.err")"

# SIGSTOP, unlike Ctrl-Z, runs no handler, but the SIGCONT after it does:
# a run stopped for 4 s after its first epoch must leave the stop out of
# the logged training time. Counting it, the time from the first epoch's
# line to the last would grow with the wall time, within a fraction of a
# second, so it must grow by at least 2 s less. Its last epochs take
# seconds on a busy machine, so the stop comes before the run ends.
"$fmnist" --data "$data" --headless --epochs 3 --train-limit 3000 \
    --log "$tmp/sigstop.csv" >/dev/null 2>"$tmp/sigstop.err" &
pid=$!
tries=600
while [ "$(grep -c '^1,' "$tmp/sigstop.csv" 2>/dev/null)" != 1 ]; do
    tries=$((tries - 1))
    if [ "$tries" -eq 0 ] || ! kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        fail "SIGSTOP run: no first epoch within 60 s: $(cat "$tmp/sigstop.err")"
    fi
    sleep 0.1
done
began=$(date +%s.%N)
kill -STOP "$pid"
sleep 4
kill -CONT "$pid"
wait "$pid"
rc=$?
ended=$(date +%s.%N)
[ "$rc" -eq 0 ] || fail "SIGSTOP run: status $rc: $(cat "$tmp/sigstop.err")"
first=$(grep '^1,' "$tmp/sigstop.csv" | cut -d, -f6)
last=$(grep '^3,' "$tmp/sigstop.csv" | cut -d, -f6)
grew=$(awk -v f="$first" -v l="$last" 'BEGIN { print l - f }')
wall=$(awk -v a="$began" -v b="$ended" 'BEGIN { print b - a }')
awk -v f="$first" -v l="$last" -v g="$grew" -v w="$wall" \
    'BEGIN { exit !(f != "" && l != "" && g <= w - 2) }' \
    || fail "SIGSTOP run: the training time grew by $grew s (from '$first' to '$last') in $wall s, so it counts the 4 s stop"
echo "SIGSTOP run: the training time grew by $grew s in $wall s with a 4 s stop"

# SIGINT while the data loads: fmnist catches it from just before the
# load (SigCgt in /proc shows the handler). It must then skip training,
# print a message and exit with status 130.
# Until the shell's child has run exec, /proc shows the shell's handlers,
# so the check waits for fmnist's own name first.
"$fmnist" --data "$data" --headless --epochs 1 >"$tmp/loadint.out" \
    2>"$tmp/loadint.err" &
pid=$!
name=$(basename "$fmnist" | cut -c 1-15)
tries=2000
while :; do
    caught=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && [ -n "$caught" ] \
        && [ $((0x$caught & 2)) -ne 0 ] && break
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "SIGINT while loading: fmnist never caught SIGINT"
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "SIGINT while loading: status $rc, expected 130"
grep -qx 'fmnist: stopped by SIGINT while loading the data; nothing was trained' \
    "$tmp/loadint.err" \
    || fail "SIGINT while loading: no line saying so: $(cat "$tmp/loadint.err")"
grep -q '^epoch ' "$tmp/loadint.out" \
    && fail "SIGINT while loading: the run trained anyway"
echo "SIGINT while loading: stopped before training"

# A missing data directory is reported with the path and the fix.
"$fmnist" --data "$tmp/nowhere" --headless --epochs 1 >"$tmp/bad" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "missing data gave status $rc, expected 1"
grep -q "$tmp/nowhere" "$tmp/bad" || fail "missing data message does not name the directory"
grep -q "apt-get install dataset-fashion-mnist" "$tmp/bad" || fail "missing data message has no fix"

echo "ok"
