/* SPDX-License-Identifier: MIT */
/* Handler plug-ins (tcpedu/handler.h): checked when the config is, loaded when the enhanced server
 * first needs them, and given a small API that validates what it is handed. A plug-in that cannot
 * be loaded, speaks another ABI, or could be replaced by someone else while the daemon runs as root
 * is a configuration error, never a crash at run time. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "macro.h"
#include "plugin.h"

/* Owned by root and writable by nobody else, and so is the directory it sits in: whoever could
 * replace the file would run code as the daemon. A daemon that started as root and switched to its
 * own user is held to the same rule (a plug-in that user could replace would give it the daemon's
 * sockets and a way to persist). A daemon started by an ordinary user may also load that user's
 * own plug-ins, never ones that others could write. */
static int check_owner(const char *path, bool dropped, char *error, size_t size) {
        struct stat st;
        char dir[PATH_MAX];
        bool root_rule = geteuid() == 0 || dropped;
        uid_t me = geteuid();

        if (stat(path, &st) < 0) {
                snprintf(error, size, "handler '%s': %s", path, strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(error, size, "handler '%s': not a regular file", path);
                return -EINVAL;
        }
        if ((st.st_uid != 0 && (root_rule || st.st_uid != me)) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                if (root_rule)
                        snprintf(error, size,
                                 "handler '%s': refusing a plug-in that is not owned by root or is writable by others while %s", path,
                                 geteuid() == 0 ? "running as root" : "started as root");
                else
                        snprintf(error, size,
                                 "handler '%s': refusing a plug-in that is not owned by root or uid %u, or is writable by others", path,
                                 (unsigned)me);
                return -EPERM;
        }
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = 0;
        if (stat(dir, &st) < 0 || (st.st_uid != 0 && (root_rule || st.st_uid != me)) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                snprintf(error, size,
                         "handler '%.200s': refusing a plug-in whose directory %.200s is not owned by root%s or is writable by others",
                         path, dir, root_rule ? "" : " or by this user");
                return -EPERM;
        }
        return 0;
}

static int load(const char *path, bool dropped, void **ret_dl, const tcpedu_handler **ret_h, char *error, size_t size) {
        int r = check_owner(path, dropped, error, size);
        if (r < 0)
                return r;
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                snprintf(error, size, "handler '%s': cannot load: %s", path, dlerror());
                return -ENOEXEC;
        }
        const tcpedu_handler *(*get)(void);
        *(void **)&get = dlsym(dl, TCPEDU_HANDLER_SYMBOL);
        const tcpedu_handler *h = get ? get() : NULL;
        if (!get || !h) {
                snprintf(error, size, "handler '%s': %s", path,
                         get ? TCPEDU_HANDLER_SYMBOL "() returned NULL" : "no " TCPEDU_HANDLER_SYMBOL "() in it");
                dlclose(dl);
                return -ENOEXEC;
        }
        if (h->abi_version != TCPEDU_HANDLER_ABI_VERSION) {
                snprintf(error, size, "handler '%s': plug-in ABI version %u, this tcpedud speaks %d", path, h->abi_version,
                         TCPEDU_HANDLER_ABI_VERSION);
                dlclose(dl);
                return -EPROTO;
        }
        if (h->framing != TCPEDU_FRAMING_LINE && h->framing != TCPEDU_FRAMING_JSON) {
                snprintf(error, size, "handler '%s': unknown framing %d", path, h->framing);
                dlclose(dl);
                return -EPROTO;
        }
        if (!h->on_message) {
                snprintf(error, size, "handler '%s': no on_message callback", path);
                dlclose(dl);
                return -EPROTO;
        }
        *ret_dl = dl;
        *ret_h = h;
        return 0;
}

int plugins_validate(const Config *c, bool privileges_dropped, ConfigErrors *errs) {
        int ret = 0;
        for (size_t i = 0; i < c->n_servers; i++) {
                const ServerConfig *s = &c->servers[i];
                if (s->type != SERVER_TYPE_ENHANCED || strcmp(s->handler, HANDLER_JSON_COMMANDS) == 0)
                        continue;
                char error[512];
                void *dl;
                const tcpedu_handler *h;
                if (load(s->handler, privileges_dropped, &dl, &h, error, sizeof(error)) < 0) {
                        ConfigOrigin o = config_key_origin(s, "handler");
                        config_errors_add(errs, config_origin_file(c, o), o.line, "%s", error);
                        ret = -EINVAL;
                        continue;
                }
                dlclose(dl);
        }
        return ret;
}

/* ---- the API ---- */

static Conn *conn_of(tcpedu_conn *pc) {
        return (Conn *)pc;
}

