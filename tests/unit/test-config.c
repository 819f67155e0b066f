/* SPDX-License-Identifier: MIT */
/* Unit tests for config/config.c: every error a user can get (exact text and line), values and
 * their ranges, syntax details, files and drop-ins, defaults, the embedded and shipped config,
 * config_dump and the server comparisons the daemon uses on reload. */

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

#ifndef SHIPPED_CONF
#error "SHIPPED_CONF must name config/tcpedud.conf"
#endif

#define NAME "t.conf"
/* A valid server on lines 1-3: a key added after it is on line 4. */
#define SERVER_A "[server a]\ntype = echo\nlisten = 127.0.0.1:7001\n"
/* The same for the other types. */
#define SERVER_E "[server e]\ntype = enhanced\nlisten = 127.0.0.1:7001\n"
#define SERVER_C "[server c]\ntype = chat\nlisten = 127.0.0.1:7001\n"

/* Every key of the key table, as a user writes it. */
static const char *const daemon_keys[] = { "control_socket", "admin_group",  "log_transitions", "max_connections",
                                           "log_level",      "max_sessions", "session_buffer",  "session_idle_timeout",
                                           "user",           "group" };
/* in the order of the key table (the order of ServerConfig.key_origin) */
static const char *const server_keys[] = {
        "type",        "listen",       "autostart", "backlog",  "max_clients", "max_clients_per_ip", "idle_timeout", "buffer_size",
        "max_message", "line_timeout", "handler",   "protocol", "history",     "max_queue",          "max_rate"
};
/* The keys that apply to some types only, and to which. */
static const struct {
        const char *name;
        bool echo, enhanced, chat;
} typed_keys[] = {
        { "max_message", false, true, true }, { "line_timeout", false, true, true }, { "handler", false, true, false },
        { "protocol", false, false, true },   { "history", false, false, true },     { "max_queue", false, false, true },
        { "max_rate", false, false, true },
};

static char tmpdir[64];

/* ---- helpers ---- */

static void describe_errors(const ConfigErrors *e, char *buf, size_t size) {
        size_t off = 0;

        buf[0] = 0;
        off += (size_t)snprintf(buf, size, "%zu error(s):", e->n);
        for (size_t i = 0; i < e->n && off < size; i++)
                off += (size_t)snprintf(buf + off, size - off, " [%s]", e->lines[i]);
}

static void check_errors_at(const ConfigErrors *errs, const char *const *expected, size_t n, unsigned line, const char *func) {
        char what[4096];

        describe_errors(errs, what, sizeof(what));
        unit_assert_uinteq(errs->n, n, what, line, __FILE__, func);
        for (size_t i = 0; i < n && i < errs->n; i++) {
                char expr[48];
                snprintf(expr, sizeof(expr), "errs.lines[%zu]", i);
                unit_assert_streq(errs->lines[i], expected[i], expr, line, __FILE__, func);
        }
        unit_assert_uinteq(errs->suppressed, 0, "errs.suppressed", line, __FILE__, func);
}

/* Load text as NAME: it must fail with -EINVAL, return nothing and report exactly these lines. */
static void expect_errors_at(const char *text, const char *const *expected, size_t n, unsigned line, const char *func) {
        ConfigErrors errs = {};
        Config *c = NULL;

        int r = config_load_string(NAME, text, &c, &errs);
        unit_assert_inteq(r, -EINVAL, "config_load_string()", line, __FILE__, func);
        unit_assert_true(c == NULL, "*ret untouched (NULL) on error", line, __FILE__, func);
        check_errors_at(&errs, expected, n, line, func);
        config_free(c);
        config_errors_clear(&errs);
}

#define EXPECT_ERRORS(text, ...)                                                                                                           \
        do {                                                                                                                               \
                static const char *const expected_[] = { __VA_ARGS__ };                                                                    \
                expect_errors_at((text), expected_, ELEMENTSOF(expected_), __LINE__, __func__);                                            \
        } while (0)

/* Load text as NAME: it must succeed without errors. The caller frees the result. */
static Config *load_ok_at(const char *text, unsigned line, const char *func) {
        ConfigErrors errs = {};
        Config *c = NULL;
        char what[4096];

        int r = config_load_string(NAME, text, &c, &errs);
        describe_errors(&errs, what, sizeof(what));
        unit_assert_inteq(r, 0, what, line, __FILE__, func);
        unit_assert_uinteq(errs.n, 0, what, line, __FILE__, func);
        unit_assert_true(r < 0 || c != NULL, "config returned", line, __FILE__, func);
        config_errors_clear(&errs);
        return r < 0 ? config_free(c) : c;
}

#define LOAD_OK(text) load_ok_at((text), __LINE__, __func__)

/* The one server of a config loaded from SERVER_A plus one key line. */
static const ServerConfig *only_server(const Config *c) {
        return c && c->n_servers == 1 ? &c->servers[0] : NULL;
}

static char *dump_to_string(const Config *c) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        config_dump(c, f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static char *read_whole_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        FILE *out = open_memstream(&buf, &size);
        if (!out) {
                fclose(f);
                return NULL;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, out);
        fclose(f);
        fclose(out);
        return buf;
}

/* Dump c, parse the dump back and compare. */
static void check_dump_round_trip_at(const Config *c, unsigned line, const char *func) {
        char *dump = dump_to_string(c);
        ConfigErrors errs = {};
        Config *back = NULL;
        char what[4096];

        unit_assert_true(dump != NULL, "dump_to_string()", line, __FILE__, func);
        if (!dump)
                return;
        int r = config_load_string("dump", dump, &back, &errs);
        describe_errors(&errs, what, sizeof(what));
        unit_assert_inteq(r, 0, what, line, __FILE__, func);
        if (r == 0) {
                unit_assert_uinteq(back->n_servers, c->n_servers, "n_servers", line, __FILE__, func);
                for (size_t i = 0; i < c->n_servers && i < back->n_servers; i++)
                        unit_assert_true(server_config_equal(&c->servers[i], &back->servers[i]), c->servers[i].name, line, __FILE__, func);
                unit_assert_true(strcmp(c->daemon.control_socket, back->daemon.control_socket) == 0 &&
                                         strcmp(c->daemon.admin_group, back->daemon.admin_group) == 0 &&
                                         c->daemon.log_transitions == back->daemon.log_transitions &&
                                         c->daemon.max_connections == back->daemon.max_connections &&
                                         c->daemon.log_level == back->daemon.log_level,
                                 "daemon settings survive the dump", line, __FILE__, func);
        }
        config_free(back);
        config_errors_clear(&errs);
        free(dump);
}

/* "listen = A1, A2, ..." with n addresses 1.1.1.1:first.. written with sep between them. */
static void listen_line(char *buf, size_t size, const char *prefix, unsigned first, unsigned n, const char *sep) {
        size_t off = (size_t)snprintf(buf, size, "%s", prefix);
        for (unsigned i = 0; i < n && off < size; i++)
                off += (size_t)snprintf(buf + off, size - off, "%s1.1.1.1:%u", i ? sep : "", first + i);
}

/* ---- errors: keys ---- */

static void test_error_unknown_key_with_suggestion(void) {
        EXPECT_ERRORS(SERVER_A "lissen = 127.0.0.1:7002\n", "t.conf:4: unknown key 'lissen' (did you mean 'listen'?)");
        EXPECT_ERRORS(SERVER_A "max_client = 5\n", "t.conf:4: unknown key 'max_client' (did you mean 'max_clients'?)");
        EXPECT_ERRORS("[daemon]\nloglevel = info\n", "t.conf:2: unknown key 'loglevel' (did you mean 'log_level'?)");
}

static void test_error_unknown_key_without_suggestion(void) {
        EXPECT_ERRORS(SERVER_A "zzzzzz = 1\n", "t.conf:4: unknown key 'zzzzzz' in [server]");
        EXPECT_ERRORS("[daemon]\nzzzzzz = 1\n", "t.conf:2: unknown key 'zzzzzz' in [daemon]");
        /* a server key is unknown in [daemon] */
        EXPECT_ERRORS("[daemon]\nbuffer_size = 64K\n", "t.conf:2: unknown key 'buffer_size' in [daemon]");
}

static void test_error_key_outside_section(void) {
        EXPECT_ERRORS("backlog = 5\n" SERVER_A, "t.conf:1: key 'backlog' outside of any section");
        EXPECT_ERRORS("# comment\n\nlog_level = info\n", "t.conf:3: key 'log_level' outside of any section");
}

static void test_error_duplicate_key(void) {
        EXPECT_ERRORS(SERVER_A "backlog = 5\nbacklog = 6\n", "t.conf:5: duplicate key 'backlog' (already set on line 4)");
        EXPECT_ERRORS("[daemon]\nlog_level = info\n\nlog_level = debug\n", "t.conf:4: duplicate key 'log_level' (already set on line 2)");
}

static void test_same_key_in_two_servers_is_not_duplicate(void) {
        Config *c = LOAD_OK(SERVER_A "backlog = 5\n[server b]\ntype = echo\nlisten = 127.0.0.1:7002\nbacklog = 6\n");

        if (!c)
                return;
        ASSERT_UINTEQ(c->n_servers, 2);
        ASSERT_UINTEQ(c->servers[0].backlog, 5);
        ASSERT_UINTEQ(c->servers[1].backlog, 6);
        config_free(c);
}

/* ---- errors: sections ---- */

static void test_error_unknown_section(void) {
        /* keys of a bad section are not reported again */
        EXPECT_ERRORS("[servers]\nfoo = 1\n", "t.conf:1: unknown section [servers] (known: [daemon], [server NAME])");
        EXPECT_ERRORS("[Daemon]\n", "t.conf:1: unknown section [Daemon] (known: [daemon], [server NAME])");
}

static void test_error_server_without_name(void) {
        EXPECT_ERRORS("[server]\ntype = echo\n", "t.conf:1: section [server] needs a name: [server NAME]");
}

static void test_error_invalid_server_name(void) {
        EXPECT_ERRORS("[server a/b]\ntype = echo\nlisten = 127.0.0.1:7001\n",
                      "t.conf:1: invalid server name 'a/b': use 1-32 letters, digits, '-', '_' or '.'");
        EXPECT_ERRORS("[server aaaaaaaaaabbbbbbbbbbccccccccccddd]\n",
                      "t.conf:1: invalid server name 'aaaaaaaaaabbbbbbbbbbccccccccccddd': use 1-32 letters, digits, '-', '_' or '.'");
        EXPECT_ERRORS("# x\n[server caf\xC3\xA9]\n",
                      "t.conf:2: invalid server name 'caf\xC3\xA9': use 1-32 letters, digits, '-', '_' or '.'");
}

static void test_server_name_limits(void) {
        Config *c = LOAD_OK("[server aaaaaaaaaabbbbbbbbbbcccccccccc12]\ntype = echo\nlisten = 127.0.0.1:7001\n"
                            "[server A-b_c.9]\ntype = echo\nlisten = 127.0.0.1:7002\n");

        if (!c)
                return;
        ASSERT_UINTEQ(c->n_servers, 2);
        ASSERT_STREQ(c->servers[0].name, "aaaaaaaaaabbbbbbbbbbcccccccccc12");
        ASSERT_STREQ(c->servers[1].name, "A-b_c.9");
        config_free(c);
}

static void test_error_duplicate_server_name(void) {
        EXPECT_ERRORS(SERVER_A "\n[server a]\nbacklog = 5\n", "t.conf:5: duplicate server name 'a' (first on line 1)");
}

