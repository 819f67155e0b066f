/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpeductl connect and chat: interactive clients through a session of tcpedud.
 * argv[0] is the verb ("connect" or "chat"); argv holds the verb's own arguments and options,
 * global options already removed. socket_path: the resolved control socket. Returns the exit code. */
int interactive_connect(int argc, char **argv, const char *socket_path);
int interactive_chat(int argc, char **argv, const char *socket_path);
