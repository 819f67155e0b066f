/* SPDX-License-Identifier: MIT */
/* Fault injection: broken configurations and reloads under load.
 * - Every class of configuration error, as the operator meets it: `tcpedud --check-config -c FILE`
 *   prints exactly one line, FILE:LINE: message (FILE: message for a problem with the whole file),
 *   and exits with status 78; so does a start, and tcpeductl reload with the same problem.
 * - 24 reloads (SIGHUP, one every 250 ms: servers changed, added, removed) while clients connect to
 *   an unchanged server 50 times a second: not one connection is refused or lost, and nobody reads
 *   the daemon's sd_notify messages meanwhile (which once stopped it). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faults.h"

#define ECHO "[server e]\ntype = echo\nlisten = 127.0.0.1:0\n" /* 3 lines */

typedef struct BadConfig {
        const char *what;
        const char *text; /* the main file */
        unsigned line; /* 0: a problem with the whole file */
        const char *message;
} BadConfig;

static char *repeat(const char *s, int n) {
        char *r = tstr("%s", "");
        for (int i = 0; i < n; i++)
                r = tstr("%s%s", r, s);
        return r;
}

/* "[::1]:1,[::1]:2,...,[::1]:n," */
static char *ports(int n) {
        char *r = tstr("%s", "");
        for (int i = 1; i <= n; i++)
                r = tstr("%s[::1]:%d,", r, i);
        return r;
}

static char *many_servers(int n) {
        char *r = tstr("%s", "");
        for (int i = 0; i < n; i++)
                r = tstr("%s[server s%d]\ntype = echo\nlisten = 127.0.0.1:0\n", r, i);
        return r;
}

/* The one line of stderr, checked: FILE:LINE: message (or FILE: message). */
static void expect_error(const RunResult *r, const char *file, unsigned line, const char *message, const char *what) {
        const char *want = line ? tstr("%s:%u: %s\n", file, line, message) : tstr("%s: %s\n", file, message);
        EXPECT(r->exit_code == 78, "%s: exit %d, expected 78", what, r->exit_code);
        EXPECT(r->err && strcmp(r->err, want) == 0, "%s:\n      got      %s      expected %s", what, r->err ? r->err : "(nothing)\n", want);
}

