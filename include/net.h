/*
 * net: a feed-forward network described by a spec string, with forward and
 * backward passes over a batch of samples.
 *
 * Spec syntax: comma-separated layers, whitespace ignored.
 *   convKxKxF[:same|:valid]  K x K convolution, F filters, stride 1
 *                            (valid padding unless ":same")
 *   pool2                    2x2 max pooling, stride 2
 *   flatten                  no-op marker; dense layers flatten anyway
 *   denseN                   fully connected, N outputs
 *   relu                     rectified linear unit
 *   dropoutP                 inverted dropout with drop probability P in
 *                            [0, 1), active only in net_train_batch
 * The last layer must be a dense layer with as many outputs as classes;
 * softmax and the cross-entropy loss follow it implicitly. The names
 * "default", "small" and "tf" expand to the built-in networks below.
 *
 * Tensors are NCHW, contiguous, float32. Parameters of all layers live in
 * one array: for each layer its weights, then its biases. Convolution
 * weights are F x C x K x K; dense weights are OUT x IN (row-major).
 */
#ifndef FMNIST_NET_H
#define FMNIST_NET_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define NET_SPEC_DEFAULT \
    "conv3x3x32,relu,pool2,conv3x3x64,relu,pool2,dense128,relu,dropout0.5,dense10"
#define NET_SPEC_SMALL \
    "conv3x3x32,relu,pool2,conv3x3x64,relu,pool2,dense128,relu,dense10"
#define NET_SPEC_TF \
    "conv5x5x32:same,relu,pool2,conv5x5x64:same,relu,pool2,dense1024,relu,dropout0.4,dense10"

#define NET_ERR_LEN 256

typedef enum {
    LAYER_CONV,
    LAYER_POOL,
    LAYER_FLATTEN,
    LAYER_DENSE,
    LAYER_RELU,
    LAYER_DROPOUT
} LayerKind;

typedef struct {
    LayerKind kind;
    int in_c, in_h, in_w;     /* input shape of one sample */
    int out_c, out_h, out_w;  /* output shape; dense layers use out_c only */
    int k;                    /* convolution kernel size or pool size */
    int pad;                  /* convolution padding on each side */
    float rate;               /* dropout drop probability */
    size_t weight_offset;     /* index of the first weight in Net.params */
    size_t bias_offset;       /* index of the first bias in Net.params */
    size_t param_count;       /* weights plus biases */
} Layer;

typedef struct {
    char *spec;               /* canonical spec (presets expanded) */
    int in_c, in_h, in_w;
    int classes;
    int n_layers;
    Layer *layers;
    size_t n_params;
    float *params;            /* 64-byte aligned */
} Net;

/* Opaque per-thread scratch space: activations, gradients and im2col
 * buffers for up to max_batch samples. One per worker, never shared. */
typedef struct NetScratch NetScratch;

/*
 * Parses SPEC (or a preset name) for inputs of IN_C x IN_H x IN_W and
 * CLASSES outputs, and allocates zeroed parameters. On a bad spec returns
 * -1 with ERR naming the offending token and its position, for example
 * "model spec: token 3 \"dense0\": expected a positive width".
 */
int net_create(Net *net, const char *spec, int in_c, int in_h, int in_w,
               int classes, char *err, size_t errlen);

/* Fills weights with He-normal values (stddev sqrt(2 / fan_in)) drawn from
 * RNG and sets biases to zero. */
void net_init_params(Net *net, Rng *rng);

void net_free(Net *net);

/* Returns the forward multiply-adds for one sample. */
double net_forward_macs(const Net *net);

NetScratch *net_scratch_create(const Net *net, int max_batch);
void net_scratch_free(NetScratch *scratch);

/*
 * Runs forward and backward over N samples (N <= max_batch) with dropout
 * active, drawing dropout masks from RNG. Overwrites GRAD (n_params floats)
 * with the gradient of the summed (not averaged) cross-entropy loss.
 * Returns the summed loss; adds the number of correctly classified samples
 * to *CORRECT when CORRECT is not NULL. IMAGES is N x in_c*in_h*in_w.
 */
double net_train_batch(const Net *net, NetScratch *scratch,
                       const float *images, const uint8_t *labels, int n,
                       float *grad, Rng *rng, int *correct);

/* Runs the forward pass without dropout and writes N x classes softmax
 * probabilities to PROBS. */
void net_predict(const Net *net, NetScratch *scratch, const float *images,
                 int n, float *probs);

#endif
