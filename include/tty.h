/*
 * tty: the terminal outside curses. It checks $TERM before curses takes
 * the terminal, puts the terminal back from a crash handler, and lets go
 * of a terminal that hung up. The tui module calls it; nothing here draws.
 */
#ifndef FMNIST_TTY_H
#define FMNIST_TTY_H

#include <stddef.h>

/*
 * Checks, without writing to FD, that $TERM has a terminfo entry that can
 * address the cursor. Returns 0, or -1 with the reason in ERR, for
 * example "TERM=dumb cannot move the cursor".
 */
int tty_check_term(int fd, char *err, size_t errlen);

/* Saves FD's terminal modes; call before curses changes them. Returns 0,
 * or -1 when FD is not a terminal. */
int tty_save_modes(int fd);

/*
 * Turns off the echo of terminal FD while the program works before
 * curses starts, so keys typed meanwhile do not scribble over its output.
 * tty_quiet_end puts the modes back and discards those keys, so they do
 * not reach the interface either. An exit before that puts the modes
 * back too, and so does SIGQUIT or a crash signal, before its default
 * action. Returns 0, or -1 when FD is not a terminal.
 */
int tty_quiet_begin(int fd);
void tty_quiet_end(void);

/*
 * Installs the crash handler for SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL
 * and SIGABRT, with an alternate signal stack for the calling thread. Call
 * after curses started, because the reset strings come from the current
 * terminfo entry. On a crash the handler writes the saved modes back to
 * FD, sends the reset strings, writes one line to stderr and passes the
 * signal on to the previous action (the default one dumps core).
 */
void tty_arm(int fd);

/* Makes the crash handler leave the terminal alone, for example after a
 * hangup. The handler stays installed until tty_disarm. */
void tty_forget(void);

/* Restores the signal actions and the signal stack that tty_arm replaced. */
void tty_disarm(void);

/* Returns 0 when FD is a terminal whose foreground process group is not
 * the caller's (a job that Ctrl-Z stopped or bg continued), else 1. The
 * kernel stops such a process with SIGTTOU when it changes the modes,
 * and tcgetpgrp is async-signal-safe, so a signal handler may call it. */
int tty_in_foreground(int fd);

/* Writes the size of terminal FD to *ROWS and *COLS and returns 0, or
 * returns -1 when FD is no terminal or reports no size. */
int tty_size(int fd, int *rows, int *cols);

/* Returns 1 when writing to FD would stop the process with SIGTTOU: the
 * process is in the background of terminal FD, and its TOSTOP mode is on
 * (stty tostop). */
int tty_output_stops(int fd);

/*
 * Returns 1 when FD is a terminal that hung up (the SSH connection or the
 * terminal emulator went away), 0 otherwise.
 */
int tty_hung_up(int fd);

/*
 * Points those of the standard input, output and error that refer to a
 * terminal, working or hung up, at /dev/null, so that later reads see end
 * of file and later writes are discarded instead of failing with EIO.
 * Returns a mask with bit N set when descriptor N was replaced.
 */
int tty_detach_stdio(void);

#endif
