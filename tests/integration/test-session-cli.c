/* SPDX-License-Identifier: MIT */
/* tcpeductl's session verbs against a real tcpedud, as a user sees them: what goes to stdout
 * (byte for byte) and stderr, and exit codes. session open/send/recv/close/watch and sessions;
 * connect driven through a pipe; chat on a terminal (tmux) next to a JSON chat member; the same
 * rules for another user. */
#include <errno.h>
#include <netdb.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "session-client.h"

#define RUN_TIMEOUT_MS 20000
#define ELEMENTSOF_(x) (sizeof(x) / sizeof((x)[0]))

extern char **environ;

/* ---- running tcpeductl: stdin from a buffer, stdout kept byte for byte ---- */

typedef struct Out {
        int code; /* exit status, 128 + signal, or -1 (timed out and killed) */
        char *out; /* NUL-terminated, but may hold NULs: out_len counts */
        size_t out_len;
        char *err;
        uint64_t ms; /* how long it ran */
} Out;

static unsigned run_counter;

static char *slurp(const char *path, size_t *len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap + 1);
        if (!buf)
                abort();
        for (ssize_t k; fd >= 0 && (k = read(fd, buf + n, cap - n)) > 0;) {
                n += (size_t)k;
                if (n == cap) {
                        cap *= 2;
                        char *b = realloc(buf, cap + 1);
                        if (!b)
                                abort();
                        buf = b;
                }
        }
        if (fd >= 0)
                close(fd);
        buf[n] = 0;
        if (len)
                *len = n;
        return keep(buf);
}

/* Start argv with stdin from in (NULL: /dev/null) and stdout/stderr to files in dir. The pid. */
static pid_t spawn(const char *dir, const char *const *argv, const void *in, size_t in_len, const char **out_path, const char **err_path) {
        unsigned n = ++run_counter;
        const char *in_path = "/dev/null";
        if (in) {
                in_path = tstr("%s/in-%u", dir, n);
                int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, in, in_len) != (ssize_t)in_len)
                        abort();
                close(fd);
        }
        *out_path = tstr("%s/out-%u", dir, n);
        *err_path = tstr("%s/err-%u", dir, n);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                (void)setpgid(0, 0);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_DFL);
                int i = open(in_path, O_RDONLY), o = open(*out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
                    e = open(*err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
                        _exit(126);
                (void)syscall(SYS_close_range, 3U, ~0U, 0U);
                execve(argv[0], (char *const *)argv, environ);
                _exit(127);
        }
        return pid;
}

/* Wait for pid: its exit code, or -1 after timeout_ms (then it is killed with its group). */
static int reap(pid_t pid, int timeout_ms) {
        int status = 0;
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
                if (r < 0 || now_ms() >= end) {
                        (void)kill(-pid, SIGKILL);
                        (void)kill(pid, SIGKILL);
                        (void)waitpid(pid, NULL, 0);
                        printf("\n    %d did not exit within %d ms: killed", (int)pid, timeout_ms);
                        return -1;
                }
                (void)poll(NULL, 0, 10);
        }
}

static void run_argv(const char *dir, const char *const *argv, const void *in, size_t in_len, Out *o) {
        const char *op, *ep;
        uint64_t t0 = now_ms();
        pid_t pid = spawn(dir, argv, in, in_len, &op, &ep);
        o->code = pid > 0 ? reap(pid, RUN_TIMEOUT_MS) : -1;
        o->ms = now_ms() - t0;
        o->out = slurp(op, &o->out_len);
        o->err = slurp(ep, NULL);
}

/* tcpeductl -s SOCKET ARGS... (NULL-terminated); prog: tcpeductl, or a copy others may run;
 * as_nobody: through setpriv as uid/gid 65534. */
static void ctl_run_v(Daemon *d, Out *o, const void *in, size_t in_len, bool as_nobody, const char *arg, va_list ap) {
        const char *argv[40];
        size_t n = 0;
        if (as_nobody) {
                argv[n++] = "/usr/bin/setpriv";
                argv[n++] = "--reuid=65534";
                argv[n++] = "--regid=65534";
                argv[n++] = "--clear-groups";
                argv[n++] = tstr("%s/tcpeductl", d->dir);
        } else
                argv[n++] = TCPEDUCTL_PATH;
        argv[n++] = "-s";
        argv[n++] = control_socket(d);
        for (const char *a = arg; a && n < 39; a = va_arg(ap, const char *))
                argv[n++] = a;
        argv[n] = NULL;
        run_argv(d->dir, argv, in, in_len, o);
}

static Out *ctl_in(Daemon *d, const void *in, size_t in_len, const char *arg, ...) __attribute__((sentinel));
static Out *ctl_in(Daemon *d, const void *in, size_t in_len, const char *arg, ...) {
        Out *o = keep(calloc(1, sizeof(Out)));
        va_list ap;
        va_start(ap, arg);
        ctl_run_v(d, o, in, in_len, false, arg, ap);
        va_end(ap);
        return o;
}
#define CTL(d, ...) ctl_in(d, NULL, 0, __VA_ARGS__, NULL)
#define CTL_IN(d, in, len, ...) ctl_in(d, in, len, __VA_ARGS__, NULL)

static Out *ctl_nobody(Daemon *d, const char *arg, ...) __attribute__((sentinel));
static Out *ctl_nobody(Daemon *d, const char *arg, ...) {
        Out *o = keep(calloc(1, sizeof(Out)));
        va_list ap;
        va_start(ap, arg);
        ctl_run_v(d, o, NULL, 0, true, arg, ap);
        va_end(ap);
        return o;
}
#define CTL_NOBODY(d, ...) ctl_nobody(d, __VA_ARGS__, NULL)

