/*
 * tui: curses setup and teardown, capability detection (UTF-8 glyphs,
 * colour), the table of UI elements, pane windows, the views and the main
 * loop. The panes themselves live in pane_*.c and mouse events are handled
 * in tui_mouse.c. The right-hand side shows one of three views (training,
 * mistakes, per-class), chosen with 1, 2, 3 or v. Only the panes of the
 * current view have windows.
 *
 * The loop runs on the main thread. It reads keys with a timeout of about
 * 100 ms (ERR is a tick), copies the trainer's status and predictions on
 * every tick, marks the panes whose content changed and redraws those at
 * most REDRAW_HZ times a second. Each pane has its own window, redrawn
 * with werase and flushed with wnoutrefresh, and one doupdate sends the
 * difference, which keeps the traffic small over slow SSH links.
 *
 * Limits: the screen must be at least 80x24. Below that only a notice is
 * shown while training goes on. Text is clipped by bytes, not by display
 * width, which is exact for the ASCII class names and errs short for the
 * few UTF-8 glyphs.
 */
#include "config.h"

#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <curses.h>

#include "draw.h"
#include "net.h"
#include "pane.h"
#include "tty.h"
#include "tui.h"
#include "util.h"

#define TICK_MS 100
#define REDRAW_HZ 10
#define NOTICE_SECONDS 4.0
/* Seconds TuiOptions.warning stays on the status line without a key:
 * long enough to read its two lines, but it covers the speed, the times
 * and the test result, so it cannot stay for the whole run. */
#define WARNING_SECONDS 12.0
/* This many ERR returns in a row, each far quicker than the timeout, on
 * a terminal that did not hang up mean that standard input has ended. */
#define MAX_FAST_ERRORS 50
#define KEY_ESC 27
#define KEY_CTRL_L 12

/* One UI element: colour pair (-1 is the terminal's default) and the
 * attributes used with colour and without it. */
typedef struct {
    short fg, bg;
    attr_t color_attr;
    attr_t mono_attr;
} UiStyle;

static const UiStyle ui_styles[UI_COUNT] = {
    [UI_NORMAL] = {-1, -1, A_NORMAL, A_NORMAL},
    [UI_TITLE] = {COLOR_WHITE, COLOR_BLUE, A_BOLD, A_UNDERLINE},
    [UI_TITLE_FOCUS] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
    [UI_LABEL] = {COLOR_CYAN, -1, A_NORMAL, A_NORMAL},
    [UI_VALUE] = {-1, -1, A_BOLD, A_BOLD},
    [UI_BAR_DONE] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [UI_BAR_TODO] = {-1, -1, A_DIM, A_DIM},
    [UI_SPARK] = {COLOR_YELLOW, -1, A_BOLD, A_NORMAL},
    [UI_IMAGE] = {-1, -1, A_BOLD, A_NORMAL},
    [UI_CORRECT] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [UI_WRONG] = {COLOR_RED, -1, A_BOLD, A_REVERSE},
    [UI_DIAGONAL] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [UI_HOT] = {COLOR_RED, -1, A_BOLD, A_UNDERLINE},
    [UI_CURSOR] = {COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE},
    [UI_DIM] = {-1, -1, A_DIM, A_DIM},
    [UI_STATE_RUN] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [UI_STATE_PAUSED] = {COLOR_YELLOW, -1, A_BOLD, A_REVERSE},
    [UI_STATE_DONE] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
    [UI_STATE_FAILED] = {COLOR_RED, -1, A_BOLD, A_REVERSE | A_BOLD},
    [UI_HINT] = {-1, -1, A_NORMAL, A_NORMAL},
    [UI_HINT_KEY] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
    [UI_HEAT_HIGH] = {COLOR_BLACK, COLOR_RED, A_NORMAL, A_REVERSE},
    [UI_HEAT_LOW] = {COLOR_BLACK, COLOR_YELLOW, A_NORMAL, A_UNDERLINE},
    [UI_HEAT_RAISE] = {COLOR_BLACK, COLOR_BLUE, A_NORMAL, A_DIM | A_REVERSE},
    [UI_SELECTED] = {-1, -1, A_REVERSE, A_REVERSE},
    [UI_WEAK] = {COLOR_RED, -1, A_BOLD, A_BOLD},
};

static const UiGlyphs glyphs_utf8 = {
    .spark = {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585",
              "\u2586", "\u2587", "\u2588"},
    .spark_levels = 8,
    .spark_point = "\u2500",
    .bar_done = "\u2588",
    .bar_todo = "\u2591",
    .arrow = "\u2192",
    .left_right = "\u2190\u2192",
    .up_down = "\u2191\u2193",
    .all_arrows = "\u2190\u2192\u2191\u2193",
};

static const UiGlyphs glyphs_ascii = {
    /* A one-row sparkline. Each glyph reaches higher in the cell and
     * covers more of it than the one before, so the row reads like bars.
     * Glyphs at about the same height, such as "_", "." and ",", would
     * make levels that look alike. */
    .spark = {" ", "_", "-", "=", "#"},
    .spark_levels = 4,
    /* Stacked, "#" cells would make a solid block. An edge of three
     * plain heights over a light fill reads as a line chart. */
    .spark_edge = {" ", "_", "-", "'", ":"},
    .spark_point = "-",
    .bar_done = "#",
    .bar_todo = "-",
    .arrow = "->",
    .left_right = "Left/Right",
    .up_down = "Up/Down",
    .all_arrows = "arrows",
};

typedef struct {
    Trainer *tr;
    const TuiOptions *opt;
    SCREEN *screen;
    Ui ui;
    DrawLayout layout;
    WINDOW *win[DRAW_PANES];
    WINDOW *help;     /* the help overlay while it is shown */
    /* Set from ? until a key closes the help. While the screen is too
     * small for the interface, help is NULL and the overlay waits. */
    int help_open;
    int full_redraw;  /* repaint stdscr and every pane on the next draw */
    int fast_errors;  /* getch calls in a row that failed at once */
    int input_closed; /* standard input ended; keys are no longer read */
    /* Set while the process is in the background with the screen not
     * ended, as after SIGSTOP and kill -CONT, until it takes the
     * terminal back. */
    int in_background;
    /* Set when the terminal was found resized on taking it back, so that
     * read_key returns KEY_RESIZE. */
    int size_changed;
    /* Set by s until the next status message, which reports the save or
     * its failure. save_seq is status.message_seq at the request. */
    int save_pending;
    unsigned save_seq;
    /* Set by an s after the run ended, whose file then has the final
     * model. */
    int saved_when_done;
} Tui;

/* The start of the key bar's reply to s. */
static const char saving_notice[] = "saving to ";
/* The start of the reply to p while the trainer finishes a batch or an
 * evaluation. */
static const char pausing_notice[] = "pausing after ";

/* The views' names, which start the key bar in the mistakes and the
 * per-class view and are the reply to the keys that switch views. */
static const char *const view_names[DRAW_VIEWS] = {
    "training view", "mistakes view", "per-class view",
};

/* The panes that take keys, in the order Tab visits those a view shows,
 * and their names in the help window. The order is the screen's: the
 * viewer on the left, then the right-hand column from the top, where the
 * table and the list are above the matrix. */
static const DrawPane focus_order[] = {
    DRAW_IMAGE, DRAW_CLASSES, DRAW_MISTAKES, DRAW_CONFUSION,
};
#define FOCUS_PANES ((int)(sizeof focus_order / sizeof focus_order[0]))
static const char *const focus_names[FOCUS_PANES] = {
    "viewer", "per-class table", "list", "matrix",
};

/* ---------------------------------------------------------------- helpers */

int pane_print(WINDOW *w, int y, int x, attr_t attr, const char *fmt, ...)
{
    char text[512], buf[512];
    va_list ap;
    int width = getmaxx(w);

    if (x >= width || y < 0 || y >= getmaxy(w))
        return x;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Names from the command line, such as --save FILE, may contain
     * control characters, which curses would act on. */
    util_escape_unprintable(text, buf, sizeof buf);

    /* Clip to the window so nothing wraps to the next line, counting
     * screen columns, so a wide character takes two. */
    int n = draw_text_fit(buf, width - x);
    wattrset(w, attr);
    mvwaddnstr(w, y, x, buf, n);
    wattrset(w, A_NORMAL);

    int cx = getcurx(w);
    /* Writing the last column leaves the cursor there instead of past it. */
    return cx < x + 1 && n > 0 ? width : cx;
}

void pane_print_pending(WINDOW *w, const Ui *ui, int y)
{
    /* A resumed run tests the loaded network before it trains. */
    pane_print(w, y, 1, ui->attr[UI_DIM],
               ui->status.train_epochs == 0 || ui->status.loaded
               ? "filled when the test set is evaluated"
               : "filled at the end of each epoch");
}

/* Writes a position in a run, such as "2 epochs and 58 batches" or "58
 * batches of epoch 1", to BUF. Returns 0 at the start of a run, where it
 * writes "nothing". */
static int format_position(int epochs, long batches, char *buf, size_t len)
{
    if (epochs > 0 && batches > 0)
        snprintf(buf, len, "%d epoch%s and %ld batch%s", epochs,
                 epochs == 1 ? "" : "s", batches, batches == 1 ? "" : "es");
    else if (epochs > 0)
        snprintf(buf, len, "%d epoch%s", epochs, epochs == 1 ? "" : "s");
    else if (batches > 0)
        snprintf(buf, len, "%ld batch%s of epoch 1", batches,
                 batches == 1 ? "" : "es");
    else
        snprintf(buf, len, "nothing");
    return epochs > 0 || batches > 0;
}

