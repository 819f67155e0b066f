/* SPDX-License-Identifier: MIT */
/* The verb table, and the help it gives. */
#include <string.h>

#include "chat.h"
#include "connect.h"
#include "explain.h"
#include "macro.h"
#include "verbs-daemon.h"
#include "verbs-session.h"
#include "verbs.h"

#define HOW_DETAILS                                                                                                                        \
        "\n  --how close     send FIN, wait up to 5 s for the peer's FIN, then reset (default)\n"                                          \
        "  --how shutdown  half-close: send FIN and keep receiving until the peer closes\n"                                                \
        "  --how reset     send RST at once (SO_LINGER 0)\n"

#define RUNTIME_DETAILS                                                                                                                    \
        "\nThe change lasts until the daemon restarts: the configuration stays the source\n"                                               \
        "of truth, and a reload leaves a server's runtime state alone unless its section changed.\n"

static const CtlVerb verbs[] = {
        { "status", "", "show the daemon's version, uptime, servers and counters", 0, 0, CONTROL_VERB_STATUS, verb_status },
        { "servers", "", "list servers with addresses, state, counts and refusals", 0, 0, CONTROL_VERB_SERVERS, verb_servers },
        { "show", "SERVER", "show one server in detail", 1, 1, CONTROL_VERB_SHOW, verb_show },
        { "start", "SERVER", "start a stopped server (until the daemon restarts)", 1, 1, CONTROL_VERB_START, verb_server_action,
          .details = RUNTIME_DETAILS },
        { "stop", "SERVER", "stop a server: close its listeners and connections", 1, 1, CONTROL_VERB_STOP, verb_server_action,
          .details = RUNTIME_DETAILS },
        { "restart", "SERVER", "stop and start a server", 1, 1, CONTROL_VERB_RESTART, verb_server_action, .details = RUNTIME_DETAILS },
        { "connections", "[SERVER]", "list connections with their TCP state and the kernel's", 0, 1, CONTROL_VERB_CONNECTIONS,
          verb_connections },
        { "conn", "ID", "show a connection's state timeline and TCP_INFO", 1, 1, CONTROL_VERB_CONN, verb_conn },
        { "kick", "ID [--how close|shutdown|reset]", "close a connection: FIN (default), half-close, or RST", 1, 3, CONTROL_VERB_KICK,
          verb_kick, true, HOW_DETAILS },
        { "reload", "", "reload the configuration and wait for the result", 0, 0, CONTROL_VERB_RELOAD, verb_reload },
        { "monitor", "[--server NAME]", "stream events live until interrupted", 0, 2, CONTROL_VERB_MONITOR, verb_monitor, true,
          "\n  --server NAME   only events of this server\n" },
        { "stats", "", "print counters as key=value lines", 0, 0, CONTROL_VERB_STATS, verb_stats },
        { "log-level", "LEVEL", "set the daemon's log level (emerg ... debug)", 1, 1, CONTROL_VERB_LOG_LEVEL, verb_log_level },
        { "chat-say", "SERVER TEXT", "post a server notice to a chat room", 2, 2, CONTROL_VERB_CHAT_SAY, verb_chat_say },
        { "explain", "[STATE]", "explain a TCP state, or draw the state diagram (no daemon needed)", 0, 1, CTL_REQUEST_LOCAL,
          verb_explain },
        { "session open", "HOST:PORT [--bind ADDR[:PORT]] [--timeout S]",
          "open a TCP connection from the daemon (a client session); print its ID", 1, 1, CONTROL_VERB_SESSION_OPEN, verb_session_open,
          true,
          "\n  --bind ADDR[:PORT]  connect from this local address (port 0 or none: any)\n"
          "  --timeout S         give up when there is no answer within S seconds\n"
          "                      (decimals allowed, 0.001 to 600; default 10)\n"
          "\nHOST may be a name: each of its addresses is tried in turn until one connects.\n"
          "IPv6 addresses are written [ADDR]:PORT. Prints the session's ID once it is\n"
          "established (ID=$(tcpeductl session open ...)); exits with 1 if it cannot connect.\n"
          "The session stays open after tcpeductl exits, until 'session close' or its idle timeout.\n" },
        { "session send", "ID TEXT|- [-n]", "send TEXT and a newline (-n: without), or standard input with -", 2, 2,
          CONTROL_VERB_SESSION_SEND, verb_session_send, true,
          "\n  -n    send TEXT exactly, without the newline\n"
          "  -     send standard input byte for byte until its end (binary safe)\n"
          "  --    what follows is TEXT even if it begins with '-'\n"
          "\nEach piece waits for the daemon's answer, which waits while more than\n"
          "session_buffer bytes are not yet sent to the peer. Prints nothing on success.\n" },
        { "session recv", "ID [--timeout S] [--bytes N | --line]", "receive what the session got and write it to standard output", 1, 1,
          CONTROL_VERB_SESSION_RECV, verb_session_recv, true,
          "\n  --timeout S   wait at most S seconds (decimals allowed, 0 to 3600; default 5)\n"
          "  --bytes N     wait for exactly N bytes\n"
          "  --line        wait for one line (its newline included)\n"
          "\nWithout --bytes or --line, takes whatever has arrived, waiting for at least one\n"
          "byte. The bytes go to standard output as they are. Exits with 1 on a timeout,\n"
          "or when the peer closed the connection and there was nothing (or, with --bytes,\n"
          "not enough) to read.\n" },
        { "session close", "ID [--how close|shutdown|reset]", "close a session: FIN (default), half-close, or RST", 1, 1,
          CONTROL_VERB_SESSION_CLOSE, verb_session_close, true,
          HOW_DETAILS "\nPrints \"ID: HOW, now STATE\". A session in CLOSE_WAIT (the peer closed first)\n"
                      "stays there until it is closed: then it sends its FIN and goes to LAST_ACK.\n" },
        { "session watch", "ID", "stream a session's transitions, data and events until it ends", 1, 1, CONTROL_VERB_SESSION_WATCH,
          verb_session_watch, false,
          "\nOne line per event, with the time: state transitions, connected, data (escaped\n"
          "and cut), peer-closed, disconnected, error, and end, when the kernel released the\n"
          "connection (after TIME_WAIT, 60 s after an active close). The watcher receives\n"
          "the session's data: 'session recv' is refused meanwhile.\n" },
        { "sessions", "", "list client sessions with their owner and buffered bytes", 0, 0, CONTROL_VERB_SESSIONS, verb_sessions },
        { "connect", "HOST:PORT [--bind ADDR] [--timeout S] [-v]", "an interactive client like nc, through a daemon session", 1, 1,
          CTL_REQUEST_LOCAL, verb_connect, true,
          "\n  --bind ADDR[:PORT]  connect from this local address\n"
          "  --timeout S         connect timeout in seconds (default 10)\n"
          "  -v                  print the session's transitions and events on standard error\n"
          "\nStandard input goes to the peer byte for byte and what arrives goes to standard\n"
          "output; the end of standard input half-closes the connection (FIN). Exits with 0\n"
          "once the peer has closed and everything it sent is written, with 1 if the connect\n"
          "fails or the connection is reset.\n" },
        { "chat", "HOST:PORT --user NAME", "an interactive chat client for a JSON chat server", 1, 1, CTL_REQUEST_LOCAL, verb_chat, true,
          "\n  --user NAME         join as NAME\n"
          "  --bind ADDR[:PORT]  connect from this local address\n"
          "  --timeout S         connect timeout in seconds (default 10)\n"
          "\nLines typed are sent as messages; /users lists who is there; /quit (or the end\n"
          "of input) leaves.\n" },
};

