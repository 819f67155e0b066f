/* SPDX-License-Identifier: MIT */
/* The eBPF state source against the running kernel, over loopback: the exact state sequences of a
 * connection closed by the client first, as both ends' sockets went through them; a reset sent by
 * a SO_LINGER 0 close; silence about sockets nobody watches; the counters; IPv6; at most
 * KERNEL_BPF_EVENTS_PER_WAKEUP events per dispatch; the bounds of the watch maps. Root only: exits
 * 77 (skipped) otherwise, or when kernel_bpf_open() says the source is unavailable here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel-bpf.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

#define MAX_EVENTS 8192
#define DEADLINE_NS (5 * UINT64_C(1000000000))

/* the kernel's numbering */
enum { ESTABLISHED = 1, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN };

static const char *const state_name[] = {
        [ESTABLISHED] = "ESTABLISHED", [SYN_SENT] = "SYN_SENT",   [SYN_RECV] = "SYN_RECV", [FIN_WAIT1] = "FIN_WAIT1",
        [FIN_WAIT2] = "FIN_WAIT2",     [TIME_WAIT] = "TIME_WAIT", [CLOSE] = "CLOSE",       [CLOSE_WAIT] = "CLOSE_WAIT",
        [LAST_ACK] = "LAST_ACK",       [LISTEN] = "LISTEN",
};
static const char *const kind_name[_KERNEL_EVENT_KIND_MAX] = { "state", "retransmit", "reset-sent", "reset-received" };

/* What the suite shares: the loop, the source, and every event it delivered, in order. */
static struct {
        sd_event *event;
        KernelBpf *k;
        KernelEvent seen[MAX_EVENTS];
        size_t n;
        size_t overflow;
} t;

static void on_event(void *userdata, const KernelEvent *ev) {
        (void)userdata;
        if (t.n < MAX_EVENTS)
                t.seen[t.n++] = *ev;
        else
                t.overflow++;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *state_str(int s) {
        return s > 0 && s < (int)ELEMENTSOF(state_name) && state_name[s] ? state_name[s] : "?";
}

/* The index of the first event of cookie with this kind and new state after index from, or -1. */
static ssize_t find(size_t from, uint64_t cookie, KernelEventKind kind, int new_state) {
        for (size_t i = from; i < t.n; i++)
                if (t.seen[i].cookie == cookie && t.seen[i].kind == kind && (new_state < 0 || t.seen[i].new_state == new_state))
                        return (ssize_t)i;
        return -1;
}

/* That event, or one that matches no assertion. */
static const KernelEvent *get(uint64_t cookie, KernelEventKind kind, int new_state) {
        static const KernelEvent none = { .kind = _KERNEL_EVENT_KIND_MAX, .old_state = -1, .new_state = -1 };
        ssize_t i = find(0, cookie, kind, new_state);

        return i >= 0 ? &t.seen[i] : &none;
}

/* Run the loop until cookie's event arrives; false after 5 s. Waits for events, never sleeps. */
static bool wait_for(uint64_t cookie, KernelEventKind kind, int new_state) {
        uint64_t deadline = now_ns() + DEADLINE_NS;

        while (find(0, cookie, kind, new_state) < 0) {
                uint64_t now = now_ns();
                if (now >= deadline || sd_event_run(t.event, (deadline - now) / 1000) < 0)
                        return false;
        }
        return true;
}

static void dump(const char *who, uint64_t cookie) {
        printf("\n    %s (cookie %llu):", who, (unsigned long long)cookie);
        for (size_t i = 0; i < t.n; i++) {
                const KernelEvent *e = &t.seen[i];
                if (e->cookie != cookie)
                        continue;
                if (e->kind == KERNEL_EVENT_STATE)
                        printf(" %s->%s", state_str(e->old_state), state_str(e->new_state));
                else
                        printf(" [%s in %s]", kind_name[e->kind], state_str(e->new_state));
                printf("(%u:%u>%u:%u srtt %u)", e->saddr[3], e->sport, e->daddr[3], e->dport, e->srtt_us);
        }
}

static int listener(uint16_t *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                safe_close(fd);
                return -errno;
        }
        *ret_port = ntohs(a.sin_port);
        return fd;
}

