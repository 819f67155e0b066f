/* SPDX-License-Identifier: MIT */
#pragma once

/* How tcpeductl shows what the daemon says: fields of its JSON, durations and times, listen
 * addresses, bytes escaped for a terminal. Text is put together in bounded byte queues
 * (TextBuf): what does not fit is cut, never overflows. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "byte-queue.h"

/* A field: its string, "-" when absent or null. */
const char *jstr(struct json_object *o, const char *key);
/* A string field: its value, def when absent or not a string (o may be NULL). */
const char *jstr_or(struct json_object *o, const char *key, const char *def);
int64_t jint(struct json_object *o, const char *key);
struct json_object *jget(struct json_object *o, const char *key);
const char *yes_no(struct json_object *o, const char *key);

/* "850us", "1.5ms", "2.0s", "3m05s", "4h02m", "5d03h". Returns buf. */
char *format_duration(int64_t usec, char *buf, size_t size);
/* Local time of day with milliseconds: "13:04:05.123". Returns buf. */
char *format_time(int64_t usec, char *buf, size_t size);

/* A server's listen addresses, as bound (else as configured), joined by ", ". */
void join_listen(struct json_object *server, char *buf, size_t size);

/* o as one line of JSON on stdout. */
void print_json(struct json_object *o);

/* Bytes as a C string literal would write them, at most max of them, then "..." if cut. Text
 * (valid UTF-8) keeps its characters; other bytes above 0x7e are written \xNN. */
void print_escaped(const uint8_t *p, size_t n, bool text, size_t max);

/* A bounded piece of text on its way to a terminal. */
typedef struct TextBuf {
        ByteQueue q;
        size_t limit; /* bytes it may hold: more is cut */
} TextBuf;

void text_put(TextBuf *b, const char *s, size_t n);
void text_puts(TextBuf *b, const char *s);
/* Text from the network, made safe for a terminal: valid UTF-8 without control characters passes,
 * a tab becomes a blank, anything else a '?'. */
void text_put_safe(TextBuf *b, const char *s, size_t n);
static inline const char *text_data(const TextBuf *b) {
        return (const char *)byte_queue_peek(&b->q);
}
static inline size_t text_len(const TextBuf *b) {
        return byte_queue_len(&b->q);
}
static inline void text_clear(TextBuf *b) {
        byte_queue_consume(&b->q, byte_queue_len(&b->q));
}
static inline void text_done(TextBuf *b) {
        byte_queue_done(&b->q);
}
