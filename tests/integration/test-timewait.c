/* SPDX-License-Identifier: MIT */
/* The slow one: the daemon closes first (idle timeout), the kernel keeps the 4-tuple in TIME_WAIT
 * for about 60 s, and the daemon logs its end, seen by sock_diag. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "journal-check.h"
#include "test-util.h"

#define TIME_WAIT_TIMEOUT_MS 90000

static void test_time_wait_ends(void) {
        char *name = unique_name("tw");
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(tstr("[daemon]\nlog_transitions = all\n\n[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n"
                                      "idle_timeout = 1\n",
                                      name),
                                 NULL);
        Addr a;

        if (!journal_available("TIME_WAIT")) {
                EXPECT_INT(daemon_stop(d), 0);
                return;
        }
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, sizeof(local));
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));
        int r = wait_closed(fd, 5000);
        REQUIRE(r == 0, "no EOF within 5 s of an idle_timeout of 1 s: %s", strerror(-r));
        sock_close(fd);

        ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
        check_daemon_first_path(&ref, "idle timeout", 0);
        REQUIRE(ref.id != NULL, "no connection ID");

        uint64_t t0 = now_ms();
        JList *l = journal_wait(1, TIME_WAIT_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", ref.id),
                                "TCPEDU_EVENT=transition", "TCPEDU_OLD_STATE=TIME_WAIT", NULL);
        printf("(TIME_WAIT -> CLOSED logged %.1f s after the client closed) ", (double)(now_ms() - t0) / 1000.0);
        EXPECT(l->n == 1, "%zu TIME_WAIT -> ... entries within %d s", l->n, TIME_WAIT_TIMEOUT_MS / 1000);
        if (l->n == 1) {
                json_object *e = l->e[0];
                check_transition(&ref, e, "TIME_WAIT", "CLOSED");
                /* The 4-tuple is gone: no kernel state, only the lookup that did not find it. The reason
                 * is the edge's event (check_transition()); the kernel's own timer needs no cause. */
                expect_source(e, "kernel", NULL, "sock_diag");
                EXPECT_STR(jget(e, "TCPEDU_REASON"), "2*MSL timer expired: the kernel drops the connection");
                expect_cause(e, NULL);
                const char *dur = jget(e, "TCPEDU_STATE_DURATION_USEC");
                unsigned long long usec = dur ? strtoull(dur, NULL, 10) : 0;
                EXPECT(usec >= 55000000ULL && usec <= 70000000ULL, "TIME_WAIT lasted %llu usec, expected 55-70 s", usec);
        }
        /* Nothing after CLOSED. */
        JList *all = journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", ref.id), "TCPEDU_EVENT=transition", NULL);
        EXPECT(all->n == 6, "%zu transitions for the connection, expected 6", all->n);
        if (all->n != 6)
                journal_print(all, "transitions of the connection");
        EXPECT_INT(daemon_stop(d), 0);
        /* The daemon saw the end: it stopped with nothing left to watch, so no unwatched record. */
        JList *fin = entries_final(&ref);
        EXPECT_INT(jfilter(fin, "TCPEDU_EVENT", "unwatched")->n, 0);
        EXPECT_INT(jfilter(fin, "TCPEDU_EVENT", "transition")->n, 6);
}

static CU_TestInfo timewait_tests[] = {
        { "idle timeout, then TIME_WAIT ends after about 60 s", test_time_wait_ends },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("timewait", timewait_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