/* exit code, stdout and stderr exactly (NULL: not checked). */
static void expect_run_at(const char *file, int line, const Out *o, int code, const char *out, const char *err) {
        CHECK_AT(file, line, o->code == code, false, "exit %d, expected %d (stdout '%s', stderr '%s')", o->code, code, o->out, o->err);
        if (out)
                CHECK_AT(file, line, o->out_len == strlen(out) && memcmp(o->out, out, o->out_len) == 0, false,
                         "stdout '%s' (%zu bytes), expected '%s'", o->out, o->out_len, out);
        if (err)
                CHECK_AT(file, line, strcmp(o->err, err) == 0, false, "stderr '%s', expected '%s'", o->err, err);
}
#define EXPECT_RUN(o, code, out, err) expect_run_at(__FILE__, __LINE__, o, code, out, err)

/* The whole of s matches the extended regex re. */
static bool matches(const char *s, const char *re) {
        regex_t rx;
        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
                return false;
        bool ok = regexec(&rx, s, 0, NULL, 0) == 0;
        regfree(&rx);
        return ok;
}

static Daemon *start(const char *daemon_extra, const char *servers) {
        Daemon *d = daemon_start(tstr("[daemon]\n%s\n%s", daemon_extra ? daemon_extra : "", servers ? servers : ""), NULL);
        REQUIRE(d != NULL, "daemon did not start");
        return d;
}

static const char *fmt_addr(const Addr *a) {
        char buf[ADDR_STR_MAX];
        return tstr("%s", addr_format(a, buf, sizeof(buf)));
}

/* Poll a session (raw protocol) until cond holds for its `conn` object. */
#define WAIT_FOR(c, id, what, cond)                                                                                                        \
        do {                                                                                                                               \
                json_object *o_ = NULL;                                                                                                    \
                for (uint64_t end_ = now_ms() + 10000; now_ms() < end_; (void)poll(NULL, 0, 20)) {                                         \
                        o_ = CONN_INFO(c, id);                                                                                             \
                        json_object *it = o_;                                                                                              \
                        (void)it;                                                                                                          \
                        if (cond)                                                                                                          \
                                break;                                                                                                     \
                }                                                                                                                          \
                json_object *it = o_;                                                                                                      \
                (void)it;                                                                                                                  \
                EXPECT(cond, "session %s: never %s: %s", id, what, jtext(o_));                                                             \
        } while (0)

/* ---- session open/send/recv/close, sessions ---- */

