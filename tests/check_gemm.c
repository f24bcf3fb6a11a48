/*
 * Tests for gemm: both blocked paths against the reference on awkward
 * shapes, every transposition and several alpha/beta pairs, the AVX2 and
 * AVX-512 paths against each other bit for bit, and
 * im2col/col2im against a direct convolution and as each other's adjoint.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "tests.h"
#include "util.h"

typedef void (*GemmFn)(GemmTrans, GemmTrans, int, int, int, float,
                       const float *, int, const float *, int, float,
                       float *, int);

/* Marks the gap between a row's last column and the next row of C, which
 * no sgemm may write. */
#define SENTINEL 12345.0f

static void fill_uniform(Rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * rng_uniform(rng) - 1.0f;
}

/*
 * Runs FN and sgemm_ref on the same random operands with leading
 * dimensions three larger than needed, then compares every element of C
 * and checks the gap columns still hold SENTINEL.
 */
static void check_against_ref(GemmFn fn, const char *name, GemmTrans ta,
                              GemmTrans tb, int m, int n, int k, float alpha,
                              float beta)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 3, ldc = n + 3;
    size_t a_len = (size_t)(ta ? k : m) * lda + 1;
    size_t b_len = (size_t)(tb ? n : k) * ldb + 1;
    size_t c_len = (size_t)m * ldc + 1;
    float *a = xmalloc(a_len * sizeof *a), *b = xmalloc(b_len * sizeof *b);
    float *c = xmalloc(c_len * sizeof *c), *ref = xmalloc(c_len * sizeof *c);
    Rng rng;

    rng_seed(&rng, (uint64_t)(m * 1000003 + n * 1009 + k));
    fill_uniform(&rng, a, a_len);
    fill_uniform(&rng, b, b_len);
    fill_uniform(&rng, c, c_len);
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            c[(size_t)i * ldc + j] = SENTINEL;
    memcpy(ref, c, c_len * sizeof *c);

    fn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    sgemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc);

    /* A float sum of k products of values in [-1, 1] has a rounding error
     * of roughly k * 2^-24. The bound allows about 16 times that. Check
     * logs every assertion it evaluates, so the loop only looks for the
     * first bad element and asserts once. */
    double tol = 1e-6 * (k + 16) * (fabs(alpha) + 1.0) + 1e-6;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (j >= n && c[at] != SENTINEL)
                ck_abort_msg("%s %c%c m=%d n=%d k=%d wrote past column %d",
                             name, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
                             n);
            if (j < n && !(fabs(c[at] - ref[at]) <= tol))
                ck_abort_msg("%s %c%c m=%d n=%d k=%d alpha=%g beta=%g: "
                             "C[%d][%d] = %g, reference %g",
                             name, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
                             alpha, beta, i, j, c[at], ref[at]);
        }
    }
    free(a);
    free(b);
    free(c);
    free(ref);
}

/* Shapes that hit every edge: 1x1x1, primes, and sizes one past or one
 * short of the 6 x 16 and 8 x 32 register tiles and the cache blocks (MC
 * 96 or 128, KC 256, NC 2048). M above MC takes the path that packs B. M
 * up to MC reads an untransposed B in place, and N up to 2 x NR (32 or
 * 64) an untransposed A when alpha is 1. 97 x 2050 and 90 x 730 have C
 * blocks large enough for the row sweep of the macro-kernel. M of 8 + 1
 * to 8 + 4 rows ends in one tall AVX-512 tile. From {10, 128, 64} on,
 * shapes take the in-place path of both kernels with alpha 1 and beta 0
 * or 1: A^T * B with at most 12 rows of C, N a multiple of 32 and K up to
 * 256, or A * B with K up to 16. {70, 1024, 10} sweeps C by rows there,
 * {97, 64, 16} ends in a tile of 8 + 1 rows, {13, 48, 16} is in place
 * only for the AVX2 kernel's 16 columns, and {20, 64, 17} is one step of
 * K too deep for it. */
static const int shapes[][3] = {
    {1, 1, 1},    {2, 3, 5},     {7, 13, 11},  {6, 16, 8},
    {5, 15, 1},   {13, 31, 257}, {17, 33, 255}, {97, 2050, 19},
    {8, 128, 300}, {100, 45, 64}, {3, 2049, 7}, {61, 67, 71},
    {8, 32, 9},   {9, 33, 513},  {129, 31, 40}, {127, 95, 256},
    {90, 730, 20}, {10, 128, 64}, {12, 64, 256}, {1, 32, 1},
    {11, 96, 33}, {64, 128, 10}, {70, 1024, 10}, {97, 64, 16},
    {13, 48, 16}, {20, 64, 17},
};

