/*
 * direct: single-channel convolutions without im2col.
 *
 * Every output row fits one tile of ROW_FLOATS (32) columns: two 16-float
 * vectors for AVX-512, four 8-float ones for AVX2. Each input plane is
 * first expanded into K shifted copies (see shift_plane_avx512). Copy kx
 * contains the zero-padded input moved kx columns left, with zeros from
 * column OW on. Output (oy, ox) at tap (ky, kx) then reads row oy + ky,
 * column ox of copy kx, so every vector load of the input is aligned and
 * every stride is a constant. In a loop of 27 FMAs and 12 loads on an
 * AVX-512 Xeon, loads that straddled two cache lines took 28% longer.
 *
 * Forward pass: for each output row and FWD_FILTERS_* filters, every tap
 * loads the row's input vectors once and multiplies them by each
 * filter's weight, broadcast from a copy of the weights regrouped by
 * tap. The bias starts the sums, and ReLU and a masked store end them.
 *
 * Weight gradient: registers hold the sums of a block of filters and
 * kernel rows (WGRAD_FILTERS_* and WGRAD_ROWS_*), one vector per
 * (filter, tap). Each vector of output gradients is loaded once per
 * filter and each input vector once per tap, and every pair meets in one
 * FMA. The output gradients are loaded with the lanes past OW zeroed.
 * Samples run one at a time so that their copies stay in L1: after each
 * block, the sums go back to a buffer of vectors, and a horizontal sum
 * of each vector ends the call.
 *
 * Lanes past OW are wasted: 26 columns use 26 of 32 lanes (81%), 28 use
 * 88%.
 *
 * With 2x2 pooling after the convolution, direct_conv_pool_forward
 * computes the four outputs of each window in four registers and pools
 * them lane by lane (see "pooled phases" below). The weight gradient
 * sends each window's gradient to the inputs of the output that won,
 * through a merge mask. So the convolution's output and its gradient are
 * never stored.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "direct.h"
#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DIRECT_X86 1
#endif

/* Floats per row of a shifted copy: the widest output row handled. */
#define ROW_FLOATS DIRECT_MAX_OW

/* Filters per forward tile: 2 x 8 zmm or 4 x 3 ymm accumulators. */
#define FWD_FILTERS_512 8
#define FWD_FILTERS_256 3

/* Vector registers: a weight-gradient block of FB filters and T taps
 * holds FB * T sums, FB output gradient vectors and one input vector.
 * WGRAD_FILTERS is the FB that fits, rounded down to 8 or 4 when it is
 * 4 or more, because filter counts are mostly multiples of 8 and a last
 * block that repeats filters wastes its work. With 5x5 kernels and 32
 * filters, blocks of 5 filters took 7% longer than blocks of 4. */
#define REGS_512 32
#define REGS_256 16
#define WGRAD_FIT(regs, taps) (((regs) - 1) / ((taps) + 1))
#define WGRAD_FILTERS(regs, taps)                                        \
    (WGRAD_FIT(regs, taps) >= 8   ? 8                                   \
     : WGRAD_FIT(regs, taps) >= 4 ? 4                                   \
                                  : WGRAD_FIT(regs, taps))

#define UNROLL _Pragma("GCC unroll 64")

/* Keeps pointer P in a register, so the compiler computes the loads
 * after it as P plus a constant instead of holding one address per load
 * in registers and on the stack. */
#define PIN(p) __asm__("" : "+r"(p))

/* A prefetch of ADDRESS. The build of tests/check_prefetch defines
 * DIRECT_PREFETCH_HOOK to check every address against the buffers,
 * since a prefetch outside them would not fault. */
#ifdef DIRECT_PREFETCH_HOOK
void direct_prefetch_hook(const void *address);
#define PREFETCH(address) direct_prefetch_hook(address)
#else
#define PREFETCH(address) __builtin_prefetch(address)
#endif

/* The AVX2 kernel's way to the fused weight gradient: -1 for the CPU's
 * choice (gemm_fast_blendv), 1 for picks by blends, 0 for products by
 * masked gradients. */
static int avx2_picks = -1;

void direct_set_avx2_picks(int mode)
{
    avx2_picks = mode < 0 ? -1 : mode != 0;
}

int direct_supported(const ConvGeom *g, GemmKernel kernel)
{
    int have = kernel == GEMM_KERNEL_AVX512 ? gemm_have_avx512()
               : kernel == GEMM_KERNEL_AVX2 ? gemm_have_avx2() : 0;

    return have && g->c == 1 && g->k >= 1 && g->k <= DIRECT_MAX_K
           && conv_out_h(g) >= 1 && conv_out_w(g) >= 1
           && conv_out_w(g) <= DIRECT_MAX_OW;
}

#ifdef DIRECT_X86

/* Geometry of one convolution for these functions. */
typedef struct {
    int k, pad, h, w, oh, ow;
} Plane;

static Plane plane_of(const ConvGeom *g)
{
    Plane p = {g->k, g->pad, g->h, g->w, conv_out_h(g), conv_out_w(g)};

    return p;
}

/* Floats of the K shifted copies of one input plane: K copies of
 * OH + K - 1 rows, interleaved by row (row r of copy kx at
 * (r * K + kx) * ROW_FLOATS). */
static size_t shifted_floats(const Plane *p)
{
    return (size_t)(p->oh + p->k - 1) * p->k * ROW_FLOATS;
}

/* Regroups the F x KK weights W by groups of GROUP filters: entry j of
 * tap t of group q sits at ((q * KK) + t) * GROUP + j. Missing filters of
 * the last group get zero weights. Returns a buffer to free. */
static float *group_weights(const float *w, int f, int kk, int group)
{
    int groups = (f + group - 1) / group;
    float *wt = xmalloc_aligned((size_t)groups * kk * group * sizeof *wt);

    for (int q = 0; q < groups; q++)
        for (int t = 0; t < kk; t++)
            for (int j = 0; j < group; j++) {
                int fi = q * group + j;

                wt[((size_t)q * kk + t) * group + j] =
                    fi < f ? w[(size_t)fi * kk + t] : 0.0f;
            }
    return wt;
}

/* ---------------------------------------------------------------- AVX-512 */

/* Lane mask of the lanes of vector V (16 floats each) inside a row of OW. */
static __mmask16 row_mask16(int ow, int v)
{
    int left = ow - 16 * v;

    if (left >= 16)
        return 0xffff;
    if (left <= 0)
        return 0;
    return (__mmask16)((1u << left) - 1);
}

/* Columns of a padded input row: the row, PAD zeros on its left and
 * room for the window of the last copy on its right. */
#define PADDED_ROW (ROW_FLOATS + DIRECT_MAX_K)

/* Writes the K shifted copies of input plane X into OUT. Each input row
 * is padded once into a row buffer, and copy kx is the window from
 * column kx of that buffer, loaded with the lanes from OW on cleared. */
__attribute__((target("avx512f")))
static void shift_plane_avx512(const Plane *p, const float *x, float *out)
{
    float row[PADDED_ROW + 16] __attribute__((aligned(64)));
    __mmask16 m0 = row_mask16(p->ow, 0), m1 = row_mask16(p->ow, 1);

    for (int r = 0; r < p->oh + p->k - 1; r++) {
        int ir = r - p->pad;

        for (int c = 0; c < PADDED_ROW; c += 16)
            _mm512_store_ps(row + c, _mm512_setzero_ps());
        if (ir >= 0 && ir < p->h)
            for (int c = 0; c < p->w; c += 16) {
                __mmask16 m = row_mask16(p->w - c, 0);

                _mm512_mask_storeu_ps(
                    row + p->pad + c, m,
                    _mm512_maskz_loadu_ps(m, x + (size_t)ir * p->w + c));
            }
        for (int kx = 0; kx < p->k; kx++) {
            float *dst = out + ((size_t)r * p->k + kx) * ROW_FLOATS;

            _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m0, row + kx));
            _mm512_store_ps(dst + 16,
                            _mm512_maskz_loadu_ps(m1, row + kx + 16));
        }
    }
}

/* Output rows of one sample for FWD_FILTERS_512 filters, NF of them real:
 * the taps of WT (one group of group_weights) over the shifted copies SH,
 * plus B, then ReLU when RELU is set. Y points at the first filter's
 * plane, the others follow PLANE_STRIDE apart. */
__attribute__((target("avx512f"), always_inline))
static inline void forward_avx512(const Plane *p, const int k,
                                  const float *sh, const float *wt,
                                  const float *b, int nf, int relu,
                                  float *y, size_t plane_stride)
{
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 m0 = row_mask16(p->ow, 0), m1 = row_mask16(p->ow, 1);

    for (int oy = 0; oy < p->oh; oy++) {
        __m512 a0[FWD_FILTERS_512], a1[FWD_FILTERS_512];
        const float *in = sh + (size_t)oy * k * ROW_FLOATS;

        PIN(in);
        UNROLL for (int j = 0; j < FWD_FILTERS_512; j++)
            a0[j] = a1[j] = _mm512_set1_ps(b[j]);
        UNROLL for (int t = 0; t < k * k; t++) {
            const float *q = in + t * ROW_FLOATS;
            const float *wk = wt + t * FWD_FILTERS_512;
            __m512 v0 = _mm512_load_ps(q), v1 = _mm512_load_ps(q + 16);

            UNROLL for (int j = 0; j < FWD_FILTERS_512; j++) {
                __m512 wv = _mm512_set1_ps(wk[j]);

                a0[j] = _mm512_fmadd_ps(v0, wv, a0[j]);
                a1[j] = _mm512_fmadd_ps(v1, wv, a1[j]);
            }
        }
        for (int j = 0; j < nf; j++) {
            float *out = y + j * plane_stride + (size_t)oy * p->ow;

            if (relu) {
                a0[j] = _mm512_max_ps(a0[j], zero);
                a1[j] = _mm512_max_ps(a1[j], zero);
            }
            _mm512_mask_storeu_ps(out, m0, a0[j]);
            _mm512_mask_storeu_ps(out + 16, m1, a1[j]);
        }
    }
}

