/* SPDX-License-Identifier: MIT */
/* bpftrace as a child whose output a thread reads, and a thread that polls sock_diag for the
 * time-wait sockets of the observed ports. */
#include "observer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRACEFS "/sys/kernel/tracing"
#define TW_POLL_MS 5
#define ATTACH_TIMEOUT_MS 60000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pid_t bt_pid = -1;
static int bt_out = -1, bt_err = -1;
static bool mounted, began, reader_done, poller_stop;
static pthread_t reader_thread, poller_thread;
static bool reader_running, poller_running;
static uint16_t port_lo, port_hi;
static KEvent *events;
static size_t n_events, events_cap;
static unsigned long lost;
static TwObs *tws;
static size_t n_tws, tws_cap;
static char err_text[2048];

uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fmt_addr(char *out, size_t size, int family, const char *ip, unsigned port) {
        if (family == 6)
                snprintf(out, size, "[%s]:%u", ip, port);
        else
                snprintf(out, size, "%s:%u", ip, port);
}

/* One line of observe.bt's output (see the script's header). */
static void parse_line(const char *line) {
        KEvent e = {};
        char type, sip[48], dip[48];
        unsigned long long ns, sk;
        unsigned sport, dport;
        int pid, fam, a, b;

        if (strncmp(line, "REFEREE-BEGIN", 13) == 0) {
                began = true;
                pthread_cond_broadcast(&cond);
                return;
        }
        unsigned long l;
        if (sscanf(line, "Lost %lu events", &l) == 1) {
                lost += l;
                return;
        }
        if (sscanf(line, "%c %llu %d %llx", &type, &ns, &pid, &sk) != 4)
                return;
        e.type = type;
        e.ns = ns;
        e.pid = pid;
        e.sk = sk;
        switch (type) {
        case 'S':
                if (sscanf(line, "%*c %*u %*d %*x %d %47s %u %47s %u %d %d", &fam, sip, &sport, dip, &dport, &a, &b) != 7)
                        return;
                e.oldstate = a;
                e.newstate = b;
                break;
        case 'R':
                if (sscanf(line, "%*c %*u %*d %*x %d %47s %u %47s %u %d", &fam, sip, &sport, dip, &dport, &a) != 6)
                        return;
                e.newstate = a;
                break;
        case 'X':
                if (sscanf(line, "%*c %*u %*d %*x %d %47s %u %47s %u", &fam, sip, &sport, dip, &dport) != 5)
                        return;
                break;
        case 'T':
                if (sscanf(line, "%*c %*u %*d %*x %d %u %u", &a, &sport, &dport) != 3)
                        return;
                e.newstate = a;
                fam = 0;
                sip[0] = dip[0] = 0;
                break;
        default:
                return;
        }
        e.family = fam;
        e.sport = (uint16_t)sport;
        e.dport = (uint16_t)dport;
        if (fam) {
                fmt_addr(e.local, sizeof(e.local), fam, sip, sport);
                fmt_addr(e.remote, sizeof(e.remote), fam, dip, dport);
        }
        if (n_events == events_cap) {
                size_t cap = events_cap ? events_cap * 2 : 1024;
                KEvent *n = realloc(events, cap * sizeof(KEvent));
                if (!n)
                        abort();
                events = n;
                events_cap = cap;
        }
        e.seq = n_events;
        events[n_events++] = e;
        pthread_cond_broadcast(&cond);
}

