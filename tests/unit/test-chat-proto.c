/* SPDX-License-Identifier: MIT */
/* The chat protocol (common/chat-proto.c): JSON requests, line-mode commands, the username rule
 * with its exact messages, and the server's JSON messages. */
#include <string.h>

#include "chat-proto.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

/* The len bytes at p as a string (for comparing a borrowed, not terminated, slice). */
static const char *slice(const char *p, size_t len) {
        static char buf[512];
        if (!p)
                return NULL;
        snprintf(buf, sizeof(buf), "%.*s", (int)len, p);
        return buf;
}

/* s as C source would write it: what a failing assertion prints, control bytes and all. */
static const char *escaped(const char *s, size_t len) {
        static char buf[600];
        size_t off = 0;
        for (size_t i = 0; i < len && off + 5 < sizeof(buf); i++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
                        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\\x%02X", ch);
                else
                        buf[off++] = (char)ch;
        }
        buf[off] = 0;
        return buf;
}

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

/* ---- JSON requests ---- */

static void json_request(const char *text, ChatRequest *r, struct json_object **ret) {
        *ret = json_tokener_parse(text);
        chat_request_from_json(*ret, r);
}

static void expect_json_invalid_at(const char *text, const char *error, unsigned line, const char *func) {
        struct json_object *o;
        ChatRequest r;

        json_request(text, &r, &o);
        unit_assert_inteq(r.type, CHAT_REQ_INVALID, text, line, __FILE__, func);
        unit_assert_streq(r.error, error, text, line, __FILE__, func);
        json_object_put(o);
}

#define EXPECT_JSON_INVALID(text, error) expect_json_invalid_at((text), (error), __LINE__, __func__)

