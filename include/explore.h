/*
 * explore: the computations behind the prediction explorer, kept free of
 * curses and threads so the unit tests can run them directly. They rank
 * test images for the mistakes list and the confusion-cell drill-down,
 * choose the weakest classes of a per-class table and compute occlusion
 * sensitivity maps on a network.
 */
#ifndef FMNIST_EXPLORE_H
#define FMNIST_EXPLORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "metrics.h"
#include "net.h"

/* Patch side and stride, in pixels, of the occlusion maps the UI shows. */
#define EXPLORE_PATCH 4
#define EXPLORE_STRIDE 2

/*
 * Writes to OUT the indices of the N images that match the filter, most
 * confident prediction first (probability of the predicted class, with
 * ties in index order and NaN last), and returns their count. An image
 * matches when its label is TRUE_CLASS and its prediction is PRED_CLASS; a
 * class below 0 matches any class, and then only misclassified images
 * match. So (-1, -1) selects every mistake, (t, -1) the mistakes on true
 * class t and (t, p) one confusion cell, the diagonal included. Images
 * without a prediction (METRICS_NO_PREDICTION) never match. PROBS is
 * N x DATASET_CLASSES; OUT needs room for N indices.
 */
int explore_rank(const uint8_t *labels, const uint8_t *predicted,
                 const float *probs, int n, int true_class, int pred_class,
                 int *out);

/*
 * Marks the weakest of the N classes in MARKED (1 marked, 0 not): at most
 * MAX_MARKED classes with the lowest F1, counting only classes that have
 * support and whose F1 is below the mean F1 of those classes. Ties go to
 * the lower class index. Returns the number marked.
 */
int explore_weakest(const ClassMetrics *metrics, int n, int max_marked,
                    int *marked);

/*
 * Computes how much the probability of class *TARGET falls when each
 * PATCH x PATCH square of IMAGE (net->in_c x in_h x in_w floats) is set
 * to 0, the background value. Patches start every STRIDE pixels, and one
 * more row and column of patches is added where the stride would leave
 * the bottom or right edge uncovered. MAP (in_h x in_w) gets, for each
 * pixel, the mean fall over the patches that cover it; a negative value
 * means masking raised the probability.
 *
 * *TARGET below 0 selects the class the unmasked image is predicted as,
 * and is set to it. PROBS (net->classes floats) gets the probabilities of
 * the unmasked image. When one of them is not finite, the image has no
 * prediction to explain: *TARGET is set to -1, MAP to all 0, and nothing
 * is masked. Masked copies go through net_predict in groups of
 * MAX_BATCH, the size SCRATCH was created for. CANCEL, when not NULL, is
 * read between groups.
 *
 * Returns 0 when done, 1 when *CANCEL was set (MAP is then incomplete),
 * and -1 when PATCH or STRIDE is below 1 or the patch is larger than the
 * image.
 */
int explore_occlusion(const Net *net, NetScratch *scratch, int max_batch,
                      const float *image, int patch, int stride, int *target,
                      float *probs, float *map, const atomic_int *cancel);

#endif
