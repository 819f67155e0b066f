/* SPDX-License-Identifier: MIT */
/* The composition root: builds the core, the server types' registry, control and the servers;
 * owns the loop (the connection poller, signals), and stops in order. Reload is manager-reload.c,
 * sd_notify manager-notify.c. */
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

#include "chat.h"
#include "conn.h"
#include "conn-kernel.h"
#include "control.h"
#include "echo.h"
#include "enhanced.h"
#include "macro.h"
#include "manager.h"
#include "privileges.h"
#include "server-type.h"
#include "server.h"
#include "session.h"

const ServerVtable *manager_server_type(int type) {
        static const ServerVtable *const table[_SERVER_TYPE_MAX] = {
                [SERVER_TYPE_ECHO] = &echo_vtable,
                [SERVER_TYPE_ENHANCED] = &enhanced_vtable,
                [SERVER_TYPE_CHAT] = &chat_vtable,
        };
        return type >= 0 && type < _SERVER_TYPE_MAX ? table[type] : NULL;
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
        m->core.batching = true;
        for (int i = 0; i < n; i++)
                conn_handle_events(ev[i].data.ptr, ev[i].events);
        m->core.batching = false;
        while (!list_empty(&m->core.flush))
                conn_flush(list_entry(m->core.flush.next, Conn, flush_node));
        return 0;
}

/* ---- sockets passed by systemd ---- */

/* A passed socket no server took is kept for a later reload; say so once, at start. */
static void passed_fds_report_unused(Manager *m) {
        for (size_t i = 0; i < m->core.passed.n; i++) {
                PassedFd *p = &m->core.passed.fds[i];
                SockaddrUnion a;
                socklen_t len = sizeof(a);
                char addr[SOCKADDR_STR_MAX] = "?";

                if (p->fd < 0 || p->taken)
                        continue;
                if (getsockname(p->fd, &a.sa, &len) == 0 && (a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6))
                        sockaddr_format(&a.sa, addr, sizeof(addr));
                if (strcmp(p->name, "control") == 0)
                        log_msg(&m->core, LOG_WARNING, NULL,
                                "socket passed by systemd as FileDescriptorName=control is not used: the control socket is one "
                                "listening Unix stream socket");
                else
                        log_msg(&m->core, LOG_WARNING, NULL,
                                "socket passed by systemd as FileDescriptorName=%s (%s) is not used: no [server %s] listens on "
                                "that address; it stays open for a reload",
                                p->name, addr, p->name);
        }
}

/* ---- signals and shutdown ---- */

static int on_stop_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void)source;
        (void)usec;
        core_exit(&m->core);
        return 0;
}

static void manager_stop(Manager *m, const char *why) {
        ListNode *n, *tmp;

        if (m->core.stopping)
                return;
        m->core.stopping = true;
        manager_notify(m, "STOPPING=1\nSTATUS=Shutting down");
        log_msg(&m->core, LOG_NOTICE, MID_DAEMON_STOP, "Stopping (%s): closing listeners and connections", why);
        /* Sessions first: one whose peer is this daemon's own server then closes first, as the
         * kernel will see it, and its server end follows the passive path. */
        list_foreach_safe (n, tmp, &m->core.session_server->conns)
                conn_close(list_entry(n, Conn, node), "daemon stopping");
        for (size_t i = 0; i < m->core.n_servers; i++)
                server_stop(m->core.servers[i], "daemon stopping");
        list_foreach_safe (n, tmp, &m->core.lingering)
                conn_forget(list_entry(n, Conn, node), "daemon stopped before the kernel released the connection");
        if (m->core.n_conns == 0) {
                core_exit(&m->core);
                return;
        }
        /* Each connection has its own 5 s bound (then RST); this is the backstop. */
        (void)sd_event_add_time_relative(m->core.event, NULL, CLOCK_MONOTONIC, CONN_CLOSE_TIMEOUT_USEC + USEC_PER_SEC, 0, on_stop_deadline,
                                         m);
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

static int on_status_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        manager_update_status(m);
        sd_event_source_set_time(source, usec + USEC_PER_SEC);
        return 0;
}

static int control_reload(void *userdata, ConfigErrors *errs, char *summary, size_t summary_size) {
        return manager_reload(userdata, errs, summary, summary_size);
}

/* The loop's own sources: signals, the connection poller, the status line, the watchdog. */
static int add_sources(Manager *m) {
        sd_event *e = m->core.event;
        int r;

        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(e, NULL, SIGTERM, on_signal, m)) < 0 || (r = sd_event_add_signal(e, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(e, NULL, SIGHUP, on_signal, m)) < 0)
                return r;
        r = sd_event_add_io(e, &m->epoll_source, m->core.epoll_fd, EPOLLIN, on_epoll, m);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(e, &m->status_timer, CLOCK_MONOTONIC, USEC_PER_SEC, USEC_PER_SEC / 10, on_status_timer, m);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
        (void)sd_event_set_watchdog(e, true);
        return 0;
}

