/*
 * gemm: a reference sgemm, a cache-blocked one with packed panels, and
 * im2col/col2im.
 *
 * The blocked path follows the usual three-level scheme. The K dimension is
 * cut into blocks of KC. For each block, a KC x NC slab of op(B) is packed
 * into column panels NR wide, then each MC x KC block of op(A) is packed
 * into row panels MR tall and scaled by alpha. A micro-kernel multiplies
 * one MR x KC panel by one KC x NR panel into an MR x NR tile of C that
 * stays in registers. Packing makes every operand contiguous whatever the
 * transposition flags, so one kernel serves all four cases, and panels
 * shorter than MR or NR are padded with zeros. The AVX2 and AVX-512
 * kernels compute tiles at the right and bottom edges of C in place, with
 * masks and with fewer rows. The portable kernel's go through a small
 * buffer, so no kernel writes outside C. A 10-row product (the weight
 * gradient of a 10-unit dense layer) took 2.7 us through the buffer with
 * AVX-512 on a Zen 4, more than the same product with 16 rows (2.5 us).
 * With a 2-row kernel for the last two rows it took 1.9 us, and 1.8 us
 * with one tall tile of 10 rows, which the AVX-512 kernel uses for the
 * last 1 to 4 rows of a block. Such a weight gradient, A^T * B with at
 * most 12 rows, reads A in place as well: each row of the stored A is
 * already laid out as a packed panel. That took it to 1.4 us.
 * When op(A) fits one MC block, an untransposed B is not packed
 * at all: the kernel reads its rows in place. Operands read in place are
 * prefetched one panel ahead, which made the forward pass and the input
 * gradient of a 3136-to-1024 dense layer 10-25% faster.
 *
 * A second path, for A * B^T with at most DOT_MAX_M rows of A, computes
 * dot products of contiguous rows and packs nothing (see "dot path"
 * below). sgemm_dot exposes it for products where B has few rows. It
 * serves the forward pass of a dense layer with few units, and the
 * weight gradient of a single-channel convolution too wide for
 * src/direct.c. Its AVX2 and AVX-512 versions
 * also sum in the same order and give bit-identical results.
 *
 * Three implementations share the blocked driver (GemmImpl): a portable C
 * kernel, an AVX2 and FMA kernel with a 6 x 16 tile, and an AVX-512 kernel
 * with an 8 x 32 tile. The AVX-512 tile uses 16 of the 32 zmm registers as
 * accumulators. choose_kernel picks the AVX-512 kernel on every CPU that
 * has AVX-512F. On a 2-core Intel Xeon VM with two 512-bit FMA ports, it
 * made the layers of "tf" 1.4 times as fast as the AVX2 kernel
 * (fmnist-bench's per-layer table). On an AMD EPYC (Zen 4), which splits
 * each 512-bit FMA into two 256-bit halves and so has the same peak with
 * either width, the AVX-512 kernels still trained "small" and "tf" about
 * 1.2 times as fast. Half of the gain came from the first convolution,
 * whose AVX-512 code picks pooling winners with masks and blends. Both
 * kernels use the same KC and add the same products in the same order,
 * so they give bit-identical results. The environment
 * variable FMNIST_GEMM overrides the choice. sgemm_bias_relu runs the same
 * driver and adds a bias per row of C and ReLU in the kernels' store step.
 *
 * Sizes: an A block is MC*KC floats (96 KB; 128 KB for AVX-512), meant to
 * stay in L2 while the kernel sweeps it. One B panel is KC*NR floats
 * (16 KB; 32 KB for AVX-512), meant to stay in L1 across that sweep. Each
 * thread gets its own packing buffer (about 2.2 MB) from thread-specific
 * storage on first use. It is freed when the thread exits, except the
 * main thread's, which lives until the process ends.
 *
 * Limits: indices are int, so M, N and K must each stay below 2^31, and
 * the product of a dimension and its leading dimension must fit in size_t.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define GEMM_X86 1
#endif

#include "gemm.h"
#include "util.h"

/* MR x NR is the register tile of the portable and AVX2 kernels: 6 x 16
 * floats uses 12 of the 16 AVX2 registers as accumulators, leaving room
 * for two B vectors and one broadcast A value. MC is a multiple of MR and
 * NC of NR. */
enum { MR = 6, NR = 16, KC = 256, MC = 96, NC = 2048 };

/* The AVX-512 kernel's tile and blocks. 8 x 32 floats is 16 accumulators,
 * twice the 8 that two FMA ports with 4-cycle latency need in flight.
 * Each step of K loads 2 B vectors and 8 A values for 16 FMAs. MR = 8
 * divides the row counts the layers produce (32 and 64 filters, the
 * 800-row patch gradient of "tf"). */
enum { MR512 = 8, NR512 = 32, KC512 = 256, MC512 = 128, NC512 = 2048 };

/* The AVX-512 kernel takes the last few rows of a block, up to this many,
 * into the tile before them. A tile of 2 rows has only 4 accumulators,
 * too few to keep the FMA units busy, whereas one of 10 rows keeps them
 * about as busy as one of 8. */
enum { TALL512 = 4 };

/* An untransposed A * B with K up to this reads A in place (see
 * in_place_avx512). */
enum { IN_PLACE_K = 16 };

/* The AVX2 and AVX-512 kernels give bit-identical products only with the
 * same K blocks. */
_Static_assert((int)KC512 == (int)KC, "KC512 must equal KC");

/* The blocked path reads an untransposed A in place, without packing it,
 * when C has at most this many strips of NR columns. */
enum { DIRECT_A_STRIPS = 2 };

/* Bounds of the row sweep of macro_kernel, in floats. It needs a B block
 * of at most ROW_SWEEP_B, a quarter of a 2 MB L2, and a C block of at
 * least ROW_SWEEP_C, more than L1 and L2 keep beside B. The weight
 * gradient of a dense layer over 64 samples has a 64 x 2048 B block and
 * C blocks of 96 x 2048 and 96 x 1088 floats. */
enum { ROW_SWEEP_B = 128 * 1024, ROW_SWEEP_C = 64 * 1024 };

/* Returns 1 when a product with a B block of B_FLOATS and a C block of
 * C_FLOATS should sweep C by rows (see macro_kernel). */
static int row_sweep(size_t b_floats, size_t c_floats)
{
    return b_floats <= ROW_SWEEP_B && c_floats >= ROW_SWEEP_C;
}

/* Moves (*I, *J) from a tile of ROWS rows and NR columns of an M x N
 * product to the next one: along the row of tiles when BY_ROWS is set,
 * else down the strip of columns. Past the last tile *I reaches M or *J
 * reaches N. */
static inline void next_tile(int by_rows, int m, int n, int rows, int nr,
                             int *i, int *j)
{
    if (by_rows) {
        *j += nr;
        if (*j < n)
            return;
        *j = 0;
        *i += rows;
    } else {
        *i += rows;
        if (*i < m)
            return;
        *i = 0;
        *j += nr;
    }
}

/* Bounds over every implementation, for the edge buffers. */
enum { MR_MAX = 8, NR_MAX = 32, KC_MAX = 256 };

/* Floats between the packed A block and the packed B slab. The AVX2 packer
 * for A stores 8 floats where a packed column has 6, so it can write 2
 * floats past the end of the block; 16 keeps B 64-byte aligned. */
enum { A_SLACK = 16 };

/* Floats in one thread's packing buffer: the largest A block, the slack
 * and the largest B slab of any implementation. */
#define PACK_FLOATS_OF(mc, kc, nc) \
    ((size_t)(mc) * (kc) + A_SLACK + (size_t)(kc) * (nc))
#define PACK_FLOATS                                                     \
    (PACK_FLOATS_OF(MC, KC, NC) > PACK_FLOATS_OF(MC512, KC512, NC512)   \
         ? PACK_FLOATS_OF(MC, KC, NC)                                   \
         : PACK_FLOATS_OF(MC512, KC512, NC512))

/* How a micro-kernel stores its tile T: C = T, or C = C + T with
 * ACCUMULATE. Then, when BIAS is not NULL, row i of the tile adds
 * BIAS[i], and with RELU the tile is clamped at 0, in that order. */
typedef struct {
    int accumulate;
    const float *bias;
    int relu;
} TileStore;

/* Multiplies an MR x KC panel of A by a KC x NR panel whose rows are LDB
 * floats apart (NR when packed) and stores the tile in C according to
 * ST. With LDA 0 the A panel is packed (see pack_a_rows_portable);
 * otherwise it is read in place, row i starting at A + i*LDA. Kernels of
 * an implementation with narrow_tiles set read and write only the first
 * COLS columns of B and C; the others need COLS == NR. A full tile
 * prefetches NEXT into L2 when it is not NULL: the next A panel (MR rows
 * LDA apart) when LDA > 0, else the next B strip (KC rows LDB apart). */
typedef void (*MicroKernel)(int kc, const float *a, size_t lda,
                            const float *b, size_t ldb, int cols, float *c,
                            size_t ldc, const TileStore *st,
                            const float *next);

/* Computes a tile of ROWS rows, fewer than the implementation's MR, and
 * COLS columns, up to NR, in place in C, as MicroKernel does for a full
 * tile with LDA and ST. Only those rows of A, B's first COLS columns and
 * the tile's part of C are read. Each element of the tile takes the same
 * steps as in a full tile, so the result does not depend on where the
 * tile falls. */
typedef void (*RowsKernel)(int rows, int kc, const float *a, size_t lda,
                           const float *b, size_t ldb, int cols, float *c,
                           size_t ldc, const TileStore *st);

/* Computes a full-width tile of more than MR rows in place, as
 * MicroKernel does with LDA and ST: its first MR rows from A, the others
 * from A2, a packed panel. */
typedef void (*TallKernel)(int rows, int kc, const float *a, size_t lda,
                           const float *a2, const float *b, size_t ldb,
                           float *c, size_t ldc, const TileStore *st);

/* Packs columns J0..J0+NC-1 of a transposed B (stored N x K, rows LDB
 * apart), rows P0..P0+KC-1 of op(B), into the panel layout of pack_b. */
typedef void (*TransPacker)(const float *b, int ldb, int p0, int j0, int kc,
                            int nc, float *dst);

/* Packs rows I0..I0+MC-1, columns P0..P0+KC-1 of an untransposed A, times
 * ALPHA, into the panel layout of pack_a. */
typedef void (*APacker)(const float *a, int lda, int i0, int p0, int mc,
                        int kc, float alpha, float *dst);

/* One implementation of the blocked path: its register tile and cache
 * blocks, whether its micro-kernel computes tiles narrower than NR (see
 * MicroKernel), the kernel, the kernel for tiles of fewer than MR rows
 * (NULL when they go through a buffer), and its packers for the two
 * operands whose packing is a transpose (untransposed A and transposed
 * B). */
typedef struct {
    int mr, nr;
    int kc, mc, nc;
    int narrow_tiles;
    MicroKernel kernel;
    RowsKernel rows_kernel;
    TallKernel tall_kernel;  /* or NULL */
    int tall_rows;           /* rows a tall tile adds to MR at most */
    TransPacker pack_b_trans;
    APacker pack_a_rows;
} GemmImpl;

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* ---------------------------------------------------------------- reference */

void sgemm_ref(GemmTrans ta, GemmTrans tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta,
               float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int p = 0; p < k; p++) {
                float av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += (double)av * bv;
            }
            float *cij = &c[(size_t)i * ldc + j];
            /* beta == 0 must not read C, which may be uninitialised. */
            *cij = beta == 0.0f ? alpha * (float)sum
                                : alpha * (float)sum + beta * *cij;
        }
    }
}

/* ---------------------------------------------------------------- packing */

/* Packs a panel of MR rows of an untransposed A one value at a time: row
 * i of the panel starts at SRC + i*LDA, and fewer than MR rows are padded
 * with zeros. */
static void pack_a_rows_strip(const float *src, int lda, int rows, int kc,
                              float alpha, int mr, float *d)
{
    for (int i = 0; i < rows; i++) {
        const float *row = src + (size_t)i * lda;
        for (int p = 0; p < kc; p++)
            d[p * mr + i] = alpha * row[p];
    }
    for (int i = rows; i < mr; i++)
        for (int p = 0; p < kc; p++)
            d[p * mr + i] = 0.0f;
}

/* Packs rows I0..I0+MC-1, columns P0..P0+KC-1 of op(A), times ALPHA, into
 * panels of MR rows: panel r contains, for each p, its MR row values
 * contiguously (index r*MR*KC + p*MR + i). For an untransposed A this
 * is a transpose: A rows are contiguous in p. */
