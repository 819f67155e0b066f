/* SPDX-License-Identifier: MIT */
#pragma once

/* The referee's independent observer of the kernel: bpftrace on the TCP tracepoints
 * (referee/observe.bt) for every state change of a socket with a port in [lo, hi), and a sock_diag
 * poller for the time-wait sockets of those ports, whose life no tracepoint shows. Times are
 * CLOCK_MONOTONIC nanoseconds. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OBS_ADDR_MAX 64

typedef struct KEvent {
        char type; /* 'S' state change, 'R' retransmission, 'T' RST sent, 'X' RST received */
        uint64_t ns;
        unsigned long seq; /* order of arrival: breaks ties of ns */
        int pid;
        uint64_t sk;
        int family; /* 4 or 6; 0 for 'T' */
        char local[OBS_ADDR_MAX], remote[OBS_ADDR_MAX]; /* "ADDR:PORT", "[ADDR]:PORT" */
        uint16_t sport, dport;
        int oldstate, newstate; /* 'S'; 'R' and 'T': newstate is the socket's state */
} KEvent;

/* One time-wait socket (sock_diag shows its substate: FIN_WAIT2 or TIME_WAIT) from first to last
 * sight. The times are poll times: the change happened between the last poll that did not see it
 * and the first that did. */
typedef struct TwObs {
        char local[OBS_ADDR_MAX], remote[OBS_ADDR_MAX];
        int first_substate; /* Linux's number: 5 FIN_WAIT2, 6 TIME_WAIT */
        uint64_t first_ns, prev_poll_ns; /* prev_poll_ns: the poll before the first sight */
        uint64_t tw_lo_ns, tw_hi_ns; /* substate became TIME_WAIT between these (0: never seen) */
        uint64_t last_ns, end_ns; /* end_ns: the first poll that did not see it; 0 while it lives */
} TwObs;

/* Start bpftrace on SCRIPT for ports [lo, hi), mounting tracefs when needed, and wait until every
 * probe is attached; start the time-wait poller. 0, or -1 with a reason in why (skip the test). */
int observer_start(const char *script, uint16_t lo, uint16_t hi, char *why, size_t why_size);
/* Stop bpftrace and the poller, unmount tracefs if observer_start mounted it. Idempotent. */
void observer_stop(void);
/* Listen and close on port sync_port (in range): returns once the observer printed that event, so
 * that every earlier event has been read. false on timeout. */
bool observer_sync(uint16_t sync_port, int timeout_ms);
/* Events so far, sorted by time (a copy, caller frees). Lost events (bpftrace's "Lost N events")
 * are counted in ret_lost. */
KEvent *observer_events(size_t *ret_n, unsigned long *ret_lost);
/* Time-wait sockets seen so far (a copy, caller frees). */
TwObs *observer_timewaits(size_t *ret_n);
/* Time-wait sockets with a port in range alive now. */
size_t observer_timewaits_alive(void);
uint64_t mono_ns(void);
