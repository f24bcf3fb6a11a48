#!/bin/sh
# Drives the terminal UI in a detached tmux session at 80x24 on the real
# data. It waits for the panes and the first predictions, checks that the
# matrix labels its rows and columns alike, steps the image viewer, moves
# the focus mark with Tab, opens a confusion-matrix cell and returns to
# all images. After training the key bar must offer no training control,
# and once s has saved, the status must name the file while the key bar
# no longer shows "saving to". A "saved" message must give way to the test
# result. Then q must give exit status 0 and leave a summary of lines
# under 80 columns on the terminal. A run resumed from the checkpoint
# must show predictions before its epoch ends. A run that only explores
# the saved model (--epochs 0) at 132x43 must say so instead of showing a
# speed, label its time as the evaluation's, browse the training images,
# draw the wide occlusion legend, format the rates of the per-class view
# alike and summarise too. An untrained network must say that nothing
# trains, draw every empty cell as a dot and offer no Enter there. A run
# with LANG=C must mark the focus and draw nothing but ASCII, and draw
# each of a few test accuracies three columns wide. A run that
# fails must show the whole reason at 80 columns. A run resumed for its
# last epoch must take p and + while it tests the loaded model. Exploring
# a checkpoint saved within an epoch must tell the curve's last epoch from
# the model's accuracy, and a paused run must keep p on a full key bar.
# Start-up warnings must come whole, one after the other.
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

    # Tab to the matrix, which the title marks, then one row down and one
    # column right, to the diagonal cell Trouser/Trouser. Trial runs of
    # this configuration put over 900 of the 1000 trousers there.
    grep -q '^>Test 2/10000' "$tmp/screen" || fail "the viewer is not marked as focused"
    tm send-keys -t ui Tab
    wait_for ui '>Confusion: rows true' 5 || fail "Tab did not mark the matrix"
    grep -q '^>' "$tmp/screen" && fail "the viewer is still marked after Tab"
    grep -q 'Enter its images' "$tmp/screen" || fail "the key bar lacks Enter"
    # Training may end its last epoch meanwhile, and the new evaluation
    # rebuilds the cell's list. The viewer keeps its image, which can then
    # stand at another position than 1.
    tm send-keys -t ui Down Right Enter
    # At 80 columns the title takes the short class names, which leave
    # room for the image number.
    wait_for ui '^>Tro→Tro (#[0-9]+|[0-9]+/[0-9]+), image [0-9]+ ' 5 \
        || fail "Enter did not restrict the viewer to Trouser→Trouser"
    # At 80 columns the key bar leaves out the least important keys.
    grep -Eq ' Esc all test .* \? help  q quit$' "$tmp/screen" \
        || fail "the key bar lacks Esc, help or quit while browsing a cell"

    # Esc gives the focus back to the matrix.
    tm send-keys -t ui Escape
    wait_for ui '^ Test [0-9]+/10000' 5 || fail "Esc did not return to all images"
    focus_on ui "$matrix_title" 5 || fail "Esc did not give the focus back to the matrix"

    # Once training is done, the key bar offers no training control. The
    # message of the last epoch's save must have given way to the result,
    # so that only s can bring "saved" back.
    wait_for ui '^ done ' 120 || fail "training did not finish within 120 s"
    wait_for ui '^ test accuracy [0-9.]+%' 15 \
        || fail "the last save's message did not give way to the test accuracy"
    grep -Eq ' p pause| \+/- lr' "$tmp/screen" \
        && fail "the key bar offers pause or lr after training ended"

    # After training, s saves at once. The status names the file, and the
    # key bar no longer shows "saving to" it. A message such as "saved"
    # expires, and the result shows again.
    tm send-keys -t ui s
    wait_for ui "^ saved $tmp/ui.ckpt" 10 || fail "s did not report the save"
    tail -n 1 "$tmp/screen" | grep -q '^ saving to ' \
        && fail "the key bar shows saving while the status shows saved"
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
    awk '/^fmnist: / && length($0) >= 80 { bad = 1 } END { exit bad }' \
        "$tmp/screen" || fail "a summary line is 80 columns or wider"
    grep -Eq '^fmnist: test accuracy [0-9]+\.[0-9]{2}%, test loss' \
        "$tmp/screen" || fail "the summary lacks the test accuracy"
    grep -qxF "fmnist: checkpoint $tmp/ui.ckpt" "$tmp/screen" \
        || fail "the summary lacks the checkpoint"
    grep -qxF "fmnist: log $tmp/ui.csv" "$tmp/screen" \
        || fail "the summary lacks the log"
    echo "UTF-8 run: ok"

    # ------------------------------------------------------------ resume
    # A resumed run evaluates the loaded network first, so predictions
    # show while its first epoch has only begun.
    cp "$tmp/ui.ckpt" "$tmp/resume.ckpt"
    start resume 80x24 "$utf8" --load "$tmp/resume.ckpt" --epochs 1
    wait_for resume "$predicted" 30 || fail "resume: no prediction within 30 s"
    grep -Eq '^ epoch 3/3 .* batch [0-9]+/938$' "$tmp/screen" \
        || fail "resume: the status does not show epoch 3 of 3"
    batch=$(sed -n 's/^ epoch 3\/3 .* batch \([0-9]*\)\/938$/\1/p' "$tmp/screen")
    [ "$batch" -lt 938 ] \
        || fail "resume: the predictions came only after the epoch's $batch batches"
    grep -Eq '^ test accuracy [0-9]+\.[0-9]{2}% .*\(loaded model\)$' \
        "$tmp/screen" \
        || fail "resume: the status does not give the loaded network's accuracy"
    # Without --save, s writes the --load file and training goes on, so
    # the summary after q must report that the file has an earlier model.
    tm send-keys -t resume s
    wait_for resume "^ saved $tmp/resume.ckpt" 10 || fail "resume: s did not save"
    sleep 1
    tm send-keys -t resume q
    wait_exit resume
    capture_exited resume
    grep -Eq '^fmnist: it holds an earlier model, after 2 epochs and [0-9]+ batch(es)?$' \
        "$tmp/screen" || fail "resume: the summary does not say that the checkpoint is older"
    # Stopped within the epoch, the run finished none of its own, and its
    # only evaluation was of the network as loaded.
    if grep -q '^fmnist: stopped in epoch 3 of 3; training time' "$tmp/screen"; then
        grep -qxF 'fmnist: 2 epochs were loaded, and this run finished none' \
            "$tmp/screen" \
            || fail "resume: the summary does not say that no epoch finished"
        grep -qxF 'fmnist: measured on the network as loaded, not on the final network' \
            "$tmp/screen" \
            || fail "resume: the summary does not say whose test accuracy it gives"
    fi
    echo "resume: ok"

    # Explored, that checkpoint from within epoch 3 marks its accuracy as
    # the loaded model's: the test curve ends at epoch 2.
    start midexplore 80x24 "$utf8" --load "$tmp/resume.ckpt" --epochs 0
    wait_for midexplore '^ test accuracy [0-9.]+%.*\(loaded model\)$' 60 \
        || fail "exploring a checkpoint from within an epoch did not mark its accuracy"
    # When the loaded model's accuracy differs from the curve's last
    # point, the sparkline row names that point's epoch before the value.
    # The two can round to the same 0.01%, and then no note is shown.
    pct='[0-9]+\.[0-9]{2}%'
    if grep -Eq " test acc .*%.* $pct\$" "$tmp/screen"; then
        grep -Eq " test acc .* epoch 2 $pct, now +$pct\$" "$tmp/screen" \
            || fail "midexplore: the test accuracy row does not name epoch 2"
    fi
    # At 132x43 the max beside the curve is never below the value shown.
    tm resize-window -t midexplore -x 132 -y 43
    wait_for midexplore ' max [0-9.]+% ' 5 \
        || fail "midexplore: no max beside the test accuracy at 132x43"
    awk '/ test acc / { value = $NF + 0; at = NR }
         at && NR == at + 1 { for (i = 1; i < NF; i++)
                                  if ($i == "max") max = $(i + 1) + 0 }
         END { exit !(at && max >= value) }' "$tmp/screen" \
        || fail "midexplore: the test accuracy's max is below its value"
    tm send-keys -t midexplore q
    wait_exit midexplore

    # ------------------------------------------------------------ link
    # A --load symbolic link without --save: s saves to the link's
    # target, and the link stays.
    ln -s resume.ckpt "$tmp/link.ckpt"
    target=$(realpath "$tmp/resume.ckpt")
    touch -d '2000-01-01 00:00:00 UTC' "$tmp/resume.ckpt"
    start link 80x24 "$utf8" --load "$tmp/link.ckpt" --epochs 1
    wait_for link "$predicted" 30 || fail "link: no prediction within 30 s"
    tm send-keys -t link s
    wait_for link "^ saved $target" 10 || fail "link: s did not save to the target"
    tm send-keys -t link q
    wait_exit link
    capture_exited link
    grep -q "every save failed" "$tmp/screen" \
        && fail "link: the summary says every save failed"
    [ -L "$tmp/link.ckpt" ] || fail "link: the link was replaced"
    [ "$(stat -c %Y "$tmp/resume.ckpt")" != 946684800 ] \
        || fail "link: the target was not written"
    echo "link: ok"

    # ------------------------------------------------------------ recipe
    # Resuming the best network without --preset warns, on the status
    # line, that the run lacks the preset's recipe. Its two lines leave
    # the state word in view. The warning stays past the seconds a
    # message lasts, and then goes by itself, since it covers the speed,
    # times and test result: a run in which no key is pressed must show
    # them at its end. In a second run a key takes the warning away at
    # once. Then the message of trainer_create about the optimizer gets
    # its turn, which used to push the warning to the terminal that
    # curses then covered.
    "$fmnist" --data "$data" --headless --model best --epochs 1 \
        --train-limit 200 --save "$tmp/best.ckpt" >/dev/null 2>&1 \
        || fail "recipe: training the best network failed"
    # Every field that the warning can list differs from the preset's,
    # and the file name is longer than the preset's. The status line
    # shows the short form, which must fit its two lines at 80 columns
    # without the "..." of a cut, and the summary repeats the full
    # warning once.
    cp "$tmp/best.ckpt" "$tmp/best-run.ckpt"
    (cd "$tmp" && start recipe 80x24 "$utf8" --load best-run.ckpt \
        --epochs 1 --train-limit 200 --optimizer sgd --schedule step \
        --weight-decay 0 --shift 2)
    wait_for recipe 'add --preset best if it trained the loaded model$' 30 \
        || fail "recipe: no warning on the status line, or a cut one"
    sed -n 3p "$tmp/screen" | grep -Eq '^ (evaluating|training) +this run.s schedule, weight decay, flips and shifts differ' \
        || fail "recipe: the warning hides the state word: $(sed -n 3p "$tmp/screen")"
    sed -n 3,4p "$tmp/screen" | grep -q '\.\.\.' \
        && fail "recipe: the warning is cut"
    sleep 7
    capture recipe
    grep -q 'add --preset best if it trained the loaded model' "$tmp/screen" \
        || fail "recipe: the warning went within 7 seconds"
    # The run may end while the warning is still shown.
    wait_for recipe '^ done .*train time' 40 \
        || fail "recipe: the times did not come back without a key"
    grep -q 'add --preset best if it trained the loaded model' "$tmp/screen" \
        && fail "recipe: the warning is still there at the end"
    tm send-keys -t recipe q
    wait_exit recipe
    tm capture-pane -p -J -t recipe -S -30 >"$tmp/joined" 2>/dev/null
    [ "$(grep -c '^fmnist: warning: --load best-run.ckpt has model best, but this run has a step schedule, no weight decay, no flips and shifts up to 2 px; add --preset best if that preset trained it$' "$tmp/joined")" -eq 1 ] \
        || fail "recipe: the summary does not repeat the warning once: $(cat "$tmp/joined")"

    (cd "$tmp" && start recipekey 80x24 "$utf8" --load best-run.ckpt \
        --epochs 1 --train-limit 200 --optimizer sgd)
    wait_for recipekey 'add --preset best if it trained the loaded model' 30 \
        || fail "recipe: no warning on the status line of the second run"
    tm send-keys -t recipekey Right
    wait_for recipekey 'was trained with adam, so' 5 \
        || fail "recipe: a key did not replace the warning with the next message"
    tm send-keys -t recipekey q
    wait_exit recipekey

    # A read-only copy adds a second warning. It gets the status line,
    # whole, after the first, and the summary repeats both.
    mkdir "$tmp/ro2" && cp "$tmp/best.ckpt" "$tmp/ro2/best-ro.ckpt" \
        && chmod a-w "$tmp/ro2/best-ro.ckpt" || exit 99
    (cd "$tmp/ro2" && start recipero 80x24 "$utf8" --load best-ro.ckpt \
        --epochs 1 --train-limit 200 --optimizer sgd)
    wait_for recipero 'add --preset best if it trained the loaded model' 30 \
        || fail "recipe: no preset warning before the read-only one"
    tm send-keys -t recipero Right
    wait_for recipero 'FILE chooses the file$' 5 \
        || fail "recipe: a key did not bring the whole read-only warning: $(sed -n 3,4p "$tmp/screen")"
    grep -q 'best-ro\.ckpt is read-only, so s saves to a new file such as' "$tmp/screen" \
        || fail "recipe: the read-only warning is not whole: $(sed -n 3,4p "$tmp/screen")"
    tm send-keys -t recipero Right
    wait_for recipero 'was trained with adam, so' 5 \
        || fail "recipe: a second key did not bring the next message"
    tm send-keys -t recipero q
    wait_exit recipero
    tm capture-pane -p -J -t recipero -S -30 >"$tmp/joined" 2>/dev/null
    [ "$(grep -c '^fmnist: warning: best-ro\.ckpt is read-only' "$tmp/joined")" -eq 1 ] \
        || fail "recipe: the summary does not repeat the read-only warning once: $(cat "$tmp/joined")"
    grep -q '^fmnist: warning: --load best-ro\.ckpt has model best' "$tmp/joined" \
        || fail "recipe: the summary lost the preset warning: $(cat "$tmp/joined")"
    echo "recipe: ok"

    # --------------------------------------------------------- lastepoch
    # A run resumed for its last epoch tests the loaded model first. Its
    # state is "evaluating" then, as after the last epoch, but a batch
    # follows, so + must change the rate for it and p must pause before
    # it. Both keys go in one command while the test runs, on one thread
    # so that it takes about a second. The state word must leave two
    # columns before the field after it.
    (cd "$tmp" && start lastepoch 80x24 "$utf8" --load best.ckpt \
        --preset best --epochs 1 --train-limit 200 --threads 1)
    wait_for lastepoch 'testing the loaded model' 30 \
        || fail "lastepoch: the loaded model was not tested"
    grep -q '^ evaluating  train time ' "$tmp/screen" \
        || fail "lastepoch: \"evaluating\" runs into the field after it"
    # The preset's schedule sets the rate, so the test reads it.
    lr=$(sed -n 's/^ evaluating .* lr \([0-9.e-]*\) *$/\1/p' "$tmp/screen")
    [ -n "$lr" ] || fail "lastepoch: no learning rate during the test"
    tm send-keys -t lastepoch + p
    wait_for lastepoch '^ pausing after this evaluation ' 5 \
        || fail "lastepoch: p during the loaded model's test did not pause"
    # Until the run pauses, p takes the request back, and the key bar
    # shows that ("p cancel pause", then "p resume").
    if grep -Eq ' p pause( |$)' "$tmp/screen"; then
        fail "lastepoch: the key bar offers p pause with a pause pending"
    fi
    wait_for lastepoch '^ paused ' 30 \
        || fail "lastepoch: the run did not pause after the test"
    grep -q 'batch 0/' "$tmp/screen" \
        || fail "lastepoch: the run paused after a batch, not before the first"
    paused_lr=$(sed -n 's/^ paused .* lr \([0-9.e-]*\) *$/\1/p' "$tmp/screen")
    awk -v a="$lr" -v b="$paused_lr" \
        'BEGIN { d = b - 2 * a; exit !(b != "" && d * d < 1e-3 * a * a) }' \
        || fail "lastepoch: + during the test gave rate $paused_lr, not 2 x $lr"
    tm send-keys -t lastepoch x
    wait_for lastepoch '^ this is the last epoch; training stops after it' 5 \
        || fail "lastepoch: x in the last epoch did not say it is the last"
    tm send-keys -t lastepoch p
    wait_for lastepoch '^ done ' 60 || fail "lastepoch: the run did not finish"
    tm send-keys -t lastepoch q
    wait_exit lastepoch
    echo "lastepoch: ok"

    # A test accuracy of one point is a mark in the middle of the tall
    # sparkline at 120x40, not a column that reads as a maximum, and the
    # min and max lines, which would both repeat it, are left out. The
    # glyphs are alternatives, not a bracket expression, because awk may
    # match a bracket byte by byte, and the UTF-8 glyphs share bytes.
    start onepoint 120x40 "$utf8" --load "$tmp/best.ckpt" --epochs 0
    wait_for onepoint '^ done ' 60 || fail "onepoint: the evaluation did not finish"
    awk '/test acc / { at = index($0, "test acc "); left = 6 }
         left > 0 { part = substr($0, at); left--
                    if (part ~ /(max|min) /) minmax++
                    if (part ~ /─|-/) marks++
                    if (part ~ /█|▁|▂|▃|▄|▅|▆|▇|:/) columns++ }
         END { exit (marks == 1 && !columns && !minmax) ? 0 : 1 }' \
        "$tmp/screen" || fail "onepoint: the test accuracy is not one mark"
    tm send-keys -t onepoint q
    wait_exit onepoint
    echo "onepoint: ok"

    # ------------------------------------------------------------ busy
    # s without --save takes the lock of the --load file. While a headless
    # run saves to that file, s saves to a fresh name in the session's
    # directory instead and names that run. Later saves go there too.
    cp "$tmp/ui.ckpt" "$tmp/busy.ckpt"
    "$fmnist" --data "$data" --load "$tmp/busy.ckpt" --save "$tmp/busy.ckpt" \
        --train-limit 200 --epochs 100000 --headless >/dev/null \
        2>"$tmp/headless.err" &
    busy_pid=$!
    background_pids="$background_pids $busy_pid"
    (cd "$tmp" && start busy 132x43 "$utf8" --load "$tmp/busy.ckpt" --epochs 1)
    wait_for busy "$predicted" 30 || fail "busy: no prediction within 30 s"
    tm send-keys -t busy s
    wait_for busy "^ saved fmnist\.ckpt \($tmp/busy\.ckpt is in use by fmnist pid $busy_pid\)" 10 \
        || fail "busy: s did not save elsewhere and name the other run"
    kill -TERM "$busy_pid"
    wait "$busy_pid"
    [ -s "$tmp/fmnist.ckpt" ] || fail "busy: no fmnist.ckpt in the session's directory"
    tm send-keys -t busy q
    wait_exit busy
    [ ! -e "$tmp/busy.ckpt.lock" ] && [ ! -e "$tmp/fmnist.ckpt.lock" ] \
        || fail "busy: a lock file is left"
    echo "busy: ok"

    # ------------------------------------------------------------ readonly
    # A read-only --load file, such as a model shared with a class, is
    # never replaced. The status line warns of it from the start, and s
    # saves to a fresh name in the session's directory.
    mkdir "$tmp/ro" && cp "$tmp/ui.ckpt" "$tmp/ro/shared.ckpt" \
        && chmod a-w "$tmp/ro/shared.ckpt" || exit 99
    (cd "$tmp/ro" && start readonly 132x43 "$utf8" --load shared.ckpt --epochs 1)
    wait_for readonly 'shared\.ckpt is read-only, so s saves to a new file such as fmnist\.ckpt; --save FILE chooses the file' 30 \
        || fail "readonly: no warning that s cannot save to the --load file"
    wait_for readonly "$predicted" 30 || fail "readonly: no prediction within 30 s"
    tm send-keys -t readonly s
    wait_for readonly '^ saved fmnist\.ckpt \(shared\.ckpt is read-only\)' 20 \
        || fail "readonly: s did not save to fmnist.ckpt and say why"
    cmp -s "$tmp/ui.ckpt" "$tmp/ro/shared.ckpt" \
        || fail "readonly: the read-only --load file changed"
    [ -s "$tmp/ro/fmnist.ckpt" ] || fail "readonly: no fmnist.ckpt in the session's directory"
    tm send-keys -t readonly q
    wait_exit readonly
    echo "readonly: ok"

    # ------------------------------------------------------------ explore
    start explore 132x43 "$utf8" --load "$tmp/ui.ckpt" --epochs 0
    wait_for explore 'explore only, model trained 2 epochs' 30 \
        || fail "--epochs 0 did not say it only explores"
    grep -Eq 'img/s|batch 0/0|ETA' "$tmp/screen" \
        && fail "--epochs 0 shows a training speed, batch or ETA"
    wait_for explore '^ done ' 90 || fail "the evaluation did not finish"
    grep -Eq '^ done +evaluation time [0-9dhms]+ ' "$tmp/screen" \
        || fail "--epochs 0 does not say that the time is the evaluation's"
    grep -q '(loaded model)' "$tmp/screen" \
        && fail "an end-of-epoch checkpoint's accuracy is marked as the loaded model's"
    grep -Eq ' p pause| \+/- lr' "$tmp/screen" \
        && fail "the key bar offers pause or lr without training"
    # Nothing trains, so s must not rewrite the loaded checkpoint: its
    # time stamp stays where this sets it.
    touch -d '2000-01-01 00:00:00 UTC' "$tmp/ui.ckpt"
    tm send-keys -t explore s
    wait_for explore 'nothing new to save' 5 \
        || fail "s with --epochs 0 did not say there is nothing to save"
    sleep 1
    [ "$(stat -c %Y "$tmp/ui.ckpt")" = 946684800 ] \
        || fail "s with --epochs 0 rewrote the loaded checkpoint"

    # The training images load for the viewer without training too.
    tm send-keys -t explore t
    wait_for explore '^>Train 1/60000' 5 || fail "t did not show training images"
    tm send-keys -t explore o
    wait_for explore 'masking a patch cuts the [A-Z][A-Za-z/ -]+ probability by' 30 \
        || fail "o did not draw the wide occlusion legend"
    grep -Eq '^ +over [0-9.]+ points +over [0-9.]+ points +raises it instead|^ less than 1 point anywhere' \
        "$tmp/screen" || fail "the wide legend does not give the cuts in words"
    tm send-keys -t explore o Escape

    # View 1 also has a precision row at this size, so the wait is for the
    # per-class table, which only view 3 has. 1 focuses the matrix, and 3
    # must move the focus to the table even though the matrix stays.
    tm send-keys -t explore 1 3
    wait_for explore 'Per-class metrics' 5 || fail "3 did not show the per-class table"
    focus_on explore "$classes_title" 5 \
        || fail "1 then 3 did not focus the table: $(grep -o '>[A-Z][a-z]*' "$tmp/screen" | head -1)"
    grep -q 'precision %' "$tmp/screen" \
        || fail "3 did not show the matrix with its precision row"
    tm send-keys -t explore '?'
    wait_for explore 'Press any key to close this window' 5 \
        || fail "? did not open the help"
    grep -Eq ' Tab/S-Tab +next/previous pane: viewer, per-class table, matrix {4}' \
        "$tmp/screen" \
        || fail "help in the per-class view: $(grep -o 'next/previous pane: [a-z, -]*' "$tmp/screen")"
    # Nothing trains, so the help lists no key that controls training.
    grep -Eq '(\||│) (\+  -|x|p|s) {6,}' "$tmp/screen" \
        && fail "help with --epochs 0 lists + - x p or s"
    grep -q 'quit (training stops)' "$tmp/screen" \
        && fail "help with --epochs 0 says q stops training"
    tm send-keys -t explore Escape

    # At this height the mistakes view has the matrix below the list, and
    # Tab goes down the screen from the list to the matrix.
    tm send-keys -t explore 2
    focus_on explore "$list_title" 5 || fail "2 did not focus the list"
    grep -q "$matrix_title" "$tmp/screen" \
        || fail "the mistakes view at 132x43 lacks the matrix"
    tm send-keys -t explore Tab
    focus_on explore "$matrix_title" 5 \
        || fail "Tab from the list did not focus the matrix below it"
    tm send-keys -t explore '?'
    wait_for explore 'Press any key to close this window' 5 \
        || fail "? did not open the help"
    grep -Eq ' Tab/S-Tab +next/previous pane: viewer, list, matrix {4}' "$tmp/screen" \
        || fail "help in the mistakes view: $(grep -o 'next/previous pane: [a-z, -]*' "$tmp/screen")"
    tm send-keys -t explore Escape
    # The sparklines are the last pane of the per-class view on screen, so
    # the view is whole once they show.
    tm send-keys -t explore 3
    wait_for explore 'Loss and accuracy' 5 || fail "3 did not show the per-class view again"

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

    # ------------------------------------------------------------ untrained
    start untrained 80x24 "$utf8" --epochs 0
    wait_for untrained 'explore only, untrained network' 30 \
        || fail "--epochs 0 without --load did not say the network is untrained"
    wait_for untrained '^ done ' 60 || fail "untrained: the evaluation did not finish"
    grep -q 'untrained; no training runs' "$tmp/screen" \
        || fail "untrained: the sparklines do not say that nothing trains"
    grep -Eq 'waiting for the first|at the end of (each )?epoch' "$tmp/screen" \
        && fail "untrained: a hint waits for training that never runs"

    # Every empty cell, on the diagonal too, is a dot. The cursor goes to
    # the first empty cell, where Enter has nothing to show.
    tm send-keys -t untrained Tab
    wait_for untrained '>Confusion: rows true' 5 || fail "untrained: Tab did not focus the matrix"
    awk '/Confusion: rows true/ { at = index($0, "Confusion"); t = NR; next }
         t && NR > t + 1 && NR <= t + 11 {
             n = split(substr($0, at), f)
             for (i = 2; i <= 11 && i <= n; i++) {
                 if (f[i] == "0") zero = 1
                 if (f[i] == "." && !found) { found = 1; print NR - t - 2, i - 2 }
             }
         }
         END { exit zero }' "$tmp/screen" >"$tmp/empty" \
        || fail "untrained: a zero count is not drawn as a dot"
    read -r row col <"$tmp/empty" || fail "untrained: no empty matrix cell"
    while [ "$row" -gt 0 ]; do tm send-keys -t untrained Down; row=$((row - 1)); done
    while [ "$col" -gt 0 ]; do tm send-keys -t untrained Right; col=$((col - 1)); done
    wait_for untrained '→[A-Za-z/ -]+: 0 *$' 5 || fail "untrained: the cursor is not on an empty cell"
    grep -Eq 'Enter shows them|Enter its images' "$tmp/screen" \
        && fail "untrained: Enter is offered on an empty cell"
    tm send-keys -t untrained q
    wait_exit untrained
    echo "untrained run: ok"