static void pack_a_rows_portable(const float *a, int lda, int i0, int p0,
                                 int mc, int kc, float alpha, float *dst)
{
    for (int ir = 0; ir < mc; ir += MR)
        pack_a_rows_strip(a + (size_t)(i0 + ir) * lda + p0, lda,
                          min_int(MR, mc - ir), kc, alpha, MR,
                          dst + (size_t)ir * kc);
}

/* The same panels of PANEL rows from a transposed A (stored K x M), where
 * the values of one p are already contiguous. */
static void pack_a_trans(const float *a, int lda, int i0, int p0, int mc,
                         int kc, float alpha, int panel, float *dst)
{
    for (int ir = 0; ir < mc; ir += panel) {
        int mr = min_int(panel, mc - ir);
        float *d = dst + (size_t)ir * kc;

        for (int p = 0; p < kc; p++) {
            const float *src = a + (size_t)(p0 + p) * lda + i0 + ir;
            for (int i = 0; i < mr; i++)
                d[p * panel + i] = alpha * src[i];
            for (int i = mr; i < panel; i++)
                d[p * panel + i] = 0.0f;
        }
    }
}

/* Packs rows P0..P0+KC-1, columns J0..J0+NC-1 of an untransposed B into
 * panels of PANEL columns: panel s contains, for each p, its PANEL values
 * contiguously (index s*PANEL*KC + p*PANEL + j). */
static void pack_b(const float *b, int ldb, int p0, int j0, int kc, int nc,
                   int panel, float *dst)
{
    for (int jr = 0; jr < nc; jr += panel) {
        int nr = min_int(panel, nc - jr);
        float *d = dst + (size_t)jr * kc;

        for (int p = 0; p < kc; p++) {
            const float *src = b + (size_t)(p0 + p) * ldb + j0 + jr;
            float *dp = d + (size_t)p * panel;
            memcpy(dp, src, (size_t)nr * sizeof *dp);
            for (int j = nr; j < panel; j++)
                dp[j] = 0.0f;
        }
    }
}

/* Packs COLS (at most PANEL) columns of a transposed B, starting at
 * stored row J, one value at a time: rows P0..P0+KC-1 go to
 * D[p*PANEL + j]. */
static void pack_b_trans_strip(const float *b, int ldb, int p0, int j,
                               int cols, int kc, int panel, float *d)
{
    for (int jj = 0; jj < cols; jj++) {
        const float *src = b + (size_t)(j + jj) * ldb + p0;
        for (int p = 0; p < kc; p++)
            d[p * panel + jj] = src[p];
    }
    for (int jj = cols; jj < panel; jj++)
        for (int p = 0; p < kc; p++)
            d[p * panel + jj] = 0.0f;
}

/* Stored N x K: each column of op(B) is a stored row, read along it. */
static void pack_b_trans_portable(const float *b, int ldb, int p0, int j0,
                                  int kc, int nc, float *dst)
{
    for (int jr = 0; jr < nc; jr += NR)
        pack_b_trans_strip(b, ldb, p0, j0 + jr, min_int(NR, nc - jr), kc,
                           NR, dst + (size_t)jr * kc);
}

/* ---------------------------------------------------------------- kernels */

/* Returns the value to store for one element of row I of a tile according
 * to ST. This is the scalar form of every kernel's store step, with the
 * same operations in the same order. */
static inline float store_value(const TileStore *st, int i, float old,
                                float t)
{
    float v = st->accumulate ? old + t : t;

    if (st->bias != NULL)
        v += st->bias[i];
    if (st->relu)
        v = v > 0.0f ? v : 0.0f;
    return v;
}

/* Columns of the tile that one pass of kernel_portable over K sums: MR x
 * PORTABLE_NB floats fill 12 of the 16 SSE registers of x86-64's
 * baseline target. With the whole MR x NR tile in one pass, GCC 12 at
 * -O3 kept the sums in memory, and training ran 3 times slower than at
 * -O2. */
#define PORTABLE_NB 8

/* Writes to T the MR x PORTABLE_NB products of A, whose values are
 * A_ROW apart between rows and A_STEP apart along K, and the first
 * PORTABLE_NB columns of B. Compilers vectorise the inner j loop with
 * whatever vector unit the baseline target has, and each sum adds its
 * products in the order of p, as the other kernels do. Inlined with
 * constant strides: with the strides chosen at run time, GCC 12 at -O3
 * shuffled single values into vectors and ran 2.6 times slower. */
static inline void portable_sums(int kc, const float *a, size_t a_row,
                                 size_t a_step, const float *b, size_t ldb,
                                 float t[MR][PORTABLE_NB])
{
    memset(t, 0, sizeof(float[MR][PORTABLE_NB]));
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            float ai = a[i * a_row];

            for (int j = 0; j < PORTABLE_NB; j++)
                t[i][j] += ai * b[j];
        }
        a += a_step;
        b += ldb;
    }
}

/* Computes the tile in strips of PORTABLE_NB columns. */
static void kernel_portable(int kc, const float *a, size_t lda,
                            const float *b, size_t ldb, int cols, float *c,
                            size_t ldc, const TileStore *st,
                            const float *next)
{
    for (int j0 = 0; j0 < NR; j0 += PORTABLE_NB) {
        float t[MR][PORTABLE_NB];

        if (lda == 0)
            portable_sums(kc, a, 1, MR, b + j0, ldb, t);
        else
            portable_sums(kc, a, lda, 1, b + j0, ldb, t);
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc + j0;
            for (int j = 0; j < PORTABLE_NB; j++)
                ci[j] = store_value(st, i, ci[j], t[i][j]);
        }
    }
}

#ifdef GEMM_X86
/* Masks for _mm256_maskload_ps and _mm256_maskstore_ps: entry r has its
 * first r lanes set. */
static const int32_t lane_mask[9][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0},     {-1, 0, 0, 0, 0, 0, 0, 0},
    {-1, -1, 0, 0, 0, 0, 0, 0},   {-1, -1, -1, 0, 0, 0, 0, 0},
    {-1, -1, -1, -1, 0, 0, 0, 0}, {-1, -1, -1, -1, -1, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, 0, 0}, {-1, -1, -1, -1, -1, -1, -1, 0},
    {-1, -1, -1, -1, -1, -1, -1, -1},
};

/* Returns a mask of the lanes [FROM, TO) of a 16-float vector, clipped
 * to the vector. */
static inline __mmask16 lane_range(int from, int to)
{
    from = from < 0 ? 0 : from;
    to = to > 16 ? 16 : to;
    if (to <= from)
        return 0;
    return (__mmask16)(((1u << to) - 1u) & ~((1u << from) - 1u));
}

/* Returns the mask of the lanes of vector V (16 floats each) that fall
 * among the first COLS columns of a tile. */
static inline __mmask16 tile_lanes(int cols, int v)
{
    return lane_range(0, cols - 16 * v);
}

/* Loads 8 floats from P, or only the lanes MASK selects when MASKED is
 * set. Masked-off lanes read as 0 and their memory is never accessed. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 load8(const float *p, int masked, __m256i mask)
{
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

/* What a full tile's loop prefetches (see MicroKernel). */
enum { PREFETCH_NONE, PREFETCH_A, PREFETCH_B };

/* A prefetch of ADDRESS into L2. The build of tests/check_prefetch
 * defines GEMM_PREFETCH_HOOK to check every address against the
 * operands, since a prefetch outside them would not fault. */
#ifdef GEMM_PREFETCH_HOOK
void gemm_prefetch_hook(const void *address);
#define PREFETCH_L2(address) gemm_prefetch_hook(address)
#else
#define PREFETCH_L2(address) __builtin_prefetch((address), 0, 2)
#endif

/*
 * Prefetches into L2 the part of NEXT that step P of a kernel loop covers,
 * for a tile of ROWS rows (at most 8) and WIDTH columns. An A panel gets
 * the line at column P & ~15 of row (P & 15) / 2 on even steps, so every
 * row's next line arrives within 16 steps. A B strip gets row P.
 */
__attribute__((always_inline))
static inline void prefetch_step(int kind, const float *next, int p,
                                 size_t lda, size_t ldb, int rows, int width)
{
    if (kind == PREFETCH_A) {
        int i = (p & 15) >> 1;

        if ((p & 1) == 0 && i < rows)
            PREFETCH_L2(next + (size_t)i * lda + (p & ~15));
    } else if (kind == PREFETCH_B) {
        const float *row = next + (size_t)p * ldb;

        PREFETCH_L2(row);
        if (width > 16)
            PREFETCH_L2(row + 16);
    }
}

/*
 * Six rows of two 8-float vectors: per p it loads two B vectors, broadcasts
 * six A values and issues twelve FMAs. B rows read in place and C may be
 * unaligned, so all their accesses are unaligned loads and stores. A value
 * (i, p) is at A + i*A_ROW + p*A_STEP. With MASKED set only the first COLS
 * columns are read and written, and without WIDE only the first vector is
 * computed (COLS <= 8). Only the first ROWS rows of the tile are computed,
 * read and stored. Callers pass constants for the flags and ROWS, so the
 * full tile keeps a loop without masks and a short tile has no dead FMAs.
 */
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_body(int kc, const float *a, size_t a_row,
                                    size_t a_step, const float *b,
                                    size_t ldb, int cols, int masked,
                                    int wide, int rows, float *c, size_t ldc,
                                    const TileStore *st, int prefetch,
                                    const float *next)
{
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;

    if (masked) {
        int rest = cols > 8 ? cols - 8 : 0;

        m0 = _mm256_loadu_si256((const __m256i *)lane_mask[cols < 8 ? cols
                                                                    : 8]);
        m1 = _mm256_loadu_si256((const __m256i *)lane_mask[rest < 8 ? rest
                                                                    : 8]);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    for (int p = 0; p < kc; p++) {
        __m256 b0 = load8(b, masked, m0);
        __m256 b1 = wide ? load8(b + 8, masked, m1) : _mm256_setzero_ps();
        __m256 av;

        /* Row I of the tile, when the tile has it: a broadcast of its A
         * value and one FMA per vector. */
#define AVX2_ROW_STEP(i, lo, hi)                                        \
        if (rows > (i)) {                                               \
            av = _mm256_broadcast_ss(a + (i) * a_row);                  \
            lo = _mm256_fmadd_ps(av, b0, lo);                           \
            if (wide)                                                   \
                hi = _mm256_fmadd_ps(av, b1, hi);                       \
        }
        AVX2_ROW_STEP(0, c00, c01)
        AVX2_ROW_STEP(1, c10, c11)
        AVX2_ROW_STEP(2, c20, c21)
        AVX2_ROW_STEP(3, c30, c31)
        AVX2_ROW_STEP(4, c40, c41)
        AVX2_ROW_STEP(5, c50, c51)
#undef AVX2_ROW_STEP
        prefetch_step(prefetch, next, p, a_row, ldb, MR, NR);
        a += a_step;
        b += ldb;
    }

    __m256 sums[MR][2] = {
        {c00, c01}, {c10, c11}, {c20, c21},
        {c30, c31}, {c40, c41}, {c50, c51},
    };
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        __m256 lo = sums[i][0], hi = sums[i][1];
        if (st->accumulate) {
            lo = _mm256_add_ps(lo, load8(ci, masked, m0));
            if (wide)
                hi = _mm256_add_ps(hi, load8(ci + 8, masked, m1));
        }
        if (st->bias != NULL) {
            __m256 bias = _mm256_set1_ps(st->bias[i]);
            lo = _mm256_add_ps(lo, bias);
            hi = _mm256_add_ps(hi, bias);
        }
        if (st->relu) {
            /* max returns its second operand when either is NaN or both
             * are zeros, as the scalar v > 0 ? v : 0 does. */
            lo = _mm256_max_ps(lo, _mm256_setzero_ps());
            hi = _mm256_max_ps(hi, _mm256_setzero_ps());
        }
        if (masked) {
            _mm256_maskstore_ps(ci, m0, lo);
            if (wide)
                _mm256_maskstore_ps(ci + 8, m1, hi);
        } else {
            _mm256_storeu_ps(ci, lo);
            _mm256_storeu_ps(ci + 8, hi);
        }
    }
}

/* Runs the instance of kernel_avx2_body that fits the tile: masked and
 * one or two vectors wide for a strip narrower than NR, else unmasked with
 * A packed or in place. */
