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
 *   bn                       batch normalisation: per channel after a
 *                            convolution or pooling, per unit after a
 *                            dense layer, with a learned scale and shift
 * The last layer must be a dense layer with as many outputs as classes;
 * softmax and the cross-entropy loss follow it implicitly. The names
 * "default", "small" and "tf" expand to the built-in networks below.
 *
 * Tensors are NCHW, contiguous, float32. Parameters of all layers live in
 * one array: for each layer its weights, then its biases. Convolution
 * weights are F x C x K x K; dense weights are OUT x IN (row-major). A bn
 * layer's "weights" are its C scales (gamma) and its "biases" its C shifts
 * (beta).
 *
 * Batch normalisation in net_train_batch normalises with the mean and
 * variance of the samples of that one call, which the trainer makes a
 * shard of TRAINER_SHARD samples (the last shard of a batch can hold
 * fewer, or one more). The result therefore depends only on the shard,
 * never on the thread count. net_predict normalises with running
 * statistics instead. They live in Net.stats and are not parameters:
 * net_train_batch only reports each call's batch statistics (see
 * net_batch_stats), and the caller folds them in with
 * net_update_running_stats, at a moment when no thread reads the Net.
 */
#ifndef FMNIST_NET_H
#define FMNIST_NET_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define NET_SPEC_DEFAULT \
    "conv3x3x32:same,relu,pool2,conv3x3x64:same,relu,pool2,dense128,relu,dropout0.5,dense10"
#define NET_SPEC_SMALL \
    "conv3x3x32,relu,pool2,conv3x3x64,relu,pool2,dense128,relu,dense10"
#define NET_SPEC_TF \
    "conv5x5x32:same,relu,pool2,conv5x5x64:same,relu,pool2,dense1024,relu,dropout0.4,dense10"
#define NET_SPEC_BEST \
    "conv3x3x32:same,bn,relu,pool2,conv3x3x64:same,bn,relu,pool2," \
    "dense256,bn,relu,dropout0.3,dense10"

/* Added to the variance before its square root in batch normalisation. */
#define NET_BN_EPS 1e-5f

/* The number of images that net_find_nonfinite_layer runs. */
#define NET_PROBE_IMAGES 8

#define NET_ERR_LEN 256

typedef enum {
    LAYER_CONV,
    LAYER_POOL,
    LAYER_FLATTEN,
    LAYER_DENSE,
    LAYER_RELU,
    LAYER_DROPOUT,
    LAYER_BN
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
    size_t stats_offset;      /* bn: index of its running means in
                                 Net.stats; its variances follow */
} Layer;

