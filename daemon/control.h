/* SPDX-License-Identifier: MIT */
#pragma once

/* The control socket (control-*.c): JSON lines from tcpeductl, checked by peer credentials,
 * dispatched by a table. Control is a sink of the core's events (monitors, session watchers) and
 * serves client sessions; what it cannot do itself (reload) it asks its owner for through
 * ControlOps. Nothing below it knows it exists. */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "core.h"
#include "tcpedud.h"

#define CONTROL_CLIENTS_MAX 128
#define CONTROL_OUTPUT_MAX CONTROL_REPLY_MAX /* queued replies and events per client, then it is dropped */
#define CONTROL_OUTPUT_PAUSE (256u << 10) /* stop reading a client's requests while this much is unsent */
#define CONTROL_IDLE_USEC (300 * USEC_PER_SEC)

/* What control asks of the daemon that owns it. */
typedef struct ControlOps {
        /* Parse, validate and apply the config again; on any error nothing changes. */
        int (*reload)(void *userdata, ConfigErrors *errs, char *summary, size_t summary_size);
        void *userdata;
} ControlOps;

/* Registers control as a sink of core's events and as its session listener. */
int control_new(Core *core, const ControlOps *ops, Control **ret);
Control *control_free(Control *ctl);
/* Open (or take from systemd) the control socket; its path is in control_path(). */
int control_open(Control *ctl, const char *configured);
/* The path of the control socket, "" before control_open() found one. */
const char *control_path(const Control *ctl);
/* The socket file, if this daemon created it (not systemd): the one privileges_drop() hands over. */
const char *control_created_path(const Control *ctl);
/* And its directory too. */
bool control_created_dir(const Control *ctl);
/* admin_group, resolved again after each reload: its members may change things. */
void control_set_admin_group(Control *ctl, const char *group);
