/* SPDX-License-Identifier: MIT */
/* The stream framers (common/framing.c) of the line, enhanced and chat servers: bytes from the
 * network. The input is a header and a stream:
 *   byte 0:    bit 0: JSON mode (else line mode); bits 1-7: how the stream is split into reads
 *   bytes 1-2: max_message - 1 (1 to 65536 bytes)
 * The stream is fed twice: in one read, and in reads of 1 to 64 bytes. The promises checked: the
 * frames do not depend on how the input is split; no line is longer than max_message; every
 * object is a JSON object; an idle framer holds no buffer. */
#include <json-c/json.h>
#include <string.h>

#include "framing.h"
#include "fuzz.h"

typedef struct Log {
        uint8_t *buf;
        size_t len, cap;
        size_t max_message;
} Log;

static void log_put(Log *l, const void *p, size_t n) {
        if (l->len + n > l->cap) {
                size_t cap = l->cap ? l->cap : 4096;
                while (cap < l->len + n)
                        cap *= 2;
                l->buf = realloc(l->buf, cap);
                FUZZ_CHECK(l->buf);
                l->cap = cap;
        }
        if (n)
                memcpy(l->buf + l->len, p, n);
        l->len += n;
}

static int record(void *userdata, const Frame *f) {
        Log *l = userdata;
        uint8_t kind = (uint8_t)f->kind;

        log_put(l, &kind, 1);
        switch (f->kind) {
        case FRAME_LINE:
        case FRAME_TEXT:
                FUZZ_CHECK(f->len <= l->max_message);
                FUZZ_CHECK(!f->object && !f->error);
                break;
        case FRAME_OBJECT:
                FUZZ_CHECK(f->len <= l->max_message);
                FUZZ_CHECK(f->object && json_object_is_type(f->object, json_type_object));
                FUZZ_CHECK(f->len > 0 && f->data[0] == '{' && f->data[f->len - 1] == '}');
                break;
        case FRAME_TOO_LONG:
                FUZZ_CHECK(!f->data && f->len == 0);
                return 0;
        case FRAME_INVALID:
                FUZZ_CHECK(f->error);
                log_put(l, f->error, strlen(f->error) + 1);
                return 0;
        default:
                FUZZ_CHECK(!"unknown frame kind");
        }
        log_put(l, &f->len, sizeof(f->len));
        log_put(l, f->data, f->len); /* every byte is read: ASan sees a frame that points outside */
        return 0;
}

static void check_idle(const Framer *f) {
        /* Nothing is allocated while no message is incomplete. */
        if (f->len == 0)
                FUZZ_CHECK(f->buf == NULL);
        FUZZ_CHECK(f->len <= f->cap);
        FUZZ_CHECK(f->len <= f->max_message + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 3)
                return 0;
        FramerMode mode = data[0] & 1 ? FRAMER_JSON : FRAMER_LINE;
        uint32_t seed = data[0] >> 1;
        size_t max_message = ((size_t)data[1] << 8 | data[2]) + 1;
        const char *stream = (const char *)data + 3;
        size_t len = size - 3;
        Log whole = { .max_message = max_message }, split = { .max_message = max_message };
        Framer f;

        framer_init(&f, mode, max_message);
        FUZZ_CHECK(framer_feed(&f, stream, len, record, &whole) == 0);
        check_idle(&f);
        bool partial = framer_has_partial(&f);
        framer_done(&f);

        /* Reads of 1 to 64 bytes, each copied to a buffer of its own size: a frame that points
         * past the read it came from is an overflow. */
        framer_init(&f, mode, max_message);
        for (size_t i = 0; i < len;) {
                seed = seed * 1103515245u + 12345u;
                size_t n = 1 + (seed >> 16) % 64;
                if (n > len - i)
                        n = len - i;
                char *chunk = malloc(n);
                FUZZ_CHECK(chunk);
                memcpy(chunk, stream + i, n);
                FUZZ_CHECK(framer_feed(&f, chunk, n, record, &split) == 0);
                free(chunk);
                check_idle(&f);
                i += n;
        }
        FUZZ_CHECK(framer_has_partial(&f) == partial);
        framer_done(&f);
        FUZZ_CHECK(f.buf == NULL);

        FUZZ_CHECK(whole.len == split.len && (whole.len == 0 || memcmp(whole.buf, split.buf, whole.len) == 0));
        free(whole.buf);
        free(split.buf);
        return 0;
}
