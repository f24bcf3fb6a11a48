/*
 * fmnist: command-line entry point.
 *
 * Parses the options, loads the data and checks every file before the
 * terminal is touched, then runs the trainer in the background and either
 * the curses interface (when stdout is a terminal) or a headless loop that
 * prints one line per epoch. Exit status: 0 success, 1 bad data, checkpoint
 * or training failure or a failed write to stdout, 2 usage error, 128 +
 * signal number when stopped by SIGINT or SIGTERM. After SIGHUP, or when
 * the terminal hangs up, training goes on to the end without the
 * terminal, and messages go to the log.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "augment.h"
#include "checkpoint.h"
#include "dataset.h"
#include "gemm.h"
#include "linequeue.h"
#include "metrics.h"
#include "net.h"
#include "optim.h"
#include "savelock.h"
#include "trainer.h"
#include "tty.h"
#include "tui.h"
#include "util.h"

/* Turns the value of a numeric macro into a string literal. */
#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x) STRINGIFY_VALUE(x)

#define LOG_HEADER "epoch,train_loss,train_acc,test_loss,test_acc,seconds," \
                   "samples_per_sec,val_loss,val_acc,lr"
/* The header of logs written before the last three columns existed. Runs
 * appended to such a log keep its seven columns. */
#define LOG_HEADER_SEVEN "epoch,train_loss,train_acc,test_loss,test_acc," \
                         "seconds,samples_per_sec"

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
    int val_count;
    const char *preset;
    int spec_from_preset;   /* spec is the preset's network, not --model's */
    /* Below, -1 (or a negative decay) means "not given", so that a preset
     * can fill in what the command line leaves open. */
    int batch_given;
    int flip;
    int shift;
    int schedule;
    int lr_step;
    float lr_gamma;
    float weight_decay;
    int decay;
    int headless;
    int eval;
    int ascii;
    int no_color;
    int help;
    int version;
    /* Options given on the command line, for the checks of options that
     * contradict each other. */
    int flip_given;
    int shift_given;
    int lr_given;
    int schedule_given;
    int lr_step_given;
    int lr_gamma_given;
    int weight_decay_given;
    int decay_given;
    int seed_given;
} Options;

/* State shared with the per-epoch and per-save callbacks, which run on
 * the trainer thread. */
typedef struct {
    atomic_int print_lines;  /* headless: print one line per epoch */
    LineQueue *lines;        /* writes the epoch lines to stdout */
    FILE *log;               /* CSV log, or NULL */
    int log_seven;           /* the log has LOG_HEADER_SEVEN's columns */
    int epochs;
    int stderr_is_tty;       /* at startup */
    /* The terminal was let go after a hangup. Set by the main thread. */
    atomic_int detached;
    /* Checkpoint writes that failed since the last one that worked.
     * Guarded by the FILE lock of log (flockfile). */
    int save_failures;
    const char *log_path;
    /* --save is given, so on_save runs right after each on_epoch. */
    int saves_each_epoch;
    /* Set after trainer_create, so that a failed log write can reach the
     * interface's message line. */
    Trainer *trainer;
    /* The first failed write to log, with its reason, and whether the
     * interface still has to show it. Guarded by the FILE lock of log. */
    int log_failed;
    int log_failure_pending;
    char log_error[128];
} EpochSink;

/* Set by the signal handlers, which do nothing else. */
static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t hangup_signal;

static void on_quit_signal(int sig)
{
    quit_signal = sig;
}

static void on_hangup_signal(int sig)
{
    hangup_signal = sig;
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
"                         $FMNIST_DATA, ./data,\n"
"                         " DATASET_SYSTEM_DIR ")\n"
"      --train-limit=N    train on the first N training images only\n"
"      --val=N            hold out the last N training images as a validation\n"
"                         set: never trained on, evaluated after each epoch\n"
"\n"
"Model and training:\n"
"  -m, --model=SPEC       network spec or preset name: default, small, tf,\n"
"                         best (spec syntax in fmnist(1))\n"
"      --preset=NAME      best: 20 epochs of the best network with flips, a\n"
"                         cosine schedule and weight decay; options given on\n"
"                         the command line override its values\n"
"  -e, --epochs=N         epochs to train (default 5; 0 only explores the\n"
"                         --load model, or an untrained one without --load)\n"
"  -b, --batch=N          samples per batch, 1 to " STRINGIFY(TRAINER_MAX_BATCH)
" (default 64)\n"
"  -o, --optimizer=NAME   sgd (momentum 0.9) or adam (default adam)\n"
"  -l, --lr=RATE          learning rate (default 0.001 for adam, 0.01 for sgd)\n"
"  -s, --seed=N           random seed for initialisation, shuffling and\n"
"                         dropout (default 1)\n"
"  -j, --threads=N        worker threads, 1 to "
STRINGIFY(TRAINER_MAX_THREADS) " (default: the online\n"
"                         CPUs); at most one per " STRINGIFY(TRAINER_SHARD)
" samples of a batch\n"
"      --flip             mirror training images left-right at random\n"
"      --shift=N          move training images by up to N pixels each way\n"
"                         (0 to 4, default 0), filling with background\n"
"      --schedule=NAME    learning-rate schedule: constant (default), step,\n"
"                         or cosine (from --lr down to 0 at the last epoch)\n"
"      --lr-step=N        with --schedule step: drop the rate every N epochs\n"
"                         (default 10)\n"
"      --lr-gamma=F       with --schedule step: multiply the rate by F at\n"
"                         each drop (default 0.1)\n"
"      --weight-decay=F   decay of convolution and dense weights (default 0)\n"
"      --decay-mode=MODE  with --weight-decay: decoupled (default): w -= lr*F*w\n"
"                         at each step; l2: F*w is added to the gradient\n"
"\n"
"Files:\n"
"      --save=FILE        write a checkpoint after every epoch; FILE must be\n"
"                         a regular file or new (not a symbolic link)\n"
"      --load=FILE        resume training from a checkpoint (--seed then\n"
"                         has no effect)\n"
"      --log=FILE         append one CSV line per epoch; '# fmnist:' lines\n"
"                         mark a new or resumed run, failed checkpoint\n"
"                         writes and, after a hangup, the messages\n"
"      --eval             with --load: print test accuracy, per-class\n"
"                         precision, recall and F1 and the confusion matrix;\n"
"                         options that train or save are rejected\n"
"\n"
"Interface:\n"
"      --headless         print one line per epoch instead of the terminal UI\n"
"                         (the default when stdout is not a terminal)\n"
"      --ascii            draw with ASCII characters only\n"
"      --no-color         do not use colours (also when NO_COLOR is set)\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Exit status: 0 done, 1 bad data or checkpoint or a failed run, 2 usage\n"
"error, 130 or 143 stopped by SIGINT or SIGTERM.\n"
"\n"
"Keys in the terminal UI: Tab focus, arrows move, 1 2 3 or v views (training,\n"
"mistakes, per-class), Enter opens an entry, a confusion cell or a class's\n"
"mistakes, Esc all images, t training images, o occlusion overlay, + and -\n"
"learning rate, x stop after the epoch, p pause, s save, ? help, q quit.\n");
}

/* Returns a malloc'd copy of TEXT with characters that are not printable
 * escaped as util_escape_unprintable does. File names in messages come
 * from the command line, and escaping them keeps a name from breaking
 * the line or sending a control sequence to the terminal. */
static char *escape_alloc(const char *text)
{
    size_t len = util_escape_unprintable(text, NULL, 0);
    char *escaped = xmalloc(len + 1);

    util_escape_unprintable(text, escaped, len + 1);
    return escaped;
}

/* Returns the message that FMT and AP format, malloc'd and escaped by
 * escape_alloc. */
static char *format_escaped(const char *fmt, va_list ap)
{
    va_list copy;

    va_copy(copy, ap);
    int len = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *text = xmalloc(len > 0 ? (size_t)len + 1 : 1);

    text[0] = '\0';
    if (len > 0)
        vsnprintf(text, (size_t)len + 1, fmt, ap);
    char *escaped = escape_alloc(text);
    free(text);
    return escaped;
}

/* Writes "fmnist: MESSAGE" as one line to OUT, escaped by
 * format_escaped. */
static void print_message_v(FILE *out, const char *fmt, va_list ap)
{
    char *escaped = format_escaped(fmt, ap);

    fprintf(out, "fmnist: %s\n", escaped);
    free(escaped);
}

__attribute__((format(printf, 2, 3)))
static void print_message(FILE *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_message_v(out, fmt, ap);
    va_end(ap);
}

/* Writes TEXT, a message of several lines, to OUT with "fmnist: " before
 * the first line. Each line is escaped by escape_alloc on its own, so
 * the line breaks stay. */
static void print_message_lines(FILE *out, const char *text)
{
    const char *prefix = "fmnist: ";

    for (;;) {
        size_t len = strcspn(text, "\n");
        char *line = xmalloc(len + 1);

        memcpy(line, text, len);
        line[len] = '\0';
        char *escaped = escape_alloc(line);
        fprintf(out, "%s%s\n", prefix, escaped);
        free(escaped);
        free(line);
        if (text[len] == '\0')
            return;
        text += len + 1;
        prefix = "";
    }
}

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_message_v(stderr, fmt, ap);
    va_end(ap);
    fputs("Try 'fmnist --help' for more information.\n", stderr);
    exit(2);
}

/* The values a numeric option takes. An excluded bound is itself out of
 * range, as 10 is for --lr. */
typedef struct {
    double min, max;
    int integer;            /* whole numbers only */
    int exclude_min, exclude_max;
    int or_zero;            /* 0 is valid too, below MIN */
} NumberRange;

/*
 * The smallest nonzero value of --lr, --lr-gamma and --weight-decay:
 * FLT_MIN, the smallest normal float (about 1.18e-38), rounded up to two
 * digits so that the bound in the message is valid when typed. Below
 * FLT_MIN a float is subnormal, and the update on x86 reads subnormal
 * numbers as zero (see optim.h), so such a rate would train nothing and
 * give no sign of it. The step factor and the decay get the same bound.
 * Rates far above it change no weight either: with Adam, --lr 1e-37 left
 * the test loss of two epochs unchanged. But where useful rates start
 * depends on the model, so the bound rejects little more than the values
 * that are not normal floats.
 */
#define FLOAT_OPTION_MIN 1.2e-38

/* The largest --seed. Up to 2^53 - 1 every integer is exact as a double,
 * the type parse_number returns. */
#define SEED_MAX 9007199254740991.0

static int in_range(double value, const NumberRange *range)
{
    if (range->or_zero && value == 0)
        return 1;
    return value >= range->min && value <= range->max
           && !(range->exclude_min && value == range->min)
           && !(range->exclude_max && value == range->max);
}

__attribute__((noreturn))
static void number_error(const char *name, const char *text,
                         const NumberRange *range)
{
    const char *kind = range->integer ? "an integer"
                       : range->or_zero ? "0 or a number" : "a number";
    char excluded[80] = "";

    if (range->exclude_min && range->exclude_max)
        snprintf(excluded, sizeof excluded, ", excluding %g and %g",
                 range->min, range->max);
    else if (range->exclude_min || range->exclude_max)
        snprintf(excluded, sizeof excluded, ", excluding %g",
                 range->exclude_min ? range->min : range->max);
    /* %.0f prints every integer bound in full, up to SEED_MAX. */
    usage_error(range->integer
                ? "invalid value '%s' for --%s: expected %s from %.0f to %.0f%s"
                : "invalid value '%s' for --%s: expected %s from %g to %g%s",
                text, name, kind, range->min, range->max, excluded);
}

/*
 * Parses TEXT, the value of option --NAME, as a number in RANGE or exits
 * with a usage error. Every numeric option goes through here, so all
 * take the same syntax: an optional sign, then decimal digits, with a
 * fraction and an exponent only where RANGE is not integer. Spaces, hex,
 * "inf" and "nan" are rejected.
 */
