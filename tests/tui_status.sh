#!/bin/sh
# The status pane's messages in tmux on the real data. A message wider
# than its line wraps onto line 2 and 3 without losing words, counting
# CJK characters as two columns. Skipped (exit 77) without tmux or the
# data package.
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
exit 0
