/* SPDX-License-Identifier: MIT */
#pragma once

/* The verbs about the daemon and its servers and connections: one request each, the reply printed
 * as a table (monitor: a stream of events). */
#include "verbs.h"

int verb_status(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_servers(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_show(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_server_action(const CtlVerb *v, const CtlOptions *o, int argc, char **argv); /* start, stop, restart */
int verb_connections(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_conn(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_kick(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_reload(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_monitor(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_stats(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_log_level(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_chat_say(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
