/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "chat-proto.h"
#include "ctl-util.h"
#include "format.h"
#include "interactive-io.h"
#include "session-client.h"

#define OPEN_SLACK_MS 10000 /* beyond the connect timeout, before we stop waiting for session-open's reply */
#define CLOSE_WAIT_MS 1000 /* on a signal: how long to wait for session-close's reply */
#define MAX_TARGETS 16 /* addresses of HOST tried */

static void link_say_safe(const char *msg) {
        say("%s", msg);
}

static int link_interrupted(void) {
        return signals_stop_asked() ? exit_for_signal() : 0;
}

/* As the other verbs, but for the words of two messages and the exit code on EACCES, which were
 * always so here. */
static const LinkHooks client_link_hooks = {
        .say = link_say_safe,
        .interrupted = link_interrupted,
        .permission_exit = EXIT_UNAVAILABLE,
        .closed_text = "connection closed",
};

void client_finish(Client *c, int code) {
        if (!c->done) {
                c->done = true;
                c->code = code;
        }
}

static void lost(Client *c, int r) {
        if (!c->done)
                say("lost tcpedud at %s: %s", c->link.path, r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
        client_finish(c, EXIT_UNAVAILABLE);
}

/* Queue a session-send of p[0..n): as text when it is, else (or when escaping makes the request
 * too long) as base64. */
int client_send(Client *c, const uint8_t *p, size_t n) {
        bool text = bytes_are_text(p, n);
        for (;;) {
                struct json_object *args = json_object_new_object();
                if (!args)
                        return -ENOMEM;
                json_object_object_add(args, "id", json_object_new_string(c->id));
                if (text)
                        json_object_object_add(args, "data", json_object_new_string_len((const char *)p, (int)n));
                else {
                        char *b = malloc(base64_encoded_size(n));
                        if (!b) {
                                json_object_put(args);
                                return -ENOMEM;
                        }
                        size_t bl = base64_encode(p, n, b);
                        json_object_object_add(args, "data_base64", json_object_new_string_len(b, (int)bl));
                        free(b);
                }
                int64_t id = link_request(&c->link, control_command_get(CONTROL_VERB_SESSION_SEND)->name, args, CONTROL_LINE_MAX);
                if (id == -EMSGSIZE && text) {
                        text = false;
                        continue;
                }
                if (id < 0)
                        return (int)id;
                c->send_id = id;
                return 0;
        }
}

void client_close(Client *c, const char *how) {
        struct json_object *args = json_object_new_object();
        if (!args) {
                client_finish(c, EXIT_FAILED);
                return;
        }
        json_object_object_add(args, "id", json_object_new_string(c->id));
        json_object_object_add(args, "how", json_object_new_string(how));
        int64_t id = link_request(&c->link, control_command_get(CONTROL_VERB_SESSION_CLOSE)->name, args, CONTROL_LINE_MAX);
        if (id < 0) {
                say("session %s: cannot ask for session-close: %s", c->id, strerror((int)-id));
                client_finish(c, EXIT_FAILED);
                return;
        }
        c->close_id = id;
        if (strcmp(how, "shutdown") == 0)
                c->shut = true;
        else
                c->close_sent = true;
}

static void handle_reply(Client *c, ControlReply *r) {
        if (c->open_id > 0 && r->id == c->open_id) {
                c->open_id = 0;
                if (r->ok) {
                        struct json_object *s = NULL;
                        json_object_object_get_ex(r->data, "session", &s);
                        snprintf(c->id, sizeof(c->id), "%s", jstr_or(s, "id", ""));
                        if (!c->id[0]) {
                                say("malformed session-open reply from tcpedud: no session id");
                                client_finish(c, EXIT_FAILED);
                                return;
                        }
                        c->established = true;
                        if (c->verbose)
                                say("connected to %s from %s (session %s)", jstr_or(s, "peer", "?"), jstr_or(s, "local", "?"), c->id);
                        return;
                }
                if (r->code == CONTROL_ERROR_CONNECT_FAILED) {
                        c->open_failed = true;
                        snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", r->message);
                        return;
                }
                if (r->code == CONTROL_ERROR_UNKNOWN_COMMAND) {
                        /* not the user's mistake: a daemon older than this tcpeductl */
                        say("tcpedud at %s has no client sessions (too old?): %s", c->link.path, r->message);
                        client_finish(c, EXIT_FAILED);
                        return;
                }
                say("%s", r->message);
                client_finish(c, exit_code_for(r->code));
                return;
        }
        if (c->send_id > 0 && r->id == c->send_id) {
                c->send_id = 0;
                if (!r->ok && !c->disconnected) {
                        say("%s", r->message);
                        client_finish(c, exit_code_for(r->code));
                }
                return;
        }
        if (c->close_id > 0 && r->id == c->close_id) {
                c->close_id = 0;
                /* conflict: it is closing or closed already, which is what we wanted */
                if (!r->ok && r->code != CONTROL_ERROR_CONFLICT) {
                        say("%s", r->message);
                        client_finish(c, exit_code_for(r->code));
                }
        }
}

static void handle_data_event(Client *c, struct json_object *ev) {
        struct json_object *d;
        if (json_object_object_get_ex(ev, "data", &d) && json_object_is_type(d, json_type_string)) {
                if (c->on_data)
                        c->on_data(c, (const uint8_t *)json_object_get_string(d), (size_t)json_object_get_string_len(d));
                return;
        }
        if (!json_object_object_get_ex(ev, "data_base64", &d) || !json_object_is_type(d, json_type_string))
                return;
        size_t bl = (size_t)json_object_get_string_len(d);
        uint8_t *buf = malloc(bl / 4 * 3 + 3);
        if (!buf) {
                say("out of memory");
                client_finish(c, EXIT_FAILED);
                return;
        }
        ssize_t n = base64_decode(json_object_get_string(d), bl, buf);
        if (n < 0) {
                say("malformed data event from tcpedud: invalid base64");
                client_finish(c, EXIT_FAILED);
        } else if (c->on_data)
                c->on_data(c, buf, (size_t)n);
        free(buf);
}

static void handle_event(Client *c, struct json_object *ev) {
        const char *name = jstr_or(ev, "event", "");
        if (strcmp(name, "transition") == 0) {
                const char *from = jstr_or(ev, "old_state", "?"), *to = jstr_or(ev, "new_state", "?"),
                           *reason = jstr_or(ev, "reason", NULL);
                /* Into CLOSED from a synchronized state but LAST_ACK and TIME_WAIT: a reset. */
                if (strcmp(to, "CLOSED") == 0 && strcmp(from, "LAST_ACK") != 0 && strcmp(from, "TIME_WAIT") != 0 &&
                    strcmp(from, "SYN_SENT") != 0 && strcmp(from, "CLOSED") != 0)
                        c->reset = true;
                if (c->verbose) {
                        if (reason && strcmp(to, "CLOSED") == 0)
                                say("%s -> %s: %s", from, to, reason);
                        else
                                say("%s -> %s", from, to);
                }
        } else if (strcmp(name, "data") == 0)
                handle_data_event(c, ev);
        else if (strcmp(name, "peer-closed") == 0) {
                c->peer_closed = true;
                if (c->verbose)
                        say("peer closed: %s", jstr_or(ev, "reason", "FIN received"));
        } else if (strcmp(name, "error") == 0) {
                if (c->verbose)
                        say("error: %s", jstr_or(ev, "reason", "?"));
        } else if (strcmp(name, "disconnected") == 0 || (strcmp(name, "end") == 0 && c->established)) {
                if (c->disconnected)
                        return;
                c->disconnected = true;
                snprintf(c->reason, sizeof(c->reason), "%s", jstr_or(ev, "reason", "closed"));
                /* the transitions tell a reset; the reason says so too, or names a failure */
                if (strstr(c->reason, "reset") || strstr(c->reason, "broken pipe") || strstr(c->reason, "timed out") ||
                    strstr(c->reason, "error"))
                        c->reset = true;
                if (c->verbose)
                        say("disconnected: %s", c->reason);
                if (c->on_disconnected)
                        c->on_disconnected(c);
        }
}

static void dispatch_line(Client *c, const char *line, size_t len) {
        ControlReply r;
        struct json_object *ev;
        if (control_reply_parse(line, len, &r) < 0) {
                say("malformed line from tcpedud at %s", c->link.path);
                client_finish(c, EXIT_FAILED);
                return;
        }
        if (json_object_object_get_ex(r.root, "event", &ev) && json_object_is_type(ev, json_type_object))
                handle_event(c, ev);
        else
                handle_reply(c, &r);
        control_reply_done(&r);
}

/* One round of a loop: wait (at most timeout_ms) for the control socket, the signal pipe and the
 * caller's fds, then send and handle what the daemon sent. Their revents tell the caller. */
void client_poll(Client *c, struct pollfd *extra, size_t n_extra, int timeout_ms) {
        struct pollfd p[4] = {
                { .fd = signals_fd(), .events = POLLIN },
                { .fd = c->link.fd, .events = (short)(POLLIN | (byte_queue_empty(&c->link.out) ? 0 : POLLOUT)) },
        };
        n_extra = MIN(n_extra, ELEMENTSOF(p) - 2);
        for (size_t i = 0; i < n_extra; i++)
                p[2 + i] = extra[i];
        int r = poll(p, 2 + n_extra, timeout_ms);
        if (r < 0) {
                for (size_t i = 0; i < n_extra; i++)
                        extra[i].revents = 0;
                if (errno != EINTR) {
                        say("poll: %s", strerror(errno));
                        client_finish(c, EXIT_FAILED);
                }
                return;
        }
        for (size_t i = 0; i < n_extra; i++)
                extra[i].revents = p[2 + i].revents;
        if (p[0].revents)
                signals_drain();
        if (!byte_queue_empty(&c->link.out) && p[1].revents) {
                r = link_flush(&c->link);
                if (r < 0) {
                        lost(c, r);
                        return;
                }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                const char *line;
                size_t len;
                r = link_fill(&c->link);
                if (r == -EMSGSIZE) {
                        say("a line from tcpedud at %s is longer than %u bytes", c->link.path, CONTROL_REPLY_MAX);
                        client_finish(c, EXIT_FAILED);
                        return;
                }
                if (r < 0) {
                        lost(c, r);
                        return;
                }
                while (!c->done && link_next_line(&c->link, &line, &len))
                        dispatch_line(c, line, len);
        }
}

/* ---- arguments and addresses ---- */

int client_args_parse(int argc, char **argv, bool chat, ClientArgs *a) {
        const char *verb = argc > 0 ? argv[0] : (chat ? "chat" : "connect");
        const char *synopsis = chat ? "HOST:PORT --user NAME [--bind ADDR[:PORT]] [--timeout S] [-v]"
                                    : "HOST:PORT [--bind ADDR[:PORT]] [--timeout S] [-v]";
        const char *timeout = NULL;
        bool options_end = false;

        *a = (ClientArgs){ .verb = verb, .timeout_ms = 10000 };
        for (int i = 1; i < argc; i++) {
                const char *s = argv[i];
                if (!options_end && s[0] == '-' && s[1]) {
                        int r;
                        if (strcmp(s, "--") == 0)
                                options_end = true;
                        else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0)
                                a->verbose = true;
                        else if ((r = option_value(verb, argc, argv, &i, "--bind", NULL, &a->bind)) != 0 ||
                                 (r = option_value(verb, argc, argv, &i, "--timeout", NULL, &timeout)) != 0 ||
                                 (chat && (r = option_value(verb, argc, argv, &i, "--user", "-u", &a->user)) != 0)) {
                                if (r < 0)
                                        return EXIT_USAGE;
                        } else
                                return usage_error(verb, "unknown option '%s' (expected %s)", s, synopsis);
                        continue;
                }
                if (a->target)
                        return usage_error(verb, "unexpected argument '%s' (expected %s)", s, synopsis);
                a->target = s;
        }
        if (!a->target)
                return usage_error(verb, "expected %s", synopsis);
        if (chat && !a->user)
                return usage_error(verb, "--user NAME is required (expected %s)", synopsis);
        if (chat) {
                const char *err = chat_name_check(a->user, strlen(a->user));
                if (!err && strlen(a->user) > CHAT_NAME_MAX * 4)
                        err = "Username too long";
                if (err)
                        return usage_error(verb, "--user '%s': %s", a->user, err);
        }
        /* as for session open */
        if (timeout)
                return timeout_option(verb, timeout, 1, 600000, &a->timeout_ms);
        return EXIT_OK;
}