typedef struct {
    char *spec;               /* canonical spec (presets expanded) */
    int in_c, in_h, in_w;
    int classes;
    int n_layers;
    Layer *layers;
    size_t n_params;
    float *params;            /* 64-byte aligned */
    /* Running statistics of the bn layers: for each, C means then C
     * variances. Not trained by gradients; 0 floats without bn layers. */
    size_t n_stats;
    float *stats;
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

/* Returns the name of the preset whose layers SPEC (a canonical spec,
 * as in Net.spec) lists, such as "small", or NULL when it is no preset. */
const char *net_preset_name(const char *spec);

/* Fills weights with He-normal values (stddev sqrt(2 / fan_in)) drawn from
 * RNG and sets biases to zero. Batch normalisation starts as the identity:
 * scales 1, shifts 0, running means 0 and running variances 1. */
void net_init_params(Net *net, Rng *rng);

void net_free(Net *net);

/* Makes DST an independent copy of SRC: spec, layers, parameters and
 * running statistics. Free it with net_free. */
void net_clone(Net *dst, const Net *src);

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

/* Runs the forward pass without dropout, with batch normalisation using
 * the running statistics, and writes N x classes softmax probabilities to
 * PROBS. */
void net_predict(const Net *net, NetScratch *scratch, const float *images,
                 int n, float *probs);

/*
 * Returns the batch statistics of the latest net_train_batch call on
 * SCRATCH, laid out like Net.stats: for each bn layer, the mean and the
 * biased variance (divided by the value count, not count - 1) of every
 * channel over that call's samples and positions. The array is valid
 * until the next call on SCRATCH; it is empty when the net has no bn.
 */
const float *net_batch_stats(const NetScratch *scratch);

/*
 * Folds the batch statistics of N_PARTS calls of net_train_batch into the
 * running statistics, in the order given: PART_STATS[i] came from a call
 * over PART_SAMPLES[i] samples. The parts are pooled exactly into the
 * mean and unbiased variance of all their values, and then
 * running = (1 - MOMENTUM) * running + MOMENTUM * pooled.
 * Writes net->stats, so no thread may run the net meanwhile.
 */
void net_update_running_stats(Net *net, const float *const *part_stats,
                              const int *part_samples, int n_parts,
                              float momentum);

/*
 * Returns the index of the first bn layer that normalises a single value
 * per channel of each sample, or -1 when there is none. That is a bn
 * after a dense or flatten layer, or on a 1x1 feature map. In
 * net_train_batch over one sample such a layer maps every value to its
 * shift, passes no gradient back, and reports a batch variance of 0.
 */
int net_find_single_value_bn(const Net *net);

/*
 * Runs the layers of net_predict over NET_PROBE_IMAGES fixed images with
 * pixel values in [0, 1]: a black one, a white one and uniform noise.
 * Returns the index of the first layer with an infinite or NaN output,
 * or -1 when all are finite. A huge but finite weight or
 * running mean, such as -3e38, passes every check of the values alone,
 * yet makes such an output and with it every prediction NaN.
 * NOTE: weights chosen to cancel out on exactly these images could pass
 * and still overflow on real ones, so this catches damage and
 * divergence, not a file crafted against the test.
 */
int net_find_nonfinite_layer(const Net *net);

/* Returns the name of a layer kind as in a spec, without its numbers:
 * "conv", "pool", "dense", "bn" and so on. */
const char *net_layer_name(LayerKind kind);

/*
 * Batch-level gradients of dense layers. A dense layer's weight gradient
 * sums one OUT x IN outer product per sample. Formed by each call of
 * net_train_batch over a shard of a few samples, it costs a pass over the
 * whole weight matrix for a few multiply-adds per weight, and every shard
 * needs its own copy. net_train_shard with a NetBatch instead keeps each
 * sample's input row and output-gradient row of the dense layers, and
 * after the last shard net_batch_grad forms their gradients once over
 * the whole batch, in parts that threads can share.
 */
typedef struct NetBatch NetBatch;

/* Allocates the rows of up to MAX_BATCH samples for every dense layer of
 * NET. Free with net_batch_free. */
NetBatch *net_batch_create(const Net *net, int max_batch);
void net_batch_free(NetBatch *batch);

/* Returns 1 when net_train_shard with a NetBatch leaves the gradient of
 * layer L to net_batch_grad (dense layers), else 0. */
int net_grad_per_batch(const Layer *l);

/* What net_conv_winograd returns: which passes of a convolution run
 * through winograd_conv instead of im2col and a GEMM. */
enum {
    NET_WINO_FORWARD = 1,
    NET_WINO_INPUT_GRAD = 2,
    NET_WINO_WEIGHT_GRAD = 4
};

/* Returns the NET_WINO_* flags of layer L, 0 for a layer that is not a
 * convolution or does not gain from Winograd. */
int net_conv_winograd(const Layer *l);

/* Returns the index of the pooling layer whose output convolution I of
 * NET writes in the same pass (a single-channel convolution followed by
 * pooling, with at most a ReLU between), or -1. Training then also takes
 * the convolution's gradients straight from the pooling layer's, when
 * nothing needs the input gradient. */
int net_conv_pool_fused(const Net *net, int i);

/*
 * Runs net_train_batch on N samples that are rows FIRST..FIRST+N-1 of a
 * batch. With BATCH NULL it is net_train_batch. Otherwise the layers for
 * which net_grad_per_batch returns 1 write nothing to GRAD and store their
 * rows in BATCH instead. Threads may call it at once with their own
 * scratch and disjoint rows of one BATCH.
 */
double net_train_shard(const Net *net, NetScratch *scratch,
                       const float *images, const uint8_t *labels, int n,
                       float *grad, Rng *rng, int *correct, NetBatch *batch,
                       int first);

/* Returns the number of parts net_batch_grad splits NET's batch-level
 * gradients into. The count depends on NET only. */
int net_batch_grad_parts(const Net *net);

/*
 * Writes part PART (0 <= PART < net_batch_grad_parts) of the batch-level
 * gradients over rows 0..N-1 of BATCH into GRAD: the weight and bias
 * gradients, summed over the samples, of a block of one dense layer's
 * output units. Parts write disjoint entries of GRAD and each entry's
 * value does not depend on which thread computes it, so threads may share
 * the parts in any order.
 */
void net_batch_grad(const Net *net, const NetBatch *batch, int n, int part,
                    float *grad);

/*
 * Batch-level head. The head of a network is its layers from the first
 * flatten or dense layer on, and the trunk the layers before it. Run per
 * shard, the head's dense layers read their whole weight matrices for a
 * few samples, twice per shard. Trained in three phases instead, each
 * weight matrix is read twice per batch:
 *   1. net_trunk_forward on every shard, each with its own trunk scratch,
 *      writes the shard's rows of the N x net_head_width features;
 *   2. net_head_train runs the head forward and backward over all N rows,
 *      writes the head's gradients (summed over the batch) and the N x
 *      width feature gradients, and shares its products among threads
 *      through a caller's parallel-for;
 *   3. net_trunk_backward on every shard, from its rows of the feature
 *      gradients, writes the trunk's gradients for that shard.
 * This is the same computation as net_train_batch on each shard with the
 * dense gradients summed over the batch, except in the rounding.
 * net_head_batched tells when it applies: a head with batch
 * normalisation would normalise over the whole batch instead of each
 * shard, so such a net keeps net_train_shard.
 */

/* Multiply-adds (rows x columns x inner size) from which net_head_train
 * shares a dense product among threads. Smaller products run on the
 * calling thread, because posting them to the pool costs more than the
 * second core saves. In fmnist-bench on 2 cores of an AVX-512 Xeon, the
 * 64 x 1600 by 128 product of "small" (13 million) ran faster on two
 * threads once waiting threads polled before sleeping. */
#define NET_DENSE_SPLIT_MIN (1L << 23)

/* Floats of patches (im2col output) that a convolution lowers at a time.
 * It runs over its samples in chunks of as many samples as fit, at least
 * one, so the patch matrix stays in a 2 MB L2 cache between im2col and
 * the products that read it. */
#define NET_CONV_CHUNK_FLOATS ((size_t)384 * 1024)

/* Floats of the transformed inputs and outputs of the samples that a
 * Winograd convolution handles at a time (2.5 MB). On the second layer
 * of "tf", chunks of 2 to 4 samples ran about 10% faster than 8. 3x3
 * kernels take samples in groups of 8, one per vector lane, so their
 * chunks hold at least 8 samples and exceed this on large maps: 14.5 MB
 * for 128 channels into 128 on 28 x 28. */
#define NET_WINO_CHUNK_FLOATS ((size_t)640 * 1024)

/* Returns the samples per chunk that the Winograd passes of convolution
 * L take over N samples: as many as fit NET_WINO_CHUNK_FLOATS, at least
 * 1 and at most N. */
int net_wino_chunk_samples(const Layer *l, int n);

/* Runs FN(ARG, part) for every part 0..N_PARTS-1, on any threads in any
 * order, and returns once all have finished. It may skip parts only when
 * its owner discards everything net_head_train writes in that call. */
typedef void (*NetPartFn)(void *arg, int part);
typedef void (*NetParallelFor)(void *ctx, int n_parts, NetPartFn fn,
                               void *arg);

/* Returns the index of the head's first layer. 0 means the trunk is
 * empty and the features are the images. */
int net_head_first(const Net *net);

/* Returns the floats per sample entering the head. */
size_t net_head_width(const Net *net);

/* Returns 1 when the three phases apply to NET (its head has no batch
 * normalisation), else 0. */
int net_head_batched(const Net *net);

/* Allocates a scratch for the trunk layers' activations only, for up to
 * MAX_BATCH samples. The patch matrices, the output gradients and the
 * other backward temporaries are borrowed from a full scratch of the
 * thread that runs each phase. Free with net_scratch_free. */
NetScratch *net_trunk_scratch_create(const Net *net, int max_batch);

/* Allocates a scratch for the head layers only, for up to MAX_BATCH
 * samples. Free with net_scratch_free. */
NetScratch *net_head_scratch_create(const Net *net, int max_batch);

/* Runs the trunk forward over N images with dropout drawn from RNG, keeps
 * the activations in SCRATCH (a trunk scratch, which must stay with this
 * shard until net_trunk_backward) and writes N x net_head_width sample-
 * major rows to FEATURES. TEMP, a full scratch of the calling thread for
 * at least N samples (net_scratch_create), lends its patch matrices. */
void net_trunk_forward(const Net *net, NetScratch *scratch,
                       const float *images, int n, Rng *rng,
                       float *features, const NetScratch *temp);

/* Runs the trunk backward of the shard whose forward SCRATCH holds, from
 * N x net_head_width rows of DFEATURES, and overwrites the trunk layers'
 * entries of GRAD. TEMP, as for net_trunk_forward, lends its patch
 * matrices, into which each convolution's input is lowered again, its
 * output gradient buffers and its other temporaries. */
void net_trunk_backward(const Net *net, NetScratch *scratch,
                        const float *images, int n, const float *dfeatures,
                        float *grad, const NetScratch *temp);

/*
 * Runs the head forward and backward over N rows of FEATURES with LABELS,
 * with batch statistics and dropout active. Rows come in shards of SHARD
 * rows, and shard k draws its dropout masks from SHARD_RNGS[k], after
 * the draws of its trunk. Overwrites the head layers' entries of GRAD
 * with the gradient of the summed loss, writes N rows of DFEATURES, adds
 * the correct predictions to *CORRECT (when not NULL) and returns the
 * summed loss. PFOR (when not NULL) with CTX shares the dense products
 * of NET_DENSE_SPLIT_MIN multiply-adds or more among threads, in parts
 * of 64 units that do not depend on the thread count. The results are
 * the same without it, with one exception. In a layer of more than 64
 * units whose last part has 32 or fewer, such as dense80, sgemm
 * computes that part by its dot path, which sums in another order, so
 * its outputs can differ in the last bits.
 */
double net_head_train(const Net *net, NetScratch *head, const float *features,
                      const uint8_t *labels, int n, int shard,
                      Rng *shard_rngs, float *grad, float *dfeatures,
                      int *correct, NetParallelFor pfor, void *ctx);

/* Time and arithmetic of one layer in one net_profile call. FLOPs count
 * the multiply-adds of convolutions and dense layers as 2 each; the other
 * layers count 0, so only their time is meaningful. */
typedef struct {
    double forward_seconds;
    double backward_seconds;
    double forward_flops;
    double backward_flops;
} NetLayerProfile;

/* Buffers to profile batches of one size: opaque. */
typedef struct NetProfiler NetProfiler;

/* Allocates what net_profiler_run needs to train batches of N samples in
 * shards of SHARD. NET must outlive it. Free with net_profiler_free. */
NetProfiler *net_profiler_create(const Net *net, int n, int shard);
void net_profiler_free(NetProfiler *profiler);

/*
 * Trains one batch of N images on the calling thread the way the trainer
 * does: in the three phases when net_head_batched, else shards through
 * net_train_shard and then net_batch_grad. Fills PROFILE (one entry per
 * layer) with each layer's summed forward and backward time and FLOPs.
 * The batch-level dense gradients count as their layer's backward time,
 * and the loss and softmax as no layer's. Times are wall-clock time on
 * the monotonic clock, so a caller that wants figures free of waits for
 * a busy core keeps the fastest of several runs. Dropout draws from RNG.
 * Returns the summed loss. The clock is read twice per layer and pass,
 * and the timings include that. The other entry points read no clock.
 */
double net_profiler_run(NetProfiler *profiler, const float *images,
                        const uint8_t *labels, Rng *rng,
                        NetLayerProfile *profile);

#endif
