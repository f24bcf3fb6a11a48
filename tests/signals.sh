#!/bin/sh
# Signals and terminals, end to end on the real data. Each case runs
# fmnist in a pane of a private tmux server (its own -S socket), sends a
# signal to the fmnist process itself, and checks the exit status, the
# saved checkpoint and the terminal modes that stty reports in the pane
# afterwards:
#   SIGINT in the UI and SIGTERM headless: exit 130 and 143, a checkpoint
#     that --eval loads, icanon and echo back on, and a line saying where
#     the signal stopped the run;
#   SIGSEGV and SIGABRT: the crash handler restores the terminal;
#   SIGHUP in the UI and headless, and a terminal closed under a process
#     in another session: training goes on to the last epoch, saves, and
#     notes it in the log, with the summary of the interface runs;
#   TERM=dumb and an unknown TERM: headless mode with one line saying why;
#   a resize storm down to 1x1: a notice, and training goes on;
#   colours for xterm-256color, tmux-256color, screen and linux, none
#     for vt100 (with linux, ncurses loads libgpm for the mouse, and a
#     sanitizer build reports its allocation unless tests/lsan.supp is
#     used);
#   a checkpoint with a NaN weight: rejected with exit 1 and the message,
#     and the checkpoint is not replaced;
#   checkpoint writes failing in the UI (a file-size limit set with
#     prlimit): each failure and the recovery in the log, training goes
#     on, and the earlier checkpoint stays as it was;
#   Ctrl-Z from an interactive shell with a key typed right after it,
#     then fg: the interface goes on drawing without another key;
#   Ctrl-Z in a headless run for 4 s, then fg: the logged training time
#     leaves the stop out;
#   Ctrl-\ (SIGQUIT) in the interface: exit 131, with the terminal
#     modes, the cursor, the keypad, the mouse and the normal screen
#     restored;
#   kill %1 on an interface stopped with Ctrl-Z: exit 143 and a
#     checkpoint, without an fg;
#   SIGSTOP from outside, then fg: the interface restores its terminal
#     modes, keypad, mouse and hidden cursor, redraws the screen and
#     takes keys without Enter;
#   SIGSTOP, then kill -CONT: in the background the interface neither
#     draws nor reads, and fg restores it the same way.
# Cases run in parallel groups to stay within about a minute. Skipped
# (exit 77) without tmux or the data package.
set -u

