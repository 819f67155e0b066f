/* SPDX-License-Identifier: MIT */
/* The eBPF state source: tcpstate.bpf.c loaded from its skeleton, its ring buffer read from the
 * daemon's loop, its watch maps and counters behind a small API (kernel-bpf.h). Without HAVE_BPF
 * only the failure remains, with the reason the build gave. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel-bpf.h"
#include "macro.h"

#define BTF_PATH "/sys/kernel/btf/vmlinux"

#ifndef TCPEDU_BPF_OFF_REASON
#define TCPEDU_BPF_OFF_REASON "TCPEDU_BPF is off"
#endif

_printf_(3, 4) static void say(char *why, size_t why_size, const char *fmt, ...) {
        va_list ap;

        if (!why || why_size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
}

bool kernel_bpf_available(char *why, size_t why_size) {
#if HAVE_BPF
        if (access(BTF_PATH, R_OK) < 0) {
                say(why, why_size, "no BTF at " BTF_PATH);
                return false;
        }
        return true;
#else
        say(why, why_size, "built without eBPF: %s", TCPEDU_BPF_OFF_REASON);
        return false;
#endif
}

#if HAVE_BPF

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tcpstate-event.h"
#include "tcpstate.skel.h"

_Static_assert(sizeof(struct tcpstate_event) == 72, "the event layout is shared with the BPF program");
_Static_assert(TCPSTATE_MAX_PORTS == KERNEL_BPF_MAX_PORTS && TCPSTATE_MAX_COOKIES == KERNEL_BPF_MAX_COOKIES, "one set of bounds");

struct KernelBpf {
        struct tcpstate_bpf *skel; /* the programs, attached, and their maps */
        struct ring_buffer *ring; /* libbpf's reader of skel->maps.events */
        sd_event_source *io; /* on ring_buffer__epoll_fd() */
        KernelEventFn fn;
        void *userdata;
        uint64_t events; /* delivered to fn */
        unsigned budget; /* events left to deliver in this dispatch */
        bool reading; /* inside ring_buffer__consume(): a drain from fn must not read the same record again */
};

static const KernelEventKind kind_of[_TCPSTATE_KIND_MAX] = {
        [TCPSTATE_KIND_STATE] = KERNEL_EVENT_STATE,
        [TCPSTATE_KIND_RETRANSMIT] = KERNEL_EVENT_RETRANSMIT,
        [TCPSTATE_KIND_RESET_SENT] = KERNEL_EVENT_RESET_SENT,
        [TCPSTATE_KIND_RESET_RECEIVED] = KERNEL_EVENT_RESET_RECEIVED,
};

/* libbpf prints its warnings to stderr by default; the daemon's output is the journal, and every
 * failure that matters is returned, with its reason, by kernel_bpf_open(). */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
        (void)level;
        (void)fmt;
        (void)ap;
        return 0;
}

/* Stopping with a negative value makes libbpf leave the rest of the ring for the next wakeup (the
 * record that returned it is consumed); this value is how on_ring_ready tells it from a failure. */
#define BUDGET_SPENT (-EAGAIN)

static int on_sample(void *ctx, void *data, size_t size) {
        KernelBpf *k = ctx;
        const struct tcpstate_event *e = data;
        KernelEvent ev;

        if (size < sizeof(*e) || e->kind >= _TCPSTATE_KIND_MAX)
                return 0; /* not something this program writes: skipped */
        ev = (KernelEvent){
                .kind = kind_of[e->kind],
                .cookie = e->cookie,
                .time_ns = e->time_ns,
                .old_state = e->old_state,
                .new_state = e->new_state,
                .srtt_us = e->srtt_us,
                .total_retrans = e->total_retrans,
                .family = e->family,
                .sport = e->sport,
                .dport = e->dport,
        };
        memcpy(ev.saddr, e->saddr, sizeof(ev.saddr));
        memcpy(ev.daddr, e->daddr, sizeof(ev.daddr));
        k->events++;
        k->fn(k->userdata, &ev);
        return --k->budget == 0 ? BUDGET_SPENT : 0;
}

