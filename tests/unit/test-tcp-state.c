/* SPDX-License-Identifier: MIT */
/* Unit tests for common/tcp-state.c (names, the RFC 793 transition table, shortest paths, the
 * kernel's numbering) and common/id.c (UUID strings). */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "id.h"
#include "macro.h"
#include "tcp-state.h"
#include "test-util.h"
#include "unit-assert.h"

static const char *const state_names[_TCP_STATE_MAX] = {
        [TCP_STATE_CLOSED] = "CLOSED",           [TCP_STATE_LISTEN] = "LISTEN",
        [TCP_STATE_SYN_SENT] = "SYN_SENT",       [TCP_STATE_SYN_RECEIVED] = "SYN_RECEIVED",
        [TCP_STATE_ESTABLISHED] = "ESTABLISHED", [TCP_STATE_FIN_WAIT_1] = "FIN_WAIT_1",
        [TCP_STATE_FIN_WAIT_2] = "FIN_WAIT_2",   [TCP_STATE_CLOSE_WAIT] = "CLOSE_WAIT",
        [TCP_STATE_CLOSING] = "CLOSING",         [TCP_STATE_LAST_ACK] = "LAST_ACK",
        [TCP_STATE_TIME_WAIT] = "TIME_WAIT",
};

/* Compare a path returned by tcp_state_path() with the expected one, by name. */
#define ASSERT_PATH(from, to, allow_exceptional, ...)                                                                                      \
        do {                                                                                                                               \
                static const TcpState expected_[] = { __VA_ARGS__ };                                                                       \
                check_path((from), (to), (allow_exceptional), expected_, ELEMENTSOF(expected_), __LINE__, __func__);                       \
        } while (0)

static void check_path(TcpState from, TcpState to, bool allow_exceptional, const TcpState *expected, size_t n_expected, unsigned line,
                       const char *func) {
        TcpState path[_TCP_STATE_MAX];
        char what[128];

        snprintf(what, sizeof(what), "tcp_state_path(%s, %s, %s)", tcp_state_to_string(from), tcp_state_to_string(to),
                 allow_exceptional ? "true" : "false");
        int n = tcp_state_path(from, to, allow_exceptional, path, ELEMENTSOF(path));
        unit_assert_inteq(n, (long long)n_expected, what, line, __FILE__, func);
        for (size_t i = 0; n > 0 && i < (size_t)n && i < n_expected; i++) {
                char step[160];
                snprintf(step, sizeof(step), "%s step %zu", what, i + 1);
                unit_assert_streq(tcp_state_to_string(path[i]), tcp_state_to_string(expected[i]), step, line, __FILE__, func);
        }
}

/* ---- names ---- */

static void test_state_to_string_all_states(void) {
        for (int s = 0; s < _TCP_STATE_MAX; s++)
                ASSERT_STREQ(tcp_state_to_string((TcpState)s), state_names[s]);
}

static void test_state_to_string_out_of_range(void) {
        ASSERT_STREQ(tcp_state_to_string(_TCP_STATE_MAX), NULL);
        ASSERT_STREQ(tcp_state_to_string(_TCP_STATE_INVALID), NULL);
        ASSERT_STREQ(tcp_state_to_string((TcpState)-1), NULL);
        ASSERT_STREQ(tcp_state_to_string((TcpState)100), NULL);
}

static void test_state_from_string_exact_names(void) {
        for (int s = 0; s < _TCP_STATE_MAX; s++)
                ASSERT_INTEQ(tcp_state_from_string(state_names[s]), s);
}

static void test_state_from_string_rfc_spellings(void) {
        ASSERT_INTEQ(tcp_state_from_string("syn-received"), TCP_STATE_SYN_RECEIVED);
        ASSERT_INTEQ(tcp_state_from_string("SYN-RECEIVED"), TCP_STATE_SYN_RECEIVED);
        ASSERT_INTEQ(tcp_state_from_string("fin-wait-1"), TCP_STATE_FIN_WAIT_1);
        ASSERT_INTEQ(tcp_state_from_string("FIN-WAIT-2"), TCP_STATE_FIN_WAIT_2);
        ASSERT_INTEQ(tcp_state_from_string("time-wait"), TCP_STATE_TIME_WAIT);
        ASSERT_INTEQ(tcp_state_from_string("close-wait"), TCP_STATE_CLOSE_WAIT);
        ASSERT_INTEQ(tcp_state_from_string("last-ack"), TCP_STATE_LAST_ACK);
        ASSERT_INTEQ(tcp_state_from_string("syn-sent"), TCP_STATE_SYN_SENT);
}

