/*
 * conv-bench: times the three passes of a convolution layer over one
 * shard of 8 samples, through im2col and the GEMM and through the
 * Winograd path, on warm data, best of --repeat calls each.
 *
 * The layers are the second convolutions of the built-in networks:
 * small (3x3, 32 channels into 64, 13 x 13, valid), default (3x3, same,
 * 14 x 14) and tf (5x5, same, 14 x 14). As in the trainer, the im2col
 * forward pass adds the bias and ReLU in the GEMM. The im2col input
 * gradient is the GEMM with the weights and col2im, and the im2col
 * weight gradient is im2col and the GEMM with the output gradients. The Winograd forward time
 * leaves out the weight transform, which a thread does once per batch
 * and which is shown on its own. The Winograd passes run in chunks of
 * as many samples as the trainer would give them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "net.h"
#include "util.h"
#include "winograd.h"

/* Samples per call: one shard of the trainer. */
#define SHARD 8

typedef struct {
    const char *name;
    int c, hw, k, pad, f;
} LayerShape;

static const LayerShape layers[] = {
    {"small", 32, 13, 3, 0, 64},
    {"default", 32, 14, 3, 1, 64},
    {"tf", 32, 14, 5, 2, 64},
};

static float *random_floats(size_t n, Rng *rng)
{
    float *p = xmalloc_aligned(n * sizeof *p);

    for (size_t i = 0; i < n; i++)
        p[i] = rng_uniform(rng) - 0.5f;
    return p;
}

/* Times per pass of one layer, in seconds: best of the repeats, and the
 * samples per Winograd chunk. */
typedef struct {
    int chunk;
    double fwd_col, fwd_wino, weights;
    double dx_col, dx_wino;
    double dw_col, dw_wino;
} Times;

static size_t largest(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;

    return m > c ? m : c;
}

/* Lowers *BEST to the time since T0 when that is shorter. */
static void keep_min(double *best, double t0)
{
    double t = util_now() - t0;

    if (t < *best)
        *best = t;
}

static Times time_layer(const LayerShape *s, int repeat, Rng *rng)
{
    ConvGeom g = {s->c, s->hw, s->hw, s->k, s->pad};
    ConvGeom gi = {s->f, conv_out_h(&g), conv_out_w(&g), s->k,
                   s->k - 1 - s->pad};
    int ohw = conv_out_h(&g) * conv_out_w(&g), hw = s->hw * s->hw;
    int kdim = s->c * s->k * s->k, cols = SHARD * ohw;
    Layer l = {.kind = LAYER_CONV, .in_c = s->c, .in_h = s->hw,
               .in_w = s->hw, .out_c = s->f, .out_h = conv_out_h(&g),
               .out_w = conv_out_w(&g), .k = s->k, .pad = s->pad};
    int chunk = net_wino_chunk_samples(&l, SHARD);
    size_t u_floats = winograd_weight_floats(s->k, s->f, s->c);
    size_t sf = winograd_scratch_floats(&g, s->f, chunk);
    size_t sb = winograd_scratch_floats(&gi, s->c, chunk);
    size_t sw = winograd_weight_grad_scratch_floats(&g, s->f, chunk);
    size_t scratch_floats = largest(sf, sb, sw);
    /* Activations are channel-major, as in the trainer: plane (c, s) at
     * (c * SHARD + s) * plane. */
    float *x = random_floats((size_t)s->c * SHARD * hw, rng);
    float *w = random_floats((size_t)s->f * kdim, rng);
    float *bias = random_floats((size_t)s->f, rng);
    float *y = random_floats((size_t)s->f * cols, rng);
    float *dy = random_floats((size_t)s->f * cols, rng);
    float *dx = random_floats((size_t)s->c * SHARD * hw, rng);
    float *col = random_floats((size_t)kdim * cols, rng);
    float *dw = random_floats((size_t)s->f * kdim, rng);
    float *u = random_floats(u_floats, rng);
    float *u_flip = random_floats(u_floats, rng);
    float *temp = random_floats(u_floats, rng);
    float *scratch = random_floats(scratch_floats, rng);
    Times t = {chunk, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9};

    winograd_weights(s->k, s->f, s->c, w, 1, u_flip, temp);
    for (int r = 0; r < repeat; r++) {
        double t0 = util_now();

        im2col(&g, SHARD, x, (size_t)hw, (size_t)SHARD * hw, col,
               (size_t)cols);
        sgemm_bias_relu(s->f, cols, kdim, w, kdim, col, cols, bias, 1, y,
                        cols);
        keep_min(&t.fwd_col, t0);

        t0 = util_now();
        winograd_weights(s->k, s->f, s->c, w, 0, u, temp);
        keep_min(&t.weights, t0);

        t0 = util_now();
        winograd_conv(&g, s->f, SHARD, x, (size_t)hw, (size_t)SHARD * hw, u,
                      bias, 1, y, (size_t)ohw, (size_t)cols, scratch, chunk);
        keep_min(&t.fwd_wino, t0);

        t0 = util_now();
        sgemm(GEMM_TRANS, GEMM_NOTRANS, kdim, cols, s->f, 1.0f, w, kdim, dy,
              cols, 0.0f, col, cols);
        memset(dx, 0, (size_t)s->c * SHARD * hw * sizeof *dx);
        col2im(&g, SHARD, col, (size_t)cols, dx, (size_t)hw,
               (size_t)SHARD * hw);
        keep_min(&t.dx_col, t0);

        t0 = util_now();
        winograd_conv(&gi, s->c, SHARD, dy, (size_t)ohw, (size_t)cols,
                      u_flip, NULL, 0, dx, (size_t)hw, (size_t)SHARD * hw,
                      scratch, chunk);
        keep_min(&t.dx_wino, t0);

        t0 = util_now();
        im2col(&g, SHARD, x, (size_t)hw, (size_t)SHARD * hw, col,
               (size_t)cols);
        sgemm(GEMM_NOTRANS, GEMM_TRANS, kdim, s->f, cols, 1.0f, col, cols,
              dy, cols, 0.0f, dw, s->f);
        keep_min(&t.dw_col, t0);

        t0 = util_now();
        winograd_weight_grad(&g, s->f, SHARD, x, (size_t)hw,
                             (size_t)SHARD * hw, dy, (size_t)ohw,
                             (size_t)cols, dw, scratch, chunk);
        keep_min(&t.dw_wino, t0);
    }
    free(x);
    free(w);
    free(bias);
    free(y);
    free(dy);
    free(dx);
    free(col);
    free(dw);
    free(u);
    free(u_flip);
    free(temp);
    free(scratch);
    return t;
}

