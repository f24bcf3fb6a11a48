/*
 * augment: random label-preserving changes to training images, so that
 * each epoch trains on a slightly different copy of every image.
 *
 * Images are DATASET_ROWS x DATASET_COLS floats, row-major, as in
 * dataset.h. A horizontal flip keeps the label on Fashion-MNIST because
 * every class is roughly left-right symmetric (a shoe pointing left is
 * still a shoe). A shift moves the image by whole pixels and fills the
 * uncovered border with 0, the background value. Every random choice is
 * drawn from a caller-owned Rng, so a caller that seeds it per shard gets
 * the same images whatever the thread count.
 */
#ifndef FMNIST_AUGMENT_H
#define FMNIST_AUGMENT_H

#include "util.h"

/* Maximum shift in pixels. Fashion-MNIST scales each product so that its
 * longer side spans the 28 pixels, so larger shifts cut off more of it. */
#define AUGMENT_MAX_SHIFT 4

typedef struct {
    int flip;   /* mirror left-right with probability 1/2 */
    int shift;  /* shift by -shift..shift pixels on each axis, 0 for none */
} Augment;

/* Mirrors IMAGE left-right in place. */
void augment_flip(float *image);

/*
 * Writes SRC moved DX pixels right and DY pixels down (negative values
 * move left and up) to DST, with 0 where no source pixel lands. SRC and
 * DST must not overlap.
 */
void augment_shift(const float *src, int dx, int dy, float *dst);

/*
 * Applies AUG to IMAGE in place. With flips on, draws one value from RNG
 * for the flip. With shift > 0, then draws DX and DY uniformly from
 * -shift..shift. Draws nothing when AUG turns both off.
 */
void augment_image(const Augment *aug, float *image, Rng *rng);

#endif
