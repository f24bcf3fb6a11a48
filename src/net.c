/*
 * net: the spec parser, parameter setup, and the forward and backward
 * passes of every layer kind.
 *
 * Activations of a batch of N samples take one of two layouts. Images
 * arrive sample-major (NCHW). Convolutions write channel-major (CNHW)
 * output, because lowering the whole batch through im2col gives a
 * (C*K*K) x (N*OH*OW) matrix, and one weight x column product then yields
 * F x (N*OH*OW), which is already CNHW. Pooling, ReLU and dropout work
 * plane by plane or element by element, so they keep whichever layout
 * they get. Dense layers need each sample's features contiguous, so flatten
 * and dense transpose a channel-major input to sample-major (and transpose
 * the gradient back). With N == 1 or C == 1 the two layouts coincide.
 *
 * Layer i writes its output to scratch->out[i] and reads the gradient of
 * the loss with respect to that output from scratch->dout[i]. The backward
 * pass of layer 0 computes parameter gradients only, since nothing needs
 * the gradient of the images.
 *
 * ReLU works in place: past layer 0, its out and dout buffers are those of
 * the layer before it. That is safe because no backward pass reads its own
 * layer's output, with one exception. Pooling right after a ReLU reads its
 * output as the ReLU mask, and those values are non-negative, so a ReLU
 * after the pooling leaves them unchanged.
 *
 * ReLU is also fused into its neighbours, which saves passes over the
 * largest buffers. After a convolution, dense or bn layer it is applied
 * in that layer's output pass. Before a pooling layer, its mask is applied
 * while pooling routes the gradient, because a window's maximum of ReLU
 * outputs is positive exactly when the input it came from was.
 *
 * net_train_batch and net_predict only read the Net, so several threads
 * may run them at once, each with its own NetScratch and Rng. Batch
 * normalisation's batch statistics go to the NetScratch, and only
 * net_update_running_stats writes the running statistics in the Net.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "net.h"
#include "pool.h"
#include "util.h"
#include "winograd.h"
#include "direct.h"

/* Upper bound for any number in a spec (kernel size, filters, width), so
 * that shape and parameter arithmetic cannot overflow. */
#define SPEC_MAX_NUMBER 65536
/* SPEC_MAX_NUMBER as text, for the messages. */
#define SPEC_MAX_TEXT "65536"

/* Seed of the noise in the probe images of net_find_nonfinite_layer. It
 * is fixed, so that a model that passed the test before it was saved
 * also passes it when it is loaded. */
#define PROBE_SEED 1

/* Upper bound on the floats of one sample's activation in any layer. */
#define MAX_ACTIVATION ((size_t)1 << 26)

/* Upper bound on the parameter count (1 GiB of floats), so that an absurd
 * spec is rejected with a message instead of failing allocation. */
#define MAX_PARAMS ((size_t)1 << 28)

struct NetScratch {
    int max_batch;
    int n_layers;
    int *channel_major;   /* per layer: 1 if its output is CNHW */
    int *aliased;         /* per layer: out and dout belong to layer i-1 */
    float **out;          /* per layer: max_batch x output size */
    float **dout;         /* per layer: gradient of the loss wrt out */
    float **flat;         /* dense with CNHW input: sample-major copy */
    int32_t **argmax;     /* pool: winner (2*dy + dx) of each window */
    uint8_t **codes;      /* pool that a convolution writes through
                             direct_conv_pool_forward: its codes, instead
                             of argmax */
    float **mask;         /* dropout: 0 or 1/(1-rate) per element */
    float **inv_std;      /* bn: 1/sqrt(batch variance + eps) per channel */
    size_t n_stats;
    float *batch_stats;   /* bn: Net.stats layout, from the latest
                             training call */
    float *col;           /* conv: the patches of one chunk of samples,
                             then their gradient */
    float *dw_t;          /* conv backward: transposed weight gradient */
    float *wino;          /* conv through winograd_conv: its scratch */
    float *wino_temp;     /* ... and winograd_weights' temporary */
    /* Per Winograd layer: a copy of the weights as last transformed, and
     * their transforms for the forward pass and the input gradient. */
    float **wino_w;
    float **wino_u;
    float **wino_u_flip;
    unsigned char *wino_ready;  /* bit 1: wino_u, bit 2: wino_u_flip */
    float *dflat;         /* dense backward: sample-major input gradient */
    float *dense_t;       /* dense forward: the output transposed */
    NetLayerProfile *profile;  /* per-layer timings while a profiler
                                  runs, otherwise NULL */
    NetBatch *batch;      /* while net_train_shard runs with a NetBatch:
                             where dense layers keep their rows */
    int batch_first;      /* row of this call's first sample in batch */
    /* While net_head_train runs: how dense layers share their products
     * among threads, and the random stream of each shard of SHARD rows,
     * from which dropout draws that shard's masks. */
    NetParallelFor pfor;
    void *pfor_ctx;
    Rng *shard_rngs;
    int shard;
};

/* ---------------------------------------------------------------- parser */

typedef struct {
    int c, h, w;      /* shape of the next layer's input */
    int spatial;      /* 0 once flatten or dense has run */
    size_t n_params;
    size_t n_stats;
} ParseState;

/* Reads a decimal integer at *P, advancing past it. Returns 0, or -1 when
 * no digit is there or the value exceeds SPEC_MAX_NUMBER. */
static int read_int(const char **p, int *out)
{
    long v = 0;

    if (!isdigit((unsigned char)**p))
        return -1;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v > SPEC_MAX_NUMBER)
            return -1;
        (*p)++;
    }
    *out = (int)v;
    return 0;
}

/* Reads an unsigned decimal fraction such as "0.5", "1" or ".25". strtod
 * is avoided because it follows LC_NUMERIC, which the UI may set to a
 * locale whose decimal separator is a comma. */
static int read_fraction(const char **p, double *out)
{
    double v = 0.0, scale = 1.0;
    int digits = 0;

    while (isdigit((unsigned char)**p)) {
        v = v * 10.0 + (**p - '0');
        digits++;
        (*p)++;
    }
    if (**p == '.') {
        (*p)++;
        while (isdigit((unsigned char)**p)) {
            scale /= 10.0;
            v += (**p - '0') * scale;
            digits++;
            (*p)++;
        }
    }
    *out = v;
    return digits > 0 ? 0 : -1;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Parses "convKxKxF[:same|:valid]" (P points after "conv"). Returns NULL
 * or the text of what was expected. */
static const char *parse_conv(const char *p, Layer *layer)
{
    const char *form = "expected convKxKxF[:same|:valid] with K and F at "
                       "most " SPEC_MAX_TEXT ", e.g. conv3x3x32";
    int k1, k2, filters;

    if (read_int(&p, &k1) < 0 || *p++ != 'x' || read_int(&p, &k2) < 0
        || *p++ != 'x' || read_int(&p, &filters) < 0)
        return form;
    int same = strcmp(p, ":same") == 0;

    layer->pad = -1;
    if (same)
        layer->pad = (k1 - 1) / 2;
    else if (*p == '\0' || strcmp(p, ":valid") == 0)
        layer->pad = 0;
    else
        return form;
    if (k1 <= 0 || k2 <= 0)
        return "expected a positive kernel size";
    if (k1 != k2)
        return "expected a square kernel (the two K must be equal)";
    if (filters <= 0)
        return "expected a positive number of filters";
    /* An even kernel cannot be centred, and K = 2 would give pad 0 and
     * quietly compute :valid. */
    if (same && k1 % 2 == 0)
        return "expected an odd kernel size with :same";
    layer->kind = LAYER_CONV;
    layer->k = k1;
    layer->out_c = filters;
    return NULL;
}

/* Parses one token into LAYER's kind and hyper-parameters. Returns NULL or
 * the text of what was expected. */
static const char *parse_token(const char *tok, Layer *layer)
{
    const char *p;

    if (*tok == '\0')
        return "expected a layer, found nothing between commas";
    if (has_prefix(tok, "conv"))
        return parse_conv(tok + 4, layer);
    if (strcmp(tok, "pool2") == 0) {
        layer->kind = LAYER_POOL;
        layer->k = 2;
        return NULL;
    }
    if (has_prefix(tok, "pool"))
        return "expected pool2 (only 2x2 max pooling exists)";
    if (strcmp(tok, "flatten") == 0) {
        layer->kind = LAYER_FLATTEN;
        return NULL;
    }
    if (strcmp(tok, "relu") == 0) {
        layer->kind = LAYER_RELU;
        return NULL;
    }
    if (has_prefix(tok, "dense")) {
        int width;
        p = tok + 5;
        if (read_int(&p, &width) < 0 || *p != '\0')
            return "expected denseN with N an integer from 1 to "
                   SPEC_MAX_TEXT ", e.g. dense128";
        if (width <= 0)
            return "expected a positive width";
        layer->kind = LAYER_DENSE;
        layer->out_c = width;
        return NULL;
    }
    if (has_prefix(tok, "dropout")) {
        double rate;
        p = tok + 7;
        if (read_fraction(&p, &rate) < 0 || *p != '\0')
            return "expected dropoutP with P a decimal number, e.g. dropout0.5";
        /* Checked as a float, which 0.99999999999 rounds to 1. */
        if ((float)rate >= 1.0f)
            return "expected a drop probability in [0, 1)";
        layer->kind = LAYER_DROPOUT;
        layer->rate = (float)rate;
        return NULL;
    }
    if (strcmp(tok, "bn") == 0) {
        layer->kind = LAYER_BN;
        return NULL;
    }
    return "expected a layer: convKxKxF, pool2, flatten, denseN, relu, "
           "dropoutP or bn";
}

/* Gives LAYER its input and output shapes and parameter offsets from the
 * running STATE, then advances STATE. Returns NULL or what was expected,
 * written into BUF when it needs numbers. */
static const char *place_layer(Layer *layer, ParseState *st, char *buf,
                               size_t buflen)
{
    layer->in_c = st->c;
    layer->in_h = st->h;
    layer->in_w = st->w;
    layer->out_h = layer->out_w = 1;
    layer->weight_offset = layer->bias_offset = st->n_params;
    layer->param_count = 0;

    switch (layer->kind) {
    case LAYER_CONV:
        if (!st->spatial)
            return "expected a spatial input, but a dense or flatten layer "
                   "comes before this convolution";
        if (layer->k > st->h || layer->k > st->w) {
            snprintf(buf, buflen, "expected a kernel no larger than the "
                     "%dx%d input", st->h, st->w);
            return buf;
        }
        layer->out_h = st->h + 2 * layer->pad - layer->k + 1;
        layer->out_w = st->w + 2 * layer->pad - layer->k + 1;
        layer->bias_offset = st->n_params
            + (size_t)layer->out_c * st->c * layer->k * layer->k;
        layer->param_count = layer->bias_offset + layer->out_c - st->n_params;
        break;
    case LAYER_POOL:
        if (!st->spatial)
            return "expected a spatial input, but a dense or flatten layer "
                   "comes before this pooling";
        if (st->h < 2 || st->w < 2) {
            snprintf(buf, buflen, "expected an input of at least 2x2 for "
                     "pooling, found %dx%d", st->h, st->w);
            return buf;
        }
        layer->out_c = st->c;
        layer->out_h = st->h / 2;
        layer->out_w = st->w / 2;
        break;
    case LAYER_FLATTEN:
        layer->out_c = st->c * st->h * st->w;
        break;
    case LAYER_DENSE:
        layer->bias_offset = st->n_params
            + (size_t)layer->out_c * st->c * st->h * st->w;
        layer->param_count = layer->bias_offset + layer->out_c - st->n_params;
        break;
    case LAYER_RELU:
    case LAYER_DROPOUT:
        layer->out_c = st->c;
        layer->out_h = st->h;
        layer->out_w = st->w;
        break;
    case LAYER_BN:
        /* After flatten or dense, H = W = 1 and C counts the units, so
         * "per channel" is "per unit" there. */
        layer->out_c = st->c;
        layer->out_h = st->h;
        layer->out_w = st->w;
        layer->bias_offset = st->n_params + (size_t)st->c;
        layer->param_count = 2 * (size_t)st->c;
        layer->stats_offset = st->n_stats;
        st->n_stats += 2 * (size_t)st->c;
        break;
    }
    if ((size_t)layer->out_c * layer->out_h * layer->out_w > MAX_ACTIVATION)
        return "expected a smaller layer (the output of one sample exceeds "
               "2^26 values)";
    /* A convolution lowers at least one sample at a time, so its patch
     * matrix for one sample must fit the same bound. */
    if (layer->kind == LAYER_CONV
        && (size_t)layer->in_c * layer->k * layer->k * layer->out_h
                   * layer->out_w
               > MAX_ACTIVATION)
        return "expected a smaller layer (one sample's patch matrix, input "
               "channels x kernel area x output size, exceeds 2^26 values)";
    if (st->n_params + layer->param_count > MAX_PARAMS)
        return "expected a smaller layer (the network would exceed 2^28 "
               "parameters)";

    st->c = layer->out_c;
    st->h = layer->out_h;
    st->w = layer->out_w;
    if (layer->kind == LAYER_FLATTEN || layer->kind == LAYER_DENSE)
        st->spatial = 0;
    st->n_params += layer->param_count;
    return NULL;
}

const char *net_preset_name(const char *spec)
{
    if (strcmp(spec, NET_SPEC_DEFAULT) == 0)
        return "default";
    if (strcmp(spec, NET_SPEC_SMALL) == 0)
        return "small";
    if (strcmp(spec, NET_SPEC_TF) == 0)
        return "tf";
    if (strcmp(spec, NET_SPEC_BEST) == 0)
        return "best";
    return NULL;
}

/* Returns a copy of SPEC without whitespace, with a preset name replaced
 * by its layers. */
static char *canonical_spec(const char *spec)
{
    if (strcmp(spec, "default") == 0)
        return xstrdup(NET_SPEC_DEFAULT);
    if (strcmp(spec, "small") == 0)
        return xstrdup(NET_SPEC_SMALL);
    if (strcmp(spec, "tf") == 0)
        return xstrdup(NET_SPEC_TF);
    if (strcmp(spec, "best") == 0)
        return xstrdup(NET_SPEC_BEST);

    char *out = xmalloc(strlen(spec) + 1);
    size_t len = 0;
    for (const char *p = spec; *p != '\0'; p++)
        if (!isspace((unsigned char)*p))
            out[len++] = *p;
    out[len] = '\0';
    if (len > 0 && strcmp(out, spec) != 0) {
        /* " small " names the preset too. */
        char *preset = canonical_spec(out);
        if (strcmp(preset, out) != 0) {
            free(out);
            return preset;
        }
        free(preset);
    }
    return out;
}

static void spec_error(char *err, size_t errlen, int index, const char *tok,
                       const char *expected)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "model spec: token %d \"%.48s\": %s", index,
                 tok, expected);
}

