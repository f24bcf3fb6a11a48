/*
 * fmnist-bench: measures a network on the real data. It reports
 *   - each layer's forward and backward time over one batch, computed the
 *     way the trainer computes it, with the layer's GFLOP/s and their
 *     fraction of this machine's measured FP32 peak;
 *   - training and evaluation images per second through the trainer, for
 *     one thread and for all threads (or for one given count only);
 *   - the time to load the four data files;
 *   - the peak resident memory of a default run of the fmnist program.
 *
 * Training throughput comes from the trainer itself (one epoch over
 * --train images at --batch samples per batch), so it includes gathering,
 * the gradient reduction and the optimiser step, as a user's run does.
 * A training step counts as 3 x 2 x the forward multiply-adds per image.
 * The per-layer table keeps each layer's fastest of --repeat runs on the
 * monotonic clock, because the fastest run is the one least disturbed by
 * other processes that share the machine.
 *
 * Usage: see usage() below or run fmnist-bench --help.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dataset.h"
#include "gemm.h"
#include "net.h"
#include "trainer.h"
#include "util.h"
#include "winograd.h"

/* Untimed profile runs before the timed ones: they fault in the scratch
 * buffers and warm the caches. */
#define PROFILE_WARMUP 3

typedef struct {
    const char *model;
    const char *data_dir;
    const char *fmnist;
    int train;
    int batch;
    int threads;
    int only_threads;     /* measure --threads alone, not 1 as well */
    int repeat;           /* timed runs of the per-layer profile */
    int throughput_only;  /* skip the profile and the memory run */
} BenchOptions;

typedef struct {
    double train_ips;
    double eval_ips;
    int threads;      /* threads the trainer used, which may be fewer */
} Throughput;

static void usage(FILE *out)
{
    fputs("Usage: fmnist-bench [OPTION]...\n"
          "Measure per-layer speed, training and evaluation throughput, "
          "data load time\nand peak memory of fmnist on this machine.\n\n"
          "  --model SPEC        network spec or preset (default small)\n"
          "  --train N           training images in the timed epoch "
          "(default 10000)\n"
          "  --batch N           samples per batch (default 64)\n"
          "  --threads N         thread count to measure besides 1 "
          "(default: online CPUs)\n"
          "  --only-threads      measure --threads only, not 1 thread too\n"
          "  --repeat N          timed runs of the per-layer profile "
          "(default 20)\n"
          "  --throughput-only   skip the per-layer profile and the memory "
          "run\n"
          "  --data DIR          directory of the four IDX files\n"
          "  --fmnist PATH       program whose default run is measured for "
          "memory\n"
          "                      (default ./fmnist)\n"
          "  --help              show this help and exit\n", out);
}

/* Parses the value of OPTION as an integer from MIN to MAX, or exits 2. */
static int parse_count(const char *option, const char *value, int min,
                       int max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(value, &end, 10);
    if (errno != 0 || *end != '\0' || end == value || v < min || v > max) {
        fprintf(stderr, "fmnist-bench: %s: invalid value \"%s\", expected "
                "an integer from %d to %d\n", option, value, min, max);
        exit(2);
    }
    return (int)v;
}