__attribute__((target("avx2,fma")))
static void kernel_avx2(int kc, const float *a, size_t lda, const float *b,
                        size_t ldb, int cols, float *c, size_t ldc,
                        const TileStore *st, const float *next)
{
    size_t a_row = lda == 0 ? 1 : lda, a_step = lda == 0 ? MR : 1;

    if (cols < NR && cols <= 8)
        kernel_avx2_body(kc, a, a_row, a_step, b, ldb, cols, 1, 0, MR, c,
                         ldc, st, PREFETCH_NONE, NULL);
    else if (cols < NR)
        kernel_avx2_body(kc, a, a_row, a_step, b, ldb, cols, 1, 1, MR, c,
                         ldc, st, PREFETCH_NONE, NULL);
    else if (lda == 0 && next != NULL)
        kernel_avx2_body(kc, a, 1, MR, b, ldb, NR, 0, 1, MR, c, ldc, st,
                         PREFETCH_B, next);
    else if (lda == 0)
        kernel_avx2_body(kc, a, 1, MR, b, ldb, NR, 0, 1, MR, c, ldc, st,
                         PREFETCH_NONE, NULL);
    else if (next != NULL)
        kernel_avx2_body(kc, a, lda, 1, b, ldb, NR, 0, 1, MR, c, ldc, st,
                         PREFETCH_A, next);
    else
        kernel_avx2_body(kc, a, lda, 1, b, ldb, NR, 0, 1, MR, c, ldc, st,
                         PREFETCH_NONE, NULL);
}

/* Computes a tile of ROWS rows, 1 to MR - 1, in place (see RowsKernel). */
__attribute__((target("avx2,fma")))
static void kernel_avx2_rows(int rows, int kc, const float *a, size_t lda,
                             const float *b, size_t ldb, int cols, float *c,
                             size_t ldc, const TileStore *st)
{
    size_t a_row = lda == 0 ? 1 : lda, a_step = lda == 0 ? MR : 1;

#define AVX2_ROWS_CASE(r)                                                 \
    case (r):                                                             \
        if (cols == NR)                                                   \
            kernel_avx2_body(kc, a, a_row, a_step, b, ldb, NR, 0, 1, (r), \
                             c, ldc, st, PREFETCH_NONE, NULL);            \
        else if (cols <= 8)                                               \
            kernel_avx2_body(kc, a, a_row, a_step, b, ldb, cols, 1, 0,    \
                             (r), c, ldc, st, PREFETCH_NONE, NULL);       \
        else                                                              \
            kernel_avx2_body(kc, a, a_row, a_step, b, ldb, cols, 1, 1,    \
                             (r), c, ldc, st, PREFETCH_NONE, NULL);       \
        break
    switch (rows) {
    AVX2_ROWS_CASE(1);
    AVX2_ROWS_CASE(2);
    AVX2_ROWS_CASE(3);
    AVX2_ROWS_CASE(4);
    AVX2_ROWS_CASE(5);
    default:
        /* run_tile passes full tiles to kernel_avx2. */
        abort();
    }
#undef AVX2_ROWS_CASE
}

/* Computes C = op(A) * B + beta * C, beta 0 or 1, as in_place_avx512
 * does, in tiles of up to MR rows and NR columns. */
__attribute__((target("avx2,fma"), always_inline))
static inline void in_place_avx2(int m, int n, int k, const float *a,
                                 size_t a_row, size_t a_step, const float *b,
                                 int ldb, float beta, float *c, int ldc)
{
    TileStore st = {beta != 0.0f, NULL, 0};
    int by_rows = row_sweep((size_t)k * n, (size_t)m * n);

    for (int i = 0, j = 0; i < m && j < n;) {
        int rows = min_int(MR, m - i);
        const float *ai = a + (size_t)i * a_row;
        float *cij = c + (size_t)i * ldc + j;

#define IN_PLACE_CASE(r)                                                  \
    case (r):                                                             \
        kernel_avx2_body(k, ai, a_row, a_step, b + j, (size_t)ldb, NR, 0, \
                         1, (r), cij, (size_t)ldc, &st, PREFETCH_NONE,    \
                         NULL);                                           \
        break
        switch (rows) {
        IN_PLACE_CASE(1); IN_PLACE_CASE(2); IN_PLACE_CASE(3);
        IN_PLACE_CASE(4); IN_PLACE_CASE(5); IN_PLACE_CASE(6);
        default:
            /* min_int caps the rows at MR. */
            abort();
        }
#undef IN_PLACE_CASE
        next_tile(by_rows, m, n, rows, NR, &i, &j);
    }
}

/* in_place_avx2 for A^T * B, A stored K x M, and for A * B. Each has
 * its own copy, so the stride of one A step or row is a constant. */
__attribute__((target("avx2,fma")))
static void in_place_tn_avx2(int m, int n, int k, const float *a, int lda,
                             const float *b, int ldb, float beta, float *c,
                             int ldc)
{
    in_place_avx2(m, n, k, a, 1, (size_t)lda, b, ldb, beta, c, ldc);
}

__attribute__((target("avx2,fma")))
static void in_place_nn_avx2(int m, int n, int k, const float *a, int lda,
                             const float *b, int ldb, float beta, float *c,
                             int ldc)
{
    in_place_avx2(m, n, k, a, (size_t)lda, 1, b, ldb, beta, c, ldc);
}

/* Transposes the 8 x 8 block held in R (row q in R[q]) in place, with the
 * usual unpack, shuffle and lane-permute sequence. */
__attribute__((target("avx2,fma"), always_inline))
static inline void transpose_8x8(__m256 r[8])
{
    __m256 t[8], u[8];

    for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
        u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
        u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x31);
    }
}

/* Same result as pack_b_trans_portable for panels of PANEL columns, a
 * multiple of 8. Full panels move as 8 x 8 blocks: eight stored rows of
 * eight values are loaded and transposed in registers. They go out as
 * eight contiguous 8-float pieces of panel rows, in place of 64 scalar
 * stores PANEL floats apart. */
__attribute__((target("avx2,fma"), always_inline))
static inline void pack_b_trans_blocks(const float *b, int ldb, int p0,
                                       int j0, int kc, int nc, int panel,
                                       float *dst)
{
    for (int jr = 0; jr < nc; jr += panel) {
        float *d = dst + (size_t)jr * kc;
        int kc8 = kc & ~7;

        if (nc - jr < panel) {
            pack_b_trans_strip(b, ldb, p0, j0 + jr, nc - jr, kc, panel, d);
            continue;
        }
        for (int part = 0; part < panel; part += 8) {
            const float *src = b + (size_t)(j0 + jr + part) * ldb + p0;
            for (int p = 0; p < kc8; p += 8) {
                __m256 r[8];
                for (int q = 0; q < 8; q++)
                    r[q] = _mm256_loadu_ps(src + (size_t)q * ldb + p);
                transpose_8x8(r);
                for (int q = 0; q < 8; q++)
                    _mm256_store_ps(d + (size_t)(p + q) * panel + part,
                                    r[q]);
            }
        }
        for (int p = kc8; p < kc; p++)
            for (int j = 0; j < panel; j++)
                d[p * panel + j] = b[(size_t)(j0 + jr + j) * ldb + p0 + p];
    }
}

__attribute__((target("avx2,fma")))
static void pack_b_trans_avx2(const float *b, int ldb, int p0, int j0,
                              int kc, int nc, float *dst)
{
    pack_b_trans_blocks(b, ldb, p0, j0, kc, nc, NR, dst);
}

/* The AVX-512 kernel's panels, 32 columns wide. */
__attribute__((target("avx2,fma")))
static void pack_b_trans_32(const float *b, int ldb, int p0, int j0, int kc,
                            int nc, float *dst)
{
    pack_b_trans_blocks(b, ldb, p0, j0, kc, nc, NR512, dst);
}

/* Same result as pack_a_rows_portable. Full panels move as 6 x 8 blocks:
 * six rows of eight values plus two zero rows are transposed in registers,
 * and each column goes out as one 8-float store at its 6-float slot. The
 * two extra floats land in the next slot, which a later store rewrites.
 * After the last panel they land in the A_SLACK gap before packed B. */
__attribute__((target("avx2,fma")))
static void pack_a_rows_avx2(const float *a, int lda, int i0, int p0,
                             int mc, int kc, float alpha, float *dst)
{
    __m256 scale = _mm256_set1_ps(alpha);
    int kc8 = kc & ~7;

    for (int ir = 0; ir < mc; ir += MR) {
        const float *src = a + (size_t)(i0 + ir) * lda + p0;
        float *d = dst + (size_t)ir * kc;

        if (mc - ir < MR) {
            pack_a_rows_strip(src, lda, mc - ir, kc, alpha, MR, d);
            continue;
        }
        for (int p = 0; p < kc8; p += 8) {
            __m256 r[8];
            for (int i = 0; i < MR; i++)
                r[i] = _mm256_mul_ps(
                    scale, _mm256_loadu_ps(src + (size_t)i * lda + p));
            r[6] = r[7] = _mm256_setzero_ps();
            transpose_8x8(r);
            for (int q = 0; q < 8; q++)
                _mm256_storeu_ps(d + (size_t)(p + q) * MR, r[q]);
        }
        for (int p = kc8; p < kc; p++)
            for (int i = 0; i < MR; i++)
                d[p * MR + i] = alpha * src[(size_t)i * lda + p];
    }
}

/*
 * Eight rows of two 16-float vectors: per p it loads two B vectors,
 * broadcasts eight A values and issues sixteen FMAs. The i loops are
 * unrolled completely so that the 16 accumulators stay in registers. B
 * rows read in place and C may be unaligned, so all their accesses are
 * unaligned loads and stores. A, COLS and MASKED are as in
 * kernel_avx2_body, and VECTORS (1 or 2) is the number of 16-float
 * vectors computed. Only the first ROWS rows are computed and stored.
 *
 * A tall tile has up to TALL512 more rows than MR512, 24 accumulators at
 * most. Its rows from MR512 on come from a second panel, A2, with its own
 * row and step strides. Every element still takes the same steps.
 */
__attribute__((target("avx512f"), always_inline))
static inline void kernel_avx512_tall_body(int kc, const float *a,
                                           size_t a_row, size_t a_step,
                                           const float *a2, size_t a2_row,
                                           size_t a2_step, const float *b,
                                           size_t ldb, int cols, int masked,
                                           int vectors, int rows, float *c,
                                           size_t ldc, const TileStore *st,
                                           int prefetch, const float *next)
{
    __m512 acc[MR512 + TALL512][2];
    __mmask16 mask[2] = {tile_lanes(cols, 0), tile_lanes(cols, 1)};

#pragma GCC unroll 12
    for (int i = 0; i < rows; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m512 bv[2];

#pragma GCC unroll 2
        for (int v = 0; v < vectors; v++)
            bv[v] = masked ? _mm512_maskz_loadu_ps(mask[v], b + 16 * v)
                           : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < rows; i++) {
            __m512 av = _mm512_set1_ps(i < MR512 ? a[i * a_row]
                                                 : a2[(i - MR512) * a2_row]);

#pragma GCC unroll 2
            for (int v = 0; v < vectors; v++)
                acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
        prefetch_step(prefetch, next, p, a_row, ldb, MR512, NR512);
        a += a_step;
        a2 += a2_step;
        b += ldb;
    }
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;

#pragma GCC unroll 2
        for (int v = 0; v < vectors; v++) {
            __m512 t = acc[i][v];

            if (st->accumulate)
                t = _mm512_add_ps(t, masked ? _mm512_maskz_loadu_ps(
                                                  mask[v], ci + 16 * v)
                                            : _mm512_loadu_ps(ci + 16 * v));
            if (st->bias != NULL)
                t = _mm512_add_ps(t, _mm512_set1_ps(st->bias[i]));
            /* As in kernel_avx2: max(v, 0) returns 0 for NaN and -0. */
            if (st->relu)
                t = _mm512_max_ps(t, _mm512_setzero_ps());
            if (masked)
                _mm512_mask_storeu_ps(ci + 16 * v, mask[v], t);
            else
                _mm512_storeu_ps(ci + 16 * v, t);
        }
    }
}

/* A tile of at most MR512 rows, all from A. */
__attribute__((target("avx512f"), always_inline))
static inline void kernel_avx512_body(int kc, const float *a, size_t a_row,
                                      size_t a_step, const float *b,
                                      size_t ldb, int cols, int masked,
                                      int vectors, int rows, float *c,
                                      size_t ldc,
                                      const TileStore *st, int prefetch,
                                      const float *next)
{
    kernel_avx512_tall_body(kc, a, a_row, a_step, a, 0, 0, b, ldb, cols,
                            masked, vectors, rows, c, ldc, st, prefetch,
                            next);
}

/* Runs the instance of kernel_avx512_body that fits the tile, chosen as in
 * kernel_avx2. */