int pane_format_trained(const TrainerStatus *st, char *buf, size_t len)
{
    return format_position(st->epochs_done, st->batch, buf, len);
}

void pane_title(WINDOW *w, const Ui *ui, const char *title, int focused)
{
    attr_t attr = ui->attr[focused ? UI_TITLE_FOCUS : UI_TITLE];

    wattrset(w, attr);
    mvwhline(w, 0, 0, ' ', getmaxx(w));
    wattrset(w, A_NORMAL);
    /* A character marks the focus also without colours or attributes,
     * as in a screen capture. */
    if (focused)
        pane_print(w, 0, 0, attr, "%s", PANE_FOCUS_MARK);
    pane_print(w, 0, 1, attr, "%s", title);
}

void pane_notice(Ui *ui, const char *msg)
{
    snprintf(ui->notice, sizeof ui->notice, "%s", msg);
    ui->notice_until = util_now() + NOTICE_SECONDS;
    ui->dirty |= UI_DIRTY(DRAW_HINT);
}

/* ---------------------------------------------------------------- screen */

static void restore_terminal(void)
{
    if (!isendwin())
        endwin();
}

static int use_utf8(const TuiOptions *opt)
{
#ifdef HAVE_NCURSESW
    const char *codeset = nl_langinfo(CODESET);
    return !opt->ascii && codeset != NULL && strcmp(codeset, "UTF-8") == 0;
#else
    (void)opt;
    return 0;
#endif
}

static int use_color(const TuiOptions *opt)
{
    const char *no_color = getenv("NO_COLOR");

    /* NO_COLOR counts when set to a non-empty value (no-color.org). */
    return has_colors() && !opt->no_color
           && (no_color == NULL || no_color[0] == '\0');
}

static void setup_attributes(Ui *ui, int color)
{
    int defaults = color && use_default_colors() == OK;

    if (color)
        start_color();
    ui->mono = !color;
    for (int e = 0; e < UI_COUNT; e++) {
        const UiStyle *s = &ui_styles[e];
        if (!color) {
            ui->attr[e] = s->mono_attr;
            continue;
        }
        short fg = s->fg, bg = s->bg;
        if (!defaults) {
            fg = fg < 0 ? COLOR_WHITE : fg;
            bg = bg < 0 ? COLOR_BLACK : bg;
        }
        init_pair((short)(e + 1), fg, bg);
        ui->attr[e] = COLOR_PAIR(e + 1) | s->color_attr;
    }
    /* Without dim, as on a vt100, dim reverse is plain reverse, and the
     * cells where masking raises the probability would look like those
     * with the largest cut. */
    if (!color && !(termattrs() & A_DIM))
        ui->attr[UI_HEAT_RAISE] = A_REVERSE | A_UNDERLINE;
}

/* The SIGTSTP action that screen_start replaced: the handler of ncurses,
 * which newterm installed. */
static struct sigaction curses_stop_action;

/* util_continue_count() when the interface last took the terminal back,
 * or when on_stop handled a stop. A higher count means a SIGCONT that no
 * SIGTSTP handler saw, as after SIGSTOP. */
static atomic_uint handled_continues;

/* Takes the terminal back after a stop, as the SIGTSTP handler of ncurses
 * does: drops the keys typed meanwhile, keeps the terminal modes that the
 * shell or stty set as the modes to restore at the end, and repaints the
 * screen. */
static void resume_screen(void)
{
    flushinp();
    def_shell_mode();
    doupdate();
}

/*
 * Takes the terminal back after a stop that left the screen up, such as
 * one by SIGSTOP, which no handler can catch. The shell reset the
 * terminal modes meanwhile, and a program run from it may have reset
 * the keypad, mouse and cursor modes. So this puts back the program
 * modes with the keypad mode (reset_prog_mode), turns the mouse reports
 * off and on again, hides the cursor again, and makes the next doupdate
 * repaint the whole screen. The shell modes that endwin restores stay
 * those from the start, and keys typed after fg stay for the interface.
 */
static void retake_screen(void)
{
    mmask_t mask = 0;

    reset_prog_mode();
    mousemask(0, &mask);
    if (mask != 0)
        mousemask(mask, NULL);
    /* curs_set sends nothing when the visibility it sets is the one it
     * set last. */
    curs_set(1);
    curs_set(0);
    clearok(curscr, TRUE);
}

/*
 * Handles SIGTSTP in place of ncurses: gives the terminal back, stops the
 * process, and takes the terminal again after SIGCONT only when the
 * process is in the terminal's foreground process group. The handler of
 * ncurses (6.4) takes it back after every SIGCONT, so after bg, or kill %1
 * (SIGTERM, then SIGCONT), its tcflush stopped the process again with
 * SIGTTOU, and SIGTERM took effect only after fg. Left in the background,
 * the screen stays ended until screen_away finds the process back in the
 * foreground. Like the handler of ncurses, this one calls curses
 * functions that are not async-signal-safe. util_time_stops calls it in
 * the drawing thread only.
 */
static void on_stop(int sig)
{
    if (!isendwin() && tty_in_foreground(STDOUT_FILENO)) {
        def_prog_mode();
        endwin();
    }
    util_stop_by_default(sig);
    atomic_store(&handled_continues, util_continue_count());
    if (isendwin() && tty_in_foreground(STDOUT_FILENO))
        resume_screen();
}

/*
 * Returns 1 while the process is in the background, where drawing would
 * write over another job's output and reading a key would stop the
 * process with SIGTTIN, or with SIGTTOU for a mode change. Back in the
 * foreground, takes the terminal again when a stop gave it away and marks
 * the screen for a full redraw. That stop either ended the screen
 * (Ctrl-Z, then bg) or left it up (SIGSTOP, then fg or kill -CONT), and
 * only the count of SIGCONTs shows the latter when the process went
 * back to the foreground between two calls.
 */
static int screen_away(Tui *t)
{
    if (!tty_in_foreground(STDOUT_FILENO)) {
        if (!isendwin())
            t->in_background = 1;
        return 1;
    }

    unsigned continues = util_continue_count();

    if (isendwin()) {
        atomic_store(&handled_continues, continues);
        resume_screen();
    } else if (t->in_background
               || continues != atomic_load(&handled_continues)) {
        atomic_store(&handled_continues, continues);
        retake_screen();
    } else {
        return 0;
    }
    t->in_background = 0;
    t->full_redraw = 1;
    /* A resize while the shell had the terminal sent SIGWINCH to the
     * shell, not to this process, so curses still has the old size. */
    int rows, cols;

    if (tty_size(STDOUT_FILENO, &rows, &cols) == 0
        && (rows != LINES || cols != COLS)) {
        resizeterm(rows, cols);
        t->size_changed = 1;
    }
    return 0;
}

/* Returns 1 once after screen_away found the terminal resized. */
static int take_size_change(Tui *t)
{
    int changed = t->size_changed;

    t->size_changed = 0;
    return changed;
}

static int screen_start(Tui *t, char *err, size_t errlen)
{
    /* The codeset test needs it, and calling it again is harmless. Numbers
     * keep the decimal point, as main sets it. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");

    /* newterm accepts TERM=dumb and then draws garbage, so the entry is
     * checked first, before anything is sent to the terminal. */
    if (tty_check_term(STDOUT_FILENO, err, errlen) != 0)
        return -1;
    tty_save_modes(STDOUT_FILENO);

    /* newterm, unlike initscr, returns NULL instead of exiting when the
     * terminal type is unknown. */
    t->screen = newterm(NULL, stdout, stdin);
    if (t->screen == NULL) {
        const char *term = getenv("TERM");
        snprintf(err, errlen, "cannot start curses for TERM=%s",
                 term ? term : "(unset)");
        return -1;
    }
    util_set_fatal_hook(restore_terminal);

    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
#ifdef NCURSES_VERSION
    /* Esc is a key of its own here, so wait 25 ms, not the default
     * second, for the rest of an escape sequence. */
    set_escdelay(25);
#endif
    t->ui.glyph = use_utf8(t->opt) ? &glyphs_utf8 : &glyphs_ascii;
    setup_attributes(&t->ui, use_color(t->opt));
    /* Clicks and the wheel where the terminal reports them. A zero click
     * interval reports presses at once instead of waiting to tell a click
     * from a drag. */
    if (mousemask(BUTTON1_PRESSED | BUTTON1_CLICKED | BUTTON4_PRESSED
                  | BUTTON5_PRESSED, NULL) != 0)
        mouseinterval(0);
    tty_arm(STDOUT_FILENO);

    struct sigaction stop;

    memset(&stop, 0, sizeof stop);
    sigemptyset(&stop.sa_mask);
    stop.sa_flags = SA_RESTART;
    stop.sa_handler = on_stop;
    sigaction(SIGTSTP, &stop, &curses_stop_action);
    /* Chains to on_stop. */
    util_time_stops(1);
    atomic_store(&handled_continues, util_continue_count());
    return 0;
}

/* Ends curses. With DETACHED set the terminal is gone or must be left
 * alone (after SIGHUP), so the standard streams are pointed at /dev/null
 * first and endwin's output and mode changes go nowhere. */
static void screen_stop(Tui *t, int detached)
{
    util_time_stops(0);
    sigaction(SIGTSTP, &curses_stop_action, NULL);
    if (detached) {
        tty_forget();
        tty_detach_stdio();
    }
    if (t->help != NULL)
        delwin(t->help);
    for (int p = 0; p < DRAW_PANES; p++) {
        if (t->win[p] != NULL)
            delwin(t->win[p]);
    }
    /* A stop may have ended the screen already. A second endwin would
     * send the reset strings again, and in the background it would stop
     * the process with SIGTTOU. */
    if (!isendwin())
        endwin();
    util_set_fatal_hook(NULL);
    delscreen(t->screen);
    tty_disarm();
}

