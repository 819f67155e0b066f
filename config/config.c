/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"

typedef enum SectionKind {
        SECTION_NONE,
        SECTION_DAEMON,
        SECTION_SERVER,
        SECTION_BAD, /* an unknown or malformed header: its keys are skipped, the header was reported */
} SectionKind;

typedef enum KeyType {
        KEY_STRING,
        KEY_BOOL,
        KEY_UINT,
        KEY_SIZE,
        KEY_SECONDS,
        KEY_LOG_TRANSITIONS,
        KEY_LOG_LEVEL,
        KEY_SERVER_TYPE,
        KEY_LISTEN,
        KEY_CHAT_PROTOCOL,
        KEY_HANDLER,
} KeyType;

#define TYPES_ALL 0u
#define TYPE_BIT(t) (1u << (t))

typedef struct ConfigKey {
        SectionKind section;
        const char *name;
        KeyType type;
        size_t offset;
        size_t size; /* for strings: buffer size */
        uint64_t min, max;
        const char *def; /* NULL: required */
        const char *help;
        unsigned types; /* server keys: the types it applies to (TYPES_ALL: every type) */
} ConfigKey;

#define D(field) offsetof(DaemonConfig, field), sizeof(((DaemonConfig *)0)->field)
#define S(field) offsetof(ServerConfig, field), sizeof(((ServerConfig *)0)->field)

/* The one list of keys: parsing, defaults, range checks and --dump-config all read it. */
static const ConfigKey key_table[] = {
        { SECTION_DAEMON, "control_socket", KEY_STRING, D(control_socket), 0, 0, "",
          "path of the control socket; empty: /run/tcpedud/control.sock for root, $XDG_RUNTIME_DIR/tcpedud/control.sock otherwise" },
        { SECTION_DAEMON, "admin_group", KEY_STRING, D(admin_group), 0, 0, "",
          "group whose members may use every control command; empty: root and the daemon's own user only" },
        { SECTION_DAEMON, "log_transitions", KEY_LOG_TRANSITIONS, D(log_transitions), 0, 0, "all",
          "all: one journal entry per state transition; summary: one per connection; off: none" },
        { SECTION_DAEMON, "max_connections", KEY_UINT, D(max_connections), 1, 1000000, "10000", "connections over all servers" },
        { SECTION_DAEMON, "log_level", KEY_LOG_LEVEL, D(log_level), 0, 7, "info",
          "emerg, alert, crit, err, warning, notice, info or debug" },
        { SECTION_DAEMON, "max_sessions", KEY_UINT, D(max_sessions), 0, 10000, "64",
          "client sessions opened with tcpeductl session open, connect or chat; 0: none" },
        { SECTION_DAEMON, "session_buffer", KEY_SIZE, D(session_buffer), 4096, 64 << 20, "1M",
          "received data a session holds until it is read; when full the daemon stops reading" },
        { SECTION_DAEMON, "session_idle_timeout", KEY_SECONDS, D(session_idle_timeout), 0, 604800, "300",
          "close a session with no traffic for this long; 0: never" },
        { SECTION_DAEMON, "user", KEY_STRING, D(user), 0, 0, "",
          "started as root: the user to switch to once the sockets are open; empty: tcpedu if that user exists; root: stay root" },
        { SECTION_DAEMON, "group", KEY_STRING, D(group), 0, 0, "",
          "started as root: the group to switch to; empty: the user's primary group" },

        { SECTION_SERVER, "type", KEY_SERVER_TYPE, S(type), 0, 0, NULL, "echo" },
        { SECTION_SERVER, "listen", KEY_LISTEN, S(listen), 1, LISTEN_MAX, NULL,
          "comma-separated ADDR:PORT, IPv6 as [ADDR]:PORT; port 0 picks a free port" },
        { SECTION_SERVER, "autostart", KEY_BOOL, S(autostart), 0, 1, "yes", "start with the daemon" },
        { SECTION_SERVER, "backlog", KEY_UINT, S(backlog), 1, 65535, "511", "listen() backlog" },
        { SECTION_SERVER, "max_clients", KEY_UINT, S(max_clients), 1, 1000000, "1024", "connections to this server" },
        { SECTION_SERVER, "max_clients_per_ip", KEY_UINT, S(max_clients_per_ip), 0, 1000000, "0",
          "connections from one address; 0: no limit" },
        { SECTION_SERVER, "idle_timeout", KEY_SECONDS, S(idle_timeout), 0, 604800, "300",
          "seconds without data before the daemon closes a connection; 0: never" },
        { SECTION_SERVER, "buffer_size", KEY_SIZE, S(buffer_size), 1024, 64 << 20, "64K",
          "unsent output per connection before the daemon stops reading it (K, M suffixes)" },
        { SECTION_SERVER, "max_message", KEY_SIZE, S(max_message), 64, 1 << 20, "4096",
          "bytes per message (a line or a JSON object); a longer one gets an error and is discarded",
          TYPE_BIT(SERVER_TYPE_ENHANCED) | TYPE_BIT(SERVER_TYPE_CHAT) },
        { SECTION_SERVER, "line_timeout", KEY_SECONDS, S(line_timeout), 0, 3600, "30",
          "seconds a client may keep a message incomplete before it is disconnected; 0: no limit",
          TYPE_BIT(SERVER_TYPE_ENHANCED) | TYPE_BIT(SERVER_TYPE_CHAT) },
        { SECTION_SERVER, "handler", KEY_HANDLER, S(handler), 0, 0, HANDLER_JSON_COMMANDS,
          "json-commands, or the absolute path of a handler plug-in (.so)", TYPE_BIT(SERVER_TYPE_ENHANCED) },
        { SECTION_SERVER, "protocol", KEY_CHAT_PROTOCOL, S(protocol), 0, 0, "auto",
          "auto (JSON if the first byte is '{', else lines), json or line", TYPE_BIT(SERVER_TYPE_CHAT) },
        { SECTION_SERVER, "history", KEY_UINT, S(history), 0, 1000, "20", "messages a new member receives first",
          TYPE_BIT(SERVER_TYPE_CHAT) },
        { SECTION_SERVER, "max_queue", KEY_SIZE, S(max_queue), 4096, 256 << 20, "1M",
          "output queued for one member before it is disconnected", TYPE_BIT(SERVER_TYPE_CHAT) },
        { SECTION_SERVER, "max_rate", KEY_UINT, S(max_rate), 0, 100000, "20",
          "messages a second from one member before it is cut off; 0: no limit", TYPE_BIT(SERVER_TYPE_CHAT) },
};

