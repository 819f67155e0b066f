/* SPDX-License-Identifier: MIT */
/* The enhanced server type against a real tcpedud: the JSON command protocol (echo, random, time,
 * stats, whoami) with every error text, framing (objects back to back, split into single bytes,
 * text lines echoed, invalid JSON, max_message, line_timeout), and what tcpeductl shows of it. */
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "test-util.h"

#include "line-client.h"

/* ---- the enhanced server ---- */

static Daemon *start_enhanced(const char *name, const char *extra, Addr *a) {
        Daemon *d = daemon_start(tstr("[server %s]\ntype = enhanced\nlisten = 127.0.0.1:0\n%s", name, extra ? extra : ""), NULL);
        REQUIRE(d != NULL, "daemon did not start");
        REQUIRE(daemon_listener(d, "127.0.0.1", a), "no listener on 127.0.0.1");
        return d;
}

static void test_echo(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        SEND(c, "{\"command\":\"echo\",\"data\":\"hello\"}\n");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"hello\"}");
        /* any JSON value comes back as it was */
        const char *values[] = {
                "{'a':[1,2.5,{'b':null}],'c':true,'d':'x\\\"y\\\\z\\n'}",
                "[]",
                "12345678901",
                "-0.25",
                "false",
                "null",
                "'caf\\u00e9 \\u263a'",
                "'caf\xc3\xa9 \xe2\x98\xba'",
                "''",
        };
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                SEND(c, J("{'command':'echo','data':%s}", Q(values[i])));
                EXPECT_JSON(c, J("{'status':'success','command':'echo','data':%s}", Q(values[i])));
        }
        /* no data: "data" is null */
        SEND(c, "{\"command\":\"echo\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":null}");
        /* other keys are ignored; the order of the keys does not matter */
        SEND(c, "{\"data\":[\"z\"],\"extra\":1,\"command\":\"echo\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":[\"z\"]}");
        /* the reply's bytes: one line, keys in the documented order, timestamp last */
        SEND(c, "{\"command\":\"echo\",\"data\":\"raw\"}");
        char *raw = LINE(c);
        regex_t re;
        REQUIRE_INT(regcomp(&re, "^\\{\"status\":\"success\",\"command\":\"echo\",\"data\":\"raw\",\"timestamp\":[0-9]+(\\.[0-9]+)?\\}$",
                            REG_EXTENDED | REG_NOSUB),
                    0);
        int m = regexec(&re, raw, 0, NULL, 0);
        regfree(&re);
        EXPECT(m == 0, "echo reply bytes: %s", raw);
        /* the timestamp is the time of the reply */
        json_object *o = parse_strict(raw), *ts;
        double now = (double)time(NULL);
        EXPECT(o && json_object_object_get_ex(o, "timestamp", &ts) && json_object_get_double(ts) > now - 10 &&
                       json_object_get_double(ts) < now + 10,
               "timestamp far from now (%.0f): %s", now, raw);
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_random(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        /* defaults: 1..100 */
        for (int i = 0; i < 20; i++)
                SEND(c, "{\"command\":\"random\"}");
        for (int i = 0; i < 20; i++) {
                json_object *o = JSON(c), *v;
                EXPECT_STR(jstr(o, "status"), "success");
                EXPECT_STR(jstr(o, "command"), "random");
                EXPECT(json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_int) &&
                               json_object_get_int64(v) >= 1 && json_object_get_int64(v) <= 100,
                       "default random: %s", jtext(o));
                EXPECT_INT(json_object_object_length(o), 4);
        }
        /* only one value possible */
        SEND(c, "{\"command\":\"random\",\"min\":7,\"max\":7}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":7}");
        SEND(c, "{\"command\":\"random\",\"min\":100}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":100}");
        SEND(c, "{\"command\":\"random\",\"max\":1}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":1}");
        /* -3..3, 700 requests in one send: every value comes up, none outside */
        char *many = tstr("%s", "");
        for (int i = 0; i < 700; i++)
                many = tstr("%s{\"command\":\"random\",\"min\":-3,\"max\":3}", many);
        SEND(c, many);
        int seen[7] = {}, outside = 0;
        for (int i = 0; i < 700; i++) {
                json_object *o = JSON(c), *v;
                REQUIRE(json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_int), "random: %s", jtext(o));
                int64_t r = json_object_get_int64(v);
                if (r < -3 || r > 3)
                        outside++;
                else
                        seen[r + 3]++;
        }
        EXPECT_INT(outside, 0);
        for (int i = 0; i < 7; i++)
                EXPECT(seen[i] > 40 && seen[i] < 170, "value %d came %d times in 700 draws from -3..3", i - 3, seen[i]);
        /* (nearly) the whole int64 range; INT64_MIN itself is refused: json-c cannot tell it from
         * smaller numbers, which it clamps to it */
        SEND(c, "{\"command\":\"random\",\"min\":-9223372036854775807,\"max\":9223372036854775807}");
        json_object *o = JSON(c), *v;
        EXPECT(json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_int), "full range: %s", jtext(o));
        SEND(c, "{\"command\":\"random\",\"min\":9223372036854775807,\"max\":9223372036854775807}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":9223372036854775807}");

        /* errors */
        const char *not_int[] = {
                "{\"command\":\"random\",\"min\":\"1\"}",
                "{\"command\":\"random\",\"max\":2.5}",
                "{\"command\":\"random\",\"min\":1,\"max\":true}",
                "{\"command\":\"random\",\"min\":null}",
                "{\"command\":\"random\",\"min\":[1]}",
                "{\"command\":\"random\",\"max\":1e3}",
                /* not representable as int64: not silently clamped */
                "{\"command\":\"random\",\"min\":1,\"max\":9223372036854775808}",
                "{\"command\":\"random\",\"min\":-9223372036854775809,\"max\":1}",
                "{\"command\":\"random\",\"min\":1,\"max\":18446744073709551615}",
        };
        for (size_t i = 0; i < sizeof(not_int) / sizeof(not_int[0]); i++) {
                SEND(c, not_int[i]);
                o = JSON(c);
                const char *why = json_mismatch(
                        o, parse_strict("{\"status\":\"error\",\"command\":\"random\",\"message\":\"min and max must be integers\"}"));
                EXPECT(why == NULL, "request %s: got %s: %s", not_int[i], jtext(o), why);
        }
        SEND(c, "{\"command\":\"random\",\"min\":10,\"max\":9}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"command\":\"random\",\"message\":\"min must not be greater than max\"}");
        SEND(c, "{\"command\":\"random\",\"min\":101}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"command\":\"random\",\"message\":\"min must not be greater than max\"}");
        /* still answering */
        SEND(c, "{\"command\":\"random\",\"min\":-5,\"max\":-5}\n");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":-5}");
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_time(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        time_t before = time(NULL);
        SEND(c, "{\"command\":\"time\"}");
        json_object *o = JSON(c), *ts;
        time_t after = time(NULL);
        EXPECT_STR(jstr(o, "status"), "success");
        EXPECT_STR(jstr(o, "command"), "time");
        EXPECT_INT(json_object_object_length(o), 4);
        const char *result = jstr(o, "result");
        REQUIRE(result != NULL, "no result string: %s", jtext(o));
        regex_t re;
        REQUIRE_INT(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", REG_EXTENDED | REG_NOSUB), 0);
        int m = regexec(&re, result, 0, NULL, 0);
        regfree(&re);
        EXPECT(m == 0, "time result '%s' is not YYYY-MM-DD HH:MM:SS", result);
        /* local time (the daemon and the test share the environment, TZ included) */
        struct tm tm = { .tm_isdst = -1 };
        char *end = strptime(result, "%Y-%m-%d %H:%M:%S", &tm);
        REQUIRE(end && *end == 0, "unparsable time '%s'", result);
        time_t t = mktime(&tm);
        EXPECT(t >= before - 2 && t <= after + 2, "time '%s' is %+lld s from the test's local time", result, (long long)(t - before));
        EXPECT(json_object_object_get_ex(o, "timestamp", &ts) && json_object_get_double(ts) >= (double)before - 2 &&
                       json_object_get_double(ts) <= (double)after + 2,
               "timestamp: %s", jtext(o));
        /* arguments are ignored */
        SEND(c, "{\"command\":\"time\",\"format\":\"%s\"}");
        o = JSON(c);
        EXPECT_STR(jstr(o, "command"), "time");
        EXPECT(jstr(o, "result") && strlen(jstr(o, "result")) == 19, "time: %s", jtext(o));
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_unknown_and_invalid(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        SEND(c, "{\"command\":\"dance\"}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Unknown command: dance\"}");
        SEND(c, "{\"command\":\"ECHO\",\"data\":1}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Unknown command: ECHO\"}");
        SEND(c, "{\"command\":\"\"}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Unknown command: \"}");
        SEND(c, "{\"command\":\"caf\xc3\xa9\"}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Unknown command: caf\xc3\xa9\"}");

        const char *invalid[] = {
                "{}",
                "{\"data\":\"echo\"}",
                "{\"command\":5}",
                "{\"command\":null}",
                "{\"command\":[\"echo\"]}",
                "{\"command\":{\"name\":\"echo\"}}",
                "{\"Command\":\"echo\"}",
        };
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                SEND(c, invalid[i]);
                json_object *o = JSON(c);
                const char *why = json_mismatch(
                        o,
                        parse_strict("{\"status\":\"error\",\"message\":\"Invalid message format. Expected JSON with 'command' field.\"}"));
                EXPECT(why == NULL, "request %s: got %s: %s", invalid[i], jtext(o), why);
        }
        SEND(c, "{\"command\":\"echo\",\"data\":\"still here\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"still here\"}");
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_back_to_back(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        /* no separator, a newline, blanks and CRLF between objects, all in one send */
        SEND(c,
             "{\"command\":\"echo\",\"data\":1}{\"command\":\"echo\",\"data\":2}\n{\"command\":\"echo\",\"data\":3} \t \r\n\n"
             "  {\"command\":\"echo\",\"data\":\"{4}\"}{\"command\":\"random\",\"min\":5,\"max\":5}{\"command\":\"echo\",\"data\":{\"six\":"
             "{\"seven\":\"}\"}}}\n");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":1}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":2}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":3}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"{4}\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":5}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":{\"six\":{\"seven\":\"}\"}}}");
        /* an object, a text line and an error, back to back */
        SEND(c, "{\"command\":\"echo\",\"data\":\"a\"}plain text\n{\"command\":\"nope\"}{\"command\":\"echo\",\"data\":\"b\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"a\"}");
        EXPECT_LINE(c, "plain text");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Unknown command: nope\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"b\"}");
        /* 200 objects in one send, answered in order */
        char *many = tstr("%s", "");
        for (int i = 0; i < 200; i++)
                many = tstr("%s{\"command\":\"echo\",\"data\":%d}", many, i);
        SEND(c, many);
        for (int i = 0; i < 200; i++)
                EXPECT_JSON(c, tstr("{\"status\":\"success\",\"command\":\"echo\",\"data\":%d}", i));
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

/* bytes_in of the connection whose peer is this client, from `tcpeductl --json connections`. */
static long long conn_bytes_in(Daemon *d, Client *c, const char **ret_id) {
        char peer[ADDR_STR_MAX];
        sock_local(c->fd, peer, sizeof(peer));
        json_object *o = CTL_JSON(d, "connections"), *arr = o ? json_object_object_get(o, "connections") : NULL;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (jstr(e, "peer") && strcmp(jstr(e, "peer"), peer) == 0) {
                        if (ret_id)
                                *ret_id = tstr("%s", jstr(e, "id"));
                        return json_object_get_int64(json_object_object_get(e, "bytes_in"));
                }
        }
        return -1;
}

