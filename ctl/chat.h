/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpeductl chat HOST:PORT --user NAME: an interactive client for a JSON chat server, through a
 * session of tcpedud. On a terminal it edits the line being typed (line-editor.h) and keeps it
 * below what arrives; otherwise it reads lines from stdin. */
#include "verbs.h"

int verb_chat(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