static uint64_t cookie_of(int fd) {
        uint64_t cookie = 0;
        socklen_t len = sizeof(cookie);

        ASSERT_INTEQ(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
        return cookie;
}

static uint16_t local_port(int fd) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);

        ASSERT_INTEQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        return ntohs(a.sin_port);
}

static uint16_t local_port6(int fd) {
        struct sockaddr_in6 a;
        socklen_t len = sizeof(a);

        ASSERT_INTEQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        return ntohs(a.sin6_port);
}

/* A client socket to 127.0.0.1:port; its cookie is taken before connect() (and watched if asked).
 * Loopback completes the handshake inside connect(), so the peer is accept()ed at once. */
static int connect_to(uint16_t port, bool watch, uint64_t *ret_cookie) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        *ret_cookie = cookie_of(fd);
        if (watch)
                ASSERT_INTEQ(kernel_bpf_watch_cookie(t.k, *ret_cookie), 0);
        ASSERT_INTEQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        return fd;
}

typedef struct Step {
        int old_state, new_state;
} Step;

/* cookie's state events are exactly steps, in order, each stamped later than the one before and
 * within [t0, t1], all with the 4-tuple; the first may lack the local port (a client's CLOSE ->
 * SYN_SENT is reported before its port is chosen). */
static void assert_sequence(uint64_t cookie, const Step *steps, size_t n_steps, uint16_t sport, uint16_t dport, uint64_t t0, uint64_t t1) {
        static const uint8_t loopback[4] = { 127, 0, 0, 1 };
        uint64_t last = t0;
        size_t k = 0;

        for (size_t i = 0; i < t.n; i++) {
                const KernelEvent *e = &t.seen[i];
                if (e->cookie != cookie || e->kind != KERNEL_EVENT_STATE)
                        continue;
                ASSERT_TRUE(k < n_steps);
                if (k >= n_steps)
                        return;
                ASSERT_STREQ(state_str(e->old_state), state_str(steps[k].old_state));
                ASSERT_STREQ(state_str(e->new_state), state_str(steps[k].new_state));
                ASSERT_INTEQ(e->family, AF_INET);
                ASSERT_TRUE(e->time_ns > last);
                ASSERT_TRUE(e->time_ns <= t1);
                ASSERT_UINTEQ(e->total_retrans, 0);
                last = e->time_ns;
                ASSERT_UINTEQ(k == 0 && e->sport == 0 ? sport : e->sport, sport);
                ASSERT_UINTEQ(e->dport, dport);
                ASSERT_TRUE(memcmp(e->saddr, loopback, 4) == 0);
                ASSERT_TRUE(memcmp(e->daddr, loopback, 4) == 0);
                k++;
        }
        ASSERT_UINTEQ(k, n_steps);
}

