/* SPDX-License-Identifier: MIT */
#pragma once

#include "server-type.h"

/* The chat server type (chat.c). */
extern const ServerVtable chat_vtable;
/* Post a server notice to a chat room; returns the number of members, or -errno. */
int chat_say(Server *s, const char *text);
