/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef union SockaddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage storage;
} SockaddrUnion;

/* "[ffff:...:ffff%ifname]:65535" fits. */
#define SOCKADDR_STR_MAX 64

/* Parse "A.B.C.D:PORT" or "[IPV6]:PORT" (optionally "[fe80::1%lo]:PORT"). Only numeric addresses and
 * decimal ports 0..65535 are accepted. Returns 0 or -EINVAL with *ret_error naming what is wrong. */
int sockaddr_parse(const char *s, SockaddrUnion *ret, socklen_t *ret_len, const char **ret_error);

/* Format as "A.B.C.D:PORT" or "[IPV6]:PORT" into buf (SOCKADDR_STR_MAX bytes). Returns buf. */
char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Format only the address part, without port or brackets. */
char *sockaddr_format_ip(const struct sockaddr *sa, char *buf, size_t size);

socklen_t sockaddr_len(const struct sockaddr *sa);
uint16_t sockaddr_port(const struct sockaddr *sa);
bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

/* A stable hash of the address only (not the port), for per-IP accounting. */
uint64_t sockaddr_ip_hash(const struct sockaddr *sa);
bool sockaddr_ip_equal(const struct sockaddr *a, const struct sockaddr *b);