static void test_close_by_client(void) {
        static const Step server[] = {
                { LISTEN, SYN_RECV }, { SYN_RECV, ESTABLISHED }, { ESTABLISHED, CLOSE_WAIT }, { CLOSE_WAIT, LAST_ACK }, { LAST_ACK, CLOSE },
        };
        /* FIN_WAIT2 -> CLOSE: the socket is done; the 4-tuple lives on as a timewait socket,
         * which is not a struct sock and makes no transition of its own */
        static const Step client[] = {
                { CLOSE, SYN_SENT }, { SYN_SENT, ESTABLISHED }, { ESTABLISHED, FIN_WAIT1 }, { FIN_WAIT1, FIN_WAIT2 }, { FIN_WAIT2, CLOSE },
        };
        _cleanup_(closep) int l = -1;
        int c, a;
        uint64_t cookie_c, cookie_a, t0, t1;
        uint16_t port, cport;

        l = listener(&port);
        ASSERT_TRUE(l >= 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, port), 0);
        t0 = now_ns();
        c = connect_to(port, true, &cookie_c);
        a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(a >= 0);
        cookie_a = cookie_of(a);
        cport = local_port(c);

        safe_close(c);
        ASSERT_TRUE(wait_for(cookie_a, KERNEL_EVENT_STATE, CLOSE_WAIT));
        safe_close(a);
        ASSERT_TRUE(wait_for(cookie_a, KERNEL_EVENT_STATE, CLOSE));
        ASSERT_TRUE(wait_for(cookie_c, KERNEL_EVENT_STATE, CLOSE));
        t1 = now_ns();
        dump("server child", cookie_a);
        dump("client", cookie_c);

        assert_sequence(cookie_a, server, ELEMENTSOF(server), port, cport, t0, t1);
        assert_sequence(cookie_c, client, ELEMENTSOF(client), cport, port, t0, t1);
        /* the handshake measured a round trip before the client's FIN */
        ASSERT_TRUE(get(cookie_c, KERNEL_EVENT_STATE, FIN_WAIT1)->srtt_us > 0);
        ASSERT_INTEQ(find(0, cookie_c, KERNEL_EVENT_RESET_SENT, -1), -1);
        ASSERT_INTEQ(find(0, cookie_a, KERNEL_EVENT_RESET_RECEIVED, -1), -1);
        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, port), 0);
        ASSERT_INTEQ(kernel_bpf_unwatch_cookie(t.k, cookie_c), 0);
}

static void test_linger_zero_resets(void) {
        static const struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
        _cleanup_(closep) int l = -1, a = -1;
        const KernelEvent *e;
        uint64_t cookie_c, cookie_a;
        uint16_t port, cport;
        int c;

        l = listener(&port);
        ASSERT_TRUE(l >= 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, port), 0);
        c = connect_to(port, true, &cookie_c);
        a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(a >= 0);
        cookie_a = cookie_of(a);
        cport = local_port(c);
        ASSERT_INTEQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)), 0);

        safe_close(c);
        ASSERT_TRUE(wait_for(cookie_c, KERNEL_EVENT_RESET_SENT, -1));
        ASSERT_TRUE(wait_for(cookie_a, KERNEL_EVENT_RESET_RECEIVED, -1));
        ASSERT_TRUE(wait_for(cookie_a, KERNEL_EVENT_STATE, CLOSE));
        dump("aborting client", cookie_c);
        dump("its server child", cookie_a);

        /* tcp_disconnect() moves to CLOSE, then sends the reset; the port is the one it had */
        e = get(cookie_c, KERNEL_EVENT_RESET_SENT, -1);
        ASSERT_STREQ(state_str(e->old_state), "CLOSE");
        ASSERT_STREQ(state_str(e->new_state), "CLOSE");
        ASSERT_UINTEQ(e->sport, cport);
        ASSERT_UINTEQ(e->dport, port);
        e = get(cookie_a, KERNEL_EVENT_RESET_RECEIVED, -1);
        ASSERT_STREQ(state_str(e->new_state), "ESTABLISHED");
        ASSERT_UINTEQ(e->sport, port);
        ASSERT_UINTEQ(e->dport, cport);
        /* no FIN went out: the client went from ESTABLISHED straight to CLOSE */
        ASSERT_INTEQ(find(0, cookie_c, KERNEL_EVENT_STATE, FIN_WAIT1), -1);
        ASSERT_TRUE(find(0, cookie_c, KERNEL_EVENT_STATE, CLOSE) >= 0);
        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, port), 0);
        ASSERT_INTEQ(kernel_bpf_unwatch_cookie(t.k, cookie_c), 0);
}

/* A connection on a port nobody watches, then one that is watched: events come in order, so once
 * the second one's have arrived, any of the first would have too. */
