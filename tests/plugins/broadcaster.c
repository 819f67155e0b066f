/* SPDX-License-Identifier: MIT */
/* Test fixture: every line goes to everyone (the sender too), and every disconnect is announced
 * with a 4000-byte notice line. A disconnect notice can overflow other members' plug-in output
 * bound, so one broadcast ends further connections while it runs (integration-regressions). */
#include <string.h>

#include "tcpedu/handler.h"

#define NOTICE_LEN 4000

static const tcpedu_api *api;

static int init(const tcpedu_api *a, tcpedu_server *s, void **state) {
        api = a;
        *state = s;
        return 0;
}

static void on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        char buf[8192];
        (void)c;
        if (len + 1 > sizeof(buf))
                return;
        memcpy(buf, msg, len);
        buf[len] = '\n';
        api->broadcast(state, buf, len + 1, NULL);
}

static void on_disconnect(void *state, tcpedu_conn *c) {
        static char notice[NOTICE_LEN + 1];
        (void)c;
        memset(notice, '#', NOTICE_LEN);
        memcpy(notice, "* gone ", 7);
        notice[NOTICE_LEN] = '\n';
        api->broadcast(state, notice, sizeof(notice), NULL);
}

static const tcpedu_handler handler = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION,
        .name = "broadcaster",
        .framing = TCPEDU_FRAMING_LINE,
        .init = init,
        .on_message = on_message,
        .on_disconnect = on_disconnect,
};

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
