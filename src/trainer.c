/*
 * trainer: the epoch loop on a coordinator thread, a pool of worker
 * threads for the per-shard work, and the status snapshot the UI copies.
 *
 * A batch of up to cfg.batch shuffled training samples is gathered into
 * one contiguous buffer and cut into shards of TRAINER_SHARD samples. A
 * net with a bn layer over single values never gets a shard of one sample,
 * and skips a last batch of one sample (see shard_count and plan_epochs).
 * The workers are created once and wait on a condition variable between
 * jobs. The thread that posts a job takes shards with them, so N threads
 * compute with N - 1 workers. They take shards in any order, with
 * augmentation and dropout drawn from an Rng seeded by (seed, global
 * step, shard index). A batch runs in
 * the three phases of net.h. First the workers run the trunk forward of
 * each shard. Then the coordinator runs the dense head over the whole
 * batch, and the workers share its products. Last the workers run the
 * trunk backward of each shard into that shard's own gradient buffer. The
 * head reads each weight matrix twice per batch instead of twice per
 * shard. A net whose head has batch normalisation, which normalises each
 * shard on its own, instead runs net_train_shard on each shard and forms
 * the dense layers' weight gradients over the batch afterwards
 * (net_batch_grad, in parts the workers share). So does a net with a bn
 * layer over single values, because shard_count can merge its last two
 * shards.
 *
 * Then the workers take slices of the parameter vector, and for each
 * slice sum the other layers' shard gradients in shard order, divide by
 * the batch size, and apply weight decay and the optimiser at the
 * scheduled learning rate. Every parameter gets the same operations
 * whichever thread takes its slice. Batch normalisation normalises each
 * shard with its own statistics, and the coordinator pools the shards'
 * statistics in shard order into the running statistics. So the weights
 * depend on the seed and never on the thread count or the thread
 * schedule. Evaluation cuts the test set, and the validation images when
 * there are some, into shards of EVAL_SHARD images the same way, with
 * net_predict and no dropout.
 *
 * Only the update changes the state of the run. A stop request makes the
 * workers skip the shards of the batch's earlier jobs that they have not
 * started, and the coordinator then drops the batch before its update.
 * So a stop takes effect within a shard's time and never applies part of
 * a batch.
 *
 * Every random stream derives from the run seed: the initial weights, the
 * shuffle of epoch e (from the identity permutation, so it depends on e
 * only) and the augmentation and dropout masks of each (step, shard). A
 * checkpoint therefore needs only the seed, the epoch and step counts and
 * the position inside an unfinished epoch to continue exactly where the
 * run stopped. A resumed run uses the checkpoint's seed, not cfg.seed.
 * The checkpoint stores the base learning rate; the schedule,
 * augmentation, weight decay and validation split come from the
 * TrainerConfig of each invocation.
 *
 * Locks, taken in this order when nested:
 *   job_lock   the network, optimiser, run progress, batch and evaluation
 *              buffers and the posting of pool jobs. The coordinator holds
 *              it for one batch, one evaluation or one save at a time.
 *   pool.lock  the job fields of the pool.
 *   pred_lock  the published per-image predictions.
 *   lock       the status snapshot and the pause, stop and save requests.
 *
 * Memory: each shard of a batch has a gradient buffer of n_params floats,
 * but only the ranges of the layers whose gradients are summed per shard
 * (all but the dense layers) are ever written, and the buffers come from
 * xmalloc_pages, so the rest takes no memory. For "tf" at batch 64 that is
 * 8 x 0.2 MB instead of 8 x 13 MB. In the three phases each shard also
 * keeps its trunk activations between its forward and backward passes
 * (3.3 MB per shard of 8 for "default" and "tf"), while the patch
 * matrices, the largest buffers, stay one set per worker.
 */
#include "config.h"

#include "trainer.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "metrics.h"
#include "savelock.h"
#include "util.h"

/* Test images per evaluation shard; larger than TRAINER_SHARD because
 * prediction needs no gradient buffer. */
#define EVAL_SHARD 32
/* Parameters per slice of the gradient reduction and update. */
#define REDUCE_SLICE 16384
/* How long a thread that waits for a job, or for the end of one, polls
 * before it sleeps on a condition variable. A batch posts about five jobs
 * with a few to a few hundred microseconds between them, and waking a
 * sleeping thread took about 50 us on 2 vCPUs of a KVM guest. A paused
 * or finished run still sleeps after this long. */
#define POOL_POLL_SECONDS 100e-6
/* Batches between training-history points at the start of a run; the
 * stride doubles each time the buffer fills. */
#define HISTORY_STRIDE 2
/* Time constants, in seconds of training, of the images-per-second
 * averages. The shown rate follows a change of load within seconds. The
 * ETA's rate follows it over half a minute, so the estimate does not jump
 * with every busy moment of the machine. */
#define RATE_SHOWN_TAU 5.0
#define RATE_ETA_TAU 30.0
#define DEFAULT_SAVE_PATH "fmnist.ckpt"
#define DEFAULT_LR_SGD 0.01f
#define DEFAULT_LR_ADAM 0.001f
/* Weight of each batch in the running statistics of batch normalisation,
 * the usual 0.1: the running values follow roughly the last 10 batches. */
#define BN_MOMENTUM 0.1f

/* Keeps the random streams derived from one seed apart. */
enum { STREAM_INIT = 1, STREAM_SHUFFLE = 2, STREAM_DROPOUT = 3 };

typedef enum {
    JOB_TRUNK_FWD,   /* one shard: trunk forward and its features */
    JOB_TRUNK_BWD,   /* one shard: trunk backward, shard gradients */
    JOB_PARTS,       /* one part of a step of the head (pool.fn) */
    JOB_TRAIN,       /* one shard: forward, backward, shard gradients */
    JOB_BATCH_GRAD,  /* one part of the batch-level dense gradients */
    JOB_UPDATE,      /* one slice: reduction, weight decay, optimiser */
    JOB_EVAL,
    JOB_QUIT
} JobKind;

/* Parameters FIRST..END-1. */
typedef struct {
    size_t first, end;
} ParamRange;

typedef struct Worker {
    Trainer *tr;
    NetScratch *scratch;    /* used by this worker only */
    float *eval_images;     /* EVAL_SHARD images converted to floats */
    pthread_t thread;
    int has_thread;         /* 0 for Pool.poster */
} Worker;

/* Job board of the worker pool. Every field is guarded by lock. The
 * counters generation and shards_done are also atomic, so that a waiting
 * thread can poll them without the lock before it sleeps. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t work;    /* broadcast when a job is posted */
    pthread_cond_t done;    /* signalled when the last shard of a job ends */
    JobKind kind;
    int cancellable;        /* a stop request skips the remaining shards */
    NetPartFn fn;           /* JOB_PARTS: what each part runs */
    void *arg;
    atomic_uint generation; /* incremented for every posted job */
    int n_shards;
    int next_shard;         /* first shard no worker has taken */
    atomic_int shards_done;
    /* The worker whose scratch the thread in pool_run uses: that thread
     * takes shards too instead of sleeping until the others are done. */
    struct Worker *poster;
} Pool;

/* The batch being trained: filled by the coordinator, read by the workers,
 * each of which writes only the slots of the shards it took. */
typedef struct {
    float *images;          /* batch x DATASET_PIXELS */
    uint8_t *labels;        /* batch */
    int n;                  /* samples in this batch */
    int n_shards;           /* shards in this batch */
    int64_t step;           /* global step, which seeds dropout */
    int max_shards;
    float **grad;           /* max_shards gradients of n_params floats,
                               from xmalloc_pages; only shard_ranges are
                               written */
    float **stats;          /* max_shards bn batch statistics (n_stats) */
    int *samples;           /* samples per shard */
    double *loss;           /* summed loss per shard */
    int *correct;           /* correct predictions per shard */
    float *mean_grad;       /* n_params floats handed to the optimiser */
    NetBatch *rows;         /* the dense layers' rows for net_batch_grad */
    size_t *bad;            /* per update slice: first parameter that is
                               not finite after the update, or n_params */
    /* The three phases (net_head_batched), else all NULL: */
    NetScratch **trunk;     /* max_shards trunk scratches, one per shard */
    NetScratch *head;       /* the head for the whole batch */
    float *features;        /* batch x net_head_width trunk outputs */
    float *dfeatures;       /* their gradients from the head */
    Rng *rngs;              /* max_shards streams: each shard's dropout */
} Batch;

/* Evaluation buffers, written by the workers shard by shard. */
typedef struct {
    int n_shards;
    uint8_t *predicted;     /* test count classes */
    float *probs;           /* test count x DATASET_CLASSES */
    double *loss;           /* summed loss per shard */
    int *nonfinite;         /* images with a non-finite probability, per
                               shard */
} EvalBuffers;

/* The images the current JOB_EVAL predicts and where the results go:
 * the test set into EvalBuffers, or the validation images into their own
 * buffers. */
typedef struct {
    const Dataset *data;
    int first;              /* the job covers images first..first+count-1 */
    const uint8_t *labels;  /* labels of those images */
    int count;
    int n_shards;
    uint8_t *predicted;
    float *probs;
    double *loss;
    int *nonfinite;
} EvalJob;

typedef struct {
    double loss, acc;
    long nonfinite;         /* test images with a non-finite probability */
    long val_nonfinite;     /* the same for the validation images */
    long confusion[DATASET_CLASSES][DATASET_CLASSES];
    long unpredicted[DATASET_CLASSES]; /* test images of each class
                                          without a prediction */
    int has_val;            /* val_loss and val_acc are set */
    double val_loss, val_acc;
} EvalResult;

/* Position and history of the run: the part a checkpoint stores. */
typedef struct {
    int64_t epochs_done;
    int64_t step;
    CheckpointEpoch epoch;  /* sums over the epoch in progress */
    int history_stride;
    int n_history;
    float loss_history[TRAINER_HISTORY];
    float acc_history[TRAINER_HISTORY];
    int n_test_history;
    float test_acc_history[TRAINER_HISTORY];
    /* Checkpoints do not store these, so a resumed run starts them from
     * the saved history, which may have been merged. */
    TrainerRange loss_range, acc_range, test_acc_range;
} Progress;

struct Trainer {
    /* Fixed after trainer_create (t_start after trainer_start, or after
     * the evaluation that clock_waiting marks). */
    TrainerConfig cfg;      /* strings point to the copies below */
    char *spec, *save_path, *load_path;
    /* The file of requested saves without save_path or load_path. Set
     * once under lock by the first trainer_request_save, before the
     * request it serves is posted. */
    char *request_file;
    /* Names request_file had before a save chose another one. They are
     * freed with the trainer, since another thread may still read one. */
    char **old_request_files;
    int n_old_request_files;
    /* The --load file as it was when loaded, so that the first requested
     * save to it can tell whether another run has written it since. */
    struct stat load_st;
    int have_load_st;
    /* Set when requested saves moved from the --load file to
     * request_file, with the reason the status message gives. */
    int load_file_passed;
    char pass_reason[PATH_MAX + 64];
    /* The lock of the file of requested saves when that is not save_path,
     * whose lock main.c takes. Taken at the first save to it, under
     * job_lock, and released by trainer_free. */
    SaveLock request_lock;
    const Dataset *train, *test;
    int n_train;
    /* Samples trained per epoch: n_train, or n_train - 1 when
     * single_value_bn is set and the last batch would hold one sample.
     * That sample, the last of the epoch's shuffled order, is skipped. */
    int n_epoch;
    int n_val;              /* validation images at the end of train */
    /* The net has a bn layer over single values (net_find_single_value_bn),
     * which cannot normalise one sample. No shard then contains just one
     * sample (see shard_count), and a last batch of one is skipped. */
    int single_value_bn;
    int n_threads;
    uint64_t seed;
    int64_t epochs_end;     /* epoch number the run ends with */
    double t_start;
    /* Parameters whose gradients are summed over the shards: those of
     * every layer for which net_grad_per_batch returns 0. */
    ParamRange *shard_ranges;
    int n_shard_ranges;
    /* Weights that weight decay applies to: convolution and dense. */
    ParamRange *decay_ranges;
    int n_decay_ranges;

    /* Guarded by job_lock. */
    pthread_mutex_t job_lock;
    Net net;
    Optim opt;
    Progress progress;
    float base_lr;          /* learning rate before the schedule */
    float lr_user_scale;    /* copy of lr_scale for the current batch */
    double opt_lr_raw;      /* opt.lr before lr_floor */
    int *order;             /* n_train indices, shuffled per epoch */
    Batch batch;
    EvalBuffers eval;
    EvalBuffers val;        /* n_shards is 0 without validation images */
    EvalJob eval_job;
    unsigned eval_count;    /* evaluations finished */
    int64_t saved_step;     /* step of the latest save attempt, or -1 */
    int64_t saved_epochs;   /* its epochs done and batches of the next */
    int64_t saved_batch;
    int64_t saved_ok_step;  /* step of the latest checkpoint written */
    int64_t eval_step;      /* step of the latest evaluation */
    int history_changed;    /* history not yet copied to the status */
    int diverged;           /* a non-finite loss, weight or prediction
                               ended the run */
    double eval_seconds;    /* duration of the latest evaluation */

    /* Only the coordinator thread touches these. */
    RateAverage rate_shown;
    RateAverage rate_eta;
    double epoch_seconds;   /* training time of this epoch in this run */
    long epoch_run_samples; /* samples of this epoch trained in this run */
    double batch_seconds;   /* time of this run's batches, no evaluations */
    long batch_samples;     /* samples of this run's batches */

    Pool pool;
    Worker *workers;

