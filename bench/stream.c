/* SPDX-License-Identifier: MIT */
/* echo and enhanced modes: C connections, each with up to P messages of S bytes in flight.
 * echo sends binary pattern bytes and checks every byte that comes back at its stream offset;
 * enhanced sends {"command":"echo","data":"<S letters>"} lines and checks each reply's status
 * and data. A message's latency runs from the moment it may be sent to its last byte back. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

#define RX_SIZE (256 * 1024)
#define READS_PER_WAKEUP 16
#define DRAIN_TIMEOUT_NS (10ull * 1000000000ull)
#define ENH_PREFIX "{\"command\":\"echo\",\"data\":\""
#define ENH_SUFFIX "\"}\n"

typedef struct StreamConn {
        int fd;
        uint32_t seed; /* where in the pattern this connection's stream starts */
        uint64_t started, done; /* messages */
        uint64_t sent, rcvd; /* echo: stream bytes */
        uint64_t *t_start; /* ring of pipeline start times */
        bool want_out;
        char *out; /* enhanced: requests not yet written */
        size_t out_len, out_off;
        char *line; /* enhanced: the reply being received */
        size_t line_len, line_cap;
} StreamConn;

typedef struct Stream {
        Worker *w;
        const Options *opt;
        bool enhanced;
        int epfd;
        StreamConn *conns;
        uint64_t started_total;
        uint8_t *rx;
} Stream;

static bool may_start(Stream *s, StreamConn *c) {
        if (c->started - c->done >= s->opt->pipeline)
                return false;
        if (s->opt->count)
                return s->started_total < s->w->quota;
        return !atomic_load_explicit(&bench_stop, memory_order_relaxed);
}

static int set_out(Stream *s, StreamConn *c, bool on) {
        if (c->want_out == on)
                return 0;
        struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -errno;
        c->want_out = on;
        return 0;
}

static const char *enh_payload(const Stream *s, const StreamConn *c, uint64_t msg) {
        return pattern_txt + (c->seed + msg * s->opt->size) % PATTERN_SIZE;
}

/* Start what the pipeline allows, then write what is pending. 0, or -errno on a broken connection. */
static int stream_send(Stream *s, StreamConn *c) {
        uint64_t now = 0;
        unsigned P = s->opt->pipeline, S = s->opt->size;
        while (may_start(s, c)) {
                if (!now)
                        now = now_ns();
                if (s->enhanced) {
                        size_t need = strlen(ENH_PREFIX) + S + strlen(ENH_SUFFIX);
                        if (c->out_off == c->out_len)
                                c->out_off = c->out_len = 0;
                        char *p = c->out + c->out_len;
                        memcpy(p, ENH_PREFIX, strlen(ENH_PREFIX));
                        memcpy(p + strlen(ENH_PREFIX), enh_payload(s, c, c->started), S);
                        memcpy(p + strlen(ENH_PREFIX) + S, ENH_SUFFIX, strlen(ENH_SUFFIX));
                        c->out_len += need;
                }
                c->t_start[c->started % P] = now;
                c->started++;
                s->started_total++;
        }
        for (;;) {
                const void *buf;
                size_t len;
                if (s->enhanced) {
                        buf = c->out + c->out_off;
                        len = c->out_len - c->out_off;
                } else {
                        uint64_t target = c->started * S;
                        buf = pattern_bin + (c->seed + c->sent) % PATTERN_SIZE;
                        len = target - c->sent < PATTERN_SIZE ? target - c->sent : PATTERN_SIZE;
                }
                if (len == 0)
                        return set_out(s, c, false);
                ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN)
                                return set_out(s, c, true);
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (s->enhanced)
                        c->out_off += (size_t)n;
                else
                        c->sent += (uint64_t)n;
        }
}

static void message_done(Stream *s, StreamConn *c, uint64_t now) {
        hist_add(&s->w->st.lat, now - c->t_start[c->done % s->opt->pipeline]);
        c->done++;
        if (s->opt->count || !atomic_load_explicit(&bench_stop, memory_order_relaxed))
                atomic_fetch_add_explicit(&s->w->st.ops, 1, memory_order_relaxed);
}

