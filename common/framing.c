/* SPDX-License-Identifier: MIT */
/* Message framing. The framer has three states between two bytes:
 *   - between messages: f->len == 0 and !f->skipping (in JSON mode blanks are eaten here);
 *   - inside a message: f->len > 0, its first bytes in f->buf (in JSON mode an object when
 *     f->buf[0] == '{', a text line otherwise; the brace scanner's state in depth/in_string/escaped);
 *   - skipping the rest of a message: f->skipping, to the next '\n' (skip_to_newline) or to the
 *     closing brace of an over-long object (depth/in_string/escaped).
 * Within one framer_feed() a message that starts in the caller's data is scanned in place; only
 * when the data ends before the message does are its bytes copied into f->buf. The scan of every
 * byte depends only on that state, so the frames do not depend on how the input was split. */
#include "framing.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define BUF_MIN 256

void framer_init(Framer *f, FramerMode mode, size_t max_message) {
        *f = (Framer){ .mode = mode, .max_message = max_message };
}

static void buf_free(Framer *f) {
        free(f->buf);
        f->buf = NULL;
        f->len = f->cap = 0;
}

void framer_done(Framer *f) {
        buf_free(f);
        if (f->tok) {
                json_tokener_free(f->tok);
                f->tok = NULL;
        }
        f->depth = 0;
        f->in_string = f->escaped = f->skipping = f->skip_to_newline = false;
}

/* A pending message that is being skipped counts: the peer has not finished it, and a slow flooder
 * must still run into line_timeout. Blanks between JSON messages do not. */
bool framer_has_partial(const Framer *f) {
        return f->len > 0 || f->skipping;
}

/* The most an incomplete message can need: max_message bytes, and for a line one more for a '\r'
 * that may turn out to be the one before its '\n'. */
static size_t buf_limit(const Framer *f) {
        return f->max_message < SIZE_MAX ? f->max_message + 1 : SIZE_MAX;
}

/* Callers make sure f->len + n <= buf_limit(f). On failure nothing changes. */
static int buf_append(Framer *f, const char *p, size_t n) {
        size_t need = f->len + n, limit = buf_limit(f);

        if (n == 0)
                return 0;
        if (need > f->cap) {
                size_t cap = MAX(f->cap, MIN((size_t)BUF_MIN, limit));
                while (cap < need)
                        cap = cap > limit / 2 ? limit : cap * 2;
                char *b = realloc(f->buf, cap);
                if (!b)
                        return -ENOMEM;
                f->buf = b;
                f->cap = cap;
        }
        memcpy(f->buf + f->len, p, n);
        f->len = need;
        return 0;
}

/* Hand the buffered message out; the framer is between messages while the handler runs. */
static char *buf_steal(Framer *f) {
        char *b = f->buf;
        f->buf = NULL;
        f->len = f->cap = 0;
        return b;
}

