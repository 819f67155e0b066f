/* SPDX-License-Identifier: MIT */
/* The one context: event loop, config, servers, the connection poller, reload and shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <unistd.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>

#include "kernel-tcp.h"
#include "macro.h"
#include "tcpedud.h"

/* xorshift128+: fast, and good enough for a teaching server's random command (not for secrets). */
uint64_t manager_random(Manager *m) {
        uint64_t s1 = m->rng[0];
        const uint64_t s0 = m->rng[1];
        m->rng[0] = s0;
        s1 ^= s1 << 23;
        m->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        return m->rng[1] + s0;
}

uint64_t now_usec(Manager *m, clockid_t clock) {
        uint64_t t = 0;
        (void)sd_event_now(m->event, clock, &t);
        return t;
}

/* Connections are not sd-event sources of their own: one source drains a private epoll set in
 * batches, because sd-event dispatches a single source per loop iteration (measured: about a third
 * more CPU per echoed message, twice the latency). Listeners, timers and signals stay sd-event's.
 * What batch_output types (enhanced, chat) send during a batch is written at its end: one send()
 * per connection for all of a read's replies, or for all the broadcasts that reached a member. */
static int on_epoll(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct epoll_event ev[POLL_BATCH];
        (void)source;
        (void)revents;

        Manager *m = userdata;
        int n = epoll_wait(fd, ev, POLL_BATCH, 0);
        m->batching = true;
        for (int i = 0; i < n; i++)
                conn_handle_events(ev[i].data.ptr, ev[i].events);
        m->batching = false;
        while (!list_empty(&m->flush))
                conn_flush(list_entry(m->flush.next, Conn, flush_node));
        return 0;
}

static int on_gc(sd_event_source *source, void *userdata) {
        Manager *m = userdata;
        (void)source;
        while (!list_empty(&m->dead)) {
                Conn *c = list_first(&m->dead, Conn, node);
                list_remove(&c->node);
                conn_free(c);
        }
        return 0;
}

void manager_schedule_gc(Manager *m) {
        if (m->gc_source)
                sd_event_source_set_enabled(m->gc_source, SD_EVENT_ONESHOT);
}

bool manager_wants_events(Manager *m) {
        return m->log_transitions == LOG_TRANSITIONS_ALL || m->n_monitors > 0 || m->n_watchers > 0;
}

void manager_emit(Manager *m, const LogEntry *e, bool to_journal) {
        if (to_journal)
                journal_submit(m->journal, e);
        if (m->n_monitors > 0 || m->n_watchers > 0)
                control_broadcast(m, e);
}

void manager_conn_gone(Manager *m) {
        if (m->stopping && m->n_conns == 0)
                sd_event_exit(m->event, m->exit_code);
}

/* ---- sd_notify without blocking ----
 * sd_notify() sends on a blocking socket, which waits while the receiver (systemd, or whatever is
 * behind NOTIFY_SOCKET) is not reading: the event loop would stop with it. Notifications go out on
 * a non-blocking socket, connected once at start (so that it still works after the daemon gave up
 * root), in order; what the receiver has no room for waits in a short queue and is sent when the
 * socket is writable again. A STATUS= line replaces a STATUS= line still waiting. */

static void notify_open(Manager *m) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!path || (path[0] != '/' && path[0] != '@'))
                return;
        size_t n = strlen(path);
        if (n >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, n);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0; /* abstract namespace */
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return;
        if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
                safe_close(fd);
                return;
        }
        m->notify_fd = fd;
}

static void notify_pop(Manager *m) {
        free(m->notify_queue[0]);
        memmove(m->notify_queue, m->notify_queue + 1, (m->n_notify - 1) * sizeof(char *));
        m->n_notify--;
}

/* Send what waits; -EAGAIN while the receiver has no room. A message the receiver refuses for
 * good (it went away) is dropped. */
