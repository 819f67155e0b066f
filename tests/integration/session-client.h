/* SPDX-License-Identifier: MIT */
#pragma once

/* A raw client of the control protocol for the session tests: JSON lines over the daemon's Unix
 * socket, requests matched to their replies by "id", {"event":{...}} lines kept in arrival order
 * (replies of session commands may be deferred and events of a watched session come in between).
 * Also: control connections made as another uid, test-side TCP listeners, commands undone at
 * teardown, and base64. Every helper is static; shared by test-session*.c. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness-private.h"
#include "journal-check.h"
#include "line-client.h"
#include "test-util.h"

#define MID_CONNECT_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a13"
#define MID_CONTROL_ENTRY "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0e"
#define NOBODY 65534
#define MAX_CTLS 16
#define MAX_UNDO 8

/* ---- what teardown undoes: control connections and commands (routes, nft tables) ---- */

typedef struct Ctl {
        int fd;
        char label[48];
        char *buf; /* received bytes not yet split into lines */
        size_t len, cap;
        json_object **q; /* messages received and not yet taken, in arrival order */
        size_t nq, capq;
        int64_t next_id;
} Ctl;

static Ctl *ctls[MAX_CTLS];
static unsigned n_ctls;
static const char *const *undo[MAX_UNDO];
static unsigned n_undo;
static struct {
        void (*fn)(void *);
        void *arg;
} deferred[8]; /* functions run first at teardown (stop a thread, say) */
static unsigned n_deferred;
static int own_fds[256]; /* the test's own sockets (listeners, accepted peers) */
static unsigned n_own_fds;

/* malloc'ed memory, freed at teardown by the harness */
static void *keep(void *p) {
        p = track_alloc(p);
        if (!p)
                abort();
        return p;
}

HELPER int own_fd(int fd) {
        if (fd >= 0 && n_own_fds < sizeof(own_fds) / sizeof(own_fds[0]))
                own_fds[n_own_fds++] = fd;
        return fd;
}

HELPER void fd_close(int fd) {
        for (unsigned i = 0; i < n_own_fds; i++)
                if (own_fds[i] == fd) {
                        own_fds[i] = own_fds[--n_own_fds];
                        break;
                }
        if (fd >= 0)
                close(fd);
}

static void ctl_free(Ctl *c) {
        if (c->fd >= 0)
                close(c->fd);
        for (size_t i = 0; i < c->nq; i++)
                json_object_put(c->q[i]);
        free(c->q);
        free(c->buf);
        free(c);
}

static void s_setup(void) {
        t_setup();
}

/* Call fn(arg) at teardown, before anything else is released. */
HELPER void defer_fn(void (*fn)(void *), void *arg) {
        if (n_deferred < sizeof(deferred) / sizeof(deferred[0])) {
                deferred[n_deferred].fn = fn;
                deferred[n_deferred++].arg = arg;
        }
}

static void s_teardown(void) {
        while (n_deferred > 0) {
                n_deferred--;
                deferred[n_deferred].fn(deferred[n_deferred].arg);
        }
        /* Undo in reverse order, even after a failed fatal assertion. */
        while (n_undo > 0) {
                RunResult r;
                const char *const *argv = undo[--n_undo];
                if (run_capture(argv, 10000, &r) < 0 || r.exit_code != 0)
                        printf("\n    cleanup: %s %s failed (exit %d): %s", argv[0], argv[1], r.exit_code, r.err ? r.err : "");
        }
        for (unsigned i = 0; i < n_ctls; i++)
                ctl_free(ctls[i]);
        n_ctls = 0;
        for (unsigned i = 0; i < n_own_fds; i++)
                close(own_fds[i]);
        n_own_fds = 0;
        t_teardown();
}

#define SESSION_SUITE(name, tests)                                                                                                         \
        { name, harness_suite_init, harness_suite_cleanup, s_setup, s_teardown, tests }

/* Run this command (NULL-terminated arguments) at teardown. */
HELPER void defer_command(const char *arg, ...) __attribute__((sentinel));
HELPER void defer_command(const char *arg, ...) {
        const char **argv = keep(calloc(32, sizeof(char *)));
        size_t n = 0;
        va_list ap;
        va_start(ap, arg);
        for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
                argv[n++] = tstr("%s", a);
        va_end(ap);
        if (n_undo < MAX_UNDO)
                undo[n_undo++] = argv;
}

