/*
 * winograd: F(4x4, 3x3) and F(2x2, 5x5) convolutions.
 *
 * For each chunk of samples, the input transform turns every (channel,
 * tile) patch into ALPHA x ALPHA coefficients (ALPHA = 6 for both),
 * stored as 36 matrices of channels x tiles. One GEMM per coefficient
 * multiplies the transformed weights (output channels x channels) by
 * such a matrix, and the output transform turns each output channel's
 * 36 coefficients of a tile back into 4 x 4 or 2 x 2 outputs. A chunk's
 * matrices stay mostly in L2 between the three steps.
 *
 * The transforms are written with GCC's generic vectors of LANES floats
 * and constant matrices, so once the loops are unrolled every zero
 * coefficient drops out and every coefficient of +-1 becomes an
 * addition. Both the AVX2 build and the portable build of the same code
 * run the same IEEE operations in the same order, so they agree bit for
 * bit.
 *
 * The two sizes put different things in the lanes. F(2x2, 5x5) works on
 * a row of tiles at a time, one tile per lane: LANES tiles read
 * 2 * LANES + 4 input columns. Stores of a partial row of tiles write
 * whole vectors and let the extra lanes spill into tiles or rows that a
 * later store overwrites. Rows of its coefficient matrices have LANES
 * floats of slack for that, and an output row spills only into the next
 * row of its plane. F(4x4, 3x3) puts one sample in each lane (see its
 * section below).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "winograd.h"

#if defined(__x86_64__) || defined(__i386__)
#define WINOGRAD_X86 1
#endif

/* Floats per vector: one 256-bit vector. */
#define LANES 8

/* Coefficients per side of a tile: 4 + 3 - 1 and 2 + 5 - 1. */
#define ALPHA 6

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* Lane lists for __builtin_shufflevector (GCC 12 and clang), where
 * lanes 8 to 15 are the second operand's. */
#define EVEN_LANES 0, 2, 4, 6, 8, 10, 12, 14
#define ODD_LANES 1, 3, 5, 7, 9, 11, 13, 15
/* Lanes 0-3 (LOW) or 4-7 (HIGH) of both operands, interleaved. */
#define LOW_PAIRS 0, 8, 1, 9, 2, 10, 3, 11
#define HIGH_PAIRS 4, 12, 5, 13, 6, 14, 7, 15
/* The steps of an 8 x 8 transpose, which trade blocks of 1, 2 and then
 * 4 lanes between two rows. */
#define SWAP1_LOW 0, 8, 1, 9, 4, 12, 5, 13
#define SWAP1_HIGH 2, 10, 3, 11, 6, 14, 7, 15
#define SWAP2_LOW 0, 1, 8, 9, 4, 5, 12, 13
#define SWAP2_HIGH 2, 3, 10, 11, 6, 7, 14, 15
#define SWAP4_LOW 0, 1, 2, 3, 8, 9, 10, 11
#define SWAP4_HIGH 4, 5, 6, 7, 12, 13, 14, 15

#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v))
#define STORE8(p, v) memcpy((p), &(v), sizeof(v))
#define UNROLL _Pragma("GCC unroll 8")

/* S += CF * X for a coefficient CF that is a constant after unrolling:
 * the branches fold away, zero terms vanish and +-1 costs one addition. */
#define ADD_TERM(s, cf, x)                                              \
    do {                                                                \
        if ((cf) == 1.0f)                                               \
            (s) += (x);                                                 \
        else if ((cf) == -1.0f)                                         \
            (s) -= (x);                                                 \
        else if ((cf) != 0.0f)                                          \
            (s) += (cf) * (x);                                          \
    } while (0)

/*
 * The matrices of F(2, 5) and F(4, 3), both over the points 0, 1, -1, 2,
 * -2 and infinity. For an input patch d of ALPHA values and a kernel g
 * of K values, the 2 or 4 outputs of the 1-D correlation are
 * AT * ((G * g) .* (BT * d)). The 2-D transforms apply each matrix on
 * both sides. BT6 serves both; G6 and AT6 are those of F(2, 5), G43 and
 * the AT of at43_apply below those of F(4, 3). The tests of
 * winograd_conv against a direct convolution check them.
 */
static const float BT6[6 * 6] = {
    4, 0, -5, 0, 1, 0,
    0, -4, -4, 1, 1, 0,
    0, 4, -4, -1, 1, 0,
    0, -2, -1, 2, 1, 0,
    0, 2, -1, -2, 1, 0,
    0, 4, 0, -5, 0, 1,
};
static const float G6[6 * 5] = {
    1.0f / 4, 0, 0, 0, 0,
    -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6,
    -1.0f / 6, 1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6,
    1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3, 2.0f / 3,
    1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3, 2.0f / 3,
    0, 0, 0, 0, 1,
};
static const float AT6[2 * 6] = {
    1, 1, 1, 1, 1, 0,
    0, 1, -1, 2, -2, 1,
};
static const float G43[6 * 3] = {
    1.0f / 4, 0, 0,
    -1.0f / 6, -1.0f / 6, -1.0f / 6,
    -1.0f / 6, 1.0f / 6, -1.0f / 6,
    1.0f / 24, 1.0f / 12, 1.0f / 6,
    1.0f / 24, -1.0f / 12, 1.0f / 6,
    0, 0, 1,
};

int winograd_supported(const ConvGeom *g)
{
    return (g->k == 3 || g->k == 5) && g->pad >= 0 && g->pad < g->k
           && conv_out_h(g) > 0 && conv_out_w(g) > 0;
}

int winograd_tile(int k)
{
    return k == 3 ? 4 : 2;
}

/* F * C rounded up to whole vectors: the stride between the transformed
 * weights of two coefficients. */
static size_t weight_stride(int f, int c)
{
    return ((size_t)f * c + LANES - 1) / LANES * LANES;
}

size_t winograd_weight_floats(int k, int f, int c)
{
    (void)k;
    return 36 * weight_stride(f, c);
}

/* Geometry of the tiles of one plane and of the padded input rows. */
typedef struct {
    int oh, ow;
    int tiles_y, tiles_x;
    int pad_h, pad_w;       /* rows and row width of the padded plane */
    size_t tiles;           /* per sample */
} Tiling;

