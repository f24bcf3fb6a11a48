/*
 * Writes the seed corpora of the fuzz targets: make_seeds DIR creates
 * DIR/idx, DIR/checkpoint and DIR/spec and fills them with small valid
 * inputs and a few near misses. Checkpoints are written with
 * checkpoint_save itself, so the seeds follow the current format; their
 * first byte is the fuzz target's mode byte (1: recompute the CRCs).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "checkpoint.h"
#include "dataset.h"
#include "net.h"
#include "optim.h"
#include "util.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, why);
    exit(1);
}

/* Writes DIR/NAME into PATH (SIZE bytes), or stops when it does not
 * fit. */
static void join_path(char *path, size_t size, const char *dir,
                      const char *name)
{
    int len = snprintf(path, size, "%s/%s", dir, name);

    if (len < 0 || (size_t)len >= size)
        die(dir, "path too long");
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die(path, strerror(errno));
}

static void write_bytes(const char *dir, const char *name, const void *data,
                        size_t size)
{
    char path[4096];
    FILE *f;

    join_path(path, sizeof path, dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die(path, strerror(errno));
}

static void write_gzip(const char *dir, const char *name, const void *data,
                       size_t size)
{
    char path[4096];
    gzFile gz;

    join_path(path, sizeof path, dir, name);
    gz = gzopen(path, "wb9");
    if (gz == NULL || gzwrite(gz, data, (unsigned)size) != (int)size
        || gzclose(gz) != Z_OK)
        die(path, "gzip write failed");
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* IDX files: 2 images, 3 labels, their gzip forms and a short file. */
static void write_idx_seeds(const char *dir)
{
    enum { IMAGES = 2, LABELS = 3 };
    static uint8_t images[16 + IMAGES * DATASET_PIXELS];
    uint8_t labels[8 + LABELS];

    put_be32(images, IDX_MAGIC_IMAGES);
    put_be32(images + 4, IMAGES);
    put_be32(images + 8, DATASET_ROWS);
    put_be32(images + 12, DATASET_COLS);
    for (size_t i = 16; i < sizeof images; i++)
        images[i] = (uint8_t)(i * 7);
    put_be32(labels, IDX_MAGIC_LABELS);
    put_be32(labels + 4, LABELS);
    labels[8] = 0;
    labels[9] = 5;
    labels[10] = 9;

    write_bytes(dir, "images", images, sizeof images);
    write_gzip(dir, "images.gz", images, sizeof images);
    write_bytes(dir, "labels", labels, sizeof labels);
    write_gzip(dir, "labels.gz", labels, sizeof labels);
    write_bytes(dir, "images-short", images, 16 + DATASET_PIXELS / 2);
}

/* Saves a checkpoint of SPEC with OPTIM and N_HISTORY points to a
 * temporary file, then copies it behind a mode byte of 1 and of 0. */
static void write_checkpoint_seed(const char *dir, const char *name,
                                  const char *spec, OptimKind optim,
                                  int n_history, int mid_epoch)
{
    char err[CHECKPOINT_ERR_LEN], tmp[4096], seed_name[256];
    float history[8] = { 2.3f, 1.9f, 1.2f, 0.9f, 0.7f, 0.6f, 0.5f, 0.45f };
    Checkpoint ck;
    Net net;
    Rng rng;

    if (net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0)
        die(spec, err);
    rng_seed(&rng, 7);
    net_init_params(&net, &rng);
    memset(&ck, 0, sizeof ck);
    ck.spec = net.spec;
    ck.n_params = net.n_params;
    ck.params = net.params;
    ck.n_stats = net.n_stats;
    ck.stats = net.stats;
    optim_init(&ck.optim, optim, net.n_params, 0.001f);
    ck.optim.t = 12;
    ck.seed = 1;
    ck.epochs_done = 1;
    ck.step = 12;
    if (mid_epoch) {
        ck.partial = (CheckpointEpoch){ .batch = 4, .train_count = 40,
                                        .batches = 3, .samples = 12,
                                        .correct = 5, .loss_sum = 20.5 };
        ck.step = 15;
    }
    ck.history_stride = 2;
    ck.n_history = n_history;
    ck.loss_history = history;
    ck.acc_history = history;
    ck.n_test_history = n_history > 0 ? 1 : 0;
    ck.test_acc_history = history;

    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp)
        die(dir, "path too long");
    if (checkpoint_save(tmp, &ck, err, sizeof err) != 0)
        die(tmp, err);
    optim_free(&ck.optim);
    net_free(&net);

    FILE *f = fopen(tmp, "rb");
    static uint8_t buf[1 << 20];
    size_t size;
    if (f == NULL)
        die(tmp, strerror(errno));
    size = fread(buf + 1, 1, sizeof buf - 1, f);
    fclose(f);
    remove(tmp);
    for (int mode = 0; mode < 2; mode++) {
        buf[0] = (uint8_t)mode;
        snprintf(seed_name, sizeof seed_name, "%s-mode%d", name, mode);
        write_bytes(dir, seed_name, buf, size + 1);
    }
}

static void write_checkpoint_seeds(const char *dir)
{
    write_checkpoint_seed(dir, "sgd-tiny", "pool2,pool2,pool2,pool2,dense10",
                          OPTIM_SGD, 0, 0);
    write_checkpoint_seed(dir, "adam-history", "pool2,pool2,pool2,dense10",
                          OPTIM_ADAM, 8, 0);
    write_checkpoint_seed(dir, "adam-mid-epoch",
                          "conv3x3x1,relu,pool2,pool2,pool2,dropout0.5,dense10",
                          OPTIM_ADAM, 3, 1);
    write_checkpoint_seed(dir, "sgd-bn", "pool2,pool2,bn,pool2,dense4,bn,dense10",
                          OPTIM_SGD, 2, 0);
}

static void write_spec_seeds(const char *dir)
{
    static const char *const specs[] = {
        "default", "small", "tf", "best", " small ",
        "conv3x3x2:same,bn,relu,pool2,dense16,bn,relu,dense10",
        "conv3x3x4,relu,pool2,dense16,relu,dropout0.5,dense10",
        "conv5x5x2:same,pool2,conv3x3x2:valid,flatten,dense10",
        "pool2,pool2,pool2,pool2,dense10",
        "dense32,relu,dropout.25,dense10",
        "conv28x28x3,relu,dense10",
    };
    char name[32];

    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        snprintf(name, sizeof name, "spec%zu", i);
        write_bytes(dir, name, specs[i], strlen(specs[i]));
    }
}

int main(int argc, char **argv)
{
    char path[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    make_dir(argv[1]);
    join_path(path, sizeof path, argv[1], "idx");
    make_dir(path);
    write_idx_seeds(path);
    join_path(path, sizeof path, argv[1], "checkpoint");
    make_dir(path);
    write_checkpoint_seeds(path);
    join_path(path, sizeof path, argv[1], "spec");
    make_dir(path);
    write_spec_seeds(path);
    return 0;
}
