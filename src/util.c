/*
 * util: allocation wrappers that never return NULL, the monotonic clock
 * and the time spent stopped, the online CPU count, the decaying
 * throughput average and the xoshiro256** generator.
 *
 * The generator is xoshiro256** 1.0 by Blackman and Vigna
 * (https://prng.di.unimi.it/xoshiro256starstar.c), seeded through
 * splitmix64 as its authors recommend. It is fast and statistically sound
 * for shuffling and weight initialisation, but it is not cryptographic.
 *
 * Limits: rng_normal draws two uniforms per sample and drops the second
 * Box-Muller value, because Rng has no field to cache it in.
 */
#include "config.h"

#include "util.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

/* Alignment of xmalloc_aligned blocks: one x86 cache line, which also
 * covers the 32-byte AVX and 64-byte AVX-512 loads. */
#define ALIGNMENT 64

/* Size of a transparent huge page on x86-64 Linux. xmalloc_aligned starts
 * blocks of at least HUGE_MIN bytes on this boundary and marks their
 * whole 2 MB pieces for huge pages. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)

static void (*fatal_hook)(void);

void util_set_fatal_hook(void (*hook)(void))
{
    fatal_hook = hook;
}

/* Runs the fatal hook once. It is cleared first, so a hook that fails
 * and lands here again cannot recurse. */
static void run_fatal_hook(void)
{
    void (*hook)(void) = fatal_hook;

    fatal_hook = NULL;
    if (hook != NULL)
        hook();
}

void util_fatal(const char *msg)
{
    run_fatal_hook();
    fprintf(stderr, "fmnist: %s\n", msg);
    abort();
}

/* Running out of memory is the machine's limit, not a bug, so it exits
 * with the status of a failed run instead of aborting with a core dump. */
static void out_of_memory(const char *what, size_t size)
{
    run_fatal_hook();
    fprintf(stderr, "fmnist: %s: out of memory allocating %zu bytes; try a "
            "smaller --batch, fewer --threads or a smaller model\n", what,
            size);
    exit(1);
}

/* malloc(0) may return NULL, which would look like a failure, so every
 * wrapper requests at least one byte. */
void *xmalloc(size_t size)
{
    void *p = malloc(size > 0 ? size : 1);

    if (p == NULL)
        out_of_memory("xmalloc", size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p;

    if (count == 0 || size == 0)
        count = size = 1;
    p = calloc(count, size);
    if (p == NULL) {
        /* calloc itself rejects a count * size that overflows. The
         * message then shows the wrapped product. */
        out_of_memory("xcalloc", count * size);
    }
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size > 0 ? size : 1);

    if (p == NULL)
        out_of_memory("xrealloc", size);
    return p;
}

char *xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = xmalloc(len);

    memcpy(copy, s, len);
    return copy;
}

