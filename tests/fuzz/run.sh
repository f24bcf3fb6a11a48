#!/bin/sh
# Builds and runs one libFuzzer target against the fmnist loaders.
#
#   tests/fuzz/run.sh TARGET [SECONDS]
#
# TARGET is idx (the IDX reader), checkpoint (the checkpoint loader) or
# spec (the model-spec parser); SECONDS defaults to 600. Everything goes
# to $FUZZ_DIR (default /tmp/fmnist-fuzz): an out-of-tree build of the
# library with clang, -fsanitize=fuzzer-no-link,address,undefined; the
# seed corpora written by make_seeds; the growing corpus in corpus/TARGET;
# crashing inputs in artifacts/TARGET; and the log in TARGET.log, whose
# last lines hold libFuzzer's final statistics (exec count, coverage).
# Needs clang with libFuzzer (Debian: apt-get install clang). One worker
# runs at a time (-jobs=1); set FUZZ_JOBS to run more.
set -eu

target=${1:-}
seconds=${2:-600}
case "$target" in
idx | checkpoint | spec) ;;
*)
    echo "usage: $0 idx|checkpoint|spec [SECONDS]" >&2
    exit 2
    ;;
esac

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fuzz_dir=${FUZZ_DIR:-/tmp/fmnist-fuzz}
jobs=${FUZZ_JOBS:-1}
cc=${CLANG:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-O1 -g -fno-omit-frame-pointer $san"

command -v "$cc" >/dev/null 2>&1 \
    || { echo "$0: $cc not found; install it with: apt-get install clang" >&2; exit 1; }
[ -x "$srcdir/configure" ] \
    || { echo "$0: $srcdir/configure missing; run autoreconf -fi there" >&2; exit 1; }

build=$fuzz_dir/build
mkdir -p "$build" "$fuzz_dir/corpus/$target" "$fuzz_dir/artifacts/$target"

# The library: every module, instrumented for coverage but without
# libFuzzer's main. NDEBUG stays off so assertions count as crashes.
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$srcdir/configure" -q --enable-debug CC="$cc" \
        CFLAGS="$cflags -fsanitize=fuzzer-no-link")
fi
make -s -C "$build" ARFLAGS=cr libfmnist.a

libs="$build/libfmnist.a $(pkg-config --libs ncursesw zlib 2>/dev/null || echo -lncurses -lz) -lm -pthread"
incs="-I$build -I$srcdir/include -I$srcdir/tests/fuzz"
"$cc" $cflags -fsanitize=fuzzer $incs -o "$build/fuzz_$target" \
    "$srcdir/tests/fuzz/fuzz_$target.c" "$srcdir/tests/fuzz/fuzz_file.c" $libs
"$cc" $cflags -fsanitize=fuzzer-no-link $incs -o "$build/make_seeds" \
    "$srcdir/tests/fuzz/make_seeds.c" $libs
"$build/make_seeds" "$fuzz_dir/seeds"

dict=""
[ -f "$srcdir/tests/fuzz/$target.dict" ] && dict="-dict=$srcdir/tests/fuzz/$target.dict"
case "$target" in
spec) max_len=256 ;;
*) max_len=8192 ;;
esac

echo "fuzzing $target for $seconds s; log in $fuzz_dir/$target.log"
# Each target gets its own working directory for libFuzzer's fuzz-N.log.
mkdir -p "$fuzz_dir/work-$target"
cd "$fuzz_dir/work-$target"
rm -f fuzz-*.log
# libFuzzer exits nonzero on a crash; report it instead of stopping here.
set +e
"$build/fuzz_$target" -jobs="$jobs" -workers="$jobs" \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 $dict \
    -artifact_prefix="$fuzz_dir/artifacts/$target/" \
    "$fuzz_dir/corpus/$target" "$fuzz_dir/seeds/$target" \
    >"$fuzz_dir/$target.log" 2>&1
rc=$?
set -e
grep -E "^#[0-9]+\s+DONE|^stat::|ERROR|SUMMARY" "$fuzz_dir/$target.log" || tail -n 20 "$fuzz_dir/$target.log"
ls "$fuzz_dir/artifacts/$target"
exit $rc
