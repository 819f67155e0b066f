/* SPDX-License-Identifier: MIT */
/* A server: its listeners, accepting under limits, and the idle timer over its connections. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <systemd/sd-id128.h>

#include "kernel-tcp.h"
#include "macro.h"
#include "server.h"
#include "conn-kernel.h"
#include "conn.h"
#include "server-type.h"

static void listener_free(Listener *l);

static const char *const refuse_reason_table[_REFUSE_MAX] = {
        [REFUSE_MAX_CONNECTIONS] = "max_connections",
        [REFUSE_MAX_CLIENTS] = "max_clients",
        [REFUSE_MAX_CLIENTS_PER_IP] = "max_clients_per_ip",
        [REFUSE_FD_LIMIT] = "fd_limit",
        [REFUSE_NO_MEMORY] = "no_memory",
};

const char *refuse_reason_to_string(RefuseReason r) {
        return r < _REFUSE_MAX ? refuse_reason_table[r] : NULL;
}

int server_new(Core *m, const ServerConfig *cfg, const ServerVtable *vt, Server **ret) {
        Server *s = calloc(1, sizeof(Server));
        if (!s)
                return -ENOMEM;
        s->core = m;
        s->cfg = *cfg;
        s->vt = vt;
        s->refs = 1; /* its owner's: the manager's list, or the session pseudo-server's slot */
        list_init(&s->conns);
        *ret = s;
        return 0;
}

void listener_discard(Listener *l) {
        listener_free(l);
}

static void listener_free(Listener *l) {
        if (!l)
                return;
        if (l->port_watched)
                conn_kernel_unwatch_port(l->server->core, sockaddr_port(&l->bound.sa));
        sd_event_source_disable_unref(l->source);
        if (l->passed)
                passed_fds_release(&l->server->core->passed, l->fd); /* systemd's: it stays open and listening */
        else
                safe_close(l->fd);
        free(l);
}

Server *server_unref(Server *s) {
        if (!s || --s->refs > 0)
                return NULL;
        for (unsigned i = 0; i < s->n_listeners; i++)
                listener_free(s->listeners[i]);
        sd_event_source_disable_unref(s->idle_timer);
        if (s->vt && s->vt->free_state)
                s->vt->free_state(s);
        for (size_t b = 0; b < s->n_ip_buckets; b++)
                for (IpCount *ic = s->ip_buckets[b]; ic;) {
                        IpCount *n = ic->next;
                        free(ic);
                        ic = n;
                }
        free(s->ip_buckets);
        free(s);
        return NULL;
}

static void log_listener(Listener *l, TcpState from, TcpState to, StateSource src, int kstate, const char *kvia, const char *reason) {
        Server *s = l->server;
        Core *m = s->core;
        char addr[SOCKADDR_STR_MAX];
        LogEntry e;

        m->transitions++;
        if (!core_wants_events(m))
                return;
        sockaddr_format(&l->bound.sa, addr, sizeof(addr));
        log_entry_init(&e, LOG_INFO, MID_TRANSITION);
        log_entry_add(&e, "MESSAGE", "Listener %s (%s, server %s): %s -> %s", l->id, addr, s->cfg.name, tcp_state_to_string(from),
                      tcp_state_to_string(to));
        log_entry_add(&e, "TCPEDU_EVENT", "transition");
        log_entry_add(&e, "TCPEDU_SERVER", "%s", s->cfg.name);
        log_entry_add(&e, "TCPEDU_SERVER_TYPE", "%s", s->vt->name);
        log_entry_add(&e, "TCPEDU_ROLE", "listener");
        log_entry_add(&e, "TCPEDU_CONN_ID", "%s", l->id);
        log_entry_add(&e, "TCPEDU_LOCAL", "%s", addr);
        log_entry_add(&e, "TCPEDU_OLD_STATE", "%s", tcp_state_to_string(from));
        log_entry_add(&e, "TCPEDU_NEW_STATE", "%s", tcp_state_to_string(to));
        if (kstate > 0)
                log_entry_add(&e, "TCPEDU_KERNEL_STATE", "%s", tcp_kernel_state_to_string(kstate));
        if (kvia)
                log_entry_add(&e, "TCPEDU_KERNEL_SOURCE", "%s", kvia);
        log_entry_add(&e, "TCPEDU_STATE_SOURCE", "%s", state_source_to_string(src));
        log_step_fields(&e, from, to, reason);
        core_emit(m, &e, m->log_transitions == LOG_TRANSITIONS_ALL);
}

