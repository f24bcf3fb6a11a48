/*
 * draw: pure drawing arithmetic for the terminal UI (see draw.h). The
 * layout keeps one shape, and the view chooses the panes on the right:
 *
 *   +--------------------------------------------+
 *   | status (4 lines)                           |
 *   +---------------+----------------------------+
 *   | image viewer  | training: sparklines       |
 *   |               |   above the confusion matrix
 *   |               | mistakes: the mistakes list|
 *   |               |   (above the matrix if tall)
 *   |               | classes: per-class table,  |
 *   |               |   then matrix or sparklines|
 *   +---------------+----------------------------+
 *   | key hints (1 line)                         |
 *   +--------------------------------------------+
 *
 * At 80x24 the right side has 19 lines, enough for one of the tall panes
 * (matrix, list or table) only, so the views take turns there. The matrix
 * joins the list from 27 lines on and the table from 31 lines on.
 *
 * Terminal cells are about twice as tall as wide. A 28x28 image is
 * therefore drawn as 28 columns x 14 rows, with row pairs averaged, or as
 * 56 columns x 28 rows, each pixel two columns wide, when the screen has
 * room.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "draw.h"
#include "dataset.h"
#include "util.h"

#define STATUS_LINES 4
#define HINT_LINES 1
/* Title, header row, ten class rows and the cursor line. */
#define CONFUSION_LINES 13
/* The same and a precision row, the matrix's height beside other panes. */
#define CONFUSION_FULL_LINES 14
/* Title, header row, ten class rows and a footnote. */
#define CLASSES_LINES 13
/* Title, header row and a few entries. */
#define LIST_MIN_LINES 8
/* Title and one row per series. */
#define SPARK_MIN_LINES 4
/* Title, image rows and at least four lines of labels. */
#define IMAGE_INFO_LINES 4
#define RIGHT_MIN_COLS 50
/* Sparklines taller than this stop being easier to read. */
#define SPARK_MAX_ROWS 6

static void layout_clear(DrawLayout *out)
{
    memset(out, 0, sizeof *out);
}

/* Stacks the panes of VIEW in the column of W x H cells at Y, X. */
static void layout_right(DrawLayout *out, DrawView view, int y, int x, int w,
                         int h)
{
    DrawRect *spark = &out->pane[DRAW_SPARK];
    DrawRect *confusion = &out->pane[DRAW_CONFUSION];
    DrawRect *list = &out->pane[DRAW_MISTAKES];
    DrawRect *classes = &out->pane[DRAW_CLASSES];
    int spark_max = 1 + 3 * SPARK_MAX_ROWS + 2;

    switch (view) {
    case DRAW_VIEW_MISTAKES:
        if (h >= LIST_MIN_LINES + CONFUSION_FULL_LINES) {
            int list_h = h - CONFUSION_FULL_LINES;
            *list = (DrawRect){y, x, list_h, w};
            *confusion = (DrawRect){y + list_h, x, CONFUSION_FULL_LINES, w};
        } else {
            *list = (DrawRect){y, x, h, w};
        }
        break;
    case DRAW_VIEW_CLASSES: {
        int rest = h - CLASSES_LINES;
        *classes = (DrawRect){y, x, CLASSES_LINES, w};
        if (rest >= CONFUSION_FULL_LINES + SPARK_MIN_LINES) {
            int spark_h = rest - CONFUSION_FULL_LINES;
            *confusion = (DrawRect){y + CLASSES_LINES, x,
                                    CONFUSION_FULL_LINES, w};
            *spark = (DrawRect){y + CLASSES_LINES + CONFUSION_FULL_LINES, x,
                                spark_h < spark_max ? spark_h : spark_max, w};
        } else if (rest >= CONFUSION_LINES) {
            *confusion = (DrawRect){y + CLASSES_LINES, x, rest, w};
        } else if (rest >= SPARK_MIN_LINES) {
            *spark = (DrawRect){y + CLASSES_LINES, x, rest, w};
        }
        break;
    }
    default: {
        /* The confusion matrix needs a fixed height, and the sparklines
         * take what is left, up to SPARK_MAX_ROWS rows per series plus
         * gaps. */
        int spark_h = h - CONFUSION_LINES;
        if (spark_h > spark_max)
            spark_h = spark_max;
        *spark = (DrawRect){y, x, spark_h, w};
        *confusion = (DrawRect){y + spark_h, x, h - spark_h, w};
        break;
    }
    }
}

