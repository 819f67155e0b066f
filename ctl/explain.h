/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpeductl explain [STATE]: the TCP state diagram, or one state with the transitions into and out
 * of it, from common/tcp-state's tables. Needs no daemon. */
#include "verbs.h"

int verb_explain(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
