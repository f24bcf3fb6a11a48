/*
 * pane_image: the image viewer. The image is drawn top row first with a
 * 10-step ASCII shading ramp. A cell is about twice as tall as wide, so
 * the image takes 28 columns x 14 rows with each pair of pixel rows
 * averaged, or 56 x 28 on large screens with each pixel two columns wide.
 * Below it are the true class and the predicted classes ranked by
 * probability: for test images from the latest evaluation, for training
 * images from the occlusion request, which runs the current weights.
 *
 * The viewer walks one of three lists: all test images, the explorer list
 * (all mistakes, those on one class or one confusion cell, shared with the
 * list pane), or all training images. Each keeps its own position, so switching back returns
 * to the same image.
 *
 * With the occlusion overlay on, each cell's background shows how far
 * masking the patches around it cuts the probability of the predicted
 * class. Two steps are relative to the largest cut in the map, and a
 * third attribute marks where masking raises the probability. Two legend
 * lines, which give the cuts in percentage points, replace the last
 * ranks.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "explore.h"
#include "metrics.h"
#include "pane.h"

#define PAGE_STEP 10
/* Probability bars appear when a rank line has this many spare columns. */
#define MIN_BAR_COLS 5
#define LEGEND_LINES 2
/* Text columns from which the legend uses its longer wording. */
#define LEGEND_WIDE_COLS 52

static const char shade_ramp[] = " .:-=+*#%@";
#define SHADE_LEN ((int)sizeof shade_ramp - 1)

static const char *const rank_names[DATASET_CLASSES] = {
    "pred", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th",
};

/* Attributes of draw_heat_level's results -1..2. */
static const UiElement heat_element[4] = {
    UI_HEAT_RAISE, UI_IMAGE, UI_HEAT_LOW, UI_HEAT_HIGH,
};

/* Images are stored as bytes and converted here, the one place that
 * reads them for the UI. */
void pane_image_pixels(const Dataset *ds, int index, float *out)
{
    dataset_copy_image(ds, index, out);
}

const Dataset *pane_image_set(const Ui *ui)
{
    return ui->show_train ? ui->train : ui->test;
}

/* Returns the position the viewer keys move and stores the length of
 * its list in *LEN. */
static int *viewer_position(Ui *ui, int *len)
{
    if (ui->show_train) {
        *len = ui->train->count;
        return &ui->train_pos;
    }
    if (ui->follow_list) {
        *len = ui->list_len;
        return &ui->list_pos;
    }
    *len = ui->test->count;
    return &ui->test_pos;
}

/* Returns the viewer's position and stores the length of its list in
 * *LEN, choosing the list as viewer_position does. */
static int viewer_read(const Ui *ui, int *len)
{
    if (ui->show_train) {
        *len = ui->train->count;
        return ui->train_pos;
    }
    if (ui->follow_list) {
        *len = ui->list_len;
        return ui->list_pos;
    }
    *len = ui->test->count;
    return ui->test_pos;
}

int pane_image_current(const Ui *ui)
{
    int len;
    int pos = viewer_read(ui, &len);

    if (len <= 0)
        return -1;
    return ui->follow_list && !ui->show_train ? ui->list[pos] : pos;
}

void pane_image_toggle_set(Ui *ui)
{
    if (ui->train->count == 0) {
        pane_notice(ui, "the training set is not loaded");
        return;
    }
    ui->show_train = !ui->show_train;
    if (!ui->show_train)
        pane_notice(ui, ui->follow_list ? "back to the list" : "test images");
    else if (ui->follow_list)
        pane_notice(ui, "training images (t: back to the list)");
    else
        pane_notice(ui, "training images (t: back to test)");
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_HINT);
}

void pane_image_show_all(Ui *ui)
{
    /* The test image in view stays in view; over the training images,
     * that is the one the list was on. */
    if (!ui->show_train) {
        int current = pane_image_current(ui);
        if (current >= 0)
            ui->test_pos = current;
    } else {
        if (ui->follow_list && ui->list_len > 0)
            ui->test_pos = ui->list[ui->list_pos];
        /* Replaces "training images (t: back to ...)". */
        pane_notice(ui, "all test images");
    }
    ui->show_train = 0;
    ui->follow_list = 0;
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_MISTAKES)
                 | UI_DIRTY(DRAW_HINT);
}

