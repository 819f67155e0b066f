/* SPDX-License-Identifier: MIT */
/* Example handler plug-in: answers every line with the line reversed (by bytes for ASCII, by
 * characters for UTF-8). Stateless: the smallest useful plug-in. */
#include <stdlib.h>
#include <string.h>

#include "tcpedu/handler.h"

static const tcpedu_api *api;

static int reverse_init(const tcpedu_api *a, tcpedu_server *s, void **state) {
        (void)s;
        api = a;
        *state = NULL;
        return 0;
}

static void reverse_on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        char buf[4096 + 1];
        (void)state;
        if (len > sizeof(buf) - 1) {
                api->send(c, "ERR line too long\n", 18);
                return;
        }
        /* Reverse UTF-8 characters, not bytes: copy each character's bytes in their own order. */
        size_t out = len;
        for (size_t i = 0; i < len;) {
                size_t n = 1;
                while (i + n < len && ((unsigned char)msg[i + n] & 0xc0) == 0x80)
                        n++;
                out -= n;
                memcpy(buf + out, msg + i, n);
                i += n;
        }
        buf[len] = '\n';
        api->send(c, buf, len + 1);
}

static const tcpedu_handler handler = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION,
        .name = "reverse",
        .framing = TCPEDU_FRAMING_LINE,
        .init = reverse_init,
        .on_message = reverse_on_message,
};

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
