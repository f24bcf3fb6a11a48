/*
 * pane_status: the top pane. Its title names the model. Line 1 shows
 * the epoch and a progress bar for the batches of the current epoch.
 * Line 2 shows the state, training throughput (not while paused or
 * evaluating), training time (which stops while paused), ETA, thread
 * count and learning rate. A run that only evaluates (--epochs 0) shows
 * how many epochs the model was trained instead, and the evaluation time
 * with no throughput, ETA or learning rate. Line 3 shows the trainer's
 * latest message while tui.c marks it as shown (Ui.message_shown). A
 * message too wide for line 3 takes line 2 as well, after the state
 * word. Otherwise line 3 shows the last test (and validation) result or,
 * before the first one, when it comes. On its right it marks a run that
 * ends after this epoch. The pane reads only Ui.model, Ui.status and
 * Ui.message_shown.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "draw.h"
#include "pane.h"

/* Columns of the state word that starts line 2: the longest word,
 * "evaluating", and a space, so that with the space printed after the
 * field at least two columns separate it from the next one. */
#define STATE_COLS 11

static UiElement state_element(TrainerState state)
{
    switch (state) {
    case TRAINER_PAUSED:
        return UI_STATE_PAUSED;
    case TRAINER_DONE:
        return UI_STATE_DONE;
    case TRAINER_FAILED:
        return UI_STATE_FAILED;
    default:
        return UI_STATE_RUN;
    }
}

/* Returns the fraction of the current epoch done. A finished run and
 * the evaluation after an epoch count as complete, while the evaluation
 * of a loaded network before its epoch goes on shows that epoch's
 * batches. */
static double epoch_fraction(const TrainerStatus *st)
{
    if (st->state == TRAINER_DONE
        || (st->state == TRAINER_EVALUATING && st->epochs_done >= st->epoch))
        return 1.0;
    if (st->batches_per_epoch <= 0)
        return 0.0;
    return (double)st->batch / (double)st->batches_per_epoch;
}

/* Replaces the progress bar of a run that does not train. */
static void draw_explore_only(WINDOW *w, const Ui *ui, int y)
{
    const TrainerStatus *st = &ui->status;
    char trained[64];

    int x = pane_print(w, y, 1, ui->attr[UI_VALUE], "explore only");
    if (pane_format_trained(st, trained, sizeof trained))
        pane_print(w, y, x, ui->attr[UI_LABEL], ", model trained %s",
                   trained);
    else
        pane_print(w, y, x, ui->attr[UI_LABEL], ", untrained network%s",
                   st->loaded ? "" : " (no --load)");
}

static void draw_progress(WINDOW *w, const Ui *ui, int y)
{
    const TrainerStatus *st = &ui->status;
    int width = getmaxx(w);
    double fraction = epoch_fraction(st);
    char tail[64];

    if (st->train_epochs == 0) {
        draw_explore_only(w, ui, y);
        return;
    }
    int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "epoch ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%d/%d", st->epoch,
                   st->epochs);
    snprintf(tail, sizeof tail, " %3d%%  batch %ld/%ld",
             (int)(fraction * 100 + 0.5), st->batch, st->batches_per_epoch);

    /* The bar takes the room the text leaves, from 5 to 50 columns. */
    int bar_w = width - x - 2 - (int)strlen(tail) - 1;
    if (bar_w > 50)
        bar_w = 50;
    if (bar_w < 5) {
        pane_print(w, y, x, ui->attr[UI_VALUE], "%s", tail);
        return;
    }
    int fill = draw_bar_fill(fraction, bar_w);
    wmove(w, y, x + 1);
    wattrset(w, ui->attr[UI_BAR_DONE]);
    for (int i = 0; i < fill; i++)
        waddstr(w, ui->glyph->bar_done);
    wattrset(w, ui->attr[UI_BAR_TODO]);
    for (int i = fill; i < bar_w; i++)
        waddstr(w, ui->glyph->bar_todo);
    wattrset(w, A_NORMAL);
    pane_print(w, y, x + 1 + bar_w, ui->attr[UI_NORMAL], "%s", tail);
}

/* Prints the run's state at the start of line Y, padded to STATE_COLS.
 * Returns the column after it. */
static int draw_state(WINDOW *w, const Ui *ui, int y)
{
    const TrainerStatus *st = &ui->status;

    /* A run ended early by x or a stop shows "stopped", like the exit
     * summary. */
    const char *state = st->state == TRAINER_DONE && st->train_epochs > 0
                        && st->epochs_done < st->epochs
                        ? "stopped" : trainer_state_name(st->state);
    return pane_print(w, y, 1, ui->attr[state_element(st->state)], "%-*s",
                      STATE_COLS, state);
}

