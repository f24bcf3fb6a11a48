/*
 * Tests for trainer: runs on a small synthetic data set built in memory,
 * so each case takes well under a second.
 *
 * Each synthetic image is faint noise plus one bright band of rows whose
 * position is the label, so a dense layer learns it within a few epochs.
 * Sizes are chosen not to divide by the batch, the training shard or the
 * evaluation shard, so the partial last batch and shard are always
 * exercised. No test asserts on timing: pauses and stops are injected from
 * the on_epoch callback, which runs at a known point of the run.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "metrics.h"
#include "net.h"
#include "savelock.h"
#include "tests.h"
#include "trainer.h"
#include "util.h"

#define SPEC_DENSE "dense16,relu,dropout0.25,dense10"
#define SPEC_CONV "conv3x3x4,relu,pool2,dropout0.2,dense10"
/* Batch normalisation of single values: one per unit and sample. */
#define SPEC_DENSE_BN "dense16,bn,relu,dense10"
#define TRAIN_COUNT 61
#define TEST_COUNT 37
#define BATCH 20
#define THREADED_TIMEOUT 120

/* Fills DS with N images: noise from 0 to 50 plus 204 on rows 2c+4 and
 * 2c+5, where c is the image's label (as floats, noise below 0.2 plus
 * 0.8). */
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
            int row = p / DATASET_COLS;

            img[p] = (uint8_t)(51.0f * rng_uniform(&rng));
            if (row / 2 - 2 == label)
                img[p] += 204;
        }
    }
}

static void free_dataset(Dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
}

static TrainerConfig base_config(void)
{
    TrainerConfig cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.spec = SPEC_DENSE;
    cfg.optim = OPTIM_ADAM;
    cfg.lr = 0.01f;
    cfg.epochs = 2;
    cfg.batch = BATCH;
    cfg.seed = 42;
    cfg.threads = 2;
    return cfg;
}

static Trainer *create_ok(const TrainerConfig *cfg, const Dataset *train,
                          const Dataset *test)
{
    char err[TRAINER_ERR_LEN] = "";
    Trainer *tr = trainer_create(cfg, train, test, err, sizeof err);

    ck_assert_msg(tr != NULL, "trainer_create failed: %s", err);
    return tr;
}

/* Creates a trainer, runs it to the end and returns it. */
static Trainer *run_to_end(const TrainerConfig *cfg, const Dataset *train,
                           const Dataset *test)
{
    Trainer *tr = create_ok(cfg, train, test);

    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    return tr;
}

/* Polls the status every millisecond until it reaches WANT. A run that
 * ends first fails the test, and a hang is caught by the case's timeout. */
static void wait_for_state(Trainer *tr, TrainerState want, TrainerStatus *st)
{
    struct timespec tick = { 0, 1000000 };

    for (;;) {
        trainer_get_status(tr, st);
        if (st->state == want)
            return;
        ck_assert_msg(st->state != TRAINER_DONE && st->state != TRAINER_FAILED,
                      "run ended in state %s while waiting for %s",
                      trainer_state_name(st->state), trainer_state_name(want));
        nanosleep(&tick, NULL);
    }
}

/* Makes a directory under $TMPDIR (or /tmp) for one test's files. */
static char *make_temp_dir(void)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    size_t size = strlen(base) + 32;
    char *dir = xmalloc(size);

    /* snprintf, unlike sprintf, accepts a null destination of size 0, so
     * UBSan adds no null check here. With that check, GCC 12 at -O1 warned
     * of a null destination on the path where UBSan reports one and goes
     * on. */
    snprintf(dir, size, "%s/fmnist-trainer-XXXXXX", base);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp in %s failed", base);
    return dir;
}

static char *join_path(const char *dir, const char *name)
{
    char *path = xmalloc(strlen(dir) + strlen(name) + 2);

    sprintf(path, "%s/%s", dir, name);
    return path;
}

/* ---------------------------------------------------------- determinism */

/* Trains SPEC in batches of BATCH with 1, 2 and 3 threads and compares
 * the weights bitwise. */
static void check_threads_identical_batch(const char *spec, int batch)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    Trainer *tr[3];
    Trainer *untrained;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = spec;
    cfg.batch = batch;
    for (int i = 0; i < 3; i++) {
        cfg.threads = i + 1;
        tr[i] = run_to_end(&cfg, &train, &test);
    }
    cfg.epochs = 0;
    untrained = create_ok(&cfg, &train, &test);

    const Net *net = trainer_net(tr[0]);
    size_t bytes = net->n_params * sizeof(float);
    ck_assert_msg(memcmp(net->params, trainer_net(untrained)->params, bytes) != 0,
                  "training did not change the weights of %s", spec);
    for (int i = 1; i < 3; i++)
        ck_assert_msg(memcmp(net->params, trainer_net(tr[i])->params, bytes) == 0,
                      "%s: weights with %d threads differ from 1 thread",
                      spec, i + 1);

    for (int i = 0; i < 3; i++)
        trainer_free(tr[i]);
    trainer_free(untrained);
    free_dataset(&train);
    free_dataset(&test);
}

static void check_threads_identical(const char *spec)
{
    check_threads_identical_batch(spec, BATCH);
}

START_TEST(test_trainer_threads_identical_dense)
{
    check_threads_identical(SPEC_DENSE);
}
END_TEST

START_TEST(test_trainer_threads_identical_conv)
{
    check_threads_identical(SPEC_CONV);
}
END_TEST

/* A batch of 20 rows through a dense layer of 2600 units reaches
 * NET_DENSE_SPLIT_MIN, so the threads share its products, while dense10
 * and the last batch of one row run on the calling thread. */
START_TEST(test_trainer_threads_identical_split)
{
    double work = (double)BATCH * DATASET_PIXELS * 2600;

    ck_assert_msg(work >= (double)NET_DENSE_SPLIT_MIN,
                  "dense2600 over a batch of %d is %.0f multiply-adds, "
                  "below the split threshold %ld", BATCH, work,
                  (long)NET_DENSE_SPLIT_MIN);
    check_threads_identical("dense2600,relu,dropout0.25,dense10");
}
END_TEST

/* Batch normalisation in the trunk keeps the three phases. In the head it
 * makes the trainer run whole shards and form the dense gradients
 * afterwards. Both must be independent of the thread count. */
START_TEST(test_trainer_threads_identical_bn)
{
    check_threads_identical("conv3x3x4,bn,relu,pool2,dropout0.2,dense10");
    check_threads_identical("conv3x3x4,relu,pool2,dense100,bn,relu,"
                            "dropout0.25,dense10");
}
END_TEST

/* A bn layer over single values never trains on one sample. Of 61
 * images, batches of 17 train as shards of 8 and 9, and the last batch
 * of 10 as shards of 8 and 2. Batches of 20 leave a last batch of one
 * sample, which is skipped. In the second net, three poolings leave a
 * 3x3 map, and a 3x3 convolution turns it into 1x1 maps. */
START_TEST(test_trainer_threads_identical_single_value_bn)
{
    const char *dense = "conv3x3x4,relu,pool2,dense100,bn,relu,"
                        "dropout0.25,dense10";
    const char *map = "pool2,pool2,pool2,conv3x3x8,bn,relu,dense10";

    check_threads_identical_batch(dense, 17);
    check_threads_identical_batch(dense, BATCH);
    check_threads_identical_batch(map, 17);
}
END_TEST

/* With fewer training images than --batch, every batch is the whole
 * training set, so the workers stop at its shards: 61 images make 8
 * shards, not the 512 of a batch of 4096. */
