/*
 * draw: the arithmetic behind the terminal UI, kept free of curses so the
 * unit tests can run it without a terminal. It maps series to sparkline
 * levels, pixels to shading-ramp indices, places the panes on the screen
 * and formats numbers for narrow columns. Nothing here allocates.
 */
#ifndef FMNIST_DRAW_H
#define FMNIST_DRAW_H

#include <stddef.h>
#include <stdint.h>

/* The smallest screen the interface is laid out for. */
#define DRAW_MIN_COLS 80
#define DRAW_MIN_LINES 24

/* The maximum number of levels of one sparkline cell: 0 is blank, 1..8
 * the eighth blocks. A glyph table with fewer glyphs uses fewer levels. */
#define DRAW_SPARK_CELL_LEVELS 8
/* Levels of one row of a sparkline drawn as its top edge over a fill,
 * for ASCII, which has glyphs at three heights in a cell: low, middle
 * and high. */
#define DRAW_SPARK_EDGE_LEVELS 3

/* A rectangle of screen cells whose top-left corner is at y, x. */
typedef struct {
    int y, x, h, w;
} DrawRect;

typedef enum {
    DRAW_STATUS,     /* epoch, progress, speed, state, message */
    DRAW_SPARK,      /* loss and accuracy sparklines */
    DRAW_IMAGE,      /* the image viewer */
    DRAW_CONFUSION,  /* the 10x10 confusion matrix */
    DRAW_MISTAKES,   /* the list of misclassified test images */
    DRAW_CLASSES,    /* per-class precision, recall, F1 and support */
    DRAW_HINT,       /* one line of key hints at the bottom */
    DRAW_PANES
} DrawPane;

/* What the right-hand side of the screen shows. The image viewer, the
 * status and the hint line are in every view. */
typedef enum {
    DRAW_VIEW_TRAINING,  /* sparklines above the confusion matrix */
    DRAW_VIEW_MISTAKES,  /* the mistakes list, with the matrix when tall */
    DRAW_VIEW_CLASSES,   /* the per-class table, then the matrix or the
                            sparklines in the room left */
    DRAW_VIEWS
} DrawView;

typedef struct {
    int fits;         /* 0 when the screen is below the minimum size */
    int image_scale;  /* 1: 28x14 cells (row pairs), 2: 56x28 cells */
    DrawRect pane[DRAW_PANES];  /* h == 0: not shown in this view */
} DrawLayout;

/*
 * Places the panes of VIEW on a COLS x LINES screen: the status across the
 * top, the key hints on the last line, the image viewer on the left and
 * the view's panes stacked on the right. Panes the view leaves out get an
 * empty rectangle. Returns OUT->fits; when it is 0 every rectangle is
 * empty.
 */
int draw_layout(int cols, int lines, DrawView view, DrawLayout *out);

/* Returns the pane of LAYOUT that contains the screen cell at Y, X, or -1
 * when none does. */
int draw_pane_at(const DrawLayout *layout, int y, int x);

/*
 * Averages the N values into at most WIDTH buckets written to OUT, so a
 * long history fits the pane; NaN values are skipped within a bucket and a
 * bucket of only NaN stays NaN. Returns the number of values written,
 * min(N, WIDTH).
 */
int draw_resample(const float *values, int n, int width, float *out);

/*
 * Writes each of the N values to OUT as a run of WIDTH / N copies, at most
 * MAX_COPIES and at least 1, so a short series fills more of a sparkline
 * of WIDTH columns. OUT needs room for max(N, WIDTH) floats. Returns the
 * number of values written.
 */
int draw_spark_widen(const float *values, int n, int width, int max_copies,
                     float *out);

/*
 * Maps the N values to levels 1..NLEVELS between the series' minimum and
 * maximum. A flat series maps to the middle level, and a non-finite value
 * to 0 (nothing drawn). Stores the range in *MIN and *MAX when they are
 * not NULL, both NaN when no value is finite. Returns the number of finite
 * values.
 */
int draw_spark_levels(const float *values, int n, int nlevels, int *levels,
                      float *min, float *max);

/*
 * Returns the glyph index 0..CELL_LEVELS for screen row ROW (0 is the
 * bottom row) of a sparkline column at LEVEL, when each row adds
 * CELL_LEVELS levels.
 */
int draw_spark_cell(int level, int row, int cell_levels);

/* Returns the screen row (0 is the bottom row) of the middle of a
 * sparkline of ROWS rows, where a series of one value has its mark: the
 * lower of the two middle rows when ROWS is even. */
int draw_spark_mid_row(int rows);

/*
 * Returns the glyph index for screen row ROW (0 is the bottom row) of a
 * sparkline column at LEVEL that is drawn as its top edge over a fill,
 * with DRAW_SPARK_EDGE_LEVELS levels per row: 0 (blank) above the top,
 * 1..DRAW_SPARK_EDGE_LEVELS for the height of the top within the row
 * that contains it, and DRAW_SPARK_EDGE_LEVELS + 1 (fill) below that row.
 */
int draw_spark_edge_cell(int level, int row);

/* Returns the index into a shading ramp of RAMP_LEN glyphs for a pixel in
 * [0, 1]: 0 (blank) for 0, RAMP_LEN - 1 (densest) for 1, clamped outside
 * that range; NaN gives 0. */
