/*
 * Tests for linequeue: text reaches the descriptor in order, a reader
 * that exits turns the writes into one kept EPIPE, and a drain after a
 * stop signal gives up on a pipe that is never read.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "linequeue.h"
#include "tests.h"

START_TEST(test_linequeue_writes_in_order)
{
    static const volatile sig_atomic_t no_stop = 0;
    int fds[2];
    char got[64] = "";

    ck_assert_int_eq(pipe(fds), 0);
    LineQueue *q = linequeue_start(fds[1]);
    ck_assert_ptr_nonnull(q);
    linequeue_add(q, "epoch 1\n");
    linequeue_add(q, "");
    linequeue_add(q, "epoch 2\n");
    ck_assert_int_eq(linequeue_drain(q, &no_stop), 0);
    ck_assert_int_eq(linequeue_error(q), 0);
    linequeue_free(q);
    close(fds[1]);

    ssize_t n = read(fds[0], got, sizeof got - 1);
    ck_assert_int_eq(n, 16);
    ck_assert_str_eq(got, "epoch 1\nepoch 2\n");
    close(fds[0]);
}
END_TEST

START_TEST(test_linequeue_reader_gone_epipe)
{
    static const volatile sig_atomic_t no_stop = 0;
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    LineQueue *q = linequeue_start(fds[1]);
    ck_assert_ptr_nonnull(q);
    linequeue_add(q, "epoch 1\n");
    ck_assert_int_eq(linequeue_drain(q, &no_stop), 0);
    ck_assert_int_eq(linequeue_error(q), EPIPE);

    /* Later text is dropped, so a drain has nothing to wait for. */
    linequeue_add(q, "epoch 2\n");
    ck_assert_int_eq(linequeue_drain(q, &no_stop), 0);
    ck_assert_int_eq(linequeue_error(q), EPIPE);
    linequeue_free(q);
    close(fds[1]);
}
END_TEST

START_TEST(test_linequeue_full_pipe_stop)
{
    static const volatile sig_atomic_t stop = SIGTERM;
    static char block[4096];
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(fds), 0);
    LineQueue *q = linequeue_start(fds[1]);
    ck_assert_ptr_nonnull(q);

    /* 256 KiB, four times the default capacity of a Linux pipe, which is
     * never read, so the thread blocks in write. */
    memset(block, 'x', sizeof block - 1);
    for (int i = 0; i < 64; i++)
        linequeue_add(q, block);
    ck_assert_int_eq(linequeue_drain(q, &stop), -1);
    ck_assert_int_eq(linequeue_error(q), 0);

    /* The blocked thread is left to itself, and closing the read end
     * ends its write with EPIPE. */
    linequeue_free(q);
    close(fds[0]);
}
END_TEST

Suite *linequeue_suite(void)
{
    Suite *s = suite_create("linequeue");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_linequeue_writes_in_order);
    tcase_add_test(tc, test_linequeue_reader_gone_epipe);
    tcase_add_test(tc, test_linequeue_full_pipe_stop);
    suite_add_tcase(s, tc);
    return s;
}
