#!/bin/sh
# q during the evaluation at the end of an epoch, in tmux at 80x24 on the
# real data. The evaluation runs to its end first, and a validation split
# of 50,000 images makes it take seconds. Meanwhile the interface must
# stay on the screen with "stopping after the evaluation" and no keys on
# the key bar, rather than leave a blank terminal. Then fmnist must exit
# with status 0, and the summary must count the evaluated epoch. Then keys
# typed while the data loads, which strace slows down, must neither show
# on the terminal nor reach the interface. A resize while the run stops
# must lay the screen out again. Skipped (exit 77) without tmux or the
# data package.
set -u

tui_test=quit
. "$(dirname "$0")/tui_lib.sh"

# The notice and the panes above it, drawn while the evaluation runs.
stopping='^ stopping after the evaluation'
evaluating='^ evaluating '

start quit 80x24 "${utf8:-C}" --train-limit 500 --val 50000 --epochs 3
wait_for quit "$evaluating" 60 || fail "the first evaluation did not start"
tm send-keys -t quit q
wait_for quit "$stopping" 5 || fail "q during the evaluation shows no notice"
# Keys are read and dropped until fmnist exits, so the key bar lists none.
grep -Eq "$stopping"'.*[^ ]' "$tmp/screen" \
    && fail "the key bar lists keys while the run stops: $(grep -E "$stopping" "$tmp/screen")"
grep -q 'Confusion: rows true' "$tmp/screen" \
    || fail "the panes are gone while the evaluation ends"
grep -Eq "$evaluating" "$tmp/screen" \
    || fail "the status does not say that the evaluation goes on"
# No test result is in yet: the matrix shows when it fills, and the
# viewer offers to predict the image with the current weights.
grep -q 'filled at the end of each epoch' "$tmp/screen" \
    || fail "the empty matrix does not say when it fills"
grep -q ' o predicts it now' "$tmp/screen" \
    || fail "the viewer does not offer o before the first evaluation"
grep -q '^ first test results when this evaluation ends' "$tmp/screen" \
    || fail "the status does not say that the first results are coming"
grep -Eq "$evaluating.*img/s" "$tmp/screen" \
    && fail "the evaluation shows the training speed as its own"

# Until fmnist ends the interface, every screen shows the notice and the
# panes. Between ending the interface and printing the summary, the
# screen is empty for a moment, which the summary then ends. The status
# file appears only after the exit. The 120 s cap only catches a hang:
# with the sanitizers on a busy machine the 60,000 images of the
# evaluation have taken over 30 s.
seen=0
while [ ! -s "$tmp/quit.status" ]; do
    capture quit
    grep -q '^fmnist: ' "$tmp/screen" && break
    if ! grep -Eq "$stopping" "$tmp/screen"; then
        grep -q 'Confusion: rows true' "$tmp/screen" \
            && fail "the notice went away before the evaluation ended"
        wait_for quit '^fmnist: ' 2 \
            || fail "the screen went blank before the evaluation ended"
        break
    fi
    seen=$((seen + 1))
    [ "$seen" -lt 600 ] || fail "fmnist did not exit within 120 s of q"
    sleep 0.2
done
wait_exit quit
capture_exited quit
grep -Eq '^fmnist: stopped after 1 of 3 epochs; training time [0-9]' \
    "$tmp/screen" || fail "the summary does not count the evaluated epoch"
# Printed before the data loads, above the interface's screen.
grep -q '^fmnist: loading the data from /' "$tmp/screen" \
    || fail "nothing said that the data was loading before the interface"
echo "q during the evaluation: ok"

# ------------------------------------------- resize while the run stops
# A resize while q waits for the evaluation must lay the panes out at
# the new size, and a size below 80x24 must show the size notice with
# the stop notice in place of "q quits". On one thread the evaluation of
# 60,000 images takes seconds, and the checks end before it does.
start resize 80x24 "${utf8:-C}" --train-limit 500 --val 50000 --epochs 3 \
    --threads 1
wait_for resize "$evaluating" 60 || fail "resize: the evaluation did not start"
tm send-keys -t resize q
wait_for resize "$stopping" 5 || fail "resize: q shows no notice"
tm resize-window -t resize -x 132 -y 43
sleep 0.5
capture resize
sed -n 43p "$tmp/screen" | grep -Eq "$stopping" \
    || fail "resize: the notice is not on line 43 at 132x43"
grep -q 'Confusion: rows true' "$tmp/screen" \
    || fail "resize: the panes are blank at 132x43"
tm resize-window -t resize -x 50 -y 12
wait_for resize '^terminal too small: need 80x24, have 50x12' 5 \
    || fail "resize: a small terminal shows no size notice"
grep -q '^stopping after the evaluation' "$tmp/screen" \
    || fail "resize: the size notice does not say that the run stops"
grep -q 'q quits' "$tmp/screen" \
    && fail "resize: the size notice offers q, which does nothing now"
tm resize-window -t resize -x 80 -y 24
# The run ends after the whole evaluation, which on one thread of a
# sanitizer build takes longer than the usual wait.
wait_exit resize 240
echo "resize while the run stops: ok"

# ------------------------------------------------- keys during the load
# strace delays the opening of the training images by 3 s while keys are
# typed. They must not show on the terminal, and the q among them must
# not reach the interface, which has to stay until a q typed later.
if ! strace -o /dev/null true 2>/dev/null; then
    echo "keys during the load: skipped, strace cannot run here"
    exit 0
fi
# LeakSanitizer cannot run under ptrace, so a sanitizer build turns it
# off for this run.
tui_wrap="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -o /dev/null -P $data/train-images-idx3-ubyte.gz \
    -e trace=openat -e inject=openat:delay_exit=3000000"
start typed 80x24 "${utf8:-C}" --train-limit 500 --epochs 1
tui_wrap=
wait_for typed '^fmnist: loading the data from /' 10 \
    || fail "typed: no line said that the data was loading"
tm send-keys -t typed x y z q
sleep 1
capture typed
grep -q 'xyz' "$tmp/screen" && fail "keys typed during the load were echoed"
wait_for typed 'Confusion: rows true' 30 || fail "typed: the panes did not appear"
sleep 2
capture typed
grep -q 'Confusion: rows true' "$tmp/screen" \
    || fail "a q typed during the load ended the interface"
# Without --save the finished run's model is on no disk, so even at 80
# columns the key bar offers s.
wait_for typed '^ done ' 60 || fail "typed: training did not finish"
sleep 1
capture typed
tail -n 1 "$tmp/screen" | grep -q ' s save ' \
    || fail "the key bar of a finished, unsaved run lacks s: $(tail -n 1 "$tmp/screen")"
tm send-keys -t typed q
wait_exit typed
echo "keys during the load: ok"
