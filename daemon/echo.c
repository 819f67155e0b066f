/* SPDX-License-Identifier: MIT */
/* The echo server: every byte back, in order. Backpressure is the connection code's job. */
#include "tcpedud.h"

static void echo_on_data(Conn *c, const uint8_t *data, size_t len) {
        (void)conn_send(c, data, len);
}

const ServerVtable echo_vtable = {
        .name = "echo",
        .on_data = echo_on_data,
};

const ServerVtable *server_vtable_for(int type) {
        static const ServerVtable *const table[_SERVER_TYPE_MAX] = {
                [SERVER_TYPE_ECHO] = &echo_vtable,
                [SERVER_TYPE_ENHANCED] = &enhanced_vtable,
                [SERVER_TYPE_CHAT] = &chat_vtable,
        };
        return type >= 0 && type < _SERVER_TYPE_MAX ? table[type] : NULL;
}
