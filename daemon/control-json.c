/* SPDX-License-Identifier: MIT */
/* JSON views of the daemon's objects for control replies: servers, connections and what the
 * kernel says of them, and the lookups of the objects a request names. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "control-internal.h"
#include "kernel-tcp.h"
#include "server-type.h"

/* ---- JSON views of the daemon's objects ---- */

static const char *server_state(const Server *s) {
        return s->running ? "running" : "stopped";
}

struct json_object *server_to_json(const Server *s, bool detailed) {
        struct json_object *o = json_object_new_object(), *listen = json_object_new_array();
        char a[SOCKADDR_STR_MAX];

        json_object_object_add(o, "name", json_object_new_string(s->cfg.name));
        json_object_object_add(o, "type", json_object_new_string(s->vt->name));
        json_object_object_add(o, "state", json_object_new_string(server_state(s)));
        for (unsigned i = 0; i < s->cfg.n_listen; i++) {
                struct json_object *l = json_object_new_object();
                json_object_object_add(l, "configured", json_object_new_string(s->cfg.listen[i].spec));
                const char *actual = NULL;
                bool passed = false;
                for (unsigned k = 0; k < s->n_listeners; k++)
                        if (strcmp(s->listeners[k]->spec, s->cfg.listen[i].spec) == 0) {
                                actual = sockaddr_format(&s->listeners[k]->bound.sa, a, sizeof(a));
                                passed = s->listeners[k]->passed;
                        }
                json_object_object_add(l, "address", actual ? json_object_new_string(actual) : NULL);
                if (passed)
                        json_object_object_add(l, "systemd", json_object_new_boolean(true));
                json_object_array_add(listen, l);
        }
        json_object_object_add(o, "listen", listen);
        json_object_object_add(o, "connections", json_object_new_int64(s->n_conns));
        if (!detailed)
                return o;
        struct json_object *limits = json_object_new_object(), *refused = json_object_new_object();
        json_object_object_add(limits, "backlog", json_object_new_int64(s->cfg.backlog));
        json_object_object_add(limits, "max_clients", json_object_new_int64(s->cfg.max_clients));
        json_object_object_add(limits, "max_clients_per_ip", json_object_new_int64(s->cfg.max_clients_per_ip));
        json_object_object_add(limits, "idle_timeout", json_object_new_int64(s->cfg.idle_timeout));
        json_object_object_add(limits, "buffer_size", json_object_new_int64((int64_t)s->cfg.buffer_size));
        json_object_object_add(o, "autostart", json_object_new_boolean(s->cfg.autostart));
        json_object_object_add(o, "limits", limits);
        json_object_object_add(o, "accepted", json_object_new_int64((int64_t)s->accepted));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)s->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)s->bytes_out));
        for (int r = 0; r < _REFUSE_MAX; r++)
                json_object_object_add(refused, refuse_reason_to_string((RefuseReason)r), json_object_new_int64((int64_t)s->refused[r]));
        json_object_object_add(o, "refused", refused);
        if (s->vt->describe)
                s->vt->describe((Server *)s, o);
        return o;
}

/* A list asks the kernel about at most this many closed connections (one netlink round trip
 * each, on the event loop): the rest get no kernel_state, and `conn ID` asks for any one. */

static int conn_kernel_state(Control *ctl, const Conn *c, const char **ret_via) {
        if (c->fd >= 0) {
                *ret_via = "tcp_info";
                return tcp_kernel_state(c->fd);
        }
        SockDiagResult d;
        if (ctl->list_diag_budget == 0) {
                *ret_via = "not asked (more than 256 closed connections in one list; see conn ID)";
                return -EAGAIN;
        }
        if (ctl->list_diag_budget != UINT_MAX)
                ctl->list_diag_budget--;
        *ret_via = "sock_diag";
        return sock_diag_lookup(ctl->core->diag_fd, &c->local.sa, &c->peer.sa, &d) < 0 ? -ENOENT : d.state;
}

