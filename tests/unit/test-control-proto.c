/* SPDX-License-Identifier: MIT */
/* The control protocol codec: what a request line must look like, what replies look like on the
 * wire, the stable error codes, which commands need an admin, and the socket path rule. */
#include <string.h>

#include "control-proto.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

static void expect_bad(const char *line, const char *message, int64_t id) {
        ControlRequest r;
        const char *err = NULL;
        ASSERT_INTEQ(control_request_parse(line, strlen(line), &r, &err), -EBADMSG);
        ASSERT_STREQ(err, message);
        ASSERT_INTEQ(r.id, id);
        ASSERT_TRUE(r.root == NULL);
}

static void test_request_ok(void) {
        const char *line = "{\"id\":7,\"command\":\"show\",\"args\":{\"server\":\"echo\",\"n\":3}}";
        ControlRequest r;
        const char *err = NULL, *s = NULL;
        int64_t n = 0;

        ASSERT_INTEQ(control_request_parse(line, strlen(line), &r, &err), 0);
        ASSERT_INTEQ(r.id, 7);
        ASSERT_STREQ(r.command, "show");
        ASSERT_INTEQ(control_arg_string(r.args, "server", &s), 0);
        ASSERT_STREQ(s, "echo");
        ASSERT_INTEQ(control_arg_int(r.args, "n", &n), 0);
        ASSERT_INTEQ(n, 3);
        ASSERT_INTEQ(control_arg_string(r.args, "n", &s), -EBADMSG);
        ASSERT_INTEQ(control_arg_int(r.args, "server", &n), -EBADMSG);
        ASSERT_INTEQ(control_arg_string(r.args, "missing", &s), -ENOENT);
        control_request_done(&r);

        /* args may be left out; trailing blanks and a CR are tolerated */
        const char *bare = "{\"id\":0,\"command\":\"status\"} \r";
        ASSERT_INTEQ(control_request_parse(bare, strlen(bare), &r, &err), 0);
        ASSERT_TRUE(r.args != NULL && json_object_is_type(r.args, json_type_object));
        control_request_done(&r);
}

static void test_request_bad(void) {
        expect_bad("", "request is not a JSON object", -1);
        expect_bad("not json", "request is not a JSON object", -1);
        expect_bad("[1,2]", "request is not a JSON object", -1);
        expect_bad("{\"id\":1,\"command\":\"status\"} x", "request is not a JSON object", -1);
        expect_bad("{\"id\":1,\"command\":\"status\"", "request is not a JSON object", -1);
        expect_bad("{\"command\":\"status\"}", "\"id\" must be a non-negative integer", -1);
        expect_bad("{\"id\":-1,\"command\":\"status\"}", "\"id\" must be a non-negative integer", -1);
        expect_bad("{\"id\":\"1\",\"command\":\"status\"}", "\"id\" must be a non-negative integer", -1);
        expect_bad("{\"id\":2}", "\"command\" must be a string", 2);
        expect_bad("{\"id\":3,\"command\":[]}", "\"command\" must be a string", 3);
        expect_bad("{\"id\":4,\"command\":\"status\",\"args\":[]}", "\"args\" must be an object", 4);

        ControlRequest r;
        const char *err = NULL;
        char nul[] = "{\"id\":1,\"command\":\"st\0atus\"}";
        ASSERT_INTEQ(control_request_parse(nul, sizeof(nul) - 1, &r, &err), -EBADMSG);
        ASSERT_STREQ(err, "request contains a NUL byte");

        size_t len = CONTROL_LINE_MAX + 1;
        char *big = malloc(len);
        ASSERT_TRUE(big != NULL);
        if (big) {
                memset(big, ' ', len);
                ASSERT_INTEQ(control_request_parse(big, len, &r, &err), -EBADMSG);
                ASSERT_STREQ(err, "request line too long");
                free(big);
        }
}