/* Kernel rows and filters per weight-gradient block: all rows of kernels
 * up to 3x3, else one row, and as many filters as the registers allow. */
#define WGRAD_ROWS_512(k) ((k) <= 3 ? (k) : 1)
#define WGRAD_FILTERS_512(k) WGRAD_FILTERS(REGS_512, WGRAD_ROWS_512(k) * (k))

/* One vector of output gradients against the input under the block's
 * taps. D is filter 0's gradient at this row and vector, the others
 * DY_PS apart. Q is the shifted copies' first block row at this
 * vector. */
__attribute__((target("avx512f"), always_inline))
static inline void wgrad_step_avx512(const int k, const int fb, const int tr,
                                     const float *d, size_t dy_ps,
                                     const float *q, __mmask16 m,
                                     __m512 *acc)
{
    __m512 dv[8];
    const int taps = tr * k;

    UNROLL for (int j = 0; j < fb; j++) {
        dv[j] = _mm512_maskz_loadu_ps(m, d);
        d += dy_ps;
    }
    UNROLL for (int t = 0; t < taps; t++) {
        __m512 xv = _mm512_load_ps(q + t * ROW_FLOATS);

        /* Keeps each input vector loaded once, not folded into every
         * FMA that uses it. */
        __asm__("" : "+v"(xv));
        UNROLL for (int j = 0; j < fb; j++)
            acc[j * taps + t] = _mm512_fmadd_ps(dv[j], xv, acc[j * taps + t]);
    }
}

/* Adds one sample's products for FB filters and kernel rows R0 ..
 * R0 + TR - 1 to the vectors in SUMS (filter j, tap t of the block at
 * (j * TR * K + t) * 16). SH is the sample's shifted copies, DY filter
 * 0's output gradient plane, the others DY_PS apart. */
__attribute__((target("avx512f"), always_inline))
static inline void wgrad_avx512(const Plane *p, const int k, const int fb,
                                const int tr, const float *sh, int r0,
                                const float *dy, size_t dy_ps, float *sums)
{
    __m512 acc[REGS_512];
    __mmask16 m0 = row_mask16(p->ow, 0), m1 = row_mask16(p->ow, 1);

    UNROLL for (int i = 0; i < fb * tr * k; i++)
        acc[i] = _mm512_load_ps(sums + 16 * i);
    for (int oy = 0; oy < p->oh; oy++) {
        const float *q = sh + (size_t)(oy + r0) * k * ROW_FLOATS;
        const float *d = dy + (size_t)oy * p->ow;

        PIN(q);
        wgrad_step_avx512(k, fb, tr, d, dy_ps, q, m0, acc);
        if (m1)
            wgrad_step_avx512(k, fb, tr, d + 16, dy_ps, q + 16, m1, acc);
    }
    UNROLL for (int i = 0; i < fb * tr * k; i++)
        _mm512_store_ps(sums + 16 * i, acc[i]);
}

/* ---------------------------------------------------------------- AVX2 */

/* The first N of 8 lanes set, for masked loads and stores: the 8 entries
 * from index 8 - N on. */
static const int32_t lane_mask_table[16] = {
    -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Lane mask of the lanes of vector V (8 floats each) inside a row of OW. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256i row_mask8(int ow, int v)
{
    int left = ow - 8 * v;

    if (left < 0)
        left = 0;
    if (left > 8)
        left = 8;
    return _mm256_loadu_si256(
        (const __m256i *)(const void *)(lane_mask_table + 8 - left));
}

/* shift_plane_avx512 with 8-float vectors. */
__attribute__((target("avx2,fma")))
static void shift_plane_avx2(const Plane *p, const float *x, float *out)
{
    float row[PADDED_ROW + 8] __attribute__((aligned(32)));
    __m256i m[4];

    for (int v = 0; v < 4; v++)
        m[v] = row_mask8(p->ow, v);
    for (int r = 0; r < p->oh + p->k - 1; r++) {
        int ir = r - p->pad;

        for (int c = 0; c < PADDED_ROW; c += 8)
            _mm256_store_ps(row + c, _mm256_setzero_ps());
        if (ir >= 0 && ir < p->h)
            for (int c = 0; c < p->w; c += 8) {
                __m256i mc = row_mask8(p->w - c, 0);

                _mm256_storeu_ps(
                    row + p->pad + c,
                    _mm256_maskload_ps(x + (size_t)ir * p->w + c, mc));
            }
        for (int kx = 0; kx < p->k; kx++) {
            float *dst = out + ((size_t)r * p->k + kx) * ROW_FLOATS;

            for (int v = 0; v < 4; v++)
                _mm256_store_ps(dst + 8 * v,
                                _mm256_and_ps(_mm256_loadu_ps(row + kx + 8 * v),
                                              _mm256_castsi256_ps(m[v])));
        }
    }
}

/* forward_avx512 with four 8-float vectors per row and FWD_FILTERS_256
 * filters. */
__attribute__((target("avx2,fma"), always_inline))
static inline void forward_avx2(const Plane *p, const int k,
                                const float *sh, const float *wt,
                                const float *b, int nf, int relu,
                                float *y, size_t plane_stride)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256i m[4];
    int vecs = (p->ow + 7) / 8;

    for (int v = 0; v < 4; v++)
        m[v] = row_mask8(p->ow, v);
    for (int oy = 0; oy < p->oh; oy++) {
        __m256 a[4][FWD_FILTERS_256];
        const float *in = sh + (size_t)oy * k * ROW_FLOATS;

        PIN(in);
        UNROLL for (int j = 0; j < FWD_FILTERS_256; j++)
            UNROLL for (int v = 0; v < 4; v++)
                a[v][j] = _mm256_broadcast_ss(b + j);
        /* 12 sums, 3 weights and one input vector fill the 16 ymm
         * registers. */
        UNROLL for (int t = 0; t < k * k; t++) {
            const float *q = in + t * ROW_FLOATS;
            const float *wk = wt + t * FWD_FILTERS_256;
            __m256 wv[FWD_FILTERS_256];

            UNROLL for (int j = 0; j < FWD_FILTERS_256; j++)
                wv[j] = _mm256_broadcast_ss(wk + j);
            UNROLL for (int v = 0; v < 4; v++) {
                __m256 x = _mm256_load_ps(q + 8 * v);

                UNROLL for (int j = 0; j < FWD_FILTERS_256; j++)
                    a[v][j] = _mm256_fmadd_ps(x, wv[j], a[v][j]);
            }
        }
        /* A full store past the end of a row writes the start of the
         * rows after it, which later passes of oy overwrite, so only
         * stores that would pass the end of the plane are masked (slow
         * on AMD CPUs). */
        for (int j = 0; j < nf; j++) {
            float *out = y + j * plane_stride + (size_t)oy * p->ow;

            for (int v = 0; v < vecs; v++) {
                __m256 r = relu ? _mm256_max_ps(a[v][j], zero) : a[v][j];

                if (oy * p->ow + 8 * v + 8 <= p->oh * p->ow)
                    _mm256_storeu_ps(out + 8 * v, r);
                else
                    _mm256_maskstore_ps(out + 8 * v, m[v], r);
            }
        }
    }
}

#define WGRAD_ROWS_256(k) ((k) <= 2 ? (k) : 1)
#define WGRAD_FILTERS_256(k) WGRAD_FILTERS(REGS_256, WGRAD_ROWS_256(k) * (k))

/* wgrad_step_avx512 with 8-float vectors. The output gradients are
 * loaded through mask M when MASKED is set. */
__attribute__((target("avx2,fma"), always_inline))
static inline void wgrad_step_avx2(const int k, const int fb, const int tr,
                                   const float *d, size_t dy_ps,
                                   const float *q, const int masked,
                                   __m256i m, __m256 *acc)
{
    __m256 dv[8];
    const int taps = tr * k;

    UNROLL for (int j = 0; j < fb; j++) {
        dv[j] = masked ? _mm256_maskload_ps(d, m) : _mm256_loadu_ps(d);
        d += dy_ps;
    }
    UNROLL for (int t = 0; t < taps; t++) {
        __m256 xv = _mm256_load_ps(q + t * ROW_FLOATS);

        __asm__("" : "+x"(xv));
        UNROLL for (int j = 0; j < fb; j++)
            acc[j * taps + t] = _mm256_fmadd_ps(dv[j], xv, acc[j * taps + t]);
    }
}

/*
 * wgrad_avx512 with 8-float vectors, giving the same sums bit for bit.
 * SUMS contains the same vectors of 16, and each half of them is a pass
 * of its own. Half H takes columns 8H to 8H + 7 and then 16 + 8H to
 * 16 + 8H + 7 of each row, as lanes 8H to 8H + 7 of the AVX-512 kernel
 * do. So every lane adds the same products in the same order.
 */
