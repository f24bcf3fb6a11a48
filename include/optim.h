/*
 * optim: parameter updates from an averaged gradient. SGD with momentum
 * (v = mu*v + g; w -= lr*v) and Adam with bias correction.
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

void optim_free(Optim *opt);

/* Returns the optimiser for NAME ("sgd" or "adam"), or -1. */
int optim_parse(const char *name);

/* Returns "sgd" or "adam". */
const char *optim_name(OptimKind kind);

#endif
