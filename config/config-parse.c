/* SPDX-License-Identifier: MIT */
/* Reading one file's text with inih, so that every error names its file and line. */
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "macro.h"

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
        config_apply_defaults(SECTION_SERVER, s);
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
        const ConfigKey *k = config_key_find(ctx->section, name, &slot);
        if (!k) {
                const char *hint = config_key_suggest(ctx->section, name);
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
        if (config_key_set(k, base, value, why, sizeof(why)) < 0)
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
