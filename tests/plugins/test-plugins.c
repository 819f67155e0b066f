/* SPDX-License-Identifier: MIT */
/* Handler plug-ins through the real daemon: the two shipped examples answer as documented, and
 * every way a plug-in can be wrong is a configuration error (exit 78, FILE:LINE), never a crash. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "test-util.h"

static char *plugin_config(const char *name, const char *handler) {
        return tstr("[server %s]\ntype = enhanced\nlisten = 127.0.0.1:0\nhandler = %s\nmax_message = 256\n", name, handler);
}

/* Send a request and read back exactly the expected reply. */
static void expect_reply(int fd, const char *request, const char *reply) {
        size_t n = strlen(reply);
        char *got = tstr("%*s", (int)n, "");
        EXPECT_INT(send_all(fd, request, strlen(request), IO_TIMEOUT_MS), 0);
        int r = recv_exact(fd, got, n, IO_TIMEOUT_MS);
        EXPECT(r == 0, "reply to %s: %s", request, strerror(-r));
        if (r == 0)
                EXPECT_STR(got, reply);
}

static void test_reverse(void) {
        Daemon *d = daemon_start(plugin_config(unique_name("rev"), HANDLERS_DIR "/reverse.so"), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        expect_reply(fd, "hello\n", "olleh\n");
        expect_reply(fd, "h\xc3\xa9llo w\xc3\xb6rld\r\n", "dlr\xc3\xb6w oll\xc3\xa9h\n");
        expect_reply(fd, "\n", "\n");
        /* a message over max_message is refused by the daemon, not handed to the plug-in */
        char big[400];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\n';
        EXPECT_INT(send_all(fd, big, sizeof(big), IO_TIMEOUT_MS), 0);
        expect_reply(fd, "", "ERR message too long (max_message is 256 bytes): discarded\n");
        expect_reply(fd, "ab\n", "ba\n");
        EXPECT_INT(close_graceful(fd), 0);

        EXPECT_INT(daemon_stop(d), 0);
}

static void test_kv_state_across_connections(void) {
        const char *name = unique_name("kv");
        Daemon *d = daemon_start(plugin_config(name, HANDLERS_DIR "/kv.so"), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        int one = tcp_connect(&a, NULL), two = tcp_connect(&a, NULL);
        REQUIRE(one >= 0 && two >= 0, "connect");
        expect_reply(one, "SET colour blue\n", "OK\n");
        expect_reply(one, "SET size 10 meters\n", "OK\n");
        expect_reply(two, "GET colour\n", "VALUE blue\n");
        expect_reply(two, "GET size\n", "VALUE 10 meters\n");
        expect_reply(two, "COUNT\n", "COUNT 2\n");
        expect_reply(two, "DEL colour\n", "OK\n");
        expect_reply(one, "GET colour\n", "NOT_FOUND\n");
        expect_reply(one, "FLY away\n", "ERR unknown command (SET, GET, DEL, KEYS, COUNT)\n");
        expect_reply(one, "SET lonely\n", "ERR value required (1-1024 bytes)\n");
        EXPECT_INT(close_graceful(one), 0);
        EXPECT_INT(close_graceful(two), 0);
        /* the store outlives its connections */
        int three = tcp_connect(&a, NULL);
        REQUIRE(three >= 0, "connect");
        expect_reply(three, "KEYS\n", "KEYS size\n");
        EXPECT_INT(close_graceful(three), 0);

        RunResult r;
        const char *const show[] = { TCPEDUCTL_PATH, "-s", tstr("%s/control.sock", d->dir), "--json", "show", name, NULL };
        REQUIRE_INT(run_capture(show, 10000, &r), 0);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(strstr(r.out, "\"plugin\":\"kv\"") && strstr(r.out, "\"handler\":\"" HANDLERS_DIR "/kv.so\""), "show: %s", r.out);
        EXPECT_INT(daemon_stop(d), 0);
}

/* tcpedud -t on a config naming this handler: exit 78 and exactly this error on its line. */
static void expect_refused(const char *handler, const char *message) {
        const char *conf = tstr("%s/refused.conf", harness_tmpdir());
        REQUIRE_INT(write_file(conf, plugin_config("p", handler)), 0);
        RunResult r;
        REQUIRE_INT(run_tcpedud(&r, "-t", "-c", conf, NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT_STR(r.err, tstr("%s:4: %s\n", conf, message));
}

static void test_load_errors(void) {
        expect_refused("/nonexistent/handler.so", "handler '/nonexistent/handler.so': No such file or directory");
        expect_refused(FIXTURES_DIR "/bad-abi.so", "handler '" FIXTURES_DIR "/bad-abi.so': plug-in ABI version 99, this tcpedud speaks 1");
        expect_refused(FIXTURES_DIR "/no-symbol.so", "handler '" FIXTURES_DIR "/no-symbol.so': no tcpedu_handler_get() in it");
        expect_refused(FIXTURES_DIR "/no-message.so", "handler '" FIXTURES_DIR "/no-message.so': no on_message callback");
        expect_refused("relative.so",
                       "invalid value 'relative.so' for 'handler': expected json-commands or the absolute path of a .so plug-in");

        /* not a shared object at all */
        const char *fake = tstr("%s/fake.so", harness_tmpdir());
        REQUIRE_INT(write_file(fake, "not an ELF file\n"), 0);
        chmod(fake, 0644);
        const char *conf = tstr("%s/fake.conf", harness_tmpdir());
        REQUIRE_INT(write_file(conf, plugin_config("p", fake)), 0);
        RunResult r;
        REQUIRE_INT(run_tcpedud(&r, "-t", "-c", conf, NULL), 0);
        EXPECT_INT(r.exit_code, 78);
        EXPECT(strstr(r.err, tstr("%s:4: handler '%s': cannot load: ", conf, fake)) != NULL, "stderr: %s", r.err);

        if (geteuid() != 0)
                return;
        /* writable by others while running as root */
        const char *copy = tstr("%s/copy.so", harness_tmpdir());
        const char *const cp[] = { "/bin/cp", HANDLERS_DIR "/reverse.so", copy, NULL };
        REQUIRE(run_capture(cp, 10000, &r) == 0 && r.exit_code == 0, "cp");
        chmod(copy, 0666);
        expect_refused(
                copy,
                tstr("handler '%s': refusing a plug-in that is not owned by root or is writable by others while running as root", copy));
        /* in a directory others can write to */
        chmod(copy, 0644);
        const char *dir = tstr("%s/open", harness_tmpdir());
        mkdir(dir, 0777);
        chmod(dir, 0777);
        const char *inside = tstr("%s/reverse.so", dir);
        const char *const cp2[] = { "/bin/cp", HANDLERS_DIR "/reverse.so", inside, NULL };
        REQUIRE(run_capture(cp2, 10000, &r) == 0 && r.exit_code == 0, "cp");
        chmod(inside, 0644);
        expect_refused(inside, tstr("handler '%s': refusing a plug-in whose directory %s is not owned by root or is writable by others",
                                    inside, dir));
}

static void test_reload_to_broken_plugin(void) {
        const char *name = unique_name("rev");
        Daemon *d = daemon_start(plugin_config(name, HANDLERS_DIR "/reverse.so"), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        /* the broken config is rejected: the old handler keeps serving */
        REQUIRE_INT(daemon_reload(d, plugin_config(name, FIXTURES_DIR "/bad-abi.so")), 0);
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect");
        expect_reply(fd, "abc\n", "cba\n");
        EXPECT_INT(close_graceful(fd), 0);
        /* a working change of handler replaces the server on the same port */
        REQUIRE_INT(daemon_reload(d, plugin_config(name, HANDLERS_DIR "/kv.so")), 0);
        fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect after reload");
        expect_reply(fd, "COUNT\n", "COUNT 0\n");
        EXPECT_INT(close_graceful(fd), 0);
        EXPECT_INT(daemon_stop(d), 0);
}

static void test_init_failure_refuses_connections(void) {
        Daemon *d = daemon_start(plugin_config(unique_name("bad"), FIXTURES_DIR "/init-fails.so"), NULL);
        Addr a;
        REQUIRE(daemon_listener(d, "127.0.0.1", &a), "no listener");
        /* the server resets its connections (the reset may even beat the end of connect()) */
        char local[ADDR_STR_MAX];
        EXPECT_INT(connect_expect_reset(&a, NULL, local, sizeof(local)), -ECONNRESET);
        EXPECT(daemon_alive(d), "daemon died");
        EXPECT_INT(daemon_stop(d), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "reverse answers lines reversed", test_reverse },
                { "kv keeps state across connections", test_kv_state_across_connections },
                { "broken plug-ins are config errors", test_load_errors },
                { "reload to a broken plug-in is rejected", test_reload_to_broken_plugin },
                { "init failure refuses connections", test_init_failure_refuses_connections },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                HARNESS_SUITE("plug-ins", tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