static int emit(FrameHandler h, void *userdata, FrameKind kind, const char *data, size_t len, struct json_object *object,
                const char *error) {
        Frame frame = { .kind = kind, .data = data, .len = len, .object = object, .error = error };
        return h(userdata, &frame);
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One byte of an object: braces count outside "..." strings only. The depth saturates instead of
 * wrapping (only reachable while skipping an over-long object of billions of '{'). */
static void scan_byte(Framer *f, char c) {
        if (f->in_string) {
                if (f->escaped)
                        f->escaped = false;
                else if (c == '\\')
                        f->escaped = true;
                else if (c == '"')
                        f->in_string = false;
        } else if (c == '"')
                f->in_string = true;
        else if (c == '{') {
                if (f->depth < UINT_MAX)
                        f->depth++;
        } else if (c == '}' && f->depth > 0)
                f->depth--;
}

/* Skip to the end of the message being skipped. Returns where framing resumes. */
static size_t skip(Framer *f, const char *data, size_t i, size_t len) {
        if (f->skip_to_newline) {
                const char *nl = memchr(data + i, '\n', len - i);
                if (!nl)
                        return len;
                f->skipping = f->skip_to_newline = false;
                return (size_t)(nl - data) + 1;
        }
        for (; i < len; i++) {
                scan_byte(f, data[i]);
                if (f->depth == 0) {
                        f->skipping = false;
                        f->in_string = f->escaped = false;
                        return i + 1;
                }
        }
        return len;
}

/* A line (line mode) or a text line (JSON mode): what is in f->buf, then data[*pos..] up to '\n'. */
static int feed_line(Framer *f, FrameKind kind, const char *data, size_t len, size_t *pos, FrameHandler h, void *userdata) {
        size_t i = *pos;
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len; /* the line's bytes in data: [i, end) */
        size_t n = f->len + (end - i); /* its bytes so far, a last '\r' included */
        char last = end > i ? data[end - 1] : f->len > 0 ? f->buf[f->len - 1] : 0;
        /* A last '\r' is not counted: it ends the line if '\n' follows. Without '\n' yet, this is
         * the fewest bytes the line can have, so passing max_message is known as soon as possible. */
        size_t counted = n - (n > 0 && last == '\r');
        int r;

        if (counted > f->max_message) {
                buf_free(f);
                if (nl)
                        *pos = end + 1;
                else {
                        f->skipping = f->skip_to_newline = true;
                        *pos = len;
                }
                return emit(h, userdata, FRAME_TOO_LONG, NULL, 0, NULL, NULL);
        }
        if (!nl) {
                r = buf_append(f, data + i, end - i);
                if (r < 0)
                        return r;
                *pos = len;
                return 0;
        }
        if (f->len == 0) {
                *pos = end + 1;
                return emit(h, userdata, kind, data + i, counted, NULL, NULL);
        }
        r = buf_append(f, data + i, end - i);
        if (r < 0)
                return r;
        *pos = end + 1;
        char *b = buf_steal(f);
        r = emit(h, userdata, kind, b, counted, NULL, NULL);
        free(b);
        return r;
}

/* json-c accepts 'single-quoted' strings even in strict mode; outside a "..." string a quote is
 * never JSON. */
static bool has_single_quote(const char *p, size_t n) {
        bool in_string = false, escaped = false;
        if (!memchr(p, '\'', n))
                return false; /* the usual case, found at memchr's speed */
        for (size_t i = 0; i < n; i++) {
                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (p[i] == '\\')
                                escaped = true;
                        else if (p[i] == '"')
                                in_string = false;
                } else if (p[i] == '"')
                        in_string = true;
                else if (p[i] == '\'')
                        return true;
        }
        return false;
}

/* A complete object's bytes (from '{' to its closing '}'): FRAME_OBJECT or FRAME_INVALID. The
 * framer is already in its state after the message. */
static int emit_object(Framer *f, const char *p, size_t n, FrameHandler h, void *userdata) {
        enum json_tokener_error e = json_tokener_success;
        struct json_object *o = NULL;
        int r;

        if (n > INT32_MAX)
                e = json_tokener_error_size;
        else if (has_single_quote(p, n))
                e = json_tokener_error_parse_unexpected;
        else {
                /* One tokener per framer, reset for each object: no allocation per message. */
                if (!f->tok) {
                        f->tok = json_tokener_new();
                        if (!f->tok)
                                return -ENOMEM;
                        json_tokener_set_flags(f->tok, JSON_TOKENER_STRICT);
                } else
                        json_tokener_reset(f->tok);
                struct json_tokener *tok = f->tok;
                o = json_tokener_parse_ex(tok, p, (int)n);
                e = json_tokener_get_error(tok);
                if (e == json_tokener_continue) /* e.g. a NUL byte: json-c stops there */
                        e = json_tokener_error_parse_eof;
                else if (e == json_tokener_success &&
                         (!o || !json_object_is_type(o, json_type_object) || json_tokener_get_parse_end(tok) != n))
                        e = json_tokener_error_parse_unexpected;
        }
        if (e != json_tokener_success) {
                json_object_put(o);
                f->skipping = f->skip_to_newline = true;
                return emit(h, userdata, FRAME_INVALID, NULL, 0, NULL, json_tokener_error_desc(e));
        }
        r = emit(h, userdata, FRAME_OBJECT, p, n, o, NULL);
        json_object_put(o);
        return r;
}

