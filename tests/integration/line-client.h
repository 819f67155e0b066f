/* SPDX-License-Identifier: MIT */
#pragma once

/* Line-buffered test clients for the framed server types (enhanced, chat): read a line or a JSON
 * reply with a timeout, match a reply against a spec, drive tcpeductl. Shared by test-enhanced.c
 * and test-chat.c; every helper is static and may go unused in one of them. */
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

/* ---- helpers: line-buffered clients, JSON replies matched against a spec ---- */

#define HELPER static __attribute__((unused))

/* An assertion reported at the caller's line (helpers get file and line from their macro). */
#define CHECK_AT(file, line, cond, fatal, ...)                                                                                             \
        do {                                                                                                                               \
                bool ok_ = (cond);                                                                                                         \
                if (!ok_)                                                                                                                  \
                        harness_report(file, line, __VA_ARGS__);                                                                           \
                CU_assertImplementation(ok_, (unsigned)(line), #cond, file, "", (fatal) ? CU_TRUE : CU_FALSE);                             \
        } while (0)

#define MIN_(a, b) ((a) < (b) ? (a) : (b))
#define MAX_CLIENTS 32
#define CLIENT_BUF 65536

typedef struct Client {
        int fd;
        char label[64];
        size_t len; /* bytes received and not yet consumed, in buf */
        char buf[CLIENT_BUF];
} Client;

static Client pool[MAX_CLIENTS];
static unsigned n_pool;
static json_object **tracked;
static size_t n_tracked, cap_tracked;

static json_object *track_json(json_object *o) {
        if (!o)
                return NULL;
        if (n_tracked == cap_tracked) {
                size_t cap = cap_tracked ? cap_tracked * 2 : 256;
                json_object **n = realloc(tracked, cap * sizeof(*n));
                if (!n)
                        abort();
                tracked = n;
                cap_tracked = cap;
        }
        tracked[n_tracked++] = o;
        return o;
}

static void t_setup(void) {
        harness_setup();
        n_pool = 0;
}

static void t_teardown(void) {
        for (size_t i = 0; i < n_tracked; i++)
                json_object_put(tracked[i]);
        n_tracked = 0;
        harness_teardown();
}

#define SUITE(name, tests)                                                                                                                 \
        { name, harness_suite_init, harness_suite_cleanup, t_setup, t_teardown, tests }

/* Strict JSON: what the daemon writes must parse without json-c's leniencies. NULL if not JSON. */
static json_object *parse_strict(const char *s) {
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        size_t len = strlen(s);
        json_object *o = json_tokener_parse_ex(tok, s, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return track_json(o);
}

/* printf, then every ' in the format becomes " (JSON specs without a forest of backslashes; the
 * arguments are inserted as they are: quote strings with jq()). */
HELPER char *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HELPER char *J(const char *fmt, ...) {
        char f[4096];
        snprintf(f, sizeof(f), "%s", fmt);
        for (char *p = f; *p; p++)
                if (*p == '\'')
                        *p = '"';
        char *out = NULL;
        va_list ap;
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        int n = vasprintf(&out, f, ap);
#pragma GCC diagnostic pop
        va_end(ap);
        if (n < 0)
                abort();
        char *r = tstr("%s", out);
        free(out);
        return r;
}

/* s with every ' turned into ". */
HELPER char *Q(const char *s) {
        char *r = tstr("%s", s);
        for (char *p = r; *p; p++)
                if (*p == '\'')
                        *p = '"';
        return r;
}

/* A JSON string literal for s. */
HELPER const char *jq(const char *s) {
        json_object *o = json_object_new_string(s);
        const char *r = tstr("%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return r;
}

HELPER const char *jtext(json_object *o) {
        return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "(null)";
}

HELPER const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A string field copied until teardown; "(null)" when absent, as printf's %s would write it. */
HELPER const char *jstr_copy(json_object *o, const char *key) {
        const char *v = jstr(o, key);
        return tstr("%s", v ? v : "(null)");
}

HELPER Client *client_at(const char *file, int line, const Addr *a, const char *label) {
        CHECK_AT(file, line, n_pool < MAX_CLIENTS, true, "too many clients");
        Client *c = &pool[n_pool++];
        c->len = 0;
        snprintf(c->label, sizeof(c->label), "%s", label);
        c->fd = tcp_connect(a, NULL);
        CHECK_AT(file, line, c->fd >= 0, true, "%s: connect: %s", label, strerror(-c->fd));
        return c;
}
#define CLIENT(a, label) client_at(__FILE__, __LINE__, a, label)

HELPER void client_close(Client *c) {
        if (c->fd >= 0)
                sock_close(c->fd);
        c->fd = -1;
}

/* shutdown(SHUT_WR), the daemon's FIN, close: close_graceful()'s result. */
HELPER int client_close_graceful(Client *c) {
        int r = close_graceful(c->fd);
        c->fd = -1;
        return r;
}

/* Close every client still open (the daemon would wait for their FIN), then stop the daemon. */
HELPER int stop_daemon(Daemon *d) {
        for (unsigned i = 0; i < n_pool; i++)
                client_close(&pool[i]);
        return daemon_stop(d);
}

HELPER void send_at(const char *file, int line, Client *c, const void *data, size_t len) {
        int r = send_all(c->fd, data, len, IO_TIMEOUT_MS);
        CHECK_AT(file, line, r == 0, true, "%s: send: %s", c->label, strerror(-r));
}
#define SEND(c, s) send_at(__FILE__, __LINE__, c, s, strlen(s))
#define SEND_LEN(c, s, n) send_at(__FILE__, __LINE__, c, s, n)

/* The next line, without its '\n' (freed at teardown). NULL and *err: -ETIMEDOUT, -ENODATA (EOF),
 * -EMSGSIZE (no '\n' in a full buffer) or -errno. */
static char *read_line(Client *c, int timeout_ms, int *err) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                if (nl) {
                        size_t n = (size_t)(nl - c->buf);
                        char *s = tstr("%.*s", (int)n, c->buf);
                        memmove(c->buf, nl + 1, c->len - n - 1);
                        c->len -= n + 1;
                        return s;
                }
                if (c->len == sizeof(c->buf)) {
                        *err = -EMSGSIZE;
                        return NULL;
                }
                ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
                if (k > 0) {
                        c->len += (size_t)k;
                        continue;
                }
                if (k == 0) {
                        *err = -ENODATA;
                        return NULL;
                }
                if (errno != EAGAIN && errno != EINTR) {
                        *err = -errno;
                        return NULL;
                }
                uint64_t now = now_ms();
                if (now >= deadline) {
                        *err = -ETIMEDOUT;
                        return NULL;
                }
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                (void)poll(&p, 1, (int)(deadline - now));
        }
}

static const char *err_text(int err) {
        return err == -ENODATA ? "end of stream" : err == -ETIMEDOUT ? "timed out" : strerror(-err);
}

HELPER char *line_at(const char *file, int line, Client *c) {
        int err = 0;
        char *s = read_line(c, IO_TIMEOUT_MS, &err);
        CHECK_AT(file, line, s != NULL, true, "%s: no line: %s (unterminated: '%.*s')", c->label, err_text(err), (int)MIN_(c->len, 200),
                 c->buf);
        return s;
}
#define LINE(c) line_at(__FILE__, __LINE__, c)

HELPER void expect_line_at(const char *file, int line, Client *c, const char *expected) {
        char *s = line_at(file, line, c);
        CHECK_AT(file, line, strcmp(s, expected) == 0, false, "%s: got line '%s', expected '%s'", c->label, s, expected);
}
#define EXPECT_LINE(c, s) expect_line_at(__FILE__, __LINE__, c, s)

/* The end of the stream: nothing more, then EOF (0) or a reset (-ECONNRESET); -ETIMEDOUT; -EPROTO
 * when data came instead (reported). */
HELPER int wait_end_at(const char *file, int line, Client *c, int timeout_ms) {
        int err = 0;
        char *s = read_line(c, timeout_ms, &err);
        CHECK_AT(file, line, s == NULL, false, "%s: expected the end of the stream, got line '%s'", c->label, s ? s : "");
        if (s)
                return -EPROTO;
        CHECK_AT(file, line, c->len == 0, false, "%s: unterminated data before the end: '%.*s'", c->label, (int)MIN_(c->len, 200), c->buf);
        return err == -ENODATA ? 0 : err;
}
#define EXPECT_EOF(c)                                                                                                                      \
        do {                                                                                                                               \
                int r_ = wait_end_at(__FILE__, __LINE__, c, IO_TIMEOUT_MS);                                                                \
                EXPECT(r_ == 0, "%s: expected EOF, got %s", (c)->label, err_text(r_));                                                     \
        } while (0)

/* Nothing is waiting to be read (what was sent before was all handled and answered). */
HELPER void expect_nothing_at(const char *file, int line, Client *c) {
        char b[256];
        ssize_t k = recv(c->fd, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK);
        CHECK_AT(file, line, c->len == 0 && k < 0 && errno == EAGAIN, false, "%s: unexpected data: '%.*s%.*s' (recv %zd)", c->label,
                 (int)MIN_(c->len, 200), c->buf, (int)(k > 0 ? k : 0), b, k);
}
#define EXPECT_NOTHING(c) expect_nothing_at(__FILE__, __LINE__, c)

static bool is_number(json_object *v) {
        return v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int));
}

