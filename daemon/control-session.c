/* SPDX-License-Identifier: MIT */
/* Client sessions through control: session-open, -send, -recv, -close, -watch and sessions; the
 * requests that wait on a session, and what a session's news does to them and to its watcher. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "base64.h"
#include "control-internal.h"
#include "macro.h"
#include "server-type.h"

/* ---- client sessions ---- */

static int pending_new(CommandContext *ctx, PendingKind kind, Session *s, Pending **ret) {
        ControlClient *cc = ctx->client;
        if (cc->n_pending >= CONTROL_PENDING_MAX)
                return command_fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)",
                                    CONTROL_PENDING_MAX);
        Pending *p = calloc(1, sizeof(Pending));
        if (!p)
                return command_fail(ctx, CONTROL_ERROR_INTERNAL, "out of memory");
        p->client = cc;
        p->id = ctx->req->id;
        p->kind = kind;
        p->session = s;
        list_append(&cc->pending, &p->node);
        cc->n_pending++;
        *ret = p;
        return 0;
}

void pending_free(Pending *p) {
        list_remove(&p->node);
        p->client->n_pending--;
        sd_event_source_disable_unref(p->timer);
        free(p);
}

/* Answer a waiting request and forget it. Returns -1 if its client is gone. */
static int pending_reply(Pending *p, char *line) {
        ControlClient *cc = p->client;
        pending_free(p);
        return client_write(cc, line);
}

static bool may_use_session(ControlClient *cc, const Session *s) {
        return cc->admin || cc->cred.uid == s->owner;
}

static Session *find_session(CommandContext *ctx) {
        const char *id = arg_id(ctx);
        Conn *c = id ? find_conn(ctx->client->control, id, ctx) : NULL;
        if (!c)
                return NULL;
        if (!c->session) {
                command_fail(ctx, CONTROL_ERROR_NOT_FOUND, "connection %s is not a session (it belongs to server '%s')", c->id,
                             c->server->cfg.name);
                return NULL;
        }
        if (!may_use_session(ctx->client, c->session)) {
                command_fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "session %s belongs to uid %u (you are uid %u)", c->id,
                             (unsigned)c->session->owner, (unsigned)ctx->client->cred.uid);
                return NULL;
        }
        return c->session;
}

/* Bytes go out as a JSON string when they are UTF-8 text, else as base64. */
static void add_data(struct json_object *o, const uint8_t *p, size_t n) {
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)n));
        if (n == 0) {
                json_object_object_add(o, "data", json_object_new_string(""));
                return;
        }
        if (bytes_are_text(p, n)) {
                json_object_object_add(o, "data", json_object_new_string_len((const char *)p, (int)n));
                return;
        }
        char *b = malloc(base64_encoded_size(n));
        if (!b)
                return;
        size_t l = base64_encode(p, n, b);
        json_object_object_add(o, "data_base64", json_object_new_string_len(b, (int)l));
        free(b);
}

static struct json_object *session_reply_json(Control *ctl, Session *s) {
        return conn_to_json(ctl, s->conn, false);
}

static char *open_failed_reply(int64_t id, Session *s) {
        Conn *c = s->conn;
        char a[SOCKADDR_STR_MAX], msg[256];
        struct json_object *d = json_object_new_object();
        json_object_object_add(d, "id", json_object_new_string(c->id));
        json_object_object_add(d, "target", json_object_new_string(sockaddr_format(&c->peer.sa, a, sizeof(a))));
        json_object_object_add(d, "reason", json_object_new_string(c->close_reason ? c->close_reason : "failed"));
        json_object_object_add(d, "errno", json_object_new_int(s->error));
        snprintf(msg, sizeof(msg), "cannot connect to %s: %s", a, c->close_reason ? c->close_reason : "failed");
        return control_reply_error(id, CONTROL_ERROR_CONNECT_FAILED, msg, d);
}

