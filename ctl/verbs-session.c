/* SPDX-License-Identifier: MIT */
/* The session verbs: session open, send, recv, close and watch, and sessions. A client session is
 * a TCP connection the daemon opens and tracks for the user; these verbs drive one a request at a
 * time, each over a control connection of its own. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "call.h"
#include "ctl-util.h"
#include "format.h"
#include "utf8.h"
#include "verbs-session.h"

#define SEND_CHUNK (32 * 1024) /* raw bytes per session-send: the request line stays under CONTROL_LINE_MAX */
#define DATA_PREVIEW 60 /* bytes of data shown by session watch */

/* A failed session request: "tcpeductl: session ID: REASON", ID as the user wrote it. The
 * daemon's messages that name the session already are printed as they are. Frees rep. */
static int session_failed(const char *id, ControlReply *rep) {
        const char *m = rep->message;
        if (rep->code == CONTROL_ERROR_NOT_FOUND && strncmp(m, "no connection ", 14) == 0)
                fprintf(stderr, "tcpeductl: session %s: not found\n", id);
        else if (strncmp(m, "session ", 8) == 0 || strncmp(m, "connection ", 11) == 0 || strncmp(m, "cannot ", 7) == 0)
                fprintf(stderr, "tcpeductl: %s\n", m);
        else
                fprintf(stderr, "tcpeductl: session %s: %s\n", id, m);
        int code = exit_code_for(rep->code);
        control_reply_done(rep);
        return code;
}

/* A request on session id; errors are printed as by session_failed(). */
static int session_call(Link *c, const char *id, const char *command, struct json_object *args, int timeout_ms, ControlReply *ret) {
        int r = link_call(c, command, args, timeout_ms, ret);
        if (r != EXIT_OK)
                return r;
        return ret->ok ? EXIT_OK : session_failed(id, ret);
}

/* The bytes of a reply or event: "data" (text) or "data_base64" (anything else), in a buffer to
 * free. -EBADMSG if there is neither or the base64 is invalid. */
static int get_data(struct json_object *o, uint8_t **ret, size_t *ret_len, bool *ret_text) {
        struct json_object *v;
        if (json_object_object_get_ex(o, "data", &v) && json_object_is_type(v, json_type_string)) {
                size_t n = (size_t)json_object_get_string_len(v);
                uint8_t *p = malloc(n + 1);
                if (!p)
                        return -ENOMEM;
                memcpy(p, json_object_get_string(v), n);
                *ret = p;
                *ret_len = n;
                *ret_text = true;
                return 0;
        }
        if (json_object_object_get_ex(o, "data_base64", &v) && json_object_is_type(v, json_type_string)) {
                size_t n = (size_t)json_object_get_string_len(v);
                uint8_t *p = malloc(n / 4 * 3 + 1);
                if (!p)
                        return -ENOMEM;
                ssize_t k = base64_decode(json_object_get_string(v), n, p);
                if (k < 0) {
                        free(p);
                        return -EBADMSG;
                }
                *ret = p;
                *ret_len = (size_t)k;
                *ret_text = false;
                return 0;
        }
        *ret = NULL;
        *ret_len = 0;
        *ret_text = false;
        return jint(o, "bytes") == 0 ? 0 : -EBADMSG;
}

int verb_session_open(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *target = NULL, *bind_s = NULL, *timeout_s = NULL;
        int64_t timeout_ms = 10000;
        SessionAddresses addrs = {};
        char *last_error = NULL;
        _cleanup_(link_close) Link c = LINK_NULL;
        int r;

        const VerbOption options[] = { { "--bind", &bind_s, NULL }, { "--timeout", &timeout_s, NULL } };
        if ((r = verb_args_parse("session open", argc, argv, options, ELEMENTSOF(options), "HOST:PORT", &target)) != EXIT_OK)
                return r;
        if (timeout_s && (r = timeout_option("session open", timeout_s, 1, 600000, &timeout_ms)) != EXIT_OK)
                return r;

        r = session_addresses_resolve("session open", target, bind_s, &addrs);
        if (r != EXIT_OK)
                return r;
        r = ctl_connect(o, &c);
        if (r != EXIT_OK)
                goto finish;
        for (size_t i = 0; i < addrs.n_targets; i++) {
                struct json_object *a = json_object_new_object();
                json_object_object_add(a, "target", json_object_new_string(addrs.targets[i]));
                if (addrs.bind[0])
                        json_object_object_add(a, "bind", json_object_new_string(addrs.bind));
                json_object_object_add(a, "timeout_ms", json_object_new_int64(timeout_ms));
                ControlReply rep;
                r = link_call(&c, ctl_verb_command(v), a, (int)timeout_ms + CTL_REPLY_MARGIN_MS, &rep);
                if (r != EXIT_OK)
                        goto finish;
                if (rep.ok) {
                        if (o->json)
                                print_json(rep.data);
                        else
                                printf("%s\n", jstr(jget(rep.data, "session"), "id"));
                        control_reply_done(&rep);
                        r = EXIT_OK;
                        goto finish;
                }
                if (rep.code != CONTROL_ERROR_CONNECT_FAILED) {
                        fprintf(stderr, "tcpeductl: %s\n", rep.message);
                        r = exit_code_for(rep.code);
                        control_reply_done(&rep);
                        goto finish;
                }
                /* Refused, unreachable, timed out: the next address may do better. */
                free(last_error);
                last_error = strdup(rep.message);
                control_reply_done(&rep);
        }
        fprintf(stderr, "tcpeductl: %s\n", last_error ? last_error : "cannot connect");
        r = EXIT_FAILED;
finish:
        free(last_error);
        session_addresses_done(&addrs);
        return r;
}