int draw_layout(int cols, int lines, DrawView view, DrawLayout *out)
{
    layout_clear(out);
    if (cols < DRAW_MIN_COLS || lines < DRAW_MIN_LINES)
        return 0;
    out->fits = 1;

    int body_y = STATUS_LINES;
    int body_h = lines - STATUS_LINES - HINT_LINES;
    int big_h = 1 + 2 * (DATASET_ROWS / 2) + IMAGE_INFO_LINES;
    int big_w = 2 * DATASET_COLS + 2;
    out->image_scale = (body_h >= big_h && cols >= big_w + RIGHT_MIN_COLS)
                       ? 2 : 1;

    out->pane[DRAW_STATUS] = (DrawRect){0, 0, STATUS_LINES, cols};
    out->pane[DRAW_HINT] = (DrawRect){lines - HINT_LINES, 0, HINT_LINES,
                                      cols};

    /* The image viewer takes the full body height. A margin column on
     * each side keeps the shading off the neighbouring panes. */
    int image_w = out->image_scale * DATASET_COLS + 2;
    out->pane[DRAW_IMAGE] = (DrawRect){body_y, 0, body_h, image_w};

    layout_right(out, view, body_y, image_w, cols - image_w, body_h);
    return 1;
}

int draw_pane_at(const DrawLayout *layout, int y, int x)
{
    for (int p = 0; p < DRAW_PANES; p++) {
        const DrawRect *r = &layout->pane[p];
        if (r->h > 0 && r->w > 0 && y >= r->y && y < r->y + r->h
            && x >= r->x && x < r->x + r->w)
            return p;
    }
    return -1;
}

int draw_resample(const float *values, int n, int width, float *out)
{
    if (n <= 0 || width <= 0)
        return 0;
    if (n <= width) {
        memcpy(out, values, (size_t)n * sizeof *out);
        return n;
    }

    /* Bucket b covers [b*n/width, (b+1)*n/width): every value lands in
     * exactly one bucket and the buckets differ in size by at most one. */
    for (int b = 0; b < width; b++) {
        long lo = (long)b * n / width;
        long hi = (long)(b + 1) * n / width;
        double sum = 0;
        int finite = 0;
        for (long i = lo; i < hi; i++) {
            if (isfinite(values[i])) {
                sum += values[i];
                finite++;
            }
        }
        out[b] = finite ? (float)(sum / finite) : NAN;
    }
    return width;
}

int draw_spark_widen(const float *values, int n, int width, int max_copies,
                     float *out)
{
    if (n <= 0)
        return 0;

    int copies = width / n;
    if (copies > max_copies)
        copies = max_copies;
    if (copies < 1)
        copies = 1;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < copies; c++)
            out[i * copies + c] = values[i];
    }
    return n * copies;
}

int draw_spark_levels(const float *values, int n, int nlevels, int *levels,
                      float *min, float *max)
{
    float lo = INFINITY, hi = -INFINITY;
    int finite = 0;

    for (int i = 0; i < n; i++) {
        if (!isfinite(values[i]))
            continue;
        if (values[i] < lo)
            lo = values[i];
        if (values[i] > hi)
            hi = values[i];
        finite++;
    }
    if (min)
        *min = finite ? lo : NAN;
    if (max)
        *max = finite ? hi : NAN;

    for (int i = 0; i < n; i++) {
        if (!isfinite(values[i]) || nlevels < 1) {
            levels[i] = 0;
        } else if (hi - lo <= 0) {
            levels[i] = (nlevels + 1) / 2;
        } else {
            double t = (values[i] - lo) / ((double)hi - lo);
            int level = 1 + (int)lround(t * (nlevels - 1));
            if (level < 1)
                level = 1;
            if (level > nlevels)
                level = nlevels;
            levels[i] = level;
        }
    }
    return finite;
}

int draw_spark_cell(int level, int row, int cell_levels)
{
    int cell = level - row * cell_levels;
    if (cell < 0)
        return 0;
    return cell > cell_levels ? cell_levels : cell;
}

