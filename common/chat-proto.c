/* SPDX-License-Identifier: MIT */
#include "chat-proto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

/* Line-mode members see content as a terminal line: no line breaks or escape sequences in it. */
static bool has_control(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
                        return true;
        return false;
}

static void invalid(ChatRequest *r, const char *error) {
        r->type = CHAT_REQ_INVALID;
        r->error = error;
}

static const char *string_field(struct json_object *o, const char *key, size_t *ret_len) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        *ret_len = (size_t)json_object_get_string_len(v);
        return json_object_get_string(v);
}

void chat_request_from_json(struct json_object *o, ChatRequest *r) {
        size_t tlen = 0;
        memset(r, 0, sizeof(*r));
        const char *type = json_object_is_type(o, json_type_object) ? string_field(o, "type", &tlen) : NULL;
        if (!type) {
                invalid(r, CHAT_ERR_TYPE_REQUIRED);
                return;
        }
        if (strcmp(type, "join") == 0) {
                r->type = CHAT_REQ_JOIN;
                r->username = string_field(o, "username", &r->username_len);
                if (!r->username || r->username_len == 0)
                        invalid(r, CHAT_ERR_USERNAME_REQUIRED);
        } else if (strcmp(type, "message") == 0) {
                r->type = CHAT_REQ_MESSAGE;
                r->content = string_field(o, "content", &r->content_len);
                if (!r->content || r->content_len == 0)
                        invalid(r, CHAT_ERR_CONTENT_REQUIRED);
                else if (has_control(r->content, r->content_len))
                        invalid(r, CHAT_ERR_CONTENT_CONTROL);
        } else if (strcmp(type, "leave") == 0)
                r->type = CHAT_REQ_LEAVE;
        else {
                snprintf(r->error_buf, sizeof(r->error_buf), "Unknown message type: %.*s", (int)utf8_prefix(type, tlen, 40), type);
                invalid(r, r->error_buf);
        }
}

static bool is_command(const char *line, size_t len, const char *cmd, const char **ret_arg, size_t *ret_arg_len) {
        size_t n = strlen(cmd);
        if (len < n || memcmp(line, cmd, n) != 0 || (len > n && line[n] != ' '))
                return false;
        const char *a = line + n;
        size_t al = len - n;
        while (al > 0 && *a == ' ')
                a++, al--;
        while (al > 0 && a[al - 1] == ' ')
                al--;
        *ret_arg = a;
        *ret_arg_len = al;
        return true;
}

void chat_request_from_line(const char *line, size_t len, ChatRequest *r) {
        const char *arg;
        size_t alen;
        memset(r, 0, sizeof(*r));

        if (len == 0 || line[0] != '/') {
                r->type = CHAT_REQ_MESSAGE;
                r->content = line;
                r->content_len = len;
                if (len == 0)
                        invalid(r, CHAT_ERR_CONTENT_REQUIRED);
                else if (has_control(line, len))
                        invalid(r, CHAT_ERR_CONTENT_CONTROL);
                return;
        }
        if (is_command(line, len, "/nick", &arg, &alen)) {
                r->type = CHAT_REQ_JOIN;
                r->username = arg;
                r->username_len = alen;
                if (alen == 0)
                        invalid(r, CHAT_ERR_USERNAME_REQUIRED);
        } else if (is_command(line, len, "/me", &arg, &alen)) {
                r->type = CHAT_REQ_ACTION;
                r->content = arg;
                r->content_len = alen;
                if (alen == 0)
                        invalid(r, CHAT_ERR_CONTENT_REQUIRED);
                else if (has_control(arg, alen))
                        invalid(r, CHAT_ERR_CONTENT_CONTROL);
        } else if (is_command(line, len, "/users", &arg, &alen))
                r->type = CHAT_REQ_USERS;
        else if (is_command(line, len, "/quit", &arg, &alen))
                r->type = CHAT_REQ_LEAVE;
        else if (is_command(line, len, "/help", &arg, &alen))
                r->type = CHAT_REQ_HELP;
        else {
                size_t n = 0;
                while (n < len && line[n] != ' ')
                        n++;
                n = utf8_prefix(line, n, 32);
                snprintf(r->error_buf, sizeof(r->error_buf), "Unknown command: %.*s (try /help)", (int)n, line);
                invalid(r, r->error_buf);
        }
}

const char *chat_name_check(const char *name, size_t len) {
        size_t chars = 0;
        if (len == 0)
                return CHAT_ERR_USERNAME_REQUIRED;
        if (name[0] == ' ' || name[len - 1] == ' ')
                return "Username must not begin or end with a blank";
        if (name[0] == '*')
                return "Username must not begin with '*'";
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t n = utf8_decode((const unsigned char *)name + i, len - i, &cp);
                /* valid UTF-8 only, and no C0 or C1 control characters */
                if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                        return "Username must be printable characters";
                i += n;
                chars++;
        }
        if (chars > CHAT_NAME_MAX)
                return "Username too long (at most 32 characters)";
        return NULL;
}

bool chat_name_equal(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

struct json_object *chat_json(const char *type, double timestamp) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "timestamp", json_object_new_double(timestamp));
        return o;
}

struct json_object *chat_json_with(const char *type, double timestamp, const char *key, const char *value) {
        struct json_object *o = chat_json(type, timestamp);
        if (o)
                json_object_object_add(o, key, json_object_new_string(value));
        return o;
}
