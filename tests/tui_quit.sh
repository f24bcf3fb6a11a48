#!/bin/sh
# q during the evaluation at the end of an epoch, in tmux at 80x24 on the
# real data. The evaluation runs to its end first, and a validation split
# of 50,000 images makes it take seconds. Meanwhile the interface must
# stay on the screen with "stopping after the evaluation" on the key bar,
# rather than leave a blank terminal. Then fmnist must exit with status
# 0, and the summary must count the evaluated epoch. Skipped (exit 77)
# without tmux or the data package.
set -u

tui_test=quit
. "$(dirname "$0")/tui_lib.sh"

# The notice and the panes above it, drawn while the evaluation runs.
stopping='^ stopping after the evaluation '
evaluating='^ evaluating '

start quit 80x24 "${utf8:-C}" --train-limit 500 --val 50000 --epochs 3
wait_for quit "$evaluating" 60 || fail "the first evaluation did not start"
tm send-keys -t quit q
wait_for quit "$stopping" 5 || fail "q during the evaluation shows no notice"
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
