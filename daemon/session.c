/* SPDX-License-Identifier: MIT */
/* Client sessions: outgoing TCP connections the daemon opens on request of tcpeductl, so that the
 * client side of TCP (SYN_SENT, FIN_WAIT_*, TIME_WAIT) is tracked and logged like the server
 * side. A session is a Conn hanging from a pseudo-server that never listens; what it receives is
 * kept in a bounded buffer until a control client reads it (session-recv) or is streamed to the
 * one control client watching it (session-watch). When the buffer is full the daemon stops
 * reading: the peer is slowed by TCP flow control, nothing is dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"
#include "session.h"
#include "conn.h"
#include "server.h"
#include "server-type.h"

static Session *session_of(Conn *c) {
        return c->session;
}

static size_t session_read_room(Conn *c) {
        Session *s = session_of(c);
        size_t max = c->server->cfg.buffer_size;
        if (!s)
                return 0;
        if (c->closing && !c->half_closed)
                return SIZE_MAX; /* closed by us: what still comes is read and dropped until the peer's FIN */
        return byte_queue_len(&s->rx) >= max ? 0 : max - byte_queue_len(&s->rx);
}

static void session_on_data(Conn *c, const uint8_t *data, size_t len) {
        Session *s = session_of(c);
        Core *m = c->server->core;
        /* read_room keeps what is buffered within session_buffer */
        if (byte_queue_push(&s->rx, data, len, SIZE_MAX) < 0) {
                conn_abort(c, "out of memory for received data");
                return;
        }
        if (byte_queue_len(&s->rx) >= c->server->cfg.buffer_size)
                s->rx_paused++;
        core_session_event(m, s, SESSION_EVENT_DATA);
}

void session_consume(Session *s, size_t n) {
        Conn *c = s->conn;
        bool was_full = c && byte_queue_len(&s->rx) >= c->server->cfg.buffer_size;
        n = MIN(n, byte_queue_len(&s->rx));
        byte_queue_consume(&s->rx, n);
        s->rx_total_read += n;
        byte_queue_trim(&s->rx); /* an idle session keeps no buffer */
        if (c && (was_full || n > 0))
                conn_resume_reading(c);
}

static void session_on_connected(Conn *c) {
        Session *s = session_of(c);
        s->connected = true;
        core_session_event(c->server->core, s, SESSION_EVENT_CONNECTED);
}

static void session_on_peer_eof(Conn *c) {
        Session *s = session_of(c);
        s->peer_eof = true;
        core_session_event(c->server->core, s, SESSION_EVENT_PEER_EOF);
}

static void session_on_drained(Conn *c) {
        core_session_event(c->server->core, session_of(c), SESSION_EVENT_DRAINED);
}

static void session_on_connect(Conn *c) {
        session_of(c)->conn = c;
}

static void session_on_disconnect(Conn *c) {
        Session *s = session_of(c);
        s->closed = true;
        if (c->connect_error) {
                s->failed = true;
                s->error = c->connect_error;
        }
        if (s->failed)
                c->server->core->sessions_failed++;
        if (c->state == TCP_STATE_CLOSE_WAIT || c->peer_eof)
                s->peer_eof = true;
        core_session_event(c->server->core, s, s->failed ? SESSION_EVENT_FAILED : SESSION_EVENT_DISCONNECTED);
}

/* The end: the kernel released the 4-tuple (or the daemon stopped watching). */
static void session_conn_free(Conn *c) {
        Session *s = session_of(c);
        if (!s)
                return;
        core_session_event(c->server->core, s, SESSION_EVENT_GONE);
        byte_queue_done(&s->rx);
        free(s);
        c->session = NULL;
}

const ServerVtable session_vtable = {
        .name = "session",
        .on_connect = session_on_connect,
        .on_data = session_on_data,
        .on_disconnect = session_on_disconnect,
        .conn_free = session_conn_free,
        .read_room = session_read_room,
        .on_connected = session_on_connected,
        .on_peer_eof = session_on_peer_eof,
        .on_drained = session_on_drained,
        .hold_close_wait = true,
};

void session_server_configure(Core *m, const DaemonConfig *d) {
        Server *s = m->session_server;
        s->cfg.buffer_size = d->session_buffer;
        s->cfg.idle_timeout = d->session_idle_timeout;
        s->cfg.max_clients = d->max_sessions;
        server_rearm_idle_timer(s); /* a shorter timeout takes effect now */
}

int session_server_new(Core *m, Server **ret) {
        ServerConfig cfg = {};
        snprintf(cfg.name, sizeof(cfg.name), "(sessions)");
        cfg.type = SERVER_TYPE_ECHO; /* unused: the vtable is session_vtable */
        cfg.buffer_size = 1 << 20;
        cfg.idle_timeout = 300;
        cfg.max_clients = 64;
        Server *s;
        int r = server_new(m, &cfg, &session_vtable, &s);
        if (r < 0)
                return r;
        s->running = true;
        *ret = s;
        return 0;
}

unsigned session_count(Core *m) {
        return m->session_server ? m->session_server->n_conns : 0;
}

int session_open(Core *m, const SockaddrUnion *target, const SockaddrUnion *bind_addr, uint64_t timeout_usec, uid_t owner, pid_t pid,
                 ControlClient *watcher, Session **ret, char *error, size_t error_size) {
        Server *srv = m->session_server;

        if (srv->cfg.max_clients == 0) {
                snprintf(error, error_size, "sessions are turned off (max_sessions = 0)");
                return -EPERM;
        }
        if (srv->n_conns >= srv->cfg.max_clients || m->n_conns >= m->config->daemon.max_connections) {
                bool sessions = srv->n_conns >= srv->cfg.max_clients;
                m->sessions_refused_limit++;
                snprintf(error, error_size, "%s reached (%u)", sessions ? "max_sessions" : "max_connections",
                         sessions ? srv->cfg.max_clients : m->config->daemon.max_connections);
                log_msg(m, LOG_WARNING, MID_LIMIT, "session to uid %u refused: %s", (unsigned)owner, error);
                return -EUSERS;
        }
        Session *s = calloc(1, sizeof(Session));
        if (!s) {
                snprintf(error, error_size, "out of memory");
                return -ENOMEM;
        }
        s->owner = owner;
        s->owner_pid = pid;
        s->connect_timeout_usec = timeout_usec;
        s->watcher = watcher;
        core_session_event(m, s, SESSION_EVENT_OPENING); /* the watcher sees it from the first transition on */
        Conn *c;
        int r = conn_connect(srv, s, owner, target, bind_addr, timeout_usec, &c, error, error_size);
        if (r < 0) {
                core_session_event(m, s, SESSION_EVENT_NOT_OPENED);
                free(s);
                return r;
        }
        m->sessions_opened++;
        *ret = s;
        return 0;
}
