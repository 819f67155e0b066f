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

/* The timestamp with microseconds, formatted here with integers: json-c prints a double with
 * printf("%.17g") under a switched locale, which was a tenth of the enhanced server's time at 1 KiB
 * echo requests (docs/PERFORMANCE.md). Trailing zeros go, one digit stays: 1700000000.5. */
static struct json_object *timestamp_new(double now) {
        if (!(now >= 0 && now < 1e15))
                return json_object_new_double(now);
        long long sec = (long long)now; /* now >= 0: truncation is floor */
        long usec = (long)((now - (double)sec) * 1e6 + 0.5);
        if (usec >= 1000000) {
                sec++;
                usec -= 1000000;
        }
        char text[40];
        int n = snprintf(text, sizeof(text), "%lld.%06ld", sec, usec);
        while (n > 2 && text[n - 1] == '0' && text[n - 2] != '.')
                text[--n] = '\0';
        return json_object_new_double_s(now, text);
}

static struct json_object *finish(struct json_object *o, const CmdContext *ctx) {
        if (o)
                json_object_object_add(o, "timestamp", timestamp_new(ctx->now));
        return o;
}

/* Whether any of the 8 bytes in w needs an escape in a JSON string: a control byte (< 0x20), '"',
 * '\\', or '/' when slashes are escaped. Exact, with the usual has-zero-byte bit trick. */
static bool needs_escape8(uint64_t w, bool slash) {
        const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\'), sl = w ^ (ones * '/');
        uint64_t hit = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | (slash ? (sl - ones) & ~sl : 0);
        return (hit & high) != 0;
}

/* A JSON string as json-c writes it (the same escapes, byte for byte), but scanned 8 bytes at a
 * time and copied in runs: the echo command sends back the data it got, and at 1 KiB json-c's
 * byte-by-byte escaping loop was the enhanced server's largest single cost (docs/PERFORMANCE.md). */
static int string_to_json(struct json_object *jso, struct printbuf *pb, int level, int flags) {
        static const char short_escape[32] = { ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r' };
        const unsigned char *str = (const unsigned char *)json_object_get_string(jso);
        size_t len = (size_t)json_object_get_string_len(jso), run = 0, i = 0;
        bool slash = !(flags & JSON_C_TO_STRING_NOSLASHESCAPE);
        (void)level;

        printbuf_memappend(pb, "\"", 1);
        while (i < len) {
                uint64_t w;
                if (i + 8 <= len) {
                        memcpy(&w, str + i, 8);
                        if (!needs_escape8(w, slash)) {
                                i += 8;
                                continue;
                        }
                }
                size_t end = MIN(i + 8, len);
                for (; i < end; i++) {
                        unsigned char ch = str[i];
                        if (ch >= 0x20 && ch != '"' && ch != '\\' && (ch != '/' || !slash))
                                continue;
                        if (i > run)
                                printbuf_memappend(pb, (const char *)str + run, (int)(i - run));
                        run = i + 1;
                        char esc[8];
                        if (ch >= 0x20)
                                esc[0] = '\\', esc[1] = (char)ch, esc[2] = '\0';
                        else if (short_escape[ch])
                                esc[0] = '\\', esc[1] = short_escape[ch], esc[2] = '\0';
                        else
                                snprintf(esc, sizeof(esc), "\\u00%c%c", "0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 0xf]);
                        printbuf_memappend(pb, esc, (int)strlen(esc));
                }
        }
        if (len > run)
                printbuf_memappend(pb, (const char *)str + run, (int)(len - run));
        printbuf_memappend(pb, "\"", 1);
        return 0;
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
                if (o && json_object_object_get_ex(request, "data", &v)) {
                        if (json_object_is_type(v, json_type_string))
                                json_object_set_serializer(v, string_to_json, NULL, NULL);
                        json_object_object_add(o, "data", json_object_get(v));
                } else if (o)
                        json_object_object_add(o, "data", NULL);
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
