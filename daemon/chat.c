/* SPDX-License-Identifier: MIT */
/* The chat server: one room per server, JSON members (python_tcp's chat protocol) and line-mode
 * members (nc, telnet) together.
 *
 * Ordering and fairness: everything said in a room goes through one queue and is delivered to every
 * member in queue order. A delivery never blocks: what a member's socket does not take waits in
 * that member's own output buffer, bounded by max_queue; a member whose buffer is full is dropped
 * (with a logged reason) rather than delay the others or grow the daemon's memory. Events that
 * happen during a delivery (a drop, a reset) are queued behind it, so nobody sees them out of order. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "chat-proto.h"
#include "macro.h"
#include "chat.h"
#include "framed.h"

#define AUTODETECT_USEC (250 * USEC_PER_MSEC)
#define AUTODETECT_RECHECK_USEC (20 * USEC_PER_MSEC)
#define CHAT_SNDBUF (32 * 1024)

typedef enum MemberMode {
        MODE_UNDECIDED,
        MODE_JSON,
        MODE_LINE,
} MemberMode;

typedef struct Member {
        ListNode node; /* room->members, once joined */
        Conn *conn;
        FramedConn framed;
        MemberMode mode;
        bool framed_ready;
        bool joined;
        bool gone; /* disconnected: deliveries skip it; freed with its connection */
        char name[CHAT_NAME_MAX * 4 + 1];
        uint64_t rate_window; /* second (monotonic) the count is for */
        unsigned rate_count;
        ConnTimer *detect_timer;
} Member;

typedef struct Delivery {
        struct Delivery *next;
        char *json; /* for JSON members; NULL: not for them */
        char *text; /* for line members; NULL: not for them */
        size_t json_len, text_len;
        Member *only; /* non-NULL: to this member only */
        Member *except; /* non-NULL: to everyone but this member */
} Delivery;

typedef struct HistoryEntry {
        char *json, *text;
} HistoryEntry;

typedef struct Room {
        ListNode members;
        unsigned n_members;
        Delivery *head, *tail;
        bool delivering;
        HistoryEntry *history; /* ring of cfg.history entries */
        unsigned history_cap, history_len, history_next;
        uint64_t messages, joins, leaves, drops;
} Room;

static Room *room_of(Server *s) {
        if (!s->type_state) {
                Room *r = calloc(1, sizeof(Room));
                if (!r)
                        return NULL;
                list_init(&r->members);
                s->type_state = r;
        }
        return s->type_state;
}

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *json_line(struct json_object *o) {
        if (!o)
                return NULL;
        size_t len;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        char *line = malloc(len + 2);
        if (line) {
                memcpy(line, s, len);
                line[len] = '\n';
                line[len + 1] = 0;
        }
        json_object_put(o);
        return line;
}

static char *text_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text_line(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

static void clock_prefix(char buf[16]) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, 16, "[%H:%M:%S]", &tm);
}

