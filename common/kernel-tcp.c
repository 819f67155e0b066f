/* SPDX-License-Identifier: MIT */
#include "kernel-tcp.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

int tcp_info_get(int fd, struct tcp_info *ret) {
        socklen_t len = sizeof(*ret);
        memset(ret, 0, sizeof(*ret));
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ret, &len) < 0)
                return negative_errno();
        return 0;
}

int tcp_kernel_state(int fd) {
        struct tcp_info ti;
        int r = tcp_info_get(fd, &ti);
        if (r < 0)
                return r;
        return ti.tcpi_state;
}

int sock_diag_open(void) {
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return negative_errno();
        return fd;
}

static void fill_addr(const struct sockaddr *sa, __be16 *port, __be32 addr[4]) {
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                *port = in->sin_port;
                addr[0] = in->sin_addr.s_addr;
        } else {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                *port = in6->sin6_port;
                memcpy(addr, &in6->sin6_addr, 16);
        }
}

int sock_diag_lookup(int nl_fd, const struct sockaddr *local, const struct sockaddr *remote, SockDiagResult *ret) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {
                .nlh = {
                        .nlmsg_len = sizeof(msg),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST,
                },
                .req = {
                        .sdiag_family = (uint8_t)local->sa_family,
                        .sdiag_protocol = IPPROTO_TCP,
                        .idiag_states = ~0U,
                        .id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
                },
        };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        union {
                struct nlmsghdr nlh;
                char buf[8192];
        } reply;
        static uint32_t seq;

        if (local->sa_family != remote->sa_family || (local->sa_family != AF_INET && local->sa_family != AF_INET6))
                return -EAFNOSUPPORT;

        msg.nlh.nlmsg_seq = ++seq;
        fill_addr(local, &msg.req.id.idiag_sport, msg.req.id.idiag_src);
        fill_addr(remote, &msg.req.id.idiag_dport, msg.req.id.idiag_dst);

        if (sendto(nl_fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
                return negative_errno();

        for (;;) {
                ssize_t n = recv(nl_fd, &reply, sizeof(reply), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                for (struct nlmsghdr *h = &reply.nlh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_seq != msg.nlh.nlmsg_seq)
                                continue; /* a stale answer to an earlier, abandoned request */
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                        return -EBADMSG;
                                return e->error == 0 ? -ENOENT : e->error;
                        }
                        if (h->nlmsg_type == NLMSG_DONE)
                                return -ENOENT;
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                                return -EBADMSG;
                        const struct inet_diag_msg *d = NLMSG_DATA(h);
                        /* An exact lookup falls back to the listener on the local address when the
                         * 4-tuple itself is gone: that is not the socket asked for. */
                        if (d->id.idiag_sport != msg.req.id.idiag_sport || d->id.idiag_dport != msg.req.id.idiag_dport ||
                            memcmp(d->id.idiag_src, msg.req.id.idiag_src, local->sa_family == AF_INET ? 4 : 16) != 0 ||
                            memcmp(d->id.idiag_dst, msg.req.id.idiag_dst, local->sa_family == AF_INET ? 4 : 16) != 0)
                                return -ENOENT;
                        *ret = (SockDiagResult){
                                .state = d->idiag_state,
                                .cookie = (uint64_t)d->id.idiag_cookie[0] | ((uint64_t)d->id.idiag_cookie[1] << 32),
                                .timer_ms = d->idiag_expires,
                        };
                        return 0;
                }
        }
}
