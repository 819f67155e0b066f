/* SPDX-License-Identifier: MIT */
/* Sockets, test data, and the churn and idle modes. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CHURN_MSG 16
#define CONNECT_TIMEOUT_MS 5000
#define FINISH_TIMEOUT_NS (10ull * 1000000000ull)

uint8_t pattern_bin[2 * PATTERN_SIZE];
char pattern_txt[2 * PATTERN_SIZE];

uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void worker_fail(Worker *w, const char *fmt, ...) {
        if (w->st.error[0])
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->st.error, sizeof(w->st.error), fmt, ap);
        va_end(ap);
}

void pattern_init(void) {
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (unsigned i = 0; i < PATTERN_SIZE; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pattern_bin[i] = pattern_bin[i + PATTERN_SIZE] = (uint8_t)(x >> 24);
                pattern_txt[i] = pattern_txt[i + PATTERN_SIZE] = (char)('a' + (x >> 40) % 26);
        }
}

int bench_connect(const Options *opt, unsigned idx, bool blocking) {
        int fd = socket(opt->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (opt->sources > 1 && opt->target.ss_family == AF_INET) {
                /* the port is then picked at connect() for the whole 4-tuple */
                struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u + idx % opt->sources) };
                if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
                    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        }
        if (connect(fd, (const struct sockaddr *)&opt->target, opt->target_len) < 0 && errno != EINPROGRESS) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!blocking)
                return fd;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, CONNECT_TIMEOUT_MS);
        int err = 0;
        socklen_t len = sizeof(err);
        if (n == 0)
                err = ETIMEDOUT;
        else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err) {
                close(fd);
                return -err;
        }
        return fd;
}

/* ---- churn: connect, one short echo, close; K of them at a time ---- */

typedef struct ChurnSlot {
        int fd;
        bool connected;
        uint64_t t0, seq;
        unsigned got;
} ChurnSlot;

typedef struct Churn {
        Worker *w;
        int epfd;
        uint64_t next_seq, started;
        ChurnSlot *slots;
} Churn;

static const uint8_t *churn_msg(uint64_t seq) {
        return pattern_bin + (seq * 31) % PATTERN_SIZE;
}

static bool churn_may_start(Churn *ch) {
        if (ch->w->opt->count)
                return ch->started < ch->w->quota;
        return !atomic_load_explicit(&bench_stop, memory_order_relaxed);
}

static void churn_start(Churn *ch, ChurnSlot *sl) {
        while (churn_may_start(ch)) {
                sl->seq = ch->next_seq++;
                sl->t0 = now_ns();
                sl->got = 0;
                sl->connected = false;
                ch->started++;
                sl->fd = bench_connect(ch->w->opt, (unsigned)(sl->seq % 65536), false);
                int r = sl->fd;
                if (sl->fd >= 0) {
                        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = sl };
                        if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, sl->fd, &ev) == 0)
                                return;
                        r = -errno;
                        close(sl->fd);
                }
                atomic_fetch_add(&ch->w->st.failures, 1);
                worker_fail(ch->w, "connect: %s", strerror(-r));
        }
        sl->fd = -1;
}

static void churn_end(Churn *ch, ChurnSlot *sl, const char *failure) {
        if (failure) {
                atomic_fetch_add(&ch->w->st.failures, 1);
                worker_fail(ch->w, "connection %llu: %s", (unsigned long long)sl->seq, failure);
        } else {
                hist_add(&ch->w->st.lat, now_ns() - sl->t0);
                if (ch->w->opt->count || !atomic_load_explicit(&bench_stop, memory_order_relaxed))
                        atomic_fetch_add_explicit(&ch->w->st.ops, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&ch->w->st.bytes, CHURN_MSG, memory_order_relaxed);
        }
        close(sl->fd);
        sl->fd = -1;
        churn_start(ch, sl);
}

static void churn_event(Churn *ch, ChurnSlot *sl, uint32_t events) {
        if (!sl->connected) {
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (err)
                        return churn_end(ch, sl, strerror(err));
                sl->connected = true;
                if (send(sl->fd, churn_msg(sl->seq), CHURN_MSG, MSG_NOSIGNAL) != CHURN_MSG)
                        return churn_end(ch, sl, "short send");
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = sl };
                if (epoll_ctl(ch->epfd, EPOLL_CTL_MOD, sl->fd, &ev) < 0)
                        return churn_end(ch, sl, strerror(errno));
                return;
        }
        if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                return;
        uint8_t buf[CHURN_MSG];
        ssize_t n = recv(sl->fd, buf, CHURN_MSG - sl->got, 0);
        if (n < 0 && errno == EAGAIN)
                return;
        if (n < 0)
                return churn_end(ch, sl, strerror(errno));
        if (n == 0)
                return churn_end(ch, sl, "closed by the server before the echo");
        if (memcmp(buf, churn_msg(sl->seq) + sl->got, (size_t)n) != 0)
                return churn_end(ch, sl, "the echo differs from what was sent");
        sl->got += (unsigned)n;
        if (sl->got == CHURN_MSG)
                churn_end(ch, sl, NULL);
}