static void test_state_from_string_lowercase(void) {
        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                char lower[32];
                size_t i = 0;
                for (; state_names[s][i] && i < sizeof(lower) - 1; i++) {
                        char c = state_names[s][i];
                        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
                }
                lower[i] = 0;
                ASSERT_INTEQ(tcp_state_from_string(lower), s);
        }
        ASSERT_INTEQ(tcp_state_from_string("Established"), TCP_STATE_ESTABLISHED);
        ASSERT_INTEQ(tcp_state_from_string("syn_received"), TCP_STATE_SYN_RECEIVED);
}

static void test_state_from_string_rejects(void) {
        ASSERT_INTEQ(tcp_state_from_string("FOO"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string(NULL), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string(""), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string("CLOSE"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string("CLOSEDX"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string("ESTABLISHED "), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string(" LISTEN"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string("FIN_WAIT_3"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_string("SYN_RECV"), _TCP_STATE_INVALID);
        ASSERT_INTEQ(_TCP_STATE_INVALID, -EINVAL);
}

static void test_state_info_all_states(void) {
        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                const TcpStateInfo *info = tcp_state_info((TcpState)s);
                ASSERT_TRUE(info != NULL);
                if (!info)
                        continue;
                ASSERT_STREQ(info->name, state_names[s]);
                ASSERT_TRUE(info->meaning && strlen(info->meaning) > 0);
                ASSERT_TRUE(info->who && strlen(info->who) > 0);
        }
        ASSERT_TRUE(tcp_state_info(_TCP_STATE_MAX) == NULL);
        ASSERT_TRUE(tcp_state_info(_TCP_STATE_INVALID) == NULL);
}

static void test_state_source_to_string(void) {
        ASSERT_STREQ(state_source_to_string(STATE_SOURCE_KERNEL), "kernel");
        ASSERT_STREQ(state_source_to_string(STATE_SOURCE_INFERRED), "inferred");
        ASSERT_STREQ(state_source_to_string(_STATE_SOURCE_MAX), NULL);
        ASSERT_STREQ(state_source_to_string(_STATE_SOURCE_INVALID), NULL);
}

/* ---- transitions ---- */

static void test_transition_rfc793_edges_are_legal(void) {
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_CLOSED, TCP_STATE_LISTEN));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_CLOSED, TCP_STATE_SYN_SENT));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_LISTEN, TCP_STATE_SYN_RECEIVED));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_SYN_SENT, TCP_STATE_ESTABLISHED));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_SYN_RECEIVED, TCP_STATE_ESTABLISHED));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_ESTABLISHED, TCP_STATE_FIN_WAIT_1));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_ESTABLISHED, TCP_STATE_CLOSE_WAIT));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_FIN_WAIT_1, TCP_STATE_FIN_WAIT_2));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_FIN_WAIT_1, TCP_STATE_CLOSING));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_FIN_WAIT_2, TCP_STATE_TIME_WAIT));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_CLOSING, TCP_STATE_TIME_WAIT));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_CLOSE_WAIT, TCP_STATE_LAST_ACK));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_LAST_ACK, TCP_STATE_CLOSED));
        ASSERT_TRUE(tcp_transition_is_legal(TCP_STATE_TIME_WAIT, TCP_STATE_CLOSED));
}

