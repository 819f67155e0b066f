/* SPDX-License-Identifier: MIT */
#include "tcp-state.h"

#include <string.h>

#include "macro.h"

static const TcpStateInfo state_table[_TCP_STATE_MAX] = {
        [TCP_STATE_CLOSED] = { "CLOSED", "No connection exists: the state before a socket opens and after it is gone.", "both" },
        [TCP_STATE_LISTEN] = { "LISTEN", "A server socket waits for connection requests (SYN) on its port.", "server" },
        [TCP_STATE_SYN_SENT] = { "SYN_SENT", "The client has sent its SYN and waits for the server's SYN-ACK.", "client" },
        [TCP_STATE_SYN_RECEIVED] = { "SYN_RECEIVED",
                                     "The server got a SYN, answered with SYN-ACK and waits for the final ACK of the three-way handshake.",
                                     "server" },
        [TCP_STATE_ESTABLISHED] = { "ESTABLISHED", "The handshake is complete: both sides may send data.", "both" },
        [TCP_STATE_FIN_WAIT_1] = { "FIN_WAIT_1", "This side closed first and sent its FIN; it waits for the peer to acknowledge it.",
                                   "whoever closes first" },
        [TCP_STATE_FIN_WAIT_2] = { "FIN_WAIT_2",
                                   "This side's FIN was acknowledged; it waits for the peer's FIN, and can still receive data.",
                                   "whoever closes first" },
        [TCP_STATE_CLOSE_WAIT] = { "CLOSE_WAIT",
                                   "The peer closed first (its FIN arrived); this side may still send until the application closes.",
                                   "whoever closes second" },
        [TCP_STATE_CLOSING] = { "CLOSING", "Both sides sent FIN at the same time; each waits for the ACK of its own FIN.",
                                "both, on a simultaneous close" },
        [TCP_STATE_LAST_ACK] = { "LAST_ACK", "The side that closed second sent its FIN and waits for the final ACK.",
                                 "whoever closes second" },
        [TCP_STATE_TIME_WAIT] = { "TIME_WAIT",
                                  "The side that closed first waits twice the maximum segment lifetime (60 s on Linux) so that late "
                                  "segments die out.",
                                  "whoever closes first" },
};

/* RFC 793 section 3.2, figure 6, plus the reset and abort edges of section 3.4/3.5 and the
 * FIN+ACK shortcut FIN_WAIT_1 -> TIME_WAIT that the RFC's text allows. */
static const TcpTransition transition_table[] = {
        { TCP_STATE_CLOSED, TCP_STATE_LISTEN, false, "passive open: listen()" },
        { TCP_STATE_CLOSED, TCP_STATE_SYN_SENT, false, "active open: connect() sends SYN" },
        { TCP_STATE_LISTEN, TCP_STATE_SYN_RECEIVED, false, "SYN received, SYN-ACK sent" },
        { TCP_STATE_LISTEN, TCP_STATE_SYN_SENT, false, "send: SYN sent from a listening socket" },
        { TCP_STATE_LISTEN, TCP_STATE_CLOSED, false, "listener closed" },
        { TCP_STATE_SYN_SENT, TCP_STATE_SYN_RECEIVED, false, "simultaneous open: SYN received, SYN-ACK sent" },
        { TCP_STATE_SYN_SENT, TCP_STATE_ESTABLISHED, false, "SYN-ACK received, ACK sent" },
        { TCP_STATE_SYN_SENT, TCP_STATE_CLOSED, true, "connection refused (RST), unreachable, timed out or closed" },
        { TCP_STATE_SYN_RECEIVED, TCP_STATE_ESTABLISHED, false, "ACK of SYN received: handshake complete" },
        { TCP_STATE_SYN_RECEIVED, TCP_STATE_FIN_WAIT_1, false, "close before the handshake finished: FIN sent" },
        { TCP_STATE_SYN_RECEIVED, TCP_STATE_LISTEN, true, "RST received: back to listening" },
        { TCP_STATE_SYN_RECEIVED, TCP_STATE_CLOSED, true, "RST received or aborted" },
        { TCP_STATE_ESTABLISHED, TCP_STATE_FIN_WAIT_1, false, "this side closes: FIN sent" },
        { TCP_STATE_ESTABLISHED, TCP_STATE_CLOSE_WAIT, false, "FIN received from the peer, ACK sent" },
        { TCP_STATE_ESTABLISHED, TCP_STATE_CLOSED, true, "RST sent or received: connection reset" },
        { TCP_STATE_FIN_WAIT_1, TCP_STATE_FIN_WAIT_2, false, "ACK of our FIN received" },
        { TCP_STATE_FIN_WAIT_1, TCP_STATE_CLOSING, false, "FIN received before the ACK of ours: simultaneous close" },
        { TCP_STATE_FIN_WAIT_1, TCP_STATE_TIME_WAIT, true, "FIN and the ACK of our FIN received together" },
        { TCP_STATE_FIN_WAIT_1, TCP_STATE_CLOSED, true, "RST sent or received" },
        { TCP_STATE_FIN_WAIT_2, TCP_STATE_TIME_WAIT, false, "FIN received from the peer, ACK sent" },
        { TCP_STATE_FIN_WAIT_2, TCP_STATE_CLOSED, true, "RST sent or received, or the peer never sent FIN" },
        { TCP_STATE_CLOSE_WAIT, TCP_STATE_LAST_ACK, false, "this side closes too: FIN sent" },
        { TCP_STATE_CLOSE_WAIT, TCP_STATE_CLOSED, true, "RST sent or received" },
        { TCP_STATE_CLOSING, TCP_STATE_TIME_WAIT, false, "ACK of our FIN received" },
        { TCP_STATE_CLOSING, TCP_STATE_CLOSED, true, "RST sent or received" },
        { TCP_STATE_LAST_ACK, TCP_STATE_CLOSED, false, "ACK of our FIN received" },
        { TCP_STATE_TIME_WAIT, TCP_STATE_CLOSED, false, "2*MSL timer expired: the kernel drops the connection" },
};

