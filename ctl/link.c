/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ctl-util.h"
#include "link.h"
#include "macro.h"

#define READ_CHUNK (64u << 10) /* bytes per recv() */

static const LinkHooks default_hooks = {
        .permission_exit = EXIT_PERMISSION,
};

#define SYSTEM_SOCKET "/run/tcpedud/control.sock"

void link_say(const Link *l, const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (l->hooks && l->hooks->say)
                l->hooks->say(msg);
        else
                fprintf(stderr, "tcpeductl: %s\n", msg);
}

void link_close(Link *l) {
        safe_close(l->fd);
        byte_queue_done(&l->in);
        byte_queue_done(&l->out);
        *l = LINK_NULL;
}

int link_flush(Link *l) {
        while (!byte_queue_empty(&l->out)) {
                ssize_t n = send(l->fd, byte_queue_peek(&l->out), byte_queue_len(&l->out), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return negative_errno();
                }
                byte_queue_consume(&l->out, (size_t)n);
        }
        byte_queue_trim(&l->out);
        return 0;
}

int link_fill(Link *l) {
        size_t room = LINK_IN_MAX - byte_queue_len(&l->in);
        if (room == 0)
                return -EMSGSIZE;
        int r = 0;
        uint8_t *p = byte_queue_reserve(&l->in, MIN(room, (size_t)READ_CHUNK), LINK_IN_MAX, &r);
        if (!p)
                return r;
        ssize_t n = recv(l->fd, p, MIN(room, (size_t)READ_CHUNK), MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        byte_queue_commit(&l->in, (size_t)n);
        return 1;
}

bool link_next_line(Link *l, const char **ret, size_t *ret_len) {
        const char *start = (const char *)byte_queue_peek(&l->in);
        const char *nl = start ? memchr(start, '\n', byte_queue_len(&l->in)) : NULL;
        if (!nl)
                return false;
        *ret = start;
        *ret_len = (size_t)(nl - start);
        /* The bytes stay where they are until the next push into the queue. */
        byte_queue_consume(&l->in, *ret_len + 1);
        return true;
}

int link_read_line(Link *l, int timeout_ms, const char **ret, size_t *ret_len) {
        while (!link_next_line(l, ret, ret_len)) {
                struct pollfd p = { .fd = l->fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                if (r < 0)
                        return negative_errno();
                if (r == 0)
                        return -ETIMEDOUT;
                r = link_fill(l);
                if (r < 0)
                        return r;
        }
        return 0;
}

int64_t link_request(Link *l, const char *command, struct json_object *args, size_t max_line) {
        struct json_object *req = json_object_new_object();
        if (!req) {
                json_object_put(args);
                return -ENOMEM;
        }
        int64_t id = l->next_id++;
        json_object_object_add(req, "id", json_object_new_int64(id));
        json_object_object_add(req, "command", json_object_new_string(command));
        json_object_object_add(req, "args", args ? args : json_object_new_object());
        size_t len = 0;
        const char *s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        int64_t r = id;
        if (!s)
                r = -ENOMEM;
        else if (len > max_line)
                r = -EMSGSIZE;
        else if (byte_queue_len(&l->out) + len + 1 > LINK_OUT_MAX)
                r = -ENOBUFS;
        else if ((r = byte_queue_push(&l->out, s, len, LINK_OUT_MAX - 1)) >= 0)
                r = byte_queue_push(&l->out, "\n", 1, LINK_OUT_MAX);
        json_object_put(req);
        if (r < 0)
                return r;
        (void)link_flush(l); /* an error shows at the next poll */
        return id;
}

/* ---- connecting ---- */

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* connect(), waiting for a busy listener to take us. 0 or -errno. */
static int link_connect(Link *l) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memcpy(sa.sun_path, l->path, strlen(l->path) + 1);
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->fd < 0)
                return negative_errno();
        if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return 0;
        if (errno != EINPROGRESS && errno != EAGAIN)
                return negative_errno();
        struct pollfd pf = { .fd = l->fd, .events = POLLOUT };
        int err = 0;
        if (poll(&pf, 1, LINK_GREETING_TIMEOUT_MS) <= 0)
                err = ETIMEDOUT;
        else if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){ sizeof(err) }) < 0)
                err = errno;
        return -err;
}