/* Upper bound of the length of p[0..n) as a JSON string, quotes excluded. */
static size_t json_escaped_size(const uint8_t *p, size_t n) {
        size_t s = 0;
        for (size_t i = 0; i < n; i++)
                s += p[i] < 0x20 ? 6 : p[i] == '"' || p[i] == '\\' || p[i] == '/' ? 2 : 1;
        return s;
}

/* One session-send: as "data" when the bytes are text whose JSON form fits a request line, else as
 * "data_base64". Waits for the reply: the daemon holds it back while the session's send queue is
 * full, which is the flow control. */
static int send_chunk(Link *c, const CtlOptions *o, const char *id, const uint8_t *p, size_t n) {
        struct json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(id));
        if (bytes_are_text(p, n) && json_escaped_size(p, n) <= CONTROL_LINE_MAX - 1024)
                json_object_object_add(a, "data", json_object_new_string_len((const char *)p, (int)n));
        else {
                char *b = malloc(base64_encoded_size(n));
                if (!b) {
                        json_object_put(a);
                        fprintf(stderr, "tcpeductl: out of memory\n");
                        return EXIT_FAILED;
                }
                size_t l = base64_encode(p, n, b);
                json_object_object_add(a, "data_base64", json_object_new_string_len(b, (int)l));
                free(b);
        }
        ControlReply rep;
        int r = session_call(c, id, control_command_get(CONTROL_VERB_SESSION_SEND)->name, a, -1, &rep);
        if (r != EXIT_OK)
                return r;
        if (o->json)
                print_json(rep.data);
        control_reply_done(&rep);
        return EXIT_OK;
}

/* Bytes at the end of p[0..n) that begin a UTF-8 character and do not complete it. */
static size_t utf8_incomplete_tail(const uint8_t *p, size_t n) {
        for (size_t i = 1; i <= 3 && i <= n; i++) {
                uint8_t b = p[n - i];
                if ((b & 0xc0) == 0x80)
                        continue;
                size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
                return need > i ? i : 0;
        }
        return 0;
}

/* Standard input to the session until its end, as it arrives. */
static int send_stdin(Link *c, const CtlOptions *o, const char *id) {
        _cleanup_(byte_queue_done) ByteQueue in = {};
        for (;;) {
                int r = 0;
                uint8_t *p = byte_queue_reserve(&in, SEND_CHUNK - byte_queue_len(&in), SEND_CHUNK, &r);
                if (!p) {
                        fprintf(stderr, "tcpeductl: out of memory\n");
                        return EXIT_FAILED;
                }
                ssize_t k = read(STDIN_FILENO, p, SEND_CHUNK - byte_queue_len(&in));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "tcpeductl: cannot read standard input: %s\n", strerror(errno));
                        return EXIT_FAILED;
                }
                byte_queue_commit(&in, (size_t)k);
                /* What arrives is sent at once; only a character cut in two waits for its end. */
                size_t have = byte_queue_len(&in);
                size_t n = k == 0 ? have : have - utf8_incomplete_tail(byte_queue_peek(&in), have);
                if (n > 0) {
                        r = send_chunk(c, o, id, byte_queue_peek(&in), n);
                        if (r != EXIT_OK)
                                return r;
                        byte_queue_consume(&in, n);
                }
                if (k == 0)
                        return EXIT_OK;
        }
}

