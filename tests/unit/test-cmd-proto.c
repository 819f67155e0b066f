/* SPDX-License-Identifier: MIT */
/* The enhanced server's JSON command protocol (common/cmd-proto.c): the exact wire text of every
 * reply, with a fixed clock, a scripted random source and stub stats/whoami answers. */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "cmd-proto.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

#define NOW 1700000000.5
#define TS "1700000000.5"

/* The random source: the scripted values first, then 0, 1, 2, ... */
typedef struct Stub {
        const uint64_t *script;
        size_t n_script;
        size_t random_calls;
        uint64_t counter;
        unsigned stats_calls, whoami_calls;
} Stub;

static uint64_t stub_random(void *userdata) {
        Stub *s = userdata;
        size_t i = s->random_calls++;
        return i < s->n_script ? s->script[i] : s->counter++;
}

static struct json_object *stub_stats(void *userdata) {
        Stub *s = userdata;
        s->stats_calls++;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "connections", json_object_new_int(3));
        json_object_object_add(o, "messages", json_object_new_int64(12));
        return o;
}

static struct json_object *stub_whoami(void *userdata) {
        Stub *s = userdata;
        s->whoami_calls++;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string("127.0.0.1:40000"));
        json_object_object_add(o, "id", json_object_new_int(7));
        return o;
}

static CmdContext context(Stub *s, double now, long utc_offset) {
        return (CmdContext){
                .now = now,
                .utc_offset = utc_offset,
                .random = stub_random,
                .stats = stub_stats,
                .whoami = stub_whoami,
                .userdata = s,
        };
}

/* The reply's wire text (JSON_C_TO_STRING_PLAIN), to free; NULL if there was no reply. */
static char *reply_text(struct json_object *reply) {
        char *text = reply ? strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN)) : NULL;
        json_object_put(reply);
        return text;
}

/* Handle the request written as JSON text (parsed the way the server parses it) and compare the
 * reply's text and the kind reported. */
static void expect_reply_ctx_at(const char *request, const CmdContext *ctx, CmdKind kind, const char *expected, unsigned line,
                                const char *func) {
        struct json_object *req = json_tokener_parse(request);
        CmdKind got = _CMD_KIND_MAX;

        /* "null" parses to NULL: a request that is not an object */
        unit_assert_true(req != NULL || strcmp(request, "null") == 0, request, line, __FILE__, func);
        char *text = reply_text(cmd_handle(req, ctx, &got));
        unit_assert_streq(text, expected, request, line, __FILE__, func);
        unit_assert_inteq(got, kind, "ret_kind", line, __FILE__, func);
        free(text);
        json_object_put(req);
}

static void expect_reply_at(const char *request, Stub *s, CmdKind kind, const char *expected, unsigned line, const char *func) {
        CmdContext ctx = context(s, NOW, 0);
        expect_reply_ctx_at(request, &ctx, kind, expected, line, func);
}

#define EXPECT_REPLY(request, kind, expected)                                                                                              \
        do {                                                                                                                               \
                Stub stub_ = {};                                                                                                           \
                expect_reply_at((request), &stub_, (kind), (expected), __LINE__, __func__);                                                \
        } while (0)

/* A random request answered with the scripted values: the result and how many were drawn. */
#define EXPECT_RANDOM(request, expected_result, expected_calls, ...)                                                                       \
        do {                                                                                                                               \
                static const uint64_t script_[] = { __VA_ARGS__ };                                                                         \
                Stub stub_ = { .script = script_, .n_script = ELEMENTSOF(script_) };                                                       \
                expect_reply_at((request), &stub_, CMD_RANDOM,                                                                             \
                                "{\"status\":\"success\",\"command\":\"random\",\"result\":" expected_result ",\"timestamp\":" TS "}",     \
                                __LINE__, __func__);                                                                                       \
                ASSERT_UINTEQ(stub_.random_calls, (expected_calls));                                                                       \
        } while (0)

