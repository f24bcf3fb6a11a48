/*
 * Tests for metrics: accuracy and per-class scores on a confusion matrix
 * whose expected values are worked out by hand below, the zero-division
 * cases, and argmax and top-k ordering with ties and NaN.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "metrics.h"
#include "tests.h"

#define TOL 1e-12

/*
 * Rows are true classes and columns predictions. Unlisted cells are 0.
 *
 *   row 0: [0][0] = 8, [0][1] = 2          support 10
 *   row 1: [1][0] = 1, [1][1] = 5, [1][2] = 4   support 10
 *   row 2: [2][1] = 3                      support 3
 *   row 4: [4][4] = 6                      support 6
 *   row 6: [6][5] = 2                      support 2
 *   row 7: [7][7] = 3, [7][8] = 1          support 4
 *
 * Column sums (predictions): 0 -> 9, 1 -> 10, 2 -> 4, 4 -> 6, 5 -> 2,
 * 7 -> 3, 8 -> 1, and 0 for classes 3, 6 and 9.
 * Total 35, trace 8 + 5 + 6 + 3 = 22, so accuracy = 22 / 35.
 */
static void fill_matrix(long m[DATASET_CLASSES][DATASET_CLASSES])
{
    memset(m, 0, sizeof(long) * DATASET_CLASSES * DATASET_CLASSES);
    m[0][0] = 8;
    m[0][1] = 2;
    m[1][0] = 1;
    m[1][1] = 5;
    m[1][2] = 4;
    m[2][1] = 3;
    m[4][4] = 6;
    m[6][5] = 2;
    m[7][7] = 3;
    m[7][8] = 1;
}

START_TEST(test_metrics_accuracy_by_hand)
{
    long m[DATASET_CLASSES][DATASET_CLASSES];

    fill_matrix(m);
    ck_assert_double_eq_tol(metrics_accuracy(m), 22.0 / 35.0, TOL);
}
END_TEST

START_TEST(test_metrics_per_class_by_hand)
{
    long m[DATASET_CLASSES][DATASET_CLASSES];
    ClassMetrics c[DATASET_CLASSES];

    fill_matrix(m);
    metrics_per_class(m, NULL, c);

    /* Class 0: tp 8 of 9 predicted and 10 true. P = 8/9, R = 8/10,
     * F1 = 2PR / (P + R) = 2 * 8 / (9 + 10) = 16/19. */
    ck_assert_double_eq_tol(c[0].precision, 8.0 / 9.0, TOL);
    ck_assert_double_eq_tol(c[0].recall, 0.8, TOL);
    ck_assert_double_eq_tol(c[0].f1, 16.0 / 19.0, TOL);
    ck_assert_int_eq(c[0].support, 10);

    /* Class 1: tp 5 of 10 predicted and 10 true. P = R = F1 = 0.5. */
    ck_assert_double_eq_tol(c[1].precision, 0.5, TOL);
    ck_assert_double_eq_tol(c[1].recall, 0.5, TOL);
    ck_assert_double_eq_tol(c[1].f1, 0.5, TOL);
    ck_assert_int_eq(c[1].support, 10);

    /* Class 2: tp 0 of 4 predicted and 3 true. P = R = 0, so F1 = 0. */
    ck_assert_double_eq_tol(c[2].precision, 0.0, TOL);
    ck_assert_double_eq_tol(c[2].recall, 0.0, TOL);
    ck_assert_double_eq_tol(c[2].f1, 0.0, TOL);
    ck_assert_int_eq(c[2].support, 3);

    /* Class 4: every prediction and every sample correct. */
    ck_assert_double_eq_tol(c[4].precision, 1.0, TOL);
    ck_assert_double_eq_tol(c[4].recall, 1.0, TOL);
    ck_assert_double_eq_tol(c[4].f1, 1.0, TOL);
    ck_assert_int_eq(c[4].support, 6);

    /* Class 7: tp 3 of 3 predicted and 4 true. P = 1, R = 3/4,
     * F1 = 2 * 0.75 / 1.75 = 6/7. */
    ck_assert_double_eq_tol(c[7].precision, 1.0, TOL);
    ck_assert_double_eq_tol(c[7].recall, 0.75, TOL);
    ck_assert_double_eq_tol(c[7].f1, 6.0 / 7.0, TOL);
    ck_assert_int_eq(c[7].support, 4);
}
END_TEST