/* Splits SPEC (already canonical) at commas and fills NET's layers.
 * Returns 0, or -1 with ERR set. */
static int parse_layers(Net *net, const char *spec, char *err, size_t errlen)
{
    char *copy = xstrdup(spec);
    int n_tokens = 1;

    for (const char *p = copy; *p != '\0'; p++)
        n_tokens += *p == ',';
    net->layers = xcalloc((size_t)n_tokens, sizeof *net->layers);

    ParseState st = {net->in_c, net->in_h, net->in_w, 1, 0, 0};
    char *tok = copy;
    char buf[128];
    for (int i = 0; i < n_tokens; i++) {
        char *comma = strchr(tok, ',');
        if (comma != NULL)
            *comma = '\0';

        Layer *layer = &net->layers[i];
        const char *expected = parse_token(tok, layer);
        if (expected == NULL)
            expected = place_layer(layer, &st, buf, sizeof buf);
        if (expected == NULL && i == n_tokens - 1
            && (layer->kind != LAYER_DENSE || layer->out_c != net->classes)) {
            snprintf(buf, sizeof buf, "expected the last layer to be "
                     "dense%d (one output per class)", net->classes);
            expected = buf;
        }
        if (expected != NULL) {
            spec_error(err, errlen, i + 1, tok, expected);
            free(copy);
            return -1;
        }
        /* The last token has no comma after it, and NULL + 1 is undefined. */
        if (comma != NULL)
            tok = comma + 1;
    }
    net->n_layers = n_tokens;
    net->n_params = st.n_params;
    net->n_stats = st.n_stats;
    free(copy);
    return 0;
}

/* Sets every running mean to 0 and every running variance to 1, so that
 * an untrained bn layer is the identity in net_predict. */
static void reset_running_stats(Net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        float *mean = net->stats + l->stats_offset;

        if (l->kind != LAYER_BN)
            continue;
        for (int c = 0; c < l->out_c; c++) {
            mean[c] = 0.0f;
            mean[l->out_c + c] = 1.0f;
        }
    }
}

int net_create(Net *net, const char *spec, int in_c, int in_h, int in_w,
               int classes, char *err, size_t errlen)
{
    memset(net, 0, sizeof *net);
    if (in_c <= 0 || in_h <= 0 || in_w <= 0 || classes <= 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "model spec: input %dx%dx%d with %d "
                     "classes: expected positive sizes", in_c, in_h, in_w,
                     classes);
        return -1;
    }
    net->in_c = in_c;
    net->in_h = in_h;
    net->in_w = in_w;
    net->classes = classes;
    net->spec = canonical_spec(spec != NULL ? spec : "default");
    if (net->spec[0] == '\0') {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "model spec: empty: expected a preset "
                     "(default, small, tf, best) or comma-separated layers");
        net_free(net);
        return -1;
    }
    if (parse_layers(net, net->spec, err, errlen) < 0) {
        net_free(net);
        return -1;
    }
    net->params = xmalloc_aligned(net->n_params * sizeof *net->params);
    memset(net->params, 0, net->n_params * sizeof *net->params);
    net->stats = xcalloc(net->n_stats + 1, sizeof *net->stats);
    reset_running_stats(net);
    return 0;
}

void net_init_params(Net *net, Rng *rng)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        if (l->param_count == 0)
            continue;
        if (l->kind == LAYER_BN) {
            for (int c = 0; c < l->out_c; c++) {
                net->params[l->weight_offset + c] = 1.0f;
                net->params[l->bias_offset + c] = 0.0f;
            }
            continue;
        }

        size_t n_weights = l->bias_offset - l->weight_offset;
        size_t n_biases = l->param_count - n_weights;
        size_t fan_in = n_weights / (size_t)l->out_c;
        float stddev = sqrtf(2.0f / (float)fan_in);
        float *w = net->params + l->weight_offset;
        for (size_t j = 0; j < n_weights; j++)
            w[j] = stddev * rng_normal(rng);
        memset(net->params + l->bias_offset, 0, n_biases * sizeof(float));
    }
    reset_running_stats(net);
}

void net_free(Net *net)
{
    free(net->spec);
    free(net->layers);
    free(net->params);
    free(net->stats);
    memset(net, 0, sizeof *net);
}

void net_clone(Net *dst, const Net *src)
{
    *dst = *src;
    dst->spec = xstrdup(src->spec);
    dst->layers = xmalloc((size_t)src->n_layers * sizeof *dst->layers);
    memcpy(dst->layers, src->layers, (size_t)src->n_layers * sizeof *dst->layers);
    dst->params = xmalloc_aligned(src->n_params * sizeof *dst->params);
    memcpy(dst->params, src->params, src->n_params * sizeof *dst->params);
    dst->stats = xmalloc((src->n_stats + 1) * sizeof *dst->stats);
    memcpy(dst->stats, src->stats, src->n_stats * sizeof *dst->stats);
}

double net_forward_macs(const Net *net)
{
    double macs = 0.0;

    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        if (l->kind == LAYER_CONV)
            macs += (double)l->out_c * l->in_c * l->k * l->k
                    * l->out_h * l->out_w;
        else if (l->kind == LAYER_DENSE)
            macs += (double)l->out_c * l->in_c * l->in_h * l->in_w;
    }
    return macs;
}

/* ---------------------------------------------------------------- scratch */

static size_t in_size(const Layer *l)
{
    return (size_t)l->in_c * l->in_h * l->in_w;
}

static size_t out_size(const Layer *l)
{
    return (size_t)l->out_c * l->out_h * l->out_w;
}

static float *alloc_floats(size_t count)
{
    return xmalloc_aligned(count * sizeof(float));
}

/* Patch floats of one sample: (C*K*K) x (OH*OW). */
static size_t conv_patches(const Layer *l)
{
    return (size_t)l->in_c * l->k * l->k * l->out_h * l->out_w;
}

/* Samples per chunk of a convolution over N samples: as many as fit
 * NET_CONV_CHUNK_FLOATS, at least 1 and at most N. Writing the patches to
 * memory and reading them back cost more than the GEMMs gained from wider
 * products. The backward pass lowers each chunk again rather than keep
 * the forward pass's patches. The chunks depend on N only, never on the
 * thread count, so results stay reproducible. */
static int conv_chunk_samples(const Layer *l, int n)
{
    size_t fit = NET_CONV_CHUNK_FLOATS / conv_patches(l);

    if (fit < 1)
        fit = 1;
    return fit < (size_t)n ? (int)fit : n;
}

/* How many times fewer multiply-adds than the direct convolution a
 * Winograd forward pass must do. Timed per shard of 8 samples on an
 * AVX-512 Xeon, small's second layer (3x3 kernels on 13 x 13 maps, 3.4
 * times fewer) took 0.13 ms against 0.27 for im2col and a GEMM. 5x5
 * kernels on 14 x 14 maps (2.8 times fewer) ran 1.3 to 1.5 times as
 * fast. Tiles of 2 x 2 outputs for 3x3 kernels, 1.9 times fewer on that
 * layer, had gained nothing. */
#define WINO_MIN_SAVING 2.0

/* The same for the input gradient, where im2col's patches also serve the
 * weight gradient, so only the product with the weights and col2im are
 * saved. Small's second layer (2.6 times fewer) took 0.20 ms against
 * 0.33. 5x5 kernels on 14 x 14 maps gained 8 to 17% in the layer's
 * backward time. */
#define WINO_MIN_SAVING_INPUT_GRAD 2.5

/* The same for the weight gradient, which replaces im2col's patches and
 * the product with the output gradients: 0.14 ms against 0.24 on small's
 * second layer. */
#define WINO_MIN_SAVING_WEIGHT_GRAD 2.5

/* Channels and filters a convolution needs for Winograd: they are the
 * inner and outer sizes of its small GEMMs. */
#define WINO_MIN_CHANNELS 16

static ConvGeom conv_geom(const Layer *l)
{
    ConvGeom g = {l->in_c, l->in_h, l->in_w, l->k, l->pad};
    return g;
}

/* Returns the geometry of a convolution that gives the input gradients
 * of L from its output gradients: the kernels rotated by 180 degrees
 * over the output planes, with the padding that restores the input size. */
static ConvGeom conv_input_grad_geom(const Layer *l)
{
    ConvGeom g = {l->out_c, l->out_h, l->out_w, l->k, l->k - 1 - l->pad};
    return g;
}

/* Returns 1 when the Winograd convolution of geometry G, producing OUT_C
 * planes, does at most 1 / SAVING of the direct multiply-adds. */
static int winograd_pays(const ConvGeom *g, int out_c, double saving)
{
    int oh = conv_out_h(g), ow = conv_out_w(g), m = winograd_tile(g->k);
    int alpha = m + g->k - 1;
    double direct = (double)g->k * g->k * oh * ow;
    double wino = (double)alpha * alpha * ((oh + m - 1) / m)
                  * ((ow + m - 1) / m);

    return winograd_supported(g) && g->c >= WINO_MIN_CHANNELS
           && out_c >= WINO_MIN_CHANNELS && direct >= saving * wino;
}

/* Returns 1 when the forward pass of convolution L runs through
 * winograd_conv. */
static int conv_forward_winograd(const Layer *l)
{
    ConvGeom g = conv_geom(l);
    return winograd_pays(&g, l->out_c, WINO_MIN_SAVING);
}

/* Returns 1 when the input gradients of convolution L come from
 * winograd_conv. */
static int conv_input_grad_winograd(const Layer *l)
{
    ConvGeom g = conv_input_grad_geom(l);
    return winograd_pays(&g, l->in_c, WINO_MIN_SAVING_INPUT_GRAD);
}

/* Returns 1 when the weight gradient of convolution L comes from
 * winograd_weight_grad. */
static int conv_weight_grad_winograd(const Layer *l)
{
    ConvGeom g = conv_geom(l);
    return winograd_pays(&g, l->out_c, WINO_MIN_SAVING_WEIGHT_GRAD);
}

