/* SPDX-License-Identifier: MIT */
/* chat mode: M members join a chat server with the JSON protocol; the first B broadcast S-byte
 * messages "<b>:<seq>:<letters>", each with at most P not yet delivered to every member. Every
 * member checks that it gets every broadcaster's messages in order with the letters intact; a
 * message's latency runs from its send to its arrival at the last member. Optional stalled
 * members join and never read: the server must drop them without slowing the others. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

#define LINE_MAX_BYTES (4u << 20) /* a users list of many members is long */
#define JOIN_BATCH 100
#define PHASE_TIMEOUT_NS (30ull * 1000000000ull)
#define READS_PER_WAKEUP 8
#define RX_SIZE (64 * 1024)

typedef struct Member {
        int fd;
        unsigned idx;
        bool welcomed, synced;
        char *line;
        size_t line_len, line_cap;
        uint64_t *next; /* per broadcaster: the next sequence number expected */
} Member;

typedef struct Slot {
        uint64_t t_sent;
        unsigned count; /* members that got it */
} Slot;

typedef struct Broadcaster {
        uint64_t sent, complete; /* messages sent; delivered to every member (in order) */
        Slot *slots; /* ring of P */
} Broadcaster;

typedef struct Chat {
        Worker *w;
        const Options *opt;
        int epfd;
        unsigned run_id;
        Member *members;
        Broadcaster *bc;
        int *stalled;
        bool running;
        unsigned welcomed, synced, batch_end;
        char sync[32]; /* this run's settle marker: history from earlier runs may hold others */
        uint8_t *rx;
        char *msg; /* one request line being built */
} Chat;

static int send_line(Chat *ch, Member *m, const char *line, size_t len) {
        /* requests are small and members read all the time: a full socket buffer means the server
         * stopped reading us, which the run reports */
        size_t off = 0;
        while (off < len) {
                ssize_t n = send(m->fd, line + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        usleep(100);
                        continue;
                }
                if (n < 0) {
                        worker_fail(ch->w, "member %u: send: %s", m->idx, strerror(errno));
                        return -errno;
                }
                off += (size_t)n;
        }
        return 0;
}

static const char *content_letters(const Chat *ch, unsigned b, uint64_t seq) {
        return pattern_txt + (b * 7919u + seq * ch->opt->size) % PATTERN_SIZE;
}

/* "<b>:<seq>:" then letters up to size bytes. Returns the content's length. */
static size_t make_content(const Chat *ch, unsigned b, uint64_t seq, char *buf) {
        int h = snprintf(buf, 48, "%u:%llu:", b, (unsigned long long)seq);
        size_t n = ch->opt->size > (size_t)h ? ch->opt->size - (size_t)h : 0;
        memcpy(buf + h, content_letters(ch, b, seq), n);
        return (size_t)h + n;
}

