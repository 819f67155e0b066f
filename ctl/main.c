/* SPDX-License-Identifier: MIT */
/* tcpeductl: the control client of tcpedud. Verbs are a table (name, arguments, help, handler);
 * each sends one request over the control socket and prints the reply as a table or, with
 * --json, as the daemon's own JSON. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "config.h"
#include "control-proto.h"
#include "ctl-util.h"
#include "interactive.h"
#include "macro.h"
#include "tcp-state.h"
#include "utf8.h"

typedef struct Options {
        const char *socket_path;
        const char *config_path;
        bool json;
} Options;

static Options opts;

#define SYSTEM_SOCKET "/run/tcpedud/control.sock"

typedef struct Conn {
        int fd;
        char path[108];
        char *buf;
        size_t len, cap;
        int64_t next_id;
} Conn;

typedef struct Verb {
        const char *name;
        const char *args;
        const char *help;
        int min_args, max_args;
        int (*run)(int argc, char **argv);
        bool own_options; /* the verb parses its options itself; otherwise only positional arguments are accepted */
} Verb;

static const Verb *find_verb(const char *name);

/* ---- talking to the daemon ---- */

/* Sets *ret_default when the path is the per-user default rule, with no -s, environment or config. */
static int resolve_socket(char *buf, size_t size, bool *ret_default) {
        *ret_default = false;
        if (opts.socket_path)
                return snprintf(buf, size, "%s", opts.socket_path) < (int)size ? 0 : -ENAMETOOLONG;
        const char *env = getenv("TCPEDU_CONTROL_SOCKET");
        if (env && *env)
                return snprintf(buf, size, "%s", env) < (int)size ? 0 : -ENAMETOOLONG;
        /* The daemon's rule: control_socket from its config, else the default for this user. */
        Config *c = NULL;
        ConfigErrors errs = {};
        const char *configured = NULL;
        if (config_load(opts.config_path, &c, &errs) >= 0)
                configured = c->daemon.control_socket;
        else if (opts.config_path) {
                fprintf(stderr, "tcpeductl: ignoring %s, it does not load:\n", opts.config_path);
                config_errors_print(&errs, stderr);
        }
        *ret_default = !configured || !configured[0];
        int r = control_socket_path(configured, buf, size);
        config_free(c);
        config_errors_clear(&errs);
        return r;
}

/* Read one line (without '\n') into *ret; it stays valid until the next call. */
static int read_line(Conn *c, char **ret, size_t *ret_len, int timeout_ms) {
        for (;;) {
                char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
                if (nl) {
                        *nl = 0;
                        *ret = c->buf;
                        *ret_len = (size_t)(nl - c->buf);
                        return 0;
                }
                if (c->len + 65536 > c->cap) {
                        size_t cap = c->cap ? c->cap * 2 : 131072;
                        char *n = realloc(c->buf, cap);
                        if (!n)
                                return -ENOMEM;
                        c->buf = n;
                        c->cap = cap;
                }
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno == EINTR)
                        return -EINTR;
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -ECONNRESET;
                c->len += (size_t)n;
        }
}

static void consume_line(Conn *c, size_t len) {
        memmove(c->buf, c->buf + len + 1, c->len - len - 1);
        c->len -= len + 1;
}

/* The socket to talk to: resolve_socket(), or the system daemon's when this user has none of their
 * own. Prints why there is none. */
static int find_socket(char *path, size_t size) {
        bool by_default;
        int r = resolve_socket(path, size, &by_default);
        /* A user without a daemon of their own most likely means the system's; EACCES: it is there,
         * in a directory only its group may enter (tcpedud.service), and connect() will say so. */
        if (by_default && geteuid() != 0 && (r < 0 || access(path, F_OK) < 0) && (access(SYSTEM_SOCKET, F_OK) == 0 || errno == EACCES)) {
                snprintf(path, size, "%s", SYSTEM_SOCKET);
                r = 0;
        }
        if (r < 0) {
                fprintf(stderr, "tcpeductl: no control socket path: %s (use -s PATH or TCPEDU_CONTROL_SOCKET)\n",
                        r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long");
                return EXIT_UNAVAILABLE;
        }
        return EXIT_OK;
}

static int daemon_connect(Conn *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *line = NULL;
        size_t len = 0;

        *c = (Conn){ .fd = -1, .next_id = 1 };
        int r = find_socket(c->path, sizeof(c->path));
        if (r != EXIT_OK)
                return r;
        if (strlen(c->path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tcpeductl: control socket path too long: %s\n", c->path);
                return EXIT_UNAVAILABLE;
        }
        memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                fprintf(stderr, "tcpeductl: cannot reach tcpedud at %s: %s\n", c->path, strerror(e));
                if (e == EACCES && strcmp(c->path, SYSTEM_SOCKET) == 0)
                        fprintf(stderr, "tcpeductl: the system's tcpedud is open to root and the members of group tcpedu\n");
                return e == EACCES ? EXIT_PERMISSION : EXIT_UNAVAILABLE;
        }
        r = read_line(c, &line, &len, 10000);
        if (r < 0) {
                fprintf(stderr, "tcpeductl: no greeting from tcpedud at %s: %s\n", c->path, strerror(-r));
                return EXIT_UNAVAILABLE;
        }
        ControlReply g;
        struct json_object *v;
        if (control_reply_parse(line, len, &g) < 0 || !json_object_object_get_ex(g.root, "protocol", &v)) {
                if (g.root && !g.ok && g.code == CONTROL_ERROR_LIMIT) {
                        fprintf(stderr, "tcpeductl: tcpedud at %s refused the connection: %s\n", c->path, g.message);
                        control_reply_done(&g);
                        return EXIT_FAILED;
                }
                fprintf(stderr, "tcpeductl: %s does not speak the tcpedu control protocol\n", c->path);
                control_reply_done(&g);
                return EXIT_UNAVAILABLE;
        }
        int proto = json_object_get_int(v);
        control_reply_done(&g);
        consume_line(c, len);
        if (proto != CONTROL_PROTOCOL_VERSION) {
                fprintf(stderr, "tcpeductl: tcpedud at %s speaks control protocol %d, this tcpeductl speaks %d\n", c->path, proto,
                        CONTROL_PROTOCOL_VERSION);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static void daemon_disconnect(Conn *c) {
        safe_close(c->fd);
        free(c->buf);
}

#define REPLY_TIMEOUT_MS 120000
/* How much longer than the daemon's own wait (session-open, session-recv) tcpeductl waits. */
#define REPLY_MARGIN_MS 10000

static volatile sig_atomic_t interrupted;

/* Send a request (args is taken); *ret_id is its id. */
static int send_request(Conn *c, const char *command, struct json_object *args, int64_t *ret_id) {
        struct json_object *req = json_object_new_object();
        int64_t id = c->next_id++;
        json_object_object_add(req, "id", json_object_new_int64(id));
        json_object_object_add(req, "command", json_object_new_string(command));
        json_object_object_add(req, "args", args ? args : json_object_new_object());
        char *line = NULL;
        if (asprintf(&line, "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)) < 0)
                line = NULL;
        json_object_put(req);
        if (!line)
                return EXIT_FAILED;
        size_t len = strlen(line), off = 0;
        while (off < len) {
                ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "tcpeductl: lost tcpedud at %s: %s\n", c->path, strerror(errno));
                        free(line);
                        return EXIT_UNAVAILABLE;
                }
                off += (size_t)n;
        }
        free(line);
        *ret_id = id;
        return EXIT_OK;
}

/* Wait for the reply to request id. Replies may be deferred (session-open, -recv, -send wait on
 * the session) and a watching or monitoring connection gets {"event":{...}} lines among them:
 * lines are matched by id, and events met on the way are skipped. timeout_ms < 0 waits as long as
 * it takes. Returns EXIT_OK with the reply in *ret, ok or not (free with control_reply_done), or
 * an exit code once the failure to get one is printed. */
static int wait_reply(Conn *c, int64_t id, int timeout_ms, ControlReply *ret) {
        for (;;) {
                char *l = NULL;
                size_t n = 0;
                int r = read_line(c, &l, &n, timeout_ms);
                if (r == -EINTR && !interrupted)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "tcpeductl: no reply from tcpedud at %s: %s\n", c->path,
                                r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
                ControlReply rep;
                if (control_reply_parse(l, n, &rep) < 0) {
                        fprintf(stderr, "tcpeductl: malformed reply from tcpedud\n");
                        return EXIT_FAILED;
                }
                consume_line(c, n);
                if (rep.id != id) {
                        control_reply_done(&rep);
                        continue;
                }
                *ret = rep;
                return EXIT_OK;
        }
}

static int call_full(Conn *c, const char *command, struct json_object *args, int timeout_ms, ControlReply *ret) {
        int64_t id;
        int r = send_request(c, command, args, &id);
        return r != EXIT_OK ? r : wait_reply(c, id, timeout_ms, ret);
}

/* Send a request and wait for its reply. On success *ret holds the reply (free with
 * control_reply_done) and the exit code is 0; on a daemon error, the message is printed. */
static int call(Conn *c, const char *command, struct json_object *args, ControlReply *ret) {
        ControlReply rep;
        int r = call_full(c, command, args, REPLY_TIMEOUT_MS, &rep);
        if (r != EXIT_OK)
                return r;
        if (!rep.ok) {
                struct json_object *details, *errors;
                fprintf(stderr, "tcpeductl %s: %s\n", command, rep.message);
                if (json_object_object_get_ex(rep.data, "details", &details) && json_object_object_get_ex(details, "errors", &errors))
                        for (size_t i = 0; i < json_object_array_length(errors); i++)
                                fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errors, i)));
                int code = exit_code_for(rep.code);
                control_reply_done(&rep);
                return code;
        }
        *ret = rep;
        return EXIT_OK;
}

