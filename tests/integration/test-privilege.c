/* SPDX-License-Identifier: MIT */
/* Privileges: tcpedud started as root binds its listeners and creates its control socket, then
 * runs as [daemon] user and group with no capability. What a user sees: the ids and capabilities
 * in /proc/PID/status, the control socket's owner and mode, tcpeductl status, echo, the journal
 * (entries written by the journal thread after the switch carry the new uid), sock_diag still
 * seeing TIME_WAIT, a reload that cannot bind a port below 1024 and a plug-in the user could
 * replace both refused. Needs root; a test user and group are made with useradd and removed. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "journal-check.h"
#include "test-util.h"

static char created_user[40], created_group[40];

static void teardown(void) {
        RunResult r;
        if (created_user[0]) {
                const char *argv[] = { "/usr/sbin/userdel", created_user, NULL };
                if (run_capture(argv, 30000, &r) < 0 || r.exit_code != 0)
                        printf("\n    could not remove test user %s: %s\n", created_user, r.err ? r.err : "");
                created_user[0] = 0;
        }
        if (created_group[0]) {
                const char *argv[] = { "/usr/sbin/groupdel", created_group, NULL };
                if (run_capture(argv, 30000, &r) < 0 || r.exit_code != 0)
                        printf("\n    could not remove test group %s: %s\n", created_group, r.err ? r.err : "");
                created_group[0] = 0;
        }
        harness_teardown();
}

static bool need_root(const char *test) {
        if (geteuid() == 0)
                return true;
        printf("\n    SKIPPED %s: not root, so there are no privileges to give up\n", test);
        return false;
}

static json_object *status_json(const char *sock) {
        RunResult r;
        if (ctl_socket(sock, &r, "status", "--json", NULL) < 0 || r.exit_code != 0) {
                EXPECT(false, "tcpeductl status: exit %d: %s", r.exit_code, r.err ? r.err : "");
                return NULL;
        }
        json_object *o = json_tokener_parse(r.out);
        EXPECT(o != NULL, "status is not JSON: %s", r.out);
        return o;
}

static long jint(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? (long)json_object_get_int64(v) : -1;
}

static const char *jstring(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A line of /proc/PID/status, without its name and leading blanks ("65534\t65534\t..."). */
static const char *status_field(Daemon *d, const char *name) {
        char *s = read_file_text(tstr("/proc/%d/status", (int)d->pid));
        char *key = tstr("\n%s:", name);
        char *p = s ? strstr(s, key) : NULL;
        if (!p)
                return NULL;
        p += strlen(key);
        p += strspn(p, " \t");
        size_t n = strcspn(p, "\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        return tstr("%.*s", (int)n, p);
}

static void expect_ids(Daemon *d, uid_t uid, gid_t gid, const char *groups) {
        const char *u = tstr("%u\t%u\t%u\t%u", uid, uid, uid, uid), *g = tstr("%u\t%u\t%u\t%u", gid, gid, gid, gid);
        EXPECT_STR(status_field(d, "Uid"), u);
        EXPECT_STR(status_field(d, "Gid"), g);
        if (groups)
                EXPECT_STR(status_field(d, "Groups"), groups);
        /* nothing kept, nothing to regain */
        EXPECT_STR(status_field(d, "CapInh"), "0000000000000000");
        EXPECT_STR(status_field(d, "CapPrm"), "0000000000000000");
        EXPECT_STR(status_field(d, "CapEff"), "0000000000000000");
        EXPECT_STR(status_field(d, "CapAmb"), "0000000000000000");
        EXPECT_STR(status_field(d, "NoNewPrivs"), "1");
}

static void expect_echo(const Addr *a, const char *what) {
        int fd = tcp_connect(a, NULL);
        EXPECT(fd >= 0, "%s: connect: %s", what, strerror(-fd));
        if (fd < 0)
                return;
        EXPECT(echo_check(fd, "ping\n", 5, IO_TIMEOUT_MS) == 0, "%s: no echo", what);
        EXPECT_INT(close_graceful(fd), 0);
}

/* A port below 1024 on 127.0.0.1 that nothing listens on (root may bind it: the test is root). */
static int free_low_port(void) {
        for (int port = 1023; port > 900; port--) {
                Addr a;
                addr_parse_ip("127.0.0.1", (uint16_t)port, &a);
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                bool ok = fd >= 0 && bind(fd, &a.sa, sizeof(a.in)) == 0;
                if (fd >= 0)
                        close(fd);
                if (ok)
                        return port;
        }
        return -1;
}

/* A copy of the reverse.so example plug-in in a fresh directory (root, 0755), owned by uid. */
static const char *plugin_copy(uid_t uid) {
        const char *dir = harness_tmpdir();
        REQUIRE(dir && chmod(dir, 0755) == 0, "temp dir");
        const char *path = tstr("%s/reverse.so", dir);
        const char *argv[] = { "/bin/cp", HANDLERS_DIR "/reverse.so", path, NULL };
        RunResult r;
        REQUIRE(run_capture(argv, 10000, &r) == 0 && r.exit_code == 0, "cp: %s", r.err ? r.err : "");
        REQUIRE(chown(path, uid, 0) == 0 && chmod(path, 0644) == 0, "chown %s: %m", path);
        return path;
}

static void test_drop_to_nobody(void) {
        if (!need_root("the switch to nobody"))
                return;
        struct passwd *pw = getpwnam("nobody");
        REQUIRE(pw != NULL, "no user nobody");
        uid_t nobody = pw->pw_uid;
        gid_t nogroup = pw->pw_gid;

        /* The control socket in a directory the daemon creates: it is given to the daemon's user,
         * who can then remove the socket at exit. */
        const char *sockdir = harness_tmpdir();
        REQUIRE(sockdir && chmod(sockdir, 0755) == 0, "temp dir");
        const char *sock = tstr("%s/run/control.sock", sockdir);
        const char *name = unique_name("priv"), *idle = unique_name("prividle");
        const char *config = tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n\n"
                                  "[server %s]\ntype = echo\nlisten = 127.0.0.2:0\nidle_timeout = 1\n",
                                  name, idle);
        Daemon *d = daemon_start(
                config, &(DaemonOptions){ .open_dir = true, .dropin = tstr("[daemon]\ncontrol_socket = %s\nuser = nobody\n", sock) });
        Addr a, b;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a) && daemon_listener(d, "127.0.0.2", &b), "listeners");

        expect_ids(d, nobody, nogroup, tstr("%u", nogroup));

        struct stat st;
        REQUIRE(stat(sock, &st) == 0, "control socket %s: %m", sock);
        EXPECT(S_ISSOCK(st.st_mode), "%s is not a socket", sock);
        EXPECT_INT(st.st_uid, nobody);
        EXPECT_INT(st.st_gid, nogroup);
        EXPECT_INT(st.st_mode & 07777, 0666);
        REQUIRE(stat(tstr("%s/run", sockdir), &st) == 0, "socket directory");
        EXPECT_INT(st.st_uid, nobody);
        EXPECT_INT(st.st_mode & 07777, 0755);

        json_object *o = status_json(sock);
        EXPECT_STR(jstring(o, "user"), "nobody");
        EXPECT_INT(jint(o, "uid"), nobody);
        EXPECT_INT(jint(o, "gid"), nogroup);
        json_object_put(o);
        expect_echo(&a, "echo after the switch");
        RunResult rs;
        REQUIRE_INT(ctl_socket(sock, &rs, "status", NULL), 0);
        EXPECT(strstr(rs.out, tstr("\nuser:         nobody (uid %u), group nogroup (gid %u)\n", nobody, nogroup)) != NULL,
               "tcpeductl status: %s", rs.out);

        /* The daemon closes first: its TIME_WAIT is seen by sock_diag, unprivileged. */
        char peer[ADDR_STR_MAX], local[ADDR_STR_MAX];
        int fd = tcp_connect(&b, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        sock_local(fd, peer, sizeof(peer));
        addr_format(&b, local, sizeof(local));
        EXPECT_INT(wait_closed(fd, 5000), 0);
        sock_close(fd);

        /* Changes as root still work: kick needs an admin, and root is one. */
        int k = tcp_connect(&a, NULL);
        REQUIRE(k >= 0, "connect");
        RunResult r;
        REQUIRE_INT(ctl_socket(sock, &r, "--json", "connections", NULL), 0);
        json_object *conns = json_tokener_parse(r.out), *arr = conns ? json_object_object_get(conns, "connections") : NULL;
        const char *id = NULL;
        char kl[ADDR_STR_MAX];
        sock_local(k, kl, sizeof(kl));
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *c = json_object_array_get_idx(arr, i);
                if (jstring(c, "peer") && strcmp(jstring(c, "peer"), kl) == 0)
                        id = tstr("%s", jstring(c, "id"));
        }
        json_object_put(conns);
        REQUIRE(id != NULL, "connection %s not listed: %s", kl, r.out);
        REQUIRE_INT(ctl_socket(sock, &r, "kick", id, "--how", "reset", NULL), 0);
        EXPECT(r.exit_code == 0, "kick: exit %d: %s", r.exit_code, r.err);
        EXPECT_INT(wait_closed(k, IO_TIMEOUT_MS), -ECONNRESET);
        sock_close(k);

        /* A reload reads the files as nobody: an unchanged config is accepted. */
        REQUIRE_INT(ctl_socket(sock, &r, "reload", NULL), 0);
        EXPECT(r.exit_code == 0, "reload as nobody: exit %d: %s", r.exit_code, r.err);

        /* A plug-in owned by root and loaded at the first connection, after the switch. */
        const char *good = plugin_copy(0), *bad = plugin_copy(nobody);
        const char *enh = unique_name("privenh");
        const char *with_plugin = tstr("%s\n[server %s]\ntype = enhanced\nlisten = 127.0.0.3:0\nhandler = %s\n", config, enh, good);
        REQUIRE_INT(write_file(d->conf_path, with_plugin), 0);
        REQUIRE_INT(ctl_socket(sock, &r, "reload", NULL), 0);
        EXPECT(r.exit_code == 0, "reload with a root-owned plug-in: exit %d: %s", r.exit_code, r.err);
        Addr e;
        REQUIRE(daemon_listener(d, "127.0.0.3", &e), "no listener of the plug-in's server");
        fd = tcp_connect(&e, NULL);
        REQUIRE(fd >= 0, "connect");
        char buf[6];
        EXPECT_INT(send_all(fd, "hello\n", 6, IO_TIMEOUT_MS), 0);
        EXPECT_INT(recv_exact(fd, buf, 6, IO_TIMEOUT_MS), 0);
        EXPECT(memcmp(buf, "olleh\n", 6) == 0, "the plug-in answered '%.6s'", buf);
        EXPECT_INT(close_graceful(fd), 0);

        /* ... and one its user could replace is refused, though the daemon is not root any more. */
        REQUIRE_INT(
                write_file(d->conf_path, tstr("%s\n[server %s]\ntype = enhanced\nlisten = 127.0.0.3:0\nhandler = %s\n", config, enh, bad)),
                0);
        REQUIRE_INT(ctl_socket(sock, &r, "reload", NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        const char *want =
                tstr("handler '%s': refusing a plug-in that is not owned by root or is writable by others while started as root", bad);
        EXPECT(strstr(r.err, want) != NULL, "reload with a plug-in owned by nobody: %s", r.err);

        /* A port below 1024 cannot be bound any more: the reload is rejected and says why. */
        int port = free_low_port();
        if (port > 0) {
                REQUIRE_INT(write_file(d->conf_path,
                                       tstr("%s\n[server %s-low]\ntype = echo\nlisten = 127.0.0.1:%d\n", with_plugin, name, port)),
                            0);
                REQUIRE_INT(ctl_socket(sock, &r, "reload", NULL), 0);
                EXPECT_INT(r.exit_code, 78);
                EXPECT(strstr(r.err,
                              tstr("cannot listen on 127.0.0.1:%d: Permission denied (a port below 1024: tcpedud gave up root", port)),
                       "reload with port %d: %s", port, r.err);
        } else
                printf("\n    no free port below 1024 on 127.0.0.1: the low-port reload is not tried\n");
        expect_echo(&a, "echo after the rejected reloads");

        if (journal_available("the switch to nobody")) {
                const char *pid = tstr("_PID=%d", (int)d->pid);
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, pid,
                                        "MESSAGE=running as user nobody (uid 65534), group nogroup (gid 65534), without capabilities: a "
                                        "reload cannot bind ports below 1024",
                                        NULL);
                EXPECT_INT(l->n, 1);
                if (l->n == 1)
                        EXPECT_STR(jget(l->e[0], "_UID"), tstr("%u", nobody));
                /* every connection entry comes from the journal thread, running as nobody too (the listeners
                 * were logged before the switch) */
                l = journal_wait(1, JOURNAL_TIMEOUT_MS, pid, "TCPEDU_EVENT=transition", "TCPEDU_ROLE=server",
                                 tstr("TCPEDU_SERVER=%s", name), NULL);
                EXPECT(l->n >= 1, "no transition of server %s", name);
                for (size_t i = 0; i < l->n; i++)
                        EXPECT_STR(jget(l->e[i], "_UID"), tstr("%u", nobody));
                ConnRef ref = { .d = d, .server = idle, .peer = peer, .local = local };
                check_daemon_first_path(&ref, "idle timeout", 0);
        }

        EXPECT_INT(daemon_stop(d), 0);
        /* the daemon's user removed its socket */
        EXPECT(access(sock, F_OK) < 0 && errno == ENOENT, "control socket %s still there after the daemon stopped", sock);
}

