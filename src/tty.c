/*
 * tty: terminal checks, the crash handler, quiet input before curses
 * starts and detaching from a hung-up terminal.
 *
 * The crash handler can run at any moment and in any thread, so it only
 * calls async-signal-safe functions (tcsetattr, write, sigaction, raise)
 * on data prepared in advance: the terminal modes saved before curses
 * changed them, and the terminfo strings that reset the attributes, leave
 * keypad mode, show the cursor and leave the alternate screen, with their
 * padding delays removed.
 *
 * A terminal hangs up when the SSH connection drops or the terminal
 * emulator closes. Linux then makes reads return end of file, writes and
 * most ioctls fail with EIO, and poll report POLLHUP.
 *
 * Limits: nothing runs after SIGKILL. Only the thread that called tty_arm
 * gets the alternate signal stack, so a stack overflow in another thread
 * faults again inside the handler and the terminal stays as curses left
 * it.
 */
#include "config.h"

#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <curses.h>
#include <term.h>

#define RESET_MAX 256
#define ALT_STACK_SIZE (64 * 1024)

/* The signals whose default action ends the process with a core dump.
 * SIGQUIT (Ctrl-\) is among them because cbreak mode keeps ISIG, so the
 * key still sends it while curses runs. */
static const int crash_signals[] = { SIGQUIT, SIGSEGV, SIGBUS, SIGFPE,
                                     SIGILL, SIGABRT };
#define N_CRASH_SIGNALS ((int)(sizeof crash_signals / sizeof crash_signals[0]))

static struct sigaction previous_action[N_CRASH_SIGNALS];
static stack_t previous_stack;
static int armed;

/* Read by the crash handler; written only while it is not installed,
 * except restore_fd, which tty_forget clears. */
static volatile sig_atomic_t restore_fd = -1;
static struct termios saved_modes;
static int have_modes;
static char reset_seq[RESET_MAX];
static size_t reset_len;
static char alt_stack[ALT_STACK_SIZE];

static void set_err(char *err, size_t errlen, const char *fmt, const char *term)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, term);
}

int tty_check_term(int fd, char *err, size_t errlen)
{
    const char *term = getenv("TERM");
    int errret = 0;

    if (term == NULL || term[0] == '\0') {
        set_err(err, errlen, "TERM is not set%s", "");
        return -1;
    }
    /* With ERRRET given, setupterm reports instead of printing. */
    if (setupterm(NULL, fd, &errret) != OK) {
        if (errret == 1)
            set_err(err, errlen, "TERM=%s is a hardcopy terminal", term);
        else if (errret == 0)
            set_err(err, errlen, "TERM=%s has no terminfo entry", term);
        else
            set_err(err, errlen, "no terminfo database found for TERM=%s",
                    term);
        return -1;
    }

    const char *cup = tigetstr("cup");
    int generic = tigetflag("gn") > 0;
    del_curterm(cur_term);
    if (generic || cup == NULL || cup == (char *)-1) {
        set_err(err, errlen, "TERM=%s cannot move the cursor", term);
        return -1;
    }
    return 0;
}

int tty_save_modes(int fd)
{
    have_modes = tcgetattr(fd, &saved_modes) == 0;
    return have_modes ? 0 : -1;
}

/* The terminal whose echo tty_quiet_begin turned off, or -1, and its
 * modes before that. */
static volatile sig_atomic_t quiet_fd = -1;
static struct termios quiet_modes;

/* Signals whose default action ends the process, and that the program
 * does not handle while it loads its data: SIGQUIT (Ctrl-\) and the
 * crash signals. */
static const int quiet_signals[] = { SIGQUIT, SIGSEGV, SIGBUS, SIGFPE,
                                     SIGILL, SIGABRT };
#define N_QUIET_SIGNALS ((int)(sizeof quiet_signals / sizeof quiet_signals[0]))
static struct sigaction quiet_previous[N_QUIET_SIGNALS];

/* Puts the echo back and lets SIG take its default action. */
static void quiet_on_signal(int sig)
{
    if (quiet_fd >= 0)
        tcsetattr(quiet_fd, TCSANOW, &quiet_modes);
    signal(sig, SIG_DFL);
    raise(sig);
}

void tty_quiet_end(void)
{
    if (quiet_fd < 0)
        return;
    for (int i = 0; i < N_QUIET_SIGNALS; i++)
        sigaction(quiet_signals[i], &quiet_previous[i], NULL);
    tcflush(quiet_fd, TCIFLUSH);
    tcsetattr(quiet_fd, TCSANOW, &quiet_modes);
    quiet_fd = -1;
}

/* Puts the echo back on when the program exits before tty_quiet_end. */
static void quiet_at_exit(void)
{
    if (quiet_fd >= 0)
        tcsetattr(quiet_fd, TCSANOW, &quiet_modes);
}

int tty_quiet_begin(int fd)
{
    static int exit_hook;
    struct termios quiet;

    if (quiet_fd >= 0 || tcgetattr(fd, &quiet_modes) != 0)
        return -1;
    if (!exit_hook) {
        atexit(quiet_at_exit);
        exit_hook = 1;
    }
    quiet = quiet_modes;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet_fd = fd;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = quiet_on_signal;
    for (int i = 0; i < N_QUIET_SIGNALS; i++)
        sigaction(quiet_signals[i], &sa, &quiet_previous[i]);
    if (tcsetattr(fd, TCSANOW, &quiet) != 0) {
        tty_quiet_end();
        return -1;
    }
    return 0;
}