/* Recomputes the pane rectangles from the screen size and recreates the
 * pane windows. */
static void apply_layout(Tui *t)
{
    for (int p = 0; p < DRAW_PANES; p++) {
        if (t->win[p] != NULL)
            delwin(t->win[p]);
        t->win[p] = NULL;
    }
    draw_layout(COLS, LINES, t->ui.view, &t->layout);
    if (t->layout.fits) {
        for (int p = 0; p < DRAW_PANES; p++) {
            const DrawRect *r = &t->layout.pane[p];
            if (r->h == 0)
                continue;  /* not in this view */
            t->win[p] = newwin(r->h, r->w, r->y, r->x);
            if (t->win[p] == NULL)
                t->layout.fits = 0;
            else
                leaveok(t->win[p], TRUE);  /* the cursor is hidden anyway */
        }
    }
    t->ui.image_scale = t->layout.image_scale;
    /* Keys go to a pane that is shown. */
    if (t->win[t->ui.focus] == NULL)
        t->ui.focus = DRAW_IMAGE;
    t->ui.focus_panes = (t->win[DRAW_IMAGE] != NULL)
                        + (t->win[DRAW_CONFUSION] != NULL)
                        + (t->win[DRAW_MISTAKES] != NULL)
                        + (t->win[DRAW_CLASSES] != NULL);
    t->full_redraw = 1;
}

/* ---------------------------------------------------------------- drawing */

/* One key-bar entry. RANK orders what is left out when the line is too
 * short: the largest rank goes first (see draw_hint_fit). */
typedef struct {
    const char *key, *action;
    int rank;
} Hint;

enum {
    HINT_RANK_ALWAYS,   /* help, quit, and p while paused */
    HINT_RANK_FOCUS,    /* Tab */
    HINT_RANK_PANE,     /* the keys of the focused pane */
    HINT_RANK_BACK,     /* Esc out of a list or the training set */
    HINT_RANK_PAUSE,
    HINT_RANK_VIEW,     /* v and o */
    HINT_RANK_SET,      /* t */
    HINT_RANK_LR,       /* + and - */
    HINT_RANK_SAVE,     /* s, shown on wide terminals */
    HINT_RANK_STOP,     /* x */
    HINT_RANK_GO        /* g, where all the others fit */
};

#define MAX_HINTS 16

/* Fills HINTS with the keys that do something in the current state and
 * returns how many there are: none while the run stops after q. */
static int collect_hints(const Ui *ui, Hint *hints)
{
    const UiGlyphs *g = ui->glyph;
    const TrainerStatus *st = &ui->status;
    int training = st->train_epochs > 0 && st->state != TRAINER_DONE
                   && st->state != TRAINER_FAILED;
    int n = 0;

    if (ui->stopping)
        return 0;
    if (ui->focus_panes > 1)
        hints[n++] = (Hint){"Tab", "pane", HINT_RANK_FOCUS};
    if (ui->focus == DRAW_IMAGE) {
        /* Up and Down step the images too, which matters most while
         * the viewer walks a list that Enter opened. */
        hints[n++] = (Hint){ui->follow_list ? g->all_arrows : g->left_right,
                            "image", HINT_RANK_PANE};
        if (ui->follow_list || ui->show_train)
            hints[n++] = (Hint){"Esc", "all test", HINT_RANK_BACK};
        hints[n++] = (Hint){"g", ui->follow_list && !ui->show_train
                                     ? "go to entry" : "go to image",
                            HINT_RANK_GO};
        if (ui->occlusion != NULL)
            hints[n++] = (Hint){"o", ui->overlay_on ? "hide overlay"
                                                    : "occlusion",
                                HINT_RANK_VIEW};
        if (ui->train->count > 0) {
            /* Over the training images, t goes back to the list that
             * the viewer walked, if any. */
            const char *other = "train set";

            if (ui->show_train)
                other = ui->follow_list ? "the list" : "test set";
            hints[n++] = (Hint){"t", other, HINT_RANK_SET};
        }
    } else if (ui->focus == DRAW_CONFUSION) {
        hints[n++] = (Hint){g->all_arrows, "cell", HINT_RANK_PANE};
        if (ui->has_predictions && st->has_eval
            && st->confusion[ui->cursor_true][ui->cursor_pred] > 0)
            hints[n++] = (Hint){"Enter", "its images", HINT_RANK_PANE};
    } else if (ui->focus == DRAW_CLASSES) {
        hints[n++] = (Hint){g->up_down, "class", HINT_RANK_PANE};
        if (st->has_eval && pane_classes_mistakes(ui, ui->cursor_class) > 0)
            hints[n++] = (Hint){"Enter", "mistakes", HINT_RANK_PANE};
    } else {
        hints[n++] = (Hint){g->up_down, "entry", HINT_RANK_PANE};
        if (ui->list_len > 0)
            hints[n++] = (Hint){"Enter", "open", HINT_RANK_PANE};
    }
    /* A finished run whose final model is not on disk: s is what keeps
     * it, so it goes before the keys that only explore. */
    if (st->train_epochs > 0 && st->state == TRAINER_DONE
        && (st->saved_path == NULL || st->saved_behind || st->save_failed))
        hints[n++] = (Hint){"s", "save", HINT_RANK_BACK};
    hints[n++] = (Hint){"v", "view", HINT_RANK_VIEW};
    if (training) {
        const char *p_label = st->state == TRAINER_PAUSED ? "resume"
                              : ui->pause_pending         ? "cancel pause"
                                                          : "pause";

        /* A paused run does nothing until p, so its key stays even
         * when a notice or a long pane hint leaves little room. */
        hints[n++] = (Hint){"p", p_label,
                            st->state == TRAINER_PAUSED ? HINT_RANK_ALWAYS
                                                        : HINT_RANK_PAUSE};
        hints[n++] = (Hint){"+/-", "lr", HINT_RANK_LR};
        hints[n++] = (Hint){"s", "save", HINT_RANK_SAVE};
        hints[n++] = (Hint){"x", st->stop_after_epoch ? "keep going"
                                                      : "stop after epoch",
                            HINT_RANK_STOP};
    }
    hints[n++] = (Hint){"?", "help", HINT_RANK_ALWAYS};
    hints[n++] = (Hint){"q", "quit", HINT_RANK_ALWAYS};
    return n;
}

/* Draws the prompt of g on the key bar: the number typed so far and the
 * keys that end it. */
static void draw_go_prompt(WINDOW *w, const Ui *ui)
{
    int x = pane_print(w, 0, 1, ui->attr[UI_LABEL], "go to %s ",
                       pane_image_go_unit(ui));

    x = pane_print(w, 0, x, ui->attr[UI_VALUE], "%s_", ui->go_digits);
    x = pane_print(w, 0, x + 2, ui->attr[UI_HINT_KEY], "Enter");
    x = pane_print(w, 0, x, ui->attr[UI_HINT], " go");
    x = pane_print(w, 0, x + 2, ui->attr[UI_HINT_KEY], "Esc");
    pane_print(w, 0, x, ui->attr[UI_HINT], " cancel");
}

/* Draws the key bar: the reply to the last key, when there is one, or
 * else the name of the view other than the training view, then the keys
 * that fit, always with help and quit. */
static void draw_hint(WINDOW *w, const Ui *ui)
{
    Hint hints[MAX_HINTS];
    int widths[MAX_HINTS], ranks[MAX_HINTS], shown[MAX_HINTS];
    int n = collect_hints(ui, hints);
    int width = getmaxx(w);
    int always = 0;

    werase(w);
    if (ui->go_active) {
        draw_go_prompt(w, ui);
        return;
    }
    for (int i = 0; i < n; i++) {
        /* Two columns of space, the key, a space and the action. */
        widths[i] = 3 + draw_text_width(hints[i].key)
                    + draw_text_width(hints[i].action);
        ranks[i] = hints[i].rank;
        if (ranks[i] == HINT_RANK_ALWAYS)
            always += widths[i];
    }

    /* The text starts at column 1, one column closer than the space
     * before each entry would put it. */
    int x = -1;
    if (ui->notice[0] != '\0') {
        int cut;
        int len = draw_text_cut(ui->notice, width - 1 - always, &cut);

        x = pane_print(w, 0, 1, ui->attr[UI_VALUE], "%.*s%s", len,
                       ui->notice, cut ? DRAW_CUT_MARK : "");
    } else if (ui->view != DRAW_VIEW_TRAINING) {
        x = pane_print(w, 0, 1, ui->attr[UI_LABEL], "%s",
                       view_names[ui->view]);
    }
    draw_hint_fit(widths, ranks, n, width - x, shown);
    for (int i = 0; i < n; i++) {
        if (!shown[i])
            continue;
        x = pane_print(w, 0, x + 2, ui->attr[UI_HINT_KEY], "%s",
                       hints[i].key);
        x = pane_print(w, 0, x, ui->attr[UI_HINT], " %s", hints[i].action);
    }
}