static void test_transition_rfc793_edges_are_ordinary(void) {
        static const TcpState edges[][2] = {
                { TCP_STATE_CLOSED, TCP_STATE_LISTEN },
                { TCP_STATE_CLOSED, TCP_STATE_SYN_SENT },
                { TCP_STATE_LISTEN, TCP_STATE_SYN_RECEIVED },
                { TCP_STATE_SYN_SENT, TCP_STATE_ESTABLISHED },
                { TCP_STATE_SYN_RECEIVED, TCP_STATE_ESTABLISHED },
                { TCP_STATE_ESTABLISHED, TCP_STATE_FIN_WAIT_1 },
                { TCP_STATE_ESTABLISHED, TCP_STATE_CLOSE_WAIT },
                { TCP_STATE_FIN_WAIT_1, TCP_STATE_FIN_WAIT_2 },
                { TCP_STATE_FIN_WAIT_1, TCP_STATE_CLOSING },
                { TCP_STATE_FIN_WAIT_2, TCP_STATE_TIME_WAIT },
                { TCP_STATE_CLOSING, TCP_STATE_TIME_WAIT },
                { TCP_STATE_CLOSE_WAIT, TCP_STATE_LAST_ACK },
                { TCP_STATE_LAST_ACK, TCP_STATE_CLOSED },
                { TCP_STATE_TIME_WAIT, TCP_STATE_CLOSED },
        };
        for (size_t i = 0; i < ELEMENTSOF(edges); i++) {
                const TcpTransition *t = tcp_transition_find(edges[i][0], edges[i][1]);
                ASSERT_TRUE(t != NULL);
                if (!t)
                        continue;
                ASSERT_INTEQ(t->from, edges[i][0]);
                ASSERT_INTEQ(t->to, edges[i][1]);
                ASSERT_FALSE(t->exceptional);
        }
}

static void test_transition_resets_are_exceptional(void) {
        const TcpTransition *t;

        t = tcp_transition_find(TCP_STATE_ESTABLISHED, TCP_STATE_CLOSED);
        ASSERT_TRUE(t && t->exceptional);
        t = tcp_transition_find(TCP_STATE_FIN_WAIT_1, TCP_STATE_TIME_WAIT);
        ASSERT_TRUE(t && t->exceptional);
        t = tcp_transition_find(TCP_STATE_SYN_RECEIVED, TCP_STATE_LISTEN);
        ASSERT_TRUE(t && t->exceptional);
        t = tcp_transition_find(TCP_STATE_TIME_WAIT, TCP_STATE_CLOSED);
        ASSERT_TRUE(t != NULL);
        if (t)
                ASSERT_STREQ(t->event, "2*MSL timer expired: the kernel drops the connection");
}

static void test_transition_illegal_edges(void) {
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_CLOSED, TCP_STATE_ESTABLISHED));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_ESTABLISHED, TCP_STATE_LISTEN));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_TIME_WAIT, TCP_STATE_ESTABLISHED));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_LAST_ACK, TCP_STATE_TIME_WAIT));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_ESTABLISHED, TCP_STATE_SYN_SENT));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_FIN_WAIT_2, TCP_STATE_FIN_WAIT_1));
        ASSERT_TRUE(tcp_transition_find(TCP_STATE_CLOSED, TCP_STATE_ESTABLISHED) == NULL);
}

static void test_transition_no_self_loops(void) {
        for (int s = 0; s < _TCP_STATE_MAX; s++)
                ASSERT_FALSE(tcp_transition_is_legal((TcpState)s, (TcpState)s));
}

static void test_transition_invalid_states_are_illegal(void) {
        ASSERT_FALSE(tcp_transition_is_legal(_TCP_STATE_INVALID, TCP_STATE_CLOSED));
        ASSERT_FALSE(tcp_transition_is_legal(TCP_STATE_CLOSED, _TCP_STATE_MAX));
}

/* ---- shortest paths ---- */

static void test_path_established_to_time_wait_ordinary(void) {
        ASSERT_PATH(TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, false, TCP_STATE_FIN_WAIT_1, TCP_STATE_FIN_WAIT_2, TCP_STATE_TIME_WAIT);
}

static void test_path_established_to_time_wait_exceptional(void) {
        /* FIN and ACK together: the FIN_WAIT_1 -> TIME_WAIT shortcut. */
        ASSERT_PATH(TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, true, TCP_STATE_FIN_WAIT_1, TCP_STATE_TIME_WAIT);
}