/* The epoll fd stays readable while records are left (level-triggered all the way down), so a
 * bounded dispatch loses nothing: the loop comes back after the other sources had their turn. */
static int on_ring_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        KernelBpf *k = userdata;

        (void)s;
        (void)fd;
        (void)revents;
        if (k->reading)
                return 0;
        k->budget = KERNEL_BPF_EVENTS_PER_WAKEUP;
        k->reading = true;
        (void)ring_buffer__consume(k->ring);
        k->reading = false;
        return 0;
}

void kernel_bpf_drain(KernelBpf *k) {
        if (!k || k->reading)
                return;
        k->budget = UINT_MAX;
        k->reading = true;
        (void)ring_buffer__consume(k->ring);
        k->reading = false;
}

/* What a failed load most likely means, for the one line kernel_bpf_open() gives. */
static const char *load_hint(int r) {
        switch (r) {
        case -EPERM:
                return " (needs CAP_BPF and CAP_PERFMON)";
        case -EACCES:
                return " (refused by the verifier)";
        default:
                return "";
        }
}

static int load_and_attach(KernelBpf *k, char *why, size_t why_size) {
        struct stat st;
        int r;

        k->skel = tcpstate_bpf__open();
        if (!k->skel) {
                r = negative_errno();
                say(why, why_size, "opening the BPF object: %s", strerror(-r));
                return r;
        }
        /* port watches are for this namespace's sockets only; cookies are unique machine-wide */
        if (stat("/proc/self/ns/net", &st) >= 0)
                k->skel->rodata->netns_ino = (uint32_t)st.st_ino;
        r = tcpstate_bpf__load(k->skel);
        if (r < 0) {
                say(why, why_size, "loading the BPF program: %s%s", strerror(-r), load_hint(r));
                return r;
        }
        r = tcpstate_bpf__attach(k->skel);
        if (r < 0) {
                say(why, why_size, "attaching the BPF programs: %s", strerror(-r));
                return r;
        }
        return 0;
}

int kernel_bpf_open(sd_event *event, KernelEventFn fn, void *userdata, KernelBpf **ret, char *why, size_t why_size) {
        _cleanup_(kernel_bpf_freep) KernelBpf *k = NULL;
        int r;

        if (!event || !fn || !ret) {
                say(why, why_size, "invalid arguments");
                return -EINVAL;
        }
        if (access(BTF_PATH, R_OK) < 0) {
                r = negative_errno();
                say(why, why_size, "no BTF at " BTF_PATH);
                return r;
        }
        libbpf_set_print(libbpf_quiet);

        k = calloc(1, sizeof(*k));
        if (!k) {
                say(why, why_size, "out of memory");
                return -ENOMEM;
        }
        k->fn = fn;
        k->userdata = userdata;
        r = load_and_attach(k, why, why_size);
        if (r < 0)
                return r;
        k->ring = ring_buffer__new(bpf_map__fd(k->skel->maps.events), on_sample, k, NULL);
        if (!k->ring) {
                r = negative_errno();
                say(why, why_size, "reading the ring buffer: %s", strerror(-r));
                return r;
        }
        r = sd_event_add_io(event, &k->io, ring_buffer__epoll_fd(k->ring), EPOLLIN, on_ring_ready, k);
        if (r < 0) {
                say(why, why_size, "watching the ring buffer: %s", strerror(-r));
                return r;
        }
        (void)sd_event_source_set_description(k->io, "kernel-bpf");
        *ret = TAKE_PTR(k);
        return 0;
}

KernelBpf *kernel_bpf_free(KernelBpf *k) {
        if (!k)
                return NULL;
        sd_event_source_disable_unref(k->io);
        ring_buffer__free(k->ring);
        tcpstate_bpf__destroy(k->skel);
        free(k);
        return NULL;
}

