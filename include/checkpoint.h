/*
 * checkpoint: a training run saved to disk so it can be resumed, evaluated
 * or explored later.
 *
 * The file is versioned binary, little-endian throughout; floats are their
 * IEEE-754 bit patterns. P is the parameter count, L the spec length, H and
 * T the history lengths, S the count of batch-normalisation running
 * statistics (0 for a model without bn layers).
 *
 *   header, 44 bytes
 *      0  char[8]  magic "FMNISTCK"
 *      8  u32      format version (CHECKPOINT_VERSION)
 *     12  u32      L
 *     16  u64      P
 *     24  u32      optimiser kind (0 SGD, 1 Adam)
 *     28  u32      H
 *     32  u32      T
 *     36  u32      S
 *     40  u32      CRC-32 of bytes 0..39
 *   body
 *     L bytes      canonical model spec, without a terminating NUL
 *     P f32        parameters
 *     S f32        running statistics (Net.stats)
 *     5 f32, i64   lr, momentum, beta1, beta2, eps, updates applied (t)
 *     P f32        SGD velocity or Adam first moment
 *     P f32        Adam second moment (Adam only)
 *     u64, 2 i64   seed, epochs done, global step
 *     2 u32, 3 i64, f64
 *                  unfinished epoch: batch size, training-set size,
 *                  batches, samples, correct samples, summed loss
 *     u32          history stride in batches
 *     H f32, H f32, T f32
 *                  training loss, training accuracy, test accuracy
 *   u32            CRC-32 (zlib) of every byte before it
 *
 * The header has its own CRC so that a damaged length field is reported
 * as corruption rather than as truncation. Nothing in the file depends on
 * the clock or the thread count, so identical runs write identical files.
 */
#ifndef FMNIST_CHECKPOINT_H
#define FMNIST_CHECKPOINT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "optim.h"

#define CHECKPOINT_MAGIC "FMNISTCK"
/* Version 1 had no running statistics and a 40-byte header. */
#define CHECKPOINT_VERSION 2u
#define CHECKPOINT_HEADER_SIZE 44
/* Length of error buffers for this module and for trainer_create. A
 * message contains the path once as given and at most once shell-quoted,
 * where each ' takes four bytes, or the path and up to two model specs of
 * CHECKPOINT_SPEC_MAX bytes. The rest is the reason, under 1024 bytes. */
#define CHECKPOINT_ERR_LEN (5 * PATH_MAX + 2 * CHECKPOINT_SPEC_MAX + 1024)
/* Appended to a checkpoint's name for the temporary file that a save
 * renames over it. Both ways of saving below use this name, with the X's
 * replaced by random letters and digits. */
#define CHECKPOINT_TMP_SUFFIX ".tmp-XXXXXX"
/* Maximum length of the model spec in a checkpoint, in bytes. */
#define CHECKPOINT_SPEC_MAX 4096

/* Progress through an epoch that was interrupted. All fields are zero when
 * the run stopped at an epoch boundary. The position is only meaningful for
 * the same batch size and training-set size. */
typedef struct {
    int batch;              /* batch size in use */
    int train_count;        /* training images the epoch was shuffled over */
    int64_t batches;        /* batches done */
    int64_t samples;        /* samples done */
    int64_t correct;        /* correctly classified samples so far */
    double loss_sum;        /* summed cross-entropy so far */
} CheckpointEpoch;

typedef struct {
    char *spec;             /* canonical model spec */
    size_t n_params;
    float *params;          /* n_params floats */
    size_t n_stats;
    float *stats;           /* n_stats floats, the Net.stats of the model */
    Optim optim;            /* optim.n == n_params; v is NULL for SGD */
    uint64_t seed;          /* run seed: shuffles and dropout derive from it */
    int64_t epochs_done;
    int64_t step;           /* optimiser updates over the whole run */
    CheckpointEpoch partial;
    int history_stride;     /* batches between training-history points */
    int n_history;
    float *loss_history;    /* n_history floats */
    float *acc_history;     /* n_history floats */
    int n_test_history;
    float *test_acc_history;  /* n_test_history floats */
} Checkpoint;

/*
 * Writes CK to PATH atomically: a temporary file in the same directory is
 * written, flushed and fsync'd, renamed over PATH, and then the directory
 * is fsync'd. CK's arrays are only read. On failure the temporary file is
 * removed, an existing PATH is left as it was, and -1 is returned with
 * "PATH: step: reason" in ERR. Returns 0 on success.
 *
 * On Linux the temporary file is created with O_TMPFILE, so it has no name
 * while it is written: the kernel frees it when the process dies, and the
 * file system frees it on the next mount after a power loss. Once it is
 * complete, linkat through /proc/self/fd names it PATH
 * CHECKPOINT_TMP_SUFFIX just before the rename. Where O_TMPFILE or that
 * linkat fails, the save falls back to a file that mkstemp creates under
 * that name, which a killed save leaves behind.
 */
int checkpoint_save(const char *path, const Checkpoint *ck,
                    char *err, size_t errlen);

/* Ways to create the temporary file of a save. */
typedef enum {
    CHECKPOINT_TMP_AUTO,    /* unnamed where it works, else named */
    CHECKPOINT_TMP_UNNAMED, /* unnamed only: its failures are errors */
    CHECKPOINT_TMP_NAMED    /* named only, created by mkstemp */
} CheckpointTmp;

/*
 * Saves like checkpoint_save, which is this function with
 * CHECKPOINT_TMP_AUTO and /proc/self/fd, except that checkpoint_save
 * stops trying unnamed files in a process once they have failed. FD_DIR
 * replaces /proc/self/fd as the directory that names the open
 * descriptors. The tests pass the other methods and directories to run
 * each path on any system.
 */
int checkpoint_save_using(const char *path, const Checkpoint *ck,
                          CheckpointTmp method, const char *fd_dir,
                          char *err, size_t errlen);

/*
 * Reads PATH into CK, which the caller releases with checkpoint_free.
 * Returns 0 on success. Returns -1 with "PATH: reason" in ERR when the file
 * is empty, has another magic or format version, is truncated or fails
 * either CRC. It is also rejected when its parameter or statistics count
 * is not the one its model spec needs for 1x28x28 inputs and 10 classes,
 * or when a field contains a value no run saves, such as a NaN weight or a
 * negative running variance. So is a model in which a layer outputs
 * infinity or NaN on the probe images of net_find_nonfinite_layer.
 */
int checkpoint_load(const char *path, Checkpoint *ck, char *err, size_t errlen);

/* Frees the arrays of a checkpoint filled by checkpoint_load. */
void checkpoint_free(Checkpoint *ck);

#endif
