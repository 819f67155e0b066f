/* SPDX-License-Identifier: MIT */
#include "control-proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

static const char *const error_table[_CONTROL_ERROR_MAX] = {
        [CONTROL_ERROR_BAD_REQUEST] = "bad-request",
        [CONTROL_ERROR_UNKNOWN_COMMAND] = "unknown-command",
        [CONTROL_ERROR_NOT_FOUND] = "not-found",
        [CONTROL_ERROR_PERMISSION_DENIED] = "permission-denied",
        [CONTROL_ERROR_CONFLICT] = "conflict",
        [CONTROL_ERROR_CONFIG_REJECTED] = "config-rejected",
        [CONTROL_ERROR_LIMIT] = "limit",
        [CONTROL_ERROR_INTERNAL] = "internal",
        [CONTROL_ERROR_CONNECT_FAILED] = "connect-failed",
};

/* Session commands are open to every user: a session belongs to its opener, whom the daemon checks.
 * Indexed by ControlVerb: the one list of verbs the protocol has. */
static const ControlCommand command_table[_CONTROL_VERB_MAX] = {
        [CONTROL_VERB_STATUS] = { CONTROL_VERB_STATUS, "status", false, false },
        [CONTROL_VERB_SERVERS] = { CONTROL_VERB_SERVERS, "servers", false, false },
        [CONTROL_VERB_SHOW] = { CONTROL_VERB_SHOW, "show", false, false },
        [CONTROL_VERB_START] = { CONTROL_VERB_START, "start", true, true },
        [CONTROL_VERB_STOP] = { CONTROL_VERB_STOP, "stop", true, true },
        [CONTROL_VERB_RESTART] = { CONTROL_VERB_RESTART, "restart", true, true },
        [CONTROL_VERB_CONNECTIONS] = { CONTROL_VERB_CONNECTIONS, "connections", false, false },
        [CONTROL_VERB_CONN] = { CONTROL_VERB_CONN, "conn", false, false },
        [CONTROL_VERB_KICK] = { CONTROL_VERB_KICK, "kick", true, true },
        [CONTROL_VERB_RELOAD] = { CONTROL_VERB_RELOAD, "reload", true, true },
        [CONTROL_VERB_MONITOR] = { CONTROL_VERB_MONITOR, "monitor", false, false },
        [CONTROL_VERB_STATS] = { CONTROL_VERB_STATS, "stats", false, false },
        [CONTROL_VERB_LOG_LEVEL] = { CONTROL_VERB_LOG_LEVEL, "log-level", true, true },
        [CONTROL_VERB_CHAT_SAY] = { CONTROL_VERB_CHAT_SAY, "chat-say", true, true },
        [CONTROL_VERB_SESSION_OPEN] = { CONTROL_VERB_SESSION_OPEN, "session-open", false, true },
        [CONTROL_VERB_SESSION_SEND] = { CONTROL_VERB_SESSION_SEND, "session-send", false, false },
        [CONTROL_VERB_SESSION_RECV] = { CONTROL_VERB_SESSION_RECV, "session-recv", false, false },
        [CONTROL_VERB_SESSION_CLOSE] = { CONTROL_VERB_SESSION_CLOSE, "session-close", false, true },
        [CONTROL_VERB_SESSION_WATCH] = { CONTROL_VERB_SESSION_WATCH, "session-watch", false, false },
        [CONTROL_VERB_SESSIONS] = { CONTROL_VERB_SESSIONS, "sessions", false, false },
};

const char *control_error_to_string(ControlError e) {
        return e >= 0 && e < _CONTROL_ERROR_MAX ? error_table[e] : NULL;
}

ControlError control_error_from_string(const char *s) {
        for (int i = 0; s && i < _CONTROL_ERROR_MAX; i++)
                if (strcmp(s, error_table[i]) == 0)
                        return (ControlError)i;
        return _CONTROL_ERROR_INVALID;
}

const ControlCommand *control_command_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(command_table); i++)
                if (strcmp(command_table[i].name, name) == 0)
                        return &command_table[i];
        return NULL;
}

const ControlCommand *control_command_get(ControlVerb v) {
        return v >= 0 && v < _CONTROL_VERB_MAX ? &command_table[v] : NULL;
}

const ControlCommand *control_commands(size_t *ret_n) {
        *ret_n = ELEMENTSOF(command_table);
        return command_table;
}

