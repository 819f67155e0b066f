/* SPDX-License-Identifier: MIT */
#pragma once

/* The composition root (manager-*.c): builds the core, the servers and control, owns the loop,
 * applies a config as plan -> prepare -> commit, and stops in order. */

#include <stdarg.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "core.h"
#include "tcpedud.h"

#define EXIT_CONFIG 78 /* EX_CONFIG from sysexits.h */
#define EXIT_USAGE 64 /* EX_USAGE */
#define NOTIFY_QUEUE_MAX 32 /* sd_notify messages waiting for a receiver that does not read */

struct Manager {
        Core core; /* what every module shares; lower layers see only this */
        Control *control;
        const char *config_path; /* -c, or NULL for the default */
        sd_event_source *epoll_source; /* drains core.epoll_fd in batches */
        sd_event_source *status_timer;
        char last_status[256];
        int notify_fd; /* NOTIFY_SOCKET, connected at start; -1 without one */
        sd_event_source *notify_source; /* enabled while notifications wait for room */
        char *notify_queue[NOTIFY_QUEUE_MAX];
        size_t n_notify;
        uint64_t notify_dropped;
};

int manager_new(const char *config_path, Config *config, LogTarget target, Manager **ret);
Manager *manager_free(Manager *m);
/* Takes ownership of config. The caller blocks SIGTERM, SIGINT and SIGHUP first. */
int manager_start(Manager *m, Config *config, char *error, size_t error_size);
int manager_run(Manager *m);
/* Parse, validate and apply a new config; on any error nothing changes. */
int manager_reload(Manager *m, ConfigErrors *errs, char *summary, size_t summary_size);
/* The server type for a configured type: the registry of types lives here, at the top. */
const ServerVtable *manager_server_type(int type);

/* ---- manager-reload.c: a config applied as plan -> prepare -> commit ---- */
int manager_apply_config(Manager *m, Config *nc, char *error, size_t error_size, char *summary, size_t summary_size);

/* ---- manager-notify.c: sd_notify() that never blocks ---- */
/* What the receiver has no room for waits, in order, and goes out when it reads again (a STATUS=
 * line replaces one still waiting). */
void manager_notify(Manager *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void manager_notify_open(Manager *m);
void manager_notify_close(Manager *m);
void manager_update_status(Manager *m);