START_TEST(test_trainer_threads_capped_at_train_set)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.batch = 4096;
    cfg.threads = 256;
    tr = create_ok(&cfg, &train, &test);

    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.threads,
                     (TRAIN_COUNT + TRAINER_SHARD - 1) / TRAINER_SHARD);
    trainer_free(tr);

    /* --train-limit leaves fewer still. */
    cfg.train_limit = 9;
    tr = create_ok(&cfg, &train, &test);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.threads, (9 + TRAINER_SHARD - 1) / TRAINER_SHARD);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A batch splits into shards of up to TRAINER_SHARD samples (3 for a
 * batch of 20), so 256 requested threads become one worker per shard,
 * with the same weights as 1 thread. */
START_TEST(test_trainer_threads_capped_at_shards)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *single, *capped;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.threads = 1;
    single = run_to_end(&cfg, &train, &test);
    cfg.threads = 256;
    capped = run_to_end(&cfg, &train, &test);

    trainer_get_status(capped, &st);
    ck_assert_int_eq(st.threads, (BATCH + TRAINER_SHARD - 1) / TRAINER_SHARD);
    const Net *net = trainer_net(single);
    ck_assert_msg(memcmp(net->params, trainer_net(capped)->params,
                         net->n_params * sizeof(float)) == 0,
                  "weights with 256 requested threads differ from 1 thread");

    trainer_free(single);
    trainer_free(capped);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_seed_changes_weights)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    Trainer *a, *b;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    a = run_to_end(&cfg, &train, &test);
    cfg.seed = 43;
    b = run_to_end(&cfg, &train, &test);
    ck_assert_int_ne(memcmp(trainer_net(a)->params, trainer_net(b)->params,
                            trainer_net(a)->n_params * sizeof(float)), 0);
    trainer_free(a);
    trainer_free(b);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- learning */

typedef struct {
    int count;
    EpochRecord records[16];
} EpochLog;

static void log_epoch(const EpochRecord *rec, void *ctx)
{
    EpochLog *log = ctx;

    if (log->count < 16)
        log->records[log->count] = *rec;
    log->count++;
}

START_TEST(test_trainer_loss_decreases)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    EpochLog log = { 0 };
    Trainer *tr;

    make_dataset(&train, 200, 3);
    make_dataset(&test, 100, 4);
    cfg.epochs = 6;
    cfg.on_epoch = log_epoch;
    cfg.ctx = &log;
    tr = run_to_end(&cfg, &train, &test);

    ck_assert_int_eq(log.count, 6);
    for (int i = 0; i < log.count; i++)
        ck_assert_int_eq(log.records[i].epoch, i + 1);
    const EpochRecord *first = &log.records[0], *last = &log.records[5];
    ck_assert_msg(last->train_loss < 0.5 * first->train_loss,
                  "training loss went from %g to %g", first->train_loss,
                  last->train_loss);
    ck_assert_msg(last->test_loss < first->test_loss,
                  "test loss went from %g to %g", first->test_loss,
                  last->test_loss);
    ck_assert_msg(last->test_acc > 0.8, "test accuracy %g after 6 epochs",
                  last->test_acc);
    ck_assert(last->seconds >= first->seconds);
    ck_assert(last->samples_per_sec > 0);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Once a run has ended, the status gives its average speed, not that of
 * its last few batches: after one epoch, the epoch's own. */
START_TEST(test_trainer_done_rate_is_run_average)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    EpochLog log = { 0 };
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, 200, 3);
    make_dataset(&test, 100, 4);
    cfg.epochs = 1;
    cfg.on_epoch = log_epoch;
    cfg.ctx = &log;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);

    ck_assert_int_eq(log.count, 1);
    ck_assert(log.records[0].samples_per_sec > 0);
    ck_assert_double_eq(st.images_per_sec, log.records[0].samples_per_sec);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* With 61 images in batches of 20, the last batch of each epoch would
 * hold one sample, which a bn layer after a dense layer cannot normalise.
 * The trainer skips that batch and only that one. */
START_TEST(test_trainer_bn_skips_lone_sample)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *bn, *plain;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "bn.ckpt");
    char err[CHECKPOINT_ERR_LEN];
    Checkpoint ck;
    int full_batches = TRAIN_COUNT / BATCH;

    ck_assert_int_eq(TRAIN_COUNT % BATCH, 1);
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = SPEC_DENSE_BN;
    cfg.save_path = path;
    bn = run_to_end(&cfg, &train, &test);
    trainer_get_status(bn, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.batches_per_epoch, full_batches);
    ck_assert_int_eq(st.batch, full_batches);
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ck.step, cfg.epochs * full_batches);
    for (size_t i = 0; i < ck.n_stats; i++)
        ck_assert_msg(isfinite(ck.stats[i]), "running statistic %zu is %g",
                      i, (double)ck.stats[i]);
    checkpoint_free(&ck);

    /* Without such a layer, the last batch of one sample trains. */
    cfg.spec = SPEC_DENSE;
    cfg.save_path = NULL;
    plain = run_to_end(&cfg, &train, &test);
    trainer_get_status(plain, &st);
    ck_assert_int_eq(st.batches_per_epoch, full_batches + 1);
    ck_assert_int_eq(st.batch, full_batches + 1);

    trainer_free(bn);
    trainer_free(plain);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* With a bn layer after a dense layer, a batch of 9 samples trains as one
 * shard of 9, not as 8 + 1, where the lone sample would be normalised to
 * the bn shift alone. Without dropout or augmentation, the loss of that
 * one shard is the loss of net_train_batch over the nine images with the
 * initial weights, in any order up to rounding. */
START_TEST(test_trainer_bn_merges_lone_shard)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    EpochLog log = { 0 };
    Trainer *trained, *untrained;
    const int n = TRAINER_SHARD + 1;
    Rng rng;

    make_dataset(&train, n, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = SPEC_DENSE_BN;
    cfg.batch = n;
    cfg.epochs = 1;
    cfg.on_epoch = log_epoch;
    cfg.ctx = &log;
    trained = run_to_end(&cfg, &train, &test);
    cfg.epochs = 0;
    untrained = create_ok(&cfg, &train, &test);

    const Net *net = trainer_net(untrained);
    NetScratch *scratch = net_scratch_create(net, n);
    float *images = xmalloc((size_t)n * DATASET_PIXELS * sizeof(float));
    float *grad = xmalloc(net->n_params * sizeof(float));
    rng_seed(&rng, 1);
    dataset_copy_images(&train, 0, n, images);
    double loss = net_train_batch(net, scratch, images, train.labels, n, grad,
                                  &rng, NULL);

    ck_assert_int_eq(log.count, 1);
    ck_assert_double_eq_tol(log.records[0].train_loss, loss / n, 1e-5);

    free(images);
    free(grad);
    net_scratch_free(scratch);
    trainer_free(trained);
    trainer_free(untrained);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_status_after_run)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    long total = 0;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 3;
    cfg.threads = 3;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);

    ck_assert_str_eq(trainer_state_name(st.state), "done");
    ck_assert_int_eq(st.epoch, 3);
    ck_assert_int_eq(st.epochs, 3);
    /* 61 samples in batches of 20: 20, 20, 20 and 1. */
    ck_assert_int_eq(st.batches_per_epoch, 4);
    ck_assert_int_eq(st.batch, 4);
    ck_assert_int_eq(st.threads, 3);
    ck_assert_int_eq(st.has_eval, 1);
    ck_assert_uint_eq(st.eval_generation, 3);
    ck_assert_int_eq(st.n_test_history, 3);
    ck_assert_double_eq_tol(st.test_acc_history[2], st.test_acc, 1e-6);
    /* 12 steps with a point every 2 steps. */
    ck_assert_int_eq(st.n_history, 6);
    ck_assert(st.train_loss > 0);
    ck_assert(st.train_acc >= 0 && st.train_acc <= 1);
    ck_assert_str_eq(st.message, "");
    for (int t = 0; t < DATASET_CLASSES; t++)
        for (int p = 0; p < DATASET_CLASSES; p++)
            total += st.confusion[t][p];
    ck_assert_int_eq(total, TEST_COUNT);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Many batches overflow the history, which must merge and keep sampling. */
