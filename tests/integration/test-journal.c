/* SPDX-License-Identifier: MIT */
/* What tcpedud tells the journal about a connection: every transition with every field when the
 * client closes first, the daemon-first path of an idle timeout (and its reset when the client
 * never closes), one summary entry, nothing at all with log_transitions = off, and the same
 * messages on stderr with --log-target=stderr. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"
#include "journal-check.h"
#include "test-util.h"

static char *config_for(const char *name, const char *log_transitions, unsigned idle_timeout) {
        return tstr("[daemon]\nlog_transitions = %s\n\n[server %s]\ntype = echo\nlisten = 127.0.0.1:0\nidle_timeout = %u\n",
                    log_transitions, name, idle_timeout);
}

/* One connection where the client closes first after an echo of `message`. */
static void client_first_connection(Daemon *d, const char *message, char *peer, char *local, size_t size) {
        Addr a;
        char buf[256];
        size_t len = strlen(message);

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, size);
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, size);
        REQUIRE_INT(send_all(fd, message, len, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(recv_exact(fd, buf, len, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(buf, message, len) == 0, "echo differs");
        EXPECT_INT(close_graceful(fd), 0);
}

static void test_all_client_closes_first(void) {
        char *name = unique_name("jall");
        const char *message = "hello, journal";
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "all", 0), NULL);

        if (!journal_available("log_transitions = all")) {
                EXPECT_INT(daemon_stop(d), 0);
                return;
        }
        client_first_connection(d, message, peer, local, sizeof(peer));
        ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
        /* The last step (LAST_ACK -> CLOSED) may come from the TIME_WAIT watch: wait for it. */
        JList *tr = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_PEER=%s", peer),
                                 "TCPEDU_EVENT=transition", "TCPEDU_NEW_STATE=CLOSED", NULL);
        EXPECT_INT(tr->n, 1);

        /* Everything of this connection is written before the daemon stops: then count exactly. */
        EXPECT_INT(daemon_stop(d), 0);
        JList *all = entries_final(&ref);
        JList *connects = jfilter(all, "TCPEDU_EVENT", "connect");
        JList *transitions = jfilter(all, "TCPEDU_EVENT", "transition");
        JList *disconnects = jfilter(all, "TCPEDU_EVENT", "disconnect");
        EXPECT(all->n == 7, "%zu entries for the connection, expected 7 (connect, 5 transitions, disconnect)", all->n);
        EXPECT_INT(connects->n, 1);
        EXPECT_INT(transitions->n, 5);
        EXPECT_INT(disconnects->n, 1);
        if (all->n != 7)
                journal_print(all, "entries of the connection");
        REQUIRE(connects->n >= 1, "no connect entry");

        check_connect(&ref, connects->e[0]);
        EXPECT(all->n > 0 && all->e[0] == connects->e[0], "the connect entry is not the first one");
        static const char *const path[][2] = {
                { "LISTEN", "SYN_RECEIVED" }, { "SYN_RECEIVED", "ESTABLISHED" }, { "ESTABLISHED", "CLOSE_WAIT" },
                { "CLOSE_WAIT", "LAST_ACK" }, { "LAST_ACK", "CLOSED" },
        };
        /* check_transition(): every TCPEDU_REASON is the event of its edge in the table. */
        for (size_t i = 0; i < transitions->n && i < 5; i++)
                check_transition(&ref, transitions->e[i], path[i][0], path[i][1]);
        if (transitions->n >= 5) {
                json_object **t = transitions->e;
                expect_accept_step(t[0]);
                expect_source(t[1], "kernel", "ESTABLISHED", "tcp_info");
                expect_cause(t[1], NULL);
                expect_source(t[2], "kernel", "CLOSE_WAIT", "tcp_info");
                expect_cause(t[2], NULL);
                const char *src = jget(t[3], "TCPEDU_STATE_SOURCE");
                EXPECT(src && (strcmp(src, "inferred") == 0 || strcmp(src, "kernel") == 0), "CLOSE_WAIT -> LAST_ACK source %s",
                       src ? src : "(none)");
                if (src && strcmp(src, "kernel") == 0)
                        expect_source(t[3], "kernel", "LAST_ACK", "tcp_info");
                else
                        expect_source(t[3], "inferred", NULL, NULL);
                /* The peer's FIN set the passive close going: the cause of our FIN. */
                expect_cause(t[3], "peer closed");
                /* The end is seen either on the open fd (CLOSE) or as a vanished 4-tuple. */
                const char *via = jget(t[4], "TCPEDU_KERNEL_SOURCE");
                if (via && strcmp(via, "tcp_info") == 0)
                        expect_source(t[4], "kernel", "CLOSE", "tcp_info");
                else
                        expect_source(t[4], "kernel", NULL, "sock_diag");
                expect_cause(t[4], NULL);
        }
        if (disconnects->n >= 1) {
                json_object *e = disconnects->e[0];
                check_common(&ref, e, MID_DISCONNECT, "disconnect");
                EXPECT_STR(jget(e, "TCPEDU_REASON"), "peer closed");
                EXPECT_STR(jget(e, "TCPEDU_BYTES_IN"), tstr("%zu", strlen(message)));
                EXPECT_STR(jget(e, "TCPEDU_BYTES_OUT"), tstr("%zu", strlen(message)));
                /* Logged when the socket is closed: after the daemon's FIN went out. */
                size_t pos = 0, pos_last_ack = 0;
                for (size_t i = 0; i < all->n; i++) {
                        if (all->e[i] == e)
                                pos = i;
                        if (transitions->n >= 4 && all->e[i] == transitions->e[3])
                                pos_last_ack = i;
                }
                EXPECT(pos > pos_last_ack, "disconnect entry (#%zu) before CLOSE_WAIT -> LAST_ACK (#%zu)", pos, pos_last_ack);
        }
}

