/* SPDX-License-Identifier: MIT */
/* The eBPF kernel source (kernel_source = auto | bpf) under bad input and faults, as a user sees
 * it: tcpeductl status, the journal, exit codes, and a daemon that stays alive and echoes after
 * each of them.
 * - auto where eBPF loads: source bpf, every step of a connection from the tracepoint;
 * - no CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN (setpriv): auto falls back to tcp_info and says why, bpf
 *   does not start (exit 1, the reason on stderr);
 * - no BTF (/sys/kernel/btf hidden in a mount namespace): the same, bpf a configuration error (78);
 * - a burst of connect+close at about 10,000 a second: every connection's steps a chain (LISTEN
 *   first, each from where the last one went, CLOSED last, bpf until a fall-back and never after),
 *   the counters add up, no BUG;
 * - the ring buffer overflowed while the daemon was stopped (a socket of the test's own on the
 *   daemon's port fills it, then 300 connections to the daemon come and are reset): the events
 *   counted as dropped, a warning, those 300 fall back to TCP_INFO and each fall-back is said;
 * - events for sockets the daemon never had (a socket of the test's own on a watched port):
 *   counted as unmatched, nothing logged.
 * Thousands of connections a second make more journal entries than journald takes: the daemon
 * drops some (log.dropped). A monitor on the control socket gets every event, so the chains are
 * checked on the monitor's events, and on the journal's too when nothing was dropped; what the
 * journal has must be what the monitor got.
 * The exact paths per 4-tuple are test-referee.c's. Root only: exits 77 (skipped) otherwise, and
 * where the eBPF source cannot load on this machine. Runs in a network namespace and with a
 * journald of its own (thousands of connections, no rate limit). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"
#include "harness-private.h"

#define BURST_RATE 10000 /* connections a second */
#define BURST_MS 1000
#define BURST_BACKLOG 16384 /* the whole burst fits in the accept queue while the daemon catches up */
/* The ring overflow: connections reset while the daemon is stopped make 4 events each on its port
 * (LISTEN->SYN_RECV, ->ESTABLISHED, reset received, ->CLOSE), and the ring holds about 3,270
 * (256 KiB of 72-byte events and their 8-byte headers). First a listener of the test's own on the
 * daemon's port fills it (events the daemon reads and nobody claims, no journal entries), then the
 * daemon's own connections come, all of whose events are lost. */
#define FOREIGN_CONNS 1500
#define OWN_CONNS 300
#define RING_EVENTS 3300
#define MAX_INFLIGHT 1024
#define SERVER_PATH "LISTEN SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED"

static const char *setpriv_path;
static uint64_t program_start_usec; /* CLOCK_REALTIME: entries before it are another program's */

/* ---- sockets of a burst: closed at teardown too ---- */

static int burst_fds[MAX_INFLIGHT];
static size_t n_burst_fds;
static int burst_epoll = -1;

static void close_burst_fds(void) {
        for (size_t i = 0; i < n_burst_fds; i++)
                if (burst_fds[i] >= 0)
                        close(burst_fds[i]);
        n_burst_fds = 0;
        if (burst_epoll >= 0)
                close(burst_epoll);
        burst_epoll = -1;
}

static void monitor_stop(void);

static void ks_teardown(void) {
        monitor_stop();
        close_burst_fds();
        faults_teardown();
}

/* ---- the daemon, through a wrapper ---- */

typedef enum RunMode {
        RUN_PLAIN,
        RUN_NO_CAPS, /* setpriv: CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN out of the bounding set */
        RUN_NO_BTF, /* a mount namespace of its own with an empty tmpfs on /sys/kernel/btf */
} RunMode;

/* daemon_start() with a wrapper: the same files, drop-in and notify socket, and the Daemon is the
 * harness's (stopped and freed at teardown). NULL when it exited (or hung) before READY=1: its exit
 * code (-1 if it hung) and stderr in *code and *err. No assertion: usable before the suites run. */