static void log_chat(Member *m, const char *event, const char *mid, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void log_chat(Member *m, const char *event, const char *mid, const char *fmt, ...) {
        Conn *c = m->conn;
        char msg[512], peer[SOCKADDR_STR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        LogEntry e;
        log_entry_init(&e, LOG_INFO, mid);
        log_entry_add(&e, "MESSAGE", "%s", msg);
        log_entry_add(&e, "TCPEDU_EVENT", "%s", event);
        log_entry_add(&e, "TCPEDU_SERVER", "%s", c->server->cfg.name);
        log_entry_add(&e, "TCPEDU_SERVER_TYPE", "chat");
        log_entry_add(&e, "TCPEDU_CONN_ID", "%s", c->id);
        log_entry_add(&e, "TCPEDU_PEER", "%s", sockaddr_format(&c->peer.sa, peer, sizeof(peer)));
        log_entry_add(&e, "TCPEDU_CHAT_USER", "%s", m->name);
        core_emit(c->server->core, &e, true);
}

/* ---- delivery ---- */

static void delivery_free(Delivery *d) {
        free(d->json);
        free(d->text);
        free(d);
}

static void drop_member(Member *m, const char *why);

static void deliver_one(Delivery *d, Member *m) {
        const char *data = m->mode == MODE_JSON ? d->json : d->text;
        size_t len = m->mode == MODE_JSON ? d->json_len : d->text_len;
        if (!data || m->gone || !conn_has_fd(m->conn))
                return;
        int r = conn_send_bounded(m->conn, data, len, m->conn->server->cfg.max_queue);
        if (r == -ENOBUFS)
                drop_member(m, "output queue full (max_queue): the member does not read");
}

/* Deliver everything queued, in order, to the members present at each delivery. Re-entrant calls
 * (a member dropped while delivering) only queue. */
static void room_flush(Room *room) {
        if (room->delivering)
                return;
        room->delivering = true;
        while (room->head) {
                Delivery *d = room->head;
                room->head = d->next;
                if (!room->head)
                        room->tail = NULL;
                if (d->only)
                        deliver_one(d, d->only);
                else {
                        ListNode *n, *tmp;
                        list_foreach_safe (n, tmp, &room->members) {
                                Member *m = list_entry(n, Member, node);
                                if (m != d->except)
                                        deliver_one(d, m);
                        }
                }
                delivery_free(d);
        }
        room->delivering = false;
}

static void room_queue(Room *room, char *json, char *text, Member *only, Member *except) {
        Delivery *d = calloc(1, sizeof(Delivery));
        if (!d) {
                free(json);
                free(text);
                return;
        }
        *d = (Delivery){ .json = json,
                         .text = text,
                         .json_len = json ? strlen(json) : 0,
                         .text_len = text ? strlen(text) : 0,
                         .only = only,
                         .except = except };
        if (room->tail)
                room->tail->next = d;
        else
                room->head = d;
        room->tail = d;
        room_flush(room);
}

static void send_to(Room *room, Member *m, struct json_object *json, char *text) {
        room_queue(room, json ? json_line(json) : NULL, text, m, NULL);
}

static void send_error(Room *room, Member *m, const char *error) {
        send_to(room, m, chat_json_with("error", now_seconds(), "content", error), text_line("! %s\n", error));
}

static struct json_object *users_json(Room *room, double ts) {
        struct json_object *o = chat_json("users", ts), *arr = json_object_new_array();
        ListNode *n;
        for (n = room->members.next; n != &room->members; n = n->next)
                json_object_array_add(arr, json_object_new_string(list_entry(n, Member, node)->name));
        json_object_object_add(o, "users", arr);
        return o;
}

static char *users_text(Room *room) {
        size_t cap = 64 + room->n_members * (CHAT_NAME_MAX * 4 + 2), off;
        char *s = malloc(cap);
        if (!s)
                return NULL;
        off = (size_t)snprintf(s, cap, "* Users (%u):", room->n_members);
        for (ListNode *n = room->members.next; n != &room->members && off < cap; n = n->next)
                off += (size_t)snprintf(s + off, cap - off, "%s%s", n == room->members.next ? " " : ", ",
                                        list_entry(n, Member, node)->name);
        if (off + 2 < cap) {
                s[off++] = '\n';
                s[off] = 0;
        }
        return s;
}

static void broadcast_users(Room *room) {
        room_queue(room, json_line(users_json(room, now_seconds())), NULL, NULL, NULL);
}

/* Follow the configured size (a reload may change it, to 0 too): a new size starts afresh. */
static void history_sync(Room *room, unsigned cap) {
        if (room->history_cap == cap)
                return;
        for (unsigned i = 0; i < room->history_cap; i++) {
                free(room->history[i].json);
                free(room->history[i].text);
        }
        free(room->history);
        room->history = cap ? calloc(cap, sizeof(HistoryEntry)) : NULL;
        room->history_cap = room->history ? cap : 0;
        room->history_len = room->history_next = 0;
}

static void history_add(Room *room, unsigned cap, const char *json, const char *text) {
        history_sync(room, cap);
        if (room->history_cap == 0)
                return;
        HistoryEntry *h = &room->history[room->history_next];
        free(h->json);
        free(h->text);
        h->json = strdup(json);
        h->text = strdup(text);
        room->history_next = (room->history_next + 1) % cap;
        if (room->history_len < cap)
                room->history_len++;
}

static void send_history(Room *room, Member *m) {
        history_sync(room, m->conn->server->cfg.history);
        for (unsigned i = 0; i < room->history_len; i++) {
                unsigned idx = (room->history_next + room->history_cap - room->history_len + i) % room->history_cap;
                HistoryEntry *h = &room->history[idx];
                char *j = h->json ? strdup(h->json) : NULL, *t = h->text ? strdup(h->text) : NULL;
                room_queue(room, j, t, m, NULL);
        }
}

/* ---- members ---- */

static Member *find_name(Room *room, const char *name) {
        for (ListNode *n = room->members.next; n != &room->members; n = n->next) {
                Member *m = list_entry(n, Member, node);
                if (chat_name_equal(m->name, name))
                        return m;
        }
        return NULL;
}

static void leave_room(Member *m, const char *why, bool dropped) {
        Room *room = room_of(m->conn->server);
        if (!m->joined || !room)
                return;
        m->joined = false;
        list_remove(&m->node);
        room->n_members--;
        if (dropped) {
                room->drops++;
                log_chat(m, "chat-drop", MID_CHAT_DROP, "Chat %s: %s dropped: %s", m->conn->server->cfg.name, m->name, why);
        } else {
                room->leaves++;
                log_chat(m, "chat-leave", MID_CHAT_LEAVE, "Chat %s: %s left (%s)", m->conn->server->cfg.name, m->name, why);
        }
        char *j = json_line(chat_json_with("leave", now_seconds(), "username", m->name));
        char *t = text_line("* %s left\n", m->name);
        room_queue(room, j, t, NULL, NULL);
        broadcast_users(room);
}

static void drop_member(Member *m, const char *why) {
        if (m->gone)
                return;
        m->gone = true;
        leave_room(m, why, true);
        conn_abort(m->conn, "chat: output queue full (max_queue)");
}

static void do_join(Room *room, Member *m, const char *name_in, size_t len) {
        char name[sizeof(m->name)];
        const char *err = chat_name_check(name_in, len);
        if (err || len >= sizeof(name)) {
                send_error(room, m, err ? err : "Username too long (at most 32 characters)");
                return;
        }
        memcpy(name, name_in, len);
        name[len] = 0;
        Member *other = find_name(room, name);
        if (other && other != m) {
                send_error(room, m, CHAT_ERR_USERNAME_TAKEN);
                return;
        }
        double ts = now_seconds();
        if (m->joined) {
                /* a rename */
                char old[sizeof(m->name)];
                snprintf(old, sizeof(old), "%s", m->name);
                snprintf(m->name, sizeof(m->name), "%s", name);
                log_chat(m, "chat-rename", MID_CHAT_RENAME, "Chat %s: %s is now %s", m->conn->server->cfg.name, old, name);
                struct json_object *o = chat_json_with("rename", ts, "username", name);
                json_object_object_add(o, "old_username", json_object_new_string(old));
                room_queue(room, json_line(o), text_line("* %s is now known as %s\n", old, name), NULL, NULL);
                broadcast_users(room);
                return;
        }
        snprintf(m->name, sizeof(m->name), "%s", name);
        m->joined = true;
        list_append(&room->members, &m->node);
        room->n_members++;
        room->joins++;
        log_chat(m, "chat-join", MID_CHAT_JOIN, "Chat %s: %s joined", m->conn->server->cfg.name, name);

        char welcome[192];
        snprintf(welcome, sizeof(welcome), "Welcome to the chat, %s!", name);
        send_to(room, m, chat_json_with("welcome", ts, "content", welcome), text_line("* %s\n", welcome));
        send_history(room, m);
        room_queue(room, json_line(chat_json_with("join", ts, "username", name)), text_line("* %s joined\n", name), NULL, NULL);
        broadcast_users(room);
}

static bool over_rate(Member *m) {
        unsigned max = m->conn->server->cfg.max_rate;
        if (!max)
                return false;
        uint64_t sec = core_now(m->conn->server->core, CLOCK_MONOTONIC) / USEC_PER_SEC;
        if (sec != m->rate_window) {
                m->rate_window = sec;
                m->rate_count = 0;
        }
        return ++m->rate_count > max;
}

static void do_message(Room *room, Member *m, const char *content, size_t len, bool action) {
        if (!m->joined) {
                send_error(room, m, m->mode == MODE_LINE ? "Not registered: pick a name with /nick NAME first" : CHAT_ERR_NOT_REGISTERED);
                return;
        }
        char prefix[16];
        clock_prefix(prefix);
        double ts = now_seconds();
        struct json_object *o = chat_json("message", ts);
        json_object_object_add(o, "username", json_object_new_string(m->name));
        json_object_object_add(o, "content", json_object_new_string_len(content, (int)len));
        if (action)
                json_object_object_add(o, "action", json_object_new_boolean(1));
        char *j = json_line(o);
        char *t = action ? text_line("%s * %s %.*s\n", prefix, m->name, (int)len, content)
                         : text_line("%s <%s> %.*s\n", prefix, m->name, (int)len, content);
        if (j && t)
                history_add(room, m->conn->server->cfg.history, j, t);
        room->messages++;
        room_queue(room, j, t, NULL, NULL);
}

static void do_leave(Room *room, Member *m) {
        char bye[192];
        snprintf(bye, sizeof(bye), "Goodbye, %s!", m->joined ? m->name : "stranger");
        send_to(room, m, chat_json_with("goodbye", now_seconds(), "content", bye), text_line("* %s\n", bye));
        leave_room(m, "said goodbye", false);
        m->gone = true;
        conn_close(m->conn, "chat: left");
}

static void greet(Room *room, Member *m) {
        char *t = text_line("* Welcome to the tcpedu chat room '%s' (%u here).\n"
                            "* Commands: /nick NAME (join or rename), /users, /me ACTION, /quit, /help.\n"
                            "* Pick a name with /nick NAME; then every line you type is a message.\n",
                            m->conn->server->cfg.name, room->n_members);
        send_to(room, m, NULL, t);
}

static int on_frame(void *userdata, const Frame *f) {
        Member *m = userdata;
        Room *room = room_of(m->conn->server);
        ChatRequest req;
        char msg[160];

        if (m->gone || !room)
                return -1;
        switch (f->kind) {
        case FRAME_OBJECT:
                chat_request_from_json(f->object, &req);
                break;
        case FRAME_LINE:
                chat_request_from_line(f->data, f->len, &req);
                break;
        case FRAME_TEXT:
        case FRAME_INVALID:
                send_error(room, m, CHAT_ERR_INVALID_JSON);
                return m->gone || !conn_has_fd(m->conn) ? -1 : 0;
        case FRAME_TOO_LONG:
                snprintf(msg, sizeof(msg), "Message too long (max_message is %u bytes): discarded", m->conn->server->cfg.max_message);
                send_error(room, m, msg);
                return m->gone || !conn_has_fd(m->conn) ? -1 : 0;
        }

        /* max_rate counts what costs the whole room work: messages, renames and /users (not the
         * first join, an error, or the leave). */
        bool counted = req.type == CHAT_REQ_MESSAGE || req.type == CHAT_REQ_ACTION || req.type == CHAT_REQ_USERS ||
                       (req.type == CHAT_REQ_JOIN && m->joined);
        if (counted && over_rate(m)) {
                snprintf(msg, sizeof(msg), "Too many messages (max_rate is %u a second): disconnecting", m->conn->server->cfg.max_rate);
                send_error(room, m, msg);
                m->gone = true;
                leave_room(m, "flooding (over max_rate)", true);
                conn_close(m->conn, "chat: flooding (over max_rate)");
                return -1;
        }
        switch (req.type) {
        case CHAT_REQ_JOIN:
                do_join(room, m, req.username, req.username_len);
                break;
        case CHAT_REQ_MESSAGE:
        case CHAT_REQ_ACTION:
                do_message(room, m, req.content, req.content_len, req.type == CHAT_REQ_ACTION);
                break;
        case CHAT_REQ_LEAVE:
                do_leave(room, m);
                break;
        case CHAT_REQ_USERS: {
                char *t = users_text(room);
                send_to(room, m, users_json(room, now_seconds()), t);
                break;
        }
        case CHAT_REQ_HELP:
                greet(room, m);
                break;
        case CHAT_REQ_INVALID:
                send_error(room, m, req.error);
                break;
        }
        return m->gone || !conn_has_fd(m->conn) ? -1 : 0;
}

static void decide_mode(Member *m, MemberMode mode) {
        m->mode = mode;
        m->detect_timer = conn_timer_free(m->detect_timer);
        framed_init(m->conn, &m->framed, mode == MODE_JSON ? FRAMER_JSON : FRAMER_LINE);
        m->framed_ready = true;
        if (mode == MODE_LINE) {
                Room *room = room_of(m->conn->server);
                if (room)
                        greet(room, m);
        }
}

/* Nothing arrived within 250 ms: a person at nc or telnet, most likely. Greet them. */
static void on_detect_timeout(Conn *c, void *userdata) {
        Member *m = userdata;
        if (m->mode != MODE_UNDECIDED || m->gone)
                return;
        /* Under load the first bytes may be in the socket and not read yet: the read path decides
         * then, from those bytes. Look again a little later. */
        if (conn_has_unread(c)) {
                (void)conn_timer_arm(c, &m->detect_timer, AUTODETECT_RECHECK_USEC, 0, on_detect_timeout, m);
                return;
        }
        decide_mode(m, MODE_LINE);
}

static void chat_on_connect(Conn *c) {
        Member *m = calloc(1, sizeof(Member));
        if (!m || !room_of(c->server)) {
                free(m);
                conn_abort(c, "out of memory");
                return;
        }
        list_init(&m->node);
        m->conn = c;
        c->userdata = m;
        /* max_queue must bound what waits for a member, and the kernel's send buffer would otherwise
         * autotune to megabytes on top of it: cap it (the kernel doubles this). */
        (void)conn_set_sndbuf(c, CHAT_SNDBUF);
        switch (c->server->cfg.protocol) {
        case CHAT_PROTOCOL_JSON:
                decide_mode(m, MODE_JSON);
                break;
        case CHAT_PROTOCOL_LINE:
                decide_mode(m, MODE_LINE);
                break;
        default:
                (void)conn_timer_arm(c, &m->detect_timer, AUTODETECT_USEC, 0, on_detect_timeout, m);
        }
}

static void chat_on_data(Conn *c, const uint8_t *data, size_t len) {
        Member *m = c->userdata;
        if (!m || m->gone)
                return;
        if (m->mode == MODE_UNDECIDED) {
                size_t i = 0;
                while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
                        i++;
                if (i == len)
                        return;
                decide_mode(m, data[i] == '{' ? MODE_JSON : MODE_LINE);
        }
        (void)framed_feed(c, &m->framed, data, len, on_frame, m);
}

/* The daemon is closing this member (kicked, idle, line_timeout, stopping): it leaves the room now,
 * not when its peer finally closes too. */
static void chat_on_close_start(Conn *c) {
        Member *m = c->userdata;
        if (!m || m->gone)
                return;
        m->gone = true;
        m->detect_timer = conn_timer_free(m->detect_timer);
        if (m->joined)
                leave_room(m, c->close_reason ? c->close_reason : "closed by the daemon", false);
}

static void chat_on_disconnect(Conn *c) {
        Member *m = c->userdata;
        if (!m)
                return;
        m->detect_timer = conn_timer_free(m->detect_timer);
        if (m->joined)
                leave_room(m, c->close_reason ? c->close_reason : "disconnected", false);
        m->gone = true;
}

static void chat_conn_free(Conn *c) {
        Member *m = c->userdata;
        if (!m)
                return;
        if (m->framed_ready)
                framed_done(&m->framed);
        conn_timer_free(m->detect_timer);
        list_remove(&m->node);
        free(m);
        c->userdata = NULL;
}

static void chat_describe(Server *s, struct json_object *out) {
        Room *room = s->type_state;
        struct json_object *members = json_object_new_array();
        for (ListNode *n = room ? room->members.next : NULL; room && n != &room->members; n = n->next) {
                Member *m = list_entry(n, Member, node);
                char a[SOCKADDR_STR_MAX];
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(m->name));
                json_object_object_add(o, "id", json_object_new_string(m->conn->id));
                json_object_object_add(o, "peer", json_object_new_string(sockaddr_format(&m->conn->peer.sa, a, sizeof(a))));
                json_object_object_add(o, "protocol", json_object_new_string(m->mode == MODE_JSON ? "json" : "line"));
                json_object_array_add(members, o);
        }
        json_object_object_add(out, "protocol", json_object_new_string(chat_protocol_to_string(s->cfg.protocol)));
        json_object_object_add(out, "members", members);
        json_object_object_add(out, "messages", json_object_new_int64(room ? (int64_t)room->messages : 0));
        json_object_object_add(out, "joins", json_object_new_int64(room ? (int64_t)room->joins : 0));
        json_object_object_add(out, "leaves", json_object_new_int64(room ? (int64_t)room->leaves : 0));
        json_object_object_add(out, "drops", json_object_new_int64(room ? (int64_t)room->drops : 0));
}

static void chat_free_state(Server *s) {
        Room *room = s->type_state;
        if (!room)
                return;
        while (room->head) {
                Delivery *d = room->head;
                room->head = d->next;
                delivery_free(d);
        }
        for (unsigned i = 0; i < room->history_cap; i++) {
                free(room->history[i].json);
                free(room->history[i].text);
        }
        free(room->history);
        free(room);
        s->type_state = NULL;
}

int chat_say(Server *s, const char *text) {
        Room *room = room_of(s);
        if (!room)
                return -ENOMEM;
        char prefix[16];
        clock_prefix(prefix);
        struct json_object *o = chat_json("message", now_seconds());
        json_object_object_add(o, "username", json_object_new_string("*server*"));
        json_object_object_add(o, "content", json_object_new_string(text));
        room_queue(room, json_line(o), text_line("%s *** %s\n", prefix, text), NULL, NULL);
        room->messages++;
        return (int)room->n_members;
}

const ServerVtable chat_vtable = {
        .name = "chat",
        .on_connect = chat_on_connect,
        .on_data = chat_on_data,
        .on_disconnect = chat_on_disconnect,
        .on_close_start = chat_on_close_start,
        .describe = chat_describe,
        .free_state = chat_free_state,
        .conn_free = chat_conn_free,
        .batch_output = true,
};
