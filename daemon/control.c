/* SPDX-License-Identifier: MIT */
/* The control socket: JSON lines from tcpeductl, checked by peer credentials, dispatched by a
 * table. Every client has bounded input (one request line), bounded output (replies and monitor
 * events) and a bounded number of requests handled per wakeup, so none can stall the loop. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base64.h"
#include "control-proto.h"
#include "kernel-tcp.h"
#include "macro.h"
#include "tcpedud.h"

#define CONTROL_PENDING_MAX 16 /* requests of one client waiting on sessions */
#define SESSION_RECV_MAX (1u << 20) /* bytes in one session-recv reply */
#define SESSION_DATA_EVENT_MAX (48u << 10) /* bytes in one watch data event */
#define SESSION_SEND_MAX (1u << 20) /* bytes in one session-send request, once decoded */
#define SESSION_RECV_TIMEOUT_MAX_MS (3600 * 1000L)

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
        ListNode node;
        Manager *manager;
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
        char *out;
        size_t out_start, out_end, out_cap;
        ListNode pending;
        unsigned n_pending;
        Session *watching;
        unsigned n_ephemeral; /* sessions that end with this client */
};

static unsigned event_depth; /* > 0 while session events or broadcasts walk the client list */
static void client_reap_schedule(Manager *m);
static void pending_free(Pending *p);
static void session_watch_pump(Manager *m, Session *s);

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

static int fail(CommandContext *ctx, ControlError code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(CommandContext *ctx, ControlError code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->message, sizeof(ctx->message), fmt, ap);
        va_end(ap);
        ctx->code = code;
        return -1;
}

static void client_free(ControlClient *cc) {
        Manager *m = cc->manager;
        if (cc->busy || event_depth > 0) {
                /* Its own command led here (an event overflowed its monitor output, say), or a
                 * walk over the clients is under way: it is freed when that is over. */
                cc->doomed = true;
                if (!cc->busy)
                        client_reap_schedule(m);
                return;
        }
        if (cc->monitor)
                m->n_monitors--;
        m->n_control_clients--;
        list_remove(&cc->node);
        while (!list_empty(&cc->pending))
                pending_free(list_first(&cc->pending, Pending, node));
        if (cc->watching) {
                cc->watching->watcher = NULL;
                cc->watching = NULL;
                m->n_watchers--;
        }
        if (cc->n_ephemeral) {
                /* Its sessions end with it: closed as if by session-close. */
                ListNode *n, *tmp;
                list_foreach_safe (n, tmp, &m->session_server->conns) {
                        Conn *c = list_entry(n, Conn, node);
                        if (c->session && c->session->opener == cc) {
                                c->session->opener = NULL;
                                conn_close(c, "closed with its control client");
                        }
                }
                ListNode *lists[] = { &m->closing, &m->lingering, &m->dead };
                for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                        for (n = lists[i]->next; n != lists[i]; n = n->next) {
                                Conn *c = list_entry(n, Conn, node);
                                if (c->session && c->session->opener == cc)
                                        c->session->opener = NULL;
                        }
        }
        sd_event_source_disable_unref(cc->io);
        sd_event_source_disable_unref(cc->idle_timer);
        safe_close(cc->fd);
        free(cc->in);
        free(cc->out);
        free(cc);
}

static void client_update_events(ControlClient *cc) {
        size_t pending = cc->out_end - cc->out_start;
        uint32_t ev = (pending ? EPOLLOUT : 0) | (!cc->close_after_flush && pending < CONTROL_OUTPUT_PAUSE ? EPOLLIN : 0);
        sd_event_source_set_io_events(cc->io, ev);
}

static void client_drop(ControlClient *cc, const char *why) {
        Manager *m = cc->manager;
        m->control_dropped++;
        log_msg(m, LOG_WARNING, MID_LIMIT, "control client (uid %u, pid %d) disconnected: %s", (unsigned)cc->cred.uid, (int)cc->cred.pid,
                why);
        client_free(cc);
}

/* Queue a line for the client, writing at once what the socket takes. Returns -1 if the client was
 * dropped (output limit or a write error): the caller must not touch it any more. */
static int client_write(ControlClient *cc, char *line) {
        if (cc->doomed) {
                free(line);
                return -1;
        }
        if (!line) {
                client_drop(cc, "out of memory");
                return -1;
        }
        size_t len = strlen(line), pending = cc->out_end - cc->out_start;
        if (pending == 0) {
                ssize_t n = send(cc->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        free(line);
                        client_free(cc);
                        return -1;
                }
                if (n > 0 && (size_t)n == len) {
                        free(line);
                        return 0;
                }
                if (n > 0) {
                        memmove(line, line + n, len - (size_t)n + 1);
                        len -= (size_t)n;
                }
                cc->out_start = cc->out_end = 0;
        }
        if (pending + len > CONTROL_OUTPUT_MAX) {
                free(line);
                client_drop(cc, cc->monitor ? "monitor does not read its events (output limit reached)"
                                            : "client does not read its replies (output limit reached)");
                return -1;
        }
        if (cc->out_end + len > cc->out_cap) {
                if (cc->out_start > 0) {
                        memmove(cc->out, cc->out + cc->out_start, pending);
                        cc->out_end = pending;
                        cc->out_start = 0;
                }
                if (cc->out_end + len > cc->out_cap) {
                        size_t cap = MAX(cc->out_cap * 2, cc->out_end + len);
                        char *n = realloc(cc->out, cap);
                        if (!n) {
                                free(line);
                                client_drop(cc, "out of memory");
                                return -1;
                        }
                        cc->out = n;
                        cc->out_cap = cap;
                }
        }
        memcpy(cc->out + cc->out_end, line, len);
        cc->out_end += len;
        free(line);
        client_update_events(cc);
        return 0;
}

/* ---- JSON views of the daemon's objects ---- */

static const char *server_state(const Server *s) {
        return s->running ? "running" : "stopped";
}

static struct json_object *server_to_json(const Server *s, bool detailed) {
        struct json_object *o = json_object_new_object(), *listen = json_object_new_array();
        char a[SOCKADDR_STR_MAX];

        json_object_object_add(o, "name", json_object_new_string(s->cfg.name));
        json_object_object_add(o, "type", json_object_new_string(s->vt->name));
        json_object_object_add(o, "state", json_object_new_string(server_state(s)));
        for (unsigned i = 0; i < s->cfg.n_listen; i++) {
                struct json_object *l = json_object_new_object();
                json_object_object_add(l, "configured", json_object_new_string(s->cfg.listen[i].spec));
                const char *actual = NULL;
                bool passed = false;
                for (unsigned k = 0; k < s->n_listeners; k++)
                        if (strcmp(s->listeners[k]->spec, s->cfg.listen[i].spec) == 0) {
                                actual = sockaddr_format(&s->listeners[k]->bound.sa, a, sizeof(a));
                                passed = s->listeners[k]->passed;
                        }
                json_object_object_add(l, "address", actual ? json_object_new_string(actual) : NULL);
                if (passed)
                        json_object_object_add(l, "systemd", json_object_new_boolean(true));
                json_object_array_add(listen, l);
        }
        json_object_object_add(o, "listen", listen);
        json_object_object_add(o, "connections", json_object_new_int64(s->n_conns));
        if (!detailed)
                return o;
        struct json_object *limits = json_object_new_object(), *refused = json_object_new_object();
        json_object_object_add(limits, "backlog", json_object_new_int64(s->cfg.backlog));
        json_object_object_add(limits, "max_clients", json_object_new_int64(s->cfg.max_clients));
        json_object_object_add(limits, "max_clients_per_ip", json_object_new_int64(s->cfg.max_clients_per_ip));
        json_object_object_add(limits, "idle_timeout", json_object_new_int64(s->cfg.idle_timeout));
        json_object_object_add(limits, "buffer_size", json_object_new_int64((int64_t)s->cfg.buffer_size));
        json_object_object_add(o, "autostart", json_object_new_boolean(s->cfg.autostart));
        json_object_object_add(o, "limits", limits);
        json_object_object_add(o, "accepted", json_object_new_int64((int64_t)s->accepted));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)s->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)s->bytes_out));
        for (int r = 0; r < _REFUSE_MAX; r++)
                json_object_object_add(refused, refuse_reason_to_string((RefuseReason)r), json_object_new_int64((int64_t)s->refused[r]));
        json_object_object_add(o, "refused", refused);
        if (s->vt->describe)
                s->vt->describe((Server *)s, o);
        return o;
}

/* A list asks the kernel about at most this many closed connections (one netlink round trip
 * each, on the event loop): the rest get no kernel_state, and `conn ID` asks for any one. */