static Daemon *launch(const char *config, RunMode mode, rlim_t nofile, int *code, const char **err) {
        const char *dir = harness_tmpdir();
        Daemon *d = dir ? calloc(1, sizeof(Daemon)) : NULL;
        *code = -1;
        *err = "";
        if (!d || track_daemon(d) < 0) {
                *err = "cannot create a temp dir or a Daemon";
                return NULL;
        }
        d->notify_fd = -1;
        d->dir = strdup(dir);
        if (asprintf(&d->conf_path, "%s/tcpedud.conf", dir) < 0 || asprintf(&d->stdout_path, "%s/stdout", dir) < 0 ||
            asprintf(&d->stderr_path, "%s/stderr", dir) < 0 || asprintf(&d->notify_path, "%s/notify", dir) < 0)
                abort();
        if (write_file(d->conf_path, config) < 0 || write_harness_dropin(d->conf_path) < 0) {
                *err = "cannot write the configuration";
                return NULL;
        }
        d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", d->notify_path);
        if (d->notify_fd < 0 || bind(d->notify_fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
                *err = "cannot make the notify socket";
                return NULL;
        }
        d->journal = access("/run/systemd/journal/socket", F_OK) == 0;
        const char *target = d->journal ? "--log-target=journal" : "--log-target=stderr";
        const char *plain[] = { TCPEDUD_PATH, "-c", d->conf_path, target, NULL };
        const char *wrapped[] = { setpriv_path,
                                  "--inh-caps=-bpf,-perfmon,-sys_admin",
                                  "--bounding-set=-bpf,-perfmon,-sys_admin",
                                  TCPEDUD_PATH,
                                  "-c",
                                  d->conf_path,
                                  target,
                                  NULL };
        const char *const *argv = mode == RUN_NO_CAPS ? wrapped : plain;
        char **env = child_env(tstr("NOTIFY_SOCKET=%s", d->notify_path));
        int out_fd = open(d->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err_fd = open(d->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out_fd < 0 || err_fd < 0) {
                if (out_fd >= 0)
                        close(out_fd);
                if (err_fd >= 0)
                        close(err_fd);
                *err = "cannot create the output files";
                return NULL;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (mode == RUN_NO_BTF && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                                           mount("tmpfs", "/sys/kernel/btf", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0))
                        _exit(124);
                child_exec(argv, env, out_fd, err_fd, nofile);
        }
        close(out_fd);
        close(err_fd);
        if (pid < 0) {
                *err = "fork failed";
                return NULL;
        }
        d->pid = pid;
        (void)setpgid(pid, pid);
        int r = daemon_wait_notify(d, "READY=1", READY_TIMEOUT_MS);
        if (r == 0)
                return d;
        if (r == -ECHILD)
                *code = d->exit_code;
        else {
                (void)kill(-d->pid, SIGKILL);
                (void)daemon_wait_exit(d, STOP_TIMEOUT_MS);
        }
        const char *text = read_file_text(d->stderr_path);
        *err = text ? text : "";
        return NULL;
}

static const char *server_config(const char *kernel_source, const char *name, const char *extra_daemon, const char *extra_server) {
        return tstr("[daemon]\nkernel_source = %s\n%s\n[server %s]\ntype = echo\nlisten = 127.0.0.1:0\n%s", kernel_source,
                    extra_daemon ? extra_daemon : "", name, extra_server ? extra_server : "");
}

static Daemon *start_at(const char *file, int line, const char *config, RunMode mode, rlim_t nofile, Addr *a) {
        int code;
        const char *err;
        Daemon *d = launch(config, mode, nofile, &code, &err);
        if (!d)
                harness_report(file, line, "tcpedud did not become ready (exit %d): %s", code, err);
        CU_assertImplementation(d != NULL, (unsigned)line, "tcpedud starts", file, "", CU_TRUE);
        bool ok = daemon_listener(d, "127.0.0.1", a);
        if (!ok)
                harness_report(file, line, "tcpedud (pid %d) has no listener on 127.0.0.1", (int)d->pid);
        CU_assertImplementation(ok, (unsigned)line, "a listener", file, "", CU_TRUE);
        return d;
}
#define START(config, mode, nofile, a) start_at(__FILE__, __LINE__, config, mode, nofile, a)

/* ---- what a user sees ---- */

/* Alive, answering status, and one echo round trip (the client closes first). */
static void expect_serving_at(const char *file, int line, Daemon *d, const Addr *a, const char *after) {
        uint8_t data[1500];
        bool alive = daemon_alive(d);
        if (!alive)
                harness_report(file, line, "after %s tcpedud exited (code %d)", after, d->exit_code);
        CU_assertImplementation(alive, (unsigned)line, "alive", file, "", CU_TRUE);
        json_object *st = ctl_json_at(file, line, d, "status", NULL);
        if (!st || jnum(st, "pid") != d->pid)
                harness_report(file, line, "after %s: no status from pid %d", after, (int)d->pid);
        CU_assertImplementation(st && jnum(st, "pid") == d->pid, (unsigned)line, "status", file, "", CU_FALSE);
        int fd = tcp_connect(a, NULL);
        if (fd < 0)
                harness_report(file, line, "after %s: connect: %s", after, strerror(-fd));
        CU_assertImplementation(fd >= 0, (unsigned)line, "connect", file, "", CU_FALSE);
        if (fd < 0)
                return;
        fill_pattern(data, sizeof(data), (uint64_t)line);
        int r = echo_check(fd, data, sizeof(data), IO_TIMEOUT_MS);
        if (r != 0)
                harness_report(file, line, "after %s: echo: %s", after, strerror(-r));
        CU_assertImplementation(r == 0, (unsigned)line, "echo", file, "", CU_FALSE);
        r = close_graceful(fd);
        if (r != 0)
                harness_report(file, line, "after %s: close: %s", after, strerror(-r));
        CU_assertImplementation(r == 0, (unsigned)line, "close", file, "", CU_FALSE);
}
#define EXPECT_SERVING(d, a, after) expect_serving_at(__FILE__, __LINE__, d, a, after)

/* The line of the human `tcpeductl status` that starts with prefix, or NULL. */
static const char *status_line(Daemon *d, const char *prefix) {
        RunResult r;
        if (ctl(d, &r, "status", NULL) < 0 || r.exit_code != 0 || !r.out)
                return NULL;
        for (char *save = NULL, *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (strncmp(l, prefix, strlen(prefix)) == 0)
                        return l;
        return NULL;
}

/* Wait until the daemon has written what it logged (queue empty, submitted = written + dropped);
 * its status then. */
static json_object *status_settled(Daemon *d, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        json_object *st = NULL;
        for (;;) {
                st = CTL_JSON(d, "status");
                if (!st ||
                    (jnum(st, "log.queued") == 0 && jnum(st, "log.submitted") == jnum(st, "log.written") + jnum(st, "log.dropped")) ||
                    now_ms() >= deadline)
                        return st;
                (void)poll(NULL, 0, 50);
        }
}

static bool has(const char *s, const char *needle) {
        return s && strstr(s, needle) != NULL;
}

static bool is_int(json_object *o, const char *path) {
        json_object *v = jpath(o, path);
        return v && json_object_is_type(v, json_type_int);
}

/* ---- the daemon's journal, compact ---- */

typedef struct Rec {
        size_t seq; /* journal order */
        const char *message, *priority, *message_id, *event, *role, *conn, *old_state, *new_state, *source, *ktime, *kvia;
} Rec;

typedef struct Recs {
        Rec *r;
        size_t n;
} Recs;

static const char *const rec_fields[] = { "MESSAGE",
                                          "PRIORITY",
                                          "MESSAGE_ID",
                                          "TCPEDU_EVENT",
                                          "TCPEDU_ROLE",
                                          "TCPEDU_CONN_ID",
                                          "TCPEDU_OLD_STATE",
                                          "TCPEDU_NEW_STATE",
                                          "TCPEDU_STATE_SOURCE",
                                          "TCPEDU_KERNEL_TIME_NSEC",
                                          "TCPEDU_KERNEL_SOURCE" };
#define N_REC_FIELDS (sizeof(rec_fields) / sizeof(rec_fields[0]))

/* Copy the values (NULL: absent) into r, in one block freed at teardown. */
static void rec_fill(Rec *r, const char *const val[N_REC_FIELDS]) {
        const char **dst[N_REC_FIELDS] = { &r->message,   &r->priority,  &r->message_id, &r->event, &r->role, &r->conn,
                                           &r->old_state, &r->new_state, &r->source,     &r->ktime, &r->kvia };
        size_t len = 0;
        for (size_t i = 0; i < N_REC_FIELDS; i++)
                len += val[i] ? strlen(val[i]) + 1 : 0;
        char *p = track_alloc(malloc(len + 1));
        if (!p)
                abort();
        for (size_t i = 0; i < N_REC_FIELDS; i++) {
                *dst[i] = NULL;
                if (!val[i])
                        continue;
                size_t k = strlen(val[i]) + 1;
                memcpy(p, val[i], k);
                *dst[i] = p;
                p += k;
        }
}

static Recs *recs_new(size_t max) {
        Recs *out = track_alloc(calloc(1, sizeof(Recs)));
        if (!out || !(out->r = track_alloc(calloc(max + 1, sizeof(Rec)))))
                abort();
        return out;
}

static size_t count_lines(const char *s) {
        size_t n = 0;
        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

/* journalctl with these fields only (tens of thousands of entries: no json-c object kept per
 * entry), every entry of pid written since this program started; extra: one more match or NULL. */
static Recs *journal_dump(pid_t pid, const char *extra) {
        char fields[512] = "--output-fields=";
        for (size_t i = 0; i < N_REC_FIELDS; i++)
                snprintf(fields + strlen(fields), sizeof(fields) - strlen(fields), "%s%s", i ? "," : "", rec_fields[i]);
        const char *argv[] = { "/usr/bin/journalctl",
                               "--no-pager",
                               "--all",
                               "-o",
                               "json",
                               "--since",
                               tstr("@%llu", (unsigned long long)(program_start_usec / 1000000u)),
                               fields,
                               tstr("_PID=%d", (int)pid),
                               extra,
                               NULL };
        RunResult rr;
        if (run_capture(argv, 60000, &rr) < 0 || rr.exit_code != 0) {
                printf("\n    journalctl failed (exit %d): %s\n", rr.exit_code, rr.err ? rr.err : "");
                return recs_new(0);
        }
        Recs *out = recs_new(count_lines(rr.out));
        for (char *save = NULL, *line = strtok_r(rr.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                json_object *o = json_tokener_parse(line), *v;
                if (!o)
                        continue;
                const char *ts = json_object_object_get_ex(o, "__REALTIME_TIMESTAMP", &v) ? json_object_get_string(v) : NULL;
                if (ts && strtoull(ts, NULL, 10) >= program_start_usec) {
                        const char *val[N_REC_FIELDS];
                        for (size_t i = 0; i < N_REC_FIELDS; i++)
                                val[i] = json_object_object_get_ex(o, rec_fields[i], &v) && json_object_is_type(v, json_type_string)
                                                 ? json_object_get_string(v)
                                                 : NULL;
                        rec_fill(&out->r[out->n], val);
                        out->r[out->n].seq = out->n;
                        out->n++;
                }
                json_object_put(o);
        }
        return out;
}

/* How many entries of pid there are: journalctl -o cat with PRIORITY (every entry has one), lines
 * counted (cheap to repeat). */
static long journal_count(pid_t pid) {
        const char *argv[] = { "/usr/bin/journalctl",
                               "--no-pager",
                               "-o",
                               "cat",
                               "--output-fields=PRIORITY",
                               "--since",
                               tstr("@%llu", (unsigned long long)(program_start_usec / 1000000u)),
                               tstr("_PID=%d", (int)pid),
                               NULL };
        RunResult rr;
        if (run_capture(argv, 60000, &rr) < 0 || rr.exit_code != 0)
                return -1;
        return (long)count_lines(rr.out);
}

/* Wait until the journal holds every entry the daemon wrote (status log.written; journald takes
 * them asynchronously). The count then. */
static long wait_journal_complete(pid_t pid, long written, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        long n;
        while ((n = journal_count(pid)) < written && now_ms() < deadline)
                (void)poll(NULL, 0, 200);
        return n;
}

/* ---- a monitor: every event of a server, as the daemon sends them (the journal may lose some
 * when journald is slower than the daemon; a monitor that reads does not) ---- */

static struct {
        int fd;
        pthread_t thread;
        bool running;
        pthread_mutex_t lock;
        char *buf;
        size_t len, cap;
        bool eof, stop, done;
        const char *marker; /* the thread ends once this has arrived */
} mon = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static void *monitor_thread(void *userdata) {
        (void)userdata;
        /* ahead of the daemon and the burst: a monitor that falls 4 MiB behind is cut off */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), -10);
        for (;;) {
                pthread_mutex_lock(&mon.lock);
                bool stop = mon.stop;
                if (mon.cap - mon.len < (1 << 20)) {
                        size_t cap = mon.cap ? mon.cap * 2 : 8 << 20;
                        char *n = realloc(mon.buf, cap);
                        if (!n)
                                abort();
                        mon.buf = n;
                        mon.cap = cap;
                }
                char *dst = mon.buf + mon.len;
                size_t room = mon.cap - mon.len - 1;
                pthread_mutex_unlock(&mon.lock);
                if (stop)
                        break;
                struct pollfd p = { .fd = mon.fd, .events = POLLIN };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = recv(mon.fd, dst, room, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                pthread_mutex_lock(&mon.lock);
                if (k <= 0) {
                        mon.eof = true;
                        pthread_mutex_unlock(&mon.lock);
                        break;
                }
                size_t from = mon.len > 64 ? mon.len - 64 : 0;
                mon.len += (size_t)k;
                mon.buf[mon.len] = 0;
                bool found = mon.marker && strstr(mon.buf + from, mon.marker);
                pthread_mutex_unlock(&mon.lock);
                if (found)
                        break;
        }
        pthread_mutex_lock(&mon.lock);
        mon.done = true;
        pthread_mutex_unlock(&mon.lock);
        return NULL;
}

static void monitor_stop(void) {
        if (mon.running) {
                pthread_mutex_lock(&mon.lock);
                mon.stop = true;
                pthread_mutex_unlock(&mon.lock);
                pthread_join(mon.thread, NULL);
                mon.running = false;
        }
        if (mon.fd >= 0)
                close(mon.fd);
        mon.fd = -1;
        free(mon.buf);
        mon.buf = NULL;
        mon.len = mon.cap = 0;
        mon.eof = mon.stop = mon.done = false;
        mon.marker = NULL;
}

/* A monitor of server's events, read by a thread of its own from now on. */
static void monitor_start(Daemon *d, const char *server) {
        monitor_stop();
        mon.fd = control_connect(d);
        REQUIRE(mon.fd >= 0, "control socket: %s", strerror(-mon.fd));
        const char *greeting = control_line(mon.fd, IO_TIMEOUT_MS);
        REQUIRE(has(greeting, "\"tcpedu\""), "greeting: %s", greeting ? greeting : "(none)");
        const char *req = tstr("{\"id\":1,\"command\":\"monitor\",\"args\":{\"server\":\"%s\"}}\n", server);
        REQUIRE(send_all(mon.fd, req, strlen(req), IO_TIMEOUT_MS) == 0, "monitor request");
        const char *reply = control_line(mon.fd, IO_TIMEOUT_MS);
        REQUIRE(has(reply, "\"ok\":true"), "monitor reply: %s", reply ? reply : "(none)");
        mon.marker = "\"id\":2,";
        REQUIRE(pthread_create(&mon.thread, NULL, monitor_thread, NULL) == 0, "pthread_create");
        mon.running = true;
}

/* Every event up to now: a request on the monitor's connection, whose reply comes after them. */
static Recs *monitor_finish(void) {
        const char *req = "{\"id\":2,\"command\":\"stats\"}\n";
        REQUIRE(send_all(mon.fd, req, strlen(req), IO_TIMEOUT_MS) == 0, "request on the monitor");
        uint64_t deadline = now_ms() + 30000;
        bool done = false;
        while (!done && now_ms() < deadline) {
                pthread_mutex_lock(&mon.lock);
                done = mon.done;
                pthread_mutex_unlock(&mon.lock);
                if (!done)
                        (void)poll(NULL, 0, 20);
        }
        pthread_mutex_lock(&mon.lock);
        bool eof = mon.eof, complete = mon.marker && mon.buf && strstr(mon.buf, mon.marker);
        pthread_mutex_unlock(&mon.lock);
        if (mon.running) {
                pthread_mutex_lock(&mon.lock);
                mon.stop = true;
                pthread_mutex_unlock(&mon.lock);
                pthread_join(mon.thread, NULL);
                mon.running = false;
        }
        EXPECT(complete && !eof, "the monitor %s", eof ? "was disconnected" : "did not get the reply after the events");
        Recs *out = recs_new(count_lines(mon.buf));
        for (char *save = NULL, *line = mon.buf ? strtok_r(mon.buf, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "{\"event\":", 9) != 0)
                        continue;
                json_object *o = json_tokener_parse(line), *ev, *v;
                if (o && json_object_object_get_ex(o, "event", &ev)) {
                        static const char *const keys[N_REC_FIELDS] = { "message",      "priority",         "message_id",   "event",
                                                                        "role",         "conn_id",          "old_state",    "new_state",
                                                                        "state_source", "kernel_time_nsec", "kernel_source" };
                        const char *val[N_REC_FIELDS];
                        for (size_t i = 0; i < N_REC_FIELDS; i++)
                                val[i] = json_object_object_get_ex(ev, keys[i], &v) ? json_object_get_string(v) : NULL;
                        rec_fill(&out->r[out->n], val);
                        out->r[out->n].seq = out->n;
                        out->n++;
                }
                json_object_put(o);
        }
        monitor_stop();
        return out;
}

/* ---- every connection's records: a chain ---- */

typedef struct Chains {
        size_t conns, all_bpf, fell_back, broken, bad_source_order, missing_ktime, listeners;
        size_t bug_entries;
        size_t named_warnings, suppressed; /* fall-back warnings naming a connection; "N more" */
        char first_problem[512];
        const char **fell_back_ids; /* sorted */
        const char **named_ids; /* sorted */
        size_t n_named;
} Chains;

static int cmp_rec_ptr(const void *a, const void *b) {
        const Rec *x = *(const Rec *const *)a, *y = *(const Rec *const *)b;
        int c = strcmp(x->conn, y->conn);
        return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static int cmp_str_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void problem(Chains *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(Chains *ch, const char *fmt, ...) {
        if (ch->first_problem[0])
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ch->first_problem, sizeof(ch->first_problem), fmt, ap);
        va_end(ap);
}

static bool is_bpf(const Rec *r) {
        return r->source && strcmp(r->source, "bpf") == 0;
}

/* The transitions of one connection, in order: LISTEN first, each step from where the last one
 * went, CLOSED or TIME_WAIT last; bpf steps first and then, after a fall-back, never again. */
static void check_chain(Chains *ch, Rec **g, size_t n) {
        const char *id = g[0]->conn;
        bool any_other = false, broken = false;
        unsigned long long last_ns = 0;
        ch->conns++;
        if (strcmp(g[0]->old_state ? g[0]->old_state : "", "LISTEN") != 0) {
                broken = true;
                problem(ch, "connection %s starts from %s, not LISTEN", id, g[0]->old_state);
        }
        for (size_t i = 0; i < n; i++) {
                const Rec *r = g[i];
                if (i > 0 && strcmp(r->old_state ? r->old_state : "?", g[i - 1]->new_state ? g[i - 1]->new_state : "!") != 0) {
                        broken = true;
                        problem(ch, "connection %s: %s -> %s after a step to %s", id, r->old_state, r->new_state, g[i - 1]->new_state);
                }
                if (is_bpf(r)) {
                        if (any_other) {
                                ch->bad_source_order++;
                                problem(ch, "connection %s: a bpf step (%s -> %s) after a %s one", id, r->old_state, r->new_state,
                                        g[i - 1]->source);
                        }
                        unsigned long long ns = r->ktime ? strtoull(r->ktime, NULL, 10) : 0;
                        if (ns == 0 || ns < last_ns) {
                                ch->missing_ktime++;
                                problem(ch, "connection %s: %s -> %s: TCPEDU_KERNEL_TIME_NSEC %s (previous %llu)", id, r->old_state,
                                        r->new_state, r->ktime ? r->ktime : "missing", last_ns);
                        }
                        last_ns = ns;
                } else if (!(r->old_state && strcmp(r->old_state, "TIME_WAIT") == 0))
                        any_other = true;
        }
        const char *end = g[n - 1]->new_state ? g[n - 1]->new_state : "?";
        if (strcmp(end, "CLOSED") != 0 && strcmp(end, "TIME_WAIT") != 0) {
                broken = true;
                problem(ch, "connection %s ends in %s", id, end);
        }
        ch->broken += broken;
        if (any_other)
                ch->fell_back_ids[ch->fell_back++] = id;
        else
                ch->all_bpf++;
}

/* "connection ID: eBPF source: ...: TCP_INFO from now on" -> ID (a tracked string), else NULL. */
static const char *warned_id(const char *msg) {
        if (!msg || strncmp(msg, "connection ", 11) != 0 || !strstr(msg, ": eBPF source: ") || !strstr(msg, ": TCP_INFO from now on"))
                return NULL;
        const char *s = msg + 11;
        return tstr("%.*s", (int)strcspn(s, ":"), s);
}

static Chains *analyse(const Recs *recs) {
        Chains *ch = track_alloc(calloc(1, sizeof(Chains)));
        Rec **tr = track_alloc(calloc(recs->n + 1, sizeof(Rec *)));
        ch->fell_back_ids = track_alloc(calloc(recs->n + 1, sizeof(char *)));
        ch->named_ids = track_alloc(calloc(recs->n + 1, sizeof(char *)));
        if (!ch || !tr || !ch->fell_back_ids || !ch->named_ids)
                abort();
        size_t n = 0;
        for (size_t i = 0; i < recs->n; i++) {
                const Rec *r = &recs->r[i];
                if (has(r->message, "BUG")) {
                        ch->bug_entries++;
                        if (ch->bug_entries <= 5)
                                printf("\n    BUG entry: %s", r->message);
                }
                if (r->message_id && strcmp(r->message_id, MID_KERNEL_SOURCE) == 0 && !r->event) {
                        const char *id = warned_id(r->message);
                        unsigned long long more;
                        if (id) {
                                ch->named_ids[ch->n_named++] = id;
                                ch->named_warnings++;
                        } else if (sscanf(r->message, "eBPF source: %llu more connections fell back to TCP_INFO", &more) == 1)
                                ch->suppressed += more;
                }
                if (!r->event || strcmp(r->event, "transition") != 0)
                        continue;
                if (r->role && strcmp(r->role, "listener") == 0) {
                        ch->listeners++;
                        continue;
                }
                if (!r->conn)
                        continue;
                tr[n++] = (Rec *)r;
        }
        qsort(tr, n, sizeof(Rec *), cmp_rec_ptr);
        for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && strcmp(tr[j]->conn, tr[i]->conn) == 0)
                        j++;
                check_chain(ch, tr + i, j - i);
                i = j;
        }
        qsort(ch->named_ids, ch->n_named, sizeof(char *), cmp_str_ptr);
        return ch;
}

/* Connections that fell back (their events, from mon) without a warning that names them (in the
 * journal, jn). */
static size_t unnamed_fallbacks(const Chains *mon_ch, const Chains *jn) {
        size_t k = 0;
        for (size_t i = 0; i < mon_ch->fell_back; i++)
                k += bsearch(&mon_ch->fell_back_ids[i], jn->named_ids, jn->n_named, sizeof(char *), cmp_str_ptr) == NULL;
        return k;
}

/* "CONN OLD NEW SOURCE" of each transition of a connection, sorted: the journal's must all be the
 * monitor's. */
static const char **step_keys(const Recs *recs, size_t *ret_n) {
        const char **k = track_alloc(calloc(recs->n + 1, sizeof(char *)));
        size_t n = 0;
        if (!k)
                abort();
        for (size_t i = 0; i < recs->n; i++) {
                const Rec *r = &recs->r[i];
                if (r->event && strcmp(r->event, "transition") == 0 && r->conn && !(r->role && strcmp(r->role, "listener") == 0))
                        k[n++] = tstr("%s %s %s %s", r->conn, r->old_state, r->new_state, r->source);
        }
        qsort(k, n, sizeof(char *), cmp_str_ptr);
        *ret_n = n;
        return k;
}

/* ---- many connections, non-blocking ---- */

typedef struct BurstResult {
        unsigned started, connected, failed, left;
        uint64_t elapsed_ms;
} BurstResult;

/* count connections (rate a second; 0: as fast as it goes), at most MAX_INFLIGHT at once: connect,
 * wait for the handshake, then close (reset: SO_LINGER 0, an RST; else a FIN: the client closes
 * first). */
static BurstResult burst(const Addr *a, unsigned count, unsigned rate, bool reset) {
        BurstResult res = {};
        struct epoll_event evs[256];
        uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)(rate ? count * 1000ull / rate : 0) + 15000;
        burst_epoll = epoll_create1(EPOLL_CLOEXEC);
        if (burst_epoll < 0)
                return res;
        for (size_t i = 0; i < MAX_INFLIGHT; i++)
                burst_fds[i] = -1;
        n_burst_fds = MAX_INFLIGHT;
        unsigned inflight = 0;
        size_t free_slot = 0;

        while ((res.started < count || inflight > 0) && now_ms() < deadline) {
                uint64_t now = now_ms();
                unsigned due = rate ? (unsigned)((now - t0) * rate / 1000 + 1) : count;
                if (due > count)
                        due = count;
                while (res.started < due && inflight < MAX_INFLIGHT) {
                        while (burst_fds[free_slot] >= 0)
                                free_slot = (free_slot + 1) % MAX_INFLIGHT;
                        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                        res.started++;
                        if (fd < 0) {
                                res.failed++;
                                continue;
                        }
                        if (reset) {
                                struct linger l = { .l_onoff = 1, .l_linger = 0 };
                                (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                        }
                        if (connect(fd, &a->sa, sizeof(a->in)) < 0 && errno != EINPROGRESS) {
                                res.failed++;
                                close(fd);
                                continue;
                        }
                        struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = free_slot };
                        if (epoll_ctl(burst_epoll, EPOLL_CTL_ADD, fd, &ev) < 0) {
                                res.failed++;
                                close(fd);
                                continue;
                        }
                        burst_fds[free_slot] = fd;
                        inflight++;
                }
                int timeout = res.started < count && inflight < MAX_INFLIGHT ? 1 : 100;
                int k = epoll_wait(burst_epoll, evs, 256, timeout);
                for (int i = 0; i < k; i++) {
                        size_t slot = (size_t)evs[i].data.u64;
                        int fd = burst_fds[slot], err = 0;
                        socklen_t len = sizeof(err);
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                                res.connected++;
                        else
                                res.failed++;
                        close(fd); /* removes it from the epoll set */
                        burst_fds[slot] = -1;
                        inflight--;
                }
        }
        res.elapsed_ms = now_ms() - t0;
        res.left = inflight;
        close_burst_fds();
        return res;
}

static json_object *wait_accepted(Daemon *d, long long want, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        json_object *s;
        for (;;) {
                s = CTL_JSON(d, "stats");
                if (!s || (jnum(s, "connections_accepted") >= want && jnum(s, "connections") == 0) || now_ms() >= deadline)
                        return s;
                (void)poll(NULL, 0, 100);
        }
}

/* ---- the cases ---- */

/* 1. auto, where eBPF loads: bpf, and every step of a connection is the tracepoint's. */
static void test_auto_loads(void) {
        Addr a;
        const char *name = unique_name("ks-auto");
        Daemon *d = START(server_config("auto", name, NULL, NULL), RUN_PLAIN, 0, &a);

        json_object *st = CTL_JSON(d, "status");
        REQUIRE(st != NULL, "no status");
        EXPECT_STR(jtxt(st, "kernel.source"), "bpf");
        EXPECT(has(jtxt(st, "kernel.reason"), "auto"), "kernel.reason '%s' does not say auto", jtxt(st, "kernel.reason"));
        static const char *const counters[] = { "events",        "filtered",  "dropped",     "held",        "unmatched",
                                                "held_overflow", "fallbacks", "retransmits", "resets_sent", "resets_received" };
        for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
                EXPECT(is_int(st, tstr("kernel.%s", counters[i])), "status kernel.%s: %s", counters[i],
                       jpath(st, tstr("kernel.%s", counters[i])) ? json_object_to_json_string(jpath(st, tstr("kernel.%s", counters[i])))
                                                                 : "missing");
        const char *line = status_line(d, "kernel:       ");
        EXPECT(line && strncmp(line, "kernel:       bpf (", 19) == 0, "tcpeductl status: '%s'", line ? line : "(no kernel: line)");

        JList *ks = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=kernel-source", NULL);
        REQUIRE_INT(ks->n, 1);
        EXPECT_STR(jget(ks->e[0], "MESSAGE_ID"), MID_KERNEL_SOURCE);
        EXPECT_STR(jget(ks->e[0], "TCPEDU_KERNEL_SOURCE"), "bpf");
        EXPECT_STR(jget(ks->e[0], "TCPEDU_REASON"), jtxt(st, "kernel.reason"));

        /* one connection: its detailed view while open, then its records */
        int fd = tcp_connect(&a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        char local[ADDR_STR_MAX];
        sock_local(fd, local, sizeof(local));
        REQUIRE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "echo");
        json_object *list = CTL_JSON(d, "connections"), *arr = jpath(list, "connections");
        const char *id = NULL;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
                if (has(jtxt(json_object_array_get_idx(arr, i), "peer"), local))
                        id = jtxt(json_object_array_get_idx(arr, i), "id");
        REQUIRE(id != NULL, "the connection from %s is not listed: %s", local, json_object_to_json_string(list));
        id = tstr("%s", id);
        json_object *conn = CTL_JSON(d, "conn", id);
        EXPECT_STR(jtxt(conn, "state_source"), "bpf");
        EXPECT(is_int(conn, "kernel_events.retransmits") && is_int(conn, "kernel_events.resets_sent") &&
                       is_int(conn, "kernel_events.resets_received"),
               "conn %s: kernel_events %s", id,
               jpath(conn, "kernel_events") ? json_object_to_json_string(jpath(conn, "kernel_events")) : "missing");
        EXPECT_INT(jnum(conn, "kernel_events.resets_received") + jnum(conn, "kernel_events.resets_sent"), 0);
        EXPECT_INT(close_graceful(fd), 0);

        JList *tr = journal_wait(5, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id),
                                 "TCPEDU_EVENT=transition", NULL);
        char path[256] = "";
        for (size_t i = 0; i < tr->n; i++) {
                json_object *e = tr->e[i];
                if (i == 0)
                        snprintf(path, sizeof(path), "%s", jget(e, "TCPEDU_OLD_STATE") ? jget(e, "TCPEDU_OLD_STATE") : "?");
                snprintf(path + strlen(path), sizeof(path) - strlen(path), " %s",
                         jget(e, "TCPEDU_NEW_STATE") ? jget(e, "TCPEDU_NEW_STATE") : "?");
                EXPECT(strcmp(jget(e, "TCPEDU_STATE_SOURCE") ? jget(e, "TCPEDU_STATE_SOURCE") : "", "bpf") == 0 &&
                               jget(e, "TCPEDU_KERNEL_TIME_NSEC") && strtoull(jget(e, "TCPEDU_KERNEL_TIME_NSEC"), NULL, 10) > 0 &&
                               strcmp(jget(e, "TCPEDU_KERNEL_SOURCE") ? jget(e, "TCPEDU_KERNEL_SOURCE") : "", "inet_sock_set_state") == 0,
                       "step %s: source %s, kernel time %s, kernel source %s", jget(e, "MESSAGE"), jget(e, "TCPEDU_STATE_SOURCE"),
                       jget(e, "TCPEDU_KERNEL_TIME_NSEC"), jget(e, "TCPEDU_KERNEL_SOURCE"));
        }
        EXPECT_STR(path, SERVER_PATH);
        json_object *stats = CTL_JSON(d, "stats");
        static const char *const stat_keys[] = { "kernel_events",         "kernel_events_filtered",
                                                 "kernel_events_dropped", "kernel_events_unmatched",
                                                 "kernel_fallbacks",      "retransmits",
                                                 "resets_sent",           "resets_received" };
        for (size_t i = 0; i < sizeof(stat_keys) / sizeof(stat_keys[0]); i++)
                EXPECT(is_int(stats, stat_keys[i]), "stats %s missing", stat_keys[i]);
        EXPECT(jnum(stats, "kernel_events") >= 5, "stats kernel_events %lld", jnum(stats, "kernel_events"));
        EXPECT_INT(jnum(stats, "kernel_fallbacks"), 0);
        EXPECT_SERVING(d, &a, "auto with bpf");
        EXPECT_INT(daemon_stop(d), 0);
}

