/*
 * pane_spark: sparklines of the training loss, the training accuracy (both
 * sampled by the trainer every few batches) and the test accuracy (one
 * point per evaluated epoch), each with its latest value. Each series is
 * scaled between its own minimum and maximum, so the height of a
 * sparkline shows the trend, not the absolute value. The history is
 * averaged down to the pane width, so the whole run stays visible. When a
 * series has three rows or more, the pane prints its min and max over the
 * whole run, which the trainer keeps apart from the merged history. A
 * series of one value, such as the test accuracy after one epoch, is a
 * mark at mid height with no min or max. With ASCII glyphs a short series
 * takes up to ASCII_POINT_COLS columns per point, so a run of a few epochs
 * reads as steps rather than as a few stray characters.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "pane.h"

#define LABEL_COLS 12
#define VALUE_COLS 8
#define ASCII_POINT_COLS 3
/* Room for a formatted value, and for a note that contains one. */
#define TEXT_LEN 32
#define NOTE_LEN (TEXT_LEN + 16)

typedef struct {
    const char *label;
    const float *values;
    int n;
    const TrainerRange *range;  /* over the whole run */
    int percent;        /* show values x 100 with a % sign */
    const char *empty;  /* shown before the first point */
    /* The value of a model that the history's last point does not
     * measure, or NULL to show that point. */
    const char *value;
    /* Dim text before the value, or NULL, and a shorter form for a
     * narrow pane. */
    const char *note, *short_note;
} Series;

static void format_value(char *buf, size_t len, float v, int percent)
{
    if (!isfinite(v))
        snprintf(buf, len, "--");
    else if (percent)
        snprintf(buf, len, "%.2f%%", 100 * v);
    else if (fabsf(v) < 1e4f)
        snprintf(buf, len, "%.4f", v);
    else
        /* A diverging loss: 9 characters at most, as "%.4f" below 1e4. */
        snprintf(buf, len, "%.2e", v);
}

static float last_finite(const float *values, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        if (isfinite(values[i]))
            return values[i];
    }
    return NAN;
}

/* Fills VALUE and both notes for the test accuracy when this run has
 * evaluated only the network as loaded. The history's points then all
 * come from the run that saved it, and a checkpoint saved within an
 * epoch, or one whose model gives NaN predictions, differs from the last
 * of them. VALUE is the loaded model's accuracy, "none" when some test
 * images have no prediction. NOTE and SHORT_NOTE give the history's last
 * point, measured at the end of epoch epochs_done, and end in "now" to
 * lead into VALUE. VALUE has room for TEXT_LEN bytes and the notes for
 * NOTE_LEN. The notes are empty when the history has no point, as after
 * a save within the first epoch. Returns 0 when there is nothing to tell
 * apart and the last point can stand. */
static int describe_loaded_test(const TrainerStatus *st, char *value,
                                char *note, char *short_note)
{
    char last[TEXT_LEN];

    if (!st->loaded || !st->has_eval || st->eval_epoch_end)
        return 0;
    if (st->test_nonfinite > 0)
        snprintf(value, TEXT_LEN, "none");
    else
        format_value(value, TEXT_LEN, (float)st->test_acc, 1);
    /* Saved within its first epoch, the loaded run has no curve yet. */
    note[0] = short_note[0] = '\0';
    if (st->n_test_history <= 0)
        return 1;
    format_value(last, sizeof last,
                 last_finite(st->test_acc_history, st->n_test_history), 1);
    if (strcmp(value, last) == 0)
        return 0;
    snprintf(note, NOTE_LEN, "epoch %d %s, now", st->epochs_done, last);
    snprintf(short_note, NOTE_LEN, "ep %d %s, now", st->epochs_done, last);
    return 1;
}

/* Returns 1 when a sparkline of ROWS rows is drawn as its top edge over a
 * fill, and 0 when it stacks the cells of the glyph table's spark[]. */
static int edge_style(const Ui *ui, int rows)
{
    return rows > 1 && ui->glyph->spark_edge[0] != NULL;
}

/* Returns the maximum number of columns of one point of a short series.
 * ASCII glyphs are thin shapes, so a point one column wide reads as a
 * stray character such as "_" or "#". The UTF-8 blocks are solid and read
 * as bars at one column each. Only the ASCII table has edge glyphs. */
static int max_point_cols(const Ui *ui)
{
    return ui->glyph->spark_edge[0] != NULL ? ASCII_POINT_COLS : 1;
}

/* Draws the glyph columns of one series in ROWS rows starting at Y, X. */
static void draw_columns(WINDOW *w, const Ui *ui, const int *levels, int n,
                         int y, int x, int rows)
{
    int edge = edge_style(ui, rows);

    wattrset(w, ui->attr[UI_SPARK]);
    for (int r = 0; r < rows; r++) {
        int from_bottom = rows - 1 - r;
        wmove(w, y + r, x);
        for (int i = 0; i < n; i++) {
            if (edge)
                waddstr(w, ui->glyph->spark_edge[
                               draw_spark_edge_cell(levels[i], from_bottom)]);
            else
                waddstr(w, ui->glyph->spark[draw_spark_cell(
                               levels[i], from_bottom,
                               ui->glyph->spark_levels)]);
        }
    }
    wattrset(w, A_NORMAL);
}

