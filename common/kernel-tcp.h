/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>

/* What the kernel says about a socket: TCP_INFO on an open fd, sock_diag for any 4-tuple
 * (also after our fd is gone, e.g. in TIME_WAIT). Pure queries: nothing here logs. */

/* Returns Linux's state number (1..12) or -errno. */
int tcp_kernel_state(int fd);
int tcp_info_get(int fd, struct tcp_info *ret);

typedef struct SockDiagResult {
        int state; /* Linux's state number */
        uint64_t cookie; /* the kernel's socket cookie: tells a new socket on the same tuple apart */
        uint32_t timer_ms;
} SockDiagResult;

/* A NETLINK_SOCK_DIAG socket (blocking: the kernel answers synchronously). Returns fd or -errno. */
int sock_diag_open(void);

/* Look up one TCP socket by its exact 4-tuple (local and remote as this host sees them; a remote
 * of address 0 port 0 finds the listener on local). Returns 0 and fills ret, -ENOENT if the kernel
 * has no socket with exactly this 4-tuple, or -errno. */
int sock_diag_lookup(int nl_fd, const struct sockaddr *local, const struct sockaddr *remote, SockDiagResult *ret);