#define RANDOM_ERROR(message) "{\"status\":\"error\",\"command\":\"random\",\"message\":\"" message "\",\"timestamp\":" TS "}"
#define INVALID_REPLY                                                                                                                      \
        "{\"status\":\"error\",\"message\":\"Invalid message format. Expected JSON with 'command' field.\",\"timestamp\":" TS "}"

static bool utf8_valid(const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                size_t n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : 99;
                if (n == 99)
                        return false;
                p++;
                for (size_t i = 0; i < n; i++, p++)
                        if ((*p & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

/* ---- echo ---- */

static void test_echo_each_type(void) {
        static const struct {
                const char *data; /* as written in the request, and as echoed */
        } cases[] = {
                { "\"hello\"" },
                { "\"\"" },
                { "\"tab\\there \\\"quoted\\\"\"" },
                { "\"caf\xC3\xA9\"" },
                { "42" },
                { "-7" },
                { "0" },
                { "9223372036854775807" },
                { "-9223372036854775808" },
                { "1.5" },
                { "-0.25" },
                { "true" },
                { "false" },
                { "null" },
                { "[]" },
                { "[1,\"a\",null,true,{\"x\":1.5}]" },
                { "{}" },
                { "{\"k\":{\"n\":[1,2]},\"s\":\"v\"}" },
        };
        char request[256], expected[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(request, sizeof(request), "{\"command\":\"echo\",\"data\":%s}", cases[i].data);
                snprintf(expected, sizeof(expected), "{\"status\":\"success\",\"command\":\"echo\",\"data\":%s,\"timestamp\":" TS "}",
                         cases[i].data);
                EXPECT_REPLY(request, CMD_ECHO, expected);
        }
}

/* The echo command writes its data string itself (8 bytes at a time): byte for byte what json-c
 * writes, for every byte value, at every position against the 8-byte steps, with and without
 * slash escapes. */
static void test_echo_string_escapes_as_json_c(void) {
        Stub s = {};
        CmdContext ctx = context(&s, NOW, 0);
        char data[300];
        size_t len = 0;

        for (int b = 1; b < 256; b++)
                data[len++] = (char)b;
        for (size_t shift = 0; shift < 9; shift++) {
                for (size_t cut = len - 20; cut <= len; cut++) {
                        struct json_object *req = json_object_new_object();
                        json_object_object_add(req, "command", json_object_new_string("echo"));
                        json_object_object_add(req, "data", json_object_new_string_len(data + shift, (int)(cut - shift)));
                        struct json_object *plain = json_object_new_string_len(data + shift, (int)(cut - shift));
                        CmdKind kind;
                        struct json_object *reply = cmd_handle(req, &ctx, &kind), *v;
                        ASSERT_TRUE(reply && json_object_object_get_ex(reply, "data", &v));
                        for (int flags = 0; flags < 2; flags++) {
                                int f = JSON_C_TO_STRING_PLAIN | (flags ? JSON_C_TO_STRING_NOSLASHESCAPE : 0);
                                char *want = strdup(json_object_to_json_string_ext(plain, f));
                                ASSERT_STREQ(json_object_to_json_string_ext(v, f), want);
                                free(want);
                        }
                        json_object_put(plain);
                        json_object_put(reply);
                        json_object_put(req);
                }
        }
}

static void test_echo_missing_data(void) {
        EXPECT_REPLY("{\"command\":\"echo\"}", CMD_ECHO,
                     "{\"status\":\"success\",\"command\":\"echo\",\"data\":null,\"timestamp\":" TS "}");
        /* other members are not echoed; the order of the request's members does not matter */
        EXPECT_REPLY("{\"extra\":1,\"data\":\"x\",\"command\":\"echo\",\"min\":5}", CMD_ECHO,
                     "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"x\",\"timestamp\":" TS "}");
}

static void test_echo_reply_outlives_request(void) {
        /* the reply holds its own reference to the data: freeing the request first is fine */
        struct json_object *req = json_tokener_parse("{\"command\":\"echo\",\"data\":{\"a\":[1,2,3]}}");
        Stub s = {};
        CmdContext ctx = context(&s, NOW, 0);
        CmdKind kind;

        ASSERT_TRUE(req != NULL);
        struct json_object *reply = cmd_handle(req, &ctx, &kind);
        json_object_put(req);
        char *text = reply_text(reply);
        ASSERT_STREQ(text, "{\"status\":\"success\",\"command\":\"echo\",\"data\":{\"a\":[1,2,3]},\"timestamp\":" TS "}");
        free(text);
}

/* ---- random ---- */

static void test_random_default_range(void) {
        /* 1..100 */
        EXPECT_RANDOM("{\"command\":\"random\"}", "1", 1, 0);
        EXPECT_RANDOM("{\"command\":\"random\"}", "42", 1, 41);
        EXPECT_RANDOM("{\"command\":\"random\"}", "100", 1, 99);
        EXPECT_RANDOM("{\"command\":\"random\"}", "1", 1, 100);
        /* one bound given: the other is its default */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":50}", "50", 1, 0);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":50}", "100", 1, 50);
        EXPECT_RANDOM("{\"command\":\"random\",\"max\":3}", "3", 1, 2);
        EXPECT_RANDOM("{\"command\":\"random\",\"max\":3}", "1", 1, 3);
}

static void test_random_single_value(void) {
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":5,\"max\":5}", "5", 1, 12345);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":0,\"max\":0}", "0", 1, 0);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-9223372036854775807,\"max\":-9223372036854775807}", "-9223372036854775807", 1, 777);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":9223372036854775807,\"max\":9223372036854775807}", "9223372036854775807", 1, 1);
}

