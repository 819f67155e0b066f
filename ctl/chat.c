/* SPDX-License-Identifier: MIT */
/* The chat client: the join goes first, each line typed is a message (or a /command), and what the
 * server sends, one JSON object a line, is shown as text with its time. Requests wait in a queue
 * until the session takes them, a session-send of whole lines at a time.
 *
 * Signals: a first SIGINT (or Ctrl-C on the terminal) leaves the room as /quit does (exit 0 after
 * the goodbye); a second SIGINT, SIGTERM or SIGHUP exits at once with 128 + the signal's number.
 * The terminal, put in raw mode for the line editor, is restored on every way out. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat-proto.h"
#include "chat.h"
#include "ctl-util.h"
#include "interactive-io.h"
#include "line-editor.h"
#include "session-client.h"
#include "socket-path.h"
#include "utf8.h"

#define GOODBYE_WAIT_MS 3000 /* how long to wait for the goodbye after the leave */
#define CHAT_LINE_MAX (64u << 10) /* one line from the chat server, or from stdin */
#define CHAT_QUEUE_MAX (256u << 10) /* chat requests not yet sent */
#define CHAT_USERS_MAX 8192
#define CHAT_OUT_MAX (CHAT_LINE_MAX + 1024)
#define CHAT_KEYS_MAX 256 /* bytes of keys read at once */

typedef struct Chat {
        Client c; /* first: the callbacks get it */
        const char *name;
        bool tty; /* stdin and stdout are a terminal: the line editor runs */
        bool joined; /* the welcome came */
        bool join_answered; /* the welcome or an error came: the join's answer, the first to come */
        bool leaving, leave_sent, got_goodbye, users_shown, have_users, users_asked;
        uint64_t deadline; /* for the goodbye; 0: none */
        TextBuf users; /* the last list, as shown */
        ByteQueue rx; /* from the server: the line being received */
        bool rx_skip; /* the rest of a line too long */
        ByteQueue tx; /* to the server: requests not yet handed to the daemon */
        ByteQueue in; /* stdin when it is not a terminal: lines not yet handled */
        bool in_skip, in_eof;
        ByteQueue keys; /* stdin when it is a terminal: keys just read */
        TextBuf msg, out; /* a line from the server rendered in msg, then with the editor's line in out */
        bool abort_now; /* Ctrl-C while leaving */
        LineEditor editor;
} Chat;

/* ---- the screen ---- */

static bool editor_active(Chat *ch) {
        return ch->tty && term_is_raw() && !ch->leaving && !ch->c.done;
}

static void editor_draw(Chat *ch) {
        _cleanup_(text_done) TextBuf b = { .limit = LINE_EDITOR_MAX + 256 };
        line_editor_draw(&ch->editor, &b);
        (void)write_all(STDOUT_FILENO, text_data(&b), text_len(&b));
}

static void editor_hide(Chat *ch) {
        _cleanup_(text_done) TextBuf b = { .limit = 16 };
        line_editor_hide(&ch->editor, &b);
        if (text_len(&b))
                (void)write_all(STDOUT_FILENO, text_data(&b), text_len(&b));
}

static void on_output_begin(void *userdata) {
        Chat *ch = userdata;
        if (ch->tty)
                editor_hide(ch);
}

static void on_output_end(void *userdata) {
        Chat *ch = userdata;
        if (editor_active(ch))
                editor_draw(ch);
}

/* One line for the user: above the line being typed, which is drawn again below it. */
static void chat_print(Chat *ch, const TextBuf *line) {
        bool editor = editor_active(ch);
        text_clear(&ch->out);
        if (ch->tty)
                line_editor_hide(&ch->editor, &ch->out);
        text_put(&ch->out, text_data(line), text_len(line));
        text_puts(&ch->out, "\n");
        if (editor) {
                line_editor_view(&ch->editor, &ch->out);
                ch->editor.shown = true;
        }
        int r = write_all(STDOUT_FILENO, text_data(&ch->out), text_len(&ch->out));
        if (r < 0 && r != -EINTR) {
                if (r != -EPIPE)
                        say("cannot write to stdout: %s", strerror(-r));
                client_finish(&ch->c, EXIT_FAILED);
        }
}

