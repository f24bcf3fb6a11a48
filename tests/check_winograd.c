/*
 * Tests of the Winograd convolution. The forward pass, the input gradient
 * and the weight gradient are compared with direct sums over both kernel
 * sizes, every padding, tiles cut by the edge, rows of more than one
 * vector of tiles, chunks of one or more groups of 8 samples, partial
 * groups and both activation layouts.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "gemm.h"
#include "tests.h"
#include "util.h"
#include "winograd.h"

/* Kernel size and padding, input channels, input size, filters. The
 * sizes give odd and even outputs (tiles cut by the edge), 1 x 1 and
 * 2 x 1 outputs, and rows of 9 and 10 tiles (two vectors of tiles). */
typedef struct {
    int k, pad, c, h, w, f;
} Case;

static const Case cases[] = {
    {3, 0, 3, 7, 6, 5},   {3, 1, 2, 5, 9, 4},   {3, 2, 1, 4, 4, 3},
    {3, 0, 2, 3, 3, 2},   {3, 0, 1, 4, 3, 1},   {3, 1, 17, 13, 13, 16},
    {3, 0, 4, 19, 20, 3}, {3, 1, 2, 18, 17, 2}, {5, 0, 2, 9, 8, 3},
    {5, 2, 3, 14, 14, 4}, {5, 4, 1, 3, 5, 2},   {5, 1, 2, 5, 6, 3},
    {5, 2, 2, 20, 19, 2},
};

static void fill_uniform(Rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * rng_uniform(rng) - 1.0f;
}

/* Where plane (c, s) of N samples of C planes starts: channel-major
 * (planes of a channel together) or sample-major, with GAP unused floats
 * after each plane of PLANE floats. */
typedef struct {
    size_t sample_stride, plane_stride;
} Layout;

static Layout layout(int channel_major, int c, int n, size_t plane,
                     size_t gap)
{
    Layout l;
    size_t step = plane + gap;

    l.sample_stride = channel_major ? step : step * c;
    l.plane_stride = channel_major ? step * n : step;
    return l;
}

/* Returns the largest |value| of N floats, at least 1. */
static double scale_of(const double *x, size_t n)
{
    double m = 1.0;

    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/*
 * Runs winograd_conv on N samples in the given layout and chunk, and
 * checks every output against the direct sum in double, with bias and
 * ReLU when RELU is set, and that the gaps between planes keep their
 * value.
 */
static void check_forward(const Case *t, int n, int chunk, int channel_major,
                          int relu, Rng *rng)
{
    ConvGeom g = {t->c, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    size_t gap = 3;
    Layout xl = layout(channel_major, t->c, n, in_plane, gap);
    Layout yl = layout(1, t->f, n, out_plane, gap);
    size_t x_len = (size_t)n * t->c * (in_plane + gap);
    size_t y_len = (size_t)n * t->f * (out_plane + gap);
    size_t w_len = (size_t)t->f * t->c * k * k;
    float *x = xmalloc(x_len * sizeof *x);
    float *w = xmalloc(w_len * sizeof *w);
    float *bias = xmalloc((size_t)t->f * sizeof *bias);
    float *y = xmalloc(y_len * sizeof *y);
    float *u = xmalloc(winograd_weight_floats(k, t->f, t->c) * sizeof *u);
    float *temp = xmalloc(winograd_weight_floats(k, t->f, t->c)
                          * sizeof *temp);
    float *scratch = xmalloc(winograd_scratch_floats(&g, t->f, chunk)
                             * sizeof *scratch);
    double *want = xmalloc(out_plane * sizeof *want);

    fill_uniform(rng, x, x_len);
    fill_uniform(rng, w, w_len);
    fill_uniform(rng, bias, (size_t)t->f);
    for (size_t i = 0; i < y_len; i++)
        y[i] = 7.0f;
    winograd_weights(k, t->f, t->c, w, 0, u, temp);
    winograd_conv(&g, t->f, n, x, xl.sample_stride, xl.plane_stride, u,
                  bias, relu, y, yl.sample_stride, yl.plane_stride, scratch,
                  chunk);
    for (int s = 0; s < n; s++) {
        for (int f = 0; f < t->f; f++) {
            const float *yp = y + s * yl.sample_stride + f * yl.plane_stride;

            for (int oy = 0; oy < oh; oy++) {
                for (int ox = 0; ox < ow; ox++) {
                    double sum = bias[f];

                    for (int c = 0; c < t->c; c++) {
                        const float *xp = x + s * xl.sample_stride
                                          + c * xl.plane_stride;
                        for (int ky = 0; ky < k; ky++) {
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy + ky - t->pad;
                                int ix = ox + kx - t->pad;

                                if (iy < 0 || iy >= t->h || ix < 0
                                    || ix >= t->w)
                                    continue;
                                sum += (double)xp[iy * t->w + ix]
                                       * w[((f * t->c + c) * k + ky) * k
                                           + kx];
                            }
                        }
                    }
                    want[oy * ow + ox] = relu && sum < 0.0 ? 0.0 : sum;
                }
            }
            double tol = 2e-5 * k * k * t->c * scale_of(want, out_plane);

            for (size_t i = 0; i < out_plane; i++)
                ck_assert_msg(fabs(yp[i] - want[i]) <= tol,
                              "%dx%d pad %d, %d x %d x %d, chunk %d: sample "
                              "%d, filter %d, output %zu is %g, direct sum "
                              "%g", k, k, t->pad, t->c, t->h, t->w, chunk,
                              s, f, i, yp[i], want[i]);
            for (size_t i = out_plane; i < out_plane + gap; i++)
                ck_assert_msg(yp[i] == 7.0f, "%dx%d pad %d, %d x %d: the "
                              "gap after sample %d, filter %d was written",
                              k, k, t->pad, t->h, t->w, s, f);
        }
    }
    free(x);
    free(w);
    free(bias);
    free(y);
    free(u);
    free(temp);
    free(scratch);
    free(want);
}

START_TEST(test_winograd_forward_matches_direct)
{
    Rng rng;

    rng_seed(&rng, 31);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_forward(&cases[i], 3, 3, 1, 0, &rng);
        check_forward(&cases[i], 3, 2, 0, 1, &rng);
        check_forward(&cases[i], 2, 1, 1, 1, &rng);
        check_forward(&cases[i], 11, 9, 0, 1, &rng);
        check_forward(&cases[i], 19, 8, 1, 0, &rng);
    }
}
END_TEST