static void test_random_negative_ranges(void) {
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-10,\"max\":-5}", "-10", 1, 0);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-10,\"max\":-5}", "-5", 1, 5);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-10,\"max\":-5}", "-10", 1, 6);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-3,\"max\":3}", "0", 1, 3);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-3,\"max\":3}", "3", 1, 6);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-1,\"max\":0}", "0", 1, 1);
}

static void test_random_extreme_ranges(void) {
        /* the widest range: -(2^63-1) .. 2^63-1 (INT64_MIN is refused: json-c clamps smaller values to it) */
        const char *full = "{\"command\":\"random\",\"min\":-9223372036854775807,\"max\":9223372036854775807}";
        EXPECT_RANDOM(full, "-9223372036854775807", 1, 0);
        EXPECT_RANDOM(full, "0", 1, (UINT64_C(1) << 63) - 1);
        EXPECT_RANDOM(full, "9223372036854775807", 1, UINT64_MAX - 1);
        EXPECT_REPLY("{\"command\":\"random\",\"min\":-9223372036854775808,\"max\":0}", CMD_RANDOM,
                     RANDOM_ERROR("min and max must be integers"));
        /* ranges at either end of int64, no overflow */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":9223372036854775805,\"max\":9223372036854775807}", "9223372036854775807", 1, 2);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-9223372036854775807,\"max\":-9223372036854775806}", "-9223372036854775806", 1, 1);
        /* all but one value: 2^64 - 1 results, so exactly one 64-bit value must be rejected */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":-9223372036854775807,\"max\":9223372036854775807}", "9223372036854775807", 2,
                      UINT64_MAX, UINT64_MAX - 1);
        /* 0..INT64_MAX: 2^63 results; the upper half of the 64-bit values is rejected */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":0,\"max\":9223372036854775807}", "7", 3, UINT64_C(1) << 63, UINT64_MAX, 7);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":0,\"max\":9223372036854775807}", "9223372036854775807", 1, (UINT64_C(1) << 63) - 1);
}