START_TEST(test_trainer_history_merges)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, 2 * TRAINER_HISTORY + 100, 5);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.batch = 1;
    cfg.epochs = 1;
    cfg.threads = 1;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);

    ck_assert_int_le(st.n_history, TRAINER_HISTORY);
    ck_assert_int_gt(st.n_history, TRAINER_HISTORY / 4);
    for (int i = 0; i < st.n_history; i++) {
        ck_assert(isfinite(st.loss_history[i]));
        ck_assert(st.acc_history[i] >= 0 && st.acc_history[i] <= 1);
    }
    /* The range of the run contains every merged point, which is a mean
     * of points inside it. */
    for (int i = 0; i < st.n_history; i++) {
        ck_assert_float_le(st.loss_range.min, st.loss_history[i]);
        ck_assert_float_ge(st.loss_range.max, st.loss_history[i]);
        ck_assert_float_le(st.acc_range.min, st.acc_history[i]);
        ck_assert_float_ge(st.acc_range.max, st.acc_history[i]);
    }
    ck_assert_float_eq(st.test_acc_range.min, st.test_acc_history[0]);
    ck_assert_float_eq(st.test_acc_range.max, st.test_acc_history[0]);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- evaluation */

/* Evaluates COUNT images and checks the result against net_predict run on
 * one image at a time. */
static void check_eval_count(int count)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    unsigned gen = 0;
    uint8_t *predicted = xmalloc((size_t)count);
    float *probs = xmalloc((size_t)count * DATASET_CLASSES * sizeof(float));
    float one[DATASET_CLASSES];
    long label_count[DATASET_CLASSES] = { 0 };
    double loss = 0.0;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, count, 7);
    cfg.epochs = 1;
    cfg.threads = 3;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(trainer_copy_predictions(tr, &gen, predicted, probs), 1);
    ck_assert_uint_eq(gen, st.eval_generation);
    ck_assert_int_eq(trainer_copy_predictions(tr, &gen, predicted, probs), 0);

    const Net *net = trainer_net(tr);
    NetScratch *scratch = net_scratch_create(net, 1);
    for (int i = 0; i < count; i++) {
        const float *p = probs + (size_t)i * DATASET_CLASSES;

        float image[DATASET_PIXELS];

        dataset_copy_image(&test, i, image);
        net_predict(net, scratch, image, 1, one);
        for (int c = 0; c < DATASET_CLASSES; c++)
            ck_assert_float_eq_tol(p[c], one[c], 1e-5f);
        ck_assert_int_eq(predicted[i], metrics_argmax(one, DATASET_CLASSES));
        loss -= log(fmax(one[test.labels[i]], 1e-12));
        label_count[test.labels[i]]++;
    }
    net_scratch_free(scratch);

    ck_assert_double_eq_tol(st.test_loss, loss / count, 1e-5);
    for (int t = 0; t < DATASET_CLASSES; t++) {
        long sum = 0;

        for (int p = 0; p < DATASET_CLASSES; p++)
            sum += st.confusion[t][p];
        ck_assert_msg(sum == label_count[t], "%d images: class %d has %ld "
                      "confusion entries for %ld images", count, t, sum,
                      label_count[t]);
    }

    free(predicted);
    free(probs);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}

START_TEST(test_trainer_eval_counts_once)
{
    static const int counts[] = { 1, 7, 8, 31, 32, 33, 37, 65, 100 };

    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        check_eval_count(counts[i]);
}
END_TEST

START_TEST(test_trainer_eval_only_keeps_weights)
{
    Dataset test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *fresh, *tr;

    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 0;
    fresh = create_ok(&cfg, NULL, &test);
    tr = run_to_end(&cfg, NULL, &test);
    trainer_get_status(tr, &st);

    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.has_eval, 1);
    ck_assert_uint_eq(st.eval_generation, 1);
    ck_assert_int_eq(st.n_test_history, 0);
    ck_assert_int_eq(memcmp(trainer_net(fresh)->params, trainer_net(tr)->params,
                            trainer_net(tr)->n_params * sizeof(float)), 0);

    /* trainer_evaluate works without a started run. */
    trainer_evaluate(fresh);
    trainer_get_status(fresh, &st);
    ck_assert_int_eq(st.state, TRAINER_IDLE);
    ck_assert_int_eq(st.has_eval, 1);
    ck_assert_uint_eq(st.eval_generation, 1);

    trainer_free(fresh);
    trainer_free(tr);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- control */

static void pause_after_epoch(const EpochRecord *rec, void *ctx)
{
    if (rec->epoch == 1)
        trainer_set_paused(*(Trainer **)ctx, 1);
}

START_TEST(test_trainer_pause_resume)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr = NULL;
    struct timespec wait = { 0, 20000000 };

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 3;
    cfg.on_epoch = pause_after_epoch;
    cfg.ctx = &tr;
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);

    wait_for_state(tr, TRAINER_PAUSED, &st);
    ck_assert_int_eq(st.epoch, 2);
    ck_assert_int_eq(st.batch, 0);

    /* Nothing moves while paused. */
    size_t bytes = trainer_net(tr)->n_params * sizeof(float);
    float *before = xmalloc(bytes);
    memcpy(before, trainer_net(tr)->params, bytes);
    nanosleep(&wait, NULL);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_PAUSED);
    ck_assert_int_eq(st.batch, 0);
    ck_assert_int_eq(memcmp(before, trainer_net(tr)->params, bytes), 0);

    trainer_set_paused(tr, 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.epoch, 3);
    ck_assert_int_eq(st.batch, st.batches_per_epoch);

    /* The pause changed nothing about the result. */
    Trainer *plain;
    cfg.on_epoch = NULL;
    plain = run_to_end(&cfg, &train, &test);
    ck_assert_int_eq(memcmp(trainer_net(plain)->params, trainer_net(tr)->params,
                            bytes), 0);

    free(before);
    trainer_free(plain);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* The evaluation of a loaded network before training (evaluate_loaded)
 * is not training, so the training time stays at 0 while it runs. A
 * pause requested at the start stops the run at the first batch, which
 * ends the polling. */
START_TEST(test_trainer_clock_skips_loaded_eval)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    struct timespec tick = { 0, 100000 };
    int seen_evaluating = 0;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    /* Enough images for an evaluation of many polling ticks. */
    make_dataset(&test, 10000, 2);
    cfg.spec = SPEC_CONV;
    cfg.epochs = 1;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));

    cfg.save_path = NULL;
    cfg.load_path = path;
    cfg.evaluate_loaded = 1;
    tr = create_ok(&cfg, &train, &test);
    trainer_set_paused(tr, 1);
    ck_assert_int_eq(trainer_start(tr), 0);
    do {
        nanosleep(&tick, NULL);
        trainer_get_status(tr, &st);
        if (st.state == TRAINER_EVALUATING) {
            seen_evaluating++;
            ck_assert_double_eq(st.elapsed, 0.0);
        }
    } while (st.state != TRAINER_PAUSED);

    ck_assert_int_gt(seen_evaluating, 0);
    ck_assert_int_eq(st.has_eval, 1);
    trainer_set_paused(tr, 0);
    trainer_join(tr);

    trainer_free(tr);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

static void stop_after_epoch(const EpochRecord *rec, void *ctx)
{
    if (rec->epoch == 1)
        trainer_request_stop(*(Trainer **)ctx);
}

