/* SPDX-License-Identifier: MIT */
/* The echo server: every byte back, in order. Backpressure is the connection code's job. */
#include "echo.h"

static void echo_on_data(Conn *c, const uint8_t *data, size_t len) {
        (void)conn_send(c, data, len);
}

const ServerVtable echo_vtable = {
        .name = "echo",
        .on_data = echo_on_data,
};
