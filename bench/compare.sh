#!/bin/sh
# Trains the reference networks "small" and "tf" with fmnist's benchmark
# and with PyTorch (Debian's python3-torch, on OpenBLAS) alternately on this
# machine, and prints training images per second and their ratio for 1 and
# 2 threads. Shared machines are noisy, so compare the ratios of one run.
#
# Each fmnist figure is one epoch through the trainer at exactly that
# thread count (fmnist-bench --only-threads --throughput-only).
#
# Usage: bench/compare.sh [--avx2] [ROUNDS] (run from the build directory
# after make bench). Needs: apt-get install python3-torch python3-numpy,
# and the PyTorch script, by default ../shared/bench/pytorch_fmnist.py next
# to the source tree (set PYTORCH_SCRIPT to override).
#
# --avx2 limits both programs to AVX2 and FMA on a CPU that also has
# AVX-512: fmnist through FMNIST_GEMM=avx2, PyTorch's oneDNN convolutions
# through ONEDNN_MAX_CPU_ISA=AVX2 and its OpenBLAS through
# OPENBLAS_CORETYPE=Haswell. The run then approximates an AVX2 machine.
set -eu

usage() {  # status
    cat <<'EOF'
usage: bench/compare.sh [--avx2] [ROUNDS]
Trains "small" and "tf" for one epoch of 10,000 images with fmnist-bench
and with PyTorch, alternately, ROUNDS times (default 1), on 1 and 2
threads, and prints images per second and their ratio. Run it from the
build directory after make bench.
  --avx2   limit both programs to AVX2 and FMA
Environment: PYTORCH_SCRIPT, the PyTorch training script (default
../shared/bench/pytorch_fmnist.py beside the source tree); FMNIST_BENCH,
the benchmark (default ./bench/fmnist-bench); OPENBLAS_DIR, where Debian's
libopenblas0-openmp is unpacked for PyTorch (default /tmp/fmnist-openblas;
apt-get download fetches it there on the first run).
EOF
    exit "$1"
}

isa=
rounds=
for arg in "$@"; do
    case $arg in
    --avx2) isa=avx2 ;;
    -h | --help) usage 0 ;;
    -*) echo "compare: unknown option $arg" >&2; usage 2 >&2 ;;
    '' | *[!0-9]* | 0*)
        echo "compare: ROUNDS must be a whole number from 1, not '$arg'" >&2
        usage 2 >&2 ;;
    *)
        [ -z "$rounds" ] || { echo "compare: more than one ROUNDS given" >&2; usage 2 >&2; }
        rounds=$arg ;;
    esac
done
rounds=${rounds:-1}
here=$(cd "$(dirname "$0")" && pwd)
script=${PYTORCH_SCRIPT:-$here/../../shared/bench/pytorch_fmnist.py}
bench=${FMNIST_BENCH:-./bench/fmnist-bench}
train=10000
openblas=${OPENBLAS_DIR:-/tmp/fmnist-openblas}

[ -x "$bench" ] || { echo "compare: $bench not found; run make bench first" >&2; exit 1; }
[ -f "$script" ] || { echo "compare: PyTorch script $script not found; set PYTORCH_SCRIPT" >&2; exit 1; }

# PyTorch on OpenBLAS without changing the system's BLAS: unpack the
# package into a private directory.
libdir=$openblas/usr/lib/x86_64-linux-gnu/openblas-openmp
if [ ! -d "$libdir" ]; then
    mkdir -p "$openblas"
    (cd "$openblas" && apt-get download libopenblas0-openmp >/dev/null && dpkg -x libopenblas0-openmp_*.deb .)
fi

if [ "$isa" = avx2 ]; then
    export FMNIST_GEMM=avx2 ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
fi

torch_ips() {  # model threads
    LD_LIBRARY_PATH=$libdir /usr/bin/python3 "$script" --model "$1" --threads "$2" \
        --epochs 1 --limit-train "$train" --skip-test 2>/dev/null \
        | sed -n 's/^total training seconds:.*samples, \([0-9.]*\) samples\/s.*/\1/p'
}

fmnist_ips() {  # model threads
    "$bench" --model "$1" --threads "$2" --only-threads --throughput-only \
        --train "$train" \
        | awk -v t="$2" '$1 == t && $2 ~ /^[0-9.]+$/ { v = $2 } END { print v }'
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) CPUs"
echo "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg)"
[ -z "$isa" ] || echo "instruction sets: AVX2 and FMA only (--avx2)"
printf '%-6s %-7s %12s %12s %7s\n' model threads fmnist pytorch ratio
for round in $(seq "$rounds"); do
    for model in small tf; do
        for threads in 1 2; do
            f=$(fmnist_ips "$model" "$threads")
            p=$(torch_ips "$model" "$threads")
            ratio=$(awk -v f="$f" -v p="$p" 'BEGIN { if (p > 0) printf "%.2f", f / p; else print "n/a" }')
            printf '%-6s %-7s %12s %12s %7s\n' "$model" "$threads" "$f" "$p" "$ratio"
        done
    done
done
