/*
 * Tests for net: the spec parser and its error messages, parameter counts,
 * He initialisation, finite-difference gradient checks of every layer kind
 * on small inputs, batch normalisation's batch and running statistics, the
 * softmax cross-entropy, and net_predict against the forward pass of
 * net_train_batch.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "tests.h"
#include "util.h"

static void fill_uniform(Rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * rng_uniform(rng) - 1.0f;
}

/* ---------------------------------------------------------------- parser */

START_TEST(test_net_presets_parse)
{
    const char *names[] = {"default", "small", "tf"};
    const char *specs[] = {NET_SPEC_DEFAULT, NET_SPEC_SMALL, NET_SPEC_TF};
    char err[NET_ERR_LEN];

    for (int i = 0; i < 3; i++) {
        Net net;
        int rc = net_create(&net, names[i], 1, 28, 28, 10, err, sizeof err);
        ck_assert_msg(rc == 0, "preset %s: %s", names[i], err);
        ck_assert_str_eq(net.spec, specs[i]);
        ck_assert_ptr_nonnull(net.params);
        net_free(&net);
    }
}
END_TEST

/* Each preset's expanded spec maps back to its name, and a spec that
 * differs from a preset in one layer maps to none. */
START_TEST(test_net_preset_name_round_trip)
{
    const char *names[] = {"default", "small", "tf", "best"};
    char err[NET_ERR_LEN];

    for (int i = 0; i < 4; i++) {
        Net net;

        ck_assert_int_eq(net_create(&net, names[i], 1, 28, 28, 10, err,
                                    sizeof err), 0);
        ck_assert_pstr_eq(net_preset_name(net.spec), names[i]);
        net_free(&net);
    }
    ck_assert_ptr_null(net_preset_name(
        "conv3x3x32,relu,pool2,conv3x3x64,relu,pool2,dense64,relu,dense10"));
}
END_TEST

START_TEST(test_net_whitespace_ignored)
{
    Net net;
    char err[NET_ERR_LEN];

    ck_assert_int_eq(net_create(&net, " conv3x3x4 :same ,\trelu, dense 10\n",
                                1, 8, 8, 10, err, sizeof err), 0);
    ck_assert_str_eq(net.spec, "conv3x3x4:same,relu,dense10");
    ck_assert_int_eq(net.n_layers, 3);
    ck_assert_int_eq(net.layers[0].pad, 1);
    ck_assert_int_eq(net.layers[0].out_h, 8);
    net_free(&net);

    ck_assert_int_eq(net_create(&net, " small ", 1, 28, 28, 10, err,
                                sizeof err), 0);
    ck_assert_str_eq(net.spec, NET_SPEC_SMALL);
    net_free(&net);
}
END_TEST

/*
 * Parameter count of "small" on 1 x 28 x 28 inputs with 10 classes:
 *   conv3x3x32  valid: 28 -> 26   32*1*3*3 + 32   =    320
 *   pool2              26 -> 13
 *   conv3x3x64  valid: 13 -> 11   64*32*3*3 + 64  =  18496
 *   pool2              11 -> 5    (floor)
 *   dense128    in 64*5*5 = 1600  128*1600 + 128  = 204928
 *   dense10                       10*128 + 10     =   1290
 *   total                                           225034
 * Forward multiply-adds per sample: 32*9*26*26 + 64*288*11*11
 * + 1600*128 + 128*10 = 194688 + 2230272 + 204800 + 1280 = 2631040.
 */
START_TEST(test_net_small_param_count)
{
    Net net;
    char err[NET_ERR_LEN];

    ck_assert_int_eq(net_create(&net, "small", 1, 28, 28, 10, err,
                                sizeof err), 0);
    ck_assert_uint_eq(net.n_params, 225034);
    ck_assert_int_eq(net.n_layers, 9);
    ck_assert_int_eq(net.layers[5].out_h, 5);
    ck_assert_uint_eq(net.layers[6].param_count, 204928);
    ck_assert_uint_eq(net.layers[6].weight_offset, 320 + 18496);
    ck_assert_uint_eq(net.layers[6].bias_offset, 320 + 18496 + 204800);
    ck_assert_double_eq_tol(net_forward_macs(&net), 2631040.0, 0.5);

    size_t sum = 0;
    for (int i = 0; i < net.n_layers; i++)
        sum += net.layers[i].param_count;
    ck_assert_uint_eq(sum, net.n_params);
    net_free(&net);
}
END_TEST

START_TEST(test_net_pool_floors_odd_sizes)
{
    Net net;
    char err[NET_ERR_LEN];

    ck_assert_int_eq(net_create(&net, "pool2,dense10", 2, 7, 5, 10, err,
                                sizeof err), 0);
    ck_assert_int_eq(net.layers[0].out_h, 3);
    ck_assert_int_eq(net.layers[0].out_w, 2);
    ck_assert_uint_eq(net.n_params, 2 * 3 * 2 * 10 + 10);
    net_free(&net);
}
END_TEST

typedef struct {
    const char *spec;
    const char *token;  /* expected to appear in the message */
} BadSpec;

static const BadSpec bad_specs[] = {
    {"conv3x3x8,relu,blah,dense10", "token 3 \"blah\""},
    {"dense0,dense10", "token 1 \"dense0\""},
    {"conv0x0x8,dense10", "token 1 \"conv0x0x8\""},
    {"conv3x3x0,dense10", "token 1 \"conv3x3x0\""},
    {"conv3x3x-4,dense10", "token 1 \"conv3x3x-4\""},
    {"dense-5,dense10", "token 1 \"dense-5\""},
    {"conv3x5x8,dense10", "token 1 \"conv3x5x8\""},
    {"conv29x29x4,dense10", "token 1 \"conv29x29x4\""},
    {"conv4x4x8:same,dense10", "token 1 \"conv4x4x8:same\""},
    {"conv2x2x8:same,dense10", "token 1 \"conv2x2x8:same\""},
    {"conv3x3x8:full,dense10", "token 1 \"conv3x3x8:full\""},
    {"pool3,dense10", "token 1 \"pool3\""},
    {"pool2,pool2,pool2,pool2,pool2,dense10", "token 5 \"pool2\""},
    {"dense32,conv3x3x4,dense10", "token 2 \"conv3x3x4\""},
    {"flatten,pool2,dense10", "token 2 \"pool2\""},
    {",dense10", "token 1 \"\""},
    {"relu,,dense10", "token 2 \"\""},
    {"dense10,", "token 2 \"\""},
    {"conv3x3x8,relu", "token 2 \"relu\""},
    {"dense128", "token 1 \"dense128\""},
    {"dense10,dropout0.5", "token 2 \"dropout0.5\""},
    {"dropout1.0,dense10", "token 1 \"dropout1.0\""},
    {"dropout1.5,dense10", "token 1 \"dropout1.5\""},
    {"dropout0.99999999999,dense10", "token 1 \"dropout0.99999999999\""},
    {"dropout-0.1,dense10", "token 1 \"dropout-0.1\""},
    {"dropout,dense10", "token 1 \"dropout\""},
    {"dense10x", "token 1 \"dense10x\""},
    {"dense,dense10", "token 1 \"dense\""},
    {"conv,dense10", "token 1 \"conv\""},
    {"conv3x3,dense10", "token 1 \"conv3x3\""},
    {"relu,dense10x", "token 2 \"dense10x\""},
    {"dense99999999,dense10", "token 1 \"dense99999999\""},
    {"dense60000,dense60000,dense10", "token 2 \"dense60000\""},
    {"conv1x1x4096:same,conv27x27x8:same,dense10",
     "token 2 \"conv27x27x8:same\""},
    {"Dense10", "token 1 \"Dense10\""},
};