void *xmalloc_aligned(size_t size)
{
    void *p = NULL;
    size_t align = size >= HUGE_MIN ? HUGE_PAGE : ALIGNMENT;

    if (posix_memalign(&p, align, size > 0 ? size : 1) != 0)
        out_of_memory("xmalloc_aligned", size);
#ifdef MADV_HUGEPAGE
    /* The dense layers read their weights and write their gradients
     * down columns, one 4 KB page per row, and a 2 MB page covers 167
     * rows of tf's dense1024. Where the kernel has no transparent huge
     * pages, the call fails or does nothing and the block keeps 4 KB
     * pages, so its result is ignored. A tail shorter than 2 MB is left
     * out. */
    if (align == HUGE_PAGE)
        (void)madvise(p, size & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    return p;
}

void *xmalloc_pages(size_t size)
{
    void *p;

    if (size == 0)
        size = 1;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        out_of_memory("xmalloc_pages", size);
    return p;
}

void xfree_pages(void *ptr, size_t size)
{
    if (ptr != NULL)
        munmap(ptr, size == 0 ? 1 : size);
}

double util_now(void)
{
    struct timespec ts;

    /* clock_gettime fails only for an unsupported clock or a bad pointer,
     * and Linux always supports CLOCK_MONOTONIC. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Time spent stopped, in nanoseconds. The SIGTSTP handler writes it in
 * two steps, when a stop begins and when it ends, and other threads may
 * read it as soon as the process continues, before the handler's second
 * step. So the handler makes stop_sequence odd while it writes, and a
 * reader tries again until it reads the same even value before and after
 * the times. A stop in progress counts up to the time of the reading.
 */
static atomic_llong stopped_ns;
static atomic_llong stop_began_ns;
static atomic_uint stop_sequence;
/* When the latest SIGCONT came: a stop ends then, not when the handler
 * of curses that follows has redrawn the screen. */
static atomic_llong continued_ns;
/* When the latest SIGCONT came that ended no timed stop, in nanoseconds
 * on the clock now_ns() - stopped_ns. */
static atomic_llong untimed_continue_ns;
/* SIGCONTs received while util_time_stops was on. */
static atomic_uint continue_count;
/* Set while the SIGTSTP handler runs. Curses unblocks the signal while
 * it stops and redraws, so a second Ctrl-Z can run the handler again
 * inside the first call, whose time then covers both stops. */
static volatile sig_atomic_t stop_depth;
static struct sigaction stop_previous, continue_previous;
static pthread_t stop_thread;
static int timing_stops;

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The signal is blocked while its handler runs, so it is unblocked with
 * the default action in place, raised, and the handler restored. */
void util_stop_by_default(int sig)
{
    struct sigaction dfl, mine;
    sigset_t set;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, &mine);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    sigaction(sig, &mine, NULL);
}

/* Passes SIGTSTP on to the handler installed before, or stops the
 * process, and returns when it continues. */
static void pass_stop_on(int sig)
{
    if (stop_previous.sa_handler == SIG_DFL)
        util_stop_by_default(sig);
    else if (stop_previous.sa_handler != SIG_IGN
             && !(stop_previous.sa_flags & SA_SIGINFO))
        stop_previous.sa_handler(sig);
}

static void on_stop_signal(int sig)
{
    int saved_errno = errno;
    long long began, ended;

    /* Any thread that does not block the signal may get it, but the
     * handler of curses must run in the thread that draws. */
    if (!pthread_equal(pthread_self(), stop_thread)) {
        pthread_kill(stop_thread, sig);
        errno = saved_errno;
        return;
    }
    if (stop_depth > 0) {
        pass_stop_on(sig);
        errno = saved_errno;
        return;
    }
    stop_depth = 1;
    began = now_ns();
    atomic_store(&continued_ns, 0);
    atomic_fetch_add(&stop_sequence, 1);
    atomic_store(&stop_began_ns, began);
    atomic_fetch_add(&stop_sequence, 1);

    pass_stop_on(sig);

    /* Without a SIGCONT the process did not stop: an orphaned process
     * group ignores SIGTSTP. */
    ended = atomic_load(&continued_ns);
    if (ended < began)
        ended = now_ns();
    atomic_fetch_add(&stop_sequence, 1);
    atomic_fetch_add(&stopped_ns, ended - began);
    atomic_store(&stop_began_ns, 0);
    atomic_fetch_add(&stop_sequence, 1);
    stop_depth = 0;
    errno = saved_errno;
}

static void on_continue_signal(int sig)
{
    int saved_errno = errno;
    long long now = now_ns();

    atomic_store(&continued_ns, now);
    atomic_fetch_add(&continue_count, 1);
    /* A timed stop sets stop_began_ns before it stops the process and
     * clears it after the SIGCONT, so a SIGCONT that ends it finds it
     * set, at least when this handler runs in the thread that stopped.
     * In another thread it may run after the clearing. That stop then
     * counts as untimed too, which costs the trainer little: the batch
     * it fell in counts the time after the SIGCONT or the usual batch
     * time. stopped_ns is final whenever stop_began_ns is 0. */
    if (atomic_load(&stop_began_ns) == 0)
        atomic_store(&untimed_continue_ns, now - atomic_load(&stopped_ns));
    if (continue_previous.sa_handler != SIG_DFL
        && continue_previous.sa_handler != SIG_IGN
        && !(continue_previous.sa_flags & SA_SIGINFO))
        continue_previous.sa_handler(sig);
    errno = saved_errno;
}

void util_time_stops(int on)
{
    if (on && !timing_stops) {
        struct sigaction sa;

        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        stop_thread = pthread_self();
        sa.sa_handler = on_continue_signal;
        if (sigaction(SIGCONT, &sa, &continue_previous) != 0)
            return;
        sa.sa_handler = on_stop_signal;
        if (sigaction(SIGTSTP, &sa, &stop_previous) != 0) {
            sigaction(SIGCONT, &continue_previous, NULL);
            return;
        }
        timing_stops = 1;
    } else if (!on && timing_stops) {
        sigaction(SIGTSTP, &stop_previous, NULL);
        sigaction(SIGCONT, &continue_previous, NULL);
        timing_stops = 0;
    }
}

double util_stopped_seconds(void)
{
    long long now = now_ns(), total, began;
    unsigned before, after;

    do {
        before = atomic_load(&stop_sequence);
        total = atomic_load(&stopped_ns);
        began = atomic_load(&stop_began_ns);
        after = atomic_load(&stop_sequence);
    } while (before != after || (before & 1u) != 0);
    if (began != 0 && now > began)
        total += now - began;
    return (double)total * 1e-9;
}

double util_untimed_continue(void)
{
    return (double)atomic_load(&untimed_continue_ns) * 1e-9;
}

unsigned util_continue_count(void)
{
    return atomic_load(&continue_count);
}

double util_running_seconds(double start, double end, double continued,
                            double expected)
{
    double whole = end - start;

    if (continued <= start || continued > end)
        return whole;
    return fmin(whole, fmax(end - continued, expected));
}

int util_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    if (n > 4096)
        return 4096;
    return (int)n;
}