static void test_random_rejects_biased_values(void) {
        /* 3 results: 2^64 = 3 * k + 1, so UINT64_MAX alone is rejected */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":10,\"max\":12}", "12", 2, UINT64_MAX, UINT64_MAX - 1);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":10,\"max\":12}", "11", 3, UINT64_MAX, UINT64_MAX, 4);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":10,\"max\":12}", "10", 1, UINT64_MAX - 3);
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":10,\"max\":12}", "11", 1, UINT64_MAX - 2);
        /* 10 results: 2^64 = 10 * k + 6, the top 6 values are rejected */
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":0,\"max\":9}", "9", 1, UINT64_C(18446744073709551609));
        EXPECT_RANDOM("{\"command\":\"random\",\"min\":0,\"max\":9}", "3", 7, UINT64_C(18446744073709551610),
                      UINT64_C(18446744073709551611), UINT64_C(18446744073709551612), UINT64_C(18446744073709551613),
                      UINT64_C(18446744073709551614), UINT64_C(18446744073709551615), 3);
        /* the default 1..100: 2^64 = 100 * k + 16 */
        EXPECT_RANDOM("{\"command\":\"random\"}", "100", 3, UINT64_MAX, UINT64_C(18446744073709551600), UINT64_C(18446744073709551599));
}

static void test_random_uniform_over_counter(void) {
        /* 600 consecutive values over 1..6: each result exactly 100 times */
        struct json_object *req = json_tokener_parse("{\"command\":\"random\",\"min\":1,\"max\":6}");
        unsigned seen[7] = {};
        Stub s = {};
        CmdContext ctx = context(&s, NOW, 0);

        ASSERT_TRUE(req != NULL);
        for (int i = 0; i < 600; i++) {
                CmdKind kind;
                struct json_object *reply = cmd_handle(req, &ctx, &kind), *v;
                ASSERT_TRUE(json_object_object_get_ex(reply, "result", &v));
                int64_t r = json_object_get_int64(v);
                ASSERT_TRUE(r >= 1 && r <= 6);
                if (r >= 1 && r <= 6)
                        seen[r]++;
                json_object_put(reply);
        }
        for (int i = 1; i <= 6; i++)
                ASSERT_UINTEQ(seen[i], 100);
        ASSERT_UINTEQ(s.random_calls, 600);
        json_object_put(req);
}

static void test_random_not_integers(void) {
        static const char *const bad[] = {
                "\"min\":\"1\"",
                "\"max\":\"100\"",
                "\"min\":\"1\",\"max\":\"2\"",
                "\"min\":1.5",
                "\"max\":2.0",
                "\"min\":1e3",
                "\"min\":true",
                "\"max\":false",
                "\"min\":null",
                "\"max\":[1]",
                "\"min\":{}",
                /* values json-c cannot hold as an int64 */
                "\"max\":1e30",
                "\"min\":-1e30",
                "\"max\":99999999999999999999",
                "\"min\":-99999999999999999999",
                "\"max\":9223372036854775808",
                "\"max\":18446744073709551615",
                "\"min\":-9223372036854775809",
        };
        char request[128];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Stub s = {};
                snprintf(request, sizeof(request), "{\"command\":\"random\",%s}", bad[i]);
                expect_reply_at(request, &s, CMD_RANDOM, RANDOM_ERROR("min and max must be integers"), __LINE__, __func__);
                unit_assert_uinteq(s.random_calls, 0, request, __LINE__, __FILE__, __func__);
        }
}

static void test_random_min_greater_than_max(void) {
        EXPECT_REPLY("{\"command\":\"random\",\"min\":10,\"max\":9}", CMD_RANDOM, RANDOM_ERROR("min must not be greater than max"));
        EXPECT_REPLY("{\"command\":\"random\",\"min\":101}", CMD_RANDOM, RANDOM_ERROR("min must not be greater than max"));
        EXPECT_REPLY("{\"command\":\"random\",\"max\":0}", CMD_RANDOM, RANDOM_ERROR("min must not be greater than max"));
        EXPECT_REPLY("{\"command\":\"random\",\"min\":9223372036854775807,\"max\":-9223372036854775807}", CMD_RANDOM,
                     RANDOM_ERROR("min must not be greater than max"));
        /* a type error is reported before the order */
        EXPECT_REPLY("{\"command\":\"random\",\"min\":10,\"max\":\"1\"}", CMD_RANDOM, RANDOM_ERROR("min and max must be integers"));
}

