/* SPDX-License-Identifier: MIT */
/* The core: the loop's clock, deferred freeing, the event sinks, the daemon's own log lines and
 * the connection layer's shared state. It calls nothing above it: news goes up through the sinks
 * and hooks that higher layers register. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "kernel-bpf.h"
#include "kernel-tcp.h"
#include "macro.h"

uint64_t core_random(Core *core) {
        uint64_t s1 = core->rng[0];
        const uint64_t s0 = core->rng[1];
        core->rng[0] = s0;
        s1 ^= s1 << 23;
        core->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        return core->rng[1] + s0;
}

uint64_t core_now(Core *core, clockid_t clock) {
        uint64_t t = 0;
        (void)sd_event_now(core->event, clock, &t);
        return t;
}

void log_msg(Core *core, int priority, const char *message_id, const char *fmt, ...) {
        LogEntry e;
        char msg[2048];
        va_list ap;

        if (priority > core->log_level)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_entry_init(&e, priority, message_id);
        log_entry_add(&e, "MESSAGE", "%s", msg);
        journal_submit(core->journal, &e);
}

bool core_wants_events(Core *core) {
        if (core->log_transitions == LOG_TRANSITIONS_ALL)
                return true;
        for (size_t i = 0; i < core->n_sinks; i++)
                if (core->sinks[i].wants(core->sinks[i].userdata))
                        return true;
        return false;
}

void core_emit(Core *core, const LogEntry *e, bool to_journal) {
        if (to_journal)
                journal_submit(core->journal, e);
        for (size_t i = 0; i < core->n_sinks; i++)
                if (core->sinks[i].wants(core->sinks[i].userdata))
                        core->sinks[i].deliver(core->sinks[i].userdata, e);
}

int core_add_sink(Core *core, const EventSink *sink) {
        if (core->n_sinks >= CORE_SINKS_MAX)
                return -ENOSPC;
        core->sinks[core->n_sinks++] = *sink;
        return 0;
}

void core_remove_sink(Core *core, void *userdata) {
        for (size_t i = 0; i < core->n_sinks; i++)
                if (core->sinks[i].userdata == userdata) {
                        memmove(&core->sinks[i], &core->sinks[i + 1], (core->n_sinks - i - 1) * sizeof(EventSink));
                        core->n_sinks--;
                        return;
                }
}

void core_session_event(Core *core, Session *s, SessionEvent ev) {
        if (core->session_event)
                core->session_event(core->session_event_userdata, s, ev);
}

void core_defer_free(Core *core, Deferred *d) {
        list_append(&core->dead, &d->node);
        if (core->gc_source)
                sd_event_source_set_enabled(core->gc_source, SD_EVENT_ONESHOT);
}

void core_run_deferred(Core *core) {
        while (!list_empty(&core->dead)) {
                Deferred *d = list_first(&core->dead, Deferred, node);
                list_remove(&d->node);
                d->free(d);
        }
}

static int on_gc(sd_event_source *source, void *userdata) {
        (void)source;
        core_run_deferred(userdata);
        return 0;
}

void core_exit(Core *core) {
        sd_event_exit(core->event, core->exit_code);
}

void core_conn_gone(Core *core) {
        if (core->stopping && core->n_conns == 0)
                core_exit(core);
}

int core_add_accept_source(Core *core, sd_event_source *source) {
        for (size_t i = 0; i < ELEMENTSOF(core->accept_sources); i++)
                if (!core->accept_sources[i]) {
                        core->accept_sources[i] = source;
                        return 0;
                }
        return -ENOSPC;
}

int core_init(Core *core, const Config *config, LogTarget target) {
        int r;

        core->log_level = config->daemon.log_level;
        core->log_transitions = config->daemon.log_transitions;
        core->epoll_fd = core->diag_fd = core->spare_fd = -1;
        list_init(&core->closing);
        list_init(&core->lingering);
        list_init(&core->dead);
        list_init(&core->flush);
        /* An empty config to apply the real one against: start-up is a reload from nothing. */
        core->config = calloc(1, sizeof(Config));
        if (!core->config)
                return -ENOMEM;
        r = journal_new(target, &core->journal);
        if (r < 0)
                return r;
        r = sd_event_default(&core->event);
        if (r < 0)
                return r;
        core->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (core->epoll_fd < 0)
                return negative_errno();
        r = sd_event_add_defer(core->event, &core->gc_source, on_gc, core);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(core->gc_source, SD_EVENT_OFF);
        /* Run last in an iteration, after every I/O callback that might still look at a dead conn. */
        sd_event_source_set_priority(core->gc_source, SD_EVENT_PRIORITY_IDLE);
        core->diag_fd = sock_diag_open();
        if (core->diag_fd < 0)
                return core->diag_fd;
        core->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        core->start_usec = core_now(core, CLOCK_REALTIME);
        sd_id128_t seed;
        if (sd_id128_randomize(&seed) < 0)
                seed = (sd_id128_t){ .qwords = { core->start_usec, (uint64_t)getpid() } };
        core->rng[0] = seed.qwords[0] | 1;
        core->rng[1] = seed.qwords[1];
        return 0;
}

void core_done(Core *core) {
        core_run_deferred(core);
        core->gc_source = sd_event_source_disable_unref(core->gc_source);
        core->accept_resume_timer = sd_event_source_disable_unref(core->accept_resume_timer);
        core->epoll_fd = safe_close(core->epoll_fd);
        core->diag_fd = safe_close(core->diag_fd);
        core->spare_fd = safe_close(core->spare_fd);
        passed_fds_done(&core->passed);
        core->event = sd_event_unref(core->event);
        core->journal = journal_free(core->journal);
        core->config = config_free(core->config);
}

int kernel_source_validate(const Config *c, ConfigErrors *errs) {
        char why[256];
        if (c->daemon.kernel_source != KERNEL_SOURCE_BPF || kernel_bpf_available(why, sizeof(why)))
                return 0;
        ConfigOrigin o = config_daemon_key_origin(c, "kernel_source");
        config_errors_add(errs, o.line ? config_origin_file(c, o) : c->main_path, o.line,
                          "kernel_source = bpf: the eBPF source cannot be used here: %s (use auto or tcp_info)", why);
        return -EINVAL;
}