static const char *const log_transitions_names[_LOG_TRANSITIONS_MAX] = { "all", "summary", "off" };
static const char *const server_type_names[_SERVER_TYPE_MAX] = { "echo", "enhanced", "chat" };
static const char *const chat_protocol_names[_CHAT_PROTOCOL_MAX] = { "auto", "json", "line" };

const char *chat_protocol_to_string(int p) {
        return p >= 0 && p < _CHAT_PROTOCOL_MAX ? chat_protocol_names[p] : NULL;
}
static const char *const log_level_names[8] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

const char *server_type_to_string(int t) {
        return t >= 0 && t < _SERVER_TYPE_MAX ? server_type_names[t] : NULL;
}

int server_type_from_string(const char *s) {
        for (int i = 0; i < _SERVER_TYPE_MAX; i++)
                if (strcmp(s, server_type_names[i]) == 0)
                        return i;
        return _SERVER_TYPE_INVALID;
}

const char *log_transitions_to_string(int t) {
        return t >= 0 && t < _LOG_TRANSITIONS_MAX ? log_transitions_names[t] : NULL;
}

const char *log_level_to_string(int level) {
        return level >= 0 && level < 8 ? log_level_names[level] : NULL;
}

int log_level_from_string(const char *s) {
        for (int i = 0; i < 8; i++)
                if (strcasecmp(s, log_level_names[i]) == 0)
                        return i;
        if (strcasecmp(s, "error") == 0)
                return 3;
        if (strcasecmp(s, "warn") == 0)
                return 4;
        return -EINVAL;
}

/* ---- errors ---- */

void config_errors_add(ConfigErrors *e, const char *file, unsigned line, const char *fmt, ...) {
        char msg[512], *s = NULL;
        va_list ap;

        if (e->n >= CONFIG_ERRORS_MAX) {
                e->suppressed++;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        int r = line > 0 ? asprintf(&s, "%s:%u: %s", file, line, msg) : asprintf(&s, "%s: %s", file, msg);
        if (r < 0)
                return;
        char **n = realloc(e->lines, (e->n + 1) * sizeof(char *));
        if (!n) {
                free(s);
                return;
        }
        e->lines = n;
        e->lines[e->n++] = s;
}

void config_errors_clear(ConfigErrors *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->lines[i]);
        free(e->lines);
        *e = (ConfigErrors){};
}

void config_errors_print(const ConfigErrors *e, FILE *f) {
        for (size_t i = 0; i < e->n; i++)
                fprintf(f, "%s\n", e->lines[i]);
        if (e->suppressed)
                fprintf(f, "(%zu more errors not shown)\n", e->suppressed);
}

/* ---- value parsers: each returns 0 or writes a reason to *why ---- */

