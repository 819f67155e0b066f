/* SPDX-License-Identifier: MIT */
#pragma once

/* Sockets systemd passed at start (socket activation), each with its FileDescriptorName=. systemd
 * keeps a copy of each, so tcpedud never closes one while it runs: a listener it stops using goes
 * back to this pool, still listening in the kernel, and a later reload may take it again. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "sockaddr-util.h"

typedef struct PassedFd {
        int fd;
        char *name;
        bool taken; /* in use: the control socket, or a Listener with passed set */
} PassedFd;

typedef struct PassedFds {
        PassedFd *fds;
        size_t n;
} PassedFds;

/* Read once, at start (LISTEN_FDS and friends are then removed from the environment). Returns the
 * number of sockets, or -errno. */
int passed_fds_collect(PassedFds *p);
void passed_fds_done(PassedFds *p);
/* Take the passed AF_UNIX stream socket named "control"; -ENOENT if there is none. */
int passed_fds_take_control(PassedFds *p);
/* Take a passed TCP listening socket named after the server and bound to addr (any port when addr's
 * is 0); returns its fd, made non-blocking, and its address, or -ENOENT. */
int passed_fds_take_listener(PassedFds *p, const char *server, const struct sockaddr *addr, SockaddrUnion *ret_bound);
/* A taken socket is let go: back to the pool, open and listening. */
void passed_fds_release(PassedFds *p, int fd);
