/* SPDX-License-Identifier: MIT */
/* Client sessions through the raw control protocol against a real tcpedud: a session to the
 * daemon's own echo server and the journal records of both ends of that one TCP connection; a
 * session to the test's own socket (passive close held in CLOSE_WAIT, byte-exact data both ways,
 * binary data); connects that fail (refused, timeout, no route, ICMP host unreachable); watching a
 * session; the bounded receive buffer under a 100 MiB flood; ownership across users; limits and
 * the idle timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "session-client.h"

#define ELEMENTSOF_(x) (sizeof(x) / sizeof((x)[0]))

/* ---- the journal records of a session ---- */

typedef struct SessionRef {
        Daemon *d;
        const char *id, *peer, *local;
        unsigned owner;
} SessionRef;

static bool is_digits(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* field == value; value NULL: the field is absent. */
static void expect_field_at(const char *file, int line, json_object *e, const char *field, const char *value) {
        const char *v = jget(e, field);
        if (value)
                CHECK_AT(file, line, v && strcmp(v, value) == 0, false, "%s: %s is '%s', expected '%s'", jget(e, "MESSAGE"), field,
                         v ? v : "(absent)", value);
        else
                CHECK_AT(file, line, v == NULL, false, "%s: %s is '%s', expected it absent", jget(e, "MESSAGE"), field, v);
}
#define EXPECT_FIELD(e, field, value) expect_field_at(__FILE__, __LINE__, e, field, value)

/* What every entry about a session carries. */
static void check_session_entry_at(const char *file, int line, const SessionRef *r, json_object *e, const char *mid, const char *event) {
        expect_field_at(file, line, e, "SYSLOG_IDENTIFIER", "tcpedud");
        expect_field_at(file, line, e, "MESSAGE_ID", mid);
        expect_field_at(file, line, e, "TCPEDU_EVENT", event);
        expect_field_at(file, line, e, "TCPEDU_ROLE", "client");
        expect_field_at(file, line, e, "TCPEDU_CONN_ID", r->id);
        expect_field_at(file, line, e, "TCPEDU_PEER", r->peer);
        expect_field_at(file, line, e, "TCPEDU_LOCAL", r->local);
        expect_field_at(file, line, e, "TCPEDU_SESSION_OWNER_UID", tstr("%u", r->owner));
        expect_field_at(file, line, e, "TCPEDU_SERVER", NULL);
        expect_field_at(file, line, e, "TCPEDU_SERVER_TYPE", NULL);
}

static void check_session_transition_at(const char *file, int line, const SessionRef *r, json_object *e, const char *from, const char *to) {
        check_session_entry_at(file, line, r, e, MID_TRANSITION, "transition");
        expect_field_at(file, line, e, "MESSAGE", tstr("Session %s: %s -> %s", r->id, from, to));
        expect_field_at(file, line, e, "TCPEDU_OLD_STATE", from);
        expect_field_at(file, line, e, "TCPEDU_NEW_STATE", to);
        expect_field_at(file, line, e, "PRIORITY", "6");
        const char *dur = jget(e, "TCPEDU_STATE_DURATION_USEC");
        CHECK_AT(file, line, is_digits(dur), false, "%s -> %s: TCPEDU_STATE_DURATION_USEC '%s'", from, to, dur ? dur : "(absent)");
        const char *mono = jget(e, "TCPEDU_MONOTONIC_USEC");
        CHECK_AT(file, line, is_digits(mono), false, "%s -> %s: TCPEDU_MONOTONIC_USEC '%s'", from, to, mono ? mono : "(absent)");
        /* the reason is the event of the edge in the table, whatever set the path going */
        const char *event = edge_event(from, to);
        CHECK_AT(file, line, event != NULL, false, "%s -> %s is no edge of the table", from, to);
        if (event)
                expect_field_at(file, line, e, "TCPEDU_REASON", event);
}
#define CHECK_TRANSITION(r, e, from, to) check_session_transition_at(__FILE__, __LINE__, r, e, from, to)

/* The transitions of a connection, once there are at least n (waits up to 10 s). */
static JList *transitions(Daemon *d, const char *id, size_t n) {
        JList *l = journal_wait(n, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id),
                                "TCPEDU_EVENT=transition", NULL);
        if (l->n != n)
                journal_print(journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id), NULL),
                              "entries of the connection");
        return l;
}

static JList *entries(Daemon *d, const char *id, const char *event, size_t n) {
        return journal_wait(n, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id),
                            tstr("TCPEDU_EVENT=%s", event), NULL);
}

/* The path of transitions "A>B>C" as journal order gives it. */
static const char *path_of(const JList *l) {
        const char *s = l->n ? jget(l->e[0], "TCPEDU_OLD_STATE") : "";
        for (size_t i = 0; i < l->n; i++)
                s = tstr("%s>%s", s, jget(l->e[i], "TCPEDU_NEW_STATE"));
        return s;
}

/* A step the daemon may see from the kernel or infer on loopback, where the next state can arrive
 * before it looks: kernel (kernel_state, tcp_info), or inferred without a kernel state. */
static void expect_kernel_or_inferred_at(const char *file, int line, json_object *e, const char *kernel_state) {
        const char *src = jget(e, "TCPEDU_STATE_SOURCE");
        if (src && strcmp(src, "kernel") == 0) {
                expect_field_at(file, line, e, "TCPEDU_KERNEL_STATE", kernel_state);
                expect_field_at(file, line, e, "TCPEDU_KERNEL_SOURCE", "tcp_info");
        } else {
                expect_field_at(file, line, e, "TCPEDU_STATE_SOURCE", "inferred");
                expect_field_at(file, line, e, "TCPEDU_KERNEL_STATE", NULL);
                expect_field_at(file, line, e, "TCPEDU_KERNEL_SOURCE", NULL);
        }
}
#define EXPECT_KERNEL_OR_INFERRED(e, kstate) expect_kernel_or_inferred_at(__FILE__, __LINE__, e, kstate)

/* What set a path going (why we closed, a connect error) is TCPEDU_CAUSE of its first step, seen
 * by the kernel or inferred; every other step has none (cause NULL). */
#define EXPECT_CAUSE(e, cause) expect_field_at(__FILE__, __LINE__, e, "TCPEDU_CAUSE", cause)

/* CLOSED -> SYN_SENT at connect(): TCP_INFO's SYN_SENT, or connect()'s EINPROGRESS. */
static void expect_syn_sent_source(json_object *e) {
        const char *src = jget(e, "TCPEDU_STATE_SOURCE");
        if (src && strcmp(src, "kernel") == 0) {
                EXPECT_FIELD(e, "TCPEDU_KERNEL_STATE", "SYN_SENT");
                EXPECT_FIELD(e, "TCPEDU_KERNEL_SOURCE", "tcp_info");
        } else {
                EXPECT_FIELD(e, "TCPEDU_STATE_SOURCE", "syscall");
                EXPECT_FIELD(e, "TCPEDU_KERNEL_STATE", NULL);
                EXPECT_FIELD(e, "TCPEDU_KERNEL_SOURCE", "connect");
        }
}

/* The control entry of a session command: uid and pid of the caller. */
static void expect_control_entry(Daemon *d, const char *command, const char *id_prefix, unsigned uid) {
        JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=control",
                                tstr("TCPEDU_CONTROL_COMMAND=%s", command), tstr("TCPEDU_CONTROL_UID=%u", uid), NULL);
        json_object *found = NULL;
        for (size_t i = 0; i < l->n && !found; i++) {
                const char *args = jget(l->e[i], "TCPEDU_CONTROL_ARGS");
                if (!id_prefix || (args && strstr(args, id_prefix)))
                        found = l->e[i];
        }
        EXPECT(found != NULL, "no control entry for %s %s by uid %u", command, id_prefix ? id_prefix : "", uid);
        if (found) {
                EXPECT_FIELD(found, "MESSAGE_ID", MID_CONTROL_ENTRY);
                EXPECT(is_digits(jget(found, "TCPEDU_CONTROL_PID")), "TCPEDU_CONTROL_PID '%s'", jget(found, "TCPEDU_CONTROL_PID"));
                EXPECT(jget(found, "TCPEDU_CONTROL_RESULT") != NULL, "no TCPEDU_CONTROL_RESULT");
        }
}

/* The reply to an active close: FIN_WAIT_1, or FIN_WAIT_2 when the ACK of our FIN was in first. */
#define EXPECT_FIN_WAIT(reply)                                                                                                             \
        do {                                                                                                                               \
                const char *st_ = jstr(reply, "state");                                                                                    \
                EXPECT(st_ && (strcmp(st_, "FIN_WAIT_1") == 0 || strcmp(st_, "FIN_WAIT_2") == 0), "session-close: %s", jtext(reply));      \
        } while (0)

/* ---- daemons ---- */

static Daemon *start_daemon(const char *daemon_extra, const char *echo_name, Addr *echo) {
        const char *conf = tstr("[daemon]\n%s", daemon_extra ? daemon_extra : "");
        if (echo_name)
                conf = tstr("%s\n[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", conf, echo_name);
        Daemon *d = daemon_start(conf, NULL);
        REQUIRE(d != NULL, "daemon did not start");
        if (echo_name)
                REQUIRE(daemon_listener(d, "127.0.0.1", echo), "no listener");
        return d;
}

static const char *fmt_addr(const Addr *a) {
        char buf[ADDR_STR_MAX];
        return tstr("%s", addr_format(a, buf, sizeof(buf)));
}

/* ---- 1. a session to tcpedud's own echo server ---- */

