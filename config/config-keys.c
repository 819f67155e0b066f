/* SPDX-License-Identifier: MIT */
/* The key table and the value parsers: what each key is called, where it lives, what it accepts
 * and how it prints. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "config-internal.h"
#include "macro.h"

#define D(field) offsetof(DaemonConfig, field), sizeof(((DaemonConfig *)0)->field)
#define S(field) offsetof(ServerConfig, field), sizeof(((ServerConfig *)0)->field)

/* The one list of keys: parsing, defaults, range checks and --dump-config all read it. */
const ConfigKey config_keys[] = {
        { SECTION_DAEMON, "control_socket", KEY_STRING, D(control_socket), 0, 0, "",
          "path of the control socket; empty: /run/tcpedud/control.sock for root, $XDG_RUNTIME_DIR/tcpedud/control.sock otherwise" },
        { SECTION_DAEMON, "admin_group", KEY_STRING, D(admin_group), 0, 0, "",
          "group whose members may use every control command; empty: root and the daemon's own user only" },
        { SECTION_DAEMON, "log_transitions", KEY_LOG_TRANSITIONS, D(log_transitions), 0, 0, "all",
          "all: one journal entry per state transition; summary: one per connection; off: none" },
        { SECTION_DAEMON, "kernel_source", KEY_KERNEL_SOURCE, D(kernel_source), 0, 0, "auto",
          "where TCP states come from: bpf (the kernel's tracepoint through eBPF), tcp_info (TCP_INFO and sock_diag) or auto (bpf "
          "when it loads, else tcp_info); read at start" },
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
const size_t config_keys_n = ELEMENTSOF(config_keys);

static const char *const log_transitions_names[_LOG_TRANSITIONS_MAX] = { "all", "summary", "off" };
static const char *const kernel_source_names[_KERNEL_SOURCE_MAX] = { "auto", "bpf", "tcp_info" };

const char *kernel_source_to_string(int s) {
        return s >= 0 && s < _KERNEL_SOURCE_MAX ? kernel_source_names[s] : NULL;
}
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
/* ---- setters: one per kind of value, each writes the field or a reason to why ---- */

typedef int (*KeySetter)(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size);

static int set_string(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)base;
        if (strlen(v) >= k->size) {
                snprintf(why, why_size, "value of '%s' too long (at most %zu bytes)", k->name, k->size - 1);
                return -EINVAL;
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
}

static int set_bool(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)base;
        if (parse_bool(v, (bool *)field) < 0) {
                snprintf(why, why_size, "invalid value '%s' for '%s': expected yes or no", v, k->name);
                return -EINVAL;
        }
        return 0;
}

/* The numeric kinds differ only in how the text is read and what the user is told to write. */
static const struct {
        int (*parse)(const char *v, uint64_t *ret);
        const char *expected;
} number_kinds[_KEY_TYPE_MAX] = {
        [KEY_UINT] = { parse_uint, "a whole number" },
        [KEY_SIZE] = { parse_size, "a size in bytes, optionally with K or M" },
        [KEY_SECONDS] = { parse_seconds, "seconds, optionally with s, min or h" },
};

static int set_number(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        uint64_t x;
        (void)base;

        int r = number_kinds[k->type].parse(v, &x);
        if (r == -EINVAL) {
                snprintf(why, why_size, "invalid value '%s' for '%s': expected %s", v, k->name, number_kinds[k->type].expected);
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
}

/* Keys whose value is one of a fixed list of names, matched exactly. */
static const struct {
        const char *const *names;
        int n;
        const char *expected;
} name_kinds[_KEY_TYPE_MAX] = {
        [KEY_LOG_TRANSITIONS] = { log_transitions_names, _LOG_TRANSITIONS_MAX, "all, summary or off" },
        [KEY_KERNEL_SOURCE] = { kernel_source_names, _KERNEL_SOURCE_MAX, "auto, bpf or tcp_info" },
        [KEY_CHAT_PROTOCOL] = { chat_protocol_names, _CHAT_PROTOCOL_MAX, "auto, json or line" },
};

static int set_name(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)base;
        for (int i = 0; i < name_kinds[k->type].n; i++)
                if (strcmp(v, name_kinds[k->type].names[i]) == 0) {
                        *(int *)field = i;
                        return 0;
                }
        snprintf(why, why_size, "invalid value '%s' for '%s': expected %s", v, k->name, name_kinds[k->type].expected);
        return -EINVAL;
}