static void test_path_close_wait_to_closed(void) {
        ASSERT_PATH(TCP_STATE_CLOSE_WAIT, TCP_STATE_CLOSED, false, TCP_STATE_LAST_ACK, TCP_STATE_CLOSED);
}

static void test_path_syn_received_to_close_wait(void) {
        ASSERT_PATH(TCP_STATE_SYN_RECEIVED, TCP_STATE_CLOSE_WAIT, false, TCP_STATE_ESTABLISHED, TCP_STATE_CLOSE_WAIT);
}

static void test_path_fin_wait_1_to_time_wait_ordinary(void) {
        ASSERT_PATH(TCP_STATE_FIN_WAIT_1, TCP_STATE_TIME_WAIT, false, TCP_STATE_FIN_WAIT_2, TCP_STATE_TIME_WAIT);
}

static void test_path_established_to_closed_exceptional(void) {
        ASSERT_PATH(TCP_STATE_ESTABLISHED, TCP_STATE_CLOSED, true, TCP_STATE_CLOSED);
}

static void test_path_established_to_closed_ordinary(void) {
        /* the passive close is one step shorter than FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT, CLOSED */
        ASSERT_PATH(TCP_STATE_ESTABLISHED, TCP_STATE_CLOSED, false, TCP_STATE_CLOSE_WAIT, TCP_STATE_LAST_ACK, TCP_STATE_CLOSED);
}

static void test_path_same_state_is_empty(void) {
        TcpState path[_TCP_STATE_MAX];

        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                ASSERT_INTEQ(tcp_state_path((TcpState)s, (TcpState)s, false, path, ELEMENTSOF(path)), 0);
                ASSERT_INTEQ(tcp_state_path((TcpState)s, (TcpState)s, true, path, ELEMENTSOF(path)), 0);
                ASSERT_INTEQ(tcp_state_path((TcpState)s, (TcpState)s, true, NULL, 0), 0);
        }
}

static void test_path_time_wait_to_established_does_not_exist(void) {
        TcpState path[_TCP_STATE_MAX];

        /* A connection in TIME_WAIT never becomes ESTABLISHED again: getting there takes a new
         * connection, so CLOSED may end a path but not be a step in the middle of one. */
        for (int ex = 0; ex <= 1; ex++) {
                int n = tcp_state_path(TCP_STATE_TIME_WAIT, TCP_STATE_ESTABLISHED, ex, path, ELEMENTSOF(path));
                char what[256] = "";
                int off = snprintf(what, sizeof(what), "tcp_state_path(TIME_WAIT, ESTABLISHED, %s)", ex ? "true" : "false");
                if (n > 0) {
                        off += snprintf(what + off, sizeof(what) - (size_t)off, " returned the path");
                        for (int i = 0; i < n && off > 0 && (size_t)off < sizeof(what); i++)
                                off += snprintf(what + off, sizeof(what) - (size_t)off, " %s", tcp_state_to_string(path[i]));
                }
                unit_assert_inteq(n, -ENOENT, what, __LINE__, __FILE__, __func__);
        }
}

static void test_path_buffer_too_small(void) {
        TcpState path[3] = { _TCP_STATE_INVALID, _TCP_STATE_INVALID, _TCP_STATE_INVALID };

        ASSERT_INTEQ(tcp_state_path(TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, false, path, 2), -ENOBUFS);
        ASSERT_INTEQ(tcp_state_path(TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, false, path, 0), -ENOBUFS);
        /* Nothing written past max. */
        ASSERT_INTEQ(path[2], _TCP_STATE_INVALID);
        /* Exactly enough room. */
        ASSERT_INTEQ(tcp_state_path(TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, false, path, 3), 3);
        ASSERT_INTEQ(path[2], TCP_STATE_TIME_WAIT);
}