static int parse_uint(const char *v, uint64_t *ret) {
        uint64_t x = 0;
        if (!*v)
                return -EINVAL;
        for (const char *p = v; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (x > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                x = x * 10 + (uint64_t)(*p - '0');
        }
        *ret = x;
        return 0;
}

static int parse_with_suffix(const char *v, const char *const *suffixes, const uint64_t *factors, size_t n, uint64_t *ret) {
        char num[32];
        size_t i = 0;
        while (v[i] >= '0' && v[i] <= '9' && i < sizeof(num) - 1) {
                num[i] = v[i];
                i++;
        }
        num[i] = 0;
        const char *suffix = v + i;
        while (*suffix == ' ')
                suffix++;
        uint64_t x;
        int r = parse_uint(num, &x);
        if (r < 0)
                return r;
        for (size_t k = 0; k < n; k++)
                if (strcasecmp(suffix, suffixes[k]) == 0) {
                        if (factors[k] && x > UINT64_MAX / factors[k])
                                return -ERANGE;
                        *ret = x * factors[k];
                        return 0;
                }
        return -EINVAL;
}

static int parse_size(const char *v, uint64_t *ret) {
        static const char *const s[] = { "", "B", "K", "KiB", "M", "MiB", "G", "GiB" };
        static const uint64_t f[] = { 1, 1, 1 << 10, 1 << 10, 1 << 20, 1 << 20, 1 << 30, 1 << 30 };
        return parse_with_suffix(v, s, f, ELEMENTSOF(s), ret);
}

static int parse_seconds(const char *v, uint64_t *ret) {
        static const char *const s[] = { "", "s", "sec", "m", "min", "h" };
        static const uint64_t f[] = { 1, 1, 1, 60, 60, 3600 };
        return parse_with_suffix(v, s, f, ELEMENTSOF(s), ret);
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_listen(const char *v, ServerConfig *s, char *why, size_t why_size) {
        ListenAddr out[LISTEN_MAX];
        unsigned n = 0;
        const char *p = v;

        for (;;) {
                char item[128];
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                while (len > 0 && (*p == ' ' || *p == '\t'))
                        p++, len--;
                while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if (len == 0) {
                        snprintf(why, why_size, "empty address in 'listen'");
                        return -EINVAL;
                }
                if (len >= sizeof(item)) {
                        snprintf(why, why_size, "address too long in 'listen'");
                        return -EINVAL;
                }
                memcpy(item, p, len);
                item[len] = 0;
                if (n >= LISTEN_MAX) {
                        snprintf(why, why_size, "too many addresses in 'listen' (at most %d)", LISTEN_MAX);
                        return -EINVAL;
                }
                const char *err = NULL;
                if (sockaddr_parse(item, &out[n].addr, NULL, &err) < 0) {
                        snprintf(why, why_size, "bad address '%s' in 'listen': %s", item, err);
                        return -EINVAL;
                }
                sockaddr_format(&out[n].addr.sa, out[n].spec, sizeof(out[n].spec));
                for (unsigned k = 0; k < n; k++)
                        if (strcmp(out[k].spec, out[n].spec) == 0 && sockaddr_port(&out[n].addr.sa) != 0) {
                                snprintf(why, why_size, "address %s listed twice in 'listen'", out[n].spec);
                                return -EINVAL;
                        }
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        memcpy(s->listen, out, sizeof(out[0]) * n);
        s->n_listen = n;
        return 0;
}

static int set_value(const ConfigKey *k, void *base, const char *v, char *why, size_t why_size) {
        char *field = (char *)base + k->offset;
        uint64_t x;
        int r;

        switch (k->type) {
        case KEY_STRING:
                if (strlen(v) >= k->size) {
                        snprintf(why, why_size, "value of '%s' too long (at most %zu bytes)", k->name, k->size - 1);
                        return -EINVAL;
                }
                memcpy(field, v, strlen(v) + 1);
                return 0;
        case KEY_BOOL:
                if (parse_bool(v, (bool *)field) < 0) {
                        snprintf(why, why_size, "invalid value '%s' for '%s': expected yes or no", v, k->name);
                        return -EINVAL;
                }
                return 0;
        case KEY_UINT:
        case KEY_SIZE:
        case KEY_SECONDS:
                r = k->type == KEY_UINT ? parse_uint(v, &x) : k->type == KEY_SIZE ? parse_size(v, &x) : parse_seconds(v, &x);
                if (r == -EINVAL) {
                        snprintf(why, why_size, "invalid value '%s' for '%s': expected %s", v, k->name,
                                 k->type == KEY_UINT   ? "a whole number"
                                 : k->type == KEY_SIZE ? "a size in bytes, optionally with K or M"
                                                       : "seconds, optionally with s, min or h");
                        return -EINVAL;
                }
                if (r < 0 || x < k->min || x > k->max) {
                        snprintf(why, why_size, "value '%s' for '%s' out of range (%" PRIu64 "-%" PRIu64 ")", v, k->name, k->min, k->max);
                        return -ERANGE;
                }
                /* the field's own width decides: sizes may be unsigned or uint64_t */
                if (k->size == sizeof(uint64_t))
                        *(uint64_t *)field = x;
                else
                        *(unsigned *)field = (unsigned)x;
                return 0;
        case KEY_LOG_TRANSITIONS:
                for (int i = 0; i < _LOG_TRANSITIONS_MAX; i++)
                        if (strcmp(v, log_transitions_names[i]) == 0) {
                                *(int *)field = i;
                                return 0;
                        }
                snprintf(why, why_size, "invalid value '%s' for '%s': expected all, summary or off", v, k->name);
                return -EINVAL;
        case KEY_LOG_LEVEL:
                r = log_level_from_string(v);
                if (r < 0) {
                        snprintf(why, why_size,
                                 "invalid value '%s' for '%s': expected emerg, alert, crit, err, warning, notice, info or debug", v,
                                 k->name);
                        return -EINVAL;
                }
                *(int *)field = r;
                return 0;
        case KEY_SERVER_TYPE:
                r = server_type_from_string(v);
                if (r < 0) {
                        snprintf(why, why_size, "unknown server type '%s' (known: echo, enhanced, chat)", v);
                        return -EINVAL;
                }
                *(int *)field = r;
                return 0;
        case KEY_LISTEN:
                return parse_listen(v, (ServerConfig *)base, why, why_size);
        case KEY_CHAT_PROTOCOL:
                for (int i = 0; i < _CHAT_PROTOCOL_MAX; i++)
                        if (strcmp(v, chat_protocol_names[i]) == 0) {
                                *(int *)field = i;
                                return 0;
                        }
                snprintf(why, why_size, "invalid value '%s' for '%s': expected auto, json or line", v, k->name);
                return -EINVAL;
        case KEY_HANDLER:
                if (strcmp(v, HANDLER_JSON_COMMANDS) != 0) {
                        size_t n = strlen(v);
                        if (v[0] != '/' || n < 4 || strcmp(v + n - 3, ".so") != 0) {
                                snprintf(why, why_size,
                                         "invalid value '%s' for 'handler': expected json-commands or the absolute path of a .so plug-in",
                                         v);
                                return -EINVAL;
                        }
                }
                if (strlen(v) >= k->size) {
                        snprintf(why, why_size, "value of '%s' too long (at most %zu bytes)", k->name, k->size - 1);
                        return -EINVAL;
                }
                memcpy(field, v, strlen(v) + 1);
                return 0;
        }
        return -EINVAL;
}

static void format_value(const ConfigKey *k, const void *base, char *buf, size_t size) {
        const char *field = (const char *)base + k->offset;
        switch (k->type) {
        case KEY_STRING:
                snprintf(buf, size, "%s", field);
                break;
        case KEY_BOOL:
                snprintf(buf, size, "%s", *(const bool *)field ? "yes" : "no");
                break;
        case KEY_UINT:
        case KEY_SECONDS:
        case KEY_SIZE:
                if (k->size == sizeof(uint64_t))
                        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)field);
                else
                        snprintf(buf, size, "%u", *(const unsigned *)field);
                break;
        case KEY_LOG_TRANSITIONS:
                snprintf(buf, size, "%s", log_transitions_to_string(*(const int *)field));
                break;
        case KEY_LOG_LEVEL:
                snprintf(buf, size, "%s", log_level_to_string(*(const int *)field));
                break;
        case KEY_SERVER_TYPE:
                snprintf(buf, size, "%s", server_type_to_string(*(const int *)field));
                break;
        case KEY_CHAT_PROTOCOL:
                snprintf(buf, size, "%s", chat_protocol_to_string(*(const int *)field));
                break;
        case KEY_HANDLER:
                snprintf(buf, size, "%s", field);
                break;
        case KEY_LISTEN: {
                const ServerConfig *s = base;
                size_t off = 0;
                buf[0] = 0;
                for (unsigned i = 0; i < s->n_listen && off < size; i++)
                        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "", s->listen[i].spec);
                break;
        }
        }
}