static const char *const help_lines[][2] = {
    {"Tab/S-Tab", NULL},  /* the panes of the view, from format_tab_help */
    {"1 2 3  v", "view: training, mistakes, per-class; v: next"},
    {"", "1 focuses the matrix, 2 the list, 3 the table"},
    {"Left/Right", "previous/next image; in the matrix, move"},
    {"Up/Down", "move in a list, table or matrix, or step the images"},
    {"PgUp/PgDn", "10 images or entries back or forward"},
    {"Home/End", "first/last image, entry or class"},
    {"g N Enter", "image N of the set, or entry N of the list it walks"},
    {"Enter", "view the entry, a cell's images or a class's mistakes"},
    {"Esc", "back to all test images and the list, matrix or table"},
    {"t", "browse training or test images; focuses the viewer"},
    {"o", "occlusion overlay on the image, on or off"},
    {"+  -", "learning rate x2 or /2 from the next batch"},
    {"x", "stop after this epoch; again: keep going"},
    {"p", "pause or resume training"},
    {"s", "save a checkpoint now"},
    {"Ctrl-L", "redraw the screen"},
    {"?  F1", "show this help"},
    {"q", "quit (training stops)"},
    {"q", "quit"},
    {"mouse", "click a pane, cell, entry or class; the wheel scrolls"},
};
#define HELP_LINES ((int)(sizeof help_lines / sizeof help_lines[0]))
/* Rows of help_lines for a run that trains, which lists one of the two
 * q rows. */
#define HELP_TRAIN_LINES (HELP_LINES - 1)

/* Returns whether row I of help_lines applies to the run: a run that
 * only explores, or whose training failed, has no training to control,
 * and its q ends nothing. */
static int help_line_shown(const Ui *ui, int i)
{
    static const char *const training_keys[] = {"+  -", "x", "p", "s"};
    const char *key = help_lines[i][0];
    const char *text = help_lines[i][1];
    int no_training = ui->status.train_epochs == 0
                      || ui->status.state == TRAINER_FAILED;

    if (strcmp(key, "q") == 0)
        return no_training == (strcmp(text, "quit") == 0);
    for (size_t k = 0; k < sizeof training_keys / sizeof training_keys[0];
         k++)
        if (strcmp(key, training_keys[k]) == 0)
            return !no_training;
    return 1;
}

/* Two lines list the class abbreviations, five classes each. The
 * borders make 2 more, which with the 20 key lines of a run that trains
 * fill the 24 lines of the smallest screen, so the closing note goes on
 * the bottom border. */
#define HELP_KEY_LINES 2
#define HELP_HEIGHT (HELP_TRAIN_LINES + HELP_KEY_LINES + 2)
_Static_assert(HELP_HEIGHT <= DRAW_MIN_LINES,
               "the help window must fit the smallest screen");
#define HELP_WIDTH 70

/* Returns the height of the help window, borders included. */
static int help_height(const Ui *ui)
{
    int rows = 0;

    for (int i = 0; i < HELP_LINES; i++)
        rows += help_line_shown(ui, i);
    return rows + HELP_KEY_LINES + 2;
}

/* Lists the class abbreviations below the keys, "Tsh T-shirt/top" and so
 * on, in HELP_KEY_LINES lines. */
static void draw_class_key(WINDOW *w, const Ui *ui, int y)
{
    int x = 2;

    for (int c = 0; c < DATASET_CLASSES; c++) {
        int need = (int)strlen(dataset_class_short[c]) + 1
                   + (int)strlen(dataset_class_names[c]);
        if (x > 2 && x + need > HELP_WIDTH - 2) {
            x = 2;
            y++;
        }
        x = pane_print(w, y, x, ui->attr[UI_HINT_KEY], "%s",
                       dataset_class_short[c]);
        x = pane_print(w, y, x, ui->attr[UI_NORMAL], " %s  ",
                       dataset_class_names[c]);
    }
}

/* Writes the help for Tab and Shift-Tab into BUF: the panes that the
 * current view shows and that take keys, in the order Tab visits them. */
static void format_tab_help(const Tui *t, char *buf, size_t size)
{
    const char *separator = " ";
    size_t used = (size_t)snprintf(buf, size, "next/previous pane:");

    for (int i = 0; i < FOCUS_PANES && used < size; i++) {
        if (t->win[focus_order[i]] == NULL)
            continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s", separator,
                                 focus_names[i]);
        separator = ", ";
    }
}

static void place_help(Tui *t);

static void draw_help(Tui *t)
{
    int h = help_height(&t->ui);
    int y = 1;
    char tab_help[HELP_WIDTH];

    /* A run that fails while the help is open loses the rows of the keys
     * that control training, so the window shrinks. */
    if (getmaxy(t->help) != h) {
        place_help(t);
        if (t->help == NULL)
            return;
    }
    werase(t->help);
    /* In ASCII mode the border is plain characters, because box() uses the
     * alternate character set, which tmux in a C locale shows as letters. */
    if (t->ui.glyph == &glyphs_ascii)
        wborder(t->help, '|', '|', '-', '-', '+', '+', '+', '+');
    else
        box(t->help, 0, 0);
    pane_print(t->help, 0, 2, t->ui.attr[UI_VALUE], " Keys ");
    format_tab_help(t, tab_help, sizeof tab_help);
    for (int i = 0; i < HELP_LINES; i++) {
        const char *text = help_lines[i][1] != NULL ? help_lines[i][1]
                                                    : tab_help;

        if (!help_line_shown(&t->ui, i))
            continue;
        /* A line without a key continues the one above. */
        if (help_lines[i][0][0] != '\0')
            pane_print(t->help, y, 2, t->ui.attr[UI_HINT_KEY], "%-10s",
                       help_lines[i][0]);
        pane_print(t->help, y++, 14, t->ui.attr[UI_NORMAL], "%s", text);
    }
    draw_class_key(t->help, &t->ui, y);
    pane_print(t->help, h - 1, 1, t->ui.attr[UI_DIM],
               " Press any key to close this window. ");
    touchwin(t->help);
    wnoutrefresh(t->help);
}

/* Adds TEXT to the N lines in LINE, at most MAX. Text wider than WIDTH
 * columns is split at spaces. A word wider than that gets a line of its
 * own, which the drawing cuts. */
static void add_wrapped(char line[][96], int *n, int max, const char *text,
                        int width)
{
    const char *p = text;

    while (*p != '\0' && *n < max) {
        int len = (int)strlen(p);
        int take = len;

        if (len > width) {
            take = 0;
            for (int k = 0; k <= width && k < len; k++) {
                if (p[k] == ' ')
                    take = k;
            }
            if (take == 0) {
                const char *space = strchr(p, ' ');
                take = space != NULL ? (int)(space - p) : len;
            }
        }
        snprintf(line[*n], sizeof line[*n], "%.*s", take, p);
        (*n)++;
        p += take;
        while (*p == ' ')
            p++;
    }
}

/* Shows what size is needed, and on a second line, when there is one,
 * HINT: what goes on and which key still works. Where those lines are
 * wider than the terminal, they are split at spaces. With too few lines,
 * the hint's last line takes the last. */
static void draw_too_small(const char *hint)
{
    char msg[96], line[8][96];
    int n = 0, hint_from;

    snprintf(msg, sizeof msg, "terminal too small: need %dx%d, have %dx%d",
             DRAW_MIN_COLS, DRAW_MIN_LINES, COLS, LINES);
    add_wrapped(line, &n, 8, msg, COLS);
    hint_from = n;
    add_wrapped(line, &n, 8, hint, COLS);
    /* The hint's last lines stay, and the message's first lines take
     * the rest. */
    int keep_hint = n - hint_from < LINES ? n - hint_from : LINES;
    int keep_msg = n <= LINES ? hint_from : LINES - keep_hint;
    int y = 0;

    werase(stdscr);
    for (int i = 0; i < keep_msg; i++)
        mvwaddnstr(stdscr, y++, 0, line[i], COLS);
    for (int i = n - keep_hint; i < n; i++)
        mvwaddnstr(stdscr, y++, 0, line[i], COLS);
    wnoutrefresh(stdscr);
    doupdate();
}

/* Returns 1 when the stopping run of status ST writes its --save file
 * before it ends. It does not when the latest checkpoint, written there
 * or by s to another file, contains the current position, as finish_run
 * in trainer.c decides. */
static int stop_will_save(const TrainerStatus *st)
{
    return st->save_path != NULL && st->train_epochs > 0
           && !(st->saved_path != NULL && st->saved_epochs == st->epochs_done
                && st->saved_batch == st->batch);
}

const char *tui_stopping_notice(const TrainerStatus *st, int width)
{
    const char *full = "stopping", *brief = "stopping";
    int save = stop_will_save(st);

    if (st->state == TRAINER_EVALUATING) {
        full = save ? "stopping after the evaluation, then saving"
                    : "stopping after the evaluation";
        brief = save ? "stopping: evaluation, save" : "stopping: evaluation";
    } else if (st->state == TRAINER_TRAINING) {
        full = save ? "stopping: dropping the batch in progress, then saving"
                    : "stopping: dropping the batch in progress";
        brief = save ? "stopping: batch, save" : "stopping: batch";
    } else if (save) {
        full = "stopping: saving the checkpoint";
        brief = "stopping: save";
    }
    return draw_text_width(full) <= width ? full : brief;
}

static void (*const pane_draw[DRAW_PANES])(WINDOW *, const Ui *) = {
    [DRAW_STATUS] = pane_status_draw,
    [DRAW_SPARK] = pane_spark_draw,
    [DRAW_IMAGE] = pane_image_draw,
    [DRAW_CONFUSION] = pane_confusion_draw,
    [DRAW_MISTAKES] = pane_list_draw,
    [DRAW_CLASSES] = pane_classes_draw,
    [DRAW_HINT] = draw_hint,
};

