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

#include "config.h"
#include "control-proto.h"
#include "macro.h"
#include "tcp-state.h"

/* Exit codes, from sysexits.h where one fits. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 64,
        EXIT_UNAVAILABLE = 69,
        EXIT_PERMISSION = 77,
        EXIT_CONFIG_REJECTED = 78,
};

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

static int daemon_connect(Conn *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *line = NULL;
        size_t len = 0;

        *c = (Conn){ .fd = -1, .next_id = 1 };
        bool by_default;
        int r = resolve_socket(c->path, sizeof(c->path), &by_default);
        /* A user without a daemon of their own most likely means the system's. */
        if (by_default && geteuid() != 0 && (r < 0 || access(c->path, F_OK) < 0) && access(SYSTEM_SOCKET, F_OK) == 0) {
                snprintf(c->path, sizeof(c->path), "%s", SYSTEM_SOCKET);
                r = 0;
        }
        if (r < 0) {
                fprintf(stderr, "tcpeductl: no control socket path: %s (use -s PATH or TCPEDU_CONTROL_SOCKET)\n",
                        r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long");
                return EXIT_UNAVAILABLE;
        }
        if (strlen(c->path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tcpeductl: control socket path too long: %s\n", c->path);
                return EXIT_UNAVAILABLE;
        }
        memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "tcpeductl: cannot reach tcpedud at %s: %s\n", c->path, strerror(errno));
                return EXIT_UNAVAILABLE;
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

static int exit_code_for(ControlError e) {
        switch (e) {
        case CONTROL_ERROR_PERMISSION_DENIED:
                return EXIT_PERMISSION;
        case CONTROL_ERROR_CONFIG_REJECTED:
                return EXIT_CONFIG_REJECTED;
        case CONTROL_ERROR_BAD_REQUEST:
        case CONTROL_ERROR_UNKNOWN_COMMAND:
                return EXIT_USAGE;
        default:
                return EXIT_FAILED;
        }
}

/* Send a request and wait for its reply. On success *ret holds the reply (free with
 * control_reply_done) and the exit code is 0; on a daemon error, the message is printed. */
static int call(Conn *c, const char *command, struct json_object *args, ControlReply *ret) {
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
                        fprintf(stderr, "tcpeductl: lost tcpedud at %s: %s\n", c->path, strerror(errno));
                        free(line);
                        return EXIT_UNAVAILABLE;
                }
                off += (size_t)n;
        }
        free(line);

        for (;;) {
                char *l = NULL;
                size_t n = 0;
                int r = read_line(c, &l, &n, 120000);
                if (r < 0) {
                        fprintf(stderr, "tcpeductl: no reply from tcpedud at %s: %s\n", c->path, strerror(-r));
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
                if (!rep.ok) {
                        struct json_object *details, *errors;
                        fprintf(stderr, "tcpeductl %s: %s\n", command, rep.message);
                        if (json_object_object_get_ex(rep.data, "details", &details) &&
                            json_object_object_get_ex(details, "errors", &errors))
                                for (size_t i = 0; i < json_object_array_length(errors); i++)
                                        fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errors, i)));
                        int code = exit_code_for(rep.code);
                        control_reply_done(&rep);
                        return code;
                }
                *ret = rep;
                return EXIT_OK;
        }
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
        printf("connections:  %" PRId64 " open, %" PRId64 " lingering in the kernel\n", jint(d, "connections"), jint(d, "lingering"));
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

static void print_connections(struct json_object *d) {
        struct json_object *conns = jget(d, "connections");
        char age[32];
        printf("%-36s %-12s %-24s %-12s %-11s %8s %12s %12s\n", "ID", "SERVER", "PEER", "STATE", "KERNEL", "AGE", "BYTES_IN", "BYTES_OUT");
        for (size_t i = 0; conns && i < json_object_array_length(conns); i++) {
                struct json_object *c = json_object_array_get_idx(conns, i);
                printf("%-36s %-12s %-24s %-12s %-11s %8s %12" PRId64 " %12" PRId64 "\n", jstr(c, "id"), jstr(c, "server"), jstr(c, "peer"),
                       jstr(c, "state"), jstr(c, "kernel_state"), format_duration(jint(c, "age_usec"), age, sizeof(age)),
                       jint(c, "bytes_in"), jint(c, "bytes_out"));
        }
        if (!conns || json_object_array_length(conns) == 0)
                printf("(no connections)\n");
}

