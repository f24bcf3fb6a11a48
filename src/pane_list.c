/*
 * pane_list: the explorer list and its pane. The list contains the
 * misclassified test images, most confidently wrong first. After a
 * drill-down from the confusion matrix it contains the images of one cell
 * instead, and after one from the per-class table the mistakes on one
 * true class, in the same order (explore_rank). Each row shows the rank, the test-image
 * number, the true and the predicted class and the probability the
 * network gave its prediction.
 *
 * Enter opens the selected entry in the image viewer and moves the focus
 * there, as Enter on a confusion cell does. From then on the viewer walks
 * the list: the two share list_pos, so moving in either moves both.
 * The list is rebuilt from every new set of predictions, so it shrinks as
 * the network improves. While the viewer follows the list, the selection
 * stays on its image as long as that image is listed; otherwise it keeps
 * its rank.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "explore.h"
#include "pane.h"

#define PAGE_STEP 10
/* Title and column header. */
#define HEADER_LINES 2
/* Rank, image number, two full class names and the probability. */
#define FULL_ROW_COLS (5 + 7 + 2 * 13 + 7)

int pane_list_filter(Ui *ui, int t, int p)
{
    if (!ui->has_predictions)
        return 0;
    ui->list_len = explore_rank(ui->test->labels, ui->predicted, ui->probs,
                                ui->test->count, t, p, ui->list);
    ui->filter_true = t;
    ui->filter_pred = p;
    ui->list_pos = 0;
    ui->list_top = 0;
    ui->dirty |= UI_DIRTY(DRAW_MISTAKES) | UI_DIRTY(DRAW_IMAGE);
    return ui->list_len;
}

void pane_list_refresh(Ui *ui)
{
    int selected = ui->list_len > 0 ? ui->list[ui->list_pos] : -1;

    ui->list_len = explore_rank(ui->test->labels, ui->predicted, ui->probs,
                                ui->test->count, ui->filter_true,
                                ui->filter_pred, ui->list);
    if (ui->list_len == 0 && ui->filter_true >= 0) {
        /* The cell or the class's mistakes emptied: fall back to all
         * mistakes. */
        int one_class = ui->filter_pred < 0;

        pane_list_filter(ui, -1, -1);
        if (ui->follow_list)
            pane_image_show_all(ui);
        pane_notice(ui, one_class
                        ? "that class has no mistakes now; listing all mistakes"
                        : "that cell is empty now; listing all mistakes");
        return;
    }
    /* The viewer stays on its image while it is listed. Otherwise the
     * selection keeps its rank, as in a top-style list. */
    ui->list_pos = draw_step(ui->list_pos, 0, ui->list_len);
    for (int i = 0; ui->follow_list && i < ui->list_len; i++) {
        if (ui->list[i] == selected) {
            ui->list_pos = i;
            break;
        }
    }
    if (ui->follow_list && ui->list_len == 0)
        pane_image_show_all(ui);
    ui->dirty |= UI_DIRTY(DRAW_MISTAKES) | UI_DIRTY(DRAW_IMAGE);
}

/* Returns the number of images of the list's true class, or of every
 * class, that have no prediction and so are in no list. A cell's list
 * leaves out no such image, since it names a predicted class. */
static int count_unpredicted(const Ui *ui)
{
    return ui->filter_pred < 0 ? pane_classes_unpredicted(ui, ui->filter_true)
                               : 0;
}

/* Writes the text for a list without entries to BUF. */
static void format_empty(const Ui *ui, char *buf, size_t len)
{
    int unpredicted = count_unpredicted(ui);

    if (unpredicted > 0)
        snprintf(buf, len, "no misclassified test images, but %d %s no "
                 "prediction (NaN)", unpredicted,
                 unpredicted == 1 ? "has" : "have");
    else
        snprintf(buf, len, "no misclassified test images");
}

void pane_list_open(Ui *ui)
{
    char empty[96];

    if (ui->list_len == 0 && !ui->has_predictions) {
        pane_notice(ui, "no predictions yet: wait for the first evaluation");
        return;
    }
    if (ui->list_len == 0) {
        format_empty(ui, empty, sizeof empty);
        pane_notice(ui, empty);
        return;
    }
    pane_image_follow_list(ui);
}

/* Returns the rows of entries an H-line pane shows. */
static int entry_rows(int h)
{
    return h - HEADER_LINES > 0 ? h - HEADER_LINES : 0;
}

/* Returns the first entry shown: list_top, moved as little as needed to
 * keep the selection visible. */