/* useradd and groupadd for a user of its own and a group that is not its primary one. */
static void test_test_user_and_group(void) {
        if (!need_root("the switch to a test user"))
                return;
        if (access("/usr/sbin/useradd", X_OK) < 0 || access("/usr/sbin/groupadd", X_OK) < 0) {
                printf("\n    SKIPPED: no useradd or groupadd\n");
                return;
        }
        const char *suffix = unique_name("t") + 2;
        snprintf(created_group, sizeof(created_group), "tcpedug%s", suffix);
        RunResult r;
        const char *gargv[] = { "/usr/sbin/groupadd", "--system", created_group, NULL };
        REQUIRE(run_capture(gargv, 30000, &r) == 0 && r.exit_code == 0, "groupadd: %s", r.err ? r.err : "");
        const char *user = tstr("tcpeduu%s", suffix);
        const char *uargv[] = { "/usr/sbin/useradd", "--system",          "--no-create-home", "--home-dir", "/nonexistent",
                                "--shell",           "/usr/sbin/nologin", "--user-group",     user,         NULL };
        REQUIRE(run_capture(uargv, 30000, &r) == 0 && r.exit_code == 0, "useradd: %s", r.err ? r.err : "");
        snprintf(created_user, sizeof(created_user), "%s", user);
        struct passwd *pw = getpwnam(user);
        struct group *gr = getgrnam(created_group);
        REQUIRE(pw && gr, "the new user or group cannot be looked up");
        uid_t uid = pw->pw_uid;
        gid_t gid = gr->gr_gid;
        REQUIRE(pw->pw_gid != gid, "the user's primary group is the test group");

        const char *name = unique_name("privu");
        const char *sockdir = harness_tmpdir();
        REQUIRE(sockdir && chmod(sockdir, 0755) == 0, "temp dir");
        const char *sock = tstr("%s/run/control.sock", sockdir);
        Daemon *d = daemon_start(
                tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", name),
                &(DaemonOptions){ .open_dir = true,
                                  .dropin = tstr("[daemon]\ncontrol_socket = %s\nuser = %s\ngroup = %s\n", sock, user, created_group) });
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        /* the group asked for, and no other: the user is a member of nothing else */
        expect_ids(d, uid, gid, tstr("%u", gid));
        struct stat st;
        REQUIRE(stat(sock, &st) == 0, "control socket: %m");
        EXPECT_INT(st.st_uid, uid);
        EXPECT_INT(st.st_gid, gid);
        json_object *o = status_json(sock);
        EXPECT_STR(jstring(o, "user"), user);
        EXPECT_STR(jstring(o, "group"), created_group);
        json_object_put(o);
        expect_echo(&a, "echo as the test user");
        EXPECT_INT(daemon_stop(d), 0);
}