static int notify_flush(Manager *m) {
        while (m->n_notify > 0) {
                const char *msg = m->notify_queue[0];
                if (send(m->notify_fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && (errno == EAGAIN || errno == EINTR))
                        return -EAGAIN;
                notify_pop(m);
        }
        return 0;
}

static int on_notify_writable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void)fd;
        (void)revents;
        if (notify_flush(m) == 0)
                sd_event_source_set_enabled(source, SD_EVENT_OFF);
        return 0;
}

static bool status_only(const char *msg) {
        return strncmp(msg, "STATUS=", 7) == 0 && !strchr(msg, '\n');
}

void manager_notify(Manager *m, const char *fmt, ...) {
        char *msg = NULL;
        va_list ap;

        if (m->notify_fd < 0)
                return;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        if (m->n_notify > 0 && status_only(msg) && status_only(m->notify_queue[m->n_notify - 1])) {
                free(m->notify_queue[m->n_notify - 1]);
                m->notify_queue[m->n_notify - 1] = msg;
        } else {
                if (m->n_notify == NOTIFY_QUEUE_MAX) {
                        /* the receiver has not read for a long while: the oldest goes */
                        m->notify_dropped++;
                        notify_pop(m);
                }
                m->notify_queue[m->n_notify++] = msg;
        }
        if (notify_flush(m) == 0)
                return;
        if (m->notify_source)
                sd_event_source_set_enabled(m->notify_source, SD_EVENT_ON);
        else if (sd_event_add_io(m->event, &m->notify_source, m->notify_fd, EPOLLOUT, on_notify_writable, m) < 0)
                m->notify_source = NULL;
}

/* At exit: what still waits gets a last, bounded chance. */
static void notify_close(Manager *m) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t give_up_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 500;
        while (m->notify_fd >= 0 && m->n_notify > 0 && notify_flush(m) == -EAGAIN) {
                struct pollfd p = { .fd = m->notify_fd, .events = POLLOUT };
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t left = give_up_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                        break;
        }
        while (m->n_notify > 0)
                notify_pop(m);
        m->notify_source = sd_event_source_disable_unref(m->notify_source);
        m->notify_fd = safe_close(m->notify_fd);
}

void manager_update_status(Manager *m) {
        JournalStats js;
        char status[256];
        unsigned running = 0;

        for (size_t i = 0; i < m->n_servers; i++)
                running += m->servers[i]->running;
        journal_stats(m->journal, &js);
        snprintf(status, sizeof(status),
                 "%u of %zu servers running, %u connections; %" PRIu64 " transitions, %" PRIu64 " log entries dropped", running,
                 m->n_servers, m->n_conns, m->transitions, js.dropped_full + js.dropped_failed);
        if (strcmp(status, m->last_status) == 0)
                return;
        snprintf(m->last_status, sizeof(m->last_status), "%s", status);
        manager_notify(m, "STATUS=%s", status);
}

static int on_status_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        manager_update_status(m);
        sd_event_source_set_time(source, usec + USEC_PER_SEC);
        return 0;
}

/* ---- sockets passed by systemd ---- */

/* Read once, at start: systemd passes the sockets of the .socket units that name this service,
 * each with its FileDescriptorName= ("control" for the control socket, a server's name for a
 * listener). LISTEN_FDS and friends are removed from the environment, so nothing started later
 * takes them for its own. */
static int passed_fds_collect(Manager *m) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);
        if (n <= 0)
                return n;
        m->passed = calloc((size_t)n, sizeof(PassedFd));
        for (int i = 0; i < n; i++) {
                char *name = names ? names[i] : NULL;
                if (m->passed) {
                        m->passed[i] = (PassedFd){ .fd = SD_LISTEN_FDS_START + i, .name = name ? name : strdup("unknown") };
                        if (!m->passed[i].name) {
                                safe_close(m->passed[i].fd);
                                m->passed[i].fd = -1;
                        }
                } else {
                        safe_close(SD_LISTEN_FDS_START + i);
                        free(name);
                }
        }
        free(names);
        if (!m->passed)
                return -ENOMEM;
        m->n_passed = (size_t)n;
        return n;
}

