/*
 * Tests of the terminal UI's drawing arithmetic: sparkline levels, the
 * shading ramp, row-pair downsampling, the pane layout of every view at
 * several screen sizes, hit-testing, number formatting, list scrolling and
 * the occlusion overlay's levels. None of them needs a terminal.
 */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dataset.h"
#include "draw.h"
#include "tests.h"
#include "util.h"

/* ---------------------------------------------------------------- sparks */

START_TEST(test_draw_spark_min_max_scaling)
{
    const float v[3] = {2.0f, 3.0f, 4.0f};
    int levels[3];
    float lo, hi;

    ck_assert_int_eq(draw_spark_levels(v, 3, 8, levels, &lo, &hi), 3);
    ck_assert_int_eq(levels[0], 1);
    ck_assert_int_eq(levels[1], 5);  /* 1 + round(0.5 * 7) */
    ck_assert_int_eq(levels[2], 8);
    ck_assert_float_eq(lo, 2.0f);
    ck_assert_float_eq(hi, 4.0f);
}
END_TEST

START_TEST(test_draw_spark_flat_series)
{
    const float v[4] = {0.7f, 0.7f, 0.7f, 0.7f};
    int levels[4];

    draw_spark_levels(v, 4, 8, levels, NULL, NULL);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(levels[i], 4);
}
END_TEST

START_TEST(test_draw_spark_nan_left_blank)
{
    const float v[4] = {1.0f, NAN, 3.0f, INFINITY};
    int levels[4];
    float lo, hi;

    ck_assert_int_eq(draw_spark_levels(v, 4, 8, levels, &lo, &hi), 2);
    ck_assert_int_eq(levels[0], 1);
    ck_assert_int_eq(levels[1], 0);
    ck_assert_int_eq(levels[2], 8);
    ck_assert_int_eq(levels[3], 0);
    ck_assert_float_eq(lo, 1.0f);
    ck_assert_float_eq(hi, 3.0f);
}
END_TEST

START_TEST(test_draw_spark_all_nan)
{
    const float v[2] = {NAN, NAN};
    int levels[2];
    float lo, hi;

    ck_assert_int_eq(draw_spark_levels(v, 2, 8, levels, &lo, &hi), 0);
    ck_assert_int_eq(levels[0], 0);
    ck_assert_int_eq(levels[1], 0);
    ck_assert(isnan(lo));
    ck_assert(isnan(hi));
}
END_TEST

START_TEST(test_draw_spark_cell_rows)
{
    /* Level 12 of a two-row sparkline: a full bottom cell, half a top. */
    ck_assert_int_eq(draw_spark_cell(12, 0, 8), 8);
    ck_assert_int_eq(draw_spark_cell(12, 1, 8), 4);
    ck_assert_int_eq(draw_spark_cell(3, 0, 8), 3);
    ck_assert_int_eq(draw_spark_cell(3, 1, 8), 0);
    ck_assert_int_eq(draw_spark_cell(0, 0, 8), 0);
    ck_assert_int_eq(draw_spark_cell(16, 1, 8), 8);
}
END_TEST

START_TEST(test_draw_spark_cell_short_ramp)
{
    /* The ASCII ramp has 4 glyphs above the blank, so level 6 of two
     * rows is a full bottom cell and half a top. */
    ck_assert_int_eq(draw_spark_cell(3, 0, 4), 3);
    ck_assert_int_eq(draw_spark_cell(4, 0, 4), 4);
    ck_assert_int_eq(draw_spark_cell(6, 0, 4), 4);
    ck_assert_int_eq(draw_spark_cell(6, 1, 4), 2);
    ck_assert_int_eq(draw_spark_cell(4, 1, 4), 0);
}
END_TEST

START_TEST(test_draw_spark_edge_cell_rows)
{
    const int fill = DRAW_SPARK_EDGE_LEVELS + 1;

    /* Level 5 of 3 per row: the fill below, the top in the middle of
     * row 1, nothing above. */
    ck_assert_int_eq(draw_spark_edge_cell(5, 0), fill);
    ck_assert_int_eq(draw_spark_edge_cell(5, 1), 2);
    ck_assert_int_eq(draw_spark_edge_cell(5, 2), 0);
    /* A top at the highest height of row 0 is an edge, not the fill. */
    ck_assert_int_eq(draw_spark_edge_cell(3, 0), 3);
    ck_assert_int_eq(draw_spark_edge_cell(3, 1), 0);
    ck_assert_int_eq(draw_spark_edge_cell(4, 0), fill);
    ck_assert_int_eq(draw_spark_edge_cell(4, 1), 1);
    ck_assert_int_eq(draw_spark_edge_cell(1, 0), 1);
    /* Level 0, a non-finite value, stays blank in every row. */
    ck_assert_int_eq(draw_spark_edge_cell(0, 0), 0);
    ck_assert_int_eq(draw_spark_edge_cell(0, 1), 0);
}
END_TEST

/* The mark of a one-value series sits in the middle row, the lower one
 * of two middle rows, and in the only row of a one-row sparkline. */
START_TEST(test_draw_spark_mid_row)
{
    ck_assert_int_eq(draw_spark_mid_row(1), 0);
    ck_assert_int_eq(draw_spark_mid_row(2), 0);
    ck_assert_int_eq(draw_spark_mid_row(3), 1);
    ck_assert_int_eq(draw_spark_mid_row(6), 2);
    ck_assert_int_eq(draw_spark_mid_row(7), 3);
    /* A pane too short for a row has nowhere else to put it. */
    ck_assert_int_eq(draw_spark_mid_row(0), 0);
}
END_TEST

