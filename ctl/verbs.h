/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpeductl's verbs as data: one entry per verb drives the argument check, the help and the
 * dispatch. A verb that sends one request of the control protocol names its ControlVerb; explain
 * (which sends none), connect and chat (which send several) are CTL_REQUEST_LOCAL.
 * tests/unit/test-verb-lists checks the table against the protocol and the bash completion. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "control-proto.h"

/* The global options: -s, -c, -j. */
typedef struct CtlOptions {
        const char *socket_path; /* NULL: the daemon's rule (socket-path.h) */
        const char *config_path; /* the daemon's config to read control_socket from; NULL: its default */
        bool json;
} CtlOptions;

#define CTL_REQUEST_LOCAL _CONTROL_VERB_INVALID

typedef struct CtlVerb CtlVerb;
/* argv[0] is the verb's last word, argv[1..argc) its arguments and options, global options
 * removed; argv[argc] is NULL. Returns the exit code. */
typedef int (*CtlVerbRun)(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);

struct CtlVerb {
        const char *name; /* a sub-verb is two words: "session open" */
        const char *args; /* the synopsis of its arguments */
        const char *help; /* one line, without the final '.' */
        int min_args, max_args; /* positional arguments, checked before run() unless own_options */
        ControlVerb request; /* the request it sends, or CTL_REQUEST_LOCAL */
        CtlVerbRun run;
        bool own_options; /* run() parses its options itself */
        const char *details; /* VERB --help: what follows the help line; NULL: nothing */
};

/* ---- verbs.c ---- */

/* All of them, in the order of the help. */
const CtlVerb *ctl_verbs(size_t *ret_n);
const CtlVerb *ctl_verb_find(const char *name);
/* The name of v's request on the wire; NULL for a local verb. */
const char *ctl_verb_command(const CtlVerb *v);

void ctl_help(FILE *f);
void ctl_session_help(FILE *f);
void ctl_verb_help(const CtlVerb *v);
