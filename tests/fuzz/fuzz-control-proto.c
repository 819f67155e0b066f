/* SPDX-License-Identifier: MIT */
/* The control protocol decoder (common/control-proto.c): request lines from any local user who
 * can reach the control socket, and (tcpeductl's side) reply lines. The input is one line. Checked:
 * a parsed request has a command, an object of arguments and a usable id; a refused one says why;
 * the typed argument accessors agree with the JSON types; replies built for the request parse
 * back with the same id. */
#include <json-c/json.h>
#include <string.h>

#include "control-proto.h"
#include "fuzz.h"

/* Every argument name the daemon reads. */
static const char *const keys[] = { "server",     "id",        "how",   "text", "level",       "target", "bind",
                                    "timeout_ms", "ephemeral", "watch", "data", "data_base64", "bytes",  "line" };

static void check_args(struct json_object *args) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                struct json_object *v = NULL;
                bool present = json_object_object_get_ex(args, keys[i], &v) && !json_object_is_type(v, json_type_null);
                const char *s = NULL;
                int64_t n = 0;
                bool b = false;
                int r = control_arg_string(args, keys[i], &s);
                FUZZ_CHECK(r == (!present ? -ENOENT : json_object_is_type(v, json_type_string) ? 0 : -EBADMSG));
                if (r == 0)
                        FUZZ_CHECK(s && strlen(s) <= (size_t)json_object_get_string_len(v));
                r = control_arg_int(args, keys[i], &n);
                FUZZ_CHECK(r == (!present ? -ENOENT : json_object_is_type(v, json_type_int) ? 0 : -EBADMSG));
                r = control_arg_bool(args, keys[i], &b);
                FUZZ_CHECK(r == (!present ? -ENOENT : json_object_is_type(v, json_type_boolean) ? 0 : -EBADMSG));
        }
}

static void check_reply_roundtrip(int64_t id, ControlError code, const char *message) {
        ControlReply rep;
        char *line = code == _CONTROL_ERROR_MAX ? control_reply_ok(id, json_object_new_string(message))
                                                : control_reply_error(id, code, message, NULL);
        FUZZ_CHECK(line);
        size_t len = strlen(line);
        FUZZ_CHECK(len > 0 && line[len - 1] == '\n' && !memchr(line, '\n', len - 1));
        FUZZ_CHECK(control_reply_parse(line, len - 1, &rep) == 0);
        FUZZ_CHECK(rep.id == id);
        FUZZ_CHECK(rep.ok == (code == _CONTROL_ERROR_MAX));
        if (!rep.ok)
                FUZZ_CHECK(rep.code == code && strcmp(rep.message, message) == 0);
        control_reply_done(&rep);
        free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *line = (const char *)data;
        const char *error = NULL;
        ControlRequest req;

        int r = control_request_parse(line, size, &req, &error);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG && error && *error);
                FUZZ_CHECK(req.id >= -1 && !req.root);
                /* the daemon answers with the error and the id, if there was one */
                check_reply_roundtrip(req.id, CONTROL_ERROR_BAD_REQUEST, error);
        } else {
                FUZZ_CHECK(r == 0 && req.id >= 0 && req.command && req.root);
                FUZZ_CHECK(req.args && json_object_is_type(req.args, json_type_object));
                const ControlCommand *cmd = control_command_find(req.command);
                if (cmd)
                        FUZZ_CHECK(strcmp(cmd->name, req.command) == 0);
                check_args(req.args);
                /* what the daemon puts into its replies: the command name and its own texts */
                check_reply_roundtrip(req.id, CONTROL_ERROR_UNKNOWN_COMMAND, req.command);
                check_reply_roundtrip(req.id, _CONTROL_ERROR_MAX, req.command);
                control_request_done(&req);
        }

        /* The ctl side: a line as if it came from the daemon. */
        ControlReply rep;
        if (control_reply_parse(line, size, &rep) == 0) {
                FUZZ_CHECK(rep.root);
                /* tcpeductl prints the message of an error as it is */
                if (!rep.ok && rep.data)
                        FUZZ_CHECK(rep.message);
                control_reply_done(&rep);
        }
        return 0;
}
