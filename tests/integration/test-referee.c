/* SPDX-License-Identifier: MIT */
/* The referee: the daemon's journal against the kernel's own view, per 4-tuple.
 *
 * An independent observer (referee/observe.bt under bpftrace: inet_sock_set_state, retransmissions
 * and resets; plus sock_diag for the time-wait sockets, whose life no tracepoint shows) records every
 * state change of every socket with a port in the test's range. Scenarios drive tcpedud through
 * every close path (some inside a network namespace of the test's own, with nftables holding
 * segments), all TIME_WAITs end together, and then, for every socket of the daemon:
 *   - every kernel step has its transition record (missed), except after the daemon's `unwatched`
 *     record for it;
 *   - no record names a state the kernel never entered for that 4-tuple (invented);
 *   - the records come in the kernel's order (order);
 *   - TCPEDU_REASON is the event of that edge in common/tcp-state.c's table (wrong reason);
 *   - the time a record states is within 60 ms (tcp_info: TCPEDU_MONOTONIC_USEC, when it was made) or
 *     5 ms (bpf: TCPEDU_KERNEL_TIME_NSEC, the kernel's own) of the kernel's change (late); how long
 *     the tracepoint's records took to be made is shown (lag), not judged: it is the machine's load;
 *   - with the bpf source, every retransmission and reset has its record, and no other exists.
 * Linux's names map to RFC 793's: SYN_RECV and NEW_SYN_RECV to SYN_RECEIVED, FIN_WAIT1/2 to
 * FIN_WAIT_1/2, CLOSE to CLOSED; a child socket's LISTEN -> SYN_RECEIVED (the request socket) may be
 * recorded but need not be. The test exits 77 (skipped) when bpftrace is missing or cannot attach. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "referee/netns.h"
#include "referee/observer.h"
#include "tcp-state.h"
#include "test-util.h"

#ifndef REFEREE_DIR
#error "REFEREE_DIR must name tests/integration/referee"
#endif

#define PORTS_PER_CASE 32
#define N_CASES 2
#define PORT_SPAN (PORTS_PER_CASE * N_CASES + 1) /* the last one: observer_sync() */
#define TOLERANCE_TCP_INFO_MS 60.0
#define TOLERANCE_BPF_MS 5.0
#define TIME_WAIT_DEADLINE_MS 90000
#define HOLD_MS 1000

/* Linux's state numbers (include/net/tcp_states.h) */
enum {
        K_ESTABLISHED = 1,
        K_SYN_SENT,
        K_SYN_RECV,
        K_FIN_WAIT1,
        K_FIN_WAIT2,
        K_TIME_WAIT,
        K_CLOSE,
        K_CLOSE_WAIT,
        K_LAST_ACK,
        K_LISTEN,
        K_CLOSING
};

typedef struct Case Case;
typedef struct Scen Scen;

typedef struct ScenarioDef {
        const char *name;
        const char *listen; /* "127.0.0.1", "::1", "host" (the namespace's host end), NULL: no server */
        const char *extra; /* server config lines */
        bool term; /* on the daemon that gets SIGTERM */
        void (*run)(Case *c, Scen *s);
} ScenarioDef;

typedef struct Stats {
        unsigned tuples, ksteps, recorded, missed, invented, order, reason, late;
        unsigned krtx, rtx, krst, rst; /* retransmissions and resets: the kernel's, the journal's */
        double max_lag_ms; /* the tracepoint's records: from the kernel's change to the record (information) */
        double max_late_ms;
        bool timed;
} Stats;

struct Scen {
        const ScenarioDef *def;
        uint16_t port; /* its server's port, or the port its session connects to */
        char server[32];
        char note[256];
        Stats st;
};

typedef struct Rec {
        pid_t pid;
        char *event, *conn_id, *role, *local, *peer, *old, *new_, *source, *reason, *cause, *kstate, *message, *direction;
        int64_t mono_usec; /* TCPEDU_MONOTONIC_USEC; -1 if absent */
        int64_t kernel_ns; /* TCPEDU_KERNEL_TIME_NSEC (the eBPF source's records); -1 if absent */
        uint64_t journal_usec; /* __MONOTONIC_TIMESTAMP: when journald got it */
        bool used;
} Rec;

#define SC_COUNT 19
struct Case {
        const char *source;
        bool enabled, driven, set_key;
        char why[512];
        Daemon *dm, *dt;
        pid_t pid_main, pid_term;
        Scen sc[SC_COUNT];
        Rec *recs;
        size_t n_recs;
        bool any_timing;
};

static uint16_t port_base;
static Netns ns;
static bool ns_ok;
static char ns_why[512];
static Case cases[N_CASES] = { { .source = "tcp_info" }, { .source = "bpf" } };

/* ---- small helpers ---- */

static void hold_ms(int ms) {
        (void)poll(NULL, 0, ms);
}

static const char *listen_ip(const Scen *s) {
        const char *l = s->def->listen;
        return l && strcmp(l, "host") == 0 ? ns.host_ip : l;
}

static bool scen_addr(const Scen *s, Addr *a) {
        return addr_parse_ip(listen_ip(s), s->port, a) == 0;
}

static uint16_t fd_port(int fd, bool peer) {
        Addr a;
        socklen_t len = sizeof(a);
        if ((peer ? getpeername(fd, &a.sa, &len) : getsockname(fd, &a.sa, &len)) < 0)
                return 0;
        return addr_port(&a);
}

/* Wait until the kernel shows the socket lport <-> rport in kstate (0: until it is gone). */
static bool wait_kstate(uint16_t lport, uint16_t rport, int kstate, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                TcpSocketInfo i;
                bool found = tcp_socket_info(lport, rport, &i);
                if (kstate ? found && i.state == kstate : !found)
                        return true;
                if (now_ms() >= deadline)
                        return false;
                hold_ms(5);
        }
}

/* Until everything the daemon sent on lport <-> rport has been acknowledged. */
static bool wait_acked(uint16_t lport, uint16_t rport) {
        uint64_t deadline = now_ms() + IO_TIMEOUT_MS;
        for (;;) {
                TcpSocketInfo i;
                if (tcp_socket_info(lport, rport, &i) && i.send_q == 0)
                        return true;
                if (now_ms() >= deadline)
                        return false;
                hold_ms(5);
        }
}

