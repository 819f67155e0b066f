/* SPDX-License-Identifier: MIT */
/* The bounded byte queue: FIFO order across growth and compaction, bounds that refuse a push
 * whole, reserve/commit for reads straight into it, truncation, and storage given back. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "byte-queue.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

static void test_fifo_across_growth(void) {
        ByteQueue q = {};
        uint8_t in[10000], out[10000];
        size_t written = 0, read = 0;

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i * 7 + 3);
        ASSERT_TRUE(byte_queue_empty(&q));
        ASSERT_TRUE(byte_queue_peek(&q) == NULL);
        /* pushes of 1..97 bytes, consumes of about two thirds: growth and compaction both happen */
        for (size_t step = 1; written < sizeof(in); step = step % 97 + 1) {
                size_t n = MIN(step, sizeof(in) - written);
                ASSERT_INTEQ(byte_queue_push(&q, in + written, n, SIZE_MAX), 0);
                written += n;
                size_t take = byte_queue_len(&q) * 2 / 3;
                memcpy(out + read, byte_queue_peek(&q), take);
                byte_queue_consume(&q, take);
                read += take;
        }
        memcpy(out + read, byte_queue_peek(&q), byte_queue_len(&q));
        read += byte_queue_len(&q);
        byte_queue_consume(&q, byte_queue_len(&q));
        ASSERT_UINTEQ(read, sizeof(in));
        ASSERT_TRUE(memcmp(in, out, sizeof(in)) == 0);
        ASSERT_TRUE(byte_queue_empty(&q));
        byte_queue_done(&q);
}

static void test_bound(void) {
        ByteQueue q = {};
        ASSERT_INTEQ(byte_queue_push(&q, "abcd", 4, 6), 0);
        ASSERT_INTEQ(byte_queue_push(&q, "efg", 3, 6), -ENOBUFS); /* whole or nothing */
        ASSERT_UINTEQ(byte_queue_len(&q), 4);
        ASSERT_INTEQ(byte_queue_push(&q, "ef", 2, 6), 0);
        ASSERT_TRUE(memcmp(byte_queue_peek(&q), "abcdef", 6) == 0);
        ASSERT_INTEQ(byte_queue_push(&q, "x", 1, 6), -ENOBUFS);
        ASSERT_INTEQ(byte_queue_push(&q, "x", SIZE_MAX, SIZE_MAX), -ENOBUFS); /* no overflow of len + n */
        ASSERT_INTEQ(byte_queue_push(&q, "", 0, 6), 0);
        byte_queue_done(&q);
        ASSERT_TRUE(q.buf == NULL && byte_queue_len(&q) == 0);
}

static void test_reserve_commit(void) {
        ByteQueue q = {};
        int err = 0;
        ASSERT_INTEQ(byte_queue_push(&q, "hello ", 6, 100), 0);
        uint8_t *p = byte_queue_reserve(&q, 5, 100, &err);
        ASSERT_TRUE(p != NULL);
        memcpy(p, "world", 5);
        byte_queue_commit(&q, 5);
        ASSERT_UINTEQ(byte_queue_len(&q), 11);
        ASSERT_TRUE(memcmp(byte_queue_peek(&q), "hello world", 11) == 0);
        ASSERT_TRUE(byte_queue_reserve(&q, 90, 100, &err) == NULL);
        ASSERT_INTEQ(err, -ENOBUFS);
        byte_queue_done(&q);
}

static void test_truncate_and_trim(void) {
        ByteQueue q = {};
        ASSERT_INTEQ(byte_queue_push(&q, "abcdef", 6, SIZE_MAX), 0);
        byte_queue_consume(&q, 2);
        byte_queue_truncate(&q, 3);
        ASSERT_UINTEQ(byte_queue_len(&q), 3);
        ASSERT_TRUE(memcmp(byte_queue_peek(&q), "cde", 3) == 0);
        byte_queue_truncate(&q, 10); /* longer than what is there: nothing changes */
        ASSERT_UINTEQ(byte_queue_len(&q), 3);
        byte_queue_trim(&q); /* not empty: kept */
        ASSERT_TRUE(q.buf != NULL);
        byte_queue_consume(&q, 3);
        byte_queue_trim(&q);
        ASSERT_TRUE(q.buf == NULL);
        ASSERT_INTEQ(byte_queue_push(&q, "z", 1, 1), 0); /* usable again */
        ASSERT_TRUE(memcmp(byte_queue_peek(&q), "z", 1) == 0);
        byte_queue_done(&q);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "fifo_across_growth", test_fifo_across_growth }, { "bound", test_bound }, { "reserve_commit", test_reserve_commit },
                { "truncate_and_trim", test_truncate_and_trim },   CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "byte queue", NULL, NULL, NULL, NULL, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
