/* SPDX-License-Identifier: MIT */
/* Test fixture: a plug-in without the one callback that is required. */
#include "tcpedu/handler.h"

static const tcpedu_handler handler = { .abi_version = TCPEDU_HANDLER_ABI_VERSION, .name = "no-message" };

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
