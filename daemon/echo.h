/* SPDX-License-Identifier: MIT */
#pragma once

#include "server-type.h"

/* The echo server type (echo.c). */
extern const ServerVtable echo_vtable;