/* The capabilities of a running process, from /proc/PID/status: the bit is set in field. */
static int cap_bit(pid_t pid, const char *field, int bit) {
        const char *s = read_file_text(tstr("/proc/%d/status", (int)pid));
        const char *p = s ? strstr(s, tstr("\n%s:", field)) : NULL;
        if (!p)
                return -1;
        unsigned long long caps = strtoull(p + strlen(field) + 2, NULL, 16);
        return (int)((caps >> bit) & 1);
}

/* A daemon on tcp_info for the reason want: status, human status, the kernel-source record, the
 * records of a connection, the connection's view. */
static void expect_tcp_info_daemon(Daemon *d, const Addr *a, const char *want) {
        json_object *st = CTL_JSON(d, "status");
        REQUIRE(st != NULL, "no status");
        EXPECT_STR(jtxt(st, "kernel.source"), "tcp_info");
        EXPECT(has(jtxt(st, "kernel.reason"), want), "kernel.reason '%s' does not name '%s'", jtxt(st, "kernel.reason"), want);
        EXPECT(jpath(st, "kernel.events") == NULL, "kernel.events with tcp_info: %s", json_object_to_json_string(jpath(st, "kernel")));
        const char *line = status_line(d, "kernel:       ");
        EXPECT(line && strncmp(line, "kernel:       tcp_info (", 24) == 0 && has(line, want), "tcpeductl status: '%s'",
               line ? line : "(no kernel: line)");
        JList *ks = journal_wait(1, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), "TCPEDU_EVENT=kernel-source", NULL);
        REQUIRE_INT(ks->n, 1);
        EXPECT_STR(jget(ks->e[0], "MESSAGE_ID"), MID_KERNEL_SOURCE);
        EXPECT_STR(jget(ks->e[0], "TCPEDU_KERNEL_SOURCE"), "tcp_info");
        EXPECT_STR(jget(ks->e[0], "TCPEDU_REASON"), jtxt(st, "kernel.reason"));

        int fd = tcp_connect(a, NULL);
        REQUIRE(fd >= 0, "connect: %s", strerror(-fd));
        REQUIRE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "echo");
        json_object *list = CTL_JSON(d, "connections"), *arr = jpath(list, "connections");
        REQUIRE(arr && json_object_array_length(arr) == 1, "connections: %s", list ? json_object_to_json_string(list) : "none");
        const char *id = tstr("%s", jtxt(json_object_array_get_idx(arr, 0), "id"));
        json_object *conn = CTL_JSON(d, "conn", id);
        EXPECT_STR(jtxt(conn, "state_source"), "tcp_info");
        EXPECT(jpath(conn, "kernel_events") == NULL, "kernel_events on a tcp_info connection");
        EXPECT_INT(close_graceful(fd), 0);
        JList *tr = journal_wait(5, JOURNAL_TIMEOUT_MS, tstr("_PID=%d", (int)d->pid), tstr("TCPEDU_CONN_ID=%s", id),
                                 "TCPEDU_EVENT=transition", NULL);
        EXPECT_INT(tr->n, 5);
        for (size_t i = 0; i < tr->n; i++) {
                const char *src = jget(tr->e[i], "TCPEDU_STATE_SOURCE");
                EXPECT(src && (strcmp(src, "kernel") == 0 || strcmp(src, "inferred") == 0) && !jget(tr->e[i], "TCPEDU_KERNEL_TIME_NSEC"),
                       "%s: source %s on tcp_info", jget(tr->e[i], "MESSAGE"), src ? src : "(none)");
        }
        JList *bpf = journal_query(tstr("_PID=%d", (int)d->pid), "TCPEDU_STATE_SOURCE=bpf", NULL);
        EXPECT_INT(bpf->n, 0);
        EXPECT_SERVING(d, a, "the fall-back to tcp_info");
}