static int watch(struct bpf_map *map, const void *key, size_t key_size) {
        const uint8_t one = 1;
        int r;

        r = bpf_map__update_elem(map, key, key_size, &one, sizeof(one), BPF_ANY);
        return r == -E2BIG ? -ENOSPC : r; /* a full hash map says E2BIG */
}

int kernel_bpf_watch_port(KernelBpf *k, uint16_t port) {
        if (!k || port == 0) /* 0: every socket without a port */
                return -EINVAL;
        return watch(k->skel->maps.watched_ports, &port, sizeof(port));
}

int kernel_bpf_unwatch_port(KernelBpf *k, uint16_t port) {
        if (!k)
                return -EINVAL;
        return bpf_map__delete_elem(k->skel->maps.watched_ports, &port, sizeof(port), 0);
}

int kernel_bpf_watch_cookie(KernelBpf *k, uint64_t cookie) {
        if (!k)
                return -EINVAL;
        return watch(k->skel->maps.watched_cookies, &cookie, sizeof(cookie));
}

int kernel_bpf_unwatch_cookie(KernelBpf *k, uint64_t cookie) {
        if (!k)
                return -EINVAL;
        return bpf_map__delete_elem(k->skel->maps.watched_cookies, &cookie, sizeof(cookie), 0);
}

/* One slot of the per-CPU counters, summed; 0 when it cannot be read. */
static uint64_t counter(KernelBpf *k, uint32_t slot) {
        _cleanup_(freep) uint64_t *values = NULL;
        int ncpus = libbpf_num_possible_cpus();
        uint64_t sum = 0;

        if (ncpus <= 0)
                return 0;
        values = calloc(ncpus, sizeof(*values));
        if (!values || bpf_map__lookup_elem(k->skel->maps.stats, &slot, sizeof(slot), values, ncpus * sizeof(*values), 0) < 0)
                return 0;
        for (int i = 0; i < ncpus; i++)
                sum += values[i];
        return sum;
}

void kernel_bpf_stats(KernelBpf *k, KernelBpfStats *ret) {
        *ret = (KernelBpfStats){};
        if (!k)
                return;
        ret->events = k->events;
        ret->dropped = counter(k, TCPSTATE_STAT_DROPPED);
        ret->filtered = counter(k, TCPSTATE_STAT_FILTERED);
}

#else /* !HAVE_BPF */

int kernel_bpf_open(sd_event *event, KernelEventFn fn, void *userdata, KernelBpf **ret, char *why, size_t why_size) {
        (void)event;
        (void)fn;
        (void)userdata;
        (void)ret;
        say(why, why_size, "built without eBPF: %s", TCPEDU_BPF_OFF_REASON);
        return -EOPNOTSUPP;
}

KernelBpf *kernel_bpf_free(KernelBpf *k) {
        (void)k; /* never made */
        return NULL;
}

int kernel_bpf_watch_port(KernelBpf *k, uint16_t port) {
        (void)k;
        (void)port;
        return -EOPNOTSUPP;
}

int kernel_bpf_unwatch_port(KernelBpf *k, uint16_t port) {
        (void)k;
        (void)port;
        return -EOPNOTSUPP;
}

int kernel_bpf_watch_cookie(KernelBpf *k, uint64_t cookie) {
        (void)k;
        (void)cookie;
        return -EOPNOTSUPP;
}

int kernel_bpf_unwatch_cookie(KernelBpf *k, uint64_t cookie) {
        (void)k;
        (void)cookie;
        return -EOPNOTSUPP;
}

void kernel_bpf_stats(KernelBpf *k, KernelBpfStats *ret) {
        (void)k;
        *ret = (KernelBpfStats){};
}

void kernel_bpf_drain(KernelBpf *k) {
        (void)k;
}

#endif
