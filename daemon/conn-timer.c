/* SPDX-License-Identifier: MIT */
/* One-shot timers for a server type's per-connection state (line_timeout, chat's protocol
 * detection): the type names a callback, the loop stays conn's business. */
#include <stdlib.h>

#include "macro.h"
#include "server-type.h"

struct ConnTimer {
        sd_event_source *source;
        Conn *conn;
        ConnTimerFn fn;
        void *userdata;
};

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        ConnTimer *t = userdata;
        (void)source;
        (void)usec;
        t->fn(t->conn, t->userdata);
        return 0;
}

int conn_timer_arm(Conn *c, ConnTimer **tp, uint64_t usec, uint64_t accuracy, ConnTimerFn fn, void *userdata) {
        Core *core = c->server->core;
        uint64_t when = core_now(core, CLOCK_MONOTONIC) + usec;
        ConnTimer *t = *tp;

        if (!t) {
                t = calloc(1, sizeof(ConnTimer));
                if (!t)
                        return -ENOMEM;
                int r = sd_event_add_time(core->event, &t->source, CLOCK_MONOTONIC, when, accuracy, on_timer, t);
                if (r < 0) {
                        free(t);
                        return r;
                }
                *tp = t;
        } else {
                sd_event_source_set_time(t->source, when);
                sd_event_source_set_enabled(t->source, SD_EVENT_ONESHOT);
        }
        t->conn = c;
        t->fn = fn;
        t->userdata = userdata;
        return 0;
}

void conn_timer_disarm(ConnTimer *t) {
        if (t)
                sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
}

bool conn_timer_armed(const ConnTimer *t) {
        return t && sd_event_source_get_enabled(t->source, NULL) > 0;
}

ConnTimer *conn_timer_free(ConnTimer *t) {
        if (t) {
                sd_event_source_disable_unref(t->source);
                free(t);
        }
        return NULL;
}