START_TEST(test_metrics_per_class_zero_division)
{
    long m[DATASET_CLASSES][DATASET_CLASSES];
    ClassMetrics c[DATASET_CLASSES];

    fill_matrix(m);
    metrics_per_class(m, NULL, c);

    /* Class 3: no samples and no predictions. */
    ck_assert_double_eq_tol(c[3].precision, 0.0, TOL);
    ck_assert_double_eq_tol(c[3].recall, 0.0, TOL);
    ck_assert_double_eq_tol(c[3].f1, 0.0, TOL);
    ck_assert_int_eq(c[3].support, 0);

    /* Class 5: predicted twice (both wrong) but no samples. */
    ck_assert_double_eq_tol(c[5].precision, 0.0, TOL);
    ck_assert_double_eq_tol(c[5].recall, 0.0, TOL);
    ck_assert_int_eq(c[5].support, 0);

    /* Class 6: 2 samples, never predicted. */
    ck_assert_double_eq_tol(c[6].precision, 0.0, TOL);
    ck_assert_double_eq_tol(c[6].recall, 0.0, TOL);
    ck_assert_double_eq_tol(c[6].f1, 0.0, TOL);
    ck_assert_int_eq(c[6].support, 2);

    for (int k = 0; k < DATASET_CLASSES; k++) {
        ck_assert(!isnan(c[k].precision));
        ck_assert(!isnan(c[k].recall));
        ck_assert(!isnan(c[k].f1));
    }
}
END_TEST

START_TEST(test_metrics_empty_matrix)
{
    long m[DATASET_CLASSES][DATASET_CLASSES] = {{0}};
    ClassMetrics c[DATASET_CLASSES];

    ck_assert_double_eq_tol(metrics_accuracy(m), 0.0, TOL);
    metrics_per_class(m, NULL, c);
    for (int k = 0; k < DATASET_CLASSES; k++) {
        ck_assert_double_eq_tol(c[k].precision, 0.0, TOL);
        ck_assert_double_eq_tol(c[k].recall, 0.0, TOL);
        ck_assert_double_eq_tol(c[k].f1, 0.0, TOL);
        ck_assert_int_eq(c[k].support, 0);
    }
}
END_TEST

START_TEST(test_metrics_confusion_add_counts)
{
    long m[DATASET_CLASSES][DATASET_CLASSES] = {{0}};
    const uint8_t labels[] = {0, 0, 3, 9, 9, 9};
    const uint8_t predicted[] = {0, 1, 3, 9, 2, 9};

    metrics_confusion_add(m, NULL, labels, predicted, 6);
    metrics_confusion_add(m, NULL, labels, predicted, 1);
    ck_assert_int_eq(m[0][0], 2);
    ck_assert_int_eq(m[0][1], 1);
    ck_assert_int_eq(m[3][3], 1);
    ck_assert_int_eq(m[9][9], 2);
    ck_assert_int_eq(m[9][2], 1);
    /* 6 + 1 pairs, all counted once. */
    long total = 0;
    for (int t = 0; t < DATASET_CLASSES; t++)
        for (int p = 0; p < DATASET_CLASSES; p++)
            total += m[t][p];
    ck_assert_int_eq(total, 7);
    ck_assert_double_eq_tol(metrics_accuracy(m), 5.0 / 7.0, TOL);
}
END_TEST

/* An image without a prediction enters no cell, and the assert that
 * guards the matrix does not trip on it. */
START_TEST(test_metrics_confusion_skips_no_prediction)
{
    long m[DATASET_CLASSES][DATASET_CLASSES] = {{0}};
    const uint8_t labels[] = {0, 4, 4};
    const uint8_t predicted[] = {METRICS_NO_PREDICTION, 4,
                                 METRICS_NO_PREDICTION};
    long unpredicted[DATASET_CLASSES] = {0};
    long total = 0;

    metrics_confusion_add(m, unpredicted, labels, predicted, 3);
    for (int t = 0; t < DATASET_CLASSES; t++)
        for (int p = 0; p < DATASET_CLASSES; p++)
            total += m[t][p];
    ck_assert_int_eq(total, 1);
    ck_assert_int_eq(m[4][4], 1);
    ck_assert_int_eq(m[0][0], 0);
    ck_assert_int_eq(unpredicted[0], 1);
    ck_assert_int_eq(unpredicted[4], 1);
    ck_assert_int_eq(unpredicted[1], 0);
}
END_TEST

/* The support of a class is every sample of it, and a sample without a
 * prediction is a miss: class 4 has 3 samples, 2 of them predicted
 * right, so its recall is 2/3 and its precision stays 1. */