static void test_replies(void) {
        struct json_object *data = json_object_new_object();
        json_object_object_add(data, "path", json_object_new_string("/run/x"));
        char *ok = control_reply_ok(5, data);
        ASSERT_STREQ(ok, "{\"id\":5,\"ok\":true,\"data\":{\"path\":\"/run/x\"}}\n");

        ControlReply rep;
        ASSERT_INTEQ(control_reply_parse(ok, strlen(ok) - 1, &rep), 0);
        ASSERT_TRUE(rep.ok);
        ASSERT_INTEQ(rep.id, 5);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(rep.data, "path")), "/run/x");
        control_reply_done(&rep);
        free(ok);

        char *err = control_reply_error(-1, CONTROL_ERROR_NOT_FOUND, "no server 'x'", NULL);
        ASSERT_STREQ(err, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"not-found\",\"message\":\"no server 'x'\"}}\n");
        ASSERT_INTEQ(control_reply_parse(err, strlen(err) - 1, &rep), 0);
        ASSERT_FALSE(rep.ok);
        ASSERT_INTEQ(rep.id, -1);
        ASSERT_INTEQ(rep.code, CONTROL_ERROR_NOT_FOUND);
        ASSERT_STREQ(rep.message, "no server 'x'");
        control_reply_done(&rep);
        free(err);

        char *g = control_greeting_line("1.2.3");
        ASSERT_STREQ(g, "{\"tcpedu\":\"control\",\"protocol\":1,\"version\":\"1.2.3\"}\n");
        free(g);
        char *ev = control_event_line(json_object_new_string("x"));
        ASSERT_STREQ(ev, "{\"event\":\"x\"}\n");
        free(ev);

        /* Found by fuzz-control-proto: an error whose message (or code) is not a string gave a NULL
         * message, which tcpeductl printed and strdup()ed. */
        static const char *const odd[] = { "{\"id\":1,\"ok\":false,\"error\":{\"code\":5,\"message\":null}}",
                                           "{\"id\":1,\"ok\":false,\"error\":{\"code\":null,\"message\":[1]}}",
                                           "{\"id\":1,\"ok\":false,\"error\":{}}" };
        for (size_t i = 0; i < ELEMENTSOF(odd); i++) {
                ASSERT_INTEQ(control_reply_parse(odd[i], strlen(odd[i]), &rep), 0);
                ASSERT_FALSE(rep.ok);
                ASSERT_INTEQ(rep.code, _CONTROL_ERROR_INVALID);
                ASSERT_STREQ(rep.message, "(no message)");
                control_reply_done(&rep);
        }

        ASSERT_INTEQ(control_reply_parse("{\"id\":1,\"ok\":false}", 19, &rep), -EBADMSG);
        ASSERT_INTEQ(control_reply_parse("garbage", 7, &rep), -EBADMSG);
}

static void test_error_codes(void) {
        static const char *const names[] = { "bad-request",     "unknown-command", "not-found", "permission-denied", "conflict",
                                             "config-rejected", "limit",           "internal",  "connect-failed" };
        ASSERT_INTEQ(ELEMENTSOF(names), _CONTROL_ERROR_MAX);
        for (int i = 0; i < _CONTROL_ERROR_MAX; i++) {
                ASSERT_STREQ(control_error_to_string((ControlError)i), names[i]);
                ASSERT_INTEQ(control_error_from_string(names[i]), i);
        }
        ASSERT_INTEQ(control_error_from_string("nope"), _CONTROL_ERROR_INVALID);
        ASSERT_TRUE(control_error_to_string(_CONTROL_ERROR_MAX) == NULL);
}

static void test_commands(void) {
        static const char *const mutating[] = { "start", "stop", "restart", "kick", "reload", "log-level", "chat-say" };
        /* open to everyone; the daemon checks that a session is the caller's */
        static const char *const readonly[] = { "status",   "servers",       "show",         "connections",  "conn",
                                                "monitor",  "stats",         "session-open", "session-send", "session-recv",
                                                "sessions", "session-close", "session-watch" };
        for (size_t i = 0; i < ELEMENTSOF(mutating); i++) {
                const ControlCommand *c = control_command_find(mutating[i]);
                ASSERT_TRUE(c && c->mutating && c->logged);
        }
        ASSERT_TRUE(control_command_find("session-open")->logged);
        ASSERT_TRUE(control_command_find("session-close")->logged);
        ASSERT_TRUE(!control_command_find("session-send")->logged);
        for (size_t i = 0; i < ELEMENTSOF(readonly); i++) {
                const ControlCommand *c = control_command_find(readonly[i]);
                ASSERT_TRUE(c && !c->mutating);
        }
        size_t n;
        control_commands(&n);
        ASSERT_INTEQ(n, ELEMENTSOF(mutating) + ELEMENTSOF(readonly));
        ASSERT_TRUE(control_command_find("STATUS") == NULL);
        ASSERT_TRUE(control_command_find("") == NULL);
}

static void test_socket_path(void) {
        char buf[108];
        ASSERT_INTEQ(control_socket_path("/tmp/x.sock", buf, sizeof(buf)), 0);
        ASSERT_STREQ(buf, "/tmp/x.sock");
        if (geteuid() == 0) {
                ASSERT_INTEQ(control_socket_path("", buf, sizeof(buf)), 0);
                ASSERT_STREQ(buf, "/run/tcpedud/control.sock");
                ASSERT_INTEQ(control_socket_path(NULL, buf, sizeof(buf)), 0);
                ASSERT_STREQ(buf, "/run/tcpedud/control.sock");
        }
        char small[8];
        ASSERT_INTEQ(control_socket_path("/tmp/x.sock", small, sizeof(small)), -ENAMETOOLONG);
}

int main(void) {
        static CU_TestInfo proto[] = {
                { "request_ok", test_request_ok },
                { "request_bad", test_request_bad },
                { "replies", test_replies },
                { "error_codes", test_error_codes },
                { "commands", test_commands },
                { "socket_path", test_socket_path },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "control protocol", NULL, NULL, NULL, NULL, proto },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
