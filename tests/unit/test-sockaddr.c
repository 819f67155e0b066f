/* SPDX-License-Identifier: MIT */
/* Unit tests for common/sockaddr-util.c: parsing "ADDR:PORT" and "[ADDR]:PORT", formatting,
 * comparison and the per-IP hash. */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "sockaddr-util.h"
#include "test-util.h"
#include "unit-assert.h"

/* Parse s, which must be valid; on failure the test records it and *ret is zeroed. */
#define PARSE_OK(s, ret) parse_ok_at((s), (ret), __LINE__, __func__)

static void parse_ok_at(const char *s, SockaddrUnion *ret, unsigned line, const char *func) {
        const char *err = NULL;
        char what[160];

        memset(ret, 0, sizeof(*ret));
        snprintf(what, sizeof(what), "sockaddr_parse(\"%s\") [error: %s]", s, "(none)");
        int r = sockaddr_parse(s, ret, NULL, &err);
        if (r < 0)
                snprintf(what, sizeof(what), "sockaddr_parse(\"%s\") [error: %s]", s, err ? err : "NULL");
        unit_assert_inteq(r, 0, what, line, __FILE__, func);
}

/* ---- accepted ---- */

static void test_parse_ipv4_loopback(void) {
        SockaddrUnion u;
        socklen_t len = 0;
        const char *err = NULL;

        ASSERT_INTEQ(sockaddr_parse("127.0.0.1:7007", &u, &len, &err), 0);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET);
        ASSERT_UINTEQ(ntohs(u.in.sin_port), 7007);
        ASSERT_UINTEQ(ntohl(u.in.sin_addr.s_addr), 0x7f000001);
        ASSERT_UINTEQ(len, sizeof(struct sockaddr_in));
        ASSERT_STREQ(err, NULL);
}

static void test_parse_ipv4_any_port_zero(void) {
        SockaddrUnion u;
        socklen_t len = 0;

        ASSERT_INTEQ(sockaddr_parse("0.0.0.0:0", &u, &len, NULL), 0);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 0);
        ASSERT_UINTEQ(u.in.sin_addr.s_addr, INADDR_ANY);
        ASSERT_UINTEQ(len, sizeof(struct sockaddr_in));
}

static void test_parse_ipv6_loopback(void) {
        SockaddrUnion u;
        socklen_t len = 0;

        ASSERT_INTEQ(sockaddr_parse("[::1]:7007", &u, &len, NULL), 0);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET6);
        ASSERT_UINTEQ(ntohs(u.in6.sin6_port), 7007);
        ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&u.in6.sin6_addr));
        ASSERT_UINTEQ(u.in6.sin6_scope_id, 0);
        ASSERT_UINTEQ(len, sizeof(struct sockaddr_in6));
}

static void test_parse_ipv6_any_max_port(void) {
        SockaddrUnion u;

        ASSERT_INTEQ(sockaddr_parse("[::]:65535", &u, NULL, NULL), 0);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET6);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 65535);
        ASSERT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&u.in6.sin6_addr));
}

static void test_parse_ipv4_mapped_ipv6(void) {
        SockaddrUnion u;

        ASSERT_INTEQ(sockaddr_parse("[::ffff:127.0.0.1]:80", &u, NULL, NULL), 0);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET6);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 80);
        ASSERT_TRUE(IN6_IS_ADDR_V4MAPPED(&u.in6.sin6_addr));
        ASSERT_UINTEQ(u.in6.sin6_addr.s6_addr[15], 1);
        ASSERT_UINTEQ(u.in6.sin6_addr.s6_addr[12], 127);
}

static void test_parse_ipv6_scope_loopback_interface(void) {
        SockaddrUnion u;
        char buf[SOCKADDR_STR_MAX];
        unsigned lo = if_nametoindex("lo");

        if (lo == 0) {
                CU_PASS("no interface 'lo' here");
                return;
        }
        PARSE_OK("[fe80::1%lo]:80", &u);
        ASSERT_INTEQ(u.sa.sa_family, AF_INET6);
        ASSERT_UINTEQ(u.in6.sin6_scope_id, lo);
        ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), "[fe80::1%lo]:80");
        ASSERT_STREQ(sockaddr_format_ip(&u.sa, buf, sizeof(buf)), "fe80::1%lo");
}