static int set_log_level(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)base;
        int r = log_level_from_string(v);
        if (r < 0) {
                snprintf(why, why_size, "invalid value '%s' for '%s': expected emerg, alert, crit, err, warning, notice, info or debug", v,
                         k->name);
                return -EINVAL;
        }
        *(int *)field = r;
        return 0;
}

static int set_server_type(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)k;
        (void)base;
        int r = server_type_from_string(v);
        if (r < 0) {
                snprintf(why, why_size, "unknown server type '%s' (known: echo, enhanced, chat)", v);
                return -EINVAL;
        }
        *(int *)field = r;
        return 0;
}

static int set_listen(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        (void)k;
        (void)field;
        return parse_listen(v, (ServerConfig *)base, why, why_size);
}

static int set_handler(const ConfigKey *k, void *base, char *field, const char *v, char *why, size_t why_size) {
        if (strcmp(v, HANDLER_JSON_COMMANDS) != 0) {
                size_t n = strlen(v);
                if (v[0] != '/' || n < 4 || strcmp(v + n - 3, ".so") != 0) {
                        snprintf(why, why_size,
                                 "invalid value '%s' for 'handler': expected json-commands or the absolute path of a .so plug-in", v);
                        return -EINVAL;
                }
        }
        return set_string(k, base, field, v, why, why_size);
}

static const KeySetter key_setters[_KEY_TYPE_MAX] = {
        [KEY_STRING] = set_string,      [KEY_BOOL] = set_bool,           [KEY_UINT] = set_number,
        [KEY_SIZE] = set_number,        [KEY_SECONDS] = set_number,      [KEY_LOG_TRANSITIONS] = set_name,
        [KEY_KERNEL_SOURCE] = set_name, [KEY_LOG_LEVEL] = set_log_level, [KEY_SERVER_TYPE] = set_server_type,
        [KEY_LISTEN] = set_listen,      [KEY_CHAT_PROTOCOL] = set_name,  [KEY_HANDLER] = set_handler,
};

int config_key_set(const ConfigKey *k, void *base, const char *v, char *why, size_t why_size) {
        if ((unsigned)k->type >= _KEY_TYPE_MAX || !key_setters[k->type])
                return -EINVAL;
        return key_setters[k->type](k, base, (char *)base + k->offset, v, why, why_size);
}

void config_key_format(const ConfigKey *k, const void *base, char *buf, size_t size) {
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
        case KEY_KERNEL_SOURCE:
                snprintf(buf, size, "%s", kernel_source_to_string(*(const int *)field));
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
        case _KEY_TYPE_MAX:
                break;
        }
}

const ConfigKey *config_key_find(SectionKind section, const char *name, size_t *ret_slot) {
        size_t slot = 0;
        for (size_t i = 0; i < config_keys_n; i++) {
                if (config_keys[i].section != section)
                        continue;
                if (strcmp(config_keys[i].name, name) == 0) {
                        if (ret_slot)
                                *ret_slot = slot;
                        return &config_keys[i];
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

const char *config_key_suggest(SectionKind section, const char *name) {
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; i < config_keys_n; i++) {
                if (config_keys[i].section != section)
                        continue;
                size_t dist = edit_distance(name, config_keys[i].name);
                if (dist < best_d) {
                        best_d = dist;
                        best = config_keys[i].name;
                }
        }
        return best;
}

void config_apply_defaults(SectionKind section, void *base) {
        char why[256];
        for (size_t i = 0; i < config_keys_n; i++)
                if (config_keys[i].section == section && config_keys[i].def)
                        (void)config_key_set(&config_keys[i], base, config_keys[i].def, why, sizeof(why));
}