__attribute__((target("avx512f")))
static void kernel_avx512(int kc, const float *a, size_t lda, const float *b,
                          size_t ldb, int cols, float *c, size_t ldc,
                          const TileStore *st, const float *next)
{
    size_t a_row = lda == 0 ? 1 : lda, a_step = lda == 0 ? MR512 : 1;

    if (cols < NR512 && cols <= 16)
        kernel_avx512_body(kc, a, a_row, a_step, b, ldb, cols, 1, 1, MR512,
                           c, ldc, st, PREFETCH_NONE, NULL);
    else if (cols < NR512)
        kernel_avx512_body(kc, a, a_row, a_step, b, ldb, cols, 1, 2, MR512,
                           c, ldc, st, PREFETCH_NONE, NULL);
    else if (lda == 0 && next != NULL)
        kernel_avx512_body(kc, a, 1, MR512, b, ldb, NR512, 0, 2, MR512, c,
                           ldc, st, PREFETCH_B, next);
    else if (lda == 0)
        kernel_avx512_body(kc, a, 1, MR512, b, ldb, NR512, 0, 2, MR512, c,
                           ldc, st, PREFETCH_NONE, NULL);
    else if (next != NULL)
        kernel_avx512_body(kc, a, lda, 1, b, ldb, NR512, 0, 2, MR512, c,
                           ldc, st, PREFETCH_A, next);
    else
        kernel_avx512_body(kc, a, lda, 1, b, ldb, NR512, 0, 2, MR512, c,
                           ldc, st, PREFETCH_NONE, NULL);
}

/* Computes a tile of ROWS rows, 1 to MR512 - 1, in place (see
 * RowsKernel). */
__attribute__((target("avx512f")))
static void kernel_avx512_rows(int rows, int kc, const float *a, size_t lda,
                               const float *b, size_t ldb, int cols,
                               float *c, size_t ldc, const TileStore *st)
{
    size_t a_row = lda == 0 ? 1 : lda, a_step = lda == 0 ? MR512 : 1;

#define AVX512_ROWS_CASE(r)                                               \
    case (r):                                                             \
        if (cols == NR512)                                                \
            kernel_avx512_body(kc, a, a_row, a_step, b, ldb, NR512, 0, 2, \
                               (r), c, ldc, st, PREFETCH_NONE, NULL);     \
        else if (cols <= 16)                                              \
            kernel_avx512_body(kc, a, a_row, a_step, b, ldb, cols, 1, 1,  \
                               (r), c, ldc, st, PREFETCH_NONE, NULL);     \
        else                                                              \
            kernel_avx512_body(kc, a, a_row, a_step, b, ldb, cols, 1, 2,  \
                               (r), c, ldc, st, PREFETCH_NONE, NULL);     \
        break
    switch (rows) {
    AVX512_ROWS_CASE(1);
    AVX512_ROWS_CASE(2);
    AVX512_ROWS_CASE(3);
    AVX512_ROWS_CASE(4);
    AVX512_ROWS_CASE(5);
    AVX512_ROWS_CASE(6);
    AVX512_ROWS_CASE(7);
    default:
        /* run_tile passes full tiles to kernel_avx512. */
        abort();
    }
#undef AVX512_ROWS_CASE
}

/*
 * C = op(A) * B + beta * C, beta 0 or 1, reading A and B in place, for N a
 * multiple of NR512 and K at most KC512. Element p of row i of op(A) is at
 * A + i * A_ROW + p * A_STEP, and row p of B at B + p * LDB. So each step
 * of K reads the values of a packed A panel and a packed B panel, only at
 * other strides.
 * Two products have operands that small, where packing them took a large
 * share of the time:
 *  - A^T * B with A stored K x M and M at most MR512 + TALL512, a dense
 *    layer's weight gradient over a batch when the layer has few units.
 *    Packing A took about 15% of the time for 10 x 128 with K = 64.
 *  - A * B with K small, such as a dense layer's input gradient from 10
 *    units, where a packed panel of A serves only K steps per tile.
 * Rows go in tiles of MR512, the last one up to TALL512 taller, as in the
 * blocked path, and every element takes the steps it takes there in a
 * single K block, so both give the same C. The row tiles of a strip of B
 * run one after the other, keeping the strip in L1, unless C is large
 * enough for macro_kernel's row sweep, whose order this follows then.
 */
__attribute__((target("avx512f"), always_inline))
static inline void in_place_avx512(int m, int n, int k, const float *a,
                                   size_t a_row, size_t a_step,
                                   const float *b, int ldb, float beta,
                                   float *c, int ldc)
{
    TileStore st = {beta != 0.0f, NULL, 0};
    int by_rows = row_sweep((size_t)k * n, (size_t)m * n);

    for (int i = 0, j = 0; i < m && j < n;) {
        int rows = m - i <= MR512 + TALL512 ? m - i : MR512;
        const float *ai = a + (size_t)i * a_row;
        float *cij = c + (size_t)i * ldc + j;

#define IN_PLACE_CASE(r)                                                  \
    case (r):                                                             \
        kernel_avx512_tall_body(k, ai, a_row, a_step, ai + MR512 * a_row, \
                                a_row, a_step, b + j, (size_t)ldb, NR512, \
                                0, 2, (r), cij, (size_t)ldc, &st,         \
                                PREFETCH_NONE, NULL);                     \
        break
        switch (rows) {
        IN_PLACE_CASE(1); IN_PLACE_CASE(2); IN_PLACE_CASE(3);
        IN_PLACE_CASE(4); IN_PLACE_CASE(5); IN_PLACE_CASE(6);
        IN_PLACE_CASE(7); IN_PLACE_CASE(8); IN_PLACE_CASE(9);
        IN_PLACE_CASE(10); IN_PLACE_CASE(11); IN_PLACE_CASE(12);
        default:
            /* A tile has at most MR512 + TALL512 rows. */
            abort();
        }
#undef IN_PLACE_CASE
        next_tile(by_rows, m, n, rows, NR512, &i, &j);
    }
}

/* in_place_avx512 for A^T * B, A stored K x M, and for A * B, each with
 * constant strides as in in_place_tn_avx2. */
__attribute__((target("avx512f")))
static void in_place_tn_avx512(int m, int n, int k, const float *a, int lda,
                               const float *b, int ldb, float beta, float *c,
                               int ldc)
{
    in_place_avx512(m, n, k, a, 1, (size_t)lda, b, ldb, beta, c, ldc);
}

__attribute__((target("avx512f")))
static void in_place_nn_avx512(int m, int n, int k, const float *a, int lda,
                               const float *b, int ldb, float beta, float *c,
                               int ldc)
{
    in_place_avx512(m, n, k, a, (size_t)lda, 1, b, ldb, beta, c, ldc);
}

/* Computes a full-width tile of MR512 + 1 to MR512 + TALL512 rows in
 * place (see TallKernel). */
__attribute__((target("avx512f")))
static void kernel_avx512_tall(int rows, int kc, const float *a, size_t lda,
                               const float *a2, const float *b, size_t ldb,
                               float *c, size_t ldc, const TileStore *st)
{
#define AVX512_TALL_CASE(r)                                               \
    case (r):                                                             \
        if (lda == 0)                                                     \
            kernel_avx512_tall_body(kc, a, 1, MR512, a2, 1, MR512, b,     \
                                    ldb, NR512, 0, 2, (r), c, ldc, st,    \
                                    PREFETCH_NONE, NULL);                 \
        else                                                              \
            kernel_avx512_tall_body(kc, a, lda, 1, a2, 1, MR512, b, ldb,  \
                                    NR512, 0, 2, (r), c, ldc, st,         \
                                    PREFETCH_NONE, NULL);                 \
        break
    switch (rows) {
    AVX512_TALL_CASE(MR512 + 1);
    AVX512_TALL_CASE(MR512 + 2);
    AVX512_TALL_CASE(MR512 + 3);
    AVX512_TALL_CASE(MR512 + 4);
    default:
        /* tile_rows_at never makes a taller tile. */
        abort();
    }
#undef AVX512_TALL_CASE
}

/* Same result as pack_a_rows_strip for panels of 8 rows, the AVX-512
 * kernel's MR512: each 8 x 8 block of A is transposed in registers and
 * goes out as eight contiguous 8-float columns. */
__attribute__((target("avx2,fma")))
static void pack_a_rows_8(const float *a, int lda, int i0, int p0, int mc,
                          int kc, float alpha, float *dst)
{
    __m256 scale = _mm256_set1_ps(alpha);
    int kc8 = kc & ~7;

    for (int ir = 0; ir < mc; ir += MR512) {
        const float *src = a + (size_t)(i0 + ir) * lda + p0;
        float *d = dst + (size_t)ir * kc;

        if (mc - ir < MR512) {
            pack_a_rows_strip(src, lda, mc - ir, kc, alpha, MR512, d);
            continue;
        }
        for (int p = 0; p < kc8; p += 8) {
            __m256 r[8];
            for (int i = 0; i < MR512; i++)
                r[i] = _mm256_mul_ps(
                    scale, _mm256_loadu_ps(src + (size_t)i * lda + p));
            transpose_8x8(r);
            for (int q = 0; q < 8; q++)
                _mm256_storeu_ps(d + (size_t)(p + q) * MR512, r[q]);
        }
        for (int p = kc8; p < kc; p++)
            for (int i = 0; i < MR512; i++)
                d[p * MR512 + i] = alpha * src[(size_t)i * lda + p];
    }
}
#endif

/* ---------------------------------------------------------------- dot path */

#ifdef GEMM_X86
/*
 * C = alpha * A * B^T + beta * C with A stored M x K and B stored N x K,
 * both row-major: each C[i][j] is the dot product of two contiguous rows.
 * This path packs nothing. The blocked path would transpose all of B into
 * panels on every call, which for a dense layer's forward pass over a few
 * samples (M = 8, B = the OUT x IN weights) costs more than the product.
 *
 * A tile of DOT_ROWS x DOT_COLS products keeps one 8-float accumulator per
 * element: per step of 8 along K it loads 2 A vectors and 4 B vectors for
 * 8 FMAs, 13 of the 16 registers. Where 5 columns fill every tile and 4
 * do not, tiles take 5 columns and all 16 registers. A 10-unit dense
 * layer's forward pass over 64 samples (64 x 10, K = 1024) then took
 * 15.2 us instead of 16.7 on a Zen 4. Loop order, outermost first: chunks of
 * DOT_CHUNK rows of A, groups of DOT_COLS rows of B, blocks of DOT_KC
 * along K, then the row tiles of the chunk. One block of the 4 B rows
 * (8 KB) then stays in L1 while every row tile of A passes, and B, the
 * large operand, streams from memory once per chunk. The accumulators are
 * parked in STATE between K blocks.
 *
 * With AVX-512VL the same instructions can use 32 registers, and the wide
 * tile of DOT_WIDE_ROWS x DOT_WIDE_COLS needs 9 loads for 20 FMAs. Its
 * five columns cover a 10-unit dense layer's outputs in two groups.
 *
 * Every element takes the same steps whatever its position: lanes summed
 * along K in order, then reduced by the same horizontal-add tree. So the
 * result does not depend on M, N, the tile shape or which tile an element
 * falls in.
 */
enum {
    DOT_ROWS = 2, DOT_COLS = 4, DOT_WIDE_ROWS = 4, DOT_WIDE_COLS = 5,
    DOT_KC = 512, DOT_CHUNK = 32
};

/* sgemm_avx2 and sgemm_avx512 take the dot path up to this many rows of
 * A. */
enum { DOT_MAX_M = 32 };

/* Set on CPUs with AVX-512 whose FMA units are 256 bits wide, so that a
 * 512-bit FMA takes two of them: AMD's Zen 4 (family 19h; Zen 3, the
 * other family 19h cores, lacks AVX-512). */
static int split_fma512;  /* set by detect_cpu */

/* Returns the four horizontal sums of R[0..3] as one 4-float vector: two
 * hadd levels pair the lanes within each 128-bit half, and the halves are
 * added last. Each sum takes the same steps in any of the four places. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m128 dot_reduce4(const __m256 r[4])
{
    __m256 pair01 = _mm256_hadd_ps(r[0], r[1]);
    __m256 pair23 = _mm256_hadd_ps(r[2], r[3]);
    __m256 quad = _mm256_hadd_ps(pair01, pair23);

    return _mm_add_ps(_mm256_castps256_ps128(quad),
                      _mm256_extractf128_ps(quad, 1));
}

/* One block of a dot tile: KC values along K from A and B (rows LDA and
 * LDB apart), the accumulators parked in STATE. */
typedef struct {
    int kc;
    int first, last;   /* the first or last K block of the product */
    float alpha, beta;
} DotBlock;