static void test_path_invalid_state(void) {
        TcpState path[_TCP_STATE_MAX];

        ASSERT_INTEQ(tcp_state_path(_TCP_STATE_INVALID, TCP_STATE_CLOSED, true, path, ELEMENTSOF(path)), -EINVAL);
        ASSERT_INTEQ(tcp_state_path(TCP_STATE_CLOSED, _TCP_STATE_INVALID, true, path, ELEMENTSOF(path)), -EINVAL);
        ASSERT_INTEQ(tcp_state_path(_TCP_STATE_MAX, TCP_STATE_CLOSED, false, path, ELEMENTSOF(path)), -EINVAL);
        ASSERT_INTEQ(tcp_state_path(TCP_STATE_CLOSED, _TCP_STATE_MAX, false, path, ELEMENTSOF(path)), -EINVAL);
        ASSERT_INTEQ(tcp_state_path((TcpState)-1, (TcpState)-1, false, path, ELEMENTSOF(path)), -EINVAL);
}

/* ---- table sanity ---- */

static void test_table_every_state_reachable_from_closed(void) {
        TcpState path[_TCP_STATE_MAX];

        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                int n = tcp_state_path(TCP_STATE_CLOSED, (TcpState)s, true, path, ELEMENTSOF(path));
                ASSERT_TRUE(n >= 0);
                if (n < 0)
                        fprintf(stderr, "%s not reachable from CLOSED: %d\n", state_names[s], n);
        }
}

static void test_table_closed_reachable_from_every_state(void) {
        TcpState path[_TCP_STATE_MAX];

        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                int n = tcp_state_path((TcpState)s, TCP_STATE_CLOSED, true, path, ELEMENTSOF(path));
                ASSERT_TRUE(n >= 0);
                if (n < 0)
                        fprintf(stderr, "CLOSED not reachable from %s: %d\n", state_names[s], n);
        }
}

static void test_table_edges_are_well_formed(void) {
        size_t n = 0;
        const TcpTransition *t = tcp_transitions(&n);

        ASSERT_TRUE(t != NULL);
        ASSERT_TRUE(n >= 14);
        for (size_t i = 0; t && i < n; i++) {
                ASSERT_TRUE(t[i].event != NULL && t[i].event[0] != 0);
                ASSERT_TRUE(t[i].from >= 0 && t[i].from < _TCP_STATE_MAX);
                ASSERT_TRUE(t[i].to >= 0 && t[i].to < _TCP_STATE_MAX);
                ASSERT_TRUE(t[i].from != t[i].to);
                /* tcp_transition_find() returns the first match: a second one would never be seen. */
                ASSERT_TRUE(tcp_transition_find(t[i].from, t[i].to) == &t[i]);
        }
}

static void test_table_every_path_step_is_legal(void) {
        for (int a = 0; a < _TCP_STATE_MAX; a++)
                for (int b = 0; b < _TCP_STATE_MAX; b++)
                        for (int ex = 0; ex <= 1; ex++) {
                                TcpState path[_TCP_STATE_MAX];
                                int n = tcp_state_path((TcpState)a, (TcpState)b, ex, path, ELEMENTSOF(path));
                                ASSERT_TRUE(n >= 0 || n == -ENOENT);
                                if (n <= 0)
                                        continue;
                                ASSERT_INTEQ(path[n - 1], b);
                                TcpState prev = (TcpState)a;
                                for (int i = 0; i < n; i++) {
                                        const TcpTransition *t = tcp_transition_find(prev, path[i]);
                                        ASSERT_TRUE(t != NULL);
                                        /* without allow_exceptional, only ordinary edges */
                                        if (t && !ex)
                                                ASSERT_FALSE(t->exceptional);
                                        prev = path[i];
                                }
                        }
}

static void test_table_ordinary_path_preferred_length(void) {
        TcpState path[_TCP_STATE_MAX];

        /* Allowing exceptional edges never makes a path longer. */
        for (int a = 0; a < _TCP_STATE_MAX; a++)
                for (int b = 0; b < _TCP_STATE_MAX; b++) {
                        int ordinary = tcp_state_path((TcpState)a, (TcpState)b, false, path, ELEMENTSOF(path));
                        int any = tcp_state_path((TcpState)a, (TcpState)b, true, path, ELEMENTSOF(path));
                        if (ordinary >= 0)
                                ASSERT_TRUE(any >= 0 && any <= ordinary);
                }
}

/* ---- the kernel's numbering ---- */