/*
 * The input gradient of a convolution with padding P, from its output
 * gradients DY: winograd_conv with the flipped weights over geometry
 * (F, OH, OW, K, K - 1 - P) against dX[c][iy][ix] = sum over f, ky, kx
 * of DY[f][iy - ky + P][ix - kx + P] * W[f][c][ky][kx].
 */
static void check_input_grad(const Case *t, int n, int chunk,
                             int channel_major, Rng *rng)
{
    ConvGeom fwd = {t->c, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&fwd), ow = conv_out_w(&fwd), k = t->k;
    ConvGeom g = {t->f, oh, ow, k, k - 1 - t->pad};
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    Layout dyl = layout(1, t->f, n, out_plane, 0);
    Layout dxl = layout(channel_major, t->c, n, in_plane, 0);
    size_t dy_len = (size_t)n * t->f * out_plane;
    size_t dx_len = (size_t)n * t->c * in_plane;
    size_t w_len = (size_t)t->f * t->c * k * k;
    float *dy = xmalloc(dy_len * sizeof *dy);
    float *w = xmalloc(w_len * sizeof *w);
    float *dx = xmalloc(dx_len * sizeof *dx);
    float *u = xmalloc(winograd_weight_floats(k, t->f, t->c) * sizeof *u);
    float *temp = xmalloc(winograd_weight_floats(k, t->f, t->c)
                          * sizeof *temp);
    float *scratch = xmalloc(winograd_scratch_floats(&g, t->c, chunk)
                             * sizeof *scratch);
    double *want = xmalloc(in_plane * sizeof *want);

    ck_assert(conv_out_h(&g) == t->h && conv_out_w(&g) == t->w);
    fill_uniform(rng, dy, dy_len);
    fill_uniform(rng, w, w_len);
    winograd_weights(k, t->f, t->c, w, 1, u, temp);
    winograd_conv(&g, t->c, n, dy, dyl.sample_stride, dyl.plane_stride, u,
                  NULL, 0, dx, dxl.sample_stride, dxl.plane_stride, scratch,
                  chunk);
    for (int s = 0; s < n; s++) {
        for (int c = 0; c < t->c; c++) {
            const float *got = dx + s * dxl.sample_stride
                               + c * dxl.plane_stride;

            for (int iy = 0; iy < t->h; iy++) {
                for (int ix = 0; ix < t->w; ix++) {
                    double sum = 0.0;

                    for (int f = 0; f < t->f; f++) {
                        const float *dyp = dy + s * dyl.sample_stride
                                           + f * dyl.plane_stride;
                        for (int ky = 0; ky < k; ky++) {
                            for (int kx = 0; kx < k; kx++) {
                                int oy = iy - ky + t->pad;
                                int ox = ix - kx + t->pad;

                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                    continue;
                                sum += (double)dyp[oy * ow + ox]
                                       * w[((f * t->c + c) * k + ky) * k
                                           + kx];
                            }
                        }
                    }
                    want[iy * t->w + ix] = sum;
                }
            }
            double tol = 2e-5 * k * k * t->f * scale_of(want, in_plane);

            for (size_t i = 0; i < in_plane; i++)
                ck_assert_msg(fabs(got[i] - want[i]) <= tol,
                              "%dx%d pad %d, %d x %d x %d: sample %d, "
                              "channel %d, input gradient %zu is %g, direct "
                              "sum %g", k, k, t->pad, t->c, t->h, t->w, s, c,
                              i, got[i], want[i]);
        }
    }
    free(dy);
    free(w);
    free(dx);
    free(u);
    free(temp);
    free(scratch);
    free(want);
}

