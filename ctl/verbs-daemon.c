/* SPDX-License-Identifier: MIT */
/* The verbs about the daemon, its servers and its connections, and how their replies look. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "ctl-util.h"
#include "format.h"
#include "verbs-daemon.h"

/* ---- printers: one per reply ---- */

static void print_status(struct json_object *d) {
        char dur[32], listen[512];
        struct json_object *log = jget(d, "log"), *servers = jget(d, "servers");
        printf("tcpedud %s (pid %" PRId64 "), up %s, control protocol %" PRId64 "\n", jstr(d, "version"), jint(d, "pid"),
               format_duration(jint(d, "uptime_usec"), dur, sizeof(dur)), jint(d, "protocol"));
        printf("config:       %s\n", jstr(d, "config_file"));
        if (jget(d, "uid"))
                printf("user:         %s (uid %" PRId64 "), group %s (gid %" PRId64 ")\n", jstr(d, "user"), jint(d, "uid"),
                       jstr(d, "group"), jint(d, "gid"));
        printf("connections:  %" PRId64 " open, %" PRId64 " lingering in the kernel\n", jint(d, "connections"), jint(d, "lingering"));
        printf("sessions:     %" PRId64 " open (max_sessions %" PRId64 ")\n", jint(d, "sessions"), jint(d, "max_sessions"));
        printf("transitions:  %" PRId64 " (log_transitions=%s)\n", jint(d, "transitions"), jstr(d, "log_transitions"));
        struct json_object *k = jget(d, "kernel");
        if (k && jstr(k, "source") && strcmp(jstr(k, "source"), "bpf") == 0)
                printf("kernel:       bpf (%s): %" PRId64 " events, %" PRId64 " filtered, %" PRId64 " dropped, %" PRId64
                       " fallbacks; %" PRId64 " retransmits, %" PRId64 " resets\n",
                       jstr(k, "reason"), jint(k, "events"), jint(k, "filtered"), jint(k, "dropped"), jint(k, "fallbacks"),
                       jint(k, "retransmits"), jint(k, "resets_sent") + jint(k, "resets_received"));
        else if (k)
                printf("kernel:       tcp_info (%s)\n", jstr(k, "reason"));
        printf("log:          %s: %" PRId64 " written, %" PRId64 " dropped (%" PRId64 " queue full, %" PRId64 " write failed), %" PRId64
               " queued\n",
               jstr(log, "target"), jint(log, "written"), jint(log, "dropped"), jint(log, "dropped_queue_full"),
               jint(log, "dropped_write_failed"), jint(log, "queued"));
        printf("\n%-16s %-9s %-8s %11s  %s\n", "SERVER", "TYPE", "STATE", "CONNECTIONS", "LISTEN");
        for (size_t i = 0; servers && i < json_object_array_length(servers); i++) {
                struct json_object *s = json_object_array_get_idx(servers, i);
                join_listen(s, listen, sizeof(listen));
                printf("%-16s %-9s %-8s %11" PRId64 "  %s\n", jstr(s, "name"), jstr(s, "type"), jstr(s, "state"), jint(s, "connections"),
                       listen);
        }
}

static void print_server_row(struct json_object *s) {
        char listen[512];
        struct json_object *refused = jget(s, "refused");
        int64_t total_refused = 0;
        json_object_object_foreach(refused, k, v) {
                (void)k;
                total_refused += json_object_get_int64(v);
        }
        join_listen(s, listen, sizeof(listen));
        printf("%-16s %-9s %-8s %6" PRId64 " %9" PRId64 " %12" PRId64 " %12" PRId64 " %8" PRId64 "  %s\n", jstr(s, "name"), jstr(s, "type"),
               jstr(s, "state"), jint(s, "connections"), jint(s, "accepted"), jint(s, "bytes_in"), jint(s, "bytes_out"), total_refused,
               listen);
}