/* Run a program; its exit code, or -1 when it could not run. Output in *r. */
HELPER int run_prog(RunResult *r, const char *const *argv) {
        if (run_capture(argv, 15000, r) < 0)
                return -1;
        return r->exit_code;
}

/* ---- JSON values ---- */

HELPER json_object *jobj(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

HELPER bool jhas(json_object *o, const char *key) {
        return o && json_object_object_get_ex(o, key, NULL);
}

/* An integer member, or -999999 when absent or not an integer. */
HELPER long long jint(json_object *o, const char *key) {
        json_object *v = jobj(o, key);
        return v && json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : -999999;
}

/* 1 true, 0 false, -1 absent or not a boolean. */
HELPER int jbool(json_object *o, const char *key) {
        json_object *v = jobj(o, key);
        return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

/* The member is present and null. */
HELPER bool jnull(json_object *o, const char *key) {
        return o && json_object_object_get_ex(o, key, NULL) && jobj(o, key) == NULL;
}

/* ---- base64 (RFC 4648, with padding) ---- */

HELPER char *b64_encode(const uint8_t *p, size_t n) {
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                abort();
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                *o++ = abc[v >> 18 & 63];
                *o++ = abc[v >> 12 & 63];
                *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? abc[v & 63] : '=';
        }
        *o = 0;
        return keep(out);
}

static int b64_value(char ch) {
        if (ch >= 'A' && ch <= 'Z')
                return ch - 'A';
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a' + 26;
        if (ch >= '0' && ch <= '9')
                return ch - '0' + 52;
        return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Decode into out (room for len / 4 * 3 bytes): the number of bytes, or -1 if s is not base64. */
HELPER ssize_t b64_decode(const char *s, size_t len, uint8_t *out) {
        size_t n = 0;
        if (len % 4)
                return -1;
        for (size_t i = 0; i < len; i += 4) {
                int v[4], pad = 0;
                for (int k = 0; k < 4; k++) {
                        if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                                v[k] = 0;
                                pad++;
                        } else if (pad || (v[k] = b64_value(s[i + k])) < 0)
                                return -1;
                }
                uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
                out[n++] = (uint8_t)(w >> 16);
                if (pad < 2)
                        out[n++] = (uint8_t)(w >> 8);
                if (pad < 1)
                        out[n++] = (uint8_t)w;
        }
        return (ssize_t)n;
}

/* ---- control connections ---- */

static Ctl *ctl_register(int fd, const char *label) {
        Ctl *c = calloc(1, sizeof(Ctl));
        if (!c || n_ctls >= MAX_CTLS)
                abort();
        c->fd = fd;
        c->next_id = 1;
        snprintf(c->label, sizeof(c->label), "%s", label);
        ctls[n_ctls++] = c;
        return c;
}

/* The next line, parsed; NULL and *err (-ETIMEDOUT, -ENODATA at EOF, -EBADMSG not JSON, -errno). */
static json_object *ctl_read(Ctl *c, int timeout_ms, int *err) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
                if (nl) {
                        size_t n = (size_t)(nl - c->buf);
                        json_object *o = NULL;
                        struct json_tokener *tok = json_tokener_new_ex(64);
                        if (!tok)
                                abort();
                        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
                        o = json_tokener_parse_ex(tok, c->buf, (int)n);
                        if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != n ||
                            !json_object_is_type(o, json_type_object)) {
                                printf("\n    %s: not a JSON object: '%.*s'", c->label, (int)MIN_(n, 300), c->buf);
                                json_object_put(o);
                                o = NULL;
                                *err = -EBADMSG;
                        }
                        json_tokener_free(tok);
                        memmove(c->buf, nl + 1, c->len - n - 1);
                        c->len -= n + 1;
                        return o;
                }
                if (c->cap - c->len < 65536) {
                        size_t cap = c->cap ? c->cap * 2 : 262144;
                        char *b = realloc(c->buf, cap);
                        if (!b)
                                abort();
                        c->buf = b;
                        c->cap = cap;
                }
                ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
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
                int left = remaining_ms(deadline);
                if (left == 0) {
                        *err = -ETIMEDOUT;
                        return NULL;
                }
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                (void)poll(&p, 1, left);
        }
}

static void ctl_queue(Ctl *c, json_object *o) {
        if (c->nq == c->capq) {
                size_t cap = c->capq ? c->capq * 2 : 32;
                json_object **q = realloc(c->q, cap * sizeof(*q));
                if (!q)
                        abort();
                c->q = q;
                c->capq = cap;
        }
        c->q[c->nq++] = o;
}