static const char *const source_table[_STATE_SOURCE_MAX] = {
        [STATE_SOURCE_KERNEL] = "kernel",
        [STATE_SOURCE_INFERRED] = "inferred",
        [STATE_SOURCE_SYSCALL] = "syscall",
        [STATE_SOURCE_BPF] = "bpf",
};

const char *tcp_state_to_string(TcpState s) {
        if (s < 0 || s >= _TCP_STATE_MAX)
                return NULL;
        return state_table[s].name;
}

TcpState tcp_state_from_string(const char *s) {
        if (!s)
                return _TCP_STATE_INVALID;
        for (int i = 0; i < _TCP_STATE_MAX; i++) {
                const char *n = state_table[i].name;
                /* Accept SYN-RECEIVED, syn_received and FIN-WAIT-1 as written in RFC 793. */
                size_t k = 0;
                for (; s[k] && n[k]; k++) {
                        char a = s[k] == '-' ? '_' : (char)(s[k] >= 'a' && s[k] <= 'z' ? s[k] - 32 : s[k]);
                        if (a != n[k])
                                break;
                }
                if (!s[k] && !n[k])
                        return (TcpState)i;
        }
        return _TCP_STATE_INVALID;
}

const TcpStateInfo *tcp_state_info(TcpState s) {
        if (s < 0 || s >= _TCP_STATE_MAX)
                return NULL;
        return &state_table[s];
}

const char *state_source_to_string(StateSource s) {
        if (s < 0 || s >= _STATE_SOURCE_MAX)
                return NULL;
        return source_table[s];
}

const TcpTransition *tcp_transitions(size_t *ret_n) {
        *ret_n = ELEMENTSOF(transition_table);
        return transition_table;
}

const TcpTransition *tcp_transition_find(TcpState from, TcpState to) {
        for (size_t i = 0; i < ELEMENTSOF(transition_table); i++)
                if (transition_table[i].from == from && transition_table[i].to == to)
                        return &transition_table[i];
        return NULL;
}

bool tcp_transition_is_legal(TcpState from, TcpState to) {
        return tcp_transition_find(from, to) != NULL;
}

int tcp_state_path(TcpState from, TcpState to, bool allow_exceptional, TcpState *ret_path, size_t max) {
        int prev[_TCP_STATE_MAX];
        TcpState queue[_TCP_STATE_MAX];
        size_t head = 0, tail = 0;

        if (from < 0 || from >= _TCP_STATE_MAX || to < 0 || to >= _TCP_STATE_MAX)
                return -EINVAL;
        if (from == to)
                return 0;

        for (int i = 0; i < _TCP_STATE_MAX; i++)
                prev[i] = -1;
        prev[from] = from;
        queue[tail++] = from;

        /* Breadth first over the table: the table order makes the orderly edge win ties. */
        while (head < tail && prev[to] < 0) {
                TcpState s = queue[head++];
                /* CLOSED ends a connection; a path through it would splice two connections together. */
                if (s == TCP_STATE_CLOSED && s != from)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(transition_table); i++) {
                        const TcpTransition *t = &transition_table[i];
                        if (t->from != s || prev[t->to] >= 0 || (t->exceptional && !allow_exceptional))
                                continue;
                        prev[t->to] = s;
                        queue[tail++] = t->to;
                }
        }
        if (prev[to] < 0)
                return -ENOENT;

        size_t n = 0;
        for (TcpState s = to; s != from; s = prev[s])
                n++;
        if (n > max)
                return -ENOBUFS;
        size_t k = n;
        for (TcpState s = to; s != from; s = prev[s])
                ret_path[--k] = s;
        return (int)n;
}

/* Linux: include/net/tcp_states.h, TCP_ESTABLISHED (1) to TCP_NEW_SYN_RECV (12) */
#define KERNEL_STATE_LAST 12

static const char *const kernel_state_table[] = {
        [1] = "ESTABLISHED", [2] = "SYN_SENT",   [3] = "SYN_RECV", [4] = "FIN_WAIT1", [5] = "FIN_WAIT2", [6] = "TIME_WAIT",
        [7] = "CLOSE",       [8] = "CLOSE_WAIT", [9] = "LAST_ACK", [10] = "LISTEN",   [11] = "CLOSING",  [12] = "NEW_SYN_RECV",
};

static const TcpState kernel_map[] = {
        [1] = TCP_STATE_ESTABLISHED, [2] = TCP_STATE_SYN_SENT,  [3] = TCP_STATE_SYN_RECEIVED, [4] = TCP_STATE_FIN_WAIT_1,
        [5] = TCP_STATE_FIN_WAIT_2,  [6] = TCP_STATE_TIME_WAIT, [7] = TCP_STATE_CLOSED,       [8] = TCP_STATE_CLOSE_WAIT,
        [9] = TCP_STATE_LAST_ACK,    [10] = TCP_STATE_LISTEN,   [11] = TCP_STATE_CLOSING,     [12] = TCP_STATE_SYN_RECEIVED,
};

const char *tcp_kernel_state_to_string(int kstate) {
        if (kstate < 1 || kstate > KERNEL_STATE_LAST)
                return NULL;
        return kernel_state_table[kstate];
}

TcpState tcp_state_from_kernel(int kstate) {
        if (kstate < 1 || kstate > KERNEL_STATE_LAST)
                return _TCP_STATE_INVALID;
        return kernel_map[kstate];
}