__attribute__((target("avx2,fma"), always_inline))
static inline void wgrad_avx2(const Plane *p, const int k, const int fb,
                              const int tr, const float *sh, int r0,
                              const float *dy, size_t dy_ps, float *sums)
{
    for (int half = 0; half < 2; half++) {
        __m256 acc[REGS_256];
        int c0 = 8 * half, c1 = 16 + 8 * half;
        __m256i m0 = row_mask8(p->ow, half), m1 = row_mask8(p->ow, 2 + half);

        UNROLL for (int i = 0; i < fb * tr * k; i++)
            acc[i] = _mm256_load_ps(sums + 16 * i + c0);
        for (int oy = 0; oy < p->oh; oy++) {
            const float *q = sh + (size_t)(oy + r0) * k * ROW_FLOATS;
            const float *d = dy + (size_t)oy * p->ow;

            PIN(q);
            if (c0 + 8 <= p->ow)
                wgrad_step_avx2(k, fb, tr, d + c0, dy_ps, q + c0, 0, m0, acc);
            else if (c0 < p->ow)
                wgrad_step_avx2(k, fb, tr, d + c0, dy_ps, q + c0, 1, m0, acc);
            if (c1 + 8 <= p->ow)
                wgrad_step_avx2(k, fb, tr, d + c1, dy_ps, q + c1, 0, m1, acc);
            else if (c1 < p->ow)
                wgrad_step_avx2(k, fb, tr, d + c1, dy_ps, q + c1, 1, m1, acc);
        }
        UNROLL for (int i = 0; i < fb * tr * k; i++)
            _mm256_store_ps(sums + 16 * i + c0, acc[i]);
    }
}

/* One function per instruction set and kernel side, so that every loop
 * over taps and filters has constant bounds and the accumulators stay in
 * registers. */
#define DEFINE_KERNELS(K)                                                    \
    __attribute__((target("avx512f")))                                       \
    static void forward_avx512_k##K(const Plane *p, const float *sh,         \
                                    const float *wt, const float *b, int nf, \
                                    int relu, float *y, size_t ps)           \
    {                                                                        \
        forward_avx512(p, K, sh, wt, b, nf, relu, y, ps);                    \
    }                                                                        \
    __attribute__((target("avx2,fma")))                                      \
    static void forward_avx2_k##K(const Plane *p, const float *sh,           \
                                  const float *wt, const float *b, int nf,   \
                                  int relu, float *y, size_t ps)             \
    {                                                                        \
        forward_avx2(p, K, sh, wt, b, nf, relu, y, ps);                      \
    }                                                                        \
    __attribute__((target("avx512f")))                                       \
    static void wgrad_avx512_k##K(const Plane *p, const float *sh, int r0,   \
                                  const float *dy, size_t dy_ps,             \
                                  float *sums)                               \
    {                                                                        \
        wgrad_avx512(p, K, WGRAD_FILTERS_512(K), WGRAD_ROWS_512(K), sh, r0,  \
                     dy, dy_ps, sums);                                       \
    }                                                                        \
    __attribute__((target("avx2,fma")))                                      \
    static void wgrad_avx2_k##K(const Plane *p, const float *sh, int r0,     \
                                const float *dy, size_t dy_ps, float *sums)  \
    {                                                                        \
        wgrad_avx2(p, K, WGRAD_FILTERS_256(K), WGRAD_ROWS_256(K), sh, r0,    \
                   dy, dy_ps, sums);                                         \
    }

DEFINE_KERNELS(1)
DEFINE_KERNELS(2)
DEFINE_KERNELS(3)
DEFINE_KERNELS(4)
DEFINE_KERNELS(5)
DEFINE_KERNELS(6)
DEFINE_KERNELS(7)

typedef void (*ForwardFn)(const Plane *, const float *, const float *,
                          const float *, int, int, float *, size_t);
typedef void (*WgradFn)(const Plane *, const float *, int, const float *,
                        size_t, float *);

/* The kernels for one side K and instruction set, the filters per
 * forward group, and the filters and kernel rows per weight-gradient
 * block. */
typedef struct {
    void (*shift)(const Plane *, const float *, float *);
    ForwardFn forward;
    WgradFn wgrad;
    int fwd_filters, wgrad_filters, wgrad_rows;
} Kernels;

#define KERNELS_512(K)                                                  \
    {shift_plane_avx512, forward_avx512_k##K, wgrad_avx512_k##K,        \
     FWD_FILTERS_512, WGRAD_FILTERS_512(K), WGRAD_ROWS_512(K)}
#define KERNELS_256(K)                                                  \
    {shift_plane_avx2, forward_avx2_k##K, wgrad_avx2_k##K,              \
     FWD_FILTERS_256, WGRAD_FILTERS_256(K), WGRAD_ROWS_256(K)}

static const Kernels kernels_512[DIRECT_MAX_K] = {
    KERNELS_512(1), KERNELS_512(2), KERNELS_512(3), KERNELS_512(4),
    KERNELS_512(5), KERNELS_512(6), KERNELS_512(7),
};
static const Kernels kernels_256[DIRECT_MAX_K] = {
    KERNELS_256(1), KERNELS_256(2), KERNELS_256(3), KERNELS_256(4),
    KERNELS_256(5), KERNELS_256(6), KERNELS_256(7),
};

static const Kernels *kernels_for(GemmKernel kernel, int k)
{
    return kernel == GEMM_KERNEL_AVX512 ? &kernels_512[k - 1]
                                        : &kernels_256[k - 1];
}

/* Floats per vector of weight-gradient sums, whatever the kernel. */
#define SUM_LANES 16

/* Sums the SUM_LANES floats of vector V in a fixed order: each half
 * added to the other, down to one value. The halves live in separate
 * arrays, since updating one array in place sent every sum through a
 * store and a reload on the stack. */
static float sum_vector(const float *v)
{
    float half[SUM_LANES / 2], quarter[SUM_LANES / 4], pair[2];

    for (int i = 0; i < SUM_LANES / 2; i++)
        half[i] = v[i] + v[i + SUM_LANES / 2];
    for (int i = 0; i < SUM_LANES / 4; i++)
        quarter[i] = half[i] + half[i + SUM_LANES / 4];
    for (int i = 0; i < 2; i++)
        pair[i] = quarter[i] + quarter[i + 2];
    return pair[0] + pair[1];
}

/* Returns the first filter of weight-gradient group Q of FB filters
 * among F >= FB: a last group short of FB filters starts early and
 * repeats some filters of the previous group. */
static int group_start(int q, int fb, int f)
{
    return q * fb < f - fb ? q * fb : f - fb;
}

/* Copies the F output gradient planes of N samples into a new buffer of
 * FB planes per sample, plane (j, s) at (j * N + s) * OHW. Planes past F
 * are zero. This serves convolutions with fewer than FB filters. */
static float *pad_filters(const float *dy, size_t sample_stride,
                          size_t plane_stride, int f, int fb, int n,
                          size_t ohw)
{
    float *out = xmalloc_aligned((size_t)fb * n * ohw * sizeof *out);

    memset(out, 0, (size_t)fb * n * ohw * sizeof *out);
    for (int j = 0; j < f; j++)
        for (int s = 0; s < n; s++)
            memcpy(out + ((size_t)j * n + s) * ohw,
                   dy + j * plane_stride + s * sample_stride,
                   ohw * sizeof *out);
    return out;
}

/* ---------------------------------------------------------- pooled phases */

/*
 * Convolution and 2x2 pooling by phases, forward and weight gradient. The
 * four outputs of a pooling window are (2py + dy, 2px + dx) for dy, dx
 * in {0, 1}, and tap (ky, kx) reads them from padded input (2py + dy +
 * ky, 2px + dx + kx). So with phase plane (a, b) holding padded input
 * (2py + a, 2px + b) at pooled position (py, px), for a and b in 0 .. K,
 * window output (dy, dx) under tap (ky, kx) is phase (dy + ky, dx + kx)
 * at the window's own position. Vectors then run over pooled positions:
 * every load is an aligned vector, the four outputs of a window sit in
 * the same lane of four registers, and pooling is lane by lane. Row ends
 * waste no lanes either: a plane of 13 x 13 windows fills 169 of 176
 * lanes (96%), where rows of 26 outputs used 26 of 32.
 *
 * The (K+1)^2 planes are stored by vector: the 16 lanes of vector v of
 * plane i at (v * (K+1)^2 + i) * 16, so that the loads of one vector are
 * constant offsets from one pointer. The lanes past the last window stay
 * zero.
 */

/* Lanes per vector of the phase planes, whatever the instruction set. */
#define PHASE_LANES 16

/* Filters per forward block: 4 x 4 zmm or 4 x 2 ymm sums. */
#define PHASE_FILTERS_512 4
#define PHASE_FILTERS_256 2

/* Geometry of the pooled convolution for the phase kernels. */
typedef struct {
    int k, pad, h, w;
    int ph, pw;       /* pooling windows down and across */
    int pooled;       /* ph * pw */
    int vectors;      /* vectors of PHASE_LANES per plane */
    int planes;       /* (k + 1)^2 */
} Phases;

static Phases phases_of(const ConvGeom *g)
{
    Phases q;

    q.k = g->k;
    q.pad = g->pad;
    q.h = g->h;
    q.w = g->w;
    q.ph = conv_out_h(g) / 2;
    q.pw = conv_out_w(g) / 2;
    q.pooled = q.ph * q.pw;
    q.vectors = (q.pooled + PHASE_LANES - 1) / PHASE_LANES;
    q.planes = (q.k + 1) * (q.k + 1);
    return q;
}

