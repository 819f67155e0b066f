/* SPDX-License-Identifier: MIT */
/* One connection: its reads and writes, and the close paths that make TCP's states visible.
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
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <systemd/sd-id128.h>

#include "kernel-tcp.h"
#include "macro.h"
#include "tcpedud.h"

#define LINGER_POLL_MIN_USEC (10 * USEC_PER_MSEC)
#define LINGER_POLL_MAX_USEC (1 * USEC_PER_SEC)

static void conn_finish(Conn *c, const char *note);
static void conn_on_connect_done(Conn *c);
static void conn_connect_failed(Conn *c, int err, const char *reason);

static size_t outbuf_len(const OutBuf *o) {
        return o ? o->end - o->start : 0;
}

/* ---- state tracking and the journal ---- */

/* The fields that say which connection an entry is about, the same in every entry. */
static void log_conn_fields(LogEntry *e, const Conn *c) {
        char peer[SOCKADDR_STR_MAX], local[SOCKADDR_STR_MAX];
        if (c->session) {
                log_entry_add(e, "TCPEDU_ROLE", "client");
                log_entry_add(e, "TCPEDU_SESSION_OWNER_UID", "%u", (unsigned)c->session->owner);
        } else {
                log_entry_add(e, "TCPEDU_SERVER", "%s", c->server->cfg.name);
                log_entry_add(e, "TCPEDU_SERVER_TYPE", "%s", c->server->vt->name);
                log_entry_add(e, "TCPEDU_ROLE", "server");
        }
        log_entry_add(e, "TCPEDU_CONN_ID", "%s", c->id);
        log_entry_add(e, "TCPEDU_PEER", "%s", sockaddr_format(&c->peer.sa, peer, sizeof(peer)));
        log_entry_add(e, "TCPEDU_LOCAL", "%s", sockaddr_format(&c->local.sa, local, sizeof(local)));
}