static double parse_number(const char *name, const char *text,
                           NumberRange range)
{
    const char *digits = text + (text[0] == '+' || text[0] == '-');
    char *end;
    double value;

    if ((!isdigit((unsigned char)digits[0])
         && !(!range.integer && digits[0] == '.'
              && isdigit((unsigned char)digits[1])))
        || strpbrk(text, "xX") != NULL)
        number_error(name, text, &range);
    errno = 0;
    if (range.integer)
        value = (double)strtoll(text, &end, 10);
    else
        value = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !in_range(value, &range))
        number_error(name, text, &range);
    return value;
}

static int parse_int(const char *name, const char *text, int min, int max)
{
    NumberRange range = { .min = min, .max = max, .integer = 1 };

    return (int)parse_number(name, text, range);
}

/* Parses a float option. The check is repeated after rounding to float,
 * where 1e-50 becomes 0 and 0.9999999999 becomes 1, against the bounds
 * rounded to float, so that a bound such as 1.2e-38 is valid itself. */
static float parse_float(const char *name, const char *text,
                         NumberRange range)
{
    float value = (float)parse_number(name, text, range);
    NumberRange rounded = range;

    rounded.min = (float)range.min;
    rounded.max = (float)range.max;
    if (!in_range(value, &rounded))
        number_error(name, text, &range);
    return value;
}

/* The training recipe of a --preset. */
typedef struct {
    const char *name;
    const char *spec;
    int epochs;
    int batch;
    OptimKind optim;
    float lr;
    ScheduleKind schedule;
    int flip;
    int shift;
    float weight_decay;
    DecayKind decay;
} Preset;

/* "best" is judged by its accuracy on a validation split (--val 10000, the
 * last 10,000 training images), not on the test set. docs/BENCHMARKS.md
 * records both runs. */
static const Preset presets[] = {
    { "best", "best", 20, 64, OPTIM_ADAM, 0.002f, SCHEDULE_COSINE, 1, 0,
      0.05f, DECAY_DECOUPLED },
};

/* Fills the options that the command line left open from the preset. */
static void apply_preset(Options *opt)
{
    const Preset *p = NULL;

    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(opt->preset, presets[i].name) == 0)
            p = &presets[i];
    if (p == NULL)
        usage_error("invalid value '%s' for --preset: expected best",
                    opt->preset);
    if (opt->spec == NULL) {
        opt->spec = p->spec;
        opt->spec_from_preset = 1;
    }
    if (!opt->epochs_given)
        opt->epochs = p->epochs;
    if (!opt->batch_given)
        opt->batch = p->batch;
    if (!opt->optim_given)
        opt->optim = p->optim;
    if (opt->lr <= 0 && (!opt->optim_given || opt->optim == (int)p->optim))
        opt->lr = p->lr;
    if (opt->schedule < 0)
        opt->schedule = p->schedule;
    if (opt->flip < 0)
        opt->flip = p->flip;
    if (opt->shift < 0)
        opt->shift = p->shift;
    if (opt->weight_decay < 0)
        opt->weight_decay = p->weight_decay;
    if (opt->decay < 0)
        opt->decay = p->decay;
}

/* Sets the defaults of the options that neither the command line nor a
 * preset set. */
static void apply_defaults(Options *opt)
{
    if (opt->schedule < 0)
        opt->schedule = SCHEDULE_CONSTANT;
    if (opt->flip < 0)
        opt->flip = 0;
    if (opt->shift < 0)
        opt->shift = 0;
    if (opt->weight_decay < 0)
        opt->weight_decay = 0.0f;
    if (opt->decay < 0)
        opt->decay = DECAY_DECOUPLED;
}

/* Appends the printf-style text to the NUL-terminated OUT of SIZE bytes,
 * cutting it where OUT is full. */
__attribute__((format(printf, 3, 4)))
static void append(char *out, size_t size, const char *fmt, ...)
{
    size_t len = strlen(out);
    va_list ap;

    if (len + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(out + len, size - len, fmt, ap);
    va_end(ap);
}

/*
 * Writes to OUT where s saves when the interface trains without --save
 * and LOAD_PATH, the file s would write, is read-only: a fresh name in
 * the current directory, or nowhere when that is read-only too. Then the
 * user can restart with --save before training much. OUT is ""
 * otherwise.
 */
static int describe_read_only_load(const Options *opt,
                                   const char *load_path, char *out,
                                   size_t len)
{
    char reason[PATH_MAX + 64];

    out[0] = '\0';
    if (opt->save_path != NULL || load_path == NULL || opt->epochs == 0
        || opt->headless || opt->eval
        || !util_read_only(load_path, reason, sizeof reason))
        return 0;
    /* "." is checked as a file and as its own directory. */
    if (util_read_only(".", NULL, 0)) {
        snprintf(out, len, "%s, and the current directory is read-only "
                 "too, so s cannot save; quit and start again with --save "
                 "FILE", reason);
        return 2;
    }
    snprintf(out, len, "%s, so s saves to a new file such as "
             "fmnist.ckpt; --save FILE chooses the file", reason);
    return 1;
}

/*
 * Writes a warning to OUT when the run trains a --load checkpoint whose
 * model is a preset's network, without --preset, and its schedule,
 * weight decay, decay mode or augmentation differ from the preset's. A
 * checkpoint does not store them, so a preset's run resumed without
 * --preset would quietly go on with the defaults. A checkpoint of that
 * network trained with --model is warned about too, since the file
 * cannot tell the two apart. SCREEN gets a shorter form without the
 * values and the file name, for the interface's status line. Both are ""
 * when there is nothing to warn about.
 */
static void describe_recipe_gap(const Options *opt, const char *load_spec,
                                char *out, size_t size, char *screen,
                                size_t screen_size)
{
    const char *name = net_preset_name(load_spec);
    const Preset *p = NULL;
    char items[4][48];
    const char *fields[4];  /* what each item sets, without its value */
    char used[192] = "";
    char differ[64] = "";
    int n = 0;

    out[0] = '\0';
    screen[0] = '\0';
    if (opt->preset != NULL || opt->epochs == 0 || name == NULL)
        return;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name, presets[i].spec) == 0)
            p = &presets[i];
    if (p == NULL)
        return;

    /* The settings of this run that differ from the preset's. */
    if (opt->schedule != (int)p->schedule) {
        fields[n] = "schedule";
        snprintf(items[n++], sizeof items[0], "a %s schedule",
                 schedule_name((ScheduleKind)opt->schedule));
    }
    /* The decay mode matters only with weight decay, and --decay-mode
     * without it is a usage error. */
    int mode_differs = opt->weight_decay > 0 && p->weight_decay > 0
                       && opt->decay != (int)p->decay;
    if (opt->weight_decay != p->weight_decay || mode_differs)
        fields[n] = "weight decay";
    if (opt->weight_decay != p->weight_decay && opt->weight_decay == 0)
        snprintf(items[n++], sizeof items[0], "no weight decay");
    else if (mode_differs)
        snprintf(items[n++], sizeof items[0], "%s weight decay %g",
                 decay_name((DecayKind)opt->decay), opt->weight_decay);
    else if (opt->weight_decay != p->weight_decay)
        snprintf(items[n++], sizeof items[0], "weight decay %g",
                 opt->weight_decay);
    if (opt->flip != p->flip) {
        fields[n] = "flips";
        snprintf(items[n++], sizeof items[0], opt->flip ? "flips"
                                                        : "no flips");
    }
    if (opt->shift != p->shift)
        fields[n] = "shifts";
    if (opt->shift != p->shift && opt->shift == 0)
        snprintf(items[n++], sizeof items[0], "no shifts");
    else if (opt->shift != p->shift)
        snprintf(items[n++], sizeof items[0], "shifts up to %d px",
                 opt->shift);
    if (n == 0)
        return;

    for (int i = 0; i < n; i++) {
        const char *sep = ", ";

        if (i == 0)
            sep = "";
        else if (i == n - 1)
            sep = " and ";
        append(used, sizeof used, "%s%s", sep, items[i]);
        append(differ, sizeof differ, "%s%s", sep, fields[i]);
    }
    snprintf(out, size, "--load %s has model %s, but this run has %s; add "
             "--preset %s if that preset trained it", opt->load_path, name,
             used, p->name);
    /* With all four fields, this fits the two lines of the status pane
     * at 80 columns: tests/tui.sh checks that for best, and by count it
     * holds for preset names of up to 8 characters. */
    snprintf(screen, screen_size, "this run's %s differ%s from --preset %s; "
             "add --preset %s if it trained the loaded model", differ,
             n == 1 ? "s" : "", p->name, p->name);
}

/* Reports an option that getopt_long rejected, where C is what it
 * returned: ':' for a missing value, '?' for anything else. */
__attribute__((noreturn))
static void option_error(int c, char **argv)
{
    const char *arg = argv[optind - 1];
    size_t name_len = strcspn(arg, "=");

    if (strncmp(arg, "--", 2) != 0) {
        if (c == ':')
            usage_error("option '-%c' requires a value", optopt);
        usage_error("unknown option '-%c'", optopt);
    }
    if (c == ':')
        usage_error("option '%s' requires a value", arg);
    if (arg[name_len] == '=' && optopt != 0)
        usage_error("option '%.*s' takes no value", (int)name_len, arg);
    usage_error("unknown option '%.*s'", (int)name_len, arg);
}

/* Rejects an empty file or directory name, which no later step could
 * use. */
static void check_paths_given(const Options *opt)
{
    if (opt->data_dir != NULL && opt->data_dir[0] == '\0')
        usage_error("invalid --data '': expected a directory; drop --data "
                    "to search the default directories");
    if (opt->load_path != NULL && opt->load_path[0] == '\0')
        usage_error("invalid --load '': expected a checkpoint file name");
    if (opt->log_path != NULL && opt->log_path[0] == '\0')
        usage_error("invalid --log '': expected a file name");
}

/* Rejects the options that --eval would ignore, because it neither
 * trains nor saves, and so logs no epoch either. */
static void check_eval_options(const Options *opt)
{
    static const char *const names[] = {
        "--save", "--flip", "--shift", "--lr", "--optimizer", "--schedule",
        "--lr-step", "--lr-gamma", "--weight-decay", "--decay-mode",
        "--val", "--train-limit", "--log",
    };
    const int given[] = {
        opt->save_path != NULL, opt->flip_given, opt->shift_given,
        opt->lr_given, opt->optim_given, opt->schedule_given,
        opt->lr_step_given, opt->lr_gamma_given, opt->weight_decay_given,
        opt->decay_given, opt->val_count > 0, opt->train_limit > 0,
        opt->log_path != NULL,
    };

    if (!opt->eval)
        return;
    if (opt->load_path == NULL)
        usage_error("--eval needs a trained model: add --load FILE");
    if (opt->epochs_given && opt->epochs > 0)
        usage_error("--eval evaluates a saved model and cannot train: "
                    "drop --epochs or --eval");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (given[i])
            usage_error("--eval evaluates a saved model and cannot train "
                        "or save: drop %s or --eval", names[i]);
}

/* Rejects the options of a schedule or a decay that is not in use. Runs
 * after the preset, which may choose both. */
static void check_schedule_options(const Options *opt)
{
    if (opt->schedule != SCHEDULE_STEP && opt->lr_step_given)
        usage_error("--lr-step applies to the step schedule only: add "
                    "--schedule step");
    if (opt->schedule != SCHEDULE_STEP && opt->lr_gamma_given)
        usage_error("--lr-gamma applies to the step schedule only: add "
                    "--schedule step");
    if (opt->weight_decay <= 0 && opt->decay_given)
        usage_error("--decay-mode applies only with weight decay: add "
                    "--weight-decay F");
}