static void test_parse_leading_zeros_in_port(void) {
        SockaddrUnion u;
        char buf[SOCKADDR_STR_MAX];

        PARSE_OK("127.0.0.1:007007", &u);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 7007);
        ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), "127.0.0.1:7007");
}

/* ---- rejected: each with the exact reason a user sees ---- */

static void check_rejected(const char *s, const char *expected_error, unsigned line, const char *func) {
        SockaddrUnion u, before;
        socklen_t len = 12345;
        const char *err = "(not set)";
        char what[160];

        memset(&u, 0xAA, sizeof(u));
        before = u;
        snprintf(what, sizeof(what), "sockaddr_parse(\"%s\")", s ? s : "NULL");
        unit_assert_inteq(sockaddr_parse(s, &u, &len, &err), -EINVAL, what, line, __FILE__, func);
        snprintf(what, sizeof(what), "error of sockaddr_parse(\"%s\")", s ? s : "NULL");
        unit_assert_streq(err, expected_error, what, line, __FILE__, func);
        snprintf(what, sizeof(what), "sockaddr_parse(\"%s\") leaves *ret and *ret_len alone", s ? s : "NULL");
        unit_assert_true(memcmp(&u, &before, sizeof(u)) == 0 && len == 12345, what, line, __FILE__, func);
}

#define ASSERT_REJECTED(s, error) check_rejected((s), (error), __LINE__, __func__)

static void test_reject_empty(void) {
        ASSERT_REJECTED("", "empty address");
        ASSERT_REJECTED(NULL, "empty address");
}

static void test_reject_missing_port(void) {
        ASSERT_REJECTED("127.0.0.1", "missing ':PORT'");
        ASSERT_REJECTED("localhost", "missing ':PORT'");
}

static void test_reject_unbracketed_ipv6(void) {
        ASSERT_REJECTED("::1:80", "IPv6 addresses must be written as [ADDR]:PORT");
        ASSERT_REJECTED("fe80::1:7007", "IPv6 addresses must be written as [ADDR]:PORT");
}

static void test_reject_bracket_without_port(void) {
        ASSERT_REJECTED("[::1]", "missing ':PORT' after ']'");
        ASSERT_REJECTED("[::1]80", "missing ':PORT' after ']'");
}

static void test_reject_missing_close_bracket(void) {
        ASSERT_REJECTED("[::1:80", "missing ']' after IPv6 address");
}

static void test_reject_bad_ipv4(void) {
        ASSERT_REJECTED("127.1:80", "bad IPv4 address");
        ASSERT_REJECTED("256.0.0.1:80", "bad IPv4 address");
        ASSERT_REJECTED("localhost:80", "bad IPv4 address");
        ASSERT_REJECTED(":80", "bad IPv4 address");
        ASSERT_REJECTED("1.2.3.4.5:80", "bad IPv4 address");
}

static void test_reject_port_out_of_range(void) {
        ASSERT_REJECTED("127.0.0.1:65536", "port out of range (0-65535)");
        ASSERT_REJECTED("[::1]:99999999999", "port out of range (0-65535)");
}

static void test_reject_bad_port(void) {
        ASSERT_REJECTED("127.0.0.1:8x", "bad port");
        ASSERT_REJECTED("127.0.0.1:", "bad port");
        ASSERT_REJECTED("127.0.0.1:-1", "bad port");
        ASSERT_REJECTED("127.0.0.1:+80", "bad port");
        ASSERT_REJECTED("127.0.0.1: 80", "bad port");
        ASSERT_REJECTED("[::1]:", "bad port");
        ASSERT_REJECTED("[::1]:http", "bad port");
}

static void test_reject_bad_ipv6(void) {
        ASSERT_REJECTED("[zz::1]:80", "bad IPv6 address");
        ASSERT_REJECTED("[]:80", "bad IPv6 address");
        ASSERT_REJECTED("[127.0.0.1]:80", "bad IPv6 address");
}

static void test_reject_unknown_scope_interface(void) {
        ASSERT_REJECTED("[fe80::1%nosuchif]:80", "unknown interface in IPv6 scope");
}

static void test_reject_without_error_pointer(void) {
        SockaddrUnion u;

        ASSERT_INTEQ(sockaddr_parse("127.0.0.1", &u, NULL, NULL), -EINVAL);
}

/* ---- formatting ---- */