/* 2. No CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN. */
static void test_no_capabilities(void) {
        if (!setpriv_path) {
                printf("\n    SKIPPED: no setpriv (util-linux) to start tcpedud without capabilities\n");
                return;
        }
        Addr a;
        Daemon *d = START(server_config("auto", unique_name("ks-nocap"), NULL, NULL), RUN_NO_CAPS, 0, &a);
        /* CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39: really gone */
        static const int bits[] = { 21, 38, 39 };
        for (size_t i = 0; i < 3; i++) {
                EXPECT_INT(cap_bit(d->pid, "CapEff", bits[i]), 0);
                EXPECT_INT(cap_bit(d->pid, "CapBnd", bits[i]), 0);
        }
        expect_tcp_info_daemon(d, &a, "CAP_BPF");

        /* kernel_source = bpf: no start, the reason on stderr, exit 1 (a runtime failure, like a
         * port in use: manager_start() in daemon/main.c; 78 is for what --check-config finds) */
        int code;
        const char *err;
        Daemon *b = launch(server_config("bpf", unique_name("ks-nocap-bpf"), NULL, NULL), RUN_NO_CAPS, 0, &code, &err);
        EXPECT(b == NULL, "kernel_source = bpf without CAP_BPF started (pid %d)", b ? (int)b->pid : 0);
        EXPECT_INT(code, 1);
        EXPECT(has(err, "kernel_source = bpf: the eBPF source cannot be used: ") && has(err, "Operation not permitted") &&
                       has(err, "CAP_BPF"),
               "stderr: %s", err);
        EXPECT_SERVING(d, &a, "a bpf daemon refused to start");
        EXPECT_INT(daemon_stop(d), 0);
}

