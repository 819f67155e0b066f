/* SPDX-License-Identifier: MIT */
/* The commands about the daemon, its servers and connections: status, servers, show, start, stop,
 * restart, connections, conn, kick, reload, monitor, chat-say, stats, log-level. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "chat.h"
#include "conn-kernel.h"
#include "control-internal.h"
#include "macro.h"
#include "server-type.h"

/* ---- commands ---- */

/* Where the recorded states come from, why, and the eBPF source's counters. */
static struct json_object *kernel_source_json(Core *core) {
        ConnKernelStats ks;
        struct json_object *k = json_object_new_object();
        conn_kernel_stats(core, &ks);
        json_object_object_add(k, "source", json_object_new_string(ks.bpf ? "bpf" : "tcp_info"));
        json_object_object_add(k, "reason", json_object_new_string(core->kernel_source_why));
        if (!ks.bpf)
                return k;
#define KSTAT(name, v) json_object_object_add(k, name, json_object_new_int64((int64_t)(v)))
        KSTAT("events", ks.events);
        KSTAT("filtered", ks.filtered);
        KSTAT("dropped", ks.dropped);
        KSTAT("held", ks.held);
        KSTAT("unmatched", ks.unmatched);
        KSTAT("held_overflow", ks.held_overflow);
        KSTAT("fallbacks", ks.fallbacks);
        KSTAT("retransmits", ks.retransmits);
        KSTAT("resets_sent", ks.resets_sent);
        KSTAT("resets_received", ks.resets_received);
#undef KSTAT
        return k;
}

int cmd_status(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        JournalStats js;
        struct json_object *o = json_object_new_object(), *servers = json_object_new_array(), *log = json_object_new_object();

        journal_stats(ctl->core->journal, &js);
        json_object_object_add(o, "version", json_object_new_string(TCPEDU_VERSION));
        json_object_object_add(o, "protocol", json_object_new_int(CONTROL_PROTOCOL_VERSION));
        json_object_object_add(o, "pid", json_object_new_int(getpid()));
        json_object_object_add(o, "started_usec", json_object_new_int64((int64_t)ctl->core->start_usec));
        json_object_object_add(o, "uptime_usec",
                               json_object_new_int64((int64_t)(core_now(ctl->core, CLOCK_REALTIME) - ctl->core->start_usec)));
        json_object_object_add(o, "config_file", json_object_new_string(ctl->core->config->main_path));
        json_object_object_add(o, "user", json_object_new_string(ctl->core->user_name));
        json_object_object_add(o, "uid", json_object_new_int64((int64_t)geteuid()));
        json_object_object_add(o, "group", json_object_new_string(ctl->core->group_name));
        json_object_object_add(o, "gid", json_object_new_int64((int64_t)getegid()));
        for (size_t i = 0; i < ctl->core->n_servers; i++)
                json_object_array_add(servers, server_to_json(ctl->core->servers[i], false));
        json_object_object_add(o, "servers", servers);
        json_object_object_add(o, "connections", json_object_new_int64(ctl->core->n_conns));
        json_object_object_add(o, "lingering", json_object_new_int64((int64_t)ctl->core->n_lingering));
        json_object_object_add(o, "sessions", json_object_new_int64(session_count(ctl->core)));
        json_object_object_add(o, "max_sessions", json_object_new_int64(ctl->core->session_server->cfg.max_clients));
        json_object_object_add(o, "transitions", json_object_new_int64((int64_t)ctl->core->transitions));
        json_object_object_add(o, "kernel", kernel_source_json(ctl->core));
        json_object_object_add(o, "log_transitions", json_object_new_string(log_transitions_to_string(ctl->core->log_transitions)));
        json_object_object_add(o, "log_level", json_object_new_string(log_level_to_string(ctl->core->log_level)));
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

int cmd_servers(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        for (size_t i = 0; i < ctl->core->n_servers; i++)
                json_object_array_add(arr, server_to_json(ctl->core->servers[i], true));
        json_object_object_add(o, "servers", arr);
        ctx->data = o;
        return 0;
}

int cmd_show(CommandContext *ctx) {
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
                return command_fail(ctx, CONTROL_ERROR_INTERNAL, "%s", error);
        if (server_start(s, prepared, true) < 0)
                return command_fail(ctx, CONTROL_ERROR_INTERNAL, "server '%s': cannot watch its listeners", s->cfg.name);
        return 0;
}

int cmd_start(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        if (s->running)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is already running", s->cfg.name);
        if (start_server(ctx, s) < 0)
                return -1;
        ctx->data = server_to_json(s, false);
        return 0;
}

int cmd_stop(CommandContext *ctx) {
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        if (!s->running)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is not running", s->cfg.name);
        server_stop(s, "stopped by tcpeductl");
        ctx->data = server_to_json(s, false);
        return 0;
}

int cmd_restart(CommandContext *ctx) {
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

static int cmd_connections_list(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        Server *filter = find_server_arg(ctx, false);
        if (!filter && ctx->message[0])
                return -1;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        FOREACH_LIST(ctl->core, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (!filter || c->server == filter)
                                json_object_array_add(arr, conn_to_json(ctl, c, false));
                }
        }
        json_object_object_add(o, "connections", arr);
        ctx->data = o;
        return 0;
}

int cmd_connections(CommandContext *ctx) {
        return with_diag_budget(ctx, cmd_connections_list);
}

const char *arg_id(CommandContext *ctx) {
        const char *id = NULL;
        int r = control_arg_string(ctx->req->args, "id", &id);
        if (r < 0)
                command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, r == -ENOENT ? "missing argument \"id\"" : "\"id\" must be a string");
        return r < 0 ? NULL : id;
}

