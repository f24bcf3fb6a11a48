#!/bin/sh
# Measures what the terminal UI costs in training throughput. Each round
# trains one epoch on the first N training images twice: with --headless,
# and with the UI inside a detached tmux session of 120x40. It prints the
# training images per second of both runs (from --log) and the UI's cost
# in percent of the headless rate. tmux renders the screen on this
# machine, so its CPU time counts against the UI. Over SSH the rendering
# happens on the client, so this errs on the high side.
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
[ -x "$fmnist" ] || { echo "tui_overhead: $fmnist not found; run make first" >&2; exit 1; }

sock=fmnist-overhead-$$
tmp=$(mktemp -d)
trap 'tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
unset TMUX

# Prints the samples_per_sec column of the first epoch line of log $1.
rate() {
    awk -F, 'NR == 2 { print $7 }' "$1"
}

headless() {  # round
    log=$tmp/headless$1.csv
    # shellcheck disable=SC2086
    "$fmnist" --headless --epochs 1 --train-limit "$train" --log "$log" \
        $args >/dev/null 2>&1
    rate "$log"
}

with_ui() {  # round
    log=$tmp/ui$1.csv
    tmux -L "$sock" -f /dev/null new-session -d -x 120 -y 40 -s "ui$1" \
        "'$fmnist' --epochs 1 --train-limit $train --log '$log' $args"
    # The UI stays open after training for exploring; quit once the epoch
    # line is in the log.
    while [ "$(awk 'END { print NR }' "$log" 2>/dev/null || echo 0)" -lt 2 ]; do
        sleep 0.5
    done
    tmux -L "$sock" send-keys -t "ui$1" q
    while tmux -L "$sock" has-session -t "ui$1" 2>/dev/null; do
        sleep 0.2
    done
    rate "$log"
}

printf '%-6s %14s %14s %9s\n' round "headless img/s" "UI img/s" "UI cost"
for round in $(seq "$rounds"); do
    h=$(headless "$round")
    u=$(with_ui "$round")
    cost=$(awk -v h="$h" -v u="$u" 'BEGIN { printf "%.1f%%", 100 * (h - u) / h }')
    printf '%-6s %14s %14s %9s\n' "$round" "$h" "$u" "$cost"
done