static int broadcast(Chat *ch, unsigned b) {
        Broadcaster *bc = &ch->bc[b];
        while (bc->sent - bc->complete < ch->opt->pipeline) {
                if (ch->opt->count ? bc->sent >= ch->opt->count : atomic_load_explicit(&bench_stop, memory_order_relaxed))
                        return 0;
                size_t off = (size_t)sprintf(ch->msg, "{\"type\":\"message\",\"content\":\"");
                off += make_content(ch, b, bc->sent, ch->msg + off);
                off += (size_t)sprintf(ch->msg + off, "\"}\n");
                Slot *s = &bc->slots[bc->sent % ch->opt->pipeline];
                s->t_sent = now_ns();
                s->count = 0;
                bc->sent++;
                int r = send_line(ch, &ch->members[b], ch->msg, off);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Find "KEY":"VALUE" in a line; the value (without quotes) and its length, or NULL. */
static const char *field(const char *line, size_t len, const char *key, size_t *ret_len) {
        char pat[32];
        int k = snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *p = memmem(line, len, pat, (size_t)k);
        if (!p)
                return NULL;
        p += k;
        while (p < line + len && *p == ' ')
                p++;
        if (p >= line + len || *p != '"')
                return NULL;
        const char *e = memchr(p + 1, '"', (size_t)(line + len - p - 1));
        if (!e)
                return NULL;
        *ret_len = (size_t)(e - p - 1);
        return p + 1;
}

static int on_message(Chat *ch, Member *m, const char *content, size_t len, uint64_t now) {
        if (!m->synced) {
                /* history from earlier runs, then this run's marker */
                if (len == strlen(ch->sync) && memcmp(content, ch->sync, len) == 0) {
                        m->synced = true;
                        ch->synced++;
                }
                return 0;
        }
        unsigned b;
        unsigned long long seq;
        int h = 0;
        char head[48];
        snprintf(head, sizeof(head), "%.*s", (int)(len < 47 ? len : 47), content);
        if (sscanf(head, "%u:%llu:%n", &b, &seq, &h) != 2 || h == 0 || b >= ch->opt->broadcasters) {
                worker_fail(ch->w, "member %u: a message nobody here sent: %.60s", m->idx, content);
                return -EPROTO;
        }
        if (seq != m->next[b]) {
                worker_fail(ch->w, "member %u: broadcaster %u's message %llu arrived when %llu was due", m->idx, b, seq,
                            (unsigned long long)m->next[b]);
                return -EPROTO;
        }
        char want[PATTERN_SIZE + 64];
        size_t want_len = make_content(ch, b, seq, want);
        if (want_len != len || memcmp(want, content, len) != 0) {
                worker_fail(ch->w, "member %u: broadcaster %u's message %llu came back altered", m->idx, b, seq);
                return -EPROTO;
        }
        m->next[b]++;
        Broadcaster *bc = &ch->bc[b];
        Slot *s = &bc->slots[seq % ch->opt->pipeline];
        if (++s->count == ch->opt->members) {
                hist_add(&ch->w->st.lat, now - s->t_sent);
                bc->complete++;
        }
        atomic_fetch_add_explicit(&ch->w->st.bytes, len, memory_order_relaxed);
        if (ch->opt->count || !atomic_load_explicit(&bench_stop, memory_order_relaxed))
                atomic_fetch_add_explicit(&ch->w->st.ops, 1, memory_order_relaxed);
        return 0;
}

static int on_line(Chat *ch, Member *m, const char *line, size_t len, uint64_t now) {
        size_t tl;
        const char *type = field(line, len, "type", &tl);
        if (!type) {
                worker_fail(ch->w, "member %u: not a chat message: %.80s", m->idx, line);
                return -EPROTO;
        }
        if (tl == 7 && memcmp(type, "message", 7) == 0) {
                size_t cl;
                const char *content = field(line, len, "content", &cl);
                if (!content) {
                        worker_fail(ch->w, "member %u: a message without content: %.80s", m->idx, line);
                        return -EPROTO;
                }
                return on_message(ch, m, content, cl, now);
        }
        if (tl == 7 && memcmp(type, "welcome", 7) == 0 && !m->welcomed) {
                m->welcomed = true;
                ch->welcomed++;
        } else if ((tl == 5 && memcmp(type, "error", 5) == 0) || (tl == 7 && memcmp(type, "goodbye", 7) == 0)) {
                worker_fail(ch->w, "member %u: the server said: %.160s", m->idx, line);
                return -EPROTO;
        }
        return 0; /* join, leave, users, rename */
}

static int member_read(Chat *ch, Member *m) {
        for (unsigned k = 0; k < READS_PER_WAKEUP; k++) {
                ssize_t n = recv(m->fd, ch->rx, RX_SIZE, 0);
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        worker_fail(ch->w, "member %u: %s", m->idx, n == 0 ? "disconnected by the server" : strerror(errno));
                        return -ECONNRESET;
                }
                uint64_t now = now_ns();
                size_t i = 0;
                while (i < (size_t)n) {
                        const uint8_t *nl = memchr(ch->rx + i, '\n', (size_t)n - i);
                        size_t end = nl ? (size_t)(nl - ch->rx) : (size_t)n;
                        if (m->line_len + end - i > m->line_cap) {
                                size_t cap = m->line_cap ? m->line_cap : 4096;
                                while (cap < m->line_len + end - i)
                                        cap *= 2;
                                char *l = cap <= LINE_MAX_BYTES ? realloc(m->line, cap) : NULL;
                                if (!l) {
                                        worker_fail(ch->w, "member %u: a line over %u bytes", m->idx, LINE_MAX_BYTES);
                                        return -EPROTO;
                                }
                                m->line = l;
                                m->line_cap = cap;
                        }
                        memcpy(m->line + m->line_len, ch->rx + i, end - i);
                        m->line_len += end - i;
                        i = end;
                        if (nl) {
                                int r = on_line(ch, m, m->line, m->line_len, now);
                                if (r < 0)
                                        return r;
                                m->line_len = 0;
                                i++;
                        }
                }
                if (n < RX_SIZE)
                        return 0;
        }
        return 0;
}

/* Read until done() holds, or fail after the phase timeout. */
static int pump(Chat *ch, bool (*done)(Chat *), const char *what) {
        struct epoll_event evs[256];
        uint64_t deadline = now_ns() + PHASE_TIMEOUT_NS;
        while (!done(ch)) {
                if (now_ns() > deadline) {
                        worker_fail(ch->w, "%s: not done after 30 s", what);
                        return -ETIMEDOUT;
                }
                int n = epoll_wait(ch->epfd, evs, 256, 50);
                for (int i = 0; i < n; i++) {
                        Member *m = evs[i].data.ptr;
                        if (member_read(ch, m) < 0)
                                return -EPROTO;
                }
                if (ch->running)
                        for (unsigned b = 0; b < ch->opt->broadcasters; b++)
                                if (broadcast(ch, b) < 0)
                                        return -EIO;
        }
        return 0;
}

static bool batch_welcomed(Chat *ch) {
        return ch->welcomed >= ch->batch_end;
}
static bool all_synced(Chat *ch) {
        return ch->synced == ch->opt->members;
}
static bool all_complete(Chat *ch) {
        bool stopping = true;
        for (unsigned b = 0; b < ch->opt->broadcasters; b++) {
                Broadcaster *bc = &ch->bc[b];
                if (bc->complete < bc->sent)
                        return false;
                if (ch->opt->count ? bc->sent < ch->opt->count : !atomic_load(&bench_stop))
                        stopping = false;
        }
        return stopping;
}

static int join(Chat *ch, int fd, unsigned idx, const char *role) {
        char line[96];
        int n = snprintf(line, sizeof(line), "{\"type\":\"join\",\"username\":\"%s%u-%u\"}\n", role, ch->run_id, idx);
        return send(fd, line, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -EIO;
}

/* Buffers for M members and B broadcasters; every fd -1 so that chat_free() can run whatever failed. */
static int chat_alloc(Chat *ch) {
        const Options *opt = ch->opt;
        unsigned M = opt->members, B = opt->broadcasters;
        int r = 0;

        ch->epfd = epoll_create1(EPOLL_CLOEXEC);
        ch->members = calloc(M, sizeof(Member));
        ch->bc = calloc(B, sizeof(Broadcaster));
        ch->stalled = calloc(opt->stalled + 1, sizeof(int));
        ch->rx = malloc(RX_SIZE);
        ch->msg = malloc(opt->size + 128);
        if (ch->epfd < 0 || !ch->members || !ch->bc || !ch->stalled || !ch->rx || !ch->msg) {
                worker_fail(ch->w, "out of memory or file descriptors");
                r = -ENOMEM;
        }
        for (unsigned b = 0; r == 0 && b < B; b++)
                if (!(ch->bc[b].slots = calloc(opt->pipeline, sizeof(Slot))))
                        r = -ENOMEM;
        for (unsigned i = 0; ch->members && i < M; i++)
                ch->members[i].fd = -1;
        for (unsigned i = 0; ch->stalled && i < opt->stalled; i++)
                ch->stalled[i] = -1;
        return r;
}

static int member_join(Chat *ch, unsigned k) {
        Member *m = &ch->members[k];
        m->idx = k;
        m->next = calloc(ch->opt->broadcasters, sizeof(uint64_t));
        m->fd = bench_connect(ch->opt, k, true);
        if (!m->next || m->fd < 0) {
                worker_fail(ch->w, "member %u: connect: %s", k, strerror(m->fd < 0 ? -m->fd : ENOMEM));
                return -EIO;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = m };
        if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, m->fd, &ev) < 0 || join(ch, m->fd, k, "m") < 0) {
                worker_fail(ch->w, "member %u: join: %s", k, strerror(errno));
                return -EIO;
        }
        return 0;
}