/* A connected socket inside the namespace. fd or -errno. */
static int ns_connect(const Addr *to) {
        int fd = netns_socket(&ns, to->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return fd;
        if (connect(fd, &to->sa, to->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0 &&
            errno != EINPROGRESS) {
                int r = -errno;
                close(fd);
                return r;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int err = 0;
        socklen_t len = sizeof(err);
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                close(fd);
                return -(err ? err : ETIMEDOUT);
        }
        return fd;
}

static Daemon *scen_daemon(Case *c, const Scen *s) {
        return s->def->term ? c->dt : c->dm;
}

/* The connection's ID, from `tcpeductl -j connections SERVER`, by its peer address. */
static const char *conn_id(Case *c, Scen *s, int fd) {
        char peer[ADDR_STR_MAX];
        RunResult r;
        sock_local(fd, peer, sizeof(peer));
        if (ctl(scen_daemon(c, s), &r, "-j", "connections", s->server, NULL) < 0 || r.exit_code != 0)
                return NULL;
        json_object *o = json_tokener_parse(r.out), *list;
        const char *id = NULL;
        if (o && json_object_object_get_ex(o, "connections", &list))
                for (size_t i = 0; i < json_object_array_length(list); i++) {
                        json_object *e = json_object_array_get_idx(list, i), *v;
                        if (json_object_object_get_ex(e, "peer", &v) && strcmp(json_object_get_string(v), peer) == 0 &&
                            json_object_object_get_ex(e, "id", &v))
                                id = tstr("%s", json_object_get_string(v));
                }
        json_object_put(o);
        return id;
}

static bool ctl_ok(Case *c, Scen *s, RunResult *r, const char *a1, const char *a2, const char *a3, const char *a4) {
        int rc = ctl(scen_daemon(c, s), r, a1, a2, a3, a4, NULL);
        bool ok = rc == 0 && r->exit_code == 0;
        EXPECT(ok, "[%s] %s: tcpeductl %s %s %s %s: exit %d: %s%s", c->source, s->def->name, a1, a2 ? a2 : "", a2 && a3 ? a3 : "",
               a2 && a3 && a4 ? a4 : "", rc < 0 ? rc : r->exit_code, r->out ? r->out : "", r->err ? r->err : "");
        return ok;
}

/* The session's ID (tcpeductl session open), or NULL. */
static const char *session_open(Case *c, Scen *s, const char *target) {
        RunResult r;
        if (!ctl_ok(c, s, &r, "session", "open", target, NULL))
                return NULL;
        char *id = tstr("%s", r.out);
        id[strcspn(id, "\n")] = 0;
        return id;
}

static bool session_echo(Case *c, Scen *s, const char *id) {
        RunResult r;
        if (!ctl_ok(c, s, &r, "session", "send", id, "hello") || !ctl_ok(c, s, &r, "session", "recv", id, "--line"))
                return false;
        EXPECT(strcmp(r.out, "hello\n") == 0, "[%s] %s: session recv: '%s'", c->source, s->def->name, r.out);
        return true;
}

#define DRIVE(cond, ...)                                                                                                                   \
        do {                                                                                                                               \
                if (!(cond)) {                                                                                                             \
                        snprintf(s->note, sizeof(s->note), __VA_ARGS__);                                                                   \
                        EXPECT(false, "[%s] %s: %s", c->source, s->def->name, s->note);                                                    \
                        return;                                                                                                            \
                }                                                                                                                          \
        } while (0)

/* ---- the scenarios ---- */

static void run_client_first(Case *c, Scen *s) {
        Addr a;
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        DRIVE(close_graceful(fd) == 0, "the daemon did not close after the client");
}

static void run_idle(Case *c, Scen *s) {
        Addr a;
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        DRIVE(wait_closed(fd, IO_TIMEOUT_MS) == 0, "no FIN after idle_timeout = 1");
        sock_close(fd);
}

static void run_kick(Case *c, Scen *s, const char *how) {
        Addr a;
        RunResult r;
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        const char *id = conn_id(c, s, fd);
        DRIVE(id, "no connection ID in tcpeductl connections");
        DRIVE(ctl_ok(c, s, &r, "kick", id, "--how", how), "kick failed");
        int w = wait_closed(fd, IO_TIMEOUT_MS);
        DRIVE(strcmp(how, "reset") == 0 ? w == -ECONNRESET : w == 0, "after kick --how %s the client saw: %s", how, strerror(-w));
        sock_close(fd);
}

static void run_kick_close(Case *c, Scen *s) {
        run_kick(c, s, "close");
}
static void run_kick_shutdown(Case *c, Scen *s) {
        run_kick(c, s, "shutdown");
}
static void run_kick_reset(Case *c, Scen *s) {
        run_kick(c, s, "reset");
}

static void run_peer_rst(Case *c, Scen *s) {
        Addr a;
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        uint16_t cport = fd_port(fd, false);
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        DRIVE(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0, "SO_LINGER: %m");
        sock_close(fd);
        DRIVE(wait_kstate(s->port, cport, 0, IO_TIMEOUT_MS), "the daemon's socket outlived the RST");
}

static void run_half_close(Case *c, Scen *s) {
        enum { N = 64 * 1024 };
        static uint8_t out[N], in[N];
        Addr a;
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        fill_pattern(out, N, 7);
        /* the FIN follows the data at once: the echo is still on its way when the daemon gets it */
        DRIVE(send_all(fd, out, N, IO_TIMEOUT_MS) == 0, "send");
        DRIVE(shutdown(fd, SHUT_WR) == 0, "shutdown: %m");
        DRIVE(recv_exact(fd, in, N, IO_TIMEOUT_MS) == 0 && memcmp(in, out, N) == 0, "the data was not echoed after the half-close");
        DRIVE(wait_closed(fd, IO_TIMEOUT_MS) == 0, "no FIN from the daemon");
        sock_close(fd);
}

static void run_session(Case *c, Scen *s, const char *how) {
        RunResult r;
        const char *id = session_open(c, s, tstr("%s:%u", listen_ip(s), s->port));
        DRIVE(id, "session open failed");
        DRIVE(session_echo(c, s, id), "no echo through the session");
        DRIVE(ctl_ok(c, s, &r, "session", "close", id, tstr("--how=%s", how)), "session close failed");
}

static void run_session_close(Case *c, Scen *s) {
        run_session(c, s, "close");
}
static void run_session_shutdown(Case *c, Scen *s) {
        run_session(c, s, "shutdown");
}
static void run_session_reset(Case *c, Scen *s) {
        run_session(c, s, "reset");
}

static void run_session_refused(Case *c, Scen *s) {
        RunResult r;
        /* nothing listens there (the port was free when the test chose its range) */
        int rc = ctl(c->dm, &r, "session", "open", tstr("127.0.0.1:%u", s->port), NULL);
        DRIVE(rc == 0, "tcpeductl did not run");
        hold_ms(200); /* the RST answers at once on loopback; give the daemon time to log it */
}

static void run_limit(Case *c, Scen *s) {
        Addr a;
        char peer[ADDR_STR_MAX];
        DRIVE(scen_addr(s, &a), "no address");
        int fd = tcp_connect(&a, "127.0.0.1");
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        int r = connect_expect_reset(&a, "127.0.0.1", peer, sizeof(peer));
        DRIVE(r == -ECONNRESET, "the second connection was not refused: %s", strerror(-r));
        DRIVE(close_graceful(fd) == 0, "the daemon did not close after the client");
}

/* The daemon closes first (kick); the client's ACK of the FIN is dropped: FIN_WAIT_1 holds, the FIN
 * is retransmitted; then the client's FIN (with the ACK of ours) goes through. */
static void run_fin_wait_1_held(Case *c, Scen *s) {
        Addr a;
        RunResult r;
        DRIVE(ns_ok, "no namespace: %.200s", ns_why);
        DRIVE(scen_addr(s, &a), "no address");
        int fd = ns_connect(&a);
        DRIVE(fd >= 0, "connect from the namespace: %s", strerror(-fd));
        uint16_t cport = fd_port(fd, false);
        bool ok = echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0 && wait_acked(s->port, cport);
        const char *id = ok ? conn_id(c, s, fd) : NULL;
        ok = ok && id && netns_nft_rule(&ns, "out", tstr("tcp dport %u tcp flags == ack drop", s->port)) == 0;
        ok = ok && ctl_ok(c, s, &r, "kick", id, "--how", "close") && wait_closed(fd, IO_TIMEOUT_MS) == 0;
        ok = ok && wait_kstate(s->port, cport, K_FIN_WAIT1, IO_TIMEOUT_MS);
        if (ok) {
                hold_ms(HOLD_MS);
                ok = tcp_socket_info(s->port, cport, &(TcpSocketInfo){}) && shutdown(fd, SHUT_WR) == 0 &&
                     wait_kstate(s->port, cport, K_TIME_WAIT, IO_TIMEOUT_MS);
        }
        netns_nft_flush(&ns);
        close(fd);
        DRIVE(ok, "could not hold FIN_WAIT_1 and then close");
}

/* The client closes first; its ACK of the daemon's FIN is dropped: LAST_ACK holds. */
static void run_last_ack_held(Case *c, Scen *s) {
        Addr a;
        DRIVE(ns_ok, "no namespace: %.200s", ns_why);
        DRIVE(scen_addr(s, &a), "no address");
        int fd = ns_connect(&a);
        DRIVE(fd >= 0, "connect from the namespace: %s", strerror(-fd));
        uint16_t cport = fd_port(fd, false);
        bool ok = echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0 && wait_acked(s->port, cport);
        ok = ok && netns_nft_rule(&ns, "out", tstr("tcp dport %u tcp flags == ack drop", s->port)) == 0;
        ok = ok && shutdown(fd, SHUT_WR) == 0 && wait_closed(fd, IO_TIMEOUT_MS) == 0 &&
             wait_kstate(s->port, cport, K_LAST_ACK, IO_TIMEOUT_MS);
        if (ok)
                hold_ms(HOLD_MS);
        netns_nft_flush(&ns);
        ok = ok && wait_kstate(s->port, cport, 0, 10000);
        close(fd);
        DRIVE(ok, "could not hold LAST_ACK");
}

/* Simultaneous close: the daemon's FIN is dropped on its way in, so the client's FIN reaches the
 * daemon in FIN_WAIT_1 without the ACK of the daemon's FIN: CLOSING; then the FIN goes through. */
static void run_simultaneous(Case *c, Scen *s) {
        Addr a;
        RunResult r;
        DRIVE(ns_ok, "no namespace: %.200s", ns_why);
        DRIVE(scen_addr(s, &a), "no address");
        int fd = ns_connect(&a);
        DRIVE(fd >= 0, "connect from the namespace: %s", strerror(-fd));
        uint16_t cport = fd_port(fd, false);
        bool ok = echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0 && wait_acked(s->port, cport);
        const char *id = ok ? conn_id(c, s, fd) : NULL;
        ok = ok && id && netns_nft_rule(&ns, "in", tstr("tcp sport %u tcp flags & fin == fin drop", s->port)) == 0;
        ok = ok && ctl_ok(c, s, &r, "kick", id, "--how", "close") && wait_kstate(s->port, cport, K_FIN_WAIT1, IO_TIMEOUT_MS);
        ok = ok && shutdown(fd, SHUT_WR) == 0 && wait_kstate(s->port, cport, K_CLOSING, IO_TIMEOUT_MS);
        bool closing = ok;
        netns_nft_flush(&ns);
        ok = ok && wait_kstate(s->port, cport, K_TIME_WAIT, 10000);
        close(fd);
        DRIVE(closing, "could not bring the daemon's socket to CLOSING");
        DRIVE(ok, "CLOSING did not end in TIME_WAIT");
}

/* A session to a peer in the namespace; the peer's ACK of the session's FIN is late by 1 s: the
 * session must show FIN_WAIT_2 before TIME_WAIT. */
static void run_late_ack(Case *c, Scen *s) {
        RunResult r;
        DRIVE(ns_ok, "no namespace: %.200s", ns_why);
        Addr a;
        DRIVE(addr_parse_ip(ns.ns_ip, s->port, &a) == 0, "no address");
        int l = netns_socket(&ns, AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
        DRIVE(l >= 0, "socket in the namespace: %s", strerror(-l));
        int one = 1;
        (void)setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, &a.sa, sizeof(a.in)) < 0 || listen(l, 4) < 0) {
                close(l);
                DRIVE(false, "the peer cannot listen on %s:%u: %m", ns.ns_ip, s->port);
        }
        const char *id = session_open(c, s, tstr("%s:%u", ns.ns_ip, s->port));
        struct pollfd p = { .fd = l, .events = POLLIN };
        int fd = id && poll(&p, 1, IO_TIMEOUT_MS) == 1 ? accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK) : -1;
        close(l);
        DRIVE(fd >= 0, "the session did not connect");
        uint16_t sport = fd_port(fd, true);
        char buf[8];
        bool ok = ctl_ok(c, s, &r, "session", "send", id, "hello") && recv_exact(fd, buf, 6, IO_TIMEOUT_MS) == 0;
        ok = ok && netns_nft_rule(&ns, "out", tstr("tcp sport %u tcp flags == ack drop", s->port)) == 0;
        ok = ok && ctl_ok(c, s, &r, "session", "close", id, "--how=close") && wait_closed(fd, IO_TIMEOUT_MS) == 0 &&
             wait_kstate(sport, s->port, K_FIN_WAIT1, IO_TIMEOUT_MS);
        if (ok)
                hold_ms(HOLD_MS);
        netns_nft_flush(&ns);
        ok = ok && wait_kstate(sport, s->port, K_FIN_WAIT2, 10000);
        close(fd);
        ok = ok && wait_kstate(sport, s->port, K_TIME_WAIT, IO_TIMEOUT_MS);
        DRIVE(ok, "could not delay the ACK of the session's FIN");
}

