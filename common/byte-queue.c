/* SPDX-License-Identifier: MIT */
#include "byte-queue.h"

#include <errno.h>
#include <stdlib.h>

#include "macro.h"

/* Room for n more bytes after the queued ones: first by moving what is queued to the front, then
 * by growing (at least doubling, so that a stream of small pushes costs amortised O(1)). */
static int make_room(ByteQueue *q, size_t n) {
        ByteQueueBuf *b = q->buf;
        size_t len = b ? b->len : 0, cap = b ? b->cap : 0;

        if (b && b->start + len + n <= cap)
                return 0;
        if (b && b->start > 0 && len + n <= cap) {
                memmove(b->data, b->data + b->start, len);
                b->start = 0;
                return 0;
        }
        size_t want = MAX((size_t)BYTE_QUEUE_MIN_CAP, len + n);
        if (want < cap * 2)
                want = cap * 2;
        if (want > SIZE_MAX - sizeof(ByteQueueBuf))
                return -ENOMEM;
        ByteQueueBuf *nb = malloc(sizeof(ByteQueueBuf) + want);
        if (!nb)
                return -ENOMEM;
        if (len)
                memcpy(nb->data, b->data + b->start, len);
        nb->start = 0;
        nb->len = len;
        nb->cap = want;
        free(b);
        q->buf = nb;
        return 0;
}

static bool over(const ByteQueue *q, size_t n, size_t limit) {
        return n > limit || byte_queue_len(q) > limit - n;
}

int byte_queue_push(ByteQueue *q, const void *p, size_t n, size_t limit) {
        if (over(q, n, limit))
                return -ENOBUFS;
        if (n == 0)
                return 0;
        int r = make_room(q, n);
        if (r < 0)
                return r;
        memcpy(q->buf->data + q->buf->start + q->buf->len, p, n);
        q->buf->len += n;
        return 0;
}

uint8_t *byte_queue_reserve(ByteQueue *q, size_t n, size_t limit, int *ret_error) {
        if (over(q, n, limit)) {
                *ret_error = -ENOBUFS;
                return NULL;
        }
        int r = make_room(q, MAX(n, (size_t)1));
        if (r < 0) {
                *ret_error = r;
                return NULL;
        }
        return q->buf->data + q->buf->start + q->buf->len;
}

void byte_queue_commit(ByteQueue *q, size_t n) {
        if (q->buf)
                q->buf->len += n;
}

void byte_queue_consume(ByteQueue *q, size_t n) {
        ByteQueueBuf *b = q->buf;
        if (!b)
                return;
        if (n >= b->len) {
                b->start = 0;
                b->len = 0;
                return;
        }
        b->start += n;
        b->len -= n;
}

void byte_queue_truncate(ByteQueue *q, size_t n) {
        ByteQueueBuf *b = q->buf;
        if (!b)
                return;
        if (n < b->len)
                b->len = n;
        if (b->len == 0)
                b->start = 0;
}

void byte_queue_trim(ByteQueue *q) {
        if (q->buf && q->buf->len == 0) {
                free(q->buf);
                q->buf = NULL;
        }
}

void byte_queue_done(ByteQueue *q) {
        free(q->buf);
        q->buf = NULL;
}