/* Connect, call, and either print JSON or hand the data to a printer. */
static int simple(const char *command, struct json_object *args, void (*print)(struct json_object *data)) {
        Conn c;
        ControlReply rep;
        int r = daemon_connect(&c);
        if (r != EXIT_OK) {
                json_object_put(args);
                daemon_disconnect(&c);
                return r;
        }
        r = call(&c, command, args, &rep);
        if (r == EXIT_OK) {
                if (opts.json || !print)
                        printf("%s\n", json_object_to_json_string_ext(rep.data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                else
                        print(rep.data);
                control_reply_done(&rep);
        }
        daemon_disconnect(&c);
        return r;
}

/* ---- formatting ---- */

static const char *jstr(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return "-";
        return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *key) {
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static struct json_object *jget(struct json_object *o, const char *key) {
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static char *format_duration(int64_t usec, char *buf, size_t size) {
        int64_t s = usec / 1000000;
        if (usec < 1000)
                snprintf(buf, size, "%" PRId64 "us", usec);
        else if (usec < 1000000)
                snprintf(buf, size, "%.1fms", (double)usec / 1000.0);
        else if (s < 60)
                snprintf(buf, size, "%.1fs", (double)usec / 1e6);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
        else
                snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
        return buf;
}

static char *format_time(int64_t usec, char *buf, size_t size) {
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        localtime_r(&t, &tm);
        size_t n = strftime(buf, size, "%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03d", (int)(usec / 1000 % 1000));
        return buf;
}

static void join_listen(struct json_object *server, char *buf, size_t size) {
        struct json_object *listen = jget(server, "listen");
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; listen && i < json_object_array_length(listen) && off < size; i++) {
                struct json_object *l = json_object_array_get_idx(listen, i);
                const char *actual = jstr(l, "address");
                off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", strcmp(actual, "-") ? actual : jstr(l, "configured"));
        }
}

static void print_status(struct json_object *d) {
        char dur[32], listen[512];
        struct json_object *log = jget(d, "log"), *servers = jget(d, "servers");
        printf("tcpedud %s (pid %" PRId64 "), up %s, control protocol %" PRId64 "\n", jstr(d, "version"), jint(d, "pid"),
               format_duration(jint(d, "uptime_usec"), dur, sizeof(dur)), jint(d, "protocol"));
        printf("config:       %s\n", jstr(d, "config_file"));
        if (jget(d, "uid"))
                printf("user:         %s (uid %" PRId64 "), group %s (gid %" PRId64 ")\n", jstr(d, "user"), jint(d, "uid"),
                       jstr(d, "group"), jint(d, "gid"));
        printf("connections:  %" PRId64 " open, %" PRId64 " lingering in the kernel\n", jint(d, "connections"), jint(d, "lingering"));
        printf("sessions:     %" PRId64 " open (max_sessions %" PRId64 ")\n", jint(d, "sessions"), jint(d, "max_sessions"));
        printf("transitions:  %" PRId64 " (log_transitions=%s)\n", jint(d, "transitions"), jstr(d, "log_transitions"));
        printf("log:          %s: %" PRId64 " written, %" PRId64 " dropped (%" PRId64 " queue full, %" PRId64 " write failed), %" PRId64
               " queued\n",
               jstr(log, "target"), jint(log, "written"), jint(log, "dropped"), jint(log, "dropped_queue_full"),
               jint(log, "dropped_write_failed"), jint(log, "queued"));
        printf("\n%-16s %-9s %-8s %11s  %s\n", "SERVER", "TYPE", "STATE", "CONNECTIONS", "LISTEN");
        for (size_t i = 0; servers && i < json_object_array_length(servers); i++) {
                struct json_object *s = json_object_array_get_idx(servers, i);
                join_listen(s, listen, sizeof(listen));
                printf("%-16s %-9s %-8s %11" PRId64 "  %s\n", jstr(s, "name"), jstr(s, "type"), jstr(s, "state"), jint(s, "connections"),
                       listen);
        }
}

static void print_server_row(struct json_object *s) {
        char listen[512];
        struct json_object *refused = jget(s, "refused");
        int64_t total_refused = 0;
        json_object_object_foreach(refused, k, v) {
                (void)k;
                total_refused += json_object_get_int64(v);
        }
        join_listen(s, listen, sizeof(listen));
        printf("%-16s %-9s %-8s %6" PRId64 " %9" PRId64 " %12" PRId64 " %12" PRId64 " %8" PRId64 "  %s\n", jstr(s, "name"), jstr(s, "type"),
               jstr(s, "state"), jint(s, "connections"), jint(s, "accepted"), jint(s, "bytes_in"), jint(s, "bytes_out"), total_refused,
               listen);
}

static void print_servers(struct json_object *d) {
        struct json_object *servers = jget(d, "servers");
        printf("%-16s %-9s %-8s %6s %9s %12s %12s %8s  %s\n", "SERVER", "TYPE", "STATE", "CONNS", "ACCEPTED", "BYTES_IN", "BYTES_OUT",
               "REFUSED", "LISTEN");
        for (size_t i = 0; servers && i < json_object_array_length(servers); i++)
                print_server_row(json_object_array_get_idx(servers, i));
}

static void print_show(struct json_object *s) {
        struct json_object *limits = jget(s, "limits"), *refused = jget(s, "refused"), *listen = jget(s, "listen");
        printf("server:       %s\ntype:         %s\nstate:        %s\nautostart:    %s\n", jstr(s, "name"), jstr(s, "type"),
               jstr(s, "state"), jstr(s, "autostart"));
        for (size_t i = 0; listen && i < json_object_array_length(listen); i++) {
                struct json_object *l = json_object_array_get_idx(listen, i);
                printf("listen:       %s (configured %s)\n", jstr(l, "address"), jstr(l, "configured"));
        }
        printf("connections:  %" PRId64 " open, %" PRId64 " accepted\n", jint(s, "connections"), jint(s, "accepted"));
        printf("bytes:        %" PRId64 " in, %" PRId64 " out\n", jint(s, "bytes_in"), jint(s, "bytes_out"));
        printf("limits:      ");
        json_object_object_foreach(limits, k, v) printf(" %s=%s", k, json_object_get_string(v));
        printf("\nrefused:     ");
        json_object_object_foreach(refused, k2, v2) printf(" %s=%s", k2, json_object_get_string(v2));
        printf("\n");
        struct json_object *counters = jget(s, "counters"), *members = jget(s, "members");
        if (jget(s, "handler"))
                printf("handler:      %s\n", jstr(s, "handler"));
        if (counters) {
                printf("counters:    ");
                json_object_object_foreach(counters, k3, v3) printf(" %s=%s", k3, json_object_get_string(v3));
                printf("\n");
        }
        if (members) {
                printf("protocol:     %s\nmessages:     %s (joins %s, leaves %s, drops %s)\nmembers:      %zu\n", jstr(s, "protocol"),
                       jstr(s, "messages"), jstr(s, "joins"), jstr(s, "leaves"), jstr(s, "drops"), json_object_array_length(members));
                for (size_t i = 0; i < json_object_array_length(members); i++) {
                        struct json_object *m = json_object_array_get_idx(members, i);
                        printf("  %-20s %-5s %-24s %s\n", jstr(m, "name"), jstr(m, "protocol"), jstr(m, "peer"), jstr(m, "id"));
                }
        }
}

static void print_server_brief(struct json_object *s) {
        printf("server %s: %s\n", jstr(s, "name"), jstr(s, "state"));
}

static bool is_session(struct json_object *c) {
        return strcmp(jstr(c, "role"), "client") == 0;
}

static void print_connections(struct json_object *d) {
        struct json_object *conns = jget(d, "connections");
        char age[32];
        printf("%-36s %-12s %-24s %-12s %-11s %8s %12s %12s\n", "ID", "SERVER", "PEER", "STATE", "KERNEL", "AGE", "BYTES_IN", "BYTES_OUT");
        for (size_t i = 0; conns && i < json_object_array_length(conns); i++) {
                struct json_object *c = json_object_array_get_idx(conns, i);
                printf("%-36s %-12s %-24s %-12s %-11s %8s %12" PRId64 " %12" PRId64 "\n", jstr(c, "id"),
                       is_session(c) ? "(session)" : jstr(c, "server"), jstr(c, "peer"), jstr(c, "state"), jstr(c, "kernel_state"),
                       format_duration(jint(c, "age_usec"), age, sizeof(age)), jint(c, "bytes_in"), jint(c, "bytes_out"));
        }
        if (!conns || json_object_array_length(conns) == 0)
                printf("(no connections)\n");
}

static void print_sessions(struct json_object *d) {
        struct json_object *sessions = jget(d, "sessions");
        char age[32];
        printf("%-36s %-24s %-24s %-12s %-11s %6s %8s %10s %10s %9s\n", "ID", "PEER", "LOCAL", "STATE", "KERNEL", "OWNER", "AGE",
               "BYTES_IN", "BYTES_OUT", "BUFFERED");
        for (size_t i = 0; sessions && i < json_object_array_length(sessions); i++) {
                struct json_object *c = json_object_array_get_idx(sessions, i);
                printf("%-36s %-24s %-24s %-12s %-11s %6s %8s %10" PRId64 " %10" PRId64 " %9" PRId64 "\n", jstr(c, "id"), jstr(c, "peer"),
                       jstr(c, "local"), jstr(c, "state"), jstr(c, "kernel_state"), jstr(c, "owner_uid"),
                       format_duration(jint(c, "age_usec"), age, sizeof(age)), jint(c, "bytes_in"), jint(c, "bytes_out"),
                       jint(c, "buffered"));
        }
        if (!sessions || json_object_array_length(sessions) == 0)
                printf("(no sessions)\n");
        printf("\nmax_sessions %" PRId64 "; since the daemon started: %" PRId64 " opened, %" PRId64 " failed to connect, %" PRId64
               " refused at a limit\n",
               jint(d, "max_sessions"), jint(d, "opened"), jint(d, "failed"), jint(d, "refused_limit"));
}

static const char *yes_no(struct json_object *o, const char *key) {
        return json_object_get_boolean(jget(o, key)) ? "yes" : "no";
}

static void print_conn(struct json_object *c) {
        char t[32], dur[32];
        struct json_object *tl = jget(c, "timeline"), *ti = jget(c, "tcp_info"), *s = jget(c, "session");
        if (s)
                printf("connection:   %s\nsession:      client side, opened by uid %" PRId64 " (pid %" PRId64 ")\n", jstr(c, "id"),
                       jint(s, "owner_uid"), jint(s, "owner_pid"));
        else
                printf("connection:   %s\nserver:       %s (%s)\n", jstr(c, "id"), jstr(c, "server"), jstr(c, "role"));
        printf("peer:         %s\nlocal:        %s\n", jstr(c, "peer"), jstr(c, "local"));
        printf("state:        %s (kernel: %s, via %s)\n", jstr(c, "state"), jstr(c, "kernel_state"), jstr(c, "kernel_source"));
        printf("bytes:        %" PRId64 " in, %" PRId64 " out\n", jint(c, "bytes_in"), jint(c, "bytes_out"));
        if (s) {
                printf("flags:        connected %s, failed %s, peer closed %s, ephemeral %s, watched %s\n", yes_no(s, "connected"),
                       yes_no(s, "failed"), yes_no(s, "peer_closed"), yes_no(s, "ephemeral"), yes_no(s, "watched"));
                printf("received:     %" PRId64 " bytes buffered (of %" PRId64 "), %" PRId64 " read, reading paused %" PRId64 " times\n",
                       jint(s, "buffered"), jint(s, "buffer_size"), jint(s, "read"), jint(s, "reading_paused"));
                printf("unsent:       %" PRId64 " bytes\n", jint(s, "unsent"));
        }
        if (strcmp(jstr(c, "close_reason"), "-") != 0)
                printf("closing:      %s\n", jstr(c, "close_reason"));
        printf("\ntimeline:\n  %-12s  %-13s %10s  %s\n", "SINCE", "STATE", "FOR", "SOURCE");
        for (size_t i = 0; tl && i < json_object_array_length(tl); i++) {
                struct json_object *e = json_object_array_get_idx(tl, i);
                bool current = json_object_get_boolean(jget(e, "current"));
                printf("  %-12s  %-13s %10s  %s%s\n", format_time(jint(e, "since_usec"), t, sizeof(t)), jstr(e, "state"),
                       format_duration(jint(e, "duration_usec"), dur, sizeof(dur)), jstr(e, "source"), current ? "  (now)" : "");
        }
        if (ti) {
                printf("\ntcp_info:     state %s, rtt %" PRId64 "us, rttvar %" PRId64 "us, cwnd %" PRId64 ", mss %" PRId64
                       ", retransmits %" PRId64 " (total %" PRId64 "), unacked %" PRId64 ", lost %" PRId64 "\n",
                       jstr(ti, "state"), jint(ti, "rtt_usec"), jint(ti, "rttvar_usec"), jint(ti, "snd_cwnd"), jint(ti, "snd_mss"),
                       jint(ti, "retransmits"), jint(ti, "total_retrans"), jint(ti, "unacked"), jint(ti, "lost"));
        } else
                printf("\ntcp_info:     (socket closed; the kernel still holds the connection)\n");
}

static void print_kick(struct json_object *d) {
        printf("connection %s: %s, now %s\n", jstr(d, "id"), jstr(d, "how"), jstr(d, "state"));
}

static void print_reload(struct json_object *d) {
        printf("reloaded %s: %s\n", jstr(d, "config_file"), jstr(d, "changes"));
}

static void print_stats(struct json_object *d) {
        json_object_object_foreach(d, k, v) printf("%s=%s\n", k, json_object_get_string(v));
}

static void print_log_level(struct json_object *d) {
        printf("log level: %s (was %s)\n", jstr(d, "level"), jstr(d, "previous"));
}

/* ---- verbs ---- */

static struct json_object *args_with(const char *key, const char *value) {
        struct json_object *a = json_object_new_object();
        if (value)
                json_object_object_add(a, key, json_object_new_string(value));
        return a;
}

static int verb_status(int argc, char **argv) {
        (void)argc;
        (void)argv;
        return simple("status", NULL, print_status);
}

static int verb_servers(int argc, char **argv) {
        (void)argc;
        (void)argv;
        return simple("servers", NULL, print_servers);
}

static int verb_show(int argc, char **argv) {
        (void)argc;
        return simple("show", args_with("server", argv[1]), print_show);
}

static int verb_server_action(int argc, char **argv) {
        (void)argc;
        return simple(argv[0], args_with("server", argv[1]), print_server_brief);
}

static int verb_connections(int argc, char **argv) {
        return simple("connections", args_with("server", argc > 1 ? argv[1] : NULL), print_connections);
}

static int verb_conn(int argc, char **argv) {
        (void)argc;
        return simple("conn", args_with("id", argv[1]), print_conn);
}

static int verb_kick(int argc, char **argv) {
        const char *how = "close";
        const char *id = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--how") == 0 && i + 1 < argc)
                        how = argv[++i];
                else if (strncmp(argv[i], "--how=", 6) == 0)
                        how = argv[i] + 6;
                else if (argv[i][0] == '-') {
                        fprintf(stderr, "tcpeductl kick: unknown option '%s'\n", argv[i]);
                        return EXIT_USAGE;
                } else if (!id)
                        id = argv[i];
                else {
                        fprintf(stderr, "tcpeductl kick: too many arguments\n");
                        return EXIT_USAGE;
                }
        }
        if (!id) {
                fprintf(stderr, "tcpeductl kick: missing connection ID\n");
                return EXIT_USAGE;
        }
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0) {
                fprintf(stderr, "tcpeductl kick: --how must be close, shutdown or reset, not '%s'\n", how);
                return EXIT_USAGE;
        }
        struct json_object *a = args_with("id", id);
        json_object_object_add(a, "how", json_object_new_string(how));
        return simple("kick", a, print_kick);
}

static int verb_reload(int argc, char **argv) {
        (void)argc;
        (void)argv;
        return simple("reload", NULL, print_reload);
}

static int verb_stats(int argc, char **argv) {
        (void)argc;
        (void)argv;
        return simple("stats", NULL, print_stats);
}

static void print_chat_say(struct json_object *d) {
        printf("posted to %s (%s members)\n", jstr(d, "server"), jstr(d, "members"));
}

static int verb_chat_say(int argc, char **argv) {
        (void)argc;
        struct json_object *a = args_with("server", argv[1]);
        json_object_object_add(a, "text", json_object_new_string(argv[2]));
        return simple("chat-say", a, print_chat_say);
}

static int verb_log_level(int argc, char **argv) {
        (void)argc;
        return simple("log-level", args_with("level", argv[1]), print_log_level);
}

static void on_interrupt(int sig) {
        (void)sig;
        interrupted = 1;
}

static void print_event(struct json_object *e) {
        char t[32];
        const char *event = jstr(e, "event");
        printf("%s %-12s %-10s %s\n", format_time(jint(e, "time_usec"), t, sizeof(t)), strcmp(event, "-") ? event : "log",
               jstr(e, "server"), jstr(e, "message"));
}

static int verb_monitor(int argc, char **argv) {
        const char *server = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
                        server = argv[++i];
                else if (strncmp(argv[i], "--server=", 9) == 0)
                        server = argv[i] + 9;
                else {
                        fprintf(stderr, "tcpeductl monitor: unexpected argument '%s'\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        Conn c;
        ControlReply rep;
        int r = daemon_connect(&c);
        if (r == EXIT_OK)
                r = call(&c, "monitor", args_with("server", server), &rep);
        if (r != EXIT_OK) {
                daemon_disconnect(&c);
                return r;
        }
        control_reply_done(&rep);
        struct sigaction sa = { .sa_handler = on_interrupt };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (!opts.json)
                fprintf(stderr, "Monitoring %s%s (Ctrl-C to stop)\n", server ? "server " : "all servers", server ? server : "");
        while (!interrupted) {
                char *line = NULL;
                size_t len = 0;
                r = read_line(&c, &line, &len, -1);
                if (r == -EINTR)
                        break;
                if (r < 0) {
                        fprintf(stderr, "tcpeductl monitor: connection to tcpedud lost: %s\n", strerror(-r));
                        daemon_disconnect(&c);
                        return EXIT_UNAVAILABLE;
                }
                ControlReply ev;
                struct json_object *e;
                if (control_reply_parse(line, len, &ev) == 0 && json_object_object_get_ex(ev.root, "event", &e)) {
                        if (opts.json)
                                printf("%s\n", json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                        else
                                print_event(e);
                }
                control_reply_done(&ev);
                consume_line(&c, len);
        }
        daemon_disconnect(&c);
        return EXIT_OK;
}

/* ---- client sessions ---- */

#define SEND_CHUNK (32 * 1024) /* raw bytes per session-send: the request line stays under CONTROL_LINE_MAX */
#define DATA_PREVIEW 60 /* bytes of data shown by session watch */

/* A failed session request: "tcpeductl: session ID: REASON", ID as the user wrote it. The
 * daemon's messages that name the session already are printed as they are. Frees rep. */
static int session_failed(const char *id, ControlReply *rep) {
        const char *m = rep->message;
        if (rep->code == CONTROL_ERROR_NOT_FOUND && strncmp(m, "no connection ", 14) == 0)
                fprintf(stderr, "tcpeductl: session %s: not found\n", id);
        else if (strncmp(m, "session ", 8) == 0 || strncmp(m, "connection ", 11) == 0 || strncmp(m, "cannot ", 7) == 0)
                fprintf(stderr, "tcpeductl: %s\n", m);
        else
                fprintf(stderr, "tcpeductl: session %s: %s\n", id, m);
        int code = exit_code_for(rep->code);
        control_reply_done(rep);
        return code;
}

/* A request on session id; errors are printed as by session_failed(). */
static int session_call(Conn *c, const char *id, const char *command, struct json_object *args, int timeout_ms, ControlReply *ret) {
        int r = call_full(c, command, args, timeout_ms, ret);
        if (r != EXIT_OK)
                return r;
        return ret->ok ? EXIT_OK : session_failed(id, ret);
}

static void print_json(struct json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The bytes of a reply or event: "data" (text) or "data_base64" (anything else), in a buffer to
 * free. -EBADMSG if there is neither or the base64 is invalid. */
static int get_data(struct json_object *o, uint8_t **ret, size_t *ret_len, bool *ret_text) {
        struct json_object *v;
        if (json_object_object_get_ex(o, "data", &v) && json_object_is_type(v, json_type_string)) {
                size_t n = (size_t)json_object_get_string_len(v);
                uint8_t *p = malloc(n + 1);
                if (!p)
                        return -ENOMEM;
                memcpy(p, json_object_get_string(v), n);
                *ret = p;
                *ret_len = n;
                *ret_text = true;
                return 0;
        }
        if (json_object_object_get_ex(o, "data_base64", &v) && json_object_is_type(v, json_type_string)) {
                size_t n = (size_t)json_object_get_string_len(v);
                uint8_t *p = malloc(n / 4 * 3 + 1);
                if (!p)
                        return -ENOMEM;
                ssize_t k = base64_decode(json_object_get_string(v), n, p);
                if (k < 0) {
                        free(p);
                        return -EBADMSG;
                }
                *ret = p;
                *ret_len = (size_t)k;
                *ret_text = false;
                return 0;
        }
        *ret = NULL;
        *ret_len = 0;
        *ret_text = false;
        return jint(o, "bytes") == 0 ? 0 : -EBADMSG;
}

static int verb_session_open(int argc, char **argv) {
        const char *target = NULL, *bind_s = NULL, *timeout_s = NULL;
        int64_t timeout_ms = 10000;
        SessionAddresses addrs = {};
        char *last_error = NULL;
        Conn c = { .fd = -1 };
        int r;

        const VerbOption options[] = { { "--bind", &bind_s, NULL }, { "--timeout", &timeout_s, NULL } };
        if ((r = verb_args_parse("session open", argc, argv, options, ELEMENTSOF(options), "HOST:PORT", &target)) != EXIT_OK)
                return r;
        if (timeout_s && (r = timeout_option("session open", timeout_s, 1, 600000, &timeout_ms)) != EXIT_OK)
                return r;

        r = session_addresses_resolve("session open", target, bind_s, &addrs);
        if (r != EXIT_OK)
                return r;
        r = daemon_connect(&c);
        if (r != EXIT_OK)
                goto finish;
        for (size_t i = 0; i < addrs.n_targets; i++) {
                struct json_object *a = json_object_new_object();
                json_object_object_add(a, "target", json_object_new_string(addrs.targets[i]));
                if (addrs.bind[0])
                        json_object_object_add(a, "bind", json_object_new_string(addrs.bind));
                json_object_object_add(a, "timeout_ms", json_object_new_int64(timeout_ms));
                ControlReply rep;
                r = call_full(&c, "session-open", a, (int)timeout_ms + REPLY_MARGIN_MS, &rep);
                if (r != EXIT_OK)
                        goto finish;
                if (rep.ok) {
                        if (opts.json)
                                print_json(rep.data);
                        else
                                printf("%s\n", jstr(jget(rep.data, "session"), "id"));
                        control_reply_done(&rep);
                        r = EXIT_OK;
                        goto finish;
                }
                if (rep.code != CONTROL_ERROR_CONNECT_FAILED) {
                        fprintf(stderr, "tcpeductl: %s\n", rep.message);
                        r = exit_code_for(rep.code);
                        control_reply_done(&rep);
                        goto finish;
                }
                /* Refused, unreachable, timed out: the next address may do better. */
                free(last_error);
                last_error = strdup(rep.message);
                control_reply_done(&rep);
        }
        fprintf(stderr, "tcpeductl: %s\n", last_error ? last_error : "cannot connect");
        r = EXIT_FAILED;
finish:
        free(last_error);
        session_addresses_done(&addrs);
        daemon_disconnect(&c);
        return r;
}

/* Upper bound of the length of p[0..n) as a JSON string, quotes excluded. */
static size_t json_escaped_size(const uint8_t *p, size_t n) {
        size_t s = 0;
        for (size_t i = 0; i < n; i++)
                s += p[i] < 0x20 ? 6 : p[i] == '"' || p[i] == '\\' || p[i] == '/' ? 2 : 1;
        return s;
}

/* One session-send: as "data" when the bytes are text whose JSON form fits a request line, else as
 * "data_base64". Waits for the reply: the daemon holds it back while the session's send queue is
 * full, which is the flow control. */
static int send_chunk(Conn *c, const char *id, const uint8_t *p, size_t n) {
        struct json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(id));
        if (bytes_are_text(p, n) && json_escaped_size(p, n) <= CONTROL_LINE_MAX - 1024)
                json_object_object_add(a, "data", json_object_new_string_len((const char *)p, (int)n));
        else {
                char *b = malloc(base64_encoded_size(n));
                if (!b) {
                        json_object_put(a);
                        fprintf(stderr, "tcpeductl: out of memory\n");
                        return EXIT_FAILED;
                }
                size_t l = base64_encode(p, n, b);
                json_object_object_add(a, "data_base64", json_object_new_string_len(b, (int)l));
                free(b);
        }
        ControlReply rep;
        int r = session_call(c, id, "session-send", a, -1, &rep);
        if (r != EXIT_OK)
                return r;
        if (opts.json)
                print_json(rep.data);
        control_reply_done(&rep);
        return EXIT_OK;
}

/* Bytes at the end of p[0..n) that begin a UTF-8 character and do not complete it. */
static size_t utf8_incomplete_tail(const uint8_t *p, size_t n) {
        for (size_t i = 1; i <= 3 && i <= n; i++) {
                uint8_t b = p[n - i];
                if ((b & 0xc0) == 0x80)
                        continue;
                size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
                return need > i ? i : 0;
        }
        return 0;
}

static int send_stdin(Conn *c, const char *id) {
        static uint8_t buf[SEND_CHUNK];
        size_t have = 0;
        for (;;) {
                ssize_t k = read(STDIN_FILENO, buf + have, sizeof(buf) - have);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "tcpeductl: cannot read standard input: %s\n", strerror(errno));
                        return EXIT_FAILED;
                }
                have += (size_t)k;
                /* What arrives is sent at once; only a character cut in two waits for its end. */
                size_t n = k == 0 ? have : have - utf8_incomplete_tail(buf, have);
                if (n > 0) {
                        int r = send_chunk(c, id, buf, n);
                        if (r != EXIT_OK)
                                return r;
                        memmove(buf, buf + n, have - n);
                        have -= n;
                }
                if (k == 0)
                        return EXIT_OK;
        }
}

static int verb_session_send(int argc, char **argv) {
        const char *id = NULL, *text = NULL;
        bool newline = true, options_done = false, from_stdin = false;
        for (int i = 1; i < argc; i++) {
                if (!options_done && strcmp(argv[i], "--") == 0)
                        options_done = true;
                else if (!options_done && strcmp(argv[i], "-n") == 0)
                        newline = false;
                else if (!options_done && argv[i][0] == '-' && argv[i][1] != 0)
                        return usage_error("session send", "unknown option '%s' (a TEXT that begins with '-' goes after '--')", argv[i]);
                else if (!id)
                        id = argv[i];
                else if (!text) {
                        text = argv[i];
                        from_stdin = !options_done && strcmp(text, "-") == 0;
                } else
                        return usage_error("session send", "too many arguments (quote the TEXT)");
        }
        if (!id || !text)
                return usage_error("session send", "expected ID TEXT, or ID - to send standard input");
        if (!from_stdin && !newline && !*text)
                return usage_error("session send", "nothing to send (empty TEXT with -n)");
        Conn c;
        int r = daemon_connect(&c);
        if (r == EXIT_OK && from_stdin)
                r = send_stdin(&c, id);
        else if (r == EXIT_OK) {
                size_t len = strlen(text), off = 0;
                char *line = malloc(len + 2);
                if (!line) {
                        daemon_disconnect(&c);
                        return EXIT_FAILED;
                }
                memcpy(line, text, len);
                if (newline)
                        line[len++] = '\n';
                while (r == EXIT_OK && off < len) {
                        /* Chunks end between characters: each is sent as text if the whole is. */
                        size_t n = utf8_prefix(line + off, len - off, SEND_CHUNK);
                        if (n == 0 || (len - off > SEND_CHUNK && SEND_CHUNK - n > 3))
                                n = MIN(len - off, (size_t)SEND_CHUNK);
                        r = send_chunk(&c, id, (const uint8_t *)line + off, n);
                        off += n;
                }
                free(line);
        }
        daemon_disconnect(&c);
        return r;
}

static int verb_session_recv(int argc, char **argv) {
        const char *id = NULL, *timeout_s = NULL, *bytes_s = NULL;
        int64_t timeout_ms = 5000, bytes = 0;
        bool line = false;
        int r;
        const VerbOption options[] = { { "--timeout", &timeout_s, NULL }, { "--bytes", &bytes_s, NULL }, { "--line", NULL, &line } };
        if ((r = verb_args_parse("session recv", argc, argv, options, ELEMENTSOF(options), "session ID", &id)) != EXIT_OK)
                return r;
        if (timeout_s && (r = timeout_option("session recv", timeout_s, 0, 3600000, &timeout_ms)) != EXIT_OK)
                return r;
        if (bytes_s) {
                char *end;
                errno = 0;
                long long v = strtoll(bytes_s, &end, 10);
                if (errno != 0 || end == bytes_s || *end != 0 || v < 1 || v > 1 << 20)
                        return usage_error("session recv", "--bytes must be a number from 1 to 1048576, not '%s'", bytes_s);
                bytes = v;
        }
        if (line && bytes)
                return usage_error("session recv", "give --bytes or --line, not both");

        struct json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(id));
        json_object_object_add(a, "timeout_ms", json_object_new_int64(timeout_ms));
        if (bytes)
                json_object_object_add(a, "bytes", json_object_new_int64(bytes));
        if (line)
                json_object_object_add(a, "line", json_object_new_boolean(true));
        Conn c;
        ControlReply rep;
        r = daemon_connect(&c);
        if (r == EXIT_OK)
                r = session_call(&c, id, "session-recv", a, (int)timeout_ms + REPLY_MARGIN_MS, &rep);
        else
                json_object_put(a);
        daemon_disconnect(&c);
        if (r != EXIT_OK)
                return r;

        uint8_t *data;
        size_t n;
        bool text;
        if (get_data(rep.data, &data, &n, &text) < 0) {
                fprintf(stderr, "tcpeductl: session %s: malformed data in the reply\n", id);
                control_reply_done(&rep);
                return EXIT_FAILED;
        }
        if (opts.json)
                print_json(rep.data);
        else if (n > 0 && (fwrite(data, 1, n, stdout) != n || fflush(stdout) != 0)) {
                fprintf(stderr, "tcpeductl: cannot write standard output: %s\n", strerror(errno));
                r = EXIT_FAILED;
        }
        free(data);
        bool timed_out = json_object_get_boolean(jget(rep.data, "timed_out")), eof = json_object_get_boolean(jget(rep.data, "eof"));
        control_reply_done(&rep);
        if (r != EXIT_OK)
                return r;
        if (timed_out) {
                if (timeout_ms == 0)
                        fprintf(stderr, "tcpeductl: session %s: nothing to read\n", id);
                else
                        fprintf(stderr, "tcpeductl: session %s: timed out after %g s\n", id, (double)timeout_ms / 1000.0);
                return EXIT_FAILED;
        }
        if (n == 0 && eof) {
                fprintf(stderr, "tcpeductl: session %s: the peer closed the connection\n", id);
                return EXIT_FAILED;
        }
        if (bytes && (int64_t)n < bytes) {
                fprintf(stderr, "tcpeductl: session %s: the peer closed the connection after %zu of %" PRId64 " bytes\n", id, n, bytes);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static int verb_session_close(int argc, char **argv) {
        const char *id = NULL, *how = "close";
        int r;
        const VerbOption options[] = { { "--how", &how, NULL } };
        if ((r = verb_args_parse("session close", argc, argv, options, ELEMENTSOF(options), "session ID", &id)) != EXIT_OK)
                return r;
        if (strcmp(how, "close") != 0 && strcmp(how, "shutdown") != 0 && strcmp(how, "reset") != 0)
                return usage_error("session close", "--how must be close, shutdown or reset, not '%s'", how);
        struct json_object *a = args_with("id", id);
        json_object_object_add(a, "how", json_object_new_string(how));
        Conn c;
        ControlReply rep;
        r = daemon_connect(&c);
        if (r == EXIT_OK)
                r = session_call(&c, id, "session-close", a, REPLY_TIMEOUT_MS, &rep);
        else
                json_object_put(a);
        if (r == EXIT_OK) {
                if (opts.json)
                        print_json(rep.data);
                else
                        printf("%s: %s, now %s\n", jstr(rep.data, "id"), jstr(rep.data, "how"), jstr(rep.data, "state"));
                control_reply_done(&rep);
        }
        daemon_disconnect(&c);
        return r;
}

/* Bytes as a C string literal would write them, at most max of them, then "..." if cut. Text
 * (valid UTF-8) keeps its characters; other bytes above 0x7e are written \xNN. */
static void print_escaped(const uint8_t *p, size_t n, bool text, size_t max) {
        size_t shown = n <= max ? n : text ? utf8_prefix((const char *)p, n, max) : max;
        putchar('"');
        for (size_t i = 0; i < shown; i++) {
                uint8_t b = p[i];
                switch (b) {
                case '\n':
                        fputs("\\n", stdout);
                        break;
                case '\r':
                        fputs("\\r", stdout);
                        break;
                case '\t':
                        fputs("\\t", stdout);
                        break;
                case '"':
                        fputs("\\\"", stdout);
                        break;
                case '\\':
                        fputs("\\\\", stdout);
                        break;
                default:
                        if (b < 0x20 || b == 0x7f || (b >= 0x80 && !text))
                                printf("\\x%02x", b);
                        else
                                putchar(b);
                }
        }
        putchar('"');
        if (shown < n)
                fputs("...", stdout);
}

static void print_session_event(struct json_object *e) {
        char t[32], dur[32];
        const char *event = jstr(e, "event"), *reason = jstr(e, "reason");
        bool has_reason = strcmp(reason, "-") != 0;
        int64_t usec = jint(e, "time_usec");
        if (usec <= 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        }
        printf("%s ", format_time(usec, t, sizeof(t)));
        if (strcmp(event, "transition") == 0) {
                /* Where the new state comes from: the kernel (TCP_INFO or sock_diag), a system call, or
                 * inferred from what happened (then kernel_source only says whom it asked). */
                const char *source = jstr(e, "state_source");
                printf("%s -> %s (%s", jstr(e, "old_state"), jstr(e, "new_state"), source);
                if (jget(e, "kernel_source") && strcmp(source, "inferred") != 0)
                        printf(": %s", jstr(e, "kernel_source"));
                printf(")");
                if (has_reason)
                        printf(": %s", reason);
                if (jget(e, "state_duration_usec") && strcmp(jstr(e, "old_state"), "CLOSED") != 0)
                        printf(", after %s in %s", format_duration(jint(e, "state_duration_usec"), dur, sizeof(dur)), jstr(e, "old_state"));
        } else if (strcmp(event, "data") == 0) {
                uint8_t *data;
                size_t n;
                bool text;
                if (get_data(e, &data, &n, &text) < 0)
                        printf("data %" PRId64 " bytes (malformed)", jint(e, "bytes"));
                else {
                        printf("data %zu byte%s: ", n, n == 1 ? "" : "s");
                        print_escaped(data, n, text, DATA_PREVIEW);
                        free(data);
                }
        } else if (strcmp(event, "disconnected") == 0)
                printf("disconnected: %s (%" PRId64 " bytes in, %" PRId64 " out)", has_reason ? reason : "closed", jint(e, "bytes_in"),
                       jint(e, "bytes_out"));
        else if (strcmp(event, "end") == 0)
                printf("end");
        else {
                printf("%s", event);
                if (has_reason)
                        printf(": %s", reason);
        }
        printf("\n");
}

static int verb_session_watch(int argc, char **argv) {
        const char *id = argv[1];
        (void)argc;
        Conn c;
        ControlReply rep;
        int r = daemon_connect(&c);
        if (r == EXIT_OK)
                r = session_call(&c, id, "session-watch", args_with("id", id), REPLY_TIMEOUT_MS, &rep);
        if (r != EXIT_OK) {
                daemon_disconnect(&c);
                return r;
        }
        struct json_object *s = jget(rep.data, "session");
        if (!opts.json)
                fprintf(stderr, "Watching session %s: %s from %s, %s (Ctrl-C to stop)\n", jstr(s, "id"), jstr(s, "peer"), jstr(s, "local"),
                        jstr(s, "state"));
        control_reply_done(&rep);
        struct sigaction sa = { .sa_handler = on_interrupt };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        bool end = false;
        while (!interrupted && !end) {
                char *line = NULL;
                size_t len = 0;
                r = read_line(&c, &line, &len, -1);
                if (r == -EINTR)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "tcpeductl: session %s: connection to tcpedud lost: %s\n", id,
                                r == -ECONNRESET ? "the daemon closed it" : strerror(-r));
                        daemon_disconnect(&c);
                        return EXIT_UNAVAILABLE;
                }
                ControlReply ev;
                struct json_object *e;
                if (control_reply_parse(line, len, &ev) == 0 && json_object_object_get_ex(ev.root, "event", &e)) {
                        if (opts.json)
                                print_json(e);
                        else
                                print_session_event(e);
                        end = strcmp(jstr(e, "event"), "end") == 0;
                }
                control_reply_done(&ev);
                consume_line(&c, len);
        }
        daemon_disconnect(&c);
        return EXIT_OK;
}

static int verb_sessions(int argc, char **argv) {
        (void)argc;
        (void)argv;
        return simple("sessions", NULL, print_sessions);
}

/* connect and chat live in interactive.c; they get the socket path and their own arguments. */
static int verb_interactive(int argc, char **argv) {
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        int r = find_socket(path, sizeof(path));
        if (r != EXIT_OK)
                return r;
        /* The verb's own option parsing starts afresh, as in a new program. */
        optind = 0;
        opterr = 1;
        return strcmp(argv[0], "chat") == 0 ? interactive_chat(argc, argv, path) : interactive_connect(argc, argv, path);
}

static void print_diagram(void) {
        printf("TCP connection states (RFC 793, figure 6), as tcpedud logs them:\n\n"
               "                              +---------+\n"
               "                              | CLOSED  |\n"
               "                              +---------+\n"
               "             passive open:       |    |      active open:\n"
               "             listen()            |    |      connect() sends SYN\n"
               "                    +------------+    +-------------+\n"
               "                    v                               v\n"
               "              +---------+                     +----------+\n"
               "              | LISTEN  |                     | SYN_SENT |\n"
               "              +---------+                     +----------+\n"
               "      rcv SYN, send  |                               | rcv SYN-ACK,\n"
               "      SYN-ACK        v                               | send ACK\n"
               "           +--------------+   rcv ACK of SYN         |\n"
               "           | SYN_RECEIVED |---------------+          |\n"
               "           +--------------+               v          v\n"
               "                                      +-------------+\n"
               "                                      | ESTABLISHED |\n"
               "                                      +-------------+\n"
               "              this side closes first:   |          |   the peer closes first:\n"
               "              send FIN                  v          v   rcv FIN, send ACK\n"
               "                             +------------+     +------------+\n"
               "                             | FIN_WAIT_1 |     | CLOSE_WAIT |\n"
               "                             +------------+     +------------+\n"
               "          rcv ACK of FIN |        | rcv FIN            | close(): send FIN\n"
               "                         v        v                    v\n"
               "              +------------+  +---------+        +----------+\n"
               "              | FIN_WAIT_2 |  | CLOSING |        | LAST_ACK |\n"
               "              +------------+  +---------+        +----------+\n"
               "         rcv FIN, |              | rcv ACK           | rcv ACK of FIN\n"
               "         send ACK v              v                   v\n"
               "              +-------------------+            +---------+\n"
               "              |     TIME_WAIT     |----------->| CLOSED  |\n"
               "              +-------------------+  2*MSL     +---------+\n"
               "                                     (60 s on Linux)\n"
               "\nA reset (RST) takes any synchronized state straight to CLOSED.\n"
               "'tcpeductl explain STATE' tells more about one state.\n");
}

static int verb_explain(int argc, char **argv) {
        if (argc < 2) {
                print_diagram();
                return EXIT_OK;
        }
        TcpState s = tcp_state_from_string(argv[1]);
        if (s < 0) {
                fprintf(stderr, "tcpeductl explain: unknown state '%s' (known:", argv[1]);
                for (int i = 0; i < _TCP_STATE_MAX; i++)
                        fprintf(stderr, " %s", tcp_state_to_string((TcpState)i));
                fprintf(stderr, ")\n");
                return EXIT_USAGE;
        }
        const TcpStateInfo *info = tcp_state_info(s);
        size_t n;
        const TcpTransition *t = tcp_transitions(&n);
        printf("%s\n  %s\n  Who passes through it: %s.\n\n  Entered from:\n", info->name, info->meaning, info->who);
        for (size_t i = 0; i < n; i++)
                if (t[i].to == s)
                        printf("    %-13s when %s\n", tcp_state_to_string(t[i].from), t[i].event);
        printf("\n  Left for:\n");
        for (size_t i = 0; i < n; i++)
                if (t[i].from == s)
                        printf("    %-13s when %s\n", tcp_state_to_string(t[i].to), t[i].event);
        return EXIT_OK;
}

static const Verb verbs[] = {
        { "status", "", "show the daemon's version, uptime, servers and counters", 0, 0, verb_status },
        { "servers", "", "list servers with addresses, state, counts and refusals", 0, 0, verb_servers },
        { "show", "SERVER", "show one server in detail", 1, 1, verb_show },
        { "start", "SERVER", "start a stopped server (until the daemon restarts)", 1, 1, verb_server_action },
        { "stop", "SERVER", "stop a server: close its listeners and connections", 1, 1, verb_server_action },
        { "restart", "SERVER", "stop and start a server", 1, 1, verb_server_action },
        { "connections", "[SERVER]", "list connections with their TCP state and the kernel's", 0, 1, verb_connections },
        { "conn", "ID", "show a connection's state timeline and TCP_INFO", 1, 1, verb_conn },
        { "kick", "ID [--how close|shutdown|reset]", "close a connection: FIN (default), half-close, or RST", 1, 3, verb_kick, true },
        { "reload", "", "reload the configuration and wait for the result", 0, 0, verb_reload },
        { "monitor", "[--server NAME]", "stream events live until interrupted", 0, 2, verb_monitor, true },
        { "stats", "", "print counters as key=value lines", 0, 0, verb_stats },
        { "log-level", "LEVEL", "set the daemon's log level (emerg ... debug)", 1, 1, verb_log_level },
        { "chat-say", "SERVER TEXT", "post a server notice to a chat room", 2, 2, verb_chat_say },
        { "explain", "[STATE]", "explain a TCP state, or draw the state diagram (no daemon needed)", 0, 1, verb_explain },
        { "session open", "HOST:PORT [--bind ADDR[:PORT]] [--timeout S]",
          "open a TCP connection from the daemon (a client session); print its ID", 1, 1, verb_session_open, true },
        { "session send", "ID TEXT|- [-n]", "send TEXT and a newline (-n: without), or standard input with -", 2, 2, verb_session_send,
          true },
        { "session recv", "ID [--timeout S] [--bytes N | --line]", "receive what the session got and write it to standard output", 1, 1,
          verb_session_recv, true },
        { "session close", "ID [--how close|shutdown|reset]", "close a session: FIN (default), half-close, or RST", 1, 1,
          verb_session_close, true },
        { "session watch", "ID", "stream a session's transitions, data and events until it ends", 1, 1, verb_session_watch },
        { "sessions", "", "list client sessions with their owner and buffered bytes", 0, 0, verb_sessions },
        { "connect", "HOST:PORT [--bind ADDR] [--timeout S] [-v]", "an interactive client like nc, through a daemon session", 1, 1,
          verb_interactive, true },
        { "chat", "HOST:PORT --user NAME", "an interactive chat client for a JSON chat server", 1, 1, verb_interactive, true },
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void print_verb_line(FILE *f, const Verb *v) {
        char line[160];
        snprintf(line, sizeof(line), "%s %s", v->name, v->args);
        if (strlen(line) <= 40)
                fprintf(f, "  %-40s %s\n", line, v->help);
        else
                fprintf(f, "  %s\n  %-40s %s\n", line, "", v->help);
}

static void help(FILE *f) {
        fprintf(f, "Usage: tcpeductl [OPTIONS] VERB [ARGS]\n\n"
                   "Control tcpedud(8) over its control socket.\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                print_verb_line(f, &verbs[i]);
        fprintf(f, "\nOptions:\n"
                   "  -s, --socket=PATH   control socket (default: control_socket from the daemon's\n"
                   "                      config, else /run/tcpedud/control.sock for root,\n"
                   "                      $XDG_RUNTIME_DIR/tcpedud/control.sock otherwise, falling\n"
                   "                      back to the system daemon's socket when that has none;\n"
                   "                      TCPEDU_CONTROL_SOCKET takes precedence over all of these)\n"
                   "  -c, --config=FILE   the daemon's config file to read control_socket from\n"
                   "  -j, --json          print the daemon's data as JSON (monitor, session watch: one\n"
                   "                      event per line)\n"
                   "  -h, --help          show this help (VERB --help: help on one verb)\n"
                   "      --version       show the version\n"
                   "\nExit status: 0 success, 1 the command failed, 64 usage error, 69 daemon not\n"
                   "reachable, 77 permission denied, 78 configuration rejected.\n");
}

static void session_help(FILE *f) {
        fprintf(f, "Usage: tcpeductl [OPTIONS] session open|send|recv|close|watch ARGS\n\n"
                   "Client sessions: TCP connections that tcpedud opens and tracks for you.\n\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strncmp(verbs[i].name, "session ", 8) == 0)
                        print_verb_line(f, &verbs[i]);
        fprintf(f, "\n'tcpeductl session VERB --help' tells more about one of them; 'tcpeductl sessions' lists them.\n");
}

static void verb_help(const Verb *v) {
        printf("Usage: tcpeductl [OPTIONS] %s %s\n\n%s.\n", v->name, v->args, v->help);
        if (strcmp(v->name, "kick") == 0 || strcmp(v->name, "session close") == 0)
                printf("\n  --how close     send FIN, wait up to 5 s for the peer's FIN, then reset (default)\n"
                       "  --how shutdown  half-close: send FIN and keep receiving until the peer closes\n"
                       "  --how reset     send RST at once (SO_LINGER 0)\n");
        if (strcmp(v->name, "session close") == 0)
                printf("\nPrints \"ID: HOW, now STATE\". A session in CLOSE_WAIT (the peer closed first)\n"
                       "stays there until it is closed: then it sends its FIN and goes to LAST_ACK.\n");
        if (strcmp(v->name, "monitor") == 0)
                printf("\n  --server NAME   only events of this server\n");
        if (strcmp(v->name, "start") == 0 || strcmp(v->name, "stop") == 0 || strcmp(v->name, "restart") == 0)
                printf("\nThe change lasts until the daemon restarts: the configuration stays the source\n"
                       "of truth, and a reload leaves a server's runtime state alone unless its section changed.\n");
        if (strcmp(v->name, "session open") == 0)
                printf("\n  --bind ADDR[:PORT]  connect from this local address (port 0 or none: any)\n"
                       "  --timeout S         give up when there is no answer within S seconds\n"
                       "                      (decimals allowed, 0.001 to 600; default 10)\n"
                       "\nHOST may be a name: each of its addresses is tried in turn until one connects.\n"
                       "IPv6 addresses are written [ADDR]:PORT. Prints the session's ID once it is\n"
                       "established (ID=$(tcpeductl session open ...)); exits with 1 if it cannot connect.\n"
                       "The session stays open after tcpeductl exits, until 'session close' or its idle timeout.\n");
        if (strcmp(v->name, "session send") == 0)
                printf("\n  -n    send TEXT exactly, without the newline\n"
                       "  -     send standard input byte for byte until its end (binary safe)\n"
                       "  --    what follows is TEXT even if it begins with '-'\n"
                       "\nEach piece waits for the daemon's answer, which waits while more than\n"
                       "session_buffer bytes are not yet sent to the peer. Prints nothing on success.\n");
        if (strcmp(v->name, "session recv") == 0)
                printf("\n  --timeout S   wait at most S seconds (decimals allowed, 0 to 3600; default 5)\n"
                       "  --bytes N     wait for exactly N bytes\n"
                       "  --line        wait for one line (its newline included)\n"
                       "\nWithout --bytes or --line, takes whatever has arrived, waiting for at least one\n"
                       "byte. The bytes go to standard output as they are. Exits with 1 on a timeout,\n"
                       "or when the peer closed the connection and there was nothing (or, with --bytes,\n"
                       "not enough) to read.\n");
        if (strcmp(v->name, "session watch") == 0)
                printf("\nOne line per event, with the time: state transitions, connected, data (escaped\n"
                       "and cut), peer-closed, disconnected, error, and end, when the kernel released the\n"
                       "connection (after TIME_WAIT, 60 s after an active close). The watcher receives\n"
                       "the session's data: 'session recv' is refused meanwhile.\n");
        if (strcmp(v->name, "connect") == 0)
                printf("\n  --bind ADDR[:PORT]  connect from this local address\n"
                       "  --timeout S         connect timeout in seconds (default 10)\n"
                       "  -v                  print the session's transitions and events on standard error\n"
                       "\nStandard input goes to the peer byte for byte and what arrives goes to standard\n"
                       "output; the end of standard input half-closes the connection (FIN). Exits with 0\n"
                       "once the peer has closed and everything it sent is written, with 1 if the connect\n"
                       "fails or the connection is reset.\n");
        if (strcmp(v->name, "chat") == 0)
                printf("\n  --user NAME         join as NAME\n"
                       "  --bind ADDR[:PORT]  connect from this local address\n"
                       "  --timeout S         connect timeout in seconds (default 10)\n"
                       "\nLines typed are sent as messages; /users lists who is there; /quit (or the end\n"
                       "of input) leaves.\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "config", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },      {},
        };
        int c;

        opterr = 0;
        /* Stop at the verb: what follows belongs to it. */
        while ((c = getopt_long(argc, argv, "+:s:c:jh", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        opts.socket_path = optarg;
                        break;
                case 'c':
                        opts.config_path = optarg;
                        break;
                case 'j':
                        opts.json = true;
                        break;
                case 'h':
                        help(stdout);
                        return EXIT_OK;
                case 'V':
                        printf("tcpeductl " TCPEDU_VERSION " (control protocol %d)\n", CONTROL_PROTOCOL_VERSION);
                        return EXIT_OK;
                case ':':
                        fprintf(stderr, "tcpeductl: option '%s' needs an argument\nTry 'tcpeductl --help'.\n", argv[optind - 1]);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "tcpeductl: unknown option '%s'\nTry 'tcpeductl --help'.\n", argv[optind - 1]);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                help(stderr);
                return EXIT_USAGE;
        }
        /* "session VERB" is one verb of two words. */
        char name[64];
        int first = optind;
        snprintf(name, sizeof(name), "%s", argv[optind]);
        if (strcmp(argv[optind], "session") == 0) {
                const char *sub = optind + 1 < argc ? argv[optind + 1] : NULL;
                if (!sub || sub[0] == '-') {
                        bool asked = sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
                        session_help(asked ? stdout : stderr);
                        return asked ? EXIT_OK : EXIT_USAGE;
                }
                if ((size_t)snprintf(name, sizeof(name), "session %s", sub) >= sizeof(name) || !find_verb(name)) {
                        fprintf(stderr,
                                "tcpeductl: unknown verb 'session %s' (session open, send, recv, close or watch)\n"
                                "Try 'tcpeductl session --help'.\n",
                                sub);
                        return EXIT_USAGE;
                }
                first = optind + 1;
        }
        const Verb *v = find_verb(name);
        if (!v) {
                fprintf(stderr, "tcpeductl: unknown verb '%s'\nTry 'tcpeductl --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }
        int vargc = argc - first;
        char **vargv = argv + first;
        /* Options are accepted after the verb too: tcpeductl status --json. After "--" everything
         * is the verb's, as it is. */
        int kept = 1;
        for (int i = 1; i < vargc; i++) {
                if (strcmp(vargv[i], "--") == 0) {
                        while (i < vargc)
                                vargv[kept++] = vargv[i++];
                        break;
                }
                if (strcmp(vargv[i], "--help") == 0 || strcmp(vargv[i], "-h") == 0) {
                        verb_help(v);
                        return EXIT_OK;
                }
                if (strcmp(vargv[i], "--json") == 0 || strcmp(vargv[i], "-j") == 0)
                        opts.json = true;
                else if ((strcmp(vargv[i], "-s") == 0 || strcmp(vargv[i], "--socket") == 0) && i + 1 < vargc)
                        opts.socket_path = vargv[++i];
                else if (strncmp(vargv[i], "--socket=", 9) == 0)
                        opts.socket_path = vargv[i] + 9;
                else if ((strcmp(vargv[i], "-c") == 0 || strcmp(vargv[i], "--config") == 0) && i + 1 < vargc)
                        opts.config_path = vargv[++i];
                else if (strncmp(vargv[i], "--config=", 9) == 0)
                        opts.config_path = vargv[i] + 9;
                else
                        vargv[kept++] = vargv[i];
        }
        vargc = kept;
        vargv[vargc] = NULL;
        int positional = 0;
        for (int i = 1; i < vargc; i++)
                if (vargv[i][0] != '-' || strcmp(vargv[i], "-") == 0)
                        positional++;
        if (!v->own_options && (positional < v->min_args || positional > v->max_args || positional != vargc - 1)) {
                fprintf(stderr, "tcpeductl %s: expected %s%s\nTry 'tcpeductl %s --help'.\n", v->name, v->args[0] ? v->args : "no arguments",
                        positional > v->max_args ? " (too many arguments)" : "", v->name);
                return EXIT_USAGE;
        }
        return v->run(vargc, vargv);
}
