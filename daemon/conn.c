/* SPDX-License-Identifier: MIT */
/* One connection: its reads and writes, backpressure, and the calls a server type makes.
 * (conn-close.c: the close paths; conn-connect.c: the active open; conn-state.c: the state and
 * its records.)
 *
 * Who closes first decides the path (RFC 793 figure 6):
 *   peer first:   ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED
 *   daemon first: ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> CLOSED
 * Every step is checked against the kernel: TCP_INFO while the fd is open, sock_diag for the
 * 4-tuple after it is closed (TIME_WAIT outlives the fd by 60 s). A step the kernel passed too
 * fast to see is logged as inferred; a step the kernel contradicts is never logged. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "conn-internal.h"
#include "conn-kernel.h"
#include "kernel-tcp.h"
#include "macro.h"
#include "server-type.h"
#include "server.h"

static size_t outbuf_len(const ByteQueue *q) {
        return byte_queue_len(q);
}

/* ---- epoll interest ---- */

static size_t conn_read_room(Conn *c) {
        return c->server->vt->read_room ? c->server->vt->read_room(c) : SIZE_MAX;
}

static bool conn_wants_read(Conn *c) {
        return c->fd >= 0 && !c->peer_eof && !c->connecting && (c->shut_wr || outbuf_len(&c->out) < c->server->cfg.buffer_size) &&
               conn_read_room(c) > 0;
}

void conn_update_events(Conn *c) {
        /* A connect() under way is waited for with EPOLLOUT: the socket becomes writable when it completes. */
        /* Output buffered in this batch is written at its end (conn_flush): no EPOLLOUT for it, unless
         * the socket was already full before. */
        bool unsent = outbuf_len(&c->out) && (!list_linked(&c->flush_node) || (c->events & EPOLLOUT));
        uint32_t want = (conn_wants_read(c) ? EPOLLIN : 0) | (unsent || c->connecting ? EPOLLOUT : 0);
        if (c->fd < 0 || want == c->events)
                return;
        struct epoll_event ev = { .events = want, .data.ptr = c };
        if (epoll_ctl(c->server->core->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
                c->events = want;
}

/* A socket error (RST from the peer, timeout): the kernel already closed it. */
static void conn_on_error(Conn *c, int err) {
        char reason[128];
        snprintf(reason, sizeof(reason), "%s", err == ECONNRESET ? "connection reset by peer" : strerror(err));
        c->close_reason = err == ECONNRESET  ? "connection reset by peer"
                          : err == EPIPE     ? "broken pipe"
                          : err == ETIMEDOUT ? "timed out"
                                             : "socket error";
        int k = tcp_kernel_state(c->fd);
        if (k > 0)
                conn_set_state_full(c, tcp_state_from_kernel(k), STATE_SOURCE_KERNEL, k, "tcp_info", reason, true);
        conn_close_fd(c, false);
        if (c->state != TCP_STATE_CLOSED)
                conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_INFERRED, -1, NULL, reason, true);
        conn_finish(c, NULL);
}

static void conn_on_peer_eof(Conn *c) {
        c->peer_eof = true;
        if (c->shut_wr) {
                conn_after_both_fins(c);
                return;
        }
        if (!c->close_reason)
                c->close_reason = "peer closed";
        conn_observe(c, NULL);
        if (c->server->vt->hold_close_wait && !c->closing) {
                /* The peer is done sending; we may not be. CLOSE_WAIT until we close. */
                conn_update_events(c);
                if (c->server->vt->on_peer_eof)
                        c->server->vt->on_peer_eof(c);
                return;
        }
        if (outbuf_len(&c->out)) {
                c->close_after_flush = true;
                conn_update_events(c);
                if (!c->closing) {
                        c->closing = true;
                        conn_enter_closing(c, CONN_CLOSE_TIMEOUT_USEC);
                }
                return;
        }
        conn_finish_passive(c);
}

void conn_touch(Conn *c) {
        Core *m = c->server->core;
        c->last_activity = core_now(m, CLOCK_MONOTONIC);
        if (!c->closing)
                list_move_tail(&c->server->conns, &c->node);
}

void conn_mark_active(Conn *c) {
        conn_touch(c);
}

/* Our FIN's ACK may arrive after we looked: catch FIN_WAIT_2 from the kernel when there is news. */
void conn_refresh(Conn *c) {
        conn_kernel_drain(c->server->core);
        /* Not from ESTABLISHED: a peer's FIN is followed where its data is read, so that the data
         * comes before the close (the query still shows the kernel's CLOSE_WAIT as kernel_state). */
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, NULL);
}

