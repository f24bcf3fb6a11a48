/*
 * Tests for the training options of the trainer. The validation split is
 * never trained on. Augmentation and batch normalisation keep runs
 * bit-identical for any thread count. The schedule sets the learning rate
 * that the epoch records report, and weight decay shrinks the weights.
 * The running statistics of batch normalisation survive a checkpoint and
 * a resumed run.
 *
 * The data is synthetic, as in the trainer tests: noise plus a bright
 * band of rows at the label's position, so a small network learns it in
 * a couple of epochs.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "net.h"
#include "tests.h"
#include "trainer.h"
#include "util.h"

#define SPEC_BN "conv3x3x4,bn,relu,pool2,dense16,bn,relu,dense10"
#define TRAIN_COUNT 128
#define VAL_COUNT 32
#define TEST_COUNT 40
#define BATCH 24
#define THREADED_TIMEOUT 120

static void make_dataset(Dataset *ds, int n, uint64_t seed)
{
    Rng rng;

    rng_seed(&rng, seed);
    ds->count = n;
    ds->pixels = xmalloc((size_t)n * DATASET_PIXELS);
    ds->labels = xmalloc((size_t)n);
    for (int i = 0; i < n; i++) {
        uint8_t label = (uint8_t)rng_below(&rng, DATASET_CLASSES);
        uint8_t *img = ds->pixels + (size_t)i * DATASET_PIXELS;

        ds->labels[i] = label;
        for (int p = 0; p < DATASET_PIXELS; p++) {
            img[p] = (uint8_t)(51.0f * rng_uniform(&rng));
            if (p / DATASET_COLS / 2 - 2 == label)
                img[p] += 204;
        }
    }
}

/* Copies the first N images of SRC into DST. */
static void copy_prefix(const Dataset *src, int n, Dataset *dst)
{
    dst->count = n;
    dst->pixels = xmalloc((size_t)n * DATASET_PIXELS);
    dst->labels = xmalloc((size_t)n);
    memcpy(dst->pixels, src->pixels, (size_t)n * DATASET_PIXELS);
    memcpy(dst->labels, src->labels, (size_t)n);
}

static void free_dataset(Dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
}

static TrainerConfig bn_config(void)
{
    TrainerConfig cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.spec = SPEC_BN;
    cfg.optim = OPTIM_ADAM;
    cfg.lr = 0.01f;
    cfg.epochs = 2;
    cfg.batch = BATCH;
    cfg.seed = 7;
    cfg.threads = 2;
    cfg.augment.flip = 1;
    cfg.augment.shift = 2;
    return cfg;
}

static Trainer *run_to_end(const TrainerConfig *cfg, const Dataset *train,
                           const Dataset *test)
{
    char err[TRAINER_ERR_LEN] = "";
    Trainer *tr = trainer_create(cfg, train, test, err, sizeof err);

    ck_assert_msg(tr != NULL, "trainer_create failed: %s", err);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    return tr;
}

/* Asserts that two finished runs hold bit-identical weights and running
 * statistics. */
static void check_same_net(Trainer *a, Trainer *b, const char *what)
{
    const Net *na = trainer_net(a), *nb = trainer_net(b);

    ck_assert_uint_eq(na->n_params, nb->n_params);
    ck_assert_uint_eq(na->n_stats, nb->n_stats);
    ck_assert_msg(memcmp(na->params, nb->params,
                         na->n_params * sizeof(float)) == 0,
                  "%s: weights differ", what);
    ck_assert_msg(memcmp(na->stats, nb->stats,
                         na->n_stats * sizeof(float)) == 0,
                  "%s: running statistics differ", what);
}

typedef struct {
    int n;
    EpochRecord records[8];
} EpochLog;

static void record_epoch(const EpochRecord *rec, void *ctx)
{
    EpochLog *log = ctx;

    if (log->n < 8)
        log->records[log->n++] = *rec;
}

static char *temp_path(const char *name)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char *path = xmalloc(strlen(base) + strlen(name) + 48);

    sprintf(path, "%s/fmnist-training-%ld-%s", base, (long)getpid(), name);
    return path;
}

