/* SPDX-License-Identifier: MIT */
#pragma once

/* What enhanced and chat connections share (framed.c): framing and line_timeout. */

#include <json-c/json.h>

#include "framing.h"
#include "server-type.h"

typedef struct FramedConn {
        Framer framer;
        ConnTimer *line_timer; /* armed while a message is incomplete */
} FramedConn;

void framed_init(Conn *c, FramedConn *fc, FramerMode mode);
/* Feed what was read; returns < 0 once the connection is closing (stop using it). */
int framed_feed(Conn *c, FramedConn *fc, const uint8_t *data, size_t len, FrameHandler h, void *userdata);
void framed_done(FramedConn *fc);
/* Send a JSON object as one line. */
int conn_send_json(Conn *c, struct json_object *o);
