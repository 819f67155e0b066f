/* SPDX-License-Identifier: MIT */
/* Fault injection, load side: clients that hold the daemon's resources on purpose.
 * - 300 connections trickle one byte a second and never finish a line: line_timeout cuts each,
 *   while a normal client keeps getting its echoes and tcpeductl status keeps answering.
 * - RLIMIT_NOFILE = 64 and 200 clients that keep trying: the connections it took keep echoing, the
 *   rest are reset and counted, the daemon does not spin, and once fds are free it accepts again.
 * - A chat room of 1,000 members, half of which stop reading, and echo clients that never read:
 *   every reading member gets every message in order, every sleeper is dropped, and the daemon's
 *   RSS grows by less than the sum of its configured bounds.
 * The whole program runs in a network namespace of its own where TCP's buffers are small, so that
 * what a client that does not read costs is the daemon's own memory, not the kernel's. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"
#include "journal-check.h"

#define KERNEL_BUFFER_MAX 65536 /* tcp_rmem and tcp_wmem maximum in the test's namespace */

static bool own_netns;

static void expect_echo(int fd, const char *what) {
        int r = echo_check(fd, "echo check\n", 11, IO_TIMEOUT_MS);
        EXPECT(r == 0, "%s does not echo: %s", what, r == -EBADMSG ? "wrong bytes" : strerror(-r));
}

/* ---- slow and partial ---- */

#define N_SLOW 300
#define LINE_TIMEOUT 2

enum { OPEN, CUT_EOF, CUT_RESET, GOT_DATA };

