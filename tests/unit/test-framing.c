/* SPDX-License-Identifier: MIT */
/* Message framing: lines, JSON objects and text lines, over-long and invalid messages, and the
 * promise that the frames do not depend on how the input is split, nor does an idle framer hold a
 * buffer. Frames are recorded as text: kind(bytes) with '\\', '\n', '\r' and NUL escaped. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "framing.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

#define UNEXPECTED "unexpected character"
#define EOD "unexpected end of data"

typedef struct Recorder {
        char *log; /* "line(abc) too-long object({\"a\":1})" */
        size_t len, cap;
        unsigned frames, kinds[5];
        unsigned stop_at; /* return stop_value from this frame (1-based); 0: never */
        int stop_value;
        struct json_object *last_object; /* a reference to the last FRAME_OBJECT's value */
        const Framer *framer;
        const char *input; /* if set, frames must point into input[0..input_len) */
        size_t input_len;
} Recorder;

static void rec_put(Recorder *r, const char *s, size_t n) {
        if (r->len + n + 1 > r->cap) {
                size_t cap = MAX(r->cap * 2, r->len + n + 1);
                char *b = realloc(r->log, cap);
                if (!b)
                        abort();
                r->log = b;
                r->cap = cap;
        }
        memcpy(r->log + r->len, s, n);
        r->len += n;
        r->log[r->len] = 0;
}

static void rec_puts(Recorder *r, const char *s) {
        rec_put(r, s, strlen(s));
}

static void rec_bytes(Recorder *r, const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                switch (p[i]) {
                case '\\':
                        rec_puts(r, "\\\\");
                        break;
                case '\n':
                        rec_puts(r, "\\n");
                        break;
                case '\r':
                        rec_puts(r, "\\r");
                        break;
                case '\0':
                        rec_puts(r, "\\0");
                        break;
                default:
                        rec_put(r, p + i, 1);
                }
}

static void rec_init(Recorder *r) {
        *r = (Recorder){};
        rec_puts(r, "");
}

static void rec_reset(Recorder *r) {
        json_object_put(r->last_object);
        free(r->log);
        rec_init(r);
}

static void rec_done(Recorder *r) {
        json_object_put(r->last_object);
        free(r->log);
        *r = (Recorder){};
}

static int record(void *userdata, const Frame *frame) {
        static const char *const names[] = { "line", "object", "text", "too-long", "invalid" };
        Recorder *r = userdata;

        ASSERT_TRUE(frame->kind <= FRAME_INVALID);
        if (frame->kind > FRAME_INVALID)
                return -1;
        r->frames++;
        r->kinds[frame->kind]++;
        if (r->len > 0)
                rec_puts(r, " ");
        rec_puts(r, names[frame->kind]);
        switch (frame->kind) {
        case FRAME_LINE:
        case FRAME_TEXT:
                ASSERT_TRUE(frame->data != NULL || frame->len == 0);
                ASSERT_TRUE(frame->object == NULL && frame->error == NULL);
                rec_puts(r, "(");
                rec_bytes(r, frame->data, frame->len);
                rec_puts(r, ")");
                break;
        case FRAME_OBJECT:
                ASSERT_TRUE(frame->data && frame->len >= 2 && frame->data[0] == '{' && frame->data[frame->len - 1] == '}');
                ASSERT_TRUE(frame->object && json_object_is_type(frame->object, json_type_object));
                ASSERT_TRUE(frame->error == NULL);
                json_object_put(r->last_object);
                r->last_object = json_object_get(frame->object);
                rec_puts(r, "(");
                rec_bytes(r, frame->data, frame->len);
                rec_puts(r, ")");
                break;
        case FRAME_TOO_LONG:
                ASSERT_TRUE(frame->object == NULL && frame->error == NULL);
                break;
        case FRAME_INVALID:
                ASSERT_TRUE(frame->object == NULL && frame->error != NULL);
                rec_puts(r, "(");
                rec_puts(r, frame->error ? frame->error : "NULL");
                rec_puts(r, ")");
                break;
        }
        if (r->input)
                ASSERT_TRUE(frame->data >= r->input && frame->data + frame->len <= r->input + r->input_len);
        if (r->framer) /* while a frame is handled, the framer is past it and holds no buffer */
                ASSERT_TRUE(r->framer->len == 0 && r->framer->buf == NULL);
        return r->stop_at && r->frames == r->stop_at ? r->stop_value : 0;
}

