/*
 * pane_classes: precision, recall, F1 and support of each class from the
 * latest test evaluation, in percent. Up to three classes with the lowest
 * F1, all below the mean F1, are marked with "!" (explore_weakest). In
 * short runs of the default network the marks fell on Shirt, Pullover and
 * Coat, which the network confuses with each other and with T-shirt/top.
 * Wide panes add the class each one is most often mistaken for, with its
 * share of the row. Every number but the support is a percentage, which
 * the title states once, so the cells carry no % sign.
 */
#include "config.h"

#include <stdio.h>

#include "explore.h"
#include "metrics.h"
#include "pane.h"

#define MAX_MARKED 3
/* Marker, class name and the four numeric columns. */
#define TABLE_COLS (2 + 12 + 6 + 7 + 7 + 8)
/* "  Shirt        27.0" after the table. */
#define CONFUSED_COLS 20

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

void pane_classes_draw(WINDOW *w, const Ui *ui)
{
    const TrainerStatus *st = &ui->status;
    const long (*confusion)[DATASET_CLASSES] =
        (const long (*)[DATASET_CLASSES])st->confusion;
    ClassMetrics m[DATASET_CLASSES];
    int marked[DATASET_CLASSES];
    int full = getmaxx(w) >= TABLE_COLS + 2;
    int name_w = full ? 12 : 6;
    int wide = getmaxx(w) >= TABLE_COLS + CONFUSED_COLS + 2;
    double f1_sum = 0.0;

    werase(w);
    pane_title(w, ui, "Per-class metrics (test set, %)", 0);
    if (!st->has_eval) {
        pane_print_pending(w, ui, 1);
        return;
    }
    metrics_per_class(confusion, m);
    explore_weakest(m, DATASET_CLASSES, MAX_MARKED, marked);

    int x = pane_print(w, 1, 2, ui->attr[UI_LABEL], "%-*s %5s %6s %6s %7s",
                       name_w, "class", "prec", "recall", "F1", "support");
    if (wide)
        pane_print(w, 1, x, ui->attr[UI_LABEL], "  most confused with");

    for (int c = 0; c < DATASET_CLASSES; c++) {
        int y = 2 + c;
        f1_sum += m[c].f1;
        if (marked[c])
            pane_print(w, y, 0, ui->attr[UI_WEAK], " !");
        x = pane_print(w, y, 2, ui->attr[marked[c] ? UI_WEAK : UI_LABEL],
                       "%-*s", name_w,
                       full ? dataset_class_names[c] : dataset_class_short[c]);
        x = pane_print(w, y, x, ui->attr[UI_VALUE], " %5.1f %6.1f %6.1f",
                       100 * m[c].precision, 100 * m[c].recall,
                       100 * m[c].f1);
        x = pane_print(w, y, x, ui->attr[UI_NORMAL], " %7ld", m[c].support);

        double share;
        int other = wide ? most_confused(confusion, c, &share) : -1;
        if (other >= 0)
            pane_print(w, y, x, ui->attr[UI_NORMAL], "  %-12s%6.1f",
                       dataset_class_names[other], 100 * share);
    }
    x = pane_print(w, 2 + DATASET_CLASSES, 1, ui->attr[UI_LABEL],
                   "mean F1 ");
    x = pane_print(w, 2 + DATASET_CLASSES, x, ui->attr[UI_VALUE], "%.1f",
                   100 * f1_sum / DATASET_CLASSES);
    pane_print(w, 2 + DATASET_CLASSES, x, ui->attr[UI_DIM],
               "   ! lowest %d F1 if below mean", MAX_MARKED);
}