static void test_error_duplicate_daemon(void) {
        EXPECT_ERRORS("[daemon]\nlog_level = info\n[daemon]\nmax_connections = 5\n",
                      "t.conf:3: duplicate section [daemon] (first on line 1)");
}

static void test_error_third_daemon_names_first_line(void) {
        /* "first on line" must keep naming the first [daemon], as duplicate server names do. */
        EXPECT_ERRORS("[daemon]\n[daemon]\n[daemon]\n", "t.conf:2: duplicate section [daemon] (first on line 1)",
                      "t.conf:3: duplicate section [daemon] (first on line 1)");
}

static void test_error_header_without_bracket(void) {
        /* its keys are skipped: only the header is reported */
        EXPECT_ERRORS("[server a\ntype = echo\nlisten = 127.0.0.1:7001\n", "t.conf:1: section header must end with ']'");
        EXPECT_ERRORS("[daemon\n", "t.conf:1: section header must end with ']'");
}

static void test_error_too_many_servers(void) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        ASSERT_TRUE(f != NULL);
        if (!f)
                return;
        for (int i = 0; i <= SERVERS_MAX; i++)
                fprintf(f, "[server s%d]\ntype = echo\nlisten = 127.0.0.1:0\n", i);
        fclose(f);
        /* the 65th header is on line 64 * 3 + 1 */
        EXPECT_ERRORS(text, "t.conf:193: too many servers (at most 64)");
        free(text);
}

/* ---- errors: lines ---- */

static void test_error_line_too_long(void) {
        char text[1024], comment[251];

        memset(comment, 'x', sizeof(comment) - 1);
        comment[0] = '#';
        comment[1] = ' ';
        comment[sizeof(comment) - 1] = 0;
        /* line 2 is 250 bytes; line 4 must still be called line 4 */
        snprintf(text, sizeof(text), "[daemon]\n%s\nlog_level = info\nbogus = 1\n", comment);
        EXPECT_ERRORS(text, "t.conf:2: line too long (250 bytes, at most 198)", "t.conf:4: unknown key 'bogus' in [daemon]");
}

static void test_line_length_boundary(void) {
        char text[1024], comment[200];
        Config *c;

        memset(comment, 'x', sizeof(comment));
        comment[0] = '#';
        comment[198] = 0; /* 198 bytes: fine */
        snprintf(text, sizeof(text), "[daemon]\n%s\n", comment);
        c = LOAD_OK(text);
        config_free(c);

        snprintf(text, sizeof(text), "[daemon]\n%s\r\n", comment); /* the CR does not count */
        c = LOAD_OK(text);
        config_free(c);

        comment[198] = 'x';
        comment[199] = 0; /* 199 bytes */
        snprintf(text, sizeof(text), "[daemon]\n%s\n", comment);
        EXPECT_ERRORS(text, "t.conf:2: line too long (199 bytes, at most 198)");
}

static void test_key_line_of_198_bytes(void) {
        char line[256], text[512];

        /* 16 addresses of 11 bytes, comma-separated: exactly 198 bytes */
        listen_line(line, sizeof(line), "listen=", 100, LISTEN_MAX, ",");
        ASSERT_UINTEQ(strlen(line), 198);
        snprintf(text, sizeof(text), "[server a]\ntype = echo\n%s\n", line);
        Config *c = LOAD_OK(text);
        const ServerConfig *s = only_server(c);
        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_UINTEQ(s->n_listen, 16);
                ASSERT_STREQ(s->listen[0].spec, "1.1.1.1:100");
                ASSERT_STREQ(s->listen[15].spec, "1.1.1.1:115");
        }
        config_free(c);
}

static void test_error_line_without_equals(void) {
        EXPECT_ERRORS("[daemon]\ngarbage\n", "t.conf:2: expected 'key = value' or '[section]', got 'garbage'");
        EXPECT_ERRORS(SERVER_A "   max clients 5   \n", "t.conf:4: expected 'key = value' or '[section]', got 'max clients 5'");
}

static void test_error_syntax_error_from_inih(void) {
        /* inih stops looking for '=' at an inline comment: the line has no key for it, and the
         * reader, which strips inline comments the same way, says so with the line's text */
        EXPECT_ERRORS("[daemon]\ngarbage ; x = 1\n", "t.conf:2: expected 'key = value' or '[section]', got 'garbage'");
}

static void test_error_syntax_error_reported_with_other_errors(void) {
        ConfigErrors errs = {};
        Config *c = NULL;
        char what[4096];

        /* Every malformed line is reported, not only when it is the file's only problem. */
        int r = config_load_string(NAME, "[daemon]\nmax_connections = 0\ngarbage ; x = 1\n", &c, &errs);
        describe_errors(&errs, what, sizeof(what));
        ASSERT_INTEQ(r, -EINVAL);
        ASSERT_TRUE(c == NULL);
        unit_assert_uinteq(errs.n, 2, what, __LINE__, __FILE__, __func__);
        if (errs.n >= 1)
                ASSERT_STREQ(errs.lines[0], "t.conf:2: value '0' for 'max_connections' out of range (1-1000000)");
        if (errs.n >= 2)
                unit_assert_true(strncmp(errs.lines[1], "t.conf:3: ", 10) == 0, what, __LINE__, __FILE__, __func__);
        config_free(c);
        config_errors_clear(&errs);
}

static void test_error_many_errors_all_reported(void) {
        EXPECT_ERRORS("[daemon]\n" /* 1 */
                      "log_level = loud\n" /* 2 */
                      "bogus = 1\n" /* 3 */
                      "[server a]\n" /* 4 */
                      "type = echo\n" /* 5 */
                      "listen = 127.0.0.1:7001\n" /* 6 */
                      "backlog = 0\n" /* 7 */
                      "max_clients = abc\n" /* 8 */
                      "[server b]\n" /* 9 */
                      "listen = 127.0.0.1:7001\n" /* 10 */
                      "garbage\n", /* 11 */
                      "t.conf:2: invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug",
                      "t.conf:3: unknown key 'bogus' in [daemon]", "t.conf:7: value '0' for 'backlog' out of range (1-65535)",
                      "t.conf:8: invalid value 'abc' for 'max_clients': expected a whole number",
                      "t.conf:11: expected 'key = value' or '[section]', got 'garbage'",
                      "t.conf:9: [server b]: missing required key 'type'",
                      "t.conf:10: listen address 127.0.0.1:7001 of server 'b' is already used by server 'a'");
}

static void test_error_suppressed_after_limit(void) {
        char *text = NULL, *printed = NULL;
        size_t size = 0, psize = 0;
        FILE *f = open_memstream(&text, &size);
        ConfigErrors errs = {};
        Config *c = NULL;

        ASSERT_TRUE(f != NULL);
        if (!f)
                return;
        fprintf(f, "[daemon]\n");
        for (int i = 0; i < CONFIG_ERRORS_MAX + 5; i++)
                fprintf(f, "bogus = %d\n", i);
        fclose(f);

        ASSERT_INTEQ(config_load_string(NAME, text, &c, &errs), -EINVAL);
        ASSERT_TRUE(c == NULL);
        ASSERT_UINTEQ(errs.n, CONFIG_ERRORS_MAX);
        ASSERT_UINTEQ(errs.suppressed, 5);
        if (errs.n == CONFIG_ERRORS_MAX) {
                ASSERT_STREQ(errs.lines[0], "t.conf:2: unknown key 'bogus' in [daemon]");
                ASSERT_STREQ(errs.lines[99], "t.conf:101: unknown key 'bogus' in [daemon]");
        }
        f = open_memstream(&printed, &psize);
        ASSERT_TRUE(f != NULL);
        if (f) {
                config_errors_print(&errs, f);
                fclose(f);
                ASSERT_TRUE(strncmp(printed, "t.conf:2: unknown key 'bogus' in [daemon]\n", 42) == 0);
                const char *tail = "t.conf:101: unknown key 'bogus' in [daemon]\n(5 more errors not shown)\n";
                ASSERT_TRUE(psize >= strlen(tail) && strcmp(printed + psize - strlen(tail), tail) == 0);
        }
        free(printed);
        free(text);
        config_errors_clear(&errs);
        ASSERT_UINTEQ(errs.n, 0);
        ASSERT_TRUE(errs.lines == NULL);
}

static void test_errors_add_format(void) {
        ConfigErrors errs = {};

        config_errors_add(&errs, "f.conf", 3, "bad %s %d", "thing", 7);
        config_errors_add(&errs, "f.conf", 0, "whole file");
        ASSERT_UINTEQ(errs.n, 2);
        if (errs.n == 2) {
                ASSERT_STREQ(errs.lines[0], "f.conf:3: bad thing 7");
                ASSERT_STREQ(errs.lines[1], "f.conf: whole file");
        }
        config_errors_clear(&errs);
        ASSERT_UINTEQ(errs.n, 0);
        ASSERT_UINTEQ(errs.suppressed, 0);
}

/* ---- values ---- */

static void test_value_backlog_out_of_range(void) {
        EXPECT_ERRORS(SERVER_A "backlog = 0\n", "t.conf:4: value '0' for 'backlog' out of range (1-65535)");
        EXPECT_ERRORS(SERVER_A "backlog = 70000\n", "t.conf:4: value '70000' for 'backlog' out of range (1-65535)");
        EXPECT_ERRORS(SERVER_A "backlog = 99999999999999999999999\n",
                      "t.conf:4: value '99999999999999999999999' for 'backlog' out of range (1-65535)");
}

static void test_value_backlog_limits(void) {
        Config *c = LOAD_OK(SERVER_A "backlog = 65535\n");
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s && s->backlog == 65535);
        config_free(c);
        c = LOAD_OK(SERVER_A "backlog = 1\n");
        s = only_server(c);
        ASSERT_TRUE(s && s->backlog == 1);
        config_free(c);
}

static void test_value_not_a_number(void) {
        EXPECT_ERRORS(SERVER_A "max_clients = abc\n", "t.conf:4: invalid value 'abc' for 'max_clients': expected a whole number");
        EXPECT_ERRORS(SERVER_A "max_clients = -1\n", "t.conf:4: invalid value '-1' for 'max_clients': expected a whole number");
        EXPECT_ERRORS(SERVER_A "max_clients =\n", "t.conf:4: invalid value '' for 'max_clients': expected a whole number");
        EXPECT_ERRORS("[daemon]\nmax_connections = 0\n", "t.conf:2: value '0' for 'max_connections' out of range (1-1000000)");
}

static void test_value_bool(void) {
        static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
        static const char *const no[] = { "no", "false", "off", "0", "No", "OFF" };
        char text[256];

        EXPECT_ERRORS(SERVER_A "autostart = maybe\n", "t.conf:4: invalid value 'maybe' for 'autostart': expected yes or no");
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                snprintf(text, sizeof(text), SERVER_A "autostart = %s\n", yes[i]);
                Config *c = LOAD_OK(text);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s && s->autostart);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                snprintf(text, sizeof(text), SERVER_A "autostart = %s\n", no[i]);
                Config *c = LOAD_OK(text);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s && !s->autostart);
                config_free(c);
        }
}