/* Wait for the greeting line. Returns an exit code. */
static int link_wait_greeting(Link *l, const char **ret, size_t *ret_len) {
        uint64_t deadline = now_ms() + LINK_GREETING_TIMEOUT_MS;
        for (;;) {
                int code = l->hooks->interrupted ? l->hooks->interrupted() : 0;
                if (code)
                        return code;
                uint64_t now = now_ms();
                int r = deadline <= now ? -ETIMEDOUT : link_read_line(l, (int)(deadline - now), ret, ret_len);
                if (r == 0)
                        return EXIT_OK;
                if (r == -EINTR && l->hooks->interrupted)
                        continue;
                link_say(l, "no greeting from tcpedud at %s: %s", l->path,
                         r == -ECONNRESET && l->hooks->closed_text ? l->hooks->closed_text : strerror(-r));
                return EXIT_UNAVAILABLE;
        }
}

static int link_check_greeting(Link *l, const char *line, size_t len) {
        ControlReply g;
        struct json_object *v;
        if (control_reply_parse(line, len, &g) < 0 || !json_object_object_get_ex(g.root, "protocol", &v)) {
                int code = EXIT_UNAVAILABLE;
                if (g.root && !g.ok && g.code == CONTROL_ERROR_LIMIT) {
                        link_say(l, "tcpedud at %s refused the connection: %s", l->path, g.message);
                        code = EXIT_FAILED;
                } else
                        link_say(l, "%s does not speak the tcpedu control protocol", l->path);
                control_reply_done(&g);
                return code;
        }
        int proto = json_object_get_int(v);
        control_reply_done(&g);
        if (proto != CONTROL_PROTOCOL_VERSION) {
                link_say(l, "tcpedud at %s speaks control protocol %d, this tcpeductl speaks %d", l->path, proto, CONTROL_PROTOCOL_VERSION);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int link_open(Link *l, const char *path, const LinkHooks *hooks) {
        const char *line;
        size_t len;

        *l = (Link){ .fd = -1, .next_id = 1, .hooks = hooks ? hooks : &default_hooks };
        if (!path || strlen(path) >= sizeof(l->path)) {
                link_say(l, "control socket path too long: %s", path ? path : "(none)");
                return EXIT_UNAVAILABLE;
        }
        memcpy(l->path, path, strlen(path) + 1);
        int r = link_connect(l);
        if (r < 0) {
                link_say(l, "cannot reach tcpedud at %s: %s", path, strerror(-r));
                if (r != -EACCES)
                        return EXIT_UNAVAILABLE;
                if (l->hooks->permission_exit == EXIT_PERMISSION && strcmp(path, SYSTEM_SOCKET) == 0)
                        link_say(l, "the system's tcpedud is open to root and the members of group tcpedu");
                return l->hooks->permission_exit;
        }
        r = link_wait_greeting(l, &line, &len);
        return r != EXIT_OK ? r : link_check_greeting(l, line, len);
}

/* ---- one request, waited for ---- */

/* Send all that is queued, waiting while the socket is full. Returns an exit code. */
static int link_send_all(Link *l) {
        for (;;) {
                int r = link_flush(l);
                if (r < 0) {
                        link_say(l, "lost tcpedud at %s: %s", l->path, strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
                if (byte_queue_empty(&l->out))
                        return EXIT_OK;
                struct pollfd p = { .fd = l->fd, .events = POLLOUT };
                (void)poll(&p, 1, -1);
        }
}

int link_call(Link *l, const char *command, struct json_object *args, int timeout_ms, ControlReply *ret) {
        /* No limit on the line but the queue's: the daemon answers one too long itself. */
        int64_t id = link_request(l, command, args, LINK_OUT_MAX - 1);
        if (id < 0)
                return EXIT_FAILED;
        int r = link_send_all(l);
        if (r != EXIT_OK)
                return r;
        for (;;) {
                const char *line;
                size_t len;
                r = link_read_line(l, timeout_ms, &line, &len);
                if (r == -EINTR)
                        continue;
                if (r < 0) {
                        link_say(l, "no reply from tcpedud at %s: %s", l->path,
                                 r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
                ControlReply rep;
                if (control_reply_parse(line, len, &rep) < 0) {
                        link_say(l, "malformed reply from tcpedud");
                        return EXIT_FAILED;
                }
                if (rep.id == id) {
                        *ret = rep;
                        return EXIT_OK;
                }
                control_reply_done(&rep);
        }
}
