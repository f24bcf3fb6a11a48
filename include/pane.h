/*
 * pane: the state the terminal UI's panes share, and the draw and key
 * functions of each pane. tui.c owns the loop, the curses setup and the
 * layout. Each pane_*.c draws into its own curses window from the copy of
 * the trainer's status held in Ui. The interactive panes (image viewer,
 * confusion matrix, mistakes list and per-class table) turn keys and
 * mouse clicks into changes of that state. Every function here runs on the main thread
 * only.
 */
#ifndef FMNIST_PANE_H
#define FMNIST_PANE_H

#include <limits.h>
#include <stdint.h>

#include <curses.h>

#include "dataset.h"
#include "draw.h"
#include "occlusion.h"
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
    UI_HEAT_HIGH,      /* occlusion: masking here cuts the probability most */
    UI_HEAT_LOW,       /* occlusion: a smaller cut */
    UI_HEAT_RAISE,     /* occlusion: masking here raises the probability */
    UI_SELECTED,       /* the selected entry of the mistakes list */
    UI_WEAK,           /* a weakest class in the per-class table */
    UI_COUNT
} UiElement;

/* Glyphs that differ between UTF-8 and ASCII terminals. */
typedef struct {
    /* Sparkline cells from blank to full, each one higher or denser on
     * screen than the one before: spark[0] is blank, spark[spark_levels]
     * full. */
    const char *spark[DRAW_SPARK_CELL_LEVELS + 1];
    int spark_levels;
    /* Sparklines of two rows or more, drawn as the top edge over a fill
     * (see draw_spark_edge_cell): blank, the edge at its three heights
     * and the fill. All NULL where they stack spark[] cells instead. */
    const char *spark_edge[DRAW_SPARK_EDGE_LEVELS + 2];
    /* The mark of a series with one value, at mid height in the middle
     * row, since a column would read as a maximum. */
    const char *spark_point;
    const char *bar_done, *bar_todo;
    const char *arrow;               /* "true -> predicted" */
    const char *left_right;          /* key names in the hint line */
    const char *up_down;
    const char *all_arrows;
} UiGlyphs;

/* Progress of the occlusion overlay for the image in the viewer. */
typedef enum {
    OVERLAY_OFF,
    OVERLAY_COMPUTING,
    OVERLAY_READY
} OverlayState;

typedef struct {
    const char *model;           /* preset name, or else the model spec */
    const Dataset *test;
    const Dataset *train;        /* count 0 when it was not loaded */
    TrainerStatus status;        /* latest copy, refreshed on each tick */

    /* Per-image test predictions, valid once has_predictions is set. */
    uint8_t *predicted;          /* test->count classes */
    float *probs;                /* test->count x DATASET_CLASSES */
    unsigned pred_generation;
    int has_predictions;

    /* The explorer list, in explore_rank order: every misclassified test
     * image when filter_true is -1, the misclassified images of true
     * class filter_true when only filter_pred is -1, or else one
     * confusion cell. It is rebuilt from every new set of predictions. */
    int *list;                   /* test->count slots */
    int list_len;
    int list_pos;                /* selected entry */
    int list_top;                /* first entry shown in the list pane */
    int filter_true, filter_pred;  /* -1 when listing all mistakes */

    /* The image viewer shows the training set (show_train), the explorer
     * list at list_pos (follow_list), or all test images. */
    int show_train;
    int follow_list;
    /* The pane where Enter or a click made the viewer follow the list.
     * Esc gives the focus back to it. DRAW_IMAGE when there is none. */
    DrawPane list_opener;
    int test_pos, train_pos;     /* positions when walking a whole set */
    /* The number typed after g, shown on the hint line while go_active
     * is set, until Enter moves the viewer there or Esc cancels. */
    int go_active;
    char go_digits[8];

    /* Occlusion overlay: requested again whenever the image, the set or
     * the evaluation changes. */
    OcclusionWorker *occlusion;  /* NULL when its thread did not start */
    int overlay_on;
    OverlayState overlay;
    unsigned overlay_id;         /* id of the request for this image */
    int overlay_index;           /* image and set the request was for */
    int overlay_train;
    unsigned overlay_generation; /* pred_generation at the request */
    OcclusionResult overlay_result;

    int cursor_true, cursor_pred;  /* confusion-matrix cursor */
    int cursor_class;            /* per-class table cursor */
    DrawPane focus;              /* DRAW_IMAGE, DRAW_CONFUSION,
                                    DRAW_MISTAKES or DRAW_CLASSES */
    DrawView view;
    int focus_panes;             /* panes of the view that take the focus */
    int image_scale;             /* from DrawLayout */
    unsigned dirty;              /* bit (1u << DrawPane) per pane to redraw */

    /* Short reply to a key, on the hint line, with room for a file name
     * of PATH_MAX bytes. */
    char notice[PATH_MAX + 128];
    /* Set while the interface waits for the trainer to stop after q,
     * when keys are read and dropped, so that the key bar lists none. */
    int stopping;
    /* Set from p asking for a pause until the run pauses or the request
     * is taken back, so that the key bar offers to cancel it. */
    int pause_pending;
    double notice_until;         /* util_now() time when it disappears */

    /* The trainer's status message is shown on the status pane while
     * message_shown is set (see draw_message_shown). */
    unsigned message_seq;        /* status.message_seq when it arrived */
    double message_since;        /* util_now() time when it arrived */
    unsigned message_eval;       /* status.eval_generation then */
    int message_shown;
    /* TuiOptions.warning until the first key or until it has been shown
     * for a few seconds, then TuiOptions.warning_next in the same way,
     * else NULL. */
    const char *warning;
    const char *warning_next;    /* shown after warning, or NULL */
    double warning_since;        /* util_now() time when a screen that
                                    fits first showed it; 0 before */

    attr_t attr[UI_COUNT];
    int mono;                    /* set when attr has the monochrome
                                    attributes */
    const UiGlyphs *glyph;
} Ui;