START_TEST(test_net_bad_specs_rejected)
{
    for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
        Net net;
        char err[NET_ERR_LEN] = "";
        int rc = net_create(&net, bad_specs[i].spec, 1, 28, 28, 10, err,
                            sizeof err);

        ck_assert_msg(rc == -1, "spec \"%s\" was accepted",
                      bad_specs[i].spec);
        ck_assert_msg(strstr(err, bad_specs[i].token) != NULL,
                      "spec \"%s\": message \"%s\" does not name %s",
                      bad_specs[i].spec, err, bad_specs[i].token);
        ck_assert_msg(strstr(err, "expected") != NULL,
                      "spec \"%s\": message \"%s\" does not say what was "
                      "expected", bad_specs[i].spec, err);
        ck_assert_ptr_null(net.params);
        ck_assert_ptr_null(net.layers);
    }
}
END_TEST

START_TEST(test_net_empty_spec_rejected)
{
    const char *empties[] = {"", "   ", "\t\n"};

    for (int i = 0; i < 3; i++) {
        Net net;
        char err[NET_ERR_LEN] = "";
        ck_assert_int_eq(net_create(&net, empties[i], 1, 28, 28, 10, err,
                                    sizeof err), -1);
        ck_assert_ptr_nonnull(strstr(err, "empty"));
    }
}
END_TEST

START_TEST(test_net_last_layer_message_names_classes)
{
    Net net;
    char err[NET_ERR_LEN] = "";

    ck_assert_int_eq(net_create(&net, "dense5", 1, 4, 4, 3, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "dense3"));
}
END_TEST

START_TEST(test_net_bad_input_shape_rejected)
{
    Net net;
    char err[NET_ERR_LEN] = "";

    ck_assert_int_eq(net_create(&net, "dense10", 1, 0, 28, 10, err,
                                sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "expected"));
    ck_assert_int_eq(net_create(&net, "dense10", 1, 28, 28, 0, err,
                                sizeof err), -1);
}
END_TEST

/* ---------------------------------------------------------------- init */

START_TEST(test_net_he_init_statistics)
{
    Net net;
    char err[NET_ERR_LEN];
    Rng rng;

    ck_assert_int_eq(net_create(&net, "small", 1, 28, 28, 10, err,
                                sizeof err), 0);
    rng_seed(&rng, 3);
    net_init_params(&net, &rng);

    /* dense128 has 204800 weights with fan-in 1600. */
    const Layer *l = &net.layers[6];
    const float *w = net.params + l->weight_offset;
    size_t count = l->bias_offset - l->weight_offset;
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < count; i++) {
        sum += w[i];
        sq += (double)w[i] * w[i];
    }
    double mean = sum / count, sd = sqrt(sq / count - mean * mean);
    ck_assert_double_lt(fabs(mean), 0.001);
    ck_assert_double_lt(fabs(sd - sqrt(2.0 / 1600.0)), 0.01 * sqrt(2.0 / 1600.0));

    for (int i = 0; i < 128; i++)
        ck_assert_float_eq(net.params[l->bias_offset + i], 0.0f);
    net_free(&net);
}
END_TEST

/* ---------------------------------------------------------------- gradients */

/* Returns the summed loss on the batch, drawing dropout masks from a
 * generator seeded with SEED so that every call uses the same masks. */
static double batch_loss(const Net *net, NetScratch *scratch, const float *x,
                         const uint8_t *labels, int n, float *grad,
                         uint64_t seed)
{
    Rng rng;

    rng_seed(&rng, seed);
    return net_train_batch(net, scratch, x, labels, n, grad, &rng, NULL);
}

typedef struct {
    Net net;
    NetScratch *scratch;
    const float *x;
    const uint8_t *labels;
    int n;
    float *grad_unused;  /* net_train_batch writes here while probing */
    uint64_t seed;
} Probe;

/* Returns (L(w_j + h) - L(w_j - h)) / 2h, restoring w_j afterwards. */
static double central_difference(Probe *p, size_t j, float h)
{
    float saved = p->net.params[j];

    p->net.params[j] = saved + h;
    double up = batch_loss(&p->net, p->scratch, p->x, p->labels, p->n,
                           p->grad_unused, p->seed);
    p->net.params[j] = saved - h;
    double down = batch_loss(&p->net, p->scratch, p->x, p->labels, p->n,
                             p->grad_unused, p->seed);
    p->net.params[j] = saved;
    return (up - down) / (2.0 * h);
}

static int close_enough(double numeric, double analytic)
{
    return fabs(numeric - analytic)
           <= 2e-2 * fmax(fabs(numeric), fabs(analytic)) + 2e-3;
}

/*
 * Compares the gradient from net_train_batch with central differences for
 * up to 300 parameters spread over all layers, on N random samples of
 * IN_C x IN_H x IN_W. Biases start random so their gradients are not all
 * alike. The layers compute in float, so h cannot be tiny: at h = 1e-3
 * float rounding moves the difference quotient by about 1e-4. A ReLU or
 * max-pool kink inside [w - h, w + h] also skews it, and a conv weight
 * touches every window, so a parameter that misses at h = 1e-3 gets a
 * second try at h = 2.5e-4; a wrong backward pass misses at both.
 */
static void check_gradient(const char *spec, int in_c, int in_h, int in_w,
                           int classes, int n, uint64_t seed)
{
    Probe p;
    char err[NET_ERR_LEN];
    Rng rng;
    size_t sample = (size_t)in_c * in_h * in_w;

    ck_assert_msg(net_create(&p.net, spec, in_c, in_h, in_w, classes, err,
                             sizeof err) == 0, "%s: %s", spec, err);
    rng_seed(&rng, seed);
    net_init_params(&p.net, &rng);
    for (int i = 0; i < p.net.n_layers; i++) {
        const Layer *l = &p.net.layers[i];
        for (size_t j = l->bias_offset; j < l->weight_offset + l->param_count;
             j++)
            p.net.params[j] = 0.2f * (2.0f * rng_uniform(&rng) - 1.0f);
        /* bn scales start at 1, where a backward pass that forgets them
         * would still pass. */
        for (size_t j = l->weight_offset;
             l->kind == LAYER_BN && j < l->bias_offset; j++)
            p.net.params[j] = 0.5f + rng_uniform(&rng);
    }

    float *x = xmalloc((size_t)n * sample * sizeof *x);
    uint8_t *labels = xmalloc((size_t)n);
    float *grad = xmalloc(p.net.n_params * sizeof *grad);

    fill_uniform(&rng, x, (size_t)n * sample);
    for (int s = 0; s < n; s++)
        labels[s] = (uint8_t)rng_below(&rng, (uint32_t)classes);
    p.scratch = net_scratch_create(&p.net, n);
    p.x = x;
    p.labels = labels;
    p.n = n;
    p.grad_unused = xmalloc(p.net.n_params * sizeof *grad);
    p.seed = seed + 1;
    batch_loss(&p.net, p.scratch, x, labels, n, grad, p.seed);

    size_t stride = p.net.n_params / 300 + 1;
    for (size_t j = 0; j < p.net.n_params; j += stride) {
        double numeric = central_difference(&p, j, 1e-3f);
        if (!close_enough(numeric, grad[j]))
            numeric = central_difference(&p, j, 2.5e-4f);
        ck_assert_msg(close_enough(numeric, grad[j]),
                      "%s: parameter %zu: backward %g, central difference "
                      "%g", spec, j, grad[j], numeric);
    }
    net_scratch_free(p.scratch);
    free(x);
    free(labels);
    free(grad);
    free(p.grad_unused);
    net_free(&p.net);
}

START_TEST(test_net_grad_softmax_dense)
{
    check_gradient("dense4", 1, 2, 3, 4, 3, 11);
}
END_TEST

START_TEST(test_net_grad_dense_relu)
{
    check_gradient("dense6,relu,dense5,relu,dense4", 2, 2, 2, 4, 3, 12);
}
END_TEST

START_TEST(test_net_grad_conv_valid)
{
    check_gradient("conv3x3x3,dense4", 2, 6, 5, 4, 3, 13);
}
END_TEST

START_TEST(test_net_grad_conv_same)
{
    /* The second convolution reads channel-major input and passes its
     * gradient back through col2im with padding. */
    check_gradient("conv3x3x3:same,conv3x3x2:same,dense4", 2, 5, 6, 4, 3,
                   14);
}
END_TEST

START_TEST(test_net_grad_conv_relu)
{
    check_gradient("conv3x3x3,relu,conv2x2x2,relu,dense4", 1, 6, 6, 4, 2,
                   15);
}
END_TEST

