/* SPDX-License-Identifier: MIT */
/* Soak: a mixed workload against one tcpedud for SOAK_MINUTES (default 30), meant for the ASan
 * build (tests/soak/run.sh MINUTES). All at once, in one poll loop:
 * - echo at load: 32 connections keep up to 16 KiB in flight each, 32 MiB/s in all, every byte checked;
 * - connection churn: a connection opened, echoed and closed every 50 ms;
 * - a chat room: 16 members read a numbered line every 20 ms, members join and leave every 500 ms;
 * - a client session every 5 s (tcpeductl session open, send, recv, close);
 * - tcpeductl status every 2 s, and a reload (SIGHUP, a limit changed) every 10 s.
 * Pass: every byte echoed right, every churned connection and session worked, every chat line
 * delivered in order to every member that reads (or its member dropped with a logged reason), every
 * status answered and every reload applied; after the warm-up (a fifth of the run, at least a
 * minute) the daemon's RSS and fd count stay within 5% of their first value; every log entry the
 * daemon made was written or counted as dropped, and every entry written is in the journal; the
 * daemon exits with status 0 and no sanitizer report. Runs with a journald of its own (faults.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"

#define N_ECHO 32
#define IN_FLIGHT (16 * 1024)
#define ECHO_RATE (32u << 20) /* bytes a second */
#define N_READERS 16
#define MAX_FDS (N_ECHO + N_READERS + 8)

static uint8_t pattern_byte(unsigned conn, uint64_t off) {
        return (uint8_t)((off * 31 + conn * 7 + (off >> 8)) & 0xff);
}

typedef struct Echo {
        int fd;
        uint64_t sent, recvd;
        unsigned bad;
} Echo;

typedef struct Reader {
        int fd;
        unsigned next, bad;
        bool closed;
        size_t len;
        char buf[4096];
} Reader;

typedef struct Churn {
        int fd;
        int state; /* 0 idle, 1 connecting, 2 waiting for the echo */
} Churn;

typedef struct Joiner {
        int fd;
        uint64_t leave_at;
} Joiner;

/* The chat readers only listen: without idle_timeout = 0 the server would (rightly) close them as
 * idle after its default 300 s. */
static const char *config_text(const char *echo, const char *chat, int variant) {
        return tstr("[daemon]\nmax_sessions = 8\n\n[server %s]\ntype = echo\nlisten = 127.0.0.1:0\nidle_timeout = %d\n\n"
                    "[server %s]\ntype = chat\nlisten = 127.0.0.2:0\nprotocol = line\nmax_rate = 0\nhistory = 5\nmax_queue = 256K\n"
                    "idle_timeout = 0\n",
                    echo, 300 + variant % 2, chat);
}

static void reader_read(Reader *r) {
        for (;;) {
                ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, MSG_DONTWAIT);
                if (n <= 0) {
                        if (n == 0 || (errno != EAGAIN && errno != EINTR))
                                r->closed = true;
                        return;
                }
                r->len += (size_t)n;
                char *p = r->buf, *end = r->buf + r->len, *nl;
                while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
                        *nl = 0;
                        const char *m = strstr(p, "] <snd> ");
                        if (p[0] == '[' && m) {
                                unsigned k = (unsigned)strtoul(m + 8, NULL, 10);
                                if (k == r->next)
                                        r->next++;
                                else if (k > r->next) {
                                        r->bad++;
                                        r->next = k + 1;
                                }
                        }
                        p = nl + 1;
                }
                r->len = (size_t)(end - p);
                memmove(r->buf, p, r->len);
                if (r->len == sizeof(r->buf))
                        r->len = 0;
        }
}

static int join(const Addr *a, const char *nick) {
        int fd = tcp_connect(a, NULL);
        if (fd < 0)
                return fd;
        const char *s = tstr("/nick %s\n", nick);
        if (send_all(fd, s, strlen(s), IO_TIMEOUT_MS) < 0) {
                sock_close(fd);
                return -EIO;
        }
        return fd;
}

static bool session_round(Daemon *d, const Addr *echo) {
        char target[ADDR_STR_MAX];
        addr_format(echo, target, sizeof(target));
        RunResult r;
        if (ctl(d, &r, "session", "open", target, NULL) < 0 || r.exit_code != 0)
                return false;
        const char *id = tstr("%.*s", (int)strcspn(r.out, "\n"), r.out);
        bool ok = ctl(d, &r, "session", "send", id, "soak", NULL) == 0 && r.exit_code == 0;
        ok = ok && ctl(d, &r, "session", "recv", id, "--timeout", "5", NULL) == 0 && r.exit_code == 0 && strcmp(r.out, "soak\n") == 0;
        ok = ctl(d, &r, "session", "close", id, NULL) == 0 && r.exit_code == 0 && ok;
        return ok;
}

