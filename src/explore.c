/*
 * explore: ranking of test images, weakest-class marking and occlusion
 * sensitivity (see explore.h).
 *
 * The occlusion map follows the usual recipe for image classifiers: hide
 * one square at a time, run the network again and record how far the
 * probability of the class falls. Each pixel then gets the mean fall over
 * the squares that covered it. A 28x28 image with 4x4 patches at stride 2
 * needs 13 x 13 = 169 extra forward passes, which is why the UI runs this
 * on a thread of its own.
 */
#include "config.h"

#include "explore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "metrics.h"
#include "util.h"

/* ---------------------------------------------------------------- ranking */

typedef struct {
    float confidence;
    int index;
} RankEntry;

/* Orders by confidence, highest first, NaN last, then by index. */
static int compare_rank(const void *pa, const void *pb)
{
    const RankEntry *a = pa, *b = pb;
    int a_nan = isnan(a->confidence), b_nan = isnan(b->confidence);

    if (a_nan != b_nan)
        return a_nan - b_nan;
    if (!a_nan && a->confidence != b->confidence)
        return a->confidence > b->confidence ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int image_matches(int label, int predicted, int true_class,
                         int pred_class)
{
    if (predicted == METRICS_NO_PREDICTION)
        return 0;
    if (true_class >= 0 && label != true_class)
        return 0;
    if (pred_class >= 0 && predicted != pred_class)
        return 0;
    if (true_class < 0 || pred_class < 0)
        return label != predicted;
    return 1;
}

int explore_rank(const uint8_t *labels, const uint8_t *predicted,
                 const float *probs, int n, int true_class, int pred_class,
                 int *out)
{
    RankEntry *entries;
    int count = 0;

    if (n <= 0)
        return 0;
    entries = xmalloc((size_t)n * sizeof *entries);
    for (int i = 0; i < n; i++) {
        if (!image_matches(labels[i], predicted[i], true_class, pred_class))
            continue;
        entries[count].confidence =
            probs[(size_t)i * DATASET_CLASSES + predicted[i]];
        entries[count].index = i;
        count++;
    }
    qsort(entries, (size_t)count, sizeof *entries, compare_rank);
    for (int i = 0; i < count; i++)
        out[i] = entries[i].index;
    free(entries);
    return count;
}

/* ---------------------------------------------------------------- classes */

int explore_weakest(const ClassMetrics *metrics, int n, int max_marked,
                    int *marked)
{
    double sum = 0.0;
    int with_support = 0, count = 0;

    for (int c = 0; c < n; c++) {
        marked[c] = 0;
        if (metrics[c].support > 0) {
            sum += metrics[c].f1;
            with_support++;
        }
    }
    if (with_support == 0)
        return 0;
    double mean = sum / with_support;

    /* Picks the lowest unmarked F1 below the mean, MAX_MARKED times. */
    while (count < max_marked) {
        int worst = -1;
        for (int c = 0; c < n; c++) {
            if (marked[c] || metrics[c].support <= 0
                || !(metrics[c].f1 < mean))
                continue;
            if (worst < 0 || metrics[c].f1 < metrics[worst].f1)
                worst = c;
        }
        if (worst < 0)
            break;
        marked[worst] = 1;
        count++;
    }
    return count;
}

/* ---------------------------------------------------------------- occlusion */

/* Writes the first row (or column) of every patch along a side of SIZE
 * pixels to STARTS and returns their count. */
static int patch_starts(int size, int patch, int stride, int *starts)
{
    int n = 0;

    for (int s = 0; s + patch <= size; s += stride)
        starts[n++] = s;
    if (starts[n - 1] + patch < size)
        starts[n++] = size - patch;
    return n;
}

/* Copies IMAGE to DST with the patch at (Y, X) set to 0 in every channel. */
static void mask_patch(const Net *net, const float *image, int y, int x,
                       int patch, float *dst)
{
    size_t plane = (size_t)net->in_h * net->in_w;

    memcpy(dst, image, (size_t)net->in_c * plane * sizeof *dst);
    for (int c = 0; c < net->in_c; c++) {
        float *p = dst + c * plane;
        for (int r = y; r < y + patch; r++)
            memset(p + (size_t)r * net->in_w + x, 0, (size_t)patch * sizeof *p);
    }
}

/* Adds the fall DROP to every pixel of the patch at (Y, X) in SUM and
 * counts the patch in COVER. */
static void spread_drop(const Net *net, int y, int x, int patch, float drop,
                        float *sum, int *cover)
{
    for (int r = y; r < y + patch; r++) {
        for (int c = x; c < x + patch; c++) {
            sum[r * net->in_w + c] += drop;
            cover[r * net->in_w + c]++;
        }
    }
}

int explore_occlusion(const Net *net, NetScratch *scratch, int max_batch,
                      const float *image, int patch, int stride, int *target,
                      float *probs, float *map, const atomic_int *cancel)
{
    int h = net->in_h, w = net->in_w;
    size_t sample = (size_t)net->in_c * h * w;

    if (patch < 1 || stride < 1 || patch > h || patch > w || max_batch < 1)
        return -1;

    net_predict(net, scratch, image, 1, probs);
    memset(map, 0, (size_t)h * w * sizeof *map);
    for (int c = 0; c < net->classes; c++) {
        if (!isfinite(probs[c])) {
            *target = -1;
            return 0;
        }
    }
    if (*target < 0)
        *target = metrics_argmax(probs, net->classes);
    float base = probs[*target];

    int *ys = xmalloc((size_t)h * sizeof *ys);
    int *xs = xmalloc((size_t)w * sizeof *xs);
    int ny = patch_starts(h, patch, stride, ys);
    int nx = patch_starts(w, patch, stride, xs);
    int total = ny * nx;
    float *batch = xmalloc_aligned((size_t)max_batch * sample * sizeof *batch);
    float *out = xmalloc((size_t)max_batch * net->classes * sizeof *out);
    int *cover = xcalloc((size_t)h * w, sizeof *cover);
    int rc = 0;

    for (int first = 0; first < total; first += max_batch) {
        if (cancel != NULL && atomic_load(cancel)) {
            rc = 1;
            break;
        }
        int n = total - first < max_batch ? total - first : max_batch;
        for (int i = 0; i < n; i++) {
            int k = first + i;
            mask_patch(net, image, ys[k / nx], xs[k % nx], patch,
                       batch + (size_t)i * sample);
        }
        net_predict(net, scratch, batch, n, out);
        for (int i = 0; i < n; i++) {
            int k = first + i;
            float drop = base - out[(size_t)i * net->classes + *target];
            spread_drop(net, ys[k / nx], xs[k % nx], patch, drop, map, cover);
        }
    }
    if (rc == 0) {
        for (int i = 0; i < h * w; i++)
            map[i] = cover[i] > 0 ? map[i] / (float)cover[i] : 0.0f;
    }
    free(ys);
    free(xs);
    free(batch);
    free(out);
    free(cover);
    return rc;
}