static const ConfigKey *find_key(SectionKind section, const char *name, size_t *ret_slot) {
        size_t slot = 0;
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++) {
                if (key_table[i].section != section)
                        continue;
                if (strcmp(key_table[i].name, name) == 0) {
                        if (ret_slot)
                                *ret_slot = slot;
                        return &key_table[i];
                }
                slot++;
        }
        return NULL;
}

static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), d[64];
        if (la >= 63 || lb >= 63)
                return 99;
        for (size_t j = 0; j <= lb; j++)
                d[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t prev = d[0];
                d[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cur = d[j];
                        d[j] = MIN(MIN(d[j] + 1, d[j - 1] + 1), prev + (a[i - 1] != b[j - 1]));
                        prev = cur;
                }
        }
        return d[lb];
}

static const char *suggest_key(SectionKind section, const char *name) {
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++) {
                if (key_table[i].section != section)
                        continue;
                size_t dist = edit_distance(name, key_table[i].name);
                if (dist < best_d) {
                        best_d = dist;
                        best = key_table[i].name;
                }
        }
        return best;
}

static void apply_defaults(SectionKind section, void *base) {
        char why[256];
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                if (key_table[i].section == section && key_table[i].def)
                        (void)set_value(&key_table[i], base, key_table[i].def, why, sizeof(why));
}

/* ---- parsing one file ---- */

