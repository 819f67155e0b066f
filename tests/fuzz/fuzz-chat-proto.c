/* SPDX-License-Identifier: MIT */
/* The chat protocol (common/chat-proto.c), both dialects, on what chat members send. The input is
 * one message: read as a line-mode line (nc, telnet), as a JSON object the way the chat server's
 * framer hands it over, and as a user name. Checked: what a request points to lies within the
 * message, a refused request says why, a content that passes has no control characters, and a
 * name that passes is 1-32 printable characters. */
#include <json-c/json.h>
#include <string.h>

#include "chat-proto.h"
#include "framing.h"
#include "fuzz.h"
#include "utf8.h"

static bool within(const char *p, size_t n, const char *base, size_t len) {
        return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static bool has_control(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
                        return true;
        return false;
}

static void check_request(const ChatRequest *r, const char *base, size_t len) {
        switch (r->type) {
        case CHAT_REQ_INVALID:
                FUZZ_CHECK(r->error && strlen(r->error) < 200);
                FUZZ_CHECK(memchr(r->error_buf, 0, sizeof(r->error_buf)));
                break;
        case CHAT_REQ_JOIN:
                FUZZ_CHECK(r->username && r->username_len > 0);
                if (base)
                        FUZZ_CHECK(within(r->username, r->username_len, base, len));
                (void)chat_name_check(r->username, r->username_len);
                break;
        case CHAT_REQ_MESSAGE:
        case CHAT_REQ_ACTION:
                FUZZ_CHECK(r->content && r->content_len > 0);
                if (base)
                        FUZZ_CHECK(within(r->content, r->content_len, base, len));
                FUZZ_CHECK(!has_control(r->content, r->content_len));
                break;
        case CHAT_REQ_LEAVE:
        case CHAT_REQ_USERS:
        case CHAT_REQ_HELP:
                break;
        default:
                FUZZ_CHECK(!"unknown request type");
        }
}

static int on_frame(void *userdata, const Frame *f) {
        ChatRequest r;
        (void)userdata;
        if (f->kind != FRAME_OBJECT)
                return 0;
        chat_request_from_json(f->object, &r);
        check_request(&r, NULL, 0);
        /* The server echoes names and content back inside its own JSON. */
        if (r.type == CHAT_REQ_MESSAGE || r.type == CHAT_REQ_JOIN) {
                struct json_object *o = chat_json_with("message", 1.5, "content", r.type == CHAT_REQ_MESSAGE ? r.content : r.username);
                FUZZ_CHECK(o && json_object_to_json_string(o));
                json_object_put(o);
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ChatRequest r;
        const char *line = (const char *)data;

        /* A line as the line framer delivers it: no '\n' in it. */
        size_t n = 0;
        while (n < size && data[n] != '\n')
                n++;
        chat_request_from_line(line, n, &r);
        check_request(&r, line, n);

        /* JSON objects through the chat server's framer (max_message as in the shipped config). */
        Framer f;
        framer_init(&f, FRAMER_JSON, 4096);
        (void)framer_feed(&f, line, size, on_frame, NULL);
        framer_done(&f);

        /* A name as /nick or "username" gives it. */
        const char *why = chat_name_check(line, size);
        if (!why) {
                size_t chars = 0;
                for (size_t i = 0; i < size; i++)
                        chars += (data[i] & 0xc0) != 0x80;
                FUZZ_CHECK(size > 0 && chars <= CHAT_NAME_MAX && data[0] != ' ' && data[0] != '*' && data[size - 1] != ' ');
                FUZZ_CHECK(!memchr(data, 0, size) && !has_control(line, size));
        }
        /* Names are compared case-insensitively as C strings. */
        char *a = fuzz_strndup(data, size / 2), *b = fuzz_strndup(data + size / 2, size - size / 2);
        FUZZ_CHECK(chat_name_equal(a, b) == chat_name_equal(b, a));
        FUZZ_CHECK(chat_name_equal(a, a));
        free(a);
        free(b);
        return 0;
}