static const float alpha_beta[][2] = {
    {1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -0.75f}, {-2.0f, 0.25f},
};

static void check_all_shapes(GemmFn fn, const char *name)
{
    size_t n_shapes = sizeof shapes / sizeof shapes[0];
    size_t n_ab = sizeof alpha_beta / sizeof alpha_beta[0];

    for (size_t s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++)
            for (size_t ab = 0; ab < n_ab; ab++)
                check_against_ref(fn, name, (GemmTrans)(t & 1),
                                  (GemmTrans)(t >> 1), shapes[s][0],
                                  shapes[s][1], shapes[s][2],
                                  alpha_beta[ab][0], alpha_beta[ab][1]);
}

START_TEST(test_gemm_portable_matches_ref)
{
    check_all_shapes(sgemm_portable, "portable");
}
END_TEST

START_TEST(test_gemm_avx2_matches_ref)
{
    if (!gemm_have_avx2())
        return;
    check_all_shapes(sgemm_avx2, "avx2");
}
END_TEST

START_TEST(test_gemm_avx512_matches_ref)
{
    if (!gemm_have_avx512())
        return;
    check_all_shapes(sgemm_avx512, "avx512");
}
END_TEST

START_TEST(test_gemm_dispatch_matches_ref)
{
    check_against_ref(sgemm, "sgemm", GEMM_NOTRANS, GEMM_TRANS, 29, 41, 300,
                      1.0f, 0.0f);
}
END_TEST

/* sgemm_bias_relu must equal sgemm followed by a separate bias and ReLU
 * pass bit for bit, on shapes with edge tiles, several K blocks and K = 0,
 * and on values around 0, where ReLU decides. 140 x 700 packs both
 * operands in every kernel, so its tiles run in row sweeps. */
START_TEST(test_gemm_bias_relu_matches_separate_pass)
{
    static const int sizes[][3] = {
        {1, 1, 1}, {7, 13, 11}, {8, 32, 9}, {33, 70, 300}, {64, 100, 25},
        {130, 47, 513}, {140, 700, 40}, {5, 9, 0},
    };
    Rng rng;

    rng_seed(&rng, 5);
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int m = sizes[t][0], n = sizes[t][1], k = sizes[t][2];
        float *a = xmalloc(((size_t)m * k + 1) * sizeof *a);
        float *b = xmalloc(((size_t)k * n + 1) * sizeof *b);
        float *bias = xmalloc((size_t)m * sizeof *bias);
        float *fused = xmalloc((size_t)m * n * sizeof *fused);
        float *separate = xmalloc((size_t)m * n * sizeof *separate);

        fill_uniform(&rng, a, (size_t)m * k);
        fill_uniform(&rng, b, (size_t)k * n);
        fill_uniform(&rng, bias, (size_t)m);
        for (int relu = 0; relu < 2; relu++) {
            sgemm_bias_relu(m, n, k, a, k, b, n, bias, relu, fused, n);
            sgemm(GEMM_NOTRANS, GEMM_NOTRANS, m, n, k, 1.0f, a, k, b, n,
                  0.0f, separate, n);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    float *v = &separate[(size_t)i * n + j];
                    *v += bias[i];
                    if (relu)
                        *v = *v > 0.0f ? *v : 0.0f;
                }
            }
            for (size_t i = 0; i < (size_t)m * n; i++)
                if (memcmp(&fused[i], &separate[i], sizeof fused[i]) != 0)
                    ck_abort_msg("%s m=%d n=%d k=%d relu=%d: C[%zu] = %.9g "
                                 "fused, %.9g in a separate pass",
                                 gemm_kernel_name(), m, n, k, relu, i,
                                 fused[i], separate[i]);
        }
        free(a);
        free(b);
        free(bias);
        free(fused);
        free(separate);
    }
}
END_TEST

/* Adapts sgemm_dot_avx2, which computes only the NOTRANS x TRANS case,
 * to the signature of the other paths. */
