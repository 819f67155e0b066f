/* SPDX-License-Identifier: MIT */
/* Client sockets: non-blocking, close-on-exec, every wait bounded by poll(). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness-private.h"

static int connect_begin(const Addr *to, const char *src_ip, bool *in_progress) {
        int fd = socket(to->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        track_fd(fd);
        if (src_ip) {
                Addr src;
                if (addr_parse_ip(src_ip, 0, &src) < 0 || bind(fd, &src.sa, addr_len(&src)) < 0) {
                        int r = errno ? -errno : -EINVAL;
                        sock_close(fd);
                        return r;
                }
        }
        *in_progress = false;
        if (connect(fd, &to->sa, addr_len(to)) < 0) {
                if (errno != EINPROGRESS) {
                        int r = -errno;
                        sock_close(fd);
                        return r;
                }
                *in_progress = true;
        }
        return fd;
}

int tcp_connect_start(const Addr *to) {
        bool in_progress = false;
        return connect_begin(to, NULL, &in_progress);
}

int tcp_connect(const Addr *to, const char *src_ip) {
        bool in_progress = false;
        int fd = connect_begin(to, src_ip, &in_progress);
        if (fd < 0 || !in_progress)
                return fd;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0) {
                sock_close(fd);
                return -ETIMEDOUT;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                sock_close(fd);
                return -(err ? err : EIO);
        }
        return fd;
}

int connect_expect_reset(const Addr *to, const char *src_ip, char *local, size_t size) {
        bool in_progress = false;
        int fd = connect_begin(to, src_ip, &in_progress);
        if (fd < 0)
                return fd;
        /* The port is bound by connect(): this is the peer address the daemon sees. */
        sock_local(fd, local, size);
        int r = wait_closed(fd, IO_TIMEOUT_MS);
        sock_close(fd);
        return r;
}

void sock_close(int fd) {
        if (fd < 0)
                return;
        untrack_fd(fd);
        close(fd);
}

int send_all(int fd, const void *buf, size_t len, int timeout_ms) {
        const uint8_t *p = buf;
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                int left = remaining_ms(deadline);
                if (left == 0 || poll(&pf, 1, left) == 0)
                        return -ETIMEDOUT;
        }
        return 0;
}

int recv_exact(int fd, void *buf, size_t len, int timeout_ms) {
        uint8_t *p = buf;
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        while (len > 0) {
                ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n == 0)
                        return -ENODATA;
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                int left = remaining_ms(deadline);
                if (left == 0 || poll(&pf, 1, left) == 0)
                        return -ETIMEDOUT;
        }
        return 0;
}

int echo_check(int fd, const void *data, size_t len, int timeout_ms) {
        const uint8_t *src = data;
        uint8_t *got = malloc(len ? len : 1);
        size_t sent = 0, recvd = 0;
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        int r = 0;

        if (!got)
                return -ENOMEM;
        while (recvd < len) {
                struct pollfd pf = { .fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
                int left = remaining_ms(deadline);
                if (left == 0 || poll(&pf, 1, left) == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (sent < len && (pf.revents & POLLOUT)) {
                        ssize_t n = send(fd, src + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n > 0)
                                sent += (size_t)n;
                        else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                r = -errno;
                                break;
                        }
                }
                if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = recv(fd, got + recvd, len - recvd, MSG_DONTWAIT);
                        if (n > 0)
                                recvd += (size_t)n;
                        else if (n == 0) {
                                r = -ENODATA;
                                break;
                        } else if (errno != EAGAIN && errno != EINTR) {
                                r = -errno;
                                break;
                        }
                }
        }
        if (r == 0 && memcmp(got, src, len) != 0)
                r = -EBADMSG;
        free(got);
        return r;
}

int wait_closed(int fd, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                char c;
                ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
                if (n == 0)
                        return 0;
                if (n > 0)
                        return -EPROTO;
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                int left = remaining_ms(deadline);
                if (left == 0 || poll(&pf, 1, left) == 0)
                        return -ETIMEDOUT;
        }
}

int close_graceful(int fd) {
        int r = shutdown(fd, SHUT_WR) < 0 ? -errno : wait_closed(fd, IO_TIMEOUT_MS);
        sock_close(fd);
        return r;
}