/* ---- time ---- */

static void expect_time_at(double now, long utc_offset, const char *expected, unsigned line, const char *func) {
        Stub s = {};
        CmdContext ctx = context(&s, now, utc_offset);
        char text[160];

        /* the timestamp is the caller's clock, whatever the offset, to the microsecond, without
         * trailing zeros but with at least one digit after the point */
        char ts[40];
        int n = snprintf(ts, sizeof(ts), "%.6f", now);
        while (ts[n - 1] == '0' && ts[n - 2] != '.')
                ts[--n] = '\0';
        snprintf(text, sizeof(text), "{\"status\":\"success\",\"command\":\"time\",\"result\":\"%s\",\"timestamp\":%s}", expected, ts);
        expect_reply_ctx_at("{\"command\":\"time\"}", &ctx, CMD_TIME, text, line, func);
}

#define EXPECT_TIME(now, offset, expected) expect_time_at((now), (offset), (expected), __LINE__, __func__)

static void test_time(void) {
        EXPECT_REPLY("{\"command\":\"time\"}", CMD_TIME,
                     "{\"status\":\"success\",\"command\":\"time\",\"result\":\"2023-11-14 22:13:20\",\"timestamp\":" TS "}");
        EXPECT_TIME(1700000000.0, 0, "2023-11-14 22:13:20");
        EXPECT_TIME(1700000000.999, 0, "2023-11-14 22:13:20");
        EXPECT_TIME(1700000000.5, 3600, "2023-11-14 23:13:20");
        EXPECT_TIME(1700000000.5, 7200, "2023-11-15 00:13:20");
        EXPECT_TIME(1700000000.5, -5 * 3600, "2023-11-14 17:13:20");
        EXPECT_TIME(1700000000.5, 5 * 3600 + 1800, "2023-11-15 03:43:20");
        EXPECT_TIME(0, 0, "1970-01-01 00:00:00");
        EXPECT_TIME(951782400, 0, "2000-02-29 00:00:00");
        EXPECT_TIME(4102444799, 0, "2099-12-31 23:59:59");
        /* extra members are ignored */
        EXPECT_REPLY("{\"command\":\"time\",\"tz\":\"Europe/Paris\"}", CMD_TIME,
                     "{\"status\":\"success\",\"command\":\"time\",\"result\":\"2023-11-14 22:13:20\",\"timestamp\":" TS "}");
}

/* ---- stats and whoami ---- */

static void test_stats_and_whoami(void) {
        Stub s = {};

        expect_reply_at("{\"command\":\"stats\"}", &s, CMD_STATS,
                        "{\"status\":\"success\",\"command\":\"stats\",\"result\":{\"connections\":3,\"messages\":12},\"timestamp\":" TS
                        "}",
                        __LINE__, __func__);
        ASSERT_UINTEQ(s.stats_calls, 1);
        ASSERT_UINTEQ(s.whoami_calls, 0);
        expect_reply_at("{\"command\":\"whoami\"}", &s, CMD_WHOAMI,
                        "{\"status\":\"success\",\"command\":\"whoami\",\"result\":{\"address\":\"127.0.0.1:40000\",\"id\":7},"
                        "\"timestamp\":" TS "}",
                        __LINE__, __func__);
        ASSERT_UINTEQ(s.stats_calls, 1);
        ASSERT_UINTEQ(s.whoami_calls, 1);
        ASSERT_UINTEQ(s.random_calls, 0);
        /* near misses are unknown commands, not stats or whoami */
        EXPECT_REPLY("{\"command\":\"stat\"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: stat\",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"statsx\"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: statsx\",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"who\"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: who\",\"timestamp\":" TS "}");
}