    /* Guarded by pred_lock. */
    pthread_mutex_t pred_lock;
    unsigned pred_generation;
    uint8_t *pub_predicted;
    float *pub_probs;

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t control; /* broadcast on pause, resume, stop and save */
    TrainerStatus status;
    int paused, stop_requested, save_requested;
    double paused_seconds;  /* time spent paused in finished pauses */
    double paused_since;    /* run_clock() when the current pause began;
                               0 when not paused */
    /* Time stopped without a timed SIGTSTP stop (SIGSTOP), as
     * end_interval estimated it. Only the thread that trains or
     * evaluates writes it, so that thread reads it without the lock. */
    double untimed_stopped;
    /* Set while the loaded network is evaluated before training, which
     * the training time leaves out. t_start is set when it ends. */
    int clock_waiting;
    float lr_scale;         /* product of the trainer_scale_lr factors */
    double status_lr_raw;   /* status.lr before lr_floor, which
                               trainer_scale_lr scales */
    /* The batch in progress, for trainer_get_status: when it began on
     * run_clock (0 between batches), its samples, and the averages as
     * the latest finished batch left them. */
    double live_began;
    int live_n;
    RateAverage live_shown, live_eta;
    int running;            /* the coordinator handles requests */

    /* Set by trainer_request_stop and never cleared. The workers read it
     * without a lock before each shard of a cancellable job, and the
     * coordinator reads it before the update of each batch. */
    atomic_int stopping;

    pthread_t coordinator;
    int started, joined;    /* used by the thread owning the trainer */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The splitmix64 finaliser: a bijection that scatters nearby inputs. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Returns the seed of one random stream of the run. */
static uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t a,
                            uint64_t b)
{
    return mix64(mix64(mix64(seed ^ mix64(stream)) ^ a) ^ b);
}

static void set_message(Trainer *tr, int is_error, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&tr->lock);
    va_start(ap, fmt);
    vsnprintf(tr->status.message, sizeof tr->status.message, fmt, ap);
    va_end(ap);
    tr->status.message_seq++;
    tr->status.message_is_error = is_error;
    pthread_mutex_unlock(&tr->lock);
}

/*
 * Returns the monotonic clock in seconds without the time the process
 * spent stopped, during which no thread trains: the stops by SIGTSTP
 * (Ctrl-Z) that util_stopped_seconds times, and the other stops that
 * end_interval estimated. Training time, pauses and batch times are
 * measured on it. The thread that trains or evaluates calls it with or
 * without tr->lock, and other threads hold the lock.
 */
static double run_clock(const Trainer *tr)
{
    return util_now() - util_stopped_seconds() - tr->untimed_stopped;
}

/*
 * Returns the seconds to count for a batch or an evaluation that began
 * at START on run_clock and ends now, whose work usually takes EXPECTED
 * seconds (0 when unknown). The interval counts whole, however slow the
 * machine was, unless a SIGCONT that no timed SIGTSTP stop accounts for
 * came during it. Then util_running_seconds leaves out the stop that
 * SIGCONT ended, and the time left out moves to untimed_stopped, so the
 * training time leaves it out too.
 *
 * A suspend of the whole system costs nothing, since CLOCK_MONOTONIC
 * does not count it on Linux (clock_gettime(2)). A virtual machine that
 * its hypervisor pauses gets no signal, so if its monotonic clock jumps
 * on resume, which depends on the hypervisor, the jump counts whole.
 * NOTE: a stop between intervals, such as during a checkpoint save,
 * counts in the training time, though not in the speed.
 */
static double end_interval(Trainer *tr, double start, double expected)
{
    double continued = util_untimed_continue() - tr->untimed_stopped;
    double end = run_clock(tr);
    double counted = util_running_seconds(start, end, continued, expected);

    if (counted < end - start) {
        pthread_mutex_lock(&tr->lock);
        tr->untimed_stopped += end - start - counted;
        pthread_mutex_unlock(&tr->lock);
    }
    return counted;
}

/* Returns the seconds since trainer_start, or since the evaluation of
 * the loaded network before training ended, without the time spent
 * paused. The caller holds tr->lock. */
static double run_seconds(const Trainer *tr, double now)
{
    double paused = tr->paused_seconds;

    if (tr->clock_waiting)
        return 0.0;
    if (tr->paused_since > 0.0)
        paused += now - tr->paused_since;
    return now - tr->t_start - paused;
}

/* ------------------------------------------------------------ worker pool */

/* Seeds shard SHARD's stream for this step, augments its images in
 * place and returns them. */
static float *prepare_shard(Trainer *tr, int shard, int n, Rng *rng)
{
    Batch *b = &tr->batch;
    float *images = b->images + (size_t)shard * TRAINER_SHARD
                    * DATASET_PIXELS;

    rng_seed(rng, derive_seed(tr->seed, STREAM_DROPOUT, (uint64_t)b->step,
                              (uint64_t)shard));
    for (int i = 0; i < n; i++)
        augment_image(&tr->cfg.augment, images + (size_t)i * DATASET_PIXELS,
                      rng);
    return images;
}

/* Returns the number of shards of a batch of N samples: one per
 * TRAINER_SHARD samples, the last one holding the rest. With
 * single_value_bn, a rest of one sample joins the shard before it, which
 * then contains TRAINER_SHARD + 1, because a bn layer over single values
 * cannot normalise a shard of one sample. The count depends on N and the
 * net only, so the weights stay independent of the thread count. */
static int shard_count(const Trainer *tr, int n)
{
    int shards = (n + TRAINER_SHARD - 1) / TRAINER_SHARD;

    if (tr->single_value_bn && shards > 1 && n % TRAINER_SHARD == 1)
        shards--;
    return shards;
}

/* Returns the samples in shard SHARD of the batch: TRAINER_SHARD, or the
 * rest in the last shard (see shard_count). */
static int shard_samples(const Batch *b, int shard)
{
    int first = shard * TRAINER_SHARD;

    return shard == b->n_shards - 1 ? b->n - first : TRAINER_SHARD;
}

/* Phase 1: the trunk forward of one shard, which keeps its activations
 * in the shard's own scratch and its stream in b->rngs for the head. The
 * worker's own scratch lends the patch matrices. */
static void run_trunk_forward(Trainer *tr, Worker *w, int shard)
{
    Batch *b = &tr->batch;
    int n = shard_samples(b, shard);
    float *images = prepare_shard(tr, shard, n, &b->rngs[shard]);

    net_trunk_forward(&tr->net, b->trunk[shard], images, n, &b->rngs[shard],
                      b->features + (size_t)shard * TRAINER_SHARD
                      * net_head_width(&tr->net), w->scratch);
    b->samples[shard] = n;
    memcpy(b->stats[shard], net_batch_stats(b->trunk[shard]),
           tr->net.n_stats * sizeof(float));
}

/* Phase 3: the trunk backward of one shard into its gradient buffer. The
 * worker's own scratch lends the temporaries. */
static void run_trunk_backward(Trainer *tr, Worker *w, int shard)
{
    Batch *b = &tr->batch;
    int first = shard * TRAINER_SHARD;

    net_trunk_backward(&tr->net, b->trunk[shard],
                       b->images + (size_t)first * DATASET_PIXELS,
                       shard_samples(b, shard),
                       b->dfeatures + (size_t)first
                       * net_head_width(&tr->net),
                       b->grad[shard], w->scratch);
}

static void run_train_shard(Trainer *tr, Worker *w, int shard)
{
    Batch *b = &tr->batch;
    int first = shard * TRAINER_SHARD;
    int n = shard_samples(b, shard);
    int correct = 0;
    Rng rng;
    /* Each shard owns its images in the batch buffer, which gather_batch
     * refills from the dataset for every batch. */
    float *images = prepare_shard(tr, shard, n, &rng);

    b->loss[shard] = net_train_shard(&tr->net, w->scratch, images,
                                     b->labels + first, n, b->grad[shard],
                                     &rng, &correct, b->rows, first);
    b->correct[shard] = correct;
    b->samples[shard] = n;
    memcpy(b->stats[shard], net_batch_stats(w->scratch),
           tr->net.n_stats * sizeof(float));
}

/* Calls FN(TR, FIRST, END) for the part of each of the N RANGES that
 * lies inside [LO, HI). */
static void for_ranges(Trainer *tr, const ParamRange *ranges, int n,
                       size_t lo, size_t hi,
                       void (*fn)(Trainer *tr, size_t first, size_t end))
{
    for (int r = 0; r < n; r++) {
        size_t first = ranges[r].first > lo ? ranges[r].first : lo;
        size_t end = ranges[r].end < hi ? ranges[r].end : hi;

        if (first < end)
            fn(tr, first, end);
    }
}

/* Sums the shard gradients of FIRST..END-1 into mean_grad in shard
 * order. */
static void sum_shards(Trainer *tr, size_t first, size_t end)
{
    const Batch *b = &tr->batch;
    float *mean = b->mean_grad;

    memcpy(mean + first, b->grad[0] + first, (end - first) * sizeof(float));
    for (int s = 1; s < b->n_shards; s++) {
        const float *g = b->grad[s];

        for (size_t j = first; j < end; j++)
            mean[j] += g[j];
    }
}

/* Applies weight decay at the step's learning rate to weights
 * FIRST..END-1: L2 decay adds to their gradients, decoupled decay shrinks
 * the weights. Biases and the bn scales and shifts are left alone, since
 * shrinking them does not limit the capacity of the network. */
static void decay_weights(Trainer *tr, size_t first, size_t end)
{
    float decay = tr->cfg.weight_decay;
    size_t n = end - first;

    if (tr->cfg.decay == DECAY_L2)
        optim_decay_l2(tr->batch.mean_grad + first, tr->net.params + first,
                       n, decay);
    else
        optim_decay_decoupled(tr->net.params + first, n, tr->opt.lr, decay);
}

/* Returns the index of the first value of X[FIRST..END-1] that is NaN or
 * infinite, or NONE. The scan counts all-ones exponents with integer
 * operations, which the compiler vectorises, and looks for the index only
 * on a hit. */
static size_t first_non_finite(const float *x, size_t first, size_t end,
                               size_t none)
{
    uint32_t hits = 0;

    for (size_t j = first; j < end; j++) {
        uint32_t bits;

        memcpy(&bits, &x[j], sizeof bits);
        hits += (bits & 0x7f800000u) == 0x7f800000u;
    }
    if (hits == 0)
        return none;
    for (size_t j = first; j < end; j++)
        if (!isfinite(x[j]))
            return j;
    return none;
}

/*
 * Finishes the update of one slice of the parameters. It sums the shard
 * gradients, while the dense layers' entries of mean_grad already hold
 * their batch sums. Then it divides by the batch size, applies weight
 * decay and the optimiser, and records the first parameter of the slice
 * that is not finite. Each parameter gets the same operations in the same
 * order, whichever thread takes its slice. Without L2 decay, which adds
 * to the averaged gradient, the optimiser divides as it reads, so that
 * mean_grad is not written back to memory. For tf's 3.3 million
 * parameters, that took the update from 4.7 to 4.1 ms per batch on one
 * thread and from 2.6 to 2.1 ms on two.
 */
static void run_update_slice(Trainer *tr, int slice)
{
    Batch *b = &tr->batch;
    size_t first = (size_t)slice * REDUCE_SLICE;
    size_t end = first + REDUCE_SLICE < tr->net.n_params
                 ? first + REDUCE_SLICE : tr->net.n_params;
    float *mean = b->mean_grad;
    /* A product by the reciprocal vectorises where a division runs at a
     * fraction of the speed; for a power-of-two batch both are exact. */
    float scale = 1.0f / (float)b->n;

    for_ranges(tr, tr->shard_ranges, tr->n_shard_ranges, first, end,
               sum_shards);
    if (tr->cfg.weight_decay > 0.0f && tr->cfg.decay == DECAY_L2) {
        for (size_t j = first; j < end; j++)
            mean[j] *= scale;
        scale = 1.0f;
    }
    if (tr->cfg.weight_decay > 0.0f)
        for_ranges(tr, tr->decay_ranges, tr->n_decay_ranges, first, end,
                   decay_weights);
    optim_update(&tr->opt, tr->net.params, mean, scale, first, end);
    b->bad[slice] = first_non_finite(tr->net.params, first, end,
                                     tr->net.n_params);
}

static void run_eval_shard(Trainer *tr, Worker *w, int shard)
{
    const EvalJob *job = &tr->eval_job;
    int first = shard * EVAL_SHARD;
    int n = job->count - first < EVAL_SHARD ? job->count - first : EVAL_SHARD;
    float *probs = job->probs + (size_t)first * DATASET_CLASSES;
    double loss = 0.0;
    int nonfinite = 0;

    dataset_copy_images(job->data, job->first + first, n, w->eval_images);
    net_predict(&tr->net, w->scratch, w->eval_images, n, probs);
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * DATASET_CLASSES;
        float p_true = p[job->labels[first + i]];
        int finite = 1;

        for (int c = 0; c < DATASET_CLASSES; c++)
            if (!isfinite(p[c])) {
                finite = 0;
                break;
            }

        /* The floor keeps a confident mistake from making the loss infinite. */
        loss -= log(p_true > 1e-12f ? (double)p_true : 1e-12);
        nonfinite += !finite;
        job->predicted[first + i] =
            finite ? (uint8_t)metrics_argmax(p, DATASET_CLASSES)
                   : METRICS_NO_PREDICTION;
    }
    job->loss[shard] = loss;
    job->nonfinite[shard] = nonfinite;
}

/* Marks the shards of the current job that no worker has taken as done,
 * so that pool_run returns once the shards in progress end. Caller holds
 * pool->lock. */
static void skip_remaining_shards(Pool *pool)
{
    pool->shards_done += pool->n_shards - pool->next_shard;
    pool->next_shard = pool->n_shards;
    if (pool->shards_done == pool->n_shards)
        pthread_cond_signal(&pool->done);
}