typedef struct ParseContext {
        Config *config;
        ConfigErrors *errs;
        const char *file;
        uint16_t file_idx;
        const char *data;
        size_t len, pos;
        unsigned line; /* the line inih is working on: it reads one line, handles it, reads the next */
        SectionKind section;
        ServerConfig *server;
        unsigned key_line[SERVER_KEY_SLOTS]; /* duplicate detection within one section of this file */
        char seen_servers[SERVERS_MAX][SERVER_NAME_MAX + 1];
        unsigned seen_server_lines[SERVERS_MAX];
        size_t n_seen_servers;
        bool seen_daemon;
        unsigned daemon_line;
} ParseContext;

static bool valid_server_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > SERVER_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
                        return false;
        }
        return true;
}

static ServerConfig *server_get_or_add(Config *c, const char *name) {
        for (size_t i = 0; i < c->n_servers; i++)
                if (strcmp(c->servers[i].name, name) == 0)
                        return &c->servers[i];
        if (c->n_servers >= SERVERS_MAX)
                return NULL;
        ServerConfig *n = realloc(c->servers, (c->n_servers + 1) * sizeof(ServerConfig));
        if (!n)
                return NULL;
        c->servers = n;
        ServerConfig *s = &c->servers[c->n_servers++];
        *s = (ServerConfig){};
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->type = _SERVER_TYPE_INVALID;
        apply_defaults(SECTION_SERVER, s);
        return s;
}

static void section_begin(ParseContext *ctx, const char *header) {
        char name[256];
        size_t n = strlen(header);

        memset(ctx->key_line, 0, sizeof(ctx->key_line));
        ctx->server = NULL;
        ctx->section = SECTION_BAD;
        if (n < 2 || header[n - 1] != ']') {
                config_errors_add(ctx->errs, ctx->file, ctx->line, "section header must end with ']'");
                return;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(n - 2), header + 1);

        if (strcmp(name, "daemon") == 0) {
                if (ctx->seen_daemon)
                        config_errors_add(ctx->errs, ctx->file, ctx->line, "duplicate section [daemon] (first on line %u)",
                                          ctx->daemon_line);
                if (!ctx->seen_daemon)
                        ctx->daemon_line = ctx->line;
                ctx->seen_daemon = true;
                ctx->section = SECTION_DAEMON;
                return;
        }
        if (strncmp(name, "server", 6) == 0 && (name[6] == ' ' || name[6] == '\t')) {
                const char *sname = name + 7;
                while (*sname == ' ' || *sname == '\t')
                        sname++;
                if (!valid_server_name(sname)) {
                        config_errors_add(ctx->errs, ctx->file, ctx->line,
                                          "invalid server name '%s': use 1-%d letters, digits, '-', '_' or '.'", sname, SERVER_NAME_MAX);
                        return;
                }
                for (size_t i = 0; i < ctx->n_seen_servers; i++)
                        if (strcmp(ctx->seen_servers[i], sname) == 0) {
                                config_errors_add(ctx->errs, ctx->file, ctx->line, "duplicate server name '%s' (first on line %u)", sname,
                                                  ctx->seen_server_lines[i]);
                                return;
                        }
                ServerConfig *s = server_get_or_add(ctx->config, sname);
                if (!s) {
                        config_errors_add(ctx->errs, ctx->file, ctx->line, "too many servers (at most %d)", SERVERS_MAX);
                        return;
                }
                if (ctx->n_seen_servers < SERVERS_MAX) {
                        snprintf(ctx->seen_servers[ctx->n_seen_servers], sizeof(ctx->seen_servers[0]), "%s", sname);
                        ctx->seen_server_lines[ctx->n_seen_servers++] = ctx->line;
                }
                if (s->declared.line == 0)
                        s->declared = (ConfigOrigin){ ctx->file_idx, ctx->line };
                ctx->server = s;
                ctx->section = SECTION_SERVER;
                return;
        }
        if (strcmp(name, "server") == 0)
                config_errors_add(ctx->errs, ctx->file, ctx->line, "section [server] needs a name: [server NAME]");
        else
                config_errors_add(ctx->errs, ctx->file, ctx->line, "unknown section [%s] (known: [daemon], [server NAME])", name);
}

/* What inih gets instead of a line already reported: a blank line keeps its line count right. */
static char *blank_line(char *str) {
        str[0] = '\n';
        str[1] = 0;
        return str;
}

/* inih's reader: hand it one line at a time, so that ctx->line is the line its handler sees.
 * Lines are checked here first: inih 55 would split a long line and parse the rest as a new one,
 * and it does not report which lines are malformed after the first. */
