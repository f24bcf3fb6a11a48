#!/bin/sh
# Replays the fuzz targets without libFuzzer, on the seed corpora that
# make_seeds writes and on the inputs in tests/fuzz/regress that once made
# a target fail. A crash, a failed contract check in a target or, in an
# --enable-sanitizers build, a sanitizer report fails the test.
set -u

bin=${FUZZ_BIN:-./tests/fuzz}
src=${top_srcdir:-.}/tests/fuzz
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

"$bin/make_seeds" "$tmp/seeds" || { echo "FAIL: make_seeds"; exit 1; }
status=0
for target in idx checkpoint spec; do
    dirs="$tmp/seeds/$target"
    [ -d "$src/regress/$target" ] && dirs="$dirs $src/regress/$target"
    echo "$target: $dirs"
    # The replay programs take directories; the paths have no spaces.
    # shellcheck disable=SC2086
    "$bin/replay_$target" $dirs || { echo "FAIL: $target"; status=1; }
done
exit $status