/* TEXT and, unless -n, a newline, in chunks that end between characters: each is sent as text if
 * the whole is. */
static int send_text(Link *c, const CtlOptions *o, const char *id, const char *text, bool newline) {
        _cleanup_(byte_queue_done) ByteQueue q = {};
        size_t len = strlen(text);
        if (byte_queue_push(&q, text, len, len + 1) < 0 || (newline && byte_queue_push(&q, "\n", 1, len + 1) < 0)) {
                fprintf(stderr, "tcpeductl: out of memory\n");
                return EXIT_FAILED;
        }
        while (!byte_queue_empty(&q)) {
                const char *p = (const char *)byte_queue_peek(&q);
                size_t left = byte_queue_len(&q);
                size_t n = utf8_prefix(p, left, SEND_CHUNK);
                if (n == 0 || (left > SEND_CHUNK && SEND_CHUNK - n > 3))
                        n = MIN(left, (size_t)SEND_CHUNK);
                int r = send_chunk(c, o, id, (const uint8_t *)p, n);
                if (r != EXIT_OK)
                        return r;
                byte_queue_consume(&q, n);
        }
        return EXIT_OK;
}

int verb_session_send(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *id = NULL, *text = NULL;
        bool newline = true, options_done = false, from_stdin = false;
        (void)v;
        for (int i = 1; i < argc; i++) {
                if (!options_done && strcmp(argv[i], "--") == 0)
                        options_done = true;
                else if (!options_done && strcmp(argv[i], "-n") == 0)
                        newline = false;
                else if (!options_done && argv[i][0] == '-' && argv[i][1] != 0)
                        return usage_error("session send", "unknown option '%s' (a TEXT that begins with '-' goes after '--')", argv[i]);
                else if (!id)
                        id = argv[i];
                else if (!text) {
                        text = argv[i];
                        from_stdin = !options_done && strcmp(text, "-") == 0;
                } else
                        return usage_error("session send", "too many arguments (quote the TEXT)");
        }
        if (!id || !text)
                return usage_error("session send", "expected ID TEXT, or ID - to send standard input");
        if (!from_stdin && !newline && !*text)
                return usage_error("session send", "nothing to send (empty TEXT with -n)");
        _cleanup_(link_close) Link c = LINK_NULL;
        int r = ctl_connect(o, &c);
        if (r != EXIT_OK)
                return r;
        return from_stdin ? send_stdin(&c, o, id) : send_text(&c, o, id, text, newline);
}

/* --timeout, --bytes and --line of session recv, as its request's arguments. */
static int recv_args(int argc, char **argv, const char **ret_id, int64_t *ret_timeout_ms, int64_t *ret_bytes, struct json_object **ret) {
        const char *timeout_s = NULL, *bytes_s = NULL;
        int64_t timeout_ms = 5000, bytes = 0;
        bool line = false;
        int r;
        const VerbOption options[] = { { "--timeout", &timeout_s, NULL }, { "--bytes", &bytes_s, NULL }, { "--line", NULL, &line } };
        if ((r = verb_args_parse("session recv", argc, argv, options, ELEMENTSOF(options), "session ID", ret_id)) != EXIT_OK)
                return r;
        if (timeout_s && (r = timeout_option("session recv", timeout_s, 0, 3600000, &timeout_ms)) != EXIT_OK)
                return r;
        if (bytes_s) {
                char *end;
                errno = 0;
                long long v = strtoll(bytes_s, &end, 10);
                if (errno != 0 || end == bytes_s || *end != 0 || v < 1 || v > 1 << 20)
                        return usage_error("session recv", "--bytes must be a number from 1 to 1048576, not '%s'", bytes_s);
                bytes = v;
        }
        if (line && bytes)
                return usage_error("session recv", "give --bytes or --line, not both");
        struct json_object *a = args_with("id", *ret_id);
        json_object_object_add(a, "timeout_ms", json_object_new_int64(timeout_ms));
        if (bytes)
                json_object_object_add(a, "bytes", json_object_new_int64(bytes));
        if (line)
                json_object_object_add(a, "line", json_object_new_boolean(true));
        *ret_timeout_ms = timeout_ms;
        *ret_bytes = bytes;
        *ret = a;
        return EXIT_OK;
}

