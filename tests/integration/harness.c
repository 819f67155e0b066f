/* SPDX-License-Identifier: MIT */
/* The harness core: the registry that teardown empties, small utilities, addresses, and running a
 * program to completion. The daemon, sockets and the journal have their own harness-*.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness-private.h"

#ifndef TCPEDUD_PATH
#error "TCPEDUD_PATH must name the tcpedud binary under test"
#endif

#define MAX_TRACKED 4096

extern char **environ;

/* ---- the registry of what a test created ---- */

static Daemon *daemons[64];
static size_t n_daemons;
static char *dirs[64];
static size_t n_dirs;
static int fds[MAX_TRACKED];
static size_t n_fds;
static void **allocs;
static size_t n_allocs, allocs_cap;
static JList **jlists;
static size_t n_jlists, jlists_cap;
static const char *scratch; /* one of dirs[] */

void *track_alloc(void *p) {
        if (!p)
                return NULL;
        if (n_allocs == allocs_cap) {
                size_t cap = allocs_cap ? allocs_cap * 2 : 64;
                void **n = realloc(allocs, cap * sizeof(void *));
                if (!n) {
                        free(p);
                        return NULL;
                }
                allocs = n;
                allocs_cap = cap;
        }
        allocs[n_allocs++] = p;
        return p;
}

void track_jlist(JList *l) {
        if (n_jlists == jlists_cap) {
                size_t cap = jlists_cap ? jlists_cap * 2 : 32;
                JList **n = realloc(jlists, cap * sizeof(JList *));
                if (!n)
                        abort();
                jlists = n;
                jlists_cap = cap;
        }
        jlists[n_jlists++] = l;
}

void track_fd(int fd) {
        if (n_fds < MAX_TRACKED)
                fds[n_fds++] = fd;
}

