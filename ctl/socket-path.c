/* SPDX-License-Identifier: MIT */
/* tcpeductl needs one key of the daemon's configuration, [daemon] control_socket, and reads it
 * here rather than linking the daemon's whole config parser. It reads the files the daemon reads,
 * in its order: the main file (-c FILE, else /etc/tcpedud/tcpedud.conf, whose absence means the
 * embedded default, which leaves control_socket empty), then the .conf files of FILE.d
 * (else /etc/tcpedud/conf.d) sorted by name, a later setting winning; lines are cut as the daemon's
 * reader cuts them (a leading blank is not a continuation, a ';' after a blank starts a comment).
 *
 * What it does not do is judge the rest: a file with errors in other keys or sections, which the
 * daemon would refuse whole, still gives its control_socket. The socket a user means is in that
 * line whatever else is wrong, and a daemon started before the file broke still listens there.
 * A file that cannot be read at all (missing, not a regular file, too large, not text) is skipped,
 * and named on stderr ("ignoring FILE, it does not load:" and why) when the user gave -c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control-proto.h"
#include "ctl-util.h"
#include "macro.h"
#include "socket-path.h"

#define CONFIG_FILE_MAX (1 << 20) /* bytes per file, as the daemon */

typedef struct Reader {
        const char *data;
        size_t len, pos;
        bool in_daemon; /* the last section header was [daemon] */
        char *value; /* control_socket's, owned; NULL: not in this file */
} Reader;

/* One line for inih: without the blanks in front, cut to what inih takes whole. */
static char *reader_line(char *str, int num, void *stream) {
        Reader *rd = stream;
        if (rd->pos >= rd->len)
                return NULL;
        const char *start = rd->data + rd->pos;
        const char *nl = memchr(start, '\n', rd->len - rd->pos);
        size_t len = nl ? (size_t)(nl - start) : rd->len - rd->pos;
        rd->pos += len + (nl ? 1 : 0);
        while (len > 0 && (*start == ' ' || *start == '\t'))
                start++, len--;
        if (num < 2 || len > (size_t)num - 2)
                len = 0; /* the daemon refuses a line this long: it sets nothing */
        memcpy(str, start, len);
        str[len] = 0;
        return str;
}

static int reader_key(void *user, const char *section, const char *name, const char *value) {
        Reader *rd = user;
        if (strcmp(section, "daemon") != 0 || strcmp(name, "control_socket") != 0)
                return 1;
        char *v = strdup(value);
        if (!v)
                return 0;
        free(rd->value);
        rd->value = v;
        return 1;
}

/* The whole file as text. 0, or -errno with why saying what is wrong with it ("": see the errno). */
static int read_text(const char *path, char **ret, char *why, size_t why_size) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        why[0] = 0;
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode)) {
                snprintf(why, why_size, "not a regular file");
                return -EINVAL;
        }
        if (st.st_size > CONFIG_FILE_MAX) {
                snprintf(why, why_size, "file too large (%lld bytes, at most %d)", (long long)st.st_size, CONFIG_FILE_MAX);
                return -EFBIG;
        }
        _cleanup_(freep) char *buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        if (memchr(buf, 0, got)) {
                snprintf(why, why_size, "contains a NUL byte: not a text file");
                return -EINVAL;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* control_socket of one file into *value (replacing it when the file sets it). */
static void read_file(const char *path, bool tell, char **value) {
        _cleanup_(freep) char *text = NULL;
        char why[128];
        int r = read_text(path, &text, why, sizeof(why));
        if (r < 0) {
                if (tell)
                        fprintf(stderr, "tcpeductl: ignoring %s, it does not load:\n%s: %s%s\n", path, path,
                                why[0] ? "" : "cannot read: ", why[0] ? why : strerror(-r));
                return;
        }
        Reader rd = { .data = text, .len = strlen(text) };
        if (rd.len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                rd.pos = 3; /* UTF-8 byte order mark */
        (void)ini_parse_stream(reader_line, &rd, reader_key, &rd);
        if (rd.value) {
                free(*value);
                *value = rd.value;
        }
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

static int dropin_sort(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static void read_dropins(const char *dir, bool tell, char **value) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, dropin_sort);
        for (int i = 0; i < n; i++) {
                _cleanup_(freep) char *path = NULL;
                if (asprintf(&path, "%s/%s", dir, list[i]->d_name) >= 0)
                        read_file(path, tell, value);
                else
                        path = NULL;
                free(list[i]);
        }
        free(list);
}

int ctl_config_control_socket(const char *config_path, char *ret, size_t size) {
        _cleanup_(freep) char *value = NULL;
        char dropins[4096];
        const char *main_path = config_path ? config_path : CTL_CONFIG_DEFAULT_PATH;

        snprintf(dropins, sizeof(dropins), "%s%s", config_path ? config_path : CTL_CONFIG_DEFAULT_DROPIN_DIR, config_path ? ".d" : "");
        /* Without -c a missing main file is the embedded default: nothing to read, nothing to say. */
        if (config_path || access(main_path, F_OK) == 0)
                read_file(main_path, config_path != NULL, &value);
        read_dropins(dropins, config_path != NULL, &value);
        return snprintf(ret, size, "%s", value ? value : "") < (int)size ? 0 : -ENAMETOOLONG;
}

/* Sets *ret_default when the path is the per-user default rule, with no -s, environment or config. */
static int resolve_socket(const char *socket_path, const char *config_path, char *buf, size_t size, bool *ret_default) {
        char configured[4096];
        *ret_default = false;
        if (socket_path)
                return snprintf(buf, size, "%s", socket_path) < (int)size ? 0 : -ENAMETOOLONG;
        const char *env = getenv("TCPEDU_CONTROL_SOCKET");
        if (env && *env)
                return snprintf(buf, size, "%s", env) < (int)size ? 0 : -ENAMETOOLONG;
        /* The daemon's rule: control_socket from its config, else the default for this user. */
        int r = ctl_config_control_socket(config_path, configured, sizeof(configured));
        if (r < 0)
                return r;
        *ret_default = !configured[0];
        return control_socket_path(configured[0] ? configured : NULL, buf, size);
}

int ctl_socket_find(const char *socket_path, const char *config_path, char *path, size_t size) {
        bool by_default;
        int r = resolve_socket(socket_path, config_path, path, size, &by_default);
        /* A user without a daemon of their own most likely means the system's; EACCES: it is there,
         * in a directory only its group may enter (tcpedud.service), and connect() will say so. */
        if (by_default && geteuid() != 0 && (r < 0 || access(path, F_OK) < 0) &&
            (access(CTL_SYSTEM_SOCKET, F_OK) == 0 || errno == EACCES)) {
                snprintf(path, size, "%s", CTL_SYSTEM_SOCKET);
                r = 0;
        }
        if (r < 0) {
                fprintf(stderr, "tcpeductl: no control socket path: %s (use -s PATH or TCPEDU_CONTROL_SOCKET)\n",
                        r == -ENXIO ? "XDG_RUNTIME_DIR is not set" : "path too long");
                return EXIT_UNAVAILABLE;
        }
        return EXIT_OK;
}
