/* SPDX-License-Identifier: MIT */
/* The close paths of a connection and the watch of what the kernel keeps once the fd is closed:
 *   peer first:   ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED
 *   daemon first: ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> CLOSED
 * Every step is checked against the kernel: TCP_INFO while the fd is open, sock_diag for the
 * 4-tuple after it is closed (TIME_WAIT outlives the fd by 60 s). */
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

/* ---- lifecycle ---- */

static void conn_timer_stop(Conn *c) {
        c->timer = sd_event_source_disable_unref(c->timer);
        c->probe = sd_event_source_disable_unref(c->probe);
}

int conn_timer_start(Conn *c, uint64_t usec, sd_event_time_handler_t cb) {
        Core *m = c->server->core;
        if (c->timer) {
                sd_event_source_set_time(c->timer, usec);
                return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time(m->event, &c->timer, CLOCK_MONOTONIC, usec, USEC_PER_MSEC, cb, c);
}

/* The fd goes away; the kernel may keep the 4-tuple (TIME_WAIT, LAST_ACK) for a while. */
void conn_close_fd(Conn *c, bool reset) {
        if (c->fd < 0)
                return;
        if (reset) {
                struct linger l = { .l_onoff = 1, .l_linger = 0 };
                (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        /* close() removes the fd from the epoll set. */
        c->fd = safe_close(c->fd);
        c->events = 0;
}

/* The connection stops counting against limits and its server type hears of it. */
static void conn_detach(Conn *c) {
        Server *s = c->server;
        Core *m = s->core;

        if (!c->counted)
                return;
        c->counted = false;
        conn_timer_stop(c);
        list_remove(&c->node);
        s->n_conns--;
        m->n_conns--;
        if (c->ip_counted)
                server_ip_release(s, &c->peer.sa);
        byte_queue_done(&c->out);
        if (s->vt->on_disconnect)
                s->vt->on_disconnect(c);
        if (core_wants_events(m))
                log_disconnect(c);
        core_conn_gone(m);
}

static int linger_check(sd_event_source *source, uint64_t usec, void *userdata);

/* Watch the kernel's socket for this 4-tuple until it is gone, without a busy loop: TIME_WAIT
 * reports when its timer expires, so the first check is then; other states back off to 1 s. */
static void conn_linger(Conn *c, uint32_t expires_ms) {
        Core *m = c->server->core;
        uint64_t delay;

        if (m->stopping) {
                conn_unwatch(c, "daemon stopped before the kernel released the connection");
                return;
        }
        if (m->n_lingering >= LINGER_MAX) {
                m->lingering_untracked++;
                conn_finish(c, "end not tracked: too many connections lingering in the kernel");
                return;
        }
        list_remove(&c->node);
        list_append(&m->lingering, &c->node);
        c->lingering = true;
        m->n_lingering++;
        delay = expires_ms ? (uint64_t)expires_ms * USEC_PER_MSEC + 20 * USEC_PER_MSEC : LINGER_POLL_MIN_USEC;
        if (conn_timer_start(c, core_now(m, CLOCK_MONOTONIC) + delay, linger_check) < 0)
                conn_finish(c, "end not tracked: no timer");
}

static int linger_check(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        Core *m = c->server->core;
        SockDiagResult d;
        (void)source;

        int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
        if (r == -ENOENT || (r == 0 && c->diag_cookie && d.cookie != c->diag_cookie)) {
                conn_set_state(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", NULL);
                conn_finish(c, NULL);
                return 0;
        }
        if (r < 0) {
                conn_finish(c, "end not tracked: sock_diag failed");
                return 0;
        }
        c->diag_cookie = d.cookie;
        conn_set_state(c, tcp_state_from_kernel(d.state), STATE_SOURCE_KERNEL, d.state, "sock_diag", NULL);
        /* TIME_WAIT's timer says when it ends: look then, and every 50 ms after. Other states'
         * timers are retransmission timers (the ACK may come sooner): poll, backing off to 50 ms. */
        uint64_t delay = d.state == 6 /* TIME_WAIT */ && d.timer_ms && c->watch_checks == 0
                                 ? (uint64_t)d.timer_ms * USEC_PER_MSEC + LINGER_POLL_MIN_USEC
                                 : MIN(LINGER_POLL_MIN_USEC << MIN(c->watch_checks, 7u), LINGER_POLL_MAX_USEC);
        c->watch_checks++;
        if (conn_timer_start(c, usec + delay, linger_check) < 0)
                conn_finish(c, "end not tracked: no timer");
        return 0;
}

/* The end: the kernel no longer has the connection (or we stopped watching). Freed later. */
void conn_finish(Conn *c, const char *note) {
        Core *m = c->server->core;

        if (c->dead)
                return;
        conn_close_fd(c, false);
        conn_detach(c);
        conn_timer_stop(c);
        if (m->log_transitions == LOG_TRANSITIONS_SUMMARY)
                log_summary(c, note);
        if (c->lingering) {
                c->lingering = false;
                m->n_lingering--;
        }
        list_remove(&c->node);
        list_init(&c->node);
        c->dead = true;
        core_defer_free(m, &c->gc);
}

Conn *conn_from_deferred(Deferred *d) {
        return d->free == conn_free_deferred ? container_of(d, Conn, gc) : NULL;
}

void conn_free_deferred(Deferred *d) {
        conn_free(container_of(d, Conn, gc));
}

/* The daemon stops watching a connection the kernel still has: the last record says so, with
 * what the kernel says of the 4-tuple now, so that nothing after it is mistaken for unseen. */
void conn_unwatch(Conn *c, const char *why) {
        Core *m = c->server->core;
        SockDiagResult d;
        int k = c->fd >= 0 ? tcp_kernel_state(c->fd) : -1;
        if (k <= 0 && sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d) == 0)
                k = d.state;
        if (core_wants_events(m))
                log_unwatched(c, k, why);
        conn_finish(c, why);
}

void conn_forget(Conn *c, const char *reason) {
        conn_unwatch(c, reason);
}

void conn_free(Conn *c) {
        if (!c)
                return;
        list_remove(&c->flush_node);
        conn_kernel_untrack(c);
        if (c->server->vt->conn_free)
                c->server->vt->conn_free(c);
        conn_timer_stop(c);
        safe_close(c->fd);
        byte_queue_done(&c->out);
        list_remove(&c->node);
        list_remove(&c->gc.node);
        server_unref(c->server);
        free(c);
}

/* Our FIN went out after the peer's (LAST_ACK) and its last data is read: the fd's own state is
 * the kernel's word (a closed socket is in no table sock_diag can search). */
static void conn_end_passive(Conn *c) {
        int k = tcp_kernel_state(c->fd);
        conn_set_state(c, k > 0 ? tcp_state_from_kernel(k) : TCP_STATE_LAST_ACK, k > 0 ? STATE_SOURCE_KERNEL : STATE_SOURCE_INFERRED, k,
                       "tcp_info", c->close_reason);
        conn_close_fd(c, false);
        conn_detach(c);
        if (c->state == TCP_STATE_CLOSED)
                conn_finish(c, NULL);
        else
                conn_linger(c, 0);
}

/* Both FINs have been exchanged and the peer's is read. */
void conn_after_both_fins(Conn *c) {
        Core *m = c->server->core;
        SockDiagResult d;

        if (c->state == TCP_STATE_CLOSE_WAIT || c->state == TCP_STATE_LAST_ACK) {
                conn_end_passive(c);
                return;
        }
        int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
        if (r == 0) {
                c->diag_cookie = d.cookie;
                conn_set_state(c, tcp_state_from_kernel(d.state), STATE_SOURCE_KERNEL, d.state, "sock_diag", NULL);
                conn_close_fd(c, false);
                conn_detach(c);
                if (c->state == TCP_STATE_CLOSED)
                        conn_finish(c, NULL);
                else
                        conn_linger(c, d.state == 6 /* TIME_WAIT */ ? d.timer_ms : 0);
                return;
        }
        if (r == -ENOENT) {
                /* The kernel has nothing for the 4-tuple: no TIME_WAIT socket (its time-wait table
                 * may be full). What it did in between is not known: only CLOSED is recorded. */
                conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", "the kernel kept no TIME_WAIT socket", true);
                conn_finish(c, NULL);
                return;
        }
        conn_unwatch(c, "sock_diag failed: the rest of the path cannot be observed");
}

/* The peer closed first and our output is flushed: send our FIN. */
void conn_finish_passive(Conn *c) {
        if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                conn_abort(c, "shutdown failed");
                return;
        }
        c->shut_wr = true;
        conn_end_passive(c);
}

static int close_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        (void)source;
        (void)usec;
        if (c->half_closed)
                conn_abort(c, "half-closed peer did not close within idle_timeout: reset");
        else if (c->shut_wr)
                conn_abort(c, "peer did not close within 5 s: reset");
        else
                conn_abort(c, "peer did not read its data within 5 s: reset");
        return 0;
}

/* timeout 0: no deadline */
void conn_enter_closing(Conn *c, uint64_t timeout) {
        Core *m = c->server->core;
        list_remove(&c->node);
        list_append(&m->closing, &c->node);
        if (timeout && conn_timer_start(c, core_now(m, CLOCK_MONOTONIC) + timeout, close_deadline) < 0)
                conn_abort(c, "no timer for the close");
}

/* While our FIN waits for its ACK (FIN_WAIT_1), or the peer's FIN meets ours unacknowledged
 * (CLOSING), look again at 1, 2, 4 ... ms and then every 50 ms, to the millisecond: the step to
 * FIN_WAIT_2 or TIME_WAIT is then the kernel's, seen within 50 ms, never inferred later. The close
 * deadline (5 s) bounds it. */
static int fin_wait_probe(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, NULL);
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1) {
                if (c->probes < 6)
                        c->probes++;
                sd_event_source_set_time(source, usec + MIN(USEC_PER_MSEC << c->probes, FIN_PROBE_MAX_USEC));
                sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        } else
                c->probe = sd_event_source_disable_unref(c->probe);
        return 0;
}