/* ---- unknown and invalid ---- */

static void test_unknown_command(void) {
        EXPECT_REPLY("{\"command\":\"dance\"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: dance\",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"ECHO\",\"data\":1}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: ECHO\",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"\"}", CMD_UNKNOWN, "{\"status\":\"error\",\"message\":\"Unknown command: \",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"echo \"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: echo \",\"timestamp\":" TS "}");
        EXPECT_REPLY("{\"command\":\"say \\\"hi\\\"\"}", CMD_UNKNOWN,
                     "{\"status\":\"error\",\"message\":\"Unknown command: say \\\"hi\\\"\",\"timestamp\":" TS "}");
}

static void test_unknown_command_truncated(void) {
        static const size_t lengths[] = { 63, 64, 65, 200 };
        char name[201], request[300], expected[300];

        /* 64 characters are kept whole, a longer name is cut to 64 */
        for (size_t i = 0; i < ELEMENTSOF(lengths); i++) {
                memset(name, 'x', lengths[i]);
                name[lengths[i]] = 0;
                snprintf(request, sizeof(request), "{\"command\":\"%s\"}", name);
                snprintf(expected, sizeof(expected), "{\"status\":\"error\",\"message\":\"Unknown command: %.64s\",\"timestamp\":" TS "}",
                         name);
                EXPECT_REPLY(request, CMD_UNKNOWN, expected);
        }
}

static void test_unknown_command_truncated_utf8(void) {
        /* 63 ASCII characters and then an "é": the cut must not leave half a character, or the
         * reply is not valid UTF-8 (RFC 8259 requires it) */
        char name[80], request[120];
        memset(name, 'a', 63);
        snprintf(name + 63, sizeof(name) - 63, "\xC3\xA9zz");
        snprintf(request, sizeof(request), "{\"command\":\"%s\"}", name);

        struct json_object *req = json_tokener_parse(request), *msg;
        Stub s = {};
        CmdContext ctx = context(&s, NOW, 0);
        CmdKind kind;
        ASSERT_TRUE(req != NULL);
        struct json_object *reply = cmd_handle(req, &ctx, &kind);
        ASSERT_INTEQ(kind, CMD_UNKNOWN);
        ASSERT_TRUE(json_object_object_get_ex(reply, "message", &msg));
        const char *m = json_object_get_string(msg);
        ASSERT_TRUE(m && strncmp(m, "Unknown command: aaa", 20) == 0);
        char shown[200] = "(null)";
        for (size_t i = 0, off = 0; m && m[i] && off + 5 < sizeof(shown); i++)
                off += (size_t)snprintf(shown + off, sizeof(shown) - off, (unsigned char)m[i] < 0x80 ? "%c" : "\\x%02X",
                                        (unsigned char)m[i]);
        unit_assert_true(m && utf8_valid(m), shown, __LINE__, __FILE__, __func__);
        json_object_put(reply);
        json_object_put(req);
}

