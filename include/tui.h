/*
 * tui: the curses interface. It runs on the main thread, reads keys with a
 * short timeout, copies the trainer's status on each tick and redraws the
 * panes whose content changed. Only this module calls curses.
 */
#ifndef FMNIST_TUI_H
#define FMNIST_TUI_H

#include <signal.h>
#include <stddef.h>

#include "dataset.h"
#include "trainer.h"

typedef struct {
    int ascii;      /* draw ASCII glyphs even in a UTF-8 locale (--ascii) */
    int no_color;   /* monochrome attributes only (--no-color, NO_COLOR) */
    /* Set by the SIGINT/SIGTERM handler; the loop leaves when nonzero. */
    volatile sig_atomic_t *quit_signal;
} TuiOptions;

/*
 * Takes over the terminal and shows TR's progress and the TEST images
 * until the user presses q or *quit_signal is set; the run keeps being
 * shown after training ends. Restores the terminal before returning, also
 * on the fatal path. Returns 0, or -1 with ERR set when curses cannot
 * start (for example no terminfo entry for $TERM).
 */
int tui_run(Trainer *tr, const Dataset *test, const TuiOptions *opt,
            char *err, size_t errlen);

#endif