int net_conv_winograd(const Layer *l)
{
    if (l->kind != LAYER_CONV)
        return 0;
    return (conv_forward_winograd(l) ? NET_WINO_FORWARD : 0)
           | (conv_input_grad_winograd(l) ? NET_WINO_INPUT_GRAD : 0)
           | (conv_weight_grad_winograd(l) ? NET_WINO_WEIGHT_GRAD : 0);
}

/* Samples per chunk of a Winograd convolution of L over N samples: as
 * many as keep its coefficient matrices (in and out) within
 * NET_WINO_CHUNK_FLOATS, at least 1 and at most N. winograd_conv
 * rounds it up to whole groups of 8 for 3x3 kernels. Like
 * conv_chunk_samples, it depends on N only. */
int net_wino_chunk_samples(const Layer *l, int n)
{
    int m = winograd_tile(l->k), alpha = m + l->k - 1;
    size_t tiles = (size_t)((l->out_h + m - 1) / m)
                   * ((l->out_w + m - 1) / m);
    size_t in_tiles = (size_t)((l->in_h + m - 1) / m)
                      * ((l->in_w + m - 1) / m);
    size_t a2 = (size_t)alpha * alpha;
    size_t per = a2 * (l->in_c + l->out_c)
                 * (tiles > in_tiles ? tiles : in_tiles);
    size_t fit = NET_WINO_CHUNK_FLOATS / per;

    if (fit < 1)
        fit = 1;
    return fit < (size_t)n ? (int)fit : n;
}

/* Raises *SCRATCH and *WEIGHTS to the floats that the Winograd passes
 * of convolution L need over up to MB samples. */
static void wino_sizes(const Layer *l, int mb, size_t *scratch,
                       size_t *weights)
{
    int chunk = net_wino_chunk_samples(l, mb);
    size_t u = winograd_weight_floats(l->k, l->out_c, l->in_c);

    if (conv_forward_winograd(l)) {
        ConvGeom g = conv_geom(l);
        size_t need = winograd_scratch_floats(&g, l->out_c, chunk);

        *scratch = need > *scratch ? need : *scratch;
        *weights = u > *weights ? u : *weights;
    }
    if (conv_input_grad_winograd(l)) {
        ConvGeom g = conv_input_grad_geom(l);
        size_t need = winograd_scratch_floats(&g, l->in_c, chunk);

        *scratch = need > *scratch ? need : *scratch;
        *weights = u > *weights ? u : *weights;
    }
    if (conv_weight_grad_winograd(l)) {
        ConvGeom g = conv_geom(l);
        size_t need = winograd_weight_grad_scratch_floats(&g, l->out_c,
                                                          chunk);

        *scratch = need > *scratch ? need : *scratch;
    }
}

/* Allocates S's copy of the weights of convolution layer I (L) and room
 * for their transforms, when a Winograd pass reads them. */
static void wino_cache_create(NetScratch *s, int i, const Layer *l)
{
    size_t weights = l->bias_offset - l->weight_offset;
    size_t u = winograd_weight_floats(l->k, l->out_c, l->in_c);

    if (!conv_forward_winograd(l) && !conv_input_grad_winograd(l))
        return;
    s->wino_w[i] = alloc_floats(weights);
    memset(s->wino_w[i], 0, weights * sizeof(float));
    if (conv_forward_winograd(l))
        s->wino_u[i] = alloc_floats(u);
    if (conv_input_grad_winograd(l))
        s->wino_u_flip[i] = alloc_floats(u);
}

/*
 * Returns the weights W of convolution layer I (L) transformed by
 * winograd_weights, rotated when FLIP is set. Every shard of a batch
 * reads the same weights, so S keeps the transforms with a copy of the
 * weights they came from and transforms again only when W differs from
 * that copy. On the second layer of "small" the transform took 36 us and
 * the comparison 3 us, per shard of 8 samples.
 */
static const float *wino_weights(const NetScratch *s, int i, const Layer *l,
                                 const float *w, int flip)
{
    size_t bytes = (l->bias_offset - l->weight_offset) * sizeof *w;
    float *u = flip ? s->wino_u_flip[i] : s->wino_u[i];
    unsigned char bit = flip ? 2 : 1;

    if (memcmp(s->wino_w[i], w, bytes) != 0) {
        memcpy(s->wino_w[i], w, bytes);
        s->wino_ready[i] = 0;
    }
    if (!(s->wino_ready[i] & bit)) {
        winograd_weights(l->k, l->out_c, l->in_c, w, flip, u, s->wino_temp);
        s->wino_ready[i] |= bit;
    }
    return u;
}

/*
 * Returns 1 when no backward pass reads the output of layer I, a
 * convolution or bn layer whose output only feeds a pooling layer, with
 * at most one ReLU in place between them. Pooling keeps its own output
 * and winners for the backward pass, and a ReLU before a pooling layer
 * has no backward pass of its own, so such an output is dead once the
 * pooling has run. Layers LAST and on belong to another scratch.
 */
static int output_feeds_pool_only(const Net *net, int i, int last)
{
    int next = i + 1;

    if (net->layers[i].kind != LAYER_CONV && net->layers[i].kind != LAYER_BN)
        return 0;
    if (next < last && net->layers[next].kind == LAYER_RELU)
        next++;
    return next < last && net->layers[next].kind == LAYER_POOL;
}

/*
 * Returns the index of the pooling layer into which convolution I writes
 * its output directly (through direct_conv_pool_forward), or -1 when I
 * writes its own output: a single-channel convolution that
 * direct_supported accepts and whose output only feeds a pooling layer.
 */
static int fused_pool_layer(const Net *net, int i, int last)
{
    const Layer *l = &net->layers[i];
    ConvGeom g = conv_geom(l);

    if (l->kind != LAYER_CONV || !output_feeds_pool_only(net, i, last)
        || !direct_supported(&g, gemm_kernel()))
        return -1;
    return net->layers[i + 1].kind == LAYER_RELU ? i + 2 : i + 1;
}

/* Returns 1 when pooling layer I is the one into which the convolution
 * just before it, or before its ReLU, writes through fused_pool_layer. */
static int pool_is_fused(const Net *net, int i, int last)
{
    return (i >= 1 && fused_pool_layer(net, i - 1, last) == i)
           || (i >= 2 && fused_pool_layer(net, i - 2, last) == i);
}

/*
 * Allocates a scratch with buffers for layers FIRST..LAST-1 only; the
 * layout flags cover every layer. With TEMPS, it also gets what layers
 * use within one call only: the gradients of their outputs, a chunk's
 * patch matrix, the transposed weight gradient of a convolution, and the
 * sample-major input gradient of a dense layer. A trunk scratch borrows
 * those from a full scratch of its thread, and so it does the outputs
 * that feed only a pooling layer (see output_feeds_pool_only). Its own
 * buffers then hold only what must last from a shard's forward pass to
 * its backward pass. That keeps the working set of all shards small, and
 * the borrowed buffers stay warm in the cache of the thread that reuses
 * them.
 */
static NetScratch *scratch_create(const Net *net, int max_batch, int first,
                                  int last, int temps)
{
    NetScratch *s = xcalloc(1, sizeof *s);
    int n = net->n_layers;
    size_t mb = (size_t)(max_batch > 0 ? max_batch : 1);
    size_t max_col = 0, max_dflat = 0, max_dw_t = 0, max_dense_t = 0;
    size_t max_wino = 0, max_wino_u = 0;
    int cm = 0;

    s->max_batch = (int)mb;
    s->n_layers = n;
    s->channel_major = xcalloc((size_t)n, sizeof *s->channel_major);
    s->aliased = xcalloc((size_t)n, sizeof *s->aliased);
    s->out = xcalloc((size_t)n, sizeof *s->out);
    s->dout = xcalloc((size_t)n, sizeof *s->dout);
    s->flat = xcalloc((size_t)n, sizeof *s->flat);
    s->argmax = xcalloc((size_t)n, sizeof *s->argmax);
    s->codes = xcalloc((size_t)n, sizeof *s->codes);
    s->mask = xcalloc((size_t)n, sizeof *s->mask);
    s->inv_std = xcalloc((size_t)n, sizeof *s->inv_std);
    s->n_stats = net->n_stats;
    s->batch_stats = xcalloc(net->n_stats + 1, sizeof *s->batch_stats);
    s->wino_w = xcalloc((size_t)n, sizeof *s->wino_w);
    s->wino_u = xcalloc((size_t)n, sizeof *s->wino_u);
    s->wino_u_flip = xcalloc((size_t)n, sizeof *s->wino_u_flip);
    s->wino_ready = xcalloc((size_t)n, sizeof *s->wino_ready);

    for (int i = 0; i < n; i++) {
        const Layer *l = &net->layers[i];
        size_t patches;

        if (i < first || i >= last) {
            if (l->kind == LAYER_CONV)
                cm = 1;
            else if (l->kind == LAYER_DENSE || l->kind == LAYER_FLATTEN)
                cm = 0;
            s->channel_major[i] = cm;
            continue;
        }
        if (l->kind == LAYER_RELU && i > first) {
            s->aliased[i] = 1;
            s->out[i] = s->out[i - 1];
            s->dout[i] = s->dout[i - 1];
        } else {
            if (temps || !output_feeds_pool_only(net, i, last))
                s->out[i] = alloc_floats(out_size(l) * mb);
            if (temps)
                s->dout[i] = alloc_floats(out_size(l) * mb);
        }
        switch (l->kind) {
        case LAYER_CONV:
            patches = conv_patches(l) * conv_chunk_samples(l, (int)mb);
            if (patches > max_col)
                max_col = patches;
            if (l->bias_offset - l->weight_offset > max_dw_t)
                max_dw_t = l->bias_offset - l->weight_offset;
            wino_sizes(l, (int)mb, &max_wino, &max_wino_u);
            if (temps)
                wino_cache_create(s, i, l);
            cm = 1;
            break;
        case LAYER_POOL:
            if (pool_is_fused(net, i, last))
                s->codes[i] = xmalloc(out_size(l) * mb);
            else
                s->argmax[i] = xmalloc(out_size(l) * mb * sizeof(int32_t));
            break;
        case LAYER_DROPOUT:
            s->mask[i] = alloc_floats(out_size(l) * mb);
            break;
        case LAYER_DENSE:
            if (cm) {
                s->flat[i] = alloc_floats(in_size(l) * mb);
                if (i > 0 && in_size(l) * mb > max_dflat)
                    max_dflat = in_size(l) * mb;
            }
            if (out_size(l) * mb > max_dense_t)
                max_dense_t = out_size(l) * mb;
            cm = 0;
            break;
        case LAYER_FLATTEN:
            cm = 0;
            break;
        case LAYER_BN:
            s->inv_std[i] = alloc_floats((size_t)l->out_c);
            break;
        case LAYER_RELU:
            break;
        }
        s->channel_major[i] = cm;
    }
    if (temps) {
        s->col = max_col > 0 ? alloc_floats(max_col) : NULL;
        s->dflat = max_dflat > 0 ? alloc_floats(max_dflat) : NULL;
        s->dense_t = max_dense_t > 0 ? alloc_floats(max_dense_t) : NULL;
        s->dw_t = max_dw_t > 0 ? alloc_floats(max_dw_t) : NULL;
        if (max_wino > 0) {
            s->wino = alloc_floats(max_wino);
            s->wino_temp = alloc_floats(max_wino_u);
        }
    }
    return s;
}

NetScratch *net_scratch_create(const Net *net, int max_batch)
{
    return scratch_create(net, max_batch, 0, net->n_layers, 1);
}

void net_scratch_free(NetScratch *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n_layers; i++) {
        if (!s->aliased[i]) {
            free(s->out[i]);
            free(s->dout[i]);
        }
        free(s->flat[i]);
        free(s->argmax[i]);
        free(s->codes[i]);
        free(s->mask[i]);
        free(s->inv_std[i]);
        free(s->wino_w[i]);
        free(s->wino_u[i]);
        free(s->wino_u_flip[i]);
    }
    free(s->channel_major);
    free(s->aliased);
    free(s->out);
    free(s->dout);
    free(s->flat);
    free(s->argmax);
    free(s->codes);
    free(s->mask);
    free(s->inv_std);
    free(s->batch_stats);
    free(s->col);
    free(s->dflat);
    free(s->dense_t);
    free(s->dw_t);
    free(s->wino);
    free(s->wino_temp);
    free(s->wino_w);
    free(s->wino_u);
    free(s->wino_u_flip);
    free(s->wino_ready);
    free(s);
}