int cmd_session_open(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Control *ctl = cc->control;
        const char *target = NULL, *bind_s = NULL, *perr = NULL;
        int64_t timeout_ms = (int64_t)SESSION_CONNECT_TIMEOUT_DEFAULT_SEC * 1000;
        bool ephemeral = false, watch = false;
        SockaddrUnion ta, ba;
        socklen_t len;
        char error[256];

        int r = control_arg_string(ctx->req->args, "target", &target);
        if (r < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                                    r == -ENOENT ? "missing argument \"target\"" : "\"target\" must be a string");
        if (sockaddr_parse(target, &ta, &len, &perr) < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "target '%s': %s (expected ADDR:PORT, IPv6 as [ADDR]:PORT, numeric)",
                                    target, perr ? perr : "invalid");
        if (sockaddr_port(&ta.sa) == 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "target '%s': port 0 cannot be connected to", target);
        r = control_arg_string(ctx->req->args, "bind", &bind_s);
        if (r == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"bind\" must be a string");
        if (bind_s && sockaddr_parse(bind_s, &ba, &len, &perr) < 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "bind address '%s': %s (expected ADDR:PORT, port 0 for any)", bind_s,
                                    perr ? perr : "invalid");
        if (bind_s && sockaddr_port(&ba.sa) != 0 && sockaddr_port(&ba.sa) < 1024 && !cc->admin)
                return command_fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "binding to port %u (below 1024) needs an admin (you are uid %u)",
                                    sockaddr_port(&ba.sa), (unsigned)cc->cred.uid);
        r = control_arg_int(ctx->req->args, "timeout_ms", &timeout_ms);
        if (r == -EBADMSG || timeout_ms < 1 || timeout_ms > (int64_t)SESSION_CONNECT_TIMEOUT_MAX_SEC * 1000)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"timeout_ms\" must be a number from 1 to %d",
                                    SESSION_CONNECT_TIMEOUT_MAX_SEC * 1000);
        if (control_arg_bool(ctx->req->args, "ephemeral", &ephemeral) == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"ephemeral\" must be true or false");
        if (control_arg_bool(ctx->req->args, "watch", &watch) == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"watch\" must be true or false");
        if (watch && cc->watching)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "this control connection already watches session %s",
                                    cc->watching->conn->id);
        if (cc->n_pending >= CONTROL_PENDING_MAX)
                return command_fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)",
                                    CONTROL_PENDING_MAX);

        Session *s;
        r = session_open(ctl->core, &ta, bind_s ? &ba : NULL, (uint64_t)timeout_ms * USEC_PER_MSEC, cc->cred.uid, cc->cred.pid,
                         watch ? cc : NULL, &s, error, sizeof(error));
        if (r == -EUSERS)
                return command_fail(ctx, CONTROL_ERROR_LIMIT, "cannot open a session: %s", error);
        if (r == -EPERM)
                return command_fail(ctx, CONTROL_ERROR_PERMISSION_DENIED, "cannot open a session: %s", error);
        if (r < 0)
                return command_fail(ctx, r == -EAFNOSUPPORT ? CONTROL_ERROR_BAD_REQUEST : CONTROL_ERROR_CONNECT_FAILED, "%s", error);
        if (s->failed) {
                /* connect() failed at once; the session is already over. */
                ctx->direct_reply = open_failed_reply(ctx->req->id, s);
                snprintf(ctx->message, sizeof(ctx->message), "session %s: %s", s->conn->id, s->conn->close_reason);
                return 1;
        }
        if (ephemeral) {
                s->opener = cc;
                cc->n_ephemeral++;
        }
        if (s->connected) {
                ctx->data = json_object_new_object();
                json_object_object_add(ctx->data, "session", session_reply_json(ctl, s));
                return 0;
        }
        Pending *p = NULL;
        (void)pending_new(ctx, PENDING_OPEN, s, &p); /* room was checked above */
        return 1;
}

static int cmd_sessions_list(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        struct json_object *arr = json_object_new_array(), *o = json_object_new_object();
        FOREACH_LIST(ctl->core, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (c->session)
                                json_object_array_add(arr, conn_to_json(ctl, c, false));
                }
        }
        json_object_object_add(o, "sessions", arr);
        json_object_object_add(o, "max_sessions", json_object_new_int64(ctl->core->session_server->cfg.max_clients));
        json_object_object_add(o, "opened", json_object_new_int64((int64_t)ctl->core->sessions_opened));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t)ctl->core->sessions_failed));
        json_object_object_add(o, "refused_limit", json_object_new_int64((int64_t)ctl->core->sessions_refused_limit));
        ctx->data = o;
        return 0;
}

