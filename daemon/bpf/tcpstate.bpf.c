// SPDX-License-Identifier: MIT OR GPL-2.0-only
/* The kernel's own view of tcpedud's sockets: every TCP state change, retransmission and reset,
 * written to one ring buffer for kernel-bpf.c. Only the daemon's sockets are reported: those whose
 * local port is one of its listeners' (watched_ports; an accepted child has its listener's port
 * from the moment it is cloned, before accept()) in the daemon's network namespace, and those whose
 * cookie a client session registered before connect() (watched_cookies). Everything else is counted
 * as filtered and dropped here, so a busy machine costs the daemon nothing but the hook itself.
 *
 * BTF signatures of the hooks on the kernel this was written against (6.18):
 *   inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate)
 *   tcp_retransmit_skb(const struct sock *sk, const struct sk_buff *skb, int err)
 *   tcp_send_reset(const struct sock *sk, const struct sk_buff *skb, const enum sk_rst_reason reason)
 *   tcp_receive_reset(struct sock *sk)
 * Only the socket is used, so older kernels with fewer arguments (tcp_retransmit_skb without err,
 * tcp_send_reset without reason) load the same object. tcp_send_reset's sk is NULL for a reset
 * that answers a segment no socket owns. */

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* The event header's types; the same typedefs vmlinux.h may already have made. */
typedef __u8 uint8_t;
typedef __u16 uint16_t;
typedef __u32 uint32_t;
typedef __u64 uint64_t;

#include "tcpstate-event.h"

#define AF_INET 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The inode of the daemon's network namespace (/proc/self/ns/net), set before loading; 0: any. */
const volatile __u32 netns_ino = 0;

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, TCPSTATE_RINGBUF_SIZE);
} events SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, TCPSTATE_MAX_PORTS);
        __type(key, __u16); /* host order */
        __type(value, __u8);
} watched_ports SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, TCPSTATE_MAX_COOKIES);
        __type(key, __u64);
        __type(value, __u8);
} watched_cookies SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, _TCPSTATE_STAT_MAX);
        __type(key, __u32);
        __type(value, __u64);
} stats SEC(".maps");

/* What is remembered of a reported socket, for as long as the socket lives (socket local storage,
 * freed with it). The kernel gives a socket's local port back before it reports the step to CLOSE,
 * so that step, and a reset sent after it, would match no port watch and carry port 0. */
struct sock_info {
        __u16 port; /* the local port, last seen */
        __u8 by_port; /* caught by a port watch: reported until the socket is gone */
};

struct {
        __uint(type, BPF_MAP_TYPE_SK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, struct sock_info);
} socks SEC(".maps");

static __always_inline void count(__u32 slot) {
        __u64 *n = bpf_map_lookup_elem(&stats, &slot);

        if (n)
                *n += 1; /* this CPU's slot: no other writer while the program runs */
}

static __always_inline bool port_watched(const struct sock *sk, __u16 port) {
        if (!bpf_map_lookup_elem(&watched_ports, &port))
                return false;
        return netns_ino == 0 || BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) == netns_ino;
}

/* Whether sk is one of the daemon's TCP sockets; its cookie and local port when it is. A socket
 * is: one a port watch caught before (even after that watch is gone, or its port given back), one
 * whose cookie is watched, one on a watched port now. A cookie is read as it is (0 until someone
 * asks for it), so the other sockets of the machine are given none by us; a registered client
 * socket has one already, since SO_COOKIE made it. */
static __always_inline bool watched(const struct sock *sk, __u64 *ret_cookie, __u16 *ret_port) {
        struct sock *s = (struct sock *)sk;
        struct sock_info *info;
        __u64 cookie;
        __u16 port;

        if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
                return false;
        port = BPF_CORE_READ(sk, __sk_common.skc_num);
        cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
        info = bpf_sk_storage_get(&socks, s, 0, 0);
        if (!(info && info->by_port) && !(cookie != 0 && bpf_map_lookup_elem(&watched_cookies, &cookie))) {
                if (!port_watched(sk, port))
                        return false;
                if (!info)
                        info = bpf_sk_storage_get(&socks, s, 0, BPF_SK_STORAGE_GET_F_CREATE);
                if (info)
                        info->by_port = 1;
        }
        if (port != 0) {
                if (!info)
                        info = bpf_sk_storage_get(&socks, s, 0, BPF_SK_STORAGE_GET_F_CREATE);
                if (info)
                        info->port = port;
        } else if (info) {
                port = info->port;
        }
        *ret_cookie = cookie != 0 ? cookie : bpf_get_socket_cookie(s);
        *ret_port = port;
        return true;
}

static __always_inline void emit(const struct sock *sk, __u64 cookie, __u16 port, __u8 kind, int old_state, int new_state) {
        const struct tcp_sock *tp = (const struct tcp_sock *)sk;
        struct tcpstate_event *e;

        e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e) {
                count(TCPSTATE_STAT_DROPPED);
                return;
        }
        __builtin_memset(e, 0, sizeof(*e));
        e->cookie = cookie;
        e->time_ns = bpf_ktime_get_ns();
        e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
        e->total_retrans = BPF_CORE_READ(tp, total_retrans);
        e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
        if (e->family == AF_INET6) {
                bpf_core_read(e->saddr, sizeof(e->saddr), &sk->__sk_common.skc_v6_rcv_saddr);
                bpf_core_read(e->daddr, sizeof(e->daddr), &sk->__sk_common.skc_v6_daddr);
        } else {
                bpf_core_read(e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
                bpf_core_read(e->daddr, 4, &sk->__sk_common.skc_daddr);
        }
        e->sport = port;
        e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
        e->kind = kind;
        e->old_state = old_state;
        e->new_state = new_state;
        bpf_ringbuf_submit(e, 0);
}

/* A hook that reports the socket's current state. */
static __always_inline int report(const struct sock *sk, __u8 kind) {
        __u64 cookie;
        __u16 port;
        int state;

        if (!watched(sk, &cookie, &port)) {
                count(TCPSTATE_STAT_FILTERED);
                return 0;
        }
        state = BPF_CORE_READ(sk, __sk_common.skc_state);
        emit(sk, cookie, port, kind, state, state);
        return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpstate_set_state, const struct sock *sk, const int oldstate, const int newstate) {
        __u64 cookie;
        __u16 port;

        if (!watched(sk, &cookie, &port)) {
                count(TCPSTATE_STAT_FILTERED);
                return 0;
        }
        emit(sk, cookie, port, TCPSTATE_KIND_STATE, oldstate, newstate);
        return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcpstate_retransmit, const struct sock *sk) {
        return report(sk, TCPSTATE_KIND_RETRANSMIT);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcpstate_send_reset, const struct sock *sk) {
        return report(sk, TCPSTATE_KIND_RESET_SENT);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcpstate_receive_reset, struct sock *sk) {
        return report(sk, TCPSTATE_KIND_RESET_RECEIVED);
}