void listener_close(Listener *l, const char *reason) {
        Core *m = l->server->core;
        SockaddrUnion none = {};
        SockDiagResult d;
        char addr[SOCKADDR_STR_MAX];

        l->source = sd_event_source_disable_unref(l->source);
        if (l->passed) {
                /* No LISTEN -> CLOSED: systemd holds the socket and the kernel keeps it listening. */
                log_msg(m, LOG_INFO, NULL, "server %s: stopped accepting on %s (%s); systemd keeps the socket listening",
                        l->server->cfg.name, sockaddr_format(&l->bound.sa, addr, sizeof(addr)), reason);
                listener_free(l);
                return;
        }
        l->fd = safe_close(l->fd);
        none.sa.sa_family = l->bound.sa.sa_family;
        /* A lookup with no remote end finds the listener on that address if the kernel still has one. */
        bool gone = sock_diag_lookup(m->diag_fd, &l->bound.sa, &none.sa, &d) == -ENOENT;
        log_listener(l, TCP_STATE_LISTEN, TCP_STATE_CLOSED, gone ? STATE_SOURCE_KERNEL : STATE_SOURCE_INFERRED, -1,
                     gone ? "sock_diag" : NULL, reason);
        listener_free(l);
}

static bool ip_allowed_and_count(Server *s, const struct sockaddr *peer) {
        if (!s->cfg.max_clients_per_ip)
                return true;
        if (s->n_ips >= s->n_ip_buckets) {
                size_t nb = s->n_ip_buckets ? s->n_ip_buckets * 2 : 64;
                IpCount **b = calloc(nb, sizeof(IpCount *));
                if (!b)
                        return false;
                for (size_t i = 0; i < s->n_ip_buckets; i++)
                        for (IpCount *ic = s->ip_buckets[i]; ic;) {
                                IpCount *n = ic->next;
                                size_t k = sockaddr_ip_hash(&ic->addr.sa) % nb;
                                ic->next = b[k];
                                b[k] = ic;
                                ic = n;
                        }
                free(s->ip_buckets);
                s->ip_buckets = b;
                s->n_ip_buckets = nb;
        }
        size_t k = sockaddr_ip_hash(peer) % s->n_ip_buckets;
        for (IpCount *ic = s->ip_buckets[k]; ic; ic = ic->next)
                if (sockaddr_ip_equal(&ic->addr.sa, peer)) {
                        if (ic->count >= s->cfg.max_clients_per_ip)
                                return false;
                        ic->count++;
                        return true;
                }
        IpCount *ic = calloc(1, sizeof(IpCount));
        if (!ic)
                return false;
        memcpy(&ic->addr, peer, sockaddr_len(peer));
        ic->count = 1;
        ic->next = s->ip_buckets[k];
        s->ip_buckets[k] = ic;
        s->n_ips++;
        return true;
}

bool server_ip_counting(const Server *s) {
        return s->cfg.max_clients_per_ip > 0;
}

void server_ip_release(Server *s, const struct sockaddr *peer) {
        if (!s->ip_buckets)
                return;
        IpCount **pp = &s->ip_buckets[sockaddr_ip_hash(peer) % s->n_ip_buckets];
        for (IpCount *ic = *pp; ic; pp = &ic->next, ic = ic->next)
                if (sockaddr_ip_equal(&ic->addr.sa, peer)) {
                        if (--ic->count == 0) {
                                *pp = ic->next;
                                free(ic);
                                s->n_ips--;
                        }
                        return;
                }
}