int cmd_sessions(CommandContext *ctx) {
        return with_diag_budget(ctx, cmd_sessions_list);
}

static size_t send_unsent(const Session *s) {
        return conn_unsent(s->conn);
}

static struct json_object *send_result(Session *s, size_t sent) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->conn->id));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)sent));
        json_object_object_add(o, "unsent", json_object_new_int64((int64_t)send_unsent(s)));
        return o;
}

int cmd_session_send(CommandContext *ctx) {
        const char *text = NULL, *b64 = NULL;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        Conn *c = s->conn;
        int r1 = control_arg_string(ctx->req->args, "data", &text), r2 = control_arg_string(ctx->req->args, "data_base64", &b64);
        if (r1 == -EBADMSG || r2 == -EBADMSG || (text && b64) || (!text && !b64))
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "give one of \"data\" (a string) or \"data_base64\"");
        if (!s->connected || c->fd < 0 || c->shut_wr || c->closing)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s cannot send: %s", c->id,
                                    !s->connected ? "not connected"
                                    : c->fd < 0   ? "closed"
                                                  : "our side is closed (FIN sent)");
        _cleanup_(freep) uint8_t *buf = NULL;
        const uint8_t *data = (const uint8_t *)text;
        size_t len = 0;
        if (text) {
                struct json_object *v;
                json_object_object_get_ex(ctx->req->args, "data", &v);
                len = (size_t)json_object_get_string_len(v);
        } else {
                size_t bl = strlen(b64);
                buf = malloc(bl / 4 * 3 + 3);
                if (!buf)
                        return command_fail(ctx, CONTROL_ERROR_INTERNAL, "out of memory");
                ssize_t n = base64_decode(b64, bl, buf);
                if (n < 0)
                        return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"data_base64\" is not valid base64");
                data = buf;
                len = (size_t)n;
        }
        if (len == 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "nothing to send");
        /* The queue for the peer is bounded: session_buffer, plus one request. */
        if (send_unsent(s) > c->server->cfg.buffer_size)
                return command_fail(ctx, CONTROL_ERROR_LIMIT,
                                    "session %s: %zu bytes wait to be sent (session_buffer %zu): wait for the reply to the previous send",
                                    c->id, send_unsent(s), c->server->cfg.buffer_size);
        if (ctx->client->n_pending >= CONTROL_PENDING_MAX)
                return command_fail(ctx, CONTROL_ERROR_LIMIT, "too many requests waiting on sessions (at most %d per client)",
                                    CONTROL_PENDING_MAX);
        int r = conn_send(c, data, len);
        conn_mark_active(c);
        if (r < 0)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s: send failed: %s", c->id, strerror(-r));
        /* Flow control: the reply waits while more than session_buffer is queued for the peer. */
        if (s->conn && s->conn->fd >= 0 && send_unsent(s) > c->server->cfg.buffer_size) {
                Pending *p = NULL;
                if (pending_new(ctx, PENDING_SEND, s, &p) < 0)
                        return -1;
                p->sent = len;
                return 1;
        }
        ctx->data = send_result(s, len);
        return 0;
}

/* The client whose session-recv waits on this session, if any. */
static ControlClient *session_receiver(Control *ctl, const Session *s) {
        ListNode *n, *k;
        list_foreach(n, &ctl->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                list_foreach(k, &cc->pending) {
                        const Pending *p = list_entry(k, Pending, node);
                        if (p->kind == PENDING_RECV && p->session == s)
                                return cc;
                }
        }
        return NULL;
}