static void test_echo_both_sides(void) {
        Addr echo;
        const char *name = unique_name("echo");
        Daemon *d = start_daemon(NULL, name, &echo);
        const char *target = fmt_addr(&echo);
        Ctl *c = CTL_OPEN(d, "control");

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        const char *local_field = jstr(s, "local");
        const char *local = tstr("%s", local_field ? local_field : "?");
        EXPECT(jnull(s, "server"), "server: %s", jtext(s));
        EXPECT_STR(jstr(s, "role"), "client");
        EXPECT_INT(jint(s, "owner_uid"), 0);
        EXPECT_INT(jint(s, "buffered"), 0);
        EXPECT_INT(jbool(s, "watched"), 0);
        EXPECT_STR(jstr(s, "peer"), target);
        EXPECT(strncmp(local, "127.0.0.1:", 10) == 0 && atoi(local + 10) > 0, "local %s", local);
        EXPECT_STR(jstr(s, "state"), "ESTABLISHED");
        EXPECT_STR(jstr(s, "kernel_state"), "ESTABLISHED");
        EXPECT_INT(jint(s, "bytes_in"), 0);
        EXPECT_INT(jint(s, "bytes_out"), 0);
        EXPECT(jint(s, "age_usec") >= 0, "age_usec: %s", jtext(s));

        /* send, then recv a line, exactly N bytes, whatever is there */
        json_object *r = SEND_TEXT(c, id, "hello\nworld\n");
        EXPECT_STR(jstr(r, "id"), id);
        EXPECT_INT(jint(r, "bytes"), 12);
        EXPECT_INT(jint(r, "unsent"), 0);
        r = RECV(c, id, "\"line\":true");
        EXPECT_STR(jstr(r, "id"), id);
        EXPECT_STR(jstr(r, "data"), "hello\n");
        EXPECT_INT(jint(r, "bytes"), 6);
        EXPECT_INT(jbool(r, "eof"), 0);
        EXPECT_INT(jbool(r, "timed_out"), 0);
        r = RECV(c, id, "\"bytes\":6");
        EXPECT_STR(jstr(r, "data"), "world\n");
        EXPECT_INT(jint(r, "buffered"), 0);
        SEND_TEXT(c, id, "abc");
        const char *got = "";
        for (uint64_t end = now_ms() + IO_TIMEOUT_MS; strlen(got) < 3 && now_ms() < end;) {
                r = RECV(c, id, NULL);
                EXPECT(jint(r, "bytes") >= 1 && jbool(r, "timed_out") == 0, "default recv: %s", jtext(r));
                got = tstr("%s%s", got, jstr(r, "data") ? jstr(r, "data") : "?");
        }
        EXPECT_STR(got, "abc");
        /* nothing more: a timeout, nothing consumed */
        uint64_t t0 = now_ms();
        r = RECV(c, id, "\"timeout_ms\":300");
        uint64_t waited = now_ms() - t0;
        EXPECT_INT(jint(r, "bytes"), 0);
        EXPECT_STR(jstr(r, "data"), "");
        EXPECT_INT(jbool(r, "timed_out"), 1);
        EXPECT_INT(jbool(r, "eof"), 0);
        EXPECT_INT(jint(r, "buffered"), 0);
        EXPECT(waited >= 250 && waited < 3000, "a 300 ms timeout took %llu ms", (unsigned long long)waited);
        r = RECV(c, id, "\"timeout_ms\":0,\"line\":true");
        EXPECT_INT(jbool(r, "timed_out"), 1);

        json_object *info = CONN_INFO(c, id);
        EXPECT_INT(jint(info, "bytes_in"), 15);
        EXPECT_INT(jint(info, "bytes_out"), 15);
        json_object *si = jobj(info, "session");
        EXPECT_INT(jint(si, "owner_uid"), 0);
        EXPECT(jint(si, "owner_pid") == getpid(), "owner_pid %lld, we are %d", jint(si, "owner_pid"), (int)getpid());
        EXPECT_INT(jbool(si, "connected"), 1);
        EXPECT_INT(jbool(si, "failed"), 0);
        EXPECT_INT(jbool(si, "peer_closed"), 0);
        EXPECT_INT(jbool(si, "ephemeral"), 0);
        EXPECT_INT(jint(si, "buffered"), 0);
        EXPECT_INT(jint(si, "buffer_size"), 1 << 20);
        EXPECT_INT(jint(si, "read"), 15);
        EXPECT_INT(jint(si, "unsent"), 0);
        EXPECT_INT(jbool(si, "watched"), 0);

        /* sessions lists it; connections too, with server null; connections SERVER does not */
        json_object *ss = OK(CALL(c, "sessions", NULL));
        json_object *arr = jobj(ss, "sessions");
        EXPECT(arr && json_object_array_length(arr) == 1 && strcmp(jstr(json_object_array_get_idx(arr, 0), "id"), id) == 0, "sessions: %s",
               jtext(ss));
        EXPECT_INT(jint(ss, "max_sessions"), 64);
        EXPECT_INT(jint(ss, "opened"), 1);
        EXPECT_INT(jint(ss, "failed"), 0);
        EXPECT_INT(jint(ss, "refused_limit"), 0);
        json_object *conns = jobj(OK(CALL(c, "connections", NULL)), "connections");
        int seen_session = 0, seen_server = 0;
        for (size_t i = 0; conns && i < json_object_array_length(conns); i++) {
                json_object *o = json_object_array_get_idx(conns, i);
                if (strcmp(jstr(o, "id"), id) == 0 && jnull(o, "server") && strcmp(jstr(o, "role"), "client") == 0)
                        seen_session++;
                if (jstr(o, "server") && strcmp(jstr(o, "server"), name) == 0 && jstr(o, "peer") && strcmp(jstr(o, "peer"), local) == 0 &&
                    strcmp(jstr(o, "role"), "server") == 0)
                        seen_server++;
        }
        EXPECT(seen_session == 1 && seen_server == 1, "connections (session %d, server side %d): %s", seen_session, seen_server,
               jtext(conns));
        conns = jobj(OK(CALL(c, "connections", tstr("{\"server\":\"%s\"}", name))), "connections");
        EXPECT(conns && json_object_array_length(conns) == 1 && strcmp(jstr(json_object_array_get_idx(conns, 0), "role"), "server") == 0,
               "connections %s: %s", name, jtext(conns));

        /* close: our FIN first */
        r = OK(CALL(c, "session-close", id_arg(id, NULL)));
        EXPECT_STR(jstr(r, "id"), id);
        EXPECT_STR(jstr(r, "how"), "close");
        EXPECT_FIN_WAIT(r);
        r = CALL(c, "session-send", id_arg(id, "\"data\":\"late\""));
        ERR(r, "conflict");
        r = CALL(c, "session-close", id_arg(id, NULL));
        ERR(r, "conflict");

        if (!journal_available("session to the echo server")) {
                EXPECT_INT(daemon_stop(d), 0);
                return;
        }
        /* the client side */
        SessionRef ref = { .d = d, .id = id, .peer = target, .local = local, .owner = 0 };
        JList *t = transitions(d, id, 5);
        EXPECT_STR(path_of(t), "CLOSED>SYN_SENT>ESTABLISHED>FIN_WAIT_1>FIN_WAIT_2>TIME_WAIT");
        if (t->n == 5) {
                CHECK_TRANSITION(&ref, t->e[0], "CLOSED", "SYN_SENT");
                expect_syn_sent_source(t->e[0]);
                EXPECT_FIELD(t->e[0], "TCPEDU_STATE_DURATION_USEC", "0");
                EXPECT_CAUSE(t->e[0], NULL);
                CHECK_TRANSITION(&ref, t->e[1], "SYN_SENT", "ESTABLISHED");
                EXPECT_FIELD(t->e[1], "TCPEDU_STATE_SOURCE", "kernel");
                EXPECT_FIELD(t->e[1], "TCPEDU_KERNEL_STATE", "ESTABLISHED");
                EXPECT_FIELD(t->e[1], "TCPEDU_KERNEL_SOURCE", "tcp_info");
                EXPECT_FIELD(t->e[1], "TCPEDU_REASON", "SYN-ACK received, ACK sent");
                EXPECT_CAUSE(t->e[1], NULL);
                CHECK_TRANSITION(&ref, t->e[2], "ESTABLISHED", "FIN_WAIT_1");
                EXPECT_KERNEL_OR_INFERRED(t->e[2], "FIN_WAIT1");
                EXPECT_CAUSE(t->e[2], "closed by tcpeductl");
                CHECK_TRANSITION(&ref, t->e[3], "FIN_WAIT_1", "FIN_WAIT_2");
                EXPECT_KERNEL_OR_INFERRED(t->e[3], "FIN_WAIT2");
                EXPECT_CAUSE(t->e[3], NULL);
                CHECK_TRANSITION(&ref, t->e[4], "FIN_WAIT_2", "TIME_WAIT");
                EXPECT_FIELD(t->e[4], "TCPEDU_STATE_SOURCE", "kernel");
                EXPECT_FIELD(t->e[4], "TCPEDU_KERNEL_STATE", "TIME_WAIT");
                EXPECT_FIELD(t->e[4], "TCPEDU_KERNEL_SOURCE", "sock_diag");
                EXPECT_FIELD(t->e[4], "TCPEDU_REASON", "FIN received from the peer, ACK sent");
                EXPECT_CAUSE(t->e[4], NULL);
        }
        JList *l = entries(d, id, "connect", 1);
        EXPECT_INT(l->n, 1);
        if (l->n == 1) {
                check_session_entry_at(__FILE__, __LINE__, &ref, l->e[0], MID_CONNECT, "connect");
                EXPECT_FIELD(l->e[0], "MESSAGE", tstr("Session %s: connecting to %s from %s (uid 0)", id, target, local));
        }
        l = entries(d, id, "disconnect", 1);
        EXPECT_INT(l->n, 1);
        if (l->n == 1) {
                check_session_entry_at(__FILE__, __LINE__, &ref, l->e[0], MID_DISCONNECT, "disconnect");
                EXPECT_FIELD(l->e[0], "TCPEDU_REASON", "closed by tcpeductl");
                EXPECT_FIELD(l->e[0], "TCPEDU_BYTES_IN", "15");
                EXPECT_FIELD(l->e[0], "TCPEDU_BYTES_OUT", "15");
                const char *msg = jget(l->e[0], "MESSAGE");
                const char *want = tstr("Session %s to %s closed (closed by tcpeductl): 15 bytes in, 15 out, ", id, target);
                EXPECT(msg && strncmp(msg, want, strlen(want)) == 0, "disconnect MESSAGE '%s'", msg);
        }
        /* session-open and session-close are logged with the caller; send and recv are not */
        expect_control_entry(d, "session-open", target, 0);
        expect_control_entry(d, "session-close", id, 0);
        EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=control", "TCPEDU_CONTROL_COMMAND=session-send", NULL)->n, 0);
        EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=control", "TCPEDU_CONTROL_COMMAND=session-recv", NULL)->n, 0);

        /* the server side of the same connection: its own ID, tied by the 4-tuple */
        ConnRef sref = { .d = d, .server = name, .peer = local, .local = target };
        JList *sc = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_SERVER=%s", name),
                                 tstr("TCPEDU_PEER=%s", local), "TCPEDU_EVENT=connect", NULL);
        REQUIRE(sc->n == 1, "%zu server-side connect entries for peer %s", sc->n, local);
        check_connect(&sref, sc->e[0]);
        REQUIRE(sref.id != NULL, "no server-side connection id");
        EXPECT(strcmp(sref.id, id) != 0, "the server side has the session's id %s", id);
        JList *st = transitions(d, sref.id, 5);
        EXPECT_STR(path_of(st), "LISTEN>SYN_RECEIVED>ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSED");
        static const char *const spath[][2] = { { "LISTEN", "SYN_RECEIVED" },
                                                { "SYN_RECEIVED", "ESTABLISHED" },
                                                { "ESTABLISHED", "CLOSE_WAIT" },
                                                { "CLOSE_WAIT", "LAST_ACK" },
                                                { "LAST_ACK", "CLOSED" } };
        /* the server side's causes: only the peer's FIN, on our FIN after it */
        static const char *const scause[] = { NULL, NULL, NULL, "peer closed", NULL };
        for (size_t i = 0; i < st->n && i < 5; i++) {
                check_transition(&sref, st->e[i], spath[i][0], spath[i][1]);
                /* the two ends of one connection: peer and local swapped */
                EXPECT_FIELD(st->e[i], "TCPEDU_PEER", local);
                EXPECT_FIELD(st->e[i], "TCPEDU_LOCAL", target);
                EXPECT_FIELD(st->e[i], "TCPEDU_SESSION_OWNER_UID", NULL);
                EXPECT_CAUSE(st->e[i], scause[i]);
        }
        if (st->n == 5) {
                expect_accept_step(st->e[0]);
                EXPECT_FIELD(st->e[2], "TCPEDU_REASON", "FIN received from the peer, ACK sent");
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 2. a session to the test's own socket: passive close, byte-exact data ---- */

static void test_peer_closes_first(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer_of_session[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id"), *local = jstr_copy(s, "local");
        int p = ACCEPT(lfd, peer_of_session);
        EXPECT_STR(peer_of_session, local);

        /* session -> peer: text, then every byte value through data_base64 */
        SEND_TEXT(c, id, "to the peer\n");
        char got[600];
        EXPECT_INT(recv_exact(p, got, 12, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, "to the peer\n", 12) == 0, "peer got '%.12s'", got);
        uint8_t bin[512];
        for (size_t i = 0; i < sizeof(bin); i++)
                bin[i] = (uint8_t)(i * 7 + (i >> 8));
        json_object *r = OK(CALL(c, "session-send", id_arg(id, tstr("\"data_base64\":\"%s\"", b64_encode(bin, sizeof(bin))))));
        EXPECT_INT(jint(r, "bytes"), sizeof(bin));
        EXPECT_INT(recv_exact(p, got, sizeof(bin), IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, bin, sizeof(bin)) == 0, "binary data changed on the way to the peer");

        /* peer -> session: binary comes back as data_base64, UTF-8 text as data */
        EXPECT_INT(send_all(p, bin, sizeof(bin), IO_TIMEOUT_MS), 0);
        r = RECV(c, id, tstr("\"bytes\":%zu", sizeof(bin)));
        EXPECT_INT(jint(r, "bytes"), sizeof(bin));
        EXPECT(!jhas(r, "data") && jstr(r, "data_base64"), "binary recv: %s", jtext(r));
        size_t n = 0;
        uint8_t *back = data_of(r, &n);
        EXPECT(back && n == sizeof(bin) && memcmp(back, bin, n) == 0, "data_base64 of %zu bytes differs", n);
        const char *utf8 = "caf\xc3\xa9 \xe2\x98\xba \"quoted\" \\ tab\t\n";
        EXPECT_INT(send_all(p, utf8, strlen(utf8), IO_TIMEOUT_MS), 0);
        r = RECV(c, id, "\"line\":true");
        EXPECT_STR(jstr(r, "data"), utf8);
        EXPECT_INT(jint(r, "bytes"), strlen(utf8));
        /* a NUL makes it binary */
        EXPECT_INT(send_all(p, "a\0b", 3, IO_TIMEOUT_MS), 0);
        r = RECV(c, id, "\"bytes\":3");
        EXPECT_STR(jstr(r, "data_base64"), "YQBi");

        /* the peer says its last words and closes its side first */
        EXPECT_INT(send_all(p, "last words\nno newline", 21, IO_TIMEOUT_MS), 0);
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        /* (the state may show CLOSE_WAIT from the kernel a moment before the daemon has read the FIN) */
        json_object *info = NULL;
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                info = CONN_INFO(c, id);
                if (jbool(jobj(info, "session"), "peer_closed") == 1)
                        break;
                (void)poll(NULL, 0, 20);
        }
        EXPECT_STR(jstr(info, "state"), "CLOSE_WAIT");
        EXPECT_STR(jstr(info, "kernel_state"), "CLOSE_WAIT");
        EXPECT_INT(jbool(jobj(info, "session"), "peer_closed"), 1);
        EXPECT_INT(jint(jobj(info, "session"), "buffered"), 21);
        r = RECV(c, id, "\"line\":true");
        EXPECT_STR(jstr(r, "data"), "last words\n");
        EXPECT_INT(jbool(r, "eof"), 0);
        EXPECT_INT(jint(r, "buffered"), 10);
        /* at the end a line without its newline comes as it is, with eof */
        r = RECV(c, id, "\"line\":true");
        EXPECT_STR(jstr(r, "data"), "no newline");
        EXPECT_INT(jbool(r, "eof"), 1);
        EXPECT_INT(jbool(r, "timed_out"), 0);
        /* then eof at once, not a timeout */
        uint64_t t0 = now_ms();
        r = RECV(c, id, "\"timeout_ms\":3000");
        EXPECT_INT(jint(r, "bytes"), 0);
        EXPECT_INT(jbool(r, "eof"), 1);
        EXPECT_INT(jbool(r, "timed_out"), 0);
        EXPECT(now_ms() - t0 < 2000, "recv at eof waited %llu ms", (unsigned long long)(now_ms() - t0));
        r = RECV(c, id, "\"bytes\":5");
        EXPECT_INT(jint(r, "bytes"), 0);
        EXPECT_INT(jbool(r, "eof"), 1);

        /* CLOSE_WAIT holds: we may still send, and the peer gets it */
        SEND_TEXT(c, id, "after your FIN\n");
        EXPECT_INT(recv_exact(p, got, 15, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, "after your FIN\n", 15) == 0, "peer got '%.15s'", got);
        info = CONN_INFO(c, id);
        EXPECT_STR(jstr(info, "state"), "CLOSE_WAIT");
        EXPECT_STR(jstr(info, "kernel_state"), "CLOSE_WAIT");

        /* session-close sends our FIN: LAST_ACK, then CLOSED when the peer ACKs it */
        r = OK(CALL(c, "session-close", id_arg(id, NULL)));
        /* (on loopback the ACK of our FIN may be in before the reply is made) */
        EXPECT(jstr(r, "state") && (strcmp(jstr(r, "state"), "LAST_ACK") == 0 || strcmp(jstr(r, "state"), "CLOSED") == 0),
               "session-close from CLOSE_WAIT: %s", jtext(r));
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        WAIT_STATE(c, id, NULL);
        json_object *ss = OK(CALL(c, "sessions", NULL));
        EXPECT_INT(json_object_array_length(jobj(ss, "sessions")), 0);

        size_t bytes_in = sizeof(bin) + strlen(utf8) + 3 + 21, bytes_out = 12 + sizeof(bin) + 15;
        if (journal_available("peer closes first")) {
                SessionRef ref = { .d = d, .id = id, .peer = target, .local = local, .owner = 0 };
                JList *t = transitions(d, id, 5);
                EXPECT_STR(path_of(t), "CLOSED>SYN_SENT>ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSED");
                if (t->n == 5) {
                        CHECK_TRANSITION(&ref, t->e[0], "CLOSED", "SYN_SENT");
                        EXPECT_CAUSE(t->e[0], NULL);
                        CHECK_TRANSITION(&ref, t->e[1], "SYN_SENT", "ESTABLISHED");
                        EXPECT_CAUSE(t->e[1], NULL);
                        /* seen when the daemon read the FIN, or by a `conn` that asked the kernel first */
                        CHECK_TRANSITION(&ref, t->e[2], "ESTABLISHED", "CLOSE_WAIT");
                        EXPECT_KERNEL_OR_INFERRED(t->e[2], "CLOSE_WAIT");
                        EXPECT_CAUSE(t->e[2], NULL);
                        /* our FIN, sent when tcpeductl closed the session */
                        CHECK_TRANSITION(&ref, t->e[3], "CLOSE_WAIT", "LAST_ACK");
                        EXPECT_CAUSE(t->e[3], "closed by tcpeductl");
                        CHECK_TRANSITION(&ref, t->e[4], "LAST_ACK", "CLOSED");
                        EXPECT_FIELD(t->e[4], "TCPEDU_STATE_SOURCE", "kernel");
                        EXPECT_CAUSE(t->e[4], NULL);
                }
                JList *l = entries(d, id, "disconnect", 1);
                EXPECT_INT(l->n, 1);
                if (l->n == 1) {
                        check_session_entry_at(__FILE__, __LINE__, &ref, l->e[0], MID_DISCONNECT, "disconnect");
                        EXPECT_FIELD(l->e[0], "TCPEDU_REASON", "closed by tcpeductl");
                        EXPECT_FIELD(l->e[0], "TCPEDU_BYTES_IN", tstr("%zu", bytes_in));
                        EXPECT_FIELD(l->e[0], "TCPEDU_BYTES_OUT", tstr("%zu", bytes_out));
                }
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 3. connects that fail ---- */

/* A connect-failed reply: its details checked against target and reason; the session's id. */
static const char *expect_connect_failed_at(const char *file, int line, json_object *reply, const char *target, const char *reason,
                                            int err) {
        json_object *e = err_at(file, line, reply, "connect-failed"), *det = jobj(e, "details");
        CHECK_AT(file, line, jstr(e, "message") && strcmp(jstr(e, "message"), tstr("cannot connect to %s: %s", target, reason)) == 0, false,
                 "message '%s', expected 'cannot connect to %s: %s'", jstr(e, "message"), target, reason);
        CHECK_AT(file, line, is_conn_id(jstr(det, "id")), false, "details.id: %s", jtext(det));
        CHECK_AT(file, line, jstr(det, "target") && strcmp(jstr(det, "target"), target) == 0, false, "details.target: %s", jtext(det));
        CHECK_AT(file, line, jstr(det, "reason") && strcmp(jstr(det, "reason"), reason) == 0, false, "details.reason: %s", jtext(det));
        CHECK_AT(file, line, jint(det, "errno") == err, false, "details.errno: %s, expected %d", jtext(det), err);
        return jstr(det, "id") ? jstr_copy(det, "id") : "?";
}
#define EXPECT_CONNECT_FAILED(reply, target, reason, err) expect_connect_failed_at(__FILE__, __LINE__, reply, target, reason, err)

/* The journal of a failed connect: CLOSED -> SYN_SENT -> CLOSED with the reason (syn_sent), or no
 * transition at all (!syn_sent), and the connect-failed entry. */
static void expect_failure_journal_at(const char *file, int line, Daemon *d, const char *id, const char *target, const char *reason,
                                      int err, bool syn_sent) {
        const char *pid = tstr("_PID=%d", (int)d->pid), *cid = tstr("TCPEDU_CONN_ID=%s", id);
        JList *f = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, cid, "TCPEDU_EVENT=connect-failed", NULL);
        CHECK_AT(file, line, f->n == 1, false, "%zu connect-failed entries for %s", f->n, id);
        if (f->n != 1)
                return;
        json_object *e = f->e[0];
        const char *local = jget(e, "TCPEDU_LOCAL");
        SessionRef ref = { .d = d, .id = id, .peer = target, .local = local ? local : "?", .owner = 0 };
        check_session_entry_at(file, line, &ref, e, MID_CONNECT_FAILED, "connect-failed");
        expect_field_at(file, line, e, "PRIORITY", "5");
        expect_field_at(file, line, e, "TCPEDU_REASON", reason);
        expect_field_at(file, line, e, "TCPEDU_ERRNO", tstr("%d", err));
        expect_field_at(file, line, e, "TCPEDU_SYN_SENT", syn_sent ? "yes" : "no");
        const char *msg = jget(e, "MESSAGE"), *want = tstr("Session %s to %s failed: %s", id, target, reason);
        CHECK_AT(file, line, msg && strncmp(msg, want, strlen(want)) == 0, false, "MESSAGE '%s', expected '%s...'", msg, want);
        /* every transition was logged before connect-failed */
        JList *t = journal_query(pid, cid, "TCPEDU_EVENT=transition", NULL);
        if (!syn_sent) {
                CHECK_AT(file, line, t->n == 0, false, "%zu transitions for a connect() that failed at once: %s", t->n, path_of(t));
                return;
        }
        CHECK_AT(file, line, strcmp(path_of(t), "CLOSED>SYN_SENT>CLOSED") == 0, false, "path %s", path_of(t));
        if (t->n == 2) {
                check_session_transition_at(file, line, &ref, t->e[0], "CLOSED", "SYN_SENT");
                expect_field_at(file, line, t->e[0], "TCPEDU_CAUSE", NULL);
                /* the reason is the edge's event (checked above); the connect error is the cause */
                check_session_transition_at(file, line, &ref, t->e[1], "SYN_SENT", "CLOSED");
                expect_field_at(file, line, t->e[1], "TCPEDU_CAUSE", reason);
                expect_field_at(file, line, t->e[1], "TCPEDU_STATE_SOURCE", "kernel");
                expect_field_at(file, line, t->e[1], "TCPEDU_KERNEL_SOURCE", "sock_diag");
        }
}
#define EXPECT_FAILURE_JOURNAL(d, id, target, reason, err, syn_sent)                                                                       \
        expect_failure_journal_at(__FILE__, __LINE__, d, id, target, reason, err, syn_sent)

/* A listener that answers no SYN: backlog 0 holds one connection in the accept queue; with that one
 * established and never accepted, the kernel drops every further SYN. Its address in *a. */
static void silent_listener_at(const char *file, int line, Addr *a) {
        (void)listener_at(file, line, 0, a);
        int fd = tcp_connect(a, NULL);
        CHECK_AT(file, line, fd >= 0, true, "connect to the backlog-0 listener: %s", strerror(-fd));
        int probe = tcp_connect_start(a);
        CHECK_AT(file, line, probe >= 0, true, "connect: %s", strerror(-probe));
        struct pollfd p = { .fd = probe, .events = POLLOUT };
        CHECK_AT(file, line, poll(&p, 1, 500) == 0, true, "a backlog-0 listener with a full accept queue answered a SYN");
}
#define SILENT_LISTENER(a) silent_listener_at(__FILE__, __LINE__, a)

static void test_refused_and_timeout(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Ctl *c = CTL_OPEN(d, "control");

        /* refused: a port bound but not listening answers SYN with RST */
        int closed = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Addr ca;
        REQUIRE_INT(addr_parse_ip("127.0.0.1", 0, &ca), 0);
        socklen_t len = sizeof(ca);
        REQUIRE(bind(closed, &ca.sa, sizeof(ca.in)) == 0 && getsockname(closed, &ca.sa, &len) == 0, "bind: %m");
        const char *refused_target = fmt_addr(&ca);
        uint64_t t0 = now_ms();
        const char *rid = EXPECT_CONNECT_FAILED(OPEN_REPLY(c, refused_target, NULL), refused_target,
                                                "connection refused (RST in answer to SYN)", 111);
        EXPECT(now_ms() - t0 < 2000, "refused took %llu ms", (unsigned long long)(now_ms() - t0));

        /* timeout: a listener with backlog 0 whose accept queue is full drops further SYNs */
        Addr la;
        SILENT_LISTENER(&la);
        const char *silent_target = fmt_addr(&la);
        t0 = now_ms();
        json_object *r = OPEN_REPLY(c, silent_target, "\"timeout_ms\":1000");
        uint64_t took = now_ms() - t0;
        const char *tid = EXPECT_CONNECT_FAILED(r, silent_target, "connect timeout: no answer to SYN", ETIMEDOUT);
        EXPECT(took >= 900 && took < 4000, "a 1000 ms connect timeout took %llu ms", (unsigned long long)took);

        json_object *ss = OK(CALL(c, "sessions", NULL));
        EXPECT_INT(jint(ss, "opened"), 2);
        EXPECT_INT(jint(ss, "failed"), 2);
        EXPECT_INT(json_object_array_length(jobj(ss, "sessions")), 0);

        if (journal_available("refused and timeout")) {
                EXPECT_FAILURE_JOURNAL(d, rid, refused_target, "connection refused (RST in answer to SYN)", 111, true);
                EXPECT_FAILURE_JOURNAL(d, tid, silent_target, "connect timeout: no answer to SYN", ETIMEDOUT, true);
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* 203.0.113.0/24 is TEST-NET-3: nothing real lives there. A random host in it, so that two runs
 * at once do not share a route. */
static const char *test_net_host(void) {
        return tstr("203.0.113.%u", 1 + (unsigned)(now_ms() ^ (uint64_t)getpid()) % 254);
}

static void test_unreachable_route(void) {
        if (geteuid() != 0) {
                printf("\n    SKIPPED: adding an unreachable route needs root ");
                return;
        }
        const char *host = test_net_host();
        RunResult rr;
        const char *const add[] = { "/usr/sbin/ip", "route", "add", "unreachable", tstr("%s/32", host), NULL };
        if (access(add[0], X_OK) != 0 || run_prog(&rr, add) != 0) {
                printf("\n    SKIPPED: ip route add unreachable %s/32 failed: %s ", host, rr.err ? rr.err : "no /usr/sbin/ip");
                return;
        }
        defer_command("/usr/sbin/ip", "route", "del", "unreachable", tstr("%s/32", host), NULL);

        Daemon *d = start_daemon(NULL, NULL, NULL);
        Ctl *c = CTL_OPEN(d, "control");
        const char *target = tstr("%s:7", host);
        uint64_t t0 = now_ms();
        json_object *r = OPEN_REPLY(c, target, NULL);
        EXPECT(now_ms() - t0 < 2000, "connect() to an unreachable route took %llu ms", (unsigned long long)(now_ms() - t0));
        const char *id = EXPECT_CONNECT_FAILED(r, target, "host unreachable", EHOSTUNREACH);
        json_object *ss = OK(CALL(c, "sessions", NULL));
        EXPECT_INT(jint(ss, "failed"), 1);
        EXPECT_INT(json_object_array_length(jobj(ss, "sessions")), 0);
        if (journal_available("unreachable route")) {
                EXPECT_FAILURE_JOURNAL(d, id, target, "host unreachable", EHOSTUNREACH, false);
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=control",
                                        "TCPEDU_CONTROL_COMMAND=session-open", NULL);
                EXPECT_INT(l->n, 1);
                /* the open failed at once: its control entry says why */
                if (l->n == 1)
                        EXPECT_FIELD(l->e[0], "TCPEDU_CONTROL_RESULT", tstr("session %s: host unreachable", id));
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* An ICMP host-unreachable in answer to the SYN: the connect fails later, asynchronously. */
static void test_icmp_unreachable(void) {
        if (geteuid() != 0) {
                printf("\n    SKIPPED: nft needs root ");
                return;
        }
        Addr la;
        int lfd = LISTENER(8, &la);
        (void)lfd;
        const char *target = fmt_addr(&la), *table = tstr("tcpedu_test_%d", (int)getpid());
        RunResult rr;
        const char *const nft[] = { "/usr/sbin/nft",
                                    tstr("add table ip %s { chain out { type filter hook output priority 0; "
                                         "ip daddr 127.0.0.1 tcp dport %u reject with icmp type host-unreachable; }; }",
                                         table, addr_port(&la)),
                                    NULL };
        if (access(nft[0], X_OK) != 0 || run_prog(&rr, nft) != 0) {
                printf("\n    SKIPPED: nft could not add a table: %s ", rr.err ? rr.err : "no /usr/sbin/nft");
                return;
        }
        defer_command("/usr/sbin/nft", "delete", "table", "ip", table, NULL);

        Daemon *d = start_daemon(NULL, NULL, NULL);
        Ctl *c = CTL_OPEN(d, "control");
        json_object *r = OPEN_REPLY(c, target, "\"timeout_ms\":5000");
        const char *id = EXPECT_CONNECT_FAILED(r, target, "host unreachable", EHOSTUNREACH);
        if (journal_available("ICMP host unreachable"))
                EXPECT_FAILURE_JOURNAL(d, id, target, "host unreachable", EHOSTUNREACH, true);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 5. watching a session ---- */

/* One event as a word: "A>B" for a transition, else its name (data: "data:TEXT" or "data64:B64"). */
static const char *event_word(json_object *e) {
        const char *ev = jstr(e, "event");
        if (!ev)
                return "?";
        if (strcmp(ev, "transition") == 0)
                return tstr("%s>%s", jstr(e, "old_state"), jstr(e, "new_state"));
        if (strcmp(ev, "data") == 0)
                return jstr(e, "data") ? tstr("data:%s", jstr(e, "data")) : tstr("data64:%s", jstr(e, "data_base64"));
        return ev;
}

/* Messages in arrival order until the reply to id: the events as words, then "REPLY". The reply
 * goes to *reply. */
static const char *events_until_reply_at(const char *file, int line, Ctl *c, int64_t id, json_object **reply) {
        const char *seq = "";
        uint64_t deadline = now_ms() + 15000;
        for (;;) {
                int err = 0;
                json_object *o = c->nq ? NULL : ctl_read(c, remaining_ms(deadline), &err);
                if (o)
                        ctl_queue(c, o);
                CHECK_AT(file, line, c->nq > 0, true, "%s: no reply to %lld: %s", c->label, (long long)id, strerror(-err));
                json_object *m = ctl_take(c, 0);
                if (jobj(m, "event"))
                        seq = tstr("%s%s%s", seq, *seq ? " " : "", event_word(jobj(m, "event")));
                else if (jint(m, "id") == id) {
                        *reply = m;
                        return tstr("%s%sREPLY", seq, *seq ? " " : "");
                }
        }
}
#define EVENTS_UNTIL_REPLY(c, id, reply) events_until_reply_at(__FILE__, __LINE__, c, id, reply)

/* The next n events as words. */
static const char *next_events_at(const char *file, int line, Ctl *c, int n) {
        const char *seq = "";
        for (int i = 0; i < n; i++)
                seq = tstr("%s%s%s", seq, i ? " " : "", event_word(ctl_event_at(file, line, c, 10000)));
        return seq;
}
#define NEXT_EVENTS(c, n) next_events_at(__FILE__, __LINE__, c, n)

/* Every event has time_usec, conn_id and role. */
static void check_event_at(const char *file, int line, json_object *e, const char *id) {
        CHECK_AT(file, line, jint(e, "time_usec") > 1000000000000000LL, false, "time_usec: %s", jtext(e));
        CHECK_AT(file, line, jstr(e, "conn_id") && strcmp(jstr(e, "conn_id"), id) == 0, false, "conn_id: %s", jtext(e));
        CHECK_AT(file, line, jstr(e, "role") && strcmp(jstr(e, "role"), "client") == 0, false, "role: %s", jtext(e));
}

static void test_watch(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *w = CTL_OPEN(d, "watcher"), *other = CTL_OPEN(d, "other");

        /* watch from the first transition on: the events come before the reply */
        json_object *reply = NULL;
        int64_t rid = CTL_SEND(w, "session-open", tstr("{\"target\":\"%s\",\"watch\":true}", target));
        const char *seq = EVENTS_UNTIL_REPLY(w, rid, &reply);
        EXPECT_STR(seq, "CLOSED>SYN_SENT SYN_SENT>ESTABLISHED connected REPLY");
        json_object *s = jobj(OK(reply), "session");
        const char *id = jstr_copy(s, "id");
        EXPECT_INT(jbool(s, "watched"), 1);
        int p = ACCEPT(lfd, peer);

        /* data as it comes, text and binary */
        EXPECT_INT(send_all(p, "hi\n", 3, IO_TIMEOUT_MS), 0);
        json_object *e = EVENT(w);
        check_event_at(__FILE__, __LINE__, e, id);
        EXPECT_STR(event_word(e), "data:hi\n");
        EXPECT_INT(jint(e, "bytes"), 3);
        EXPECT_STR(jstr(e, "state"), "ESTABLISHED");
        EXPECT_INT(send_all(p, "\x00\x01\xff", 3, IO_TIMEOUT_MS), 0);
        EXPECT_STR(NEXT_EVENTS(w, 1), "data64:AAH/");

        /* the session's data goes to the watcher: nobody may recv or watch it meanwhile */
        json_object *err = ERR(CALL(other, "session-recv", id_arg(id, "\"timeout_ms\":0")), "conflict");
        EXPECT(strstr(jstr(err, "message"), "watched") != NULL, "message: %s", jstr(err, "message"));
        ERR(CALL(other, "session-watch", id_arg(id, NULL)), "conflict");
        ERR(CALL(w, "session-recv", id_arg(id, "\"timeout_ms\":0")), "conflict");
        json_object *info = CONN_INFO(other, id);
        EXPECT_INT(jbool(jobj(info, "session"), "watched"), 1);

        /* the peer closes: its FIN, then peer-closed */
        EXPECT_INT(send_all(p, "bye\n", 4, IO_TIMEOUT_MS), 0);
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        EXPECT_STR(NEXT_EVENTS(w, 3), "data:bye\n ESTABLISHED>CLOSE_WAIT peer-closed");

        /* we close: LAST_ACK, the reply, CLOSED, disconnected, end */
        rid = CTL_SEND(w, "session-close", id_arg(id, NULL));
        seq = EVENTS_UNTIL_REPLY(w, rid, &reply);
        OK(reply);
        int before = 0;
        for (const char *k = seq; (k = strchr(k, ' ')); k++)
                before++;
        if (before < 4)
                seq = tstr("%s %s", seq, NEXT_EVENTS(w, 4 - before));
        /* (LAST_ACK -> CLOSED may be seen before the reply is made) */
        EXPECT(strcmp(seq, "CLOSE_WAIT>LAST_ACK REPLY LAST_ACK>CLOSED disconnected end") == 0 ||
                       strcmp(seq, "CLOSE_WAIT>LAST_ACK LAST_ACK>CLOSED REPLY disconnected end") == 0 ||
                       strcmp(seq, "CLOSE_WAIT>LAST_ACK LAST_ACK>CLOSED disconnected REPLY end") == 0 ||
                       strcmp(seq, "CLOSE_WAIT>LAST_ACK LAST_ACK>CLOSED disconnected end REPLY") == 0,
               "close from CLOSE_WAIT: %s", seq);
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        fd_close(p);
        /* nothing after end */
        CTL_QUIET(w);

        /* session-watch on a session that has data waiting: the reply, then the data */
        json_object *s2 = OPEN(other, target, NULL);
        const char *id2 = jstr_copy(s2, "id");
        p = ACCEPT(lfd, peer);
        EXPECT_INT(send_all(p, "early\n", 6, IO_TIMEOUT_MS), 0);
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                info = CONN_INFO(other, id2);
                if (jint(info, "buffered") == 6)
                        break;
                (void)poll(NULL, 0, 20);
        }
        rid = CTL_SEND(w, "session-watch", id_arg(id2, NULL));
        seq = EVENTS_UNTIL_REPLY(w, rid, &reply);
        EXPECT_STR(seq, "REPLY");
        s2 = jobj(OK(reply), "session");
        EXPECT_STR(jstr(s2, "id"), id2);
        EXPECT_INT(jbool(s2, "watched"), 1);
        EXPECT_STR(NEXT_EVENTS(w, 1), "data:early\n");
        /* one watched session per control connection */
        json_object *s3 = OPEN(other, target, NULL);
        int p3 = ACCEPT(lfd, peer);
        ERR(CALL(w, "session-watch", id_arg(jstr(s3, "id"), NULL)), "conflict");
        /* a reset from another connection: CLOSED at once, the watcher sees the end */
        json_object *r = OK(CALL(other, "session-close", id_arg(id2, "\"how\":\"reset\"")));
        EXPECT_STR(jstr(r, "how"), "reset");
        EXPECT_STR(jstr(r, "state"), "CLOSED");
        seq = NEXT_EVENTS(w, 3);
        EXPECT_STR(seq, "ESTABLISHED>CLOSED disconnected end");
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), -ECONNRESET);

        /* the watcher's connection closes: the session is no longer watched and can be read again */
        OK(CALL(w, "session-watch", id_arg(jstr(s3, "id"), NULL)));
        ctl_close(w);
        EXPECT_INT(send_all(p3, "after\n", 6, IO_TIMEOUT_MS), 0);
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                info = CONN_INFO(other, jstr(s3, "id"));
                if (jbool(info, "watched") == 0)
                        break;
                (void)poll(NULL, 0, 20);
        }
        EXPECT_INT(jbool(info, "watched"), 0);
        r = RECV(other, jstr(s3, "id"), "\"line\":true");
        EXPECT_STR(jstr(r, "data"), "after\n");
        fd_close(p3);
        EXPECT_INT(daemon_stop(d), 0);
}

/* An ephemeral session ends with its control connection; a plain one does not. */
static void test_ephemeral(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *a = CTL_OPEN(d, "opener"), *b = CTL_OPEN(d, "other");

        json_object *eph = OPEN(a, target, "\"ephemeral\":true");
        const char *eid = jstr_copy(eph, "id");
        int pe = ACCEPT(lfd, peer);
        json_object *keep_s = OPEN(a, target, NULL);
        const char *kid = jstr_copy(keep_s, "id");
        int pk = ACCEPT(lfd, peer);
        EXPECT_INT(jbool(jobj(CONN_INFO(b, eid), "session"), "ephemeral"), 1);
        EXPECT_INT(jbool(jobj(CONN_INFO(b, kid), "session"), "ephemeral"), 0);

        ctl_close(a);
        EXPECT_INT(wait_closed(pe, IO_TIMEOUT_MS), 0);
        fd_close(pe);
        /* the other one is still there and works */
        EXPECT_INT(send_all(pk, "still\n", 6, IO_TIMEOUT_MS), 0);
        json_object *r = RECV(b, kid, "\"line\":true");
        EXPECT_STR(jstr(r, "data"), "still\n");
        if (journal_available("ephemeral")) {
                JList *l = entries(d, eid, "disconnect", 1);
                EXPECT_INT(l->n, 1);
                if (l->n == 1)
                        EXPECT_FIELD(l->e[0], "TCPEDU_REASON", "closed with its control client");
        }
        fd_close(pk);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 6. the receive buffer is bounded: a 100 MiB flood ---- */

#define FLOOD_CHUNK (256 * 1024)
#define SESSION_BUFFER (1 << 20)

/* The flood's byte at offset i: a function of i alone, so that a lost, repeated or reordered
 * piece anywhere shows. */
static void flood_pattern(uint8_t *buf, size_t len, uint64_t off) {
        for (size_t k = 0; k < len; k++) {
                uint64_t i = off + k;
                buf[k] = (uint8_t)((i * 0x9E3779B97F4A7C15ULL) >> 56) ^ (uint8_t)(i >> 16);
        }
}

typedef struct Flood {
        int fd; /* blocking */
        size_t total;
        _Atomic size_t sent;
        _Atomic bool done;
        int err;
        pthread_t thread;
        bool running;
} Flood;

static void *flood_main(void *arg) {
        Flood *f = arg;
        uint8_t *buf = malloc(FLOOD_CHUNK);
        size_t sent = 0;
        while (buf && sent < f->total) {
                size_t n = f->total - sent < FLOOD_CHUNK ? f->total - sent : FLOOD_CHUNK;
                flood_pattern(buf, n, sent);
                size_t off = 0;
                while (off < n) {
                        ssize_t k = send(f->fd, buf + off, n - off, MSG_NOSIGNAL);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                f->err = k < 0 ? errno : EIO;
                                goto out;
                        }
                        off += (size_t)k;
                        atomic_store(&f->sent, sent + off);
                }
                sent += n;
        }
out:
        free(buf);
        atomic_store(&f->done, true);
        return NULL;
}

/* At teardown: a send blocked on a full socket returns once the socket is shut down. */
static void flood_stop(void *arg) {
        Flood *f = arg;
        if (!f->running)
                return;
        if (!atomic_load(&f->done))
                (void)shutdown(f->fd, SHUT_RDWR);
        pthread_join(f->thread, NULL);
        f->running = false;
}

/* The sender made no progress for quiet_ms: it is blocked (or done). False after timeout_ms. */
static bool flood_stalls(Flood *f, int quiet_ms, int timeout_ms) {
        uint64_t end = now_ms() + (uint64_t)timeout_ms, since = now_ms();
        size_t last = atomic_load(&f->sent);
        while (now_ms() < end) {
                (void)poll(NULL, 0, 20);
                size_t now = atomic_load(&f->sent);
                if (now != last) {
                        last = now;
                        since = now_ms();
                } else if (now_ms() - since >= (uint64_t)quiet_ms)
                        return true;
        }
        return false;
}

/* A daemon whose VmRSS is measured. Under AddressSanitizer freed memory sits in a quarantine
 * (256 MiB by default) and counts in VmRSS: this daemon gets a small one, so that its RSS means
 * what it says. */
static Daemon *start_daemon_rss(const char *daemon_extra) {
        const char *asan = getenv("ASAN_OPTIONS");
        char *saved = asan ? tstr("%s", asan) : NULL;
#if defined(__SANITIZE_ADDRESS__)
        setenv("ASAN_OPTIONS", tstr("%s%squarantine_size_mb=4", asan ? asan : "", asan && *asan ? ":" : ""), 1);
#endif
        Daemon *d = start_daemon(daemon_extra, NULL, NULL);
        if (saved)
                setenv("ASAN_OPTIONS", saved, 1);
        else
                unsetenv("ASAN_OPTIONS");
        return d;
}

static void test_buffer_bound(void) {
        size_t mib = 100;
        Daemon *d = start_daemon_rss(tstr("session_buffer = %d\n", SESSION_BUFFER));
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id"), *local = jstr(s, "local");
        int p = ACCEPT(lfd, peer);
        long base_kb = daemon_vmrss_kb(d);
        REQUIRE(base_kb > 0, "no VmRSS for pid %d", (int)d->pid);

        static Flood f;
        f = (Flood){ .fd = p, .total = mib << 20 };
        REQUIRE(fcntl(p, F_SETFL, 0) == 0, "fcntl: %m");
        REQUIRE(pthread_create(&f.thread, NULL, flood_main, &f) == 0, "pthread_create");
        f.running = true;
        defer_fn(flood_stop, &f);

        /* nobody reads: the daemon fills session_buffer, stops reading, and the sender blocks */
        REQUIRE(flood_stalls(&f, 500, 20000), "the sender never blocked: %zu bytes sent", atomic_load(&f.sent));
        size_t stalled_at = atomic_load(&f.sent);
        EXPECT(stalled_at < f.total, "all %zu bytes were sent while nobody read", stalled_at);
        json_object *info = NULL, *si = NULL;
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                info = CONN_INFO(c, id);
                si = jobj(info, "session");
                if (jint(si, "buffered") == SESSION_BUFFER)
                        break;
                (void)poll(NULL, 0, 20);
        }
        EXPECT(jint(si, "buffered") == SESSION_BUFFER, "buffered %lld, expected it full at %d", jint(si, "buffered"), SESSION_BUFFER);
        EXPECT_INT(jint(si, "buffer_size"), SESSION_BUFFER);
        EXPECT(jint(si, "reading_paused") >= 1, "reading_paused %lld", jint(si, "reading_paused"));
        EXPECT_INT(jint(info, "bytes_in"), SESSION_BUFFER);
        /* the rest waits in the kernel: the daemon's receive queue holds data it did not read */
        TcpSocketInfo ti;
        uint16_t lport = (uint16_t)atoi(strrchr(local, ':') + 1);
        EXPECT(tcp_socket_info(lport, addr_port(&la), &ti) && ti.recv_q > 0, "the daemon's socket has no unread data (Recv-Q %lu)",
               ti.recv_q);
        long rss_kb = daemon_vmrss_kb(d), max_rss_kb = rss_kb;
        printf("(stalled after %.1f MiB, VmRSS %ld -> %ld KiB) ", (double)stalled_at / (1 << 20), base_kb, rss_kb);

        /* read it all through session-recv, byte-exact */
        uint8_t *want = keep(malloc(SESSION_BUFFER));
        size_t got = 0, max_buffered = (size_t)jint(si, "buffered");
        uint64_t t0 = now_ms();
        int round = 0;
        while (got < f.total) {
                size_t ask = f.total - got < SESSION_BUFFER ? f.total - got : SESSION_BUFFER;
                json_object *r = RECV(c, id, tstr("\"bytes\":%zu,\"timeout_ms\":10000", ask));
                size_t n = 0;
                uint8_t *data = data_of(r, &n);
                REQUIRE(data && n == ask && jbool(r, "timed_out") == 0, "recv of %zu bytes at offset %zu: %zu bytes, %s", ask, got, n,
                        jbool(r, "timed_out") == 1 ? "timed out" : "no data");
                flood_pattern(want, n, got);
                REQUIRE(memcmp(data, want, n) == 0, "the bytes at offset %zu..%zu differ from what the peer sent", got, got + n);
                got += n;
                if ((size_t)jint(r, "buffered") > max_buffered)
                        max_buffered = (size_t)jint(r, "buffered");
                if (++round % 8 == 0) {
                        long kb = daemon_vmrss_kb(d);
                        max_rss_kb = kb > max_rss_kb ? kb : max_rss_kb;
                }
        }
        printf("(%zu MiB read in %.1f s, VmRSS at most %ld KiB) ", mib, (double)(now_ms() - t0) / 1000.0, max_rss_kb);
        EXPECT(max_buffered <= SESSION_BUFFER, "buffered reached %zu > %d", max_buffered, SESSION_BUFFER);
        EXPECT(max_rss_kb - base_kb < 40 * 1024, "the daemon's VmRSS grew by %ld KiB while %zu MiB went through it", max_rss_kb - base_kb,
               mib);
        for (uint64_t end = now_ms() + 10000; !atomic_load(&f.done) && now_ms() < end;)
                (void)poll(NULL, 0, 10);
        REQUIRE(atomic_load(&f.done), "the sender did not finish");
        flood_stop(&f);
        EXPECT_INT(f.err, 0);
        EXPECT_INT(atomic_load(&f.sent), f.total);

        /* nothing more, then the peer's FIN */
        json_object *r = RECV(c, id, "\"timeout_ms\":0");
        EXPECT_INT(jbool(r, "timed_out"), 1);
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        r = RECV(c, id, "\"timeout_ms\":5000");
        EXPECT_INT(jbool(r, "eof"), 1);
        EXPECT_INT(jint(r, "bytes"), 0);
        info = CONN_INFO(c, id);
        EXPECT_INT(jint(info, "bytes_in"), f.total);
        EXPECT_INT(jint(jobj(info, "session"), "read"), f.total);
        OK(CALL(c, "session-close", id_arg(id, NULL)));
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 7. a session belongs to the uid that opened it ---- */

static void test_ownership(void) {
        if (geteuid() != 0) {
                printf("\n    SKIPPED: acting as another user needs root ");
                return;
        }
        Addr echo;
        const char *name = unique_name("echo");
        Daemon *d = start_daemon(NULL, name, &echo);
        const char *target = fmt_addr(&echo);
        open_up_dir(d);
        Ctl *root = CTL_OPEN(d, "root"), *nobody = CTL_OPEN_AS(d, NOBODY, NOBODY, "nobody");

        json_object *mine = OPEN(nobody, target, NULL);
        const char *nid = jstr_copy(mine, "id");
        EXPECT_INT(jint(mine, "owner_uid"), NOBODY);
        const char *rid = tstr("%s", jstr(OPEN(root, target, NULL), "id"));

        /* its own session: every verb works */
        SEND_TEXT(nobody, nid, "mine\n");
        EXPECT_STR(jstr(RECV(nobody, nid, "\"line\":true"), "data"), "mine\n");
        /* root's session: every verb is refused, and nothing happens to it */
        static const char *const verbs[][2] = { { "session-send", "\"data\":\"x\"" },
                                                { "session-recv", "\"timeout_ms\":0" },
                                                { "session-close", NULL },
                                                { "session-watch", NULL } };
        for (size_t i = 0; i < ELEMENTSOF_(verbs); i++) {
                json_object *e = ERR(CALL(nobody, verbs[i][0], id_arg(rid, verbs[i][1])), "permission-denied");
                EXPECT_STR(jstr(e, "message"), tstr("session %s belongs to uid 0 (you are uid %d)", rid, NOBODY));
        }
        /* a prefix finds it just as well, and is refused just as well */
        ERR(CALL(nobody, "session-recv", tstr("{\"id\":\"%.8s\",\"timeout_ms\":0}", rid)), "permission-denied");
        json_object *ri = CONN_INFO(root, rid);
        EXPECT_STR(jstr(ri, "state"), "ESTABLISHED");
        EXPECT_INT(jint(ri, "bytes_out"), 0);
        EXPECT_INT(jbool(jobj(ri, "session"), "watched"), 0);
        SEND_TEXT(root, rid, "root's\n");
        EXPECT_STR(jstr(RECV(root, rid, "\"line\":true"), "data"), "root's\n");

        /* root (an admin) may use anyone's session */
        SEND_TEXT(root, nid, "from root\n");
        EXPECT_STR(jstr(RECV(root, nid, "\"line\":true"), "data"), "from root\n");

        /* everyone sees every session's metadata, with its owner */
        json_object *list = jobj(OK(CALL(nobody, "sessions", NULL)), "sessions");
        int owners = 0;
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *o = json_object_array_get_idx(list, i);
                if (strcmp(jstr(o, "id"), nid) == 0 && jint(o, "owner_uid") == NOBODY)
                        owners |= 1;
                if (strcmp(jstr(o, "id"), rid) == 0 && jint(o, "owner_uid") == 0)
                        owners |= 2;
        }
        EXPECT(owners == 3 && json_object_array_length(list) == 2, "sessions as nobody: %s", jtext(list));
        json_object *ni = CONN_INFO(nobody, rid);
        EXPECT_INT(jint(jobj(ni, "session"), "owner_uid"), 0);

        /* a non-admin may not bind below 1024; port 0 or above is fine; root may */
        json_object *e = ERR(OPEN_REPLY(nobody, target, "\"bind\":\"127.0.0.1:1000\""), "permission-denied");
        EXPECT_STR(jstr(e, "message"), tstr("binding to port 1000 (below 1024) needs an admin (you are uid %d)", NOBODY));
        json_object *b = OPEN(nobody, target, "\"bind\":\"127.0.0.2:0\"");
        EXPECT(strncmp(jstr(b, "local"), "127.0.0.2:", 10) == 0, "bound session: %s", jtext(b));
        OK(CALL(nobody, "session-close", id_arg(jstr(b, "id"), "\"how\":\"reset\"")));
        b = OPEN(root, target, "\"bind\":\"127.0.0.3:1000\"");
        EXPECT_STR(jstr(b, "local"), "127.0.0.3:1000");
        OK(CALL(root, "session-close", id_arg(jstr(b, "id"), "\"how\":\"reset\"")));

        /* nobody closes its own; root closes nobody's other one */
        const char *nid2 = tstr("%s", jstr(OPEN(nobody, target, NULL), "id"));
        EXPECT_FIN_WAIT(OK(CALL(nobody, "session-close", id_arg(nid, NULL))));
        EXPECT_FIN_WAIT(OK(CALL(root, "session-close", id_arg(nid2, NULL))));
        OK(CALL(root, "session-close", id_arg(rid, NULL)));

        if (journal_available("ownership")) {
                expect_control_entry(d, "session-open", target, NOBODY);
                expect_control_entry(d, "session-close", nid, NOBODY);
                expect_control_entry(d, "session-close", nid2, 0);
                JList *l = entries(d, nid, "connect", 1);
                EXPECT_INT(l->n, 1);
                if (l->n == 1) {
                        EXPECT_FIELD(l->e[0], "TCPEDU_SESSION_OWNER_UID", "65534");
                        const char *msg = jget(l->e[0], "MESSAGE");
                        EXPECT(msg && strstr(msg, "(uid 65534)"), "MESSAGE '%s'", msg);
                }
                /* the refused verbs are not logged as if they had been done */
                l = journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=control", "TCPEDU_CONTROL_COMMAND=session-close",
                                  tstr("TCPEDU_CONTROL_UID=%d", NOBODY), NULL);
                for (size_t i = 0; i < l->n; i++) {
                        const char *args = jget(l->e[i], "TCPEDU_CONTROL_ARGS"), *res = jget(l->e[i], "TCPEDU_CONTROL_RESULT");
                        if (args && strstr(args, rid))
                                EXPECT(res && strcmp(res, "ok") != 0, "nobody's refused close of root's session logged as '%s'", res);
                }
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 8. limits and the idle timeout ---- */

static void test_limits(void) {
        Addr echo;
        const char *name = unique_name("echo");
        Daemon *d = start_daemon("max_sessions = 2\n", name, &echo);
        const char *target = fmt_addr(&echo);
        Ctl *c = CTL_OPEN(d, "control");

        const char *a = tstr("%s", jstr(OPEN(c, target, NULL), "id"));
        OPEN(c, target, NULL);
        json_object *e = ERR(OPEN_REPLY(c, target, NULL), "limit");
        EXPECT_STR(jstr(e, "message"), "cannot open a session: max_sessions reached (2)");
        json_object *ss = OK(CALL(c, "sessions", NULL));
        EXPECT_INT(jint(ss, "max_sessions"), 2);
        EXPECT_INT(jint(ss, "opened"), 2);
        EXPECT_INT(jint(ss, "refused_limit"), 1);
        EXPECT_INT(json_object_array_length(jobj(ss, "sessions")), 2);
        /* a reset frees its place at once */
        OK(CALL(c, "session-close", id_arg(a, "\"how\":\"reset\"")));
        WAIT_STATE(c, a, NULL);
        OPEN(c, target, NULL);
        if (journal_available("max_sessions")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "PRIORITY=4", NULL);
                bool found = false;
                for (size_t i = 0; i < l->n; i++)
                        found = found || (jget(l->e[i], "MESSAGE") && strstr(jget(l->e[i], "MESSAGE"), "max_sessions reached (2)"));
                EXPECT(found, "no warning about max_sessions in the journal");
        }
        EXPECT_INT(daemon_stop(d), 0);

        /* sessions count in max_connections too */
        d = start_daemon("max_connections = 2\n", name, &echo);
        target = fmt_addr(&echo);
        c = CTL_OPEN(d, "control");
        OPEN(c, target, NULL); /* the session and its server side: two connections */
        e = ERR(OPEN_REPLY(c, target, NULL), "limit");
        EXPECT_STR(jstr(e, "message"), "cannot open a session: max_connections reached (2)");
        EXPECT_INT(daemon_stop(d), 0);

        /* max_sessions = 0 turns them off */
        d = start_daemon("max_sessions = 0\n", name, &echo);
        c = CTL_OPEN(d, "control");
        e = ERR(OPEN_REPLY(c, fmt_addr(&echo), NULL), "permission-denied");
        EXPECT_STR(jstr(e, "message"), "cannot open a session: sessions are turned off (max_sessions = 0)");
        EXPECT_INT(jint(OK(CALL(c, "sessions", NULL)), "max_sessions"), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_idle_timeout(void) {
        Daemon *d = start_daemon("session_idle_timeout = 1\n", NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        int p = ACCEPT(lfd, peer);
        uint64_t t0 = now_ms();
        /* the daemon closes it: an active close, FIN first */
        EXPECT_INT(wait_closed(p, 5000), 0);
        uint64_t took = now_ms() - t0;
        EXPECT(took >= 900 && took < 4000, "an idle timeout of 1 s closed the session after %llu ms", (unsigned long long)took);
        fd_close(p);
        json_object *info = WAIT_STATE(c, id, "TIME_WAIT");
        EXPECT_STR(jstr(info, "close_reason"), "idle timeout");
        ERR(CALL(c, "session-send", id_arg(id, "\"data\":\"x\"")), "conflict");
        if (journal_available("session idle timeout")) {
                JList *t = transitions(d, id, 5);
                EXPECT_STR(path_of(t), "CLOSED>SYN_SENT>ESTABLISHED>FIN_WAIT_1>FIN_WAIT_2>TIME_WAIT");
                static const char *const tpath[][2] = { { "CLOSED", "SYN_SENT" },
                                                        { "SYN_SENT", "ESTABLISHED" },
                                                        { "ESTABLISHED", "FIN_WAIT_1" },
                                                        { "FIN_WAIT_1", "FIN_WAIT_2" },
                                                        { "FIN_WAIT_2", "TIME_WAIT" } };
                SessionRef ref = { .d = d, .id = id, .peer = target, .local = jstr_copy(s, "local"), .owner = 0 };
                for (size_t i = 0; i < t->n && i < 5; i++) {
                        CHECK_TRANSITION(&ref, t->e[i], tpath[i][0], tpath[i][1]);
                        /* the idle timeout is the cause of the close's first step, however it was seen */
                        EXPECT_CAUSE(t->e[i], i == 2 ? "idle timeout" : NULL);
                }
                JList *l = entries(d, id, "disconnect", 1);
                EXPECT_INT(l->n, 1);
                if (l->n == 1)
                        EXPECT_FIELD(l->e[0], "TCPEDU_REASON", "idle timeout");
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- the rest of the protocol: bad requests, half-close, send flow control, waiting replies ---- */

static void test_bad_requests(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        static const struct {
                const char *command, *args, *code;
        } bad[] = {
                { "session-open", "{}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1\"}", "bad-request" },
                { "session-open", "{\"target\":\"localhost:80\"}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1:0\"}", "bad-request" },
                { "session-open", "{\"target\":\"::1:80\"}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1:80\",\"timeout_ms\":0}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1:80\",\"timeout_ms\":600001}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1:80\",\"bind\":\"[::1]:0\"}", "bad-request" },
                { "session-open", "{\"target\":\"127.0.0.1:80\",\"watch\":1}", "bad-request" },
                { "session-open", "{\"target\":7}", "bad-request" },
                { "session-send", "{\"id\":\"ffffffff-0000\",\"data\":\"x\"}", "not-found" },
                { "session-recv", "{\"id\":\"ab\"}", "bad-request" },
                { "session-close", "{\"id\":\"ffffffff\"}", "not-found" },
                { "session-watch", "{}", "bad-request" },
        };
        for (size_t i = 0; i < ELEMENTSOF_(bad); i++) {
                json_object *r = CALL(c, bad[i].command, bad[i].args);
                json_object *e = jobj(r, "error");
                EXPECT(jbool(r, "ok") == 0 && jstr(e, "code") && strcmp(jstr(e, "code"), bad[i].code) == 0, "%s %s: expected %s, got %s",
                       bad[i].command, bad[i].args, bad[i].code, jtext(r));
        }
        /* a connect to a port that cannot be bound: connect-failed, nothing left behind */
        int busy = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Addr ba;
        REQUIRE_INT(addr_parse_ip("127.0.0.1", 0, &ba), 0);
        socklen_t len = sizeof(ba);
        REQUIRE(bind(busy, &ba.sa, sizeof(ba.in)) == 0 && listen(busy, 1) == 0 && getsockname(busy, &ba.sa, &len) == 0, "bind: %m");
        json_object *e = ERR(OPEN_REPLY(c, target, tstr("\"bind\":\"%s\"", fmt_addr(&ba))), "connect-failed");
        EXPECT(strstr(jstr(e, "message"), tstr("cannot bind to %s", fmt_addr(&ba))) != NULL, "message: %s", jstr(e, "message"));

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        int p = ACCEPT(lfd, peer);
        static const char *const bad_args[] = {
                "\"data\":\"x\",\"data_base64\":\"eA==\"",
                "\"data_base64\":\"not base64!\"",
                "\"data\":\"\"",
                "\"data\":7",
        };
        for (size_t i = 0; i < ELEMENTSOF_(bad_args); i++)
                ERR(CALL(c, "session-send", id_arg(id, bad_args[i])), "bad-request");
        ERR(CALL(c, "session-send", id_arg(id, NULL)), "bad-request");
        static const char *const bad_recv[] = { "\"bytes\":0,\"line\":true,\"timeout_ms\":0", "\"bytes\":1048577", "\"timeout_ms\":-1",
                                                "\"bytes\":2,\"line\":true", "\"line\":\"yes\"" };
        for (size_t i = 0; i < ELEMENTSOF_(bad_recv); i++) {
                json_object *r = CALL(c, "session-recv", id_arg(id, bad_recv[i]));
                if (i == 0) /* bytes 0 counts as not given */
                        EXPECT(jbool(r, "ok") == 1 || strcmp(jstr(jobj(r, "error"), "code"), "bad-request") == 0, "%s: %s", bad_recv[i],
                               jtext(r));
                else
                        ERR(r, "bad-request");
        }
        ERR(CALL(c, "session-close", id_arg(id, "\"how\":\"sideways\"")), "bad-request");
        /* only one recv may wait per session */
        int64_t waiting = CTL_SEND(c, "session-recv", id_arg(id, "\"timeout_ms\":10000"));
        ERR(CALL(c, "session-recv", id_arg(id, "\"timeout_ms\":0")), "conflict"); /* (in order: the first one waits now) */
        Ctl *c2 = CTL_OPEN(d, "second");
        ERR(CALL(c2, "session-recv", id_arg(id, "\"timeout_ms\":0")), "conflict");
        EXPECT_INT(send_all(p, "x", 1, IO_TIMEOUT_MS), 0);
        json_object *r = OK(CTL_REPLY(c, waiting, IO_TIMEOUT_MS));
        EXPECT_STR(jstr(r, "data"), "x");
        /* the daemon is fine after all that */
        SEND_TEXT(c2, id, "ok\n");
        char got[3];
        EXPECT_INT(recv_exact(p, got, 3, IO_TIMEOUT_MS), 0);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_half_close_and_ipv6(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Ctl *c = CTL_OPEN(d, "control");
        int lfd = own_fd(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Addr la;
        REQUIRE_INT(addr_parse_ip("::1", 0, &la), 0);
        socklen_t len = sizeof(la);
        if (lfd < 0 || bind(lfd, &la.sa, sizeof(la.in6)) < 0 || listen(lfd, 8) < 0 || getsockname(lfd, &la.sa, &len) < 0) {
                printf("\n    SKIPPED: no IPv6 loopback: %m ");
                EXPECT_INT(daemon_stop(d), 0);
                return;
        }
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        EXPECT_STR(jstr(s, "peer"), target);
        EXPECT(strncmp(jstr(s, "local"), "[::1]:", 6) == 0, "local %s", jstr(s, "local"));
        int p = ACCEPT(lfd, peer);
        EXPECT_STR(peer, jstr(s, "local"));

        /* shutdown: our FIN, and we keep reading what the peer still sends */
        SEND_TEXT(c, id, "question\n");
        json_object *r = OK(CALL(c, "session-close", id_arg(id, "\"how\":\"shutdown\"")));
        EXPECT_STR(jstr(r, "how"), "shutdown");
        char got[9];
        EXPECT_INT(recv_exact(p, got, 9, IO_TIMEOUT_MS), 0);
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        ERR(CALL(c, "session-send", id_arg(id, "\"data\":\"more\"")), "conflict");
        ERR(CALL(c, "session-close", id_arg(id, NULL)), "conflict");
        EXPECT_INT(send_all(p, "answer\n", 7, IO_TIMEOUT_MS), 0);
        r = RECV(c, id, "\"line\":true");
        EXPECT_STR(jstr(r, "data"), "answer\n");
        EXPECT_INT(jbool(r, "eof"), 0);
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        r = RECV(c, id, NULL);
        EXPECT_INT(jbool(r, "eof"), 1);
        WAIT_STATE(c, id, "TIME_WAIT");
        if (journal_available("half-close")) {
                JList *t = transitions(d, id, 5);
                EXPECT_STR(path_of(t), "CLOSED>SYN_SENT>ESTABLISHED>FIN_WAIT_1>FIN_WAIT_2>TIME_WAIT");
                JList *l = entries(d, id, "connect", 1);
                EXPECT_INT(l->n, 1);
                if (l->n == 1)
                        EXPECT_FIELD(l->e[0], "TCPEDU_PEER", target);
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* A peer that does not read: session-send's reply waits while more than session_buffer is unsent. */
static void test_send_flow_control(void) {
        Daemon *d = start_daemon("session_buffer = 64K\n", NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        int p = ACCEPT(lfd, peer);
        enum { CHUNK = 32 * 1024 };
        uint8_t *chunk = keep(malloc(CHUNK));
        const char *b64 = NULL;
        size_t queued = 0;
        json_object *r = NULL;
        int64_t waiting_id = -1;
        /* fill the kernel's buffers, then the daemon's: a reply that does not come at once */
        for (int i = 0; i < 2000 && waiting_id < 0; i++) {
                flood_pattern(chunk, CHUNK, queued);
                b64 = b64_encode(chunk, CHUNK);
                int64_t rid = CTL_SEND(c, "session-send", id_arg(id, tstr("\"data_base64\":\"%s\"", b64)));
                queued += CHUNK;
                int err = 0;
                json_object *o = ctl_read(c, 1000, &err);
                if (o)
                        ctl_queue(c, o);
                else {
                        /* no reply within a second: it waits if more than session_buffer is unsent */
                        REQUIRE(err == -ETIMEDOUT, "session-send: %s", strerror(-err));
                        if (jint(jobj(CONN_INFO(c, id), "session"), "unsent") > 64 * 1024) {
                                waiting_id = rid;
                                break;
                        }
                }
                r = OK(CTL_REPLY(c, rid, IO_TIMEOUT_MS));
                EXPECT_INT(jint(r, "bytes"), CHUNK);
                EXPECT(jint(r, "unsent") >= 0 && jint(r, "unsent") <= 64 * 1024, "unsent %lld over session_buffer", jint(r, "unsent"));
        }
        REQUIRE(waiting_id >= 0, "session-send never waited: %zu bytes queued to a peer that does not read", queued);
        json_object *info = CONN_INFO(c, id);
        EXPECT(jint(jobj(info, "session"), "unsent") > 64 * 1024, "unsent %lld while a send waits", jint(jobj(info, "session"), "unsent"));
        /* the peer reads: the reply comes, and every byte arrived in order */
        uint8_t *got = keep(malloc(queued)), *want = keep(malloc(queued));
        EXPECT_INT(recv_exact(p, got, queued, 15000), 0);
        flood_pattern(want, queued, 0);
        EXPECT(memcmp(got, want, queued) == 0, "the %zu bytes the peer got differ from what was sent", queued);
        r = OK(CTL_REPLY(c, waiting_id, IO_TIMEOUT_MS));
        EXPECT_INT(jint(r, "bytes"), CHUNK);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

/* Replies that wait on a session when it ends, or when their client goes. */
static void test_waiting_replies(void) {
        Daemon *d = start_daemon(NULL, NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        /* a recv waiting when the peer resets: answered at once */
        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id");
        int p = ACCEPT(lfd, peer);
        int64_t rid = CTL_SEND(c, "session-recv", id_arg(id, "\"timeout_ms\":20000"));
        /* it waits: a second recv is refused */
        Ctl *probe = CTL_OPEN(d, "probe");
        ERR(CALL(probe, "session-recv", id_arg(id, "\"timeout_ms\":0")), "conflict");
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        REQUIRE(setsockopt(p, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER: %m");
        uint64_t t0 = now_ms();
        fd_close(p);
        json_object *r = CTL_REPLY(c, rid, 10000);
        EXPECT(now_ms() - t0 < 5000, "the waiting recv was answered %llu ms after the reset", (unsigned long long)(now_ms() - t0));
        r = OK(r);
        EXPECT_INT(jint(r, "bytes"), 0);
        EXPECT_INT(jbool(r, "eof"), 1);
        EXPECT_INT(jbool(r, "timed_out"), 0);
        WAIT_STATE(c, id, NULL);
        if (journal_available("reset by the peer")) {
                JList *l = entries(d, id, "disconnect", 1);
                EXPECT_INT(l->n, 1);
        }

        /* clients that go away with requests waiting: the daemon carries on */
        Addr sa;
        SILENT_LISTENER(&sa);
        Ctl *gone = CTL_OPEN(d, "gone");
        CTL_SEND(gone, "session-open", tstr("{\"target\":\"%s\",\"timeout_ms\":500}", fmt_addr(&sa)));
        s = OPEN(c, target, NULL);
        const char *id2 = jstr_copy(s, "id");
        p = ACCEPT(lfd, peer);
        CTL_SEND(gone, "session-recv", id_arg(id2, "\"timeout_ms\":20000"));
        json_object *watched = OPEN(c, target, NULL);
        int p3 = ACCEPT(lfd, peer);
        OK(CALL(gone, "session-watch", id_arg(jstr(watched, "id"), NULL)));
        ctl_close(gone);
        /* the session whose open was waiting fails on its own; the others are untouched */
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                if (jint(OK(CALL(c, "sessions", NULL)), "failed") == 1)
                        break;
                (void)poll(NULL, 0, 50);
        }
        EXPECT_INT(jint(OK(CALL(c, "sessions", NULL)), "failed"), 1);
        EXPECT_INT(send_all(p, "still\n", 6, IO_TIMEOUT_MS), 0);
        EXPECT_INT(send_all(p3, "here\n", 5, IO_TIMEOUT_MS), 0);
        EXPECT_STR(jstr(RECV(c, id2, "\"line\":true"), "data"), "still\n");
        EXPECT_STR(jstr(RECV(c, jstr(watched, "id"), "\"line\":true"), "data"), "here\n");
        fd_close(p);
        fd_close(p3);
        /* a recv waiting when the daemon stops */
        s = OPEN(c, target, NULL);
        p = ACCEPT(lfd, peer);
        rid = CTL_SEND(c, "session-recv", id_arg(jstr(s, "id"), "\"timeout_ms\":20000"));
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

/* A watcher that does not read: the session's buffer fills and the peer is slowed, as with nobody
 * reading; then everything comes through the watch, byte-exact. */
static void test_slow_watcher(void) {
        Daemon *d = start_daemon_rss("session_buffer = 256K\n");
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control"), *w = CTL_OPEN(d, "watcher");

        const char *id = tstr("%s", jstr(OPEN(c, target, NULL), "id"));
        int p = ACCEPT(lfd, peer);
        OK(CALL(w, "session-watch", id_arg(id, NULL)));
        long base_kb = daemon_vmrss_kb(d);
        static Flood f;
        f = (Flood){ .fd = p, .total = 32u << 20 };
        REQUIRE(fcntl(p, F_SETFL, 0) == 0, "fcntl: %m");
        REQUIRE(pthread_create(&f.thread, NULL, flood_main, &f) == 0, "pthread_create");
        f.running = true;
        defer_fn(flood_stop, &f);
        REQUIRE(flood_stalls(&f, 500, 20000), "the sender never blocked");
        EXPECT(atomic_load(&f.sent) < f.total, "all of it was sent to a watcher that does not read");
        json_object *si = jobj(CONN_INFO(c, id), "session");
        EXPECT(jint(si, "buffered") <= 256 * 1024, "buffered %lld over session_buffer", jint(si, "buffered"));
        long kb = daemon_vmrss_kb(d);
        EXPECT(kb - base_kb < 40 * 1024, "VmRSS grew by %ld KiB with a watcher that does not read", kb - base_kb);

        /* now read the watch: every byte, in order */
        uint8_t *want = keep(malloc(64 * 1024));
        size_t got = 0;
        while (got < f.total) {
                json_object *e = ctl_event_within(w, 10000);
                REQUIRE(e != NULL, "no data event after %zu of %zu bytes", got, f.total);
                REQUIRE(jstr(e, "event") && strcmp(jstr(e, "event"), "data") == 0, "event %s", jtext(e));
                size_t n = 0;
                uint8_t *data = data_of(e, &n);
                REQUIRE(data && n > 0 && n <= 64 * 1024 && (size_t)jint(e, "bytes") == n, "data event of %zu bytes", n);
                flood_pattern(want, n, got);
                REQUIRE(memcmp(data, want, n) == 0, "watched bytes %zu..%zu differ", got, got + n);
                got += n;
        }
        EXPECT_INT(got, f.total);
        for (uint64_t end = now_ms() + 10000; !atomic_load(&f.done) && now_ms() < end;)
                (void)poll(NULL, 0, 10);
        flood_stop(&f);
        EXPECT_INT(f.err, 0);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

/* session_buffer bounds a line too; reload changes the session settings for what comes next. */
static void test_small_buffer_and_reload(void) {
        Daemon *d = start_daemon("session_buffer = 4K\n", NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        const char *id = tstr("%s", jstr(OPEN(c, target, NULL), "id"));
        int p = ACCEPT(lfd, peer);
        char line[10001];
        memset(line, 'a', 10000);
        line[10000] = '\n';
        EXPECT_INT(send_all(p, line, sizeof(line), IO_TIMEOUT_MS), 0);
        /* no newline fits in 4K: a full buffer is returned as it is, then the rest */
        json_object *r = RECV(c, id, "\"line\":true");
        EXPECT_INT(jint(r, "bytes"), 4096);
        size_t total = (size_t)jint(r, "bytes");
        while (total < sizeof(line)) {
                r = RECV(c, id, "\"line\":true");
                REQUIRE(jint(r, "bytes") > 0 && jint(r, "bytes") <= 4096, "recv line: %s", jtext(r));
                total += (size_t)jint(r, "bytes");
        }
        EXPECT_INT(total, sizeof(line));
        EXPECT(jstr(r, "data") && r && jstr(r, "data")[strlen(jstr(r, "data")) - 1] == '\n', "the last piece ends the line");
        ERR(CALL(c, "session-recv", id_arg(id, "\"bytes\":4097")), "bad-request");

        /* reload: max_sessions 1 with one open: the next is refused, the open one stays */
        REQUIRE_INT(daemon_reload(d, "[daemon]\nsession_buffer = 4K\nmax_sessions = 1\n"), 0);
        json_object *e = ERR(OPEN_REPLY(c, target, NULL), "limit");
        EXPECT_STR(jstr(e, "message"), "cannot open a session: max_sessions reached (1)");
        SEND_TEXT(c, id, "still open");
        char got[10];
        EXPECT_INT(recv_exact(p, got, 10, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, "still open", 10) == 0, "peer got '%.10s'", got);
        EXPECT_INT(jint(OK(CALL(c, "sessions", NULL)), "max_sessions"), 1);
        /* and a bigger buffer applies to the sessions there are */
        REQUIRE_INT(daemon_reload(d, "[daemon]\nsession_buffer = 8K\nmax_sessions = 1\n"), 0);
        EXPECT_INT(jint(jobj(CONN_INFO(c, id), "session"), "buffer_size"), 8192);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

/* The peer's data and FIN wait in the kernel, unread (the session's buffer is full), when the
 * session is closed: the rest is still read (half-close: delivered; close: dropped), the peer sees
 * our FIN, not a reset, and the path is the passive one the kernel took. */
static void close_with_unread(const char *how) {
        Daemon *d = start_daemon("session_buffer = 4K\n", NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");
        json_object *s = OPEN(c, fmt_addr(&la), NULL);
        const char *id = jstr_copy(s, "id"), *local = jstr_copy(s, "local");
        int p = ACCEPT(lfd, peer);
        enum { TOTAL = 4096 + 3000 };
        uint8_t *sent = keep(malloc(TOTAL));
        flood_pattern(sent, TOTAL, 0);
        EXPECT_INT(send_all(p, sent, TOTAL, IO_TIMEOUT_MS), 0);
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        /* the kernel has the FIN (CLOSE_WAIT) behind data the daemon did not read */
        TcpSocketInfo ti = { 0 };
        uint16_t lport = (uint16_t)atoi(strrchr(local, ':') + 1);
        for (uint64_t end = now_ms() + 10000; now_ms() < end; (void)poll(NULL, 0, 10))
                if (tcp_socket_info(lport, addr_port(&la), &ti) && ti.state == 8 && ti.recv_q > 0 &&
                    jint(jobj(CONN_INFO(c, id), "session"), "buffered") == 4096)
                        break;
        REQUIRE(ti.state == 8 && ti.recv_q > 0, "the daemon's socket: state %d, Recv-Q %lu", ti.state, ti.recv_q);

        OK(CALL(c, "session-close", id_arg(id, tstr("\"how\":\"%s\"", how))));
        if (strcmp(how, "shutdown") == 0) {
                /* as tcpeductl connect takes it: a watcher, to the end */
                OK(CALL(c, "session-watch", id_arg(id, NULL)));
                size_t got = 0;
                uint8_t *back = keep(malloc(TOTAL));
                for (json_object *e = EVENT(c); e && strcmp(jstr(e, "event"), "end") != 0; e = EVENT(c)) {
                        size_t n = 0;
                        uint8_t *data = strcmp(jstr(e, "event"), "data") == 0 ? data_of(e, &n) : NULL;
                        REQUIRE(got + n <= TOTAL, "%zu bytes at %zu: more than was sent", n, got);
                        if (data)
                                memcpy(back + got, data, n);
                        got += n;
                }
                EXPECT(got == TOTAL && memcmp(back, sent, TOTAL) == 0, "%zu of %d bytes came after the half-close", got, (int)TOTAL);
        }
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        WAIT_STATE(c, id, NULL);
        if (journal_available("close with unread data")) {
                JList *t = transitions(d, id, 5);
                EXPECT_STR(path_of(t), "CLOSED>SYN_SENT>ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSED");
                if (t->n == 5) /* (LAST_ACK, on loopback, is over before TCP_INFO can see it) */
                        EXPECT_FIELD(t->e[4], "TCPEDU_STATE_SOURCE", "kernel");
        }
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_half_close_with_unread(void) {
        close_with_unread("shutdown");
}

static void test_close_with_unread(void) {
        close_with_unread("close");
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "session to the echo server, both sides in the journal", test_echo_both_sides },
                { "the peer closes first: CLOSE_WAIT held, data byte-exact both ways", test_peer_closes_first },
                { "connect refused; connect timeout", test_refused_and_timeout },
                { "no route: connect() fails at once, no SYN", test_unreachable_route },
                { "ICMP host unreachable in answer to the SYN", test_icmp_unreachable },
                { "watch: events in order", test_watch },
                { "ephemeral sessions end with their control connection", test_ephemeral },
                { "session_buffer bounds a 100 MiB flood; all of it read byte-exact", test_buffer_bound },
                { "a session belongs to its opener; admins may use any", test_ownership },
                { "max_sessions, max_connections, sessions off", test_limits },
                { "session_idle_timeout closes an idle session", test_idle_timeout },
                { "bad requests, conflicts", test_bad_requests },
                { "half-close over IPv6", test_half_close_and_ipv6 },
                { "session-send waits while the peer does not read", test_send_flow_control },
                { "waiting replies when sessions or clients end", test_waiting_replies },
                { "a watcher that does not read: bounded, then byte-exact", test_slow_watcher },
                { "a line longer than session_buffer; reload", test_small_buffer_and_reload },
                { "half-close with the peer's data and FIN unread: all of it delivered", test_half_close_with_unread },
                { "close with the peer's data and FIN unread: our FIN, no reset", test_close_with_unread },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                SESSION_SUITE("sessions", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