#define LIST_DIAG_MAX 256
static unsigned list_diag_budget = UINT_MAX;

static int conn_kernel_state(Manager *m, const Conn *c, const char **ret_via) {
        if (c->fd >= 0) {
                *ret_via = "tcp_info";
                return tcp_kernel_state(c->fd);
        }
        SockDiagResult d;
        if (list_diag_budget == 0) {
                *ret_via = "not asked (more than 256 closed connections in one list; see conn ID)";
                return -EAGAIN;
        }
        if (list_diag_budget != UINT_MAX)
                list_diag_budget--;
        *ret_via = "sock_diag";
        return sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d) < 0 ? -ENOENT : d.state;
}

static struct json_object *conn_to_json(Manager *m, Conn *c, bool detailed) {
        struct json_object *o = json_object_new_object();
        char a[SOCKADDR_STR_MAX];
        const char *via;
        uint64_t now = now_usec(m, CLOCK_REALTIME);

        conn_refresh(c);
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "server", c->session ? NULL : json_object_new_string(c->server->cfg.name));
        json_object_object_add(o, "role", json_object_new_string(c->session ? "client" : "server"));
        if (c->session) {
                Session *s = c->session;
                json_object_object_add(o, "owner_uid", json_object_new_int64(s->owner));
                json_object_object_add(o, "buffered", json_object_new_int64((int64_t)s->rx_len));
                json_object_object_add(o, "watched", json_object_new_boolean(s->watcher != NULL));
        }
        json_object_object_add(o, "peer", json_object_new_string(sockaddr_format(&c->peer.sa, a, sizeof(a))));
        json_object_object_add(o, "local", json_object_new_string(sockaddr_format(&c->local.sa, a, sizeof(a))));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        int k = conn_kernel_state(m, c, &via);
        json_object_object_add(o, "kernel_state", k > 0 ? json_object_new_string(tcp_kernel_state_to_string(k)) : NULL);
        json_object_object_add(o, "kernel_source", json_object_new_string(via));
        json_object_object_add(o, "age_usec", json_object_new_int64((int64_t)(now - c->timeline[0].usec)));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)c->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)c->bytes_out));
        if (!detailed)
                return o;

        struct json_object *tl = json_object_new_array();
        for (unsigned i = 0; i < c->n_timeline; i++) {
                struct json_object *e = json_object_new_object();
                uint64_t end = i + 1 < c->n_timeline ? c->timeline[i + 1].usec : now;
                json_object_object_add(e, "state", json_object_new_string(tcp_state_to_string(c->timeline[i].state)));
                json_object_object_add(e, "source", json_object_new_string(state_source_to_string(c->timeline[i].source)));
                json_object_object_add(e, "since_usec", json_object_new_int64((int64_t)c->timeline[i].usec));
                json_object_object_add(e, "duration_usec", json_object_new_int64((int64_t)(end - c->timeline[i].usec)));
                json_object_object_add(e, "current", json_object_new_boolean(i + 1 == c->n_timeline));
                json_object_array_add(tl, e);
        }
        json_object_object_add(o, "timeline", tl);
        json_object_object_add(o, "close_reason", c->close_reason ? json_object_new_string(c->close_reason) : NULL);
        if (c->session) {
                Session *s = c->session;
                struct json_object *so = json_object_new_object();
                json_object_object_add(so, "owner_uid", json_object_new_int64(s->owner));
                json_object_object_add(so, "owner_pid", json_object_new_int64(s->owner_pid));
                json_object_object_add(so, "connected", json_object_new_boolean(s->connected));
                json_object_object_add(so, "failed", json_object_new_boolean(s->failed));
                json_object_object_add(so, "peer_closed", json_object_new_boolean(s->peer_eof));
                json_object_object_add(so, "ephemeral", json_object_new_boolean(s->opener != NULL));
                json_object_object_add(so, "buffered", json_object_new_int64((int64_t)s->rx_len));
                json_object_object_add(so, "buffer_size", json_object_new_int64((int64_t)c->server->cfg.buffer_size));
                json_object_object_add(so, "read", json_object_new_int64((int64_t)s->rx_total_read));
                json_object_object_add(so, "reading_paused", json_object_new_int64((int64_t)s->rx_paused));
                json_object_object_add(so, "unsent", json_object_new_int64((int64_t)(c->out ? c->out->end - c->out->start : 0)));
                json_object_object_add(so, "watched", json_object_new_boolean(s->watcher != NULL));
                json_object_object_add(o, "session", so);
        }

        struct tcp_info ti;
        if (c->fd >= 0 && tcp_info_get(c->fd, &ti) == 0) {
                struct json_object *t = json_object_new_object();
                json_object_object_add(t, "state", json_object_new_string(tcp_kernel_state_to_string(ti.tcpi_state)));
                json_object_object_add(t, "rtt_usec", json_object_new_int64(ti.tcpi_rtt));
                json_object_object_add(t, "rttvar_usec", json_object_new_int64(ti.tcpi_rttvar));
                json_object_object_add(t, "snd_cwnd", json_object_new_int64(ti.tcpi_snd_cwnd));
                json_object_object_add(t, "snd_mss", json_object_new_int64(ti.tcpi_snd_mss));
                json_object_object_add(t, "retransmits", json_object_new_int64(ti.tcpi_retransmits));
                json_object_object_add(t, "total_retrans", json_object_new_int64(ti.tcpi_total_retrans));
                json_object_object_add(t, "unacked", json_object_new_int64(ti.tcpi_unacked));
                json_object_object_add(t, "lost", json_object_new_int64(ti.tcpi_lost));
                json_object_object_add(t, "rcv_space", json_object_new_int64(ti.tcpi_rcv_space));
                json_object_object_add(o, "tcp_info", t);
        } else
                json_object_object_add(o, "tcp_info", NULL);
        return o;
}

/* Every connection the daemon knows of, open or lingering in the kernel. */
#define FOREACH_LIST(m, i, head)                                                                                                           \
        for (size_t i = 0; i <= (m)->n_servers + 2; i++)                                                                                   \
                for (ListNode *head = i < (m)->n_servers        ? &(m)->servers[i]->conns                                                  \
                                      : i == (m)->n_servers     ? &(m)->session_server->conns                                              \
                                      : i == (m)->n_servers + 1 ? &(m)->closing                                                            \
                                                                : &(m)->lingering;                                                         \
                     head; head = NULL)

static Conn *find_conn(Manager *m, const char *id, CommandContext *ctx) {
        Conn *found = NULL;
        size_t len = strlen(id);

        if (len < 4 || len > ID_STR_LEN) {
                fail(ctx, CONTROL_ERROR_BAD_REQUEST, "connection id '%s': give at least 4 characters of the id", id);
                return NULL;
        }
        FOREACH_LIST(m, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (strncmp(c->id, id, len) != 0)
                                continue;
                        if (found && found != c) {
                                fail(ctx, CONTROL_ERROR_BAD_REQUEST, "connection id '%s' is ambiguous", id);
                                return NULL;
                        }
                        found = c;
                }
        }
        if (!found)
                fail(ctx, CONTROL_ERROR_NOT_FOUND, "no connection '%s'", id);
        return found;
}

static Server *find_server_arg(CommandContext *ctx, bool required) {
        Manager *m = ctx->client->manager;
        const char *name = NULL;
        int r = control_arg_string(ctx->req->args, "server", &name);
        if (r == -EBADMSG) {
                fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"server\" must be a string");
                return NULL;
        }
        if (r == -ENOENT) {
                if (required)
                        fail(ctx, CONTROL_ERROR_BAD_REQUEST, "missing argument \"server\"");
                return NULL;
        }
        for (size_t i = 0; i < m->n_servers; i++)
                if (strcmp(m->servers[i]->cfg.name, name) == 0)
                        return m->servers[i];
        fail(ctx, CONTROL_ERROR_NOT_FOUND, "no server '%s'", name);
        return NULL;
}

/* ---- commands ---- */