static void test_soak(void) {
        const char *env = getenv("SOAK_MINUTES");
        double minutes = env ? atof(env) : 30;
        uint64_t duration = (uint64_t)(minutes * 60000), warmup = duration / 5 > 60000 ? duration / 5 : 60000;
        if (warmup > duration / 2)
                warmup = duration / 2;
        raise_nofile(4096);
        const char *en = unique_name("soakecho"), *cn = unique_name("soakchat");
        Daemon *d = daemon_start(config_text(en, cn, 0), &(DaemonOptions){ .log_target = "journal" });
        Addr ea, ca;
        REQUIRE(daemon_listener(d, "127.0.0.1", &ea) && daemon_listener(d, "127.0.0.2", &ca), "listeners");

        static Echo echo[N_ECHO];
        static Reader rd[N_READERS];
        static Joiner joiners[64];
        Churn churn = { .fd = -1 };
        for (int i = 0; i < N_ECHO; i++) {
                echo[i] = (Echo){ .fd = tcp_connect(&ea, NULL) };
                REQUIRE(echo[i].fd >= 0, "echo connection");
        }
        int snd = join(&ca, "snd");
        REQUIRE(snd >= 0, "sender");
        for (int i = 0; i < N_READERS; i++) {
                rd[i] = (Reader){ .fd = join(&ca, tstr("r%02d", i)) };
                REQUIRE(rd[i].fd >= 0, "reader");
        }
        for (size_t i = 0; i < 64; i++)
                joiners[i].fd = -1;

        unsigned said = 0, churned = 0, churn_fail = 0, sessions = 0, session_fail = 0, statuses = 0, status_fail = 0, reloads = 0;
        unsigned joins = 0, samples = 0;
        long rss_first = 0, rss_min = 0, rss_max = 0;
        int fds_first = 0, fds_min = 0, fds_max = 0;
        uint64_t start = now_ms(), next_say = start, next_churn = start, next_join = start, next_session = start + 1000;
        uint64_t next_status = start + 2000, next_reload = start + 10000, next_sample = start + warmup, next_report = start + 60000;
        static uint8_t out[IN_FLIGHT], in[65536];
        for (;;) {
                uint64_t now = now_ms();
                if (now - start >= duration)
                        break;
                if (now >= next_say) {
                        const char *l = tstr("%u\n", said);
                        if (send_all(snd, l, strlen(l), IO_TIMEOUT_MS) == 0)
                                said++;
                        next_say += 20;
                }
                if (now >= next_join) {
                        size_t k = joins % 64;
                        if (joiners[k].fd >= 0)
                                sock_close(joiners[k].fd);
                        joiners[k] = (Joiner){ .fd = join(&ca, tstr("j%u", joins)), .leave_at = now + 1000 };
                        joins++;
                        next_join += 500;
                }
                for (size_t k = 0; k < 64; k++)
                        if (joiners[k].fd >= 0 && now >= joiners[k].leave_at) {
                                (void)send(joiners[k].fd, "/quit\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
                                joiners[k].leave_at = UINT64_MAX;
                        }
                if (now >= next_churn && churn.state == 0) {
                        churn.fd = tcp_connect_start(&ea);
                        churn.state = churn.fd >= 0 ? 1 : 0;
                        churn_fail += churn.fd < 0;
                        next_churn = now + 50;
                }
                if (now >= next_session) {
                        sessions++;
                        session_fail += !session_round(d, &ea);
                        next_session = now + 5000;
                }
                if (now >= next_status) {
                        statuses++;
                        status_fail += CTL_JSON(d, "status") == NULL;
                        next_status = now + 2000;
                }
                if (now >= next_reload) {
                        reloads++;
                        REQUIRE_INT(write_file(d->conf_path, config_text(en, cn, (int)reloads)), 0);
                        REQUIRE_INT(daemon_kill(d, SIGHUP), 0);
                        next_reload = now + 10000;
                }
                if (now >= next_sample) {
                        long rss = daemon_vmrss_kb(d);
                        int fds = daemon_fd_count(d);
                        if (samples++ == 0)
                                rss_first = rss_min = rss_max = rss, fds_first = fds_min = fds_max = fds;
                        rss_min = rss < rss_min ? rss : rss_min;
                        rss_max = rss > rss_max ? rss : rss_max;
                        fds_min = fds < fds_min ? fds : fds_min;
                        fds_max = fds > fds_max ? fds : fds_max;
                        next_sample = now + 10000;
                }
                if (now >= next_report) {
                        printf("\n    %llu s: %u chat lines, %u churned connections, %u sessions, %u reloads, RSS %ld KiB, %d fds",
                               (unsigned long long)((now - start) / 1000), said, churned, sessions, reloads, daemon_vmrss_kb(d),
                               daemon_fd_count(d));
                        fflush(stdout);
                        next_report = now + 60000;
                }

                struct pollfd p[MAX_FDS + 64];
                int n = 0;
                /* a steady load, not a benchmark: ECHO_RATE bytes a second over all echo connections */
                uint64_t echo_sent = 0;
                for (int i = 0; i < N_ECHO; i++)
                        echo_sent += echo[i].sent;
                bool may_send = echo_sent < (now - start) * (ECHO_RATE / 1000);
                for (int i = 0; i < N_ECHO; i++)
                        p[n++] = (struct pollfd){ .fd = echo[i].fd,
                                                  .events = POLLIN | (may_send && echo[i].sent - echo[i].recvd < IN_FLIGHT ? POLLOUT : 0) };
                for (int i = 0; i < N_READERS; i++)
                        p[n++] = (struct pollfd){ .fd = rd[i].closed ? -1 : rd[i].fd, .events = POLLIN };
                p[n++] = (struct pollfd){ .fd = churn.state ? churn.fd : -1, .events = churn.state == 1 ? POLLOUT : POLLIN };
                p[n++] = (struct pollfd){ .fd = snd, .events = POLLIN };
                for (size_t k = 0; k < 64; k++)
                        p[n++] = (struct pollfd){ .fd = joiners[k].fd, .events = POLLIN };
                if (poll(p, (nfds_t)n, 5) <= 0)
                        continue;
                for (int i = 0; i < N_ECHO; i++) {
                        Echo *e = &echo[i];
                        if (p[i].revents & POLLOUT) {
                                size_t room = IN_FLIGHT - (size_t)(e->sent - e->recvd);
                                for (size_t k = 0; k < room; k++)
                                        out[k] = pattern_byte((unsigned)i, e->sent + k);
                                ssize_t k = send(e->fd, out, room, MSG_DONTWAIT | MSG_NOSIGNAL);
                                if (k > 0)
                                        e->sent += (uint64_t)k;
                        }
                        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                                ssize_t k = recv(e->fd, in, sizeof(in), MSG_DONTWAIT);
                                for (ssize_t j = 0; j < k; j++)
                                        e->bad += in[j] != pattern_byte((unsigned)i, e->recvd + (uint64_t)j);
                                if (k > 0)
                                        e->recvd += (uint64_t)k;
                                else if (k == 0 || errno != EAGAIN)
                                        e->bad++;
                        }
                }
                for (int i = 0; i < N_READERS; i++)
                        if (p[N_ECHO + i].revents)
                                reader_read(&rd[i]);
                struct pollfd *cp = &p[N_ECHO + N_READERS];
                if (cp->revents && churn.state == 1) {
                        int err = 0;
                        socklen_t len = sizeof(err);
                        (void)getsockopt(churn.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                        if (err || send(churn.fd, "c", 1, MSG_NOSIGNAL) != 1) {
                                churn_fail++;
                                sock_close(churn.fd);
                                churn.state = 0;
                        } else
                                churn.state = 2;
                } else if (cp->revents && churn.state == 2) {
                        char c;
                        ssize_t k = recv(churn.fd, &c, 1, MSG_DONTWAIT);
                        if (k >= 0 || errno != EAGAIN) {
                                if (k == 1 && c == 'c')
                                        churned++;
                                else
                                        churn_fail++;
                                /* half of them close first, half end with a reset */
                                if (churned % 2)
                                        churn_fail += close_graceful(churn.fd) != 0;
                                else {
                                        struct linger lg = { 1, 0 };
                                        (void)setsockopt(churn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                                        sock_close(churn.fd);
                                }
                                churn.state = 0;
                        }
                }
                char junk[8192];
                if (p[N_ECHO + N_READERS + 1].revents)
                        while (recv(snd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
                                ;
                for (size_t k = 0; k < 64; k++)
                        if (p[N_ECHO + N_READERS + 2 + k].revents) {
                                ssize_t m;
                                while ((m = recv(joiners[k].fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
                                        ;
                                if (m == 0 || (m < 0 && errno != EAGAIN)) {
                                        sock_close(joiners[k].fd);
                                        joiners[k].fd = -1;
                                }
                        }
        }

        /* the readers catch up with the last line */
        for (uint64_t until = now_ms() + 10000; now_ms() < until;) {
                bool behind = false;
                for (int i = 0; i < N_READERS; i++) {
                        reader_read(&rd[i]);
                        behind = behind || (!rd[i].closed && rd[i].next < said);
                }
                if (!behind)
                        break;
                (void)poll(NULL, 0, 20);
        }
        uint64_t echo_bytes = 0;
        unsigned echo_bad = 0;
        for (int i = 0; i < N_ECHO; i++) {
                echo_bytes += echo[i].recvd;
                echo_bad += echo[i].bad;
        }
        int readers_short = 0, readers_bad = 0, readers_closed = 0;
        for (int i = 0; i < N_READERS; i++) {
                readers_short += rd[i].next != said;
                readers_bad += rd[i].bad != 0;
                readers_closed += rd[i].closed;
        }
        json_object *st = CTL_JSON(d, "stats"), *status = CTL_JSON(d, "status");
        printf("\n    %.1f minutes: %llu bytes echoed, %u churned connections, %u chat lines to %d readers, %u joins, %u sessions, %u "
               "status calls, %u reloads; after the warm-up RSS %ld-%ld KiB, fds %d-%d (%u samples); log: %lld made, %lld written, %lld "
               "dropped\n",
               minutes, (unsigned long long)echo_bytes, churned, said, N_READERS, joins, sessions, statuses, reloads, rss_min, rss_max,
               fds_min, fds_max, samples, jnum(status, "log.submitted"), jnum(status, "log.written"), jnum(status, "log.dropped"));
        EXPECT_INT(echo_bad, 0);
        EXPECT_INT(churn_fail, 0);
        EXPECT_INT(session_fail, 0);
        EXPECT_INT(status_fail, 0);
        EXPECT(readers_closed == 0 && readers_short == 0 && readers_bad == 0,
               "chat readers: %d lost their connection, %d missed lines, %d got them out of order", readers_closed, readers_short,
               readers_bad);
        EXPECT_INT(jnum(st, "reloads"), reloads);
        EXPECT_INT(jnum(st, "reload_failures"), 0);
        EXPECT(samples >= 2 && rss_max - rss_min <= rss_first / 20, "RSS after the warm-up: %ld to %ld KiB, first %ld", rss_min, rss_max,
               rss_first);
        EXPECT(samples >= 2 && fds_max - fds_min <= fds_first / 20 + 1, "fds after the warm-up: %d to %d, first %d", fds_min, fds_max,
               fds_first);
        long long made = jnum(status, "log.submitted"), written = jnum(status, "log.written"), dropped = jnum(status, "log.dropped"),
                  queued = jnum(status, "log.queued");
        EXPECT(made == written + dropped + queued, "log: %lld made, %lld written, %lld dropped, %lld queued", made, written, dropped,
               queued);

        for (int i = 0; i < N_ECHO; i++)
                sock_close(echo[i].fd);
        for (int i = 0; i < N_READERS; i++)
                sock_close(rd[i].fd);
        sock_close(snd);
        EXPECT_INT(daemon_stop(d), 0);
        char *err = read_file_text(d->stderr_path);
        EXPECT(!err || !strstr(err, "Sanitizer"), "a sanitizer report:\n%s", err);
        if (journal_available("soak")) {
                JList *all = journal_wait((size_t)written, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), NULL);
                EXPECT(all->n >= (size_t)written, "%zu entries in the journal, %lld were written before the stop", all->n, written);
                JList *drops = journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=chat-drop", NULL);
                EXPECT(drops->n == 0, "%zu chat members dropped", drops->n);
        }
}

int main(void) {
        if (!private_journald())
                printf("no journald of its own: the shared one is used (its rate limit may drop entries)\n");
        static CU_TestInfo tests[] = {
                { "mixed workload", test_soak },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("soak", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