/* 2b. No BTF: auto on tcp_info; bpf a configuration error. */
static void test_no_btf(void) {
        Addr a;
        Daemon *d = START(server_config("auto", unique_name("ks-nobtf"), NULL, NULL), RUN_NO_BTF, 0, &a);
        expect_tcp_info_daemon(d, &a, "no BTF at /sys/kernel/btf/vmlinux");

        int code;
        const char *err;
        Daemon *b = launch(server_config("bpf", unique_name("ks-nobtf-bpf"), NULL, NULL), RUN_NO_BTF, 0, &code, &err);
        EXPECT(b == NULL, "kernel_source = bpf without BTF started (pid %d)", b ? (int)b->pid : 0);
        EXPECT_INT(code, 78);
        EXPECT(has(err, "kernel_source = bpf: the eBPF source cannot be used here: no BTF at /sys/kernel/btf/vmlinux"), "stderr: %s", err);
        EXPECT_SERVING(d, &a, "a bpf daemon refused to start");
        EXPECT_INT(daemon_stop(d), 0);
}

static void print_kernel(const char *what, json_object *st) {
        printf("\n    %s: kernel: events %lld, filtered %lld, dropped %lld, held %lld, unmatched %lld, held_overflow %lld, "
               "fallbacks %lld, retransmits %lld, resets sent %lld / received %lld; log dropped %lld",
               what, jnum(st, "kernel.events"), jnum(st, "kernel.filtered"), jnum(st, "kernel.dropped"), jnum(st, "kernel.held"),
               jnum(st, "kernel.unmatched"), jnum(st, "kernel.held_overflow"), jnum(st, "kernel.fallbacks"), jnum(st, "kernel.retransmits"),
               jnum(st, "kernel.resets_sent"), jnum(st, "kernel.resets_received"), jnum(st, "log.dropped"));
}

