#!/bin/sh
# Drives the explorer keys and the mouse in a detached tmux session at
# 80x24 on the real data. It covers the mistakes view and its order, Enter
# and a click on a list entry, the wheel, the per-class view, its marks,
# and Enter and a click on a class, and Enter on a confusion cell at
# 120x40 and a click on one at 80x24. It checks which pane has the focus after Enter and after Esc,
# and that the key bar still names the mistakes view then. Then come the
# occlusion overlay and its legend in words, the training images, g and
# an image number, the learning-rate keys, stop after the epoch, the help, which must fit and
# name where 1, 2 and 3 move the focus and stay open through a resize to
# a size too small for it, and the training time, which must
# stand still while training is paused. While paused, s must save, and
# the key bar must stop showing "saving to" when the status shows saved.
# Mouse events are typed into the pane as SGR (mode 1006) sequences, which
# ncurses reads under TERM=xterm-256color. A second run with LANG=C checks
# that the new views and the overlay draw nothing but ASCII. Skipped
# (exit 77) without tmux or the data package.
set -u

tui_test=explore
tui_term=xterm-256color
. "$(dirname "$0")/tui_lib.sh"

# Types a left click (press and release) at 0-based row $2 and column $3
# of session $1 as a terminal reports it, or with $4 = wheel one notch of
# the wheel down, which is reported as a press only.
mouse() {
    if [ "${4:-}" = wheel ]; then
        tm send-keys -t "$1" -l "$(printf '\033[<65;%d;%dM' $(($3 + 1)) \
            $(($2 + 1)))"
        return
    fi
    tm send-keys -t "$1" -l "$(printf '\033[<0;%d;%dM\033[<0;%d;%dm' \
        $(($3 + 1)) $(($2 + 1)) $(($3 + 1)) $(($2 + 1)))"
}

# Types Home or End ($2) into session $1 as xterm does in keypad mode.
# tmux 3.3 sends them as ESC [ 1 ~ and ESC [ 4 ~, which the xterm-256color
# entry does not list, so ncurses would read Esc and three more keys.
xterm_key() {
    case $2 in
    Home) tm send-keys -t "$1" -l "$(printf '\033OH')" ;;
    End) tm send-keys -t "$1" -l "$(printf '\033OF')" ;;
    esac
}

# Trains on 2000 images in session $1 with locale $2, for more epochs
# than the test takes.
start_run() {
    start "$1" 80x24 "$2" --train-limit 2000 --epochs 40 --log "$tmp/$1.csv" \
        --save "$tmp/$1.ckpt"
}

utf8=${utf8:-C}
# The first line of the occlusion legend at 80 columns, and its second
# line when masking cuts the probability by 1 point or more somewhere.
# Nothing but the right pane follows "raises".
legend='^ masking cuts [A-Z][A-Za-z/ -]+ by '
cuts='^ +>[0-9.]+ +>[0-9.]+ points +raises( |$)'

# Steps the viewer of session $1 with Right, for at most 10 images, until
# the legend gives cuts: a confident prediction gets "less than 1 point
# anywhere" instead. Fails when the cuts are written in another way.
find_cuts() {
    for step in 1 2 3 4 5 6 7 8 9 10; do
        wait_for "$1" "$legend" 60 || fail "$1: no occlusion legend within 60 s"
        grep -Eq "$cuts" "$tmp/screen" && return 0
        grep -q '^ less than 1 point anywhere' "$tmp/screen" \
            || fail "$1: the legend does not give the cuts in plain words"
        # The legend belongs to the next image once its title shows.
        title=$(grep -Eo "$viewer_title" "$tmp/screen" | head -n 1)
        tm send-keys -t "$1" Right
        tries=25
        while capture "$1" && grep -qF -- "$title" "$tmp/screen"; do
            tries=$((tries - 1))
            [ "$tries" -gt 0 ] || fail "$1: Right did not leave '$title'"
            sleep 0.2
        done
    done
    fail "$1: masking cuts less than 1 point on 10 images in a row"
}
run_start=$(date +%s)
start_run ui "$utf8"
wait_for ui "$predicted" 60 || fail "no prediction within 60 s"