/* Join in batches: each join sends the whole user list to everyone present. */
static int chat_join_members(Chat *ch) {
        unsigned M = ch->opt->members;
        int r = 0;
        for (unsigned i = 0; r == 0 && i < M; i += JOIN_BATCH) {
                ch->batch_end = i + JOIN_BATCH < M ? i + JOIN_BATCH : M;
                for (unsigned k = i; r == 0 && k < ch->batch_end; k++)
                        r = member_join(ch, k);
                if (r == 0)
                        r = pump(ch, batch_welcomed, "joining");
        }
        return r;
}

static int chat_join_stalled(Chat *ch) {
        const Options *opt = ch->opt;
        int r = 0;
        for (unsigned i = 0; r == 0 && i < opt->stalled; i++) {
                ch->stalled[i] = bench_connect(opt, opt->members + i, true);
                if (ch->stalled[i] < 0 || join(ch, ch->stalled[i], i, "stalled") < 0) {
                        worker_fail(ch->w, "stalled member %u: connect or join failed", i);
                        r = -EIO;
                }
        }
        return r;
}

/* The room's queue is ordered: once everyone saw "sync", every earlier delivery is in. */
static int chat_settle(Chat *ch) {
        snprintf(ch->sync, sizeof(ch->sync), "sync-%u", ch->run_id);
        int n = snprintf(ch->msg, ch->opt->size + 128, "{\"type\":\"message\",\"content\":\"%s\"}\n", ch->sync);
        int r = send_line(ch, &ch->members[0], ch->msg, (size_t)n);
        if (r == 0)
                r = pump(ch, all_synced, "waiting for every member to settle");
        return r;
}

