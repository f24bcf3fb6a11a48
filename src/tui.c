/*
 * tui: curses setup and teardown, capability detection (UTF-8 glyphs,
 * colour), the table of UI elements, pane windows and the main loop. The
 * panes themselves live in pane_*.c.
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

#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "draw.h"
#include "pane.h"
#include "tui.h"
#include "util.h"

#define TICK_MS 100
#define REDRAW_HZ 10
#define NOTICE_SECONDS 4.0
/* This many ERR returns in a row, each far quicker than the timeout, mean
 * the terminal is gone (a closed SSH session) rather than idle. */
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
};

static const UiGlyphs glyphs_utf8 = {
    .spark = {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585",
              "\u2586", "\u2587", "\u2588"},
    .bar_done = "\u2588",
    .bar_todo = "\u2591",
    .arrow = "\u2192",
    .left_right = "\u2190\u2192",
    .all_arrows = "\u2190\u2192\u2191\u2193",
};

static const UiGlyphs glyphs_ascii = {
    .spark = {" ", "_", ".", ",", "-", "~", "=", "*", "#"},
    .bar_done = "#",
    .bar_todo = "-",
    .arrow = "->",
    .left_right = "Left/Right",
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
    int full_redraw;  /* repaint stdscr and every pane on the next draw */
} Tui;

/* ---------------------------------------------------------------- helpers */

int pane_print(WINDOW *w, int y, int x, attr_t attr, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int width = getmaxx(w);

    if (x >= width || y < 0 || y >= getmaxy(w))
        return x;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);

    /* Clip to the window so nothing wraps to the next line, and never in
     * the middle of a UTF-8 sequence. */
    int n = (int)strlen(buf);
    if (n > width - x) {
        n = width - x;
        while (n > 0 && ((unsigned char)buf[n] & 0xC0) == 0x80)
            n--;
    }
    wattrset(w, attr);
    mvwaddnstr(w, y, x, buf, n);
    wattrset(w, A_NORMAL);

    int cx = getcurx(w);
    /* Writing the last column leaves the cursor there instead of past it. */
    return cx < x + 1 && n > 0 ? width : cx;
}

void pane_title(WINDOW *w, const Ui *ui, const char *title, int focused)
{
    attr_t attr = ui->attr[focused ? UI_TITLE_FOCUS : UI_TITLE];

    wattrset(w, attr);
    mvwhline(w, 0, 0, ' ', getmaxx(w));
    wattrset(w, A_NORMAL);
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
}

static int screen_start(Tui *t, char *err, size_t errlen)
{
    /* The codeset test needs it, and calling it again is harmless. */
    setlocale(LC_ALL, "");

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
    return 0;
}

static void screen_stop(Tui *t)
{
    if (t->help != NULL)
        delwin(t->help);
    for (int p = 0; p < DRAW_PANES; p++) {
        if (t->win[p] != NULL)
            delwin(t->win[p]);
    }
    endwin();
    util_set_fatal_hook(NULL);
    delscreen(t->screen);
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
    draw_layout(COLS, LINES, &t->layout);
    if (t->layout.fits) {
        for (int p = 0; p < DRAW_PANES; p++) {
            const DrawRect *r = &t->layout.pane[p];
            t->win[p] = newwin(r->h, r->w, r->y, r->x);
            if (t->win[p] == NULL)
                t->layout.fits = 0;
            else
                leaveok(t->win[p], TRUE);  /* the cursor is hidden anyway */
        }
    }
    t->ui.image_scale = t->layout.image_scale;
    t->full_redraw = 1;
}

/* ---------------------------------------------------------------- drawing */

typedef struct {
    const char *key, *action;
} Hint;