int manager_take_passed_control(Manager *m) {
        for (size_t i = 0; i < m->n_passed; i++) {
                PassedFd *p = &m->passed[i];
                if (p->fd < 0 || p->taken || strcmp(p->name, "control") != 0 || sd_is_socket(p->fd, AF_UNIX, SOCK_STREAM, 1) <= 0)
                        continue;
                if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK) < 0)
                        return negative_errno();
                p->taken = true;
                return p->fd;
        }
        return -ENOENT;
}

int manager_take_passed_listener(Manager *m, const char *server, const struct sockaddr *addr, SockaddrUnion *ret_bound) {
        for (size_t i = 0; i < m->n_passed; i++) {
                PassedFd *p = &m->passed[i];
                SockaddrUnion bound;
                socklen_t len = sizeof(bound);

                if (p->fd < 0 || p->taken || strcmp(p->name, server) != 0 || sd_is_socket(p->fd, addr->sa_family, SOCK_STREAM, 1) <= 0)
                        continue;
                if (getsockname(p->fd, &bound.sa, &len) < 0 || !sockaddr_ip_equal(&bound.sa, addr) ||
                    (sockaddr_port(addr) != 0 && sockaddr_port(addr) != sockaddr_port(&bound.sa)))
                        continue;
                if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK) < 0)
                        return negative_errno();
                p->taken = true;
                *ret_bound = bound;
                return p->fd;
        }
        return -ENOENT;
}

void manager_release_passed(Manager *m, int fd) {
        for (size_t i = 0; i < m->n_passed; i++)
                if (m->passed[i].fd == fd)
                        m->passed[i].taken = false;
}

/* A passed socket no server took is kept for a later reload; say so once, at start. */
static void passed_fds_report_unused(Manager *m) {
        for (size_t i = 0; i < m->n_passed; i++) {
                PassedFd *p = &m->passed[i];
                SockaddrUnion a;
                socklen_t len = sizeof(a);
                char addr[SOCKADDR_STR_MAX] = "?";

                if (p->fd < 0 || p->taken)
                        continue;
                if (getsockname(p->fd, &a.sa, &len) == 0 && (a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6))
                        sockaddr_format(&a.sa, addr, sizeof(addr));
                if (strcmp(p->name, "control") == 0)
                        log_msg(m, LOG_WARNING, NULL,
                                "socket passed by systemd as FileDescriptorName=control is not used: the control socket is one "
                                "listening Unix stream socket");
                else
                        log_msg(m, LOG_WARNING, NULL,
                                "socket passed by systemd as FileDescriptorName=%s (%s) is not used: no [server %s] listens on "
                                "that address; it stays open for a reload",
                                p->name, addr, p->name);
        }
}

/* ---- applying a config: prepare everything that can fail, then commit ---- */

typedef struct Plan {
        const ServerConfig *cfg;
        Server *server; /* existing object kept, or a new one */
        bool is_new;
        bool run;
        Listener *prepared[LISTEN_MAX];
        bool has_prepared;
} Plan;

static Server *find_server(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_servers; i++)
                if (strcmp(m->servers[i]->cfg.name, name) == 0)
                        return m->servers[i];
        return NULL;
}

