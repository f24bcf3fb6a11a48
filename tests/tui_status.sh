#!/bin/sh
# The status pane's messages in tmux on the real data. A message wider
# than its line wraps onto lines 2 and 3 without losing words, counting
# CJK characters as two columns. It stops before the mark of a pending
# stop, and a path too long for a line is split within the path. Under
# LANG=C, bytes above 127 show as \xHH escapes within the screen's width,
# and a line never ends inside an escape.
# Control characters in a file name, C1 controls included, show
# escaped. A repeated s in a finished run gets a reply, + there leaves
# the rate as it is, and a key-bar reply too long for its line ends in
# "...". A resumed run that fails at once keeps "failed" on line 2, and
# the summary gives the whole reason that the status line cuts.
# Skipped (exit 77) without tmux or the data package.
set -u

tui_test=status
. "$(dirname "$0")/tui_lib.sh"

# ---------------------------------------------------------------- wide
# The message of s while paused takes line 2 after the state word and
# line 3. Read as one text, the two lines must give the whole message.
# Counting code points instead of columns put more words on line 2 than
# fit there, so the screen cut off the words between the two lines.
if [ -n "$utf8" ]; then
    cjk='模型 一 二 三 四 五 六 七 八 九 十 用于 检查 保存 文件 名字 很长 的 例子 测试 显示'
    start wide 80x24 "$utf8" --train-limit 20000 --epochs 2 \
        --save "$tmp/$cjk.ckpt"
    wait_for wide '^ epoch 1/2 ' 30 || fail "wide: training did not start"
    tm send-keys -t wide p
    wait_for wide '^ paused ' 10 || fail "wide: p did not pause"
    tm send-keys -t wide s
    wait_for wide '^ paused +saved ' 10 || fail "wide: s did not save"
    shown=$(sed -n '3,4{s/^ *//;s/ *$//;p}' "$tmp/screen" \
        | sed 's/^paused *//' | tr '\n' ' ')
    case "$shown" in
    "saved $tmp/$cjk.ckpt ") ;;
    *) fail "wide: lines 2 and 3 read \"$shown\"" ;;
    esac
fi

# ---------------------------------------------------------------- stop
# After x, line 3 ends with the mark "stops after epoch 1". A message
# too long for lines 2 and 3 must stop before the mark and end in "...",
# rather than run into it.
words='a checkpoint name that is much longer than the two lines of the status'
words="$words pane at eighty columns, even when line 2 starts at column 1"
start stop 80x24 "${utf8:-C}" --train-limit 20000 --epochs 2 \
    --save "$tmp/$words and ends with THE_END.ckpt"
wait_for stop '^ epoch 1/2 ' 30 || fail "stop: training did not start"
tm send-keys -t stop x p
wait_for stop '^ paused ' 10 || fail "stop: p did not pause"
tm send-keys -t stop s
wait_for stop '^ (paused +)?saved ' 10 || fail "stop: s did not save"
sed -n 4p "$tmp/screen" | grep -Eq '[a-z]\.\.\. +stops after epoch 1 *$' \
    || fail "stop: line 3 does not end in \"... stops after epoch 1\""

# ---------------------------------------------------------------- path
# A path without spaces, too long for line 2, is split within the path:
# "saved" must not stand alone on line 2, and the two lines together
# must give the whole message.
long=$tmp/$(printf '%s' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \
    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx).ckpt
start path 80x24 "${utf8:-C}" --train-limit 20000 --epochs 2 --save "$long"
wait_for path '^ epoch 1/2 ' 30 || fail "path: training did not start"
tm send-keys -t path p
wait_for path '^ paused ' 10 || fail "path: p did not pause"
tm send-keys -t path s
wait_for path '^ (paused +)?saved ' 10 || fail "path: s did not save"
shown=$(sed -n '3,4{s/^ *//;s/ *$//;p}' "$tmp/screen" \
    | sed 's/^paused *//' | tr -d '\n')
[ "$shown" = "saved $long" ] || fail "path: lines 2 and 3 read \"$shown\""

# --------------------------------------------------------------- bytes
# Under LANG=C, curses shows a byte above 127 as an escape of 2 to 4
# columns, such as "~E" or "M-C", which fmnist counted as 1, so the line
# ran past the right edge and went on at the start of the next. The
# bytes must show as \xHH, and lines 2 and 3 must give the whole
# message.
high=$(printf 'caf\303\251%.0s' 1 2 3 4 5)
start bytes 80x24 C --train-limit 20000 --epochs 2 --save "$tmp/$high.ckpt"
wait_for bytes '^ epoch 1/2 ' 30 || fail "bytes: training did not start"
tm send-keys -t bytes p
wait_for bytes '^ paused ' 10 || fail "bytes: p did not pause"
tm send-keys -t bytes s
wait_for bytes '^ (paused +)?saved ' 10 || fail "bytes: s did not save"
shown=$(sed -n '3,4{s/^ *//;s/ *$//;p}' "$tmp/screen" \
    | sed 's/^paused *//' | tr -d '\n')
