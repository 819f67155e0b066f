/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpedud's data model, top to bottom: the manager owns servers, a server owns listeners and
 * connections, a connection owns its fd, its state timeline and (only while a write is partial)
 * an output queue. Each module has its own header beside its .c; this one only names the objects,
 * so that a header can point at one without pulling in its module.
 *
 * Layers, lowest first (docs/ARCHITECTURE.md; tests/structure/layers.py checks them): a module
 * calls only modules of its own layer or below, and news travels up through callbacks.
 *   core      journal, core (clock, deferred free, event sinks, random), passed-fds, privileges
 *   conn      conn-*, server (one component: a server owns its connections)
 *   types     echo, framed, enhanced, plugin, chat, session (through server-type.h)
 *   control   control-* (a sink of the core's events, a caller of everything below)
 *   manager   manager-* (the composition root: builds, registers, reloads, stops)
 *   main */

typedef struct Core Core;
typedef struct Manager Manager;
typedef struct Server Server;
typedef struct Listener Listener;
typedef struct Conn Conn;
typedef struct ConnTimer ConnTimer;
typedef struct Journal Journal;
typedef struct Session Session;
typedef struct Control Control;
typedef struct ControlClient ControlClient;
typedef struct ServerVtable ServerVtable;
