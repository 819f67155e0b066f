/* SPDX-License-Identifier: MIT */
/* tcpeductl connect and chat: interactive clients that reach a TCP peer through a session of
 * tcpedud, so that the daemon tracks and logs the client side of the connection.
 *
 * Each opens one session (ephemeral, watched) over a control connection of its own and runs a small
 * poll() loop over stdin, the control socket and a self-pipe for signals. What the daemon sends is
 * split into lines: {"event":{...}} lines carry the session's transitions and data, the others are
 * replies, matched by "id". At most one session-send is outstanding: stdin is not read while one
 * waits (the daemon defers the reply while the peer does not keep up, and so slows us down). Data
 * is written to stdout with blocking writes: while stdout does not take it, the control socket is
 * not read and the daemon, then the peer, wait.
 *
 * Signals. SIGPIPE is ignored. connect: SIGINT, SIGTERM and SIGHUP close the session (FIN, as
 * session-close how=close), wait up to 1 s for the daemon's answer and exit with 128 + the signal's
 * number (130 for ^C), as a shell reports a program a signal ended: the transfer did not finish.
 * chat: a first SIGINT leaves the room as /quit does (exit 0 after the goodbye); a second SIGINT,
 * SIGTERM or SIGHUP exits at once with 128 + the signal's number. Ephemeral sessions also end when
 * the control connection closes, so the daemon never keeps a session we gave up on. The terminal,
 * put in raw mode by chat's line editor, is restored on every way out. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "interactive.h"

#include "base64.h"
#include "chat-proto.h"
#include "control-proto.h"
#include "ctl-util.h"
#include "macro.h"
#include "utf8.h"

#define STDIN_CHUNK (32u << 10) /* bytes of stdin per session-send: 44 KiB in base64, within a 64 KiB request */
#define LINK_IN_MAX CONTROL_REPLY_MAX /* the longest line taken from the daemon */
#define LINK_OUT_MAX (256u << 10) /* requests not yet taken by the daemon */
#define GREETING_TIMEOUT_MS 10000
#define OPEN_SLACK_MS 10000 /* beyond the connect timeout, before we stop waiting for session-open's reply */
#define CLOSE_WAIT_MS 1000 /* on a signal: how long to wait for session-close's reply */
#define GOODBYE_WAIT_MS 3000 /* chat: how long to wait for the goodbye after the leave */
#define MAX_TARGETS 16 /* addresses of HOST tried */
#define CHAT_LINE_MAX (64u << 10) /* one line from the chat server, or from stdin */
#define CHAT_INPUT_MAX 4096 /* bytes in the line editor */
#define CHAT_QUEUE_MAX (256u << 10) /* chat requests not yet sent */
#define CHAT_USERS_MAX 8192
#define CHAT_OUT_MAX (CHAT_LINE_MAX + 1024)

/* ---- signals ---- */

static int signal_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_int; /* SIGINTs received */
static volatile sig_atomic_t sig_term; /* SIGTERM or SIGHUP: its number */
static volatile sig_atomic_t sig_winch;

static const int handled_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE };
static struct sigaction saved_actions[ELEMENTSOF(handled_signals)];

static void on_signal(int sig) {
        int saved = errno;
        if (sig == SIGINT)
                sig_int = sig_int + 1;
        else if (sig == SIGWINCH)
                sig_winch = 1;
        else
                sig_term = sig;
        if (signal_pipe[1] >= 0 && write(signal_pipe[1], "x", 1) < 0) {
                /* full: a wake-up is pending anyway */
        }
        errno = saved;
}

static int signals_setup(void) {
        if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        sig_int = sig_term = sig_winch = 0;
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++) {
                /* No SA_RESTART: a blocking write to stdout returns when a signal asks us to stop. */
                struct sigaction sa = { .sa_handler = handled_signals[i] == SIGPIPE ? SIG_IGN : on_signal };
                sigemptyset(&sa.sa_mask);
                sigaction(handled_signals[i], &sa, &saved_actions[i]);
        }
        return 0;
}

static void signals_restore(void) {
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaction(handled_signals[i], &saved_actions[i], NULL);
        signal_pipe[0] = safe_close(signal_pipe[0]);
        signal_pipe[1] = safe_close(signal_pipe[1]);
}

static void signals_drain(void) {
        char b[64];
        while (signal_pipe[0] >= 0 && read(signal_pipe[0], b, sizeof(b)) > 0)
                ;
}

static int exit_for_signal(void) {
        return 128 + (sig_term ? (int)sig_term : SIGINT);
}

/* ---- small helpers ---- */

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A poll() timeout for a deadline (0: none). */
static int timeout_until(uint64_t deadline) {
        if (!deadline)
                return -1;
        uint64_t now = now_ms();
        return deadline <= now ? 0 : (int)MIN(deadline - now, (uint64_t)INT32_MAX);
}

/* Write all of p to fd, waiting while it is full. -EINTR when a signal asks us to stop. */
static int write_all(int fd, const void *p, size_t n) {
        const char *q = p;
        while (n > 0) {
                ssize_t w = write(fd, q, n);
                if (w < 0) {
                        if (errno == EINTR) {
                                if (sig_int || sig_term)
                                        return -EINTR;
                                continue;
                        }
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                                if (poll(&pf, 1, -1) < 0 && errno == EINTR && (sig_int || sig_term))
                                        return -EINTR;
                                continue;
                        }
                        return negative_errno();
                }
                q += w;
                n -= (size_t)w;
        }
        return 0;
}

/* A bounded text buffer: what does not fit is cut. */
typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
        n = MIN(n, b->cap - b->len);
        memcpy(b->p + b->len, s, n);
        b->len += n;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

/* Text from the network, made safe for a terminal: valid UTF-8 without control characters passes,
 * a tab becomes a blank, anything else a '?'. */
static void buf_put_safe(Buf *b, const char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
                if (n == 0) {
                        buf_put(b, "?", 1);
                        i++;
                        continue;
                }
                if (cp == '\t')
                        buf_put(b, " ", 1);
                else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                        buf_put(b, "?", 1);
                else
                        buf_put(b, s + i, n);
                i += n;
        }
}

static const char *jstr(struct json_object *o, const char *key, const char *def) {
        struct json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return def;
        return json_object_get_string(v);
}

