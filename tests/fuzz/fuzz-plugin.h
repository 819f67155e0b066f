/* SPDX-License-Identifier: MIT */
#pragma once

/* What the fuzz plug-in (fuzz-plugin.c) shares with the fuzz-plugin-api target that drives it:
 * the API and server the daemon handed to init(), the connections between on_connect and
 * on_disconnect, and a hook the target sets to act from inside on_message. */

#include "tcpedu/handler.h"

#define FUZZ_PLUGIN_CONNS_MAX 32

typedef struct FuzzPluginShared {
        const tcpedu_api *api;
        tcpedu_server *server;
        tcpedu_conn *conns[FUZZ_PLUGIN_CONNS_MAX];
        unsigned n_conns;
        unsigned long messages;
        void (*on_message)(tcpedu_conn *c, const char *msg, size_t len);
} FuzzPluginShared;

FuzzPluginShared *fuzz_plugin_shared(void);
