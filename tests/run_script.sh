#!/bin/sh
# Runs one test script of make check, or skips it (exit 77) in a
# ThreadSanitizer build (--enable-tsan). There every memory access of the
# kernels is instrumented, and training on the real data becomes far too
# slow for make check: the default model trained at 23 images per second
# in tests/tui.sh on a 2-core machine. The unit tests in check_fmnist,
# which cover the trainer's threads, still run.
case "${SAN_CFLAGS:-}" in
*-fsanitize=thread*)
    echo "skip: $1 trains on the real data, too slow under ThreadSanitizer"
    exit 77
    ;;
esac
exec "$@"
