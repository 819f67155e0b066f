/* SPDX-License-Identifier: MIT */
/* Applying a config, at start and at each reload: plan (which server objects are kept, which are
 * new), prepare (bind every listener the new config needs, taking over the ones that exist), and
 * only then commit. Everything that can fail happens before the commit; a failure rolls back
 * whatever was prepared and changes nothing. */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "control.h"
#include "macro.h"
#include "manager.h"
#include "plugin.h"
#include "privileges.h"
#include "server.h"
#include "session.h"

typedef struct Plan {
        const ServerConfig *cfg;
        Server *server; /* existing object kept, or a new one */
        bool is_new;
        bool run;
        Listener *prepared[LISTEN_MAX];
        bool has_prepared;
} Plan;

typedef struct Reload {
        Manager *m;
        Config *nc;
        Plan *plans; /* one per server of nc */
        Listener **pool; /* the listeners a plan may take over */
        char *error, *summary;
        size_t error_size, summary_size, off;
} Reload;

static Server *find_server(Manager *m, const char *name) {
        for (size_t i = 0; i < m->core.n_servers; i++)
                if (strcmp(m->core.servers[i]->cfg.name, name) == 0)
                        return m->core.servers[i];
        return NULL;
}

static void summary_add(Reload *rl, const char *fmt, const char *a, const char *b) {
        char item[256];
        snprintf(item, sizeof(item), fmt, a, b);
        rl->off += (size_t)snprintf(rl->summary + rl->off, rl->summary_size - MIN(rl->off, rl->summary_size), "%s%s", rl->off ? "; " : "",
                                    item);
}

/* Same type and handler: the same server object, its connections kept; else a new one. */
static int plan_servers(Reload *rl) {
        for (size_t i = 0; i < rl->nc->n_servers; i++) {
                const ServerConfig *sc = &rl->nc->servers[i];
                Server *old = find_server(rl->m, sc->name);
                Plan *p = &rl->plans[i];
                p->cfg = sc;
                if (old && old->cfg.type == sc->type && strcmp(old->cfg.handler, sc->handler) == 0) {
                        p->server = old;
                        p->run = old->running || (!server_config_equal(&old->cfg, sc) && sc->autostart);
                        continue;
                }
                int r = server_new(&rl->m->core, sc, manager_server_type(sc->type), &p->server);
                if (r < 0) {
                        snprintf(rl->error, rl->error_size, "server '%s': %s", sc->name, strerror(-r));
                        return r;
                }
                p->is_new = true;
                p->run = sc->autostart || (old && old->running);
        }
        return 0;
}

/* The listeners plan i may take over: first its own server's (port 0 keeps its port), then any
 * server's, minus those an earlier plan took. Returns how many are in rl->pool. */
static size_t offer_listeners(Reload *rl, size_t i, Server *old) {
        Core *core = &rl->m->core;
        size_t k = 0;
        if (old)
                for (unsigned j = 0; j < old->n_listeners; j++)
                        rl->pool[k++] = old->listeners[j];
        for (size_t s = 0; s < core->n_servers; s++)
                if (core->servers[s] != old)
                        for (unsigned j = 0; j < core->servers[s]->n_listeners; j++)
                                if (!core->servers[s]->listeners[j]->port_zero)
                                        rl->pool[k++] = core->servers[s]->listeners[j];
        for (size_t q = 0; q < k; q++)
                for (size_t e = 0; e < i; e++)
                        for (unsigned j = 0; rl->plans[e].has_prepared && j < rl->plans[e].cfg->n_listen; j++)
                                if (rl->pool[q] == rl->plans[e].prepared[j])
                                        rl->pool[q] = NULL;
        return k;
}

static int prepare_listeners(Reload *rl) {
        for (size_t i = 0; i < rl->nc->n_servers; i++) {
                Plan *p = &rl->plans[i];
                if (!p->run)
                        continue;
                size_t k = offer_listeners(rl, i, find_server(rl->m, p->cfg->name));
                ServerConfig tmp_cfg = p->server->cfg;
                p->server->cfg = *p->cfg; /* prepare with the new addresses and backlog */
                int r = server_prepare_listeners(p->server, rl->pool, k, p->prepared, rl->error, rl->error_size);
                p->server->cfg = tmp_cfg;
                if (r < 0)
                        return r;
                p->has_prepared = true;
        }
        return 0;
}