const char *pane_image_go_unit(const Ui *ui)
{
    return ui->follow_list && !ui->show_train ? "entry" : "image";
}

int pane_image_go(Ui *ui, long number)
{
    int len;
    int *position = viewer_position(ui, &len);

    if (number < 1 || number > len) {
        int in_list = position == &ui->list_pos;
        const char *unit = in_list ? "entry" : "image";
        const char *units = in_list ? "entries" : "images";
        char msg[sizeof ui->notice];

        if (len == 0)
            snprintf(msg, sizeof msg, "no %s %ld: there are no %s", unit,
                     number, units);
        else
            snprintf(msg, sizeof msg, "no %s %ld: %s are 1 to %d", unit,
                     number, units, len);
        pane_notice(ui, msg);
        return -1;
    }
    *position = (int)(number - 1);
    ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    if (position == &ui->list_pos)
        ui->dirty |= UI_DIRTY(DRAW_MISTAKES);
    return 0;
}

void pane_image_follow_list(Ui *ui)
{
    if (ui->focus != DRAW_IMAGE)
        ui->list_opener = ui->focus;
    /* Replaces "training images (t: back to ...)", which would be out of
     * date. */
    if (ui->show_train)
        pane_notice(ui, "back to the list");
    ui->follow_list = 1;
    ui->show_train = 0;
    ui->focus = DRAW_IMAGE;
    ui->dirty = UI_DIRTY_ALL;
}

void pane_image_sync_overlay(Ui *ui)
{
    if (ui->occlusion == NULL)
        return;
    if (!ui->overlay_on) {
        if (ui->overlay != OVERLAY_OFF)
            occlusion_cancel(ui->occlusion);
        ui->overlay = OVERLAY_OFF;
        return;
    }

    int index = pane_image_current(ui);
    if (index < 0)
        return;
    if (ui->overlay == OVERLAY_OFF || index != ui->overlay_index
        || ui->show_train != ui->overlay_train
        || ui->pred_generation != ui->overlay_generation) {
        float pixels[DATASET_PIXELS];

        pane_image_pixels(pane_image_set(ui), index, pixels);
        /* Ids are nonzero; 0 means "no request" to the worker. */
        if (++ui->overlay_id == 0)
            ui->overlay_id = 1;
        occlusion_request(ui->occlusion, ui->overlay_id, pixels);
        ui->overlay = OVERLAY_COMPUTING;
        ui->overlay_index = index;
        ui->overlay_train = ui->show_train;
        ui->overlay_generation = ui->pred_generation;
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
        return;
    }
    if (ui->overlay == OVERLAY_COMPUTING
        && occlusion_result(ui->occlusion, ui->overlay_id,
                            &ui->overlay_result)) {
        ui->overlay = OVERLAY_READY;
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    }
}

/* ---------------------------------------------------------------- drawing */

/* Returns the overlay result when it belongs to the image shown. */
static const OcclusionResult *overlay_for(const Ui *ui, int index)
{
    if (!ui->overlay_on || ui->overlay != OVERLAY_READY
        || ui->overlay_index != index || ui->overlay_train != ui->show_train)
        return NULL;
    return &ui->overlay_result;
}

static void draw_pixels(WINDOW *w, const Ui *ui, const float *image,
                        const OcclusionResult *heat)
{
    float half[DATASET_PIXELS / 2], heat_half[DATASET_PIXELS / 2];
    const float *rows_src = image;
    /* An image without a prediction has no map to draw. */
    const float *map = heat != NULL && heat->target >= 0 ? heat->map : NULL;
    int rows = DATASET_ROWS;

    if (ui->image_scale == 1) {
        draw_downsample_rows(image, DATASET_ROWS, DATASET_COLS, half);
        rows_src = half;
        if (map != NULL) {
            draw_downsample_rows(map, DATASET_ROWS, DATASET_COLS, heat_half);
            map = heat_half;
        }
        rows = DATASET_ROWS / 2;
    }

    for (int r = 0; r < rows; r++) {
        wmove(w, 1 + r, 1);
        for (int c = 0; c < DATASET_COLS; c++) {
            float v = rows_src[r * DATASET_COLS + c];
            char glyph = shade_ramp[draw_shade_index(v, SHADE_LEN)];
            UiElement e = UI_IMAGE;
            if (map != NULL)
                e = heat_element[1 + draw_heat_level(map[r * DATASET_COLS + c],
                                                     heat->max_drop)];
            wattrset(w, ui->attr[e]);
            for (int k = 0; k < ui->image_scale; k++)
                waddch(w, (chtype)(unsigned char)glyph);
        }
    }
    wattrset(w, A_NORMAL);
}