static void chat_notice(Chat *ch, const char *fmt, ...) _printf_(2, 3);
static void chat_notice(Chat *ch, const char *fmt, ...) {
        char msg[1024];
        _cleanup_(text_done) TextBuf b = { .limit = 1200 };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        text_puts(&b, "* ");
        text_put_safe(&b, msg, strlen(msg));
        chat_print(ch, &b);
}

/* ---- to the server ---- */

/* Queue one chat request (o is taken). */
static bool chat_queue(Chat *ch, struct json_object *o) {
        size_t len = 0;
        const char *s = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len) : NULL;
        bool ok = s && byte_queue_len(&ch->tx) + len + 1 <= CHAT_QUEUE_MAX && byte_queue_push(&ch->tx, s, len, CHAT_QUEUE_MAX - 1) >= 0 &&
                  byte_queue_push(&ch->tx, "\n", 1, CHAT_QUEUE_MAX) >= 0;
        if (!ok)
                chat_notice(ch, "not sent: %s", s ? "the chat server does not keep up" : "out of memory");
        json_object_put(o);
        return ok;
}

/* Hand queued requests to the daemon, whole lines of at most STDIN_CHUNK bytes at a time. */
static void chat_pump(Chat *ch) {
        Client *c = &ch->c;
        if (!c->established || c->send_id || byte_queue_empty(&ch->tx) || c->shut || c->close_sent || c->peer_closed || c->disconnected ||
            c->done)
                return;
        const char *tx = (const char *)byte_queue_peek(&ch->tx);
        size_t n = MIN(byte_queue_len(&ch->tx), (size_t)STDIN_CHUNK);
        if (n < byte_queue_len(&ch->tx)) {
                const char *nl = memrchr(tx, '\n', n);
                if (nl)
                        n = (size_t)(nl - tx) + 1;
        }
        int r = client_send(c, (const uint8_t *)tx, n);
        if (r < 0) {
                say("session %s: cannot send: %s", c->id, strerror(-r));
                client_finish(c, EXIT_FAILED);
                return;
        }
        byte_queue_consume(&ch->tx, n);
}

static void chat_quit(Chat *ch) {
        if (ch->leaving)
                return;
        struct json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "type", json_object_new_string("leave"));
        if (ch->tty)
                editor_hide(ch);
        ch->leaving = true;
        ch->deadline = now_ms() + GOODBYE_WAIT_MS;
        chat_queue(ch, o);
}

static bool is_command(const char *line, size_t len, const char *cmd) {
        size_t n = strlen(cmd);
        return len >= n && memcmp(line, cmd, n) == 0 && (len == n || line[n] == ' ');
}

/* A /command the user typed. */
static void chat_command(Chat *ch, const char *line, size_t len) {
        if (is_command(line, len, "/quit"))
                chat_quit(ch);
        else if (is_command(line, len, "/users")) {
                /* The JSON dialect has no users request: the server sends the list at
                 * every join, leave and rename, so the last one is the current one. */
                if (ch->have_users)
                        chat_notice(ch, "users: %.*s", (int)text_len(&ch->users), text_data(&ch->users));
                else
                        ch->users_asked = true; /* shown when it comes */
        } else if (is_command(line, len, "/help"))
                chat_notice(ch, "commands: /users (who is here), /quit (leave; also Ctrl-D on an empty line), "
                                "//TEXT (a message that begins with /)");
        else {
                size_t n = 0;
                while (n < len && line[n] != ' ')
                        n++;
                chat_notice(ch, "unknown command %.*s (try /help)", (int)utf8_prefix(line, n, 32), line);
        }
}

