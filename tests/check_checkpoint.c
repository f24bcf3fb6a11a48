/*
 * Tests for checkpoint: the round trip of every field, byte-identical
 * files from identical runs, resuming to the same weights as an
 * uninterrupted run, each rejection message, and atomic replacement with
 * each way of creating the temporary file, also when a save is killed.
 *
 * Damaged files are made by editing a good file's bytes; offsets come from
 * the layout in checkpoint.h. Write failures are provoked with
 * RLIMIT_FSIZE, which also works as root, and with paths that cannot be
 * created. The read-only-directory case is skipped as root, because root
 * ignores directory permissions. The unnamed (O_TMPFILE) cases are skipped
 * where the file system or a missing /proc does not allow them. Every test
 * runs in its own forked process and its own temporary directory.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "net.h"
#include "tests.h"
#include "trainer.h"
#include "util.h"

#define SPEC "dense16,relu,dense10"
#define SPEC_DROPOUT "dense16,relu,dropout0.25,dense10"
#define SPEC_BN "conv3x3x4,bn,relu,pool2,dense16,bn,relu,dense10"
#define THREADED_TIMEOUT 120

/* ---------------------------------------------------------- helpers */

/* Same synthetic data as the trainer tests: noise plus a bright band of
 * rows at the label's position. */
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

static void free_dataset(Dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
}

/* Returns the directory in which make_temp_dir creates its directories. */
static const char *temp_base(void)
{
    return getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
}

static char *make_temp_dir(void)
{
    const char *base = temp_base();
    size_t size = strlen(base) + 32;
    char *dir = xmalloc(size);

    /* snprintf, unlike sprintf, accepts a null destination of size 0, so
     * UBSan adds no null check here. With that check, GCC 12 at -O1 warned
     * of a null destination on the path where UBSan reports one and goes
     * on. */
    snprintf(dir, size, "%s/fmnist-ckpt-XXXXXX", base);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp in %s failed", base);
    return dir;
}

static char *join_path(const char *dir, const char *name)
{
    char *path = xmalloc(strlen(dir) + strlen(name) + 2);

    sprintf(path, "%s/%s", dir, name);
    return path;
}

/* Returns the number of entries in DIR other than "." and "..". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ck_assert_msg(d != NULL, "opendir %s failed", dir);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Removes the files in DIR and DIR itself. */
static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    chmod(dir, 0700);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char *path = join_path(dir, e->d_name);

        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            if (unlink(path) != 0)
                rmdir(path);
        }
        free(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    free(dir);
}

static uint8_t *read_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = xmalloc((size_t)n + 1);
    ck_assert_int_eq(fread(data, 1, (size_t)n, f), n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static void write_bytes(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_int_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

static int same_file_bytes(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *da = read_bytes(a, &na), *db = read_bytes(b, &nb);
    int same = na == nb && memcmp(da, db, na) == 0;

    free(da);
    free(db);
    return same;
}

static size_t spec_params(const char *spec)
{
    char err[NET_ERR_LEN];
    Net net;
    size_t n;

    ck_assert_msg(net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                             DATASET_CLASSES, err, sizeof err) == 0, "%s", err);
    n = net.n_params;
    net_free(&net);
    return n;
}

/* Returns a copy of the running statistics that net_create gives SPEC
 * (means 0, variances 1) and stores their count in *N. */
static float *spec_stats(const char *spec, size_t *n)
{
    char err[NET_ERR_LEN];
    Net net;
    float *stats;

    ck_assert_msg(net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                             DATASET_CLASSES, err, sizeof err) == 0, "%s", err);
    *n = net.n_stats;
    stats = xcalloc(net.n_stats + 1, sizeof(float));
    memcpy(stats, net.stats, net.n_stats * sizeof(float));
    net_free(&net);
    return stats;
}

static float *random_floats(Rng *rng, size_t n)
{
    float *v = xmalloc(n * sizeof(float));

    for (size_t i = 0; i < n; i++)
        v[i] = rng_normal(rng);
    return v;
}

/* Returns N random values in [0, 1), as losses and accuracies of a
 * history can be. */
static float *random_fractions(Rng *rng, size_t n)
{
    float *v = xmalloc(n * sizeof(float));

    for (size_t i = 0; i < n; i++)
        v[i] = rng_uniform(rng);
    return v;
}

/* Fills CK with random but valid contents for model SPEC and optimiser
 * KIND. */
static void fill_checkpoint_for(Checkpoint *ck, const char *spec,
                                OptimKind kind)
{
    Rng rng;

    rng_seed(&rng, 99);
    memset(ck, 0, sizeof *ck);
    ck->spec = xstrdup(spec);
    ck->n_params = spec_params(spec);
    ck->params = random_floats(&rng, ck->n_params);
    ck->stats = spec_stats(spec, &ck->n_stats);
    optim_init(&ck->optim, kind, ck->n_params, 0.003f);
    for (size_t i = 0; i < ck->n_params; i++) {
        ck->optim.m[i] = rng_normal(&rng);
        if (kind == OPTIM_ADAM)
            ck->optim.v[i] = rng_uniform(&rng);
    }
    ck->optim.t = 45;
    ck->seed = 0x0123456789abcdefULL;
    ck->epochs_done = 3;
    ck->step = 45;
    ck->partial.batch = 20;
    ck->partial.train_count = 61;
    ck->partial.batches = 2;
    ck->partial.samples = 40;
    ck->partial.correct = 17;
    ck->partial.loss_sum = 55.25;
    ck->history_stride = 4;
    ck->n_history = 10;
    ck->loss_history = random_fractions(&rng, 10);
    ck->acc_history = random_fractions(&rng, 10);
    ck->n_test_history = 3;
    ck->test_acc_history = random_fractions(&rng, 3);
}

static void fill_checkpoint(Checkpoint *ck, OptimKind kind)
{
    fill_checkpoint_for(ck, SPEC, kind);
}

static void save_ok(const char *path, const Checkpoint *ck)
{
    char err[CHECKPOINT_ERR_LEN] = "";

    ck_assert_msg(checkpoint_save(path, ck, err, sizeof err) == 0,
                  "checkpoint_save failed: %s", err);
}

static void load_ok(const char *path, Checkpoint *ck)
{
    char err[CHECKPOINT_ERR_LEN] = "";

    ck_assert_msg(checkpoint_load(path, ck, err, sizeof err) == 0,
                  "checkpoint_load failed: %s", err);
}

static void check_floats_equal(const float *a, const float *b, size_t n,
                               const char *what)
{
    ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0, "%s differ", what);
}