static void test_kernel_state_names(void) {
        static const char *const names[] = {
                [1] = "ESTABLISHED", [2] = "SYN_SENT",   [3] = "SYN_RECV", [4] = "FIN_WAIT1", [5] = "FIN_WAIT2", [6] = "TIME_WAIT",
                [7] = "CLOSE",       [8] = "CLOSE_WAIT", [9] = "LAST_ACK", [10] = "LISTEN",   [11] = "CLOSING",  [12] = "NEW_SYN_RECV",
        };
        for (int k = 1; k <= 12; k++)
                ASSERT_STREQ(tcp_kernel_state_to_string(k), names[k]);
}

static void test_kernel_state_mapping(void) {
        static const TcpState map[] = {
                [1] = TCP_STATE_ESTABLISHED, [2] = TCP_STATE_SYN_SENT,  [3] = TCP_STATE_SYN_RECEIVED, [4] = TCP_STATE_FIN_WAIT_1,
                [5] = TCP_STATE_FIN_WAIT_2,  [6] = TCP_STATE_TIME_WAIT, [7] = TCP_STATE_CLOSED,       [8] = TCP_STATE_CLOSE_WAIT,
                [9] = TCP_STATE_LAST_ACK,    [10] = TCP_STATE_LISTEN,   [11] = TCP_STATE_CLOSING,     [12] = TCP_STATE_SYN_RECEIVED,
        };
        for (int k = 1; k <= 12; k++)
                ASSERT_STREQ(tcp_state_to_string(tcp_state_from_kernel(k)), tcp_state_to_string(map[k]));
        ASSERT_INTEQ(tcp_state_from_kernel(1), TCP_STATE_ESTABLISHED);
        ASSERT_INTEQ(tcp_state_from_kernel(7), TCP_STATE_CLOSED);
        ASSERT_INTEQ(tcp_state_from_kernel(12), TCP_STATE_SYN_RECEIVED);
}

static void test_kernel_state_invalid(void) {
        ASSERT_STREQ(tcp_kernel_state_to_string(0), NULL);
        ASSERT_STREQ(tcp_kernel_state_to_string(13), NULL);
        ASSERT_STREQ(tcp_kernel_state_to_string(-1), NULL);
        ASSERT_INTEQ(tcp_state_from_kernel(0), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_kernel(13), _TCP_STATE_INVALID);
        ASSERT_INTEQ(tcp_state_from_kernel(-1), _TCP_STATE_INVALID);
}

/* ---- ids ---- */