/* A line the user typed: a command, or a message. */
static void chat_input_line(Chat *ch, const char *line, size_t len) {
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
                len--;
        if (len == 0)
                return;
        if (line[0] == '/' && (len < 2 || line[1] != '/')) {
                chat_command(ch, line, len);
                return;
        }
        if (line[0] == '/') {
                line++;
                len--;
        }
        /* The server takes one line of UTF-8 without control characters: say so at once here. */
        char *content = malloc(len + 1);
        if (!content) {
                chat_notice(ch, "not sent: out of memory");
                return;
        }
        size_t n = 0;
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t k = utf8_decode((const unsigned char *)line + i, len - i, &cp);
                if (k == 0 || (cp < 0x20 && cp != '\t') || cp == 0x7f)
                        content[n++] = '?', i += k ? k : 1;
                else {
                        memcpy(content + n, line + i, k);
                        n += k;
                        i += k;
                }
        }
        struct json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "type", json_object_new_string("message"));
                json_object_object_add(o, "content", json_object_new_string_len(content, (int)n));
        }
        free(content);
        chat_queue(ch, o);
}

/* ---- from the server ---- */

/* One JSON object from a line of the chat server. */
static struct json_object *parse_object_line(const char *line, size_t len) {
        if (len > INT32_MAX)
                return NULL;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        struct json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        size_t end = o && json_tokener_get_error(tok) == json_tokener_success ? json_tokener_get_parse_end(tok) : 0;
        json_tokener_free(tok);
        if (!o)
                return NULL;
        while (end < len && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r'))
                end++;
        if (end < len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static void put_time(TextBuf *b, struct json_object *msg) {
        struct json_object *v;
        time_t t = time(NULL);
        if (json_object_object_get_ex(msg, "timestamp", &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
                double d = json_object_get_double(v);
                if (isfinite(d) && d > 0 && d < 1e15)
                        t = (time_t)d;
        }
        struct tm tm;
        char s[32];
        localtime_r(&t, &tm);
        strftime(s, sizeof(s), "[%H:%M:%S] ", &tm);
        text_puts(b, s);
}

static void put_field(TextBuf *b, struct json_object *o, const char *key, const char *def) {
        const char *s = jstr_or(o, key, def);
        text_put_safe(b, s, strlen(s));
}

static void chat_users(Chat *ch, struct json_object *msg) {
        struct json_object *arr;
        if (!json_object_object_get_ex(msg, "users", &arr) || !json_object_is_type(arr, json_type_array))
                return;
        text_clear(&ch->users);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *u = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(u, json_type_string))
                        continue;
                if (text_len(&ch->users))
                        text_puts(&ch->users, ", ");
                text_put_safe(&ch->users, json_object_get_string(u), (size_t)json_object_get_string_len(u));
        }
        ch->have_users = true;
}

/* How each type of message from the server is shown, into b (left empty: not shown). */
static void show_message(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        struct json_object *v;
        bool action = json_object_object_get_ex(o, "action", &v) && json_object_get_boolean(v);
        const char *user = jstr_or(o, "username", "?");
        (void)ch;
        (void)type;
        put_time(b, o);
        if (strcmp(user, "*server*") == 0)
                text_puts(b, "*** ");
        else {
                if (action)
                        text_puts(b, "* ");
                text_put_safe(b, user, strlen(user));
                text_puts(b, action ? " " : ": ");
        }
        put_field(b, o, "content", "");
}

static void show_join_leave(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        (void)ch;
        text_puts(b, "* ");
        put_field(b, o, "username", "?");
        text_puts(b, type[0] == 'j' ? " joined" : " left");
}

static void show_rename(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        (void)ch;
        (void)type;
        text_puts(b, "* ");
        put_field(b, o, "old_username", "?");
        text_puts(b, " is now known as ");
        put_field(b, o, "username", "?");
}

static void show_users(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        (void)type;
        chat_users(ch, o);
        /* The server sends the list at every change: show the first, keep the others for /users. */
        if ((ch->users_shown || !ch->joined) && !ch->users_asked)
                return;
        ch->users_shown = true;
        ch->users_asked = false;
        text_puts(b, "* users: ");
        text_put(b, text_data(&ch->users), text_len(&ch->users));
}

static void show_error(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        (void)type;
        if (ch->join_answered) {
                text_puts(b, "* error: ");
                put_field(b, o, "content", "?");
                return;
        }
        /* The join comes first and is answered first: this is its answer. */
        ch->join_answered = true;
        say("cannot join the chat as %s: %s", ch->name, jstr_or(o, "content", "error"));
        client_finish(&ch->c, EXIT_FAILED);
}

/* welcome, goodbye, and types this client does not know: their content, if any. */
static void show_other(Chat *ch, struct json_object *o, const char *type, TextBuf *b) {
        if (strcmp(type, "welcome") == 0)
                ch->joined = ch->join_answered = true;
        else if (strcmp(type, "goodbye") == 0)
                ch->got_goodbye = true;
        if (jstr_or(o, "content", NULL)) {
                text_puts(b, "* ");
                put_field(b, o, "content", "");
        }
}

static const struct {
        const char *type;
        void (*show)(Chat *ch, struct json_object *o, const char *type, TextBuf *b);
} server_messages[] = {
        { "message", show_message }, { "join", show_join_leave }, { "leave", show_join_leave },
        { "rename", show_rename },   { "users", show_users },     { "error", show_error },
};

/* One line from the chat server: a JSON object each. */
static void chat_server_line(Chat *ch, const char *line, size_t len) {
        while (len > 0 && line[len - 1] == '\r')
                len--;
        if (len == 0)
                return;
        text_clear(&ch->msg);
        struct json_object *o = parse_object_line(line, len);
        const char *type = jstr_or(o, "type", NULL);
        if (!type)
                /* not the JSON dialect: show it as it is (made safe) */
                text_put_safe(&ch->msg, line, len);
        else {
                void (*show)(Chat *, struct json_object *, const char *, TextBuf *) = show_other;
                for (size_t i = 0; i < ELEMENTSOF(server_messages); i++)
                        if (strcmp(type, server_messages[i].type) == 0)
                                show = server_messages[i].show;
                show(ch, o, type, &ch->msg);
        }
        if (text_len(&ch->msg))
                chat_print(ch, &ch->msg);
        json_object_put(o);
}

static void chat_on_data(Client *c, const uint8_t *p, size_t n) {
        Chat *ch = (Chat *)c;
        while (n > 0 && !c->done) {
                const uint8_t *nl = memchr(p, '\n', n);
                size_t seg = nl ? (size_t)(nl - p) : n;
                if (!ch->rx_skip && byte_queue_push(&ch->rx, p, seg, CHAT_LINE_MAX) < 0) {
                        chat_notice(ch, "a line from the chat server longer than %u bytes was dropped", CHAT_LINE_MAX);
                        ch->rx_skip = true;
                        byte_queue_consume(&ch->rx, byte_queue_len(&ch->rx));
                }
                if (!nl)
                        break;
                if (!ch->rx_skip)
                        chat_server_line(ch, (const char *)byte_queue_peek(&ch->rx), byte_queue_len(&ch->rx));
                byte_queue_consume(&ch->rx, byte_queue_len(&ch->rx));
                ch->rx_skip = false;
                p = nl + 1;
                n -= seg + 1;
        }
}

static void chat_on_disconnected(Client *c) {
        Chat *ch = (Chat *)c;
        if (ch->got_goodbye) {
                client_finish(c, EXIT_OK);
                return;
        }
        if (c->peer_closed && !c->reset)
                say("the chat server closed the connection");
        else if (!c->verbose)
                say("disconnected: %s", c->reason);
        client_finish(c, EXIT_FAILED);
}

/* ---- from the user ---- */

/* Keys from the terminal, through the line editor. */
static void chat_keys(Chat *ch, const uint8_t *p, size_t n) {
        bool changed = false;
        for (size_t i = 0; i < n && !ch->c.done; i++) {
                if (ch->leaving) {
                        /* only one more Ctrl-C counts: leave without waiting */
                        if (p[i] == 0x03)
                                ch->abort_now = true;
                        continue;
                }
                switch (line_editor_key(&ch->editor, p[i])) {
                case LINE_EDITOR_INTERRUPT:
                case LINE_EDITOR_END:
                        chat_quit(ch);
                        break;
                case LINE_EDITOR_SUBMIT: {
                        size_t len;
                        const char *line = line_editor_submitted(&ch->editor, &len);
                        changed = true;
                        chat_input_line(ch, line, len);
                        line_editor_submitted_done(&ch->editor);
                        break;
                }
                case LINE_EDITOR_CHANGED:
                        changed = true;
                        break;
                case LINE_EDITOR_FULL:
                        (void)write_all(STDOUT_FILENO, "\a", 1);
                        break;
                default:
                        break;
                }
        }
        if (changed && editor_active(ch))
                editor_draw(ch);
}

static bool stdin_has_line(const Chat *ch) {
        return !byte_queue_empty(&ch->in) && memchr(byte_queue_peek(&ch->in), '\n', byte_queue_len(&ch->in));
}

/* Lines from stdin when it is not a terminal, while the queue has room for them. */
static void chat_stdin_lines(Chat *ch) {
        while (!ch->c.done && !ch->leaving && !byte_queue_empty(&ch->in)) {
                const char *start = (const char *)byte_queue_peek(&ch->in);
                const char *nl = memchr(start, '\n', byte_queue_len(&ch->in));
                if (!nl)
                        return;
                size_t len = (size_t)(nl - start);
                if (byte_queue_len(&ch->tx) + 2 * len + 64 > CHAT_QUEUE_MAX)
                        return;
                if (ch->in_skip)
                        ch->in_skip = false;
                else
                        chat_input_line(ch, start, len);
                byte_queue_consume(&ch->in, len + 1);
        }
}

static void chat_read_keys(Chat *ch) {
        int r = 0;
        uint8_t *p = byte_queue_reserve(&ch->keys, CHAT_KEYS_MAX, CHAT_KEYS_MAX, &r);
        ssize_t n = p ? read(STDIN_FILENO, p, CHAT_KEYS_MAX) : -1;
        if (n > 0) {
                byte_queue_commit(&ch->keys, (size_t)n);
                chat_keys(ch, byte_queue_peek(&ch->keys), (size_t)n);
                byte_queue_consume(&ch->keys, (size_t)n);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                ch->in_eof = true;
                chat_quit(ch);
        }
}

static void chat_read_stdin(Chat *ch) {
        int r = 0;
        size_t room = CHAT_LINE_MAX - byte_queue_len(&ch->in);
        uint8_t *p = byte_queue_reserve(&ch->in, room, CHAT_LINE_MAX, &r);
        ssize_t n = p ? read(STDIN_FILENO, p, room) : -1;
        if (n > 0) {
                byte_queue_commit(&ch->in, (size_t)n);
                if (byte_queue_len(&ch->in) == CHAT_LINE_MAX && !stdin_has_line(ch)) {
                        if (!ch->in_skip)
                                chat_notice(ch, "an input line longer than %u bytes was not sent", CHAT_LINE_MAX);
                        ch->in_skip = true;
                        byte_queue_consume(&ch->in, byte_queue_len(&ch->in));
                }
                return;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n < 0)
                say("cannot read stdin: %s", p ? strerror(errno) : strerror(-r));
        ch->in_eof = true;
}

/* ---- the loop ---- */

/* What came from stdin when it is not a terminal; at its end, the last line (without a newline)
 * and the leave. */
static void chat_take_stdin(Chat *ch) {
        chat_stdin_lines(ch);
        if (ch->in_eof && !ch->leaving && !stdin_has_line(ch)) {
                if (!byte_queue_empty(&ch->in) && !ch->in_skip)
                        chat_input_line(ch, (const char *)byte_queue_peek(&ch->in), byte_queue_len(&ch->in));
                byte_queue_consume(&ch->in, byte_queue_len(&ch->in));
                chat_quit(ch);
        }
}

/* Whether it is time to stop waiting for the goodbye. */
static bool chat_goodbye_due(Chat *ch) {
        if (ch->leaving && !ch->leave_sent && byte_queue_empty(&ch->tx) && ch->c.send_id == 0) {
                /* the leave is with the server now: give it the full time to answer */
                ch->leave_sent = true;
                ch->deadline = now_ms() + GOODBYE_WAIT_MS;
        }
        if (ch->c.done || !ch->deadline || timeout_until(ch->deadline) != 0)
                return false;
        if (ch->got_goodbye)
                client_finish(&ch->c, EXIT_OK);
        else {
                say("no goodbye from the chat server within %d s", GOODBYE_WAIT_MS / 1000);
                client_finish(&ch->c, EXIT_FAILED);
        }
        return true;
}

static int chat_run(Chat *ch) {
        Client *c = &ch->c;
        int handled_int = 0;

        while (!c->done) {
                if (signals_terminate() || signals_interrupts() >= 2 || ch->abort_now)
                        return client_interrupt(c);
                if (signals_interrupts() > handled_int) {
                        handled_int = signals_interrupts();
                        chat_quit(ch);
                }
                if (signals_take_winch()) {
                        ch->editor.cols = term_cols();
                        if (editor_active(ch))
                                editor_draw(ch);
                }
                if (c->peer_closed && c->send_id == 0 && !c->close_sent && !c->shut && !c->disconnected)
                        client_close(c, "close");
                if (!ch->tty)
                        chat_take_stdin(ch);
                chat_pump(ch);
                if (c->done || chat_goodbye_due(ch))
                        break;
                bool want = !ch->in_eof;
                if (!ch->tty)
                        want = want && !ch->leaving && byte_queue_len(&ch->in) < CHAT_LINE_MAX && !stdin_has_line(ch);
                struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
                client_poll(c, &in, want ? 1 : 0, timeout_until(ch->deadline));
                if (!c->done && want && in.revents) {
                        if (ch->tty)
                                chat_read_keys(ch);
                        else
                                chat_read_stdin(ch);
                }
        }
        return c->code;
}

/* Join, and on a terminal start the line editor; run until the end. */
static int chat_session(Chat *ch, const ClientArgs *a) {
        struct json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "type", json_object_new_string("join"));
                json_object_object_add(o, "username", json_object_new_string(a->user));
        }
        chat_queue(ch, o);
        if (ch->tty) {
                if (term_raw() < 0)
                        ch->tty = false;
                else {
                        ch->editor.cols = term_cols();
                        output_set_hooks(on_output_begin, on_output_end, ch);
                        editor_draw(ch);
                }
        }
        int r = chat_run(ch);
        if (ch->tty)
                editor_hide(ch);
        output_set_hooks(NULL, NULL, NULL);
        term_restore();
        return r;
}

