/* SPDX-License-Identifier: MIT */
/* A connection's state: each step as the kernel made it, its timeline, and the journal records of
 * a connection (connect, transition, disconnect, summary). */
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
#include <time.h>
#include <unistd.h>

#include "conn-internal.h"
#include "conn-kernel.h"
#include "kernel-tcp.h"
#include "macro.h"
#include "server-type.h"
#include "server.h"

/* ---- state tracking and the journal ---- */

/* The fields that say which connection an entry is about, the same in every entry. */
void log_conn_fields(LogEntry *e, const Conn *c) {
        char peer[SOCKADDR_STR_MAX], local[SOCKADDR_STR_MAX];
        if (c->session) {
                log_entry_add(e, "TCPEDU_ROLE", "client");
                log_entry_add(e, "TCPEDU_SESSION_OWNER_UID", "%u", (unsigned)c->owner);
        } else {
                log_entry_add(e, "TCPEDU_SERVER", "%s", c->server->cfg.name);
                log_entry_add(e, "TCPEDU_SERVER_TYPE", "%s", c->server->vt->name);
                log_entry_add(e, "TCPEDU_ROLE", "server");
        }
        log_entry_add(e, "TCPEDU_CONN_ID", "%s", c->id);
        log_entry_add(e, "TCPEDU_PEER", "%s", sockaddr_format(&c->peer.sa, peer, sizeof(peer)));
        log_entry_add(e, "TCPEDU_LOCAL", "%s", sockaddr_format(&c->local.sa, local, sizeof(local)));
}

