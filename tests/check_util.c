/*
 * Tests for util: the allocation wrappers and their fatal path, the clock
 * and the time spent stopped, the CPU count and the random number
 * generator.
 *
 * The generator is checked against published reference values and with
 * loose statistical bounds at fixed seeds. A correct generator passes
 * every bound by a wide margin, so a failure points to a real defect.
 */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "util.h"

/* Exit status of the fatal hook below, which proves that the hook ran. */
#define HOOK_EXIT_STATUS 3

static void exiting_hook(void)
{
    _exit(HOOK_EXIT_STATUS);
}

/* Keeps the expected "fmnist: ..." line out of the test log. */
static void silence_stderr(void)
{
    if (freopen("/dev/null", "w", stderr) == NULL)
        ck_abort_msg("cannot redirect stderr to /dev/null");
}

/* ---------------------------------------------------------------- memory */

START_TEST(test_util_xmalloc_aligned_64)
{
    for (size_t size = 1; size < 5000; size = size * 3 + 1) {
        unsigned char *p = xmalloc_aligned(size);

        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        memset(p, 0xab, size);
        free(p);
    }
}
END_TEST

/* xmalloc_pages returns zeroed memory that is page-aligned and writable
 * to the last byte. */
START_TEST(test_util_xmalloc_pages_zeroed)
{
    size_t size = (size_t)3 << 20;
    unsigned char *p = xmalloc_pages(size);
    long page = sysconf(_SC_PAGESIZE);

    ck_assert_uint_eq((uintptr_t)p % (uintptr_t)page, 0);
    for (size_t i = 0; i < size; i += 4093)
        ck_assert_uint_eq(p[i], 0);
    ck_assert_uint_eq(p[size - 1], 0);
    p[0] = 1;
    p[size - 1] = 2;
    ck_assert_uint_eq(p[size - 1], 2);
    xfree_pages(p, size);
    xfree_pages(NULL, 0);
}
END_TEST

START_TEST(test_util_xcalloc_zeroes)
{
    int *p = xcalloc(1000, sizeof *p);

    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(p[i], 0);
    free(p);
}
END_TEST

START_TEST(test_util_xrealloc_keeps_data)
{
    int *p = xmalloc(10 * sizeof *p);

    for (int i = 0; i < 10; i++)
        p[i] = i * i;
    p = xrealloc(p, 100000 * sizeof *p);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(p[i], i * i);
    free(p);
}
END_TEST

START_TEST(test_util_zero_size_not_null)
{
    void *a = xmalloc(0);
    void *b = xcalloc(0, 8);
    void *c = xmalloc_aligned(0);

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(test_util_xstrdup_copies)
{
    const char *text = "T-shirt/top";
    char *copy = xstrdup(text);

    ck_assert_ptr_ne(copy, text);
    ck_assert_str_eq(copy, text);
    free(copy);
}
END_TEST

/* Expected to exit with HOOK_EXIT_STATUS. */
START_TEST(test_util_fatal_runs_hook)
{
    silence_stderr();
    util_set_fatal_hook(exiting_hook);
    util_fatal("test message");
}
END_TEST

/* Expected to end with SIGABRT. */
START_TEST(test_util_fatal_aborts)
{
    silence_stderr();
    util_set_fatal_hook(NULL);
    util_fatal("test message");
}
END_TEST

/* The sanitizer runtimes call these at start-up. By default AddressSanitizer
 * and ThreadSanitizer end the process when an allocation fails; with
 * allocator_may_return_null=1, malloc returns NULL as the C library does,
 * so the test below runs xmalloc's real failure path in those builds too. */
const char *__asan_default_options(void);
const char *__tsan_default_options(void);

const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* Expected to exit with HOOK_EXIT_STATUS. */
START_TEST(test_util_xmalloc_failure_is_fatal)
{
    silence_stderr();
    util_set_fatal_hook(exiting_hook);

    /* A quarter of the 64-bit address space cannot be mapped, and unlike
     * SIZE_MAX it is positive as a signed value, which valgrind expects. */
    volatile size_t huge = SIZE_MAX / 4;

    free(xmalloc(huge));
}
END_TEST

/* ---------------------------------------------------------------- system */

START_TEST(test_util_now_monotonic)
{
    double prev = util_now();

    ck_assert(prev >= 0.0);
    for (int i = 0; i < 1000; i++) {
        double t = util_now();

        ck_assert(t >= prev);
        prev = t;
    }
}
END_TEST

/* Stands in for the SIGTSTP handler of curses: it keeps the signal's
 * handler busy for HELD_NS as a stop would, and counts its calls. */
#define HELD_NS 50000000L
static volatile sig_atomic_t held_calls;

static void hold_stop_busy(void)
{
    struct timespec held = {0, HELD_NS};

    nanosleep(&held, NULL);
}

static void hold_stop(int sig)
{
    (void)sig;
    held_calls++;
    hold_stop_busy();
}

/* Installs HANDLER for SIGTSTP, as curses would, with no calls yet. */
static void install_stop_handler(void (*handler)(int))
{
    struct sigaction sa;

    held_calls = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGTSTP, &sa, NULL), 0);
}

