/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the harness-*.c files only: the registry of what a test created (released by
 * harness_teardown()) and process helpers. */

#include <sys/resource.h>

#include "harness.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

void *track_alloc(void *p); /* freed at teardown; frees p and returns NULL if it cannot be tracked */
void track_fd(int fd);
void untrack_fd(int fd);
void track_jlist(JList *l);
int track_daemon(Daemon *d); /* killed (if still running) and freed at teardown */

int remaining_ms(uint64_t deadline);
socklen_t addr_len(const Addr *a);
int pidfd_open_(pid_t pid);
int exit_code_of(int status);
/* environ without the service manager's variables, plus extra (may be NULL). */
char **child_env(const char *extra);
/* In a forked child: own process group, dies with the test, stdio redirected, no other fds. */
void child_exec(const char *const *argv, char **env, int out_fd, int err_fd, rlim_t nofile) __attribute__((noreturn));
