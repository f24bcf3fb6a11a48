/*
 * fmnist-bench: measures training and evaluation throughput of a network
 * on the real data, for one thread and for all threads, and reports the
 * achieved GFLOP/s against this machine's measured FP32 peak, the time to
 * load the four data files and the peak resident memory of a default run.
 *
 * Throughput is taken from the trainer itself (one epoch over --train
 * images at --batch samples per batch), so the numbers include shuffling,
 * gathering and the optimiser step, as a user's run does. A training step
 * is counted as 3 x 2 x the forward multiply-adds per image.
 *
 * Usage: fmnist-bench [--model SPEC] [--train N] [--batch N] [--threads N]
 *                     [--data DIR] [--fmnist PATH]
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dataset.h"
#include "net.h"
#include "trainer.h"
#include "util.h"

typedef struct {
    const char *model;
    const char *data_dir;
    const char *fmnist;
    int train;
    int batch;
    int threads;
} BenchOptions;

typedef struct {
    double train_ips;
    double eval_ips;
} Throughput;

static void on_epoch(const EpochRecord *rec, void *ctx)
{
    *(double *)ctx = rec->samples_per_sec;
}

static int measure(const BenchOptions *opt, int threads, const Dataset *train,
                   const Dataset *test, Throughput *out)
{
    char err[TRAINER_ERR_LEN];
    double train_ips = 0;
    TrainerConfig cfg = {
        .spec = opt->model, .optim = OPTIM_SGD, .lr = 0.01f, .epochs = 1,
        .batch = opt->batch, .seed = 1, .threads = threads,
        .train_limit = opt->train, .on_epoch = on_epoch, .ctx = &train_ips,
    };
    Trainer *tr = trainer_create(&cfg, train, test, err, sizeof err);

    if (tr == NULL) {
        fprintf(stderr, "fmnist-bench: %s\n", err);
        return -1;
    }
    if (trainer_start(tr) != 0) {
        fprintf(stderr, "fmnist-bench: cannot start the trainer\n");
        trainer_free(tr);
        return -1;
    }
    trainer_join(tr);

    double t0 = util_now();
    trainer_evaluate(tr);
    double eval_seconds = util_now() - t0;

    out->train_ips = train_ips;
    out->eval_ips = test->count / eval_seconds;
    trainer_free(tr);
    return 0;
}

/* Runs a default headless epoch on a small subset in a child process and
 * returns its peak resident set in MiB, or -1. The whole dataset is loaded
 * whatever the subset, so the peak is that of a full default run. */
static double default_run_rss(const BenchOptions *opt)
{
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(opt->fmnist, opt->fmnist, "--headless", "--epochs", "1",
              "--train-limit", "2000", (char *)NULL);
        fprintf(stderr, "fmnist-bench: cannot run %s: %s\n", opt->fmnist,
                strerror(errno));
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
        return -1;

    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void parse(int argc, char **argv, BenchOptions *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "fmnist-bench: %s needs a value\n", argv[i]);
            exit(2);
        }
        if (strcmp(argv[i], "--model") == 0)
            opt->model = value;
        else if (strcmp(argv[i], "--data") == 0)
            opt->data_dir = value;
        else if (strcmp(argv[i], "--fmnist") == 0)
            opt->fmnist = value;
        else if (strcmp(argv[i], "--train") == 0)
            opt->train = atoi(value);
        else if (strcmp(argv[i], "--batch") == 0)
            opt->batch = atoi(value);
        else if (strcmp(argv[i], "--threads") == 0)
            opt->threads = atoi(value);
        else {
            fprintf(stderr, "fmnist-bench: unknown option %s\n", argv[i]);
            exit(2);
        }
        i++;
    }
    if (opt->train < opt->batch || opt->batch < 1 || opt->threads < 1) {
        fprintf(stderr, "fmnist-bench: need --train >= --batch >= 1 and --threads >= 1\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    BenchOptions opt = {
        .model = "small", .fmnist = "./fmnist", .train = 10000, .batch = 64,
        .threads = util_online_cpus(),
    };
    char err[DATASET_ERR_LEN];
    char *dir;
    Dataset train, test;
    Net net;

    parse(argc, argv, &opt);
    if (dataset_locate(opt.data_dir, &dir, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist-bench: %s\n", err);
        return 1;
    }

    double t0 = util_now();
    if (dataset_load(dir, 1, &train, err, sizeof err) != 0
        || dataset_load(dir, 0, &test, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist-bench: %s\n", err);
        return 1;
    }
    double load_seconds = util_now() - t0;

    if (net_create(&net, opt.model, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist-bench: %s\n", err);
        return 2;
    }
    double train_flops = 6.0 * net_forward_macs(&net);
    double peak = bench_peak_gflops();

    printf("model %s (%s)\n", opt.model, net.spec);
    printf("training step: %.1f MFLOP per image; FP32 peak %.1f GFLOP/s per core (FMA loop)\n",
           train_flops / 1e6, peak);
    printf("data load: %.3f s for the four files\n\n", load_seconds);
    printf("%-8s %12s %12s %10s %10s\n", "threads", "train img/s", "eval img/s",
           "GFLOP/s", "% of peak");

    int counts[2] = { 1, opt.threads };
    double first = 0;
    for (int i = 0; i < (opt.threads > 1 ? 2 : 1); i++) {
        Throughput tp;
        if (measure(&opt, counts[i], &train, &test, &tp) != 0)
            return 1;
        double gflops = tp.train_ips * train_flops / 1e9;
        printf("%-8d %12.0f %12.0f %10.1f %9.1f%%\n", counts[i], tp.train_ips,
               tp.eval_ips, gflops, 100.0 * gflops / (peak * counts[i]));
        if (i == 0)
            first = tp.train_ips;
        else
            printf("scaling 1 -> %d threads: %.2fx\n", counts[i], tp.train_ips / first);
    }

    double rss = default_run_rss(&opt);
    if (rss >= 0)
        printf("peak resident memory of a default run: %.0f MiB\n", rss);
    else
        printf("peak resident memory: could not run %s (use --fmnist PATH)\n", opt.fmnist);

    net_free(&net);
    dataset_free(&train);
    dataset_free(&test);
    free(dir);
    return 0;
}