static void draw_screen(Tui *t)
{
    if (screen_away(t))
        return;
    if (!t->layout.fits) {
        const TrainerStatus *st = &t->ui.status;
        int training = st->train_epochs > 0 && st->state != TRAINER_DONE
                       && st->state != TRAINER_FAILED;

        /* After q, no key works until the run stops, so no key is named. */
        if (t->ui.stopping)
            draw_too_small(tui_stopping_notice(st, COLS));
        else
            draw_too_small(training ? "training goes on; q quits"
                                    : "q quits");
        t->ui.dirty = 0;
        t->full_redraw = 0;
        return;
    }
    if (t->full_redraw) {
        werase(stdscr);
        wnoutrefresh(stdscr);
        t->ui.dirty = UI_DIRTY_ALL;
        t->full_redraw = 0;
    }
    if (t->win[DRAW_MISTAKES] != NULL)
        pane_list_scroll(&t->ui, getmaxy(t->win[DRAW_MISTAKES]));
    for (int p = 0; p < DRAW_PANES; p++) {
        if (t->win[p] != NULL && (t->ui.dirty & UI_DIRTY(p))) {
            pane_draw[p](t->win[p], &t->ui);
            wnoutrefresh(t->win[p]);
        }
    }
    /* A pane drawn under the overlay would cover it, so it goes last. */
    if (t->help != NULL)
        draw_help(t);
    doupdate();
    t->ui.dirty = 0;
}

/* ---------------------------------------------------------------- polling */

static int history_changed(const TrainerStatus *a, const TrainerStatus *b)
{
    size_t n = (size_t)b->n_history * sizeof(float);
    size_t nt = (size_t)b->n_test_history * sizeof(float);

    return a->n_history != b->n_history
           || a->n_test_history != b->n_test_history
           || memcmp(a->loss_history, b->loss_history, n) != 0
           || memcmp(a->acc_history, b->acc_history, n) != 0
           || memcmp(a->test_acc_history, b->test_acc_history, nt) != 0;
}

static int status_line_changed(const TrainerStatus *a, const TrainerStatus *b)
{
    return a->state != b->state || a->epoch != b->epoch
           || a->epochs != b->epochs || a->batch != b->batch
           || a->batches_per_epoch != b->batches_per_epoch
           || (long)a->images_per_sec != (long)b->images_per_sec
           || (long)a->elapsed != (long)b->elapsed
           || (long)a->eta != (long)b->eta || a->threads != b->threads
           || a->has_eval != b->has_eval || a->test_acc != b->test_acc
           || a->lr != b->lr || a->stop_after_epoch != b->stop_after_epoch
           || a->message_seq != b->message_seq
           || strcmp(a->message, b->message) != 0;
}

/* Notes when a new status message arrives and whether the status line
 * shows it now or the latest result instead. */
static void sync_message(Ui *ui, double now)
{
    const TrainerStatus *st = &ui->status;

    if (st->message_seq != ui->message_seq) {
        ui->message_seq = st->message_seq;
        ui->message_since = now;
        ui->message_eval = st->eval_generation;
    }
    int shown = st->message[0] != '\0'
                && draw_message_shown(now - ui->message_since,
                                      st->message_is_error,
                                      st->eval_generation != ui->message_eval,
                                      st->state == TRAINER_FAILED);
    if (shown != ui->message_shown) {
        ui->message_shown = shown;
        ui->dirty |= UI_DIRTY(DRAW_STATUS);
    }
}

/* Clears the key bar's "saving to" notice once a status message newer
 * than the request arrives, so that the key bar and the status pane
 * agree as soon as the save has finished. */
static void end_save_notice(Tui *t)
{
    Ui *ui = &t->ui;

    if (!t->save_pending || ui->status.message_seq == t->save_seq)
        return;
    t->save_pending = 0;
    /* A reply to a later key has replaced it already. */
    if (strncmp(ui->notice, saving_notice, strlen(saving_notice)) != 0)
        return;
    ui->notice[0] = '\0';
    ui->dirty |= UI_DIRTY(DRAW_HINT);
}

/* Clears the key bar's "pausing after ..." reply once the trainer has
 * paused, so that it agrees with the status pane. */
static void end_pause_notice(Tui *t)
{
    Ui *ui = &t->ui;

    if (ui->status.state != TRAINER_PAUSED
        || strncmp(ui->notice, pausing_notice, strlen(pausing_notice)) != 0)
        return;
    ui->notice[0] = '\0';
    ui->dirty |= UI_DIRTY(DRAW_HINT);
}

/* Copies the trainer's status and, after an evaluation, its predictions,
 * and marks the panes that show what changed. */
static void poll_trainer(Tui *t, TrainerStatus *scratch)
{
    Ui *ui = &t->ui;

    trainer_get_status(t->tr, scratch);
    if (status_line_changed(&ui->status, scratch))
        ui->dirty |= UI_DIRTY(DRAW_STATUS) | UI_DIRTY(DRAW_HINT);
    if (history_changed(&ui->status, scratch))
        ui->dirty |= UI_DIRTY(DRAW_SPARK);
    /* The sparklines' test value can come from the evaluation of a
     * loaded model rather than from the history. */
    if (scratch->eval_generation != ui->status.eval_generation
        || scratch->has_eval != ui->status.has_eval)
        ui->dirty |= UI_DIRTY(DRAW_CONFUSION) | UI_DIRTY(DRAW_CLASSES)
                     | UI_DIRTY(DRAW_SPARK);
    memcpy(&ui->status, scratch, sizeof *scratch);
    sync_message(ui, util_now());
    end_save_notice(t);
    end_pause_notice(t);

    if (trainer_copy_predictions(t->tr, &ui->pred_generation, ui->predicted,
                                 ui->probs)) {
        ui->has_predictions = 1;
        pane_list_refresh(ui);
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    }
    pane_image_sync_overlay(ui);

    if (ui->notice[0] != '\0' && util_now() >= ui->notice_until) {
        ui->notice[0] = '\0';
        ui->dirty |= UI_DIRTY(DRAW_HINT);
    }
}

/* ---------------------------------------------------------------- keys */

enum { KEY_RESULT_CONTINUE, KEY_RESULT_QUIT };

static const char explore_only_notice[] =
    "explore only (--epochs 0): there is no training to control";

/* Returns whether the trainer runs the evaluation after the run's last
 * epoch, which no batch follows. The test of a loaded model before its
 * first batch has state TRAINER_EVALUATING too, but there the epoch
 * number names the epoch to come, so it exceeds the epochs done. */
static int evaluating_last(const TrainerStatus *st)
{
    return st->state == TRAINER_EVALUATING && st->epochs_done >= st->epoch
           && (st->epoch >= st->epochs || st->stop_after_epoch);
}

static void toggle_pause(Tui *t)
{
    TrainerState state = t->ui.status.state;

    if (t->ui.status.train_epochs == 0) {
        pane_notice(&t->ui, explore_only_notice);
    } else if (state == TRAINER_PAUSED) {
        trainer_set_paused(t->tr, 0);
        t->ui.pause_pending = 0;
        pane_notice(&t->ui, "resuming");
    } else if (state == TRAINER_DONE || state == TRAINER_FAILED) {
        pane_notice(&t->ui, "training has ended; nothing to pause");
    } else if (evaluating_last(&t->ui.status)) {
        pane_notice(&t->ui, "the last epoch's evaluation is running; "
                            "nothing to pause");
    } else if (trainer_set_paused(t->tr, 1)) {
        /* A second p before the batch or evaluation ended takes the
         * request back: the status the state came from is older than
         * the first p. */
        trainer_set_paused(t->tr, 0);
        t->ui.pause_pending = 0;
        pane_notice(&t->ui, "pause cancelled; training goes on");
    } else {
        t->ui.pause_pending = 1;
        pane_notice(&t->ui, state == TRAINER_EVALUATING
                            ? "pausing after this evaluation"
                            : "pausing after the current batch");
    }
}

static void request_save(Tui *t)
{
    char msg[sizeof t->ui.notice];

    /* Saving would only rewrite the model as it was loaded, or write an
     * untrained one. */
    if (t->ui.status.train_epochs == 0) {
        pane_notice(&t->ui, "explore only (--epochs 0): nothing new to save");
        return;
    }
    /* The trainer would reject it, and its reply would replace the
     * failure's message in the status line. */
    if (t->ui.status.state == TRAINER_FAILED) {
        pane_notice(&t->ui, "training failed, so there is nothing to save");
        return;
    }
    /* An s after the run ended has written the final model, and writing
     * it again would repeat the same "saved" message, which reads as no
     * reply. */
    const TrainerStatus *st = &t->ui.status;
    if (st->state == TRAINER_DONE && t->saved_when_done
        && st->saved_path != NULL && !st->save_failed && !t->save_pending) {
        snprintf(msg, sizeof msg, "already saved to %s", st->saved_path);
        pane_notice(&t->ui, msg);
        return;
    }
    t->saved_when_done = st->state == TRAINER_DONE;

    TrainerStatus *now = xmalloc(sizeof *now);

    /* A fresh copy, because a message that came after the last poll
     * would otherwise count as the reply to this request. */
    trainer_get_status(t->tr, now);
    t->save_seq = now->message_seq;
    t->save_pending = 1;
    free(now);

    const char *path = trainer_request_save(t->tr);

    snprintf(msg, sizeof msg, "%s%s", saving_notice, path);
    pane_notice(&t->ui, msg);
}

/* Moves the focus to the next (STEP 1) or previous (STEP -1) pane that
 * takes keys and is shown. */
static void switch_focus(Tui *t, int step)
{
    const int n = FOCUS_PANES;
    Ui *ui = &t->ui;
    int at = 0;

    for (int i = 0; i < n; i++) {
        if (focus_order[i] == ui->focus)
            at = i;
    }
    for (int i = 1; i <= n; i++) {
        DrawPane next = focus_order[(at + step * i + n * n) % n];
        if (t->win[next] != NULL) {
            ui->focus = next;
            break;
        }
    }
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_CONFUSION)
                 | UI_DIRTY(DRAW_MISTAKES) | UI_DIRTY(DRAW_CLASSES)
                 | UI_DIRTY(DRAW_HINT);
}

