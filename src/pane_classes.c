/*
 * pane_classes: precision, recall, F1 and support of each class from the
 * latest test evaluation, in percent. Up to three classes with the lowest
 * F1, all below the mean F1, are marked with "!" (explore_weakest). In
 * short runs of the default network the marks fell on Shirt, Pullover and
 * Coat, which the network confuses with each other and with T-shirt/top.
 * Wide panes add the class each one is most often mistaken for, with its
 * share of the row. Every number but the support is a percentage, which
 * the title states once, so the cells carry no % sign.
 *
 * A cursor moves over the classes while the pane has the focus. Enter, or
 * a click on a class, makes the explorer list the misclassified test
 * images of that true class, most confidently wrong first, and opens the
 * first of them in the image viewer, which takes the focus. Esc gives the
 * focus back to the table. Enter lists all of the class's mistakes also
 * where the "most confused with" column is shown, so that the key does
 * the same at every width; Enter on that cell of the confusion matrix
 * lists one kind of mistake only.
 */
#include "config.h"

#include <stdio.h>

#include "draw.h"
#include "explore.h"
#include "metrics.h"
#include "pane.h"

#define MAX_MARKED 3
/* Marker, class name and the four numeric columns. */
#define TABLE_COLS (2 + 12 + 6 + 7 + 7 + 8)
/* "  Shirt        27.0" after the table. */
#define CONFUSED_COLS 20
/* Title and column header above the class rows. */
#define HEADER_LINES 2

/* Returns the class that true class T is most often predicted as, other
 * than T, and its share of the row in *SHARE; -1 when there is none. */
static int most_confused(const long confusion[DATASET_CLASSES][DATASET_CLASSES],
                         int t, double *share)
{
    long total = 0;
    int best = -1;

    for (int p = 0; p < DATASET_CLASSES; p++) {
        total += confusion[t][p];
        if (p != t && confusion[t][p] > 0
            && (best < 0 || confusion[t][p] > confusion[t][best]))
            best = p;
    }
    *share = best >= 0 ? (double)confusion[t][best] / (double)total : 0.0;
    return best;
}

/* Column layout of the table, chosen from the pane width. */
typedef struct {
    int name_w;  /* width of the class-name column */
    int full;    /* nonzero: full class names, else abbreviations */
    int wide;    /* nonzero: the "most confused with" column fits */
} Columns;

static Columns columns_for(int width)
{
    Columns col;

    col.full = width >= TABLE_COLS + 2;
    col.name_w = col.full ? 12 : 6;
    col.wide = width >= TABLE_COLS + CONFUSED_COLS + 2;
    return col;
}

/* Draws the row of class C. The cursor row is drawn in the cursor's
 * attribute across the whole pane width, as the mistakes list draws its
 * selection. */
static void draw_row(WINDOW *w, const Ui *ui, const Columns *col, int c,
                     const ClassMetrics *m, int marked)
{
    const long (*confusion)[DATASET_CLASSES] =
        (const long (*)[DATASET_CLASSES])ui->status.confusion;
    int y = HEADER_LINES + c;
    int cursor = ui->focus == DRAW_CLASSES && c == ui->cursor_class;
    attr_t weak = ui->attr[cursor ? UI_CURSOR : UI_WEAK];
    attr_t label = ui->attr[cursor ? UI_CURSOR : UI_LABEL];
    attr_t value = ui->attr[cursor ? UI_CURSOR : UI_VALUE];
    attr_t normal = ui->attr[cursor ? UI_CURSOR : UI_NORMAL];

    if (cursor)
        pane_print(w, y, 0, normal, "%*s", getmaxx(w), "");
    if (marked)
        pane_print(w, y, 0, weak, " !");
    int x = pane_print(w, y, 2, marked ? weak : label, "%-*s", col->name_w,
                       col->full ? dataset_class_names[c]
                                 : dataset_class_short[c]);
    x = pane_print(w, y, x, value, " %5.1f %6.1f %6.1f",
                   100 * m[c].precision, 100 * m[c].recall, 100 * m[c].f1);
    x = pane_print(w, y, x, normal, " %7ld", m[c].support);

    double share;
    int other = col->wide ? most_confused(confusion, c, &share) : -1;
    if (other >= 0)
        pane_print(w, y, x, normal, "  %-12s%6.1f",
                   dataset_class_names[other], 100 * share);
}