START_TEST(test_trainer_stop_saves)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr = NULL;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char err[CHECKPOINT_ERR_LEN];
    Checkpoint ck;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 5;
    cfg.on_epoch = stop_after_epoch;
    cfg.ctx = &tr;
    cfg.save_path = path;
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);

    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.epoch, 2);
    ck_assert_int_eq(st.batch, 0);
    ck_assert_uint_eq(st.eval_generation, 1);
    ck_assert_int_eq(st.eval_epoch_end, 1);
    ck_assert_int_eq(st.eval_behind, 0);
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ck.epochs_done, 1);
    ck_assert_int_eq(ck.step, 4);
    ck_assert_int_eq(memcmp(ck.params, trainer_net(tr)->params,
                            ck.n_params * sizeof(float)), 0);

    checkpoint_free(&ck);
    trainer_free(tr);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_stop_after_epoch)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 3;

    /* Requested before the start: the first epoch ends whole, then the
     * run. */
    tr = create_ok(&cfg, &train, &test);
    trainer_stop_after_epoch(tr, 1);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.stop_after_epoch, 1);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.epoch, 1);
    ck_assert_int_eq(st.batch, st.batches_per_epoch);
    ck_assert_int_eq(st.n_test_history, 1);
    trainer_free(tr);

    /* Withdrawn: all three epochs run. */
    tr = create_ok(&cfg, &train, &test);
    trainer_stop_after_epoch(tr, 1);
    trainer_stop_after_epoch(tr, 0);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.epoch, 3);
    ck_assert_int_eq(st.n_test_history, 3);
    trainer_free(tr);

    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_scale_lr)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *scaled, *plain;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);

    /* Halving 0.01 trains exactly like starting at 0.005. */
    scaled = create_ok(&cfg, &train, &test);
    ck_assert_float_eq(trainer_scale_lr(scaled, 0.5f), 0.005f);
    trainer_get_status(scaled, &st);
    ck_assert_float_eq((float)st.lr, 0.005f);
    ck_assert_int_eq(trainer_start(scaled), 0);
    trainer_join(scaled);
    cfg.lr = 0.005f;
    plain = run_to_end(&cfg, &train, &test);

    size_t bytes = trainer_net(plain)->n_params * sizeof(float);
    ck_assert_int_eq(memcmp(trainer_net(scaled)->params,
                            trainer_net(plain)->params, bytes), 0);
    trainer_get_status(scaled, &st);
    ck_assert_float_eq((float)st.lr, 0.005f);

    /* The rate stays within its bounds, up to rounding. */
    Trainer *bounded = create_ok(&cfg, &train, &test);
    ck_assert_float_eq_tol(trainer_scale_lr(bounded, 1e12f), TRAINER_LR_MAX,
                           TRAINER_LR_MAX * 1e-6f);
    ck_assert_float_eq_tol(trainer_scale_lr(bounded, 1e-30f), TRAINER_LR_MIN,
                           TRAINER_LR_MIN * 1e-6f);
    trainer_free(bounded);

    /* A rate that starts below the lower bound is not raised by a
     * lowering, and a raise from there moves it by the factor. */
    cfg.lr = TRAINER_LR_MIN / 100.0f;
    Trainer *tiny = create_ok(&cfg, &train, &test);
    ck_assert_float_eq_tol(trainer_scale_lr(tiny, 0.5f), cfg.lr,
                           cfg.lr * 1e-6f);
    ck_assert_float_eq_tol(trainer_scale_lr(tiny, 2.0f), 2.0f * cfg.lr,
                           cfg.lr * 1e-6f);
    trainer_free(tiny);

    trainer_free(scaled);
    trainer_free(plain);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* The - key lowers the rate before the schedule, so a step schedule
 * that trainer_create accepts for --lr can still take the lowered rate
 * below FLT_MIN. The rate of every update stays a normal float. */
START_TEST(test_trainer_scale_lr_schedule_floor)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    EpochLog log = { 0 };
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    /* Epoch 5 runs at 0.01 * 1e-32, but at TRAINER_LR_MIN * 1e-32, which
     * is about 1e-39, after the - presses. */
    cfg.epochs = 5;
    cfg.schedule.kind = SCHEDULE_STEP;
    cfg.schedule.step_epochs = 1;
    cfg.schedule.gamma = 1e-8f;
    cfg.on_epoch = log_epoch;
    cfg.ctx = &log;
    tr = create_ok(&cfg, &train, &test);
    for (int i = 0; i < 40; i++)
        trainer_scale_lr(tr, 0.5f);
    ck_assert_float_eq_tol(trainer_scale_lr(tr, 0.5f), TRAINER_LR_MIN,
                           TRAINER_LR_MIN * 1e-6f);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);

    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(log.count, 5);
    for (int i = 0; i < log.count; i++)
        ck_assert_msg(log.records[i].lr >= FLT_MIN,
                      "epoch %d ran at %g, below FLT_MIN", i + 1,
                      log.records[i].lr);
    ck_assert_msg(st.lr >= FLT_MIN, "the status shows %g", st.lr);
    /* The last epoch's rate is the floor itself. */
    ck_assert_float_eq((float)log.records[4].lr, FLT_MIN);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_scale_lr_after_end)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    float before = (float)st.lr;

    /* No batch is left, so neither factor changes the rate. */
    ck_assert_float_eq(trainer_scale_lr(tr, 2.0f), before);
    ck_assert_float_eq(trainer_scale_lr(tr, 0.5f), before);
    trainer_get_status(tr, &st);
    ck_assert_float_eq((float)st.lr, before);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/*
 * One SGD step over a batch that contains the whole training set moves
 * each weight by the learning rate times its mean gradient, since the
 * first step of momentum is the gradient itself. The reference sums the
 * gradients of all images with net_train_batch and divides by their
 * count. Weight decay, L2 or decoupled, also pulls the weights (not the
 * biases) towards 0 by lr * decay * w. An update that skipped the
 * division, or divided the L2 term too, fails.
 */
START_TEST(test_trainer_sgd_step_uses_mean_gradient)
{
    enum { COUNT = 20 };
    const float decays[3] = {0.0f, 0.2f, 0.2f};
    const DecayKind kinds[3] = {DECAY_DECOUPLED, DECAY_L2, DECAY_DECOUPLED};
    Dataset train, test;
    static float images[COUNT * DATASET_PIXELS];

    make_dataset(&train, COUNT, 5);
    make_dataset(&test, TEST_COUNT, 2);
    dataset_copy_images(&train, 0, COUNT, images);
    for (int mode = 0; mode < 3; mode++) {
        TrainerConfig cfg = base_config();
        Net start;

        cfg.spec = "dense10";
        cfg.optim = OPTIM_SGD;
        cfg.lr = 0.5f;
        cfg.epochs = 1;
        cfg.batch = COUNT;
        cfg.threads = 1;
        cfg.weight_decay = decays[mode];
        cfg.decay = kinds[mode];
        Trainer *tr = create_ok(&cfg, &train, &test);
        trainer_copy_net(tr, &start);

        NetScratch *scratch = net_scratch_create(&start, COUNT);
        float *grad = xmalloc(start.n_params * sizeof *grad);
        net_train_batch(&start, scratch, images, train.labels, COUNT, grad,
                        NULL, NULL);
        ck_assert_int_eq(trainer_start(tr), 0);
        trainer_join(tr);

        const Net *trained = trainer_net(tr);
        size_t weights = start.layers[0].bias_offset;
        double moved = 0.0;
        for (size_t j = 0; j < start.n_params; j++) {
            double w = start.params[j];
            double decay = j < weights ? cfg.weight_decay * w : 0.0;
            double want = w - cfg.lr * (grad[j] / COUNT + decay);

            ck_assert_msg(fabs(trained->params[j] - want) <= 1e-5,
                          "mode %d, parameter %zu: %g, expected %g", mode, j,
                          trained->params[j], want);
            moved += fabs(trained->params[j] - w);
        }
        ck_assert_double_gt(moved, 1e-3);
        free(grad);
        net_scratch_free(scratch);
        net_free(&start);
        trainer_free(tr);
    }
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_copy_net_independent)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    Trainer *tr;
    Net copy;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    tr = run_to_end(&cfg, &train, &test);

    const Net *net = trainer_net(tr);
    trainer_copy_net(tr, &copy);
    ck_assert_str_eq(copy.spec, net->spec);
    ck_assert_int_eq(copy.n_layers, net->n_layers);
    ck_assert_uint_eq(copy.n_params, net->n_params);
    ck_assert_ptr_ne(copy.params, net->params);
    ck_assert_int_eq(memcmp(copy.params, net->params,
                            net->n_params * sizeof(float)), 0);
    copy.params[0] += 1.0f;
    ck_assert_float_ne(copy.params[0], net->params[0]);

    net_free(&copy);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_stop_while_paused)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    tr = create_ok(&cfg, &train, &test);
    trainer_set_paused(tr, 1);
    ck_assert_int_eq(trainer_start(tr), 0);
    wait_for_state(tr, TRAINER_PAUSED, &st);
    ck_assert_int_eq(st.epoch, 1);
    ck_assert_int_eq(st.batch, 0);

    trainer_request_stop(tr);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.batch, 0);
    ck_assert_int_eq(st.has_eval, 0);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/*
 * Stops runs of SPEC once their first batch is done, so that the stop
 * usually lands inside the second one, until a stop abandons a batch.
 * Every stop must leave the checkpoint of the last completed batch: its
 * step matches the batches done, and a run resumed from it ends with the
 * weights of an uninterrupted run. A batch of 256 images takes
 * milliseconds and the status is polled every 0.1 ms, but where a stop
 * lands depends on timing, hence the retries.
 */