static void conn_on_readable(Conn *c) {
        Server *s = c->server;
        Core *m = s->core;

        if (c->shut_wr && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, NULL);

        for (int i = 0; i < READS_PER_WAKEUP; i++) {
                size_t want = MIN(sizeof(m->read_buf), conn_read_room(c)), pending = outbuf_len(&c->out);
                if (want == 0)
                        break; /* the type has no room: conn_update_events() drops EPOLLIN */
                if (!c->shut_wr && pending) {
                        if (pending >= s->cfg.buffer_size)
                                break; /* backpressure: conn_update_events() drops EPOLLIN */
                        want = MIN(want, s->cfg.buffer_size - pending);
                }
                ssize_t n = recv(c->fd, m->read_buf, want, 0);
                if (n > 0) {
                        c->bytes_in += (size_t)n;
                        s->bytes_in += (size_t)n;
                        conn_touch(c);
                        /* After our FIN the data is dropped, unless a session only half-closed: it still reads. */
                        if ((!c->shut_wr && !c->closing) || (c->session && c->half_closed))
                                s->vt->on_data(c, m->read_buf, (size_t)n);
                        if (c->fd < 0 || c->dead)
                                return;
                        if ((size_t)n < want)
                                break; /* drained: level-triggered epoll tells us when more arrives */
                        continue;
                }
                if (n == 0) {
                        conn_on_peer_eof(c);
                        return;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        break;
                conn_on_error(c, errno);
                return;
        }
        conn_update_events(c);
}

static void conn_on_writable(Conn *c) {
        Server *s = c->server;
        ByteQueue *q = &c->out;

        while (!byte_queue_empty(q)) {
                ssize_t n = send(c->fd, byte_queue_peek(q), byte_queue_len(q), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                conn_update_events(c); /* EPOLLOUT, if a batch's flush found the socket full */
                                return;
                        }
                        conn_on_error(c, errno);
                        return;
                }
                byte_queue_consume(q, (size_t)n);
                c->bytes_out += (size_t)n;
                s->bytes_out += (size_t)n;
        }
        byte_queue_trim(q); /* an idle connection keeps no output storage */
        if (c->close_after_flush) {
                c->close_after_flush = false;
                if (c->peer_eof)
                        conn_finish_passive(c);
                else
                        conn_shutdown_active(c);
                return;
        }
        conn_update_events(c);
        if (s->vt->on_drained)
                s->vt->on_drained(c);
}

void conn_handle_events(Conn *c, uint32_t events) {
        if (c->dead || c->fd < 0)
                return;
        if (c->connecting) {
                if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                        conn_on_connect_done(c);
                return;
        }
        if (events & EPOLLERR) {
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) {
                        conn_on_error(c, err);
                        return;
                }
        }
        if (events & EPOLLOUT)
                conn_on_writable(c);
        if (c->fd < 0 || c->dead)
                return;
        if (events & (EPOLLIN | EPOLLHUP)) {
                if (!c->peer_eof)
                        conn_on_readable(c);
                else if (events & EPOLLHUP)
                        conn_on_error(c, EPIPE); /* both directions are shut and we still hold output */
        }
}

int conn_send_bounded(Conn *c, const void *data, size_t len, size_t limit) {
        if (outbuf_len(&c->out) + len > limit)
                return -ENOBUFS;
        return conn_send(c, data, len);
}