/* Writes into TITLE the viewer's title while it walks entry POS of the
 * LEN in the explorer list, such as "Shirt→T-shirt/top 1/265, image 17",
 * "Shirt mistake 1/412, image 17" or "Mistake 1/2560, image 17". The
 * singular and the "/" make the number read as a position, not a count.
 * The image number goes last but stays longest: to fit ROOM columns the
 * classes get their short names first, then the list length goes, which
 * leaves "Shi mistake 2, image 2857" or "Shi→Tsh #2, image 17". When even
 * that is too wide, the title has the short names and the list length
 * but no image number. */
static void format_list_title(const Ui *ui, int pos, int len, int room,
                              char *title, size_t size)
{
    int position = len > 0 ? pos + 1 : 0;
    char count[32];

    for (int form = 0; form < 4; form++) {
        const char *const *names = form == 0 ? dataset_class_names
                                             : dataset_class_short;
        int with_image = form < 3 && len > 0;
        int cell = ui->filter_true >= 0 && ui->filter_pred >= 0;

        /* A cell's title has no noun before the number, so "#" marks
         * it as a position. */
        if (form == 2)
            snprintf(count, sizeof count, "%s%d", cell ? "#" : "", position);
        else
            snprintf(count, sizeof count, "%d/%d", position, len);
        if (ui->filter_true < 0)
            snprintf(title, size, "Mistake %s", count);
        else if (!cell)
            snprintf(title, size, "%s mistake %s", names[ui->filter_true],
                     count);
        else
            snprintf(title, size, "%s%s%s %s", names[ui->filter_true],
                     ui->glyph->arrow, names[ui->filter_pred], count);
        if (with_image) {
            size_t used = strlen(title);

            snprintf(title + used, size - used, ", image %d",
                     ui->list[pos] + 1);
        }
        if (draw_text_width(title) <= room)
            return;
    }
}

static void draw_title(WINDOW *w, const Ui *ui)
{
    char title[96];
    int len;
    int pos = viewer_read(ui, &len);
    int position = len > 0 ? pos + 1 : 0;

    if (ui->show_train)
        snprintf(title, sizeof title, "Train %d/%d", position, len);
    else if (!ui->follow_list)
        snprintf(title, sizeof title, "Test %d/%d", position, len);
    else
        format_list_title(ui, pos, len, getmaxx(w) - 2, title, sizeof title);
    pane_title(w, ui, title, ui->focus == DRAW_IMAGE);
}

/* Draws a probability bar from X to the right margin when it has room. */
static void draw_prob_bar(WINDOW *w, const Ui *ui, int y, int x, float prob)
{
    int bar_w = getmaxx(w) - 1 - x;
    if (bar_w < MIN_BAR_COLS)
        return;
    int fill = draw_bar_fill(prob, bar_w);
    wmove(w, y, x);
    wattrset(w, ui->attr[UI_BAR_DONE]);
    for (int i = 0; i < fill; i++)
        waddstr(w, ui->glyph->bar_done);
    wattrset(w, A_NORMAL);
}

/* Returns 1 when every one of the DATASET_CLASSES values at PROBS is
 * finite, so that they rank the classes. */
static int probs_finite(const float *probs)
{
    for (int c = 0; c < DATASET_CLASSES; c++)
        if (!isfinite(probs[c]))
            return 0;
    return 1;
}

/* Draws the classes ranked by PROBS from line Y on, or one line saying
 * that NaN probabilities leave the image without a prediction. */