/* ---------------------------------------------------------------- layouts */

/* Copies N samples of C planes of HW floats from channel-major X (plane
 * (c, s) at (c*N + s)*HW) to sample-major Y (plane (s, c) at
 * (s*C + c)*HW). */
static void to_sample_major(const float *x, int n, int c, size_t hw,
                            float *y)
{
    for (int ch = 0; ch < c; ch++)
        for (int s = 0; s < n; s++)
            memcpy(y + ((size_t)s * c + ch) * hw,
                   x + ((size_t)ch * n + s) * hw, hw * sizeof *y);
}

/* The inverse of to_sample_major. */
static void to_channel_major(const float *x, int n, int c, size_t hw,
                             float *y)
{
    for (int ch = 0; ch < c; ch++)
        for (int s = 0; s < n; s++)
            memcpy(y + ((size_t)ch * n + s) * hw,
                   x + ((size_t)s * c + ch) * hw, hw * sizeof *y);
}

/* Returns the sum of COUNT floats. Eight interleaved partial sums break
 * the chain of dependent additions and let the compiler use vector adds,
 * where a single running sum waits out the add latency on every element. */
static double sum_floats(const float *x, size_t count)
{
    float lane[8] = {0};
    double sum = 0.0;
    size_t j = 0;

    for (; j + 8 <= count; j += 8)
        for (int q = 0; q < 8; q++)
            lane[q] += x[j + q];
    for (int q = 0; q < 8; q++)
        sum += lane[q];
    for (; j < count; j++)
        sum += x[j];
    return sum;
}

/* ---------------------------------------------------------------- conv */

/* Where sample S0 of an activation of N samples starts, and the strides
 * between its samples and between its planes, for im2col and col2im. */
typedef struct {
    size_t offset, sample_stride, plane_stride;
} PlaneWalk;

static PlaneWalk conv_planes(const Layer *l, int x_cm, int n, int s0)
{
    size_t hw = (size_t)l->in_h * l->in_w;
    PlaneWalk w;

    if (x_cm) {
        w.offset = s0 * hw;
        w.sample_stride = hw;
        w.plane_stride = hw * n;
    } else {
        w.offset = s0 * hw * l->in_c;
        w.sample_stride = hw * l->in_c;
        w.plane_stride = hw;
    }
    return w;
}

/*
 * Lowers samples S0..S0+NS-1 of the N samples in X into COL, a
 * (C*K*K) x (NS*OH*OW) matrix with sample s0+j in columns
 * [j*OH*OW, (j+1)*OH*OW). One product with the F x (C*K*K) weights then
 * convolves the whole chunk, and one large GEMM keeps the micro-kernel
 * busy where NS small ones would spend their time packing.
 */
static void conv_lower(const Layer *l, const float *x, int x_cm, int n,
                       int s0, int ns, float *col)
{
    ConvGeom g = conv_geom(l);
    PlaneWalk w = conv_planes(l, x_cm, n, s0);

    im2col(&g, ns, x + w.offset, w.sample_stride, w.plane_stride, col,
           (size_t)ns * l->out_h * l->out_w);
}

/* Y (F x N*OH*OW, channel-major) = W (F x C*K*K) * patches + bias,
 * followed by ReLU when RELU is set, one chunk of samples at a time with
 * S's col holding the chunk's patches. The GEMM adds the bias and
 * applies ReLU as it stores each tile, which saves a pass over Y. When
 * conv_forward_winograd returns 1, winograd_conv computes Y instead, and
 * for a single input channel direct_conv_forward does. */
static void conv_forward(const Layer *l, int li, const float *params,
                         const float *x, int x_cm, int n, const NetScratch *s,
                         float *y, int relu)
{
    int kdim = l->in_c * l->k * l->k;
    int ohw = l->out_h * l->out_w, cols = ohw * n;
    int chunk = conv_chunk_samples(l, n);
    float *col = s->col;
    ConvGeom g = conv_geom(l);
    PlaneWalk pw = conv_planes(l, x_cm, n, 0);

    if (direct_supported(&g, gemm_kernel())) {
        direct_conv_forward(gemm_kernel(), &g, l->out_c, n, x,
                            pw.sample_stride, params + l->weight_offset,
                            params + l->bias_offset, relu, y, (size_t)ohw,
                            (size_t)cols);
        return;
    }
    if (conv_forward_winograd(l)) {
        const float *u = wino_weights(s, li, l, params + l->weight_offset,
                                      0);

        winograd_conv(&g, l->out_c, n, x, pw.sample_stride, pw.plane_stride,
                      u, params + l->bias_offset, relu, y, (size_t)ohw,
                      (size_t)cols, s->wino, net_wino_chunk_samples(l, n));
        return;
    }
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int ns = chunk < n - s0 ? chunk : n - s0;

        conv_lower(l, x, x_cm, n, s0, ns, col);
        sgemm_bias_relu(l->out_c, ns * ohw, kdim, params + l->weight_offset,
                        kdim, col, ns * ohw, params + l->bias_offset, relu,
                        y + (size_t)s0 * ohw, cols);
    }
}

/* The convolution L, its ReLU when RELU is set and the 2x2 pooling
 * after them in one pass, for fused_pool_layer: Y and CODES are the
 * pooling layer's output and codes, channel-major. */
static void conv_pool_forward(const Layer *l, const float *params,
                              const float *x, int x_cm, int n, float *y,
                              uint8_t *codes, int relu)
{
    ConvGeom g = conv_geom(l);
    PlaneWalk pw = conv_planes(l, x_cm, n, 0);
    size_t pooled = (size_t)(l->out_h / 2) * (l->out_w / 2);

    direct_conv_pool_forward(gemm_kernel(), &g, l->out_c, n, x,
                             pw.sample_stride, params + l->weight_offset,
                             params + l->bias_offset, relu, y, codes,
                             pooled, pooled * n);
}

/*
 * From DY (F x N*OH*OW) and the input X: dW = DY * patches^T,
 * db = row sums of DY, and when DX is not NULL, dX from the patch
 * gradient W^T * DY. Chunk by chunk, the input is lowered again into
 * s->col, which first feeds the weight gradient and then receives the
 * chunk's patch gradient for col2im.
 *
 * The weight gradient is formed transposed, dW^T = patches * DY^T, summed
 * over the chunks in s->dw_t and transposed into GRAD at the end. That
 * form puts the C*K*K side of the product in M. A first layer over one
 * channel (9 x 32 for 3x3 kernels) then pads 9 rows up to the tile
 * instead of 9 columns. For the second layer of "tf" (800 x 64) it ran
 * 12% faster than the direct form on an Intel Xeon.
 *
 * When conv_input_grad_winograd returns 1, dX comes instead from
 * winograd_conv over DY with the rotated kernels, and when
 * conv_weight_grad_winograd does, dW from winograd_weight_grad. For a
 * single input channel, direct_conv_weight_grad gives dW. These run
 * after the loop, which then has nothing to lower.
 */
static void conv_backward(const Layer *l, int li, const float *params,
                          float *grad,
                          const float *x, int x_cm, const float *dy, int n,
                          const NetScratch *s, float *dx)
{
    int kdim = l->in_c * l->k * l->k, f = l->out_c;
    int ohw = l->out_h * l->out_w, cols = ohw * n;
    int chunk = conv_chunk_samples(l, n);
    const float *w = params + l->weight_offset;
    float *col = s->col, *dw_t = s->dw_t, *dw = grad + l->weight_offset;
    ConvGeom g = conv_geom(l);
    int wino_dx = dx != NULL && conv_input_grad_winograd(l);
    int direct_dw = direct_supported(&g, gemm_kernel());
    int wino_dw = !direct_dw && conv_weight_grad_winograd(l);
    int col_dw = !direct_dw && !wino_dw;
    float *col_dx = wino_dx ? NULL : dx;

    if (col_dx != NULL)
        memset(col_dx, 0, in_size(l) * n * sizeof *col_dx);
    for (int s0 = 0; s0 < n && (col_dw || col_dx != NULL); s0 += chunk) {
        int ns = chunk < n - s0 ? chunk : n - s0, c = ns * ohw;
        const float *dyc = dy + (size_t)s0 * ohw;

        if (col_dw) {
            conv_lower(l, x, x_cm, n, s0, ns, col);
            sgemm(GEMM_NOTRANS, GEMM_TRANS, kdim, f, c, 1.0f, col, c, dyc,
                  cols, s0 > 0 ? 1.0f : 0.0f, dw_t, f);
        }
        if (col_dx == NULL)
            continue;
        PlaneWalk pw = conv_planes(l, x_cm, n, s0);

        sgemm(GEMM_TRANS, GEMM_NOTRANS, kdim, c, f, 1.0f, w, kdim, dyc, cols,
              0.0f, col, c);
        col2im(&g, ns, col, (size_t)c, col_dx + pw.offset, pw.sample_stride,
               pw.plane_stride);
    }
    if (wino_dx) {
        ConvGeom gi = conv_input_grad_geom(l);
        PlaneWalk pw = conv_planes(l, x_cm, n, 0);
        const float *u = wino_weights(s, li, l, w, 1);

        winograd_conv(&gi, l->in_c, n, dy, (size_t)ohw, (size_t)cols, u,
                      NULL, 0, dx, pw.sample_stride, pw.plane_stride, s->wino,
                      net_wino_chunk_samples(l, n));
    }
    if (direct_dw) {
        PlaneWalk pw = conv_planes(l, x_cm, n, 0);

        direct_conv_weight_grad(gemm_kernel(), &g, f, n, x, pw.sample_stride,
                                dy, (size_t)ohw, (size_t)cols, dw);
    } else if (wino_dw) {
        PlaneWalk pw = conv_planes(l, x_cm, n, 0);

        winograd_weight_grad(&g, f, n, x, pw.sample_stride, pw.plane_stride,
                             dy, (size_t)ohw, (size_t)cols, dw, s->wino,
                             net_wino_chunk_samples(l, n));
    } else {
        for (int r = 0; r < f; r++)
            for (int q = 0; q < kdim; q++)
                dw[(size_t)r * kdim + q] = dw_t[(size_t)q * f + r];
    }
    for (int r = 0; r < f; r++)
        grad[l->bias_offset + r] = (float)sum_floats(dy + (size_t)r * cols,
                                                     (size_t)cols);
}

/* Writes the weight and bias gradients of convolution L, a first layer
 * whose input gradient is not needed. They come from the output gradient
 * DP and codes CODES of the pooling layer that fused_pool_layer gives for
 * it. */
static void conv_pool_backward(const Layer *l, float *grad, const float *x,
                               int x_cm, const float *dp,
                               const uint8_t *codes, int n)
{
    ConvGeom g = conv_geom(l);
    PlaneWalk pw = conv_planes(l, x_cm, n, 0);
    size_t pooled = (size_t)(l->out_h / 2) * (l->out_w / 2);

    direct_conv_pool_weight_grad(gemm_kernel(), &g, l->out_c, n, x,
                                 pw.sample_stride, dp, codes, pooled,
                                 pooled * n, grad + l->weight_offset,
                                 grad + l->bias_offset);
}

int net_conv_pool_fused(const Net *net, int i)
{
    return fused_pool_layer(net, i, net->n_layers);
}

/* ---------------------------------------------------------------- pool */

static void pool_forward(const Layer *l, const float *x, int n, float *y,
                         int32_t *argmax)
{
    pool2_forward((size_t)l->in_c * n, l->in_h, l->in_w, x, y, argmax);
}

/* Y (the pooled output) passes the gradient only where Y > 0 when it is
 * not NULL: that is the mask of a ReLU in place just before the pooling. */
static void pool_backward(const Layer *l, const float *dy,
                          const int32_t *argmax, const float *y, int n,
                          float *dx)
{
    pool2_backward((size_t)l->in_c * n, l->in_h, l->in_w, dy, argmax, y,
                   dx);
}

/* ---------------------------------------------------------------- dense */

/* Units (forward) or input columns (input gradient) of a dense product
 * per part when net_head_train shares it among threads. It is a multiple
 * of the GEMM's register tiles. It gives "small" (128 units, 1600
 * inputs) 2 and 25 parts, and "tf" (1024 units, 3136 inputs) 16 and 49. */
#define DENSE_PART_COLS 64

/* Rows of a dense layer's weight gradient per part: one A block of the
 * blocked GEMM (MC in gemm.c), so a part is one sweep of the micro-kernel
 * over the layer's inputs. */