/* util_time_stops passes SIGTSTP to the handler installed before it,
 * counts the time that handler held it as stopped, and puts it back. */
START_TEST(test_util_stop_passes_on_and_counts)
{
    struct sigaction now;
    double before;

    install_stop_handler(hold_stop);
    util_time_stops(1);
    before = util_stopped_seconds();
    ck_assert(before >= 0.0);
    raise(SIGTSTP);
    ck_assert_int_eq(held_calls, 1);
    ck_assert_msg(util_stopped_seconds() - before >= HELD_NS * 1e-9,
                  "stopped time grew by %g s, the handler held %g s",
                  util_stopped_seconds() - before, HELD_NS * 1e-9);
    util_time_stops(0);
    ck_assert_int_eq(sigaction(SIGTSTP, NULL, &now), 0);
    ck_assert(now.sa_handler == hold_stop);
    raise(SIGTSTP);
    ck_assert_int_eq(held_calls, 2);
}
END_TEST

/* Like hold_stop, but the first call unblocks SIGTSTP and takes a second
 * one, as a Ctrl-Z typed while curses redraws after fg arrives. */
static void hold_stop_twice(int sig)
{
    sigset_t set;

    held_calls++;
    if (held_calls == 1) {
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
    }
    hold_stop_busy();
}

/* A stop inside another counts once: the time stopped cannot exceed the
 * time that passed. */
START_TEST(test_util_stop_nested_counts_once)
{
    double wall, stopped;

    install_stop_handler(hold_stop_twice);
    util_time_stops(1);
    wall = util_now();
    stopped = util_stopped_seconds();
    raise(SIGTSTP);
    wall = util_now() - wall;
    stopped = util_stopped_seconds() - stopped;
    util_time_stops(0);
    ck_assert_int_eq(held_calls, 2);
    ck_assert_msg(stopped >= 2 * HELD_NS * 1e-9,
                  "stopped time grew by %g s, the handlers held %g s",
                  stopped, 2 * HELD_NS * 1e-9);
    ck_assert_msg(stopped <= wall + 1e-6,
                  "stopped time grew by %g s in %g s", stopped, wall);
}
END_TEST

/* In the C locale, control characters and every byte above 127 become
 * escapes, and printable ASCII, backslashes included, stays as it is. */
START_TEST(test_util_escape_unprintable_table)
{
    static const struct {
        const char *text, *escaped;
    } cases[] = {
        {"run.ckpt", "run.ckpt"},
        {"a\nb", "a\\nb"},
        {"\r\t", "\\r\\t"},
        {"x\033[0m", "x\\x1b[0m"},
        {"\x7f\x01", "\\x7f\\x01"},
        {"caf\xc3\xa9\\", "caf\\xc3\\xa9\\"},
        {"a\x9b" "1m", "a\\x9b" "1m"},
        {"", ""},
    };
    char out[64];

    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = util_escape_unprintable(cases[i].text, out, sizeof out);

        ck_assert_str_eq(out, cases[i].escaped);
        ck_assert_uint_eq(len, strlen(cases[i].escaped));
    }
}
END_TEST

/* In UTF-8, printable characters stay whole, while C1 controls such as
 * U+009B (which some terminals take as CSI), invisible and
 * direction-changing characters, and bytes that start no character
 * become escapes, a byte each. */