static void draw_hint(WINDOW *w, const Ui *ui)
{
    const UiGlyphs *g = ui->glyph;
    const char *pause = ui->status.state == TRAINER_PAUSED ? "resume"
                                                           : "pause";
    Hint hints[10];
    int n = 0;

    werase(w);
    if (ui->notice[0] != '\0') {
        pane_print(w, 0, 1, ui->attr[UI_VALUE], "%s", ui->notice);
        return;
    }
    if (ui->focus == DRAW_IMAGE) {
        hints[n++] = (Hint){"Tab", "matrix"};
        hints[n++] = (Hint){g->left_right, "image"};
        if (ui->filter_true >= 0)
            hints[n++] = (Hint){"Esc", "all images"};
    } else {
        hints[n++] = (Hint){"Tab", "viewer"};
        hints[n++] = (Hint){g->all_arrows, "cell"};
        hints[n++] = (Hint){"Enter", "its images"};
    }
    hints[n++] = (Hint){"p", pause};
    hints[n++] = (Hint){"s", "save"};
    hints[n++] = (Hint){"?", "help"};
    hints[n++] = (Hint){"q", "quit"};

    int x = -1;
    for (int i = 0; i < n; i++) {
        /* Leave out the hints that would not fit whole. The byte count
         * overestimates the width of UTF-8 arrows, which errs safe. */
        int need = (int)strlen(hints[i].key) + (int)strlen(hints[i].action) + 3;
        if (x + need > getmaxx(w))
            break;
        x = pane_print(w, 0, x + 2, ui->attr[UI_HINT_KEY], "%s",
                       hints[i].key);
        x = pane_print(w, 0, x, ui->attr[UI_HINT], " %s", hints[i].action);
    }
}

static const char *const help_lines[][2] = {
    {"Tab", "move the focus between the image viewer and the matrix"},
    {"Left/Right", "previous/next image; in the matrix, move the cursor"},
    {"Up/Down", "move the cursor in the confusion matrix"},
    {"PgUp/PgDn", "jump back or forward by 10 images"},
    {"Home/End", "first or last image of the list"},
    {"Enter", "show the test images of the cell under the cursor"},
    {"Esc", "show all test images again"},
    {"p", "pause or resume training"},
    {"s", "save a checkpoint now"},
    {"?", "show this help"},
    {"q", "quit (training stops)"},
};
#define HELP_LINES ((int)(sizeof help_lines / sizeof help_lines[0]))

#define HELP_HEIGHT (HELP_LINES + 4)
#define HELP_WIDTH 70

static void draw_help(Tui *t)
{
    int h = HELP_HEIGHT;

    werase(t->help);
    box(t->help, 0, 0);
    pane_print(t->help, 0, 2, t->ui.attr[UI_VALUE], " Keys ");
    for (int i = 0; i < HELP_LINES; i++) {
        pane_print(t->help, 1 + i, 2, t->ui.attr[UI_HINT_KEY], "%-10s",
                   help_lines[i][0]);
        pane_print(t->help, 1 + i, 14, t->ui.attr[UI_NORMAL], "%s",
                   help_lines[i][1]);
    }
    pane_print(t->help, h - 2, 2, t->ui.attr[UI_DIM],
               "Press any key to close this window.");
    touchwin(t->help);
    wnoutrefresh(t->help);
}

static void draw_too_small(void)
{
    char msg[96];

    snprintf(msg, sizeof msg, "terminal too small: need %dx%d, have %dx%d",
             DRAW_MIN_COLS, DRAW_MIN_LINES, COLS, LINES);
    werase(stdscr);
    mvwaddnstr(stdscr, 0, 0, msg, COLS);
    wnoutrefresh(stdscr);
    doupdate();
}

static void (*const pane_draw[DRAW_PANES])(WINDOW *, const Ui *) = {
    [DRAW_STATUS] = pane_status_draw,
    [DRAW_SPARK] = pane_spark_draw,
    [DRAW_IMAGE] = pane_image_draw,
    [DRAW_CONFUSION] = pane_confusion_draw,
    [DRAW_HINT] = draw_hint,
};

