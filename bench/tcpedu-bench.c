/* SPDX-License-Identifier: MIT */
/* tcpedu-bench: a load generator for tcpedud (and any echo or chat server speaking its protocols).
 * One process, epoll, optional threads; verifies everything that comes back. Exit status: 0 ok,
 * 1 a verification failed or errors happened, 64 usage. */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

atomic_bool bench_stop;
pthread_barrier_t bench_ready;

static const char *const mode_names[_MODE_MAX] = {
        [MODE_ECHO] = "echo", [MODE_CHURN] = "churn", [MODE_IDLE] = "idle", [MODE_CHAT] = "chat", [MODE_ENHANCED] = "enhanced",
};
static const uint16_t mode_ports[_MODE_MAX] = {
        [MODE_ECHO] = 7007, [MODE_CHURN] = 7007, [MODE_IDLE] = 7007, [MODE_CHAT] = 7009, [MODE_ENHANCED] = 7008,
};

static void help(void) {
        printf("Usage: tcpedu-bench MODE [OPTIONS] [ADDR:PORT]\n"
               "\n"
               "Load generator for tcpedud's servers; checks every byte that comes back.\n"
               "ADDR:PORT defaults to 127.0.0.1:7007 (echo, churn, idle), :7008 (enhanced), :7009 (chat).\n"
               "\n"
               "Modes:\n"
               "  echo       C connections send S-byte messages, P in flight each: round trips/s, MiB/s, latency\n"
               "  enhanced   the same with the enhanced server's JSON echo command: requests/s, latency\n"
               "  churn      C workers: connect, echo 16 bytes, close, again: connections/s, failures\n"
               "  idle       open C connections and hold them (-d seconds, or until SIGINT/SIGTERM), then\n"
               "             check each still echoes; --rss-pid reads the server's memory per connection\n"
               "  chat       M members join (JSON chat protocol), B of them broadcast S-byte messages, P in\n"
               "             flight each: deliveries/s, send-to-last-member latency; the server needs\n"
               "             max_rate = 0 (or a count under it) and a max_queue that holds a user list\n"
               "\n"
               "Options:\n"
               "  -c, --connections=C    connections (echo, enhanced, idle) or workers (churn) [50; idle 1000]\n"
               "  -s, --size=S           bytes per message (echo 1-1M, enhanced and chat 8-60000) [1024; chat 200]\n"
               "  -p, --pipeline=P       messages in flight per connection or broadcaster [1; chat 16]\n"
               "  -d, --duration=SECS    how long to run (fractions allowed) [5]; idle: 0 holds until signalled\n"
               "  -n, --count=N          run N round trips / connections / messages per broadcaster instead\n"
               "  -t, --threads=T        worker threads, each with its own connections and epoll set [1]\n"
               "      --sources=N        spread connections over 127.0.0.1..127.0.0.N [idle: 1 per 20000]\n"
               "  -m, --members=M        chat members [100]\n"
               "  -b, --broadcasters=B   chat members that send [4]\n"
               "      --stalled=N        chat: N more members that join and never read [0]\n"
               "      --rss-pid=PID      idle: report this process's RSS before and while holding\n"
               "      --json             the result as one JSON object on stdout\n"
               "  -q, --quiet            no progress line on stderr\n"
               "  -h, --help             this text\n"
               "\n"
               "Exit status: 0 success, 1 verification failed or errors, 64 usage.\n");
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the problem; returns -EXIT_USAGE. */
static int usage(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("tcpedu-bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'tcpedu-bench --help'.\n", stderr);
        return -EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_target(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[64];
        const char *colon = strrchr(s, ':');
        unsigned long long port;
        if (!colon || (size_t)(colon - s) >= sizeof(host) || parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
                return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        memset(ret, 0, sizeof(*ret));
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;
                host[hl - 1] = 0;
                if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
                        return -EINVAL;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                *ret_len = sizeof(*a);
                return 0;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)ret;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                return -EINVAL;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        *ret_len = sizeof(*a);
        return 0;
}

static int parse_options(int argc, char **argv, Options *o) {
        enum { OPT_SOURCES = 256, OPT_STALLED, OPT_RSS_PID, OPT_JSON };
        static const struct option longopts[] = {
                { "connections", required_argument, NULL, 'c' },
                { "size", required_argument, NULL, 's' },
                { "pipeline", required_argument, NULL, 'p' },
                { "duration", required_argument, NULL, 'd' },
                { "count", required_argument, NULL, 'n' },
                { "threads", required_argument, NULL, 't' },
                { "members", required_argument, NULL, 'm' },
                { "broadcasters", required_argument, NULL, 'b' },
                { "sources", required_argument, NULL, OPT_SOURCES },
                { "stalled", required_argument, NULL, OPT_STALLED },
                { "rss-pid", required_argument, NULL, OPT_RSS_PID },
                { "json", no_argument, NULL, OPT_JSON },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        long long conns = -1, size = -1, pipeline = -1, sources = -1;
        unsigned long long v;
        char *end;
        int c;

        *o = (Options){ .threads = 1, .members = 100, .broadcasters = 4, .duration = 5 };
        while ((c = getopt_long(argc, argv, "c:s:p:d:n:t:m:b:qh", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'c':
                        if (parse_uint(optarg, 1000000, &v) < 0 || v == 0)
                                return usage("--connections: a number from 1 to 1000000, not '%s'", optarg);
                        conns = (long long)v;
                        break;
                case 's':
                        if (parse_uint(optarg, 1 << 20, &v) < 0 || v == 0)
                                return usage("--size: a number of bytes from 1 to 1048576, not '%s'", optarg);
                        size = (long long)v;
                        break;
                case 'p':
                        if (parse_uint(optarg, 4096, &v) < 0 || v == 0)
                                return usage("--pipeline: a number from 1 to 4096, not '%s'", optarg);
                        pipeline = (long long)v;
                        break;
                case 'd':
                        errno = 0;
                        o->duration = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(o->duration >= 0) || o->duration > 86400)
                                return usage("--duration: seconds from 0 to 86400, not '%s'", optarg);
                        break;
                case 'n':
                        if (parse_uint(optarg, UINT64_MAX / 2, &v) < 0 || v == 0)
                                return usage("--count: a positive number, not '%s'", optarg);
                        o->count = v;
                        break;
                case 't':
                        if (parse_uint(optarg, 64, &v) < 0 || v == 0)
                                return usage("--threads: a number from 1 to 64, not '%s'", optarg);
                        o->threads = (unsigned)v;
                        break;
                case 'm':
                        if (parse_uint(optarg, 100000, &v) < 0 || v == 0)
                                return usage("--members: a number from 1 to 100000, not '%s'", optarg);
                        o->members = (unsigned)v;
                        break;
                case 'b':
                        if (parse_uint(optarg, 1000, &v) < 0 || v == 0)
                                return usage("--broadcasters: a number from 1 to 1000, not '%s'", optarg);
                        o->broadcasters = (unsigned)v;
                        break;
                case OPT_SOURCES:
                        if (parse_uint(optarg, 254, &v) < 0 || v == 0)
                                return usage("--sources: a number from 1 to 254, not '%s'", optarg);
                        sources = (long long)v;
                        break;
                case OPT_STALLED:
                        if (parse_uint(optarg, 1000, &v) < 0)
                                return usage("--stalled: a number from 0 to 1000, not '%s'", optarg);
                        o->stalled = (unsigned)v;
                        break;
                case OPT_RSS_PID:
                        if (parse_uint(optarg, 1 << 22, &v) < 0 || v == 0)
                                return usage("--rss-pid: a process id, not '%s'", optarg);
                        o->rss_pid = (int)v;
                        break;
                case OPT_JSON:
                        o->json = true;
                        break;
                case 'q':
                        o->quiet = true;
                        break;
                default:
                        return usage("unknown option");
                }
        }
        if (optind >= argc)
                return usage("which mode? echo, enhanced, churn, idle or chat");
        o->mode = _MODE_INVALID;
        for (int m = 0; m < _MODE_MAX; m++)
                if (strcmp(argv[optind], mode_names[m]) == 0)
                        o->mode = (Mode)m;
        if (o->mode == _MODE_INVALID)
                return usage("unknown mode '%s': echo, enhanced, churn, idle or chat", argv[optind]);
        optind++;
        if (optind < argc) {
                if (parse_target(argv[optind], &o->target, &o->target_len) < 0)
                        return usage("not an address: '%s' (ADDR:PORT or [ADDR6]:PORT)", argv[optind]);
                optind++;
        } else {
                char def[32];
                snprintf(def, sizeof(def), "127.0.0.1:%u", mode_ports[o->mode]);
                (void)parse_target(def, &o->target, &o->target_len);
        }
        if (optind < argc)
                return usage("unexpected argument '%s'", argv[optind]);

        bool chat = o->mode == MODE_CHAT;
        o->conns = conns > 0 ? (unsigned)conns : o->mode == MODE_IDLE ? 1000 : 50;
        o->size = size > 0 ? (unsigned)size : chat ? 200 : 1024;
        o->pipeline = pipeline > 0 ? (unsigned)pipeline : chat ? 16 : 1;
        o->sources = sources > 0 ? (unsigned)sources : o->mode == MODE_IDLE ? o->conns / 20000 + 1 : 1;
        if ((chat || o->mode == MODE_ENHANCED) && (o->size < 8 || o->size > 60000))
                return usage("--size: %s messages take 8 to 60000 bytes", mode_names[o->mode]);
        if (chat && o->broadcasters > o->members)
                return usage("--broadcasters: more than the %u members", o->members);
        if ((chat || o->mode == MODE_IDLE) && o->threads > 1)
                return usage("--threads: %s runs in one thread", mode_names[o->mode]);
        if (o->threads > o->conns && !chat)
                o->threads = o->conns;
        if (o->mode != MODE_IDLE && o->duration == 0 && o->count == 0)
                return usage("--duration 0 only holds idle connections; give a duration or a count");
        if (o->sources > 1 && o->target.ss_family != AF_INET)
                return usage("--sources: only for an IPv4 target");
        return 1;
}

static void *worker_main(void *arg) {
        Worker *w = arg;
        w->run(w);
        atomic_store(&w->finished, true);
        return NULL;
}

static void on_signal(int sig) {
        (void)sig;
        atomic_store(&bench_stop, true);
}

static long rss_kib(int pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        FILE *f = fopen(path, "re");
        long kib = -1;
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* Room for every connection plus slack. Raising the hard limit needs privilege; without it the
 * soft limit goes as high as the hard one allows and connects fail with EMFILE beyond. */
static void raise_nofile(rlim_t need) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
                return;
        if (rl.rlim_max < need) {
                struct rlimit want = { need, need };
                if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                        return;
        }
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
}

typedef struct Totals {
        uint64_t ops, bytes, failures, open, sent_msgs, dropped;
} Totals;

static Totals totals(Worker *w, unsigned n) {
        Totals t = {};
        for (unsigned i = 0; i < n; i++) {
                t.ops += atomic_load(&w[i].st.ops);
                t.bytes += atomic_load(&w[i].st.bytes);
                t.failures += atomic_load(&w[i].st.failures);
                t.open += atomic_load(&w[i].st.open);
                t.sent_msgs += w[i].st.sent_msgs;
                t.dropped += w[i].st.dropped;
        }
        return t;
}

static void sleep_s(double s) {
        struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !atomic_load(&bench_stop))
                ;
}

/* ---- the result: one list of rows, printed as a table or as JSON ---- */

typedef struct Row {
        const char *key, *label, *unit;
        double value;
        int decimals;
} Row;

typedef struct Result {
        Row rows[32];
        unsigned n;
} Result;

static void row(Result *r, const char *key, const char *label, double value, int decimals, const char *unit) {
        if (r->n < sizeof(r->rows) / sizeof(r->rows[0]))
                r->rows[r->n++] = (Row){ key, label, unit, value, decimals };
}

static void latency_rows(Result *r, const Hist *h, bool p95) {
        row(r, "latency_p50_us", "latency p50", hist_quantile(h, 0.50) / 1e3, 1, "us");
        if (p95)
                row(r, "latency_p95_us", "latency p95", hist_quantile(h, 0.95) / 1e3, 1, "us");
        row(r, "latency_p99_us", "latency p99", hist_quantile(h, 0.99) / 1e3, 1, "us");
        row(r, "latency_p999_us", "latency p99.9", hist_quantile(h, 0.999) / 1e3, 1, "us");
}

static void print_result(const Options *o, const Result *r, const char *target, const char *error) {
        if (o->json) {
                struct json_object *j = json_object_new_object();
                json_object_object_add(j, "mode", json_object_new_string(mode_names[o->mode]));
                json_object_object_add(j, "target", json_object_new_string(target));
                json_object_object_add(j, "ok", json_object_new_boolean(!error));
                json_object_object_add(j, "error", error ? json_object_new_string(error) : NULL);
                for (unsigned i = 0; i < r->n; i++) {
                        const Row *w = &r->rows[i];
                        char num[64];
                        snprintf(num, sizeof(num), "%.*f", w->decimals, w->value);
                        json_object_object_add(j, w->key,
                                               w->decimals == 0 ? json_object_new_int64((int64_t)llround(w->value))
                                                                : json_object_new_double_s(w->value, num));
                }
                printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                json_object_put(j);
                return;
        }
        printf("%-24s %s\n", "mode", mode_names[o->mode]);
        printf("%-24s %s\n", "target", target);
        for (unsigned i = 0; i < r->n; i++)
                printf("%-24s %14.*f %s\n", r->rows[i].label, r->rows[i].decimals, r->rows[i].value, r->rows[i].unit);
        printf("%-24s %s\n", "result", error ? "FAILED" : "ok");
}

int main(int argc, char **argv) {
        Options o;
        int r = parse_options(argc, argv, &o);
        if (r <= 0)
                return -r; /* --help, or a usage error */

        char target[80], host[64];
        if (o.target.ss_family == AF_INET6)
                snprintf(target, sizeof(target), "[%s]:%u",
                         inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&o.target)->sin6_addr, host, sizeof(host)),
                         ntohs(((struct sockaddr_in6 *)&o.target)->sin6_port));
        else
                snprintf(target, sizeof(target), "%s:%u",
                         inet_ntop(AF_INET, &((struct sockaddr_in *)&o.target)->sin_addr, host, sizeof(host)),
                         ntohs(((struct sockaddr_in *)&o.target)->sin_port));

        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        pattern_init();
        unsigned conns = o.mode == MODE_CHAT ? o.members + o.stalled : o.conns;
        raise_nofile((rlim_t)conns + 256);

        unsigned T = o.mode == MODE_CHAT ? 1 : o.threads;
        Worker *w = calloc(T, sizeof(Worker));
        if (!w || pthread_barrier_init(&bench_ready, NULL, T + 1) != 0) {
                fprintf(stderr, "tcpedu-bench: out of memory\n");
                return 1;
        }
        void *(*run)(void *) = o.mode == MODE_CHURN  ? run_churn
                               : o.mode == MODE_IDLE ? run_idle
                               : o.mode == MODE_CHAT ? run_chat
                                                     : run_stream;
        long rss_before = o.rss_pid ? rss_kib(o.rss_pid) : -1;
        unsigned first = 0;
        for (unsigned i = 0; i < T; i++) {
                unsigned n = o.mode == MODE_CHAT ? o.members : o.conns / T + (i < o.conns % T);
                w[i] = (Worker){ .opt = &o, .id = i, .first = first, .n = n, .quota = o.count / T + (i < o.count % T), .run = run };
                first += n;
                if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
                        fprintf(stderr, "tcpedu-bench: cannot start a thread\n");
                        return 1;
                }
        }
        if (!o.quiet)
                fprintf(stderr, "tcpedu-bench: %s against %s: connecting...\n", mode_names[o.mode], target);
        pthread_barrier_wait(&bench_ready);
        uint64_t t0 = now_ns(), t_end = 0;
        long rss_held = -1;
        Totals held = totals(w, T);

        /* progress once a second until the deadline (or a signal); count mode ends with the workers */
        bool tty = isatty(STDERR_FILENO);
        uint64_t last_ops = 0;
        for (unsigned tick = 1;; tick++) {
                double until = o.count ? 1e18 : o.duration == 0 ? 1e18 : o.duration;
                double elapsed = (double)(now_ns() - t0) / 1e9;
                double step = until - elapsed < 1.0 ? until - elapsed : tick - elapsed;
                if (step > 0)
                        sleep_s(step > 1.0 ? 1.0 : step);
                elapsed = (double)(now_ns() - t0) / 1e9;
                bool finished = o.count > 0;
                for (unsigned i = 0; i < T; i++)
                        finished &= atomic_load(&w[i].finished);
                if (atomic_load(&bench_stop) || finished || (!o.count && o.duration > 0 && elapsed >= o.duration))
                        break;
                if (!o.quiet && elapsed >= tick - 0.001) {
                        Totals t = totals(w, T);
                        if (o.mode == MODE_IDLE)
                                fprintf(stderr, "[idle %5.0fs] open %llu%s", elapsed, (unsigned long long)t.open, tty ? "\r" : "\n");
                        else
                                fprintf(stderr, "[%s %5.1fs] %llu/s  total %llu  failures %llu%s", mode_names[o.mode], elapsed,
                                        (unsigned long long)(t.ops - last_ops), (unsigned long long)t.ops, (unsigned long long)t.failures,
                                        tty ? "   \r" : "\n");
                        last_ops = t.ops;
                }
        }
        t_end = now_ns();
        Totals at_stop = totals(w, T);
        if (o.rss_pid) /* at the end of the hold: the server has accepted everything by now */
                rss_held = rss_kib(o.rss_pid);
        atomic_store(&bench_stop, true);
        for (unsigned i = 0; i < T; i++)
                pthread_join(w[i].thread, NULL);
        if (o.count)
                t_end = now_ns();
        if (!o.quiet && tty)
                fputc('\n', stderr);

        Totals t = totals(w, T);
        Hist lat = {};
        const char *error = NULL;
        for (unsigned i = 0; i < T; i++) {
                hist_merge(&lat, &w[i].st.lat);
                if (!error && w[i].st.error[0])
                        error = w[i].st.error;
        }
        double secs = (double)(t_end - t0) / 1e9;
        uint64_t ops = o.count ? t.ops : at_stop.ops;
        Result res = {};
        switch (o.mode) {
        case MODE_ECHO:
        case MODE_ENHANCED:
                row(&res, "connections", "connections", o.conns, 0, "");
                row(&res, "size", "message size", o.size, 0, "bytes");
                row(&res, "pipeline", "pipeline", o.pipeline, 0, "");
                row(&res, "seconds", "duration", secs, 2, "s");
                row(&res, "round_trips", o.mode == MODE_ECHO ? "round trips" : "requests", (double)ops, 0, "");
                row(&res, "round_trips_per_s", o.mode == MODE_ECHO ? "round trips/s" : "requests/s", (double)ops / secs, 0, "");
                row(&res, "mib_per_s", "MiB/s (each way)", (double)ops * o.size / secs / 1048576.0, 1, "");
                row(&res, "bytes_verified", "bytes verified", (double)t.bytes, 0, "");
                latency_rows(&res, &lat, false);
                break;
        case MODE_CHURN:
                row(&res, "workers", "concurrent workers", o.conns, 0, "");
                row(&res, "seconds", "duration", secs, 2, "s");
                row(&res, "connections", "connections", (double)ops, 0, "");
                row(&res, "connections_per_s", "connections/s", (double)ops / secs, 0, "");
                row(&res, "failures", "failures", (double)t.failures, 0, "");
                latency_rows(&res, &lat, false);
                break;
        case MODE_IDLE:
                row(&res, "requested", "connections requested", o.conns, 0, "");
                row(&res, "open", "connections held", (double)held.open, 0, "");
                row(&res, "seconds", "held for", secs, 2, "s");
                row(&res, "echoed_after_hold", "echoed after the hold", (double)t.ops, 0, "");
                row(&res, "failures", "failures", (double)t.failures, 0, "");
                if (rss_before >= 0 && rss_held >= 0) {
                        row(&res, "rss_before_kib", "server RSS before", (double)rss_before, 0, "KiB");
                        row(&res, "rss_held_kib", "server RSS holding", (double)rss_held, 0, "KiB");
                        if (held.open)
                                row(&res, "rss_per_conn_bytes", "server RSS/connection",
                                    (double)(rss_held - rss_before) * 1024.0 / (double)held.open, 0, "bytes");
                }
                if (!error && held.open < o.conns)
                        error = "not every connection could be opened";
                break;
        case MODE_CHAT:
                row(&res, "members", "members", o.members, 0, "");
                row(&res, "broadcasters", "broadcasters", o.broadcasters, 0, "");
                row(&res, "size", "message size", o.size, 0, "bytes");
                row(&res, "stalled", "stalled members", o.stalled, 0, "");
                row(&res, "seconds", "duration", secs, 2, "s");
                row(&res, "messages", "messages sent", (double)t.sent_msgs, 0, "");
                row(&res, "deliveries", "deliveries", (double)ops, 0, "");
                row(&res, "deliveries_per_s", "deliveries/s", (double)ops / secs, 0, "");
                row(&res, "stalled_dropped", "stalled members dropped", (double)t.dropped, 0, "");
                row(&res, "latency_p50_us", "to last member p50", hist_quantile(&lat, 0.50) / 1e3, 1, "us");
                row(&res, "latency_p95_us", "to last member p95", hist_quantile(&lat, 0.95) / 1e3, 1, "us");
                row(&res, "latency_p99_us", "to last member p99", hist_quantile(&lat, 0.99) / 1e3, 1, "us");
                break;
        default:
                break;
        }
        if (error)
                fprintf(stderr, "tcpedu-bench: %s\n", error);
        print_result(&o, &res, target, error);
        pthread_barrier_destroy(&bench_ready);
        free(w);
        return error ? 1 : 0;
}