static json_object *ctl_take(Ctl *c, size_t i) {
        json_object *o = c->q[i];
        memmove(c->q + i, c->q + i + 1, (c->nq - i - 1) * sizeof(*c->q));
        c->nq--;
        return track_json(o);
}

static Ctl *ctl_greeted_at(const char *file, int line, int fd, const char *label) {
        Ctl *c = ctl_register(fd, label);
        int err = 0;
        json_object *g = ctl_read(c, IO_TIMEOUT_MS, &err);
        track_json(g);
        CHECK_AT(file, line, g && jint(g, "protocol") == 1 && jstr(g, "tcpedu") && strcmp(jstr(g, "tcpedu"), "control") == 0, true,
                 "%s: greeting %s (%s)", label, jtext(g), strerror(-err));
        return c;
}

HELPER Ctl *ctl_open_at(const char *file, int line, Daemon *d, const char *label) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_socket(d));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_AT(file, line, fd >= 0, true, "socket: %m");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                CHECK_AT(file, line, false, true, "%s: connect %s: %s", label, sa.sun_path, strerror(e));
        }
        return ctl_greeted_at(file, line, fd, label);
}
#define CTL_OPEN(d, label) ctl_open_at(__FILE__, __LINE__, d, label)

/* Let other users reach the daemon's control socket: its directory (0700 from mkdtemp) opened. */
HELPER void open_up_dir(Daemon *d) {
        (void)chmod(d->dir, 0755);
}

/* A control connection whose peer credentials are uid/gid: a child drops to them, connects (the
 * daemon takes SO_PEERCRED at connect time) and hands the socket over with SCM_RIGHTS. */
HELPER Ctl *ctl_open_as_at(const char *file, int line, Daemon *d, uid_t uid, gid_t gid, const char *label) {
        int sp[2];
        CHECK_AT(file, line, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) == 0, true, "socketpair: %m");
        const char *path = control_socket(d);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                close(sp[0]);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
                gid_t none[1];
                if (setgroups(0, none) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(10);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        _exit(11);
                char dummy = 'x', cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
                _exit(sendmsg(sp[1], &mh, 0) == 1 ? 0 : 12);
        }
        close(sp[1]);
        CHECK_AT(file, line, pid > 0, true, "fork: %m");
        int status = 0;
        (void)waitpid(pid, &status, 0);
        int fd = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                char dummy, cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                if (recvmsg(sp[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1) {
                        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                        if (cm && cm->cmsg_type == SCM_RIGHTS)
                                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
                }
        }
        close(sp[0]);
        CHECK_AT(file, line, fd >= 0, true, "%s: could not connect to %s as uid %u (child status %d)", label, path, (unsigned)uid, status);
        return ctl_greeted_at(file, line, fd, label);
}
#define CTL_OPEN_AS(d, uid, gid, label) ctl_open_as_at(__FILE__, __LINE__, d, uid, gid, label)

/* Close a control connection (the daemon sees EOF). */
HELPER void ctl_close(Ctl *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

/* Send a request; args is a JSON object's text (J() is handy) or NULL. Returns its id. */
HELPER int64_t ctl_send_at(const char *file, int line, Ctl *c, const char *command, const char *args) {
        int64_t id = c->next_id++;
        const char *req =
                tstr("{\"id\":%lld,\"command\":\"%s\"%s%s}\n", (long long)id, command, args ? ",\"args\":" : "", args ? args : "");
        int r = send_all(c->fd, req, strlen(req), IO_TIMEOUT_MS);
        CHECK_AT(file, line, r == 0, true, "%s: sending %s: %s", c->label, command, strerror(-r));
        return id;
}
#define CTL_SEND(c, command, args) ctl_send_at(__FILE__, __LINE__, c, command, args)

/* The reply to request id (events that come first are kept for ctl_event). Fatal if none comes. */
HELPER json_object *ctl_reply_at(const char *file, int line, Ctl *c, int64_t id, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                for (size_t i = 0; i < c->nq; i++) {
                        json_object *v = jobj(c->q[i], "id");
                        if (v && json_object_is_type(v, json_type_int) && json_object_get_int64(v) == id)
                                return ctl_take(c, i);
                }
                int err = 0;
                json_object *o = ctl_read(c, remaining_ms(deadline), &err);
                CHECK_AT(file, line, o != NULL, true, "%s: no reply to request %lld: %s", c->label, (long long)id,
                         err == -ETIMEDOUT ? "timed out"
                         : err == -ENODATA ? "the daemon closed the connection"
                                           : strerror(-err));
                ctl_queue(c, o);
        }
}
#define CTL_REPLY(c, id, timeout_ms) ctl_reply_at(__FILE__, __LINE__, c, id, timeout_ms)