static void test_value_log_transitions(void) {
        Config *c;

        EXPECT_ERRORS("[daemon]\nlog_transitions = some\n",
                      "t.conf:2: invalid value 'some' for 'log_transitions': expected all, summary or off");
        c = LOAD_OK("[daemon]\nlog_transitions = summary\n");
        ASSERT_TRUE(c && c->daemon.log_transitions == LOG_TRANSITIONS_SUMMARY);
        config_free(c);
        c = LOAD_OK("[daemon]\nlog_transitions = off\n");
        ASSERT_TRUE(c && c->daemon.log_transitions == LOG_TRANSITIONS_OFF);
        config_free(c);
}

static void test_value_log_level(void) {
        static const struct {
                const char *text;
                int level;
        } levels[] = { { "emerg", 0 }, { "alert", 1 },  { "crit", 2 }, { "err", 3 },   { "error", 3 }, { "warning", 4 },
                       { "warn", 4 },  { "notice", 5 }, { "info", 6 }, { "debug", 7 }, { "DEBUG", 7 } };
        char text[128];

        EXPECT_ERRORS("[daemon]\nlog_level = loud\n",
                      "t.conf:2: invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug");
        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                snprintf(text, sizeof(text), "[daemon]\nlog_level = %s\n", levels[i].text);
                Config *c = LOAD_OK(text);
                if (c)
                        ASSERT_INTEQ(c->daemon.log_level, levels[i].level);
                config_free(c);
        }
}

static void test_value_server_type(void) {
        static const struct {
                const char *text;
                int type;
        } types[] = { { "echo", SERVER_TYPE_ECHO }, { "enhanced", SERVER_TYPE_ENHANCED }, { "chat", SERVER_TYPE_CHAT } };
        char text[256];

        /* reported once: the key is there, its value is wrong */
        EXPECT_ERRORS("[server a]\ntype = http\nlisten = 127.0.0.1:7001\n",
                      "t.conf:2: unknown server type 'http' (known: echo, enhanced, chat)");
        EXPECT_ERRORS("[server a]\ntype = Chat\nlisten = 127.0.0.1:7001\n",
                      "t.conf:2: unknown server type 'Chat' (known: echo, enhanced, chat)");
        EXPECT_ERRORS("[server a]\ntype =\nlisten = 127.0.0.1:7001\n", "t.conf:2: unknown server type '' (known: echo, enhanced, chat)");
        /* with an unknown type, no key is said not to apply to it */
        EXPECT_ERRORS("[server a]\ntype = http\nlisten = 127.0.0.1:7001\nhistory = 5\nhandler = json-commands\n",
                      "t.conf:2: unknown server type 'http' (known: echo, enhanced, chat)");
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                snprintf(text, sizeof(text), "[server a]\ntype = %s\nlisten = 127.0.0.1:7001\n", types[i].text);
                Config *c = LOAD_OK(text);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s != NULL);
                if (s)
                        ASSERT_INTEQ(s->type, types[i].type);
                config_free(c);
        }
}

static void test_value_string_too_long(void) {
        char text[256], value[109];

        memset(value, 's', sizeof(value) - 1);
        value[sizeof(value) - 1] = 0; /* 108 bytes: one too many for sun_path */
        snprintf(text, sizeof(text), "[daemon]\ncontrol_socket = %s\n", value);
        EXPECT_ERRORS(text, "t.conf:2: value of 'control_socket' too long (at most 107 bytes)");

        value[107] = 0;
        snprintf(text, sizeof(text), "[daemon]\ncontrol_socket = %s\nadmin_group = tcpedu\n", value);
        Config *c = LOAD_OK(text);
        if (c) {
                ASSERT_STREQ(c->daemon.control_socket, value);
                ASSERT_STREQ(c->daemon.admin_group, "tcpedu");
        }
        config_free(c);
}

static void test_value_listen_bad_address(void) {
        EXPECT_ERRORS("[server a]\ntype = echo\nlisten = 127.0.0.1\n", "t.conf:3: bad address '127.0.0.1' in 'listen': missing ':PORT'");
        EXPECT_ERRORS("[server a]\ntype = echo\nlisten = 127.0.0.1:7001, ::1:7001\n",
                      "t.conf:3: bad address '::1:7001' in 'listen': IPv6 addresses must be written as [ADDR]:PORT");
        EXPECT_ERRORS("[server a]\ntype = echo\nlisten = 127.0.0.1:7001,,127.0.0.1:7002\n", "t.conf:3: empty address in 'listen'");
}

static void test_value_listen_same_address_twice(void) {
        EXPECT_ERRORS("[server a]\ntype = echo\nlisten = 127.0.0.1:7001, 127.0.0.1:7001\n",
                      "t.conf:3: address 127.0.0.1:7001 listed twice in 'listen'");
        /* compared in canonical form */
        EXPECT_ERRORS("[server a]\ntype = echo\nlisten = [::1]:7001, [0:0::1]:7001\n",
                      "t.conf:3: address [::1]:7001 listed twice in 'listen'");
}

static void test_value_listen_port_zero_twice(void) {
        /* port 0 picks a free port each time: no conflict */
        Config *c = LOAD_OK("[server a]\ntype = echo\nlisten = 127.0.0.1:0, 127.0.0.1:0\n");
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s && s->n_listen == 2);
        if (s) {
                ASSERT_STREQ(s->listen[0].spec, "127.0.0.1:0");
                ASSERT_STREQ(s->listen[1].spec, "127.0.0.1:0");
        }
        config_free(c);
}

static void test_value_listen_too_many(void) {
        char line[256], text[512];

        listen_line(line, sizeof(line), "listen = ", 1, LISTEN_MAX + 1, ",");
        snprintf(text, sizeof(text), "[server a]\ntype = echo\n%s\n", line);
        EXPECT_ERRORS(text, "t.conf:3: too many addresses in 'listen' (at most 16)");
}

static void test_value_listen_canonical_spec(void) {
        Config *c = LOAD_OK("[server a]\ntype = echo\nlisten =  127.0.0.1:007001 ,[0:0::1]:7001,\t[::]:0\n");
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s && s->n_listen == 3);
        if (s && s->n_listen == 3) {
                ASSERT_STREQ(s->listen[0].spec, "127.0.0.1:7001");
                ASSERT_STREQ(s->listen[1].spec, "[::1]:7001");
                ASSERT_STREQ(s->listen[2].spec, "[::]:0");
                ASSERT_INTEQ(s->listen[1].addr.sa.sa_family, AF_INET6);
                ASSERT_UINTEQ(sockaddr_port(&s->listen[0].addr.sa), 7001);
        }
        config_free(c);
}

static void test_value_buffer_size(void) {
        static const struct {
                const char *text;
                uint64_t bytes;
        } sizes[] = { { "64K", 65536 },    { "1M", 1048576 }, { "1024", 1024 },    { "2048B", 2048 }, { "64 K", 65536 },
                      { "1MiB", 1048576 }, { "4KiB", 4096 },  { "64M", 67108864 }, { "1k", 1024 } };
        char text[256];

        EXPECT_ERRORS(SERVER_A "buffer_size = 1\n", "t.conf:4: value '1' for 'buffer_size' out of range (1024-67108864)");
        EXPECT_ERRORS(SERVER_A "buffer_size = 65M\n", "t.conf:4: value '65M' for 'buffer_size' out of range (1024-67108864)");
        EXPECT_ERRORS(SERVER_A "buffer_size = 10X\n",
                      "t.conf:4: invalid value '10X' for 'buffer_size': expected a size in bytes, optionally with K or M");
        EXPECT_ERRORS(SERVER_A "buffer_size = K\n",
                      "t.conf:4: invalid value 'K' for 'buffer_size': expected a size in bytes, optionally with K or M");
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                snprintf(text, sizeof(text), SERVER_A "buffer_size = %s\n", sizes[i].text);
                Config *c = LOAD_OK(text);
                const ServerConfig *s = only_server(c);
                if (s)
                        ASSERT_UINTEQ(s->buffer_size, sizes[i].bytes);
                config_free(c);
        }
}

static void test_value_idle_timeout(void) {
        static const struct {
                const char *text;
                unsigned seconds;
        } times[] = { { "5min", 300 }, { "300", 300 }, { "90s", 90 },   { "2h", 7200 },
                      { "0", 0 },      { "2m", 120 },  { "10sec", 10 }, { "168h", 604800 } };
        char text[256];

        EXPECT_ERRORS(SERVER_A "idle_timeout = 1w\n",
                      "t.conf:4: invalid value '1w' for 'idle_timeout': expected seconds, optionally with s, min or h");
        EXPECT_ERRORS(SERVER_A "idle_timeout = 169h\n", "t.conf:4: value '169h' for 'idle_timeout' out of range (0-604800)");
        EXPECT_ERRORS(SERVER_A "idle_timeout = 604801\n", "t.conf:4: value '604801' for 'idle_timeout' out of range (0-604800)");
        for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                snprintf(text, sizeof(text), SERVER_A "idle_timeout = %s\n", times[i].text);
                Config *c = LOAD_OK(text);
                const ServerConfig *s = only_server(c);
                if (s)
                        ASSERT_UINTEQ(s->idle_timeout, times[i].seconds);
                config_free(c);
        }
}

/* ---- the keys of enhanced and chat servers ---- */

/* Load head + key line: the one server it declares, through *ret (to free). */
static const ServerConfig *load_server_at(const char *head, const char *line_text, Config **ret, unsigned line, const char *func) {
        char text[512];

        snprintf(text, sizeof(text), "%s%s\n", head, line_text);
        *ret = load_ok_at(text, line, func);
        return only_server(*ret);
}

static void test_defaults_enhanced_and_chat(void) {
        Config *c = LOAD_OK(SERVER_E "[server c]\ntype = chat\nlisten = 127.0.0.1:7002\n");

        ASSERT_TRUE(c && c->n_servers == 2);
        for (size_t i = 0; c && i < c->n_servers; i++) {
                const ServerConfig *s = &c->servers[i];
                ASSERT_UINTEQ(s->max_message, 4096);
                ASSERT_UINTEQ(s->line_timeout, 30);
                ASSERT_STREQ(s->handler, "json-commands");
                ASSERT_STREQ(s->handler, HANDLER_JSON_COMMANDS);
                ASSERT_INTEQ(s->protocol, CHAT_PROTOCOL_AUTO);
                ASSERT_UINTEQ(s->history, 20);
                ASSERT_UINTEQ(s->max_queue, 1048576);
                ASSERT_UINTEQ(s->max_rate, 20);
                /* the common keys keep their defaults too */
                ASSERT_UINTEQ(s->backlog, 511);
                ASSERT_UINTEQ(s->idle_timeout, 300);
                ASSERT_UINTEQ(s->buffer_size, 65536);
                for (size_t k = 2; k < ELEMENTSOF(server_keys); k++)
                        unit_assert_uinteq(s->key_origin[k].line, 0, server_keys[k], __LINE__, __FILE__, __func__);
        }
        if (c && c->n_servers == 2) {
                ASSERT_INTEQ(c->servers[0].type, SERVER_TYPE_ENHANCED);
                ASSERT_INTEQ(c->servers[1].type, SERVER_TYPE_CHAT);
        }
        config_free(c);
}