int cmd_conn(CommandContext *ctx) {
        const char *id = arg_id(ctx);
        Conn *c = id ? find_conn(ctx->client->control, id, ctx) : NULL;
        if (!c)
                return -1;
        ctx->data = conn_to_json(ctx->client->control, c, true);
        return 0;
}

int cmd_kick(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        const char *id = arg_id(ctx), *how = "close";

        if (control_arg_string(ctx->req->args, "how", &how) == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be a string");
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        Conn *c = id ? find_conn(ctl, id, ctx) : NULL;
        if (!c)
                return -1;
        if (c->fd < 0)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closed (%s in the kernel)", c->id,
                                    tcp_state_to_string(c->state));
        struct json_object *before = conn_to_json(ctl, c, false);
        if (strcmp(how, "close") == 0) {
                if (c->closing || c->peer_eof) {
                        json_object_put(before);
                        return command_fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closing", c->id);
                }
                conn_close(c, "kicked by tcpeductl");
        } else if (strcmp(how, "shutdown") == 0) {
                if (c->closing || c->peer_eof) {
                        json_object_put(before);
                        return command_fail(ctx, CONTROL_ERROR_CONFLICT, "connection %s is already closing", c->id);
                }
                conn_half_close(c, "half-closed by tcpeductl");
        } else if (strcmp(how, "reset") == 0)
                conn_abort(c, "reset by tcpeductl");
        else {
                json_object_put(before);
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        }
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "how", json_object_new_string(how));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        json_object_object_add(o, "before", before);
        ctx->data = o;
        return 0;
}

int cmd_reload(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        ConfigErrors errs = {};
        char summary[1024];

        if (ctl->ops.reload(ctl->ops.userdata, &errs, summary, sizeof(summary)) < 0) {
                struct json_object *arr = json_object_new_array(), *d = json_object_new_object();
                for (size_t i = 0; i < errs.n; i++)
                        json_object_array_add(arr, json_object_new_string(errs.lines[i]));
                json_object_object_add(d, "errors", arr);
                ctx->details = d;
                command_fail(ctx, CONTROL_ERROR_CONFIG_REJECTED, "configuration rejected (%zu errors); the previous one stays in effect",
                             errs.n + errs.suppressed);
                config_errors_clear(&errs);
                return -1;
        }
        config_errors_clear(&errs);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "config_file", json_object_new_string(ctl->core->config->main_path));
        json_object_object_add(o, "changes", json_object_new_string(summary));
        ctx->data = o;
        return 0;
}

int cmd_monitor(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Server *s = find_server_arg(ctx, false);
        if (!s && ctx->message[0])
                return -1;
        if (!cc->monitor)
                cc->control->n_monitors++;
        cc->monitor = true;
        snprintf(cc->monitor_server, sizeof(cc->monitor_server), "%s", s ? s->cfg.name : "");
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "server", s ? json_object_new_string(s->cfg.name) : NULL);
        ctx->data = o;
        return 0;
}