#define DENSE_PART_ROWS 96

/* Dense layers of up to this many units compute their forward pass as
 * dot products straight into the sample-major output (sgemm_dot). With the
 * AVX2 and AVX-512 kernels that gives the same outputs as the transposed
 * product, which takes sgemm's dot path up to 32 rows. On a Zen 4, a
 * 10-unit layer over 64 samples took 1.6 us against 1.8 us for the
 * transposed product and 0.7 us for copying that back. */
#define DENSE_DOT_UNITS 32

/* Runs FN for parts 0..N_PARTS-1 through S's parallel-for when SPLIT is
 * set and S has one, else in order on this thread. */
static void run_parts(const NetScratch *s, int split, int n_parts,
                      NetPartFn fn, void *arg)
{
    if (split && s->pfor != NULL && n_parts > 1) {
        s->pfor(s->pfor_ctx, n_parts, fn, arg);
        return;
    }
    for (int p = 0; p < n_parts; p++)
        fn(arg, p);
}

/* Returns 1 when a dense product of WORK multiply-adds is worth sharing
 * through S's parallel-for, else 0. */
static int dense_split(const NetScratch *s, double work)
{
    return s->pfor != NULL && work >= (double)NET_DENSE_SPLIT_MIN;
}

/* Returns the number of blocks of BLOCK in COUNT when SPLIT is set, else
 * 1, so a single thread makes one call over everything. */
static int part_count(int split, int count, int block)
{
    return split ? (count + block - 1) / block : 1;
}

/* Arguments of the parts of one dense layer's forward or backward pass
 * over N sample-major rows. Each GEMM's entries depend only on their row
 * and column, not on how the columns or rows are split (see the row and
 * column split tests of gemm), so the parts give the same result on any
 * number of threads. */
typedef struct {
    const Layer *l;
    const float *w, *b;   /* weights (OUT x IN) and biases */
    const float *x;       /* N x IN inputs */
    const float *dy;      /* N x OUT output gradients (backward) */
    float *y;             /* N x OUT outputs (forward) */
    float *y_t;           /* OUT x N: Y transposed, before bias (forward) */
    float *dx;            /* N x IN input gradients, or NULL */
    float *grad;          /* parameter gradients, or NULL */
    int n, relu;
    int cols, rows;       /* columns or rows per part */
    int grad_parts;       /* backward: parts 0.. are weight gradients */
} DenseJob;

/* Writes rows C0..C1-1 of Y_T (OUT x N, rows N apart) into columns
 * C0..C1-1 of Y (N x OUT, rows LDY apart), adding BIAS[o] to unit o and
 * clamping at 0 when RELU is set. It copies through 16 x 16 tiles on the
 * stack. A direct strided copy ran about eight times as long, most likely
 * because its loads waited on earlier stores 4 KB apart. */
static void transpose_bias_relu(const float *y_t, int n, const float *bias,
                                int relu, int c0, int c1, float *y,
                                size_t ldy)
{
    float tile[16][16];

    for (int o0 = c0; o0 < c1; o0 += 16) {
        int units = c1 - o0 < 16 ? c1 - o0 : 16;

        for (int s0 = 0; s0 < n; s0 += 16) {
            int samples = n - s0 < 16 ? n - s0 : 16;

            for (int o = 0; o < units; o++)
                for (int s = 0; s < samples; s++) {
                    float v = y_t[(size_t)(o0 + o) * n + s0 + s]
                              + bias[o0 + o];

                    tile[s][o] = relu && v < 0.0f ? 0.0f : v;
                }
            /* A constant size lets the compiler copy full tiles inline
             * instead of calling memcpy per row. */
            for (int s = 0; s < samples; s++)
                memcpy(y + (size_t)(s0 + s) * ldy + o0, tile[s],
                       units == 16 ? sizeof tile[s]
                                   : (size_t)units * sizeof *y);
        }
    }
}

/* Adds BIAS[o] to columns C0..C1-1 of the N rows of Y (rows LDY apart),
 * clamping at 0 when RELU is set: the same sums as transpose_bias_relu. */
static void bias_relu_columns(float *y, size_t ldy, int n, const float *bias,
                              int relu, int c0, int c1)
{
    for (int s = 0; s < n; s++) {
        float *row = y + (size_t)s * ldy;

        for (int o = c0; o < c1; o++) {
            float v = row[o] + bias[o];

            row[o] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/*
 * Computes units part*cols.. of Y = X * W^T + b, then ReLU if set.
 *
 * Up to DENSE_DOT_UNITS units, each output is a dot product of a sample's
 * row of X with a unit's row of W, written straight into Y. Above that
 * the product is formed transposed, as rows of W * X^T, so the weights are
 * the GEMM's A operand. For a few samples it reads A in place, whereas as
 * B they would be transposed into panels on every call. The bias and ReLU
 * are then applied while copying back into Y.
 */
static void dense_forward_part(void *arg, int part)
{
    const DenseJob *j = arg;
    int in = (int)in_size(j->l), out = j->l->out_c, n = j->n;
    int c0 = part * j->cols;
    int c1 = c0 + j->cols < out ? c0 + j->cols : out;

    if (c1 - c0 <= DENSE_DOT_UNITS) {
        sgemm_dot(n, c1 - c0, in, 1.0f, j->x, in, j->w + (size_t)c0 * in, in,
                  0.0f, j->y + c0, out);
        bias_relu_columns(j->y, out, n, j->b, j->relu, c0, c1);
        return;
    }
    sgemm(GEMM_NOTRANS, GEMM_TRANS, c1 - c0, n, in, 1.0f,
          j->w + (size_t)c0 * in, in, j->x, in, 0.0f, j->y_t + (size_t)c0 * n,
          n);
    transpose_bias_relu(j->y_t, n, j->b, j->relu, c0, c1, j->y, out);
}

/* Y (N x OUT) = X (N x IN) * W^T + b, where W is OUT x IN, followed by
 * ReLU when RELU is set. A channel-major X is first copied sample-major
 * into FLAT. Y_T has room for OUT x N floats. */
static void dense_forward(const Layer *l, const float *params, const float *x,
                          int x_cm, int n, float *flat, float *y_t, float *y,
                          int relu, const NetScratch *s)
{
    DenseJob job = {0};
    int split = dense_split(s, (double)n * in_size(l) * l->out_c);

    if (x_cm) {
        to_sample_major(x, n, l->in_c, (size_t)l->in_h * l->in_w, flat);
        x = flat;
    }
    job.l = l;
    job.w = params + l->weight_offset;
    job.b = params + l->bias_offset;
    job.x = x;
    job.y = y;
    job.y_t = y_t;
    job.n = n;
    job.relu = relu;
    job.cols = split ? DENSE_PART_COLS : l->out_c;
    run_parts(s, split, part_count(split, l->out_c, DENSE_PART_COLS),
              dense_forward_part, &job);
}

/* Writes rows R0..R1-1 of dW = DY^T * X and of db = column sums of DY,
 * over N samples: DY is N x OUT and X is N x IN, sample-major. The bias
 * sums run in sample order in double. */
static void dense_param_grad(const Layer *l, const float *dy, int out,
                             const float *x, int n, int r0, int r1,
                             float *grad)
{
    int in = (int)in_size(l);

    sgemm(GEMM_TRANS, GEMM_NOTRANS, r1 - r0, in, n, 1.0f, dy + r0, out, x,
          in, 0.0f, grad + l->weight_offset + (size_t)r0 * in, in);
    /* Sixteen units at a time, so each sample's row of DY is read once
     * per block rather than once per unit at a stride of OUT floats. */
    for (int o0 = r0; o0 < r1; o0 += 16) {
        int units = r1 - o0 < 16 ? r1 - o0 : 16;
        double sum[16] = {0.0};

        for (int s = 0; s < n; s++)
            for (int o = 0; o < units; o++)
                sum[o] += dy[(size_t)s * out + o0 + o];
        for (int o = 0; o < units; o++)
            grad[l->bias_offset + o0 + o] = (float)sum[o];
    }
}

/* Part PART of a dense backward pass: rows of dW and db for the first
 * grad_parts parts, then columns of DX = DY * W. */
static void dense_backward_part(void *arg, int part)
{
    const DenseJob *j = arg;
    int in = (int)in_size(j->l), out = j->l->out_c;

    if (part < j->grad_parts) {
        int r0 = part * j->rows;
        int r1 = r0 + j->rows < out ? r0 + j->rows : out;

        dense_param_grad(j->l, j->dy, out, j->x, j->n, r0, r1, j->grad);
        return;
    }
    int c0 = (part - j->grad_parts) * j->cols;
    int c1 = c0 + j->cols < in ? c0 + j->cols : in;

    sgemm(GEMM_NOTRANS, GEMM_NOTRANS, j->n, c1 - c0, out, 1.0f, j->dy, out,
          j->w + c0, in, 0.0f, j->dx + c0, in);
}

/* dW = DY^T * X and db = column sums of DY when GRAD is not NULL, and
 * when DX is not NULL, DX = DY * W (transposed back to channel-major
 * through DFLAT if the input was channel-major). */
static void dense_backward(const Layer *l, const float *params, float *grad,
                           const float *x, int x_cm, const float *flat,
                           const float *dy, int n, float *dflat, float *dx,
                           const NetScratch *s)
{
    int in = (int)in_size(l), out = l->out_c;
    DenseJob job = {0};
    int dx_parts = 0;
    int split = dense_split(s, (double)n * in * out);

    job.l = l;
    job.w = params + l->weight_offset;
    job.x = x_cm ? flat : x;
    job.dy = dy;
    job.dx = x_cm ? dflat : dx;
    job.grad = grad;
    job.n = n;
    job.rows = split ? DENSE_PART_ROWS : out;
    job.cols = split ? DENSE_PART_COLS : in;
    job.grad_parts = grad != NULL ? part_count(split, out, DENSE_PART_ROWS)
                                  : 0;
    if (dx != NULL)
        dx_parts = part_count(split, in, DENSE_PART_COLS);
    run_parts(s, split, job.grad_parts + dx_parts, dense_backward_part,
              &job);
    if (dx != NULL && x_cm)
        to_channel_major(dflat, n, l->in_c, (size_t)l->in_h * l->in_w, dx);
}

/* ---------------------------------------------------------------- batch */

/* Part P of net_batch_grad: rows ROW0..ROW1-1 of dense layer LAYER. */
typedef struct {
    int layer;
    int row0, row1;
} BatchPart;

struct NetBatch {
    int max_batch;
    int n_layers;
    float **x;            /* per dense layer: max_batch x IN inputs */
    float **dy;           /* per dense layer: max_batch x OUT gradients */
    int n_parts;
    BatchPart *parts;
};

int net_grad_per_batch(const Layer *l)
{
    return l->kind == LAYER_DENSE;
}

/* Lists the parts of NET in layer order, or counts them when PARTS is
 * NULL. Returns the count. */
static int list_parts(const Net *net, BatchPart *parts)
{
    int count = 0;

    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];

        if (!net_grad_per_batch(l))
            continue;
        for (int r = 0; r < l->out_c; r += DENSE_PART_ROWS) {
            if (parts != NULL) {
                parts[count].layer = i;
                parts[count].row0 = r;
                parts[count].row1 = r + DENSE_PART_ROWS < l->out_c
                                    ? r + DENSE_PART_ROWS : l->out_c;
            }
            count++;
        }
    }
    return count;
}

int net_batch_grad_parts(const Net *net)
{
    return list_parts(net, NULL);
}

NetBatch *net_batch_create(const Net *net, int max_batch)
{
    NetBatch *b = xcalloc(1, sizeof *b);
    size_t mb = (size_t)(max_batch > 0 ? max_batch : 1);

    b->max_batch = (int)mb;
    b->n_layers = net->n_layers;
    b->x = xcalloc((size_t)net->n_layers, sizeof *b->x);
    b->dy = xcalloc((size_t)net->n_layers, sizeof *b->dy);
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];

        if (!net_grad_per_batch(l))
            continue;
        b->x[i] = alloc_floats(in_size(l) * mb);
        b->dy[i] = alloc_floats((size_t)l->out_c * mb);
    }
    b->n_parts = list_parts(net, NULL);
    b->parts = xcalloc((size_t)b->n_parts + 1, sizeof *b->parts);
    list_parts(net, b->parts);
    return b;
}

void net_batch_free(NetBatch *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->n_layers; i++) {
        free(b->x[i]);
        free(b->dy[i]);
    }
    free(b->x);
    free(b->dy);
    free(b->parts);
    free(b);
}

