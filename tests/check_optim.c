/*
 * Tests for optim: SGD with momentum and Adam against values worked out by
 * hand, the name parsers, the learning-rate schedules at chosen epochs and
 * the effect of each kind of weight decay on one step.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>

#include "optim.h"
#include "tests.h"

START_TEST(test_optim_init_defaults)
{
    Optim sgd, adam;

    optim_init(&sgd, OPTIM_SGD, 3, 0.05f);
    ck_assert_int_eq(sgd.kind, OPTIM_SGD);
    ck_assert_float_eq(sgd.lr, 0.05f);
    ck_assert_float_eq(sgd.momentum, 0.9f);
    ck_assert_uint_eq(sgd.n, 3);
    ck_assert_ptr_nonnull(sgd.m);
    ck_assert_ptr_null(sgd.v);
    ck_assert_int_eq(sgd.t, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(sgd.m[i], 0.0f);

    optim_init(&adam, OPTIM_ADAM, 3, 1e-3f);
    ck_assert_float_eq(adam.beta1, 0.9f);
    ck_assert_float_eq(adam.beta2, 0.999f);
    ck_assert_float_eq(adam.eps, 1e-8f);
    ck_assert_ptr_nonnull(adam.v);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(adam.v[i], 0.0f);
    optim_free(&sgd);
    optim_free(&adam);
    ck_assert_ptr_null(adam.m);
    ck_assert_ptr_null(adam.v);
}
END_TEST

/*
 * lr 0.1, momentum 0.9, w = (1, -2), the same gradient g = (0.5, 1) twice:
 *   step 1: v = g = (0.5, 1);             w = (1 - 0.05, -2 - 0.1)
 *                                           = (0.95, -2.1)
 *   step 2: v = 0.9 v + g = (0.95, 1.9);  w = (0.95 - 0.095, -2.1 - 0.19)
 *                                           = (0.855, -2.29)
 */
START_TEST(test_optim_sgd_momentum_steps)
{
    Optim opt;
    float w[2] = {1.0f, -2.0f};
    const float g[2] = {0.5f, 1.0f};

    optim_init(&opt, OPTIM_SGD, 2, 0.1f);
    optim_step(&opt, w, g);
    ck_assert_float_eq_tol(w[0], 0.95f, 1e-6f);
    ck_assert_float_eq_tol(w[1], -2.1f, 1e-6f);
    ck_assert_int_eq(opt.t, 1);

    optim_step(&opt, w, g);
    ck_assert_float_eq_tol(opt.m[0], 0.95f, 1e-6f);
    ck_assert_float_eq_tol(opt.m[1], 1.9f, 1e-6f);
    ck_assert_float_eq_tol(w[0], 0.855f, 1e-6f);
    ck_assert_float_eq_tol(w[1], -2.29f, 1e-6f);
    ck_assert_int_eq(opt.t, 2);
    optim_free(&opt);
}
END_TEST

/*
 * lr 0.01, beta1 0.9, beta2 0.999, eps 1e-8, w = 1; gradients 0.5 then -1.
 *   step 1: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025;
 *           m_hat = 0.05 / 0.1 = 0.5, v_hat = 0.00025 / 0.001 = 0.25;
 *           w = 1 - 0.01 * 0.5 / (0.5 + 1e-8) = 0.99
 *   step 2: m = 0.9 * 0.05 - 0.1 = -0.055,
 *           v = 0.999 * 0.00025 + 0.001 * 1 = 0.00124975;
 *           m_hat = -0.055 / (1 - 0.81) = -0.289474,
 *           v_hat = 0.00124975 / (1 - 0.998001) = 0.625188;
 *           w = 0.99 + 0.01 * 0.289474 / 0.790688 = 0.993661
 * The first step moves w by lr whatever the gradient's scale, which is what
 * the bias correction is for. The moment tolerances allow for 1 - 0.999f,
 * which is 0.00099998713 in float.
 */
