/* SPDX-License-Identifier: MIT */
/* The daemon's life: reload (a good one adds a server, a broken one changes nothing), SIGTERM with
 * a connection open, and the command line (--check-config, --dump-config, --help, errors). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

static char *server_section(const char *name, const char *listen, const char *extra) {
        return tstr("[server %s]\ntype = echo\nlisten = %s\n%s", name, listen, extra ? extra : "");
}

/* ---- reload ---- */

static void test_reload_add_server(void) {
        char *a_name = unique_name("rlA"), *b_name = unique_name("rlB");
        char *one = server_section(a_name, "127.0.0.1:0", NULL);
        Daemon *d = daemon_start(one, NULL);
        Addr a, a_after, b, all[8];

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener on 127.0.0.1");
        EXPECT_INT(daemon_listeners(d, all, 8), 1);
        int c1 = tcp_connect(&a, NULL);
        REQUIRE(c1 >= 0, "connect: %s", strerror(-c1));
        expect_echo(c1, "the connection before the reload");

        int r = daemon_reload(d, tstr("%s\n%s", one, server_section(b_name, "127.0.0.2:0", NULL)));
        REQUIRE(r == 0, "reload: %s", strerror(-r));
        REQUIRE(daemon_listener(d, "127.0.0.2", &b), "no listener on 127.0.0.2 after the reload");
        EXPECT(addr_port(&b) != 0, "port 0");
        REQUIRE(daemon_listener(d, "127.0.0.1", &a_after), "the listener on 127.0.0.1 is gone after the reload");
        EXPECT(addr_port(&a_after) == addr_port(&a), "the listener of %s moved from port %u to %u", a_name, addr_port(&a),
               addr_port(&a_after));
        EXPECT_INT(daemon_listeners(d, all, 8), 2);

        int c2 = tcp_connect(&b, NULL);
        REQUIRE(c2 >= 0, "connect to the new server: %s", strerror(-c2));
        expect_echo(c2, "a connection to the added server");
        expect_echo(c1, "the connection opened before the reload");
        int c3 = tcp_connect(&a_after, NULL);
        REQUIRE(c3 >= 0, "connect to the old server: %s", strerror(-c3));
        expect_echo(c3, "a new connection to the old server");

        if (journal_available("reload")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_RELOAD, NULL);
                EXPECT_INT(l->n, 1);
                if (l->n)
                        EXPECT_STR(jget(l->e[0], "MESSAGE"), tstr("Configuration reloaded from %s: added %s", d->conf_path, b_name));
        }
        EXPECT_INT(close_graceful(c1), 0);
        EXPECT_INT(close_graceful(c2), 0);
        EXPECT_INT(close_graceful(c3), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_reload_broken(void) {
        char *name = unique_name("rlbad");
        /* Line numbers matter: "bogus = 1" goes on line 7. */
        char *good = tstr("[daemon]\n" /* 1 */
                          "log_level = info\n" /* 2 */
                          "\n" /* 3 */
                          "[server %s]\n" /* 4 */
                          "type = echo\n" /* 5 */
                          "listen = 127.0.0.1:0\n", /* 6 */
                          name);
        Daemon *d = daemon_start(good, NULL);
        Addr a, after;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int c1 = tcp_connect(&a, NULL);
        REQUIRE(c1 >= 0, "connect: %s", strerror(-c1));
        expect_echo(c1, "the connection before the reload");

        /* A rejected reload still ends with READY=1. */
        int r = daemon_reload(d, tstr("%sbogus = 1\nmax_clients = 5\n", good));
        REQUIRE(r == 0, "broken reload: %s", r == -ECHILD ? "the daemon exited" : strerror(-r));
        REQUIRE(daemon_alive(d), "the daemon exited after a broken reload (code %d)", d->exit_code);
        REQUIRE(daemon_listener(d, "127.0.0.1", &after), "the listener is gone after a broken reload");
        EXPECT_INT(addr_port(&after), addr_port(&a));
        expect_echo(c1, "the connection after the broken reload");
        int c2 = tcp_connect(&a, NULL);
        REQUIRE(c2 >= 0, "connect after a broken reload: %s", strerror(-c2));
        expect_echo(c2, "a new connection after the broken reload");

        bool journal = journal_available("broken reload");
        if (journal) {
                const char *want = tstr("%s:7: unknown key 'bogus'", d->conf_path);
                JList *l = journal_wait(2, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_RELOAD_FAILED, NULL);
                size_t found = 0;
                for (size_t i = 0; i < l->n; i++) {
                        const char *m = jget(l->e[i], "MESSAGE");
                        if (m && strncmp(m, want, strlen(want)) == 0) {
                                found++;
                                EXPECT_STR(m, tstr("%s in [server]", want));
                                EXPECT_STR(jget(l->e[i], "SYSLOG_IDENTIFIER"), "tcpedud");
                                EXPECT_STR(jget(l->e[i], "PRIORITY"), "3");
                        }
                }
                EXPECT(found == 1, "%zu entries '%s ...' with MESSAGE_ID %s", found, want, MID_RELOAD_FAILED);
                if (found != 1)
                        journal_print(l, "reload-failed entries");
                EXPECT_INT(journal_query(tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_RELOAD, NULL)->n, 0);
        }

        /* The next good reload is applied. */
        r = daemon_reload(d, tstr("%smax_clients = 5\n", good));
        REQUIRE(r == 0, "good reload after a broken one: %s", strerror(-r));
        REQUIRE(daemon_listener(d, "127.0.0.1", &after), "the listener is gone after the good reload");
        EXPECT_INT(addr_port(&after), addr_port(&a));
        if (journal) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_RELOAD, NULL);
                EXPECT_INT(l->n, 1);
                if (l->n)
                        EXPECT_STR(jget(l->e[0], "MESSAGE"), tstr("Configuration reloaded from %s: changed %s", d->conf_path, name));
        }
        expect_echo(c1, "the first connection after the good reload");
        expect_echo(c2, "the second connection after the good reload");
        EXPECT_INT(close_graceful(c1), 0);
        EXPECT_INT(close_graceful(c2), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- SIGTERM ---- */

static void test_sigterm_open_connection(void) {
        char *name = unique_name("term");
        Daemon *d = daemon_start(tstr("[daemon]\nlog_transitions = all\n\n%s", server_section(name, "127.0.0.1:0", "idle_timeout = 0\n")),
                                 NULL);
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, sizeof(local));
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));
        /* Accepted for sure once it echoes; then it stays idle. */
        REQUIRE_INT(echo_check(fd, "hello", 5, IO_TIMEOUT_MS), 0);

        uint64_t t0 = now_ms();
        REQUIRE_INT(daemon_kill(d, SIGTERM), 0);
        EXPECT_INT(daemon_wait_notify(d, "STOPPING=1", IO_TIMEOUT_MS), 0);
        int r = wait_closed(fd, IO_TIMEOUT_MS);
        EXPECT(r == 0, "after SIGTERM the client got %s, expected EOF",
               r == -ECONNRESET ? "a reset (ECONNRESET)"
               : r == -EPROTO   ? "data"
                                : strerror(-r));
        sock_close(fd);
        int code = daemon_wait_exit(d, STOP_TIMEOUT_MS);
        EXPECT(code == 0, "exit code %d after SIGTERM (-%d: no exit within %d ms)", code, ETIMEDOUT, STOP_TIMEOUT_MS);
        if (code != 0)
                daemon_print_stderr(d);
        printf("(exit %llu ms after SIGTERM) ", (unsigned long long)(now_ms() - t0));

        if (journal_available("SIGTERM")) {
                ConnRef ref = { .d = d, .server = name, .peer = peer, .local = local };
                check_daemon_first_path(&ref, "daemon stopping", 5);
                /* The daemon exits with the connection in TIME_WAIT: its last record says it stopped
                 * watching, and the kernel still had the 4-tuple. */
                JList *all = entries_final(&ref);
                EXPECT(all->n == 8, "%zu entries for the connection, expected 8 (connect, 5 transitions, disconnect, unwatched)", all->n);
                if (all->n != 8)
                        journal_print(all, "entries of the connection");
                JList *u = jfilter(all, "TCPEDU_EVENT", "unwatched");
                EXPECT_INT(u->n, 1);
                if (all->n > 0 && u->n == 1) {
                        EXPECT(all->e[all->n - 1] == u->e[0], "the unwatched entry is not the connection's last");
                        check_unwatched(&ref, u->e[0], "TIME_WAIT", "TIME_WAIT",
                                        "daemon stopped before the kernel released the connection");
                }
        }
}

