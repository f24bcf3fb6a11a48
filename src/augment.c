/*
 * augment: horizontal flips and zero-filled shifts of 28x28 images, for
 * the training batches only. The test and validation images are never
 * augmented.
 */
#include "config.h"

#include "augment.h"

#include <string.h>

#include "dataset.h"

void augment_flip(float *image)
{
    for (int y = 0; y < DATASET_ROWS; y++) {
        float *row = image + y * DATASET_COLS;

        for (int x = 0; x < DATASET_COLS / 2; x++) {
            float t = row[x];
            row[x] = row[DATASET_COLS - 1 - x];
            row[DATASET_COLS - 1 - x] = t;
        }
    }
}

void augment_shift(const float *src, int dx, int dy, float *dst)
{
    /* Destination columns [x0, x1) receive source columns [x0-dx, x1-dx). */
    int x0 = dx > 0 ? dx : 0;
    int x1 = dx < 0 ? DATASET_COLS + dx : DATASET_COLS;

    memset(dst, 0, DATASET_PIXELS * sizeof *dst);
    if (x1 <= x0)
        return;
    for (int y = 0; y < DATASET_ROWS; y++) {
        int sy = y - dy;

        if (sy < 0 || sy >= DATASET_ROWS)
            continue;
        memcpy(dst + y * DATASET_COLS + x0,
               src + sy * DATASET_COLS + x0 - dx,
               (size_t)(x1 - x0) * sizeof *dst);
    }
}

void augment_image(const Augment *aug, float *image, Rng *rng)
{
    if (aug->flip && rng_below(rng, 2) == 1)
        augment_flip(image);
    if (aug->shift > 0) {
        uint32_t span = 2 * (uint32_t)aug->shift + 1;
        int dx = (int)rng_below(rng, span) - aug->shift;
        int dy = (int)rng_below(rng, span) - aug->shift;
        float moved[DATASET_PIXELS];

        if (dx == 0 && dy == 0)
            return;
        augment_shift(image, dx, dy, moved);
        memcpy(image, moved, sizeof moved);
    }
}