static void parse_options(int argc, char **argv, Options *opt)
{
    enum { OPT_TRAIN_LIMIT = 256, OPT_SAVE, OPT_LOAD, OPT_LOG, OPT_EVAL,
           OPT_HEADLESS, OPT_ASCII, OPT_NO_COLOR, OPT_VAL, OPT_PRESET,
           OPT_FLIP, OPT_SHIFT, OPT_SCHEDULE, OPT_LR_STEP, OPT_LR_GAMMA,
           OPT_WEIGHT_DECAY, OPT_DECAY_MODE };
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
        { "val", required_argument, NULL, OPT_VAL },
        { "preset", required_argument, NULL, OPT_PRESET },
        { "flip", no_argument, NULL, OPT_FLIP },
        { "shift", required_argument, NULL, OPT_SHIFT },
        { "schedule", required_argument, NULL, OPT_SCHEDULE },
        { "lr-step", required_argument, NULL, OPT_LR_STEP },
        { "lr-gamma", required_argument, NULL, OPT_LR_GAMMA },
        { "weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY },
        { "decay-mode", required_argument, NULL, OPT_DECAY_MODE },
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

    /* The leading ':' makes a missing value return ':', and opterr = 0
     * leaves every message to option_error. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:m:e:b:o:l:s:j:hV", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'd': opt->data_dir = optarg; break;
        case OPT_TRAIN_LIMIT:
            opt->train_limit = parse_int("train-limit", optarg, 1, INT_MAX);
            break;
        case 'm': opt->spec = optarg; break;
        case 'e':
            opt->epochs = parse_int("epochs", optarg, 0, 100000);
            opt->epochs_given = 1;
            break;
        case 'b':
            opt->batch = parse_int("batch", optarg, 1, TRAINER_MAX_BATCH);
            opt->batch_given = 1;
            break;
        case 'o':
            opt->optim = optim_parse(optarg);
            opt->optim_given = 1;
            if (opt->optim < 0)
                usage_error("invalid value '%s' for --optimizer: expected sgd "
                            "or adam", optarg);
            break;
        case 'l':
            /* SGD at --lr 1 already made the default model diverge
             * (train loss above 20,000 in the first epoch on 5,000
             * images), so the + key's cap is a generous limit. */
            opt->lr = parse_float("lr", optarg, (NumberRange){
                .min = FLOAT_OPTION_MIN, .max = TRAINER_LR_MAX,
                .exclude_max = 1 });
            opt->lr_given = 1;
            break;
        case 's':
            opt->seed = (uint64_t)parse_number("seed", optarg, (NumberRange){
                .min = 0, .max = SEED_MAX, .integer = 1 });
            opt->seed_given = 1;
            break;
        case 'j':
            opt->threads = parse_int("threads", optarg, 1,
                                     TRAINER_MAX_THREADS);
            break;
        case OPT_VAL:
            opt->val_count = parse_int("val", optarg, 0, INT_MAX);
            break;
        case OPT_PRESET: opt->preset = optarg; break;
        case OPT_FLIP: opt->flip = opt->flip_given = 1; break;
        case OPT_SHIFT:
            opt->shift = parse_int("shift", optarg, 0, AUGMENT_MAX_SHIFT);
            opt->shift_given = 1;
            break;
        case OPT_SCHEDULE:
            opt->schedule_given = 1;
            opt->schedule = schedule_parse(optarg);
            if (opt->schedule < 0)
                usage_error("invalid value '%s' for --schedule: expected "
                            "constant, step or cosine", optarg);
            break;
        case OPT_LR_STEP:
            opt->lr_step = parse_int("lr-step", optarg, 1, 100000);
            opt->lr_step_given = 1;
            break;
        case OPT_LR_GAMMA:
            opt->lr_gamma = parse_float("lr-gamma", optarg,
                (NumberRange){ .min = FLOAT_OPTION_MIN, .max = 1 });
            opt->lr_gamma_given = 1;
            break;
        case OPT_WEIGHT_DECAY:
            opt->weight_decay = parse_float("weight-decay", optarg,
                (NumberRange){ .min = FLOAT_OPTION_MIN, .max = 1,
                               .exclude_max = 1, .or_zero = 1 });
            opt->weight_decay_given = 1;
            break;
        case OPT_DECAY_MODE:
            opt->decay_given = 1;
            opt->decay = decay_parse(optarg);
            if (opt->decay < 0)
                usage_error("invalid value '%s' for --decay-mode: expected "
                            "decoupled or l2", optarg);
            break;
        case OPT_SAVE: opt->save_path = optarg; break;
        case OPT_LOAD: opt->load_path = optarg; break;
        case OPT_LOG: opt->log_path = optarg; break;
        case OPT_EVAL: opt->eval = 1; break;
        case OPT_HEADLESS: opt->headless = 1; break;
        case OPT_ASCII: opt->ascii = 1; break;
        case OPT_NO_COLOR: opt->no_color = 1; break;
        case 'h': opt->help = 1; break;
        case 'V': opt->version = 1; break;
        default:
            option_error(c, argv);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (opt->help) {
        usage(stdout);
        exit(0);
    }
    if (opt->version) {
        printf("fmnist %s\n", PACKAGE_VERSION);
        exit(0);
    }
    check_paths_given(opt);
    check_eval_options(opt);
    if (opt->preset != NULL)
        apply_preset(opt);
    apply_defaults(opt);
    check_schedule_options(opt);
    /* --eval has its own message above. */
    if (!opt->eval && opt->epochs == 0 && opt->save_path != NULL)
        usage_error("--epochs 0 only explores a model and trains nothing, "
                    "so --save would never write: drop --save or give "
                    "--epochs 1 or more");
    /* The log has one line per trained epoch, so it would get only its
     * header. */
    if (!opt->eval && opt->epochs == 0 && opt->log_path != NULL)
        usage_error("--epochs 0 only explores a model and trains nothing, "
                    "so --log would get no line: drop --log or give "
                    "--epochs 1 or more");
    if (opt->eval)
        opt->epochs = 0;
    if (opt->seed_given && opt->load_path != NULL)
        print_message(stderr, "warning: --load %s continues the random "
                      "state of its run, so --seed has no effect; drop "
                      "--seed", opt->load_path);
}

/* Flushes the log after a write and records the first failure. Headless,
 * it is reported on stderr at once; the interface gets it from
 * show_log_failure. Called with the FILE lock of the log held. */
static void check_log_write(EpochSink *sink)
{
    int failed = fflush(sink->log) != 0;
    int saved_errno = errno;

    if ((!failed && !ferror(sink->log)) || sink->log_failed)
        return;
    sink->log_failed = 1;
    snprintf(sink->log_error, sizeof sink->log_error, "%s",
             failed && saved_errno != 0 ? strerror(saved_errno)
                                        : "write error");
    if (atomic_load(&sink->print_lines))
        print_message(stderr, "writing --log %s failed: %s; training "
                      "goes on, but the log gets no more lines",
                      sink->log_path, sink->log_error);
    else
        sink->log_failure_pending = 1;
}

/* Shows a failed log write in the interface's message line, once. Called
 * with the FILE lock of the log held, after any save message that would
 * replace it at once. */
static void show_log_failure(EpochSink *sink)
{
    char text[PATH_MAX + 192];

    if (!sink->log_failure_pending || sink->trainer == NULL)
        return;
    sink->log_failure_pending = 0;
    snprintf(text, sizeof text, "writing --log %s failed: %s; the log "
             "gets no more lines", sink->log_path, sink->log_error);
    trainer_post_message(sink->trainer, 1, text);
}

/* Writes one CSV line in the columns of LOG_HEADER, or of
 * LOG_HEADER_SEVEN when SEVEN is set. The validation columns are empty
 * without a validation split. */
static void log_epoch(FILE *log, int seven, const EpochRecord *rec)
{
    fprintf(log, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f", rec->epoch,
            rec->train_loss, rec->train_acc, rec->test_loss, rec->test_acc,
            rec->seconds, rec->samples_per_sec);
    if (!seven && rec->has_val)
        fprintf(log, ",%.6f,%.6f,%g", rec->val_loss, rec->val_acc, rec->lr);
    else if (!seven)
        fprintf(log, ",,,%g", rec->lr);
    fputc('\n', log);
}

static void on_epoch(const EpochRecord *rec, void *ctx)
{
    EpochSink *sink = ctx;

    /* After a failed write the log ends there, rather than going on
     * with lines that may be cut. */
    if (sink->log != NULL) {
        flockfile(sink->log);
        if (!sink->log_failed) {
            log_epoch(sink->log, sink->log_seven, rec);
            check_log_write(sink);
        }
        /* With --save, on_save shows it after the save's message. */
        if (!sink->saves_each_epoch)
            show_log_failure(sink);
        funlockfile(sink->log);
    }
    if (atomic_load(&sink->print_lines) && sink->lines != NULL) {
        char line[256], val[64] = "";

        if (rec->has_val)
            snprintf(val, sizeof val, "val_loss %.4f  val_acc %.4f  ",
                     rec->val_loss, rec->val_acc);
        snprintf(line, sizeof line, "epoch %d/%d  train_loss %.4f  "
                 "train_acc %.4f  %stest_loss %.4f  test_acc %.4f  lr %.3g  "
                 "elapsed %.1fs  %.0f img/s\n", rec->epoch, sink->epochs,
                 rec->train_loss, rec->train_acc, val, rec->test_loss,
                 rec->test_acc, rec->lr, rec->seconds, rec->samples_per_sec);
        linequeue_add(sink->lines, line);
    }
}

/* The errno of the first failed write to stdout through stdio, or 0. */
static int stdout_errno;

/* Flushes stdout and keeps the errno of its first failure. */
static void flush_stdout(void)
{
    if (fflush(stdout) != 0 && stdout_errno == 0)
        stdout_errno = errno;
}

/* Rejects a --log file that exists and is not a regular file, before the
 * data is loaded. Opening a FIFO without a reader would wait forever. */
static void check_log_path(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        usage_error("--log %s is %s, not a regular file; give the name of "
                    "a regular file or a new one", path,
                    util_file_kind(st.st_mode));
}

/* Exits with a usage error when the start of the --log file F at PATH is
 * not text: appending CSV lines to a checkpoint or any other binary file
 * would damage it. Text means bytes other than control characters, except
 * tab, carriage return and newline. */
static void check_log_text(FILE *f, const char *path)
{
    unsigned char head[4096];
    size_t len;

    rewind(f);
    len = fread(head, 1, sizeof head, f);
    if (len >= sizeof CHECKPOINT_MAGIC - 1
        && memcmp(head, CHECKPOINT_MAGIC, sizeof CHECKPOINT_MAGIC - 1) == 0)
        usage_error("--log %s is an fmnist checkpoint, and appending the "
                    "log would damage it; give --log a new file name (or "
                    "did you mean --load %s?)", path, path);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = head[i];

        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            usage_error("--log %s is not a text file (the byte at offset "
                        "%zu is 0x%02x), and appending the log would damage "
                        "it; give --log a new file name or a log that "
                        "fmnist wrote", path, i, c);
    }
}

/* What open_log needs to know of a log that already has lines. */
typedef struct {
    int seven;         /* its header is LOG_HEADER_SEVEN */
    int has_header;    /* some line does not start with '#' */
    int fmnist_header; /* the first such line is LOG_HEADER or
                          LOG_HEADER_SEVEN */
    int ends_in_line;  /* the last byte is a newline */
    /* For messages, the first 255 bytes of the first line that is
     * neither blank nor a '#' comment, without its line end. It is ""
     * when there is no such line, and HEADER_CUT is set when the line is
     * longer. */
    char header[256];
    int header_cut;
} LogShape;

/* Reads the next line of F into LINE, of SIZE bytes, without its line
 * end or a carriage return before it, and skips the rest of a longer
 * line. Returns 0 at the end of the file, 1 for a whole line and 2 for a
 * cut one. */
static int read_log_line(FILE *f, char *line, size_t size)
{
    int c;

    if (fgets(line, (int)size, f) == NULL)
        return 0;
    size_t len = strlen(line);
    int whole = (len > 0 && line[len - 1] == '\n') || feof(f);

    line[strcspn(line, "\r\n")] = '\0';
    if (whole)
        return 1;
    /* A line that fills LINE exactly is whole too. */
    c = getc(f);
    if (c == EOF || c == '\n')
        return 1;
    while ((c = getc(f)) != EOF && c != '\n') {
    }
    return 2;
}

/* Reads the log F, opened for reading and appending, from its start. The
 * first line that is no '#' comment is taken as the header. When that
 * line is blank, the messages show the next one that is not. */
