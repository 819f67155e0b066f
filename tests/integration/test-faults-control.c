/* SPDX-License-Identifier: MIT */
/* Fault injection: the control socket abused. After each abuse the daemon still answers tcpeductl
 * and still echoes, and its file descriptors (/proc/PID/fd) come back to where they were.
 * - 1,000 connect/disconnect cycles, closing at every point of the exchange; 128 clients at once
 *   and the 129th told so;
 * - half-written requests left hanging, one finished much later;
 * - a 10 MiB request line: one error, the line skipped, memory not grown by it;
 * - monitors that never read while events flow: each cut off at 4 MiB, logged and counted.
 * (A line over 64 KiB, a silent client, one that never reads its replies, 100 clients at once and
 * invalid JSON: test-control.c, "bad input on the control socket".) */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"

#define GREETING "{\"tcpedu\":\"control\",\"protocol\":1,\"version\":\"0.1.0\"}"

static Daemon *start_echo(Addr *a) {
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", unique_name("ctlab")), NULL);
        REQUIRE(daemon_listener(d, "127.0.0.1", a), "no listener");
        return d;
}

/* A blocking connect (the daemon's backlog is 64), then non-blocking. */
static int ctl_connect(Daemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_socket(d));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        (void)fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
}

static void expect_alive(Daemon *d, const Addr *a, const char *after) {
        json_object *o = CTL_JSON(d, "status");
        EXPECT(o != NULL && jnum(o, "pid") == d->pid, "tcpeductl status after %s", after);
        int fd = tcp_connect(a, NULL);
        EXPECT(fd >= 0, "connect after %s: %s", after, strerror(-fd));
        if (fd >= 0) {
                EXPECT(echo_check(fd, "ok\n", 3, IO_TIMEOUT_MS) == 0, "echo after %s", after);
                EXPECT_INT(close_graceful(fd), 0);
        }
}

static void expect_fds_back(Daemon *d, int base, const char *after) {
        int n = wait_fd_count(d, base, 10000);
        EXPECT(n == base, "after %s the daemon has %d fds open, %d before", after, n, base);
}