/*
 * Adds one K block of a ROWS x COLS tile (at most DOT_WIDE_ROWS x
 * DOT_WIDE_COLS) to the accumulators in STATE, starting from zero in the
 * first block. In the last block it writes the tile to C. Callers pass
 * constants for ROWS and COLS, so after inlining the accumulators are
 * registers.
 */
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_tile(int rows, int cols, const DotBlock *blk,
                            const float *a, size_t lda, const float *b,
                            size_t ldb, __m256 *state, float *c, size_t ldc)
{
    __m256 acc[DOT_WIDE_ROWS][DOT_WIDE_COLS];
    int kc = blk->kc, k8 = kc & ~7;

    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            acc[i][j] = blk->first ? _mm256_setzero_ps()
                                   : state[i * cols + j];
    for (int p = 0; p < k8; p += 8) {
        __m256 bv[DOT_WIDE_COLS];

        /* The empty asm pins each B vector in a register. Without it GCC
         * folds the loads into the FMAs and loads B once per A row, which
         * makes the loop bound by loads instead of FMAs. */
        for (int j = 0; j < cols; j++) {
            bv[j] = _mm256_loadu_ps(b + j * ldb + p);
            __asm__("" : "+x"(bv[j]));
        }
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_loadu_ps(a + i * lda + p);
            for (int j = 0; j < cols; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (k8 < kc) {
        __m256i mask = _mm256_loadu_si256(
            (const __m256i *)lane_mask[kc - k8]);
        __m256 bv[DOT_WIDE_COLS];

        for (int j = 0; j < cols; j++)
            bv[j] = _mm256_maskload_ps(b + j * ldb + k8, mask);
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_maskload_ps(a + i * lda + k8, mask);
            for (int j = 0; j < cols; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (!blk->last) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                state[i * cols + j] = acc[i][j];
        return;
    }
    /* Columns 0-3 are reduced a row at a time, column 4 over the rows. */
    float sums[DOT_WIDE_ROWS][8];
    __m256 group[4];

    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 4; j++)
            group[j] = j < cols ? acc[i][j] : _mm256_setzero_ps();
        _mm_storeu_ps(sums[i], dot_reduce4(group));
    }
    if (cols > 4) {
        float last[4];

        for (int i = 0; i < 4; i++)
            group[i] = i < rows ? acc[i][4] : _mm256_setzero_ps();
        _mm_storeu_ps(last, dot_reduce4(group));
        for (int i = 0; i < rows; i++)
            sums[i][4] = last[i];
    }
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;

        for (int j = 0; j < cols; j++)
            ci[j] = blk->beta == 0.0f
                    ? blk->alpha * sums[i][j]
                    : blk->alpha * sums[i][j] + blk->beta * ci[j];
    }
}

/* A function computing one tile of ROWS x COLS. Each one below compiles
 * every shape it takes separately. */
typedef void DotTileFn(int rows, int cols, const DotBlock *blk,
                       const float *a, size_t lda, const float *b,
                       size_t ldb, __m256 *state, float *c, size_t ldc);

#define DOT_CASE(r, q)                                                  \
    case (r) * 8 + (q):                                                 \
        dot_tile((r), (q), blk, a, lda, b, ldb, state, c, ldc);         \
        return

/* Tiles of up to DOT_ROWS x DOT_COLS on 16 registers. */
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_any_tile(int rows, int cols, const DotBlock *blk,
                         const float *a, size_t lda, const float *b,
                         size_t ldb, __m256 *state, float *c, size_t ldc)
{
    switch (rows * 8 + cols) {
    DOT_CASE(2, 5); DOT_CASE(2, 4); DOT_CASE(2, 3); DOT_CASE(2, 2);
    DOT_CASE(2, 1); DOT_CASE(1, 5); DOT_CASE(1, 4); DOT_CASE(1, 3);
    DOT_CASE(1, 2); DOT_CASE(1, 1);
    }
    /* dot_chunk never passes a larger tile. */
    abort();
}

/* Tiles of up to DOT_WIDE_ROWS x DOT_WIDE_COLS: the same instructions,
 * which with AVX-512VL may use all 32 vector registers. */
__attribute__((target("avx512vl,avx2,fma"), always_inline))
static inline void dot_wide_any_tile(int rows, int cols,
                                     const DotBlock *blk, const float *a,
                                     size_t lda, const float *b, size_t ldb,
                                     __m256 *state, float *c, size_t ldc)
{
    switch (rows * 8 + cols) {
    DOT_CASE(4, 5); DOT_CASE(4, 4); DOT_CASE(4, 3); DOT_CASE(4, 2);
    DOT_CASE(4, 1); DOT_CASE(3, 5); DOT_CASE(3, 4); DOT_CASE(3, 3);
    DOT_CASE(3, 2); DOT_CASE(3, 1); DOT_CASE(2, 5); DOT_CASE(2, 4);
    DOT_CASE(2, 3); DOT_CASE(2, 2); DOT_CASE(2, 1); DOT_CASE(1, 5);
    DOT_CASE(1, 4); DOT_CASE(1, 3); DOT_CASE(1, 2); DOT_CASE(1, 1);
    }
    abort();
}
#undef DOT_CASE

/* Computes the products of ROWS (at most DOT_CHUNK) rows of A with all N
 * rows of B in tiles of at most TILE_ROWS x TILE_COLS, computed by TILE.
 * Callers pass constants, so that the tiles are inlined: a call per tile
 * cost a third of the time of a 10 x 64 product with K = 128. */
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_chunk(DotTileFn *tile, int tile_rows, int tile_cols,
                             int rows, int n, int k, float alpha,
                             const float *a, size_t lda, const float *b,
                             size_t ldb, float beta, float *c, size_t ldc)
{
    __m256 state[DOT_CHUNK * DOT_WIDE_COLS];

    for (int j = 0; j < n; j += tile_cols) {
        int cols = min_int(tile_cols, n - j);

        for (int p = 0; p < k || p == 0; p += DOT_KC) {
            DotBlock blk = {min_int(DOT_KC, k - p), p == 0, p + DOT_KC >= k,
                            alpha, beta};

            for (int i = 0; i < rows; i += tile_rows)
                tile(min_int(tile_rows, rows - i), cols, &blk,
                     a + (size_t)i * lda + p, lda, b + (size_t)j * ldb + p,
                     ldb, state + (size_t)i * tile_cols,
                     c + (size_t)i * ldc + j, ldc);
        }
    }
}

/* Returns the columns per tile for N rows of B: 4, or 5 when that fills
 * every tile and 4 does not. A 10-unit dense layer then takes two full
 * groups instead of 4 + 4 + 2. */
static int dot_tile_cols(int n)
{
    return n % 4 != 0 && n % 5 == 0 ? 5 : 4;
}

__attribute__((target("avx2,fma")))
static void dot_nt(int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    int cols = dot_tile_cols(n);

    for (int i = 0; i < m; i += DOT_CHUNK)
        dot_chunk(dot_any_tile, DOT_ROWS, cols, min_int(DOT_CHUNK, m - i),
                  n, k, alpha, a + (size_t)i * lda, (size_t)lda, b,
                  (size_t)ldb, beta, c + (size_t)i * ldc, (size_t)ldc);
}

__attribute__((target("avx512vl,avx2,fma")))
static void dot_wide_nt(int m, int n, int k, float alpha, const float *a,
                        int lda, const float *b, int ldb, float beta,
                        float *c, int ldc)
{
    for (int i = 0; i < m; i += DOT_CHUNK)
        dot_chunk(dot_wide_any_tile, DOT_WIDE_ROWS, DOT_WIDE_COLS,
                  min_int(DOT_CHUNK, m - i), n, k, alpha,
                  a + (size_t)i * lda, (size_t)lda, b, (size_t)ldb, beta,
                  c + (size_t)i * ldc, (size_t)ldc);
}

/*
 * The AVX-512 dot path computes every element exactly as dot_tile does:
 * eight lanes, lane l summing the products at K = l, l + 8, l + 16, ...
 * in order from zero, then dot_reduce4. It gets two FMAs per instruction
 * by holding two such 8-lane accumulators in one 512-bit register: those
 * of columns j and j + 1 of one row of C. Per step of 8 along K a tile of
 * DOT512_ROWS x DOT512_COLS broadcasts one 8-float piece of each A row to
 * both halves and multiplies it by DOT512_COLS / 2 pairs of B rows.
 *
 * Forming a pair of B rows in a register takes a shuffle, which on Intel
 * cores competes with FMAs for a port. So each K block of DOT512_COLS B
 * rows is first copied into PAIRS: 8 floats of row j, then the same 8 of
 * row j + 1. Every row tile of the chunk then loads a pair with one
 * 64-byte load. Loop order, outermost first: chunks of DOT_CHUNK rows of
 * A, groups of DOT512_COLS rows of B, blocks of DOT512_KC along K, then
 * the row tiles. The copied block (16 KB) stays in L1 while the row tiles
 * pass. A 6 x 8 tile keeps 24 accumulators, 4 B pairs and one A piece in
 * 29 of the 32 registers.
 *
 * On a 2-core Intel Xeon VM, with operands already in cache, it ran the
 * first convolutions' weight gradients (25 x 32 x 6272 and 9 x 32 x 5408)
 * at 121 and 85 GFLOP/s, against 71 and 67 for the AVX2 version. A
 * 32 x 1024 x 3136 dense product ran at 104 against 69. Inside a training
 * step the operands come from L2 or memory, and fmnist-bench's per-layer
 * times of those layers changed by less than 10%, about their run-to-run
 * spread.
 */
enum {
    DOT512_ROWS = 6, DOT512_COLS = 8, DOT512_PAIRS = DOT512_COLS / 2,
    DOT512_KC = 512
};

/*
 * Copies K values from each of COLS (at most DOT512_COLS) rows of B, rows
 * LDB apart, into PAIRS in the layout above, the K tail and the missing
 * rows as zeros. K is at most DOT512_KC. PAIRS has room for DOT512_KC / 8
 * steps of DOT512_PAIRS 16-float vectors.
 */
__attribute__((target("avx512f,avx2,fma")))
static void dot512_pack_b(int cols, int kc, const float *b, size_t ldb,
                          float *pairs)
{
    int steps = (kc + 7) / 8, k8 = kc & ~7;

    for (int j = 0; j < DOT512_COLS; j++) {
        const float *bj = b + (size_t)j * ldb;
        float *dst = pairs + (j / 2) * 16 + (j % 2) * 8;

        for (int s = 0; s < steps; s++, dst += DOT512_PAIRS * 16) {
            int p = s * 8;
            __m256 v = _mm256_setzero_ps();

            if (j < cols && p < k8)
                v = _mm256_loadu_ps(bj + p);
            else if (j < cols)
                v = _mm256_maskload_ps(bj + p, _mm256_loadu_si256(
                    (const __m256i *)lane_mask[kc - k8]));
            _mm256_store_ps(dst, v);
        }
    }
}

/* Returns V in both halves of a 512-bit vector. The 64-bit form of the
 * broadcast needs only AVX-512F, where the 32-bit one needs AVX-512DQ. */
__attribute__((target("avx512f,avx2,fma"), always_inline))
static inline __m512 broadcast8(__m256 v)
{
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(v)));
}

/* Returns the low (HIGH = 0) or high (HIGH = 1) half of V. */
__attribute__((target("avx512f,avx2,fma"), always_inline))
static inline __m256 half8(__m512 v, int high)
{
    return high ? _mm256_castpd_ps(_mm512_extractf64x4_pd(
                      _mm512_castps_pd(v), 1))
                : _mm512_castps512_ps256(v);
}

/*
 * Adds one K block of a ROWS x DOT512_COLS tile (ROWS <= DOT512_ROWS) to
 * the accumulators in STATE, as dot_tile does, with B from PAIRS. In the
 * last block it writes the first COLS columns of the tile to C. Callers
 * pass a constant ROWS, so the accumulators become registers.
 */
__attribute__((target("avx512f,avx2,fma"), always_inline))
static inline void dot512_tile(int rows, int cols, const DotBlock *blk,
                               const float *a, size_t lda,
                               const float *pairs, __m512 *state, float *c,
                               size_t ldc)
{
    __m512 acc[DOT512_ROWS][DOT512_PAIRS];
    int kc = blk->kc, k8 = kc & ~7;

    for (int i = 0; i < DOT512_ROWS; i++)
        for (int q = 0; q < DOT512_PAIRS; q++)
            acc[i][q] = blk->first ? _mm512_setzero_ps()
                                   : state[i * DOT512_PAIRS + q];
    for (int p = 0; p < k8; p += 8, pairs += DOT512_PAIRS * 16) {
        __m512 bv[DOT512_PAIRS];

        for (int q = 0; q < DOT512_PAIRS; q++)
            bv[q] = _mm512_load_ps(pairs + q * 16);
        for (int i = 0; i < rows; i++) {
            __m512 av = broadcast8(_mm256_loadu_ps(a + i * lda + p));
            for (int q = 0; q < DOT512_PAIRS; q++)
                acc[i][q] = _mm512_fmadd_ps(av, bv[q], acc[i][q]);
        }
    }
    if (k8 < kc) {
        /* The same zero-filled tail as dot_tile, so each lane adds the
         * same 0 * 0 products. */
        __m256i mask = _mm256_loadu_si256(
            (const __m256i *)lane_mask[kc - k8]);

        for (int i = 0; i < rows; i++) {
            __m512 av = broadcast8(_mm256_maskload_ps(a + i * lda + k8,
                                                      mask));
            for (int q = 0; q < DOT512_PAIRS; q++)
                acc[i][q] = _mm512_fmadd_ps(av, _mm512_load_ps(pairs + q * 16),
                                            acc[i][q]);
        }
    }
    if (!blk->last) {
        for (int i = 0; i < DOT512_ROWS; i++)
            for (int q = 0; q < DOT512_PAIRS; q++)
                state[i * DOT512_PAIRS + q] = acc[i][q];
        return;
    }
    for (int i = 0; i < rows; i++) {
        float sums[DOT512_COLS];
        float *ci = c + i * ldc;

        for (int g = 0; g < DOT512_COLS; g += 4) {
            __m256 r[4];

            for (int j = 0; j < 4; j++)
                r[j] = half8(acc[i][(g + j) / 2], j % 2);
            _mm_storeu_ps(sums + g, dot_reduce4(r));
        }
        for (int j = 0; j < cols; j++)
            ci[j] = blk->beta == 0.0f
                    ? blk->alpha * sums[j]
                    : blk->alpha * sums[j] + blk->beta * ci[j];
    }
}

