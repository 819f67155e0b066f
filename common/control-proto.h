/* SPDX-License-Identifier: MIT */
#pragma once

/* The control protocol: one JSON object per line each way over a Unix stream socket.
 *   daemon, on connect:  {"tcpedu":"control","protocol":1,"version":"X.Y.Z"}
 *   request:             {"id":N,"command":"...","args":{...}}
 *   reply:               {"id":N,"ok":true,"data":{...}}
 *                        {"id":N,"ok":false,"error":{"code":"...","message":"..."}}
 *   monitor events:      {"event":{...}}
 * See docs/control-protocol.md. Shared by tcpedud and tcpeductl; nothing here does I/O. */

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_PROTOCOL_VERSION 1
#define CONTROL_LINE_MAX (64 * 1024) /* bytes per request line, newline excluded */
#define CONTROL_REPLY_MAX (4u << 20) /* bytes per reply or event line: the daemon queues no more per client */

typedef enum ControlError {
        CONTROL_ERROR_BAD_REQUEST,
        CONTROL_ERROR_UNKNOWN_COMMAND,
        CONTROL_ERROR_NOT_FOUND,
        CONTROL_ERROR_PERMISSION_DENIED,
        CONTROL_ERROR_CONFLICT,
        CONTROL_ERROR_CONFIG_REJECTED,
        CONTROL_ERROR_LIMIT,
        CONTROL_ERROR_INTERNAL,
        CONTROL_ERROR_CONNECT_FAILED, /* a session could not connect: refused, unreachable, timed out */
        _CONTROL_ERROR_MAX,
        _CONTROL_ERROR_INVALID = -EINVAL,
} ControlError;

const char *control_error_to_string(ControlError e);
ControlError control_error_from_string(const char *s);

/* Every command of the protocol, once. The daemon's handler table is indexed by it, tcpeductl's
 * verbs name it, and tests/unit/test-verb-lists checks both against this list and the completion. */
typedef enum ControlVerb {
        CONTROL_VERB_STATUS,
        CONTROL_VERB_SERVERS,
        CONTROL_VERB_SHOW,
        CONTROL_VERB_START,
        CONTROL_VERB_STOP,
        CONTROL_VERB_RESTART,
        CONTROL_VERB_CONNECTIONS,
        CONTROL_VERB_CONN,
        CONTROL_VERB_KICK,
        CONTROL_VERB_RELOAD,
        CONTROL_VERB_MONITOR,
        CONTROL_VERB_STATS,
        CONTROL_VERB_LOG_LEVEL,
        CONTROL_VERB_CHAT_SAY,
        CONTROL_VERB_SESSION_OPEN,
        CONTROL_VERB_SESSION_SEND,
        CONTROL_VERB_SESSION_RECV,
        CONTROL_VERB_SESSION_CLOSE,
        CONTROL_VERB_SESSION_WATCH,
        CONTROL_VERB_SESSIONS,
        _CONTROL_VERB_MAX,
        _CONTROL_VERB_INVALID = -EINVAL,
} ControlVerb;

typedef struct ControlCommand {
        ControlVerb verb;
        const char *name; /* on the wire */
        bool mutating; /* needs an admin: root, the daemon's uid, or a member of admin_group */
        bool logged; /* each use goes to the journal with the caller's uid and pid */
} ControlCommand;

const ControlCommand *control_command_find(const char *name);
const ControlCommand *control_command_get(ControlVerb v);
/* All of them, indexed by ControlVerb: *ret_n is _CONTROL_VERB_MAX. */
const ControlCommand *control_commands(size_t *ret_n);

typedef struct ControlRequest {
        int64_t id;
        const char *command; /* points into root */
        struct json_object *args; /* an object, never NULL after a successful parse */
        struct json_object *root; /* owned */
} ControlRequest;

/* Parse one request line (without its newline). On failure returns -EBADMSG with a message for the
 * client in ret_error, and ret->id set if the line had a usable id (else -1). */
int control_request_parse(const char *line, size_t len, ControlRequest *ret, const char **ret_error);
void control_request_done(ControlRequest *r);

/* Typed argument access. Return 0, -ENOENT if absent (ret untouched), -EBADMSG if of the wrong type. */
int control_arg_string(struct json_object *args, const char *key, const char **ret);
int control_arg_int(struct json_object *args, const char *key, int64_t *ret);
int control_arg_bool(struct json_object *args, const char *key, bool *ret);

/* Replies and events as one line each, ending in '\n'. They take ownership of data. NULL on OOM. */
char *control_reply_ok(int64_t id, struct json_object *data);
char *control_reply_error(int64_t id, ControlError code, const char *message, struct json_object *details);
char *control_event_line(struct json_object *event);
char *control_greeting_line(const char *version);

typedef struct ControlReply {
        int64_t id;
        bool ok;
        struct json_object *data; /* ok: the data; else the error object */
        ControlError code;
        const char *message;
        struct json_object *root; /* owned */
} ControlReply;

/* Parse a reply, event or greeting line from the daemon (ctl side). -EBADMSG if malformed. */
int control_reply_parse(const char *line, size_t len, ControlReply *ret);
void control_reply_done(ControlReply *r);

/* The control socket path: control_socket from the config if set; else /run/tcpedud/control.sock
 * for root and $XDG_RUNTIME_DIR/tcpedud/control.sock for others. -ENXIO if neither applies. */
int control_socket_path(const char *configured, char *buf, size_t size);