static Tiling tiling(const ConvGeom *g)
{
    Tiling t;
    int blocks;

    t.oh = conv_out_h(g);
    t.ow = conv_out_w(g);
    t.tiles_y = (t.oh + 1) / 2;
    t.tiles_x = (t.ow + 1) / 2;
    blocks = (t.tiles_x + LANES - 1) / LANES;
    t.pad_h = 2 * t.tiles_y + ALPHA - 2;
    /* The loads of the last block reach 2 * LANES + ALPHA - 2 columns
     * past its start. */
    t.pad_w = 2 * LANES * blocks + ALPHA;
    t.tiles = (size_t)t.tiles_y * t.tiles_x;
    return t;
}

/* Floats of the padded plane, rounded up so that what follows it in the
 * scratch stays aligned for vectors. */
static size_t padded_plane_floats(const Tiling *t)
{
    return ((size_t)t->pad_h * t->pad_w + 2 * LANES - 1) / (2 * LANES)
           * (2 * LANES);
}

/* Floats of input_columns for one padded plane. */
static size_t columns_floats(const Tiling *t)
{
    size_t blocks = ((size_t)t->tiles_x + LANES - 1) / LANES;

    return (size_t)t->pad_h * blocks * ALPHA * LANES;
}

/* ------------------------------------------------------------ weights */

static inline __attribute__((always_inline)) void
weights_body(const int k, int f, int c, const float *w,
             int flip, float *u, float *temp)
{
    const float *g = k == 3 ? G43 : G6;
    size_t fc = (size_t)f * c, stride = weight_stride(f, c);

    /* Row y * K + x of temp gets tap (y, x) of every kernel, F x C, or
     * C x F when FLIP is set. */
    for (int y = 0; y < k; y++)
        for (int x = 0; x < k; x++) {
            int tap = flip ? (k - 1 - y) * k + (k - 1 - x) : y * k + x;
            float *row = temp + (size_t)(y * k + x) * stride;

            if (flip) {
                for (int cc = 0; cc < c; cc++)
                    for (int ff = 0; ff < f; ff++)
                        row[(size_t)cc * f + ff] =
                            w[((size_t)ff * c + cc) * k * k + tap];
            } else {
                for (size_t j = 0; j < fc; j++)
                    row[j] = w[j * k * k + tap];
            }
            for (size_t j = fc; j < stride; j++)
                row[j] = 0.0f;
        }
    for (size_t j0 = 0; j0 < stride; j0 += LANES) {
        v8 kk[5][5], t[6][5];

        UNROLL for (int y = 0; y < k; y++)
            UNROLL for (int x = 0; x < k; x++)
                LOAD8(kk[y][x], temp + (size_t)(y * k + x) * stride + j0);
        UNROLL for (int a = 0; a < ALPHA; a++)
            UNROLL for (int x = 0; x < k; x++) {
                v8 s = {0};
                UNROLL for (int y = 0; y < k; y++)
                    ADD_TERM(s, g[a * k + y], kk[y][x]);
                t[a][x] = s;
            }
        UNROLL for (int a = 0; a < ALPHA; a++)
            UNROLL for (int b = 0; b < ALPHA; b++) {
                v8 s = {0};
                UNROLL for (int x = 0; x < k; x++)
                    ADD_TERM(s, g[b * k + x], t[a][x]);
                STORE8(u + (size_t)(a * ALPHA + b) * stride + j0, s);
            }
    }
}

/* ---------------------------------------------------------- transforms */

/* First half of the input transform, over one padded input row P: for
 * up to LANES tiles starting at P, E[b] = sum over j of BT[b][j] times
 * column j of the tile's patch in that row (input column 2t + j in lane
 * t). Tiles one above the other share their patch rows, so each row is
 * transformed once for all of them. */
static inline __attribute__((always_inline)) void
input_columns(const float *p, float *e)
{
    const float *bt = BT6;
    v8 d[6];

    UNROLL for (int j = 0; j < ALPHA; j++) {
        v8 lo, hi;

        LOAD8(lo, p + j);
        LOAD8(hi, p + j + LANES);
        d[j] = __builtin_shufflevector(lo, hi, EVEN_LANES);
    }
    UNROLL for (int b = 0; b < ALPHA; b++) {
        v8 s = {0};
        UNROLL for (int j = 0; j < ALPHA; j++)
            ADD_TERM(s, bt[b * ALPHA + j], d[j]);
        STORE8(e + b * LANES, s);
    }
}

/* Second half of the input transform for one row of up to LANES tiles:
 * E contains input_columns of the tiles' ALPHA patch rows, ROW_STRIDE
 * floats apart. Coefficient (a, b) of tile t goes to
 * V[(a * ALPHA + b) * VXI + t]. */
static inline __attribute__((always_inline)) void
input_rows(const float *e, size_t row_stride, float *v,
           size_t vxi)
{
    const float *bt = BT6;
    v8 rows[6][6];

    UNROLL for (int i = 0; i < ALPHA; i++)
        UNROLL for (int b = 0; b < ALPHA; b++)
            LOAD8(rows[i][b], e + i * row_stride + b * LANES);
    UNROLL for (int a = 0; a < ALPHA; a++)
        UNROLL for (int b = 0; b < ALPHA; b++) {
            v8 s = {0};
            UNROLL for (int i = 0; i < ALPHA; i++)
                ADD_TERM(s, bt[a * ALPHA + i], rows[i][b]);
            STORE8(v + (size_t)(a * ALPHA + b) * vxi, s);
        }
}

/* Turns the coefficients of one row of up to LANES tiles of one output
 * channel into outputs: coefficient xi of tile t is M[xi * MXI + t]. Adds
 * BIAS, applies ReLU when RELU is set, and writes NX columns of output
 * rows Y0 and, when Y1 is not NULL, Y1. A row whose SPILL flag is set is
 * written as two whole vectors even when NX is shorter. */