static TrainerConfig run_config(void)
{
    TrainerConfig cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.spec = SPEC_DROPOUT;
    cfg.optim = OPTIM_ADAM;
    cfg.lr = 0.01f;
    cfg.epochs = 2;
    cfg.batch = 20;
    cfg.seed = 7;
    cfg.threads = 2;
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

/* ---------------------------------------------------------- round trip */

static void check_round_trip(OptimKind kind)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "rt.ckpt");
    Checkpoint out, in;

    fill_checkpoint(&out, kind);
    save_ok(path, &out);
    load_ok(path, &in);

    ck_assert_str_eq(in.spec, out.spec);
    ck_assert_uint_eq(in.n_params, out.n_params);
    check_floats_equal(in.params, out.params, out.n_params, "parameters");
    ck_assert_int_eq(in.optim.kind, kind);
    ck_assert_float_eq(in.optim.lr, out.optim.lr);
    ck_assert_float_eq(in.optim.momentum, out.optim.momentum);
    ck_assert_float_eq(in.optim.beta1, out.optim.beta1);
    ck_assert_float_eq(in.optim.beta2, out.optim.beta2);
    ck_assert_float_eq(in.optim.eps, out.optim.eps);
    ck_assert_int_eq(in.optim.t, out.optim.t);
    ck_assert_uint_eq(in.optim.n, out.n_params);
    check_floats_equal(in.optim.m, out.optim.m, out.n_params, "first moments");
    if (kind == OPTIM_ADAM)
        check_floats_equal(in.optim.v, out.optim.v, out.n_params,
                           "second moments");
    else
        ck_assert_ptr_null(in.optim.v);
    ck_assert_uint_eq(in.seed, out.seed);
    ck_assert_int_eq(in.epochs_done, out.epochs_done);
    ck_assert_int_eq(in.step, out.step);
    ck_assert_int_eq(in.partial.batch, out.partial.batch);
    ck_assert_int_eq(in.partial.train_count, out.partial.train_count);
    ck_assert_int_eq(in.partial.batches, out.partial.batches);
    ck_assert_int_eq(in.partial.samples, out.partial.samples);
    ck_assert_int_eq(in.partial.correct, out.partial.correct);
    ck_assert_double_eq(in.partial.loss_sum, out.partial.loss_sum);
    ck_assert_int_eq(in.history_stride, out.history_stride);
    ck_assert_int_eq(in.n_history, out.n_history);
    check_floats_equal(in.loss_history, out.loss_history, 10, "loss history");
    check_floats_equal(in.acc_history, out.acc_history, 10,
                       "accuracy history");
    ck_assert_int_eq(in.n_test_history, out.n_test_history);
    check_floats_equal(in.test_acc_history, out.test_acc_history, 3,
                       "test accuracy history");

    checkpoint_free(&in);
    checkpoint_free(&out);
    free(path);
    remove_dir(dir);
}

START_TEST(test_checkpoint_round_trip_adam)
{
    check_round_trip(OPTIM_ADAM);
}
END_TEST

START_TEST(test_checkpoint_round_trip_sgd)
{
    check_round_trip(OPTIM_SGD);
}
END_TEST

START_TEST(test_checkpoint_size_and_magic)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "a.ckpt");
    Checkpoint ck;
    uint8_t *data;
    size_t size, p;

    fill_checkpoint(&ck, OPTIM_ADAM);
    save_ok(path, &ck);
    data = read_bytes(path, &size);
    p = ck.n_params;
    /* Header, spec, parameters and two moments (SPEC has no bn, so no
     * running statistics), optimiser scalars, progress, unfinished epoch,
     * stride, histories, CRC. */
    ck_assert_uint_eq(size, 44 + strlen(SPEC) + 12 * p + 28 + 24 + 40 + 4
                            + 8 * 10 + 4 * 3 + 4);
    ck_assert_int_eq(memcmp(data, "FMNISTCK", 8), 0);
    ck_assert_int_eq(data[8], 2);
    ck_assert_int_eq(data[36], 0);
    ck_assert_int_eq(data[12], strlen(SPEC));

    free(data);
    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_same_bytes_twice)
{
    char *dir = make_temp_dir();
    char *a = join_path(dir, "a.ckpt"), *b = join_path(dir, "b.ckpt");
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_ADAM);
    save_ok(a, &ck);
    save_ok(b, &ck);
    ck_assert(same_file_bytes(a, b));

    checkpoint_free(&ck);
    free(a);
    free(b);
    remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------- runs */

START_TEST(test_checkpoint_identical_runs_identical_files)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *a = join_path(dir, "a.ckpt"), *b = join_path(dir, "b.ckpt");
    Trainer *ta, *tb;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.threads = 1;
    cfg.save_path = a;
    ta = run_to_end(&cfg, &train, &test);
    cfg.threads = 3;
    cfg.save_path = b;
    tb = run_to_end(&cfg, &train, &test);
    ck_assert_msg(same_file_bytes(a, b),
                  "runs with 1 and 3 threads wrote different files");

    trainer_free(ta);
    trainer_free(tb);
    free(a);
    free(b);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* 1 epoch, saved, then 2 more from the file, equals 3 epochs at once. */
START_TEST(test_checkpoint_resume_matches_run)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *whole = join_path(dir, "whole.ckpt");
    char *first = join_path(dir, "first.ckpt");
    char *rest = join_path(dir, "rest.ckpt");
    Trainer *t_whole, *t_first, *t_rest;
    TrainerStatus st;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.epochs = 3;
    cfg.save_path = whole;
    t_whole = run_to_end(&cfg, &train, &test);

    cfg.epochs = 1;
    cfg.save_path = first;
    t_first = run_to_end(&cfg, &train, &test);

    cfg.epochs = 2;
    cfg.spec = NULL;
    cfg.seed = 12345;  /* ignored: a resumed run keeps the file's seed */
    cfg.threads = 3;
    cfg.load_path = first;
    cfg.save_path = rest;
    t_rest = run_to_end(&cfg, &train, &test);
    trainer_get_status(t_rest, &st);

    ck_assert_int_eq(st.epoch, 3);
    ck_assert_int_eq(st.epochs, 3);
    ck_assert_int_eq(st.n_test_history, 3);
    ck_assert_int_eq(memcmp(trainer_net(t_whole)->params,
                            trainer_net(t_rest)->params,
                            trainer_net(t_whole)->n_params * sizeof(float)), 0);
    ck_assert_msg(same_file_bytes(whole, rest),
                  "resumed run wrote another file than the uninterrupted one");

    trainer_free(t_whole);
    trainer_free(t_first);
    trainer_free(t_rest);
    free(whole);
    free(first);
    free(rest);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Stops a run somewhere after its second batch. Returns the checkpoint's
 * sample position inside the unfinished epoch (0 at a boundary). */
