/*
 * Tests of the explorer's computations: the order of the mistakes list
 * and of a confusion cell, the marking of the weakest classes, and
 * occlusion maps. The maps come from tiny dense networks whose weights
 * are set by hand, so the expected falls follow from the softmax alone.
 */
#include "config.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "dataset.h"
#include "explore.h"
#include "metrics.h"
#include "net.h"
#include "tests.h"

/* Sets the probability row of image I to P for class C and spreads the
 * rest evenly. */
static void set_probs(float *probs, int i, int c, float p)
{
    for (int k = 0; k < DATASET_CLASSES; k++)
        probs[i * DATASET_CLASSES + k] = (1.0f - p) / (DATASET_CLASSES - 1);
    probs[i * DATASET_CLASSES + c] = p;
}

/* ---------------------------------------------------------------- ranking */

START_TEST(test_explore_rank_mistakes_by_confidence)
{
    const uint8_t labels[6] = {0, 1, 2, 3, 4, 5};
    const uint8_t predicted[6] = {0, 2, 2, 6, 1, 5};
    const float conf[6] = {0.99f, 0.6f, 0.8f, 0.95f, 0.7f, 0.5f};
    float probs[6 * DATASET_CLASSES];
    int out[6];

    for (int i = 0; i < 6; i++)
        set_probs(probs, i, predicted[i], conf[i]);
    /* Mistakes: 1 (0.6), 3 (0.95), 4 (0.7); correct ones are left out. */
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 6, -1, -1, out),
                     3);
    ck_assert_int_eq(out[0], 3);
    ck_assert_int_eq(out[1], 4);
    ck_assert_int_eq(out[2], 1);
}
END_TEST

START_TEST(test_explore_rank_ties_and_nan)
{
    const uint8_t labels[4] = {0, 0, 0, 0};
    const uint8_t predicted[4] = {1, 1, 1, 1};
    float probs[4 * DATASET_CLASSES];
    int out[4];

    set_probs(probs, 0, 1, NAN);
    set_probs(probs, 1, 1, 0.7f);
    set_probs(probs, 2, 1, 0.9f);
    set_probs(probs, 3, 1, 0.7f);
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 4, -1, -1, out),
                     4);
    ck_assert_int_eq(out[0], 2);
    ck_assert_int_eq(out[1], 1);  /* equal confidence: index order */
    ck_assert_int_eq(out[2], 3);
    ck_assert_int_eq(out[3], 0);  /* NaN last */
}
END_TEST

START_TEST(test_explore_rank_cell_filters)
{
    const uint8_t labels[6] = {6, 6, 6, 0, 6, 2};
    const uint8_t predicted[6] = {0, 6, 0, 6, 2, 6};
    const float conf[6] = {0.5f, 0.9f, 0.8f, 0.7f, 0.6f, 0.99f};
    float probs[6 * DATASET_CLASSES];
    int out[6];

    for (int i = 0; i < 6; i++)
        set_probs(probs, i, predicted[i], conf[i]);

    /* One off-diagonal cell: Shirt predicted as T-shirt/top. */
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 6, 6, 0, out), 2);
    ck_assert_int_eq(out[0], 2);
    ck_assert_int_eq(out[1], 0);
    /* A diagonal cell lists the correct images. */
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 6, 6, 6, out), 1);
    ck_assert_int_eq(out[0], 1);
    /* Every mistake on true class 6. */
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 6, 6, -1, out),
                     3);
    ck_assert_int_eq(out[0], 2);
    ck_assert_int_eq(out[1], 4);
    ck_assert_int_eq(out[2], 0);
    /* Every image wrongly predicted as 6. */
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 6, -1, 6, out),
                     2);
    ck_assert_int_eq(out[0], 5);
    ck_assert_int_eq(out[1], 3);
}
END_TEST

START_TEST(test_explore_rank_empty)
{
    const uint8_t labels[2] = {3, 4};
    const uint8_t predicted[2] = {3, 4};
    float probs[2 * DATASET_CLASSES];
    int out[2] = {-7, -7};

    set_probs(probs, 0, 3, 0.9f);
    set_probs(probs, 1, 4, 0.9f);
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 2, -1, -1, out),
                     0);
    ck_assert_int_eq(out[0], -7);
    ck_assert_int_eq(explore_rank(labels, predicted, probs, 0, -1, -1, out),
                     0);
}
END_TEST

/* ---------------------------------------------------------------- classes */

static void set_f1(ClassMetrics *m, const double *f1, int n)
{
    for (int c = 0; c < n; c++) {
        m[c].precision = m[c].recall = m[c].f1 = f1[c];
        m[c].support = 100;
    }
}

