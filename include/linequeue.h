/*
 * linequeue: text written to a file descriptor by a thread of its own,
 * so that the thread that produces it never waits for the reader. A
 * headless run reports each epoch on standard output from the trainer
 * thread. Were that thread to call write itself, a full pipe would hold
 * up training and saving, and the stop after SIGTERM would wait for the
 * write.
 */
#ifndef FMNIST_LINEQUEUE_H
#define FMNIST_LINEQUEUE_H

#include <signal.h>

typedef struct LineQueue LineQueue;

/* Starts the thread that writes to FD. Returns NULL when the thread
 * cannot start. Block the signals that only the main thread handles
 * around this call, because the thread inherits the signal mask. */
LineQueue *linequeue_start(int fd);

/* Appends TEXT (copied) to what the thread writes. Any thread may call
 * it. After a failed write the text is dropped. */
void linequeue_add(LineQueue *q, const char *text);

/*
 * Waits until the thread has written all the text added so far. Once
 * *STOP is nonzero it waits at most about 0.1 s more, so that a reader
 * that stopped reading does not hold up a stop. Returns 0 when all was
 * written or dropped, -1 when text is still waiting.
 */
int linequeue_drain(LineQueue *q, const volatile sig_atomic_t *stop);

/* Returns the errno of the first failed write, or 0. */
int linequeue_error(LineQueue *q);

/* Ends the thread and frees Q. When the thread is still blocked in a
 * write (linequeue_drain returned -1), it is detached instead and keeps
 * Q until the process exits. */
void linequeue_free(LineQueue *q);

#endif
