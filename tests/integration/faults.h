/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the fault-injection tests (test-faults-*.c): tcpeductl with JSON replies, raw control
 * connections, a private network namespace with small TCP buffers, and many client sockets at
 * once. Every helper is static and may go unused in one of them. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "test-util.h"

#define FHELPER static __attribute__((unused))
#define MID_LIMIT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0d"
#define MID_LOG_DROPPED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0a"
#define MID_CHAT_DROP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a12"
#define MID_CONNECT_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a13"

/* Sanitizer builds are slower and their RSS is not the daemon's: the tests say what they skip. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* ---- JSON values freed at teardown ---- */

static json_object **fjson;
static size_t n_fjson, cap_fjson;

static json_object *fkeep(json_object *o) {
        if (!o)
                return NULL;
        if (n_fjson == cap_fjson) {
                size_t cap = cap_fjson ? cap_fjson * 2 : 64;
                json_object **n = realloc(fjson, cap * sizeof(*n));
                if (!n)
                        abort();
                fjson = n;
                cap_fjson = cap;
        }
        fjson[n_fjson++] = o;
        return o;
}

static void faults_teardown(void) {
        for (size_t i = 0; i < n_fjson; i++)
                json_object_put(fjson[i]);
        n_fjson = 0;
        harness_teardown();
}

#define FAULTS_SUITE(name, tests)                                                                                                          \
        { name, harness_suite_init, harness_suite_cleanup, harness_setup, faults_teardown, tests }

/* A value by path, "log.dropped": NULL if absent. */
FHELPER json_object *jpath(json_object *o, const char *path) {
        char key[64];
        while (o && *path) {
                size_t n = strcspn(path, ".");
                snprintf(key, sizeof(key), "%.*s", (int)n, path);
                json_object *v;
                o = json_object_object_get_ex(o, key, &v) ? v : NULL;
                path += n + (path[n] == '.');
        }
        return o;
}

FHELPER long long jnum(json_object *o, const char *path) {
        json_object *v = jpath(o, path);
        return v ? (long long)json_object_get_int64(v) : -1;
}

FHELPER const char *jtxt(json_object *o, const char *path) {
        json_object *v = jpath(o, path);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* ---- tcpeductl ---- */

/* tcpeductl --json ARGS...: the reply, or NULL after a failed EXPECT. */
FHELPER json_object *ctl_json_at(const char *file, int line, Daemon *d, const char *arg, ...) {
        RunResult r;
        va_list ap;
        va_start(ap, arg);
        int k = ctl_socket_v(control_socket(d), "--json", &r, arg, ap);
        va_end(ap);
        bool ok = k == 0 && r.exit_code == 0;
        if (!ok)
                harness_report(file, line, "tcpeductl --json %s: %s, exit %d: %s", arg, k < 0 ? strerror(-k) : "ran", r.exit_code,
                               r.err ? r.err : "");
        CU_assertImplementation(ok, (unsigned)line, "tcpeductl answers", file, "", CU_FALSE);
        if (!ok)
                return NULL;
        json_object *o = fkeep(json_tokener_parse(r.out));
        if (!o)
                harness_report(file, line, "tcpeductl --json %s: not JSON: %s", arg, r.out);
        return o;
}
#define CTL_JSON(d, ...) ctl_json_at(__FILE__, __LINE__, d, __VA_ARGS__, NULL)

/* ---- raw control connections ---- */

FHELPER int control_connect(Daemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_socket(d));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* One line (without '\n') within timeout_ms, byte by byte: NULL on EOF, error or timeout. */
FHELPER char *control_line(int fd, int timeout_ms) {
        static char buf[1 << 16];
        size_t len = 0;
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        while (len < sizeof(buf) - 1) {
                ssize_t n = recv(fd, buf + len, 1, MSG_DONTWAIT);
                if (n == 1) {
                        if (buf[len] == '\n') {
                                buf[len] = 0;
                                return tstr("%s", buf);
                        }
                        len++;
                        continue;
                }
                if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        return NULL;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);
                if (left == 0 || poll(&p, 1, left) <= 0)
                        return NULL;
        }
        return NULL;
}

/* ---- the daemon's file descriptors ---- */

/* Wait until the daemon has exactly want fds open (it closes them asynchronously): the last count. */
FHELPER int wait_fd_count(Daemon *d, int want, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        int n;
        while ((n = daemon_fd_count(d)) != want && now_ms() < deadline)
                (void)poll(NULL, 0, 50);
        return n;
}

/* The daemon's fd count once it has settled (a connection that just closed may still hold one for a
 * moment): the same count twice, 200 ms apart. */
FHELPER int settled_fd_count(Daemon *d) {
        int n = daemon_fd_count(d);
        for (int i = 0; i < 25; i++) {
                (void)poll(NULL, 0, 200);
                int k = daemon_fd_count(d);
                if (k == n)
                        break;
                n = k;
        }
        return n;
}

/* ---- a network namespace of the test's own ---- */