/* What a session-recv may take now: the number of bytes, or -1 to keep waiting. */
static ssize_t recv_ready(const Pending *p) {
        const Session *s = p->session;
        size_t max = s->conn->server->cfg.buffer_size;
        bool ended = s->peer_eof || s->closed;
        if (p->line) {
                const uint8_t *nl = byte_queue_len(&s->rx)
                                            ? memchr(byte_queue_peek(&s->rx), '\n', MIN(byte_queue_len(&s->rx), (size_t)SESSION_RECV_MAX))
                                            : NULL;
                if (nl)
                        return nl - (byte_queue_peek(&s->rx)) + 1;
                if (ended || byte_queue_len(&s->rx) >= MIN(max, (size_t)SESSION_RECV_MAX))
                        return (ssize_t)MIN(byte_queue_len(&s->rx), (size_t)SESSION_RECV_MAX); /* no newline will come, or none fits */
                return -1;
        }
        if (p->bytes) {
                if (byte_queue_len(&s->rx) >= p->bytes)
                        return (ssize_t)p->bytes;
                return ended ? (ssize_t)byte_queue_len(&s->rx) : -1;
        }
        if (byte_queue_len(&s->rx))
                return (ssize_t)MIN(byte_queue_len(&s->rx), (size_t)SESSION_RECV_MAX);
        return ended ? 0 : -1;
}

static char *recv_reply(Pending *p, size_t n, bool timed_out) {
        Session *s = p->session;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->conn->id));
        add_data(o, byte_queue_peek(&s->rx), n);
        session_consume(s, n);
        json_object_object_add(o, "eof", json_object_new_boolean((s->peer_eof || s->closed) && byte_queue_len(&s->rx) == 0));
        json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
        json_object_object_add(o, "buffered", json_object_new_int64((int64_t)byte_queue_len(&s->rx)));
        return control_reply_ok(p->id, o);
}

static int recv_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        (void)source;
        (void)usec;
        (void)pending_reply(p, recv_reply(p, 0, true));
        return 0;
}

int cmd_session_recv(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        int64_t timeout_ms = 5000, bytes = 0;
        bool line = false;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        int r = control_arg_int(ctx->req->args, "timeout_ms", &timeout_ms);
        if (r == -EBADMSG || timeout_ms < 0 || timeout_ms > SESSION_RECV_TIMEOUT_MAX_MS)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"timeout_ms\" must be a number from 0 to %ld",
                                    SESSION_RECV_TIMEOUT_MAX_MS);
        r = control_arg_int(ctx->req->args, "bytes", &bytes);
        size_t max = MIN(s->conn->server->cfg.buffer_size, (size_t)SESSION_RECV_MAX);
        if (r == -EBADMSG || bytes < 0 || (uint64_t)bytes > max)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST,
                                    "\"bytes\" must be a number from 1 to %zu (session_buffer, at most 1 MiB)", max);
        if (control_arg_bool(ctx->req->args, "line", &line) == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"line\" must be true or false");
        if (line && bytes)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "give \"bytes\" or \"line\", not both");
        if (s->watcher)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is watched: its data goes to the watcher (pid %d)",
                                    s->conn->id, (int)s->watcher->cred.pid);
        /* Only one receive at a time may wait: the data would otherwise go to either. */
        ControlClient *waiting = session_receiver(ctl, s);
        if (waiting)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "a receive on session %s is already waiting (pid %d)", s->conn->id,
                                    (int)waiting->cred.pid);
        Pending *p = NULL;
        if (pending_new(ctx, PENDING_RECV, s, &p) < 0)
                return -1;
        p->bytes = (size_t)bytes;
        p->line = line;
        ssize_t ready = recv_ready(p);
        if (ready >= 0 || timeout_ms == 0) {
                ctx->direct_reply = recv_reply(p, ready >= 0 ? (size_t)ready : 0, ready < 0);
                pending_free(p);
                return 1;
        }
        if (sd_event_add_time_relative(ctl->core->event, &p->timer, CLOCK_MONOTONIC, (uint64_t)timeout_ms * USEC_PER_MSEC, USEC_PER_MSEC,
                                       recv_timeout, p) < 0) {
                pending_free(p);
                return command_fail(ctx, CONTROL_ERROR_INTERNAL, "no timer");
        }
        return 1;
}