static LogShape log_shape(FILE *f)
{
    LogShape shape = {.ends_in_line = 1};
    char *line = shape.header;
    int got;

    rewind(f);
    while ((got = read_log_line(f, line, sizeof shape.header)) != 0) {
        if (line[0] == '#')
            continue;
        if (!shape.has_header) {
            shape.has_header = 1;
            shape.seven = got == 1 && strcmp(line, LOG_HEADER_SEVEN) == 0;
            shape.fmnist_header = shape.seven
                                  || (got == 1 && strcmp(line, LOG_HEADER) == 0);
        }
        if (line[0] != '\0') {
            shape.header_cut = got == 2;
            break;
        }
    }
    if (got == 0)
        line[0] = '\0';
    if (fseek(f, -1, SEEK_END) == 0)
        shape.ends_in_line = getc(f) == '\n';
    return shape;
}

/* The maximum number of bytes of a --log header that check_log_header
 * shows. The header of fmnist's log, 101 bytes, fits whole. */
#define LOG_HEADER_SHOWN 120
/* The length of "epoch,train_loss,", the start of the headers of every
 * fmnist log, which the messages show in place of the whole header. */
#define LOG_HEADER_START 17

/* Exits with a usage error when the --log file PATH, read into SHAPE, has
 * a header other than fmnist's: the rows of this run would land under
 * columns of another table. Only a file whose header starts like
 * fmnist's, so that it is likely a log of another fmnist version, gets
 * the advice to remove it. */
static void check_log_header(const LogShape *shape, const char *path)
{
    size_t len = strlen(shape->header);
    int cut = shape->header_cut || len > LOG_HEADER_SHOWN;

    if (!shape->has_header || shape->fmnist_header)
        return;
    if (len == 0)
        usage_error("--log %s is not an fmnist log: it has blank lines "
                    "where the header '%.*s...' should be; give --log "
                    "another file name", path, LOG_HEADER_START, LOG_HEADER);
    if (len > LOG_HEADER_SHOWN) {
        len = LOG_HEADER_SHOWN;
        /* Moves the cut back off UTF-8 continuation bytes, so that no
         * character is split. */
        while (len > 0
               && ((unsigned char)shape->header[len] & 0xc0) == 0x80)
            len--;
    }
    if (strncmp(shape->header, LOG_HEADER, LOG_HEADER_START) == 0)
        usage_error("--log %s has the header '%.*s%s', not the columns of "
                    "this fmnist's log, '%s'; give --log a new file name, "
                    "or remove %s first", path, (int)len, shape->header,
                    cut ? "..." : "", LOG_HEADER, path);
    usage_error("--log %s is not an fmnist log: its first line that is "
                "neither blank nor a # comment is '%.*s%s', expected "
                "'%.*s...'; give --log another file name", path, (int)len,
                shape->header, cut ? "..." : "", LOG_HEADER_START,
                LOG_HEADER);
}

/* Returns the canonical form of SPEC (a preset name or layers, NULL for
 * the default network) with presets expanded, malloc'd, or NULL when
 * SPEC does not parse. */
static char *canonical_model_spec(const char *spec)
{
    Net net;
    char *canonical;

    if (net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, NULL, 0) != 0)
        return NULL;
    canonical = xstrdup(net.spec);
    net_free(&net);
    return canonical;
}

/* Opens the --log file PATH for appending. A new file gets the CSV
 * header. A file with lines gets a "# fmnist: " line that marks where
 * this run starts, naming LOAD_PATH when the run resumes from it, the
 * time and the model SPEC (canonical, or NULL to leave it out). The line
 * comes after a newline when the file's last line lacks one, and the
 * header after it when the file has only comments. Sets *SEVEN when the
 * file has the columns of LOG_HEADER_SEVEN. The file is read too, so it
 * must be readable. Exits with a usage error when the file is binary or
 * has another program's header. */
static FILE *open_log(const char *path, const char *load_path,
                      const char *spec, int *seven)
{
    FILE *log;
    LogShape shape;

    check_log_path(path);
    log = fopen(path, "a+");
    if (log == NULL)
        usage_error("cannot open --log %s for reading and appending: %s; "
                    "fmnist reads a log to continue its columns", path,
                    strerror(errno));
    check_log_text(log, path);
    shape = log_shape(log);
    check_log_header(&shape, path);
    *seven = shape.seven;
    fseek(log, 0, SEEK_END);
    if (ftell(log) == 0) {
        fputs(LOG_HEADER "\n", log);
    } else {
        /* Runs appended to one log stay apart, so a script can tell
         * where a new run's epochs start over. */
        char when[32] = "";
        time_t now = time(NULL);
        struct tm tm;

        if (!shape.ends_in_line)
            fputc('\n', log);
        if (gmtime_r(&now, &tm) != NULL)
            strftime(when, sizeof when, " at %Y-%m-%d %H:%M:%S UTC", &tm);
        if (load_path != NULL) {
            char *name = escape_alloc(load_path);

            fprintf(log, "# fmnist: run resumed from %s%s", name, when);
            free(name);
        } else {
            fprintf(log, "# fmnist: new run%s", when);
        }
        /* The spec names no file and has no spaces, so it ends the line
         * without quotes. */
        if (spec != NULL)
            fprintf(log, ", model %s", spec);
        fputc('\n', log);
        if (!shape.has_header)
            fputs(LOG_HEADER "\n", log);
    }
    if (fflush(log) != 0) {
        print_message(stderr, "cannot write log file %s: %s", path,
                      strerror(errno));
        exit(1);
    }
    return log;
}

/* Exits with a usage error when --save PATH ends in the lock suffix or
 * is the lock file of a run that saves to another file, live or left
 * behind: saving would rename a checkpoint over it, and the next run
 * would then lock and remove that. */
static void reject_lock_file(const char *path)
{
    size_t len = strlen(path), suffix_len = strlen(SAVELOCK_SUFFIX);
    int target_len = (int)(len - suffix_len);
    long owner;

    /* A checkpoint named like a lock file would become the lock file of
     * a run that saves to the name without the suffix. */
    if (len > suffix_len && strcmp(path + target_len, SAVELOCK_SUFFIX) == 0
        && !savelock_is_lock_file(path, &owner))
        usage_error("--save %s ends in " SAVELOCK_SUFFIX ", which names the "
                    "lock file of a run saving to %.*s; give a name that does "
                    "not end in " SAVELOCK_SUFFIX, path, target_len, path);
    if (!savelock_is_lock_file(path, &owner))
        return;
    if (len <= suffix_len
        || strcmp(path + target_len, SAVELOCK_SUFFIX) != 0)
        usage_error("--save %s is an fmnist lock file, which a save would "
                    "replace; give another --save name", path);
    if (owner != 0)
        usage_error("--save %s is the lock file of fmnist pid %ld, which "
                    "saves to %.*s; give another --save name", path, owner,
                    target_len, path);
    usage_error("--save %s is the lock file that a run saving to %.*s left "
                "behind; give another --save name, or remove %s if no "
                "fmnist saves to %.*s", path, target_len, path, path,
                target_len, path);
}

/* Exits with a message when checkpoints could not be written to PATH, so a
 * typo in --save is reported before an epoch of training, not after. */