/* An object: what is in f->buf (with the scanner state), then data[*pos..] up to its closing brace. */
/* The end of a run of plain string bytes from i: the first '"' or '\\' before end, or end. */
static size_t string_run_end(const char *data, size_t i, size_t end) {
        const char *q = memchr(data + i, '"', end - i);
        size_t stop = q ? (size_t)(q - data) : end;
        const char *b = memchr(data + i, '\\', stop - i);
        return b ? (size_t)(b - data) : stop;
}

static int feed_object(Framer *f, const char *data, size_t len, size_t *pos, FrameHandler h, void *userdata) {
        size_t start = *pos, n = f->len;
        unsigned depth = f->depth;
        bool in_string = f->in_string, escaped = f->escaped;
        int r;

        for (size_t i = start; i < len; i++) {
                if (f->in_string && !f->escaped && n < f->max_message) {
                        /* Inside a string only '"' and '\\' matter: skip the rest at memchr's speed,
                         * never past max_message (the byte that passes it is scanned below). */
                        size_t j = string_run_end(data, i, MIN(len, i + (f->max_message - n)));
                        n += j - i;
                        i = j;
                        if (i == len)
                                break;
                }
                scan_byte(f, data[i]);
                n++;
                if (n > f->max_message) {
                        buf_free(f);
                        *pos = i + 1;
                        if (f->depth > 0) /* skip to its closing brace, scanning on */
                                f->skipping = true;
                        else
                                f->in_string = f->escaped = false;
                        return emit(h, userdata, FRAME_TOO_LONG, NULL, 0, NULL, NULL);
                }
                if (f->depth > 0)
                        continue;

                *pos = i + 1;
                f->in_string = f->escaped = false;
                if (f->len == 0)
                        return emit_object(f, data + start, n, h, userdata);
                r = buf_append(f, data + start, i + 1 - start);
                if (r < 0) {
                        *pos = start;
                        f->depth = depth;
                        f->in_string = in_string;
                        f->escaped = escaped;
                        return r;
                }
                char *b = buf_steal(f);
                r = emit_object(f, b, n, h, userdata);
                free(b);
                return r;
        }

        r = buf_append(f, data + start, len - start);
        if (r < 0) {
                f->depth = depth;
                f->in_string = in_string;
                f->escaped = escaped;
                return r;
        }
        *pos = len;
        return 0;
}

int framer_feed(Framer *f, const char *data, size_t len, FrameHandler h, void *userdata) {
        size_t i = 0;
        int r = 0;

        while (i < len) {
                if (f->skipping) {
                        i = skip(f, data, i, len);
                        continue;
                }
                if (f->mode == FRAMER_LINE) {
                        r = feed_line(f, FRAME_LINE, data, len, &i, h, userdata);
                } else if (f->len > 0) {
                        if (f->buf[0] == '{')
                                r = feed_object(f, data, len, &i, h, userdata);
                        else
                                r = feed_line(f, FRAME_TEXT, data, len, &i, h, userdata);
                } else if (is_blank(data[i])) {
                        i++;
                } else if (data[i] == '{') {
                        f->depth = 0;
                        f->in_string = f->escaped = false;
                        r = feed_object(f, data, len, &i, h, userdata);
                } else if (data[i] == '}') {
                        i++;
                        f->skipping = f->skip_to_newline = true;
                        r = emit(h, userdata, FRAME_INVALID, NULL, 0, NULL, "unbalanced '}'");
                } else {
                        r = feed_line(f, FRAME_TEXT, data, len, &i, h, userdata);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}