static void parse(int argc, char **argv, BenchOptions *opt)
{
    enum { OPT_ONLY_THREADS = 256, OPT_THROUGHPUT_ONLY, OPT_HELP };
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},
        {"fmnist", required_argument, NULL, 'f'},
        {"train", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'},
        {"repeat", required_argument, NULL, 'r'},
        {"only-threads", no_argument, NULL, OPT_ONLY_THREADS},
        {"throughput-only", no_argument, NULL, OPT_THROUGHPUT_ONLY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    /* getopt_long reports unknown options and missing values itself,
     * after the program name. */
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': opt->model = optarg; break;
        case 'd': opt->data_dir = optarg; break;
        case 'f': opt->fmnist = optarg; break;
        case 'n':
            opt->train = parse_count("--train", optarg, 1, 100000000);
            break;
        case 'b':
            opt->batch = parse_count("--batch", optarg, 1, TRAINER_MAX_BATCH);
            break;
        case 'j':
            opt->threads = parse_count("--threads", optarg, 1,
                                       TRAINER_MAX_THREADS);
            break;
        case 'r':
            opt->repeat = parse_count("--repeat", optarg, 1, 100000);
            break;
        case OPT_ONLY_THREADS: opt->only_threads = 1; break;
        case OPT_THROUGHPUT_ONLY: opt->throughput_only = 1; break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "Try 'fmnist-bench --help' for the options.\n");
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fmnist-bench: unexpected argument \"%s\"; try "
                "'fmnist-bench --help'\n", argv[optind]);
        exit(2);
    }
    if (opt->train < opt->batch) {
        fprintf(stderr, "fmnist-bench: --train %d is smaller than --batch "
                "%d; use at least one batch of images\n", opt->train,
                opt->batch);
        exit(2);
    }
}

/* ------------------------------------------------------------ memory */

/*
 * Runs a default headless epoch of PROGRAM on a subset in a child process
 * and returns its peak resident set in MiB, or -1. The whole data set is
 * loaded whatever the subset, so the peak is that of a full default run.
 * Linux carries the peak over exec from the forked copy of this process,
 * so main calls this before it loads anything. The child's messages,
 * which describe the default network and not the one measured here, are
 * shown only when the run fails.
 */
static double default_run_rss(const char *program, const char *data_dir)
{
    pid_t pid;
    int status, ok;
    struct rusage ru;
    FILE *messages = tmpfile();

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        if (messages != NULL)
            fclose(messages);
        return -1;
    }
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        if (messages != NULL)
            dup2(fileno(messages), STDERR_FILENO);
        if (data_dir != NULL)
            execl(program, program, "--headless", "--epochs", "1",
                  "--train-limit", "2000", "--data", data_dir, (char *)NULL);
        else
            execl(program, program, "--headless", "--epochs", "1",
                  "--train-limit", "2000", (char *)NULL);
        fprintf(stderr, "fmnist-bench: cannot run %s: %s\n", program,
                strerror(errno));
        _exit(127);
    }
    ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status)
         && WEXITSTATUS(status) == 0;
    if (messages != NULL) {
        char line[512];

        rewind(messages);
        while (!ok && fgets(line, sizeof line, messages) != NULL)
            fputs(line, stderr);
        fclose(messages);
    }
    if (!ok || getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return -1;
    return ru.ru_maxrss / 1024.0;
}

/* Returns the 1-minute load average, or -1 where /proc/loadavg cannot be
 * read. */
static double load_average(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double load = -1.0;

    if (f == NULL)
        return -1.0;
    if (fscanf(f, "%lf", &load) != 1)
        load = -1.0;
    fclose(f);
    return load;
}

/* Prints LOAD, the load average read before the benchmark started, so
 * that figures from a busy machine can be recognised. */
static void print_load_average(double load)
{
    if (load < 0.0)
        return;
    printf("load average before the run: %.2f on %ld online CPUs%s\n", load,
           sysconf(_SC_NPROCESSORS_ONLN),
           load >= 0.5 ? "; other work lowers these figures" : "");
}

/* Warns when the build is instrumented by AddressSanitizer or
 * ThreadSanitizer, which slow the kernels and the peak loops unevenly,
 * so that no figure means much. GCC marks no UBSan-only build. */
static void print_sanitizer_warning(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("warning: this build has a sanitizer, whose checks slow it "
           "down unevenly; its figures do not measure fmnist\n");
#endif
}

/* ------------------------------------------------------------ profile */

/* Writes a short name for layer L, such as "conv5x5x32:same" or
 * "dense1024", into BUF. */