/* Calls dot512_tile with a constant row count. */
__attribute__((target("avx512f,avx2,fma")))
static void dot512_any_tile(int rows, int cols, const DotBlock *blk,
                            const float *a, size_t lda, const float *pairs,
                            __m512 *state, float *c, size_t ldc)
{
#define DOT512_CASE(r)                                                  \
    case (r):                                                           \
        dot512_tile((r), cols, blk, a, lda, pairs, state, c, ldc);      \
        break
    switch (rows) {
    DOT512_CASE(6);
    DOT512_CASE(5);
    DOT512_CASE(4);
    DOT512_CASE(3);
    DOT512_CASE(2);
    DOT512_CASE(1);
    default:
        /* dot512_chunk never passes more than DOT512_ROWS rows. */
        abort();
    }
#undef DOT512_CASE
}

/* Computes the products of ROWS (at most DOT_CHUNK) rows of A with all N
 * rows of B, as dot_chunk does. */
__attribute__((target("avx512f,avx2,fma")))
static void dot512_chunk(int rows, int n, int k, float alpha, const float *a,
                         size_t lda, const float *b, size_t ldb, float beta,
                         float *c, size_t ldc)
{
    __m512 state[(DOT_CHUNK + DOT512_ROWS - 1) / DOT512_ROWS]
                [DOT512_ROWS * DOT512_PAIRS];
    float pairs[DOT512_KC / 8 * DOT512_PAIRS * 16] __attribute__((aligned(64)));

    for (int j = 0; j < n; j += DOT512_COLS) {
        int cols = min_int(DOT512_COLS, n - j);

        for (int p = 0; p < k || p == 0; p += DOT512_KC) {
            DotBlock blk = {min_int(DOT512_KC, k - p), p == 0,
                            p + DOT512_KC >= k, alpha, beta};

            dot512_pack_b(cols, blk.kc, b + (size_t)j * ldb + p, ldb, pairs);
            for (int i = 0; i < rows; i += DOT512_ROWS)
                dot512_any_tile(min_int(DOT512_ROWS, rows - i), cols, &blk,
                                a + (size_t)i * lda + p, lda, pairs,
                                state[i / DOT512_ROWS],
                                c + (size_t)i * ldc + j, ldc);
        }
    }
}

__attribute__((target("avx512f,avx2,fma")))
static void dot512_nt(int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c,
                      int ldc)
{
    for (int i = 0; i < m; i += DOT_CHUNK)
        dot512_chunk(min_int(DOT_CHUNK, m - i), n, k, alpha,
                     a + (size_t)i * lda, (size_t)lda, b, (size_t)ldb, beta,
                     c + (size_t)i * ldc, (size_t)ldc);
}

/* Runs the fastest AVX-512 dot path for this CPU. All give bitwise the
 * same C. Where 512-bit FMAs run at the rate of 256-bit ones, 256-bit
 * FMAs win, since the AVX-512 version spends extra shuffles on copying B
 * and reducing the sums. On a Zen 4 the 16-register version took 1.8 us
 * against 2.8 us for a 10-unit dense layer over 64 samples (K = 128), and
 * 42 against 53 us at K = 3136. The 32-register one takes 1.6 us for the
 * same layer computed sample-major (64 x 10). */
static void dot_avx512_nt(int m, int n, int k, float alpha, const float *a,
                          int lda, const float *b, int ldb, float beta,
                          float *c, int ldc)
{
    if (split_fma512)
        dot_wide_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        dot512_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif

void sgemm_dot_avx512(int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c,
                      int ldc)
{
#ifdef GEMM_X86
    dot512_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    /* Not an x86 build: gemm_have_avx512() is 0, so no caller gets here. */
    abort();
#endif
}

void sgemm_dot_wide(int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c,
                    int ldc)
{
#ifdef GEMM_X86
    dot_wide_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    /* Not an x86 build: gemm_have_avx512() is 0, so no caller gets here. */
    abort();
#endif
}

void sgemm_dot_avx2(int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c,
                    int ldc)
{
#ifdef GEMM_X86
    dot_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    /* Not an x86 build: gemm_have_avx2() is 0, so no caller gets here. */
    abort();
#endif
}

/* ---------------------------------------------------------------- driver */

static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void create_pack_key(void)
{
    /* Without a key each thread could not get its own buffer, and sharing
     * one would corrupt concurrent products, so this is fatal. */
    if (pthread_key_create(&pack_key, free) != 0)
        util_fatal("gemm: failed to create the key for per-thread packing "
                   "buffers");
}

/* Returns this thread's packing buffer: room for the largest A block,
 * A_SLACK spare floats, then the largest B slab, 64-byte aligned. */
static float *pack_buffer(void)
{
    pthread_once(&pack_once, create_pack_key);
    float *buf = pthread_getspecific(pack_key);
    if (buf == NULL) {
        buf = xmalloc_aligned(PACK_FLOATS * sizeof *buf);
        if (pthread_setspecific(pack_key, buf) != 0)
            util_fatal("gemm: failed to store this thread's packing "
                       "buffer");
    }
    return buf;
}

/* Multiplies C by BETA in place; beta == 0 clears C without reading it. */
static void scale_c(int m, int n, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f) {
            memset(ci, 0, (size_t)n * sizeof *ci);
        } else {
            for (int j = 0; j < n; j++)
                ci[j] *= beta;
        }
    }
}

/* Computes the tile of MR rows and NR columns at CP: in place when it is
 * full or the kernels take narrow and short tiles, else through the EDGE
 * buffer. */
static void run_tile(const GemmImpl *impl, int kc, int mr, int nr,
                     const float *ap, size_t a_ld, const float *a2,
                     const float *bp, size_t bstride, float *cp, int ldc,
                     const TileStore *tile, const float *next, float *edge)
{
    static const TileStore plain = {0, NULL, 0};
    int tile_n = impl->nr;

    if (mr > impl->mr && nr == tile_n) {
        impl->tall_kernel(mr, kc, ap, a_ld, a2, bp, bstride, cp,
                          (size_t)ldc, tile);
        return;
    }
    if (mr > impl->mr) {
        /* A narrow strip: the tall tile as a full one and the rest. */
        TileStore rest = *tile;

        if (rest.bias != NULL)
            rest.bias += impl->mr;
        run_tile(impl, kc, impl->mr, nr, ap, a_ld, NULL, bp, bstride, cp,
                 ldc, tile, NULL, edge);
        run_tile(impl, kc, mr - impl->mr, nr, a2, 0, NULL, bp, bstride,
                 cp + (size_t)impl->mr * ldc, ldc, &rest, NULL, edge);
        return;
    }

    if (mr == impl->mr && (nr == tile_n || impl->narrow_tiles)) {
        impl->kernel(kc, ap, a_ld, bp, bstride, nr, cp, (size_t)ldc, tile,
                     next);
        return;
    }
    if (impl->rows_kernel != NULL && impl->narrow_tiles) {
        impl->rows_kernel(mr, kc, ap, a_ld, bp, bstride, nr, cp,
                          (size_t)ldc, tile);
        return;
    }
    impl->kernel(kc, ap, a_ld, bp, bstride,
                 impl->narrow_tiles ? nr : tile_n, edge, (size_t)tile_n,
                 &plain, NULL);
    for (int i = 0; i < mr; i++) {
        float *ci = cp + (size_t)i * ldc;
        for (int j = 0; j < nr; j++)
            ci[j] = store_value(tile, i, ci[j], edge[i * tile_n + j]);
    }
}

/* Returns the rows of the tile that starts at row IR of a block of MC
 * rows: MR, or the rest of the block when fewer remain, or when IMPL has
 * tall tiles and the rest exceeds MR by at most its tall_rows. */
static int tile_rows_at(const GemmImpl *impl, int mc, int ir)
{
    int rest = mc - ir;

    if (impl->tall_kernel != NULL && rest > impl->mr
        && rest <= impl->mr + impl->tall_rows)
        return rest;
    return min_int(impl->mr, rest);
}

/*
 * Runs IMPL's micro-kernel over every MR x NR tile of an MC x NC block.
 * The j loop is outside so one B panel stays in L1 while all A panels
 * pass. A is either packed in PA or, when A_DIRECT is not NULL, read in
 * place from A_DIRECT, a row-major MC x KC block with rows LDA apart; PA
 * then holds only a last panel of fewer than MR rows, packed. B is either
 * packed (B_DIRECT == NULL) or read in place from B_DIRECT, a row-major KC
 * x NC block with rows LDB apart. A last strip narrower than NR is then
 * read in place too when the kernel takes narrow tiles, else packed into
 * a stack buffer, padded with zeros.
 *
 * When A is packed, B is small and C large (ROW_SWEEP_B, ROW_SWEEP_C),
 * the i loop is outside instead: each A panel sweeps B from L2 and C is
 * written MR rows at a time from left to right. In the other order each
 * strip stores two cache lines in each of MC rows of C. For tf's dense
 * weight gradient, 12.8 MB with rows 12.5 KB apart and not in cache, the
 * row sweep took 2.8 ms against 3.7. Each tile's sums are the same in
 * either order.
 */