const CtlVerb *ctl_verbs(size_t *ret_n) {
        *ret_n = ELEMENTSOF(verbs);
        return verbs;
}

const CtlVerb *ctl_verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

const char *ctl_verb_command(const CtlVerb *v) {
        const ControlCommand *c = v->request == CTL_REQUEST_LOCAL ? NULL : control_command_get(v->request);
        return c ? c->name : NULL;
}

static void print_verb_line(FILE *f, const CtlVerb *v) {
        char line[160];
        snprintf(line, sizeof(line), "%s %s", v->name, v->args);
        if (strlen(line) <= 40)
                fprintf(f, "  %-40s %s\n", line, v->help);
        else
                fprintf(f, "  %s\n  %-40s %s\n", line, "", v->help);
}

void ctl_help(FILE *f) {
        fprintf(f, "Usage: tcpeductl [OPTIONS] VERB [ARGS]\n\n"
                   "Control tcpedud(8) over its control socket.\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                print_verb_line(f, &verbs[i]);
        fprintf(f, "\nOptions:\n"
                   "  -s, --socket=PATH   control socket (default: control_socket from the daemon's\n"
                   "                      config, else /run/tcpedud/control.sock for root,\n"
                   "                      $XDG_RUNTIME_DIR/tcpedud/control.sock otherwise, falling\n"
                   "                      back to the system daemon's socket when that has none;\n"
                   "                      TCPEDU_CONTROL_SOCKET takes precedence over all of these)\n"
                   "  -c, --config=FILE   the daemon's config file to read control_socket from\n"
                   "  -j, --json          print the daemon's data as JSON (monitor, session watch: one\n"
                   "                      event per line)\n"
                   "  -h, --help          show this help (VERB --help: help on one verb)\n"
                   "      --version       show the version\n"
                   "\nExit status: 0 success, 1 the command failed, 64 usage error, 69 daemon not\n"
                   "reachable, 77 permission denied, 78 configuration rejected.\n");
}

void ctl_session_help(FILE *f) {
        fprintf(f, "Usage: tcpeductl [OPTIONS] session open|send|recv|close|watch ARGS\n\n"
                   "Client sessions: TCP connections that tcpedud opens and tracks for you.\n\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strncmp(verbs[i].name, "session ", 8) == 0)
                        print_verb_line(f, &verbs[i]);
        fprintf(f, "\n'tcpeductl session VERB --help' tells more about one of them; 'tcpeductl sessions' lists them.\n");
}

void ctl_verb_help(const CtlVerb *v) {
        printf("Usage: tcpeductl [OPTIONS] %s %s\n\n%s.\n", v->name, v->args, v->help);
        if (v->details)
                fputs(v->details, stdout);
}
