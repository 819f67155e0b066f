/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/* The eleven states of RFC 793, in the RFC's order. */
typedef enum TcpState {
        TCP_STATE_CLOSED,
        TCP_STATE_LISTEN,
        TCP_STATE_SYN_SENT,
        TCP_STATE_SYN_RECEIVED,
        TCP_STATE_ESTABLISHED,
        TCP_STATE_FIN_WAIT_1,
        TCP_STATE_FIN_WAIT_2,
        TCP_STATE_CLOSE_WAIT,
        TCP_STATE_CLOSING,
        TCP_STATE_LAST_ACK,
        TCP_STATE_TIME_WAIT,
        _TCP_STATE_MAX,
        _TCP_STATE_INVALID = -EINVAL,
} TcpState;

/* Whether a transition was confirmed by the kernel, deduced from a socket event, or reported by
 * the kernel's answer to a system call (connect() returning EINPROGRESS: the SYN is on its way,
 * even when loopback completes the handshake before TCP_INFO can show SYN_SENT). */
typedef enum StateSource {
        STATE_SOURCE_KERNEL,
        STATE_SOURCE_INFERRED,
        STATE_SOURCE_SYSCALL,
        STATE_SOURCE_BPF, /* the kernel's own tracepoint (inet_sock_set_state), as it happened */
        _STATE_SOURCE_MAX,
        _STATE_SOURCE_INVALID = -EINVAL,
} StateSource;

typedef struct TcpTransition {
        TcpState from, to;
        bool exceptional; /* a reset, an abort or a shortcut: taken only when no ordinary path exists */
        const char *event; /* what makes TCP take this edge, in plain words */
} TcpTransition;

typedef struct TcpStateInfo {
        const char *name;
        const char *meaning; /* one sentence */
        const char *who; /* "client", "server", "both", "whoever closes first", ... */
} TcpStateInfo;

const char *tcp_state_to_string(TcpState s);
TcpState tcp_state_from_string(const char *s);
const TcpStateInfo *tcp_state_info(TcpState s);
const char *state_source_to_string(StateSource s);

bool tcp_transition_is_legal(TcpState from, TcpState to);
const TcpTransition *tcp_transition_find(TcpState from, TcpState to);
const TcpTransition *tcp_transitions(size_t *ret_n);

/* Shortest legal path from 'from' to 'to', written to ret_path without 'from' and ending with 'to'.
 * Exceptional edges (resets, FIN_WAIT_1 -> TIME_WAIT) are used only when allow_exceptional is set.
 * CLOSED may start or end a path, never sit in its middle. Returns the number of steps (0 if from
 * == to), -ENOENT if no such path exists, -ENOBUFS if it does not fit in max. */
int tcp_state_path(TcpState from, TcpState to, bool allow_exceptional, TcpState *ret_path, size_t max);

/* Linux's own numbering (include/net/tcp_states.h), as TCP_INFO and sock_diag report it. */
const char *tcp_kernel_state_to_string(int kstate);
/* Map a kernel state to RFC 793; Linux's CLOSE maps to CLOSED, NEW_SYN_RECV to SYN_RECEIVED. */
TcpState tcp_state_from_kernel(int kstate);
