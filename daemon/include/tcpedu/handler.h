/* SPDX-License-Identifier: MIT */
#ifndef TCPEDU_HANDLER_H
#define TCPEDU_HANDLER_H

/* tcpedu/handler.h: handler plug-ins for tcpedud's enhanced server.
 *
 * A plug-in is a shared object named in the config (`[server NAME]`, `type = enhanced`,
 * `handler = /usr/lib/x86_64-linux-gnu/tcpedu/handlers/reverse.so`). It exports one function,
 * tcpedu_handler_get(), returning a table of callbacks; tcpedud frames the connection's bytes into
 * messages and calls on_message once per message. The plug-in answers through the tcpedu_api it is
 * given: it never sees a file descriptor or the event loop, and it must not block.
 *
 * Versioning: abi_version must equal TCPEDU_HANDLER_ABI_VERSION of the tcpedud that loads it;
 * anything else is refused at config check (exit 78). Fields are only ever added at the end of
 * tcpedu_api, with `size` telling how many there are.
 *
 * Everything runs on tcpedud's single event-loop thread. Strings passed in are valid only during
 * the call. A plug-in that runs as root must be owned by root and writable by nobody else. */

#include <stddef.h>
#include <stdint.h>

#define TCPEDU_HANDLER_ABI_VERSION 1
#define TCPEDU_HANDLER_SYMBOL "tcpedu_handler_get"

enum {
        TCPEDU_FRAMING_LINE = 0, /* messages are lines, without their "\n" (and "\r") */
        TCPEDU_FRAMING_JSON = 1, /* messages are JSON objects (their text); other lines as they are */
};

enum {
        TCPEDU_LOG_ERR = 3,
        TCPEDU_LOG_WARNING = 4,
        TCPEDU_LOG_NOTICE = 5,
        TCPEDU_LOG_INFO = 6,
        TCPEDU_LOG_DEBUG = 7,
};

typedef struct tcpedu_conn tcpedu_conn; /* one client connection (opaque) */
typedef struct tcpedu_server tcpedu_server; /* the server the plug-in serves (opaque) */

typedef struct tcpedu_api {
        uint32_t abi_version; /* TCPEDU_HANDLER_ABI_VERSION */
        uint32_t size; /* sizeof(tcpedu_api) of the daemon */

        /* Queue bytes for this connection. 0, or -EINVAL (bad arguments), -EPIPE (closing),
         * -ENOBUFS (its unsent output is over the server's limit: the connection is reset). */
        int (*send)(tcpedu_conn *c, const void *data, size_t len);
        /* Close gracefully once queued output is sent (FIN; the daemon logs the TCP states). */
        void (*close)(tcpedu_conn *c);
        /* Send to every open connection of the server but `except` (may be NULL); returns how many. */
        int (*broadcast)(tcpedu_server *s, const void *data, size_t len, tcpedu_conn *except);

        const char *(*conn_id)(tcpedu_conn *c); /* its UUID, as in the journal */
        const char *(*conn_peer)(tcpedu_conn *c); /* "ADDR:PORT" */
        tcpedu_server *(*conn_server)(tcpedu_conn *c);
        void *(*conn_get_data)(tcpedu_conn *c); /* a pointer the plug-in keeps per connection */
        void (*conn_set_data)(tcpedu_conn *c, void *data);

        const char *(*server_name)(tcpedu_server *s);
        /* A line in the journal (or on stderr), attributed to the server and the plug-in. */
        void (*log)(tcpedu_server *s, int priority, const char *message);
} tcpedu_api;

typedef struct tcpedu_handler {
        uint32_t abi_version; /* TCPEDU_HANDLER_ABI_VERSION */
        const char *name; /* shown by `tcpeductl show` */
        int framing; /* TCPEDU_FRAMING_LINE or TCPEDU_FRAMING_JSON */

        /* All optional but on_message. init runs once per server, before its first connection, and
         * is where the plug-in receives the API: keep the pointer, it stays valid while the plug-in
         * is loaded (a plug-in that replies needs init). A negative return refuses the server's
         * connections (logged). state is handed to every other callback. */
        int (*init)(const tcpedu_api *api, tcpedu_server *s, void **state);
        void (*fini)(void *state);
        void (*on_connect)(void *state, tcpedu_conn *c);
        void (*on_message)(void *state, tcpedu_conn *c, const char *msg, size_t len);
        void (*on_disconnect)(void *state, tcpedu_conn *c); /* free what conn_set_data holds */
} tcpedu_handler;

/* The one symbol a plug-in exports. */
const tcpedu_handler *tcpedu_handler_get(void);

#endif