static void layer_name(const Layer *l, char *buf, size_t len)
{
    switch (l->kind) {
    case LAYER_CONV:
        snprintf(buf, len, "conv%dx%dx%d%s", l->k, l->k, l->out_c,
                 l->pad > 0 ? ":same" : "");
        break;
    case LAYER_POOL:
        snprintf(buf, len, "pool2");
        break;
    case LAYER_FLATTEN:
        snprintf(buf, len, "flatten");
        break;
    case LAYER_DENSE:
        snprintf(buf, len, "dense%d", l->out_c);
        break;
    case LAYER_RELU:
        snprintf(buf, len, "relu");
        break;
    case LAYER_DROPOUT:
        snprintf(buf, len, "dropout%g", (double)l->rate);
        break;
    case LAYER_BN:
        snprintf(buf, len, "bn");
        break;
    default:
        snprintf(buf, len, "layer kind %d", (int)l->kind);
        break;
    }
}

/* Names the convolutions of NET that run passes through Winograd, whose
 * rates in the table count the multiply-adds of a direct convolution,
 * and those that pool their output in the same pass, whose times in the
 * table include the pooling's. */
static void print_winograd_layers(const Net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        int flags = net_conv_winograd(l);
        char name[64];

        if (flags == 0)
            continue;
        const char *passes[3];
        int count = 0;

        layer_name(l, name, sizeof name);
        /* The position distinguishes layers with the same spec token. */
        printf("%s (item %d of the spec) uses Winograd F(%dx%d, %dx%d) "
               "for its", name, i + 1, winograd_tile(l->k),
               winograd_tile(l->k), l->k, l->k);
        if (flags & NET_WINO_FORWARD)
            passes[count++] = "forward pass";
        if (flags & NET_WINO_INPUT_GRAD)
            passes[count++] = "input gradient";
        if (flags & NET_WINO_WEIGHT_GRAD)
            passes[count++] = "weight gradient";
        for (int j = 0; j < count; j++) {
            const char *sep = ", ";

            if (j == 0)
                sep = " ";
            else if (j == count - 1)
                sep = " and ";
            printf("%s%s", sep, passes[j]);
        }
        printf("; its GFLOP/s count a direct convolution's work\n");
    }
    for (int i = 0; i < net->n_layers; i++) {
        int pool = net_conv_pool_fused(net, i);
        char name[64];

        if (pool < 0)
            continue;
        layer_name(&net->layers[i], name, sizeof name);
        if (pool == i + 1)
            printf("%s (item %d of the spec) computes item %d in the same "
                   "pass, and its times include it\n", name, i + 1,
                   pool + 1);
        else
            printf("%s (item %d of the spec) computes items %d and %d in "
                   "the same pass, and its times include theirs\n", name,
                   i + 1, i + 2, pool + 1);
    }
}

/* Prints "ms GFLOP/s %peak" for SECONDS of FLOPS work, or only the time
 * when the layer does no multiply-adds. */
static void print_rate(double seconds, double flops, double peak)
{
    double gflops = seconds > 0 ? flops / seconds / 1e9 : 0;

    if (flops > 0)
        printf(" %9.3f %8.1f %6.1f%%", seconds * 1e3, gflops,
               100.0 * gflops / peak);
    else
        printf(" %9.3f %8s %7s", seconds * 1e3, "", "");
}

/*
 * Times every layer of NET over the first BATCH training images on this
 * thread, computed the way the trainer computes a batch (net_profiler_run
 * with shards of TRAINER_SHARD). Prints the fastest of REPEAT runs per
 * layer and pass.
 */