static int apply_config(Manager *m, Config *nc, char *error, size_t error_size, char *summary, size_t summary_size) {
        Plan *plans = calloc(nc->n_servers ? nc->n_servers : 1, sizeof(Plan));
        Listener **pool = NULL;
        size_t n_pool = 0, off = 0;
        int r = 0;

        if (!plans)
                return -ENOMEM;
        /* Every listener that exists now can be taken over by the new config: same address, same fd. */
        for (size_t i = 0; i < m->n_servers; i++)
                n_pool += m->servers[i]->n_listeners;
        pool = calloc(n_pool ? n_pool : 1, sizeof(Listener *));
        if (!pool) {
                free(plans);
                return -ENOMEM;
        }

        for (size_t i = 0; i < nc->n_servers; i++) {
                const ServerConfig *sc = &nc->servers[i];
                Server *old = find_server(m, sc->name);
                Plan *p = &plans[i];
                p->cfg = sc;
                /* Same type and handler: the same server object, its connections kept. */
                if (old && old->cfg.type == sc->type && strcmp(old->cfg.handler, sc->handler) == 0) {
                        p->server = old;
                        p->run = old->running || (!server_config_equal(&old->cfg, sc) && sc->autostart);
                } else {
                        r = server_new(m, sc, &p->server);
                        if (r < 0) {
                                snprintf(error, error_size, "server '%s': %s", sc->name, strerror(-r));
                                goto rollback;
                        }
                        p->is_new = true;
                        p->run = sc->autostart || (old && old->running);
                }
        }

        /* Prepare listeners: first each server's own (port 0 keeps its port), then any server's. */
        for (size_t i = 0; i < nc->n_servers; i++) {
                Plan *p = &plans[i];
                Server *old = find_server(m, p->cfg->name);
                if (!p->run)
                        continue;
                size_t k = 0;
                if (old)
                        for (unsigned j = 0; j < old->n_listeners; j++)
                                pool[k++] = old->listeners[j];
                for (size_t s = 0; s < m->n_servers; s++)
                        if (m->servers[s] != old)
                                for (unsigned j = 0; j < m->servers[s]->n_listeners; j++)
                                        if (!m->servers[s]->listeners[j]->port_zero)
                                                pool[k++] = m->servers[s]->listeners[j];
                /* listeners already taken by an earlier plan are not offered again */
                for (size_t q = 0; q < k; q++)
                        for (size_t e = 0; e < i; e++)
                                for (unsigned j = 0; plans[e].has_prepared && j < plans[e].cfg->n_listen; j++)
                                        if (pool[q] == plans[e].prepared[j])
                                                pool[q] = NULL;
                ServerConfig tmp_cfg = p->server->cfg;
                p->server->cfg = *p->cfg; /* prepare with the new addresses and backlog */
                r = server_prepare_listeners(p->server, pool, k, p->prepared, error, error_size);
                p->server->cfg = tmp_cfg;
                if (r < 0)
                        goto rollback;
                p->has_prepared = true;
        }

        /* Commit: nothing below can fail in a way that leaves a half-applied config. */
        {
                Server **servers = calloc(nc->n_servers ? nc->n_servers : 1, sizeof(Server *));
                if (!servers) {
                        r = -ENOMEM;
                        snprintf(error, error_size, "out of memory");
                        goto rollback;
                }
                /* Old listeners that no plan took over are closed; servers that no plan kept stop. */
                for (size_t s = 0; s < m->n_servers; s++) {
                        Server *os = m->servers[s];
                        bool kept = false;
                        for (size_t i = 0; i < nc->n_servers; i++)
                                kept |= plans[i].server == os;
                        for (unsigned j = 0; j < os->n_listeners; j++) {
                                Listener *l = os->listeners[j];
                                bool taken = false;
                                for (size_t i = 0; i < nc->n_servers && !taken; i++)
                                        for (unsigned q = 0; plans[i].has_prepared && q < plans[i].cfg->n_listen; q++)
                                                taken |= plans[i].prepared[q] == l;
                                if (!taken)
                                        listener_close(l, kept ? "address removed from the config" : "server removed from the config");
                                os->listeners[j] = NULL;
                        }
                        os->n_listeners = 0;
                        if (!kept) {
                                off += (size_t)snprintf(summary + off, summary_size - MIN(off, summary_size), "%sremoved %s",
                                                        off ? "; " : "", os->cfg.name);
                                os->running = true; /* so that server_stop() logs it */
                                server_stop(os, "removed from the config");
                                os->removed = true;
                                server_unref(os);
                        }
                }
                for (size_t i = 0; i < nc->n_servers; i++) {
                        Plan *p = &plans[i];
                        Server *s = p->server;
                        bool changed = p->is_new || !server_config_equal(&s->cfg, p->cfg);
                        bool was_running = s->running;
                        if (changed)
                                off += (size_t)snprintf(summary + off, summary_size - MIN(off, summary_size), "%s%s %s", off ? "; " : "",
                                                        p->is_new ? "added" : "changed", p->cfg->name);
                        s->cfg = *p->cfg;
                        s->running = false;
                        if (p->has_prepared)
                                (void)server_start(s, p->prepared, !was_running);
                        else if (was_running && !p->run)
                                server_stop(s, "stopped");
                        if (s->idle_timer)
                                sd_event_source_set_enabled(s->idle_timer, SD_EVENT_OFF);
                        server_arm_idle_timer(s);
                        servers[i] = s;
                }
                free(m->servers);
                m->servers = servers;
                m->n_servers = nc->n_servers;
        }
        if (off == 0)
                snprintf(summary, summary_size, "no changes");
        free(plans);
        free(pool);
        if (m->config->daemon.log_transitions != nc->daemon.log_transitions ||
            m->config->daemon.max_connections != nc->daemon.max_connections || m->config->daemon.max_sessions != nc->daemon.max_sessions ||
            m->config->daemon.session_buffer != nc->daemon.session_buffer ||
            m->config->daemon.session_idle_timeout != nc->daemon.session_idle_timeout ||
            strcmp(m->config->daemon.admin_group, nc->daemon.admin_group) != 0 || m->config->daemon.log_level != nc->daemon.log_level) {
                if (strcmp(summary, "no changes") == 0)
                        off = 0;
                snprintf(summary + off, summary_size - MIN(off, summary_size), "%schanged [daemon]", off ? "; " : "");
        }
        if (strcmp(m->config->daemon.control_socket, nc->daemon.control_socket) != 0 && m->config->n_files > 0)
                log_msg(m, LOG_WARNING, NULL, "control_socket changed to '%s': takes effect when tcpedud restarts",
                        nc->daemon.control_socket);
        if ((strcmp(m->config->daemon.user, nc->daemon.user) != 0 || strcmp(m->config->daemon.group, nc->daemon.group) != 0) &&
            m->config->n_files > 0)
                log_msg(m, LOG_WARNING, NULL, "user or group changed to '%s'/'%s': takes effect when tcpedud restarts", nc->daemon.user,
                        nc->daemon.group);
        session_server_configure(m, &nc->daemon);
        m->admin_gid_valid = false;
        if (nc->daemon.admin_group[0]) {
                struct group *g = getgrnam(nc->daemon.admin_group);
                if (g) {
                        m->admin_gid = g->gr_gid;
                        m->admin_gid_valid = true;
                } else
                        log_msg(m, LOG_WARNING, NULL, "admin_group '%s' does not exist: only root and uid %u may change things",
                                nc->daemon.admin_group, (unsigned)geteuid());
        }
        config_free(m->config);
        m->config = nc;
        m->log_level = nc->daemon.log_level;
        m->log_transitions = nc->daemon.log_transitions;
        return 0;

rollback:
        for (size_t i = 0; i < nc->n_servers; i++) {
                Plan *p = &plans[i];
                if (p->has_prepared)
                        for (unsigned j = 0; j < p->cfg->n_listen; j++)
                                if (p->prepared[j] && p->prepared[j]->source == NULL)
                                        listener_discard(p->prepared[j]);
                if (p->is_new && p->server)
                        server_unref(p->server);
        }
        free(plans);
        free(pool);
        return r < 0 ? r : -EINVAL;
}

