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
 * With 2x2 pooling after the convolution, direct_conv_pool_forward and
 * direct_conv_pool_weight_grad pass each group of filters of a sample
 * through a buffer that stays in L1. The forward pass pools the buffer,
 * and the weight gradient expands the pooled gradient into it. So the
 * convolution's output and its gradient are never stored whole.
 *
 * Lanes past OW are wasted: 26 columns use 26 of 32 lanes (81%), 28 use
 * 88%.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "direct.h"
#include "pool.h"
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

                _mm256_maskstore_ps(
                    row + p->pad + c, mc,
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
        for (int j = 0; j < nf; j++) {
            float *out = y + j * plane_stride + (size_t)oy * p->ow;

            for (int v = 0; v < vecs; v++) {
                __m256 r = relu ? _mm256_max_ps(a[v][j], zero) : a[v][j];

                if (8 * v + 8 <= p->ow)
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

/* Sums the SUM_LANES floats of vector V in a fixed order. */
static float sum_vector(const float *v)
{
    float half[SUM_LANES];

    memcpy(half, v, sizeof half);
    for (int width = SUM_LANES / 2; width >= 1; width /= 2)
        for (int i = 0; i < width; i++)
            half[i] += half[i + width];
    return half[0];
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

/* Writes to TILE the output gradient planes of filters F0 .. F0 + FB - 1
 * of sample S, OHW floats apart, by expanding the pooled gradients DP
 * with their winners ARGMAX and ReLU mask Y as pool2_backward does.
 * Planes of filters from F on are zero. */
static void expand_pooled(const Plane *p, int f0, int fb, int f, int s,
                          const float *dp, const int32_t *argmax,
                          const float *y, size_t sample_stride,
                          size_t plane_stride, float *tile)
{
    size_t ohw = (size_t)p->oh * p->ow;
    size_t at = f0 * plane_stride + s * sample_stride;
    int real = f - f0 < fb ? f - f0 : fb;

    pool2_backward_strided((size_t)real, p->oh, p->ow, dp + at, argmax + at,
                           y != NULL ? y + at : NULL, plane_stride, tile,
                           ohw);
    if (real < fb)
        memset(tile + real * ohw, 0, (size_t)(fb - real) * ohw * sizeof *tile);
}

#endif /* DIRECT_X86 */

/* Output rows per pooled chunk: an even count, so that no window
 * straddles two chunks. 8 filters' rows of up to 32 floats take 8 KB. */
#define POOL_CHUNK_ROWS 8

/* Runs direct_conv_forward, or direct_conv_pool_forward when ARGMAX is
 * not NULL. Then the rows of each group of filters of a sample go, in
 * chunks of POOL_CHUNK_ROWS, to TILE, which stays in L1 beside the
 * shifted copies, and are pooled from there. A tile of whole planes
 * (25 KB on 28 x 28) had made the pass slower than the separate ones. */
static void forward_samples(GemmKernel kernel, const ConvGeom *g, int f,
                            int n, const float *x, size_t x_sample_stride,
                            const float *w, const float *bias, int relu,
                            float *y, int32_t *argmax,
                            size_t y_sample_stride, size_t y_plane_stride)
{
#ifdef DIRECT_X86
    const Kernels *kn = kernels_for(kernel, g->k);
    Plane p = plane_of(g);
    int kk = g->k * g->k, group = kn->fwd_filters;
    float *wt = group_weights(w, f, kk, group);
    float *sh = xmalloc_aligned(shifted_floats(&p) * sizeof *sh);
    float *tile = NULL;
    float b[FWD_FILTERS_512] = {0};

    if (argmax != NULL)
        tile = xmalloc_aligned((size_t)group * POOL_CHUNK_ROWS * p.ow
                               * sizeof *tile);
    for (int s = 0; s < n; s++) {
        kn->shift(&p, x + s * x_sample_stride, sh);
        for (int f0 = 0; f0 < f; f0 += group) {
            int nf = f - f0 < group ? f - f0 : group;
            size_t at = f0 * y_plane_stride + s * y_sample_stride;

            for (int j = 0; j < nf; j++)
                b[j] = bias != NULL ? bias[f0 + j] : 0.0f;
            if (argmax == NULL) {
                kn->forward(&p, sh, wt + (size_t)f0 * kk, b, nf, relu,
                            y + at, y_plane_stride);
                continue;
            }
            for (int oy = 0; oy < p.oh; oy += POOL_CHUNK_ROWS) {
                Plane rows = p;
                size_t chunk, pooled_at;

                rows.oh = p.oh - oy < POOL_CHUNK_ROWS ? p.oh - oy
                                                      : POOL_CHUNK_ROWS;
                chunk = (size_t)rows.oh * p.ow;
                pooled_at = at + (size_t)(oy / 2) * (p.ow / 2);
                kn->forward(&rows, sh + (size_t)oy * p.k * ROW_FLOATS,
                            wt + (size_t)f0 * kk, b, nf, relu, tile, chunk);
                pool2_forward_strided(nf, rows.oh, p.ow, tile, chunk,
                                      y + pooled_at, argmax + pooled_at,
                                      y_plane_stride);
            }
        }
    }
    free(tile);
    free(sh);
    free(wt);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)w, (void)bias, (void)relu, (void)y, (void)argmax;
    (void)y_sample_stride, (void)y_plane_stride;
#endif
}

void direct_conv_forward(GemmKernel kernel, const ConvGeom *g, int f, int n,
                         const float *x, size_t x_sample_stride,
                         const float *w, const float *bias, int relu,
                         float *y, size_t y_sample_stride,
                         size_t y_plane_stride)
{
    forward_samples(kernel, g, f, n, x, x_sample_stride, w, bias, relu, y,
                    NULL, y_sample_stride, y_plane_stride);
}

void direct_conv_pool_forward(GemmKernel kernel, const ConvGeom *g, int f,
                              int n, const float *x, size_t x_sample_stride,
                              const float *w, const float *bias, int relu,
                              float *y, int32_t *argmax,
                              size_t y_sample_stride, size_t y_plane_stride)
{
    forward_samples(kernel, g, f, n, x, x_sample_stride, w, bias, relu, y,
                    argmax, y_sample_stride, y_plane_stride);
}

/* Runs direct_conv_weight_grad, or direct_conv_pool_weight_grad when
 * ARGMAX is not NULL: then DY is the pooled gradient, and each group's
 * output gradient planes of a sample are expanded into a buffer in L1
 * just before their block runs. One pool2_backward_strided call per
 * block matters: with a call per plane, the portable pooling code that
 * the AVX2 kernel uses made this 10% slower than the separate passes. */
static void wgrad_samples(GemmKernel kernel, const ConvGeom *g, int f,
                          int n, const float *x, size_t x_sample_stride,
                          const float *dy, const int32_t *argmax,
                          const float *y, size_t dy_sample_stride,
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
    float *padded = NULL, *tile = NULL;

    if (argmax != NULL) {
        tile = xmalloc_aligned((size_t)fb * ohw * sizeof *tile);
    } else if (f < fb) {
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
            size_t plane_stride = dy_plane_stride;

            if (tile != NULL) {
                expand_pooled(&p, f0, fb, f, s, dy, argmax, y,
                              dy_sample_stride, dy_plane_stride, tile);
                d = tile;
                plane_stride = ohw;
            }
            for (int r0 = 0; r0 < k; r0 += tr)
                kn->wgrad(&p, sh, r0, d, plane_stride,
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
    free(tile);
    free(padded);
    free(sh);
    free(sums);
#else
    (void)kernel, (void)g, (void)f, (void)n, (void)x, (void)x_sample_stride;
    (void)dy, (void)argmax, (void)y, (void)dy_sample_stride;
    (void)dy_plane_stride, (void)dw;
#endif
}

void direct_conv_weight_grad(GemmKernel kernel, const ConvGeom *g, int f,
                             int n, const float *x, size_t x_sample_stride,
                             const float *dy, size_t dy_sample_stride,
                             size_t dy_plane_stride, float *dw)
{
    wgrad_samples(kernel, g, f, n, x, x_sample_stride, dy, NULL, NULL,
                  dy_sample_stride, dy_plane_stride, dw);
}

void direct_conv_pool_weight_grad(GemmKernel kernel, const ConvGeom *g,
                                  int f, int n, const float *x,
                                  size_t x_sample_stride, const float *dp,
                                  const int32_t *argmax, const float *y,
                                  size_t p_sample_stride,
                                  size_t p_plane_stride, float *dw)
{
    wgrad_samples(kernel, g, f, n, x, x_sample_stride, dp, argmax, y,
                  p_sample_stride, p_plane_stride, dw);
}
