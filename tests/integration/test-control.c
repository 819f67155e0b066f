/* SPDX-License-Identifier: MIT */
/* tcpeductl against a real tcpedud: every verb in both output modes, every exit code, read-only
 * access for other users, and the control socket's answers to bad input, each followed by a check
 * that the daemon still answers and still echoes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "journal-check.h"
#include "test-util.h"

#define ELEMENTSOF_(x) (sizeof(x) / sizeof((x)[0]))

static char *server_config(const char *name, const char *extra) {
        return tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n%s", name, extra ? extra : "");
}

static json_object *parse_json(const char *text) {
        json_object *o = text ? json_tokener_parse(text) : NULL;
        EXPECT(o != NULL, "not JSON: %s", text ? text : "(null)");
        return o;
}

static const char *jstr_path(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void expect_echo(const Addr *a) {
        int fd = tcp_connect(a, NULL);
        EXPECT(fd >= 0, "connect: %s", strerror(-fd));
        if (fd < 0)
                return;
        EXPECT_INT(echo_check(fd, "ping\n", 5, IO_TIMEOUT_MS), 0);
        EXPECT_INT(close_graceful(fd), 0);
}

static void test_status_servers_show(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;
        char addr[ADDR_STR_MAX];

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        addr_format(&a, addr, sizeof(addr));

        REQUIRE_INT(ctl(d, &r, "status", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "tcpedud 0.1.0 (pid ") != NULL, "status: %s", r.out);
        EXPECT(strstr(r.out, name) != NULL && strstr(r.out, "running") != NULL && strstr(r.out, addr) != NULL, "status: %s", r.out);

        REQUIRE_INT(ctl(d, &r, "status", "--json", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        json_object *o = parse_json(r.out), *v;
        if (o) {
                EXPECT_STR(jstr_path(o, "version"), "0.1.0");
                EXPECT(json_object_object_get_ex(o, "pid", &v) && json_object_get_int(v) == d->pid, "pid");
                EXPECT_STR(jstr_path(o, "config_file"), d->conf_path);
                EXPECT(json_object_object_get_ex(o, "protocol", &v) && json_object_get_int(v) == 1, "protocol");
                json_object *servers = json_object_object_get(o, "servers");
                EXPECT(servers && json_object_array_length(servers) == 1, "one server");
                if (servers && json_object_array_length(servers) == 1) {
                        json_object *s = json_object_array_get_idx(servers, 0);
                        EXPECT_STR(jstr_path(s, "name"), name);
                        EXPECT_STR(jstr_path(s, "state"), "running");
                }
                json_object *log = json_object_object_get(o, "log");
                EXPECT(log && json_object_object_get(log, "dropped") != NULL, "log.dropped");
                json_object_put(o);
        }

        REQUIRE_INT(ctl(d, &r, "--json", "servers", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        o = parse_json(r.out);
        if (o) {
                json_object *s = json_object_array_get_idx(json_object_object_get(o, "servers"), 0);
                json_object *l = s ? json_object_array_get_idx(json_object_object_get(s, "listen"), 0) : NULL;
                EXPECT_STR(jstr_path(l, "configured"), "127.0.0.1:0");
                EXPECT_STR(jstr_path(l, "address"), addr);
                EXPECT(json_object_object_get(s, "refused") && json_object_object_get(s, "limits"), "refused, limits");
                json_object_put(o);
        }
        REQUIRE_INT(ctl(d, &r, "servers", NULL), 0);
        EXPECT(strstr(r.out, "ACCEPTED") && strstr(r.out, addr), "servers table: %s", r.out);

        REQUIRE_INT(ctl(d, &r, "show", name, "--json", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        o = parse_json(r.out);
        EXPECT_STR(jstr_path(o, "type"), "echo");
        json_object_put(o);
        REQUIRE_INT(ctl(d, &r, "show", name, NULL), 0);
        EXPECT(strstr(r.out, "max_clients=1024") != NULL, "show: %s", r.out);

        REQUIRE_INT(ctl(d, &r, "show", "no-such-server", NULL), 0);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "no server 'no-such-server'") != NULL, "stderr: %s", r.err);
        REQUIRE_INT(ctl(d, &r, "show", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_start_stop_restart(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");

        REQUIRE_INT(ctl(d, &r, "stop", name, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_STR(r.out, tstr("server %s: stopped\n", name));
        /* its connection got a FIN, and the port is closed */
        EXPECT_INT(wait_closed(fd, IO_TIMEOUT_MS), 0);
        sock_close(fd);
        fd = tcp_connect(&a, NULL);
        EXPECT_INT(fd, -ECONNREFUSED);
        if (fd >= 0)
                sock_close(fd);

        REQUIRE_INT(ctl(d, &r, "stop", name, NULL), 0);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "is not running") != NULL, "stderr: %s", r.err);

        REQUIRE_INT(ctl(d, &r, "start", name, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener after start");
        expect_echo(&a);
        REQUIRE_INT(ctl(d, &r, "start", name, NULL), 0);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "is already running") != NULL, "stderr: %s", r.err);

        REQUIRE_INT(ctl(d, &r, "restart", name, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener after restart");
        expect_echo(&a);
        REQUIRE_INT(ctl(d, &r, "stop", "nope", NULL), 0);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "no server 'nope'") != NULL, "stderr: %s", r.err);
        EXPECT_INT(daemon_stop(d), 0);
}