START_TEST(test_explore_weakest_lowest_three)
{
    const double f1[DATASET_CLASSES] = {0.80, 0.97, 0.78, 0.90, 0.79,
                                        0.96, 0.60, 0.94, 0.97, 0.95};
    ClassMetrics m[DATASET_CLASSES];
    int marked[DATASET_CLASSES];

    set_f1(m, f1, DATASET_CLASSES);
    ck_assert_int_eq(explore_weakest(m, DATASET_CLASSES, 3, marked), 3);
    for (int c = 0; c < DATASET_CLASSES; c++) {
        int weak = c == 6 || c == 2 || c == 4;
        ck_assert_msg(marked[c] == weak, "class %d: marked %d, expected %d",
                      c, marked[c], weak);
    }
}
END_TEST

START_TEST(test_explore_weakest_only_below_mean)
{
    const double flat[4] = {0.9, 0.9, 0.9, 0.9};
    const double one_low[4] = {0.9, 0.5, 0.9, 0.9};
    ClassMetrics m[4];
    int marked[4];

    set_f1(m, flat, 4);
    ck_assert_int_eq(explore_weakest(m, 4, 3, marked), 0);
    for (int c = 0; c < 4; c++)
        ck_assert_int_eq(marked[c], 0);

    set_f1(m, one_low, 4);
    ck_assert_int_eq(explore_weakest(m, 4, 3, marked), 1);
    ck_assert_int_eq(marked[1], 1);
}
END_TEST

START_TEST(test_explore_weakest_skips_empty_classes)
{
    const double f1[3] = {0.0, 0.8, 0.4};
    ClassMetrics m[3];
    int marked[3];

    set_f1(m, f1, 3);
    m[0].support = 0;  /* no samples: its F1 of 0 means nothing */
    ck_assert_int_eq(explore_weakest(m, 3, 3, marked), 1);
    ck_assert_int_eq(marked[0], 0);
    ck_assert_int_eq(marked[1], 0);
    ck_assert_int_eq(marked[2], 1);
}
END_TEST

/* ---------------------------------------------------------------- occlusion */

#define SIDE 4

/* Builds "dense2" on a 1 x SIDE x SIDE input whose class 0 logit is
 * WEIGHT times pixel (0, 0) and whose class 1 logit is always 0, so every
 * other pixel is ignored. */
static void make_corner_net(Net *net, float weight)
{
    char err[NET_ERR_LEN];

    ck_assert_msg(net_create(net, "dense2", 1, SIDE, SIDE, 2, err,
                             sizeof err) == 0, "%s", err);
    net->params[net->layers[0].weight_offset] = weight;
}

/* Runs explore_occlusion on an all-ones image and returns its result. */
static int occlude_ones(const Net *net, int max_batch, int patch, int stride,
                        int *target, float *probs, float *map,
                        const atomic_int *cancel)
{
    float image[SIDE * SIDE];
    NetScratch *scratch = net_scratch_create(net, max_batch);

    for (int i = 0; i < SIDE * SIDE; i++)
        image[i] = 1.0f;
    int rc = explore_occlusion(net, scratch, max_batch, image, patch, stride,
                               target, probs, map, cancel);
    net_scratch_free(scratch);
    return rc;
}