static void print_conn(struct json_object *c) {
        char t[32], dur[32];
        struct json_object *tl = jget(c, "timeline"), *ti = jget(c, "tcp_info");
        printf("connection:   %s\nserver:       %s (%s)\npeer:         %s\nlocal:        %s\n", jstr(c, "id"), jstr(c, "server"),
               jstr(c, "role"), jstr(c, "peer"), jstr(c, "local"));
        printf("state:        %s (kernel: %s, via %s)\n", jstr(c, "state"), jstr(c, "kernel_state"), jstr(c, "kernel_source"));
        printf("bytes:        %" PRId64 " in, %" PRId64 " out\n", jint(c, "bytes_in"), jint(c, "bytes_out"));
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

static volatile sig_atomic_t interrupted;

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
        { "kick", "ID [--how close|shutdown|reset]", "close a connection: FIN (default), half-close, or RST", 1, 3, verb_kick },
        { "reload", "", "reload the configuration and wait for the result", 0, 0, verb_reload },
        { "monitor", "[--server NAME]", "stream events live until interrupted", 0, 2, verb_monitor },
        { "stats", "", "print counters as key=value lines", 0, 0, verb_stats },
        { "log-level", "LEVEL", "set the daemon's log level (emerg ... debug)", 1, 1, verb_log_level },
        { "chat-say", "SERVER TEXT", "post a server notice to a chat room", 2, 2, verb_chat_say },
        { "explain", "[STATE]", "explain a TCP state, or draw the state diagram (no daemon needed)", 0, 1, verb_explain },
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void help(FILE *f) {
        fprintf(f, "Usage: tcpeductl [OPTIONS] VERB [ARGS]\n\n"
                   "Control tcpedud(8) over its control socket.\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char v[64];
                snprintf(v, sizeof(v), "%s %s", verbs[i].name, verbs[i].args);
                fprintf(f, "  %-40s %s\n", v, verbs[i].help);
        }
        fprintf(f, "\nOptions:\n"
                   "  -s, --socket=PATH   control socket (default: control_socket from the daemon's\n"
                   "                      config, else /run/tcpedud/control.sock for root,\n"
                   "                      $XDG_RUNTIME_DIR/tcpedud/control.sock otherwise, falling\n"
                   "                      back to the system daemon's socket when that has none;\n"
                   "                      TCPEDU_CONTROL_SOCKET takes precedence over all of these)\n"
                   "  -c, --config=FILE   the daemon's config file to read control_socket from\n"
                   "  -j, --json          print the daemon's data as JSON (monitor: one event per line)\n"
                   "  -h, --help          show this help (VERB --help: help on one verb)\n"
                   "      --version       show the version\n"
                   "\nExit status: 0 success, 1 the command failed, 64 usage error, 69 daemon not\n"
                   "reachable, 77 permission denied, 78 configuration rejected.\n");
}

static void verb_help(const Verb *v) {
        printf("Usage: tcpeductl [OPTIONS] %s %s\n\n%s.\n", v->name, v->args, v->help);
        if (strcmp(v->name, "kick") == 0)
                printf("\n  --how close     send FIN, wait up to 5 s for the peer's FIN, then reset (default)\n"
                       "  --how shutdown  half-close: send FIN and keep receiving until the peer closes\n"
                       "  --how reset     send RST at once (SO_LINGER 0)\n");
        if (strcmp(v->name, "monitor") == 0)
                printf("\n  --server NAME   only events of this server\n");
        if (strcmp(v->name, "start") == 0 || strcmp(v->name, "stop") == 0 || strcmp(v->name, "restart") == 0)
                printf("\nThe change lasts until the daemon restarts: the configuration stays the source\n"
                       "of truth, and a reload leaves a server's runtime state alone unless its section changed.\n");
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
        const Verb *v = find_verb(argv[optind]);
        if (!v) {
                fprintf(stderr, "tcpeductl: unknown verb '%s'\nTry 'tcpeductl --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }
        int vargc = argc - optind;
        char **vargv = argv + optind;
        /* Options are accepted after the verb too: tcpeductl status --json. */
        int kept = 1;
        for (int i = 1; i < vargc; i++) {
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
        int positional = 0;
        for (int i = 1; i < vargc; i++)
                if (vargv[i][0] != '-' || strcmp(vargv[i], "-") == 0)
                        positional++;
        if (v->run != verb_kick && v->run != verb_monitor &&
            (positional < v->min_args || positional > v->max_args || positional != vargc - 1)) {
                fprintf(stderr, "tcpeductl %s: expected %s%s\nTry 'tcpeductl %s --help'.\n", v->name, v->args[0] ? v->args : "no arguments",
                        positional > v->max_args ? " (too many arguments)" : "", v->name);
                return EXIT_USAGE;
        }
        return v->run(vargc, vargv);
}