static void chat_done(Chat *ch) {
        link_close(&ch->c.link);
        text_done(&ch->users);
        text_done(&ch->msg);
        text_done(&ch->out);
        byte_queue_done(&ch->rx);
        byte_queue_done(&ch->tx);
        byte_queue_done(&ch->in);
        byte_queue_done(&ch->keys);
        line_editor_done(&ch->editor);
}

int verb_chat(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        char path[sizeof(((Link *)0)->path)], prompt[LINE_EDITOR_PROMPT_MAX];
        ClientArgs a;
        (void)v;
        int r = ctl_socket_find(o->socket_path, o->config_path, path, sizeof(path));
        if (r != EXIT_OK)
                return r;
        r = client_args_parse(argc, argv, true, &a);
        if (r != EXIT_OK)
                return r;
        _cleanup_(chat_done) Chat ch = {
                .c = { .link = LINK_NULL, .verbose = a.verbose, .on_data = chat_on_data, .on_disconnected = chat_on_disconnected },
                .name = a.user,
                .tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO),
                .users = { .limit = CHAT_USERS_MAX - 1 },
                .msg = { .limit = CHAT_OUT_MAX },
                .out = { .limit = CHAT_OUT_MAX + LINE_EDITOR_MAX + 256 },
        };
        snprintf(prompt, sizeof(prompt), "%s> ", a.user);
        line_editor_init(&ch.editor, prompt, 80);
        if (signals_setup() < 0) {
                say("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAILED;
        }
        r = client_open(&ch.c, path, &a);
        if (r == EXIT_OK)
                r = chat_session(&ch, &a);
        link_close(&ch.c.link);
        signals_restore();
        return r;
}