int manager_reload(Manager *m, ConfigErrors *errs, char *summary, size_t summary_size) {
        Config *nc = NULL;
        char error[512];
        int r;

        manager_notify(m, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%" PRIu64, now_usec(m, CLOCK_MONOTONIC));
        r = config_load(m->config_path, &nc, errs);
        if (r >= 0 && (privileges_validate(nc, errs) < 0 || plugins_validate(nc, errs) < 0)) {
                nc = config_free(nc);
                r = -EINVAL;
        }
        if (r >= 0) {
                r = apply_config(m, nc, error, sizeof(error), summary, summary_size);
                if (r < 0) {
                        config_errors_add(errs, nc->main_path, 0, "%s", error);
                        config_free(nc);
                }
        } else if (errs->n == 0)
                config_errors_add(errs, m->config_path ? m->config_path : CONFIG_DEFAULT_PATH, 0, "%s", strerror(-r));

        if (r < 0) {
                m->reload_failures++;
                for (size_t i = 0; i < errs->n; i++)
                        log_msg(m, LOG_ERR, MID_RELOAD_FAILED, "%s", errs->lines[i]);
                log_msg(m, LOG_ERR, MID_RELOAD_FAILED, "Reload rejected (%zu errors): the previous configuration stays in effect",
                        errs->n + errs->suppressed);
        } else {
                m->reloads++;
                log_msg(m, LOG_NOTICE, MID_RELOAD, "Configuration reloaded from %s: %s", m->config->main_path, summary);
        }
        m->last_status[0] = 0;
        manager_notify(m, "READY=1");
        manager_update_status(m);
        return r;
}

/* ---- signals and shutdown ---- */

static int on_stop_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void)source;
        (void)usec;
        sd_event_exit(m->event, m->exit_code);
        return 0;
}