static void test_format_round_trip(void) {
        static const char *const canonical[] = {
                "127.0.0.1:7007",        "0.0.0.0:0",         "255.255.255.255:65535", "[::1]:7007",  "[::]:65535",
                "[::ffff:127.0.0.1]:80", "[2001:db8::1]:443", "[fe80::1:2:3:4]:1",     "10.1.2.3:22",
        };
        for (size_t i = 0; i < ELEMENTSOF(canonical); i++) {
                SockaddrUnion u;
                char buf[SOCKADDR_STR_MAX];

                PARSE_OK(canonical[i], &u);
                ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), canonical[i]);
        }
}

static void test_format_canonicalizes(void) {
        SockaddrUnion u;
        char buf[SOCKADDR_STR_MAX];

        PARSE_OK("[0:0:0:0:0:0:0:1]:80", &u);
        ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), "[::1]:80");
        PARSE_OK("[2001:DB8::A]:1", &u);
        ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), "[2001:db8::a]:1");
        PARSE_OK("[2001:0db8:0000:0000:0000:0000:0000:0001]:443", &u);
        ASSERT_STREQ(sockaddr_format(&u.sa, buf, sizeof(buf)), "[2001:db8::1]:443");
}

static void test_format_ip_has_no_port_or_brackets(void) {
        SockaddrUnion u;
        char buf[SOCKADDR_STR_MAX];

        PARSE_OK("127.0.0.1:7007", &u);
        ASSERT_STREQ(sockaddr_format_ip(&u.sa, buf, sizeof(buf)), "127.0.0.1");
        PARSE_OK("[::1]:7007", &u);
        ASSERT_STREQ(sockaddr_format_ip(&u.sa, buf, sizeof(buf)), "::1");
}

static void test_format_returns_buffer(void) {
        SockaddrUnion u;
        char buf[SOCKADDR_STR_MAX];

        PARSE_OK("127.0.0.1:1", &u);
        ASSERT_TRUE(sockaddr_format(&u.sa, buf, sizeof(buf)) == buf);
        ASSERT_TRUE(sockaddr_format_ip(&u.sa, buf, sizeof(buf)) == buf);
}

/* ---- accessors, comparison, hash ---- */

static void test_port_and_len(void) {
        SockaddrUnion u;

        PARSE_OK("127.0.0.1:7007", &u);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 7007);
        ASSERT_UINTEQ(sockaddr_len(&u.sa), sizeof(struct sockaddr_in));
        PARSE_OK("[::1]:65535", &u);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 65535);
        ASSERT_UINTEQ(sockaddr_len(&u.sa), sizeof(struct sockaddr_in6));
        PARSE_OK("0.0.0.0:0", &u);
        ASSERT_UINTEQ(sockaddr_port(&u.sa), 0);
}

static void test_equal(void) {
        SockaddrUnion a, b;

        PARSE_OK("127.0.0.1:7007", &a);
        PARSE_OK("127.0.0.1:7007", &b);
        ASSERT_TRUE(sockaddr_equal(&a.sa, &b.sa));
        PARSE_OK("127.0.0.1:7008", &b);
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));
        PARSE_OK("127.0.0.2:7007", &b);
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));
        PARSE_OK("[::1]:7007", &b);
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));

        PARSE_OK("[::1]:7007", &a);
        PARSE_OK("[0::1]:7007", &b);
        ASSERT_TRUE(sockaddr_equal(&a.sa, &b.sa));
        PARSE_OK("[::2]:7007", &b);
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));
}

static void test_ip_equal_ignores_port(void) {
        SockaddrUnion a, b;

        PARSE_OK("127.0.0.1:1", &a);
        PARSE_OK("127.0.0.1:2", &b);
        ASSERT_TRUE(sockaddr_ip_equal(&a.sa, &b.sa));
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));

        PARSE_OK("[2001:db8::1]:1", &a);
        PARSE_OK("[2001:db8::1]:65535", &b);
        ASSERT_TRUE(sockaddr_ip_equal(&a.sa, &b.sa));
        ASSERT_FALSE(sockaddr_equal(&a.sa, &b.sa));
}

static void test_ip_equal_different_ip(void) {
        SockaddrUnion a, b;

        PARSE_OK("127.0.0.1:1", &a);
        PARSE_OK("127.0.0.2:1", &b);
        ASSERT_FALSE(sockaddr_ip_equal(&a.sa, &b.sa));
        PARSE_OK("[::1]:1", &b);
        ASSERT_FALSE(sockaddr_ip_equal(&a.sa, &b.sa));
        PARSE_OK("[::1]:1", &a);
        PARSE_OK("[::2]:1", &b);
        ASSERT_FALSE(sockaddr_ip_equal(&a.sa, &b.sa));
}