static inline __attribute__((always_inline)) void
output_row(const float *m, size_t mxi, float bias, int relu,
           float *y0, float *y1, int nx, int spill0, int spill1)
{
    const float *at = AT6;
    const v8 zero = {0};
    v8 mm[6][6], t[2][6], o[2][2];

    UNROLL for (int a = 0; a < ALPHA; a++)
        UNROLL for (int b = 0; b < ALPHA; b++)
            LOAD8(mm[a][b], m + (size_t)(a * ALPHA + b) * mxi);
    UNROLL for (int i = 0; i < 2; i++)
        UNROLL for (int b = 0; b < ALPHA; b++) {
            v8 s = {0};
            UNROLL for (int a = 0; a < ALPHA; a++)
                ADD_TERM(s, at[i * ALPHA + a], mm[a][b]);
            t[i][b] = s;
        }
    UNROLL for (int i = 0; i < 2; i++)
        UNROLL for (int j = 0; j < 2; j++) {
            v8 s = {0};
            UNROLL for (int b = 0; b < ALPHA; b++)
                ADD_TERM(s, at[j * ALPHA + b], t[i][b]);
            s += bias;
            /* Keeps NaN and -0, like the scalar ReLU. */
            if (relu)
                s = (v8)((v8i)s & ~(v8i)(s < zero));
            o[i][j] = s;
        }
    for (int i = 0; i < 2; i++) {
        float *row = i == 0 ? y0 : y1;
        int spill = i == 0 ? spill0 : spill1;
        v8 left = __builtin_shufflevector(o[i][0], o[i][1], LOW_PAIRS);
        v8 right = __builtin_shufflevector(o[i][0], o[i][1], HIGH_PAIRS);

        if (row == NULL)
            break;
        if (spill || nx == 2 * LANES) {
            STORE8(row, left);
            STORE8(row + LANES, right);
        } else {
            float buf[2 * LANES];

            STORE8(buf, left);
            STORE8(buf + LANES, right);
            memcpy(row, buf, (size_t)nx * sizeof *row);
        }
    }
}

/* Transforms the patches of samples S0..S0+NS-1 of X (G->c planes of
 * each, strides X_SS and X_PS) into V: coefficient xi of channel c and
 * tile t of the chunk at V[(xi * G->c + c) * VROW + t]. PP is the padded
 * plane, zero outside the image part, and COLS the input_columns of one
 * plane. */
static inline __attribute__((always_inline)) void
transform_inputs(const ConvGeom *g, const Tiling *tl,
                 const float *x, size_t x_ss, size_t x_ps, int s0, int ns,
                 float *pp, float *cols, float *v, size_t vrow)
{
    int blocks = (tl->tiles_x + LANES - 1) / LANES;
    size_t row_floats = (size_t)blocks * ALPHA * LANES;
    int copy_w = g->w + g->pad <= tl->pad_w ? g->w : tl->pad_w - g->pad;

    for (int c = 0; c < g->c; c++) {
        for (int s = 0; s < ns; s++) {
            const float *src = x + c * x_ps + (s0 + s) * x_ss;

            for (int iy = 0; iy < g->h && iy + g->pad < tl->pad_h; iy++)
                memcpy(pp + (size_t)(iy + g->pad) * tl->pad_w + g->pad,
                       src + (size_t)iy * g->w, (size_t)copy_w * sizeof *pp);
            for (int r = 0; r < tl->pad_h; r++)
                for (int bk = 0; bk < blocks; bk++)
                    input_columns(pp + (size_t)r * tl->pad_w + 2 * LANES * bk,
                                  cols + r * row_floats
                                      + (size_t)bk * ALPHA * LANES);
            for (int ty = 0; ty < tl->tiles_y; ty++)
                for (int bk = 0; bk < blocks; bk++)
                    input_rows(cols + (size_t)(2 * ty) * row_floats
                                   + (size_t)bk * ALPHA * LANES,
                               row_floats,
                               v + c * vrow + s * tl->tiles
                                   + (size_t)ty * tl->tiles_x + LANES * bk,
                               (size_t)g->c * vrow);
        }
    }
}

/* ---------------------------------------------------------- convolution */

/* The arguments of winograd_conv. */
typedef struct {
    const ConvGeom *g;
    int out_c, n;
    const float *x;
    size_t x_ss, x_ps;      /* sample and plane strides of X */
    const float *u;
    const float *bias;
    int relu;
    float *y;
    size_t y_ss, y_ps;      /* sample and plane strides of Y */
    float *scratch;
    int chunk;
} ConvJob;

