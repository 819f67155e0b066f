/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpedud's data model, top to bottom: the manager owns servers, a server owns listeners and
 * connections, a connection owns its fd, its state timeline and (only while a write is partial)
 * an output buffer. Prototypes are grouped by the .c file that defines them. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "control-proto.h"
#include "framing.h"
#include "tcpedu/handler.h"
#include "id.h"
#include "list.h"
#include "sockaddr-util.h"
#include "tcp-state.h"

#define READ_CHUNK (64 * 1024) /* shared read buffer: one for the whole daemon */
#define READS_PER_WAKEUP 16 /* fairness: then the next ready connection gets its turn */
#define ACCEPTS_PER_WAKEUP 64
#define POLL_BATCH 128 /* epoll events handled per dispatch */
#define CONN_CLOSE_TIMEOUT_USEC (5 * USEC_PER_SEC) /* bound on flushing and on waiting for the peer's FIN */
#define LINGER_MAX 65536 /* fd-less connections watched to their end (TIME_WAIT ...) */
#define CONN_TIMELINE_MAX 10
#define HALF_CLOSE_DEFAULT_SEC 300 /* bound on a half-close when idle_timeout is 0 */
#define EXIT_CONFIG 78 /* EX_CONFIG from sysexits.h */
#define EXIT_USAGE 64 /* EX_USAGE */
#define NOTIFY_QUEUE_MAX 32 /* sd_notify messages waiting for a receiver that does not read */

typedef struct Manager Manager;
typedef struct Server Server;
typedef struct Listener Listener;
typedef struct Conn Conn;
typedef struct Journal Journal;
typedef struct Session Session;

/* ---- journal.c: the log pipeline ---- */

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* the journal if its socket exists, else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -22,
} LogTarget;

/* One journal entry being built on the stack: "KEY=value" fields, NUL-separated. */
typedef struct LogEntry {
        char buf[4096];
        size_t len;
        unsigned n_fields;
        bool truncated;
} LogEntry;

typedef struct JournalStats {
        uint64_t submitted; /* entries handed to the pipeline */
        uint64_t written; /* entries the journal (or stderr) accepted */
        uint64_t dropped_full; /* not queued: the queue was at its bound (journald too slow or hung) */
        uint64_t dropped_failed; /* queued, but the write failed (journald gone) */
        size_t queued;
        bool to_stderr;
} JournalStats;

