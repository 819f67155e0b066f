/* SPDX-License-Identifier: MIT */
#pragma once

/* What conn.c, conn-close.c, conn-connect.c and conn-state.c share; nobody else includes it. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conn.h"
#include "kernel-tcp.h"
#include "tcp-state.h"

#define LINGER_POLL_MIN_USEC (10 * USEC_PER_MSEC)
#define LINGER_POLL_MAX_USEC (50 * USEC_PER_MSEC) /* the end of a lingering state is seen within this */
#define FIN_PROBE_MAX_USEC (50 * USEC_PER_MSEC)

void log_conn_fields(LogEntry *e, const Conn *c);
void timeline_add(Conn *c, TcpState s, StateSource src, uint64_t now);
void conn_set_state_full(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason, bool reset);
void conn_set_state(Conn *c, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason);
void conn_observe(Conn *c, const char *reason);
void log_connect(Conn *c);
void log_disconnect(Conn *c);
void log_summary(Conn *c, const char *note);
void conn_update_events(Conn *c);
int conn_timer_start(Conn *c, uint64_t usec, sd_event_time_handler_t cb);
void conn_close_fd(Conn *c, bool reset);
void conn_finish(Conn *c, const char *note);
void conn_free_deferred(Deferred *d);
void conn_after_both_fins(Conn *c);
void conn_finish_passive(Conn *c);
void conn_enter_closing(Conn *c, uint64_t timeout);
void conn_shutdown_active(Conn *c);
void conn_touch(Conn *c);
void conn_connect_failed(Conn *c, int err, const char *reason);
void conn_on_connect_done(Conn *c);
/* A new connection on fd, watched for events, not yet counted against any limit. */
int conn_alloc(Server *s, int fd, const SockaddrUnion *peer, uint32_t events, Conn **ret);
/* Counted: a slot of max_clients / max_connections, a reference on its server, its server's list. */
void conn_count(Conn *c);
/* Stop watching a connection the kernel still has, with a final `unwatched` record. */
void conn_unwatch(Conn *c, const char *why);
void log_unwatched(Conn *c, int kernel_state, const char *why);
void conn_enter_syn_received(Conn *c);
