/* SPDX-License-Identifier: MIT */
#pragma once

/* Handler plug-ins of the enhanced server (plugin.c): loading, checking, and the API they get. */

#include "config.h"
#include "server-type.h"
#include "tcpedu/handler.h"

#define PLUGIN_OUTPUT_FACTOR 16 /* a plug-in's unsent output per connection: 16 x buffer_size */

/* A server hosting a plug-in keeps its Plugin first in its type_state. Where the host keeps a plug-in's per-connection pointer
 * (tcpedu_api.conn_get_data/set_data). */
typedef void **(*PluginDataSlot)(Conn *c);

typedef struct Plugin {
        void *dl;
        const tcpedu_handler *h;
        void *state;
        PluginDataSlot slot;
        char peer_buf[SOCKADDR_STR_MAX]; /* what conn_peer() returns, valid until its next call */
} Plugin;

/* Check every plug-in a config names; errors as FILE:LINE: message. */
/* privileges_dropped: the daemon gave up root, and plug-ins are held to the rules for root. */
int plugins_validate(const Config *c, bool privileges_dropped, ConfigErrors *errs);
int plugin_open(Server *s, PluginDataSlot slot, Plugin *ret);
void plugin_close(Plugin *p);