static int echo_received(Stream *s, StreamConn *c, const uint8_t *data, size_t n, uint64_t now) {
        if (c->rcvd + n > c->sent) {
                worker_fail(s->w, "connection %u: %zu more bytes came back than were sent", (unsigned)(c - s->conns),
                            (size_t)(c->rcvd + n - c->sent));
                return -EPROTO;
        }
        size_t off = 0;
        while (off < n) {
                size_t chunk = n - off < PATTERN_SIZE ? n - off : PATTERN_SIZE;
                const uint8_t *want = pattern_bin + (c->seed + c->rcvd + off) % PATTERN_SIZE;
                if (memcmp(data + off, want, chunk) != 0) {
                        size_t i = 0;
                        while (data[off + i] == want[i])
                                i++;
                        worker_fail(s->w, "connection %u: byte %llu of the stream differs (got 0x%02x, sent 0x%02x)",
                                    (unsigned)(c - s->conns), (unsigned long long)(c->rcvd + off + i), data[off + i], want[i]);
                        return -EPROTO;
                }
                off += chunk;
        }
        c->rcvd += n;
        atomic_fetch_add_explicit(&s->w->st.bytes, n, memory_order_relaxed);
        while ((c->done + 1) * s->opt->size <= c->rcvd)
                message_done(s, c, now);
        return 0;
}

/* One reply line: {"status":"success","command":"echo","data":"<payload>",...}. */
static int enhanced_reply(Stream *s, StreamConn *c, const char *line, size_t len, uint64_t now) {
        unsigned idx = (unsigned)(c - s->conns), S = s->opt->size;
        if (c->done >= c->started) {
                worker_fail(s->w, "connection %u: a reply nobody asked for: %.80s", idx, line);
                return -EPROTO;
        }
        const char *st = memmem(line, len, "\"status\"", 8);
        const char *d = memmem(line, len, "\"data\"", 6);
        if (!st || !memmem(st, (size_t)(line + len - st), "\"success\"", 9) || !d) {
                worker_fail(s->w, "connection %u: not a successful echo reply: %.120s", idx, line);
                return -EPROTO;
        }
        d += 6;
        while (d < line + len && (*d == ':' || *d == ' '))
                d++;
        if (d >= line + len || *d != '"' || (size_t)(line + len - d) < S + 2 || d[S + 1] != '"' ||
            memcmp(d + 1, enh_payload(s, c, c->done), S) != 0) {
                worker_fail(s->w, "connection %u: reply %llu does not carry the data sent", idx, (unsigned long long)c->done);
                return -EPROTO;
        }
        atomic_fetch_add_explicit(&s->w->st.bytes, S, memory_order_relaxed);
        message_done(s, c, now);
        return 0;
}

static int enhanced_received(Stream *s, StreamConn *c, const uint8_t *data, size_t n, uint64_t now) {
        size_t i = 0;
        while (i < n) {
                const uint8_t *nl = memchr(data + i, '\n', n - i);
                size_t end = nl ? (size_t)(nl - data) : n;
                if (end - i > c->line_cap - c->line_len) {
                        worker_fail(s->w, "connection %u: a reply longer than %zu bytes", (unsigned)(c - s->conns), c->line_cap);
                        return -EPROTO;
                }
                memcpy(c->line + c->line_len, data + i, end - i);
                c->line_len += end - i;
                i = end;
                if (nl) {
                        int r = enhanced_reply(s, c, c->line, c->line_len, now);
                        if (r < 0)
                                return r;
                        c->line_len = 0;
                        i++;
                }
        }
        return 0;
}

static int stream_read(Stream *s, StreamConn *c) {
        for (unsigned i = 0; i < READS_PER_WAKEUP; i++) {
                ssize_t n = recv(c->fd, s->rx, RX_SIZE, 0);
                if (n < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == EINTR)
                                continue;
                        worker_fail(s->w, "connection %u: %s", (unsigned)(c - s->conns), strerror(errno));
                        return -errno;
                }
                if (n == 0) {
                        worker_fail(s->w, "connection %u: closed by the server after %llu of %llu messages", (unsigned)(c - s->conns),
                                    (unsigned long long)c->done, (unsigned long long)c->started);
                        return -ECONNRESET;
                }
                uint64_t now = now_ns();
                int r = s->enhanced ? enhanced_received(s, c, s->rx, (size_t)n, now) : echo_received(s, c, s->rx, (size_t)n, now);
                if (r < 0)
                        return r;
                if ((size_t)n < RX_SIZE)
                        return 0;
        }
        return 0;
}