static bool listener_taken(Reload *rl, const Listener *l) {
        for (size_t i = 0; i < rl->nc->n_servers; i++)
                for (unsigned q = 0; rl->plans[i].has_prepared && q < rl->plans[i].cfg->n_listen; q++)
                        if (rl->plans[i].prepared[q] == l)
                                return true;
        return false;
}

/* Old listeners that no plan took over are closed; servers that no plan kept stop. */
static void commit_old(Reload *rl) {
        Core *core = &rl->m->core;
        for (size_t s = 0; s < core->n_servers; s++) {
                Server *os = core->servers[s];
                bool kept = false;
                for (size_t i = 0; i < rl->nc->n_servers; i++)
                        kept |= rl->plans[i].server == os;
                for (unsigned j = 0; j < os->n_listeners; j++) {
                        Listener *l = os->listeners[j];
                        if (!listener_taken(rl, l))
                                listener_close(l, kept ? "address removed from the config" : "server removed from the config");
                        os->listeners[j] = NULL;
                }
                os->n_listeners = 0;
                if (!kept) {
                        summary_add(rl, "removed %s%s", os->cfg.name, "");
                        os->running = true; /* so that server_stop() logs it */
                        server_stop(os, "removed from the config");
                        os->removed = true;
                        server_unref(os);
                }
        }
}

static void commit_new(Reload *rl, Server **servers) {
        for (size_t i = 0; i < rl->nc->n_servers; i++) {
                Plan *p = &rl->plans[i];
                Server *s = p->server;
                bool changed = p->is_new || !server_config_equal(&s->cfg, p->cfg);
                bool was_running = s->running;
                if (changed)
                        summary_add(rl, "%s %s", p->is_new ? "added" : "changed", p->cfg->name);
                s->cfg = *p->cfg;
                s->running = false;
                if (p->has_prepared)
                        (void)server_start(s, p->prepared, !was_running);
                else if (was_running && !p->run)
                        server_stop(s, "stopped");
                server_rearm_idle_timer(s);
                servers[i] = s;
        }
}

static bool daemon_section_changed(const DaemonConfig *a, const DaemonConfig *b) {
        return a->log_transitions != b->log_transitions || a->max_connections != b->max_connections || a->max_sessions != b->max_sessions ||
               a->session_buffer != b->session_buffer || a->session_idle_timeout != b->session_idle_timeout ||
               strcmp(a->admin_group, b->admin_group) != 0 || a->log_level != b->log_level;
}

/* [daemon]: what takes effect now, and a warning for what waits for a restart. */
static void commit_daemon(Reload *rl) {
        Manager *m = rl->m;
        const DaemonConfig *old = &m->core.config->daemon, *nd = &rl->nc->daemon;
        if (rl->off == 0)
                snprintf(rl->summary, rl->summary_size, "no changes");
        if (daemon_section_changed(old, nd)) {
                if (strcmp(rl->summary, "no changes") == 0)
                        rl->off = 0;
                summary_add(rl, "changed [daemon]%s%s", "", "");
        }
        if (strcmp(old->control_socket, nd->control_socket) != 0 && m->core.config->n_files > 0)
                log_msg(&m->core, LOG_WARNING, NULL, "control_socket changed to '%s': takes effect when tcpedud restarts",
                        nd->control_socket);
        if (old->kernel_source != nd->kernel_source && m->core.config->n_files > 0)
                log_msg(&m->core, LOG_WARNING, NULL, "kernel_source changed to '%s': takes effect when tcpedud restarts",
                        kernel_source_to_string(nd->kernel_source));
        if ((strcmp(old->user, nd->user) != 0 || strcmp(old->group, nd->group) != 0) && m->core.config->n_files > 0)
                log_msg(&m->core, LOG_WARNING, NULL, "user or group changed to '%s'/'%s': takes effect when tcpedud restarts", nd->user,
                        nd->group);
        session_server_configure(&m->core, nd);
        control_set_admin_group(m->control, nd->admin_group);
        config_free(m->core.config);
        m->core.config = rl->nc;
        m->core.log_level = nd->log_level;
        m->core.log_transitions = nd->log_transitions;
}

