/* SPDX-License-Identifier: MIT */
#pragma once

/* One connection: its I/O and backpressure (conn.c), its close paths and the watch of what the
 * kernel keeps after the fd is closed (conn-close.c), the active open of a client session
 * (conn-connect.c), and its state timeline and journal records (conn-state.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "byte-queue.h"
#include "core.h"
#include "id.h"
#include "list.h"
#include "sockaddr-util.h"
#include "tcp-state.h"
#include "tcpedud.h"

#define READS_PER_WAKEUP 16 /* fairness: then the next ready connection gets its turn */
#define CONN_CLOSE_TIMEOUT_USEC (5 * USEC_PER_SEC) /* bound on flushing and on waiting for the peer's FIN */
#define LINGER_MAX 65536 /* fd-less connections watched to their end (TIME_WAIT ...) */
#define CONN_TIMELINE_MAX 10
#define HALF_CLOSE_DEFAULT_SEC 300 /* bound on a half-close when idle_timeout is 0 */

typedef struct TimelineEntry {
        uint64_t usec; /* CLOCK_REALTIME when the state was entered */
        uint8_t state; /* TcpState */
        uint8_t source; /* StateSource */
} TimelineEntry;

struct Conn {
        union {
                ListNode node; /* server->conns while open; core->closing or ->lingering later */
                Deferred gc; /* its node on core->dead once finished: freed at a safe point */
        };
        ListNode flush_node; /* on manager->flush: output buffered in this batch, written at its end */
        Server *server;
        int fd; /* -1 once closed: the kernel may still hold the 4-tuple */
        uint32_t events; /* current epoll interest */
        TcpState state;
        bool counted; /* holds a slot of max_clients / max_connections */
        bool ip_counted; /* holds a slot of max_clients_per_ip (the limit may change by reload) */
        bool peer_eof; /* the peer's FIN arrived */
        bool shut_wr; /* our FIN was sent */
        bool closing; /* an active close is under way */
        bool close_after_flush; /* send our FIN once the output buffer drains */
        bool half_closed; /* kicked with --how shutdown: no 5 s deadline, idle_timeout instead */
        bool lingering; /* on manager->lingering: fd closed, the kernel still has the 4-tuple */
        bool dead; /* on manager->dead, freed at a safe point */
        bool connecting; /* a client session's connect() is under way (SYN_SENT) */
        uint8_t n_timeline;
        uint8_t probes; /* FIN_WAIT_1 probes so far (next to the flags: no padding) */
        TimelineEntry timeline[CONN_TIMELINE_MAX];
        uint64_t last_activity; /* CLOCK_MONOTONIC */
        uint64_t bytes_in, bytes_out;
        ByteQueue out; /* unsent output: no storage unless a write was partial */
        sd_event_source *timer; /* close deadline, or the watch of a lingering 4-tuple */
        sd_event_source *probe; /* while in FIN_WAIT_1: looks again for the ACK of our FIN */
        uint64_t diag_cookie; /* the socket's cookie (SO_COOKIE, sock_diag's); 0 while unknown */
        Conn *kernel_next; /* in the eBPF source's cookie table (conn-kernel.c), under kernel_cookie */
        uint64_t kernel_cookie;
        uint64_t kernel_ns; /* while a step from the eBPF source is recorded: the kernel's time of it */
        uint32_t retransmits; /* seen by the eBPF source */
        uint16_t resets_sent, resets_received;
        bool kernel_tracked; /* its steps come from the eBPF source */
        unsigned watch_checks;
        uid_t owner; /* a client session's: the uid that opened it */
        const char *close_reason;
        SockaddrUnion peer, local;
        char id[ID_STR_LEN + 1];
        int16_t connect_error; /* errno of a client session's failed connect, 0 otherwise */
        void *userdata; /* the server type's */
        Session *session; /* a client session (TCPEDU_ROLE=client): the daemon connected out; its owner */
};

int conn_new(Server *s, int fd, const SockaddrUnion *peer, Conn **ret);
/* The fields every transition record ends with, connections' and listeners': TCPEDU_REASON (the
 * edge's event from the one table, as `tcpeductl explain` says it), TCPEDU_CAUSE (what set the path
 * going, when it says more) and TCPEDU_MONOTONIC_USEC. */
void log_step_fields(LogEntry *e, TcpState from, TcpState to, const char *cause);
/* A connection a limit refused: its records (an ID, the kernel's path to the reset), fd closed with RST. */
void conn_record_refused(Server *s, int fd, const struct sockaddr *peer, const char *cause);
/* Connect out (a client session): CLOSED -> SYN_SENT now, ESTABLISHED or CLOSED later. With
 * connect_timeout_usec > 0 a handshake still under way then is aborted. Returns -errno (nothing
 * created, *ret_error says why) if no socket could be made or bound; a connect() that fails at once
 * gives a connection that is already finished, with the reason in close_reason. */
int conn_connect(Server *s, Session *session, uid_t owner, const SockaddrUnion *target, const SockaddrUnion *bind_addr,
                 uint64_t connect_timeout_usec, Conn **ret, char *error, size_t error_size);
void conn_handle_events(Conn *c, uint32_t events);
/* Write what a batch_output type buffered during the batch (at the end of a batch). */
void conn_flush(Conn *c);
/* Catch the ACK of our FIN (FIN_WAIT_1 -> FIN_WAIT_2) before a control query reports the state. */
void conn_refresh(Conn *c);
/* The daemon is exiting: end a lingering connection's watch without waiting for the kernel. */
void conn_forget(Conn *c, const char *reason);
void conn_free(Conn *c);
/* The connection waiting on core->dead as d, or NULL if d is something else. */
Conn *conn_from_deferred(Deferred *d);