/* Many idle connections, each with a client that answers the daemon's FIN at once (its own thread
 * blocked in poll): the daemon must still log its active close for every one of them. */
#define N_FAST 32

typedef struct FastClient {
        int fd;
        pthread_t thread;
        int result; /* wait_closed() */
} FastClient;

static void *fast_client_main(void *userdata) {
        FastClient *c = userdata;
        c->result = wait_closed(c->fd, IO_TIMEOUT_MS);
        if (c->result == 0)
                (void)shutdown(c->fd, SHUT_WR); /* our FIN right away; the fd is closed later */
        return NULL;
}

static void test_sigterm_fast_clients(void) {
        char *name = unique_name("termN");
        Daemon *d = daemon_start(tstr("[daemon]\nlog_transitions = all\n\n%s", server_section(name, "127.0.0.1:0", "idle_timeout = 0\n")),
                                 NULL);
        static FastClient clients[N_FAST];
        char peers[N_FAST][ADDR_STR_MAX], local[ADDR_STR_MAX];
        int started = 0;
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, local, sizeof(local));
        for (int i = 0; i < N_FAST; i++) {
                clients[i].fd = tcp_connect(&a, NULL);
                REQUIRE(clients[i].fd >= 0, "connect: %s", strerror(-clients[i].fd));
                sock_local(clients[i].fd, peers[i], sizeof(peers[i]));
                REQUIRE_INT(echo_check(clients[i].fd, "hello", 5, IO_TIMEOUT_MS), 0);
        }
        for (; started < N_FAST; started++)
                if (pthread_create(&clients[started].thread, NULL, fast_client_main, &clients[started]) != 0)
                        break;
        EXPECT_INT(started, N_FAST);
        EXPECT_INT(daemon_kill(d, SIGTERM), 0);
        for (int i = 0; i < started; i++) {
                pthread_join(clients[i].thread, NULL);
                EXPECT(clients[i].result == 0, "client %d got %s, expected EOF", i, strerror(-clients[i].result));
        }
        for (int i = 0; i < N_FAST; i++)
                sock_close(clients[i].fd);
        int code = daemon_wait_exit(d, STOP_TIMEOUT_MS);
        EXPECT(code == 0, "exit code %d after SIGTERM", code);
        if (code != 0)
                daemon_print_stderr(d);
        if (!journal_available("SIGTERM with fast clients"))
                return;
        int bad = 0;
        for (int i = 0; i < N_FAST; i++) {
                ConnRef ref = { .d = d, .server = name, .peer = peers[i], .local = local };
                JList *t = entries_final(&ref);
                JList *tr = jfilter(t, "TCPEDU_EVENT", "transition");
                /* Only the states, to say which connections went wrong; the fields are checked elsewhere. */
                char *path = tstr("%s", "");
                for (size_t k = 0; k < tr->n; k++)
                        path = tstr("%s%s%s", path, k ? " " : tstr("%s ", jget(tr->e[k], "TCPEDU_OLD_STATE")),
                                    jget(tr->e[k], "TCPEDU_NEW_STATE"));
                /* The daemon exits with every connection in TIME_WAIT: the last record of each says so. */
                json_object *last = t->n ? t->e[t->n - 1] : NULL;
                const char *last_event = last ? jget(last, "TCPEDU_EVENT") : NULL;
                if (strcmp(path, "LISTEN SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT") != 0 || !last_event ||
                    strcmp(last_event, "unwatched") != 0) {
                        bad++;
                        EXPECT(false,
                               "connection %d (%s): path %s, last record %s, expected LISTEN SYN_RECEIVED ESTABLISHED FIN_WAIT_1 "
                               "FIN_WAIT_2 TIME_WAIT, then unwatched",
                               i, peers[i], path, last_event ? last_event : "(none)");
                        if (bad == 1)
                                journal_print(t, tstr("entries of connection %d", i));
                } else
                        check_unwatched(&ref, last, "TIME_WAIT", "TIME_WAIT", "daemon stopped before the kernel released the connection");
        }
        EXPECT_INT(bad, 0);
}

