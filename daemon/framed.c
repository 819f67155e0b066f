/* SPDX-License-Identifier: MIT */
/* Framing for the enhanced and chat server types: whole messages out of a connection's reads, and
 * line_timeout, the bound on how long a message may stay incomplete (a peer that trickles a line
 * byte by byte is cut off instead of holding its slot forever). */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"
#include "framed.h"

static void on_line_timeout(Conn *c, void *userdata) {
        (void)userdata;
        if (!conn_is_open(c))
                return; /* already on its way out */
        log_msg(c->server->core, LOG_NOTICE, MID_LIMIT,
                "server %s: connection %s kept a message incomplete for %u s (line_timeout): closing", c->server->cfg.name, c->id,
                c->server->cfg.line_timeout);
        conn_close(c, "message incomplete longer than line_timeout");
}

void framed_init(Conn *c, FramedConn *fc, FramerMode mode) {
        framer_init(&fc->framer, mode, c->server->cfg.max_message);
        fc->line_timer = NULL;
}

int framed_feed(Conn *c, FramedConn *fc, const uint8_t *data, size_t len, FrameHandler h, void *userdata) {
        int r = framer_feed(&fc->framer, (const char *)data, len, h, userdata);
        if (r < 0 || !conn_has_fd(c))
                return -1;
        bool partial = framer_has_partial(&fc->framer);
        unsigned timeout = c->server->cfg.line_timeout;
        if (!partial || !timeout) {
                conn_timer_disarm(fc->line_timer);
                return 0;
        }
        /* Measured from when the message began: more bytes of it do not extend the deadline. */
        if (conn_timer_armed(fc->line_timer))
                return 0;
        (void)conn_timer_arm(c, &fc->line_timer, (uint64_t)timeout * USEC_PER_SEC, USEC_PER_SEC / 10, on_line_timeout, NULL);
        return 0;
}

void framed_done(FramedConn *fc) {
        fc->line_timer = conn_timer_free(fc->line_timer);
        framer_done(&fc->framer);
}

int conn_send_json(Conn *c, struct json_object *o) {
        if (!o)
                return -ENOMEM;
        size_t len;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        char buf[8192];
        int r;
        if (len + 1 <= sizeof(buf)) {
                memcpy(buf, s, len);
                buf[len] = '\n';
                r = conn_send(c, buf, len + 1);
        } else {
                char *p = malloc(len + 1);
                if (!p) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                memcpy(p, s, len);
                p[len] = '\n';
                r = conn_send(c, p, len + 1);
                free(p);
        }
        json_object_put(o);
        return r;
}