static void profile_layers(const Net *net, const Dataset *train, int batch,
                           int repeat, double peak)
{
    int n = batch < train->count ? batch : train->count;
    int layers = net->n_layers;
    float *images = xmalloc_aligned((size_t)n * DATASET_PIXELS
                                    * sizeof(float));
    NetLayerProfile *run = xcalloc((size_t)layers, sizeof *run);
    NetLayerProfile *best = xcalloc((size_t)layers, sizeof *best);
    NetProfiler *profiler = net_profiler_create(net, n, TRAINER_SHARD);
    double total_fwd = 0, total_bwd = 0, flops_fwd = 0, flops_bwd = 0;
    Rng rng;

    dataset_copy_images(train, 0, n, images);
    rng_seed(&rng, 1);
    for (int r = 0; r < PROFILE_WARMUP + repeat; r++) {
        net_profiler_run(profiler, images, train->labels, &rng, run);
        for (int i = 0; i < layers && r >= PROFILE_WARMUP; i++) {
            if (r == PROFILE_WARMUP
                || run[i].forward_seconds < best[i].forward_seconds) {
                best[i].forward_seconds = run[i].forward_seconds;
                best[i].forward_flops = run[i].forward_flops;
            }
            if (r == PROFILE_WARMUP
                || run[i].backward_seconds < best[i].backward_seconds) {
                best[i].backward_seconds = run[i].backward_seconds;
                best[i].backward_flops = run[i].backward_flops;
            }
        }
    }

    printf("per-layer time for a batch of %d images in shards of %d%s, on "
           "one thread (best of %d runs)\n", n, TRAINER_SHARD,
           net_head_batched(net) ? ", dense head over the whole batch" : "",
           repeat);
    printf("%-18s %9s %8s %7s %9s %8s %7s\n", "layer", "fwd ms", "GFLOP/s",
           "peak", "bwd ms", "GFLOP/s", "peak");
    for (int i = 0; i < layers; i++) {
        char name[64];

        layer_name(&net->layers[i], name, sizeof name);
        printf("%-18s", name);
        print_rate(best[i].forward_seconds, best[i].forward_flops, peak);
        print_rate(best[i].backward_seconds, best[i].backward_flops, peak);
        printf("\n");
        total_fwd += best[i].forward_seconds;
        total_bwd += best[i].backward_seconds;
        flops_fwd += best[i].forward_flops;
        flops_bwd += best[i].backward_flops;
    }
    printf("%-18s", "all layers");
    print_rate(total_fwd, flops_fwd, peak);
    print_rate(total_bwd, flops_bwd, peak);
    printf("\nsum of the fastest layer times: %.0f images/s on one thread, "
           "without the optimiser step\n", n / (total_fwd + total_bwd));
    print_winograd_layers(net);
    printf("\n");

    net_profiler_free(profiler);
    free(best);
    free(run);
    free(images);
}

/* ------------------------------------------------------------ throughput */

static void on_epoch(const EpochRecord *rec, void *ctx)
{
    *(double *)ctx = rec->samples_per_sec;
}

/* Trains one epoch on THREADS threads and then evaluates the test set.
 * Returns 0, or -1 after printing why the trainer failed. */
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
        fprintf(stderr, "fmnist-bench: the training thread did not start\n");
        trainer_free(tr);
        return -1;
    }
    trainer_join(tr);

    TrainerStatus *st = xmalloc(sizeof *st);

    trainer_get_status(tr, st);
    out->threads = st->threads;
    free(st);

    double t0 = util_now();
    trainer_evaluate(tr);
    double eval_seconds = util_now() - t0;

    out->train_ips = train_ips;
    out->eval_ips = test->count / eval_seconds;
    trainer_free(tr);
    return 0;
}

/* A timed training epoch shorter than this gets a note under the
 * table: a second of other work on the machine then moves the figures
 * by a large fraction. */
#define SHORT_EPOCH_SECONDS 0.5

/* Prints the throughput table for 1 and opt->threads threads, or for
 * opt->threads alone. Returns 0 or -1. */
