/*
 * check_prefetch: the GEMM kernels prefetch only elements of the operands
 * that the product reads, and the weight gradient of a convolution with
 * pooling (direct_conv_pool_weight_grad) only elements of its pooled
 * gradient and codes.
 *
 * A prefetch of any address is harmless to the CPU, so a kernel that
 * prefetched past an operand would pass every other test. This program
 * links a build of gemm.c whose prefetches call gemm_prefetch_hook, runs
 * the AVX2 and AVX-512 products on the shapes where the kernels read A
 * or B in place, and checks each address: it must fall on row r < rows
 * and column c < cols of A or B, where a row is ld floats long. It exits
 * 0 when every address passes, 77 (skipped) on CPUs without AVX2, and 1
 * otherwise. The build of src/direct.c for this program calls
 * direct_prefetch_hook in the same way.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "direct.h"
#include "gemm.h"
#include "util.h"

void gemm_prefetch_hook(const void *address);
void direct_prefetch_hook(const void *address);

/* One operand as stored: ROWS x COLS floats, rows LD floats apart. */
typedef struct {
    const float *data;
    int rows, cols, ld;
} Operand;

static Operand operand_a, operand_b;
static long prefetches, outside;
static const char *case_name;

/* Returns 1 when ADDRESS is an element that OP's product reads. */
static int inside(const Operand *op, uintptr_t address)
{
    uintptr_t first = (uintptr_t)op->data;

    if (address < first || (address - first) % sizeof(float) != 0)
        return 0;
    size_t index = (address - first) / sizeof(float);
    size_t row = index / (size_t)op->ld, col = index % (size_t)op->ld;

    return row < (size_t)op->rows && col < (size_t)op->cols;
}

/* Counts a prefetch of ADDRESS and reports the first few that fall
 * outside both operands. */
void gemm_prefetch_hook(const void *address)
{
    uintptr_t a = (uintptr_t)address;

    prefetches++;
    if (inside(&operand_a, a) || inside(&operand_b, a))
        return;
    if (outside++ < 5)
        fprintf(stderr, "check_prefetch: %s: prefetch of %p is outside "
                "A (%p, %d x %d, ld %d) and B (%p, %d x %d, ld %d)\n",
                case_name, address, (const void *)operand_a.data,
                operand_a.rows, operand_a.cols, operand_a.ld,
                (const void *)operand_b.data, operand_b.rows,
                operand_b.cols, operand_b.ld);
}

typedef void (*Gemm)(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc);

static float *filled(size_t count)
{
    float *p = xmalloc(count * sizeof *p);

    for (size_t i = 0; i < count; i++)
        p[i] = (float)(i % 7) - 3.0f;
    return p;
}

/* Runs one product of op(A) (M x K) and op(B) (K x N), each stored with
 * 3 floats of padding per row, and records its operands for the hook. */
static void run(Gemm gemm, const char *name, GemmTrans ta, GemmTrans tb,
                int m, int n, int k)
{
    char label[96];
    Operand a = {NULL, ta ? k : m, ta ? m : k, 0};
    Operand b = {NULL, tb ? n : k, tb ? k : n, 0};

    a.ld = a.cols + 3;
    b.ld = b.cols + 3;
    float *a_data = filled((size_t)a.rows * a.ld);
    float *b_data = filled((size_t)b.rows * b.ld);
    float *c = filled((size_t)m * n);

    a.data = a_data;
    b.data = b_data;
    operand_a = a;
    operand_b = b;
    snprintf(label, sizeof label, "%s %s%s m=%d n=%d k=%d", name,
             ta ? "A^T" : "A", tb ? " B^T" : " B", m, n, k);
    case_name = label;
    gemm(ta, tb, m, n, k, 1.0f, a_data, a.ld, b_data, b.ld, 0.0f, c, n);
    free(a_data);
    free(b_data);
    free(c);
}

/* Runs GEMM on the products that read A in place (A untransposed, N up
 * to two tiles wide) and B in place (B untransposed, M up to one block),
 * with sizes around the tiles and blocks of both kernels. */