static void test_invalid_request(void) {
        static const char *const bad[] = {
                "{}",
                "{\"data\":1}",
                "{\"Command\":\"echo\"}",
                "{\"command\":5}",
                "{\"command\":null}",
                "{\"command\":true}",
                "{\"command\":[\"echo\"]}",
                "{\"command\":{\"name\":\"echo\"}}",
                /* not objects */
                "[{\"command\":\"echo\"}]",
                "\"echo\"",
                "42",
                "true",
                "null",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                EXPECT_REPLY(bad[i], CMD_INVALID, INVALID_REPLY);
}

static void test_cmd_error(void) {
        Stub s = {};
        CmdContext ctx = context(&s, NOW, 0);
        char *text = reply_text(cmd_error("Message too long", &ctx));

        ASSERT_STREQ(text, "{\"status\":\"error\",\"message\":\"Message too long\",\"timestamp\":" TS "}");
        free(text);
        text = reply_text(cmd_error("Invalid JSON: \"x\"", &ctx));
        ASSERT_STREQ(text, "{\"status\":\"error\",\"message\":\"Invalid JSON: \\\"x\\\"\",\"timestamp\":" TS "}");
        free(text);
        ctx.now = 0;
        text = reply_text(cmd_error("", &ctx));
        ASSERT_STREQ(text, "{\"status\":\"error\",\"message\":\"\",\"timestamp\":0.0}");
        free(text);
}

static void test_kind_names(void) {
        static const char *const names[] = { "echo", "random", "time", "stats", "whoami", "unknown", "invalid" };

        ASSERT_INTEQ(ELEMENTSOF(names), _CMD_KIND_MAX);
        for (int i = 0; i < _CMD_KIND_MAX; i++)
                ASSERT_STREQ(cmd_kind_to_string((CmdKind)i), names[i]);
        ASSERT_STREQ(cmd_kind_to_string(_CMD_KIND_MAX), NULL);
        ASSERT_STREQ(cmd_kind_to_string((CmdKind)(_CMD_KIND_MAX + 1)), NULL);
}

static void test_ret_kind_each_case(void) {
        static const struct {
                const char *request;
                CmdKind kind;
        } cases[] = {
                { "{\"command\":\"echo\"}", CMD_ECHO },
                { "{\"command\":\"random\"}", CMD_RANDOM },
                { "{\"command\":\"random\",\"min\":\"x\"}", CMD_RANDOM },
                { "{\"command\":\"random\",\"min\":2,\"max\":1}", CMD_RANDOM },
                { "{\"command\":\"time\"}", CMD_TIME },
                { "{\"command\":\"stats\"}", CMD_STATS },
                { "{\"command\":\"whoami\"}", CMD_WHOAMI },
                { "{\"command\":\"nope\"}", CMD_UNKNOWN },
                { "{\"command\":1}", CMD_INVALID },
                { "[]", CMD_INVALID },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_object *req = json_tokener_parse(cases[i].request);
                Stub s = {};
                CmdContext ctx = context(&s, NOW, 0);
                CmdKind kind = _CMD_KIND_MAX;
                json_object_put(cmd_handle(req, &ctx, &kind));
                unit_assert_inteq(kind, cases[i].kind, cases[i].request, __LINE__, __FILE__, __func__);
                json_object_put(req);
        }
}

int main(void) {
        static CU_TestInfo echo_tests[] = {
                { "echo_each_type", test_echo_each_type },
                { "echo_missing_data", test_echo_missing_data },
                { "echo_string_escapes_as_json_c", test_echo_string_escapes_as_json_c },
                { "echo_reply_outlives_request", test_echo_reply_outlives_request },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo random_tests[] = {
                { "random_default_range", test_random_default_range },
                { "random_single_value", test_random_single_value },
                { "random_negative_ranges", test_random_negative_ranges },
                { "random_extreme_ranges", test_random_extreme_ranges },
                { "random_rejects_biased_values", test_random_rejects_biased_values },
                { "random_uniform_over_counter", test_random_uniform_over_counter },
                { "random_not_integers", test_random_not_integers },
                { "random_min_greater_than_max", test_random_min_greater_than_max },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo other_tests[] = {
                { "time", test_time },
                { "stats_and_whoami", test_stats_and_whoami },
                { "unknown_command", test_unknown_command },
                { "unknown_command_truncated", test_unknown_command_truncated },
                { "unknown_command_truncated_utf8", test_unknown_command_truncated_utf8 },
                { "invalid_request", test_invalid_request },
                { "cmd_error", test_cmd_error },
                { "kind_names", test_kind_names },
                { "ret_kind_each_case", test_ret_kind_each_case },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "cmd echo", NULL, NULL, NULL, NULL, echo_tests },
                { "cmd random", NULL, NULL, NULL, NULL, random_tests },
                { "cmd others", NULL, NULL, NULL, NULL, other_tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
