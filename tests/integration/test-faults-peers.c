/* SPDX-License-Identifier: MIT */
/* Fault injection: peers that misbehave, each ending in the documented state path with its journal
 * records, and the daemon serving the next client as before.
 * - a reset (RST) in the middle of a transfer: ESTABLISHED -> CLOSED, "connection reset by peer";
 * - a peer that half-closes and keeps reading: every byte echoed, then the daemon's FIN:
 *   ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED;
 * - a session to a target whose accept queue is full: the SYN goes unanswered, the session fails
 *   with "connect timeout: no answer to SYN" (CLOSED -> SYN_SENT -> CLOSED, connect-failed), and a
 *   session opens once the target accepts again.
 * (A client that connects and sends nothing until idle_timeout: test-journal.c, "idle_timeout".) */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"
#include "journal-check.h"

#define TRANSFER (4u << 20)

static Daemon *start_echo(const char *name, Addr *a) {
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name), NULL);
        REQUIRE(daemon_listener(d, "127.0.0.1", a), "no listener");
        return d;
}

static void expect_echo_server(const Addr *a) {
        int fd = tcp_connect(a, NULL);
        EXPECT(fd >= 0, "connect: %s", strerror(-fd));
        if (fd < 0)
                return;
        EXPECT_INT(echo_check(fd, "still here\n", 11, IO_TIMEOUT_MS), 0);
        EXPECT_INT(close_graceful(fd), 0);
}

/* The transitions of the connection from peer, as "OLD>NEW" joined by spaces; its disconnect entry
 * and its transitions. Every step's reason is the event of its edge; the cause of each step is
 * causes[i] (NULL: none), for as many steps as there are. */
