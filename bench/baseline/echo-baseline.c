/* SPDX-License-Identifier: MIT */
/* echo-baseline: the smallest honest epoll echo server, the reference tcpedud is measured against.
 * One thread, level-triggered epoll, one 64 KiB read buffer; bytes a peer does not take stay in a
 * per-connection buffer and the connection is not read until they are gone (the same flow control
 * as tcpedud's echo, without its bookkeeping). Usage: echo-baseline [ADDR] PORT (port 0: any);
 * prints "listening on ADDR:PORT" once ready, exits on SIGINT or SIGTERM. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define READS_PER_WAKEUP 16

typedef struct Client {
        int fd;
        char *pending; /* unsent echo, at most BUF_SIZE */
        size_t pending_off, pending_len;
} Client;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void)sig;
        stop = 1;
}

static void client_free(Client *c) {
        close(c->fd);
        free(c->pending);
        free(c);
}

/* Write what is pending; true while some is left. -1 on a broken connection. */
static int flush_pending(Client *c) {
        while (c->pending_off < c->pending_len) {
                ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
                if (n < 0)
                        return errno == EAGAIN ? 1 : -1;
                c->pending_off += (size_t)n;
        }
        c->pending_off = c->pending_len = 0;
        return 0;
}

static int client_event(int ep, Client *c, uint32_t events, char *buf) {
        if (c->pending_len) {
                int r = flush_pending(c);
                if (r != 0)
                        return r < 0 ? -1 : 0;
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        return -1;
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        for (int i = 0; i < READS_PER_WAKEUP; i++) {
                ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -1;
                if (n == 0)
                        return -1;
                ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN)
                        return -1;
                if (w < n) {
                        size_t off = w < 0 ? 0 : (size_t)w;
                        if (!c->pending && !(c->pending = malloc(BUF_SIZE)))
                                return -1;
                        memcpy(c->pending, buf + off, (size_t)n - off);
                        c->pending_off = 0;
                        c->pending_len = (size_t)n - off;
                        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
                        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -1 : 0;
                }
                if (n < BUF_SIZE)
                        return 0;
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *addr = argc > 2 ? argv[1] : "127.0.0.1";
        const char *port = argc > 2 ? argv[2] : argc > 1 ? argv[1] : "0";
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
        if (argc > 3 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
                fprintf(stderr, "Usage: echo-baseline [IPV4-ADDR] PORT\n");
                return 64;
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        socklen_t len = sizeof(sin);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
                perror("echo-baseline: listen");
                return 1;
        }
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
        char *buf = malloc(BUF_SIZE);
        if (ep < 0 || !buf || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
                perror("echo-baseline: epoll");
                return 1;
        }
        printf("listening on %s:%u\n", addr, ntohs(sin.sin_port));
        fflush(stdout);

        struct epoll_event evs[128];
        while (!stop) {
                int n = epoll_wait(ep, evs, 128, -1);
                for (int i = 0; i < n; i++) {
                        Client *c = evs[i].data.ptr;
                        if (!c) {
                                int fd;
                                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                                        c = calloc(1, sizeof(Client));
                                        struct epoll_event ev = { .events = EPOLLIN };
                                        ev.data.ptr = c;
                                        if (!c || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
                                            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                                                close(fd);
                                                free(c);
                                        } else
                                                c->fd = fd;
                                }
                                continue;
                        }
                        if (client_event(ep, c, evs[i].events, buf) < 0)
                                client_free(c);
                }
        }
        close(ep);
        close(lfd);
        free(buf);
        return 0;
}
