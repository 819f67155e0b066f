/* SPDX-License-Identifier: MIT */
/* conn: the eBPF kernel source's events applied to connections (conn-kernel.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "config.h"
#include "conn-internal.h"
#include "conn-kernel.h"
#include "kernel-bpf.h"
#include "macro.h"
#include "server.h"

#define BUCKETS 16384 /* a power of two */
#define FALLBACK_WARNINGS_PER_SEC 10

typedef struct Held {
        KernelEvent ev;
        uint64_t held_usec; /* when the daemon read it (CLOCK_MONOTONIC): a stopped daemon reads old events */
        bool claimed;
} Held;

struct ConnKernel {
        Core *core;
        KernelBpf *bpf;
        Conn *buckets[BUCKETS]; /* cookie -> tracked connection, chained through kernel_next */
        uint16_t port_users[UINT16_MAX + 1]; /* listeners per watched port */
        Held held[CONN_KERNEL_HELD_MAX]; /* a FIFO of events for cookies not known yet */
        size_t held_head, held_n;
        uint64_t last_dropped;
        sd_event_source *check; /* once a second: were events lost? */
        uint64_t warn_window_usec; /* fall-back warnings: at most FALLBACK_WARNINGS_PER_SEC, the rest counted */
        unsigned warned;
        uint64_t suppressed;
        ConnKernelStats st;
};

static size_t bucket_of(uint64_t cookie) {
        return (size_t)((cookie * 0x9e3779b97f4a7c15ULL) >> 50) & (BUCKETS - 1);
}

static Conn *lookup(ConnKernel *k, uint64_t cookie) {
        for (Conn *c = k->buckets[bucket_of(cookie)]; c; c = c->kernel_next)
                if (c->kernel_cookie == cookie)
                        return c;
        return NULL;
}

static void map_remove(ConnKernel *k, Conn *c) {
        for (Conn **p = &k->buckets[bucket_of(c->kernel_cookie)]; *p; p = &(*p)->kernel_next)
                if (*p == c) {
                        *p = c->kernel_next;
                        c->kernel_next = NULL;
                        return;
                }
}

/* ---- events held until accept() ---- */

/* Drop what is claimed or too old from the front. */
static void held_trim(ConnKernel *k) {
        uint64_t now = core_now(k->core, CLOCK_MONOTONIC);
        while (k->held_n) {
                Held *h = &k->held[k->held_head];
                if (!h->claimed && h->held_usec + CONN_KERNEL_HELD_USEC > now)
                        break;
                if (!h->claimed)
                        k->st.unmatched++;
                k->held_head = (k->held_head + 1) % CONN_KERNEL_HELD_MAX;
                k->held_n--;
        }
}

static void hold(ConnKernel *k, const KernelEvent *ev) {
        held_trim(k);
        if (k->held_n == CONN_KERNEL_HELD_MAX) {
                /* the oldest goes: its connection, if one is accepted, will miss a step and fall back */
                k->held_head = (k->held_head + 1) % CONN_KERNEL_HELD_MAX;
                k->held_n--;
                if (k->st.held_overflow++ == 0)
                        log_msg(k->core, LOG_WARNING, MID_LIMIT,
                                "eBPF source: more than %u events wait for accept(): the oldest are dropped; their connections "
                                "fall back to TCP_INFO",
                                CONN_KERNEL_HELD_MAX);
        }
        k->held[(k->held_head + k->held_n) % CONN_KERNEL_HELD_MAX] = (Held){ .ev = *ev, .held_usec = core_now(k->core, CLOCK_MONOTONIC) };
        k->held_n++;
        k->st.held++;
}

/* ---- records ---- */

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static const char *kind_word(KernelEventKind kind) {
        return kind == KERNEL_EVENT_RETRANSMIT ? "retransmit" : kind == KERNEL_EVENT_RESET_SENT ? "sent" : "received";
}