int draw_spark_mid_row(int rows)
{
    return rows > 1 ? (rows - 1) / 2 : 0;
}

int draw_spark_edge_cell(int level, int row)
{
    if (level < 1 || row < 0)
        return 0;

    int top = (level - 1) / DRAW_SPARK_EDGE_LEVELS;
    if (row > top)
        return 0;
    if (row < top)
        return DRAW_SPARK_EDGE_LEVELS + 1;
    return level - row * DRAW_SPARK_EDGE_LEVELS;
}

int draw_shade_index(float value, int ramp_len)
{
    if (ramp_len <= 1 || !(value > 0))
        return 0;
    if (value >= 1)
        return ramp_len - 1;
    int index = (int)lroundf(value * (float)(ramp_len - 1));
    return index > ramp_len - 1 ? ramp_len - 1 : index;
}

void draw_downsample_rows(const float *image, int rows, int cols,
                          float *out)
{
    for (int r = 0; r + 1 < rows; r += 2) {
        const float *upper = image + (size_t)r * cols;
        const float *lower = upper + cols;
        float *dst = out + (size_t)(r / 2) * cols;
        for (int c = 0; c < cols; c++)
            dst[c] = 0.5f * (upper[c] + lower[c]);
    }
}

int draw_bar_fill(double fraction, int width)
{
    if (width <= 0 || !(fraction > 0))
        return 0;
    if (fraction >= 1)
        return width;
    int fill = (int)(fraction * width + 0.5);
    return fill > width ? width : fill;
}

void draw_format_duration(double seconds, char *buf, size_t len)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, len, "--");
        return;
    }

    long s = (long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, len, "%lds", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

/* Writes N with a suffix in at most WIDTH characters, trying one decimal
 * ("1.2k") before none ("12k"). Returns the length, or -1 when neither
 * fits. */
static int format_scaled(long n, int width, char *buf, size_t len)
{
    static const struct {
        double unit;
        char suffix;
    } scales[] = {{1e3, 'k'}, {1e6, 'M'}, {1e9, 'G'}};
    char tmp[32];

    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        double v = (double)n / scales[i].unit;
        if (v < 1)
            break;
        int w = snprintf(tmp, sizeof tmp, "%.1f%c", v, scales[i].suffix);
        /* Below 9.95 the decimal still rounds to a single digit. */
        if (v < 9.95 && w <= width) {
            snprintf(buf, len, "%s", tmp);
            return w;
        }
        w = snprintf(tmp, sizeof tmp, "%.0f%c", v, scales[i].suffix);
        if (w <= width) {
            snprintf(buf, len, "%s", tmp);
            return w;
        }
    }
    return -1;
}

int draw_format_count(long n, int width, char *buf, size_t len)
{
    char tmp[32];
    int w = snprintf(tmp, sizeof tmp, "%ld", n);

    if (len == 0)
        return 0;
    if (w <= width) {
        snprintf(buf, len, "%s", tmp);
        return (int)strlen(buf);
    }
    if (n > 0 && format_scaled(n, width, buf, len) >= 0)
        return (int)strlen(buf);

    int fill = width < (int)len - 1 ? width : (int)len - 1;
    if (fill < 0)
        fill = 0;
    memset(buf, '#', (size_t)fill);
    buf[fill] = '\0';
    return fill;
}

int draw_format_percent(double percent, int width, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%*.1f", width, percent);

    if (n > width)
        n = snprintf(buf, len, "%*.0f", width, percent);
    return n;
}

int draw_step(int pos, int delta, int len)
{
    if (len <= 0)
        return 0;
    long next = (long)pos + delta;
    if (next < 0)
        return 0;
    return next >= len ? len - 1 : (int)next;
}

int draw_scroll(int top, int pos, int rows, int len)
{
    if (rows <= 0 || len <= 0)
        return 0;
    if (pos < top)
        top = pos;
    if (pos >= top + rows)
        top = pos - rows + 1;
    if (top > len - rows)
        top = len - rows;
    return top < 0 ? 0 : top;
}