static int api_send(tcpedu_conn *pc, const void *data, size_t len) {
        Conn *c = conn_of(pc);
        if (!c || (!data && len))
                return -EINVAL;
        if (!conn_can_send(c))
                return -EPIPE;
        if (len == 0)
                return 0;
        int r = conn_send_bounded(c, data, len, PLUGIN_OUTPUT_FACTOR * c->server->cfg.buffer_size);
        if (r == -ENOBUFS)
                conn_abort(c, "plug-in output over 16 x buffer_size: the peer does not read");
        return r;
}

static void api_close(tcpedu_conn *pc) {
        if (pc)
                conn_close(conn_of(pc), "closed by the handler plug-in");
}

static int api_broadcast(tcpedu_server *ps, const void *data, size_t len, tcpedu_conn *except) {
        Server *s = (Server *)ps;
        int count = 0;
        if (!s || (!data && len))
                return -EINVAL;
        /* A send can end a connection, and its plug-in callback can end others: work on a copy of
         * the list (connections are freed only at the safe point, so the pointers stay valid). */
        size_t n = 0;
        _cleanup_(freep) Conn **v = malloc(MAX(s->n_conns, 1u) * sizeof(Conn *));
        if (!v)
                return -ENOMEM;
        for (ListNode *i = s->conns.next; i != &s->conns && n < s->n_conns; i = i->next)
                v[n++] = list_entry(i, Conn, node);
        for (size_t k = 0; k < n; k++)
                if ((tcpedu_conn *)v[k] != except && conn_has_fd(v[k]) && api_send((tcpedu_conn *)v[k], data, len) == 0)
                        count++;
        return count;
}

static const char *api_conn_id(tcpedu_conn *pc) {
        return pc ? conn_of(pc)->id : "";
}

static const char *api_conn_peer(tcpedu_conn *pc) {
        Conn *c = pc ? conn_of(pc) : NULL;
        Plugin *p = c ? c->server->type_state : NULL; /* the host's state begins with its Plugin */
        return p ? sockaddr_format(&c->peer.sa, p->peer_buf, sizeof(p->peer_buf)) : ""; /* valid until the next call */
}

static tcpedu_server *api_conn_server(tcpedu_conn *pc) {
        return pc ? (tcpedu_server *)conn_of(pc)->server : NULL;
}

/* The host type's state begins with its Plugin (plugin.h), which names where the per-connection
 * pointer lives. */
static void **data_slot(tcpedu_conn *pc) {
        Conn *c = pc ? conn_of(pc) : NULL;
        const Plugin *p = c ? c->server->type_state : NULL;
        return p && p->slot ? p->slot(c) : NULL;
}

static void *api_conn_get_data(tcpedu_conn *pc) {
        void **slot = data_slot(pc);
        return slot ? *slot : NULL;
}

static void api_conn_set_data(tcpedu_conn *pc, void *data) {
        void **slot = data_slot(pc);
        if (slot)
                *slot = data;
}

static const char *api_server_name(tcpedu_server *ps) {
        return ps ? ((Server *)ps)->cfg.name : "";
}

static void api_log(tcpedu_server *ps, int priority, const char *message) {
        Server *s = (Server *)ps;
        if (!s || !message)
                return;
        if (priority < 0 || priority > 7)
                priority = LOG_INFO;
        log_msg(s->core, priority, NULL, "server %s (handler plug-in): %.1024s", s->cfg.name, message);
}

static const tcpedu_api api = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION,
        .size = sizeof(tcpedu_api),
        .send = api_send,
        .close = api_close,
        .broadcast = api_broadcast,
        .conn_id = api_conn_id,
        .conn_peer = api_conn_peer,
        .conn_server = api_conn_server,
        .conn_get_data = api_conn_get_data,
        .conn_set_data = api_conn_set_data,
        .server_name = api_server_name,
        .log = api_log,
};

int plugin_open(Server *s, PluginDataSlot slot, Plugin *ret) {
        char error[512];
        *ret = (Plugin){};
        int r = load(s->cfg.handler, s->core->privileges_dropped, &ret->dl, &ret->h, error, sizeof(error));
        if (r < 0) {
                log_msg(s->core, LOG_ERR, NULL, "server %s: %s", s->cfg.name, error);
                return r;
        }
        ret->slot = slot;
        if (ret->h->init && ret->h->init(&api, (tcpedu_server *)s, &ret->state) < 0) {
                log_msg(s->core, LOG_ERR, NULL, "server %s: handler plug-in %s refused to start (init failed)", s->cfg.name,
                        ret->h->name ? ret->h->name : s->cfg.handler);
                dlclose(ret->dl);
                *ret = (Plugin){};
                return -ECANCELED;
        }
        return 0;
}

void plugin_close(Plugin *p) {
        if (!p->dl)
                return;
        if (p->h->fini)
                p->h->fini(p->state);
        dlclose(p->dl);
        *p = (Plugin){};
}