START_TEST(test_util_escape_unprintable_utf8)
{
    static const struct {
        const char *text, *escaped;
    } cases[] = {
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"\xe6\xa8\xa1.ckpt", "\xe6\xa8\xa1.ckpt"},
        /* U+015B ends in the byte 0x9b, which is no control there. */
        {"\xc5\x9b", "\xc5\x9b"},
        {"a\xc2\x9b" "1m", "a\\xc2\\x9b" "1m"},
        {"\xc2\x85", "\\xc2\\x85"},
        {"a\x9b" "1m", "a\\x9b" "1m"},
        {"\xc3", "\\xc3"},
        {"\xc3(", "\\xc3("},
        {"x\033[0m", "x\\x1b[0m"},
        /* Invisible and direction-changing characters, each at both ends
         * of its range, with a neighbour that stays. */
        {"\xc2\xad", "\\xc2\\xad"},
        {"\xe2\x80\x8a", "\xe2\x80\x8a"},
        {"\xe2\x80\x8b", "\\xe2\\x80\\x8b"},
        {"\xe2\x80\x8f", "\\xe2\\x80\\x8f"},
        {"\xe2\x80\xaa", "\\xe2\\x80\\xaa"},
        {"a\xe2\x80\xaegpj.exe", "a\\xe2\\x80\\xaegpj.exe"},
        {"\xe2\x81\xa0", "\\xe2\\x81\\xa0"},
        {"\xe2\x81\xa4", "\\xe2\\x81\\xa4"},
        {"\xe2\x81\xa6", "\\xe2\\x81\\xa6"},
        {"\xe2\x81\xa9", "\\xe2\\x81\\xa9"},
        {"\xe2\x81\xb0", "\xe2\x81\xb0"},
        {"\xef\xbb\xbf", "\\xef\\xbb\\xbf"},
        {"\xf3\xa0\x80\x80", "\\xf3\\xa0\\x80\\x80"},
        {"\xf3\xa0\x81\xbf", "\\xf3\\xa0\\x81\\xbf"},
    };
    char out[64];

    ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = util_escape_unprintable(cases[i].text, out, sizeof out);

        ck_assert_str_eq(out, cases[i].escaped);
        ck_assert_uint_eq(len, strlen(cases[i].escaped));
    }
}
END_TEST

/* A short buffer gets a cut, terminated copy, and the return value is
 * the length that would fit the whole text. */
START_TEST(test_util_escape_unprintable_short_buffer)
{
    char out[4] = "zzz";

    ck_assert_uint_eq(util_escape_unprintable("a\nbc", out, sizeof out), 5);
    ck_assert_str_eq(out, "a\\n");
    ck_assert_uint_eq(util_escape_unprintable("a\nbc", NULL, 0), 5);
    ck_assert_uint_eq(util_escape_unprintable("\n", out, 2), 2);
    ck_assert_str_eq(out, "\\");
}
END_TEST

/* Names of safe characters stay bare, and the others are quoted so that
 * a shell reads each back as one word. */
START_TEST(test_util_shell_quote_table)
{
    static const struct {
        const char *text, *quoted;
    } cases[] = {
        {"best.ckpt", "best.ckpt"},
        {"/tmp/run-2/a_b,c:d=e+f@g%h", "/tmp/run-2/a_b,c:d=e+f@g%h"},
        {"my model.ckpt", "'my model.ckpt'"},
        {"it's", "'it'\\''s'"},
        {"$HOME*", "'$HOME*'"},
        {"caf\xc3\xa9", "'caf\xc3\xa9'"},
        {"", "''"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = util_shell_quote(cases[i].text, out, sizeof out);

        ck_assert_str_eq(out, cases[i].quoted);
        ck_assert_uint_eq(len, strlen(cases[i].quoted));
    }
}
END_TEST

/* A short buffer gets a cut, terminated copy, and the return value is
 * the length of the whole word. */
START_TEST(test_util_shell_quote_short_buffer)
{
    char out[4] = "zzz";

    ck_assert_uint_eq(util_shell_quote("a b", out, sizeof out), 5);
    ck_assert_str_eq(out, "'a ");
    ck_assert_uint_eq(util_shell_quote("a b", NULL, 0), 5);
    ck_assert_uint_eq(util_shell_quote("ab", out, 2), 2);
    ck_assert_str_eq(out, "a");
}
END_TEST

/* The text is the shortest that reads back as the same float, so a
 * factor just below 1 does not print as 1. */
START_TEST(test_util_format_float_round_trips)
{
    static const struct {
        float value;
        const char *text;
    } cases[] = {
        {0.1f, "0.1"},
        {0.5f, "0.5"},
        {0.9999999f, "0.9999999"},
        {0.99999994f, "0.99999994"},
        {1e-7f, "1e-07"},
        {3.0f, "3"},
    };
    char out[16];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        util_format_float(cases[i].value, out, sizeof out);
        ck_assert_str_eq(out, cases[i].text);
        ck_assert(strtof(out, NULL) == cases[i].value);
    }
}
END_TEST