/* Each address in turn until one connects, on a new control connection each (a failed session
 * keeps its watcher until the kernel forgets it). Returns an exit code. */
static int client_open_addresses(Client *c, const char *socket_path, const ClientArgs *a, const SessionAddresses *addrs) {
        size_t n = MIN(addrs->n_targets, (size_t)MAX_TARGETS);
        char failures[MAX_TARGETS][sizeof(c->fail_msg)];
        int r;

        for (size_t i = 0; i < n; i++) {
                r = link_open(&c->link, socket_path, &client_link_hooks);
                if (r != EXIT_OK)
                        return r;
                struct json_object *args = json_object_new_object();
                if (!args)
                        return EXIT_FAILED;
                json_object_object_add(args, "target", json_object_new_string(addrs->targets[i]));
                if (addrs->bind[0])
                        json_object_object_add(args, "bind", json_object_new_string(addrs->bind));
                json_object_object_add(args, "timeout_ms", json_object_new_int64(a->timeout_ms));
                json_object_object_add(args, "ephemeral", json_object_new_boolean(1));
                json_object_object_add(args, "watch", json_object_new_boolean(1));
                c->open_id = link_request(&c->link, control_command_get(CONTROL_VERB_SESSION_OPEN)->name, args, CONTROL_LINE_MAX);
                if (c->open_id < 0) {
                        say("cannot ask tcpedud for a session: %s", strerror((int)-c->open_id));
                        return EXIT_FAILED;
                }
                c->open_failed = c->reset = false;
                c->fail_msg[0] = 0;
                uint64_t deadline = now_ms() + (uint64_t)a->timeout_ms + OPEN_SLACK_MS;
                while (!c->done && !c->established && !c->open_failed) {
                        if (signals_stop_asked())
                                return exit_for_signal();
                        int t = timeout_until(deadline);
                        if (t == 0) {
                                say("no answer from tcpedud at %s to session-open for %s", socket_path, addrs->targets[i]);
                                return EXIT_FAILED;
                        }
                        client_poll(c, NULL, 0, t);
                }
                if (c->done)
                        return c->code;
                if (c->established)
                        return EXIT_OK;
                if (c->verbose)
                        say("%s", c->fail_msg);
                snprintf(failures[i], sizeof(failures[i]), "%s", c->fail_msg);
                link_close(&c->link);
        }
        if (!c->verbose)
                for (size_t i = 0; i < n; i++)
                        say("%s", failures[i]);
        return EXIT_FAILED;
}