static void draw_speed(WINDOW *w, const Ui *ui, int y)
{
    const TrainerStatus *st = &ui->status;
    char elapsed[16], eta[16];

    draw_format_duration(st->elapsed, elapsed, sizeof elapsed);
    draw_format_duration(st->state == TRAINER_DONE ? 0 : st->eta, eta,
                         sizeof eta);

    int x = draw_state(w, ui, y);
    /* Without training the clock times the evaluation of the loaded
     * model, which the label names. */
    if (st->train_epochs == 0) {
        x = pane_print(w, y, x + 1, ui->attr[UI_LABEL], "evaluation time ");
        x = pane_print(w, y, x, ui->attr[UI_VALUE], "%s", elapsed);
        x = pane_print(w, y, x, ui->attr[UI_LABEL], "   threads ");
        pane_print(w, y, x, ui->attr[UI_VALUE], "%d", st->threads);
        return;
    }
    /* A paused run has no speed, so that room goes to marking the
     * training time as stopped. An evaluation does not train, and the
     * training speed would read as its own. */
    if (st->state != TRAINER_PAUSED && st->state != TRAINER_EVALUATING) {
        /* Before the first batch of this run the rate is unknown, like
         * the ETA then. */
        if (st->images_per_sec > 0)
            x = pane_print(w, y, x + 1, ui->attr[UI_VALUE], "%.0f",
                           st->images_per_sec);
        else
            x = pane_print(w, y, x + 1, ui->attr[UI_VALUE], "--");
        x = pane_print(w, y, x, ui->attr[UI_LABEL], " img/s  ");
    }
    x = pane_print(w, y, x + 1, ui->attr[UI_LABEL], "train time ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%s", elapsed);
    if (st->state == TRAINER_PAUSED)
        x = pane_print(w, y, x, ui->attr[UI_STATE_PAUSED], " (paused)");
    x = pane_print(w, y, x, ui->attr[UI_LABEL], "   ETA ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%s", eta);
    x = pane_print(w, y, x, ui->attr[UI_LABEL], "   threads ");
    x = pane_print(w, y, x, ui->attr[UI_VALUE], "%d", st->threads);
    if (st->lr > 0) {
        x = pane_print(w, y, x, ui->attr[UI_LABEL], "   lr ");
        pane_print(w, y, x, ui->attr[UI_VALUE], "%.3g", st->lr);
    }
}

/* Writes the mark of a pending stop after the current epoch into TEXT.
 * Returns the column where it starts at the end of a line of W, or the
 * width of W when there is no stop to mark. */
static int format_stop_mark(WINDOW *w, const Ui *ui, char *text, size_t len)
{
    const TrainerStatus *st = &ui->status;

    if (!st->stop_after_epoch || st->state == TRAINER_DONE
        || st->state == TRAINER_FAILED)
        return getmaxx(w);
    snprintf(text, len, " stops after epoch %d ", st->epoch);
    return getmaxx(w) - 1 - (int)strlen(text);
}

/* Returns the message that line 3 shows now, or NULL when the line shows
 * a test result instead. A failed run's reason comes first, then an
 * error that tui.c marks as shown, then the warning of TuiOptions while
 * tui.c keeps it in Ui.warning, and then the latest message that tui.c
 * marks as shown. */
static const char *shown_message(const Ui *ui)
{
    const TrainerStatus *st = &ui->status;
    int shown = st->message[0] != '\0' && ui->message_shown;

    if (st->state == TRAINER_FAILED && st->failure[0] != '\0' && shown)
        return st->failure;
    if (ui->warning != NULL && !(shown && st->message_is_error))
        return ui->warning;
    if (!shown)
        return NULL;
    return st->message;
}

/*
 * Draws a message too wide for line 3 on lines 2 and 3, which then show
 * no speed. It starts after the state word, which stays in view because
 * it is the one place that shows whether the run trains, evaluates or has
 * ended. Line 3 goes on below the message's start when the rest fits
 * there, or else from column 1. It ends at column END, where the mark of
 * a pending stop starts.
 * NOTE: a message that needs more than those two lines is cut at the end
 * of line 3, which then ends in "...". The summary after the interface
 * ends prints the reason of a failed run, a failed save and the warning
 * about a preset's recipe in full, but not the warning about a read-only
 * --load file.
 */