static char *reader(char *str, int num, void *stream) {
        ParseContext *ctx = stream;
        if (ctx->pos >= ctx->len)
                return NULL;

        const char *start = ctx->data + ctx->pos;
        const char *nl = memchr(start, '\n', ctx->len - ctx->pos);
        size_t len = nl ? (size_t)(nl - start) : ctx->len - ctx->pos;
        ctx->pos += len + (nl ? 1 : 0);
        ctx->line++;

        if (len > 0 && start[len - 1] == '\r')
                len--;
        /* Leading blanks would make inih treat the line as a continuation of the previous value. */
        while (len > 0 && (*start == ' ' || *start == '\t'))
                start++, len--;

        if (len > CONFIG_LINE_MAX || (size_t)num < CONFIG_LINE_MAX + 2) {
                config_errors_add(ctx->errs, ctx->file, ctx->line, "line too long (%zu bytes, at most %d)", len, CONFIG_LINE_MAX);
                return blank_line(str);
        }
        memcpy(str, start, len);
        str[len] = 0;
        while (len > 0 && (str[len - 1] == ' ' || str[len - 1] == '\t'))
                str[--len] = 0;

        /* Strip an inline comment the way inih does (';' after a blank), so the checks below see
         * what inih will parse. */
        for (size_t i = 1; i < len; i++)
                if (str[i] == ';' && (str[i - 1] == ' ' || str[i - 1] == '\t')) {
                        len = i;
                        while (len > 0 && (str[len - 1] == ' ' || str[len - 1] == '\t'))
                                len--;
                        str[len] = 0;
                        break;
                }

        if (len == 0 || str[0] == ';' || str[0] == '#')
                ; /* blank or comment */
        else if (str[0] == '[') {
                char header[CONFIG_LINE_MAX + 1];
                snprintf(header, sizeof(header), "%s", str);
                /* allow a trailing comment after the header */
                char *close = strchr(header, ']');
                if (close)
                        close[1] = 0;
                section_begin(ctx, header);
                if (!close) {
                        return blank_line(str);
                }
        } else if (!strpbrk(str, "=:")) {
                config_errors_add(ctx->errs, ctx->file, ctx->line, "expected 'key = value' or '[section]', got '%s'", str);
                return blank_line(str);
        }
        str[len] = '\n';
        str[len + 1] = 0;
        return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        ParseContext *ctx = user;
        char why[512];
        size_t slot = 0;
        (void)section;

        if (ctx->section == SECTION_BAD)
                return 1; /* reported at its header */
        if (ctx->section == SECTION_NONE) {
                config_errors_add(ctx->errs, ctx->file, ctx->line, "key '%s' outside of any section", name);
                return 1;
        }
        const ConfigKey *k = find_key(ctx->section, name, &slot);
        if (!k) {
                const char *hint = suggest_key(ctx->section, name);
                if (hint)
                        config_errors_add(ctx->errs, ctx->file, ctx->line, "unknown key '%s' (did you mean '%s'?)", name, hint);
                else
                        config_errors_add(ctx->errs, ctx->file, ctx->line, "unknown key '%s' in [%s]", name,
                                          ctx->section == SECTION_DAEMON ? "daemon" : "server");
                return 1;
        }
        if (ctx->key_line[slot]) {
                config_errors_add(ctx->errs, ctx->file, ctx->line, "duplicate key '%s' (already set on line %u)", name,
                                  ctx->key_line[slot]);
                return 1;
        }
        ctx->key_line[slot] = ctx->line;

        void *base = ctx->section == SECTION_DAEMON ? (void *)&ctx->config->daemon : (void *)ctx->server;
        if (ctx->section == SECTION_SERVER)
                ctx->server->key_origin[slot] = (ConfigOrigin){ ctx->file_idx, ctx->line };
        else if (slot < DAEMON_KEY_SLOTS)
                ctx->config->daemon_key_origin[slot] = (ConfigOrigin){ ctx->file_idx, ctx->line };
        if (set_value(k, base, value, why, sizeof(why)) < 0)
                config_errors_add(ctx->errs, ctx->file, ctx->line, "%s", why);
        return 1;
}

static int add_file_name(Config *c, const char *name) {
        char **n = realloc(c->files, (c->n_files + 1) * sizeof(char *));
        if (!n)
                return -ENOMEM;
        c->files = n;
        c->files[c->n_files] = strdup(name);
        if (!c->files[c->n_files])
                return -ENOMEM;
        c->n_files++;
        return 0;
}

static bool errors_name_line(const ConfigErrors *e, const char *file, unsigned line) {
        char prefix[4200];
        int n = snprintf(prefix, sizeof(prefix), "%s:%u:", file, line);
        for (size_t i = 0; n > 0 && i < e->n; i++)
                if (strncmp(e->lines[i], prefix, (size_t)n) == 0)
                        return true;
        return false;
}