/* Open the session: resolve HOST:PORT and --bind, then connect. Returns an exit code. */
int client_open(Client *c, const char *socket_path, const ClientArgs *a) {
        SessionAddresses addrs;
        int r = session_addresses_resolve(a->verb, a->target, a->bind, &addrs);
        if (r != EXIT_OK)
                return r;
        r = client_open_addresses(c, socket_path, a, &addrs);
        session_addresses_done(&addrs);
        return r;
}

/* On a signal: close the session, wait a little for the daemon to take it, exit 128 + signal. */
int client_interrupt(Client *c) {
        int code = exit_for_signal();
        c->on_data = NULL;
        c->on_disconnected = NULL;
        c->done = false;
        if (c->established && !c->disconnected && !c->close_sent && !c->shut) {
                if (c->send_id == 0 && c->close_id == 0)
                        client_close(c, "close");
                uint64_t deadline = now_ms() + CLOSE_WAIT_MS;
                while (!c->done && (c->close_id || c->send_id) && !c->disconnected && timeout_until(deadline) > 0) {
                        if (c->send_id == 0 && !c->close_sent)
                                client_close(c, "close");
                        client_poll(c, NULL, 0, timeout_until(deadline));
                }
        }
        c->done = true;
        c->code = code;
        return code;
}