static void test_value_max_message(void) {
        static const struct {
                const char *text;
                unsigned bytes;
        } ok[] = { { "64", 64 }, { "4096", 4096 }, { "1K", 1024 }, { "16KiB", 16384 }, { "1M", 1048576 }, { "1048576", 1048576 } };
        char line[64];

        EXPECT_ERRORS(SERVER_E "max_message = 63\n", "t.conf:4: value '63' for 'max_message' out of range (64-1048576)");
        EXPECT_ERRORS(SERVER_C "max_message = 1048577\n", "t.conf:4: value '1048577' for 'max_message' out of range (64-1048576)");
        EXPECT_ERRORS(SERVER_E "max_message = 2M\n", "t.conf:4: value '2M' for 'max_message' out of range (64-1048576)");
        EXPECT_ERRORS(SERVER_E "max_message = 4G\n", "t.conf:4: value '4G' for 'max_message' out of range (64-1048576)");
        EXPECT_ERRORS(SERVER_E "max_message = big\n",
                      "t.conf:4: invalid value 'big' for 'max_message': expected a size in bytes, optionally with K or M");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                snprintf(line, sizeof(line), "max_message = %s", ok[i].text);
                const ServerConfig *s = load_server_at(SERVER_C, line, &c, __LINE__, __func__);
                if (s) {
                        unit_assert_uinteq(s->max_message, ok[i].bytes, line, __LINE__, __FILE__, __func__);
                        unit_assert_uinteq(s->line_timeout, 30, line, __LINE__, __FILE__, __func__);
                }
                config_free(c);
        }
}

static void test_value_max_message_keeps_line_timeout(void) {
        /* each key sets its own field only, whatever the order they are written in */
        Config *c = LOAD_OK(SERVER_E "line_timeout = 10\nmax_message = 8192\n");
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_UINTEQ(s->max_message, 8192);
                ASSERT_UINTEQ(s->line_timeout, 10);
        }
        config_free(c);
        c = LOAD_OK(SERVER_C "max_message = 8192\nline_timeout = 10\n");
        s = only_server(c);
        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_UINTEQ(s->max_message, 8192);
                ASSERT_UINTEQ(s->line_timeout, 10);
        }
        config_free(c);
}

static void test_value_line_timeout(void) {
        static const struct {
                const char *text;
                unsigned seconds;
        } ok[] = { { "0", 0 }, { "30", 30 }, { "90s", 90 }, { "5min", 300 }, { "1h", 3600 }, { "3600", 3600 } };
        char line[64];

        EXPECT_ERRORS(SERVER_E "line_timeout = 3601\n", "t.conf:4: value '3601' for 'line_timeout' out of range (0-3600)");
        EXPECT_ERRORS(SERVER_C "line_timeout = 2h\n", "t.conf:4: value '2h' for 'line_timeout' out of range (0-3600)");
        EXPECT_ERRORS(SERVER_E "line_timeout = 1d\n",
                      "t.conf:4: invalid value '1d' for 'line_timeout': expected seconds, optionally with s, min or h");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                snprintf(line, sizeof(line), "line_timeout = %s", ok[i].text);
                const ServerConfig *s = load_server_at(SERVER_E, line, &c, __LINE__, __func__);
                if (s)
                        unit_assert_uinteq(s->line_timeout, ok[i].seconds, line, __LINE__, __FILE__, __func__);
                config_free(c);
        }
}

static void test_value_handler(void) {
        static const char *const ok[] = { "json-commands", "/usr/lib/tcpedu/handler.so", "/opt/x/h-1.2.so", "/h.so" };
        static const char *const bad[] = {
                "relative.so", "./handler.so", "/usr/lib/tcpedu/handler", "/usr/lib/handler.so.1", "/usr/lib/handler.SO", "JSON-COMMANDS",
                "json",        "echo"
        };
        char line[128], expected[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(line, sizeof(line), SERVER_E "handler = %s\n", bad[i]);
                snprintf(expected, sizeof(expected),
                         "t.conf:4: invalid value '%s' for 'handler': expected json-commands or the absolute path of a .so plug-in",
                         bad[i]);
                const char *const want[] = { expected };
                expect_errors_at(line, want, 1, __LINE__, __func__);
        }
        EXPECT_ERRORS(SERVER_E "handler =\n",
                      "t.conf:4: invalid value '' for 'handler': expected json-commands or the absolute path of a .so plug-in");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                snprintf(line, sizeof(line), "handler = %s", ok[i]);
                const ServerConfig *s = load_server_at(SERVER_E, line, &c, __LINE__, __func__);
                if (s)
                        ASSERT_STREQ(s->handler, ok[i]);
                config_free(c);
        }
}

static void test_value_protocol(void) {
        static const struct {
                const char *text;
                int protocol;
        } ok[] = { { "auto", CHAT_PROTOCOL_AUTO }, { "json", CHAT_PROTOCOL_JSON }, { "line", CHAT_PROTOCOL_LINE } };
        char line[64];

        EXPECT_ERRORS(SERVER_C "protocol = xml\n", "t.conf:4: invalid value 'xml' for 'protocol': expected auto, json or line");
        EXPECT_ERRORS(SERVER_C "protocol =\n", "t.conf:4: invalid value '' for 'protocol': expected auto, json or line");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                snprintf(line, sizeof(line), "protocol = %s", ok[i].text);
                const ServerConfig *s = load_server_at(SERVER_C, line, &c, __LINE__, __func__);
                if (s)
                        ASSERT_INTEQ(s->protocol, ok[i].protocol);
                config_free(c);
                ASSERT_STREQ(chat_protocol_to_string(ok[i].protocol), ok[i].text);
        }
        ASSERT_STREQ(chat_protocol_to_string(_CHAT_PROTOCOL_MAX), NULL);
        ASSERT_STREQ(chat_protocol_to_string(-1), NULL);
}

static void test_value_history_and_max_rate(void) {
        static const struct {
                const char *line;
                unsigned history, max_rate;
        } ok[] = { { "history = 0", 0, 20 },
                   { "history = 1000", 1000, 20 },
                   { "max_rate = 0", 20, 0 },
                   { "max_rate = 100000", 20, 100000 },
                   { "max_rate = 5", 20, 5 } };

        EXPECT_ERRORS(SERVER_C "history = 1001\n", "t.conf:4: value '1001' for 'history' out of range (0-1000)");
        EXPECT_ERRORS(SERVER_C "history = 20 messages\n", "t.conf:4: invalid value '20 messages' for 'history': expected a whole number");
        EXPECT_ERRORS(SERVER_C "history = -1\n", "t.conf:4: invalid value '-1' for 'history': expected a whole number");
        EXPECT_ERRORS(SERVER_C "max_rate = 100001\n", "t.conf:4: value '100001' for 'max_rate' out of range (0-100000)");
        EXPECT_ERRORS(SERVER_C "max_rate = 1K\n", "t.conf:4: invalid value '1K' for 'max_rate': expected a whole number");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                const ServerConfig *s = load_server_at(SERVER_C, ok[i].line, &c, __LINE__, __func__);
                if (s) {
                        unit_assert_uinteq(s->history, ok[i].history, ok[i].line, __LINE__, __FILE__, __func__);
                        unit_assert_uinteq(s->max_rate, ok[i].max_rate, ok[i].line, __LINE__, __FILE__, __func__);
                }
                config_free(c);
        }
}

static void test_value_max_queue(void) {
        static const struct {
                const char *text;
                uint64_t bytes;
        } ok[] = { { "4K", 4096 }, { "4096", 4096 }, { "1M", 1048576 }, { "256M", 268435456 }, { "256MiB", 268435456 } };
        char line[64];

        EXPECT_ERRORS(SERVER_C "max_queue = 1K\n", "t.conf:4: value '1K' for 'max_queue' out of range (4096-268435456)");
        EXPECT_ERRORS(SERVER_C "max_queue = 4095\n", "t.conf:4: value '4095' for 'max_queue' out of range (4096-268435456)");
        EXPECT_ERRORS(SERVER_C "max_queue = 257M\n", "t.conf:4: value '257M' for 'max_queue' out of range (4096-268435456)");
        EXPECT_ERRORS(SERVER_C "max_queue = 1G\n", "t.conf:4: value '1G' for 'max_queue' out of range (4096-268435456)");
        EXPECT_ERRORS(SERVER_C "max_queue = 1T\n",
                      "t.conf:4: invalid value '1T' for 'max_queue': expected a size in bytes, optionally with K or M");
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config *c;
                snprintf(line, sizeof(line), "max_queue = %s", ok[i].text);
                const ServerConfig *s = load_server_at(SERVER_C, line, &c, __LINE__, __func__);
                if (s)
                        unit_assert_uinteq(s->max_queue, ok[i].bytes, line, __LINE__, __FILE__, __func__);
                config_free(c);
        }
}

/* ---- keys and server types ---- */

static void test_error_key_not_for_type(void) {
        EXPECT_ERRORS(SERVER_A "history = 5\n", "t.conf:4: key 'history' does not apply to a server of type echo");
        EXPECT_ERRORS(SERVER_C "handler = json-commands\n", "t.conf:4: key 'handler' does not apply to a server of type chat");
        EXPECT_ERRORS(SERVER_E "protocol = json\n", "t.conf:4: key 'protocol' does not apply to a server of type enhanced");
        EXPECT_ERRORS(SERVER_A "max_message = 4096\n", "t.conf:4: key 'max_message' does not apply to a server of type echo");
        /* the type may come after the key */
        EXPECT_ERRORS("[server a]\nmax_rate = 5\ntype = echo\nlisten = 127.0.0.1:7001\n",
                      "t.conf:2: key 'max_rate' does not apply to a server of type echo");
        /* each key is reported, on its own line, after the errors of the file's lines */
        EXPECT_ERRORS(SERVER_A "line_timeout = 5\nbacklog = 0\nmax_queue = 8K\n",
                      "t.conf:5: value '0' for 'backlog' out of range (1-65535)",
                      "t.conf:4: key 'line_timeout' does not apply to a server of type echo",
                      "t.conf:6: key 'max_queue' does not apply to a server of type echo");
}

static void test_every_key_for_every_type(void) {
        static const char *const values[] = { "4096", "30", "json-commands", "auto", "20", "1M", "20" };
        static const char *const types[] = { "echo", "enhanced", "chat" };
        char text[256], expected[160];

        ASSERT_UINTEQ(ELEMENTSOF(values), ELEMENTSOF(typed_keys));
        for (size_t t = 0; t < ELEMENTSOF(types); t++)
                for (size_t k = 0; k < ELEMENTSOF(typed_keys); k++) {
                        bool applies = t == 0 ? typed_keys[k].echo : t == 1 ? typed_keys[k].enhanced : typed_keys[k].chat;
                        snprintf(text, sizeof(text), "[server s]\ntype = %s\nlisten = 127.0.0.1:7001\n%s = %s\n", types[t],
                                 typed_keys[k].name, values[k]);
                        if (applies) {
                                Config *c = load_ok_at(text, __LINE__, __func__);
                                config_free(c);
                        } else {
                                snprintf(expected, sizeof(expected), "t.conf:4: key '%s' does not apply to a server of type %s",
                                         typed_keys[k].name, types[t]);
                                const char *const want[] = { expected };
                                expect_errors_at(text, want, 1, __LINE__, __func__);
                        }
                }
}

static void test_server_type_names(void) {
        static const char *const names[] = { "echo", "enhanced", "chat" };

        ASSERT_UINTEQ(ELEMENTSOF(names), _SERVER_TYPE_MAX);
        for (int i = 0; i < _SERVER_TYPE_MAX; i++) {
                ASSERT_STREQ(server_type_to_string(i), names[i]);
                ASSERT_INTEQ(server_type_from_string(names[i]), i);
        }
        ASSERT_INTEQ(server_type_from_string("Enhanced"), _SERVER_TYPE_INVALID);
        ASSERT_INTEQ(server_type_from_string(""), _SERVER_TYPE_INVALID);
}