/* Takes shards of the posted job with W's scratch until none is left,
 * or until a stop request skips the rest of a cancellable job. Caller
 * holds pool->lock, which is released while a shard runs. */
static void run_shards(Worker *w, Pool *pool)
{
    while (pool->next_shard < pool->n_shards) {
        if (pool->cancellable && atomic_load(&w->tr->stopping)) {
            skip_remaining_shards(pool);
            break;
        }
        int shard = pool->next_shard++;
        JobKind kind = pool->kind;

        NetPartFn fn = pool->fn;
        void *part_arg = pool->arg;

        pthread_mutex_unlock(&pool->lock);
        if (kind == JOB_TRUNK_FWD)
            run_trunk_forward(w->tr, w, shard);
        else if (kind == JOB_TRUNK_BWD)
            run_trunk_backward(w->tr, w, shard);
        else if (kind == JOB_PARTS)
            fn(part_arg, shard);
        else if (kind == JOB_TRAIN)
            run_train_shard(w->tr, w, shard);
        else if (kind == JOB_BATCH_GRAD)
            net_batch_grad(&w->tr->net, w->tr->batch.rows, w->tr->batch.n,
                           shard, w->tr->batch.mean_grad);
        else if (kind == JOB_UPDATE)
            run_update_slice(w->tr, shard);
        else
            run_eval_shard(w->tr, w, shard);
        pthread_mutex_lock(&pool->lock);
        if (++pool->shards_done == pool->n_shards)
            pthread_cond_signal(&pool->done);
    }
}

/* Hints to the CPU that this thread is polling a shared value. */
static void pause_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Polls for up to POOL_POLL_SECONDS until POOL's generation differs from
 * SEEN. The caller then checks it again under the lock. */
static void poll_generation(Pool *pool, unsigned seen)
{
    double end = util_now() + POOL_POLL_SECONDS;

    while (atomic_load_explicit(&pool->generation, memory_order_relaxed)
               == seen
           && util_now() < end)
        pause_cpu();
}

/* Polls for up to POOL_POLL_SECONDS until N_SHARDS shards of POOL's job
 * are done. The caller then checks it again under the lock. */
