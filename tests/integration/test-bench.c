/* SPDX-License-Identifier: MIT */
/* tcpedu-bench smoke runs: every mode for a moment against a tcpedud of our own, checking what the
 * bench verified and counted (exact counts in --count runs), never how fast. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test-util.h"

#define BENCH_TIMEOUT_MS 60000

typedef struct Servers {
        Daemon *d;
        char echo[ADDR_STR_MAX], enhanced[ADDR_STR_MAX], chat[ADDR_STR_MAX];
} Servers;

/* echo on 127.0.0.1, enhanced on 127.0.0.2, chat on 127.0.0.3, all on port 0; every transition logged. */
static bool servers_start(Servers *s) {
        const char *config = tstr("[daemon]\n"
                                  "log_transitions = all\n"
                                  "[server %s]\n"
                                  "type = echo\n"
                                  "listen = 127.0.0.1:0\n"
                                  "[server %s]\n"
                                  "type = enhanced\n"
                                  "listen = 127.0.0.2:0\n"
                                  "[server %s]\n"
                                  "type = chat\n"
                                  "listen = 127.0.0.3:0\n"
                                  "protocol = json\n" /* no dialect timer racing a slow (ASan) daemon */
                                  "max_rate = 0\n",
                                  unique_name("echo"), unique_name("enh"), unique_name("chat"));
        Addr a;
        s->d = daemon_start(config, NULL);
        if (!s->d)
                return false;
        if (!daemon_listener(s->d, "127.0.0.1", &a) || !addr_format(&a, s->echo, sizeof(s->echo)))
                return false;
        if (!daemon_listener(s->d, "127.0.0.2", &a) || !addr_format(&a, s->enhanced, sizeof(s->enhanced)))
                return false;
        if (!daemon_listener(s->d, "127.0.0.3", &a) || !addr_format(&a, s->chat, sizeof(s->chat)))
                return false;
        return true;
}

/* Run tcpedu-bench with --json -q and these arguments; the parsed result (freed at teardown via the
 * returned object's owner: the caller puts it). */
static json_object *bench(int want_exit, const char *const *args) {
        const char *argv[32] = { TCPEDU_BENCH_PATH };
        size_t n = 1;
        for (; args[n - 1] && n < 29; n++)
                argv[n] = args[n - 1];
        argv[n++] = "--json";
        argv[n++] = "-q";
        argv[n] = NULL;
        RunResult r;
        run_capture(argv, BENCH_TIMEOUT_MS, &r);
        EXPECT(r.exit_code == want_exit, "tcpedu-bench %s: exit %d, expected %d; stderr: %s", args[0], r.exit_code, want_exit,
               r.err ? r.err : "");
        json_object *j = r.out ? json_tokener_parse(r.out) : NULL;
        EXPECT(j != NULL, "tcpedu-bench %s: stdout is not JSON: %s", args[0], r.out ? r.out : "(none)");
        return j;
}

static long long jint(json_object *j, const char *key) {
        json_object *v;
        return j && json_object_object_get_ex(j, key, &v) ? json_object_get_int64(v) : -1;
}

static bool jok(json_object *j) {
        json_object *v;
        return j && json_object_object_get_ex(j, "ok", &v) && json_object_get_boolean(v);
}

static void test_echo(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        json_object *j = bench(0, (const char *[]){ "echo", "-n", "2000", "-c", "4", "-p", "4", s.echo, NULL });
        EXPECT(jok(j), "echo: not ok");
        EXPECT_INT(jint(j, "round_trips"), 2000);
        EXPECT_INT(jint(j, "bytes_verified"), 2000 * 1024);
        json_object_put(j);

        /* large messages over two threads */
        j = bench(0, (const char *[]){ "echo", "-n", "40", "-c", "4", "-s", "65536", "-t", "2", s.echo, NULL });
        EXPECT_INT(jint(j, "round_trips"), 40);
        EXPECT_INT(jint(j, "bytes_verified"), 40 * 65536);
        json_object_put(j);

        /* by time: some round trips, every byte checked */
        j = bench(0, (const char *[]){ "echo", "-d", "0.3", "-c", "2", s.echo, NULL });
        EXPECT(jok(j) && jint(j, "round_trips") > 0, "echo -d 0.3: no round trip");
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);
}