static int64_t stop_midway(const TrainerConfig *cfg, const Dataset *train,
                           const Dataset *test, const char *path)
{
    char err[TRAINER_ERR_LEN] = "";
    struct timespec tick = { 0, 100000 };
    Trainer *tr = trainer_create(cfg, train, test, err, sizeof err);
    TrainerStatus st;
    Checkpoint ck;
    int64_t samples;

    ck_assert_msg(tr != NULL, "%s", err);
    ck_assert_int_eq(trainer_start(tr), 0);
    do {
        nanosleep(&tick, NULL);
        trainer_get_status(tr, &st);
    } while (st.state != TRAINER_DONE && st.epoch == 1 && st.batch < 2);
    trainer_request_stop(tr);
    trainer_join(tr);
    trainer_get_status(tr, &st);
    trainer_free(tr);

    load_ok(path, &ck);
    samples = ck.partial.samples;
    ck_assert_int_eq(ck.partial.batches, st.batch);
    ck_assert_int_eq(ck.step, ck.epochs_done * st.batches_per_epoch
                              + ck.partial.batches);
    if (samples > 0) {
        ck_assert_int_eq(ck.partial.batch, cfg->batch);
        ck_assert_int_eq(ck.partial.train_count, train->count);
        ck_assert_int_eq(samples, ck.partial.batches * cfg->batch);
    }
    checkpoint_free(&ck);
    return samples;
}

/* A run stopped inside an epoch resumes at the same batch, so its weights
 * end up equal to an uninterrupted run's. The stop position depends on
 * timing, so the test retries until one stop lands inside an epoch; the
 * equality must hold for every position. */
START_TEST(test_checkpoint_resume_mid_epoch)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "mid.ckpt");
    Trainer *whole;
    int mid_epoch_stops = 0;

    make_dataset(&train, 2003, 1);
    make_dataset(&test, 37, 2);
    cfg.batch = 8;
    cfg.epochs = 2;
    whole = run_to_end(&cfg, &train, &test);

    for (int attempt = 0; attempt < 10 && mid_epoch_stops == 0; attempt++) {
        TrainerConfig resume = cfg;
        Checkpoint ck;
        Trainer *rest;

        cfg.save_path = path;
        if (stop_midway(&cfg, &train, &test, path) > 0)
            mid_epoch_stops++;
        load_ok(path, &ck);
        resume.epochs = cfg.epochs - (int)ck.epochs_done;
        resume.load_path = path;
        resume.save_path = NULL;
        resume.threads = 3;
        checkpoint_free(&ck);

        rest = run_to_end(&resume, &train, &test);
        ck_assert_msg(memcmp(trainer_net(whole)->params,
                             trainer_net(rest)->params,
                             trainer_net(whole)->n_params * sizeof(float)) == 0,
                      "attempt %d: resumed weights differ", attempt);
        trainer_free(rest);
        cfg.save_path = NULL;
    }
    ck_assert_msg(mid_epoch_stops > 0, "no stop landed inside an epoch");

    trainer_free(whole);
    free(path);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_checkpoint_load_for_eval)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "m.ckpt");
    Trainer *trained, *loaded;
    TrainerStatus st, st_trained;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.save_path = path;
    trained = run_to_end(&cfg, &train, &test);
    trainer_get_status(trained, &st_trained);

    cfg.epochs = 0;
    cfg.save_path = NULL;
    cfg.load_path = path;
    loaded = run_to_end(&cfg, NULL, &test);
    trainer_get_status(loaded, &st);

    ck_assert_int_eq(st.state, TRAINER_DONE);
    ck_assert_int_eq(st.epoch, 2);
    ck_assert_int_eq(st.has_eval, 1);
    ck_assert_double_eq(st.test_acc, st_trained.test_acc);
    ck_assert_double_eq(st.test_loss, st_trained.test_loss);
    ck_assert_int_eq(st.n_history, st_trained.n_history);
    check_floats_equal(st.loss_history, st_trained.loss_history,
                       (size_t)st.n_history, "loss history");
    ck_assert_int_eq(st.n_test_history, 2);
    ck_assert_int_eq(memcmp(trainer_net(trained)->params,
                            trainer_net(loaded)->params,
                            trainer_net(loaded)->n_params * sizeof(float)), 0);

    trainer_free(trained);
    trainer_free(loaded);
    free(path);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* A loaded history longer than the buffer is merged in pairs, and the
 * status keeps the min and max of the points as saved. */
START_TEST(test_checkpoint_load_keeps_history_range)
{
    const int n = TRAINER_HISTORY + 2;
    Dataset test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "long.ckpt");
    Checkpoint ck;
    TrainerStatus st;
    Trainer *tr;

    fill_checkpoint(&ck, OPTIM_ADAM);
    free(ck.loss_history);
    free(ck.acc_history);
    ck.n_history = n;
    ck.loss_history = xcalloc((size_t)n, sizeof(float));
    ck.acc_history = xcalloc((size_t)n, sizeof(float));
    for (int i = 0; i < n; i++) {
        ck.loss_history[i] = 1.0f;
        ck.acc_history[i] = 0.75f;
    }
    /* Merged, the first pair gives a loss of 3 and an accuracy of 0.25. */
    ck.loss_history[0] = 4.0f;
    ck.loss_history[1] = 2.0f;
    ck.acc_history[0] = 0.0f;
    ck.acc_history[1] = 0.5f;
    ck.test_acc_history[0] = 0.5f;
    ck.test_acc_history[1] = 0.25f;
    ck.test_acc_history[2] = 0.75f;
    save_ok(path, &ck);

    make_dataset(&test, 37, 2);
    cfg.spec = SPEC;
    cfg.epochs = 0;
    cfg.load_path = path;
    tr = run_to_end(&cfg, NULL, &test);
    trainer_get_status(tr, &st);

    ck_assert_int_eq(st.n_history, n / 2);
    ck_assert_float_eq(st.loss_history[0], 3.0f);
    ck_assert_float_eq(st.acc_history[0], 0.25f);
    ck_assert_float_eq(st.loss_range.min, 1.0f);
    ck_assert_float_eq(st.loss_range.max, 4.0f);
    ck_assert_float_eq(st.acc_range.min, 0.0f);
    ck_assert_float_eq(st.acc_range.max, 0.75f);
    ck_assert_float_eq(st.test_acc_range.min, 0.25f);
    ck_assert_float_eq(st.test_acc_range.max, 0.75f);

    trainer_free(tr);
    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
    free_dataset(&test);
}
END_TEST

