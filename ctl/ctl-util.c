/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-util.h"

int exit_code_for(ControlError e) {
        switch (e) {
        case CONTROL_ERROR_PERMISSION_DENIED:
                return EXIT_PERMISSION;
        case CONTROL_ERROR_CONFIG_REJECTED:
                return EXIT_CONFIG_REJECTED;
        case CONTROL_ERROR_BAD_REQUEST:
        case CONTROL_ERROR_UNKNOWN_COMMAND:
                return EXIT_USAGE;
        case CONTROL_ERROR_CONNECT_FAILED:
                return EXIT_FAILED;
        default:
                return EXIT_FAILED;
        }
}

bool close_how_valid(const char *how) {
        static const char *const hows[] = { "close", "shutdown", "reset" };
        for (size_t i = 0; i < ELEMENTSOF(hows); i++)
                if (strcmp(how, hows[i]) == 0)
                        return true;
        return false;
}

void ctl_catch_interrupt(void (*handler)(int sig)) {
        struct sigaction sa = { .sa_handler = handler };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
}

int usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "tcpeductl %s: ", verb);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'tcpeductl %s --help'.\n", verb);
        return EXIT_USAGE;
}

int option_value(const char *verb, int argc, char **argv, int *i, const char *name, const char *short_name, const char **ret_value) {
        const char *s = argv[*i];
        size_t l = strlen(name);
        if (strncmp(s, name, l) == 0 && s[l] == '=') {
                *ret_value = s + l + 1;
                return 1;
        }
        if (strcmp(s, name) != 0 && (!short_name || strcmp(s, short_name) != 0))
                return 0;
        if (*i + 1 >= argc) {
                usage_error(verb, "option '%s' needs an argument", s);
                return -1;
        }
        *ret_value = argv[++*i];
        return 1;
}

int verb_args_parse(const char *verb, int argc, char **argv, const VerbOption *opts, size_t n_opts, const char *what,
                    const char **ret_positional) {
        const char *positional = NULL;
        for (int i = 1; i < argc; i++) {
                int r = 0;
                for (size_t k = 0; k < n_opts && r == 0; k++) {
                        if (opts[k].flag) {
                                if (strcmp(argv[i], opts[k].name) == 0) {
                                        *opts[k].flag = true;
                                        r = 1;
                                }
                        } else
                                r = option_value(verb, argc, argv, &i, opts[k].name, NULL, opts[k].value);
                }
                if (r < 0)
                        return EXIT_USAGE;
                if (r > 0)
                        continue;
                if (argv[i][0] == '-')
                        return usage_error(verb, "unknown option '%s'", argv[i]);
                if (positional)
                        return usage_error(verb, "too many arguments");
                positional = argv[i];
        }
        if (!positional)
                return usage_error(verb, "missing %s", what);
        *ret_positional = positional;
        return EXIT_OK;
}

int parse_seconds(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret_ms) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno != 0 || end == s || *end != 0 || !(d >= 0) || d * 1000.0 > (double)max_ms + 0.5)
                return -EINVAL;
        int64_t ms = (int64_t)(d * 1000.0 + 0.5);
        if (ms < min_ms)
                return -ERANGE;
        *ret_ms = ms;
        return 0;
}

int timeout_option(const char *verb, const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret_ms) {
        if (parse_seconds(s, min_ms, max_ms, ret_ms) < 0)
                return usage_error(verb, "--timeout must be a number of seconds from %g to %g, not '%s'", (double)min_ms / 1000.0,
                                   (double)max_ms / 1000.0, s);
        return EXIT_OK;
}

/* Split "HOST:PORT" or "[IPV6]:PORT" into host and port. With port_optional, also "HOST", "[IPV6]"
 * and a bare IPv6 address, with port "0". On error, *ret_error says what is wrong. */
static int split_host_port(const char *s, bool port_optional, char *host, size_t host_size, const char **ret_port, const char **ret_error) {
        const char *port = NULL;
        size_t hl;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close) {
                        *ret_error = "no ']' after the IPv6 address";
                        return -EINVAL;
                }
                hl = (size_t)(close - s - 1);
                s++;
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != 0) {
                        *ret_error = "expected ':PORT' after ']'";
                        return -EINVAL;
                }
        } else {
                const char *colon = strchr(s, ':');
                if (colon && strchr(colon + 1, ':')) {
                        if (!port_optional) {
                                *ret_error = "an IPv6 address is written [ADDR]:PORT";
                                return -EINVAL;
                        }
                        colon = NULL; /* a bare IPv6 address */
                }
                hl = colon ? (size_t)(colon - s) : strlen(s);
                if (colon)
                        port = colon + 1;
        }
        if (hl == 0) {
                *ret_error = "no host";
                return -EINVAL;
        }
        if (hl >= host_size) {
                *ret_error = "host name too long";
                return -EINVAL;
        }
        if (!port && !port_optional) {
                *ret_error = "no port (expected HOST:PORT)";
                return -EINVAL;
        }
        if (port && !*port) {
                *ret_error = "empty port";
                return -EINVAL;
        }
        memcpy(host, s, hl);
        host[hl] = 0;
        *ret_port = port ? port : "0";
        return 0;
}