static void test_session_verbs(void) {
        Daemon *d = start(NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        /* open prints the id alone */
        Out *o = CTL(d, "session", "open", target);
        EXPECT_RUN(o, 0, NULL, "");
        REQUIRE(o->out_len == 37 && o->out[36] == '\n', "session open printed '%s'", o->out);
        const char *id = tstr("%.36s", o->out);
        EXPECT(is_conn_id(id), "not an id: %s", id);
        int p = ACCEPT(lfd, peer);
        json_object *info = CONN_INFO(c, id);
        EXPECT_STR(jstr(info, "state"), "ESTABLISHED");
        EXPECT_STR(jstr(info, "peer"), target);
        EXPECT_STR(jstr(info, "local"), peer);

        /* send: TEXT and a newline; -n: exactly TEXT; -: stdin byte for byte */
        EXPECT_RUN(CTL(d, "session", "send", id, "hello world"), 0, "", "");
        char got[70000];
        EXPECT_INT(recv_exact(p, got, 12, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, "hello world\n", 12) == 0, "peer got '%.12s'", got);
        EXPECT_RUN(CTL(d, "session", "send", id, "-n", "no newline"), 0, "", "");
        EXPECT_INT(recv_exact(p, got, 10, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, "no newline", 10) == 0, "peer got '%.10s'", got);
        uint8_t bin[65536 + 1000];
        for (size_t i = 0; i < sizeof(bin); i++)
                bin[i] = (uint8_t)((i * 131) ^ (i >> 9));
        EXPECT_RUN(CTL_IN(d, bin, sizeof(bin), "session", "send", id, "-"), 0, "", "");
        EXPECT_INT(recv_exact(p, got, sizeof(bin), IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, bin, sizeof(bin)) == 0, "stdin sent through the session arrived changed");
        const char *utf8 = "caf\xc3\xa9\n";
        EXPECT_RUN(CTL_IN(d, utf8, strlen(utf8), "session", "send", id, "-"), 0, "", "");
        EXPECT_INT(recv_exact(p, got, strlen(utf8), IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(got, utf8, strlen(utf8)) == 0, "peer got '%.6s'", got);
        o = CTL(d, "--json", "session", "send", id, "j");
        EXPECT_RUN(o, 0, NULL, "");
        json_object *j = track_json(json_tokener_parse(o->out));
        EXPECT(jint(j, "bytes") == 2 && jstr(j, "id") && strcmp(jstr(j, "id"), id) == 0, "send --json: %s", o->out);
        EXPECT_INT(recv_exact(p, got, 2, IO_TIMEOUT_MS), 0);

        /* recv: raw bytes to stdout */
        EXPECT_INT(send_all(p, "one\ntwo\nthree", 13, IO_TIMEOUT_MS), 0);
        WAIT_FOR(c, id, "has 13 bytes buffered", jint(it, "buffered") == 13);
        EXPECT_RUN(CTL(d, "session", "recv", id, "--line"), 0, "one\n", "");
        EXPECT_RUN(CTL(d, "session", "recv", id, "--bytes", "2"), 0, "tw", "");
        EXPECT_RUN(CTL(d, "session", "recv", id), 0, "o\nthree", "");
        EXPECT_INT(send_all(p, bin, 300, IO_TIMEOUT_MS), 0);
        o = CTL(d, "session", "recv", id, "--bytes", "300");
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT(o->out_len == 300 && memcmp(o->out, bin, 300) == 0, "binary recv: %zu bytes, differ", o->out_len);
        EXPECT_INT(send_all(p, "js\n", 3, IO_TIMEOUT_MS), 0);
        WAIT_FOR(c, id, "has 3 bytes buffered", jint(it, "buffered") == 3);
        o = CTL(d, "--json", "session", "recv", id);
        EXPECT_RUN(o, 0, NULL, "");
        j = track_json(json_tokener_parse(o->out));
        EXPECT(j && strcmp(jstr(j, "data"), "js\n") == 0 && jbool(j, "eof") == 0, "recv --json: %s", o->out);
        /* a timeout: exit 1, after about the time asked */
        o = CTL(d, "session", "recv", id, "--timeout", "0.5");
        EXPECT_RUN(o, 1, "", tstr("tcpeductl: session %s: timed out after 0.5 s\n", id));
        EXPECT(o->ms >= 450 && o->ms < 5000, "--timeout 0.5 took %llu ms", (unsigned long long)o->ms);

        /* sessions and connections list it; conn shows its session fields */
        o = CTL(d, "sessions");
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT(strstr(o->out, id) && strstr(o->out, target) && strstr(o->out, peer) && strstr(o->out, "OWNER"), "sessions: %s", o->out);
        o = CTL(d, "--json", "sessions");
        j = track_json(json_tokener_parse(o->out));
        json_object *arr = jobj(j, "sessions");
        EXPECT(arr && json_object_array_length(arr) == 1 && jint(json_object_array_get_idx(arr, 0), "owner_uid") == 0,
               "sessions --json: %s", o->out);
        o = CTL(d, "connections");
        EXPECT(matches(o->out, tstr("(.|\n)*%s +\\(session\\) +%s(.|\n)*", id, target)), "connections: %s", o->out);
        o = CTL(d, "conn", id);
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT(strstr(o->out, "opened by uid 0") && strstr(o->out, "buffered"), "conn: %s", o->out);

        /* the peer closes with nothing left to read: exit 1 */
        REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
        WAIT_FOR(c, id, "saw the peer's FIN", jbool(jobj(it, "session"), "peer_closed") == 1);
        EXPECT_RUN(CTL(d, "session", "recv", id), 1, "", tstr("tcpeductl: session %s: the peer closed the connection\n", id));
        /* close: how and the new state */
        o = CTL(d, "session", "close", id);
        EXPECT(o->code == 0 && (strcmp(o->out, tstr("%s: close, now LAST_ACK\n", id)) == 0 ||
                                strcmp(o->out, tstr("%s: close, now CLOSED\n", id)) == 0),
               "session close: exit %d, '%s' '%s'", o->code, o->out, o->err);
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        fd_close(p);
        EXPECT_RUN(CTL(d, "session", "close", id), 1, "", NULL);

        /* an active close from ESTABLISHED, and a reset */
        const char *id2 = tstr("%.36s", CTL(d, "session", "open", target)->out);
        p = ACCEPT(lfd, peer);
        o = CTL(d, "session", "close", id2);
        EXPECT(o->code == 0 && (strcmp(o->out, tstr("%s: close, now FIN_WAIT_1\n", id2)) == 0 ||
                                strcmp(o->out, tstr("%s: close, now FIN_WAIT_2\n", id2)) == 0),
               "session close: exit %d, '%s' '%s'", o->code, o->out, o->err);
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
        fd_close(p);
        const char *id3 = tstr("%.36s", CTL(d, "session", "open", target)->out);
        p = ACCEPT(lfd, peer);
        EXPECT_RUN(CTL(d, "session", "close", id3, "--how", "reset"), 0, tstr("%s: reset, now CLOSED\n", id3), "");
        EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), -ECONNRESET);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_session_errors(void) {
        Addr echo;
        const char *name = unique_name("echo");
        Daemon *d = start(NULL, tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name));
        REQUIRE(daemon_listener(d, "127.0.0.1", &echo), "no listener");

        /* refused: exit 1 and the daemon's reason */
        int closed = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Addr ca;
        REQUIRE_INT(addr_parse_ip("127.0.0.1", 0, &ca), 0);
        socklen_t len = sizeof(ca);
        REQUIRE(bind(closed, &ca.sa, sizeof(ca.in)) == 0 && getsockname(closed, &ca.sa, &len) == 0, "bind: %m");
        EXPECT_RUN(CTL(d, "session", "open", fmt_addr(&ca)), 1, "",
                   tstr("tcpeductl: cannot connect to %s: connection refused (RST in answer to SYN)\n", fmt_addr(&ca)));
        /* timeout: a listener whose full accept queue drops every SYN */
        Addr sa;
        (void)LISTENER(0, &sa);
        int first = tcp_connect(&sa, NULL);
        REQUIRE(first >= 0, "connect: %s", strerror(-first));
        Out *o = CTL(d, "session", "open", fmt_addr(&sa), "--timeout", "0.5");
        EXPECT_RUN(o, 1, "", tstr("tcpeductl: cannot connect to %s: connect timeout: no answer to SYN\n", fmt_addr(&sa)));
        EXPECT(o->ms >= 450 && o->ms < 5000, "--timeout 0.5 took %llu ms", (unsigned long long)o->ms);
        /* a name: every address is tried in turn (localhost may be ::1 first; the server is on 127.0.0.1 only).
         * A bare machine may have no /etc/hosts, and then no name resolves: nothing to test. */
        struct addrinfo *ai = NULL, hints = { .ai_socktype = SOCK_STREAM };
        if (getaddrinfo("localhost", NULL, &hints, &ai) == 0) {
                freeaddrinfo(ai);
                o = CTL(d, "session", "open", tstr("localhost:%u", addr_port(&echo)));
                EXPECT_RUN(o, 0, NULL, "");
                EXPECT(o->out_len == 37 && is_conn_id(tstr("%.36s", o->out)), "session open localhost: '%s'", o->out);
        } else
                printf("\n    'localhost' does not resolve here (no /etc/hosts?): name resolution not tested\n");

        /* usage errors: 64 */
        static const char *const usage[][4] = {
                { "session", NULL },
                { "session", "open", NULL },
                { "session", "frobnicate", "x", NULL },
                { "session", "recv", "abcdef12", "--bytes" },
                {
                        "session",
                        "recv",
                        "abcdef12",
                        "--timeout",
                },
                { "session", "close", "abcdef12", "--how" },
        };
        for (size_t i = 0; i < ELEMENTSOF_(usage); i++) {
                o = CTL(d, usage[i][0], usage[i][1], usage[i][2], usage[i][3]);
                EXPECT(o->code == 64, "tcpeductl %s %s %s %s: exit %d (%s)", usage[i][0], usage[i][1] ? usage[i][1] : "",
                       usage[i][2] ? usage[i][2] : "", usage[i][3] ? usage[i][3] : "", o->code, o->err);
        }
        EXPECT_INT(CTL(d, "session", "close", "abcdef12", "--how", "sideways")->code, 64);
        EXPECT_INT(CTL(d, "session", "open", "127.0.0.1:0")->code, 64);
        EXPECT_INT(CTL(d, "session", "recv", "ab")->code, 64);
        /* no such session: 1 */
        o = CTL(d, "session", "recv", "ffffffff-0000");
        EXPECT_RUN(o, 1, "", NULL);
        EXPECT_STR(o->err, "tcpeductl: session ffffffff-0000: not found\n");
        /* a server's connection is not a session */
        Ctl *c = CTL_OPEN(d, "control");
        json_object *s = OPEN(c, fmt_addr(&echo), NULL);
        json_object *conns = jobj(OK(CALL(c, "connections", tstr("{\"server\":\"%s\"}", name))), "connections");
        REQUIRE(conns && json_object_array_length(conns) >= 1, "no server-side connection");
        const char *server_side = jstr(json_object_array_get_idx(conns, 0), "id");
        o = CTL(d, "session", "send", server_side, "x");
        EXPECT_RUN(o, 1, "", NULL);
        EXPECT(strstr(o->err, "not a session") != NULL, "stderr: %s", o->err);
        (void)s;
        /* sessions turned off: 77 */
        EXPECT_INT(daemon_stop(d), 0);
        d = start("max_sessions = 0\n", NULL);
        o = CTL(d, "session", "open", fmt_addr(&echo));
        EXPECT_RUN(o, 77, "", NULL);
        EXPECT(strstr(o->err, "max_sessions = 0") != NULL, "stderr: %s", o->err);
        /* no daemon: 69 */
        EXPECT_INT(daemon_stop(d), 0);
        EXPECT_INT(CTL(d, "session", "open", fmt_addr(&echo))->code, 69);
        fd_close(first);
}

