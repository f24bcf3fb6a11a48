/*
 * pane_image: the test-image viewer. The image is drawn top row first
 * with a 10-step ASCII shading ramp. A cell is about twice as tall as
 * wide, so the image takes 28 columns x 14 rows with each pair of pixel
 * rows averaged, or 56 x 28 on large screens with each pixel two columns
 * wide. Below it are the true class and, once the trainer has evaluated
 * the test set, the predicted classes ranked by probability.
 *
 * The viewer walks a list: all test images, or the images of one
 * confusion-matrix cell. A filtered list is rebuilt from every new set of
 * predictions, so it can shrink or grow while training goes on.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "metrics.h"
#include "pane.h"

#define PAGE_STEP 10
/* Probability bars appear when a rank line has this many spare columns. */
#define MIN_BAR_COLS 5

static const char shade_ramp[] = " .:-=+*#%@";
#define SHADE_LEN ((int)sizeof shade_ramp - 1)

static const char *const rank_names[DATASET_CLASSES] = {
    "pred", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th",
};

int pane_image_current(const Ui *ui)
{
    if (ui->view_len <= 0)
        return -1;
    if (ui->filter_true < 0)
        return ui->view_pos;
    return ui->view[ui->view_pos];
}

static int count_cell(const Ui *ui, int t, int p)
{
    const uint8_t *labels = ui->test->labels;
    int count = 0;

    for (int i = 0; i < ui->test->count; i++)
        count += labels[i] == t && ui->predicted[i] == p;
    return count;
}

int pane_image_filter(Ui *ui, int t, int p)
{
    if (!ui->has_predictions)
        return 0;
    int count = count_cell(ui, t, p);
    if (count == 0)
        return 0;

    ui->view_len = draw_cell_filter(ui->test->labels, ui->predicted,
                                    ui->test->count, t, p, ui->view);
    ui->filter_true = t;
    ui->filter_pred = p;
    ui->view_pos = 0;
    ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    return count;
}

void pane_image_unfilter(Ui *ui)
{
    int current = pane_image_current(ui);

    ui->filter_true = ui->filter_pred = -1;
    ui->view_len = ui->test->count;
    ui->view_pos = current >= 0 ? current : 0;
    ui->dirty |= UI_DIRTY(DRAW_IMAGE);
}

void pane_image_refilter(Ui *ui)
{
    if (ui->filter_true < 0)
        return;
    int current = pane_image_current(ui);
    int t = ui->filter_true, p = ui->filter_pred;

    if (count_cell(ui, t, p) == 0) {
        pane_image_unfilter(ui);
        pane_notice(ui, "that cell is empty now; showing all images");
        return;
    }
    ui->view_len = draw_cell_filter(ui->test->labels, ui->predicted,
                                    ui->test->count, t, p, ui->view);

    /* Stay on the same image when it is still in the cell, else keep the
     * position in the list. */
    ui->view_pos = draw_step(ui->view_pos, 0, ui->view_len);
    for (int i = 0; i < ui->view_len; i++) {
        if (ui->view[i] == current) {
            ui->view_pos = i;
            break;
        }
    }
    ui->dirty |= UI_DIRTY(DRAW_IMAGE);
}

static void draw_pixels(WINDOW *w, const Ui *ui, const float *image)
{
    float half[DATASET_PIXELS / 2];
    const float *rows_src = image;
    int rows = DATASET_ROWS;

    if (ui->image_scale == 1) {
        draw_downsample_rows(image, DATASET_ROWS, DATASET_COLS, half);
        rows_src = half;
        rows = DATASET_ROWS / 2;
    }

    wattrset(w, ui->attr[UI_IMAGE]);
    for (int r = 0; r < rows; r++) {
        wmove(w, 1 + r, 1);
        for (int c = 0; c < DATASET_COLS; c++) {
            float v = rows_src[r * DATASET_COLS + c];
            char glyph = shade_ramp[draw_shade_index(v, SHADE_LEN)];
            for (int k = 0; k < ui->image_scale; k++)
                waddch(w, (chtype)(unsigned char)glyph);
        }
    }
    wattrset(w, A_NORMAL);
}

static void draw_title(WINDOW *w, const Ui *ui)
{
    char title[96];
    int position = ui->view_len > 0 ? ui->view_pos + 1 : 0;

    if (ui->filter_true < 0)
        snprintf(title, sizeof title, "Image %d/%d", position, ui->view_len);
    else
        snprintf(title, sizeof title, "%s%s%s %d/%d",
                 dataset_class_names[ui->filter_true], ui->glyph->arrow,
                 dataset_class_names[ui->filter_pred], position,
                 ui->view_len);
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

static void draw_ranks(WINDOW *w, const Ui *ui, int index, int y, int lines)
{
    const float *probs = ui->probs + (size_t)index * DATASET_CLASSES;
    int label = ui->test->labels[index];
    int top[DATASET_CLASSES];
    int k = lines < DATASET_CLASSES ? lines : DATASET_CLASSES;

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

static void draw_labels(WINDOW *w, const Ui *ui, int index, int y)
{
    int lines = getmaxy(w) - y;
    int label = ui->test->labels[index];

    int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "true  ");
    pane_print(w, y, x, ui->attr[UI_VALUE], "%s",
               dataset_class_names[label]);
    if (!ui->has_predictions) {
        pane_print(w, y + 1, 1, ui->attr[UI_LABEL], "pred  ");
        pane_print(w, y + 1, 7, ui->attr[UI_DIM], "pending");
        pane_print(w, y + 2, 1, ui->attr[UI_DIM],
                   "(after the first test run)");
        return;
    }

    int right = ui->predicted[index] == label;
    const char *verdict = right ? "correct" : "wrong";
    pane_print(w, y, getmaxx(w) - 1 - (int)strlen(verdict),
               ui->attr[right ? UI_CORRECT : UI_WRONG], "%s", verdict);
    draw_ranks(w, ui, index, y + 1, lines - 1);
}

void pane_image_draw(WINDOW *w, const Ui *ui)
{
    werase(w);
    draw_title(w, ui);

    int index = pane_image_current(ui);
    if (index < 0) {
        pane_print(w, 1, 1, ui->attr[UI_DIM], "no images");
        return;
    }
    int image_rows = ui->image_scale == 1 ? DATASET_ROWS / 2 : DATASET_ROWS;
    draw_pixels(w, ui, ui->test->images + (size_t)index * DATASET_PIXELS);
    draw_labels(w, ui, index, 1 + image_rows);
}

int pane_image_key(Ui *ui, int key)
{
    int pos = ui->view_pos;

    switch (key) {
    case KEY_LEFT:
        pos = draw_step(pos, -1, ui->view_len);
        break;
    case KEY_RIGHT:
        pos = draw_step(pos, 1, ui->view_len);
        break;
    case KEY_PPAGE:
        pos = draw_step(pos, -PAGE_STEP, ui->view_len);
        break;
    case KEY_NPAGE:
        pos = draw_step(pos, PAGE_STEP, ui->view_len);
        break;
    case KEY_HOME:
        pos = 0;
        break;
    case KEY_END:
        pos = draw_step(ui->view_len, 0, ui->view_len);
        break;
    default:
        return 0;
    }
    if (pos != ui->view_pos) {
        ui->view_pos = pos;
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    }
    return 1;
}
