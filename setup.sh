#!/bin/sh
# Sets up fmnist on Debian: installs the missing packages (the compiler,
# autotools, ncurses, zlib, Check, tmux, strace, the locale sources and
# the Fashion-MNIST data), builds the program in this directory and, when run from a
# terminal, starts it.
# Arguments are passed on to fmnist. Use --no-run to build only.
set -eu
cd "$(dirname "$0")"

packages="build-essential autoconf automake pkg-config libncurses-dev
zlib1g-dev check tmux strace locales dataset-fashion-mnist"

missing=""
for pkg in $packages; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

# Warnings and errors go to stderr and still reach the terminal, while
# the progress on stdout is dropped, so the interface starts on a short
# screen. configure still writes config.log, and make V=1 shows the
# compiler commands.
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    echo "setup: running autoreconf"
    autoreconf -fi
fi
if [ ! -f Makefile ]; then
    echo "setup: running ./configure (details in config.log)"
    ./configure --quiet
fi
echo "setup: building ./fmnist"
make -j"$(nproc)" >/dev/null

run=1
if [ "${1:-}" = --no-run ]; then
    run=0
    shift
fi
if [ "$run" -eq 1 ] && [ -t 0 ] && [ -t 1 ]; then
    exec ./fmnist "$@"
fi
if [ "$run" -eq 1 ] && [ "$#" -gt 0 ]; then
    echo "setup: built ./fmnist, but not started, because this is not a" \
        "terminal; run ./fmnist $* in one"
else
    echo "setup: built ./fmnist; run it in a terminal to start training"
fi
