#!/bin/sh
# Drives the terminal UI in a detached tmux session at 80x24 on the real
# data. It waits for the panes and the first predictions, checks that the
# matrix labels its rows and columns alike, steps the image viewer, opens
# a confusion-matrix cell and returns to all images. Then a "saved"
# message must give way to the test result, and q must give exit status 0
# and leave a summary on the terminal. A run that only
# explores the saved model (--epochs 0) at 132x43 must say so instead of
# showing a speed, format the rates of the per-class view alike and
# summarise too. A last run with LANG=C must draw nothing but ASCII.
# Skipped (exit 77) without tmux or the data package.
set -u

tui_test=test
. "$(dirname "$0")/tui_lib.sh"

# Prints the column labels (the first line) and the row labels (the
# second) of the confusion matrix on the captured screen, found below its
# title wherever the pane is.
matrix_labels() {
    awk '/Confusion: rows true/ { at = index($0, "Confusion"); t = NR; next }
         t && NR == t + 1 { n = split(substr($0, at), f)
                            for (i = 1; i <= 10 && i <= n; i++)
                                cols = cols (i > 1 ? " " : "") f[i] }
         t && NR > t + 1 && NR <= t + 11 { split(substr($0, at), f)
                                           rows = rows (rows ? " " : "") f[1] }
         END { print cols; print rows }' "$tmp/screen"
}

# ---------------------------------------------------------------- UTF-8
if [ -n "$utf8" ]; then
    start ui 80x24 "$utf8" --train-limit 2000 --epochs 2 \
        --save "$tmp/ui.ckpt" --log "$tmp/ui.csv"
    wait_for ui 'Confusion: rows true' 30 || fail "the panes did not appear"
    wait_for ui 'Test 1/10000' 5 || fail "the viewer did not open on 1/10000"
    wait_for ui "$predicted" 60 || fail "no prediction within 60 s"
    grep -q "$(printf '\342\226')" "$tmp/screen" \
        || fail "no UTF-8 block characters in a UTF-8 locale"

    # At 80 columns the rows take the columns' abbreviations.
    matrix_labels >"$tmp/labels"
    short=$(sed -n 1p "$tmp/labels")
    [ "$(echo "$short" | wc -w)" -eq 10 ] \
        || fail "the matrix header has no 10 class labels: '$short'"
    [ "$(sed -n 2p "$tmp/labels")" = "$short" ] \
        || fail "row labels '$(sed -n 2p "$tmp/labels")' differ from column labels '$short'"

    tm send-keys -t ui Right
    wait_for ui 'Test 2/10000' 5 || fail "Right did not show image 2/10000"

    # Tab to the matrix, then one row down and one column right, to the
    # diagonal cell Trouser/Trouser. Trial runs of this configuration put
    # over 900 of the 1000 trousers there.
    tm send-keys -t ui Tab
    wait_for ui 'Enter its images' 5 || fail "Tab did not focus the matrix"
    tm send-keys -t ui Down Right Enter
    wait_for ui ' Trouser→Trouser 1/[0-9]+' 5 \
        || fail "Enter did not restrict the viewer to Trouser→Trouser"

    tm send-keys -t ui Escape
    wait_for ui ' Test [0-9]+/10000' 5 || fail "Esc did not return to all images"

    # A message such as "saved" expires, and the result shows again.
    wait_for ui '^ done ' 120 || fail "training did not finish within 120 s"
    tm send-keys -t ui s
    wait_for ui "^ saved $tmp/ui.ckpt" 10 || fail "s did not report the save"
    wait_for ui '^ test accuracy [0-9.]+%' 15 \
        || fail "the saved message did not give way to the test accuracy"

    # q restores the terminal and leaves a summary on it.
    tm send-keys -t ui q
    wait_exit ui
    capture_exited ui
    grep -q 'Confusion: rows true' "$tmp/screen" \
        && fail "the interface is still on the screen after q"
    grep -Eq '^fmnist: finished after 2 of 2 epochs; training time [0-9]' \
        "$tmp/screen" || fail "the summary lacks the epochs and the time"
    grep -Eq '^fmnist: test accuracy [0-9]+\.[0-9]{2}%, test loss' \
        "$tmp/screen" || fail "the summary lacks the test accuracy"
    grep -qxF "fmnist: checkpoint $tmp/ui.ckpt" "$tmp/screen" \
        || fail "the summary lacks the checkpoint"
    grep -qxF "fmnist: log $tmp/ui.csv" "$tmp/screen" \
        || fail "the summary lacks the log"
    echo "UTF-8 run: ok"

    # ------------------------------------------------------------ explore
    start explore 132x43 "$utf8" --load "$tmp/ui.ckpt" --epochs 0
    wait_for explore 'explore only, model trained 2 epochs' 30 \
        || fail "--epochs 0 did not say it only explores"
    grep -Eq 'img/s|batch 0/0|ETA' "$tmp/screen" \
        && fail "--epochs 0 shows a training speed, batch or ETA"
    wait_for explore '^ done ' 90 || fail "the evaluation did not finish"
    tm send-keys -t explore 3
    wait_for explore 'precision %' 5 \
        || fail "3 did not show the matrix with its precision row"

    # Every rate of the per-class table and the matrix below it has one
    # decimal unless it is 100, and the % sign is only in the labels: the
    # precision row, the recall column and the table alike.
    awk '/Per-class metrics/ { at = index($0, "Per-class") }
         /Loss and accuracy/ { at = 0 }
         at && /precision %/ { n = split(substr($0, index($0, "precision %") + 11), f)
                               for (i = 1; i <= n; i++) if (f[i] !~ /^([0-9]?[0-9]\.[0-9]|100)$/) bad = 1
                               rows++ }
         at && / recall %$/ { recall = NR }
         recall && NR > recall && NR <= recall + 10 {
             if ($NF !~ /^([0-9]?[0-9]\.[0-9]|100)$/) bad = 1 }
         at && substr($0, at) ~ /[0-9]%/ { bad = 1 }
         END { exit (rows == 1 && n == 10 && recall && !bad) ? 0 : 1 }' \
        "$tmp/screen" || fail "the rates at 132 columns differ in format"

    # The columns keep the abbreviations of 80 columns; the rows have room
    # for the full names.
    matrix_labels >"$tmp/labels"
    [ "$(sed -n 1p "$tmp/labels")" = "$short" ] \
        || fail "the 132-column header '$(sed -n 1p "$tmp/labels")' differs from '$short'"
    sed -n 2p "$tmp/labels" | grep -q '^T-shirt/top Trouser ' \
        || fail "the rows lack the full class names at 132 columns"

    tm send-keys -t explore q
    wait_exit explore
    capture_exited explore
    grep -q '^fmnist: explored a model trained 2 epochs' "$tmp/screen" \
        || fail "the summary of --epochs 0 lacks the epochs trained"
    echo "explore-only run: ok"
else
    echo "note: no C.UTF-8 locale; only the ASCII run is tested"
fi

# ---------------------------------------------------------------- ASCII
start ascii 80x24 C --train-limit 2000 --epochs 2
wait_for ascii 'Confusion: rows true' 30 || fail "LANG=C: the panes did not appear"
wait_for ascii "$predicted" 60 || fail "LANG=C: no prediction within 60 s"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes on the screen"
tm send-keys -t ascii q
wait_exit ascii
echo "ASCII run: ok"