/* One JSON object from a line of the chat server. */
static struct json_object *parse_object_line(const char *line, size_t len) {
        if (len > INT32_MAX)
                return NULL;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        struct json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        size_t end = o && json_tokener_get_error(tok) == json_tokener_success ? json_tokener_get_parse_end(tok) : 0;
        json_tokener_free(tok);
        if (!o)
                return NULL;
        while (end < len && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r'))
                end++;
        if (end < len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* ---- messages on stderr ---- */

/* chat's line editor hides its line around other output and draws it again after. */
static void (*output_begin)(void *userdata);
static void (*output_end)(void *userdata);
static void *output_userdata;

static void say(const char *fmt, ...) _printf_(1, 2);
static void say(const char *fmt, ...) {
        char msg[2048], out[2200];
        Buf b = { .p = out, .cap = sizeof(out) - 1 };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        buf_puts(&b, "tcpeductl: ");
        buf_put_safe(&b, msg, strlen(msg));
        out[b.len++] = '\n';
        fflush(stdout);
        if (output_begin)
                output_begin(output_userdata);
        (void)write_all(STDERR_FILENO, out, b.len);
        if (output_end)
                output_end(output_userdata);
}

/* ---- the control connection ---- */

typedef struct Link {
        int fd;
        const char *path;
        char *in; /* what the daemon sent and we did not handle: in[in_start, in_start + in_len) */
        size_t in_start, in_len;
        char *out; /* requests not yet sent */
        size_t out_len;
        int64_t next_id;
} Link;

static void link_close(Link *l) {
        safe_close(l->fd);
        free(l->in);
        free(l->out);
        *l = (Link){ .fd = -1, .path = l->path };
}

static int link_flush(Link *l) {
        while (l->out_len > 0) {
                ssize_t n = send(l->fd, l->out, l->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return negative_errno();
                }
                memmove(l->out, l->out + n, l->out_len - (size_t)n);
                l->out_len -= (size_t)n;
        }
        return 0;
}

/* Read what the daemon sent: 1 if something came, 0 if nothing now, -ECONNRESET at its end,
 * -EMSGSIZE if a line does not fit, or another error. */
static int link_fill(Link *l) {
        if (l->in_start > 0) {
                memmove(l->in, l->in + l->in_start, l->in_len);
                l->in_start = 0;
        }
        if (l->in_len >= LINK_IN_MAX)
                return -EMSGSIZE;
        ssize_t n = recv(l->fd, l->in + l->in_len, LINK_IN_MAX - l->in_len, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        l->in_len += (size_t)n;
        return 1;
}

/* The next complete line, NUL-terminated in place; valid until the next link_fill(). */
static bool link_next_line(Link *l, char **ret, size_t *ret_len) {
        char *start = l->in + l->in_start;
        char *nl = l->in_len ? memchr(start, '\n', l->in_len) : NULL;
        if (!nl)
                return false;
        size_t len = (size_t)(nl - start);
        *nl = 0;
        *ret = start;
        *ret_len = len;
        l->in_start += len + 1;
        l->in_len -= len + 1;
        return true;
}

/* Queue a request (args is taken); returns its id, or -ENOMEM, -EMSGSIZE (over the daemon's line
 * limit), -ENOBUFS (too much unsent). */
static int64_t link_request(Link *l, const char *command, struct json_object *args) {
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
        else if (len > CONTROL_LINE_MAX)
                r = -EMSGSIZE;
        else if (l->out_len + len + 1 > LINK_OUT_MAX)
                r = -ENOBUFS;
        else {
                memcpy(l->out + l->out_len, s, len);
                l->out[l->out_len + len] = '\n';
                l->out_len += len + 1;
        }
        json_object_put(req);
        if (r > 0)
                (void)link_flush(l); /* an error shows at the next poll */
        return r;
}

/* Connect and check the greeting, as tcpeductl's other verbs do. Returns an exit code. */
static int link_open(Link *l, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *line;
        size_t len;

        *l = (Link){ .fd = -1, .path = path, .next_id = 1 };
        if (!path || strlen(path) >= sizeof(sa.sun_path)) {
                say("control socket path too long: %s", path ? path : "(none)");
                return EXIT_UNAVAILABLE;
        }
        l->in = malloc(LINK_IN_MAX + 1);
        l->out = malloc(LINK_OUT_MAX);
        if (!l->in || !l->out) {
                say("out of memory");
                return EXIT_FAILED;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->fd < 0) {
                say("cannot reach tcpedud at %s: %s", path, strerror(errno));
                return EXIT_UNAVAILABLE;
        }
        if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (errno != EINPROGRESS && errno != EAGAIN) {
                        say("cannot reach tcpedud at %s: %s", path, strerror(errno));
                        return EXIT_UNAVAILABLE;
                }
                /* a busy listener: wait for the connection to complete */
                struct pollfd pf = { .fd = l->fd, .events = POLLOUT };
                int err = 0;
                if (poll(&pf, 1, GREETING_TIMEOUT_MS) <= 0)
                        err = ETIMEDOUT;
                else if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){ sizeof(err) }) < 0)
                        err = errno;
                if (err) {
                        say("cannot reach tcpedud at %s: %s", path, strerror(err));
                        return EXIT_UNAVAILABLE;
                }
        }
        uint64_t deadline = now_ms() + GREETING_TIMEOUT_MS;
        while (!link_next_line(l, &line, &len)) {
                if (sig_int || sig_term)
                        return exit_for_signal();
                int t = timeout_until(deadline);
                if (t == 0) {
                        say("no greeting from tcpedud at %s: %s", path, strerror(ETIMEDOUT));
                        return EXIT_UNAVAILABLE;
                }
                struct pollfd pf = { .fd = l->fd, .events = POLLIN };
                if (poll(&pf, 1, t) < 0 && errno != EINTR) {
                        say("poll: %s", strerror(errno));
                        return EXIT_FAILED;
                }
                int r = link_fill(l);
                if (r < 0) {
                        say("no greeting from tcpedud at %s: %s", path, r == -ECONNRESET ? "connection closed" : strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
        }
        ControlReply g;
        struct json_object *v;
        if (control_reply_parse(line, len, &g) < 0 || !json_object_object_get_ex(g.root, "protocol", &v)) {
                if (g.root && !g.ok && g.code == CONTROL_ERROR_LIMIT) {
                        say("tcpedud at %s refused the connection: %s", path, g.message);
                        control_reply_done(&g);
                        return EXIT_FAILED;
                }
                say("%s does not speak the tcpedu control protocol", path);
                control_reply_done(&g);
                return EXIT_UNAVAILABLE;
        }
        int proto = json_object_get_int(v);
        control_reply_done(&g);
        if (proto != CONTROL_PROTOCOL_VERSION) {
                say("tcpedud at %s speaks control protocol %d, this tcpeductl speaks %d", path, proto, CONTROL_PROTOCOL_VERSION);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

/* ---- one session ---- */

typedef struct Client Client;
struct Client {
        Link link;
        bool verbose;
        char id[64]; /* the session's */
        bool established, open_failed, peer_closed, shut, close_sent, disconnected, reset;
        int64_t open_id, send_id, close_id; /* requests waiting for their reply; 0: none */
        char fail_msg[320]; /* session-open's connect-failed message */
        char reason[256]; /* of the disconnect */
        bool done;
        int code;
        void (*on_data)(Client *c, const uint8_t *p, size_t n);
        void (*on_disconnected)(Client *c);
};

static void finish(Client *c, int code) {
        if (!c->done) {
                c->done = true;
                c->code = code;
        }
}

static void lost(Client *c, int r) {
        if (!c->done)
                say("lost tcpedud at %s: %s", c->link.path, r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
        finish(c, EXIT_UNAVAILABLE);
}

/* Queue a session-send of p[0..n): as text when it is, else (or when escaping makes the request
 * too long) as base64. */
static int client_send(Client *c, const uint8_t *p, size_t n) {
        bool text = bytes_are_text(p, n);
        for (;;) {
                struct json_object *args = json_object_new_object();
                if (!args)
                        return -ENOMEM;
                json_object_object_add(args, "id", json_object_new_string(c->id));
                if (text)
                        json_object_object_add(args, "data", json_object_new_string_len((const char *)p, (int)n));
                else {
                        char *b = malloc(base64_encoded_size(n));
                        if (!b) {
                                json_object_put(args);
                                return -ENOMEM;
                        }
                        size_t bl = base64_encode(p, n, b);
                        json_object_object_add(args, "data_base64", json_object_new_string_len(b, (int)bl));
                        free(b);
                }
                int64_t id = link_request(&c->link, "session-send", args);
                if (id == -EMSGSIZE && text) {
                        text = false;
                        continue;
                }
                if (id < 0)
                        return (int)id;
                c->send_id = id;
                return 0;
        }
}

static void client_close(Client *c, const char *how) {
        struct json_object *args = json_object_new_object();
        if (!args) {
                finish(c, EXIT_FAILED);
                return;
        }
        json_object_object_add(args, "id", json_object_new_string(c->id));
        json_object_object_add(args, "how", json_object_new_string(how));
        int64_t id = link_request(&c->link, "session-close", args);
        if (id < 0) {
                say("session %s: cannot ask for session-close: %s", c->id, strerror((int)-id));
                finish(c, EXIT_FAILED);
                return;
        }
        c->close_id = id;
        if (strcmp(how, "shutdown") == 0)
                c->shut = true;
        else
                c->close_sent = true;
}

static void handle_reply(Client *c, ControlReply *r) {
        if (c->open_id > 0 && r->id == c->open_id) {
                c->open_id = 0;
                if (r->ok) {
                        struct json_object *s = NULL;
                        json_object_object_get_ex(r->data, "session", &s);
                        snprintf(c->id, sizeof(c->id), "%s", jstr(s, "id", ""));
                        if (!c->id[0]) {
                                say("malformed session-open reply from tcpedud: no session id");
                                finish(c, EXIT_FAILED);
                                return;
                        }
                        c->established = true;
                        if (c->verbose)
                                say("connected to %s from %s (session %s)", jstr(s, "peer", "?"), jstr(s, "local", "?"), c->id);
                        return;
                }
                if (r->code == CONTROL_ERROR_CONNECT_FAILED) {
                        c->open_failed = true;
                        snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", r->message);
                        return;
                }
                if (r->code == CONTROL_ERROR_UNKNOWN_COMMAND) {
                        /* not the user's mistake: a daemon older than this tcpeductl */
                        say("tcpedud at %s has no client sessions (too old?): %s", c->link.path, r->message);
                        finish(c, EXIT_FAILED);
                        return;
                }
                say("%s", r->message);
                finish(c, exit_code_for(r->code));
                return;
        }
        if (c->send_id > 0 && r->id == c->send_id) {
                c->send_id = 0;
                if (!r->ok && !c->disconnected) {
                        say("%s", r->message);
                        finish(c, exit_code_for(r->code));
                }
                return;
        }
        if (c->close_id > 0 && r->id == c->close_id) {
                c->close_id = 0;
                /* conflict: it is closing or closed already, which is what we wanted */
                if (!r->ok && r->code != CONTROL_ERROR_CONFLICT) {
                        say("%s", r->message);
                        finish(c, exit_code_for(r->code));
                }
        }
}

static void handle_data_event(Client *c, struct json_object *ev) {
        struct json_object *d;
        if (json_object_object_get_ex(ev, "data", &d) && json_object_is_type(d, json_type_string)) {
                if (c->on_data)
                        c->on_data(c, (const uint8_t *)json_object_get_string(d), (size_t)json_object_get_string_len(d));
                return;
        }
        if (!json_object_object_get_ex(ev, "data_base64", &d) || !json_object_is_type(d, json_type_string))
                return;
        size_t bl = (size_t)json_object_get_string_len(d);
        uint8_t *buf = malloc(bl / 4 * 3 + 3);
        if (!buf) {
                say("out of memory");
                finish(c, EXIT_FAILED);
                return;
        }
        ssize_t n = base64_decode(json_object_get_string(d), bl, buf);
        if (n < 0) {
                say("malformed data event from tcpedud: invalid base64");
                finish(c, EXIT_FAILED);
        } else if (c->on_data)
                c->on_data(c, buf, (size_t)n);
        free(buf);
}

static void handle_event(Client *c, struct json_object *ev) {
        const char *name = jstr(ev, "event", "");
        if (strcmp(name, "transition") == 0) {
                const char *from = jstr(ev, "old_state", "?"), *to = jstr(ev, "new_state", "?"), *reason = jstr(ev, "reason", NULL);
                /* Into CLOSED from a synchronized state but LAST_ACK and TIME_WAIT: a reset. */
                if (strcmp(to, "CLOSED") == 0 && strcmp(from, "LAST_ACK") != 0 && strcmp(from, "TIME_WAIT") != 0 &&
                    strcmp(from, "SYN_SENT") != 0 && strcmp(from, "CLOSED") != 0)
                        c->reset = true;
                if (c->verbose) {
                        if (reason && strcmp(to, "CLOSED") == 0)
                                say("%s -> %s: %s", from, to, reason);
                        else
                                say("%s -> %s", from, to);
                }
        } else if (strcmp(name, "data") == 0)
                handle_data_event(c, ev);
        else if (strcmp(name, "peer-closed") == 0) {
                c->peer_closed = true;
                if (c->verbose)
                        say("peer closed: %s", jstr(ev, "reason", "FIN received"));
        } else if (strcmp(name, "error") == 0) {
                if (c->verbose)
                        say("error: %s", jstr(ev, "reason", "?"));
        } else if (strcmp(name, "disconnected") == 0 || (strcmp(name, "end") == 0 && c->established)) {
                if (c->disconnected)
                        return;
                c->disconnected = true;
                snprintf(c->reason, sizeof(c->reason), "%s", jstr(ev, "reason", "closed"));
                /* the transitions tell a reset; the reason says so too, or names a failure */
                if (strstr(c->reason, "reset") || strstr(c->reason, "broken pipe") || strstr(c->reason, "timed out") ||
                    strstr(c->reason, "error"))
                        c->reset = true;
                if (c->verbose)
                        say("disconnected: %s", c->reason);
                if (c->on_disconnected)
                        c->on_disconnected(c);
        }
}

static void dispatch_line(Client *c, const char *line, size_t len) {
        ControlReply r;
        struct json_object *ev;
        if (control_reply_parse(line, len, &r) < 0) {
                say("malformed line from tcpedud at %s", c->link.path);
                finish(c, EXIT_FAILED);
                return;
        }
        if (json_object_object_get_ex(r.root, "event", &ev) && json_object_is_type(ev, json_type_object))
                handle_event(c, ev);
        else
                handle_reply(c, &r);
        control_reply_done(&r);
}

/* One round of a loop: wait (at most timeout_ms) for the control socket, the signal pipe and the
 * caller's fds, then send and handle what the daemon sent. Their revents tell the caller. */
static void client_poll(Client *c, struct pollfd *extra, size_t n_extra, int timeout_ms) {
        struct pollfd p[4] = {
                { .fd = signal_pipe[0], .events = POLLIN },
                { .fd = c->link.fd, .events = (short)(POLLIN | (c->link.out_len ? POLLOUT : 0)) },
        };
        n_extra = MIN(n_extra, ELEMENTSOF(p) - 2);
        for (size_t i = 0; i < n_extra; i++)
                p[2 + i] = extra[i];
        int r = poll(p, 2 + n_extra, timeout_ms);
        if (r < 0) {
                for (size_t i = 0; i < n_extra; i++)
                        extra[i].revents = 0;
                if (errno != EINTR) {
                        say("poll: %s", strerror(errno));
                        finish(c, EXIT_FAILED);
                }
                return;
        }
        for (size_t i = 0; i < n_extra; i++)
                extra[i].revents = p[2 + i].revents;
        if (p[0].revents)
                signals_drain();
        if (c->link.out_len && p[1].revents) {
                r = link_flush(&c->link);
                if (r < 0) {
                        lost(c, r);
                        return;
                }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                char *line;
                size_t len;
                r = link_fill(&c->link);
                if (r == -EMSGSIZE) {
                        say("a line from tcpedud at %s is longer than %u bytes", c->link.path, LINK_IN_MAX);
                        finish(c, EXIT_FAILED);
                        return;
                }
                if (r < 0) {
                        lost(c, r);
                        return;
                }
                while (!c->done && link_next_line(&c->link, &line, &len))
                        dispatch_line(c, line, len);
        }
}

/* ---- arguments and addresses ---- */

typedef struct Args {
        const char *verb;
        const char *target, *bind, *user;
        int64_t timeout_ms;
        bool verbose;
} Args;

static int parse_args(int argc, char **argv, bool chat, Args *a) {
        const char *verb = argc > 0 ? argv[0] : (chat ? "chat" : "connect");
        const char *synopsis = chat ? "HOST:PORT --user NAME [--bind ADDR[:PORT]] [--timeout S] [-v]"
                                    : "HOST:PORT [--bind ADDR[:PORT]] [--timeout S] [-v]";
        const char *timeout = NULL;
        bool options_end = false;

        *a = (Args){ .verb = verb, .timeout_ms = 10000 };
        for (int i = 1; i < argc; i++) {
                const char *s = argv[i];
                if (!options_end && s[0] == '-' && s[1]) {
                        int r;
                        if (strcmp(s, "--") == 0)
                                options_end = true;
                        else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0)
                                a->verbose = true;
                        else if ((r = option_value(verb, argc, argv, &i, "--bind", NULL, &a->bind)) != 0 ||
                                 (r = option_value(verb, argc, argv, &i, "--timeout", NULL, &timeout)) != 0 ||
                                 (chat && (r = option_value(verb, argc, argv, &i, "--user", "-u", &a->user)) != 0)) {
                                if (r < 0)
                                        return EXIT_USAGE;
                        } else
                                return usage_error(verb, "unknown option '%s' (expected %s)", s, synopsis);
                        continue;
                }
                if (a->target)
                        return usage_error(verb, "unexpected argument '%s' (expected %s)", s, synopsis);
                a->target = s;
        }
        if (!a->target)
                return usage_error(verb, "expected %s", synopsis);
        if (chat && !a->user)
                return usage_error(verb, "--user NAME is required (expected %s)", synopsis);
        if (chat) {
                const char *err = chat_name_check(a->user, strlen(a->user));
                if (!err && strlen(a->user) > CHAT_NAME_MAX * 4)
                        err = "Username too long";
                if (err)
                        return usage_error(verb, "--user '%s': %s", a->user, err);
        }
        /* as for session open */
        if (timeout)
                return timeout_option(verb, timeout, 1, 600000, &a->timeout_ms);
        return EXIT_OK;
}

/* Each address in turn until one connects, on a new control connection each (a failed session
 * keeps its watcher until the kernel forgets it). Returns an exit code. */
static int client_open_addresses(Client *c, const char *socket_path, const Args *a, const SessionAddresses *addrs) {
        size_t n = MIN(addrs->n_targets, (size_t)MAX_TARGETS);
        char failures[MAX_TARGETS][sizeof(c->fail_msg)];
        int r;

        for (size_t i = 0; i < n; i++) {
                r = link_open(&c->link, socket_path);
                if (r != EXIT_OK)
                        return r;
                struct json_object *args = json_object_new_object();
                if (!args)
                        return EXIT_FAILED;
                json_object_object_add(args, "target", json_object_new_string(addrs->targets[i]));
                if (addrs->bind[0])
                        json_object_object_add(args, "bind", json_object_new_string(addrs->bind));
                json_object_object_add(args, "timeout_ms", json_object_new_int64(a->timeout_ms));
                json_object_object_add(args, "ephemeral", json_object_new_boolean(1));
                json_object_object_add(args, "watch", json_object_new_boolean(1));
                c->open_id = link_request(&c->link, "session-open", args);
                if (c->open_id < 0) {
                        say("cannot ask tcpedud for a session: %s", strerror((int)-c->open_id));
                        return EXIT_FAILED;
                }
                c->open_failed = c->reset = false;
                c->fail_msg[0] = 0;
                uint64_t deadline = now_ms() + (uint64_t)a->timeout_ms + OPEN_SLACK_MS;
                while (!c->done && !c->established && !c->open_failed) {
                        if (sig_int || sig_term)
                                return exit_for_signal();
                        int t = timeout_until(deadline);
                        if (t == 0) {
                                say("no answer from tcpedud at %s to session-open for %s", socket_path, addrs->targets[i]);
                                return EXIT_FAILED;
                        }
                        client_poll(c, NULL, 0, t);
                }
                if (c->done)
                        return c->code;
                if (c->established)
                        return EXIT_OK;
                if (c->verbose)
                        say("%s", c->fail_msg);
                snprintf(failures[i], sizeof(failures[i]), "%s", c->fail_msg);
                link_close(&c->link);
        }
        if (!c->verbose)
                for (size_t i = 0; i < n; i++)
                        say("%s", failures[i]);
        return EXIT_FAILED;
}

/* Open the session: resolve HOST:PORT and --bind, then connect. Returns an exit code. */
static int client_open(Client *c, const char *socket_path, const Args *a) {
        SessionAddresses addrs;
        int r = session_addresses_resolve(a->verb, a->target, a->bind, &addrs);
        if (r != EXIT_OK)
                return r;
        r = client_open_addresses(c, socket_path, a, &addrs);
        session_addresses_done(&addrs);
        return r;
}

/* On a signal: close the session, wait a little for the daemon to take it, exit 128 + signal. */
static int client_interrupt(Client *c) {
        int code = exit_for_signal();
        c->on_data = NULL;
        c->on_disconnected = NULL;
        c->done = false;
        if (c->established && !c->disconnected && !c->close_sent && !c->shut) {
                if (c->send_id == 0 && c->close_id == 0)
                        client_close(c, "close");
                uint64_t deadline = now_ms() + CLOSE_WAIT_MS;
                while (!c->done && (c->close_id || c->send_id) && !c->disconnected && timeout_until(deadline) > 0) {
                        if (c->send_id == 0 && !c->close_sent)
                                client_close(c, "close");
                        client_poll(c, NULL, 0, timeout_until(deadline));
                }
        }
        c->done = true;
        c->code = code;
        return code;
}

/* ---- connect ---- */

static void connect_on_data(Client *c, const uint8_t *p, size_t n) {
        int r = write_all(STDOUT_FILENO, p, n);
        if (r == -EINTR)
                return; /* the loop sees the signal */
        if (r < 0) {
                if (r != -EPIPE)
                        say("cannot write to stdout: %s", strerror(-r));
                finish(c, EXIT_FAILED);
        }
}

/* Done once our fd is closed: cleanly if the close was a FIN exchange we or the peer started. */
static void connect_on_disconnected(Client *c) {
        bool clean = !c->reset && (c->peer_closed || c->shut || c->close_sent);
        if (!clean && !c->verbose)
                say("disconnected: %s", c->reason);
        finish(c, clean ? EXIT_OK : EXIT_FAILED);
}

static int connect_run(Client *c) {
        uint8_t *buf = malloc(STDIN_CHUNK);
        bool stdin_eof = false;

        if (!buf) {
                say("out of memory");
                return EXIT_FAILED;
        }
        while (!c->done) {
                if (sig_int || sig_term) {
                        client_interrupt(c);
                        break;
                }
                /* The peer closed: close our side too. Our stdin ended: half-close. */
                if (c->send_id == 0 && !c->close_sent && !c->shut && !c->disconnected) {
                        if (c->peer_closed)
                                client_close(c, "close");
                        else if (stdin_eof)
                                client_close(c, "shutdown");
                        if (c->done)
                                break;
                }
                bool want = !stdin_eof && !c->peer_closed && !c->close_sent && !c->shut && !c->disconnected && c->send_id == 0;
                struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
                client_poll(c, &in, want ? 1 : 0, -1);
                if (c->done || !want || !in.revents)
                        continue;
                ssize_t n = read(STDIN_FILENO, buf, STDIN_CHUNK);
                if (n > 0) {
                        int r = client_send(c, buf, (size_t)n);
                        if (r < 0) {
                                say("session %s: cannot send: %s", c->id, strerror(-r));
                                finish(c, EXIT_FAILED);
                        }
                } else if (n == 0)
                        stdin_eof = true;
                else if (errno != EINTR && errno != EAGAIN) {
                        say("cannot read stdin: %s", strerror(errno));
                        stdin_eof = true;
                }
        }
        free(buf);
        return c->code;
}

int interactive_connect(int argc, char **argv, const char *socket_path) {
        Args a;
        int r = parse_args(argc, argv, false, &a);
        if (r != EXIT_OK)
                return r;
        if (signals_setup() < 0) {
                say("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAILED;
        }
        Client c = { .link = { .fd = -1 }, .verbose = a.verbose, .on_data = connect_on_data, .on_disconnected = connect_on_disconnected };
        r = client_open(&c, socket_path, &a);
        if (r == EXIT_OK)
                r = connect_run(&c);
        link_close(&c.link);
        signals_restore();
        return r;
}

/* ---- chat ---- */

typedef struct Chat {
        Client c; /* first: the callbacks get it */
        const char *name;
        bool tty;
        bool joined; /* the welcome came */
        bool join_answered; /* the welcome or an error came: the join's answer, the first to come */
        bool leaving, leave_sent, got_goodbye, users_shown, have_users, users_asked;
        uint64_t deadline; /* for the goodbye; 0: none */
        char users[CHAT_USERS_MAX];
        /* from the server: the line being received */
        char *rx;
        size_t rx_len;
        bool rx_skip;
        /* to the server: requests not yet handed to the daemon */
        char *tx;
        size_t tx_len;
        /* stdin when it is not a terminal: in[in_start, in_start + in_len) */
        char *in;
        size_t in_start, in_len;
        bool in_skip, in_eof;
        /* output: a line from the server rendered in msg, then with the editor's line in out */
        char *msg, *out;
        bool abort_now; /* Ctrl-C while leaving */
        /* the line editor */
        char line[CHAT_INPUT_MAX + 1];
        size_t line_len;
        int esc; /* 0, 1 after ESC, 2 in a CSI sequence, 3 in SS3 */
        bool shown; /* the prompt and the line are on the screen */
        unsigned cols;
        char prompt[CHAT_NAME_MAX * 4 + 8];
} Chat;

static struct termios saved_termios;
static bool termios_saved;

static void term_restore(void) {
        if (termios_saved) {
                (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
                termios_saved = false;
        }
}

static int term_raw(void) {
        static bool registered;
        struct termios t;
        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return negative_errno();
        t = saved_termios;
        /* Keys as they come, no echo, ^C and ^Z as bytes; output processing stays (\n is \r\n). */
        t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | ISTRIP | BRKINT | INPCK | PARMRK);
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
                return negative_errno();
        termios_saved = true;
        if (!registered) {
                atexit(term_restore);
                registered = true;
        }
        return 0;
}

static unsigned term_cols(void) {
        struct winsize w;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0)
                return w.ws_col;
        return 80;
}

static size_t utf8_columns(const char *s, size_t len) {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        n++;
        return n;
}

/* The prompt and the end of the line that fits the terminal's width. */
static void editor_view(Chat *ch, Buf *b) {
        size_t pcols = utf8_columns(ch->prompt, strlen(ch->prompt));
        size_t room = ch->cols > pcols + 2 ? ch->cols - pcols - 2 : 1;
        size_t start = ch->line_len, cols = 0;
        while (start > 0) {
                size_t s = start - 1;
                while (s > 0 && ((unsigned char)ch->line[s] & 0xc0) == 0x80)
                        s--;
                if (cols + 1 > room)
                        break;
                cols++;
                start = s;
        }
        buf_puts(b, ch->prompt);
        if (start > 0 && room > 1) {
                /* cut on the left: show that there is more */
                size_t s = start;
                do
                        s++;
                while (s < ch->line_len && ((unsigned char)ch->line[s] & 0xc0) == 0x80);
                buf_puts(b, "<");
                start = s;
        }
        buf_put(b, ch->line + start, ch->line_len - start);
}

static void editor_draw(Chat *ch) {
        char tmp[CHAT_INPUT_MAX + 256];
        Buf b = { .p = tmp, .cap = sizeof(tmp) };
        buf_puts(&b, "\r\033[K");
        editor_view(ch, &b);
        ch->shown = true;
        (void)write_all(STDOUT_FILENO, b.p, b.len);
}

static void editor_hide(Chat *ch) {
        if (ch->shown)
                (void)write_all(STDOUT_FILENO, "\r\033[K", 4);
        ch->shown = false;
}

static bool editor_active(Chat *ch) {
        return ch->tty && termios_saved && !ch->leaving && !ch->c.done;
}

static void on_output_begin(void *userdata) {
        Chat *ch = userdata;
        if (ch->tty)
                editor_hide(ch);
}

static void on_output_end(void *userdata) {
        Chat *ch = userdata;
        if (editor_active(ch))
                editor_draw(ch);
}

/* One line for the user: above the line being typed, which is drawn again below it. */
static void chat_print(Chat *ch, const Buf *line) {
        Buf b = { .p = ch->out, .cap = CHAT_OUT_MAX + CHAT_INPUT_MAX + 256 };
        bool editor = editor_active(ch);
        if (ch->tty && ch->shown)
                buf_puts(&b, "\r\033[K");
        buf_put(&b, line->p, line->len);
        buf_puts(&b, "\n");
        if (editor) {
                editor_view(ch, &b);
                ch->shown = true;
        } else
                ch->shown = false;
        int r = write_all(STDOUT_FILENO, b.p, b.len);
        if (r < 0 && r != -EINTR) {
                if (r != -EPIPE)
                        say("cannot write to stdout: %s", strerror(-r));
                finish(&ch->c, EXIT_FAILED);
        }
}

static void chat_notice(Chat *ch, const char *fmt, ...) _printf_(2, 3);
static void chat_notice(Chat *ch, const char *fmt, ...) {
        char msg[1024], tmp[1200];
        Buf b = { .p = tmp, .cap = sizeof(tmp) };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        buf_puts(&b, "* ");
        buf_put_safe(&b, msg, strlen(msg));
        chat_print(ch, &b);
}

/* Queue one chat request (o is taken). */
static bool chat_queue(Chat *ch, struct json_object *o) {
        size_t len = 0;
        const char *s = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len) : NULL;
        bool ok = s && ch->tx_len + len + 1 <= CHAT_QUEUE_MAX;
        if (ok) {
                memcpy(ch->tx + ch->tx_len, s, len);
                ch->tx[ch->tx_len + len] = '\n';
                ch->tx_len += len + 1;
        } else
                chat_notice(ch, "not sent: %s", s ? "the chat server does not keep up" : "out of memory");
        json_object_put(o);
        return ok;
}

/* Hand queued requests to the daemon, whole lines of at most STDIN_CHUNK bytes at a time. */
static void chat_pump(Chat *ch) {
        Client *c = &ch->c;
        if (!c->established || c->send_id || !ch->tx_len || c->shut || c->close_sent || c->peer_closed || c->disconnected || c->done)
                return;
        size_t n = MIN(ch->tx_len, (size_t)STDIN_CHUNK);
        if (n < ch->tx_len) {
                const char *nl = memrchr(ch->tx, '\n', n);
                if (nl)
                        n = (size_t)(nl - ch->tx) + 1;
        }
        int r = client_send(c, (const uint8_t *)ch->tx, n);
        if (r < 0) {
                say("session %s: cannot send: %s", c->id, strerror(-r));
                finish(c, EXIT_FAILED);
                return;
        }
        memmove(ch->tx, ch->tx + n, ch->tx_len - n);
        ch->tx_len -= n;
}

static void chat_quit(Chat *ch) {
        if (ch->leaving)
                return;
        struct json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "type", json_object_new_string("leave"));
        if (ch->tty)
                editor_hide(ch);
        ch->leaving = true;
        ch->deadline = now_ms() + GOODBYE_WAIT_MS;
        chat_queue(ch, o);
}

static bool is_command(const char *line, size_t len, const char *cmd) {
        size_t n = strlen(cmd);
        return len >= n && memcmp(line, cmd, n) == 0 && (len == n || line[n] == ' ');
}

/* A line the user typed: a command, or a message. */
static void chat_input_line(Chat *ch, const char *line, size_t len) {
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
                len--;
        if (len == 0)
                return;
        if (line[0] == '/' && (len < 2 || line[1] != '/')) {
                if (is_command(line, len, "/quit"))
                        chat_quit(ch);
                else if (is_command(line, len, "/users")) {
                        /* The JSON dialect has no users request: the server sends the list at
                         * every join, leave and rename, so the last one is the current one. */
                        if (ch->have_users)
                                chat_notice(ch, "users: %s", ch->users);
                        else
                                ch->users_asked = true; /* shown when it comes */
                } else if (is_command(line, len, "/help"))
                        chat_notice(ch, "commands: /users (who is here), /quit (leave; also Ctrl-D on an empty line), "
                                        "//TEXT (a message that begins with /)");
                else {
                        size_t n = 0;
                        while (n < len && line[n] != ' ')
                                n++;
                        chat_notice(ch, "unknown command %.*s (try /help)", (int)utf8_prefix(line, n, 32), line);
                }
                return;
        }
        if (line[0] == '/') {
                line++;
                len--;
        }
        /* The server takes one line of UTF-8 without control characters: say so at once here. */
        char *content = malloc(len + 1);
        if (!content) {
                chat_notice(ch, "not sent: out of memory");
                return;
        }
        size_t n = 0;
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t k = utf8_decode((const unsigned char *)line + i, len - i, &cp);
                if (k == 0 || (cp < 0x20 && cp != '\t') || cp == 0x7f)
                        content[n++] = '?', i += k ? k : 1;
                else {
                        memcpy(content + n, line + i, k);
                        n += k;
                        i += k;
                }
        }
        struct json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "type", json_object_new_string("message"));
                json_object_object_add(o, "content", json_object_new_string_len(content, (int)n));
        }
        free(content);
        chat_queue(ch, o);
}

