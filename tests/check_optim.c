/*
 * Tests for optim: SGD with momentum and Adam against values worked out by
 * hand, and the name parser.
 */
#include "config.h"

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

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_optim_init_defaults);
    tcase_add_test(tc, test_optim_sgd_momentum_steps);
    tcase_add_test(tc, test_optim_adam_steps);
    tcase_add_test(tc, test_optim_parse_names);
    suite_add_tcase(s, tc);
    return s;
}
