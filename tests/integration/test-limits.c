/* SPDX-License-Identifier: MIT */
/* Limits: a connection over max_clients, max_clients_per_ip, max_connections or the fd limit is
 * accepted and reset, logged as refused with its reason, with the transitions of its own
 * connection ID (LISTEN -> SYN_RECEIVED -> ESTABLISHED -> CLOSED, the cause "refused: REASON"),
 * and the others keep working. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "journal-check.h"
#include "test-util.h"

static void expect_echo(int fd, const char *what) {
        char msg[128];
        snprintf(msg, sizeof(msg), "echo check on %s", what);
        int r = echo_check(fd, msg, strlen(msg), IO_TIMEOUT_MS);
        EXPECT(r == 0, "%s does not echo: %s", what, strerror(-r));
}

/* One refusal, as logged: TCPEDU_EVENT=refused for this server and client address. */
static void expect_refused_entry(Daemon *d, const char *server, const char *reason, const char *peer) {
        if (!d->journal)
                return;
        JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_SERVER=%s", server),
                                "TCPEDU_EVENT=refused", tstr("TCPEDU_REASON=%s", reason), NULL);
        EXPECT(l->n == 1, "refused entries for server %s, reason %s: %zu, expected 1", server, reason, l->n);
        if (l->n == 0) {
                journal_print(journal_query(tstr("_PID=%d", (int)d->pid), NULL), "all entries of the daemon");
                return;
        }
        json_object *e = l->e[0];
        EXPECT_STR(jget(e, "MESSAGE_ID"), MID_REFUSED);
        EXPECT_STR(jget(e, "SYSLOG_IDENTIFIER"), "tcpedud");
        EXPECT_STR(jget(e, "TCPEDU_SERVER_TYPE"), "echo");
        if (peer)
                EXPECT_STR(jget(e, "TCPEDU_PEER"), peer);
}

/* The records of one refused connection: its own ID on three transitions, the path the kernel took
 * (accepted, then reset: LISTEN -> SYN_RECEIVED inferred, SYN_RECEIVED -> ESTABLISHED from tcp_info,
 * ESTABLISHED -> CLOSED seen by sock_diag or inferred, with the cause "refused: REASON" on that
 * step), and nothing else for it but the refused entry: no connect, no disconnect. */
static void check_refused_path(ConnRef *ref, const JList *t, const char *reason) {
        static const char *const path[][2] = { { "LISTEN", "SYN_RECEIVED" },
                                               { "SYN_RECEIVED", "ESTABLISHED" },
                                               { "ESTABLISHED", "CLOSED" } };
        EXPECT(t->n == 3, "%zu transitions of the refused connection from %s, expected 3", t->n, ref->peer);
        if (t->n != 3)
                journal_print(t, "transitions of the refused connection");
        for (size_t i = 0; i < t->n && i < 3; i++)
                check_transition(ref, t->e[i], path[i][0], path[i][1]);
        if (t->n != 3)
                return;
        expect_accept_step(t->e[0]);
        expect_source(t->e[1], "kernel", "ESTABLISHED", "tcp_info");
        expect_cause(t->e[1], NULL);
        const char *src = jget(t->e[2], "TCPEDU_STATE_SOURCE");
        if (src && strcmp(src, "kernel") == 0)
                expect_source(t->e[2], "kernel", NULL, "sock_diag"); /* the 4-tuple is gone */
        else
                expect_source(t->e[2], "inferred", NULL, NULL);
        expect_cause(t->e[2], tstr("refused: %s", reason));
}

