/* SPDX-License-Identifier: MIT */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_PREFIX "tcpedu-ref-"

/* Run argv quietly; its exit code, or -1. Output goes to errbuf (if any). */
static int run(char *const argv[], char *errbuf, size_t size) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                dup2(p[1], STDERR_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(p[1]);
        size_t have = 0;
        char chunk[512];
        ssize_t k;
        while ((k = read(p[0], chunk, sizeof(chunk))) > 0) {
                size_t take = errbuf && size > have + 1 ? size - 1 - have : 0;
                if (take > (size_t)k)
                        take = (size_t)k;
                if (take) {
                        memcpy(errbuf + have, chunk, take);
                        have += take;
                }
        }
        if (errbuf && size)
                errbuf[have] = 0;
        close(p[0]);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int runf(char *errbuf, size_t size, const char *cmdline) {
        /* split on spaces; '{' ... '}' arguments need no quoting for nft's command line */
        char *copy = strdup(cmdline), *argv[64];
        size_t n = 0;
        for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && n < 63; w = strtok_r(NULL, " ", &save))
                argv[n++] = w;
        argv[n] = NULL;
        int r = run(argv, errbuf, size);
        free(copy);
        return r;
}

/* Namespaces of earlier runs whose test process is gone (a crash, a SIGKILL). */
static void delete_leftovers(void) {
        DIR *d = opendir("/run/netns");
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, NETNS_PREFIX, strlen(NETNS_PREFIX)) != 0)
                        continue;
                long pid = strtol(de->d_name + strlen(NETNS_PREFIX), NULL, 10);
                if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
                        continue;
                char cmd[512];
                snprintf(cmd, sizeof(cmd), "ip netns del %s", de->d_name);
                (void)runf(NULL, 0, cmd);
        }
        closedir(d);
}

int netns_create(Netns *n, char *why, size_t why_size) {
        char cmd[256], out[512];
        pid_t me = getpid();
        unsigned a = 16 + (unsigned)me % 200, b = ((unsigned)me / 200) % 64 * 4;

        delete_leftovers();
        memset(n, 0, sizeof(*n));
        n->fd = -1;
        snprintf(n->name, sizeof(n->name), NETNS_PREFIX "%d", (int)me);
        snprintf(n->host_if, sizeof(n->host_if), "rf%dh", (int)me % 1000000);
        snprintf(n->ns_if, sizeof(n->ns_if), "rf%dn", (int)me % 1000000);
        snprintf(n->host_ip, sizeof(n->host_ip), "10.%u.%u.%u", 100 + a % 100, a, b + 1);
        snprintf(n->ns_ip, sizeof(n->ns_ip), "10.%u.%u.%u", 100 + a % 100, a, b + 2);

        const char *steps[] = {
                "ip netns add %1$s",
                "ip link add %2$s type veth peer name %3$s netns %1$s",
                "ip addr add %4$s/30 dev %2$s",
                "ip link set %2$s up",
                "ip -n %1$s addr add %5$s/30 dev %3$s",
                "ip -n %1$s link set %3$s up",
                "ip -n %1$s link set lo up",
                "ip netns exec %1$s nft add table inet referee",
                "ip netns exec %1$s nft add chain inet referee out { type filter hook output priority 0 ; }",
                "ip netns exec %1$s nft add chain inet referee in { type filter hook input priority 0 ; }",
        };
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                snprintf(cmd, sizeof(cmd), steps[i], n->name, n->host_if, n->ns_if, n->host_ip, n->ns_ip);
                int r = runf(out, sizeof(out), cmd);
                if (r != 0) {
                        snprintf(why, why_size, "%s: exit %d: %s", cmd, r, out);
                        if (i > 0)
                                n->created = true;
                        netns_destroy(n);
                        return -1;
                }
                n->created = true;
        }
        char path[128];
        snprintf(path, sizeof(path), "/run/netns/%s", n->name);
        n->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (n->fd < 0) {
                snprintf(why, why_size, "open %s: %s", path, strerror(errno));
                netns_destroy(n);
                return -1;
        }
        return 0;
}

void netns_destroy(Netns *n) {
        char cmd[128];
        if (n->fd >= 0)
                close(n->fd);
        n->fd = -1;
        if (!n->created)
                return;
        snprintf(cmd, sizeof(cmd), "ip netns del %s", n->name);
        (void)runf(NULL, 0, cmd);
        /* the veth pair goes with the namespace; delete the host's end in case it lingers */
        snprintf(cmd, sizeof(cmd), "ip link del %s", n->host_if);
        (void)runf(NULL, 0, cmd);
        n->created = false;
}

int netns_socket(Netns *n, int family, int type) {
        int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return -errno;
        if (setns(n->fd, CLONE_NEWNET) < 0) {
                int r = -errno;
                close(self);
                return r;
        }
        int fd = socket(family, type, 0);
        int r = fd < 0 ? -errno : fd;
        if (setns(self, CLONE_NEWNET) < 0)
                abort(); /* this thread would go on in the wrong namespace */
        close(self);
        return r;
}

int netns_nft_rule(Netns *n, const char *chain, const char *rule) {
        char cmd[512], out[512];
        snprintf(cmd, sizeof(cmd), "ip netns exec %s nft add rule inet referee %s %s", n->name, chain, rule);
        int r = runf(out, sizeof(out), cmd);
        if (r != 0)
                fprintf(stderr, "referee: %s: exit %d: %s\n", cmd, r, out);
        return r == 0 ? 0 : -1;
}

int netns_nft_flush(Netns *n) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "ip netns exec %s nft flush table inet referee", n->name);
        return runf(NULL, 0, cmd) == 0 ? 0 : -1;
}
