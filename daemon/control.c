/* SPDX-License-Identifier: MIT */
/* The control socket: JSON lines from tcpeductl, checked by peer credentials, dispatched by a
 * table. Every client has bounded input (one request line), bounded output (replies and monitor
 * events) and a bounded number of requests handled per wakeup, so none can stall the loop. */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "control-proto.h"
#include "kernel-tcp.h"
#include "macro.h"
#include "tcpedud.h"

typedef struct ControlClient {
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
} ControlClient;

typedef struct CommandContext {
        ControlClient *client;
        ControlRequest *req;
        struct json_object *data; /* ok: the reply's data */
        ControlError code; /* else this error */
        char message[512];
        struct json_object *details;
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
        if (cc->busy) {
                /* Its own command led here (an event overflowed its monitor output, say):
                 * client_handle_line() frees it when the command returns. */
                cc->doomed = true;
                return;
        }
        if (cc->monitor)
                m->n_monitors--;
        m->n_control_clients--;
        list_remove(&cc->node);
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
                for (unsigned k = 0; k < s->n_listeners; k++)
                        if (strcmp(s->listeners[k]->spec, s->cfg.listen[i].spec) == 0)
                                actual = sockaddr_format(&s->listeners[k]->bound.sa, a, sizeof(a));
                json_object_object_add(l, "address", actual ? json_object_new_string(actual) : NULL);
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

static int conn_kernel_state(Manager *m, const Conn *c, const char **ret_via) {
        if (c->fd >= 0) {
                *ret_via = "tcp_info";
                return tcp_kernel_state(c->fd);
        }
        SockDiagResult d;
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
        json_object_object_add(o, "server", json_object_new_string(c->server->cfg.name));
        json_object_object_add(o, "role", json_object_new_string("server"));
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
        for (size_t i = 0; i <= (m)->n_servers + 1; i++)                                                                                   \
                for (ListNode *head = i < (m)->n_servers    ? &(m)->servers[i]->conns                                                      \
                                      : i == (m)->n_servers ? &(m)->closing                                                                \
                                                            : &(m)->lingering;                                                             \
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
        for (size_t i = 0; i < m->n_servers; i++)
                json_object_array_add(servers, server_to_json(m->servers[i], false));
        json_object_object_add(o, "servers", servers);
        json_object_object_add(o, "connections", json_object_new_int64(m->n_conns));
        json_object_object_add(o, "lingering", json_object_new_int64((int64_t)m->n_lingering));
        json_object_object_add(o, "transitions", json_object_new_int64((int64_t)m->transitions));
        json_object_object_add(o, "log_transitions", json_object_new_string(log_transitions_to_string(m->log_transitions)));
        json_object_object_add(o, "log_level", json_object_new_string(log_level_to_string(m->log_level)));
        json_object_object_add(log, "target", json_object_new_string(js.to_stderr ? "stderr" : "journal"));
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

static int cmd_connections(CommandContext *ctx) {
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
        if (!*text || strlen(text) > s->cfg.max_message || strpbrk(text, "\r\n"))
                return fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"text\" must be one line of 1 to %u bytes", s->cfg.max_message);
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
                        control_request_done(&req);
                        client_free(cc);
                        return -1;
                }
                if (cmd->mutating)
                        log_mutation(cc, &req, r >= 0, ctx.message);
                reply = r >= 0 ? control_reply_ok(req.id, ctx.data) : control_reply_error(req.id, ctx.code, ctx.message, ctx.details);
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

static int on_control_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void)s;
        (void)revents;

        for (int i = 0; i < 16; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE)
                                log_msg(m, LOG_WARNING, MID_LIMIT, "control socket: cannot accept: %s", strerror(errno));
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
        const char *server = NULL;
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
                        }
                }
                p += l + 1;
        }
        ListNode *n, *tmp;
        list_foreach_safe (n, tmp, &m->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                if (!cc->monitor || (cc->monitor_server[0] && (!server || strcmp(server, cc->monitor_server) != 0)))
                        continue;
                (void)client_write(cc, control_event_line(json_object_get(ev)));
        }
        json_object_put(ev);
}

static int mkdir_parents(const char *path) {
        char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        return 0;
}

int control_open(Manager *m, const char *configured) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char **names = NULL;
        int r;

        m->control_fd = -1;
        /* Socket activation: a stream socket named "control" from tcpedud.socket. */
        int n = sd_listen_fds_with_names(false, &names);
        for (int i = 0; i < n; i++) {
                if (names && strcmp(names[i], "control") == 0 && m->control_fd < 0)
                        m->control_fd = SD_LISTEN_FDS_START + i;
                free(names ? names[i] : NULL);
        }
        free(names);

        if (m->control_fd < 0) {
                r = control_socket_path(configured, m->control_path, sizeof(m->control_path));
                if (r < 0) {
                        log_msg(m, LOG_WARNING, NULL, "no control socket: %s",
                                r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long for a Unix socket");
                        return 0;
                }
                if (strlen(m->control_path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                memcpy(sa.sun_path, m->control_path, strlen(m->control_path) + 1);
                (void)mkdir_parents(m->control_path);

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
                mode_t old = umask(0111);
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
        while (!list_empty(&m->control_clients))
                client_free(list_first(&m->control_clients, ControlClient, node));
        m->control_source = sd_event_source_disable_unref(m->control_source);
        m->control_fd = safe_close(m->control_fd);
        if (m->control_unlink)
                (void)unlink(m->control_path);
}
