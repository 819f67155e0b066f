/* SPDX-License-Identifier: MIT */
#pragma once

/* One client session for an interactive client (connect, chat): opened ephemeral and watched over
 * a Link of its own, so that the daemon tracks and logs the client side of the connection and
 * ends the session when we go. What the daemon sends is split into lines: {"event":{...}} lines
 * carry the session's transitions and data, the others are replies, matched by "id". At most one
 * session-send is outstanding: the owner does not read its input while one waits (the daemon
 * defers the reply while the peer does not keep up, and so slows us down). */
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

#define STDIN_CHUNK (32u << 10) /* bytes per session-send: 44 KiB in base64, within a 64 KiB request */

typedef struct Client Client;
struct Client {
        Link link;
        bool verbose; /* -v: transitions and events on stderr */
        char id[64]; /* the session's */
        bool established, open_failed, peer_closed, shut, close_sent, disconnected, reset;
        int64_t open_id, send_id, close_id; /* requests waiting for their reply; 0: none */
        char fail_msg[320]; /* session-open's connect-failed message */
        char reason[256]; /* of the disconnect */
        bool done; /* code is the exit code */
        int code;
        void (*on_data)(Client *c, const uint8_t *p, size_t n); /* what the peer sent */
        void (*on_disconnected)(Client *c); /* our socket is closed: nothing more will come */
};

/* The arguments of connect and chat. */
typedef struct ClientArgs {
        const char *verb;
        const char *target, *bind, *user;
        int64_t timeout_ms;
        bool verbose;
} ClientArgs;

/* argv[0] the verb; chat also takes --user NAME. Returns an exit code, the usage error printed. */
int client_args_parse(int argc, char **argv, bool chat, ClientArgs *ret);

/* Resolve the target and --bind, then open the session, each address in turn until one connects.
 * Returns an exit code. */
int client_open(Client *c, const char *socket_path, const ClientArgs *a);

/* One round of a loop: wait (at most timeout_ms) for the control socket, the signal pipe and the
 * caller's fds, then send and handle what the daemon sent. Their revents tell the caller. */
void client_poll(Client *c, struct pollfd *extra, size_t n_extra, int timeout_ms);

/* Queue a session-send of p[0..n): as text when it is, else (or when escaping makes the request
 * too long) as base64. 0 or -errno. */
int client_send(Client *c, const uint8_t *p, size_t n);
/* Queue a session-close: "close" or "shutdown" (half-close). */
void client_close(Client *c, const char *how);
/* On a signal: close the session, wait a little for the daemon to take it, exit 128 + signal. */
int client_interrupt(Client *c);

void client_finish(Client *c, int code);