/* ---- the command line ---- */

static size_t count_lines(const char *s) {
        size_t n = 0;
        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == 0))
                        return true;
                p = strchr(p, '\n');
                p = p ? p + 1 : NULL;
        }
        return false;
}

/* The line that starts with prefix, up to its end (a copy); NULL if none. */
static const char *line_starting(const char *text, const char *prefix) {
        size_t n = strlen(prefix);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, prefix, n) == 0)
                        return tstr("%.*s", (int)strcspn(p, "\n"), p);
                p = strchr(p, '\n');
                p = p ? p + 1 : NULL;
        }
        return NULL;
}

static void test_cli_check_config(void) {
        const char *dir = harness_tmpdir();
        RunResult rr;

        REQUIRE(dir != NULL, "temp dir");
        char *bad = tstr("%s/bad.conf", dir), *good = tstr("%s/good.conf", dir);
        REQUIRE_INT(write_file(bad, "[daemon]\n" /* 1 */
                                    "log_transitions = sometimes\n" /* 2: invalid value */
                                    "\n" /* 3 */
                                    "[server cli]\n" /* 4 */
                                    "type = echo\n" /* 5 */
                                    "listen = 127.0.0.1:0\n" /* 6 */
                                    "bogus = 1\n" /* 7: unknown key */
                                    "max_clients = 0\n"), /* 8: out of range */
                    0);
        REQUIRE_INT(write_file(good, "[server cli]\ntype = echo\nlisten = 127.0.0.1:0, [::1]:0\n"), 0);

        REQUIRE_INT(run_tcpedud(&rr, "--check-config", "-c", bad, NULL), 0);
        EXPECT_INT(rr.exit_code, 78);
        EXPECT(count_lines(rr.err) == 3, "%zu lines on stderr, expected 3:\n%s", count_lines(rr.err), rr.err);
        const char *lines[] = {
                tstr("%s:2: invalid value 'sometimes' for 'log_transitions'", bad),
                tstr("%s:7: unknown key 'bogus'", bad),
                tstr("%s:8: value '0' for 'max_clients' out of range", bad),
        };
        const char *p = rr.err;
        for (size_t i = 0; i < 3; i++) {
                EXPECT(p && strncmp(p, lines[i], strlen(lines[i])) == 0, "stderr line %zu: expected '%s ...', stderr:\n%s", i + 1, lines[i],
                       rr.err);
                p = p ? strchr(p, '\n') : NULL;
                p = p ? p + 1 : NULL;
        }
        EXPECT_STR(rr.out, "");

        REQUIRE_INT(run_tcpedud(&rr, "-t", "-c", good, NULL), 0);
        EXPECT_INT(rr.exit_code, 0);
        EXPECT_STR(rr.err, "");

        REQUIRE_INT(run_tcpedud(&rr, "--dump-config", "-c", good, NULL), 0);
        EXPECT_INT(rr.exit_code, 0);
        EXPECT(has_line(rr.out, "[server cli]"), "no line '[server cli]' in --dump-config:\n%s", rr.out);
        EXPECT(has_line(rr.out, "type = echo"), "no line 'type = echo' in --dump-config:\n%s", rr.out);
        const char *listen = line_starting(rr.out, "listen = ");
        EXPECT(listen && strstr(listen, "127.0.0.1:0") && strstr(listen, "[::1]:0"),
               "no line 'listen = ...' with 127.0.0.1:0 and [::1]:0 in --dump-config:\n%s", rr.out);
        EXPECT_STR(rr.err, "");
        /* What it prints is a configuration itself. */
        char *dumped = tstr("%s/dumped.conf", dir);
        REQUIRE_INT(write_file(dumped, rr.out), 0);
        REQUIRE_INT(run_tcpedud(&rr, "--check-config", "-c", dumped, NULL), 0);
        EXPECT(rr.exit_code == 0, "--check-config on the output of --dump-config: exit %d\n%s", rr.exit_code, rr.err);
}