/* Both convolutions read one channel, so on a CPU with AVX2 their
 * forward pass and weight gradient run through src/direct.c, while the
 * second one's input gradient still goes through col2im. */
START_TEST(test_net_grad_single_channel_convs)
{
    check_gradient("conv3x3x1:same,relu,conv5x5x3:same,relu,pool2,dense4", 1,
                   9, 10, 4, 3, 18);
}
END_TEST

/* Each sample's patches fill more than half of NET_CONV_CHUNK_FLOATS in
 * both convolutions, so they run one sample per chunk: the weight
 * gradient sums over three chunks and col2im writes each sample apart. */
START_TEST(test_net_grad_conv_chunks)
{
    ck_assert(8 * 7 * 7 * 32 * 32 > NET_CONV_CHUNK_FLOATS / 2);
    ck_assert(4 * 7 * 7 * 32 * 32 > NET_CONV_CHUNK_FLOATS / 2);
    check_gradient("conv7x7x4:same,conv7x7x2:same,dense4", 8, 32, 32, 4, 3,
                   16);
}
END_TEST

/* 16 channels and filters on 12 x 12 planes: the forward passes of both
 * convolutions (3x3 on sample-major images, 5x5 on channel-major input)
 * and the second one's input and weight gradients run through Winograd.
 * No ReLU: with 2304 units between the convolutions, some sit close
 * enough to the kink to skew the central differences. */
START_TEST(test_net_grad_conv_winograd)
{
    const char *spec = "conv3x3x16:same,conv5x5x16:same,dense4";
    char err[NET_ERR_LEN];
    Net net;

    ck_assert(net_create(&net, spec, 16, 12, 12, 4, err, sizeof err) == 0);
    ck_assert_int_eq(net_conv_winograd(&net.layers[0]) & NET_WINO_FORWARD,
                     NET_WINO_FORWARD);
    ck_assert_int_eq(net_conv_winograd(&net.layers[1]),
                     NET_WINO_FORWARD | NET_WINO_INPUT_GRAD
                         | NET_WINO_WEIGHT_GRAD);
    net_free(&net);
    check_gradient(spec, 16, 12, 12, 4, 2, 17);
}
END_TEST

/* ReLU first (on the images), after pooling and after dropout, where it
 * cannot be fused into a bias pass, and twice in a row. */
START_TEST(test_net_grad_relu_placements)
{
    check_gradient("relu,conv3x3x2,pool2,relu,dense5,dropout0.2,relu,relu,"
                   "dense3", 1, 8, 8, 3, 3, 21);
}
END_TEST

START_TEST(test_net_grad_pool)
{
    /* 7x7 -> conv 5x5 -> pool 2x2, dropping the odd row and column. */
    check_gradient("conv3x3x3,pool2,dense4", 1, 7, 7, 4, 3, 16);
    check_gradient("conv3x3x2,relu,pool2,conv1x1x2,pool2,dense3", 1, 10, 10,
                   3, 2, 17);
}
END_TEST

START_TEST(test_net_grad_flatten)
{
    check_gradient("conv3x3x2,flatten,dense5,relu,dense4", 2, 5, 5, 4, 3,
                   18);
}
END_TEST

START_TEST(test_net_grad_dropout)
{
    check_gradient("dense8,dropout0.5,dense4", 1, 3, 3, 4, 3, 19);
    check_gradient("conv3x3x2,dropout0.3,dense4", 1, 5, 5, 4, 3, 20);
}
END_TEST

/* ---------------------------------------------------------------- bn */

START_TEST(test_net_grad_bn_conv)
{
    /* Channel-major input: the convolution's output over 3 samples. */
    check_gradient("conv3x3x3,bn,relu,dense4", 1, 6, 6, 4, 3, 31);
}
END_TEST

START_TEST(test_net_grad_bn_dense)
{
    /* Sample-major input with H = W = 1: statistics per unit over the
     * 5 samples. */
    check_gradient("dense6,bn,relu,dense4", 2, 2, 2, 4, 5, 32);
}
END_TEST

/* On the images (layer 0, where no input gradient is needed), after
 * pooling, and after flatten. */
START_TEST(test_net_grad_bn_placements)
{
    check_gradient("bn,conv3x3x2,pool2,bn,dense3", 1, 7, 7, 3, 3, 35);
    check_gradient("conv3x3x2,flatten,bn,dense4", 1, 5, 5, 4, 4, 34);
}
END_TEST

/*
 * 1 x 8 x 8 inputs: conv3x3x4:same keeps 8x8, so the first bn has 4
 * channels (8 parameters, 8 statistics); dense8 gives the second 8 units
 * (16 parameters, 16 statistics).
 */
