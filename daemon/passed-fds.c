/* SPDX-License-Identifier: MIT */
/* Sockets passed by systemd: collected once at start, taken by the control socket and listeners by
 * FileDescriptorName=, given back (still open) when let go. */
#include "passed-fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "macro.h"

/* Read once, at start: systemd passes the sockets of the .socket units that name this service,
 * each with its FileDescriptorName= ("control" for the control socket, a server's name for a
 * listener). LISTEN_FDS and friends are removed from the environment, so nothing started later
 * takes them for its own. */
int passed_fds_collect(PassedFds *m) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);
        if (n <= 0)
                return n;
        m->fds = calloc((size_t)n, sizeof(PassedFd));
        for (int i = 0; i < n; i++) {
                char *name = names ? names[i] : NULL;
                if (m->fds) {
                        m->fds[i] = (PassedFd){ .fd = SD_LISTEN_FDS_START + i, .name = name ? name : strdup("unknown") };
                        if (!m->fds[i].name) {
                                safe_close(m->fds[i].fd);
                                m->fds[i].fd = -1;
                        }
                } else {
                        safe_close(SD_LISTEN_FDS_START + i);
                        free(name);
                }
        }
        free(names);
        if (!m->fds)
                return -ENOMEM;
        m->n = (size_t)n;
        return n;
}

/* Taken for use: non-blocking, as every fd of the loop. */
static int take(PassedFd *p) {
        if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK) < 0)
                return negative_errno();
        p->taken = true;
        return p->fd;
}

int passed_fds_take_control(PassedFds *m) {
        for (size_t i = 0; i < m->n; i++) {
                PassedFd *p = &m->fds[i];
                if (p->fd >= 0 && !p->taken && strcmp(p->name, "control") == 0 && sd_is_socket(p->fd, AF_UNIX, SOCK_STREAM, 1) > 0)
                        return take(p);
        }
        return -ENOENT;
}

int passed_fds_take_listener(PassedFds *m, const char *server, const struct sockaddr *addr, SockaddrUnion *ret_bound) {
        for (size_t i = 0; i < m->n; i++) {
                PassedFd *p = &m->fds[i];
                SockaddrUnion bound;
                socklen_t len = sizeof(bound);

                if (p->fd < 0 || p->taken || strcmp(p->name, server) != 0 || sd_is_socket(p->fd, addr->sa_family, SOCK_STREAM, 1) <= 0)
                        continue;
                if (getsockname(p->fd, &bound.sa, &len) < 0 || !sockaddr_ip_equal(&bound.sa, addr) ||
                    (sockaddr_port(addr) != 0 && sockaddr_port(addr) != sockaddr_port(&bound.sa)))
                        continue;
                int fd = take(p);
                if (fd >= 0)
                        *ret_bound = bound;
                return fd;
        }
        return -ENOENT;
}

void passed_fds_release(PassedFds *m, int fd) {
        for (size_t i = 0; i < m->n; i++)
                if (m->fds[i].fd == fd)
                        m->fds[i].taken = false;
}

void passed_fds_done(PassedFds *m) {
        for (size_t i = 0; i < m->n; i++) {
                safe_close(m->fds[i].fd);
                free(m->fds[i].name);
        }
        free(m->fds);
        m->fds = NULL;
        m->n = 0;
}