static void draw_series(WINDOW *w, const Ui *ui, const Series *s, int y,
                        int rows)
{
    int width = getmaxx(w);
    int spark_x = 1 + LABEL_COLS;
    int spark_w = width - spark_x - 1 - VALUE_COLS - 1;
    float buf[TRAINER_HISTORY], wide[TRAINER_HISTORY];
    int levels[TRAINER_HISTORY];
    char value[32], lo_text[32], hi_text[32];
    float lo, hi;

    pane_print(w, y, 1, ui->attr[UI_LABEL], "%s", s->label);
    if (spark_w > TRAINER_HISTORY)
        spark_w = TRAINER_HISTORY;
    if (s->n <= 0 || spark_w < 1) {
        pane_print(w, y, spark_x, ui->attr[UI_DIM], "%s", s->empty);
        if (s->value != NULL)
            pane_print(w, y, width - 1 - VALUE_COLS, ui->attr[UI_VALUE],
                       "%*s", VALUE_COLS, s->value);
        return;
    }

    /* The note takes the right end of the sparkline's columns, as long as
     * a few are left for the marks. */
    const char *note = s->note;
    if (note != NULL && spark_w - (int)strlen(note) - 1 < ASCII_POINT_COLS)
        note = s->short_note;
    if (note != NULL && spark_w - (int)strlen(note) - 1 >= ASCII_POINT_COLS) {
        spark_w -= (int)strlen(note) + 1;
        pane_print(w, y, spark_x + spark_w + 1, ui->attr[UI_DIM], "%s",
                   note);
    }

    int points = draw_resample(s->values, s->n, spark_w, buf);
    int n = draw_spark_widen(buf, points, spark_w, max_point_cols(ui), wide);
    int per_row = edge_style(ui, rows) ? DRAW_SPARK_EDGE_LEVELS
                                       : ui->glyph->spark_levels;
    int finite = draw_spark_levels(wide, n, rows * per_row, levels, &lo, &hi);
    /* One value has no trend, and a column at the middle level would
     * read as a bar, so it gets a mark in the middle row. */
    int single = s->n == 1 && finite > 0;

    if (single) {
        int mid_y = y + rows - 1 - draw_spark_mid_row(rows);
        for (int c = 0; c < n; c++)
            pane_print(w, mid_y, spark_x + c, ui->attr[UI_SPARK], "%s",
                       ui->glyph->spark_point);
    } else {
        draw_columns(w, ui, levels, n, y, spark_x, rows);
    }

    if (s->value != NULL)
        snprintf(value, sizeof value, "%s", s->value);
    else
        format_value(value, sizeof value, last_finite(s->values, s->n),
                     s->percent);
    pane_print(w, y, width - 1 - VALUE_COLS, ui->attr[UI_VALUE], "%*s",
               VALUE_COLS, value);

    /* With room for it, the range of the series goes under the label. It
     * comes from the trainer, because the history's merged points and the
     * bucket averages both understate it, more so as the run goes on. */
    if (rows >= 3 && !single) {
        format_value(lo_text, sizeof lo_text, s->range->min, s->percent);
        format_value(hi_text, sizeof hi_text, s->range->max, s->percent);
        pane_print(w, y + 1, 1, ui->attr[UI_DIM], "max %s", hi_text);
        pane_print(w, y + rows - 1, 1, ui->attr[UI_DIM], "min %s", lo_text);
    }
}

void pane_spark_draw(WINDOW *w, const Ui *ui)
{
    const TrainerStatus *st = &ui->status;
    /* A run that trains nothing never fills an empty series. */
    const char *idle = st->epochs_done > 0 || st->loaded_batch > 0
                       ? "no training in this run"
                       : "untrained; no training runs";
    const int trains = st->train_epochs > 0;
    char loaded_value[TEXT_LEN], loaded_note[NOTE_LEN];
    char loaded_short_note[NOTE_LEN];
    int loaded = describe_loaded_test(st, loaded_value, loaded_note,
                                      loaded_short_note);
    /* The max and min beside the curve cover the loaded model's accuracy
     * in the value column too, so that max is never below it. */
    TrainerRange test_range = st->test_acc_range;
    if (loaded && st->test_nonfinite == 0) {
        test_range.min = fminf(test_range.min, (float)st->test_acc);
        test_range.max = fmaxf(test_range.max, (float)st->test_acc);
    }
    const Series series[3] = {
        {"train loss", st->loss_history, st->n_history, &st->loss_range, 0,
         trains ? "waiting for the first batches" : idle, NULL, NULL, NULL},
        {"train acc", st->acc_history, st->n_history, &st->acc_range, 1,
         trains ? "waiting for the first batches" : idle, NULL, NULL, NULL},
        {"test acc", st->test_acc_history, st->n_test_history, &test_range, 1,
         trains ? "one point at the end of each epoch" : idle,
         loaded ? loaded_value : NULL,
         loaded && loaded_note[0] != '\0' ? loaded_note : NULL,
         loaded && loaded_short_note[0] != '\0' ? loaded_short_note : NULL},
    };

    werase(w);
    pane_title(w, ui, "Loss and accuracy", 0);

    /* A blank line between series when there is room for one. */
    int avail = getmaxy(w) - 1;
    int gap = avail >= 3 + 2 ? 1 : 0;
    int rows = (avail - 2 * gap) / 3;
    if (rows < 1)
        return;
    for (int i = 0; i < 3; i++)
        draw_series(w, ui, &series[i], 1 + i * (rows + gap), rows);
}