static void test_unwatched_is_silent(void) {
        _cleanup_(closep) int wl = -1, wc = -1;
        int l, c, a, wa;
        uint64_t cookie_c, cookie_a, cookie_wc, cookie_w;
        KernelBpfStats before, after;
        uint16_t port, wport;
        size_t from = t.n;

        kernel_bpf_stats(t.k, &before);
        l = listener(&port);
        ASSERT_TRUE(l >= 0);
        c = connect_to(port, false, &cookie_c);
        a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(a >= 0);
        cookie_a = cookie_of(a);
        safe_close(c);
        safe_close(a);
        safe_close(l);

        wl = listener(&wport);
        ASSERT_TRUE(wl >= 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, wport), 0);
        wc = connect_to(wport, false, &cookie_wc); /* its own port is not watched, nor its cookie */
        ASSERT_TRUE(wc >= 0);
        wa = accept4(wl, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(wa >= 0);
        cookie_w = cookie_of(wa);
        safe_close(wa);
        ASSERT_TRUE(wait_for(cookie_w, KERNEL_EVENT_STATE, FIN_WAIT2));

        for (size_t i = from; i < t.n; i++) {
                const KernelEvent *e = &t.seen[i];
                ASSERT_TRUE(e->cookie != cookie_c && e->cookie != cookie_a && e->cookie != cookie_wc);
                ASSERT_TRUE(e->sport != port && e->dport != port);
        }
        kernel_bpf_stats(t.k, &after);
        printf("\n    stats: %llu events, %llu filtered, %llu dropped", (unsigned long long)after.events,
               (unsigned long long)after.filtered, (unsigned long long)after.dropped);
        ASSERT_UINTEQ(after.events, t.n + t.overflow);
        ASSERT_TRUE(after.events > before.events);
        /* at least the unwatched pair's handshakes and closes, and the watched child's peer */
        ASSERT_TRUE(after.filtered >= before.filtered + 6);
        ASSERT_UINTEQ(after.dropped, 0);
        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, wport), 0);
}

/* IPv6: the family and both 16-byte addresses. */
static void test_ipv6(void) {
        struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        socklen_t len = sizeof(addr);
        _cleanup_(closep) int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1;
        uint64_t cookie_a;
        const KernelEvent *e;

        ASSERT_TRUE(l >= 0);
        if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                printf("\n    no ::1 here (%s): nothing to check", strerror(errno));
                return;
        }
        ASSERT_INTEQ(listen(l, 4), 0);
        ASSERT_INTEQ(getsockname(l, (struct sockaddr *)&addr, &len), 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, ntohs(addr.sin6_port)), 0);
        c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_INTEQ(connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
        a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(a >= 0);
        cookie_a = cookie_of(a);
        ASSERT_TRUE(wait_for(cookie_a, KERNEL_EVENT_STATE, ESTABLISHED));

        e = get(cookie_a, KERNEL_EVENT_STATE, ESTABLISHED);
        ASSERT_INTEQ(e->family, AF_INET6);
        ASSERT_TRUE(memcmp(e->saddr, &in6addr_loopback, 16) == 0);
        ASSERT_TRUE(memcmp(e->daddr, &in6addr_loopback, 16) == 0);
        ASSERT_UINTEQ(e->sport, ntohs(addr.sin6_port));
        ASSERT_UINTEQ(e->dport, local_port6(c));
        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, ntohs(addr.sin6_port)), 0);
}

/* Events pile up while the loop does not run; one dispatch delivers at most the bound, and the rest
 * follow on the next ones without a new wakeup from the kernel. */