static inline __attribute__((always_inline)) void
conv_body(const ConvJob *job)
{
    const ConvGeom *g = job->g;
    int out_c = job->out_c, n = job->n;
    int relu = job->relu, chunk = job->chunk;
    const float *x = job->x, *u = job->u, *bias = job->bias;
    size_t x_ss = job->x_ss, x_ps = job->x_ps;
    size_t y_ss = job->y_ss, y_ps = job->y_ps;
    float *y = job->y, *scratch = job->scratch;
    Tiling tl = tiling(g);
    int in_c = g->c, a2 = ALPHA * ALPHA;
    size_t ustride = weight_stride(out_c, in_c);
    size_t tc_max = tl.tiles * (size_t)chunk, plane = (size_t)tl.oh * tl.ow;
    float *pp = scratch;
    float *cols = pp + padded_plane_floats(&tl);
    float *v = cols + columns_floats(&tl);
    float *m = v + (size_t)a2 * in_c * (tc_max + LANES);
    /* With one block per row of tiles, an output row spills only into the
     * next row, which the same or the next call of output_row rewrites.
     * With more, it would spill over the next row's earlier blocks. */
    int one_block = tl.tiles_x <= LANES;

    /* The padding of the plane stays zero: only the image part is
     * rewritten for each plane. */
    memset(pp, 0, (size_t)tl.pad_h * tl.pad_w * sizeof *pp);
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int ns = chunk < n - s0 ? chunk : n - s0;
        size_t tc = tl.tiles * (size_t)ns, vrow = tc + LANES;

        transform_inputs(g, &tl, x, x_ss, x_ps, s0, ns, pp, cols, v,
                         vrow);
        for (int xi = 0; xi < a2; xi++)
            sgemm(GEMM_NOTRANS, GEMM_NOTRANS, out_c, (int)tc, in_c, 1.0f,
                  u + xi * ustride, in_c, v + (size_t)xi * in_c * vrow,
                  (int)vrow, 0.0f, m + (size_t)xi * out_c * tc, (int)tc);
        for (int o = 0; o < out_c; o++) {
            float b = bias != NULL ? bias[o] : 0.0f;

            for (int s = 0; s < ns; s++) {
                float *dst = y + o * y_ps + (s0 + s) * y_ss;

                for (int ty = 0; ty < tl.tiles_y; ty++) {
                    int r0 = 2 * ty, has_r1 = r0 + 1 < tl.oh;

                    for (int tx = 0; tx < tl.tiles_x; tx += LANES) {
                        size_t at0 = (size_t)r0 * tl.ow + 2 * tx;
                        int nx = tl.ow - 2 * tx < 2 * LANES ? tl.ow - 2 * tx
                                                            : 2 * LANES;

                        output_row(m + o * tc + s * tl.tiles
                                       + (size_t)ty * tl.tiles_x + tx,
                                   (size_t)out_c * tc, b, relu, dst + at0,
                                   has_r1 ? dst + at0 + tl.ow : NULL, nx,
                                   one_block && at0 + 2 * LANES <= plane,
                                   one_block
                                       && at0 + tl.ow + 2 * LANES <= plane);
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------ weight gradient */

/*
 * The weight gradient runs the forward pass backwards. A tile's outputs
 * are AT * (U .* V) * A, so the gradient of U, the transformed kernel,
 * is the sum over tiles of Z .* V with Z = A * dY * AT, where dY is the
 * tile's 2 x 2 output gradient. Per coefficient that sum over tiles is a
 * GEMM of filters x tiles by tiles x channels. The kernel's gradient is
 * then G^T * dU * G.
 */

/* Turns the output gradients of one row of up to LANES tiles of one
 * filter into their Z coefficients. P0 and P1 are the tile row's two
 * gradient rows in a zero-padded plane. Coefficient xi of tile t goes to
 * Z[xi * ZXI + t]. */
static inline __attribute__((always_inline)) void
output_grad_row(const float *p0, const float *p1, float *z,
                size_t zxi)
{
    const float *at = AT6;
    v8 d[2][2], t[2][6];

    for (int i = 0; i < 2; i++) {
        const float *row = i == 0 ? p0 : p1;
        v8 lo, hi;

        LOAD8(lo, row);
        LOAD8(hi, row + LANES);
        d[i][0] = __builtin_shufflevector(lo, hi, EVEN_LANES);
        d[i][1] = __builtin_shufflevector(lo, hi, ODD_LANES);
    }
    UNROLL for (int i = 0; i < 2; i++)
        UNROLL for (int b = 0; b < ALPHA; b++) {
            v8 s = {0};
            UNROLL for (int j = 0; j < 2; j++)
                ADD_TERM(s, at[j * ALPHA + b], d[i][j]);
            t[i][b] = s;
        }
    UNROLL for (int a = 0; a < ALPHA; a++)
        UNROLL for (int b = 0; b < ALPHA; b++) {
            v8 s = {0};
            UNROLL for (int i = 0; i < 2; i++)
                ADD_TERM(s, at[i * ALPHA + a], t[i][b]);
            STORE8(z + (size_t)(a * ALPHA + b) * zxi, s);
        }
}

/* Writes DW (F x C x K x K) = G^T * dU * G for every kernel, from DU in
 * the layout of winograd_weights. TEMP has K * K * weight_stride(F, C)
 * floats. */
static inline __attribute__((always_inline)) void
weight_grads_body(const int k, int f, int c,
                  const float *du, float *dw, float *temp)
{
    const float *g = k == 3 ? G43 : G6;
    size_t fc = (size_t)f * c, stride = weight_stride(f, c);

    for (size_t j0 = 0; j0 < stride; j0 += LANES) {
        v8 d[6][6], t[6][5];

        UNROLL for (int a = 0; a < ALPHA; a++)
            UNROLL for (int b = 0; b < ALPHA; b++)
                LOAD8(d[a][b], du + (size_t)(a * ALPHA + b) * stride + j0);
        UNROLL for (int a = 0; a < ALPHA; a++)
            UNROLL for (int x = 0; x < k; x++) {
                v8 s = {0};
                UNROLL for (int b = 0; b < ALPHA; b++)
                    ADD_TERM(s, g[b * k + x], d[a][b]);
                t[a][x] = s;
            }
        UNROLL for (int y = 0; y < k; y++)
            UNROLL for (int x = 0; x < k; x++) {
                v8 s = {0};
                UNROLL for (int a = 0; a < ALPHA; a++)
                    ADD_TERM(s, g[a * k + y], t[a][x]);
                STORE8(temp + (size_t)(y * k + x) * stride + j0, s);
            }
    }
    for (int tap = 0; tap < k * k; tap++) {
        const float *row = temp + (size_t)tap * stride;

        for (size_t j = 0; j < fc; j++)
            dw[j * k * k + tap] = row[j];
    }
}

/* The arguments of winograd_weight_grad. */
typedef struct {
    const ConvGeom *g;
    int out_c, n;
    const float *x;
    size_t x_ss, x_ps;
    const float *dy;
    size_t dy_ss, dy_ps;
    float *dw;
    float *scratch;
    int chunk;
} GradJob;

/* Rows and row width of the zero-padded plane of output gradients. */
static int grad_plane_rows(const Tiling *t)
{
    return 2 * t->tiles_y;
}

static int grad_plane_width(const Tiling *t)
{
    return 2 * LANES * ((t->tiles_x + LANES - 1) / LANES);
}

static inline __attribute__((always_inline)) void
weight_grad_body(const GradJob *job)
{
    const ConvGeom *g = job->g;
    Tiling tl = tiling(g);
    int in_c = g->c, f = job->out_c, a2 = ALPHA * ALPHA;
    int blocks = (tl.tiles_x + LANES - 1) / LANES;
    int pz_h = grad_plane_rows(&tl), pz_w = grad_plane_width(&tl);
    size_t tc_max = tl.tiles * (size_t)job->chunk;
    size_t stride = weight_stride(f, in_c);
    float *pp = job->scratch;
    float *cols = pp + padded_plane_floats(&tl);
    float *v = cols + columns_floats(&tl);
    float *z = v + (size_t)a2 * in_c * (tc_max + LANES);
    float *pz = z + (size_t)a2 * f * (tc_max + LANES);
    float *du = pz + (size_t)pz_h * pz_w;
    float *temp = du + (size_t)a2 * stride;

    memset(pp, 0, (size_t)tl.pad_h * tl.pad_w * sizeof *pp);
    memset(pz, 0, (size_t)pz_h * pz_w * sizeof *pz);
    for (int s0 = 0; s0 < job->n; s0 += job->chunk) {
        int ns = job->chunk < job->n - s0 ? job->chunk : job->n - s0;
        size_t tc = tl.tiles * (size_t)ns, row = tc + LANES;

        transform_inputs(g, &tl, job->x, job->x_ss, job->x_ps, s0, ns,
                         pp, cols, v, row);
        for (int o = 0; o < f; o++) {
            for (int s = 0; s < ns; s++) {
                const float *src = job->dy + o * job->dy_ps
                                   + (s0 + s) * job->dy_ss;

                for (int oy = 0; oy < tl.oh; oy++)
                    memcpy(pz + (size_t)oy * pz_w, src + (size_t)oy * tl.ow,
                           (size_t)tl.ow * sizeof *pz);
                for (int ty = 0; ty < tl.tiles_y; ty++)
                    for (int bk = 0; bk < blocks; bk++) {
                        const float *p0 = pz + (size_t)(2 * ty) * pz_w
                                          + 2 * LANES * bk;

                        output_grad_row(p0, p0 + pz_w,
                                        z + o * row + s * tl.tiles
                                            + (size_t)ty * tl.tiles_x
                                            + LANES * bk,
                                        (size_t)f * row);
                    }
            }
        }
        for (int xi = 0; xi < a2; xi++)
            sgemm(GEMM_NOTRANS, GEMM_TRANS, f, in_c, (int)tc, 1.0f,
                  z + (size_t)xi * f * row, (int)row,
                  v + (size_t)xi * in_c * row, (int)row,
                  s0 > 0 ? 1.0f : 0.0f, du + xi * stride, in_c);
    }
    weight_grads_body(5, f, in_c, du, job->dw, temp);
}

/* ------------------------------------------ F(4x4, 3x3) over samples */

/*
 * 3x3 kernels use F(4x4, 3x3): a tile is 4 x 4 outputs from a 6 x 6
 * patch, 36 multiply-adds per tile, channel and filter instead of 144.
 *
 * Here a vector lane contains a sample, not a tile: the samples of a chunk
 * go in groups of LANES, and each plane of a group is first interleaved
 * so that one vector contains the same pixel of every sample. Small maps,
 * such as 13 x 13 (3 tiles a row), then fill every lane. The matrices
 * of a group hold tile t of lane l in column t * LANES + l.
 */

/* Geometry of the tiles of one plane of F(4x4, 3x3). */
typedef struct {
    int oh, ow;
    int tiles_y, tiles_x;
    int pad_h, pad_w;       /* padded input plane: 4 * tiles + 2 */
    int out_h, out_w;       /* whole tiles of output: 4 * tiles */
    size_t tiles;           /* per sample */
} Tiling4;

static Tiling4 tiling4(const ConvGeom *g)
{
    Tiling4 t;

    t.oh = conv_out_h(g);
    t.ow = conv_out_w(g);
    t.tiles_y = (t.oh + 3) / 4;
    t.tiles_x = (t.ow + 3) / 4;
    t.out_h = 4 * t.tiles_y;
    t.out_w = 4 * t.tiles_x;
    t.pad_h = t.out_h + 2;
    t.pad_w = t.out_w + 2;
    t.tiles = (size_t)t.tiles_y * t.tiles_x;
    return t;
}

/* Groups of LANES samples in a chunk of CHUNK samples. */
static int chunk_groups(int chunk)
{
    return ((chunk > 0 ? chunk : 1) + LANES - 1) / LANES;
}

/* Columns of a coefficient matrix for a chunk of CHUNK samples. */
static size_t columns4(const Tiling4 *t, int chunk)
{
    return (size_t)chunk_groups(chunk) * t->tiles * LANES;
}

/*
 * Floats from one coefficient's matrix of ROWS rows of VROW floats to the
 * next one's. The transforms touch the same column of all 36 matrices
 * one after the other. With a stride of a multiple of 4 KB those 36
 * lines would share one set of the L1 cache, which has 8 to 12 ways.
 * The stride is therefore a multiple of 4 KB plus one cache line, which
 * puts the 36 lines in 36 consecutive sets. On small's second layer
 * that made the input gradient 25% faster.
 */
static size_t coef_stride(int rows, size_t vrow)
{
    return ((size_t)rows * vrow + 1023) / 1024 * 1024 + 16;
}

/* R = BT6 * D for six vectors, with the shared sums of its rows. */
static inline __attribute__((always_inline)) void
bt6_apply(const v8 d[6], v8 r[6])
{
    v8 p = d[1] - d[3], q = d[4] - d[2];

    r[0] = (4.0f * d[0] - 5.0f * d[2]) + d[4];
    r[1] = (d[3] + d[4]) - 4.0f * (d[1] + d[2]);
    r[2] = (d[4] - d[3]) + 4.0f * (d[1] - d[2]);
    r[3] = q - 2.0f * p;
    r[4] = q + 2.0f * p;
    r[5] = (4.0f * d[1] - 5.0f * d[3]) + d[5];
}

/*
 * O = AT43 * M: four outputs from six coefficients. AT43 is
 *   1 1  1 1  1 0
 *   0 1 -1 2 -2 0
 *   0 1  1 4  4 0
 *   0 1 -1 8 -8 1
 */
static inline __attribute__((always_inline)) void
at43_apply(const v8 m[6], v8 o[4])
{
    v8 a = m[1] + m[2], b = m[1] - m[2];
    v8 c = m[3] + m[4], d = m[3] - m[4];

    o[0] = (m[0] + a) + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = (b + 8.0f * d) + m[5];
}

/* Z = AT43^T * D: six coefficients from four output gradients. */
static inline __attribute__((always_inline)) void
a43_apply(const v8 d[4], v8 z[6])
{
    v8 e = d[0] + d[2], o = d[1] + d[3];
    v8 e4 = d[0] + 4.0f * d[2], o4 = 2.0f * d[1] + 8.0f * d[3];

    z[0] = d[0];
    z[1] = e + o;
    z[2] = e - o;
    z[3] = e4 + o4;
    z[4] = e4 - o4;
    z[5] = d[3];
}

/* Transposes the 8 x 8 block R in place: lane j of row i trades
 * places with lane i of row j. */
static inline __attribute__((always_inline)) void
transpose8(v8 r[8])
{
    v8 t[8], u[8];

    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], SWAP1_LOW);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], SWAP1_HIGH);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], SWAP2_LOW);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], SWAP2_HIGH);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], SWAP2_LOW);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], SWAP2_HIGH);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = __builtin_shufflevector(u[i], u[i + 4], SWAP4_LOW);
        r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], SWAP4_HIGH);
    }
}