# Pausing keeps new evaluations from reordering the list under the test.
tm send-keys -t ui p
wait_for ui '^ paused ' 30 || fail "p did not pause training"
paused_from=$(date +%s)

# The training time stops while paused, and the status line marks it.
paused_time() {
    sed -n 's/.* train time \([0-9dhms]*\) (paused) .*/\1/p' "$tmp/screen"
}
wait_for ui ' train time [0-9dhms]+ \(paused\) ' 5 \
    || fail "the training time is not marked as paused"
before=$(paused_time)
sleep 3
capture ui
after=$(paused_time)
[ -n "$before" ] && [ "$before" = "$after" ] \
    || fail "the training time went from '$before' to '$after' while paused"

# ---------------------------------------------------------------- save
# s while paused saves at once. The first screen whose status shows
# "saved" must not still show "saving to" on the key bar. The message of
# the last epoch's save goes first, so that only s can bring "saved".
tries=50
while capture ui && grep -q '^ saved ' "$tmp/screen"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "the last epoch's saved message did not expire"
    sleep 0.2
done
tm send-keys -t ui s
wait_for ui "^ saved $tmp/ui.ckpt" 10 || fail "s did not report the save"
tail -n 1 "$tmp/screen" | grep -q '^ saving to ' \
    && fail "the key bar shows saving while the status shows saved"

# ---------------------------------------------------------------- list
tm send-keys -t ui 2
view_at=$(date +%s)
wait_for ui 'Mistakes: [0-9]+, most confident first' 5 \
    || fail "2 did not show the mistakes list"
# The probability column (last field) must not increase down the list,
# which starts at column 31, right of the image viewer. A capture can land
# while the screen is half redrawn, with the new title over the old
# panes, so the check gets a few more captures before it fails.
list_in_order() {
    cut -c31- "$tmp/screen" | awk '/^ +[0-9]+ +[0-9]+ .*%$/ {
             p = $NF; sub(/%/, "", p); p += 0
             if (n++ && p > last) bad = 1
             last = p
         }
         END { exit (n >= 10 && !bad) ? 0 : 1 }'
}
tries=10
until list_in_order; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] \
        || fail "the mistakes list is not in falling probability order"
    sleep 0.2
    capture ui
done

# Enter moves the focus to the viewer, as Enter on a confusion cell does.
# The viewer's arrow keys then go on walking the list, Up and Down as in
# the list pane as well as Left and Right.
focus_on ui "$list_title" 5 || fail "2 did not give the focus to the list"
tm send-keys -t ui Down Enter
focus_on ui 'Mistake 2/[0-9]+, image [0-9]+ ' 5 \
    || fail "Down Enter did not view entry 2 with the focus on the viewer"
# The title names the image that the list shows as entry 2.
shown=$(sed -n 's/^>Mistake 2\/[0-9]*, image \([0-9]*\) .*/\1/p' "$tmp/screen")
listed=$(cut -c31- "$tmp/screen" | awk '$1 == 2 && NF >= 5 { print $2; exit }')
[ -n "$shown" ] && [ "$shown" = "$listed" ] \
    || fail "the viewer names image '$shown', the list's entry 2 is '$listed'"
tm send-keys -t ui Down
focus_on ui 'Mistake 3/[0-9]+, image [0-9]+ ' 5 \
    || fail "Down in the viewer did not step to entry 3"
tm send-keys -t ui Right Up
wait_for ui '^>Mistake 3/[0-9]+, image [0-9]+ ' 5 \
    || fail "Right Up in the viewer did not come back to entry 3"
shown=$(sed -n 's/^>Mistake 3\/[0-9]*, image \([0-9]*\) .*/\1/p' "$tmp/screen")