static void draw_wrapped_message(WINDOW *w, const Ui *ui, const char *text,
                                 int end)
{
    attr_t attr = ui->attr[ui->status.state == TRAINER_FAILED
                           ? UI_STATE_FAILED : UI_NORMAL];
    int width = getmaxx(w);
    int x = draw_state(w, ui, 2) + 1;
    int next;
    int len = draw_wrap_line(text, width - x, &next);

    pane_print(w, 2, x, attr, "%.*s", len, text);
    text += next;
    if (draw_text_width(text) <= end - x) {
        pane_print(w, 3, x, attr, "%s", text);
        return;
    }
    if (draw_text_width(text) <= end - 1) {
        pane_print(w, 3, 1, attr, "%s", text);
        return;
    }
    /* The cut ends at a word where one fits, and "..." shows that text
     * is missing, so the last word does not run into the stop mark. */
    len = draw_wrap_line(text, end - 1 - 3, &next);
    pane_print(w, 3, 1, attr, "%.*s...", len, text);
}

/* Draws line Y: TEXT, the trainer's message, or else a test result or
 * when the first one comes. */
static void draw_message(WINDOW *w, const Ui *ui, int y, const char *text)
{
    const TrainerStatus *st = &ui->status;

    if (text != NULL) {
        UiElement e = st->state == TRAINER_FAILED ? UI_STATE_FAILED
                                                  : UI_NORMAL;
        pane_print(w, y, 1, ui->attr[e], "%s", text);
    } else if (st->has_eval) {
        int x = pane_print(w, y, 1, ui->attr[UI_LABEL], "test accuracy ");
        x = pane_print(w, y, x, ui->attr[UI_VALUE], "%.2f%%",
                       100 * st->test_acc);
        x = pane_print(w, y, x, ui->attr[UI_LABEL], "   test loss ");
        x = pane_print(w, y, x, ui->attr[UI_VALUE], "%.4f", st->test_loss);
        if (st->test_nonfinite > 0)
            x = pane_print(w, y, x, ui->attr[UI_WRONG],
                           "   %ld without prediction (NaN)",
                           st->test_nonfinite);
        if (st->has_val) {
            x = pane_print(w, y, x, ui->attr[UI_LABEL], "   val ");
            x = pane_print(w, y, x, ui->attr[UI_VALUE], "%.2f%%",
                           100 * st->val_acc);
        }
        /* The test curve has a point per epoch, and a checkpoint saved
         * within an epoch contains a network trained past the last one,
         * so its accuracy differs from the curve's last point. A run that
         * only explores shows that case only; otherwise it has no other
         * model to tell apart. */
        if (st->loaded && !st->eval_epoch_end
            && (st->train_epochs > 0 || st->batch > 0))
            pane_print(w, y, x, ui->attr[UI_DIM], "   (loaded model)");
    } else if (st->train_epochs == 0) {
        pane_print(w, y, 1, ui->attr[UI_DIM], "evaluating the test set");
    } else if (st->state == TRAINER_EVALUATING && st->loaded) {
        pane_print(w, y, 1, ui->attr[UI_DIM], "testing the loaded model");
    } else if (st->state == TRAINER_EVALUATING) {
        pane_print(w, y, 1, ui->attr[UI_DIM],
                   "first test results when this evaluation ends");
    } else if (st->epoch_eta >= 0) {
        char when[16];

        draw_format_duration(st->epoch_eta, when, sizeof when);
        pane_print(w, y, 1, ui->attr[UI_DIM],
                   "first test results in about %s, at the end of epoch %d",
                   when, st->epoch);
    } else {
        pane_print(w, y, 1, ui->attr[UI_DIM],
                   "first test results at the end of epoch %d", st->epoch);
    }
}

void pane_status_draw(WINDOW *w, const Ui *ui)
{
    char title[160];

    werase(w);
    snprintf(title, sizeof title, "fmnist: Fashion-MNIST CNN, model %s",
             ui->model != NULL ? ui->model : "unknown");
    pane_title(w, ui, title, 0);
    draw_progress(w, ui, 1);

    char mark[48];
    int end = format_stop_mark(w, ui, mark, sizeof mark);
    /* The message is wrapped as it is, and pane_print escapes each line.
     * Wrapping the escaped text could split an escape such as \x9b
     * between lines 2 and 3. draw_wrap_line counts an unprintable
     * character as the width of its escape and never splits it. */
    const char *text = shown_message(ui);

    if (text != NULL && draw_text_width(text) > end - 1) {
        draw_wrapped_message(w, ui, text, end);
    } else {
        draw_speed(w, ui, 2);
        draw_message(w, ui, 3, text);
    }
    if (end < getmaxx(w))
        pane_print(w, 3, end, ui->attr[UI_STATE_PAUSED], "%s", mark);
}