static int cmd_status(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        JournalStats js;
        struct json_object *o = json_object_new_object(), *servers = json_object_new_array(), *log = json_object_new_object();

        journal_stats(m->journal, &js);
        json_object_object_add(o, "version", json_object_new_string(TCPEDU_VERSION));
        json_object_object_add(o, "protocol", json_object_new_int(CONTROL_PROTOCOL_VERSION));
        json_object_object_add(o, "pid", json_object_new_int(getpid()));
        json_object_object_add(o, "started_usec", json_object_new_int64((int64_t)m->start_usec));
        json_object_object_add(o, "uptime_usec", json_object_new_int64((int64_t)(now_usec(m, CLOCK_REALTIME) - m->start_usec)));
        json_object_object_add(o, "config_file", json_object_new_string(m->config->main_path));
        json_object_object_add(o, "user", json_object_new_string(m->user_name));
        json_object_object_add(o, "uid", json_object_new_int64((int64_t)geteuid()));
        json_object_object_add(o, "group", json_object_new_string(m->group_name));
        json_object_object_add(o, "gid", json_object_new_int64((int64_t)getegid()));
        for (size_t i = 0; i < m->n_servers; i++)
                json_object_array_add(servers, server_to_json(m->servers[i], false));
        json_object_object_add(o, "servers", servers);
        json_object_object_add(o, "connections", json_object_new_int64(m->n_conns));
        json_object_object_add(o, "lingering", json_object_new_int64((int64_t)m->n_lingering));
        json_object_object_add(o, "sessions", json_object_new_int64(session_count(m)));
        json_object_object_add(o, "max_sessions", json_object_new_int64(m->session_server->cfg.max_clients));
        json_object_object_add(o, "transitions", json_object_new_int64((int64_t)m->transitions));
        json_object_object_add(o, "log_transitions", json_object_new_string(log_transitions_to_string(m->log_transitions)));
        json_object_object_add(o, "log_level", json_object_new_string(log_level_to_string(m->log_level)));
        json_object_object_add(log, "target", json_object_new_string(js.to_stderr ? "stderr" : "journal"));
        json_object_object_add(log, "submitted", json_object_new_int64((int64_t)js.submitted));
        json_object_object_add(log, "written", json_object_new_int64((int64_t)js.written));
        json_object_object_add(log, "dropped", json_object_new_int64((int64_t)(js.dropped_full + js.dropped_failed)));
        json_object_object_add(log, "dropped_queue_full", json_object_new_int64((int64_t)js.dropped_full));
        json_object_object_add(log, "dropped_write_failed", json_object_new_int64((int64_t)js.dropped_failed));
        json_object_object_add(log, "queued", json_object_new_int64((int64_t)js.queued));
        json_object_object_add(o, "log", log);
        ctx->data = o;
        return 0;
}

static int cmd_servers(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        for (size_t i = 0; i < m->n_servers; i++)
                json_object_array_add(arr, server_to_json(m->servers[i], true));
        json_object_object_add(o, "servers", arr);
        ctx->data = o;
        return 0;
}

static int cmd_show(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        ctx->data = server_to_json(s, true);
        return 0;
}

static int start_server(CommandContext *ctx, Server *s) {
        Listener *prepared[LISTEN_MAX];
        char error[512];
        if (server_prepare_listeners(s, NULL, 0, prepared, error, sizeof(error)) < 0)
                return fail(ctx, CONTROL_ERROR_INTERNAL, "%s", error);
        if (server_start(s, prepared, true) < 0)
                return fail(ctx, CONTROL_ERROR_INTERNAL, "server '%s': cannot watch its listeners", s->cfg.name);
        return 0;
}

static int cmd_start(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        if (s->running)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is already running", s->cfg.name);
        if (start_server(ctx, s) < 0)
                return -1;
        ctx->data = server_to_json(s, false);
        return 0;
}

static int cmd_stop(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        if (!s->running)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is not running", s->cfg.name);
        server_stop(s, "stopped by tcpeductl");
        ctx->data = server_to_json(s, false);
        return 0;
}

static int cmd_restart(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        if (s->running)
                server_stop(s, "restarted by tcpeductl");
        if (start_server(ctx, s) < 0)
                return -1;
        ctx->data = server_to_json(s, false);
        return 0;
}

static int cmd_connections_list(CommandContext *ctx);

static int cmd_connections(CommandContext *ctx) {
        list_diag_budget = LIST_DIAG_MAX;
        int r = cmd_connections_list(ctx);
        list_diag_budget = UINT_MAX;
        return r;
}

static int cmd_connections_list(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        Server *filter = find_server_arg(ctx, false);
        if (!filter && ctx->message[0])
                return -1;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        FOREACH_LIST(m, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (!filter || c->server == filter)
                                json_object_array_add(arr, conn_to_json(m, c, false));
                }
        }
        json_object_object_add(o, "connections", arr);
        ctx->data = o;
        return 0;
}

static const char *arg_id(CommandContext *ctx) {
        const char *id = NULL;
        int r = control_arg_string(ctx->req->args, "id", &id);
        if (r < 0)
                fail(ctx, CONTROL_ERROR_BAD_REQUEST, r == -ENOENT ? "missing argument \"id\"" : "\"id\" must be a string");
        return r < 0 ? NULL : id;
}

static int cmd_conn(CommandContext *ctx) {
        const char *id = arg_id(ctx);
        Conn *c = id ? find_conn(ctx->client->manager, id, ctx) : NULL;
        if (!c)
                return -1;
        ctx->data = conn_to_json(ctx->client->manager, c, true);
        return 0;
}

static int cmd_kick(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        const char *id = arg_id(ctx), *how = "close";

        if (control_arg_string(ctx->req->args, "how", &how) == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be a string");
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        Conn *c = id ? find_conn(m, id, ctx) : NULL;
        if (!c)
                return -1;
        if (c->fd < 0)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closed (%s in the kernel)", c->id,
                            tcp_state_to_string(c->state));
        struct json_object *before = conn_to_json(m, c, false);
        if (strcmp(how, "close") == 0) {
                if (c->closing || c->peer_eof) {
                        json_object_put(before);
                        return fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closing", c->id);
                }
                conn_close(c, "kicked by tcpeductl");
        } else if (strcmp(how, "shutdown") == 0) {
                if (c->closing || c->peer_eof) {
                        json_object_put(before);
                        return fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closing", c->id);
                }
                conn_half_close(c, "half-closed by tcpeductl");
        } else if (strcmp(how, "reset") == 0)
                conn_abort(c, "reset by tcpeductl");
        else {
                json_object_put(before);
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        }
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "how", json_object_new_string(how));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        json_object_object_add(o, "before", before);
        ctx->data = o;
        return 0;
}

static int cmd_reload(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        ConfigErrors errs = {};
        char summary[1024];

        if (manager_reload(m, &errs, summary, sizeof(summary)) < 0) {
                struct json_object *arr = json_object_new_array(), *d = json_object_new_object();
                for (size_t i = 0; i < errs.n; i++)
                        json_object_array_add(arr, json_object_new_string(errs.lines[i]));
                json_object_object_add(d, "errors", arr);
                ctx->details = d;
                fail(ctx, CONTROL_ERROR_CONFIG_REJECTED, "configuration rejected (%zu errors); the previous one stays in effect",
                     errs.n + errs.suppressed);
                config_errors_clear(&errs);
                return -1;
        }
        config_errors_clear(&errs);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "config_file", json_object_new_string(m->config->main_path));
        json_object_object_add(o, "changes", json_object_new_string(summary));
        ctx->data = o;
        return 0;
}

static int cmd_monitor(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Server *s = find_server_arg(ctx, false);
        if (!s && ctx->message[0])
                return -1;
        if (!cc->monitor)
                cc->manager->n_monitors++;
        cc->monitor = true;
        snprintf(cc->monitor_server, sizeof(cc->monitor_server), "%s", s ? s->cfg.name : "");
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "server", s ? json_object_new_string(s->cfg.name) : NULL);
        ctx->data = o;
        return 0;
}

static int cmd_chat_say(CommandContext *ctx) {
        const char *text = NULL;
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        int r = control_arg_string(ctx->req->args, "text", &text);
        if (r < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, r == -ENOENT ? "missing argument \"text\"" : "\"text\" must be a string");
        if (s->cfg.type != SERVER_TYPE_CHAT)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "server '%s' is of type %s, not chat", s->cfg.name, s->vt->name);
        if (!s->running)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is not running", s->cfg.name);
        bool control_char = false;
        for (const char *p = text; *p; p++)
                control_char |= (unsigned char)*p < 0x20 || *p == 0x7f;
        /* Line-mode members read it on a terminal: no escape sequences, no line breaks. */
        if (!*text || strlen(text) > s->cfg.max_message || control_char)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"text\" must be one line of 1 to %u bytes without control characters",
                            s->cfg.max_message);
        r = chat_say(s, text);
        if (r < 0)
                return fail(ctx, CONTROL_ERROR_INTERNAL, "cannot post: %s", strerror(-r));
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "server", json_object_new_string(s->cfg.name));
        json_object_object_add(o, "members", json_object_new_int(r));
        ctx->data = o;
        return 0;
}