static void put_time(Buf *b, struct json_object *msg) {
        struct json_object *v;
        time_t t = time(NULL);
        if (json_object_object_get_ex(msg, "timestamp", &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
                double d = json_object_get_double(v);
                if (isfinite(d) && d > 0 && d < 1e15)
                        t = (time_t)d;
        }
        struct tm tm;
        char s[32];
        localtime_r(&t, &tm);
        strftime(s, sizeof(s), "[%H:%M:%S] ", &tm);
        buf_puts(b, s);
}

static void put_field(Buf *b, struct json_object *o, const char *key, const char *def) {
        const char *s = jstr(o, key, def);
        buf_put_safe(b, s, strlen(s));
}

static void chat_users(Chat *ch, struct json_object *msg) {
        struct json_object *arr;
        Buf b = { .p = ch->users, .cap = sizeof(ch->users) - 1 };
        if (!json_object_object_get_ex(msg, "users", &arr) || !json_object_is_type(arr, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *u = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(u, json_type_string))
                        continue;
                if (b.len)
                        buf_puts(&b, ", ");
                buf_put_safe(&b, json_object_get_string(u), (size_t)json_object_get_string_len(u));
        }
        ch->users[b.len] = 0;
        ch->have_users = true;
}

/* One line from the chat server: a JSON object each. */
static void chat_server_line(Chat *ch, const char *line, size_t len) {
        while (len > 0 && line[len - 1] == '\r')
                len--;
        if (len == 0)
                return;
        Buf b = { .p = ch->msg, .cap = CHAT_OUT_MAX };
        struct json_object *o = parse_object_line(line, len);
        const char *type = jstr(o, "type", NULL);
        if (!type) {
                /* not the JSON dialect: show it as it is (made safe) */
                buf_put_safe(&b, line, len);
                chat_print(ch, &b);
                json_object_put(o);
                return;
        }
        if (strcmp(type, "message") == 0) {
                struct json_object *v;
                bool action = json_object_object_get_ex(o, "action", &v) && json_object_get_boolean(v);
                const char *user = jstr(o, "username", "?");
                put_time(&b, o);
                if (strcmp(user, "*server*") == 0)
                        buf_puts(&b, "*** ");
                else {
                        if (action)
                                buf_puts(&b, "* ");
                        buf_put_safe(&b, user, strlen(user));
                        buf_puts(&b, action ? " " : ": ");
                }
                put_field(&b, o, "content", "");
        } else if (strcmp(type, "join") == 0 || strcmp(type, "leave") == 0) {
                buf_puts(&b, "* ");
                put_field(&b, o, "username", "?");
                buf_puts(&b, type[0] == 'j' ? " joined" : " left");
        } else if (strcmp(type, "rename") == 0) {
                buf_puts(&b, "* ");
                put_field(&b, o, "old_username", "?");
                buf_puts(&b, " is now known as ");
                put_field(&b, o, "username", "?");
        } else if (strcmp(type, "users") == 0) {
                chat_users(ch, o);
                /* The server sends the list at every change: show the first, keep the others for /users. */
                if ((ch->users_shown || !ch->joined) && !ch->users_asked)
                        b.len = 0;
                else {
                        ch->users_shown = true;
                        ch->users_asked = false;
                        buf_puts(&b, "* users: ");
                        buf_puts(&b, ch->users);
                }
        } else if (strcmp(type, "error") == 0) {
                if (!ch->join_answered) {
                        ch->join_answered = true;
                        /* The join comes first and is answered first: this is its answer. */
                        say("cannot join the chat as %s: %s", ch->name, jstr(o, "content", "error"));
                        finish(&ch->c, EXIT_FAILED);
                        b.len = 0;
                } else {
                        buf_puts(&b, "* error: ");
                        put_field(&b, o, "content", "?");
                }
        } else {
                if (strcmp(type, "welcome") == 0)
                        ch->joined = ch->join_answered = true;
                else if (strcmp(type, "goodbye") == 0)
                        ch->got_goodbye = true;
                if (jstr(o, "content", NULL)) {
                        buf_puts(&b, "* ");
                        put_field(&b, o, "content", "");
                }
        }
        if (b.len)
                chat_print(ch, &b);
        json_object_put(o);
}

static void chat_on_data(Client *c, const uint8_t *p, size_t n) {
        Chat *ch = (Chat *)c;
        while (n > 0 && !c->done) {
                const uint8_t *nl = memchr(p, '\n', n);
                size_t seg = nl ? (size_t)(nl - p) : n;
                if (!ch->rx_skip) {
                        if (ch->rx_len + seg > CHAT_LINE_MAX) {
                                chat_notice(ch, "a line from the chat server longer than %u bytes was dropped", CHAT_LINE_MAX);
                                ch->rx_skip = true;
                                ch->rx_len = 0;
                        } else {
                                memcpy(ch->rx + ch->rx_len, p, seg);
                                ch->rx_len += seg;
                        }
                }
                if (!nl)
                        break;
                if (!ch->rx_skip)
                        chat_server_line(ch, ch->rx, ch->rx_len);
                ch->rx_len = 0;
                ch->rx_skip = false;
                p = nl + 1;
                n -= seg + 1;
        }
}

static void chat_on_disconnected(Client *c) {
        Chat *ch = (Chat *)c;
        if (ch->got_goodbye) {
                finish(c, EXIT_OK);
                return;
        }
        if (c->peer_closed && !c->reset)
                say("the chat server closed the connection");
        else if (!c->verbose)
                say("disconnected: %s", c->reason);
        finish(c, EXIT_FAILED);
}

/* Keys from the terminal, for the line editor. */
static void chat_keys(Chat *ch, const uint8_t *p, size_t n) {
        bool changed = false;
        for (size_t i = 0; i < n && !ch->c.done; i++) {
                uint8_t k = p[i];
                if (ch->leaving) {
                        /* only one more Ctrl-C counts: leave without waiting */
                        if (k == 0x03)
                                ch->abort_now = true;
                        continue;
                }
                if (ch->esc == 1) {
                        ch->esc = k == '[' ? 2 : k == 'O' ? 3 : 0;
                        continue;
                }
                if (ch->esc == 2) {
                        if (k >= 0x40 && k <= 0x7e)
                                ch->esc = 0;
                        continue;
                }
                if (ch->esc == 3) {
                        ch->esc = 0;
                        continue;
                }
                switch (k) {
                case 0x03: /* Ctrl-C */
                        chat_quit(ch);
                        break;
                case 0x04: /* Ctrl-D: quit on an empty line */
                        if (ch->line_len == 0)
                                chat_quit(ch);
                        break;
                case '\r':
                case '\n': {
                        char copy[CHAT_INPUT_MAX];
                        size_t len = ch->line_len;
                        memcpy(copy, ch->line, len);
                        ch->line_len = 0;
                        changed = true;
                        chat_input_line(ch, copy, len);
                        break;
                }
                case 0x7f: /* Backspace */
                case 0x08:
                        while (ch->line_len > 0 && ((unsigned char)ch->line[ch->line_len - 1] & 0xc0) == 0x80)
                                ch->line_len--;
                        if (ch->line_len > 0)
                                ch->line_len--;
                        changed = true;
                        break;
                case 0x15: /* Ctrl-U */
                        ch->line_len = 0;
                        changed = true;
                        break;
                case 0x17: /* Ctrl-W: the word before the cursor, and the blanks after it */
                        while (ch->line_len > 0 && ch->line[ch->line_len - 1] == ' ')
                                ch->line_len--;
                        while (ch->line_len > 0 && ch->line[ch->line_len - 1] != ' ')
                                ch->line_len--;
                        changed = true;
                        break;
                case 0x0c: /* Ctrl-L */
                        changed = true;
                        break;
                case 0x1b:
                        ch->esc = 1;
                        break;
                default:
                        if (k < 0x20)
                                break; /* other control keys: nothing */
                        if (ch->line_len >= CHAT_INPUT_MAX) {
                                (void)write_all(STDOUT_FILENO, "\a", 1);
                                break;
                        }
                        ch->line[ch->line_len++] = (char)k;
                        changed = true;
                }
        }
        if (changed && editor_active(ch))
                editor_draw(ch);
}

/* Lines from stdin when it is not a terminal, while the queue has room for them. */
static void chat_stdin_lines(Chat *ch) {
        while (!ch->c.done && !ch->leaving && ch->in_len > 0) {
                char *start = ch->in + ch->in_start;
                char *nl = memchr(start, '\n', ch->in_len);
                if (!nl)
                        return;
                size_t len = (size_t)(nl - start);
                if (ch->tx_len + 2 * len + 64 > CHAT_QUEUE_MAX)
                        return;
                if (ch->in_skip)
                        ch->in_skip = false;
                else
                        chat_input_line(ch, start, len);
                ch->in_start += len + 1;
                ch->in_len -= len + 1;
        }
}

static void chat_read_stdin(Chat *ch) {
        if (ch->tty) {
                uint8_t keys[256];
                ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));
                if (n > 0)
                        chat_keys(ch, keys, (size_t)n);
                else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                        ch->in_eof = true;
                        chat_quit(ch);
                }
                return;
        }
        if (ch->in_start > 0) {
                memmove(ch->in, ch->in + ch->in_start, ch->in_len);
                ch->in_start = 0;
        }
        ssize_t n = read(STDIN_FILENO, ch->in + ch->in_len, CHAT_LINE_MAX - ch->in_len);
        if (n > 0) {
                ch->in_len += (size_t)n;
                if (ch->in_len == CHAT_LINE_MAX && !memchr(ch->in, '\n', ch->in_len)) {
                        if (!ch->in_skip)
                                chat_notice(ch, "an input line longer than %u bytes was not sent", CHAT_LINE_MAX);
                        ch->in_skip = true;
                        ch->in_len = 0;
                }
                return;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n < 0)
                say("cannot read stdin: %s", strerror(errno));
        ch->in_eof = true;
}

