/* SPDX-License-Identifier: MIT */
/* Loading a configuration: the main file (or the embedded default) and its drop-ins, each read
 * whole and handed to config_apply_string(); the errors they collect; looking a loaded one up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h"

#include "macro.h"

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

static Config *config_new(void) {
        Config *c = calloc(1, sizeof(Config));
        if (c)
                config_apply_defaults(SECTION_DAEMON, &c->daemon);
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
        if (!config_key_find(SECTION_SERVER, key, &slot) || slot >= SERVER_KEY_SLOTS)
                return (ConfigOrigin){};
        ConfigOrigin o = s->key_origin[slot];
        return o.line ? o : s->declared;
}

ConfigOrigin config_daemon_key_origin(const Config *c, const char *key) {
        size_t slot;
        if (!config_key_find(SECTION_DAEMON, key, &slot) || slot >= DAEMON_KEY_SLOTS)
                return (ConfigOrigin){};
        return c->daemon_key_origin[slot];
}

const char *config_origin_file(const Config *c, ConfigOrigin o) {
        return o.file < c->n_files ? c->files[o.file] : "?";
}

const ServerConfig *config_find_server(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_servers; i++)
                if (strcmp(c->servers[i].name, name) == 0)
                        return &c->servers[i];
        return NULL;
}
