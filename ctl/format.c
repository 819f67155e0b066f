/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "macro.h"
#include "utf8.h"

const char *jstr(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return "-";
        return json_object_get_string(v);
}

const char *jstr_or(struct json_object *o, const char *key, const char *def) {
        struct json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return def;
        return json_object_get_string(v);
}

int64_t jint(struct json_object *o, const char *key) {
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

struct json_object *jget(struct json_object *o, const char *key) {
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *yes_no(struct json_object *o, const char *key) {
        return json_object_get_boolean(jget(o, key)) ? "yes" : "no";
}

char *format_duration(int64_t usec, char *buf, size_t size) {
        int64_t s = usec / 1000000;
        if (usec < 1000)
                snprintf(buf, size, "%" PRId64 "us", usec);
        else if (usec < 1000000)
                snprintf(buf, size, "%.1fms", (double)usec / 1000.0);
        else if (s < 60)
                snprintf(buf, size, "%.1fs", (double)usec / 1e6);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
        else
                snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
        return buf;
}

char *format_time(int64_t usec, char *buf, size_t size) {
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        localtime_r(&t, &tm);
        size_t n = strftime(buf, size, "%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03d", (int)(usec / 1000 % 1000));
        return buf;
}

void join_listen(struct json_object *server, char *buf, size_t size) {
        struct json_object *listen = jget(server, "listen");
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; listen && i < json_object_array_length(listen) && off < size; i++) {
                struct json_object *l = json_object_array_get_idx(listen, i);
                const char *actual = jstr(l, "address");
                off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", strcmp(actual, "-") ? actual : jstr(l, "configured"));
        }
}

void print_json(struct json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* How print_escaped() writes the bytes that have a short escape. */
static const char *const short_escapes[256] = {
        ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t", ['"'] = "\\\"", ['\\'] = "\\\\",
};

void print_escaped(const uint8_t *p, size_t n, bool text, size_t max) {
        size_t shown = n <= max ? n : text ? utf8_prefix((const char *)p, n, max) : max;
        putchar('"');
        for (size_t i = 0; i < shown; i++) {
                uint8_t b = p[i];
                if (short_escapes[b])
                        fputs(short_escapes[b], stdout);
                else if (b < 0x20 || b == 0x7f || (b >= 0x80 && !text))
                        printf("\\x%02x", b);
                else
                        putchar(b);
        }
        putchar('"');
        if (shown < n)
                fputs("...", stdout);
}

void text_put(TextBuf *b, const char *s, size_t n) {
        size_t len = byte_queue_len(&b->q);
        n = MIN(n, b->limit > len ? b->limit - len : 0);
        (void)byte_queue_push(&b->q, s, n, b->limit); /* out of memory: cut here too */
}

void text_puts(TextBuf *b, const char *s) {
        text_put(b, s, strlen(s));
}

void text_put_safe(TextBuf *b, const char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
                if (n == 0) {
                        text_put(b, "?", 1);
                        i++;
                        continue;
                }
                if (cp == '\t')
                        text_put(b, " ", 1);
                else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                        text_put(b, "?", 1);
                else
                        text_put(b, s + i, n);
                i += n;
        }
}