static void dot_as_gemm(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b,
                        int ldb, float beta, float *c, int ldc)
{
    ck_assert_int_eq(ta, GEMM_NOTRANS);
    ck_assert_int_eq(tb, GEMM_TRANS);
    sgemm_dot_avx2(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Adapts sgemm_dot_avx512 in the same way. */
static void dot512_as_gemm(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                           float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c,
                           int ldc)
{
    ck_assert_int_eq(ta, GEMM_NOTRANS);
    ck_assert_int_eq(tb, GEMM_TRANS);
    sgemm_dot_avx512(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Adapts sgemm_dot_wide in the same way. */
static void dot_wide_as_gemm(GemmTrans ta, GemmTrans tb, int m, int n,
                             int k, float alpha, const float *a, int lda,
                             const float *b, int ldb, float beta, float *c,
                             int ldc)
{
    ck_assert_int_eq(ta, GEMM_NOTRANS);
    ck_assert_int_eq(tb, GEMM_TRANS);
    sgemm_dot_wide(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Shapes for the dot paths. K falls on either side of a multiple of 8
 * (the masked tail) and of the 512-float K block. M passes the 2-row,
 * 4-row and 6-row tiles and the 32-row chunk, N the 4-column, 5-column
 * and 8-column tiles. Then come the first convolutions' weight gradients
 * (9 or 25 rows by 32 filters), a dense layer over an evaluation shard,
 * and a 10-unit dense layer over a batch of 64, sample-major. */
static const int dot_shapes[][3] = {
    {1, 1, 1},   {1, 1, 7},    {2, 4, 8},    {3, 5, 9},
    {2, 3, 17},  {5, 7, 511},  {7, 9, 512},  {8, 13, 513},
    {31, 6, 1025}, {32, 4, 64}, {33, 11, 100}, {13, 1, 1600},
    {6, 8, 16},  {12, 17, 1031}, {4, 5, 24}, {11, 14, 519},
    {9, 32, 5408}, {25, 32, 1568}, {32, 130, 200}, {64, 10, 128},
};

START_TEST(test_gemm_dot_matches_ref)
{
    size_t n_shapes = sizeof dot_shapes / sizeof dot_shapes[0];
    size_t n_ab = sizeof alpha_beta / sizeof alpha_beta[0];

    if (!gemm_have_avx2())
        return;
    for (size_t s = 0; s < n_shapes; s++)
        for (size_t ab = 0; ab < n_ab; ab++)
            check_against_ref(dot_as_gemm, "dot", GEMM_NOTRANS, GEMM_TRANS,
                              dot_shapes[s][0], dot_shapes[s][1],
                              dot_shapes[s][2], alpha_beta[ab][0],
                              alpha_beta[ab][1]);
    if (!gemm_have_avx512())
        return;
    for (size_t s = 0; s < n_shapes; s++)
        for (size_t ab = 0; ab < n_ab; ab++)
            for (int wide = 0; wide < 2; wide++)
                check_against_ref(wide ? dot_wide_as_gemm : dot512_as_gemm,
                                  wide ? "dot wide" : "dot avx512",
                                  GEMM_NOTRANS, GEMM_TRANS, dot_shapes[s][0],
                                  dot_shapes[s][1], dot_shapes[s][2],
                                  alpha_beta[ab][0], alpha_beta[ab][1]);
}
END_TEST

/* sgemm_dot's C[i][j] depends only on row i of A and row j of B, so
 * swapping the operands transposes C bit for bit, and with at most 32
 * rows of A it equals sgemm's. A dense layer relies on both to compute
 * few units sample-major and still match the transposed product. */
START_TEST(test_gemm_dot_swapped_operands_transpose_exactly)
{
    static const int sizes[][3] = {{64, 10, 128}, {33, 7, 519}, {5, 9, 40}};

    if (gemm_kernel() == GEMM_KERNEL_PORTABLE)
        return;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        float *a = xmalloc((size_t)m * k * sizeof *a);
        float *b = xmalloc((size_t)n * k * sizeof *b);
        float *c = xmalloc((size_t)m * n * sizeof *c);
        float *c_t = xmalloc((size_t)n * m * sizeof *c_t);
        float *c_ref = xmalloc((size_t)n * m * sizeof *c_ref);
        Rng rng;

        rng_seed(&rng, (uint64_t)(m * 31 + n));
        fill_uniform(&rng, a, (size_t)m * k);
        fill_uniform(&rng, b, (size_t)n * k);
        sgemm_dot(m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        sgemm_dot(n, m, k, 1.0f, b, k, a, k, 0.0f, c_t, m);
        sgemm(GEMM_NOTRANS, GEMM_TRANS, n, m, k, 1.0f, b, k, a, k, 0.0f,
              c_ref, m);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float v = c[(size_t)i * n + j];

                if (memcmp(&v, &c_t[(size_t)j * m + i], sizeof v) != 0
                    || memcmp(&v, &c_ref[(size_t)j * m + i], sizeof v) != 0)
                    ck_abort_msg("m=%d n=%d k=%d: C[%d][%d] = %.9g, swapped "
                                 "%.9g, sgemm %.9g", m, n, k, i, j, v,
                                 c_t[(size_t)j * m + i],
                                 c_ref[(size_t)j * m + i]);
            }
        free(a);
        free(b);
        free(c);
        free(c_t);
        free(c_ref);
    }
}
END_TEST

/*
 * Computes C with FN_A and FN_B from the same operands and C, with
 * leading dimensions three larger than needed, and checks that the two
 * results are bitwise equal, including the gap columns. Training with
 * either kernel must give the same weights, so kernels that a process can
 * choose between must agree exactly, not only within a tolerance.
 */
static void check_same_bits(GemmFn fn_a, const char *name_a, GemmFn fn_b,
                            const char *name_b, GemmTrans ta, GemmTrans tb,
                            int m, int n, int k, float alpha, float beta)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 3, ldc = n + 3;
    size_t a_len = (size_t)(ta ? k : m) * lda + 1;
    size_t b_len = (size_t)(tb ? n : k) * ldb + 1;
    size_t c_len = (size_t)m * ldc + 1;
    float *a = xmalloc(a_len * sizeof *a), *b = xmalloc(b_len * sizeof *b);
    float *ca = xmalloc(c_len * sizeof *ca), *cb = xmalloc(c_len * sizeof *cb);
    Rng rng;

    rng_seed(&rng, (uint64_t)(m * 7919 + n * 104729 + k));
    fill_uniform(&rng, a, a_len);
    fill_uniform(&rng, b, b_len);
    fill_uniform(&rng, ca, c_len);
    memcpy(cb, ca, c_len * sizeof *ca);

    fn_a(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ca, ldc);
    fn_b(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cb, ldc);
    for (size_t i = 0; i < c_len; i++)
        if (memcmp(&ca[i], &cb[i], sizeof ca[i]) != 0)
            ck_abort_msg("%c%c m=%d n=%d k=%d alpha=%g beta=%g: C[%zu] = "
                         "%.9g from %s, %.9g from %s", ta ? 'T' : 'N',
                         tb ? 'T' : 'N', m, n, k, alpha, beta, i, ca[i],
                         name_a, cb[i], name_b);
    free(a);
    free(b);
    free(ca);
    free(cb);
}

START_TEST(test_gemm_dot_avx512_same_bits_as_avx2)
{
    size_t n_shapes = sizeof dot_shapes / sizeof dot_shapes[0];
    size_t n_ab = sizeof alpha_beta / sizeof alpha_beta[0];

    if (!gemm_have_avx512())
        return;
    for (size_t s = 0; s < n_shapes; s++)
        for (size_t ab = 0; ab < n_ab; ab++)
            for (int wide = 0; wide < 2; wide++)
                check_same_bits(dot_as_gemm, "dot avx2",
                                wide ? dot_wide_as_gemm : dot512_as_gemm,
                                wide ? "dot wide" : "dot avx512",
                                GEMM_NOTRANS, GEMM_TRANS, dot_shapes[s][0],
                                dot_shapes[s][1], dot_shapes[s][2],
                                alpha_beta[ab][0], alpha_beta[ab][1]);
}
END_TEST

/* sgemm_avx2 and sgemm_avx512, blocked and dot paths alike, give bitwise
 * the same C on every shape and transposition. FMNIST_GEMM chooses
 * between them, and the choice must not change the trained weights. */
START_TEST(test_gemm_avx512_same_bits_as_avx2)
{
    size_t n_shapes = sizeof shapes / sizeof shapes[0];
    size_t n_dot = sizeof dot_shapes / sizeof dot_shapes[0];

    if (!gemm_have_avx512())
        return;
    /* Alpha 0.5 packs every A, and alpha 1 reads an untransposed A in
     * place where C is narrow. */
    for (size_t s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++)
            for (int ab = 0; ab < 2; ab++)
                check_same_bits(sgemm_avx2, "avx2", sgemm_avx512, "avx512",
                                (GemmTrans)(t & 1), (GemmTrans)(t >> 1),
                                shapes[s][0], shapes[s][1], shapes[s][2],
                                ab ? 1.0f : 0.5f, ab ? 0.0f : -0.75f);
    for (size_t s = 0; s < n_dot; s++)
        check_same_bits(sgemm_avx2, "avx2", sgemm_avx512, "avx512",
                        GEMM_NOTRANS, GEMM_TRANS, dot_shapes[s][0],
                        dot_shapes[s][1], dot_shapes[s][2], 1.0f, 0.0f);
}
END_TEST

/* Computes rows [0, M) of C = op(A) * op(B) with FN in one call and again
 * as two calls split at row SPLIT, and checks the results are bitwise
 * equal. The trainer splits products by rows across threads and relies on
 * this for results that do not depend on the thread count. */
static void check_row_split(GemmFn fn, const char *name, GemmTrans ta,
                            GemmTrans tb, int m, int n, int k, int split)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    float *a = xmalloc((size_t)m * k * sizeof *a);
    float *b = xmalloc((size_t)n * k * sizeof *b);
    float *whole = xmalloc((size_t)m * n * sizeof *whole);
    float *parts = xmalloc((size_t)m * n * sizeof *parts);
    size_t a_second = ta ? (size_t)split : (size_t)split * lda;
    Rng rng;

    rng_seed(&rng, 99);
    fill_uniform(&rng, a, (size_t)m * k);
    fill_uniform(&rng, b, (size_t)n * k);
    fn(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, whole, n);
    fn(ta, tb, split, n, k, 1.0f, a, lda, b, ldb, 0.0f, parts, n);
    fn(ta, tb, m - split, n, k, 1.0f, a + a_second, lda, b, ldb, 0.0f,
       parts + (size_t)split * n, n);
    for (size_t i = 0; i < (size_t)m * n; i++)
        if (memcmp(&whole[i], &parts[i], sizeof whole[i]) != 0)
            ck_abort_msg("%s %c%c m=%d n=%d k=%d split at row %d: C[%zu] "
                         "= %.9g in one call, %.9g in two", name,
                         ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, split,
                         i, whole[i], parts[i]);
    free(a);
    free(b);
    free(whole);
    free(parts);
}

/* The same as check_row_split for columns: C computed in one call and as
 * two calls split at column SPLIT must be bitwise equal. The batch-level
 * dense layers split their forward and input-gradient products by
 * columns across threads. */
static void check_col_split(GemmFn fn, const char *name, GemmTrans ta,
                            GemmTrans tb, int m, int n, int k, int split)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    float *a = xmalloc((size_t)m * k * sizeof *a);
    float *b = xmalloc((size_t)n * k * sizeof *b);
    float *whole = xmalloc((size_t)m * n * sizeof *whole);
    float *parts = xmalloc((size_t)m * n * sizeof *parts);
    size_t b_second = tb ? (size_t)split * ldb : (size_t)split;
    Rng rng;

    rng_seed(&rng, 98);
    fill_uniform(&rng, a, (size_t)m * k);
    fill_uniform(&rng, b, (size_t)n * k);
    fn(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, whole, n);
    fn(ta, tb, m, split, k, 1.0f, a, lda, b, ldb, 0.0f, parts, n);
    fn(ta, tb, m, n - split, k, 1.0f, a, lda, b + b_second, ldb, 0.0f,
       parts + split, n);
    for (size_t i = 0; i < (size_t)m * n; i++)
        if (memcmp(&whole[i], &parts[i], sizeof whole[i]) != 0)
            ck_abort_msg("%s %c%c m=%d n=%d k=%d split at column %d: C[%zu] "
                         "= %.9g in one call, %.9g in two", name,
                         ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, split,
                         i, whole[i], parts[i]);
    free(a);
    free(b);
    free(whole);
    free(parts);
}

START_TEST(test_gemm_columns_do_not_depend_on_split)
{
    check_col_split(sgemm_portable, "portable", GEMM_NOTRANS, GEMM_TRANS, 64,
                    150, 300, 128);
    check_col_split(sgemm_portable, "portable", GEMM_NOTRANS, GEMM_NOTRANS,
                    64, 150, 300, 37);
    if (!gemm_have_avx2())
        return;
    /* M = 64 takes the blocked path with B packed from its transpose. */
    check_col_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_TRANS, 64, 150,
                    300, 128);
    check_col_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_NOTRANS, 64, 150,
                    300, 37);
    check_col_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_NOTRANS, 100, 150,
                    300, 37);
    check_col_split(dot_as_gemm, "dot", GEMM_NOTRANS, GEMM_TRANS, 19, 150,
                    1100, 5);
    if (!gemm_have_avx512())
        return;
    check_col_split(dot512_as_gemm, "dot avx512", GEMM_NOTRANS, GEMM_TRANS,
                    19, 150, 1100, 5);
    check_col_split(dot_wide_as_gemm, "dot wide", GEMM_NOTRANS, GEMM_TRANS,
                    19, 150, 1100, 7);
    check_col_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_TRANS, 64,
                    150, 300, 128);
    check_col_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 64,
                    150, 300, 37);
    check_col_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 150,
                    150, 300, 37);
    /* A dense input gradient from 10 units. The whole product reads A in
     * place. A split at column 37 sends both parts to the blocked path,
     * and one at column 64 keeps them in place. */
    check_col_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_NOTRANS, 64, 128,
                    10, 37);
    check_col_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 64,
                    128, 10, 37);
    check_col_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 64,
                    1024, 10, 64);
}
END_TEST