static void check_stop_abandons_batch(const char *spec)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "stop.ckpt");
    struct timespec tick = { 0, 100000 };
    Trainer *whole;
    int abandoned = 0;

    make_dataset(&train, 1000, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = spec;
    cfg.batch = 256;
    cfg.epochs = 1;
    whole = run_to_end(&cfg, &train, &test);
    trainer_get_status(whole, &st);
    ck_assert_int_eq(st.batch_abandoned, 0);
    size_t bytes = trainer_net(whole)->n_params * sizeof(float);

    for (int attempt = 0; attempt < 10 && !abandoned; attempt++) {
        TrainerConfig first = cfg, rest = cfg;
        char err[CHECKPOINT_ERR_LEN];
        Checkpoint ck;
        Trainer *tr;

        first.save_path = path;
        tr = create_ok(&first, &train, &test);
        ck_assert_int_eq(trainer_start(tr), 0);
        do {
            nanosleep(&tick, NULL);
            trainer_get_status(tr, &st);
        } while (st.state != TRAINER_DONE && st.batch < 1);
        trainer_request_stop(tr);
        trainer_join(tr);
        trainer_get_status(tr, &st);
        trainer_free(tr);
        abandoned = st.batch_abandoned;

        ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_int_eq(ck.step, ck.epochs_done * st.batches_per_epoch
                                  + ck.partial.batches);
        if (ck.epochs_done == 0)
            ck_assert_int_eq(ck.partial.batches, st.batch);
        rest.epochs = cfg.epochs - (int)ck.epochs_done;
        rest.load_path = path;
        rest.threads = 3;
        checkpoint_free(&ck);

        tr = run_to_end(&rest, &train, &test);
        ck_assert_msg(memcmp(trainer_net(whole)->params,
                             trainer_net(tr)->params, bytes) == 0,
                      "%s, attempt %d: resumed weights differ", spec,
                      attempt);
        trainer_free(tr);
        unlink(path);
    }
    ck_assert_msg(abandoned, "%s: no stop landed inside a batch", spec);

    trainer_free(whole);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}

/* The first net runs in the three phases, and its dense2600 products are
 * shared among the workers in parts that a stop skips. The second runs
 * whole shards, because of its bn layer after a dense layer. */
START_TEST(test_trainer_stop_abandons_batch)
{
    check_stop_abandons_batch("conv3x3x4,relu,pool2,dense2600,relu,"
                              "dropout0.25,dense10");
    check_stop_abandons_batch("conv3x3x4,relu,pool2,dense1024,bn,relu,"
                              "dense10");
}
END_TEST

/* trainer_free on a running trainer stops and joins it. */
START_TEST(test_trainer_free_while_running)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 1000;
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

static void save_after_epoch(const EpochRecord *rec, void *ctx)
{
    if (rec->epoch == 1)
        trainer_request_save(*(Trainer **)ctx);
}

START_TEST(test_trainer_save_request)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr = NULL;
    char *dir = make_temp_dir();
    char err[CHECKPOINT_ERR_LEN];
    Checkpoint ck;

    /* Without save_path the file goes to ./fmnist.ckpt; the test runs in a
     * forked process, so changing directory stays local. */
    ck_assert_int_eq(chdir(dir), 0);
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.on_epoch = save_after_epoch;
    cfg.ctx = &tr;
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "saved fmnist.ckpt");

    /* Saved at the first batch boundary after epoch 1. */
    ck_assert_msg(checkpoint_load("fmnist.ckpt", &ck, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(ck.epochs_done, 1);
    ck_assert_int_eq(ck.step, 4);
    checkpoint_free(&ck);
    ck_assert_int_eq(st.saved_behind, 1);

    /* After the run the save happens at once, and the file then
     * contains the final model. */
    trainer_request_save(tr);
    ck_assert_msg(checkpoint_load("fmnist.ckpt", &ck, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(ck.epochs_done, 2);
    ck_assert_int_eq(ck.step, 8);
    checkpoint_free(&ck);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.saved_behind, 0);
    ck_assert_int_eq(st.save_failed, 0);

    trainer_free(tr);
    unlink("fmnist.ckpt");
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A save to a path of about 700 bytes, inside directories with 250-byte
 * names, is reported with the whole path. The status message used to
 * hold 255 bytes, and cut such a path without a mark. */
START_TEST(test_trainer_save_message_long_path)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    char *dir = make_temp_dir();
    char part[251], path[1024], want[1100];
    size_t len;
    Trainer *tr;

    memset(part, 'd', 250);
    part[250] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, part);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    len = strlen(path);
    snprintf(path + len, sizeof path - len, "/%s", part);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    len = strlen(path);
    snprintf(path + len, sizeof path - len, "/run.ckpt");
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 1;
    cfg.save_path = path;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);
    snprintf(want, sizeof want, "saved %s", path);
    ck_assert_str_eq(st.message, want);

    trainer_free(tr);
    unlink(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_save_request_free_name)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    char *dir = make_temp_dir();
    char err[CHECKPOINT_ERR_LEN], text[32] = "";
    Checkpoint ck;
    FILE *f;

    /* A file of another run has the default name. */
    ck_assert_int_eq(chdir(dir), 0);
    f = fopen("fmnist.ckpt", "w");
    ck_assert_ptr_nonnull(f);
    fputs("another run\n", f);
    fclose(f);

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    ck_assert_str_eq(trainer_request_save(tr), "fmnist-2.ckpt");
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "saved fmnist-2.ckpt (fmnist.ckpt exists)");
    ck_assert_msg(checkpoint_load("fmnist-2.ckpt", &ck, err, sizeof err) == 0,
                  "%s", err);
    checkpoint_free(&ck);
    /* The file this run wrote is its own, so the next save replaces it. */
    ck_assert_str_eq(trainer_request_save(tr), "fmnist-2.ckpt");
    trainer_free(tr);

    f = fopen("fmnist.ckpt", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(text, sizeof text, f));
    fclose(f);
    ck_assert_str_eq(text, "another run\n");

    /* A run that continues a checkpoint saves back to it. */
    cfg.load_path = "fmnist-2.ckpt";
    cfg.epochs = 0;
    tr = create_ok(&cfg, NULL, &test);
    ck_assert_str_eq(trainer_request_save(tr), "fmnist-2.ckpt");
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "saved fmnist-2.ckpt");
    trainer_free(tr);

    unlink("fmnist.ckpt");
    unlink("fmnist-2.ckpt");
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Trains the --load file LOAD for an epoch without --save, requests a
 * save and checks that it went to fmnist.ckpt with REASON in the status
 * message, leaving LOAD unchanged. */
