/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "interactive-io.h"

/* ---- signals: what the handler may touch ---- */

static int signal_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_int; /* SIGINTs received */
static volatile sig_atomic_t sig_term; /* SIGTERM or SIGHUP: its number */
static volatile sig_atomic_t sig_winch;

static const int handled_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE };
static struct sigaction saved_actions[ELEMENTSOF(handled_signals)];

static void on_signal(int sig) {
        int saved = errno;
        if (sig == SIGINT)
                sig_int = sig_int + 1;
        else if (sig == SIGWINCH)
                sig_winch = 1;
        else
                sig_term = sig;
        if (signal_pipe[1] >= 0 && write(signal_pipe[1], "x", 1) < 0) {
                /* full: a wake-up is pending anyway */
        }
        errno = saved;
}

int signals_setup(void) {
        if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        sig_int = sig_term = sig_winch = 0;
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++) {
                struct sigaction sa = { .sa_handler = handled_signals[i] == SIGPIPE ? SIG_IGN : on_signal };
                sigemptyset(&sa.sa_mask);
                sigaction(handled_signals[i], &sa, &saved_actions[i]);
        }
        return 0;
}

void signals_restore(void) {
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaction(handled_signals[i], &saved_actions[i], NULL);
        signal_pipe[0] = safe_close(signal_pipe[0]);
        signal_pipe[1] = safe_close(signal_pipe[1]);
}

int signals_fd(void) {
        return signal_pipe[0];
}

void signals_drain(void) {
        char b[64];
        while (signal_pipe[0] >= 0 && read(signal_pipe[0], b, sizeof(b)) > 0)
                ;
}

int signals_interrupts(void) {
        return sig_int;
}

int signals_terminate(void) {
        return sig_term;
}

bool signals_take_winch(void) {
        if (!sig_winch)
                return false;
        sig_winch = 0;
        return true;
}

bool signals_stop_asked(void) {
        return sig_int || sig_term;
}

int exit_for_signal(void) {
        return 128 + (sig_term ? (int)sig_term : SIGINT);
}

/* ---- output ---- */

static void (*output_begin)(void *userdata);
static void (*output_end)(void *userdata);
static void *output_userdata;

void output_set_hooks(void (*begin)(void *userdata), void (*end)(void *userdata), void *userdata) {
        output_begin = begin;
        output_end = end;
        output_userdata = userdata;
}

int write_all(int fd, const void *p, size_t n) {
        const char *q = p;
        while (n > 0) {
                ssize_t w = write(fd, q, n);
                if (w < 0) {
                        if (errno == EINTR) {
                                if (signals_stop_asked())
                                        return -EINTR;
                                continue;
                        }
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                                if (poll(&pf, 1, -1) < 0 && errno == EINTR && signals_stop_asked())
                                        return -EINTR;
                                continue;
                        }
                        return negative_errno();
                }
                q += w;
                n -= (size_t)w;
        }
        return 0;
}

#define SAY_MAX 2200 /* bytes of one message, "tcpeductl: " and newline included */

void say(const char *fmt, ...) {
        char msg[2048];
        _cleanup_(text_done) TextBuf b = { .limit = SAY_MAX - 1 };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        text_puts(&b, "tcpeductl: ");
        text_put_safe(&b, msg, strlen(msg));
        b.limit++;
        text_puts(&b, "\n");
        fflush(stdout);
        if (output_begin)
                output_begin(output_userdata);
        (void)write_all(STDERR_FILENO, text_data(&b), text_len(&b));
        if (output_end)
                output_end(output_userdata);
}

/* ---- time ---- */

uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int timeout_until(uint64_t deadline) {
        if (!deadline)
                return -1;
        uint64_t now = now_ms();
        return deadline <= now ? 0 : (int)MIN(deadline - now, (uint64_t)INT32_MAX);
}
