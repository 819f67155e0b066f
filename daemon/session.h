/* SPDX-License-Identifier: MIT */
#pragma once

/* Client sessions: TCP connections the daemon opens on request and tracks like the others (session.c).
 * What happens to one is told to core->session_event, which control sets. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "byte-queue.h"
#include "config.h"
#include "core.h"
#include "sockaddr-util.h"
#include "tcpedud.h"

#define SESSION_CONNECT_TIMEOUT_DEFAULT_SEC 10
#define SESSION_CONNECT_TIMEOUT_MAX_SEC 600

struct Session {
        Conn *conn;
        uid_t owner; /* the uid that opened it: only it and admins may use it */
        pid_t owner_pid;
        ControlClient *opener; /* set for an ephemeral session: closed when this client goes */
        ControlClient *watcher; /* receives its data and events as they come */
        ByteQueue rx; /* received, not yet read */
        uint64_t rx_total_read, rx_paused; /* bytes read by clients; times reading paused on a full buffer */
        bool connected; /* the handshake completed */
        bool failed; /* connect failed: the reason is c->close_reason */
        bool peer_eof;
        bool closed; /* our fd is closed: no more data either way */
        int error; /* errno of a failed connect */
        uint64_t connect_timeout_usec;
};

extern const ServerVtable session_vtable;
/* The pseudo-server all sessions hang from: not in m->servers, never listening. */
int session_server_new(Core *core, Server **ret);
void session_server_configure(Core *core, const DaemonConfig *d);
/* A watcher is whoever serves sessions' own (control): told as SESSION_EVENT_OPENING. */
int session_open(Core *core, const SockaddrUnion *target, const SockaddrUnion *bind_addr, uint64_t timeout_usec, uid_t owner, pid_t pid,
                 ControlClient *watcher, Session **ret, char *error, size_t error_size);
/* Take n bytes off the front of the receive buffer: reading resumes if it had stopped. */
void session_consume(Session *s, size_t n);
unsigned session_count(Core *core);
