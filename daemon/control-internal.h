/* SPDX-License-Identifier: MIT */
#pragma once

/* What the control-*.c files share: the Control object, its clients, the requests waiting on
 * sessions, and the helpers the command files use. Not for anyone outside control. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "byte-queue.h"
#include "conn.h"
#include "control-proto.h"
#include "control.h"
#include "core.h"
#include "server.h"
#include "session.h"

#define CONTROL_PENDING_MAX 16 /* requests of one client waiting on sessions */
#define SESSION_RECV_MAX (1u << 20) /* bytes in one session-recv reply */
#define SESSION_DATA_EVENT_MAX (48u << 10) /* bytes in one watch data event */
#define SESSION_SEND_MAX (1u << 20) /* bytes in one session-send request, once decoded */
#define SESSION_RECV_TIMEOUT_MAX_MS (3600 * 1000L)

#define LIST_DIAG_MAX 256 /* closed connections asked about through sock_diag per reply */

struct Control {
        Core *core;
        ControlOps ops;
        int control_fd;
        bool control_unlink; /* we created the socket file (not systemd) */
        bool control_dir_created; /* and its directory */
        char control_path[108];
        sd_event_source *control_source;
        ListNode control_clients;
        unsigned n_control_clients, n_monitors, n_watchers;
        uint64_t control_dropped; /* control clients cut off at a limit */
        uint64_t control_fd_refused, control_fd_refused_logged; /* refused for want of an fd; how many were logged */
        uint64_t control_fd_logged_usec;
        gid_t admin_gid; /* admin_group, resolved when the config is applied */
        bool admin_gid_valid;
        unsigned event_depth; /* > 0 while session events or broadcasts walk the client list */
        unsigned list_diag_budget; /* sock_diag queries left for the reply being built */
};

typedef enum PendingKind {
        PENDING_OPEN, /* session-open: until established or failed */
        PENDING_RECV, /* session-recv: until the data asked for is there, EOF or the timeout */
        PENDING_SEND, /* session-send: until the output queue is drained */
} PendingKind;

/* A request whose reply waits on a session. */
typedef struct Pending {
        ListNode node; /* on its client's pending list */
        ControlClient *client;
        int64_t id;
        PendingKind kind;
        Session *session;
        sd_event_source *timer;
        size_t bytes; /* recv: exactly this many (0: whatever is there) */
        bool line; /* recv: one line */
        size_t sent; /* send: bytes queued */
} Pending;

struct ControlClient {
        ListNode node; /* on control->control_clients */
        Deferred gc; /* freed at a safe point once dropped (doomed) */
        Control *control;
        int fd;
        sd_event_source *io;
        sd_event_source *idle_timer;
        struct ucred cred;
        bool admin;
        bool monitor;
        bool close_after_flush;
        bool busy; /* one of its requests is running: freeing waits until it returns */
        bool doomed; /* dropped while busy */
        char monitor_server[SERVER_NAME_MAX + 1]; /* empty: every server */
        char *in;
        size_t in_len;
        bool discarding; /* skipping the rest of an over-long line */
        ByteQueue out; /* replies and events not yet written: at most CONTROL_OUTPUT_MAX */
        ListNode pending;
        unsigned n_pending;
        Session *watching;
        unsigned n_ephemeral; /* sessions that end with this client */
};

typedef struct CommandContext {
        ControlClient *client;
        ControlRequest *req;
        struct json_object *data; /* ok: the reply's data */
        ControlError code; /* else this error */
        char message[512];
        struct json_object *details;
        char *direct_reply; /* a run() returning 1 may have made its reply itself */
        bool after_reply; /* session-watch: deliver buffered data once the reply is out */
} CommandContext;

/* Every connection the daemon knows of, open or lingering in the kernel. */
#define FOREACH_LIST(core, i, head)                                                                                                        \
        for (size_t i = 0; i <= (core)->n_servers + 2; i++)                                                                                \
                for (ListNode *head = i < (core)->n_servers        ? &(core)->servers[i]->conns                                            \
                                      : i == (core)->n_servers     ? &(core)->session_server->conns                                        \
                                      : i == (core)->n_servers + 1 ? &(core)->closing                                                      \
                                                                   : &(core)->lingering;                                                   \
                     head; head = NULL)

/* ---- control.c: the socket, its clients, their I/O ---- */
void client_free(ControlClient *cc);
void client_update_events(ControlClient *cc);
void client_drop(ControlClient *cc, const char *why);
int client_write(ControlClient *cc, char *line);
void client_defer_free(ControlClient *cc);
int command_fail(CommandContext *ctx, ControlError code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct json_object *server_to_json(const Server *s, bool detailed);
struct json_object *conn_to_json(Control *ctl, Conn *c, bool detailed);
Conn *find_conn(Control *ctl, const char *id, CommandContext *ctx);
Server *find_server_arg(CommandContext *ctx, bool required);
const char *arg_id(CommandContext *ctx);
/* Run a listing command with sock_diag asked about at most LIST_DIAG_MAX closed connections: each
 * is a netlink round trip on the loop, and a list of 65,536 lingering ones would stall it. */
int with_diag_budget(CommandContext *ctx, int (*list)(CommandContext *ctx));
int client_handle_line(ControlClient *cc, const char *line, size_t len);
void pending_free(Pending *p);
void session_watch_pump(Control *ctl, Session *s);

/* The commands (control-commands.c, control-session.c), dispatched by control-dispatch.c. */
int cmd_chat_say(CommandContext *ctx);
int cmd_conn(CommandContext *ctx);
int cmd_connections(CommandContext *ctx);
int cmd_kick(CommandContext *ctx);
int cmd_log_level(CommandContext *ctx);
int cmd_monitor(CommandContext *ctx);
int cmd_reload(CommandContext *ctx);
int cmd_restart(CommandContext *ctx);
int cmd_servers(CommandContext *ctx);
int cmd_session_close(CommandContext *ctx);
int cmd_session_open(CommandContext *ctx);
int cmd_session_recv(CommandContext *ctx);
int cmd_session_send(CommandContext *ctx);
int cmd_session_watch(CommandContext *ctx);
int cmd_sessions(CommandContext *ctx);
int cmd_show(CommandContext *ctx);
int cmd_start(CommandContext *ctx);
int cmd_stats(CommandContext *ctx);
int cmd_status(CommandContext *ctx);
int cmd_stop(CommandContext *ctx);

/* ---- control-session.c: what sessions tell control (core->session_event) ---- */
void control_session_event(void *userdata, Session *s, SessionEvent ev);