START_TEST(test_util_online_cpus_positive)
{
    ck_assert_int_ge(util_online_cpus(), 1);
}
END_TEST

/* Before any time is recorded the rate is 0, and over a span much
 * shorter than the time constant it is within 1% of the plain average. */
START_TEST(test_rate_short_span_plain_average)
{
    RateAverage r = {0};

    ck_assert(rate_get(&r) == 0.0);
    rate_add(&r, 5.0, 0.01, 64);
    rate_add(&r, 5.0, 0.03, 64);
    ck_assert_double_eq_tol(rate_get(&r), 128 / 0.04, 128 / 0.04 * 0.01);
}
END_TEST

/* After a change from 1000 to 250 items/s, the rate moves towards 250 by
 * the factor exp(-t / tau): 1 - e^-1 of the way after one time constant. */
START_TEST(test_rate_follows_change_by_time)
{
    RateAverage r = {0};
    const double tau = 5.0;

    for (int i = 0; i < 10000; i++)
        rate_add(&r, tau, 0.01, 10);
    ck_assert_double_eq_tol(rate_get(&r), 1000.0, 1e-6);
    for (int i = 0; i < 125; i++)
        rate_add(&r, tau, 0.04, 10);

    /* Weights e^-1 on the old seconds and 1 - e^-1 on the new ones. The
     * sums over whole batches differ from that by about 0.1%. */
    double old_w = exp(-1.0);
    double want = old_w * 1000.0 + (1.0 - old_w) * 250.0;
    ck_assert_double_eq_tol(rate_get(&r), want, 1.0);
}
END_TEST

/* One slow batch among fast ones barely moves a rate averaged over
 * seconds, where a plain average over the last 16 batches would drop
 * by half. */
START_TEST(test_rate_one_slow_batch)
{
    RateAverage r = {0};

    for (int i = 0; i < 1000; i++)
        rate_add(&r, 5.0, 0.01, 64);
    rate_add(&r, 5.0, 0.16, 64);
    ck_assert_double_gt(rate_get(&r), 0.95 * 6400.0);
    ck_assert_double_lt(rate_get(&r), 6400.0);
}
END_TEST

/* An interval without an untimed SIGCONT in it counts whole, however
 * slow: here 100 times the usual 0.01 s. */
START_TEST(test_util_running_slow_counts_whole)
{
    /* No SIGCONT yet. */
    ck_assert_double_eq(util_running_seconds(10.0, 11.0, 0.0, 0.01), 1.0);
    /* The latest SIGCONT came before the interval, or at its start. */
    ck_assert_double_eq(util_running_seconds(10.0, 11.0, 9.5, 0.01), 1.0);
    ck_assert_double_eq(util_running_seconds(10.0, 11.0, 10.0, 0.01), 1.0);
    /* A SIGCONT after the end belongs to a later interval. */
    ck_assert_double_eq(util_running_seconds(10.0, 11.0, 11.5, 0.01), 1.0);
}
END_TEST

/* A rate with an interval in progress stays as it is until the interval
 * has taken longer than the rate expects. Then it falls as the interval
 * goes on, to the rate the interval would leave if it ended now. A stop
 * in the interval does not count. */
