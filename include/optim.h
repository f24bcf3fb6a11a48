/*
 * optim: parameter updates from an averaged gradient. SGD with momentum
 * (v = mu*v + g; w -= lr*v) and Adam with bias correction, plus the
 * learning-rate schedules and the two forms of weight decay.
 */
#ifndef FMNIST_OPTIM_H
#define FMNIST_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OPTIM_SGD, OPTIM_ADAM } OptimKind;

typedef struct {
    OptimKind kind;
    float lr;
    float momentum;           /* SGD */
    float beta1, beta2, eps;  /* Adam */
    size_t n;
    float *m;                 /* SGD velocity, or Adam first moment */
    float *v;                 /* Adam second moment; NULL for SGD */
    int64_t t;                /* updates applied so far */
} Optim;

/* Sets up an optimiser of KIND for N parameters with learning rate LR and
 * the usual defaults (momentum 0.9; beta1 0.9, beta2 0.999, eps 1e-8). */
void optim_init(Optim *opt, OptimKind kind, size_t n, float lr);

/* Applies one update to PARAMS from GRAD (already averaged over the batch). */
void optim_step(Optim *opt, float *params, const float *grad);

/*
 * optim_step in parts, so that threads can share an update: call
 * optim_begin_step once, then optim_update for ranges FIRST..END-1 that
 * together cover 0..n-1 once. The gradient of entry i is GRAD[i] * SCALE,
 * rounded to float, so a caller can pass batch sums and 1 / batch size
 * instead of scaling GRAD in a pass of its own. With SCALE 1 each entry
 * gets the same arithmetic as in optim_step, so the result does not
 * depend on how the ranges are cut. Threads may update disjoint ranges
 * at once.
 *
 * On x86 the update treats subnormal numbers (below 2^-126 in magnitude)
 * in the gradient and the optimiser state as zero and writes zero for
 * subnormal results. Adam's squared gradients and decaying moments of
 * units that stop learning fall into that range. With them, the update
 * took 44% of the default network's training time in its second epoch
 * instead of 6%.
 */
void optim_begin_step(Optim *opt);
void optim_update(const Optim *opt, float *params, const float *grad,
                  float scale, size_t first, size_t end);

void optim_free(Optim *opt);

/* Returns the optimiser for NAME ("sgd" or "adam"), or -1. */
int optim_parse(const char *name);

/* Returns "sgd" or "adam". */
const char *optim_name(OptimKind kind);

/* ------------------------------------------------------------ schedules */

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_STEP, SCHEDULE_COSINE } ScheduleKind;

typedef struct {
    ScheduleKind kind;
    int step_epochs;   /* step: epochs between two drops, >= 1 */
    float gamma;       /* step: factor applied at each drop, in (0, 1] */
} Schedule;

/*
 * Returns the factor that multiplies the base learning rate after EPOCH
 * epochs (a fraction within an epoch counts, e.g. 2.5) of a run that ends
 * after TOTAL epochs:
 *   constant  1
 *   step      gamma^floor(EPOCH / step_epochs)
 *   cosine    (1 + cos(pi * EPOCH / TOTAL)) / 2, which falls smoothly
 *             from 1 to 0; EPOCH beyond TOTAL gives 0.
 */
double schedule_factor(const Schedule *schedule, double epoch, double total);

/*
 * Returns the 1-based number of the first epoch after EPOCHS_DONE, up to
 * EPOCHS_END, in which SCHEDULE takes BASE_LR below FLT_MIN, or 0 when
 * none does. Below FLT_MIN the update reads the rate as zero (see
 * optim_update), so training would go on without changing a weight. Only
 * the step schedule is checked, since the others return 0.
 */
int64_t schedule_underflow_epoch(const Schedule *schedule, float base_lr,
                                 int64_t epochs_done, int64_t epochs_end);

/* Returns the schedule kind for NAME ("constant", "step", "cosine"), or -1. */
int schedule_parse(const char *name);

const char *schedule_name(ScheduleKind kind);

/* ------------------------------------------------------------ weight decay */

/*
 * L2 decay adds DECAY * w to the gradient, so that Adam rescales it like
 * any other gradient term. Decoupled decay (as in AdamW) shrinks the
 * weights directly by lr * DECAY * w, outside the optimiser's moments.
 * With plain SGD without momentum the two coincide.
 */
typedef enum { DECAY_DECOUPLED, DECAY_L2 } DecayKind;

/* Adds DECAY * W[i] to GRAD[i] for the N weights at W. */
void optim_decay_l2(float *grad, const float *w, size_t n, float decay);

/* Multiplies the N weights at W by 1 - LR * DECAY. */
void optim_decay_decoupled(float *w, size_t n, float lr, float decay);

/* Returns the decay kind for NAME ("decoupled" or "l2"), or -1. */
int decay_parse(const char *name);

const char *decay_name(DecayKind kind);

#endif