int cmd_chat_say(CommandContext *ctx) {
        const char *text = NULL;
        Server *s = find_server_arg(ctx, true);
        if (!s)
                return -1;
        int r = control_arg_string(ctx->req->args, "text", &text);
        if (r < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                                    r == -ENOENT ? "missing argument \"text\"" : "\"text\" must be a string");
        if (s->cfg.type != SERVER_TYPE_CHAT)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "server '%s' is of type %s, not chat", s->cfg.name, s->vt->name);
        if (!s->running)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "server '%s' is not running", s->cfg.name);
        bool control_char = false;
        for (const char *p = text; *p; p++)
                control_char |= (unsigned char)*p < 0x20 || *p == 0x7f;
        /* Line-mode members read it on a terminal: no escape sequences, no line breaks. */
        if (!*text || strlen(text) > s->cfg.max_message || control_char)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"text\" must be one line of 1 to %u bytes without control characters",
                                    s->cfg.max_message);
        r = chat_say(s, text);
        if (r < 0)
                return command_fail(ctx, CONTROL_ERROR_INTERNAL, "cannot post: %s", strerror(-r));
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "server", json_object_new_string(s->cfg.name));
        json_object_object_add(o, "members", json_object_new_int(r));
        ctx->data = o;
        return 0;
}

int cmd_stats(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        JournalStats js;
        uint64_t accepted = 0, bytes_in = 0, bytes_out = 0, refused[_REFUSE_MAX] = {};
        struct json_object *o = json_object_new_object();

        for (size_t i = 0; i < ctl->core->n_servers; i++) {
                Server *s = ctl->core->servers[i];
                accepted += s->accepted;
                bytes_in += s->bytes_in;
                bytes_out += s->bytes_out;
                for (int r = 0; r < _REFUSE_MAX; r++)
                        refused[r] += s->refused[r];
        }
        journal_stats(ctl->core->journal, &js);
#define STAT(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
        STAT("uptime_sec", (core_now(ctl->core, CLOCK_REALTIME) - ctl->core->start_usec) / USEC_PER_SEC);
        STAT("servers", ctl->core->n_servers);
        STAT("connections", ctl->core->n_conns);
        STAT("connections_lingering", ctl->core->n_lingering);
        STAT("connections_accepted", accepted);
        STAT("sessions", session_count(ctl->core));
        STAT("sessions_opened", ctl->core->sessions_opened);
        STAT("sessions_failed", ctl->core->sessions_failed);
        STAT("sessions_refused_limit", ctl->core->sessions_refused_limit);
        for (int r = 0; r < _REFUSE_MAX; r++) {
                char k[64];
                snprintf(k, sizeof(k), "refused_%s", refuse_reason_to_string((RefuseReason)r));
                STAT(k, refused[r]);
        }
        STAT("bytes_in", bytes_in);
        STAT("bytes_out", bytes_out);
        STAT("transitions", ctl->core->transitions);
        STAT("lingering_untracked", ctl->core->lingering_untracked);
        ConnKernelStats ks;
        conn_kernel_stats(ctl->core, &ks);
        STAT("kernel_events", ks.events);
        STAT("kernel_events_filtered", ks.filtered);
        STAT("kernel_events_dropped", ks.dropped);
        STAT("kernel_events_unmatched", ks.unmatched);
        STAT("kernel_fallbacks", ks.fallbacks);
        STAT("retransmits", ks.retransmits);
        STAT("resets_sent", ks.resets_sent);
        STAT("resets_received", ks.resets_received);
        STAT("log_submitted", js.submitted);
        STAT("log_written", js.written);
        STAT("log_dropped_queue_full", js.dropped_full);
        STAT("log_dropped_write_failed", js.dropped_failed);
        STAT("log_queued", js.queued);
        STAT("reloads", ctl->core->reloads);
        STAT("reload_failures", ctl->core->reload_failures);
        STAT("control_clients", ctl->n_control_clients);
        STAT("control_monitors", ctl->n_monitors);
        STAT("control_dropped", ctl->control_dropped);
#undef STAT
        ctx->data = o;
        return 0;
}

int cmd_log_level(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        const char *level = NULL;
        int r = control_arg_string(ctx->req->args, "level", &level);
        if (r < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                                    r == -ENOENT ? "missing argument \"level\"" : "\"level\" must be a string");
        int l = log_level_from_string(level);
        if (l < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                                    "invalid level '%s': expected emerg, alert, crit, err, warning, notice, info or debug", level);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "previous", json_object_new_string(log_level_to_string(ctl->core->log_level)));
        ctl->core->log_level = l;
        json_object_object_add(o, "level", json_object_new_string(log_level_to_string(l)));
        ctx->data = o;
        return 0;
}