START_TEST(test_draw_resample_short_copies)
{
    const float v[3] = {1, 2, 3};
    float out[8];

    ck_assert_int_eq(draw_resample(v, 3, 8, out), 3);
    ck_assert_float_eq(out[0], 1);
    ck_assert_float_eq(out[2], 3);
    ck_assert_int_eq(draw_resample(v, 0, 8, out), 0);
}
END_TEST

START_TEST(test_draw_resample_averages_buckets)
{
    const float v[6] = {1, 3, 5, 7, NAN, 10};
    float out[3];

    ck_assert_int_eq(draw_resample(v, 6, 3, out), 3);
    ck_assert_float_eq_tol(out[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(out[1], 6.0f, 1e-6f);
    ck_assert_float_eq_tol(out[2], 10.0f, 1e-6f);  /* the NaN is skipped */
}
END_TEST

START_TEST(test_draw_resample_nan_bucket)
{
    const float v[4] = {NAN, NAN, 1, 2};
    float out[2];

    draw_resample(v, 4, 2, out);
    ck_assert(isnan(out[0]));
    ck_assert_float_eq_tol(out[1], 1.5f, 1e-6f);
}
END_TEST

/* Three points in 27 columns take 3 columns each when 3 is the maximum. */
START_TEST(test_draw_spark_widen_short_series)
{
    const float v[3] = {1, NAN, 3};
    float out[27];

    ck_assert_int_eq(draw_spark_widen(v, 3, 27, 3, out), 9);
    for (int c = 0; c < 3; c++) {
        ck_assert_float_eq(out[c], 1);
        ck_assert(isnan(out[3 + c]));
        ck_assert_float_eq(out[6 + c], 3);
    }
}
END_TEST

/* A width that cannot give every point two columns leaves one each, and
 * a maximum of 1 leaves the series as it is. */
START_TEST(test_draw_spark_widen_keeps_long_series)
{
    const float v[5] = {1, 2, 3, 4, 5};
    float out[9];

    ck_assert_int_eq(draw_spark_widen(v, 5, 9, 3, out), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq(out[i], v[i]);
    ck_assert_int_eq(draw_spark_widen(v, 2, 40, 1, out), 2);
    ck_assert_float_eq(out[1], 2);
    ck_assert_int_eq(draw_spark_widen(v, 0, 40, 3, out), 0);
}
END_TEST

/* ---------------------------------------------------------------- image */

START_TEST(test_draw_shade_ramp_ends)
{
    ck_assert_int_eq(draw_shade_index(0.0f, 10), 0);
    ck_assert_int_eq(draw_shade_index(1.0f, 10), 9);
    ck_assert_int_eq(draw_shade_index(0.5f, 10), 5);  /* 4.5 rounds up */
    ck_assert_int_eq(draw_shade_index(0.04f, 10), 0);
    ck_assert_int_eq(draw_shade_index(0.06f, 10), 1);
}
END_TEST

START_TEST(test_draw_shade_out_of_range)
{
    ck_assert_int_eq(draw_shade_index(-0.5f, 10), 0);
    ck_assert_int_eq(draw_shade_index(7.0f, 10), 9);
    ck_assert_int_eq(draw_shade_index(NAN, 10), 0);
    ck_assert_int_eq(draw_shade_index(0.5f, 1), 0);
}
END_TEST

START_TEST(test_draw_downsample_row_pairs)
{
    const float image[5 * 2] = {
        0.0f, 1.0f,
        1.0f, 1.0f,
        0.2f, 0.4f,
        0.6f, 0.0f,
        9.0f, 9.0f,  /* odd last row: dropped */
    };
    float out[2 * 2];

    draw_downsample_rows(image, 5, 2, out);
    ck_assert_float_eq_tol(out[0], 0.5f, 1e-6f);
    ck_assert_float_eq_tol(out[1], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(out[2], 0.4f, 1e-6f);
    ck_assert_float_eq_tol(out[3], 0.2f, 1e-6f);
}
END_TEST

START_TEST(test_draw_downsample_full_image)
{
    float image[DATASET_PIXELS], out[DATASET_PIXELS / 2];

    /* Rows alternate 0 and 1, so every pair averages to one half. */
    for (int r = 0; r < DATASET_ROWS; r++)
        for (int c = 0; c < DATASET_COLS; c++)
            image[r * DATASET_COLS + c] = (float)(r % 2);
    draw_downsample_rows(image, DATASET_ROWS, DATASET_COLS, out);
    for (int i = 0; i < DATASET_PIXELS / 2; i++)
        ck_assert_float_eq_tol(out[i], 0.5f, 1e-6f);
}
END_TEST

/* ---------------------------------------------------------------- layout */

static int rects_overlap(const DrawRect *a, const DrawRect *b)
{
    return a->x < b->x + b->w && b->x < a->x + a->w
           && a->y < b->y + b->h && b->y < a->y + a->h;
}

static const struct {
    int cols, lines, scale;
} layout_sizes[] = {
    {80, 24, 1}, {100, 30, 1}, {132, 43, 2}, {200, 60, 2},
};

/* The loop tests below run every size in every view: _i / DRAW_VIEWS
 * picks the size and _i % DRAW_VIEWS the view. */
#define N_SIZES ((int)(sizeof layout_sizes / sizeof layout_sizes[0]))

START_TEST(test_draw_layout_panes_fit_screen)
{
    int cols = layout_sizes[_i / DRAW_VIEWS].cols;
    int lines = layout_sizes[_i / DRAW_VIEWS].lines;
    DrawLayout lay;

    ck_assert_int_eq(draw_layout(cols, lines, _i % DRAW_VIEWS, &lay), 1);
    ck_assert_int_eq(lay.fits, 1);
    for (int p = 0; p < DRAW_PANES; p++) {
        const DrawRect *r = &lay.pane[p];
        if (r->h == 0)
            continue;  /* not in this view */
        ck_assert_int_ge(r->x, 0);
        ck_assert_int_ge(r->y, 0);
        ck_assert_int_gt(r->w, 0);
        ck_assert_int_le(r->x + r->w, cols);
        ck_assert_int_le(r->y + r->h, lines);
    }
}
END_TEST

START_TEST(test_draw_layout_no_overlap)
{
    int cols = layout_sizes[_i / DRAW_VIEWS].cols;
    int lines = layout_sizes[_i / DRAW_VIEWS].lines;
    DrawLayout lay;

    draw_layout(cols, lines, _i % DRAW_VIEWS, &lay);
    for (int a = 0; a < DRAW_PANES; a++)
        for (int b = a + 1; b < DRAW_PANES; b++)
            ck_assert_msg(!rects_overlap(&lay.pane[a], &lay.pane[b]),
                          "panes %d and %d overlap at %dx%d in view %d", a,
                          b, cols, lines, _i % DRAW_VIEWS);
}
END_TEST

/* Each view shows its own pane, tall enough for its content, and the
 * status, viewer and hint line. */
START_TEST(test_draw_layout_view_panes)
{
    int cols = layout_sizes[_i / DRAW_VIEWS].cols;
    int lines = layout_sizes[_i / DRAW_VIEWS].lines;
    DrawView view = _i % DRAW_VIEWS;
    DrawLayout lay;

    draw_layout(cols, lines, view, &lay);
    ck_assert_int_gt(lay.pane[DRAW_STATUS].h, 0);
    ck_assert_int_gt(lay.pane[DRAW_IMAGE].h, 0);
    ck_assert_int_gt(lay.pane[DRAW_HINT].h, 0);
    if (view == DRAW_VIEW_TRAINING) {
        ck_assert_int_ge(lay.pane[DRAW_CONFUSION].h, 13);
        ck_assert_int_eq(lay.pane[DRAW_MISTAKES].h, 0);
        ck_assert_int_eq(lay.pane[DRAW_CLASSES].h, 0);
    } else if (view == DRAW_VIEW_MISTAKES) {
        ck_assert_int_ge(lay.pane[DRAW_MISTAKES].h, 8);
        ck_assert_int_eq(lay.pane[DRAW_CLASSES].h, 0);
    } else {
        ck_assert_int_eq(lay.pane[DRAW_CLASSES].h, 13);
        ck_assert_int_eq(lay.pane[DRAW_MISTAKES].h, 0);
    }
    /* A matrix, when shown, is never cut short. */
    if (lay.pane[DRAW_CONFUSION].h > 0)
        ck_assert_int_ge(lay.pane[DRAW_CONFUSION].h, 13);
}
END_TEST

START_TEST(test_draw_layout_views_at_80x24)
{
    DrawLayout lay;

    /* Too short for the list and the matrix together. */
    draw_layout(80, 24, DRAW_VIEW_MISTAKES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_MISTAKES].h, 19);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 0);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].h, 0);
    /* The table leaves 6 lines, which the sparklines take. */
    draw_layout(80, 24, DRAW_VIEW_CLASSES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CLASSES].w, 50);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].h, 6);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 0);
}
END_TEST