static void poll_done(Pool *pool, int n_shards)
{
    double end = util_now() + POOL_POLL_SECONDS;

    while (atomic_load_explicit(&pool->shards_done, memory_order_relaxed)
               < n_shards
           && util_now() < end)
        pause_cpu();
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    Pool *pool = &w->tr->pool;
    unsigned seen = 0;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        if (pool->generation == seen) {
            pthread_mutex_unlock(&pool->lock);
            poll_generation(pool, seen);
            pthread_mutex_lock(&pool->lock);
        }
        while (pool->generation == seen)
            pthread_cond_wait(&pool->work, &pool->lock);
        seen = pool->generation;
        if (pool->kind == JOB_QUIT)
            break;
        run_shards(w, pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Returns 1 for the jobs of a batch before its update, whose shards a
 * stop request skips: their results are scratch that train_batch then
 * discards. The update and the evaluation always run to the end. */
static int job_cancellable(JobKind kind)
{
    return kind == JOB_TRUNK_FWD || kind == JOB_TRUNK_BWD
           || kind == JOB_PARTS || kind == JOB_TRAIN
           || kind == JOB_BATCH_GRAD;
}

/* Posts a job of N_SHARDS shards, takes shards itself with the poster's
 * scratch, and waits until all of them are done or, for a cancellable job
 * after a stop request, skipped. The caller holds job_lock, so only one
 * job is ever posted at a time and the poster's scratch has one user. */
static void pool_run(Pool *pool, JobKind kind, int n_shards)
{
    if (n_shards <= 0)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->kind = kind;
    pool->cancellable = job_cancellable(kind);
    pool->n_shards = n_shards;
    pool->next_shard = 0;
    pool->shards_done = 0;
    pool->generation++;
    pthread_cond_broadcast(&pool->work);
    run_shards(pool->poster, pool);
    if (pool->shards_done < n_shards) {
        pthread_mutex_unlock(&pool->lock);
        poll_done(pool, n_shards);
        pthread_mutex_lock(&pool->lock);
    }
    while (pool->shards_done < pool->n_shards)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

/* The parallel-for that net_head_train shares its products through: the
 * parts of one step become a pool job. Runs on the coordinator, which
 * holds job_lock. After a stop request it skips parts, so net_head_train
 * ends on incomplete products, and train_batch discards what it wrote. */
static void pool_parallel_for(void *ctx, int n_parts, NetPartFn fn,
                              void *arg)
{
    Pool *pool = &((Trainer *)ctx)->pool;

    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->arg = arg;
    pthread_mutex_unlock(&pool->lock);
    pool_run(pool, JOB_PARTS, n_parts);
}

/* Sets up n_threads workers and starts a thread for each but the first,
 * which belongs to whichever thread posts a job: with 2 threads, the
 * coordinator and one worker compute, and a job wakes one thread instead
 * of two. Returns 0, or -1 with ERR set. */
static int pool_start(Trainer *tr, char *err, size_t errlen)
{
    /* A training shard contains up to TRAINER_SHARD + 1 samples (see
     * shard_count). */
    int shard_max = TRAINER_SHARD + 1 > EVAL_SHARD ? TRAINER_SHARD + 1
                                                   : EVAL_SHARD;

    tr->workers = xcalloc((size_t)tr->n_threads, sizeof *tr->workers);
    for (int i = 0; i < tr->n_threads; i++) {
        Worker *w = &tr->workers[i];

        w->tr = tr;
        w->scratch = net_scratch_create(&tr->net, shard_max);
        w->eval_images = xmalloc_aligned((size_t)EVAL_SHARD * DATASET_PIXELS
                                         * sizeof(float));
    }
    tr->pool.poster = &tr->workers[0];
    for (int i = 1; i < tr->n_threads; i++) {
        Worker *w = &tr->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);

        if (rc != 0) {
            set_err(err, errlen, "starting worker thread %d of %d: %s",
                    i + 1, tr->n_threads, strerror(rc));
            return -1;
        }
        w->has_thread = 1;
    }
    return 0;
}

/* Ends and joins the workers that were started. */
static void pool_stop(Trainer *tr)
{
    Pool *pool = &tr->pool;

    pthread_mutex_lock(&pool->lock);
    pool->kind = JOB_QUIT;
    pool->generation++;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < tr->n_threads; i++) {
        if (tr->workers[i].has_thread)
            pthread_join(tr->workers[i].thread, NULL);
        net_scratch_free(tr->workers[i].scratch);
        free(tr->workers[i].eval_images);
    }
}

/* ------------------------------------------------------------ history */

/* Averages neighbouring pairs of the N values at V in place; an odd last
 * value is kept. Returns the new count. */
static int merge_pairs(float *v, int n)
{
    int out = 0;

    for (int i = 0; i < n; i += 2)
        v[out++] = i + 1 < n ? 0.5f * (v[i] + v[i + 1]) : v[i];
    return out;
}

static void range_clear(TrainerRange *range)
{
    range->min = NAN;
    range->max = NAN;
}

/* Widens RANGE to include V unless V is not finite. */
static void range_add(TrainerRange *range, float v)
{
    if (!isfinite(v))
        return;
    if (!(v >= range->min))
        range->min = v;
    if (!(v <= range->max))
        range->max = v;
}

/* Sets RANGE to the extremes of the N values at V. */
static void range_of(TrainerRange *range, const float *v, int n)
{
    range_clear(range);
    for (int i = 0; i < n; i++)
        range_add(range, v[i]);
}

/* Appends the running epoch means every history_stride steps. Caller holds
 * job_lock. */
static void history_sample(Trainer *tr)
{
    Progress *pr = &tr->progress;
    const CheckpointEpoch *ep = &pr->epoch;

    if (pr->step % pr->history_stride != 0)
        return;
    if (pr->n_history == TRAINER_HISTORY) {
        merge_pairs(pr->loss_history, pr->n_history);
        pr->n_history = merge_pairs(pr->acc_history, pr->n_history);
        pr->history_stride *= 2;
        if (pr->step % pr->history_stride != 0)
            return;
    }
    pr->loss_history[pr->n_history] = (float)(ep->loss_sum / (double)ep->samples);
    pr->acc_history[pr->n_history] = (float)ep->correct / (float)ep->samples;
    range_add(&pr->loss_range, pr->loss_history[pr->n_history]);
    range_add(&pr->acc_range, pr->acc_history[pr->n_history]);
    pr->n_history++;
    tr->history_changed = 1;
}

static void history_add_test(Progress *pr, double acc)
{
    if (pr->n_test_history == TRAINER_HISTORY)
        pr->n_test_history = merge_pairs(pr->test_acc_history,
                                         pr->n_test_history);
    pr->test_acc_history[pr->n_test_history++] = (float)acc;
    range_add(&pr->test_acc_range, (float)acc);
}

/* Copies the history into the status. Caller holds job_lock and lock. */
static void history_publish(Trainer *tr)
{
    const Progress *pr = &tr->progress;
    TrainerStatus *st = &tr->status;
    size_t n = (size_t)pr->n_history, t = (size_t)pr->n_test_history;

    st->n_history = pr->n_history;
    memcpy(st->loss_history, pr->loss_history, n * sizeof(float));
    memcpy(st->acc_history, pr->acc_history, n * sizeof(float));
    st->n_test_history = pr->n_test_history;
    memcpy(st->test_acc_history, pr->test_acc_history, t * sizeof(float));
    st->loss_range = pr->loss_range;
    st->acc_range = pr->acc_range;
    st->test_acc_range = pr->test_acc_range;
    tr->history_changed = 0;
}

/* ------------------------------------------------------------ checkpoints */

/* Saves the run to PATH. Takes job_lock, so the caller must not hold it.
 * Returns 0, or -1 with ERR set. */
static int save_run(Trainer *tr, const char *path, char *err, size_t errlen)
{
    const Progress *pr = &tr->progress;
    Checkpoint ck;
    int rc;

    pthread_mutex_lock(&tr->job_lock);
    if (tr->diverged) {
        /* Keep the file from before the failure rather than replace it
         * with weights that may not be finite. */
        set_err(err, errlen, "%s: training stopped on a non-finite value, "
                "so the previous checkpoint is kept", path);
        pthread_mutex_unlock(&tr->job_lock);
        return -1;
    }
    /* The last update may have left finite weights with which a layer
     * outputs infinity or NaN, and checkpoint_load would reject such a
     * file. find_nonfinite_output stops the run at the end of the epoch. */
    int layer = net_find_nonfinite_layer(&tr->net);
    if (layer >= 0) {
        set_err(err, errlen, "%s: layer %d (%s) outputs infinity or NaN, "
                "so the previous checkpoint is kept; try a lower learning "
                "rate", path, layer + 1,
                net_layer_name(tr->net.layers[layer].kind));
        pthread_mutex_unlock(&tr->job_lock);
        return -1;
    }
    memset(&ck, 0, sizeof ck);
    ck.spec = tr->net.spec;
    ck.n_params = tr->net.n_params;
    ck.params = tr->net.params;
    ck.n_stats = tr->net.n_stats;
    ck.stats = tr->net.stats;
    ck.optim = tr->opt;
    ck.optim.lr = tr->base_lr;
    ck.seed = tr->seed;
    ck.epochs_done = pr->epochs_done;
    ck.step = pr->step;
    ck.partial = pr->epoch;
    ck.history_stride = pr->history_stride;
    ck.n_history = pr->n_history;
    ck.loss_history = (float *)pr->loss_history;
    ck.acc_history = (float *)pr->acc_history;
    ck.n_test_history = pr->n_test_history;
    ck.test_acc_history = (float *)pr->test_acc_history;
    rc = checkpoint_save(path, &ck, err, errlen);
    tr->saved_step = pr->step;
    tr->saved_epochs = pr->epochs_done;
    tr->saved_batch = pr->epoch.batches;
    pthread_mutex_unlock(&tr->job_lock);
    return rc;
}

/* Saves to PATH and reports the outcome in the status message and to
 * cfg.on_save. */
static void save_and_report(Trainer *tr, const char *path)
{
    char err[CHECKPOINT_ERR_LEN];
    int rc = save_run(tr, path, err, sizeof err);

    if (rc == 0) {
        /* A name other than the default one was free_checkpoint_name's
         * choice, which the user did not type, so the reason is given. */
        struct stat st;

        if (path == tr->request_file && tr->pass_reason[0] != '\0')
            set_message(tr, 0, "saved %s (%s)", path, tr->pass_reason);
        else if (path == tr->request_file
                 && strcmp(path, DEFAULT_SAVE_PATH) != 0)
            set_message(tr, 0, "saved %s (%s %s)", path, DEFAULT_SAVE_PATH,
                        lstat(DEFAULT_SAVE_PATH, &st) == 0
                            ? "exists" : "is in use by another run");
        else
            set_message(tr, 0, "saved %s", path);
        pthread_mutex_lock(&tr->lock);
        tr->status.saved_path = path;
        tr->status.saved_epochs = (int)tr->saved_epochs;
        tr->status.saved_batch = (long)tr->saved_batch;
        tr->saved_ok_step = tr->saved_step;
        tr->status.save_failed = 0;
        /* A save after the run ended contains its final model. */
        if (!tr->running)
            tr->status.saved_behind = 0;
        pthread_mutex_unlock(&tr->lock);
    } else {
        set_message(tr, 1, "checkpoint not saved: %s", err);
        pthread_mutex_lock(&tr->lock);
        tr->status.save_failed = 1;
        pthread_mutex_unlock(&tr->lock);
    }
    if (tr->cfg.on_save != NULL)
        tr->cfg.on_save(path, rc == 0 ? NULL : err, tr->cfg.ctx);
}

/* Returns the file a requested save writes (see trainer_request_save). */
static const char *request_path(const Trainer *tr)
{
    if (tr->save_path != NULL)
        return tr->save_path;
    if (tr->load_path != NULL && !tr->load_file_passed)
        return tr->load_path;
    return tr->request_file;
}

/* Returns 1 when ST and the file PATH names now differ: another file,
 * or the same one with another size or modification time. */
static int file_changed(const struct stat *st, const char *path)
{
    struct stat now;

    if (stat(path, &now) != 0)
        return errno != ENOENT;
    return now.st_dev != st->st_dev || now.st_ino != st->st_ino
           || now.st_size != st->st_size
           || now.st_mtim.tv_sec != st->st_mtim.tv_sec
           || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec;
}

static char *free_checkpoint_name_after(const char *after);
static char *free_checkpoint_name(void);

/* Fresh names take_fresh_request_file tries before it gives up. */
#define FRESH_NAME_TRIES 1000

/* Makes request_file a name that no file has and no other run holds the
 * lock of, and takes that lock. Another run may have taken the first
 * choice, or saved to it, since it was chosen. Caller holds job_lock. */
static int take_fresh_request_file(Trainer *tr, long *owner, char *err,
                                   size_t errlen)
{
    for (int tries = 0; tries < FRESH_NAME_TRIES; tries++) {
        struct stat st;
        int rc = lstat(tr->request_file, &st) == 0
                     ? SAVELOCK_BUSY
                     : savelock_take(&tr->request_lock, tr->request_file,
                                     owner, err, errlen);

        if (rc == SAVELOCK_OK && lstat(tr->request_file, &st) != 0)
            return SAVELOCK_OK;
        if (rc == SAVELOCK_OK)
            savelock_release(&tr->request_lock);
        else if (rc != SAVELOCK_BUSY)
            return rc;
        /* Taken: keep the old name readable and choose the next one,
         * skipping names whose lock another run holds. */
        char *next = free_checkpoint_name_after(tr->request_file);

        tr->old_request_files = xrealloc(
            tr->old_request_files,
            (size_t)(tr->n_old_request_files + 1) * sizeof (char *));
        tr->old_request_files[tr->n_old_request_files++] = tr->request_file;
        pthread_mutex_lock(&tr->lock);
        tr->request_file = next;
        pthread_mutex_unlock(&tr->lock);
    }
    snprintf(err, errlen, "no free checkpoint name after %s",
             tr->request_file);
    return SAVELOCK_FAILED;
}

/* Takes the lock of PATH, the --load file, for requested saves. Sets
 * pass_reason instead when they must go to a fresh name: PATH is
 * read-only, another run holds its lock or has written it since this run
 * loaded it. Caller holds job_lock. */
static int claim_load_file(Trainer *tr, const char *path, long *owner,
                           char *err, size_t errlen)
{
    int rc;

    /* A read-only file is somebody's to keep, such as a model shared
     * with a class, even where the rename could replace it. */
    if (util_read_only(path, tr->pass_reason, sizeof tr->pass_reason))
        return SAVELOCK_OK;
    rc = savelock_take(&tr->request_lock, path, owner, err, errlen);
    if (rc == SAVELOCK_OK && tr->have_load_st
        && file_changed(&tr->load_st, path)) {
        savelock_release(&tr->request_lock);
        snprintf(tr->pass_reason, sizeof tr->pass_reason,
                 "%s changed since this run loaded it", path);
    } else if (rc == SAVELOCK_BUSY) {
        snprintf(tr->pass_reason, sizeof tr->pass_reason,
                 "%s is in use by fmnist pid %ld", path, *owner);
    }
    return rc;
}

/* Saves to the file of requested saves, taking its lock at the first
 * save. A fresh name (request_file) that another run took is replaced by
 * the next free one. Requested saves move to a fresh name for the rest of
 * the run when the --load file is read-only, or another run holds its
 * lock or has written it since this run loaded it. The status message
 * gives the reason. Saving there would replace a file that its owner
 * protected, or replace or be replaced by the other run's model. */
static void save_request(Trainer *tr)
{
    char err[CHECKPOINT_ERR_LEN];
    const char *path = request_path(tr);
    long owner = 0;
    int rc = SAVELOCK_OK;

    pthread_mutex_lock(&tr->job_lock);
    if (path != tr->save_path && tr->request_lock.path == NULL
        && path != tr->request_file) {
        rc = claim_load_file(tr, path, &owner, err, sizeof err);
        if (tr->pass_reason[0] != '\0') {
            pthread_mutex_lock(&tr->lock);
            if (tr->request_file == NULL)
                tr->request_file = free_checkpoint_name();
            tr->load_file_passed = 1;
            pthread_mutex_unlock(&tr->lock);
            path = tr->request_file;
            rc = SAVELOCK_OK;
        }
    }
    if (path == tr->request_file && tr->request_lock.path == NULL) {
        rc = take_fresh_request_file(tr, &owner, err, sizeof err);
        path = tr->request_file;
    }
    pthread_mutex_unlock(&tr->job_lock);
    if (rc == SAVELOCK_OK) {
        save_and_report(tr, path);
        return;
    }
    set_message(tr, 1, "checkpoint not saved: %s", err);
    pthread_mutex_lock(&tr->lock);
    tr->status.save_failed = 1;
    pthread_mutex_unlock(&tr->lock);
    if (tr->cfg.on_save != NULL)
        tr->cfg.on_save(path, err, tr->cfg.ctx);
}

/* Names free_checkpoint_name tries after DEFAULT_SAVE_PATH. */
#define FREE_NAME_TRIES 100000

/* Returns a new string holding the first of DEFAULT_SAVE_PATH,
 * "fmnist-2.ckpt", "fmnist-3.ckpt", ... after AFTER (from the start when
 * AFTER is NULL) that lstat does not find. A name that lstat fails on for
 * another reason than ENOENT, such as EACCES in a directory without
 * search permission, is returned too: the save then fails on it and
 * reports why. */
static char *free_checkpoint_name_after(const char *after)
{
    char name[64];
    struct stat st;
    int n = 1;

    if (after != NULL && sscanf(after, "fmnist-%d.ckpt", &n) != 1)
        n = 1;
    if (after != NULL)
        n++;
    for (; n <= FREE_NAME_TRIES; n++) {
        if (n == 1)
            snprintf(name, sizeof name, "%s", DEFAULT_SAVE_PATH);
        else
            snprintf(name, sizeof name, "fmnist-%d.ckpt", n);
        if (lstat(name, &st) != 0)
            break;
    }
    return xstrdup(name);
}

/* Returns the first free name of free_checkpoint_name_after. */
static char *free_checkpoint_name(void)
{
    return free_checkpoint_name_after(NULL);
}

/* ------------------------------------------------------------ evaluation */

/* Returns how many of the N images with LABELS got the right prediction.
 * An image without a prediction counts as wrong. */
static long count_correct(const uint8_t *labels, const uint8_t *predicted,
                          int n)
{
    long correct = 0;

    for (int i = 0; i < n; i++)
        correct += predicted[i] == labels[i];
    return correct;
}

/* Predicts every test image once with the pool. The accuracy is over
 * every test image, while the confusion matrix leaves out the images
 * without a prediction. Caller holds job_lock. */
static void evaluate_locked(Trainer *tr, EvalResult *res)
{
    const Dataset *test = tr->test;
    double loss = 0.0;

    tr->eval_job = (EvalJob){ test, 0, test->labels, test->count,
                              tr->eval.n_shards, tr->eval.predicted,
                              tr->eval.probs, tr->eval.loss,
                              tr->eval.nonfinite };
    pool_run(&tr->pool, JOB_EVAL, tr->eval.n_shards);
    res->nonfinite = 0;
    for (int s = 0; s < tr->eval.n_shards; s++) {
        loss += tr->eval.loss[s];
        res->nonfinite += tr->eval.nonfinite[s];
    }
    memset(res->confusion, 0, sizeof res->confusion);
    memset(res->unpredicted, 0, sizeof res->unpredicted);
    metrics_confusion_add(res->confusion, res->unpredicted, test->labels,
                          tr->eval.predicted, test->count);
    res->loss = loss / test->count;
    res->acc = (double)count_correct(test->labels, tr->eval.predicted,
                                     test->count) / test->count;
}

/* Predicts the validation images, the last n_val of the training set,
 * and stores their mean loss and accuracy in *LOSS and *ACC and the
 * number with a non-finite probability in *NONFINITE. Caller holds
 * job_lock. */
static void evaluate_val_locked(Trainer *tr, double *loss, double *acc,
                                long *nonfinite)
{
    int first = tr->train->count - tr->n_val;
    const uint8_t *labels = tr->train->labels + first;
    double sum = 0.0;

    tr->eval_job = (EvalJob){
        tr->train, first, labels,
        tr->n_val, tr->val.n_shards, tr->val.predicted, tr->val.probs,
        tr->val.loss, tr->val.nonfinite };
    pool_run(&tr->pool, JOB_EVAL, tr->val.n_shards);
    *nonfinite = 0;
    for (int s = 0; s < tr->val.n_shards; s++) {
        sum += tr->val.loss[s];
        *nonfinite += tr->val.nonfinite[s];
    }
    *loss = sum / tr->n_val;
    *acc = (double)count_correct(labels, tr->val.predicted, tr->n_val)
           / tr->n_val;
}

/* Swaps the finished evaluation buffers with the published ones, so the UI
 * never copies a half-written evaluation. Caller holds job_lock. */
static void publish_predictions(Trainer *tr, unsigned generation)
{
    uint8_t *predicted;
    float *probs;

    pthread_mutex_lock(&tr->pred_lock);
    predicted = tr->pub_predicted;
    probs = tr->pub_probs;
    tr->pub_predicted = tr->eval.predicted;
    tr->pub_probs = tr->eval.probs;
    tr->eval.predicted = predicted;
    tr->eval.probs = probs;
    tr->pred_generation = generation;
    pthread_mutex_unlock(&tr->pred_lock);
}

/* Evaluates the test set and publishes the result. After a training epoch
 * (EPOCH_END) the validation images are evaluated too, when there are
 * some, and the test accuracy joins the history. The state shows
 * EVALUATING meanwhile and is restored afterwards. */
static void evaluate_and_publish(Trainer *tr, int epoch_end, EvalResult *res)
{
    TrainerState before;
    unsigned generation;
    double t0;

    pthread_mutex_lock(&tr->lock);
    before = tr->status.state;
    tr->status.state = TRAINER_EVALUATING;
    pthread_mutex_unlock(&tr->lock);

    pthread_mutex_lock(&tr->job_lock);
    t0 = run_clock(tr);
    res->has_val = epoch_end && tr->n_val > 0;
    res->val_nonfinite = 0;
    if (res->has_val)
        evaluate_val_locked(tr, &res->val_loss, &res->val_acc,
                            &res->val_nonfinite);
    evaluate_locked(tr, res);
    tr->eval_seconds = end_interval(tr, t0, tr->eval_seconds);
    generation = ++tr->eval_count;
    tr->eval_step = tr->progress.step;
    publish_predictions(tr, generation);
    if (epoch_end)
        history_add_test(&tr->progress, res->acc);

    pthread_mutex_lock(&tr->lock);
    tr->status.state = before;
    tr->status.has_eval = 1;
    tr->status.eval_epoch_end = epoch_end;
    tr->status.test_loss = res->loss;
    tr->status.test_acc = res->acc;
    tr->status.test_nonfinite = res->nonfinite;
    if (res->has_val) {
        tr->status.has_val = 1;
        tr->status.val_loss = res->val_loss;
        tr->status.val_acc = res->val_acc;
    }
    memcpy(tr->status.confusion, res->confusion, sizeof res->confusion);
    memcpy(tr->status.test_unpredicted, res->unpredicted,
           sizeof res->unpredicted);
    tr->status.eval_generation = generation;
    history_publish(tr);
    pthread_mutex_unlock(&tr->lock);
    pthread_mutex_unlock(&tr->job_lock);
}

/* ------------------------------------------------------------ training */

/* Copies the images and labels of the next N samples of the epoch into the
 * batch buffer. */
static void gather_batch(Trainer *tr, int n)
{
    const int *index = tr->order + tr->progress.epoch.samples;
    Batch *b = &tr->batch;

    for (int i = 0; i < n; i++) {
        dataset_copy_image(tr->train, index[i],
                           b->images + (size_t)i * DATASET_PIXELS);
        b->labels[i] = tr->train->labels[index[i]];
    }
    b->n = n;
}

/* Adds a batch of N samples that began at START on run_clock to the
 * throughput averages and the epoch's training time. A slow batch counts
 * whole, so that the speed shown is what the machine does now, but a
 * stop of the process does not (see end_interval). */
static void record_batch_time(Trainer *tr, double start, int n)
{
    double rate = rate_get(&tr->rate_shown);
    double seconds = end_interval(tr, start, rate > 0.0 ? n / rate : 0.0);

    rate_add(&tr->rate_shown, RATE_SHOWN_TAU, seconds, n);
    rate_add(&tr->rate_eta, RATE_ETA_TAU, seconds, n);
    tr->epoch_seconds += seconds;
    tr->epoch_run_samples += n;
    tr->batch_seconds += seconds;
    tr->batch_samples += n;
}

/* Returns the learning rate the schedule gives at the current position
 * of the run, counting the finished part of the epoch in progress,
 * before lr_floor. */
static double scheduled_lr(const Trainer *tr)
{
    const Progress *pr = &tr->progress;
    int n_epoch = tr->n_epoch > 0 ? tr->n_epoch : 1;
    double epoch = (double)pr->epochs_done
                   + (double)pr->epoch.samples / n_epoch;

    return tr->base_lr * tr->lr_user_scale
           * schedule_factor(&tr->cfg.schedule, epoch, (double)tr->epochs_end);
}

/* Returns LR as the rate an update uses: FLT_MIN when LR is positive but
 * rounds to a float below it, else LR as a float. The - key lowers the
 * rate before the schedule, so together they can go below the smallest
 * normal float, where the update on x86 reads the rate as zero (see
 * optim.h). The 0 that the cosine schedule ends with stays 0. */
static float lr_floor(double lr)
{
    float rate = (float)lr;

    return lr > 0.0 && rate < FLT_MIN ? FLT_MIN : rate;
}

/* Writes VALUE to BUF as %g does, but a NaN as "NaN" and an infinity as
 * "infinity", where printf writes "nan", "-nan" or "inf" depending on the
 * sign bit and the C library. */
static void format_value(double value, char *buf, size_t len)
{
    if (isnan(value))
        snprintf(buf, len, "NaN");
    else if (isinf(value))
        snprintf(buf, len, "%sinfinity", value < 0 ? "minus " : "");
    else
        snprintf(buf, len, "%g", value);
}

/* Checks the weights, which the update slices scanned into batch.bad,
 * and the batch-normalisation statistics after an update. Returns 0 when
 * all are finite. Otherwise marks the run as diverged, so no checkpoint
 * is written from these weights, sets the status message and returns -1.
 * Caller holds job_lock. */
static int check_weights(Trainer *tr, int n_slices)
{
    const Progress *pr = &tr->progress;
    const char *what = "weight";
    size_t i = tr->net.n_params, n = tr->net.n_params;
    float value = 0.0f;

    for (int s = 0; s < n_slices && i == n; s++)
        i = tr->batch.bad[s];
    if (i < n) {
        value = tr->net.params[i];
    } else {
        for (i = 0; i < tr->net.n_stats && isfinite(tr->net.stats[i]); i++)
            ;
        if (i == tr->net.n_stats)
            return 0;
        what = "batch-normalisation statistic";
        value = tr->net.stats[i];
    }
    char shown[32];

    format_value(value, shown, sizeof shown);
    tr->diverged = 1;
    set_message(tr, 1, "training stopped: %s %zu is %s after batch %lld in "
                "epoch %lld; try a lower learning rate", what, i, shown,
                (long long)pr->epoch.batches + 1,
                (long long)pr->epochs_done + 1);
    return -1;
}

/* Runs phases 1 and 2 of the batch gathered in tr->batch: the trunk
 * forward of every shard, then the head, which writes the dense layers'
 * gradients to mean_grad. Adds the correct predictions to *CORRECT and
 * returns the summed loss. Caller holds job_lock. */
static double train_phases(Trainer *tr, long *correct)
{
    Batch *b = &tr->batch;
    int right = 0;
    double loss;

    pool_run(&tr->pool, JOB_TRUNK_FWD, b->n_shards);
    if (atomic_load(&tr->stopping))
        return 0.0;
    loss = net_head_train(&tr->net, b->head, b->features, b->labels, b->n,
                          TRAINER_SHARD, b->rngs, b->mean_grad, b->dfeatures,
                          &right, pool_parallel_for, tr);
    *correct += right;
    return loss;
}

/* Runs every shard of the batch through net_train_shard. Adds the
 * correct predictions to *CORRECT and returns the summed loss. Caller
 * holds job_lock. */
static double train_shards(Trainer *tr, long *correct)
{
    Batch *b = &tr->batch;
    double loss = 0.0;

    pool_run(&tr->pool, JOB_TRAIN, b->n_shards);
    for (int s = 0; s < b->n_shards; s++) {
        loss += b->loss[s];
        *correct += b->correct[s];
    }
    return loss;
}

/* Releases job_lock, notes in the status that a stop request discarded
 * the batch in flight, and returns 1 for train_batch. */
static int abandon_batch(Trainer *tr)
{
    pthread_mutex_unlock(&tr->job_lock);
    pthread_mutex_lock(&tr->lock);
    tr->status.batch_abandoned = 1;
    pthread_mutex_unlock(&tr->lock);
    return 1;
}

/*
 * Trains one batch. Returns 0, 1 when a stop request abandoned it, or -1
 * when the loss or, after the update, a weight is not finite. A stop
 * request skips the remaining shards of the batch's jobs and abandons the
 * batch before its update, which alone changes the weights, the optimiser,
 * the statistics and the progress. So an abandoned batch leaves the run
 * exactly as the previous batch did. A non-finite loss skips the update,
 * the status message names the value and the run counts as diverged.
 */
static int train_batch(Trainer *tr)
{
    Progress *pr = &tr->progress;
    int remaining = tr->n_epoch - (int)pr->epoch.samples;
    int n = remaining < tr->cfg.batch ? remaining : tr->cfg.batch;
    int n_shards = shard_count(tr, n);
    int n_slices = (int)((tr->net.n_params + REDUCE_SLICE - 1) / REDUCE_SLICE);
    double loss = 0.0, t0 = run_clock(tr);
    long correct = 0;

    pthread_mutex_lock(&tr->lock);
    tr->live_began = t0;
    tr->live_n = n;
    pthread_mutex_unlock(&tr->lock);
    pthread_mutex_lock(&tr->job_lock);
    gather_batch(tr, n);
    tr->batch.n_shards = n_shards;
    tr->batch.step = pr->step;
    if (tr->batch.head != NULL)
        loss = train_phases(tr, &correct);
    else
        loss = train_shards(tr, &correct);
    /* Before the loss check, which skipped shards can fail. */
    if (atomic_load(&tr->stopping))
        return abandon_batch(tr);
    if (!isfinite(loss)) {
        char shown[32];

        format_value(loss, shown, sizeof shown);
        tr->diverged = 1;
        pthread_mutex_unlock(&tr->job_lock);
        set_message(tr, 1, "training stopped: the loss of batch %lld in epoch "
                    "%lld is %s; try a lower learning rate",
                    (long long)pr->epoch.batches + 1,
                    (long long)pr->epochs_done + 1, shown);
        return -1;
    }
    if (tr->batch.head != NULL)
        pool_run(&tr->pool, JOB_TRUNK_BWD, n_shards);
    else
        pool_run(&tr->pool, JOB_BATCH_GRAD, net_batch_grad_parts(&tr->net));
    /* The last point where a stop abandons the batch. From here on the
     * update runs to the end, because a part of it would change some
     * parameters and not others. */
    if (atomic_load(&tr->stopping))
        return abandon_batch(tr);
    tr->opt_lr_raw = scheduled_lr(tr);
    tr->opt.lr = lr_floor(tr->opt_lr_raw);
    optim_begin_step(&tr->opt);
    pool_run(&tr->pool, JOB_UPDATE, n_slices);
    if (tr->net.n_stats > 0)
        net_update_running_stats(&tr->net,
                                 (const float *const *)tr->batch.stats,
                                 tr->batch.samples, n_shards, BN_MOMENTUM);
    if (check_weights(tr, n_slices) != 0) {
        pthread_mutex_unlock(&tr->job_lock);
        return -1;
    }

    pr->step++;
    pr->epoch.batch = tr->cfg.batch;
    pr->epoch.train_count = tr->n_train;
    pr->epoch.batches++;
    pr->epoch.samples += n;
    pr->epoch.correct += correct;
    pr->epoch.loss_sum += loss;
    history_sample(tr);
    pthread_mutex_unlock(&tr->job_lock);

    record_batch_time(tr, t0, n);
    return 0;
}

/* Estimates the seconds left: the remaining samples at RATE, plus one
 * evaluation per unfinished epoch at the latest evaluation's duration.
 * Before the first evaluation, an image is taken to cost 1/3.5 of a
 * training sample: fmnist-bench evaluated 3.6 to 3.7 times as many
 * images per second as it trained, on "small" and "tf". With LAST_EPOCH
 * (the run stops after this epoch) only the current epoch counts.
 * Returns -1 while the rate is unknown. */
static double estimate_eta(const Trainer *tr, double rate, int last_epoch)
{
    const Progress *pr = &tr->progress;
    int epochs_left = last_epoch ? 1 : tr->epochs_end - pr->epochs_done;
    double samples, eval_seconds = tr->eval_seconds;

    if (rate <= 0.0)
        return -1.0;
    if (eval_seconds <= 0.0)
        eval_seconds = (double)(tr->test->count + tr->n_val) / (3.5 * rate);
    samples = (double)(epochs_left - 1) * tr->n_epoch
              + (double)(tr->n_epoch - pr->epoch.samples);
    return samples / rate + (double)epochs_left * eval_seconds;
}

/* Publishes the progress after a batch. Everything is computed before the
 * status lock is taken. */
static void publish_progress(Trainer *tr)
{
    const Progress *pr = &tr->progress;
    double rate = rate_get(&tr->rate_shown);
    double eta_rate = rate_get(&tr->rate_eta);
    double samples, loss, acc, eta, epoch_eta;

    pthread_mutex_lock(&tr->job_lock);
    samples = (double)pr->epoch.samples;
    loss = pr->epoch.loss_sum / samples;
    acc = (double)pr->epoch.correct / samples;

    pthread_mutex_lock(&tr->lock);
    eta = estimate_eta(tr, eta_rate, tr->status.stop_after_epoch);
    epoch_eta = estimate_eta(tr, eta_rate, 1);
    tr->status.batch = (long)pr->epoch.batches;
    tr->status.images_per_sec = rate;
    tr->status.eta = eta;
    tr->status.epoch_eta = epoch_eta;
    tr->status.elapsed = run_seconds(tr, run_clock(tr));
    tr->status.train_loss = loss;
    tr->status.train_acc = acc;
    tr->status.lr = tr->opt.lr;
    tr->status_lr_raw = tr->opt_lr_raw;
    if (tr->history_changed)
        history_publish(tr);
    pthread_mutex_unlock(&tr->lock);
    pthread_mutex_unlock(&tr->job_lock);
}

/*
 * Serves the requests that arrived since the last batch: saves, pauses
 * (waiting on the control condition until resumed) and stops. Returns 1
 * when the run should stop.
 */
static int at_boundary(Trainer *tr)
{
    int paused = 0, stop;

    pthread_mutex_lock(&tr->lock);
    for (;;) {
        if (tr->save_requested) {
            tr->save_requested = 0;
            pthread_mutex_unlock(&tr->lock);
            save_request(tr);
            pthread_mutex_lock(&tr->lock);
            continue;
        }
        if (tr->stop_requested || !tr->paused)
            break;
        if (!paused) {
            tr->status.state = TRAINER_PAUSED;
            tr->paused_since = run_clock(tr);
            paused = 1;
        }
        pthread_cond_wait(&tr->control, &tr->lock);
    }
    stop = tr->stop_requested;
    if (paused) {
        tr->status.state = TRAINER_TRAINING;
        tr->paused_seconds += run_clock(tr) - tr->paused_since;
        tr->paused_since = 0.0;
    }
    pthread_mutex_unlock(&tr->lock);
    return stop;
}

/* Shuffles the training order of the epoch that starts now (or resumes
 * mid-way) and publishes the epoch number. */
static void begin_epoch(Trainer *tr)
{
    Progress *pr = &tr->progress;
    Rng rng;

    pthread_mutex_lock(&tr->job_lock);
    for (int i = 0; i < tr->n_train; i++)
        tr->order[i] = i;
    rng_seed(&rng, derive_seed(tr->seed, STREAM_SHUFFLE,
                               (uint64_t)pr->epochs_done, 0));
    rng_shuffle(&rng, tr->order, tr->n_train);
    pthread_mutex_unlock(&tr->job_lock);
    tr->epoch_seconds = 0.0;
    tr->epoch_run_samples = 0;

    pthread_mutex_lock(&tr->lock);
    tr->status.epoch = (int)pr->epochs_done + 1;
    tr->status.batch = (long)pr->epoch.batches;
    pthread_mutex_unlock(&tr->lock);
}

/* Evaluates after a finished epoch, reports it to on_epoch and saves.
 * Returns 0, or -1 when the model gives a non-finite probability for a
 * test image: its weights are finite, or the epoch would have failed,
 * but too large for that image. The run then counts as diverged, like
 * one with a non-finite loss, and the epoch is neither reported nor
 * saved. */
static int end_epoch(Trainer *tr)
{
    Progress *pr = &tr->progress;
    EpochRecord rec;
    EvalResult res;

    pthread_mutex_lock(&tr->job_lock);
    rec.epoch = (int)++pr->epochs_done;
    rec.train_loss = pr->epoch.loss_sum / (double)pr->epoch.samples;
    rec.train_acc = (double)pr->epoch.correct / (double)pr->epoch.samples;
    memset(&pr->epoch, 0, sizeof pr->epoch);
    pthread_mutex_unlock(&tr->job_lock);
    pthread_mutex_lock(&tr->lock);
    tr->status.epochs_done = rec.epoch;
    pthread_mutex_unlock(&tr->lock);
    rec.samples_per_sec = tr->epoch_seconds > 0.0
                          ? (double)tr->epoch_run_samples / tr->epoch_seconds
                          : 0.0;

    evaluate_and_publish(tr, 1, &res);
    if (res.nonfinite > 0 || res.val_nonfinite > 0) {
        int test = res.nonfinite > 0;

        pthread_mutex_lock(&tr->job_lock);
        tr->diverged = 1;
        pthread_mutex_unlock(&tr->job_lock);
        set_message(tr, 1, "training stopped: the model gives NaN "
                    "predictions for %ld of %d %s images after epoch %d, "
                    "although every weight is finite; try a lower learning "
                    "rate", test ? res.nonfinite : res.val_nonfinite,
                    test ? tr->test->count : tr->n_val,
                    test ? "test" : "validation", rec.epoch);
        return -1;
    }
    rec.test_loss = res.loss;
    rec.test_acc = res.acc;
    rec.has_val = res.has_val;
    rec.val_loss = res.has_val ? res.val_loss : 0.0;
    rec.val_acc = res.has_val ? res.val_acc : 0.0;
    rec.lr = tr->opt.lr;
    pthread_mutex_lock(&tr->lock);
    rec.seconds = run_seconds(tr, run_clock(tr));
    pthread_mutex_unlock(&tr->lock);
    if (tr->cfg.on_epoch != NULL)
        tr->cfg.on_epoch(&rec, tr->cfg.ctx);
    if (tr->save_path != NULL)
        save_and_report(tr, tr->save_path);
    return 0;
}

/* Takes over the scale chosen with trainer_scale_lr for the next batch
 * and publishes the learning rate that batch will use. */
static void apply_lr_scale(Trainer *tr)
{
    float scale;

    pthread_mutex_lock(&tr->lock);
    scale = tr->lr_scale;
    pthread_mutex_unlock(&tr->lock);

    pthread_mutex_lock(&tr->job_lock);
    tr->lr_user_scale = scale;
    double lr = scheduled_lr(tr);
    pthread_mutex_lock(&tr->lock);
    tr->status.lr = lr_floor(lr);
    tr->status_lr_raw = lr;
    pthread_mutex_unlock(&tr->lock);
    pthread_mutex_unlock(&tr->job_lock);
}

/* Checks the model at the end of an epoch with the test that
 * checkpoint_load applies, net_find_nonfinite_layer. Finite weights can
 * still make a layer output infinity or NaN, so that every prediction is
 * NaN. The run then counts as diverged, like one with a non-finite loss,
 * and -1 is returned. */
static int find_nonfinite_output(Trainer *tr)
{
    const Progress *pr = &tr->progress;
    int layer;

    pthread_mutex_lock(&tr->job_lock);
    layer = net_find_nonfinite_layer(&tr->net);
    if (layer >= 0)
        tr->diverged = 1;
    pthread_mutex_unlock(&tr->job_lock);
    if (layer < 0)
        return 0;
    set_message(tr, 1, "training stopped: layer %d (%s) outputs infinity or "
                "NaN after epoch %lld, although every weight is finite; try "
                "a lower learning rate", layer + 1,
                net_layer_name(tr->net.layers[layer].kind),
                (long long)pr->epochs_done + 1);
    return -1;
}

/* Runs the batches of one epoch. Returns 0 when the epoch is complete, 1
 * on a stop request and -1 on a non-finite loss, weight or output. */
static int run_epoch(Trainer *tr)
{
    begin_epoch(tr);
    while (tr->progress.epoch.samples < tr->n_epoch) {
        int rc;

        if (at_boundary(tr))
            return 1;
        apply_lr_scale(tr);
        rc = train_batch(tr);
        pthread_mutex_lock(&tr->lock);
        tr->live_began = 0.0;
        tr->live_shown = tr->rate_shown;
        tr->live_eta = tr->rate_eta;
        pthread_mutex_unlock(&tr->lock);
        if (rc != 0)
            return rc;
        publish_progress(tr);
    }
    return find_nonfinite_output(tr);
}

/* Saves after a stop, sets the final state and serves a save request that
 * arrived after the last batch boundary. */
static void finish_run(Trainer *tr, int failed)
{
    int pending;

    if (!failed && tr->save_path != NULL && tr->cfg.epochs > 0
        && tr->saved_step != tr->progress.step)
        save_and_report(tr, tr->save_path);

    pthread_mutex_lock(&tr->lock);
    tr->status.state = failed ? TRAINER_FAILED : TRAINER_DONE;
    /* The failure set the latest message, and the pending save below
     * would replace it. */
    if (failed)
        snprintf(tr->status.failure, sizeof tr->status.failure, "%s",
                 tr->status.message);
    /* The run is over, so the average that counts is the whole run's. */
    if (tr->batch_seconds > 0.0)
        tr->status.images_per_sec = (double)tr->batch_samples
                                    / tr->batch_seconds;
    tr->status.saved_behind = tr->status.saved_path != NULL
                              && tr->saved_ok_step != tr->progress.step;
    tr->status.eval_behind = tr->status.has_eval
                             && tr->eval_step != tr->progress.step;
    tr->status.elapsed = run_seconds(tr, run_clock(tr));
    tr->status.eta = 0.0;
    tr->running = 0;
    pending = tr->save_requested;
    tr->save_requested = 0;
    pthread_mutex_unlock(&tr->lock);
    if (pending)
        save_request(tr);
}

static int stop_after_epoch_requested(Trainer *tr)
{
    int stop;

    pthread_mutex_lock(&tr->lock);
    stop = tr->status.stop_after_epoch;
    pthread_mutex_unlock(&tr->lock);
    return stop;
}

/* Sets an error message when the evaluation RES of the network as
 * loaded or created left test images without a prediction, and returns
 * -1 then, else 0. --eval, exploring and training after --load all
 * report it with this text. BEFORE_TRAINING adds that training did not
 * start. */
static int report_nonfinite_eval(Trainer *tr, const EvalResult *res,
                                 int before_training)
{
    if (res->nonfinite == 0)
        return 0;
    if (tr->cfg.load_path != NULL)
        set_message(tr, 1, "%s--load %s %sgives NaN predictions for %ld of "
                    "%d test images: its weights are too large for them; "
                    "use an earlier checkpoint",
                    before_training ? "training not started: " : "",
                    tr->cfg.load_path, before_training ? "already " : "",
                    res->nonfinite, tr->test->count);
    else
        set_message(tr, 1, "the model gives NaN predictions for %ld of %d "
                    "test images: its weights are too large for them",
                    res->nonfinite, tr->test->count);
    return -1;
}

/* Evaluates the loaded network before training. Returns -1 when it
 * already gives NaN predictions: training would stop on them with advice
 * on the learning rate, while the checkpoint is the cause. The run then
 * counts as diverged, so no save replaces a file with that model. */
static int evaluate_loaded(Trainer *tr)
{
    EvalResult res;

    /* The status names the epoch the run goes on with, whose batches so
     * far the progress bar shows during the evaluation. */
    pthread_mutex_lock(&tr->lock);
    tr->status.epoch = (int)tr->progress.epochs_done + 1;
    pthread_mutex_unlock(&tr->lock);
    evaluate_and_publish(tr, 0, &res);
    if (report_nonfinite_eval(tr, &res, 1) == 0)
        return 0;
    pthread_mutex_lock(&tr->job_lock);
    tr->diverged = 1;
    pthread_mutex_unlock(&tr->job_lock);
    return -1;
}

static void *coordinator_main(void *arg)
{
    Trainer *tr = arg;
    int rc = 0;
    EvalResult res;

    if (tr->cfg.epochs == 0) {
        evaluate_and_publish(tr, 0, &res);
        report_nonfinite_eval(tr, &res, 0);
    } else if (tr->cfg.evaluate_loaded && tr->cfg.load_path != NULL) {
        rc = evaluate_loaded(tr);
        /* The training time starts now. A pause asked for during the
         * evaluation begins before the first batch, so it counts from
         * this clock too. */
        pthread_mutex_lock(&tr->lock);
        tr->t_start = run_clock(tr);
        tr->clock_waiting = 0;
        pthread_mutex_unlock(&tr->lock);
    }
    while (rc == 0 && tr->progress.epochs_done < tr->epochs_end) {
        rc = run_epoch(tr);
        if (rc == 0)
            rc = end_epoch(tr);
        if (rc == 0 && stop_after_epoch_requested(tr))
            break;
    }
    finish_run(tr, rc < 0);
    return NULL;
}

/* ------------------------------------------------------------ creation */

/* Checks the validation split, augmentation, schedule and weight decay. */
static int check_training_options(const TrainerConfig *cfg, char *err,
                                  size_t errlen)
{
    const Schedule *sch = &cfg->schedule;

    if (cfg->val_count < 0) {
        set_err(err, errlen, "validation split: %d is negative",
                cfg->val_count);
        return -1;
    }
    if (cfg->augment.shift < 0 || cfg->augment.shift > AUGMENT_MAX_SHIFT) {
        set_err(err, errlen, "shift: %d pixels, expected 0 to %d",
                cfg->augment.shift, AUGMENT_MAX_SHIFT);
        return -1;
    }
    if (sch->kind == SCHEDULE_STEP
        && (sch->step_epochs < 1
            || !(sch->gamma > 0.0f && sch->gamma <= 1.0f))) {
        set_err(err, errlen, "step schedule: a drop every %d epochs by %g, "
                "expected at least 1 epoch and a factor in (0, 1]",
                sch->step_epochs, sch->gamma);
        return -1;
    }
    if (!(cfg->weight_decay >= 0.0f && cfg->weight_decay < 1.0f)) {
        set_err(err, errlen, "weight decay: %g, expected 0 or more and "
                "below 1", cfg->weight_decay);
        return -1;
    }
    return 0;
}

static int check_config(const TrainerConfig *cfg, const Dataset *train,
                        const Dataset *test, char *err, size_t errlen)
{
    if (cfg->epochs < 0) {
        set_err(err, errlen, "epochs: %d is negative", cfg->epochs);
        return -1;
    }
    if (cfg->batch < 1) {
        set_err(err, errlen, "batch size: %d, expected at least 1", cfg->batch);
        return -1;
    }
    if (cfg->threads < 1 || cfg->threads > TRAINER_MAX_THREADS) {
        set_err(err, errlen, "threads: %d, expected 1 to %d", cfg->threads,
                TRAINER_MAX_THREADS);
        return -1;
    }
    if (cfg->train_limit < 0) {
        set_err(err, errlen, "training limit: %d is negative",
                cfg->train_limit);
        return -1;
    }
    if (check_training_options(cfg, err, errlen) != 0)
        return -1;
    if (train != NULL && cfg->val_count >= train->count) {
        set_err(err, errlen, "validation split: %d of the %d training images "
                "leaves none to train on; use fewer than %d", cfg->val_count,
                train->count, train->count);
        return -1;
    }
    if (test == NULL || test->count < 1) {
        set_err(err, errlen, "test set: no images to evaluate");
        return -1;
    }
    if (cfg->epochs > 0 && (train == NULL || train->count < 1)) {
        set_err(err, errlen, "training set: no images to train on");
        return -1;
    }
    return 0;
}

static float default_lr(OptimKind kind)
{
    return kind == OPTIM_ADAM ? DEFAULT_LR_ADAM : DEFAULT_LR_SGD;
}

static int setup_fresh(Trainer *tr, char *err, size_t errlen)
{
    const TrainerConfig *cfg = &tr->cfg;
    const char *spec = tr->spec != NULL ? tr->spec : "default";
    Rng rng;

    if (net_create(&tr->net, spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, errlen) != 0)
        return -1;
    tr->seed = cfg->seed;
    rng_seed(&rng, derive_seed(tr->seed, STREAM_INIT, 0, 0));
    net_init_params(&tr->net, &rng);
    optim_init(&tr->opt, cfg->optim, tr->net.n_params,
               cfg->lr > 0 ? cfg->lr : default_lr(cfg->optim));
    tr->base_lr = tr->opt.lr;
    tr->progress.history_stride = HISTORY_STRIDE;
    return 0;
}

/* Rejects a --model that names another network than the checkpoint's.
 * A run of 0 epochs only evaluates, so the advice then keeps --load. */
static int check_model_matches(const Trainer *tr, char *err, size_t errlen)
{
    char net_err[NET_ERR_LEN];
    const char *preset;
    Net requested;
    int same;

    if (tr->spec == NULL)
        return 0;
    if (net_create(&requested, tr->spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, net_err, sizeof net_err) != 0) {
        set_err(err, errlen, "%s", net_err);
        return -1;
    }
    same = strcmp(requested.spec, tr->net.spec) == 0;
    /* A preset name as given, such as "--model small". */
    preset = net_preset_name(requested.spec);
    if (preset != NULL && strcmp(tr->spec, preset) != 0)
        preset = NULL;
    if (!same && tr->cfg.epochs == 0)
        set_err(err, errlen, "--load %s contains model %s, but --model%s%s "
                "requests model %s; drop --model to evaluate the "
                "checkpoint's model", tr->load_path, tr->net.spec,
                preset != NULL ? " " : "", preset != NULL ? preset : "",
                requested.spec);
    else if (!same)
        set_err(err, errlen, "--load %s contains model %s, but --model%s%s "
                "requests model %s; drop --model to continue the "
                "checkpoint's run, or drop --load to train --model afresh",
                tr->load_path, tr->net.spec, preset != NULL ? " " : "",
                preset != NULL ? preset : "", requested.spec);
    net_free(&requested);
    return same ? 0 : -1;
}

/* Takes over the optimiser state unless the user asked for another
 * optimiser, which then starts afresh; the status message notes the
 * switch. */
static void adopt_optimiser(Trainer *tr, Checkpoint *ck)
{
    const TrainerConfig *cfg = &tr->cfg;

    if (!cfg->optim_given || cfg->optim == ck->optim.kind) {
        tr->opt = ck->optim;
        memset(&ck->optim, 0, sizeof ck->optim);
        if (cfg->lr > 0)
            tr->opt.lr = cfg->lr;
        tr->base_lr = tr->opt.lr;
        return;
    }
    optim_init(&tr->opt, cfg->optim, tr->net.n_params,
               cfg->lr > 0 ? cfg->lr : default_lr(cfg->optim));
    tr->base_lr = tr->opt.lr;
    snprintf(tr->status.message, sizeof tr->status.message,
             "--load %s was trained with %s, so --optimizer %s starts "
             "with fresh state", tr->load_path, optim_name(ck->optim.kind),
             optim_name(cfg->optim));
}

/* Restores the position, the seed and the history of a checkpoint. */
static void adopt_progress(Trainer *tr, const Checkpoint *ck)
{
    Progress *pr = &tr->progress;
    const CheckpointEpoch *part = &ck->partial;
    int n = ck->n_history, t = ck->n_test_history;
    float *loss = xmalloc(((size_t)n + 1) * sizeof(float));
    float *acc = xmalloc(((size_t)n + 1) * sizeof(float));
    float *test = xmalloc(((size_t)t + 1) * sizeof(float));

    tr->seed = ck->seed;
    pr->epochs_done = ck->epochs_done;
    pr->step = ck->step;
    pr->history_stride = ck->history_stride;
    /* A run that does not train (--epochs 0) keeps the partial epoch as
     * it is, so that a save writes it back unchanged, and restarts
     * nothing. */
    if (part->samples == 0) {
        /* No partial epoch to take over. */
    } else if (tr->cfg.epochs == 0
               || (part->batch == tr->cfg.batch
                   && part->train_count == tr->n_train)) {
        pr->epoch = *part;
    } else if (part->batch != tr->cfg.batch) {
        snprintf(tr->status.message, sizeof tr->status.message,
                 "epoch %lld restarts: batch size %d, the checkpoint's "
                 "was %d", (long long)ck->epochs_done + 1,
                 tr->cfg.batch, part->batch);
    } else {
        snprintf(tr->status.message, sizeof tr->status.message,
                 "epoch %lld restarts: %d training images, the "
                 "checkpoint's epoch had %d", (long long)ck->epochs_done + 1,
                 tr->n_train, part->train_count);
    }

    /* The extremes come from the points as saved, before the merging
     * below. */
    range_of(&pr->loss_range, ck->loss_history, n);
    range_of(&pr->acc_range, ck->acc_history, n);
    range_of(&pr->test_acc_range, ck->test_acc_history, t);

    /* A checkpoint may contain more points than fit, so merge them like a
     * full buffer. */
    memcpy(loss, ck->loss_history, (size_t)n * sizeof(float));
    memcpy(acc, ck->acc_history, (size_t)n * sizeof(float));
    memcpy(test, ck->test_acc_history, (size_t)t * sizeof(float));
    while (n > TRAINER_HISTORY) {
        merge_pairs(loss, n);
        n = merge_pairs(acc, n);
        pr->history_stride *= 2;
    }
    while (t > TRAINER_HISTORY)
        t = merge_pairs(test, t);
    pr->n_history = n;
    memcpy(pr->loss_history, loss, (size_t)n * sizeof(float));
    memcpy(pr->acc_history, acc, (size_t)n * sizeof(float));
    pr->n_test_history = t;
    memcpy(pr->test_acc_history, test, (size_t)t * sizeof(float));
    free(loss);
    free(acc);
    free(test);
}

static int setup_from_checkpoint(Trainer *tr, char *err, size_t errlen)
{
    Checkpoint ck;

    tr->have_load_st = stat(tr->load_path, &tr->load_st) == 0;
    if (checkpoint_load(tr->load_path, &ck, err, errlen) != 0)
        return -1;
    if (net_create(&tr->net, ck.spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, errlen) != 0
        || check_model_matches(tr, err, errlen) != 0) {
        checkpoint_free(&ck);
        return -1;
    }
    memcpy(tr->net.params, ck.params, ck.n_params * sizeof(float));
    memcpy(tr->net.stats, ck.stats, ck.n_stats * sizeof(float));
    adopt_optimiser(tr, &ck);
    adopt_progress(tr, &ck);
    checkpoint_free(&ck);
    return 0;
}

/* Adds FIRST..END-1 to the N ranges at *RANGES, merging it with the last
 * range when they touch. */
static void add_range(ParamRange **ranges, int *n, size_t first, size_t end)
{
    if (first == end)
        return;
    if (*n > 0 && (*ranges)[*n - 1].end == first) {
        (*ranges)[*n - 1].end = end;
        return;
    }
    *ranges = xrealloc(*ranges, ((size_t)*n + 1) * sizeof **ranges);
    (*ranges)[*n].first = first;
    (*ranges)[*n].end = end;
    (*n)++;
}

/* Lists the parameters summed over shards and those weight decay applies
 * to, from the layers of the net. */
static void list_param_ranges(Trainer *tr)
{
    for (int i = 0; i < tr->net.n_layers; i++) {
        const Layer *l = &tr->net.layers[i];

        if (!net_grad_per_batch(l))
            add_range(&tr->shard_ranges, &tr->n_shard_ranges,
                      l->weight_offset, l->weight_offset + l->param_count);
        if (l->kind == LAYER_CONV || l->kind == LAYER_DENSE)
            add_range(&tr->decay_ranges, &tr->n_decay_ranges,
                      l->weight_offset, l->bias_offset);
    }
}

static void alloc_buffers(Trainer *tr)
{
    Batch *b = &tr->batch;
    size_t grad_bytes = tr->net.n_params * sizeof(float);
    int test_count = tr->test->count;

    tr->order = xcalloc((size_t)tr->n_train + 1, sizeof *tr->order);
    b->images = xmalloc_aligned((size_t)tr->cfg.batch * DATASET_PIXELS
                                * sizeof(float));
    b->labels = xmalloc((size_t)tr->cfg.batch);
    b->max_shards = (tr->cfg.batch + TRAINER_SHARD - 1) / TRAINER_SHARD;
    b->grad = xcalloc((size_t)b->max_shards, sizeof *b->grad);
    b->stats = xcalloc((size_t)b->max_shards, sizeof *b->stats);
    for (int s = 0; s < b->max_shards; s++) {
        b->grad[s] = xmalloc_pages(grad_bytes);
        b->stats[s] = xcalloc(tr->net.n_stats + 1, sizeof(float));
    }
    /* The three phases cut a batch into shards of TRAINER_SHARD rows
     * throughout, which the merged last shard of shard_count breaks. */
    if (net_head_batched(&tr->net) && !tr->single_value_bn) {
        size_t width = net_head_width(&tr->net);

        b->trunk = xcalloc((size_t)b->max_shards, sizeof *b->trunk);
        for (int s = 0; s < b->max_shards; s++)
            b->trunk[s] = net_trunk_scratch_create(&tr->net, TRAINER_SHARD);
        b->head = net_head_scratch_create(&tr->net, tr->cfg.batch);
        b->features = xmalloc_aligned((size_t)tr->cfg.batch * width
                                      * sizeof(float));
        b->dfeatures = xmalloc_aligned((size_t)tr->cfg.batch * width
                                       * sizeof(float));
        b->rngs = xcalloc((size_t)b->max_shards, sizeof *b->rngs);
    } else {
        b->rows = net_batch_create(&tr->net, tr->cfg.batch);
    }
    b->bad = xcalloc(tr->net.n_params / REDUCE_SLICE + 1, sizeof *b->bad);
    list_param_ranges(tr);
    b->samples = xcalloc((size_t)b->max_shards, sizeof *b->samples);
    b->loss = xcalloc((size_t)b->max_shards, sizeof *b->loss);
    b->correct = xcalloc((size_t)b->max_shards, sizeof *b->correct);
    b->mean_grad = xmalloc_aligned(grad_bytes);

    tr->eval.n_shards = (test_count + EVAL_SHARD - 1) / EVAL_SHARD;
    tr->eval.predicted = xcalloc((size_t)test_count, 1);
    tr->eval.probs = xcalloc((size_t)test_count * DATASET_CLASSES,
                             sizeof(float));
    tr->eval.loss = xcalloc((size_t)tr->eval.n_shards, sizeof(double));
    tr->eval.nonfinite = xcalloc((size_t)tr->eval.n_shards, sizeof(int));
    tr->pub_predicted = xcalloc((size_t)test_count, 1);
    tr->pub_probs = xcalloc((size_t)test_count * DATASET_CLASSES,
                            sizeof(float));

    tr->val.n_shards = (tr->n_val + EVAL_SHARD - 1) / EVAL_SHARD;
    tr->val.predicted = xcalloc((size_t)tr->n_val + 1, 1);
    tr->val.probs = xcalloc(((size_t)tr->n_val + 1) * DATASET_CLASSES,
                            sizeof(float));
    tr->val.loss = xcalloc((size_t)tr->val.n_shards + 1, sizeof(double));
    tr->val.nonfinite = xcalloc((size_t)tr->val.n_shards + 1, sizeof(int));
}

static void init_status(Trainer *tr)
{
    const Progress *pr = &tr->progress;
    TrainerStatus *st = &tr->status;
    double samples = (double)pr->epoch.samples;

    st->state = TRAINER_IDLE;
    st->epoch = (int)pr->epochs_done;
    st->epochs = (int)tr->epochs_end;
    st->train_epochs = tr->cfg.epochs;
    st->epochs_done = (int)pr->epochs_done;
    st->loaded = tr->cfg.load_path != NULL;
    st->save_path = tr->save_path;
    if (tr->save_path != NULL && tr->have_load_st) {
        struct stat save_st;

        st->save_is_load = stat(tr->save_path, &save_st) == 0
                           && save_st.st_dev == tr->load_st.st_dev
                           && save_st.st_ino == tr->load_st.st_ino;
    }
    st->batch = (long)pr->epoch.batches;
    st->loaded_batch = st->batch;
    st->batches_per_epoch = (tr->n_epoch + tr->cfg.batch - 1) / tr->cfg.batch;
    st->eta = -1.0;
    st->epoch_eta = -1.0;
    st->threads = tr->n_threads;
    tr->status_lr_raw = scheduled_lr(tr);
    st->lr = lr_floor(tr->status_lr_raw);
    if (samples > 0) {
        st->train_loss = pr->epoch.loss_sum / samples;
        st->train_acc = (double)pr->epoch.correct / samples;
    }
    history_publish(tr);
}

static void free_buffers(Trainer *tr)
{
    Batch *b = &tr->batch;

    free(tr->order);
    free(b->images);
    free(b->labels);
    for (int s = 0; b->grad != NULL && s < b->max_shards; s++) {
        xfree_pages(b->grad[s], tr->net.n_params * sizeof(float));
        free(b->stats[s]);
    }
    net_batch_free(b->rows);
    for (int s = 0; b->trunk != NULL && s < b->max_shards; s++)
        net_scratch_free(b->trunk[s]);
    free(b->trunk);
    net_scratch_free(b->head);
    free(b->features);
    free(b->dfeatures);
    free(b->rngs);
    free(b->bad);
    free(tr->shard_ranges);
    free(tr->decay_ranges);
    free(b->grad);
    free(b->stats);
    free(b->samples);
    free(b->loss);
    free(b->correct);
    free(b->mean_grad);
    free(tr->eval.predicted);
    free(tr->eval.probs);
    free(tr->eval.loss);
    free(tr->eval.nonfinite);
    free(tr->pub_predicted);
    free(tr->pub_probs);
    free(tr->val.predicted);
    free(tr->val.probs);
    free(tr->val.loss);
    free(tr->val.nonfinite);
}

/* Releases everything but the threads; safe on a partly built trainer. */
static void destroy(Trainer *tr)
{
    free_buffers(tr);
    free(tr->workers);
    net_free(&tr->net);
    optim_free(&tr->opt);
    pthread_mutex_destroy(&tr->job_lock);
    pthread_mutex_destroy(&tr->pred_lock);
    pthread_mutex_destroy(&tr->lock);
    pthread_cond_destroy(&tr->control);
    pthread_mutex_destroy(&tr->pool.lock);
    pthread_cond_destroy(&tr->pool.work);
    pthread_cond_destroy(&tr->pool.done);
    free(tr->spec);
    free(tr->save_path);
    free(tr->load_path);
    free(tr->request_file);
    for (int i = 0; i < tr->n_old_request_files; i++)
        free(tr->old_request_files[i]);
    free(tr->old_request_files);
    free(tr);
}

/* Returns the number of workers for CFG: the threads requested, but no
 * more than the shards of the largest batch, which N_TRAIN training
 * images (0 when the run does not train) can make smaller than
 * cfg->batch. The forward and backward passes, most of a step's work,
 * take one shard per worker, so further workers would only wait, each
 * with its own scratch memory. The weights do not depend on the count. */
static int worker_count(const TrainerConfig *cfg, int n_train)
{
    int batch = n_train > 0 && n_train < cfg->batch ? n_train : cfg->batch;
    int shards = (batch + TRAINER_SHARD - 1) / TRAINER_SHARD;

    return cfg->threads < shards ? cfg->threads : shards;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

/* Allocates a trainer holding copies of CFG's strings, with its locks
 * initialised and nothing else built yet. */
static Trainer *trainer_alloc(const TrainerConfig *cfg, const Dataset *train,
                              const Dataset *test)
{
    Trainer *tr = xcalloc(1, sizeof *tr);

    tr->cfg = *cfg;
    tr->spec = dup_or_null(cfg->spec);
    tr->save_path = dup_or_null(cfg->save_path);
    tr->load_path = dup_or_null(cfg->load_path);
    tr->cfg.spec = tr->spec;
    tr->cfg.save_path = tr->save_path;
    tr->cfg.load_path = tr->load_path;
    tr->train = train;
    tr->test = test;
    tr->saved_step = -1;
    tr->saved_ok_step = -1;
    tr->lr_scale = 1.0f;
    tr->lr_user_scale = 1.0f;
    range_clear(&tr->progress.loss_range);
    range_clear(&tr->progress.acc_range);
    range_clear(&tr->progress.test_acc_range);
    tr->status.loss_range = tr->progress.loss_range;
    tr->status.acc_range = tr->progress.acc_range;
    tr->status.test_acc_range = tr->progress.test_acc_range;
    if (train != NULL) {
        tr->n_val = cfg->val_count;
        tr->n_train = train->count - tr->n_val;
        if (cfg->train_limit > 0 && cfg->train_limit < tr->n_train)
            tr->n_train = cfg->train_limit;
    }
    tr->n_threads = worker_count(cfg, tr->n_train);
    pthread_mutex_init(&tr->job_lock, NULL);
    pthread_mutex_init(&tr->pred_lock, NULL);
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->control, NULL);
    pthread_mutex_init(&tr->pool.lock, NULL);
    pthread_cond_init(&tr->pool.work, NULL);
    pthread_cond_init(&tr->pool.done, NULL);
    return tr;
}

/*
 * Sets n_epoch and single_value_bn. A net with a bn layer over single
 * values cannot train on one sample, so a batch size of 1 and a training
 * set of one image are rejected, and a last batch of one sample is
 * skipped. Returns 0, or -1 with ERR set.
 */
static int plan_epochs(Trainer *tr, char *err, size_t errlen)
{
    int bn = net_find_single_value_bn(&tr->net);
    const char *reason = "normalises each value of a sample over the "
                         "samples of a batch, which needs at least 2";

    tr->n_epoch = tr->n_train;
    if (bn < 0)
        return 0;
    tr->single_value_bn = 1;
    if (tr->cfg.epochs == 0)
        return 0;
    if (tr->cfg.batch < 2) {
        set_err(err, errlen, "batch size %d: token %d \"bn\" %s",
                tr->cfg.batch, bn + 1, reason);
        return -1;
    }
    if (tr->n_train < 2) {
        set_err(err, errlen, "training set of %d image: token %d \"bn\" %s; "
                "train on 2 or more images (a larger --train-limit or a "
                "smaller --val)", tr->n_train, bn + 1, reason);
        return -1;
    }
    if (tr->n_train % tr->cfg.batch == 1)
        tr->n_epoch--;
    return 0;
}

/* Rejects a step schedule that would take the base rate below FLT_MIN
 * before the run ends, naming the epoch, since the update reads such a
 * rate as zero and the rest of the run would change no weight. */
static int check_schedule_floor(const Trainer *tr, char *err, size_t errlen)
{
    const Schedule *sch = &tr->cfg.schedule;
    int64_t done = tr->progress.epochs_done;
    int64_t epoch = schedule_underflow_epoch(sch, tr->base_lr, done,
                                             tr->epochs_end);
    char fewer[64] = "";

    if (epoch == 0)
        return 0;
    /* EPOCH - 1 epochs are complete when that epoch starts. */
    float low = (float)(tr->base_lr
                        * schedule_factor(sch, (double)(epoch - 1), 0.0));
    if (epoch - 1 > done)
        snprintf(fewer, sizeof fewer, ", or --epochs %lld or fewer",
                 (long long)(epoch - 1 - done));
    char gamma[32], every[32] = "";

    /* The factor as --lr-gamma gave it, as the run's description prints
     * it, not rounded to 6 digits. */
    util_format_float(sch->gamma, gamma, sizeof gamma);
    if (sch->step_epochs != 1)
        snprintf(every, sizeof every, " %d", sch->step_epochs);
    set_err(err, errlen, "step schedule: the learning rate would fall to "
            "%.3g in epoch %lld (rate %g, times %s every%s epoch%s), below "
            "the smallest normal float (%.3g), where updates no longer "
            "change the weights; give a larger --lr-gamma, --lr-step or "
            "--lr%s", low, (long long)epoch, tr->base_lr, gamma, every,
            sch->step_epochs == 1 ? "" : "s", FLT_MIN, fewer);
    return -1;
}

Trainer *trainer_create(const TrainerConfig *cfg, const Dataset *train,
                        const Dataset *test, char *err, size_t errlen)
{
    Trainer *tr;
    int rc;

    if (check_config(cfg, train, test, err, errlen) != 0)
        return NULL;
    tr = trainer_alloc(cfg, train, test);
    rc = tr->load_path != NULL ? setup_from_checkpoint(tr, err, errlen)
                               : setup_fresh(tr, err, errlen);
    if (rc == 0)
        rc = plan_epochs(tr, err, errlen);
    if (rc != 0) {
        destroy(tr);
        return NULL;
    }
    tr->epochs_end = tr->progress.epochs_done + cfg->epochs;
    tr->base_lr = tr->opt.lr;
    /* Then the reply to s names the fresh file from the first save on. */
    if (tr->save_path == NULL && tr->load_path != NULL
        && util_read_only(tr->load_path, tr->pass_reason,
                          sizeof tr->pass_reason))
        tr->load_file_passed = 1;
    if (check_schedule_floor(tr, err, errlen) != 0) {
        destroy(tr);
        return NULL;
    }
    alloc_buffers(tr);
    init_status(tr);
    if (pool_start(tr, err, errlen) != 0) {
        pool_stop(tr);
        destroy(tr);
        return NULL;
    }
    return tr;
}

/* ------------------------------------------------------------ control */

int trainer_start(Trainer *tr)
{
    int rc;

    if (tr->started)
        return -1;
    tr->t_start = run_clock(tr);
    pthread_mutex_lock(&tr->lock);
    tr->clock_waiting = tr->cfg.epochs > 0 && tr->cfg.evaluate_loaded
                        && tr->cfg.load_path != NULL;
    tr->running = 1;
    tr->status.state = tr->cfg.epochs > 0 ? TRAINER_TRAINING
                                          : TRAINER_EVALUATING;
    pthread_mutex_unlock(&tr->lock);

    rc = pthread_create(&tr->coordinator, NULL, coordinator_main, tr);
    if (rc != 0) {
        pthread_mutex_lock(&tr->lock);
        tr->running = 0;
        tr->status.state = TRAINER_FAILED;
        snprintf(tr->status.message, sizeof tr->status.message,
                 "starting the training thread: %s", strerror(rc));
        snprintf(tr->status.failure, sizeof tr->status.failure, "%s",
                 tr->status.message);
        pthread_mutex_unlock(&tr->lock);
        return -1;
    }
    tr->started = 1;
    return 0;
}

int trainer_set_paused(Trainer *tr, int paused)
{
    pthread_mutex_lock(&tr->lock);
    int was_paused = tr->paused;
    tr->paused = paused != 0;
    pthread_cond_broadcast(&tr->control);
    pthread_mutex_unlock(&tr->lock);
    return was_paused;
}

void trainer_request_stop(Trainer *tr)
{
    atomic_store(&tr->stopping, 1);
    pthread_mutex_lock(&tr->lock);
    tr->stop_requested = 1;
    pthread_cond_broadcast(&tr->control);
    pthread_mutex_unlock(&tr->lock);
}

/* While the coordinator runs, it saves at its next batch boundary. Before
 * the start and after the end, the save happens here on the caller's
 * thread. */
const char *trainer_request_save(Trainer *tr)
{
    pthread_mutex_lock(&tr->lock);
    /* TODO: a program other than fmnist can still create the chosen file
     * between save_request's check and the first write, which then
     * replaces it. */
    if (tr->save_path == NULL
        && (tr->load_path == NULL || tr->load_file_passed)
        && tr->request_file == NULL)
        tr->request_file = free_checkpoint_name();
    const char *path = request_path(tr);
    if (tr->running) {
        tr->save_requested = 1;
        pthread_cond_broadcast(&tr->control);
        pthread_mutex_unlock(&tr->lock);
        return path;
    }
    pthread_mutex_unlock(&tr->lock);
    save_request(tr);
    return path;
}

void trainer_post_message(Trainer *tr, int is_error, const char *text)
{
    set_message(tr, is_error, "%s", text);
}

OptimKind trainer_optim(const Trainer *tr, float *base_lr)
{
    *base_lr = tr->base_lr;
    return tr->opt.kind;
}

/* base_lr is fixed once the trainer exists, so reading it needs no lock.
 * The status shows the new rate at once, also while paused. */
float trainer_scale_lr(Trainer *tr, float factor)
{
    float lr, old_scale;

    pthread_mutex_lock(&tr->lock);
    /* No batch follows the end, so a new rate would only change the
     * status line. */
    if (tr->status.state == TRAINER_DONE
        || tr->status.state == TRAINER_FAILED) {
        lr = (float)tr->status.lr;
        pthread_mutex_unlock(&tr->lock);
        return lr;
    }
    old_scale = tr->lr_scale;
    float old = tr->base_lr * old_scale;
    lr = old * factor;
    /* A bound stops a change in its direction, but a rate that --lr set
     * beyond it stays where it is: a lowering never raises it. */
    if (factor > 1.0f && lr > TRAINER_LR_MAX)
        lr = old > TRAINER_LR_MAX ? old : TRAINER_LR_MAX;
    if (factor < 1.0f && lr < TRAINER_LR_MIN)
        lr = old < TRAINER_LR_MIN ? old : TRAINER_LR_MIN;
    tr->lr_scale = lr / tr->base_lr;
    /* The schedule can take the new rate below FLT_MIN, where the next
     * batch uses the floor. */
    tr->status_lr_raw *= tr->lr_scale / old_scale;
    tr->status.lr = lr_floor(tr->status_lr_raw);
    lr = (float)tr->status.lr;
    pthread_mutex_unlock(&tr->lock);
    return lr;
}

void trainer_stop_after_epoch(Trainer *tr, int stop)
{
    pthread_mutex_lock(&tr->lock);
    tr->status.stop_after_epoch = stop != 0;
    pthread_mutex_unlock(&tr->lock);
}

void trainer_join(Trainer *tr)
{
    if (!tr->started || tr->joined)
        return;
    pthread_join(tr->coordinator, NULL);
    tr->joined = 1;
}

void trainer_free(Trainer *tr)
{
    if (tr == NULL)
        return;
    if (tr->started && !tr->joined) {
        trainer_request_stop(tr);
        trainer_join(tr);
    }
    pool_stop(tr);
    savelock_release(&tr->request_lock);
    destroy(tr);
}

/*
 * Lowers the speed and raises the ETAs in OUT while the batch in progress
 * has taken longer than the averages expect, to what they would be if it
 * ended now. Otherwise a machine that suddenly became very slow would
 * show its old speed until the first slow batch ended, which can take
 * many seconds. The ETAs scale with the ETA's rate, since evaluations
 * slow down as much as batches. A stop (see end_interval) does not count.
 * Caller holds tr->lock.
 */
static void slow_batch_estimates(const Trainer *tr, TrainerStatus *out)
{
    double now = run_clock(tr);
    double continued = util_untimed_continue() - tr->untimed_stopped;
    double shown_rate = rate_in_progress(&tr->live_shown, RATE_SHOWN_TAU,
                                         tr->live_began, now, continued,
                                         tr->live_n);
    double eta_rate = rate_in_progress(&tr->live_eta, RATE_ETA_TAU,
                                       tr->live_began, now, continued,
                                       tr->live_n);
    double slowdown = eta_rate > 0.0 ? rate_get(&tr->live_eta) / eta_rate
                                     : 1.0;

    if (shown_rate > 0.0)
        out->images_per_sec = fmin(out->images_per_sec, shown_rate);
    if (slowdown <= 1.0)
        return;
    if (tr->status.eta > 0.0)
        out->eta = fmax(out->eta, tr->status.eta * slowdown);
    if (tr->status.epoch_eta > 0.0)
        out->epoch_eta = fmax(out->epoch_eta, tr->status.epoch_eta * slowdown);
}

void trainer_get_status(Trainer *tr, TrainerStatus *out)
{
    pthread_mutex_lock(&tr->lock);
    *out = tr->status;
    /* The clock keeps running between batches, but not while paused, and
     * the estimates count down from the latest batch's, so that they do
     * not stand still through an evaluation. */
    if (tr->running) {
        double since;

        out->elapsed = run_seconds(tr, run_clock(tr));
        since = out->elapsed - tr->status.elapsed;
        if (out->eta > 0.0)
            out->eta = fmax(out->eta - since, 0.0);
        if (out->epoch_eta > 0.0)
            out->epoch_eta = fmax(out->epoch_eta - since, 0.0);
        if (out->state == TRAINER_TRAINING && tr->live_began > 0.0)
            slow_batch_estimates(tr, out);
    }
    pthread_mutex_unlock(&tr->lock);

}

int trainer_copy_predictions(Trainer *tr, unsigned *generation,
                             uint8_t *predicted, float *probs)
{
    size_t count = (size_t)tr->test->count;
    int copied = 0;

    pthread_mutex_lock(&tr->pred_lock);
    if (tr->pred_generation != 0 && tr->pred_generation != *generation) {
        memcpy(predicted, tr->pub_predicted, count);
        memcpy(probs, tr->pub_probs, count * DATASET_CLASSES * sizeof(float));
        *generation = tr->pred_generation;
        copied = 1;
    }
    pthread_mutex_unlock(&tr->pred_lock);
    return copied;
}

void trainer_evaluate(Trainer *tr)
{
    EvalResult res;

    evaluate_and_publish(tr, 0, &res);
    report_nonfinite_eval(tr, &res, 0);
}

const Net *trainer_net(const Trainer *tr)
{
    return &tr->net;
}

void trainer_copy_net(Trainer *tr, Net *out)
{
    pthread_mutex_lock(&tr->job_lock);
    net_clone(out, &tr->net);
    pthread_mutex_unlock(&tr->job_lock);
}

const char *trainer_state_name(TrainerState state)
{
    switch (state) {
    case TRAINER_IDLE:
        return "idle";
    case TRAINER_TRAINING:
        return "training";
    case TRAINER_PAUSED:
        return "paused";
    case TRAINER_EVALUATING:
        return "evaluating";
    case TRAINER_DONE:
        return "done";
    case TRAINER_FAILED:
        return "failed";
    }
    return "unknown";
}