/* ---------------------------------------------------------- validation */

/*
 * Training with the last VAL_COUNT images held out gives bit-identical
 * weights to training on a copy of the set without them, so they take no
 * part in training. The reported validation accuracy is that of the final
 * network on exactly those images.
 */
START_TEST(test_training_val_split_disjoint)
{
    Dataset full, prefix, test;
    TrainerConfig cfg = bn_config();
    EpochLog log = {0};
    Trainer *held_out, *without;

    make_dataset(&full, TRAIN_COUNT + VAL_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    copy_prefix(&full, TRAIN_COUNT, &prefix);

    cfg.val_count = VAL_COUNT;
    cfg.on_epoch = record_epoch;
    cfg.ctx = &log;
    held_out = run_to_end(&cfg, &full, &test);
    cfg.val_count = 0;
    cfg.on_epoch = NULL;
    without = run_to_end(&cfg, &prefix, &test);
    check_same_net(held_out, without, "with and without the held-out images");

    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.records[1].has_val, 1);

    const Net *net = trainer_net(held_out);
    NetScratch *scratch = net_scratch_create(net, VAL_COUNT);
    float *images = xmalloc((size_t)VAL_COUNT * DATASET_PIXELS * sizeof(float));
    float probs[VAL_COUNT * DATASET_CLASSES];
    int correct = 0;

    dataset_copy_images(&full, TRAIN_COUNT, VAL_COUNT, images);
    net_predict(net, scratch, images, VAL_COUNT, probs);
    for (int i = 0; i < VAL_COUNT; i++) {
        const float *p = probs + i * DATASET_CLASSES;
        int best = 0;

        for (int c = 1; c < DATASET_CLASSES; c++)
            if (p[c] > p[best])
                best = c;
        correct += best == full.labels[TRAIN_COUNT + i];
    }
    ck_assert_double_eq_tol(log.records[1].val_acc,
                            (double)correct / VAL_COUNT, 1e-9);
    ck_assert(log.records[1].val_loss > 0.0);

    TrainerStatus *st = xmalloc(sizeof *st);
    trainer_get_status(held_out, st);
    ck_assert_int_eq(st->has_val, 1);
    ck_assert_double_eq(st->val_acc, log.records[1].val_acc);
    free(st);

    net_scratch_free(scratch);
    free(images);
    trainer_free(held_out);
    trainer_free(without);
    free_dataset(&full);
    free_dataset(&prefix);
    free_dataset(&test);
}
END_TEST

/* With a training limit too, the run trains on the first images of the
 * part outside the validation split. */
START_TEST(test_training_val_split_with_limit)
{
    Dataset full, prefix, test;
    TrainerConfig cfg = bn_config();
    Trainer *limited, *plain;

    make_dataset(&full, TRAIN_COUNT + VAL_COUNT, 3);
    make_dataset(&test, TEST_COUNT, 4);
    copy_prefix(&full, 50, &prefix);
    cfg.epochs = 1;
    cfg.val_count = VAL_COUNT;
    cfg.train_limit = 50;
    limited = run_to_end(&cfg, &full, &test);
    cfg.val_count = 0;
    cfg.train_limit = 0;
    plain = run_to_end(&cfg, &prefix, &test);
    check_same_net(limited, plain, "limit 50 with validation and 50 images");

    trainer_free(limited);
    trainer_free(plain);
    free_dataset(&full);
    free_dataset(&prefix);
    free_dataset(&test);
}
END_TEST

