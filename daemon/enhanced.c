/* SPDX-License-Identifier: MIT */
/* The enhanced server: a stream of JSON objects, each answered by the command protocol
 * (common/cmd-proto.c), or a handler plug-in (plugin.c). Data that does not begin a JSON object is
 * echoed back unchanged, as python_tcp's EnhancedTCPServer does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd-proto.h"
#include "macro.h"
#include "enhanced.h"
#include "framed.h"
#include "plugin.h"

typedef struct EnhancedState {
        Plugin plugin; /* handler = PATH.so: loaded at the first connection; first (plugin.h) */
        bool plugin_tried, plugin_ok;
        uint64_t requests;
        uint64_t errors;
        uint64_t by_kind[_CMD_KIND_MAX];
} EnhancedState;

typedef struct EnhancedConn {
        FramedConn framed;
        void *plugin_data;
} EnhancedConn;

static void **plugin_data_slot(Conn *c) {
        EnhancedConn *ec = c->server->vt == &enhanced_vtable ? c->userdata : NULL;
        return ec ? &ec->plugin_data : NULL;
}

static Plugin *plugin_of(Server *s) {
        EnhancedState *st = s->type_state;
        if (strcmp(s->cfg.handler, HANDLER_JSON_COMMANDS) == 0 || !st)
                return NULL;
        if (!st->plugin_tried) {
                st->plugin_tried = true;
                st->plugin_ok = plugin_open(s, plugin_data_slot, &st->plugin) >= 0;
        }
        return st->plugin_ok ? &st->plugin : NULL;
}

static int on_plugin_frame(Conn *c, Plugin *p, const Frame *f) {
        char msg[160];
        switch (f->kind) {
        case FRAME_LINE:
        case FRAME_TEXT:
        case FRAME_OBJECT:
                p->h->on_message(p->state, (tcpedu_conn *)c, f->data, f->len);
                break;
        case FRAME_TOO_LONG:
                snprintf(msg, sizeof(msg), "ERR message too long (max_message is %u bytes): discarded\n", c->server->cfg.max_message);
                (void)conn_send(c, msg, strlen(msg));
                break;
        case FRAME_INVALID:
                snprintf(msg, sizeof(msg), "ERR invalid JSON: %s\n", f->error ? f->error : "parse error");
                (void)conn_send(c, msg, strlen(msg));
                break;
        }
        return conn_can_send(c) ? 0 : -1;
}

static EnhancedState *state_of(Server *s) {
        if (!s->type_state)
                s->type_state = calloc(1, sizeof(EnhancedState));
        return s->type_state;
}

static struct json_object *stats_json(Server *s) {
        EnhancedState *st = state_of(s);
        struct json_object *o = json_object_new_object(), *cmds = json_object_new_object();
        json_object_object_add(o, "connections", json_object_new_int64(s->n_conns));
        json_object_object_add(o, "accepted", json_object_new_int64((int64_t)s->accepted));
        json_object_object_add(o, "requests", json_object_new_int64(st ? (int64_t)st->requests : 0));
        json_object_object_add(o, "errors", json_object_new_int64(st ? (int64_t)st->errors : 0));
        for (int k = 0; st && k < _CMD_KIND_MAX; k++)
                json_object_object_add(cmds, cmd_kind_to_string((CmdKind)k), json_object_new_int64((int64_t)st->by_kind[k]));
        json_object_object_add(o, "commands", cmds);
        return o;
}

static struct json_object *cb_stats(void *userdata) {
        Conn *c = userdata;
        return stats_json(c->server);
}

static struct json_object *cb_whoami(void *userdata) {
        Conn *c = userdata;
        char a[SOCKADDR_STR_MAX];
        struct json_object *o = json_object_new_object();
        conn_refresh(c);
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "peer", json_object_new_string(sockaddr_format(&c->peer.sa, a, sizeof(a))));
        json_object_object_add(o, "local", json_object_new_string(sockaddr_format(&c->local.sa, a, sizeof(a))));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        json_object_object_add(o, "server", json_object_new_string(c->server->cfg.name));
        return o;
}

static uint64_t cb_random(void *userdata) {
        Conn *c = userdata;
        return core_random(c->server->core);
}

static CmdContext context_for(Conn *c) {
        /* the UTC offset changes at most with the second (a DST switch): looked up once a second,
         * not for every request */
        static time_t offset_second = -1;
        static long offset;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != offset_second) {
                struct tm tm;
                time_t t = ts.tv_sec;
                localtime_r(&t, &tm);
                offset = tm.tm_gmtoff;
                offset_second = ts.tv_sec;
        }
        return (CmdContext){
                .now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
                .utc_offset = offset,
                .random = cb_random,
                .stats = cb_stats,
                .whoami = cb_whoami,
                .userdata = c,
        };
}

