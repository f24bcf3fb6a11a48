/*
 * util: checked allocation, a monotonic clock, CPU count, a decaying
 * throughput average and a seeded random number generator that callers
 * pass around explicitly.
 *
 * Allocation failure is not recoverable in this program: the x* wrappers
 * call the fatal hook (which ends curses), print what failed with a hint
 * and exit with status 1, so callers never test their results.
 */
#ifndef FMNIST_UTIL_H
#define FMNIST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Sets the function that runs before the process dies on allocation
 * failure or a fatal signal; the terminal code uses it to restore the tty. */
void util_set_fatal_hook(void (*hook)(void));

/* Runs the fatal hook, prints "fmnist: MSG" to stderr and aborts. */
void util_fatal(const char *msg);

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);

/* Allocates SIZE bytes aligned to 64 bytes for vector kernels; free with
 * free(). Blocks of 4 MB or more start on a 2 MB boundary and are marked
 * for Linux's transparent huge pages, which spare the TLB misses of
 * strided passes over large weight and gradient arrays. */
void *xmalloc_aligned(size_t size);

/* Allocates SIZE zeroed, page-aligned bytes straight from the kernel.
 * A page takes memory only once it is written, so a large buffer of
 * which a caller writes only some ranges costs only those ranges. Free
 * with xfree_pages and the same SIZE. */
void *xmalloc_pages(size_t size);
void xfree_pages(void *ptr, size_t size);

/*
 * Opens PATH read-only and returns the descriptor, or -1 with errno set.
 * A directory fails with EISDIR and anything else but a regular file with
 * EINVAL. The open never waits for a writer, so a FIFO named like a data
 * file cannot hang the program.
 */
int util_open_regular(const char *path);

/* Names the file type in MODE (an st_mode) with its article, such as
 * "a FIFO" or "a character device", for messages. */
const char *util_file_kind(unsigned mode);

/*
 * Returns 1 when a save should leave PATH alone: PATH exists and is
 * read-only (no write permission bit, or access(2) denies writing), or
 * its directory is, or its directory has the sticky bit and neither
 * belongs to this user. Root may write such files, so the permission bits
 * count too: a file after chmod a-w is read-only for every user. Writes
 * the reason, such as "x.ckpt is read-only", to REASON (LEN bytes)
 * unless LEN is 0.
 */
int util_read_only(const char *path, char *reason, size_t len);

/* Returns the bytes of the character at TEXT, which must not be the
 * terminating NUL, in the LC_CTYPE locale, and sets *PRINTABLE to whether
 * a terminal shows it as text. A byte that starts no valid character
 * counts as a character of 1 byte, and so does any byte above 127 in a
 * single-byte locale such as C. Controls, C1 controls (U+0080 to U+009F)
 * included, are not printable, and neither are invisible and
 * direction-changing characters such as U+202E and U+200B. */
int util_next_char(const char *text, int *printable);

/*
 * Copies TEXT to OUT with each character that util_next_char finds not
 * printable written as an escape: \n, \r, \t, or \xHH for each of its
 * bytes (U+009B in UTF-8 becomes \xc2\x9b). So a file name can neither
 * start a new line in a log nor send a control sequence to the terminal,
 * and each byte above 127 shows as 4 columns in the C locale. Backslashes
 * are copied as they are. Writes at most SIZE bytes including the
 * terminating NUL, and nothing when SIZE is 0. Returns the length of the
 * whole escaped text, as snprintf does, so OUT was big enough when the
 * result is below SIZE. The output is at most 4 times as long as TEXT.
 */
size_t util_escape_unprintable(const char *text, char *out, size_t size);

/*
 * Copies TEXT to OUT as one word for a POSIX shell: as it is when it
 * contains only letters, digits and _./,:=+-@%, and otherwise in single
 * quotes, with each single quote written as '\''. Control characters
 * are copied as they are. Writes at most SIZE bytes including the NUL
 * and returns the length of the whole word, as util_escape_unprintable
 * does.
 */
size_t util_shell_quote(const char *text, char *out, size_t size);

/* Writes VALUE to OUT as the shortest %g text that strtof reads back as
 * the same float, such as "0.9999999" where %g gives "1". A SIZE of 16
 * fits any finite float. OUT is declared nonnull because otherwise GCC
 * 12 with the sanitizers warns of a null destination in its snprintf. */
__attribute__((nonnull(2)))
void util_format_float(float value, char *out, size_t size);