void log_step_fields(LogEntry *e, TcpState from, TcpState to, const char *cause) {
        const TcpTransition *edge = tcp_transition_find(from, to);
        struct timespec ts;

        if (edge)
                log_entry_add(e, "TCPEDU_REASON", "%s", edge->event);
        if (cause && (!edge || strcmp(cause, edge->event) != 0))
                log_entry_add(e, "TCPEDU_CAUSE", "%s", cause);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        log_entry_add(e, "TCPEDU_MONOTONIC_USEC", "%" PRIu64, (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000);
}

/* cause: what the daemon or the peer did that led to this step (idle timeout, a kick), if any. */
static void log_transition(Conn *c, TcpState from, TcpState to, StateSource src, int kstate, const char *kvia, const char *cause,
                           uint64_t duration) {
        Core *m = c->server->core;
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
        if (src == STATE_SOURCE_BPF && c->kernel_ns)
                log_entry_add(&e, "TCPEDU_KERNEL_TIME_NSEC", "%" PRIu64, c->kernel_ns);
        log_entry_add(&e, "TCPEDU_STATE_DURATION_USEC", "%" PRIu64, duration);
        log_step_fields(&e, from, to, cause);
        core_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

void timeline_add(Conn *c, TcpState s, StateSource src, uint64_t now) {
        /* The longest server path has 7 states; keep the last slot for the final state regardless. */
        unsigned i = c->n_timeline < CONN_TIMELINE_MAX ? c->n_timeline++ : CONN_TIMELINE_MAX - 1;
        c->timeline[i] = (TimelineEntry){ .usec = now, .state = (uint8_t)s, .source = (uint8_t)src };
}

/* Move to 'to' along the shortest legal path; the steps before the last are inferred. A reset
 * takes the direct RST edge; otherwise exceptional edges are used only when nothing else leads there. */
void conn_set_state_full(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason, bool reset) {
        Core *m = c->server->core;
        TcpState path[8];
        int n;

        if (to < 0 || to == c->state)
                return;
        /* a tracked connection's steps are the tracepoint's: another source only confirms them */
        if (src != STATE_SOURCE_BPF && c->kernel_tracked && !conn_kernel_other_source(c, to, kvia))
                return;
        if (to == c->state)
                return;
        if (c->state == TCP_STATE_CLOSED && !(c->session && c->n_timeline == 1)) {
                /* A connection does not come back from CLOSED (a session starts there, once); reaching here is a bug, not a path. */
                log_msg(m, LOG_ERR, NULL, "BUG: connection %s: transition out of CLOSED to %s ignored", c->id, tcp_state_to_string(to));
                return;
        }
        if (src == STATE_SOURCE_BPF && tcp_transition_find(c->state, to)) {
                /* the tracepoint reports each step: the edge it took, a reset's included */
                path[0] = to;
                n = 1;
        } else
                n = tcp_state_path(c->state, to, reset, path, ELEMENTSOF(path));
        if (n < 0 && !reset)
                n = tcp_state_path(c->state, to, true, path, ELEMENTSOF(path));
        if (n < 0) {
                log_msg(m, LOG_ERR, NULL, "BUG: connection %s: no legal transition %s -> %s", c->id, tcp_state_to_string(c->state),
                        tcp_state_to_string(to));
                return;
        }
        /* An active close seen late (the peer's FIN came before TCP_INFO could show FIN_WAIT_1):
         * what made the daemon close is still the cause of ESTABLISHED -> FIN_WAIT_1. */
        if (!reason && c->closing && c->state == TCP_STATE_ESTABLISHED && path[0] == TCP_STATE_FIN_WAIT_1)
                reason = c->close_reason;
        uint64_t now = core_now(m, CLOCK_REALTIME);
        for (int i = 0; i < n; i++) {
                StateSource step_src = i == n - 1 ? src : STATE_SOURCE_INFERRED;
                /* Every step's reason is the event of its edge, the same text `tcpeductl explain` gives;
                 * what set the path going (an idle timeout, a kick) is the cause of its first step. */
                const char *step_cause = i == 0 ? reason : NULL;
                uint64_t since = c->n_timeline ? c->timeline[c->n_timeline - 1].usec : now;
                /* Only the last step is what the kernel said; the steps before it are inferred. */
                if (core_wants_events(m))
                        log_transition(c, c->state, path[i], step_src, i == n - 1 ? kstate : -1, i == n - 1 ? kvia : NULL, step_cause,
                                       now > since ? now - since : 0);
                timeline_add(c, path[i], step_src, now);
                c->state = path[i];
                m->transitions++;
        }
}

void conn_set_state(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason) {
        conn_set_state_full(c, to, src, kstate, kvia, reason, false);
}

/* Ask TCP_INFO and follow it. Linux's CLOSE is ambiguous on an open fd: a reset, or a connection
 * that now lives on as a time-wait socket. It is never followed here; the EOF and error paths
 * settle it with sock_diag or the socket error. */
void conn_observe(Conn *c, const char *reason) {
        int k = tcp_kernel_state(c->fd);
        if (k <= 0 || k == 7 /* TCP_CLOSE */)
                return;
        conn_set_state(c, tcp_state_from_kernel(k), STATE_SOURCE_KERNEL, k, "tcp_info", reason);
}

/* An accepted connection: the kernel made the child LISTEN -> SYN_RECEIVED (a clone of the
 * listener, when the SYN came) and finished the handshake before accept() returned. The first step
 * is recorded as inferred: TCP_INFO cannot see it. */
void conn_enter_syn_received(Conn *c) {
        Core *m = c->server->core;
        uint64_t now = core_now(m, CLOCK_REALTIME);
        if (core_wants_events(m))
                log_transition(c, TCP_STATE_LISTEN, TCP_STATE_SYN_RECEIVED, STATE_SOURCE_INFERRED, -1, NULL, NULL, 0);
        c->state = TCP_STATE_SYN_RECEIVED;
        timeline_add(c, TCP_STATE_SYN_RECEIVED, STATE_SOURCE_INFERRED, now);
        m->transitions++;
}

/* A connection refused at a limit: accepted, then reset. It gets the records any connection gets
 * (an ID, LISTEN -> SYN_RECEIVED -> ESTABLISHED -> CLOSED) without becoming one; fd is closed. */
void conn_record_refused(Server *s, int fd, const struct sockaddr *peer, const char *cause) {
        Core *m = s->core;
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        Conn c = { .server = s, .fd = fd };
        socklen_t len = sizeof(c.local);
        SockDiagResult d;
        sd_id128_t id;

        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        if (!core_wants_events(m) || getsockname(fd, &c.local.sa, &len) < 0) {
                safe_close(fd);
                return;
        }
        memcpy(&c.peer, peer, sockaddr_len(peer));
        if (sd_id128_randomize(&id) < 0)
                memset(&id, 0, sizeof(id));
        id_format(id.bytes, c.id);
        c.close_reason = cause;
        if (conn_kernel_track(&c, true)) {
                /* the kernel's own steps, the reset included: it is in the ring when close() returns */
                c.fd = safe_close(c.fd);
                conn_kernel_drain(m);
                bool whole = c.kernel_tracked && c.state == TCP_STATE_CLOSED;
                conn_kernel_untrack(&c);
                if (whole)
                        return;
        } else {
                conn_kernel_untrack(&c); /* (one that fell back is still in the cookie table: c is on the stack) */
                if (c.n_timeline == 0)
                        conn_enter_syn_received(&c);
                conn_observe(&c, NULL);
        }
        c.fd = safe_close(c.fd);
        int r = sock_diag_lookup(m->diag_fd, &c.local.sa, &c.peer.sa, &d);
        conn_set_state_full(&c, TCP_STATE_CLOSED, r == -ENOENT ? STATE_SOURCE_KERNEL : STATE_SOURCE_INFERRED, -1,
                            r == -ENOENT ? "sock_diag" : NULL, cause, true);
}

void log_connect(Conn *c) {
        char peer[SOCKADDR_STR_MAX], local[SOCKADDR_STR_MAX];
        LogEntry e;

        log_entry_init(&e, LOG_INFO, MID_CONNECT);
        if (c->session)
                log_entry_add(&e, "MESSAGE", "Session %s: connecting to %s from %s (uid %u)", c->id,
                              sockaddr_format(&c->peer.sa, peer, sizeof(peer)), sockaddr_format(&c->local.sa, local, sizeof(local)),
                              (unsigned)c->owner);
        else
                log_entry_add(&e, "MESSAGE", "New connection from %s to %s (server %s, ID: %s)",
                              sockaddr_format(&c->peer.sa, peer, sizeof(peer)), sockaddr_format(&c->local.sa, local, sizeof(local)),
                              c->server->cfg.name, c->id);
        log_entry_add(&e, "TCPEDU_EVENT", "connect");
        log_conn_fields(&e, c);
        core_emit(c->server->core, &e, c->server->core->log_transitions == LOG_TRANSITIONS_ALL);
}

void log_disconnect(Conn *c) {
        Core *m = c->server->core;
        char peer[SOCKADDR_STR_MAX];
        LogEntry e;
        uint64_t lasted = core_now(m, CLOCK_REALTIME) - c->timeline[0].usec;

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
        core_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

void log_unwatched(Conn *c, int kernel_state, const char *why) {
        Core *m = c->server->core;
        LogEntry e;

        log_entry_init(&e, LOG_INFO, MID_UNWATCHED);
        log_entry_add(&e, "MESSAGE", "%s %s: no longer watched in %s (kernel: %s): %s", c->session ? "Session" : "Connection", c->id,
                      tcp_state_to_string(c->state), kernel_state > 0 ? tcp_kernel_state_to_string(kernel_state) : "no socket", why);
        log_entry_add(&e, "TCPEDU_EVENT", "unwatched");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_STATE", "%s", tcp_state_to_string(c->state));
        if (kernel_state > 0)
                log_entry_add(&e, "TCPEDU_KERNEL_STATE", "%s", tcp_kernel_state_to_string(kernel_state));
        log_entry_add(&e, "TCPEDU_REASON", "%s", why);
        core_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

void log_summary(Conn *c, const char *note) {
        Core *m = c->server->core;
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
        core_emit(m, &e, true);
}
