/*
 * tui: the curses interface. It runs on the main thread, reads keys with a
 * short timeout, copies the trainer's status on each tick and redraws the
 * panes whose content changed. Only this module calls curses.
 */
#ifndef FMNIST_TUI_H
#define FMNIST_TUI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "dataset.h"
#include "trainer.h"

typedef struct {
    int ascii;      /* draw ASCII glyphs even in a UTF-8 locale (--ascii) */
    int no_color;   /* monochrome attributes only (--no-color, NO_COLOR) */
    /* The training images the viewer can browse (key t); NULL or empty
     * when they were not loaded. */
    const Dataset *train;
    /* Set by the SIGINT/SIGTERM handler; the loop leaves when nonzero. */
    volatile sig_atomic_t *quit_signal;
    /* Set by the SIGHUP handler; the loop then leaves without touching
     * the terminal again. May be NULL. */
    volatile sig_atomic_t *hangup;
    /* A warning about the run, or NULL. The status line shows it in place
     * of the trainer's messages, except errors, for 12 seconds on a screen
     * that fits or until the first key read while the interface fits. */
    const char *warning;
    /* A second warning, or NULL, shown in the same way after the first. */
    const char *warning_next;
} TuiOptions;

/* Results of tui_run besides -1. */
enum {
    TUI_QUIT = 0,      /* q or *quit_signal; the terminal was restored */
    TUI_DETACHED = 1   /* hangup: stdin, stdout and stderr now go to
                          /dev/null where they were the terminal */
};

/*
 * Takes over the terminal and shows TR's progress and the TEST images
 * until the user presses q or *quit_signal is set; the run keeps being
 * shown after training ends. Restores the terminal before returning, also
 * on the fatal path and from a crash handler (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGABRT). Returns TUI_QUIT; TUI_DETACHED when *hangup was set
 * or the terminal hung up, in which case the terminal is left as it is;
 * or -1 with ERR set when curses cannot start (for example TERM=dumb or
 * no terminfo entry for $TERM), before anything was sent to the terminal.
 */
int tui_run(Trainer *tr, const Dataset *test, const TuiOptions *opt,
            char *err, size_t errlen);

/*
 * Writes to BUF the line that names what the checkpoint file contains
 * after the failed run of final status ST: the model of its latest save,
 * the loaded model when --save names the --load file, or no model. Returns 0
 * with BUF empty when the run had no --save file and saved nothing.
 */
int tui_format_failed_save(const TrainerStatus *st, char *buf, size_t len);

/*
 * Returns the key bar's text while the run of status ST stops after q or
 * a stop signal. The text names what the stop waits for: the evaluation
 * in progress, the batch in progress that it drops or the checkpoint it
 * saves. A short form is returned when the long one is wider than WIDTH
 * columns.
 */
const char *tui_stopping_notice(const TrainerStatus *st, int width);

/* Settings of the summary besides the final status. */
typedef struct {
    const char *log_path;   /* the --log file, or NULL */
    /* SIGINT or SIGTERM when one of them closed the interface, else 0. */
    int quit_signal;
    /* The caller has printed the lines of tui_print_stop already, so the
     * summary gives only the training time in their place. */
    int stop_printed;
    /* The terminal hung up before the end, so no key can save any more
     * and advice names only options for the next run. */
    int detached;
    /* A start-up warning to repeat in full, or NULL. */
    const char *warning;
    /* The warning about a read-only --load file to repeat, or NULL. */
    const char *load_warning;
    /* s could not save in this run, so advice names only --save. */
    int save_key_blocked;
} TuiSummary;

/*
 * Writes a short summary of the run to OUT, for the shell after the
 * interface closed. It gives the epochs done, the training time, the
 * latest test accuracy (unless some test images have no prediction), the
 * latest checkpoint or why a save failed, the --log file and the warning
 * of SUMMARY. A run that SUMMARY->quit_signal stopped first gets the
 * lines of tui_print_stop. ST is the final status, taken after trainer_join.
 */
void tui_print_summary(FILE *out, const TrainerStatus *st,
                       const TuiSummary *summary);

/*
 * Writes one line to OUT on where the signal SIG (SIGINT or SIGTERM)
 * stopped the training run of final status ST, and a second line when
 * the run resumed a checkpoint and finished none of its own epochs.
 */
void tui_print_stop(FILE *out, const TrainerStatus *st, int sig);

#endif
