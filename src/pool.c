/*
 * pool: 2x2 max pooling with stride 2, forward and backward, in portable
 * C and with AVX-512.
 *
 * Both directions walk the planes row by row. A row function handles one
 * row of windows: it reads two input rows and writes one output row, or
 * the reverse for the gradient. The portable row functions are written
 * for GCC's vectoriser. The AVX-512 ones take 16 windows per step with
 * masked loads and stores, so a row of 13 or 14 windows (the first
 * pooling of "small" and "tf") is one step. The plane loops are inlined
 * into each entry point, so the AVX-512 rows run without a call per row.
 * That made most passes of the pooling layers of "small" and "tf" 5 to
 * 10% faster. The backward pass over 28 x 28 planes did not gain.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_X86 1
#endif

#include "gemm.h"
#include "pool.h"

typedef void (*RowForward)(const float *restrict r0, const float *restrict r1,
                           int ow, float *restrict y,
                           int32_t *restrict argmax);
typedef void (*RowBackward)(const float *restrict dy, const float *restrict y,
                            const int32_t *restrict argmax, int ow,
                            float *restrict r0, float *restrict r1);

/* ---------------------------------------------------------------- rows */

/*
 * One row of OW windows over input rows R0 and R1. The body is written so
 * that GCC vectorises it: winners are chosen by selects on values and the
 * index by integer arithmetic, never by branches, and ARGMAX is int32 like
 * the floats, since a narrowing store stops the vectoriser. On activations
 * the winner is unpredictable, so a branchy version spends most of its
 * time on mispredictions.
 */
static void pool_row(const float *restrict r0, const float *restrict r1,
                     int ow, float *restrict y, int32_t *restrict argmax)
{
    for (int ox = 0; ox < ow; ox++) {
        float v0 = r0[2 * ox], v1 = r0[2 * ox + 1];
        float v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
        int32_t right_top = v1 > v0;
        int32_t right_bottom = v3 > v2;
        float top = right_top ? v1 : v0;
        float bottom = right_bottom ? v3 : v2;
        int32_t use_bottom = bottom > top;

        y[ox] = use_bottom ? bottom : top;
        argmax[ox] = use_bottom * (2 + right_bottom)
                     + (1 - use_bottom) * right_top;
    }
}

#ifdef POOL_X86
/* The mask of lanes [0, COUNT) of a 16-lane vector, COUNT clipped to
 * 0..16. */
static inline __mmask16 first_lanes(int count)
{
    if (count <= 0)
        return 0;
    return count >= 16 ? (__mmask16)0xffff
                       : (__mmask16)((1u << count) - 1u);
}

/*
 * pool_row with 16 windows per step. Two masked loads bring 32 floats of
 * an input row, and two permutes split them into the left (even) and
 * right (odd) inputs of each window. The comparisons are ordered and
 * false on NaN, like the > of pool_row, so both choose the same winners.
 * Rows of 13 or 14 windows (the first pooling of "small" and "tf") take
 * one step each, where pool_row spends a quarter of its time on the tail.
 */
__attribute__((target("avx512f"), always_inline))
static inline void pool_row_avx512(const float *restrict r0,
                            const float *restrict r1, int ow,
                            float *restrict y, int32_t *restrict argmax)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16,
                                           18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);

    for (int x0 = 0; x0 < ow; x0 += 16) {
        int inputs = 2 * (ow - x0);
        __mmask16 lo = first_lanes(inputs), hi = first_lanes(inputs - 16);
        const float *p0 = r0 + 2 * x0, *p1 = r1 + 2 * x0;
        __m512 a = _mm512_maskz_loadu_ps(lo, p0);
        __m512 b = _mm512_maskz_loadu_ps(hi, p0 + 16);
        __m512 v0 = _mm512_permutex2var_ps(a, even, b);
        __m512 v1 = _mm512_permutex2var_ps(a, odd, b);

        a = _mm512_maskz_loadu_ps(lo, p1);
        b = _mm512_maskz_loadu_ps(hi, p1 + 16);
        __m512 v2 = _mm512_permutex2var_ps(a, even, b);
        __m512 v3 = _mm512_permutex2var_ps(a, odd, b);

        __mmask16 right_top = _mm512_cmp_ps_mask(v1, v0, _CMP_GT_OQ);
        __mmask16 right_bottom = _mm512_cmp_ps_mask(v3, v2, _CMP_GT_OQ);
        __m512 top = _mm512_mask_blend_ps(right_top, v0, v1);
        __m512 bottom = _mm512_mask_blend_ps(right_bottom, v2, v3);
        __mmask16 use_bottom = _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ);
        __m512i q_top = _mm512_maskz_mov_epi32(right_top, one);
        __m512i q_bottom = _mm512_mask_add_epi32(two, right_bottom, two, one);
        __mmask16 out = first_lanes(ow - x0);

        _mm512_mask_storeu_ps(y + x0, out,
                              _mm512_mask_blend_ps(use_bottom, top, bottom));
        _mm512_mask_storeu_epi32(argmax + x0, out,
                                 _mm512_mask_blend_epi32(use_bottom, q_top,
                                                         q_bottom));
    }
}
#endif