START_TEST(test_optim_adam_steps)
{
    Optim opt;
    float w[1] = {1.0f};
    const float g1[1] = {0.5f}, g2[1] = {-1.0f};

    optim_init(&opt, OPTIM_ADAM, 1, 0.01f);
    optim_step(&opt, w, g1);
    ck_assert_float_eq_tol(opt.m[0], 0.05f, 1e-7f);
    ck_assert_float_eq_tol(opt.v[0], 0.00025f, 5e-8f);
    ck_assert_float_eq_tol(w[0], 0.99f, 1e-6f);

    optim_step(&opt, w, g2);
    ck_assert_float_eq_tol(opt.m[0], -0.055f, 1e-7f);
    ck_assert_float_eq_tol(opt.v[0], 0.00124975f, 5e-8f);
    ck_assert_float_eq_tol(w[0], 0.993661f, 2e-6f);
    ck_assert_int_eq(opt.t, 2);
    optim_free(&opt);
}
END_TEST

START_TEST(test_optim_parse_names)
{
    ck_assert_int_eq(optim_parse("sgd"), OPTIM_SGD);
    ck_assert_int_eq(optim_parse("adam"), OPTIM_ADAM);
    ck_assert_int_eq(optim_parse("rmsprop"), -1);
    ck_assert_int_eq(optim_parse(""), -1);
    ck_assert_int_eq(optim_parse("sgd "), -1);
    ck_assert_int_eq(optim_parse(NULL), -1);
    ck_assert_str_eq(optim_name(OPTIM_SGD), "sgd");
    ck_assert_str_eq(optim_name(OPTIM_ADAM), "adam");
    ck_assert_int_eq(optim_parse(optim_name(OPTIM_ADAM)), OPTIM_ADAM);
}
END_TEST

static void check_factor(const Schedule *sch, double epoch, double total,
                         double want)
{
    double got = schedule_factor(sch, epoch, total);

    ck_assert_msg(fabs(got - want) < 1e-9, "%s schedule at epoch %g of %g: "
                  "factor %.12g, expected %.12g", schedule_name(sch->kind),
                  epoch, total, got, want);
}

START_TEST(test_optim_schedule_values)
{
    Schedule constant = {SCHEDULE_CONSTANT, 0, 0.0f};
    Schedule step = {SCHEDULE_STEP, 3, 0.5f};
    Schedule cosine = {SCHEDULE_COSINE, 0, 0.0f};

    check_factor(&constant, 0.0, 10.0, 1.0);
    check_factor(&constant, 25.0, 10.0, 1.0);

    check_factor(&step, 0.0, 10.0, 1.0);
    check_factor(&step, 2.99, 10.0, 1.0);
    check_factor(&step, 3.0, 10.0, 0.5);
    check_factor(&step, 6.5, 10.0, 0.25);
    check_factor(&step, 9.0, 10.0, 0.125);

    check_factor(&cosine, 0.0, 10.0, 1.0);
    check_factor(&cosine, 2.5, 10.0, (1.0 + sqrt(0.5)) / 2.0);
    check_factor(&cosine, 5.0, 10.0, 0.5);
    check_factor(&cosine, 7.5, 10.0, (1.0 - sqrt(0.5)) / 2.0);
    check_factor(&cosine, 10.0, 10.0, 0.0);
    check_factor(&cosine, 12.0, 10.0, 0.0);
}
END_TEST

/* The first epoch whose step-schedule rate is below FLT_MIN, which the
 * update would read as zero. */