/* The NOTRANS, TRANS cases below are dense forward passes over 40
 * samples split by units. A is read in place, except for a last panel of
 * fewer rows than the tile, which is packed: rows 48 and 49 are packed in
 * the first of the two calls and read in place by the single call. */
START_TEST(test_gemm_rows_do_not_depend_on_split)
{
    check_row_split(sgemm_portable, "portable", GEMM_TRANS, GEMM_NOTRANS,
                    130, 45, 64, 37);
    check_row_split(sgemm_portable, "portable", GEMM_NOTRANS, GEMM_NOTRANS,
                    101, 33, 300, 50);
    check_row_split(sgemm_portable, "portable", GEMM_NOTRANS, GEMM_TRANS,
                    201, 40, 600, 50);
    if (!gemm_have_avx2())
        return;
    check_row_split(sgemm_avx2, "avx2", GEMM_TRANS, GEMM_NOTRANS, 130, 45, 64,
                    37);
    check_row_split(sgemm_avx2, "avx2", GEMM_TRANS, GEMM_NOTRANS, 10, 128, 64,
                    4);
    check_row_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_NOTRANS, 101, 33,
                    300, 50);
    check_row_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_TRANS, 201, 40,
                    600, 50);
    check_row_split(dot_as_gemm, "dot", GEMM_NOTRANS, GEMM_TRANS, 45, 10,
                    1100, 7);
    if (!gemm_have_avx512())
        return;
    check_row_split(dot_wide_as_gemm, "dot wide", GEMM_NOTRANS, GEMM_TRANS,
                    45, 10, 1100, 7);
    check_row_split(sgemm_avx512, "avx512", GEMM_TRANS, GEMM_NOTRANS, 130,
                    45, 64, 37);
    /* 10 rows as one tile of 8 + 2, split into 4 and 6; 90 rows end in
     * a tile of 8 + 2, split after a tile of 8 + 1. */
    check_row_split(sgemm_avx512, "avx512", GEMM_TRANS, GEMM_NOTRANS, 10,
                    128, 64, 4);
    check_row_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 90,
                    64, 100, 9);
    check_row_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 201,
                    33, 300, 50);
    check_row_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_TRANS, 201,
                    40, 600, 50);
    /* The in-place A * B path: 70 x 1024 sweeps C by rows, and its parts
     * of 9 and 61 rows go down the strips, the 9 rows as one tall tile. */
    check_row_split(sgemm_avx2, "avx2", GEMM_NOTRANS, GEMM_NOTRANS, 70,
                    1024, 10, 9);
    check_row_split(sgemm_avx512, "avx512", GEMM_NOTRANS, GEMM_NOTRANS, 70,
                    1024, 10, 9);
}
END_TEST