static void test_bounded_dispatch(void) {
        enum { N = 40 };
        int cs[N], as[N];
        uint64_t cookies[N];
        uint16_t port;
        size_t n0;
        _cleanup_(closep) int l = listener(&port);

        ASSERT_TRUE(l >= 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, port), 0);
        for (int i = 0; i < N; i++) {
                cs[i] = connect_to(port, true, &cookies[i]);
                as[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        }
        n0 = t.n;
        ASSERT_TRUE(sd_event_run(t.event, 0) > 0);
        ASSERT_UINTEQ(t.n - n0, KERNEL_BPF_EVENTS_PER_WAKEUP);
        ASSERT_TRUE(sd_event_run(t.event, 0) > 0);
        ASSERT_UINTEQ(t.n - n0, 2 * KERNEL_BPF_EVENTS_PER_WAKEUP);
        /* 4 per connection: the child's two, the client's two */
        ASSERT_TRUE(wait_for(cookies[N - 1], KERNEL_EVENT_STATE, ESTABLISHED));
        for (int i = 0; i < N; i++) {
                safe_close(cs[i]);
                safe_close(as[i]);
                ASSERT_INTEQ(kernel_bpf_unwatch_cookie(t.k, cookies[i]), 0);
        }
        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, port), 0);
}

static void test_watch_bounds(void) {
        const uint64_t base = UINT64_C(1) << 62; /* far beyond any cookie the kernel has handed out */
        int r = 0;

        ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, 9), -ENOENT);
        ASSERT_INTEQ(kernel_bpf_unwatch_cookie(t.k, base), -ENOENT);
        for (unsigned i = 0; i < KERNEL_BPF_MAX_PORTS && r == 0; i++)
                r = kernel_bpf_watch_port(t.k, (uint16_t)(60000 - i));
        ASSERT_INTEQ(r, 0);
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, 60000), 0); /* again: no new entry */
        ASSERT_INTEQ(kernel_bpf_watch_port(t.k, 60000 - KERNEL_BPF_MAX_PORTS), -ENOSPC);
        for (unsigned i = 0; i < KERNEL_BPF_MAX_PORTS; i++)
                ASSERT_INTEQ(kernel_bpf_unwatch_port(t.k, (uint16_t)(60000 - i)), 0);

        for (uint64_t i = 0; i < KERNEL_BPF_MAX_COOKIES && r == 0; i++)
                r = kernel_bpf_watch_cookie(t.k, base + i);
        ASSERT_INTEQ(r, 0);
        ASSERT_INTEQ(kernel_bpf_watch_cookie(t.k, base + KERNEL_BPF_MAX_COOKIES), -ENOSPC);
        for (uint64_t i = 0; i < KERNEL_BPF_MAX_COOKIES; i++)
                r = kernel_bpf_unwatch_cookie(t.k, base + i) < 0 ? -1 : r;
        ASSERT_INTEQ(r, 0);
        ASSERT_INTEQ(kernel_bpf_watch_cookie(t.k, base), 0); /* room again */
        ASSERT_INTEQ(kernel_bpf_unwatch_cookie(t.k, base), 0);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "close_by_client", test_close_by_client },
                { "linger_zero_resets", test_linger_zero_resets },
                { "unwatched_is_silent", test_unwatched_is_silent },
                { "ipv6", test_ipv6 },
                { "bounded_dispatch", test_bounded_dispatch },
                { "watch_bounds", test_watch_bounds },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "kernel bpf", NULL, NULL, NULL, NULL, tests },
                CU_SUITE_INFO_NULL,
        };
        char why[256] = "";
        int r;

        if (geteuid() != 0) {
                printf("SKIP: not root (loading BPF programs needs CAP_BPF and CAP_PERFMON)\n");
                return 77;
        }
        r = sd_event_new(&t.event);
        if (r < 0) {
                fprintf(stderr, "sd_event_new: %s\n", strerror(-r));
                return 1;
        }
        r = kernel_bpf_open(t.event, on_event, NULL, &t.k, why, sizeof(why));
        if (r < 0) {
                printf("SKIP: %s\n", why);
                sd_event_unref(t.event);
                return 77;
        }
        r = test_main(suites);
        t.k = kernel_bpf_free(t.k);
        t.event = sd_event_unref(t.event);
        return r;
}