int draw_shade_index(float value, int ramp_len);

/* Halves the height of a ROWS x COLS image by averaging each pair of rows
 * into OUT, (ROWS / 2) x COLS; an odd last row is dropped. */
void draw_downsample_rows(const float *image, int rows, int cols,
                          float *out);

/* Returns how many of WIDTH cells a progress bar fills for FRACTION,
 * clamped to [0, WIDTH]; NaN counts as 0. */
int draw_bar_fill(double fraction, int width);

/*
 * Writes SECONDS as a short duration into BUF: "42s", "1m05s", "2h07m",
 * "3d04h"; "--" when it is negative or not finite (an unknown ETA).
 */
void draw_format_duration(double seconds, char *buf, size_t len);

/*
 * Writes the count N in at most WIDTH characters: digits when they fit,
 * else a k or M suffix ("1.2k", "12k"), else "#" repeated to WIDTH.
 * Returns the length written.
 */
int draw_format_count(long n, int width, char *buf, size_t len);

/*
 * Writes the percentage PERCENT right-aligned in WIDTH characters, with
 * one decimal when that fits ("72.5", " 100") and none otherwise ("73").
 * The % sign is left to the column's label. Returns the length written.
 */
int draw_format_percent(double percent, int width, char *buf, size_t len);

/* Returns POS moved by DELTA and clamped to a list of LEN items; 0 for an
 * empty list. */
int draw_step(int pos, int delta, int len);

/* Returns the first list item to show in ROWS rows so that item POS is
 * visible, scrolling as little as possible from TOP, the first item shown
 * before, and never past the end of a list of LEN items. */
int draw_scroll(int top, int pos, int rows, int len);

/*
 * Classifies the fall DROP of one occlusion-map value for the overlay.
 * MAX_DROP is the largest fall in the map. Returns 2 for a fall of more
 * than half of MAX_DROP, 1 for more than a fifth, -1 for a rise of more
 * than a fifth, and 0 otherwise. A map whose largest fall is below
 * DRAW_HEAT_FLOOR gives 0 everywhere, so noise is never highlighted.
 */
int draw_heat_level(float drop, float max_drop);
#define DRAW_HEAT_FLOOR 0.01f

/*
 * Writes a draw_heat_level threshold of POINTS percentage points into
 * BUF, rounded down so that every highlighted cut exceeds the number
 * shown: one decimal below 10 ("7.3"), whole points from 10 ("18"). So
 * a threshold up to 100 takes at most 3 characters. Returns the length
 * written.
 */
int draw_format_points(float points, char *buf, size_t len);

/* Seconds a status message stays on the status line at least before the
 * latest test result replaces it. */
#define DRAW_MESSAGE_SECONDS 5.0

/*
 * Decides whether the status line shows a message that arrived AGE seconds
 * ago. The reason for a failed run (FAILED) always stays. Another error
 * (IS_ERROR) stays DRAW_MESSAGE_SECONDS and after that until an evaluation
 * newer than the message (NEWER_EVAL) replaces it. Other messages stay
 * DRAW_MESSAGE_SECONDS.
 * Returns 1 to show it, 0 to show the latest result instead.
 */
int draw_message_shown(double age, int is_error, int newer_eval, int failed);

/* Returns the screen columns TEXT takes as pane_print shows it in the
 * current locale (LC_CTYPE): two for each wide character such as CJK.
 * A character that is not printable counts as its escape, such as 4 for
 * "\x9b" or for any byte above 127 in the C locale. */
int draw_text_width(const char *text);

/* Returns the bytes of the longest start of TEXT that fits in COLS
 * columns, counted as draw_text_width does, without splitting a
 * character. */
int draw_text_fit(const char *text, int cols);

/* The mark that ends text cut to fit its space, and its width. */
#define DRAW_CUT_MARK "..."
#define DRAW_CUT_MARK_COLS 3

/* Returns the bytes of TEXT to show in COLS columns, counted as
 * draw_text_width does. When TEXT is wider, sets *CUT to 1 and returns a
 * start that leaves room for DRAW_CUT_MARK after it. Below
 * DRAW_CUT_MARK_COLS columns no mark fits, so *CUT stays 0. */
int draw_text_cut(const char *text, int cols, int *cut);

/*
 * Finds the first line of TEXT when it is wrapped at COLS columns: the
 * line breaks at the last space that leaves it at most COLS screen columns
 * wide (counted as draw_text_width does). A word that alone is wider
 * than COLS is split where the line ends. A character wider than COLS
 * takes a line of its own. Returns
 * the bytes of the line, without the spaces at the break, and sets *NEXT
 * to the offset of the next line, after those spaces. When all of TEXT
 * fits, both are its length. A COLS below 1 gives an empty line and
 * skips all of TEXT.
 */
int draw_wrap_line(const char *text, int cols, int *next);

/*
 * Chooses the key-bar entries that fit in WIDTH columns. Entry I takes
 * WIDTHS[I] columns and has rank RANKS[I], where 0 is the most important.
 * Entries are taken rank by rank, in list order within a rank, until one
 * does not fit, and that one and every entry of a larger rank are left
 * out. Sets SHOWN[I] to 1 for the entries taken and 0 for the others, and
 * returns the columns they take.
 */
int draw_hint_fit(const int *widths, const int *ranks, int n, int width,
                  int *shown);

#endif