/* Floats of each run in the scratch of build_phases_avx2: the pooled
 * positions of rows 0 .. ph + k / 2 - 1 one row after another, and room
 * past them for the 8-float loads and stores. A multiple of 8. */
static size_t phase_run_floats(const Phases *q)
{
    size_t floats = (size_t)(q->k / 2) * q->pw
                    + (size_t)q->vectors * PHASE_LANES + 8;

    return (floats + 7) / 8 * 8;
}

/* Floats of the phase planes of one sample, then of the scratch of
 * build_phases_avx2: 2 (k + 1) runs. */
static size_t phase_floats(const Phases *q)
{
    return (size_t)q->vectors * q->planes * PHASE_LANES
           + 2 * (size_t)(q->k + 1) * phase_run_floats(q);
}

/* Returns where padded column 0 of input row IR (inside the plane)
 * would be, PAD floats before the row: masked loads from there read only
 * the row. The address is formed as an integer, since it may lie before
 * the plane. */
static const float *padded_row(const Phases *q, const float *x, int ir)
{
    if (ir < 0 || ir >= q->h)
        return x;
    return (const float *)(uintptr_t)((uintptr_t)(x + (size_t)ir * q->w)
                                      - (uintptr_t)q->pad * sizeof *x);
}

/* Writes the phase planes of input plane X into OUT. Pooled row PY of
 * phase (A, B) is padded input row 2 * PY + A from column B on, every
 * other column. Masked loads take the padded row, zero where the padding
 * is, and one permute per column phase picks its columns. The permute
 * also rotates the row by its starting lane, so that the one or two
 * masked stores that place it are aligned. Stores across two cache
 * lines made the pass about a third longer, even with the lanes in the
 * second line masked off. */
__attribute__((target("avx512f")))
static void build_phases_avx512(const Phases *q, const float *x, float *out)
{
    const int kp = q->k + 1;
    const size_t block = (size_t)q->planes * PHASE_LANES;
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                            10, 11, 12, 13, 14, 15);
    /* Padded columns 32 on are read only when a row reaches them. */
    const int wide = 2 * (q->pw - 1) + q->k >= 32;
    __mmask16 in[3];

    /* Lane l of load v reads padded column 16v + l, which is input
     * column 16v + l - PAD. */
    for (int v = 0; v < 3; v++)
        in[v] = (__mmask16)(row_mask16(q->pad + q->w - 16 * v, 0)
                            & ~row_mask16(q->pad - 16 * v, 0));
    for (int py = 0; py < q->ph; py++) {
        int at = py * q->pw, lane = at % PHASE_LANES;
        int first = PHASE_LANES - lane < q->pw ? PHASE_LANES - lane : q->pw;
        float *dst = out + (size_t)(at / PHASE_LANES) * block;
        /* Lane l takes pooled column (l - LANE) mod 16: padded column
         * twice that, plus B. */
        __m512i pick = _mm512_slli_epi32(
            _mm512_and_si512(_mm512_sub_epi32(lanes, _mm512_set1_epi32(lane)),
                             _mm512_set1_epi32(PHASE_LANES - 1)),
            1);
        __mmask16 m0 = (__mmask16)(row_mask16(lane + first, 0)
                                   & ~row_mask16(lane, 0));
        __mmask16 m1 = row_mask16(q->pw - first, 0);

        for (int a = 0; a < kp; a++) {
            int ir = 2 * py + a - q->pad;
            const float *src = padded_row(q, x, ir);
            float *to = dst + (size_t)a * kp * PHASE_LANES;
            __m512 r0 = _mm512_setzero_ps(), r1 = r0, r2 = r0;

            if (ir >= 0 && ir < q->h) {
                r0 = _mm512_maskz_loadu_ps(in[0], src);
                r1 = _mm512_maskz_loadu_ps(in[1], src + 16);
                if (wide)
                    r2 = _mm512_maskz_loadu_ps(in[2], src + 32);
            }
            for (int b = 0; b < kp; b++, to += PHASE_LANES) {
                __m512i idx = _mm512_add_epi32(pick, _mm512_set1_epi32(b));
                __m512 d = _mm512_permutex2var_ps(r0, idx, r1);

                if (wide)
                    d = _mm512_mask_permutexvar_ps(
                        d,
                        _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(32)),
                        idx, r2);
                _mm512_mask_store_ps(to, m0, d);
                if (m1)
                    _mm512_mask_store_ps(to + block, m1, d);
            }
        }
    }
}

/* Pools the window outputs A0 (top left), A1, A2, A3 (bottom right) of
 * one vector as pool2_forward does, and applies the ReLU to the maximum
 * when RELU is set. Stores the result to Y and the windows' codes (see
 * direct_conv_pool_forward) to CODES through mask M. For finite outputs
 * that is the pooling of the outputs after ReLU, and the winners agree
 * wherever the maximum is above 0; elsewhere the window is blocked. One
 * maximum per window instead of four saves three of the vector
 * operations that share the FMAs' ports. */
__attribute__((target("avx512f"), always_inline))
static inline void pool_store_avx512(__m512 a0, __m512 a1, __m512 a2,
                                     __m512 a3, int relu, __mmask16 m,
                                     float *y, uint8_t *codes)
{
    const __m512 zero = _mm512_setzero_ps();

    __mmask16 right_top = _mm512_cmp_ps_mask(a1, a0, _CMP_GT_OQ);
    __mmask16 right_bottom = _mm512_cmp_ps_mask(a3, a2, _CMP_GT_OQ);
    __m512 top = _mm512_mask_blend_ps(right_top, a0, a1);
    __m512 bottom = _mm512_mask_blend_ps(right_bottom, a2, a3);
    __mmask16 use_bottom = _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ);
    __m512 max = _mm512_mask_blend_ps(use_bottom, top, bottom);
    __m512i code = _mm512_maskz_mov_epi32(right_top, _mm512_set1_epi32(1));
    __m512i code_bottom = _mm512_mask_mov_epi32(
        _mm512_set1_epi32(2), right_bottom, _mm512_set1_epi32(3));

    code = _mm512_mask_mov_epi32(code, use_bottom, code_bottom);
    if (relu) {
        code = _mm512_mask_or_epi32(
            code, _mm512_cmp_ps_mask(max, zero, _CMP_NGT_UQ), code,
            _mm512_set1_epi32(POOL_BLOCKED));
        max = _mm512_max_ps(max, zero);
    }
    _mm512_mask_storeu_ps(y, m, max);
    _mm512_mask_cvtepi32_storeu_epi8(codes, m, code);
}

/* Returns the codes of LANES windows at FROM, widened to 32 bits, and 0
 * in the lanes past them, reading no byte past the last window. */
__attribute__((target("avx512f"), always_inline))
static inline __m512i load_codes_avx512(const uint8_t *from, int lanes)
{
    uint8_t tail[PHASE_LANES] = {0};

    if (lanes >= PHASE_LANES)
        return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)from));
    memcpy(tail, from, (size_t)lanes);
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)tail));
}

/* Writes the pooled outputs of one sample for PHASE_FILTERS_512 filters,
 * NF of them real, from its phase planes PH, with weights WT as
 * group_weights gives them and biases B. Plane j of Y and of CODES is
 * PLANE_STRIDE after plane j - 1. Each output adds the bias and then the
 * taps in order, as forward_avx512 does, so the two agree bit for bit. */
__attribute__((target("avx512f"), always_inline))
static inline void phase_forward_avx512(const Phases *q, const int k,
                                        const float *ph, const float *wt,
                                        const float *b, int nf, int relu,
                                        float *y, uint8_t *codes,
                                        size_t plane_stride)
{
    const int kp = k + 1;

    for (int v = 0; v < q->vectors; v++) {
        const float *in = ph + (size_t)v * q->planes * PHASE_LANES;
        const float *wv0 = wt;
        __mmask16 m = row_mask16(q->pooled - PHASE_LANES * v, 0);
        __m512 acc[4][PHASE_FILTERS_512];

        /* Without the pin on WV0, GCC hoists the weights out of the loop
         * as scalars, spills them, and broadcasts them from registers on
         * the port that also runs the FMAs. From memory, a broadcast is
         * only a load. */
        PIN(in);
        PIN(wv0);
        UNROLL for (int j = 0; j < PHASE_FILTERS_512; j++)
            acc[0][j] = acc[1][j] = acc[2][j] = acc[3][j] =
                _mm512_set1_ps(b[j]);
        UNROLL for (int t = 0; t < k * k; t++) {
            const int ky = t / k, kx = t % k;
            __m512 wv[PHASE_FILTERS_512];

            UNROLL for (int j = 0; j < PHASE_FILTERS_512; j++)
                wv[j] = _mm512_set1_ps(wv0[t * PHASE_FILTERS_512 + j]);
            UNROLL for (int o = 0; o < 4; o++) {
                __m512 xv = _mm512_load_ps(
                    in + ((ky + o / 2) * kp + kx + o % 2) * PHASE_LANES);

                UNROLL for (int j = 0; j < PHASE_FILTERS_512; j++)
                    acc[o][j] = _mm512_fmadd_ps(xv, wv[j], acc[o][j]);
            }
        }
        /* Keeps the sums of filters past NF computed with the others,
         * not moved into the branches below, one filter at a time. */
        UNROLL for (int o = 0; o < 4; o++)
            UNROLL for (int j = 0; j < PHASE_FILTERS_512; j++)
                __asm__("" : "+v"(acc[o][j]));
        UNROLL for (int j = 0; j < PHASE_FILTERS_512; j++)
            if (j < nf)
                pool_store_avx512(acc[0][j], acc[1][j], acc[2][j], acc[3][j],
                                  relu, m,
                                  y + j * plane_stride + PHASE_LANES * v,
                                  codes + j * plane_stride
                                      + PHASE_LANES * v);
    }
}