static int first_shown(const Ui *ui, int h)
{
    return draw_scroll(ui->list_top, ui->list_pos, entry_rows(h),
                       ui->list_len);
}

void pane_list_scroll(Ui *ui, int h)
{
    ui->list_top = first_shown(ui, h);
}

int pane_list_entry_at(const Ui *ui, int h, int y)
{
    int entry = first_shown(ui, h) + y - HEADER_LINES;

    if (y < HEADER_LINES || entry >= ui->list_len)
        return -1;
    return entry;
}

static void draw_title(WINDOW *w, const Ui *ui)
{
    char title[128], unpredicted[48] = "";
    int count = count_unpredicted(ui);

    /* The count explains a recall below 100% for a class with few or no
     * mistakes listed. */
    if (count > 0)
        snprintf(unpredicted, sizeof unpredicted, ", %d without prediction",
                 count);
    if (ui->filter_true < 0 && !ui->has_predictions)
        snprintf(title, sizeof title, "Mistakes, most confident first");
    else if (ui->filter_true < 0)
        snprintf(title, sizeof title, "Mistakes: %d%s, most confident first",
                 ui->list_len, unpredicted);
    else if (ui->filter_pred < 0)
        snprintf(title, sizeof title,
                 "%s mistakes: %d%s, most confident first",
                 dataset_class_names[ui->filter_true], ui->list_len,
                 unpredicted);
    else
        snprintf(title, sizeof title, "%s %s%s%s: %d",
                 ui->filter_true == ui->filter_pred ? "Correct" : "Cell",
                 dataset_class_names[ui->filter_true], ui->glyph->arrow,
                 dataset_class_names[ui->filter_pred], ui->list_len);
    pane_title(w, ui, title, ui->focus == DRAW_MISTAKES);
}

void pane_list_draw(WINDOW *w, const Ui *ui)
{
    int full = getmaxx(w) >= FULL_ROW_COLS;
    const char *const *names = full ? dataset_class_names : dataset_class_short;
    int name_w = full ? 12 : 6;

    werase(w);
    draw_title(w, ui);
    if (!ui->has_predictions) {
        pane_print_pending(w, ui, 1);
        return;
    }
    pane_print(w, 1, 1, ui->attr[UI_LABEL], "%5s %6s %-*s %-*s %5s", "#",
               "image", name_w, "true", name_w, "predicted", "prob");

    int rows = entry_rows(getmaxy(w));
    int top = first_shown(ui, getmaxy(w));
    int focused = ui->focus == DRAW_MISTAKES;
    for (int r = 0; r < rows && top + r < ui->list_len; r++) {
        int entry = top + r;
        int index = ui->list[entry];
        int pred = ui->predicted[index];
        int label = ui->test->labels[index];
        float prob = ui->probs[(size_t)index * DATASET_CLASSES + pred];
        UiElement e = UI_NORMAL;

        if (entry == ui->list_pos)
            e = focused ? UI_CURSOR : UI_SELECTED;
        /* The row is padded to the pane width so the cursor reads as a
         * bar. */
        pane_print(w, HEADER_LINES + r, 0, ui->attr[e],
                   " %5d %6d %-*s %-*s %5.1f%%%*s", entry + 1, index + 1,
                   name_w, names[label], name_w, names[pred], 100 * prob,
                   getmaxx(w), "");
    }
    if (ui->list_len == 0) {
        char empty[96];

        format_empty(ui, empty, sizeof empty);
        pane_print(w, HEADER_LINES, 1, ui->attr[UI_DIM], "%s", empty);
    }
}

int pane_list_key(Ui *ui, int key)
{
    int pos = ui->list_pos;

    switch (key) {
    case KEY_UP:
        pos = draw_step(pos, -1, ui->list_len);
        break;
    case KEY_DOWN:
        pos = draw_step(pos, 1, ui->list_len);
        break;
    case KEY_PPAGE:
        pos = draw_step(pos, -PAGE_STEP, ui->list_len);
        break;
    case KEY_NPAGE:
        pos = draw_step(pos, PAGE_STEP, ui->list_len);
        break;
    case KEY_HOME:
        pos = 0;
        break;
    case KEY_END:
        pos = draw_step(ui->list_len, 0, ui->list_len);
        break;
    case KEY_ENTER:
    case '\n':
    case '\r':
        pane_list_open(ui);
        return 1;
    default:
        return 0;
    }
    if (pos != ui->list_pos) {
        ui->list_pos = pos;
        ui->dirty |= UI_DIRTY(DRAW_MISTAKES);
        if (ui->follow_list && !ui->show_train)
            ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    }
    return 1;
}
