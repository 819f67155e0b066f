/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpeductl connect HOST:PORT: an interactive client like nc, through a session of tcpedud.
 * Standard input goes to the peer, what the peer sends to standard output. */
#include "verbs.h"

int verb_connect(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