static void test_cli_options(void) {
        RunResult rr;

        REQUIRE_INT(run_tcpedud(&rr, "--help", NULL), 0);
        EXPECT_INT(rr.exit_code, 0);
        EXPECT(strncmp(rr.out, "Usage:", 6) == 0, "--help does not start with 'Usage:':\n%s", rr.out);
        EXPECT_STR(rr.err, "");

        REQUIRE_INT(run_tcpedud(&rr, "--bogus", NULL), 0);
        EXPECT_INT(rr.exit_code, 64);
        EXPECT(strstr(rr.err, "--bogus") != NULL, "stderr does not name the option:\n%s", rr.err);
        EXPECT_STR(rr.out, "");
}

static void test_cli_address_in_use(void) {
        const char *dir = harness_tmpdir();
        char *name = unique_name("inuse");
        char addr[ADDR_STR_MAX];
        RunResult rr;
        Addr a;

        REQUIRE(dir != NULL, "temp dir");
        /* Someone else listens there already. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        socklen_t len = sizeof(a);
        REQUIRE(addr_parse_ip("127.0.0.1", 0, &a) == 0 && fd >= 0, "socket");
        if (bind(fd, &a.sa, sizeof(a.in)) < 0 || listen(fd, 1) < 0 || getsockname(fd, &a.sa, &len) < 0) {
                close(fd);
                REQUIRE(false, "cannot listen on 127.0.0.1:0: %m");
        }
        addr_format(&a, addr, sizeof(addr));
        char *conf = tstr("%s/inuse.conf", dir);
        REQUIRE_INT(write_file(conf, server_section(name, addr, NULL)), 0);
        REQUIRE_INT(write_harness_dropin(conf), 0);

        int r = run_tcpedud(&rr, "-c", conf, NULL);
        close(fd);
        REQUIRE(r == 0, "tcpedud did not exit: %s", strerror(-r));
        EXPECT_INT(rr.exit_code, 1);
        EXPECT(strstr(rr.err, "cannot listen on") && strstr(rr.err, "Address already in use"),
               "stderr does not say 'cannot listen on ...: Address already in use':\n%s", rr.err);
        EXPECT(has_line(rr.err, tstr("tcpedud: server '%s': cannot listen on %s: Address already in use", name, addr)), "stderr:\n%s",
               rr.err);
}

static CU_TestInfo reload_tests[] = {
        { "reload adds a server", test_reload_add_server },
        { "broken reload changes nothing", test_reload_broken },
        CU_TEST_INFO_NULL,
};

static CU_TestInfo stop_tests[] = {
        { "SIGTERM with an idle connection", test_sigterm_open_connection },
        { "SIGTERM with 32 clients that close at once", test_sigterm_fast_clients },
        CU_TEST_INFO_NULL,
};

static CU_TestInfo cli_tests[] = {
        { "--check-config and --dump-config", test_cli_check_config },
        { "--help and an unknown option", test_cli_options },
        { "listen address in use", test_cli_address_in_use },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("reload", reload_tests),
                HARNESS_SUITE("sigterm", stop_tests),
                HARNESS_SUITE("cli", cli_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
