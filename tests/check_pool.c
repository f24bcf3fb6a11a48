/*
 * Tests for pool: the portable forward and backward passes against a
 * direct loop over the windows, on odd plane sizes, ties and NaN, the
 * AVX-512 versions against the portable ones bit for bit, and planes with
 * gaps between them against packed ones.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"
#include "tests.h"
#include "util.h"

typedef void (*ForwardFn)(size_t, int, int, const float *, float *,
                          int32_t *);
typedef void (*BackwardFn)(size_t, int, int, const float *, const int32_t *,
                           const float *, float *);

/* Plane sizes: a single window, odd sides, the first poolings of "small"
 * (26 x 26) and "tf" (28 x 28), and rows of exactly 16, 17 and 32
 * windows around the 16-window vector step. */
static const int sizes[][2] = {
    {2, 2}, {3, 5}, {7, 7}, {26, 26}, {28, 28}, {33, 35}, {2, 32},
    {4, 34}, {5, 64}, {3, 65},
};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define PLANES 3

/* Values from a few levels, so windows often tie, with a NaN now and
 * then, and negative numbers and -0 among them. */
static void fill_pool_input(Rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rng_below(rng, 40);

        if (r == 0)
            x[i] = NAN;
        else if (r == 1)
            x[i] = -0.0f;
        else
            x[i] = (float)((int)(r % 7) - 3) * 0.5f;
    }
}

/* The winner of one window, by the rule pool.h states: the left input
 * unless the right one is greater, in each row, then the top row's winner
 * unless the bottom row's is greater. */
static int window_winner(const float v[4])
{
    int top = v[1] > v[0] ? 1 : 0;
    int bottom = v[3] > v[2] ? 3 : 2;

    return v[bottom] > v[top] ? bottom : top;
}

static void naive_forward(size_t planes, int h, int w, const float *x,
                          float *y, int32_t *argmax)
{
    int oh = h / 2, ow = w / 2;

    for (size_t p = 0; p < planes; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *r0 = x + (p * h + 2 * oy) * w + 2 * ox;
                float v[4] = {r0[0], r0[1], r0[w], r0[w + 1]};
                size_t o = (p * oh + oy) * ow + ox;
                int win = window_winner(v);

                y[o] = v[win];
                argmax[o] = win;
            }
}

static void naive_backward(size_t planes, int h, int w, const float *dy,
                           const int32_t *argmax, const float *y, float *dx)
{
    int oh = h / 2, ow = w / 2;

    memset(dx, 0, planes * h * w * sizeof *dx);
    for (size_t p = 0; p < planes; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                size_t o = (p * oh + oy) * ow + ox;
                int q = argmax[o];

                if (y != NULL && !(y[o] > 0.0f))
                    continue;
                dx[(p * h + 2 * oy + q / 2) * w + 2 * ox + q % 2] = dy[o];
            }
}

/* Runs FORWARD and BACKWARD (with and without the ReLU mask) on every
 * size and compares their output bits with EXPECT_FORWARD and
 * EXPECT_BACKWARD. The two runs' output buffers start filled with
 * different byte patterns, so a value left unwritten shows as a
 * difference. */
static void compare_pools(ForwardFn forward, BackwardFn backward,
                          ForwardFn expect_forward,
                          BackwardFn expect_backward, const char *name)
{
    Rng rng;

    rng_seed(&rng, 41);
    for (size_t s = 0; s < N_SIZES; s++) {
        int h = sizes[s][0], w = sizes[s][1];
        size_t in = (size_t)PLANES * h * w;
        size_t out = (size_t)PLANES * (h / 2) * (w / 2);
        float *x = xmalloc(in * sizeof *x), *dy = xmalloc(out * sizeof *dy);
        float *y[2], *dx[2];
        int32_t *arg[2];

        fill_pool_input(&rng, x, in);
        fill_pool_input(&rng, dy, out);
        for (int k = 0; k < 2; k++) {
            y[k] = xmalloc(out * sizeof *y[k]);
            arg[k] = xmalloc(out * sizeof *arg[k]);
            dx[k] = xmalloc(in * sizeof *dx[k]);
            memset(y[k], 0x5a + k, out * sizeof *y[k]);
            memset(arg[k], 0x5a + k, out * sizeof *arg[k]);
        }
        forward(PLANES, h, w, x, y[0], arg[0]);
        expect_forward(PLANES, h, w, x, y[1], arg[1]);
        ck_assert_msg(memcmp(y[0], y[1], out * sizeof *y[0]) == 0,
                      "%s: forward values differ at %d x %d", name, h, w);
        ck_assert_msg(memcmp(arg[0], arg[1], out * sizeof *arg[0]) == 0,
                      "%s: winners differ at %d x %d", name, h, w);
        for (int masked = 0; masked < 2; masked++) {
            const float *mask = masked ? y[1] : NULL;

            memset(dx[0], 0x5a, in * sizeof *dx[0]);
            memset(dx[1], 0x5b, in * sizeof *dx[1]);
            backward(PLANES, h, w, dy, arg[1], mask, dx[0]);
            expect_backward(PLANES, h, w, dy, arg[1], mask, dx[1]);
            ck_assert_msg(memcmp(dx[0], dx[1], in * sizeof *dx[0]) == 0,
                          "%s: backward%s differs at %d x %d", name,
                          masked ? " with the ReLU mask" : "", h, w);
        }
        for (int k = 0; k < 2; k++) {
            free(y[k]);
            free(arg[k]);
            free(dx[k]);
        }
        free(x);
        free(dy);
    }
}

START_TEST(test_pool_portable_matches_naive)
{
    compare_pools(pool2_forward_portable, pool2_backward_portable,
                  naive_forward, naive_backward, "portable");
}
END_TEST

START_TEST(test_pool_avx512_same_bits_as_portable)
{
    if (!gemm_have_avx512())
        return;
    compare_pools(pool2_forward_avx512, pool2_backward_avx512,
                  pool2_forward_portable, pool2_backward_portable, "avx512");
}
END_TEST

START_TEST(test_pool_dispatch_matches_naive)
{
    compare_pools(pool2_forward, pool2_backward, naive_forward,
                  naive_backward, "dispatch");
}
END_TEST

/* Calls pool2_backward_codes with pool2_backward's arguments, through
 * codes built from ARGMAX and Y. */
static void backward_through_codes(size_t planes, int h, int w,
                                   const float *dy, const int32_t *argmax,
                                   const float *y, float *dx)
{
    size_t out = planes * (size_t)(h / 2) * (w / 2);
    uint8_t *codes = xmalloc(out + 1);

    for (size_t i = 0; i < out; i++)
        codes[i] = (uint8_t)(argmax[i]
                             | (y != NULL && !(y[i] > 0.0f) ? POOL_BLOCKED
                                                            : 0));
    pool2_backward_codes(planes, h, w, dy, codes, dx);
    free(codes);
}

START_TEST(test_pool_backward_codes_matches_naive)
{
    compare_pools(naive_forward, backward_through_codes, naive_forward,
                  naive_backward, "codes");
}
END_TEST

Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_pool_portable_matches_naive);
    tcase_add_test(tc, test_pool_avx512_same_bits_as_portable);
    tcase_add_test(tc, test_pool_dispatch_matches_naive);
    tcase_add_test(tc, test_pool_backward_codes_matches_naive);
    suite_add_tcase(s, tc);
    return s;
}
