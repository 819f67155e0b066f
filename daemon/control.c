/* SPDX-License-Identifier: MIT */
/* The control socket: JSON lines from tcpeductl, checked by peer credentials, dispatched by a
 * table. Every client has bounded input (one request line), bounded output (replies and monitor
 * events) and a bounded number of requests handled per wakeup, so none can stall the loop. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "control-internal.h"
#include "control-proto.h"
#include "macro.h"
#include "server-type.h"

int command_fail(CommandContext *ctx, ControlError code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->message, sizeof(ctx->message), fmt, ap);
        va_end(ap);
        ctx->code = code;
        return -1;
}

void client_free(ControlClient *cc) {
        Control *ctl = cc->control;
        if (cc->busy || ctl->event_depth > 0) {
                /* Its own command led here (an event overflowed its monitor output, say), or a
                 * walk over the clients is under way: it is freed when that is over. */
                cc->doomed = true;
                if (!cc->busy)
                        client_defer_free(cc);
                return;
        }
        if (cc->monitor)
                ctl->n_monitors--;
        ctl->n_control_clients--;
        list_remove(&cc->node);
        list_remove(&cc->gc.node);
        while (!list_empty(&cc->pending))
                pending_free(list_first(&cc->pending, Pending, node));
        if (cc->watching) {
                cc->watching->watcher = NULL;
                cc->watching = NULL;
                ctl->n_watchers--;
        }
        if (cc->n_ephemeral) {
                /* Its sessions end with it: closed as if by session-close. */
                ListNode *n, *tmp;
                list_foreach_safe (n, tmp, &ctl->core->session_server->conns) {
                        Conn *c = list_entry(n, Conn, node);
                        if (c->session && c->session->opener == cc) {
                                c->session->opener = NULL;
                                conn_close(c, "closed with its control client");
                        }
                }
                ListNode *lists[] = { &ctl->core->closing, &ctl->core->lingering, &ctl->core->dead };
                for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                        for (n = lists[i]->next; n != lists[i]; n = n->next) {
                                /* the dead list holds whatever waits to be freed: connections among them */
                                Conn *c = i < 2 ? list_entry(n, Conn, node) : conn_from_deferred(list_entry(n, Deferred, node));
                                if (c && c->session && c->session->opener == cc)
                                        c->session->opener = NULL;
                        }
        }
        sd_event_source_disable_unref(cc->io);
        sd_event_source_disable_unref(cc->idle_timer);
        safe_close(cc->fd);
        free(cc->in);
        byte_queue_done(&cc->out);
        free(cc);
}

void client_update_events(ControlClient *cc) {
        size_t pending = byte_queue_len(&cc->out);
        uint32_t ev = (pending ? EPOLLOUT : 0) | (!cc->close_after_flush && pending < CONTROL_OUTPUT_PAUSE ? EPOLLIN : 0);
        sd_event_source_set_io_events(cc->io, ev);
}

void client_drop(ControlClient *cc, const char *why) {
        Control *ctl = cc->control;
        ctl->control_dropped++;
        log_msg(ctl->core, LOG_WARNING, MID_LIMIT, "control client (uid %u, pid %d) disconnected: %s", (unsigned)cc->cred.uid,
                (int)cc->cred.pid, why);
        client_free(cc);
}

/* Queue a line for the client, writing at once what the socket takes. Returns -1 if the client was
 * dropped (output limit or a write error): the caller must not touch it any more. */
int client_write(ControlClient *cc, char *line) {
        if (cc->doomed) {
                free(line);
                return -1;
        }
        if (!line) {
                client_drop(cc, "out of memory");
                return -1;
        }
        size_t len = strlen(line), pending = byte_queue_len(&cc->out);
        const char *p = line;
        if (pending == 0) {
                ssize_t n = send(cc->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        free(line);
                        client_free(cc);
                        return -1;
                }
                if (n > 0 && (size_t)n == len) {
                        free(line);
                        return 0;
                }
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                }
        }
        int r = byte_queue_push(&cc->out, p, len, CONTROL_OUTPUT_MAX);
        free(line);
        if (r == -ENOBUFS) {
                client_drop(cc, cc->monitor ? "monitor does not read its events (output limit reached)"
                                            : "client does not read its replies (output limit reached)");
                return -1;
        }
        if (r < 0) {
                client_drop(cc, "out of memory");
                return -1;
        }
        client_update_events(cc);
        return 0;
}