/* With user empty: tcpedu if it exists, else root and a warning. */
static void test_default_user(void) {
        if (!need_root("the default user"))
                return;
        struct passwd *pw = getpwnam("tcpedu");
        uid_t want = pw ? pw->pw_uid : 0;
        const char *sockdir = harness_tmpdir();
        REQUIRE(sockdir && chmod(sockdir, 0755) == 0, "temp dir");
        const char *sock = tstr("%s/control.sock", sockdir);
        Daemon *d = daemon_start(tstr("[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n", unique_name("privd")),
                                 &(DaemonOptions){ .open_dir = true, .dropin = tstr("[daemon]\ncontrol_socket = %s\nuser =\n", sock) });
        REQUIRE(d != NULL, "no daemon");
        EXPECT_STR(status_field(d, "Uid"), tstr("%u\t%u\t%u\t%u", want, want, want, want));
        json_object *o = status_json(sock);
        EXPECT_INT(jint(o, "uid"), want);
        json_object_put(o);
        if (!pw && journal_available("the default user")) {
                JList *l = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid),
                                        "MESSAGE=running as root: there is no user 'tcpedu' to switch to (set [daemon] user, or user = "
                                        "root to stay root without this warning)",
                                        NULL);
                EXPECT_INT(l->n, 1);
                if (l->n == 1)
                        EXPECT_STR(jget(l->e[0], "PRIORITY"), "4");
        }
        EXPECT_INT(daemon_stop(d), 0);
}