/* Lists all mistakes again after Enter on a cell or a class narrowed the
 * list. A viewer that walked the narrowed list stays on its image. */
static void list_all_mistakes(Ui *ui)
{
    if (ui->filter_true < 0)
        return;
    if (ui->follow_list)
        pane_image_show_all(ui);
    pane_list_filter(ui, -1, -1);
    ui->list_opener = DRAW_IMAGE;
}

/* Shows VIEW and gives the focus to the pane it is about. The mistakes
 * view always opens on the whole list, because a user who presses 2
 * expects all mistakes, as in other programs whose number keys switch
 * screens. A list still narrowed to the cell or class that Enter opened
 * would look like the whole list under another title. */
static void set_view(Tui *t, DrawView view)
{
    t->ui.view = view;
    apply_layout(t);
    if (view == DRAW_VIEW_MISTAKES) {
        list_all_mistakes(&t->ui);
        t->ui.focus = DRAW_MISTAKES;
    } else if (view == DRAW_VIEW_TRAINING) {
        t->ui.focus = DRAW_CONFUSION;
    } else {
        t->ui.focus = DRAW_CLASSES;
    }
    pane_notice(&t->ui, view_names[view]);
}

static void scale_lr(Tui *t, float factor)
{
    char msg[96];

    if (t->ui.status.train_epochs == 0) {
        pane_notice(&t->ui, explore_only_notice);
        return;
    }
    /* trainer_scale_lr ignores the factor once the run has ended, and
     * after the last evaluation no batch would use it. */
    TrainerState state = t->ui.status.state;
    if (state == TRAINER_DONE || state == TRAINER_FAILED) {
        pane_notice(&t->ui, "training has ended; no batch is left for a "
                            "new learning rate");
        return;
    }
    if (evaluating_last(&t->ui.status)) {
        pane_notice(&t->ui, "the last epoch's evaluation is running; no "
                            "batch is left for a new learning rate");
        return;
    }
    float lr = trainer_scale_lr(t->tr, factor);

    snprintf(msg, sizeof msg, "learning rate %.3g from the next batch", lr);
    pane_notice(&t->ui, msg);
}

static void toggle_stop_after_epoch(Tui *t)
{
    const TrainerStatus *st = &t->ui.status;

    if (st->train_epochs == 0) {
        pane_notice(&t->ui, explore_only_notice);
        return;
    }
    if (st->state == TRAINER_DONE || st->state == TRAINER_FAILED) {
        pane_notice(&t->ui, "training has ended");
        return;
    }
    /* Withdrawing a stop in the last epoch would claim a next epoch. */
    if (st->epoch >= st->epochs && !st->stop_after_epoch) {
        pane_notice(&t->ui, "this is the last epoch; training stops after "
                            "it anyway");
        return;
    }
    trainer_stop_after_epoch(t->tr, !st->stop_after_epoch);
    pane_notice(&t->ui, st->stop_after_epoch
                        ? "training continues after this epoch"
                        : "training stops after this epoch (x: keep going)");
}

static void toggle_overlay(Ui *ui)
{
    if (ui->occlusion == NULL) {
        pane_notice(ui, "occlusion is not available: its thread did not start");
        return;
    }
    ui->overlay_on = !ui->overlay_on;
    pane_notice(ui, ui->overlay_on ? "occlusion overlay on"
                                   : "occlusion overlay off");
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_HINT);
}

/* Switches the viewer between the test and the training images and gives
 * it the focus, so that the arrow keys step through the images it now
 * shows, wherever the focus was. */
static void toggle_image_set(Tui *t)
{
    Ui *ui = &t->ui;

    pane_image_toggle_set(ui);
    if (ui->train->count == 0 || ui->focus == DRAW_IMAGE)
        return;
    /* Esc from the viewer goes back to the pane that opened its list,
     * which stays as it was. */
    ui->focus = DRAW_IMAGE;
    ui->dirty = UI_DIRTY_ALL;
}

/* Shows all test images and lists all mistakes again. When the viewer
 * walked the list with the focus, the focus goes back to the pane that
 * opened the list, if the view still shows it. */
static void show_all_images(Tui *t)
{
    Ui *ui = &t->ui;
    DrawPane back = ui->follow_list && ui->focus == DRAW_IMAGE
                    ? ui->list_opener : DRAW_IMAGE;

    /* The viewer takes its image from the list before the list is
     * rebuilt, so it stays on that image. */
    pane_image_show_all(ui);
    list_all_mistakes(ui);
    ui->list_opener = DRAW_IMAGE;
    if (back != DRAW_IMAGE && t->win[back] != NULL) {
        ui->focus = back;
        ui->dirty = UI_DIRTY_ALL;
    }
}

/* Takes the warning off the status line, as the first key read while
 * the interface fits does. The latest trainer message, such as one of
 * trainer_create, was covered by the warning unless it was an error, so
 * it then gets its full time on the line. */
static void hide_warning(Ui *ui)
{
    if (ui->warning == NULL)
        return;
    /* The second warning, if any, takes the line for its own full time. */
    ui->warning = ui->warning_next;
    ui->warning_next = NULL;
    ui->warning_since = 0.0;
    ui->message_since = util_now();
    ui->dirty |= UI_DIRTY(DRAW_STATUS);
}

/* Takes the warning off the status line once a screen that fits has
 * shown it for WARNING_SECONDS. The time counts from the first tick at
 * which the interface fits, because a screen too small shows no status
 * line. */
static void expire_warning(Tui *t, double now)
{
    Ui *ui = &t->ui;

    if (ui->warning == NULL || !t->layout.fits)
        return;
    if (ui->warning_since == 0.0)
        ui->warning_since = now;
    else if (now - ui->warning_since >= WARNING_SECONDS)
        hide_warning(ui);
}

/* Sends KEY to the pane with the focus. */
static void pane_key(Ui *ui, int key)
{
    if (ui->focus == DRAW_CONFUSION)
        pane_confusion_key(ui, key);
    else if (ui->focus == DRAW_MISTAKES)
        pane_list_key(ui, key);
    else if (ui->focus == DRAW_CLASSES)
        pane_classes_key(ui, key);
    else
        pane_image_key(ui, key);
}

/* Creates the help overlay's window, centred on the screen, when the help
 * is open and the interface fits, and removes it otherwise. The next
 * redraw draws it. */
static void place_help(Tui *t)
{
    if (t->help != NULL) {
        delwin(t->help);
        t->help = NULL;
        t->full_redraw = 1;
    }
    if (t->help_open && t->layout.fits) {
        int h = help_height(&t->ui);

        t->help = newwin(h, HELP_WIDTH, (LINES - h) / 2,
                         (COLS - HELP_WIDTH) / 2);
        t->ui.dirty |= UI_DIRTY(DRAW_HINT);
    }
}

/* Opens or closes the help overlay. */
static void toggle_help(Tui *t, int show)
{
    if (show == t->help_open)
        return;
    t->help_open = show;
    place_help(t);
}

/* Takes KEY while the prompt of g is open: digits add to the number,
 * Backspace takes the last one off, Enter moves the viewer there,
 * and Esc or g closes the prompt. Any other key closes it too and returns
 * 0, so that the key then does what it always does. */
static int go_key(Ui *ui, int key)
{
    size_t len = strlen(ui->go_digits);

    ui->dirty |= UI_DIRTY(DRAW_HINT);
    if (key >= '0' && key <= '9') {
        if (len + 1 < sizeof ui->go_digits) {
            ui->go_digits[len] = (char)key;
            ui->go_digits[len + 1] = '\0';
        }
        return 1;
    }
    if (key == KEY_BACKSPACE || key == 127 || key == 8) {
        if (len > 0)
            ui->go_digits[len - 1] = '\0';
        return 1;
    }
    ui->go_active = 0;
    if (key == KEY_ENTER || key == '\n' || key == '\r') {
        if (len > 0)
            pane_image_go(ui, strtol(ui->go_digits, NULL, 10));
        return 1;
    }
    return key == KEY_ESC || key == 'g' || key == 'G';
}

/* Opens the prompt of g, where the user types the number of an image or
 * a list entry to show. */
static void open_go_prompt(Tui *t)
{
    Ui *ui = &t->ui;

    if (t->win[DRAW_IMAGE] == NULL) {
        pane_notice(ui, "no image viewer in this view; v changes the view");
        return;
    }
    ui->go_active = 1;
    ui->go_digits[0] = '\0';
    ui->dirty |= UI_DIRTY(DRAW_HINT);
}