# Esc shows all test images, on the image shown, and gives the focus
# back to the list.
tm send-keys -t ui Escape
focus_on ui "$list_title" 5 || fail "Esc did not give the focus back to the list"
wait_for ui "^ Test $shown/10000 " 5 \
    || fail "Esc did not keep image $shown in the viewer"

# The key bar names the view after Enter and Esc, also once the reply to
# 2, which shows the same name for 4 s, has expired.
wait=$((view_at + 6 - $(date +%s)))
[ "$wait" -gt 0 ] && sleep "$wait"
capture ui
tail -n 1 "$tmp/screen" | grep -q '^ mistakes view  Tab pane ' \
    || fail "the key bar does not name the mistakes view after Enter and Esc"

# t gives the viewer the focus wherever it was, so that the arrow keys
# step through the training images and not the list behind them. Enter
# on the list then opens its entry among the test images and says so,
# in place of the reply to t.
tm send-keys -t ui t
focus_on ui 'Train 1/2000 ' 5 || fail "t in the list did not focus the training images"
tm send-keys -t ui Down
focus_on ui 'Train 2/2000 ' 5 || fail "Down after t did not step the training images"
tm send-keys -t ui Up Tab Enter
focus_on ui 'Mistake 3/[0-9]+, image [0-9]+ ' 5 \
    || fail "Enter on the list after t did not view entry 3"
tail -n 1 "$tmp/screen" | grep -q '^ back to the list ' \
    || fail "Enter on the list left the training images without a reply"
tm send-keys -t ui Escape
focus_on ui "$list_title" 5 || fail "Esc did not give the focus back to the list"

# Rows 4 and 5 are the list's title and header, so entry 5 is on row 10.
# A click acts as Enter there, so the viewer takes the focus, and the
# wheel over the list moves 3 entries without taking it back.
mouse ui 10 45
focus_on ui 'Mistake 5/[0-9]+[ ,]' 5 || fail "a click on entry 5 did not view it"
mouse ui 10 45 wheel
focus_on ui 'Mistake 8/[0-9]+[ ,]' 5 || fail "the wheel did not move 3 entries"
# At the last of the thousands of entries, "Mistake 2645/2645, image
# 1234" is too wide for the 28 columns of the title at 80x24. The list
# length goes so that the image number stays.
xterm_key ui End
focus_on ui 'Mistake [0-9]{4}, image [0-9]+ ' 5 \
    || fail "the viewer's title at the last entry lacks the image number"
xterm_key ui Home
focus_on ui 'Mistake 1/[0-9]+[ ,]' 5 || fail "Home did not view entry 1"

# While the viewer walks the list, g takes an entry of the list, as the
# title numbers them, and not one of the 10000 test images.
tm send-keys -t ui g 9
wait_for ui '^ go to entry 9_  Enter go' 5 \
    || fail "the prompt of g in the list does not ask for an entry"
tm send-keys -t ui 9 9 9 9 Enter
wait_for ui '^ no entry 99999: entries are 1 to [0-9]+ ' 5 \
    || fail "g 99999 Enter in the list did not report the entries"
grep -Eq '^>Mistake 1/[0-9]+[ ,]' "$tmp/screen" \
    || fail "g 99999 Enter in the list moved the viewer"

# The help lists the panes that Tab visits in this view, and only those.
tm send-keys -t ui '?'
wait_for ui 'Press any key to close this window' 5 || fail "? did not open the help"
grep -Eq ' Tab/S-Tab +next/previous pane: viewer, list {4}' "$tmp/screen" \
    || fail "help in the mistakes view: $(grep -o 'next/previous pane: [a-z, -]*' "$tmp/screen")"
tm send-keys -t ui Escape
wait_for ui ' \? help  q quit$' 5 || fail "Esc did not close the help"