void pane_classes_draw(WINDOW *w, const Ui *ui)
{
    const TrainerStatus *st = &ui->status;
    ClassMetrics m[DATASET_CLASSES];
    int marked[DATASET_CLASSES];
    Columns col = columns_for(getmaxx(w));
    double f1_sum = 0.0;

    werase(w);
    pane_title(w, ui, "Per-class metrics (test set, %)",
               ui->focus == DRAW_CLASSES);
    if (!st->has_eval) {
        pane_print_pending(w, ui, 1);
        return;
    }
    metrics_per_class((const long (*)[DATASET_CLASSES])st->confusion,
                      st->test_unpredicted, m);
    explore_weakest(m, DATASET_CLASSES, MAX_MARKED, marked);

    int x = pane_print(w, 1, 2, ui->attr[UI_LABEL], "%-*s %5s %6s %6s %7s",
                       col.name_w, "class", "prec", "recall", "F1",
                       "support");
    if (col.wide)
        pane_print(w, 1, x, ui->attr[UI_LABEL], "  most confused with");

    for (int c = 0; c < DATASET_CLASSES; c++) {
        f1_sum += m[c].f1;
        draw_row(w, ui, &col, c, m, marked[c]);
    }
    int y = HEADER_LINES + DATASET_CLASSES;
    x = pane_print(w, y, 1, ui->attr[UI_LABEL], "mean F1 ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%.1f",
                   100 * f1_sum / DATASET_CLASSES);
    pane_print(w, y, x, ui->attr[UI_DIM], "   ! lowest %d F1 if below mean",
               MAX_MARKED);
}

int pane_classes_row_at(int y)
{
    if (y < HEADER_LINES || y >= HEADER_LINES + DATASET_CLASSES)
        return -1;
    return y - HEADER_LINES;
}

int pane_classes_mistakes(const Ui *ui, int c)
{
    int count = 0;

    if (!ui->has_predictions)
        return 0;
    /* Images without a prediction are left out, as in the list that
     * pane_classes_open shows. */
    for (int i = 0; i < ui->test->count; i++)
        count += ui->test->labels[i] == c && ui->predicted[i] != c
                 && ui->predicted[i] != METRICS_NO_PREDICTION;
    return count;
}

int pane_classes_unpredicted(const Ui *ui, int c)
{
    int count = 0;

    if (!ui->has_predictions)
        return 0;
    for (int i = 0; i < ui->test->count; i++)
        count += (c < 0 || ui->test->labels[i] == c)
                 && ui->predicted[i] == METRICS_NO_PREDICTION;
    return count;
}

void pane_classes_open(Ui *ui, int c)
{
    char msg[128];

    if (!ui->has_predictions) {
        pane_notice(ui, "no predictions yet: wait for the first evaluation");
        return;
    }
    if (pane_classes_mistakes(ui, c) == 0) {
        /* The recall of such a class is below 100% although no image of
         * it is misclassified. */
        int unpredicted = pane_classes_unpredicted(ui, c);

        if (unpredicted > 0)
            snprintf(msg, sizeof msg, "no misclassified test images of %s, "
                     "but %d %s no prediction (NaN)", dataset_class_names[c],
                     unpredicted, unpredicted == 1 ? "has" : "have");
        else
            snprintf(msg, sizeof msg, "no misclassified test images of %s",
                     dataset_class_names[c]);
        pane_notice(ui, msg);
        return;
    }
    pane_list_filter(ui, c, -1);
    pane_image_follow_list(ui);
}

int pane_classes_key(Ui *ui, int key)
{
    int c = ui->cursor_class;

    switch (key) {
    case KEY_UP:
        c = draw_step(c, -1, DATASET_CLASSES);
        break;
    case KEY_DOWN:
        c = draw_step(c, 1, DATASET_CLASSES);
        break;
    case KEY_HOME:
        c = 0;
        break;
    case KEY_END:
        c = DATASET_CLASSES - 1;
        break;
    case KEY_ENTER:
    case '\n':
    case '\r':
        pane_classes_open(ui, c);
        return 1;
    default:
        return 0;
    }
    ui->cursor_class = c;
    /* The key bar offers Enter only on a class with mistakes. */
    ui->dirty |= UI_DIRTY(DRAW_CLASSES) | UI_DIRTY(DRAW_HINT);
    return 1;
}