/* A client dropped while a walk over the list or its own command was under way: freed at the
 * next safe point, like a connection. */
static void client_free_deferred(Deferred *d) {
        ControlClient *cc = container_of(d, ControlClient, gc);
        cc->busy = false;
        client_free(cc);
}

void client_defer_free(ControlClient *cc) {
        if (!list_linked(&cc->gc.node))
                core_defer_free(cc->control->core, &cc->gc);
}

static int on_client_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlClient *cc = userdata;
        (void)s;
        (void)usec;
        if (cc->monitor)
                return 0;
        if (cc->watching || cc->n_pending) {
                /* Waiting on a session is not idleness: look again later. */
                sd_event_source_set_time(cc->idle_timer, usec + CONTROL_IDLE_USEC);
                sd_event_source_set_enabled(cc->idle_timer, SD_EVENT_ONESHOT);
                return 0;
        }
        client_drop(cc, "idle for 300 s");
        return 0;
}

/* Write what waits; then feed a watcher what its session buffered. Returns -1 if cc is gone. */
static int client_on_writable(ControlClient *cc) {
        Control *ctl = cc->control;
        while (!byte_queue_empty(&cc->out)) {
                ssize_t n = send(cc->fd, byte_queue_peek(&cc->out), byte_queue_len(&cc->out), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        client_free(cc);
                        return -1;
                }
                byte_queue_consume(&cc->out, (size_t)n);
        }
        if (byte_queue_empty(&cc->out) && cc->close_after_flush) {
                client_free(cc);
                return -1;
        }
        byte_queue_trim(&cc->out);
        client_update_events(cc);
        if (cc->watching && byte_queue_len(&cc->watching->rx) > 0 && byte_queue_len(&cc->out) < CONTROL_OUTPUT_PAUSE) {
                ctl->event_depth++;
                session_watch_pump(ctl, cc->watching);
                ctl->event_depth--;
                if (cc->doomed) {
                        client_defer_free(cc);
                        return -1;
                }
        }
        return 0;
}

/* Handle the complete lines read so far; an over-long one is answered once and skipped. */
static void client_handle_input(ControlClient *cc) {
        size_t start = 0;
        for (;;) {
                char *nl = memchr(cc->in + start, '\n', cc->in_len - start);
                if (!nl)
                        break;
                size_t len = (size_t)(nl - (cc->in + start));
                if (cc->discarding)
                        cc->discarding = false; /* the end of an over-long line: drop it */
                else if (client_handle_line(cc, cc->in + start, len) < 0)
                        return;
                start += len + 1;
        }
        memmove(cc->in, cc->in + start, cc->in_len - start);
        cc->in_len -= start;
        if (cc->in_len > CONTROL_LINE_MAX) {
                cc->in_len = 0;
                if (!cc->discarding) {
                        cc->discarding = true;
                        char msg[96];
                        snprintf(msg, sizeof(msg), "request line longer than %d bytes", CONTROL_LINE_MAX);
                        (void)client_write(cc, control_reply_error(-1, CONTROL_ERROR_BAD_REQUEST, msg, NULL));
                }
        }
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ControlClient *cc = userdata;
        Control *ctl = cc->control;
        (void)s;

        if ((revents & EPOLLOUT) && client_on_writable(cc) < 0)
                return 0;
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) || cc->close_after_flush)
                return 0;

        sd_event_source_set_time(cc->idle_timer, core_now(ctl->core, CLOCK_MONOTONIC) + CONTROL_IDLE_USEC);
        ssize_t n = recv(fd, cc->in + cc->in_len, CONTROL_LINE_MAX + 1 - cc->in_len, MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                client_free(cc);
                return 0;
        }
        if (n == 0) {
                /* The client is done sending: deliver what it is still owed, then close. */
                if (byte_queue_empty(&cc->out))
                        client_free(cc);
                else {
                        cc->close_after_flush = true;
                        client_update_events(cc);
                }
                return 0;
        }
        if (n < 0)
                return 0;
        cc->in_len += (size_t)n;
        /* One recv() of at most 64 KiB per wakeup bounds the requests handled before others get a turn. */
        client_handle_input(cc);
        return 0;
}