escaped=$(printf 'caf\\xc3\\xa9%.0s' 1 2 3 4 5)
[ "$shown" = "saved $tmp/$escaped.ckpt" ] \
    || fail "bytes: lines 2 and 3 read \"$shown\""

# --------------------------------------------------------------- split
# A path of bytes above 127 under LANG=C wraps between two escapes. When
# the message was escaped before it was wrapped, line 2 ended in "\" and
# line 3 started with "x9b".
split=$(printf '\233%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)
start split 80x24 C --train-limit 20000 --epochs 2 --save "$tmp/$split.ckpt"
wait_for split '^ epoch 1/2 ' 30 || fail "split: training did not start"
tm send-keys -t split p
wait_for split '^ paused ' 10 || fail "split: p did not pause"
tm send-keys -t split s
wait_for split '^ (paused +)?saved ' 10 || fail "split: s did not save"
sed -n 3p "$tmp/screen" | grep -Eq '\\(x[0-9a-f]?)? *$' \
    && fail "split: line 2 ends inside an escape: $(sed -n 3p "$tmp/screen")"
shown=$(sed -n '3,4{s/^ *//;s/ *$//;p}' "$tmp/screen" \
    | sed 's/^paused *//' | tr -d '\n')
escaped=$(printf '\\x9b%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)
[ "$shown" = "saved $tmp/$escaped.ckpt" ] \
    || fail "split: lines 2 and 3 read \"$shown\""

# ------------------------------------------------------------- controls
# A newline, a tab and ESC in the --save name must show escaped, as the
# --log comments write them, in the status line and in the summary after
# the interface ends. Written raw, ESC [31m turned the text after it red.
ctl=$(printf 'a\nb\tc\033[31md')
start ctl 80x24 "${utf8:-C}" --train-limit 20000 --epochs 2 \
    --save "$tmp/$ctl.ckpt"
wait_for ctl '^ epoch 1/2 ' 30 || fail "ctl: training did not start"
tm send-keys -t ctl p
wait_for ctl '^ paused ' 10 || fail "ctl: p did not pause"
tm send-keys -t ctl s
escaped='a\\nb\\tc\\x1b\[31md\.ckpt'
wait_for ctl "^ saved .*/$escaped\$" 10 \
    || fail "ctl: the status line does not show the name escaped"
tm send-keys -t ctl q
wait_exit ctl
capture_exited ctl
grep -Eq "^fmnist: checkpoint .*/$escaped\$" "$tmp/screen" \
    || fail "ctl: the summary does not show the name escaped"
tm capture-pane -p -e -t ctl -S -30 | grep -q "$(printf '\033')\[31m" \
    && fail "ctl: the name's ESC [31m reached the terminal"

# ------------------------------------------------------------------ c1
# The C1 control U+009B in a UTF-8 name, and the raw byte 0x9b under
# LANG=C, must show escaped too, since some terminals take either as the
# start of a control sequence. Written raw, tmux dropped the byte from
# the summary and showed a blank cell in the status line.
c1_case() {
    start "$1" 80x24 "$2" --train-limit 20000 --epochs 2 \
        --save "$tmp/$1$(printf "$3")b.ckpt"
    wait_for "$1" '^ epoch 1/2 ' 30 || fail "$1: training did not start"
    tm send-keys -t "$1" p
    wait_for "$1" '^ paused ' 10 || fail "$1: p did not pause"
    tm send-keys -t "$1" s
    wait_for "$1" "^ saved .*/$1$4b\\.ckpt\$" 10 \
        || fail "$1: the status line does not show the name escaped"
    tm send-keys -t "$1" q
    wait_exit "$1"
    capture_exited "$1"
    grep -Eq "^fmnist: checkpoint .*/$1$4b\\.ckpt\$" "$tmp/screen" \
        || fail "$1: the summary does not show the name escaped"
}
[ -n "$utf8" ] && c1_case c1utf8 "$utf8" '\302\233' '\\xc2\\x9b'
c1_case c1c C '\233' '\\x9b'

# --------------------------------------------------------------- reply
# A key-bar reply too long for the line before "? help  q quit" must end
# in "...", rather than stop at the edge of its space without a mark.
reply_case() {
    start "$1" 80x24 "$2" --train-limit 2000 --epochs 1 \
        --save "$tmp/$1$(printf 'longname%.0s' 1 2 3 4 5 6 7 8).ckpt"
    wait_for "$1" '^ done ' 60 || fail "$1: training did not finish"
    # An s while the save of the one before is pending saves again, so
    # s repeats until the reply is "already saved to".
    presses=5
    until wait_for "$1" '^ already saved to ' 2; do
        presses=$((presses - 1))
        [ "$presses" -gt 0 ] || fail "$1: s got no \"already saved\" reply"
        tm send-keys -t "$1" s
    done
    grep -Eq '^ already saved to /.*[a-z]\.\.\.  \? help  q quit *$' \
        "$tmp/screen" || fail "$1: the cut reply does not end in \"...\""
    tm send-keys -t "$1" q
    wait_exit "$1"
}
[ -n "$utf8" ] && reply_case replyutf8 "$utf8"
reply_case replyc C

# ---------------------------------------------------------------- again
# Without --save, s in a finished run picks fmnist-2.ckpt when
# fmnist.ckpt exists and says why. A second s must reply that the file
# already has the model, rather than repeat the same "saved" message.
mkdir "$tmp/again" && : >"$tmp/again/fmnist.ckpt" || exit 99
# A new tmux session starts in the current directory. make check sets
# FMNIST to an absolute path.
(cd "$tmp/again" && start again 80x24 "${utf8:-C}" --train-limit 2000 \
    --epochs 1)
wait_for again '^ done ' 60 || fail "again: training did not finish"
tm send-keys -t again s
wait_for again '^ saved fmnist-2\.ckpt \(fmnist\.ckpt exists\)' 10 \
    || fail "again: s does not say why it chose fmnist-2.ckpt"
tm send-keys -t again s
wait_for again '^ already saved to fmnist-2\.ckpt ' 5 \
    || fail "again: a second s got no reply"

# + after the end has no batch to apply to, so its notice must report the
# end, and the status line's rate must stay at the default 0.001.
tm send-keys -t again +
wait_for again '^ training has ended; no batch is left for a new' 5 \
    || fail "again: + after the end did not say that training has ended"
grep -q ' lr 0\.001 *$' "$tmp/screen" \
    || fail "again: + after the end changed the rate in the status line"

# -------------------------------------------------------------- nanload
# A resumed run fails at once when the loaded model gives NaN
# predictions (tests/nan_checkpoint.sh makes such a checkpoint), as
# tests/e2e_headless.sh checks headless. The reason is longer than lines
# 2 and 3 after the state word, but line 2 must keep "failed", and the
# cut text must end in "..." while the summary after q gives all of it.
# The help then lists no key that controls training.
. "$(dirname "$0")/nan_checkpoint.sh"
make_nan_checkpoint "$tmp/nan.ckpt" \
    || fail "nanload: training the dense10 model failed"
(cd "$tmp" && start nanload 80x24 "${utf8:-C}" --load nan.ckpt \
    --save nan.ckpt --epochs 2 --train-limit 2000)
wait_for nanload 'training not started' 60 \
    || fail "nanload: the run did not fail at once"
grep -q '^ failed  *training not started: ' "$tmp/screen" \
    || fail "nanload: line 2 lost the state word \"failed\""
reason=$(sed -n '3,4p' "$tmp/screen" | sed 's/^ failed //; s/^ *//; s/ *$//' \
    | tr '\n' ' ')
expected='^training not started: --load nan\.ckpt already gives NaN '
expected="${expected}predictions for [0-9]+ of 10000 test images: .*\\.\\.\\. \$"
echo "$reason" | grep -Eq "$expected" \
    || fail "nanload: the status shows the reason as '$reason'"
tm send-keys -t nanload '?'
wait_for nanload 'Press any key to close this window' 5 \
    || fail "nanload: ? did not open the help"
if grep -Eq 'stop after this epoch|pause or resume training' "$tmp/screen"; then
    fail "nanload: the help of a failed run lists keys that control training"
fi
tm send-keys -t nanload Escape
tm send-keys -t nanload q
wait_exit nanload 20 1
grep -q 'its weights are too large for them; use an earlier checkpoint$' \
    "$tmp/nanload.err" || fail "nanload: the summary lacks the whole reason"

# ------------------------------------------------------------ firstepoch
# A checkpoint saved within its first epoch has no test curve, but its
# model is trained and tested: exploring it shows that accuracy, not
# "untrained".
start firstsave 80x24 "${utf8:-C}" --train-limit 20000 --epochs 1 \
    --save "$tmp/first.ckpt"
wait_for firstsave ' batch +[1-9][0-9]*/313' 60 \
    || fail "firstepoch: no batch within 60 s"
tm send-keys -t firstsave s
wait_for firstsave 'saved ' 20 || fail "firstepoch: s did not save"
tm send-keys -t firstsave q
wait_exit firstsave
start firstload 80x24 "${utf8:-C}" --load "$tmp/first.ckpt" --epochs 0
wait_for firstload 'test accuracy [0-9.]+%' 60 \
    || fail "firstepoch: the loaded model was not tested"
wait_for firstload 'test acc +no training in this run +[0-9.]+%$' 5 \
    || fail "firstepoch: no test accuracy in the sparkline pane: $(grep 'test acc' "$tmp/screen")"
grep -q 'untrained' "$tmp/screen" \
    && fail "firstepoch: a trained model is called untrained"
tm send-keys -t firstload q
wait_exit firstload
exit 0
