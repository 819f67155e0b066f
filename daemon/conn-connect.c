/* SPDX-License-Identifier: MIT */
/* The active open of a client session: CLOSED -> SYN_SENT -> ESTABLISHED, or the reason it failed. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "conn-internal.h"
#include "conn-kernel.h"
#include "kernel-tcp.h"
#include "macro.h"
#include "server-type.h"
#include "server.h"

static const char *connect_error_reason(int err) {
        switch (err) {
        case ECONNREFUSED:
                return "connection refused (RST in answer to SYN)";
        case ETIMEDOUT:
                return "timed out (no answer to SYN)";
        case EHOSTUNREACH:
                return "host unreachable";
        case ENETUNREACH:
                return "network unreachable";
        case EADDRNOTAVAIL:
                return "address not available";
        case ECONNRESET:
                return "connection reset during the handshake";
        default:
                return strerror(err);
        }
}

static void log_connect_failed(Conn *c, int err, bool syn_sent) {
        Core *m = c->server->core;
        char peer[SOCKADDR_STR_MAX];
        LogEntry e;

        log_entry_init(&e, LOG_NOTICE, MID_CONNECT_FAILED);
        log_entry_add(&e, "MESSAGE", "Session %s to %s failed: %s%s", c->id, sockaddr_format(&c->peer.sa, peer, sizeof(peer)),
                      c->close_reason, syn_sent ? "" : " (connect() failed at once: no SYN was sent)");
        log_entry_add(&e, "TCPEDU_EVENT", "connect-failed");
        log_conn_fields(&e, c);
        log_entry_add(&e, "TCPEDU_REASON", "%s", c->close_reason);
        log_entry_add(&e, "TCPEDU_ERRNO", "%d", err);
        log_entry_add(&e, "TCPEDU_SYN_SENT", "%s", syn_sent ? "yes" : "no");
        core_emit(m, &e, true);
}

/* The handshake failed (err) or was given up (err 0, reason set): SYN_SENT -> CLOSED. */
void conn_connect_failed(Conn *c, int err, const char *reason) {
        Core *m = c->server->core;
        SockDiagResult d;
        bool syn_sent = c->state == TCP_STATE_SYN_SENT;

        c->connecting = false;
        c->close_reason = reason ? reason : connect_error_reason(err);
        c->connect_error = (int16_t)(err ? err : ECONNABORTED); /* given up by us: closed, or the daemon stopping */
        conn_close_fd(c, true);
        if (syn_sent) {
                int r = sock_diag_lookup(m->diag_fd, &c->local.sa, &c->peer.sa, &d);
                if (r == -ENOENT)
                        conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, -1, "sock_diag", c->close_reason, true);
                else
                        conn_set_state_full(c, TCP_STATE_CLOSED, STATE_SOURCE_INFERRED, -1, NULL, c->close_reason, true);
        }
        log_connect_failed(c, err ? err : ECONNABORTED, syn_sent);
        conn_finish(c, NULL);
}

static int connect_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        (void)source;
        (void)usec;
        if (c->connecting)
                conn_connect_failed(c, ETIMEDOUT, "connect timeout: no answer to SYN");
        return 0;
}

void conn_on_connect_done(Conn *c) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err) {
                conn_connect_failed(c, err, NULL);
                return;
        }
        c->connecting = false;
        c->timer = sd_event_source_disable_unref(c->timer);
        conn_touch(c);
        int k = tcp_kernel_state(c->fd);
        if (k > 0 && k != 7 /* TCP_CLOSE */)
                conn_set_state(c, tcp_state_from_kernel(k), STATE_SOURCE_KERNEL, k, "tcp_info", NULL);
        else
                conn_set_state(c, TCP_STATE_ESTABLISHED, STATE_SOURCE_INFERRED, -1, NULL, NULL);
        conn_update_events(c);
        if (c->server->vt->on_connected)
                c->server->vt->on_connected(c);
}

int conn_connect(Server *s, Session *session, uid_t owner, const SockaddrUnion *target, const SockaddrUnion *bind_addr,
                 uint64_t connect_timeout_usec, Conn **ret, char *error, size_t error_size) {
        Core *m = s->core;
        char a[SOCKADDR_STR_MAX];
        int r;

        int fd = socket(target->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
                r = negative_errno();
                snprintf(error, error_size, "cannot create a socket: %s", strerror(-r));
                return r;
        }
        if (bind_addr) {
                if (bind_addr->sa.sa_family != target->sa.sa_family) {
                        safe_close(fd);
                        snprintf(error, error_size, "bind address %s is not of the target's address family",
                                 sockaddr_format(&bind_addr->sa, a, sizeof(a)));
                        return -EAFNOSUPPORT;
                }
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
                if (bind(fd, &bind_addr->sa, sockaddr_len(&bind_addr->sa)) < 0) {
                        r = negative_errno();
                        safe_close(fd);
                        snprintf(error, error_size, "cannot bind to %s: %s", sockaddr_format(&bind_addr->sa, a, sizeof(a)), strerror(-r));
                        return r;
                }
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));

        Conn *c;
        r = conn_alloc(s, fd, target, EPOLLOUT, &c);
        if (r < 0) {
                safe_close(fd);
                snprintf(error, error_size, r == -ENOMEM ? "out of memory" : "cannot watch the socket: %s", strerror(-r));
                return r;
        }
        c->session = session;
        c->owner = owner;
        if (s->vt->on_connect)
                s->vt->on_connect(c); /* the session learns its connection before the first transition */
        conn_count(c);

        /* A fresh socket is CLOSED, as TCP_INFO says (Linux's CLOSE). */
        c->state = TCP_STATE_CLOSED;
        timeline_add(c, TCP_STATE_CLOSED, STATE_SOURCE_KERNEL, core_now(m, CLOCK_REALTIME));
        *ret = c;

        (void)conn_kernel_track(c, false); /* its cookie is watched before the SYN */
        r = connect(fd, &target->sa, sockaddr_len(&target->sa));
        int err = r < 0 ? errno : 0;
        socklen_t len = sizeof(SockaddrUnion);
        (void)getsockname(fd, &c->local.sa, &len); /* connect() picked the local port */
        if (core_wants_events(m))
                log_connect(c);
        if (r < 0 && err != EINPROGRESS) {
                /* Refused before a SYN left: no route, no address. The kernel never left CLOSED. */
                conn_connect_failed(c, err, NULL);
                return 0;
        }
        c->connecting = true;
        /* connect() answered EINPROGRESS: the SYN is sent. On loopback the handshake may already
         * be over when TCP_INFO is asked, so SYN_SENT is the syscall's word, not TCP_INFO's. */
        int k = tcp_kernel_state(fd);
        if (k == 2 /* TCP_SYN_SENT */)
                conn_set_state(c, TCP_STATE_SYN_SENT, STATE_SOURCE_KERNEL, k, "tcp_info", NULL);
        else
                conn_set_state(c, TCP_STATE_SYN_SENT, STATE_SOURCE_SYSCALL, -1, "connect", NULL);
        server_arm_idle_timer(s);
        if (connect_timeout_usec && conn_timer_start(c, core_now(m, CLOCK_MONOTONIC) + connect_timeout_usec, connect_deadline) < 0)
                conn_connect_failed(c, ENOMEM, "no timer for the connect timeout");
        return 0;
}