static void test_error_missing_required_keys(void) {
        EXPECT_ERRORS("[daemon]\n\n[server a]\nbacklog = 5\n", "t.conf:3: [server a]: missing required key 'type'",
                      "t.conf:3: [server a]: missing required key 'listen'");
        EXPECT_ERRORS("[server a]\nlisten = 127.0.0.1:7001\n", "t.conf:1: [server a]: missing required key 'type'");
        EXPECT_ERRORS("[server a]\ntype = echo\n", "t.conf:1: [server a]: missing required key 'listen'");
}

static void test_error_listen_address_in_two_servers(void) {
        EXPECT_ERRORS(SERVER_A "[server b]\ntype = echo\nlisten = [::1]:7002, 127.0.0.1:7001\n",
                      "t.conf:6: listen address 127.0.0.1:7001 of server 'b' is already used by server 'a'");
}

static void test_port_zero_in_two_servers(void) {
        Config *c = LOAD_OK("[server a]\ntype = echo\nlisten = 127.0.0.1:0\n[server b]\ntype = echo\nlisten = 127.0.0.1:0\n");

        ASSERT_TRUE(c && c->n_servers == 2);
        config_free(c);
}

/* ---- syntax details ---- */

static void test_crlf_line_endings(void) {
        Config *c = LOAD_OK("# tcpedud.conf\r\n[daemon]\r\nlog_level = debug\r\n\r\n[server a]\r\ntype = echo\r\n"
                            "listen = 127.0.0.1:7001, [::1]:7001\r\nidle_timeout = 5min\r\n");

        if (c) {
                ASSERT_INTEQ(c->daemon.log_level, 7);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s && s->n_listen == 2);
                if (s && s->n_listen == 2) {
                        ASSERT_STREQ(s->name, "a");
                        ASSERT_STREQ(s->listen[1].spec, "[::1]:7001");
                        ASSERT_UINTEQ(s->idle_timeout, 300);
                }
        }
        config_free(c);
        /* no CR in messages, lines counted as usual */
        EXPECT_ERRORS("[daemon]\r\n\r\nlog_level = loud\r\n",
                      "t.conf:3: invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug");
}

static void test_utf8_bom(void) {
        Config *c = LOAD_OK("\xEF\xBB\xBF" SERVER_A);
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s != NULL);
        if (s)
                ASSERT_STREQ(s->name, "a");
        config_free(c);
        EXPECT_ERRORS("\xEF\xBB\xBF[daemon]\nlog_level = loud\n",
                      "t.conf:2: invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug");
}

static void test_comments(void) {
        Config *c = LOAD_OK("# hash comment\n"
                            "; semicolon comment\n"
                            "[daemon]\n"
                            "   # indented comment = not a key\n"
                            "\t; tab-indented comment\n"
                            "#log_level = debug\n"
                            "log_level = err\n"
                            "[server a]\n"
                            "type = echo\n"
                            "listen = 127.0.0.1:7001\n"
                            ";max_clients = 5\n");

        if (c) {
                ASSERT_INTEQ(c->daemon.log_level, 3);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s && s->max_clients == 1024);
        }
        config_free(c);
}

static void test_inline_comments(void) {
        Config *c = LOAD_OK("[daemon] ; the daemon\n"
                            "log_level = notice ; quieter\n"
                            "[server a] ; first server\n"
                            "type = echo ; the only type\n"
                            "listen = 127.0.0.1:7001, [::1]:7001 ; both loopbacks\n"
                            "max_clients = 10 ; ten\n");

        if (c) {
                ASSERT_INTEQ(c->daemon.log_level, 5);
                const ServerConfig *s = only_server(c);
                ASSERT_TRUE(s && s->n_listen == 2 && s->max_clients == 10);
                if (s)
                        ASSERT_STREQ(s->name, "a");
        }
        config_free(c);
}

static void test_blank_lines_and_spacing(void) {
        Config *c = LOAD_OK("\n\n   [server a]   \n  type=echo\n\tlisten   =127.0.0.1:7001\t\n\nmax_clients=7\n");
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s && s->max_clients == 7 && s->n_listen == 1);
        config_free(c);
}

static void test_empty_text(void) {
        Config *c = LOAD_OK("");

        ASSERT_TRUE(c && c->n_servers == 0);
        if (c) {
                ASSERT_UINTEQ(c->n_files, 1);
                ASSERT_STREQ(c->main_path, NAME);
        }
        config_free(c);
}

/* ---- files and drop-ins ---- */

static void write_file_at(const char *path, const char *data, size_t len, unsigned line, const char *func) {
        FILE *f = fopen(path, "we");
        bool ok = f && fwrite(data, 1, len, f) == len;

        if (f && fclose(f) != 0)
                ok = false;
        unit_assert_true(ok, path, line, __FILE__, func);
}

#define WRITE_FILE(path, text) write_file_at((path), (text), strlen(text), __LINE__, __func__)

/* tmpdir/name, created as a directory */
static void make_dir(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", tmpdir, name);
        ASSERT_INTEQ(mkdir(buf, 0700), 0);
}

static void join(char *buf, size_t size, const char *dir, const char *name) {
        snprintf(buf, size, "%s/%s", dir, name);
}

static int files_init(void) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/tcpedu-unit-config-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void)st, (void)type, (void)ftw;
        return remove(path);
}

static int files_cleanup(void) {
        if (!tmpdir[0])
                return 0;
        return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* config_load(path) must fail with exactly one error line. */
static void expect_file_error_at(const char *path, const char *expected, unsigned line, const char *func) {
        ConfigErrors errs = {};
        Config *c = NULL;

        unit_assert_inteq(config_load(path, &c, &errs), -EINVAL, "config_load()", line, __FILE__, func);
        unit_assert_true(c == NULL, "*ret untouched (NULL) on error", line, __FILE__, func);
        check_errors_at(&errs, &expected, 1, line, func);
        config_free(c);
        config_errors_clear(&errs);
}

static Config *load_file_ok_at(const char *path, unsigned line, const char *func) {
        ConfigErrors errs = {};
        Config *c = NULL;
        char what[4096];

        int r = config_load(path, &c, &errs);
        describe_errors(&errs, what, sizeof(what));
        unit_assert_inteq(r, 0, what, line, __FILE__, func);
        unit_assert_uinteq(errs.n, 0, what, line, __FILE__, func);
        config_errors_clear(&errs);
        return r < 0 ? config_free(c) : c;
}

#define LOAD_FILE_OK(path) load_file_ok_at((path), __LINE__, __func__)

static void test_file_loads(void) {
        char dir[256], path[320];

        make_dir(dir, sizeof(dir), "plain");
        join(path, sizeof(path), dir, "tcpedud.conf");
        WRITE_FILE(path, SERVER_A);
        Config *c = LOAD_FILE_OK(path);
        if (c) {
                ASSERT_STREQ(c->main_path, path);
                ASSERT_UINTEQ(c->n_files, 1);
                if (c->n_files >= 1)
                        ASSERT_STREQ(c->files[0], path);
                ASSERT_UINTEQ(c->n_servers, 1);
        }
        config_free(c);
}

static void test_file_missing(void) {
        char path[320], expected[512];

        join(path, sizeof(path), tmpdir, "does-not-exist.conf");
        snprintf(expected, sizeof(expected), "%s: cannot read: No such file or directory", path);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_file_with_nul_byte(void) {
        static const char data[] = "[daemon]\nlog_level = info\0\n";
        char dir[256], path[320], expected[512];

        make_dir(dir, sizeof(dir), "nul");
        join(path, sizeof(path), dir, "tcpedud.conf");
        write_file_at(path, data, sizeof(data) - 1, __LINE__, __func__);
        snprintf(expected, sizeof(expected), "%s: contains a NUL byte: not a text file", path);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_file_is_directory(void) {
        char dir[256], expected[512];

        make_dir(dir, sizeof(dir), "a-directory.conf");
        snprintf(expected, sizeof(expected), "%s: not a regular file", dir);
        expect_file_error_at(dir, expected, __LINE__, __func__);
}

static void test_file_error_names_path_and_line(void) {
        char dir[256], path[320], expected[512];

        make_dir(dir, sizeof(dir), "bad-main");
        join(path, sizeof(path), dir, "tcpedud.conf");
        WRITE_FILE(path, SERVER_A "backlog = 0\n");
        snprintf(expected, sizeof(expected), "%s:4: value '0' for 'backlog' out of range (1-65535)", path);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_dropins_later_file_wins(void) {
        char dir[256], path[320], dropins[400], a[480], b[480];

        make_dir(dir, sizeof(dir), "override");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A "max_clients = 10\n");
        join(b, sizeof(b), dropins, "20-b.conf");
        join(a, sizeof(a), dropins, "10-a.conf");
        /* written in the opposite order: the order is the names', not the directory's */
        WRITE_FILE(b, "[server a]\nmax_clients = 30\n");
        WRITE_FILE(a, "[server a]\nmax_clients = 20\nbacklog = 20\n");

        Config *c = LOAD_FILE_OK(path);
        const ServerConfig *s = only_server(c);
        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_UINTEQ(s->max_clients, 30);
                ASSERT_UINTEQ(s->backlog, 20);
                /* where max_clients was last set: 20-b.conf, line 2 (slot 4: type, listen, autostart, backlog, max_clients) */
                ASSERT_UINTEQ(s->key_origin[4].file, 2);
                ASSERT_UINTEQ(s->key_origin[4].line, 2);
                ASSERT_UINTEQ(s->declared.file, 0);
                ASSERT_UINTEQ(s->declared.line, 1);
        }
        ASSERT_TRUE(c && c->n_files == 3);
        if (c && c->n_files == 3) {
                ASSERT_STREQ(c->main_path, path);
                ASSERT_STREQ(c->files[0], path);
                ASSERT_STREQ(c->files[1], a);
                ASSERT_STREQ(c->files[2], b);
        }
        config_free(c);
}

static void test_dropin_adds_keys_to_main_server(void) {
        char dir[256], path[320], dropins[400], dropin[480];

        make_dir(dir, sizeof(dir), "add-keys");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        /* the main file leaves out the required listen: the drop-in supplies it */
        WRITE_FILE(path, "[server a]\ntype = echo\n");
        join(dropin, sizeof(dropin), dropins, "10-listen.conf");
        WRITE_FILE(dropin, "[server a]\nlisten = 127.0.0.1:7003\nbacklog = 7\n");

        Config *c = LOAD_FILE_OK(path);
        const ServerConfig *s = only_server(c);
        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_STREQ(s->name, "a");
                ASSERT_UINTEQ(s->n_listen, 1);
                ASSERT_STREQ(s->listen[0].spec, "127.0.0.1:7003");
                ASSERT_UINTEQ(s->backlog, 7);
                ASSERT_INTEQ(s->type, SERVER_TYPE_ECHO);
        }
        config_free(c);
}

static void test_dropin_error_names_dropin(void) {
        char dir[256], path[320], dropins[400], dropin[480], expected[600];

        make_dir(dir, sizeof(dir), "bad-dropin");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A);
        join(dropin, sizeof(dropin), dropins, "10-bad.conf");
        WRITE_FILE(dropin, "# limits\n[server a]\nbacklog = 0\n");

        snprintf(expected, sizeof(expected), "%s:3: value '0' for 'backlog' out of range (1-65535)", dropin);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_dropin_listen_conflict_names_dropin(void) {
        char dir[256], path[320], dropins[400], dropin[480], expected[600];

        make_dir(dir, sizeof(dir), "conflict-dropin");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A);
        join(dropin, sizeof(dropin), dropins, "50-b.conf");
        WRITE_FILE(dropin, "[server b]\ntype = echo\nlisten = 127.0.0.1:7001\n");

        snprintf(expected, sizeof(expected), "%s:3: listen address 127.0.0.1:7001 of server 'b' is already used by server 'a'", dropin);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_dropin_duplicate_server_within_dropin(void) {
        char dir[256], path[320], dropins[400], dropin[480], expected[600];

        make_dir(dir, sizeof(dir), "dup-dropin");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A);
        join(dropin, sizeof(dropin), dropins, "10-a.conf");
        WRITE_FILE(dropin, "[server a]\nbacklog = 5\n[server a]\n");

        snprintf(expected, sizeof(expected), "%s:3: duplicate server name 'a' (first on line 1)", dropin);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_dropins_non_conf_ignored(void) {
        static const char *const ignored[] = { "README", "10-x.conf.bak", ".hidden.conf", "20-y.conf~", ".conf", "conf", "30-z.CONF" };
        char dir[256], path[320], dropins[400], f[480];

        make_dir(dir, sizeof(dir), "ignored");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A);
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++) {
                join(f, sizeof(f), dropins, ignored[i]);
                WRITE_FILE(f, "garbage\n[server a]\nbacklog = 0\n");
        }
        join(f, sizeof(f), dropins, "40-ok.conf");
        WRITE_FILE(f, "[server a]\nbacklog = 9\n");

        Config *c = LOAD_FILE_OK(path);
        const ServerConfig *s = only_server(c);
        ASSERT_TRUE(s && s->backlog == 9);
        ASSERT_TRUE(c && c->n_files == 2);
        if (c && c->n_files == 2)
                ASSERT_STREQ(c->files[1], f);
        config_free(c);
}