static void test_ip_hash_same_ip_different_port(void) {
        SockaddrUnion a, b;

        PARSE_OK("192.0.2.7:1000", &a);
        PARSE_OK("192.0.2.7:2000", &b);
        ASSERT_TRUE(sockaddr_ip_hash(&a.sa) == sockaddr_ip_hash(&b.sa));
        PARSE_OK("[2001:db8::7]:1000", &a);
        PARSE_OK("[2001:db8::7]:2000", &b);
        ASSERT_TRUE(sockaddr_ip_hash(&a.sa) == sockaddr_ip_hash(&b.sa));
}

static void test_ip_hash_different_ip(void) {
        SockaddrUnion a, b;

        PARSE_OK("192.0.2.7:1000", &a);
        PARSE_OK("192.0.2.8:1000", &b);
        ASSERT_TRUE(sockaddr_ip_hash(&a.sa) != sockaddr_ip_hash(&b.sa));
        PARSE_OK("[::1]:1000", &a);
        PARSE_OK("[::2]:1000", &b);
        ASSERT_TRUE(sockaddr_ip_hash(&a.sa) != sockaddr_ip_hash(&b.sa));
}

static void test_ip_hash_stable(void) {
        SockaddrUnion a;

        PARSE_OK("10.0.0.1:5", &a);
        uint64_t h = sockaddr_ip_hash(&a.sa);
        ASSERT_TRUE(h != 0);
        ASSERT_TRUE(sockaddr_ip_hash(&a.sa) == h);
}

int main(void) {
        static CU_TestInfo parse_tests[] = {
                { "parse_ipv4_loopback", test_parse_ipv4_loopback },
                { "parse_ipv4_any_port_zero", test_parse_ipv4_any_port_zero },
                { "parse_ipv6_loopback", test_parse_ipv6_loopback },
                { "parse_ipv6_any_max_port", test_parse_ipv6_any_max_port },
                { "parse_ipv4_mapped_ipv6", test_parse_ipv4_mapped_ipv6 },
                { "parse_ipv6_scope_loopback_interface", test_parse_ipv6_scope_loopback_interface },
                { "parse_leading_zeros_in_port", test_parse_leading_zeros_in_port },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo reject_tests[] = {
                { "reject_empty", test_reject_empty },
                { "reject_missing_port", test_reject_missing_port },
                { "reject_unbracketed_ipv6", test_reject_unbracketed_ipv6 },
                { "reject_bracket_without_port", test_reject_bracket_without_port },
                { "reject_missing_close_bracket", test_reject_missing_close_bracket },
                { "reject_bad_ipv4", test_reject_bad_ipv4 },
                { "reject_port_out_of_range", test_reject_port_out_of_range },
                { "reject_bad_port", test_reject_bad_port },
                { "reject_bad_ipv6", test_reject_bad_ipv6 },
                { "reject_unknown_scope_interface", test_reject_unknown_scope_interface },
                { "reject_without_error_pointer", test_reject_without_error_pointer },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo format_tests[] = {
                { "format_round_trip", test_format_round_trip },
                { "format_canonicalizes", test_format_canonicalizes },
                { "format_ip_has_no_port_or_brackets", test_format_ip_has_no_port_or_brackets },
                { "format_returns_buffer", test_format_returns_buffer },
                CU_TEST_INFO_NULL,
        };
        static CU_TestInfo compare_tests[] = {
                { "port_and_len", test_port_and_len },
                { "equal", test_equal },
                { "ip_equal_ignores_port", test_ip_equal_ignores_port },
                { "ip_equal_different_ip", test_ip_equal_different_ip },
                { "ip_hash_same_ip_different_port", test_ip_hash_same_ip_different_port },
                { "ip_hash_different_ip", test_ip_hash_different_ip },
                { "ip_hash_stable", test_ip_hash_stable },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "sockaddr parse", NULL, NULL, NULL, NULL, parse_tests },
                { "sockaddr reject", NULL, NULL, NULL, NULL, reject_tests },
                { "sockaddr format", NULL, NULL, NULL, NULL, format_tests },
                { "sockaddr compare", NULL, NULL, NULL, NULL, compare_tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
