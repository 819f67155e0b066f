/* SPDX-License-Identifier: MIT */
/* The config loader (config/config.c) on what operators write: a main file and a drop-in, read
 * from real files by config_load() as tcpedud does at start and on reload. The input is the main
 * file, optionally followed by FUZZ_DROPIN_MARK and the drop-in. Checked: every error is
 * "FILE:LINE: message" or "FILE: message" for one of the two files; a config that loads has only
 * valid values; and what --dump-config prints loads back to the same config. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define FUZZ_DROPIN_MARK "\n#--- drop-in ---\n"

static char dir[] = "/tmp/tcpedu-fuzz-config.XXXXXX";
static char main_path[64], dropin_dir[96], dropin_path[128];

static void cleanup(void) {
        unlink(dropin_path);
        rmdir(dropin_dir);
        unlink(main_path);
        rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(main_path, sizeof(main_path), "%s/tcpedud.conf", dir);
        snprintf(dropin_dir, sizeof(dropin_dir), "%s.d", main_path);
        snprintf(dropin_path, sizeof(dropin_path), "%s/50-fuzz.conf", dropin_dir);
        FUZZ_CHECK(mkdir(dropin_dir, 0700) == 0);
        atexit(cleanup);
        return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        FUZZ_CHECK(fd >= 0);
        for (size_t off = 0; off < size;) {
                ssize_t n = write(fd, data + off, size - off);
                FUZZ_CHECK(n > 0);
                off += (size_t)n;
        }
        close(fd);
}

static bool error_names_a_file(const char *line) {
        const char *files[] = { main_path, dropin_path, dropin_dir };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                size_t n = strlen(files[i]);
                if (strncmp(line, files[i], n) != 0 || line[n] != ':')
                        continue;
                const char *p = line + n + 1;
                if (*p == ' ')
                        return p[1] != 0; /* FILE: message */
                if (*p < '1' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
                return p[0] == ':' && p[1] == ' ' && p[2] != 0; /* FILE:LINE: message */
        }
        return false;
}

static void check_valid(const Config *c) {
        FUZZ_CHECK(c->n_servers <= SERVERS_MAX);
        FUZZ_CHECK(c->daemon.log_level >= 0 && c->daemon.log_level <= 7);
        FUZZ_CHECK(c->daemon.log_transitions >= 0 && c->daemon.log_transitions < _LOG_TRANSITIONS_MAX);
        for (size_t i = 0; i < c->n_servers; i++) {
                const ServerConfig *s = &c->servers[i];
                FUZZ_CHECK(s->type >= 0 && s->type < _SERVER_TYPE_MAX);
                FUZZ_CHECK(s->n_listen >= 1 && s->n_listen <= LISTEN_MAX);
                FUZZ_CHECK(s->protocol >= 0 && s->protocol < _CHAT_PROTOCOL_MAX);
                FUZZ_CHECK(strlen(s->name) >= 1 && strlen(s->name) <= SERVER_NAME_MAX);
                FUZZ_CHECK(config_find_server(c, s->name) == s);
                ConfigOrigin o = config_key_origin(s, "listen");
                FUZZ_CHECK(o.line > 0 && config_origin_file(c, o));
        }
}

static bool daemon_config_equal(const DaemonConfig *a, const DaemonConfig *b) {
        return strcmp(a->control_socket, b->control_socket) == 0 && strcmp(a->admin_group, b->admin_group) == 0 &&
               a->log_transitions == b->log_transitions && a->max_connections == b->max_connections && a->log_level == b->log_level &&
               a->max_sessions == b->max_sessions && a->session_buffer == b->session_buffer &&
               a->session_idle_timeout == b->session_idle_timeout;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *mark = memmem(data, size, FUZZ_DROPIN_MARK, strlen(FUZZ_DROPIN_MARK));
        size_t main_size = mark ? (size_t)(mark - data) : size;
        ConfigErrors errs = {};
        Config *c = NULL;

        write_file(main_path, data, main_size);
        if (mark) {
                size_t skip = main_size + strlen(FUZZ_DROPIN_MARK);
                write_file(dropin_path, data + skip, size - skip);
        } else
                unlink(dropin_path);

        int r = config_load(main_path, &c, &errs);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        FUZZ_CHECK((r == 0) == (errs.n == 0 && errs.suppressed == 0));
        FUZZ_CHECK(errs.n <= CONFIG_ERRORS_MAX);
        for (size_t i = 0; i < errs.n; i++) {
                if (!error_names_a_file(errs.lines[i])) {
                        fprintf(stderr, "malformed error: %s\n", errs.lines[i]);
                        FUZZ_CHECK(!"error is FILE:LINE: message");
                }
        }
        config_errors_clear(&errs);
        if (r < 0)
                return 0;
        check_valid(c);

        /* --dump-config: printed, then read back as a config of its own. */
        char *dump = NULL;
        size_t dump_size = 0;
        FILE *f = open_memstream(&dump, &dump_size);
        FUZZ_CHECK(f);
        config_dump(c, f);
        FUZZ_CHECK(fclose(f) == 0);
        Config *again = NULL;
        r = config_load_string("dump", dump, &again, &errs);
        if (r < 0) {
                config_errors_print(&errs, stderr);
                fprintf(stderr, "--- dump:\n%s", dump);
                FUZZ_CHECK(!"the dumped config loads");
        }
        FUZZ_CHECK(again->n_servers == c->n_servers);
        FUZZ_CHECK(daemon_config_equal(&again->daemon, &c->daemon));
        for (size_t i = 0; i < c->n_servers; i++)
                FUZZ_CHECK(server_config_equal(&again->servers[i], &c->servers[i]));
        config_free(again);
        free(dump);
        config_free(c);
        return 0;
}