static void test_idle_timeout(void) {
        char *name = unique_name("jidle");
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "all", 1), NULL);
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, sizeof(local));
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));
        uint64_t t0 = now_ms();
        int r = wait_closed(fd, 5000);
        uint64_t waited = now_ms() - t0;
        EXPECT(r == 0, "no EOF within 5 s of an idle_timeout of 1 s: %s", r == -EPROTO ? "data arrived" : strerror(-r));
        EXPECT(waited >= 900, "EOF after %llu ms, before the idle timeout of 1 s", (unsigned long long)waited);
        sock_close(fd);

        if (journal_available("idle_timeout")) {
                ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
                JList *tw = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_PEER=%s", peer),
                                         "TCPEDU_EVENT=transition", "TCPEDU_NEW_STATE=TIME_WAIT", NULL);
                EXPECT_INT(tw->n, 1);
                check_daemon_first_path(&ref, "idle timeout", 0);
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* The daemon closed first but the client never sends its FIN: after 5 s the daemon resets, and
 * the kernel has no socket for the 4-tuple any more, which sock_diag confirms. */
static void test_idle_peer_never_closes(void) {
        char *name = unique_name("jrst");
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "all", 1), NULL);
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, sizeof(local));
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));
        REQUIRE_INT(wait_closed(fd, 5000), 0);
        /* Keep the socket open: no FIN from us. The daemon's 5 s bound ends with a reset. Meanwhile
         * the kernel shows the daemon's side of the connection: our ACK of its FIN is long there. */
        uint64_t t0 = now_ms();
        struct pollfd p = { .fd = fd, .events = 0 }; /* the EOF stays readable: wait for the reset only */
        int error = 0, seen[16] = {};
        socklen_t len = sizeof(error);
        while (now_ms() - t0 < 10000 && !(p.revents & (POLLERR | POLLHUP))) {
                TcpSocketInfo info;
                if (tcp_socket_info(addr_port(&a), (uint16_t)atoi(strrchr(peer, ':') + 1), &info) && info.state < 16)
                        seen[info.state]++;
                (void)poll(&p, 1, 100);
        }
        uint64_t waited = now_ms() - t0;
        printf("(daemon socket: FIN_WAIT1 %d, FIN_WAIT2 %d samples) ", seen[4], seen[5]);
        EXPECT(seen[5] > 0, "the daemon's socket was never in FIN_WAIT2 while waiting for the reset");
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        printf("(reset after %llu ms, SO_ERROR %s) ", (unsigned long long)waited, strerror(error));
        EXPECT(p.revents & (POLLERR | POLLHUP), "no reset within 10 s (revents 0x%x)", p.revents);
        EXPECT(waited >= 4000 && waited <= 7000, "reset %llu ms after the EOF, expected about 5 s", (unsigned long long)waited);
        EXPECT(error == EPIPE || error == ECONNRESET, "SO_ERROR %s, expected a reset", strerror(error));
        sock_close(fd);

        if (journal_available("reset after 5 s")) {
                ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
                const char *why = "peer did not close within 5 s: reset";
                JList *c = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_PEER=%s", peer),
                                        "TCPEDU_EVENT=connect", NULL);
                REQUIRE_INT(c->n, 1);
                check_connect(&ref, c->e[0]);
                JList *disc = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", ref.id),
                                           "TCPEDU_EVENT=disconnect", NULL);
                EXPECT_INT(disc->n, 1);
                if (disc->n)
                        EXPECT_STR(jget(disc->e[0], "TCPEDU_REASON"), why);
                JList *t = journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", ref.id), "TCPEDU_EVENT=transition", NULL);
                static const char *const path[][2] = {
                        { "LISTEN", "SYN_RECEIVED" },   { "SYN_RECEIVED", "ESTABLISHED" }, { "ESTABLISHED", "FIN_WAIT_1" },
                        { "FIN_WAIT_1", "FIN_WAIT_2" }, { "FIN_WAIT_2", "CLOSED" },
                };
                EXPECT(t->n == 5, "%zu transitions, expected 5", t->n);
                if (t->n != 5)
                        journal_print(t, "transitions of the connection");
                for (size_t i = 0; i < t->n && i < 5; i++)
                        check_transition(&ref, t->e[i], path[i][0], path[i][1]);
                if (t->n == 5) {
                        expect_accept_step(t->e[0]);
                        expect_cause(t->e[1], NULL);
                        /* The idle timeout set the close going; the reset is a path of its own. */
                        expect_cause(t->e[2], "idle timeout");
                        expect_cause(t->e[3], NULL);
                        /* The kernel confirmed FIN_WAIT2 for about 5 s, the journal must say so. */
                        const char *d2 = jget(t->e[4], "TCPEDU_STATE_DURATION_USEC");
                        EXPECT(d2 && strtoull(d2, NULL, 10) >= 4000000, "FIN_WAIT_2 lasted %s usec, expected about 5 s", d2 ? d2 : "?");
                        expect_cause(t->e[4], why);
                        /* The socket was reset and closed: the kernel has nothing for the 4-tuple. */
                        expect_source(t->e[4], "kernel", NULL, "sock_diag");
                }
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* log_transitions = summary: one entry per connection, once the kernel released it, and nothing
 * else for it; counted after the daemon stopped, so that nothing can come later. */
