/* SPDX-License-Identifier: MIT */
#pragma once

/* tcpedu-bench: shared pieces of the load generator. Each mode runs in worker threads, one epoll
 * set per worker; the main thread only starts them, prints progress and collects the results. */

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EXIT_USAGE 64

typedef enum Mode {
        MODE_ECHO,
        MODE_CHURN,
        MODE_IDLE,
        MODE_CHAT,
        MODE_ENHANCED,
        _MODE_MAX,
        _MODE_INVALID = -1,
} Mode;

typedef struct Options {
        Mode mode;
        struct sockaddr_storage target;
        socklen_t target_len;
        unsigned conns; /* echo, enhanced, idle: connections; churn: concurrent workers */
        unsigned size; /* bytes per message */
        unsigned pipeline; /* messages in flight per connection (chat: per broadcaster) */
        unsigned threads;
        unsigned sources; /* idle, churn: 127.0.0.1 .. 127.0.0.N as source addresses */
        unsigned members, broadcasters, stalled; /* chat */
        double duration; /* seconds; 0 with count == 0: idle holds until signalled */
        uint64_t count; /* round trips, connections or messages per broadcaster; 0: use duration */
        bool json, quiet;
        int rss_pid; /* idle: read this process's VmRSS */
} Options;

/* ---- latency histogram (nanoseconds, log-linear: 32 sub-buckets per power of two) ---- */

#define HIST_BUCKETS (64 + 35 * 32)
typedef struct Hist {
        uint64_t n;
        uint64_t b[HIST_BUCKETS];
} Hist;

void hist_add(Hist *h, uint64_t ns);
void hist_merge(Hist *into, const Hist *from);
/* The value below which a fraction q (0..1) of the samples lie, in nanoseconds; 0 if empty. */
double hist_quantile(const Hist *h, double q);

/* ---- one worker's counters: written by the worker, read by the main thread for progress ---- */

typedef struct Stats {
        _Atomic uint64_t ops; /* round trips, connections, deliveries, requests (counted while running) */
        _Atomic uint64_t bytes; /* bytes received and verified */
        _Atomic uint64_t failures; /* churn: failed connections; idle: failed connects */
        _Atomic uint64_t open; /* idle: connections open now */
        uint64_t sent_msgs, dropped; /* chat: messages sent; stalled members the server dropped */
        Hist lat;
        char error[256]; /* the first error, empty if none */
} Stats;

typedef struct Worker {
        const Options *opt;
        unsigned id, first, n; /* connections first .. first + n - 1 of opt->conns */
        uint64_t quota; /* count mode: this worker's share */
        Stats st;
        void *(*run)(void *worker);
        atomic_bool finished;
        pthread_t thread;
} Worker;

/* Set by the main thread (deadline, SIGINT, SIGTERM): stop starting new work, drain, return. */
extern atomic_bool bench_stop;
/* Workers wait here once connected; the main thread starts the clock when all arrived. */
extern pthread_barrier_t bench_ready;

uint64_t now_ns(void);
void worker_fail(Worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sockets: non-blocking TCP to opt->target, from 127.0.0.<1 + idx % sources> when sources > 1.
 * blocking=true waits for the handshake (up to 5 s). fd or -errno. */
int bench_connect(const Options *opt, unsigned idx, bool blocking);
/* Deterministic test data: pattern_bin[i] == pattern_bin[i % PATTERN_SIZE] for i < 2 * PATTERN_SIZE,
 * pattern_txt likewise but only [a-z]: a slice of up to PATTERN_SIZE bytes from any offset below
 * PATTERN_SIZE is contiguous. */
#define PATTERN_SIZE 65536u
extern uint8_t pattern_bin[2 * PATTERN_SIZE];
extern char pattern_txt[2 * PATTERN_SIZE];
void pattern_init(void);

void *run_stream(void *worker); /* echo, enhanced */
void *run_churn(void *worker);
void *run_idle(void *worker);
void *run_chat(void *worker);
