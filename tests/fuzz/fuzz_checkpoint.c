/*
 * Fuzz target for the checkpoint loader. The first input byte is a mode:
 * when its low bit is set, the header CRC and the trailing CRC of the rest
 * are recomputed before the file is written, so mutations reach the body
 * parser and the field checks instead of stopping at a CRC mismatch. The
 * rest of the input is the file. A loaded checkpoint is then checked the
 * way the trainer uses it: the spec must build a network with the stored
 * parameter count, and every array is read to its stated length.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "checkpoint.h"
#include "dataset.h"
#include "fuzz.h"
#include "net.h"

/* The header CRC is the header's last field and covers the bytes before
 * it. */
#define HEADER_CRC_OFFSET (CHECKPOINT_HEADER_SIZE - 4)

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_crcs(uint8_t *file, size_t size)
{
    if (size >= CHECKPOINT_HEADER_SIZE)
        store_le32(file + HEADER_CRC_OFFSET,
                   (uint32_t)crc32(0L, file, HEADER_CRC_OFFSET));
    if (size >= CHECKPOINT_HEADER_SIZE + 4)
        store_le32(file + size - 4, (uint32_t)crc32(0L, file, (uInt)(size - 4)));
}

static float sum_floats(const float *v, size_t n)
{
    float sum = 0.0f;

    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return sum;
}

static void use_checkpoint(const Checkpoint *ck)
{
    char err[NET_ERR_LEN];
    Net net;
    volatile float sink;

    if (net_create(&net, ck->spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0)
        abort();
    if (net.n_params != ck->n_params || ck->optim.n != ck->n_params
        || net.n_stats != ck->n_stats)
        abort();
    if (ck->n_history < 0 || ck->n_test_history < 0)
        abort();
    sink = sum_floats(ck->params, ck->n_params);
    sink = sum_floats(ck->stats, ck->n_stats);
    sink = sum_floats(ck->optim.m, ck->optim.n);
    if (ck->optim.kind == OPTIM_ADAM)
        sink = sum_floats(ck->optim.v, ck->optim.n);
    sink = sum_floats(ck->loss_history, (size_t)ck->n_history);
    sink = sum_floats(ck->acc_history, (size_t)ck->n_history);
    sink = sum_floats(ck->test_acc_history, (size_t)ck->n_test_history);
    (void)sink;
    net_free(&net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CHECKPOINT_ERR_LEN] = "";
    Checkpoint ck;
    uint8_t *file;

    if (size < 1)
        return 0;
    file = malloc(size);
    if (file == NULL)
        return 0;
    memcpy(file, data + 1, size - 1);
    if (data[0] & 1)
        fix_crcs(file, size - 1);

    const char *path = fuzz_write_file(file, size - 1);
    free(file);
    if (checkpoint_load(path, &ck, err, sizeof err) != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    use_checkpoint(&ck);
    checkpoint_free(&ck);
    return 0;
}
