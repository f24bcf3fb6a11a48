# Shared set-up of the tests that run fmnist in tmux, sourced by
# tests/tui.sh, tests/tui_explore.sh, tests/tui_quit.sh, tests/tui_nan.sh,
# tests/tui_status.sh and tests/signals.sh. The sourcing script sets
# tui_test to a short name for its tmux socket first. Sourcing skips the
# test (exit 77) without tmux or the data package, then provides a private
# tmux server and a temporary directory, both removed on exit, and these
# functions:
#
#   tm ARGS...                            runs tmux ARGS on that server
#   start NAME COLSxLINES LOCALE ARGS...  runs fmnist ARGS in a new session
#   wait_for NAME REGEX SECONDS           polls the screen for REGEX
#   capture NAME                          copies the screen to $tmp/screen
#   capture_exited NAME                   the same with the lines scrolled
#                                         off, after fmnist exited
#   wait_exit NAME [SECONDS [STATUS [ACTION]]]
#                                         waits for fmnist to exit and
#                                         checks its status (default 0)
#   fail MESSAGE                          prints MESSAGE and the last screen
#   focus_on NAME TITLE SECONDS           polls until only the pane titled
#                                         TITLE is marked as focused
#
# Each session keeps its pane after fmnist exits, so what fmnist prints
# on the restored terminal can be read with capture.

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

# The tmux socket lives in the test's own directory, so removing that
# directory on exit leaves nothing behind in /tmp/tmux-UID.
tmp=$(mktemp -d) || exit 99
sock=$tmp/tmux-${tui_test:-tui}
trap clean_up EXIT
# dash runs the EXIT trap on exit but not when a signal ends it, so a
# test stopped by Ctrl-C, a CI timeout or a hangup exits from a trap.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# A running tmux client's variable would point commands at that server.
unset TMUX

# -u: the capture is written as UTF-8 whatever this shell's locale is, so
# an ASCII check cannot pass just because tmux replaced the bytes.
tm() {
    "$tmux_bin" -u -S "$sock" -f /dev/null "$@"
}

# Ends what the test started. The hangup from kill-server alone would
# leave fmnist training without a terminal, as it is meant to after a
# hangup, so the process group of each live pane gets SIGTERM first. A
# dead pane's pid may belong to another process by now, so it is skipped.
# Processes a test starts outside tmux, ended by clean_up if still there.
background_pids=

clean_up() {
    for pid in $background_pids; do
        kill -TERM "$pid" 2>/dev/null
    done
    tm list-panes -a -F '#{pane_dead} #{pane_pid}' 2>/dev/null \
        | while read -r dead pid; do
              [ "$dead" = 0 ] && kill -TERM -"$pid" 2>/dev/null
          done
    tm kill-server 2>/dev/null
    rm -rf "$tmp"
}

capture() {
    tm capture-pane -p -t "$1" >"$tmp/screen" 2>/dev/null
}

# When the pane's program ends, tmux writes "Pane is dead" on a new last
# line, which scrolls the top line off the screen into the history.
capture_exited() {
    tm capture-pane -p -S -"$(tm display-message -p -t "$1" '#{pane_height}')" \
        -t "$1" >"$tmp/screen" 2>/dev/null
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

# Starts fmnist with the arguments after $3 in session $1, sized $2
# (COLSxLINES), with locale $3, on the real data. TERM is tmux's own unless
# tui_term names another, and tui_wrap can add environment settings and
# a command that runs fmnist. Standard error goes to $tmp/$1.err, and the
# exit status lands in $tmp/$1.status when the program ends.
start() {
    name=$1
    cols=${2%x*}
    lines=${2#*x}
    locale=$3
    shift 3
    args=
    for arg in "$@"; do
        args="$args '$arg'"
    done
    term=${tui_term:+TERM=$tui_term}
    tm start-server \; set-option -g remain-on-exit on \; \
        new-session -d -x "$cols" -y "$lines" -s "$name" \
        "env $term LANG=$locale LC_ALL=$locale ${tui_wrap:-} '$fmnist' \
         --data '$data' $args 2>'$tmp/$name.err'; \
         echo exit=\$? >'$tmp/$name.status'" \
        || fail "tmux could not start session $name"
}

# Waits up to SECONDS (default 20) for session NAME's fmnist to exit after
# ACTION (default q) ended it, then checks that its exit status is STATUS
# (default 0): wait_exit NAME [SECONDS [STATUS [ACTION]]]. An empty ACTION
# leaves the cause out of the messages. Prints what fmnist wrote to
# standard error. Returns 1 after a failure, for a test whose fail
# returns, as the one of tests/signals.sh does.
wait_exit() {
    wait_seconds=${2:-20}
    wait_status=exit=${3:-0}
    wait_action=${4-q}
    tries=$((wait_seconds * 5))
    while [ ! -s "$tmp/$1.status" ] && [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        sleep 0.2
    done
    if [ ! -s "$tmp/$1.status" ]; then
        wait_after=${wait_action:+ after $wait_action}
        fail "$1: fmnist did not exit within $wait_seconds s$wait_after"
        return 1
    fi
    cat "$tmp/$1.err" 2>/dev/null
    got=$(cat "$tmp/$1.status")
    if [ "$got" != "$wait_status" ]; then
        fail "$1: ${wait_action:-fmnist} gave $got, expected $wait_status"
        return 1
    fi
}

# The titles of the panes that take the focus, as extended regexes: the
# image viewer's ("Test 3/10000", "Mistake 2/2560, image 17", a class's
# "Shirt mistake 1/412" or a cell's "Shirt→T-shirt/top 1/231", and
# "Mistake 2560, image 9876" or "Shi→Tsh #2, image 17" where the list
# length would leave no room for the image number), the confusion
# matrix's, the explorer list's ("Mistakes: 2560, ...", "Shirt mistakes:
# 412, ...", "Cell Shirt→T-shirt/top: 231") and the per-class table's.
viewer_title='(Test|Train|Mistake|[A-Z][A-Za-z/ -]* mistake) [0-9]+(/|, image )|[A-Z][A-Za-z/ -]*(→|->)[A-Z][A-Za-z/ -]* #?[0-9]+(/|, image )'
matrix_title='Confusion: rows true'
list_title='Mistakes: [0-9]+,|[A-Z][A-Za-z/ -]* mistakes: [0-9]+,|Cell |Correct '
classes_title='Per-class metrics'


# Polls the pane of session $1 for at most $3 seconds until the title that
# matches the extended regex $2 starts with the focus mark ">" and no
# other pane title does. A title that does not start the line follows a
# space, which distinguishes the mark from the "->" of ASCII arrows.
focus_on() {
    tries=$(($3 * 5))
    while [ "$tries" -gt 0 ]; do
        capture "$1"
        marks=$(grep -Eo "(^| )>($viewer_title|$matrix_title|$list_title|$classes_title)" \
            "$tmp/screen" | wc -l)
        grep -Eq -- "(^| )>($2)" "$tmp/screen" && [ "$marks" -eq 1 ] \
            && return 0
        tries=$((tries - 1))
        sleep 0.2
    done
    return 1
}

# The viewer's prediction line once the first evaluation is in.
predicted=' pred  [A-Z][A-Za-z/ -]+ +[0-9]+\.[0-9]%'

# A UTF-8 locale, or empty when the system has none.
utf8=C.UTF-8
locale -a 2>/dev/null | grep -Eqi '^c\.utf-?8$' || utf8=