void server_log_refusal(Server *s, RefuseReason r, const struct sockaddr *peer) {
        Core *m = s->core;
        char addr[SOCKADDR_STR_MAX];
        uint64_t now = core_now(m, CLOCK_MONOTONIC);
        LogEntry e;

        s->refused[r]++;
        /* A flood of refusals must not become a flood of log entries: one a second per reason. */
        if (s->refused_logged_usec[r] && now - s->refused_logged_usec[r] < USEC_PER_SEC) {
                s->refused_suppressed[r]++;
                return;
        }
        s->refused_logged_usec[r] = now;
        log_entry_init(&e, LOG_WARNING, MID_REFUSED);
        log_entry_add(&e, "MESSAGE", "Server %s refused a connection from %s: limit %s reached%s", s->cfg.name,
                      peer ? sockaddr_format(peer, addr, sizeof(addr)) : "?", refuse_reason_to_string(r),
                      s->refused_suppressed[r] ? " (more refusals since the last entry)" : "");
        log_entry_add(&e, "TCPEDU_EVENT", "refused");
        log_entry_add(&e, "TCPEDU_SERVER", "%s", s->cfg.name);
        log_entry_add(&e, "TCPEDU_SERVER_TYPE", "%s", s->vt->name);
        log_entry_add(&e, "TCPEDU_ROLE", "server");
        if (peer)
                log_entry_add(&e, "TCPEDU_PEER", "%s", addr);
        log_entry_add(&e, "TCPEDU_REASON", "%s", refuse_reason_to_string(r));
        log_entry_add(&e, "TCPEDU_REFUSED_TOTAL", "%" PRIu64, s->refused[r]);
        log_entry_add(&e, "TCPEDU_SUPPRESSED", "%" PRIu64, s->refused_suppressed[r]);
        s->refused_suppressed[r] = 0;
        core_emit(m, &e, true);
}

/* Refuse with RST: the client sees "connection reset" at once and no TIME_WAIT is left behind. */
static void refuse(Server *s, int fd, RefuseReason r, const struct sockaddr *peer) {
        char cause[64];
        snprintf(cause, sizeof(cause), "refused: %s", refuse_reason_to_string(r));
        conn_record_refused(s, fd, peer, cause);
        server_log_refusal(s, r, peer);
}

static int accept_resume(sd_event_source *source, uint64_t usec, void *userdata) {
        Core *m = userdata;
        (void)source;
        (void)usec;
        return listener_accept_resume(m);
}

int listener_accept_resume(Core *m) {
        for (size_t i = 0; i < m->n_servers; i++)
                for (unsigned k = 0; k < m->servers[i]->n_listeners; k++)
                        if (m->servers[i]->listeners[k]->source)
                                sd_event_source_set_enabled(m->servers[i]->listeners[k]->source, SD_EVENT_ON);
        for (size_t i = 0; i < ELEMENTSOF(m->accept_sources); i++)
                if (m->accept_sources[i])
                        sd_event_source_set_enabled(m->accept_sources[i], SD_EVENT_ON);
        return 0;
}

void accept_pause(Core *m) {
        for (size_t i = 0; i < m->n_servers; i++)
                for (unsigned k = 0; k < m->servers[i]->n_listeners; k++)
                        if (m->servers[i]->listeners[k]->source)
                                sd_event_source_set_enabled(m->servers[i]->listeners[k]->source, SD_EVENT_OFF);
        for (size_t i = 0; i < ELEMENTSOF(m->accept_sources); i++)
                if (m->accept_sources[i])
                        sd_event_source_set_enabled(m->accept_sources[i], SD_EVENT_OFF);
        uint64_t when = core_now(m, CLOCK_MONOTONIC) + 100 * USEC_PER_MSEC;
        if (m->accept_resume_timer) {
                sd_event_source_set_time(m->accept_resume_timer, when);
                sd_event_source_set_enabled(m->accept_resume_timer, SD_EVENT_ONESHOT);
        } else if (sd_event_add_time(m->event, &m->accept_resume_timer, CLOCK_MONOTONIC, when, 0, accept_resume, m) < 0)
                listener_accept_resume(m);
}