static int cmd_stats(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        JournalStats js;
        uint64_t accepted = 0, bytes_in = 0, bytes_out = 0, refused[_REFUSE_MAX] = {};
        struct json_object *o = json_object_new_object();

        for (size_t i = 0; i < m->n_servers; i++) {
                Server *s = m->servers[i];
                accepted += s->accepted;
                bytes_in += s->bytes_in;
                bytes_out += s->bytes_out;
                for (int r = 0; r < _REFUSE_MAX; r++)
                        refused[r] += s->refused[r];
        }
        journal_stats(m->journal, &js);
#define STAT(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
        STAT("uptime_sec", (now_usec(m, CLOCK_REALTIME) - m->start_usec) / USEC_PER_SEC);
        STAT("servers", m->n_servers);
        STAT("connections", m->n_conns);
        STAT("connections_lingering", m->n_lingering);
        STAT("connections_accepted", accepted);
        STAT("sessions", session_count(m));
        STAT("sessions_opened", m->sessions_opened);
        STAT("sessions_failed", m->sessions_failed);
        STAT("sessions_refused_limit", m->sessions_refused_limit);
        for (int r = 0; r < _REFUSE_MAX; r++) {
                char k[64];
                snprintf(k, sizeof(k), "refused_%s", refuse_reason_to_string((RefuseReason)r));
                STAT(k, refused[r]);
        }
        STAT("bytes_in", bytes_in);
        STAT("bytes_out", bytes_out);
        STAT("transitions", m->transitions);
        STAT("lingering_untracked", m->lingering_untracked);
        STAT("log_submitted", js.submitted);
        STAT("log_written", js.written);
        STAT("log_dropped_queue_full", js.dropped_full);
        STAT("log_dropped_write_failed", js.dropped_failed);
        STAT("log_queued", js.queued);
        STAT("reloads", m->reloads);
        STAT("reload_failures", m->reload_failures);
        STAT("control_clients", m->n_control_clients);
        STAT("control_monitors", m->n_monitors);
        STAT("control_dropped", m->control_dropped);
#undef STAT
        ctx->data = o;
        return 0;
}

static int cmd_log_level(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        const char *level = NULL;
        int r = control_arg_string(ctx->req->args, "level", &level);
        if (r < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, r == -ENOENT ? "missing argument \"level\"" : "\"level\" must be a string");
        int l = log_level_from_string(level);
        if (l < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                            "invalid level '%s': expected emerg, alert, crit, err, warning, notice, info or debug", level);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "previous", json_object_new_string(log_level_to_string(m->log_level)));
        m->log_level = l;
        json_object_object_add(o, "level", json_object_new_string(log_level_to_string(l)));
        ctx->data = o;
        return 0;
}

/* ---- client sessions ---- */

static int pending_new(CommandContext *ctx, PendingKind kind, Session *s, Pending **ret) {
        ControlClient *cc = ctx->client;
        if (cc->n_pending >= CONTROL_PENDING_MAX)
                return fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)", CONTROL_PENDING_MAX);
        Pending *p = calloc(1, sizeof(Pending));
        if (!p)
                return fail(ctx, CONTROL_ERROR_INTERNAL, "out of memory");
        p->client = cc;
        p->id = ctx->req->id;
        p->kind = kind;
        p->session = s;
        list_append(&cc->pending, &p->node);
        cc->n_pending++;
        *ret = p;
        return 0;
}

static void pending_free(Pending *p) {
        list_remove(&p->node);
        p->client->n_pending--;
        sd_event_source_disable_unref(p->timer);
        free(p);
}

/* Answer a waiting request and forget it. Returns -1 if its client is gone. */
static int pending_reply(Pending *p, char *line) {
        ControlClient *cc = p->client;
        pending_free(p);
        return client_write(cc, line);
}

static bool may_use_session(ControlClient *cc, const Session *s) {
        return cc->admin || cc->cred.uid == s->owner;
}

static Session *find_session(CommandContext *ctx) {
        const char *id = arg_id(ctx);
        Conn *c = id ? find_conn(ctx->client->manager, id, ctx) : NULL;
        if (!c)
                return NULL;
        if (!c->session) {
                fail(ctx, CONTROL_ERROR_NOT_FOUND, "connection %s is not a session (it belongs to server '%s')", c->id,
                     c->server->cfg.name);
                return NULL;
        }
        if (!may_use_session(ctx->client, c->session)) {
                fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "session %s belongs to uid %u (you are uid %u)", c->id,
                     (unsigned)c->session->owner, (unsigned)ctx->client->cred.uid);
                return NULL;
        }
        return c->session;
}

/* Bytes go out as a JSON string when they are UTF-8 text, else as base64. */
static void add_data(struct json_object *o, const uint8_t *p, size_t n) {
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)n));
        if (n == 0) {
                json_object_object_add(o, "data", json_object_new_string(""));
                return;
        }
        if (bytes_are_text(p, n)) {
                json_object_object_add(o, "data", json_object_new_string_len((const char *)p, (int)n));
                return;
        }
        char *b = malloc(base64_encoded_size(n));
        if (!b)
                return;
        size_t l = base64_encode(p, n, b);
        json_object_object_add(o, "data_base64", json_object_new_string_len(b, (int)l));
        free(b);
}

static struct json_object *session_reply_json(Manager *m, Session *s) {
        return conn_to_json(m, s->conn, false);
}

static char *open_failed_reply(int64_t id, Session *s) {
        Conn *c = s->conn;
        char a[SOCKADDR_STR_MAX], msg[256];
        struct json_object *d = json_object_new_object();
        json_object_object_add(d, "id", json_object_new_string(c->id));
        json_object_object_add(d, "target", json_object_new_string(sockaddr_format(&c->peer.sa, a, sizeof(a))));
        json_object_object_add(d, "reason", json_object_new_string(c->close_reason ? c->close_reason : "failed"));
        json_object_object_add(d, "errno", json_object_new_int(s->error));
        snprintf(msg, sizeof(msg), "cannot connect to %s: %s", a, c->close_reason ? c->close_reason : "failed");
        return control_reply_error(id, CONTROL_ERROR_CONNECT_FAILED, msg, d);
}

static int cmd_session_open(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Manager *m = cc->manager;
        const char *target = NULL, *bind_s = NULL, *perr = NULL;
        int64_t timeout_ms = (int64_t)SESSION_CONNECT_TIMEOUT_DEFAULT_SEC * 1000;
        bool ephemeral = false, watch = false;
        SockaddrUnion ta, ba;
        socklen_t len;
        char error[256];

        int r = control_arg_string(ctx->req->args, "target", &target);
        if (r < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, r == -ENOENT ? "missing argument \"target\"" : "\"target\" must be a string");
        if (sockaddr_parse(target, &ta, &len, &perr) < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "target '%s': %s (expected ADDR:PORT, IPv6 as [ADDR]:PORT, numeric)", target,
                            perr ? perr : "invalid");
        if (sockaddr_port(&ta.sa) == 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "target '%s': port 0 cannot be connected to", target);
        r = control_arg_string(ctx->req->args, "bind", &bind_s);
        if (r == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"bind\" must be a string");
        if (bind_s && sockaddr_parse(bind_s, &ba, &len, &perr) < 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "bind address '%s': %s (expected ADDR:PORT, port 0 for any)", bind_s,
                            perr ? perr : "invalid");
        if (bind_s && sockaddr_port(&ba.sa) != 0 && sockaddr_port(&ba.sa) < 1024 && !cc->admin)
                return fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "binding to port %u (below 1024) needs an admin (you are uid %u)",
                            sockaddr_port(&ba.sa), (unsigned)cc->cred.uid);
        r = control_arg_int(ctx->req->args, "timeout_ms", &timeout_ms);
        if (r == -EBADMSG || timeout_ms < 1 || timeout_ms > (int64_t)SESSION_CONNECT_TIMEOUT_MAX_SEC * 1000)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"timeout_ms\" must be a number from 1 to %d",
                            SESSION_CONNECT_TIMEOUT_MAX_SEC * 1000);
        if (control_arg_bool(ctx->req->args, "ephemeral", &ephemeral) == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"ephemeral\" must be true or false");
        if (control_arg_bool(ctx->req->args, "watch", &watch) == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"watch\" must be true or false");
        if (watch && cc->watching)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "this control connection already watches session %s", cc->watching->conn->id);
        if (cc->n_pending >= CONTROL_PENDING_MAX)
                return fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)", CONTROL_PENDING_MAX);

        Session *s;
        r = session_open(m, &ta, bind_s ? &ba : NULL, (uint64_t)timeout_ms * USEC_PER_MSEC, cc->cred.uid, cc->cred.pid, watch ? cc : NULL,
                         &s, error, sizeof(error));
        if (r == -EUSERS)
                return fail(ctx, CONTROL_ERROR_LIMIT, "cannot open a session: %s", error);
        if (r == -EPERM)
                return fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "cannot open a session: %s", error);
        if (r < 0)
                return fail(ctx, r == -EAFNOSUPPORT ? CONTROL_ERROR_BAD_REQUEST : CONTROL_ERROR_CONNECT_FAILED, "%s", error);
        if (s->failed) {
                /* connect() failed at once; the session is already over. */
                ctx->direct_reply = open_failed_reply(ctx->req->id, s);
                snprintf(ctx->message, sizeof(ctx->message), "session %s: %s", s->conn->id, s->conn->close_reason);
                return 1;
        }
        if (ephemeral) {
                s->opener = cc;
                cc->n_ephemeral++;
        }
        if (s->connected) {
                ctx->data = json_object_new_object();
                json_object_object_add(ctx->data, "session", session_reply_json(m, s));
                return 0;
        }
        Pending *p = NULL;
        (void)pending_new(ctx, PENDING_OPEN, s, &p); /* room was checked above */
        return 1;
}

