/*
 * Tests for augment: a flip twice is the identity, a flip mirrors each
 * row, shifts move every pixel by the requested offset and fill the
 * uncovered border with 0, and augment_image draws the same choices from
 * the same seed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "dataset.h"
#include "tests.h"
#include "util.h"

/* Fills IMAGE with distinct nonzero values, so a misplaced pixel shows. */
static void fill_distinct(float *image)
{
    for (int i = 0; i < DATASET_PIXELS; i++)
        image[i] = 1.0f + (float)i;
}

START_TEST(test_augment_flip_twice_identity)
{
    float image[DATASET_PIXELS], original[DATASET_PIXELS];

    fill_distinct(image);
    memcpy(original, image, sizeof image);
    augment_flip(image);
    ck_assert_int_ne(memcmp(image, original, sizeof image), 0);
    augment_flip(image);
    ck_assert_int_eq(memcmp(image, original, sizeof image), 0);
}
END_TEST

START_TEST(test_augment_flip_mirrors_rows)
{
    float image[DATASET_PIXELS], original[DATASET_PIXELS];

    fill_distinct(image);
    memcpy(original, image, sizeof image);
    augment_flip(image);
    for (int y = 0; y < DATASET_ROWS; y++)
        for (int x = 0; x < DATASET_COLS; x++)
            ck_assert_msg(image[y * DATASET_COLS + x]
                          == original[y * DATASET_COLS + DATASET_COLS - 1 - x],
                          "pixel (%d, %d) not mirrored", x, y);
}
END_TEST

/* Checks that DST is SRC moved by (DX, DY) with zeros where nothing
 * lands. */
static void check_shifted(const float *src, const float *dst, int dx, int dy)
{
    for (int y = 0; y < DATASET_ROWS; y++)
        for (int x = 0; x < DATASET_COLS; x++) {
            int sx = x - dx, sy = y - dy;
            float want = sx >= 0 && sx < DATASET_COLS && sy >= 0
                         && sy < DATASET_ROWS
                         ? src[sy * DATASET_COLS + sx] : 0.0f;
            ck_assert_msg(dst[y * DATASET_COLS + x] == want,
                          "shift (%d, %d): pixel (%d, %d) is %g, expected %g",
                          dx, dy, x, y, dst[y * DATASET_COLS + x], want);
        }
}

START_TEST(test_augment_shift_moves_pixels)
{
    const int offsets[][2] = {
        {0, 0}, {1, 0}, {-1, 0}, {0, 2}, {0, -2}, {3, -4}, {-4, 3},
        {27, 0}, {0, -27}, {28, 0}, {-30, 5},
    };
    float src[DATASET_PIXELS], dst[DATASET_PIXELS];

    fill_distinct(src);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        augment_shift(src, offsets[i][0], offsets[i][1], dst);
        check_shifted(src, dst, offsets[i][0], offsets[i][1]);
    }
}
END_TEST

/* A shift right by 2 leaves columns 0 and 1 at 0 and moves the marked
 * pixel from (5, 7) to (7, 7). */
START_TEST(test_augment_shift_zero_fill)
{
    float src[DATASET_PIXELS], dst[DATASET_PIXELS];

    for (int i = 0; i < DATASET_PIXELS; i++)
        src[i] = 0.5f;
    src[7 * DATASET_COLS + 5] = 1.0f;
    augment_shift(src, 2, 0, dst);
    for (int y = 0; y < DATASET_ROWS; y++) {
        ck_assert_float_eq(dst[y * DATASET_COLS + 0], 0.0f);
        ck_assert_float_eq(dst[y * DATASET_COLS + 1], 0.0f);
        ck_assert_float_eq(dst[y * DATASET_COLS + 2], 0.5f);
    }
    ck_assert_float_eq(dst[7 * DATASET_COLS + 7], 1.0f);
    ck_assert_float_eq(dst[7 * DATASET_COLS + 5], 0.5f);
}
END_TEST

/* With flips and shifts off, nothing changes and no value is drawn. */
START_TEST(test_augment_off_changes_nothing)
{
    Augment off = {0, 0};
    float image[DATASET_PIXELS], original[DATASET_PIXELS];
    Rng rng, untouched;

    fill_distinct(image);
    memcpy(original, image, sizeof image);
    rng_seed(&rng, 7);
    untouched = rng;
    augment_image(&off, image, &rng);
    ck_assert_int_eq(memcmp(image, original, sizeof image), 0);
    ck_assert_int_eq(memcmp(&rng, &untouched, sizeof rng), 0);
}
END_TEST

/*
 * Over many draws with flips and shifts of up to 2, every result is one
 * of the 2 x 5 x 5 allowed transforms of the original, each of those
 * appears, and the same seed repeats the same sequence.
 */
START_TEST(test_augment_image_draws_allowed_transforms)
{
    Augment aug = {1, 2};
    float original[DATASET_PIXELS], image[DATASET_PIXELS];
    float flipped[DATASET_PIXELS], candidate[DATASET_PIXELS];
    int seen[2][5][5];
    Rng rng, again;

    memset(seen, 0, sizeof seen);
    fill_distinct(original);
    memcpy(flipped, original, sizeof original);
    augment_flip(flipped);
    rng_seed(&rng, 11);
    rng_seed(&again, 11);
    for (int draw = 0; draw < 1000; draw++) {
        int found = 0;
        float repeat[DATASET_PIXELS];

        memcpy(image, original, sizeof image);
        augment_image(&aug, image, &rng);
        memcpy(repeat, original, sizeof repeat);
        augment_image(&aug, repeat, &again);
        ck_assert_int_eq(memcmp(image, repeat, sizeof image), 0);
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = -2; dy <= 2 && !found; dy++)
                for (int dx = -2; dx <= 2 && !found; dx++) {
                    augment_shift(f ? flipped : original, dx, dy, candidate);
                    if (memcmp(image, candidate, sizeof image) == 0) {
                        seen[f][dy + 2][dx + 2]++;
                        found = 1;
                    }
                }
        ck_assert_msg(found, "draw %d is no flip-and-shift of the image",
                      draw);
    }
    for (int f = 0; f < 2; f++)
        for (int dy = 0; dy < 5; dy++)
            for (int dx = 0; dx < 5; dx++)
                ck_assert_msg(seen[f][dy][dx] > 0, "flip %d shift (%d, %d) "
                              "never drawn", f, dx - 2, dy - 2);
}
END_TEST

Suite *augment_suite(void)
{
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("transforms");

    tcase_add_test(tc, test_augment_flip_twice_identity);
    tcase_add_test(tc, test_augment_flip_mirrors_rows);
    tcase_add_test(tc, test_augment_shift_moves_pixels);
    tcase_add_test(tc, test_augment_shift_zero_fill);
    tcase_add_test(tc, test_augment_off_changes_nothing);
    tcase_add_test(tc, test_augment_image_draws_allowed_transforms);
    suite_add_tcase(s, tc);
    return s;
}