/* The next line as a JSON object with a numeric "timestamp". */
HELPER json_object *json_at(const char *file, int line, Client *c) {
        char *s = line_at(file, line, c);
        json_object *o = parse_strict(s), *ts;
        CHECK_AT(file, line, o && json_object_is_type(o, json_type_object), true, "%s: not a JSON object: '%s'", c->label, s);
        CHECK_AT(file, line, json_object_object_get_ex(o, "timestamp", &ts) && is_number(ts), false, "%s: no numeric \"timestamp\" in %s",
                 c->label, s);
        return o;
}
#define JSON(c) json_at(__FILE__, __LINE__, c)

/* o has exactly spec's keys (plus "timestamp"), with equal values. NULL, or why not. */
static const char *json_mismatch(json_object *o, json_object *spec) {
        json_object_object_foreach(spec, k, v) {
                json_object *ov;
                if (!json_object_object_get_ex(o, k, &ov))
                        return tstr("no key \"%s\"", k);
                if (!json_object_equal(ov, v))
                        return tstr("\"%s\" is %s, expected %s", k, jtext(ov), jtext(v));
        }
        json_object_object_foreach(o, k2, v2) {
                (void)v2;
                if (strcmp(k2, "timestamp") != 0 && !json_object_object_get_ex(spec, k2, NULL))
                        return tstr("unexpected key \"%s\"", k2);
        }
        return NULL;
}