/* beta == 0 must overwrite C without reading it, so NaN in C vanishes. */
START_TEST(test_gemm_beta_zero_ignores_nan)
{
    GemmFn fns[] = {sgemm_portable, sgemm_avx2, sgemm_ref, dot_as_gemm,
                    sgemm_avx512};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    /* B stored transposed (2 x 3) for the dot path. */
    float b_t[6] = {1, 0, 1, 0, 1, 1};
    float expected[4] = {4, 5, 10, 11};

    for (int f = 0; f < 5; f++) {
        float c[4] = {NAN, NAN, NAN, NAN};
        if (fns[f] != sgemm_portable && fns[f] != sgemm_ref
            && !gemm_have_avx2())
            continue;
        if (fns[f] == sgemm_avx512 && !gemm_have_avx512())
            continue;
        /* 2x3 times 3x2. */
        if (fns[f] == dot_as_gemm)
            fns[f](GEMM_NOTRANS, GEMM_TRANS, 2, 2, 3, 1.0f, a, 3, b_t, 3,
                   0.0f, c, 2);
        else
            fns[f](GEMM_NOTRANS, GEMM_NOTRANS, 2, 2, 3, 1.0f, a, 3, b, 2,
                   0.0f, c, 2);
        for (int i = 0; i < 4; i++)
            ck_assert_float_eq_tol(c[i], expected[i], 1e-6f);
    }
}
END_TEST

