/*
 * pane_confusion: the 10x10 confusion matrix of the latest test
 * evaluation, rows true classes and columns predicted classes. Counts that
 * do not fit a column are shortened with a k suffix, and every zero count,
 * on the diagonal too, is drawn as ".". The diagonal is
 * highlighted, and so are off-diagonal cells holding at least a tenth of
 * their row. Wide panes add a recall column and tall ones a precision row.
 * Columns are labelled with the 3-letter class abbreviations, and so are
 * the rows unless the full names fit. Rates are percentages, and their
 * labels carry the % sign so the cells hold plain numbers at every width.
 *
 * A cursor moves over the cells while the pane has the focus. Enter, or a
 * click on a cell, makes the explorer list that cell's images, most
 * confident first, and opens the first of them in the image viewer, which
 * takes the focus. Esc gives the focus back to the matrix.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "metrics.h"
#include "pane.h"

#define SHORT_LABEL_COLS 6   /* "prec%" plus a space */
#define FULL_LABEL_COLS 12   /* "T-shirt/top" plus a space */
#define RATE_COLS 9          /* " recall %" */
#define MIN_CELL_COLS 3
#define MAX_CELL_COLS 7
/* Title, header, ten rows and the cursor line. A precision row needs one
 * more. */
#define BASE_LINES 13

typedef struct {
    int label_w;     /* width of the row-label column */
    int cell_w;      /* width of each count column, separator included */
    int recall_w;    /* width of the recall column, 0 when absent */
    int precision;   /* nonzero when the precision row fits */
} Grid;

static Grid grid_for(int width, int height)
{
    Grid g;
    int avail = width - 2;

    g.label_w = avail >= FULL_LABEL_COLS + 10 * 5 + RATE_COLS
                ? FULL_LABEL_COLS : SHORT_LABEL_COLS;
    g.recall_w = avail >= g.label_w + 10 * 5 + RATE_COLS ? RATE_COLS : 0;
    g.cell_w = (avail - g.label_w - g.recall_w) / 10;
    if (g.cell_w < MIN_CELL_COLS)
        g.cell_w = MIN_CELL_COLS;
    if (g.cell_w > MAX_CELL_COLS)
        g.cell_w = MAX_CELL_COLS;
    g.precision = height >= BASE_LINES + 1;
    return g;
}

static const char *row_label(const Grid *g, int cls)
{
    return g->label_w == FULL_LABEL_COLS ? dataset_class_names[cls]
                                         : dataset_class_short[cls];
}

static void draw_header(WINDOW *w, const Ui *ui, const Grid *g)
{
    int focused = ui->focus == DRAW_CONFUSION;

    for (int c = 0; c < DATASET_CLASSES; c++) {
        UiElement e = focused && c == ui->cursor_pred ? UI_VALUE : UI_LABEL;
        pane_print(w, 1, 1 + g->label_w + c * g->cell_w, ui->attr[e],
                   "%*.*s", g->cell_w, g->cell_w - 1,
                   dataset_class_short[c]);
    }
    if (g->recall_w)
        pane_print(w, 1, 1 + g->label_w + 10 * g->cell_w, ui->attr[UI_LABEL],
                   "%*s", g->recall_w, "recall %");
}

static UiElement cell_element(const Ui *ui, int r, int c, long count,
                              long row_total)
{
    if (ui->focus == DRAW_CONFUSION && r == ui->cursor_true
        && c == ui->cursor_pred)
        return UI_CURSOR;
    if (r == c)
        return UI_DIAGONAL;
    if (count == 0)
        return UI_DIM;
    return count * 10 >= row_total ? UI_HOT : UI_NORMAL;
}

static void draw_row(WINDOW *w, const Ui *ui, const Grid *g, int r,
                     const ClassMetrics *m)
{
    const TrainerStatus *st = &ui->status;
    int y = 2 + r;
    int focused = ui->focus == DRAW_CONFUSION;
    long row_total = 0;
    char text[16];

    for (int c = 0; c < DATASET_CLASSES; c++)
        row_total += st->confusion[r][c];
    pane_print(w, y, 1,
               ui->attr[focused && r == ui->cursor_true ? UI_VALUE : UI_LABEL],
               "%-*.*s", g->label_w - 1, g->label_w - 1, row_label(g, r));

    for (int c = 0; c < DATASET_CLASSES; c++) {
        long count = st->confusion[r][c];
        if (!st->has_eval)
            snprintf(text, sizeof text, "-");
        else if (count == 0)
            snprintf(text, sizeof text, ".");
        else
            draw_format_count(count, g->cell_w - 1, text, sizeof text);
        /* The attribute covers the separator too, so the cursor and the
         * diagonal read as blocks. */
        pane_print(w, y, 1 + g->label_w + c * g->cell_w,
                   ui->attr[cell_element(ui, r, c, count, row_total)],
                   "%*s", g->cell_w, text);
    }
    if (g->recall_w) {
        /* Before an evaluation the column shows a dash like the cells. */
        if (st->has_eval)
            draw_format_percent(100 * m[r].recall, g->recall_w, text,
                                sizeof text);
        else
            snprintf(text, sizeof text, "%*s", g->recall_w, "-");
        pane_print(w, y, 1 + g->label_w + 10 * g->cell_w, ui->attr[UI_VALUE],
                   "%s", text);
    }
}

