/* SPDX-License-Identifier: MIT */
#pragma once

/* What a server type (echo, enhanced, chat, a plug-in's host, client sessions) is and the only
 * connection API it may use. A type is a table of callbacks over the shared connection code; it
 * sees a connection through these calls and the fields of Conn and Server it reads (id, peer,
 * userdata, server->cfg), and never touches an fd or the event loop: socket options, timers and
 * peeking go through named calls here. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "core.h"
#include "server.h"
#include "tcpedud.h"

struct ServerVtable {
        const char *name;
        void (*on_connect)(Conn *c);
        void (*on_data)(Conn *c, const uint8_t *data, size_t len);
        void (*on_disconnect)(Conn *c);
        /* optional: the daemon began to close the connection (kick, idle, line_timeout, stop): the
         * peer may linger for up to 5 s, but the type can let go of it now */
        void (*on_close_start)(Conn *c);
        /* optional: what `tcpeductl show` adds for this type; freeing the type's per-server state */
        void (*describe)(Server *s, struct json_object *out);
        void (*free_state)(Server *s);
        /* optional: free c->userdata. Called at the safe point (conn_free), never from inside I/O,
         * so that a callback's own state outlives a close that happens within it. */
        void (*conn_free)(Conn *c);
        /* optional, for client sessions: how many more bytes the type can take now (0 pauses
         * reading: TCP flow control does the rest); the handshake completed (c->connecting is
         * false) or failed (then on_disconnect follows); the peer's FIN arrived; all output was sent */
        size_t (*read_room)(Conn *c);
        void (*on_connected)(Conn *c);
        void (*on_peer_eof)(Conn *c);
        void (*on_drained)(Conn *c);
        /* the peer's FIN does not close our side: the connection stays in CLOSE_WAIT until
         * conn_close() (a client may go on sending after the server is done) */
        bool hold_close_wait;
        /* what the type sends while the manager handles a batch of ready connections is buffered
         * and written once, at the end of the batch: one send() for a read's many replies, and one
         * for the broadcasts of several members to each member (see manager.c's on_epoll) */
        bool batch_output;
};

/* ---- conn.c: the connection API of a server type ---- */

/* Queue bytes for the peer: written at once if the socket takes them, else buffered up to
 * buffer_size (reading pauses beyond it). Returns 0 or -errno (the connection is then closing). */
int conn_send(Conn *c, const void *data, size_t len);
/* As conn_send, but -ENOBUFS (and nothing queued) if the unsent output would pass limit. */
int conn_send_bounded(Conn *c, const void *data, size_t len, size_t limit);
/* Close actively: flush, send FIN, wait (bounded) for the peer's FIN: FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT. */
void conn_close(Conn *c, const char *reason);
/* Half-close: send FIN and keep reading until the peer's FIN, with no deadline. */
void conn_half_close(Conn *c, const char *reason);
/* Reset: SO_LINGER 0 and close, the peer gets RST. */
void conn_abort(Conn *c, const char *reason);
/* Count as activity for the idle timer (a session's own send). */
void conn_mark_active(Conn *c);
/* Read again after the type made room (read_room went from 0 to more). */
void conn_resume_reading(Conn *c);
/* Its fd is still open (it may be closing). */
bool conn_has_fd(const Conn *c);
/* Still open and not on its way out (no close begun). */
bool conn_is_open(const Conn *c);
/* Sending to it makes sense: open, and our FIN not sent. */
bool conn_can_send(const Conn *c);
/* Bytes queued for the peer and not yet written. */
size_t conn_unsent(const Conn *c);
/* The socket's send buffer, in bytes (SO_SNDBUF). */
int conn_set_sndbuf(Conn *c, int bytes);
/* The peer has sent bytes that were not read yet (MSG_PEEK). */
bool conn_has_unread(Conn *c);

/* ---- conn-timer.c: one-shot timers of a type's per-connection state ---- */

typedef void (*ConnTimerFn)(Conn *c, void *userdata);
/* Arm *t to fire once, usec from now (CLOCK_MONOTONIC, within accuracy); created on first use,
 * re-armed after. */
int conn_timer_arm(Conn *c, ConnTimer **t, uint64_t usec, uint64_t accuracy, ConnTimerFn fn, void *userdata);
void conn_timer_disarm(ConnTimer *t);
bool conn_timer_armed(const ConnTimer *t);
ConnTimer *conn_timer_free(ConnTimer *t);