void untrack_fd(int fd) {
        for (size_t i = 0; i < n_fds; i++)
                if (fds[i] == fd) {
                        fds[i] = fds[--n_fds];
                        return;
                }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

static void rm_rf(const char *path) {
        (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int pidfd_open_(pid_t pid) {
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

int track_daemon(Daemon *d) {
        if (n_daemons >= sizeof(daemons) / sizeof(daemons[0])) {
                free(d);
                return -ENOBUFS;
        }
        daemons[n_daemons++] = d;
        return 0;
}

static void daemon_free(Daemon *d) {
        if (d->pid > 0 && !d->reaped) {
                /* A leftover of a failed test: the whole process group goes. */
                (void)kill(-d->pid, SIGKILL);
                (void)kill(d->pid, SIGKILL);
                (void)waitpid(d->pid, NULL, 0);
                printf("harness: killed leftover tcpedud (pid %d)\n", (int)d->pid);
        }
        if (d->notify_fd >= 0)
                close(d->notify_fd);
        free(d->dir);
        free(d->conf_path);
        free(d->stdout_path);
        free(d->stderr_path);
        free(d->notify_path);
        free(d);
}

static uint64_t test_start_ms;

void harness_setup(void) {
        /* A reset client socket must give EPIPE, not kill the test. */
        signal(SIGPIPE, SIG_IGN);
        test_start_ms = now_ms();
}

void harness_teardown(void) {
        if (test_start_ms) {
                printf("(%.1f s) ", (double)(now_ms() - test_start_ms) / 1000.0);
                test_start_ms = 0;
        }
        for (size_t i = 0; i < n_daemons; i++)
                daemon_free(daemons[i]);
        n_daemons = 0;
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        n_fds = 0;
        for (size_t i = 0; i < n_dirs; i++) {
                rm_rf(dirs[i]);
                free(dirs[i]);
        }
        n_dirs = 0;
        scratch = NULL;
        for (size_t i = 0; i < n_jlists; i++) {
                for (size_t k = 0; k < jlists[i]->n; k++)
                        json_object_put(jlists[i]->e[k]);
                free(jlists[i]->e);
                free(jlists[i]);
        }
        free(jlists);
        jlists = NULL;
        n_jlists = jlists_cap = 0;
        for (size_t i = 0; i < n_allocs; i++)
                free(allocs[i]);
        free(allocs);
        allocs = NULL;
        n_allocs = allocs_cap = 0;
        fflush(stdout);
}

int harness_suite_init(void) {
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

int harness_suite_cleanup(void) {
        harness_teardown();
        return 0;
}

void harness_report(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        printf("\n    %s:%d: ", file, line);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

/* ---- small utilities ---- */

char *tstr(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                abort();
        return track_alloc(s);
}

uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int remaining_ms(uint64_t deadline) {
        uint64_t now = now_ms();
        return now >= deadline ? 0 : (int)(deadline - now);
}

const char *harness_tmpdir(void) {
        char tmpl[] = "/tmp/tcpedu-it-XXXXXX";
        if (n_dirs >= sizeof(dirs) / sizeof(dirs[0]) || !mkdtemp(tmpl))
                return NULL;
        dirs[n_dirs] = strdup(tmpl);
        return dirs[n_dirs++];
}

char *unique_name(const char *base) {
        uint32_t r;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                r = (uint32_t)getpid() ^ (uint32_t)now_ms();
        return tstr("%s-%08x", base, r);
}

bool journal_available(const char *test) {
        if (access(JOURNAL_SOCKET, F_OK) == 0)
                return true;
        printf("\n    SKIPPED journal assertions of %s: %s does not exist (no journald)\n", test, JOURNAL_SOCKET);
        return false;
}

int write_file(const char *path, const char *text) {
        /* Write a new file and rename it over: the daemon never reads a half-written config. */
        char *tmp = tstr("%s.tmp", path);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return -errno;
        size_t len = strlen(text);
        bool ok = fwrite(text, 1, len, f) == len;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) < 0) {
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

int write_harness_dropin(const char *conf_path) {
        char *dir = tstr("%s.d", conf_path);
        const char *slash = strrchr(conf_path, '/');
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* user = root: a test daemon started as root stays root unless the test says otherwise (with a
         * user tcpedu on the machine, the default would switch to it). */
        /* kernel_source: tcp_info unless the test names one, or TCPEDU_TEST_KERNEL_SOURCE does (the
         * suite's expectations are written for the source a daemon without CAP_BPF has; the eBPF
         * source has tests of its own, and the whole suite can be run on it with that variable). */
        const char *text = read_file_text(conf_path), *ks = getenv("TCPEDU_TEST_KERNEL_SOURCE");
        bool named = text && strstr(text, "kernel_source");
        return write_file(tstr("%s/00-harness.conf", dir),
                          tstr("[daemon]\ncontrol_socket = %.*s/control.sock\nuser = root\n%s%s%s", slash ? (int)(slash - conf_path) : 1,
                               slash ? conf_path : ".", named ? "" : "kernel_source = ",
                               named       ? ""
                               : ks && *ks ? ks
                                           : "tcp_info",
                               named ? "" : "\n"));
}

char *read_file_text(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 4096) {
                        cap = cap ? cap * 2 : 8192;
                        char *n = realloc(buf, cap);
                        if (!n) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = n;
                }
                size_t k = fread(buf + len, 1, cap - len - 1, f);
                len += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        buf[len] = 0;
        return track_alloc(buf);
}

void fill_pattern(uint8_t *buf, size_t len, uint64_t seed) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = (uint8_t)(x >> 24);
        }
}

/* ---- addresses ---- */

char *addr_format(const Addr *a, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];
        if (a->sa.sa_family == AF_INET6) {
                inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
                snprintf(buf, size, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
        } else {
                inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
                snprintf(buf, size, "%s:%u", ip, ntohs(a->in.sin_port));
        }
        return buf;
}

uint16_t addr_port(const Addr *a) {
        return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port);
}

int addr_parse_ip(const char *ip, uint16_t port, Addr *ret) {
        memset(ret, 0, sizeof(*ret));
        if (inet_pton(AF_INET, ip, &ret->in.sin_addr) == 1) {
                ret->in.sin_family = AF_INET;
                ret->in.sin_port = htons(port);
                return 0;
        }
        if (inet_pton(AF_INET6, ip, &ret->in6.sin6_addr) == 1) {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_port = htons(port);
                return 0;
        }
        return -EINVAL;
}

socklen_t addr_len(const Addr *a) {
        return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

char *sock_local(int fd, char *buf, size_t size) {
        Addr a;
        socklen_t len = sizeof(a);
        if (getsockname(fd, &a.sa, &len) < 0) {
                snprintf(buf, size, "?");
                return buf;
        }
        return addr_format(&a, buf, size);
}

/* ---- processes ---- */

/* environ without the service manager's variables, plus extra (may be NULL). Freed at teardown. */
char **child_env(const char *extra) {
        size_t n = 0;
        while (environ[n])
                n++;
        char **env = track_alloc(calloc(n + 2, sizeof(char *)));
        if (!env)
                abort();
        /* Nothing of a service manager that may have started us: no notify socket, no socket
         * activation, no watchdog; the tests decide. */
        static const char *const drop[] = { "NOTIFY_SOCKET=",  "LISTEN_FDS=",    "LISTEN_PID=",
                                            "LISTEN_FDNAMES=", "WATCHDOG_USEC=", "WATCHDOG_PID=" };
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                bool keep = true;
                for (size_t j = 0; j < sizeof(drop) / sizeof(drop[0]); j++)
                        keep = keep && strncmp(environ[i], drop[j], strlen(drop[j])) != 0;
                if (keep)
                        env[k++] = environ[i];
        }
        if (extra)
                env[k++] = (char *)extra;
        env[k] = NULL;
        return env;
}

/* In the child between fork and exec: async-signal-safe calls only. */
void child_exec(const char *const *argv, char **env, int out_fd, int err_fd, rlim_t nofile) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        (void)setpgid(0, 0);
        /* If the test process dies (ctest timeout), so does the daemon. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                _exit(126);
        /* No test socket may leak into the daemon: it would keep connections open. */
        (void)syscall(SYS_close_range, 3U, ~0U, 0U);
        if (nofile) {
                struct rlimit rl = { nofile, nofile };
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(125);
        }
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
}

int exit_code_of(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -1;
}

/* One scratch dir per test for the output of programs run to completion. */
static const char *scratch_dir(void) {
        if (!scratch)
                scratch = harness_tmpdir();
        return scratch;
}

int run_capture(const char *const *argv, int timeout_ms, RunResult *ret) {
        static unsigned counter;
        const char *dir = scratch_dir();
        *ret = (RunResult){ .exit_code = -1 };
        if (!dir)
                return -EIO;
        counter++;
        char *out_path = tstr("%s/run-%u.out", dir, counter), *err_path = tstr("%s/run-%u.err", dir, counter);
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char **env = child_env(NULL);
        if (out_fd < 0 || err_fd < 0) {
                if (out_fd >= 0)
                        close(out_fd);
                if (err_fd >= 0)
                        close(err_fd);
                return -EIO;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
                child_exec(argv, env, out_fd, err_fd, 0);
        close(out_fd);
        close(err_fd);
        if (pid < 0)
                return -errno;
        int pfd = pidfd_open_(pid);
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        int status = 0;
        if (pfd < 0 || poll(&p, 1, timeout_ms) <= 0) {
                printf("\n    harness: %s did not exit within %d ms: killed\n", argv[0], timeout_ms);
                (void)kill(-pid, SIGKILL);
                (void)kill(pid, SIGKILL);
                (void)waitpid(pid, &status, 0);
                if (pfd >= 0)
                        close(pfd);
                ret->out = read_file_text(out_path);
                ret->err = read_file_text(err_path);
                unlink(out_path);
                unlink(err_path);
                return -ETIMEDOUT;
        }
        close(pfd);
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        ret->exit_code = exit_code_of(status);
        ret->out = read_file_text(out_path);
        ret->err = read_file_text(err_path);
        unlink(out_path);
        unlink(err_path);
        if (!ret->out)
                ret->out = tstr("%s", "");
        if (!ret->err)
                ret->err = tstr("%s", "");
        return 0;
}

int run_tcpedud(RunResult *ret, const char *arg, ...) {
        const char *argv[32] = { TCPEDUD_PATH };
        size_t n = 1;
        va_list ap;
        va_start(ap, arg);
        for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
                argv[n++] = a;
        va_end(ap);
        argv[n] = NULL;
        return run_capture(argv, STOP_TIMEOUT_MS, ret);
}

/* ---- tcpeductl ---- */

#define CTL_ARGS_MAX 32 /* argv slots, the NULL included */

const char *control_socket(Daemon *d) {
        return tstr("%s/control.sock", d->dir);
}

int ctl_socket_v(const char *socket, const char *option, RunResult *r, const char *first, va_list ap) {
        const char *argv[CTL_ARGS_MAX] = { TCPEDUCTL_PATH, "-s", socket };
        size_t n = 3;
        if (option)
                argv[n++] = option;
        for (const char *a = first; a && n < CTL_ARGS_MAX - 1; a = va_arg(ap, const char *))
                argv[n++] = a;
        argv[n] = NULL;
        return run_capture(argv, CTL_TIMEOUT_MS, r);
}

int ctl_socket(const char *socket, RunResult *r, const char *arg, ...) {
        va_list ap;
        va_start(ap, arg);
        int k = ctl_socket_v(socket, NULL, r, arg, ap);
        va_end(ap);
        return k;
}

int ctl_v(Daemon *d, RunResult *r, const char *first, va_list ap) {
        return ctl_socket_v(control_socket(d), NULL, r, first, ap);
}

int ctl(Daemon *d, RunResult *r, const char *arg, ...) {
        va_list ap;
        va_start(ap, arg);
        int k = ctl_v(d, r, arg, ap);
        va_end(ap);
        return k;
}
