/* SPDX-License-Identifier: MIT */
#pragma once

/* A bounded FIFO of bytes: what is queued for a peer, a control client or a terminal, or received
 * and not yet read. Storage is allocated on the first push and can be given back when the queue is
 * empty (byte_queue_trim), so an idle owner costs one pointer: a daemon holds many thousands of
 * idle connections, each with a queue. Every push names its bound:
 * the owner decides how much it may hold, and a push past it fails whole, queuing nothing. Pure
 * code: no I/O, no logging. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ByteQueueBuf {
        size_t start; /* the first unread byte */
        size_t len; /* queued bytes: data[start .. start + len) */
        size_t cap;
        uint8_t data[];
} ByteQueueBuf;

typedef struct ByteQueue {
        ByteQueueBuf *buf; /* NULL until the first push, and after a trim */
} ByteQueue;

#define BYTE_QUEUE_MIN_CAP 4096

static inline size_t byte_queue_len(const ByteQueue *q) {
        return q->buf ? q->buf->len : 0;
}

static inline bool byte_queue_empty(const ByteQueue *q) {
        return byte_queue_len(q) == 0;
}

/* The queued bytes, contiguous: byte_queue_len() of them. */
static inline const uint8_t *byte_queue_peek(const ByteQueue *q) {
        return q->buf ? q->buf->data + q->buf->start : NULL;
}

/* Append n bytes. -ENOBUFS (nothing queued) if the queue would then hold more than limit bytes;
 * -ENOMEM if it could not grow. */
int byte_queue_push(ByteQueue *q, const void *p, size_t n, size_t limit);

/* Room for at least n more bytes at the end, contiguous, for a read straight into the queue:
 * returns where to write them (NULL with errno-style *ret_error on failure: -ENOBUFS past limit,
 * -ENOMEM). byte_queue_commit() then adds what was written. */
uint8_t *byte_queue_reserve(ByteQueue *q, size_t n, size_t limit, int *ret_error);
void byte_queue_commit(ByteQueue *q, size_t n);

/* Drop n bytes from the front (n <= byte_queue_len). */
void byte_queue_consume(ByteQueue *q, size_t n);

/* Drop bytes from the end so that n remain (n <= byte_queue_len). */
void byte_queue_truncate(ByteQueue *q, size_t n);

/* Give the storage back if the queue is empty. */
void byte_queue_trim(ByteQueue *q);

/* Free the storage and empty the queue. */
void byte_queue_done(ByteQueue *q);