static struct json_object *parse_object(const char *line, size_t len, size_t max) {
        if (len > max || len > INT32_MAX)
                return NULL;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        struct json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        /* The whole line must be one object: no trailing bytes, no incomplete value. */
        if (o && (json_tokener_get_error(tok) != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) < len)) {
                size_t end = json_tokener_get_parse_end(tok);
                for (; end < len; end++)
                        if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r')
                                break;
                if (end < len) {
                        json_object_put(o);
                        o = NULL;
                }
        }
        json_tokener_free(tok);
        if (o && !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int control_request_parse(const char *line, size_t len, ControlRequest *ret, const char **ret_error) {
        struct json_object *root, *v;

        *ret = (ControlRequest){ .id = -1 };
        if (len > CONTROL_LINE_MAX) {
                *ret_error = "request line too long";
                return -EBADMSG;
        }
        if (memchr(line, 0, len)) {
                *ret_error = "request contains a NUL byte";
                return -EBADMSG;
        }
        root = parse_object(line, len, CONTROL_LINE_MAX);
        if (!root) {
                *ret_error = "request is not a JSON object";
                return -EBADMSG;
        }
        if (json_object_object_get_ex(root, "id", &v) && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
                ret->id = json_object_get_int64(v);
        else {
                *ret_error = "\"id\" must be a non-negative integer";
                json_object_put(root);
                return -EBADMSG;
        }
        if (!json_object_object_get_ex(root, "command", &v) || !json_object_is_type(v, json_type_string)) {
                *ret_error = "\"command\" must be a string";
                json_object_put(root);
                return -EBADMSG;
        }
        ret->command = json_object_get_string(v);
        if (json_object_object_get_ex(root, "args", &v)) {
                if (!json_object_is_type(v, json_type_object)) {
                        *ret_error = "\"args\" must be an object";
                        json_object_put(root);
                        return -EBADMSG;
                }
                ret->args = v;
        } else {
                ret->args = json_object_new_object();
                json_object_object_add(root, "args", ret->args);
        }
        ret->root = root;
        return 0;
}

void control_request_done(ControlRequest *r) {
        json_object_put(r->root);
        *r = (ControlRequest){ .id = -1 };
}

int control_arg_string(struct json_object *args, const char *key, const char **ret) {
        struct json_object *v;
        if (!args || !json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

int control_arg_bool(struct json_object *args, const char *key, bool *ret) {
        struct json_object *v;
        if (!args || !json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_boolean))
                return -EBADMSG;
        *ret = json_object_get_boolean(v);
        return 0;
}

int control_arg_int(struct json_object *args, const char *key, int64_t *ret) {
        struct json_object *v;
        if (!args || !json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_int))
                return -EBADMSG;
        *ret = json_object_get_int64(v);
        return 0;
}

static char *to_line(struct json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *line = NULL;
        if (!s || asprintf(&line, "%s\n", s) < 0)
                line = NULL;
        json_object_put(o);
        return line;
}

char *control_reply_ok(int64_t id, struct json_object *data) {
        struct json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(data);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "data", data ? data : json_object_new_object());
        return to_line(o);
}

char *control_reply_error(int64_t id, ControlError code, const char *message, struct json_object *details) {
        struct json_object *o = json_object_new_object(), *e = json_object_new_object();
        if (!o || !e) {
                json_object_put(o);
                json_object_put(e);
                json_object_put(details);
                return NULL;
        }
        json_object_object_add(e, "code", json_object_new_string(control_error_to_string(code)));
        json_object_object_add(e, "message", json_object_new_string(message));
        if (details)
                json_object_object_add(e, "details", details);
        json_object_object_add(o, "id", id >= 0 ? json_object_new_int64(id) : NULL);
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", e);
        return to_line(o);
}

char *control_event_line(struct json_object *event) {
        struct json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(event);
                return NULL;
        }
        json_object_object_add(o, "event", event);
        return to_line(o);
}

char *control_greeting_line(const char *version) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "tcpedu", json_object_new_string("control"));
        json_object_object_add(o, "protocol", json_object_new_int(CONTROL_PROTOCOL_VERSION));
        json_object_object_add(o, "version", json_object_new_string(version));
        return to_line(o);
}

int control_reply_parse(const char *line, size_t len, ControlReply *ret) {
        struct json_object *root = parse_object(line, len, CONTROL_REPLY_MAX), *v, *e;

        *ret = (ControlReply){ .id = -1 };
        if (!root)
                return -EBADMSG;
        ret->root = root;
        if (json_object_object_get_ex(root, "id", &v) && json_object_is_type(v, json_type_int))
                ret->id = json_object_get_int64(v);
        if (!json_object_object_get_ex(root, "ok", &v) || !json_object_is_type(v, json_type_boolean))
                return 0; /* an event or the greeting: the caller looks at root */
        ret->ok = json_object_get_boolean(v);
        if (ret->ok) {
                if (json_object_object_get_ex(root, "data", &v))
                        ret->data = v;
                return 0;
        }
        if (!json_object_object_get_ex(root, "error", &e) || !json_object_is_type(e, json_type_object)) {
                control_reply_done(ret);
                return -EBADMSG;
        }
        ret->data = e;
        /* Only strings count: json_object_get_string() of a JSON null is NULL, and the ctl prints
         * the message as it is. */
        ret->code = json_object_object_get_ex(e, "code", &v) && json_object_is_type(v, json_type_string)
                            ? control_error_from_string(json_object_get_string(v))
                            : _CONTROL_ERROR_INVALID;
        ret->message = json_object_object_get_ex(e, "message", &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                               : "(no message)";
        return 0;
}

void control_reply_done(ControlReply *r) {
        json_object_put(r->root);
        *r = (ControlReply){ .id = -1 };
}

int control_socket_path(const char *configured, char *buf, size_t size) {
        int n;
        if (configured && *configured)
                n = snprintf(buf, size, "%s", configured);
        else if (geteuid() == 0)
                n = snprintf(buf, size, "/run/tcpedud/control.sock");
        else {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                if (!xdg || xdg[0] != '/')
                        return -ENXIO;
                n = snprintf(buf, size, "%s/tcpedud/control.sock", xdg);
        }
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
