/* Helpers shared by the benchmark program. */
#ifndef FMNIST_BENCH_H
#define FMNIST_BENCH_H

#include "gemm.h"

/* Returns the measured FP32 peak of one core in GFLOP/s: the best of
 * three runs of an FMA loop, with the widest vectors this CPU runs
 * fastest. For the AVX2 kernel on a CPU with AVX-512 it measures 256-bit
 * FMAs only, so that a run with FMNIST_GEMM=avx2 reads as it would on a
 * CPU without AVX-512. For the portable kernel it measures loops of
 * GCC's generic vectors built with the same flags, the peak of the vector
 * unit that kernel is compiled for. */
double bench_peak_gflops(GemmKernel kernel);

/* Names the loop behind the latest bench_peak_gflops result. */
const char *bench_peak_method(void);

#endif
