/* Helpers shared by the benchmark program. */
#ifndef FMNIST_BENCH_H
#define FMNIST_BENCH_H

/* Returns the measured FP32 peak of one core in GFLOP/s (best of three
 * runs of an FMA loop). */
double bench_peak_gflops(void);

#endif