struct json_object *conn_to_json(Control *ctl, Conn *c, bool detailed) {
        struct json_object *o = json_object_new_object();
        char a[SOCKADDR_STR_MAX];
        const char *via;
        uint64_t now = core_now(ctl->core, CLOCK_REALTIME);

        conn_refresh(c);
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "server", c->session ? NULL : json_object_new_string(c->server->cfg.name));
        json_object_object_add(o, "role", json_object_new_string(c->session ? "client" : "server"));
        if (c->session) {
                Session *s = c->session;
                json_object_object_add(o, "owner_uid", json_object_new_int64(s->owner));
                json_object_object_add(o, "buffered", json_object_new_int64((int64_t)byte_queue_len(&s->rx)));
                json_object_object_add(o, "watched", json_object_new_boolean(s->watcher != NULL));
        }
        json_object_object_add(o, "peer", json_object_new_string(sockaddr_format(&c->peer.sa, a, sizeof(a))));
        json_object_object_add(o, "local", json_object_new_string(sockaddr_format(&c->local.sa, a, sizeof(a))));
        json_object_object_add(o, "state", json_object_new_string(tcp_state_to_string(c->state)));
        int k = conn_kernel_state(ctl, c, &via);
        json_object_object_add(o, "kernel_state", k > 0 ? json_object_new_string(tcp_kernel_state_to_string(k)) : NULL);
        json_object_object_add(o, "kernel_source", json_object_new_string(via));
        json_object_object_add(o, "state_source", json_object_new_string(c->kernel_tracked ? "bpf" : "tcp_info"));
        json_object_object_add(o, "age_usec", json_object_new_int64((int64_t)(now - c->timeline[0].usec)));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)c->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)c->bytes_out));
        if (!detailed)
                return o;

        struct json_object *tl = json_object_new_array();
        for (unsigned i = 0; i < c->n_timeline; i++) {
                struct json_object *e = json_object_new_object();
                uint64_t end = i + 1 < c->n_timeline ? c->timeline[i + 1].usec : now;
                json_object_object_add(e, "state", json_object_new_string(tcp_state_to_string(c->timeline[i].state)));
                json_object_object_add(e, "source", json_object_new_string(state_source_to_string(c->timeline[i].source)));
                json_object_object_add(e, "since_usec", json_object_new_int64((int64_t)c->timeline[i].usec));
                json_object_object_add(e, "duration_usec", json_object_new_int64((int64_t)(end - c->timeline[i].usec)));
                json_object_object_add(e, "current", json_object_new_boolean(i + 1 == c->n_timeline));
                json_object_array_add(tl, e);
        }
        json_object_object_add(o, "timeline", tl);
        json_object_object_add(o, "close_reason", c->close_reason ? json_object_new_string(c->close_reason) : NULL);
        if (c->kernel_tracked || c->retransmits || c->resets_sent || c->resets_received) {
                /* seen by the eBPF source, each also a journal record */
                struct json_object *kv = json_object_new_object();
                json_object_object_add(kv, "retransmits", json_object_new_int64(c->retransmits));
                json_object_object_add(kv, "resets_sent", json_object_new_int64(c->resets_sent));
                json_object_object_add(kv, "resets_received", json_object_new_int64(c->resets_received));
                json_object_object_add(o, "kernel_events", kv);
        }
        if (c->session) {
                Session *s = c->session;
                struct json_object *so = json_object_new_object();
                json_object_object_add(so, "owner_uid", json_object_new_int64(s->owner));
                json_object_object_add(so, "owner_pid", json_object_new_int64(s->owner_pid));
                json_object_object_add(so, "connected", json_object_new_boolean(s->connected));
                json_object_object_add(so, "failed", json_object_new_boolean(s->failed));
                json_object_object_add(so, "peer_closed", json_object_new_boolean(s->peer_eof));
                json_object_object_add(so, "ephemeral", json_object_new_boolean(s->opener != NULL));
                json_object_object_add(so, "buffered", json_object_new_int64((int64_t)byte_queue_len(&s->rx)));
                json_object_object_add(so, "buffer_size", json_object_new_int64((int64_t)c->server->cfg.buffer_size));
                json_object_object_add(so, "read", json_object_new_int64((int64_t)s->rx_total_read));
                json_object_object_add(so, "reading_paused", json_object_new_int64((int64_t)s->rx_paused));
                json_object_object_add(so, "unsent", json_object_new_int64((int64_t)byte_queue_len(&c->out)));
                json_object_object_add(so, "watched", json_object_new_boolean(s->watcher != NULL));
                json_object_object_add(o, "session", so);
        }

        struct tcp_info ti;
        if (c->fd >= 0 && tcp_info_get(c->fd, &ti) == 0) {
                struct json_object *t = json_object_new_object();
                json_object_object_add(t, "state", json_object_new_string(tcp_kernel_state_to_string(ti.tcpi_state)));
                json_object_object_add(t, "rtt_usec", json_object_new_int64(ti.tcpi_rtt));
                json_object_object_add(t, "rttvar_usec", json_object_new_int64(ti.tcpi_rttvar));
                json_object_object_add(t, "snd_cwnd", json_object_new_int64(ti.tcpi_snd_cwnd));
                json_object_object_add(t, "snd_mss", json_object_new_int64(ti.tcpi_snd_mss));
                json_object_object_add(t, "retransmits", json_object_new_int64(ti.tcpi_retransmits));
                json_object_object_add(t, "total_retrans", json_object_new_int64(ti.tcpi_total_retrans));
                json_object_object_add(t, "unacked", json_object_new_int64(ti.tcpi_unacked));
                json_object_object_add(t, "lost", json_object_new_int64(ti.tcpi_lost));
                json_object_object_add(t, "rcv_space", json_object_new_int64(ti.tcpi_rcv_space));
                json_object_object_add(o, "tcp_info", t);
        } else
                json_object_object_add(o, "tcp_info", NULL);
        return o;
}