/* Returns the bits of F, or 0 (the bits of +0.0f) where KEEP is 0. */
static inline uint32_t float_bits_if(float f, int keep)
{
    uint32_t bits;

    memcpy(&bits, &f, sizeof bits);
    return bits & (0u - (uint32_t)(keep != 0));
}

/* Writes input rows R0 and R1 under one row of OW windows. Each window's
 * gradient goes to the input that won and +0 to the other three, and
 * where Y is not NULL it passes only where Y > 0. Bit masks select the
 * values, not branches, because the winner is unpredictable and a branchy
 * version measured slower. */
static void pool_row_backward(const float *restrict dy,
                              const float *restrict y,
                              const int32_t *restrict argmax, int ow,
                              float *restrict r0, float *restrict r1)
{
    for (int ox = 0; ox < ow; ox++) {
        int32_t q = argmax[ox];
        int pass = y == NULL || y[ox] > 0.0f;
        uint32_t out[4];

        for (int k = 0; k < 4; k++)
            out[k] = float_bits_if(dy[ox], pass && q == k);
        memcpy(&r0[2 * ox], &out[0], 2 * sizeof out[0]);
        memcpy(&r1[2 * ox], &out[2], 2 * sizeof out[0]);
    }
}

#ifdef POOL_X86
/*
 * pool_row_backward with 16 windows per step. Four masked moves give each
 * of a window's inputs the gradient where it won and +0 elsewhere, and
 * keep the bits of the gradient as float_bits_if does. Two permutes then
 * interleave the left and right inputs of each input row.
 */
__attribute__((target("avx512f"), always_inline))
static inline void pool_row_backward_avx512(const float *restrict dy,
                                     const float *restrict y,
                                     const int32_t *restrict argmax, int ow,
                                     float *restrict r0, float *restrict r1)
{
    const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4,
                                          20, 5, 21, 6, 22, 7, 23);
    const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));

    for (int x0 = 0; x0 < ow; x0 += 16) {
        __mmask16 out = first_lanes(ow - x0);
        int inputs = 2 * (ow - x0);
        __mmask16 lo = first_lanes(inputs), hi = first_lanes(inputs - 16);
        __m512 g = _mm512_maskz_loadu_ps(out, dy + x0);
        __m512i q = _mm512_maskz_loadu_epi32(out, argmax + x0);

        if (y != NULL) {
            __m512 yv = _mm512_maskz_loadu_ps(out, y + x0);
            g = _mm512_maskz_mov_ps(
                _mm512_cmp_ps_mask(yv, _mm512_setzero_ps(), _CMP_GT_OQ), g);
        }
        __m512 g0 = _mm512_maskz_mov_ps(
            _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(0)), g);
        __m512 g1 = _mm512_maskz_mov_ps(
            _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(1)), g);
        __m512 g2 = _mm512_maskz_mov_ps(
            _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(2)), g);
        __m512 g3 = _mm512_maskz_mov_ps(
            _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(3)), g);
        float *p0 = r0 + 2 * x0, *p1 = r1 + 2 * x0;

        _mm512_mask_storeu_ps(p0, lo, _mm512_permutex2var_ps(g0, low, g1));
        _mm512_mask_storeu_ps(p0 + 16, hi,
                              _mm512_permutex2var_ps(g0, high, g1));
        _mm512_mask_storeu_ps(p1, lo, _mm512_permutex2var_ps(g2, low, g3));
        _mm512_mask_storeu_ps(p1 + 16, hi,
                              _mm512_permutex2var_ps(g2, high, g3));
    }
}
#endif

/* ---------------------------------------------------------------- planes */

/* Input plane p starts at X + p*X_STRIDE, and its output and winners at
 * Y + p*Y_STRIDE and ARGMAX + p*Y_STRIDE. */
__attribute__((always_inline))
static inline void forward_planes(RowForward row, size_t planes, int h,
                                  int w, const float *x, size_t x_stride,
                                  float *y, int32_t *argmax,
                                  size_t y_stride)
{
    int oh = h / 2, ow = w / 2;

    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * x_stride;
        float *yp = y + p * y_stride;
        int32_t *ap = argmax + p * y_stride;

        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = xp + (size_t)(2 * oy) * w;
            row(r0, r0 + w, ow, yp, ap);
            yp += ow;
            ap += ow;
        }
    }
}