/* Feed in pieces of at most step bytes (0: all at once) and check what an incomplete message may
 * hold after each. */
static void feed_steps(Framer *f, Recorder *r, const char *s, size_t n, size_t step) {
        size_t limit = f->max_message + 1;
        size_t i = 0;
        do {
                size_t k = step ? MIN(step, n - i) : n - i;
                ASSERT_INTEQ(framer_feed(f, s + i, k, record, r), 0);
                ASSERT_TRUE(f->cap <= limit && f->len <= f->cap);
                ASSERT_TRUE((f->buf == NULL) == (f->len == 0));
                i += k;
        } while (i < n);
}

/* The input must give the expected frames fed whole, split in two at every point, and one byte at
 * a time; afterwards a message is (partial) or is not waiting, and only then is a buffer held. */
static void check_at(unsigned line, FramerMode mode, size_t max, const char *s, size_t n, const char *expected, bool partial) {
        Framer f;
        Recorder r;
        char what[64];

        rec_init(&r);
        for (size_t split = 0; split <= n + 1; split++) {
                framer_init(&f, mode, max);
                r.framer = &f;
                if (split <= n) {
                        feed_steps(&f, &r, s, split, 0);
                        feed_steps(&f, &r, s + split, n - split, 0);
                        snprintf(what, sizeof(what), "split at %zu", split);
                } else {
                        feed_steps(&f, &r, s, n, 1);
                        snprintf(what, sizeof(what), "one byte at a time");
                }
                unit_assert_streq(r.log, expected, what, line, __FILE__, __func__);
                unit_assert_true(framer_has_partial(&f) == partial, "framer_has_partial()", line, __FILE__, __func__);
                if (!partial)
                        unit_assert_true(f.buf == NULL && f.len == 0, "f.buf == NULL", line, __FILE__, __func__);
                framer_done(&f);
                ASSERT_TRUE(f.buf == NULL && !framer_has_partial(&f));
                rec_reset(&r);
        }
        rec_done(&r);
}

#define CHECK(mode, max, s, expected) check_at(__LINE__, mode, max, s, sizeof(s) - 1, expected, false)
#define CHECK_PARTIAL(mode, max, s, expected) check_at(__LINE__, mode, max, s, sizeof(s) - 1, expected, true)

/* Feed a string literal (NUL bytes included) in one call. */
#define FEED_RET(f, r, s, ret) ASSERT_INTEQ(framer_feed((f), (s), sizeof(s) - 1, record, (r)), (ret))
#define FEED(f, r, s) FEED_RET(f, r, s, 0)

static void test_line_single(void) {
        CHECK(FRAMER_LINE, 64, "hello\n", "line(hello)");
        CHECK_PARTIAL(FRAMER_LINE, 64, "hello", "");
        CHECK(FRAMER_LINE, 64, "", "");
}

static void test_line_several(void) {
        CHECK(FRAMER_LINE, 64, "a\nbb\n\nccc\n", "line(a) line(bb) line() line(ccc)");
        CHECK_PARTIAL(FRAMER_LINE, 64, "a\nbb\ncc", "line(a) line(bb)");
}

static void test_line_split(void) {
        Framer f;
        Recorder r;

        rec_init(&r);
        framer_init(&f, FRAMER_LINE, 64);
        FEED(&f, &r, "hel");
        ASSERT_STREQ(r.log, "");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf != NULL);
        FEED(&f, &r, "lo\r");
        ASSERT_STREQ(r.log, "");
        ASSERT_TRUE(framer_has_partial(&f));
        FEED(&f, &r, "\nwor");
        ASSERT_STREQ(r.log, "line(hello)");
        ASSERT_TRUE(framer_has_partial(&f));
        FEED(&f, &r, "ld\n");
        ASSERT_STREQ(r.log, "line(hello) line(world)");
        ASSERT_FALSE(framer_has_partial(&f));
        ASSERT_TRUE(f.buf == NULL);
        framer_done(&f);
        rec_done(&r);

        /* every split, including between '\r' and '\n' */
        CHECK(FRAMER_LINE, 64, "hello\r\nworld\n", "line(hello) line(world)");
}

static void test_line_empty(void) {
        CHECK(FRAMER_LINE, 64, "\n\r\n\n", "line() line() line()");
        CHECK(FRAMER_LINE, 0, "\n\r\n", "line() line()");
}