#define UI_DIRTY(pane) (1u << (pane))
#define UI_DIRTY_ALL ((1u << DRAW_PANES) - 1)

/* Shared helpers in tui.c. */

/* Marks the focused pane in the first column of its title bar. */
#define PANE_FOCUS_MARK ">"

/* Draws the title bar across the first line of W, highlighted and
 * marked with PANE_FOCUS_MARK when the pane has the focus. */
void pane_title(WINDOW *w, const Ui *ui, const char *title, int focused);

/* Prints a printf-style string at Y, X in attribute ATTR, clipped to the
 * window width, with control characters escaped as \n, \t or \xNN.
 * Returns the column after the text. */
int pane_print(WINDOW *w, int y, int x, attr_t attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Prints, at Y in W, when the test-set results that fill an empty
 * table will arrive. */
void pane_print_pending(WINDOW *w, const Ui *ui, int y);

/* Writes how much a network that this run does not train was trained,
 * such as "2 epochs and 231 batches", into BUF. Returns 0 when it was
 * not trained at all. */
int pane_format_trained(const TrainerStatus *st, char *buf, size_t len);

/* Shows MSG on the hint line for a few seconds. */
void pane_notice(Ui *ui, const char *msg);

/* Panes. Each draw function erases W and redraws it completely. Key
 * functions return 1 when they used the key. */
void pane_status_draw(WINDOW *w, const Ui *ui);
void pane_spark_draw(WINDOW *w, const Ui *ui);

void pane_image_draw(WINDOW *w, const Ui *ui);
int pane_image_key(Ui *ui, int key);
/* Returns the index of the image the viewer shows, in the training set
 * when ui->show_train is set and in the test set otherwise; -1 when there
 * is none. */
int pane_image_current(const Ui *ui);
/* Returns the dataset the viewer shows. */
const Dataset *pane_image_set(const Ui *ui);
/* Copies image INDEX of DS as DATASET_PIXELS floats in [0, 1]. */
void pane_image_pixels(const Dataset *ds, int index, float *out);
/* Requests the occlusion map of the image shown when the overlay is on
 * and the map shown is for another image or older weights, and takes
 * over a finished map. Called on every tick. */
void pane_image_sync_overlay(Ui *ui);
/* Switches the viewer between the test and the training set. */
void pane_image_toggle_set(Ui *ui);
/* Returns the viewer to all test images, on the image it showed. */
void pane_image_show_all(Ui *ui);
/* Moves the viewer to image NUMBER of the training or the test set, or
 * to entry NUMBER of the list it walks, counted from 1 as its title
 * counts them. Reports on the hint line and returns -1 when there is no
 * such image or entry. */
int pane_image_go(Ui *ui, long number);
/* Returns what the number of pane_image_go counts: "entry" while the
 * viewer walks the explorer list, "image" otherwise. */
const char *pane_image_go_unit(const Ui *ui);
/* Makes the viewer walk the explorer list from list_pos and moves the
 * focus to it, so that the arrow keys step through the listed images.
 * The pane that had the focus is kept in list_opener. */
void pane_image_follow_list(Ui *ui);

void pane_confusion_draw(WINDOW *w, const Ui *ui);
int pane_confusion_key(Ui *ui, int key);
/* Finds the cell at Y, X of a W x H confusion pane. Returns 1 and sets *T
 * and *P to its true and predicted class, or returns 0. */
int pane_confusion_cell_at(int w, int h, int y, int x, int *t, int *p);
/* Lists the images of cell T, P and opens the first in the viewer, which
 * takes the focus. */
void pane_confusion_open(Ui *ui, int t, int p);

void pane_list_draw(WINDOW *w, const Ui *ui);
int pane_list_key(Ui *ui, int key);
/* Scrolls an H-line list pane as little as needed to show the selected
 * entry. */
void pane_list_scroll(Ui *ui, int h);
/* Returns the list entry shown at row Y of an H-line list pane, or -1. */
int pane_list_entry_at(const Ui *ui, int h, int y);
/* Opens the selected entry in the viewer, which then follows the list and
 * takes the focus. */
void pane_list_open(Ui *ui);
/* Rebuilds the list for true class T and predicted class P (-1 for any;
 * see explore_rank) on its first entry. Returns its length. */
int pane_list_filter(Ui *ui, int t, int p);
/* Rebuilds the list after new predictions, keeping the selected image
 * where it is still listed. */
void pane_list_refresh(Ui *ui);

void pane_classes_draw(WINDOW *w, const Ui *ui);
int pane_classes_key(Ui *ui, int key);
/* Returns the class shown at row Y of the per-class pane, or -1. */
int pane_classes_row_at(int y);
/* Returns the number of test images of true class C that the latest
 * predictions get wrong; 0 before the first predictions. */
int pane_classes_mistakes(const Ui *ui, int c);
/* Returns the number of test images of true class C, or of every class
 * when C is negative, that have no prediction because a probability came
 * out NaN or infinite; 0 before the first predictions. */
int pane_classes_unpredicted(const Ui *ui, int c);
/* Lists the misclassified test images of true class C and opens the first
 * in the viewer, which takes the focus. Reports on the hint line when
 * there are none. */
void pane_classes_open(Ui *ui, int c);

/* Reads the pending mouse event and acts on it: a click focuses the pane
 * under it and picks the matrix cell, list entry or class there, and the
 * wheel moves through images, entries, matrix rows or classes
 * (tui_mouse.c). */
void tui_mouse(Ui *ui, const DrawLayout *layout);

#endif