/* Each input gradient is written once, with no clearing pass. Plane p
 * of DY, ARGMAX and Y starts at p*Y_STRIDE, and plane p of DX at
 * p*X_STRIDE. */
__attribute__((always_inline))
static inline void backward_planes(RowBackward row, size_t planes, int h,
                                   int w, const float *dy,
                                   const int32_t *argmax, const float *y,
                                   size_t y_stride, float *dx,
                                   size_t x_stride)
{
    int oh = h / 2, ow = w / 2;

    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * x_stride;
        const float *gp = dy + p * y_stride;
        const int32_t *ap = argmax + p * y_stride;
        const float *yp = y != NULL ? y + p * y_stride : NULL;

        for (int oy = 0; oy < oh; oy++) {
            float *r0 = dxp + (size_t)(2 * oy) * w;

            row(gp, yp, ap, ow, r0, r0 + w);
            if (w > 2 * ow) {
                r0[w - 1] = 0.0f;
                r0[2 * w - 1] = 0.0f;
            }
            gp += ow;
            ap += ow;
            if (yp != NULL)
                yp += ow;
        }
        if (h > 2 * oh)
            memset(dxp + (size_t)(h - 1) * w, 0, (size_t)w * sizeof *dxp);
    }
}

void pool2_forward_portable(size_t planes, int h, int w, const float *x,
                            float *y, int32_t *argmax)
{
    forward_planes(pool_row, planes, h, w, x, (size_t)h * w, y, argmax,
                   (size_t)(h / 2) * (w / 2));
}

void pool2_backward_portable(size_t planes, int h, int w, const float *dy,
                             const int32_t *argmax, const float *y,
                             float *dx)
{
    backward_planes(pool_row_backward, planes, h, w, dy, argmax, y,
                    (size_t)(h / 2) * (w / 2), dx, (size_t)h * w);
}

#ifdef POOL_X86
__attribute__((target("avx512f")))
void pool2_forward_avx512(size_t planes, int h, int w, const float *x,
                          float *y, int32_t *argmax)
{
    forward_planes(pool_row_avx512, planes, h, w, x, (size_t)h * w, y,
                   argmax, (size_t)(h / 2) * (w / 2));
}

__attribute__((target("avx512f")))
void pool2_backward_avx512(size_t planes, int h, int w, const float *dy,
                           const int32_t *argmax, const float *y, float *dx)
{
    backward_planes(pool_row_backward_avx512, planes, h, w, dy, argmax, y,
                    (size_t)(h / 2) * (w / 2), dx, (size_t)h * w);
}
#else
/* Not an x86 build: gemm_have_avx512() is 0, so no caller gets here. */
void pool2_forward_avx512(size_t planes, int h, int w, const float *x,
                          float *y, int32_t *argmax)
{
    pool2_forward_portable(planes, h, w, x, y, argmax);
}

void pool2_backward_avx512(size_t planes, int h, int w, const float *dy,
                           const int32_t *argmax, const float *y, float *dx)
{
    pool2_backward_portable(planes, h, w, dy, argmax, y, dx);
}
#endif

void pool2_backward_codes(size_t planes, int h, int w, const float *dy,
                          const uint8_t *codes, float *dx)
{
    size_t pw = (size_t)(w / 2), pooled = (size_t)(h / 2) * pw;

    memset(dx, 0, planes * h * w * sizeof *dx);
    for (size_t p = 0; p < planes; p++) {
        float *plane = dx + p * h * w;

        for (size_t i = 0; i < pooled; i++) {
            unsigned code = codes[p * pooled + i];
            size_t py = i / pw, px = i % pw;

            if (!(code & POOL_BLOCKED))
                plane[(2 * py + (code >> 1)) * w + 2 * px + (code & 1)] =
                    dy[p * pooled + i];
        }
    }
}

void pool2_forward(size_t planes, int h, int w, const float *x, float *y,
                   int32_t *argmax)
{
    if (gemm_kernel() == GEMM_KERNEL_AVX512)
        pool2_forward_avx512(planes, h, w, x, y, argmax);
    else
        pool2_forward_portable(planes, h, w, x, y, argmax);
}

void pool2_backward(size_t planes, int h, int w, const float *dy,
                    const int32_t *argmax, const float *y, float *dx)
{
    if (gemm_kernel() == GEMM_KERNEL_AVX512)
        pool2_backward_avx512(planes, h, w, dy, argmax, y, dx);
    else
        pool2_backward_portable(planes, h, w, dy, argmax, y, dx);
}