static void test_every_error_class(void) {
        const char *dir = harness_tmpdir();
        REQUIRE(dir != NULL, "temp dir");
        const char *big = repeat("x", 200);
        const BadConfig cases[] = {
                { "line too long", tstr("[daemon]\nadmin_group = %s\n", big), 2, "line too long (214 bytes, at most 198)" },
                { "header without ]", "[daemon\n", 1, "section header must end with ']'" },
                { "duplicate [daemon]", "[daemon]\n[daemon]\n", 2, "duplicate section [daemon] (first on line 1)" },
                { "invalid server name", "[server a/b]\n", 1, "invalid server name 'a/b': use 1-32 letters, digits, '-', '_' or '.'" },
                { "duplicate server", ECHO "[server e]\n", 4, "duplicate server name 'e' (first on line 1)" },
                { "too many servers", many_servers(65), 193, "too many servers (at most 64)" },
                { "server without a name", "[server]\n", 1, "section [server] needs a name: [server NAME]" },
                { "unknown section", "[deamon]\n", 1, "unknown section [deamon] (known: [daemon], [server NAME])" },
                { "not key = value", "[daemon]\nhello\n", 2, "expected 'key = value' or '[section]', got 'hello'" },
                { "key outside a section", "max_connections = 5\n", 1, "key 'max_connections' outside of any section" },
                { "unknown key, a suggestion", "[daemon]\nmax_conections = 5\n", 2,
                  "unknown key 'max_conections' (did you mean 'max_connections'?)" },
                { "unknown key", "[daemon]\nfrobnicate = 1\n", 2, "unknown key 'frobnicate' in [daemon]" },
                { "duplicate key", "[daemon]\nlog_level = info\nlog_level = debug\n", 3,
                  "duplicate key 'log_level' (already set on line 2)" },
                { "string too long", tstr("[daemon]\nadmin_group = %s\n", repeat("g", 64)), 2,
                  "value of 'admin_group' too long (at most 63 bytes)" },
                { "not a boolean", ECHO "autostart = maybe\n", 4, "invalid value 'maybe' for 'autostart': expected yes or no" },
                { "not a number", ECHO "max_clients = lots\n", 4, "invalid value 'lots' for 'max_clients': expected a whole number" },
                { "not a size", ECHO "buffer_size = 12Q\n", 4,
                  "invalid value '12Q' for 'buffer_size': expected a size in bytes, optionally with K or M" },
                { "not a duration", ECHO "idle_timeout = 5 years\n", 4,
                  "invalid value '5 years' for 'idle_timeout': expected seconds, optionally with s, min or h" },
                { "out of range", ECHO "max_clients = 0\n", 4, "value '0' for 'max_clients' out of range (1-1000000)" },
                { "log_transitions", "[daemon]\nlog_transitions = some\n", 2,
                  "invalid value 'some' for 'log_transitions': expected all, summary or off" },
                { "log_level", "[daemon]\nlog_level = loud\n", 2,
                  "invalid value 'loud' for 'log_level': expected emerg, alert, crit, err, warning, notice, info or debug" },
                { "server type", "[server e]\ntype = ftp\nlisten = 127.0.0.1:0\n", 2,
                  "unknown server type 'ftp' (known: echo, enhanced, chat)" },
                { "empty listen address", "[server e]\ntype = echo\nlisten = 127.0.0.1:0,\n", 3, "empty address in 'listen'" },
                { "bad listen address", "[server e]\ntype = echo\nlisten = [::1:80\n", 3, NULL },
                { "listen address twice", "[server e]\ntype = echo\nlisten = 127.0.0.1:80, 127.0.0.1:80\n", 3,
                  "address 127.0.0.1:80 listed twice in 'listen'" },
                { "too many listen addresses", tstr("[server e]\ntype = echo\nlisten = %s[::1]:99\n", ports(16)), 3,
                  "too many addresses in 'listen' (at most 16)" },
                { "chat protocol", "[server c]\ntype = chat\nlisten = 127.0.0.1:0\nprotocol = xml\n", 4,
                  "invalid value 'xml' for 'protocol': expected auto, json or line" },
                { "handler not a path", "[server x]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = lib.so\n", 4,
                  "invalid value 'lib.so' for 'handler': expected json-commands or the absolute path of a .so plug-in" },
                { "key of another type", ECHO "history = 5\n", 4, "key 'history' does not apply to a server of type echo" },
                { "no type", "[server e]\nlisten = 127.0.0.1:0\n", 1, "[server e]: missing required key 'type'" },
                { "no listen", "[server e]\ntype = echo\n", 1, "[server e]: missing required key 'listen'" },
                { "address of another server",
                  "[server a]\ntype = echo\nlisten = 127.0.0.1:7\n[server b]\ntype = echo\nlisten = 127.0.0.1:7\n", 6,
                  "listen address 127.0.0.1:7 of server 'b' is already used by server 'a'" },
                { "plug-in missing", "[server x]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = /nonexistent/h.so\n", 4,
                  "handler '/nonexistent/h.so': No such file or directory" },
                { "user missing", "[daemon]\nuser = no-such-user-tcpedu\n", 2, "user 'no-such-user-tcpedu' does not exist" },
                { "group missing", "[daemon]\n\ngroup = no-such-group-tcpedu\n", 3, "group 'no-such-group-tcpedu' does not exist" },
        };
        RunResult r;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *file = tstr("%s/c%zu.conf", dir, i);
                REQUIRE_INT(write_file(file, cases[i].text), 0);
                REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", file, NULL), 0);
                if (cases[i].message)
                        expect_error(&r, file, cases[i].line, cases[i].message, cases[i].what);
                else {
                        const char *prefix = tstr("%s:%u: bad address '[::1:80' in 'listen': ", file, cases[i].line);
                        EXPECT(r.exit_code == 78 && strncmp(r.err, prefix, strlen(prefix)) == 0 &&
                                       strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                               "%s: exit %d: %s", cases[i].what, r.exit_code, r.err);
                }
        }

        /* a problem in a drop-in is reported at the drop-in's own line */
        const char *main_file = tstr("%s/main.conf", dir), *dropin_dir = tstr("%s.d", main_file);
        REQUIRE_INT(write_file(main_file, ECHO), 0);
        REQUIRE(mkdir(dropin_dir, 0755) == 0, "mkdir: %m");
        const char *dropin = tstr("%s/50-bad.conf", dropin_dir);
        REQUIRE_INT(write_file(dropin, "[server e]\n\nmax_clients = -1\n"), 0);
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", main_file, NULL), 0);
        expect_error(&r, dropin, 3, "invalid value '-1' for 'max_clients': expected a whole number", "a drop-in");

        /* problems with a whole file: no line to name */
        const char *missing = tstr("%s/missing.conf", dir);
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", missing, NULL), 0);
        expect_error(&r, missing, 0, "cannot read: No such file or directory", "a missing file");
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", dropin_dir, NULL), 0);
        expect_error(&r, dropin_dir, 0, "not a regular file", "a directory");
        const char *nul = tstr("%s/nul.conf", dir);
        FILE *f = fopen(nul, "we");
        REQUIRE(f != NULL, "fopen");
        fwrite("[daemon]\n\0\n", 1, 11, f);
        fclose(f);
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", nul, NULL), 0);
        expect_error(&r, nul, 0, "contains a NUL byte: not a text file", "a NUL byte");
        const char *huge = tstr("%s/huge.conf", dir);
        f = fopen(huge, "we");
        REQUIRE(f != NULL, "fopen");
        for (int i = 0; i < (1 << 20) / 64 + 1; i++)
                fputs("# a comment that makes the file larger than the limit, 64 bytes\n", f);
        fclose(f);
        struct stat st;
        REQUIRE(stat(huge, &st) == 0, "stat");
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", huge, NULL), 0);
        expect_error(&r, huge, 0, tstr("file too large (%lld bytes, at most 1048576)", (long long)st.st_size), "a file too large");

        /* starting on a bad file: the same line, the same status, nothing bound */
        const char *bad = tstr("%s/c%d.conf", dir, 18);
        REQUIRE_INT(run_tcpedud(&r, "-c", bad, "--log-target=stderr", NULL), 0);
        expect_error(&r, bad, 4, "value '0' for 'max_clients' out of range (1-1000000)", "a start");
}

