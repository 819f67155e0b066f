/* SPDX-License-Identifier: MIT */
/* The daemon under test: start, readiness, reload, stop, its listeners and memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness-private.h"

static int pidfd_wait(pid_t pid, int timeout_ms) {
        int pfd = pidfd_open_(pid);
        if (pfd < 0)
                return -errno;
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        close(pfd);
        return r > 0 ? 0 : -ETIMEDOUT;
}

bool daemon_alive(Daemon *d) {
        int status;
        if (d->reaped)
                return false;
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid) {
                d->reaped = true;
                d->exit_code = exit_code_of(status);
                return false;
        }
        return true;
}

int daemon_kill(Daemon *d, int sig) {
        if (d->reaped)
                return -ESRCH;
        return kill(d->pid, sig) < 0 ? -errno : 0;
}

int daemon_wait_exit(Daemon *d, int timeout_ms) {
        if (!d->reaped) {
                if (pidfd_wait(d->pid, timeout_ms) < 0 && daemon_alive(d))
                        return -ETIMEDOUT;
                int status;
                if (!d->reaped && waitpid(d->pid, &status, 0) == d->pid) {
                        d->reaped = true;
                        d->exit_code = exit_code_of(status);
                }
        }
        return d->exit_code;
}

int daemon_stop(Daemon *d) {
        if (d->reaped)
                return d->exit_code;
        (void)kill(d->pid, SIGTERM);
        int r = daemon_wait_exit(d, STOP_TIMEOUT_MS);
        if (r == -ETIMEDOUT) {
                printf("\n    harness: tcpedud (pid %d) did not exit within %d ms of SIGTERM: SIGKILL\n", (int)d->pid, STOP_TIMEOUT_MS);
                (void)kill(-d->pid, SIGKILL);
                (void)daemon_wait_exit(d, STOP_TIMEOUT_MS);
                daemon_print_stderr(d);
                return -ETIMEDOUT;
        }
        if (r != 0)
                daemon_print_stderr(d);
        return r;
}

void daemon_print_stderr(Daemon *d) {
        char *s = read_file_text(d->stderr_path);
        printf("\n    ---- tcpedud (pid %d) stderr ----\n%s    ---- end ----\n", (int)d->pid, s && *s ? s : "(empty)\n");
        fflush(stdout);
}

void daemon_drain_notify(Daemon *d) {
        char buf[4096];
        while (recv(d->notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
}

static bool datagram_has_line(char *buf, const char *line) {
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (strcmp(l, line) == 0)
                        return true;
        return false;
}

int daemon_wait_notify(Daemon *d, const char *line, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        int pfd = d->reaped ? -1 : pidfd_open_(d->pid);

        for (;;) {
                char buf[4096];
                ssize_t n = recv(d->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (n > 0) {
                        buf[n] = 0;
                        if (datagram_has_line(buf, line)) {
                                if (pfd >= 0)
                                        close(pfd);
                                return 0;
                        }
                        continue;
                }
                if (!daemon_alive(d)) {
                        if (pfd >= 0)
                                close(pfd);
                        return -ECHILD;
                }
                int left = remaining_ms(deadline);
                if (left == 0) {
                        if (pfd >= 0)
                                close(pfd);
                        return -ETIMEDOUT;
                }
                struct pollfd p[2] = { { .fd = d->notify_fd, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
                (void)poll(p, pfd >= 0 ? 2 : 1, left);
        }
}

Daemon *daemon_start(const char *config, const DaemonOptions *opts) {
        static const DaemonOptions none = {};
        const char *dir = harness_tmpdir();
        int out_fd = -1, err_fd = -1;

        if (!opts)
                opts = &none;
        REQUIRE(dir != NULL, "cannot create a temp dir: %m");
        Daemon *d = calloc(1, sizeof(Daemon));
        REQUIRE(d != NULL, "out of memory");
        d->notify_fd = -1;
        REQUIRE(track_daemon(d) == 0, "too many daemons in one test");
        d->dir = strdup(dir);
        if (asprintf(&d->conf_path, "%s/tcpedud.conf", dir) < 0 || asprintf(&d->stdout_path, "%s/stdout", dir) < 0 ||
            asprintf(&d->stderr_path, "%s/stderr", dir) < 0 || asprintf(&d->notify_path, "%s/notify", dir) < 0)
                abort();
        REQUIRE(write_file(d->conf_path, config) == 0, "cannot write %s", d->conf_path);
        REQUIRE(write_harness_dropin(d->conf_path) == 0, "cannot write the drop-in of %s", d->conf_path);
        if (opts->dropin)
                REQUIRE(write_file(tstr("%s.d/50-test.conf", d->conf_path), opts->dropin) == 0, "cannot write the test's drop-in");

        d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", d->notify_path);
        REQUIRE(d->notify_fd >= 0 && bind(d->notify_fd, (struct sockaddr *)&un, sizeof(un)) == 0, "notify socket %s: %m", d->notify_path);
        if (opts->open_dir) {
                /* A daemon that gives up root must still read its config on reload and reach the
                 * notify socket. */
                REQUIRE(chmod(dir, 0755) == 0 && chmod(d->notify_path, 0666) == 0 && chmod(tstr("%s.d", d->conf_path), 0755) == 0,
                        "chmod in %s: %m", dir);
        }

        if (opts->log_target)
                d->journal = strcmp(opts->log_target, "journal") == 0;
        else
                d->journal = access(JOURNAL_SOCKET, F_OK) == 0;
        const char *target = opts->log_target ? tstr("--log-target=%s", opts->log_target)
                             : d->journal     ? "--log-target=journal"
                                              : "--log-target=stderr";
        const char *argv[] = { TCPEDUD_PATH, "-c", d->conf_path, target, NULL };
        char **env = child_env(tstr("NOTIFY_SOCKET=%s", d->notify_path));

        out_fd = open(d->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        err_fd = open(d->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(out_fd >= 0 && err_fd >= 0, "cannot create output files in %s", dir);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
                child_exec(argv, env, out_fd, err_fd, opts->nofile);
        close(out_fd);
        close(err_fd);
        REQUIRE(pid > 0, "fork: %m");
        d->pid = pid;
        (void)setpgid(pid, pid);

        int r = daemon_wait_notify(d, "READY=1", READY_TIMEOUT_MS);
        if (r < 0) {
                if (r == -ECHILD)
                        harness_report(__FILE__, __LINE__, "tcpedud exited (code %d) before READY=1", d->exit_code);
                else
                        harness_report(__FILE__, __LINE__, "tcpedud sent no READY=1 within %d ms: killed", READY_TIMEOUT_MS);
                daemon_print_stderr(d);
                if (!d->reaped) {
                        (void)kill(-d->pid, SIGKILL);
                        (void)daemon_wait_exit(d, STOP_TIMEOUT_MS);
                }
                CU_FAIL_FATAL("tcpedud did not become ready");
                return NULL;
        }
        return d;
}

int daemon_reload(Daemon *d, const char *config) {
        int r = write_file(d->conf_path, config);
        if (r < 0)
                return r;
        daemon_drain_notify(d);
        if (kill(d->pid, SIGHUP) < 0)
                return -errno;
        r = daemon_wait_notify(d, "RELOADING=1", READY_TIMEOUT_MS);
        if (r < 0)
                return r;
        return daemon_wait_notify(d, "READY=1", READY_TIMEOUT_MS);
}

static size_t socket_inodes(pid_t pid, unsigned long *ret, size_t max) {
        char path[64], link[64];
        size_t n = 0;
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *dir = opendir(path);
        if (!dir)
                return 0;
        for (struct dirent *de; (de = readdir(dir)) && n < max;) {
                char p[512];
                unsigned long ino;
                snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
                ssize_t k = readlink(p, link, sizeof(link) - 1);
                if (k <= 0)
                        continue;
                link[k] = 0;
                if (sscanf(link, "socket:[%lu]", &ino) == 1)
                        ret[n++] = ino;
        }
        closedir(dir);
        return n;
}

/* One /proc/net/tcp{,6} file: LISTEN rows (state 0A) whose inode is one of ours. */
static size_t scan_proc_net(const char *file, int family, const unsigned long *inodes, size_t n_inodes, Addr *ret, size_t max) {
        FILE *f = fopen(file, "re");
        char line[512];
        size_t n = 0;
        if (!f)
                return 0;
        if (!fgets(line, sizeof(line), f)) { /* header */
                fclose(f);
                return 0;
        }
        while (n < max && fgets(line, sizeof(line), f)) {
                char local[40];
                unsigned port, state;
                unsigned long inode;
                if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*u %lu", local, &port, &state, &inode) != 4)
                        continue;
                if (state != 0x0A)
                        continue;
                bool ours = false;
                for (size_t i = 0; i < n_inodes && !ours; i++)
                        ours = inodes[i] == inode;
                if (!ours)
                        continue;
                Addr *a = &ret[n];
                memset(a, 0, sizeof(*a));
                /* The kernel prints each 32-bit word of the address as a host-order number. */
                if (family == AF_INET) {
                        uint32_t w;
                        if (sscanf(local, "%8x", &w) != 1)
                                continue;
                        a->in.sin_family = AF_INET;
                        a->in.sin_addr.s_addr = w;
                        a->in.sin_port = htons((uint16_t)port);
                } else {
                        uint32_t w[4];
                        if (strlen(local) != 32 || sscanf(local, "%8x%8x%8x%8x", &w[0], &w[1], &w[2], &w[3]) != 4)
                                continue;
                        a->in6.sin6_family = AF_INET6;
                        memcpy(&a->in6.sin6_addr, w, 16);
                        a->in6.sin6_port = htons((uint16_t)port);
                }
                n++;
        }
        fclose(f);
        return n;
}

int daemon_listeners(Daemon *d, Addr *ret, size_t max) {
        unsigned long inodes[1024];
        size_t n_inodes = socket_inodes(d->pid, inodes, 1024);
        size_t n = scan_proc_net("/proc/net/tcp", AF_INET, inodes, n_inodes, ret, max);
        n += scan_proc_net("/proc/net/tcp6", AF_INET6, inodes, n_inodes, ret + n, max - n);
        return (int)n;
}

bool daemon_listener(Daemon *d, const char *ip, Addr *ret) {
        Addr all[64], want;
        if (addr_parse_ip(ip, 0, &want) < 0)
                return false;
        int n = daemon_listeners(d, all, 64);
        for (int i = 0; i < n; i++) {
                if (all[i].sa.sa_family != want.sa.sa_family)
                        continue;
                if (want.sa.sa_family == AF_INET ? all[i].in.sin_addr.s_addr == want.in.sin_addr.s_addr
                                                 : memcmp(&all[i].in6.sin6_addr, &want.in6.sin6_addr, 16) == 0) {
                        *ret = all[i];
                        return true;
                }
        }
        return false;
}

bool tcp_socket_info(uint16_t local_port, uint16_t remote_port, TcpSocketInfo *ret) {
        static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
        bool found = false;
        for (size_t i = 0; i < 2 && !found; i++) {
                FILE *f = fopen(files[i], "re");
                char line[512];
                if (!f)
                        continue;
                while (!found && fgets(line, sizeof(line), f)) {
                        unsigned lp, rp, state;
                        unsigned long tx, rx;
                        if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x %lx:%lx", &lp, &rp, &state, &tx, &rx) != 5)
                                continue;
                        if (lp == local_port && rp == remote_port && state != 0x0A) {
                                *ret = (TcpSocketInfo){ .state = (int)state, .send_q = tx, .recv_q = rx };
                                found = true;
                        }
                }
                fclose(f);
        }
        return found;
}

long daemon_vmrss_kb(Daemon *d) {
        char *s = read_file_text(tstr("/proc/%d/status", (int)d->pid));
        const char *p = s ? strstr(s, "\nVmRSS:") : NULL;
        return p ? strtol(p + 7, NULL, 10) : -1;
}

long daemon_cpu_ms(Daemon *d) {
        char *s = read_file_text(tstr("/proc/%d/stat", (int)d->pid));
        /* after "(comm)", which may contain spaces: state is field 3, utime 14, stime 15 */
        const char *p = s ? strrchr(s, ')') : NULL;
        unsigned long utime, stime;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                return -1;
        long hz = sysconf(_SC_CLK_TCK);
        return (long)((utime + stime) * 1000 / (unsigned long)(hz > 0 ? hz : 100));
}

int daemon_fd_count(Daemon *d) {
        DIR *dir = opendir(tstr("/proc/%d/fd", (int)d->pid));
        int n = 0;
        if (!dir)
                return -1;
        for (struct dirent *de; (de = readdir(dir));)
                n += de->d_name[0] != '.';
        closedir(dir);
        return n;
}

const char *daemon_fd_list(Daemon *d) {
        DIR *dir = opendir(tstr("/proc/%d/fd", (int)d->pid));
        char *out = tstr("%s", "");
        if (!dir)
                return "(unreadable)";
        for (struct dirent *de; (de = readdir(dir));) {
                char target[256];
                if (de->d_name[0] == '.')
                        continue;
                ssize_t n = readlink(tstr("/proc/%d/fd/%s", (int)d->pid, de->d_name), target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = 0;
                out = tstr("%s%s%s=%s", out, *out ? " " : "", de->d_name, target);
        }
        closedir(dir);
        return out;
}

rlim_t raise_nofile(rlim_t n) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 0;
        if (rl.rlim_cur < n) {
                rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        return rl.rlim_cur;
}
