/* SPDX-License-Identifier: MIT */
#pragma once

/* The enhanced server's JSON command protocol (python_tcp's EnhancedTCPServer):
 *   {"command":"echo","data":X}          -> {"status":"success","command":"echo","data":X,"timestamp":T}
 *   {"command":"random","min":A,"max":B} -> {"status":"success","command":"random","result":N,...}
 *   {"command":"time"}                   -> {"status":"success","command":"time","result":"YYYY-MM-DD HH:MM:SS",...}
 *   {"command":"stats"} / {"command":"whoami"}: answers the caller supplies
 * Errors: {"status":"error","message":"...","timestamp":T}. Pure: no I/O, no clock, no randomness of
 * its own; the caller passes them in. */

#include <json-c/json.h>
#include <stdint.h>

typedef struct CmdContext {
        double now; /* seconds since the epoch: "timestamp" */
        long utc_offset; /* seconds east of UTC, for "time" */
        uint64_t (*random)(void *userdata); /* 64 uniformly random bits */
        struct json_object *(*stats)(void *userdata); /* the server's counters */
        struct json_object *(*whoami)(void *userdata); /* the caller's connection */
        void *userdata;
} CmdContext;

typedef enum CmdKind {
        CMD_ECHO,
        CMD_RANDOM,
        CMD_TIME,
        CMD_STATS,
        CMD_WHOAMI,
        CMD_UNKNOWN,
        CMD_INVALID, /* not a command: no "command" string */
        _CMD_KIND_MAX,
} CmdKind;

const char *cmd_kind_to_string(CmdKind k);

/* The reply to one request object (a new object; NULL only on OOM). *ret_kind says which command
 * it was, for counting. */
struct json_object *cmd_handle(struct json_object *request, const CmdContext *ctx, CmdKind *ret_kind);
/* Error replies for what framing rejected before any command could be read. */
struct json_object *cmd_error(const char *message, const CmdContext *ctx);