void *run_churn(void *arg) {
        Worker *w = arg;
        Churn ch = { .w = w, .next_seq = (uint64_t)w->first * 1000003u };
        ch.slots = calloc(w->n, sizeof(ChurnSlot));
        ch.epfd = epoll_create1(EPOLL_CLOEXEC);
        bool failed = !ch.slots || ch.epfd < 0;
        if (failed)
                worker_fail(w, "out of memory or file descriptors");
        pthread_barrier_wait(&bench_ready);
        for (unsigned i = 0; !failed && i < w->n; i++)
                churn_start(&ch, &ch.slots[i]);
        uint64_t deadline = 0;
        struct epoll_event evs[128];
        while (!failed) {
                unsigned busy = 0;
                for (unsigned i = 0; i < w->n; i++)
                        busy += ch.slots[i].fd >= 0;
                if (!busy)
                        break;
                if (!churn_may_start(&ch)) {
                        if (!deadline)
                                deadline = now_ns() + FINISH_TIMEOUT_NS;
                        else if (now_ns() > deadline) {
                                worker_fail(w, "%u connections still open 10 s after the end", busy);
                                break;
                        }
                }
                int n = epoll_wait(ch.epfd, evs, 128, 50);
                for (int i = 0; i < n; i++)
                        churn_event(&ch, evs[i].data.ptr, evs[i].events);
        }
        for (unsigned i = 0; ch.slots && i < w->n; i++)
                if (ch.slots[i].fd >= 0)
                        close(ch.slots[i].fd);
        free(ch.slots);
        if (ch.epfd >= 0)
                close(ch.epfd);
        return NULL;
}

/* ---- idle: open N connections, hold them, then check each still echoes one byte ---- */

void *run_idle(void *arg) {
        Worker *w = arg;
        int *fds = malloc(w->n * sizeof(int));
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        unsigned n_open = 0;
        if (!fds || epfd < 0)
                worker_fail(w, "out of memory or file descriptors");
        for (unsigned i = 0; fds && i < w->n && !atomic_load(&bench_stop); i++) {
                int fd = bench_connect(w->opt, w->first + i, true);
                if (fd < 0) {
                        atomic_fetch_add(&w->st.failures, 1);
                        worker_fail(w, "connection %u: connect: %s", w->first + i, strerror(-fd));
                        if (fd == -EMFILE || fd == -ENFILE)
                                break;
                        continue;
                }
                fds[n_open++] = fd;
                atomic_store(&w->st.open, n_open);
        }
        pthread_barrier_wait(&bench_ready);
        /* the main thread reads the daemon's RSS now, and stops us after the hold */
        while (!atomic_load(&bench_stop)) {
                struct timespec ts = { 0, 20 * 1000000 };
                nanosleep(&ts, NULL);
        }
        /* every connection must still be there: one byte each way */
        unsigned waiting = 0;
        for (unsigned i = 0; epfd >= 0 && i < n_open; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0 || send(fds[i], "x", 1, MSG_NOSIGNAL) != 1) {
                        atomic_fetch_add(&w->st.failures, 1);
                        worker_fail(w, "connection %u: gone during the hold: %s", i, strerror(errno));
                        continue;
                }
                waiting++;
        }
        uint64_t deadline = now_ns() + FINISH_TIMEOUT_NS;
        struct epoll_event evs[256];
        while (waiting && now_ns() < deadline) {
                int n = epoll_wait(epfd, evs, 256, 100);
                for (int i = 0; i < n; i++) {
                        unsigned k = evs[i].data.u32;
                        char c;
                        ssize_t r = recv(fds[k], &c, 1, 0);
                        if (r < 0 && errno == EAGAIN)
                                continue;
                        (void)epoll_ctl(epfd, EPOLL_CTL_DEL, fds[k], NULL);
                        waiting--;
                        if (r == 1 && c == 'x') {
                                atomic_fetch_add(&w->st.ops, 1);
                                continue;
                        }
                        atomic_fetch_add(&w->st.failures, 1);
                        worker_fail(w, "connection %u: no echo after the hold: %s", k, r == 0 ? "closed by the server" : strerror(errno));
                }
        }
        if (waiting) {
                atomic_fetch_add(&w->st.failures, waiting);
                worker_fail(w, "%u connections gave no echo within 10 s after the hold", waiting);
        }
        for (unsigned i = 0; i < n_open; i++)
                close(fds[i]);
        atomic_store(&w->st.open, 0);
        free(fds);
        if (epfd >= 0)
                close(epfd);
        return NULL;
}