/*
 * Interleaves one plane of each of NS samples (NS <= LANES) into P, a
 * ROWS x COLS plane of LANES-float pixels: pixel (y, x) of sample s
 * goes to P[((y + OFF) * COLS + x + OFF) * LANES + s]. SRC is the
 * H x W plane of the first sample, and the others follow SS floats
 * apart. Rows and columns that would land past the plane of P are cut
 * off. Lanes NS and above are zeroed; the rest of P is left as it was.
 */
static inline __attribute__((always_inline)) void
interleave(const float *src, size_t ss, int ns, int h, int w, int off,
           int rows, int cols, float *p)
{
    int hh = h + off < rows ? h : rows - off;
    int ww = w + off < cols ? w : cols - off;

    for (int y = 0; y < hh; y++) {
        float *dst = p + ((size_t)(y + off) * cols + off) * LANES;
        int x = 0;

        for (; x + LANES <= ww; x += LANES) {
            v8 r[8] = {{0}};

            for (int s = 0; s < ns; s++)
                LOAD8(r[s], src + s * ss + (size_t)y * w + x);
            transpose8(r);
            UNROLL for (int j = 0; j < 8; j++)
                STORE8(dst + (size_t)(x + j) * LANES, r[j]);
        }
        for (; x < ww; x++)
            for (int s = 0; s < LANES; s++)
                dst[(size_t)x * LANES + s] =
                    s < ns ? src[s * ss + (size_t)y * w + x] : 0.0f;
    }
}