/* Returns seconds from an arbitrary fixed point on the monotonic clock. */
double util_now(void);

/*
 * With ON set, installs a SIGTSTP handler that times each stop of the
 * process (Ctrl-Z until fg or SIGCONT). It passes the signal on to the
 * handler installed before, such as the one of curses, or else stops the
 * process as the default action would. That happens in the calling
 * thread, to which other threads forward the signal. With ON clear, puts
 * the earlier handler back. Install it after curses starts, and remove it
 * before curses ends.
 */
void util_time_stops(int on);

/* Stops the process as SIGTSTP's default action would, and returns when
 * it continues. For a handler of SIG (SIGTSTP) that has to stop the
 * process itself; it is async-signal-safe. */
void util_stop_by_default(int sig);

/* Returns the seconds the process has spent stopped by SIGTSTP while
 * util_time_stops was on, a stop in progress included. Any thread may
 * call it. */
double util_stopped_seconds(void);

/*
 * Returns when the latest SIGCONT came that no timed SIGTSTP stop
 * accounts for, or 0 before any came while util_time_stops was on. Such
 * a SIGCONT ends a stop by SIGSTOP, whose start no handler can time, or
 * comes to a process that was running (kill -CONT). The time is on the
 * clock util_now() - util_stopped_seconds(). Any thread may call it.
 */
double util_untimed_continue(void);

/* Returns how many SIGCONTs the process has received while
 * util_time_stops was on, whichever stop they ended, if any. The count
 * wraps around. Any thread, and a signal handler, may call it. */
unsigned util_continue_count(void);

/*
 * Returns the seconds to count as running time for an interval from
 * START to END, given CONTINUED, the time of util_untimed_continue, and
 * EXPECTED, the seconds the interval's work usually takes (0 when
 * unknown), all on one clock. Without a continue after START the
 * interval counts whole, however slow. With one, the process stopped
 * at an unknown time before it, so the interval counts the time after
 * the continue, or EXPECTED when that is more, but never more than
 * END - START.
 */
double util_running_seconds(double start, double end, double continued,
                            double expected);

/* Returns the number of online CPUs, at least 1. */
int util_online_cpus(void);

/*
 * RateAverage: a throughput (items per second) in which each interval's
 * weight decays as exp(-t / TAU), where t is the time recorded after it.
 * Over the first TAU seconds it is close to the plain average. Zero it to
 * start.
 */
typedef struct {
    double items;
    double seconds;
} RateAverage;

/* Records N items done in SECONDS. */
void rate_add(RateAverage *r, double tau, double seconds, double n);

/* Returns the items per second, or 0 before any time was recorded. */
double rate_get(const RateAverage *r);

/*
 * Returns R's rate with an interval of N items in progress, which began
 * at BEGAN and is still running at NOW, given CONTINUED as for
 * util_running_seconds: the rate R would have if the interval ended now,
 * added with time constant TAU, when it has counted longer than R's rate
 * expects for N items, and R's rate otherwise. So a rate shown while a
 * machine suddenly slows down falls before the slow interval ends.
 */
double rate_in_progress(const RateAverage *r, double tau, double began,
                        double now, double continued, double n);

/*
 * Rng: xoshiro256** state. Every consumer owns its generator, so a run is
 * reproducible from its seed whatever the thread schedule.
 */
typedef struct {
    uint64_t s[4];
} Rng;

/* Seeds the generator from a 64-bit value through splitmix64. */
void rng_seed(Rng *rng, uint64_t seed);

/* Returns X rotated left by K bits, 0 < K < 64. */
static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Returns 64 uniformly random bits. It is inline because dropout draws
 * one value per unit, and a call per value took most of its time. */
static inline uint64_t rng_next(Rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Returns a float uniform in [0, 1). The top 24 bits fill a float
 * mantissa exactly, so every value is a multiple of 2^-24 and 1.0 cannot
 * occur. They are converted as a 32-bit integer, which takes one
 * instruction where a 64-bit unsigned one takes a branch. */
static inline float rng_uniform(Rng *rng)
{
    return (float)(int32_t)(rng_next(rng) >> 40) * 0x1.0p-24f;
}

/* Returns a standard normal sample (Box-Muller). */
float rng_normal(Rng *rng);

/* Returns an integer uniform in [0, n); n must be positive. */
uint32_t rng_below(Rng *rng, uint32_t n);

/* Shuffles the N integers at INDEX with Fisher-Yates. */
void rng_shuffle(Rng *rng, int *index, int n);

#endif