static const char *path_of(Daemon *d, const char *peer, size_t steps, const char *const *causes, json_object **ret_disconnect) {
        const char *pid = tstr("_PID=%d", (int)d->pid);
        JList *disc = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_PEER=%s", peer), "TCPEDU_EVENT=disconnect", NULL);
        JList *t = journal_wait(steps, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_PEER=%s", peer), "TCPEDU_EVENT=transition", NULL);
        const char *s = tstr("%s", "");
        for (size_t i = 0; i < t->n; i++) {
                const char *from = jget(t->e[i], "TCPEDU_OLD_STATE"), *to = jget(t->e[i], "TCPEDU_NEW_STATE");
                s = tstr("%s%s%s>%s", s, i ? " " : "", from, to);
                EXPECT_STR(jget(t->e[i], "TCPEDU_REASON"), edge_event(from, to));
                if (i < steps)
                        expect_cause(t->e[i], causes[i]);
        }
        if (t->n > 0)
                expect_accept_step(t->e[0]);
        *ret_disconnect = disc->n == 1 ? disc->e[0] : NULL;
        return s;
}

static void test_reset_mid_transfer(void) {
        Addr a;
        char peer[ADDR_STR_MAX];
        Daemon *d = start_echo(unique_name("rst"), &a);
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));

        /* send far more than the windows hold, read a little of the echo, then reset */
        uint8_t *data = malloc(TRANSFER), got[65536];
        REQUIRE(data != NULL, "out of memory");
        fill_pattern(data, TRANSFER, 7);
        size_t sent = 0, recvd = 0;
        uint64_t until = now_ms() + 2000;
        while (sent < TRANSFER && now_ms() < until) {
                ssize_t n = send(fd, data + sent, TRANSFER - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0)
                        sent += (size_t)n;
                else
                        break; /* the windows are full: the daemon has stopped reading */
        }
        if (recv_exact(fd, got, sizeof(got), IO_TIMEOUT_MS) == 0)
                recvd = sizeof(got);
        EXPECT(recvd > 0 && memcmp(got, data, recvd) == 0, "%zu bytes of echo before the reset, not the bytes sent", recvd);
        free(data);
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        REQUIRE(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER: %m");
        sock_close(fd);
        printf("\n    reset after sending %zu bytes and reading %zu of the echo\n", sent, recvd);

        expect_echo_server(&a);
        json_object *st = CTL_JSON(d, "status");
        uint64_t deadline = now_ms() + 5000;
        while (st && jnum(st, "connections") != 0 && now_ms() < deadline && poll(NULL, 0, 50) >= 0)
                st = CTL_JSON(d, "status");
        EXPECT_INT(jnum(st, "connections"), 0);
        if (journal_available("reset mid-transfer")) {
                json_object *disc;
                static const char *const causes[] = { NULL, NULL, "connection reset by peer" };
                const char *path = path_of(d, peer, 3, causes, &disc);
                EXPECT_STR(path, "LISTEN>SYN_RECEIVED SYN_RECEIVED>ESTABLISHED ESTABLISHED>CLOSED");
                EXPECT(disc != NULL, "no disconnect entry");
                EXPECT_STR(jget(disc, "TCPEDU_REASON"), "connection reset by peer");
                EXPECT(jget(disc, "TCPEDU_BYTES_IN") && atoll(jget(disc, "TCPEDU_BYTES_IN")) > 0, "bytes in: %s",
                       jget(disc, "TCPEDU_BYTES_IN"));
        }
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_half_close_keeps_reading(void) {
        Addr a;
        char peer[ADDR_STR_MAX];
        Daemon *d = start_echo(unique_name("half"), &a);
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));

        uint8_t *data = malloc(TRANSFER), *got = malloc(TRANSFER);
        REQUIRE(data && got, "out of memory");
        fill_pattern(data, TRANSFER, 11);
        size_t sent = 0, recvd = 0, at_shutdown = 0;
        bool shut = false, eof = false;
        int err = 0;
        uint64_t until = now_ms() + 20000;
        while (!eof && !err && now_ms() < until) {
                struct pollfd p = { .fd = fd, .events = POLLIN | (sent < TRANSFER ? POLLOUT : 0) };
                if (poll(&p, 1, 1000) <= 0)
                        continue;
                if (sent < TRANSFER && (p.revents & POLLOUT)) {
                        ssize_t n = send(fd, data + sent, TRANSFER - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n > 0)
                                sent += (size_t)n;
                }
                if (sent == TRANSFER && !shut) {
                        /* all sent: our FIN goes at once, while most of the echo is still to come */
                        REQUIRE(shutdown(fd, SHUT_WR) == 0, "shutdown: %m");
                        shut = true;
                        at_shutdown = recvd;
                }
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = recv(fd, got + recvd, TRANSFER - recvd + (recvd == TRANSFER), MSG_DONTWAIT);
                        if (n > 0)
                                recvd += (size_t)n;
                        else if (n == 0)
                                eof = true;
                        else if (errno != EAGAIN && errno != EINTR)
                                err = errno;
                }
        }
        printf("\n    half-closed after sending %zu bytes, with %zu of the echo read; then read %zu more and %s\n", sent, at_shutdown,
               recvd - at_shutdown,
               eof   ? "EOF"
               : err ? strerror(err)
                     : "nothing more");
        EXPECT(shut && at_shutdown < TRANSFER, "half-closed: %d, %zu bytes read by then", shut, at_shutdown);
        EXPECT(eof, "no EOF after the echo: %s", err ? strerror(err) : "timed out");
        EXPECT(recvd == TRANSFER && memcmp(got, data, TRANSFER) == 0, "%zu bytes echoed, %s", recvd,
               recvd == TRANSFER ? "not the bytes sent" : "expected 4 MiB");
        free(data);
        free(got);
        sock_close(fd);

        expect_echo_server(&a);
        if (journal_available("half-close")) {
                json_object *disc;
                /* the peer's FIN is the cause of ours */
                static const char *const causes[] = { NULL, NULL, NULL, "peer closed", NULL };
                const char *path = path_of(d, peer, 5, causes, &disc);
                EXPECT_STR(path, "LISTEN>SYN_RECEIVED SYN_RECEIVED>ESTABLISHED ESTABLISHED>CLOSE_WAIT CLOSE_WAIT>LAST_ACK LAST_ACK>CLOSED");
                EXPECT(disc != NULL, "no disconnect entry");
                EXPECT_STR(jget(disc, "TCPEDU_REASON"), "peer closed");
                EXPECT_STR(jget(disc, "TCPEDU_BYTES_IN"), tstr("%u", TRANSFER));
                EXPECT_STR(jget(disc, "TCPEDU_BYTES_OUT"), tstr("%u", TRANSFER));
        }
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_session_accept_queue_full(void) {
        Daemon *d = daemon_start("[daemon]\nmax_sessions = 4\n", NULL);
        /* the target: listen(0) and never accept; one connection fills its accept queue */
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        Addr t;
        REQUIRE(ls >= 0 && addr_parse_ip("127.0.0.1", 0, &t) == 0 && bind(ls, &t.sa, sizeof(t.in)) == 0 && listen(ls, 0) == 0,
                "target listener: %m");
        socklen_t len = sizeof(t);
        REQUIRE(getsockname(ls, &t.sa, &len) == 0, "getsockname");
        char target[ADDR_STR_MAX];
        addr_format(&t, target, sizeof(target));
        int queued = 0, dropped = -1;
        for (int i = 0; i < 8 && dropped < 0; i++) {
                int fd = tcp_connect_start(&t);
                REQUIRE(fd >= 0, "connect");
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                if (poll(&p, 1, 500) > 0)
                        queued++;
                else
                        dropped = fd; /* its SYN was dropped: the queue is full */
        }
        REQUIRE(dropped >= 0, "the accept queue of a listen(fd, 0) socket did not fill with %d connections", queued);

        RunResult r;
        uint64_t t0 = now_ms();
        REQUIRE_INT(ctl(d, &r, "session", "open", target, "--timeout", "1.5", NULL), 0);
        uint64_t took = now_ms() - t0;
        printf("\n    %d connections fill the target's accept queue; session open: exit %d after %llu ms: %s", queued, r.exit_code,
               (unsigned long long)took, r.err);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "connect timeout: no answer to SYN") != NULL, "session open: %s", r.err);
        EXPECT(took >= 1400, "session open gave up after %llu ms, before its timeout of 1.5 s", (unsigned long long)took);
        if (journal_available("session to a full accept queue")) {
                const char *pid = tstr("_PID=%d", (int)d->pid);
                JList *f = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, "MESSAGE_ID=" MID_CONNECT_FAILED, tstr("TCPEDU_PEER=%s", target), NULL);
                REQUIRE(f->n == 1, "%zu connect-failed entries", f->n);
                EXPECT_STR(jget(f->e[0], "TCPEDU_REASON"), "connect timeout: no answer to SYN");
                EXPECT_STR(jget(f->e[0], "TCPEDU_SYN_SENT"), "yes");
                EXPECT_STR(jget(f->e[0], "TCPEDU_ROLE"), "client");
                JList *tr = journal_wait(2, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_CONN_ID=%s", jget(f->e[0], "TCPEDU_CONN_ID")),
                                         "TCPEDU_EVENT=transition", NULL);
                EXPECT_INT(tr->n, 2);
                if (tr->n == 2) {
                        EXPECT_STR(jget(tr->e[0], "TCPEDU_NEW_STATE"), "SYN_SENT");
                        EXPECT_STR(jget(tr->e[0], "TCPEDU_REASON"), edge_event("CLOSED", "SYN_SENT"));
                        expect_cause(tr->e[0], NULL);
                        EXPECT_STR(jget(tr->e[1], "TCPEDU_OLD_STATE"), "SYN_SENT");
                        EXPECT_STR(jget(tr->e[1], "TCPEDU_NEW_STATE"), "CLOSED");
                        /* the reason is the edge's event; the connect error is the cause */
                        EXPECT_STR(jget(tr->e[1], "TCPEDU_REASON"), edge_event("SYN_SENT", "CLOSED"));
                        expect_cause(tr->e[1], "connect timeout: no answer to SYN");
                }
        }
        json_object *s = CTL_JSON(d, "status");
        EXPECT_INT(jnum(s, "sessions"), 0);

        /* the target takes its waiting connection: there is room again, and a session opens (the
         * client whose SYN was dropped gives up first, so that its next SYN does not take the room) */
        sock_close(dropped);
        int acc = accept(ls, NULL, NULL);
        EXPECT(acc >= 0, "accept: %m");
        REQUIRE_INT(ctl(d, &r, "session", "open", target, "--timeout", "5", NULL), 0);
        EXPECT(r.exit_code == 0, "session open once the queue has room: exit %d: %s", r.exit_code, r.err);
        if (r.exit_code == 0) {
                char *id = tstr("%.*s", (int)strcspn(r.out, "\n"), r.out);
                REQUIRE_INT(ctl(d, &r, "session", "close", id, NULL), 0);
                EXPECT(r.exit_code == 0, "session close: exit %d: %s", r.exit_code, r.err);
        }
        if (acc >= 0)
                close(acc);
        close(ls);
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "RST in the middle of a transfer", test_reset_mid_transfer },
                { "half-close, then read every byte of the echo", test_half_close_keeps_reading },
                { "a session to a target whose accept queue is full", test_session_accept_queue_full },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("faults: peers", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
