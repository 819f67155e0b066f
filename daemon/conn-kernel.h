/* SPDX-License-Identifier: MIT */
#pragma once

/* The eBPF kernel source applied to connections (kernel_source = bpf, or auto where it loads).
 *
 * A tracked connection's transition records come from the kernel's tracepoint alone, each as it
 * happened, with TCPEDU_STATE_SOURCE=bpf and the kernel's timestamp; the rest of the daemon still
 * decides when to close, linger and free with TCP_INFO and sock_diag, and every such look drains the
 * ring first, so that what the kernel did is recorded before anything is concluded from it. The
 * exceptions are the kernel's: TIME_WAIT (the tracepoint shows the full socket closing when the
 * time-wait socket takes over, and nothing when that one dies) comes from sock_diag, asked at once.
 *
 * A connection falls back to TCP_INFO for the rest of its life, with a record saying so, when its
 * events cannot be trusted to be complete: some were lost (the ring or the pre-accept queue was
 * full), or the cookie could not be watched. Events for sockets the daemon does not know yet
 * (accepted children before accept()) are held, bounded, for a short while. */

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "core.h"

typedef struct ConnKernel ConnKernel;

#define CONN_KERNEL_HELD_MAX 2048 /* events held for sockets not accepted yet */
#define CONN_KERNEL_HELD_USEC (2 * USEC_PER_SEC) /* then they are dropped as unmatched */

typedef struct ConnKernelStats {
        bool bpf; /* the eBPF source is in use */
        uint64_t events, filtered, dropped; /* delivered by the ring; hooks that ran for sockets not ours; lost (ring full) */
        uint64_t held, unmatched, held_overflow; /* held for a later accept(); never claimed; dropped with the queue full */
        uint64_t fallbacks; /* connections that went back to TCP_INFO */
        uint64_t retransmits, resets_sent, resets_received;
} ConnKernelStats;

/* Open the source kernel_source asks for. auto: bpf if it loads, else tcp_info (why says why).
 * bpf: -errno with why when it cannot load. tcp_info: nothing to open. */
int conn_kernel_start(Core *core, int kernel_source, char *why, size_t why_size);
void conn_kernel_stop(Core *core);
bool conn_kernel_active(Core *core);
/* A listener's port: its accepted children are seen from their first step. Counted: the port is
 * watched while one listener or more has it. true if watched (to be unwatched once). */
bool conn_kernel_watch_port(Core *core, uint16_t port);
void conn_kernel_unwatch_port(Core *core, uint16_t port);
/* Track c from now on: an accepted socket (its held steps are recorded now) or a client socket
 * before connect(). false: not tracked (no source, or its steps cannot all be had): TCP_INFO. */
bool conn_kernel_track(Conn *c, bool accepted);
void conn_kernel_untrack(Conn *c);
/* Record what the ring holds now (before any look at TCP_INFO or sock_diag). */
void conn_kernel_drain(Core *core);
/* A tracked connection is about to record a step from another source: false if the bpf source
 * already had it (nothing to record); true to record it (TIME_WAIT's life is sock_diag's; anything
 * else means events were lost, and c falls back to TCP_INFO). */
bool conn_kernel_other_source(Conn *c, TcpState to, const char *kvia);
void conn_kernel_stats(Core *core, ConnKernelStats *ret);
