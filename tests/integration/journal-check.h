/* SPDX-License-Identifier: MIT */
#pragma once

/* Checks of one connection's journal entries, field by field, shared by the test programs. */

#include "harness.h"

typedef struct ConnRef {
        Daemon *d;
        const char *server; /* [server NAME] */
        const char *peer; /* the client's address as the daemon sees it: getsockname() of our socket */
        const char *local; /* the listener's address */
        const char *id; /* TCPEDU_CONN_ID, learnt from the first entry checked */
} ConnRef;

/* 36 characters, lowercase hex and dashes at 8, 13, 18 and 23. */
bool is_conn_id(const char *s);
/* SYSLOG_IDENTIFIER, MESSAGE_ID, TCPEDU_EVENT, TCPEDU_SERVER, TCPEDU_SERVER_TYPE, TCPEDU_ROLE,
 * TCPEDU_CONN_ID (the same in every entry) and TCPEDU_PEER. */
void check_common(ConnRef *ref, json_object *e, const char *message_id, const char *event);
void check_connect(ConnRef *ref, json_object *e);
/* The event of the edge OLD -> NEW in common/tcp-state.c's table (tcp_transition_find()), what
 * every transition carries as its TCPEDU_REASON; NULL when the table has no such edge. */
const char *edge_event(const char *old_state, const char *new_state);
/* A transition entry OLD -> NEW: the common fields, MESSAGE, TCPEDU_LOCAL, the states, PRIORITY,
 * TCPEDU_STATE_SOURCE present, TCPEDU_REASON the event of the edge (edge_event()), and
 * TCPEDU_STATE_DURATION_USEC and TCPEDU_MONOTONIC_USEC numbers. */
void check_transition(ConnRef *ref, json_object *e, const char *old_state, const char *new_state);
/* TCPEDU_STATE_SOURCE, TCPEDU_KERNEL_STATE (NULL: must be absent) and TCPEDU_KERNEL_SOURCE (NULL:
 * must be absent). */
void expect_source(json_object *e, const char *state_source, const char *kernel_state, const char *kernel_source);
/* TCPEDU_CAUSE: what set the path going, on the first step of that path only (NULL: must be absent). */
void expect_cause(json_object *e, const char *cause);
/* The first transition of an accepted connection, LISTEN -> SYN_RECEIVED: inferred, without a
 * kernel state or source, TCPEDU_STATE_DURATION_USEC 0 and no cause. */
void expect_accept_step(json_object *e);
/* The last record of a connection the daemon stopped watching while the kernel still had it
 * (TCPEDU_EVENT=unwatched): the common fields, TCPEDU_LOCAL, MESSAGE, TCPEDU_STATE (the last state
 * recorded), TCPEDU_KERNEL_STATE (NULL: must be absent, the kernel had no socket) and TCPEDU_REASON. */
void check_unwatched(ConnRef *ref, json_object *e, const char *state, const char *kernel_state, const char *why);
/* After the daemon stopped: wait for its server-stop entry (written after every entry of a
 * connection that ended earlier), then every entry of the connection. */
JList *entries_final(ConnRef *ref);
/* The daemon closed first (cause: "idle timeout", "daemon stopping"): the connect entry, then
 * LISTEN -> SYN_RECEIVED -> ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT in this order, the
 * cause on ESTABLISHED -> FIN_WAIT_1 only, the last step seen by sock_diag, and a disconnect entry
 * with the cause as its reason and the bytes echoed. Sets ref->id. */
void check_daemon_first_path(ConnRef *ref, const char *cause, size_t bytes);