START_TEST(test_metrics_per_class_no_prediction_misses)
{
    long m[DATASET_CLASSES][DATASET_CLASSES] = {{0}};
    long unpredicted[DATASET_CLASSES] = {0};
    ClassMetrics c[DATASET_CLASSES];
    const uint8_t labels[] = {4, 4, 4, 0};
    const uint8_t predicted[] = {4, METRICS_NO_PREDICTION, 4,
                                 METRICS_NO_PREDICTION};

    metrics_confusion_add(m, unpredicted, labels, predicted, 4);
    metrics_per_class(m, unpredicted, c);
    ck_assert_int_eq(c[4].support, 3);
    ck_assert_double_eq_tol(c[4].recall, 2.0 / 3.0, TOL);
    ck_assert_double_eq_tol(c[4].precision, 1.0, TOL);
    ck_assert_double_eq_tol(c[4].f1, 0.8, TOL);
    /* Class 0's only sample has no prediction. */
    ck_assert_int_eq(c[0].support, 1);
    ck_assert_double_eq_tol(c[0].recall, 0.0, TOL);
}
END_TEST

START_TEST(test_metrics_argmax_first_on_ties)
{
    const float v[] = {0.1f, 0.7f, 0.2f, 0.7f, -1.0f};

    ck_assert_int_eq(metrics_argmax(v, 5), 1);
    ck_assert_int_eq(metrics_argmax(v, 1), 0);
    ck_assert_int_eq(metrics_argmax(v, 0), -1);
}
END_TEST

START_TEST(test_metrics_argmax_skips_nan)
{
    const float v[] = {NAN, -3.0f, NAN, -2.0f};

    ck_assert_int_eq(metrics_argmax(v, 4), 3);
}
END_TEST

START_TEST(test_metrics_top_k_ties_in_index_order)
{
    const float v[] = {0.1f, 0.5f, 0.5f, 0.9f, 0.2f, 0.5f};
    int top[4];

    metrics_top_k(v, 6, 4, top);
    ck_assert_int_eq(top[0], 3);
    ck_assert_int_eq(top[1], 1);
    ck_assert_int_eq(top[2], 2);
    ck_assert_int_eq(top[3], 5);
}
END_TEST

START_TEST(test_metrics_top_k_full_sort)
{
    const float v[] = {3.0f, -1.0f, 2.0f, 2.0f, 10.0f};
    const int expected[] = {4, 0, 2, 3, 1};
    int top[5];

    metrics_top_k(v, 5, 5, top);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(top[i], expected[i]);
}
END_TEST

START_TEST(test_metrics_top_1_matches_argmax)
{
    const float v[] = {0.0f, 4.0f, 4.0f, 1.0f};
    int top[1];

    metrics_top_k(v, 4, 1, top);
    ck_assert_int_eq(top[0], 1);
    ck_assert_int_eq(top[0], metrics_argmax(v, 4));
}
END_TEST

START_TEST(test_metrics_top_k_larger_than_n)
{
    const float v[] = {1.0f, 2.0f};
    int top[4] = {7, 7, 7, 7};

    metrics_top_k(v, 2, 4, top);
    ck_assert_int_eq(top[0], 1);
    ck_assert_int_eq(top[1], 0);
    ck_assert_int_eq(top[2], -1);
    ck_assert_int_eq(top[3], -1);
}
END_TEST

START_TEST(test_metrics_top_k_nan_last)
{
    const float v[] = {NAN, 1.0f, NAN, 0.5f};
    int top[3];

    metrics_top_k(v, 4, 3, top);
    ck_assert_int_eq(top[0], 1);
    ck_assert_int_eq(top[1], 3);
    ck_assert_int_eq(top[2], 0);
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *confusion = tcase_create("confusion");
    TCase *ranking = tcase_create("ranking");

    tcase_add_test(confusion, test_metrics_accuracy_by_hand);
    tcase_add_test(confusion, test_metrics_per_class_by_hand);
    tcase_add_test(confusion, test_metrics_per_class_zero_division);
    tcase_add_test(confusion, test_metrics_per_class_no_prediction_misses);
    tcase_add_test(confusion, test_metrics_empty_matrix);
    tcase_add_test(confusion, test_metrics_confusion_add_counts);
    tcase_add_test(confusion, test_metrics_confusion_skips_no_prediction);
    suite_add_tcase(s, confusion);

    tcase_add_test(ranking, test_metrics_argmax_first_on_ties);
    tcase_add_test(ranking, test_metrics_argmax_skips_nan);
    tcase_add_test(ranking, test_metrics_top_k_ties_in_index_order);
    tcase_add_test(ranking, test_metrics_top_k_full_sort);
    tcase_add_test(ranking, test_metrics_top_1_matches_argmax);
    tcase_add_test(ranking, test_metrics_top_k_larger_than_n);
    tcase_add_test(ranking, test_metrics_top_k_nan_last);
    suite_add_tcase(s, ranking);
    return s;
}
