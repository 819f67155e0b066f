/* SPDX-License-Identifier: MIT */
#pragma once

/* The kernel's own account of the daemon's TCP sockets, from eBPF: every state change as the
 * kernel makes it (inet_sock_set_state), and each retransmission and reset, with the socket's
 * cookie, 4-tuple, smoothed RTT and retransmission count. Only watched sockets are reported: those
 * on a watched local port in the daemon's network namespace (a listener's, which catches its
 * accepted children before accept()), and those whose cookie is watched (a client socket,
 * registered before connect()). A watch lasts until it is removed; cookies are never reused. A
 * socket a port watch caught stays reported until it is gone, even when that port is unwatched
 * (a listener closed on reload keeps its accepted connections).
 *
 * Events come from an sd-event io source, at most KERNEL_BPF_EVENTS_PER_WAKEUP per dispatch; the
 * rest wait for the next iteration. The callback must not free the KernelBpf.
 *
 * Built without eBPF (cmake -DTCPEDU_BPF=OFF, or something missing at configure time), or on a
 * kernel that refuses the programs, kernel_bpf_open() fails and says why; the daemon then goes on
 * with TCP_INFO and sock_diag alone.
 *
 * A client socket's first event (CLOSE -> SYN_SENT) has sport 0: its port is chosen just after.
 * The step to CLOSE, and a reset sent after it, carry the local port the socket had, though the
 * kernel has given it back by then. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define KERNEL_BPF_EVENTS_PER_WAKEUP 64
#define KERNEL_BPF_MAX_PORTS 1024
#define KERNEL_BPF_MAX_COOKIES 65536

typedef struct KernelBpf KernelBpf;

typedef enum KernelEventKind {
        KERNEL_EVENT_STATE,
        KERNEL_EVENT_RETRANSMIT,
        KERNEL_EVENT_RESET_SENT,
        KERNEL_EVENT_RESET_RECEIVED,
        _KERNEL_EVENT_KIND_MAX,
} KernelEventKind;

typedef struct KernelEvent {
        KernelEventKind kind;
        uint64_t cookie; /* SO_COOKIE of the socket */
        uint64_t time_ns; /* CLOCK_MONOTONIC, the kernel's bpf_ktime_get_ns() */
        int old_state, new_state; /* the kernel's numbering; for other kinds both are the state at the time */
        uint32_t srtt_us, total_retrans;
        int family; /* AF_INET or AF_INET6 */
        uint8_t saddr[16], daddr[16]; /* IPv4 in the first 4 bytes */
        uint16_t sport, dport; /* host order; s = the socket's local end */
} KernelEvent;

typedef struct KernelBpfStats {
        uint64_t events, filtered, dropped;
} KernelBpfStats;

typedef void (*KernelEventFn)(void *userdata, const KernelEvent *ev);

/* Load and attach; events are delivered from an sd-event io source on ring_buffer__epoll_fd(). On
 * failure returns -errno and writes why (one line, e.g. "built without eBPF: bpftool not found",
 * "no BTF at /sys/kernel/btf/vmlinux", "loading the BPF program: Operation not permitted (needs CAP_BPF and CAP_PERFMON)"). */
int kernel_bpf_open(sd_event *event, KernelEventFn fn, void *userdata, KernelBpf **ret, char *why, size_t why_size);
KernelBpf *kernel_bpf_free(KernelBpf *k);
/* Whether the source can be had at all here (built with it, BTF present); why if not. Loading may
 * still fail (capabilities, the verifier): kernel_bpf_open() says so. */
bool kernel_bpf_available(char *why, size_t why_size);
/* Watch a local port (host order, not 0) or a socket cookie. Idempotent; -ENOSPC past
 * KERNEL_BPF_MAX_PORTS ports or KERNEL_BPF_MAX_COOKIES cookies. Unwatching what is not watched is
 * -ENOENT. */
int kernel_bpf_watch_port(KernelBpf *k, uint16_t port);
int kernel_bpf_unwatch_port(KernelBpf *k, uint16_t port);
int kernel_bpf_watch_cookie(KernelBpf *k, uint64_t cookie);
int kernel_bpf_unwatch_cookie(KernelBpf *k, uint64_t cookie);
/* Deliver every event the ring holds now, before returning (a change the kernel made before this
 * call is in the ring by then: the tracepoint runs before the state is set). A no-op from inside
 * the callback. */
void kernel_bpf_drain(KernelBpf *k);
/* events: delivered to the callback; dropped and filtered: summed over CPUs, read from the maps. */
void kernel_bpf_stats(KernelBpf *k, KernelBpfStats *ret);

static inline void kernel_bpf_freep(KernelBpf **k) {
        kernel_bpf_free(*k);
}