START_TEST(test_optim_schedule_underflow_epoch)
{
    Schedule fast = {SCHEDULE_STEP, 1, 1e-10f};
    Schedule tenth = {SCHEDULE_STEP, 10, 0.1f};
    Schedule half = {SCHEDULE_STEP, 1, 0.5f};
    Schedule flat = {SCHEDULE_STEP, 1, 1.0f};
    Schedule cosine = {SCHEDULE_COSINE, 0, 0.0f};

    /* 1e-3, 1e-13, 1e-23, 1e-33, then 1e-43 in epoch 5. */
    ck_assert_int_eq(schedule_underflow_epoch(&fast, 1e-3f, 0, 4), 0);
    ck_assert_int_eq(schedule_underflow_epoch(&fast, 1e-3f, 0, 5), 5);
    ck_assert_int_eq(schedule_underflow_epoch(&fast, 1e-3f, 0, 100000), 5);
    /* A resumed run that starts past the drop reports its first epoch. */
    ck_assert_int_eq(schedule_underflow_epoch(&fast, 1e-3f, 6, 8), 7);
    ck_assert_int_eq(schedule_underflow_epoch(&fast, 1e-3f, 2, 4), 0);

    /* 1e-3 * 0.1^35 is about 1e-38, just below FLT_MIN (1.18e-38), and
     * drop 35 comes in epoch 351. */
    ck_assert_int_eq(schedule_underflow_epoch(&tenth, 1e-3f, 0, 350), 0);
    ck_assert_int_eq(schedule_underflow_epoch(&tenth, 1e-3f, 0, 351), 351);

    /* 2^-126 is FLT_MIN itself, and 2^-127 in epoch 128 is below it. */
    ck_assert_int_eq(schedule_underflow_epoch(&half, 1.0f, 0, 127), 0);
    ck_assert_int_eq(schedule_underflow_epoch(&half, 1.0f, 0, 128), 128);

    ck_assert_int_eq(schedule_underflow_epoch(&flat, 1.2e-38f, 0, 1000), 0);
    ck_assert_int_eq(schedule_underflow_epoch(&cosine, 1e-3f, 0, 1000), 0);
}
END_TEST

START_TEST(test_optim_schedule_and_decay_names)
{
    ck_assert_int_eq(schedule_parse("constant"), SCHEDULE_CONSTANT);
    ck_assert_int_eq(schedule_parse("step"), SCHEDULE_STEP);
    ck_assert_int_eq(schedule_parse("cosine"), SCHEDULE_COSINE);
    ck_assert_int_eq(schedule_parse("linear"), -1);
    ck_assert_int_eq(schedule_parse(NULL), -1);
    ck_assert_str_eq(schedule_name(SCHEDULE_COSINE), "cosine");
    ck_assert_int_eq(decay_parse("decoupled"), DECAY_DECOUPLED);
    ck_assert_int_eq(decay_parse("l2"), DECAY_L2);
    ck_assert_int_eq(decay_parse("L2 "), -1);
    ck_assert_int_eq(decay_parse(NULL), -1);
    ck_assert_str_eq(decay_name(DECAY_L2), "l2");
}
END_TEST

/*
 * One step from w = 2 with gradient 0.5, lr 0.1 and decay 0.1, applied as
 * the trainer does: L2 adds 0.1 * 2 to the gradient before the step,
 * decoupled decay scales w by 1 - 0.1 * 0.1 before it.
 *   SGD, first step (v = g):  L2         2 - 0.1 * 0.7        = 1.93
 *                             decoupled  1.98 - 0.1 * 0.5     = 1.93
 *   Adam, first step (update lr * g / |g|):
 *                             L2         2 - 0.1              = 1.9
 *                             decoupled  1.98 - 0.1           = 1.88
 *   Adam with gradient 0:     L2         2 - 0.1 (the decay term alone
 *                                        is normalised to lr)  = 1.9
 *                             decoupled  1.98
 * So under Adam, L2 decay is rescaled with the gradient and decoupled
 * decay is not.
 */
static float one_step(OptimKind kind, DecayKind decay, float g)
{
    Optim opt;
    float w = 2.0f, grad = g;

    optim_init(&opt, kind, 1, 0.1f);
    if (decay == DECAY_L2)
        optim_decay_l2(&grad, &w, 1, 0.1f);
    else
        optim_decay_decoupled(&w, 1, opt.lr, 0.1f);
    optim_step(&opt, &w, &grad);
    optim_free(&opt);
    return w;
}