/* Move this process (and what it starts later) into a new network namespace with its loopback up,
 * and give TCP small buffers there: tcp_rmem and tcp_wmem "4096 16384 MAX". Then what a client that
 * does not read costs the daemon is its own queues, not megabytes in the kernel's socket buffers.
 * Nothing outside the namespace is touched. Needs root; false (and why) otherwise. */
FHELPER bool private_netns(unsigned max_buffer) {
        if (unshare(CLONE_NEWNET) < 0) {
                printf("\n    cannot make a network namespace (%s)\n", strerror(errno));
                return false;
        }
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        bool up = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
        ifr.ifr_flags |= IFF_UP;
        up = up && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
        if (s >= 0)
                close(s);
        if (!up) {
                printf("\n    cannot bring up lo in the new namespace (%s)\n", strerror(errno));
                return false;
        }
        const char *value = tstr("4096 16384 %u\n", max_buffer);
        static const char *const files[] = { "/proc/sys/net/ipv4/tcp_wmem", "/proc/sys/net/ipv4/tcp_rmem" };
        for (size_t i = 0; i < 2; i++) {
                int fd = open(files[i], O_WRONLY | O_CLOEXEC);
                bool ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
                if (fd >= 0)
                        close(fd);
                if (!ok) {
                        printf("\n    cannot set %s in the new namespace (%s)\n", files[i], strerror(errno));
                        return false;
                }
        }
        return true;
}

/* ---- a journald of the test's own ---- */

#define JOURNALD_BIN "/lib/systemd/systemd-journald"
#define JOURNAL_DIR "/run/systemd/journal"

static pid_t journald_pid = -1;

/* Give this process a mount namespace of its own in which /run/systemd/journal, /run/log/journal
 * and /var/log/journal are empty tmpfs mounts, and journald.conf turns rate limiting off: a journald
 * started there (journald_start) serves this program's daemons and journalctl alone, and the test
 * may stop it, kill it and start another without touching the journald other tests share (whose
 * rate limit, 10,000 entries in 30 s per service, a load test would also exceed). Needs root. */
FHELPER bool private_journal_mounts(void) {
        static const char *const dirs[] = { JOURNAL_DIR, "/run/log/journal", "/var/log/journal" };
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                printf("\n    cannot make a mount namespace (%s)\n", strerror(errno));
                return false;
        }
        for (size_t i = 0; i < 3; i++) {
                if (i < 2)
                        (void)mkdir(dirs[i], 0755); /* /run/systemd exists wherever journald can run */
                if (access(dirs[i], F_OK) == 0 && mount("tmpfs", dirs[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=512m") < 0) {
                        printf("\n    cannot mount a tmpfs on %s (%s)\n", dirs[i], strerror(errno));
                        return false;
                }
        }
        const char *conf = JOURNAL_DIR "/test-journald.conf";
        int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const char *text = "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRuntimeMaxUse=400M\nReadKMsg=no\n"
                           "ForwardToSyslog=no\nForwardToWall=no\n";
        bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
        if (fd >= 0)
                close(fd);
        if (!ok || mount(conf, "/etc/systemd/journald.conf", NULL, MS_BIND, NULL) < 0) {
                printf("\n    cannot put a journald.conf in place (%s)\n", strerror(errno));
                return false;
        }
        return true;
}

/* Start journald in the namespace and wait for its socket (5 s). */
FHELPER bool journald_start(void) {
        static const char *const stale[] = { JOURNAL_DIR "/socket", JOURNAL_DIR "/stdout", JOURNAL_DIR "/dev-log", JOURNAL_DIR "/syslog" };
        for (size_t i = 0; i < 4; i++)
                (void)unlink(stale[i]);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                (void)setsid();
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                int null_fd = open("/dev/null", O_RDWR);
                if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
                        _exit(126);
                (void)syscall(SYS_close_range, 3U, ~0U, 0U);
                execl(JOURNALD_BIN, JOURNALD_BIN, (char *)NULL);
                _exit(127);
        }
        if (pid < 0)
                return false;
        journald_pid = pid;
        for (int i = 0; i < 100; i++) {
                if (access(JOURNAL_DIR "/socket", F_OK) == 0)
                        return true;
                (void)poll(NULL, 0, 50);
        }
        printf("\n    the test's journald made no socket within 5 s\n");
        return false;
}

/* Kill it (a stopped one too) and reap it. */
FHELPER void journald_kill(void) {
        if (journald_pid <= 0)
                return;
        (void)kill(journald_pid, SIGKILL);
        (void)kill(journald_pid, SIGCONT);
        (void)waitpid(journald_pid, NULL, 0);
        journald_pid = -1;
}

static void journald_kill_at_exit(void) {
        journald_kill();
}

/* Both: a private journald for this whole program; false (and why) if not root or it failed. */
FHELPER bool private_journald(void) {
        if (geteuid() != 0 || !private_journal_mounts() || !journald_start())
                return false;
        atexit(journald_kill_at_exit);
        return true;
}