static void print_chains(const char *what, const Chains *ch) {
        printf("\n    %s: %zu connections, %zu all bpf, %zu fell back, %zu broken chains, %zu bpf after tcp_info, %zu bad kernel times",
               what, ch->conns, ch->all_bpf, ch->fell_back, ch->broken, ch->bad_source_order, ch->missing_ktime);
        if (ch->named_warnings || ch->suppressed || ch->bug_entries)
                printf("; fall-back warnings: %zu by name, %zu in \"more\" lines; %zu BUG entries", ch->named_warnings, ch->suppressed,
                       ch->bug_entries);
        if (ch->first_problem[0])
                printf("\n    first problem: %s", ch->first_problem);
}

/* The records of every accepted connection (accepted: how many) form a chain, in the events a
 * monitor got and in the journal, and the counters cover them. */
static void expect_chains(const Chains *ch, const char *where, json_object *st, long long accepted, size_t listeners) {
        EXPECT(ch->conns == (size_t)accepted, "%s: %zu connections, %lld accepted", where, ch->conns, accepted);
        EXPECT(ch->broken == 0, "%s: %zu connections whose records are no chain: %s", where, ch->broken, ch->first_problem);
        EXPECT(ch->bad_source_order == 0 && ch->missing_ktime == 0, "%s: %s", where, ch->first_problem);
        EXPECT(ch->listeners == listeners, "%s: %zu listener transitions, expected %zu", where, ch->listeners, listeners);
        /* fell back: each counted once; tracked all along: the rest */
        EXPECT(ch->fell_back <= (size_t)jnum(st, "kernel.fallbacks"), "%s: %zu connections with tcp_info records, kernel.fallbacks %lld",
               where, ch->fell_back, jnum(st, "kernel.fallbacks"));
        EXPECT(ch->all_bpf + (size_t)jnum(st, "kernel.fallbacks") >= (size_t)accepted, "%s: %zu all bpf + %lld fallbacks < %lld accepted",
               where, ch->all_bpf, jnum(st, "kernel.fallbacks"), accepted);
}

typedef struct Storm {
        Chains *mon, *journal;
        long long log_dropped;
} Storm;

/* After a storm, with the daemon quiet: the monitor's events and the journal. The monitor has every
 * event; the journal has every entry unless the daemon had to drop some (its queue full: journald
 * slower than the daemon, which status counts in log.dropped and a log-dropped entry says). */
static Storm check_storm(Daemon *d, long long accepted) {
        Storm s = {};
        json_object *st = status_settled(d, 30000);
        REQUIRE(st != NULL, "no status");
        Recs *events = monitor_finish();
        s.mon = analyse(events);
        print_chains("monitor", s.mon);
        expect_chains(s.mon, "monitor", st, accepted, 0); /* the listener's CLOSED -> LISTEN was before any monitor */
        EXPECT(has(jtxt(st, "kernel.source"), "bpf"), "kernel.source %s", jtxt(st, "kernel.source"));

        s.log_dropped = jnum(st, "log.dropped");
        long written = jnum(st, "log.written");
        long got = wait_journal_complete(d->pid, written, 30000);
        EXPECT(got >= written, "the journal has %ld entries of pid %d, the daemon wrote %ld", got, (int)d->pid, written);
        Recs *recs = journal_dump(d->pid, NULL);
        s.journal = analyse(recs);
        print_chains("journal", s.journal);
        EXPECT_INT(s.journal->bug_entries, 0);
        if (s.log_dropped == 0)
                expect_chains(s.journal, "journal", st, accepted, 1);
        else
                printf("\n    NOTE: the daemon dropped %lld log entries (journald slower than the daemon): the journal's chains are "
                       "incomplete, the monitor's are checked",
                       s.log_dropped);
        /* what the journal says, the monitor said */
        size_t nm, nj, missing = 0;
        const char **km = step_keys(events, &nm), **kj = step_keys(recs, &nj);
        for (size_t i = 0; i < nj; i++)
                if (!bsearch(&kj[i], km, nm, sizeof(char *), cmp_str_ptr) && missing++ == 0)
                        printf("\n    in the journal, not in the monitor's events: %s", kj[i]);
        EXPECT(missing == 0, "%zu steps in the journal are not the monitor's", missing);
        EXPECT(nj + (size_t)s.log_dropped >= nm, "%zu steps in the journal, %zu from the monitor, %lld log entries dropped", nj, nm,
               s.log_dropped);
        return s;
}

