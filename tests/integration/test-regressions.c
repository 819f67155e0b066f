/* SPDX-License-Identifier: MIT */
/* Regression tests for three crashes of tcpedud, each driven the way it was found:
 *
 *  1. server_stop() kept a pointer to the next connection while closing one; closing a chat member
 *     delivers its leave line to the others, and a member whose max_queue that line overflows is
 *     dropped (freed) right then, so the saved pointer went stale (the old loop never ended).
 *  2. The plug-in broadcast walked the connection list while a send could reset a connection whose
 *     on_disconnect broadcast again and reset others (a use-after-free of the next entry).
 *  3. A control client was freed (its output over the 4 MiB limit, filled by the events of its own
 *     monitor) while its own request was still running: a use-after-free, caught under ASan.
 *
 * Each test ends with the daemon still answering tcpeductl and exiting 0 on SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "harness.h"
#include "test-util.h"

#define TEST_TIMEOUT_MS 20000

/* Sockets made here (not by the harness): closed by this file's teardown. */
static int own_fds[64];
static size_t n_own_fds;

static int own_fd(int fd) {
        if (fd >= 0 && n_own_fds < sizeof(own_fds) / sizeof(own_fds[0]))
                own_fds[n_own_fds++] = fd;
        return fd;
}

static bool drainer_running;
static pthread_t drainer_thread;
static int drainer_stop_fd = -1;

static void stop_drainer(void) {
        if (!drainer_running)
                return;
        (void)!write(drainer_stop_fd, "x", 1);
        pthread_join(drainer_thread, NULL);
        drainer_running = false;
}

static void teardown(void) {
        stop_drainer();
        for (size_t i = 0; i < n_own_fds; i++)
                close(own_fds[i]);
        n_own_fds = 0;
        harness_teardown();
}

static void expect_status_ok(Daemon *d) {
        RunResult r;
        EXPECT(daemon_alive(d), "the daemon died");
        REQUIRE_INT(ctl(d, &r, "status", NULL), 0);
        EXPECT(r.exit_code == 0, "tcpeductl status: exit %d: %s", r.exit_code, r.err);
}

/* bytes_out of the connection whose peer is PEER ("127.0.0.1:PORT"), from `connections --json`;
 * -1 if there is none. */
static long long conn_bytes_out(Daemon *d, const char *peer) {
        RunResult r;
        long long out = -1;
        if (ctl(d, &r, "--json", "connections", NULL) < 0 || r.exit_code != 0)
                return -1;
        json_object *o = json_tokener_parse(r.out), *arr, *v;
        arr = o ? json_object_object_get(o, "connections") : NULL;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *c = json_object_array_get_idx(arr, i);
                const char *p = json_object_get_string(json_object_object_get(c, "peer"));
                if (p && strcmp(p, peer) == 0 && json_object_object_get_ex(c, "bytes_out", &v))
                        out = json_object_get_int64(v);
        }
        json_object_put(o);
        return out;
}

/* A TCP client whose receive buffer is set before connecting (so the window stays small). */
static int connect_small_rcvbuf(const Addr *a, int rcvbuf) {
        int fd = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        REQUIRE(fd >= 0, "socket: %m");
        REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0, "SO_RCVBUF: %m");
        int r = connect(fd, &a->sa, sizeof(a->in));
        REQUIRE(r == 0 || errno == EINPROGRESS, "connect: %m");
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        REQUIRE(poll(&p, 1, IO_TIMEOUT_MS) == 1, "connect timed out");
        int err = 0;
        socklen_t len = sizeof(err);
        REQUIRE(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0, "connect: %s", strerror(err));
        return fd;
}

/* Read (and keep, NUL-terminated, the last ~64 KiB of) what arrives until NEEDLE is in it. */
static int read_until(int fd, const char *needle, int timeout_ms) {
        static char acc[65536];
        size_t n = 0;
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        acc[0] = 0;
        for (;;) {
                if (strstr(acc, needle))
                        return 0;
                int64_t left = (int64_t)(deadline - now_ms());
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                if (n > sizeof(acc) / 2) {
                        memmove(acc, acc + n - 1024, 1024);
                        n = 1024;
                }
                ssize_t k = recv(fd, acc + n, sizeof(acc) - 1 - n, 0);
                if (k == 0)
                        return -ENODATA;
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                if (k > 0)
                        n += (size_t)k;
                acc[n] = 0;
        }
}

/* Discard what arrives until the end of the stream: 0 on EOF, -ECONNRESET, -ETIMEDOUT. */
static int drain_until_eof(int fd, int timeout_ms) {
        char buf[16384];
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                int left = (int)((int64_t)deadline - (int64_t)now_ms());
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, left) <= 0)
                        continue;
                ssize_t k = recv(fd, buf, sizeof(buf), 0);
                if (k == 0)
                        return 0;
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
}

