/* SPDX-License-Identifier: MIT */
#pragma once

/* The dispatch table of control requests (control-dispatch.c). */

#include <stdbool.h>

#include "control-proto.h"

/* True if the daemon has a handler for v: every ControlVerb must have one (tests/unit/test-verb-lists). */
bool control_dispatch_handles(ControlVerb v);
