/* SPDX-License-Identifier: MIT */
#pragma once

/* Integration test harness: runs the real tcpedud in a temp dir, waits for sd_notify readiness,
 * finds its listening ports, talks to it over loopback and reads its journal entries back.
 *
 * Everything a test creates (daemons, temp dirs, sockets, journal query results, strings) is
 * registered here and released by harness_teardown(), which every suite installs as its per-test
 * teardown: a failed fatal assertion longjmps out of the test, and nothing may be left behind. */

#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define IO_TIMEOUT_MS 5000
#define JOURNAL_TIMEOUT_MS 10000

#define MID_TRANSITION "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a01"
#define MID_CONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a02"
#define MID_DISCONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a03"
#define MID_REFUSED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a04"
#define MID_SUMMARY "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a05"
#define MID_SERVER_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a07"
#define MID_RELOAD "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a08"
#define MID_RELOAD_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a09"
#define MID_DAEMON_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0c"
#define MID_UNWATCHED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a14"
#define MID_RETRANSMIT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a15"
#define MID_RESET "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a16"
#define MID_KERNEL_SOURCE "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a17"

#define ADDR_STR_MAX 64

/* ---- assertions that say what they saw ---- */

void harness_report(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define CHECK_IMPL(cond, fatal, ...)                                                                                                       \
        do {                                                                                                                               \
                bool ok_ = (cond);                                                                                                         \
                if (!ok_)                                                                                                                  \
                        harness_report(__FILE__, __LINE__, __VA_ARGS__);                                                                   \
                CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "", fatal ? CU_TRUE : CU_FALSE);                                   \
        } while (0)
