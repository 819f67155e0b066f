/* SPDX-License-Identifier: MIT */
/* Test fixture: a plug-in built for another ABI version. */
#include "tcpedu/handler.h"

static void on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        (void)state, (void)c, (void)msg, (void)len;
}

static const tcpedu_handler handler = { .abi_version = 99, .name = "bad-abi", .on_message = on_message };

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