static void test_enhanced(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        json_object *j = bench(0, (const char *[]){ "enhanced", "-n", "500", "-c", "2", "-p", "4", "-s", "100", s.enhanced, NULL });
        EXPECT(jok(j), "enhanced: not ok");
        EXPECT_INT(jint(j, "round_trips"), 500);
        EXPECT_INT(jint(j, "bytes_verified"), 500 * 100);
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);
}

static void test_churn(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        json_object *j = bench(0, (const char *[]){ "churn", "-n", "300", "-c", "8", s.echo, NULL });
        EXPECT(jok(j), "churn: not ok");
        EXPECT_INT(jint(j, "connections"), 300);
        EXPECT_INT(jint(j, "failures"), 0);
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);
}

static void test_idle(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        const char *pid = tstr("%d", (int)s.d->pid);
        json_object *j = bench(0, (const char *[]){ "idle", "-c", "300", "-d", "0.3", "--sources", "3", "--rss-pid", pid, s.echo, NULL });
        EXPECT(jok(j), "idle: not ok");
        EXPECT_INT(jint(j, "open"), 300);
        EXPECT_INT(jint(j, "echoed_after_hold"), 300);
        EXPECT_INT(jint(j, "failures"), 0);
        EXPECT(jint(j, "rss_held_kib") > 0, "no RSS read for pid %s", pid);
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);
}

static void test_chat(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        json_object *j = bench(0, (const char *[]){ "chat", "-m", "20", "-b", "2", "-n", "50", "-p", "4", s.chat, NULL });
        EXPECT(jok(j), "chat: not ok");
        EXPECT_INT(jint(j, "messages"), 100);
        EXPECT_INT(jint(j, "deliveries"), 100 * 20);
        json_object_put(j);
        /* a second run in the same room: the first run's history must not confuse it */
        j = bench(0, (const char *[]){ "chat", "-m", "5", "-b", "1", "-n", "10", "-s", "50", s.chat, NULL });
        EXPECT_INT(jint(j, "deliveries"), 50);
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);
}

static void test_failures(void) {
        Servers s;
        REQUIRE(servers_start(&s), "daemon not ready");
        /* the chat server greets a line-mode member: bytes nobody sent come back */
        json_object *j = bench(1, (const char *[]){ "echo", "-n", "10", "-c", "1", s.chat, NULL });
        EXPECT(j && !jok(j), "echo against chat: reported ok");
        json_object_put(j);
        EXPECT_INT(daemon_stop(s.d), 0);

        const char *argv[] = { TCPEDU_BENCH_PATH, "echo", "--pipeline", "0", NULL };
        RunResult r;
        run_capture(argv, BENCH_TIMEOUT_MS, &r);
        EXPECT_INT(r.exit_code, 64);
        const char *help[] = { TCPEDU_BENCH_PATH, "--help", NULL };
        run_capture(help, BENCH_TIMEOUT_MS, &r);
        EXPECT_INT(r.exit_code, 0);
        EXPECT(r.out && strstr(r.out, "Usage: tcpedu-bench MODE"), "--help: %s", r.out ? r.out : "");
}

static CU_TestInfo bench_tests[] = {
        { "echo: counts and verified bytes", test_echo },
        { "enhanced: JSON echo replies", test_enhanced },
        { "churn: connections without failures", test_churn },
        { "idle: connections held and still echoing", test_idle },
        { "chat: every member gets every message in order", test_chat },
        { "a wrong server fails, bad options are usage errors", test_failures },
        CU_TEST_INFO_NULL,
};

int main(void) {
        CU_SuiteInfo suites[] = {
                HARNESS_SUITE("bench", bench_tests),
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