static void check_save_passes_read_only(const char *load, const char *reason)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    struct stat before, after;
    char want[256];

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    ck_assert_int_eq(stat(load, &before), 0);
    cfg.load_path = load;
    cfg.epochs = 1;
    tr = run_to_end(&cfg, &train, &test);
    ck_assert_str_eq(trainer_request_save(tr), "fmnist.ckpt");
    trainer_get_status(tr, &st);
    snprintf(want, sizeof want, "saved fmnist.ckpt (%s)", reason);
    ck_assert_str_eq(st.message, want);
    ck_assert_int_eq(stat(load, &after), 0);
    ck_assert_int_eq(after.st_ino, before.st_ino);
    ck_assert_int_eq(after.st_size, before.st_size);
    ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    ck_assert_int_eq(access("fmnist.ckpt", F_OK), 0);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}

/* s never replaces a --load file that is read-only or in a read-only
 * directory, such as a model shared with a class. The permission bits
 * decide, so the test holds when run as root too. */
START_TEST(test_trainer_save_request_read_only_load)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    char *dir = make_temp_dir();

    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(mkdir("shared", 0700), 0);
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 1;
    cfg.save_path = "shared/model.ckpt";
    trainer_free(run_to_end(&cfg, &train, &test));
    free_dataset(&train);
    free_dataset(&test);

    ck_assert_int_eq(chmod("shared/model.ckpt", 0444), 0);
    check_save_passes_read_only("shared/model.ckpt",
                                "shared/model.ckpt is read-only");
    unlink("fmnist.ckpt");

    ck_assert_int_eq(chmod("shared/model.ckpt", 0644), 0);
    ck_assert_int_eq(chmod("shared", 0555), 0);
    check_save_passes_read_only("shared/model.ckpt", "shared/model.ckpt "
                                "is in a read-only directory");

    chmod("shared", 0700);
    unlink("shared/model.ckpt");
    rmdir("shared");
    unlink("fmnist.ckpt");
    rmdir(dir);
    free(dir);
}
END_TEST

/* Forks a child that holds the save lock of TARGET until it reads a
 * byte from the pipe whose write end is returned in *RELEASE. fcntl locks
 * belong to a process, so the test's own would not keep the trainer out.
 * Returns the child's pid. */
static pid_t hold_lock_in_child(const char *target, int *release)
{
    int ready[2], go[2];
    char byte;
    pid_t pid;

    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        SaveLock lock = {0};
        char err[256];
        long owner;

        close(ready[0]);
        close(go[1]);
        byte = savelock_take(&lock, target, &owner, err, sizeof err)
                   == SAVELOCK_OK;
        if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) < 0)
            _exit(1);
        savelock_release(&lock);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    ck_assert_int_eq(read(ready[0], &byte, 1), 1);
    ck_assert_int_eq(byte, 1);
    close(ready[0]);
    *release = go[1];
    return pid;
}

/* A fresh name whose lock another run holds, although that run has not
 * saved yet, is passed over: saving there would later be replaced by, or
 * replace, that run's checkpoint. */
START_TEST(test_trainer_save_request_skips_locked_name)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    char *dir = make_temp_dir();
    int release, status;
    pid_t child;
    struct stat file_st;

    ck_assert_int_eq(chdir(dir), 0);
    child = hold_lock_in_child("fmnist.ckpt", &release);
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    tr = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_request_save(tr);
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "saved fmnist-2.ckpt (fmnist.ckpt is in "
                     "use by another run)");
    ck_assert_int_ne(lstat("fmnist.ckpt", &file_st), 0);
    ck_assert_int_eq(lstat("fmnist-2.ckpt", &file_st), 0);
    trainer_free(tr);
    ck_assert_int_eq(write(release, "x", 1), 1);
    close(release);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_int_eq(status, 0);

    unlink("fmnist-2.ckpt");
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A requested save does not replace a --load file that another run wrote
 * after this one loaded it, but goes to a fresh name and says why. */
START_TEST(test_trainer_save_request_keeps_changed_load_file)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr, *other;
    char *dir = make_temp_dir();
    char err[CHECKPOINT_ERR_LEN];
    struct stat before, after;
    Checkpoint ck;

    ck_assert_int_eq(chdir(dir), 0);
    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.save_path = "shared.ckpt";
    other = create_ok(&cfg, &train, &test);
    ck_assert_int_eq(trainer_start(other), 0);
    trainer_join(other);

    cfg.save_path = NULL;
    cfg.load_path = "shared.ckpt";
    cfg.epochs = 0;
    tr = create_ok(&cfg, NULL, &test);
    /* The other run saves again after this one loaded the file. */
    ck_assert_msg(checkpoint_load("shared.ckpt", &ck, err, sizeof err) == 0,
                  "%s", err);
    checkpoint_free(&ck);
    trainer_request_save(other);
    trainer_free(other);
    ck_assert_int_eq(stat("shared.ckpt", &before), 0);
    trainer_request_save(tr);
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "saved fmnist.ckpt (shared.ckpt changed "
                     "since this run loaded it)");
    ck_assert_int_eq(stat("shared.ckpt", &after), 0);
    ck_assert(before.st_ino == after.st_ino);
    ck_assert_msg(checkpoint_load("fmnist.ckpt", &ck, err, sizeof err) == 0,
                  "%s", err);
    checkpoint_free(&ck);
    /* Later saves go to the new file too. */
    ck_assert_str_eq(trainer_request_save(tr), "fmnist.ckpt");
    trainer_free(tr);

    unlink("shared.ckpt");
    unlink("fmnist.ckpt");
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_save_failure_continues)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.epochs = 3;
    cfg.save_path = "/nonexistent-fmnist-dir/run.ckpt";
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);

    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.epoch, 3);
    ck_assert_uint_eq(st.eval_generation, 3);
    ck_assert_msg(strstr(st.message, "checkpoint not saved: "
                         "/nonexistent-fmnist-dir/run.ckpt") != NULL,
                  "message: %s", st.message);
    ck_assert_msg(strstr(st.message, "No such file or directory") != NULL,
                  "message: %s", st.message);
    ck_assert_ptr_null(st.saved_path);
    ck_assert_int_eq(st.save_failed, 1);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_nonfinite_loss_fails)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = "dense10";
    tr = create_ok(&cfg, &train, &test);
    /* Images are bytes and cannot hold a NaN, so a weight brings it in.
     * Every logit of class 0 is then NaN, and so is the first loss. No
     * thread reads the net before trainer_start. */
    Net *poisoned = (Net *)trainer_net(tr);
    size_t bytes = poisoned->n_params * sizeof(float);
    float *start = xmalloc(bytes);

    poisoned->params[0] = NAN;
    memcpy(start, poisoned->params, bytes);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);

    ck_assert_str_eq(trainer_state_name(st.state), "failed");
    ck_assert_msg(strstr(st.message, "training stopped: the loss of batch")
                  != NULL, "message: %s", st.message);
    ck_assert_msg(strstr(st.message, "batch 1 in epoch 1 is NaN; ") != NULL,
                  "message: %s", st.message);
    /* The update of the failed batch was skipped. */
    ck_assert_int_eq(memcmp(start, trainer_net(tr)->params, bytes), 0);
    /* A save requested after the failure is rejected and sets the
     * message, but the failure keeps its own text. */
    trainer_request_save(tr);
    trainer_get_status(tr, &st);
    ck_assert_msg(strstr(st.message, "checkpoint not saved") != NULL,
                  "message: %s", st.message);
    ck_assert_msg(strstr(st.failure, "batch 1 in epoch 1 is NaN; ") != NULL,
                  "failure: %s", st.failure);

    free(start);
    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* An infinite learning rate leaves the first batch's loss finite but
 * makes the updated weights infinite or NaN. */
