/* SPDX-License-Identifier: MIT */
#pragma once

/* The core: what every module of the daemon shares and nothing above it is named in. The loop and
 * its clock, the log pipeline, deferred freeing, the event sinks that per-connection events go to
 * (the journal always; control's monitors and watchers when they subscribe), and the state of the
 * connection layer (the poller, the lists a connection moves through on its way out, the
 * counters). Manager embeds one; lower layers reach it as server->core. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "journal.h"
#include "list.h"
#include "passed-fds.h"
#include "tcpedud.h"

#define READ_CHUNK (64 * 1024) /* shared read buffer: one for the whole daemon */
#define POLL_BATCH 128 /* epoll events handled per dispatch */
#define CORE_SINKS_MAX 4
#define CORE_ACCEPT_SOURCES_MAX 2

/* Something that wants the daemon's per-connection and chat events: control's monitors, say. */
typedef struct EventSink {
        /* an entry was made (and, if to_journal, submitted to the journal) */
        void (*deliver)(void *userdata, const LogEntry *e);
        /* true while it wants entries built at all (a monitor or watcher is attached) */
        bool (*wants)(void *userdata);
        void *userdata;
} EventSink;

/* Something freed at the next safe point (after every callback of this loop iteration returned),
 * never inside the I/O helper that decided to free it. */
typedef struct Deferred {
        ListNode node; /* on core->dead */
        void (*free)(struct Deferred *d);
} Deferred;

typedef enum SessionEvent {
        SESSION_EVENT_OPENING, /* before its first transition: a watcher given to session_open attaches */
        SESSION_EVENT_NOT_OPENED, /* no socket could be made: the session is freed at once */
        SESSION_EVENT_CONNECTED,
        SESSION_EVENT_FAILED,
        SESSION_EVENT_DATA,
        SESSION_EVENT_PEER_EOF,
        SESSION_EVENT_DRAINED,
        SESSION_EVENT_DISCONNECTED, /* our fd is closed; the kernel may keep the 4-tuple a while */
        SESSION_EVENT_GONE, /* about to be freed */
} SessionEvent;

struct Core {
        sd_event *event;
        Config *config; /* in effect; replaced whole by a reload */
        Journal *journal;
        int log_level;
        int log_transitions;

        Server **servers; /* in config order */
        size_t n_servers;
        Server *session_server; /* client sessions' connections hang from it */
        uint64_t sessions_opened, sessions_failed, sessions_refused_limit;

        ListNode closing; /* open fds in an active or passive close, each with a deadline */
        ListNode lingering; /* closed fds whose 4-tuple the kernel still holds */
        ListNode flush; /* connections with output buffered during the current batch (batch_output) */
        bool batching; /* inside a batch of ready connections: batch_output types buffer what they send */
        size_t n_lingering;
        unsigned n_conns; /* counted connections over all servers */
        int epoll_fd; /* every connection fd; one sd-event source drains it in batches */
        int diag_fd; /* NETLINK_SOCK_DIAG */
        int spare_fd; /* closed to accept-and-refuse when the fd limit is hit */
        sd_event_source *accept_resume_timer;
        sd_event_source *accept_sources[CORE_ACCEPT_SOURCES_MAX]; /* paused with the listeners (the control socket) */
        uint8_t read_buf[READ_CHUNK];

        ListNode dead; /* Deferred: freed at the next safe point */
        sd_event_source *gc_source;

        EventSink sinks[CORE_SINKS_MAX];
        size_t n_sinks;
        /* session news (connected, data, closed ...), for whoever serves sessions (control) */
        void (*session_event)(void *userdata, Session *s, SessionEvent ev);
        void *session_event_userdata;

        struct ConnKernel *kernel; /* the eBPF kernel source (conn-kernel.c); NULL: TCP_INFO and sock_diag */
        char kernel_source_why[256]; /* why this source: the setting, or why eBPF could not be loaded */

        PassedFds passed; /* sockets systemd passed at start */
        bool privileges_dropped; /* root given up: plug-ins are held to the rules for root */
        char user_name[64], group_name[64]; /* who the daemon runs as, resolved at start (status) */

        bool stopping;
        int exit_code;
        uint64_t start_usec;
        uint64_t transitions, reloads, reload_failures, lingering_untracked;
        uint64_t rng[2]; /* xorshift128+ state for the enhanced server's random command */
};

/* Set up the parts that cannot fail and open the loop, the poller, sock_diag and the spare fd. */
int core_init(Core *core, const Config *config, LogTarget target);
void core_done(Core *core);

uint64_t core_now(Core *core, clockid_t clock);
/* xorshift128+: fast, and good enough for a teaching server's random command (not for secrets). */
uint64_t core_random(Core *core);

/* The daemon's own messages (not per-connection events), filtered by log_level. */
void log_msg(Core *core, int priority, const char *message_id, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Per-connection events are built when the journal wants them (log_transitions=all) or a sink does. */
bool core_wants_events(Core *core);
/* An event: to the journal if to_journal, and to every sink. */
void core_emit(Core *core, const LogEntry *e, bool to_journal);
int core_add_sink(Core *core, const EventSink *sink);
void core_remove_sink(Core *core, void *userdata);

void core_session_event(Core *core, Session *s, SessionEvent ev);

/* Free d at the next safe point. */
void core_defer_free(Core *core, Deferred *d);
/* Free what is deferred now (the loop is over, or a safe point was reached). */
void core_run_deferred(Core *core);

/* A counted connection ended: a stopping daemon exits once none is left. */
void core_conn_gone(Core *core);
void core_exit(Core *core);

/* A source that stops with the listeners when the fd limit is hit (server.c's accept_pause). */

int core_add_accept_source(Core *core, sd_event_source *source);
/* kernel_source = bpf where it cannot be had whoever starts the daemon (built without eBPF, no
 * BTF): an error as FILE:LINE: message. What only starting can tell (capabilities, the verifier)
 * is said at start. */
int kernel_source_validate(const Config *c, ConfigErrors *errs);