static void check_save_path(const char *path)
{
    struct stat st;
    const char *slash = strrchr(path, '/');
    /* The parent directory is the first PARENT_LEN bytes of PARENT_TEXT:
     * "." for a bare file name, "/" for a file in the root. */
    const char *parent_text = path;
    int parent_len = 1;
    char *parent;
    int parent_ok, parent_errno;
    long name_max;

    if (path[0] == '\0' || (slash != NULL && slash[1] == '\0'))
        usage_error("invalid --save '%s': expected a file name", path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        usage_error("--save %s is a directory; give a file name such as "
                    "%s/fmnist.ckpt", path, path);
    /* A save renames a new file over PATH, which would replace a
     * symbolic link, a device or a FIFO by a regular file. */
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        usage_error("--save %s is %s, not a regular file, and a save would "
                    "replace it; give the path of a regular file or a new "
                    "one%s", path, util_file_kind(st.st_mode),
                    S_ISLNK(st.st_mode) ? ", such as the link's target" : "");

    reject_lock_file(path);

    if (slash == NULL)
        parent_text = ".";
    else if (slash != path)
        parent_len = (int)(slash - path);
    parent = xmalloc((size_t)parent_len + 1);
    memcpy(parent, parent_text, (size_t)parent_len);
    parent[parent_len] = '\0';
    errno = 0;
    parent_ok = stat(parent, &st) == 0 && S_ISDIR(st.st_mode)
                && access(parent, W_OK) == 0;
    parent_errno = errno;
    name_max = parent_ok ? pathconf(parent, _PC_NAME_MAX) : -1;
    free(parent);
    if (!parent_ok)
        usage_error("cannot write checkpoints to %s: directory %.*s: %s; "
                    "give a path in a writable directory", path, parent_len,
                    parent_text, parent_errno != 0 ? strerror(parent_errno)
                                                   : "not a directory");
    /* Every save gives its temporary file this name with a suffix before
     * renaming it over PATH, so the name must leave room for it. */
    size_t name_len = strlen(slash != NULL ? slash + 1 : path);
    size_t need = name_len + strlen(CHECKPOINT_TMP_SUFFIX);

    if (name_max > 0 && need > (size_t)name_max)
        usage_error("--save file name is %zu bytes, but saves write it "
                    "with %zu more and this directory allows %ld; give a "
                    "name of at most %zu bytes", name_len,
                    strlen(CHECKPOINT_TMP_SUFFIX), name_max,
                    (size_t)name_max - strlen(CHECKPOINT_TMP_SUFFIX));
}

/* The lock on the --save file, held until exit. */
static SaveLock save_lock;

static void release_save_lock(void)
{
    savelock_release(&save_lock);
}

/*
 * Takes the lock of --save PATH (see savelock.h) until the process exits,
 * so that a second run with the same --save file exits with a usage error
 * naming the first run's pid instead of replacing its checkpoints. A lock
 * file that fmnist did not write is a usage error too.
 */
static void lock_save_path(const char *path)
{
    char err[CHECKPOINT_ERR_LEN];
    long owner;

    switch (savelock_take(&save_lock, path, &owner, err, sizeof err)) {
    case SAVELOCK_OK:
        atexit(release_save_lock);
        return;
    case SAVELOCK_BUSY:
        usage_error("--save %s is in use: another fmnist (pid %ld) "
                    "saves to it and holds %s" SAVELOCK_SUFFIX "; give this "
                    "run another --save file, or start it after pid %ld "
                    "ends", path, owner, path, owner);
    case SAVELOCK_FOREIGN:
        usage_error("--save %s: %s; move it or give another --save name",
                    path, err);
    default:
        usage_error("--save %s: %s", path, err);
    }
}

/* How to make a checkpoint, for the messages about a --load file that
 * is not one. */
#define LOAD_HINT "a checkpoint is the binary file that --save FILE or the " \
                  "s key writes, as after 'fmnist --epochs 1 --save " \
                  "model.ckpt'; give that file to --load"

/* Exits with status 1 when the --load file PATH does not start like a
 * checkpoint, naming what it is when fmnist wrote it as a --log file.
 * Returns when its first bytes are CHECKPOINT_MAGIC or a prefix of it,
 * which leaves a damaged or truncated checkpoint to the loader's message. */
static void reject_non_checkpoint(const char *path)
{
    uint8_t head[sizeof LOG_HEADER_SEVEN];
    size_t magic_len = sizeof CHECKPOINT_MAGIC - 1;
    FILE *f = fopen(path, "rb");
    size_t len;

    if (f == NULL)
        return;
    len = fread(head, 1, sizeof head, f);
    fclose(f);
    if (len > 0 && memcmp(head, CHECKPOINT_MAGIC,
                          len < magic_len ? len : magic_len) == 0)
        return;
    if (len == 0) {
        print_message(stderr, "--load %s is an empty file, not a "
                      "checkpoint; " LOAD_HINT, path);
        exit(1);
    }
    /* Both log headers start with the seven-column one, and a log that
     * fmnist appended to starts with a comment line. */
    if ((len >= sizeof LOG_HEADER_SEVEN - 1
         && memcmp(head, LOG_HEADER_SEVEN, sizeof LOG_HEADER_SEVEN - 1) == 0)
        || (len >= 10 && memcmp(head, "# fmnist: ", 10) == 0)) {
        print_message(stderr, "--load %s is a CSV log that --log wrote, "
                      "not a checkpoint; " LOAD_HINT, path);
        exit(1);
    }
    char hex[2 * sizeof head + 1] = "";

    for (size_t i = 0; i < len && i < magic_len; i++)
        snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", head[i]);
    print_message(stderr, "--load %s is not an fmnist checkpoint: it starts "
                  "with bytes %s, expected \"%s\"; " LOAD_HINT, path, hex,
                  CHECKPOINT_MAGIC);
    exit(1);
}

/* Exits with a message when the --load file cannot be read or is no
 * valid checkpoint (header, CRC, model spec), before the data is loaded.
 * The trainer reads it again and checks it against the options. Returns
 * the model spec of the checkpoint, which the caller frees. */
static char *check_load_path(const char *path)
{
    char err[CHECKPOINT_ERR_LEN];
    Checkpoint ck;
    struct stat st;
    FILE *f;

    /* Opening a FIFO without a writer would wait forever. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        usage_error("--load %s is %s, not a regular file; give a "
                    "checkpoint that --save or the s key wrote", path,
                    util_file_kind(st.st_mode));
    f = fopen(path, "rb");

    if (f == NULL) {
        print_message(stderr, "--load %s: cannot read: %s; give a "
                      "checkpoint that --save or the s key wrote", path,
                      strerror(errno));
        exit(1);
    }
    fclose(f);
    if (checkpoint_load(path, &ck, err, sizeof err) != 0) {
        reject_non_checkpoint(path);
        print_message(stderr, "--load %s", err);
        exit(1);
    }
    char *spec = xstrdup(ck.spec);
    checkpoint_free(&ck);
    return spec;
}

/* Returns 1 when the file at PATH starts with CHECKPOINT_MAGIC. */
static int starts_with_magic(const char *path)
{
    char head[sizeof CHECKPOINT_MAGIC - 1];
    FILE *f = fopen(path, "rb");
    int found;

    if (f == NULL)
        return 0;
    found = fread(head, 1, sizeof head, f) == sizeof head
            && memcmp(head, CHECKPOINT_MAGIC, sizeof head) == 0;
    fclose(f);
    return found;
}

/* Exits with a usage error for --save PATH, a file that starts like a
 * checkpoint but that checkpoint_load rejected with ERR. Such a file may
 * be worth repairing (trailing bytes) or need a newer fmnist, so a run
 * must not replace it. The file was read, so the message gives the
 * failed check rather than a read error. */
__attribute__((noreturn))
static void reject_unreadable_checkpoint(const char *path, const char *err)
{
    size_t path_len = strlen(path);
    const char *reason = err;

    /* The loader's message is "PATH: reason; what to do to load it", and
     * only the reason applies here. */
    if (strncmp(err, path, path_len) == 0
        && strncmp(err + path_len, ": ", 2) == 0)
        reason = err + path_len + 2;
    usage_error("--save %s starts like a checkpoint but fails the checks "
                "that --load runs (%.*s), and this run would replace it; "
                "give --save a new file name, or remove %s first", path,
                (int)strcspn(reason, ";"), reason, path);
}

/* Exits with a usage error when --save names a checkpoint that this run
 * would replace without having loaded it: a file that starts with
 * CHECKPOINT_MAGIC, other than the --load file, whether checkpoint_load
 * reads it or not. Re-running an old command line would otherwise write
 * over a trained network, where the s key picks a new name. Files that
 * are no checkpoint are left to check_save_path. */
static void check_save_keeps_checkpoint(const Options *opt)
{
    char err[CHECKPOINT_ERR_LEN];
    struct stat save_st, other_st;
    Checkpoint ck;

    if (opt->save_path == NULL || stat(opt->save_path, &save_st) != 0
        || !S_ISREG(save_st.st_mode))
        return;
    /* Continuing the loaded run replaces its checkpoint on purpose, and
     * a --log of the same file gets check_distinct_files' message. */
    const char *others[] = {opt->load_path, opt->log_path};
    for (int i = 0; i < 2; i++) {
        if (others[i] != NULL && stat(others[i], &other_st) == 0
            && other_st.st_dev == save_st.st_dev
            && other_st.st_ino == save_st.st_ino)
            return;
    }
    if (checkpoint_load(opt->save_path, &ck, err, sizeof err) != 0) {
        if (starts_with_magic(opt->save_path))
            reject_unreadable_checkpoint(opt->save_path, err);
        return;
    }
    int epochs = (int)ck.epochs_done;
    char spec[256];

    /* Copied, because usage_error exits and the checkpoint's memory
     * would count as a leak. */
    snprintf(spec, sizeof spec, "%s", net_preset_name(ck.spec) != NULL
                                      ? net_preset_name(ck.spec) : ck.spec);
    checkpoint_free(&ck);
    usage_error("--save %s contains a checkpoint (model %s, %d epoch%s "
                "trained), which this run would replace; give a new file "
                "name, --load it to continue that run, or remove it first",
                opt->save_path, spec, epochs, epochs == 1 ? "" : "s");
}

/* Writes to OUT the option that chose SPEC, the canonical spec of the
 * requested network, as given: "--preset best" or "--model small", or a
 * bare "--model" for a spec, which the messages print in full anyway. */
static void name_model_option(const Options *opt, const char *spec,
                              char *out, size_t size)
{
    const char *preset = net_preset_name(spec);

    if (opt->spec_from_preset)
        snprintf(out, size, "--preset %s", opt->preset);
    else if (preset != NULL && strcmp(opt->spec, preset) == 0)
        snprintf(out, size, "--model %s", preset);
    else
        snprintf(out, size, "--model");
}

/* Exits with a usage error when the network that --model or --preset
 * requests is not LOAD_SPEC, the model in the --load checkpoint, before
 * the data loads. The file is a valid checkpoint, and the command line
 * names two models, so either option can be dropped when the run trains.
 * A run that only evaluates or explores needs the checkpoint's model, so
 * the advice then names --model or --preset alone. A spec that does not
 * build is reported elsewhere. */
static void check_load_model(const Options *opt, const char *load_spec)
{
    char err[NET_ERR_LEN];
    char option[64];
    Net net;

    if (opt->spec == NULL
        || net_create(&net, opt->spec, 1, DATASET_ROWS, DATASET_COLS,
                      DATASET_CLASSES, err, sizeof err) != 0)
        return;
    if (strcmp(net.spec, load_spec) == 0) {
        net_free(&net);
        return;
    }
    name_model_option(opt, net.spec, option, sizeof option);
    const char *dropped = opt->spec_from_preset ? "--preset" : "--model";

    if (opt->epochs == 0)
        usage_error("--load %s contains model %s, but %s requests model "
                    "%s; drop %s to %s the checkpoint's model",
                    opt->load_path, load_spec, option, net.spec, dropped,
                    opt->eval || opt->headless ? "evaluate" : "explore");
    if (opt->spec_from_preset)
        usage_error("--load %s contains model %s, but %s trains model %s; "
                    "drop --preset to continue the checkpoint's run, or "
                    "drop --load to start the preset afresh",
                    opt->load_path, load_spec, option, net.spec);
    usage_error("--load %s contains model %s, but %s requests model %s; "
                "drop --model to continue the checkpoint's run, or drop "
                "--load to train --model afresh", opt->load_path, load_spec,
                option, net.spec);
}

/* The reason a bn layer over single values cannot train on one sample,
 * and the model change that avoids it, for the usage errors of
 * check_bn_batch and check_bn_train_set. */
typedef struct {
    char reason[PATH_MAX + 192];
    /* "no bn after a dense layer" or "no bn on a 1x1 map", for a new
     * model when the model comes from a checkpoint */
    const char *no_bn;
} BnProblem;

/*
 * Returns 1 and fills PROBLEM when SPEC, the model from LOAD_PATH or from
 * the options when LOAD_PATH is NULL, has a bn layer over single values:
 * after a dense layer, or on a 1x1 map. One sample has a variance of 0
 * there, which the running variance then learns, and evaluation scales
 * by up to 1 / sqrt(NET_BN_EPS). Returns 0 for other models and for
 * specs that do not build, which are reported elsewhere.
 */
static int find_bn_problem(const char *spec, const char *load_path,
                           BnProblem *problem)
{
    char err[NET_ERR_LEN];
    char model[PATH_MAX + 32] = "the model";
    Net net;
    int bn, flat = 0;

    if (spec == NULL || net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                                   DATASET_CLASSES, err, sizeof err) != 0)
        return 0;
    bn = net_find_single_value_bn(&net);
    for (int i = 0; i < bn; i++)
        flat |= net.layers[i].kind == LAYER_DENSE
                || net.layers[i].kind == LAYER_FLATTEN;
    net_free(&net);
    if (bn < 0)
        return 0;
    if (load_path != NULL)
        snprintf(model, sizeof model, "the model in %s", load_path);
    snprintf(problem->reason, sizeof problem->reason, "token %d \"bn\" of "
             "%s normalises each value of a sample over the samples of a "
             "batch, and one sample has no variance", bn + 1, model);
    if (load_path != NULL)
        problem->no_bn = flat ? "a new model with no bn after a dense layer"
                              : "a new model with no bn on a 1x1 map";
    else
        problem->no_bn = flat ? "no bn after a dense layer"
                              : "no bn on a 1x1 map";
    return 1;
}

/* Exits with a usage error when the run would train a bn layer over
 * single values on batches of one sample: --batch 1, or --train-limit 1.
 * This runs before the data loads, and check_bn_train_set covers the
 * other ways to train on one image. */
static void check_bn_batch(const Options *opt, const char *spec,
                           const char *load_path)
{
    const char *option = opt->batch == 1 ? "batch" : "train-limit";
    BnProblem problem;

    if (opt->epochs == 0 || (opt->batch != 1 && opt->train_limit != 1))
        return;
    if (!find_bn_problem(spec, load_path, &problem))
        return;
    usage_error("invalid value '1' for --%s: %s; use --%s 2 or more, or %s",
                option, problem.reason, option, problem.no_bn);
}

/*
 * Exits with a usage error when the run would train a bn layer over
 * single values on a training set of one image, which --val or the data
 * in DIR can leave. COUNT is the number of training images in DIR. The
 * trainer rejects such runs too, but as a failed run with status 1.
 * Frees the datasets before it exits.
 */
static void check_bn_train_set(const Options *opt, const char *spec,
                               const char *dir, int count, Dataset *train,
                               Dataset *test)
{
    BnProblem problem;

    if (count - opt->val_count != 1
        || !find_bn_problem(spec, opt->load_path, &problem))
        return;
    dataset_free(train);
    dataset_free(test);
    if (opt->val_count == 1)
        usage_error("invalid value '1' for --val: it leaves 1 of the %d "
                    "training images to train on, but %s; drop --val, or "
                    "use %s", count, problem.reason, problem.no_bn);
    if (opt->val_count > 0)
        usage_error("invalid value '%d' for --val: it leaves 1 of the %d "
                    "training images to train on, but %s; use --val %d or "
                    "less, or %s", opt->val_count, count, problem.reason,
                    opt->val_count - 1, problem.no_bn);
    usage_error("the training set in %s has 1 image, but %s; give --data a "
                "directory with 2 or more training images, or use %s", dir,
                problem.reason, problem.no_bn);
}

/* A file named on the command line, for check_distinct_files. */
typedef struct {
    const char *option;     /* "--load", or "data file" */
    const char *path;
    struct stat st;
} NamedFile;

/* Adds PATH to FILES when it exists, so that it can be compared. */
static void add_named_file(NamedFile *files, int *n, const char *option,
                           const char *path)
{
    if (path == NULL || stat(path, &files[*n].st) != 0)
        return;
    files[*n].option = option;
    files[*n].path = path;
    (*n)++;
}

/*
 * Rejects two of --load, --save, --log and the data files in DATA_DIR
 * that are the same file (the same device and inode), because appending
 * the log to a checkpoint or saving over a data file destroys it. --load
 * and --save may name the same file, which resumes and saves in place,
 * and so may two data files.
 */
static void check_distinct_files(const Options *opt, const char *data_dir)
{
    NamedFile files[3 + DATASET_FILES];
    char *data_paths[DATASET_FILES];
    char message[4 * PATH_MAX];
    int n = 0;

    message[0] = '\0';

    add_named_file(files, &n, "--load", opt->load_path);
    add_named_file(files, &n, "--save", opt->save_path);
    add_named_file(files, &n, "--log", opt->log_path);
    for (int i = 0; i < DATASET_FILES; i++) {
        data_paths[i] = dataset_find_file(data_dir, dataset_file_bases[i]);
        add_named_file(files, &n, "data file", data_paths[i]);
    }
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            const NamedFile *a = &files[i], *b = &files[j];

            /* The data files come last, so B is the option to change
             * unless it is a data file. Nothing writes to data files, so
             * two of them may be one file. */
            int b_is_data = strcmp(b->option, "data file") == 0;

            if (a->st.st_dev != b->st.st_dev || a->st.st_ino != b->st.st_ino
                || (strcmp(a->option, "--load") == 0
                    && strcmp(b->option, "--save") == 0)
                || (b_is_data && strcmp(a->option, "data file") == 0)
                || message[0] != '\0')
                continue;
            snprintf(message, sizeof message, "%s %s and %s %s are the "
                     "same file; give %s another name", a->option, a->path,
                     b->option, b->path, b_is_data ? a->option : b->option);
        }
    }
    for (int i = 0; i < DATASET_FILES; i++)
        free(data_paths[i]);
    if (message[0] != '\0')
        usage_error("%s", message);
}