static int cmd_sessions_list(CommandContext *ctx);

static int cmd_sessions(CommandContext *ctx) {
        list_diag_budget = LIST_DIAG_MAX;
        int r = cmd_sessions_list(ctx);
        list_diag_budget = UINT_MAX;
        return r;
}

static int cmd_sessions_list(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        FOREACH_LIST(m, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (c->session)
                                json_object_array_add(arr, conn_to_json(m, c, false));
                }
        }
        json_object_object_add(o, "sessions", arr);
        json_object_object_add(o, "max_sessions", json_object_new_int64(m->session_server->cfg.max_clients));
        json_object_object_add(o, "opened", json_object_new_int64((int64_t)m->sessions_opened));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t)m->sessions_failed));
        json_object_object_add(o, "refused_limit", json_object_new_int64((int64_t)m->sessions_refused_limit));
        ctx->data = o;
        return 0;
}

static size_t send_unsent(const Session *s) {
        const OutBuf *o = s->conn->out;
        return o ? o->end - o->start : 0;
}

static struct json_object *send_result(Session *s, size_t sent) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->conn->id));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)sent));
        json_object_object_add(o, "unsent", json_object_new_int64((int64_t)send_unsent(s)));
        return o;
}

static int cmd_session_send(CommandContext *ctx) {
        const char *text = NULL, *b64 = NULL;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        Conn *c = s->conn;
        int r1 = control_arg_string(ctx->req->args, "data", &text), r2 = control_arg_string(ctx->req->args, "data_base64", &b64);
        if (r1 == -EBADMSG || r2 == -EBADMSG || (text && b64) || (!text && !b64))
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "give one of \"data\" (a string) or \"data_base64\"");
        if (!s->connected || c->fd < 0 || c->shut_wr || c->closing)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s cannot send: %s", c->id,
                            !s->connected ? "not connected"
                            : c->fd < 0   ? "closed"
                                          : "our side is closed (FIN sent)");
        _cleanup_(freep) uint8_t *buf = NULL;
        const uint8_t *data = (const uint8_t *)text;
        size_t len = 0;
        if (text) {
                struct json_object *v;
                json_object_object_get_ex(ctx->req->args, "data", &v);
                len = (size_t)json_object_get_string_len(v);
        } else {
                size_t bl = strlen(b64);
                buf = malloc(bl / 4 * 3 + 3);
                if (!buf)
                        return fail(ctx, CONTROL_ERROR_INTERNAL, "out of memory");
                ssize_t n = base64_decode(b64, bl, buf);
                if (n < 0)
                        return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"data_base64\" is not valid base64");
                data = buf;
                len = (size_t)n;
        }
        if (len == 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "nothing to send");
        /* The queue for the peer is bounded: session_buffer, plus one request. */
        if (send_unsent(s) > c->server->cfg.buffer_size)
                return fail(ctx, CONTROL_ERROR_LIMIT,
                            "session %s: %zu bytes wait to be sent (session_buffer %zu): wait for the reply to the previous send", c->id,
                            send_unsent(s), c->server->cfg.buffer_size);
        if (ctx->client->n_pending >= CONTROL_PENDING_MAX)
                return fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)", CONTROL_PENDING_MAX);
        int r = conn_send(c, data, len);
        conn_mark_active(c);
        if (r < 0)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s: send failed: %s", c->id, strerror(-r));
        /* Flow control: the reply waits while more than session_buffer is queued for the peer. */
        if (s->conn && s->conn->fd >= 0 && send_unsent(s) > c->server->cfg.buffer_size) {
                Pending *p = NULL;
                if (pending_new(ctx, PENDING_SEND, s, &p) < 0)
                        return -1;
                p->sent = len;
                return 1;
        }
        ctx->data = send_result(s, len);
        return 0;
}

/* The client whose session-recv waits on this session, if any. */
static ControlClient *session_receiver(Manager *m, const Session *s) {
        ListNode *n, *k;
        list_foreach(n, &m->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                list_foreach(k, &cc->pending) {
                        const Pending *p = list_entry(k, Pending, node);
                        if (p->kind == PENDING_RECV && p->session == s)
                                return cc;
                }
        }
        return NULL;
}

/* What a session-recv may take now: the number of bytes, or -1 to keep waiting. */
static ssize_t recv_ready(const Pending *p) {
        const Session *s = p->session;
        size_t max = s->conn->server->cfg.buffer_size;
        bool ended = s->peer_eof || s->closed;
        if (p->line) {
                const uint8_t *nl = s->rx_len ? memchr(s->rx + s->rx_start, '\n', MIN(s->rx_len, (size_t)SESSION_RECV_MAX)) : NULL;
                if (nl)
                        return nl - (s->rx + s->rx_start) + 1;
                if (ended || s->rx_len >= MIN(max, (size_t)SESSION_RECV_MAX))
                        return (ssize_t)MIN(s->rx_len, (size_t)SESSION_RECV_MAX); /* no newline will come, or none fits */
                return -1;
        }
        if (p->bytes) {
                if (s->rx_len >= p->bytes)
                        return (ssize_t)p->bytes;
                return ended ? (ssize_t)s->rx_len : -1;
        }
        if (s->rx_len)
                return (ssize_t)MIN(s->rx_len, (size_t)SESSION_RECV_MAX);
        return ended ? 0 : -1;
}

static char *recv_reply(Pending *p, size_t n, bool timed_out) {
        Session *s = p->session;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->conn->id));
        add_data(o, s->rx + s->rx_start, n);
        session_consume(s, n);
        json_object_object_add(o, "eof", json_object_new_boolean((s->peer_eof || s->closed) && s->rx_len == 0));
        json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
        json_object_object_add(o, "buffered", json_object_new_int64((int64_t)s->rx_len));
        return control_reply_ok(p->id, o);
}

static int recv_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        (void)source;
        (void)usec;
        (void)pending_reply(p, recv_reply(p, 0, true));
        return 0;
}

static int cmd_session_recv(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        int64_t timeout_ms = 5000, bytes = 0;
        bool line = false;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        int r = control_arg_int(ctx->req->args, "timeout_ms", &timeout_ms);
        if (r == -EBADMSG || timeout_ms < 0 || timeout_ms > SESSION_RECV_TIMEOUT_MAX_MS)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"timeout_ms\" must be a number from 0 to %ld", SESSION_RECV_TIMEOUT_MAX_MS);
        r = control_arg_int(ctx->req->args, "bytes", &bytes);
        size_t max = MIN(s->conn->server->cfg.buffer_size, (size_t)SESSION_RECV_MAX);
        if (r == -EBADMSG || bytes < 0 || (uint64_t)bytes > max)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"bytes\" must be a number from 1 to %zu (session_buffer, at most 1 MiB)",
                            max);
        if (control_arg_bool(ctx->req->args, "line", &line) == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"line\" must be true or false");
        if (line && bytes)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "give \"bytes\" or \"line\", not both");
        if (s->watcher)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is watched: its data goes to the watcher (pid %d)", s->conn->id,
                            (int)s->watcher->cred.pid);
        /* Only one receive at a time may wait: the data would otherwise go to either. */
        ControlClient *waiting = session_receiver(m, s);
        if (waiting)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "a receive on session %s is already waiting (pid %d)", s->conn->id,
                            (int)waiting->cred.pid);
        Pending *p = NULL;
        if (pending_new(ctx, PENDING_RECV, s, &p) < 0)
                return -1;
        p->bytes = (size_t)bytes;
        p->line = line;
        ssize_t ready = recv_ready(p);
        if (ready >= 0 || timeout_ms == 0) {
                ctx->direct_reply = recv_reply(p, ready >= 0 ? (size_t)ready : 0, ready < 0);
                pending_free(p);
                return 1;
        }
        if (sd_event_add_time_relative(m->event, &p->timer, CLOCK_MONOTONIC, (uint64_t)timeout_ms * USEC_PER_MSEC, USEC_PER_MSEC,
                                       recv_timeout, p) < 0) {
                pending_free(p);
                return fail(ctx, CONTROL_ERROR_INTERNAL, "no timer");
        }
        return 1;
}