/* With k == 0 or alpha == 0 the product vanishes and C = beta * C. */
START_TEST(test_gemm_empty_product_scales_c)
{
    float a[1] = {7}, b[1] = {7};
    float c[4] = {1, 2, 3, 4};

    sgemm(GEMM_NOTRANS, GEMM_NOTRANS, 2, 2, 0, 1.0f, a, 1, b, 2, 0.5f, c, 2);
    ck_assert_float_eq_tol(c[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(c[3], 2.0f, 1e-7f);

    sgemm(GEMM_NOTRANS, GEMM_NOTRANS, 1, 1, 1, 0.0f, a, 1, b, 1, 2.0f, c, 2);
    ck_assert_float_eq_tol(c[0], 1.0f, 1e-7f);
}
END_TEST

/* ---------------------------------------------------------------- im2col */

/* Direct convolution of one NCHW sample with F x C x K x K weights. */
static void naive_conv(const ConvGeom *g, const float *x, const float *w,
                       int filters, float *y)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), k = g->k;

    for (int f = 0; f < filters; f++) {
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                double sum = 0.0;
                for (int c = 0; c < g->c; c++) {
                    for (int ky = 0; ky < k; ky++) {
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy + ky - g->pad, ix = ox + kx - g->pad;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            sum += (double)x[(c * g->h + iy) * g->w + ix]
                                   * w[((f * g->c + c) * k + ky) * k + kx];
                        }
                    }
                }
                y[(f * oh + oy) * ow + ox] = (float)sum;
            }
        }
    }
}