int cmd_session_close(CommandContext *ctx) {
        Control *ctl = ctx->client->control;
        const char *how = "close";
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        Conn *c = s->conn;
        if (control_arg_string(ctx->req->args, "how", &how) == -EBADMSG)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be a string");
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0)
                return command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"how\" must be close, shutdown or reset, not '%s'", how);
        if (c->fd < 0)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already closed (%s in the kernel)", c->id,
                                    tcp_state_to_string(c->state));
        bool closing = c->closing || c->shut_wr;
        if (strcmp(how, "reset") == 0)
                conn_abort(c, "reset by tcpeductl");
        else if (closing)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already closing (%s)", c->id,
                                    tcp_state_to_string(c->state));
        else if (strcmp(how, "shutdown") == 0)
                conn_half_close(c, "half-closed by tcpeductl");
        else
                conn_close(c, "closed by tcpeductl");
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "how", json_object_new_string(how));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        (void)ctl;
        ctx->data = o;
        return 0;
}

static void watch_attach(ControlClient *cc, Session *s) {
        s->watcher = cc;
        cc->watching = s;
        cc->control->n_watchers++;
}

static void watch_detach(Session *s) {
        ControlClient *cc = s->watcher;
        if (!cc)
                return;
        cc->watching = NULL;
        s->watcher = NULL;
        cc->control->n_watchers--;
}

int cmd_session_watch(CommandContext *ctx) {
        ControlClient *cc = ctx->client;
        Control *ctl = cc->control;
        Session *s = find_session(ctx);
        if (!s)
                return -1;
        if (s->watcher == cc)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "you already watch session %s", s->conn->id);
        if (s->watcher)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "session %s is already watched (pid %d)", s->conn->id,
                                    (int)s->watcher->cred.pid);
        if (cc->watching)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "this control connection already watches session %s",
                                    cc->watching->conn->id);
        ControlClient *waiting = session_receiver(ctl, s);
        if (waiting)
                return command_fail(ctx, CONTROL_ERROR_CONFLICT, "a receive on session %s is waiting (pid %d)", s->conn->id,
                                    (int)waiting->cred.pid);
        watch_attach(cc, s);
        ctx->data = json_object_new_object();
        json_object_object_add(ctx->data, "session", conn_to_json(ctl, s->conn, false));
        ctx->after_reply = true; /* buffered data follows the reply */
        return 0;
}

/* Watch events: the session's own, in the order they happen. */
static int watch_event(Session *s, const char *name, const char *reason, const uint8_t *data, size_t n) {
        ControlClient *cc = s->watcher;
        Conn *c = s->conn;
        struct json_object *ev = json_object_new_object();
        json_object_object_add(ev, "time_usec", json_object_new_int64((int64_t)core_now(cc->control->core, CLOCK_REALTIME)));
        json_object_object_add(ev, "event", json_object_new_string(name));
        json_object_object_add(ev, "conn_id", json_object_new_string(c->id));
        json_object_object_add(ev, "role", json_object_new_string("client"));
        json_object_object_add(ev, "state", json_object_new_string(tcp_state_to_string(c->state)));
        if (reason)
                json_object_object_add(ev, "reason", json_object_new_string(reason));
        if (data)
                add_data(ev, data, n);
        if (strcmp(name, "disconnected") == 0 || strcmp(name, "end") == 0) {
                json_object_object_add(ev, "bytes_in", json_object_new_int64((int64_t)c->bytes_in));
                json_object_object_add(ev, "bytes_out", json_object_new_int64((int64_t)c->bytes_out));
        }
        return client_write(cc, control_event_line(ev));
}

void session_watch_pump(Control *ctl, Session *s) {
        (void)ctl;
        while (s->watcher && byte_queue_len(&s->rx) > 0 && !s->watcher->doomed) {
                ControlClient *cc = s->watcher;
                if (byte_queue_len(&cc->out) >= CONTROL_OUTPUT_PAUSE)
                        return; /* resumed when its output drains; meanwhile the session buffer fills */
                size_t n = MIN(byte_queue_len(&s->rx), (size_t)SESSION_DATA_EVENT_MAX);
                if (watch_event(s, "data", NULL, byte_queue_peek(&s->rx), n) < 0)
                        return;
                session_consume(s, n);
        }
}

