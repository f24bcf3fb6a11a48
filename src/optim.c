/*
 * optim: SGD with momentum and Adam, applied to a flat parameter array.
 *
 * State is one or two arrays of n floats (velocity, or first and second
 * moments), zeroed at init. Adam's bias correction uses the step count t,
 * so its first steps are not damped by the zero-initialised moments. The
 * corrections are computed in double, since beta2^t approaches 1 slowly
 * and 1 - beta2^t loses digits in float for small t.
 *
 * The schedules and weight decay are separate functions that the trainer
 * applies around optim_step, because they need to know which parameters
 * are weights and how far the run has come, which the optimiser does not.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "util.h"

#ifdef __SSE_MATH__
#include <xmmintrin.h>

/* MXCSR bits: subnormal inputs read as zero (DAZ), subnormal results are
 * written as zero (FTZ). */
#define MXCSR_DAZ 0x0040u
#define MXCSR_FTZ 0x8000u

/* Makes this thread's SSE arithmetic treat subnormal numbers as zero and
 * returns the previous mode for restore_float_mode. */
static unsigned flush_subnormals(void)
{
    unsigned mode = _mm_getcsr();

    _mm_setcsr(mode | MXCSR_DAZ | MXCSR_FTZ);
    return mode;
}

static void restore_float_mode(unsigned mode)
{
    _mm_setcsr(mode);
}
#else
/* TODO: other CPUs keep subnormal moments, which some of them process
 * slowly. */
static unsigned flush_subnormals(void)
{
    return 0;
}

static void restore_float_mode(unsigned mode)
{
    (void)mode;
}
#endif

/* M_PI is POSIX, not C11. */
#define PI 3.14159265358979323846

void optim_init(Optim *opt, OptimKind kind, size_t n, float lr)
{
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->lr = lr;
    opt->momentum = 0.9f;
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->eps = 1e-8f;
    opt->n = n;
    /* Aligned, so that large states get huge pages like the weights. */
    opt->m = xmalloc_aligned(n * sizeof *opt->m);
    memset(opt->m, 0, n * sizeof *opt->m);
    opt->v = NULL;
    if (kind == OPTIM_ADAM) {
        opt->v = xmalloc_aligned(n * sizeof *opt->v);
        memset(opt->v, 0, n * sizeof *opt->v);
    }
    opt->t = 0;
}

/* v = mu*v + g; w -= lr*v, for entries FIRST..END-1, where g is
 * GRAD times SCALE. */
static void sgd_update(const Optim *opt, float *params, const float *grad,
                       float scale, size_t first, size_t end)
{
    float mu = opt->momentum, lr = opt->lr;

    for (size_t i = first; i < end; i++) {
        float g = grad[i] * scale;

        opt->m[i] = mu * opt->m[i] + g;
        params[i] -= lr * opt->m[i];
    }
}

/* m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),
 * for entries FIRST..END-1, where g is GRAD times SCALE. */
static void adam_update(const Optim *opt, float *params, const float *grad,
                        float scale, size_t first, size_t end)
{
    float b1 = opt->beta1, b2 = opt->beta2;
    double t = (double)opt->t;
    float m_scale = (float)(1.0 / (1.0 - pow(b1, t)));
    float v_scale = (float)(1.0 / (1.0 - pow(b2, t)));

    for (size_t i = first; i < end; i++) {
        float g = grad[i] * scale;

        opt->m[i] = b1 * opt->m[i] + (1.0f - b1) * g;
        opt->v[i] = b2 * opt->v[i] + (1.0f - b2) * g * g;
        float m_hat = opt->m[i] * m_scale;
        float v_hat = opt->v[i] * v_scale;
        params[i] -= opt->lr * m_hat / (sqrtf(v_hat) + opt->eps);
    }
}

void optim_begin_step(Optim *opt)
{
    opt->t++;
}

void optim_update(const Optim *opt, float *params, const float *grad,
                  float scale, size_t first, size_t end)
{
    unsigned mode = flush_subnormals();

    if (opt->kind == OPTIM_ADAM)
        adam_update(opt, params, grad, scale, first, end);
    else
        sgd_update(opt, params, grad, scale, first, end);
    restore_float_mode(mode);
}

void optim_step(Optim *opt, float *params, const float *grad)
{
    optim_begin_step(opt);
    optim_update(opt, params, grad, 1.0f, 0, opt->n);
}

void optim_free(Optim *opt)
{
    free(opt->m);
    free(opt->v);
    opt->m = NULL;
    opt->v = NULL;
}

int optim_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "sgd") == 0)
        return OPTIM_SGD;
    if (strcmp(name, "adam") == 0)
        return OPTIM_ADAM;
    return -1;
}

const char *optim_name(OptimKind kind)
{
    return kind == OPTIM_ADAM ? "adam" : "sgd";
}

double schedule_factor(const Schedule *schedule, double epoch, double total)
{
    switch (schedule->kind) {
    case SCHEDULE_STEP:
        return pow(schedule->gamma, floor(epoch / schedule->step_epochs));
    case SCHEDULE_COSINE:
        if (total <= 0.0 || epoch >= total)
            return 0.0;
        return 0.5 * (1.0 + cos(PI * epoch / total));
    case SCHEDULE_CONSTANT:
        break;
    }
    return 1.0;
}

int64_t schedule_underflow_epoch(const Schedule *schedule, float base_lr,
                                 int64_t epochs_done, int64_t epochs_end)
{
    int64_t step = schedule->step_epochs;

    if (schedule->kind != SCHEDULE_STEP || step < 1)
        return 0;
    /* The rate only falls, so the search starts at the drop in force in
     * the first epoch to train. Drop K applies from epoch K * STEP + 1. */
    for (int64_t k = epochs_done / step; k * step < epochs_end; k++) {
        double factor = schedule_factor(schedule, (double)(k * step),
                                         (double)epochs_end);

        /* The trainer rounds the product to float in the same way. */
        if ((float)(base_lr * factor) < FLT_MIN)
            return k * step + 1 > epochs_done ? k * step + 1
                                              : epochs_done + 1;
    }
    return 0;
}

int schedule_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "constant") == 0)
        return SCHEDULE_CONSTANT;
    if (strcmp(name, "step") == 0)
        return SCHEDULE_STEP;
    if (strcmp(name, "cosine") == 0)
        return SCHEDULE_COSINE;
    return -1;
}

const char *schedule_name(ScheduleKind kind)
{
    switch (kind) {
    case SCHEDULE_STEP:
        return "step";
    case SCHEDULE_COSINE:
        return "cosine";
    case SCHEDULE_CONSTANT:
        break;
    }
    return "constant";
}

void optim_decay_l2(float *grad, const float *w, size_t n, float decay)
{
    for (size_t i = 0; i < n; i++)
        grad[i] += decay * w[i];
}

void optim_decay_decoupled(float *w, size_t n, float lr, float decay)
{
    float keep = 1.0f - lr * decay;

    for (size_t i = 0; i < n; i++)
        w[i] *= keep;
}

int decay_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "decoupled") == 0)
        return DECAY_DECOUPLED;
    if (strcmp(name, "l2") == 0)
        return DECAY_L2;
    return -1;
}

const char *decay_name(DecayKind kind)
{
    return kind == DECAY_L2 ? "l2" : "decoupled";
}