START_TEST(test_optim_weight_decay_one_step)
{
    ck_assert_float_eq_tol(one_step(OPTIM_SGD, DECAY_L2, 0.5f), 1.93f, 1e-6f);
    ck_assert_float_eq_tol(one_step(OPTIM_SGD, DECAY_DECOUPLED, 0.5f), 1.93f,
                           1e-6f);
    ck_assert_float_eq_tol(one_step(OPTIM_ADAM, DECAY_L2, 0.5f), 1.9f, 1e-5f);
    ck_assert_float_eq_tol(one_step(OPTIM_ADAM, DECAY_DECOUPLED, 0.5f), 1.88f,
                           1e-5f);
    ck_assert_float_eq_tol(one_step(OPTIM_ADAM, DECAY_L2, 0.0f), 1.9f, 1e-5f);
    ck_assert_float_eq_tol(one_step(OPTIM_ADAM, DECAY_DECOUPLED, 0.0f), 1.98f,
                           1e-6f);
}
END_TEST

/* Decay touches only the N weights it is given. */
START_TEST(test_optim_weight_decay_range)
{
    float w[4] = {1.0f, -2.0f, 3.0f, 4.0f};
    float grad[4] = {0.0f, 0.0f, 0.0f, 0.0f};

    optim_decay_l2(grad + 1, w + 1, 2, 0.5f);
    ck_assert_float_eq(grad[0], 0.0f);
    ck_assert_float_eq(grad[1], -1.0f);
    ck_assert_float_eq(grad[2], 1.5f);
    ck_assert_float_eq(grad[3], 0.0f);
    optim_decay_decoupled(w, 2, 0.5f, 0.5f);
    ck_assert_float_eq(w[0], 0.75f);
    ck_assert_float_eq(w[1], -1.5f);
    ck_assert_float_eq(w[2], 3.0f);
}
END_TEST

/* Three steps of optim_step and three of optim_begin_step plus
 * optim_update over ranges cut at 7 and 19 give bitwise equal weights and
 * state, for SGD and Adam. */
START_TEST(test_optim_update_ranges_match_step)
{
    enum { N = 30 };

    for (int kind = OPTIM_SGD; kind <= OPTIM_ADAM; kind++) {
        Optim whole, parts;
        float w_whole[N], w_parts[N], grad[N];
        size_t cuts[4] = {0, 7, 19, N};

        optim_init(&whole, (OptimKind)kind, N, 0.05f);
        optim_init(&parts, (OptimKind)kind, N, 0.05f);
        for (int i = 0; i < N; i++)
            w_whole[i] = w_parts[i] = 0.1f * (float)(i - 11);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++)
                grad[i] = 0.37f * (float)((i * 7 + step * 5) % 13) - 2.0f;
            optim_step(&whole, w_whole, grad);
            optim_begin_step(&parts);
            /* Out of order, as threads may finish them. */
            for (int r = 2; r >= 0; r--)
                optim_update(&parts, w_parts, grad, 1.0f, cuts[r],
                             cuts[r + 1]);
        }
        ck_assert_int_eq(parts.t, whole.t);
        for (int i = 0; i < N; i++) {
            ck_assert_float_eq(w_parts[i], w_whole[i]);
            ck_assert_float_eq(parts.m[i], whole.m[i]);
            if (kind == OPTIM_ADAM)
                ck_assert_float_eq(parts.v[i], whole.v[i]);
        }
        ck_assert_float_ne(w_whole[0], 0.1f * -11.0f);
        optim_free(&whole);
        optim_free(&parts);
    }
}
END_TEST

/* optim_update with SCALE applies the gradient GRAD * SCALE: it matches,
 * bit for bit, an update from a gradient scaled beforehand, for SGD and
 * Adam, and differs from an update that ignores SCALE. */