START_TEST(test_net_bn_parse_and_init)
{
    Net net;
    char err[NET_ERR_LEN];
    Rng rng;

    ck_assert_msg(net_create(&net, "conv3x3x4:same, bn, relu, dense8, bn,"
                             "dense10", 1, 8, 8, 10, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(net.spec, "conv3x3x4:same,bn,relu,dense8,bn,dense10");
    const Layer *bn1 = &net.layers[1], *bn2 = &net.layers[4];
    ck_assert_int_eq(bn1->kind, LAYER_BN);
    ck_assert_int_eq(bn1->out_c, 4);
    ck_assert_int_eq(bn1->out_h, 8);
    ck_assert_uint_eq(bn1->param_count, 8);
    ck_assert_uint_eq(bn1->bias_offset, bn1->weight_offset + 4);
    ck_assert_uint_eq(bn1->stats_offset, 0);
    ck_assert_int_eq(bn2->out_c, 8);
    ck_assert_uint_eq(bn2->param_count, 16);
    ck_assert_uint_eq(bn2->stats_offset, 8);
    ck_assert_uint_eq(net.n_stats, 24);
    ck_assert_uint_eq(net.n_params, (4 * 9 + 4) + 8 + (8 * 256 + 8) + 16
                                    + (10 * 8 + 10));

    rng_seed(&rng, 5);
    net_init_params(&net, &rng);
    for (int c = 0; c < 8; c++) {
        ck_assert_float_eq(net.params[bn2->weight_offset + c], 1.0f);
        ck_assert_float_eq(net.params[bn2->bias_offset + c], 0.0f);
        ck_assert_float_eq(net.stats[bn2->stats_offset + c], 0.0f);
        ck_assert_float_eq(net.stats[bn2->stats_offset + 8 + c], 1.0f);
    }
    net_free(&net);

    ck_assert_msg(net_create(&net, "best", 1, 28, 28, 10, err, sizeof err)
                  == 0, "best: %s", err);
    ck_assert_str_eq(net.spec, NET_SPEC_BEST);
    ck_assert_uint_gt(net.n_stats, 0);
    net_free(&net);

    ck_assert_int_ne(net_create(&net, "dense8,bn2,dense10", 1, 8, 8, 10, err,
                                sizeof err), 0);
    ck_assert_msg(strstr(err, "token 2 \"bn2\"") != NULL, "%s", err);
}
END_TEST

/* Builds "bn,dense3" on 3 x 1 x 1 inputs with the dense layer set to the
 * identity, so the logits are the bn outputs. */
static void make_bn_identity_net(Net *net)
{
    char err[NET_ERR_LEN];

    ck_assert_msg(net_create(net, "bn,dense3", 3, 1, 1, 3, err, sizeof err)
                  == 0, "%s", err);
    const Layer *dense = &net->layers[1];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            net->params[dense->weight_offset + r * 3 + c] = r == c;
    const float gamma[3] = {1.5f, 0.5f, -1.0f}, beta[3] = {0.25f, -1.0f, 2.0f};
    for (int c = 0; c < 3; c++) {
        net->params[c] = gamma[c];
        net->params[3 + c] = beta[c];
    }
}

/* net_predict normalises with the running statistics, not with those of
 * the images it gets: the probabilities of each sample are those of the
 * running-statistics formula, however the other samples look. */
START_TEST(test_net_bn_predict_uses_running_stats)
{
    Net net;
    const float x[4 * 3] = {0.5f, -2.0f, 3.0f,   1.0f, 0.0f, -1.0f,
                            4.0f, 2.0f, 0.25f,  -3.0f, 1.0f, 1.0f};
    const float mean[3] = {0.5f, -1.0f, 2.0f}, var[3] = {4.0f, 0.25f, 9.0f};
    float probs[4 * 3];

    make_bn_identity_net(&net);
    for (int c = 0; c < 3; c++) {
        net.stats[c] = mean[c];
        net.stats[3 + c] = var[c];
    }
    NetScratch *scratch = net_scratch_create(&net, 4);
    net_predict(&net, scratch, x, 4, probs);

    for (int s = 0; s < 4; s++) {
        double z[3], sum = 0.0;
        for (int c = 0; c < 3; c++) {
            z[c] = net.params[c] * (x[s * 3 + c] - mean[c])
                   / sqrt(var[c] + NET_BN_EPS) + net.params[3 + c];
            sum += exp(z[c]);
        }
        for (int c = 0; c < 3; c++)
            ck_assert_msg(fabs(probs[s * 3 + c] - exp(z[c]) / sum) < 1e-5,
                          "sample %d class %d: %g, expected %g", s, c,
                          probs[s * 3 + c], exp(z[c]) / sum);
    }
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

/* net_find_nonfinite_layer names the first layer that overflows on its
 * probe images: a bn layer with a running mean of -3e38, or a first
 * convolution, which may write straight into its pooling layer. A huge
 * weight whose outputs stay finite passes. */
START_TEST(test_net_nonfinite_layer_found)
{
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_msg(net_create(&net, "conv3x3x4,relu,pool2,bn,dense10", 1, 28,
                             28, 10, err, sizeof err) == 0, "%s", err);
    rng_seed(&rng, 5);
    net_init_params(&net, &rng);
    ck_assert_int_eq(net_find_nonfinite_layer(&net), -1);

    /* Running means come first in Net.stats, then the variances. */
    net.stats[1] = -3e38f;
    net.stats[4 + 1] = 0.0f;
    ck_assert_int_eq(net_find_nonfinite_layer(&net), 3);
    net.stats[1] = 0.0f;
    net.stats[4 + 1] = 1.0f;

    const Layer *conv = &net.layers[0];
    net.params[conv->weight_offset] = 1e30f;
    ck_assert_int_eq(net_find_nonfinite_layer(&net), -1);
    for (int j = 0; j < 9; j++)
        net.params[conv->weight_offset + j] = FLT_MAX;
    net.params[conv->bias_offset] = FLT_MAX;
    ck_assert_int_eq(net_find_nonfinite_layer(&net), 0);
    ck_assert_str_eq(net_layer_name(net.layers[0].kind), "conv");
    net_free(&net);
}
END_TEST

/* net_train_batch normalises with the batch's own mean and biased
 * variance, reports them through net_batch_stats and leaves the running
 * statistics alone. */
START_TEST(test_net_bn_train_uses_batch_stats)
{
    Net net;
    const float x[4 * 3] = {0.5f, -2.0f, 3.0f,   1.0f, 0.0f, -1.0f,
                            4.0f, 2.0f, 0.25f,  -3.0f, 1.0f, 1.0f};
    const uint8_t labels[4] = {0, 1, 2, 1};
    float grad[9 + 3 + 6];
    Rng rng;

    make_bn_identity_net(&net);
    ck_assert_uint_eq(net.n_params, 18);
    NetScratch *scratch = net_scratch_create(&net, 4);
    rng_seed(&rng, 1);
    double loss = net_train_batch(&net, scratch, x, labels, 4, grad, &rng,
                                  NULL);

    const float *stats = net_batch_stats(scratch);
    double expected_loss = 0.0;
    double z[4][3];
    for (int c = 0; c < 3; c++) {
        double mean = 0.0, var = 0.0;
        for (int s = 0; s < 4; s++)
            mean += x[s * 3 + c] / 4.0;
        for (int s = 0; s < 4; s++)
            var += (x[s * 3 + c] - mean) * (x[s * 3 + c] - mean) / 4.0;
        ck_assert_msg(fabs(stats[c] - mean) < 1e-6, "channel %d mean %g, "
                      "expected %g", c, stats[c], mean);
        ck_assert_msg(fabs(stats[3 + c] - var) < 1e-5, "channel %d variance "
                      "%g, expected %g", c, stats[3 + c], var);
        for (int s = 0; s < 4; s++)
            z[s][c] = net.params[c] * (x[s * 3 + c] - mean)
                      / sqrt(var + NET_BN_EPS) + net.params[3 + c];
    }
    for (int s = 0; s < 4; s++) {
        double sum = 0.0;
        for (int c = 0; c < 3; c++)
            sum += exp(z[s][c]);
        expected_loss += log(sum) - z[s][labels[s]];
    }
    ck_assert_msg(fabs(loss - expected_loss) < 1e-4, "loss %g, expected %g",
                  loss, expected_loss);
    for (int c = 0; c < 3; c++) {
        ck_assert_float_eq(net.stats[c], 0.0f);
        ck_assert_float_eq(net.stats[3 + c], 1.0f);
    }
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

/*
 * Six samples of one unit, trained as a part of 2 and a part of 4: with
 * momentum 1 the running statistics become the mean and unbiased variance
 * of all six values, exactly as if they had been one batch; with momentum
 * 0.25 they move a quarter of the way from the initial 0 and 1.
 */
START_TEST(test_net_bn_running_stats_pool_parts)
{
    const float x[6] = {1.0f, 3.0f, -2.0f, 0.5f, 4.0f, 7.5f};
    const uint8_t labels[6] = {0, 1, 0, 1, 0, 1};
    float part_a[2], part_b[2], grad[2 + 4 + 2];
    const float *parts[2] = {part_a, part_b};
    const int samples[2] = {2, 4};
    double mean = 0.0, var = 0.0;
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_msg(net_create(&net, "bn,dense2", 1, 1, 1, 2, err, sizeof err)
                  == 0, "%s", err);
    NetScratch *scratch = net_scratch_create(&net, 4);
    rng_seed(&rng, 2);
    net_train_batch(&net, scratch, x, labels, 2, grad, &rng, NULL);
    memcpy(part_a, net_batch_stats(scratch), sizeof part_a);
    net_train_batch(&net, scratch, x + 2, labels + 2, 4, grad, &rng, NULL);
    memcpy(part_b, net_batch_stats(scratch), sizeof part_b);

    for (int i = 0; i < 6; i++)
        mean += x[i] / 6.0;
    for (int i = 0; i < 6; i++)
        var += (x[i] - mean) * (x[i] - mean) / 5.0;

    net_update_running_stats(&net, parts, samples, 2, 0.25f);
    ck_assert_msg(fabs(net.stats[0] - 0.25 * mean) < 1e-5, "mean %g, "
                  "expected %g", net.stats[0], 0.25 * mean);
    ck_assert_msg(fabs(net.stats[1] - (0.75 + 0.25 * var)) < 1e-4,
                  "variance %g, expected %g", net.stats[1], 0.75 + 0.25 * var);

    net_update_running_stats(&net, parts, samples, 2, 1.0f);
    ck_assert_msg(fabs(net.stats[0] - mean) < 1e-5, "mean %g, expected %g",
                  net.stats[0], mean);
    ck_assert_msg(fabs(net.stats[1] - var) < 1e-4, "variance %g, expected %g",
                  net.stats[1], var);
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

/* ---------------------------------------------------------------- loss */

/* With zero weights every logit is 0, so each sample's loss is log(3). With
 * biases +-1000 the log-sum-exp keeps the loss finite. */
START_TEST(test_net_softmax_loss_values)
{
    Net net;
    char err[NET_ERR_LEN];
    float x[2] = {0.5f, -0.25f};
    uint8_t labels[2] = {0, 2};
    float grad[3 * 1 + 3];

    ck_assert_int_eq(net_create(&net, "dense3", 1, 1, 1, 3, err, sizeof err),
                     0);
    NetScratch *scratch = net_scratch_create(&net, 2);
    double loss = batch_loss(&net, scratch, x, labels, 2, grad, 1);
    ck_assert_double_eq_tol(loss, 2.0 * log(3.0), 1e-6);

    const Layer *l = &net.layers[0];
    net.params[l->bias_offset + 0] = 1000.0f;
    net.params[l->bias_offset + 2] = -1000.0f;
    int correct = 0;
    Rng rng;
    rng_seed(&rng, 1);
    loss = net_train_batch(&net, scratch, x, labels, 2, grad, &rng, &correct);
    /* Sample 0 is certain and right (loss ~0); sample 1 costs 2000. */
    ck_assert_double_eq_tol(loss, 2000.0, 1e-3);
    ck_assert_int_eq(correct, 1);
    /* Bias gradient: sum over samples of softmax - one-hot, which is
     * (1 - 1) + 1 for class 0, 0 for class 1, 0 - 1 for class 2. */
    ck_assert_float_eq_tol(grad[l->bias_offset + 0], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(grad[l->bias_offset + 1], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(grad[l->bias_offset + 2], -1.0f, 1e-6f);
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

/* ---------------------------------------------------------------- predict */

typedef struct {
    Net net;
    float *x;
    uint8_t labels[7];
} Fixture;

static void fixture_setup(Fixture *f, const char *spec)
{
    char err[NET_ERR_LEN];
    Rng rng;

    ck_assert_int_eq(net_create(&f->net, spec, 1, 28, 28, 10, err,
                                sizeof err), 0);
    rng_seed(&rng, 5);
    net_init_params(&f->net, &rng);
    f->x = xmalloc(7 * 784 * sizeof *f->x);
    for (int i = 0; i < 7 * 784; i++)
        f->x[i] = rng_uniform(&rng);
    for (int s = 0; s < 7; s++)
        f->labels[s] = (uint8_t)rng_below(&rng, 10);
}

static void fixture_teardown(Fixture *f)
{
    free(f->x);
    net_free(&f->net);
}

START_TEST(test_net_predict_probabilities_sum_to_one)
{
    Fixture f;
    float probs[7 * 10];

    fixture_setup(&f, "default");
    NetScratch *scratch = net_scratch_create(&f.net, 8);
    net_predict(&f.net, scratch, f.x, 7, probs);
    for (int s = 0; s < 7; s++) {
        double sum = 0.0;
        for (int c = 0; c < 10; c++) {
            ck_assert_float_ge(probs[s * 10 + c], 0.0f);
            sum += probs[s * 10 + c];
        }
        ck_assert_double_eq_tol(sum, 1.0, 1e-5);
    }
    net_scratch_free(scratch);
    fixture_teardown(&f);
}
END_TEST

/* Dropout has no parameters, so a net with a dropout layer and the same
 * net without it must predict exactly alike from the same weights when
 * dropout is off while predicting. Two calls must also agree, since no
 * mask is drawn. */
START_TEST(test_net_predict_ignores_dropout)
{
    Fixture f;
    Net plain;
    char err[NET_ERR_LEN];
    float with_dropout[7 * 10], again[7 * 10], without[7 * 10];

    fixture_setup(&f, "conv3x3x4,relu,pool2,dense32,relu,dropout0.5,dense10");
    ck_assert_int_eq(net_create(&plain, "conv3x3x4,relu,pool2,dense32,relu,"
                                "dense10", 1, 28, 28, 10, err, sizeof err), 0);
    ck_assert_uint_eq(plain.n_params, f.net.n_params);
    memcpy(plain.params, f.net.params, plain.n_params * sizeof(float));

    NetScratch *scratch = net_scratch_create(&f.net, 8);
    NetScratch *plain_scratch = net_scratch_create(&plain, 8);
    net_predict(&f.net, scratch, f.x, 7, with_dropout);
    net_predict(&f.net, scratch, f.x, 7, again);
    net_predict(&plain, plain_scratch, f.x, 7, without);
    for (int i = 0; i < 7 * 10; i++) {
        ck_assert_float_eq(with_dropout[i], without[i]);
        ck_assert_float_eq(with_dropout[i], again[i]);
    }
    net_scratch_free(plain_scratch);
    net_scratch_free(scratch);
    net_free(&plain);
    fixture_teardown(&f);
}
END_TEST

/* Without dropout, net_train_batch's loss and hit count must come from the
 * same forward pass that net_predict runs. */
START_TEST(test_net_predict_matches_train_forward)
{
    Fixture f;
    float probs[7 * 10];
    Rng rng;
    int correct = 0, predicted_correct = 0;

    fixture_setup(&f, "small");
    NetScratch *scratch = net_scratch_create(&f.net, 8);
    float *grad = xmalloc(f.net.n_params * sizeof *grad);

    rng_seed(&rng, 9);
    double loss = net_train_batch(&f.net, scratch, f.x, f.labels, 7, grad,
                                  &rng, &correct);
    net_predict(&f.net, scratch, f.x, 7, probs);

    double expected = 0.0;
    for (int s = 0; s < 7; s++) {
        int best = 0;
        for (int c = 1; c < 10; c++)
            if (probs[s * 10 + c] > probs[s * 10 + best])
                best = c;
        predicted_correct += best == f.labels[s];
        expected -= log(probs[s * 10 + f.labels[s]]);
    }
    ck_assert_double_eq_tol(loss, expected, 1e-4 * expected);
    ck_assert_int_eq(correct, predicted_correct);
    free(grad);
    net_scratch_free(scratch);
    fixture_teardown(&f);
}
END_TEST

/*
 * Two dense layers against sums in double: net_predict's probabilities
 * and every entry of net_train_batch's gradient. 37 units and 21 samples
 * are not multiples of the 16 x 16 blocks that transpose the products and
 * sum the biases, so a block that drops its last row or column fails.
 */
START_TEST(test_net_dense_matches_direct_sums)
{
    enum { IN = 35, HID = 37, OUT = 11, N = 21 };
    Net net;
    char err[NET_ERR_LEN];
    Rng rng;
    static float x[N * IN], probs[N * OUT];
    static double h[N][HID], dz[N][OUT], dh[N][HID];
    uint8_t labels[N];

    ck_assert_msg(net_create(&net, "dense37,relu,dense11", 1, 5, 7, OUT, err,
                             sizeof err) == 0, "%s", err);
    rng_seed(&rng, 41);
    net_init_params(&net, &rng);
    ck_assert_int_eq(net.n_layers, 3);
    const Layer *l1 = &net.layers[0], *l2 = &net.layers[2];
    ck_assert_int_eq(l1->kind, LAYER_DENSE);
    ck_assert_int_eq(l2->kind, LAYER_DENSE);
    for (size_t j = l1->bias_offset; j < l1->bias_offset + HID; j++)
        net.params[j] = 0.2f * (2.0f * rng_uniform(&rng) - 1.0f);
    for (size_t j = l2->bias_offset; j < l2->bias_offset + OUT; j++)
        net.params[j] = 0.2f * (2.0f * rng_uniform(&rng) - 1.0f);
    fill_uniform(&rng, x, N * IN);
    for (int s = 0; s < N; s++)
        labels[s] = (uint8_t)rng_below(&rng, OUT);

    const float *w1 = net.params + l1->weight_offset;
    const float *b1 = net.params + l1->bias_offset;
    const float *w2 = net.params + l2->weight_offset;
    const float *b2 = net.params + l2->bias_offset;
    double loss = 0.0;
    for (int s = 0; s < N; s++) {
        for (int o = 0; o < HID; o++) {
            double v = b1[o];
            for (int i = 0; i < IN; i++)
                v += (double)w1[o * IN + i] * x[s * IN + i];
            h[s][o] = v > 0.0 ? v : 0.0;
        }
        double z[OUT], top = -HUGE_VAL, sum = 0.0;
        for (int o = 0; o < OUT; o++) {
            z[o] = b2[o];
            for (int i = 0; i < HID; i++)
                z[o] += (double)w2[o * HID + i] * h[s][i];
            top = fmax(top, z[o]);
        }
        for (int o = 0; o < OUT; o++)
            sum += exp(z[o] - top);
        for (int o = 0; o < OUT; o++)
            dz[s][o] = exp(z[o] - top) / sum - (o == labels[s]);
        loss -= z[labels[s]] - top - log(sum);
        for (int i = 0; i < HID; i++) {
            dh[s][i] = 0.0;
            if (h[s][i] <= 0.0)
                continue;
            for (int o = 0; o < OUT; o++)
                dh[s][i] += dz[s][o] * w2[o * HID + i];
        }
    }

    NetScratch *scratch = net_scratch_create(&net, N);
    float *grad = xmalloc(net.n_params * sizeof *grad);
    net_predict(&net, scratch, x, N, probs);
    for (int s = 0; s < N; s++)
        for (int o = 0; o < OUT; o++) {
            double p = dz[s][o] + (o == labels[s]);
            ck_assert_msg(fabs(probs[s * OUT + o] - p) <= 1e-5,
                          "sample %d class %d: %g, expected %g", s, o,
                          probs[s * OUT + o], p);
        }
    double got = net_train_batch(&net, scratch, x, labels, N, grad, &rng,
                                 NULL);
    ck_assert_double_eq_tol(got, loss, 1e-5 * loss);

    double *want = xmalloc(net.n_params * sizeof *want);
    for (size_t j = 0; j < net.n_params; j++)
        want[j] = 0.0;
    for (int s = 0; s < N; s++) {
        for (int o = 0; o < HID; o++) {
            for (int i = 0; i < IN; i++)
                want[l1->weight_offset + o * IN + i] +=
                    dh[s][o] * x[s * IN + i];
            want[l1->bias_offset + o] += dh[s][o];
        }
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < HID; i++)
                want[l2->weight_offset + o * HID + i] += dz[s][o] * h[s][i];
            want[l2->bias_offset + o] += dz[s][o];
        }
    }
    for (size_t j = 0; j < net.n_params; j++)
        ck_assert_msg(fabs(grad[j] - want[j]) <= 1e-4 * fabs(want[j]) + 1e-5,
                      "parameter %zu: %g, expected %g", j, grad[j], want[j]);
    free(want);
    free(grad);
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

/* A scratch smaller than the request makes net_predict work in chunks;
 * the probabilities must not change. */
START_TEST(test_net_predict_chunks_batches)
{
    Fixture f;
    float whole[7 * 10], chunked[7 * 10];

    fixture_setup(&f, "default");
    NetScratch *big = net_scratch_create(&f.net, 8);
    NetScratch *small = net_scratch_create(&f.net, 3);
    net_predict(&f.net, big, f.x, 7, whole);
    net_predict(&f.net, small, f.x, 7, chunked);
    for (int i = 0; i < 70; i++)
        ck_assert_float_eq_tol(whole[i], chunked[i], 1e-6f);
    net_scratch_free(big);
    net_scratch_free(small);
    fixture_teardown(&f);
}
END_TEST

/* The gradient is overwritten, not accumulated: NaN in GRAD beforehand
 * must not survive, and two identical calls give identical gradients. */
START_TEST(test_net_train_overwrites_grad)
{
    Fixture f;

    fixture_setup(&f, "default");
    NetScratch *scratch = net_scratch_create(&f.net, 8);
    size_t n = f.net.n_params;
    float *first = xmalloc(n * sizeof *first);
    float *second = xmalloc(n * sizeof *second);

    for (size_t i = 0; i < n; i++)
        first[i] = second[i] = NAN;
    batch_loss(&f.net, scratch, f.x, f.labels, 7, first, 77);
    batch_loss(&f.net, scratch, f.x, f.labels, 7, second, 77);
    /* One assertion per failure, not per element: Check logs each one. */
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(first[i]))
            ck_abort_msg("grad[%zu] = %g after the first call", i, first[i]);
        if (first[i] != second[i])
            ck_abort_msg("grad[%zu] = %g, then %g on the same input", i,
                         first[i], second[i]);
    }
    free(first);
    free(second);
    net_scratch_free(scratch);
    fixture_teardown(&f);
}
END_TEST

/* ---------------------------------------------------------------- batch */

/* Spec of the batch-level tests: a convolution, whose gradient is summed
 * per shard, and two dense layers, one wider than a part of
 * net_batch_grad (96 rows), whose gradients are formed per batch. No
 * dropout, so the shards draw nothing random. */
#define SPEC_BATCH "conv3x3x4,relu,pool2,dense100,relu,dense10"
#define BATCH_SAMPLES 19
#define BATCH_SHARD 8

/* Trains BATCH_SAMPLES inputs as shards of BATCH_SHARD with a NetBatch
 * and compares the summed gradient with one net_train_batch call over all
 * of them, which forms every gradient per call. The shards' sum and the
 * batch-level products add the same terms in another order, so they agree
 * to rounding. Also checks that the shards leave the dense layers'
 * entries of their gradient buffers untouched. */
START_TEST(test_net_shards_match_whole_batch)
{
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_int_eq(net_create(&net, SPEC_BATCH, 1, 28, 28, 10, err,
                                sizeof err), 0);
    rng_seed(&rng, 11);
    net_init_params(&net, &rng);

    size_t n = net.n_params, sample = 784;
    float *x = xmalloc(BATCH_SAMPLES * sample * sizeof *x);
    uint8_t labels[BATCH_SAMPLES];
    float *whole = xmalloc(n * sizeof *whole);
    float *sum = xcalloc(n, sizeof *sum);
    float *shard = xmalloc(n * sizeof *shard);
    NetScratch *all = net_scratch_create(&net, BATCH_SAMPLES);
    NetScratch *part = net_scratch_create(&net, BATCH_SHARD);
    NetBatch *rows = net_batch_create(&net, BATCH_SAMPLES);
    double loss_whole, loss_shards = 0.0;

    fill_uniform(&rng, x, BATCH_SAMPLES * sample);
    for (int s = 0; s < BATCH_SAMPLES; s++)
        labels[s] = (uint8_t)rng_below(&rng, 10);
    loss_whole = net_train_batch(&net, all, x, labels, BATCH_SAMPLES, whole,
                                 NULL, NULL);

    for (int first = 0; first < BATCH_SAMPLES; first += BATCH_SHARD) {
        int count = BATCH_SAMPLES - first < BATCH_SHARD
                    ? BATCH_SAMPLES - first : BATCH_SHARD;

        for (size_t i = 0; i < n; i++)
            shard[i] = NAN;
        loss_shards += net_train_shard(&net, part, x + first * sample,
                                       labels + first, count, shard, NULL,
                                       NULL, rows, first);
        for (int l = 0; l < net.n_layers; l++) {
            const Layer *layer = &net.layers[l];

            for (size_t i = layer->weight_offset;
                 i < layer->weight_offset + layer->param_count; i++) {
                if (net_grad_per_batch(layer) && !isnan(shard[i]))
                    ck_abort_msg("layer %d: shard wrote grad[%zu]", l, i);
                if (!net_grad_per_batch(layer))
                    sum[i] += shard[i];
            }
        }
    }
    ck_assert_int_eq(net_batch_grad_parts(&net), 2 + 1);
    for (int p = 0; p < net_batch_grad_parts(&net); p++)
        net_batch_grad(&net, rows, BATCH_SAMPLES, p, sum);

    ck_assert_double_eq_tol(loss_shards, loss_whole, 1e-9 * BATCH_SAMPLES);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(sum[i] - whole[i]) <= 1e-5 * (1.0 + fabs(whole[i]))))
            ck_abort_msg("grad[%zu] = %.9g from the shards, %.9g from one "
                         "call", i, sum[i], whole[i]);

    net_batch_free(rows);
    net_scratch_free(part);
    net_scratch_free(all);
    free(shard);
    free(sum);
    free(whole);
    free(x);
    net_free(&net);
}
END_TEST

/* Trains SPEC on BATCH_SAMPLES inputs in the three phases: trunk forward
 * per shard, the head over the batch, trunk backward per shard. Writes
 * the summed gradient to GRAD and returns the loss. PFOR, when not NULL,
 * shares the head's products. */
static double train_phases_with(const Net *net, const float *x,
                                const uint8_t *labels, float *grad,
                                NetParallelFor pfor, int temp_per_shard)
{
    size_t sample = 784, width = net_head_width(net), n = net->n_params;
    int n_shards = (BATCH_SAMPLES + BATCH_SHARD - 1) / BATCH_SHARD;
    NetScratch *trunk[(BATCH_SAMPLES + BATCH_SHARD - 1) / BATCH_SHARD];
    NetScratch *temps[(BATCH_SAMPLES + BATCH_SHARD - 1) / BATCH_SHARD];
    NetScratch *head = net_head_scratch_create(net, BATCH_SAMPLES);
    float *features = xmalloc(BATCH_SAMPLES * width * sizeof *features);
    float *dfeatures = xmalloc(BATCH_SAMPLES * width * sizeof *dfeatures);
    float *shard = xmalloc(n * sizeof *shard);
    Rng rngs[(BATCH_SAMPLES + BATCH_SHARD - 1) / BATCH_SHARD];
    double loss;

    for (int k = 0; k < n_shards; k++) {
        int first = k * BATCH_SHARD;
        int count = BATCH_SAMPLES - first < BATCH_SHARD
                    ? BATCH_SAMPLES - first : BATCH_SHARD;

        trunk[k] = net_trunk_scratch_create(net, BATCH_SHARD);
        temps[k] = k == 0 || temp_per_shard
                   ? net_scratch_create(net, BATCH_SHARD) : temps[0];
        rng_seed(&rngs[k], (uint64_t)k + 1);
        net_trunk_forward(net, trunk[k], x + first * sample, count, &rngs[k],
                          features + first * width, temps[k]);
    }
    for (size_t i = 0; i < n; i++)
        grad[i] = 0.0f;
    loss = net_head_train(net, head, features, labels, BATCH_SAMPLES,
                          BATCH_SHARD, rngs, grad, dfeatures, NULL, pfor,
                          NULL);
    for (int k = 0; k < n_shards; k++) {
        int first = k * BATCH_SHARD;
        int count = BATCH_SAMPLES - first < BATCH_SHARD
                    ? BATCH_SAMPLES - first : BATCH_SHARD;

        net_trunk_backward(net, trunk[k], x + first * sample, count,
                           dfeatures + first * width, shard, temps[k]);
        for (int l = 0; l < net_head_first(net); l++) {
            const Layer *layer = &net->layers[l];

            for (size_t i = layer->weight_offset;
                 i < layer->weight_offset + layer->param_count; i++)
                grad[i] += shard[i];
        }
        net_scratch_free(trunk[k]);
    }
    for (int k = 0; k < n_shards; k++)
        if (k == 0 || temp_per_shard)
            net_scratch_free(temps[k]);
    net_scratch_free(head);
    free(features);
    free(dfeatures);
    free(shard);
    return loss;
}

/* The three phases as the trainer runs them on one thread: every shard
 * borrows from the same full scratch. */
static double train_three_phases(const Net *net, const float *x,
                                 const uint8_t *labels, float *grad,
                                 NetParallelFor pfor)
{
    return train_phases_with(net, x, labels, grad, pfor, 0);
}

/* Runs the parts in reverse order, as threads might finish them. */
static void reverse_parts(void *ctx, int n_parts, NetPartFn fn, void *arg)
{
    (void)ctx;
    for (int p = n_parts - 1; p >= 0; p--)
        fn(arg, p);
}

/* The three phases compute what one net_train_batch call over all
 * samples computes, to rounding, and sharing the head's products among
 * parts leaves every bit of the result unchanged. */
START_TEST(test_net_three_phases_match_whole_batch)
{
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_int_eq(net_create(&net, SPEC_BATCH, 1, 28, 28, 10, err,
                                sizeof err), 0);
    ck_assert_int_eq(net_head_first(&net), 3);
    ck_assert_uint_eq(net_head_width(&net), 4 * 13 * 13);
    ck_assert_int_eq(net_head_batched(&net), 1);
    rng_seed(&rng, 13);
    net_init_params(&net, &rng);

    size_t n = net.n_params;
    float *x = xmalloc(BATCH_SAMPLES * 784 * sizeof *x);
    uint8_t labels[BATCH_SAMPLES];
    float *whole = xmalloc(n * sizeof *whole);
    float *phased = xmalloc(n * sizeof *phased);
    float *parted = xmalloc(n * sizeof *parted);
    NetScratch *all = net_scratch_create(&net, BATCH_SAMPLES);

    fill_uniform(&rng, x, BATCH_SAMPLES * 784);
    for (int s = 0; s < BATCH_SAMPLES; s++)
        labels[s] = (uint8_t)rng_below(&rng, 10);
    double loss_whole = net_train_batch(&net, all, x, labels, BATCH_SAMPLES,
                                        whole, NULL, NULL);
    double loss_phased = train_three_phases(&net, x, labels, phased, NULL);
    double loss_parted = train_three_phases(&net, x, labels, parted,
                                            reverse_parts);

    ck_assert_double_eq_tol(loss_phased, loss_whole, 1e-9 * BATCH_SAMPLES);
    ck_assert_double_eq(loss_parted, loss_phased);
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(phased[i] - whole[i]) <= 1e-5 * (1.0 + fabs(whole[i]))))
            ck_abort_msg("grad[%zu] = %.9g in three phases, %.9g from one "
                         "call", i, phased[i], whole[i]);
        if (memcmp(&parted[i], &phased[i], sizeof parted[i]) != 0)
            ck_abort_msg("grad[%zu] = %.9g with parts, %.9g without", i,
                         parted[i], phased[i]);
    }

    net_scratch_free(all);
    free(parted);
    free(phased);
    free(whole);
    free(x);
    net_free(&net);
}
END_TEST

