/* SPDX-License-Identifier: MIT */
#pragma once

/* What tcpeductl connect and chat share below their session: signals turned into flags and a
 * self-pipe their poll() loops wait on, messages on stderr, blocking writes that a signal
 * interrupts, and deadlines in milliseconds.
 *
 * Signals. SIGPIPE is ignored; SIGINT is counted; SIGTERM and SIGHUP are remembered; SIGWINCH
 * flagged. No SA_RESTART: a blocking write to stdout returns when a signal asks us to stop. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* ---- signals ---- */

int signals_setup(void);
void signals_restore(void);
/* The read end of the self-pipe, for poll(); signals_drain() empties it. */
int signals_fd(void);
void signals_drain(void);
int signals_interrupts(void); /* SIGINTs received */
int signals_terminate(void); /* SIGTERM or SIGHUP: its number; 0: none */
bool signals_take_winch(void); /* a SIGWINCH came since the last call */
/* SIGINT, SIGTERM or SIGHUP came. */
bool signals_stop_asked(void);
/* 128 + the number of the signal that stops us, as a shell reports it (130 for ^C). */
int exit_for_signal(void);

/* ---- output ---- */

/* chat's line editor hides its line around other output and draws it again after. */
void output_set_hooks(void (*begin)(void *userdata), void (*end)(void *userdata), void *userdata);

/* "tcpeductl: MESSAGE" on stderr, the message made safe for a terminal. */
void say(const char *fmt, ...) _printf_(1, 2);

/* Write all of p to fd, waiting while it is full. -EINTR when a signal asks us to stop. */
int write_all(int fd, const void *p, size_t n);

/* ---- time ---- */

uint64_t now_ms(void);
/* A poll() timeout for a deadline (0: none). */
int timeout_until(uint64_t deadline);