static void test_churn(void) {
        Addr a;
        Daemon *d = start_echo(&a);
        expect_alive(d, &a, "start");
        int base = settled_fd_count(d);

        unsigned greeted = 0, answered = 0;
        for (int i = 0; i < 1000; i++) {
                int fd = ctl_connect(d);
                REQUIRE(fd >= 0, "control connection %d: %s", i, strerror(-fd));
                switch (i % 5) {
                case 0: /* gone at once */
                        break;
                case 1: /* greeted, gone */
                        greeted += control_line(fd, IO_TIMEOUT_MS) != NULL;
                        break;
                case 2: /* asks, gone before the reply */
                        (void)send(fd, "{\"id\":1,\"command\":\"servers\"}\n", 29, MSG_NOSIGNAL);
                        break;
                case 3: /* half a request, gone */
                        (void)send(fd, "{\"id\":1,\"comm", 13, MSG_NOSIGNAL);
                        break;
                case 4: { /* a whole exchange */
                        greeted += control_line(fd, IO_TIMEOUT_MS) != NULL;
                        (void)send(fd, "{\"id\":5,\"command\":\"status\"}\n", 28, MSG_NOSIGNAL);
                        const char *l = control_line(fd, IO_TIMEOUT_MS);
                        answered += l && strncmp(l, "{\"id\":5,\"ok\":true", 17) == 0;
                        break;
                }
                }
                close(fd);
        }
        EXPECT_INT(greeted, 400);
        EXPECT_INT(answered, 200);
        expect_alive(d, &a, "1,000 control connections");
        expect_fds_back(d, base, "1,000 control connections");

        /* 128 at once; the 129th is told so and closed */
        int many[129];
        for (int i = 0; i < 129; i++) {
                many[i] = ctl_connect(d);
                REQUIRE(many[i] >= 0, "control connection %d: %s", i, strerror(-many[i]));
                const char *g = control_line(many[i], IO_TIMEOUT_MS);
                if (i < 128)
                        EXPECT(g && strcmp(g, GREETING) == 0, "client %d: %s", i, g ? g : "(nothing)");
                else {
                        EXPECT_STR(g, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"limit\",\"message\":\"too many control clients\"}}");
                        EXPECT(control_line(many[i], IO_TIMEOUT_MS) == NULL, "the 129th client is not closed");
                }
        }
        RunResult r;
        REQUIRE_INT(ctl(d, &r, "status", NULL), 0);
        EXPECT(r.exit_code == 1 && strstr(r.err, "too many control clients"), "tcpeductl with 128 clients connected: exit %d: %s",
               r.exit_code, r.err);
        for (int i = 0; i < 129; i++)
                close(many[i]);
        expect_alive(d, &a, "129 control clients");
        expect_fds_back(d, base, "129 control clients");
        json_object *st = CTL_JSON(d, "stats");
        EXPECT(jnum(st, "control_dropped") == 2, "control_dropped: %lld, expected 2 (the 129th and tcpeductl)",
               jnum(st, "control_dropped"));
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_half_written(void) {
        Addr a;
        Daemon *d = start_echo(&a);
        expect_alive(d, &a, "start");
        int base = settled_fd_count(d);
        int fds[50];
        for (int i = 0; i < 50; i++) {
                fds[i] = ctl_connect(d);
                REQUIRE(fds[i] >= 0, "control connection: %s", strerror(-fds[i]));
                EXPECT(control_line(fds[i], IO_TIMEOUT_MS) != NULL, "no greeting");
                const char *part = tstr("{\"id\":%d,\"command\":\"sta", i);
                REQUIRE_INT(send_all(fds[i], part, strlen(part), IO_TIMEOUT_MS), 0);
        }
        expect_alive(d, &a, "50 half-written requests");
        /* one of them finishes its line, a byte at a time: answered as if it had come at once */
        for (const char *p = "tus\"}\n"; *p; p++)
                REQUIRE_INT(send_all(fds[7], p, 1, IO_TIMEOUT_MS), 0);
        const char *l = control_line(fds[7], IO_TIMEOUT_MS);
        EXPECT(l && strncmp(l, "{\"id\":7,\"ok\":true,\"data\":{\"version\":", 35) == 0, "the finished request: %s", l ? l : "(none)");
        for (int i = 0; i < 50; i++)
                close(fds[i]);
        expect_alive(d, &a, "50 half-written requests closed");
        expect_fds_back(d, base, "50 half-written requests");
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_huge_line(void) {
        Addr a;
        Daemon *d = start_echo(&a);
        expect_alive(d, &a, "start");
        int base = settled_fd_count(d);
        long rss0 = daemon_vmrss_kb(d);
        int fd = ctl_connect(d);
        REQUIRE(fd >= 0, "control connection");
        EXPECT(control_line(fd, IO_TIMEOUT_MS) != NULL, "no greeting");
        size_t big = 10u << 20;
        char *line = malloc(big + 1);
        REQUIRE(line != NULL, "out of memory");
        memset(line, 'x', big);
        line[big] = '\n';
        int r = send_all(fd, line, big + 1, 60000);
        free(line);
        REQUIRE_INT(r, 0);
        REQUIRE_INT(send_all(fd, "{\"id\":2,\"command\":\"stats\"}\n", 27, IO_TIMEOUT_MS), 0);
        EXPECT_STR(control_line(fd, IO_TIMEOUT_MS),
                   "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"request line longer than 65536 bytes\"}}");
        const char *l = control_line(fd, IO_TIMEOUT_MS);
        EXPECT(l && strncmp(l, "{\"id\":2,\"ok\":true", 17) == 0, "the request after the long line: %s", l ? l : "(none)");
        long rss1 = daemon_vmrss_kb(d);
        printf("\n    a 10 MiB line: daemon RSS %ld KiB before, %ld KiB after\n", rss0, rss1);
        if (!UNDER_ASAN)
                EXPECT(rss1 - rss0 < 2048, "the daemon's RSS grew by %ld KiB with a 10 MiB line", rss1 - rss0);
        close(fd);
        expect_alive(d, &a, "a 10 MiB line");
        expect_fds_back(d, base, "a 10 MiB line");
        EXPECT_INT(daemon_stop(d), 0);
}

#define N_MONITORS 10

static void test_deaf_monitors(void) {
        Addr a;
        Daemon *d = start_echo(&a);
        expect_alive(d, &a, "start");
        int base = settled_fd_count(d);
        int mon[N_MONITORS];
        for (int i = 0; i < N_MONITORS; i++) {
                mon[i] = ctl_connect(d);
                REQUIRE(mon[i] >= 0, "monitor %d", i);
                REQUIRE_INT(send_all(mon[i], "{\"id\":1,\"command\":\"monitor\"}\n", 30, IO_TIMEOUT_MS), 0);
        }
        /* a monitor that reads, interleaved with the deaf ones: it keeps getting events */
        int reader = ctl_connect(d);
        REQUIRE(reader >= 0, "reading monitor");
        REQUIRE_INT(send_all(reader, "{\"id\":1,\"command\":\"monitor\"}\n", 30, IO_TIMEOUT_MS), 0);
        int keep = tcp_connect(&a, NULL);
        REQUIRE(keep >= 0, "connect");

        unsigned conns = 0, status_fail = 0, echo_fail = 0;
        uint64_t events = 0;
        long long dropped = 0;
        uint64_t start = now_ms();
        while (dropped < N_MONITORS && conns < 20000 && now_ms() - start < 60000) {
                for (int i = 0; i < 100; i++, conns++) {
                        int fd = tcp_connect(&a, NULL);
                        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
                        echo_fail += echo_check(fd, "e", 1, IO_TIMEOUT_MS) != 0;
                        REQUIRE_INT(close_graceful(fd), 0);
                        char buf[65536];
                        ssize_t n;
                        while ((n = recv(reader, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                                for (ssize_t k = 0; k < n; k++)
                                        events += buf[k] == '\n';
                }
                json_object *st = CTL_JSON(d, "stats");
                status_fail += st == NULL;
                dropped = jnum(st, "control_dropped");
                echo_fail += echo_check(keep, "k", 1, IO_TIMEOUT_MS) != 0;
        }
        /* the reading monitor: every event of every connection (6 each), none lost */
        for (uint64_t until = now_ms() + IO_TIMEOUT_MS; events < 6 * (uint64_t)conns && now_ms() < until;) {
                char buf[65536];
                ssize_t n = recv(reader, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        for (ssize_t k = 0; k < n; k++)
                                events += buf[k] == '\n';
                else
                        (void)poll(NULL, 0, 10);
        }
        printf("\n    %d monitors that never read: %u connections (%llu events to the monitor that reads) until %lld were cut off\n",
               N_MONITORS, conns, (unsigned long long)events, dropped);
        EXPECT(dropped == N_MONITORS, "%lld of %d deaf monitors cut off", dropped, N_MONITORS);
        EXPECT_INT(status_fail, 0);
        EXPECT_INT(echo_fail, 0);
        EXPECT(events >= 6 * (uint64_t)conns, "the reading monitor got %llu events for %u connections", (unsigned long long)events, conns);
        /* what a deaf monitor finds when it reads at last: its events, then the end */
        for (int i = 0; i < N_MONITORS; i++) {
                char buf[65536];
                size_t total = 0;
                int end = -1;
                for (uint64_t until = now_ms() + IO_TIMEOUT_MS; end < 0 && now_ms() < until;) {
                        ssize_t n = recv(mon[i], buf, sizeof(buf), MSG_DONTWAIT);
                        if (n > 0)
                                total += (size_t)n;
                        else if (n == 0)
                                end = 0;
                        else if (errno != EAGAIN)
                                end = errno;
                        else
                                (void)poll(NULL, 0, 10);
                }
                EXPECT(end == 0 && total > 0, "deaf monitor %d: %zu bytes, then %s", i, total, end < 0 ? "nothing" : strerror(end));
                close(mon[i]);
        }
        if (journal_available("deaf monitors")) {
                JList *l = journal_wait(N_MONITORS, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_LIMIT, NULL);
                EXPECT(l->n == N_MONITORS, "%zu limit entries, expected %d", l->n, N_MONITORS);
                for (size_t i = 0; i < l->n; i++)
                        EXPECT(strstr(jget(l->e[i], "MESSAGE"), "disconnected: monitor does not read its events (output limit reached)"),
                               "%s", jget(l->e[i], "MESSAGE"));
        }
        close(reader);
        EXPECT_INT(close_graceful(keep), 0);
        expect_alive(d, &a, "the deaf monitors");
        /* the connections' TIME_WAIT watches hold no fd: only the control clients come and go */
        expect_fds_back(d, base, "the deaf monitors");
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        /* thousands of events in seconds: a journald of its own, without a rate limit */
        if (!private_journald())
                printf("no journald of its own: the shared one is used\n");
        static CU_TestInfo tests[] = {
                { "1,000 connect/disconnect cycles; 128 clients and the 129th", test_churn },
                { "half-written requests", test_half_written },
                { "a 10 MiB request line", test_huge_line },
                { "monitors that never read", test_deaf_monitors },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("faults: control socket", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