else
    echo "note: no C.UTF-8 locale; only the ASCII run is tested"
fi

# ---------------------------------------------------------------- ASCII
# Enough epochs that the run still trains while p is tested.
start ascii 80x24 C --train-limit 2000 --epochs 30
wait_for ascii 'Confusion: rows true' 30 || fail "LANG=C: the panes did not appear"
wait_for ascii "$predicted" 60 || fail "LANG=C: no prediction within 60 s"
# At 80x24 each sparkline has one row, drawn with the glyphs " _-=#" only,
# each higher in the cell than the one before. Glyphs such as "." and "_"
# would sit at the same height for different levels.
sed -nE 's/.* (train loss|train acc|test acc) +([^ ](.*[^ ])?) +[0-9.]+%?$/\2/p' \
    "$tmp/screen" >"$tmp/sparks"
[ "$(wc -l <"$tmp/sparks")" -eq 3 ] || fail "LANG=C: not three sparklines"
grep -n '[^ _=#-]' "$tmp/sparks" \
    && fail "LANG=C: a sparkline has glyphs outside the ramp \" _-=#\""
# Once the trainer has paused, the key bar drops its "pausing after" reply.
tm send-keys -t ascii p
wait_for ascii '^ paused ' 20 || fail "LANG=C: p did not pause the run"
sleep 0.5
capture ascii
tail -n 1 "$tmp/screen" | grep -q 'pausing after' \
    && fail "LANG=C: the key bar still says pausing after the run paused"
