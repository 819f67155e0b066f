/* SPDX-License-Identifier: MIT */
/* Test fixture: a plug-in whose init refuses: its server refuses connections, the daemon lives on. */
#include "tcpedu/handler.h"

static int init(const tcpedu_api *api, tcpedu_server *s, void **state) {
        (void)api, (void)s, (void)state;
        return -1;
}

static void on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        (void)state, (void)c, (void)msg, (void)len;
}

static const tcpedu_handler handler = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION, .name = "init-fails", .init = init, .on_message = on_message
};

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