static void test_line_cr(void) {
        CHECK(FRAMER_LINE, 64, "abc\r\n", "line(abc)");
        CHECK(FRAMER_LINE, 64, "a\rb\r\n", "line(a\\rb)");
        CHECK(FRAMER_LINE, 64, "a\r\r\n", "line(a\\r)");
        CHECK(FRAMER_LINE, 64, "\rx\n", "line(\\rx)");
        CHECK_PARTIAL(FRAMER_LINE, 64, "x\r", "");
}

static void test_line_nul(void) {
        CHECK(FRAMER_LINE, 64, "a\0b\n\0\n", "line(a\\0b) line(\\0)");
}

static void test_line_max(void) {
        CHECK(FRAMER_LINE, 8, "12345678\n", "line(12345678)");
        CHECK(FRAMER_LINE, 8, "12345678\r\nabc\n", "line(12345678) line(abc)");
        CHECK_PARTIAL(FRAMER_LINE, 8, "12345678\r", "");
}

static void test_line_too_long(void) {
        CHECK(FRAMER_LINE, 8, "123456789\nnext\n", "too-long line(next)");
        CHECK(FRAMER_LINE, 8, "123456789\r\nnext\n", "too-long line(next)");
        CHECK(FRAMER_LINE, 8, "12345678\rx\nok\n", "too-long line(ok)");
        CHECK(FRAMER_LINE, 8, "12345678\r\r\nok\n", "too-long line(ok)");
        CHECK(FRAMER_LINE, 0, "x\n\nok\n", "too-long line() too-long");
        CHECK_PARTIAL(FRAMER_LINE, 8, "a\n123456789", "line(a) too-long");

        char big[300];
        memset(big, 'x', sizeof(big));
        memcpy(big + 200, "\nok\n", 4);
        for (size_t step = 0; step < 5; step++) {
                Framer f;
                Recorder r;
                rec_init(&r);
                framer_init(&f, FRAMER_LINE, 8);
                feed_steps(&f, &r, big, 204, step);
                ASSERT_STREQ(r.log, "too-long line(ok)");
                ASSERT_TRUE(f.buf == NULL && !framer_has_partial(&f));
                framer_done(&f);
                rec_done(&r);
        }
}

static void test_line_too_long_early(void) {
        Framer f;
        Recorder r;

        rec_init(&r);
        framer_init(&f, FRAMER_LINE, 8);
        FEED(&f, &r, "123456789");
        ASSERT_STREQ(r.log, "too-long");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        for (int i = 0; i < 10; i++)
                FEED(&f, &r, "more bytes");
        ASSERT_STREQ(r.log, "too-long");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "end\nok\n");
        ASSERT_STREQ(r.log, "too-long line(ok)");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);

        /* max_message bytes and a '\r' may still be a line; one more byte decides */
        FEED(&f, &r, "12345678\r");
        ASSERT_STREQ(r.log, "too-long line(ok)");
        ASSERT_INTEQ(f.len, 9);
        FEED(&f, &r, "x");
        ASSERT_STREQ(r.log, "too-long line(ok) too-long");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "\n");
        ASSERT_FALSE(framer_has_partial(&f));
        framer_done(&f);
        rec_done(&r);
}

static void test_json_one(void) {
        CHECK(FRAMER_JSON, 64, "{\"a\":1}", "object({\"a\":1})");
        CHECK(FRAMER_JSON, 64, "{\"a\":1}\n", "object({\"a\":1})");
        CHECK(FRAMER_JSON, 64, "{}", "object({})");
        CHECK_PARTIAL(FRAMER_JSON, 64, "{\"a\":1", "");
}

static void test_json_back_to_back(void) {
        CHECK(FRAMER_JSON, 64, "{\"a\":1}{\"b\":2}{}", "object({\"a\":1}) object({\"b\":2}) object({})");
}

static void test_json_blanks(void) {
        CHECK(FRAMER_JSON, 64, " \t\r\n{\"a\":1}\n\n  {\"b\":2}\r\n\t", "object({\"a\":1}) object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{\"a\":1}\n{\"b\":2}\n", "object({\"a\":1}) object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{ \"a\" :\n 1 }", "object({ \"a\" :\\n 1 })");
        /* blanks between messages are not a partial message */
        CHECK(FRAMER_JSON, 64, " \n\t\r ", "");
}

