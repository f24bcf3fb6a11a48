/*
 * fmnist: command-line entry point.
 *
 * Parses the options, loads the data and checks every file before the
 * terminal is touched, then runs the trainer in the background and either
 * the curses interface (when stdout is a terminal) or a headless loop that
 * prints one line per epoch. Exit status: 0 success, 1 bad data, checkpoint
 * or training failure, 2 usage error, 128 + signal number when stopped by
 * SIGINT or SIGTERM.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "metrics.h"
#include "net.h"
#include "optim.h"
#include "trainer.h"
#include "tui.h"
#include "util.h"

#define LOG_HEADER "epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec"

typedef struct {
    const char *data_dir;
    const char *spec;
    const char *save_path;
    const char *load_path;
    const char *log_path;
    int epochs;
    int epochs_given;
    int batch;
    int optim;
    int optim_given;
    float lr;
    uint64_t seed;
    int threads;
    int train_limit;
    int headless;
    int eval;
    int ascii;
    int no_color;
} Options;

/* State shared with the per-epoch callback, which runs on the trainer
 * thread. */
typedef struct {
    atomic_int print_lines;  /* headless: print one line per epoch */
    FILE *log;               /* CSV log, or NULL */
    int epochs;
} EpochSink;

static volatile sig_atomic_t quit_signal;

static void on_quit_signal(int sig)
{
    quit_signal = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
"Usage: fmnist [OPTION]...\n"
"Train a convolutional network on Fashion-MNIST and explore its predictions\n"
"in the terminal. Pixels are normalised to [0, 1] (value / 255).\n"
"\n"
"Data:\n"
"  -d, --data=DIR         directory holding the four IDX files (default:\n"
"                         $FMNIST_DATA, ./data, " DATASET_SYSTEM_DIR ")\n"
"      --train-limit=N    train on the first N training images only\n"
"\n"
"Model and training:\n"
"  -m, --model=SPEC       network spec or preset name: default, small, tf\n"
"                         (spec syntax in fmnist(1))\n"
"  -e, --epochs=N         epochs to train (default 5; 0 with --load only\n"
"                         explores the loaded model)\n"
"  -b, --batch=N          samples per batch (default 64)\n"
"  -o, --optimizer=NAME   sgd (momentum 0.9) or adam (default adam)\n"
"  -l, --lr=RATE          learning rate (default 0.001 for adam, 0.01 for sgd)\n"
"  -s, --seed=N           random seed for initialisation, shuffling and\n"
"                         dropout (default 1)\n"
"  -j, --threads=N        worker threads (default: the online CPUs)\n"
"\n"
"Files:\n"
"      --save=FILE        write a checkpoint after every epoch\n"
"      --load=FILE        resume training from a checkpoint\n"
"      --log=FILE         append one CSV line per epoch\n"
"      --eval             with --load: print test accuracy, per-class\n"
"                         precision, recall and F1 and the confusion matrix\n"
"\n"
"Interface:\n"
"      --headless         print one line per epoch instead of the terminal UI\n"
"                         (the default when stdout is not a terminal)\n"
"      --ascii            draw with ASCII characters only\n"
"      --no-color         do not use colours (also when NO_COLOR is set)\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Keys in the terminal UI: Tab focus, arrows move, Enter opens a confusion\n"
"cell, Esc all images, p pause, s save, ? help, q quit.\n");
}

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("fmnist: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'fmnist --help' for more information.\n", stderr);
    exit(2);
}

/* Parses TEXT as an integer in [MIN, MAX] for option NAME or exits with a
 * usage error. */
static long parse_long(const char *name, const char *text, long min, long max)
{
    char *end;

    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        usage_error("invalid value '%s' for --%s: expected an integer from "
                    "%ld to %ld", text, name, min, max);
    return value;
}

static float parse_rate(const char *text)
{
    char *end;

    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value > 0 && value < 10))
        usage_error("invalid value '%s' for --lr: expected a number above 0 "
                    "and below 10", text);
    return (float)value;
}