static void test_slow_partial(void) {
        const char *name = unique_name("slow");
        raise_nofile(4096);
        Daemon *d = daemon_start(tstr("[server %s]\ntype = enhanced\nlisten = 127.0.0.1:0\nline_timeout = %d\n", name, LINE_TIMEOUT), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");

        static int fds[N_SLOW], state[N_SLOW], bytes[N_SLOW];
        static uint64_t first[N_SLOW], cut[N_SLOW];
        int normal = tcp_connect(&a, NULL);
        REQUIRE(normal >= 0, "connect: %s", strerror(-normal));
        for (int i = 0; i < N_SLOW; i++) {
                fds[i] = tcp_connect(&a, NULL);
                REQUIRE(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
                state[i] = OPEN;
                bytes[i] = 0;
                first[i] = cut[i] = 0;
        }

        uint64_t start = now_ms(), next_drip = start, next_ping = start, next_status = start + 500;
        uint64_t deadline = start + (LINE_TIMEOUT + 20) * 1000;
        unsigned pings = 0, pings_ok = 0, status_calls = 0, status_ok = 0;
        uint64_t worst_ping = 0;
        int open = N_SLOW;
        while (open > 0 && now_ms() < deadline) {
                uint64_t now = now_ms();
                if (now >= next_drip) {
                        /* one more byte of a line that never ends, on every connection still open */
                        for (int i = 0; i < N_SLOW; i++)
                                if (state[i] == OPEN && send(fds[i], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
                                        if (!bytes[i]++)
                                                first[i] = now;
                                }
                        next_drip += 1000;
                }
                if (now >= next_ping) {
                        /* a normal client on the same server: a whole line, echoed at once */
                        const char *line = tstr("ping %u\n", pings++);
                        uint64_t t = now_ms();
                        if (echo_check(normal, line, strlen(line), IO_TIMEOUT_MS) == 0)
                                pings_ok++;
                        if (now_ms() - t > worst_ping)
                                worst_ping = now_ms() - t;
                        next_ping = now + 100;
                }
                if (now >= next_status) {
                        json_object *o = CTL_JSON(d, "status");
                        status_calls++;
                        status_ok += o && jnum(o, "connections") >= 1;
                        next_status = now + 1000;
                }
                struct pollfd p[N_SLOW];
                for (int i = 0; i < N_SLOW; i++)
                        p[i] = (struct pollfd){ .fd = state[i] == OPEN ? fds[i] : -1, .events = POLLIN };
                if (poll(p, N_SLOW, 20) <= 0)
                        continue;
                for (int i = 0; i < N_SLOW; i++) {
                        if (!p[i].revents)
                                continue;
                        char buf[256];
                        ssize_t n = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        state[i] = n == 0 ? CUT_EOF : n > 0 ? GOT_DATA : CUT_RESET;
                        cut[i] = now_ms();
                        open--;
                        /* what a client does at EOF: close its side too */
                        sock_close(fds[i]);
                }
        }

        int n_eof = 0, n_reset = 0, n_data = 0, n_open = 0, n_early = 0, fewest = 1 << 30;
        uint64_t longest = 0;
        for (int i = 0; i < N_SLOW; i++) {
                n_eof += state[i] == CUT_EOF;
                n_reset += state[i] == CUT_RESET;
                n_data += state[i] == GOT_DATA;
                n_open += state[i] == OPEN;
                if (state[i] == CUT_EOF || state[i] == CUT_RESET) {
                        /* measured from our send of the first byte: never less than the daemon's own count */
                        n_early += cut[i] - first[i] < LINE_TIMEOUT * 1000 - 100;
                        longest = cut[i] - first[i] > longest ? cut[i] - first[i] : longest;
                        fewest = bytes[i] < fewest ? bytes[i] : fewest;
                }
        }
        printf("\n    %d trickling connections: %d cut with EOF, %d reset, %d got data, %d still open; the last cut %llu ms after its "
               "first byte, each after at least %d bytes; %u of %u pings echoed (slowest %llu ms), %u of %u status calls answered\n",
               N_SLOW, n_eof, n_reset, n_data, n_open, (unsigned long long)longest, fewest, pings_ok, pings, (unsigned long long)worst_ping,
               status_ok, status_calls);
        EXPECT(n_eof == N_SLOW, "%d of %d trickling connections ended with the daemon's FIN (%d reset, %d got data, %d still open)", n_eof,
               N_SLOW, n_reset, n_data, n_open);
        EXPECT(n_early == 0, "%d connections cut before line_timeout (%d s)", n_early, LINE_TIMEOUT);
        EXPECT(fewest >= LINE_TIMEOUT, "a connection was cut after %d bytes, before it had trickled for line_timeout", fewest);
        EXPECT(pings > 0 && pings_ok == pings, "the normal client: %u of %u lines echoed", pings_ok, pings);
        EXPECT(status_calls > 0 && status_ok == status_calls, "tcpeductl status: %u of %u answered", status_ok, status_calls);
        expect_echo(normal, "the normal client, after the trickling ones were cut");

        if (journal_available("slow and partial")) {
                const char *pid = tstr("_PID=%d", (int)d->pid);
                JList *l = journal_wait(N_SLOW, JOURNAL_TIMEOUT_MS * 3, pid, "TCPEDU_EVENT=disconnect",
                                        "TCPEDU_REASON=message incomplete longer than line_timeout", NULL);
                EXPECT(l->n == N_SLOW, "%zu disconnect entries with reason line_timeout, expected %d", l->n, N_SLOW);
                JList *lim = journal_query(pid, "MESSAGE_ID=" MID_LIMIT, NULL);
                EXPECT(lim->n == N_SLOW, "%zu line_timeout notices, expected %d", lim->n, N_SLOW);
                if (lim->n > 0)
                        EXPECT(strstr(jget(lim->e[0], "MESSAGE"),
                                      tstr("kept a message incomplete for %d s (line_timeout): closing", LINE_TIMEOUT)) != NULL,
                               "notice: %s", jget(lim->e[0], "MESSAGE"));
                /* one of them, step by step: the daemon closed first */
                if (l->n > 0) {
                        const char *id = jget(l->e[0], "TCPEDU_CONN_ID");
                        JList *t = journal_wait(5, JOURNAL_TIMEOUT_MS, pid, tstr("TCPEDU_CONN_ID=%s", id), "TCPEDU_EVENT=transition", NULL);
                        static const char *const path[] = {
                                "LISTEN", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"
                        };
                        EXPECT(t->n >= 5, "%zu transitions of %s", t->n, id);
                        for (size_t i = 0; i < t->n && i < 5; i++) {
                                EXPECT_STR(jget(t->e[i], "TCPEDU_OLD_STATE"), path[i]);
                                EXPECT_STR(jget(t->e[i], "TCPEDU_NEW_STATE"), path[i + 1]);
                                EXPECT_STR(jget(t->e[i], "TCPEDU_REASON"), edge_event(path[i], path[i + 1]));
                                /* line_timeout set the close going: the cause of its first step only */
                                expect_cause(t->e[i], i == 2 ? "message incomplete longer than line_timeout" : NULL);
                        }
                }
        }
        EXPECT_INT(close_graceful(normal), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- out of file descriptors ---- */

#define FD_LIMIT 64
#define N_ATTEMPTS 200
#define N_FIRST 8
#define FD_EPISODE_MS 3000
#define RETRY_MS 100

enum { IDLE, CONNECTING, ECHOING, HELD };

static void test_fd_exhaustion(void) {
        const char *name = unique_name("fds");
        raise_nofile(4096);
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name), &(DaemonOptions){ .nofile = FD_LIMIT });
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int fds_before = daemon_fd_count(d);
        const char *fd_list_before = daemon_fd_list(d);

        int first[N_FIRST];
        for (int i = 0; i < N_FIRST; i++) {
                first[i] = tcp_connect(&a, NULL);
                REQUIRE(first[i] >= 0, "connect %d: %s", i, strerror(-first[i]));
                expect_echo(first[i], "one of the first connections");
        }

        static int fd[N_ATTEMPTS], st[N_ATTEMPTS];
        static uint64_t retry_at[N_ATTEMPTS];
        for (int i = 0; i < N_ATTEMPTS; i++) {
                fd[i] = -1;
                st[i] = IDLE;
                retry_at[i] = 0;
        }
        unsigned attempts = 0, resets = 0, held = 0, lost = 0, first_fail = 0;
        int ctl_exit = -2;
        const char *ctl_err = "";
        uint64_t ctl_ms = 0;
        long cpu0 = daemon_cpu_ms(d);
        uint64_t t0 = now_ms(), next_check = t0 + 500;
        bool ctl_done = false;
        /* FD_EPISODE_MS of attempts, then the ones under way are decided */
        for (;;) {
                uint64_t now = now_ms();
                bool starting = now - t0 < FD_EPISODE_MS, pending = false;
                for (int i = 0; i < N_ATTEMPTS; i++)
                        pending = pending || st[i] == CONNECTING || st[i] == ECHOING;
                if ((!starting && !pending) || now - t0 > FD_EPISODE_MS + 10000)
                        break;
                for (int i = 0; i < N_ATTEMPTS && starting; i++)
                        if (st[i] == IDLE && now >= retry_at[i]) {
                                fd[i] = tcp_connect_start(&a);
                                REQUIRE(fd[i] >= 0, "connect: %s", strerror(-fd[i]));
                                st[i] = CONNECTING;
                                attempts++;
                        }
                if (!ctl_done && now - t0 >= FD_EPISODE_MS / 2) {
                        /* the control socket while no fd is left: told so at once */
                        RunResult r;
                        uint64_t t = now_ms();
                        if (ctl(d, &r, "status", NULL) == 0) {
                                ctl_exit = r.exit_code;
                                ctl_err = r.err;
                        }
                        ctl_ms = now_ms() - t;
                        ctl_done = true;
                }
                if (now >= next_check) {
                        for (int i = 0; i < N_FIRST; i++)
                                first_fail += echo_check(first[i], "x", 1, IO_TIMEOUT_MS) != 0;
                        next_check = now + 500;
                }
                struct pollfd p[N_ATTEMPTS];
                for (int i = 0; i < N_ATTEMPTS; i++)
                        p[i] = (struct pollfd){ .fd = st[i] == IDLE ? -1 : fd[i], .events = st[i] == CONNECTING ? POLLOUT : POLLIN };
                if (poll(p, N_ATTEMPTS, 10) <= 0)
                        continue;
                for (int i = 0; i < N_ATTEMPTS; i++) {
                        if (!p[i].revents)
                                continue;
                        bool reset = false;
                        if (st[i] == CONNECTING) {
                                int err = 0;
                                socklen_t len = sizeof(err);
                                (void)getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &err, &len);
                                if (err || send(fd[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
                                        reset = true;
                                else
                                        st[i] = ECHOING;
                        } else {
                                char c;
                                ssize_t n = recv(fd[i], &c, 1, MSG_DONTWAIT);
                                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                        continue;
                                if (st[i] == ECHOING && n == 1 && c == 'x') {
                                        st[i] = HELD;
                                        held++;
                                } else if (st[i] == HELD) {
                                        lost++; /* an accepted connection must stay */
                                        st[i] = IDLE;
                                        sock_close(fd[i]);
                                        retry_at[i] = UINT64_MAX;
                                } else
                                        reset = true;
                        }
                        if (reset) {
                                resets++;
                                sock_close(fd[i]);
                                fd[i] = -1;
                                st[i] = IDLE;
                                retry_at[i] = now_ms() + RETRY_MS;
                        }
                }
        }
        uint64_t wall = now_ms() - t0;
        long cpu = daemon_cpu_ms(d) - cpu0;
        printf("\n    RLIMIT_NOFILE %d (%d fds in use at start): %u connection attempts in %llu ms, %u accepted and held, %u reset; "
               "the daemon used %ld ms of CPU (%.0f%% of one core); tcpeductl status exit %d in %llu ms\n",
               FD_LIMIT, fds_before, attempts, (unsigned long long)wall, held, resets, cpu, 100.0 * (double)cpu / (double)wall, ctl_exit,
               (unsigned long long)ctl_ms);
        EXPECT(held > 0 && held + N_FIRST <= FD_LIMIT, "%u connections held with %d fds", held, FD_LIMIT);
        EXPECT(resets > 0, "no connection was reset with %d fds", FD_LIMIT);
        EXPECT_INT(lost, 0);
        EXPECT_INT(first_fail, 0);
        EXPECT(cpu >= 0 && (uint64_t)cpu * 2 < wall, "the daemon used %ld ms of CPU in %llu ms: it spins", cpu, (unsigned long long)wall);
        EXPECT(ctl_done && ctl_ms < 5000, "tcpeductl status took %llu ms", (unsigned long long)ctl_ms);
        EXPECT(ctl_exit == 1 && strstr(ctl_err, "refused the connection: the daemon is out of file descriptors"),
               "tcpeductl status without a free fd: exit %d: %s", ctl_exit, ctl_err);
        EXPECT(daemon_alive(d), "the daemon died");
        for (int i = 0; i < N_FIRST; i++)
                expect_echo(first[i], "one of the first connections after the episode");

        /* every reset was a refusal the daemon counted */
        for (int i = 0; i < N_ATTEMPTS; i++)
                if (fd[i] >= 0)
                        sock_close(fd[i]);
        int fds_after = wait_fd_count(d, fds_before + N_FIRST, 10000);
        EXPECT(fds_after == fds_before + N_FIRST, "the daemon has %d fds open, expected %d\n    at start: %s\n    now: %s", fds_after,
               fds_before + N_FIRST, fd_list_before, daemon_fd_list(d));
        json_object *o = CTL_JSON(d, "servers");
        json_object *s = o ? json_object_array_get_idx(jpath(o, "servers"), 0) : NULL;
        EXPECT(jnum(s, "refused.fd_limit") == (long long)resets, "the daemon counted %lld fd_limit refusals, the clients saw %u resets",
               jnum(s, "refused.fd_limit"), resets);
        int fresh = tcp_connect(&a, NULL);
        EXPECT(fresh >= 0, "a new connection once fds are free: %s", strerror(-fresh));
        if (fresh >= 0) {
                expect_echo(fresh, "a new connection once fds are free");
                EXPECT_INT(close_graceful(fresh), 0);
        }
        if (journal_available("fd limit")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=refused",
                                        "TCPEDU_REASON=fd_limit", NULL);
                EXPECT(l->n >= 1, "no refused entry with reason fd_limit");
                l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_LIMIT, NULL);
                EXPECT(l->n >= 1 && strstr(jget(l->e[0], "MESSAGE"), "control socket: cannot accept: Too many open files ("),
                       "no warning about the control client refused for want of an fd");
        }
        for (int i = 0; i < N_FIRST; i++)
                EXPECT_INT(close_graceful(first[i]), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- memory bounds ---- */

#define N_MEMBERS 1000 /* half of them stop reading */
#define N_ECHO 100 /* echo clients that never read */
#define N_MESSAGES 400
#define MSG_SIZE 1000
#define WINDOW 32 /* the sender stays at most this many messages ahead of the slowest reader */
#define MAX_QUEUE (64 * 1024)
#define BUFFER_SIZE (64 * 1024)
#define JOURNAL_QUEUE (4 * 1024 * 1024)
#define MEMBER_BUF 4096

typedef struct Member {
        int fd;
        bool sleeper, closed;
        int err;
        unsigned next; /* the next message number expected */
        unsigned bad, joins;
        size_t len;
        char buf[MEMBER_BUF];
} Member;

/* What a reading member makes of a line: messages must come in order; notices ('*') are skipped. */
static void member_line(Member *m, const char *line, size_t n) {
        if (n > 0 && line[0] == '*') {
                if (n > 8 && memcmp(line + n - 7, " joined", 7) == 0)
                        m->joins++;
                return;
        }
        const char *gt = memchr(line, '>', n);
        if (n < 12 || line[0] != '[' || !gt || (size_t)(gt - line) + 2 >= n) {
                m->bad++;
                return;
        }
        unsigned k = (unsigned)strtoul(gt + 2, NULL, 10);
        if (k == m->next)
                m->next++;
        else
                m->bad++;
}

static void member_read(Member *m) {
        for (;;) {
                ssize_t n = recv(m->fd, m->buf + m->len, sizeof(m->buf) - m->len, MSG_DONTWAIT);
                if (n <= 0) {
                        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                                m->closed = true;
                                m->err = n == 0 ? 0 : errno;
                        }
                        return;
                }
                m->len += (size_t)n;
                char *p = m->buf, *end = m->buf + m->len, *nl;
                while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
                        member_line(m, p, (size_t)(nl - p));
                        p = nl + 1;
                }
                m->len = (size_t)(end - p);
                memmove(m->buf, p, m->len);
                if (m->len == sizeof(m->buf)) {
                        m->bad++;
                        m->len = 0;
                }
        }
}

static void test_memory_bounds(void) {
        if (!own_netns) {
                printf("\n    SKIPPED: needs the test's own network namespace (root), so that the kernel's socket buffers are small");
                return;
        }
        const char *chat = unique_name("room"), *echo = unique_name("sink");
        raise_nofile(8192);
        Daemon *d = daemon_start(tstr("[server %s]\ntype = chat\nlisten = 127.0.0.1:0\nprotocol = line\nmax_queue = %d\nmax_rate = 0\n"
                                      "history = 0\nmax_clients = %d\n\n"
                                      "[server %s]\ntype = echo\nlisten = 127.0.0.2:0\nbuffer_size = %d\n",
                                      chat, MAX_QUEUE, N_MEMBERS + 10, echo, BUFFER_SIZE),
                                 NULL);
        Addr ca, ea;
        REQUIRE(daemon_listener(d, "127.0.0.1", &ca) && daemon_listener(d, "127.0.0.2", &ea), "listeners");

        static Member mb[N_MEMBERS];
        memset(mb, 0, sizeof(mb));
        /* member 0 joins first and sends; odd members sleep */
        for (int i = 0; i < N_MEMBERS; i++) {
                mb[i].fd = tcp_connect(&ca, NULL);
                REQUIRE(mb[i].fd >= 0, "member %d: connect: %s", i, strerror(-mb[i].fd));
                mb[i].sleeper = i % 2 == 1;
                const char *nick = tstr("/nick m%04d\n", i);
                REQUIRE_INT(send_all(mb[i].fd, nick, strlen(nick), IO_TIMEOUT_MS), 0);
                if (i == 0)
                        while (mb[0].joins < 1 && !mb[0].closed) {
                                struct pollfd p = { .fd = mb[0].fd, .events = POLLIN };
                                REQUIRE(poll(&p, 1, IO_TIMEOUT_MS) > 0, "member 0 did not join");
                                member_read(&mb[0]);
                        }
        }
        /* everybody in: member 0 has seen every join */
        static struct pollfd p[N_MEMBERS];
        uint64_t deadline = now_ms() + 30000;
        while (mb[0].joins < N_MEMBERS && now_ms() < deadline) {
                for (int i = 0; i < N_MEMBERS; i++)
                        p[i] = (struct pollfd){ .fd = mb[i].sleeper || mb[i].closed ? -1 : mb[i].fd, .events = POLLIN };
                if (poll(p, N_MEMBERS, 100) > 0)
                        for (int i = 0; i < N_MEMBERS; i++)
                                if (p[i].revents)
                                        member_read(&mb[i]);
        }
        REQUIRE(mb[0].joins == N_MEMBERS, "member 0 saw %u joins of %d", mb[0].joins, N_MEMBERS);

        int sinks[N_ECHO];
        for (int i = 0; i < N_ECHO; i++) {
                sinks[i] = tcp_connect(&ea, NULL);
                REQUIRE(sinks[i] >= 0, "echo client %d: %s", i, strerror(-sinks[i]));
        }
        long rss0 = daemon_vmrss_kb(d), rss_peak = rss0;

        /* the flood: member 0 says N_MESSAGES lines; the echo clients push and never read */
        char msg[MSG_SIZE + 1];
        size_t msg_off = 0;
        unsigned sent = 0;
        static char junk[65536];
        memset(junk, 'j', sizeof(junk));
        uint64_t sink_bytes = 0, start = now_ms(), next_sample = start;
        deadline = start + 45000;
        bool done = false;
        while (!done && now_ms() < deadline) {
                unsigned slowest = N_MESSAGES;
                for (int i = 0; i < N_MEMBERS; i++)
                        if (!mb[i].sleeper && !mb[i].closed && mb[i].next < slowest)
                                slowest = mb[i].next;
                if (sent < N_MESSAGES && sent < slowest + WINDOW) {
                        if (msg_off == 0) {
                                int n = snprintf(msg, sizeof(msg), "%05u ", sent);
                                memset(msg + n, 'a' + (char)(sent % 26), MSG_SIZE - 1 - (size_t)n);
                                msg[MSG_SIZE - 1] = '\n';
                        }
                        ssize_t k = send(mb[0].fd, msg + msg_off, MSG_SIZE - msg_off, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (k > 0 && (msg_off += (size_t)k) == MSG_SIZE) {
                                msg_off = 0;
                                sent++;
                        }
                }
                for (int i = 0; i < N_ECHO; i++) {
                        ssize_t k = send(sinks[i], junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (k > 0)
                                sink_bytes += (uint64_t)k;
                }
                if (now_ms() >= next_sample) {
                        long rss = daemon_vmrss_kb(d);
                        rss_peak = rss > rss_peak ? rss : rss_peak;
                        next_sample = now_ms() + 50;
                }
                for (int i = 0; i < N_MEMBERS; i++)
                        p[i] = (struct pollfd){ .fd = mb[i].sleeper || mb[i].closed ? -1 : mb[i].fd, .events = POLLIN };
                if (poll(p, N_MEMBERS, 5) > 0)
                        for (int i = 0; i < N_MEMBERS; i++)
                                if (p[i].revents)
                                        member_read(&mb[i]);
                done = sent == N_MESSAGES && slowest == N_MESSAGES;
        }
        uint64_t took = now_ms() - start;
        long rss_end = daemon_vmrss_kb(d);
        rss_peak = rss_end > rss_peak ? rss_end : rss_peak;

        int readers_short = 0, readers_bad = 0, readers_closed = 0;
        const Member *f_short = NULL, *f_bad = NULL;
        for (int i = 0; i < N_MEMBERS; i++) {
                if (mb[i].sleeper)
                        continue;
                if (mb[i].next != N_MESSAGES && !readers_short++)
                        f_short = &mb[i];
                if (mb[i].bad && !readers_bad++)
                        f_bad = &mb[i];
                readers_closed += mb[i].closed;
        }
        long bound_kb = (long)(((long long)N_MEMBERS * MAX_QUEUE + (long long)N_ECHO * BUFFER_SIZE + JOURNAL_QUEUE) / 1024);
        printf("\n    %d members (%d asleep), %u messages of %d bytes in %llu ms; %d echo clients pushed %llu bytes and read none; "
               "daemon RSS %ld KiB before, %ld KiB at most, %ld KiB after; configured bounds: %ld KiB\n",
               N_MEMBERS, N_MEMBERS / 2, sent, MSG_SIZE, (unsigned long long)took, N_ECHO, (unsigned long long)sink_bytes, rss0, rss_peak,
               rss_end, bound_kb);
        EXPECT_INT(sent, N_MESSAGES);
        EXPECT(readers_short == 0, "%d reading members did not get all %d messages; the first: %u", readers_short, N_MESSAGES,
               f_short ? f_short->next : 0);
        EXPECT(readers_bad == 0, "%d reading members got messages out of order or mangled; the first: %u bad", readers_bad,
               f_bad ? f_bad->bad : 0);
        EXPECT(readers_closed == 0, "%d reading members lost their connection", readers_closed);
        if (UNDER_ASAN)
                printf("    (AddressSanitizer build: its shadow memory and quarantine are in the RSS, which is therefore not checked)\n");
        else
                EXPECT(rss_peak - rss0 < bound_kb, "the daemon's RSS grew by %ld KiB, more than the configured bounds (%ld KiB)",
                       rss_peak - rss0, bound_kb);

        /* every sleeper was dropped: a chat-drop entry each, and their connections end with a reset */
        json_object *show = CTL_JSON(d, "show", chat);
        EXPECT(jnum(show, "drops") == N_MEMBERS / 2, "drops: %lld, expected %d", jnum(show, "drops"), N_MEMBERS / 2);
        json_object *members = jpath(show, "members");
        EXPECT(members && json_object_array_length(members) == N_MEMBERS / 2, "%zu members left, expected %d",
               members ? json_object_array_length(members) : 0, N_MEMBERS / 2);
        int sleepers_reset = 0;
        for (int i = 1; i < N_MEMBERS; i += 2) {
                char buf[65536];
                int end = 0;
                for (uint64_t until = now_ms() + IO_TIMEOUT_MS;;) {
                        ssize_t n = recv(mb[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (n > 0)
                                continue;
                        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                                end = n == 0 ? 1 : errno == ECONNRESET ? 2 : 3;
                                break;
                        }
                        struct pollfd q = { .fd = mb[i].fd, .events = POLLIN };
                        if (now_ms() >= until || poll(&q, 1, 100) < 0)
                                break;
                }
                sleepers_reset += end == 2;
        }
        EXPECT(sleepers_reset == N_MEMBERS / 2, "%d of %d sleepers were reset", sleepers_reset, N_MEMBERS / 2);
        if (journal_available("chat drops")) {
                JList *l =
                        journal_wait(N_MEMBERS / 2, JOURNAL_TIMEOUT_MS * 3, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=chat-drop", NULL);
                EXPECT(l->n == N_MEMBERS / 2, "%zu chat-drop entries, expected %d", l->n, N_MEMBERS / 2);
                int odd = 0;
                for (size_t i = 0; i < l->n; i++) {
                        const char *u = jget(l->e[i], "TCPEDU_CHAT_USER");
                        odd += u && strlen(u) == 5 && (u[4] - '0') % 2 == 1;
                }
                EXPECT(odd == (int)l->n, "%d of %zu drops were sleepers", odd, l->n);
        }
        for (int i = 0; i < N_ECHO; i++)
                sock_close(sinks[i]);
        for (int i = 0; i < N_MEMBERS; i++)
                sock_close(mb[i].fd);
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        /* before anything is started: every daemon of this program lives in the namespace too */
        own_netns = geteuid() == 0 && private_netns(KERNEL_BUFFER_MAX);
        if (!own_netns)
                printf("not root or no namespace: the memory test is skipped, the others run in the host's network namespace\n");
        /* thousands of entries in a few seconds: a journald of its own, without a rate limit */
        if (!private_journald())
                printf("no journald of its own: the shared one is used\n");
        static CU_TestInfo tests[] = {
                { "300 connections trickle a line: cut at line_timeout, the others served", test_slow_partial },
                { "RLIMIT_NOFILE = 64, 200 clients: no spin, refusals counted, fds come back", test_fd_exhaustion },
                { "1,000 chat members, half asleep, and echo clients that never read: bounded", test_memory_bounds },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("faults: load", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