/* Rows shorter than 8, exactly 8, and 11 and 20 long (a vector plus an
 * overlapping tail vector), with and without padding; 17 and 40 long
 * rows span two and three 16-float pieces of the AVX-512 version. */
static const ConvGeom geoms[] = {
    {3, 7, 6, 3, 0},   {3, 7, 6, 3, 1},  {2, 5, 5, 1, 0},
    {1, 4, 9, 5, 2},   {2, 3, 3, 3, 0},  {4, 8, 5, 2, 0},
    {2, 13, 13, 3, 0}, {2, 6, 20, 3, 1}, {1, 5, 10, 3, 0},
    {1, 6, 40, 5, 2},  {2, 4, 17, 3, 1},
};

/* Two NCHW samples lowered in one call and multiplied by F x C*K*K
 * weights must give each sample's direct convolution. */
START_TEST(test_gemm_im2col_matches_naive_conv)
{
    Rng rng;
    rng_seed(&rng, 42);

    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        const ConvGeom *g = &geoms[gi];
        int filters = 4, n = 2, kdim = g->c * g->k * g->k;
        int ohw = conv_out_h(g) * conv_out_w(g);
        size_t sample = (size_t)g->c * g->h * g->w;
        /* Leave four spare columns per col row to exercise LDCOL. */
        int cols = n * ohw, ldcol = cols + 4;
        float *x = xmalloc(n * sample * sizeof *x);
        float *w = xmalloc((size_t)filters * kdim * sizeof *w);
        float *col = xmalloc((size_t)kdim * ldcol * sizeof *col);
        float *y = xmalloc((size_t)filters * cols * sizeof *y);
        float *ref = xmalloc((size_t)filters * ohw * sizeof *ref);

        fill_uniform(&rng, x, n * sample);
        fill_uniform(&rng, w, (size_t)filters * kdim);
        im2col(g, n, x, sample, (size_t)g->h * g->w, col, (size_t)ldcol);
        sgemm_ref(GEMM_NOTRANS, GEMM_NOTRANS, filters, cols, kdim, 1.0f, w,
                  kdim, col, ldcol, 0.0f, y, cols);
        for (int s = 0; s < n; s++) {
            naive_conv(g, x + s * sample, w, filters, ref);
            for (int f = 0; f < filters; f++) {
                for (int j = 0; j < ohw; j++) {
                    float got = y[(size_t)f * cols + s * ohw + j];
                    float want = ref[f * ohw + j];
                    ck_assert_msg(fabsf(got - want) < 1e-5f,
                                  "geometry %zu, sample %d, filter %d, "
                                  "output %d: %g, naive %g",
                                  gi, s, f, j, got, want);
                }
            }
        }
        free(x);
        free(w);
        free(col);
        free(y);
        free(ref);
    }
}
END_TEST