/* A user or group that does not exist is a configuration error at its line: exit 78, at start too. */
static void test_unknown_user(void) {
        const char *dir = harness_tmpdir();
        REQUIRE(dir != NULL, "temp dir");
        const char *conf = tstr("%s/u.conf", dir);
        REQUIRE_INT(write_file(conf, "[daemon]\nuser = no-such-user-tcpedu\ngroup = no-such-group-tcpedu\n\n"
                                     "[server e]\ntype = echo\nlisten = 127.0.0.1:0\n"),
                    0);
        RunResult r;
        REQUIRE_INT(run_tcpedud(&r, "--check-config", "-c", conf, NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT_STR(r.err, tstr("%s:2: user 'no-such-user-tcpedu' does not exist\n%s:3: group 'no-such-group-tcpedu' does not exist\n", conf,
                               conf));
        REQUIRE_INT(run_tcpedud(&r, "-c", conf, "--log-target=stderr", NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT(strstr(r.err, tstr("%s:2: user 'no-such-user-tcpedu' does not exist", conf)) != NULL, "stderr: %s", r.err);
}

/* A daemon started by an ordinary user (nobody here, through setpriv) may load that user's own
 * plug-ins and root's, never one that another user owns or that others may write. */
static void test_plugins_unprivileged(void) {
        if (!need_root("plug-ins of an unprivileged daemon") || access("/usr/bin/setpriv", X_OK) < 0)
                return;
        struct {
                const char *what;
                uid_t owner;
                mode_t mode, dir_mode;
                const char *error; /* NULL: accepted */
        } cases[] = {
                { "root's", 0, 0644, 0755, NULL },
                { "its own", 65534, 0644, 0755, NULL },
                { "another user's", 1, 0644, 0755, "refusing a plug-in that is not owned by root or uid 65534, or is writable by others" },
                { "writable by others", 65534, 0666, 0755,
                  "refusing a plug-in that is not owned by root or uid 65534, or is writable by others" },
                { "in a directory others may write", 0, 0644, 0777, "is not owned by root or by this user or is writable by others" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *path = plugin_copy(cases[i].owner);
                REQUIRE(chmod(path, cases[i].mode) == 0, "chmod: %m");
                const char *dir = tstr("%.*s", (int)(strrchr(path, '/') - path), path);
                REQUIRE(chmod(dir, cases[i].dir_mode) == 0, "chmod: %m");
                const char *conf = tstr("%s/p.conf", dir);
                REQUIRE_INT(write_file(conf, tstr("[server x]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = %s\n", path)), 0);
                const char *argv[] = {
                        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TCPEDUD_PATH, "-t", "-c", conf, NULL
                };
                RunResult r;
                REQUIRE_INT(run_capture(argv, 10000, &r), 0);
                if (!cases[i].error)
                        EXPECT(r.exit_code == 0, "%s plug-in, daemon as nobody: exit %d: %s", cases[i].what, r.exit_code, r.err);
                else
                        EXPECT(r.exit_code == 78 && strstr(r.err, cases[i].error) &&
                                       strstr(r.err, tstr("%s:4: handler '%s': ", conf, path)),
                               "%s plug-in, daemon as nobody: exit %d: %s", cases[i].what, r.exit_code, r.err);
        }
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "root: switch to nobody, echo, control socket, journal, sock_diag, reload", test_drop_to_nobody },
                { "root: switch to a test user and group (useradd)", test_test_user_and_group },
                { "root: the default user", test_default_user },
                { "user or group that does not exist", test_unknown_user },
                { "plug-ins of a daemon started by an ordinary user", test_plugins_unprivileged },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "privileges", harness_suite_init, harness_suite_cleanup, harness_setup, teardown, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