static void test_json_bytewise(void) {
        static const char s[] = "{\"a\":{\"b\":[1,2,\"}\"]},\"c\":\"\\\\\"}";
        Framer f;
        Recorder r;

        rec_init(&r);
        framer_init(&f, FRAMER_JSON, 64);
        for (size_t i = 0; i < sizeof(s) - 1; i++) {
                ASSERT_STREQ(r.log, "");
                ASSERT_INTEQ(framer_feed(&f, s + i, 1, record, &r), 0);
                if (i < sizeof(s) - 2)
                        ASSERT_TRUE(framer_has_partial(&f) && f.buf != NULL && f.len == i + 1);
        }
        ASSERT_STREQ(r.log, "object({\"a\":{\"b\":[1,2,\"}\"]},\"c\":\"\\\\\\\\\"})");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(r.last_object, "c")), "\\");
        framer_done(&f);
        rec_done(&r);
}

static void test_json_strings(void) {
        Framer f;
        Recorder r;

        CHECK(FRAMER_JSON, 64, "{\"a\":\"}{\\\"x\"}", "object({\"a\":\"}{\\\\\"x\"})");
        rec_init(&r);
        framer_init(&f, FRAMER_JSON, 64);
        FEED(&f, &r, "{\"a\":\"}{\\\"x\"}");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(r.last_object, "a")), "}{\"x");
        framer_done(&f);
        rec_done(&r);

        /* an escaped backslash does not escape the quote after it */
        CHECK(FRAMER_JSON, 64, "{\"a\":\"\\\\\"}{\"b\":\"{\"}", "object({\"a\":\"\\\\\\\\\"}) object({\"b\":\"{\"})");
}

static void test_json_nested(void) {
        CHECK(FRAMER_JSON, 64, "{\"a\":{\"b\":{\"c\":[1,{\"d\":2}]}},\"e\":{}}\n",
              "object({\"a\":{\"b\":{\"c\":[1,{\"d\":2}]}},\"e\":{}})");
}

static void test_json_invalid(void) {
        CHECK(FRAMER_JSON, 64, "{\"a\":}\n{\"b\":2}\n", "invalid(" UNEXPECTED ") object({\"b\":2})");
        /* the rest of the line goes with it */
        CHECK(FRAMER_JSON, 64, "{'a':1} {\"x\":1}\n{\"b\":2}", "invalid(" UNEXPECTED ") object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{\"a\":1,}\n{\"b\":2}", "invalid(" UNEXPECTED ") object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{\"a\":\n}\n{\"b\":2}", "invalid(" UNEXPECTED ") object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{\"a\":\"x\0y\"}\n{\"b\":2}", "invalid(" EOD ") object({\"b\":2})");
        /* a single quote inside a string is fine */
        CHECK(FRAMER_JSON, 64, "{\"a'\":\"'\"}", "object({\"a'\":\"'\"})");
        /* skipping the rest of the line is still part of that message */
        CHECK_PARTIAL(FRAMER_JSON, 64, "{\"a\":} junk", "invalid(" UNEXPECTED ")");
}

static void test_json_text(void) {
        CHECK(FRAMER_JSON, 64, "hello world\n", "text(hello world)");
        CHECK(FRAMER_JSON, 64, "  hi there \r\n", "text(hi there )");
        CHECK(FRAMER_JSON, 64, "x\0y\n[1,2]\n", "text(x\\0y) text([1,2])");
        CHECK(FRAMER_JSON, 64, "a {\"b\":1}\n{\"c\":2}", "text(a {\"b\":1}) object({\"c\":2})");
        CHECK_PARTIAL(FRAMER_JSON, 64, "hello", "");
}

static void test_json_unbalanced(void) {
        CHECK(FRAMER_JSON, 64, "} rest {\"a\":1}\n{\"b\":2}\n", "invalid(unbalanced '}') object({\"b\":2})");
        CHECK(FRAMER_JSON, 64, "{\"a\":1}}\n{\"b\":2}\n", "object({\"a\":1}) invalid(unbalanced '}') object({\"b\":2})");
        CHECK_PARTIAL(FRAMER_JSON, 64, "}", "invalid(unbalanced '}')");
}