/*
 * col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)> for
 * any x and c. The batch is channel-major (plane (c, s) at
 * (c*N + s) * GAP) with GAP - H*W unused floats after each plane, which
 * col2im must leave at 0.
 */
START_TEST(test_gemm_col2im_is_adjoint)
{
    Rng rng;
    rng_seed(&rng, 7);

    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        const ConvGeom *g = &geoms[gi];
        int n = 3;
        size_t kdim = (size_t)g->c * g->k * g->k;
        size_t cols = (size_t)conv_out_h(g) * conv_out_w(g) * n;
        size_t plane = (size_t)g->h * g->w, gap = plane + 5;
        size_t im_len = gap * n * g->c;
        float *x = xmalloc(im_len * sizeof *x);
        float *back = xcalloc(im_len, sizeof *back);
        float *col = xmalloc(kdim * cols * sizeof *col);
        float *c = xmalloc(kdim * cols * sizeof *c);

        fill_uniform(&rng, x, im_len);
        fill_uniform(&rng, c, kdim * cols);
        im2col(g, n, x, gap, gap * n, col, cols);
        col2im(g, n, c, cols, back, gap, gap * n);

        double lhs = 0.0, rhs = 0.0;
        for (size_t i = 0; i < kdim * cols; i++)
            lhs += (double)col[i] * c[i];
        for (size_t p = 0; p < (size_t)n * g->c; p++) {
            for (size_t i = 0; i < plane; i++)
                rhs += (double)x[p * gap + i] * back[p * gap + i];
            for (size_t i = plane; i < gap; i++)
                ck_assert_float_eq(back[p * gap + i], 0.0f);
        }
        ck_assert_msg(fabs(lhs - rhs) < 1e-4 * (1.0 + fabs(lhs)),
                      "geometry %zu: <im2col x, c> = %g, <x, col2im c> = %g",
                      gi, lhs, rhs);
        free(x);
        free(back);
        free(col);
        free(c);
    }
}
END_TEST

Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gemm_portable_matches_ref);
    tcase_add_test(tc, test_gemm_avx2_matches_ref);
    tcase_add_test(tc, test_gemm_avx512_matches_ref);
    tcase_add_test(tc, test_gemm_dispatch_matches_ref);
    tcase_add_test(tc, test_gemm_bias_relu_matches_separate_pass);
    tcase_add_test(tc, test_gemm_dot_matches_ref);
    tcase_add_test(tc, test_gemm_dot_swapped_operands_transpose_exactly);
    tcase_add_test(tc, test_gemm_dot_avx512_same_bits_as_avx2);
    tcase_add_test(tc, test_gemm_avx512_same_bits_as_avx2);
    tcase_add_test(tc, test_gemm_rows_do_not_depend_on_split);
    tcase_add_test(tc, test_gemm_columns_do_not_depend_on_split);
    tcase_add_test(tc, test_gemm_beta_zero_ignores_nan);
    tcase_add_test(tc, test_gemm_empty_product_scales_c);
    tcase_add_test(tc, test_gemm_im2col_matches_naive_conv);
    tcase_add_test(tc, test_gemm_col2im_is_adjoint);
    suite_add_tcase(s, tc);
    return s;
}
