/* SPDX-License-Identifier: MIT */
#pragma once

/* A tcpedud built in-process for the fuzz targets that need a daemon context: the real Manager,
 * servers, control socket and event loop, with the config given, driven one event-loop iteration
 * at a time without blocking. It is built once per process and kept between inputs.
 *
 * As root it first moves into a network namespace of its own with only the loopback interface up:
 * listeners get fixed ports there, and a client session the input asks for can reach nothing but
 * this process's own servers (a connect anywhere else fails at once, ENETUNREACH). Without root
 * there is no such namespace: servers listen on port 0 and client sessions are turned off. */

#include <stdbool.h>

#include "conn.h"
#include "manager.h"
#include "server-type.h"
#include "server.h"
#include "session.h"

typedef struct FuzzDaemon {
        Manager *manager;
        bool netns; /* in a private network namespace: fixed ports and client sessions */
        char dir[64]; /* private directory: the config and the control socket */
        char config_path[96];
        char control_path[96];
        unsigned long journal_entries; /* entries the daemon wrote to the (stubbed) journal */
} FuzzDaemon;

extern FuzzDaemon fuzz_daemon;

/* Enter the network namespace if possible; returns whether it did. Call first. */
bool fuzz_daemon_netns(void);
/* Write the config (a [daemon] section naming the private control socket, then body) and start
 * the daemon with it. Aborts on failure. */
void fuzz_daemon_start(const char *body);
/* Run the event loop until nothing is ready (at most max_rounds iterations, none of which waits). */
void fuzz_daemon_pump(unsigned max_rounds);
/* A non-blocking TCP connection to a server's first listener; -1 if it does not run. */
int fuzz_daemon_connect(const char *server);
/* Read and drop what is waiting on a non-blocking socket; false once it is closed (EOF or error). */
bool fuzz_drain(int fd);