static void rollback(Reload *rl) {
        for (size_t i = 0; i < rl->nc->n_servers; i++) {
                Plan *p = &rl->plans[i];
                if (p->has_prepared)
                        for (unsigned j = 0; j < p->cfg->n_listen; j++)
                                if (p->prepared[j] && p->prepared[j]->source == NULL)
                                        listener_discard(p->prepared[j]);
                if (p->is_new && p->server)
                        server_unref(p->server);
        }
}

static int apply(Reload *rl) {
        int r = plan_servers(rl);
        if (r >= 0)
                r = prepare_listeners(rl);
        if (r < 0) {
                rollback(rl);
                return r;
        }
        /* Commit: nothing below can fail in a way that leaves a half-applied config. */
        Server **servers = calloc(rl->nc->n_servers ? rl->nc->n_servers : 1, sizeof(Server *));
        if (!servers) {
                snprintf(rl->error, rl->error_size, "out of memory");
                rollback(rl);
                return -ENOMEM;
        }
        commit_old(rl);
        commit_new(rl, servers);
        free(rl->m->core.servers);
        rl->m->core.servers = servers;
        rl->m->core.n_servers = rl->nc->n_servers;
        commit_daemon(rl);
        return 0;
}

int manager_apply_config(Manager *m, Config *nc, char *error, size_t error_size, char *summary, size_t summary_size) {
        Reload rl = { .m = m, .nc = nc, .error = error, .error_size = error_size, .summary = summary, .summary_size = summary_size };
        size_t n_pool = 0;

        /* Every listener that exists now can be taken over by the new config: same address, same fd. */
        for (size_t i = 0; i < m->core.n_servers; i++)
                n_pool += m->core.servers[i]->n_listeners;
        rl.plans = calloc(nc->n_servers ? nc->n_servers : 1, sizeof(Plan));
        rl.pool = calloc(n_pool ? n_pool : 1, sizeof(Listener *));
        int r = rl.plans && rl.pool ? apply(&rl) : -ENOMEM;
        if (r == -ENOMEM && !(rl.plans && rl.pool))
                snprintf(error, error_size, "out of memory");
        free(rl.plans);
        free(rl.pool);
        return r;
}

int manager_reload(Manager *m, ConfigErrors *errs, char *summary, size_t summary_size) {
        Config *nc = NULL;
        char error[512];
        int r;

        manager_notify(m, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%" PRIu64, core_now(&m->core, CLOCK_MONOTONIC));
        r = config_load(m->config_path, &nc, errs);
        if (r >= 0 && (privileges_validate(nc, errs) < 0 || kernel_source_validate(nc, errs) < 0 ||
                       plugins_validate(nc, m->core.privileges_dropped, errs) < 0)) {
                nc = config_free(nc);
                r = -EINVAL;
        }
        if (r >= 0) {
                r = manager_apply_config(m, nc, error, sizeof(error), summary, summary_size);
                if (r < 0) {
                        config_errors_add(errs, nc->main_path, 0, "%s", error);
                        config_free(nc);
                }
        } else if (errs->n == 0)
                config_errors_add(errs, m->config_path ? m->config_path : CONFIG_DEFAULT_PATH, 0, "%s", strerror(-r));

        if (r < 0) {
                m->core.reload_failures++;
                for (size_t i = 0; i < errs->n; i++)
                        log_msg(&m->core, LOG_ERR, MID_RELOAD_FAILED, "%s", errs->lines[i]);
                log_msg(&m->core, LOG_ERR, MID_RELOAD_FAILED, "Reload rejected (%zu errors): the previous configuration stays in effect",
                        errs->n + errs->suppressed);
        } else {
                m->core.reloads++;
                log_msg(&m->core, LOG_NOTICE, MID_RELOAD, "Configuration reloaded from %s: %s", m->core.config->main_path, summary);
        }
        m->last_status[0] = 0;
        manager_notify(m, "READY=1");
        manager_update_status(m);
        return r;
}