int draw_heat_level(float drop, float max_drop)
{
    if (!(max_drop >= DRAW_HEAT_FLOOR) || !isfinite(drop))
        return 0;
    if (drop > 0.5f * max_drop)
        return 2;
    if (drop > 0.2f * max_drop)
        return 1;
    if (drop < -0.2f * max_drop)
        return -1;
    return 0;
}

int draw_format_points(float points, char *buf, size_t len)
{
    if (points < 10.0f)
        return snprintf(buf, len, "%.1f", floorf(points * 10.0f) / 10.0f);
    return snprintf(buf, len, "%.0f", floorf(points));
}

int draw_message_shown(double age, int is_error, int newer_eval, int failed)
{
    if (failed)
        return 1;
    if (is_error && !newer_eval)
        return 1;
    return age < DRAW_MESSAGE_SECONDS;
}

/*
 * Returns the columns the character at TEXT takes on the screen and sets
 * *LEN to its bytes. pane_print shows a character that is not printable
 * in the locale, such as a control or a byte above 127 in the C locale,
 * as the escape that util_escape_unprintable writes. Such a character
 * therefore counts as the width of that escape.
 */
static int char_width(const char *text, int *len)
{
    int printable;

    *len = util_next_char(text, &printable);
    if (!printable) {
        char one[MB_LEN_MAX + 1];

        memcpy(one, text, (size_t)*len);
        one[*len] = '\0';
        return (int)util_escape_unprintable(one, NULL, 0);
    }

    mbstate_t state;
    wchar_t wc;

    memset(&state, 0, sizeof state);
    mbrtowc(&wc, text, (size_t)*len, &state);
    int cols = wcwidth(wc);
    return cols < 0 ? 1 : cols;
}

int draw_text_width(const char *text)
{
    int width = 0, len;

    for (; *text != '\0'; text += len)
        width += char_width(text, &len);
    return width;
}

int draw_text_fit(const char *text, int cols)
{
    int len = 0, used = 0, bytes;

    while (text[len] != '\0') {
        used += char_width(text + len, &bytes);
        if (used > cols)
            break;
        len += bytes;
    }
    return len;
}

int draw_text_cut(const char *text, int cols, int *cut)
{
    *cut = 0;
    if (draw_text_width(text) <= cols)
        return (int)strlen(text);
    if (cols < DRAW_CUT_MARK_COLS)
        return draw_text_fit(text, cols);
    *cut = 1;
    return draw_text_fit(text, cols - DRAW_CUT_MARK_COLS);
}

/* Returns the columns of the word at the start of TEXT, up to the next
 * space or the end. */
static int word_width(const char *text)
{
    int width = 0, len;

    for (; *text != '\0' && *text != ' '; text += len)
        width += char_width(text, &len);
    return width;
}

int draw_wrap_line(const char *text, int cols, int *next)
{
    int len = 0, used = 0, space = -1;

    if (cols < 1) {
        *next = (int)strlen(text);
        return 0;
    }
    while (text[len] != '\0') {
        int bytes;
        int w = char_width(text + len, &bytes);

        if (used + w > cols)
            break;
        if (text[len] == ' ')
            space = len;
        used += w;
        len += bytes;
    }
    if (text[len] == '\0') {
        *next = len;
        return len;
    }

    /* A space right after the last column that fits is a break too. A
     * word wider than a whole line is split where the line ends, rather
     * than moved on to leave this line short. A character wider than
     * COLS still takes the line, so every line moves on. */
    int end = len;
    if (text[len] != ' ' && space > 0 && word_width(text + space + 1) <= cols)
        end = space;
    if (end == 0)
        char_width(text, &end);

    int start = end;

    while (text[start] == ' ')
        start++;
    while (end > 0 && text[end - 1] == ' ')
        end--;
    *next = start;
    return end;
}

int draw_hint_fit(const int *widths, const int *ranks, int n, int width,
                  int *shown)
{
    int used = 0, max_rank = 0;

    for (int i = 0; i < n; i++) {
        shown[i] = 0;
        if (ranks[i] > max_rank)
            max_rank = ranks[i];
    }
    for (int rank = 0; rank <= max_rank; rank++) {
        for (int i = 0; i < n; i++) {
            if (ranks[i] != rank)
                continue;
            if (used + widths[i] > width)
                return used;
            shown[i] = 1;
            used += widths[i];
        }
    }
    return used;
}