static void print_servers(struct json_object *d) {
        struct json_object *servers = jget(d, "servers");
        printf("%-16s %-9s %-8s %6s %9s %12s %12s %8s  %s\n", "SERVER", "TYPE", "STATE", "CONNS", "ACCEPTED", "BYTES_IN", "BYTES_OUT",
               "REFUSED", "LISTEN");
        for (size_t i = 0; servers && i < json_object_array_length(servers); i++)
                print_server_row(json_object_array_get_idx(servers, i));
}

static void print_show(struct json_object *s) {
        struct json_object *limits = jget(s, "limits"), *refused = jget(s, "refused"), *listen = jget(s, "listen");
        printf("server:       %s\ntype:         %s\nstate:        %s\nautostart:    %s\n", jstr(s, "name"), jstr(s, "type"),
               jstr(s, "state"), jstr(s, "autostart"));
        for (size_t i = 0; listen && i < json_object_array_length(listen); i++) {
                struct json_object *l = json_object_array_get_idx(listen, i);
                printf("listen:       %s (configured %s)\n", jstr(l, "address"), jstr(l, "configured"));
        }
        printf("connections:  %" PRId64 " open, %" PRId64 " accepted\n", jint(s, "connections"), jint(s, "accepted"));
        printf("bytes:        %" PRId64 " in, %" PRId64 " out\n", jint(s, "bytes_in"), jint(s, "bytes_out"));
        printf("limits:      ");
        json_object_object_foreach(limits, k, v) printf(" %s=%s", k, json_object_get_string(v));
        printf("\nrefused:     ");
        json_object_object_foreach(refused, k2, v2) printf(" %s=%s", k2, json_object_get_string(v2));
        printf("\n");
        struct json_object *counters = jget(s, "counters"), *members = jget(s, "members");
        if (jget(s, "handler"))
                printf("handler:      %s\n", jstr(s, "handler"));
        if (counters) {
                printf("counters:    ");
                json_object_object_foreach(counters, k3, v3) printf(" %s=%s", k3, json_object_get_string(v3));
                printf("\n");
        }
        if (members) {
                printf("protocol:     %s\nmessages:     %s (joins %s, leaves %s, drops %s)\nmembers:      %zu\n", jstr(s, "protocol"),
                       jstr(s, "messages"), jstr(s, "joins"), jstr(s, "leaves"), jstr(s, "drops"), json_object_array_length(members));
                for (size_t i = 0; i < json_object_array_length(members); i++) {
                        struct json_object *m = json_object_array_get_idx(members, i);
                        printf("  %-20s %-5s %-24s %s\n", jstr(m, "name"), jstr(m, "protocol"), jstr(m, "peer"), jstr(m, "id"));
                }
        }
}

static void print_server_brief(struct json_object *s) {
        printf("server %s: %s\n", jstr(s, "name"), jstr(s, "state"));
}

static bool is_session(struct json_object *c) {
        return strcmp(jstr(c, "role"), "client") == 0;
}

static void print_connections(struct json_object *d) {
        struct json_object *conns = jget(d, "connections");
        char age[32];
        printf("%-36s %-12s %-24s %-12s %-11s %8s %12s %12s\n", "ID", "SERVER", "PEER", "STATE", "KERNEL", "AGE", "BYTES_IN", "BYTES_OUT");
        for (size_t i = 0; conns && i < json_object_array_length(conns); i++) {
                struct json_object *c = json_object_array_get_idx(conns, i);
                printf("%-36s %-12s %-24s %-12s %-11s %8s %12" PRId64 " %12" PRId64 "\n", jstr(c, "id"),
                       is_session(c) ? "(session)" : jstr(c, "server"), jstr(c, "peer"), jstr(c, "state"), jstr(c, "kernel_state"),
                       format_duration(jint(c, "age_usec"), age, sizeof(age)), jint(c, "bytes_in"), jint(c, "bytes_out"));
        }
        if (!conns || json_object_array_length(conns) == 0)
                printf("(no connections)\n");
}

