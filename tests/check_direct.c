/*
 * Tests of the single-channel direct convolution. The forward pass and
 * the weight gradient of the AVX-512 and the AVX2 kernels are compared
 * with sums in double. The cases cover every kernel side, several
 * paddings, output rows shorter than, equal to and longer than one
 * vector, filter counts below, at and past one block of filters, and one
 * or several samples. Gaps separate the planes: a forward pass must leave
 * them alone, and a weight gradient must not read them (they are NaN).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "direct.h"
#include "gemm.h"
#include "pool.h"
#include "tests.h"
#include "util.h"

/* Kernel side, padding, input height and width, filters, samples. */
typedef struct {
    int k, pad, h, w, f, n;
} Case;

static const Case cases[] = {
    {3, 0, 28, 28, 32, 8},  {5, 2, 28, 28, 32, 8},  {3, 1, 28, 28, 9, 3},
    {1, 0, 5, 16, 17, 2},   {2, 0, 9, 17, 5, 1},    {3, 0, 4, 3, 1, 2},
    {4, 1, 7, 18, 7, 3},    {5, 0, 9, 20, 2, 2},    {6, 2, 11, 31, 4, 2},
    {7, 3, 6, 32, 3, 1},    {7, 0, 8, 38, 19, 2},   {3, 2, 5, 30, 11, 9},
    {5, 4, 3, 5, 6, 1},     {2, 1, 3, 29, 33, 1},
};

/* Floats left unused after each plane. */
#define GAP 5

static void fill_uniform(Rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * rng_uniform(rng) - 1.0f;
}

/* Returns input pixel (r, c) of plane X of width W and height H, with
 * zeros outside. */
static double pixel(const float *x, int h, int w, int r, int c)
{
    return r < 0 || r >= h || c < 0 || c >= w ? 0.0
                                              : x[(size_t)r * w + c];
}

/* The kernels this CPU runs, besides the portable one. */
static int kernels(GemmKernel *out)
{
    int n = 0;

    if (gemm_have_avx512())
        out[n++] = GEMM_KERNEL_AVX512;
    if (gemm_have_avx2())
        out[n++] = GEMM_KERNEL_AVX2;
    return n;
}

static void check_forward(GemmKernel kernel, const Case *t, int relu,
                          int with_bias, Rng *rng)
{
    ConvGeom g = {1, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    /* Output planes channel-major, N samples of one filter together. */
    size_t y_sample = out_plane + GAP, y_filter = y_sample * t->n;
    float *x = xmalloc(in_plane * t->n * sizeof *x);
    float *w = xmalloc((size_t)t->f * k * k * sizeof *w);
    float *b = xmalloc((size_t)t->f * sizeof *b);
    float *y = xmalloc(y_filter * t->f * sizeof *y);

    fill_uniform(rng, x, in_plane * t->n);
    fill_uniform(rng, w, (size_t)t->f * k * k);
    fill_uniform(rng, b, (size_t)t->f);
    for (size_t i = 0; i < y_filter * t->f; i++)
        y[i] = 1234.5f;
    ck_assert(direct_supported(&g, kernel));
    direct_conv_forward(kernel, &g, t->f, t->n, x, in_plane, w,
                        with_bias ? b : NULL, relu, y, y_sample, y_filter);
    for (int j = 0; j < t->f; j++)
        for (int s = 0; s < t->n; s++) {
            const float *plane = y + j * y_filter + s * y_sample;

            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double sum = with_bias ? b[j] : 0.0;

                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++)
                            sum += w[((size_t)j * k + ky) * k + kx]
                                   * pixel(x + s * in_plane, t->h, t->w,
                                           oy + ky - t->pad,
                                           ox + kx - t->pad);
                    if (relu && sum < 0.0)
                        sum = 0.0;
                    ck_assert_msg(fabs(plane[oy * ow + ox] - sum)
                                      <= 1e-5 * (1.0 + fabs(sum)),
                                  "kernel %d, k %d pad %d %dx%d, filter %d "
                                  "sample %d at (%d, %d): %g, expected %g",
                                  (int)kernel, k, t->pad, t->h, t->w, j, s,
                                  oy, ox, plane[oy * ow + ox], sum);
                }
            for (int i = 0; i < GAP; i++)
                ck_assert_float_eq(plane[out_plane + i], 1234.5f);
        }
    free(x);
    free(w);
    free(b);
    free(y);
}