START_TEST(test_trainer_nonfinite_weight_fails)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = "dense10";
    cfg.optim = OPTIM_SGD;
    cfg.lr = INFINITY;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);

    ck_assert_str_eq(trainer_state_name(st.state), "failed");
    ck_assert_msg(strstr(st.message, "training stopped: weight ") != NULL,
                  "message: %s", st.message);
    ck_assert_msg(strstr(st.message, "after batch 1 in epoch 1") != NULL,
                  "message: %s", st.message);
    ck_assert_int_eq(st.has_eval, 0);

    trainer_free(tr);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    ck_assert_msg(f != NULL, "%s cannot be opened", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = xmalloc((size_t)n);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* A run that only explores (epochs 0) a checkpoint saved partway through
 * an epoch saves it back byte for byte: the partial epoch stays in it, so
 * a later run still finishes that epoch. */
START_TEST(test_trainer_explore_save_keeps_partial)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "part.ckpt");
    char *again = join_path(dir, "again.ckpt");
    struct timespec tick = { 0, 100000 };
    char err[CHECKPOINT_ERR_LEN];
    Checkpoint ck;
    Trainer *tr;

    make_dataset(&train, 1000, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.batch = 8;
    cfg.epochs = 1;
    cfg.save_path = path;
    /* The stop must land within the epoch, which takes milliseconds; on
     * a busy machine the epoch can end first, hence the retries. */
    for (int attempt = 0; attempt < 10; attempt++) {
        tr = create_ok(&cfg, &train, &test);
        ck_assert_int_eq(trainer_start(tr), 0);
        do {
            nanosleep(&tick, NULL);
            trainer_get_status(tr, &st);
        } while (st.state != TRAINER_DONE && st.batch < 2);
        trainer_request_stop(tr);
        trainer_join(tr);
        trainer_free(tr);
        ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0,
                      "%s", err);
        if (ck.epochs_done == 0)
            break;
        checkpoint_free(&ck);
        unlink(path);
    }
    ck_assert_int_eq(ck.epochs_done, 0);
    ck_assert_int_gt(ck.partial.batches, 0);
    checkpoint_free(&ck);

    cfg.epochs = 0;
    cfg.load_path = path;
    cfg.save_path = again;
    tr = create_ok(&cfg, NULL, &test);
    trainer_request_save(tr);
    trainer_free(tr);

    size_t n1, n2;
    uint8_t *a = read_file(path, &n1), *b = read_file(again, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, n1) == 0, "the saved checkpoint differs");
    free(a);
    free(b);
    unlink(path);
    unlink(again);
    rmdir(dir);
    free(path);
    free(again);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* After a non-finite loss in epoch 2, neither the end of the run nor an
 * explicit save request replaces the checkpoint of epoch 1. Epoch 1 runs
 * in a first trainer. A second one resumes from its checkpoint with a NaN
 * weight, so its first batch fails. */
START_TEST(test_trainer_divergence_keeps_checkpoint)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char err[CHECKPOINT_ERR_LEN];
    size_t size_before, size_after;
    Checkpoint ck;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = "dense10";
    cfg.epochs = 1;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));
    cfg.epochs = 2;
    cfg.load_path = path;
    tr = create_ok(&cfg, &train, &test);
    ((Net *)trainer_net(tr))->params[0] = NAN;
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);

    ck_assert_str_eq(trainer_state_name(st.state), "failed");
    ck_assert_msg(strstr(st.message, "in epoch 2 is NaN; ") != NULL,
                  "message: %s", st.message);
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ck.epochs_done, 1);
    ck_assert_int_eq(ck.partial.samples, 0);
    checkpoint_free(&ck);

    uint8_t *before = read_file(path, &size_before);
    trainer_request_save(tr);
    trainer_get_status(tr, &st);
    ck_assert_msg(strstr(st.message, "checkpoint not saved: ") != NULL,
                  "message: %s", st.message);
    ck_assert_msg(strstr(st.message, "previous checkpoint is kept") != NULL,
                  "message: %s", st.message);
    uint8_t *after = read_file(path, &size_after);
    ck_assert_uint_eq(size_after, size_before);
    ck_assert_int_eq(memcmp(before, after, size_before), 0);

    free(before);
    free(after);
    trainer_free(tr);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Sets two weights of unit 0 of a "dense10" model to 3e38, on pixels
 * in rows 4 and 5 of column 0: the band of images of label 0. Their
 * logit for unit 0 overflows to infinity, so they get NaN probabilities,
 * while the weighted noise of every other image stays finite. Returns
 * how many of DS's images have label 0. */
static int overflow_label_zero(Trainer *tr, const Dataset *ds)
{
    float *w = ((Net *)trainer_net(tr))->params;
    int zeros = 0;

    w[4 * DATASET_COLS] = 3e38f;
    w[5 * DATASET_COLS] = 3e38f;
    for (int i = 0; i < ds->count; i++)
        zeros += ds->labels[i] == 0;
    return zeros;
}

/* An evaluation counts the test images whose probabilities are not
 * finite, and a run with --epochs 0 reports them as an error. The model
 * is loaded, as the trainer keeps the weights of a checkpoint and
 * initialises a new model's only when it starts. */
START_TEST(test_trainer_nan_predictions_reported)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;
    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char want[128];
    int zeros;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = "dense10";
    cfg.epochs = 1;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));
    cfg.epochs = 0;
    cfg.save_path = NULL;
    cfg.load_path = path;
    tr = create_ok(&cfg, NULL, &test);
    zeros = overflow_label_zero(tr, &test);
    ck_assert_int_gt(zeros, 0);
    ck_assert_int_eq(trainer_start(tr), 0);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    snprintf(want, sizeof want, "NaN predictions for %d of %d test images",
             zeros, TEST_COUNT);
    ck_assert_int_eq(st.test_nonfinite, zeros);
    ck_assert_int_eq(st.message_is_error, 1);
    /* Those images enter neither the confusion matrix nor the count of
     * right predictions. */
    long in_matrix = 0, diagonal = 0;
    for (int t = 0; t < DATASET_CLASSES; t++) {
        for (int p = 0; p < DATASET_CLASSES; p++)
            in_matrix += st.confusion[t][p];
        diagonal += st.confusion[t][t];
    }
    ck_assert_int_eq(in_matrix, TEST_COUNT - zeros);
    ck_assert_int_eq(st.confusion[0][0], 0);
    ck_assert_double_eq_tol(st.test_acc, (double)diagonal / TEST_COUNT,
                            1e-12);
    ck_assert_msg(strstr(st.message, want) != NULL, "message: %s",
                  st.message);

    trainer_free(tr);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Trains with 1, 2 and 3 threads, saving a checkpoint after each epoch,
 * and compares the files byte for byte. The net has more parameters than
 * one update slice (16384) and a dense layer wider than one part of the
 * batch-level gradients (96 rows), so the threads share both jobs; Adam,
 * decoupled weight decay, augmentation and dropout all run. A checkpoint
 * contains no timestamp or thread count, so any difference is in the
 * training. */
