/* SPDX-License-Identifier: MIT */
/* The handler plug-in of the fuzz-plugin-api target: it keeps what the daemon gives it where the
 * target can see it (fuzz-plugin.h) and hands every message to the target's hook. */
#include <stdlib.h>

#include "fuzz-plugin.h"

static FuzzPluginShared shared;

FuzzPluginShared *fuzz_plugin_shared(void) {
        return &shared;
}

static int fp_init(const tcpedu_api *api, tcpedu_server *s, void **state) {
        shared.api = api;
        shared.server = s;
        *state = &shared;
        return 0;
}

static void fp_fini(void *state) {
        (void)state;
        shared.api = NULL;
        shared.server = NULL;
        shared.n_conns = 0;
}

static void fp_on_connect(void *state, tcpedu_conn *c) {
        (void)state;
        if (shared.n_conns < FUZZ_PLUGIN_CONNS_MAX)
                shared.conns[shared.n_conns++] = c;
        else
                shared.api->close(c);
}

static void fp_on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        (void)state;
        shared.messages++;
        if (shared.on_message)
                shared.on_message(c, msg, len);
}

static void fp_on_disconnect(void *state, tcpedu_conn *c) {
        (void)state;
        for (unsigned i = 0; i < shared.n_conns; i++)
                if (shared.conns[i] == c) {
                        shared.conns[i] = shared.conns[--shared.n_conns];
                        break;
                }
        free(shared.api->conn_get_data(c));
        shared.api->conn_set_data(c, NULL);
}

static const tcpedu_handler handler = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION,
        .name = "fuzz",
        .framing = TCPEDU_FRAMING_LINE,
        .init = fp_init,
        .fini = fp_fini,
        .on_connect = fp_on_connect,
        .on_message = fp_on_message,
        .on_disconnect = fp_on_disconnect,
};

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