static void test_json_too_long_object(void) {
        /* 16 bytes are fine, 17 are not */
        CHECK(FRAMER_JSON, 16, "{\"a\":\"01234567\"}", "object({\"a\":\"01234567\"})");
        CHECK(FRAMER_JSON, 16, "{\"a\":\"012345678\"}{\"b\":2}", "too-long object({\"b\":2})");
        /* the 17th byte was the closing brace: nothing more is skipped */
        CHECK(FRAMER_JSON, 16, "{\"a\":\"012345678\"} tail\n", "too-long text(tail)");
        /* the skipped object is scanned to its own closing brace */
        CHECK(FRAMER_JSON, 16, "{\"a\":{\"b\":\"}}}}\\\"}}\"},\"c\":{\"d\":{}},\"e\":\"\\\"}\"}{\"z\":0}", "too-long object({\"z\":0})");
        CHECK(FRAMER_JSON, 16, "{\"a\":\"0123456789abcdef\"}\n{\"b\":2}\n", "too-long object({\"b\":2})");

        Framer f;
        Recorder r;
        rec_init(&r);
        framer_init(&f, FRAMER_JSON, 16);
        FEED(&f, &r, "{\"a\":\"0123456789abcdef");
        ASSERT_STREQ(r.log, "too-long");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "\"}");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "{\"b\":2}");
        ASSERT_STREQ(r.log, "too-long object({\"b\":2})");
        framer_done(&f);
        rec_done(&r);
}

static void test_json_too_long_text(void) {
        CHECK(FRAMER_JSON, 8, "abcdefghij\n{\"b\":2}", "too-long object({\"b\":2})");
        CHECK(FRAMER_JSON, 8, "abcdefgh\r\n{\"b\":2}", "text(abcdefgh) object({\"b\":2})");
        CHECK_PARTIAL(FRAMER_JSON, 8, "abcdefghij{\"b\":2}", "too-long");
}

static void test_json_trailing_text(void) {
        CHECK(FRAMER_JSON, 64, "{\"a\":1} tail\n", "object({\"a\":1}) text(tail)");
        CHECK(FRAMER_JSON, 64, "{\"a\":1}{\"b\":2} x {}\n{\"c\":3}", "object({\"a\":1}) object({\"b\":2}) text(x {}) object({\"c\":3})");
}

static void test_partial(void) {
        Framer f;
        Recorder r;

        rec_init(&r);
        framer_init(&f, FRAMER_JSON, 64);
        ASSERT_FALSE(framer_has_partial(&f));
        ASSERT_INTEQ(framer_feed(&f, "", 0, record, &r), 0);
        ASSERT_FALSE(framer_has_partial(&f));
        FEED(&f, &r, "  \r\n");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "{");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf != NULL);
        FEED(&f, &r, "}");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "abc");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf != NULL);
        FEED(&f, &r, "\n");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "}");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        FEED(&f, &r, "x\n{\"a\":1}\n");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        ASSERT_STREQ(r.log, "object({}) text(abc) invalid(unbalanced '}') object({\"a\":1})");
        framer_done(&f);
        rec_done(&r);
}

static void test_no_copy(void) {
        static const char lines[] = "a\n\nbb\r\nccc\n", json[] = "{\"a\":1} x\n{}{\"b\":[{}]}\n";
        Framer f;
        Recorder r;

        /* complete messages are handed from the caller's data, and no buffer is made */
        rec_init(&r);
        r.input = lines;
        r.input_len = sizeof(lines) - 1;
        framer_init(&f, FRAMER_LINE, 64);
        FEED(&f, &r, lines);
        ASSERT_STREQ(r.log, "line(a) line() line(bb) line(ccc)");
        ASSERT_TRUE(f.buf == NULL && f.cap == 0);
        framer_done(&f);
        rec_done(&r);

        rec_init(&r);
        r.input = json;
        r.input_len = sizeof(json) - 1;
        framer_init(&f, FRAMER_JSON, 64);
        FEED(&f, &r, json);
        ASSERT_STREQ(r.log, "object({\"a\":1}) text(x) object({}) object({\"b\":[{}]})");
        ASSERT_TRUE(f.buf == NULL && f.cap == 0);
        framer_done(&f);
        rec_done(&r);
}