static void *reader_main(void *arg) {
        (void)arg;
        char buf[65536];
        size_t have = 0;
        for (;;) {
                ssize_t n = read(bt_out, buf + have, sizeof(buf) - 1 - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                have += (size_t)n;
                buf[have] = 0;
                pthread_mutex_lock(&lock);
                char *start = buf;
                for (char *nl; (nl = strchr(start, '\n'));) {
                        *nl = 0;
                        parse_line(start);
                        start = nl + 1;
                }
                pthread_mutex_unlock(&lock);
                have = (size_t)(buf + have - start);
                memmove(buf, start, have);
                if (have == sizeof(buf) - 1)
                        have = 0; /* an absurd line: drop it */
        }
        pthread_mutex_lock(&lock);
        reader_done = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return NULL;
}

/* ---- the time-wait poller ---- */

static bool in_range(uint16_t p) {
        return p >= port_lo && p < port_hi;
}

static void tw_seen(const char *local, const char *remote, int substate, uint64_t now, uint64_t prev) {
        for (size_t i = n_tws; i-- > 0;) {
                TwObs *t = &tws[i];
                if (t->end_ns || strcmp(t->local, local) != 0 || strcmp(t->remote, remote) != 0)
                        continue;
                if (substate == TCP_TIME_WAIT && !t->tw_hi_ns) {
                        t->tw_lo_ns = t->last_ns;
                        t->tw_hi_ns = now;
                }
                t->last_ns = now;
                return;
        }
        if (n_tws == tws_cap) {
                size_t cap = tws_cap ? tws_cap * 2 : 256;
                TwObs *n = realloc(tws, cap * sizeof(TwObs));
                if (!n)
                        abort();
                tws = n;
                tws_cap = cap;
        }
        TwObs *t = &tws[n_tws++];
        memset(t, 0, sizeof(*t));
        snprintf(t->local, sizeof(t->local), "%s", local);
        snprintf(t->remote, sizeof(t->remote), "%s", remote);
        t->first_substate = substate;
        t->first_ns = t->last_ns = now;
        t->prev_poll_ns = prev;
        if (substate == TCP_TIME_WAIT) {
                t->tw_lo_ns = prev;
                t->tw_hi_ns = now;
        }
}

/* One dump of a family's time-wait sockets: marks what it saw with 'now'. */
static int tw_dump(int nl, int family, uint64_t now, uint64_t prev) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 r;
        } req = {
                .nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
                .r = { .sdiag_family = (uint8_t)family,
                       .sdiag_protocol = IPPROTO_TCP,
                       .idiag_states = (1u << TCP_TIME_WAIT) | (1u << TCP_FIN_WAIT2) },
        };
        if (send(nl, &req, sizeof(req), 0) < 0)
                return -errno;
        static char buf[65536];
        for (;;) {
                ssize_t n = recv(nl, buf, sizeof(buf), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -EIO;
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_type == NLMSG_DONE)
                                return 0;
                        if (h->nlmsg_type == NLMSG_ERROR)
                                return -EIO;
                        const struct inet_diag_msg *m = NLMSG_DATA(h);
                        uint16_t sport = ntohs(m->id.idiag_sport), dport = ntohs(m->id.idiag_dport);
                        /* a time-wait socket: no inode, the TIME_WAIT timer */
                        if (m->idiag_timer != 3 || m->idiag_inode != 0 || !(in_range(sport) || in_range(dport)))
                                continue;
                        char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN], local[OBS_ADDR_MAX], remote[OBS_ADDR_MAX];
                        inet_ntop(family, m->id.idiag_src, sip, sizeof(sip));
                        inet_ntop(family, m->id.idiag_dst, dip, sizeof(dip));
                        fmt_addr(local, sizeof(local), family == AF_INET6 ? 6 : 4, sip, sport);
                        fmt_addr(remote, sizeof(remote), family == AF_INET6 ? 6 : 4, dip, dport);
                        tw_seen(local, remote, m->idiag_state, now, prev);
                }
        }
}

