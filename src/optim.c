/*
 * optim: SGD with momentum and Adam, applied to a flat parameter array.
 *
 * State is one or two arrays of n floats (velocity, or first and second
 * moments), zeroed at init. Adam's bias correction uses the step count t,
 * so its first steps are not damped by the zero-initialised moments. The
 * corrections are computed in double, since beta2^t approaches 1 slowly
 * and 1 - beta2^t loses digits in float for small t.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "util.h"

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
    opt->m = xcalloc(n, sizeof *opt->m);
    opt->v = kind == OPTIM_ADAM ? xcalloc(n, sizeof *opt->v) : NULL;
    opt->t = 0;
}

/* v = mu*v + g; w -= lr*v. */
static void sgd_step(Optim *opt, float *params, const float *grad)
{
    float mu = opt->momentum, lr = opt->lr;

    for (size_t i = 0; i < opt->n; i++) {
        opt->m[i] = mu * opt->m[i] + grad[i];
        params[i] -= lr * opt->m[i];
    }
}

/* m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). */
static void adam_step(Optim *opt, float *params, const float *grad)
{
    float b1 = opt->beta1, b2 = opt->beta2;
    double t = (double)opt->t;
    float m_scale = (float)(1.0 / (1.0 - pow(b1, t)));
    float v_scale = (float)(1.0 / (1.0 - pow(b2, t)));

    for (size_t i = 0; i < opt->n; i++) {
        float g = grad[i];
        opt->m[i] = b1 * opt->m[i] + (1.0f - b1) * g;
        opt->v[i] = b2 * opt->v[i] + (1.0f - b2) * g * g;
        float m_hat = opt->m[i] * m_scale;
        float v_hat = opt->v[i] * v_scale;
        params[i] -= opt->lr * m_hat / (sqrtf(v_hat) + opt->eps);
    }
}

void optim_step(Optim *opt, float *params, const float *grad)
{
    opt->t++;
    if (opt->kind == OPTIM_ADAM)
        adam_step(opt, params, grad);
    else
        sgd_step(opt, params, grad);
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