/* Loads the test set and, with NEED_TRAIN, the training set, which the
 * options that shape training and the model SPEC (NULL for the default)
 * are checked against when the run trains. */
static void load_data(const Options *opt, const char *spec, int need_train,
                      Dataset *train, Dataset *test)
{
    char err[DATASET_ERR_LEN];
    char *dir = NULL, *not_found = NULL;
    int count;

    if (dataset_locate(opt->data_dir, &dir, &not_found) != 0) {
        print_message_lines(stderr, not_found);
        free(not_found);
        exit(1);
    }
    check_distinct_files(opt, dir);
    /* The interface takes over the screen only once the data is in. On a
     * busy machine that can take seconds, and this line fills the wait. */
    if (!opt->headless && !opt->eval) {
        print_message(stdout, "loading the data from %s", dir);
        flush_stdout();
        tty_quiet_begin(STDIN_FILENO);
    }
    /* A stop signal during the training set's load skips the test set's:
     * the caller then exits without training. */
    if ((need_train && dataset_load(dir, 1, train, err, sizeof err) != 0)
        || (!quit_signal && dataset_load(dir, 0, test, err, sizeof err) != 0)) {
        print_message(stderr, "%s", err);
        free(dir);
        dataset_free(train);
        exit(1);
    }
    if (opt->epochs == 0) {
        free(dir);
        return;
    }
    count = train->count;
    if (opt->val_count >= count || opt->train_limit > count - opt->val_count) {
        free(dir);
        dataset_free(train);
        dataset_free(test);
    }
    if (opt->val_count >= count)
        usage_error("invalid value '%d' for --val: expected an integer from "
                    "0 to %d, so that some of the %d training images are "
                    "left to train on", opt->val_count, count - 1, count);
    if (opt->train_limit > count - opt->val_count) {
        int left = count - opt->val_count;

        usage_error("invalid value '%d' for --train-limit: expected an "
                    "integer from 1 to %d, the number of training images%s",
                    opt->train_limit, left,
                    opt->val_count > 0 ? " outside the validation split" : "");
    }
    check_bn_train_set(opt, spec, dir, count, train, test);
    free(dir);
}

/* Prints the accuracy line of --eval and of headless exploring, in the
 * status pane's units: a percentage with two decimals. */
static void print_test_result(const TrainerStatus *st)
{
    printf("test accuracy: %.2f%%  test loss: %.4f\n", 100 * st->test_acc,
           st->test_loss);
}

/* Prints the --eval report of the loaded model and returns 0, or prints
 * the trainer's error and returns 1 when the model gives NaN predictions
 * for some test images, which have no class to report. The layout is
 * documented under --eval in the man page, which scripts rely on:
 * precision, recall and F1 are percentages with one decimal, as in the
 * per-class pane. */
static int print_eval(Trainer *tr)
{
    TrainerStatus *st = xmalloc(sizeof *st);
    ClassMetrics cm[DATASET_CLASSES];

    trainer_evaluate(tr);
    trainer_get_status(tr, st);
    if (st->test_nonfinite > 0) {
        print_message(stderr, "%s", st->message);
        free(st);
        return 1;
    }
    metrics_per_class(st->confusion, st->test_unpredicted, cm);

    printf("model: %s\n", trainer_net(tr)->spec);
    print_test_result(st);
    printf("\nper-class metrics (test set, %%)\n");
    printf("%-12s %9s %7s %6s %8s\n", "class", "precision", "recall", "F1",
           "support");
    for (int i = 0; i < DATASET_CLASSES; i++)
        printf("%-12s %9.1f %7.1f %6.1f %8ld\n", dataset_class_names[i],
               100 * cm[i].precision, 100 * cm[i].recall, 100 * cm[i].f1,
               cm[i].support);

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
    return 0;
}

/* Returns 1 once a hangup took the terminal that stderr wrote to, so that
 * messages go to the log instead. */
static int notes_go_to_log(const EpochSink *sink)
{
    return atomic_load(&sink->detached) && sink->stderr_is_tty;
}

/* Writes "# fmnist: MESSAGE" to the log, unless a write to it failed
 * before. The message is escaped by format_escaped, so that it stays one
 * line. The trainer thread writes CSV lines to the same FILE, so
 * flockfile keeps each line whole. */
static void log_comment_v(EpochSink *sink, const char *fmt, va_list ap)
{
    FILE *log = sink->log;
    char *escaped = format_escaped(fmt, ap);

    flockfile(log);
    if (!sink->log_failed) {
        fprintf(log, "# fmnist: %s\n", escaped);
        check_log_write(sink);
    }
    show_log_failure(sink);
    funlockfile(log);
    free(escaped);
}

__attribute__((format(printf, 2, 3)))
static void log_comment(EpochSink *sink, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_comment_v(sink, fmt, ap);
    va_end(ap);
}

/*
 * Logs every failed checkpoint write with its reason, and the first write
 * that works after failures, whether the terminal UI or headless mode
 * runs. After a hangup it logs every save, as the terminal would have
 * shown it. Runs on the thread that saved (see TrainerConfig.on_save).
 */
static void on_save(const char *path, const char *err, void *ctx)
{
    EpochSink *sink = ctx;
    FILE *log = sink->log;

    if (log == NULL)
        return;
    flockfile(log);
    if (err != NULL) {
        sink->save_failures++;
        log_comment(sink, "checkpoint not saved: %s", err);
    } else if (sink->save_failures > 0) {
        log_comment(sink, "saved %s again after %d failed attempt%s", path,
                    sink->save_failures, sink->save_failures == 1 ? "" : "s");
        sink->save_failures = 0;
    } else if (notes_go_to_log(sink)) {
        log_comment(sink, "saved %s", path);
    }
    show_log_failure(sink);
    funlockfile(log);
}

/* Writes one message line for the user to stderr. Once a hangup took
 * stderr away, the line goes to the --log file as a "# " comment instead,
 * and without a log it is dropped. Main thread only. */
__attribute__((format(printf, 2, 3)))
static void note(EpochSink *sink, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (!notes_go_to_log(sink)) {
        flockfile(stderr);
        print_message_v(stderr, fmt, ap);
        fflush(stderr);
        funlockfile(stderr);
    } else if (sink->log != NULL) {
        log_comment_v(sink, fmt, ap);
    }
    va_end(ap);
}

/* Notes what the checkpoint file contains after training failed in a
 * headless run, in the words of the interface's summary. The trainer
 * writes no checkpoint once the run diverged, so the file keeps the last
 * epoch saved before that, or the model that --load read from the same
 * file, or nothing at all. Without --save nothing is noted. */
static void note_failed_save(EpochSink *sink, const TrainerStatus *st)
{
    char line[PATH_MAX + 128];

    if (tui_format_failed_save(st, line, sizeof line))
        note(sink, "%s", line);
}

/* Writes the "fmnist: " lines of TEXT, a temporary file, as notes, and
 * closes TEXT. */
static void note_lines(EpochSink *sink, FILE *text)
{
    char line[512];

    rewind(text);
    while (fgets(line, sizeof line, text) != NULL) {
        const char *body = line;

        line[strcspn(line, "\n")] = '\0';
        if (strncmp(body, "fmnist: ", 8) == 0)
            body += 8;
        note(sink, "%s", body);
    }
    fclose(text);
}

/* Notes where the stop signal SIG left the training run of final status
 * ST, in the words of the interface's summary. */
static void note_stop(EpochSink *sink, const TrainerStatus *st, int sig)
{
    FILE *text = tmpfile();

    if (text == NULL) {
        note(sink, "cannot write where the stop signal left the run: %s",
             strerror(errno));
        return;
    }
    tui_print_stop(text, st, sig);
    note_lines(sink, text);
}

/* Writes the summary that the interface prints on exit as notes, for a
 * run whose terminal hung up: they go to the log, if there is one. With
 * STOP_NOTED, notes have given where a stop signal left the run, so the
 * summary does not repeat that. WARNING is the full start-up warning,
 * or NULL. */
static void note_summary(EpochSink *sink, const TrainerStatus *st,
                         int stop_noted, const char *warning)
{
    FILE *text = tmpfile();
    TuiSummary summary = {
        .stop_printed = stop_noted, .detached = 1, .warning = warning,
    };

    if (text == NULL) {
        note(sink, "cannot write the summary: %s", strerror(errno));
        return;
    }
    tui_print_summary(text, st, &summary);
    note_lines(sink, text);
}

/* Lets go of the terminal after a hangup. Standard streams that were the
 * terminal now go to /dev/null, so later writes neither fail nor block,
 * and messages go to the log. Training goes on, and a paused run resumes,
 * since no key can resume it any more. */
static void detach(EpochSink *sink, Trainer *tr, const TrainerStatus *st,
                   const char *why)
{
    tty_detach_stdio();
    atomic_store(&sink->detached, 1);
    if (st->train_epochs == 0)
        note(sink, "%s; nothing was training, so fmnist exits", why);
    else if (trainer_set_paused(tr, 0))
        note(sink, "%s; paused training resumes without a terminal", why);
    else
        note(sink, "%s; training continues without a terminal", why);
}

/* Waits for the trainer to finish, polling the signal flags ten times a
 * second and passing on new status messages (saves, failed saves). The
 * final failure message is left to the caller. Returns the final state. */
static TrainerState wait_headless(Trainer *tr, TrainerStatus *st,
                                  EpochSink *sink)
{
    const struct timespec tick = { 0, 100 * 1000 * 1000 };
    unsigned shown_seq = 0;
    int first = 1, stop_sent = 0;

    for (;;) {
        trainer_get_status(tr, st);
        /* Each save sets the message anew, with the same text when the
         * file is the same, so only the sequence number distinguishes
         * them. The first pass shows a message left by trainer_create.
         * Once notes go to the log, on_save already put the saves
         * there. */
        if (st->state != TRAINER_FAILED
            && (first || st->message_seq != shown_seq)) {
            shown_seq = st->message_seq;
            first = 0;
            if (st->message[0] != '\0' && !notes_go_to_log(sink))
                note(sink, "%s", st->message);
        }
        if (st->state == TRAINER_DONE || st->state == TRAINER_FAILED)
            return st->state;
        if (hangup_signal && !atomic_load(&sink->detached))
            detach(sink, tr, st, "received SIGHUP");
        if (quit_signal && !stop_sent) {
            trainer_request_stop(tr);
            stop_sent = 1;
        }
        nanosleep(&tick, NULL);
    }
}

