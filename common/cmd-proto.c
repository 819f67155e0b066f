/* SPDX-License-Identifier: MIT */
#include "cmd-proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "utf8.h"

static const char *const kind_table[_CMD_KIND_MAX] = {
        [CMD_ECHO] = "echo",     [CMD_RANDOM] = "random",   [CMD_TIME] = "time",       [CMD_STATS] = "stats",
        [CMD_WHOAMI] = "whoami", [CMD_UNKNOWN] = "unknown", [CMD_INVALID] = "invalid",
};

const char *cmd_kind_to_string(CmdKind k) {
        return k < _CMD_KIND_MAX ? kind_table[k] : NULL;
}

static struct json_object *base(const char *status, const char *command) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "status", json_object_new_string(status));
        if (command)
                json_object_object_add(o, "command", json_object_new_string(command));
        return o;
}

static struct json_object *finish(struct json_object *o, const CmdContext *ctx) {
        if (o)
                json_object_object_add(o, "timestamp", json_object_new_double(ctx->now));
        return o;
}

struct json_object *cmd_error(const char *message, const CmdContext *ctx) {
        struct json_object *o = base("error", NULL);
        if (o)
                json_object_object_add(o, "message", json_object_new_string(message));
        return finish(o, ctx);
}

static struct json_object *command_error(const char *command, const char *message, const CmdContext *ctx) {
        struct json_object *o = base("error", command);
        if (o)
                json_object_object_add(o, "message", json_object_new_string(message));
        return finish(o, ctx);
}

/* An integer argument, or the default when absent. -1: present but not an integer. */
static int int_arg(struct json_object *req, const char *key, int64_t def, int64_t *ret) {
        struct json_object *v;
        if (!json_object_object_get_ex(req, key, &v)) {
                *ret = def;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return -1;
        /* json-c clamps what does not fit in 64 bits without saying so. Above INT64_MAX the value is
         * kept as unsigned, so that side can be checked exactly; below INT64_MIN it cannot be told
         * from INT64_MIN itself, which is therefore refused: the range is -(2^63-1) .. 2^63-1. */
        int64_t x = json_object_get_int64(v);
        if (x == INT64_MIN || (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX))
                return -1;
        *ret = x;
        return 0;
}

/* A uniform value in [lo, hi] without modulo bias. */
static int64_t uniform(const CmdContext *ctx, int64_t lo, int64_t hi) {
        uint64_t span = (uint64_t)hi - (uint64_t)lo; /* hi - lo, computed without overflow */
        if (span == UINT64_MAX)
                return (int64_t)ctx->random(ctx->userdata);
        uint64_t n = span + 1, limit = UINT64_MAX - UINT64_MAX % n, r;
        do
                r = ctx->random(ctx->userdata);
        while (r >= limit);
        return (int64_t)((uint64_t)lo + r % n);
}

struct json_object *cmd_handle(struct json_object *request, const CmdContext *ctx, CmdKind *ret_kind) {
        struct json_object *v, *o;
        const char *command;

        if (!json_object_is_type(request, json_type_object) || !json_object_object_get_ex(request, "command", &v) ||
            !json_object_is_type(v, json_type_string)) {
                *ret_kind = CMD_INVALID;
                return cmd_error("Invalid message format. Expected JSON with 'command' field.", ctx);
        }
        command = json_object_get_string(v);

        if (strcmp(command, "echo") == 0) {
                *ret_kind = CMD_ECHO;
                o = base("success", "echo");
                if (o)
                        json_object_object_add(o, "data", json_object_object_get_ex(request, "data", &v) ? json_object_get(v) : NULL);
                return finish(o, ctx);
        }
        if (strcmp(command, "random") == 0) {
                int64_t lo, hi;
                *ret_kind = CMD_RANDOM;
                if (int_arg(request, "min", 1, &lo) < 0 || int_arg(request, "max", 100, &hi) < 0)
                        return command_error("random", "min and max must be integers", ctx);
                if (lo > hi)
                        return command_error("random", "min must not be greater than max", ctx);
                o = base("success", "random");
                if (o)
                        json_object_object_add(o, "result", json_object_new_int64(uniform(ctx, lo, hi)));
                return finish(o, ctx);
        }
        if (strcmp(command, "time") == 0) {
                char buf[32];
                time_t t = (time_t)ctx->now + ctx->utc_offset;
                struct tm tm;
                *ret_kind = CMD_TIME;
                gmtime_r(&t, &tm);
                strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
                o = base("success", "time");
                if (o)
                        json_object_object_add(o, "result", json_object_new_string(buf));
                return finish(o, ctx);
        }
        if (strcmp(command, "stats") == 0 || strcmp(command, "whoami") == 0) {
                bool stats = command[0] == 's';
                *ret_kind = stats ? CMD_STATS : CMD_WHOAMI;
                o = base("success", command);
                if (o)
                        json_object_object_add(o, "result", stats ? ctx->stats(ctx->userdata) : ctx->whoami(ctx->userdata));
                return finish(o, ctx);
        }
        *ret_kind = CMD_UNKNOWN;
        char msg[128];
        snprintf(msg, sizeof(msg), "Unknown command: %.*s", (int)utf8_prefix(command, strlen(command), 64), command);
        return cmd_error(msg, ctx);
}