/* Why a session recv that got n bytes failed, or EXIT_OK. */
static int recv_verdict(const char *id, struct json_object *data, size_t n, int64_t timeout_ms, int64_t bytes) {
        if (json_object_get_boolean(jget(data, "timed_out"))) {
                if (timeout_ms == 0)
                        fprintf(stderr, "tcpeductl: session %s: nothing to read\n", id);
                else
                        fprintf(stderr, "tcpeductl: session %s: timed out after %g s\n", id, (double)timeout_ms / 1000.0);
                return EXIT_FAILED;
        }
        if (n == 0 && json_object_get_boolean(jget(data, "eof"))) {
                fprintf(stderr, "tcpeductl: session %s: the peer closed the connection\n", id);
                return EXIT_FAILED;
        }
        if (bytes && (int64_t)n < bytes) {
                fprintf(stderr, "tcpeductl: session %s: the peer closed the connection after %zu of %" PRId64 " bytes\n", id, n, bytes);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int verb_session_recv(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *id = NULL;
        int64_t timeout_ms = 0, bytes = 0;
        struct json_object *a = NULL;
        int r = recv_args(argc, argv, &id, &timeout_ms, &bytes, &a);
        if (r != EXIT_OK)
                return r;
        _cleanup_(link_close) Link c = LINK_NULL;
        ControlReply rep;
        r = ctl_connect(o, &c);
        if (r != EXIT_OK) {
                json_object_put(a);
                return r;
        }
        r = session_call(&c, id, ctl_verb_command(v), a, (int)timeout_ms + CTL_REPLY_MARGIN_MS, &rep);
        link_close(&c);
        if (r != EXIT_OK)
                return r;

        _cleanup_(freep) uint8_t *data = NULL;
        size_t n;
        bool text;
        if (get_data(rep.data, &data, &n, &text) < 0) {
                fprintf(stderr, "tcpeductl: session %s: malformed data in the reply\n", id);
                control_reply_done(&rep);
                return EXIT_FAILED;
        }
        if (o->json)
                print_json(rep.data);
        else if (n > 0 && (fwrite(data, 1, n, stdout) != n || fflush(stdout) != 0)) {
                fprintf(stderr, "tcpeductl: cannot write standard output: %s\n", strerror(errno));
                control_reply_done(&rep);
                return EXIT_FAILED;
        }
        r = recv_verdict(id, rep.data, n, timeout_ms, bytes);
        control_reply_done(&rep);
        return r;
}

int verb_session_close(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *id = NULL, *how = "close";
        int r;
        const VerbOption options[] = { { "--how", &how, NULL } };
        if ((r = verb_args_parse("session close", argc, argv, options, ELEMENTSOF(options), "session ID", &id)) != EXIT_OK)
                return r;
        if (!close_how_valid(how))
                return usage_error("session close", "--how must be close, shutdown or reset, not '%s'", how);
        _cleanup_(link_close) Link c = LINK_NULL;
        ControlReply rep;
        r = ctl_connect(o, &c);
        if (r != EXIT_OK)
                return r;
        struct json_object *a = args_with("id", id);
        json_object_object_add(a, "how", json_object_new_string(how));
        r = session_call(&c, id, ctl_verb_command(v), a, CTL_REPLY_TIMEOUT_MS, &rep);
        if (r != EXIT_OK)
                return r;
        if (o->json)
                print_json(rep.data);
        else
                printf("%s: %s, now %s\n", jstr(rep.data, "id"), jstr(rep.data, "how"), jstr(rep.data, "state"));
        control_reply_done(&rep);
        return EXIT_OK;
}

static void print_session_event(struct json_object *e) {
        char t[32], dur[32];
        const char *event = jstr(e, "event"), *reason = jstr(e, "reason");
        bool has_reason = strcmp(reason, "-") != 0;
        int64_t usec = jint(e, "time_usec");
        if (usec <= 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        }
        printf("%s ", format_time(usec, t, sizeof(t)));
        if (strcmp(event, "transition") == 0) {
                /* Where the new state comes from: the kernel (TCP_INFO or sock_diag), a system call, or
                 * inferred from what happened (then kernel_source only says whom it asked). */
                const char *source = jstr(e, "state_source");
                printf("%s -> %s (%s", jstr(e, "old_state"), jstr(e, "new_state"), source);
                if (jget(e, "kernel_source") && strcmp(source, "inferred") != 0)
                        printf(": %s", jstr(e, "kernel_source"));
                printf(")");
                if (has_reason)
                        printf(": %s", reason);
                if (jget(e, "state_duration_usec") && strcmp(jstr(e, "old_state"), "CLOSED") != 0)
                        printf(", after %s in %s", format_duration(jint(e, "state_duration_usec"), dur, sizeof(dur)), jstr(e, "old_state"));
        } else if (strcmp(event, "data") == 0) {
                uint8_t *data;
                size_t n;
                bool text;
                if (get_data(e, &data, &n, &text) < 0)
                        printf("data %" PRId64 " bytes (malformed)", jint(e, "bytes"));
                else {
                        printf("data %zu byte%s: ", n, n == 1 ? "" : "s");
                        print_escaped(data, n, text, DATA_PREVIEW);
                        free(data);
                }
        } else if (strcmp(event, "disconnected") == 0)
                printf("disconnected: %s (%" PRId64 " bytes in, %" PRId64 " out)", has_reason ? reason : "closed", jint(e, "bytes_in"),
                       jint(e, "bytes_out"));
        else if (strcmp(event, "end") == 0)
                printf("end");
        else {
                printf("%s", event);
                if (has_reason)
                        printf(": %s", reason);
        }
        printf("\n");
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        (void)sig;
        interrupted = 1;
}

/* The session's events until its end, a signal, or the daemon's end. Returns the exit code. */
static int watch_events(Link *c, const CtlOptions *o, const char *id) {
        bool end = false;
        while (!interrupted && !end) {
                const char *line;
                size_t len;
                int r = link_read_line(c, -1, &line, &len);
                if (r == -EINTR)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "tcpeductl: session %s: connection to tcpedud lost: %s\n", id,
                                r == -ECONNRESET ? "the daemon closed it" : strerror(-r));
                        return EXIT_UNAVAILABLE;
                }
                ControlReply ev;
                struct json_object *e;
                if (control_reply_parse(line, len, &ev) == 0 && json_object_object_get_ex(ev.root, "event", &e)) {
                        if (o->json)
                                print_json(e);
                        else
                                print_session_event(e);
                        end = strcmp(jstr(e, "event"), "end") == 0;
                }
                control_reply_done(&ev);
        }
        return EXIT_OK;
}