static void test_summary(void) {
        char *name = unique_name("jsum");
        const char *message = "summary please";
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "summary", 0), NULL);

        if (!journal_available("log_transitions = summary")) {
                EXPECT_INT(daemon_stop(d), 0);
                return;
        }
        client_first_connection(d, message, peer, local, sizeof(peer));
        ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
        JList *s = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_PEER=%s", peer), "TCPEDU_EVENT=summary",
                                NULL);
        EXPECT_INT(s->n, 1);
        EXPECT_INT(daemon_stop(d), 0);

        JList *all = entries_final(&ref);
        JList *sums = jfilter(all, "TCPEDU_EVENT", "summary");
        EXPECT(all->n == 1 && sums->n == 1, "%zu entries for the connection (%zu summaries), expected exactly 1 summary", all->n, sums->n);
        if (all->n != 1)
                journal_print(all, "entries of the connection");
        EXPECT_INT(jfilter(all, "TCPEDU_EVENT", "transition")->n, 0);
        EXPECT_INT(jfilter(all, "TCPEDU_EVENT", "connect")->n, 0);
        EXPECT_INT(jfilter(all, "TCPEDU_EVENT", "disconnect")->n, 0);
        if (sums->n < 1)
                return;
        json_object *e = sums->e[0];
        check_common(&ref, e, MID_SUMMARY, "summary");
        EXPECT_STR(jget(e, "TCPEDU_LOCAL"), local);
        EXPECT_STR(jget(e, "TCPEDU_PATH"), "SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED");
        EXPECT_STR(jget(e, "TCPEDU_REASON"), "peer closed");
        EXPECT_STR(jget(e, "TCPEDU_BYTES_IN"), tstr("%zu", strlen(message)));
        EXPECT_STR(jget(e, "TCPEDU_BYTES_OUT"), tstr("%zu", strlen(message)));
        EXPECT(jget(e, "TCPEDU_NOTE") == NULL, "summary has a note: %s", jget(e, "TCPEDU_NOTE"));
        /* Time in each state but the last: 4 numbers. */
        const char *durs = jget(e, "TCPEDU_PATH_DURATIONS_USEC");
        int n = 0;
        for (const char *p = durs; p && *p;) {
                char *end;
                (void)strtoull(p, &end, 10);
                if (end == p)
                        break;
                n++;
                p = *end == ' ' ? end + 1 : end;
        }
        EXPECT(n == 4, "TCPEDU_PATH_DURATIONS_USEC '%s': %d numbers, expected 4", durs ? durs : "(none)", n);
        /* Listeners are not logged either with summary. */
        EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_SERVER=%s", name), "TCPEDU_EVENT=transition", NULL)->n, 0);
}