/* The connection whose peer is this client, from `connections --json`. */
static json_object *find_connection(Daemon *d, const char *peer) {
        RunResult r;
        if (ctl(d, &r, "--json", "connections", NULL) < 0 || r.exit_code != 0)
                return NULL;
        json_object *o = parse_json(r.out), *found = NULL;
        json_object *arr = o ? json_object_object_get(o, "connections") : NULL;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *c = json_object_array_get_idx(arr, i);
                const char *p = jstr_path(c, "peer");
                if (p && strcmp(p, peer) == 0)
                        found = json_object_get(c);
        }
        json_object_put(o);
        return found;
}

static void test_connections_and_conn(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;
        char peer[ADDR_STR_MAX];

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        EXPECT_INT(echo_check(fd, "abc", 3, IO_TIMEOUT_MS), 0);
        sock_local(fd, peer, sizeof(peer));

        json_object *c = find_connection(d, peer);
        REQUIRE(c != NULL, "connection from %s not listed", peer);
        EXPECT_STR(jstr_path(c, "server"), name);
        EXPECT_STR(jstr_path(c, "state"), "ESTABLISHED");
        EXPECT_STR(jstr_path(c, "kernel_state"), "ESTABLISHED");
        EXPECT_STR(jstr_path(c, "bytes_in"), "3");
        char *id = tstr("%s", jstr_path(c, "id"));
        json_object_put(c);

        REQUIRE_INT(ctl(d, &r, "connections", name, NULL), 0);
        EXPECT(strstr(r.out, id) != NULL && strstr(r.out, peer) != NULL, "table: %s", r.out);

        /* a unique prefix is enough */
        REQUIRE_INT(ctl(d, &r, "--json", "conn", tstr("%.8s", id), NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        json_object *o = parse_json(r.out);
        if (o) {
                EXPECT_STR(jstr_path(o, "id"), id);
                json_object *tl = json_object_object_get(o, "timeline");
                EXPECT(tl && json_object_array_length(tl) == 2, "timeline length");
                if (tl && json_object_array_length(tl) == 2) {
                        EXPECT_STR(jstr_path(json_object_array_get_idx(tl, 0), "state"), "SYN_RECEIVED");
                        EXPECT_STR(jstr_path(json_object_array_get_idx(tl, 0), "source"), "inferred");
                        EXPECT_STR(jstr_path(json_object_array_get_idx(tl, 1), "state"), "ESTABLISHED");
                        EXPECT_STR(jstr_path(json_object_array_get_idx(tl, 1), "source"), "kernel");
                        EXPECT_STR(jstr_path(json_object_array_get_idx(tl, 1), "current"), "true");
                }
                json_object *ti = json_object_object_get(o, "tcp_info");
                EXPECT(ti && json_object_object_get(ti, "rtt_usec") && json_object_object_get(ti, "snd_cwnd") &&
                               json_object_object_get(ti, "retransmits") && json_object_object_get(ti, "unacked") &&
                               json_object_object_get(ti, "rttvar_usec"),
                       "tcp_info fields");
                json_object_put(o);
        }
        REQUIRE_INT(ctl(d, &r, "conn", id, NULL), 0);
        EXPECT(strstr(r.out, "timeline:") && strstr(r.out, "(now)") && strstr(r.out, "tcp_info:"), "conn: %s", r.out);

        REQUIRE_INT(ctl(d, &r, "conn", "ffffffff-0000", NULL), 0);
        EXPECT_INT(r.exit_code, 1);
        EXPECT(strstr(r.err, "no connection") != NULL, "stderr: %s", r.err);
        REQUIRE_INT(ctl(d, &r, "conn", "ab", NULL), 0);
        EXPECT_INT(r.exit_code, 64);

        EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static char *conn_id_of(Daemon *d, int fd) {
        char peer[ADDR_STR_MAX];
        sock_local(fd, peer, sizeof(peer));
        json_object *c = find_connection(d, peer);
        char *id = c ? tstr("%s", jstr_path(c, "id")) : NULL;
        json_object_put(c);
        return id;
}

static void test_kick(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");

        /* reset: the client sees RST at once */
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        EXPECT_INT(echo_check(fd, "x", 1, IO_TIMEOUT_MS), 0);
        char *id = conn_id_of(d, fd);
        REQUIRE(id != NULL, "no id");
        REQUIRE_INT(ctl(d, &r, "kick", id, "--how", "reset", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_STR(r.out, tstr("connection %s: reset, now CLOSED\n", id));
        EXPECT_INT(wait_closed(fd, IO_TIMEOUT_MS), -ECONNRESET);
        sock_close(fd);
        if (journal_available("kick reset")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("TCPEDU_CONN_ID=%s", id), "TCPEDU_NEW_STATE=CLOSED", NULL);
                REQUIRE_INT(l->n, 1);
                EXPECT_STR(jget(l->e[0], "TCPEDU_OLD_STATE"), "ESTABLISHED");
                EXPECT_STR(jget(l->e[0], "TCPEDU_REASON"), edge_event("ESTABLISHED", "CLOSED"));
                EXPECT_STR(jget(l->e[0], "TCPEDU_CAUSE"), "reset by tcpeductl");
                EXPECT_STR(jget(l->e[0], "TCPEDU_STATE_SOURCE"), "kernel");
                JList *ctlog = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", d->pid), "TCPEDU_EVENT=control",
                                            "TCPEDU_CONTROL_COMMAND=kick", NULL);
                REQUIRE_INT(ctlog->n, 1);
                EXPECT_STR(jget(ctlog->e[0], "TCPEDU_CONTROL_UID"), "0");
                EXPECT_STR(jget(ctlog->e[0], "TCPEDU_CONTROL_RESULT"), "ok");
        }

        /* close: FIN first from the daemon, so the client gets EOF and the daemon goes through FIN_WAIT */
        fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        EXPECT_INT(echo_check(fd, "x", 1, IO_TIMEOUT_MS), 0);
        id = conn_id_of(d, fd);
        REQUIRE(id != NULL, "no id");
        REQUIRE_INT(ctl(d, &r, "kick", id, NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_INT(wait_closed(fd, IO_TIMEOUT_MS), 0);
        sock_close(fd);
        if (journal_available("kick close")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("TCPEDU_CONN_ID=%s", id), "TCPEDU_NEW_STATE=TIME_WAIT", NULL);
                EXPECT_INT(l->n, 1);
        }

        /* shutdown: half-close; the daemon still reads what the client sends, no RST */
        fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        EXPECT_INT(echo_check(fd, "x", 1, IO_TIMEOUT_MS), 0);
        id = conn_id_of(d, fd);
        REQUIRE(id != NULL, "no id");
        REQUIRE_INT(ctl(d, &r, "kick", id, "--how=shutdown", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_INT(wait_closed(fd, IO_TIMEOUT_MS), 0);
        EXPECT_INT(send_all(fd, "still here", 10, IO_TIMEOUT_MS), 0);
        REQUIRE_INT(ctl(d, &r, "--json", "conn", id, NULL), 0);
        json_object *o = parse_json(r.out);
        EXPECT_STR(jstr_path(o, "state"), "FIN_WAIT_2");
        EXPECT_STR(jstr_path(o, "bytes_in"), "11");
        json_object_put(o);
        EXPECT_INT(close_graceful(fd), 0);

        REQUIRE_INT(ctl(d, &r, "kick", id, "--how", "sideways", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        REQUIRE_INT(ctl(d, &r, "kick", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_reload(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        REQUIRE_INT(write_file(d->conf_path, server_config(name, "max_clients = 7\n")), 0);
        REQUIRE_INT(ctl(d, &r, "reload", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_STR(r.out, tstr("reloaded %s: changed %s\n", d->conf_path, name));

        REQUIRE_INT(write_file(d->conf_path, server_config(name, "max_clients = 7\nbogus = 1\n")), 0);
        REQUIRE_INT(ctl(d, &r, "reload", NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT(strstr(r.err, tstr("%s:5: unknown key 'bogus' in [server]", d->conf_path)) != NULL, "stderr: %s", r.err);
        EXPECT(strstr(r.err, "configuration rejected") != NULL, "stderr: %s", r.err);
        expect_echo(&a);

        REQUIRE_INT(ctl(d, &r, "--json", "reload", NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_monitor(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;
        char peer[ADDR_STR_MAX];

        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        const char *out = tstr("%s/monitor.out", d->dir);
        int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(ofd >= 0, "open %s", out);
        pid_t pid = fork();
        if (pid == 0) {
                dup2(ofd, STDOUT_FILENO);
                execl(TCPEDUCTL_PATH, TCPEDUCTL_PATH, "-s", control_socket(d), "--json", "monitor", "--server", name, (char *)NULL);
                _exit(127);
        }
        close(ofd);
        REQUIRE(pid > 0, "fork");

        /* wait until the daemon counts the monitor, instead of sleeping */
        bool subscribed = false;
        for (uint64_t end = now_ms() + 10000; !subscribed && now_ms() < end;) {
                if (ctl(d, &r, "stats", NULL) == 0 && strstr(r.out, "control_monitors=1\n"))
                        subscribed = true;
        }
        EXPECT(subscribed, "monitor never subscribed");

        int fd = tcp_connect(&a, NULL);
        EXPECT(fd >= 0, "connect");
        sock_local(fd, peer, sizeof(peer));
        EXPECT_INT(echo_check(fd, "m", 1, IO_TIMEOUT_MS), 0);
        EXPECT_INT(close_graceful(fd), 0);

        char *text = NULL;
        for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
                text = read_file_text(out);
                if (text && strstr(text, "LAST_ACK -> CLOSED") && strstr(text, "\"event\":\"disconnect\""))
                        break;
                struct pollfd none = { .fd = -1 };
                poll(&none, 0, 20);
        }
        kill(pid, SIGINT);
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "monitor exit status %d", status);
        REQUIRE(text != NULL, "no monitor output");

        /* one JSON object per line, our connection's events in order */
        static const char *const expected[] = { "connect",
                                                "LISTEN -> SYN_RECEIVED",
                                                "SYN_RECEIVED -> ESTABLISHED",
                                                "ESTABLISHED -> CLOSE_WAIT",
                                                "CLOSE_WAIT -> LAST_ACK",
                                                "LAST_ACK -> CLOSED",
                                                "disconnect" };
        size_t next = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                json_object *e = parse_json(line);
                if (!e)
                        continue;
                const char *p = jstr_path(e, "peer"), *ev = jstr_path(e, "event"), *msg = jstr_path(e, "message");
                EXPECT_STR(jstr_path(e, "server"), name);
                if (p && strcmp(p, peer) == 0 && next < ELEMENTSOF_(expected) && ev && msg &&
                    (strcmp(ev, expected[next]) == 0 || strstr(msg, expected[next])))
                        next++;
                json_object_put(e);
        }
        EXPECT_INT(next, ELEMENTSOF_(expected));
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_misc_verbs(void) {
        Daemon *d = daemon_start(server_config(unique_name("ctl"), NULL), NULL);
        RunResult r;

        REQUIRE_INT(ctl(d, &r, "stats", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "\nconnections=0\n") && strstr(r.out, "\nlog_dropped_queue_full=") && strstr(r.out, "\ntransitions="),
               "stats: %s", r.out);
        REQUIRE_INT(ctl(d, &r, "--json", "stats", NULL), 0);
        json_object_put(parse_json(r.out));

        REQUIRE_INT(ctl(d, &r, "log-level", "debug", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT_STR(r.out, "log level: debug (was info)\n");
        REQUIRE_INT(ctl(d, &r, "log-level", "loud", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        EXPECT(strstr(r.err, "invalid level 'loud'") != NULL, "stderr: %s", r.err);

        REQUIRE_INT(ctl(d, &r, "no-such-verb", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        REQUIRE_INT(ctl(d, &r, "status", "extra", NULL), 0);
        EXPECT_INT(r.exit_code, 64);
        REQUIRE_INT(ctl(d, &r, "status", "--help", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "Usage: tcpeductl [OPTIONS] status") != NULL, "help: %s", r.out);
        EXPECT_INT(daemon_stop(d), 0);

        const char *const help[] = { TCPEDUCTL_PATH, "--help", NULL };
        REQUIRE_INT(run_capture(help, CTL_TIMEOUT_MS, &r), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "Usage: tcpeductl") && strstr(r.out, "monitor"), "help: %s", r.out);
        const char *const version[] = { TCPEDUCTL_PATH, "--version", NULL };
        REQUIRE_INT(run_capture(version, CTL_TIMEOUT_MS, &r), 0);
        EXPECT_STR(r.out, "tcpeductl 0.1.0 (control protocol 1)\n");
        const char *const bad[] = { TCPEDUCTL_PATH, "--bogus", NULL };
        REQUIRE_INT(run_capture(bad, CTL_TIMEOUT_MS, &r), 0);
        EXPECT_INT(r.exit_code, 64);

        /* no daemon: 69, naming the path tried */
        const char *nowhere = tstr("%s/nowhere.sock", harness_tmpdir());
        REQUIRE_INT(ctl_socket(nowhere, &r, "status", NULL), 0);
        EXPECT_INT(r.exit_code, 69);
        EXPECT(strstr(r.err, nowhere) != NULL, "stderr: %s", r.err);

        /* explain needs no daemon */
        REQUIRE_INT(ctl_socket(nowhere, &r, "explain", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "TIME_WAIT") && strstr(r.out, "FIN_WAIT_2") && strstr(r.out, "SYN_SENT"), "diagram: %s", r.out);
        const char *const explain_one[] = { TCPEDUCTL_PATH, "explain", "fin-wait-2", NULL };
        REQUIRE_INT(run_capture(explain_one, CTL_TIMEOUT_MS, &r), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strncmp(r.out, "FIN_WAIT_2\n", 11) == 0 && strstr(r.out, "Entered from:") && strstr(r.out, "TIME_WAIT "), "explain: %s",
               r.out);
        const char *const explain_bad[] = { TCPEDUCTL_PATH, "explain", "HALF_OPEN", NULL };
        REQUIRE_INT(run_capture(explain_bad, CTL_TIMEOUT_MS, &r), 0);
        EXPECT_INT(r.exit_code, 64);
}

/* Make the daemon's directory reachable for other users and put a copy of tcpeductl in it: the
 * build tree may sit below a directory only root can enter. */
static const char *open_up(Daemon *d) {
        for (char *p = tstr("%s", d->dir); strlen(p) > 4; *strrchr(p, '/') = 0)
                (void)chmod(p, 0755);
        const char *copy = tstr("%s/tcpeductl", d->dir);
        const char *const cp[] = { "/bin/cp", TCPEDUCTL_PATH, copy, NULL };
        RunResult r;
        EXPECT(run_capture(cp, CTL_TIMEOUT_MS, &r) == 0 && r.exit_code == 0, "cp tcpeductl");
        (void)chmod(copy, 0755);
        return copy;
}

static int ctl_as_nobody(Daemon *d, const char *ctl_copy, const char *group, RunResult *r, const char *verb, const char *arg) {
        const char *argv[] = { "/usr/bin/setpriv",
                               "--reuid=nobody",
                               tstr("--regid=%s", group),
                               "--clear-groups",
                               ctl_copy,
                               "-s",
                               control_socket(d),
                               verb,
                               arg,
                               NULL };
        return run_capture(argv, CTL_TIMEOUT_MS, r);
}

static void test_unprivileged(void) {
        const char *name = unique_name("ctl");
        Daemon *d = daemon_start(server_config(name, NULL), NULL);
        RunResult r;
        Addr a;

        const char *copy = open_up(d);
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        char *id = conn_id_of(d, fd);
        REQUIRE(id != NULL, "no id");

        REQUIRE_INT(ctl_as_nobody(d, copy, "nogroup", &r, "status", NULL), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, name) != NULL, "read-only status: %s %s", r.out, r.err);
        REQUIRE_INT(ctl_as_nobody(d, copy, "nogroup", &r, "connections", NULL), 0);
        EXPECT_INT(r.exit_code, 0);

        static const struct {
                const char *verb;
                bool takes_id;
        } denied[] = { { "stop", false }, { "start", false }, { "restart", false }, { "kick", true }, { "reload", false } };
        for (size_t i = 0; i < ELEMENTSOF_(denied); i++) {
                const char *arg = denied[i].takes_id ? id : strcmp(denied[i].verb, "reload") == 0 ? NULL : name;
                REQUIRE_INT(ctl_as_nobody(d, copy, "nogroup", &r, denied[i].verb, arg), 0);
                EXPECT(r.exit_code == 77, "%s as nobody: exit %d, stderr %s", denied[i].verb, r.exit_code, r.err);
                EXPECT(strstr(r.err, "needs root") != NULL, "%s: %s", denied[i].verb, r.err);
        }
        REQUIRE_INT(ctl_as_nobody(d, copy, "nogroup", &r, "log-level", "debug"), 0);
        EXPECT_INT(r.exit_code, 77);
        /* nothing changed: the connection still echoes */
        EXPECT_INT(echo_check(fd, "ok", 2, IO_TIMEOUT_MS), 0);
        EXPECT_INT(close_graceful(fd), 0);
        if (journal_available("refused control command")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", d->pid), "TCPEDU_CONTROL_COMMAND=stop", NULL);
                REQUIRE_INT(l->n, 1);
                EXPECT_STR(jget(l->e[0], "TCPEDU_CONTROL_RESULT"), "permission denied");
                EXPECT_STR(jget(l->e[0], "TCPEDU_CONTROL_UID"), "65534");
        }
        EXPECT_INT(daemon_stop(d), 0);

        /* a member of admin_group may change things */
        d = daemon_start(tstr("[daemon]\nadmin_group = nogroup\n%s", server_config(name, NULL)), NULL);
        copy = open_up(d);
        REQUIRE_INT(ctl_as_nobody(d, copy, "nogroup", &r, "stop", name), 0);
        EXPECT(r.exit_code == 0, "stop as admin_group member: exit %d, %s", r.exit_code, r.err);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- the control socket under bad input ---- */

static int raw_connect(Daemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_socket(d));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        return fd;
}

/* Read one line (the greeting or a reply) with a timeout. */
static char *raw_line(int fd) {
        char buf[8192];
        size_t len = 0;
        while (len < sizeof(buf) - 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
                        return NULL;
                ssize_t n = recv(fd, buf + len, 1, 0);
                if (n <= 0)
                        return NULL;
                if (buf[len] == '\n') {
                        buf[len] = 0;
                        return tstr("%s", buf);
                }
                len++;
        }
        return NULL;
}

static const char *raw_ask(int fd, const char *request) {
        if (send_all(fd, request, strlen(request), IO_TIMEOUT_MS) < 0)
                return NULL;
        return raw_line(fd);
}

static void expect_alive(Daemon *d, const Addr *a) {
        RunResult r;
        EXPECT(ctl(d, &r, "status", NULL) == 0 && r.exit_code == 0, "status after bad input: %d %s", r.exit_code, r.err);
        expect_echo(a);
}

static void test_bad_input(void) {
        Daemon *d = daemon_start(server_config(unique_name("ctl"), NULL), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");

        int fd = raw_connect(d);
        REQUIRE(fd >= 0, "connect control socket");
        EXPECT_STR(raw_line(fd), "{\"tcpedu\":\"control\",\"protocol\":1,\"version\":\"0.1.0\"}");
        EXPECT_STR(raw_ask(fd, "{not json\n"),
                   "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"request is not a JSON object\"}}");
        EXPECT_STR(raw_ask(fd, "{\"id\":1,\"command\":\"frobnicate\"}\n"),
                   "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"unknown-command\",\"message\":\"unknown command 'frobnicate'\"}}");
        EXPECT_STR(raw_ask(fd, "{\"id\":2,\"command\":\"show\",\"args\":{\"server\":42}}\n"),
                   "{\"id\":2,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"\\\"server\\\" must be a string\"}}");
        EXPECT_STR(raw_ask(fd, "{\"id\":3,\"command\":\"kick\",\"args\":{\"id\":[]}}\n"),
                   "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"\\\"id\\\" must be a string\"}}");
        EXPECT_STR(raw_ask(fd, "{\"id\":\"four\",\"command\":\"status\"}\n"),
                   "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"\\\"id\\\" must be a non-negative "
                   "integer\"}}");
        expect_alive(d, &a);

        /* a line over 64 KiB: one error, the rest of the line skipped, the connection still usable */
        size_t big = 100 * 1024;
        char *line = malloc(big + 2);
        REQUIRE(line != NULL, "malloc");
        memset(line, 'x', big);
        line[big] = '\n';
        line[big + 1] = 0;
        EXPECT_INT(send_all(fd, line, big + 1, IO_TIMEOUT_MS), 0);
        free(line);
        EXPECT_STR(raw_line(fd),
                   "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"request line longer than 65536 bytes\"}}");
        const char *ok = raw_ask(fd, "{\"id\":9,\"command\":\"stats\"}\n");
        EXPECT(ok && strncmp(ok, "{\"id\":9,\"ok\":true", 17) == 0, "after long line: %s", ok ? ok : "(none)");
        expect_alive(d, &a);

        /* a client that says nothing, and one that never reads its replies */
        int silent = raw_connect(d);
        EXPECT(silent >= 0, "silent client");
        int deaf = raw_connect(d);
        EXPECT(deaf >= 0, "deaf client");
        if (deaf >= 0) {
                fcntl(deaf, F_SETFL, O_NONBLOCK);
                const char *req = "{\"id\":1,\"command\":\"servers\"}\n";
                for (int i = 0; i < 100000; i++)
                        if (send(deaf, req, strlen(req), MSG_NOSIGNAL) < 0)
                                break;
        }
        expect_alive(d, &a);

        /* 100 clients at once: every one gets its answer */
        int many[100];
        for (int i = 0; i < 100; i++) {
                many[i] = raw_connect(d);
                EXPECT(many[i] >= 0, "client %d", i);
        }
        for (int i = 0; i < 100; i++)
                if (many[i] >= 0) {
                        EXPECT(raw_line(many[i]) != NULL, "greeting %d", i);
                        const char *rep = raw_ask(many[i], tstr("{\"id\":%d,\"command\":\"status\"}\n", i));
                        EXPECT(rep && strncmp(rep, tstr("{\"id\":%d,\"ok\":true", i), strlen(tstr("{\"id\":%d,\"ok\":true", i))) == 0,
                               "client %d: %s", i, rep ? rep : "(none)");
                }
        for (int i = 0; i < 100; i++)
                if (many[i] >= 0)
                        close(many[i]);
        expect_alive(d, &a);
        if (silent >= 0)
                close(silent);
        if (deaf >= 0)
                close(deaf);
        close(fd);
        expect_alive(d, &a);
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "status, servers, show", test_status_servers_show },
                { "start, stop, restart", test_start_stop_restart },
                { "connections and conn", test_connections_and_conn },
                { "kick: reset, close, shutdown", test_kick },
                { "reload applied and rejected", test_reload },
                { "monitor sees a connection", test_monitor },
                { "stats, log-level, help, exit codes, explain", test_misc_verbs },
                { "unprivileged users read only", test_unprivileged },
                { "bad input on the control socket", test_bad_input },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                HARNESS_SUITE("tcpeductl", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
