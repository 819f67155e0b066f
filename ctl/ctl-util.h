/* SPDX-License-Identifier: MIT */
#pragma once

/* What tcpeductl's verbs share: exit codes, usage errors, options with a value, seconds, and where
 * a client session connects to and from (HOST:PORT, --bind ADDR[:PORT]). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control-proto.h"
#include "macro.h"
#include "sockaddr-util.h"

/* Exit codes, from sysexits.h where one fits. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 64,
        EXIT_UNAVAILABLE = 69,
        EXIT_PERMISSION = 77,
        EXIT_CONFIG_REJECTED = 78,
};

/* The exit code for an error reply of the daemon. */
int exit_code_for(ControlError e);

/* Print "tcpeductl VERB: MESSAGE" and a pointer to VERB --help on stderr. Returns EXIT_USAGE. */
int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);

/* "--name VALUE", "--name=VALUE", or "SHORT VALUE" (short_name may be NULL) at argv[*i]: 1 with
 * *ret_value set (and *i past the value), 0 if argv[*i] is something else, -1 if the value is
 * missing (printed as a usage error of verb). */
int option_value(const char *verb, int argc, char **argv, int *i, const char *name, const char *short_name, const char **ret_value);

/* An option of a verb that takes one positional argument: with a value (value set) or a flag (flag set). */
typedef struct VerbOption {
        const char *name;
        const char **value;
        bool *flag;
} VerbOption;

/* argv[1..] as the options of the table and exactly one positional argument, named what in the
 * error when missing. Returns EXIT_OK or EXIT_USAGE (printed). */
int verb_args_parse(const char *verb, int argc, char **argv, const VerbOption *opts, size_t n_opts, const char *what,
                    const char **ret_positional);

/* A number of seconds (decimals allowed) as milliseconds, from min_ms to max_ms. Returns 0,
 * -EINVAL (not a number, or above max_ms) or -ERANGE (below min_ms). */
int parse_seconds(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret_ms);

/* --timeout S of verb, as parse_seconds(); a usage error names the range. Returns an exit code. */
int timeout_option(const char *verb, const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret_ms);

/* Where a client session connects to and from, as the daemon takes them: numeric ADDR:PORT. */
typedef struct SessionAddresses {
        char bind[SOCKADDR_STR_MAX]; /* "" without --bind */
        char (*targets)[SOCKADDR_STR_MAX]; /* of bind's family, without duplicates, in getaddrinfo's order */
        size_t n_targets; /* at least 1 */
} SessionAddresses;

/* Resolve target "HOST:PORT" (HOST a name or a numeric address, IPv6 as [ADDR]:PORT, PORT a number
 * or a service name) with getaddrinfo (AI_ADDRCONFIG off: every address of the name), and parse
 * bind "ADDR[:PORT]" (numeric, IPv6 as [ADDR] or [ADDR]:PORT or bare; NULL: none). Returns EXIT_OK
 * with *ret to free with session_addresses_done(), or an exit code once the error is printed:
 * EXIT_USAGE for what the user wrote wrong, EXIT_FAILED when HOST does not resolve. */
int session_addresses_resolve(const char *verb, const char *target, const char *bind, SessionAddresses *ret);
void session_addresses_done(SessionAddresses *a);

/* --how of kick and session close: close, shutdown or reset. */
bool close_how_valid(const char *how);

/* For the verbs that stream until interrupted (monitor, session watch): SIGINT and SIGTERM call
 * handler, and stdout is line-buffered so each event shows at once. */
void ctl_catch_interrupt(void (*handler)(int sig));
