/*
 * pane: the state the terminal UI's panes share, and the draw and key
 * functions of each pane. tui.c owns the loop, the curses setup and the
 * layout. Each pane_*.c draws into its own curses window from the copy of
 * the trainer's status held in Ui. The interactive panes (image viewer and
 * confusion matrix) turn keys into changes of that state. Every function
 * here runs on the main thread only.
 */
#ifndef FMNIST_PANE_H
#define FMNIST_PANE_H

#include <stdint.h>

#include <curses.h>

#include "dataset.h"
#include "draw.h"
#include "trainer.h"

/* UI elements, each with a colour and a monochrome attribute (tui.c). */
typedef enum {
    UI_NORMAL,
    UI_TITLE,          /* pane title bar */
    UI_TITLE_FOCUS,    /* title bar of the pane that receives keys */
    UI_LABEL,          /* "epoch", "ETA" and other field names */
    UI_VALUE,          /* numbers next to a label */
    UI_BAR_DONE,       /* filled part of the progress bar */
    UI_BAR_TODO,       /* empty part of the progress bar */
    UI_SPARK,          /* sparkline glyphs */
    UI_IMAGE,          /* the shaded test image */
    UI_CORRECT,        /* a prediction that matches the label */
    UI_WRONG,          /* a prediction that does not */
    UI_DIAGONAL,       /* confusion cells where true == predicted */
    UI_HOT,            /* off-diagonal cells with many images */
    UI_CURSOR,         /* the confusion-matrix cursor */
    UI_DIM,            /* zero counts, pending values */
    UI_STATE_RUN,      /* training, evaluating */
    UI_STATE_PAUSED,
    UI_STATE_DONE,
    UI_STATE_FAILED,
    UI_HINT,           /* the key-hint line */
    UI_HINT_KEY,       /* key names within it */
    UI_COUNT
} UiElement;

/* Glyphs that differ between UTF-8 and ASCII terminals. */
typedef struct {
    const char *spark[DRAW_SPARK_CELL_LEVELS + 1];  /* [0] is blank */
    const char *bar_done, *bar_todo;
    const char *arrow;               /* "true -> predicted" */
    const char *left_right;          /* key names in the hint line */
    const char *all_arrows;
} UiGlyphs;

typedef struct {
    const Dataset *test;
    TrainerStatus status;        /* latest copy, refreshed on each tick */

    /* Per-image test predictions, valid once has_predictions is set. */
    uint8_t *predicted;          /* test->count classes */
    float *probs;                /* test->count x DATASET_CLASSES */
    unsigned pred_generation;
    int has_predictions;

    /* The image viewer's list: all test images, or one confusion cell. */
    int *view;                   /* test->count slots; used when filtered */
    int view_len;
    int view_pos;                /* 0-based position in the list */
    int filter_true, filter_pred;  /* -1 when showing all images */

    int cursor_true, cursor_pred;  /* confusion-matrix cursor */
    DrawPane focus;              /* DRAW_IMAGE or DRAW_CONFUSION */
    int image_scale;             /* from DrawLayout */
    unsigned dirty;              /* bit (1u << DrawPane) per pane to redraw */

    char notice[128];            /* short reply to a key, on the hint line */
    double notice_until;         /* util_now() time when it disappears */

    attr_t attr[UI_COUNT];
    const UiGlyphs *glyph;
} Ui;

#define UI_DIRTY(pane) (1u << (pane))
#define UI_DIRTY_ALL ((1u << DRAW_PANES) - 1)

/* Shared helpers in tui.c. */

/* Draws the title bar across the first line of W, highlighted when the
 * pane has the focus. */
void pane_title(WINDOW *w, const Ui *ui, const char *title, int focused);

/* Prints a printf-style string at Y, X in attribute ATTR, clipped to the
 * window width. Returns the column after the text. */
int pane_print(WINDOW *w, int y, int x, attr_t attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Shows MSG on the hint line for a few seconds. */
void pane_notice(Ui *ui, const char *msg);

/* Panes. Each draw function erases W and redraws it completely. Key
 * functions return 1 when they used the key. */
void pane_status_draw(WINDOW *w, const Ui *ui);
void pane_spark_draw(WINDOW *w, const Ui *ui);

void pane_image_draw(WINDOW *w, const Ui *ui);
int pane_image_key(Ui *ui, int key);
/* Returns the test-image index shown by the viewer, or -1 when the list
 * is empty. */
int pane_image_current(const Ui *ui);
/* Restricts the viewer to the images of true class T predicted as P, on
 * the first of them. Returns the number of images, and leaves the viewer
 * unchanged when it is 0 or there are no predictions yet. */
int pane_image_filter(Ui *ui, int t, int p);
/* Shows all images again, staying on the current one. */
void pane_image_unfilter(Ui *ui);
/* Rebuilds a filtered list after new predictions arrive. */
void pane_image_refilter(Ui *ui);

void pane_confusion_draw(WINDOW *w, const Ui *ui);
int pane_confusion_key(Ui *ui, int key);

#endif