/* The inverse of interleave for lanes 0..NS-1 of the OH x OW corner of
 * Q, whose rows are COLS pixels apart: pixel (y, x) of lane s goes to
 * DST[s * SS + y * OW + x]. */
static inline __attribute__((always_inline)) void
deinterleave(const float *q, int cols, int oh, int ow, int ns, float *dst,
             size_t ss)
{
    for (int y = 0; y < oh; y++) {
        const float *src = q + (size_t)y * cols * LANES;
        int x = 0;

        for (; x + LANES <= ow; x += LANES) {
            v8 r[8];

            UNROLL for (int j = 0; j < 8; j++)
                LOAD8(r[j], src + (size_t)(x + j) * LANES);
            transpose8(r);
            for (int s = 0; s < ns; s++)
                STORE8(dst + s * ss + (size_t)y * ow + x, r[s]);
        }
        for (; x < ow; x++)
            for (int s = 0; s < ns; s++)
                dst[s * ss + (size_t)y * ow + x] = src[(size_t)x * LANES + s];
    }
}

/* Transforms every tile of the interleaved padded plane P into V:
 * coefficient xi of tile t at V[xi * VXI + t * LANES]. */
static inline __attribute__((always_inline)) void
input_tiles4(const Tiling4 *tl, const float *p, float *v, size_t vxi)
{
    for (int ty = 0; ty < tl->tiles_y; ty++)
        for (int tx = 0; tx < tl->tiles_x; tx++) {
            const float *base = p + ((size_t)(4 * ty) * tl->pad_w + 4 * tx)
                                        * LANES;
            float *dst = v + ((size_t)ty * tl->tiles_x + tx) * LANES;
            v8 t[6][6];

            UNROLL for (int j = 0; j < 6; j++) {
                v8 d[6], r[6];

                UNROLL for (int i = 0; i < 6; i++)
                    LOAD8(d[i], base + ((size_t)i * tl->pad_w + j) * LANES);
                bt6_apply(d, r);
                UNROLL for (int a = 0; a < 6; a++)
                    t[a][j] = r[a];
            }
            UNROLL for (int a = 0; a < 6; a++) {
                v8 r[6];

                bt6_apply(t[a], r);
                UNROLL for (int b = 0; b < 6; b++)
                    STORE8(dst + (size_t)(a * 6 + b) * vxi, r[b]);
            }
        }
}

/* Transforms the channels of samples S0..S0+NS-1 of X into V:
 * coefficient xi of channel c of group gi at
 * V[xi * VXI + c * VROW + gi * tiles * LANES]. PP is the interleaved
 * padded plane, whose padding is zero. */
static inline __attribute__((always_inline)) void
transform_inputs4(const ConvGeom *g, const Tiling4 *tl, const float *x,
                  size_t x_ss, size_t x_ps, int s0, int ns, float *pp,
                  float *v, size_t vrow, size_t vxi)
{
    for (int c = 0; c < g->c; c++)
        for (int gs = 0; gs < ns; gs += LANES) {
            int nl = ns - gs < LANES ? ns - gs : LANES;

            interleave(x + c * x_ps + (s0 + gs) * x_ss, x_ss, nl, g->h,
                       g->w, g->pad, tl->pad_h, tl->pad_w, pp);
            input_tiles4(tl, pp,
                         v + c * vrow + (size_t)(gs / LANES) * tl->tiles
                                            * LANES,
                         vxi);
        }
}

/* Runs winograd_conv for 3x3 kernels. Q receives one output plane of a
 * group, interleaved, until deinterleave writes it to Y. */