static int handle_key(Tui *t, int key)
{
    Ui *ui = &t->ui;

    if (key == KEY_RESIZE) {
        /* The overlay stays open, centred on the new size. A screen too
         * small for the interface hides it until a resize makes room. */
        apply_layout(t);
        place_help(t);
        return KEY_RESULT_CONTINUE;
    }
    /* While the overlay is hidden, keys do what they do on any screen
     * that is too small, where the notice names q as the key that quits. */
    if (t->help_open && t->layout.fits) {
        /* Any key closes the overlay, q too, as in a pager: quitting
         * from there would end the run by surprise. */
        toggle_help(t, 0);
        return KEY_RESULT_CONTINUE;
    }
    if (key == 'q' || key == 'Q')
        return KEY_RESULT_QUIT;
    if (!t->layout.fits)
        return KEY_RESULT_CONTINUE;
    hide_warning(ui);
    if (ui->go_active && go_key(ui, key))
        return KEY_RESULT_CONTINUE;

    switch (key) {
    case '\t':
        switch_focus(t, 1);
        break;
    case KEY_BTAB:
        switch_focus(t, -1);
        break;
    case '1':
    case '2':
    case '3':
        set_view(t, (DrawView)(key - '1'));
        break;
    case 'v':
    case 'V':
        set_view(t, (DrawView)((ui->view + 1) % DRAW_VIEWS));
        break;
    case 'o':
    case 'O':
        toggle_overlay(ui);
        break;
    case 't':
    case 'T':
        toggle_image_set(t);
        break;
    case 'g':
    case 'G':
        open_go_prompt(t);
        break;
    case '+':
    case '=':
        scale_lr(t, 2.0f);
        break;
    case '-':
    case '_':
        scale_lr(t, 0.5f);
        break;
    case 'x':
    case 'X':
        toggle_stop_after_epoch(t);
        break;
    case KEY_MOUSE:
        tui_mouse(ui, &t->layout);
        break;
    case 'p':
    case 'P':
        toggle_pause(t);
        break;
    case 's':
    case 'S':
        request_save(t);
        break;
    case '?':
    case KEY_F(1):
        toggle_help(t, 1);
        break;
    case KEY_ESC:
        show_all_images(t);
        break;
    case KEY_CTRL_L:
        clearok(curscr, TRUE);
        t->full_redraw = 1;
        break;
    default:
        pane_key(ui, key);
        break;
    }
    return KEY_RESULT_CONTINUE;
}

/* ---------------------------------------------------------------- loop */

/*
 * Returns the key that getch reads without waiting, or ERR. A SIGSTOP
 * and a kill -CONT can move the process to the background right after
 * the caller found it in the foreground. With SIGTTIN blocked, a read
 * there fails with EIO (Linux, POSIX) instead of stopping the process,
 * which after fg would have gone on reading in the shell's line mode.
 */
static int getch_in_foreground(void)
{
    sigset_t ttin, old;

    sigemptyset(&ttin);
    sigaddset(&ttin, SIGTTIN);
    pthread_sigmask(SIG_BLOCK, &ttin, &old);
    timeout(0);
    errno = 0;
    int key = getch();
    int saved_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved_errno;
    return key;
}

/*
 * Waits up to WAIT_MS for a key and returns it, or ERR. The wait is a
 * poll of standard input, and getch then only takes what is there. When
 * getch waited itself, its wait could see a key typed right after Ctrl-Z
 * that the shell then read while fmnist was stopped. After fg, getch
 * blocked in read until the next key, and the screen froze.
 * Keys that curses kept from an earlier read, and KEY_RESIZE, come at
 * the latest after WAIT_MS.
 *
 * Input that poll reports but getch cannot read means a closed terminal.
 * When it hung up, *GONE is set. When only the input ended (standard
 * input at end of file on a working terminal), keys are no longer read
 * and later calls just sleep, so the loop never spins.
 */
static int read_key(Tui *t, int wait_ms, int *gone)
{
    struct pollfd in = {STDIN_FILENO, POLLIN, 0};

    if (t->input_closed || screen_away(t)) {
        napms(wait_ms);
        return ERR;
    }
    if (take_size_change(t))
        return KEY_RESIZE;
    int ready = poll(&in, 1, wait_ms) > 0;
    /* A stop during the poll may have left the process in the
     * background, or in the foreground with the shell's terminal
     * modes. */
    if (screen_away(t))
        return ERR;
    if (take_size_change(t))
        return KEY_RESIZE;
    int key = getch_in_foreground();
    int read_errno = errno;

    if (key != ERR) {
        t->fast_errors = 0;
        return key;
    }
    /* A read in the background fails with EIO too, and that is no sign
     * of a closed terminal. */
    if (screen_away(t))
        return ERR;
    if (!ready && read_errno != EIO) {
        t->fast_errors = 0;
        return ERR;
    }
    if (tty_hung_up(STDIN_FILENO) || tty_hung_up(STDOUT_FILENO)) {
        *gone = 1;
        return ERR;
    }
    if (++t->fast_errors > MAX_FAST_ERRORS) {
        t->input_closed = 1;
        pane_notice(&t->ui, "keyboard input ended; Ctrl-C stops the run");
    }
    return ERR;
}

/* Runs until q, a quit signal, a hangup signal or a closed terminal.
 * Returns TUI_DETACHED in the last two cases, TUI_QUIT otherwise. */
static int run_loop(Tui *t)
{
    TrainerStatus *scratch = xmalloc(sizeof *scratch);
    double last_draw = -1;
    int gone = 0;

    volatile sig_atomic_t *quit = t->opt->quit_signal;
    volatile sig_atomic_t *hangup = t->opt->hangup;

    while (quit == NULL || !*quit) {
        if (hangup != NULL && *hangup) {
            gone = 1;
            break;
        }
        poll_trainer(t, scratch);
        expire_warning(t, util_now());

        /* Redraw when something changed, at most REDRAW_HZ times a
         * second. Until then the key timeout only runs to the next slot. */
        double now = util_now();
        double wait = TICK_MS / 1000.0;
        if (t->ui.dirty || t->full_redraw) {
            double next = last_draw + 1.0 / REDRAW_HZ;
            if (now >= next) {
                draw_screen(t);
                last_draw = now;
            } else {
                wait = next - now;
            }
        }

        int key = read_key(t, (int)(wait * 1000) + 1, &gone);
        if (gone)
            break;
        if (key != ERR && handle_key(t, key) == KEY_RESULT_QUIT)
            break;
    }
    free(scratch);
    return gone ? TUI_DETACHED : TUI_QUIT;
}

/* Asks the trainer to stop and keeps the screen up, with a notice, until
 * it has: a stop during an evaluation waits for the evaluation, and the
 * terminal would otherwise stay blank and echo keys meanwhile. A resize
 * lays the screen out again, and other keys are read and dropped.
 * Returns early when the terminal goes away. */
static void wait_for_stop(Tui *t)
{
    TrainerStatus *scratch = xmalloc(sizeof *scratch);
    int terminal_gone = 0;

    trainer_request_stop(t->tr);
    t->ui.stopping = 1;
    while (!terminal_gone) {
        poll_trainer(t, scratch);
        TrainerState state = t->ui.status.state;

        if (state == TRAINER_DONE || state == TRAINER_FAILED)
            break;
        /* The key bar's text starts at column 1. */
        int bar_width = t->layout.pane[DRAW_HINT].w - 1;

        pane_notice(&t->ui, tui_stopping_notice(&t->ui.status, bar_width));
        draw_screen(t);
        /* Other keys are dropped, but a new size needs a new layout,
         * or the panes stay blank until the run ends. */
        if (read_key(t, TICK_MS, &terminal_gone) == KEY_RESIZE)
            apply_layout(t);
    }
    free(scratch);
}

static void ui_init(Ui *ui, const Dataset *test, const Dataset *train)
{
    static const Dataset no_images = {0};
    size_t n = (size_t)test->count;

    ui->test = test;
    ui->train = train != NULL ? train : &no_images;
    ui->predicted = xcalloc(n, sizeof *ui->predicted);
    ui->probs = xcalloc(n * DATASET_CLASSES, sizeof *ui->probs);
    ui->list = xcalloc(n, sizeof *ui->list);
    ui->filter_true = ui->filter_pred = -1;
    ui->focus = DRAW_IMAGE;
    ui->list_opener = DRAW_IMAGE;
    ui->view = DRAW_VIEW_TRAINING;
    ui->dirty = UI_DIRTY_ALL;
}

static void ui_free(Ui *ui)
{
    free(ui->predicted);
    free(ui->probs);
    free(ui->list);
}

int tui_run(Trainer *tr, const Dataset *test, const TuiOptions *opt,
            char *err, size_t errlen)
{
    Tui *t = xcalloc(1, sizeof *t);

    t->tr = tr;
    t->opt = opt;
    if (screen_start(t, err, errlen) != 0) {
        free(t);
        return -1;
    }
    ui_init(&t->ui, test, opt->train);
    const char *spec = trainer_net(tr)->spec;
    t->ui.model = net_preset_name(spec) != NULL ? net_preset_name(spec)
                                                : spec;
    trainer_get_status(tr, &t->ui.status);
    /* A message set while the trainer was created, before this, counts
     * as arriving now. */
    t->ui.message_seq = t->ui.status.message_seq;
    t->ui.message_since = util_now();
    t->ui.message_eval = t->ui.status.eval_generation;
    t->ui.warning = opt->warning;
    t->ui.warning_next = opt->warning != NULL ? opt->warning_next : NULL;
    apply_layout(t);
    /* The UI also works without the occlusion thread, and o then reports
     * that it did not start. */
    char occlusion_err[128];
    t->ui.occlusion = occlusion_start(tr, occlusion_err, sizeof occlusion_err);

    int result = run_loop(t);

    if (result == TUI_QUIT)
        wait_for_stop(t);
    occlusion_stop(t->ui.occlusion);
    screen_stop(t, result == TUI_DETACHED);
    ui_free(&t->ui);
    free(t);
    return result;
}

/* Writes the training time and what the loaded checkpoint held, after
 * the lines of tui_print_stop on where a stop signal left the run. */
static void print_stopped_progress(FILE *out, const TrainerStatus *st)
{
    char duration[16];

    draw_format_duration(st->elapsed, duration, sizeof duration);
    fprintf(out, "fmnist: training time %s\n", duration);
    if (st->loaded_batch > 0) {
        char held[64];

        format_position(st->epochs - st->train_epochs, st->loaded_batch,
                        held, sizeof held);
        fprintf(out, "fmnist: the loaded checkpoint held %s\n", held);
    }
}