/*
 * Adds one sample's products for FB filters and kernel rows R0 .. R0 +
 * ROWS - 1, ROWS = min(TR, K - R0), to the vectors in SUMS (filter j,
 * tap t at (j * K * K + t) * 16) from filter j's pooled output gradient
 * DP and codes CODES, which start PS * j after filter 0's. The block of
 * row 0 also adds the gradients to filter j's vector in BIAS (j * 16).
 *
 * A window's gradient reaches tap (ky, kx) through the input of the
 * output that won, (dy, dx), which is phase (ky + dy, kx + dx). So each
 * lane picks that phase with two blends, by dy between phase rows ky and
 * ky + 1 and then by dx between neighbouring columns, and adds one
 * product per tap. Only two picks of a row are live at a time, so up to
 * 5 x 5 taps fit the registers in one block. Blocked windows and lanes
 * past the last window have their gradient zeroed, which leaves the sums
 * unchanged: they start at +0 and so are never -0. Multiplying the
 * inputs of all four outputs by a gradient masked per output took four
 * FMAs per tap and window instead of two blends and one FMA. In a
 * harness on one shard of 8 images, that took about 20% longer with
 * 3 x 3 kernels and 25% longer with 5 x 5 ones.
 *
 * The next call's gradients and codes are AHEAD values after this
 * call's, for its NEXT filters (0 when there is no next call). This
 * layer runs just after the next layer's backward pass, which has
 * pushed them out of the cache, so each vector prefetches the next
 * call's vector. With those requests, the layer's backward pass in
 * a training step took 0.93 ms on "tf" instead of 2.1 ms, and 0.33 ms on
 * "small" instead of 0.42 ms.
 */
__attribute__((target("avx512f"), always_inline))
static inline void phase_wgrad_block_avx512(const Phases *q, const int k,
                                            const int r0, const int tr,
                                            const int fb, const float *ph,
                                            const float *dp,
                                            const uint8_t *codes, size_t ps,
                                            ptrdiff_t ahead, int next,
                                            float *sums, float *bias)
{
    const int kp = k + 1, rows = k - r0 < tr ? k - r0 : tr;
    const int taps = rows * k;
    const __m512i blocked = _mm512_set1_epi32(POOL_BLOCKED);
    __m512 acc[REGS_512], bacc[REGS_512];

    UNROLL for (int j = 0; j < fb; j++) {
        UNROLL for (int t = 0; t < taps; t++)
            acc[j * taps + t] = _mm512_load_ps(
                sums + (j * k * k + r0 * k + t) * PHASE_LANES);
        if (r0 == 0)
            bacc[j] = _mm512_load_ps(bias + j * PHASE_LANES);
    }
    for (int v = 0; v < q->vectors; v++) {
        const float *in = ph + (size_t)v * q->planes * PHASE_LANES;
        int at = PHASE_LANES * v, lanes = q->pooled - at;
        __mmask16 live = row_mask16(lanes, 0);

        PIN(in);
        UNROLL for (int j = 0; j < fb; j++) {
            size_t from = j * ps + at;
            __m512i code = load_codes_avx512(codes + from, lanes);
            __m512 d = _mm512_maskz_loadu_ps(
                _mm512_mask_cmplt_epi32_mask(live, code, blocked),
                dp + from);
            __mmask16 right =
                _mm512_test_epi32_mask(code, _mm512_set1_epi32(1));
            __mmask16 below =
                _mm512_test_epi32_mask(code, _mm512_set1_epi32(2));

            if (r0 == 0) {
                if (j < next) {
                    PREFETCH(dp + from + ahead);
                    PREFETCH(codes + from + ahead);
                }
                bacc[j] = _mm512_add_ps(bacc[j], d);
            }
            UNROLL for (int ky = r0; ky < r0 + rows; ky++) {
                __m512 left = _mm512_setzero_ps();

                UNROLL for (int b = 0; b < kp; b++) {
                    const float *at_b = in + (ky * kp + b) * PHASE_LANES;
                    __m512 pick = _mm512_mask_blend_ps(
                        below, _mm512_load_ps(at_b),
                        _mm512_load_ps(at_b + kp * PHASE_LANES));

                    if (b > 0) {
                        const int t = j * taps + (ky - r0) * k + b - 1;

                        acc[t] = _mm512_fmadd_ps(
                            d, _mm512_mask_blend_ps(right, left, pick),
                            acc[t]);
                    }
                    left = pick;
                }
            }
        }
    }
    UNROLL for (int j = 0; j < fb; j++) {
        UNROLL for (int t = 0; t < taps; t++)
            _mm512_store_ps(sums + (j * k * k + r0 * k + t) * PHASE_LANES,
                            acc[j * taps + t]);
        if (r0 == 0)
            _mm512_store_ps(bias + j * PHASE_LANES, bacc[j]);
    }
}

/* phase_wgrad_block_avx512 for all blocks of TR kernel rows in turn, so
 * that every block's first row is a constant. */
__attribute__((target("avx512f"), always_inline))
static inline void phase_wgrad_avx512(const Phases *q, const int k,
                                      const int tr, const int fb,
                                      const float *ph, const float *dp,
                                      const uint8_t *codes, size_t ps,
                                      ptrdiff_t ahead, int next, float *sums,
                                      float *bias)
{
    UNROLL for (int r0 = 0; r0 < k; r0 += tr)
        phase_wgrad_block_avx512(q, k, r0, tr, fb, ph, dp, codes, ps, ahead,
                                 next, sums, bias);
}

/*
 * build_phases_avx512 with 8-float vectors, in two steps through the
 * scratch after the planes (see phase_floats). Phase (a, b) at pooled
 * row py is phase (a - 2, b) at row py + 1, so the scratch holds only
 * the phases of a = 0 and 1, each as one run of pooled positions, row
 * after row, over k / 2 more rows than the planes. A shuffle and a
 * permute take the even floats of two masked loads, and plain stores
 * place them, since the lanes past a row's end are rewritten by the next
 * row. Then loads and aligned stores copy phase (a, b) into the planes'
 * vectors from its run (a % 2, b), a / 2 rows on, clearing the lanes past
 * the last window.
 *
 * Rows of 13 windows placed straight into the planes' vectors take
 * partial stores, which on AMD CPUs are slow as masked stores
 * (vmaskmovps) and as blends into the floats just stored. On a Zen 4,
 * building the planes of one sample that way took 0.65 us for 3 x 3
 * kernels and 1.42 us for 5 x 5, and these two steps 0.35 and 0.75 us.
 */
__attribute__((target("avx2,fma")))
static void build_phases_avx2(const Phases *q, const float *x, float *out)
{
    const int kp = q->k + 1, rows = q->ph + q->k / 2;
    const int halves = q->pw > 8 ? 2 : 1;
    const size_t block = (size_t)q->planes * PHASE_LANES;
    const size_t run = phase_run_floats(q);
    float *scratch = out + (size_t)q->vectors * block;
    __m256i mask[DIRECT_MAX_K + 1][4];

    for (int b = 0; b < kp; b++)
        for (int v = 0; v < 4; v++) {
            int from = q->pad - b - 8 * v, to = q->pad - b + q->w - 8 * v;

            mask[b][v] = _mm256_andnot_si256(row_mask8(from, 0),
                                             row_mask8(to, 0));
        }
    for (int py = 0; py < rows; py++)
        for (int a = 0; a < 2 && a < kp; a++) {
            int ir = 2 * py + a - q->pad;
            const float *src = padded_row(q, x, ir);
            float *to = scratch + (size_t)a * kp * run + (size_t)py * q->pw;

            for (int b = 0; b < kp; b++, to += run)
                for (int h = 0; h < halves; h++) {
                    const float *s = src + b + 16 * h;
                    __m256 d = _mm256_setzero_ps();

                    if (ir >= 0 && ir < q->h) {
                        __m256 even = _mm256_shuffle_ps(
                            _mm256_maskload_ps(s, mask[b][2 * h]),
                            _mm256_maskload_ps(s + 8, mask[b][2 * h + 1]),
                            _MM_SHUFFLE(2, 0, 2, 0));

                        d = _mm256_castpd_ps(_mm256_permute4x64_pd(
                            _mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0)));
                    }
                    _mm256_storeu_ps(to + 8 * h, d);
                }
        }
    for (int v = 0; v < q->vectors; v++) {
        float *to = out + (size_t)v * block;
        int left = q->pooled - v * PHASE_LANES;
        __m256 keep0 = _mm256_castsi256_ps(row_mask8(left, 0));
        __m256 keep1 = _mm256_castsi256_ps(row_mask8(left, 1));

        for (int a = 0; a < kp; a++) {
            const float *from = scratch + (size_t)(a % 2) * kp * run
                                + (size_t)(a / 2) * q->pw
                                + (size_t)v * PHASE_LANES;

            for (int b = 0; b < kp; b++, from += run, to += PHASE_LANES) {
                _mm256_store_ps(to, _mm256_and_ps(_mm256_loadu_ps(from),
                                                  keep0));
                _mm256_store_ps(to + 8,
                                _mm256_and_ps(_mm256_loadu_ps(from + 8),
                                              keep1));
            }
        }
    }
}