static void log_kernel_event(Conn *c, const KernelEvent *ev) {
        Core *m = c->server->core;
        LogEntry e;
        bool rtx = ev->kind == KERNEL_EVENT_RETRANSMIT;
        const char *state = tcp_state_to_string(tcp_state_from_kernel(ev->new_state));

        if (!core_wants_events(m))
                return;
        log_entry_init(&e, rtx ? LOG_INFO : LOG_NOTICE, rtx ? MID_RETRANSMIT : MID_RESET);
        if (rtx)
                log_entry_add(&e, "MESSAGE", "%s %s: retransmission %" PRIu32 " in %s (srtt %" PRIu32 " us)",
                              c->session ? "Session" : "Connection", c->id, ev->total_retrans, state ? state : "?", ev->srtt_us);
        else
                log_entry_add(&e, "MESSAGE", "%s %s: reset %s in %s", c->session ? "Session" : "Connection", c->id, kind_word(ev->kind),
                              state ? state : "?");
        log_entry_add(&e, "TCPEDU_EVENT", "%s", rtx ? "retransmit" : "reset");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_STATE", "%s", state ? state : "?");
        if (rtx)
                log_entry_add(&e, "TCPEDU_RETRANSMITS", "%" PRIu32, ev->total_retrans);
        else
                log_entry_add(&e, "TCPEDU_DIRECTION", "%s", kind_word(ev->kind));
        log_entry_add(&e, "TCPEDU_SRTT_USEC", "%" PRIu32, ev->srtt_us);
        log_entry_add(&e, "TCPEDU_STATE_SOURCE", "bpf");
        log_entry_add(&e, "TCPEDU_KERNEL_TIME_NSEC", "%" PRIu64, ev->time_ns);
        log_entry_add(&e, "TCPEDU_MONOTONIC_USEC", "%" PRIu64, now_monotonic_usec());
        core_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

/* A new second of fall-back warnings; what the last one did not say is said in one line. */
static void warn_window(ConnKernel *k) {
        uint64_t now = core_now(k->core, CLOCK_MONOTONIC);
        if (now < k->warn_window_usec + USEC_PER_SEC)
                return;
        if (k->suppressed)
                log_msg(k->core, LOG_WARNING, MID_KERNEL_SOURCE, "eBPF source: %" PRIu64 " more connections fell back to TCP_INFO",
                        k->suppressed);
        k->warn_window_usec = now;
        k->warned = 0;
        k->suppressed = 0;
}

_printf_(2, 3) static void fall_back(Conn *c, const char *fmt, ...) {
        ConnKernel *k = c->server->core->kernel;
        char why[192];
        va_list ap;
        if (!c->kernel_tracked)
                return;
        c->kernel_tracked = false;
        k->st.fallbacks++;
        warn_window(k);
        if (k->warned >= FALLBACK_WARNINGS_PER_SEC) {
                k->suppressed++;
                return;
        }
        k->warned++;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_msg(c->server->core, LOG_WARNING, MID_KERNEL_SOURCE, "%s %s: eBPF source: %s: TCP_INFO from now on",
                c->session ? "session" : "connection", c->id, why);
}

/* What the daemon did that set a close going is the cause of the close's first step. */
static const char *step_cause(Conn *c, TcpState from, TcpState to) {
        if (!c->close_reason)
                return NULL;
        if ((from == TCP_STATE_ESTABLISHED && to == TCP_STATE_FIN_WAIT_1) || (from == TCP_STATE_CLOSE_WAIT && to == TCP_STATE_LAST_ACK) ||
            (to == TCP_STATE_CLOSED && from != TCP_STATE_LAST_ACK && from != TCP_STATE_TIME_WAIT && from != TCP_STATE_SYN_SENT))
                return c->close_reason;
        return NULL;
}

static void apply_state(ConnKernel *k, Conn *c, const KernelEvent *ev) {
        TcpState from = tcp_state_from_kernel(ev->old_state), to = tcp_state_from_kernel(ev->new_state);
        int kstate = ev->new_state;
        const char *kvia = "inet_sock_set_state";

        if (from < 0 || to < 0)
                return;
        if (from != c->state) {
                fall_back(c, "the kernel went %s -> %s while the last step recorded is to %s", tcp_state_to_string(from),
                          tcp_state_to_string(to), tcp_state_to_string(c->state));
                return;
        }
        if (to == TCP_STATE_CLOSED && (from == TCP_STATE_FIN_WAIT_2 || from == TCP_STATE_FIN_WAIT_1 || from == TCP_STATE_CLOSING) &&
            !c->dead) {
                /* the full socket closes as a time-wait socket takes the 4-tuple over: ask at once */
                SockDiagResult d;
                if (sock_diag_lookup(k->core->diag_fd, &c->local.sa, &c->peer.sa, &d) == 0 && d.state == 6 /* TIME_WAIT */) {
                        to = TCP_STATE_TIME_WAIT;
                        kstate = d.state;
                        kvia = "inet_sock_set_state+sock_diag";
                }
        }
        c->kernel_ns = ev->time_ns;
        conn_set_state_full(c, to, STATE_SOURCE_BPF, kstate, kvia, step_cause(c, from, to), false);
        c->kernel_ns = 0;
        /* a lingering connection's end is known now: its watch need not wait for the next poll */
        if (c->lingering && c->state == TCP_STATE_CLOSED && c->timer)
                (void)conn_timer_start(c, core_now(k->core, CLOCK_MONOTONIC), NULL);
}

static void apply(ConnKernel *k, Conn *c, const KernelEvent *ev) {
        if (!c->kernel_tracked)
                return;
        switch (ev->kind) {
        case KERNEL_EVENT_STATE:
                apply_state(k, c, ev);
                break;
        case KERNEL_EVENT_RETRANSMIT:
                c->retransmits++;
                k->st.retransmits++;
                log_kernel_event(c, ev);
                break;
        case KERNEL_EVENT_RESET_SENT:
                c->resets_sent++;
                k->st.resets_sent++;
                log_kernel_event(c, ev);
                break;
        case KERNEL_EVENT_RESET_RECEIVED:
                c->resets_received++;
                k->st.resets_received++;
                log_kernel_event(c, ev);
                break;
        default:
                break;
        }
}

static void check_dropped(ConnKernel *k) {
        KernelBpfStats s;
        kernel_bpf_stats(k->bpf, &s);
        if (s.dropped == k->last_dropped)
                return;
        log_msg(k->core, LOG_WARNING, MID_LIMIT,
                "eBPF source: the ring buffer was full: %" PRIu64 " events lost; the connections they belonged to fall back to TCP_INFO",
                s.dropped - k->last_dropped);
        k->last_dropped = s.dropped;
        /* whose? the ones whose recorded state is not the kernel's any more */
        for (size_t i = 0; i < BUCKETS; i++)
                for (Conn *c = k->buckets[i], *next; c; c = next) {
                        next = c->kernel_next;
                        int ks = c->fd >= 0 ? tcp_kernel_state(c->fd) : -1;
                        if (ks > 0 && ks != 7 && tcp_state_from_kernel(ks) != c->state)
                                fall_back(c, "events lost with the ring buffer full");
                }
}

static void on_event(void *userdata, const KernelEvent *ev) {
        ConnKernel *k = userdata;
        Conn *c = lookup(k, ev->cookie);
        k->st.events++;
        if (c)
                apply(k, c, ev);
        else
                hold(k, ev);
}

/* A lost event shows as a gap at the next event of the same socket; the counter, read once a
 * second, finds the connections that had no event since. */
static int on_check(sd_event_source *source, uint64_t usec, void *userdata) {
        ConnKernel *k = userdata;
        check_dropped(k);
        held_trim(k);
        warn_window(k);
        sd_event_source_set_time(source, usec + USEC_PER_SEC);
        return 0;
}

/* ---- the API ---- */

int conn_kernel_start(Core *core, int kernel_source, char *why, size_t why_size) {
        ConnKernel *k;
        int r;

        if (kernel_source == KERNEL_SOURCE_TCP_INFO) {
                snprintf(why, why_size, "kernel_source = tcp_info");
                return 0;
        }
        k = calloc(1, sizeof(*k));
        if (!k) {
                snprintf(why, why_size, "out of memory");
                return kernel_source == KERNEL_SOURCE_BPF ? -ENOMEM : 0;
        }
        k->core = core;
        r = kernel_bpf_open(core->event, on_event, k, &k->bpf, why, why_size);
        if (r < 0) {
                free(k);
                return kernel_source == KERNEL_SOURCE_BPF ? r : 0;
        }
        r = sd_event_add_time_relative(core->event, &k->check, CLOCK_MONOTONIC, USEC_PER_SEC, 100 * USEC_PER_MSEC, on_check, k);
        if (r >= 0)
                r = sd_event_source_set_enabled(k->check, SD_EVENT_ON);
        if (r < 0) {
                snprintf(why, why_size, "no timer for the eBPF source: %s", strerror(-r));
                kernel_bpf_free(k->bpf);
                free(k);
                return kernel_source == KERNEL_SOURCE_BPF ? r : 0;
        }
        core->kernel = k;
        snprintf(why, why_size, "kernel_source = %s", kernel_source == KERNEL_SOURCE_BPF ? "bpf" : "auto, and the eBPF programs loaded");
        return 0;
}

void conn_kernel_stop(Core *core) {
        ConnKernel *k = core->kernel;
        if (!k)
                return;
        for (size_t i = 0; i < BUCKETS; i++)
                for (Conn *c = k->buckets[i], *next; c; c = next) {
                        next = c->kernel_next;
                        c->kernel_next = NULL;
                        c->kernel_tracked = false;
                }
        sd_event_source_disable_unref(k->check);
        kernel_bpf_free(k->bpf);
        free(k);
        core->kernel = NULL;
}

bool conn_kernel_active(Core *core) {
        return core->kernel != NULL;
}

bool conn_kernel_watch_port(Core *core, uint16_t port) {
        ConnKernel *k = core->kernel;
        if (!k || port == 0)
                return false;
        if (k->port_users[port] == 0 && kernel_bpf_watch_port(k->bpf, port) < 0) {
                log_msg(core, LOG_WARNING, MID_LIMIT, "eBPF source: cannot watch port %u: its connections use TCP_INFO", port);
                return false;
        }
        k->port_users[port]++;
        return true;
}

void conn_kernel_unwatch_port(Core *core, uint16_t port) {
        ConnKernel *k = core->kernel;
        if (!k || k->port_users[port] == 0)
                return;
        if (--k->port_users[port] == 0)
                (void)kernel_bpf_unwatch_port(k->bpf, port);
}

/* An accepted socket: its steps so far, from the held events, in the kernel's order. */
static bool claim_held(ConnKernel *k, Conn *c) {
        bool any = false;
        kernel_bpf_drain(k->bpf);
        for (size_t i = 0; i < k->held_n && c->kernel_tracked; i++) {
                Held *h = &k->held[(k->held_head + i) % CONN_KERNEL_HELD_MAX];
                if (h->claimed || h->ev.cookie != c->kernel_cookie)
                        continue;
                h->claimed = true;
                any = true;
                apply(k, c, &h->ev);
        }
        held_trim(k);
        return any;
}

bool conn_kernel_track(Conn *c, bool accepted) {
        Core *m = c->server->core;
        ConnKernel *k = m->kernel;
        uint64_t cookie = 0;
        socklen_t len = sizeof(cookie);

        if (!k || c->fd < 0 || getsockopt(c->fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0 || cookie == 0)
                return false;
        c->diag_cookie = c->kernel_cookie = cookie;
        if (!accepted && kernel_bpf_watch_cookie(k->bpf, cookie) < 0) {
                k->st.fallbacks++;
                log_msg(m, LOG_WARNING, MID_LIMIT, "session %s: eBPF source: cannot watch its socket (%u watched at most): TCP_INFO", c->id,
                        KERNEL_BPF_MAX_COOKIES);
                return false;
        }
        size_t b = bucket_of(cookie);
        c->kernel_next = k->buckets[b];
        k->buckets[b] = c;
        c->kernel_tracked = true;
        if (!accepted)
                return true;
        c->state = TCP_STATE_LISTEN; /* a child is a clone of its listener: its first step is LISTEN -> SYN_RECEIVED */
        claim_held(k, c);
        int ks = tcp_kernel_state(c->fd);
        if (c->kernel_tracked && (c->n_timeline == 0 || (ks > 0 && ks != 7 && tcp_state_from_kernel(ks) != c->state)))
                fall_back(c, "its first steps were not all seen (lost before accept())");
        return c->kernel_tracked;
}

void conn_kernel_untrack(Conn *c) {
        ConnKernel *k = c->server->core->kernel;
        if (!k || !c->kernel_cookie || lookup(k, c->kernel_cookie) != c)
                return;
        map_remove(k, c);
        if (c->session)
                (void)kernel_bpf_unwatch_cookie(k->bpf, c->kernel_cookie);
        c->kernel_tracked = false;
}

void conn_kernel_drain(Core *core) {
        if (core->kernel)
                kernel_bpf_drain(core->kernel->bpf);
}

bool conn_kernel_other_source(Conn *c, TcpState to, const char *kvia) {
        if (!c->kernel_tracked)
                return true;
        conn_kernel_drain(c->server->core);
        if (!c->kernel_tracked)
                return true;
        if (to == c->state)
                return false;
        /* a state the tracepoint has already recorded, and moved on from (no state but the CLOSED a
         * session starts in comes twice) */
        for (unsigned i = 0; i < c->n_timeline && to != TCP_STATE_CLOSED; i++)
                if (c->timeline[i].state == to)
                        return false;
        /* TIME_WAIT and its end are sock_diag's to tell */
        if (kvia && strcmp(kvia, "sock_diag") == 0 && (to == TCP_STATE_TIME_WAIT || c->state == TCP_STATE_TIME_WAIT))
                return true;
        fall_back(c, "%s sees %s, the tracepoint's last step is to %s", kvia ? kvia : "the daemon", tcp_state_to_string(to),
                  tcp_state_to_string(c->state));
        return true;
}

void conn_kernel_stats(Core *core, ConnKernelStats *ret) {
        ConnKernel *k = core->kernel;
        *ret = (ConnKernelStats){};
        if (!k)
                return;
        KernelBpfStats s;
        kernel_bpf_stats(k->bpf, &s);
        *ret = k->st;
        ret->bpf = true;
        ret->filtered = s.filtered;
        ret->dropped = s.dropped;
}