/* EXPECT records a failure and goes on; REQUIRE ends the test (teardown still cleans up). */
#define EXPECT(cond, ...) CHECK_IMPL(cond, false, __VA_ARGS__)
#define REQUIRE(cond, ...) CHECK_IMPL(cond, true, __VA_ARGS__)
#define EXPECT_STR(actual, expected)                                                                                                       \
        do {                                                                                                                               \
                const char *a_ = (actual), *e_ = (expected);                                                                               \
                EXPECT(a_ &&e_ &&strcmp(a_, e_) == 0, "%s: got '%s', expected '%s'", #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)");     \
        } while (0)
#define EXPECT_INT(actual, expected)                                                                                                       \
        do {                                                                                                                               \
                long long a_ = (long long)(actual), e_ = (long long)(expected);                                                            \
                EXPECT(a_ == e_, "%s: got %lld, expected %lld", #actual, a_, e_);                                                          \
        } while (0)
#define REQUIRE_INT(actual, expected)                                                                                                      \
        do {                                                                                                                               \
                long long a_ = (long long)(actual), e_ = (long long)(expected);                                                            \
                REQUIRE(a_ == e_, "%s: got %lld, expected %lld", #actual, a_, e_);                                                         \
        } while (0)

/* ---- per-test lifecycle and scratch resources ---- */

void harness_setup(void);
void harness_teardown(void);
int harness_suite_init(void);
int harness_suite_cleanup(void);
#define HARNESS_SUITE(name, tests)                                                                                                         \
        { name, harness_suite_init, harness_suite_cleanup, harness_setup, harness_teardown, tests }

/* printf into a string freed at teardown. */
char *tstr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fresh temp dir under /tmp, removed (recursively) at teardown. */
const char *harness_tmpdir(void);
/* A server name no earlier run used: "<base>-<8 random hex digits>". */
char *unique_name(const char *base);
uint64_t now_ms(void);
/* The journal is readable: /run/systemd/journal/socket exists. Otherwise prints why journal
 * assertions are skipped in this test and returns false. */
bool journal_available(const char *test);
int write_file(const char *path, const char *text);
char *read_file_text(const char *path); /* freed at teardown; NULL if unreadable */
/* CONF.d/00-harness.conf: the daemon's control socket in CONF's directory, never the system's
 * (/run/tcpedud/control.sock), so that test daemons never meet each other or a real one. */
int write_harness_dropin(const char *conf_path);

/* ---- addresses ---- */

typedef union Addr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
} Addr;

/* "ADDR:PORT" or "[ADDR]:PORT", as tcpedud writes them. */
char *addr_format(const Addr *a, char *buf, size_t size);
uint16_t addr_port(const Addr *a);
int addr_parse_ip(const char *ip, uint16_t port, Addr *ret);
char *sock_local(int fd, char *buf, size_t size); /* getsockname, formatted */

/* ---- the daemon ---- */

typedef struct Daemon {
        pid_t pid;
        bool reaped;
        int exit_code; /* exit status, or 128 + signal; valid once reaped */
        char *dir; /* its temp dir */
        char *conf_path;
        char *stdout_path, *stderr_path;
        char *notify_path;
        int notify_fd;
        bool journal; /* logs go to the journal (else stderr) */
} Daemon;

typedef struct DaemonOptions {
        const char *log_target; /* NULL: journal when available, else stderr */
        rlim_t nofile; /* RLIMIT_NOFILE for the daemon; 0: inherited */
        const char *dropin; /* written to CONF.d/50-test.conf, after the harness's own drop-in */
        bool open_dir; /* the temp dir (config, notify socket) reachable by every user: for a
                        * daemon that switches from root to another user */
} DaemonOptions;

/* Write config to <tmpdir>/tcpedud.conf (plus the harness drop-in), start tcpedud -c on it and
 * wait for READY=1 (10 s).
 * Returns NULL after a failed assertion when it does not become ready. */
Daemon *daemon_start(const char *config, const DaemonOptions *opts);
/* Wait for a sd_notify line (e.g. "READY=1") in a datagram; 0, -ETIMEDOUT or -ECHILD (exited). */
int daemon_wait_notify(Daemon *d, const char *line, int timeout_ms);
void daemon_drain_notify(Daemon *d);
/* Rewrite the config, SIGHUP, wait for RELOADING=1 then READY=1. 0 or -errno. */
int daemon_reload(Daemon *d, const char *config);
/* True while the process has not exited (reaps it when it has). */
bool daemon_alive(Daemon *d);
int daemon_kill(Daemon *d, int sig);
/* Wait for the exit: its exit code (128 + signal if killed), or -ETIMEDOUT. */
int daemon_wait_exit(Daemon *d, int timeout_ms);
/* SIGTERM, wait up to 10 s (then SIGKILL): the exit code, or -ETIMEDOUT when it had to be killed. */
int daemon_stop(Daemon *d);
/* Listening TCP sockets of the process: /proc/PID/fd inodes against /proc/net/tcp{,6} LISTEN rows. */
int daemon_listeners(Daemon *d, Addr *ret, size_t max);
/* The listener on this IP ("127.0.0.2", "::1"); false if none. */
bool daemon_listener(Daemon *d, const char *ip, Addr *ret);
long daemon_vmrss_kb(Daemon *d);
/* CPU time the process has used (user + system), in milliseconds; -1 if unreadable. */
long daemon_cpu_ms(Daemon *d);
/* Open file descriptors of the process (entries of /proc/PID/fd); -1 if unreadable. */
int daemon_fd_count(Daemon *d);
/* Its open fds as "N=target" words, for a message when a count is off. */
const char *daemon_fd_list(Daemon *d);
/* Raise this process's RLIMIT_NOFILE soft limit to at least n (up to the hard limit): tests that
 * hold many sockets. Returns the new soft limit. */
rlim_t raise_nofile(rlim_t n);
/* A TCP socket as /proc/net/tcp{,6} shows it: Linux's state number (1 ESTABLISHED, 4 FIN_WAIT1,
 * 5 FIN_WAIT2, 6 TIME_WAIT, 8 CLOSE_WAIT, ...) and its queues. */
typedef struct TcpSocketInfo {
        int state;
        unsigned long send_q, recv_q;
} TcpSocketInfo;
/* The socket local_port <-> remote_port (not a listener); false if the kernel has none. */
bool tcp_socket_info(uint16_t local_port, uint16_t remote_port, TcpSocketInfo *ret);
void daemon_print_stderr(Daemon *d);

/* ---- running tcpedud (or any program) to completion ---- */

typedef struct RunResult {
        int exit_code; /* 128 + signal if killed; -1 if it could not run or timed out */
        char *out, *err; /* freed at teardown */
} RunResult;

/* argv[0] is the program; NULL-terminated. Without NOTIFY_SOCKET in the environment. */
int run_capture(const char *const *argv, int timeout_ms, RunResult *ret);
/* tcpedud with these arguments (NULL-terminated). */
int run_tcpedud(RunResult *ret, const char *arg, ...) __attribute__((sentinel));

/* ---- tcpeductl, run to completion (TCPEDUCTL_PATH) ---- */

#define CTL_TIMEOUT_MS 15000

/* DIR/control.sock: where the harness drop-in puts the daemon's control socket. */
const char *control_socket(Daemon *d);
/* TCPEDUCTL_PATH -s SOCKET [OPTION] ARGS... (NULL-terminated; option NULL: none): 0 when it ran,
 * its exit code and output in r; -errno when it could not be run. */
int ctl_socket_v(const char *socket, const char *option, RunResult *r, const char *first, va_list ap);
int ctl_socket(const char *socket, RunResult *r, const char *arg, ...) __attribute__((sentinel));
/* The same against the daemon's own control socket. */
int ctl_v(Daemon *d, RunResult *r, const char *first, va_list ap);
int ctl(Daemon *d, RunResult *r, const char *arg, ...) __attribute__((sentinel));

/* ---- client sockets (non-blocking, close-on-exec, closed at teardown) ---- */

/* Connect (bound to src_ip when not NULL) and wait for the handshake. fd or -errno. */
int tcp_connect(const Addr *to, const char *src_ip);
/* Connect and wait for the daemon to end it. The client's own address goes to local. Returns
 * -ECONNRESET for a reset, 0 for an orderly close, -ETIMEDOUT if the connection stayed open. */
int connect_expect_reset(const Addr *to, const char *src_ip, char *local, size_t size);
/* Start a connect without waiting. fd or -errno. */
int tcp_connect_start(const Addr *to);
void sock_close(int fd);
int send_all(int fd, const void *buf, size_t len, int timeout_ms);
/* 0 when len bytes arrived; -ENODATA on EOF before that, -ETIMEDOUT, or -errno. */
int recv_exact(int fd, void *buf, size_t len, int timeout_ms);
/* Send data while reading its echo; 0 if exactly the same bytes came back, -EBADMSG if not. */
int echo_check(int fd, const void *data, size_t len, int timeout_ms);
/* Wait for the end of the stream: 0 on EOF, -errno (-ECONNRESET for a reset) or -ETIMEDOUT.
 * Data arriving instead is an error: -EPROTO. */
int wait_closed(int fd, int timeout_ms);
/* The client closes first: shutdown(SHUT_WR), wait for the daemon's FIN, close. Result of
 * wait_closed(). Once it returns 0, the daemon has handled the close. */
int close_graceful(int fd);
void fill_pattern(uint8_t *buf, size_t len, uint64_t seed);

/* ---- the journal ---- */

typedef struct JList {
        json_object **e;
        size_t n;
} JList;

/* journalctl -o json with these matches (NULL-terminated "FIELD=value"), in journal order. Never
 * NULL; freed at teardown. */
JList *journal_query(const char *match, ...) __attribute__((sentinel));
/* Repeat the query until at least min entries match, or timeout_ms passes (then: what there is). */
JList *journal_wait(size_t min, int timeout_ms, const char *match, ...) __attribute__((sentinel));
/* A field's value as a string, NULL if absent. */
const char *jget(json_object *e, const char *field);
/* Entries of l whose field equals value (value NULL: field absent). Freed at teardown. */
JList *jfilter(const JList *l, const char *field, const char *value);
void journal_print(const JList *l, const char *title);
