/* SPDX-License-Identifier: MIT */
#pragma once

/* Assertions that say what they got. CU_ASSERT_STRING_EQUAL crashes on NULL and its report only
 * repeats the expression; these report "expr: expected X, got Y" with the caller's line. */

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_STREQ(actual, expected) unit_assert_streq((actual), (expected), #actual, __LINE__, __FILE__, __func__)
#define ASSERT_INTEQ(actual, expected) unit_assert_inteq((long long)(actual), (long long)(expected), #actual, __LINE__, __FILE__, __func__)
#define ASSERT_UINTEQ(actual, expected)                                                                                                    \
        unit_assert_uinteq((unsigned long long)(actual), (unsigned long long)(expected), #actual, __LINE__, __FILE__, __func__)
#define ASSERT_TRUE(cond) unit_assert_true((cond), #cond, __LINE__, __FILE__, __func__)
#define ASSERT_FALSE(cond) unit_assert_true(!(cond), "!(" #cond ")", __LINE__, __FILE__, __func__)

static inline void unit_assert_true(bool ok, const char *expr, unsigned line, const char *file, const char *func) {
        CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, expr, file, func, CU_FALSE);
}

static inline void unit_assert_streq(const char *actual, const char *expected, const char *expr, unsigned line, const char *file,
                                     const char *func) {
        bool ok = actual && expected ? strcmp(actual, expected) == 0 : actual == expected;
        char *msg = NULL;

        /* CUnit copies the condition text of a failure. */
        if (ok || asprintf(&msg, "%s: expected %s%s%s, got %s%s%s", expr, expected ? "\"" : "", expected ? expected : "NULL",
                           expected ? "\"" : "", actual ? "\"" : "", actual ? actual : "NULL", actual ? "\"" : "") < 0)
                msg = NULL;
        CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg ? msg : expr, file, func, CU_FALSE);
        free(msg);
}

static inline void unit_assert_inteq(long long actual, long long expected, const char *expr, unsigned line, const char *file,
                                     const char *func) {
        char *msg = NULL;

        if (actual == expected || asprintf(&msg, "%s: expected %lld, got %lld", expr, expected, actual) < 0)
                msg = NULL;
        CU_assertImplementation(actual == expected ? CU_TRUE : CU_FALSE, line, msg ? msg : expr, file, func, CU_FALSE);
        free(msg);
}

static inline void unit_assert_uinteq(unsigned long long actual, unsigned long long expected, const char *expr, unsigned line,
                                      const char *file, const char *func) {
        char *msg = NULL;

        if (actual == expected || asprintf(&msg, "%s: expected %llu, got %llu", expr, expected, actual) < 0)
                msg = NULL;
        CU_assertImplementation(actual == expected ? CU_TRUE : CU_FALSE, line, msg ? msg : expr, file, func, CU_FALSE);
        free(msg);
}