START_TEST(test_checkpoint_model_mismatch)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "m.ckpt");
    char err[TRAINER_ERR_LEN] = "", expected[TRAINER_ERR_LEN];
    Trainer *tr;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.epochs = 1;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));

    cfg.save_path = NULL;
    cfg.load_path = path;
    cfg.spec = "dense8, dense10";
    ck_assert_ptr_null(trainer_create(&cfg, &train, &test, err, sizeof err));
    snprintf(expected, sizeof expected,
             "--load %s contains model %s, but --model requests model "
             "dense8,dense10; drop --model to continue the checkpoint's "
             "run, or drop --load to train --model afresh", path,
             SPEC_DROPOUT);
    ck_assert_str_eq(err, expected);

    /* The same network written differently is accepted. */
    cfg.spec = " dense16, relu, dropout0.25, dense10 ";
    tr = trainer_create(&cfg, &train, &test, err, sizeof err);
    ck_assert_msg(tr != NULL, "same model rejected: %s", err);
    trainer_free(tr);

    /* A run of 0 epochs only evaluates, so dropping --load is no fix,
     * and a preset is named as given. */
    cfg.epochs = 0;
    cfg.spec = "small";
    ck_assert_ptr_null(trainer_create(&cfg, NULL, &test, err, sizeof err));
    snprintf(expected, sizeof expected,
             "--load %s contains model %s, but --model small requests model "
             "%s; drop --model to evaluate the checkpoint's model", path,
             SPEC_DROPOUT, NET_SPEC_SMALL);
    ck_assert_str_eq(err, expected);

    free(path);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

START_TEST(test_checkpoint_optimiser_switch)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "m.ckpt");
    char err[TRAINER_ERR_LEN] = "", expected[TRAINER_ERR_LEN];
    TrainerStatus st;
    Trainer *tr;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.epochs = 1;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));

    cfg.save_path = NULL;
    cfg.load_path = path;
    cfg.optim = OPTIM_SGD;

    /* An optimiser that was not asked for explicitly keeps the stored one. */
    cfg.optim_given = 0;
    tr = trainer_create(&cfg, &train, &test, err, sizeof err);
    ck_assert_msg(tr != NULL, "%s", err);
    trainer_get_status(tr, &st);
    ck_assert_str_eq(st.message, "");
    trainer_free(tr);

    cfg.optim_given = 1;
    tr = trainer_create(&cfg, &train, &test, err, sizeof err);
    ck_assert_msg(tr != NULL, "%s", err);
    trainer_get_status(tr, &st);
    snprintf(expected, sizeof expected,
             "--load %s was trained with adam, so --optimizer sgd starts "
             "with fresh state", path);
    ck_assert_str_eq(st.message, expected);
    trainer_free(tr);

    free(path);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* ---------------------------------------------------------- rejections */

/* Writes a good checkpoint to PATH and returns its bytes. */
static uint8_t *good_file(const char *path, size_t *size)
{
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_ADAM);
    save_ok(path, &ck);
    checkpoint_free(&ck);
    return read_bytes(path, size);
}

/* Loads PATH and expects a rejection whose message starts with PATH and
 * contains EXPECTED. */
static void check_rejects(const char *path, const char *expected)
{
    char err[CHECKPOINT_ERR_LEN] = "";
    Checkpoint ck;

    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) != 0,
                  "accepted a file that should fail with \"%s\"", expected);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0,
                  "message does not start with the path: %s", err);
    ck_assert_msg(strstr(err, expected) != NULL,
                  "message \"%s\" lacks \"%s\"", err, expected);
}

START_TEST(test_checkpoint_rejects_empty)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "empty.ckpt");

    write_bytes(path, (const uint8_t *)"", 0);
    check_rejects(path, ": empty file, not a checkpoint");
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_bad_magic)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "text.ckpt");
    const char *text = "epoch,train_loss\n1,0.5\n";

    write_bytes(path, (const uint8_t *)text, strlen(text));
    check_rejects(path, ": not an fmnist checkpoint (starts with bytes "
                  "65706f63682c7472, expected \"FMNISTCK\")");
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_truncated)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "t.ckpt");
    char expected[128];
    size_t size;
    uint8_t *data = good_file(path, &size);

    write_bytes(path, data, size / 2);
    snprintf(expected, sizeof expected, ": truncated: ends after %zu of %zu "
             "bytes", size / 2, size);
    check_rejects(path, expected);

    write_bytes(path, data, size - 1);
    snprintf(expected, sizeof expected, ": truncated: ends after %zu of %zu "
             "bytes", size - 1, size);
    check_rejects(path, expected);

    write_bytes(path, data, 20);
    check_rejects(path, ": truncated: ends after 20 bytes, inside the 44-byte "
                  "header");
    write_bytes(path, data, 5);
    check_rejects(path, ": truncated: ends after 5 bytes");

    free(data);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_trailing_data)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "t.ckpt");
    size_t size;
    uint8_t *data = good_file(path, &size);
    uint8_t *longer = xcalloc(size + 3, 1);
    char fix[1024];

    memcpy(longer, data, size);
    write_bytes(path, longer, size + 3);
    check_rejects(path, "the file has trailing data");
    /* The message ends with the command that cuts the file back. */
    snprintf(fix, sizeof fix, "cutting it back with: truncate -s %zu '%s'", size,
             path);
    check_rejects(path, fix);

    free(longer);
    free(data);
    free(path);
    remove_dir(dir);
}
END_TEST

/* The command quotes a name with spaces, brackets and a single quote for
 * the shell, and keeps a name that starts with "-" from being read as
 * an option. */
START_TEST(test_checkpoint_trailing_data_quotes_name)
{
    static const struct {
        const char *name, *quoted;
    } cases[] = {
        {"my model (1)'s.ckpt", "'my model (1)'\\''s.ckpt'"},
        {"-m.ckpt", "'./-m.ckpt'"},
    };
    char *dir = make_temp_dir();
    char fix[1024], err[CHECKPOINT_ERR_LEN];
    size_t size;

    ck_assert_int_eq(chdir(dir), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *data = good_file(cases[i].name, &size);
        uint8_t *longer = xcalloc(size + 3, 1);
        Checkpoint ck;

        memcpy(longer, data, size);
        write_bytes(cases[i].name, longer, size + 3);
        ck_assert_int_ne(checkpoint_load(cases[i].name, &ck, err, sizeof err),
                         0);
        snprintf(fix, sizeof fix, "cutting it back with: truncate -s %zu %s", size,
                 cases[i].quoted);
        ck_assert_msg(strlen(err) >= strlen(fix)
                      && strcmp(err + strlen(err) - strlen(fix), fix) == 0,
                      "message \"%s\" does not end with \"%s\"", err, fix);
        ck_assert_int_eq(remove(cases[i].name), 0);
        free(longer);
        free(data);
    }
    remove_dir(dir);
}
END_TEST

/* Creates directories with 200-byte names under TOP until the path is
 * within 300 bytes of PATH_MAX, and returns that path. */
