/* SPDX-License-Identifier: MIT */
/* Echo: every byte back, in order, for small, large, many and IPv6 connections; and backpressure:
 * a client that does not read makes the daemon stop reading, not buffer without bound. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "harness.h"
#include "test-util.h"

#define N_CONCURRENT 100

static char *echo_config(const char *name, const char *listen, const char *extra) {
        return tstr("[daemon]\n"
                    "log_transitions = summary\n"
                    "\n"
                    "[server %s]\n"
                    "type = echo\n"
                    "listen = %s\n"
                    "%s",
                    name, listen, extra ? extra : "");
}

static void test_echo_one_byte(void) {
        Daemon *d = daemon_start(echo_config(unique_name("echo"), "127.0.0.1:0", NULL), NULL);
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener on 127.0.0.1");
        EXPECT(addr_port(&a) != 0, "listener port is 0");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        uint8_t c = 0xA5, back = 0;
        REQUIRE_INT(send_all(fd, &c, 1, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(recv_exact(fd, &back, 1, IO_TIMEOUT_MS), 0);
        EXPECT_INT(back, 0xA5);
        EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_echo_one_mib(void) {
        Daemon *d = daemon_start(echo_config(unique_name("echo"), "127.0.0.1:0", NULL), NULL);
        size_t len = 1 << 20;
        uint8_t *buf = malloc(len);
        Addr a;

        REQUIRE(buf != NULL, "out of memory");
        fill_pattern(buf, len, 1);
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener on 127.0.0.1");
        int fd = tcp_connect(&a, NULL);
        if (fd < 0)
                free(buf);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        int r = echo_check(fd, buf, len, 20000);
        free(buf);
        EXPECT(r == 0, "1 MiB echo: %s", strerror(-r));
        EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_echo_concurrent(void) {
        Daemon *d = daemon_start(echo_config(unique_name("echo"), "127.0.0.1:0", NULL), NULL);
        static uint8_t data[N_CONCURRENT][4000], got[4000];
        int fds[N_CONCURRENT];
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener on 127.0.0.1");
        /* All connected at once, all data sent, only then anything read back. */
        for (int i = 0; i < N_CONCURRENT; i++) {
                fds[i] = tcp_connect(&a, NULL);
                REQUIRE(fds[i] >= 0, "connect #%d: %s", i, strerror(-fds[i]));
        }
        for (int i = 0; i < N_CONCURRENT; i++) {
                fill_pattern(data[i], sizeof(data[i]), 1000 + (uint64_t)i);
                int n = snprintf((char *)data[i], 32, "connection %03d:", i);
                data[i][n] = ' ';
                REQUIRE_INT(send_all(fds[i], data[i], sizeof(data[i]), IO_TIMEOUT_MS), 0);
        }
        int bad = 0;
        for (int i = 0; i < N_CONCURRENT; i++) {
                int r = recv_exact(fds[i], got, sizeof(got), IO_TIMEOUT_MS);
                EXPECT(r == 0, "connection %d: recv: %s", i, strerror(-r));
                if (r == 0 && memcmp(got, data[i], sizeof(got)) != 0) {
                        bad++;
                        EXPECT(false, "connection %d got other bytes back (starts '%.15s')", i, (char *)got);
                }
        }
        EXPECT_INT(bad, 0);
        for (int i = 0; i < N_CONCURRENT; i++)
                EXPECT_INT(close_graceful(fds[i]), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_echo_ipv6(void) {
        Daemon *d = daemon_start(echo_config(unique_name("echo6"), "[::1]:0", NULL), NULL);
        uint8_t buf[10000], back[10000];
        char local[ADDR_STR_MAX];
        Addr a;

        REQUIRE(daemon_listener(d, "::1", &a), "no listener on [::1]");
        EXPECT(addr_port(&a) != 0, "listener port is 0");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect to [::1]: %s", strerror(-fd));
        EXPECT(strncmp(sock_local(fd, local, sizeof(local)), "[::1]:", 6) == 0, "client address %s", local);
        fill_pattern(buf, sizeof(buf), 6);
        REQUIRE_INT(send_all(fd, buf, sizeof(buf), IO_TIMEOUT_MS), 0);
        REQUIRE_INT(recv_exact(fd, back, sizeof(back), IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(buf, back, sizeof(buf)) == 0, "IPv6 echo differs");
        EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- backpressure ---- */

#define BP_TOTAL (8u << 20)
#define BP_RSS_LIMIT_KB (64 * 1024)

typedef struct Writer {
        int fd;
        const uint8_t *data;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t sent;
        bool done, stop;
        int error;
} Writer;

static void *writer_main(void *userdata) {
        Writer *w = userdata;
        size_t off = 0;
        int error = 0;

        while (off < BP_TOTAL) {
                pthread_mutex_lock(&w->lock);
                bool stop = w->stop;
                pthread_mutex_unlock(&w->lock);
                if (stop)
                        break;
                /* Bounded waits so that a stop request is seen even while the socket stays full. */
                struct pollfd p = { .fd = w->fd, .events = POLLOUT };
                if (poll(&p, 1, 200) <= 0)
                        continue;
                size_t chunk = BP_TOTAL - off < 65536 ? BP_TOTAL - off : 65536;
                ssize_t n = send(w->fd, w->data + off, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        error = errno;
                        break;
                }
                off += (size_t)n;
                pthread_mutex_lock(&w->lock);
                w->sent = off;
                pthread_cond_broadcast(&w->cond);
                pthread_mutex_unlock(&w->lock);
        }
        pthread_mutex_lock(&w->lock);
        w->done = true;
        w->error = error;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Wait until the writer finished, or sent nothing for 300 ms (stalled). True if stalled. */
static bool wait_writer_stalled(Writer *w, size_t *ret_sent) {
        uint64_t give_up = now_ms() + 60000;
        bool stalled = false;

        pthread_mutex_lock(&w->lock);
        while (!w->done && now_ms() < give_up) {
                size_t before = w->sent;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 300 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                int r = 0;
                while (!w->done && w->sent == before && r == 0)
                        r = pthread_cond_timedwait(&w->cond, &w->lock, &ts);
                if (r != 0 && w->sent == before && !w->done) {
                        stalled = true;
                        break;
                }
        }
        *ret_sent = w->sent;
        pthread_mutex_unlock(&w->lock);
        return stalled;
}

static void test_backpressure(void) {
        Daemon *d = daemon_start(echo_config(unique_name("bp"), "127.0.0.1:0", "buffer_size = 64K\n"), NULL);
        uint8_t *data = malloc(BP_TOTAL), *got = malloc(BP_TOTAL);
        Writer w = { .data = data, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        pthread_t thread;
        Addr a;

        if (!data || !got) {
                free(data);
                free(got);
                REQUIRE(false, "out of memory");
        }
        fill_pattern(data, BP_TOTAL, 8);
        long rss_before = daemon_vmrss_kb(d);
        if (!daemon_listener(d, "127.0.0.1", &a) || (w.fd = tcp_connect(&a, NULL)) < 0) {
                free(data);
                free(got);
                REQUIRE(false, "cannot connect to the daemon");
        }
        if (pthread_create(&thread, NULL, writer_main, &w) != 0) {
                free(data);
                free(got);
                REQUIRE(false, "pthread_create failed");
        }

        size_t sent_at_stall;
        bool stalled = wait_writer_stalled(&w, &sent_at_stall);
        long rss = daemon_vmrss_kb(d);
        /* The daemon's own socket: local = the listener's port, remote = our port. */
        Addr me;
        socklen_t len = sizeof(me);
        TcpSocketInfo info = {};
        bool found = getsockname(w.fd, &me.sa, &len) == 0 && tcp_socket_info(addr_port(&a), addr_port(&me), &info);
        unsigned long send_q = info.send_q, recv_q = info.recv_q;
        printf("\n    backpressure: writer %s after %zu of %u bytes; daemon VmRSS %ld kB (%ld kB before); "
               "daemon socket Send-Q %lu, Recv-Q %lu\n",
               stalled ? "stalled" : "finished", sent_at_stall, BP_TOTAL, rss, rss_before, send_q, recv_q);
        EXPECT(rss > 0 && rss < BP_RSS_LIMIT_KB, "daemon VmRSS %ld kB while the client does not read (limit %d kB)", rss, BP_RSS_LIMIT_KB);
        /* Kernel buffers on loopback can take most of 8 MiB, so the writer may well finish; but what
         * the daemon has not sent must stay unread in its receive queue, not in its memory. */
        EXPECT(found, "no socket %u <-> %u in /proc/net/tcp", addr_port(&a), addr_port(&me));
        EXPECT(recv_q > 0, "the daemon's receive queue is empty: it read everything although the client reads nothing");
        EXPECT(daemon_alive(d), "daemon died under backpressure");

        /* Now read everything back while the writer goes on. */
        int r = recv_exact(w.fd, got, BP_TOTAL, 60000);
        EXPECT(r == 0, "reading the 8 MiB back: %s", strerror(-r));
        pthread_mutex_lock(&w.lock);
        w.stop = true;
        pthread_mutex_unlock(&w.lock);
        pthread_join(thread, NULL);
        EXPECT_INT(w.error, 0);
        EXPECT_INT(w.sent, BP_TOTAL);
        if (r == 0) {
                size_t i = 0;
                while (i < BP_TOTAL && got[i] == data[i])
                        i++;
                EXPECT(i == BP_TOTAL, "echoed bytes differ from offset %zu on", i);
        }
        free(data);
        free(got);
        EXPECT_INT(close_graceful(w.fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static CU_TestInfo echo_tests[] = {
        { "one byte", test_echo_one_byte },
        { "1 MiB", test_echo_one_mib },
        { "100 concurrent connections", test_echo_concurrent },
        { "IPv6 [::1]", test_echo_ipv6 },
        CU_TEST_INFO_NULL,
};

static CU_TestInfo backpressure_tests[] = {
        { "8 MiB to a client that reads late", test_backpressure },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("echo", echo_tests),
                HARNESS_SUITE("backpressure", backpressure_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