START_TEST(test_rate_in_progress_falls_when_slow)
{
    RateAverage r = {0}, ended;
    double slow;

    /* Nothing to lower before any rate is known. */
    ck_assert_double_eq(rate_in_progress(&r, 5.0, 10.0, 20.0, 0.0, 64.0),
                        0.0);
    rate_add(&r, 5.0, 1.0, 1000.0);
    /* 64 items take 0.064 s at 1000 per second. */
    ck_assert_double_eq(rate_in_progress(&r, 5.0, 10.0, 10.05, 0.0, 64.0),
                        1000.0);
    slow = rate_in_progress(&r, 5.0, 10.0, 12.0, 0.0, 64.0);
    ended = r;
    rate_add(&ended, 5.0, 2.0, 64.0);
    ck_assert_double_eq_tol(slow, rate_get(&ended), 1e-9);
    ck_assert_double_lt(slow, 500.0);
    ck_assert_double_lt(rate_in_progress(&r, 5.0, 10.0, 20.0, 0.0, 64.0),
                        slow);
    /* Stopped until 19.99 (an untimed SIGCONT then): only the time after
     * it counts, which is less than expected. */
    ck_assert_double_eq(rate_in_progress(&r, 5.0, 10.0, 20.0, 19.99, 64.0),
                        1000.0);
}
END_TEST

/* An interval in which an untimed SIGCONT ended a stop leaves the stop
 * out: it counts the time after the SIGCONT or the usual time, whichever
 * is more, and never more than the whole interval. */
START_TEST(test_util_running_leaves_out_stop)
{
    /* Stopped for most of 30 s, then 0.01 s of work after the SIGCONT. */
    ck_assert_double_eq_tol(util_running_seconds(10.0, 40.0, 39.99, 0.01),
                            0.01, 1e-9);
    /* Half a second of work after it, on a slow machine. */
    ck_assert_double_eq_tol(util_running_seconds(10.0, 40.0, 39.5, 0.01),
                            0.5, 1e-9);
    /* The usual time is more than the time after the SIGCONT. */
    ck_assert_double_eq_tol(util_running_seconds(10.0, 40.0, 39.99, 0.2),
                            0.2, 1e-9);
    /* No usual time yet, as for the first batch of a run. */
    ck_assert_double_eq_tol(util_running_seconds(10.0, 40.0, 39.99, 0.0),
                            0.01, 1e-9);
    /* A usual time longer than the interval. */
    ck_assert_double_eq_tol(util_running_seconds(10.0, 10.5, 10.2, 5.0),
                            0.5, 1e-9);
}
END_TEST

/* Stands in for the SIGTSTP handler of curses when fg ends the stop:
 * the SIGCONT comes while the handler runs. */
static void hold_stop_continued(int sig)
{
    (void)sig;
    held_calls++;
    raise(SIGCONT);
    hold_stop_busy();
}

/* A SIGCONT that ends a timed SIGTSTP stop leaves util_untimed_continue
 * as it was. One that comes outside such a stop, as after SIGSTOP,
 * moves it to the time it came. */
START_TEST(test_util_continue_untimed_only)
{
    double before, after;

    install_stop_handler(hold_stop_continued);
    util_time_stops(1);
    before = util_untimed_continue();
    raise(SIGTSTP);
    ck_assert_int_eq(held_calls, 1);
    ck_assert_msg(util_untimed_continue() == before,
                  "a SIGCONT during a timed stop moved the untimed "
                  "continue from %g to %g", before, util_untimed_continue());

    raise(SIGCONT);
    after = util_untimed_continue();
    util_time_stops(0);
    ck_assert_msg(after > before, "a SIGCONT outside a timed stop left the "
                  "untimed continue at %g", after);
    ck_assert_double_le(after, util_now() - util_stopped_seconds());
}
END_TEST

/* ---------------------------------------------------------------- rng */

/* Reference outputs from state {1, 2, 3, 4}, as given by the C reference
 * code of xoshiro256** (prng.di.unimi.it) and recomputed in Python. */
START_TEST(test_rng_reference_outputs)
{
    Rng rng = {{1, 2, 3, 4}};

    ck_assert_uint_eq(rng_next(&rng), 11520u);
    ck_assert_uint_eq(rng_next(&rng), 0u);
    ck_assert_uint_eq(rng_next(&rng), 1509978240u);
    ck_assert_uint_eq(rng_next(&rng), 1215971899390074240u);
}
END_TEST