static void print_row(const char *pass, double col, double wino)
{
    printf("  %-16s %9.3f %9.3f %8.2fx\n", pass, col * 1e3, wino * 1e3,
           col / wino);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: conv-bench [--layer small|default|tf] [--repeat N]\n"
            "Time the forward pass, input gradient and weight gradient of "
            "a\nsecond convolution layer over 8 samples, through im2col "
            "and the GEMM\nand through the Winograd path (best of N "
            "calls, default 2000).\n");
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    int repeat = 2000;
    Rng rng;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--layer") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1) {
                fprintf(stderr, "conv-bench: invalid --repeat '%s': "
                        "expected a positive count\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "conv-bench: invalid argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int known = only == NULL;

    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        known |= only != NULL && strcmp(only, layers[i].name) == 0;
    if (!known) {
        fprintf(stderr, "conv-bench: invalid --layer '%s': expected small, "
                "default or tf\n", only);
        return 2;
    }
    rng_seed(&rng, 1);
    printf("GEMM kernel: %s; milliseconds per shard of %d samples, best "
           "of %d calls\n", gemm_kernel_name(), SHARD, repeat);
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const LayerShape *s = &layers[i];

        if (only != NULL && strcmp(only, s->name) != 0)
            continue;
        Times t = time_layer(s, repeat, &rng);

        printf("\n%s: %dx%d kernels, %d channels into %d, %d x %d, pad %d, "
               "Winograd F(%dx%d, %dx%d) in chunks of %d\n", s->name, s->k,
               s->k, s->c, s->f, s->hw, s->hw, s->pad, winograd_tile(s->k),
               winograd_tile(s->k), s->k, s->k, t.chunk);
        printf("  %-16s %9s %9s %9s\n", "pass", "im2col", "Winograd",
               "speed-up");
        print_row("forward", t.fwd_col, t.fwd_wino);
        print_row("input gradient", t.dx_col, t.dx_wino);
        print_row("weight gradient", t.dw_col, t.dw_wino);
        printf("  weight transform %9.3f ms, once per batch and thread\n",
               t.weights * 1e3);
    }
    return 0;
}
