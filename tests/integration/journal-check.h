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
/* A transition entry OLD -> NEW: the common fields, MESSAGE, TCPEDU_LOCAL, the states, PRIORITY,
 * TCPEDU_STATE_SOURCE present and TCPEDU_STATE_DURATION_USEC a number. */
void check_transition(ConnRef *ref, json_object *e, const char *old_state, const char *new_state);
/* TCPEDU_STATE_SOURCE, TCPEDU_KERNEL_STATE (NULL: must be absent) and TCPEDU_KERNEL_SOURCE. */
void expect_source(json_object *e, const char *state_source, const char *kernel_state, const char *kernel_source);
/* After the daemon stopped: wait for its server-stop entry (written after every entry of a
 * connection that ended earlier), then every entry of the connection. */
JList *entries_final(ConnRef *ref);
/* The daemon closed first (reason: "idle timeout", "daemon stopping"): the connect entry, then
 * SYN_RECEIVED -> ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT in this order, the last
 * step seen by sock_diag, and a disconnect entry with the reason and bytes echoed. Sets ref->id. */
void check_daemon_first_path(ConnRef *ref, const char *reason, size_t bytes);
