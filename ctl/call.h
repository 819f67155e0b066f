/* SPDX-License-Identifier: MIT */
#pragma once

/* One request of a one-shot verb: find the socket, connect, call, print the data or the daemon's
 * error. */
#include "link.h"
#include "verbs.h"

#define CTL_REPLY_TIMEOUT_MS 120000
/* How much longer than the daemon's own wait (session-open, session-recv) tcpeductl waits. */
#define CTL_REPLY_MARGIN_MS 10000

/* Find the socket and open a link to it. Returns an exit code, the failure printed. */
int ctl_connect(const CtlOptions *o, Link *ret);

/* Send a request and wait for its reply. On success *ret holds the reply (free with
 * control_reply_done) and the exit code is 0; on a daemon error, its message is printed as
 * "tcpeductl COMMAND: MESSAGE" and the exit code is the error's. */
int ctl_call(Link *l, const char *command, struct json_object *args, ControlReply *ret);

/* Connect, send v's request (args is taken) and print the data: as JSON with --json or without a
 * printer, else with print. Returns the exit code. */
int ctl_simple(const CtlVerb *v, const CtlOptions *o, struct json_object *args, void (*print)(struct json_object *data));

/* {"key":"value"}, or {} when value is NULL. */
struct json_object *args_with(const char *key, const char *value);