/* Request and reply. */
HELPER json_object *ctl_call_at(const char *file, int line, Ctl *c, const char *command, const char *args, int timeout_ms) {
        return ctl_reply_at(file, line, c, ctl_send_at(file, line, c, command, args), timeout_ms);
}
#define CALL(c, command, args) ctl_call_at(__FILE__, __LINE__, c, command, args, IO_TIMEOUT_MS)
#define CALL_T(c, command, args, timeout_ms) ctl_call_at(__FILE__, __LINE__, c, command, args, timeout_ms)

/* A successful reply's data (fatal otherwise). */
HELPER json_object *ok_at(const char *file, int line, json_object *reply) {
        CHECK_AT(file, line, jbool(reply, "ok") == 1 && jobj(reply, "data"), true, "expected success, got %s", jtext(reply));
        return jobj(reply, "data");
}
#define OK(reply) ok_at(__FILE__, __LINE__, reply)

/* A failed reply with this code: its error object (fatal when it is not an error). */
HELPER json_object *err_at(const char *file, int line, json_object *reply, const char *code) {
        json_object *e = jobj(reply, "error");
        CHECK_AT(file, line, jbool(reply, "ok") == 0 && e, true, "expected error %s, got %s", code, jtext(reply));
        CHECK_AT(file, line, jstr(e, "code") && strcmp(jstr(e, "code"), code) == 0, false, "expected error %s, got %s", code, jtext(reply));
        return e;
}
#define ERR(reply, code) err_at(__FILE__, __LINE__, reply, code)

/* The next event's inner object, or NULL after timeout_ms (replies met on the way are kept). */
HELPER json_object *ctl_event_within(Ctl *c, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                for (size_t i = 0; i < c->nq; i++)
                        if (jobj(c->q[i], "event"))
                                return jobj(ctl_take(c, i), "event");
                int err = 0;
                json_object *o = ctl_read(c, remaining_ms(deadline), &err);
                if (!o)
                        return NULL;
                ctl_queue(c, o);
        }
}

HELPER json_object *ctl_event_at(const char *file, int line, Ctl *c, int timeout_ms) {
        json_object *e = ctl_event_within(c, timeout_ms);
        CHECK_AT(file, line, e != NULL, true, "%s: no event within %d ms", c->label, timeout_ms);
        return e;
}
#define EVENT(c) ctl_event_at(__FILE__, __LINE__, c, IO_TIMEOUT_MS)

/* Nothing received and nothing waiting (call after a reply that follows what might have come). */
HELPER void ctl_expect_quiet_at(const char *file, int line, Ctl *c) {
        int err = 0;
        json_object *o = c->nq ? c->q[0] : ctl_read(c, 0, &err);
        if (o && !c->nq)
                ctl_queue(c, o);
        CHECK_AT(file, line, o == NULL, false, "%s: unexpected message %s", c->label, jtext(o));
}
#define CTL_QUIET(c) ctl_expect_quiet_at(__FILE__, __LINE__, c)

/* ---- sessions ---- */

/* session-open target with extra args (a JSON fragment like "\"watch\":true", or NULL): the reply. */
HELPER json_object *open_reply_at(const char *file, int line, Ctl *c, const char *target, const char *extra, int timeout_ms) {
        return ctl_call_at(file, line, c, "session-open", tstr("{\"target\":\"%s\"%s%s}", target, extra ? "," : "", extra ? extra : ""),
                           timeout_ms);
}
#define OPEN_REPLY(c, target, extra) open_reply_at(__FILE__, __LINE__, c, target, extra, 15000)

/* An established session: the CONN object of the reply. */
HELPER json_object *open_session_at(const char *file, int line, Ctl *c, const char *target, const char *extra) {
        json_object *data = ok_at(file, line, open_reply_at(file, line, c, target, extra, 15000));
        json_object *s = jobj(data, "session");
        CHECK_AT(file, line, s && is_conn_id(jstr(s, "id")), true, "session-open: %s", jtext(data));
        return s;
}
#define OPEN(c, target, extra) open_session_at(__FILE__, __LINE__, c, target, extra)

