/* SPDX-License-Identifier: MIT */
#include "journal-check.h"

#include <stdlib.h>
#include <string.h>

#include "tcp-state.h"

bool is_conn_id(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                char c = s[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return true;
}

static bool str_eq(const char *a, const char *b) {
        return a && strcmp(a, b) == 0;
}

static bool is_number(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

void check_common(ConnRef *ref, json_object *e, const char *message_id, const char *event) {
        const char *id = jget(e, "TCPEDU_CONN_ID");

        EXPECT_STR(jget(e, "SYSLOG_IDENTIFIER"), "tcpedud");
        EXPECT_STR(jget(e, "MESSAGE_ID"), message_id);
        EXPECT_STR(jget(e, "TCPEDU_EVENT"), event);
        EXPECT_STR(jget(e, "TCPEDU_SERVER"), ref->server);
        EXPECT_STR(jget(e, "TCPEDU_SERVER_TYPE"), "echo");
        EXPECT_STR(jget(e, "TCPEDU_ROLE"), "server");
        EXPECT_STR(jget(e, "TCPEDU_PEER"), ref->peer);
        EXPECT(is_conn_id(id), "TCPEDU_CONN_ID '%s' is not a lowercase UUID", id ? id : "(none)");
        if (!ref->id && id)
                ref->id = tstr("%s", id);
        else
                EXPECT_STR(id, ref->id);
}

void check_connect(ConnRef *ref, json_object *e) {
        check_common(ref, e, MID_CONNECT, "connect");
        EXPECT_STR(jget(e, "TCPEDU_LOCAL"), ref->local);
        EXPECT_STR(jget(e, "MESSAGE"),
                   tstr("New connection from %s to %s (server %s, ID: %s)", ref->peer, ref->local, ref->server, ref->id ? ref->id : "?"));
}

const char *edge_event(const char *old_state, const char *new_state) {
        const TcpTransition *t = tcp_transition_find(tcp_state_from_string(old_state), tcp_state_from_string(new_state));
        return t ? t->event : NULL;
}

void check_transition(ConnRef *ref, json_object *e, const char *old_state, const char *new_state) {
        check_common(ref, e, MID_TRANSITION, "transition");
        EXPECT_STR(jget(e, "TCPEDU_OLD_STATE"), old_state);
        EXPECT_STR(jget(e, "TCPEDU_NEW_STATE"), new_state);
        EXPECT_STR(jget(e, "MESSAGE"), tstr("Connection %s: %s -> %s", ref->id ? ref->id : "?", old_state, new_state));
        EXPECT_STR(jget(e, "TCPEDU_LOCAL"), ref->local);
        EXPECT_STR(jget(e, "PRIORITY"), "6");
        const char *src = jget(e, "TCPEDU_STATE_SOURCE");
        EXPECT(src && (strcmp(src, "kernel") == 0 || strcmp(src, "inferred") == 0), "%s -> %s: TCPEDU_STATE_SOURCE '%s'", old_state,
               new_state, src ? src : "(none)");
        const char *event = edge_event(old_state, new_state), *reason = jget(e, "TCPEDU_REASON");
        EXPECT(event, "%s -> %s is no edge of the table", old_state, new_state);
        EXPECT(event && reason && strcmp(reason, event) == 0, "%s -> %s: TCPEDU_REASON '%s', expected '%s'", old_state, new_state,
               reason ? reason : "(none)", event ? event : "(none)");
        const char *dur = jget(e, "TCPEDU_STATE_DURATION_USEC");
        EXPECT(is_number(dur), "%s -> %s: TCPEDU_STATE_DURATION_USEC '%s'", old_state, new_state, dur ? dur : "(none)");
        const char *mono = jget(e, "TCPEDU_MONOTONIC_USEC");
        EXPECT(is_number(mono), "%s -> %s: TCPEDU_MONOTONIC_USEC '%s'", old_state, new_state, mono ? mono : "(none)");
}

void expect_source(json_object *e, const char *state_source, const char *kernel_state, const char *kernel_source) {
        const char *what = tstr("%s -> %s", jget(e, "TCPEDU_OLD_STATE"), jget(e, "TCPEDU_NEW_STATE"));
        const char *v = jget(e, "TCPEDU_STATE_SOURCE");
        EXPECT(v && strcmp(v, state_source) == 0, "%s: TCPEDU_STATE_SOURCE '%s', expected '%s'", what, v ? v : "(none)", state_source);
        v = jget(e, "TCPEDU_KERNEL_STATE");
        if (kernel_state)
                EXPECT(v && strcmp(v, kernel_state) == 0, "%s: TCPEDU_KERNEL_STATE '%s', expected '%s'", what, v ? v : "(none)",
                       kernel_state);
        else
                EXPECT(!v, "%s: TCPEDU_KERNEL_STATE '%s', expected none", what, v);
        v = jget(e, "TCPEDU_KERNEL_SOURCE");
        if (kernel_source)
                EXPECT(v && strcmp(v, kernel_source) == 0, "%s: TCPEDU_KERNEL_SOURCE '%s', expected '%s'", what, v ? v : "(none)",
                       kernel_source);
        else
                EXPECT(!v, "%s: TCPEDU_KERNEL_SOURCE '%s', expected none", what, v);
}

void expect_cause(json_object *e, const char *cause) {
        const char *what = tstr("%s -> %s", jget(e, "TCPEDU_OLD_STATE"), jget(e, "TCPEDU_NEW_STATE"));
        const char *v = jget(e, "TCPEDU_CAUSE");
        if (cause)
                EXPECT(v && strcmp(v, cause) == 0, "%s: TCPEDU_CAUSE '%s', expected '%s'", what, v ? v : "(none)", cause);
        else
                EXPECT(!v, "%s: TCPEDU_CAUSE '%s', expected none", what, v);
}

void expect_accept_step(json_object *e) {
        EXPECT_STR(jget(e, "TCPEDU_OLD_STATE"), "LISTEN");
        EXPECT_STR(jget(e, "TCPEDU_NEW_STATE"), "SYN_RECEIVED");
        expect_source(e, "inferred", NULL, NULL);
        EXPECT_STR(jget(e, "TCPEDU_STATE_DURATION_USEC"), "0");
        expect_cause(e, NULL);
}

void check_unwatched(ConnRef *ref, json_object *e, const char *state, const char *kernel_state, const char *why) {
        check_common(ref, e, MID_UNWATCHED, "unwatched");
        EXPECT_STR(jget(e, "TCPEDU_LOCAL"), ref->local);
        EXPECT_STR(jget(e, "TCPEDU_STATE"), state);
        const char *k = jget(e, "TCPEDU_KERNEL_STATE");
        if (kernel_state)
                EXPECT(k && strcmp(k, kernel_state) == 0, "unwatched: TCPEDU_KERNEL_STATE '%s', expected '%s'", k ? k : "(none)",
                       kernel_state);
        else
                EXPECT(!k, "unwatched: TCPEDU_KERNEL_STATE '%s', expected none", k);
        EXPECT_STR(jget(e, "TCPEDU_REASON"), why);
        EXPECT_STR(jget(e, "MESSAGE"), tstr("Connection %s: no longer watched in %s (kernel: %s): %s", ref->id ? ref->id : "?", state,
                                            kernel_state ? kernel_state : "no socket", why));
}

JList *entries_final(ConnRef *ref) {
        char *pid = tstr("_PID=%d", (int)ref->d->pid), *server = tstr("TCPEDU_SERVER=%s", ref->server);
        JList *stop = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, server, "MESSAGE_ID=" MID_SERVER_STOP, NULL);
        EXPECT(stop->n == 1, "%zu server-stop entries for %s after the daemon exited", stop->n, ref->server);
        return journal_query(pid, server, tstr("TCPEDU_PEER=%s", ref->peer), NULL);
}

void check_daemon_first_path(ConnRef *ref, const char *cause, size_t bytes) {
        char *pid = tstr("_PID=%d", (int)ref->d->pid);
        JList *c = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_PEER=%s", ref->peer), "TCPEDU_EVENT=connect", NULL);
        REQUIRE(c->n == 1, "%zu connect entries for peer %s", c->n, ref->peer);
        check_connect(ref, c->e[0]);
        REQUIRE(ref->id != NULL, "no connection ID");

        char *id = tstr("TCPEDU_CONN_ID=%s", ref->id);
        JList *disc = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, id, "TCPEDU_EVENT=disconnect", NULL);
        JList *t = journal_wait(5, JOURNAL_TIMEOUT_MS, pid, id, "TCPEDU_EVENT=transition", NULL);
        static const char *const path[][2] = {
                { "LISTEN", "SYN_RECEIVED" },   { "SYN_RECEIVED", "ESTABLISHED" }, { "ESTABLISHED", "FIN_WAIT_1" },
                { "FIN_WAIT_1", "FIN_WAIT_2" }, { "FIN_WAIT_2", "TIME_WAIT" },
        };
        EXPECT(t->n >= 5, "%zu transitions for connection %s, expected at least 5", t->n, ref->id);
        if (t->n < 5)
                journal_print(journal_query(pid, id, NULL), "entries of the connection");
        for (size_t i = 0; i < t->n && i < 5; i++)
                check_transition(ref, t->e[i], path[i][0], path[i][1]);
        if (t->n >= 5) {
                expect_accept_step(t->e[0]);
                expect_source(t->e[1], "kernel", "ESTABLISHED", "tcp_info");
                expect_cause(t->e[1], NULL);
                /* The cause sits on the first step of the close, whether the kernel showed FIN_WAIT_1
                 * or (on loopback the ACK of our FIN may be back before the daemon can look) the
                 * step was inferred on the way to FIN_WAIT_2. */
                if (str_eq(jget(t->e[2], "TCPEDU_STATE_SOURCE"), "kernel"))
                        expect_source(t->e[2], "kernel", "FIN_WAIT1", "tcp_info");
                else
                        expect_source(t->e[2], "inferred", NULL, NULL);
                expect_cause(t->e[2], cause);
                if (str_eq(jget(t->e[3], "TCPEDU_STATE_SOURCE"), "kernel"))
                        expect_source(t->e[3], "kernel", "FIN_WAIT2", "tcp_info");
                else
                        expect_source(t->e[3], "inferred", NULL, NULL);
                expect_cause(t->e[3], NULL);
                expect_source(t->e[4], "kernel", "TIME_WAIT", "sock_diag");
                expect_cause(t->e[4], NULL);
        }
        EXPECT(disc->n == 1, "%zu disconnect entries for connection %s", disc->n, ref->id);
        if (disc->n == 1) {
                check_common(ref, disc->e[0], MID_DISCONNECT, "disconnect");
                EXPECT_STR(jget(disc->e[0], "TCPEDU_REASON"), cause);
                EXPECT_STR(jget(disc->e[0], "TCPEDU_BYTES_IN"), tstr("%zu", bytes));
                EXPECT_STR(jget(disc->e[0], "TCPEDU_BYTES_OUT"), tstr("%zu", bytes));
        }
}