/* Copies the N sample-major input rows X and output-gradient rows DY of
 * dense layer I (L) to rows FIRST.. of B. */
static void batch_keep_rows(NetBatch *b, const Layer *l, int i, int first,
                            const float *x, const float *dy, int n)
{
    size_t in = in_size(l), out = (size_t)l->out_c;

    assert(first + n <= b->max_batch);
    memcpy(b->x[i] + (size_t)first * in, x, (size_t)n * in * sizeof *x);
    memcpy(b->dy[i] + (size_t)first * out, dy, (size_t)n * out * sizeof *dy);
}

void net_batch_grad(const Net *net, const NetBatch *batch, int n, int part,
                    float *grad)
{
    const BatchPart *p = &batch->parts[part];
    const Layer *l = &net->layers[p->layer];

    assert(part >= 0);
    assert(part < batch->n_parts);
    assert(n > 0);
    assert(n <= batch->max_batch);
    dense_param_grad(l, batch->dy[p->layer], l->out_c, batch->x[p->layer], n,
                     p->row0, p->row1, grad);
}

/* ---------------------------------------------------------------- relu, dropout */

static void relu_forward(float *y, size_t count)
{
    for (size_t j = 0; j < count; j++)
        y[j] = y[j] > 0.0f ? y[j] : 0.0f;
}

/* Y > 0 exactly where the input was positive, so the output serves as the
 * mask; D is the gradient, masked in place. */
static void relu_backward(const float *restrict y, float *restrict d,
                          size_t count)
{
    /* Loading d unconditionally lets the compiler turn the select into a
     * vector blend; a conditional load would keep it a branch. */
    for (size_t j = 0; j < count; j++) {
        float g = d[j];
        d[j] = y[j] > 0.0f ? g : 0.0f;
    }
}

/* Inverted dropout: each value survives with probability 1 - rate and is
 * scaled by 1 / (1 - rate), so the expected output equals the input and
 * prediction needs no rescaling. Without RNG the layer is the identity. */
static void dropout_forward(const Layer *l, const float *x, size_t count,
                            Rng *rng, float *mask, float *y)
{
    if (rng == NULL) {
        memcpy(y, x, count * sizeof *y);
        return;
    }
    /* Indexed by the comparison rather than chosen by a branch, which the
     * random outcome mispredicted about half the time. */
    const float scale[2] = {0.0f, 1.0f / (1.0f - l->rate)};

    for (size_t j = 0; j < count; j++) {
        mask[j] = scale[rng_uniform(rng) >= l->rate];
        y[j] = x[j] * mask[j];
    }
}

static void dropout_backward(const float *mask, const float *dy,
                             size_t count, float *dx)
{
    for (size_t j = 0; j < count; j++)
        dx[j] = dy[j] * mask[j];
}

/* ---------------------------------------------------------------- bn */

/*
 * Batch normalisation keeps the layout of its input. Channel c of sample
 * s is a plane of HW = H*W floats, at (c*N + s)*HW when the input is
 * channel-major and at (s*C + c)*HW when it is sample-major. Dense
 * outputs are sample-major with HW = 1, so a unit is a channel.
 */
static size_t bn_plane(const Layer *l, int x_cm, int n, int c, int s)
{
    size_t hw = (size_t)l->in_h * l->in_w;

    return x_cm ? ((size_t)c * n + s) * hw : ((size_t)s * l->in_c + c) * hw;
}

/* Returns the sum of (X[j] - MEAN)^2 over COUNT floats, with the same
 * eight partial sums as sum_floats. */
static double sum_sq_dev(const float *x, size_t count, float mean)
{
    float lane[8] = {0};
    double sum = 0.0;
    size_t j = 0;

    for (; j + 8 <= count; j += 8)
        for (int q = 0; q < 8; q++) {
            float d = x[j + q] - mean;
            lane[q] += d * d;
        }
    for (int q = 0; q < 8; q++)
        sum += lane[q];
    for (; j < count; j++)
        sum += (double)(x[j] - mean) * (x[j] - mean);
    return sum;
}

/* Y = X * SCALE + SHIFT on COUNT floats, clamped at 0 when RELU is set. */
static void scale_shift(const float *restrict x, size_t count, float scale,
                        float shift, int relu, float *restrict y)
{
    for (size_t j = 0; j < count; j++) {
        float v = x[j] * scale + shift;
        y[j] = relu && v < 0.0f ? 0.0f : v;
    }
}

/*
 * Training mode: normalises each channel with the mean and biased variance
 * of its N*H*W values in X, then applies the scale gamma and shift beta.
 * The mean and variance go to STATS (Net.stats layout) and 1/sqrt(var +
 * eps) to INV_STD for the backward pass. The variance is computed in a
 * second pass around the mean, which loses fewer digits than E[x^2] -
 * E[x]^2 when the mean is large.
 */
static void bn_forward_train(const Layer *l, const float *params,
                             const float *x, int x_cm, int n, float *stats,
                             float *inv_std, float *y, int relu)
{
    int channels = l->in_c;
    size_t hw = (size_t)l->in_h * l->in_w;
    double count = (double)n * (double)hw;
    const float *gamma = params + l->weight_offset;
    const float *beta = params + l->bias_offset;
    float *mean_out = stats + l->stats_offset;
    float *var_out = mean_out + channels;

    for (int c = 0; c < channels; c++) {
        double sum = 0.0, sq = 0.0;

        for (int s = 0; s < n; s++)
            sum += sum_floats(x + bn_plane(l, x_cm, n, c, s), hw);
        float mean = (float)(sum / count);
        for (int s = 0; s < n; s++)
            sq += sum_sq_dev(x + bn_plane(l, x_cm, n, c, s), hw, mean);
        float var = (float)(sq / count);
        float istd = 1.0f / sqrtf(var + NET_BN_EPS);
        float scale = gamma[c] * istd;

        mean_out[c] = mean;
        var_out[c] = var;
        inv_std[c] = istd;
        for (int s = 0; s < n; s++) {
            size_t at = bn_plane(l, x_cm, n, c, s);
            scale_shift(x + at, hw, scale, beta[c] - mean * scale, relu,
                        y + at);
        }
    }
}

/* Evaluation mode: the same transform with the running mean and variance
 * of STATS (Net.stats) in place of the batch's. */
static void bn_forward_eval(const Layer *l, const float *params,
                            const float *stats, const float *x, int x_cm,
                            int n, float *y, int relu)
{
    int channels = l->in_c;
    size_t hw = (size_t)l->in_h * l->in_w;
    const float *mean = stats + l->stats_offset;
    const float *var = mean + channels;

    for (int c = 0; c < channels; c++) {
        float scale = params[l->weight_offset + c]
                      / sqrtf(var[c] + NET_BN_EPS);
        float shift = params[l->bias_offset + c] - mean[c] * scale;

        for (int s = 0; s < n; s++) {
            size_t at = bn_plane(l, x_cm, n, c, s);
            scale_shift(x + at, hw, scale, shift, relu, y + at);
        }
    }
}

/* Adds the sums of DY and of DY * (X - MEAN) * ISTD over COUNT floats to
 * SUMS[0] and SUMS[1], with eight partial sums as in sum_floats. */
static void bn_plane_sums(const float *restrict x, const float *restrict dy,
                          size_t count, float mean, float istd, double *sums)
{
    float lane_dy[8] = {0}, lane_dyx[8] = {0};
    size_t j = 0;

    for (; j + 8 <= count; j += 8)
        for (int q = 0; q < 8; q++) {
            lane_dy[q] += dy[j + q];
            lane_dyx[q] += dy[j + q] * ((x[j + q] - mean) * istd);
        }
    for (int q = 0; q < 8; q++) {
        sums[0] += lane_dy[q];
        sums[1] += lane_dyx[q];
    }
    for (; j < count; j++) {
        sums[0] += dy[j];
        sums[1] += (double)dy[j] * ((x[j] - mean) * istd);
    }
}

/* DX = K * (DY - MEAN_DY - xhat * MEAN_DY_XHAT) over COUNT floats. */
static void bn_plane_dx(const float *restrict x, const float *restrict dy,
                        size_t count, float mean, float istd, float k,
                        float mean_dy, float mean_dy_xhat,
                        float *restrict dx)
{
    for (size_t j = 0; j < count; j++) {
        float xhat = (x[j] - mean) * istd;
        dx[j] = k * (dy[j] - mean_dy - xhat * mean_dy_xhat);
    }
}

/*
 * With xhat = (x - mean) * inv_std recomputed from X, and M = N*H*W:
 *   dgamma = sum(dy * xhat), dbeta = sum(dy),
 *   dx = gamma * inv_std * (dy - sum(dy) / M - xhat * dgamma / M),
 * the last because the batch mean and variance depend on every x of the
 * channel. DX may be NULL for a first layer.
 */
static void bn_backward(const Layer *l, const float *params, float *grad,
                        const float *x, int x_cm, int n, const float *stats,
                        const float *inv_std, const float *dy, float *dx)
{
    int channels = l->in_c;
    size_t hw = (size_t)l->in_h * l->in_w;
    double count = (double)n * (double)hw;
    const float *mean = stats + l->stats_offset;

    for (int c = 0; c < channels; c++) {
        float mu = mean[c], istd = inv_std[c];
        double sums[2] = {0.0, 0.0};  /* sum(dy), sum(dy * xhat) */

        for (int s = 0; s < n; s++) {
            size_t at = bn_plane(l, x_cm, n, c, s);
            bn_plane_sums(x + at, dy + at, hw, mu, istd, sums);
        }
        grad[l->weight_offset + c] = (float)sums[1];
        grad[l->bias_offset + c] = (float)sums[0];
        if (dx == NULL)
            continue;

        float k = params[l->weight_offset + c] * istd;
        float mean_dy = (float)(sums[0] / count);
        float mean_dy_xhat = (float)(sums[1] / count);
        for (int s = 0; s < n; s++) {
            size_t at = bn_plane(l, x_cm, n, c, s);
            bn_plane_dx(x + at, dy + at, hw, mu, istd, k, mean_dy,
                        mean_dy_xhat, dx + at);
        }
    }
}

/* ---------------------------------------------------------------- passes */

/* Returns the monotonic clock in seconds. Profiles keep each layer's
 * fastest of many runs, which already drops runs slowed by other work, so
 * they need no CPU-time clock. In a virtual machine that clock is a system
 * call of about 0.5 us, against 22 ns for this one, which the vDSO serves:
 * a sixth of the time of a dense layer with 10 units. */
static double profile_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


static int is_relu(const Net *net, int i)
{
    return i >= 0 && i < net->n_layers && net->layers[i].kind == LAYER_RELU;
}

/* Arguments of dropout_shard: N sample-major rows of ROW floats. */
typedef struct {
    const Layer *l;
    const NetScratch *s;
    int n;
    size_t row;
    const float *x;
    float *mask, *y;
} DropoutJob;

/* Dropout over the rows of shard K, drawn from that shard's stream. */
static void dropout_shard(void *arg, int k)
{
    const DropoutJob *j = arg;
    int first = k * j->s->shard;
    int rows = j->n - first < j->s->shard ? j->n - first : j->s->shard;
    size_t at = (size_t)first * j->row;

    dropout_forward(j->l, j->x + at, (size_t)rows * j->row,
                    &j->s->shard_rngs[k], j->mask + at, j->y + at);
}

/* Dropout over N sample-major rows of ROW floats, each shard of
 * s->shard rows drawing from its own stream in s->shard_rngs: the masks a
 * shard gets are those it would get on its own. Each stream is used by
 * one part only, so the shards may run on any threads in any order. */
static void dropout_shards(const Layer *l, const NetScratch *s, int n,
                           size_t row, const float *x, float *mask, float *y)
{
    DropoutJob job = {l, s, n, row, x, mask, y};

    run_parts(s, 1, (n + s->shard - 1) / s->shard, dropout_shard, &job);
}

/* Runs layers FIRST..LAST-1 over N samples from input X (channel-major
 * when X_CM) and returns the output of layer LAST-1. Dropout is active
 * only when RNG or s->shard_rngs is not NULL. Batch normalisation uses
 * the batch's statistics when TRAIN is set and the running ones
 * otherwise. */
