#!/bin/sh
# Measures what the terminal UI costs. Each round trains one epoch on the
# first N training images twice: with --headless, and with the UI inside
# a detached tmux session of 120x40. It prints, for both runs, the
# training images per second (from --log) and the CPU seconds the fmnist
# process used (from /usr/bin/time), and the UI's cost in percent of the
# headless figures. On a busy shared machine the throughput varies by
# more than the UI costs, and the CPU seconds are the steadier measure.
# They leave out tmux, which draws the screen here; over SSH the client's
# terminal does that.
#
# Usage: bench/tui_overhead.sh [ROUNDS] [N] (run from the build directory
# after make). Needs tmux and the data package. Extra fmnist options can
# be passed in FMNIST_ARGS, for example FMNIST_ARGS="--model small".
set -eu

rounds=${1:-3}
train=${2:-20000}
fmnist=${FMNIST:-./fmnist}
args=${FMNIST_ARGS:-}

command -v tmux >/dev/null || { echo "tui_overhead: tmux not found" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "tui_overhead: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
[ -x "$fmnist" ] || { echo "tui_overhead: $fmnist not found; run make first" >&2; exit 1; }

sock=fmnist-overhead-$$
tmp=$(mktemp -d)
trap 'tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
unset TMUX

# Prints the samples_per_sec column of the first epoch line of log $1
# and the user plus system CPU seconds in time output $2.
rate() {
    printf '%s %s\n' "$(awk -F, 'NR == 2 { print $7 }' "$1")" \
        "$(awk '{ print $1 + $2 }' "$2")"
}

# The headless run gets its own session, as tmux gives the UI run one.
# Linux with autogroup scheduling shares the CPU between sessions first,
# so a run in this shell's session would compete with everything else
# started from it and look slower than the UI.
headless() {  # round
    log=$tmp/headless$1.csv
    # shellcheck disable=SC2086
    setsid -w /usr/bin/time -f '%U %S' -o "$tmp/headless$1.time" \
        "$fmnist" --headless --epochs 1 --train-limit "$train" --log "$log" \
        $args >/dev/null 2>&1
    rate "$log" "$tmp/headless$1.time"
}

with_ui() {  # round
    log=$tmp/ui$1.csv
    tmux -L "$sock" -f /dev/null new-session -d -x 120 -y 40 -s "ui$1" \
        "/usr/bin/time -f '%U %S' -o '$tmp/ui$1.time' '$fmnist' --epochs 1 --train-limit $train --log '$log' $args"
    # The UI stays open after training for exploring; quit once the epoch
    # line is in the log.
    while [ "$(awk 'END { print NR }' "$log" 2>/dev/null || echo 0)" -lt 2 ]; do
        sleep 0.5
    done
    tmux -L "$sock" send-keys -t "ui$1" q
    while tmux -L "$sock" has-session -t "ui$1" 2>/dev/null; do
        sleep 0.2
    done
    rate "$log" "$tmp/ui$1.time"
}

printf '%-6s %10s %10s %8s %10s %10s %8s\n' round "headless" "UI" "cost" \
    "headless" "UI" "cost"
printf '%-6s %10s %10s %8s %10s %10s %8s\n' "" "img/s" "img/s" "" \
    "CPU s" "CPU s" ""
for round in $(seq "$rounds"); do
    set -- $(headless "$round") $(with_ui "$round")
    awk -v r="$round" -v hr="$1" -v hc="$2" -v ur="$3" -v uc="$4" 'BEGIN {
        printf "%-6s %10.1f %10.1f %7.1f%% %10.2f %10.2f %7.1f%%\n", r, hr, ur,
            100 * (hr - ur) / hr, hc, uc, 100 * (uc - hc) / hc
    }'
done
