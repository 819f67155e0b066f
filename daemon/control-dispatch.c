/* SPDX-License-Identifier: MIT */
/* One request line: parsed, checked against the caller's rights, run by the handler table indexed
 * by ControlVerb, answered, and logged when the command changes things. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "control-dispatch.h"
#include "control-internal.h"
#include "macro.h"

typedef int (*CommandHandler)(CommandContext *ctx);

/* Indexed by ControlVerb: common/control-proto.c's command table is the one list of verbs. */
static const CommandHandler handlers[] = {
        [CONTROL_VERB_STATUS] = cmd_status,
        [CONTROL_VERB_SERVERS] = cmd_servers,
        [CONTROL_VERB_SHOW] = cmd_show,
        [CONTROL_VERB_START] = cmd_start,
        [CONTROL_VERB_STOP] = cmd_stop,
        [CONTROL_VERB_RESTART] = cmd_restart,
        [CONTROL_VERB_CONNECTIONS] = cmd_connections,
        [CONTROL_VERB_CONN] = cmd_conn,
        [CONTROL_VERB_KICK] = cmd_kick,
        [CONTROL_VERB_RELOAD] = cmd_reload,
        [CONTROL_VERB_MONITOR] = cmd_monitor,
        [CONTROL_VERB_STATS] = cmd_stats,
        [CONTROL_VERB_LOG_LEVEL] = cmd_log_level,
        [CONTROL_VERB_CHAT_SAY] = cmd_chat_say,
        [CONTROL_VERB_SESSION_OPEN] = cmd_session_open,
        [CONTROL_VERB_SESSION_SEND] = cmd_session_send,
        [CONTROL_VERB_SESSION_RECV] = cmd_session_recv,
        [CONTROL_VERB_SESSION_CLOSE] = cmd_session_close,
        [CONTROL_VERB_SESSION_WATCH] = cmd_session_watch,
        [CONTROL_VERB_SESSIONS] = cmd_sessions,
};
_Static_assert(ELEMENTSOF(handlers) == _CONTROL_VERB_MAX, "a handler for every ControlVerb, in control-dispatch.c");

bool control_dispatch_handles(ControlVerb v) {
        return v >= 0 && v < _CONTROL_VERB_MAX && handlers[v];
}

static void log_mutation(ControlClient *cc, const ControlRequest *req, bool ok, const char *error) {
        Control *ctl = cc->control;
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
        journal_submit(ctl->core->journal, &e);
}

/* Run an allowed command and answer it. Returns -1 if the client is gone. */
static int run_command(ControlClient *cc, const ControlCommand *cmd, CommandHandler h, ControlRequest *req) {
        Control *ctl = cc->control;
        char *reply;
        CommandContext ctx = { .client = cc, .req = req };
        cc->busy = true;
        int r = h(&ctx);
        cc->busy = false;
        if (cc->doomed) {
                json_object_put(ctx.data);
                json_object_put(ctx.details);
                free(ctx.direct_reply);
                control_request_done(req);
                client_free(cc);
                return -1;
        }
        /* A reply that waits is logged as started; one made by the command itself failed (message set) or not. */
        if (cmd->logged)
                log_mutation(cc, req, r == 0, r == 1 && !ctx.message[0] ? "started" : ctx.message);
        if (r == 1) {
                /* Answered later (a pending request), or by the command's own reply. */
                control_request_done(req);
                return ctx.direct_reply ? client_write(cc, ctx.direct_reply) : 0;
        }
        reply = r >= 0 ? control_reply_ok(req->id, ctx.data) : control_reply_error(req->id, ctx.code, ctx.message, ctx.details);
        if (ctx.after_reply && r >= 0) {
                control_request_done(req);
                if (client_write(cc, reply) < 0)
                        return -1;
                if (cc->watching) {
                        ctl->event_depth++;
                        session_watch_pump(cc->control, cc->watching);
                        ctl->event_depth--;
                        if (cc->doomed) {
                                client_defer_free(cc);
                                return -1;
                        }
                }
                return 0;
        }
        control_request_done(req);
        return client_write(cc, reply);
}

/* Handle one request line. Returns -1 if the client is gone. */
int client_handle_line(ControlClient *cc, const char *line, size_t len) {
        ControlRequest req;
        const char *perr = NULL;

        if (control_request_parse(line, len, &req, &perr) < 0)
                return client_write(cc, control_reply_error(req.id, CONTROL_ERROR_BAD_REQUEST, perr, NULL));

        const ControlCommand *cmd = control_command_find(req.command);
        CommandHandler h = cmd && control_dispatch_handles(cmd->verb) ? handlers[cmd->verb] : NULL;
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
        } else
                return run_command(cc, cmd, h, &req);
        control_request_done(&req);
        return client_write(cc, reply);
}