static const float *forward_range(const Net *net, NetScratch *s,
                                  const NetScratch *temp, const float *x,
                                  int x_cm, int first, int last, int n,
                                  Rng *rng, int train)
{
    for (int i = first; i < last; i++) {
        const Layer *l = &net->layers[i];
        float *y = s->out[i] != NULL ? s->out[i] : temp->out[i];
        size_t count = out_size(l) * n;
        int relu_next = is_relu(net, i + 1);
        double t0 = s->profile != NULL ? profile_clock() : 0.0;
        int pool = fused_pool_layer(net, i, last);

        /* The convolution's output is never written: it goes straight
         * into the pooling layer's, and the profile counts both layers'
         * time in the convolution's. */
        if (pool >= 0) {
            y = s->out[pool] != NULL ? s->out[pool] : temp->out[pool];
            conv_pool_forward(l, net->params, x, x_cm, n, y,
                              s->codes[pool], relu_next);
            if (s->profile != NULL) {
                s->profile[i].forward_seconds = profile_clock() - t0;
                for (int j = i + 1; j <= pool; j++)
                    s->profile[j].forward_seconds = 0.0;
            }
            x = y;
            x_cm = s->channel_major[pool];
            i = pool;
            continue;
        }
        switch (l->kind) {
        case LAYER_CONV:
            conv_forward(l, i, net->params, x, x_cm, n, temp, y,
                         relu_next);
            break;
        case LAYER_POOL:
            pool_forward(l, x, n, y, s->argmax[i]);
            break;
        case LAYER_FLATTEN:
            if (x_cm)
                to_sample_major(x, n, l->in_c, (size_t)l->in_h * l->in_w, y);
            else
                memcpy(y, x, count * sizeof *y);
            break;
        case LAYER_DENSE:
            dense_forward(l, net->params, x, x_cm, n, s->flat[i],
                          temp->dense_t, y, relu_next, s);
            break;
        case LAYER_RELU:
            /* Already applied by the convolution, dense or bn layer
             * before. */
            if (i > 0 && (net->layers[i - 1].kind == LAYER_CONV
                          || net->layers[i - 1].kind == LAYER_DENSE
                          || net->layers[i - 1].kind == LAYER_BN))
                break;
            if (!s->aliased[i])
                memcpy(y, x, count * sizeof *y);
            relu_forward(y, count);
            break;
        case LAYER_DROPOUT:
            if (s->shard_rngs != NULL)
                dropout_shards(l, s, n, out_size(l), x, s->mask[i], y);
            else
                dropout_forward(l, x, count, rng, s->mask[i], y);
            break;
        case LAYER_BN:
            if (train)
                bn_forward_train(l, net->params, x, x_cm, n, s->batch_stats,
                                 s->inv_std[i], y, relu_next);
            else
                bn_forward_eval(l, net->params, net->stats, x, x_cm, n, y,
                                relu_next);
            break;
        }
        if (s->profile != NULL)
            s->profile[i].forward_seconds = profile_clock() - t0;
        x = y;
        x_cm = s->channel_major[i];
    }
    return x;
}

/* Runs every layer over N images and returns the N x classes logits. */
static const float *forward(const Net *net, NetScratch *s,
                            const float *images, int n, Rng *rng, int train)
{
    return forward_range(net, s, s, images, 0, 0, net->n_layers, n, rng,
                         train);
}

/*
 * Propagates s->dout of layer LAST-1 back through layers LAST-1..FIRST,
 * writing their parameter gradients into GRAD. Layer FIRST's input is
 * INPUT (channel-major when INPUT_CM), and its input gradient goes to
 * DINPUT unless that is NULL. The temporaries of the pass, and the output
 * gradients when S has none (a trunk scratch), come from TEMP, which may
 * be S itself.
 */
static void backward_range(const Net *net, NetScratch *s, const float *input,
                           int input_cm, float *dinput, int first, int last,
                           int n, float *grad, const NetScratch *temp)
{
    float *const *dout = s->dout[last - 1] != NULL ? s->dout : temp->dout;
    /* A first convolution whose output the forward pass pooled directly
     * takes its gradients from the pooling layer's, unless its input
     * gradient is needed. The pooling's input gradient is then never
     * written, and the profile counts both layers' time in the
     * convolution's. */
    int pool = dinput == NULL ? fused_pool_layer(net, first, last) : -1;

    for (int i = last - 1; i >= first; i--) {
        const Layer *l = &net->layers[i];
        const float *x = i > first ? s->out[i - 1] : input;
        int x_cm = i > first ? s->channel_major[i - 1] : input_cm;
        float *dx = i > first ? dout[i - 1] : dinput;
        float *dy = dout[i];
        size_t count = out_size(l) * n;
        double t0 = s->profile != NULL ? profile_clock() : 0.0;

        if (pool >= 0 && i > first && i <= pool) {
            if (s->profile != NULL)
                s->profile[i].backward_seconds = 0.0;
            continue;
        }
        if (pool >= 0 && i == first) {
            conv_pool_backward(l, grad, x, x_cm, dout[pool], s->codes[pool],
                               n);
        } else if (l->kind == LAYER_CONV) {
            conv_backward(l, i, net->params, grad, x, x_cm, dy, n, temp,
                          dx);
        } else if (l->kind == LAYER_DENSE) {
            float *dense_grad = grad;

            if (s->batch != NULL) {
                batch_keep_rows(s->batch, l, i, s->batch_first,
                                x_cm ? s->flat[i] : x, dy, n);
                dense_grad = NULL;
            }
            dense_backward(l, net->params, dense_grad, x, x_cm, s->flat[i],
                           dy, n, temp->dflat, dx, s);
        } else if (l->kind == LAYER_BN) {
            bn_backward(l, net->params, grad, x, x_cm, n, s->batch_stats,
                        s->inv_std[i], dy, dx);
        } else if (dx == NULL) {
            continue;
        } else if (l->kind == LAYER_POOL && s->codes[i] != NULL) {
            pool2_backward_codes((size_t)l->in_c * n, l->in_h, l->in_w, dy,
                                 s->codes[i], dx);
        } else if (l->kind == LAYER_POOL) {
            pool_backward(l, dy, s->argmax[i],
                          is_relu(net, i - 1) ? s->out[i] : NULL, n, dx);
        } else if (l->kind == LAYER_FLATTEN) {
            if (x_cm)
                to_channel_major(dy, n, l->in_c, (size_t)l->in_h * l->in_w,
                                 dx);
            else
                memcpy(dx, dy, count * sizeof *dx);
        } else if (l->kind == LAYER_RELU) {
            /* In place (dx == dy), unless pooling already masked it. */
            if (net->layers[i + 1].kind != LAYER_POOL)
                relu_backward(s->out[i], dy, count);
        } else {
            dropout_backward(s->mask[i], dy, count, dx);
        }
        if (s->profile != NULL)
            s->profile[i].backward_seconds = profile_clock() - t0;
    }
}

/* Propagates s->dout of the last layer back through every layer to the
 * images, writing each layer's parameter gradients into GRAD. */
static void backward(const Net *net, NetScratch *s, const float *images,
                     int n, float *grad)
{
    backward_range(net, s, images, 0, NULL, 0, net->n_layers, n, grad, s);
}

/*
 * Writes the softmax of each row of LOGITS (N x CLASSES) to PROBS and
 * returns the summed cross-entropy of LABELS (when not NULL). The
 * log-sum-exp subtracts the row maximum first, so large logits cannot
 * overflow exp(). Counts argmax hits into *CORRECT when it is not NULL.
 */
static double softmax_xent(const float *logits, const uint8_t *labels, int n,
                           int classes, float *probs, int *correct)
{
    double loss = 0.0;

    for (int s = 0; s < n; s++) {
        const float *z = logits + (size_t)s * classes;
        float *p = probs + (size_t)s * classes;
        int best = 0;

        for (int c = 1; c < classes; c++)
            if (z[c] > z[best])
                best = c;
        double sum = 0.0;
        for (int c = 0; c < classes; c++)
            sum += exp((double)z[c] - z[best]);
        double lse = z[best] + log(sum);
        for (int c = 0; c < classes; c++)
            p[c] = (float)exp((double)z[c] - lse);

        if (labels != NULL) {
            assert(labels[s] < classes);
            loss += lse - z[labels[s]];
            if (correct != NULL && best == labels[s])
                (*correct)++;
        }
    }
    return loss;
}

double net_train_batch(const Net *net, NetScratch *scratch,
                       const float *images, const uint8_t *labels, int n,
                       float *grad, Rng *rng, int *correct)
{
    return net_train_shard(net, scratch, images, labels, n, grad, rng,
                           correct, NULL, 0);
}

double net_train_shard(const Net *net, NetScratch *scratch,
                       const float *images, const uint8_t *labels, int n,
                       float *grad, Rng *rng, int *correct, NetBatch *batch,
                       int first)
{
    assert(n > 0);
    assert(n <= scratch->max_batch);
    scratch->batch = batch;
    scratch->batch_first = first;
    int last = net->n_layers - 1;
    int classes = net->classes;
    const float *logits = forward(net, scratch, images, n, rng, 1);

    /* d(loss)/d(logit) = softmax - one-hot, computed in the last layer's
     * gradient buffer. */
    float *dlogits = scratch->dout[last];
    double loss = softmax_xent(logits, labels, n, classes, dlogits, correct);
    /* softmax_xent asserts labels[s] < classes, and the dataset loader
     * rejects files with larger labels. */
    for (int s = 0; s < n; s++)
        dlogits[(size_t)s * classes + labels[s]] -= 1.0f;

    backward(net, scratch, images, n, grad);
    scratch->batch = NULL;
    return loss;
}

/* ---------------------------------------------------------------- head */

int net_head_first(const Net *net)
{
    int i = 0;

    /* The parser ends every network with a dense layer. */
    while (net->layers[i].kind != LAYER_FLATTEN
           && net->layers[i].kind != LAYER_DENSE)
        i++;
    return i;
}

size_t net_head_width(const Net *net)
{
    return in_size(&net->layers[net_head_first(net)]);
}

int net_head_batched(const Net *net)
{
    for (int i = net_head_first(net); i < net->n_layers; i++)
        if (net->layers[i].kind == LAYER_BN)
            return 0;
    return 1;
}

NetScratch *net_trunk_scratch_create(const Net *net, int max_batch)
{
    return scratch_create(net, max_batch, 0, net_head_first(net), 0);
}

NetScratch *net_head_scratch_create(const Net *net, int max_batch)
{
    return scratch_create(net, max_batch, net_head_first(net), net->n_layers,
                          1);
}

void net_trunk_forward(const Net *net, NetScratch *scratch,
                       const float *images, int n, Rng *rng,
                       float *features, const NetScratch *temp)
{
    int h = net_head_first(net);
    size_t width = net_head_width(net);

    assert(n > 0);
    assert(n <= scratch->max_batch);
    assert(n <= temp->max_batch);
    if (h == 0) {
        memcpy(features, images, (size_t)n * width * sizeof *features);
        return;
    }

    const Layer *end = &net->layers[h - 1];
    const float *out = forward_range(net, scratch, temp, images, 0, 0, h, n,
                                     rng, 1);

    if (scratch->channel_major[h - 1])
        to_sample_major(out, n, end->out_c, (size_t)end->out_h * end->out_w,
                        features);
    else
        memcpy(features, out, (size_t)n * width * sizeof *features);
}

void net_trunk_backward(const Net *net, NetScratch *scratch,
                        const float *images, int n, const float *dfeatures,
                        float *grad, const NetScratch *temp)
{
    int h = net_head_first(net);
    size_t width = net_head_width(net);

    if (h == 0)
        return;
    assert(n <= scratch->max_batch);
    assert(n <= temp->max_batch);

    const Layer *end = &net->layers[h - 1];
    float *dy = temp->dout[h - 1];

    if (scratch->channel_major[h - 1])
        to_channel_major(dfeatures, n, end->out_c,
                         (size_t)end->out_h * end->out_w, dy);
    else
        memcpy(dy, dfeatures, (size_t)n * width * sizeof *dy);
    backward_range(net, scratch, images, 0, NULL, 0, h, n, grad, temp);
}

