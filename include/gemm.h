/*
 * gemm: single-precision matrix multiply and the im2col/col2im lowering
 * that turns a convolution into one.
 *
 * All matrices are row-major with an explicit leading dimension (the
 * distance in floats between consecutive rows). Every sgemm variant
 * computes C = alpha * op(A) * op(B) + beta * C, where op(A) is M x K,
 * op(B) is K x N and C is M x N. With TRANS set, the operand is stored
 * transposed: a K x M array for A, an N x K array for B. When beta is 0,
 * C is written without being read, so it may hold garbage or NaN.
 *
 * None of these functions start threads. They may be called from several
 * threads at once: each thread packs into its own buffer.
 */
#ifndef FMNIST_GEMM_H
#define FMNIST_GEMM_H

#include <stddef.h>

typedef enum { GEMM_NOTRANS = 0, GEMM_TRANS = 1 } GemmTrans;

/* Computes the product with the kernel gemm_kernel() returns. */
void sgemm(GemmTrans ta, GemmTrans tb, int m, int n, int k, float alpha,
           const float *a, int lda, const float *b, int ldb, float beta,
           float *c, int ldc);

/* Computes C = alpha * A * B^T + beta * C where A is stored M x K and B
 * is stored N x K, rows LDA and LDB apart, as dot products of rows: the
 * dot path of gemm_kernel()'s kernel, or sgemm for the portable one. It
 * packs neither operand, so it suits products where one side has few
 * rows, whichever side that is. With the AVX2 and AVX-512 kernels C[i][j]
 * depends only on row i of A and row j of B, and equals what sgemm gives
 * for the same rows when M is at most 32. */
void sgemm_dot(int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/*
 * Computes C = A * B + bias, then C = max(C, 0) when RELU is set. A is
 * M x K and B is K x N, both untransposed, and BIAS contains one value per
 * row of C or is NULL. It uses the kernel of gemm_kernel() and adds the
 * bias and ReLU while each tile of C is still in registers. The operations
 * are those of sgemm followed by a separate pass over C, so the results
 * are equal bit for bit.
 */
void sgemm_bias_relu(int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, const float *bias, int relu,
                     float *c, int ldc);

/* Computes the product with three plain loops; the reference for tests. */
void sgemm_ref(GemmTrans ta, GemmTrans tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta,
               float *c, int ldc);

/* Computes the product with the cache-blocked path and a C micro-kernel
 * that any CPU runs. */
void sgemm_portable(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);

/* Computes the product with the cache-blocked path and the AVX2 and FMA
 * micro-kernel. Call it only when gemm_have_avx2() returns 1. */
void sgemm_avx2(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                float alpha, const float *a, int lda, const float *b,
                int ldb, float beta, float *c, int ldc);

/* Computes the product with the cache-blocked path and the AVX-512
 * micro-kernel; A * B^T with at most 32 rows of A takes the dot path of
 * sgemm_dot_avx512, or on CPUs whose 512-bit FMAs run at the rate of
 * 256-bit ones (Zen 4) that of sgemm_dot_wide, which gives the same C.
 * Call it only when gemm_have_avx512() returns 1. */
void sgemm_avx512(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc);

/* Computes C = alpha * A * B^T + beta * C where A is stored M x K and B
 * is stored N x K, rows LDA and LDB apart: the GEMM_NOTRANS, GEMM_TRANS
 * case, as dot products of rows without packing either operand. Call it
 * only when gemm_have_avx2() returns 1. sgemm_avx2 takes this path when
 * M is small, where packing B would cost more than the product. */
void sgemm_dot_avx2(int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);

/* Computes the same product as sgemm_dot_avx2, with AVX-512 FMAs, and
 * writes bitwise the same C: every element is summed in the same order.
 * Call it only when gemm_have_avx512() returns 1. sgemm_avx512 takes this
 * path when M is small. */
void sgemm_dot_avx512(int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c,
                      int ldc);

/* Computes the same product as sgemm_dot_avx2, with the same 256-bit
 * FMAs on the 32 registers of AVX-512VL, and writes bitwise the same C.
 * Call it only when gemm_have_avx512() returns 1. sgemm_avx512 takes this
 * path when M is small on CPUs whose 512-bit FMAs run at the rate of
 * 256-bit ones. */
void sgemm_dot_wide(int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);

/* Returns 1 when the CPU supports both AVX2 and FMA, else 0. */
int gemm_have_avx2(void);

/* Returns 1 when the CPU supports AVX-512F and AVX-512VL besides AVX2 and
 * FMA, else 0. */
int gemm_have_avx512(void);

/* Returns 1 on CPUs that run vblendvps as one operation, as AMD's Zen
 * cores (family 17h on) do, and 0 on others: Intel's cores split it into
 * two or three. */
int gemm_fast_blendv(void);

typedef enum {
    GEMM_KERNEL_PORTABLE = 0,
    GEMM_KERNEL_AVX2 = 1,
    GEMM_KERNEL_AVX512 = 2
} GemmKernel;

/*
 * Returns the kernel that sgemm, im2col and col2im use, fixed for the
 * process on the first call. That is the kernel FMNIST_GEMM names (auto,
 * avx512, avx2 or portable) when the CPU supports it. Otherwise it is
 * AVX-512 on Intel CPUs that have it, AVX2 on other CPUs with AVX2 and
 * FMA, else portable. The choice never depends on the thread count, so
 * results stay independent of it.
 */
GemmKernel gemm_kernel(void);

/* Returns the name of gemm_kernel(): "avx512", "avx2" or "portable". */
const char *gemm_kernel_name(void);

/* Returns a message saying why FMNIST_GEMM was ignored, or NULL when it
 * was applied or is unset. */
const char *gemm_kernel_note(void);

/*
 * Shape of one convolution input: C planes of H x W, a square K x K
 * kernel, PAD zero rows and columns on each side, stride 1. The output
 * planes are (H + 2*PAD - K + 1) x (W + 2*PAD - K + 1).
 */
typedef struct {
    int c, h, w;
    int k, pad;
} ConvGeom;

/* Returns the output height or width of G. */
int conv_out_h(const ConvGeom *g);
int conv_out_w(const ConvGeom *g);

/*
 * Copies the input patches of N samples into COL. Plane c of sample s
 * starts at IM + s*SAMPLE_STRIDE + c*PLANE_STRIDE (H x W, rows
 * contiguous), so the same call reads NCHW batches (strides C*H*W and H*W)
 * and channel-major ones (strides H*W and N*H*W). COL has C*K*K rows,
 * ordered (c, ky, kx), with LDCOL floats between rows. Each row contains
 * N*OH*OW values ordered (s, oy, ox), and padding taps are 0.
 */
void im2col(const ConvGeom *g, int n, const float *im, size_t sample_stride,
            size_t plane_stride, float *col, size_t ldcol);

/* Adds each entry of COL back to the input pixel it was copied from: the
 * adjoint of im2col with the same layouts. IM is accumulated into, so the
 * caller zeroes it first. */
void col2im(const ConvGeom *g, int n, const float *col, size_t ldcol,
            float *im, size_t sample_stride, size_t plane_stride);

#endif
