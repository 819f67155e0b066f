/* SPDX-License-Identifier: MIT */
#pragma once

/* session open|send|recv|close|watch and sessions: client sessions driven one request at a time. */
#include "verbs.h"

int verb_session_open(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_session_send(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_session_recv(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_session_close(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_session_watch(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
int verb_sessions(const CtlVerb *v, const CtlOptions *o, int argc, char **argv);