static void log_transition(Conn *c, TcpState from, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason,
                           uint64_t duration) {
        Manager *m = c->server->manager;
        LogEntry e;

        log_entry_init(&e, LOG_INFO, MID_TRANSITION);
        log_entry_add(&e, "MESSAGE", "%s %s: %s -> %s", c->session ? "Session" : "Connection", c->id, tcp_state_to_string(from),
                      tcp_state_to_string(to));
        log_entry_add(&e, "TCPEDU_EVENT", "transition");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_OLD_STATE", "%s", tcp_state_to_string(from));
        log_entry_add(&e, "TCPEDU_NEW_STATE", "%s", tcp_state_to_string(to));
        if (kstate > 0) {
                log_entry_add(&e, "TCPEDU_KERNEL_STATE", "%s", tcp_kernel_state_to_string(kstate));
                log_entry_add(&e, "TCPEDU_KERNEL_SOURCE", "%s", kvia);
        } else if (kvia)
                log_entry_add(&e, "TCPEDU_KERNEL_SOURCE", "%s", kvia); /* sock_diag: the kernel has no such socket */
        log_entry_add(&e, "TCPEDU_STATE_SOURCE", "%s", state_source_to_string(src));
        log_entry_add(&e, "TCPEDU_STATE_DURATION_USEC", "%" PRIu64, duration);
        if (reason)
                log_entry_add(&e, "TCPEDU_REASON", "%s", reason);
        manager_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

static void timeline_add(Conn *c, TcpState s, StateSource src, uint64_t now) {
        /* The longest server path has 7 states; keep the last slot for the final state regardless. */
        unsigned i = c->n_timeline < CONN_TIMELINE_MAX ? c->n_timeline++ : CONN_TIMELINE_MAX - 1;
        c->timeline[i] = (TimelineEntry){ .usec = now, .state = (uint8_t)s, .source = (uint8_t)src };
}

/* Move to 'to' along the shortest legal path; the steps before the last are inferred. A reset
 * takes the direct RST edge; otherwise exceptional edges are used only when nothing else leads there. */
static void conn_set_state_full(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason, bool reset) {
        Manager *m = c->server->manager;
        TcpState path[8];
        int n;

        if (to < 0 || to == c->state)
                return;
        if (c->state == TCP_STATE_CLOSED && !(c->session && c->n_timeline == 1)) {
                /* A connection does not come back from CLOSED (a session starts there, once); reaching here is a bug, not a path. */
                log_msg(m, LOG_ERR, NULL, "BUG: connection %s: transition out of CLOSED to %s ignored", c->id, tcp_state_to_string(to));
                return;
        }
        n = tcp_state_path(c->state, to, reset, path, ELEMENTSOF(path));
        if (n < 0 && !reset)
                n = tcp_state_path(c->state, to, true, path, ELEMENTSOF(path));
        if (n < 0) {
                log_msg(m, LOG_ERR, NULL, "BUG: connection %s: no legal transition %s -> %s", c->id, tcp_state_to_string(c->state),
                        tcp_state_to_string(to));
                return;
        }
        uint64_t now = now_usec(m, CLOCK_REALTIME);
        for (int i = 0; i < n; i++) {
                StateSource step_src = i == n - 1 ? src : STATE_SOURCE_INFERRED;
                /* A step the kernel passed through unseen gets the event that takes TCP along that edge. */
                const TcpTransition *edge = tcp_transition_find(c->state, path[i]);
                const char *step_reason = (i == n - 1 && reason) || !edge ? reason : edge->event;
                uint64_t since = c->n_timeline ? c->timeline[c->n_timeline - 1].usec : now;
                /* Only the last step is what the kernel said; the steps before it are inferred. */
                if (manager_wants_events(m))
                        log_transition(c, c->state, path[i], step_src, i == n - 1 ? kstate : -1, i == n - 1 ? kvia : NULL, step_reason,
                                       now > since ? now - since : 0);
                timeline_add(c, path[i], step_src, now);
                c->state = path[i];
                m->transitions++;
        }
}

static void conn_set_state(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason) {
        conn_set_state_full(c, to, src, kstate, kvia, reason, false);
}

/* Ask TCP_INFO and follow it. Linux's CLOSE is ambiguous on an open fd: a reset, or a connection
 * that now lives on as a time-wait socket. It is never followed here; the EOF and error paths
 * settle it with sock_diag or the socket error. */
static void conn_observe(Conn *c, const char *reason) {
        int k = tcp_kernel_state(c->fd);
        if (k <= 0 || k == 7 /* TCP_CLOSE */)
                return;
        conn_set_state(c, tcp_state_from_kernel(k), STATE_SOURCE_KERNEL, k, "tcp_info", reason);
}

static void log_connect(Conn *c) {
        char peer[SOCKADDR_STR_MAX], local[SOCKADDR_STR_MAX];
        LogEntry e;

        log_entry_init(&e, LOG_INFO, MID_CONNECT);
        if (c->session)
                log_entry_add(&e, "MESSAGE", "Session %s: connecting to %s from %s (uid %u)", c->id,
                              sockaddr_format(&c->peer.sa, peer, sizeof(peer)), sockaddr_format(&c->local.sa, local, sizeof(local)),
                              (unsigned)c->session->owner);
        else
                log_entry_add(&e, "MESSAGE", "New connection from %s to %s (server %s, ID: %s)",
                              sockaddr_format(&c->peer.sa, peer, sizeof(peer)), sockaddr_format(&c->local.sa, local, sizeof(local)),
                              c->server->cfg.name, c->id);
        log_entry_add(&e, "TCPEDU_EVENT", "connect");
        log_conn_fields(&e, c);
        manager_emit(c->server->manager, &e, c->server->manager->log_transitions == LOG_TRANSITIONS_ALL);
}

static void log_disconnect(Conn *c) {
        Manager *m = c->server->manager;
        char peer[SOCKADDR_STR_MAX];
        LogEntry e;
        uint64_t lasted = now_usec(m, CLOCK_REALTIME) - c->timeline[0].usec;

        log_entry_init(&e, LOG_INFO, MID_DISCONNECT);
        log_entry_add(&e, "MESSAGE", "%s %s %s %s closed (%s): %" PRIu64 " bytes in, %" PRIu64 " out, %" PRIu64 ".%03" PRIu64 " s",
                      c->session ? "Session" : "Connection", c->id, c->session ? "to" : "from",
                      sockaddr_format(&c->peer.sa, peer, sizeof(peer)), c->close_reason ? c->close_reason : "closed", c->bytes_in,
                      c->bytes_out, lasted / USEC_PER_SEC, lasted % USEC_PER_SEC / 1000);
        log_entry_add(&e, "TCPEDU_EVENT", "disconnect");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_STATE", "%s", tcp_state_to_string(c->state));
        log_entry_add(&e, "TCPEDU_REASON", "%s", c->close_reason ? c->close_reason : "closed");
        log_entry_add(&e, "TCPEDU_BYTES_IN", "%" PRIu64, c->bytes_in);
        log_entry_add(&e, "TCPEDU_BYTES_OUT", "%" PRIu64, c->bytes_out);
        log_entry_add(&e, "TCPEDU_DURATION_USEC", "%" PRIu64, lasted);
        manager_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

static void log_summary(Conn *c, const char *note) {
        Manager *m = c->server->manager;
        char path[512], msg[1024], durs[256];
        size_t pl = 0, ml = 0, dl = 0;
        LogEntry e;

        path[0] = msg[0] = durs[0] = 0;
        for (unsigned i = 0; i < c->n_timeline; i++) {
                const char *name = tcp_state_to_string(c->timeline[i].state);
                pl += (size_t)snprintf(path + pl, sizeof(path) - MIN(pl, sizeof(path)), "%s%s", i ? " " : "", name);
                if (i + 1 < c->n_timeline) {
                        uint64_t d = c->timeline[i + 1].usec - c->timeline[i].usec;
                        ml += (size_t)snprintf(msg + ml, sizeof(msg) - MIN(ml, sizeof(msg)), "%s (%" PRIu64 ".%06" PRIu64 " s) -> ", name,
                                               d / USEC_PER_SEC, d % USEC_PER_SEC);
                        dl += (size_t)snprintf(durs + dl, sizeof(durs) - MIN(dl, sizeof(durs)), "%s%" PRIu64, i ? " " : "", d);
                } else
                        ml += (size_t)snprintf(msg + ml, sizeof(msg) - MIN(ml, sizeof(msg)), "%s", name);
        }
        log_entry_init(&e, LOG_INFO, MID_SUMMARY);
        log_entry_add(&e, "MESSAGE", "%s %s: %s%s%s", c->session ? "Session" : "Connection", c->id, msg, note ? "; " : "",
                      note ? note : "");
        log_entry_add(&e, "TCPEDU_EVENT", "summary");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_PATH", "%s", path);
        log_entry_add(&e, "TCPEDU_PATH_DURATIONS_USEC", "%s", durs);
        log_entry_add(&e, "TCPEDU_REASON", "%s", c->close_reason ? c->close_reason : "closed");
        if (note)
                log_entry_add(&e, "TCPEDU_NOTE", "%s", note);
        log_entry_add(&e, "TCPEDU_BYTES_IN", "%" PRIu64, c->bytes_in);
        log_entry_add(&e, "TCPEDU_BYTES_OUT", "%" PRIu64, c->bytes_out);
        manager_emit(m, &e, true);
}

/* ---- epoll interest ---- */

static size_t conn_read_room(Conn *c) {
        return c->server->vt->read_room ? c->server->vt->read_room(c) : SIZE_MAX;
}

static bool conn_wants_read(Conn *c) {
        return c->fd >= 0 && !c->peer_eof && !c->connecting && (c->shut_wr || outbuf_len(c->out) < c->server->cfg.buffer_size) &&
               conn_read_room(c) > 0;
}

static void conn_update_events(Conn *c) {
        /* A connect() under way is waited for with EPOLLOUT: the socket becomes writable when it completes. */
        /* Output buffered in this batch is written at its end (conn_flush): no EPOLLOUT for it, unless
         * the socket was already full before. */
        bool unsent = outbuf_len(c->out) && (!list_linked(&c->flush_node) || (c->events & EPOLLOUT));
        uint32_t want = (conn_wants_read(c) ? EPOLLIN : 0) | (unsent || c->connecting ? EPOLLOUT : 0);
        if (c->fd < 0 || want == c->events)
                return;
        struct epoll_event ev = { .events = want, .data.ptr = c };
        if (epoll_ctl(c->server->manager->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
                c->events = want;
}

/* ---- lifecycle ---- */

static void conn_timer_stop(Conn *c) {
        c->timer = sd_event_source_disable_unref(c->timer);
        c->probe = sd_event_source_disable_unref(c->probe);
}

static int conn_timer_start(Conn *c, uint64_t usec, sd_event_time_handler_t cb) {
        Manager *m = c->server->manager;
        if (c->timer) {
                sd_event_source_set_time(c->timer, usec);
                return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time(m->event, &c->timer, CLOCK_MONOTONIC, usec, 10 * USEC_PER_MSEC, cb, c);
}

/* The fd goes away; the kernel may keep the 4-tuple (TIME_WAIT, LAST_ACK) for a while. */
static void conn_close_fd(Conn *c, bool reset) {
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
        Manager *m = s->manager;

        if (!c->counted)
                return;
        c->counted = false;
        conn_timer_stop(c);
        list_remove(&c->node);
        s->n_conns--;
        m->n_conns--;
        if (c->ip_counted)
                server_ip_release(s, &c->peer.sa);
        free(c->out);
        c->out = NULL;
        if (s->vt->on_disconnect)
                s->vt->on_disconnect(c);
        if (manager_wants_events(m))
                log_disconnect(c);
        manager_conn_gone(m);
}

static int linger_check(sd_event_source *source, uint64_t usec, void *userdata);

/* Watch the kernel's socket for this 4-tuple until it is gone, without a busy loop: TIME_WAIT
 * reports when its timer expires, so the first check is then; other states back off to 1 s. */
static void conn_linger(Conn *c, uint32_t expires_ms) {
        Manager *m = c->server->manager;
        uint64_t delay;

        if (m->stopping) {
                conn_finish(c, "daemon stopped before the kernel released the connection");
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
        if (conn_timer_start(c, now_usec(m, CLOCK_MONOTONIC) + delay, linger_check) < 0)
                conn_finish(c, "end not tracked: no timer");
}

static int linger_check(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        Manager *m = c->server->manager;
        SockDiagResult d;
        (void)source;

        int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
        if (r == -ENOENT || (r == 0 && c->diag_cookie && d.cookie != c->diag_cookie)) {
                const char *why = c->state == TCP_STATE_TIME_WAIT ? "TIME_WAIT timer expired" : "final ACK received";
                conn_set_state(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", why);
                conn_finish(c, NULL);
                return 0;
        }
        if (r < 0) {
                conn_finish(c, "end not tracked: sock_diag failed");
                return 0;
        }
        c->diag_cookie = d.cookie;
        conn_set_state(c, tcp_state_from_kernel(d.state), STATE_SOURCE_KERNEL, d.state, "sock_diag", NULL);
        uint64_t delay = d.timer_ms ? (uint64_t)d.timer_ms * USEC_PER_MSEC + 20 * USEC_PER_MSEC
                                    : MIN(LINGER_POLL_MIN_USEC << MIN(c->watch_checks, 7u), LINGER_POLL_MAX_USEC);
        c->watch_checks++;
        if (conn_timer_start(c, usec + delay, linger_check) < 0)
                conn_finish(c, "end not tracked: no timer");
        return 0;
}

/* The end: the kernel no longer has the connection (or we stopped watching). Freed later. */
static void conn_finish(Conn *c, const char *note) {
        Manager *m = c->server->manager;

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
        c->dead = true;
        list_append(&m->dead, &c->node);
        manager_schedule_gc(m);
}

void conn_forget(Conn *c, const char *reason) {
        conn_finish(c, reason);
}

void conn_free(Conn *c) {
        if (!c)
                return;
        list_remove(&c->flush_node);
        if (c->server->vt->conn_free)
                c->server->vt->conn_free(c);
        conn_timer_stop(c);
        safe_close(c->fd);
        free(c->out);
        list_remove(&c->node);
        server_unref(c->server);
        free(c);
}

/* Both FINs have been exchanged; the daemon sent the first one. */
static void conn_after_both_fins(Conn *c) {
        Manager *m = c->server->manager;
        SockDiagResult d;

        int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
        if (r == 0) {
                c->diag_cookie = d.cookie;
                conn_set_state(c, tcp_state_from_kernel(d.state), STATE_SOURCE_KERNEL, d.state, "sock_diag", "FIN received from the peer");
                conn_close_fd(c, false);
                conn_detach(c);
                if (c->state == TCP_STATE_CLOSED)
                        conn_finish(c, NULL);
                else
                        conn_linger(c, d.state == 6 /* TIME_WAIT */ ? d.timer_ms : 0);
                return;
        }
        if (r == -ENOENT) {
                /* No TIME_WAIT socket: the kernel dropped it at once (e.g. its time-wait table is full). */
                conn_set_state(c, TCP_STATE_TIME_WAIT, STATE_SOURCE_INFERRED, -1, NULL, "FIN received from the peer");
                conn_set_state(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", "kernel kept no TIME_WAIT socket");
                conn_finish(c, NULL);
                return;
        }
        conn_set_state(c, TCP_STATE_TIME_WAIT, STATE_SOURCE_INFERRED, -1, NULL, "FIN received from the peer");
        conn_finish(c, "end of TIME_WAIT not observable: sock_diag failed");
}

/* The peer closed first and our output is flushed: send our FIN. */
static void conn_finish_passive(Conn *c) {
        if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                conn_abort(c, "shutdown failed");
                return;
        }
        c->shut_wr = true;
        int k = tcp_kernel_state(c->fd);
        conn_set_state(c, k > 0 ? tcp_state_from_kernel(k) : TCP_STATE_LAST_ACK, k > 0 ? STATE_SOURCE_KERNEL : STATE_SOURCE_INFERRED, k,
                       "tcp_info", "FIN sent after the peer's");
        conn_close_fd(c, false);
        conn_detach(c);
        if (c->state == TCP_STATE_CLOSED)
                conn_finish(c, NULL);
        else
                conn_linger(c, 0);
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
static void conn_enter_closing(Conn *c, uint64_t timeout) {
        Manager *m = c->server->manager;
        list_remove(&c->node);
        list_append(&m->closing, &c->node);
        if (timeout && conn_timer_start(c, now_usec(m, CLOCK_MONOTONIC) + timeout, close_deadline) < 0)
                conn_abort(c, "no timer for the close");
}

static int fin_wait_probe(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, "ACK of our FIN received");
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1 && ++c->probes < 8) {
                sd_event_source_set_time(source, usec + (USEC_PER_MSEC << c->probes));
                sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        } else
                c->probe = sd_event_source_disable_unref(c->probe);
        return 0;
}

static void conn_shutdown_active(Conn *c) {
        if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                conn_abort(c, "shutdown failed");
                return;
        }
        c->shut_wr = true;
        conn_observe(c, c->close_reason);
        /* The ACK of our FIN may come a moment later: look again at 1, 2, 4 ... 128 ms, so that
         * FIN_WAIT_2 is seen by the kernel rather than inferred. */
        if (c->state == TCP_STATE_FIN_WAIT_1 && !c->probe)
                (void)sd_event_add_time_relative(c->server->manager->event, &c->probe, CLOCK_MONOTONIC, USEC_PER_MSEC, 0, fin_wait_probe,
                                                 c);
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
        if (c->peer_eof) {
                /* Held in CLOSE_WAIT (a session): now send our FIN, after what is still queued. */
                conn_enter_closing(c, timeout);
                if (c->fd < 0)
                        return;
                if (outbuf_len(c->out)) {
                        c->close_after_flush = true;
                        conn_update_events(c);
                } else
                        conn_finish_passive(c);
                return;
        }
        conn_enter_closing(c, timeout);
        if (c->fd < 0)
                return;
        if (outbuf_len(c->out)) {
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
        Manager *m = c->server->manager;
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
        conn_observe(c, "FIN received from the peer");
        if (c->server->vt->hold_close_wait && !c->closing) {
                /* The peer is done sending; we may not be. CLOSE_WAIT until we close. */
                conn_update_events(c);
                if (c->server->vt->on_peer_eof)
                        c->server->vt->on_peer_eof(c);
                return;
        }
        if (outbuf_len(c->out)) {
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

static void conn_touch(Conn *c) {
        Manager *m = c->server->manager;
        c->last_activity = now_usec(m, CLOCK_MONOTONIC);
        if (!c->closing)
                list_move_tail(&c->server->conns, &c->node);
}

void conn_mark_active(Conn *c) {
        conn_touch(c);
}

/* Our FIN's ACK may arrive after we looked: catch FIN_WAIT_2 from the kernel when there is news. */
void conn_refresh(Conn *c) {
        /* Not from ESTABLISHED: a peer's FIN is followed where its data is read, so that the data
         * comes before the close (the query still shows the kernel's CLOSE_WAIT as kernel_state). */
        if (c->fd >= 0 && !c->dead && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, NULL);
}

static void conn_on_readable(Conn *c) {
        Server *s = c->server;
        Manager *m = s->manager;

        if (c->shut_wr && c->state == TCP_STATE_FIN_WAIT_1)
                conn_observe(c, "ACK of our FIN received");

        for (int i = 0; i < READS_PER_WAKEUP; i++) {
                size_t want = MIN(sizeof(m->read_buf), conn_read_room(c)), pending = outbuf_len(c->out);
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
        OutBuf *o = c->out;

        while (o && o->start < o->end) {
                ssize_t n = send(c->fd, o->data + o->start, o->end - o->start, MSG_NOSIGNAL | MSG_DONTWAIT);
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
                o->start += (size_t)n;
                c->bytes_out += (size_t)n;
                s->bytes_out += (size_t)n;
        }
        free(c->out);
        c->out = NULL;
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
        if (outbuf_len(c->out) + len > limit)
                return -ENOBUFS;
        return conn_send(c, data, len);
}

int conn_send(Conn *c, const void *data, size_t len) {
        Server *s = c->server;
        Manager *m = s->manager;
        const uint8_t *p = data;
        bool batch = m->batching && s->vt->batch_output;

        if (c->fd < 0 || c->dead || c->shut_wr)
                return -EPIPE;
        if (!outbuf_len(c->out) && !batch) {
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
        /* Partial write: only now does this connection get an output buffer. */
        OutBuf *o = c->out;
        size_t have = outbuf_len(o);
        if (!o || o->end + len > o->cap) {
                size_t cap = MAX((size_t)4096, have + len);
                if (o && o->start > 0 && have + len <= o->cap) {
                        memmove(o->data, o->data + o->start, have);
                        o->end = have;
                        o->start = 0;
                } else {
                        if (o && cap < o->cap * 2)
                                cap = o->cap * 2;
                        OutBuf *n = malloc(sizeof(OutBuf) + cap);
                        if (!n) {
                                conn_abort(c, "out of memory for output");
                                return -ENOMEM;
                        }
                        if (have)
                                memcpy(n->data, o->data + o->start, have);
                        n->start = 0;
                        n->end = have;
                        n->cap = cap;
                        free(o);
                        c->out = o = n;
                }
        }
        memcpy(o->data + o->end, p, len);
        o->end += len;
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
        if (c->fd >= 0 && !c->dead && outbuf_len(c->out))
                conn_on_writable(c);
}

int conn_new(Server *s, int fd, const SockaddrUnion *peer, Conn **ret) {
        Manager *m = s->manager;
        sd_id128_t id;
        socklen_t len = sizeof(SockaddrUnion);

        Conn *c = calloc(1, sizeof(Conn));
        if (!c)
                return -ENOMEM;
        list_init(&c->node);
        list_init(&c->flush_node);
        c->fd = fd;
        c->server = s;
        c->peer = *peer;
        if (getsockname(fd, &c->local.sa, &len) < 0) {
                free(c);
                return negative_errno();
        }
        if (sd_id128_randomize(&id) < 0)
                memset(&id, 0, sizeof(id));
        id_format(id.bytes, c->id);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));

        c->events = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                free(c);
                return r;
        }
        s->refs++;
        c->counted = true;
        c->ip_counted = server_ip_counting(s);
        s->n_conns++;
        m->n_conns++;
        s->accepted++;
        c->last_activity = now_usec(m, CLOCK_MONOTONIC);
        list_append(&s->conns, &c->node);

        /* The kernel finished the handshake before accept() returned: SYN_RECEIVED is inferred. */
        c->state = TCP_STATE_SYN_RECEIVED;
        timeline_add(c, TCP_STATE_SYN_RECEIVED, STATE_SOURCE_INFERRED, now_usec(m, CLOCK_REALTIME));
        if (manager_wants_events(m))
                log_connect(c);
        conn_observe(c, NULL); /* each step is named by its own event */
        server_arm_idle_timer(s);
        if (s->vt->on_connect)
                s->vt->on_connect(c);
        *ret = c;
        return 0;
}

/* ---- client sessions: the daemon's own connect() ---- */

void conn_resume_reading(Conn *c) {
        if (c->fd >= 0 && !c->dead)
                conn_update_events(c);
}

static const char *connect_error_reason(int err) {
        switch (err) {
        case ECONNREFUSED:
                return "connection refused (RST in answer to SYN)";
        case ETIMEDOUT:
                return "timed out (no answer to SYN)";
        case EHOSTUNREACH:
                return "host unreachable";
        case ENETUNREACH:
                return "network unreachable";
        case EADDRNOTAVAIL:
                return "address not available";
        case ECONNRESET:
                return "connection reset during the handshake";
        default:
                return strerror(err);
        }
}

static void log_connect_failed(Conn *c, int err, bool syn_sent) {
        Manager *m = c->server->manager;
        char peer[SOCKADDR_STR_MAX];
        LogEntry e;

        log_entry_init(&e, LOG_NOTICE, MID_CONNECT_FAILED);
        log_entry_add(&e, "MESSAGE", "Session %s to %s failed: %s%s", c->id, sockaddr_format(&c->peer.sa, peer, sizeof(peer)),
                      c->close_reason, syn_sent ? "" : " (connect() failed at once: no SYN was sent)");
        log_entry_add(&e, "TCPEDU_EVENT", "connect-failed");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_REASON", "%s", c->close_reason);
        log_entry_add(&e, "TCPEDU_ERRNO", "%d", err);
        log_entry_add(&e, "TCPEDU_SYN_SENT", "%s", syn_sent ? "yes" : "no");
        manager_emit(m, &e, true);
}

/* The handshake failed (err) or was given up (err 0, reason set): SYN_SENT -> CLOSED. */
static void conn_connect_failed(Conn *c, int err, const char *reason) {
        Manager *m = c->server->manager;
        SockDiagResult d;
        bool syn_sent = c->state == TCP_STATE_SYN_SENT;

        c->connecting = false;
        c->close_reason = reason ? reason : connect_error_reason(err);
        if (c->session) {
                c->session->failed = true;
                c->session->error = err ? err : ECONNABORTED; /* given up by us: closed, or the daemon stopping */
        }
        conn_close_fd(c, true);
        if (syn_sent) {
                int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
                if (r == -ENOENT)
                        conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", c->close_reason, true);
                else
                        conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_INFERRED, -1, NULL, c->close_reason, true);
        }
        log_connect_failed(c, err ? err : ECONNABORTED, syn_sent);
        conn_finish(c, NULL);
}

static int connect_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        (void)source;
        (void)usec;
        if (c->connecting)
                conn_connect_failed(c, ETIMEDOUT, "connect timeout: no answer to SYN");
        return 0;
}

static void conn_on_connect_done(Conn *c) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err) {
                conn_connect_failed(c, err, NULL);
                return;
        }
        c->connecting = false;
        c->timer = sd_event_source_disable_unref(c->timer);
        conn_touch(c);
        int k = tcp_kernel_state(c->fd);
        if (k > 0 && k != 7 /* TCP_CLOSE */)
                conn_set_state(c, tcp_state_from_kernel(k), STATE_SOURCE_KERNEL, k, "tcp_info", "SYN-ACK received, ACK sent");
        else
                conn_set_state(c, TCP_STATE_ESTABLISHED, STATE_SOURCE_INFERRED, -1, NULL, "connect() completed");
        conn_update_events(c);
        if (c->server->vt->on_connected)
                c->server->vt->on_connected(c);
}

int conn_connect(Server *s, Session *session, const SockaddrUnion *target, const SockaddrUnion *bind_addr, uint64_t connect_timeout_usec,
                 Conn **ret, char *error, size_t error_size) {
        Manager *m = s->manager;
        char a[SOCKADDR_STR_MAX];
        sd_id128_t id;
        int r;

        int fd = socket(target->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
                r = negative_errno();
                snprintf(error, error_size, "cannot create a socket: %s", strerror(-r));
                return r;
        }
        if (bind_addr) {
                if (bind_addr->sa.sa_family != target->sa.sa_family) {
                        safe_close(fd);
                        snprintf(error, error_size, "bind address %s is not of the target's address family",
                                 sockaddr_format(&bind_addr->sa, a, sizeof(a)));
                        return -EAFNOSUPPORT;
                }
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
                if (bind(fd, &bind_addr->sa, sockaddr_len(&bind_addr->sa)) < 0) {
                        r = negative_errno();
                        safe_close(fd);
                        snprintf(error, error_size, "cannot bind to %s: %s", sockaddr_format(&bind_addr->sa, a, sizeof(a)), strerror(-r));
                        return r;
                }
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));

        Conn *c = calloc(1, sizeof(Conn));
        if (!c) {
                safe_close(fd);
                snprintf(error, error_size, "out of memory");
                return -ENOMEM;
        }
        list_init(&c->node);
        list_init(&c->flush_node);
        c->fd = fd;
        c->server = s;
        c->session = session;
        session->conn = c;
        c->peer = *target;
        if (sd_id128_randomize(&id) < 0)
                memset(&id, 0, sizeof(id));
        id_format(id.bytes, c->id);
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = negative_errno();
                safe_close(fd);
                free(c);
                session->conn = NULL;
                snprintf(error, error_size, "cannot watch the socket: %s", strerror(-r));
                return r;
        }
        c->events = EPOLLOUT;
        s->refs++;
        c->counted = true;
        s->n_conns++;
        m->n_conns++;
        s->accepted++;
        c->last_activity = now_usec(m, CLOCK_MONOTONIC);
        list_append(&s->conns, &c->node);

        /* A fresh socket is CLOSED, as TCP_INFO says (Linux's CLOSE). */
        c->state = TCP_STATE_CLOSED;
        timeline_add(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, now_usec(m, CLOCK_REALTIME));
        *ret = c;

        r = connect(fd, &target->sa, sockaddr_len(&target->sa));
        int err = r < 0 ? errno : 0;
        socklen_t len = sizeof(SockaddrUnion);
        (void)getsockname(fd, &c->local.sa, &len); /* connect() picked the local port */
        if (manager_wants_events(m))
                log_connect(c);
        if (r < 0 && err != EINPROGRESS) {
                /* Refused before a SYN left: no route, no address. The kernel never left CLOSED. */
                conn_connect_failed(c, err, NULL);
                return 0;
        }
        c->connecting = true;
        /* connect() answered EINPROGRESS: the SYN is sent. On loopback the handshake may already
         * be over when TCP_INFO is asked, so SYN_SENT is the syscall's word, not TCP_INFO's. */
        int k = tcp_kernel_state(fd);
        if (k == 2 /* TCP_SYN_SENT */)
                conn_set_state(c, TCP_STATE_SYN_SENT, STATE_SOURCE_KERNEL, k, "tcp_info", NULL);
        else
                conn_set_state(c, TCP_STATE_SYN_SENT, STATE_SOURCE_SYSCALL, -1, "connect", NULL);
        server_arm_idle_timer(s);
        if (connect_timeout_usec && conn_timer_start(c, now_usec(m, CLOCK_MONOTONIC) + connect_timeout_usec, connect_deadline) < 0)
                conn_connect_failed(c, ENOMEM, "no timer for the connect timeout");
        return 0;
}