static bool port_is_number(const char *p) {
        return strspn(p, "0123456789") == strlen(p);
}

/* A decimal port getaddrinfo would not take modulo 65536. */
static bool port_in_range(const char *p) {
        return strlen(p) <= 5 && atoi(p) <= 65535;
}

/* --bind ADDR[:PORT]: numeric only (inet_pton, so not the 1.2.3 getaddrinfo would take), port 0 when
 * there is none. */
static int parse_bind(const char *verb, const char *s, char *out, size_t size, int *ret_family) {
        char host[NI_MAXHOST];
        const char *port, *error;
        struct in_addr a4;
        if (split_host_port(s, true, host, sizeof(host), &port, &error) < 0)
                return usage_error(verb, "--bind '%s': %s", s, error);
        if (!port_is_number(port) || (!strchr(host, ':') && inet_pton(AF_INET, host, &a4) != 1))
                return usage_error(verb, "--bind '%s': expected a numeric ADDR[:PORT], IPv6 as [ADDR] or [ADDR]:PORT", s);
        if (!port_in_range(port))
                return usage_error(verb, "--bind '%s': port %s is out of range (0 to 65535)", s, port);
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *res = NULL;
        int r = getaddrinfo(host, port, &hints, &res);
        if (r != 0 || !res || (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
                if (res)
                        freeaddrinfo(res);
                return usage_error(verb, "--bind '%s': expected a numeric ADDR[:PORT], IPv6 as [ADDR] or [ADDR]:PORT", s);
        }
        sockaddr_format(res->ai_addr, out, size);
        *ret_family = res->ai_family;
        freeaddrinfo(res);
        return EXIT_OK;
}

int session_addresses_resolve(const char *verb, const char *target, const char *bind, SessionAddresses *ret) {
        char host[NI_MAXHOST];
        const char *port, *error;
        struct addrinfo *res = NULL;
        int family = AF_UNSPEC, r;

        *ret = (SessionAddresses){};
        if (split_host_port(target, false, host, sizeof(host), &port, &error) < 0)
                return usage_error(verb, "target '%s': %s", target, error);
        if (port_is_number(port) && !port_in_range(port))
                return usage_error(verb, "target '%s': port %s is out of range (1 to 65535)", target, port);
        /* Every address of the name, not only those of families configured here (AI_ADDRCONFIG off). */
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
        r = getaddrinfo(host, port, &hints, &res);
        if (r == EAI_SERVICE)
                return usage_error(verb, "target '%s': unknown port '%s'", target, port);
        if (r != 0) {
                fprintf(stderr, "tcpeductl: cannot resolve %s: %s\n", host, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return EXIT_FAILED;
        }
        if (bind && (r = parse_bind(verb, bind, ret->bind, sizeof(ret->bind), &family)) != EXIT_OK)
                goto finish;

        size_t max = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                max++;
        ret->targets = calloc(MAX(max, (size_t)1), sizeof(*ret->targets));
        if (!ret->targets) {
                fprintf(stderr, "tcpeductl: out of memory\n");
                r = EXIT_FAILED;
                goto finish;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                        continue;
                if (sockaddr_port(ai->ai_addr) == 0) {
                        r = usage_error(verb, "target '%s': port 0 cannot be connected to", target);
                        goto finish;
                }
                /* The local address must be of the target's family. */
                if (family != AF_UNSPEC && ai->ai_family != family)
                        continue;
                char *text = ret->targets[ret->n_targets];
                sockaddr_format(ai->ai_addr, text, SOCKADDR_STR_MAX);
                bool dup = false;
                for (size_t j = 0; j < ret->n_targets && !dup; j++)
                        dup = strcmp(ret->targets[j], text) == 0;
                if (!dup)
                        ret->n_targets++;
        }
        r = EXIT_OK;
        if (ret->n_targets == 0 && bind)
                r = usage_error(verb, "%s has no address of the family of --bind %s", target, bind);
        else if (ret->n_targets == 0) {
                fprintf(stderr, "tcpeductl: cannot resolve %s: no IPv4 or IPv6 address\n", host);
                r = EXIT_FAILED;
        }
finish:
        freeaddrinfo(res);
        if (r != EXIT_OK)
                session_addresses_done(ret);
        return r;
}

void session_addresses_done(SessionAddresses *a) {
        free(a->targets);
        *a = (SessionAddresses){};
}