double net_head_train(const Net *net, NetScratch *head, const float *features,
                      const uint8_t *labels, int n, int shard,
                      Rng *shard_rngs, float *grad, float *dfeatures,
                      int *correct, NetParallelFor pfor, void *ctx)
{
    int h = net_head_first(net), last = net->n_layers - 1;
    int classes = net->classes;

    assert(n > 0);
    assert(n <= head->max_batch);
    assert(shard > 0);
    head->pfor = pfor;
    head->pfor_ctx = ctx;
    head->shard_rngs = shard_rngs;
    head->shard = shard;

    const float *logits = forward_range(net, head, head, features, 0, h,
                                        net->n_layers, n, NULL, 1);
    float *dlogits = head->dout[last];
    double loss = softmax_xent(logits, labels, n, classes, dlogits, correct);

    for (int s = 0; s < n; s++)
        dlogits[(size_t)s * classes + labels[s]] -= 1.0f;
    /* Without a trunk the feature gradients are those of the images,
     * which nothing needs. */
    backward_range(net, head, features, 0, h > 0 ? dfeatures : NULL, h,
                   net->n_layers, n, grad, head);

    head->pfor = NULL;
    head->pfor_ctx = NULL;
    head->shard_rngs = NULL;
    return loss;
}

void net_predict(const Net *net, NetScratch *scratch, const float *images,
                 int n, float *probs)
{
    size_t sample = (size_t)net->in_c * net->in_h * net->in_w;

    for (int first = 0; first < n; first += scratch->max_batch) {
        int count = n - first < scratch->max_batch ? n - first
                                                   : scratch->max_batch;
        const float *logits = forward(net, scratch, images + first * sample,
                                      count, NULL, 0);
        softmax_xent(logits, NULL, count, net->classes,
                     probs + (size_t)first * net->classes, NULL);
    }
}

/* Returns the forward FLOPs of layer L over N samples: twice its
 * multiply-adds for convolutions and dense layers, 0 for the rest. */
static double layer_flops(const Layer *l, int n)
{
    double macs = 0.0;

    if (l->kind == LAYER_CONV)
        macs = (double)l->out_c * l->in_c * l->k * l->k * l->out_h * l->out_w;
    else if (l->kind == LAYER_DENSE)
        macs = (double)l->out_c * in_size(l);
    return 2.0 * macs * n;
}

struct NetProfiler {
    const Net *net;
    int n, shard, n_shards;
    int batched;             /* net_head_batched(net) */
    NetScratch **trunk;      /* batched: one trunk scratch per shard */
    NetScratch *head;        /* batched: the head for N rows */
    NetScratch *temp;        /* a full scratch for SHARD samples */
    NetBatch *rows;          /* not batched: the dense layers' rows */
    float *features, *dfeatures, *grad;
    Rng *rngs;               /* one stream per shard */
    NetLayerProfile *run;    /* timings of one call */
};

NetProfiler *net_profiler_create(const Net *net, int n, int shard)
{
    NetProfiler *p = xcalloc(1, sizeof *p);
    size_t width = net_head_width(net);

    p->net = net;
    p->n = n;
    p->shard = shard;
    p->n_shards = (n + shard - 1) / shard;
    p->batched = net_head_batched(net);
    p->temp = net_scratch_create(net, shard);
    p->grad = alloc_floats(net->n_params);
    p->rngs = xcalloc((size_t)p->n_shards, sizeof *p->rngs);
    p->run = xcalloc((size_t)net->n_layers, sizeof *p->run);
    if (p->batched) {
        p->trunk = xcalloc((size_t)p->n_shards, sizeof *p->trunk);
        for (int k = 0; k < p->n_shards; k++)
            p->trunk[k] = net_trunk_scratch_create(net, shard);
        p->head = net_head_scratch_create(net, n);
        p->features = alloc_floats((size_t)n * width);
        p->dfeatures = alloc_floats((size_t)n * width);
    } else {
        p->rows = net_batch_create(net, n);
    }
    return p;
}

void net_profiler_free(NetProfiler *p)
{
    if (p == NULL)
        return;
    for (int k = 0; p->trunk != NULL && k < p->n_shards; k++)
        net_scratch_free(p->trunk[k]);
    free(p->trunk);
    net_scratch_free(p->head);
    net_scratch_free(p->temp);
    net_batch_free(p->rows);
    free(p->features);
    free(p->dfeatures);
    free(p->grad);
    free(p->rngs);
    free(p->run);
    free(p);
}

/* Runs CALL with S timing into p->run, then adds p->run to PROFILE. */
#define PROFILED(p, s, profile, call)                                     \
    do {                                                                  \
        memset((p)->run, 0,                                               \
               (size_t)(p)->net->n_layers * sizeof *(p)->run);            \
        (s)->profile = (p)->run;                                          \
        call;                                                             \
        (s)->profile = NULL;                                              \
        for (int i_ = 0; i_ < (p)->net->n_layers; i_++) {                 \
            (profile)[i_].forward_seconds += (p)->run[i_].forward_seconds; \
            (profile)[i_].backward_seconds +=                             \
                (p)->run[i_].backward_seconds;                            \
        }                                                                 \
    } while (0)

/* The three phases of a batch: trunk forward per shard, the head over
 * the batch, trunk backward per shard. */
static double profile_batched(NetProfiler *p, const float *images,
                              const uint8_t *labels, Rng *rng,
                              NetLayerProfile *profile)
{
    const Net *net = p->net;
    size_t sample = (size_t)net->in_c * net->in_h * net->in_w;
    size_t width = net_head_width(net);
    double loss = 0.0;

    for (int k = 0; k < p->n_shards; k++) {
        int first = k * p->shard;
        int count = p->n - first < p->shard ? p->n - first : p->shard;

        rng_seed(&p->rngs[k], rng_next(rng));
        PROFILED(p, p->trunk[k], profile,
                 net_trunk_forward(net, p->trunk[k], images + first * sample,
                                   count, &p->rngs[k],
                                   p->features + first * width, p->temp));
    }
    PROFILED(p, p->head, profile,
             loss = net_head_train(net, p->head, p->features, labels, p->n,
                                   p->shard, p->rngs, p->grad, p->dfeatures,
                                   NULL, NULL, NULL));
    for (int k = 0; k < p->n_shards; k++) {
        int first = k * p->shard;
        int count = p->n - first < p->shard ? p->n - first : p->shard;

        PROFILED(p, p->trunk[k], profile,
                 net_trunk_backward(net, p->trunk[k], images + first * sample,
                                    count, p->dfeatures + first * width,
                                    p->grad, p->temp));
    }
    return loss;
}

/* Whole shards through net_train_shard, then the dense gradients over
 * the batch, each part timed as its layer's backward time. */
static double profile_shards(NetProfiler *p, const float *images,
                             const uint8_t *labels, Rng *rng,
                             NetLayerProfile *profile)
{
    const Net *net = p->net;
    size_t sample = (size_t)net->in_c * net->in_h * net->in_w;
    double loss = 0.0;

    for (int first = 0; first < p->n; first += p->shard) {
        int count = p->n - first < p->shard ? p->n - first : p->shard;

        PROFILED(p, p->temp, profile,
                 loss += net_train_shard(net, p->temp, images + first * sample,
                                         labels + first, count, p->grad, rng,
                                         NULL, p->rows, first));
    }
    for (int part = 0; part < p->rows->n_parts; part++) {
        double t0 = profile_clock();

        net_batch_grad(net, p->rows, p->n, part, p->grad);
        profile[p->rows->parts[part].layer].backward_seconds +=
            profile_clock() - t0;
    }
    return loss;
}

#undef PROFILED

double net_profiler_run(NetProfiler *p, const float *images,
                        const uint8_t *labels, Rng *rng,
                        NetLayerProfile *profile)
{
    const Net *net = p->net;

    memset(profile, 0, (size_t)net->n_layers * sizeof *profile);
    for (int i = 0; i < net->n_layers; i++) {
        double flops = layer_flops(&net->layers[i], p->n);

        /* Backward forms the weight gradient and, past layer 0, the input
         * gradient: two products of the forward one's size. */
        profile[i].forward_flops = flops;
        profile[i].backward_flops = i > 0 ? 2.0 * flops : flops;
    }
    return p->batched ? profile_batched(p, images, labels, rng, profile)
                      : profile_shards(p, images, labels, rng, profile);
}

const float *net_batch_stats(const NetScratch *scratch)
{
    return scratch->batch_stats;
}

/*
 * Pools the parts exactly. A part of m values with mean u and biased
 * variance v contributes m*u to the sum, and m*v + m*(u - mean)^2 to the
 * sum of squared deviations around the pooled mean. The sums are in
 * double and run over the parts in order, so the result does not depend
 * on which thread produced which part.
 */
void net_update_running_stats(Net *net, const float *const *part_stats,
                              const int *part_samples, int n_parts,
                              float momentum)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        double hw = (double)l->in_h * l->in_w;

        if (l->kind != LAYER_BN)
            continue;
        for (int c = 0; c < l->out_c; c++) {
            size_t at_mean = l->stats_offset + (size_t)c;
            size_t at_var = at_mean + (size_t)l->out_c;
            double total = 0.0, sum = 0.0, sq = 0.0;

            for (int p = 0; p < n_parts; p++) {
                double m = part_samples[p] * hw;
                total += m;
                sum += m * part_stats[p][at_mean];
            }
            if (total <= 0.0)
                continue;
            double mean = sum / total;
            for (int p = 0; p < n_parts; p++) {
                double m = part_samples[p] * hw;
                double d = part_stats[p][at_mean] - mean;
                sq += m * (part_stats[p][at_var] + d * d);
            }
            /* Unbiased, as the population variance the running value
             * estimates; a single value gives no spread to estimate. */
            double var = total > 1.0 ? sq / (total - 1.0) : sq;
            float *stats = net->stats;
            stats[at_mean] = (1.0f - momentum) * stats[at_mean]
                             + momentum * (float)mean;
            stats[at_var] = (1.0f - momentum) * stats[at_var]
                            + momentum * (float)var;
        }
    }
}

int net_find_single_value_bn(const Net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];

        if (l->kind == LAYER_BN && l->in_h * l->in_w == 1)
            return i;
    }
    return -1;
}

const char *net_layer_name(LayerKind kind)
{
    switch (kind) {
    case LAYER_CONV: return "conv";
    case LAYER_POOL: return "pool";
    case LAYER_FLATTEN: return "flatten";
    case LAYER_DENSE: return "dense";
    case LAYER_RELU: return "relu";
    case LAYER_DROPOUT: return "dropout";
    case LAYER_BN: return "bn";
    }
    return "unknown";
}

/* Returns 1 when the N floats at X are all finite. */
static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Fills the NET_PROBE_IMAGES probe images of net_find_nonfinite_layer:
 * one black, one white, the rest uniform noise from a fixed seed. */
static void fill_probe_images(const Net *net, float *images)
{
    size_t sample = (size_t)net->in_c * net->in_h * net->in_w;
    Rng rng;

    rng_seed(&rng, PROBE_SEED);
    for (size_t j = 0; j < sample; j++) {
        images[j] = 0.0f;
        images[sample + j] = 1.0f;
    }
    for (size_t j = 2 * sample; j < NET_PROBE_IMAGES * sample; j++)
        images[j] = rng_uniform(&rng);
}

/* Returns the first layer of NET whose output on the one image at X is
 * not finite, or -1, using scratch S for one sample. */
static int find_nonfinite(const Net *net, NetScratch *s, const float *x)
{
    int x_cm = 0;

    for (int i = 0; i < net->n_layers; i++) {
        /* A convolution that writes straight into a pooling layer runs
         * with it, since its own output is never stored. Neither a ReLU
         * nor a maximum makes a finite value infinite, so the
         * convolution is the layer to name. */
        int pool = fused_pool_layer(net, i, net->n_layers);
        int last = pool >= 0 ? pool + 1 : i + 1;

        x = forward_range(net, s, s, x, x_cm, i, last, 1, NULL, 0);
        x_cm = s->channel_major[last - 1];
        if (!all_finite(x, out_size(&net->layers[last - 1])))
            return i;
        i = last - 1;
    }
    return -1;
}

int net_find_nonfinite_layer(const Net *net)
{
    size_t sample = (size_t)net->in_c * net->in_h * net->in_w;
    float *images = alloc_floats(NET_PROBE_IMAGES * sample);
    /* One image at a time, so that the activations take no more memory
     * than the prediction of a single image. */
    NetScratch *s = net_scratch_create(net, 1);
    int found = -1;

    fill_probe_images(net, images);
    for (int k = 0; k < NET_PROBE_IMAGES; k++) {
        int layer = find_nonfinite(net, s, images + k * sample);

        if (layer >= 0 && (found < 0 || layer < found))
            found = layer;
    }
    net_scratch_free(s);
    free(images);
    return found;
}