START_TEST(test_optim_update_scales_gradient)
{
    enum { N = 23 };
    const float scale = 1.0f / 48.0f;

    for (int kind = OPTIM_SGD; kind <= OPTIM_ADAM; kind++) {
        Optim folded, scaled, unscaled;
        float w_folded[N], w_scaled[N], w_unscaled[N], sums[N], grad[N];

        optim_init(&folded, (OptimKind)kind, N, 0.05f);
        optim_init(&scaled, (OptimKind)kind, N, 0.05f);
        optim_init(&unscaled, (OptimKind)kind, N, 0.05f);
        for (int i = 0; i < N; i++)
            w_folded[i] = w_scaled[i] = w_unscaled[i] = 0.1f * (float)(i - 9);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++) {
                sums[i] = 3.1f * (float)((i * 5 + step * 3) % 11) - 17.0f;
                grad[i] = sums[i] * scale;
            }
            optim_begin_step(&folded);
            optim_begin_step(&scaled);
            optim_begin_step(&unscaled);
            optim_update(&folded, w_folded, sums, scale, 0, N);
            optim_update(&scaled, w_scaled, grad, 1.0f, 0, N);
            optim_update(&unscaled, w_unscaled, sums, 1.0f, 0, N);
        }
        for (int i = 0; i < N; i++) {
            ck_assert_float_eq(w_folded[i], w_scaled[i]);
            ck_assert_float_eq(folded.m[i], scaled.m[i]);
            if (kind == OPTIM_ADAM)
                ck_assert_float_eq(folded.v[i], scaled.v[i]);
        }
        /* Adam normalises the step, so compare the first moments. */
        ck_assert_float_ne(folded.m[0], unscaled.m[0]);
        optim_free(&folded);
        optim_free(&scaled);
        optim_free(&unscaled);
    }
}
END_TEST

/* On x86 the update flushes subnormal values to zero: a subnormal
 * gradient leaves SGD's velocity at 0, and Adam's second moment of a
 * gradient of 2^-70 (whose square, 2^-140 times 0.001, is subnormal) stays
 * 0. The mode of the calling thread is restored afterwards. */
START_TEST(test_optim_flushes_subnormals)
{
#ifdef __SSE_MATH__
    Optim sgd, adam;
    float w[2] = {1.0f, 1.0f};
    float tiny = 0x1p-140f, small = 0x1p-70f;
    volatile float half = 0.5f;

    optim_init(&sgd, OPTIM_SGD, 1, 0.1f);
    optim_step(&sgd, &w[0], &tiny);
    ck_assert_float_eq(sgd.m[0], 0.0f);
    ck_assert_float_eq(w[0], 1.0f);
    optim_init(&adam, OPTIM_ADAM, 1, 0.1f);
    optim_step(&adam, &w[1], &small);
    ck_assert_float_eq(adam.v[0], 0.0f);
    ck_assert(adam.m[0] > 0.0f);
    /* Subnormal arithmetic outside the update is unchanged. */
    ck_assert(tiny * half > 0.0f);
    optim_free(&sgd);
    optim_free(&adam);
#endif
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_optim_init_defaults);
    tcase_add_test(tc, test_optim_sgd_momentum_steps);
    tcase_add_test(tc, test_optim_adam_steps);
    tcase_add_test(tc, test_optim_parse_names);
    tcase_add_test(tc, test_optim_schedule_values);
    tcase_add_test(tc, test_optim_schedule_underflow_epoch);
    tcase_add_test(tc, test_optim_schedule_and_decay_names);
    tcase_add_test(tc, test_optim_weight_decay_one_step);
    tcase_add_test(tc, test_optim_weight_decay_range);
    tcase_add_test(tc, test_optim_update_ranges_match_step);
    tcase_add_test(tc, test_optim_update_scales_gradient);
    tcase_add_test(tc, test_optim_flushes_subnormals);
    suite_add_tcase(s, tc);
    return s;
}
