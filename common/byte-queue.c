/* SPDX-License-Identifier: MIT */
#include "byte-queue.h"

#include <errno.h>
#include <stdlib.h>

#include "macro.h"

/* Room for n more bytes after the queued ones: first by moving what is queued to the front, then
 * by growing (at least doubling, so that a stream of small pushes costs amortised O(1)). */
static int make_room(ByteQueue *q, size_t n) {
        if (q->start + q->len + n <= q->cap)
                return 0;
        if (q->start > 0 && q->len + n <= q->cap) {
                memmove(q->data, q->data + q->start, q->len);
                q->start = 0;
                return 0;
        }
        size_t cap = MAX((size_t)BYTE_QUEUE_MIN_CAP, q->len + n);
        if (cap < q->cap * 2)
                cap = q->cap * 2;
        uint8_t *d = malloc(cap);
        if (!d)
                return -ENOMEM;
        if (q->len)
                memcpy(d, q->data + q->start, q->len);
        free(q->data);
        q->data = d;
        q->start = 0;
        q->cap = cap;
        return 0;
}

int byte_queue_push(ByteQueue *q, const void *p, size_t n, size_t limit) {
        if (n > limit || q->len > limit - n)
                return -ENOBUFS;
        if (n == 0)
                return 0;
        int r = make_room(q, n);
        if (r < 0)
                return r;
        memcpy(q->data + q->start + q->len, p, n);
        q->len += n;
        return 0;
}

uint8_t *byte_queue_reserve(ByteQueue *q, size_t n, size_t limit, int *ret_error) {
        if (n > limit || q->len > limit - n) {
                *ret_error = -ENOBUFS;
                return NULL;
        }
        int r = make_room(q, MAX(n, (size_t)1));
        if (r < 0) {
                *ret_error = r;
                return NULL;
        }
        return q->data + q->start + q->len;
}

void byte_queue_commit(ByteQueue *q, size_t n) {
        q->len += n;
}

void byte_queue_consume(ByteQueue *q, size_t n) {
        if (n >= q->len) {
                q->start = 0;
                q->len = 0;
                return;
        }
        q->start += n;
        q->len -= n;
}

void byte_queue_truncate(ByteQueue *q, size_t n) {
        if (n < q->len)
                q->len = n;
        if (q->len == 0)
                q->start = 0;
}

void byte_queue_trim(ByteQueue *q) {
        if (q->len == 0 && q->data) {
                free(q->data);
                *q = (ByteQueue){};
        }
}

void byte_queue_done(ByteQueue *q) {
        free(q->data);
        *q = (ByteQueue){};
}