/* Dropout in the head draws each shard's masks from that shard's stream,
 * so the three phases give each sample the masks net_train_batch on its
 * shard gives it. */
/* Trunk scratches borrow the outputs that feed only a pooling layer (here
 * after bn and ReLU, and straight from a convolution) from the full
 * scratch they share. Another shard's forward pass then overwrites them
 * before this shard's backward pass, which must not read them: the
 * gradient must equal, bit for bit, that of shards with a full scratch
 * each. The spec also has outputs that later backward passes read (a
 * convolution before bn, a ReLU with no pooling after it). */
START_TEST(test_net_three_phases_shared_scratch)
{
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_int_eq(net_create(&net, "conv3x3x4:same,bn,relu,pool2,"
                                "conv3x3x4,pool2,conv3x3x3,relu,dense10",
                                1, 28, 28, 10, err, sizeof err), 0);
    ck_assert_int_eq(net_head_first(&net), 8);
    rng_seed(&rng, 17);
    net_init_params(&net, &rng);

    size_t n = net.n_params;
    float *x = xmalloc(BATCH_SAMPLES * 784 * sizeof *x);
    uint8_t labels[BATCH_SAMPLES];
    float *shared = xmalloc(n * sizeof *shared);
    float *own = xmalloc(n * sizeof *own);

    fill_uniform(&rng, x, BATCH_SAMPLES * 784);
    for (int s = 0; s < BATCH_SAMPLES; s++)
        labels[s] = (uint8_t)rng_below(&rng, 10);
    double loss_shared = train_phases_with(&net, x, labels, shared, NULL, 0);
    double loss_own = train_phases_with(&net, x, labels, own, NULL, 1);

    ck_assert_double_eq(loss_shared, loss_own);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&shared[i], &own[i], sizeof own[i]) != 0)
            ck_abort_msg("grad[%zu] = %.9g with a shared scratch, %.9g with "
                         "one per shard", i, shared[i], own[i]);
    free(own);
    free(shared);
    free(x);
    net_free(&net);
}
END_TEST