int config_apply_string(Config *c, const char *name, const char *text, ConfigErrors *errs) {
        size_t before = errs->n + errs->suppressed;
        int r = add_file_name(c, name);
        if (r < 0)
                return r;

        ParseContext *ctx = calloc(1, sizeof(ParseContext));
        if (!ctx)
                return -ENOMEM;
        ctx->config = c;
        ctx->errs = errs;
        ctx->file = c->files[c->n_files - 1];
        ctx->file_idx = (uint16_t)(c->n_files - 1);
        ctx->data = text;
        ctx->len = strlen(text);

        if (ctx->len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                ctx->pos = 3; /* UTF-8 byte order mark */

        r = ini_parse_stream(reader, ctx, handler, ctx);
        /* inih reports a line only when its own parser failed on something reader() let through. */
        if (r > 0 && !errors_name_line(errs, ctx->file, (unsigned)r))
                config_errors_add(errs, ctx->file, (unsigned)r, "syntax error");
        else if (r < 0)
                config_errors_add(errs, ctx->file, 0, "cannot parse (out of memory)");
        free(ctx);
        return errs->n + errs->suppressed > before ? -EINVAL : 0;
}

static int read_file(const char *path, char **ret, ConfigErrors *errs) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode)) {
                config_errors_add(errs, path, 0, "not a regular file");
                return -EINVAL;
        }
        if (st.st_size > CONFIG_FILE_MAX) {
                config_errors_add(errs, path, 0, "file too large (%lld bytes, at most %d)", (long long)st.st_size, CONFIG_FILE_MAX);
                return -EINVAL;
        }
        _cleanup_(freep) char *buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        if (memchr(buf, 0, got)) {
                config_errors_add(errs, path, 0, "contains a NUL byte: not a text file");
                return -EINVAL;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int apply_file(Config *c, const char *path, ConfigErrors *errs) {
        _cleanup_(freep) char *text = NULL;
        int r = read_file(path, &text, errs);
        if (r == -EINVAL)
                return r;
        if (r < 0) {
                config_errors_add(errs, path, 0, "cannot read: %s", strerror(-r));
                return -EINVAL;
        }
        return config_apply_string(c, path, text, errs);
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

static int dropin_sort(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int apply_dropins(Config *c, const char *dir, ConfigErrors *errs) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, dropin_sort);
        int ret = 0;

        if (n < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                config_errors_add(errs, dir, 0, "cannot read drop-in directory: %s", strerror(errno));
                return -EINVAL;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_(freep) char *path = NULL;
                if (asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0)
                        path = NULL;
                if (!path || apply_file(c, path, errs) < 0)
                        ret = -EINVAL;
                free(list[i]);
        }
        free(list);
        return ret;
}

static const char *origin_file(const Config *c, ConfigOrigin o) {
        return o.file < c->n_files ? c->files[o.file] : "?";
}

int config_validate(Config *c, ConfigErrors *errs) {
        size_t before = errs->n + errs->suppressed;
        size_t type_slot = 0, listen_slot = 0;
        (void)find_key(SECTION_SERVER, "type", &type_slot);
        (void)find_key(SECTION_SERVER, "listen", &listen_slot);

        for (size_t i = 0; i < c->n_servers; i++) {
                ServerConfig *s = &c->servers[i];
                size_t slot = 0;
                for (size_t k = 0; k < ELEMENTSOF(key_table); k++) {
                        if (key_table[k].section != SECTION_SERVER)
                                continue;
                        ConfigOrigin o = s->key_origin[slot++];
                        if (o.line && s->type >= 0 && key_table[k].types && !(key_table[k].types & TYPE_BIT(s->type)))
                                config_errors_add(errs, origin_file(c, o), o.line, "key '%s' does not apply to a server of type %s",
                                                  key_table[k].name, server_type_to_string(s->type));
                }
                /* A key that was set but invalid has been reported already. */
                if (s->key_origin[type_slot].line == 0)
                        config_errors_add(errs, origin_file(c, s->declared), s->declared.line, "[server %s]: missing required key 'type'",
                                          s->name);
                if (s->key_origin[listen_slot].line == 0)
                        config_errors_add(errs, origin_file(c, s->declared), s->declared.line, "[server %s]: missing required key 'listen'",
                                          s->name);
                for (unsigned a = 0; a < s->n_listen; a++) {
                        if (sockaddr_port(&s->listen[a].addr.sa) == 0)
                                continue;
                        for (size_t j = 0; j < i; j++)
                                for (unsigned b = 0; b < c->servers[j].n_listen; b++)
                                        if (strcmp(c->servers[j].listen[b].spec, s->listen[a].spec) == 0) {
                                                ConfigOrigin o = s->key_origin[listen_slot];
                                                config_errors_add(errs, origin_file(c, o), o.line,
                                                                  "listen address %s of server '%s' is already used by server '%s'",
                                                                  s->listen[a].spec, s->name, c->servers[j].name);
                                        }
                }
        }
        return errs->n + errs->suppressed > before ? -EINVAL : 0;
}

static Config *config_new(void) {
        Config *c = calloc(1, sizeof(Config));
        if (c)
                apply_defaults(SECTION_DAEMON, &c->daemon);
        return c;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_files; i++)
                free(c->files[i]);
        free(c->files);
        free(c->servers);
        free(c->main_path);
        free(c);
        return NULL;
}

static void config_freep(Config **c) {
        config_free(*c);
}

