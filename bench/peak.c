/*
 * peak: measures the FP32 peak of one core with independent FMA chains, so
 * the benchmark can report kernels as a fraction of what this CPU can do
 * instead of a number from a data sheet.
 *
 * Each loop keeps 12 independent accumulators, enough that FMA latency (4
 * or 5 cycles on current x86 cores) hides behind two FMA ports: vectors of
 * 8 floats with AVX2 and FMA, of 16 floats with AVX-512F. The peak is the
 * faster of the two, because wider vectors do not always mean more FLOPs,
 * except with the AVX2 kernel, which cannot use the wider ones.
 * The AMD EPYC (Zen 4) splits each 512-bit FMA into two 256-bit halves,
 * while an Intel Xeon with two 512-bit FMA ports doubles its peak. Without
 * AVX2, or for the portable kernel, it measures loops of GCC's generic
 * vectors, which the compiler maps onto whatever the build's target
 * offers.
 *
 * The accumulator loops must be fully unrolled so that every accumulator
 * lives in a register. With 24 accumulators GCC 12 kept the 512-bit ones
 * in memory and measured half the true AVX-512 peak, hence the unroll
 * pragmas and the smaller count.
 *
 * NOTE: on a virtual machine whose CPU shares a physical core with a busy
 * hyperthread on the host, the loop measures about half the peak, and
 * nothing inside the guest shows why. Compare a few runs.
 */
#include "config.h"

#include <stddef.h>
#include <time.h>

#include "bench.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1

__attribute__((target("avx2,fma")))
static float fma_loop_avx2(long iterations)
{
    __m256 acc[12];
    const __m256 a = _mm256_set1_ps(0.999999f);
    const __m256 b = _mm256_set1_ps(1e-7f);

    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iterations; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; i++)
        sum = _mm256_add_ps(sum, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0] + lanes[7];
}

__attribute__((target("avx512f")))
static float fma_loop_avx512(long iterations)
{
    __m512 acc[12];
    const __m512 a = _mm512_set1_ps(0.999999f);
    const __m512 b = _mm512_set1_ps(1e-7f);

    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 12; i++)
        sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}
#endif

/* A multiply-add on 12 accumulators of BYTES each, in GCC's generic
 * vectors, which the compiler maps onto whatever vector unit the build
 * targets, splitting a vector wider than that unit. Unlike an array of
 * floats, such vectors stay in registers at -O1 and -O2 too. On an
 * AVX-512 Xeon with x86-64's baseline SSE2, a loop over an array of 64
 * floats measured 4 to 21 GFLOP/s at -O1 and -O2. These loops measured
 * 30 to 31 at -O1, -O2 and -O3 alike, and the 64-byte vectors 173 with
 * -march=native. */
#define VECTOR_LOOP(name, bytes)                                          \
    typedef float name##_vector __attribute__((vector_size(bytes)));      \
    static float name(long iterations)                                    \
    {                                                                     \
        const int lanes = (bytes) / (int)sizeof(float);                   \
        name##_vector acc[12], mul, add, sum;                             \
        float total = 0;                                                  \
                                                                          \
        for (int k = 0; k < lanes; k++) {                                 \
            mul[k] = 0.999999f;                                           \
            add[k] = 1e-7f;                                               \
        }                                                                 \
        for (int i = 0; i < 12; i++)                                      \
            acc[i] = mul * (float)i;                                      \
        for (long it = 0; it < iterations; it++) {                        \
            _Pragma("GCC unroll 12")                                      \
            for (int i = 0; i < 12; i++)                                  \
                acc[i] = acc[i] * mul + add;                              \
        }                                                                 \
        sum = acc[0];                                                     \
        for (int i = 1; i < 12; i++)                                      \
            sum += acc[i];                                                \
        for (int k = 0; k < lanes; k++)                                   \
            total += sum[k];                                              \
        return total;                                                     \
    }

VECTOR_LOOP(vector_loop_16, 16)
VECTOR_LOOP(vector_loop_32, 32)
VECTOR_LOOP(vector_loop_64, 64)

typedef float (*FmaLoop)(long iterations);

/* Returns the CPU time this thread has used, in seconds. */
static double thread_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Returns the best GFLOP/s of three runs of LOOP, which performs
 * FLOPS_PER_ITERATION per iteration. The loop is timed by this thread's
 * CPU time, not the wall clock, so other processes that take the core
 * for a while do not lower the result. */
static double best_of_three(FmaLoop loop, double flops_per_iteration)
{
    const long iterations = 20 * 1000 * 1000;
    volatile float sink;
    double best = 0;

    for (int run = 0; run < 3; run++) {
        long n = iterations;
        float result;
        double t0 = thread_seconds();

        /* The empty asm statements keep the loop between the two clock
         * reads: its count comes out of one after the first read, and
         * its result goes into one before the second. clang otherwise
         * inlined the loop and computed it outside the timed span. */
        __asm__ volatile("" : "+r"(n));
        result = loop(n);
        __asm__ volatile("" : "+m"(result));
        sink = result;
        double seconds = thread_seconds() - t0;
        double gflops = flops_per_iteration * (double)iterations / seconds
                        / 1e9;
        if (gflops > best)
            best = gflops;
    }
    (void)sink;
    return best;
}

static const char *method = "C vector loop";

double bench_peak_gflops(GemmKernel kernel)
{
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (kernel != GEMM_KERNEL_PORTABLE && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma")) {
        /* 12 vectors x 8 lanes x 2 FLOPs per FMA. */
        double best = best_of_three(fma_loop_avx2, 192.0);

        method = "AVX2 FMA loop";
        if (kernel == GEMM_KERNEL_AVX2 && __builtin_cpu_supports("avx512f")) {
            method = "AVX2 FMA loop for the avx2 kernel";
        } else if (__builtin_cpu_supports("avx512f")) {
            /* 12 vectors x 16 lanes x 2. */
            double wide = best_of_three(fma_loop_avx512, 384.0);

            if (wide > best) {
                best = wide;
                method = "AVX-512 FMA loop";
            } else {
                method = "AVX2 FMA loop, not slower than AVX-512";
            }
        }
        return best;
    }
#endif
    if (kernel == GEMM_KERNEL_PORTABLE)
        method = "C vector loop for the portable kernel";
    /* 12 vectors x 4, 8 or 16 lanes x 2 FLOPs. */
    double best = best_of_three(vector_loop_16, 96.0);
    double wider = best_of_three(vector_loop_32, 192.0);
    double widest = best_of_three(vector_loop_64, 384.0);

    if (wider > best)
        best = wider;
    return widest > best ? widest : best;
}

const char *bench_peak_method(void)
{
    return method;
}