static void macro_kernel(const GemmImpl *impl, int mc, int nc, int kc,
                         const float *pa, const float *a_direct, int lda,
                         const float *pb, const float *b_direct, int ldb,
                         float *c, int ldc, const TileStore *st)
{
    float edge[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    float strip[KC_MAX * NR_MAX] __attribute__((aligned(64)));
    int tile_m = impl->mr, tile_n = impl->nr;

    if (a_direct == NULL && row_sweep((size_t)kc * nc, (size_t)mc * nc)) {
        int last = nc - nc % tile_n;

        /* A last strip narrower than NR, read in place by a kernel that
         * needs full tiles, is packed once for all the A panels. */
        if (b_direct != NULL && last < nc && !impl->narrow_tiles)
            pack_b(b_direct, ldb, 0, last, kc, nc - last, tile_n, strip);
        for (int ir = 0, mr; ir < mc; ir += mr) {
            TileStore tile = *st;

            mr = tile_rows_at(impl, mc, ir);
            if (tile.bias != NULL)
                tile.bias += ir;
            for (int jr = 0; jr < nc; jr += tile_n) {
                const float *bp = pb + (size_t)jr * kc;
                size_t bstride = (size_t)tile_n;

                if (b_direct != NULL && (jr < last || impl->narrow_tiles)) {
                    bp = b_direct + jr;
                    bstride = (size_t)ldb;
                } else if (b_direct != NULL) {
                    bp = strip;
                }
                run_tile(impl, kc, mr, min_int(tile_n, nc - jr),
                         pa + (size_t)ir * kc, 0,
                         pa + (size_t)(ir + tile_m) * kc, bp, bstride,
                         c + (size_t)ir * ldc + jr, ldc, &tile, NULL, edge);
            }
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += tile_n) {
        int nr = min_int(tile_n, nc - jr);
        const float *bp = pb + (size_t)jr * kc;
        size_t bstride = (size_t)tile_n;

        if (b_direct != NULL && (nr == tile_n || impl->narrow_tiles)) {
            bp = b_direct + jr;
            bstride = (size_t)ldb;
        } else if (b_direct != NULL) {
            pack_b(b_direct, ldb, 0, jr, kc, nr, tile_n, strip);
            bp = strip;
        }
        for (int ir = 0, mr; ir < mc; ir += mr) {
            const float *ap = pa + (size_t)ir * kc;
            size_t a_ld = 0;
            TileStore tile = *st;
            const float *next = NULL;

            mr = tile_rows_at(impl, mc, ir);
            if (tile.bias != NULL)
                tile.bias += ir;
            if (a_direct != NULL && mr >= tile_m) {
                ap = a_direct + (size_t)ir * lda;
                a_ld = (size_t)lda;
                /* The first strip's sweep brings each A panel in from
                 * memory, so it fetches the next one. */
                if (jr == 0 && ir + 2 * tile_m <= mc)
                    next = ap + (size_t)tile_m * lda;
            } else if (b_direct != NULL && bstride == (size_t)ldb
                       && ir == 0 && jr + 2 * tile_n <= nc) {
                /* The first A panel's pass over this strip fetches the
                 * next strip. */
                next = bp + tile_n;
            }
            run_tile(impl, kc, mr, nr, ap, a_ld,
                     pa + (size_t)(ir + tile_m) * kc, bp, bstride,
                     c + (size_t)ir * ldc + jr, ldc, &tile, next, edge);
        }
    }
}

/* Adds BIAS[i] to row i of C (M x N) and clamps at 0 when RELU is set:
 * the store step of a product with no K block left to run it. */
static void bias_relu_c(int m, int n, const float *bias, int relu, float *c,
                        int ldc)
{
    TileStore st = {0, bias, relu};

    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = store_value(&st, i, 0.0f, ci[j]);
    }
}

/* Computes the blocked product. With BIAS or RELU, the last K block of
 * each tile also adds the bias of its row and applies ReLU (see
 * TileStore). */
static void gemm_blocked(const GemmImpl *impl, GemmTrans ta, GemmTrans tb,
                         int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta,
                         float *c, int ldc, const float *bias, int relu)
{
    if (m <= 0 || n <= 0)
        return;
    /* The kernels either overwrite C or add to it, so any other beta is
     * applied up front; so is k == 0, where C = beta * C. */
    if (k <= 0 || alpha == 0.0f || (beta != 0.0f && beta != 1.0f)) {
        scale_c(m, n, beta, c, ldc);
        if (k <= 0 || alpha == 0.0f) {
            if (bias != NULL || relu)
                bias_relu_c(m, n, bias, relu, c, ldc);
            return;
        }
        beta = 1.0f;
    }

    /* When all of A fits one block, each B panel is used by a single
     * sweep of the macro-kernel, so packing it costs a full extra pass over
     * B for little reuse. An untransposed B is then read in place. */
    int direct_b = tb == GEMM_NOTRANS && m <= impl->mc;
    /* Likewise, when C has at most DIRECT_A_STRIPS strips of NR columns,
     * each A panel serves that many tiles, and an untransposed A is read
     * in place unless ALPHA must scale it. For the 1024 x 3136 weights of
     * a dense layer and 64 samples, that was about 10% faster. */
    int direct_a = ta == GEMM_NOTRANS && alpha == 1.0f
                   && n <= DIRECT_A_STRIPS * impl->nr;
    float *pa = pack_buffer();
    float *pb = pa + (size_t)impl->mc * impl->kc + A_SLACK;

    /* K is cut into blocks of equal depth, a multiple of 8, rather than
     * full KC blocks and a remainder. K = 800 then runs as 4 x 200, not as
     * 3 x 256 and a block of 32 that loads and stores C for little work. */
    int k_blocks = (k + impl->kc - 1) / impl->kc;
    int k_depth = ((k + k_blocks - 1) / k_blocks + 7) & ~7;

    for (int jc = 0; jc < n; jc += impl->nc) {
        int nc = min_int(impl->nc, n - jc);
        for (int pc = 0; pc < k; pc += k_depth) {
            int kc = min_int(k_depth, k - pc);
            int last = pc + kc >= k;
            TileStore st = {pc > 0 || beta != 0.0f, last ? bias : NULL,
                            last && relu};
            const float *b_direct = NULL;

            if (direct_b)
                b_direct = b + (size_t)pc * ldb + jc;
            else if (tb == GEMM_NOTRANS)
                pack_b(b, ldb, pc, jc, kc, nc, impl->nr, pb);
            else
                impl->pack_b_trans(b, ldb, pc, jc, kc, nc, pb);
            for (int ic = 0; ic < m; ic += impl->mc) {
                int mc = min_int(impl->mc, m - ic);
                int full = mc - mc % impl->mr;
                const float *a_direct = NULL;

                if (direct_a) {
                    a_direct = a + (size_t)ic * lda + pc;
                    if (full < mc)
                        impl->pack_a_rows(a, lda, ic + full, pc, mc - full,
                                          kc, 1.0f, pa + (size_t)full * kc);
                } else if (ta == GEMM_NOTRANS) {
                    impl->pack_a_rows(a, lda, ic, pc, mc, kc, alpha, pa);
                } else {
                    pack_a_trans(a, lda, ic, pc, mc, kc, alpha, impl->mr,
                                 pa);
                }
                st.bias = last && bias != NULL ? bias + ic : NULL;
                macro_kernel(impl, mc, nc, kc, pa, a_direct, lda, pb,
                             b_direct, ldb, c + (size_t)ic * ldc + jc, ldc,
                             &st);
            }
        }
    }
}

static const GemmImpl impl_portable = {MR, NR, KC, MC, NC, 0,
                                      kernel_portable, NULL, NULL, 0,
                                      pack_b_trans_portable,
                                      pack_a_rows_portable};
#ifdef GEMM_X86
static const GemmImpl impl_avx2 = {MR, NR, KC, MC, NC, 1, kernel_avx2,
                                   kernel_avx2_rows, NULL, 0,
                                   pack_b_trans_avx2, pack_a_rows_avx2};
static const GemmImpl impl_avx512 = {MR512, NR512, KC512, MC512, NC512, 1,
                                     kernel_avx512, kernel_avx512_rows,
                                     kernel_avx512_tall, TALL512,
                                     pack_b_trans_32, pack_a_rows_8};
#endif

/* Returns 1 when C = op(A) * B + beta * C goes to an in-place path
 * (in_place_avx2, in_place_avx512) whose tiles have NR columns: B
 * untransposed, N a multiple of NR, alpha 1, beta 0 or 1, and either A
 * transposed with 1 to MAX_TN_ROWS rows and K up to KC, or A untransposed
 * and K up to IN_PLACE_K. */
static int in_place_fits(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                         float alpha, float beta, int max_tn_rows, int nr)
{
    if (tb != GEMM_NOTRANS || alpha != 1.0f || (beta != 0.0f && beta != 1.0f)
        || m < 1 || n % nr != 0 || k < 1)
        return 0;
    if (ta == GEMM_TRANS)
        return m <= max_tn_rows && k <= KC;
    return k <= IN_PLACE_K;
}

void sgemm_portable(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc)
{
    gemm_blocked(&impl_portable, ta, tb, m, n, k, alpha, a, lda, b, ldb,
                 beta, c, ldc, NULL, 0);
}

void sgemm_avx2(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                float alpha, const float *a, int lda, const float *b,
                int ldb, float beta, float *c, int ldc)
{
#ifdef GEMM_X86
    /* The dot path wins for few rows of A. On a 2-core AMD EPYC (Zen 4)
     * it ran a dense forward pass over 8 samples (8 x 3136 by 1024 x
     * 3136) at 85 GFLOP/s against 44 for the blocked path, 86 against 74
     * at M = 32, and lost at M = 64 (convolution weight gradients). */
    if (ta == GEMM_NOTRANS && tb == GEMM_TRANS && m <= DOT_MAX_M) {
        dot_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (in_place_fits(ta, tb, m, n, k, alpha, beta, 2 * MR, NR)) {
        if (ta == GEMM_TRANS)
            in_place_tn_avx2(m, n, k, a, lda, b, ldb, beta, c, ldc);
        else
            in_place_nn_avx2(m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    gemm_blocked(&impl_avx2, ta, tb, m, n, k, alpha, a, lda, b, ldb,
                 beta, c, ldc, NULL, 0);
#else
    /* Not an x86 build: gemm_have_avx2() is 0, so no caller gets here. */
    abort();
#endif
}

void sgemm_avx512(GemmTrans ta, GemmTrans tb, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc)
{
#ifdef GEMM_X86
    if (ta == GEMM_NOTRANS && tb == GEMM_TRANS && m <= DOT_MAX_M) {
        dot_avx512_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (in_place_fits(ta, tb, m, n, k, alpha, beta, MR512 + TALL512,
                      NR512)) {
        if (ta == GEMM_TRANS)
            in_place_tn_avx512(m, n, k, a, lda, b, ldb, beta, c, ldc);
        else
            in_place_nn_avx512(m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    gemm_blocked(&impl_avx512, ta, tb, m, n, k, alpha, a, lda, b, ldb,
                 beta, c, ldc, NULL, 0);
#else
    /* Not an x86 build: gemm_have_avx512() is 0, so no caller gets here. */
    abort();
#endif
}

/* ---------------------------------------------------------------- dispatch */

static int have_avx2, have_avx512;
static int fast_blendv;  /* AMD Zen: vblendvps is one operation */
static GemmKernel chosen = GEMM_KERNEL_PORTABLE;
static char kernel_note[160];
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static const char *const kernel_names[] = {"portable", "avx2", "avx512"};

/* Picks the kernel from the CPU alone, so every thread and every run on
 * one machine uses the same one: the widest vectors it has. */
static GemmKernel automatic_kernel(void)
{
    if (have_avx512)
        return GEMM_KERNEL_AVX512;
    return have_avx2 ? GEMM_KERNEL_AVX2 : GEMM_KERNEL_PORTABLE;
}

/* Applies FMNIST_GEMM when it names a kernel this CPU runs. Otherwise it
 * keeps the automatic choice and writes the reason to kernel_note. */
static void choose_kernel(void)
{
    const char *request = getenv("FMNIST_GEMM");
    int supported[] = {1, have_avx2, have_avx512};

    chosen = automatic_kernel();
    if (request == NULL || request[0] == '\0'
        || strcmp(request, "auto") == 0)
        return;
    for (int i = 0; i < 3; i++) {
        if (strcmp(request, kernel_names[i]) != 0)
            continue;
        if (supported[i]) {
            chosen = (GemmKernel)i;
            return;
        }
        snprintf(kernel_note, sizeof kernel_note,
                 "FMNIST_GEMM=%s: this CPU lacks the instructions for that "
                 "kernel; using %s", request, kernel_names[chosen]);
        return;
    }
    snprintf(kernel_note, sizeof kernel_note,
             "FMNIST_GEMM=%.40s is not a kernel name (expected auto, "
             "avx512, avx2 or portable); using %s", request,
             kernel_names[chosen]);
}

#ifdef GEMM_X86
/* Returns the CPU family from CPUID leaf 1, with the extended family
 * added when the base family is 15, as both vendors define it. */
static unsigned cpu_family(void)
{
    unsigned eax, ebx, ecx, edx;

    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    unsigned family = (eax >> 8) & 0xf;

    return family == 0xf ? family + ((eax >> 20) & 0xff) : family;
}
#endif

static void detect_cpu(void)
{
#ifdef GEMM_X86
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    have_avx512 = have_avx2 && __builtin_cpu_supports("avx512f")
                  && __builtin_cpu_supports("avx512vl");
    split_fma512 = have_avx512 && __builtin_cpu_is("amd")
                   && cpu_family() == 0x19;
    fast_blendv = have_avx2 && __builtin_cpu_is("amd")
                  && cpu_family() >= 0x17;
#endif
    choose_kernel();
}

int gemm_have_avx2(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return have_avx2;
}

int gemm_have_avx512(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return have_avx512;
}

int gemm_fast_blendv(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return fast_blendv;
}

GemmKernel gemm_kernel(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return chosen;
}

const char *gemm_kernel_name(void)
{
    return kernel_names[gemm_kernel()];
}

const char *gemm_kernel_note(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return kernel_note[0] != '\0' ? kernel_note : NULL;
}

void sgemm_bias_relu(int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, const float *bias, int relu,
                     float *c, int ldc)
{
    const GemmImpl *impl = &impl_portable;

#ifdef GEMM_X86
    if (gemm_kernel() == GEMM_KERNEL_AVX512)
        impl = &impl_avx512;
    else if (gemm_kernel() == GEMM_KERNEL_AVX2)
        impl = &impl_avx2;
#endif
    gemm_blocked(impl, GEMM_NOTRANS, GEMM_NOTRANS, m, n, k, 1.0f, a, lda, b,
                 ldb, 0.0f, c, ldc, bias, relu);
}

void sgemm(GemmTrans ta, GemmTrans tb, int m, int n, int k, float alpha,
           const float *a, int lda, const float *b, int ldb, float beta,
           float *c, int ldc)
{
    switch (gemm_kernel()) {
    case GEMM_KERNEL_AVX512:
        sgemm_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case GEMM_KERNEL_AVX2:
        sgemm_avx2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case GEMM_KERNEL_PORTABLE:
        sgemm_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                       ldc);
        break;
    }
}

void sgemm_dot(int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
#ifdef GEMM_X86
    switch (gemm_kernel()) {
    case GEMM_KERNEL_AVX512:
        dot_avx512_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    case GEMM_KERNEL_AVX2:
        dot_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    case GEMM_KERNEL_PORTABLE:
        break;
    }
#endif
    sgemm_portable(GEMM_NOTRANS, GEMM_TRANS, m, n, k, alpha, a, lda, b, ldb,
                   beta, c, ldc);
}

/* ---------------------------------------------------------------- im2col */

int conv_out_h(const ConvGeom *g)
{
    return g->h + 2 * g->pad - g->k + 1;
}

int conv_out_w(const ConvGeom *g)
{
    return g->w + 2 * g->pad - g->k + 1;
}

/* For kernel column KX, the output columns whose input column lies inside
 * the image are [*lo, *hi); the rest read padding. */
static void valid_columns(const ConvGeom *g, int kx, int ow, int *lo, int *hi)
{
    *lo = g->pad - kx > 0 ? g->pad - kx : 0;
    *hi = min_int(ow, g->w + g->pad - kx);
    if (*hi < *lo)
        *hi = *lo;
}

/* Copies or accumulates one short row: DST[i] (+)= SRC[i] for i < LEN. */
typedef void (*RowOp)(float *restrict dst, const float *restrict src,
                      int len);

static inline __attribute__((always_inline)) void
copy_row(float *restrict dst, const float *restrict src, int len)
{
    for (int i = 0; i < len; i++)
        dst[i] = src[i];
}

static inline __attribute__((always_inline)) void
add_row(float *restrict dst, const float *restrict src, int len)
{
    for (int i = 0; i < len; i++)
        dst[i] += src[i];
}

/* Keeps GCC from turning the short copy and zeroing loops of im2col and
 * col2im into calls to memcpy, memmove and memset. The rows are a few
 * dozen floats, too short for such a call to pay off, and the calls took
 * 6% of the time of training "small" on one thread. clang ignores the
 * optimize attribute, and its no_builtin attribute left the calls in.
 * TODO: keep clang from making these calls too. */
#if defined(__clang__)
#define NO_LIBC_IDIOMS
#else
#define NO_LIBC_IDIOMS optimize("no-tree-loop-distribute-patterns")
#endif

/*
 * Both functions walk COL row by row, one (c, ky, kx) at a time, and
 * within a row sample by sample. COL is the large operand (1.1 MB for the
 * second layer of "small" at 8 samples), and this order streams it once
 * in address order while the N planes of channel c, a few KB, stay in L1.
 * The work is a great many short row copies (11 floats for a 3x3 kernel
 * on 13x13 planes), so the row operation is a parameter, and the AVX2
 * variants inline vector versions of it.
 */
static inline __attribute__((always_inline)) void
im2col_body(const ConvGeom *g, int n, const float *im, size_t sample_stride,
            size_t plane_stride, float *col, size_t ldcol, RowOp copy)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), k = g->k;
    size_t ohw = (size_t)oh * ow;

    for (int c = 0; c < g->c; c++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(c * k + ky) * k + kx) * ldcol;
                int shift = kx - g->pad;
                int lo, hi;

                /* Input column of output column ox is ox + shift, which
                 * lies in [0, w) for ox in [lo, hi). */
                valid_columns(g, kx, ow, &lo, &hi);
                for (int s = 0; s < n; s++) {
                    const float *plane =
                        im + s * sample_stride + c * plane_stride;
                    for (int oy = 0; oy < oh; oy++) {
                        float *dst = row + s * ohw + (size_t)oy * ow;
                        int iy = oy + ky - g->pad;
                        if (iy < 0 || iy >= g->h) {
                            for (int ox = 0; ox < ow; ox++)
                                dst[ox] = 0.0f;
                            continue;
                        }
                        const float *src = plane + (size_t)iy * g->w;
                        for (int ox = 0; ox < lo; ox++)
                            dst[ox] = 0.0f;
                        copy(dst + lo, src + lo + shift, hi - lo);
                        for (int ox = hi; ox < ow; ox++)
                            dst[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void
col2im_body(const ConvGeom *g, int n, const float *col, size_t ldcol,
            float *im, size_t sample_stride, size_t plane_stride, RowOp add)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), k = g->k;
    size_t ohw = (size_t)oh * ow;

    for (int c = 0; c < g->c; c++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *row =
                    col + ((size_t)(c * k + ky) * k + kx) * ldcol;
                int shift = kx - g->pad;
                int lo, hi;

                valid_columns(g, kx, ow, &lo, &hi);
                for (int s = 0; s < n; s++) {
                    float *plane = im + s * sample_stride + c * plane_stride;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy + ky - g->pad;
                        if (iy < 0 || iy >= g->h)
                            continue;
                        const float *src = row + s * ohw + (size_t)oy * ow;
                        float *dst = plane + (size_t)iy * g->w;
                        add(dst + lo + shift, src + lo, hi - lo);
                    }
                }
            }
        }
    }
}

#ifdef GEMM_X86
/* Copies LEN floats with 8-float vectors. A row that is not a multiple of
 * 8 ends with one vector aligned to its last float, which rewrites a few
 * floats the previous vector already copied, with the same values. */
__attribute__((target("avx2,fma"), always_inline))
static inline void copy_row_avx2(float *restrict dst,
                                 const float *restrict src, int len)
{
    int i = 0;

    if (len < 8) {
        copy_row(dst, src, len);
        return;
    }
    for (; i + 8 <= len; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    if (i < len)
        _mm256_storeu_ps(dst + len - 8, _mm256_loadu_ps(src + len - 8));
}

/* Adds LEN floats, 8 at a time, then the rest one by one. An overlapping
 * tail vector, as in copy_row_avx2, would reload floats just stored,
 * which stalls store-to-load forwarding and measured slower. */
__attribute__((target("avx2,fma"), always_inline))
static inline void add_row_avx2(float *restrict dst,
                                const float *restrict src, int len)
{
    int i = 0;

    for (; i + 8 <= len; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i),
                                                _mm256_loadu_ps(src + i)));
    for (; i < len; i++)
        dst[i] += src[i];
}

__attribute__((target("avx2,fma"), NO_LIBC_IDIOMS))
static void im2col_avx2(const ConvGeom *g, int n, const float *im,
                        size_t sample_stride, size_t plane_stride,
                        float *col, size_t ldcol)
{
    im2col_body(g, n, im, sample_stride, plane_stride, col, ldcol,
                copy_row_avx2);
}

__attribute__((target("avx2,fma"), NO_LIBC_IDIOMS))
static void col2im_avx2(const ConvGeom *g, int n, const float *col,
                        size_t ldcol, float *im, size_t sample_stride,
                        size_t plane_stride)
{
    col2im_body(g, n, col, ldcol, im, sample_stride, plane_stride,
                add_row_avx2);
}

/*
 * Moves each output row in pieces of 16 floats with masked loads and
 * stores: the load mask selects the columns whose input lies inside the
 * image, so the padding zeros come from the masked-off lanes, and one load
 * and one store replace the copy and zeroing loops. Masked-off lanes are
 * never read, so the load may start left of the input row. On the second
 * layer of "tf" (14 x 14 planes) it ran 1.6 times as fast as im2col_avx2
 * on an Intel Xeon.
 */
__attribute__((target("avx512f")))
static void im2col_avx512(const ConvGeom *g, int n, const float *im,
                          size_t sample_stride, size_t plane_stride,
                          float *col, size_t ldcol)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), k = g->k;
    size_t ohw = (size_t)oh * ow;

    for (int c = 0; c < g->c; c++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(c * k + ky) * k + kx) * ldcol;
                int shift = kx - g->pad;
                int lo, hi;

                valid_columns(g, kx, ow, &lo, &hi);
                for (int s = 0; s < n; s++) {
                    const float *plane =
                        im + s * sample_stride + c * plane_stride;
                    float *dst = row + s * ohw;

                    for (int x0 = 0; x0 < ow; x0 += 16) {
                        __mmask16 load = lane_range(lo - x0, hi - x0);
                        __mmask16 store = lane_range(0, ow - x0);

                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy + ky - g->pad;
                            float *d = dst + (size_t)oy * ow + x0;
                            __m512 v = _mm512_setzero_ps();

                            if (iy >= 0 && iy < g->h)
                                v = _mm512_maskz_loadu_ps(
                                    load, plane + (ptrdiff_t)iy * g->w
                                              + shift + x0);
                            _mm512_mask_storeu_ps(d, store, v);
                        }
                    }
                }
            }
        }
    }
}