static void manager_stop(Manager *m, const char *why) {
        ListNode *n, *tmp;

        if (m->stopping)
                return;
        m->stopping = true;
        manager_notify(m, "STOPPING=1\nSTATUS=Shutting down");
        log_msg(m, LOG_NOTICE, MID_DAEMON_STOP, "Stopping (%s): closing listeners and connections", why);
        for (size_t i = 0; i < m->n_servers; i++)
                server_stop(m->servers[i], "daemon stopping");
        list_foreach_safe (n, tmp, &m->session_server->conns)
                conn_close(list_entry(n, Conn, node), "daemon stopping");
        list_foreach_safe (n, tmp, &m->lingering)
                conn_forget(list_entry(n, Conn, node), "daemon stopped before the kernel released the connection");
        if (m->n_conns == 0) {
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        /* Each connection has its own 5 s bound (then RST); this is the backstop. */
        (void)sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, CONN_CLOSE_TIMEOUT_USEC + USEC_PER_SEC, 0, on_stop_deadline, m);
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        (void)source;

        if (si->ssi_signo == SIGHUP) {
                ConfigErrors errs = {};
                char summary[1024];
                (void)manager_reload(m, &errs, summary, sizeof(summary));
                config_errors_clear(&errs);
                return 0;
        }
        manager_stop(m, si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return 0;
}

/* ---- life ---- */

int manager_new(const char *config_path, Config *config, LogTarget target, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->config_path = config_path;
        m->log_level = config->daemon.log_level;
        m->log_transitions = config->daemon.log_transitions;
        m->epoll_fd = m->diag_fd = m->spare_fd = m->notify_fd = -1;
        list_init(&m->closing);
        list_init(&m->lingering);
        list_init(&m->dead);
        list_init(&m->flush);
        list_init(&m->control_clients);
        m->control_fd = -1;
        /* An empty config to apply the real one against: start-up is a reload from nothing. */
        m->config = calloc(1, sizeof(Config));
        if (!m->config) {
                free(m);
                return -ENOMEM;
        }

        r = journal_new(target, &m->journal);
        if (r < 0)
                goto fail;
        r = passed_fds_collect(m);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0)
                log_msg(m, LOG_WARNING, NULL, "ignoring the sockets passed by systemd: %s", strerror(-r));
        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;
        notify_open(m);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m)) < 0)
                goto fail;

        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(m->event, &m->epoll_source, m->epoll_fd, EPOLLIN, on_epoll, m);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(m->event, &m->gc_source, on_gc, m);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(m->gc_source, SD_EVENT_OFF);
        /* Run last in an iteration, after every I/O callback that might still look at a dead conn. */
        sd_event_source_set_priority(m->gc_source, SD_EVENT_PRIORITY_IDLE);

        m->diag_fd = sock_diag_open();
        if (m->diag_fd < 0) {
                r = m->diag_fd;
                goto fail;
        }
        m->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        r = session_server_new(m, &m->session_server);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, USEC_PER_SEC, USEC_PER_SEC / 10, on_status_timer, m);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
        (void)sd_event_set_watchdog(m->event, true);
        m->start_usec = now_usec(m, CLOCK_REALTIME);
        sd_id128_t seed;
        if (sd_id128_randomize(&seed) < 0)
                seed = (sd_id128_t){ .qwords = { m->start_usec, (uint64_t)getpid() } };
        m->rng[0] = seed.qwords[0] | 1;
        m->rng[1] = seed.qwords[1];
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