static int report_throughput(const BenchOptions *opt, const Dataset *train,
                             const Dataset *test, double train_flops,
                             double peak, int winograd)
{
    int counts[2] = { 1, opt->threads };
    int first = opt->only_threads || opt->threads == 1 ? 1 : 0;
    double single = 0;
    int short_epoch = 0, over_peak = 0;

    printf("%-8s %12s %12s %10s %10s\n", "threads", "train img/s",
           "eval img/s", "GFLOP/s", "% of peak");
    for (int i = first; i < 2; i++) {
        Throughput tp;

        if (measure(opt, counts[i], train, test, &tp) != 0)
            return -1;
        double gflops = tp.train_ips * train_flops / 1e9;
        /* The row gives the threads that ran: the trainer starts at most
         * one per shard of a batch. */
        if (tp.threads != counts[i])
            printf("note: %d threads asked for, %d used: a batch of %d has "
                   "%d shards of %d images\n", counts[i], tp.threads,
                   opt->batch, (opt->batch + TRAINER_SHARD - 1)
                               / TRAINER_SHARD, TRAINER_SHARD);
        printf("%-8d %12.0f %12.0f %10.1f %9.1f%%\n", tp.threads,
               tp.train_ips, tp.eval_ips, gflops,
               100.0 * gflops / (peak * tp.threads));
        if (gflops > peak * tp.threads)
            over_peak = 1;
        fflush(stdout);
        if (opt->train / tp.train_ips < SHORT_EPOCH_SECONDS)
            short_epoch = 1;
        if (i == 0)
            single = tp.train_ips;
        else if (single > 0)
            printf("scaling 1 -> %d threads: %.2fx\n", tp.threads,
                   tp.train_ips / single);
    }
    if (short_epoch)
        printf("note: a timed epoch took under %.1f s, too short for steady "
               "figures on a busy machine; a larger --train (default "
               "10000) times more\n", SHORT_EPOCH_SECONDS);
    /* The MFLOP per image count every convolution as direct, so a
     * network with Winograd layers can pass the peak. */
    if (over_peak && winograd)
        printf("note: above 100%% of peak because the Winograd layers do "
               "fewer multiplications than the direct convolutions counted "
               "in the MFLOP per image\n");
    else if (over_peak)
        printf("note: above 100%% of peak, so the peak was measured low, "
               "probably while other work ran; run again on a quiet "
               "machine\n");
    return 0;
}

int main(int argc, char **argv)
{
    BenchOptions opt = {
        .model = "small", .fmnist = "./fmnist", .train = 10000, .batch = 64,
        .threads = util_online_cpus(), .repeat = 20,
    };
    char err[DATASET_ERR_LEN];
    char *dir;
    Dataset train, test;
    Net net;
    double rss = -1;
    double load_before = load_average();

    parse(argc, argv, &opt);
    if (net_create(&net, opt.model, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist-bench: %s\n", err);
        return 2;
    }
    if (!opt.throughput_only)
        rss = default_run_rss(opt.fmnist, opt.data_dir);
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
    if (opt.train > train.count) {
        fprintf(stderr, "fmnist-bench: --train %d is more than the %d "
                "training images in %s\n", opt.train, train.count, dir);
        return 2;
    }
    double train_flops = 6.0 * net_forward_macs(&net);
    double peak = bench_peak_gflops(gemm_kernel());
    Rng rng;

    rng_seed(&rng, 1);
    net_init_params(&net, &rng);
    printf("model %s (%s)\n", opt.model, net.spec);
    printf("training step: %.1f MFLOP per image; FP32 peak %.1f GFLOP/s "
           "per core (%s)\n", train_flops / 1e6, peak, bench_peak_method());
    printf("GEMM kernel: %s (FMNIST_GEMM selects auto, avx512, avx2 or "
           "portable)\n", gemm_kernel_name());
    if (gemm_kernel_note() != NULL)
        printf("fmnist-bench: warning: %s\n", gemm_kernel_note());
    printf("data load: %.3f s for the four files\n", load_seconds);
    print_load_average(load_before);
    print_sanitizer_warning();
    printf("\n");

    if (!opt.throughput_only)
        profile_layers(&net, &train, opt.batch, opt.repeat, peak);
    int winograd = 0;

    for (int i = 0; i < net.n_layers; i++)
        if (net_conv_winograd(&net.layers[i]) != 0)
            winograd = 1;
    if (report_throughput(&opt, &train, &test, train_flops, peak,
                          winograd) != 0)
        return 1;

    if (!opt.throughput_only && rss >= 0)
        printf("peak resident memory of a default run: %.0f MiB\n", rss);
    else if (!opt.throughput_only)
        printf("peak resident memory: %s did not run (use --fmnist PATH)\n",
               opt.fmnist);

    net_free(&net);
    dataset_free(&train);
    dataset_free(&test);
    free(dir);
    return 0;
}