/* Wait until the eBPF source has read (or lost) at least want events, and the log is written. */
static json_object *wait_kernel_events(Daemon *d, long long want, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        json_object *st;
        while ((st = status_settled(d, timeout_ms)) && jnum(st, "kernel.events") + jnum(st, "kernel.dropped") < want && now_ms() < deadline)
                (void)poll(NULL, 0, 100);
        return st;
}

/* 3. About 10,000 connections a second for a second. */
static void test_burst(void) {
        Addr a;
        const char *name = unique_name("ks-burst");
        raise_nofile(MAX_INFLIGHT + 256);
        Daemon *d =
                START(server_config("bpf", name, "max_connections = 20000\n", tstr("max_clients = 20000\nbacklog = %d\n", BURST_BACKLOG)),
                      RUN_PLAIN, 16384, &a);
        monitor_start(d, name);
        EXPECT_SERVING(d, &a, "start");
        /* the pace is the test's to keep, on a machine shared with the daemon and journald */
        int nice0 = getpriority(PRIO_PROCESS, (id_t)gettid());
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), -10);
        BurstResult b = burst(&a, BURST_RATE * BURST_MS / 1000, BURST_RATE, false);
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice0);
        printf("\n    burst: %u started, %u connected, %u failed, %u left over, in %llu ms: %.0f connections/s", b.started, b.connected,
               b.failed, b.left, (unsigned long long)b.elapsed_ms, b.elapsed_ms ? b.connected * 1000.0 / (double)b.elapsed_ms : 0.0);
        EXPECT(b.connected >= b.started * 9 / 10, "only %u of %u connections were made", b.connected, b.started);

        json_object *stats = wait_accepted(d, (long long)b.connected + 1, 30000);
        long long accepted = jnum(stats, "connections_accepted");
        EXPECT(accepted >= (long long)b.connected + 1 && jnum(stats, "connections") == 0, "accepted %lld, %lld still open; %u connected",
               accepted, jnum(stats, "connections"), b.connected);
        EXPECT_SERVING(d, &a, "the burst");
        accepted++; /* that echo check */
        json_object *st = wait_kernel_events(d, 5 * accepted, 10000);
        REQUIRE(st != NULL, "no status");
        print_kernel("after the burst", st);
        /* 5 a connection: LISTEN -> SYN_RECV -> ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSE */
        EXPECT(jnum(st, "kernel.events") + jnum(st, "kernel.dropped") >= 5 * accepted,
               "%lld kernel events (%lld dropped) for %lld connections", jnum(st, "kernel.events"), jnum(st, "kernel.dropped"), accepted);
        Storm s = check_storm(d, accepted);
        /* a fall-back needs a loss: the ring full (dropped), the hold queue full (held_overflow), or
         * events that waited more than 2 s for accept() (unmatched) */
        EXPECT(s.mon->fell_back == 0 || jnum(st, "kernel.dropped") > 0 || jnum(st, "kernel.held_overflow") > 0 ||
                       jnum(st, "kernel.unmatched") > 0,
               "%zu connections fell back with no event lost", s.mon->fell_back);
        EXPECT_SERVING(d, &a, "the burst, checked");
        EXPECT_INT(daemon_stop(d), 0);
}

static bool wait_stopped(pid_t pid, char want, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                const char *s = read_file_text(tstr("/proc/%d/stat", (int)pid));
                const char *p = s ? strrchr(s, ')') : NULL;
                if (p && p[1] == ' ' && p[2] == want)
                        return true;
                if (now_ms() >= deadline)
                        return false;
                (void)poll(NULL, 0, 10);
        }
}

/* The daemon's warning that the ring buffer was full (the check runs once a second). */
static bool wait_ring_warning(Daemon *d) {
        uint64_t deadline = now_ms() + JOURNAL_TIMEOUT_MS;
        for (;;) {
                JList *l = journal_query(tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_LIMIT, "PRIORITY=4", NULL);
                for (size_t i = 0; i < l->n; i++)
                        if (has(jget(l->e[i], "MESSAGE"), "eBPF source: the ring buffer was full: ")) {
                                printf("\n    warning: %s", jget(l->e[i], "MESSAGE"));
                                return true;
                        }
                if (now_ms() >= deadline) {
                        journal_print(l, "MID_LIMIT warnings");
                        return false;
                }
                (void)poll(NULL, 0, 200);
        }
}

/* 4. The ring buffer overflows while the daemon is stopped. */
static void test_ring_overflow(void) {
        Addr a;
        const char *name = unique_name("ks-ring");
        raise_nofile(MAX_INFLIGHT + 256);
        Daemon *d = START(server_config("bpf", name, "max_connections = 20000\n", "max_clients = 20000\nbacklog = 4096\n"), RUN_PLAIN,
                          16384, &a);
        monitor_start(d, name);
        EXPECT_SERVING(d, &a, "start");
        Addr other = a;
        other.in.sin_addr.s_addr = htonl(0x7f000002);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(l >= 0, "socket: %m");
        track_fd(l);
        REQUIRE(bind(l, &other.sa, sizeof(other.in)) == 0 && listen(l, 4096) == 0, "listen on 127.0.0.2:%u: %m", addr_port(&a));

        REQUIRE(daemon_kill(d, SIGSTOP) == 0, "SIGSTOP");
        REQUIRE(wait_stopped(d->pid, 'T', 5000), "tcpedud (pid %d) did not stop", (int)d->pid);
        BurstResult f = burst(&other, FOREIGN_CONNS, 0, true);
        BurstResult b = burst(&a, OWN_CONNS, 0, true);
        sock_close(l);
        (void)daemon_kill(d, SIGCONT);
        printf("\n    while stopped: %u connections to 127.0.0.2 on its port and %u to the daemon made and reset (%u failed), in %llu ms",
               f.connected, b.connected, f.failed + b.failed, (unsigned long long)(f.elapsed_ms + b.elapsed_ms));
        EXPECT(f.connected == FOREIGN_CONNS && b.connected == OWN_CONNS, "%u of %u and %u of %u connections were made", f.connected,
               FOREIGN_CONNS, b.connected, OWN_CONNS);

        json_object *stats = wait_accepted(d, (long long)b.connected + 1, 30000);
        long long accepted = jnum(stats, "connections_accepted");
        EXPECT(accepted == (long long)b.connected + 1 && jnum(stats, "connections") == 0, "accepted %lld, %lld still open; %u connected",
               accepted, jnum(stats, "connections"), b.connected);
        EXPECT_SERVING(d, &a, "the overflow");
        accepted++;
        json_object *st = status_settled(d, 30000);
        REQUIRE(st != NULL, "no status");
        print_kernel("after the overflow", st);
        /* 4 events a connection, about 3,270 fit: the rest are lost, the daemon's own among them */
        long long made = 4ll * (f.connected + b.connected);
        EXPECT(jnum(st, "kernel.dropped") >= made - RING_EVENTS && jnum(st, "kernel.dropped") <= made + 16,
               "%lld events made in a stopped daemon: kernel.dropped %lld", made, jnum(st, "kernel.dropped"));
        EXPECT(jnum(st, "kernel.fallbacks") == b.connected, "kernel.fallbacks %lld, %u connections lost their events",
               jnum(st, "kernel.fallbacks"), b.connected);
        EXPECT_INT(jnum(st, "log.dropped"), 0);
        EXPECT(wait_ring_warning(d), "no warning that the ring buffer was full");

        /* every fall-back is said: by name, or (past 10 a second) in an "N more" line a second later */
        uint64_t deadline = now_ms() + 10000;
        long long fallbacks = jnum(st, "kernel.fallbacks");
        for (;;) {
                Chains *w = analyse(journal_dump(d->pid, "MESSAGE_ID=" MID_KERNEL_SOURCE));
                if ((long long)(w->named_warnings + w->suppressed) >= fallbacks || now_ms() >= deadline)
                        break;
                (void)poll(NULL, 0, 300);
        }
        Storm s = check_storm(d, accepted);
        size_t unnamed = unnamed_fallbacks(s.mon, s.journal);
        printf("\n    fallbacks %lld: %zu warnings by name, %zu in \"more\" lines; %zu connections fell back unnamed", fallbacks,
               s.journal->named_warnings, s.journal->suppressed, unnamed);
        EXPECT(s.mon->fell_back == b.connected, "%zu connections have tcp_info records, %u lost their events", s.mon->fell_back,
               b.connected);
        /* before and after: the echo checks, tracked from start to end */
        EXPECT(s.mon->all_bpf == 2, "%zu connections all bpf, expected the 2 echo checks", s.mon->all_bpf);
        EXPECT_INT(s.journal->named_warnings + s.journal->suppressed, fallbacks);
        EXPECT(unnamed <= s.journal->suppressed, "%zu connections fell back unnamed, the \"more\" lines count %zu", unnamed,
               s.journal->suppressed);
        JList *said = journal_query(tstr("_PID=%d", (int)d->pid), "MESSAGE_ID=" MID_KERNEL_SOURCE, "PRIORITY=4", NULL);
        for (size_t i = 0; i < said->n; i++)
                if (i == 0 || i + 1 == said->n)
                        printf("\n    warning: %s", jget(said->e[i], "MESSAGE"));
        /* the foreign events still held: counted as unmatched once their 2 s are up */
        deadline = now_ms() + 10000;
        while ((st = CTL_JSON(d, "status")) && jnum(st, "kernel.unmatched") == 0 && now_ms() < deadline)
                (void)poll(NULL, 0, 200);
        print_kernel("2 s later", st);
        EXPECT(jnum(st, "kernel.unmatched") > 0 &&
                       jnum(st, "kernel.unmatched") + jnum(st, "kernel.held_overflow") <= jnum(st, "kernel.held"),
               "unmatched %lld, held_overflow %lld, held %lld", jnum(st, "kernel.unmatched"), jnum(st, "kernel.held_overflow"),
               jnum(st, "kernel.held"));
        EXPECT_SERVING(d, &a, "the overflow, checked");
        EXPECT_INT(daemon_stop(d), 0);
}