static void draw_ranks(WINDOW *w, const Ui *ui, const float *probs, int label,
                       int y, int lines)
{
    int top[DATASET_CLASSES];
    int k = lines < DATASET_CLASSES ? lines : DATASET_CLASSES;

    if (k <= 0)
        return;
    if (!probs_finite(probs)) {
        int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "%-5s ",
                           rank_names[0]);
        pane_print(w, y, x, ui->attr[UI_WRONG], "no prediction (NaN)");
        return;
    }
    metrics_top_k(probs, DATASET_CLASSES, k, top);
    for (int i = 0; i < k; i++) {
        UiElement e = i > 0 ? UI_NORMAL
                            : top[0] == label ? UI_CORRECT : UI_WRONG;
        int x = pane_print(w, y + i, 1, ui->attr[UI_LABEL], "%-5s ",
                           rank_names[i]);
        x = pane_print(w, y + i, x, ui->attr[e], "%-11s",
                       dataset_class_names[top[i]]);
        x = pane_print(w, y + i, x, ui->attr[UI_VALUE], " %5.1f%%",
                       100 * probs[top[i]]);
        draw_prob_bar(w, ui, y + i, x + 2, probs[top[i]]);
    }
}

/* Draws a sample of highlight E at Y, X and then TEXT. Returns the next
 * column. With colours the sample is two blank cells in its colour.
 * Without, blank cells that are underlined or bold show nothing, so TEXT
 * itself, up to its trailing spaces, takes the highlight instead, one
 * column narrower. */
static int draw_swatch(WINDOW *w, const Ui *ui, int y, int x, UiElement e,
                       const char *text)
{
    if (!ui->mono) {
        x = pane_print(w, y, x, ui->attr[e], "  ");
        return pane_print(w, y, x, ui->attr[UI_NORMAL], "%s", text);
    }
    int len = (int)strlen(text);

    while (len > 0 && text[len - 1] == ' ')
        len--;
    x = pane_print(w, y, x + 1, ui->attr[e], "%.*s", len, text);
    return pane_print(w, y, x, ui->attr[UI_NORMAL], "%s", text + len);
}

/* Formats a threshold of POINTS percentage points as PREFIX, the number
 * from draw_format_points and SUFFIX. */
static void format_points(char *buf, size_t len, const char *prefix,
                          float points, const char *suffix)
{
    char number[16];

    draw_format_points(points, number, sizeof number);
    snprintf(buf, len, "%s%s%s", prefix, number, suffix);
}

/* Draws the two legend lines of the overlay at Y. The first names the
 * class whose probability the map follows, by the full name the rank
 * lines use. The second shows each highlight and how many percentage
 * points masking the patch there takes off that probability. The two
 * lines read as one sentence. At 80 columns the pane has 29 columns of
 * text: "masking cuts T-shirt/top by", 27 with the longest class name,
 * then ">9.9 >4.0 points raises" with 2 columns per highlight, 29 in all
 * because a threshold takes at most 3 characters. Without colours the
 * samples take 1 column each (see draw_swatch). For an image without a
 * prediction, the lines report that there is nothing to explain. */
static void draw_legend(WINDOW *w, const Ui *ui, int y,
                        const OcclusionResult *heat)
{
    if (heat == NULL) {
        pane_print(w, y, 1, ui->attr[UI_DIM], "occlusion: computing...");
        return;
    }
    if (heat->target < 0) {
        pane_print(w, y, 1, ui->attr[UI_LABEL], "no prediction to explain:");
        pane_print(w, y + 1, 1, ui->attr[UI_DIM], "its probabilities are NaN");
        return;
    }
    const char *name = dataset_class_names[heat->target];
    int wide = getmaxx(w) - 2 >= LEGEND_WIDE_COLS;

    int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "%s",
                       wide ? "masking a patch cuts the " : "masking cuts ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%s", name);
    pane_print(w, y, x, ui->attr[UI_LABEL], "%s",
               wide ? " probability by" : " by");
    if (heat->max_drop < DRAW_HEAT_FLOOR) {
        pane_print(w, y + 1, 1, ui->attr[UI_DIM],
                   "less than %.0f point anywhere", 100 * DRAW_HEAT_FLOOR);
        return;
    }
    /* The thresholds of draw_heat_level: half and a fifth of the
     * largest cut, in percentage points. */
    char text[32];
    format_points(text, sizeof text, wide ? "over " : ">",
                  50 * heat->max_drop, wide ? " points " : " ");
    x = draw_swatch(w, ui, y + 1, 1, UI_HEAT_HIGH, text);
    format_points(text, sizeof text, wide ? "over " : ">",
                  20 * heat->max_drop, " points ");
    x = draw_swatch(w, ui, y + 1, x, UI_HEAT_LOW, text);
    draw_swatch(w, ui, y + 1, x, UI_HEAT_RAISE,
                wide ? "raises it instead" : "raises");
}