static void draw_precision(WINDOW *w, const Ui *ui, const Grid *g,
                           const ClassMetrics *m)
{
    int y = 2 + DATASET_CLASSES;
    char text[16];

    pane_print(w, y, 1, ui->attr[UI_LABEL], "%-*s", g->label_w - 1,
               g->label_w > SHORT_LABEL_COLS ? "precision %" : "prec%");
    for (int c = 0; c < DATASET_CLASSES; c++) {
        /* Like the counts, the text leaves the column's first cell as a
         * separator. */
        draw_format_percent(100 * m[c].precision, g->cell_w - 1, text,
                            sizeof text);
        pane_print(w, y, 1 + g->label_w + c * g->cell_w, ui->attr[UI_VALUE],
                   "%*s", g->cell_w, text);
    }
}

static void draw_cursor_line(WINDOW *w, const Ui *ui, int y)
{
    const TrainerStatus *st = &ui->status;
    int t = ui->cursor_true, p = ui->cursor_pred;

    if (!st->has_eval) {
        pane_print_pending(w, ui, y);
        return;
    }
    int x = pane_print(w, y, 1, ui->attr[UI_VALUE], "%s%s%s",
                       dataset_class_names[t], ui->glyph->arrow,
                       dataset_class_names[p]);
    x = pane_print(w, y, x, ui->attr[UI_NORMAL], ": %ld",
                   st->confusion[t][p]);
    if (ui->focus == DRAW_CONFUSION && st->confusion[t][p] > 0)
        pane_print(w, y, x, ui->attr[UI_DIM], "   Enter shows them");
}

void pane_confusion_draw(WINDOW *w, const Ui *ui)
{
    Grid g = grid_for(getmaxx(w), getmaxy(w));
    ClassMetrics m[DATASET_CLASSES];

    werase(w);
    pane_title(w, ui, "Confusion: rows true, columns predicted",
               ui->focus == DRAW_CONFUSION);
    metrics_per_class((const long (*)[DATASET_CLASSES])ui->status.confusion,
                      ui->status.test_unpredicted, m);

    draw_header(w, ui, &g);
    for (int r = 0; r < DATASET_CLASSES; r++)
        draw_row(w, ui, &g, r, m);
    if (g.precision && ui->status.has_eval)
        draw_precision(w, ui, &g, m);
    draw_cursor_line(w, ui, 2 + DATASET_CLASSES + (g.precision ? 1 : 0));
}

int pane_confusion_cell_at(int w, int h, int y, int x, int *t, int *p)
{
    Grid g = grid_for(w, h);
    int col = x - 1 - g.label_w;

    if (y < 2 || y >= 2 + DATASET_CLASSES || col < 0
        || col >= DATASET_CLASSES * g.cell_w)
        return 0;
    *t = y - 2;
    *p = col / g.cell_w;
    return 1;
}

/* Returns the number of test images of true class T predicted as P. The
 * predictions can be newer than the matrix for a moment. */
static int count_cell(const Ui *ui, int t, int p)
{
    int count = 0;

    for (int i = 0; i < ui->test->count; i++)
        count += ui->test->labels[i] == t && ui->predicted[i] == p;
    return count;
}

void pane_confusion_open(Ui *ui, int t, int p)
{
    char msg[96];

    if (!ui->has_predictions) {
        pane_notice(ui, "no predictions yet: wait for the first evaluation");
        return;
    }
    if (count_cell(ui, t, p) == 0) {
        snprintf(msg, sizeof msg, "no test images in %s%s%s",
                 dataset_class_names[t], ui->glyph->arrow,
                 dataset_class_names[p]);
        pane_notice(ui, msg);
        return;
    }
    pane_list_filter(ui, t, p);
    pane_image_follow_list(ui);
}

int pane_confusion_key(Ui *ui, int key)
{
    int t = ui->cursor_true, p = ui->cursor_pred;

    switch (key) {
    case KEY_UP:
        t = draw_step(t, -1, DATASET_CLASSES);
        break;
    case KEY_DOWN:
        t = draw_step(t, 1, DATASET_CLASSES);
        break;
    case KEY_LEFT:
        p = draw_step(p, -1, DATASET_CLASSES);
        break;
    case KEY_RIGHT:
        p = draw_step(p, 1, DATASET_CLASSES);
        break;
    case KEY_ENTER:
    case '\n':
    case '\r':
        pane_confusion_open(ui, t, p);
        return 1;
    default:
        return 0;
    }
    ui->cursor_true = t;
    ui->cursor_pred = p;
    /* The key bar offers Enter only on a cell with images. */
    ui->dirty |= UI_DIRTY(DRAW_CONFUSION) | UI_DIRTY(DRAW_HINT);
    return 1;
}