/* Prints the network and the training options of a headless run to
 * stderr, so that a saved log records how its numbers were made. The
 * optimiser and learning rate are the trainer's, which a resumed run
 * takes from the checkpoint. */
static void print_run_summary(const Options *opt, Trainer *tr, int threads)
{
    const Net *net = trainer_net(tr);
    float lr;
    OptimKind optim = trainer_optim(tr, &lr);

    print_message(stderr, "training %s for %d epoch%s on %d thread%s",
                  net->spec, opt->epochs, opt->epochs == 1 ? "" : "s",
                  threads, threads == 1 ? "" : "s");
    fprintf(stderr, "fmnist: batch %d, %s, lr %g", opt->batch,
            optim_name(optim), lr);
    fprintf(stderr, ", %s schedule", schedule_name((ScheduleKind)opt->schedule));
    if (opt->schedule == SCHEDULE_STEP) {
        char gamma[16];

        /* %g would round a factor such as 0.9999999 to "1". */
        util_format_float(opt->lr_gamma, gamma, sizeof gamma);
        if (opt->lr_step == 1)
            fprintf(stderr, " (x%s every epoch)", gamma);
        else
            fprintf(stderr, " (x%s every %d epochs)", gamma, opt->lr_step);
    }
    if (opt->weight_decay > 0)
        fprintf(stderr, ", weight decay %g %s", opt->weight_decay,
                decay_name((DecayKind)opt->decay));
    if (opt->flip)
        fprintf(stderr, ", flips");
    if (opt->shift > 0)
        fprintf(stderr, ", shifts up to %d px", opt->shift);
    if (opt->val_count > 0)
        fprintf(stderr, ", %d validation image%s", opt->val_count,
                opt->val_count == 1 ? "" : "s");
    fputc('\n', stderr);
    if (opt->save_path != NULL)
        print_message(stderr, "checkpoint %s after each epoch",
                      opt->save_path);
    else
        print_message(stderr, "no --save, so the trained network is not "
                      "written to a file");
}

/* Writes " NAME VALUE" to OUT, with VALUE as one shell word. Returns -1,
 * writing nothing, when VALUE contains a character that is not
 * printable in the locale (see util_next_char), such as a control
 * character, which a terminal would act on and a pasted command would
 * lose. NAME may be "", which leaves out " NAME". */
static int put_word(FILE *out, const char *name, const char *value)
{
    size_t len = util_shell_quote(value, NULL, 0);
    char *word;

    for (const char *c = value; *c != '\0';) {
        int printable;

        c += util_next_char(c, &printable);
        if (!printable)
            return -1;
    }
    word = xmalloc(len + 1);
    util_shell_quote(value, word, len + 1);
    if (name[0] != '\0')
        fprintf(out, " %s ", name);
    fputs(word, out);
    free(word);
    return 0;
}

/* Writes " NAME VALUE" for an option with a float value, as a text that
 * reads back as the same float. */
static void put_float(FILE *out, const char *name, float value)
{
    char text[16];

    util_format_float(value, text, sizeof text);
    fprintf(out, " %s %s", name, text);
}

/* Writes to OUT the options of OPT that a checkpoint does not store and
 * that the command line gave, so that a resumed run trains as this one
 * did. Returns -1 as put_word does, and sets *BAD to "the --model spec",
 * else returns 0. */
static int put_recipe(FILE *out, const Options *opt, const char **bad)
{
    int rc = 0;

    /* apply_preset rejects every name but the presets' own. */
    if (opt->preset != NULL)
        fprintf(out, " --preset %s", opt->preset);
    /* A --model given with --preset replaces the preset's network, and
     * --load rejects a --preset whose network the checkpoint lacks. */
    if (opt->preset != NULL && !opt->spec_from_preset)
        rc = put_word(out, "--model", opt->spec);
    if (rc != 0)
        *bad = "the --model spec";
    if (opt->batch_given)
        fprintf(out, " --batch %d", opt->batch);
    if (opt->train_limit > 0)
        fprintf(out, " --train-limit %d", opt->train_limit);
    if (opt->val_count > 0)
        fprintf(out, " --val %d", opt->val_count);
    if (opt->schedule_given)
        fprintf(out, " --schedule %s",
                schedule_name((ScheduleKind)opt->schedule));
    if (opt->lr_step_given)
        fprintf(out, " --lr-step %d", opt->lr_step);
    if (opt->lr_gamma_given)
        put_float(out, "--lr-gamma", opt->lr_gamma);
    if (opt->weight_decay_given)
        put_float(out, "--weight-decay", opt->weight_decay);
    if (opt->decay_given)
        fprintf(out, " --decay-mode %s", decay_name((DecayKind)opt->decay));
    if (opt->flip_given)
        fprintf(out, " --flip");
    if (opt->shift_given)
        fprintf(out, " --shift %d", opt->shift);
    return rc;
}

/*
 * Returns the shell command that trains the epochs this run left, from
 * its --save checkpoint, which the caller frees. PROG is argv[0]. Returns
 * NULL without --save or an epoch left, after a failed run, or when the
 * last save failed or is older than the run's end. A name with a
 * character that util_escape_unprintable would escape gives NULL too,
 * since the line is printed as it is and no pasted line could contain
 * such a character. *BAD then names the value, such as "the --save
 * name"; it stays NULL otherwise.
 */
static char *resume_command(const Options *opt, const char *prog,
                            const TrainerStatus *st, const char **bad)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out;

    if (opt->save_path == NULL || st->train_epochs == 0
        || st->state == TRAINER_FAILED || st->saved_path == NULL
        || st->save_failed || st->saved_behind
        || st->saved_epochs >= st->epochs)
        return NULL;
    out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    if (put_word(out, "", prog) != 0)
        *bad = "the program name";
    if (opt->data_dir != NULL && put_word(out, "--data", opt->data_dir) != 0)
        *bad = "the --data name";
    /* --save and --load name the same file. */
    if (put_word(out, "--load", st->saved_path) != 0
        || put_word(out, "--save", st->saved_path) != 0)
        *bad = "the --save name";
    put_recipe(out, opt, bad);
    if (opt->log_path != NULL && put_word(out, "--log", opt->log_path) != 0)
        *bad = "the --log name";
    fprintf(out, " --epochs %d", st->epochs - st->saved_epochs);
    if (fclose(out) != 0 || *bad != NULL) {
        free(text);
        return NULL;
    }
    return text;
}

/* The message that gives the reason for a missing resume command, with
 * the value that resume_command named. */
#define resume_unprintable "no resume command, because %s contains a " \
    "character that is not printable here; rename it and pass it to --load"

/* Reports the first failed write to stdout, by stdio or by the epoch
 * lines' thread, and makes the exit status 1 unless it is already
 * nonzero. After a hangup, stdout went away with the terminal, which is
 * not an error of the run. */
static void report_stdout_error(EpochSink *sink, int *status)
{
    int err;

    flush_stdout();
    err = stdout_errno;
    if (sink->lines != NULL) {
        if (err == 0)
            err = linequeue_error(sink->lines);
        linequeue_free(sink->lines);
        sink->lines = NULL;
    }
    if (err == 0 || atomic_load(&sink->detached))
        return;
    note(sink, "cannot write to standard output: %s", strerror(err));
    if (*status == 0)
        *status = 1;
}

/* SA_RESTART keeps a signal from failing the checkpoint's writes with
 * EINTR; getch and nanosleep still return early, so the flags are seen
 * within a tick. */
static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_quit_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hangup_signal;
    sigaction(SIGHUP, &sa, NULL);

    /* A checkpoint write past the file-size limit (ulimit -f) then fails
     * with EFBIG and is reported like a full disk, instead of the signal
     * killing the run. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &sa, NULL);

    /* Once the reader of stdout exits (fmnist --headless | head), a write
     * fails with EPIPE instead of the signal killing the run before its
     * next save. Training, saving and logging go on without stdout, and
     * the run reports the error and exits 1 at its end: the trained
     * model is worth more than the epoch lines. */
    sigaction(SIGPIPE, &sa, NULL);
}

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and stores the
 * previous mask in OLD. Threads created meanwhile inherit the block, so
 * the kernel delivers these signals to the main thread, where they cut
 * the key or sleep timeout short. */
static void block_signals(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* Opens /dev/null on each of descriptors 0, 1 and 2 that is closed.
 * Otherwise the log or a checkpoint would get that number, and output
 * meant for the terminal would land in the file. Lower descriptors are
 * done first, so open returns the one that is closed. */
static void keep_standard_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF
            && open("/dev/null", O_RDWR) < 0)
            exit(1);
}