# ---------------------------------------------------------------- classes
tm send-keys -t ui 3
wait_for ui 'Per-class metrics' 5 || fail "3 did not show the per-class table"
# The reply to a key leaves the keys on the key bar.
grep -q '^ per-class view .* ? help  q quit$' "$tmp/screen" \
    || fail "the view's name took the place of the keys"
cut -c31- "$tmp/screen" \
    | grep -Eq '^ +T-shirt/top +[0-9.]+ +[0-9.]+ +[0-9.]+ +1000$' \
    || fail "no precision, recall, F1 and support row"
grep -Eq ' ![A-Z]' "$tmp/screen" || fail "no class is marked as weakest"

# 3 gives the table the focus, and Tab goes between it and the viewer.
focus_on ui "$classes_title" 5 || fail "3 did not give the focus to the table"
tail -n 1 "$tmp/screen" | grep -Eq ' Tab pane  (↑↓|Up/Down) class ' \
    || fail "the key bar does not offer Tab and the table's keys"
tm send-keys -t ui '?'
wait_for ui 'Press any key to close this window' 5 || fail "? did not open the help"
grep -Eq ' Tab/S-Tab +next/previous pane: viewer, per-class table {4}' "$tmp/screen" \
    || fail "help in the per-class view: $(grep -o 'next/previous pane: [a-z, -]*' "$tmp/screen")"
tm send-keys -t ui Escape
wait_for ui ' \? help  q quit$' 5 || fail "Esc did not close the help"
tm send-keys -t ui Tab
focus_on ui "$viewer_title" 5 || fail "Tab did not move the focus to the viewer"
tm send-keys -t ui Tab
focus_on ui "$classes_title" 5 || fail "Tab did not move the focus back to the table"
# t there gives the focus to the viewer too, and so does t back, to the
# list that Home opened above.
tm send-keys -t ui t
focus_on ui 'Train 1/2000 ' 5 || fail "t in the table did not focus the training images"
tm send-keys -t ui Tab t
focus_on ui 'Mistake 1/[0-9]+, image ' 5 \
    || fail "t in the table did not focus the list in the viewer"
tm send-keys -t ui Tab
focus_on ui "$classes_title" 5 || fail "Tab did not move the focus back to the table"

# Shirt is the fourth class from the end. Enter lists the test images of
# that true class that the network got wrong and shows the first in the
# viewer, which takes the focus. At 80 columns the title shortens the
# class name, and leaves out the list length where that is not enough,
# to keep the image number.
tm send-keys -t ui Down Down
xterm_key ui End
tm send-keys -t ui Up Up Up Enter
focus_on ui 'Shi mistake 1(/[0-9]+)?, image [0-9]+ ' 5 \
    || fail "Enter on Shirt did not move the focus to its mistakes"
grep -Eq '^ true  Shirt +wrong( |$)' "$tmp/screen" \
    || fail "the viewer does not show a misclassified Shirt image"
pred=$(sed -n 's/^ pred  \(.\{11\}\).*/\1/p' "$tmp/screen" | sed 's/ *$//')
[ -n "$pred" ] && [ "$pred" != Shirt ] \
    || fail "the first Shirt mistake is predicted as '$pred'"
tm send-keys -t ui Down
focus_on ui 'Shi mistake 2(/[0-9]+)?, image [0-9]+ ' 5 \
    || fail "Down in the viewer did not step to the class's mistake 2"
grep -Eq '^ true  Shirt +wrong( |$)' "$tmp/screen" \
    || fail "the second image of the Shirt mistakes is not one"

# Esc shows all test images, staying on that image, and gives the focus
# back to the table.
tm send-keys -t ui Escape
focus_on ui "$classes_title" 5 || fail "Esc did not give the focus back to the table"
wait_for ui '^ Test [0-9]+/10000 ' 5 \
    || fail "Esc did not show all test images in the viewer"
grep -Eq '^ true  Shirt +wrong( |$)' "$tmp/screen" \
    || fail "Esc did not keep the Shirt mistake in the viewer"