START_TEST(test_draw_layout_views_at_132x43)
{
    DrawLayout lay;

    draw_layout(132, 43, DRAW_VIEW_MISTAKES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_MISTAKES].h, 24);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 14);
    draw_layout(132, 43, DRAW_VIEW_CLASSES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CLASSES].h, 13);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 14);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].h, 11);
}
END_TEST

START_TEST(test_draw_layout_matrix_joins_when_tall)
{
    DrawLayout lay;

    draw_layout(80, 26, DRAW_VIEW_MISTAKES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 0);
    draw_layout(80, 27, DRAW_VIEW_MISTAKES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 14);
    ck_assert_int_eq(lay.pane[DRAW_MISTAKES].h, 8);

    draw_layout(80, 30, DRAW_VIEW_CLASSES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 0);
    draw_layout(80, 31, DRAW_VIEW_CLASSES, &lay);
    ck_assert_int_eq(lay.pane[DRAW_CONFUSION].h, 13);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].h, 0);
}
END_TEST

START_TEST(test_draw_pane_at_hits)
{
    DrawLayout lay;

    draw_layout(80, 24, DRAW_VIEW_TRAINING, &lay);
    ck_assert_int_eq(draw_pane_at(&lay, 0, 0), DRAW_STATUS);
    ck_assert_int_eq(draw_pane_at(&lay, 23, 79), DRAW_HINT);
    ck_assert_int_eq(draw_pane_at(&lay, 4, 29), DRAW_IMAGE);
    ck_assert_int_eq(draw_pane_at(&lay, 4, 30), DRAW_SPARK);
    ck_assert_int_eq(draw_pane_at(&lay, lay.pane[DRAW_CONFUSION].y, 30),
                     DRAW_CONFUSION);
    ck_assert_int_eq(draw_pane_at(&lay, 24, 0), -1);
    ck_assert_int_eq(draw_pane_at(&lay, 5, 80), -1);
    ck_assert_int_eq(draw_pane_at(&lay, -1, 5), -1);

    /* A pane left out of the view is never hit. */
    draw_layout(80, 24, DRAW_VIEW_MISTAKES, &lay);
    ck_assert_int_eq(draw_pane_at(&lay, 10, 40), DRAW_MISTAKES);
}
END_TEST