int manager_new(const char *config_path, Config *config, LogTarget target, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->config_path = config_path;
        m->notify_fd = -1;
        r = core_init(&m->core, config, target);
        if (r < 0)
                goto fail;
        r = passed_fds_collect(&m->core.passed);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0)
                log_msg(&m->core, LOG_WARNING, NULL, "ignoring the sockets passed by systemd: %s", strerror(-r));
        manager_notify_open(m);
        r = add_sources(m);
        if (r < 0)
                goto fail;
        r = session_server_new(&m->core, &m->core.session_server);
        if (r < 0)
                goto fail;
        r = control_new(&m->core, &(ControlOps){ .reload = control_reload, .userdata = m }, &m->control);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

/* Where the recorded states come from, and why: one record at start. */
static void log_kernel_source(Manager *m) {
        bool bpf = conn_kernel_active(&m->core);
        LogEntry e;
        log_entry_init(&e, LOG_NOTICE, MID_KERNEL_SOURCE);
        log_entry_add(&e, "MESSAGE", "TCP states from %s: %s",
                      bpf ? "bpf (the kernel's inet_sock_set_state tracepoint; TIME_WAIT from sock_diag)"
                          : "tcp_info (TCP_INFO on open sockets, sock_diag after close)",
                      m->core.kernel_source_why);
        log_entry_add(&e, "TCPEDU_EVENT", "kernel-source");
        log_entry_add(&e, "TCPEDU_KERNEL_SOURCE", "%s", bpf ? "bpf" : "tcp_info");
        log_entry_add(&e, "TCPEDU_REASON", "%s", m->core.kernel_source_why);
        core_emit(&m->core, &e, true);
}

int manager_start(Manager *m, Config *config, char *error, size_t error_size) {
        char summary[1024];
        /* The control socket first: a second daemon on the same socket must fail before it binds anything. */
        int r = control_open(m->control, config->daemon.control_socket);
        if (r < 0) {
                const char *path = control_path(m->control);
                snprintf(error, error_size, "control socket %s: %s", path[0] ? path : "(none)",
                         r == -EADDRINUSE ? "in use by another running tcpedud" : strerror(-r));
                config_free(config);
                return r;
        }
        /* The eBPF source before the listeners (their ports are watched as they open) and while
         * root (loading it needs CAP_BPF and CAP_PERFMON; its fds stay usable after the drop). */
        r = conn_kernel_start(&m->core, config->daemon.kernel_source, m->core.kernel_source_why, sizeof(m->core.kernel_source_why));
        if (r < 0) {
                snprintf(error, error_size, "kernel_source = bpf: the eBPF source cannot be used: %s", m->core.kernel_source_why);
                config_free(config);
                return r;
        }
        r = manager_apply_config(m, config, error, error_size, summary, sizeof(summary));
        if (r < 0) {
                config_free(config);
                return r;
        }
        /* Listeners and the control socket are open: root is not needed any more. */
        const char *created = control_created_path(m->control);
        r = privileges_drop(&m->core, created, created && control_created_dir(m->control), conn_kernel_active(&m->core), error, error_size);
        if (r < 0)
                return r;
        log_msg(&m->core, LOG_NOTICE, MID_DAEMON_START, "tcpedud " TCPEDU_VERSION " started with %s: %zu servers",
                m->core.config->main_path, m->core.n_servers);
        log_kernel_source(m);
        passed_fds_report_unused(m);
        manager_update_status(m);
        manager_notify(m, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        return sd_event_loop(m->core.event);
}

static void free_conns(ListNode *list) {
        ListNode *n, *tmp;
        list_foreach_safe (n, tmp, list)
                conn_free(list_entry(n, Conn, node));
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Everything still open is dropped without further log entries: the loop is over. */
        m->control = control_free(m->control);
        core_run_deferred(&m->core);
        for (size_t i = 0; i < m->core.n_servers; i++)
                free_conns(&m->core.servers[i]->conns);
        if (m->core.session_server)
                free_conns(&m->core.session_server->conns);
        free_conns(&m->core.closing);
        free_conns(&m->core.lingering);
        for (size_t i = 0; i < m->core.n_servers; i++)
                server_unref(m->core.servers[i]);
        server_unref(m->core.session_server);
        free(m->core.servers);
        conn_kernel_stop(&m->core);
        sd_event_source_disable_unref(m->epoll_source);
        sd_event_source_disable_unref(m->status_timer);
        manager_notify_close(m);
        core_done(&m->core);
        free(m);
        return NULL;
}