static int chat_broadcast(Chat *ch) {
        int r = 0;
        ch->running = true;
        for (unsigned b = 0; r == 0 && b < ch->opt->broadcasters; b++)
                r = broadcast(ch, b);
        if (r == 0)
                r = pump(ch, all_complete, "broadcasting");
        return r;
}

/* Every member got every broadcaster's every message. */
static int chat_verify(Chat *ch) {
        Worker *w = ch->w;
        for (unsigned b = 0; b < ch->opt->broadcasters; b++) {
                w->st.sent_msgs += ch->bc[b].sent;
                for (unsigned i = 0; i < ch->opt->members; i++)
                        if (ch->members[i].next[b] != ch->bc[b].sent) {
                                worker_fail(w, "member %u got %llu of broadcaster %u's %llu messages", i,
                                            (unsigned long long)ch->members[i].next[b], b, (unsigned long long)ch->bc[b].sent);
                                return -EPROTO;
                        }
        }
        return 0;
}

/* A stalled member that the server dropped reads as end of stream (or reset) under its backlog. */
static void chat_count_dropped(Chat *ch) {
        for (unsigned i = 0; ch->stalled && i < ch->opt->stalled; i++) {
                if (ch->stalled[i] < 0)
                        continue;
                for (;;) {
                        ssize_t n = recv(ch->stalled[i], ch->rx, RX_SIZE, MSG_DONTWAIT);
                        if (n > 0)
                                continue;
                        if (n == 0 || errno != EAGAIN)
                                ch->w->st.dropped++;
                        break;
                }
                close(ch->stalled[i]);
        }
}

static void chat_free(Chat *ch) {
        for (unsigned i = 0; ch->members && i < ch->opt->members; i++) {
                if (ch->members[i].fd >= 0)
                        close(ch->members[i].fd);
                free(ch->members[i].line);
                free(ch->members[i].next);
        }
        for (unsigned b = 0; ch->bc && b < ch->opt->broadcasters; b++)
                free(ch->bc[b].slots);
        free(ch->members);
        free(ch->bc);
        free(ch->stalled);
        free(ch->rx);
        free(ch->msg);
        if (ch->epfd >= 0)
                close(ch->epfd);
}

void *run_chat(void *arg) {
        Worker *w = arg;
        Chat ch = { .w = w, .opt = w->opt, .run_id = (unsigned)getpid() % 100000 };

        int r = chat_alloc(&ch);
        if (r == 0)
                r = chat_join_members(&ch);
        if (r == 0)
                r = chat_join_stalled(&ch);
        if (r == 0)
                r = chat_settle(&ch);

        pthread_barrier_wait(&bench_ready);
        if (r == 0)
                r = chat_broadcast(&ch);
        if (r == 0)
                r = chat_verify(&ch);
        chat_count_dropped(&ch);
        chat_free(&ch);
        return NULL;
}