/* ---- watch ---- */

/* tcpeductl ... session watch ID in the background: its pid; stdout to *out_path. */
static pid_t watch_start(Daemon *d, const char *id, bool json, const char **out_path, const char **err_path) {
        const char *argv[] = { TCPEDUCTL_PATH, "-s", control_socket(d), "session", "watch", id, json ? "--json" : NULL, NULL };
        return spawn(d->dir, argv, NULL, 0, out_path, err_path);
}

static void kill_pid(void *arg) {
        pid_t pid = (pid_t)(intptr_t)arg;
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
                (void)kill(-pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
        }
}

static void test_watch_cli(void) {
        Daemon *d = start(NULL, NULL);
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Ctl *c = CTL_OPEN(d, "control");

        for (int json = 1; json >= 0; json--) {
                const char *id = tstr("%s", jstr(OPEN(c, target, NULL), "id"));
                int p = ACCEPT(lfd, peer);
                const char *op, *ep;
                pid_t pid = watch_start(d, id, json, &op, &ep);
                REQUIRE(pid > 0, "fork: %m");
                defer_fn(kill_pid, (void *)(intptr_t)pid);
                WAIT_FOR(c, id, "watched", jbool(it, "watched") == 1);

                /* the peer sends, then closes; we close too: CLOSED at once (LAST_ACK), so the watch ends */
                EXPECT_INT(send_all(p, "hi\n\x01\"", 5, IO_TIMEOUT_MS), 0);
                REQUIRE(shutdown(p, SHUT_WR) == 0, "shutdown: %m");
                /* (not by asking `conn`: that would show CLOSE_WAIT before the data is read) */
                for (uint64_t end = now_ms() + 10000; now_ms() < end && !strstr(slurp(op, NULL), "peer-closed");)
                        (void)poll(NULL, 0, 20);
                OK(CALL(c, "session-close", id_arg(id, NULL)));
                int code = reap(pid, 10000);
                EXPECT(code == 0, "session watch%s exited %d: %s", json ? " --json" : "", code, slurp(ep, NULL));
                EXPECT_INT(wait_closed(p, IO_TIMEOUT_MS), 0);
                fd_close(p);

                char *text = slurp(op, NULL);
                const char *seq = "";
                bool lines_ok = true;
                for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        if (json) {
                                json_object *e = track_json(json_tokener_parse(l));
                                const char *ev = jstr(e, "event");
                                lines_ok = lines_ok && e && ev && jstr(e, "conn_id") && strcmp(jstr(e, "conn_id"), id) == 0;
                                if (ev && strcmp(ev, "transition") == 0)
                                        seq = tstr("%s %s>%s", seq, jstr(e, "old_state"), jstr(e, "new_state"));
                                else if (ev && strcmp(ev, "data") == 0)
                                        seq = tstr("%s data:%s", seq, jstr(e, "data") ? jstr(e, "data") : jstr(e, "data_base64"));
                                else
                                        seq = tstr("%s %s", seq, ev ? ev : "?");
                        } else {
                                /* HH:MM:SS.mmm then the event */
                                bool stamped = matches(l, "^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{3} .*");
                                lines_ok = lines_ok && stamped;
                                const char *rest = stamped ? l + 13 : l;
                                if (matches(rest, "^[A-Z_0-9]+ -> [A-Z_0-9]+ \\((kernel: [a-z_]+|inferred|syscall: [a-z_]+)\\).*"))
                                        seq = tstr("%s %.*s", seq, (int)(strchr(strchr(rest, '>') + 2, ' ') - rest), rest);
                                else
                                        seq = tstr("%s %s", seq, rest);
                        }
                }
                EXPECT(lines_ok, "watch%s output: %s", json ? " --json" : "", slurp(op, NULL));
                if (json)
                        EXPECT_STR(
                                seq,
                                " data:hi\n\x01\" ESTABLISHED>CLOSE_WAIT peer-closed CLOSE_WAIT>LAST_ACK LAST_ACK>CLOSED disconnected end");
                else
                        EXPECT(matches(seq,
                                       "^ data 5 bytes: \"hi\\\\n\\\\x01\\\\\"\" ESTABLISHED -> CLOSE_WAIT peer-closed(: .*)? CLOSE_WAIT "
                                       "-> LAST_ACK LAST_ACK -> CLOSED disconnected: closed by tcpeductl \\(5 bytes in, 0 out\\) end$"),
                               "watch output: %s", slurp(op, NULL));
        }
        /* someone else's watch is refused: 1 */
        const char *id = tstr("%s", jstr(OPEN(c, target, "\"watch\":true"), "id"));
        int p = ACCEPT(lfd, peer);
        Out *o = CTL(d, "session", "watch", id);
        EXPECT_RUN(o, 1, "", NULL);
        EXPECT(strstr(o->err, "already watched") != NULL, "stderr: %s", o->err);
        fd_close(p);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- connect ---- */