static int chat_run(Chat *ch) {
        Client *c = &ch->c;
        int handled_int = 0;

        while (!c->done) {
                if (sig_term || sig_int >= 2 || ch->abort_now)
                        return client_interrupt(c);
                if (sig_int > handled_int) {
                        handled_int = sig_int;
                        chat_quit(ch);
                }
                if (sig_winch) {
                        sig_winch = 0;
                        ch->cols = term_cols();
                        if (editor_active(ch))
                                editor_draw(ch);
                }
                if (c->peer_closed && c->send_id == 0 && !c->close_sent && !c->shut && !c->disconnected)
                        client_close(c, "close");
                if (!ch->tty) {
                        chat_stdin_lines(ch);
                        if (ch->in_eof && !ch->leaving && (ch->in_len == 0 || !memchr(ch->in + ch->in_start, '\n', ch->in_len))) {
                                if (ch->in_len > 0 && !ch->in_skip)
                                        chat_input_line(ch, ch->in + ch->in_start, ch->in_len);
                                ch->in_len = 0;
                                chat_quit(ch);
                        }
                }
                chat_pump(ch);
                if (ch->leaving && !ch->leave_sent && ch->tx_len == 0 && c->send_id == 0) {
                        /* the leave is with the server now: give it the full time to answer */
                        ch->leave_sent = true;
                        ch->deadline = now_ms() + GOODBYE_WAIT_MS;
                }
                if (c->done)
                        break;
                if (ch->deadline && timeout_until(ch->deadline) == 0) {
                        if (ch->got_goodbye)
                                finish(c, EXIT_OK);
                        else {
                                say("no goodbye from the chat server within %d s", GOODBYE_WAIT_MS / 1000);
                                finish(c, EXIT_FAILED);
                        }
                        break;
                }
                bool want;
                if (ch->tty)
                        want = !ch->in_eof;
                else
                        want = !ch->in_eof && !ch->leaving && ch->in_len < CHAT_LINE_MAX &&
                               !(ch->in_len && memchr(ch->in + ch->in_start, '\n', ch->in_len));
                struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
                client_poll(c, &in, want ? 1 : 0, timeout_until(ch->deadline));
                if (!c->done && want && in.revents)
                        chat_read_stdin(ch);
        }
        return c->code;
}