# tui_lib.sh provides the tmux server, $tmp, tm, capture and wait_for.
tui_test=signals
. "$(dirname "$0")/tui_lib.sh"
# The Ctrl-Z cases run fmnist in process groups of their own, which the
# clean_up of tui_lib.sh does not reach, so a test stopped during them
# ends those processes through their recorded pids. A pid is signalled
# only while it is still an fmnist, since it may have been reused.
stop_recorded() {
    for name in ctrlz ctrlzh quit killjob sigstop sigcont; do
        [ -s "$tmp/$name.pid" ] || continue
        pid=$(cat "$tmp/$name.pid")
        grep -q fmnist "/proc/$pid/cmdline" 2>/dev/null || continue
        # A stopped process acts on SIGTERM only once it continues.
        kill -TERM "$pid" 2>/dev/null && kill -CONT "$pid" 2>/dev/null
    done
}
trap 'stop_recorded; clean_up' EXIT
# The panes run in $tmp.
case $fmnist in
/*) ;;
*) fmnist=$(pwd)/$fmnist ;;
esac

# A tiny network on 1000 images with one thread: an epoch, including the
# evaluation of the 10,000 test images, takes well under a second.
model=pool2,conv3x3x4,relu,pool2,dense10
fast="--data $data --model $model --train-limit 1000 --batch 16 -j 1"

# Unlike the fail of tui_lib.sh, this one counts the failure and returns,
# so that the later cases still run.
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# wrap NAME: runs the rest of its arguments with the pid in NAME.pid
# (the inner sh execs, so it is fmnist's pid), then records the exit
# status and the terminal modes of the pane. SIGHUP is ignored until
# then so the wrapper outlives a hangup; fmnist installs its own
# handler. The wait that keeps the pane open ends on a hangup, such as
# the one from kill-server, or once clean_up has removed the directory:
# a hangup that came while SIGHUP was ignored would otherwise leave it
# waiting.
cat >"$tmp/wrap" <<'EOF'
#!/bin/sh
name=$1
shift
trap '' HUP
sh -c 'echo $$ >"$0.pid"; exec "$@"' "$name" "$@"
rc=$?
stty -a >"$name.stty" 2>&1
echo "exit=$rc" >"$name.status"
trap - HUP
waited=0
while [ -e wrap ] && [ "$waited" -lt 600 ]; do
    sleep 1
    waited=$((waited + 1))
done
EOF
chmod +x "$tmp/wrap"

# start_wrapped NAME WIDTH HEIGHT ARG...: runs ARG... through wrap in a
# new session NAME, unlike start of tui_lib.sh, which runs fmnist itself.
start_wrapped() {
    name=$1
    w=$2
    h=$3
    shift 3
    tm new-session -d -x "$w" -y "$h" -s "$name" \
        "cd '$tmp' && ./wrap $name $*" || fail "$name: tmux could not start"
}

# wait_file FILE SECONDS: polls until FILE exists and is not empty.
wait_file() {
    tries=$(($2 * 5))
    while [ ! -s "$1" ] && [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        sleep 0.2
    done
    [ -s "$1" ]
}

pid_of() {
    wait_file "$tmp/$1.pid" 10 && cat "$tmp/$1.pid"
}

# expect_exit NAME STATUS SECONDS: wait_exit with the order of arguments
# this file uses, for runs that a signal, a hangup or a key ends.
expect_exit() {
    wait_exit "$1" "$3" "$2" ""
}

# expect_sane_tty NAME: stty in the pane shows canonical mode and echo.
expect_sane_tty() {
    grep -Eq '(^| )icanon( |$)' "$tmp/$1.stty" \
        || fail "$1: icanon not restored: $(cat "$tmp/$1.stty")"
    grep -Eq '(^| )echo( |$)' "$tmp/$1.stty" \
        || fail "$1: echo not restored: $(cat "$tmp/$1.stty")"
}

# expect_checkpoint NAME FILE: --eval loads FILE.
expect_checkpoint() {
    "$fmnist" --data "$data" --load "$2" --eval >"$tmp/$1.eval" 2>&1 \
        || fail "$1: --eval rejects $2: $(cat "$tmp/$1.eval")"
}

# ---------------------------------------------------------------- group 1
# SIGINT in the UI, SIGTERM headless, SIGSEGV and SIGABRT in the UI, and
# two terminals curses cannot drive.
start_wrapped int 80 24 "$fmnist" $fast --epochs 1000 --save int.ckpt
start_wrapped term 80 24 "$fmnist" $fast --epochs 1000 --save term.ckpt \
    --headless
# A name with a byte that is not printable under LANG=C (0x9b, which
# some terminals take as the start of a control sequence) would reach
# the terminal raw in the resume line, or escaped and so no longer the
# file's name. No resume line is printed for it.
c1=$(printf 'termc1\233')
start_wrapped termc1 80 24 env LC_ALL=C "$fmnist" $fast --epochs 1000 \
    --save "$c1.ckpt" --headless
# --model with --preset trains another network than the preset's, and
# the resume line must name it: --load rejects a --preset whose network
# the checkpoint does not hold.
start_wrapped termpm 80 24 "$fmnist" $fast --epochs 1000 --preset best \
    --model dense10 --save termpm.ckpt --headless
# A sanitizer would report the SIGSEGV itself and exit with its own status.
nosan="env ASAN_OPTIONS=handle_segv=0 TSAN_OPTIONS=handle_segv=0"
start_wrapped segv 80 24 $nosan "$fmnist" $fast --epochs 1000
start_wrapped abrt 80 24 "$fmnist" $fast --epochs 1000
start_wrapped dumb 80 24 env TERM=dumb "$fmnist" $fast --epochs 1
start_wrapped noterm 80 24 env TERM=fmnist-no-such-terminal "$fmnist" $fast \
    --epochs 1

# The first checkpoint is written after epoch 1, so the run is past the
# start-up and inside the training loop when the signal comes.
wait_file "$tmp/int.ckpt" 30 || fail "int: no checkpoint after epoch 1"
wait_file "$tmp/term.ckpt" 30 || fail "term: no checkpoint after epoch 1"
wait_file "$tmp/$c1.ckpt" 30 || fail "termc1: no checkpoint after epoch 1"
wait_file "$tmp/termpm.ckpt" 60 || fail "termpm: no checkpoint after epoch 1"
wait_for segv 'epoch [0-9]+/1000' 30 || fail "segv: the UI did not appear"
wait_for abrt 'epoch [0-9]+/1000' 30 || fail "abrt: the UI did not appear"

kill -INT "$(pid_of int)"
kill -TERM "$(pid_of term)"
kill -TERM "$(pid_of termc1)"
kill -TERM "$(pid_of termpm)"
kill -SEGV "$(pid_of segv)"
kill -ABRT "$(pid_of abrt)"

# expect_resume NAME: the screen of NAME, with wrapped lines joined, has
# the line that resumes the run from NAME.ckpt with the options of $fast
# that a checkpoint does not store, and that command, cut to one epoch,
# trains and saves.
expect_resume() {
    tm capture-pane -p -J -t "$1" -S -50 >"$tmp/joined" 2>/dev/null
    resume=$(sed -n 's/^fmnist: resume with: //p' "$tmp/joined")
    case "$resume" in
    "$fmnist --data $data --load $1.ckpt --save $1.ckpt --batch 16 --train-limit 1000 --epochs "[0-9]*) ;;
    *) fail "$1: no resume line, or another one: '$resume'"; return ;;
    esac
    (cd "$tmp" && eval "${resume% --epochs *} --epochs 1" >/dev/null 2>&1) \
        || fail "$1: the resume command failed: $resume"
}

if expect_exit int 130 30; then
    expect_sane_tty int
    expect_checkpoint int "$tmp/int.ckpt"
    expect_resume int
    # The interface's summary names the signal, as a headless run does.
    grep -Eq '^fmnist: stopped by SIGINT (in epoch [0-9]+ after [0-9]+ of [0-9]+ batches|in epoch 1 of 1000, before its first batch|after [0-9]+ of 1000 epochs)$' \
        "$tmp/joined" || fail "int: the summary does not name SIGINT: $(cat "$tmp/joined")"
fi
if expect_exit term 143 30; then
    expect_checkpoint term "$tmp/term.ckpt"
    capture term
    grep -Eq '^fmnist: stopped by SIGTERM (in epoch [0-9]+ after [0-9]+ of [0-9]+ batches|in epoch 1 of 1000, before its first batch|after [0-9]+ of 1000 epochs)$' \
        "$tmp/screen" || fail "term: no line saying where SIGTERM stopped the run"
    expect_resume term
fi
if expect_exit termc1 143 30; then
    capture termc1
    grep -q 'stopped by SIGTERM' "$tmp/screen" \
        || fail "termc1: no line saying where SIGTERM stopped the run"
    ! grep -q 'resume with' "$tmp/screen" \
        || fail "termc1: a resume line for a name with byte 0x9b"
    tm capture-pane -p -J -t termc1 -S -50 >"$tmp/joined" 2>/dev/null
    grep -q '^fmnist: no resume command, because the --save name contains' \
        "$tmp/joined" \
        || fail "termc1: no line saying why the resume line is left out"
fi
if expect_exit termpm 143 30; then
    tm capture-pane -p -J -t termpm -S -50 >"$tmp/joined" 2>/dev/null
    resume=$(sed -n 's/^fmnist: resume with: //p' "$tmp/joined")
    case "$resume" in
    *" --preset best --model dense10 "*) ;;
    *) fail "termpm: the resume line lacks --model: '$resume'" ;;
    esac
    (cd "$tmp" && eval "${resume% --epochs *} --epochs 1" >/dev/null 2>&1) \
        || fail "termpm: the resume command failed: $resume"
fi
if expect_exit segv 139 10; then
    expect_sane_tty segv
    wait_for segv 'fmnist: crashed on signal 11' 5 \
        || fail "segv: no crash line on the screen"
fi
if expect_exit abrt 134 10; then
    expect_sane_tty abrt
fi

expect_exit dumb 0 30
capture dumb
grep -q 'fmnist: TERM=dumb cannot move the cursor; using headless mode' \
    "$tmp/screen" || fail "dumb: no fallback line"
grep -q '^epoch 1/1 ' "$tmp/screen" || fail "dumb: no epoch line"
grep -q '^fmnist: training .* for 1 epoch on 1 thread$' "$tmp/screen" \
    || fail "dumb: no line saying what trains"
expect_exit noterm 0 30
capture noterm
grep -q 'fmnist: TERM=fmnist-no-such-terminal has no terminfo entry' \
    "$tmp/screen" || fail "noterm: no fallback line"
echo "group 1 (INT, TERM, SEGV, ABRT, dumb and unknown TERM) done"

# ---------------------------------------------------------------- group 2
# SIGHUP, as a login shell sends it to its jobs when the SSH connection
# drops, and then the terminal goes away. A run in a session of its own
# (setsid) gets no SIGHUP when its terminal closes and has to notice the
# hangup itself. Both train to the end and save, and so does a run that
# was paused when the SIGHUP came, since no key can resume it after that.
epochs=60
start_wrapped hup 80 24 "$fmnist" $fast --epochs $epochs --save hup.ckpt \
    --log hup.csv
start_wrapped huppaused 80 24 "$fmnist" $fast --epochs $epochs \
    --save huppaused.ckpt --log huppaused.csv
start_wrapped closed 80 24 setsid -w "$fmnist" $fast --epochs $epochs \
    --save closed.ckpt --log closed.csv
start_wrapped hupheadless 80 24 "$fmnist" $fast --epochs $epochs --headless \
    --save hupheadless.ckpt --log hupheadless.csv
start_wrapped resize 80 24 "$fmnist" $fast --epochs 1000
start_wrapped hupterm 80 24 "$fmnist" $fast --epochs 1000 --log hupterm.csv
wait_for hup "epoch [0-9]+/$epochs" 30 || fail "hup: the UI did not appear"
wait_for hupterm 'epoch [0-9]+/1000' 30 || fail "hupterm: the UI did not appear"
wait_for huppaused "epoch [0-9]+/$epochs" 30 \
    || fail "huppaused: the UI did not appear"
tm send-keys -t huppaused p
wait_for huppaused '^ paused ' 30 || fail "huppaused: p did not pause"
wait_for closed "epoch [0-9]+/$epochs" 30 || fail "closed: the UI did not appear"
wait_for hupheadless "^epoch [0-9]+/$epochs " 30 \
    || fail "hupheadless: no epoch line"
wait_for resize 'epoch [0-9]+/1000' 30 || fail "resize: the UI did not appear"
kill -HUP "$(pid_of hup)"
kill -HUP "$(pid_of huppaused)"
kill -HUP "$(pid_of hupheadless)"
sleep 0.2
# Without its session, clean_up of tui_lib.sh cannot find the pane's
# process group, where wrap sleeps after fmnist ends, so it is noted.
for name in hup huppaused hupheadless closed hupterm; do
    tm display-message -p -t "$name" '#{pane_pid}' >"$tmp/$name.group"
    tm kill-session -t "$name"
done

# SIGTERM to a run that the hangup detached: the log states once where the
# stop left the run, as a headless run does, and the summary after it
# keeps the training time without repeating the place of the stop.
grep_tries=50
while ! grep -Eq '^# fmnist: (received SIGHUP|the terminal hung up)' \
    "$tmp/hupterm.csv" && [ "$grep_tries" -gt 0 ]; do
    grep_tries=$((grep_tries - 1))
    sleep 0.2
done
kill -TERM "$(pid_of hupterm)"
if expect_exit hupterm 143 30; then
    [ "$(grep -c '^# fmnist: stopped by SIGTERM' "$tmp/hupterm.csv")" -eq 1 ] \
        || fail "hupterm: not one line on where SIGTERM stopped the run: $(cat "$tmp/hupterm.csv")"
    grep -Eq '^# fmnist: (stopped (in|after) |epoch [0-9]+ stopped after)' \
        "$tmp/hupterm.csv" \
        && fail "hupterm: the summary repeats where the run stopped: $(cat "$tmp/hupterm.csv")"
    grep -q '^# fmnist: training time ' "$tmp/hupterm.csv" \
        || fail "hupterm: no training time in the log"
    # No key can save after the hangup, so the advice names only --save.
    grep -q '^# fmnist: no checkpoint written; next time, --save FILE writes one$' \
        "$tmp/hupterm.csv" \
        || fail "hupterm: no advice to use --save next time: $(cat "$tmp/hupterm.csv")"
    grep -q 's key' "$tmp/hupterm.csv" \
        && fail "hupterm: the log names the s key after the hangup: $(cat "$tmp/hupterm.csv")"
fi
kill -TERM -"$(cat "$tmp/hupterm.group")" 2>/dev/null

# A resize storm down to 1x1 meanwhile.
for size in 1x1 200x60 2x1 79x23 10x3 120x40 1x1 80x24 40x12 1x1; do
    tm resize-window -t resize -x "${size%x*}" -y "${size#*x}" 2>/dev/null
    sleep 0.1
done
# Growing a pane brings back lines from its history, so the history is
# cleared before each step: only a redraw at the new size can then show
# the notice or the epoch.
tm clear-history -t resize
tm resize-window -t resize -x 30 -y 5
wait_for resize 'too small' 5 || fail "resize: no notice at 30x5"
grep -q '^training goes on; q quits' "$tmp/screen" \
    || fail "resize: the notice at 30x5 does not say that q quits"
tm clear-history -t resize
tm resize-window -t resize -x 80 -y 24
wait_for resize 'epoch [0-9]+/1000' 5 || fail "resize: no UI back at 80x24"
[ ! -s "$tmp/resize.status" ] || fail "resize: fmnist ended: $(cat "$tmp/resize.status")"
tm send-keys -t resize q
expect_exit resize 0 20

for name in hup closed hupheadless huppaused; do
    expect_exit "$name" 0 60
    kill -TERM -"$(cat "$tmp/$name.group")" 2>/dev/null
    [ -s "$tmp/$name.status" ] || continue
    [ "$(grep -c '^[0-9]' "$tmp/$name.csv")" -eq $epochs ] \
        || fail "$name: the log does not list $epochs epochs: $(cat "$tmp/$name.csv")"
    # The next epoch is number epochs + 1, so the checkpoint contains them all.
    "$fmnist" $fast --load "$tmp/$name.ckpt" --epochs 1 --headless \
        >"$tmp/$name.resume" 2>&1 || fail "$name: resuming failed"
    grep -q "^epoch $((epochs + 1))/$((epochs + 1)) " "$tmp/$name.resume" \
        || fail "$name: resume did not run epoch $((epochs + 1)): $(cat "$tmp/$name.resume")"
done
for name in hup hupheadless; do
    grep -q '^# fmnist: received SIGHUP; training continues without a terminal' \
        "$tmp/$name.csv" || fail "$name: no SIGHUP note in the log"
done
# The summary that the interface prints on exit goes to the log instead.
for name in hup huppaused closed; do
    [ -s "$tmp/$name.status" ] || continue
    grep -Eq "^# fmnist: finished after $epochs of $epochs epochs; training time " \
        "$tmp/$name.csv" || fail "$name: no summary in the log: $(cat "$tmp/$name.csv")"
    grep -Eq '^# fmnist: test accuracy [0-9.]+%' "$tmp/$name.csv" \
        || fail "$name: the summary in the log lacks the test accuracy"
done
grep -q '^# fmnist: received SIGHUP; paused training resumes without a terminal' \
    "$tmp/huppaused.csv" || fail "huppaused: no resume note in the log"
grep -q '^# fmnist: the terminal hung up; training continues' \
    "$tmp/closed.csv" || fail "closed: no hangup note in the log"
echo "group 2 (SIGHUP, closed terminal, resize storm) done"

# ---------------------------------------------------------------- group 3
# Colours: an SGR colour parameter (30-37, 40-47 or 38;5 and 48;5) in the
# captured escape sequences. vt100 has no colours but must still draw.
for term in xterm-256color tmux-256color screen linux vt100; do
    start_wrapped "c-$term" 80 24 env TERM=$term "$fmnist" $fast --epochs 1000
done
for term in xterm-256color tmux-256color screen linux vt100; do
    name=c-$term
    wait_for "$name" 'epoch [0-9]+/1000' 30 || fail "$name: the UI did not appear"
    sleep 0.5
    tm capture-pane -e -p -t "$name" >"$tmp/$name.escapes"
    colours=$(grep -Ec "$(printf '\033')\\[([0-9;]*;)?([34][0-7]|[34]8;5)[;m]" \
        "$tmp/$name.escapes")
    if [ "$term" = vt100 ]; then
        [ "$colours" -eq 0 ] || fail "vt100: colour codes on the screen"
    else
        [ "$colours" -gt 0 ] || fail "$term: no colours"
    fi
    tm send-keys -t "$name" q
done
for term in xterm-256color tmux-256color screen linux vt100; do
    expect_exit "c-$term" 0 20 && expect_sane_tty "c-$term"
done

# A checkpoint with a NaN weight and valid CRCs is damaged, because
# training stops before it saves one: loading it fails with status 1
# before any training, and --save keeps the file as it was.
# The first weight follows the header (CHECKPOINT_HEADER_SIZE, 44 bytes)
# and the spec, whose length is the u32 at offset 12; od reads it in host
# order, which matches the file on little-endian hosts only. gzip's
# trailer starts with the CRC-32 of its input, little-endian, which is
# the CRC the file ends with.
nan=$tmp/nan.ckpt
cp "$tmp/term.ckpt" "$nan"
spec_len=$(od -An -tu4 -j12 -N4 "$nan" | tr -d ' ')
printf '\000\000\300\177' \
    | dd of="$nan" bs=1 seek=$((44 + spec_len)) conv=notrunc 2>/dev/null
size=$(wc -c <"$nan")
head -c $((size - 4)) "$nan" | gzip -c | tail -c 8 | head -c 4 \
    | dd of="$nan" bs=1 seek=$((size - 4)) conv=notrunc 2>/dev/null
cp "$nan" "$tmp/nan.before"
"$fmnist" $fast --load "$nan" --save "$nan" --epochs 1 --headless \
    >"$tmp/nan.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "NaN weight: status $rc, expected 1: $(cat "$tmp/nan.out")"
grep -q "fmnist: --load $nan: invalid parameters: a weight is NaN or infinite" \
    "$tmp/nan.out" || fail "NaN weight: no failure message: $(cat "$tmp/nan.out")"
cmp -s "$nan" "$tmp/nan.before" || fail "NaN weight: the checkpoint was replaced"
echo "group 3 (colours, NaN weight) done"

# ---------------------------------------------------------------- group 4
# A checkpoint write that fails mid-run. Directory permissions cannot
# cause it, because root ignores them, and a full disk needs a mount.
# A file-size limit works for every user. prlimit lowers the soft
# RLIMIT_FSIZE of the running fmnist to 256 kB. That is below the
# checkpoint's size (1.9 MB, most of it the dense1000 layer and its Adam
# moments) and far above what the log reaches, so writing the temporary
# checkpoint fails with EFBIG ("File too large"). fmnist ignores SIGXFSZ,
# which would otherwise kill it. Raising the soft limit again needs no
# privilege. The log must get each failure with its reason and one
# line when saving works again, training must go on, and the checkpoint
# from before must stay as it was.

# count_lines FILE REGEX: prints how many lines of FILE match REGEX, 0
# while FILE does not exist yet.
count_lines() {
    grep -Ec -- "$2" "$1" 2>/dev/null || [ -e "$1" ] || echo 0
}

# wait_lines FILE REGEX COUNT SECONDS: polls until COUNT lines match.
wait_lines() {
    tries=$(($4 * 5))
    while [ "$(count_lines "$1" "$2")" -lt "$3" ] && [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        sleep 0.2
    done
    [ "$(count_lines "$1" "$2")" -ge "$3" ]
}

prlimit_bin=$(command -v prlimit 2>/dev/null)
if [ -z "$prlimit_bin" ]; then
    echo "group 4 skipped: prlimit (util-linux) not found"
else
    csv=$tmp/savefail.csv
    ckpt=$tmp/savefail.ckpt
    failed='^# fmnist: checkpoint not saved: savefail\.ckpt: .*File too large$'
    again='^# fmnist: saved savefail\.ckpt again after [0-9]+ failed attempts?$'
    start_wrapped savefail 80 24 "$fmnist" $fast \
        --model pool2,conv3x3x4,relu,pool2,dense1000,relu,dense10 \
        --epochs 1000 --save savefail.ckpt --log savefail.csv
    wait_file "$ckpt" 30 || fail "savefail: no checkpoint after epoch 1"
    pid=$(pid_of savefail)
    "$prlimit_bin" --pid "$pid" --fsize=262144: \
        || fail "savefail: prlimit could not set the file-size limit"
    if wait_lines "$csv" "$failed" 1 30; then
        # Saves run one at a time, so none can replace the file after the
        # logged failure while the limit holds.
        cp "$ckpt" "$tmp/savefail.before"
        failures_then=$(count_lines "$csv" "$failed")
        epochs_then=$(count_lines "$csv" '^[0-9]')
        wait_lines "$csv" '^[0-9]' $((epochs_then + 2)) 30 \
            || fail "savefail: training stopped after the failed save"
        wait_lines "$csv" "$failed" $((failures_then + 2)) 30 \
            || fail "savefail: later failed saves are not logged: $(cat "$csv")"
        wait_for savefail 'checkpoint not saved' 5 \
            || fail "savefail: the UI does not show the failed save"
        cmp -s "$ckpt" "$tmp/savefail.before" \
            || fail "savefail: the failed saves changed the checkpoint"
        ls "$tmp"/savefail.ckpt.tmp-* >/dev/null 2>&1 \
            && fail "savefail: temporary files left: $(ls "$tmp")"
    else
        fail "savefail: no failed save in the log: $(cat "$csv")"
    fi
    "$prlimit_bin" --pid "$pid" --fsize=unlimited: \
        || fail "savefail: prlimit could not lift the file-size limit"
    wait_lines "$csv" "$again" 1 30 \
        || fail "savefail: the log does not say saving works again: $(cat "$csv")"
    # A few more good saves must not repeat that line.
    epochs_then=$(count_lines "$csv" '^[0-9]')
    wait_lines "$csv" '^[0-9]' $((epochs_then + 3)) 30 \
        || fail "savefail: training did not go on after the recovery"
    [ "$(count_lines "$csv" "$again")" -eq 1 ] \
        || fail "savefail: the recovery is logged more than once: $(cat "$csv")"
    cmp -s "$ckpt" "$tmp/savefail.before" \
        && fail "savefail: no checkpoint written after the recovery"
    tm send-keys -t savefail q
    if expect_exit savefail 0 20; then
        expect_sane_tty savefail
        expect_checkpoint savefail "$ckpt"
    fi
    echo "group 4 (failed checkpoint writes) done"
fi

# expect_retaken NAME WHEN: within 10 s, the pane of session NAME shows
# the whole interface again and none of the shell's lines, and its
# terminal is out of line mode, with keypad mode, mouse reports and a
# hidden cursor.
expect_retaken() {
    tries=50
    while [ "$tries" -gt 0 ]; do
        capture "$1"
        grep -Eq 'epoch [0-9]+/100000' "$tmp/screen" \
            && grep -q ' q quit' "$tmp/screen" \
            && ! grep -Eq 'Stopped|bash-|reset-42|typed-42' "$tmp/screen" \
            && break
        tries=$((tries - 1))
        sleep 0.2
    done
    [ "$tries" -gt 0 ] || fail "$1: the screen was not redrawn $2"
    stty -a <"$(tm display-message -p -t "$1" '#{pane_tty}')" \
        >"$tmp/$1.stty" 2>&1
    grep -Eq '(^| )-icanon( |$)' "$tmp/$1.stty" \
        || fail "$1: the terminal is in line mode $2: $(cat "$tmp/$1.stty")"
    grep -Eq '(^| )-echo( |$)' "$tmp/$1.stty" \
        || fail "$1: the terminal echoes keys $2: $(cat "$tmp/$1.stty")"
    modes=$(tm display-message -p -t "$1" \
        'cursor=#{cursor_flag} keypad=#{keypad_cursor_flag} mouse=#{mouse_any_flag}')
    [ "$modes" = "cursor=0 keypad=1 mouse=1" ] \
        || fail "$1: terminal left with $modes $2"
}

# expect_key_bar_row NAME ROW WHEN: within 10 s, the key bar of the
# pane of session NAME is on row ROW, the last one of a pane resized
# while the shell had the terminal, so the layout follows the new size.
expect_key_bar_row() {
    tries=50
    while [ "$tries" -gt 0 ]; do
        capture "$1"
        row=$(grep -n ' q quit' "$tmp/screen" | cut -d: -f1 | tail -n 1)
        [ "$row" = "$2" ] && return 0
        tries=$((tries - 1))
        sleep 0.2
    done
    fail "$1: the key bar is on row ${row:-none}, not $2, $3"
}

# ---------------------------------------------------------------- group 5
# Ctrl-Z and a key at once, as a fast typist or a paste sends them: the
# shell reads the key while fmnist is stopped. After fg the status must
# change without any further key. The panes run an interactive bash, so
# that Ctrl-Z stops fmnist and fg brings it back. (Without a terminal, as
# under make check in CI, the process group of a test is orphaned, and
# the kernel drops SIGTSTP instead of stopping it.)
if command -v bash >/dev/null 2>&1; then
    tm new-session -d -x 80 -y 24 -s ctrlz \
        "cd '$tmp' && exec bash --norc --noprofile -i"
    tm new-session -d -x 80 -y 24 -s ctrlzh \
        "cd '$tmp' && exec bash --norc --noprofile -i"
    # Each command records its pid through a shell that then becomes
    # fmnist, so that the cleanup signals these processes only.
    record="sh -c 'echo \$\$ >\"\$0.pid\"; exec \"\$@\"'"
    tm send-keys -t ctrlz "$record ctrlz $fmnist $fast --epochs 1000 \
--log ctrlz.csv" Enter
    if wait_for ctrlz 'epoch [0-9]+/1000' 30; then
        tm send-keys -t ctrlz C-z Right
        sleep 2
        tm send-keys -t ctrlz fg Enter
        wait_for ctrlz 'epoch [0-9]+/1000' 10 \
            || fail "ctrlz: the interface did not come back after fg"
        first=$(grep -Eo 'epoch [0-9]+/1000.*batch [0-9]+/[0-9]+' "$tmp/screen")
        sleep 2
        capture ctrlz
        second=$(grep -Eo 'epoch [0-9]+/1000.*batch [0-9]+/[0-9]+' "$tmp/screen")
        [ -n "$first" ] && [ "$first" != "$second" ] \
            || fail "ctrlz: the status stood still after fg: $first"
        tm send-keys -t ctrlz q
        wait_for ctrlz 'fmnist: (stopped|epoch)' 30 \
            || fail "ctrlz: q did not end fmnist"
    else
        fail "ctrlz: the interface did not start from bash"
    fi

    # Stopped for 4 s after its first epoch, the headless run must log a
    # training time at least 3 s under the wall time. Counting the stop
    # would put it within a second of the wall time. It is typed as a
    # plain command, not a list, because bash went on with the rest of a
    # list when Ctrl-Z stopped one of its commands.
    began=$(date +%s.%N)
    tm send-keys -t ctrlzh "$record ctrlzh $fmnist $fast --train-limit \
20000 --headless --epochs 30 --log ctrlzh.csv >ctrlzh.out 2>&1" Enter
    wait_lines "$tmp/ctrlzh.csv" '^[0-9]' 1 30
    tm send-keys -t ctrlzh C-z
    sleep 4
    tm capture-pane -p -t ctrlzh >"$tmp/ctrlzh.screen"
    epochs_then=$(count_lines "$tmp/ctrlzh.csv" '^[0-9]')
    tm send-keys -t ctrlzh fg Enter
    # The wait allows for a machine busy with other work, where 60 s
    # were not enough.
    if wait_lines "$tmp/ctrlzh.csv" '^30,' 1 240; then
        ended=$(date +%s.%N)
        [ "$epochs_then" -lt 30 ] \
            || fail "ctrlzh: all epochs were logged during the stop: $(cat "$tmp/ctrlzh.screen")"
        seconds=$(grep '^30,' "$tmp/ctrlzh.csv" | cut -d, -f6)
        awk -v s="$seconds" -v a="$began" -v b="$ended" \
            'BEGIN { exit !(s != "" && s <= b - a - 3) }' \
            || fail "ctrlzh: logged training time '$seconds' s counts the 4 s stop (wall $began to $ended)"
    else
        fail "ctrlzh: the headless run did not log epoch 30 within 240 s: $(tail -n 3 "$tmp/ctrlzh.out")"
    fi

    # Ctrl-\ through the terminal, so the check covers cbreak mode
    # keeping ISIG. The interactive bash itself ignores SIGQUIT. The
    # rest of the list records the status and the modes. bash puts back
    # the modes of a job that a signal killed, so what shows fmnist's
    # own restoring is the state that tmux reports: the alternate
    # screen, the cursor, the keypad mode and the mouse reports.
    tm new-session -d -x 80 -y 24 -s quit \
        "cd '$tmp' && exec bash --norc --noprofile -i"
    tm send-keys -t quit "$record quit $fmnist $fast --epochs 1000; \
echo exit=\$? >quit.status; stty -a >quit.stty" Enter
    if wait_for quit 'epoch [0-9]+/1000' 30; then
        tm send-keys -t quit 'C-\'
        if expect_exit quit 131 30; then
            expect_sane_tty quit
            grep -Eq '(^| )icrnl( |$)' "$tmp/quit.stty" \
                || fail "quit: icrnl not restored: $(cat "$tmp/quit.stty")"
            modes=$(tm display-message -p -t quit \
                'alt=#{alternate_on} cursor=#{cursor_flag} keypad=#{keypad_cursor_flag} mouse=#{mouse_any_flag}')
            [ "$modes" = "alt=0 cursor=1 keypad=0 mouse=0" ] \
                || fail "quit: terminal left with $modes"
            wait_for quit '^fmnist: quit by signal 3' 5 \
                || fail "quit: no line naming the signal"
        fi
    else
        fail "quit: the interface did not start from bash"
    fi

    # kill %1 sends SIGTERM and SIGCONT to a job that Ctrl-Z stopped.
    # The run must end in the background, saving as on SIGTERM, without
    # an fg. With set -b, bash reports the end of the job at once.
    tm new-session -d -x 80 -y 24 -s killjob \
        "cd '$tmp' && exec bash --norc --noprofile -i"
    tm send-keys -t killjob "set -b" Enter
    tm send-keys -t killjob "$record killjob $fmnist $fast --epochs 1000 \
--save killjob.ckpt" Enter
    if wait_file "$tmp/killjob.ckpt" 30; then
        tm send-keys -t killjob C-z
        wait_for killjob 'Stopped' 10 || fail "killjob: Ctrl-Z did not stop fmnist"
        tm send-keys -t killjob 'kill %1' Enter
        wait_for killjob 'Exit 143' 30 \
            || fail "killjob: kill %1 did not end the stopped interface"
        expect_checkpoint killjob "$tmp/killjob.ckpt"
    else
        fail "killjob: no checkpoint after epoch 1"
    fi

    # SIGSTOP runs no handler, so the interface cannot give the
    # terminal back. bash reports the job stopped and sets its own
    # terminal modes, line mode with echo, which fg leaves in place. In
    # the stopped shell, printf turns off the keypad mode and the mouse
    # reports and shows the cursor, as a program run meanwhile may. After
    # fg the interface must take all of that back, redraw the screen
    # over the shell's lines, and act on p without an Enter. In session
    # sigcont, kill -CONT follows the SIGSTOP, so the run goes on as a
    # background job. It must leave the screen to the shell, and a
    # command typed there must not stop it with SIGTTIN. Then fg must
    # restore the interface in the same way.
    for name in sigstop sigcont; do
        tm new-session -d -x 80 -y 24 -s $name \
            "cd '$tmp' && exec bash --norc --noprofile -i"
        tm send-keys -t $name \
            "$record $name $fmnist $fast --epochs 100000" Enter
    done
    if wait_for sigstop 'epoch [0-9]+/100000' 30 \
        && wait_for sigcont 'epoch [0-9]+/100000' 30; then
        stop_pid=$(pid_of sigstop)
        cont_pid=$(pid_of sigcont)
        kill -STOP "$stop_pid" "$cont_pid"
        wait_for sigstop 'Stopped' 10 || fail "sigstop: bash did not report the stop"
        wait_for sigcont 'Stopped' 10 || fail "sigcont: bash did not report the stop"
        kill -CONT "$cont_pid"

        tm send-keys -t sigstop \
            "printf '\\033[?1l\\033[?1000l\\033[?25h'; echo reset-\$((6 * 7))" \
            Enter
        wait_for sigstop '^reset-42' 10 || fail "sigstop: the shell did not run printf"
        tm resize-window -t sigstop -x 100 -y 30
        tm send-keys -t sigstop fg Enter
        expect_retaken sigstop 'after SIGSTOP and fg'
        expect_key_bar_row sigstop 30 'after a resize while stopped'
        tm send-keys -t sigstop p
        wait_for sigstop '^ paused ' 10 \
            || fail "sigstop: p did not pause without Enter after fg"

        capture sigcont
        cp "$tmp/screen" "$tmp/sigcont.before"
        sleep 1.5
        capture sigcont
        cmp -s "$tmp/screen" "$tmp/sigcont.before" \
            || fail "sigcont: the interface drew in the background"
        tm send-keys -t sigcont "clear; echo typed-\$((6 * 7))" Enter
        wait_for sigcont '^typed-42' 10 \
            || fail "sigcont: the shell did not get the command"
        sleep 1
        state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' \
            "/proc/$cont_pid/status")
        [ "$state" != T ] \
            || fail "sigcont: a key typed in the shell stopped the background run"
        tm resize-window -t sigcont -x 90 -y 28
        tm send-keys -t sigcont fg Enter
        expect_retaken sigcont 'after kill -CONT and fg'
        expect_key_bar_row sigcont 28 'after a resize in the background'
        tm send-keys -t sigcont p
        wait_for sigcont '^ paused ' 10 \
            || fail "sigcont: p did not pause without Enter after fg"

        for name in sigstop sigcont; do
            tm send-keys -t $name q
            wait_for $name 'fmnist: (stopped|epoch)' 30 \
                || fail "$name: q did not end fmnist"
        done
    else
        fail "sigstop: the interface did not start from bash"
    fi

    stop_recorded
    tm kill-session -t ctrlz
    tm kill-session -t ctrlzh
    tm kill-session -t quit
    tm kill-session -t killjob
    tm kill-session -t sigstop
    tm kill-session -t sigcont
    echo "group 5 (Ctrl-Z, Ctrl-\\, kill %1, SIGSTOP) done"
fi

[ "$failures" -eq 0 ] || exit 1
echo "ok"