/* Out of fds: give back the spare to accept and refuse one waiting client, so the backlog drains
 * and the loop does not spin on a listener that stays readable. Without a spare, pause accepting. */
static void accept_out_of_fds(Listener *l) {
        Server *s = l->server;
        Core *m = s->core;

        if (m->spare_fd >= 0) {
                m->spare_fd = safe_close(m->spare_fd);
                SockaddrUnion peer;
                socklen_t len = sizeof(peer);
                int fd = accept4(l->fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0)
                        refuse(s, fd, REFUSE_FD_LIMIT, &peer.sa);
                m->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        return;
        } else
                server_log_refusal(s, REFUSE_FD_LIMIT, NULL);
        accept_pause(m);
}

static int on_listener(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Server *s = l->server;
        Core *m = s->core;
        (void)source;
        (void)revents;

        for (int i = 0; i < ACCEPTS_PER_WAKEUP && l->fd >= 0; i++) {
                SockaddrUnion peer;
                socklen_t len = sizeof(peer);
                int cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                accept_out_of_fds(l);
                                break;
                        }
                        if (errno != EAGAIN)
                                log_msg(m, LOG_WARNING, NULL, "server %s: accept failed: %s", s->cfg.name, strerror(errno));
                        break;
                }
                if (m->n_conns >= m->config->daemon.max_connections)
                        refuse(s, cfd, REFUSE_MAX_CONNECTIONS, &peer.sa);
                else if (s->n_conns >= s->cfg.max_clients)
                        refuse(s, cfd, REFUSE_MAX_CLIENTS, &peer.sa);
                else if (!ip_allowed_and_count(s, &peer.sa))
                        refuse(s, cfd, REFUSE_MAX_CLIENTS_PER_IP, &peer.sa);
                else {
                        Conn *c;
                        if (conn_new(s, cfd, &peer, &c) < 0) {
                                if (server_ip_counting(s))
                                        server_ip_release(s, &peer.sa);
                                refuse(s, cfd, REFUSE_NO_MEMORY, &peer.sa);
                        }
                }
        }
        return 0;
}

static int listener_open(Server *s, const ListenAddr *la, Listener **ret, char *error, size_t error_size) {
        const struct sockaddr *sa = &la->addr.sa;
        Listener *l = calloc(1, sizeof(Listener));
        sd_id128_t id;
        int r;

        if (!l)
                return -ENOMEM;
        l->server = s;
        snprintf(l->spec, sizeof(l->spec), "%s", la->spec);
        l->port_zero = sockaddr_port(&la->addr.sa) == 0;
        if (sd_id128_randomize(&id) < 0)
                memset(&id, 0, sizeof(id));
        id_format(id.bytes, l->id);

        /* A socket systemd bound for this server ([server NAME] = FileDescriptorName=) is used as it
         * is, with this server's backlog; otherwise the daemon binds its own. */
        l->fd = passed_fds_take_listener(&s->core->passed, s->cfg.name, sa, &l->bound);
        if (l->fd >= 0) {
                l->passed = true;
                (void)listen(l->fd, (int)s->cfg.backlog);
                l->port_watched = conn_kernel_watch_port(s->core, sockaddr_port(&l->bound.sa));
                *ret = l;
                return 0;
        }
        if (l->fd != -ENOENT) {
                r = l->fd;
                l->fd = -1;
                goto fail;
        }
        l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        (void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
        if (sa->sa_family == AF_INET6)
                (void)setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 1 }, sizeof(int));
        if (bind(l->fd, sa, sockaddr_len(sa)) < 0 || listen(l->fd, (int)s->cfg.backlog) < 0) {
                r = negative_errno();
                goto fail;
        }
        socklen_t len = sizeof(l->bound);
        if (getsockname(l->fd, &l->bound.sa, &len) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* (a child that came between listen() and this is caught by the next one: it falls back) */
        l->port_watched = conn_kernel_watch_port(s->core, sockaddr_port(&l->bound.sa));
        *ret = l;
        return 0;
fail:
        snprintf(error, error_size, "server '%s': cannot listen on %s: %s%s", s->cfg.name, la->spec, strerror(-r),
                 r == -EACCES && sockaddr_port(sa) < 1024 && geteuid() != 0
                         ? s->core->privileges_dropped
                                   ? " (a port below 1024: tcpedud gave up root when it started; restart it to bind this port)"
                                   : " (a port below 1024 needs CAP_NET_BIND_SERVICE, or a socket passed by systemd)"
                         : "");
        listener_free(l);
        return r;
}