START_TEST(test_trainer_threads_identical_checkpoints)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    char *dir = make_temp_dir();
    char *path[3];
    uint8_t *bytes[3];
    size_t size[3];

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = "conv3x3x4,relu,pool2,dropout0.2,dense100,relu,dense10";
    cfg.weight_decay = 1e-3f;
    cfg.decay = DECAY_DECOUPLED;
    cfg.augment.flip = 1;
    cfg.augment.shift = 1;
    for (int i = 0; i < 3; i++) {
        char name[32];

        snprintf(name, sizeof name, "threads%d.ckpt", i + 1);
        path[i] = join_path(dir, name);
        cfg.threads = i + 1;
        cfg.save_path = path[i];
        trainer_free(run_to_end(&cfg, &train, &test));
        bytes[i] = read_file(path[i], &size[i]);
    }
    for (int i = 1; i < 3; i++) {
        ck_assert_uint_eq(size[i], size[0]);
        ck_assert_msg(memcmp(bytes[i], bytes[0], size[0]) == 0,
                      "checkpoint with %d threads differs from 1 thread",
                      i + 1);
    }

    for (int i = 0; i < 3; i++) {
        free(bytes[i]);
        unlink(path[i]);
        free(path[i]);
    }
    rmdir(dir);
    free(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- configuration */

static void check_rejected(const TrainerConfig *cfg, const Dataset *train,
                           const Dataset *test, const char *expected)
{
    char err[TRAINER_ERR_LEN] = "";
    Trainer *tr = trainer_create(cfg, train, test, err, sizeof err);

    ck_assert_msg(tr == NULL, "expected rejection: %s", expected);
    ck_assert_msg(strstr(err, expected) != NULL, "error \"%s\" lacks \"%s\"",
                  err, expected);
}

START_TEST(test_trainer_rejects_bad_config)
{
    Dataset train, test;
    TrainerConfig cfg;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);

    cfg = base_config();
    cfg.batch = 0;
    check_rejected(&cfg, &train, &test, "batch size: 0");
    cfg = base_config();
    cfg.threads = 0;
    check_rejected(&cfg, &train, &test, "threads: 0");
    cfg = base_config();
    cfg.epochs = -1;
    check_rejected(&cfg, &train, &test, "epochs: -1");
    cfg = base_config();
    check_rejected(&cfg, NULL, &test, "training set");
    check_rejected(&cfg, &train, NULL, "test set");
    cfg.spec = "dense0";
    check_rejected(&cfg, &train, &test, "model spec");
    cfg = base_config();
    cfg.load_path = "/nonexistent-fmnist-dir/run.ckpt";
    check_rejected(&cfg, &train, &test,
                   "/nonexistent-fmnist-dir/run.ckpt: No such file");

    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A bn layer over single values cannot train on one sample, so a batch
 * size of 1 and a training set of one image are rejected with the layer's
 * token number. A bn after a convolution has many values per channel and
 * trains on one sample, and a run that does not train is not checked. */
START_TEST(test_trainer_rejects_bn_on_one_sample)
{
    Dataset train, test;
    TrainerConfig cfg = base_config();
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, TRAIN_COUNT, 1);
    make_dataset(&test, TEST_COUNT, 2);
    cfg.spec = SPEC_DENSE_BN;
    cfg.batch = 1;
    check_rejected(&cfg, &train, &test, "batch size 1: token 2 \"bn\"");
    cfg.spec = "pool2,pool2,pool2,conv3x3x8,bn,relu,dense10";
    check_rejected(&cfg, &train, &test, "batch size 1: token 5 \"bn\"");
    cfg.spec = SPEC_DENSE_BN;
    cfg.batch = BATCH;
    cfg.train_limit = 1;
    check_rejected(&cfg, &train, &test,
                   "training set of 1 image: token 2 \"bn\"");

    cfg = base_config();
    cfg.spec = "conv3x3x4,bn,relu,pool2,dense10";
    cfg.batch = 1;
    cfg.epochs = 1;
    tr = run_to_end(&cfg, &train, &test);
    trainer_get_status(tr, &st);
    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.batch, TRAIN_COUNT);
    trainer_free(tr);

    cfg.spec = SPEC_DENSE_BN;
    cfg.epochs = 0;
    trainer_free(create_ok(&cfg, &train, &test));

    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_trainer_state_names)
{
    ck_assert_str_eq(trainer_state_name(TRAINER_IDLE), "idle");
    ck_assert_str_eq(trainer_state_name(TRAINER_TRAINING), "training");
    ck_assert_str_eq(trainer_state_name(TRAINER_PAUSED), "paused");
    ck_assert_str_eq(trainer_state_name(TRAINER_EVALUATING), "evaluating");
    ck_assert_str_eq(trainer_state_name(TRAINER_DONE), "done");
    ck_assert_str_eq(trainer_state_name(TRAINER_FAILED), "failed");
}
END_TEST

Suite *trainer_suite(void)
{
    Suite *s = suite_create("trainer");
    TCase *run = tcase_create("run");
    TCase *control = tcase_create("control");
    TCase *config = tcase_create("config");

    tcase_set_timeout(run, THREADED_TIMEOUT);
    tcase_add_test(run, test_trainer_threads_identical_dense);
    tcase_add_test(run, test_trainer_threads_identical_conv);
    tcase_add_test(run, test_trainer_threads_identical_split);
    tcase_add_test(run, test_trainer_threads_identical_bn);
    tcase_add_test(run, test_trainer_threads_identical_single_value_bn);
    tcase_add_test(run, test_trainer_threads_capped_at_shards);
    tcase_add_test(run, test_trainer_threads_capped_at_train_set);
    tcase_add_test(run, test_trainer_threads_identical_checkpoints);
    tcase_add_test(run, test_trainer_bn_skips_lone_sample);
    tcase_add_test(run, test_trainer_bn_merges_lone_shard);
    tcase_add_test(run, test_trainer_seed_changes_weights);
    tcase_add_test(run, test_trainer_loss_decreases);
    tcase_add_test(run, test_trainer_done_rate_is_run_average);
    tcase_add_test(run, test_trainer_status_after_run);
    tcase_add_test(run, test_trainer_history_merges);
    tcase_add_test(run, test_trainer_eval_counts_once);
    tcase_add_test(run, test_trainer_eval_only_keeps_weights);
    suite_add_tcase(s, run);

    tcase_set_timeout(control, THREADED_TIMEOUT);
    tcase_add_test(control, test_trainer_pause_resume);
    tcase_add_test(control, test_trainer_clock_skips_loaded_eval);
    tcase_add_test(control, test_trainer_stop_saves);
    tcase_add_test(control, test_trainer_stop_while_paused);
    tcase_add_test(control, test_trainer_stop_abandons_batch);
    tcase_add_test(control, test_trainer_stop_after_epoch);
    tcase_add_test(control, test_trainer_scale_lr);
    tcase_add_test(control, test_trainer_scale_lr_schedule_floor);
    tcase_add_test(control, test_trainer_scale_lr_after_end);
    tcase_add_test(control, test_trainer_sgd_step_uses_mean_gradient);
    tcase_add_test(control, test_trainer_copy_net_independent);
    tcase_add_test(control, test_trainer_free_while_running);
    tcase_add_test(control, test_trainer_save_request);
    tcase_add_test(control, test_trainer_save_request_free_name);
    tcase_add_test(control, test_trainer_save_request_read_only_load);
    tcase_add_test(control, test_trainer_save_message_long_path);
    tcase_add_test(control, test_trainer_save_request_skips_locked_name);
    tcase_add_test(control, test_trainer_save_request_keeps_changed_load_file);
    tcase_add_test(control, test_trainer_explore_save_keeps_partial);
    tcase_add_test(control, test_trainer_save_failure_continues);
    tcase_add_test(control, test_trainer_nonfinite_loss_fails);
    tcase_add_test(control, test_trainer_nonfinite_weight_fails);
    tcase_add_test(control, test_trainer_divergence_keeps_checkpoint);
    tcase_add_test(control, test_trainer_nan_predictions_reported);
    suite_add_tcase(s, control);

    tcase_set_timeout(config, THREADED_TIMEOUT);
    tcase_add_test(config, test_trainer_rejects_bad_config);
    tcase_add_test(config, test_trainer_rejects_bn_on_one_sample);
    tcase_add_test(config, test_trainer_state_names);
    suite_add_tcase(s, config);
    return s;
}