static void print_conn(struct json_object *c) {
        char t[32], dur[32];
        struct json_object *tl = jget(c, "timeline"), *ti = jget(c, "tcp_info"), *s = jget(c, "session");
        if (s)
                printf("connection:   %s\nsession:      client side, opened by uid %" PRId64 " (pid %" PRId64 ")\n", jstr(c, "id"),
                       jint(s, "owner_uid"), jint(s, "owner_pid"));
        else
                printf("connection:   %s\nserver:       %s (%s)\n", jstr(c, "id"), jstr(c, "server"), jstr(c, "role"));
        printf("peer:         %s\nlocal:        %s\n", jstr(c, "peer"), jstr(c, "local"));
        printf("state:        %s (kernel: %s, via %s)\n", jstr(c, "state"), jstr(c, "kernel_state"), jstr(c, "kernel_source"));
        printf("bytes:        %" PRId64 " in, %" PRId64 " out\n", jint(c, "bytes_in"), jint(c, "bytes_out"));
        if (s) {
                printf("flags:        connected %s, failed %s, peer closed %s, ephemeral %s, watched %s\n", yes_no(s, "connected"),
                       yes_no(s, "failed"), yes_no(s, "peer_closed"), yes_no(s, "ephemeral"), yes_no(s, "watched"));
                printf("received:     %" PRId64 " bytes buffered (of %" PRId64 "), %" PRId64 " read, reading paused %" PRId64 " times\n",
                       jint(s, "buffered"), jint(s, "buffer_size"), jint(s, "read"), jint(s, "reading_paused"));
                printf("unsent:       %" PRId64 " bytes\n", jint(s, "unsent"));
        }
        if (strcmp(jstr(c, "close_reason"), "-") != 0)
                printf("closing:      %s\n", jstr(c, "close_reason"));
        printf("\ntimeline:\n  %-12s  %-13s %10s  %s\n", "SINCE", "STATE", "FOR", "SOURCE");
        for (size_t i = 0; tl && i < json_object_array_length(tl); i++) {
                struct json_object *e = json_object_array_get_idx(tl, i);
                bool current = json_object_get_boolean(jget(e, "current"));
                printf("  %-12s  %-13s %10s  %s%s\n", format_time(jint(e, "since_usec"), t, sizeof(t)), jstr(e, "state"),
                       format_duration(jint(e, "duration_usec"), dur, sizeof(dur)), jstr(e, "source"), current ? "  (now)" : "");
        }
        if (ti) {
                printf("\ntcp_info:     state %s, rtt %" PRId64 "us, rttvar %" PRId64 "us, cwnd %" PRId64 ", mss %" PRId64
                       ", retransmits %" PRId64 " (total %" PRId64 "), unacked %" PRId64 ", lost %" PRId64 "\n",
                       jstr(ti, "state"), jint(ti, "rtt_usec"), jint(ti, "rttvar_usec"), jint(ti, "snd_cwnd"), jint(ti, "snd_mss"),
                       jint(ti, "retransmits"), jint(ti, "total_retrans"), jint(ti, "unacked"), jint(ti, "lost"));
        } else
                printf("\ntcp_info:     (socket closed; the kernel still holds the connection)\n");
}

static void print_kick(struct json_object *d) {
        printf("connection %s: %s, now %s\n", jstr(d, "id"), jstr(d, "how"), jstr(d, "state"));
}

static void print_reload(struct json_object *d) {
        printf("reloaded %s: %s\n", jstr(d, "config_file"), jstr(d, "changes"));
}

static void print_stats(struct json_object *d) {
        json_object_object_foreach(d, k, v) printf("%s=%s\n", k, json_object_get_string(v));
}

static void print_log_level(struct json_object *d) {
        printf("log level: %s (was %s)\n", jstr(d, "level"), jstr(d, "previous"));
}

/* ---- verbs ---- */
static void print_chat_say(struct json_object *d) {
        printf("posted to %s (%s members)\n", jstr(d, "server"), jstr(d, "members"));
}

static void print_event(struct json_object *e) {
        char t[32];
        const char *event = jstr(e, "event");
        printf("%s %-12s %-10s %s\n", format_time(jint(e, "time_usec"), t, sizeof(t)), strcmp(event, "-") ? event : "log",
               jstr(e, "server"), jstr(e, "message"));
}