static int cmd_session_close(CommandContext *ctx) {
        Manager *m = ctx->client->manager;
        const char *how = "close";
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        Conn *c = s->conn;
        if (control_arg_string(ctx->req->args, "how", &how) == -EBADMSG)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be a string");
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0)
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        if (c->fd < 0)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already closed (%s in the kernel)", c->id,
                            tcp_state_to_string(c->state));
        bool closing = c->closing || c->shut_wr;
        if (strcmp(how, "reset") == 0)
                conn_abort(c, "reset by tcpeductl");
        else if (closing)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already closing (%s)", c->id, tcp_state_to_string(c->state));
        else if (strcmp(how, "shutdown") == 0)
                conn_half_close(c, "half-closed by tcpeductl");
        else
                conn_close(c, "closed by tcpeductl");
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "how", json_object_new_string(how));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        (void)m;
        ctx->data = o;
        return 0;
}

static int cmd_session_watch(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Manager *m = cc->manager;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        if (s->watcher == cc)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "you already watch session %s", s->conn->id);
        if (s->watcher)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already watched (pid %d)", s->conn->id, (int)s->watcher->cred.pid);
        if (cc->watching)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "this control connection already watches session %s", cc->watching->conn->id);
        ControlClient *waiting = session_receiver(m, s);
        if (waiting)
                return fail(ctx, CONTROL_ERROR_CONFLICT, "a receive on session %s is waiting (pid %d)", s->conn->id,
                            (int)waiting->cred.pid);
        control_watch_attach(cc, s);
        ctx->data = json_object_new_object();
        json_object_object_add(ctx->data, "session", conn_to_json(m, s->conn, false));
        ctx->after_reply = true; /* buffered data follows the reply */
        return 0;
}

/* Watch events: the session's own, in the order they happen. */
static int watch_event(Session *s, const char *name, const char *reason, const uint8_t *data, size_t n) {
        ControlClient *cc = s->watcher;
        Conn *c = s->conn;
        struct json_object *ev = json_object_new_object();
        json_object_object_add(ev, "time_usec", json_object_new_int64((int64_t)now_usec(cc->manager, CLOCK_REALTIME)));
        json_object_object_add(ev, "event", json_object_new_string(name));
        json_object_object_add(ev, "conn_id", json_object_new_string(c->id));
        json_object_object_add(ev, "role", json_object_new_string("client"));
        json_object_object_add(ev, "state", json_object_new_string(tcp_state_to_string(c->state)));
        if (reason)
                json_object_object_add(ev, "reason", json_object_new_string(reason));
        if (data)
                add_data(ev, data, n);
        if (strcmp(name, "disconnected") == 0 || strcmp(name, "end") == 0) {
                json_object_object_add(ev, "bytes_in", json_object_new_int64((int64_t)c->bytes_in));
                json_object_object_add(ev, "bytes_out", json_object_new_int64((int64_t)c->bytes_out));
        }
        return client_write(cc, control_event_line(ev));
}

static void session_watch_pump(Manager *m, Session *s) {
        (void)m;
        while (s->watcher && s->rx_len > 0 && !s->watcher->doomed) {
                ControlClient *cc = s->watcher;
                if (cc->out_end - cc->out_start >= CONTROL_OUTPUT_PAUSE)
                        return; /* resumed when its output drains; meanwhile the session buffer fills */
                size_t n = MIN(s->rx_len, (size_t)SESSION_DATA_EVENT_MAX);
                if (watch_event(s, "data", NULL, s->rx + s->rx_start, n) < 0)
                        return;
                session_consume(s, n);
        }
}

void control_watch_attach(ControlClient *cc, Session *s) {
        s->watcher = cc;
        cc->watching = s;
        cc->manager->n_watchers++;
}

void control_watch_detach(Session *s) {
        ControlClient *cc = s->watcher;
        if (!cc)
                return;
        cc->watching = NULL;
        s->watcher = NULL;
        cc->manager->n_watchers--;
}

void control_session_event(Manager *m, Session *s, SessionEvent ev) {
        ListNode *n, *tmp;

        event_depth++;
        if (s->watcher && !s->watcher->doomed) {
                Conn *c = s->conn;
                switch (ev) {
                case SESSION_EVENT_CONNECTED:
                        (void)watch_event(s, "connected", NULL, NULL, 0);
                        break;
                case SESSION_EVENT_FAILED:
                        (void)watch_event(s, "error", c->close_reason, NULL, 0);
                        break;
                case SESSION_EVENT_DATA:
                        session_watch_pump(m, s);
                        break;
                case SESSION_EVENT_PEER_EOF:
                        session_watch_pump(m, s);
                        if (s->watcher)
                                (void)watch_event(s, "peer-closed", "FIN received from the peer", NULL, 0);
                        break;
                case SESSION_EVENT_DISCONNECTED:
                        session_watch_pump(m, s);
                        if (s->watcher)
                                (void)watch_event(s, "disconnected", c->close_reason, NULL, 0);
                        break;
                case SESSION_EVENT_GONE:
                        (void)watch_event(s, "end", c->close_reason, NULL, 0);
                        break;
                default:
                        break;
                }
        }
        if (ev == SESSION_EVENT_GONE) {
                control_watch_detach(s);
                if (s->opener) {
                        s->opener->n_ephemeral--;
                        s->opener = NULL;
                }
        }
        list_foreach_safe (n, tmp, &m->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                ListNode *k, *ktmp;
                if (cc->doomed)
                        continue;
                list_foreach_safe (k, ktmp, &cc->pending) {
                        Pending *p = list_entry(k, Pending, node);
                        if (p->session != s)
                                continue;
                        char *line = NULL;
                        if (p->kind == PENDING_OPEN) {
                                if (ev == SESSION_EVENT_CONNECTED) {
                                        struct json_object *d = json_object_new_object();
                                        json_object_object_add(d, "session", session_reply_json(m, s));
                                        line = control_reply_ok(p->id, d);
                                } else if (ev == SESSION_EVENT_FAILED || ev == SESSION_EVENT_DISCONNECTED || ev == SESSION_EVENT_GONE)
                                        line = open_failed_reply(p->id, s);
                        } else if (p->kind == PENDING_RECV) {
                                if (ev == SESSION_EVENT_GONE)
                                        line = control_reply_error(p->id, CONTROL_ERROR_NOT_FOUND, "the session ended", NULL);
                                else {
                                        ssize_t ready = recv_ready(p);
                                        if (ready >= 0)
                                                line = recv_reply(p, (size_t)ready, false);
                                }
                        } else if (p->kind == PENDING_SEND) {
                                if (ev == SESSION_EVENT_DRAINED || ev == SESSION_EVENT_DISCONNECTED || ev == SESSION_EVENT_GONE)
                                        line = s->conn->fd >= 0 || ev == SESSION_EVENT_DRAINED
                                                       ? control_reply_ok(p->id, send_result(s, p->sent))
                                                       : control_reply_error(p->id, CONTROL_ERROR_CONFLICT,
                                                                             "the session closed before its data was sent", NULL);
                        }
                        if (line && pending_reply(p, line) < 0)
                                break;
                }
        }
        event_depth--;
}

/* Doomed clients, dropped while a walk over the list was under way, are freed here. */
static int on_reap(sd_event_source *source, void *userdata) {
        Manager *m = userdata;
        ListNode *n, *tmp;
        (void)source;
        list_foreach_safe (n, tmp, &m->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                if (cc->doomed && !cc->busy)
                        client_free(cc);
        }
        return 0;
}

static void client_reap_schedule(Manager *m) {
        if (!m->control_reap)
                (void)sd_event_add_defer(m->event, &m->control_reap, on_reap, m);
        if (m->control_reap)
                sd_event_source_set_enabled(m->control_reap, SD_EVENT_ONESHOT);
}

typedef struct CommandHandler {
        const char *name;
        int (*run)(CommandContext *ctx);
} CommandHandler;

static const CommandHandler handlers[] = {
        { "status", cmd_status },
        { "servers", cmd_servers },
        { "show", cmd_show },
        { "start", cmd_start },
        { "stop", cmd_stop },
        { "restart", cmd_restart },
        { "connections", cmd_connections },
        { "conn", cmd_conn },
        { "kick", cmd_kick },
        { "reload", cmd_reload },
        { "monitor", cmd_monitor },
        { "stats", cmd_stats },
        { "chat-say", cmd_chat_say },
        { "log-level", cmd_log_level },
        { "session-open", cmd_session_open },
        { "session-send", cmd_session_send },
        { "session-recv", cmd_session_recv },
        { "session-close", cmd_session_close },
        { "session-watch", cmd_session_watch },
        { "sessions", cmd_sessions },
};

