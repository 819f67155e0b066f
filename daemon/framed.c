/* SPDX-License-Identifier: MIT */
/* Framing for the enhanced and chat server types: whole messages out of a connection's reads, and
 * line_timeout, the bound on how long a message may stay incomplete (a peer that trickles a line
 * byte by byte is cut off instead of holding its slot forever). */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"
#include "tcpedud.h"

static int on_line_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        (void)s;
        (void)usec;
        if (c->fd < 0 || c->dead || c->closing)
                return 0; /* already on its way out */
        log_msg(c->server->manager, LOG_NOTICE, MID_LIMIT,
                "server %s: connection %s kept a message incomplete for %u s (line_timeout): closing", c->server->cfg.name, c->id,
                c->server->cfg.line_timeout);
        conn_close(c, "message incomplete longer than line_timeout");
        return 0;
}

void framed_init(Conn *c, FramedConn *fc, FramerMode mode) {
        framer_init(&fc->framer, mode, c->server->cfg.max_message);
        fc->line_timer = NULL;
}

int framed_feed(Conn *c, FramedConn *fc, const uint8_t *data, size_t len, FrameHandler h, void *userdata) {
        int r = framer_feed(&fc->framer, (const char *)data, len, h, userdata);
        if (r < 0 || c->fd < 0 || c->dead)
                return -1;
        bool partial = framer_has_partial(&fc->framer);
        unsigned timeout = c->server->cfg.line_timeout;
        if (!partial || !timeout) {
                if (fc->line_timer)
                        sd_event_source_set_enabled(fc->line_timer, SD_EVENT_OFF);
                return 0;
        }
        /* Measured from when the message began: more bytes of it do not extend the deadline. */
        if (fc->line_timer && sd_event_source_get_enabled(fc->line_timer, NULL) > 0)
                return 0;
        uint64_t when = now_usec(c->server->manager, CLOCK_MONOTONIC) + (uint64_t)timeout * USEC_PER_SEC;
        if (fc->line_timer) {
                sd_event_source_set_time(fc->line_timer, when);
                sd_event_source_set_enabled(fc->line_timer, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_add_time(c->server->manager->event, &fc->line_timer, CLOCK_MONOTONIC, when, USEC_PER_SEC / 10,
                                        on_line_timeout, c);
        return 0;
}

void framed_done(FramedConn *fc) {
        fc->line_timer = sd_event_source_disable_unref(fc->line_timer);
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