static void test_handler_stop(void) {
        Framer f;
        Recorder r;

        /* in the caller's data */
        rec_init(&r);
        r.stop_at = 2;
        r.stop_value = -42;
        framer_init(&f, FRAMER_LINE, 64);
        FEED_RET(&f, &r, "a\nb\nc\n", -42);
        ASSERT_STREQ(r.log, "line(a) line(b)");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        /* the framer stopped right after "b\n" */
        r.stop_at = 0;
        FEED(&f, &r, "c\n");
        ASSERT_STREQ(r.log, "line(a) line(b) line(c)");
        framer_done(&f);
        rec_done(&r);

        /* from the buffer: it is freed all the same */
        rec_init(&r);
        r.stop_at = 1;
        r.stop_value = -1;
        framer_init(&f, FRAMER_LINE, 64);
        FEED(&f, &r, "xy");
        FEED_RET(&f, &r, "z\nw\n", -1);
        ASSERT_STREQ(r.log, "line(xyz)");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        framer_done(&f);
        rec_done(&r);

        /* an object from the buffer, and a too-long report (the framer then skips) */
        rec_init(&r);
        r.stop_at = 1;
        r.stop_value = -1;
        framer_init(&f, FRAMER_JSON, 8);
        FEED(&f, &r, "{\"a\"");
        FEED_RET(&f, &r, ":1}{\"b\":2}", -1);
        ASSERT_STREQ(r.log, "object({\"a\":1})");
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        r.stop_at = 2;
        FEED_RET(&f, &r, "{\"a\":\"long string\"}{}", -1);
        ASSERT_STREQ(r.log, "object({\"a\":1}) too-long");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf == NULL);
        r.stop_at = 0;
        FEED(&f, &r, "ring\"}{}");
        ASSERT_STREQ(r.log, "object({\"a\":1}) too-long object({})");
        framer_done(&f);
        rec_done(&r);
}

static void test_reinit(void) {
        Framer f;
        Recorder r;

        rec_init(&r);
        framer_init(&f, FRAMER_LINE, 64);
        FEED(&f, &r, "abc");
        ASSERT_TRUE(framer_has_partial(&f) && f.buf != NULL);
        framer_done(&f);
        ASSERT_TRUE(!framer_has_partial(&f) && f.buf == NULL);
        framer_done(&f);

        framer_init(&f, FRAMER_JSON, 64);
        FEED(&f, &r, "{\"a\":1}{\"b\"");
        framer_done(&f);
        framer_init(&f, FRAMER_JSON, 64);
        FEED(&f, &r, "}");
        ASSERT_TRUE(framer_has_partial(&f));
        framer_done(&f);
        ASSERT_FALSE(framer_has_partial(&f));

        framer_init(&f, FRAMER_LINE, 64);
        FEED(&f, &r, "x\n");
        ASSERT_STREQ(r.log, "object({\"a\":1}) invalid(unbalanced '}') line(x)");
        framer_done(&f);
        rec_done(&r);
}

/* A fixed pseudo-random sequence: the same stream and chunks on every run. */
static uint32_t lcg(uint32_t *state) {
        *state = *state * 1664525u + 1013904223u;
        return *state >> 8;
}

typedef struct Piece {
        const char *s;
        size_t len;
} Piece;
#define PIECE(s)                                                                                                                           \
        { s, sizeof(s) - 1 }

static const Piece json_pieces[] = {
        PIECE("{\"a\":1}"),
        PIECE("{\"k\":\"v\",\"n\":[1,2,{\"x\":null}]}"),
        PIECE("{\"s\":\"}{\\\"\\\\\"}"),
        PIECE("{\"a\":{\"b\":{\"c\":{}}}}"),
        PIECE("{\"a\":}"),
        PIECE("{'a':1}"),
        PIECE("hello world"),
        PIECE("}"),
        PIECE(" "),
        PIECE("\t"),
        PIECE("\n"),
        PIECE("\n"),
        PIECE("\n"),
        PIECE("\r\n"),
        PIECE("\r"),
        PIECE("nu\0l"),
        PIECE("{\"n\":\"\0\"}"),
        PIECE("{\"long\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}"),
        PIECE("0123456789012345678901234567890123456789012345678901234567890123456789"),
        PIECE("{\"o\":{\"p\":\"}}}}{{{{\",\"q\":[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]}}"),
        PIECE("{\"line\":\"a\nb\"}"),
};

static const Piece line_pieces[] = {
        PIECE("abc"),  PIECE("\r"), PIECE("\n"),    PIECE("\n"),
        PIECE("\r\n"), PIECE("\0"), PIECE("x y z"), PIECE("0123456789012345678901234567890123456789012345678901234567890123456789"),
        PIECE(""),
};