static void test_one_byte_sends(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        /* Each byte read by the daemon on its own (bytes_in says so before the next is sent), and no
         * reply before the last one. Braces and escaped quotes inside the string must not count. */
        const char *req = "{\"command\":\"echo\",\"data\":\"a}{\\\"b\\\\\"}";
        size_t n = strlen(req);
        for (size_t i = 0; i < n; i++) {
                SEND_LEN(c, req + i, 1);
                long long in = -1;
                uint64_t deadline = now_ms() + IO_TIMEOUT_MS;
                while ((in = conn_bytes_in(d, c, NULL)) != (long long)(i + 1) && now_ms() < deadline)
                        ;
                REQUIRE(in == (long long)(i + 1), "after byte %zu: daemon read %lld bytes", i + 1, in);
                if (i + 1 < n)
                        EXPECT_NOTHING(c);
        }
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"a}{\\\"b\\\\\"}");

        /* a longer request, a text line and a second request, one byte per send (TCP_NODELAY
         * is not needed: whatever the reads look like, the replies must be the same) */
        const char *more =
                "{\"command\":\"random\",\"min\":3,\"max\":3}\n  hello\r\n{\"command\":\"echo\",\"data\":[\"x\",{\"y\":\"\\u007d\"}]}";
        for (size_t i = 0; i < strlen(more); i++)
                SEND_LEN(c, more + i, 1);
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"random\",\"result\":3}");
        EXPECT_LINE(c, "hello");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":[\"x\",{\"y\":\"}\"}]}");
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_text_echo(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        SEND(c, "hello world\n");
        EXPECT_LINE(c, "hello world");
        SEND(c, "with CRLF\r\nsecond line\n[1,2,3]\n\"a string\"\n");
        EXPECT_LINE(c, "with CRLF");
        EXPECT_LINE(c, "second line");
        EXPECT_LINE(c, "[1,2,3]");
        EXPECT_LINE(c, "\"a string\"");
        /* bytes that are not UTF-8 come back unchanged too */
        SEND_LEN(c, "\xff\xfe bin\x01\x7f\n", 9);
        char *l = LINE(c);
        EXPECT(memcmp(l, "\xff\xfe bin\x01\x7f", 8) == 0 && strlen(l) == 8, "binary line came back as '%s'", l);
        /* a line and an object alternate */
        SEND(c, "one\n{\"command\":\"echo\",\"data\":\"two\"}\nthree\n");
        EXPECT_LINE(c, "one");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"two\"}");
        EXPECT_LINE(c, "three");
        /* a line arriving in pieces is echoed once, whole */
        SEND(c, "piece");
        SEND(c, "wise");
        SEND(c, "\n");
        EXPECT_LINE(c, "piecewise");
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_invalid_json(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), NULL, &a);
        Client *c = CLIENT(&a, "client");

        /* invalid, then a valid object on the next line */
        SEND(c, "{\"command\": oops}\n{\"command\":\"echo\",\"data\":\"ok\"}\n");
        json_object *o = JSON(c);
        EXPECT_STR(jstr(o, "status"), "error");
        EXPECT(jstr(o, "message") && strncmp(jstr(o, "message"), "Invalid JSON: ", 14) == 0 && strlen(jstr(o, "message")) > 14,
               "invalid JSON reply: %s", jtext(o));
        EXPECT_INT(json_object_object_length(o), 3);
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"ok\"}");

        /* the rest of the invalid object's line is skipped, even a valid object on it */
        SEND(c, "{\"command\":\"echo\",}{\"command\":\"echo\",\"data\":\"skipped\"}\n{\"command\":\"echo\",\"data\":\"next line\"}");
        o = JSON(c);
        EXPECT(jstr(o, "message") && strncmp(jstr(o, "message"), "Invalid JSON: ", 14) == 0, "invalid JSON reply: %s", jtext(o));
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"next line\"}");

        /* each of these is one error, then the next line works */
        const char *bad[] = {
                "{'command':'echo'}",       "{\"command\":\"echo\" \"data\":1}",    "{\"command\":\"echo\",\"data\":tru}",
                "{command:\"echo\"}",       "{\"command\":\"echo\",\"data\":[1,2}", "{\"command\":\"echo\",\"data\":\"\\x\"}",
                "{\"command\":\"echo\"} }",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                SEND(c, tstr("%s\n{\"command\":\"echo\",\"data\":%zu}\n", bad[i], i));
                if (i == sizeof(bad) / sizeof(bad[0]) - 1) /* a valid object, then a stray '}' on its line */
                        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":null}");
                o = JSON(c);
                EXPECT(jstr(o, "status") && strcmp(jstr(o, "status"), "error") == 0 && jstr(o, "message") &&
                               strncmp(jstr(o, "message"), "Invalid JSON: ", 14) == 0 && json_object_object_length(o) == 3,
                       "request %s: got %s", bad[i], jtext(o));
                EXPECT_JSON(c, tstr("{\"status\":\"success\",\"command\":\"echo\",\"data\":%zu}", i));
        }
        /* a '}' with no '{' */
        SEND(c, "} {\"command\":\"echo\",\"data\":\"skipped\"}\n{\"command\":\"echo\",\"data\":\"after\"}");
        EXPECT_JSON(c, "{\"status\":\"error\",\"message\":\"Invalid JSON: unbalanced '}'\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"after\"}");
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_max_message(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), "max_message = 64\n", &a);
        Client *c = CLIENT(&a, "client");
        const char *too_long = "{\"status\":\"error\",\"message\":\"Message too long (max_message is 64 bytes): discarded\"}";

        /* exactly 64 bytes: fine; 65: too long, then the next one works */
        char d36[37], d37[38];
        memset(d36, 'x', 36);
        d36[36] = 0;
        memset(d37, 'y', 37);
        d37[37] = 0;
        char *req64 = tstr("{\"command\":\"echo\",\"data\":\"%s\"}", d36), *req65 = tstr("{\"command\":\"echo\",\"data\":\"%s\"}", d37);
        REQUIRE_INT(strlen(req64), 64);
        REQUIRE_INT(strlen(req65), 65);
        SEND(c, req64);
        EXPECT_JSON(c, tstr("{\"status\":\"success\",\"command\":\"echo\",\"data\":\"%s\"}", d36));
        SEND(c, req65);
        EXPECT_JSON(c, too_long);
        SEND(c, "{\"command\":\"echo\",\"data\":\"after 65\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"after 65\"}");

        /* much longer, in several sends: reported once, as soon as it passes 64 bytes */
        char big[1000];
        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        SEND(c, "{\"command\":\"echo\",\"data\":\"");
        SEND(c, big);
        EXPECT_JSON(c, too_long);
        SEND(c, big);
        SEND(c, "\",\"more\":{\"x\":\"}\"}}{\"command\":\"echo\",\"data\":\"next\"}");
        EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"next\"}");

        /* a text line over 64 bytes: the same */
        SEND(c, tstr("%s\nshort line\n", big));
        EXPECT_JSON(c, too_long);
        EXPECT_LINE(c, "short line");
        SEND(c, tstr("%.64s\n", big));
        EXPECT_LINE(c, tstr("%.64s", big));
        EXPECT_NOTHING(c);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_line_timeout(void) {
        Addr a;
        Daemon *d = start_enhanced(unique_name("enh"), "line_timeout = 1\n", &a);
        Client *slow = CLIENT(&a, "incomplete"), *idle = CLIENT(&a, "idle");

        /* idle: a complete request, then nothing: line_timeout does not apply to it */
        SEND(idle, "{\"command\":\"echo\",\"data\":\"idle\"}");
        EXPECT_JSON(idle, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"idle\"}");
        uint64_t start = now_ms();
        SEND(slow, "{\"command\":\"ec");
        int r = wait_end_at(__FILE__, __LINE__, slow, 5000);
        uint64_t took = now_ms() - start;
        EXPECT(r == 0, "incomplete message: expected EOF within 5 s, got %s after %llu ms", err_text(r), (unsigned long long)took);
        EXPECT(took >= 800, "closed after %llu ms, before line_timeout (1 s)", (unsigned long long)took);
        printf("\n    line_timeout = 1: closed after %llu ms\n", (unsigned long long)took);
        client_close(slow);
        /* the idle connection is still served */
        SEND(idle, "{\"command\":\"echo\",\"data\":\"still\"}");
        EXPECT_JSON(idle, "{\"status\":\"success\",\"command\":\"echo\",\"data\":\"still\"}");

        /* a text line kept incomplete: the same */
        Client *text = CLIENT(&a, "text");
        start = now_ms();
        SEND(text, "no newline");
        r = wait_end_at(__FILE__, __LINE__, text, 5000);
        took = now_ms() - start;
        EXPECT(r == 0 && took >= 800, "incomplete text line: %s after %llu ms", err_text(r), (unsigned long long)took);
        client_close(text);
        EXPECT_NOTHING(idle);
        EXPECT_INT(client_close_graceful(idle), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static json_object *result_of(json_object *reply) {
        json_object *v = NULL;
        return reply && json_object_object_get_ex(reply, "result", &v) ? v : NULL;
}

static void test_stats(void) {
        Addr a;
        const char *name = unique_name("enh");
        Daemon *d = start_enhanced(name, NULL, &a);
        Client *c = CLIENT(&a, "client");

        /* a fresh server: nothing counted yet */
        SEND(c, "{\"command\":\"stats\"}");
        json_object *o = EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"stats\",\"result\":{\"connections\":1,\"accepted\":1,"
                                        "\"requests\":0,\"errors\":0,\"commands\":{\"echo\":0,\"random\":0,\"time\":0,\"stats\":0,"
                                        "\"whoami\":0,\"unknown\":0,\"invalid\":0}}}");
        (void)o;
        SEND(c, "{\"command\":\"echo\",\"data\":1}{\"command\":\"echo\",\"data\":2}{\"command\":\"random\"}{\"command\":\"time\"}"
                "{\"command\":\"whoami\"}{\"command\":\"bogus\"}{\"nocommand\":1}{bad json}\nplain text line\n");
        for (int i = 0; i < 8; i++)
                (void)JSON(c);
        EXPECT_LINE(c, "plain text line");
        Client *other = CLIENT(&a, "other");
        SEND(other, "{\"command\":\"echo\"}{\"command\":\"nope\"}");
        (void)JSON(other);
        (void)JSON(other);
        /* counted per server, over all connections; this stats request itself is counted after it */
        SEND(c, "{\"command\":\"stats\"}");
        o = EXPECT_JSON(c, "{\"status\":\"success\",\"command\":\"stats\",\"result\":{\"connections\":2,\"accepted\":2,"
                           "\"requests\":11,\"errors\":4,\"commands\":{\"echo\":3,\"random\":1,\"time\":1,\"stats\":1,"
                           "\"whoami\":1,\"unknown\":2,\"invalid\":2}}}");
        /* tcpeductl show --json: the same counters (now with both stats requests), and the handler */
        SEND(c, "{\"command\":\"stats\"}");
        o = JSON(c);
        json_object *res = result_of(o);
        json_object *show = CTL_JSON(d, "show", name);
        REQUIRE(show != NULL, "no show output");
        EXPECT_STR(jstr(show, "type"), "enhanced");
        EXPECT_STR(jstr(show, "handler"), "json-commands");
        json_object *counters = json_object_object_get(show, "counters");
        /* stats counts itself after answering: show sees one more stats request */
        EXPECT(res && counters, "stats %s, show %s", jtext(o), jtext(show));
        if (res && counters) {
                json_object *expect =
                        parse_strict("{\"connections\":2,\"accepted\":2,\"requests\":13,\"errors\":4,\"commands\":{\"echo\":3,"
                                     "\"random\":1,\"time\":1,\"stats\":3,\"whoami\":1,\"unknown\":2,\"invalid\":2}}");
                EXPECT(json_object_equal(counters, expect), "show counters %s, expected %s", jtext(counters), jtext(expect));
                json_object *cmds = json_object_object_get(res, "commands");
                EXPECT(cmds && json_object_get_int(json_object_object_get(cmds, "stats")) == 2, "stats before show: %s", jtext(res));
                EXPECT(json_object_get_int(json_object_object_get(res, "requests")) == 12, "requests before show: %s", jtext(res));
                EXPECT(json_object_get_int(json_object_object_get(res, "connections")) == 2, "connections: %s", jtext(res));
        }
        RunResult r;
        REQUIRE_INT(ctl(d, &r, "show", name, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "enhanced") != NULL, "show: %s", r.out);
        EXPECT_NOTHING(c);
        EXPECT_NOTHING(other);
        EXPECT_INT(client_close_graceful(other), 0);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_whoami(void) {
        Addr a;
        const char *name = unique_name("enh");
        Daemon *d = start_enhanced(name, NULL, &a);
        Client *c = CLIENT(&a, "client"), *c2 = CLIENT(&a, "client2");
        char me[ADDR_STR_MAX], listener[ADDR_STR_MAX];

        sock_local(c->fd, me, sizeof(me));
        addr_format(&a, listener, sizeof(listener));
        SEND(c, "{\"command\":\"whoami\"}");
        json_object *o = JSON(c), *res = result_of(o);
        EXPECT_STR(jstr(o, "status"), "success");
        EXPECT_STR(jstr(o, "command"), "whoami");
        REQUIRE(res && json_object_is_type(res, json_type_object), "whoami: %s", jtext(o));
        EXPECT_INT(json_object_object_length(res), 5);
        EXPECT_STR(jstr(res, "peer"), me);
        EXPECT_STR(jstr(res, "local"), listener);
        EXPECT_STR(jstr(res, "state"), "ESTABLISHED");
        EXPECT_STR(jstr(res, "server"), name);
        const char *id = NULL;
        long long in = conn_bytes_in(d, c, &id);
        EXPECT(in == 20 && id, "connection of %s not listed (bytes_in %lld)", me, in);
        EXPECT_STR(jstr(res, "id"), id);
        /* another connection has another id */
        SEND(c2, "{\"command\":\"whoami\"}");
        json_object *res2 = result_of(JSON(c2));
        const char *id2 = NULL;
        (void)conn_bytes_in(d, c2, &id2);
        EXPECT_STR(jstr(res2, "id"), id2);
        EXPECT(jstr(res2, "id") && id && strcmp(jstr(res2, "id"), id) != 0, "two connections, one id %s", id);
        /* tcpeductl conn ID knows it */
        json_object *conn = id ? CTL_JSON(d, "conn", id) : NULL;
        EXPECT_STR(jstr(conn, "peer"), me);
        EXPECT_INT(client_close_graceful(c), 0);
        EXPECT_INT(client_close_graceful(c2), 0);
        EXPECT_INT(stop_daemon(d), 0);
}

static void test_config(void) {
        RunResult r;
        const char *dir = harness_tmpdir();
        const char *path = tstr("%s/bad.conf", dir);

        REQUIRE_INT(write_file(path, "[server e]\ntype = enhanced\nlisten = 127.0.0.1:0\nhistory = 5\n"), 0);
        REQUIRE_INT(run_tcpedud(&r, "-t", "-c", path, NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT(strstr(r.err, tstr("%s:4: key 'history' does not apply to a server of type enhanced", path)) != NULL, "stderr: %s", r.err);

        REQUIRE_INT(write_file(path, "[server e]\ntype = echo\nlisten = 127.0.0.1:0\nhandler = json-commands\n"), 0);
        REQUIRE_INT(run_tcpedud(&r, "-t", "-c", path, NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT(strstr(r.err, tstr("%s:4: key 'handler' does not apply to a server of type echo", path)) != NULL, "stderr: %s", r.err);

        REQUIRE_INT(write_file(path, "[server e]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = json-commands\nmax_message = 64\n"
                                     "line_timeout = 0\n"),
                    0);
        REQUIRE_INT(run_tcpedud(&r, "-t", "-c", path, NULL), 0);
        EXPECT(r.exit_code == 0, "valid enhanced config: exit %d: %s", r.exit_code, r.err);
}

static CU_TestInfo command_tests[] = {
        { "echo", test_echo },
        { "random", test_random },
        { "time", test_time },
        { "unknown command, invalid format", test_unknown_and_invalid },
        { "stats counters, show --json", test_stats },
        { "whoami matches tcpeductl connections", test_whoami },
        CU_TEST_INFO_NULL,
};

static CU_TestInfo framing_tests[] = {
        { "objects back to back", test_back_to_back },
        { "one byte per send", test_one_byte_sends },
        { "text lines echoed", test_text_echo },
        { "invalid JSON, then a valid object", test_invalid_json },
        { "max_message = 64", test_max_message },
        { "line_timeout = 1", test_line_timeout },
        { "config keys", test_config },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                SUITE("enhanced commands", command_tests),
                SUITE("enhanced framing", framing_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
