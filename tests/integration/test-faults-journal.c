/* SPDX-License-Identifier: MIT */
/* Fault injection: journald hung (SIGSTOP) and gone (SIGKILL). The daemon keeps serving and
 * answering tcpeductl; what it could not write is counted in status and reported in the journal
 * once journald is back, and logging resumes. The program runs its own journald in a mount
 * namespace of its own (faults.h): the journald other tests share is never stopped. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

static bool own_journald;

static bool need_own_journald(const char *test) {
        if (own_journald)
                return true;
        printf("\n    SKIPPED %s: no journald of the test's own (needs root and a mount namespace)\n", test);
        return false;
}

static Daemon *start_echo(const char *name, Addr *a) {
        Daemon *d =
                daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name), &(DaemonOptions){ .log_target = "journal" });
        REQUIRE(daemon_listener(d, "127.0.0.1", a), "no listener");
        return d;
}

/* One short connection: connect, echo, close (client first): 6 journal entries with log_transitions = all. */
static int one_connection(const Addr *a, char *peer, size_t size) {
        int fd = tcp_connect(a, NULL);
        if (fd < 0)
                return fd;
        if (peer)
                sock_local(fd, peer, size);
        int r = echo_check(fd, "x", 1, IO_TIMEOUT_MS);
        int c = close_graceful(fd);
        return r < 0 ? r : c;
}

/* The daemon's log-dropped reports until one says `total` (full + failed) entries were lost. */
static JList *wait_drop_report(Daemon *d, long long full, long long failed) {
        uint64_t deadline = now_ms() + 20000;
        for (;;) {
                JList *l = journal_query(tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_LOG_DROPPED, NULL);
                for (size_t i = 0; i < l->n; i++) {
                        const char *f = jget(l->e[i], "TCPEDU_DROPPED_FULL"), *w = jget(l->e[i], "TCPEDU_DROPPED_FAILED");
                        if (f && w && atoll(f) == full && atoll(w) == failed)
                                return l;
                }
                if (now_ms() > deadline) {
                        journal_print(l, "log-dropped entries");
                        return NULL;
                }
                (void)poll(NULL, 0, 200);
        }
}