static void test_connect(void) {
        Addr echo;
        const char *name = unique_name("echo");
        Daemon *d = start(NULL, tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name));
        REQUIRE(daemon_listener(d, "127.0.0.1", &echo), "no listener");
        const char *target = fmt_addr(&echo);

        /* stdin to the echo server and back: byte for byte, then EOF half-closes and it exits 0 */
        EXPECT_RUN(CTL_IN(d, "hello\nworld\n", 12, "connect", target), 0, "hello\nworld\n", "");
        /* -v: the session's steps on stderr */
        Out *o = CTL_IN(d, "x", 1, "connect", target, "-v");
        EXPECT_RUN(o, 0, "x", NULL);
        EXPECT(matches(o->err, "^tcpeductl: CLOSED -> SYN_SENT\ntcpeductl: SYN_SENT -> ESTABLISHED\n"
                               "tcpeductl: connected to 127\\.0\\.0\\.1:[0-9]+ from 127\\.0\\.0\\.1:[0-9]+ \\(session "
                               "[0-9a-f-]{36}\\)\n(.|\n)*tcpeductl: disconnected: [^\n]+\n$"),
               "connect -v stderr:\n%s", o->err);
        EXPECT(strstr(o->err, tstr("connected to %s from", target)) != NULL, "connect -v: %s", o->err);
        /* 1 MiB of every byte value */
        size_t big = 1 << 20;
        uint8_t *in = keep(malloc(big));
        for (size_t i = 0; i < big; i++)
                in[i] = (uint8_t)((i * 2654435761u) >> 13);
        o = CTL_IN(d, in, big, "connect", target);
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT(o->out_len == big && memcmp(o->out, in, big) == 0, "1 MiB through connect: %zu bytes back, %s", o->out_len,
               o->out_len == big ? "differ" : "short");
        /* the session was ephemeral: gone with tcpeductl (TIME_WAIT on our side at most) */
        Ctl *c = CTL_OPEN(d, "control");
        json_object *list = jobj(OK(CALL(c, "sessions", NULL)), "sessions");
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                const char *st = jstr(json_object_array_get_idx(list, i), "state");
                EXPECT(st && strcmp(st, "TIME_WAIT") == 0, "a session of connect left in %s", st);
        }

        /* a peer that talks first and closes: connect writes it all and exits 0 */
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *op, *ep;
        const char *argv[] = { TCPEDUCTL_PATH, "-s", control_socket(d), "connect", fmt_addr(&la), NULL };
        /* (stdin is /dev/null: connect half-closes at once, and the peer still talks) */
        pid_t pid = spawn(d->dir, argv, NULL, 0, &op, &ep);
        REQUIRE(pid > 0, "fork: %m");
        defer_fn(kill_pid, (void *)(intptr_t)pid);
        char peer[ADDR_STR_MAX];
        int p = ACCEPT(lfd, peer);
        EXPECT_INT(send_all(p, "banner\nbye\n", 11, IO_TIMEOUT_MS), 0);
        fd_close(p);
        int code = reap(pid, 10000);
        EXPECT_INT(code, 0);
        size_t n = 0;
        char *out = slurp(op, &n);
        EXPECT(n == 11 && memcmp(out, "banner\nbye\n", 11) == 0, "connect wrote '%s'", out);

        /* refused: exit 1 with the reason */
        int closed = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Addr ca;
        REQUIRE_INT(addr_parse_ip("127.0.0.1", 0, &ca), 0);
        socklen_t len = sizeof(ca);
        REQUIRE(bind(closed, &ca.sa, sizeof(ca.in)) == 0 && getsockname(closed, &ca.sa, &len) == 0, "bind: %m");
        EXPECT_RUN(CTL_IN(d, "x", 1, "connect", fmt_addr(&ca)), 1, "",
                   tstr("tcpeductl: cannot connect to %s: connection refused (RST in answer to SYN)\n", fmt_addr(&ca)));
        /* a reset from the peer: exit 1 */
        p = -1;
        pid = spawn(d->dir, argv, NULL, 0, &op, &ep);
        REQUIRE(pid > 0, "fork: %m");
        defer_fn(kill_pid, (void *)(intptr_t)pid);
        p = ACCEPT(lfd, peer);
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        REQUIRE(setsockopt(p, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER: %m");
        fd_close(p);
        code = reap(pid, 10000);
        EXPECT(code == 1, "connect to a peer that resets: exit %d, stderr %s", code, slurp(ep, NULL));
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- another user ---- */

static void test_other_user(void) {
        if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
                printf("\n    SKIPPED: running tcpeductl as another user needs root and setpriv ");
                return;
        }
        Addr la;
        int lfd = LISTENER(8, &la);
        const char *target = fmt_addr(&la);
        char peer[ADDR_STR_MAX];
        Daemon *d = start(NULL, NULL);
        /* a copy of tcpeductl the other user can reach, next to the socket in a dir it may enter */
        open_up_dir(d);
        RunResult rr;
        const char *const cp[] = { "/bin/cp", TCPEDUCTL_PATH, tstr("%s/tcpeductl", d->dir), NULL };
        REQUIRE(run_prog(&rr, cp) == 0, "cp tcpeductl: %s", rr.err);
        REQUIRE(chmod(tstr("%s/tcpeductl", d->dir), 0755) == 0, "chmod: %m");

        Out *o = CTL_NOBODY(d, "session", "open", target);
        EXPECT_RUN(o, 0, NULL, "");
        const char *nid = tstr("%.36s", o->out);
        int pn = ACCEPT(lfd, peer);
        const char *rid = tstr("%.36s", CTL(d, "session", "open", target)->out);
        int pr = ACCEPT(lfd, peer);
        EXPECT(is_conn_id(nid) && is_conn_id(rid), "ids '%s' '%s'", nid, rid);

        /* its own session works */
        EXPECT_RUN(CTL_NOBODY(d, "session", "send", nid, "mine"), 0, "", "");
        char got[16];
        EXPECT_INT(recv_exact(pn, got, 5, IO_TIMEOUT_MS), 0);
        EXPECT_INT(send_all(pn, "yours\n", 6, IO_TIMEOUT_MS), 0);
        EXPECT_RUN(CTL_NOBODY(d, "session", "recv", nid, "--line"), 0, "yours\n", "");
        /* root's: 77 for every verb, and the message says whose it is */
        const char *denied = tstr("tcpeductl: session %s belongs to uid 0 (you are uid 65534)\n", rid);
        EXPECT_RUN(CTL_NOBODY(d, "session", "send", rid, "x"), 77, "", denied);
        EXPECT_RUN(CTL_NOBODY(d, "session", "recv", rid, "--timeout", "0"), 77, "", denied);
        EXPECT_RUN(CTL_NOBODY(d, "session", "close", rid), 77, "", denied);
        EXPECT_RUN(CTL_NOBODY(d, "session", "watch", rid), 77, "", denied);
        /* nothing reached the peer of root's session */
        EXPECT_INT(recv(pr, got, sizeof(got), MSG_DONTWAIT), -1);
        /* root uses nobody's */
        EXPECT_RUN(CTL(d, "session", "send", nid, "from root"), 0, "", "");
        EXPECT_INT(recv_exact(pn, got, 10, IO_TIMEOUT_MS), 0);
        /* sessions shows both owners, to anyone */
        o = CTL_NOBODY(d, "sessions");
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT(matches(o->out, tstr("(.|\n)*%s [^\n]* 65534 [^\n]*\n(.|\n)*", nid)) &&
                       matches(o->out, tstr("(.|\n)*%s [^\n]* 0 [^\n]*\n(.|\n)*", rid)),
               "sessions as nobody:\n%s", o->out);
        /* below 1024 only for admins */
        o = CTL_NOBODY(d, "session", "open", target, "--bind", "127.0.0.1:1000");
        EXPECT_RUN(o, 77, "", "tcpeductl: binding to port 1000 (below 1024) needs an admin (you are uid 65534)\n");
        o = CTL_NOBODY(d, "session", "close", nid);
        EXPECT(o->code == 0 && (strcmp(o->out, tstr("%s: close, now FIN_WAIT_1\n", nid)) == 0 ||
                                strcmp(o->out, tstr("%s: close, now FIN_WAIT_2\n", nid)) == 0),
               "session close as nobody: exit %d, '%s' '%s'", o->code, o->out, o->err);
        EXPECT_INT(wait_closed(pn, IO_TIMEOUT_MS), 0);
        fd_close(pn);
        fd_close(pr);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- chat ---- */

/* A JSON member of the chat server at a (the test's raw TCP client). users: the room after it joined. */
static Client *json_member(const Addr *a, const char *name, const char *users) {
        Client *m = CLIENT(a, name);
        const char *s = J("{'type':'join','username':%s}\n", jq(name));
        SEND_LEN(m, s, strlen(s));
        EXPECT_JSON(m, J("{'type':'welcome','content':%s}", jq(tstr("Welcome to the chat, %s!", name))));
        EXPECT_JSON(m, J("{'type':'join','username':%s}", jq(name)));
        EXPECT_JSON(m, J("{'type':'users','users':%s}", Q(users)));
        return m;
}

static void say(Client *m, const char *content) {
        const char *s = J("{'type':'message','content':%s}\n", jq(content));
        SEND_LEN(m, s, strlen(s));
}

static Daemon *start_chat(const char *name, Addr *a) {
        Daemon *d = start(NULL, tstr("[server %s]\ntype = chat\nlisten = 127.0.0.1:0\n", name));
        REQUIRE(daemon_listener(d, "127.0.0.1", a), "no listener");
        return d;
}

/* "[HH:MM:SS] rest" */
static bool stamped(const char *line, const char *rest) {
        return matches(line, "^\\[[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\] .*") && strcmp(line + 11, rest) == 0;
}

/* Not on a terminal: lines from stdin are messages, EOF leaves, no prompt. */
static void test_chat_pipe(void) {
        Addr a;
        const char *name = unique_name("chat");
        Daemon *d = start_chat(name, &a);
        Client *bob = json_member(&a, "bob", "['bob']");

        const char *in = "hi all\nsecond line\n";
        Out *o = CTL_IN(d, in, strlen(in), "chat", fmt_addr(&a), "--user", "carol");
        EXPECT_RUN(o, 0, NULL, "");
        EXPECT_JSON(bob, Q("{'type':'join','username':'carol'}"));
        EXPECT_JSON(bob, Q("{'type':'users','users':['bob','carol']}"));
        EXPECT_JSON(bob, Q("{'type':'message','username':'carol','content':'hi all'}"));
        EXPECT_JSON(bob, Q("{'type':'message','username':'carol','content':'second line'}"));
        EXPECT_JSON(bob, Q("{'type':'leave','username':'carol'}"));
        EXPECT_JSON(bob, Q("{'type':'users','users':['bob']}"));
        /* what carol saw: no prompt, her own messages stamped, the goodbye */
        EXPECT(strstr(o->out, "* Welcome to the chat, carol!\n") != NULL, "chat stdout:\n%s", o->out);
        EXPECT(strstr(o->out, "carol> ") == NULL, "a prompt off a terminal:\n%s", o->out);
        bool saw_msg = false;
        for (char *save = NULL, *l = strtok_r(o->out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                saw_msg = saw_msg || stamped(l, "carol: hi all");
        EXPECT(saw_msg, "no '[HH:MM:SS] carol: hi all' line");
        EXPECT_INT(stop_daemon(d), 0);
}

typedef struct Tmux {
        const char *sock, *target;
} Tmux;

static int tmux(const Tmux *t, RunResult *r, const char *arg, ...) __attribute__((sentinel));
static int tmux(const Tmux *t, RunResult *r, const char *arg, ...) {
        const char *argv[24] = { "/usr/bin/tmux", "-S", t->sock, "-f", "/dev/null" };
        size_t n = 5;
        va_list ap;
        va_start(ap, arg);
        for (const char *a = arg; a && n < 23; a = va_arg(ap, const char *))
                argv[n++] = a;
        va_end(ap);
        argv[n] = NULL;
        return run_prog(r, argv);
}

/* The pane's non-empty lines, joined with '\n'. */
static char *pane_text(const Tmux *t) {
        RunResult r;
        if (tmux(t, &r, "capture-pane", "-p", "-t", t->target, NULL) != 0)
                return tstr("(capture-pane failed: %s)", r.err ? r.err : "");
        char *s = tstr("%s", "");
        for (char *save = NULL, *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                size_t n = strlen(l);
                while (n > 0 && l[n - 1] == ' ')
                        l[--n] = 0;
                if (n)
                        s = tstr("%s%s%s", s, *s ? "\n" : "", l);
        }
        return s;
}

static const char *last_line(const char *text) {
        const char *nl = strrchr(text, '\n');
        return nl ? nl + 1 : text;
}

/* Wait until the pane's text satisfies the regex (10 s); the text. */
static char *wait_pane_at(const char *file, int line, const Tmux *t, const char *re) {
        char *s = NULL;
        for (uint64_t end = now_ms() + 10000; now_ms() < end; (void)poll(NULL, 0, 30)) {
                s = pane_text(t);
                if (matches(s, re))
                        return s;
        }
        CHECK_AT(file, line, false, false, "the pane never matched /%s/:\n%s", re, s);
        return s;
}
#define WAIT_PANE(t, re) wait_pane_at(__FILE__, __LINE__, t, re)

static void keys(const Tmux *t, const char *k) {
        RunResult r;
        EXPECT(tmux(t, &r, "send-keys", "-t", t->target, k, NULL) == 0, "send-keys %s: %s", k, r.err);
}

/* On a terminal (a tmux pane): prompt, line editing, incoming messages that do not garble the
 * line being typed. */
static void test_chat_terminal(void) {
        if (access("/usr/bin/tmux", X_OK) != 0) {
                printf("\n    SKIPPED: no /usr/bin/tmux (apt install tmux) ");
                return;
        }
        Addr a;
        const char *name = unique_name("chat");
        Daemon *d = start_chat(name, &a);
        Client *bob = json_member(&a, "bob", "['bob']");
        Tmux t = { .sock = tstr("%s/tmux.sock", d->dir), .target = "chat" };
        RunResult r;
        /* The shell writes tcpeductl's exit status to a file (tmux's own record of it is unreliable
         * for a process that LeakSanitizer ptraces as it exits). */
        const char *status_path = tstr("%s/chat.status", d->dir);
        const char *cmd = tstr("%s -s %s chat %s --user alice; echo $? >%s.tmp && mv %s.tmp %s", TCPEDUCTL_PATH, control_socket(d),
                               fmt_addr(&a), status_path, status_path, status_path);
        REQUIRE(tmux(&t, &r, "new-session", "-d", "-s", "chat", "-x", "100", "-y", "30", cmd, ";", "set-option", "-t", "chat",
                     "remain-on-exit", "on", NULL) == 0,
                "tmux new-session: %s", r.err);
        defer_command("/usr/bin/tmux", "-S", t.sock, "kill-server", NULL);

        /* alice joins: the prompt, and bob hears of her */
        char *s = WAIT_PANE(&t, "(.|\n)*\\* Welcome to the chat, alice!(.|\n)*\nalice> ?$");
        EXPECT_JSON(bob, Q("{'type':'join','username':'alice'}"));
        EXPECT_JSON(bob, Q("{'type':'users','users':['bob','alice']}"));

        /* a line typed is a message */
        keys(&t, "hello bob");
        keys(&t, "Enter");
        EXPECT_JSON(bob, Q("{'type':'message','username':'alice','content':'hello bob'}"));
        s = WAIT_PANE(&t, "(.|\n)*\n\\[[0-9:]{8}\\] alice: hello bob\nalice> ?$");

        /* half a line typed (with a Backspace), then bob speaks: his line above, the prompt and the
         * half line intact below */
        keys(&t, "half typx");
        keys(&t, "BSpace");
        WAIT_PANE(&t, "(.|\n)*\nalice> half typ$");
        say(bob, "hi alice");
        EXPECT_JSON(bob, Q("{'type':'message','username':'bob','content':'hi alice'}"));
        s = WAIT_PANE(&t, "(.|\n)*\n\\[[0-9:]{8}\\] bob: hi alice\nalice> half typ$");
        const char *prev = s;
        for (const char *k = s; (k = strstr(k, "\n[")); k++)
                prev = k + 1;
        EXPECT(stamped(tstr("%.*s", (int)(strchr(prev, '\n') - prev), prev), "bob: hi alice"), "bob's line: %s", prev);
        EXPECT(strcmp(last_line(s), "alice> half typ") == 0, "the line being typed: '%s'", last_line(s));
        /* the rest of the line, and it goes out whole */
        keys(&t, "ed");
        keys(&t, "Enter");
        EXPECT_JSON(bob, Q("{'type':'message','username':'alice','content':'half typed'}"));

        /* Ctrl-U drops what was typed; nothing reaches bob */
        keys(&t, "garbage");
        WAIT_PANE(&t, "(.|\n)*\nalice> garbage$");
        keys(&t, "C-u");
        WAIT_PANE(&t, "(.|\n)*\nalice> ?$");
        /* /quit: leaves, bob sees it, tcpeductl exits 0 */
        keys(&t, "/quit");
        keys(&t, "Enter");
        EXPECT_JSON(bob, Q("{'type':'leave','username':'alice'}"));
        EXPECT_JSON(bob, Q("{'type':'users','users':['bob']}"));
        EXPECT_NOTHING(bob);
        const char *status = NULL;
        for (uint64_t end = now_ms() + 10000; now_ms() < end && !status; (void)poll(NULL, 0, 30))
                status = read_file_text(status_path);
        EXPECT(status && strcmp(status, "0\n") == 0, "tcpeductl chat exit status: %s", status ? status : "(did not exit)");
        s = pane_text(&t);
        EXPECT(strstr(s, "* Goodbye, alice!") != NULL, "pane after /quit:\n%s", s);
        EXPECT_INT(stop_daemon(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "chat off a terminal: stdin lines", test_chat_pipe },
                { "chat on a terminal (tmux): typing survives incoming messages", test_chat_terminal },
                { "another user: its own sessions only", test_other_user },
                { "session open, send, recv, close, sessions", test_session_verbs },
                { "session errors and exit codes", test_session_errors },
                { "session watch, human and --json", test_watch_cli },
                { "connect through a pipe", test_connect },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                SESSION_SUITE("tcpeductl sessions", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
