/* SPDX-License-Identifier: MIT */
#pragma once

/* A server: its listeners, accepting, and the limits on its connections (server.c). A server and
 * its connections are one component: conn.c and server.c call each other. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "core.h"
#include "id.h"
#include "list.h"
#include "sockaddr-util.h"
#include "tcpedud.h"

#define ACCEPTS_PER_WAKEUP 64

typedef enum RefuseReason {
        REFUSE_MAX_CONNECTIONS,
        REFUSE_MAX_CLIENTS,
        REFUSE_MAX_CLIENTS_PER_IP,
        REFUSE_FD_LIMIT,
        REFUSE_NO_MEMORY,
        _REFUSE_MAX,
} RefuseReason;

struct Listener {
        Server *server;
        int fd;
        SockaddrUnion bound; /* the actual address: the port the kernel picked when 0 was asked */
        char spec[SOCKADDR_STR_MAX]; /* as configured, to match listeners across reloads */
        char id[ID_STR_LEN + 1];
        bool port_zero; /* configured with port 0: only its own server may take it over */
        bool passed; /* passed by systemd: never closed, handed back to m->passed when let go */
        bool port_watched; /* its port is watched by the eBPF source (conn-kernel.c) */
        sd_event_source *source;
};

typedef struct IpCount {
        struct IpCount *next;
        SockaddrUnion addr;
        unsigned count;
} IpCount;

struct Server {
        Core *core;
        ServerConfig cfg; /* its own copy: survives the Config it came from */
        const ServerVtable *vt;
        bool running;
        bool removed; /* gone from the config; freed when its last connection ends */
        unsigned refs; /* connections, open or lingering, that still point here */

        Listener *listeners[LISTEN_MAX];
        unsigned n_listeners;

        ListNode conns; /* open connections, least recently active first: the idle timer's queue */
        unsigned n_conns;
        sd_event_source *idle_timer;

        IpCount **ip_buckets; /* per-address counts, only when max_clients_per_ip is set */
        size_t n_ip_buckets, n_ips;

        void *type_state; /* the server type's own, freed by vt->free_state */

        uint64_t accepted, bytes_in, bytes_out;
        uint64_t refused[_REFUSE_MAX];
        uint64_t refused_logged_usec[_REFUSE_MAX]; /* refusals are logged at most once a second */
        uint64_t refused_suppressed[_REFUSE_MAX];
};

/* A server of type vt (the manager's registry chooses it from cfg->type). */
int server_new(Core *core, const ServerConfig *cfg, const ServerVtable *vt, Server **ret);
Server *server_unref(Server *s);
/* Bind and listen on every address; on failure nothing stays bound and *ret_error says why. */
int server_prepare_listeners(Server *s, Listener **reuse, size_t n_reuse, Listener **ret, char *error, size_t error_size);
int server_start(Server *s, Listener **prepared, bool announce);
void listener_discard(Listener *l); /* a prepared listener that was never started */
void server_stop(Server *s, const char *reason);
void listener_close(Listener *l, const char *reason);
void server_arm_idle_timer(Server *s);
/* The idle timeout changed: the timer is armed again for it. */
void server_rearm_idle_timer(Server *s);
void server_log_refusal(Server *s, RefuseReason r, const struct sockaddr *peer);
void server_ip_release(Server *s, const struct sockaddr *peer);
bool server_ip_counting(const Server *s);
const char *refuse_reason_to_string(RefuseReason r);
int listener_accept_resume(Core *core);
/* Out of fds and no spare: stop accepting (servers and the core's accept sources) for 100 ms. */
void accept_pause(Core *core);