static void draw_labels(WINDOW *w, const Ui *ui, int index, int y)
{
    const Dataset *ds = pane_image_set(ui);
    const OcclusionResult *heat = overlay_for(ui, index);
    int lines = getmaxy(w) - y - (ui->overlay_on ? LEGEND_LINES : 0);
    int label = ds->labels[index];

    int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "true  ");
    pane_print(w, y, x, ui->attr[UI_VALUE], "%s",
               dataset_class_names[label]);
    if (ui->overlay_on)
        draw_legend(w, ui, getmaxy(w) - LEGEND_LINES, heat);

    if (!ui->show_train && ui->has_predictions) {
        int right = ui->predicted[index] == label;
        const char *verdict = right ? "correct" : "wrong";
        /* The ranks below show why an image has no prediction. */
        if (ui->predicted[index] != METRICS_NO_PREDICTION)
            pane_print(w, y, getmaxx(w) - 1 - (int)strlen(verdict),
                       ui->attr[right ? UI_CORRECT : UI_WRONG], "%s",
                       verdict);
        draw_ranks(w, ui, ui->probs + (size_t)index * DATASET_CLASSES, label,
                   y + 1, lines - 1);
    } else if (heat != NULL) {
        /* The occlusion request predicted it with the current weights. */
        draw_ranks(w, ui, heat->probs, label, y + 1, lines - 1);
    } else if (ui->overlay_on) {
        /* The occlusion request is running, as the legend's line shows.
         * The hints below would overlap that line. */
        if (!ui->show_train && lines >= 2) {
            pane_print(w, y + 1, 1, ui->attr[UI_LABEL], "pred  ");
            pane_print(w, y + 1, 7, ui->attr[UI_DIM], "pending");
        }
    } else if (ui->show_train) {
        pane_print(w, y + 1, 1, ui->attr[UI_DIM],
                   "o predicts it (and shows");
        pane_print(w, y + 2, 1, ui->attr[UI_DIM], "the occlusion overlay)");
    } else {
        pane_print(w, y + 1, 1, ui->attr[UI_LABEL], "pred  ");
        pane_print(w, y + 1, 7, ui->attr[UI_DIM], "pending");
        pane_print(w, y + 2, 1, ui->attr[UI_DIM], "o predicts it now");
    }
}

void pane_image_draw(WINDOW *w, const Ui *ui)
{
    float pixels[DATASET_PIXELS];

    werase(w);
    draw_title(w, ui);

    int index = pane_image_current(ui);
    if (index < 0) {
        pane_print(w, 1, 1, ui->attr[UI_DIM], "no images");
        return;
    }
    int image_rows = ui->image_scale == 1 ? DATASET_ROWS / 2 : DATASET_ROWS;
    pane_image_pixels(pane_image_set(ui), index, pixels);
    draw_pixels(w, ui, pixels, overlay_for(ui, index));
    draw_labels(w, ui, index, 1 + image_rows);
}

int pane_image_key(Ui *ui, int key)
{
    int len;
    int *position = viewer_position(ui, &len);
    int pos = *position;

    /* Up and Down step too, so that they go on walking a list after
     * Enter moved the focus here from the list pane. */
    switch (key) {
    case KEY_LEFT:
    case KEY_UP:
        pos = draw_step(pos, -1, len);
        break;
    case KEY_RIGHT:
    case KEY_DOWN:
        pos = draw_step(pos, 1, len);
        break;
    case KEY_PPAGE:
        pos = draw_step(pos, -PAGE_STEP, len);
        break;
    case KEY_NPAGE:
        pos = draw_step(pos, PAGE_STEP, len);
        break;
    case KEY_HOME:
        pos = 0;
        break;
    case KEY_END:
        pos = draw_step(len, 0, len);
        break;
    default:
        return 0;
    }
    if (pos != *position) {
        *position = pos;
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
        /* In the list, the list pane's selection moves along. */
        if (position == &ui->list_pos)
            ui->dirty |= UI_DIRTY(DRAW_MISTAKES);
    }
    return 1;
}