static char *make_stream(const Piece *pieces, size_t n_pieces, size_t count, uint32_t seed, size_t *ret_len) {
        size_t len = 0, cap = 0;
        char *s = NULL;

        for (size_t i = 0; i < count; i++) {
                const Piece *p = &pieces[lcg(&seed) % n_pieces];
                if (len + p->len > cap) {
                        cap = MAX(cap * 2, len + p->len);
                        s = realloc(s, cap);
                        if (!s)
                                abort();
                }
                memcpy(s + len, p->s, p->len);
                len += p->len;
        }
        *ret_len = len;
        return s;
}

/* Feed s in chunks: 0 all at once, 1 one byte at a time, else pseudo-random sizes from 1 to 97. */
static void feed_chunked(FramerMode mode, size_t max, const char *s, size_t len, unsigned how, Recorder *r) {
        uint32_t seed = 12345u + how;
        Framer f;

        framer_init(&f, mode, max);
        for (size_t i = 0; i < len;) {
                size_t k = len;
                if (how == 1)
                        k = 1;
                else if (how > 1) {
                        uint32_t range = lcg(&seed) % 8 == 0 ? 97 : 7;
                        k = 1 + lcg(&seed) % range;
                }
                k = MIN(k, len - i);
                ASSERT_INTEQ(framer_feed(&f, s + i, k, record, r), 0);
                ASSERT_TRUE(f.cap <= max + 1);
                ASSERT_TRUE((f.buf == NULL) == (f.len == 0));
                i += k;
        }
        framer_done(&f);
}

static void check_chunking(FramerMode mode, size_t max, const char *s, size_t len, Recorder *whole) {
        feed_chunked(mode, max, s, len, 0, whole);
        for (unsigned how = 1; how < 6; how++) {
                Recorder r;
                rec_init(&r);
                feed_chunked(mode, max, s, len, how, &r);
                ASSERT_UINTEQ(r.frames, whole->frames);
                ASSERT_TRUE(r.len == whole->len && strcmp(r.log, whole->log) == 0);
                rec_done(&r);
        }
}

static void test_chunking(void) {
        Recorder whole;
        size_t len;
        char *s;

        s = make_stream(json_pieces, ELEMENTSOF(json_pieces), 3000, 1, &len);
        rec_init(&whole);
        check_chunking(FRAMER_JSON, 64, s, len, &whole);
        ASSERT_TRUE(whole.frames > 500);
        ASSERT_TRUE(whole.kinds[FRAME_OBJECT] > 50 && whole.kinds[FRAME_TEXT] > 50);
        ASSERT_TRUE(whole.kinds[FRAME_TOO_LONG] > 50 && whole.kinds[FRAME_INVALID] > 50);
        rec_done(&whole);
        free(s);

        s = make_stream(line_pieces, ELEMENTSOF(line_pieces), 3000, 2, &len);
        rec_init(&whole);
        check_chunking(FRAMER_LINE, 16, s, len, &whole);
        ASSERT_TRUE(whole.kinds[FRAME_LINE] > 500 && whole.kinds[FRAME_TOO_LONG] > 50);
        rec_done(&whole);
        free(s);
}

int main(void) {
        static CU_TestInfo line[] = {
                { "single", test_line_single },
                { "several", test_line_several },
                { "split", test_line_split },
                { "empty", test_line_empty },
                { "cr", test_line_cr },
                { "nul", test_line_nul },
                { "max", test_line_max },
                { "too_long", test_line_too_long },
                { "too_long_early", test_line_too_long_early },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo json[] = {
                { "one", test_json_one },
                { "back_to_back", test_json_back_to_back },
                { "blanks", test_json_blanks },
                { "bytewise", test_json_bytewise },
                { "strings", test_json_strings },
                { "nested", test_json_nested },
                { "invalid", test_json_invalid },
                { "text", test_json_text },
                { "unbalanced", test_json_unbalanced },
                { "too_long_object", test_json_too_long_object },
                { "too_long_text", test_json_too_long_text },
                { "trailing_text", test_json_trailing_text },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo framer[] = {
                { "partial", test_partial }, { "no_copy", test_no_copy },   { "handler_stop", test_handler_stop },
                { "reinit", test_reinit },   { "chunking", test_chunking }, CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "line framing", NULL, NULL, NULL, NULL, line },
                { "json framing", NULL, NULL, NULL, NULL, json },
                { "framer", NULL, NULL, NULL, NULL, framer },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
