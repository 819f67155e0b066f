/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "ctl-util.h"
#include "explain.h"
#include "tcp-state.h"

static void print_diagram(void) {
        printf("TCP connection states (RFC 793, figure 6), as tcpedud logs them:\n\n"
               "                              +---------+\n"
               "                              | CLOSED  |\n"
               "                              +---------+\n"
               "             passive open:       |    |      active open:\n"
               "             listen()            |    |      connect() sends SYN\n"
               "                    +------------+    +-------------+\n"
               "                    v                               v\n"
               "              +---------+                     +----------+\n"
               "              | LISTEN  |                     | SYN_SENT |\n"
               "              +---------+                     +----------+\n"
               "      rcv SYN, send  |                               | rcv SYN-ACK,\n"
               "      SYN-ACK        v                               | send ACK\n"
               "           +--------------+   rcv ACK of SYN         |\n"
               "           | SYN_RECEIVED |---------------+          |\n"
               "           +--------------+               v          v\n"
               "                                      +-------------+\n"
               "                                      | ESTABLISHED |\n"
               "                                      +-------------+\n"
               "              this side closes first:   |          |   the peer closes first:\n"
               "              send FIN                  v          v   rcv FIN, send ACK\n"
               "                             +------------+     +------------+\n"
               "                             | FIN_WAIT_1 |     | CLOSE_WAIT |\n"
               "                             +------------+     +------------+\n"
               "          rcv ACK of FIN |        | rcv FIN            | close(): send FIN\n"
               "                         v        v                    v\n"
               "              +------------+  +---------+        +----------+\n"
               "              | FIN_WAIT_2 |  | CLOSING |        | LAST_ACK |\n"
               "              +------------+  +---------+        +----------+\n"
               "         rcv FIN, |              | rcv ACK           | rcv ACK of FIN\n"
               "         send ACK v              v                   v\n"
               "              +-------------------+            +---------+\n"
               "              |     TIME_WAIT     |----------->| CLOSED  |\n"
               "              +-------------------+  2*MSL     +---------+\n"
               "                                     (60 s on Linux)\n"
               "\nA reset (RST) takes any synchronized state straight to CLOSED.\n"
               "'tcpeductl explain STATE' tells more about one state.\n");
}

int verb_explain(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)v;
        (void)o;
        if (argc < 2) {
                print_diagram();
                return EXIT_OK;
        }
        TcpState s = tcp_state_from_string(argv[1]);
        if (s < 0) {
                fprintf(stderr, "tcpeductl explain: unknown state '%s' (known:", argv[1]);
                for (int i = 0; i < _TCP_STATE_MAX; i++)
                        fprintf(stderr, " %s", tcp_state_to_string((TcpState)i));
                fprintf(stderr, ")\n");
                return EXIT_USAGE;
        }
        const TcpStateInfo *info = tcp_state_info(s);
        size_t n;
        const TcpTransition *t = tcp_transitions(&n);
        printf("%s\n  %s\n  Who passes through it: %s.\n\n  Entered from:\n", info->name, info->meaning, info->who);
        for (size_t i = 0; i < n; i++)
                if (t[i].to == s)
                        printf("    %-13s when %s\n", tcp_state_to_string(t[i].from), t[i].event);
        printf("\n  Left for:\n");
        for (size_t i = 0; i < n; i++)
                if (t[i].from == s)
                        printf("    %-13s when %s\n", tcp_state_to_string(t[i].to), t[i].event);
        return EXIT_OK;
}