static bool peer_is_admin(Control *ctl, int fd, const struct ucred *cred) {
        if (cred->uid == 0 || cred->uid == geteuid())
                return true;
        /* admin_group was resolved when the config was applied: no NSS lookup in the loop. */
        if (!ctl->admin_gid_valid)
                return false;
        if (cred->gid == ctl->admin_gid)
                return true;
        socklen_t len = 64 * sizeof(gid_t);
        _cleanup_(freep) gid_t *groups = malloc(len);
        if (!groups)
                return false;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                if (errno != ERANGE)
                        return false;
                free(groups);
                groups = malloc(len); /* the kernel said how much it needs */
                if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        return false;
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == ctl->admin_gid)
                        return true;
        return false;
}

/* Out of fds with clients waiting: the listening socket stays readable, and returning would call
 * us again at once (a busy loop) while the client waits for a greeting that never comes. The spare
 * fd lets one client in to be told, and is taken again; without it, accepting pauses for 100 ms.
 * Logged at most once a second, with a count. Returns true if a client was told. */
static bool control_out_of_fds(Control *ctl, int fd) {
        int err = errno;
        bool told = false;
        if (ctl->core->spare_fd >= 0) {
                ctl->core->spare_fd = safe_close(ctl->core->spare_fd);
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd >= 0) {
                        char *line = control_reply_error(-1, CONTROL_ERROR_LIMIT, "the daemon is out of file descriptors", NULL);
                        if (line)
                                (void)send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
                        free(line);
                        safe_close(cfd);
                        ctl->control_dropped++;
                        ctl->control_fd_refused++;
                        told = true;
                }
                ctl->core->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        uint64_t now = core_now(ctl->core, CLOCK_MONOTONIC);
        if (now >= ctl->control_fd_logged_usec + USEC_PER_SEC) {
                log_msg(ctl->core, LOG_WARNING, MID_LIMIT,
                        "control socket: cannot accept: %s (%" PRIu64 " control clients refused since the last report)", strerror(err),
                        ctl->control_fd_refused - ctl->control_fd_refused_logged);
                ctl->control_fd_logged_usec = now;
                ctl->control_fd_refused_logged = ctl->control_fd_refused;
        }
        if (!told)
                accept_pause(ctl->core);
        return told;
}

static int on_control_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Control *ctl = userdata;
        (void)s;
        (void)revents;

        for (int i = 0; i < 16; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if ((errno == EMFILE || errno == ENFILE) && control_out_of_fds(ctl, fd))
                                continue;
                        return 0;
                }
                if (ctl->n_control_clients >= CONTROL_CLIENTS_MAX) {
                        char *line = control_reply_error(-1, CONTROL_ERROR_LIMIT, "too many control clients", NULL);
                        if (line)
                                (void)send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
                        free(line);
                        safe_close(cfd);
                        ctl->control_dropped++;
                        continue;
                }
                ControlClient *cc = calloc(1, sizeof(ControlClient));
                if (cc)
                        cc->in = malloc(CONTROL_LINE_MAX + 1);
                if (!cc || !cc->in) {
                        if (cc)
                                free(cc);
                        safe_close(cfd);
                        continue;
                }
                cc->control = ctl;
                cc->fd = cfd;
                list_init(&cc->pending);
                list_init(&cc->gc.node);
                cc->gc.free = client_free_deferred;
                socklen_t len = sizeof(cc->cred);
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cc->cred, &len) < 0)
                        cc->cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
                cc->admin = peer_is_admin(ctl, cfd, &cc->cred);
                list_append(&ctl->control_clients, &cc->node);
                ctl->n_control_clients++;
                if (sd_event_add_io(ctl->core->event, &cc->io, cfd, EPOLLIN, on_client_io, cc) < 0 ||
                    sd_event_add_time_relative(ctl->core->event, &cc->idle_timer, CLOCK_MONOTONIC, CONTROL_IDLE_USEC, USEC_PER_SEC,
                                               on_client_idle, cc) < 0) {
                        client_free(cc);
                        continue;
                }
                (void)client_write(cc, control_greeting_line(TCPEDU_VERSION));
        }
        return 0;
}