START_TEST(test_direct_forward_matches_sums)
{
    GemmKernel list[2];
    int count = kernels(list);
    Rng rng;

    rng_seed(&rng, 101);
    for (int i = 0; i < count; i++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            check_forward(list[i], &cases[c], 1, 1, &rng);
            check_forward(list[i], &cases[c], 0, c % 2, &rng);
        }
}
END_TEST

static void check_weight_grad(GemmKernel kernel, const Case *t, Rng *rng)
{
    ConvGeom g = {1, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    size_t dy_sample = out_plane + GAP, dy_filter = dy_sample * t->n;
    size_t x_sample = in_plane + GAP;
    float *x = xmalloc(x_sample * t->n * sizeof *x);
    float *dy = xmalloc(dy_filter * t->f * sizeof *dy);
    float *dw = xmalloc((size_t)t->f * k * k * sizeof *dw);

    fill_uniform(rng, x, x_sample * t->n);
    fill_uniform(rng, dy, dy_filter * t->f);
    for (int s = 0; s < t->n; s++)
        for (int i = 0; i < GAP; i++)
            x[s * x_sample + in_plane + i] = NAN;
    for (int j = 0; j < t->f; j++)
        for (int s = 0; s < t->n; s++)
            for (int i = 0; i < GAP; i++)
                dy[j * dy_filter + s * dy_sample + out_plane + i] = NAN;
    /* Stale values that the call must overwrite. */
    for (int i = 0; i < t->f * k * k; i++)
        dw[i] = 99.0f;
    direct_conv_weight_grad(kernel, &g, t->f, t->n, x, x_sample, dy,
                            dy_sample, dy_filter, dw);
    for (int j = 0; j < t->f; j++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                double sum = 0.0, mag = 0.0;

                for (int s = 0; s < t->n; s++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++) {
                            double term =
                                dy[j * dy_filter + s * dy_sample
                                   + (size_t)oy * ow + ox]
                                * pixel(x + s * x_sample, t->h, t->w,
                                        oy + ky - t->pad, ox + kx - t->pad);

                            sum += term;
                            mag += fabs(term);
                        }
                float got = dw[((size_t)j * k + ky) * k + kx];

                ck_assert_msg(fabs(got - sum) <= 1e-5 * (1.0 + mag),
                              "kernel %d, k %d pad %d %dx%d, %d filters, "
                              "filter %d tap (%d, %d): %g, expected %g",
                              (int)kernel, k, t->pad, t->h, t->w, t->f, j,
                              ky, kx, got, sum);
            }
    free(x);
    free(dy);
    free(dw);
}

START_TEST(test_direct_weight_grad_matches_sums)
{
    GemmKernel list[2];
    int count = kernels(list);
    Rng rng;

    rng_seed(&rng, 202);
    for (int i = 0; i < count; i++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            check_weight_grad(list[i], &cases[c], &rng);
}
END_TEST

/* Runs both passes of case T with KERNEL on the given data and returns
 * the outputs and then the weight gradients in one new buffer. */
static float *run_both(GemmKernel kernel, const Case *t, const float *x,
                       const float *w, const float *b, const float *dy)
{
    ConvGeom g = {1, t->h, t->w, t->k, t->pad};
    size_t in_plane = (size_t)t->h * t->w;
    size_t out_plane = (size_t)conv_out_h(&g) * conv_out_w(&g);
    size_t outputs = out_plane * t->n * t->f;
    float *out = xmalloc((outputs + (size_t)t->f * t->k * t->k)
                         * sizeof *out);

    direct_conv_forward(kernel, &g, t->f, t->n, x, in_plane, w, b, 1, out,
                        out_plane, out_plane * t->n);
    direct_conv_weight_grad(kernel, &g, t->f, t->n, x, in_plane, dy,
                            out_plane, out_plane * t->n, out + outputs);
    return out;
}

/* The AVX2 kernels add the same products in the same order as the
 * AVX-512 ones, so that training gives the same checkpoint with either. */
START_TEST(test_direct_kernels_agree_bitwise)
{
    Rng rng;

    if (!gemm_have_avx512())
        return;
    rng_seed(&rng, 303);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const Case *t = &cases[c];
        ConvGeom g = {1, t->h, t->w, t->k, t->pad};
        size_t in_count = (size_t)t->h * t->w * t->n;
        size_t outputs = (size_t)conv_out_h(&g) * conv_out_w(&g) * t->n
                         * t->f;
        size_t params = (size_t)t->f * t->k * t->k;
        float *x = xmalloc(in_count * sizeof *x);
        float *w = xmalloc(params * sizeof *w);
        float *b = xmalloc((size_t)t->f * sizeof *b);
        float *dy = xmalloc(outputs * sizeof *dy);

        fill_uniform(&rng, x, in_count);
        fill_uniform(&rng, w, params);
        fill_uniform(&rng, b, (size_t)t->f);
        fill_uniform(&rng, dy, outputs);

        float *wide = run_both(GEMM_KERNEL_AVX512, t, x, w, b, dy);
        float *narrow = run_both(GEMM_KERNEL_AVX2, t, x, w, b, dy);

        ck_assert_msg(memcmp(wide, narrow, (outputs + params) * sizeof *wide)
                          == 0,
                      "k %d pad %d %dx%d, %d filters: AVX2 and AVX-512 "
                      "results differ", t->k, t->pad, t->h, t->w, t->f);
        free(wide);
        free(narrow);
        free(x);
        free(w);
        free(b);
        free(dy);
    }
}
END_TEST

/* Returns the pooling code of a window that pool2_forward gave WINNER
 * and output Y, with a ReLU before the pooling when RELU is set. */
static uint8_t code_of(int32_t winner, float y, int relu)
{
    return (uint8_t)(winner | (relu && !(y > 0.0f) ? POOL_BLOCKED : 0));
}

/* The fused pass must give what the convolution and a separate pooling
 * pass give, bit for bit, and leave the gaps between planes alone. The
 * winner of a blocked window may differ, since the kernels pool before
 * the ReLU. */
static void check_pool_forward(GemmKernel kernel, const Case *t, int relu,
                               Rng *rng)
{
    ConvGeom g = {1, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    size_t pooled = (size_t)(oh / 2) * (ow / 2), planes = (size_t)t->f * t->n;
    size_t p_sample = pooled + GAP, p_filter = p_sample * t->n;
    float *x = xmalloc(in_plane * t->n * sizeof *x);
    float *w = xmalloc((size_t)t->f * k * k * sizeof *w);
    float *b = xmalloc((size_t)t->f * sizeof *b);
    float *conv = xmalloc(out_plane * planes * sizeof *conv);
    float *y = xmalloc(p_filter * t->f * sizeof *y);
    uint8_t *codes = xmalloc(p_filter * t->f);
    float *ref_y = xmalloc((pooled + 1) * planes * sizeof *ref_y);
    int32_t *ref_argmax = xmalloc((pooled + 1) * planes * sizeof *ref_argmax);

    fill_uniform(rng, x, in_plane * t->n);
    /* Without a ReLU a NaN reaches the pooling, and both ways must keep
     * it or drop it in the same windows. (A ReLU turns it into 0 before
     * the separate pooling but after the fused one.) */
    if (!relu)
        for (int s = 0; s < t->n; s++)
            x[s * in_plane + (size_t)(7 * s + t->w / 2) % in_plane] = NAN;
    fill_uniform(rng, w, (size_t)t->f * k * k);
    fill_uniform(rng, b, (size_t)t->f);
    for (size_t i = 0; i < p_filter * t->f; i++) {
        y[i] = 1234.5f;
        codes[i] = 0xa5;
    }
    direct_conv_forward(kernel, &g, t->f, t->n, x, in_plane, w, b, relu,
                        conv, out_plane, out_plane * t->n);
    pool2_forward(planes, oh, ow, conv, ref_y, ref_argmax);
    direct_conv_pool_forward(kernel, &g, t->f, t->n, x, in_plane, w, b, relu,
                             y, codes, p_sample, p_filter);
    for (int j = 0; j < t->f; j++)
        for (int s = 0; s < t->n; s++) {
            size_t at = j * p_filter + s * p_sample;
            size_t ref = ((size_t)j * t->n + s) * pooled;

            ck_assert_msg(memcmp(y + at, ref_y + ref, pooled * sizeof *y)
                              == 0,
                          "kernel %d, k %d pad %d %dx%d, relu %d: pooled "
                          "outputs of filter %d sample %d differ",
                          (int)kernel, k, t->pad, t->h, t->w, relu, j, s);
            for (size_t i = 0; i < pooled; i++) {
                int want = code_of(ref_argmax[ref + i], ref_y[ref + i],
                                   relu);
                /* Only the blocked bit counts in a blocked window. */
                int bits = want & POOL_BLOCKED ? POOL_BLOCKED : 0xff;

                ck_assert_msg((codes[at + i] & bits) == (want & bits),
                              "kernel %d, k %d pad %d %dx%d, relu %d: "
                              "filter %d sample %d window %zu has code %d, "
                              "expected %d", (int)kernel, k, t->pad, t->h,
                              t->w, relu, j, s, i, codes[at + i], want);
            }
            for (int i = 0; i < GAP; i++) {
                ck_assert_float_eq(y[at + pooled + i], 1234.5f);
                ck_assert_int_eq(codes[at + pooled + i], 0xa5);
            }
        }
    free(x);
    free(w);
    free(b);
    free(conv);
    free(y);
    free(codes);
    free(ref_y);
    free(ref_argmax);
}

START_TEST(test_direct_pool_matches_separate_passes)
{
    GemmKernel list[2];
    int count = kernels(list);
    Rng rng;

    rng_seed(&rng, 404);
    for (int i = 0; i < count; i++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            check_pool_forward(list[i], &cases[c], 1, &rng);
            check_pool_forward(list[i], &cases[c], 0, &rng);
        }
}
END_TEST

/* The weight and bias gradients from a pooling layer's gradient must
 * match sums in double over the gradient that pool2_backward expands,
 * with and without the ReLU mask, and read nothing in the gaps between
 * planes (they are NaN). The kernel sums over pooling windows, so only
 * rounding may differ. */
static void check_pool_weight_grad(GemmKernel kernel, const Case *t,
                                   int relu, Rng *rng)
{
    ConvGeom g = {1, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    size_t pooled = (size_t)(oh / 2) * (ow / 2), planes = (size_t)t->f * t->n;
    size_t p_sample = pooled + GAP, p_filter = p_sample * t->n;
    size_t params = (size_t)t->f * k * k;
    float *x = xmalloc(in_plane * t->n * sizeof *x);
    float *conv = xmalloc(out_plane * planes * sizeof *conv);
    float *y = xmalloc((pooled + 1) * planes * sizeof *y);
    int32_t *argmax = xmalloc((pooled + 1) * planes * sizeof *argmax);
    float *dp = xmalloc((pooled + 1) * planes * sizeof *dp);
    uint8_t *gap_codes = xmalloc(p_filter * t->f);
    float *gap_dp = xmalloc(p_filter * t->f * sizeof *gap_dp);
    float *dw = xmalloc(params * sizeof *dw);
    float *db = xmalloc((size_t)t->f * sizeof *db);

    fill_uniform(rng, x, in_plane * t->n);
    fill_uniform(rng, conv, out_plane * planes);
    fill_uniform(rng, dp, pooled * planes);
    pool2_forward(planes, oh, ow, conv, y, argmax);
    pool2_backward(planes, oh, ow, dp, argmax, relu ? y : NULL, conv);
    for (size_t i = 0; i < p_filter * t->f; i++) {
        gap_codes[i] = 0;
        gap_dp[i] = NAN;
    }
    for (size_t i = 0; i < planes; i++) {
        size_t at = i * p_sample, from = i * pooled;

        for (size_t q = 0; q < pooled; q++)
            gap_codes[at + q] = code_of(argmax[from + q], y[from + q], relu);
        memcpy(gap_dp + at, dp + from, pooled * sizeof *dp);
    }
    direct_conv_pool_weight_grad(kernel, &g, t->f, t->n, x, in_plane, gap_dp,
                                 gap_codes, p_sample, p_filter, dw, db);
    for (int j = 0; j < t->f; j++) {
        double sum = 0.0, mag = 0.0;

        for (size_t i = 0; i < (size_t)t->n * out_plane; i++) {
            sum += conv[(size_t)j * t->n * out_plane + i];
            mag += fabs(conv[(size_t)j * t->n * out_plane + i]);
        }
        ck_assert_msg(fabs(db[j] - sum) <= 1e-5 * (1.0 + mag),
                      "kernel %d, k %d pad %d %dx%d, %d filters, relu %d, "
                      "bias of filter %d: %g, expected %g", (int)kernel, k,
                      t->pad, t->h, t->w, t->f, relu, j, db[j], sum);
    }
    for (int j = 0; j < t->f; j++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                double sum = 0.0, mag = 0.0;

                for (int s = 0; s < t->n; s++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++) {
                            double term =
                                conv[((size_t)j * t->n + s) * out_plane
                                     + (size_t)oy * ow + ox]
                                * pixel(x + s * in_plane, t->h, t->w,
                                        oy + ky - t->pad, ox + kx - t->pad);

                            sum += term;
                            mag += fabs(term);
                        }
                ck_assert_msg(fabs(dw[((size_t)j * k + ky) * k + kx] - sum)
                                  <= 1e-5 * (1.0 + mag),
                              "kernel %d, k %d pad %d %dx%d, %d filters, "
                              "relu %d, filter %d tap (%d, %d): %g, "
                              "expected %g", (int)kernel, k, t->pad, t->h,
                              t->w, t->f, relu, j, ky, kx,
                              dw[((size_t)j * k + ky) * k + kx], sum);
            }
    free(x);
    free(conv);
    free(y);
    free(argmax);
    free(dp);
    free(gap_codes);
    free(gap_dp);
    free(dw);
    free(db);
}

START_TEST(test_direct_pool_weight_grad_matches)
{
    GemmKernel list[2];
    int count = kernels(list);
    Rng rng;

    rng_seed(&rng, 505);
    /* The AVX2 kernel's two ways (picks and masked products) in turn. */
    for (int picks = 0; picks <= 1; picks++) {
        direct_set_avx2_picks(picks);
        for (int i = 0; i < count; i++)
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                check_pool_weight_grad(list[i], &cases[c], 1, &rng);
                check_pool_weight_grad(list[i], &cases[c], 0, &rng);
            }
    }
    direct_set_avx2_picks(-1);
}
END_TEST

/* The AVX2 weight and bias gradients from a pooling layer's gradient add
 * the same products in the same order as the AVX-512 ones, by picks and
 * by masked products alike, so that training gives the same checkpoint
 * with either kernel on any CPU. Without AVX-512 the two AVX2 ways are
 * compared with each other. */
START_TEST(test_direct_pool_kernels_agree_bitwise)
{
    GemmKernel reference = gemm_have_avx512() ? GEMM_KERNEL_AVX512
                                              : GEMM_KERNEL_AVX2;
    Rng rng;

    if (!gemm_have_avx2())
        return;
    rng_seed(&rng, 606);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const Case *t = &cases[c];
        ConvGeom g = {1, t->h, t->w, t->k, t->pad};
        int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
        size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
        size_t pooled = (size_t)(oh / 2) * (ow / 2);
        size_t planes = (size_t)t->f * t->n, params = (size_t)t->f * k * k;
        float *x = xmalloc(in_plane * t->n * sizeof *x);
        float *conv = xmalloc(out_plane * planes * sizeof *conv);
        float *y = xmalloc((pooled + 1) * planes * sizeof *y);
        int32_t *argmax = xmalloc((pooled + 1) * planes * sizeof *argmax);
        uint8_t *codes = xmalloc((pooled + 1) * planes);
        float *dp = xmalloc((pooled + 1) * planes * sizeof *dp);
        /* The weight gradient, then the bias gradient. */
        float *wide = xmalloc((params + t->f) * sizeof *wide);
        float *narrow = xmalloc((params + t->f) * sizeof *narrow);

        fill_uniform(&rng, x, in_plane * t->n);
        fill_uniform(&rng, conv, out_plane * planes);
        fill_uniform(&rng, dp, pooled * planes);
        pool2_forward(planes, oh, ow, conv, y, argmax);
        for (size_t i = 0; i < pooled * planes; i++)
            codes[i] = code_of(argmax[i], y[i], 1);
        direct_set_avx2_picks(0);
        direct_conv_pool_weight_grad(reference, &g, t->f, t->n, x, in_plane,
                                     dp, codes, pooled, pooled * t->n, wide,
                                     wide + params);
        for (int picks = 0; picks <= 1; picks++) {
            direct_set_avx2_picks(picks);
            direct_conv_pool_weight_grad(GEMM_KERNEL_AVX2, &g, t->f, t->n, x,
                                         in_plane, dp, codes, pooled,
                                         pooled * t->n, narrow,
                                         narrow + params);
            ck_assert_msg(memcmp(wide, narrow,
                                 (params + t->f) * sizeof *wide) == 0,
                          "k %d pad %d %dx%d, %d filters: AVX2 (picks %d) "
                          "and %s weight or bias gradients differ", k,
                          t->pad, t->h, t->w, t->f, picks,
                          reference == GEMM_KERNEL_AVX512 ? "AVX-512"
                                                          : "AVX2");
        }
        direct_set_avx2_picks(-1);
        free(x);
        free(conv);
        free(y);
        free(argmax);
        free(codes);
        free(dp);
        free(wide);
        free(narrow);
    }
}
END_TEST

START_TEST(test_direct_supported_shapes)
{
    ConvGeom first = {1, 28, 28, 3, 0}, two = {2, 28, 28, 3, 0};
    ConvGeom big_k = {1, 28, 28, 9, 4}, wide = {1, 10, 40, 3, 1};
    ConvGeom empty = {1, 2, 2, 5, 0}, widest = {1, 4, 34, 3, 0};
    GemmKernel list[2];
    int count = kernels(list);

    ck_assert(!direct_supported(&first, GEMM_KERNEL_PORTABLE));
    ck_assert_int_eq(direct_supported(&first, GEMM_KERNEL_AVX2),
                     gemm_have_avx2());
    ck_assert_int_eq(direct_supported(&first, GEMM_KERNEL_AVX512),
                     gemm_have_avx512());
    for (int i = 0; i < count; i++) {
        ck_assert(!direct_supported(&two, list[i]));
        ck_assert(!direct_supported(&big_k, list[i]));
        ck_assert(!direct_supported(&wide, list[i]));
        ck_assert(!direct_supported(&empty, list[i]));
        ck_assert(direct_supported(&widest, list[i]));
    }
}
END_TEST

Suite *direct_suite(void)
{
    Suite *s = suite_create("direct");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_direct_forward_matches_sums);
    tcase_add_test(tc, test_direct_weight_grad_matches_sums);
    tcase_add_test(tc, test_direct_pool_matches_separate_passes);
    tcase_add_test(tc, test_direct_pool_weight_grad_matches);
    tcase_add_test(tc, test_direct_kernels_agree_bitwise);
    tcase_add_test(tc, test_direct_pool_kernels_agree_bitwise);
    tcase_add_test(tc, test_direct_supported_shapes);
    suite_add_tcase(s, tc);
    return s;
}