/* Entry x has bit i of x in byte i: eight flags from a movemask, one
 * per window, spread to one byte per window. */
#define SPREAD(x)                                                        \
    (((uint64_t)(x) & 1) | ((uint64_t)(x) >> 1 & 1) << 8                 \
     | ((uint64_t)(x) >> 2 & 1) << 16 | ((uint64_t)(x) >> 3 & 1) << 24   \
     | ((uint64_t)(x) >> 4 & 1) << 32 | ((uint64_t)(x) >> 5 & 1) << 40   \
     | ((uint64_t)(x) >> 6 & 1) << 48 | ((uint64_t)(x) >> 7 & 1) << 56)
#define SPREAD4(x) SPREAD(x), SPREAD((x) + 1), SPREAD((x) + 2), SPREAD((x) + 3)
#define SPREAD16(x)                                                      \
    SPREAD4(x), SPREAD4((x) + 4), SPREAD4((x) + 8), SPREAD4((x) + 12)
#define SPREAD64(x)                                                      \
    SPREAD16(x), SPREAD16((x) + 16), SPREAD16((x) + 32), SPREAD16((x) + 48)
static const uint64_t spread_bits[256] = {
    SPREAD64(0), SPREAD64(64), SPREAD64(128), SPREAD64(192),
};

/* load_codes_avx512 for eight windows. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256i load_codes_avx2(const uint8_t *from, int lanes)
{
    uint8_t tail[16] = {0};

    if (lanes >= 8)
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)from));
    memcpy(tail, from, (size_t)lanes);
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)tail));
}

/* pool_store_avx512 with 8-float vectors, lane mask M and LANES windows
 * (a count above 8 means 8). The codes come from the comparisons'
 * movemasks through spread_bits, in general registers: computing them
 * in vectors and packing them to bytes made the forward pass about 3%
 * longer. Only the last vector takes a masked store: on a Zen 4, masked
 * stores of every vector made the forward pass 26% longer. */
__attribute__((target("avx2,fma"), always_inline))
static inline void pool_store_avx2(__m256 a0, __m256 a1, __m256 a2,
                                   __m256 a3, int relu, __m256i m, int lanes,
                                   float *y, uint8_t *codes)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 right_top = _mm256_cmp_ps(a1, a0, _CMP_GT_OQ);
    __m256 right_bottom = _mm256_cmp_ps(a3, a2, _CMP_GT_OQ);
    /* vmaxps (a, b) gives a where a > b and b otherwise, NaNs included,
     * as the blend by that comparison does. On a Zen 4 it made the 3 x 3
     * forward pass 2% shorter (42.1 to 41.1 us for a shard of 8). */
    __m256 top = _mm256_max_ps(a1, a0);
    __m256 bottom = _mm256_max_ps(a3, a2);
    __m256 use_bottom = _mm256_cmp_ps(bottom, top, _CMP_GT_OQ);
    __m256 max = _mm256_max_ps(bottom, top);
    unsigned below = (unsigned)_mm256_movemask_ps(use_bottom);
    unsigned right = (below & (unsigned)_mm256_movemask_ps(right_bottom))
                     | (~below & (unsigned)_mm256_movemask_ps(right_top));
    unsigned blocked = 0;
    uint64_t bytes;

    if (relu) {
        blocked = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(max, zero, _CMP_NGT_UQ));
        max = _mm256_max_ps(max, zero);
    }
    if (lanes >= 8)
        _mm256_storeu_ps(y, max);
    else
        _mm256_maskstore_ps(y, m, max);
    bytes = spread_bits[right & 0xff] | spread_bits[below] << 1
            | spread_bits[blocked] << 2;
    if (lanes >= 8) {
        memcpy(codes, &bytes, sizeof bytes);
        return;
    }
    for (int i = 0; i < lanes; i++)
        codes[i] = (uint8_t)(bytes >> 8 * i);
}

/* phase_forward_avx512 with 8-float vectors, each vector of the planes
 * in two halves, and PHASE_FILTERS_256 filters. */
__attribute__((target("avx2,fma"), always_inline))
static inline void phase_forward_avx2(const Phases *q, const int k,
                                      const float *ph, const float *wt,
                                      const float *b, int nf, int relu,
                                      float *y, uint8_t *codes,
                                      size_t plane_stride)
{
    const int kp = k + 1;

    for (int at = 0; at < q->pooled; at += 8) {
        const float *in = ph + (size_t)(at / PHASE_LANES) * q->planes
                                   * PHASE_LANES + at % PHASE_LANES;
        const float *wv0 = wt;
        __m256i m = row_mask8(q->pooled - at, 0);
        __m256 acc[4][PHASE_FILTERS_256];

        PIN(in);
        PIN(wv0);
        UNROLL for (int j = 0; j < PHASE_FILTERS_256; j++)
            acc[0][j] = acc[1][j] = acc[2][j] = acc[3][j] =
                _mm256_broadcast_ss(b + j);
        UNROLL for (int t = 0; t < k * k; t++) {
            const int ky = t / k, kx = t % k;
            __m256 wv[PHASE_FILTERS_256];

            UNROLL for (int j = 0; j < PHASE_FILTERS_256; j++)
                wv[j] = _mm256_broadcast_ss(wv0 + t * PHASE_FILTERS_256 + j);
            UNROLL for (int o = 0; o < 4; o++) {
                __m256 xv = _mm256_load_ps(
                    in + ((ky + o / 2) * kp + kx + o % 2) * PHASE_LANES);

                UNROLL for (int j = 0; j < PHASE_FILTERS_256; j++)
                    acc[o][j] = _mm256_fmadd_ps(xv, wv[j], acc[o][j]);
            }
        }
        UNROLL for (int o = 0; o < 4; o++)
            UNROLL for (int j = 0; j < PHASE_FILTERS_256; j++)
                __asm__("" : "+x"(acc[o][j]));
        UNROLL for (int j = 0; j < PHASE_FILTERS_256; j++)
            if (j < nf)
                pool_store_avx2(acc[0][j], acc[1][j], acc[2][j], acc[3][j],
                                relu, m, q->pooled - at,
                                y + j * plane_stride + at,
                                codes + j * plane_stride + at);
    }
}

/*
 * phase_wgrad_avx512 for one filter with 8-float vectors, giving the
 * same sums bit for bit. Each half of the vectors of 16 is a pass of its
 * own. With PICKS set it picks the winner's input by two blends per tap,
 * as phase_wgrad_avx512 does with masks, and makes one FMA. The blends
 * take the codes' bits shifted to the sign bit as masks. Without PICKS
 * it multiplies the inputs of all four outputs of a window by the
 * gradient zeroed where that output lost or the window is blocked. Every
 * lane then adds the same nonzero products in the same order, and the
 * zero products leave its sums unchanged.
 *
 * Picks are faster where vblendvps is one operation (gemm_fast_blendv):
 * on a Zen 4 the masked products took 10% longer with 3 x 3 kernels and
 * 15% longer with 5 x 5 ones. On an Intel Xeon, whose vblendvps is two
 * operations or more, an earlier version of the picks took 1.3 and 1.1
 * times as long as the masked products.
 */
__attribute__((target("avx2,fma"), always_inline))
static inline void phase_wgrad_block_avx2(const Phases *q, const int k,
                                          const int r0, const int tr,
                                          const int picks, const float *ph,
                                          const float *dp,
                                          const uint8_t *codes,
                                          ptrdiff_t ahead, int next,
                                          float *sums, float *bias)
{
    const int kp = k + 1, rows = k - r0 < tr ? k - r0 : tr;
    const __m256i blocked = _mm256_set1_epi32(POOL_BLOCKED);

    for (int half = 0; half < 2; half++) {
        __m256 acc[REGS_256], bacc = _mm256_setzero_ps();
        int c0 = 8 * half;

        UNROLL for (int t = 0; t < rows * k; t++)
            acc[t] = _mm256_load_ps(sums + PHASE_LANES * t + c0);
        if (r0 == 0)
            bacc = _mm256_load_ps(bias + c0);
        for (int at = c0; at < q->pooled; at += PHASE_LANES) {
            const float *in = ph + (size_t)(at / PHASE_LANES) * q->planes
                                       * PHASE_LANES + c0;
            /* A masked load only for the last vector: on a Zen 4,
             * masked loads of every vector made the pass 7% longer. */
            __m256 d = q->pooled - at >= 8
                       ? _mm256_loadu_ps(dp + at)
                       : _mm256_maskload_ps(dp + at,
                                            row_mask8(q->pooled - at, 0));
            __m256i code = load_codes_avx2(codes + at, q->pooled - at);

            if (r0 == 0 && next > 0) {
                PREFETCH(dp + at + ahead);
                PREFETCH(codes + at + ahead);
            }
            /* The gradient zeroed in blocked windows. The masked
             * products use it for the bias sum only: keeping it in a
             * register for them made 5 x 5 kernels 7% slower on a Zen 4. */
            __m256 live = _mm256_and_ps(d, _mm256_castsi256_ps(
                                               _mm256_cmpgt_epi32(blocked,
                                                                  code)));

            if (picks)
                d = live;
            if (r0 == 0)
                bacc = _mm256_add_ps(bacc, live);
            PIN(in);
            if (picks) {
                __m256 right =
                    _mm256_castsi256_ps(_mm256_slli_epi32(code, 31));
                __m256 below =
                    _mm256_castsi256_ps(_mm256_slli_epi32(code, 30));

                UNROLL for (int ky = r0; ky < r0 + rows; ky++) {
                    __m256 left = _mm256_setzero_ps();

                    UNROLL for (int b = 0; b < kp; b++) {
                        const float *at_b = in + (ky * kp + b) * PHASE_LANES;
                        __m256 pick = _mm256_blendv_ps(
                            _mm256_load_ps(at_b),
                            _mm256_load_ps(at_b + kp * PHASE_LANES), below);

                        if (b > 0) {
                            const int t = (ky - r0) * k + b - 1;

                            acc[t] = _mm256_fmadd_ps(
                                d, _mm256_blendv_ps(left, pick, right),
                                acc[t]);
                        }
                        left = pick;
                    }
                }
                continue;
            }

            __m256 g[4];

            UNROLL for (int o = 0; o < 4; o++)
                g[o] = _mm256_and_ps(d, _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                                            code, _mm256_set1_epi32(o))));
            UNROLL for (int a = r0; a < r0 + rows + 1; a++)
                UNROLL for (int bx = 0; bx < kp; bx++) {
                    __m256 xv = _mm256_load_ps(in + (a * kp + bx)
                                                        * PHASE_LANES);

                    UNROLL for (int o = 0; o < 4; o++) {
                        const int ky = a - o / 2, kx = bx - o % 2;

                        if (ky >= r0 && ky < r0 + rows && kx >= 0
                            && kx < k) {
                            const int t = (ky - r0) * k + kx;

                            acc[t] = _mm256_fmadd_ps(g[o], xv, acc[t]);
                        }
                    }
                }
        }
        UNROLL for (int t = 0; t < rows * k; t++)
            _mm256_store_ps(sums + PHASE_LANES * t + c0, acc[t]);
        if (r0 == 0)
            _mm256_store_ps(bias + c0, bacc);
    }
}