static void test_id_format_known_bytes(void) {
        static const uint8_t bytes[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
        char buf[ID_STR_LEN + 1];

        ASSERT_TRUE(id_format(bytes, buf) == buf);
        ASSERT_STREQ(buf, "00112233-4455-6677-8899-aabbccddeeff");
        ASSERT_UINTEQ(strlen(buf), ID_STR_LEN);
}

static void test_id_format_extremes(void) {
        uint8_t bytes[16];
        char buf[ID_STR_LEN + 1];

        memset(bytes, 0, sizeof(bytes));
        ASSERT_STREQ(id_format(bytes, buf), "00000000-0000-0000-0000-000000000000");
        memset(bytes, 0xff, sizeof(bytes));
        ASSERT_STREQ(id_format(bytes, buf), "ffffffff-ffff-ffff-ffff-ffffffffffff");
        ASSERT_TRUE(id_is_valid(buf));
}

static void test_id_is_valid_accepts(void) {
        ASSERT_TRUE(id_is_valid("00112233-4455-6677-8899-aabbccddeeff"));
        ASSERT_TRUE(id_is_valid("0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"));
}

static void test_id_is_valid_rejects(void) {
        ASSERT_FALSE(id_is_valid(""));
        ASSERT_FALSE(id_is_valid("00112233-4455-6677-8899-aabbccddeef")); /* 35 characters */
        ASSERT_FALSE(id_is_valid("00112233-4455-6677-8899-aabbccddeeff0")); /* 37 characters */
        ASSERT_FALSE(id_is_valid("00112233-4455-6677-8899-AABBCCDDEEFF")); /* uppercase */
        ASSERT_FALSE(id_is_valid("00112233-4455-6677-8899-aabbccddeefF"));
        ASSERT_FALSE(id_is_valid("0011223304455-6677-8899-aabbccddeeff")); /* dash replaced */
        ASSERT_FALSE(id_is_valid("001122334455-6677-8899-aabbccddeeff")); /* dash missing */
        ASSERT_FALSE(id_is_valid("00112233-44556677-8899-aabbccddeeff0")); /* dash moved */
        ASSERT_FALSE(id_is_valid("00112233-4455-6677-8899-aabbccddeegg")); /* not hex */
        ASSERT_FALSE(id_is_valid("{0112233-4455-6677-8899-aabbccddeeff"));
        ASSERT_FALSE(id_is_valid("00112233_4455_6677_8899_aabbccddeeff"));
}

int main(void) {
        static CU_TestInfo names_tests[] = {
                { "state_to_string_all_states", test_state_to_string_all_states },
                { "state_to_string_out_of_range", test_state_to_string_out_of_range },
                { "state_from_string_exact_names", test_state_from_string_exact_names },
                { "state_from_string_rfc_spellings", test_state_from_string_rfc_spellings },
                { "state_from_string_lowercase", test_state_from_string_lowercase },
                { "state_from_string_rejects", test_state_from_string_rejects },
                { "state_info_all_states", test_state_info_all_states },
                { "state_source_to_string", test_state_source_to_string },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo transition_tests[] = {
                { "rfc793_edges_are_legal", test_transition_rfc793_edges_are_legal },
                { "rfc793_edges_are_ordinary", test_transition_rfc793_edges_are_ordinary },
                { "resets_are_exceptional", test_transition_resets_are_exceptional },
                { "illegal_edges", test_transition_illegal_edges },
                { "no_self_loops", test_transition_no_self_loops },
                { "invalid_states_are_illegal", test_transition_invalid_states_are_illegal },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo path_tests[] = {
                { "established_to_time_wait_ordinary", test_path_established_to_time_wait_ordinary },
                { "established_to_time_wait_exceptional", test_path_established_to_time_wait_exceptional },
                { "close_wait_to_closed", test_path_close_wait_to_closed },
                { "syn_received_to_close_wait", test_path_syn_received_to_close_wait },
                { "fin_wait_1_to_time_wait_ordinary", test_path_fin_wait_1_to_time_wait_ordinary },
                { "established_to_closed_exceptional", test_path_established_to_closed_exceptional },
                { "established_to_closed_ordinary", test_path_established_to_closed_ordinary },
                { "same_state_is_empty", test_path_same_state_is_empty },
                { "time_wait_to_established_does_not_exist", test_path_time_wait_to_established_does_not_exist },
                { "buffer_too_small", test_path_buffer_too_small },
                { "invalid_state", test_path_invalid_state },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo table_tests[] = {
                { "every_state_reachable_from_closed", test_table_every_state_reachable_from_closed },
                { "closed_reachable_from_every_state", test_table_closed_reachable_from_every_state },
                { "edges_are_well_formed", test_table_edges_are_well_formed },
                { "every_path_step_is_legal", test_table_every_path_step_is_legal },
                { "ordinary_path_preferred_length", test_table_ordinary_path_preferred_length },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo kernel_tests[] = {
                { "kernel_state_names", test_kernel_state_names },
                { "kernel_state_mapping", test_kernel_state_mapping },
                { "kernel_state_invalid", test_kernel_state_invalid },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo id_tests[] = {
                { "id_format_known_bytes", test_id_format_known_bytes },
                { "id_format_extremes", test_id_format_extremes },
                { "id_is_valid_accepts", test_id_is_valid_accepts },
                { "id_is_valid_rejects", test_id_is_valid_rejects },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "tcp-state names", NULL, NULL, NULL, NULL, names_tests },
                { "tcp-state transitions", NULL, NULL, NULL, NULL, transition_tests },
                { "tcp-state paths", NULL, NULL, NULL, NULL, path_tests },
                { "tcp-state table", NULL, NULL, NULL, NULL, table_tests },
                { "tcp-state kernel", NULL, NULL, NULL, NULL, kernel_tests },
                { "id", NULL, NULL, NULL, NULL, id_tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