int manager_start(Manager *m, Config *config, char *error, size_t error_size) {
        char summary[1024];
        /* The control socket first: a second daemon on the same socket must fail before it binds anything. */
        int r = control_open(m, config->daemon.control_socket);
        if (r < 0) {
                snprintf(error, error_size, "control socket %s: %s", m->control_path[0] ? m->control_path : "(none)",
                         r == -EADDRINUSE ? "in use by another running tcpedud" : strerror(-r));
                config_free(config);
                return r;
        }
        r = apply_config(m, config, error, error_size, summary, sizeof(summary));
        if (r < 0) {
                config_free(config);
                return r;
        }
        /* Listeners and the control socket are open: root is not needed any more. */
        r = privileges_drop(m, error, error_size);
        if (r < 0)
                return r;
        log_msg(m, LOG_NOTICE, MID_DAEMON_START, "tcpedud " TCPEDU_VERSION " started with %s: %zu servers", m->config->main_path,
                m->n_servers);
        passed_fds_report_unused(m);
        manager_update_status(m);
        manager_notify(m, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        return sd_event_loop(m->event);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        ListNode *n, *tmp;
        /* Everything still open is dropped without further log entries: the loop is over. */
        control_close(m);
        list_foreach_safe (n, tmp, &m->dead)
                conn_free(list_entry(n, Conn, node));
        for (size_t i = 0; i < m->n_servers; i++) {
                Server *s = m->servers[i];
                list_foreach_safe (n, tmp, &s->conns)
                        conn_free(list_entry(n, Conn, node));
        }
        if (m->session_server)
                list_foreach_safe (n, tmp, &m->session_server->conns)
                        conn_free(list_entry(n, Conn, node));
        list_foreach_safe (n, tmp, &m->closing)
                conn_free(list_entry(n, Conn, node));
        list_foreach_safe (n, tmp, &m->lingering)
                conn_free(list_entry(n, Conn, node));
        for (size_t i = 0; i < m->n_servers; i++)
                server_unref(m->servers[i]);
        server_unref(m->session_server);
        free(m->servers);
        sd_event_source_disable_unref(m->epoll_source);
        sd_event_source_disable_unref(m->gc_source);
        sd_event_source_disable_unref(m->status_timer);
        sd_event_source_disable_unref(m->accept_resume_timer);
        notify_close(m);
        safe_close(m->epoll_fd);
        safe_close(m->diag_fd);
        safe_close(m->spare_fd);
        for (size_t i = 0; i < m->n_passed; i++) {
                safe_close(m->passed[i].fd);
                free(m->passed[i].name);
        }
        free(m->passed);
        sd_event_unref(m->event);
        journal_free(m->journal);
        config_free(m->config);
        free(m);
        return NULL;
}
