/* SPDX-License-Identifier: MIT */
/* The service manager's view of the daemon: READY=, RELOADING=, STOPPING= and a STATUS= line kept
 * current, sent without ever blocking the loop. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "manager.h"
#include "server.h"

/* ---- sd_notify without blocking ----
 * sd_notify() sends on a blocking socket, which waits while the receiver (systemd, or whatever is
 * behind NOTIFY_SOCKET) is not reading: the event loop would stop with it. Notifications go out on
 * a non-blocking socket, connected once at start (so that it still works after the daemon gave up
 * root), in order; what the receiver has no room for waits in a short queue and is sent when the
 * socket is writable again. A STATUS= line replaces a STATUS= line still waiting. */

void manager_notify_open(Manager *m) {
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
        else if (sd_event_add_io(m->core.event, &m->notify_source, m->notify_fd, EPOLLOUT, on_notify_writable, m) < 0)
                m->notify_source = NULL;
}

/* At exit: what still waits gets a last, bounded chance. */
void manager_notify_close(Manager *m) {
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

        for (size_t i = 0; i < m->core.n_servers; i++)
                running += m->core.servers[i]->running;
        journal_stats(m->core.journal, &js);
        snprintf(status, sizeof(status),
                 "%u of %zu servers running, %u connections; %" PRIu64 " transitions, %" PRIu64 " log entries dropped", running,
                 m->core.n_servers, m->core.n_conns, m->core.transitions, js.dropped_full + js.dropped_failed);
        if (strcmp(status, m->last_status) == 0)
                return;
        snprintf(m->last_status, sizeof(m->last_status), "%s", status);
        manager_notify(m, "STATUS=%s", status);
}