tm send-keys -t ascii p
wait_for ascii '^ training ' 10 || fail "LANG=C: p did not resume the run"
# A second p before the batch ends takes the pause back.
tm send-keys -t ascii p p
sleep 1
capture ascii
grep -q '^ paused ' "$tmp/screen" && fail "LANG=C: p p left the run paused"
tm send-keys -t ascii Tab
wait_for ascii '>Confusion: rows true' 5 || fail "LANG=C: Tab did not mark the matrix"
grep -q '^ Test 1/10000' "$tmp/screen" || fail "LANG=C: the viewer is still marked"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes on the screen"
# While paused, the key bar keeps "p resume" even when the notice of o
# and the matrix's keys leave room for little else.
tm send-keys -t ascii p
wait_for ascii '^ paused ' 20 || fail "LANG=C: p did not pause the run again"
tm send-keys -t ascii o
wait_for ascii '^ occlusion overlay on ' 5 || fail "LANG=C: o gave no notice"
tail -n 1 "$tmp/screen" | grep -q ' p resume ' \
    || fail "LANG=C: the key bar of a paused run lacks p resume"
tm send-keys -t ascii q
wait_exit ascii
echo "ASCII run: ok"

# With ASCII glyphs each point of a short series takes three columns, so
# the test accuracies of two epochs read as two steps such as "___###",
# not as the two characters "_#".
start fewpoints 80x24 C --model dense10 --train-limit 2000 --epochs 2
wait_for fewpoints '^ done ' 60 || fail "fewpoints: the run did not finish"
spark=$(sed -nE 's/.* test acc +([^ ]+) +[0-9.]+%$/\1/p' "$tmp/screen")
echo "$spark" | grep -Eq '^(___###|###___|======)$' \
    || fail "fewpoints: two test accuracies drawn as '$spark', expected '___###'"
tm send-keys -t fewpoints q
wait_exit fewpoints
echo "fewpoints: ok"

# ---------------------------------------------------------------- failed
# A deep linear stack at --lr 9.9 gets a NaN loss within a few batches.
# The reason is wider than 80 columns, so it takes the speed's line too,
# and lines 3 and 4 of the screen must hold all of it.
start failed 80x24 C --train-limit 2000 \
    --model dense256,dense256,dense256,dense10 --optimizer sgd --lr 9.9
wait_for failed '^ failed ' 60 || fail "failed: the run did not fail"
reason=$(sed -n '3,4p' "$tmp/screen" | sed 's/^ failed //; s/^ *//; s/ *$//' \
    | tr '\n' ' ')
expected='^training stopped: the loss of batch [0-9]+ in epoch 1 is NaN; '
expected="${expected}try a lower learning rate \$"
echo "$reason" | grep -Eq "$expected" \
    || fail "failed: the status shows the reason as '$reason'"
# A failed run exits with status 1.
tm send-keys -t failed q
wait_exit failed 20 1
echo "failed run: ok"