static char *make_deep_dir(const char *top)
{
    char name[201];
    char *path = xstrdup(top);

    memset(name, 'd', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    while (strlen(path) + sizeof name < PATH_MAX - 300) {
        char *next = join_path(path, name);

        ck_assert_msg(mkdir(next, 0700) == 0, "mkdir %s failed", next);
        free(path);
        path = next;
    }
    return path;
}

/* Removes the empty directories that make_deep_dir created under TOP. */
static void remove_deep_dir(char *path, const char *top)
{
    while (strcmp(path, top) != 0) {
        rmdir(path);
        *strrchr(path, '/') = '\0';
    }
    free(path);
}

/* A message that names a path close to PATH_MAX twice, once quoted for
 * the shell, still ends with the whole command. */
START_TEST(test_checkpoint_long_path_keeps_reason)
{
    char *dir = make_temp_dir();
    char *deep = make_deep_dir(dir);
    char *path = join_path(deep, "it's.ckpt");
    char *fix = xmalloc(3 * PATH_MAX);
    char err[CHECKPOINT_ERR_LEN];
    size_t size;
    uint8_t *data = good_file(path, &size);
    uint8_t *longer = xcalloc(size + 3, 1);
    Checkpoint ck;

    ck_assert_uint_gt(strlen(path), PATH_MAX - 520);
    memcpy(longer, data, size);
    write_bytes(path, longer, size + 3);
    ck_assert_int_ne(checkpoint_load(path, &ck, err, sizeof err), 0);
    snprintf(fix, 3 * PATH_MAX, "cutting it back with: truncate -s %zu "
             "'%s/it'\\''s.ckpt'", size, deep);
    /* With a failure message of several kilobytes, Check ended the test
     * with exit status 2, so only the end of the message is shown. */
    ck_assert_msg(strlen(err) >= strlen(fix)
                  && strcmp(err + strlen(err) - strlen(fix), fix) == 0,
                  "message of %zu bytes, expected %zu, ends with \"%s\"",
                  strlen(err), strlen(fix),
                  err + (strlen(err) > 80 ? strlen(err) - 80 : 0));

    ck_assert_int_eq(unlink(path), 0);
    remove_deep_dir(deep, dir);
    free(longer);
    free(data);
    free(fix);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_bit_flips)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "f.ckpt");
    size_t size;
    uint8_t *data = good_file(path, &size);

    /* In the parameters, in the moments, in the history, in the CRC. */
    size_t body_offsets[] = { 100, size / 2, size - 20, size - 1 };
    for (size_t i = 0; i < sizeof body_offsets / sizeof body_offsets[0]; i++) {
        data[body_offsets[i]] ^= 0x10;
        write_bytes(path, data, size);
        check_rejects(path, ": corrupted: CRC-32 mismatch (stored ");
        data[body_offsets[i]] ^= 0x10;
    }

    /* The parameter count, the history length, the statistics count and
     * the header CRC itself. */
    size_t header_offsets[] = { 16, 28, 36, 41 };
    for (size_t i = 0; i < sizeof header_offsets / sizeof header_offsets[0]; i++) {
        data[header_offsets[i]] ^= 0x01;
        write_bytes(path, data, size);
        check_rejects(path, ": corrupted: header CRC-32 mismatch");
        data[header_offsets[i]] ^= 0x01;
    }

    write_bytes(path, data, size);
    Checkpoint ck;
    load_ok(path, &ck);
    checkpoint_free(&ck);

    free(data);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_other_version)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "v.ckpt");
    size_t size;
    uint8_t *data = good_file(path, &size);

    data[8] = 3;
    write_bytes(path, data, size);
    check_rejects(path, ": checkpoint format version 3, but this program "
                  "reads version 2; load it with the newer fmnist that "
                  "wrote it, or, if the file is damaged, use an earlier "
                  "checkpoint");

    /* Version 1 files had no running statistics. */
    data[8] = 1;
    write_bytes(path, data, size);
    check_rejects(path, ": checkpoint format version 1, but this program "
                  "reads version 2 only; load it with the older fmnist that "
                  "wrote it, or train again");

    free(data);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_param_count)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "p.ckpt");
    char expected[160];
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_SGD);
    ck.n_params = 100;
    ck.optim.n = 100;
    save_ok(path, &ck);
    snprintf(expected, sizeof expected, ": contains 100 parameters, but its "
             "model %s has %zu", SPEC, spec_params(SPEC));
    check_rejects(path, expected);

    ck.n_params = ck.optim.n = spec_params(SPEC);
    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_non_finite)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "nan.ckpt");
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_ADAM);
    ck.params[3] = NAN;
    save_ok(path, &ck);
    check_rejects(path, ": invalid parameters: a weight is NaN or infinite");
    ck.params[3] = INFINITY;
    save_ok(path, &ck);
    check_rejects(path, ": invalid parameters: a weight is NaN or infinite");

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

/* A running statistic that net_predict cannot use is named with its
 * layer, channel and value. */
START_TEST(test_checkpoint_rejects_bad_running_stats)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "bn.ckpt");
    Checkpoint ck, back;

    /* Layer 2 has 4 channels at stats 0..7, layer 6 16 units at 8..39. */
    fill_checkpoint_for(&ck, SPEC_BN, OPTIM_ADAM);
    ck_assert_uint_eq(ck.n_stats, 40);

    ck.stats[4 + 2] = -0.5f;
    save_ok(path, &ck);
    check_rejects(path, ": invalid running variance -0.5 in layer 2 (bn), "
                  "channel 3 of 4: expected a finite value of 0 or more");
    ck.stats[4 + 2] = 1.0f;

    ck.stats[8 + 16] = NAN;
    save_ok(path, &ck);
    check_rejects(path, ": invalid running variance nan in layer 6 (bn), "
                  "channel 1 of 16");
    ck.stats[8 + 16] = INFINITY;
    save_ok(path, &ck);
    check_rejects(path, ": invalid running variance inf in layer 6 (bn)");
    ck.stats[8 + 16] = 1.0f;

    ck.stats[8 + 1] = -INFINITY;
    save_ok(path, &ck);
    check_rejects(path, ": invalid running mean -inf in layer 6 (bn), "
                  "channel 2 of 16: expected a finite value;");
    ck.stats[8 + 1] = -3.0f;

    /* A variance of 0 is what a constant channel gives, and -0.0 equals
     * it, so both load. */
    ck.stats[4 + 0] = 0.0f;
    ck.stats[4 + 1] = -0.0f;
    save_ok(path, &ck);
    load_ok(path, &back);
    ck_assert_float_eq(back.stats[8 + 1], -3.0f);
    checkpoint_free(&back);

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

/* A trained model loads. Set to -3e38, a finite running mean passes
 * the value checks, but layer 2 then outputs infinity and every
 * prediction is NaN, so the file is rejected with that layer. So is a
 * weight that makes layer 1 overflow, while a huge weight whose outputs
 * stay finite loads. */