# Home goes to the first class, T-shirt/top.
xterm_key ui Home
tm send-keys -t ui Enter
focus_on ui 'Tsh mistake 1(/[0-9]+)?, image [0-9]+ ' 5 \
    || fail "Home Enter did not list the T-shirt/top mistakes"
tm send-keys -t ui Escape
focus_on ui "$classes_title" 5 || fail "Esc did not give the focus back to the table"

# Rows 4 and 5 are the table's title and header, so Pullover is on row 8.
# A click there acts as Enter, and Esc comes back to the table.
mouse ui 8 40
focus_on ui 'Pul mistake 1(/[0-9]+)?, image [0-9]+ ' 5 \
    || fail "a click on Pullover did not list its mistakes"
grep -Eq '^ true  Pullover +wrong( |$)' "$tmp/screen" \
    || fail "the click did not show a misclassified Pullover image"
tm send-keys -t ui Escape
focus_on ui "$classes_title" 5 \
    || fail "Esc after the click did not give the focus back to the table"

# ---------------------------------------------------------------- matrix
# At 120x40 the viewer's title has room for the image number. 1 gives the
# matrix the focus, with the cursor on T-shirt/top, T-shirt/top. Two rows
# down and two columns right is the diagonal cell Pullover, Pullover,
# which contains hundreds of images after the first epoch.
tm resize-window -t ui -x 120 -y 40
tm send-keys -t ui 1
focus_on ui "$matrix_title" 5 || fail "1 did not give the focus to the matrix"
tm send-keys -t ui Down Down Right Right Enter
focus_on ui 'Pullover(→|->)Pullover 1/[0-9]+' 5 \
    || fail "Enter on the Pullover/Pullover cell did not move the focus to its images"
tm send-keys -t ui Down Right
wait_for ui '^>Pullover(→|->)Pullover 3/[0-9]+, image [0-9]+ ' 5 \
    || fail "Down Right in the viewer did not step to the cell's image 3"
shown=$(sed -n 's/^>Pullover.*Pullover 3\/[0-9]*, image \([0-9]*\) .*/\1/p' \
    "$tmp/screen")
tm send-keys -t ui Escape
focus_on ui "$matrix_title" 5 || fail "Esc did not give the focus back to the matrix"
wait_for ui "^ Test $shown/10000 " 5 \
    || fail "Esc did not keep image $shown of the cell in the viewer"

# At 80x24 the matrix starts on row 10. The Trouser row is row 13, and its
# Trouser column covers columns 41 to 44. A click acts as Enter.
tm resize-window -t ui -x 80 -y 24
wait_for ui '^ paused ' 5 || fail "the interface did not come back at 80x24"
mouse ui 13 43
focus_on ui 'Tro(→|->)Tro (#1|1/[0-9]+), image [0-9]+ ' 5 \
    || fail "a click on the Trouser/Trouser cell did not list its images"

# ---------------------------------------------------------------- overlay
# The legend names the class in full, as the prediction lines above it
# do, and explains the shading.
tm send-keys -t ui o
wait_for ui "$legend" 90 || fail "o did not draw the occlusion legend within 90 s"
legend_class=$(sed -n 's/^ masking cuts \([A-Z][A-Za-z/ -]*\) by .*/\1/p' \
    "$tmp/screen")
case $legend_class in
T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|"Ankle boot") ;;
*) fail "the legend names '$legend_class', not a full class name" ;;
esac
tm send-keys -t ui Escape
focus_on ui "$matrix_title" 5 || fail "Esc did not give the focus back to the matrix"
tm send-keys -t ui Tab t
wait_for ui '^>Train 1/2000' 5 \
    || fail "t did not switch to the 2000 training images of --train-limit"
wait_for ui "$legend" 30 || fail "no occlusion map for a training image"
grep -Eq "$predicted" "$tmp/screen" \
    || fail "no prediction for a training image with the overlay on"
# Trousers, as in the cell above, are often too clear for a cut of 1
# point, while the first training images are of several classes.
find_cuts ui