START_TEST(test_training_val_split_too_large)
{
    Dataset train, test;
    TrainerConfig cfg = bn_config();
    char err[TRAINER_ERR_LEN] = "";

    make_dataset(&train, 40, 5);
    make_dataset(&test, TEST_COUNT, 6);
    cfg.val_count = 40;
    ck_assert_ptr_null(trainer_create(&cfg, &train, &test, err, sizeof err));
    ck_assert_msg(strstr(err, "validation split: 40 of the 40 training "
                         "images") != NULL, "message: %s", err);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- determinism */

/* Flips, shifts, dropout and per-shard bn statistics give the same
 * weights and running statistics with 1, 2 and 3 threads. */
START_TEST(test_training_bn_augment_threads_identical)
{
    Dataset train, test;
    TrainerConfig cfg = bn_config();
    Trainer *tr[3], *plain;

    make_dataset(&train, TRAIN_COUNT, 7);
    make_dataset(&test, TEST_COUNT, 8);
    cfg.spec = "conv3x3x4,bn,relu,pool2,dense16,bn,relu,dropout0.25,dense10";
    for (int i = 0; i < 3; i++) {
        cfg.threads = i + 1;
        tr[i] = run_to_end(&cfg, &train, &test);
    }
    check_same_net(tr[0], tr[1], "1 and 2 threads");
    check_same_net(tr[0], tr[2], "1 and 3 threads");

    /* The running statistics moved away from their start (mean 0). */
    const Net *net = trainer_net(tr[0]);
    int moved = 0;
    for (size_t i = 0; i < net->n_stats; i++)
        moved += net->stats[i] != 0.0f && net->stats[i] != 1.0f;
    ck_assert_int_gt(moved, (int)net->n_stats / 2);

    /* Augmentation changes what is trained on. */
    cfg.augment.flip = 0;
    cfg.augment.shift = 0;
    plain = run_to_end(&cfg, &train, &test);
    ck_assert_int_ne(memcmp(net->params, trainer_net(plain)->params,
                            net->n_params * sizeof(float)), 0);

    for (int i = 0; i < 3; i++)
        trainer_free(tr[i]);
    trainer_free(plain);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- schedule, decay */

/*
 * A cosine schedule over 2 epochs of 128 / 24 = 6 batches (the last of 8
 * samples): the last batch of epoch 1 starts at sample 120, so at epoch
 * 120/128 of 2, and the last batch of epoch 2 at 1 + 120/128.
 */
START_TEST(test_training_schedule_reaches_records)
{
    Dataset train, test;
    TrainerConfig cfg = bn_config();
    EpochLog log = {0};
    Trainer *tr;
    const double pi = 3.14159265358979323846;

    make_dataset(&train, TRAIN_COUNT, 9);
    make_dataset(&test, TEST_COUNT, 10);
    cfg.schedule.kind = SCHEDULE_COSINE;
    cfg.on_epoch = record_epoch;
    cfg.ctx = &log;
    tr = run_to_end(&cfg, &train, &test);
    ck_assert_int_eq(log.n, 2);
    for (int e = 0; e < 2; e++) {
        double epoch = e + 120.0 / 128.0;
        double want = 0.01 * 0.5 * (1.0 + cos(pi * epoch / 2.0));

        ck_assert_msg(fabs(log.records[e].lr - want) < 1e-7,
                      "epoch %d: lr %g, expected %g", e + 1,
                      log.records[e].lr, want);
    }
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

static double weight_norm(const Net *net)
{
    double sum = 0.0;

    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];

        if (l->kind != LAYER_CONV && l->kind != LAYER_DENSE)
            continue;
        for (size_t j = l->weight_offset; j < l->bias_offset; j++)
            sum += (double)net->params[j] * net->params[j];
    }
    return sqrt(sum);
}

/* Either kind of decay leaves smaller weights than none, and the bn
 * scales are not decayed (with decay alone they would all fall below 1). */
START_TEST(test_training_weight_decay_shrinks)
{
    Dataset train, test;
    TrainerConfig cfg = bn_config();
    Trainer *none, *decoupled, *l2;

    make_dataset(&train, TRAIN_COUNT, 11);
    make_dataset(&test, TEST_COUNT, 12);
    none = run_to_end(&cfg, &train, &test);
    cfg.weight_decay = 0.5f;
    cfg.decay = DECAY_DECOUPLED;
    decoupled = run_to_end(&cfg, &train, &test);
    cfg.decay = DECAY_L2;
    l2 = run_to_end(&cfg, &train, &test);

    double base = weight_norm(trainer_net(none));
    ck_assert_msg(weight_norm(trainer_net(decoupled)) < base,
                  "decoupled decay: norm %g, without %g",
                  weight_norm(trainer_net(decoupled)), base);
    ck_assert_msg(weight_norm(trainer_net(l2)) < base,
                  "L2 decay: norm %g, without %g",
                  weight_norm(trainer_net(l2)), base);

    trainer_free(none);
    trainer_free(decoupled);
    trainer_free(l2);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- checkpoints */

/*
 * A run with bn saved after every epoch: the file contains the running
 * statistics bit for bit, a trainer loaded from it evaluates to the same
 * test accuracy, and 1 epoch + resume + 1 epoch ends bit-identical to 2
 * straight epochs.
 */
START_TEST(test_training_checkpoint_bn_round_trip)
{
    Dataset train, test;
    TrainerConfig cfg = bn_config();
    char *path = temp_path("bn.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    Trainer *straight, *first, *resumed, *loaded;
    TrainerStatus *st = xmalloc(sizeof *st);
    Checkpoint ck;

    make_dataset(&train, TRAIN_COUNT, 13);
    make_dataset(&test, TEST_COUNT, 14);
    straight = run_to_end(&cfg, &train, &test);

    cfg.epochs = 1;
    cfg.save_path = path;
    first = run_to_end(&cfg, &train, &test);
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(ck.n_stats, trainer_net(first)->n_stats);
    ck_assert_int_eq(memcmp(ck.stats, trainer_net(first)->stats,
                            ck.n_stats * sizeof(float)), 0);
    checkpoint_free(&ck);

    cfg.load_path = path;
    cfg.epochs = 0;
    cfg.save_path = NULL;
    loaded = run_to_end(&cfg, NULL, &test);
    check_same_net(first, loaded, "saved and loaded");
    trainer_evaluate(first);
    trainer_get_status(first, st);
    double acc = st->test_acc;
    trainer_get_status(loaded, st);
    ck_assert_double_eq(st->test_acc, acc);

    /* The resumed run sets epochs_end to 2, as the straight run had. */
    cfg.epochs = 1;
    resumed = run_to_end(&cfg, &train, &test);
    check_same_net(straight, resumed, "2 epochs and 1 + resumed 1");

    trainer_free(straight);
    trainer_free(first);
    trainer_free(loaded);
    trainer_free(resumed);
    unlink(path);
    free(path);
    free(st);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A file whose statistics count does not match its model is rejected. */
START_TEST(test_training_checkpoint_stats_count_checked)
{
    char *path = temp_path("count.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    Checkpoint ck, loaded;
    Net net;

    ck_assert_int_eq(net_create(&net, SPEC_BN, 1, 28, 28, 10, err,
                                sizeof err), 0);
    memset(&ck, 0, sizeof ck);
    ck.spec = net.spec;
    ck.n_params = net.n_params;
    ck.params = net.params;
    ck.n_stats = net.n_stats - 2;
    ck.stats = net.stats;
    optim_init(&ck.optim, OPTIM_SGD, net.n_params, 0.01f);
    ck.history_stride = 1;
    ck_assert_msg(checkpoint_save(path, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_ne(checkpoint_load(path, &loaded, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "contains 38 running statistics, but its model")
                  != NULL, "message: %s", err);

    optim_free(&ck.optim);
    net_free(&net);
    unlink(path);
    free(path);
}
END_TEST

Suite *training_suite(void)
{
    Suite *s = suite_create("training");
    TCase *val = tcase_create("validation");
    TCase *runs = tcase_create("runs");

    tcase_set_timeout(val, THREADED_TIMEOUT);
    tcase_add_test(val, test_training_val_split_disjoint);
    tcase_add_test(val, test_training_val_split_with_limit);
    tcase_add_test(val, test_training_val_split_too_large);
    suite_add_tcase(s, val);

    tcase_set_timeout(runs, THREADED_TIMEOUT);
    tcase_add_test(runs, test_training_bn_augment_threads_identical);
    tcase_add_test(runs, test_training_schedule_reaches_records);
    tcase_add_test(runs, test_training_weight_decay_shrinks);
    tcase_add_test(runs, test_training_checkpoint_bn_round_trip);
    tcase_add_test(runs, test_training_checkpoint_stats_count_checked);
    suite_add_tcase(s, runs);
    return s;
}