static void *poller_main(void *arg) {
        (void)arg;
        int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        uint64_t prev = mono_ns();
        if (nl < 0)
                return NULL;
        for (;;) {
                pthread_mutex_lock(&lock);
                bool stop = poller_stop;
                pthread_mutex_unlock(&lock);
                if (stop)
                        break;
                uint64_t now = mono_ns();
                pthread_mutex_lock(&lock);
                size_t before = n_tws;
                uint64_t *seen = calloc(before ? before : 1, sizeof(uint64_t));
                for (size_t i = 0; i < before; i++)
                        seen[i] = tws[i].last_ns;
                (void)tw_dump(nl, AF_INET, now, prev);
                (void)tw_dump(nl, AF_INET6, now, prev);
                /* alive before, not seen in this poll: gone */
                for (size_t i = 0; i < before; i++)
                        if (!tws[i].end_ns && tws[i].last_ns == seen[i] && seen[i] != now)
                                tws[i].end_ns = now;
                free(seen);
                pthread_mutex_unlock(&lock);
                prev = now;
                (void)poll(NULL, 0, TW_POLL_MS);
        }
        close(nl);
        return NULL;
}

/* ---- start and stop ---- */

static void read_err_text(void) {
        if (bt_err < 0)
                return;
        size_t have = strlen(err_text);
        ssize_t n;
        while (have < sizeof(err_text) - 1 && (n = read(bt_err, err_text + have, sizeof(err_text) - 1 - have)) > 0)
                have += (size_t)n;
        err_text[have] = 0;
}

static bool find_bpftrace(char *path, size_t size) {
        const char *env = getenv("PATH");
        char *copy = strdup(env && *env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        bool found = false;
        for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
                snprintf(path, size, "%s/bpftrace", d);
                found = access(path, X_OK) == 0;
        }
        free(copy);
        return found;
}