static void expect_refused_transitions(Daemon *d, const char *server, const char *reason, const char *peer, const Addr *listener) {
        char local[ADDR_STR_MAX];
        if (!d->journal)
                return;
        ConnRef ref = { .d = d, .server = server, .peer = peer, .local = addr_format(listener, local, sizeof(local)) };
        const char *pid = tstr("_PID=%d", (int)d->pid), *by_peer = tstr("TCPEDU_PEER=%s", peer);
        JList *t = journal_wait(3, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_SERVER=%s", server), by_peer, "TCPEDU_EVENT=transition", NULL);
        check_refused_path(&ref, t, reason);
        JList *all = journal_query(pid, tstr("TCPEDU_SERVER=%s", server), by_peer, NULL);
        EXPECT(all->n == 4, "%zu entries for the refused peer %s, expected 4 (3 transitions, refused)", all->n, peer);
        EXPECT_INT(jfilter(all, "TCPEDU_EVENT", "connect")->n, 0);
        EXPECT_INT(jfilter(all, "TCPEDU_EVENT", "disconnect")->n, 0);
        if (all->n != 4)
                journal_print(all, "entries of the refused peer");
}

static void test_max_clients(void) {
        char *name = unique_name("maxcl");
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\nmax_clients = 2\n", name), NULL);
        char peer[ADDR_STR_MAX];
        Addr a;

        journal_available("max_clients");
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int c1 = tcp_connect(&a, NULL), c2 = tcp_connect(&a, NULL);
        REQUIRE(c1 >= 0 && c2 >= 0, "connect: %s", strerror(-(c1 < 0 ? c1 : c2)));
        /* Both echo: the daemon has accepted both before the third one arrives. */
        expect_echo(c1, "connection 1");
        expect_echo(c2, "connection 2");

        int r = connect_expect_reset(&a, NULL, peer, sizeof(peer));
        EXPECT(r == -ECONNRESET, "3rd connection over max_clients = 2: %s, expected a reset (ECONNRESET)",
               r == 0 ? "orderly EOF" : strerror(-r));
        expect_refused_entry(d, name, "max_clients", peer);
        expect_refused_transitions(d, name, "max_clients", peer, &a);
        expect_echo(c1, "connection 1 after the refusal");
        expect_echo(c2, "connection 2 after the refusal");

        /* Once the daemon has handled one close (its FIN came back), there is room again. */
        EXPECT_INT(close_graceful(c1), 0);
        int c4 = tcp_connect(&a, NULL);
        REQUIRE(c4 >= 0, "connect after a close: %s", strerror(-c4));
        expect_echo(c4, "a new connection after one closed");
        EXPECT_INT(close_graceful(c4), 0);
        EXPECT_INT(close_graceful(c2), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_max_clients_per_ip(void) {
        char *name = unique_name("perip");
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\nmax_clients_per_ip = 1\n", name), NULL);
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Addr a;

        journal_available("max_clients_per_ip");
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int c1 = tcp_connect(&a, "127.0.0.1");
        REQUIRE(c1 >= 0, "connect from 127.0.0.1: %s", strerror(-c1));
        expect_echo(c1, "the first connection from 127.0.0.1");

        int r = connect_expect_reset(&a, "127.0.0.1", peer, sizeof(peer));
        EXPECT(r == -ECONNRESET, "2nd connection from 127.0.0.1: %s, expected a reset (ECONNRESET)", r == 0 ? "orderly EOF" : strerror(-r));
        EXPECT(strncmp(peer, "127.0.0.1:", 10) == 0, "client address %s", peer);
        expect_refused_entry(d, name, "max_clients_per_ip", peer);
        expect_refused_transitions(d, name, "max_clients_per_ip", peer, &a);

        int c2 = tcp_connect(&a, "127.0.0.2");
        REQUIRE(c2 >= 0, "connect from 127.0.0.2: %s", strerror(-c2));
        EXPECT(strncmp(sock_local(c2, local, sizeof(local)), "127.0.0.2:", 10) == 0, "client address %s", local);
        expect_echo(c2, "a connection from 127.0.0.2");
        expect_echo(c1, "the connection from 127.0.0.1");
        EXPECT_INT(close_graceful(c1), 0);
        EXPECT_INT(close_graceful(c2), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_max_connections(void) {
        char *a_name = unique_name("mcA"), *b_name = unique_name("mcB");
        Daemon *d = daemon_start(tstr("[daemon]\nmax_connections = 2\n\n"
                                      "[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n\n"
                                      "[server %s]\ntype = echo\nlisten = 127.0.0.2:0\n",
                                      a_name, b_name),
                                 NULL);
        char peer_a[ADDR_STR_MAX], peer_b[ADDR_STR_MAX];
        Addr a, b;

        journal_available("max_connections");
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener on 127.0.0.1");
        REQUIRE(daemon_listener(d, "127.0.0.2", &b), "no listener on 127.0.0.2");
        int c1 = tcp_connect(&a, NULL), c2 = tcp_connect(&b, NULL);
        REQUIRE(c1 >= 0 && c2 >= 0, "connect: %s", strerror(-(c1 < 0 ? c1 : c2)));
        expect_echo(c1, "the connection to server A");
        expect_echo(c2, "the connection to server B");

        int r = connect_expect_reset(&a, NULL, peer_a, sizeof(peer_a));
        EXPECT(r == -ECONNRESET, "3rd connection (to A): %s, expected a reset", r == 0 ? "orderly EOF" : strerror(-r));
        r = connect_expect_reset(&b, NULL, peer_b, sizeof(peer_b));
        EXPECT(r == -ECONNRESET, "3rd connection (to B): %s, expected a reset", r == 0 ? "orderly EOF" : strerror(-r));
        expect_refused_entry(d, a_name, "max_connections", peer_a);
        expect_refused_entry(d, b_name, "max_connections", peer_b);
        expect_refused_transitions(d, a_name, "max_connections", peer_a, &a);
        expect_refused_transitions(d, b_name, "max_connections", peer_b, &b);
        expect_echo(c1, "the connection to server A after the refusals");
        expect_echo(c2, "the connection to server B after the refusals");
        EXPECT_INT(close_graceful(c1), 0);
        EXPECT_INT(close_graceful(c2), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- RLIMIT_NOFILE exhaustion ---- */

#define FD_LIMIT 40
#define N_EXTRA 60

enum { PENDING_CONNECT, PENDING_ECHO, ACCEPTED, RESET, CLOSED };

static void test_fd_limit(void) {
        char *name = unique_name("fdlim");
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name), &(DaemonOptions){ .nofile = FD_LIMIT });
        int first[3], extra[N_EXTRA], state[N_EXTRA];
        int counts[5] = {};
        Addr a;

        journal_available("fd limit");
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        for (int i = 0; i < 3; i++) {
                first[i] = tcp_connect(&a, NULL);
                REQUIRE(first[i] >= 0, "connect %d: %s", i, strerror(-first[i]));
                expect_echo(first[i], "one of the first 3 connections");
        }

        for (int i = 0; i < N_EXTRA; i++) {
                extra[i] = tcp_connect_start(&a);
                REQUIRE(extra[i] >= 0, "connect: %s", strerror(-extra[i]));
                state[i] = PENDING_CONNECT;
        }
        /* Each extra connection ends up echoing one byte (accepted) or reset (refused). */
        uint64_t deadline = now_ms() + 15000;
        for (;;) {
                struct pollfd p[N_EXTRA];
                int pending = 0;
                for (int i = 0; i < N_EXTRA; i++) {
                        p[i] = (struct pollfd){ .fd = -1 };
                        if (state[i] == PENDING_CONNECT)
                                p[i] = (struct pollfd){ .fd = extra[i], .events = POLLOUT };
                        else if (state[i] == PENDING_ECHO)
                                p[i] = (struct pollfd){ .fd = extra[i], .events = POLLIN };
                        pending += p[i].fd >= 0;
                }
                if (pending == 0 || now_ms() >= deadline)
                        break;
                if (poll(p, N_EXTRA, (int)(deadline - now_ms())) <= 0)
                        continue;
                for (int i = 0; i < N_EXTRA; i++) {
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        if (state[i] == PENDING_CONNECT) {
                                int err = 0;
                                socklen_t len = sizeof(err);
                                (void)getsockopt(extra[i], SOL_SOCKET, SO_ERROR, &err, &len);
                                if (err)
                                        state[i] = RESET;
                                else if (send(extra[i], "x", 1, MSG_NOSIGNAL) == 1)
                                        state[i] = PENDING_ECHO;
                                else
                                        state[i] = RESET;
                                continue;
                        }
                        char c;
                        ssize_t n = recv(extra[i], &c, 1, MSG_DONTWAIT);
                        if (n == 1 && c == 'x')
                                state[i] = ACCEPTED;
                        else if (n == 0)
                                state[i] = CLOSED;
                        else if (n < 0 && errno != EAGAIN)
                                state[i] = RESET;
                }
        }
        for (int i = 0; i < N_EXTRA; i++)
                counts[state[i]]++;
        printf("\n    fd limit %d: of %d more connections %d were accepted, %d reset, %d closed, %d undecided\n", FD_LIMIT, N_EXTRA,
               counts[ACCEPTED], counts[RESET], counts[CLOSED], counts[PENDING_CONNECT] + counts[PENDING_ECHO]);
        EXPECT_INT(counts[PENDING_CONNECT] + counts[PENDING_ECHO], 0);
        EXPECT_INT(counts[CLOSED], 0);
        /* At most FD_LIMIT fds in all: at least N_EXTRA + 3 - FD_LIMIT connections cannot have an fd. */
        EXPECT(counts[RESET] >= N_EXTRA + 3 - FD_LIMIT, "only %d of %d connections reset with a limit of %d fds", counts[RESET], N_EXTRA,
               FD_LIMIT);
        EXPECT(daemon_alive(d), "the daemon died when it ran out of fds");
        for (int i = 0; i < 3; i++)
                expect_echo(first[i], "one of the first 3 connections after the fd limit was hit");
        expect_refused_entry(d, name, "fd_limit", NULL);
        if (d->journal) {
                /* a connection refused for want of an fd (accepted on the spare one) has the path of any
                 * refused connection */
                const char *pid = tstr("_PID=%d", (int)d->pid);
                JList *c = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_SERVER=%s", name), "TCPEDU_EVENT=transition",
                                        "TCPEDU_CAUSE=refused: fd_limit", NULL);
                EXPECT(c->n >= 1, "no transition with the cause 'refused: fd_limit'");
                if (c->n >= 1) {
                        char local[ADDR_STR_MAX];
                        ConnRef ref = {
                                .d = d, .server = name, .peer = jget(c->e[0], "TCPEDU_PEER"), .local = addr_format(&a, local, sizeof(local))
                        };
                        JList *t = journal_query(pid, tstr("TCPEDU_CONN_ID=%s", jget(c->e[0], "TCPEDU_CONN_ID")), NULL);
                        EXPECT_INT(jfilter(t, "TCPEDU_EVENT", "transition")->n, t->n);
                        check_refused_path(&ref, jfilter(t, "TCPEDU_EVENT", "transition"), "fd_limit");
                }
        }

        for (int i = 0; i < N_EXTRA; i++)
                sock_close(extra[i]);
        for (int i = 0; i < 3; i++)
                EXPECT_INT(close_graceful(first[i]), 0);
        /* The daemon frees fds as it handles the closes: retry for up to 5 s. */
        int ok = -1, attempts = 0;
        for (uint64_t until = now_ms() + 5000; ok != 0 && now_ms() < until; attempts++) {
                int fd = tcp_connect(&a, NULL);
                if (fd >= 0) {
                        ok = echo_check(fd, "again", 5, 1000);
                        if (ok == 0)
                                EXPECT_INT(close_graceful(fd), 0);
                        else
                                sock_close(fd);
                }
                if (ok != 0)
                        (void)poll(NULL, 0, 100);
        }
        EXPECT(ok == 0, "no connection accepted within 5 s after all were closed (%d attempts, last: %s)", attempts, strerror(-ok));
        EXPECT_INT(daemon_stop(d), 0);
}

static CU_TestInfo limit_tests[] = {
        { "max_clients", test_max_clients },
        { "max_clients_per_ip", test_max_clients_per_ip },
        { "max_connections over two servers", test_max_connections },
        { "RLIMIT_NOFILE exhausted", test_fd_limit },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("limits", limit_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