/* Requests waiting on s that ev answers: a session-open that connected or failed, a session-recv
 * whose data is there, a session-send whose data went out. */
static void answer_pending(Control *ctl, Session *s, SessionEvent ev) {
        ListNode *n, *tmp;
        list_foreach_safe (n, tmp, &ctl->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                ListNode *k, *ktmp;
                if (cc->doomed)
                        continue;
                list_foreach_safe (k, ktmp, &cc->pending) {
                        Pending *p = list_entry(k, Pending, node);
                        if (p->session != s)
                                continue;
                        char *line = NULL;
                        if (p->kind == PENDING_OPEN) {
                                if (ev == SESSION_EVENT_CONNECTED) {
                                        struct json_object *d = json_object_new_object();
                                        json_object_object_add(d, "session", session_reply_json(ctl, s));
                                        line = control_reply_ok(p->id, d);
                                } else if (ev == SESSION_EVENT_FAILED || ev == SESSION_EVENT_DISCONNECTED || ev == SESSION_EVENT_GONE)
                                        line = open_failed_reply(p->id, s);
                        } else if (p->kind == PENDING_RECV) {
                                if (ev == SESSION_EVENT_GONE)
                                        line = control_reply_error(p->id, CONTROL_ERROR_NOT_FOUND, "the session ended", NULL);
                                else {
                                        ssize_t ready = recv_ready(p);
                                        if (ready >= 0)
                                                line = recv_reply(p, (size_t)ready, false);
                                }
                        } else if (p->kind == PENDING_SEND) {
                                if (ev == SESSION_EVENT_DRAINED || ev == SESSION_EVENT_DISCONNECTED || ev == SESSION_EVENT_GONE)
                                        line = s->conn->fd >= 0 || ev == SESSION_EVENT_DRAINED
                                                       ? control_reply_ok(p->id, send_result(s, p->sent))
                                                       : control_reply_error(p->id, CONTROL_ERROR_CONFLICT,
                                                                             "the session closed before its data was sent", NULL);
                        }
                        if (line && pending_reply(p, line) < 0)
                                break;
                }
        }
}

void control_session_event(void *userdata, Session *s, SessionEvent ev) {
        Control *ctl = userdata;

        if (ev == SESSION_EVENT_OPENING) {
                if (s->watcher)
                        watch_attach(s->watcher, s); /* from the first transition on */
                return;
        }
        if (ev == SESSION_EVENT_NOT_OPENED) {
                watch_detach(s);
                return;
        }

        ctl->event_depth++;
        if (s->watcher && !s->watcher->doomed) {
                Conn *c = s->conn;
                switch (ev) {
                case SESSION_EVENT_CONNECTED:
                        (void)watch_event(s, "connected", NULL, NULL, 0);
                        break;
                case SESSION_EVENT_FAILED:
                        (void)watch_event(s, "error", c->close_reason, NULL, 0);
                        break;
                case SESSION_EVENT_DATA:
                        session_watch_pump(ctl, s);
                        break;
                case SESSION_EVENT_PEER_EOF:
                        session_watch_pump(ctl, s);
                        if (s->watcher)
                                (void)watch_event(s, "peer-closed", "FIN received from the peer", NULL, 0);
                        break;
                case SESSION_EVENT_DISCONNECTED:
                        session_watch_pump(ctl, s);
                        if (s->watcher)
                                (void)watch_event(s, "disconnected", c->close_reason, NULL, 0);
                        break;
                case SESSION_EVENT_GONE:
                        (void)watch_event(s, "end", c->close_reason, NULL, 0);
                        break;
                default:
                        break;
                }
        }
        if (ev == SESSION_EVENT_GONE) {
                watch_detach(s);
                if (s->opener) {
                        s->opener->n_ephemeral--;
                        s->opener = NULL;
                }
        }
        answer_pending(ctl, s, ev);
        ctl->event_depth--;
}