/* Counters and durations go out as numbers, everything else as strings. */
static struct json_object *field_value(const char *v) {
        size_t n = strlen(v);
        if (n == 0 || n > 18 || strspn(v, "0123456789") != n || (v[0] == '0' && n > 1))
                return json_object_new_string(v);
        return json_object_new_int64(strtoll(v, NULL, 10));
}

/* Monitors get every event as JSON: the journal entry's fields, TCPEDU_ prefix dropped, lowercased. */
static void control_broadcast(void *userdata, const LogEntry *e) {
        Control *ctl = userdata;
        const char *server = NULL, *conn_id = NULL, *event = NULL;
        const char *p = e->buf;
        struct json_object *ev = json_object_new_object();

        json_object_object_add(ev, "time_usec", json_object_new_int64((int64_t)core_now(ctl->core, CLOCK_REALTIME)));
        for (unsigned i = 0; i < e->n_fields; i++) {
                size_t l = strlen(p);
                const char *eq = strchr(p, '=');
                if (eq) {
                        char key[64];
                        const char *k = p;
                        size_t kl = (size_t)(eq - p);
                        if (kl > 7 && strncmp(k, "TCPEDU_", 7) == 0)
                                k += 7, kl -= 7;
                        if (kl < sizeof(key) && strncmp(p, "PRIORITY", 8) != 0 && strncmp(p, "SYSLOG_IDENTIFIER", 17) != 0) {
                                for (size_t j = 0; j < kl; j++)
                                        key[j] = (char)(k[j] >= 'A' && k[j] <= 'Z' ? k[j] + 32 : k[j]);
                                key[kl] = 0;
                                json_object_object_add(ev, key, field_value(eq + 1));
                                if (strcmp(key, "server") == 0)
                                        server = eq + 1;
                                else if (strcmp(key, "conn_id") == 0)
                                        conn_id = eq + 1;
                                else if (strcmp(key, "event") == 0)
                                        event = eq + 1;
                        }
                }
                p += l + 1;
        }
        ListNode *n, *tmp;
        ctl->event_depth++;
        list_foreach_safe (n, tmp, &ctl->control_clients) {
                ControlClient *cc = list_entry(n, ControlClient, node);
                /* A watcher gets its session's transitions; its other events are made for it. */
                bool watched = cc->watching && cc->watching->conn && conn_id && strcmp(conn_id, cc->watching->conn->id) == 0 && event &&
                               strcmp(event, "transition") == 0;
                if (cc->doomed ||
                    (!watched && (!cc->monitor || (cc->monitor_server[0] && (!server || strcmp(server, cc->monitor_server) != 0)))))
                        continue;
                (void)client_write(cc, control_event_line(json_object_get(ev)));
        }
        ctl->event_depth--;
        json_object_put(ev);
}