int verb_session_watch(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        const char *id = argv[1];
        (void)argc;
        _cleanup_(link_close) Link c = LINK_NULL;
        ControlReply rep;
        int r = ctl_connect(o, &c);
        if (r == EXIT_OK)
                r = session_call(&c, id, ctl_verb_command(v), args_with("id", id), CTL_REPLY_TIMEOUT_MS, &rep);
        if (r != EXIT_OK)
                return r;
        struct json_object *s = jget(rep.data, "session");
        if (!o->json)
                fprintf(stderr, "Watching session %s: %s from %s, %s (Ctrl-C to stop)\n", jstr(s, "id"), jstr(s, "peer"), jstr(s, "local"),
                        jstr(s, "state"));
        control_reply_done(&rep);
        ctl_catch_interrupt(on_interrupt);
        return watch_events(&c, o, id);
}

static void print_sessions(struct json_object *d) {
        struct json_object *sessions = jget(d, "sessions");
        char age[32];
        printf("%-36s %-24s %-24s %-12s %-11s %6s %8s %10s %10s %9s\n", "ID", "PEER", "LOCAL", "STATE", "KERNEL", "OWNER", "AGE",
               "BYTES_IN", "BYTES_OUT", "BUFFERED");
        for (size_t i = 0; sessions && i < json_object_array_length(sessions); i++) {
                struct json_object *c = json_object_array_get_idx(sessions, i);
                printf("%-36s %-24s %-24s %-12s %-11s %6s %8s %10" PRId64 " %10" PRId64 " %9" PRId64 "\n", jstr(c, "id"), jstr(c, "peer"),
                       jstr(c, "local"), jstr(c, "state"), jstr(c, "kernel_state"), jstr(c, "owner_uid"),
                       format_duration(jint(c, "age_usec"), age, sizeof(age)), jint(c, "bytes_in"), jint(c, "bytes_out"),
                       jint(c, "buffered"));
        }
        if (!sessions || json_object_array_length(sessions) == 0)
                printf("(no sessions)\n");
        printf("\nmax_sessions %" PRId64 "; since the daemon started: %" PRId64 " opened, %" PRId64 " failed to connect, %" PRId64
               " refused at a limit\n",
               jint(d, "max_sessions"), jint(d, "opened"), jint(d, "failed"), jint(d, "refused_limit"));
}

int verb_sessions(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        (void)argc;
        (void)argv;
        return ctl_simple(v, o, NULL, print_sessions);
}