void rate_add(RateAverage *r, double tau, double seconds, double n)
{
    double keep = exp(-seconds / tau);

    r->items = r->items * keep + n;
    r->seconds = r->seconds * keep + seconds;
}

double rate_get(const RateAverage *r)
{
    return r->seconds > 0.0 ? r->items / r->seconds : 0.0;
}

double rate_in_progress(const RateAverage *r, double tau, double began,
                        double now, double continued, double n)
{
    double rate = rate_get(r), expected, counted;
    RateAverage with = *r;

    if (rate <= 0.0)
        return rate;
    expected = n / rate;
    counted = util_running_seconds(began, now, continued, expected);
    if (counted <= expected)
        return rate;
    rate_add(&with, tau, counted, n);
    return rate_get(&with);
}

/* ---------------------------------------------------------------- rng */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* xoshiro256** must not start from the all-zero state. Splitmix64 maps
 * four distinct counter values through a bijection, so at most one of the
 * four words can be zero. */
void rng_seed(Rng *rng, uint64_t seed)
{
    uint64_t x = seed;

    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

float rng_normal(Rng *rng)
{
    /* u1 lies in (0, 1] so that log(u1) is finite. With 53-bit uniforms
     * the samples reach out to about 8.6 standard deviations. */
    double u1 = 1.0 - (double)(rng_next(rng) >> 11) * 0x1.0p-53;
    double u2 = (double)(rng_next(rng) >> 11) * 0x1.0p-53;
    double two_pi = 6.283185307179586;

    return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

/*
 * Lemire's multiply-and-reject method: for a 32-bit random x, the high
 * word of x * n is uniform in [0, n) once products whose low word is below
 * 2^32 mod n are rejected. A draw is rejected with probability below
 * n / 2^32, and the modulo runs only when the low word is below n.
 */
uint32_t rng_below(Rng *rng, uint32_t n)
{
    assert(n > 0);
    if (n == 0)
        return 0;

    uint64_t m = (rng_next(rng) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;

    if (low < n) {
        uint32_t threshold = (uint32_t)-n % n;

        while (low < threshold) {
            m = (rng_next(rng) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void rng_shuffle(Rng *rng, int *index, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1);
        int tmp = index[i];

        index[i] = index[j];
        index[j] = tmp;
    }
}

int util_open_regular(const char *path)
{
    struct stat st;
    int saved;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0)
        saved = errno;
    else if (S_ISDIR(st.st_mode))
        saved = EISDIR;
    else if (!S_ISREG(st.st_mode))
        saved = EINVAL;
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        saved = errno;
    else
        return fd;
    close(fd);
    errno = saved;
    return -1;
}

/* Returns 1 for a character that iswprint accepts but that shows nothing
 * or changes the direction of the text around it. A name shown with one
 * can read differently from the real one. These are the soft hyphen,
 * zero-width characters, bidirectional controls, the byte order mark and
 * tag characters. The values are Unicode code points, which is what
 * wchar_t contains where __STDC_ISO_10646__ is defined, as in glibc. */
static int is_invisible(wchar_t wc)
{
    unsigned long cp = (unsigned long)wc;

    return cp == 0xad
           || (cp >= 0x200b && cp <= 0x200f)
           || (cp >= 0x202a && cp <= 0x202e)
           || (cp >= 0x2060 && cp <= 0x2064)
           || (cp >= 0x2066 && cp <= 0x2069)
           || cp == 0xfeff
           || (cp >= 0xe0000 && cp <= 0xe007f);
}

int util_next_char(const char *text, int *printable)
{
    const unsigned char *c = (const unsigned char *)text;
    mbstate_t state;
    wchar_t wc;

    /* Bytes below 128 are ASCII in the C and UTF-8 locales, and mbrtowc
     * would return 0 bytes for a NUL. */
    if (*c < 0x80) {
        *printable = *c >= 0x20 && *c != 0x7f;
        return 1;
    }
    memset(&state, 0, sizeof state);
    size_t n = mbrtowc(&wc, text, strnlen(text, MB_LEN_MAX), &state);
    if (n == 0 || n == (size_t)-1 || n == (size_t)-2) {
        *printable = 0;
        return 1;
    }
    *printable = iswprint((wint_t)wc) != 0 && !is_invisible(wc);
    return (int)n;
}

size_t util_escape_unprintable(const char *text, char *out, size_t size)
{
    size_t len = 0;

    while (*text != '\0') {
        char escape[4 * MB_LEN_MAX + 1];
        int printable;
        int bytes = util_next_char(text, &printable);
        int n = 0;

        if (printable)
            n = snprintf(escape, sizeof escape, "%.*s", bytes, text);
        else if (*text == '\n')
            n = snprintf(escape, sizeof escape, "\\n");
        else if (*text == '\r')
            n = snprintf(escape, sizeof escape, "\\r");
        else if (*text == '\t')
            n = snprintf(escape, sizeof escape, "\\t");
        else
            for (int i = 0; i < bytes; i++)
                n += snprintf(escape + n, sizeof escape - (size_t)n,
                              "\\x%02x", (unsigned char)text[i]);
        for (int i = 0; i < n; i++, len++)
            if (len + 1 < size)
                out[len] = escape[i];
        text += bytes;
    }
    if (size > 0)
        out[len < size ? len : size - 1] = '\0';
    return len;
}

size_t util_shell_quote(const char *text, char *out, size_t size)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_./,:=+-@%";
    int bare = text[0] != '\0' && strspn(text, plain) == strlen(text);
    size_t len = 0;

    if (!bare && size > 1)
        out[len] = '\'';
    len += !bare;
    for (const char *c = text; *c; c++) {
        const char *part = *c == '\'' && !bare ? "'\\''" : NULL;
        size_t n = part != NULL ? strlen(part) : 1;

        for (size_t i = 0; i < n; i++, len++)
            if (len + 1 < size)
                out[len] = part != NULL ? part[i] : *c;
    }
    if (!bare && len + 1 < size)
        out[len] = '\'';
    len += !bare;
    if (size > 0)
        out[len < size ? len : size - 1] = '\0';
    return len;
}

void util_format_float(float value, char *out, size_t size)
{
    /* 9 significant digits tell any two floats apart (FLT_DECIMAL_DIG),
     * so the loop always ends with a match for a finite value. */
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(out, size, "%.*g", digits, value);
        if (strtof(out, NULL) == value)
            return;
    }
}

/* Returns 1 when PATH exists and cannot be written, by its permission
 * bits or for this process. */
static int write_denied(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return 0;
    return (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0
           || access(path, W_OK) != 0;
}

/* Returns 1 when DIR, the directory of PATH, has the sticky bit (as /tmp
 * does) and neither PATH nor DIR belongs to this user, so that renaming a
 * new file over PATH fails with EPERM. Root, which could rename it, gets
 * the same result, so that it too leaves another user's file alone. */
static int sticky_denied(const char *path, const char *dir)
{
    struct stat file_st, dir_st;
    uid_t me = geteuid();

    if (stat(path, &file_st) != 0 || stat(dir, &dir_st) != 0)
        return 0;
    return (dir_st.st_mode & S_ISVTX) != 0 && file_st.st_uid != me
           && dir_st.st_uid != me;
}

int util_read_only(const char *path, char *reason, size_t len)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int denied;

    if (write_denied(path)) {
        if (len > 0)
            snprintf(reason, len, "%s is read-only", path);
        return 1;
    }
    if (slash == NULL) {
        dir = xstrdup(".");
    } else if (slash == path) {
        dir = xstrdup("/");
    } else {
        dir = xmalloc((size_t)(slash - path) + 1);
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    denied = write_denied(dir);
    if (denied && len > 0)
        snprintf(reason, len, "%s is in a read-only directory", path);
    if (!denied && sticky_denied(path, dir)) {
        denied = 1;
        if (len > 0)
            snprintf(reason, len, "%s belongs to another user in a "
                     "directory with the sticky bit", path);
    }
    free(dir);
    return denied;
}

const char *util_file_kind(unsigned mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISLNK(mode))
        return "a symbolic link";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "a file of unknown type";
}