static void parse_options(int argc, char **argv, Options *opt)
{
    enum { OPT_TRAIN_LIMIT = 256, OPT_SAVE, OPT_LOAD, OPT_LOG, OPT_EVAL,
           OPT_HEADLESS, OPT_ASCII, OPT_NO_COLOR };
    static const struct option longopts[] = {
        { "data", required_argument, NULL, 'd' },
        { "train-limit", required_argument, NULL, OPT_TRAIN_LIMIT },
        { "model", required_argument, NULL, 'm' },
        { "epochs", required_argument, NULL, 'e' },
        { "batch", required_argument, NULL, 'b' },
        { "optimizer", required_argument, NULL, 'o' },
        { "lr", required_argument, NULL, 'l' },
        { "seed", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 'j' },
        { "save", required_argument, NULL, OPT_SAVE },
        { "load", required_argument, NULL, OPT_LOAD },
        { "log", required_argument, NULL, OPT_LOG },
        { "eval", no_argument, NULL, OPT_EVAL },
        { "headless", no_argument, NULL, OPT_HEADLESS },
        { "ascii", no_argument, NULL, OPT_ASCII },
        { "no-color", no_argument, NULL, OPT_NO_COLOR },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    while ((c = getopt_long(argc, argv, "d:m:e:b:o:l:s:j:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': opt->data_dir = optarg; break;
        case OPT_TRAIN_LIMIT:
            opt->train_limit = (int)parse_long("train-limit", optarg, 1, INT_MAX);
            break;
        case 'm': opt->spec = optarg; break;
        case 'e':
            opt->epochs = (int)parse_long("epochs", optarg, 0, 100000);
            opt->epochs_given = 1;
            break;
        case 'b': opt->batch = (int)parse_long("batch", optarg, 1, 65536); break;
        case 'o':
            opt->optim = optim_parse(optarg);
            opt->optim_given = 1;
            if (opt->optim < 0)
                usage_error("invalid value '%s' for --optimizer: expected sgd "
                            "or adam", optarg);
            break;
        case 'l': opt->lr = parse_rate(optarg); break;
        case 's': opt->seed = (uint64_t)parse_long("seed", optarg, 0, LONG_MAX); break;
        case 'j': opt->threads = (int)parse_long("threads", optarg, 1, 256); break;
        case OPT_SAVE: opt->save_path = optarg; break;
        case OPT_LOAD: opt->load_path = optarg; break;
        case OPT_LOG: opt->log_path = optarg; break;
        case OPT_EVAL: opt->eval = 1; break;
        case OPT_HEADLESS: opt->headless = 1; break;
        case OPT_ASCII: opt->ascii = 1; break;
        case OPT_NO_COLOR: opt->no_color = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V':
            printf("fmnist %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            fputs("Try 'fmnist --help' for more information.\n", stderr);
            exit(2);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (opt->eval && opt->load_path == NULL)
        usage_error("--eval needs a trained model: add --load FILE");
    if (opt->eval) {
        if (opt->epochs_given && opt->epochs > 0)
            usage_error("--eval evaluates a saved model and cannot train: "
                        "drop --epochs or --eval");
        opt->epochs = 0;
    }
}

/* Writes one CSV line, adding the header first when the file is empty. */
static void log_epoch(FILE *log, const EpochRecord *rec)
{
    fprintf(log, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", rec->epoch,
            rec->train_loss, rec->train_acc, rec->test_loss, rec->test_acc,
            rec->seconds, rec->samples_per_sec);
    fflush(log);
}

static void on_epoch(const EpochRecord *rec, void *ctx)
{
    EpochSink *sink = ctx;

    if (sink->log != NULL)
        log_epoch(sink->log, rec);
    if (atomic_load(&sink->print_lines)) {
        printf("epoch %d/%d  train_loss %.4f  train_acc %.4f  test_loss %.4f  "
               "test_acc %.4f  %.1fs  %.0f img/s\n",
               rec->epoch, sink->epochs, rec->train_loss, rec->train_acc,
               rec->test_loss, rec->test_acc, rec->seconds,
               rec->samples_per_sec);
        fflush(stdout);
    }
}

static FILE *open_log(const char *path)
{
    FILE *log = fopen(path, "a");

    if (log == NULL) {
        fprintf(stderr, "fmnist: cannot open log file %s: %s\n", path,
                strerror(errno));
        exit(1);
    }
    if (ftell(log) == 0) {
        fputs(LOG_HEADER "\n", log);
        fflush(log);
    }
    return log;
}

static void load_data(const Options *opt, int need_train, Dataset *train,
                      Dataset *test)
{
    char err[DATASET_ERR_LEN];
    char *dir = NULL;

    if (dataset_locate(opt->data_dir, &dir, err, sizeof err) != 0
        || (need_train && dataset_load(dir, 1, train, err, sizeof err) != 0)
        || dataset_load(dir, 0, test, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist: %s\n", err);
        exit(1);
    }
    free(dir);
    if (need_train && opt->train_limit > train->count) {
        fprintf(stderr, "fmnist: --train-limit %d is larger than the %d "
                "training images; use a value from 1 to %d\n",
                opt->train_limit, train->count, train->count);
        exit(2);
    }
}

static void print_eval(Trainer *tr)
{
    TrainerStatus *st = xmalloc(sizeof *st);
    ClassMetrics cm[DATASET_CLASSES];

    trainer_evaluate(tr);
    trainer_get_status(tr, st);
    metrics_per_class(st->confusion, cm);

    printf("model: %s\n", trainer_net(tr)->spec);
    printf("test accuracy: %.4f  test loss: %.4f\n\n", st->test_acc, st->test_loss);
    printf("%-12s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
    for (int i = 0; i < DATASET_CLASSES; i++)
        printf("%-12s %9.4f %9.4f %9.4f %8ld\n", dataset_class_names[i],
               cm[i].precision, cm[i].recall, cm[i].f1, cm[i].support);

    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-6s", "");
    for (int j = 0; j < DATASET_CLASSES; j++)
        printf("%6s", dataset_class_short[j]);
    putchar('\n');
    for (int i = 0; i < DATASET_CLASSES; i++) {
        printf("%-6s", dataset_class_short[i]);
        for (int j = 0; j < DATASET_CLASSES; j++)
            printf("%6ld", st->confusion[i][j]);
        putchar('\n');
    }
    free(st);
}

/* Waits for the trainer to finish, polling the quit flag ten times a
 * second. Returns the final state. */
static TrainerState wait_headless(Trainer *tr, TrainerStatus *st)
{
    const struct timespec tick = { 0, 100 * 1000 * 1000 };
    int stop_sent = 0;

    for (;;) {
        trainer_get_status(tr, st);
        if (st->state == TRAINER_DONE || st->state == TRAINER_FAILED)
            return st->state;
        if (quit_signal && !stop_sent) {
            trainer_request_stop(tr);
            stop_sent = 1;
        }
        nanosleep(&tick, NULL);
    }
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
    Options opt = {
        .epochs = 5, .batch = 64, .optim = OPTIM_ADAM, .seed = 1,
    };
    Dataset train = { 0 }, test = { 0 };
    EpochSink sink = { .log = NULL };
    char err[TRAINER_ERR_LEN];
    int status = 0;

    setlocale(LC_ALL, "");
    parse_options(argc, argv, &opt);
    if (opt.threads == 0)
        opt.threads = util_online_cpus();
    if (!opt.headless && !opt.eval && !isatty(STDOUT_FILENO))
        opt.headless = 1;

    load_data(&opt, opt.epochs > 0, &train, &test);
    if (opt.log_path != NULL)
        sink.log = open_log(opt.log_path);
    atomic_store(&sink.print_lines, opt.headless);

    TrainerConfig cfg = {
        .spec = opt.spec, .optim = (OptimKind)opt.optim,
        .optim_given = opt.optim_given, .lr = opt.lr,
        .epochs = opt.epochs, .batch = opt.batch, .seed = opt.seed,
        .threads = opt.threads, .train_limit = opt.train_limit,
        .save_path = opt.save_path, .load_path = opt.load_path,
        .on_epoch = on_epoch, .ctx = &sink,
    };
    Trainer *tr = trainer_create(&cfg, opt.epochs > 0 ? &train : NULL, &test,
                                 err, sizeof err);
    if (tr == NULL) {
        fprintf(stderr, "fmnist: %s\n", err);
        return 1;
    }

    TrainerStatus *st = xmalloc(sizeof *st);
    trainer_get_status(tr, st);
    sink.epochs = st->epochs;

    if (opt.eval) {
        print_eval(tr);
        goto done;
    }

    install_signals();
    if (opt.headless)
        fprintf(stderr, "fmnist: training %s for %d epochs on %d threads\n",
                trainer_net(tr)->spec, opt.epochs, opt.threads);
    if (trainer_start(tr) != 0) {
        fprintf(stderr, "fmnist: cannot start the training thread\n");
        status = 1;
        goto done;
    }

    if (!opt.headless) {
        TuiOptions tui = {
            .ascii = opt.ascii,
            .no_color = opt.no_color || getenv("NO_COLOR") != NULL,
            .quit_signal = &quit_signal,
        };
        char tui_err[256];
        if (tui_run(tr, &test, &tui, tui_err, sizeof tui_err) != 0) {
            fprintf(stderr, "fmnist: %s; continuing without the terminal UI\n",
                    tui_err);
            atomic_store(&sink.print_lines, 1);
            opt.headless = 1;
        }
    }

    if (opt.headless)
        wait_headless(tr, st);
    trainer_request_stop(tr);
    trainer_join(tr);
    trainer_get_status(tr, st);
    if (st->state == TRAINER_FAILED) {
        fprintf(stderr, "fmnist: training failed: %s\n", st->message);
        status = 1;
    } else if (quit_signal) {
        status = 128 + quit_signal;
    }

done:
    free(st);
    trainer_free(tr);
    if (sink.log != NULL)
        fclose(sink.log);
    dataset_free(&train);
    dataset_free(&test);
    return status;
}