void conn_shutdown_active(Conn *c) {
        if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                conn_abort(c, "shutdown failed");
                return;
        }
        c->shut_wr = true;
        conn_observe(c, c->close_reason);
        /* The ACK of our FIN may come a moment later: fin_wait_probe() looks again until it does. */
        if (c->state == TCP_STATE_FIN_WAIT_1 && !c->probe)
                (void)sd_event_add_time_relative(c->server->core->event, &c->probe, CLOCK_MONOTONIC, USEC_PER_MSEC, USEC_PER_MSEC,
                                                 fin_wait_probe, c);
        conn_update_events(c);
}

static void conn_close_full(Conn *c, const char *reason, uint64_t timeout) {
        if (c->fd < 0 || c->dead || c->closing || c->shut_wr)
                return;
        if (c->connecting) {
                /* No FIN before the handshake: closing a socket in SYN_SENT just drops it. */
                conn_connect_failed(c, 0, reason);
                return;
        }
        c->closing = true;
        c->close_reason = reason;
        if (c->server->vt->on_close_start)
                c->server->vt->on_close_start(c);
        if (c->fd < 0 || c->dead)
                return;
        if (!c->peer_eof && tcp_kernel_state(c->fd) == 8 /* TCP_CLOSE_WAIT */) {
                /* The peer's FIN is in and not read yet: ours is the second FIN, the passive path
                 * (LAST_ACK), whatever our reads have seen so far. Data still ahead of that FIN is
                 * read first (a half-closed session delivers it; a close drops it): closing a
                 * socket with unread data would answer the peer with RST. */
                conn_set_state(c, TCP_STATE_CLOSE_WAIT, STATE_SOURCE_KERNEL, 8, "tcp_info", NULL);
                if (!conn_has_unread(c))
                        c->peer_eof = true;
        }
        if (c->peer_eof) {
                /* Held in CLOSE_WAIT (a session): now send our FIN, after what is still queued. */
                conn_enter_closing(c, timeout);
                if (c->fd < 0)
                        return;
                if (byte_queue_len(&c->out)) {
                        c->close_after_flush = true;
                        conn_update_events(c);
                } else
                        conn_finish_passive(c);
                return;
        }
        conn_enter_closing(c, timeout);
        if (c->fd < 0)
                return;
        if (byte_queue_len(&c->out)) {
                c->close_after_flush = true;
                return;
        }
        conn_shutdown_active(c);
}

void conn_close(Conn *c, const char *reason) {
        conn_close_full(c, reason, CONN_CLOSE_TIMEOUT_USEC);
}

/* The peer may go on sending; a half-closed connection is still bounded by idle_timeout. */
void conn_half_close(Conn *c, const char *reason) {
        unsigned idle = c->server->cfg.idle_timeout;
        c->half_closed = true;
        conn_close_full(c, reason, (uint64_t)(idle ? idle : HALF_CLOSE_DEFAULT_SEC) * USEC_PER_SEC);
}

void conn_abort(Conn *c, const char *reason) {
        Core *m = c->server->core;
        SockDiagResult d;

        if (c->fd < 0 || c->dead)
                return;
        c->close_reason = reason;
        conn_close_fd(c, true);
        int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
        if (r == -ENOENT)
                conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", reason, true);
        else
                conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_INFERRED, -1, NULL, reason, true);
        conn_finish(c, NULL);
}