int server_prepare_listeners(Server *s, Listener **reuse, size_t n_reuse, Listener **ret, char *error, size_t error_size) {
        for (unsigned i = 0; i < s->cfg.n_listen; i++) {
                ret[i] = NULL;
                for (size_t k = 0; k < n_reuse; k++)
                        if (reuse[k] && strcmp(reuse[k]->spec, s->cfg.listen[i].spec) == 0) {
                                ret[i] = reuse[k];
                                reuse[k] = NULL; /* taken */
                                break;
                        }
                if (ret[i])
                        continue;
                int r = listener_open(s, &s->cfg.listen[i], &ret[i], error, error_size);
                if (r < 0) {
                        /* Undo: new listeners are closed, reused ones go back untouched. */
                        for (unsigned k = 0; k < i; k++)
                                if (!ret[k]->source)
                                        listener_discard(ret[k]);
                        return r;
                }
        }
        return 0;
}

int server_start(Server *s, Listener **prepared, bool announce) {
        Core *m = s->core;
        char addrs[LISTEN_MAX * SOCKADDR_STR_MAX];
        size_t off = 0;

        addrs[0] = 0;
        for (unsigned i = 0; i < s->cfg.n_listen; i++) {
                Listener *l = prepared[i];
                bool reused = l->source != NULL;
                l->server = s;
                s->listeners[s->n_listeners++] = l;
                if (reused) {
                        /* Taken over from an older server object: same fd, same port, new backlog. */
                        (void)listen(l->fd, (int)s->cfg.backlog);
                        sd_event_source_set_userdata(l->source, l);
                } else {
                        int r = sd_event_add_io(m->event, &l->source, l->fd, EPOLLIN, on_listener, l);
                        if (r < 0) {
                                /* undo: what was added closes, what was not is discarded */
                                for (unsigned k = i + 1; k < s->cfg.n_listen; k++)
                                        if (!prepared[k]->source)
                                                listener_discard(prepared[k]);
                                s->n_listeners--;
                                listener_discard(l);
                                server_stop(s, "cannot watch its listeners");
                                return r;
                        }
                        char a[SOCKADDR_STR_MAX];
                        int k = tcp_kernel_state(l->fd);
                        if (l->passed)
                                /* systemd called listen() before we ran: no transition of ours to log. */
                                log_msg(m, LOG_INFO, NULL, "server %s: accepting on %s, a socket passed by systemd", s->cfg.name,
                                        sockaddr_format(&l->bound.sa, a, sizeof(a)));
                        else
                                log_listener(l, TCP_STATE_CLOSED, TCP_STATE_LISTEN, k == 10 ? STATE_SOURCE_KERNEL : STATE_SOURCE_INFERRED,
                                             k, "tcp_info", NULL);
                }
                char a[SOCKADDR_STR_MAX];
                off += (size_t)snprintf(addrs + off, sizeof(addrs) - MIN(off, sizeof(addrs)), "%s%s", i ? ", " : "",
                                        sockaddr_format(&l->bound.sa, a, sizeof(a)));
        }
        s->running = true;
        if (!announce)
                return 0;

        LogEntry e;
        log_entry_init(&e, LOG_INFO, MID_SERVER_START);
        log_entry_add(&e, "MESSAGE", "Server %s (%s) listening on %s", s->cfg.name, s->vt->name, addrs);
        log_entry_add(&e, "TCPEDU_EVENT", "server-start");
        log_entry_add(&e, "TCPEDU_SERVER", "%s", s->cfg.name);
        log_entry_add(&e, "TCPEDU_SERVER_TYPE", "%s", s->vt->name);
        log_entry_add(&e, "TCPEDU_LISTEN", "%s", addrs);
        core_emit(m, &e, true);
        return 0;
}