START_TEST(test_draw_layout_pane_sizes)
{
    int scale = layout_sizes[_i].scale;
    DrawLayout lay;

    draw_layout(layout_sizes[_i].cols, layout_sizes[_i].lines,
                DRAW_VIEW_TRAINING, &lay);
    ck_assert_int_eq(lay.image_scale, scale);

    /* Image: title, the pixel rows, true class and three ranks. */
    const DrawRect *img = &lay.pane[DRAW_IMAGE];
    ck_assert_int_ge(img->w, scale * DATASET_COLS + 2);
    ck_assert_int_ge(img->h, 1 + scale * DATASET_ROWS / 2 + 4);

    /* Matrix: title, header, ten rows, cursor line; label + 10 columns. */
    ck_assert_int_ge(lay.pane[DRAW_CONFUSION].h, 13);
    ck_assert_int_ge(lay.pane[DRAW_CONFUSION].w, 2 + 6 + 10 * 4);
    /* Sparklines: title and one row per series. */
    ck_assert_int_ge(lay.pane[DRAW_SPARK].h, 4);
    ck_assert_int_eq(lay.pane[DRAW_STATUS].h, 4);
    ck_assert_int_eq(lay.pane[DRAW_HINT].y, layout_sizes[_i].lines - 1);
}
END_TEST

START_TEST(test_draw_layout_80x24_exact)
{
    DrawLayout lay;

    draw_layout(80, 24, DRAW_VIEW_TRAINING, &lay);
    ck_assert_int_eq(lay.pane[DRAW_IMAGE].w, 30);
    ck_assert_int_eq(lay.pane[DRAW_IMAGE].h, 19);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].x, 30);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].w, 50);
    ck_assert_int_eq(lay.pane[DRAW_SPARK].h + lay.pane[DRAW_CONFUSION].h, 19);
}
END_TEST

START_TEST(test_draw_layout_too_small)
{
    DrawLayout lay;

    ck_assert_int_eq(draw_layout(79, 24, DRAW_VIEW_TRAINING, &lay), 0);
    ck_assert_int_eq(lay.fits, 0);
    ck_assert_int_eq(lay.pane[DRAW_IMAGE].w, 0);
    ck_assert_int_eq(draw_layout(80, 23, DRAW_VIEW_MISTAKES, &lay), 0);
    ck_assert_int_eq(draw_pane_at(&lay, 0, 0), -1);
    ck_assert_int_eq(draw_layout(0, 0, DRAW_VIEW_CLASSES, &lay), 0);
    ck_assert_int_eq(draw_layout(80, 24, DRAW_VIEW_TRAINING, &lay), 1);
}
END_TEST

/* ---------------------------------------------------------------- numbers */