/* SIGTERM with a session open to the daemon's own server, a connection and a session in TIME_WAIT,
 * and an open client connection. */
static void run_sigterm(Case *c, Scen *s) {
        Addr a;
        RunResult r;
        const char *target = tstr("%s:%u", listen_ip(s), s->port);
        DRIVE(scen_addr(s, &a), "no address");
        const char *open_id = session_open(c, s, target);
        DRIVE(open_id && session_echo(c, s, open_id), "the session that stays open");
        int fd = tcp_connect(&a, NULL);
        DRIVE(fd >= 0, "connect: %s", strerror(-fd));
        DRIVE(echo_check(fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        const char *id = conn_id(c, s, fd);
        DRIVE(id && ctl_ok(c, s, &r, "kick", id, "--how", "close") && wait_closed(fd, IO_TIMEOUT_MS) == 0, "kick");
        sock_close(fd);
        const char *tw_id = session_open(c, s, target);
        DRIVE(tw_id && session_echo(c, s, tw_id) && ctl_ok(c, s, &r, "session", "close", tw_id, "--how=close"), "a session into TIME_WAIT");
        int open_fd = tcp_connect(&a, NULL);
        DRIVE(open_fd >= 0, "connect: %s", strerror(-open_fd));
        DRIVE(echo_check(open_fd, "hello\n", 6, IO_TIMEOUT_MS) == 0, "no echo");
        hold_ms(100); /* the kick's TIME_WAIT is in place */
        DRIVE(daemon_kill(c->dt, SIGTERM) == 0, "SIGTERM");
        int w = wait_closed(open_fd, STOP_TIMEOUT_MS);
        sock_close(open_fd);
        int rc = daemon_wait_exit(c->dt, STOP_TIMEOUT_MS);
        DRIVE(w == 0, "the open connection saw %s at SIGTERM", strerror(-w));
        DRIVE(rc == 0, "tcpedud exited with %d after SIGTERM", rc);
}

static const ScenarioDef defs[SC_COUNT] = {
        { "client closes first", "127.0.0.1", NULL, false, run_client_first },
        { "client closes first, IPv6", "::1", NULL, false, run_client_first },
        { "idle timeout", "127.0.0.1", "idle_timeout = 1", false, run_idle },
        { "kick --how close", "127.0.0.1", NULL, false, run_kick_close },
        { "kick --how shutdown", "127.0.0.1", NULL, false, run_kick_shutdown },
        { "kick --how reset", "127.0.0.1", NULL, false, run_kick_reset },
        { "peer sends RST", "127.0.0.1", NULL, false, run_peer_rst },
        { "half-close by the client", "127.0.0.1", NULL, false, run_half_close },
        { "session to own server, close", "127.0.0.1", NULL, false, run_session_close },
        { "session to own server, shutdown", "127.0.0.1", NULL, false, run_session_shutdown },
        { "session to own server, reset", "127.0.0.1", NULL, false, run_session_reset },
        { "session to a closed port", NULL, NULL, false, run_session_refused },
        { "refused at max_clients", "127.0.0.1", "max_clients = 1", false, run_limit },
        { "refused at max_clients_per_ip", "127.0.0.1", "max_clients_per_ip = 1", false, run_limit },
        { "FIN_WAIT_1 held (netns)", "host", NULL, false, run_fin_wait_1_held },
        { "LAST_ACK held (netns)", "host", NULL, false, run_last_ack_held },
        { "simultaneous close (netns)", "host", NULL, false, run_simultaneous },
        { "late ACK of the session's FIN (netns)", NULL, NULL, false, run_late_ack },
        { "SIGTERM: session to own server, TIME_WAITs", "127.0.0.1", NULL, true, run_sigterm },
};

/* ---- driving a case ---- */

static char *case_config(Case *c, bool term) {
        char *conf = tstr("[daemon]\nuser = root\nlog_transitions = all\n%s", c->set_key ? tstr("kernel_source = %s\n", c->source) : "");
        for (size_t i = 0; i < SC_COUNT; i++) {
                Scen *s = &c->sc[i];
                if (!s->def->listen || s->def->term != term || (strcmp(s->def->listen, "host") == 0 && !ns_ok))
                        continue;
                const char *ip = listen_ip(s);
                conf = tstr("%s\n[server %s]\ntype = echo\nlisten = %s%s%s:%u\n%s%s", conf, s->server, strchr(ip, ':') ? "[" : "", ip,
                            strchr(ip, ':') ? "]" : "", s->port, s->def->extra ? s->def->extra : "", s->def->extra ? "\n" : "");
        }
        return conf;
}

/* Does the daemon take [daemon] kernel_source = SOURCE? */
static bool source_supported(const char *source, char *why, size_t size) {
        const char *dir = harness_tmpdir();
        const char *path = tstr("%s/check.conf", dir);
        RunResult r;
        if (!dir || write_file(path, tstr("[daemon]\nkernel_source = %s\n\n[server x]\ntype = echo\nlisten = 127.0.0.1:0\n", source)) < 0)
                return false;
        if (run_tcpedud(&r, "-c", path, "--check-config", NULL) < 0)
                return false;
        if (r.exit_code != 0)
                snprintf(why, size, "tcpedud --check-config rejects 'kernel_source = %s': %s", source,
                         r.err && *r.err ? r.err
                         : r.out         ? r.out
                                         : "");
        why[strcspn(why, "\n")] = 0;
        return r.exit_code == 0;
}

static void drive_case(Case *c) {
        if (!c->enabled) {
                printf("\n    SKIP [%s]: %s\n", c->source, c->why);
                return;
        }
        for (size_t i = 0; i < SC_COUNT; i++)
                if (strcmp(c->sc[i].def->listen ? c->sc[i].def->listen : "", "host") == 0 && !ns_ok)
                        snprintf(c->sc[i].note, sizeof(c->sc[i].note), "not run: no network namespace (%.200s)", ns_why);
        c->dm = daemon_start(case_config(c, false), NULL);
        c->pid_main = c->dm->pid;
        c->dt = daemon_start(case_config(c, true), NULL);
        c->pid_term = c->dt->pid;
        c->driven = true;
        for (size_t i = 0; i < SC_COUNT; i++) {
                Scen *s = &c->sc[i];
                if (s->note[0])
                        continue;
                uint64_t t0 = now_ms();
                s->def->run(c, s);
                printf("\n    [%s] %-42s %5.2f s%s%s", c->source, s->def->name, (double)(now_ms() - t0) / 1000.0, s->note[0] ? ": " : "",
                       s->note);
        }
        printf("\n");
}

static void test_drive_tcp_info(void) {
        drive_case(&cases[0]);
}

static void test_drive_bpf(void) {
        drive_case(&cases[1]);
}

/* ---- the journal ---- */

static char *jdup(json_object *e, const char *field) {
        const char *v = jget(e, field);
        return v ? strdup(v) : NULL;
}

static void read_records(Case *c, pid_t pid) {
        /* the daemon has exited: its entries stop growing once journald has them all */
        const char *m_pid = tstr("_PID=%d", (int)pid);
        JList *l = NULL;
        size_t last = (size_t)-1;
        for (uint64_t deadline = now_ms() + JOURNAL_TIMEOUT_MS; now_ms() < deadline;) {
                l = journal_query(m_pid, "TCPEDU_EVENT=transition", "TCPEDU_EVENT=unwatched", "TCPEDU_EVENT=retransmit",
                                  "TCPEDU_EVENT=reset", NULL);
                JList *stop = journal_query(m_pid, tstr("MESSAGE_ID=%s", MID_SERVER_STOP), NULL);
                if (stop->n > 0 && l->n == last)
                        break;
                last = l->n;
                hold_ms(300);
        }
        Rec *n = realloc(c->recs, (c->n_recs + l->n + 1) * sizeof(Rec));
        if (!n)
                abort();
        c->recs = n;
        for (size_t i = 0; i < l->n; i++) {
                json_object *e = l->e[i];
                Rec *r = &c->recs[c->n_recs++];
                const char *mono = jget(e, "TCPEDU_MONOTONIC_USEC"), *jm = jget(e, "__MONOTONIC_TIMESTAMP"),
                           *kns = jget(e, "TCPEDU_KERNEL_TIME_NSEC");
                *r = (Rec){ .pid = pid,
                            .event = jdup(e, "TCPEDU_EVENT"),
                            .conn_id = jdup(e, "TCPEDU_CONN_ID"),
                            .role = jdup(e, "TCPEDU_ROLE"),
                            .local = jdup(e, "TCPEDU_LOCAL"),
                            .peer = jdup(e, "TCPEDU_PEER"),
                            .old = jdup(e, "TCPEDU_OLD_STATE"),
                            .new_ = jdup(e, "TCPEDU_NEW_STATE"),
                            .source = jdup(e, "TCPEDU_STATE_SOURCE"),
                            .reason = jdup(e, "TCPEDU_REASON"),
                            .cause = jdup(e, "TCPEDU_CAUSE"),
                            .kstate = jdup(e, "TCPEDU_KERNEL_STATE"),
                            .message = jdup(e, "MESSAGE"),
                            .direction = jdup(e, "TCPEDU_DIRECTION"),
                            .mono_usec = mono ? strtoll(mono, NULL, 10) : -1,
                            .kernel_ns = kns ? strtoll(kns, NULL, 10) : -1,
                            .journal_usec = jm ? strtoull(jm, NULL, 10) : 0 };
                c->any_timing |= mono != NULL;
        }
}

static void test_wait_and_stop(void) {
        /* every TIME_WAIT of the range ends about 60 s after it began: wait once for all of them */
        uint64_t t0 = now_ms(), deadline = t0 + TIME_WAIT_DEADLINE_MS;
        while (observer_timewaits_alive() > 0 && now_ms() < deadline)
                hold_ms(100);
        printf("\n    waited %.1f s for the TIME_WAITs to end (%zu left)", (double)(now_ms() - t0) / 1000.0, observer_timewaits_alive());
        hold_ms(1500); /* let the daemon notice the last ends */
        for (size_t k = 0; k < N_CASES; k++)
                if (cases[k].driven && cases[k].dm)
                        EXPECT_INT(daemon_stop(cases[k].dm), 0);
        REQUIRE(observer_sync((uint16_t)(port_base + PORT_SPAN - 1), 10000), "the observer did not see the sync listener");
        for (size_t k = 0; k < N_CASES; k++)
                if (cases[k].driven) {
                        read_records(&cases[k], cases[k].pid_main);
                        read_records(&cases[k], cases[k].pid_term);
                        printf("\n    [%s] %zu records", cases[k].source, cases[k].n_recs);
                }
        printf("\n");
}

/* ---- the kernel's path of each socket ---- */

enum { KIND_SESSION = 1, KIND_SERVER, KIND_LISTENER };
static const char *const kind_names[] = { "?", "session", "server", "listener" };

typedef struct KStep {
        TcpState from, to;
        uint64_t lo, hi; /* when: exact from a tracepoint (lo == hi), between two polls from sock_diag */
        bool optional; /* a child's LISTEN -> SYN_RECEIVED */
        bool diag; /* seen by sock_diag */
} KStep;

#define MAX_STEPS 24
typedef struct Life {
        uint64_t sk;
        bool open;
        size_t *ev, n_ev;
        char local[OBS_ADDR_MAX], remote[OBS_ADDR_MAX];
        uint16_t lport, rport;
        int kind;
        pid_t pid;
        Scen *scen;
        KStep steps[MAX_STEPS];
        size_t n_steps;
} Life;

static TcpState rfc(int k) {
        return tcp_state_from_kernel(k);
}

static void add_step(Life *L, TcpState from, TcpState to, uint64_t lo, uint64_t hi, bool optional, bool diag) {
        if (L->n_steps < MAX_STEPS)
                L->steps[L->n_steps++] = (KStep){ from, to, lo, hi, optional, diag };
}

/* Lives of sockets: from the event that leaves CLOSE (or a child's first) to the one entering it. */
static Life *build_lives(const KEvent *ev, size_t n, size_t *ret_n) {
        Life *lives = calloc(n + 1, sizeof(Life));
        size_t nl = 0;
        for (size_t i = 0; i < n; i++) {
                const KEvent *e = &ev[i];
                /* tcp_set_state() to the state it is in (close() after shutdown() in LAST_ACK, say):
                 * no change */
                if (e->type != 'S' || e->oldstate == e->newstate)
                        continue;
                Life *L = NULL;
                for (size_t k = nl; k-- > 0 && !L;)
                        if (lives[k].open && lives[k].sk == e->sk)
                                L = &lives[k];
                if (!L || e->oldstate == K_CLOSE || (e->oldstate == K_LISTEN && e->newstate == K_SYN_RECV)) {
                        if (L)
                                L->open = false;
                        L = &lives[nl++];
                        L->sk = e->sk;
                        L->open = true;
                        L->ev = calloc(64, sizeof(size_t));
                }
                if (L->n_ev < 64)
                        L->ev[L->n_ev++] = i;
                if (e->sport && e->family) {
                        snprintf(L->local, sizeof(L->local), "%s", e->local);
                        snprintf(L->remote, sizeof(L->remote), "%s", e->remote);
                        L->lport = e->sport;
                        L->rport = e->dport;
                } else if (!L->rport)
                        L->rport = e->dport;
                if (e->newstate == K_CLOSE)
                        L->open = false;
        }
        *ret_n = nl;
        return lives;
}

static Scen *scen_by_port(Case *c, uint16_t port, bool server) {
        for (size_t i = 0; i < SC_COUNT; i++)
                if (c->sc[i].port == port && (!server || c->sc[i].def->listen))
                        return &c->sc[i];
        return NULL;
}

/* Which of the case's daemons the socket belongs to, and to which scenario. */
static void classify(Case *c, Life *L, const KEvent *ev) {
        const KEvent *f = &ev[L->ev[0]];
        /* -1: tcpedud made the change (the observer names it by its command: inside a pid namespace
         * the kernel's pids are not the ones the test knows); the daemon is then the scenario's. */
        bool ours = f->pid == -1 || f->pid == c->pid_main || f->pid == c->pid_term;
        if (f->oldstate == K_CLOSE && f->newstate == K_SYN_SENT && ours) {
                L->kind = KIND_SESSION;
                L->scen = scen_by_port(c, L->rport, false);
        } else if (f->oldstate == K_LISTEN && f->newstate == K_SYN_RECV && (L->scen = scen_by_port(c, L->lport, true))) {
                L->kind = KIND_SERVER;
        } else if (f->oldstate == K_CLOSE && f->newstate == K_LISTEN && ours && f->sport != port_base + PORT_SPAN - 1) {
                L->kind = KIND_LISTENER;
                L->scen = scen_by_port(c, L->lport, true);
        }
        if (!L->scen)
                L->kind = 0;
        else
                L->pid = L->scen->def->term ? c->pid_term : c->pid_main;
}

static void kernel_steps(Life *L, const KEvent *ev, TwObs *tws, size_t n_tws) {
        for (size_t j = 0; j < L->n_ev; j++) {
                const KEvent *e = &ev[L->ev[j]];
                TcpState from = rfc(e->oldstate), to = rfc(e->newstate);
                TwObs *tw = NULL;
                if (e->newstate == K_CLOSE)
                        for (size_t k = 0; k < n_tws && !tw; k++)
                                if (strcmp(tws[k].local, L->local) == 0 && strcmp(tws[k].remote, L->remote) == 0 &&
                                    tws[k].first_ns + 50000000u >= e->ns && tws[k].first_ns <= e->ns + 2000000000u)
                                        tw = &tws[k];
                if (!tw) {
                        add_step(L, from, to, e->ns, e->ns, j == 0 && e->oldstate == K_LISTEN, false);
                        continue;
                }
                /* the socket lives on as a time-wait socket: the tracepoint's CLOSE is not the kernel's */
                TcpState cur = from;
                if (!(tw->first_substate == K_FIN_WAIT2 && e->oldstate == K_FIN_WAIT2)) {
                        cur = rfc(tw->first_substate);
                        add_step(L, from, cur, e->ns, e->ns, false, false);
                }
                if (cur == TCP_STATE_FIN_WAIT_2 && tw->tw_hi_ns) {
                        add_step(L, cur, TCP_STATE_TIME_WAIT, tw->tw_lo_ns, tw->tw_hi_ns, false, true);
                        cur = TCP_STATE_TIME_WAIT;
                }
                if (tw->end_ns)
                        add_step(L, cur, TCP_STATE_CLOSED, tw->last_ns, tw->end_ns, false, true);
        }
}

/* ---- journal against kernel ---- */

static bool rec_is(const Rec *r, const KStep *k) {
        return r->old && r->new_ && strcmp(r->old, tcp_state_to_string(k->from)) == 0 && strcmp(r->new_, tcp_state_to_string(k->to)) == 0;
}

static bool rec_matches_life(const Rec *r, const Life *L) {
        if (r->pid != L->pid || !r->local || strcmp(r->local, L->local) != 0)
                return false;
        if (L->kind == KIND_LISTENER)
                return !r->peer && r->role && strcmp(r->role, "listener") == 0;
        return r->peer && strcmp(r->peer, L->remote) == 0;
}

static const char *step_text(TcpState a, TcpState b) {
        return tstr("%s>%s", tcp_state_to_string(a), tcp_state_to_string(b));
}

static double ms_since(uint64_t t, uint64_t t0) {
        return ((double)t - (double)t0) / 1e6;
}

static void add_text(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_text(char **s, const char *fmt, ...) {
        char *piece = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&piece, fmt, ap) < 0)
                abort();
        va_end(ap);
        *s = tstr("%s%s", *s ? *s : "", piece);
        free(piece);
}

/* Compare one socket's kernel path and records; add to its scenario's stats; print the details of
 * anything wrong. */
/* A retransmission or reset the observer saw on L's socket during its life. */
static bool event_of_life(const Life *L, const KEvent *e, uint64_t t0) {
        bool mine = (e->type == 'R' || e->type == 'X') ? strcmp(e->local, L->local) == 0 && strcmp(e->remote, L->remote) == 0
                    : e->type == 'T'                   ? e->sport == L->lport && e->dport == L->rport
                                                       : false;
        return mine && e->ns >= t0 && (!L->n_steps || e->ns <= L->steps[L->n_steps - 1].hi + 1000000000u);
}

/* bpf: every retransmission and reset of the kernel has its record, and no record is made up. */
static void judge_events(Case *c, Life *L, const KEvent *ev, size_t n_ev, uint64_t t0, unsigned rtx, unsigned rst, char **problems) {
        Stats *st = &L->scen->st;
        unsigned krtx = 0, krst = 0;
        for (size_t i = 0; i < n_ev; i++)
                if (event_of_life(L, &ev[i], t0)) {
                        krtx += ev[i].type == 'R';
                        krst += ev[i].type != 'R';
                }
        st->krtx += krtx;
        st->krst += krst;
        st->rtx += rtx;
        st->rst += rst;
        if (strcmp(c->source, "bpf") != 0)
                return;
        if (rtx != krtx || rst != krst) {
                st->missed += (krtx > rtx ? krtx - rtx : 0) + (krst > rst ? krst - rst : 0);
                st->invented += (rtx > krtx ? rtx - krtx : 0) + (rst > krst ? rst - krst : 0);
                add_text(problems, "\n        retransmissions: kernel %u, records %u; resets: kernel %u, records %u", krtx, rtx, krst, rst);
        }
}

static void judge_life(Case *c, Life *L, const KEvent *ev, size_t n_ev) {
        Scen *s = L->scen;
        Stats *st = &s->st;
        const Rec *R[64], *unwatched = NULL;
        size_t nr = 0;
        unsigned rtx = 0, rst = 0;
        uint64_t t0 = ev[L->ev[0]].ns, cutoff = UINT64_MAX;

        for (size_t i = 0; i < c->n_recs; i++) {
                Rec *r = &c->recs[i];
                if (!rec_matches_life(r, L))
                        continue;
                r->used = true;
                if (r->event && strcmp(r->event, "retransmit") == 0)
                        rtx++;
                else if (r->event && strcmp(r->event, "reset") == 0)
                        rst++;
                else if (r->event && strcmp(r->event, "unwatched") == 0)
                        unwatched = r;
                else if (nr < 64)
                        R[nr++] = r;
        }
        if (unwatched)
                cutoff = unwatched->mono_usec >= 0 ? (uint64_t)unwatched->mono_usec * 1000 : unwatched->journal_usec * 1000;
        KStep *K = L->steps;
        size_t nk = 0;
        while (nk < L->n_steps && K[nk].lo <= cutoff)
                nk++;

        /* the longest common subsequence of the kernel's steps and the records */
        unsigned dp[MAX_STEPS + 1][65] = {};
        for (size_t i = nk; i-- > 0;)
                for (size_t j = nr; j-- > 0;)
                        dp[i][j] = rec_is(R[j], &K[i]) ? dp[i + 1][j + 1] + 1 : (dp[i + 1][j] > dp[i][j + 1] ? dp[i + 1][j] : dp[i][j + 1]);
        int match_k[MAX_STEPS], match_r[64];
        for (size_t i = 0; i < MAX_STEPS; i++)
                match_k[i] = -1;
        for (size_t j = 0; j < 64; j++)
                match_r[j] = -1;
        for (size_t i = 0, j = 0; i < nk && j < nr;) {
                if (rec_is(R[j], &K[i])) {
                        match_k[i] = (int)j;
                        match_r[j] = (int)i;
                        i++, j++;
                } else if (dp[i + 1][j] >= dp[i][j + 1])
                        i++;
                else
                        j++;
        }

        char *problems = NULL;
        unsigned before = st->missed + st->invented + st->order + st->reason + st->late;
        st->tuples++;
        st->recorded += (unsigned)nr;
        for (size_t i = 0; i < nk; i++) {
                st->ksteps += !K[i].optional;
                if (match_k[i] < 0 && !K[i].optional) {
                        st->missed++;
                        add_text(&problems, "\n        missed: %s at %+.1f ms", step_text(K[i].from, K[i].to), ms_since(K[i].hi, t0));
                }
        }
        for (size_t j = 0; j < nr; j++) {
                const Rec *r = R[j];
                TcpState from = tcp_state_from_string(r->old), to = tcp_state_from_string(r->new_);
                if (match_r[j] < 0) {
                        bool entered = false;
                        for (size_t i = 0; i < L->n_steps && !entered; i++)
                                entered = L->steps[i].to == to || (i == 0 && L->steps[i].from == to);
                        if (entered)
                                st->order++;
                        else
                                st->invented++;
                        add_text(&problems, "\n        %s: %s>%s (%s)",
                                 entered ? "out of the kernel's order" : "invented (never the kernel's state)", r->old, r->new_,
                                 r->source ? r->source : "no source");
                }
                const TcpTransition *t = from >= 0 && to >= 0 ? tcp_transition_find(from, to) : NULL;
                if (!t || !r->reason || strcmp(r->reason, t->event) != 0) {
                        st->reason++;
                        add_text(&problems, "\n        wrong reason: %s>%s '%s', the table says '%s'", r->old, r->new_,
                                 r->reason ? r->reason : "(none)", t ? t->event : "(no such edge)");
                }
                if (match_r[j] >= 0 && r->mono_usec >= 0) {
                        /* what the tracepoint reported is held to its own bound; TIME_WAIT's end is sock_diag's */
                        bool traced = r->source && strcmp(r->source, "bpf") == 0;
                        double tol = traced ? TOLERANCE_BPF_MS : TOLERANCE_TCP_INFO_MS;
                        const KStep *k = &K[match_r[j]];
                        /* the time a record states: the kernel's own for the tracepoint's, else when it was made */
                        double at = r->kernel_ns >= 0 ? (double)r->kernel_ns : (double)r->mono_usec * 1000.0;
                        double late = (at - (double)k->hi) / 1e6, early = ((double)k->lo - at) / 1e6;
                        if (r->kernel_ns >= 0) {
                                double lag = ((double)r->mono_usec * 1000.0 - (double)k->hi) / 1e6;
                                st->max_lag_ms = lag > st->max_lag_ms ? lag : st->max_lag_ms;
                        }
                        st->timed = true;
                        if (late > st->max_late_ms && (strcmp(c->source, "bpf") != 0 || traced))
                                st->max_late_ms = late; /* (bpf: of the tracepoint's records) */
                        if (late > tol || early > 1.0) {
                                st->late++;
                                add_text(&problems, "\n        %s: %s>%s recorded %+.1f ms after the kernel's change",
                                         late > tol ? "late" : "early", r->old, r->new_, late > tol ? late : -early);
                        }
                }
        }
        judge_events(c, L, ev, n_ev, t0, rtx, rst, &problems);
        if (unwatched) {
                /* its kernel state must be the kernel's at that moment */
                TcpState at = nk ? K[nk - 1].to : TCP_STATE_CLOSED;
                static const char *const linux_names[] = { "CLOSE",     "LISTEN",     "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1",
                                                           "FIN_WAIT2", "CLOSE_WAIT", "CLOSING",  "LAST_ACK", "TIME_WAIT" };
                if (at >= 0 && (!unwatched->kstate || strcmp(unwatched->kstate, linux_names[at]) != 0)) {
                        st->invented++;
                        add_text(&problems, "\n        unwatched with TCPEDU_KERNEL_STATE=%s, the kernel was in %s",
                                 unwatched->kstate ? unwatched->kstate : "(none)", linux_names[at]);
                }
        }
        if (st->missed + st->invented + st->order + st->reason + st->late == before)
                return;

        char *kpath = NULL, *rpath = NULL;
        for (size_t i = 0; i < L->n_steps; i++)
                add_text(&kpath, " %s%s%s@%+.1f%s", K[i].optional ? "(" : "", step_text(K[i].from, K[i].to), K[i].optional ? ")" : "",
                         ms_since(K[i].hi, t0),
                         i >= nk     ? "[after unwatched]"
                         : K[i].diag ? "[sock_diag]"
                                     : "");
        for (size_t i = 0; i < n_ev; i++) {
                const KEvent *e = &ev[i];
                if (event_of_life(L, e, t0))
                        add_text(&kpath, " [%s@%+.1f]",
                                 e->type == 'R'   ? "retransmit"
                                 : e->type == 'T' ? "RST sent"
                                                  : "RST received",
                                 ms_since(e->ns, t0));
        }
        for (size_t j = 0; j < nr; j++)
                add_text(&rpath, " %s>%s(%s%s%s)%s", R[j]->old, R[j]->new_, R[j]->source ? R[j]->source : "?",
                         R[j]->mono_usec >= 0 ? "@" : "",
                         R[j]->mono_usec >= 0 ? tstr("%+.1f", ms_since((uint64_t)R[j]->mono_usec * 1000, t0)) : "", "");
        if (unwatched)
                add_text(&rpath, " unwatched(%s)", unwatched->kstate ? unwatched->kstate : "?");
        printf("\n    [%s] %s: %s %s <-> %s (pid %d)\n        kernel:  %s\n        journal: %s%s\n", c->source, s->def->name,
               kind_names[L->kind], L->local, L->remote, (int)L->pid, kpath ? kpath : " (nothing)", rpath ? rpath : " (nothing)", problems);
        EXPECT(false, "[%s] %s: %s %s <-> %s: the journal differs from the kernel (above)", c->source, s->def->name, kind_names[L->kind],
               L->local, L->remote);
}

/* A record of one of the case's daemons that no socket of the kernel explains. */
static void judge_leftovers(Case *c) {
        for (size_t i = 0; i < c->n_recs; i++) {
                Rec *r = &c->recs[i];
                if (r->used)
                        continue;
                const char *lp = r->local ? strrchr(r->local, ':') : NULL, *pp = r->peer ? strrchr(r->peer, ':') : NULL;
                Scen *s = lp ? scen_by_port(c, (uint16_t)atoi(lp + 1), true) : NULL;
                if (!s && pp)
                        s = scen_by_port(c, (uint16_t)atoi(pp + 1), false);
                if (!s)
                        continue;
                s->st.invented++;
                s->st.recorded++;
                printf("\n    [%s] %s: a record for %s <-> %s, a 4-tuple the kernel never had: %s", c->source, s->def->name, r->local,
                       r->peer ? r->peer : "(none)", r->message ? r->message : "");
                EXPECT(false, "[%s] %s: record without a kernel socket: %s", c->source, s->def->name, r->message ? r->message : "");
        }
}

static void judge_case(Case *c) {
        if (!c->driven) {
                printf("\n    SKIP [%s]: %s\n", c->source, c->enabled ? "the scenarios did not run" : c->why);
                return;
        }
        size_t n_ev, n_tw, n_lives;
        unsigned long lost;
        KEvent *ev = observer_events(&n_ev, &lost);
        TwObs *tws = observer_timewaits(&n_tw);
        EXPECT(lost == 0, "the observer lost %lu events: the comparison is incomplete", lost);
        Life *lives = build_lives(ev, n_ev, &n_lives);
        for (size_t i = 0; i < n_lives; i++) {
                Life *L = &lives[i];
                classify(c, L, ev);
                if (!L->kind)
                        continue;
                kernel_steps(L, ev, tws, n_tw);
                judge_life(c, L, ev, n_ev);
        }
        judge_leftovers(c);
        if (!c->any_timing)
                printf("\n    NOTE [%s]: no record has TCPEDU_MONOTONIC_USEC: the timing check was skipped\n", c->source);
        for (size_t i = 0; i < SC_COUNT; i++) {
                Scen *s = &c->sc[i];
                EXPECT(!s->note[0], "[%s] %s: %s", c->source, s->def->name, s->note);
                EXPECT(s->st.tuples > 0 || s->note[0], "[%s] %s: no socket of the daemon seen", c->source, s->def->name);
        }
        for (size_t i = 0; i < n_lives; i++)
                free(lives[i].ev);
        free(lives);
        free(ev);
        free(tws);
}

static void test_judge_tcp_info(void) {
        judge_case(&cases[0]);
}

static void test_judge_bpf(void) {
        judge_case(&cases[1]);
}

static void print_table(void) {
        printf("\n\n    %-10s %-42s %7s %6s %8s %6s %8s %5s %6s %4s %7s %7s %7s %6s\n", "source", "scenario", "4-tuples", "kernel",
               "recorded", "missed", "invented", "order", "reason", "late", "max ms", "rtx k/j", "rst k/j", "lag ms");
        for (size_t k = 0; k < N_CASES; k++) {
                Case *c = &cases[k];
                if (!c->driven) {
                        printf("    %-10s (skipped: %s)\n", c->source, c->why[0] ? c->why : "not run");
                        continue;
                }
                for (size_t i = 0; i < SC_COUNT; i++) {
                        Scen *s = &c->sc[i];
                        Stats *t = &s->st;
                        bool bad = t->missed || t->invented || t->order || t->reason || t->late || s->note[0];
                        printf("    %-10s %-42s %7u %6u %8u %6u %8u %5u %6u %4u %7s %7s %7s %6s %s\n", c->source, s->def->name, t->tuples,
                               t->ksteps, t->recorded, t->missed, t->invented, t->order, t->reason, t->late,
                               t->timed ? tstr("%.1f", t->max_late_ms) : "-", tstr("%u/%u", t->krtx, t->rtx),
                               tstr("%u/%u", t->krst, t->rst), t->max_lag_ms > 0 ? tstr("%.1f", t->max_lag_ms) : "-",
                               s->note[0] ? "NOT RUN"
                               : bad      ? "FAIL"
                                          : "ok");
                }
        }
        fflush(stdout);
}

static void test_table(void) {
        print_table();
}

/* ---- setup ---- */

static bool port_free(uint16_t port) {
        static const char *const ips[] = { "127.0.0.1", "::1" };
        for (size_t i = 0; i < 2; i++) {
                Addr a;
                addr_parse_ip(ips[i], port, &a);
                int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                bool ok = fd >= 0 && bind(fd, &a.sa, a.sa.sa_family == AF_INET ? sizeof(a.in) : sizeof(a.in6)) == 0;
                if (fd >= 0)
                        close(fd);
                if (!ok)
                        return false;
        }
        return true;
}

/* A range of ports below the ephemeral ones (32768-), free on 127.0.0.1 and ::1. */
static bool choose_ports(void) {
        for (int attempt = 0; attempt < 50; attempt++) {
                uint16_t base = (uint16_t)(20000 + (((unsigned)getpid() * 7919u + (unsigned)attempt * 104729u) % 120) * 100);
                bool ok = true;
                for (uint16_t p = base; p < base + PORT_SPAN && ok; p++)
                        ok = port_free(p);
                if (ok) {
                        port_base = base;
                        return true;
                }
        }
        return false;
}

static void cleanup(void) {
        observer_stop();
        netns_destroy(&ns);
}

static void on_signal(int sig) {
        cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int skip(const char *why) {
        printf("SKIP: %s\n", why);
        cleanup();
        return 77;
}

static int suite_init(void) {
        return harness_suite_init();
}

int main(void) {
        char why[2048] = "";
        ns.fd = -1;
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (access("/run/systemd/journal/socket", F_OK) != 0)
                return skip("no journald (/run/systemd/journal/socket): the journal side cannot be read");
        if (!choose_ports())
                return skip("no free range of ports below 32768");
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (observer_start(REFEREE_DIR "/observe.bt", port_base, (uint16_t)(port_base + PORT_SPAN), why, sizeof(why)) < 0)
                return skip(why);
        ns_ok = netns_create(&ns, ns_why, sizeof(ns_why)) == 0;
        if (!ns_ok)
                printf("NOTE: the namespace scenarios will not run: %s\n", ns_why);
        printf("referee: ports %u-%u, namespace %s (%s <-> %s)\n", port_base, port_base + PORT_SPAN - 1, ns_ok ? ns.name : "(none)",
               ns.host_ip, ns.ns_ip);
        for (size_t k = 0; k < N_CASES; k++) {
                Case *c = &cases[k];
                for (size_t i = 0; i < SC_COUNT; i++) {
                        c->sc[i].def = &defs[i];
                        c->sc[i].port = (uint16_t)(port_base + k * PORTS_PER_CASE + i);
                        snprintf(c->sc[i].server, sizeof(c->sc[i].server), "ref%zu-%zu", k, i);
                }
        }
        /* tcp_info is the default; the key is given only when the daemon knows it */
        char tmp[512] = "";
        cases[0].enabled = true;
        cases[0].set_key = source_supported("tcp_info", tmp, sizeof(tmp));
        if (!cases[0].set_key)
                printf("NOTE [tcp_info]: %s: running on the daemon's default source\n", tmp);
        cases[1].enabled = cases[1].set_key = source_supported("bpf", cases[1].why, sizeof(cases[1].why));
        harness_teardown();

        CU_TestInfo tests[] = {
                { "tcp_info: drive the scenarios", test_drive_tcp_info },
                { "bpf: drive the scenarios", test_drive_bpf },
                { "wait for the TIME_WAITs, stop the daemons, read the journal", test_wait_and_stop },
                { "tcp_info: the journal is the kernel's path, per 4-tuple", test_judge_tcp_info },
                { "bpf: the journal is the kernel's path, per 4-tuple", test_judge_bpf },
                { "the table", test_table },
                CU_TEST_INFO_NULL,
        };
        /* no per-test teardown: the daemons live from the first test to the third; the suite's
         * cleanup releases everything */
        CU_SuiteInfo suites[] = {
                { "referee", suite_init, harness_suite_cleanup, harness_setup, NULL, tests },
                CU_SUITE_INFO_NULL,
        };
        int r = test_main(suites);
        cleanup();
        return r;
}
