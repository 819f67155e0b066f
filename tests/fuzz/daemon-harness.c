/* SPDX-License-Identifier: MIT */
#include "daemon-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz.h"

FuzzDaemon fuzz_daemon;

/* The daemon's journal writer thread ends here instead of in journald: the runs must not flood the
 * machine's journal. This definition takes the place of libsystemd's for the daemon code linked
 * into the target. What it checks: every entry is fields of the form KEY=value, each key valid
 * for journald. */
int sd_journal_sendv(const struct iovec *iov, int n) {
        FUZZ_CHECK(n > 0);
        for (int i = 0; i < n; i++) {
                const char *p = iov[i].iov_base, *eq = memchr(p, '=', iov[i].iov_len);
                FUZZ_CHECK(eq && eq > p && !memchr(p, '\n', iov[i].iov_len));
                for (const char *k = p; k < eq; k++)
                        FUZZ_CHECK((*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_');
        }
        __atomic_add_fetch(&fuzz_daemon.journal_entries, 1, __ATOMIC_RELAXED);
        return 0;
}

bool fuzz_daemon_netns(void) {
        if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
                return false;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { .ifr_name = "lo" };
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
        ifr.ifr_flags |= IFF_UP;
        FUZZ_CHECK(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
        close(fd);
        fuzz_daemon.netns = true;
        return true;
}

static void cleanup(void) {
        unlink(fuzz_daemon.control_path);
        unlink(fuzz_daemon.config_path);
        rmdir(fuzz_daemon.dir);
}

void fuzz_daemon_start(const char *body) {
        FuzzDaemon *d = &fuzz_daemon;
        ConfigErrors errs = {};
        Config *config = NULL;
        char error[512];

        snprintf(d->dir, sizeof(d->dir), "/tmp/tcpedu-fuzz-daemon.XXXXXX");
        FUZZ_CHECK(mkdtemp(d->dir));
        /* an unprivileged client must reach the control socket (the socket itself is 0666) */
        FUZZ_CHECK(chmod(d->dir, 0711) == 0);
        snprintf(d->config_path, sizeof(d->config_path), "%.63s/tcpedud.conf", d->dir);
        snprintf(d->control_path, sizeof(d->control_path), "%.63s/control.sock", d->dir);
        atexit(cleanup);

        FILE *f = fopen(d->config_path, "we");
        FUZZ_CHECK(f);
        fprintf(f, "[daemon]\ncontrol_socket = %s\n%s", d->control_path, body);
        FUZZ_CHECK(fclose(f) == 0);
        if (config_load(d->config_path, &config, &errs) < 0) {
                config_errors_print(&errs, stderr);
                FUZZ_CHECK(!"the harness's config loads");
        }

        /* as tcpedud's main() does: the signals go to the event loop */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        FUZZ_CHECK(sigprocmask(SIG_BLOCK, &ss, NULL) == 0);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("RUNTIME_DIRECTORY");

        FUZZ_CHECK(manager_new(d->config_path, config, LOG_TARGET_JOURNAL, &d->manager) == 0);
        if (manager_start(d->manager, config, error, sizeof(error)) < 0) {
                fprintf(stderr, "tcpedud: %s\n", error);
                FUZZ_CHECK(!"the in-process daemon starts");
        }
        fuzz_daemon_pump(100);
}

void fuzz_daemon_pump(unsigned max_rounds) {
        unsigned idle = 0;
        for (unsigned i = 0; i < max_rounds && idle < 2; i++) {
                int r = sd_event_run(fuzz_daemon.manager->core.event, 0);
                FUZZ_CHECK(r >= 0);
                idle = r == 0 ? idle + 1 : 0;
        }
}

int fuzz_daemon_connect(const char *server) {
        Manager *m = fuzz_daemon.manager;
        for (size_t i = 0; i < m->core.n_servers; i++) {
                Server *s = m->core.servers[i];
                if (strcmp(s->cfg.name, server) != 0 || !s->running || s->n_listeners == 0)
                        continue;
                const struct sockaddr *sa = &s->listeners[0]->bound.sa;
                int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                FUZZ_CHECK(fd >= 0);
                if (connect(fd, sa, sockaddr_len(sa)) < 0 && errno != EINPROGRESS) {
                        close(fd);
                        return -1;
                }
                return fd;
        }
        return -1;
}

bool fuzz_drain(int fd) {
        char buf[65536];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                return n < 0 && (errno == EAGAIN || errno == EINTR);
        }
}