static void test_json_join(void) {
        struct json_object *o;
        ChatRequest r;

        json_request("{\"type\":\"join\",\"username\":\"bob\"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_UINTEQ(r.username_len, 3);
        ASSERT_STREQ(slice(r.username, r.username_len), "bob");
        ASSERT_TRUE(r.error == NULL);
        ASSERT_TRUE(r.content == NULL);
        json_object_put(o);

        /* the name is passed on as sent: checking it is chat_name_check's job */
        json_request("{\"username\":\" Zo\\u00e9 \",\"type\":\"join\",\"extra\":1}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_UINTEQ(r.username_len, 6);
        ASSERT_STREQ(slice(r.username, r.username_len), " Zo\xC3\xA9 ");
        json_object_put(o);
}

static void test_json_message(void) {
        struct json_object *o;
        ChatRequest r;

        json_request("{\"type\":\"message\",\"content\":\"hello, world\"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_UINTEQ(r.content_len, 12);
        ASSERT_STREQ(slice(r.content, r.content_len), "hello, world");
        ASSERT_TRUE(r.error == NULL);
        ASSERT_TRUE(r.username == NULL);
        json_object_put(o);

        /* a blank is content */
        json_request("{\"type\":\"message\",\"content\":\" \"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_UINTEQ(r.content_len, 1);
        json_object_put(o);
}

static void test_json_leave(void) {
        struct json_object *o;
        ChatRequest r;

        json_request("{\"type\":\"leave\"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_LEAVE);
        ASSERT_TRUE(r.error == NULL);
        json_object_put(o);
        json_request("{\"type\":\"leave\",\"username\":\"bob\",\"content\":\"bye\"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_LEAVE);
        json_object_put(o);
}

static void test_json_errors(void) {
        /* the texts the tests share with the server */
        ASSERT_STREQ(CHAT_ERR_USERNAME_REQUIRED, "Username required");
        ASSERT_STREQ(CHAT_ERR_USERNAME_TAKEN, "Username already taken");
        ASSERT_STREQ(CHAT_ERR_NOT_REGISTERED, "Not registered: join first");
        ASSERT_STREQ(CHAT_ERR_CONTENT_REQUIRED, "Content required");
        ASSERT_STREQ(CHAT_ERR_INVALID_JSON, "Invalid JSON");
        ASSERT_STREQ(CHAT_ERR_TYPE_REQUIRED, "Message type required");

        EXPECT_JSON_INVALID("{}", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("{\"username\":\"bob\"}", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":5}", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":null}", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":[\"join\"]}", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("[{\"type\":\"join\"}]", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("\"join\"", CHAT_ERR_TYPE_REQUIRED);
        EXPECT_JSON_INVALID("null", CHAT_ERR_TYPE_REQUIRED);

        EXPECT_JSON_INVALID("{\"type\":\"join\"}", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"join\",\"username\":\"\"}", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"join\",\"username\":42}", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"join\",\"username\":null}", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"join\",\"username\":[\"bob\"]}", CHAT_ERR_USERNAME_REQUIRED);

        EXPECT_JSON_INVALID("{\"type\":\"message\"}", CHAT_ERR_CONTENT_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"message\",\"content\":\"\"}", CHAT_ERR_CONTENT_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"message\",\"content\":7}", CHAT_ERR_CONTENT_REQUIRED);
        EXPECT_JSON_INVALID("{\"type\":\"message\",\"content\":{\"text\":\"hi\"}}", CHAT_ERR_CONTENT_REQUIRED);

        EXPECT_JSON_INVALID("{\"type\":\"ping\"}", "Unknown message type: ping");
        EXPECT_JSON_INVALID("{\"type\":\"\"}", "Unknown message type: ");
        EXPECT_JSON_INVALID("{\"type\":\"Join\",\"username\":\"bob\"}", "Unknown message type: Join");
        /* line-mode words are not JSON types */
        EXPECT_JSON_INVALID("{\"type\":\"users\"}", "Unknown message type: users");
        /* a long type is cut to 40 bytes */
        EXPECT_JSON_INVALID("{\"type\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\"}",
                            "Unknown message type: abcdefghijklmnopqrstuvwxyzabcdefghijklmn");
}

static void test_json_unknown_type_cut_utf8(void) {
        /* 39 ASCII characters and then an "é": the 40-byte cut must not leave half a character, or
         * the error sent back inside a JSON string is not valid UTF-8 (RFC 8259 requires it) */
        struct json_object *o;
        ChatRequest r;

        json_request("{\"type\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklm\xC3\xA9z\"}", &r, &o);
        ASSERT_INTEQ(r.type, CHAT_REQ_INVALID);
        ASSERT_TRUE(r.error && strncmp(r.error, "Unknown message type: abcdefghijklmnopqrstuvwxyzabcdefghijklm", 61) == 0);
        unit_assert_true(r.error && utf8_valid(r.error), r.error ? escaped(r.error, strlen(r.error)) : "(null)", __LINE__, __FILE__,
                         __func__);
        json_object_put(o);
}

/* ---- line mode ---- */

static void line_request(const char *line, ChatRequest *r) {
        chat_request_from_line(line, strlen(line), r);
}

static void expect_line_invalid_at(const char *line, const char *error, unsigned ln, const char *func) {
        ChatRequest r;

        line_request(line, &r);
        unit_assert_inteq(r.type, CHAT_REQ_INVALID, line, ln, __FILE__, func);
        unit_assert_streq(r.error, error, line, ln, __FILE__, func);
}

#define EXPECT_LINE_INVALID(line, error) expect_line_invalid_at((line), (error), __LINE__, __func__)

static void expect_line_type_at(const char *line, ChatRequestType type, unsigned ln, const char *func) {
        ChatRequest r;

        line_request(line, &r);
        unit_assert_inteq(r.type, type, line, ln, __FILE__, func);
        unit_assert_true(r.error == NULL, line, ln, __FILE__, func);
}

#define EXPECT_LINE_TYPE(line, type) expect_line_type_at((line), (type), __LINE__, __func__)

static void test_line_nick(void) {
        ChatRequest r;

        line_request("/nick bob", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_STREQ(slice(r.username, r.username_len), "bob");
        ASSERT_TRUE(r.error == NULL);

        line_request("/nick    bob   ", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_UINTEQ(r.username_len, 3);
        ASSERT_STREQ(slice(r.username, r.username_len), "bob");

        /* blanks inside the name stay: chat_name_check decides */
        line_request("/nick  big bob ", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_STREQ(slice(r.username, r.username_len), "big bob");

        /* only len bytes are read */
        chat_request_from_line("/nick bobXYZ", 9, &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_JOIN);
        ASSERT_STREQ(slice(r.username, r.username_len), "bob");

        EXPECT_LINE_INVALID("/nick", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_LINE_INVALID("/nick ", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_LINE_INVALID("/nick      ", CHAT_ERR_USERNAME_REQUIRED);
}

static void test_line_me(void) {
        ChatRequest r;

        line_request("/me waves", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_ACTION);
        ASSERT_STREQ(slice(r.content, r.content_len), "waves");
        ASSERT_TRUE(r.error == NULL);

        line_request("/me   waves at  everyone  ", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_ACTION);
        ASSERT_STREQ(slice(r.content, r.content_len), "waves at  everyone");

        EXPECT_LINE_INVALID("/me", CHAT_ERR_CONTENT_REQUIRED);
        EXPECT_LINE_INVALID("/me   ", CHAT_ERR_CONTENT_REQUIRED);
        EXPECT_LINE_INVALID("/meow", "Unknown command: /meow (try /help)");
}

static void test_line_simple_commands(void) {
        EXPECT_LINE_TYPE("/users", CHAT_REQ_USERS);
        EXPECT_LINE_TYPE("/users   ", CHAT_REQ_USERS);
        EXPECT_LINE_TYPE("/quit", CHAT_REQ_LEAVE);
        EXPECT_LINE_TYPE("/quit bye all", CHAT_REQ_LEAVE);
        EXPECT_LINE_TYPE("/help", CHAT_REQ_HELP);
        EXPECT_LINE_TYPE("/help nick", CHAT_REQ_HELP);
}

static void test_line_unknown_commands(void) {
        EXPECT_LINE_INVALID("/x", "Unknown command: /x (try /help)");
        EXPECT_LINE_INVALID("/x with args", "Unknown command: /x (try /help)");
        EXPECT_LINE_INVALID("/nickname", "Unknown command: /nickname (try /help)");
        EXPECT_LINE_INVALID("/nickname bob", "Unknown command: /nickname (try /help)");
        EXPECT_LINE_INVALID("/users2", "Unknown command: /users2 (try /help)");
        EXPECT_LINE_INVALID("/quitting", "Unknown command: /quitting (try /help)");
        EXPECT_LINE_INVALID("/helpme", "Unknown command: /helpme (try /help)");
        EXPECT_LINE_INVALID("/NICK bob", "Unknown command: /NICK (try /help)");
        EXPECT_LINE_INVALID("/", "Unknown command: / (try /help)");
        EXPECT_LINE_INVALID("/ nick", "Unknown command: / (try /help)");
        EXPECT_LINE_INVALID("//", "Unknown command: // (try /help)");
}

static void test_line_long_unknown_command(void) {
        char line[301], expected[128];

        /* the command word is cut to 32 bytes in the error */
        line[0] = '/';
        memset(line + 1, 'a', sizeof(line) - 2);
        line[sizeof(line) - 1] = 0;
        snprintf(expected, sizeof(expected), "Unknown command: %.32s (try /help)", line);
        ASSERT_UINTEQ(strlen(expected), strlen("Unknown command:  (try /help)") + 32);
        EXPECT_LINE_INVALID(line, expected);
        /* a shorter word ends at the first blank */
        line[20] = ' ';
        snprintf(expected, sizeof(expected), "Unknown command: %.20s (try /help)", line);
        EXPECT_LINE_INVALID(line, expected);
        /* a line of exactly 32 bytes */
        line[20] = 'a';
        line[32] = 0;
        snprintf(expected, sizeof(expected), "Unknown command: %.32s (try /help)", line);
        EXPECT_LINE_INVALID(line, expected);
}

static void test_line_plain_text(void) {
        ChatRequest r;

        line_request("hello everyone", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_UINTEQ(r.content_len, 14);
        ASSERT_STREQ(slice(r.content, r.content_len), "hello everyone");
        ASSERT_TRUE(r.error == NULL);

        /* sent as typed: leading blanks, a '/' further on */
        line_request("  /nick bob", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_STREQ(slice(r.content, r.content_len), "  /nick bob");
        line_request(" ", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_UINTEQ(r.content_len, 1);
        line_request("{\"type\":\"join\"}", &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);

        chat_request_from_line("hello there", 5, &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_MESSAGE);
        ASSERT_UINTEQ(r.content_len, 5);
        ASSERT_STREQ(slice(r.content, r.content_len), "hello");

        EXPECT_LINE_INVALID("", CHAT_ERR_CONTENT_REQUIRED);
        chat_request_from_line("/nick bob", 0, &r);
        ASSERT_INTEQ(r.type, CHAT_REQ_INVALID);
        ASSERT_STREQ(r.error, CHAT_ERR_CONTENT_REQUIRED);
}

/* ---- names ---- */

static void expect_name_at(const char *name, size_t len, const char *error, unsigned line, const char *func) {
        char expr[700];
        snprintf(expr, sizeof(expr), "chat_name_check(\"%s\")", escaped(name, len));
        unit_assert_streq(chat_name_check(name, len), error, expr, line, __FILE__, func);
}

#define EXPECT_NAME(name, error) expect_name_at((name), strlen(name), (error), __LINE__, __func__)

#define ERR_BLANK "Username must not begin or end with a blank"
#define ERR_STAR "Username must not begin with '*'"
#define ERR_PRINTABLE "Username must be printable characters"
#define ERR_TOO_LONG "Username too long (at most 32 characters)"

static void test_name_valid(void) {
        char name[200];

        EXPECT_NAME("a", NULL);
        EXPECT_NAME("Bob", NULL);
        EXPECT_NAME("big bob", NULL);
        EXPECT_NAME("bob*", NULL);
        EXPECT_NAME("a-b_c.d!@#", NULL);
        EXPECT_NAME("Zo\xC3\xAB", NULL);
        EXPECT_NAME("\xE6\x97\xA5\xE6\x9C\xAC", NULL); /* 日本 */
        EXPECT_NAME("\xF0\x9F\x98\x80", NULL); /* an emoji, 4 bytes */

        /* 32 ASCII characters */
        memset(name, 'x', 32);
        name[32] = 0;
        EXPECT_NAME(name, NULL);
        /* 32 two-byte characters: 64 bytes */
        for (int i = 0; i < 32; i++)
                memcpy(name + 2 * i, "\xC3\xA9", 2);
        name[64] = 0;
        ASSERT_UINTEQ(strlen(name), 64);
        EXPECT_NAME(name, NULL);
        /* 32 four-byte characters: 128 bytes */
        for (int i = 0; i < 32; i++)
                memcpy(name + 4 * i, "\xF0\x9F\x98\x80", 4);
        name[128] = 0;
        EXPECT_NAME(name, NULL);
        /* only len bytes count */
        expect_name_at("bob\x01", 3, NULL, __LINE__, __func__);
}

static void test_name_invalid(void) {
        char name[200];

        EXPECT_NAME("", CHAT_ERR_USERNAME_REQUIRED);
        EXPECT_NAME(" bob", ERR_BLANK);
        EXPECT_NAME("bob ", ERR_BLANK);
        EXPECT_NAME(" ", ERR_BLANK);
        EXPECT_NAME("*bob", ERR_STAR);
        EXPECT_NAME("*", ERR_STAR);
        EXPECT_NAME("bo\tb", ERR_PRINTABLE);
        EXPECT_NAME("\tbob", ERR_PRINTABLE);
        EXPECT_NAME("bob\n", ERR_PRINTABLE);
        EXPECT_NAME("bob\r", ERR_PRINTABLE);
        EXPECT_NAME("\x1b[31mred", ERR_PRINTABLE);
        EXPECT_NAME("\x01", ERR_PRINTABLE);
        EXPECT_NAME("bob\x7f", ERR_PRINTABLE);
        EXPECT_NAME("\x7f", ERR_PRINTABLE);
        expect_name_at("bo\0b", 4, ERR_PRINTABLE, __LINE__, __func__);

        /* 33 characters, ASCII or not */
        memset(name, 'x', 33);
        name[33] = 0;
        EXPECT_NAME(name, ERR_TOO_LONG);
        for (int i = 0; i < 33; i++)
                memcpy(name + 2 * i, "\xC3\xA9", 2);
        name[66] = 0;
        EXPECT_NAME(name, ERR_TOO_LONG);
        memset(name, 'x', 150);
        name[150] = 0;
        EXPECT_NAME(name, ERR_TOO_LONG);
}

static void test_name_not_printable_unicode(void) {
        /* "printable characters (UTF-8 allowed)": C1 controls are control characters too, and
         * bytes that are not UTF-8 are not characters at all (a name is sent to every JSON
         * member inside a JSON string, which must be UTF-8) */
        EXPECT_NAME("bob\xC2\x85", ERR_PRINTABLE); /* U+0085 NEL */
        EXPECT_NAME("\xC2\x9B"
                    "31m",
                    ERR_PRINTABLE); /* U+009B CSI */
        EXPECT_NAME("bob\xFF", ERR_PRINTABLE);
        EXPECT_NAME("\xC3", ERR_PRINTABLE); /* a lone lead byte */
        EXPECT_NAME("\xA9\xA9", ERR_PRINTABLE); /* lone continuation bytes */
}

static void test_name_equal(void) {
        ASSERT_TRUE(chat_name_equal("bob", "bob"));
        ASSERT_TRUE(chat_name_equal("Bob", "bOB"));
        ASSERT_TRUE(chat_name_equal("BIG bob", "big BOB"));
        ASSERT_TRUE(chat_name_equal("", ""));
        ASSERT_FALSE(chat_name_equal("bob", "bobby"));
        ASSERT_FALSE(chat_name_equal("bobby", "bob"));
        ASSERT_FALSE(chat_name_equal("bob", "bob "));
        ASSERT_FALSE(chat_name_equal("alice", "bob"));
        ASSERT_TRUE(chat_name_equal("Zo\xC3\xAB", "zO\xC3\xAB"));
}

/* ---- server messages ---- */

static void expect_json_at(struct json_object *o, const char *expected, unsigned line, const char *func) {
        unit_assert_streq(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL, expected, "message", line, __FILE__, func);
        json_object_put(o);
}

#define EXPECT_JSON(o, expected) expect_json_at((o), (expected), __LINE__, __func__)

static void test_server_messages(void) {
        EXPECT_JSON(chat_json("goodbye", 1700000000.5), "{\"type\":\"goodbye\",\"timestamp\":1700000000.5}");
        EXPECT_JSON(chat_json("users", 1700000000.0), "{\"type\":\"users\",\"timestamp\":1700000000.0}");
        EXPECT_JSON(chat_json_with("join", 1700000000.5, "username", "bob"),
                    "{\"type\":\"join\",\"timestamp\":1700000000.5,\"username\":\"bob\"}");
        EXPECT_JSON(chat_json_with("error", 1700000000.25, "message", CHAT_ERR_USERNAME_TAKEN),
                    "{\"type\":\"error\",\"timestamp\":1700000000.25,\"message\":\"Username already taken\"}");
        EXPECT_JSON(chat_json_with("welcome", 1.5, "message", "say \"hi\"\n"),
                    "{\"type\":\"welcome\",\"timestamp\":1.5,\"message\":\"say \\\"hi\\\"\\n\"}");
        EXPECT_JSON(chat_json_with("message", 2.5, "content", ""), "{\"type\":\"message\",\"timestamp\":2.5,\"content\":\"\"}");

        /* the caller may add more members */
        struct json_object *o = chat_json_with("message", 1700000000.5, "username", "bob");
        json_object_object_add(o, "content", json_object_new_string("hi"));
        EXPECT_JSON(o, "{\"type\":\"message\",\"timestamp\":1700000000.5,\"username\":\"bob\",\"content\":\"hi\"}");
}

int main(void) {
        static CU_TestInfo json_tests[] = {
                { "json_join", test_json_join },
                { "json_message", test_json_message },
                { "json_leave", test_json_leave },
                { "json_errors", test_json_errors },
                { "json_unknown_type_cut_utf8", test_json_unknown_type_cut_utf8 },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo line_tests[] = {
                { "line_nick", test_line_nick },
                { "line_me", test_line_me },
                { "line_simple_commands", test_line_simple_commands },
                { "line_unknown_commands", test_line_unknown_commands },
                { "line_long_unknown_command", test_line_long_unknown_command },
                { "line_plain_text", test_line_plain_text },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo name_tests[] = {
                { "name_valid", test_name_valid },
                { "name_invalid", test_name_invalid },
                { "name_not_printable_unicode", test_name_not_printable_unicode },
                { "name_equal", test_name_equal },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo message_tests[] = {
                { "server_messages", test_server_messages },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "chat json requests", NULL, NULL, NULL, NULL, json_tests },
                { "chat line requests", NULL, NULL, NULL, NULL, line_tests },
                { "chat names", NULL, NULL, NULL, NULL, name_tests },
                { "chat server messages", NULL, NULL, NULL, NULL, message_tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