static bool all_done(Stream *s) {
        for (unsigned i = 0; i < s->w->n; i++)
                if (s->conns[i].done < s->conns[i].started)
                        return false;
        return true;
}

/* Connection i's buffers and socket, registered with epoll. 0 or -errno (the reason is recorded). */
static int stream_conn_open(Stream *s, unsigned i, size_t msg_max) {
        Worker *w = s->w;
        const Options *opt = s->opt;
        StreamConn *c = &s->conns[i];

        c->seed = (w->first + i) * 7919u % PATTERN_SIZE;
        c->t_start = calloc(opt->pipeline, sizeof(uint64_t));
        if (s->enhanced) {
                c->out = malloc(msg_max * opt->pipeline);
                c->line_cap = opt->size + 4096;
                c->line = malloc(c->line_cap);
        }
        if (!c->t_start || (s->enhanced && (!c->out || !c->line))) {
                worker_fail(w, "out of memory");
                return -ENOMEM;
        }
        c->fd = bench_connect(opt, w->first + i, true);
        if (c->fd < 0) {
                worker_fail(w, "connection %u: connect: %s", w->first + i, strerror(-c->fd));
                return c->fd;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                int r = -errno;
                worker_fail(w, "epoll: %s", strerror(-r));
                return r;
        }
        return 0;
}

/* This worker's share of the connections, all open before the clock starts. */
static int stream_open(Stream *s) {
        Worker *w = s->w;
        size_t msg_max = strlen(ENH_PREFIX) + s->opt->size + strlen(ENH_SUFFIX);

        s->conns = calloc(w->n, sizeof(StreamConn));
        s->rx = malloc(RX_SIZE);
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!s->conns || !s->rx || s->epfd < 0) {
                worker_fail(w, "out of memory or file descriptors");
                return -ENOMEM;
        }
        for (unsigned i = 0; i < w->n; i++)
                s->conns[i].fd = -1;
        for (unsigned i = 0; i < w->n; i++) {
                int r = stream_conn_open(s, i, msg_max);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The first P messages on every connection. */
static int stream_start(Stream *s) {
        for (unsigned i = 0; i < s->w->n; i++) {
                int r = stream_send(s, &s->conns[i]);
                if (r < 0) {
                        worker_fail(s->w, "connection %u: send: %s", s->w->first + i, strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* Read replies and send more until the deadline or the quota, then wait for what is in flight. */
static void stream_loop(Stream *s) {
        Worker *w = s->w;
        uint64_t drain_deadline = 0;
        struct epoll_event evs[128];

        for (;;) {
                bool stopping = s->opt->count ? s->started_total >= w->quota : atomic_load(&bench_stop);
                if (stopping) {
                        if (all_done(s))
                                return;
                        if (!drain_deadline)
                                drain_deadline = now_ns() + DRAIN_TIMEOUT_NS;
                        else if (now_ns() > drain_deadline) {
                                worker_fail(w, "replies still missing 10 s after the end");
                                return;
                        }
                }
                int n = epoll_wait(s->epfd, evs, 128, 50);
                if (n < 0 && errno != EINTR) {
                        worker_fail(w, "epoll_wait: %s", strerror(errno));
                        return;
                }
                for (int i = 0; i < n; i++) {
                        StreamConn *c = evs[i].data.ptr;
                        if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && stream_read(s, c) < 0)
                                return;
                        int r = stream_send(s, c);
                        if (r < 0) {
                                worker_fail(w, "connection %u: send: %s", (unsigned)(c - s->conns) + w->first, strerror(-r));
                                return;
                        }
                }
        }
}

static void stream_close(Stream *s) {
        for (unsigned i = 0; s->conns && i < s->w->n; i++) {
                if (s->conns[i].fd >= 0)
                        close(s->conns[i].fd);
                free(s->conns[i].t_start);
                free(s->conns[i].out);
                free(s->conns[i].line);
        }
        free(s->conns);
        free(s->rx);
        if (s->epfd >= 0)
                close(s->epfd);
}

void *run_stream(void *arg) {
        Worker *w = arg;
        Stream s = { .w = w, .opt = w->opt, .enhanced = w->opt->mode == MODE_ENHANCED, .epfd = -1 };

        int r = stream_open(&s);
        pthread_barrier_wait(&bench_ready);
        if (r == 0)
                r = stream_start(&s);
        if (r == 0)
                stream_loop(&s);
        stream_close(&s);
        return NULL;
}