/* Seed 0 gives the first four splitmix64 outputs from state 0. */
START_TEST(test_rng_seed_uses_splitmix64)
{
    Rng rng;

    rng_seed(&rng, 0);
    ck_assert_uint_eq(rng.s[0], 0xe220a8397b1dcdafu);
    ck_assert_uint_eq(rng.s[1], 0x6e789e6aa1b965f4u);
    ck_assert_uint_eq(rng.s[2], 0x06c45d188009454fu);
    ck_assert_uint_eq(rng.s[3], 0xf88bb8a8724c81ecu);
}
END_TEST

START_TEST(test_rng_same_seed_same_stream)
{
    Rng a;
    Rng b;
    Rng c;
    int differ = 0;

    rng_seed(&a, 12345);
    rng_seed(&b, 12345);
    rng_seed(&c, 12346);
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a);

        ck_assert_uint_eq(x, rng_next(&b));
        differ += x != rng_next(&c);
    }
    ck_assert_int_eq(differ, 1000);
}
END_TEST

START_TEST(test_rng_uniform_range_and_mean)
{
    Rng rng;
    double sum = 0.0;
    const int n = 100000;

    rng_seed(&rng, 7);
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&rng);

        ck_assert(u >= 0.0f);
        ck_assert(u < 1.0f);
        sum += u;
    }
    /* The mean of n uniforms has standard deviation 0.29 / sqrt(n), about
     * 0.0009 here, so 0.01 is more than 10 sigma. */
    ck_assert_double_eq_tol(sum / n, 0.5, 0.01);
}
END_TEST

START_TEST(test_rng_normal_moments)
{
    Rng rng;
    double sum = 0.0;
    double sum_sq = 0.0;
    const int n = 100000;

    rng_seed(&rng, 99);
    for (int i = 0; i < n; i++) {
        float x = rng_normal(&rng);

        ck_assert(isfinite(x));
        sum += x;
        sum_sq += (double)x * x;
    }
    /* Standard errors: 0.003 for the mean, 0.0045 for the variance. */
    ck_assert_double_eq_tol(sum / n, 0.0, 0.03);
    ck_assert_double_eq_tol(sum_sq / n, 1.0, 0.05);
}
END_TEST

START_TEST(test_rng_below_range)
{
    Rng rng;
    const uint32_t bounds[] = {1, 2, 3, 7, 10, 1000, 0x80000001u, UINT32_MAX};

    rng_seed(&rng, 1);
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        for (int i = 0; i < 10000; i++)
            ck_assert_uint_lt(rng_below(&rng, bounds[b]), bounds[b]);
    }
}
END_TEST

/* Pearson's chi-square over 10 cells has 9 degrees of freedom: mean 9,
 * standard deviation 4.2. A bound of 40 fails with probability below 1e-5
 * for a uniform generator, and a bug that empties or doubles a cell gives
 * a statistic in the thousands. */
START_TEST(test_rng_below_uniform_chi_square)
{
    Rng rng;
    long counts[10] = {0};
    const int n = 100000;
    double expected = n / 10.0;
    double chi2 = 0.0;

    rng_seed(&rng, 2024);
    for (int i = 0; i < n; i++)
        counts[rng_below(&rng, 10)]++;
    for (int c = 0; c < 10; c++) {
        double d = counts[c] - expected;

        chi2 += d * d / expected;
    }
    ck_assert_msg(chi2 < 40.0, "chi-square %.2f over 10 cells", chi2);
}
END_TEST

/*
 * n = 3 * 2^30 exposes both common biases, each moving a fraction that
 * should be 1/3 (standard error 0.003 over 30000 draws):
 * - x mod n for 32-bit x puts half the draws below 2^30;
 * - x * n >> 32 without rejection maps 2 of every 4 values of x to
 *   multiples of 3, so half the draws are divisible by 3.
 */