START_TEST(test_checkpoint_rejects_overflowing_outputs)
{
    Dataset train, test;
    TrainerConfig cfg = run_config();
    char *dir = make_temp_dir();
    char *path = join_path(dir, "bn.ckpt");
    Checkpoint ck;

    make_dataset(&train, 61, 1);
    make_dataset(&test, 37, 2);
    cfg.spec = SPEC_BN;
    cfg.save_path = path;
    trainer_free(run_to_end(&cfg, &train, &test));
    load_ok(path, &ck);

    /* Layer 2 has 4 channels: means at stats 0..3, variances at 4..7. */
    for (int c = 0; c < 4; c++) {
        ck.stats[c] = -3e38f;
        ck.stats[4 + c] = 0.0f;
    }
    save_ok(path, &ck);
    check_rejects(path, ": layer 2 (bn) outputs infinity or NaN on "
                  "synthetic black, white and noise images, so every "
                  "prediction would be NaN; use an earlier checkpoint, or "
                  "train again with a lower learning rate");
    checkpoint_free(&ck);

    /* Weights of 1e36 from every pixel to unit 1 of "dense16" sum to
     * 7.84e38 on a white image, above FLT_MAX. Weights of 1e32 give
     * 7.84e34, and the outputs stay finite. */
    fill_checkpoint(&ck, OPTIM_ADAM);
    for (int i = 0; i < DATASET_PIXELS; i++)
        ck.params[i] = 1e32f;
    save_ok(path, &ck);
    checkpoint_free(&ck);
    load_ok(path, &ck);
    for (int i = 0; i < DATASET_PIXELS; i++)
        ck.params[i] = 1e36f;
    save_ok(path, &ck);
    check_rejects(path, ": layer 1 (dense) outputs infinity or NaN on ");

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
    free_dataset(&train);
    free_dataset(&test);
}
END_TEST

/* Fields with valid CRCs but values no run writes, which would
 * overflow the trainer's counts or stop its optimiser, are named. */
START_TEST(test_checkpoint_rejects_field_range)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "range.ckpt");
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_ADAM);
    ck.history_stride = 1 << 30;
    save_ok(path, &ck);
    check_rejects(path, ": invalid history stride");
    ck.history_stride = 4;

    ck.epochs_done = INT32_MAX;
    save_ok(path, &ck);
    check_rejects(path, ": invalid epoch or step count");
    ck.epochs_done = 3;

    ck.step = INT64_MAX;
    save_ok(path, &ck);
    check_rejects(path, ": invalid epoch or step count");
    ck.step = 45;

    ck.optim.beta2 = 1.0f;
    save_ok(path, &ck);
    check_rejects(path, ": invalid optimiser state: momentum, beta or "
                  "epsilon out of range");
    ck.optim.beta2 = 0.999f;

    ck.optim.eps = 0.0f;
    save_ok(path, &ck);
    check_rejects(path, ": invalid optimiser state: momentum, beta or "
                  "epsilon out of range");
    ck.optim.eps = 1e-8f;

    ck.optim.lr = 1e30f;
    save_ok(path, &ck);
    check_rejects(path, ": invalid optimiser state");
    ck.optim.lr = 0.003f;

    ck.partial.loss_sum = NAN;
    save_ok(path, &ck);
    check_rejects(path, ": invalid unfinished-epoch position");
    ck.partial.loss_sum = -1.0;
    save_ok(path, &ck);
    check_rejects(path, ": invalid unfinished-epoch position");
    ck.partial.loss_sum = 55.25;

    ck.partial.batches = 41;
    save_ok(path, &ck);
    check_rejects(path, ": invalid unfinished-epoch position");
    ck.partial.batches = 2;

    ck.acc_history[4] = 1.5f;
    save_ok(path, &ck);
    check_rejects(path, ": invalid history: a loss or accuracy is out of "
                  "range");
    ck.acc_history[4] = 0.5f;
    ck.loss_history[2] = INFINITY;
    save_ok(path, &ck);
    check_rejects(path, ": invalid history: a loss or accuracy is out of "
                  "range");
    ck.loss_history[2] = 0.5f;
    ck.test_acc_history[0] = NAN;
    save_ok(path, &ck);
    check_rejects(path, ": invalid history: a loss or accuracy is out of "
                  "range");
    ck.test_acc_history[0] = 0.5f;
    save_ok(path, &ck);
    Checkpoint back;
    load_ok(path, &back);
    checkpoint_free(&back);

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

/* A header count out of range is named with its value, even with a
 * valid header CRC. */
START_TEST(test_checkpoint_rejects_header_range)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "h.ckpt");
    size_t size;
    uint8_t *data = good_file(path, &size);
    uint32_t crc;

    /* Spec length 5000 (0x1388), little-endian at offset 12. */
    data[12] = 0x88;
    data[13] = 0x13;
    data[14] = data[15] = 0;
    crc = (uint32_t)crc32(0L, data, 40);
    for (int i = 0; i < 4; i++)
        data[40 + i] = (uint8_t)(crc >> (8 * i));
    write_bytes(path, data, size);
    check_rejects(path, ": header out of range: spec length 5000, expected "
                  "1 to 4096");

    free(data);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_rejects_missing_and_dir)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "missing.ckpt");

    check_rejects(path, ": No such file or directory");
    check_rejects(dir, ": is a directory, expected a checkpoint file");
    free(path);
    remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------- atomic write */

/* The ways of saving that the loop tests run, indexed by _i. */
static const CheckpointTmp save_methods[] = {
    CHECKPOINT_TMP_AUTO, CHECKPOINT_TMP_UNNAMED, CHECKPOINT_TMP_NAMED
};
#define N_SAVE_METHODS 3
#define METHOD_UNNAMED 1
#define FD_DIR "/proc/self/fd"

/* Returns whether save_methods[METHOD] can save into the temporary
 * directories. The unnamed method needs O_TMPFILE support in their file
 * system and a mounted /proc, and the tests return early without them. */
static int method_works(int method)
{
    if (save_methods[method] != CHECKPOINT_TMP_UNNAMED)
        return 1;
#ifdef O_TMPFILE
    int fd = open(temp_base(), O_TMPFILE | O_WRONLY, 0600);

    if (fd < 0)
        return 0;
    close(fd);
    return access(FD_DIR, F_OK) == 0;
#else
    return 0;
#endif
}

static int save_with(int method, const char *path, const Checkpoint *ck,
                     char *err, size_t errlen)
{
    return checkpoint_save_using(path, ck, save_methods[method], FD_DIR,
                                 err, errlen);
}

/* Saves CK to PATH with METHOD and FD_DIR, expects a failure mentioning
 * REASON and checks that the old contents OLD (SIZE bytes) are intact and
 * no file was left in DIR besides ENTRIES. */
