/*
 * linequeue: a buffer of text under a mutex and one thread that sends it
 * to a file descriptor with write(2).
 *
 * The first failed write ends the writing for good. Its errno is kept
 * for the caller to report, and later text is dropped. So a run whose
 * reader exited (EPIPE, with SIGPIPE ignored) or whose disk is full
 * (ENOSPC) goes on without its output. The thread writes with write(2)
 * rather than stdio, so that no stdio lock is held while it blocks.
 *
 * Limits: the buffer grows without bound while a reader does not read,
 * by one line per epoch in fmnist, which is small.
 */
#include "config.h"

#include "linequeue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

struct LineQueue {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;    /* guards every field below */
    pthread_cond_t changed;  /* text added, written or closing */
    char *text;              /* waiting to be written */
    size_t len, cap;
    int writing;             /* the thread is writing a buffer it took */
    int error;               /* errno of the first failed write, or 0 */
    int closing;             /* linequeue_free asked the thread to end */
    int detached;            /* the thread frees the queue when it ends */
};

/* Writes LEN bytes of BUF to FD. Returns 0, or the errno of the
 * failure. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void destroy(LineQueue *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
    free(q->text);
    free(q);
}

static void *writer_main(void *arg)
{
    LineQueue *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->len == 0 && !q->closing)
            pthread_cond_wait(&q->changed, &q->lock);
        if (q->len == 0)
            break;

        /* The thread takes the buffer, and text added meanwhile starts a
         * new one. */
        char *pending = q->text;
        size_t len = q->len;

        q->text = NULL;
        q->len = q->cap = 0;
        q->writing = 1;
        pthread_mutex_unlock(&q->lock);
        int err = write_all(q->fd, pending, len);
        free(pending);
        pthread_mutex_lock(&q->lock);
        q->writing = 0;
        if (err != 0 && q->error == 0)
            q->error = err;
        if (q->error != 0)
            q->len = 0;
        pthread_cond_broadcast(&q->changed);
    }
    int detached = q->detached;
    pthread_mutex_unlock(&q->lock);
    if (detached)
        destroy(q);
    return NULL;
}

LineQueue *linequeue_start(int fd)
{
    LineQueue *q = xcalloc(1, sizeof *q);

    q->fd = fd;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    if (pthread_create(&q->thread, NULL, writer_main, q) != 0) {
        destroy(q);
        return NULL;
    }
    return q;
}

void linequeue_add(LineQueue *q, const char *text)
{
    size_t n = strlen(text);

    pthread_mutex_lock(&q->lock);
    if (q->error == 0 && n > 0) {
        if (q->len + n > q->cap) {
            q->cap = 2 * (q->len + n);
            q->text = xrealloc(q->text, q->cap);
        }
        memcpy(q->text + q->len, text, n);
        q->len += n;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
}

int linequeue_drain(LineQueue *q, const volatile sig_atomic_t *stop)
{
    int ticks_after_stop = 0;
    int rc = 0;

    pthread_mutex_lock(&q->lock);
    while (q->len > 0 || q->writing) {
        if (*stop && ticks_after_stop++ > 0) {
            rc = -1;
            break;
        }
        struct timespec until;

        /* A timed wait, because a signal handler cannot wake the wait
         * and *STOP has to be polled. */
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000 * 1000 * 1000) {
            until.tv_sec++;
            until.tv_nsec -= 1000 * 1000 * 1000;
        }
        pthread_cond_timedwait(&q->changed, &q->lock, &until);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int linequeue_error(LineQueue *q)
{
    pthread_mutex_lock(&q->lock);
    int err = q->error;
    pthread_mutex_unlock(&q->lock);
    return err;
}

void linequeue_free(LineQueue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->closing = 1;
    /* Text still waiting means the thread is blocked in a write that may
     * never return, so it is left to finish or to die with the process. */
    q->detached = q->len > 0 || q->writing;
    pthread_cond_broadcast(&q->changed);
    int detached = q->detached;
    /* Once unlocked, a detached thread may free Q at any moment. */
    pthread_t thread = q->thread;
    pthread_mutex_unlock(&q->lock);
    if (detached) {
        pthread_detach(thread);
        return;
    }
    pthread_join(thread, NULL);
    destroy(q);
}