HELPER json_object *expect_json_at(const char *file, int line, Client *c, const char *spec_text) {
        json_object *spec = parse_strict(spec_text);
        CHECK_AT(file, line, spec != NULL, true, "bad spec in the test: %s", spec_text);
        json_object *o = json_at(file, line, c);
        const char *why = json_mismatch(o, spec);
        CHECK_AT(file, line, why == NULL, false, "%s: got %s, expected %s (+timestamp): %s", c->label, jtext(o), spec_text, why);
        return o;
}
#define EXPECT_JSON(c, spec) expect_json_at(__FILE__, __LINE__, c, spec)

/* ---- tcpeductl ---- */

/* tcpeductl --json ARGS..., parsed; NULL (after a failed assertion) if it failed. */
#define CTL_JSON(d, ...) ctl_json_at(__FILE__, __LINE__, d, __VA_ARGS__, NULL)
HELPER json_object *ctl_json_at(const char *file, int line, Daemon *d, ...) {
        va_list ap, peek;
        va_start(ap, d);
        /* the first two arguments name the command in a failure message */
        va_copy(peek, ap);
        const char *verb = va_arg(peek, const char *);
        const char *object = verb ? va_arg(peek, const char *) : NULL;
        va_end(peek);
        const char *first = va_arg(ap, const char *);
        RunResult r;
        int k = ctl_socket_v(control_socket(d), "--json", &r, first, ap);
        va_end(ap);
        CHECK_AT(file, line, k == 0 && r.exit_code == 0, false, "tcpeductl --json %s %s: exit %d: %s", verb, object ? object : "",
                 r.exit_code, r.err ? r.err : "");
        if (k != 0 || r.exit_code != 0)
                return NULL;
        json_object *o = track_json(json_tokener_parse(r.out));
        CHECK_AT(file, line, o != NULL, false, "tcpeductl --json %s: not JSON: %s", verb, r.out);
        return o;
}
