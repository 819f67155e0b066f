/* SPDX-License-Identifier: MIT */
#include "sockaddr-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *ret) {
        unsigned v = 0;
        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(*p - '0');
                if (v > 65535)
                        return -ERANGE;
        }
        *ret = (uint16_t)v;
        return 0;
}

/* Why the text is not an address, for the caller to show; always -EINVAL. */
static int parse_error(const char **ret_error, const char *why) {
        *ret_error = why;
        return -EINVAL;
}

/* "[ADDR]:PORT", ADDR optionally with "%IFNAME": the address and its scope into *u, the text after
 * "]:" into *ret_port. */
static int parse_ipv6_host(const char *s, SockaddrUnion *u, const char **ret_port, const char **ret_error) {
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        const char *end = strchr(s, ']');

        if (!end)
                return parse_error(ret_error, "missing ']' after IPv6 address");
        if (end[1] != ':')
                return parse_error(ret_error, "missing ':PORT' after ']'");
        size_t n = (size_t)(end - s - 1);
        if (n == 0 || n >= sizeof(host))
                return parse_error(ret_error, "bad IPv6 address");
        memcpy(host, s + 1, n);
        host[n] = 0;

        char *pct = strchr(host, '%');
        if (pct) {
                *pct = 0;
                unsigned idx = if_nametoindex(pct + 1);
                if (idx == 0)
                        return parse_error(ret_error, "unknown interface in IPv6 scope");
                u->in6.sin6_scope_id = idx;
        }
        if (inet_pton(AF_INET6, host, &u->in6.sin6_addr) != 1)
                return parse_error(ret_error, "bad IPv6 address");
        u->in6.sin6_family = AF_INET6;
        *ret_port = end + 2;
        return 0;
}

/* "ADDR:PORT" with a dotted-quad ADDR: the address into *u, the text after ':' into *ret_port. */
static int parse_ipv4_host(const char *s, SockaddrUnion *u, const char **ret_port, const char **ret_error) {
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        const char *colon = strrchr(s, ':');

        if (!colon)
                return parse_error(ret_error, "missing ':PORT'");
        if (memchr(s, ':', (size_t)(colon - s)))
                return parse_error(ret_error, "IPv6 addresses must be written as [ADDR]:PORT");
        size_t n = (size_t)(colon - s);
        if (n == 0 || n >= sizeof(host))
                return parse_error(ret_error, "bad IPv4 address");
        memcpy(host, s, n);
        host[n] = 0;
        /* inet_pton, unlike inet_aton, rejects "127.1" and octal forms. */
        if (inet_pton(AF_INET, host, &u->in.sin_addr) != 1)
                return parse_error(ret_error, "bad IPv4 address");
        u->in.sin_family = AF_INET;
        *ret_port = colon + 1;
        return 0;
}

int sockaddr_parse(const char *s, SockaddrUnion *ret, socklen_t *ret_len, const char **ret_error) {
        const char *port_str = NULL, *err = NULL;
        SockaddrUnion u = {};
        uint16_t port;
        int r;

        if (!s || !*s) {
                err = "empty address";
                goto fail;
        }
        r = s[0] == '[' ? parse_ipv6_host(s, &u, &port_str, &err) : parse_ipv4_host(s, &u, &port_str, &err);
        if (r < 0)
                goto fail;

        r = parse_port(port_str, &port);
        if (r < 0) {
                err = r == -ERANGE ? "port out of range (0-65535)" : "bad port";
                goto fail;
        }
        if (u.sa.sa_family == AF_INET6)
                u.in6.sin6_port = htons(port);
        else
                u.in.sin_port = htons(port);

        *ret = u;
        if (ret_len)
                *ret_len = sockaddr_len(&u.sa);
        return 0;

fail:
        if (ret_error)
                *ret_error = err;
        return -EINVAL;
}

char *sockaddr_format_ip(const struct sockaddr *sa, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];

        if (sa->sa_family == AF_INET) {
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
                snprintf(buf, size, "%s", ip);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                char ifname[IF_NAMESIZE];
                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                if (in6->sin6_scope_id && if_indextoname(in6->sin6_scope_id, ifname))
                        snprintf(buf, size, "%s%%%s", ip, ifname);
                else
                        snprintf(buf, size, "%s", ip);
        } else
                snprintf(buf, size, "(family %d)", sa->sa_family);
        return buf;
}

char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

        sockaddr_format_ip(sa, ip, sizeof(ip));
        if (sa->sa_family == AF_INET6)
                snprintf(buf, size, "[%s]:%u", ip, sockaddr_port(sa));
        else if (sa->sa_family == AF_INET)
                snprintf(buf, size, "%s:%u", ip, sockaddr_port(sa));
        else
                snprintf(buf, size, "%s", ip);
        return buf;
}

socklen_t sockaddr_len(const struct sockaddr *sa) {
        switch (sa->sa_family) {
        case AF_INET:
                return sizeof(struct sockaddr_in);
        case AF_INET6:
                return sizeof(struct sockaddr_in6);
        default:
                return sizeof(struct sockaddr_storage);
        }
}

uint16_t sockaddr_port(const struct sockaddr *sa) {
        if (sa->sa_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)sa)->sin_port);
        if (sa->sa_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        return 0;
}

bool sockaddr_ip_equal(const struct sockaddr *a, const struct sockaddr *b) {
        if (a->sa_family != b->sa_family)
                return false;
        if (a->sa_family == AF_INET)
                return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
        if (a->sa_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                              sizeof(struct in6_addr)) == 0 &&
                       ((const struct sockaddr_in6 *)a)->sin6_scope_id == ((const struct sockaddr_in6 *)b)->sin6_scope_id;
        return false;
}

bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b) {
        return sockaddr_ip_equal(a, b) && sockaddr_port(a) == sockaddr_port(b);
}

uint64_t sockaddr_ip_hash(const struct sockaddr *sa) {
        /* FNV-1a over the address bytes: peers cannot choose their address freely on TCP, and the
         * table it feeds is bounded by max_clients, so a keyed hash buys nothing here. */
        const uint8_t *p;
        size_t n;
        uint64_t h = UINT64_C(1469598103934665603);

        if (sa->sa_family == AF_INET) {
                p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
                n = 4;
        } else if (sa->sa_family == AF_INET6) {
                p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
                n = 16;
        } else
                return 0;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= UINT64_C(1099511628211);
        }
        return h ^ sa->sa_family;
}