static inline __attribute__((always_inline)) void
conv4_body(const ConvJob *job)
{
    const ConvGeom *g = job->g;
    int out_c = job->out_c, in_c = g->c;
    Tiling4 tl = tiling4(g);
    size_t ustride = weight_stride(out_c, in_c);
    size_t vrow = columns4(&tl, job->chunk);
    size_t vxi = coef_stride(in_c, vrow), mxi = coef_stride(out_c, vrow);
    int chunk = chunk_groups(job->chunk) * LANES;
    float *pp = job->scratch;
    float *q = pp + (size_t)tl.pad_h * tl.pad_w * LANES;
    float *v = q + (size_t)tl.out_h * tl.out_w * LANES;
    float *m = v + 36 * vxi;
    const v8 zero = {0};

    memset(pp, 0, (size_t)tl.pad_h * tl.pad_w * LANES * sizeof *pp);
    for (int s0 = 0; s0 < job->n; s0 += chunk) {
        int ns = chunk < job->n - s0 ? chunk : job->n - s0;
        int cols = chunk_groups(ns) * (int)tl.tiles * LANES;

        transform_inputs4(g, &tl, job->x, job->x_ss, job->x_ps, s0, ns, pp,
                          v, vrow, vxi);
        for (int xi = 0; xi < 36; xi++)
            sgemm(GEMM_NOTRANS, GEMM_NOTRANS, out_c, cols, in_c, 1.0f,
                  job->u + xi * ustride, in_c, v + xi * vxi, (int)vrow, 0.0f,
                  m + xi * mxi, (int)vrow);
        for (int o = 0; o < out_c; o++) {
            float bias = job->bias != NULL ? job->bias[o] : 0.0f;

            for (int gs = 0; gs < ns; gs += LANES) {
                const float *mo = m + o * vrow
                                  + (size_t)(gs / LANES) * tl.tiles * LANES;
                int nl = ns - gs < LANES ? ns - gs : LANES;

                for (size_t t = 0; t < tl.tiles; t++) {
                    int ty = (int)(t / tl.tiles_x), tx = (int)(t % tl.tiles_x);
                    float *dst = q + ((size_t)(4 * ty) * tl.out_w + 4 * tx)
                                         * LANES;
                    v8 r[4][6];

                    UNROLL for (int b = 0; b < 6; b++) {
                        v8 mm[6], o4[4];

                        UNROLL for (int a = 0; a < 6; a++)
                            LOAD8(mm[a], mo + (size_t)(a * 6 + b) * mxi
                                             + t * LANES);
                        at43_apply(mm, o4);
                        UNROLL for (int i = 0; i < 4; i++)
                            r[i][b] = o4[i];
                    }
                    UNROLL for (int i = 0; i < 4; i++) {
                        v8 o4[4];

                        at43_apply(r[i], o4);
                        UNROLL for (int j = 0; j < 4; j++) {
                            v8 s = o4[j] + bias;

                            /* Keeps NaN and -0, like the scalar ReLU. */
                            if (job->relu)
                                s = (v8)((v8i)s & ~(v8i)(s < zero));
                            STORE8(dst + ((size_t)i * tl.out_w + j) * LANES,
                                   s);
                        }
                    }
                }
                deinterleave(q, tl.out_w, tl.oh, tl.ow, nl,
                             job->y + o * job->y_ps + (s0 + gs) * job->y_ss,
                             job->y_ss);
            }
        }
    }
}

static size_t conv4_scratch_floats(const ConvGeom *g, int out_c, int chunk)
{
    Tiling4 t = tiling4(g);
    size_t vrow = columns4(&t, chunk);

    return ((size_t)t.pad_h * t.pad_w + (size_t)t.out_h * t.out_w) * LANES
           + 36 * (coef_stride(g->c, vrow) + coef_stride(out_c, vrow));
}

/* Runs winograd_weight_grad for 3x3 kernels as weight_grad_body does,
 * with the output gradients of a group interleaved in PZ, whose rows
 * and columns past the plane stay zero. */
static inline __attribute__((always_inline)) void
weight_grad4_body(const GradJob *job)
{
    const ConvGeom *g = job->g;
    Tiling4 tl = tiling4(g);
    int in_c = g->c, f = job->out_c;
    size_t vrow = columns4(&tl, job->chunk);
    size_t vxi = coef_stride(in_c, vrow), zxi = coef_stride(f, vrow);
    int chunk = chunk_groups(job->chunk) * LANES;
    size_t stride = weight_stride(f, in_c);
    float *pp = job->scratch;
    float *pz = pp + (size_t)tl.pad_h * tl.pad_w * LANES;
    float *v = pz + (size_t)tl.out_h * tl.out_w * LANES;
    float *z = v + 36 * vxi;
    float *du = z + 36 * zxi;
    float *temp = du + 36 * stride;

    memset(pp, 0, (size_t)tl.pad_h * tl.pad_w * LANES * sizeof *pp);
    memset(pz, 0, (size_t)tl.out_h * tl.out_w * LANES * sizeof *pz);
    for (int s0 = 0; s0 < job->n; s0 += chunk) {
        int ns = chunk < job->n - s0 ? chunk : job->n - s0;
        int cols = chunk_groups(ns) * (int)tl.tiles * LANES;

        transform_inputs4(g, &tl, job->x, job->x_ss, job->x_ps, s0, ns, pp,
                          v, vrow, vxi);
        for (int o = 0; o < f; o++)
            for (int gs = 0; gs < ns; gs += LANES) {
                int nl = ns - gs < LANES ? ns - gs : LANES;
                float *zo = z + o * vrow
                            + (size_t)(gs / LANES) * tl.tiles * LANES;

                interleave(job->dy + o * job->dy_ps + (s0 + gs) * job->dy_ss,
                           job->dy_ss, nl, tl.oh, tl.ow, 0, tl.out_h,
                           tl.out_w, pz);
                for (size_t t = 0; t < tl.tiles; t++) {
                    int ty = (int)(t / tl.tiles_x), tx = (int)(t % tl.tiles_x);
                    const float *src = pz + ((size_t)(4 * ty) * tl.out_w
                                             + 4 * tx) * LANES;
                    v8 r[6][4];

                    UNROLL for (int j = 0; j < 4; j++) {
                        v8 d[4], zz[6];

                        UNROLL for (int i = 0; i < 4; i++)
                            LOAD8(d[i], src + ((size_t)i * tl.out_w + j)
                                              * LANES);
                        a43_apply(d, zz);
                        UNROLL for (int a = 0; a < 6; a++)
                            r[a][j] = zz[a];
                    }
                    UNROLL for (int a = 0; a < 6; a++) {
                        v8 zz[6];

                        a43_apply(r[a], zz);
                        UNROLL for (int b = 0; b < 6; b++)
                            STORE8(zo + (size_t)(a * 6 + b) * zxi
                                       + t * LANES, zz[b]);
                    }
                }
            }
        for (int xi = 0; xi < 36; xi++)
            sgemm(GEMM_NOTRANS, GEMM_TRANS, f, in_c, cols, 1.0f,
                  z + xi * zxi, (int)vrow, v + xi * vxi, (int)vrow,
                  s0 > 0 ? 1.0f : 0.0f, du + xi * stride, in_c);
    }
    weight_grads_body(3, f, in_c, du, job->dw, temp);
}