/* ---- verbs ---- */

int verb_status(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        (void)argv;
        return ctl_simple(v, o, NULL, print_status);
}

int verb_servers(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        (void)argv;
        return ctl_simple(v, o, NULL, print_servers);
}

int verb_show(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        return ctl_simple(v, o, args_with("server", argv[1]), print_show);
}

int verb_server_action(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        return ctl_simple(v, o, args_with("server", argv[1]), print_server_brief);
}

int verb_connections(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        return ctl_simple(v, o, args_with("server", argc > 1 ? argv[1] : NULL), print_connections);
}

int verb_conn(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        return ctl_simple(v, o, args_with("id", argv[1]), print_conn);
}

int verb_kick(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *how = "close";
        const char *id = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--how") == 0 && i + 1 < argc)
                        how = argv[++i];
                else if (strncmp(argv[i], "--how=", 6) == 0)
                        how = argv[i] + 6;
                else if (argv[i][0] == '-') {
                        fprintf(stderr, "tcpeductl kick: unknown option '%s'\n", argv[i]);
                        return EXIT_USAGE;
                } else if (!id)
                        id = argv[i];
                else {
                        fprintf(stderr, "tcpeductl kick: too many arguments\n");
                        return EXIT_USAGE;
                }
        }
        if (!id) {
                fprintf(stderr, "tcpeductl kick: missing connection ID\n");
                return EXIT_USAGE;
        }
        if (!close_how_valid(how)) {
                fprintf(stderr, "tcpeductl kick: --how must be close, shutdown or reset, not '%s'\n", how);
                return EXIT_USAGE;
        }
        struct json_object *a = args_with("id", id);
        json_object_object_add(a, "how", json_object_new_string(how));
        return ctl_simple(v, o, a, print_kick);
}

int verb_reload(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        (void)argv;
        return ctl_simple(v, o, NULL, print_reload);
}

int verb_stats(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        (void)argv;
        return ctl_simple(v, o, NULL, print_stats);
}

int verb_chat_say(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        struct json_object *a = args_with("server", argv[1]);
        json_object_object_add(a, "text", json_object_new_string(argv[2]));
        return ctl_simple(v, o, a, print_chat_say);
}

int verb_log_level(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        return ctl_simple(v, o, args_with("level", argv[1]), print_log_level);
}

/* ---- monitor ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        (void)sig;
        interrupted = 1;
}

/* Events until a signal or the daemon's end. Returns the exit code. */
static int monitor_events(Link *l, const CtlOptions *o) {
        while (!interrupted) {
                const char *line;
                size_t len;
                int r = link_read_line(l, -1, &line, &len);
                if (r == -EINTR)
                        break;
                if (r < 0) {
                        fprintf(stderr, "tcpeductl monitor: connection to tcpedud lost: %s\n", strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
                ControlReply ev;
                struct json_object *e;
                if (control_reply_parse(line, len, &ev) == 0 && json_object_object_get_ex(ev.root, "event", &e)) {
                        if (o->json)
                                print_json(e);
                        else
                                print_event(e);
                }
                control_reply_done(&ev);
        }
        return EXIT_OK;
}

int verb_monitor(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *server = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
                        server = argv[++i];
                else if (strncmp(argv[i], "--server=", 9) == 0)
                        server = argv[i] + 9;
                else {
                        fprintf(stderr, "tcpeductl monitor: unexpected argument '%s'\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        _cleanup_(link_close) Link l = LINK_NULL;
        ControlReply rep;
        int r = ctl_connect(o, &l);
        if (r == EXIT_OK)
                r = ctl_call(&l, ctl_verb_command(v), args_with("server", server), &rep);
        if (r != EXIT_OK)
                return r;
        control_reply_done(&rep);
        ctl_catch_interrupt(on_interrupt);
        if (!o->json)
                fprintf(stderr, "Monitoring %s%s (Ctrl-C to stop)\n", server ? "server " : "all servers", server ? server : "");
        return monitor_events(&l, o);
}
