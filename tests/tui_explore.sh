#!/bin/sh
# Drives the explorer keys and the mouse in a detached tmux session at
# 80x24 on the real data. It covers the mistakes view and its order, Enter
# and a click on a list entry, the wheel, the per-class view and its
# marks, a click on a confusion cell, the occlusion overlay, the training
# images, the learning-rate keys, stop after the epoch and the help. Mouse
# events are typed into the pane as SGR (mode 1006) sequences, which
# ncurses reads under TERM=xterm-256color. A second run with LANG=C checks
# that the new views and the overlay draw nothing but ASCII. Skipped
# (exit 77) without tmux or the data package.
set -u

data=/usr/share/datasets/fashion-mnist
fmnist=${FMNIST:-./fmnist}
tmux_bin=${TMUX_BIN:-}
[ -n "$tmux_bin" ] || tmux_bin=$(command -v tmux 2>/dev/null)

if [ -z "$tmux_bin" ]; then
    echo "skip: tmux not found"
    exit 77
fi
if [ ! -f "$data/t10k-labels-idx1-ubyte.gz" ]; then
    echo "skip: $data not found (apt-get install dataset-fashion-mnist)"
    exit 77
fi

sock=fmnist-explore-$$
tmp=$(mktemp -d) || exit 99
trap '"$tmux_bin" -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
unset TMUX

tm() {
    "$tmux_bin" -u -L "$sock" -f /dev/null "$@"
}

capture() {
    tm capture-pane -p -t "$1" >"$tmp/screen" 2>/dev/null
}

fail() {
    echo "FAIL: $*"
    if [ -s "$tmp/screen" ]; then
        echo "last screen:"
        cat "$tmp/screen"
    fi
    exit 1
}

# Polls the pane of session $1 until the extended regex $2 matches a line,
# for at most $3 seconds.
wait_for() {
    tries=$(($3 * 5))
    while [ "$tries" -gt 0 ]; do
        capture "$1"
        grep -Eq -- "$2" "$tmp/screen" && return 0
        tries=$((tries - 1))
        sleep 0.2
    done
    return 1
}

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

start() {
    tm new-session -d -x 80 -y 24 -s "$1" \
        "env TERM=xterm-256color LANG=$2 LC_ALL=$2 '$fmnist' --data '$data' \
         --train-limit 2000 --epochs 40 2>'$tmp/$1.err'; \
         echo exit=\$? >'$tmp/$1.status'" \
        || fail "tmux could not start session $1"
}

wait_exit() {
    tries=100
    while [ ! -s "$tmp/$1.status" ] && [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        sleep 0.2
    done
    [ -s "$tmp/$1.status" ] || fail "$1: fmnist did not exit after q"
    cat "$tmp/$1.err"
    [ "$(cat "$tmp/$1.status")" = "exit=0" ] \
        || fail "$1: q gave $(cat "$tmp/$1.status"), expected exit=0"
}

predicted=' pred  [A-Z][A-Za-z/ -]+ +[0-9]+\.[0-9]%'

utf8=C.UTF-8
locale -a 2>/dev/null | grep -Eqi '^c\.utf-?8$' || utf8=C
start ui "$utf8"
wait_for ui "$predicted" 60 || fail "no prediction within 60 s"

# Pausing keeps new evaluations from reordering the list under the test.
tm send-keys -t ui p
wait_for ui '^ paused ' 30 || fail "p did not pause training"

# ---------------------------------------------------------------- list
tm send-keys -t ui 2
wait_for ui 'Mistakes: [0-9]+, most confident first' 5 \
    || fail "2 did not show the mistakes list"
# The probability column (last field) must not increase down the list,
# which starts at column 31, right of the image viewer.
cut -c31- "$tmp/screen" | awk '/^ +[0-9]+ +[0-9]+ .*%$/ {
         p = $NF; sub(/%/, "", p); p += 0
         if (n++ && p > last) bad = 1
         last = p
     }
     END { exit (n >= 10 && !bad) ? 0 : 1 }' \
    || fail "the mistakes list is not in falling probability order"

tm send-keys -t ui Down Enter
wait_for ui '^ Mistakes 2/[0-9]+ ' 5 || fail "Down Enter did not view entry 2"

# Rows 4 and 5 are the list's title and header; entry 5 is on row 10.
mouse ui 10 45
wait_for ui '^ Mistakes 5/[0-9]+ ' 5 || fail "a click on entry 5 did not view it"
mouse ui 10 45 wheel
wait_for ui '^ Mistakes 8/[0-9]+ ' 5 || fail "the wheel did not move 3 entries"

# ---------------------------------------------------------------- classes
tm send-keys -t ui 3
wait_for ui 'Per-class metrics' 5 || fail "3 did not show the per-class table"
cut -c31- "$tmp/screen" \
    | grep -Eq '^ +T-shirt/top +[0-9.]+ +[0-9.]+ +[0-9.]+ +1000$' \
    || fail "no precision, recall, F1 and support row"
grep -Eq ' ![A-Z]' "$tmp/screen" || fail "no class is marked as weakest"

# ---------------------------------------------------------------- matrix
# In the training view the matrix starts on row 10; the Trouser row is
# row 13 and its Trouser column covers columns 41 to 44.
tm send-keys -t ui 1
wait_for ui 'Confusion: rows true' 5 || fail "1 did not show the training view"
mouse ui 13 43
wait_for ui '^ Trouser(→|->)Trouser 1/[0-9]+' 5 \
    || fail "a click on the Trouser/Trouser cell did not list its images"

# ---------------------------------------------------------------- overlay
tm send-keys -t ui o
wait_for ui 'occlusion of [A-Z]' 30 || fail "o did not draw the occlusion legend"
tm send-keys -t ui Escape
sleep 0.2
tm send-keys -t ui t
wait_for ui '^ Train 1/60000' 5 || fail "t did not switch to training images"
wait_for ui 'occlusion of [A-Z]' 30 \
    || fail "no occlusion map for a training image"
grep -Eq "$predicted" "$tmp/screen" \
    || fail "no prediction for a training image with the overlay on"

# ---------------------------------------------------------------- control
tm send-keys -t ui +
wait_for ui ' lr 0\.002' 5 || fail "+ did not double the learning rate"
tm send-keys -t ui - -
wait_for ui ' lr 0\.0005' 5 || fail "- did not halve the learning rate"

tm send-keys -t ui '?'
wait_for ui 'occlusion overlay' 5 || fail "? did not list the o key"
grep -q 'stop after this epoch' "$tmp/screen" || fail "help lacks the x key"
tm send-keys -t ui Escape

tm send-keys -t ui x p
wait_for ui 'stops after epoch [0-9]+' 5 || fail "x did not mark the stop"
wait_for ui '^ done ' 60 || fail "x did not end training after the epoch"

tm send-keys -t ui q
wait_exit ui
echo "explorer run ($utf8): ok"

# ---------------------------------------------------------------- ASCII
start ascii C
wait_for ascii "$predicted" 60 || fail "LANG=C: no prediction within 60 s"
tm send-keys -t ascii 2 o
wait_for ascii 'occlusion of [A-Z]' 30 || fail "LANG=C: no occlusion legend"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes in the mistakes view"
tm send-keys -t ascii 3
wait_for ascii 'Per-class metrics' 5 || fail "LANG=C: no per-class table"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes in the per-class view"
tm send-keys -t ascii q
wait_exit ascii
echo "ASCII run: ok"