/* 5. Events of sockets the daemon never had: a socket of the test's own on its port. */
static void test_unmatched(void) {
        Addr a;
        Daemon *d = START(server_config("bpf", unique_name("ks-unmatched"), NULL, NULL), RUN_PLAIN, 0, &a);
        EXPECT_SERVING(d, &a, "start");
        json_object *before = status_settled(d, 10000);
        REQUIRE(before != NULL, "no status");
        long long unmatched0 = jnum(before, "kernel.unmatched");
        EXPECT(is_int(before, "kernel.unmatched"), "kernel.unmatched is not a number");

        /* 127.0.0.2 on the daemon's port: a listener and a connection of the test's; their local
         * port is watched, their cookies are nobody's */
        Addr other = a;
        other.in.sin_addr.s_addr = htonl(0x7f000002);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(l >= 0, "socket: %m");
        track_fd(l);
        REQUIRE(bind(l, &other.sa, sizeof(other.in)) == 0 && listen(l, 8) == 0, "bind 127.0.0.2:%u: %m", addr_port(&a));
        int c = tcp_connect(&other, NULL);
        REQUIRE(c >= 0, "connect to 127.0.0.2: %s", strerror(-c));
        int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        REQUIRE(s >= 0, "accept: %m");
        track_fd(s);
        sock_close(c);
        sock_close(s);
        sock_close(l);

        /* held for 2 s, then counted */
        uint64_t deadline = now_ms() + 10000;
        json_object *st;
        while ((st = CTL_JSON(d, "status")) && jnum(st, "kernel.unmatched") < unmatched0 + 3 && now_ms() < deadline)
                (void)poll(NULL, 0, 200);
        REQUIRE(st != NULL, "no status");
        print_kernel("after a foreign socket on the port", st);
        EXPECT(is_int(st, "kernel.unmatched") && jnum(st, "kernel.unmatched") >= unmatched0 + 3, "kernel.unmatched %lld, %lld before",
               jnum(st, "kernel.unmatched"), unmatched0);
        json_object *stats = CTL_JSON(d, "stats");
        EXPECT_INT(jnum(stats, "kernel_events_unmatched"), jnum(st, "kernel.unmatched"));
        EXPECT_INT(jnum(st, "kernel.fallbacks"), 0);
        EXPECT_SERVING(d, &a, "events nobody claimed");
        /* nothing to say about them: no warning or worse from this daemon at all */
        (void)status_settled(d, 10000);
        Recs *recs = journal_dump(d->pid, NULL);
        size_t warnings = 0;
        for (size_t i = 0; i < recs->n; i++)
                if (recs->r[i].priority && atoi(recs->r[i].priority) <= 4) {
                        warnings++;
                        printf("\n    priority %s: %s", recs->r[i].priority, recs->r[i].message);
                }
        EXPECT_INT(warnings, 0);
        EXPECT_INT(daemon_stop(d), 0);
}

/* ---- main ---- */

static int skip(const char *why) {
        printf("SKIPPED: %s\n", why);
        return 77;
}

static bool write_sysctl(const char *path, int value) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%d\n", value);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
        if (fd >= 0)
                close(fd);
        return ok;
}

static const char *find_setpriv(void) {
        static const char *const paths[] = { "/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv" };
        for (size_t i = 0; i < 3; i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

int main(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        program_start_usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (geteuid() != 0)
                return skip("not root: the eBPF source needs CAP_BPF and CAP_PERFMON, and the test starts daemons without them");
        /* a loopback and a port space of its own (10,000 TIME_WAITs of the burst go with it), and a
         * journald without a rate limit */
        if (!private_netns(4 << 20))
                printf("no network namespace of its own: the host's loopback is used\n");
        else if (!write_sysctl("/proc/sys/net/core/somaxconn", BURST_BACKLOG))
                printf("cannot raise net.core.somaxconn in the namespace (%m): the burst's backlog is smaller\n");
        if (!private_journald())
                printf("no journald of its own: the shared one is used\n");
        if (access("/run/systemd/journal/socket", F_OK) != 0)
                return skip("no journald: the records cannot be read back");
        setpriv_path = find_setpriv();

        /* can eBPF be had here at all? */
        signal(SIGPIPE, SIG_IGN);
        int code;
        const char *err;
        Daemon *probe =
                launch("[daemon]\nkernel_source = bpf\n\n[server probe]\ntype = echo\nlisten = 127.0.0.1:0\n", RUN_PLAIN, 0, &code, &err);
        if (!probe) {
                char why[600];
                snprintf(why, sizeof(why), "tcpedud with kernel_source = bpf exits %d: %s", code, err);
                why[strcspn(why, "\n")] = 0;
                bool ebpf = has(err, "eBPF source cannot be used");
                harness_teardown();
                if (ebpf)
                        return skip(why);
                printf("FAILED: %s\n", why);
                return 1;
        }
        (void)daemon_stop(probe);
        harness_teardown();

        static CU_TestInfo tests[] = {
                { "auto where eBPF loads: bpf, every step from the tracepoint", test_auto_loads },
                { "no CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN: auto on tcp_info and says why; bpf exits 1", test_no_capabilities },
                { "no BTF: auto on tcp_info and says why; bpf exits 78", test_no_btf },
                { "a burst of 10,000 connections a second: chains, counters, no BUG", test_burst },
                { "the ring buffer overflows while the daemon is stopped: dropped, warned, fallen back", test_ring_overflow },
                { "events of sockets the daemon never had: unmatched, nothing logged", test_unmatched },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "kernel source", harness_suite_init, harness_suite_cleanup, harness_setup, ks_teardown, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
