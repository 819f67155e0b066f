/* SPDX-License-Identifier: MIT */
#pragma once

/* Which control socket tcpeductl talks to: -s, else $TCPEDU_CONTROL_SOCKET, else the daemon's own
 * rule (control_socket from its config, else the default for this user), falling back to the
 * system daemon's socket for a user who has none of their own. */
#include <stddef.h>

#define CTL_CONFIG_DEFAULT_PATH "/etc/tcpedud/tcpedud.conf" /* as the daemon's config/config.h */
#define CTL_CONFIG_DEFAULT_DROPIN_DIR "/etc/tcpedud/conf.d"
#define CTL_SYSTEM_SOCKET "/run/tcpedud/control.sock"

/* [daemon] control_socket from the daemon's config file (config_path, NULL: the default one) and
 * its drop-ins, into ret ("" when not set). Files that cannot be read are skipped; with an explicit
 * config_path each is named on stderr. Returns 0 or -ENAMETOOLONG. */
int ctl_config_control_socket(const char *config_path, char *ret, size_t size);

/* The path to connect to, into path. Prints why there is none. Returns an exit code. */
int ctl_socket_find(const char *socket_path, const char *config_path, char *path, size_t size);