/* phase_wgrad_avx512 for one filter with 8-float vectors, by picks when
 * PICKS is set and by masked gradients otherwise. */
__attribute__((target("avx2,fma"), always_inline))
static inline void phase_wgrad_avx2(const Phases *q, const int k,
                                    const int tr, const int picks,
                                    const float *ph, const float *dp,
                                    const uint8_t *codes, ptrdiff_t ahead,
                                    int next, float *sums, float *bias)
{
    UNROLL for (int r0 = 0; r0 < k; r0 += tr)
        phase_wgrad_block_avx2(q, k, r0, tr, picks, ph, dp, codes, ahead,
                               next, sums + (size_t)r0 * k * PHASE_LANES,
                               bias);
}

/* Kernel rows per weight-gradient block: their taps' sums fit the
 * registers beside the gradient, the bias sum and a few temporaries.
 * With AVX2, two rows of a 5 x 5 kernel fill all 16 ymm registers with
 * the gradient, the two code masks, two picks and the bias sum. On a
 * Zen 4 they took about 8% less time than one row at a time. Three rows
 * spill, and took about as long as two. The last block may have fewer
 * rows. */
#define PHASE_ROWS_512(k) ((k) <= 5 ? (k) : (k) == 6 ? 4 : 3)
#define PHASE_ROWS_256(k) ((k) <= 3 ? (k) : (k) <= 5 ? 2 : 1)

/* Filters per AVX-512 weight-gradient block, whose sums and picks fit
 * the registers. Blocks of two filters share the fixed work of a call
 * and of each vector: with 3 x 3 kernels they took about 5% less time
 * than single filters. */
#define PHASE_WGRAD_FILTERS(k) ((k) == 1 ? 4 : (k) <= 3 ? 2 : 1)

#define DEFINE_PHASE_KERNELS(K)                                              \
    __attribute__((target("avx512f")))                                       \
    static void phase_forward_avx512_k##K(                                   \
        const Phases *q, const float *ph, const float *wt, const float *b,   \
        int nf, int relu, float *y, uint8_t *codes, size_t ps)               \
    {                                                                        \
        phase_forward_avx512(q, K, ph, wt, b, nf, relu, y, codes, ps);       \
    }                                                                        \
    __attribute__((target("avx2,fma")))                                      \
    static void phase_forward_avx2_k##K(                                     \
        const Phases *q, const float *ph, const float *wt, const float *b,   \
        int nf, int relu, float *y, uint8_t *codes, size_t ps)               \
    {                                                                        \
        phase_forward_avx2(q, K, ph, wt, b, nf, relu, y, codes, ps);         \
    }                                                                        \
    __attribute__((target("avx512f")))                                       \
    static void phase_wgrad_avx512_k##K(                                     \
        const Phases *q, const float *ph, const float *dp,                   \
        const uint8_t *codes, size_t ps, ptrdiff_t ahead, int next,          \
        float *sums, float *bias)                                            \
    {                                                                        \
        phase_wgrad_avx512(q, K, PHASE_ROWS_512(K), PHASE_WGRAD_FILTERS(K),  \
                           ph, dp, codes, ps, ahead, next, sums, bias);      \
    }                                                                        \
    __attribute__((target("avx512f")))                                       \
    static void phase_wgrad_one_avx512_k##K(                                 \
        const Phases *q, const float *ph, const float *dp,                   \
        const uint8_t *codes, size_t ps, ptrdiff_t ahead, int next,          \
        float *sums, float *bias)                                            \
    {                                                                        \
        phase_wgrad_avx512(q, K, PHASE_ROWS_512(K), 1, ph, dp, codes, ps,    \
                           ahead, next, sums, bias);                         \
    }                                                                        \
    __attribute__((target("avx2,fma")))                                      \
    static void phase_wgrad_avx2_k##K(                                       \
        const Phases *q, const float *ph, const float *dp,                   \
        const uint8_t *codes, size_t ps, ptrdiff_t ahead, int next,          \
        float *sums, float *bias)                                            \
    {                                                                        \
        (void)ps;                                                            \
        phase_wgrad_avx2(q, K, PHASE_ROWS_256(K), 0, ph, dp, codes, ahead,   \
                         next, sums, bias);                                  \
    }                                                                        \
    __attribute__((target("avx2,fma")))                                      \
    static void phase_wgrad_picks_avx2_k##K(                                 \
        const Phases *q, const float *ph, const float *dp,                   \
        const uint8_t *codes, size_t ps, ptrdiff_t ahead, int next,          \
        float *sums, float *bias)                                            \
    {                                                                        \
        (void)ps;                                                            \
        phase_wgrad_avx2(q, K, PHASE_ROWS_256(K), 1, ph, dp, codes, ahead,   \
                         next, sums, bias);                                  \
    }

DEFINE_PHASE_KERNELS(1)
DEFINE_PHASE_KERNELS(2)
DEFINE_PHASE_KERNELS(3)
DEFINE_PHASE_KERNELS(4)
DEFINE_PHASE_KERNELS(5)
DEFINE_PHASE_KERNELS(6)
DEFINE_PHASE_KERNELS(7)

/* A weight-gradient kernel of the phase planes (phase_wgrad_avx512). */
typedef void (*PhaseWgradFn)(const Phases *, const float *, const float *,
                             const uint8_t *, size_t, ptrdiff_t, int,
                             float *, float *);

/* The phase kernels for one side K and instruction set, the filters per
 * forward block, and a weight gradient for blocks of WGRAD_FILTERS
 * filters and one for single filters. */
typedef struct {
    void (*build)(const Phases *, const float *, float *);
    void (*forward)(const Phases *, const float *, const float *,
                    const float *, int, int, float *, uint8_t *, size_t);
    PhaseWgradFn wgrad, wgrad_one;
    int filters, wgrad_filters;
} PhaseKernels;

#define PHASE_KERNELS_512(K)                                            \
    {build_phases_avx512, phase_forward_avx512_k##K,                    \
     phase_wgrad_avx512_k##K, phase_wgrad_one_avx512_k##K,              \
     PHASE_FILTERS_512, PHASE_WGRAD_FILTERS(K)}