int main(int argc, char **argv)
{
    Options opt = {
        .epochs = 5, .batch = 64, .optim = OPTIM_ADAM, .seed = 1,
        .flip = -1, .shift = -1, .schedule = -1, .lr_step = 10,
        .lr_gamma = 0.1f, .weight_decay = -1.0f, .decay = -1,
    };
    Dataset train = { 0 }, test = { 0 };
    EpochSink sink = { .log = NULL };
    char err[TRAINER_ERR_LEN];
    int status = 0;
    int ui_detached = 0;    /* the interface ran until a hangup */
    int nan_predictions = 0; /* --epochs 0 found NaN predictions */

    keep_standard_fds_open();
    /* The user's locale gives the terminal its character set, but numbers
     * keep the decimal point: the --log CSV, the epoch lines and option
     * values such as --lr 0.002 would otherwise follow a locale that
     * writes 0,002. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    sink.stderr_is_tty = isatty(STDERR_FILENO);
    parse_options(argc, argv, &opt);
    int threads_given = opt.threads != 0;
    if (opt.threads == 0)
        opt.threads = util_online_cpus();
    if (!opt.headless && !opt.eval && !isatty(STDOUT_FILENO))
        opt.headless = 1;
    /* An FMNIST_GEMM that cannot apply leaves the automatic kernel. The
     * warning goes out before the interface takes the terminal. */
    if (gemm_kernel_note() != NULL)
        print_message(stderr, "warning: %s", gemm_kernel_note());

    /* Reject a bad spec before spending a second on loading the data. */
    if (opt.spec != NULL) {
        Net probe;
        if (net_create(&probe, opt.spec, 1, DATASET_ROWS, DATASET_COLS,
                       DATASET_CLASSES, err, sizeof err) != 0) {
            const char *reason = strncmp(err, "model spec: ", 12) == 0
                                 ? err + 12 : err;
            /* A word of letters only was likely meant as a preset. */
            if (strspn(opt.spec, "abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(opt.spec))
                usage_error("invalid value '%s' for --model: not a preset "
                            "name (default, small, tf or best); as a spec, "
                            "%s", opt.spec, reason);
            usage_error("invalid value '%s' for --model: %s", opt.spec,
                        reason);
        }
        /* Checked here, because a checkpoint's save would fail only
         * after the first epoch. */
        if (strlen(probe.spec) > CHECKPOINT_SPEC_MAX)
            usage_error("invalid --model: the spec is %zu bytes, but a "
                        "checkpoint holds at most %d; give a shorter spec",
                        strlen(probe.spec), CHECKPOINT_SPEC_MAX);
        net_free(&probe);
        check_bn_batch(&opt, opt.spec, NULL);
    }

    if (opt.save_path != NULL) {
        check_save_path(opt.save_path);
        lock_save_path(opt.save_path);
    }
    /* The checkpoint's model spec, which trains in place of --model's. */
    char *load_spec = NULL;
    char recipe_gap[PATH_MAX + 256] = "";
    char recipe_gap_screen[192] = "";
    if (opt.load_path != NULL) {
        load_spec = check_load_path(opt.load_path);
        check_load_model(&opt, load_spec);
        check_bn_batch(&opt, load_spec, opt.load_path);
        describe_recipe_gap(&opt, load_spec, recipe_gap, sizeof recipe_gap,
                            recipe_gap_screen, sizeof recipe_gap_screen);
    }
    check_save_keeps_checkpoint(&opt);
    if (opt.log_path != NULL)
        check_log_path(opt.log_path);
    /* Before the data loads, so that a hangup or Ctrl-C in the first
     * second is handled like a later one rather than killing the run. */
    install_signals();
    /* The interface browses the training images (key t) even when it only
     * explores a model. */
    load_data(&opt, load_spec != NULL ? load_spec : opt.spec,
              opt.epochs > 0 || (!opt.headless && !opt.eval), &train, &test);
    char *log_spec = NULL;
    if (opt.log_path != NULL)
        log_spec = canonical_model_spec(load_spec != NULL ? load_spec
                                                          : opt.spec);
    free(load_spec);
    tty_quiet_end();
    if (quit_signal) {
        print_message(stderr, "stopped by %s while loading the data; "
                      "nothing was trained",
                      quit_signal == SIGINT ? "SIGINT" : "SIGTERM");
        free(log_spec);
        dataset_free(&train);
        dataset_free(&test);
        return 128 + quit_signal;
    }
    if (opt.log_path != NULL)
        sink.log = open_log(opt.log_path, opt.load_path, log_spec,
                            &sink.log_seven);
    free(log_spec);
    sink.log_path = opt.log_path;
    sink.saves_each_epoch = opt.save_path != NULL;
    atomic_store(&sink.print_lines, opt.headless);

    /* Without --save, s saves to the --load file. A save renames a new
     * file over its path, which would replace a symbolic link, so it goes
     * to the link's target, the checkpoint that was loaded. */
    char *load_target = NULL;
    struct stat load_st;
    if (opt.save_path == NULL && opt.load_path != NULL
        && lstat(opt.load_path, &load_st) == 0 && S_ISLNK(load_st.st_mode))
        load_target = realpath(opt.load_path, NULL);

    TrainerConfig cfg = {
        .spec = opt.spec, .optim = (OptimKind)opt.optim,
        .optim_given = opt.optim_given, .lr = opt.lr,
        .epochs = opt.epochs, .batch = opt.batch, .seed = opt.seed,
        .threads = opt.threads, .train_limit = opt.train_limit,
        .val_count = opt.val_count,
        .augment = { .flip = opt.flip, .shift = opt.shift },
        .schedule = { .kind = (ScheduleKind)opt.schedule,
                      .step_epochs = opt.lr_step, .gamma = opt.lr_gamma },
        .weight_decay = opt.weight_decay, .decay = (DecayKind)opt.decay,
        .save_path = opt.save_path,
        .load_path = load_target != NULL ? load_target : opt.load_path,
        /* Headless runs show no predictions, but the evaluation stops a
         * run whose loaded model already gives NaN predictions, before
         * training blames the learning rate for them. */
        .evaluate_loaded = 1,
        .on_epoch = on_epoch, .on_save = on_save, .ctx = &sink,
    };
    /* The interface shows the short form of the preset warning, then
     * the read-only one, and its summary repeats both in full. */
    char read_only[PATH_MAX + 192];
    int save_key_blocked = describe_read_only_load(&opt, cfg.load_path,
                                                   read_only,
                                                   sizeof read_only) == 2;
    const char *first_warning = recipe_gap_screen[0] != '\0'
                                ? recipe_gap_screen
                                : read_only[0] != '\0' ? read_only : NULL;
    const char *next_warning = recipe_gap_screen[0] != '\0'
                               && read_only[0] != '\0' ? read_only : NULL;
    sigset_t old_mask;
    block_signals(&old_mask);
    Trainer *tr = trainer_create(&cfg, opt.epochs > 0 ? &train : NULL, &test,
                                 err, sizeof err);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    TrainerStatus *st = NULL;
    if (tr == NULL) {
        print_message(stderr, "%s", err);
        status = 1;
        goto done;
    }

    st = xmalloc(sizeof *st);
    trainer_get_status(tr, st);
    sink.epochs = st->epochs;
    sink.trainer = tr;

    if (opt.eval) {
        /* An evaluation has nothing to save, so Ctrl-C ends it at once,
         * and so does a reader that exits early, as with any filter. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (print_eval(tr) != 0)
            status = 1;
        goto done;
    }

    if (threads_given && st->threads < opt.threads) {
        const char *plural = st->threads == 1 ? "" : "s";
        /* The training images the run trains on, as the trainer counts
         * them, can make every batch smaller than --batch. */
        int trained = train.count - opt.val_count;
        if (opt.train_limit > 0 && opt.train_limit < trained)
            trained = opt.train_limit;
        int whole_set = opt.epochs > 0 && trained < opt.batch;

        print_message(stderr, "using %d thread%s, not %d: a batch of %d%s "
                      "splits into %d shard%s of up to %d images, one per "
                      "thread", st->threads, plural, opt.threads,
                      whole_set ? trained : opt.batch,
                      whole_set ? " (every training image)" : "",
                      st->threads, plural, TRAINER_SHARD);
    }
    if (opt.headless && opt.epochs > 0)
        print_run_summary(&opt, tr, st->threads);
    /* The interface shows the warning in its status line for 12 seconds
     * or until a key is pressed. A trainer message would last 5 seconds,
     * which the test of the loaded model can use up before training
     * starts. */
    if (recipe_gap[0] != '\0' && opt.headless)
        fprintf(stderr, "fmnist: warning: %s\n", recipe_gap);
    block_signals(&old_mask);
    sink.lines = linequeue_start(STDOUT_FILENO);
    int start_rc = sink.lines != NULL ? trainer_start(tr) : -1;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (start_rc != 0) {
        print_message(stderr, "cannot start the training thread or the "
                      "thread that writes its output");
        status = 1;
        goto done;
    }

    if (!opt.headless) {
        /* The viewer's training images are the ones the run trains on:
         * the validation split comes off the end, and --train-limit keeps
         * the first images. */
        Dataset trained = train;

        if (opt.val_count > 0 && opt.val_count < trained.count)
            trained.count -= opt.val_count;
        if (opt.train_limit > 0 && opt.train_limit < trained.count)
            trained.count = opt.train_limit;
        TuiOptions tui = {
            .ascii = opt.ascii,
            .no_color = opt.no_color || getenv("NO_COLOR") != NULL,
            .train = &trained,
            .quit_signal = &quit_signal,
            .hangup = &hangup_signal,
            .warning = first_warning,
            .warning_next = next_warning,
        };
        char tui_err[256];
        int tui_rc = tui_run(tr, &test, &tui, tui_err, sizeof tui_err);
        if (tui_rc < 0) {
            print_message(stderr, "%s; using headless mode", tui_err);
            if (recipe_gap[0] != '\0')
                fprintf(stderr, "fmnist: warning: %s\n", recipe_gap);
            atomic_store(&sink.print_lines, 1);
            opt.headless = 1;
            /* The lines a headless run prints at its start, late but
             * before the first epoch ends. */
            if (opt.epochs > 0)
                print_run_summary(&opt, tr, st->threads);
        } else if (tui_rc == TUI_DETACHED) {
            detach(&sink, tr, st,
                   hangup_signal ? "received SIGHUP" : "the terminal hung up");
            opt.headless = 1;
            ui_detached = 1;
        }
    }

    /* Ctrl-Z then stops training without counting in its time. The
     * interface does the same while curses runs. */
    if (opt.headless)
        util_time_stops(1);
    /* A model with NaN predictions has no accuracy to print. As with
     * --eval, the trainer's message, which wait_headless printed, is the
     * result, and the status is 1. */
    if (opt.headless && wait_headless(tr, st, &sink) == TRAINER_DONE
        && opt.epochs == 0 && st->has_eval) {
        if (st->test_nonfinite > 0) {
            nan_predictions = 1;
        } else {
            if (opt.load_path == NULL)
                print_message(stderr, "no --load, so this network is "
                              "untrained");
            print_test_result(st);
        }
    }
    trainer_request_stop(tr);
    trainer_join(tr);
    util_time_stops(0);
    /* The epoch lines go out before the notes below, which follow them
     * on a terminal. After a stop signal, a reader that stopped reading
     * (a full pipe) gets about 0.1 s, so it cannot hold up the exit. */
    linequeue_drain(sink.lines, &quit_signal);
    trainer_get_status(tr, st);
    /* A model explored in the interface that gives NaN predictions
     * exits 1 as in headless mode. A training run that met NaN
     * predictions has failed already. */
    if (!opt.headless && opt.epochs == 0 && st->has_eval
        && st->test_nonfinite > 0)
        nan_predictions = 1;
    /* The interface's summary reports where a stop left the run. A
     * headless run reports it too, because its last epoch line would
     * read as the end. */
    int stop_noted = opt.headless && opt.epochs > 0 && quit_signal
                     && st->state != TRAINER_FAILED;
    if (stop_noted)
        note_stop(&sink, st, quit_signal);
    /* The reason comes before its effect on the checkpoint and before
     * the summary. */
    if (st->state == TRAINER_FAILED)
        note(&sink, "%s", st->failure);
    const char *unprintable = NULL;
    char *resume = resume_command(&opt, argv[0], st, &unprintable);
    if (opt.headless && opt.epochs > 0) {
        if (st->state == TRAINER_FAILED)
            note_failed_save(&sink, st);
        else if (st->saved_path == NULL && st->save_failed)
            note(&sink, "no checkpoint written: every save failed");
        else if (st->saved_path == NULL && !atomic_load(&sink.detached))
            print_message(stderr, "no checkpoint written; --save FILE "
                          "writes one");
        else if (st->save_failed)
            note(&sink, "the last save failed, so %s holds an earlier "
                 "model", st->saved_path);
    }
    /* opt.headless is still 0 only when the interface ran and closed the
     * normal way. The shell then gets a summary, unless the run ended in
     * the background (kill %1 after Ctrl-Z) and the terminal has TOSTOP
     * set, so the write would stop fmnist again. */
    if (!opt.headless && !tty_output_stops(STDOUT_FILENO)) {
        TuiSummary summary = {
            .log_path = opt.log_path, .quit_signal = quit_signal,
            .warning = recipe_gap[0] != '\0' ? recipe_gap : NULL,
            .load_warning = read_only[0] != '\0' ? read_only : NULL,
            .save_key_blocked = save_key_blocked,
        };

        tui_print_summary(stdout, st, &summary);
        if (resume != NULL)
            printf("fmnist: resume with: %s\n", resume);
        else if (unprintable != NULL)
            print_message(stdout, resume_unprintable, unprintable);
    } else if (ui_detached || (opt.headless && resume != NULL)) {
        if (ui_detached)
            note_summary(&sink, st, stop_noted,
                         recipe_gap[0] != '\0' ? recipe_gap : NULL);
        if (resume != NULL)
            note(&sink, "resume with: %s", resume);
        else if (unprintable != NULL)
            note(&sink, resume_unprintable, unprintable);
    } else if (opt.headless && unprintable != NULL) {
        note(&sink, resume_unprintable, unprintable);
    }
    free(resume);
    /* The callbacks have ended, so the log's fields are settled. */
    if (sink.log_failed && !opt.headless)
        print_message(stdout, "--log %s is incomplete: a write failed (%s)",
                      opt.log_path, sink.log_error);
    else if (sink.log_failed)
        note(&sink, "--log %s is incomplete: a write failed (%s)",
             opt.log_path, sink.log_error);
    if (st->state == TRAINER_FAILED || nan_predictions) {
        status = 1;
    } else if (quit_signal) {
        status = 128 + quit_signal;
    } else if (st->save_failed || sink.log_failed) {
        /* The trained model or the log is not on disk as asked. */
        status = 1;
    }

done:
    report_stdout_error(&sink, &status);
    free(load_target);
    free(st);
    trainer_free(tr);
    /* Every write was flushed, but a network file system may report a
     * failure only here. */
    if (sink.log != NULL && fclose(sink.log) != 0 && !sink.log_failed) {
        print_message(stderr, "writing --log %s failed: %s",
                      opt.log_path, strerror(errno));
        if (status == 0)
            status = 1;
    }
    dataset_free(&train);
    dataset_free(&test);
    return status;
}