void server_stop(Server *s, const char *reason) {
        Core *m = s->core;

        for (unsigned i = 0; i < s->n_listeners; i++)
                if (s->listeners[i]->server == s)
                        listener_close(s->listeners[i], reason);
        s->n_listeners = 0;
        /* Closing one connection can end others (a chat member dropped while the leave is
         * delivered, a reset): take the first each time instead of keeping a next pointer. */
        Conn *c;
        while ((c = list_first(&s->conns, Conn, node))) {
                conn_close(c, reason);
                if (list_first(&s->conns, Conn, node) == c)
                        conn_abort(c, reason); /* could not start closing it: do not loop on it */
        }
        if (s->running) {
                LogEntry e;
                log_entry_init(&e, LOG_INFO, MID_SERVER_STOP);
                log_entry_add(&e, "MESSAGE", "Server %s stopped: %s", s->cfg.name, reason);
                log_entry_add(&e, "TCPEDU_EVENT", "server-stop");
                log_entry_add(&e, "TCPEDU_SERVER", "%s", s->cfg.name);
                log_entry_add(&e, "TCPEDU_SERVER_TYPE", "%s", s->vt->name);
                log_entry_add(&e, "TCPEDU_REASON", "%s", reason);
                core_emit(m, &e, true);
        }
        s->running = false;
}

static int on_idle_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t timeout = (uint64_t)s->cfg.idle_timeout * USEC_PER_SEC;
        (void)source;

        /* The list is in order of last activity: stop at the first connection still in time. */
        while (!list_empty(&s->conns) && timeout) {
                Conn *c = list_first(&s->conns, Conn, node);
                if (c->last_activity + timeout > usec)
                        break;
                if (c->connecting) {
                        /* A session's handshake has its own timeout. */
                        c->last_activity = usec;
                        list_move_tail(&s->conns, &c->node);
                        continue;
                }
                conn_close(c, "idle timeout");
                if (list_first(&s->conns, Conn, node) == c)
                        list_move_tail(&s->conns, &c->node); /* could not start closing; retry later */
        }
        server_arm_idle_timer(s);
        return 0;
}

void server_rearm_idle_timer(Server *s) {
        if (s->idle_timer)
                sd_event_source_set_enabled(s->idle_timer, SD_EVENT_OFF);
        server_arm_idle_timer(s);
}

void server_arm_idle_timer(Server *s) {
        Core *m = s->core;
        if (!s->cfg.idle_timeout || list_empty(&s->conns)) {
                if (s->idle_timer)
                        sd_event_source_set_enabled(s->idle_timer, SD_EVENT_OFF);
                return;
        }
        /* Armed for the oldest connection; activity moves others to the tail without re-arming. */
        if (s->idle_timer && sd_event_source_get_enabled(s->idle_timer, NULL) > 0)
                return;
        Conn *c = list_first(&s->conns, Conn, node);
        uint64_t when = c->last_activity + (uint64_t)s->cfg.idle_timeout * USEC_PER_SEC;
        if (s->idle_timer) {
                sd_event_source_set_time(s->idle_timer, when);
                sd_event_source_set_enabled(s->idle_timer, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_add_time(m->event, &s->idle_timer, CLOCK_MONOTONIC, when, USEC_PER_SEC / 10, on_idle_timer, s);
        (void)m;
}
