#!/bin/sh
# Drives the terminal UI in a detached tmux session at 80x24 on the real
# data: waits for the panes and the first predictions, steps the image
# viewer, opens a confusion-matrix cell, returns to all images and quits
# with q, which must give exit status 0. A second run with LANG=C must draw
# nothing but ASCII. Skipped (exit 77) without tmux or the data package.
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

sock=fmnist-test-$$
tmp=$(mktemp -d) || exit 99
trap '"$tmux_bin" -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
# A running tmux client's variable would point commands at that server.
unset TMUX

# -u: the capture is written as UTF-8 whatever this shell's locale is, so
# the ASCII check below cannot pass just because tmux replaced the bytes.
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

# Starts fmnist in session $1 with locale $2. The exit status lands in
# $tmp/$1.status when the program ends.
start() {
    tm new-session -d -x 80 -y 24 -s "$1" \
        "env LANG=$2 LC_ALL=$2 '$fmnist' --data '$data' --train-limit 2000 \
         --epochs 2 2>'$tmp/$1.err'; echo exit=\$? >'$tmp/$1.status'" \
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

# ---------------------------------------------------------------- UTF-8
utf8=C.UTF-8
locale -a 2>/dev/null | grep -Eqi '^c\.utf-?8$' || utf8=
if [ -n "$utf8" ]; then
    start ui "$utf8"
    wait_for ui 'Confusion: rows true' 30 || fail "the panes did not appear"
    wait_for ui 'Test 1/10000' 5 || fail "the viewer did not open on 1/10000"
    wait_for ui "$predicted" 60 || fail "no prediction within 60 s"
    grep -q "$(printf '\342\226')" "$tmp/screen" \
        || fail "no UTF-8 block characters in a UTF-8 locale"

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

    tm send-keys -t ui q
    wait_exit ui
    echo "UTF-8 run: ok"
else
    echo "note: no C.UTF-8 locale; only the ASCII run is tested"
fi

# ---------------------------------------------------------------- ASCII
start ascii C
wait_for ascii 'Confusion: rows true' 30 || fail "LANG=C: the panes did not appear"
wait_for ascii "$predicted" 60 || fail "LANG=C: no prediction within 60 s"
nonascii=$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)
[ "$nonascii" -eq 0 ] || fail "LANG=C: $nonascii non-ASCII bytes on the screen"
tm send-keys -t ascii q
wait_exit ascii
echo "ASCII run: ok"