# g opens a prompt for an image number, counted as the title counts.
# Backspace takes back a digit, Enter shows the image, a number past the
# end is reported, and Esc closes the prompt where it was.
tm send-keys -t ui g 1 5 0 0 0 BSpace
wait_for ui '^ go to image 1500_  Enter go  Esc cancel' 5 \
    || fail "g did not show the typed number on the key bar"
tm send-keys -t ui Enter
wait_for ui '^>Train 1500/2000' 5 || fail "g 1500 Enter did not show image 1500"
tm send-keys -t ui g 2 5 0 0 Enter
wait_for ui '^ no image 2500: images are 1 to 2000 ' 5 \
    || fail "g 2500 Enter did not report that there are 2000 images"
tm send-keys -t ui g 7 Escape
wait_for ui '^ no image 2500' 5 || fail "Esc did not close the prompt of g"
grep -q '^>Train 1500/2000' "$tmp/screen" || fail "g 7 Esc moved the viewer"

# ---------------------------------------------------------------- control
tm send-keys -t ui +
wait_for ui ' lr 0\.002' 5 || fail "+ did not double the learning rate"
tm send-keys -t ui - -
wait_for ui ' lr 0\.0005' 5 || fail "- did not halve the learning rate"

tm send-keys -t ui '?'
wait_for ui 'occlusion overlay' 5 || fail "? did not list the o key"
# A capture can land while the window is half drawn. Its bottom line is
# drawn last, so the checks below wait for it.
wait_for ui 'Press any key to close this window' 5 \
    || fail "the help window does not fit 80x24"
grep -q 'stop after this epoch' "$tmp/screen" || fail "help lacks the x key"
grep -q '1 focuses the matrix, 2 the list, 3 the table' "$tmp/screen" \
    || fail "help does not say where 1, 2 and 3 move the focus"
grep -q 'Press any key to close this window' "$tmp/screen" \
    || fail "the help window does not fit 80x24"
# Each key column names keys only, so g has a row of its own.
grep -Eq ' Home/End {4}first/last image' "$tmp/screen" \
    || fail "help: the Home/End row mixes in another key"
grep -Eq ' g N Enter {3}image N ' "$tmp/screen" \
    || fail "help: g N Enter has no row of its own"
grep -Eq ' Tab/S-Tab +next/previous pane: viewer, matrix {4}' "$tmp/screen" \
    || fail "help in the training view: $(grep -o 'next/previous pane: [a-z, -]*' "$tmp/screen")"
# A resize keeps the help window open, centred on the new size.
tm resize-window -t ui -x 100 -y 30
sleep 1
capture ui
# The window is 70 columns wide, so at 100 it starts at column 15 and
# its last line's text two columns in.
awk 'index($0, "Press any key to close this window") == 18 { found = 1 }
     END { exit !found }' "$tmp/screen" \
    || fail "a resize closed the help window or left it off centre: $(grep 'Press any key' "$tmp/screen")"
# A size too small for the interface hides the help window, and it shows
# again, centred, once the terminal has room. It used to close.
tm resize-window -t ui -x 30 -y 10
wait_for ui '^terminal too small' 5 || fail "30x10 shows no notice"
tm resize-window -t ui -x 100 -y 30
sleep 1
capture ui
awk 'index($0, "Press any key to close this window") == 18 { found = 1 }
     END { exit !found }' "$tmp/screen" \
    || fail "a resize through 30x10 closed the help window"
tm resize-window -t ui -x 80 -y 24
sleep 1
capture ui
grep -q 'Press any key to close this window' "$tmp/screen" \
    || fail "the help window closed when the terminal went back to 80x24"
# q closes the help like any other key, and does not quit.
tm send-keys -t ui q
sleep 1
capture ui
grep -q 'Press any key to close this window' "$tmp/screen" \
    && fail "q did not close the help window"
grep -q '^ paused ' "$tmp/screen" || fail "q in the help window quit fmnist"