/* Returns 1 if it created the directory the socket goes in, 0 if that existed. */
static int mkdir_parents(const char *path) {
        char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
        int created = 0;
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                created = mkdir(buf, 0755) == 0;
                if (!created && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        return created;
}

int control_open(Control *ctl, const char *configured) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        /* Socket activation: a stream socket named "control" from tcpedud.socket. */
        r = passed_fds_take_control(&ctl->core->passed);
        ctl->control_fd = r >= 0 ? r : -1;
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT) {
                /* Under systemd with RuntimeDirectory= (tcpedud.service) and not as root: there,
                 * mode 0660, so that only the daemon's group can connect, as through tcpedud.socket. */
                const char *rtdir = getenv("RUNTIME_DIRECTORY");
                bool in_rtdir = (!configured || !configured[0]) && geteuid() != 0 && rtdir && rtdir[0] == '/';
                if (in_rtdir) {
                        size_t n = strcspn(rtdir, ":"); /* several directories are separated by ':' */
                        r = snprintf(ctl->control_path, sizeof(ctl->control_path), "%.*s/control.sock", (int)n, rtdir);
                        r = r < (int)sizeof(ctl->control_path) ? 0 : -ENAMETOOLONG;
                } else
                        r = control_socket_path(configured, ctl->control_path, sizeof(ctl->control_path));
                if (r < 0) {
                        log_msg(ctl->core, LOG_WARNING, NULL, "no control socket: %s",
                                r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long for a Unix socket");
                        return 0;
                }
                if (strlen(ctl->control_path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                memcpy(sa.sun_path, ctl->control_path, strlen(ctl->control_path) + 1);
                ctl->control_dir_created = mkdir_parents(ctl->control_path) > 0;

                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                /* A socket file left behind by a daemon that died is replaced; a live one is not. */
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        safe_close(fd);
                        return -EADDRINUSE;
                }
                safe_close(fd);
                (void)unlink(ctl->control_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                /* Anyone who can reach the socket may read; SO_PEERCRED decides who may change things. */
                mode_t old = umask(in_rtdir ? 0117 : 0111);
                r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
                umask(old);
                if (r < 0 || listen(fd, 64) < 0) {
                        r = negative_errno();
                        safe_close(fd);
                        return r;
                }
                ctl->control_fd = fd;
                ctl->control_unlink = true;
        }
        r = sd_event_add_io(ctl->core->event, &ctl->control_source, ctl->control_fd, EPOLLIN, on_control_accept, ctl);
        if (r >= 0)
                r = core_add_accept_source(ctl->core, ctl->control_source);
        if (r < 0)
                return r;
        return 0;
}

static void control_close(Control *ctl) {
        while (!list_empty(&ctl->control_clients)) {
                ControlClient *cc = list_first(&ctl->control_clients, ControlClient, node);
                cc->busy = false;
                cc->doomed = false;
                client_free(cc);
        }
        for (size_t i = 0; i < ELEMENTSOF(ctl->core->accept_sources); i++)
                if (ctl->core->accept_sources[i] == ctl->control_source)
                        ctl->core->accept_sources[i] = NULL;
        ctl->control_source = sd_event_source_disable_unref(ctl->control_source);
        if (ctl->control_unlink) {
                ctl->control_fd = safe_close(ctl->control_fd);
                (void)unlink(ctl->control_path);
        } else if (ctl->control_fd >= 0) {
                passed_fds_release(&ctl->core->passed, ctl->control_fd); /* systemd's: closed with the others */
                ctl->control_fd = -1;
        }
}

static bool control_wants_events(void *userdata) {
        Control *ctl = userdata;
        return ctl->n_monitors > 0 || ctl->n_watchers > 0;
}

int control_new(Core *core, const ControlOps *ops, Control **ret) {
        Control *ctl = calloc(1, sizeof(Control));
        if (!ctl)
                return -ENOMEM;
        ctl->core = core;
        ctl->ops = *ops;
        ctl->control_fd = -1;
        ctl->list_diag_budget = UINT_MAX;
        list_init(&ctl->control_clients);
        int r = core_add_sink(core, &(EventSink){ .deliver = control_broadcast, .wants = control_wants_events, .userdata = ctl });
        if (r < 0) {
                free(ctl);
                return r;
        }
        core->session_event = control_session_event;
        core->session_event_userdata = ctl;
        *ret = ctl;
        return 0;
}

Control *control_free(Control *ctl) {
        if (!ctl)
                return NULL;
        control_close(ctl);
        core_remove_sink(ctl->core, ctl);
        if (ctl->core->session_event_userdata == ctl) {
                ctl->core->session_event = NULL;
                ctl->core->session_event_userdata = NULL;
        }
        free(ctl);
        return NULL;
}

const char *control_path(const Control *ctl) {
        return ctl->control_path;
}

const char *control_created_path(const Control *ctl) {
        return ctl->control_unlink && ctl->control_path[0] ? ctl->control_path : NULL;
}

bool control_created_dir(const Control *ctl) {
        return ctl->control_dir_created;
}

void control_set_admin_group(Control *ctl, const char *group) {
        ctl->admin_gid_valid = false;
        if (!group[0])
                return;
        struct group *g = getgrnam(group);
        if (g) {
                ctl->admin_gid = g->gr_gid;
                ctl->admin_gid_valid = true;
        } else
                log_msg(ctl->core, LOG_WARNING, NULL, "admin_group '%s' does not exist: only root and uid %u may change things", group,
                        (unsigned)geteuid());
}