/* Appends terminfo string capability NAME to the reset sequence, without
 * its padding specifications such as "$<5>", which only terminfo's
 * own output routines understand. */
static void append_cap(const char *name)
{
    const char *s = tigetstr(name);

    if (s == NULL || s == (char *)-1)
        return;
    while (*s != '\0' && reset_len < RESET_MAX) {
        if (s[0] == '$' && s[1] == '<') {
            const char *p = s + 2;

            while ((*p >= '0' && *p <= '9') || *p == '.' || *p == '*'
                   || *p == '/')
                p++;
            if (*p == '>') {
                s = p + 1;
                continue;
            }
        }
        reset_seq[reset_len++] = *s++;
    }
}

/* Writes "fmnist: crashed on signal N" to stderr with write(2) only, or
 * "fmnist: quit by signal N" for SIGQUIT, which a user sends. */
static void write_crash_note(int sig)
{
    const char *lead = sig == SIGQUIT ? "\r\nfmnist: quit by signal "
                                      : "\r\nfmnist: crashed on signal ";
    char line[64];
    size_t n = strlen(lead);
    char digits[12];
    int d = 0;

    memcpy(line, lead, n);
    do {
        digits[d++] = (char)('0' + sig % 10);
        sig /= 10;
    } while (sig > 0 && d < (int)sizeof digits);
    while (d > 0)
        line[n++] = digits[--d];
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

static void on_crash(int sig)
{
    int fd = restore_fd;

    if (fd >= 0) {
        restore_fd = -1;
        if (have_modes)
            tcsetattr(fd, TCSANOW, &saved_modes);
        (void)!write(fd, reset_seq, reset_len);
        write_crash_note(sig);
    }

    /* Hand the signal to the action that was there before. The default
     * action ends the process with a core dump, and a sanitizer's handler
     * prints its report. The signal is blocked while this handler runs, so
     * it is delivered once the handler returns. */
    for (int i = 0; i < N_CRASH_SIGNALS; i++) {
        if (crash_signals[i] == sig)
            sigaction(sig, &previous_action[i], NULL);
    }
    raise(sig);
}

/* Appends the string that turns off the mouse reports that mousemask
 * turned on. ncurses 6 sends XM with parameter 1 to turn them on. Without
 * XM, a terminal with a kmous key gets xterm's mode 1000, and SGR mode
 * 1006 too when kmous starts "\033[<", so the same modes are turned off
 * here. */
static void append_mouse_off(void)
{
    const char *xm = tigetstr("XM");
    const char *kmous = tigetstr("kmous");
    const char *off = NULL;

    if (xm != NULL && xm != (char *)-1)
        off = tiparm(xm, 0);
    else if (kmous != NULL && kmous != (char *)-1 && kmous[0] != '\0')
        off = strncmp(kmous, "\033[<", 3) == 0 ? "\033[?1006;1000l"
                                               : "\033[?1000l";
    for (; off != NULL && *off != '\0' && reset_len < RESET_MAX; off++)
        reset_seq[reset_len++] = *off;
}

void tty_arm(int fd)
{
    struct sigaction sa;
    stack_t stack = { .ss_sp = alt_stack, .ss_size = sizeof alt_stack };

    if (armed)
        return;
    reset_len = 0;
    append_cap("sgr0");
    append_cap("rmkx");
    append_cap("cnorm");
    append_cap("rmcup");
    append_mouse_off();

    sigaltstack(&stack, &previous_stack);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_CRASH_SIGNALS; i++) {
        sigaction(crash_signals[i], &sa, &previous_action[i]);
        /* A signal ignored from the start stays ignored. A shell without
         * job control starts background commands with SIGQUIT ignored,
         * and the handler would reset the terminal under a process that
         * then goes on drawing. */
        if (previous_action[i].sa_handler == SIG_IGN)
            sigaction(crash_signals[i], &previous_action[i], NULL);
    }
    restore_fd = fd;
    armed = 1;
}

void tty_forget(void)
{
    restore_fd = -1;
}

void tty_disarm(void)
{
    if (!armed)
        return;
    restore_fd = -1;
    for (int i = 0; i < N_CRASH_SIGNALS; i++)
        sigaction(crash_signals[i], &previous_action[i], NULL);
    sigaltstack(&previous_stack, NULL);
    armed = 0;
}

int tty_in_foreground(int fd)
{
    pid_t group = tcgetpgrp(fd);

    return group < 0 || group == getpgrp();
}

int tty_size(int fd, int *rows, int *cols)
{
    struct winsize size;

    if (ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_row == 0
        || size.ws_col == 0)
        return -1;
    *rows = size.ws_row;
    *cols = size.ws_col;
    return 0;
}

int tty_output_stops(int fd)
{
    struct termios modes;

    return !tty_in_foreground(fd) && tcgetattr(fd, &modes) == 0
           && (modes.c_lflag & TOSTOP);
}

int tty_hung_up(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct termios modes;

    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
        return 1;
    return tcgetattr(fd, &modes) != 0 && errno == EIO;
}

/* Returns 1 when FD is a terminal; a hung-up one fails tcgetattr with
 * EIO instead of ENOTTY. */
static int refers_to_terminal(int fd)
{
    struct termios modes;

    return tcgetattr(fd, &modes) == 0 || errno == EIO;
}

int tty_detach_stdio(void)
{
    int null_fd = -1, mask = 0;

    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (!refers_to_terminal(fd))
            continue;
        if (null_fd < 0)
            null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0 && dup2(null_fd, fd) == fd)
            mask |= 1 << fd;
    }
    if (null_fd > STDERR_FILENO)
        close(null_fd);
    return mask;
}