static size_t weight_grad4_scratch_floats(const ConvGeom *g, int out_c,
                                          int chunk)
{
    Tiling4 t = tiling4(g);
    size_t vrow = columns4(&t, chunk);
    size_t stride = weight_stride(out_c, g->c);

    return ((size_t)t.pad_h * t.pad_w + (size_t)t.out_h * t.out_w) * LANES
           + 36 * (coef_stride(g->c, vrow) + coef_stride(out_c, vrow))
           + 36 * stride + 9 * stride;
}

/* The bodies with ALPHA fixed, so that the loops over the transform
 * matrices unroll into constant coefficients. */
static inline __attribute__((always_inline)) void
weights_any(int k, int f, int c, const float *w, int flip, float *u,
            float *temp)
{
    if (k == 3)
        weights_body(3, f, c, w, flip, u, temp);
    else
        weights_body(5, f, c, w, flip, u, temp);
}

static inline __attribute__((always_inline)) void
conv_any(const ConvJob *job)
{
    if (job->g->k == 3)
        conv4_body(job);
    else
        conv_body(job);
}

static inline __attribute__((always_inline)) void
weight_grad_any(const GradJob *job)
{
    if (job->g->k == 3)
        weight_grad4_body(job);
    else
        weight_grad_body(job);
}

#ifdef WINOGRAD_X86
__attribute__((target("avx2")))
static void weight_grad_avx2(const GradJob *job)
{
    weight_grad_any(job);
}

__attribute__((target("avx2")))
static void weights_avx2(int k, int f, int c, const float *w, int flip,
                         float *u, float *temp)
{
    weights_any(k, f, c, w, flip, u, temp);
}

__attribute__((target("avx2")))
static void conv_avx2(const ConvJob *job)
{
    conv_any(job);
}
#endif

static void weights_portable(int k, int f, int c, const float *w, int flip,
                             float *u, float *temp)
{
    weights_any(k, f, c, w, flip, u, temp);
}

static void conv_portable(const ConvJob *job)
{
    conv_any(job);
}

static void weight_grad_portable(const GradJob *job)
{
    weight_grad_any(job);
}

void winograd_weights(int k, int f, int c, const float *w, int flip,
                      float *u, float *temp)
{
#ifdef WINOGRAD_X86
    if (gemm_kernel() != GEMM_KERNEL_PORTABLE) {
        weights_avx2(k, f, c, w, flip, u, temp);
        return;
    }
#endif
    weights_portable(k, f, c, w, flip, u, temp);
}

size_t winograd_scratch_floats(const ConvGeom *g, int out_c, int chunk)
{
    if (g->k == 3)
        return conv4_scratch_floats(g, out_c, chunk);
    Tiling t = tiling(g);
    size_t a2 = (size_t)ALPHA * ALPHA;
    size_t tc = t.tiles * (size_t)(chunk > 0 ? chunk : 1);

    return padded_plane_floats(&t) + columns_floats(&t)
           + a2 * g->c * (tc + LANES) + a2 * out_c * tc + LANES;
}

void winograd_conv(const ConvGeom *g, int out_c, int n, const float *x,
                   size_t x_sample_stride, size_t x_plane_stride,
                   const float *u, const float *bias, int relu,
                   float *y, size_t y_sample_stride, size_t y_plane_stride,
                   float *scratch, int chunk)
{
    ConvJob job = {g, out_c, n, x, x_sample_stride, x_plane_stride, u,
                   bias, relu, y, y_sample_stride, y_plane_stride,
                   scratch, chunk < 1 ? 1 : chunk};

#ifdef WINOGRAD_X86
    if (gemm_kernel() != GEMM_KERNEL_PORTABLE) {
        conv_avx2(&job);
        return;
    }
#endif
    conv_portable(&job);
}

size_t winograd_weight_grad_scratch_floats(const ConvGeom *g, int out_c,
                                           int chunk)
{
    if (g->k == 3)
        return weight_grad4_scratch_floats(g, out_c, chunk);
    Tiling t = tiling(g);
    size_t a2 = (size_t)ALPHA * ALPHA;
    size_t tc = t.tiles * (size_t)(chunk > 0 ? chunk : 1);
    size_t stride = weight_stride(out_c, g->c);

    return padded_plane_floats(&t) + columns_floats(&t)
           + a2 * (g->c + (size_t)out_c) * (tc + LANES)
           + (size_t)grad_plane_rows(&t) * grad_plane_width(&t)
           + a2 * stride + (size_t)g->k * g->k * stride;
}

void winograd_weight_grad(const ConvGeom *g, int out_c, int n,
                          const float *x, size_t x_sample_stride,
                          size_t x_plane_stride, const float *dy,
                          size_t dy_sample_stride, size_t dy_plane_stride,
                          float *dw, float *scratch, int chunk)
{
    GradJob job = {g, out_c, n, x, x_sample_stride, x_plane_stride, dy,
                   dy_sample_stride, dy_plane_stride, dw, scratch,
                   chunk < 1 ? 1 : chunk};

#ifdef WINOGRAD_X86
    if (gemm_kernel() != GEMM_KERNEL_PORTABLE) {
        weight_grad_avx2(&job);
        return;
    }
#endif
    weight_grad_portable(&job);
}