static void test_off(void) {
        char *name = unique_name("joff");
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "off", 0), NULL);

        client_first_connection(d, "nothing to log", peer, local, sizeof(peer));
        EXPECT_INT(daemon_stop(d), 0);
        if (!journal_available("log_transitions = off"))
                return;
        ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
        JList *all = entries_final(&ref);
        EXPECT(all->n == 0, "%zu entries for a connection with log_transitions = off", all->n);
        if (all->n)
                journal_print(all, "entries of the connection");
        EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_SERVER=%s", name), "TCPEDU_EVENT=transition", NULL)->n, 0);
}

/* ---- --log-target=stderr ---- */

static const char *find_line(const char *text, const char *prefix) {
        size_t n = strlen(prefix);
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, prefix, n) == 0)
                        return p;
        return NULL;
}

static void test_stderr_target(void) {
        char *name = unique_name("jerr");
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Daemon *d = daemon_start(config_for(name, "all", 0), &(DaemonOptions){ .log_target = "stderr" });

        client_first_connection(d, "to stderr", peer, local, sizeof(peer));
        /* "tcpedud: New connection from PEER to LOCAL (server NAME, ID: <id>)" names the ID. */
        const char *connect_prefix = tstr("tcpedud: New connection from %s to %s (server %s, ID: ", peer, local, name);
        const char *line = NULL;
        char *text = NULL;
        for (uint64_t until = now_ms() + JOURNAL_TIMEOUT_MS; !line && now_ms() < until;) {
                text = read_file_text(d->stderr_path);
                line = find_line(text, connect_prefix);
                if (!line)
                        (void)poll(NULL, 0, 100);
        }
        EXPECT(line != NULL, "no line '%s...' on stderr", connect_prefix);
        if (!line) {
                daemon_print_stderr(d);
        } else {
                char *id = tstr("%.36s", line + strlen(connect_prefix));
                EXPECT(is_conn_id(id), "connection ID '%s'", id);
                const char *first = tstr("tcpedud: Connection %s: LISTEN -> SYN_RECEIVED\n", id);
                const char *want = tstr("tcpedud: Connection %s: SYN_RECEIVED -> ESTABLISHED\n", id);
                const char *found = NULL, *found_first = NULL;
                for (uint64_t until = now_ms() + JOURNAL_TIMEOUT_MS; !found && now_ms() < until;) {
                        text = read_file_text(d->stderr_path);
                        found = strstr(text, want);
                        found_first = strstr(text, first);
                        if (!found)
                                (void)poll(NULL, 0, 100);
                }
                EXPECT(found_first != NULL, "no line '%.*s' on stderr", (int)strlen(first) - 1, first);
                EXPECT(!found_first || !found || found_first < found, "LISTEN -> SYN_RECEIVED after SYN_RECEIVED -> ESTABLISHED on stderr");
                EXPECT(found != NULL, "no line '%.*s' on stderr", (int)strlen(want) - 1, want);
                if (!found)
                        daemon_print_stderr(d);
        }
        EXPECT_INT(daemon_stop(d), 0);
        /* Nothing went to the journal instead. */
        if (journal_available("--log-target=stderr"))
                EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_SERVER=%s", name), NULL)->n, 0);
}

static CU_TestInfo journal_tests[] = {
        { "log_transitions = all, client closes first", test_all_client_closes_first },
        { "idle_timeout: the daemon closes first", test_idle_timeout },
        { "idle_timeout, the client never closes: reset after 5 s", test_idle_peer_never_closes },
        { "log_transitions = summary", test_summary },
        { "log_transitions = off", test_off },
        { "--log-target=stderr", test_stderr_target },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("journal", journal_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
