/* SPDX-License-Identifier: MIT */
#pragma once

/* What tcpstate.bpf.c puts in its ring buffer, read by kernel-bpf.c: one layout for both sides, in
 * fixed-size types only (the BPF side gets them from vmlinux.h), no padding left to the compiler. */

#ifndef __bpf__
#include <stdint.h>
#endif

enum {
        TCPSTATE_KIND_STATE, /* inet_sock_set_state: old_state -> new_state */
        TCPSTATE_KIND_RETRANSMIT, /* tcp_retransmit_skb; old_state = new_state = the socket's state */
        TCPSTATE_KIND_RESET_SENT, /* tcp_send_reset */
        TCPSTATE_KIND_RESET_RECEIVED, /* tcp_receive_reset */
        _TCPSTATE_KIND_MAX,
};

/* Slots of the per-CPU counter array "stats". */
enum {
        TCPSTATE_STAT_DROPPED, /* the ring buffer was full: the event is lost */
        TCPSTATE_STAT_FILTERED, /* a hook ran for a socket that is not watched */
        _TCPSTATE_STAT_MAX,
};

#define TCPSTATE_RINGBUF_SIZE (256 * 1024)
#define TCPSTATE_MAX_PORTS 1024
#define TCPSTATE_MAX_COOKIES 65536

struct tcpstate_event {
        uint64_t cookie; /* SO_COOKIE */
        uint64_t time_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
        uint32_t srtt_us; /* tcp_sock->srtt_us >> 3 */
        uint32_t total_retrans;
        uint8_t saddr[16]; /* the local end; IPv4 in the first 4 bytes, network order */
        uint8_t daddr[16];
        uint16_t sport; /* host order */
        uint16_t dport;
        uint16_t family; /* AF_INET, AF_INET6 */
        uint8_t kind; /* TCPSTATE_KIND_* */
        uint8_t old_state; /* the kernel's numbering: TCP_ESTABLISHED = 1 ... */
        uint8_t new_state;
        uint8_t pad[7];
};