static void log_mutation(ControlClient *cc, const ControlRequest *req, bool ok, const char *error) {
        Manager *m = cc->manager;
        /* What members say is never logged, and a notice posted into a room is no exception. */
        struct json_object *text;
        if (json_object_object_get_ex(req->args, "text", &text))
                json_object_object_add(req->args, "text", json_object_new_string("(not logged)"));
        const char *args = json_object_to_json_string_ext(req->args, JSON_C_TO_STRING_PLAIN);
        LogEntry e;
        log_entry_init(&e, LOG_NOTICE, MID_CONTROL);
        log_entry_add(&e, "MESSAGE", "control: uid %u (pid %d) ran %s %s: %s", (unsigned)cc->cred.uid, (int)cc->cred.pid, req->command,
                      args, ok ? "ok" : error);
        log_entry_add(&e, "TCPEDU_EVENT", "control");
        log_entry_add(&e, "TCPEDU_CONTROL_COMMAND", "%s", req->command);
        log_entry_add(&e, "TCPEDU_CONTROL_ARGS", "%s", args);
        log_entry_add(&e, "TCPEDU_CONTROL_UID", "%u", (unsigned)cc->cred.uid);
        log_entry_add(&e, "TCPEDU_CONTROL_PID", "%d", (int)cc->cred.pid);
        log_entry_add(&e, "TCPEDU_CONTROL_RESULT", "%s", ok ? "ok" : error);
        journal_submit(m->journal, &e);
}

/* Handle one request line. Returns -1 if the client is gone. */
static int client_handle_line(ControlClient *cc, const char *line, size_t len) {
        ControlRequest req;
        const char *perr = NULL;

        if (control_request_parse(line, len, &req, &perr) < 0)
                return client_write(cc, control_reply_error(req.id, CONTROL_ERROR_BAD_REQUEST, perr, NULL));

        const ControlCommand *cmd = control_command_find(req.command);
        const CommandHandler *h = NULL;
        for (size_t i = 0; cmd && i < ELEMENTSOF(handlers); i++)
                if (strcmp(handlers[i].name, cmd->name) == 0)
                        h = &handlers[i];
        char *reply;
        if (!h) {
                char msg[128];
                snprintf(msg, sizeof(msg), "unknown command '%.64s'", req.command);
                reply = control_reply_error(req.id, CONTROL_ERROR_UNKNOWN_COMMAND, msg, NULL);
        } else if (cmd->mutating && !cc->admin) {
                char msg[160];
                snprintf(msg, sizeof(msg), "'%s' needs root, the daemon's user or a member of admin_group (you are uid %u)", cmd->name,
                         (unsigned)cc->cred.uid);
                log_mutation(cc, &req, false, "permission denied");
                reply = control_reply_error(req.id, CONTROL_ERROR_PERMISSION_DENIED, msg, NULL);
        } else {
                CommandContext ctx = { .client = cc, .req = &req };
                cc->busy = true;
                int r = h->run(&ctx);
                cc->busy = false;
                if (cc->doomed) {
                        json_object_put(ctx.data);
                        json_object_put(ctx.details);
                        free(ctx.direct_reply);
                        control_request_done(&req);
                        client_free(cc);
                        return -1;
                }
                /* A reply that waits is logged as started; one made by the command itself failed (message set) or not. */
                if (cmd->logged)
                        log_mutation(cc, &req, r == 0, r == 1 && !ctx.message[0] ? "started" : ctx.message);
                if (r == 1) {
                        /* Answered later (a pending request), or by the command's own reply. */
                        control_request_done(&req);
                        return ctx.direct_reply ? client_write(cc, ctx.direct_reply) : 0;
                }
                reply = r >= 0 ? control_reply_ok(req.id, ctx.data) : control_reply_error(req.id, ctx.code, ctx.message, ctx.details);
                if (ctx.after_reply && r >= 0) {
                        control_request_done(&req);
                        if (client_write(cc, reply) < 0)
                                return -1;
                        if (cc->watching) {
                                event_depth++;
                                session_watch_pump(cc->manager, cc->watching);
                                event_depth--;
                                if (cc->doomed) {
                                        client_reap_schedule(cc->manager);
                                        return -1;
                                }
                        }
                        return 0;
                }
        }
        control_request_done(&req);
        return client_write(cc, reply);
}

static int on_client_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlClient *cc = userdata;
        (void)s;
        (void)usec;
        if (cc->monitor)
                return 0;
        if (cc->watching || cc->n_pending) {
                /* Waiting on a session is not idleness: look again later. */
                sd_event_source_set_time(cc->idle_timer, usec + CONTROL_IDLE_USEC);
                sd_event_source_set_enabled(cc->idle_timer, SD_EVENT_ONESHOT);
                return 0;
        }
        client_drop(cc, "idle for 300 s");
        return 0;
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ControlClient *cc = userdata;
        Manager *m = cc->manager;
        (void)s;

        if (revents & EPOLLOUT) {
                while (cc->out_start < cc->out_end) {
                        ssize_t n = send(fd, cc->out + cc->out_start, cc->out_end - cc->out_start, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        break;
                                client_free(cc);
                                return 0;
                        }
                        cc->out_start += (size_t)n;
                }
                if (cc->out_start == cc->out_end && cc->close_after_flush) {
                        client_free(cc);
                        return 0;
                }
                client_update_events(cc);
                if (cc->watching && cc->watching->rx_len > 0 && cc->out_end - cc->out_start < CONTROL_OUTPUT_PAUSE) {
                        event_depth++;
                        session_watch_pump(m, cc->watching);
                        event_depth--;
                        if (cc->doomed) {
                                client_reap_schedule(m);
                                return 0;
                        }
                }
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) || cc->close_after_flush)
                return 0;

        sd_event_source_set_time(cc->idle_timer, now_usec(m, CLOCK_MONOTONIC) + CONTROL_IDLE_USEC);
        ssize_t n = recv(fd, cc->in + cc->in_len, CONTROL_LINE_MAX + 1 - cc->in_len, MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                client_free(cc);
                return 0;
        }
        if (n == 0) {
                /* The client is done sending: deliver what it is still owed, then close. */
                if (cc->out_start == cc->out_end)
                        client_free(cc);
                else {
                        cc->close_after_flush = true;
                        client_update_events(cc);
                }
                return 0;
        }
        if (n < 0)
                return 0;
        cc->in_len += (size_t)n;

        /* One recv() of at most 64 KiB per wakeup bounds the requests handled before others get a turn. */
        size_t start = 0;
        for (;;) {
                char *nl = memchr(cc->in + start, '\n', cc->in_len - start);
                if (!nl)
                        break;
                size_t len = (size_t)(nl - (cc->in + start));
                if (cc->discarding)
                        cc->discarding = false; /* the end of an over-long line: drop it */
                else if (client_handle_line(cc, cc->in + start, len) < 0)
                        return 0;
                start += len + 1;
        }
        memmove(cc->in, cc->in + start, cc->in_len - start);
        cc->in_len -= start;
        if (cc->in_len > CONTROL_LINE_MAX) {
                /* A line longer than the limit: answer once and skip the rest of it. */
                cc->in_len = 0;
                if (!cc->discarding) {
                        cc->discarding = true;
                        char msg[96];
                        snprintf(msg, sizeof(msg), "request line longer than %d bytes", CONTROL_LINE_MAX);
                        if (client_write(cc, control_reply_error(-1, CONTROL_ERROR_BAD_REQUEST, msg, NULL)) < 0)
                                return 0;
                }
        }
        return 0;
}

static bool peer_is_admin(Manager *m, int fd, const struct ucred *cred) {
        if (cred->uid == 0 || cred->uid == geteuid())
                return true;
        /* admin_group was resolved when the config was applied: no NSS lookup in the loop. */
        if (!m->admin_gid_valid)
                return false;
        if (cred->gid == m->admin_gid)
                return true;
        socklen_t len = 64 * sizeof(gid_t);
        _cleanup_(freep) gid_t *groups = malloc(len);
        if (!groups)
                return false;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                if (errno != ERANGE)
                        return false;
                free(groups);
                groups = malloc(len); /* the kernel said how much it needs */
                if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        return false;
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == m->admin_gid)
                        return true;
        return false;
}