START_TEST(test_rng_below_unbiased_large_n)
{
    Rng rng;
    const uint32_t n = 3u << 30;
    const int draws = 30000;
    int low = 0;
    int multiple_of_3 = 0;

    rng_seed(&rng, 5);
    for (int i = 0; i < draws; i++) {
        uint32_t x = rng_below(&rng, n);

        low += x < (1u << 30);
        multiple_of_3 += x % 3 == 0;
    }
    ck_assert_double_eq_tol((double)low / draws, 1.0 / 3.0, 0.03);
    ck_assert_double_eq_tol((double)multiple_of_3 / draws, 1.0 / 3.0, 0.03);
}
END_TEST

START_TEST(test_rng_shuffle_permutation)
{
    Rng rng;
    int index[100];
    int seen[100] = {0};
    int moved = 0;

    rng_seed(&rng, 3);
    for (int i = 0; i < 100; i++)
        index[i] = i;
    rng_shuffle(&rng, index, 100);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_ge(index[i], 0);
        ck_assert_int_lt(index[i], 100);
        seen[index[i]]++;
        moved += index[i] != i;
    }
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);
    /* A shuffle of 100 leaves about one element in place on average. */
    ck_assert_int_gt(moved, 80);
}
END_TEST

START_TEST(test_rng_shuffle_tiny_arrays)
{
    Rng rng;
    int one = 42;

    rng_seed(&rng, 3);
    rng_shuffle(&rng, NULL, 0);
    rng_shuffle(&rng, &one, 1);
    ck_assert_int_eq(one, 42);
}
END_TEST

/* All 6 orders of 3 elements must be about equally likely. An off-by-one
 * that draws j from [0, i) yields only the 2 cyclic orders. */
START_TEST(test_rng_shuffle_all_orders_equal)
{
    Rng rng;
    long counts[6] = {0};
    const int n = 60000;

    rng_seed(&rng, 11);
    for (int t = 0; t < n; t++) {
        int a[3] = {0, 1, 2};

        rng_shuffle(&rng, a, 3);
        /* Encode the order by its first two elements. */
        counts[a[0] * 2 + (a[1] > a[2])]++;
    }
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(counts[i] > 9000 && counts[i] < 11000,
                      "order %d occurred %ld times, expected about 10000",
                      i, counts[i]);
    }
}
END_TEST