static void run_shapes(Gemm gemm, const char *name)
{
    static const int a_rows[] = {8, 15, 16, 96, 100, 128, 129, 300};
    static const int a_cols[] = {1, 16, 31, 32, 33, 64};
    static const int b_rows[] = {1, 6, 8, 64, 95, 96, 128};
    static const int b_cols[] = {31, 32, 63, 64, 65, 100, 300};
    static const int depths[] = {1, 9, 100, 256, 257, 600};
    enum { DEPTHS = sizeof depths / sizeof depths[0] };

    for (size_t i = 0; i < sizeof a_rows / sizeof a_rows[0]; i++)
        for (size_t j = 0; j < sizeof a_cols / sizeof a_cols[0]; j++)
            for (int d = 0; d < DEPTHS; d++)
                run(gemm, name, GEMM_NOTRANS, GEMM_TRANS, a_rows[i],
                    a_cols[j], depths[d]);
    for (size_t i = 0; i < sizeof b_rows / sizeof b_rows[0]; i++)
        for (size_t j = 0; j < sizeof b_cols / sizeof b_cols[0]; j++)
            for (int d = 0; d < DEPTHS; d++) {
                run(gemm, name, GEMM_NOTRANS, GEMM_NOTRANS, b_rows[i],
                    b_cols[j], depths[d]);
                run(gemm, name, GEMM_TRANS, GEMM_NOTRANS, b_rows[i],
                    b_cols[j], depths[d]);
            }
}

/* The pooled gradient and codes of the running weight gradient: COUNT
 * values each, stored without gaps. */
static const float *pooled_grad;
static const uint8_t *pooled_codes;
static size_t pooled_count;

/* Counts a prefetch of ADDRESS and reports the first few that fall
 * outside the pooled gradient and codes. */
void direct_prefetch_hook(const void *address)
{
    uintptr_t a = (uintptr_t)address;
    uintptr_t grad = (uintptr_t)pooled_grad, code = (uintptr_t)pooled_codes;

    prefetches++;
    if ((a >= grad && a < grad + pooled_count * sizeof(float))
        || (a >= code && a < code + pooled_count))
        return;
    if (outside++ < 5)
        fprintf(stderr, "check_prefetch: %s: prefetch of %p is outside the "
                "gradient (%p) and the codes (%p), %zu values each\n",
                case_name, address, (const void *)pooled_grad,
                (const void *)pooled_codes, pooled_count);
}

/* Runs the weight gradient of a convolution with pooling with KERNEL
 * over filter counts that leave a last block of one filter, on buffers
 * exactly as long as the planes. */
static void run_pool_weight_grad(GemmKernel kernel, const char *name)
{
    static const int sides[] = {1, 2, 3, 5};
    static const int filters[] = {1, 3, 5, 6, 33};
    char label[96];

    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++)
        for (size_t j = 0; j < sizeof filters / sizeof filters[0]; j++)
            for (int n = 1; n <= 3; n += 2) {
                ConvGeom g = {1, 28, 28, sides[i], sides[i] / 2};
                int f = filters[j];
                size_t pooled = (size_t)(conv_out_h(&g) / 2)
                                * (size_t)(conv_out_w(&g) / 2);
                size_t count = pooled * (size_t)f * (size_t)n;
                float *x = filled((size_t)28 * 28 * n);
                float *dp = filled(count);
                uint8_t *codes = xmalloc(count);
                float *dw = xmalloc((size_t)f * g.k * g.k * sizeof *dw);
                float *db = xmalloc((size_t)f * sizeof *db);

                for (size_t c = 0; c < count; c++)
                    codes[c] = (uint8_t)(c % 5);
                pooled_grad = dp;
                pooled_codes = codes;
                pooled_count = count;
                snprintf(label, sizeof label, "%s pool weight gradient "
                         "k=%d f=%d n=%d", name, g.k, f, n);
                case_name = label;
                direct_conv_pool_weight_grad(kernel, &g, f, n, x, 28 * 28,
                                             dp, codes, pooled, pooled * n,
                                             dw, db);
                free(x);
                free(dp);
                free(codes);
                free(dw);
                free(db);
            }
}

int main(void)
{
    if (!gemm_have_avx2()) {
        printf("check_prefetch: skipped, the CPU has no AVX2 and FMA\n");
        return 77;
    }
    run_shapes(sgemm_avx2, "avx2");
    direct_set_avx2_picks(0);
    run_pool_weight_grad(GEMM_KERNEL_AVX2, "avx2 masked");
    direct_set_avx2_picks(1);
    run_pool_weight_grad(GEMM_KERNEL_AVX2, "avx2 picks");
    direct_set_avx2_picks(-1);
    if (gemm_have_avx512()) {
        run_shapes(sgemm_avx512, "avx512");
        run_pool_weight_grad(GEMM_KERNEL_AVX512, "avx512");
    }
    printf("check_prefetch: %ld prefetches, %ld outside the operands\n",
           prefetches, outside);
    if (prefetches == 0) {
        fprintf(stderr, "check_prefetch: no prefetch reached the hook. "
                "Build src/gemm.c and src/direct.c with "
                "-DGEMM_PREFETCH_HOOK and -DDIRECT_PREFETCH_HOOK for this "
                "program, as Makefile.am does.\n");
        return 1;
    }
    return outside == 0 ? 0 : 1;
}
