/* SPDX-License-Identifier: MIT */
#pragma once

/* Message framing for the line and JSON server types: bytes in, whole messages out, whatever the
 * reads look like (a message split over many reads, many messages in one read). At most
 * max_message bytes per message; a longer one is reported once and skipped to its end. Nothing is
 * allocated while no message is incomplete: an idle connection costs no buffer. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum FramerMode {
        FRAMER_LINE, /* messages end with '\n'; a '\r' before it is dropped */
        FRAMER_JSON, /* JSON objects, each ended by its own closing brace, with or without blanks or
                      * newlines between them; a message that does not start with '{' is a line */
} FramerMode;

typedef enum FrameKind {
        FRAME_LINE, /* line mode: one line, without its '\n' (and '\r') */
        FRAME_OBJECT, /* JSON mode: one complete, valid JSON object */
        FRAME_TEXT, /* JSON mode: a line that does not begin with '{', without its '\n' (and '\r') */
        FRAME_TOO_LONG, /* a message passed max_message bytes: reported as soon as that is known; the
                         * rest of it (up to its '\n', or its closing brace) is skipped silently */
        FRAME_INVALID, /* JSON mode: a message beginning with '{' that is not valid JSON, or a '}'
                        * with no '{'; the rest of its line is skipped */
} FrameKind;

typedef struct Frame {
        FrameKind kind;
        const char *data; /* FRAME_LINE, FRAME_TEXT, FRAME_OBJECT: the message's bytes */
        size_t len; /* (not NUL-terminated; valid only during the callback) */
        struct json_object *object; /* FRAME_OBJECT: borrowed for the callback; json_object_get() to keep */
        const char *error; /* FRAME_INVALID: what is wrong, from json-c; FRAME_TOO_LONG: NULL */
} Frame;

/* Return < 0 to stop: framer_feed() then returns that value at once (e.g. the connection closed). */
typedef int (*FrameHandler)(void *userdata, const Frame *frame);

typedef struct Framer {
        FramerMode mode;
        size_t max_message;
        char *buf; /* the incomplete message; NULL when there is none */
        size_t len, cap;
        /* JSON scanning state of the incomplete object */
        unsigned depth;
        bool in_string, escaped;
        bool skipping; /* discarding the rest of an over-long or invalid message */
        bool skip_to_newline;
        struct json_tokener *tok; /* JSON mode: reused for every object */
} Framer;

void framer_init(Framer *f, FramerMode mode, size_t max_message);
/* Free what is buffered. The Framer may be initialised again. */
void framer_done(Framer *f);
/* Returns 0 after every complete message was handed to h, the handler's negative value, or -ENOMEM. */
int framer_feed(Framer *f, const char *data, size_t len, FrameHandler h, void *userdata);
/* Part of a message is waiting for the rest (what line_timeout measures). */
bool framer_has_partial(const Framer *f);
