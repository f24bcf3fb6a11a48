#!/bin/sh
# Sets up fmnist on Debian: installs the missing packages (the compiler,
# autotools, ncurses, zlib, Check, tmux, strace, the locale sources and
# the Fashion-MNIST data), builds the program in this directory and, when
# run from a terminal, starts it. It prints its steps and the errors only.
# Arguments are passed on to fmnist. Use --no-run to build only; it
# ignores any arguments after it.
set -eu
cd "$(dirname "$0")"

packages="build-essential autoconf automake pkg-config libncurses-dev
zlib1g-dev check tmux strace locales dataset-fashion-mnist"

missing=""
for pkg in $packages; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
        | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get -qq update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y \
        $missing >/dev/null
fi

# Warnings and errors go to stderr and still reach the terminal, while
# the progress on stdout is dropped, so the interface starts on a short
# screen. configure still writes config.log, and make V=1 shows the
# compiler commands. autoreconf reports each file it installs on stderr,
# so its output is kept in a file and shown only when it fails.
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    echo "setup: running autoreconf"
    log=$(mktemp)
    if ! autoreconf -fi >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup: autoreconf failed" >&2
        exit 1
    fi
    rm -f "$log"
fi
if [ ! -f Makefile ]; then
    echo "setup: running ./configure (details in config.log)"
    ./configure --quiet
fi
echo "setup: building ./fmnist"
make -j"$(nproc)" >/dev/null

# Writes each argument as " WORD", quoted for a POSIX shell as fmnist's
# own commands are: bare when it uses only letters, digits and _./,:=+-@%,
# or else in single quotes with each ' written as '\''.
# NOTE: the command substitutions drop newlines at the end of an argument.
quote_words() {
    for word in "$@"; do
        case $word in
            '' | *[!A-Za-z0-9_./,:=+@%-]*)
                printf " '%s'" "$(printf '%s' "$word" | sed "s/'/'\\\\''/g")"
                ;;
            *)
                printf ' %s' "$word"
                ;;
        esac
    done
}

run=1
if [ "${1:-}" = --no-run ]; then
    run=0
    shift
    if [ "$#" -gt 0 ]; then
        echo "setup: --no-run builds only, so these arguments are" \
            "ignored:$(quote_words "$@")"
    fi
fi
if [ "$run" -eq 1 ] && [ -t 0 ] && [ -t 1 ]; then
    exec ./fmnist "$@"
fi
if [ "$run" -eq 1 ] && [ "$#" -gt 0 ]; then
    echo "setup: built ./fmnist, but did not start it, because this is"
    echo "setup: not a terminal; run this in one:"
    printf '  ./fmnist%s\n' "$(quote_words "$@")"
else
    echo "setup: built ./fmnist; run it in a terminal to start training"
fi