static void test_journald_hung(void) {
        if (!need_own_journald("journald hung"))
                return;
        Addr a;
        const char *name = unique_name("jhung");
        Daemon *d = start_echo(name, &a);
        int keep = tcp_connect(&a, NULL);
        REQUIRE(keep >= 0, "connect");
        REQUIRE_INT(one_connection(&a, NULL, 0), 0);

        REQUIRE(kill(journald_pid, SIGSTOP) == 0, "SIGSTOP journald: %m");
        /* connections until the daemon's 4 MiB queue is full and entries are dropped */
        unsigned conns = 0, status_calls = 0, echo_fail = 0;
        long long full = 0;
        uint64_t start = now_ms();
        while (full == 0 && conns < 40000 && now_ms() - start < 90000) {
                for (int i = 0; i < 100; i++, conns++)
                        REQUIRE_INT(one_connection(&a, NULL, 0), 0);
                json_object *o = CTL_JSON(d, "status");
                REQUIRE(o != NULL, "tcpeductl status does not answer while journald is stopped");
                status_calls++;
                full = jnum(o, "log.dropped_queue_full");
                echo_fail += echo_check(keep, "k", 1, IO_TIMEOUT_MS) != 0;
        }
        json_object *o = CTL_JSON(d, "status");
        printf("\n    journald stopped: %u connections in %llu ms, then status says %lld entries dropped (queue full), %lld queued, "
               "%lld written\n",
               conns, (unsigned long long)(now_ms() - start), jnum(o, "log.dropped_queue_full"), jnum(o, "log.queued"),
               jnum(o, "log.written"));
        EXPECT(full > 0, "no entry was dropped after %u connections with journald stopped", conns);
        EXPECT_INT(echo_fail, 0);
        EXPECT(jnum(o, "log.queued") > 0, "nothing waits in the queue while journald is stopped");
        EXPECT_INT(jnum(o, "log.dropped_write_failed"), 0);
        EXPECT(daemon_alive(d), "the daemon died");

        REQUIRE(kill(journald_pid, SIGCONT) == 0, "SIGCONT journald: %m");
        /* the queue drains; what was dropped stays counted */
        uint64_t deadline = now_ms() + 30000;
        do {
                o = CTL_JSON(d, "status");
        } while (o && jnum(o, "log.queued") > 0 && now_ms() < deadline && poll(NULL, 0, 100) >= 0);
        EXPECT_INT(jnum(o, "log.queued"), 0);
        full = jnum(o, "log.dropped_queue_full");
        EXPECT(jnum(o, "log.dropped") == full, "dropped %lld, queue full %lld", jnum(o, "log.dropped"), full);
        /* logging resumes: a connection made now is in the journal */
        char peer[ADDR_STR_MAX];
        REQUIRE_INT(one_connection(&a, peer, sizeof(peer)), 0);
        JList *l = journal_wait(1, 30000, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=disconnect", tstr("TCPEDU_PEER=%s", peer), NULL);
        EXPECT(l->n == 1, "the connection made after journald came back is not in the journal");
        /* and the loss is reported with the count status gives */
        l = wait_drop_report(d, full, 0);
        EXPECT(l != NULL, "no log-dropped entry with TCPEDU_DROPPED_FULL=%lld", full);
        if (l && l->n > 0)
                EXPECT(strstr(jget(l->e[l->n - 1], "MESSAGE"), "log entries could not be written") != NULL, "log-dropped: %s",
                       jget(l->e[l->n - 1], "MESSAGE"));
        /* nothing lost silently: every entry made was written or counted, and every entry written is
         * in the journal (with the loss reports, which the writer adds) */
        EXPECT_INT(echo_check(keep, "k", 1, IO_TIMEOUT_MS), 0);
        deadline = now_ms() + 10000;
        do {
                o = CTL_JSON(d, "status");
        } while (o && jnum(o, "log.queued") > 0 && now_ms() < deadline && poll(NULL, 0, 100) >= 0);
        long long made = jnum(o, "log.submitted"), written = jnum(o, "log.written"), dropped = jnum(o, "log.dropped");
        EXPECT(made == written + dropped, "made %lld, written %lld, dropped %lld", made, written, dropped);
        JList *reports = journal_query(tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_LOG_DROPPED, NULL);
        JList *all = journal_wait((size_t)written + reports->n, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), NULL);
        printf("    status: %lld entries made, %lld written, %lld dropped; the journal has %zu entries of the daemon, %zu of them "
               "loss reports\n",
               made, written, dropped, all->n, reports->n);
        EXPECT(all->n == (size_t)written + reports->n, "%zu entries in the journal, %lld written and %zu loss reports", all->n, written,
               reports->n);
        EXPECT_INT(close_graceful(keep), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_journald_gone(void) {
        if (!need_own_journald("journald gone"))
                return;
        Addr a;
        const char *name = unique_name("jgone");
        Daemon *d = start_echo(name, &a);
        int keep = tcp_connect(&a, NULL);
        REQUIRE(keep >= 0, "connect");
        REQUIRE_INT(one_connection(&a, NULL, 0), 0);

        journald_kill();
        /* the socket file stays, with nobody behind it: every write fails */
        for (int i = 0; i < 20; i++)
                REQUIRE_INT(one_connection(&a, NULL, 0), 0);
        uint64_t deadline = now_ms() + 10000;
        json_object *o;
        do
                o = CTL_JSON(d, "status");
        while (o && (jnum(o, "log.dropped_write_failed") < 20 * 6 || jnum(o, "log.queued") > 0) && now_ms() < deadline &&
               poll(NULL, 0, 100) >= 0);
        long long failed = jnum(o, "log.dropped_write_failed");
        printf("\n    journald killed: 20 connections, status says %lld entries failed, %lld dropped with the queue full\n", failed,
               jnum(o, "log.dropped_queue_full"));
        EXPECT(failed >= 20 * 6, "only %lld failed writes counted for 20 connections of 6 entries each", failed);
        EXPECT_INT(jnum(o, "log.dropped_queue_full"), 0);
        EXPECT_INT(echo_check(keep, "k", 1, IO_TIMEOUT_MS), 0);

        REQUIRE(journald_start(), "a new journald");
        char peer[ADDR_STR_MAX];
        REQUIRE_INT(one_connection(&a, peer, sizeof(peer)), 0);
        JList *l = journal_wait(1, 30000, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=disconnect", tstr("TCPEDU_PEER=%s", peer), NULL);
        EXPECT(l->n == 1, "the connection made after journald came back is not in the journal");
        o = CTL_JSON(d, "status");
        EXPECT(jnum(o, "log.dropped_write_failed") == failed, "failed writes: %lld, then %lld", failed,
               jnum(o, "log.dropped_write_failed"));
        EXPECT(wait_drop_report(d, 0, failed) != NULL, "no log-dropped entry with TCPEDU_DROPPED_FAILED=%lld", failed);
        EXPECT_INT(close_graceful(keep), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* A stop while journald is stopped: the daemon exits anyway (its writer gets 3 s) and says what it could not write. */
static void test_stop_while_hung(void) {
        if (!need_own_journald("stop while journald hangs"))
                return;
        Addr a;
        Daemon *d = start_echo(unique_name("jstop"), &a);
        REQUIRE(kill(journald_pid, SIGSTOP) == 0, "SIGSTOP journald: %m");
        for (int i = 0; i < 200; i++)
                REQUIRE_INT(one_connection(&a, NULL, 0), 0);
        uint64_t t = now_ms();
        int code = daemon_stop(d);
        uint64_t took = now_ms() - t;
        (void)kill(journald_pid, SIGCONT);
        printf("\n    SIGTERM with journald stopped: exit %d after %llu ms\n", code, (unsigned long long)took);
        EXPECT_INT(code, 0);
        char *err = read_file_text(d->stderr_path);
        EXPECT(err && strstr(err, "tcpedud: journal not responding, "), "stderr: %s", err ? err : "(none)");
}

int main(void) {
        own_journald = private_journald();
        if (!own_journald)
                printf("no journald of the test's own: the tests are skipped\n");
        static CU_TestInfo tests[] = {
                { "journald hung: served, counted, reported, resumed", test_journald_hung },
                { "journald killed and restarted: served, counted, reported, resumed", test_journald_gone },
                { "SIGTERM while journald hangs: exit 0, the loss said on stderr", test_stop_while_hung },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("faults: journald", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