static void test_dropins_errors_in_main_and_dropins_all_reported(void) {
        char dir[256], path[320], dropins[400], d1[480], d2[480];
        ConfigErrors errs = {};
        Config *c = NULL;

        make_dir(dir, sizeof(dir), "errors-everywhere");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A "bogus = 1\n");
        join(d1, sizeof(d1), dropins, "10-a.conf");
        WRITE_FILE(d1, "[daemon]\nlog_level = loud\n");
        join(d2, sizeof(d2), dropins, "20-b.conf");
        WRITE_FILE(d2, "\n\n[server a]\nautostart = maybe\n");

        ASSERT_INTEQ(config_load(path, &c, &errs), -EINVAL);
        ASSERT_TRUE(c == NULL);
        char e0[600], e1[600], e2[600];
        snprintf(e0, sizeof(e0), "%s:4: unknown key 'bogus' in [server]", path);
        snprintf(e1, sizeof(e1),
                 "%s:2: invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug", d1);
        snprintf(e2, sizeof(e2), "%s:4: invalid value 'maybe' for 'autostart': expected yes or no", d2);
        const char *const expected[] = { e0, e1, e2 };
        check_errors_at(&errs, expected, ELEMENTSOF(expected), __LINE__, __func__);
        config_free(c);
        config_errors_clear(&errs);
}

static void test_dropin_key_not_for_type(void) {
        char dir[256], path[320], dropins[400], dropin[480], expected[600];

        /* the key is in a drop-in, the type in the main file: the drop-in's line is named */
        make_dir(dir, sizeof(dir), "typed-dropin");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_C);
        join(dropin, sizeof(dropin), dropins, "10-handler.conf");
        WRITE_FILE(dropin, "[server c]\nhistory = 50\nhandler = /usr/lib/h.so\n");

        snprintf(expected, sizeof(expected), "%s:3: key 'handler' does not apply to a server of type chat", dropin);
        expect_file_error_at(path, expected, __LINE__, __func__);
}

static void test_dump_round_trip_with_dropins(void) {
        static const char *const names[] = { "10-limits.conf", "20-timeouts.conf", "30-buffers.conf" };
        char dir[256], path[320], dropins[400], f[480];

        /* The dump's first line lists every file read; it must stay a line the parser accepts. */
        make_dir(dir, sizeof(dir), "dump-dropins");
        join(path, sizeof(path), dir, "tcpedud.conf");
        snprintf(dropins, sizeof(dropins), "%s.d", path);
        ASSERT_INTEQ(mkdir(dropins, 0700), 0);
        WRITE_FILE(path, SERVER_A);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                join(f, sizeof(f), dropins, names[i]);
                WRITE_FILE(f, "[server a]\nmax_clients = 99\n");
        }
        Config *c = LOAD_FILE_OK(path);
        ASSERT_TRUE(c && c->n_files == 4);
        if (c)
                check_dump_round_trip_at(c, __LINE__, __func__);
        config_free(c);
}

/* ---- defaults, the embedded and the shipped config ---- */

static void test_defaults_minimal_server(void) {
        Config *c = LOAD_OK(SERVER_A);
        const ServerConfig *s = only_server(c);

        ASSERT_TRUE(s != NULL);
        if (s) {
                ASSERT_STREQ(s->name, "a");
                ASSERT_INTEQ(s->type, SERVER_TYPE_ECHO);
                ASSERT_UINTEQ(s->n_listen, 1);
                ASSERT_STREQ(s->listen[0].spec, "127.0.0.1:7001");
                ASSERT_TRUE(s->autostart);
                ASSERT_UINTEQ(s->backlog, 511);
                ASSERT_UINTEQ(s->max_clients, 1024);
                ASSERT_UINTEQ(s->max_clients_per_ip, 0);
                ASSERT_UINTEQ(s->idle_timeout, 300);
                ASSERT_UINTEQ(s->buffer_size, 65536);
                ASSERT_UINTEQ(s->declared.line, 1);
                /* type and listen set on lines 2 and 3, the rest defaults (line 0) */
                ASSERT_UINTEQ(s->key_origin[0].line, 2);
                ASSERT_UINTEQ(s->key_origin[1].line, 3);
                for (size_t i = 2; i < ELEMENTSOF(server_keys); i++)
                        ASSERT_UINTEQ(s->key_origin[i].line, 0);
        }
        config_free(c);
}

static void test_defaults_daemon(void) {
        Config *c = LOAD_OK("[daemon]\n");

        ASSERT_TRUE(c != NULL);
        if (c) {
                ASSERT_INTEQ(c->daemon.log_transitions, LOG_TRANSITIONS_ALL);
                ASSERT_UINTEQ(c->daemon.max_connections, 10000);
                ASSERT_INTEQ(c->daemon.log_level, 6);
                ASSERT_STREQ(c->daemon.control_socket, "");
                ASSERT_STREQ(c->daemon.admin_group, "");
                ASSERT_STREQ(c->daemon.user, "");
                ASSERT_STREQ(c->daemon.group, "");
                ASSERT_UINTEQ(c->n_servers, 0);
                ASSERT_UINTEQ(config_daemon_key_origin(c, "user").line, 0);
        }
        config_free(c);
}

/* user and group are plain strings to the loader (the daemon looks them up); where each was set
 * is kept, so that the daemon's errors name the line. */
static void test_daemon_user_group_origin(void) {
        Config *c = LOAD_OK("[daemon]\nlog_level = debug\nuser = nobody\n\ngroup = nogroup\n");

        ASSERT_TRUE(c != NULL);
        if (c) {
                ASSERT_STREQ(c->daemon.user, "nobody");
                ASSERT_STREQ(c->daemon.group, "nogroup");
                ASSERT_UINTEQ(config_daemon_key_origin(c, "log_level").line, 2);
                ASSERT_UINTEQ(config_daemon_key_origin(c, "user").line, 3);
                ASSERT_UINTEQ(config_daemon_key_origin(c, "group").line, 5);
                ASSERT_UINTEQ(config_daemon_key_origin(c, "admin_group").line, 0);
                ASSERT_UINTEQ(config_daemon_key_origin(c, "no_such_key").line, 0);
        }
        config_free(c);
}

static void test_embedded_default(void) {
        ConfigErrors errs = {};
        Config *c = NULL;

        ASSERT_INTEQ(config_load_string(CONFIG_EMBEDDED_NAME, config_embedded_default, &c, &errs), 0);
        ASSERT_UINTEQ(errs.n, 0);
        ASSERT_TRUE(c && c->n_servers == 3);
        if (c && c->n_servers == 3) {
                static const struct {
                        const char *name;
                        int type;
                        const char *listen[2];
                } want[] = {
                        { "echo", SERVER_TYPE_ECHO, { "127.0.0.1:7007", "[::1]:7007" } },
                        { "enhanced", SERVER_TYPE_ENHANCED, { "127.0.0.1:7008", "[::1]:7008" } },
                        { "chat", SERVER_TYPE_CHAT, { "127.0.0.1:7009", "[::1]:7009" } },
                };
                ASSERT_STREQ(c->main_path, "(embedded default)");
                for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                        const ServerConfig *s = &c->servers[i];
                        ASSERT_STREQ(s->name, want[i].name);
                        ASSERT_INTEQ(s->type, want[i].type);
                        ASSERT_STREQ(server_type_to_string(s->type), want[i].name);
                        ASSERT_UINTEQ(s->n_listen, 2);
                        ASSERT_STREQ(s->listen[0].spec, want[i].listen[0]);
                        ASSERT_STREQ(s->listen[1].spec, want[i].listen[1]);
                        ASSERT_TRUE(s->autostart);
                        ASSERT_TRUE(config_find_server(c, want[i].name) == s);
                        /* every other key at its default */
                        ASSERT_UINTEQ(s->backlog, 511);
                        ASSERT_UINTEQ(s->max_clients, 1024);
                        ASSERT_UINTEQ(s->idle_timeout, 300);
                        ASSERT_UINTEQ(s->buffer_size, 65536);
                        ASSERT_UINTEQ(s->max_message, 4096);
                        ASSERT_UINTEQ(s->line_timeout, 30);
                        ASSERT_STREQ(s->handler, "json-commands");
                        ASSERT_INTEQ(s->protocol, CHAT_PROTOCOL_AUTO);
                        ASSERT_UINTEQ(s->history, 20);
                        ASSERT_UINTEQ(s->max_queue, 1048576);
                        ASSERT_UINTEQ(s->max_rate, 20);
                }
        }
        config_free(c);
        config_errors_clear(&errs);
}

static void test_embedded_default_is_shipped_file(void) {
        char *text = read_whole_file(SHIPPED_CONF);

        ASSERT_TRUE(text != NULL);
        if (text)
                ASSERT_TRUE(strcmp(text, config_embedded_default) == 0);
        free(text);
}

static void test_shipped_file_loads_like_embedded(void) {
        Config *file = LOAD_FILE_OK(SHIPPED_CONF), *embedded = LOAD_OK(config_embedded_default);

        ASSERT_TRUE(file && embedded);
        if (file && embedded) {
                ASSERT_UINTEQ(file->n_servers, embedded->n_servers);
                for (size_t i = 0; i < file->n_servers && i < embedded->n_servers; i++)
                        ASSERT_TRUE(server_config_equal(&file->servers[i], &embedded->servers[i]));
                ASSERT_TRUE(memcmp(&file->daemon, &embedded->daemon, sizeof(DaemonConfig)) == 0);
        }
        config_free(file);
        config_free(embedded);
}

