/* SPDX-License-Identifier: MIT */
#pragma once

/* Started as root, run as [daemon] user and group (privileges.c). */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "core.h"

/* Check [daemon] user and group: errors as FILE:LINE: message (tcpedud -t, start, reload). */
int privileges_validate(const Config *c, ConfigErrors *errs);
/* Started as root: switch to the configured user and group (setgroups, setgid, setuid), keeping no
 * capability but CAP_BPF when keep_bpf (the eBPF source is in use). Called once the listeners, the
 * control socket and the eBPF source are open. Not root: the capabilities it was started with
 * (systemd's AmbientCapabilities=) are given up the same way.
 * control_socket, if not NULL, is the socket file the daemon created (and control_dir_created, its
 * directory too): given to the new user.
 * -errno with *error set if the switch failed: the daemon must not go on. */
int privileges_drop(Core *core, const char *control_socket, bool control_dir_created, bool keep_bpf, char *error, size_t error_size);