int journal_new(LogTarget target, Journal **ret);
Journal *journal_free(Journal *j);
void log_entry_init(LogEntry *e, int priority, const char *message_id);
void log_entry_add(LogEntry *e, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Never blocks: an entry that does not fit the queue is counted as dropped. */
void journal_submit(Journal *j, const LogEntry *e);
void journal_stats(Journal *j, JournalStats *ret);
LogTarget log_target_from_string(const char *s);

/* The daemon's own messages (not per-connection events), filtered by log_level. */
void log_msg(Manager *m, int priority, const char *message_id, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Stable MESSAGE_IDs, one per kind of event (docs/journal.md). */
#define MID_TRANSITION "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a01"
#define MID_CONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a02"
#define MID_DISCONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a03"
#define MID_REFUSED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a04"
#define MID_SUMMARY "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a05"
#define MID_SERVER_START "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a06"
#define MID_SERVER_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a07"
#define MID_RELOAD "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a08"
#define MID_RELOAD_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a09"
#define MID_LOG_DROPPED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0a"
#define MID_DAEMON_START "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0b"
#define MID_DAEMON_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0c"
#define MID_LIMIT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0d"
#define MID_CONTROL "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0e"
#define MID_CHAT_JOIN "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0f"
#define MID_CHAT_LEAVE "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a10"
#define MID_CHAT_RENAME "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a11"
#define MID_CHAT_DROP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a12"
#define MID_CONNECT_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a13"

/* ---- server types: echo.c (later enhanced.c, chat.c, plugin.c) ---- */

/* A server type is only this table; the connection code is shared. Callbacks see a connection
 * through conn_send() / conn_close() and never touch its fd or the event loop. */
typedef struct ServerVtable {
        const char *name;
        void (*on_connect)(Conn *c);
        void (*on_data)(Conn *c, const uint8_t *data, size_t len);
        void (*on_disconnect)(Conn *c);
        /* optional: the daemon began to close the connection (kick, idle, line_timeout, stop): the
         * peer may linger for up to 5 s, but the type can let go of it now */
        void (*on_close_start)(Conn *c);
        /* optional: what `tcpeductl show` adds for this type; freeing the type's per-server state */
        void (*describe)(Server *s, struct json_object *out);
        void (*free_state)(Server *s);
        /* optional: free c->userdata. Called at the safe point (conn_free), never from inside I/O,
         * so that a callback's own state outlives a close that happens within it. */
        void (*conn_free)(Conn *c);
        /* optional, for client sessions: how many more bytes the type can take now (0 pauses
         * reading: TCP flow control does the rest); the handshake completed (c->connecting is
         * false) or failed (then on_disconnect follows); the peer's FIN arrived; all output was sent */
        size_t (*read_room)(Conn *c);
        void (*on_connected)(Conn *c);
        void (*on_peer_eof)(Conn *c);
        void (*on_drained)(Conn *c);
        /* the peer's FIN does not close our side: the connection stays in CLOSE_WAIT until
         * conn_close() (a client may go on sending after the server is done) */
        bool hold_close_wait;
        /* what the type sends while the manager handles a batch of ready connections is buffered
         * and written once, at the end of the batch: one send() for a read's many replies, and one
         * for the broadcasts of several members to each member (see manager.c's on_epoll) */
        bool batch_output;
} ServerVtable;

extern const ServerVtable echo_vtable;
extern const ServerVtable enhanced_vtable;
extern const ServerVtable chat_vtable;
/* Post a server notice to a chat room; returns the number of members, or -errno. */
int chat_say(Server *s, const char *text);

/* ---- plugin.c: handler plug-ins of the enhanced server ---- */

#define PLUGIN_OUTPUT_FACTOR 16 /* a plug-in's unsent output per connection: 16 x buffer_size */

typedef struct Plugin {
        void *dl;
        const tcpedu_handler *h;
        void *state;
} Plugin;

/* Check every plug-in a config names; errors as FILE:LINE: message. */
int plugins_validate(const Config *c, ConfigErrors *errs);
int plugin_open(Server *s, Plugin *ret);
void plugin_close(Plugin *p);
void *enhanced_plugin_data(Conn *c);
void enhanced_set_plugin_data(Conn *c, void *data);

/* ---- framed.c: what enhanced and chat connections share ---- */

typedef struct FramedConn {
        Framer framer;
        sd_event_source *line_timer; /* armed while a message is incomplete */
} FramedConn;

void framed_init(Conn *c, FramedConn *fc, FramerMode mode);
/* Feed what was read; returns < 0 once the connection is closing (stop using it). */
int framed_feed(Conn *c, FramedConn *fc, const uint8_t *data, size_t len, FrameHandler h, void *userdata);
void framed_done(FramedConn *fc);
/* Send a JSON object as one line. */
int conn_send_json(Conn *c, struct json_object *o);
uint64_t manager_random(Manager *m);
const ServerVtable *server_vtable_for(int type);

/* ---- server.c: listeners, accept and limits ---- */

typedef enum RefuseReason {
        REFUSE_MAX_CONNECTIONS,
        REFUSE_MAX_CLIENTS,
        REFUSE_MAX_CLIENTS_PER_IP,
        REFUSE_FD_LIMIT,
        REFUSE_NO_MEMORY,
        _REFUSE_MAX,
} RefuseReason;

struct Listener {
        Server *server;
        int fd;
        SockaddrUnion bound; /* the actual address: the port the kernel picked when 0 was asked */
        char spec[SOCKADDR_STR_MAX]; /* as configured, to match listeners across reloads */
        char id[ID_STR_LEN + 1];
        bool port_zero; /* configured with port 0: only its own server may take it over */
        bool passed; /* passed by systemd: never closed, handed back to m->passed when let go */
        sd_event_source *source;
};

typedef struct IpCount {
        struct IpCount *next;
        SockaddrUnion addr;
        unsigned count;
} IpCount;

struct Server {
        Manager *manager;
        ServerConfig cfg; /* its own copy: survives the Config it came from */
        const ServerVtable *vt;
        bool running;
        bool removed; /* gone from the config; freed when its last connection ends */
        unsigned refs; /* connections, open or lingering, that still point here */

        Listener *listeners[LISTEN_MAX];
        unsigned n_listeners;

        ListNode conns; /* open connections, least recently active first: the idle timer's queue */
        unsigned n_conns;
        sd_event_source *idle_timer;

        IpCount **ip_buckets; /* per-address counts, only when max_clients_per_ip is set */
        size_t n_ip_buckets, n_ips;

        void *type_state; /* the server type's own, freed by vt->free_state */

        uint64_t accepted, bytes_in, bytes_out;
        uint64_t refused[_REFUSE_MAX];
        uint64_t refused_logged_usec[_REFUSE_MAX]; /* refusals are logged at most once a second */
        uint64_t refused_suppressed[_REFUSE_MAX];
};

int server_new(Manager *m, const ServerConfig *cfg, Server **ret);
Server *server_unref(Server *s);
/* Bind and listen on every address; on failure nothing stays bound and *ret_error says why. */
int server_prepare_listeners(Server *s, Listener **reuse, size_t n_reuse, Listener **ret, char *error, size_t error_size);
int server_start(Server *s, Listener **prepared, bool announce);
void listener_discard(Listener *l); /* a prepared listener that was never started */
void server_stop(Server *s, const char *reason);
void listener_close(Listener *l, const char *reason);
void server_arm_idle_timer(Server *s);
void server_log_refusal(Server *s, RefuseReason r, const struct sockaddr *peer);
void server_ip_release(Server *s, const struct sockaddr *peer);
bool server_ip_counting(const Server *s);
const char *refuse_reason_to_string(RefuseReason r);
int listener_accept_resume(Manager *m);
/* Out of fds and no spare: stop accepting (servers and the control socket) for 100 ms. */
void accept_pause(Manager *m);

/* ---- conn.c: one connection, its I/O and its close paths ---- */

typedef struct TimelineEntry {
        uint64_t usec; /* CLOCK_REALTIME when the state was entered */
        uint8_t state; /* TcpState */
        uint8_t source; /* StateSource */
} TimelineEntry;

typedef struct OutBuf {
        size_t start, end, cap;
        uint8_t data[];
} OutBuf;

struct Conn {
        ListNode node; /* server->conns while open; manager->closing, ->lingering or ->dead later */
        ListNode flush_node; /* on manager->flush: output buffered in this batch, written at its end */
        Server *server;
        int fd; /* -1 once closed: the kernel may still hold the 4-tuple */
        uint32_t events; /* current epoll interest */
        TcpState state;
        bool counted; /* holds a slot of max_clients / max_connections */
        bool ip_counted; /* holds a slot of max_clients_per_ip (the limit may change by reload) */
        bool peer_eof; /* the peer's FIN arrived */
        bool shut_wr; /* our FIN was sent */
        bool closing; /* an active close is under way */
        bool close_after_flush; /* send our FIN once the output buffer drains */
        bool half_closed; /* kicked with --how shutdown: no 5 s deadline, idle_timeout instead */
        bool lingering; /* on manager->lingering: fd closed, the kernel still has the 4-tuple */
        bool dead; /* on manager->dead, freed at a safe point */
        bool connecting; /* a client session's connect() is under way (SYN_SENT) */
        uint8_t n_timeline;
        TimelineEntry timeline[CONN_TIMELINE_MAX];
        uint64_t last_activity; /* CLOCK_MONOTONIC */
        uint64_t bytes_in, bytes_out;
        OutBuf *out; /* NULL unless a write was partial */
        sd_event_source *timer; /* close deadline, or the watch of a lingering 4-tuple */
        sd_event_source *probe; /* while in FIN_WAIT_1: looks again for the ACK of our FIN */
        uint8_t probes;
        uint64_t diag_cookie;
        unsigned watch_checks;
        const char *close_reason;
        SockaddrUnion peer, local;
        char id[ID_STR_LEN + 1];
        void *userdata; /* the server type's */
        Session *session; /* a client session (TCPEDU_ROLE=client): the daemon connected out */
};

int conn_new(Server *s, int fd, const SockaddrUnion *peer, Conn **ret);
/* Connect out (a client session): CLOSED -> SYN_SENT now, ESTABLISHED or CLOSED later. With
 * connect_timeout_usec > 0 a handshake still under way then is aborted. Returns -errno (nothing
 * created, *ret_error says why) if no socket could be made or bound; a connect() that fails at once
 * gives a connection that is already finished, with the reason in close_reason. */
int conn_connect(Server *s, Session *session, const SockaddrUnion *target, const SockaddrUnion *bind_addr, uint64_t connect_timeout_usec,
                 Conn **ret, char *error, size_t error_size);
/* Count as activity for the idle timer (a session's own send). */
void conn_mark_active(Conn *c);
/* Read again after the type made room (read_room went from 0 to more). */
void conn_resume_reading(Conn *c);
/* Queue bytes for the peer: written at once if the socket takes them, else buffered up to
 * buffer_size (reading pauses beyond it). Returns 0 or -errno (the connection is then closing). */
int conn_send(Conn *c, const void *data, size_t len);
/* As conn_send, but -ENOBUFS (and nothing queued) if the unsent output would pass limit. */
int conn_send_bounded(Conn *c, const void *data, size_t len, size_t limit);
/* Close actively: flush, send FIN, wait (bounded) for the peer's FIN: FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT. */
void conn_close(Conn *c, const char *reason);
/* Half-close: send FIN and keep reading until the peer's FIN, with no deadline. */
void conn_half_close(Conn *c, const char *reason);
/* Reset: SO_LINGER 0 and close, the peer gets RST. */
void conn_abort(Conn *c, const char *reason);
void conn_handle_events(Conn *c, uint32_t events);
/* Write what a batch_output type buffered during the batch (manager.c, at the end of a batch). */
void conn_flush(Conn *c);
/* Catch the ACK of our FIN (FIN_WAIT_1 -> FIN_WAIT_2) before a control query reports the state. */
void conn_refresh(Conn *c);
/* The daemon is exiting: end a lingering connection's watch without waiting for the kernel. */
void conn_forget(Conn *c, const char *reason);
void conn_free(Conn *c);

/* ---- session.c: client sessions, the daemon as a TCP client ---- */

#define SESSION_CONNECT_TIMEOUT_DEFAULT_SEC 10
#define SESSION_CONNECT_TIMEOUT_MAX_SEC 600

typedef struct ControlClient ControlClient;

struct Session {
        Conn *conn;
        uid_t owner; /* the uid that opened it: only it and admins may use it */
        pid_t owner_pid;
        ControlClient *opener; /* set for an ephemeral session: closed when this client goes */
        ControlClient *watcher; /* receives its data and events as they come */
        uint8_t *rx; /* received, not yet read: rx[rx_start .. rx_start + rx_len) */
        size_t rx_start, rx_len, rx_cap;
        uint64_t rx_total_read, rx_paused; /* bytes read by clients; times reading paused on a full buffer */
        bool connected; /* the handshake completed */
        bool failed; /* connect failed: the reason is c->close_reason */
        bool peer_eof;
        bool closed; /* our fd is closed: no more data either way */
        int error; /* errno of a failed connect */
        uint64_t connect_timeout_usec;
};

extern const ServerVtable session_vtable;
/* The pseudo-server all sessions hang from: not in m->servers, never listening. */
int session_server_new(Manager *m, Server **ret);
void session_server_configure(Manager *m, const DaemonConfig *d);
int session_open(Manager *m, const SockaddrUnion *target, const SockaddrUnion *bind_addr, uint64_t timeout_usec, uid_t owner, pid_t pid,
                 ControlClient *watcher, Session **ret, char *error, size_t error_size);
/* Take n bytes off the front of the receive buffer: reading resumes if it had stopped. */
void session_consume(Session *s, size_t n);
unsigned session_count(Manager *m);

/* ---- control.c: the control socket ---- */

#define CONTROL_CLIENTS_MAX 128
#define CONTROL_OUTPUT_MAX CONTROL_REPLY_MAX /* queued replies and events per client, then it is dropped */
#define CONTROL_OUTPUT_PAUSE (256u << 10) /* stop reading a client's requests while this much is unsent */
#define CONTROL_IDLE_USEC (300 * USEC_PER_SEC)

int control_open(Manager *m, const char *configured);
void control_close(Manager *m);
void control_broadcast(Manager *m, const LogEntry *e);

typedef enum SessionEvent {
        SESSION_EVENT_CONNECTED,
        SESSION_EVENT_FAILED,
        SESSION_EVENT_DATA,
        SESSION_EVENT_PEER_EOF,
        SESSION_EVENT_DRAINED,
        SESSION_EVENT_DISCONNECTED, /* our fd is closed; the kernel may keep the 4-tuple a while */
        SESSION_EVENT_GONE, /* about to be freed */
} SessionEvent;

/* A session changed: answer the requests waiting on it and feed its watcher. */
void control_session_event(Manager *m, Session *s, SessionEvent ev);
void control_watch_attach(ControlClient *cc, Session *s);
void control_watch_detach(Session *s);

/* ---- privileges.c: started as root, run as [daemon] user and group ---- */

/* Check [daemon] user and group: errors as FILE:LINE: message (tcpedud -t, start, reload). */
int privileges_validate(const Config *c, ConfigErrors *errs);
/* Started as root: switch to the configured user and group (setgroups, setgid, setuid), keeping no
 * capability. Called once the listeners and the control socket are open. Not root: nothing to do.
 * -errno with *error set if the switch failed: the daemon must not go on. */
int privileges_drop(Manager *m, char *error, size_t error_size);
/* True once the daemon has given up root: plug-ins are held to the rules for root. */
bool privileges_dropped(void);

/* ---- manager.c: the one context ---- */

/* A socket systemd passed at start (socket activation), with its FileDescriptorName=. systemd
 * keeps a copy of each, so tcpedud never closes one while it runs: a listener it stops using goes
 * back to this pool, still listening in the kernel, and a later reload may take it again. */
typedef struct PassedFd {
        int fd;
        char *name;
        bool taken; /* in use: the control socket, or a Listener with passed set */
} PassedFd;

typedef struct Manager {
        sd_event *event;
        Config *config;
        const char *config_path; /* -c, or NULL for the default */
        Journal *journal;
        int log_level;
        int log_transitions;

        Server **servers;
        size_t n_servers;
        Server *session_server; /* client sessions' connections hang from it */
        uint64_t sessions_opened, sessions_failed, sessions_refused_limit;
        ListNode closing; /* open fds in an active or passive close, each with a deadline */
        ListNode lingering; /* closed fds whose 4-tuple the kernel still holds */
        ListNode dead; /* to free at the next safe point */
        ListNode flush; /* connections with output buffered during the current batch (batch_output) */
        bool batching; /* inside on_epoll's batch: batch_output types buffer what they send */
        size_t n_lingering;
        unsigned n_conns; /* counted connections over all servers */

        int epoll_fd; /* every connection fd; one sd-event source drains it in batches */
        sd_event_source *epoll_source;
        sd_event_source *gc_source;
        int diag_fd; /* NETLINK_SOCK_DIAG */
        int spare_fd; /* closed to accept-and-refuse when the fd limit is hit */
        sd_event_source *accept_resume_timer;
        sd_event_source *status_timer;
        uint8_t read_buf[READ_CHUNK];

        PassedFd *passed; /* read once, when the daemon starts */
        size_t n_passed;

        int control_fd;
        bool control_unlink; /* we created the socket file (not systemd) */
        bool control_dir_created; /* and its directory */
        char control_path[108];
        sd_event_source *control_source;
        sd_event_source *control_reap; /* frees control clients dropped during a walk over them */
        ListNode control_clients;
        unsigned n_control_clients, n_monitors, n_watchers;
        uint64_t control_dropped; /* control clients cut off at a limit */
        uint64_t control_fd_refused, control_fd_refused_logged; /* refused for want of an fd; how many were logged */
        uint64_t control_fd_logged_usec;
        gid_t admin_gid; /* admin_group, resolved when the config is applied */
        bool admin_gid_valid;
        char user_name[64], group_name[64]; /* who the daemon runs as, resolved at start (status) */

        bool stopping;
        int exit_code;
        uint64_t start_usec;
        uint64_t transitions, reloads, reload_failures, lingering_untracked;
        uint64_t rng[2]; /* xorshift128+ state for the enhanced server's random command */
        char last_status[256];
        int notify_fd; /* NOTIFY_SOCKET, connected at start; -1 without one */
        sd_event_source *notify_source; /* enabled while notifications wait for room */
        char *notify_queue[NOTIFY_QUEUE_MAX];
        size_t n_notify;
        uint64_t notify_dropped;
} Manager;

int manager_new(const char *config_path, Config *config, LogTarget target, Manager **ret);
Manager *manager_free(Manager *m);
/* Takes ownership of config. The caller blocks SIGTERM, SIGINT and SIGHUP first. */
int manager_start(Manager *m, Config *config, char *error, size_t error_size);
int manager_run(Manager *m);
/* Parse, validate and apply a new config; on any error nothing changes. */
int manager_reload(Manager *m, ConfigErrors *errs, char *summary, size_t summary_size);
void manager_update_status(Manager *m);
/* sd_notify() that never blocks: what the receiver has no room for waits, in order, and goes out
 * when it reads again (a STATUS= line replaces one still waiting). */
void manager_notify(Manager *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void manager_conn_gone(Manager *m);
/* Per-connection events are built when the journal wants them (log_transitions=all) or a monitor listens. */
bool manager_wants_events(Manager *m);
void manager_emit(Manager *m, const LogEntry *e, bool to_journal);
void manager_schedule_gc(Manager *m);
uint64_t now_usec(Manager *m, clockid_t clock);
/* Take the passed AF_UNIX stream socket named "control"; -ENOENT if there is none. */
int manager_take_passed_control(Manager *m);
/* Take a passed TCP listening socket named after the server and bound to addr (any port when addr's
 * is 0); returns its fd, made non-blocking, and its address, or -ENOENT. */
int manager_take_passed_listener(Manager *m, const char *server, const struct sockaddr *addr, SockaddrUnion *ret_bound);
/* A taken socket is let go: back to the pool, open and listening. */
void manager_release_passed(Manager *m, int fd);