START_TEST(test_winograd_input_grad_matches_direct)
{
    Rng rng;

    rng_seed(&rng, 32);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_input_grad(&cases[i], 3, 2, 1, &rng);
        check_input_grad(&cases[i], 2, 2, 0, &rng);
        check_input_grad(&cases[i], 19, 8, 1, &rng);
    }
}
END_TEST

/*
 * The weight gradient: winograd_weight_grad against dW[f][c][ky][kx] =
 * sum over samples and outputs (oy, ox) of DY[f][oy][ox] times
 * X[c][oy + ky - P][ox + kx - P], with the samples in chunks.
 */
static void check_weight_grad(const Case *t, int n, int chunk,
                              int channel_major, Rng *rng)
{
    ConvGeom g = {t->c, t->h, t->w, t->k, t->pad};
    int oh = conv_out_h(&g), ow = conv_out_w(&g), k = t->k;
    size_t in_plane = (size_t)t->h * t->w, out_plane = (size_t)oh * ow;
    Layout xl = layout(channel_major, t->c, n, in_plane, 0);
    Layout dyl = layout(1, t->f, n, out_plane, 0);
    size_t x_len = (size_t)n * t->c * in_plane;
    size_t dy_len = (size_t)n * t->f * out_plane;
    size_t w_len = (size_t)t->f * t->c * k * k;
    float *x = xmalloc(x_len * sizeof *x);
    float *dy = xmalloc(dy_len * sizeof *dy);
    float *dw = xmalloc(w_len * sizeof *dw);
    float *scratch = xmalloc(winograd_weight_grad_scratch_floats(&g, t->f,
                                                                 chunk)
                             * sizeof *scratch);
    double *want = xmalloc(w_len * sizeof *want);

    fill_uniform(rng, x, x_len);
    fill_uniform(rng, dy, dy_len);
    winograd_weight_grad(&g, t->f, n, x, xl.sample_stride, xl.plane_stride,
                         dy, dyl.sample_stride, dyl.plane_stride, dw, scratch,
                         chunk);
    for (int f = 0; f < t->f; f++) {
        for (int c = 0; c < t->c; c++) {
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    double sum = 0.0;

                    for (int s = 0; s < n; s++) {
                        const float *xp = x + s * xl.sample_stride
                                          + c * xl.plane_stride;
                        const float *dyp = dy + s * dyl.sample_stride
                                           + f * dyl.plane_stride;

                        for (int oy = 0; oy < oh; oy++) {
                            for (int ox = 0; ox < ow; ox++) {
                                int iy = oy + ky - t->pad;
                                int ix = ox + kx - t->pad;

                                if (iy < 0 || iy >= t->h || ix < 0
                                    || ix >= t->w)
                                    continue;
                                sum += (double)dyp[oy * ow + ox]
                                       * xp[iy * t->w + ix];
                            }
                        }
                    }
                    want[((f * t->c + c) * k + ky) * k + kx] = sum;
                }
            }
        }
    }
    double tol = 2e-5 * n * out_plane * scale_of(want, w_len);

    for (size_t i = 0; i < w_len; i++)
        ck_assert_msg(fabs(dw[i] - want[i]) <= tol,
                      "%dx%d pad %d, %d x %d x %d, %d filters, chunk %d: "
                      "weight gradient %zu is %g, direct sum %g", k, k,
                      t->pad, t->c, t->h, t->w, t->f, chunk, i, dw[i],
                      want[i]);
    free(x);
    free(dy);
    free(dw);
    free(scratch);
    free(want);
}

START_TEST(test_winograd_weight_grad_matches_direct)
{
    Rng rng;

    rng_seed(&rng, 33);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_weight_grad(&cases[i], 3, 2, 1, &rng);
        check_weight_grad(&cases[i], 2, 1, 0, &rng);
        check_weight_grad(&cases[i], 11, 9, 1, &rng);
        check_weight_grad(&cases[i], 19, 8, 0, &rng);
    }
}
END_TEST

/* Kernels other than 3 or 5, an empty output and a padding as large as
 * the kernel are not supported. */
START_TEST(test_winograd_supported_shapes)
{
    ConvGeom ok3 = {4, 6, 6, 3, 1}, ok5 = {4, 6, 6, 5, 4};
    ConvGeom k2 = {4, 6, 6, 2, 0}, k7 = {4, 8, 8, 7, 3};
    ConvGeom too_small = {4, 2, 6, 3, 0}, pad_k = {4, 6, 6, 3, 3};

    ck_assert(winograd_supported(&ok3));
    ck_assert(winograd_supported(&ok5));
    ck_assert(!winograd_supported(&k2));
    ck_assert(!winograd_supported(&k7));
    ck_assert(!winograd_supported(&too_small));
    ck_assert(!winograd_supported(&pad_k));
}
END_TEST

Suite *winograd_suite(void)
{
    Suite *s = suite_create("winograd");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_winograd_forward_matches_direct);
    tcase_add_test(tc, test_winograd_input_grad_matches_direct);
    tcase_add_test(tc, test_winograd_weight_grad_matches_direct);
    tcase_add_test(tc, test_winograd_supported_shapes);
    suite_add_tcase(s, tc);
    return s;
}