int observer_start(const char *script, uint16_t lo, uint16_t hi, char *why, size_t why_size) {
        char bpftrace[512], a1[16], a2[16];
        int out[2] = { -1, -1 }, err[2] = { -1, -1 };

        port_lo = lo;
        port_hi = hi;
        if (geteuid() != 0) {
                snprintf(why, why_size, "not root: bpftrace and network namespaces need root");
                return -1;
        }
        if (!find_bpftrace(bpftrace, sizeof(bpftrace))) {
                snprintf(why, why_size, "bpftrace is not installed");
                return -1;
        }
        if (access(script, R_OK) != 0) {
                snprintf(why, why_size, "cannot read %s: %s", script, strerror(errno));
                return -1;
        }
        if (access(TRACEFS "/events", F_OK) != 0) {
                if (mount("nodev", TRACEFS, "tracefs", 0, NULL) < 0) {
                        snprintf(why, why_size, "cannot mount tracefs on %s: %s", TRACEFS, strerror(errno));
                        return -1;
                }
                mounted = true;
        }
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                snprintf(why, why_size, "pipe: %s", strerror(errno));
                observer_stop();
                return -1;
        }
        snprintf(a1, sizeof(a1), "%u", lo);
        snprintf(a2, sizeof(a2), "%u", hi);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGINT);
                (void)setpgid(0, 0);
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                int null = open("/dev/null", O_RDONLY);
                if (null >= 0)
                        dup2(null, STDIN_FILENO);
                execl(bpftrace, "bpftrace", "-B", "line", script, a1, a2, (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        if (pid < 0) {
                close(out[0]);
                close(err[0]);
                snprintf(why, why_size, "fork: %s", strerror(errno));
                observer_stop();
                return -1;
        }
        bt_pid = pid;
        bt_out = out[0];
        bt_err = err[0];
        (void)fcntl(bt_err, F_SETFL, O_NONBLOCK);
        if (pthread_create(&reader_thread, NULL, reader_main, NULL) != 0) {
                snprintf(why, why_size, "cannot start a thread");
                observer_stop();
                return -1;
        }
        reader_running = true;

        /* Wait for BEGIN's line: bpftrace prints it once every probe is attached. */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += ATTACH_TIMEOUT_MS / 1000;
        pthread_mutex_lock(&lock);
        while (!began && !reader_done)
                if (pthread_cond_timedwait(&cond, &lock, &deadline) == ETIMEDOUT)
                        break;
        bool ok = began;
        pthread_mutex_unlock(&lock);
        if (!ok) {
                read_err_text();
                snprintf(why, why_size, "bpftrace did not attach%s: %s", reader_done ? " (it exited)" : " within 60 s",
                         err_text[0] ? err_text : "(no output)");
                observer_stop();
                return -1;
        }
        if (pthread_create(&poller_thread, NULL, poller_main, NULL) != 0) {
                snprintf(why, why_size, "cannot start a thread");
                observer_stop();
                return -1;
        }
        poller_running = true;
        return 0;
}

void observer_stop(void) {
        if (poller_running) {
                pthread_mutex_lock(&lock);
                poller_stop = true;
                pthread_mutex_unlock(&lock);
                pthread_join(poller_thread, NULL);
                poller_running = false;
        }
        if (bt_pid > 0) {
                (void)kill(bt_pid, SIGINT);
                /* bpftrace detaches on SIGINT; give it 10 s, then kill it */
                for (int i = 0; i < 1000; i++) {
                        if (waitpid(bt_pid, NULL, WNOHANG) == bt_pid) {
                                bt_pid = -1;
                                break;
                        }
                        (void)poll(NULL, 0, 10);
                }
                if (bt_pid > 0) {
                        (void)kill(-bt_pid, SIGKILL);
                        (void)kill(bt_pid, SIGKILL);
                        (void)waitpid(bt_pid, NULL, 0);
                        bt_pid = -1;
                }
        }
        if (reader_running) {
                pthread_join(reader_thread, NULL);
                reader_running = false;
        }
        if (bt_out >= 0)
                close(bt_out);
        if (bt_err >= 0)
                close(bt_err);
        bt_out = bt_err = -1;
        if (mounted) {
                if (umount2(TRACEFS, MNT_DETACH) < 0)
                        fprintf(stderr, "referee: cannot unmount %s: %s\n", TRACEFS, strerror(errno));
                mounted = false;
        }
}

bool observer_sync(uint16_t sync_port, int timeout_ms) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sync_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;
        if (fd < 0)
                return false;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        uint64_t t0 = mono_ns();
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0;
        close(fd);
        if (!ok)
                return false;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        pthread_mutex_lock(&lock);
        bool seen = false;
        while (!seen) {
                for (size_t i = n_events; i-- > 0 && !seen;)
                        seen = events[i].type == 'S' && events[i].ns >= t0 && events[i].sport == sync_port && events[i].newstate == 7 &&
                               events[i].oldstate == 10;
                if (seen || reader_done || pthread_cond_timedwait(&cond, &lock, &deadline) == ETIMEDOUT)
                        break;
        }
        pthread_mutex_unlock(&lock);
        return seen;
}

static int event_cmp(const void *a, const void *b) {
        const KEvent *x = a, *y = b;
        if (x->ns != y->ns)
                return x->ns < y->ns ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

KEvent *observer_events(size_t *ret_n, unsigned long *ret_lost) {
        pthread_mutex_lock(&lock);
        KEvent *copy = malloc((n_events ? n_events : 1) * sizeof(KEvent));
        if (!copy)
                abort();
        memcpy(copy, events, n_events * sizeof(KEvent));
        *ret_n = n_events;
        *ret_lost = lost;
        pthread_mutex_unlock(&lock);
        /* each CPU has its own buffer: lines do not arrive in time order */
        qsort(copy, *ret_n, sizeof(KEvent), event_cmp);
        return copy;
}

TwObs *observer_timewaits(size_t *ret_n) {
        pthread_mutex_lock(&lock);
        TwObs *copy = malloc((n_tws ? n_tws : 1) * sizeof(TwObs));
        if (!copy)
                abort();
        memcpy(copy, tws, n_tws * sizeof(TwObs));
        *ret_n = n_tws;
        pthread_mutex_unlock(&lock);
        return copy;
}

size_t observer_timewaits_alive(void) {
        size_t n = 0;
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_tws; i++)
                n += tws[i].end_ns == 0;
        pthread_mutex_unlock(&lock);
        return n;
}