/* Out of fds with clients waiting: the listening socket stays readable, and returning would call
 * us again at once (a busy loop) while the client waits for a greeting that never comes. The spare
 * fd lets one client in to be told, and is taken again; without it, accepting pauses for 100 ms.
 * Logged at most once a second, with a count. Returns true if a client was told. */
static bool control_out_of_fds(Manager *m, int fd) {
        int err = errno;
        bool told = false;
        if (m->spare_fd >= 0) {
                m->spare_fd = safe_close(m->spare_fd);
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd >= 0) {
                        char *line = control_reply_error(-1, CONTROL_ERROR_LIMIT, "the daemon is out of file descriptors", NULL);
                        if (line)
                                (void)send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
                        free(line);
                        safe_close(cfd);
                        m->control_dropped++;
                        m->control_fd_refused++;
                        told = true;
                }
                m->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        uint64_t now = now_usec(m, CLOCK_MONOTONIC);
        if (now >= m->control_fd_logged_usec + USEC_PER_SEC) {
                log_msg(m, LOG_WARNING, MID_LIMIT,
                        "control socket: cannot accept: %s (%" PRIu64 " control clients refused since the last report)", strerror(err),
                        m->control_fd_refused - m->control_fd_refused_logged);
                m->control_fd_logged_usec = now;
                m->control_fd_refused_logged = m->control_fd_refused;
        }
        if (!told)
                accept_pause(m);
        return told;
}

static int on_control_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void)s;
        (void)revents;

        for (int i = 0; i < 16; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if ((errno == EMFILE || errno == ENFILE) && control_out_of_fds(m, fd))
                                continue;
                        return 0;
                }
                if (m->n_control_clients >= CONTROL_CLIENTS_MAX) {
                        char *line = control_reply_error(-1, CONTROL_ERROR_LIMIT, "too many control clients", NULL);
                        if (line)
                                (void)send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
                        free(line);
                        safe_close(cfd);
                        m->control_dropped++;
                        continue;
                }
                ControlClient *cc = calloc(1, sizeof(ControlClient));
                if (cc)
                        cc->in = malloc(CONTROL_LINE_MAX + 1);
                if (!cc || !cc->in) {
                        if (cc)
                                free(cc);
                        safe_close(cfd);
                        continue;
                }
                cc->manager = m;
                cc->fd = cfd;
                list_init(&cc->pending);
                socklen_t len = sizeof(cc->cred);
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cc->cred, &len) < 0)
                        cc->cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
                cc->admin = peer_is_admin(m, cfd, &cc->cred);
                list_append(&m->control_clients, &cc->node);
                m->n_control_clients++;
                if (sd_event_add_io(m->event, &cc->io, cfd, EPOLLIN, on_client_io, cc) < 0 ||
                    sd_event_add_time_relative(m->event, &cc->idle_timer, CLOCK_MONOTONIC, CONTROL_IDLE_USEC, USEC_PER_SEC, on_client_idle,
                                               cc) < 0) {
                        client_free(cc);
                        continue;
                }
                (void)client_write(cc, control_greeting_line(TCPEDU_VERSION));
        }
        return 0;
}

/* Counters and durations go out as numbers, everything else as strings. */
static struct json_object *field_value(const char *v) {
        size_t n = strlen(v);
        if (n == 0 || n > 18 || strspn(v, "0123456789") != n || (v[0] == '0' && n > 1))
                return json_object_new_string(v);
        return json_object_new_int64(strtoll(v, NULL, 10));
}

/* Monitors get every event as JSON: the journal entry's fields, TCPEDU_ prefix dropped, lowercased. */
void control_broadcast(Manager *m, const LogEntry *e) {
        const char *server = NULL, *conn_id = NULL, *event = NULL;
        const char *p = e->buf;
        struct json_object *ev = json_object_new_object();

        json_object_object_add(ev, "time_usec", json_object_new_int64((int64_t)now_usec(m, CLOCK_REALTIME)));
        for (unsigned i = 0; i < e->n_fields; i++) {
                size_t l = strlen(p);
                const char *eq = strchr(p, '=');
                if (eq) {
                        char key[64];
                        const char *k = p;
                        size_t kl = (size_t)(eq - p);
                        if (kl > 7 && strncmp(k, "TCPEDU_", 7) == 0)
                                k += 7, kl -= 7;
                        if (kl < sizeof(key) && strncmp(p, "PRIORITY", 8) != 0 && strncmp(p, "SYSLOG_IDENTIFIER", 17) != 0) {
                                for (size_t j = 0; j < kl; j++)
                                        key[j] = (char)(k[j] >= 'A' && k[j] <= 'Z' ? k[j] + 32 : k[j]);
                                key[kl] = 0;
                                json_object_object_add(ev, key, field_value(eq + 1));
                                if (strcmp(key, "server") == 0)
                                        server = eq + 1;
                                else if (strcmp(key, "conn_id") == 0)
                                        conn_id = eq + 1;
                                else if (strcmp(key, "event") == 0)
                                        event = eq + 1;
                        }
                }
                p += l + 1;
        }
        ListNode *n, *tmp;
        event_depth++;
        list_foreach_safe (n, tmp, &m->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                /* A watcher gets its session's transitions; its other events are made for it. */
                bool watched = cc->watching && cc->watching->conn && conn_id && strcmp(conn_id, cc->watching->conn->id) == 0 && event &&
                               strcmp(event, "transition") == 0;
                if (cc->doomed ||
                    (!watched && (!cc->monitor || (cc->monitor_server[0] && (!server || strcmp(server, cc->monitor_server) != 0)))))
                        continue;
                (void)client_write(cc, control_event_line(json_object_get(ev)));
        }
        event_depth--;
        json_object_put(ev);
}

/* Returns 1 if it created the directory the socket goes in, 0 if that existed. */
static int mkdir_parents(const char *path) {
        char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
        int created = 0;
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                created = mkdir(buf, 0755) == 0;
                if (!created && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        return created;
}

int control_open(Manager *m, const char *configured) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        /* Socket activation: a stream socket named "control" from tcpedud.socket. */
        r = manager_take_passed_control(m);
        m->control_fd = r >= 0 ? r : -1;
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT) {
                /* Under systemd with RuntimeDirectory= (tcpedud.service) and not as root: there,
                 * mode 0660, so that only the daemon's group can connect, as through tcpedud.socket. */
                const char *rtdir = getenv("RUNTIME_DIRECTORY");
                bool in_rtdir = (!configured || !configured[0]) && geteuid() != 0 && rtdir && rtdir[0] == '/';
                if (in_rtdir) {
                        size_t n = strcspn(rtdir, ":"); /* several directories are separated by ':' */
                        r = snprintf(m->control_path, sizeof(m->control_path), "%.*s/control.sock", (int)n, rtdir);
                        r = r < (int)sizeof(m->control_path) ? 0 : -ENAMETOOLONG;
                } else
                        r = control_socket_path(configured, m->control_path, sizeof(m->control_path));
                if (r < 0) {
                        log_msg(m, LOG_WARNING, NULL, "no control socket: %s",
                                r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long for a Unix socket");
                        return 0;
                }
                if (strlen(m->control_path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                memcpy(sa.sun_path, m->control_path, strlen(m->control_path) + 1);
                m->control_dir_created = mkdir_parents(m->control_path) > 0;

                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                /* A socket file left behind by a daemon that died is replaced; a live one is not. */
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        safe_close(fd);
                        return -EADDRINUSE;
                }
                safe_close(fd);
                (void)unlink(m->control_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                /* Anyone who can reach the socket may read; SO_PEERCRED decides who may change things. */
                mode_t old = umask(in_rtdir ? 0117 : 0111);
                r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
                umask(old);
                if (r < 0 || listen(fd, 64) < 0) {
                        r = negative_errno();
                        safe_close(fd);
                        return r;
                }
                m->control_fd = fd;
                m->control_unlink = true;
        }
        r = sd_event_add_io(m->event, &m->control_source, m->control_fd, EPOLLIN, on_control_accept, m);
        if (r < 0)
                return r;
        return 0;
}

void control_close(Manager *m) {
        while (!list_empty(&m->control_clients)) {
                ControlClient *cc = list_first(&m->control_clients, ControlClient, node);
                cc->busy = false;
                cc->doomed = false;
                client_free(cc);
        }
        m->control_reap = sd_event_source_disable_unref(m->control_reap);
        m->control_source = sd_event_source_disable_unref(m->control_source);
        if (m->control_unlink) {
                m->control_fd = safe_close(m->control_fd);
                (void)unlink(m->control_path);
        } else if (m->control_fd >= 0) {
                manager_release_passed(m, m->control_fd); /* systemd's: closed with the others */
                m->control_fd = -1;
        }
}