/* tcpeductl reload prints the same lines and exits 78; the running configuration stays. */
static void test_reload_rejected(void) {
        Daemon *d = daemon_start(ECHO, NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        REQUIRE_INT(write_file(d->conf_path, ECHO "max_clients = 0\nbogus = 1\n"), 0);
        RunResult r;
        REQUIRE_INT(ctl(d, &r, "reload", NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        const char *want = tstr("tcpeductl reload: configuration rejected (2 errors); the previous one stays in effect\n"
                                "%s:4: value '0' for 'max_clients' out of range (1-1000000)\n%s:5: unknown key 'bogus' in [server]\n",
                                d->conf_path, d->conf_path);
        EXPECT(strcmp(r.err, want) == 0, "tcpeductl reload:\n%s\nexpected:\n%s", r.err, want);
        int fd = tcp_connect(&a, NULL);
        EXPECT(fd >= 0 && echo_check(fd, "x", 1, IO_TIMEOUT_MS) == 0, "the server after a rejected reload");
        if (fd >= 0)
                EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- reloads while clients connect ---- */

#define CONNECTS_PER_SEC 50
#define RELOADS 24
#define RELOAD_EVERY_MS 250
#define MAX_HELD 400

enum { C_CONNECTING, C_ECHOING, C_HELD, C_FAILED };

static const char *reload_config(const char *a, const char *b, const char *c, int i) {
        /* a: never changes; b: a limit changes each time (its connections stay); c: there every other time */
        const char *s = tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n\n[server %s]\ntype = echo\nlisten = 127.0.0.2:0\n"
                             "buffer_size = %dK\n",
                             a, b, 64 + i % 2 * 64);
        if (i % 2)
                s = tstr("%s\n[server %s]\ntype = echo\nlisten = 127.0.0.3:0\n", s, c);
        return s;
}

static void test_reload_under_connects(void) {
        const char *an = unique_name("stay"), *bn = unique_name("change"), *cn = unique_name("come");
        raise_nofile(4096);
        Daemon *d = daemon_start(reload_config(an, bn, cn, 0), NULL);
        Addr a, b;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a) && daemon_listener(d, "127.0.0.2", &b), "listeners");
        int bconn = tcp_connect(&b, NULL);
        REQUIRE(bconn >= 0 && echo_check(bconn, "b", 1, IO_TIMEOUT_MS) == 0, "a connection to the changing server");

        static int fd[MAX_HELD], st[MAX_HELD];
        int n = 0, reloads = 0;
        unsigned failures = 0;
        uint64_t start = now_ms(), next_connect = start, next_reload = start + RELOAD_EVERY_MS;
        uint64_t end = start + (uint64_t)RELOADS * RELOAD_EVERY_MS + RELOAD_EVERY_MS;
        for (;;) {
                uint64_t now = now_ms();
                if (now >= next_reload && reloads < RELOADS) {
                        reloads++;
                        REQUIRE_INT(write_file(d->conf_path, reload_config(an, bn, cn, reloads)), 0);
                        REQUIRE_INT(daemon_kill(d, SIGHUP), 0);
                        next_reload += RELOAD_EVERY_MS;
                }
                if (now >= next_connect && now < end && n < MAX_HELD) {
                        fd[n] = tcp_connect_start(&a);
                        REQUIRE(fd[n] >= 0, "connect: %s", strerror(-fd[n]));
                        st[n++] = C_CONNECTING;
                        next_connect += 1000 / CONNECTS_PER_SEC;
                }
                bool pending = false;
                struct pollfd p[MAX_HELD];
                for (int i = 0; i < n; i++) {
                        p[i] = (struct pollfd){ .fd = st[i] == C_CONNECTING || st[i] == C_ECHOING ? fd[i] : -1,
                                                .events = st[i] == C_CONNECTING ? POLLOUT : POLLIN };
                        pending = pending || p[i].fd >= 0;
                }
                if (now >= end && !pending)
                        break;
                if (now >= end + 10000)
                        break;
                if (poll(p, (nfds_t)n, 5) <= 0)
                        continue;
                for (int i = 0; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        if (st[i] == C_CONNECTING) {
                                int err = 0;
                                socklen_t len = sizeof(err);
                                (void)getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &err, &len);
                                st[i] = !err && send(fd[i], "n", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 ? C_ECHOING : C_FAILED;
                        } else {
                                char c;
                                ssize_t k = recv(fd[i], &c, 1, MSG_DONTWAIT);
                                if (k < 0 && errno == EAGAIN)
                                        continue;
                                st[i] = k == 1 && c == 'n' ? C_HELD : C_FAILED;
                        }
                        failures += st[i] == C_FAILED;
                }
        }
        int held = 0, still = 0;
        for (int i = 0; i < n; i++)
                if (st[i] == C_HELD) {
                        held++;
                        /* and still there after every reload */
                        still += echo_check(fd[i], "again", 5, IO_TIMEOUT_MS) == 0;
                }
        json_object *stats = CTL_JSON(d, "stats");
        printf("\n    %d reloads in %llu ms while %d connections were made to an unchanged server: %d echoed and held, %u failed; the "
               "daemon counts %lld reloads, %lld rejected\n",
               reloads, (unsigned long long)(now_ms() - start), n, held, failures, jnum(stats, "reloads"), jnum(stats, "reload_failures"));
        EXPECT(n >= RELOADS * RELOAD_EVERY_MS * CONNECTS_PER_SEC / 1000, "only %d connections made", n);
        EXPECT_INT(failures, 0);
        EXPECT_INT(held, n);
        EXPECT_INT(still, held);
        EXPECT_INT(jnum(stats, "reloads"), RELOADS);
        EXPECT_INT(jnum(stats, "reload_failures"), 0);
        Addr a2;
        EXPECT(daemon_listener(d, "127.0.0.1", &a2) && addr_port(&a2) == addr_port(&a), "the unchanged server's port moved");
        EXPECT_INT(echo_check(bconn, "b", 1, IO_TIMEOUT_MS), 0);
        json_object *servers = CTL_JSON(d, "servers");
        json_object *s0 = servers ? json_object_array_get_idx(jpath(servers, "servers"), 0) : NULL;
        EXPECT_STR(jtxt(s0, "name"), an);
        EXPECT_INT(jnum(s0, "connections"), held);
        EXPECT_INT(jnum(s0, "refused.max_connections") + jnum(s0, "refused.max_clients") + jnum(s0, "refused.fd_limit") +
                           jnum(s0, "refused.no_memory"),
                   0);
        for (int i = 0; i < n; i++)
                sock_close(fd[i]);
        sock_close(bconn);
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "every class of configuration error: FILE:LINE: message, exit 78", test_every_error_class },
                { "tcpeductl reload with errors: the same lines, exit 78", test_reload_rejected },
                { "24 reloads while clients connect 50 times a second", test_reload_under_connects },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                FAULTS_SUITE("faults: configuration", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
