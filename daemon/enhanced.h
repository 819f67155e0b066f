/* SPDX-License-Identifier: MIT */
#pragma once

#include "server-type.h"

/* The enhanced server type (enhanced.c): JSON commands or a handler plug-in. */
extern const ServerVtable enhanced_vtable;