/* A key is mentioned when a line starts with it, maybe commented out: "#name =" or "name =". */
static bool mentions_key(const char *text, const char *name) {
        size_t n = strlen(name);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                const char *q = p;
                if (*q == '#')
                        q++;
                if (strncmp(q, name, n) != 0)
                        continue;
                q += n;
                while (*q == ' ')
                        q++;
                if (*q == '=')
                        return true;
        }
        return false;
}

static void test_shipped_file_mentions_every_key(void) {
        char *text = read_whole_file(SHIPPED_CONF);

        ASSERT_TRUE(text != NULL);
        if (!text)
                return;
        for (size_t i = 0; i < ELEMENTSOF(daemon_keys); i++)
                unit_assert_true(mentions_key(text, daemon_keys[i]), daemon_keys[i], __LINE__, __FILE__, __func__);
        for (size_t i = 0; i < ELEMENTSOF(server_keys); i++)
                unit_assert_true(mentions_key(text, server_keys[i]), server_keys[i], __LINE__, __FILE__, __func__);
        free(text);
}

/* ---- dump ---- */

/* The text of one section of a dump, from its header to the next one (to free). */
static char *dump_section(const char *dump, const char *header) {
        char needle[64];

        snprintf(needle, sizeof(needle), "\n%s\n", header);
        const char *p = strstr(dump, needle);
        if (!p)
                return NULL;
        p++;
        const char *e = strstr(p + 1, "\n[");
        return strndup(p, e ? (size_t)(e - p + 1) : strlen(p));
}

static bool has_line(const char *text, const char *line) {
        char needle[256];

        snprintf(needle, sizeof(needle), "\n%s\n", line);
        return text && strstr(text, needle) != NULL;
}

static void test_dump_embedded_default(void) {
        static const char *const common[] = { "autostart = yes",        "backlog = 511",      "max_clients = 1024",
                                              "max_clients_per_ip = 0", "idle_timeout = 300", "buffer_size = 65536" };
        static const char *const sections[] = { "[server echo]", "[server enhanced]", "[server chat]" };
        static const char *const typed_values[] = { "max_message = 4096", "line_timeout = 30", "handler = json-commands",
                                                    "protocol = auto",    "history = 20",      "max_queue = 1048576",
                                                    "max_rate = 20" };
        Config *c = LOAD_OK(config_embedded_default);
        char *dump = c ? dump_to_string(c) : NULL;
        char needle[64];

        ASSERT_TRUE(dump != NULL);
        if (!dump) {
                config_free(c);
                return;
        }
        ASSERT_TRUE(strstr(dump, "\n[daemon]\n") != NULL);
        ASSERT_TRUE(has_line(dump, "log_transitions = all"));
        ASSERT_TRUE(has_line(dump, "max_connections = 10000"));
        ASSERT_TRUE(has_line(dump, "log_level = info"));
        for (size_t i = 0; i < ELEMENTSOF(daemon_keys); i++) {
                snprintf(needle, sizeof(needle), "\n%s = ", daemon_keys[i]);
                unit_assert_true(strstr(dump, needle) != NULL, daemon_keys[i], __LINE__, __FILE__, __func__);
        }
        /* every key shows up somewhere */
        for (size_t i = 0; i < ELEMENTSOF(server_keys); i++) {
                snprintf(needle, sizeof(needle), "\n%s = ", server_keys[i]);
                unit_assert_true(strstr(dump, needle) != NULL, server_keys[i], __LINE__, __FILE__, __func__);
        }

        ASSERT_UINTEQ(ELEMENTSOF(typed_values), ELEMENTSOF(typed_keys));
        for (size_t t = 0; t < ELEMENTSOF(sections); t++) {
                char *sec = dump_section(dump, sections[t]);
                unit_assert_true(sec != NULL, sections[t], __LINE__, __FILE__, __func__);
                if (!sec)
                        continue;
                char type_line[32], listen_line_text[64];
                snprintf(type_line, sizeof(type_line), "type = %s", t == 0 ? "echo" : t == 1 ? "enhanced" : "chat");
                snprintf(listen_line_text, sizeof(listen_line_text), "listen = 127.0.0.1:%zu,[::1]:%zu", 7007 + t, 7007 + t);
                unit_assert_true(has_line(sec, type_line), type_line, __LINE__, __FILE__, __func__);
                unit_assert_true(has_line(sec, listen_line_text), listen_line_text, __LINE__, __FILE__, __func__);
                for (size_t i = 0; i < ELEMENTSOF(common); i++)
                        unit_assert_true(has_line(sec, common[i]), common[i], __LINE__, __FILE__, __func__);
                /* the keys of other types are left out */
                for (size_t k = 0; k < ELEMENTSOF(typed_keys); k++) {
                        bool applies = t == 0 ? typed_keys[k].echo : t == 1 ? typed_keys[k].enhanced : typed_keys[k].chat;
                        char what[128];
                        snprintf(needle, sizeof(needle), "\n%s", typed_keys[k].name);
                        snprintf(what, sizeof(what), "%s %s '%s'", sections[t], applies ? "has" : "has no", typed_keys[k].name);
                        unit_assert_true((strstr(sec, needle) != NULL) == applies, what, __LINE__, __FILE__, __func__);
                        if (applies)
                                unit_assert_true(has_line(sec, typed_values[k]), typed_values[k], __LINE__, __FILE__, __func__);
                }
                free(sec);
        }
        free(dump);
        config_free(c);
}

static void test_dump_round_trip_embedded_default(void) {
        Config *c = LOAD_OK(config_embedded_default);

        if (c)
                check_dump_round_trip_at(c, __LINE__, __func__);
        config_free(c);
}

static void test_dump_round_trip_every_key_set(void) {
        Config *c = LOAD_OK("[daemon]\n"
                            "control_socket = /run/tcpedu-test/control.sock\n"
                            "admin_group = wheel\n"
                            "log_transitions = summary\n"
                            "max_connections = 77\n"
                            "log_level = debug\n"
                            "[server one]\n"
                            "type = echo\n"
                            "listen = 127.0.0.1:0, [::1]:7101, [::ffff:10.0.0.1]:7102\n"
                            "autostart = no\n"
                            "backlog = 12\n"
                            "max_clients = 34\n"
                            "max_clients_per_ip = 5\n"
                            "idle_timeout = 2h\n"
                            "buffer_size = 3M\n"
                            "[server two]\n"
                            "type = echo\n"
                            "listen = 0.0.0.0:7103\n"
                            "idle_timeout = 0\n"
                            "[server three]\n"
                            "type = enhanced\n"
                            "listen = 127.0.0.1:7104\n"
                            "autostart = no\n"
                            "max_message = 64K\n"
                            "line_timeout = 0\n"
                            "handler = /usr/lib/tcpedu/handlers/upper.so\n"
                            "[server four]\n"
                            "type = chat\n"
                            "listen = [::1]:7105\n"
                            "max_message = 512\n"
                            "line_timeout = 1h\n"
                            "protocol = line\n"
                            "history = 0\n"
                            "max_queue = 256M\n"
                            "max_rate = 0\n"
                            "[server five]\n"
                            "type = chat\n"
                            "listen = 127.0.0.1:7106\n"
                            "protocol = json\n"
                            "history = 1000\n"
                            "max_queue = 4K\n"
                            "max_rate = 100000\n");

        ASSERT_TRUE(c && c->n_servers == 5);
        if (c)
                check_dump_round_trip_at(c, __LINE__, __func__);
        config_free(c);
}

static void test_dump_round_trip_sixteen_listen_addresses(void) {
        char line[256], text[512];

        /* A valid config whose listen line is 198 bytes: the dump writes ", " between addresses,
         * and must still be a config the daemon accepts. */
        listen_line(line, sizeof(line), "listen=", 100, LISTEN_MAX, ",");
        snprintf(text, sizeof(text), "[server a]\ntype = echo\n%s\n", line);
        Config *c = LOAD_OK(text);
        if (c)
                check_dump_round_trip_at(c, __LINE__, __func__);
        config_free(c);
}

/* ---- comparisons and names ---- */

static void test_compare_identical(void) {
        Config *a = LOAD_OK(SERVER_A "max_clients = 5\n"), *b = LOAD_OK(SERVER_A "max_clients = 5\n");

        if (a && b) {
                ASSERT_TRUE(server_config_equal(&a->servers[0], &b->servers[0]));
                ASSERT_TRUE(server_config_same_listeners(&a->servers[0], &b->servers[0]));
        }
        config_free(a);
        config_free(b);
}

static void test_compare_max_clients_changed(void) {
        Config *a = LOAD_OK(SERVER_A "max_clients = 5\n"), *b = LOAD_OK(SERVER_A "max_clients = 6\n");

        if (a && b) {
                ASSERT_FALSE(server_config_equal(&a->servers[0], &b->servers[0]));
                ASSERT_TRUE(server_config_same_listeners(&a->servers[0], &b->servers[0]));
        }
        config_free(a);
        config_free(b);
}

static void test_compare_listen_changed(void) {
        Config *a = LOAD_OK(SERVER_A), *b = LOAD_OK("[server a]\ntype = echo\nlisten = 127.0.0.1:7002\n"),
               *c = LOAD_OK("[server a]\ntype = echo\nlisten = 127.0.0.1:7001, [::1]:7001\n");

        if (a && b && c) {
                ASSERT_FALSE(server_config_same_listeners(&a->servers[0], &b->servers[0]));
                ASSERT_FALSE(server_config_equal(&a->servers[0], &b->servers[0]));
                ASSERT_FALSE(server_config_same_listeners(&a->servers[0], &c->servers[0]));
                ASSERT_FALSE(server_config_equal(&a->servers[0], &c->servers[0]));
        }
        config_free(a);
        config_free(b);
        config_free(c);
}

static void test_compare_limits_changed(void) {
        static const char *const changes[] = { "autostart = no\n", "max_clients_per_ip = 3\n", "idle_timeout = 10\n",
                                               "buffer_size = 1M\n" };
        Config *a = LOAD_OK(SERVER_A);
        char text[256];

        for (size_t i = 0; a && i < ELEMENTSOF(changes); i++) {
                snprintf(text, sizeof(text), SERVER_A "%s", changes[i]);
                Config *b = LOAD_OK(text);
                if (b) {
                        unit_assert_true(!server_config_equal(&a->servers[0], &b->servers[0]), changes[i], __LINE__, __FILE__, __func__);
                        unit_assert_true(server_config_same_listeners(&a->servers[0], &b->servers[0]), changes[i], __LINE__, __FILE__,
                                         __func__);
                }
                config_free(b);
        }
        config_free(a);
}

