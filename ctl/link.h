/* SPDX-License-Identifier: MIT */
#pragma once

/* The one control-socket client of tcpeductl: every verb and both interactive clients talk to
 * tcpedud through a Link. It connects, checks the greeting, queues requests (one JSON line each)
 * and splits what the daemon sends into lines, both directions in bounded byte queues. The socket
 * is non-blocking: the interactive clients poll it with their other fds, the one-shot verbs use
 * link_call(), which waits. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "byte-queue.h"
#include "control-proto.h"

#define LINK_IN_MAX (CONTROL_REPLY_MAX + 1) /* the longest line taken from the daemon, its newline included */
#define LINK_OUT_MAX (1u << 20) /* requests not yet taken by the daemon */
#define LINK_GREETING_TIMEOUT_MS 10000

/* How a Link tells the user what went wrong: the one-shot verbs print to stderr; chat keeps its
 * line editor out of the way and makes the text safe for a terminal. */
typedef struct LinkHooks {
        void (*say)(const char *msg); /* one message, without "tcpeductl: " and newline; NULL: stderr */
        int (*interrupted)(void); /* while waiting for the greeting: an exit code to give up with, or 0 */
        int permission_exit; /* exit code when connect() says EACCES; EXIT_PERMISSION also says who may connect */
        const char *closed_text; /* the daemon closed before its greeting: these words, or NULL for strerror() */
} LinkHooks;

typedef struct Link {
        int fd; /* -1: not connected */
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        ByteQueue in; /* what the daemon sent and nobody took yet, at most LINK_IN_MAX */
        ByteQueue out; /* requests not yet sent, at most LINK_OUT_MAX */
        int64_t next_id; /* of the next request */
        const LinkHooks *hooks; /* never NULL once open */
} Link;

#define LINK_NULL ((Link){ .fd = -1 })

/* ---- link.c ---- */

/* Connect to path and check the greeting. Returns an exit code (EXIT_OK), failures told through
 * hooks (NULL: the one-shot verbs' way). link_close() is due either way. */
int link_open(Link *l, const char *path, const LinkHooks *hooks);
void link_close(Link *l);

/* Tell the user, through the link's hooks: "tcpeductl: MSG". */
void link_say(const Link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send what is queued without waiting: 0 (some may remain), or -errno. */
int link_flush(Link *l);

/* Read what the daemon sent, without waiting: 1 if something came, 0 if nothing now,
 * -ECONNRESET at its end, -EMSGSIZE if a line does not fit LINK_IN_MAX, or another -errno. */
int link_fill(Link *l);

/* The next complete line (without its newline), taken off the queue; valid until the next
 * link_fill() or link_read_line(). */
bool link_next_line(Link *l, const char **ret, size_t *ret_len);

/* The next line, waiting at most timeout_ms between reads (< 0: no limit). -ETIMEDOUT, -EINTR
 * (a signal came), -ECONNRESET, or what link_fill() says. */
int link_read_line(Link *l, int timeout_ms, const char **ret, size_t *ret_len);

/* Queue a request (args is taken, NULL: {}) and try to send it. Returns its id, or -ENOMEM,
 * -EMSGSIZE (the line is longer than max_line), -ENOBUFS (too much unsent). */
int64_t link_request(Link *l, const char *command, struct json_object *args, size_t max_line);

/* Send a request and wait for its reply, skipping events and other replies (timeout_ms < 0: as
 * long as it takes). Returns EXIT_OK with the reply in *ret, ok or not (free with
 * control_reply_done), or an exit code once the failure to get one is told. */
int link_call(Link *l, const char *command, struct json_object *args, int timeout_ms, ControlReply *ret);