HELPER const char *id_arg(const char *id, const char *extra) {
        return tstr("{\"id\":\"%s\"%s%s}", id, extra ? "," : "", extra ? extra : "");
}

/* session-recv with extra args: the reply. */
#define RECV_REPLY(c, id, extra) CALL_T(c, "session-recv", id_arg(id, extra), 15000)
#define RECV(c, id, extra) OK(RECV_REPLY(c, id, extra))
#define SEND_TEXT(c, id, text) OK(CALL_T(c, "session-send", id_arg(id, tstr("\"data\":%s", jq(text))), 15000))

/* The data of a recv reply or data event: "data" as is, or "data_base64" decoded; *len set. */
HELPER uint8_t *data_of(json_object *o, size_t *len) {
        const char *t = jstr(o, "data"), *b = jstr(o, "data_base64");
        *len = 0;
        if (t) {
                *len = (size_t)json_object_get_string_len(jobj(o, "data"));
                uint8_t *p = keep(malloc(*len + 1));
                memcpy(p, t, *len);
                p[*len] = 0;
                return p;
        }
        if (!b)
                return NULL;
        size_t bl = strlen(b);
        uint8_t *p = keep(malloc(bl / 4 * 3 + 1));
        ssize_t n = b64_decode(b, bl, p);
        if (n < 0)
                return NULL;
        *len = (size_t)n;
        return p;
}

/* `conn ID` through the protocol: the object, NULL (not-found) once the session is gone. */
HELPER json_object *conn_info_at(const char *file, int line, Ctl *c, const char *id) {
        json_object *r = ctl_call_at(file, line, c, "conn", tstr("{\"id\":\"%s\"}", id), IO_TIMEOUT_MS);
        if (jbool(r, "ok") == 1)
                return jobj(r, "data");
        CHECK_AT(file, line, jstr(jobj(r, "error"), "code") && strcmp(jstr(jobj(r, "error"), "code"), "not-found") == 0, false,
                 "conn %s: %s", id, jtext(r));
        return NULL;
}
#define CONN_INFO(c, id) conn_info_at(__FILE__, __LINE__, c, id)

/* Poll `conn ID` until its state is `state` (NULL: until the session is gone). */
HELPER json_object *wait_state_at(const char *file, int line, Ctl *c, const char *id, const char *state, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        json_object *o;
        for (;;) {
                o = conn_info_at(file, line, c, id);
                if (state ? o && jstr(o, "state") && strcmp(jstr(o, "state"), state) == 0 : o == NULL)
                        return o;
                if (remaining_ms(deadline) == 0)
                        break;
                (void)poll(NULL, 0, 20);
        }
        CHECK_AT(file, line, false, false, "session %s: not %s within %d ms: %s", id, state ? state : "gone", timeout_ms, jtext(o));
        return o;
}
#define WAIT_STATE(c, id, state) wait_state_at(__FILE__, __LINE__, c, id, state, 10000)

/* ---- the test's own TCP endpoints on loopback ---- */

/* A listening socket on 127.0.0.1, port chosen by the kernel; its address in *a. */
HELPER int listener_at(const char *file, int line, int backlog, Addr *a) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_AT(file, line, fd >= 0, true, "socket: %m");
        Addr any;
        (void)addr_parse_ip("127.0.0.1", 0, &any);
        socklen_t len = sizeof(*a);
        bool ok = bind(fd, &any.sa, sizeof(any.in)) == 0 && listen(fd, backlog) == 0 && getsockname(fd, &a->sa, &len) == 0;
        int e = errno;
        if (!ok)
                close(fd);
        CHECK_AT(file, line, ok, true, "listener: %s", strerror(e));
        return own_fd(fd);
}
#define LISTENER(backlog, a) listener_at(__FILE__, __LINE__, backlog, a)

/* accept() within the timeout: a non-blocking socket, its peer address in peer. */
HELPER int accept_at(const char *file, int line, int lfd, char *peer, size_t size) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        CHECK_AT(file, line, poll(&p, 1, IO_TIMEOUT_MS) == 1, true, "nothing to accept within %d ms", IO_TIMEOUT_MS);
        Addr a;
        socklen_t len = sizeof(a);
        int fd = accept4(lfd, &a.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        CHECK_AT(file, line, fd >= 0, true, "accept: %m");
        own_fd(fd);
        if (peer)
                addr_format(&a, peer, size);
        return fd;
}
#define ACCEPT(lfd, peer) accept_at(__FILE__, __LINE__, lfd, peer, sizeof(peer))