static void test_compare_new_keys_changed(void) {
        static const struct {
                const char *head, *change;
        } changes[] = {
                { SERVER_E, "max_message = 8K\n" }, { SERVER_E, "line_timeout = 10\n" }, { SERVER_E, "handler = /usr/lib/h.so\n" },
                { SERVER_C, "max_message = 8K\n" }, { SERVER_C, "line_timeout = 10\n" }, { SERVER_C, "protocol = json\n" },
                { SERVER_C, "protocol = line\n" },  { SERVER_C, "history = 21\n" },      { SERVER_C, "max_queue = 2M\n" },
                { SERVER_C, "max_rate = 21\n" },
        };
        char text[256];

        for (size_t i = 0; i < ELEMENTSOF(changes); i++) {
                Config *a = LOAD_OK(changes[i].head);
                snprintf(text, sizeof(text), "%s%s", changes[i].head, changes[i].change);
                Config *b = LOAD_OK(text);
                if (a && b) {
                        unit_assert_true(!server_config_equal(&a->servers[0], &b->servers[0]), changes[i].change, __LINE__, __FILE__,
                                         __func__);
                        unit_assert_true(server_config_same_listeners(&a->servers[0], &b->servers[0]), changes[i].change, __LINE__,
                                         __FILE__, __func__);
                }
                config_free(a);
                config_free(b);
        }

        /* the defaults written out are no change */
        Config *a = LOAD_OK(SERVER_C),
               *b = LOAD_OK(SERVER_C "max_message = 4K\nline_timeout = 30s\nprotocol = auto\nhistory = 20\nmax_queue = 1M\n"
                                     "max_rate = 20\n");
        if (a && b)
                ASSERT_TRUE(server_config_equal(&a->servers[0], &b->servers[0]));
        config_free(a);
        config_free(b);
}

static void test_compare_type_changed(void) {
        Config *a = LOAD_OK(SERVER_A), *b = LOAD_OK("[server a]\ntype = enhanced\nlisten = 127.0.0.1:7001\n"),
               *c = LOAD_OK("[server a]\ntype = chat\nlisten = 127.0.0.1:7001\n");

        if (a && b && c) {
                ASSERT_FALSE(server_config_equal(&a->servers[0], &b->servers[0]));
                ASSERT_FALSE(server_config_same_listeners(&a->servers[0], &b->servers[0]));
                ASSERT_FALSE(server_config_equal(&b->servers[0], &c->servers[0]));
                ASSERT_FALSE(server_config_same_listeners(&b->servers[0], &c->servers[0]));
        }
        config_free(a);
        config_free(b);
        config_free(c);
}

static void test_compare_name_changed(void) {
        Config *a = LOAD_OK(SERVER_A), *b = LOAD_OK("[server b]\ntype = echo\nlisten = 127.0.0.1:7001\n");

        if (a && b) {
                ASSERT_FALSE(server_config_equal(&a->servers[0], &b->servers[0]));
                ASSERT_TRUE(server_config_same_listeners(&a->servers[0], &b->servers[0]));
        }
        config_free(a);
        config_free(b);
}

static void test_compare_ignores_origin(void) {
        /* the same settings written on other lines are the same server */
        Config *a = LOAD_OK(SERVER_A), *b = LOAD_OK("\n\n# moved\n[server a]\nlisten = 127.0.0.1:7001\ntype = echo\n");

        if (a && b)
                ASSERT_TRUE(server_config_equal(&a->servers[0], &b->servers[0]));
        config_free(a);
        config_free(b);
}

static void test_find_server(void) {
        Config *c = LOAD_OK(SERVER_A "[server b]\ntype = echo\nlisten = 127.0.0.1:7002\n");

        if (c) {
                ASSERT_TRUE(config_find_server(c, "a") == &c->servers[0]);
                ASSERT_TRUE(config_find_server(c, "b") == &c->servers[1]);
                ASSERT_TRUE(config_find_server(c, "c") == NULL);
                ASSERT_TRUE(config_find_server(c, "A") == NULL);
        }
        config_free(c);
}

static void test_value_names(void) {
        ASSERT_STREQ(server_type_to_string(SERVER_TYPE_ECHO), "echo");
        ASSERT_STREQ(server_type_to_string(_SERVER_TYPE_MAX), NULL);
        ASSERT_STREQ(server_type_to_string(-1), NULL);
        ASSERT_INTEQ(server_type_from_string("echo"), SERVER_TYPE_ECHO);
        ASSERT_INTEQ(server_type_from_string("http"), _SERVER_TYPE_INVALID);
        ASSERT_STREQ(log_transitions_to_string(LOG_TRANSITIONS_ALL), "all");
        ASSERT_STREQ(log_transitions_to_string(LOG_TRANSITIONS_SUMMARY), "summary");
        ASSERT_STREQ(log_transitions_to_string(LOG_TRANSITIONS_OFF), "off");
        ASSERT_STREQ(log_transitions_to_string(_LOG_TRANSITIONS_MAX), NULL);
        ASSERT_STREQ(log_level_to_string(0), "emerg");
        ASSERT_STREQ(log_level_to_string(6), "info");
        ASSERT_STREQ(log_level_to_string(7), "debug");
        ASSERT_STREQ(log_level_to_string(8), NULL);
        ASSERT_STREQ(log_level_to_string(-1), NULL);
        ASSERT_INTEQ(log_level_from_string("warning"), 4);
        ASSERT_INTEQ(log_level_from_string("Notice"), 5);
        ASSERT_INTEQ(log_level_from_string("loud"), -EINVAL);
}

int main(void) {
        static CU_TestInfo key_tests[] = {
                { "unknown_key_with_suggestion", test_error_unknown_key_with_suggestion },
                { "unknown_key_without_suggestion", test_error_unknown_key_without_suggestion },
                { "key_outside_section", test_error_key_outside_section },
                { "duplicate_key", test_error_duplicate_key },
                { "same_key_in_two_servers_is_not_duplicate", test_same_key_in_two_servers_is_not_duplicate },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo section_tests[] = {
                { "unknown_section", test_error_unknown_section },
                { "server_without_name", test_error_server_without_name },
                { "invalid_server_name", test_error_invalid_server_name },
                { "server_name_limits", test_server_name_limits },
                { "duplicate_server_name", test_error_duplicate_server_name },
                { "duplicate_daemon", test_error_duplicate_daemon },
                { "third_daemon_names_first_line", test_error_third_daemon_names_first_line },
                { "header_without_bracket", test_error_header_without_bracket },
                { "too_many_servers", test_error_too_many_servers },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo line_tests[] = {
                { "line_too_long", test_error_line_too_long },
                { "line_length_boundary", test_line_length_boundary },
                { "key_line_of_198_bytes", test_key_line_of_198_bytes },
                { "line_without_equals", test_error_line_without_equals },
                { "syntax_error_from_inih", test_error_syntax_error_from_inih },
                { "syntax_error_reported_with_other_errors", test_error_syntax_error_reported_with_other_errors },
                { "many_errors_all_reported", test_error_many_errors_all_reported },
                { "errors_suppressed_after_limit", test_error_suppressed_after_limit },
                { "errors_add_format", test_errors_add_format },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo value_tests[] = {
                { "backlog_out_of_range", test_value_backlog_out_of_range },
                { "backlog_limits", test_value_backlog_limits },
                { "not_a_number", test_value_not_a_number },
                { "bool", test_value_bool },
                { "log_transitions", test_value_log_transitions },
                { "log_level", test_value_log_level },
                { "server_type", test_value_server_type },
                { "string_too_long", test_value_string_too_long },
                { "listen_bad_address", test_value_listen_bad_address },
                { "listen_same_address_twice", test_value_listen_same_address_twice },
                { "listen_port_zero_twice", test_value_listen_port_zero_twice },
                { "listen_too_many", test_value_listen_too_many },
                { "listen_canonical_spec", test_value_listen_canonical_spec },
                { "buffer_size", test_value_buffer_size },
                { "idle_timeout", test_value_idle_timeout },
                { "defaults_enhanced_and_chat", test_defaults_enhanced_and_chat },
                { "max_message", test_value_max_message },
                { "max_message_keeps_line_timeout", test_value_max_message_keeps_line_timeout },
                { "line_timeout", test_value_line_timeout },
                { "handler", test_value_handler },
                { "protocol", test_value_protocol },
                { "history_and_max_rate", test_value_history_and_max_rate },
                { "max_queue", test_value_max_queue },
                { "key_not_for_type", test_error_key_not_for_type },
                { "every_key_for_every_type", test_every_key_for_every_type },
                { "server_type_names", test_server_type_names },
                { "missing_required_keys", test_error_missing_required_keys },
                { "listen_address_in_two_servers", test_error_listen_address_in_two_servers },
                { "port_zero_in_two_servers", test_port_zero_in_two_servers },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo syntax_tests[] = {
                { "crlf_line_endings", test_crlf_line_endings },
                { "utf8_bom", test_utf8_bom },
                { "comments", test_comments },
                { "inline_comments", test_inline_comments },
                { "blank_lines_and_spacing", test_blank_lines_and_spacing },
                { "empty_text", test_empty_text },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo file_tests[] = {
                { "file_loads", test_file_loads },
                { "file_missing", test_file_missing },
                { "file_with_nul_byte", test_file_with_nul_byte },
                { "file_is_directory", test_file_is_directory },
                { "file_error_names_path_and_line", test_file_error_names_path_and_line },
                { "dropins_later_file_wins", test_dropins_later_file_wins },
                { "dropin_adds_keys_to_main_server", test_dropin_adds_keys_to_main_server },
                { "dropin_error_names_dropin", test_dropin_error_names_dropin },
                { "dropin_listen_conflict_names_dropin", test_dropin_listen_conflict_names_dropin },
                { "dropin_duplicate_server_within_dropin", test_dropin_duplicate_server_within_dropin },
                { "dropins_non_conf_ignored", test_dropins_non_conf_ignored },
                { "dropins_errors_in_main_and_dropins_all_reported", test_dropins_errors_in_main_and_dropins_all_reported },
                { "dropin_key_not_for_type", test_dropin_key_not_for_type },
                { "dump_round_trip_with_dropins", test_dump_round_trip_with_dropins },
                { "shipped_file_loads_like_embedded", test_shipped_file_loads_like_embedded },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo default_tests[] = {
                { "defaults_minimal_server", test_defaults_minimal_server },
                { "defaults_daemon", test_defaults_daemon },
                { "daemon_user_group_origin", test_daemon_user_group_origin },
                { "embedded_default", test_embedded_default },
                { "embedded_default_is_shipped_file", test_embedded_default_is_shipped_file },
                { "shipped_file_mentions_every_key", test_shipped_file_mentions_every_key },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo dump_tests[] = {
                { "dump_embedded_default", test_dump_embedded_default },
                { "dump_round_trip_embedded_default", test_dump_round_trip_embedded_default },
                { "dump_round_trip_every_key_set", test_dump_round_trip_every_key_set },
                { "dump_round_trip_sixteen_listen_addresses", test_dump_round_trip_sixteen_listen_addresses },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo compare_tests[] = {
                { "compare_identical", test_compare_identical },
                { "compare_max_clients_changed", test_compare_max_clients_changed },
                { "compare_listen_changed", test_compare_listen_changed },
                { "compare_limits_changed", test_compare_limits_changed },
                { "compare_new_keys_changed", test_compare_new_keys_changed },
                { "compare_type_changed", test_compare_type_changed },
                { "compare_name_changed", test_compare_name_changed },
                { "compare_ignores_origin", test_compare_ignores_origin },
                { "find_server", test_find_server },
                { "value_names", test_value_names },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "config keys", NULL, NULL, NULL, NULL, key_tests },
                { "config sections", NULL, NULL, NULL, NULL, section_tests },
                { "config lines", NULL, NULL, NULL, NULL, line_tests },
                { "config values", NULL, NULL, NULL, NULL, value_tests },
                { "config syntax", NULL, NULL, NULL, NULL, syntax_tests },
                { "config files", files_init, files_cleanup, NULL, NULL, file_tests },
                { "config defaults", NULL, NULL, NULL, NULL, default_tests },
                { "config dump", NULL, NULL, NULL, NULL, dump_tests },
                { "config compare", NULL, NULL, NULL, NULL, compare_tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