static void check_failed_save_keeps_old(const char *dir, const char *path,
                                        const Checkpoint *ck,
                                        CheckpointTmp method,
                                        const char *fd_dir,
                                        const uint8_t *old, size_t size,
                                        int entries, const char *reason)
{
    char err[CHECKPOINT_ERR_LEN] = "";
    size_t now_size;
    uint8_t *now;

    ck_assert_int_ne(checkpoint_save_using(path, ck, method, fd_dir, err,
                                           sizeof err), 0);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0,
                  "message does not start with the path: %s", err);
    ck_assert_msg(strstr(err, reason) != NULL, "message \"%s\" lacks \"%s\"",
                  err, reason);
    now = read_bytes(path, &now_size);
    ck_assert_uint_eq(now_size, size);
    ck_assert_int_eq(memcmp(now, old, size), 0);
    ck_assert_int_eq(count_entries(dir), entries);
    free(now);
}

/* A new file gets mode 0644 and the same bytes whichever way it is
 * saved, and no other file is left. */
START_TEST(test_checkpoint_save_new_file)
{
    if (!method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char *named = join_path(dir, "named.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    struct stat st;
    Checkpoint ck, in;

    fill_checkpoint(&ck, OPTIM_ADAM);
    ck_assert_msg(save_with(_i, path, &ck, err, sizeof err) == 0,
                  "save failed: %s", err);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0644);
    ck_assert_int_eq(count_entries(dir), 1);
    load_ok(path, &in);
    ck_assert_str_eq(in.spec, ck.spec);

    ck_assert_int_eq(checkpoint_save_using(named, &ck, CHECKPOINT_TMP_NAMED,
                                           FD_DIR, err, sizeof err), 0);
    ck_assert_msg(same_file_bytes(path, named), "the files differ");
    ck_assert_int_eq(count_entries(dir), 2);

    checkpoint_free(&in);
    checkpoint_free(&ck);
    free(named);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_write_failure_keeps_old)
{
    if (!method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    const uint8_t old[] = "previous checkpoint";
    struct rlimit limit = { 4096, 4096 };
    Checkpoint ck;

    write_bytes(path, old, sizeof old);
    fill_checkpoint(&ck, OPTIM_ADAM);
    /* Writes past 4 KiB fail with EFBIG instead of raising SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
    check_failed_save_keeps_old(dir, path, &ck, save_methods[_i], FD_DIR,
                                old, sizeof old, 1,
                                ": writing: File too large");

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_readonly_dir_keeps_old)
{
    /* Root may write into a read-only directory. */
    if (geteuid() == 0 || !method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    const uint8_t old[] = "previous checkpoint";
    Checkpoint ck;

    write_bytes(path, old, sizeof old);
    fill_checkpoint(&ck, OPTIM_ADAM);
    ck_assert_int_eq(chmod(dir, 0500), 0);
    check_failed_save_keeps_old(dir, path, &ck, save_methods[_i], FD_DIR,
                                old, sizeof old, 1,
                                ": creating a temporary file: Permission denied");

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_bad_paths)
{
    if (!method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *sub = join_path(dir, "sub");
    char *missing = join_path(dir, "no/such/dir/run.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    struct stat st;
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_SGD);
    ck_assert_int_ne(save_with(_i, missing, &ck, err, sizeof err), 0);
    ck_assert_msg(strstr(err, ": creating a temporary file: No such file or "
                         "directory") != NULL, "message: %s", err);

    /* A directory is not replaced. The temporary file written before the
     * check must be removed and the directory kept. */
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_ne(save_with(_i, sub, &ck, err, sizeof err), 0);
    ck_assert_msg(strstr(err, ": is a directory, not a regular file")
                  != NULL, "message: %s", err);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(count_entries(dir), 1);

    checkpoint_free(&ck);
    free(sub);
    free(missing);
    remove_dir(dir);
}
END_TEST

/* A FIFO or a symbolic link at the save path stays what it is, and the
 * link's target is not written. */
START_TEST(test_checkpoint_save_keeps_non_regular)
{
    if (!method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *fifo = join_path(dir, "fifo.ckpt");
    char *link = join_path(dir, "link.ckpt");
    char *target = join_path(dir, "target.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    struct stat st;
    Checkpoint ck;

    fill_checkpoint(&ck, OPTIM_SGD);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_ne(save_with(_i, fifo, &ck, err, sizeof err), 0);
    ck_assert_msg(strstr(err, ": is a FIFO, not a regular file, so it was "
                         "not replaced") != NULL, "message: %s", err);
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));

    write_bytes(target, (const uint8_t *)"old", 3);
    ck_assert_int_eq(symlink("target.ckpt", link), 0);
    ck_assert_int_ne(save_with(_i, link, &ck, err, sizeof err), 0);
    ck_assert_msg(strstr(err, ": is a symbolic link, not a regular file")
                  != NULL, "message: %s", err);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_size, 3);
    ck_assert_int_eq(count_entries(dir), 3);

    checkpoint_free(&ck);
    free(fifo);
    free(link);
    free(target);
    remove_dir(dir);
}
END_TEST

START_TEST(test_checkpoint_replace_keeps_mode)
{
    if (!method_works(_i))
        return;

    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char err[CHECKPOINT_ERR_LEN] = "";
    struct stat st;
    Checkpoint ck, in;

    write_bytes(path, (const uint8_t *)"old", 3);
    ck_assert_int_eq(chmod(path, 0640), 0);
    fill_checkpoint(&ck, OPTIM_ADAM);
    ck_assert_msg(save_with(_i, path, &ck, err, sizeof err) == 0,
                  "save failed: %s", err);
    load_ok(path, &in);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(count_entries(dir), 1);

    checkpoint_free(&in);
    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

/* Without /proc, linkat cannot name the unnamed file: the default save
 * falls back to a named one and succeeds, and the unnamed method fails
 * without leaving a file. A missing directory takes the place of /proc. */
START_TEST(test_checkpoint_fallback_without_proc)
{
    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char *no_proc = join_path(dir, "no-proc");
    const uint8_t old[] = "previous checkpoint";
    char err[CHECKPOINT_ERR_LEN] = "";
    Checkpoint ck, in;

    fill_checkpoint(&ck, OPTIM_ADAM);
    write_bytes(path, old, sizeof old);
    ck_assert_msg(checkpoint_save_using(path, &ck, CHECKPOINT_TMP_AUTO,
                                        no_proc, err, sizeof err) == 0,
                  "save failed: %s", err);
    load_ok(path, &in);
    ck_assert_int_eq(count_entries(dir), 1);

    if (method_works(METHOD_UNNAMED)) {
        write_bytes(path, old, sizeof old);
        check_failed_save_keeps_old(dir, path, &ck, CHECKPOINT_TMP_UNNAMED,
                                    no_proc, old, sizeof old, 1,
                                    ": naming the temporary file: No such "
                                    "file or directory");
    }

    checkpoint_free(&in);
    checkpoint_free(&ck);
    free(no_proc);
    free(path);
    remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------- killed saves */

#define KILL_ROUNDS 6
#define KILLED_TIMEOUT 60

/* Saves CK to PATH until killed, writing a byte to START_FD as each save
 * starts. Exits with 1 when a save fails. */
static void save_forever(const char *path, const Checkpoint *ck, int start_fd)
{
    char err[CHECKPOINT_ERR_LEN] = "";

    /* When the test process dies, the next start byte ends this one. */
    signal(SIGPIPE, SIG_DFL);
    while (write(start_fd, "s", 1) == 1) {
        if (checkpoint_save(path, ck, err, sizeof err) != 0) {
            fprintf(stderr, "save in the child failed: %s\n", err);
            _exit(1);
        }
    }
    _exit(1);
}

/* Forks a process that saves CK to PATH over and over, and kills it with
 * SIGKILL DELAY_MS milliseconds after save number SAVE has started. */
static void kill_during_save(const char *path, const Checkpoint *ck,
                             int save, int delay_ms)
{
    struct timespec delay = { 0, delay_ms * 1000000L };
    int starts[2], status;
    pid_t pid;
    char byte;

    ck_assert_int_eq(pipe(starts), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(starts[0]);
        save_forever(path, ck, starts[1]);
    }
    close(starts[1]);
    for (int i = 0; i < save; i++)
        ck_assert_int_eq(read(starts[0], &byte, 1), 1);
    nanosleep(&delay, NULL);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(starts[0]);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the saving process ended before the kill, with wait "
                  "status 0x%x", (unsigned)status);
}

/* Returns the number of entries in DIR whose name starts with PREFIX,
 * and lists them in NAMES. */
static int list_prefixed(const char *dir, const char *prefix,
                         char *names, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t used = 0;
    int n = 0;

    ck_assert_msg(d != NULL, "opendir %s failed", dir);
    names[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        n++;
        if (used < len)
            used += (size_t)snprintf(names + used, len - used, " %s",
                                     e->d_name);
    }
    closedir(d);
    return n;
}

/* A save killed with SIGKILL while it writes leaves no temporary file,
 * and the checkpoint is either absent or the last complete one. */
START_TEST(test_checkpoint_kill_leaves_no_temp)
{
    /* The named fallback leaves a killed save's file by design. */
    if (!method_works(METHOD_UNNAMED))
        return;

    char *dir = make_temp_dir();
    char *path = join_path(dir, "run.ckpt");
    char names[256];
    Checkpoint ck, in;

    /* 39 MB with Adam. Packing and writing it took about 60 ms on a
     * 2-core VM, far longer than the delays below, so the kill lands
     * during the write, not in the short time between naming the
     * complete file and renaming it. */
    fill_checkpoint_for(&ck, NET_SPEC_TF, OPTIM_ADAM);
    for (int round = 0; round < KILL_ROUNDS; round++) {
        /* Round 0 kills the first save, before the checkpoint exists.
         * The others let one save finish and kill the one replacing it. */
        kill_during_save(path, &ck, round == 0 ? 1 : 2, 1 + round);
        ck_assert_msg(list_prefixed(dir, "run.ckpt.tmp-", names,
                                    sizeof names) == 0,
                      "round %d left temporary files:%s", round, names);
        if (round > 0)
            ck_assert_msg(access(path, F_OK) == 0,
                          "round %d: the complete save is missing", round);
        if (access(path, F_OK) == 0) {
            load_ok(path, &in);
            checkpoint_free(&in);
        }
    }

    checkpoint_free(&ck);
    free(path);
    remove_dir(dir);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *format = tcase_create("format");
    TCase *runs = tcase_create("runs");
    TCase *reject = tcase_create("reject");
    TCase *atomic = tcase_create("atomic");
    TCase *killed = tcase_create("killed");

    tcase_add_test(format, test_checkpoint_round_trip_adam);
    tcase_add_test(format, test_checkpoint_round_trip_sgd);
    tcase_add_test(format, test_checkpoint_size_and_magic);
    tcase_add_test(format, test_checkpoint_same_bytes_twice);
    suite_add_tcase(s, format);

    tcase_set_timeout(runs, THREADED_TIMEOUT);
    tcase_add_test(runs, test_checkpoint_identical_runs_identical_files);
    tcase_add_test(runs, test_checkpoint_resume_matches_run);
    tcase_add_test(runs, test_checkpoint_resume_mid_epoch);
    tcase_add_test(runs, test_checkpoint_load_for_eval);
    tcase_add_test(runs, test_checkpoint_load_keeps_history_range);
    tcase_add_test(runs, test_checkpoint_model_mismatch);
    tcase_add_test(runs, test_checkpoint_optimiser_switch);
    suite_add_tcase(s, runs);

    tcase_add_test(reject, test_checkpoint_rejects_empty);
    tcase_add_test(reject, test_checkpoint_rejects_bad_magic);
    tcase_add_test(reject, test_checkpoint_rejects_truncated);
    tcase_add_test(reject, test_checkpoint_rejects_trailing_data);
    tcase_add_test(reject, test_checkpoint_trailing_data_quotes_name);
    tcase_add_test(reject, test_checkpoint_long_path_keeps_reason);
    tcase_add_test(reject, test_checkpoint_rejects_field_range);
    tcase_add_test(reject, test_checkpoint_rejects_bit_flips);
    tcase_add_test(reject, test_checkpoint_rejects_other_version);
    tcase_add_test(reject, test_checkpoint_rejects_param_count);
    tcase_add_test(reject, test_checkpoint_rejects_missing_and_dir);
    tcase_add_test(reject, test_checkpoint_rejects_non_finite);
    tcase_add_test(reject, test_checkpoint_rejects_bad_running_stats);
    tcase_add_test(reject, test_checkpoint_rejects_overflowing_outputs);
    tcase_add_test(reject, test_checkpoint_rejects_header_range);
    suite_add_tcase(s, reject);

    /* Each atomic test runs once per way of saving in save_methods. */
    tcase_add_loop_test(atomic, test_checkpoint_save_new_file, 0,
                        N_SAVE_METHODS);
    tcase_add_loop_test(atomic, test_checkpoint_write_failure_keeps_old, 0,
                        N_SAVE_METHODS);
    tcase_add_loop_test(atomic, test_checkpoint_readonly_dir_keeps_old, 0,
                        N_SAVE_METHODS);
    tcase_add_loop_test(atomic, test_checkpoint_bad_paths, 0,
                        N_SAVE_METHODS);
    tcase_add_loop_test(atomic, test_checkpoint_replace_keeps_mode, 0,
                        N_SAVE_METHODS);
    tcase_add_loop_test(atomic, test_checkpoint_save_keeps_non_regular, 0,
                        N_SAVE_METHODS);
    tcase_add_test(atomic, test_checkpoint_fallback_without_proc);
    suite_add_tcase(s, atomic);

    tcase_set_timeout(killed, KILLED_TIMEOUT);
    tcase_add_test(killed, test_checkpoint_kill_leaves_no_temp);
    suite_add_tcase(s, killed);
    return s;
}