/* The client socket was reset (the kernel's TCP state is CLOSE), without reading from it. */
static bool was_reset(int fd) {
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE;
}

/* ---- 1. server_stop() while a leave line drops the next member ---- */

/* A chat line member sends TEXT; every member (the sender too) gets "[HH:MM:SS] <c> TEXT\n". */
#define CHAT_LINE_OVERHEAD 16 /* "[HH:MM:SS] " + "<c> " + "\n" */
#define MAX_QUEUE 4096
#define LEAVE_A_LEN 9 /* "* a left\n" */

static void say(int from, int a, int c, size_t line_len) {
        char text[2048], line[2100], got[2100];
        size_t tlen = line_len - CHAT_LINE_OVERHEAD;
        REQUIRE(line_len > CHAT_LINE_OVERHEAD && line_len < sizeof(line), "line length %zu", line_len);
        memset(text, 'x', tlen);
        memcpy(line, text, tlen);
        line[tlen] = '\n';
        REQUIRE_INT(send_all(from, line, tlen + 1, IO_TIMEOUT_MS), 0);
        /* A and C read theirs: once they have it, B's copy was queued too (one delivery). */
        REQUIRE_INT(recv_exact(a, got, line_len, IO_TIMEOUT_MS), 0);
        REQUIRE(memcmp(got + 11, "<c> ", 4) == 0 && got[line_len - 1] == '\n', "A got '%.*s'", (int)line_len, got);
        REQUIRE_INT(recv_exact(c, got, line_len, IO_TIMEOUT_MS), 0);
}