int conn_send(Conn *c, const void *data, size_t len) {
        Server *s = c->server;
        Core *m = s->core;
        const uint8_t *p = data;
        bool batch = m->batching && s->vt->batch_output;

        if (c->fd < 0 || c->dead || c->shut_wr)
                return -EPIPE;
        if (!outbuf_len(&c->out) && !batch) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                                int err = errno;
                                conn_on_error(c, err);
                                return -err;
                        }
                        n = 0;
                }
                c->bytes_out += (size_t)n;
                s->bytes_out += (size_t)n;
                p += n;
                len -= (size_t)n;
                if (len == 0)
                        return 0;
        }
        /* Partial write: only now does this connection get output storage. Unbounded here: past
         * buffer_size, reading pauses (conn_update_events), so the peer's own sending is the bound. */
        if (byte_queue_push(&c->out, p, len, SIZE_MAX) < 0) {
                conn_abort(c, "out of memory for output");
                return -ENOMEM;
        }
        if (batch) {
                if (!list_linked(&c->flush_node))
                        list_append(&m->flush, &c->flush_node);
                return 0;
        }
        conn_update_events(c);
        return 0;
}

void conn_flush(Conn *c) {
        list_remove(&c->flush_node);
        if (c->fd >= 0 && !c->dead && outbuf_len(&c->out))
                conn_on_writable(c);
}

int conn_alloc(Server *s, int fd, const SockaddrUnion *peer, uint32_t events, Conn **ret) {
        sd_id128_t id;
        Conn *c = calloc(1, sizeof(Conn));
        if (!c)
                return -ENOMEM;
        list_init(&c->node);
        list_init(&c->flush_node);
        list_init(&c->gc.node);
        c->gc.free = conn_free_deferred;
        c->fd = fd;
        c->server = s;
        c->peer = *peer;
        if (sd_id128_randomize(&id) < 0)
                memset(&id, 0, sizeof(id));
        id_format(id.bytes, c->id);
        c->events = events;
        struct epoll_event ev = { .events = events, .data.ptr = c };
        if (epoll_ctl(s->core->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void conn_count(Conn *c) {
        Server *s = c->server;
        s->refs++;
        c->counted = true;
        s->n_conns++;
        s->core->n_conns++;
        s->accepted++;
        c->last_activity = core_now(s->core, CLOCK_MONOTONIC);
        list_append(&s->conns, &c->node);
}

int conn_new(Server *s, int fd, const SockaddrUnion *peer, Conn **ret) {
        Core *m = s->core;
        SockaddrUnion local;
        socklen_t len = sizeof(local);
        Conn *c;

        if (getsockname(fd, &local.sa, &len) < 0)
                return negative_errno();
        int r = conn_alloc(s, fd, peer, EPOLLIN, &c);
        if (r < 0)
                return r;
        c->local = local;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
        c->ip_counted = server_ip_counting(s);
        conn_count(c);

        if (core_wants_events(m))
                log_connect(c);
        if (!conn_kernel_track(c, true)) {
                if (c->n_timeline == 0) /* (the eBPF source may have recorded the first steps before it fell back) */
                        conn_enter_syn_received(c);
                conn_observe(c, NULL); /* each step is named by its own event */
        }
        server_arm_idle_timer(s);
        if (s->vt->on_connect)
                s->vt->on_connect(c);
        *ret = c;
        return 0;
}

void conn_resume_reading(Conn *c) {
        if (c->fd >= 0 && !c->dead)
                conn_update_events(c);
}

bool conn_has_fd(const Conn *c) {
        return c->fd >= 0 && !c->dead;
}

bool conn_can_send(const Conn *c) {
        return c->fd >= 0 && !c->dead && !c->shut_wr;
}

bool conn_is_open(const Conn *c) {
        return c->fd >= 0 && !c->dead && !c->closing;
}

size_t conn_unsent(const Conn *c) {
        return byte_queue_len(&c->out);
}

int conn_set_sndbuf(Conn *c, int bytes) {
        if (c->fd < 0)
                return -EBADF;
        return setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) < 0 ? negative_errno() : 0;
}

bool conn_has_unread(Conn *c) {
        uint8_t byte;
        return c->fd >= 0 && recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}