int config_load_string(const char *name, const char *text, Config **ret, ConfigErrors *errs) {
        _cleanup_(config_freep) Config *c = config_new();
        if (!c)
                return -ENOMEM;
        c->main_path = strdup(name);
        if (!c->main_path)
                return -ENOMEM;
        int r = config_apply_string(c, name, text, errs);
        int v = config_validate(c, errs);
        if (r < 0)
                return r;
        if (v < 0)
                return v;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, ConfigErrors *errs) {
        _cleanup_(config_freep) Config *c = config_new();
        char dropin[4096];
        int r = 0;

        if (!c)
                return -ENOMEM;
        if (path)
                snprintf(dropin, sizeof(dropin), "%s.d", path);
        else
                snprintf(dropin, sizeof(dropin), "%s", CONFIG_DEFAULT_DROPIN_DIR);

        const char *main_path = path ? path : CONFIG_DEFAULT_PATH;
        if (!path && access(main_path, F_OK) < 0 && errno == ENOENT) {
                c->main_path = strdup(CONFIG_EMBEDDED_NAME);
                if (!c->main_path)
                        return -ENOMEM;
                if (config_apply_string(c, CONFIG_EMBEDDED_NAME, config_embedded_default, errs) < 0)
                        r = -EINVAL;
        } else {
                c->main_path = strdup(main_path);
                if (!c->main_path)
                        return -ENOMEM;
                if (apply_file(c, main_path, errs) < 0)
                        r = -EINVAL;
        }
        if (apply_dropins(c, dropin, errs) < 0)
                r = -EINVAL;
        if (config_validate(c, errs) < 0)
                r = -EINVAL;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

ConfigOrigin config_key_origin(const ServerConfig *s, const char *key) {
        size_t slot;
        if (!find_key(SECTION_SERVER, key, &slot) || slot >= SERVER_KEY_SLOTS)
                return (ConfigOrigin){};
        ConfigOrigin o = s->key_origin[slot];
        return o.line ? o : s->declared;
}

ConfigOrigin config_daemon_key_origin(const Config *c, const char *key) {
        size_t slot;
        if (!find_key(SECTION_DAEMON, key, &slot) || slot >= DAEMON_KEY_SLOTS)
                return (ConfigOrigin){};
        return c->daemon_key_origin[slot];
}

const char *config_origin_file(const Config *c, ConfigOrigin o) {
        return origin_file(c, o);
}

const ServerConfig *config_find_server(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_servers; i++)
                if (strcmp(c->servers[i].name, name) == 0)
                        return &c->servers[i];
        return NULL;
}

void config_dump(const Config *c, FILE *f) {
        char v[LISTEN_MAX * SOCKADDR_STR_MAX];

        fprintf(f, "# effective configuration, read from:\n");
        for (size_t i = 0; i < c->n_files; i++)
                fprintf(f, "#   %s\n", c->files[i]);
        fprintf(f, "\n[daemon]\n");
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                if (key_table[i].section == SECTION_DAEMON) {
                        format_value(&key_table[i], &c->daemon, v, sizeof(v));
                        fprintf(f, "%s = %s\n", key_table[i].name, v);
                }
        for (size_t s = 0; s < c->n_servers; s++) {
                fprintf(f, "\n[server %s]\n", c->servers[s].name);
                for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                        if (key_table[i].section == SECTION_SERVER &&
                            (!key_table[i].types || (c->servers[s].type >= 0 && (key_table[i].types & TYPE_BIT(c->servers[s].type))))) {
                                format_value(&key_table[i], &c->servers[s], v, sizeof(v));
                                /* What tcpedud prints it must be able to read back: drop the blanks
                                 * around '=' rather than exceed the line limit. */
                                bool tight = strlen(key_table[i].name) + 3 + strlen(v) > CONFIG_LINE_MAX;
                                fprintf(f, "%s%s%s\n", key_table[i].name, tight ? "=" : " = ", v);
                        }
        }
}

bool server_config_same_listeners(const ServerConfig *a, const ServerConfig *b) {
        if (a->type != b->type || a->n_listen != b->n_listen || a->backlog != b->backlog)
                return false;
        for (unsigned i = 0; i < a->n_listen; i++)
                if (strcmp(a->listen[i].spec, b->listen[i].spec) != 0)
                        return false;
        return true;
}

bool server_config_equal(const ServerConfig *a, const ServerConfig *b) {
        return strcmp(a->name, b->name) == 0 && server_config_same_listeners(a, b) && a->autostart == b->autostart &&
               a->max_clients == b->max_clients && a->max_clients_per_ip == b->max_clients_per_ip && a->idle_timeout == b->idle_timeout &&
               a->buffer_size == b->buffer_size && a->max_message == b->max_message && a->line_timeout == b->line_timeout &&
               strcmp(a->handler, b->handler) == 0 && a->protocol == b->protocol && a->history == b->history &&
               a->max_queue == b->max_queue && a->max_rate == b->max_rate;
}
