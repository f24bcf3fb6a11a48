/*
 * Fuzz target for the IDX reader: each input is written to a file and read
 * both as an image file and as a label file, the way dataset_load reads
 * the four Fashion-MNIST files. Inputs may be raw IDX or gzip, which zlib
 * detects from the content. Besides memory errors, it aborts when a reader
 * reports success for data that breaks its contract: a count that is not
 * positive, a label above 9, or a failure with an empty message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fuzz.h"

static void check_images(const char *path)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count = -1;

    if (idx_read_images(path, &pixels, &count, err, sizeof err) != 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (count <= 0 || pixels == NULL)
        abort();
    /* Touch the first and last pixel so ASan checks the claimed size. */
    volatile uint8_t sink = pixels[0];
    sink = pixels[(size_t)count * DATASET_PIXELS - 1];
    (void)sink;
    free(pixels);
}

static void check_labels(const char *path)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count = -1;

    if (idx_read_labels(path, &labels, &count, err, sizeof err) != 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (count <= 0 || labels == NULL)
        abort();
    for (int i = 0; i < count; i++) {
        if (labels[i] >= DATASET_CLASSES)
            abort();
    }
    free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size);

    check_images(path);
    check_labels(path);
    return 0;
}