/*
 * col2im as a gather: each 16-float piece of an input row adds the
 * contributions of every (ky, kx) in a register and is stored once.
 * col2im_body instead reads and writes each input row K*K times. Each
 * piece reads its K*K patch rows with masked loads. The masked additions
 * touch only lanes that receive a contribution, in the (ky, kx) order of
 * col2im_body, so both give the same sums.
 */
__attribute__((target("avx512f")))
static void col2im_avx512(const ConvGeom *g, int n, const float *col,
                          size_t ldcol, float *im, size_t sample_stride,
                          size_t plane_stride)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), k = g->k;
    size_t ohw = (size_t)oh * ow;

    for (int c = 0; c < g->c; c++) {
        const float *patches = col + (size_t)c * k * k * ldcol;

        for (int s = 0; s < n; s++) {
            float *plane = im + s * sample_stride + c * plane_stride;

            for (int iy = 0; iy < g->h; iy++) {
                for (int x0 = 0; x0 < g->w; x0 += 16) {
                    __mmask16 row_lanes = lane_range(0, g->w - x0);
                    float *d = plane + (size_t)iy * g->w + x0;
                    __m512 acc = _mm512_maskz_loadu_ps(row_lanes, d);

                    for (int ky = 0; ky < k; ky++) {
                        int oy = iy - ky + g->pad;
                        if (oy < 0 || oy >= oh)
                            continue;
                        for (int kx = 0; kx < k; kx++) {
                            /* Input column ix comes from output column
                             * ix + shift, which must lie in [0, ow). */
                            int shift = g->pad - kx;
                            __mmask16 lanes =
                                row_lanes
                                & lane_range(-shift - x0, ow - shift - x0);
                            const float *src =
                                patches + (size_t)(ky * k + kx) * ldcol
                                + s * ohw + (size_t)oy * ow
                                + (ptrdiff_t)x0 + shift;

                            acc = _mm512_mask_add_ps(
                                acc, lanes, acc,
                                _mm512_maskz_loadu_ps(lanes, src));
                        }
                    }
                    _mm512_mask_storeu_ps(d, row_lanes, acc);
                }
            }
        }
    }
}
#endif

__attribute__((NO_LIBC_IDIOMS))
static void im2col_portable(const ConvGeom *g, int n, const float *im,
                            size_t sample_stride, size_t plane_stride,
                            float *col, size_t ldcol)
{
    im2col_body(g, n, im, sample_stride, plane_stride, col, ldcol, copy_row);
}

__attribute__((NO_LIBC_IDIOMS))
static void col2im_portable(const ConvGeom *g, int n, const float *col,
                            size_t ldcol, float *im, size_t sample_stride,
                            size_t plane_stride)
{
    col2im_body(g, n, col, ldcol, im, sample_stride, plane_stride, add_row);
}

void im2col(const ConvGeom *g, int n, const float *im, size_t sample_stride,
            size_t plane_stride, float *col, size_t ldcol)
{
#ifdef GEMM_X86
    if (gemm_kernel() == GEMM_KERNEL_AVX512) {
        im2col_avx512(g, n, im, sample_stride, plane_stride, col, ldcol);
        return;
    }
    if (gemm_kernel() == GEMM_KERNEL_AVX2) {
        im2col_avx2(g, n, im, sample_stride, plane_stride, col, ldcol);
        return;
    }
#endif
    im2col_portable(g, n, im, sample_stride, plane_stride, col, ldcol);
}

void col2im(const ConvGeom *g, int n, const float *col, size_t ldcol,
            float *im, size_t sample_stride, size_t plane_stride)
{
#ifdef GEMM_X86
    if (gemm_kernel() == GEMM_KERNEL_AVX512) {
        col2im_avx512(g, n, col, ldcol, im, sample_stride, plane_stride);
        return;
    }
    if (gemm_kernel() == GEMM_KERNEL_AVX2) {
        col2im_avx2(g, n, col, ldcol, im, sample_stride, plane_stride);
        return;
    }
#endif
    col2im_portable(g, n, col, ldcol, im, sample_stride, plane_stride);
}
