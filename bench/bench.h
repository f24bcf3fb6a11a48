/* Helpers shared by the benchmark program. */
#ifndef FMNIST_BENCH_H
#define FMNIST_BENCH_H

/* Returns the measured FP32 peak of one core in GFLOP/s: the best of
 * three runs of an FMA loop, with the widest vectors this CPU runs
 * fastest. */
double bench_peak_gflops(void);

/* Names the loop behind the latest bench_peak_gflops result. */
const char *bench_peak_method(void);

#endif