/* A FIFO without a writer would block a plain open() for ever. */
START_TEST(test_util_open_regular_rejects_fifo)
{
    char dir[] = "/tmp/fmnist-util-XXXXXX";
    char fifo[64], file[64];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("data", f);
    fclose(f);

    errno = 0;
    ck_assert_int_eq(util_open_regular(fifo), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(util_open_regular(dir), -1);
    ck_assert_int_eq(errno, EISDIR);

    int fd = util_open_regular(file);
    ck_assert_int_ge(fd, 0);
    char buf[8];
    ck_assert_int_eq((int)read(fd, buf, sizeof buf), 4);
    close(fd);

    unlink(fifo);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* Runs util_read_only on PATH as user and group NOBODY in a child and
 * returns 1 or 0 as it did, or -1 when the child could not switch users
 * or ended otherwise. Its reason goes to REASON. */
static int read_only_as(uid_t nobody, const char *path, char *reason,
                        size_t len)
{
    int pipe_fd[2];
    int status;
    ssize_t got;

    ck_assert_int_eq(pipe(pipe_fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char buf[256] = "";
        int rc;

        close(pipe_fd[0]);
        if (setgid((gid_t)nobody) != 0 || setuid(nobody) != 0)
            _exit(3);
        rc = util_read_only(path, buf, sizeof buf);
        if (write(pipe_fd[1], buf, strlen(buf)) < 0)
            _exit(4);
        _exit(rc);
    }
    close(pipe_fd[1]);
    got = read(pipe_fd[0], reason, len - 1);
    reason[got > 0 ? got : 0] = '\0';
    close(pipe_fd[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        return -1;
    return WEXITSTATUS(status);
}

/* In a directory with the sticky bit, such as /tmp, a user can replace
 * only a file of their own (or any file in their own directory), so a
 * save that renames over another user's file fails. It needs root to
 * set up files of two users, so it checks nothing for other users. */
START_TEST(test_util_read_only_sticky_directory)
{
    const uid_t nobody = 65534;
    char dir[] = "/tmp/fmnist-sticky-XXXXXX";
    char path[64], reason[256];

    if (geteuid() != 0)
        return;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 01777), 0);
    snprintf(path, sizeof path, "%s/m.ckpt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0666), 0);

    ck_assert_int_eq(util_read_only(path, reason, sizeof reason), 0);
    ck_assert_int_eq(read_only_as(nobody, path, reason, sizeof reason), 1);
    ck_assert_msg(strstr(reason, "sticky bit") != NULL, "reason: %s",
                  reason);
    /* Once the file belongs to that user, it is theirs to replace. */
    ck_assert_int_eq(chown(path, nobody, (gid_t)nobody), 0);
    ck_assert_int_eq(read_only_as(nobody, path, reason, sizeof reason), 0);
    /* Without the sticky bit, a directory writable by all lets any user
     * replace the file. */
    ck_assert_int_eq(chown(path, 0, 0), 0);
    ck_assert_int_eq(chmod(dir, 0777), 0);
    ck_assert_int_eq(read_only_as(nobody, path, reason, sizeof reason), 0);

    unlink(path);
    rmdir(dir);
}
END_TEST

Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *memory = tcase_create("memory");
    TCase *system = tcase_create("system");
    TCase *rng = tcase_create("rng");

    tcase_add_test(system, test_util_open_regular_rejects_fifo);
    tcase_add_test(system, test_util_read_only_sticky_directory);
    tcase_add_test(memory, test_util_xmalloc_aligned_64);
    tcase_add_test(memory, test_util_xmalloc_pages_zeroed);
    tcase_add_test(memory, test_util_xcalloc_zeroes);
    tcase_add_test(memory, test_util_xrealloc_keeps_data);
    tcase_add_test(memory, test_util_zero_size_not_null);
    tcase_add_test(memory, test_util_xstrdup_copies);
    tcase_add_exit_test(memory, test_util_fatal_runs_hook, HOOK_EXIT_STATUS);
    tcase_add_test_raise_signal(memory, test_util_fatal_aborts, SIGABRT);
    tcase_add_exit_test(memory, test_util_xmalloc_failure_is_fatal,
                        HOOK_EXIT_STATUS);
    suite_add_tcase(s, memory);

    tcase_add_test(system, test_util_now_monotonic);
    tcase_add_test(system, test_util_online_cpus_positive);
    tcase_add_test(system, test_util_escape_unprintable_table);
    tcase_add_test(system, test_util_escape_unprintable_utf8);
    tcase_add_test(system, test_util_escape_unprintable_short_buffer);
    tcase_add_test(system, test_util_shell_quote_table);
    tcase_add_test(system, test_util_shell_quote_short_buffer);
    tcase_add_test(system, test_util_format_float_round_trips);
    tcase_add_test(system, test_util_stop_passes_on_and_counts);
    tcase_add_test(system, test_util_stop_nested_counts_once);
    tcase_add_test(system, test_rate_short_span_plain_average);
    tcase_add_test(system, test_rate_follows_change_by_time);
    tcase_add_test(system, test_rate_one_slow_batch);
    tcase_add_test(system, test_util_running_slow_counts_whole);
    tcase_add_test(system, test_util_running_leaves_out_stop);
    tcase_add_test(system, test_rate_in_progress_falls_when_slow);
    tcase_add_test(system, test_util_continue_untimed_only);
    suite_add_tcase(s, system);

    tcase_add_test(rng, test_rng_reference_outputs);
    tcase_add_test(rng, test_rng_seed_uses_splitmix64);
    tcase_add_test(rng, test_rng_same_seed_same_stream);
    tcase_add_test(rng, test_rng_uniform_range_and_mean);
    tcase_add_test(rng, test_rng_normal_moments);
    tcase_add_test(rng, test_rng_below_range);
    tcase_add_test(rng, test_rng_below_uniform_chi_square);
    tcase_add_test(rng, test_rng_below_unbiased_large_n);
    tcase_add_test(rng, test_rng_shuffle_permutation);
    tcase_add_test(rng, test_rng_shuffle_tiny_arrays);
    tcase_add_test(rng, test_rng_shuffle_all_orders_equal);
    suite_add_tcase(s, rng);
    return s;
}