START_TEST(test_net_head_dropout_matches_shards)
{
    const char *spec = "conv3x3x2,relu,pool2,dense20,relu,dropout0.5,"
                       "dense10";
    char err[NET_ERR_LEN];
    Net net;
    Rng rng;

    ck_assert_int_eq(net_create(&net, spec, 1, 28, 28, 10, err, sizeof err),
                     0);
    rng_seed(&rng, 14);
    net_init_params(&net, &rng);

    float *x = xmalloc(BATCH_SAMPLES * 784 * sizeof *x);
    uint8_t labels[BATCH_SAMPLES];
    float *phased = xmalloc(net.n_params * sizeof *phased);
    float *shard = xmalloc(net.n_params * sizeof *shard);
    double loss_shards = 0.0;
    NetScratch *one = net_scratch_create(&net, BATCH_SHARD);

    fill_uniform(&rng, x, BATCH_SAMPLES * 784);
    for (int s = 0; s < BATCH_SAMPLES; s++)
        labels[s] = (uint8_t)rng_below(&rng, 10);
    for (int first = 0, k = 0; first < BATCH_SAMPLES;
         first += BATCH_SHARD, k++) {
        int count = BATCH_SAMPLES - first < BATCH_SHARD
                    ? BATCH_SAMPLES - first : BATCH_SHARD;
        Rng shard_rng;

        /* The streams train_three_phases seeds. */
        rng_seed(&shard_rng, (uint64_t)k + 1);
        loss_shards += net_train_batch(&net, one, x + first * 784,
                                       labels + first, count, shard,
                                       &shard_rng, NULL);
    }
    ck_assert_double_eq_tol(train_three_phases(&net, x, labels, phased,
                                               NULL),
                            loss_shards, 1e-9 * BATCH_SAMPLES);

    net_scratch_free(one);
    free(shard);
    free(phased);
    free(x);
    net_free(&net);
}
END_TEST