START_TEST(test_draw_duration_format)
{
    char buf[16];

    draw_format_duration(65, buf, sizeof buf);
    ck_assert_str_eq(buf, "1m05s");
    draw_format_duration(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0s");
    draw_format_duration(59.4, buf, sizeof buf);
    ck_assert_str_eq(buf, "59s");
    draw_format_duration(59.6, buf, sizeof buf);
    ck_assert_str_eq(buf, "1m00s");
    draw_format_duration(3600, buf, sizeof buf);
    ck_assert_str_eq(buf, "1h00m");
    draw_format_duration(2 * 86400 + 3 * 3600 + 59, buf, sizeof buf);
    ck_assert_str_eq(buf, "2d03h");
}
END_TEST

START_TEST(test_draw_duration_unknown)
{
    char buf[16];

    draw_format_duration(-1, buf, sizeof buf);
    ck_assert_str_eq(buf, "--");
    draw_format_duration(NAN, buf, sizeof buf);
    ck_assert_str_eq(buf, "--");
    draw_format_duration(INFINITY, buf, sizeof buf);
    ck_assert_str_eq(buf, "--");
}
END_TEST

START_TEST(test_draw_count_fits_width)
{
    char buf[16];

    ck_assert_int_eq(draw_format_count(999, 3, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "999");
    draw_format_count(0, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "0");
    draw_format_count(1000, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "1000");
}
END_TEST

START_TEST(test_draw_count_scaled)
{
    char buf[16];

    draw_format_count(1000, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "1k");
    draw_format_count(1200, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "1200");
    draw_format_count(12345, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "12k");
    draw_format_count(1234, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "1k");
    draw_format_count(12345, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "12k");
    draw_format_count(60000, 5, buf, sizeof buf);
    ck_assert_str_eq(buf, "60000");
    draw_format_count(2500000, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "2.5M");
}
END_TEST

START_TEST(test_draw_count_overflow)
{
    char buf[16];

    /* 123k needs four columns and 0.1M is not written. */
    ck_assert_int_eq(draw_format_count(123456, 3, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "###");
    draw_format_count(-50, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "##");
}
END_TEST

START_TEST(test_draw_bar_fill)
{
    ck_assert_int_eq(draw_bar_fill(0.5, 10), 5);
    ck_assert_int_eq(draw_bar_fill(0.0, 10), 0);
    ck_assert_int_eq(draw_bar_fill(1.0, 10), 10);
    ck_assert_int_eq(draw_bar_fill(1.5, 10), 10);
    ck_assert_int_eq(draw_bar_fill(-0.5, 10), 0);
    ck_assert_int_eq(draw_bar_fill(NAN, 10), 0);
    ck_assert_int_eq(draw_bar_fill(0.5, 0), 0);
}
END_TEST

/* ---------------------------------------------------------------- lists */

START_TEST(test_draw_scroll_keeps_selection_visible)
{
    /* 100 entries, 10 rows. */
    ck_assert_int_eq(draw_scroll(0, 5, 10, 100), 0);
    ck_assert_int_eq(draw_scroll(0, 10, 10, 100), 1);   /* one line down */
    ck_assert_int_eq(draw_scroll(20, 15, 10, 100), 15); /* up to it */
    ck_assert_int_eq(draw_scroll(20, 25, 10, 100), 20); /* no move */
    ck_assert_int_eq(draw_scroll(95, 99, 10, 100), 90); /* not past the end */
    ck_assert_int_eq(draw_scroll(7, 3, 10, 5), 0);      /* fits: top 0 */
    ck_assert_int_eq(draw_scroll(3, 0, 0, 5), 0);
    ck_assert_int_eq(draw_scroll(3, 0, 10, 0), 0);
}
END_TEST

START_TEST(test_draw_heat_levels)
{
    ck_assert_int_eq(draw_heat_level(0.30f, 0.40f), 2);
    ck_assert_int_eq(draw_heat_level(0.20f, 0.40f), 1);  /* half: not above */
    ck_assert_int_eq(draw_heat_level(0.10f, 0.40f), 1);
    ck_assert_int_eq(draw_heat_level(0.05f, 0.40f), 0);
    ck_assert_int_eq(draw_heat_level(0.0f, 0.40f), 0);
    ck_assert_int_eq(draw_heat_level(-0.05f, 0.40f), 0);
    ck_assert_int_eq(draw_heat_level(-0.10f, 0.40f), -1);
    ck_assert_int_eq(draw_heat_level(NAN, 0.40f), 0);
    /* Below the floor nothing is highlighted. */
    ck_assert_int_eq(draw_heat_level(0.005f, 0.005f), 0);
    ck_assert_int_eq(draw_heat_level(-0.5f, 0.0f), 0);
}
END_TEST

/* A legend threshold never reads higher than the threshold itself, or a
 * cell just above it would be highlighted while its cut is below the
 * number shown. */
START_TEST(test_draw_points_round_down)
{
    char buf[16];

    ck_assert_int_eq(draw_format_points(7.36f, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "7.3");
    draw_format_points(9.99f, buf, sizeof buf);
    ck_assert_str_eq(buf, "9.9");
    draw_format_points(10.0f, buf, sizeof buf);
    ck_assert_str_eq(buf, "10");
    draw_format_points(18.7f, buf, sizeof buf);
    ck_assert_str_eq(buf, "18");
    draw_format_points(0.45f, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.4");
    ck_assert_int_eq(draw_format_points(100.0f, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "100");
}
END_TEST

START_TEST(test_draw_step_clamps)
{
    ck_assert_int_eq(draw_step(0, -1, 10), 0);
    ck_assert_int_eq(draw_step(0, 1, 10), 1);
    ck_assert_int_eq(draw_step(5, 10, 10), 9);
    ck_assert_int_eq(draw_step(5, -10, 10), 0);
    ck_assert_int_eq(draw_step(3, 0, 0), 0);
}
END_TEST

START_TEST(test_draw_percent_decimal_when_it_fits)
{
    char buf[16];

    ck_assert_int_eq(draw_format_percent(72.54, 4, buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "72.5");
    draw_format_percent(100.0, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, " 100");
    draw_format_percent(100.0, 6, buf, sizeof buf);
    ck_assert_str_eq(buf, " 100.0");
    draw_format_percent(72.54, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, " 73");
    draw_format_percent(5.04, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "5.0");
}
END_TEST

/* Every cell of a rate column has the width of the column and carries no
 * % sign, whatever the width, so rows and columns read alike. */
START_TEST(test_draw_percent_same_shape_at_every_width)
{
    static const double values[] = {0.0, 5.55, 56.78, 99.96, 100.0};
    char buf[16];

    for (int width = 3; width <= 8; width++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            int n = draw_format_percent(values[i], width, buf, sizeof buf);
            ck_assert_int_eq(n, width);
            ck_assert_int_eq((int)strlen(buf), width);
            ck_assert_ptr_null(strchr(buf, '%'));
        }
    }
}
END_TEST

/* Sets the character type of a UTF-8 locale, which the width and wrap
 * tests below need. The test process is forked, so the change ends with
 * the test. */
static void use_utf8(void)
{
    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
}

START_TEST(test_draw_text_width_counts_characters)
{
    use_utf8();
    ck_assert_int_eq(draw_text_width(""), 0);
    ck_assert_int_eq(draw_text_width("q quit"), 6);
    /* "←→" is two characters of three bytes each. */
    ck_assert_int_eq(draw_text_width("\u2190\u2192 image"), 8);
}
END_TEST

START_TEST(test_draw_text_width_wide_characters)
{
    use_utf8();
    /* Each of the two CJK characters takes two columns. */
    ck_assert_int_eq(draw_text_width("\u6a21\u578b"), 4);
    ck_assert_int_eq(draw_text_width("saved \u6a21\u578b.ckpt"), 15);
}
END_TEST

START_TEST(test_draw_text_width_c_locale)
{
    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));
    /* Without UTF-8, each byte of "模" shows as an escape such as "\xe6",
     * which curses would otherwise show as a wider "M-f". */
    ck_assert_int_eq(draw_text_width("\u6a21"), 12);
    ck_assert_int_eq(draw_text_width("a.ckpt"), 6);
    ck_assert_int_eq(draw_text_width("a\x9b"), 5);
}
END_TEST

/* Controls count as their escapes, so a cut made on the raw text fits
 * the escaped text that pane_print shows. */
START_TEST(test_draw_text_width_controls)
{
    const char *mixed = "x\xc2\x9b\t\xe6\xa8\xa1\x9b";
    char shown[64];

    use_utf8();
    ck_assert_int_eq(draw_text_width("a\nb"), 4);
    ck_assert_int_eq(draw_text_width("\033[0m"), 7);
    ck_assert_int_eq(draw_text_width("a\xc2\x9b"), 9);
    ck_assert_int_eq(draw_text_width("a\x9b"), 5);
    /* Two columns hold "a" only, because "\n" takes two more. */
    ck_assert_int_eq(draw_text_fit("a\nb", 2), 1);
    ck_assert_int_eq(draw_text_fit("a\nb", 3), 2);

    util_escape_unprintable(mixed, shown, sizeof shown);
    ck_assert_int_eq(draw_text_width(mixed), draw_text_width(shown));
}
END_TEST

/* Text that fits is shown whole. Wider text leaves 3 columns for "...",
 * and below 3 columns it is cut without the mark. */
START_TEST(test_draw_text_cut_marks)
{
    int cut;

    use_utf8();
    ck_assert_int_eq(draw_text_cut("saving to a.ckpt", 16, &cut), 16);
    ck_assert_int_eq(cut, 0);
    ck_assert_int_eq(draw_text_cut("saving to a.ckpt", 15, &cut), 12);
    ck_assert_int_eq(cut, 1);
    ck_assert_int_eq(draw_text_cut("saving", 3, &cut), 0);
    ck_assert_int_eq(cut, 1);
    ck_assert_int_eq(draw_text_cut("saving", 2, &cut), 2);
    ck_assert_int_eq(cut, 0);
    /* "模型.ckpt" is 9 columns: 8 leave 5 for text, which holds "模型"
     * and one more byte of the name. */
    ck_assert_int_eq(draw_text_cut("\u6a21\u578b.ckpt", 8, &cut), 7);
    ck_assert_int_eq(cut, 1);
    /* An escape such as "\x1b" is never split by the cut. */
    ck_assert_int_eq(draw_text_cut("ab\033cdef", 8, &cut), 2);
    ck_assert_int_eq(cut, 1);
}
END_TEST

/* Under LANG=C a cut by draw_text_fit never ends inside a byte's escape,
 * and the escaped start of the text fills at most the columns given. */
START_TEST(test_draw_text_fit_c_locale)
{
    const char *text = "caf\xc3\xa9 \x9b\x9b.ckpt";
    char cut[64], shown[256];

    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));
    for (int cols = 0; cols <= 30; cols++) {
        int len = draw_text_fit(text, cols);

        snprintf(cut, sizeof cut, "%.*s", len, text);
        util_escape_unprintable(cut, shown, sizeof shown);
        ck_assert_int_le((int)strlen(shown), cols);
    }
    ck_assert_int_eq(draw_text_fit(text, 5), 3);
    ck_assert_int_eq(draw_text_fit(text, 7), 4);
}
END_TEST

START_TEST(test_draw_text_fit_wide_characters)
{
    use_utf8();
    ck_assert_int_eq(draw_text_fit("abc", 5), 3);
    ck_assert_int_eq(draw_text_fit("abc", 2), 2);
    /* "a模型" is 5 columns in 7 bytes: 4 columns hold "a模", and 2
     * columns only "a", since half of "模" does not fit. */
    ck_assert_int_eq(draw_text_fit("a\u6a21\u578b", 4), 4);
    ck_assert_int_eq(draw_text_fit("a\u6a21\u578b", 2), 1);
    ck_assert_int_eq(draw_text_fit("a\u6a21\u578b", 0), 0);
}
END_TEST

START_TEST(test_draw_wrap_line_breaks_at_space)
{
    const char *text = "try a lower learning rate";
    int next = -1;

    /* "try a lower" is 11 columns, and the space after it is the break. */
    ck_assert_int_eq(draw_wrap_line(text, 11, &next), 11);
    ck_assert_int_eq(next, 12);
    /* At 15 columns "learning" does not fit, so the line ends at "lower". */
    ck_assert_int_eq(draw_wrap_line(text, 15, &next), 11);
    ck_assert_int_eq(next, 12);
    ck_assert_str_eq(text + next, "learning rate");
}
END_TEST

START_TEST(test_draw_wrap_line_all_fits)
{
    const char *text = "saved a.ckpt";
    int next = -1;

    ck_assert_int_eq(draw_wrap_line(text, 12, &next), 12);
    ck_assert_int_eq(next, 12);
    ck_assert_int_eq(draw_wrap_line(text, 80, &next), 12);
    ck_assert_int_eq(next, 12);
    ck_assert_int_eq(draw_wrap_line("", 5, &next), 0);
    ck_assert_int_eq(next, 0);
}
END_TEST

START_TEST(test_draw_wrap_line_splits_long_word)
{
    const char *text = "/a/very/long/path/name.ckpt: disk full";
    int next = -1;

    ck_assert_int_eq(draw_wrap_line(text, 10, &next), 10);
    ck_assert_int_eq(next, 10);
    /* Several spaces at the break all go. */
    ck_assert_int_eq(draw_wrap_line("ab   cd", 4, &next), 2);
    ck_assert_int_eq(next, 5);
}
END_TEST

START_TEST(test_draw_wrap_line_splits_word_after_space)
{
    const char *text = "saved /a/very/long/path/name.ckpt";
    int next = -1;

    /* The path is wider than a line, so breaking at the space would
     * leave "saved" alone and the path still too long. */
    ck_assert_int_eq(draw_wrap_line(text, 20, &next), 20);
    ck_assert_int_eq(next, 20);
    /* A word that fits on the next line still moves there. */
    ck_assert_int_eq(draw_wrap_line(text, 30, &next), 5);
    ck_assert_int_eq(next, 6);
}
END_TEST

START_TEST(test_draw_wrap_line_counts_characters)
{
    use_utf8();
    /* "→" takes one column in three bytes. */
    const char *text = "Shirt\u2192T-shirt/top is wrong";
    int next = -1;

    ck_assert_int_eq(draw_wrap_line(text, 17, &next), 19);
    ck_assert_int_eq(next, 20);
    /* A break is never inside the arrow's bytes. */
    ck_assert_int_eq(draw_wrap_line(text, 6, &next), 8);
    ck_assert_int_eq(next, 8);
}
END_TEST

START_TEST(test_draw_wrap_line_wide_characters)
{
    /* "saved " and four words of two CJK characters: 6 + 4 * 4 + 3
     * columns, where code points would count 6 + 4 * 2 + 3. */
    const char *text = "saved \u6a21\u578b \u7528\u4e8e "
                       "\u68c0\u67e5 \u4fdd\u5b58";
    int next = -1;

    use_utf8();
    /* 14 columns hold "saved 模型" (10) and not "saved 模型 用于" (15). */
    int len = draw_wrap_line(text, 14, &next);
    ck_assert_int_eq(len, 6 + 6);
    ck_assert_int_eq(next, 6 + 6 + 1);
    /* The next line starts with the word that did not fit. */
    ck_assert_int_eq(strncmp(text + next, "\u7528\u4e8e", 6), 0);
    /* A wide character never lands half in a line of one column. */
    ck_assert_int_eq(draw_wrap_line("\u6a21\u578b", 3, &next), 3);
    ck_assert_int_eq(next, 3);
    ck_assert_int_eq(draw_wrap_line("\u6a21\u578b", 1, &next), 3);
    ck_assert_int_eq(next, 3);
}
END_TEST

START_TEST(test_draw_wrap_line_no_columns)
{
    int next = -1;

    ck_assert_int_eq(draw_wrap_line("abc", 0, &next), 0);
    ck_assert_int_eq(next, 3);
}
END_TEST

/* The key bar of the image viewer while it browses a confusion cell:
 * widths include the two columns before each entry. */
static const int hint_widths[] = {10, 10, 14, 13, 13, 8, 9, 8, 8, 8};
static const int hint_ranks[] = {1, 2, 3, 5, 6, 5, 4, 7, 0, 0};
#define N_HINTS ((int)(sizeof hint_widths / sizeof hint_widths[0]))

START_TEST(test_draw_hint_fit_all_when_wide)
{
    int shown[N_HINTS];

    ck_assert_int_eq(draw_hint_fit(hint_widths, hint_ranks, N_HINTS, 200,
                                   shown), 101);
    for (int i = 0; i < N_HINTS; i++)
        ck_assert_int_eq(shown[i], 1);
}
END_TEST

START_TEST(test_draw_hint_fit_drops_least_important)
{
    int shown[N_HINTS];
    /* 81 columns: the line of an 80-column screen (see draw_hint). */
    const int expected[N_HINTS] = {1, 1, 1, 1, 0, 1, 1, 0, 1, 1};

    ck_assert_int_eq(draw_hint_fit(hint_widths, hint_ranks, N_HINTS, 81,
                                   shown), 80);
    for (int i = 0; i < N_HINTS; i++)
        ck_assert_msg(shown[i] == expected[i], "entry %d: shown %d", i,
                      shown[i]);
}
END_TEST

START_TEST(test_draw_hint_fit_keeps_help_and_quit)
{
    int shown[N_HINTS];

    /* Room for help and quit only, then for nothing. */
    ck_assert_int_eq(draw_hint_fit(hint_widths, hint_ranks, N_HINTS, 20,
                                   shown), 16);
    for (int i = 0; i < N_HINTS; i++)
        ck_assert_int_eq(shown[i], hint_ranks[i] == 0);
    ck_assert_int_eq(draw_hint_fit(hint_widths, hint_ranks, N_HINTS, 12,
                                   shown), 8);
    ck_assert_int_eq(shown[8], 1);
    ck_assert_int_eq(shown[9], 0);
}
END_TEST

/* An entry that does not fit ends the choice, even when a less
 * important one after it would fit. */
START_TEST(test_draw_hint_fit_stops_at_first_miss)
{
    const int widths[] = {8, 20, 5};
    const int ranks[] = {0, 1, 2};
    int shown[3];

    ck_assert_int_eq(draw_hint_fit(widths, ranks, 3, 20, shown), 8);
    ck_assert_int_eq(shown[0], 1);
    ck_assert_int_eq(shown[1], 0);
    ck_assert_int_eq(shown[2], 0);
}
END_TEST

START_TEST(test_draw_message_notice_expires)
{
    ck_assert_int_eq(draw_message_shown(0.0, 0, 0, 0), 1);
    ck_assert_int_eq(draw_message_shown(DRAW_MESSAGE_SECONDS - 0.1, 0, 0, 0),
                     1);
    ck_assert_int_eq(draw_message_shown(DRAW_MESSAGE_SECONDS, 0, 0, 0), 0);
    ck_assert_int_eq(draw_message_shown(3600.0, 0, 0, 0), 0);
}
END_TEST

START_TEST(test_draw_message_error_until_newer_eval)
{
    ck_assert_int_eq(draw_message_shown(3600.0, 1, 0, 0), 1);
    ck_assert_int_eq(draw_message_shown(3600.0, 1, 1, 0), 0);
    ck_assert_int_eq(draw_message_shown(DRAW_MESSAGE_SECONDS, 1, 1, 0), 0);
}
END_TEST

/* With short epochs an evaluation can follow an error within 0.1 s, so
 * an error stays at least as long as any other message. */
START_TEST(test_draw_message_error_stays_its_time)
{
    ck_assert_int_eq(draw_message_shown(0.0, 1, 1, 0), 1);
    ck_assert_int_eq(draw_message_shown(DRAW_MESSAGE_SECONDS - 0.1, 1, 1, 0),
                     1);
}
END_TEST

START_TEST(test_draw_message_failure_stays)
{
    ck_assert_int_eq(draw_message_shown(3600.0, 1, 1, 1), 1);
    ck_assert_int_eq(draw_message_shown(3600.0, 0, 1, 1), 1);
}
END_TEST

Suite *draw_suite(void)
{
    Suite *s = suite_create("draw");
    TCase *tc;
    int n_sizes = (int)(sizeof layout_sizes / sizeof layout_sizes[0]);

    tc = tcase_create("spark");
    tcase_add_test(tc, test_draw_spark_min_max_scaling);
    tcase_add_test(tc, test_draw_spark_flat_series);
    tcase_add_test(tc, test_draw_spark_nan_left_blank);
    tcase_add_test(tc, test_draw_spark_all_nan);
    tcase_add_test(tc, test_draw_spark_cell_rows);
    tcase_add_test(tc, test_draw_spark_cell_short_ramp);
    tcase_add_test(tc, test_draw_spark_edge_cell_rows);
    tcase_add_test(tc, test_draw_spark_mid_row);
    tcase_add_test(tc, test_draw_resample_short_copies);
    tcase_add_test(tc, test_draw_resample_averages_buckets);
    tcase_add_test(tc, test_draw_resample_nan_bucket);
    tcase_add_test(tc, test_draw_spark_widen_short_series);
    tcase_add_test(tc, test_draw_spark_widen_keeps_long_series);
    suite_add_tcase(s, tc);

    tc = tcase_create("image");
    tcase_add_test(tc, test_draw_shade_ramp_ends);
    tcase_add_test(tc, test_draw_shade_out_of_range);
    tcase_add_test(tc, test_draw_downsample_row_pairs);
    tcase_add_test(tc, test_draw_downsample_full_image);
    suite_add_tcase(s, tc);

    tc = tcase_create("layout");
    tcase_add_loop_test(tc, test_draw_layout_panes_fit_screen, 0,
                        N_SIZES * DRAW_VIEWS);
    tcase_add_loop_test(tc, test_draw_layout_no_overlap, 0,
                        N_SIZES * DRAW_VIEWS);
    tcase_add_loop_test(tc, test_draw_layout_view_panes, 0,
                        N_SIZES * DRAW_VIEWS);
    tcase_add_test(tc, test_draw_layout_views_at_80x24);
    tcase_add_test(tc, test_draw_layout_views_at_132x43);
    tcase_add_test(tc, test_draw_layout_matrix_joins_when_tall);
    tcase_add_test(tc, test_draw_pane_at_hits);
    tcase_add_loop_test(tc, test_draw_layout_pane_sizes, 0, n_sizes);
    tcase_add_test(tc, test_draw_layout_80x24_exact);
    tcase_add_test(tc, test_draw_layout_too_small);
    suite_add_tcase(s, tc);

    tc = tcase_create("numbers");
    tcase_add_test(tc, test_draw_duration_format);
    tcase_add_test(tc, test_draw_duration_unknown);
    tcase_add_test(tc, test_draw_count_fits_width);
    tcase_add_test(tc, test_draw_count_scaled);
    tcase_add_test(tc, test_draw_count_overflow);
    tcase_add_test(tc, test_draw_bar_fill);
    tcase_add_test(tc, test_draw_percent_decimal_when_it_fits);
    tcase_add_test(tc, test_draw_percent_same_shape_at_every_width);
    tcase_add_test(tc, test_draw_text_width_counts_characters);
    tcase_add_test(tc, test_draw_text_width_wide_characters);
    tcase_add_test(tc, test_draw_text_width_c_locale);
    tcase_add_test(tc, test_draw_text_width_controls);
    tcase_add_test(tc, test_draw_text_fit_c_locale);
    tcase_add_test(tc, test_draw_text_cut_marks);
    tcase_add_test(tc, test_draw_text_fit_wide_characters);
    tcase_add_test(tc, test_draw_wrap_line_breaks_at_space);
    tcase_add_test(tc, test_draw_wrap_line_all_fits);
    tcase_add_test(tc, test_draw_wrap_line_splits_long_word);
    tcase_add_test(tc, test_draw_wrap_line_splits_word_after_space);
    tcase_add_test(tc, test_draw_wrap_line_counts_characters);
    tcase_add_test(tc, test_draw_wrap_line_wide_characters);
    tcase_add_test(tc, test_draw_wrap_line_no_columns);
    tcase_add_test(tc, test_draw_hint_fit_all_when_wide);
    tcase_add_test(tc, test_draw_hint_fit_drops_least_important);
    tcase_add_test(tc, test_draw_hint_fit_keeps_help_and_quit);
    tcase_add_test(tc, test_draw_hint_fit_stops_at_first_miss);
    suite_add_tcase(s, tc);

    tc = tcase_create("messages");
    tcase_add_test(tc, test_draw_message_notice_expires);
    tcase_add_test(tc, test_draw_message_error_until_newer_eval);
    tcase_add_test(tc, test_draw_message_error_stays_its_time);
    tcase_add_test(tc, test_draw_message_failure_stays);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_add_test(tc, test_draw_step_clamps);
    tcase_add_test(tc, test_draw_scroll_keeps_selection_visible);
    tcase_add_test(tc, test_draw_heat_levels);
    tcase_add_test(tc, test_draw_points_round_down);
    suite_add_tcase(s, tc);
    return s;
}