int interactive_chat(int argc, char **argv, const char *socket_path) {
        Args a;
        int r = parse_args(argc, argv, true, &a);
        if (r != EXIT_OK)
                return r;
        Chat *ch = calloc(1, sizeof(Chat));
        if (!ch || !(ch->rx = malloc(CHAT_LINE_MAX)) || !(ch->tx = malloc(CHAT_QUEUE_MAX)) || !(ch->in = malloc(CHAT_LINE_MAX)) ||
            !(ch->msg = malloc(CHAT_OUT_MAX)) || !(ch->out = malloc(CHAT_OUT_MAX + CHAT_INPUT_MAX + 256))) {
                say("out of memory");
                r = EXIT_FAILED;
                goto out;
        }
        ch->c = (Client){ .link = { .fd = -1 }, .verbose = a.verbose, .on_data = chat_on_data, .on_disconnected = chat_on_disconnected };
        ch->name = a.user;
        ch->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
        snprintf(ch->prompt, sizeof(ch->prompt), "%s> ", a.user);
        if (signals_setup() < 0) {
                say("cannot set up signal handling: %s", strerror(errno));
                r = EXIT_FAILED;
                goto out;
        }
        r = client_open(&ch->c, socket_path, &a);
        if (r == EXIT_OK) {
                struct json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "type", json_object_new_string("join"));
                        json_object_object_add(o, "username", json_object_new_string(a.user));
                }
                chat_queue(ch, o);
                if (ch->tty) {
                        if (term_raw() < 0)
                                ch->tty = false;
                        else {
                                ch->cols = term_cols();
                                output_begin = on_output_begin;
                                output_end = on_output_end;
                                output_userdata = ch;
                                editor_draw(ch);
                        }
                }
                r = chat_run(ch);
                if (ch->tty)
                        editor_hide(ch);
                output_begin = output_end = NULL;
                output_userdata = NULL;
                term_restore();
        }
        link_close(&ch->c.link);
        signals_restore();
out:
        if (ch) {
                free(ch->rx);
                free(ch->tx);
                free(ch->in);
                free(ch->msg);
                free(ch->out);
        }
        free(ch);
        return r;
}