/* A head with batch normalisation would normalise over the whole batch,
 * so it does not take the three phases. */
START_TEST(test_net_head_with_bn_not_batched)
{
    char err[NET_ERR_LEN];
    Net net;

    ck_assert_int_eq(net_create(&net, "conv3x3x4,bn,relu,pool2,dense10", 1,
                                28, 28, 10, err, sizeof err), 0);
    ck_assert_int_eq(net_head_batched(&net), 1);
    net_free(&net);
    ck_assert_int_eq(net_create(&net, "best", 1, 28, 28, 10, err,
                                sizeof err), 0);
    ck_assert_int_eq(net_head_batched(&net), 0);
    net_free(&net);
    ck_assert_int_eq(net_create(&net, "dense16,relu,dense10", 1, 28, 28, 10,
                                err, sizeof err), 0);
    ck_assert_int_eq(net_head_first(&net), 0);
    ck_assert_uint_eq(net_head_width(&net), 784);
    net_free(&net);
}
END_TEST

/* The profiler runs the same arithmetic as the trainer and fills every
 * layer: nonzero FLOPs for the convolution and dense layers only. */
START_TEST(test_net_profiler_fills_layers)
{
    const char *specs[2] = {SPEC_BATCH, "conv3x3x4,relu,pool2,dense100,bn,"
                                        "relu,dense10"};

    for (int v = 0; v < 2; v++) {
        char err[NET_ERR_LEN];
        Net net;
        Rng rng;

        ck_assert_int_eq(net_create(&net, specs[v], 1, 28, 28, 10, err,
                                    sizeof err), 0);
        rng_seed(&rng, 12);
        net_init_params(&net, &rng);

        int layers = net.n_layers;
        float *x = xmalloc(BATCH_SAMPLES * 784 * sizeof *x);
        uint8_t labels[BATCH_SAMPLES];
        NetProfiler *profiler = net_profiler_create(&net, BATCH_SAMPLES,
                                                    BATCH_SHARD);
        NetLayerProfile *profile = xcalloc((size_t)layers, sizeof *profile);

        fill_uniform(&rng, x, BATCH_SAMPLES * 784);
        for (int s = 0; s < BATCH_SAMPLES; s++)
            labels[s] = (uint8_t)rng_below(&rng, 10);
        ck_assert(isfinite(net_profiler_run(profiler, x, labels, &rng,
                                            profile)));
        /* conv3x3x4 on 28x28: 4 * 9 * 26 * 26 multiply-adds per sample. */
        ck_assert_double_eq(profile[0].forward_flops,
                            2.0 * 4 * 9 * 26 * 26 * BATCH_SAMPLES);
        ck_assert_double_eq(profile[0].backward_flops,
                            profile[0].forward_flops);
        ck_assert_double_eq(profile[3].backward_flops,
                            2.0 * profile[3].forward_flops);
        ck_assert_double_eq(profile[1].forward_flops, 0.0);
        ck_assert(profile[0].forward_seconds > 0.0);
        ck_assert(profile[3].backward_seconds > 0.0);
        for (int l = 0; l < layers; l++) {
            ck_assert(profile[l].forward_seconds >= 0.0);
            ck_assert(profile[l].backward_seconds >= 0.0);
        }

        free(profile);
        net_profiler_free(profiler);
        free(x);
        net_free(&net);
    }
}
END_TEST

Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *parse = tcase_create("parse");
    TCase *grads = tcase_create("gradients");
    TCase *passes = tcase_create("passes");

    tcase_add_test(parse, test_net_presets_parse);
    tcase_add_test(parse, test_net_preset_name_round_trip);
    tcase_add_test(parse, test_net_whitespace_ignored);
    tcase_add_test(parse, test_net_small_param_count);
    tcase_add_test(parse, test_net_pool_floors_odd_sizes);
    tcase_add_test(parse, test_net_bad_specs_rejected);
    tcase_add_test(parse, test_net_empty_spec_rejected);
    tcase_add_test(parse, test_net_last_layer_message_names_classes);
    tcase_add_test(parse, test_net_bad_input_shape_rejected);
    tcase_add_test(parse, test_net_he_init_statistics);
    suite_add_tcase(s, parse);

    tcase_set_timeout(grads, 120);
    tcase_add_test(grads, test_net_grad_softmax_dense);
    tcase_add_test(grads, test_net_grad_dense_relu);
    tcase_add_test(grads, test_net_grad_conv_valid);
    tcase_add_test(grads, test_net_grad_conv_same);
    tcase_add_test(grads, test_net_grad_conv_chunks);
    tcase_add_test(grads, test_net_grad_conv_winograd);
    tcase_add_test(grads, test_net_grad_conv_relu);
    tcase_add_test(grads, test_net_grad_single_channel_convs);
    tcase_add_test(grads, test_net_grad_relu_placements);
    tcase_add_test(grads, test_net_grad_pool);
    tcase_add_test(grads, test_net_grad_flatten);
    tcase_add_test(grads, test_net_grad_dropout);
    tcase_add_test(grads, test_net_grad_bn_conv);
    tcase_add_test(grads, test_net_grad_bn_dense);
    tcase_add_test(grads, test_net_grad_bn_placements);
    suite_add_tcase(s, grads);

    TCase *bn = tcase_create("bn");
    tcase_add_test(bn, test_net_bn_parse_and_init);
    tcase_add_test(bn, test_net_bn_predict_uses_running_stats);
    tcase_add_test(bn, test_net_bn_train_uses_batch_stats);
    tcase_add_test(bn, test_net_bn_running_stats_pool_parts);
    tcase_add_test(bn, test_net_nonfinite_layer_found);
    suite_add_tcase(s, bn);

    tcase_set_timeout(passes, 120);
    tcase_add_test(passes, test_net_softmax_loss_values);
    tcase_add_test(passes, test_net_predict_probabilities_sum_to_one);
    tcase_add_test(passes, test_net_predict_ignores_dropout);
    tcase_add_test(passes, test_net_predict_matches_train_forward);
    tcase_add_test(passes, test_net_dense_matches_direct_sums);
    tcase_add_test(passes, test_net_predict_chunks_batches);
    tcase_add_test(passes, test_net_train_overwrites_grad);
    tcase_add_test(passes, test_net_shards_match_whole_batch);
    tcase_add_test(passes, test_net_three_phases_match_whole_batch);
    tcase_add_test(passes, test_net_three_phases_shared_scratch);
    tcase_add_test(passes, test_net_head_dropout_matches_shards);
    tcase_add_test(passes, test_net_head_with_bn_not_batched);
    tcase_add_test(passes, test_net_profiler_fills_layers);
    suite_add_tcase(s, passes);
    return s;
}