static int on_frame(void *userdata, const Frame *f) {
        Conn *c = userdata;
        EnhancedState *st = state_of(c->server);
        CmdContext ctx = context_for(c);
        CmdKind kind = CMD_INVALID;
        struct json_object *reply = NULL;
        char msg[160];

        Plugin *p = plugin_of(c->server);
        if (p) {
                if (st)
                        st->requests++;
                return on_plugin_frame(c, p, f);
        }

        switch (f->kind) {
        case FRAME_TEXT:
        case FRAME_LINE: {
                /* not JSON: back unchanged, line and all */
                char nl = '\n';
                if (conn_send(c, f->data, f->len) < 0 || conn_send(c, &nl, 1) < 0)
                        return -1;
                return 0;
        }
        case FRAME_OBJECT:
                reply = cmd_handle(f->object, &ctx, &kind);
                break;
        case FRAME_TOO_LONG:
                snprintf(msg, sizeof(msg), "Message too long (max_message is %u bytes): discarded", c->server->cfg.max_message);
                reply = cmd_error(msg, &ctx);
                break;
        case FRAME_INVALID:
                snprintf(msg, sizeof(msg), "Invalid JSON: %s", f->error ? f->error : "parse error");
                reply = cmd_error(msg, &ctx);
                break;
        }
        if (st) {
                st->requests++;
                st->by_kind[kind]++;
                if (kind == CMD_INVALID || kind == CMD_UNKNOWN || f->kind != FRAME_OBJECT)
                        st->errors++;
        }
        return conn_send_json(c, reply) < 0 ? -1 : 0;
}

static void enhanced_on_connect(Conn *c) {
        EnhancedConn *ec = calloc(1, sizeof(EnhancedConn));
        if (!ec) {
                conn_abort(c, "out of memory");
                return;
        }
        c->userdata = ec;
        if (!state_of(c->server)) {
                framed_init(c, &ec->framed, FRAMER_JSON);
                conn_abort(c, "out of memory");
                return;
        }
        Plugin *p = NULL;
        if (strcmp(c->server->cfg.handler, HANDLER_JSON_COMMANDS) != 0) {
                p = plugin_of(c->server);
                if (!p) {
                        framed_init(c, &ec->framed, FRAMER_JSON);
                        conn_abort(c, "handler plug-in unavailable");
                        return;
                }
        }
        framed_init(c, &ec->framed, p && p->h->framing == TCPEDU_FRAMING_LINE ? FRAMER_LINE : FRAMER_JSON);
        if (p && p->h->on_connect)
                p->h->on_connect(p->state, (tcpedu_conn *)c);
}

static void enhanced_on_disconnect(Conn *c) {
        Plugin *p = c->userdata ? plugin_of(c->server) : NULL;
        if (p && p->h->on_disconnect)
                p->h->on_disconnect(p->state, (tcpedu_conn *)c);
}

static void enhanced_on_data(Conn *c, const uint8_t *data, size_t len) {
        EnhancedConn *ec = c->userdata;
        if (ec)
                (void)framed_feed(c, &ec->framed, data, len, on_frame, c);
}

static void enhanced_conn_free(Conn *c) {
        EnhancedConn *ec = c->userdata;
        if (!ec)
                return;
        framed_done(&ec->framed);
        free(ec);
        c->userdata = NULL;
}

static void enhanced_describe(Server *s, struct json_object *out) {
        json_object_object_add(out, "handler", json_object_new_string(s->cfg.handler));
        EnhancedState *st = s->type_state;
        if (st && st->plugin_ok && st->plugin.h->name)
                json_object_object_add(out, "plugin", json_object_new_string(st->plugin.h->name));
        json_object_object_add(out, "counters", stats_json(s));
}

static void enhanced_free_state(Server *s) {
        EnhancedState *st = s->type_state;
        if (st)
                plugin_close(&st->plugin);
        free(s->type_state);
        s->type_state = NULL;
}

const ServerVtable enhanced_vtable = {
        .name = "enhanced",
        .on_connect = enhanced_on_connect,
        .on_data = enhanced_on_data,
        .on_disconnect = enhanced_on_disconnect,
        .conn_free = enhanced_conn_free,
        .describe = enhanced_describe,
        .free_state = enhanced_free_state,
        .batch_output = true,
};