/* Writes the first summary line: what the run did with the epochs. */
static void print_progress_summary(FILE *out, const TrainerStatus *st)
{
    int loaded = st->epochs - st->train_epochs;
    char duration[16];

    if (st->train_epochs == 0) {
        char trained[64];

        if (pane_format_trained(st, trained, sizeof trained))
            fprintf(out, "fmnist: explored a model trained %s; nothing "
                    "was trained in this run\n", trained);
        else
            fprintf(out, "fmnist: explored an untrained network; nothing "
                    "was trained in this run\n");
        return;
    }
    draw_format_duration(st->elapsed, duration, sizeof duration);
    const char *end = st->state == TRAINER_FAILED ? "failed"
                      : st->epochs_done >= st->epochs ? "finished"
                      : "stopped";

    /* "after 4 of 9 epochs (4 loaded)" would read as if this run had
     * trained 4, so a run that finished none names the epoch it was in. */
    if (st->epochs_done <= loaded && st->epochs_done < st->epochs) {
        fprintf(out, "fmnist: %s in epoch %d of %d; training time %s\n",
                end, st->epochs_done + 1, st->epochs, duration);
        if (loaded > 0 && st->loaded_batch == 0)
            fprintf(out, "fmnist: %d epoch%s loaded, and this run "
                    "finished none\n", loaded,
                    loaded == 1 ? " was" : "s were");
    } else {
        fprintf(out, "fmnist: %s after %d of %d epoch%s", end,
                st->epochs_done, st->epochs, st->epochs == 1 ? "" : "s");
        if (loaded > 0 && st->loaded_batch == 0)
            fprintf(out, " (%d loaded)", loaded);
        fprintf(out, "; training time %s\n", duration);
    }
    /* A checkpoint written mid-epoch held part of the next epoch too. */
    if (st->loaded_batch > 0) {
        char held[64];

        format_position(loaded, st->loaded_batch, held, sizeof held);
        fprintf(out, "fmnist: the loaded checkpoint held %s\n", held);
    }
    /* A line of its own keeps each line under 80 columns. */
    if (st->epochs_done < st->epochs && st->batch > 0
        && st->batch < st->batches_per_epoch)
        fprintf(out, "fmnist: epoch %d stopped after %ld of %ld batches\n",
                st->epoch, st->batch, st->batches_per_epoch);
}

/* Prints "fmnist: " LABEL TEXT as a line, with the control characters
 * of TEXT escaped, since it may contain a name from the command line. */
static void print_escaped(FILE *out, const char *label, const char *text)
{
    size_t len = util_escape_unprintable(text, NULL, 0);
    char *escaped = xmalloc(len + 1);

    util_escape_unprintable(text, escaped, len + 1);
    fprintf(out, "fmnist: %s%s\n", label, escaped);
    free(escaped);
}

int tui_format_failed_save(const TrainerStatus *st, char *buf, size_t len)
{
    if (st->saved_path != NULL && st->saved_batch == 0)
        snprintf(buf, len, "training failed, so %s still holds the model "
                 "of epoch %d", st->saved_path, st->saved_epochs);
    else if (st->saved_path != NULL)
        snprintf(buf, len, "training failed, so %s still holds the model "
                 "after batch %ld of epoch %d", st->saved_path,
                 st->saved_batch, st->saved_epochs + 1);
    else if (st->save_path != NULL && st->save_is_load)
        snprintf(buf, len, "training failed, so %s still holds the model "
                 "loaded from it", st->save_path);
    else if (st->save_path != NULL)
        snprintf(buf, len, "no checkpoint written, because training failed");
    else
        snprintf(buf, len, "%s", "");
    return buf[0] != '\0';
}

/* Writes the summary after the lines on the epochs. */
static void print_results(FILE *out, const TrainerStatus *st,
                          const TuiSummary *summary)
{
    char failed_save[PATH_MAX + 128];

    if (st->has_eval && st->test_nonfinite > 0) {
        /* As with --eval, images without a prediction leave the model
         * without an accuracy. The trainer's message, printed after the
         * summary or before it for a failed run, gives the reason. */
        fprintf(out, "fmnist: no test accuracy: %ld test image%s no "
                "prediction\n", st->test_nonfinite,
                st->test_nonfinite == 1 ? " has" : "s have");
    } else if (st->has_eval) {
        fprintf(out, "fmnist: test accuracy %.2f%%, test loss %.4f",
                100 * st->test_acc, st->test_loss);
        if (st->has_val)
            fprintf(out, ", validation accuracy %.2f%%", 100 * st->val_acc);
        fputc('\n', out);
        /* A run stopped within an epoch ends with an untested network. */
        if (st->eval_behind && st->eval_epoch_end)
            fprintf(out, "fmnist: measured on the network after epoch %d, "
                    "not on the final network\n", st->epochs_done);
        else if (st->eval_behind)
            fprintf(out, "fmnist: measured on the network as loaded, not on "
                    "the final network\n");
    } else if (st->n_test_history > 0) {
        /* A resumed run stopped before its first evaluation: the loaded
         * run's curve still shows where the model stood. */
        fprintf(out, "fmnist: no test evaluation finished in this run\n"
                "fmnist: the loaded run's test accuracy curve ends at "
                "%.2f%%\n",
                100 * st->test_acc_history[st->n_test_history - 1]);
    } else {
        fprintf(out, "fmnist: no test evaluation finished\n");
    }
    if (st->state == TRAINER_FAILED && st->train_epochs > 0) {
        if (tui_format_failed_save(st, failed_save, sizeof failed_save))
            print_escaped(out, "", failed_save);
    } else if (st->saved_path != NULL) {
        print_escaped(out, "checkpoint ", st->saved_path);
        if (st->save_failed) {
            fprintf(out, "fmnist: the last save failed, so it holds an "
                    "earlier model\n");
        } else if (st->saved_behind) {
            /* After s without --save, training went on past the save. */
            char saved[64];

            format_position(st->saved_epochs, st->saved_batch, saved,
                            sizeof saved);
            fprintf(out, "fmnist: it holds an earlier model, after %s\n",
                    saved);
            if (summary->detached)
                fprintf(out, "fmnist: next time, --save FILE saves the "
                        "final model\n");
            else
                fprintf(out, "fmnist: s before q, or --save FILE, saves "
                        "the final model\n");
        }
    } else if (st->save_failed) {
        fprintf(out, "fmnist: no checkpoint written: every save failed\n");
    } else if (st->train_epochs > 0
               && (summary->detached || summary->save_key_blocked)) {
        fprintf(out, "fmnist: no checkpoint written; next time, --save "
                "FILE writes one\n");
    } else if (st->train_epochs > 0) {
        /* The interface has closed, so the s key is for the next run. */
        fprintf(out, "fmnist: no checkpoint written; next time, --save "
                "FILE or the s key writes one\n");
    }
    /* The caller prints the reason for a failed run before the summary.
     * A failed save is repeated here, because the checkpoint above is
     * then older. */
    if (st->message_is_error && st->state != TRAINER_FAILED)
        print_escaped(out, "", st->message);
    if (summary->log_path != NULL)
        print_escaped(out, "log ", summary->log_path);
    /* The status line showed the warnings only for a few seconds. */
    if (summary->warning != NULL)
        print_escaped(out, "warning: ", summary->warning);
    /* Once s has saved, the checkpoint line above names the file, so the
     * warning's "s saves to a new file such as ..." is out of date. */
    if (summary->load_warning != NULL && st->saved_path == NULL)
        print_escaped(out, "warning: ", summary->load_warning);
    fflush(out);
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM"
                                                     : "a signal";
}

void tui_print_stop(FILE *out, const TrainerStatus *st, int sig)
{
    const char *name = signal_name(sig);
    int loaded = st->epochs - st->train_epochs;
    int none_finished = st->epochs_done <= loaded;

    if (st->epochs_done < st->epochs && st->batch > 0
        && st->batch < st->batches_per_epoch)
        fprintf(out, "fmnist: stopped by %s in epoch %d after %ld of %ld "
                "batches\n", name, st->epoch, st->batch,
                st->batches_per_epoch);
    else if (none_finished && st->batch == 0)
        fprintf(out, "fmnist: stopped by %s in epoch %d of %d, before its "
                "first batch\n", name, st->epochs_done + 1, st->epochs);
    else
        fprintf(out, "fmnist: stopped by %s after %d of %d epoch%s\n", name,
                st->epochs_done, st->epochs, st->epochs == 1 ? "" : "s");
    /* Without it, a resumed run's epoch number reads as its own. */
    if (none_finished && loaded > 0)
        fprintf(out, "fmnist: %d epoch%s loaded, and this run finished "
                "none\n", loaded, loaded == 1 ? " was" : "s were");
}

void tui_print_summary(FILE *out, const TrainerStatus *st,
                       const TuiSummary *summary)
{
    /* A signal after training ended, or while a model was explored, only
     * closed the interface. */
    int stopped_training = st->train_epochs > 0
                           && st->state != TRAINER_FAILED
                           && st->epochs_done < st->epochs;

    if (summary->stop_printed && st->train_epochs > 0) {
        print_stopped_progress(out, st);
    } else if (summary->quit_signal != 0 && stopped_training) {
        tui_print_stop(out, st, summary->quit_signal);
        print_stopped_progress(out, st);
    } else {
        if (summary->quit_signal != 0)
            fprintf(out, "fmnist: interface closed by %s\n",
                    signal_name(summary->quit_signal));
        print_progress_summary(out, st);
    }
    print_results(out, st, summary);
}