# A wide terminal has room for the save and stop keys too.
tm resize-window -t ui -x 132 -y 43
wait_for ui ' s save  x stop after epoch  \? help  q quit$' 5 \
    || fail "the key bar at 132 columns lacks s or x"
tm resize-window -t ui -x 80 -y 24
wait_for ui '^ paused ' 5 || fail "the interface did not come back at 80x24"

paused_to=$(date +%s)
tm send-keys -t ui x p
wait_for ui 'stops after epoch [0-9]+' 5 || fail "x did not mark the stop"
wait_for ui '^ stopped ' 60 || fail "x did not end training after the epoch"
grep -Eq ' p (pause|resume)| \+/- lr' "$tmp/screen" \
    && fail "the key bar offers pause or lr after x ended training"

tm send-keys -t ui q
wait_exit ui
run_end=$(date +%s)

# The log's seconds leave out the pause, so the last epoch's figure is at
# most the run's wall time minus the part of the pause seen here. The 2 s
# allow for date's whole seconds at both ends.
logged=$(tail -n 1 "$tmp/ui.csv" | cut -d, -f6)
awk -v s="$logged" -v wall=$((run_end - run_start)) \
    -v pause=$((paused_to - paused_from)) \
    'BEGIN { exit !(s != "" && s + 0 <= wall - pause + 2) }' \
    || fail "the log's seconds ($logged) include the pause ($((paused_to - paused_from)) s of a $((run_end - run_start)) s run)"
echo "explorer run ($utf8): ok"

# ---------------------------------------------------------------- ASCII
start_run ascii C
wait_for ascii "$predicted" 60 || fail "LANG=C: no prediction within 60 s"
tm send-keys -t ascii 2 o
wait_for ascii "$legend" 90 || fail "LANG=C: no occlusion legend within 90 s"
tm send-keys -t ascii Tab
find_cuts ascii
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes in the mistakes view"
tm send-keys -t ascii 3
wait_for ascii 'Per-class metrics' 5 || fail "LANG=C: no per-class table"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes in the per-class view"
# Enter on a confusion cell narrows the list to that cell, and 2 then
# lists all mistakes again, as it does without Enter.
tm send-keys -t ascii 1
focus_on ascii "$matrix_title" 5 || fail "LANG=C: 1 did not focus the matrix"
tm send-keys -t ascii Enter
focus_on ascii "$viewer_title" 5 || fail "LANG=C: Enter on a cell did not open it"
tm send-keys -t ascii 2
focus_on ascii 'Mistakes: [0-9]+,' 5 \
    || fail "LANG=C: 2 after Enter on a cell did not list all mistakes"
tm send-keys -t ascii q
wait_exit ascii
echo "ASCII run: ok"

# ---------------------------------------------------------------- vt100
# Without colours the legend's thresholds take the highlights of the
# cells they stand for, because blank samples that are underlined show
# nothing. A vt100 has no dim, so the cells where masking raises the
# probability get reverse and underline, unlike the reverse of the
# largest cuts.
tui_term=vt100
start_run mono C
tui_term=xterm-256color
wait_for mono "$predicted" 60 || fail "vt100: no prediction within 60 s"
tm send-keys -t mono o
find_cuts mono
tm capture-pane -e -p -t mono >"$tmp/escreen" 2>/dev/null
esc=$(printf '\033')
grep -q "${esc}\[7m>[0-9.]*${esc}" "$tmp/escreen" \
    || fail "vt100: the largest cut's threshold is not in reverse"
grep -q "${esc}\[4m>[0-9.]* points${esc}" "$tmp/escreen" \
    || fail "vt100: the smaller cut's threshold is not underlined"
grep -q "${esc}\[4;7mraises${esc}" "$tmp/escreen" \
    || fail "vt100: 'raises' is not in reverse and underline"
tm send-keys -t mono q
wait_exit mono
echo "vt100 run: ok"