START_TEST(test_explore_occlusion_ignored_pixels)
{
    Net net;
    float probs[2], map[SIDE * SIDE];
    int target = -1;

    make_corner_net(&net, 5.0f);
    ck_assert_int_eq(occlude_ones(&net, 16, 2, 1, &target, probs, map, NULL),
                     0);
    ck_assert_int_eq(target, 0);

    float base = 1.0f / (1.0f + expf(-5.0f));
    float drop = base - 0.5f;  /* masking (0, 0) makes both logits 0 */
    ck_assert_float_eq_tol(probs[0], base, 1e-6f);

    /* Only the patch at (0, 0) hides the pixel the net reads. It covers
     * pixels (0, 0), (0, 1), (1, 0) and (1, 1), which lie under 1, 2, 2
     * and 4 patches in all, so their means are the fall divided by that.
     * Every other pixel's mean is 0. */
    ck_assert_float_eq_tol(map[0], drop, 1e-6f);
    ck_assert_float_eq_tol(map[1], drop / 2, 1e-6f);
    ck_assert_float_eq_tol(map[SIDE], drop / 2, 1e-6f);
    ck_assert_float_eq_tol(map[SIDE + 1], drop / 4, 1e-6f);
    for (int r = 0; r < SIDE; r++) {
        for (int c = 0; c < SIDE; c++) {
            if (r < 2 && c < 2)
                continue;
            ck_assert_msg(map[r * SIDE + c] == 0.0f,
                          "pixel (%d, %d): fall %g, expected 0", r, c,
                          map[r * SIDE + c]);
        }
    }
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_given_target)
{
    Net net;
    float probs[2], map[SIDE * SIDE];
    int target = 1;

    make_corner_net(&net, 5.0f);
    occlude_ones(&net, 16, 2, 1, &target, probs, map, NULL);
    ck_assert_int_eq(target, 1);
    /* Masking the corner raises class 1, so its fall is negative. */
    ck_assert_float_lt(map[0], 0.0f);
    ck_assert_float_eq(map[SIDE * SIDE - 1], 0.0f);
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_batch_size_invariant)
{
    Net net;
    float probs[2], one[SIDE * SIDE], many[SIDE * SIDE];
    int target = -1;

    make_corner_net(&net, 3.0f);
    occlude_ones(&net, 1, 2, 1, &target, probs, one, NULL);
    target = -1;
    occlude_ones(&net, 4, 2, 1, &target, probs, many, NULL);
    for (int i = 0; i < SIDE * SIDE; i++)
        ck_assert_float_eq_tol(one[i], many[i], 1e-7f);
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_covers_edges)
{
    char err[NET_ERR_LEN];
    Net net;
    float image[25], probs[2], map[25];
    int target = -1;

    /* Every pixel of a 5x5 image adds to class 0, so every 2x2 patch cuts
     * it by the same amount. Starts 0 and 2 alone would leave row and
     * column 4 uncovered; the extra start at 3 covers them. */
    ck_assert_msg(net_create(&net, "dense2", 1, 5, 5, 2, err,
                             sizeof err) == 0, "%s", err);
    for (int i = 0; i < 25; i++) {
        net.params[net.layers[0].weight_offset + i] = 0.2f;
        image[i] = 1.0f;
    }
    NetScratch *scratch = net_scratch_create(&net, 4);
    ck_assert_int_eq(explore_occlusion(&net, scratch, 4, image, 2, 2, &target,
                                       probs, map, NULL), 0);
    for (int i = 0; i < 25; i++)
        ck_assert_float_eq_tol(map[i], map[0], 1e-6f);
    ck_assert_float_gt(map[24], 0.0f);
    net_scratch_free(scratch);
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_no_prediction)
{
    Net net;
    float probs[2], map[SIDE * SIDE];
    int target = -1;

    /* A NaN weight makes the unmasked image's class 0 probability NaN,
     * so no class is predicted and the map must not follow class 0. */
    make_corner_net(&net, NAN);
    for (int i = 0; i < SIDE * SIDE; i++)
        map[i] = 7.0f;
    ck_assert_int_eq(occlude_ones(&net, 4, 2, 1, &target, probs, map, NULL),
                     0);
    ck_assert_int_eq(target, -1);
    for (int i = 0; i < SIDE * SIDE; i++)
        ck_assert_msg(map[i] == 0.0f, "pixel %d: fall %g, expected 0", i,
                      map[i]);
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_cancelled)
{
    Net net;
    float probs[2], map[SIDE * SIDE];
    int target = -1;
    atomic_int cancel;

    atomic_init(&cancel, 1);
    make_corner_net(&net, 5.0f);
    ck_assert_int_eq(occlude_ones(&net, 4, 2, 1, &target, probs, map,
                                  &cancel), 1);
    net_free(&net);
}
END_TEST

START_TEST(test_explore_occlusion_bad_patch)
{
    Net net;
    float probs[2], map[SIDE * SIDE];
    int target = -1;

    make_corner_net(&net, 5.0f);
    ck_assert_int_eq(occlude_ones(&net, 4, 0, 1, &target, probs, map, NULL),
                     -1);
    ck_assert_int_eq(occlude_ones(&net, 4, 2, 0, &target, probs, map, NULL),
                     -1);
    ck_assert_int_eq(occlude_ones(&net, 4, SIDE + 1, 1, &target, probs, map,
                                  NULL), -1);
    net_free(&net);
}
END_TEST

Suite *explore_suite(void)
{
    Suite *s = suite_create("explore");
    TCase *tc;

    tc = tcase_create("rank");
    tcase_add_test(tc, test_explore_rank_mistakes_by_confidence);
    tcase_add_test(tc, test_explore_rank_ties_and_nan);
    tcase_add_test(tc, test_explore_rank_cell_filters);
    tcase_add_test(tc, test_explore_rank_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("weakest");
    tcase_add_test(tc, test_explore_weakest_lowest_three);
    tcase_add_test(tc, test_explore_weakest_only_below_mean);
    tcase_add_test(tc, test_explore_weakest_skips_empty_classes);
    suite_add_tcase(s, tc);

    tc = tcase_create("occlusion");
    tcase_add_test(tc, test_explore_occlusion_ignored_pixels);
    tcase_add_test(tc, test_explore_occlusion_given_target);
    tcase_add_test(tc, test_explore_occlusion_batch_size_invariant);
    tcase_add_test(tc, test_explore_occlusion_covers_edges);
    tcase_add_test(tc, test_explore_occlusion_no_prediction);
    tcase_add_test(tc, test_explore_occlusion_cancelled);
    tcase_add_test(tc, test_explore_occlusion_bad_patch);
    suite_add_tcase(s, tc);
    return s;
}