static void draw_screen(Tui *t)
{
    if (!t->layout.fits) {
        draw_too_small();
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
    for (int p = 0; p < DRAW_PANES; p++) {
        if (t->ui.dirty & UI_DIRTY(p)) {
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
           || strcmp(a->message, b->message) != 0;
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
    if (scratch->eval_generation != ui->status.eval_generation
        || scratch->has_eval != ui->status.has_eval)
        ui->dirty |= UI_DIRTY(DRAW_CONFUSION);
    memcpy(&ui->status, scratch, sizeof *scratch);

    if (trainer_copy_predictions(t->tr, &ui->pred_generation, ui->predicted,
                                 ui->probs)) {
        ui->has_predictions = 1;
        pane_image_refilter(ui);
        ui->dirty |= UI_DIRTY(DRAW_IMAGE);
    }

    if (ui->notice[0] != '\0' && util_now() >= ui->notice_until) {
        ui->notice[0] = '\0';
        ui->dirty |= UI_DIRTY(DRAW_HINT);
    }
}

/* ---------------------------------------------------------------- keys */

enum { KEY_RESULT_CONTINUE, KEY_RESULT_QUIT };

static void toggle_pause(Tui *t)
{
    TrainerState state = t->ui.status.state;

    if (state == TRAINER_PAUSED) {
        trainer_set_paused(t->tr, 0);
        pane_notice(&t->ui, "resuming");
    } else if (state == TRAINER_DONE || state == TRAINER_FAILED) {
        pane_notice(&t->ui, "training has ended; nothing to pause");
    } else {
        trainer_set_paused(t->tr, 1);
        pane_notice(&t->ui, "pausing after the current batch");
    }
}

static void request_save(Tui *t)
{
    trainer_request_save(t->tr);
    pane_notice(&t->ui, "checkpoint requested; the status line reports it");
}

static void switch_focus(Ui *ui)
{
    ui->focus = ui->focus == DRAW_IMAGE ? DRAW_CONFUSION : DRAW_IMAGE;
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_CONFUSION)
                 | UI_DIRTY(DRAW_HINT);
}

/* Opens or closes the help overlay; it is drawn by the next redraw. */
static void toggle_help(Tui *t, int show)
{
    if (!show && t->help != NULL) {
        delwin(t->help);
        t->help = NULL;
        t->full_redraw = 1;
    } else if (show && t->help == NULL) {
        t->help = newwin(HELP_HEIGHT, HELP_WIDTH, (LINES - HELP_HEIGHT) / 2,
                         (COLS - HELP_WIDTH) / 2);
        t->ui.dirty |= UI_DIRTY(DRAW_HINT);
    }
}

static int handle_key(Tui *t, int key)
{
    Ui *ui = &t->ui;

    if (key == 'q' || key == 'Q')
        return KEY_RESULT_QUIT;
    if (key == KEY_RESIZE) {
        toggle_help(t, 0);
        apply_layout(t);
        return KEY_RESULT_CONTINUE;
    }
    if (t->help != NULL) {
        /* Any other key closes the overlay. */
        toggle_help(t, 0);
        return KEY_RESULT_CONTINUE;
    }
    if (!t->layout.fits)
        return KEY_RESULT_CONTINUE;

    switch (key) {
    case '\t':
    case KEY_BTAB:
        switch_focus(ui);
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
        if (ui->filter_true >= 0)
            pane_image_unfilter(ui);
        ui->dirty |= UI_DIRTY(DRAW_HINT);
        break;
    case KEY_CTRL_L:
        clearok(curscr, TRUE);
        t->full_redraw = 1;
        break;
    default:
        if (ui->focus == DRAW_IMAGE)
            pane_image_key(ui, key);
        else
            pane_confusion_key(ui, key);
        break;
    }
    return KEY_RESULT_CONTINUE;
}

/* ---------------------------------------------------------------- loop */

static void run_loop(Tui *t)
{
    TrainerStatus *scratch = xmalloc(sizeof *scratch);
    double last_draw = -1;
    int fast_errors = 0;

    volatile sig_atomic_t *quit = t->opt->quit_signal;

    while (quit == NULL || !*quit) {
        poll_trainer(t, scratch);

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

        int wait_ms = (int)(wait * 1000) + 1;
        timeout(wait_ms);
        double before = util_now();
        int key = getch();
        if (key == ERR) {
            int fast = wait_ms >= TICK_MS / 2 && util_now() - before < 0.002;
            fast_errors = fast ? fast_errors + 1 : 0;
            if (fast_errors > MAX_FAST_ERRORS)
                break;
            continue;
        }
        fast_errors = 0;
        if (handle_key(t, key) == KEY_RESULT_QUIT)
            break;
    }
    free(scratch);
}

static void ui_init(Ui *ui, const Dataset *test)
{
    size_t n = (size_t)test->count;

    ui->test = test;
    ui->predicted = xcalloc(n, sizeof *ui->predicted);
    ui->probs = xcalloc(n * DATASET_CLASSES, sizeof *ui->probs);
    ui->view = xcalloc(n, sizeof *ui->view);
    ui->view_len = test->count;
    ui->filter_true = ui->filter_pred = -1;
    ui->focus = DRAW_IMAGE;
    ui->dirty = UI_DIRTY_ALL;
}

static void ui_free(Ui *ui)
{
    free(ui->predicted);
    free(ui->probs);
    free(ui->view);
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
    ui_init(&t->ui, test);
    trainer_get_status(tr, &t->ui.status);
    apply_layout(t);

    run_loop(t);

    screen_stop(t);
    ui_free(&t->ui);
    free(t);
    return 0;
}