Conn *find_conn(Control *ctl, const char *id, CommandContext *ctx) {
        Conn *found = NULL;
        size_t len = strlen(id);

        if (len < 4 || len > ID_STR_LEN) {
                command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "connection id '%s': give at least 4 characters of the id", id);
                return NULL;
        }
        FOREACH_LIST(ctl->core, i, head) {
                for (ListNode *n = head->next; n != head; n = n->next) {
                        Conn *c = list_entry(n, Conn, node);
                        if (strncmp(c->id, id, len) != 0)
                                continue;
                        if (found && found != c) {
                                command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "connection id '%s' is ambiguous", id);
                                return NULL;
                        }
                        found = c;
                }
        }
        if (!found)
                command_fail(ctx, CONTROL_ERROR_NOT_FOUND, "no connection '%s'", id);
        return found;
}

Server *find_server_arg(CommandContext *ctx, bool required) {
        Control *ctl = ctx->client->control;
        const char *name = NULL;
        int r = control_arg_string(ctx->req->args, "server", &name);
        if (r == -EBADMSG) {
                command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "\"server\" must be a string");
                return NULL;
        }
        if (r == -ENOENT) {
                if (required)
                        command_fail(ctx, CONTROL_ERROR_BAD_REQUEST, "missing argument \"server\"");
                return NULL;
        }
        for (size_t i = 0; i < ctl->core->n_servers; i++)
                if (strcmp(ctl->core->servers[i]->cfg.name, name) == 0)
                        return ctl->core->servers[i];
        command_fail(ctx, CONTROL_ERROR_NOT_FOUND, "no server '%s'", name);
        return NULL;
}

int with_diag_budget(CommandContext *ctx, int (*list)(CommandContext *ctx)) {
        Control *ctl = ctx->client->control;
        ctl->list_diag_budget = LIST_DIAG_MAX;
        int r = list(ctx);
        ctl->list_diag_budget = UINT_MAX;
        return r;
}
