/* SPDX-License-Identifier: MIT */
/* The slow one for sessions: a session closes first, the kernel keeps its 4-tuple in TIME_WAIT for
 * about 60 s, and the daemon logs the end, seen by sock_diag; a watcher of the session gets the
 * same transition and then "end"; `sessions` lists it in TIME_WAIT meanwhile. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session-client.h"

#define TIME_WAIT_TIMEOUT_MS 90000

static void test_session_time_wait_ends(void) {
        const char *name = unique_name("echo");
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name), NULL);
        Addr echo;
        char target[ADDR_STR_MAX];

        REQUIRE(daemon_listener(d, "127.0.0.1", &echo), "no listener");
        addr_format(&echo, target, sizeof(target));
        Ctl *c = CTL_OPEN(d, "control"), *w = CTL_OPEN(d, "watcher");
        json_object *s = OPEN(c, target, NULL);
        const char *id = jstr_copy(s, "id"), *local = jstr_copy(s, "local");
        OK(CALL(w, "session-watch", id_arg(id, NULL)));
        SEND_TEXT(c, id, "ping\n");
        json_object *e = EVENT(w);
        EXPECT_STR(jstr(e, "event"), "data");
        EXPECT_STR(jstr(e, "data"), "ping\n");

        uint64_t t0 = now_ms();
        OK(CALL(c, "session-close", id_arg(id, NULL)));
        /* the watcher: FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT, disconnected (in this order) */
        const char *seq = "";
        for (int i = 0; i < 4; i++) {
                e = EVENT(w);
                const char *ev = jstr(e, "event");
                seq = tstr("%s%s%s", seq, i ? " " : "",
                           ev && strcmp(ev, "transition") == 0 ? tstr("%s>%s", jstr(e, "old_state"), jstr(e, "new_state")) : ev);
        }
        EXPECT_STR(seq, "ESTABLISHED>FIN_WAIT_1 FIN_WAIT_1>FIN_WAIT_2 FIN_WAIT_2>TIME_WAIT disconnected");
        /* meanwhile the session is still listed, in TIME_WAIT */
        json_object *list = jobj(OK(CALL(c, "sessions", NULL)), "sessions");
        json_object *o = list && json_object_array_length(list) == 1 ? json_object_array_get_idx(list, 0) : NULL;
        EXPECT(o && strcmp(jstr(o, "id"), id) == 0 && strcmp(jstr(o, "state"), "TIME_WAIT") == 0, "sessions during TIME_WAIT: %s",
               jtext(list));

        /* about 60 s later: TIME_WAIT -> CLOSED, then end */
        e = ctl_event_at(__FILE__, __LINE__, w, TIME_WAIT_TIMEOUT_MS);
        printf("(TIME_WAIT -> CLOSED seen by the watcher %.1f s after the close) ", (double)(now_ms() - t0) / 1000.0);
        EXPECT_STR(jstr(e, "event"), "transition");
        EXPECT_STR(jstr(e, "old_state"), "TIME_WAIT");
        EXPECT_STR(jstr(e, "new_state"), "CLOSED");
        EXPECT_STR(jstr(e, "state_source"), "kernel");
        EXPECT_STR(jstr(e, "kernel_source"), "sock_diag");
        e = EVENT(w);
        EXPECT_STR(jstr(e, "event"), "end");
        EXPECT_STR(jstr(e, "state"), "CLOSED");
        EXPECT_STR(jstr(e, "conn_id"), id);
        CTL_QUIET(w);
        list = jobj(OK(CALL(c, "sessions", NULL)), "sessions");
        EXPECT_INT(json_object_array_length(list), 0);

        if (journal_available("session TIME_WAIT")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id),
                                        "TCPEDU_EVENT=transition", "TCPEDU_OLD_STATE=TIME_WAIT", NULL);
                EXPECT_INT(l->n, 1);
                if (l->n == 1) {
                        e = l->e[0];
                        EXPECT_STR(jget(e, "MESSAGE"), tstr("Session %s: TIME_WAIT -> CLOSED", id));
                        EXPECT_STR(jget(e, "MESSAGE_ID"), MID_TRANSITION);
                        EXPECT_STR(jget(e, "TCPEDU_NEW_STATE"), "CLOSED");
                        EXPECT_STR(jget(e, "TCPEDU_ROLE"), "client");
                        EXPECT_STR(jget(e, "TCPEDU_SESSION_OWNER_UID"), "0");
                        EXPECT_STR(jget(e, "TCPEDU_PEER"), target);
                        EXPECT_STR(jget(e, "TCPEDU_LOCAL"), local);
                        EXPECT(jget(e, "TCPEDU_SERVER") == NULL, "TCPEDU_SERVER '%s' on a session", jget(e, "TCPEDU_SERVER"));
                        /* the 4-tuple is gone: no kernel state, only the lookup that did not find it */
                        EXPECT_STR(jget(e, "TCPEDU_STATE_SOURCE"), "kernel");
                        EXPECT_STR(jget(e, "TCPEDU_KERNEL_SOURCE"), "sock_diag");
                        EXPECT(jget(e, "TCPEDU_KERNEL_STATE") == NULL, "TCPEDU_KERNEL_STATE '%s'", jget(e, "TCPEDU_KERNEL_STATE"));
                        /* the reason is the edge's event; the kernel's own timer needs no cause */
                        EXPECT_STR(jget(e, "TCPEDU_REASON"), edge_event("TIME_WAIT", "CLOSED"));
                        EXPECT_STR(jget(e, "TCPEDU_REASON"), "2*MSL timer expired: the kernel drops the connection");
                        EXPECT(jget(e, "TCPEDU_CAUSE") == NULL, "TCPEDU_CAUSE '%s' on TIME_WAIT -> CLOSED", jget(e, "TCPEDU_CAUSE"));
                        const char *mono = jget(e, "TCPEDU_MONOTONIC_USEC");
                        EXPECT(mono && *mono && strspn(mono, "0123456789") == strlen(mono), "TCPEDU_MONOTONIC_USEC '%s'", mono);
                        const char *dur = jget(e, "TCPEDU_STATE_DURATION_USEC");
                        unsigned long long usec = dur ? strtoull(dur, NULL, 10) : 0;
                        EXPECT(usec >= 55000000ULL && usec <= 65000000ULL, "TIME_WAIT lasted %llu usec, expected 55-65 s", usec);
                }
                /* nothing after CLOSED: six transitions in all */
                JList *all = journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id), "TCPEDU_EVENT=transition", NULL);
                EXPECT_INT(all->n, 6);
                if (all->n != 6)
                        journal_print(all, "transitions of the session");
        }
        EXPECT_INT(daemon_stop(d), 0);
        if (journal_available("session TIME_WAIT, after the stop")) {
                /* the daemon saw the end of both sides: it stopped with nothing left to watch */
                JList *stop = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_SERVER_STOP,
                                           tstr("TCPEDU_SERVER=%s", name), NULL);
                EXPECT_INT(stop->n, 1);
                JList *u = journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=unwatched", NULL);
                EXPECT_INT(u->n, 0);
                if (u->n)
                        journal_print(u, "unwatched entries");
        }
}

static CU_TestInfo timewait_tests[] = {
        { "a session's TIME_WAIT ends after about 60 s", test_session_time_wait_ends },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                SESSION_SUITE("session-timewait", timewait_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