#define PHASE_KERNELS_256(K)                                            \
    {build_phases_avx2, phase_forward_avx2_k##K, phase_wgrad_avx2_k##K, \
     phase_wgrad_avx2_k##K, PHASE_FILTERS_256, 1}
#define PHASE_KERNELS_256_PICKS(K)                                      \
    {build_phases_avx2, phase_forward_avx2_k##K,                        \
     phase_wgrad_picks_avx2_k##K, phase_wgrad_picks_avx2_k##K,          \
     PHASE_FILTERS_256, 1}

static const PhaseKernels phase_kernels_512[DIRECT_MAX_K] = {
    PHASE_KERNELS_512(1), PHASE_KERNELS_512(2), PHASE_KERNELS_512(3),
    PHASE_KERNELS_512(4), PHASE_KERNELS_512(5), PHASE_KERNELS_512(6),
    PHASE_KERNELS_512(7),
};
static const PhaseKernels phase_kernels_256[DIRECT_MAX_K] = {
    PHASE_KERNELS_256(1), PHASE_KERNELS_256(2), PHASE_KERNELS_256(3),
    PHASE_KERNELS_256(4), PHASE_KERNELS_256(5), PHASE_KERNELS_256(6),
    PHASE_KERNELS_256(7),
};

static const PhaseKernels phase_kernels_256_picks[DIRECT_MAX_K] = {
    PHASE_KERNELS_256_PICKS(1), PHASE_KERNELS_256_PICKS(2),
    PHASE_KERNELS_256_PICKS(3), PHASE_KERNELS_256_PICKS(4),
    PHASE_KERNELS_256_PICKS(5), PHASE_KERNELS_256_PICKS(6),
    PHASE_KERNELS_256_PICKS(7),
};

static const PhaseKernels *phase_kernels_for(GemmKernel kernel, int k)
{
    int picks = avx2_picks >= 0 ? avx2_picks : gemm_fast_blendv();

    if (kernel == GEMM_KERNEL_AVX512)
        return &phase_kernels_512[k - 1];
    return picks ? &phase_kernels_256_picks[k - 1] : &phase_kernels_256[k - 1];
}

#endif /* DIRECT_X86 */

/* Writes the F output planes of N samples for direct_conv_forward. */
static void forward_samples(GemmKernel kernel, const ConvGeom *g, int f,
                            int n, const float *x, size_t x_sample_stride,
                            const float *w, const float *bias, int relu,
                            float *y, size_t y_sample_stride,
                            size_t y_plane_stride)
{
#ifdef DIRECT_X86
    const Kernels *kn = kernels_for(kernel, g->k);
    Plane p = plane_of(g);
    int kk = g->k * g->k, group = kn->fwd_filters;
    float *wt = group_weights(w, f, kk, group);
    float *sh = xmalloc_aligned(shifted_floats(&p) * sizeof *sh);
    float b[FWD_FILTERS_512] = {0};

    for (int s = 0; s < n; s++) {
        kn->shift(&p, x + s * x_sample_stride, sh);
        for (int f0 = 0; f0 < f; f0 += group) {
            int nf = f - f0 < group ? f - f0 : group;

            for (int j = 0; j < nf; j++)
                b[j] = bias != NULL ? bias[f0 + j] : 0.0f;
            kn->forward(&p, sh, wt + (size_t)f0 * kk, b, nf, relu,
                        y + f0 * y_plane_stride + s * y_sample_stride,
                        y_plane_stride);
        }
    }
    free(sh);
    free(wt);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)w, (void)bias, (void)relu, (void)y, (void)y_sample_stride;
    (void)y_plane_stride;
#endif
}

void direct_conv_forward(GemmKernel kernel, const ConvGeom *g, int f, int n,
                         const float *x, size_t x_sample_stride,
                         const float *w, const float *bias, int relu,
                         float *y, size_t y_sample_stride,
                         size_t y_plane_stride)
{
    forward_samples(kernel, g, f, n, x, x_sample_stride, w, bias, relu, y,
                    y_sample_stride, y_plane_stride);
}

void direct_conv_pool_forward(GemmKernel kernel, const ConvGeom *g, int f,
                              int n, const float *x, size_t x_sample_stride,
                              const float *w, const float *bias, int relu,
                              float *y, uint8_t *codes,
                              size_t y_sample_stride, size_t y_plane_stride)
{
#ifdef DIRECT_X86
    const PhaseKernels *kn = phase_kernels_for(kernel, g->k);
    Phases q = phases_of(g);
    int kk = g->k * g->k, group = kn->filters;
    float *wt = group_weights(w, f, kk, group);
    float *ph = xmalloc_aligned(phase_floats(&q) * sizeof *ph);
    float b[PHASE_FILTERS_512] = {0};

    memset(ph, 0, phase_floats(&q) * sizeof *ph);
    for (int s = 0; s < n; s++) {
        kn->build(&q, x + s * x_sample_stride, ph);
        for (int f0 = 0; f0 < f; f0 += group) {
            int nf = f - f0 < group ? f - f0 : group;
            size_t at = f0 * y_plane_stride + s * y_sample_stride;

            for (int j = 0; j < nf; j++)
                b[j] = bias != NULL ? bias[f0 + j] : 0.0f;
            kn->forward(&q, ph, wt + (size_t)f0 * kk, b, nf, relu, y + at,
                        codes + at, y_plane_stride);
        }
    }
    free(ph);
    free(wt);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)w, (void)bias, (void)relu, (void)y, (void)codes;
    (void)y_sample_stride, (void)y_plane_stride;
#endif
}

void direct_conv_weight_grad(GemmKernel kernel, const ConvGeom *g, int f,
                             int n, const float *x, size_t x_sample_stride,
                             const float *dy, size_t dy_sample_stride,
                             size_t dy_plane_stride, float *dw)
{
#ifdef DIRECT_X86
    const Kernels *kn = kernels_for(kernel, g->k);
    Plane p = plane_of(g);
    int k = g->k, kk = k * k;
    int fb = kn->wgrad_filters, tr = kn->wgrad_rows;
    int fe = f < fb ? fb : f;       /* filters, with zero planes added */
    int groups = (fe + fb - 1) / fb;
    size_t ohw = (size_t)p.oh * p.ow;
    /* One vector per (group, block of kernel rows, filter, tap of the
     * block), in that order: groups * fb * kk vectors. */
    size_t block = (size_t)fb * tr * k * SUM_LANES;
    size_t count = (size_t)groups * fb * kk * SUM_LANES;
    float *sums = xmalloc_aligned(count * sizeof *sums);
    float *sh = xmalloc_aligned(shifted_floats(&p) * sizeof *sh);
    float *padded = NULL;

    if (f < fb) {
        padded = pad_filters(dy, dy_sample_stride, dy_plane_stride, f, fb, n,
                             ohw);
        dy = padded;
        dy_sample_stride = ohw;
        dy_plane_stride = (size_t)n * ohw;
    }
    memset(sums, 0, count * sizeof *sums);
    for (int s = 0; s < n; s++) {
        kn->shift(&p, x + s * x_sample_stride, sh);
        for (int q = 0; q < groups; q++) {
            int f0 = group_start(q, fb, fe);
            const float *d = dy + f0 * dy_plane_stride + s * dy_sample_stride;

            for (int r0 = 0; r0 < k; r0 += tr)
                kn->wgrad(&p, sh, r0, d, dy_plane_stride,
                          sums + ((size_t)q * k / tr + r0 / tr) * block);
        }
    }
    for (int q = 0; q < groups; q++) {
        int f0 = group_start(q, fb, fe);

        for (int r0 = 0; r0 < k; r0 += tr) {
            const float *v = sums + ((size_t)q * k / tr + r0 / tr) * block;

            for (int j = 0; j < fb && f0 + j < f; j++)
                for (int t = 0; t < tr * k; t++)
                    dw[(size_t)(f0 + j) * kk + r0 * k + t] = sum_vector(
                        v + ((size_t)j * tr * k + t) * SUM_LANES);
        }
    }
    free(padded);
    free(sh);
    free(sums);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)dy, (void)dy_sample_stride, (void)dy_plane_stride, (void)dw;
#endif
}


void direct_conv_pool_weight_grad(GemmKernel kernel, const ConvGeom *g,
                                  int f, int n, const float *x,
                                  size_t x_sample_stride, const float *dp,
                                  const uint8_t *codes,
                                  size_t p_sample_stride,
                                  size_t p_plane_stride, float *dw,
                                  float *db)
{
#ifdef DIRECT_X86
    const PhaseKernels *kn = phase_kernels_for(kernel, g->k);
    Phases q = phases_of(g);
    int kk = g->k * g->k;
    /* The vectors of the weight sums, then one per filter for the bias. */
    size_t count = (size_t)f * (kk + 1) * SUM_LANES;
    float *sums = xmalloc_aligned(count * sizeof *sums);
    float *bias = sums + (size_t)f * kk * SUM_LANES;
    float *ph = xmalloc_aligned(phase_floats(&q) * sizeof *ph);

    memset(sums, 0, count * sizeof *sums);
    memset(ph, 0, phase_floats(&q) * sizeof *ph);
    for (int s = 0; s < n; s++) {
        kn->build(&q, x + s * x_sample_stride, ph);
        for (int j = 0; j < f;) {
            size_t at = j * p_plane_stride + s * p_sample_stride;
            int block = f - j >= kn->wgrad_filters;
            int filters = block ? kn->wgrad_filters : 1;
            /* Offset from this call's filters to the next call's, in this
             * sample or the next, which the kernel prefetches, and how
             * many filters that call takes: 0 after the last call. */
            ptrdiff_t ahead = 0;
            int next = 0;

            if (j + filters < f) {
                ahead = (ptrdiff_t)(filters * p_plane_stride);
                next = f - (j + filters) >= kn->wgrad_filters
                       ? kn->wgrad_filters : 1;
            } else if (s + 1 < n) {
                ahead = (ptrdiff_t)p_sample_stride
                        - (ptrdiff_t)(j * p_plane_stride);
                next = f >= kn->wgrad_filters ? kn->wgrad_filters : 1;
            }
            (block ? kn->wgrad : kn->wgrad_one)(
                &q, ph, dp + at, codes + at, p_plane_stride, ahead, next,
                sums + (size_t)j * kk * SUM_LANES,
                bias + (size_t)j * SUM_LANES);
            j += filters;
        }
    }
    for (size_t i = 0; i < (size_t)f * kk; i++)
        dw[i] = sum_vector(sums + i * SUM_LANES);
    for (int j = 0; j < f; j++)
        db[j] = sum_vector(bias + (size_t)j * SUM_LANES);
    free(ph);
    free(sums);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)dp, (void)codes, (void)p_sample_stride, (void)p_plane_stride;
    (void)dw, (void)db;
#endif
}