static void test_stop_drops_next_member(void) {
        const char *name = unique_name("regr-chat");
        Daemon *d = daemon_start(
                tstr("[server %s]\ntype = chat\nlisten = 127.0.0.1:0\nprotocol = line\nmax_queue = %d\nmax_rate = 0\nhistory = 0\n", name,
                     MAX_QUEUE),
                NULL);
        RunResult r;
        Addr addr;
        char peer_b[ADDR_STR_MAX];

        REQUIRE(d != NULL, "daemon did not start");
        REQUIRE(daemon_listener(d, "127.0.0.1", &addr), "no listener");

        /* A, B, C join in that order: the server's connection list is A, B, C (C is the one that
         * talks, so it stays last), and closing A first delivers "* a left" to B. */
        int a = tcp_connect(&addr, NULL);
        REQUIRE(a >= 0, "connect A: %s", strerror(-a));
        REQUIRE_INT(send_all(a, "/nick a\n", 8, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(read_until(a, "* a joined\n", IO_TIMEOUT_MS), 0);
        int b = connect_small_rcvbuf(&addr, 2048);
        sock_local(b, peer_b, sizeof(peer_b));
        REQUIRE_INT(send_all(b, "/nick b\n", 8, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(read_until(a, "* b joined\n", IO_TIMEOUT_MS), 0);
        int c = tcp_connect(&addr, NULL);
        REQUIRE(c >= 0, "connect C: %s", strerror(-c));
        REQUIRE_INT(send_all(c, "/nick c\n", 8, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(read_until(c, "* c joined\n", IO_TIMEOUT_MS), 0);
        REQUIRE_INT(read_until(a, "* c joined\n", IO_TIMEOUT_MS), 0);

        /* Everything B was sent so far went straight into its kernel buffers (a few hundred
         * bytes): from here on, what waits in the daemon for B is sent_b - bytes_out. */
        long long sent_b = conn_bytes_out(d, peer_b);
        REQUIRE(sent_b > 0, "B (%s) not found", peer_b);
        long long queued = 0;

        /* Fill B's kernel buffers until output waits in the daemon, and wait for it to settle.
         * While the daemon's Send-Q for B (/proc/net/tcp) grows by a whole line, the kernel took it
         * all: ask tcpeductl only once it does not. */
        Addr b_local;
        socklen_t b_len = sizeof(b_local);
        REQUIRE(getsockname(b, &b_local.sa, &b_len) == 0, "getsockname: %m");
        unsigned long send_q = 0;
        for (int i = 0; queued <= 0; i++) {
                REQUIRE(i < 2000, "B's output never queued in the daemon");
                say(c, a, c, 1016);
                sent_b += 1016;
                TcpSocketInfo ti;
                if (tcp_socket_info(addr_port(&addr), addr_port(&b_local), &ti) && ti.send_q >= send_q + 1016) {
                        send_q = ti.send_q;
                        continue;
                }
                send_q = 0;
                long long out = conn_bytes_out(d, peer_b);
                REQUIRE(out >= 0, "B was dropped while filling its kernel buffers");
                queued = sent_b - out;
        }
        for (long long prev = -1; prev != queued;) {
                prev = queued;
                long long out = conn_bytes_out(d, peer_b);
                REQUIRE(out >= 0, "B gone");
                queued = sent_b - out;
        }
        /* Now bring B's queue to 4088..4096 bytes: under max_queue, but "* a left\n" overflows it. */
        while (queued < MAX_QUEUE - LEAVE_A_LEN + 1) {
                long long room = MAX_QUEUE - queued;
                size_t len = room <= 1016 ? (size_t)room : (size_t)(room - 17 < 1016 ? room - 17 : 1016);
                REQUIRE(len > CHAT_LINE_OVERHEAD, "queued %lld: cannot land in range", queued);
                say(c, a, c, len);
                sent_b += (long long)len;
                long long out = conn_bytes_out(d, peer_b);
                REQUIRE(out >= 0, "B was dropped early (queued %lld + %zu)", queued, len);
                queued = sent_b - out;
        }
        REQUIRE(queued <= MAX_QUEUE, "queued %lld", queued);

        /* The old server_stop() never returned here: tcpeductl timed out, the daemon hung. */
        REQUIRE_INT(ctl(d, &r, "stop", name, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_STR(r.out, tstr("server %s: stopped\n", name));
        expect_status_ok(d);
        EXPECT_INT(drain_until_eof(a, IO_TIMEOUT_MS), 0);
        EXPECT_INT(drain_until_eof(c, IO_TIMEOUT_MS), 0);
        sock_close(a); /* the daemon's FIN_WAIT2 ends without waiting */
        sock_close(c);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 2. a plug-in broadcast that ends other connections ---- */

static void test_plugin_broadcast_resets(void) {
        const char *name = unique_name("regr-plugin");
        Daemon *d = daemon_start(tstr("[server %s]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = %s\nbuffer_size = 1024\n", name,
                                      FIXTURES_DIR "/broadcaster.so"),
                                 NULL);
        Addr addr;

        REQUIRE(d != NULL, "daemon did not start");
        REQUIRE(daemon_listener(d, "127.0.0.1", &addr), "no listener");
        int x = connect_small_rcvbuf(&addr, 2048);
        int y = connect_small_rcvbuf(&addr, 2048);
        int z = tcp_connect(&addr, NULL);
        REQUIRE(z >= 0, "connect Z: %s", strerror(-z));

        /* Z's 3000-byte lines go to everyone: X's plug-in output passes 16 KiB, X is reset, and its
         * 4000-byte disconnect notice (broadcast from inside the broadcast) resets Y as well. */
        char line[3001];
        memset(line, 'z', 3000);
        line[3000] = '\n';
        uint64_t deadline = now_ms() + TEST_TIMEOUT_MS;
        for (int i = 0; !was_reset(x) || !was_reset(y); i++) {
                REQUIRE(now_ms() < deadline, "X and Y not reset after %d lines (X %d, Y %d)", i, was_reset(x), was_reset(y));
                line[0] = (char)('A' + i % 26);
                REQUIRE_INT(send_all(z, line, sizeof(line), IO_TIMEOUT_MS), 0);
                REQUIRE_INT(read_until(z, tstr("%c%.20s", line[0], line + 1), IO_TIMEOUT_MS), 0);
        }
        /* What they did get, then the reset. */
        EXPECT_INT(drain_until_eof(x, IO_TIMEOUT_MS), -ECONNRESET);
        EXPECT_INT(drain_until_eof(y, IO_TIMEOUT_MS), -ECONNRESET);
        expect_status_ok(d);

        /* Z still gets its own broadcasts. */
        memcpy(line, "after the resets ", 17);
        REQUIRE_INT(send_all(z, line, sizeof(line), IO_TIMEOUT_MS), 0);
        EXPECT_INT(read_until(z, "after the resets zzzz", IO_TIMEOUT_MS), 0);
        EXPECT_INT(send_all(z, "short\n", 6, IO_TIMEOUT_MS), 0);
        EXPECT_INT(read_until(z, "short\n", IO_TIMEOUT_MS), 0);
        expect_status_ok(d);
        EXPECT_INT(close_graceful(z), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- 3. a monitor client freed while its own request runs ---- */

#define N_SERVERS 20

/* Each restart sends sd_notify STATUS= datagrams, and the harness's notify socket holds only a
 * few (net.unix.max_dgram_qlen): a reader keeps it empty so the daemon never blocks on it. */
typedef struct NotifyDrain {
        int fd, stop_fd;
} NotifyDrain;

static void *notify_drain(void *userdata) {
        NotifyDrain *nd = userdata;
        char buf[4096];
        for (;;) {
                struct pollfd p[2] = { { .fd = nd->fd, .events = POLLIN }, { .fd = nd->stop_fd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return NULL;
                if (p[1].revents)
                        return NULL;
                while (recv(nd->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                        ;
        }
}

/* The address server NAME listens on, from `show NAME --json`. */
static bool listener_of(Daemon *d, const char *name, Addr *ret) {
        RunResult r;
        bool ok = false;
        if (ctl(d, &r, "--json", "show", name, NULL) < 0 || r.exit_code != 0)
                return false;
        json_object *o = json_tokener_parse(r.out);
        json_object *l = o ? json_object_array_get_idx(json_object_object_get(o, "listen"), 0) : NULL;
        const char *a = l ? json_object_get_string(json_object_object_get(l, "address")) : NULL;
        const char *colon = a ? strrchr(a, ':') : NULL;
        if (colon && strncmp(a, "127.0.0.1:", 10) == 0)
                ok = addr_parse_ip("127.0.0.1", (uint16_t)atoi(colon + 1), ret) == 0;
        json_object_put(o);
        return ok;
}

static void test_monitor_client_freed(void) {
        char *config = tstr("%s", "");
        for (int i = 0; i < N_SERVERS; i++)
                config = tstr("%s[server s%d]\ntype = echo\nlisten = 127.0.0.1:0\n\n", config, i);
        Daemon *d = daemon_start(config, NULL);
        REQUIRE(d != NULL, "daemon did not start");
        int stop[2];
        REQUIRE(pipe2(stop, O_CLOEXEC) == 0, "pipe: %m");
        own_fd(stop[0]);
        own_fd(stop[1]);
        NotifyDrain nd = { .fd = d->notify_fd, .stop_fd = stop[0] };
        pthread_t drainer;
        REQUIRE(pthread_create(&drainer, NULL, notify_drain, &nd) == 0, "pthread_create");
        drainer_running = true;
        drainer_thread = drainer;
        drainer_stop_fd = stop[1];

        int fd = own_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        REQUIRE(fd >= 0, "socket: %m");
        int rcvbuf = 4096;
        REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0, "SO_RCVBUF: %m");
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        REQUIRE(strlen(control_socket(d)) < sizeof(sun.sun_path), "socket path too long");
        strcpy(sun.sun_path, control_socket(d));
        REQUIRE(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "connect %s: %m", sun.sun_path);

        /* One buffer: monitor, ~440 `servers` (~9 KB replies each: near the 4 MiB output limit),
         * then restarts, each emitting events to this very client. */
        static char req[65000];
        size_t n = 0;
        const char *mon = "{\"id\":1,\"command\":\"monitor\"}\n";
        const char *srv = "{\"id\":2,\"command\":\"servers\"}\n";
        const char *rst = "{\"id\":3,\"command\":\"restart\",\"args\":{\"server\":\"s0\"}}\n";
        memcpy(req + n, mon, strlen(mon));
        n += strlen(mon);
        for (int i = 0; i < 440; i++, n += strlen(srv))
                memcpy(req + n, srv, strlen(srv));
        while (n + strlen(rst) <= sizeof(req)) {
                memcpy(req + n, rst, strlen(rst));
                n += strlen(rst);
        }
        size_t done = 0;
        uint64_t deadline = now_ms() + 2000;
        while (done < n && now_ms() < deadline) {
                ssize_t k = send(fd, req + done, n - done, MSG_NOSIGNAL);
                if (k > 0) {
                        done += (size_t)k;
                        continue;
                }
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        break; /* the daemon closed us: fine */
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                (void)poll(&p, 1, 100);
        }

        /* The daemon survives it, still answers and still echoes. */
        expect_status_ok(d);
        Addr addr;
        REQUIRE(listener_of(d, "s1", &addr), "no listener for s1");
        int e = tcp_connect(&addr, NULL);
        REQUIRE(e >= 0, "connect: %s", strerror(-e));
        EXPECT_INT(echo_check(e, "ping\n", 5, IO_TIMEOUT_MS), 0);
        EXPECT_INT(close_graceful(e), 0);
        expect_status_ok(d);
        stop_drainer();
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "server_stop: a leave line drops the next member", test_stop_drops_next_member },
                { "plug-in broadcast ends other connections", test_plugin_broadcast_resets },
                { "monitor client freed during its own request", test_monitor_client_freed },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "regressions", harness_suite_init, harness_suite_cleanup, harness_setup, teardown, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
