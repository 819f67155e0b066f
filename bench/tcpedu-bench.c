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
#include <stddef.h>
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

/* ---- options: one table drives getopt, the range checks and the messages ---- */

typedef enum OptionKind {
        OPTION_UNSIGNED, /* an unsigned field */
        OPTION_U64,
        OPTION_PID, /* an int field */
        OPTION_SECONDS, /* a double field, fractions allowed */
        OPTION_FLAG, /* a bool field, no argument */
        OPTION_HELP,
} OptionKind;

typedef struct OptionSpec {
        const char *name;
        int short_name; /* 0: long only */
        OptionKind kind;
        size_t offset; /* into Options */
        unsigned long long min, max;
        const char *expected; /* "--NAME: EXPECTED, not 'ARG'" */
} OptionSpec;

#define O(field) offsetof(Options, field)

/* conns, size, pipeline and sources stay 0 when not given: their defaults depend on the mode. */
static const OptionSpec option_specs[] = {
        { "connections", 'c', OPTION_UNSIGNED, O(conns), 1, 1000000, "a number from 1 to 1000000" },
        { "size", 's', OPTION_UNSIGNED, O(size), 1, 1 << 20, "a number of bytes from 1 to 1048576" },
        { "pipeline", 'p', OPTION_UNSIGNED, O(pipeline), 1, 4096, "a number from 1 to 4096" },
        { "duration", 'd', OPTION_SECONDS, O(duration), 0, 86400, "seconds from 0 to 86400" },
        { "count", 'n', OPTION_U64, O(count), 1, UINT64_MAX / 2, "a positive number" },
        { "threads", 't', OPTION_UNSIGNED, O(threads), 1, 64, "a number from 1 to 64" },
        { "members", 'm', OPTION_UNSIGNED, O(members), 1, 100000, "a number from 1 to 100000" },
        { "broadcasters", 'b', OPTION_UNSIGNED, O(broadcasters), 1, 1000, "a number from 1 to 1000" },
        { "sources", 0, OPTION_UNSIGNED, O(sources), 1, 254, "a number from 1 to 254" },
        { "stalled", 0, OPTION_UNSIGNED, O(stalled), 0, 1000, "a number from 0 to 1000" },
        { "rss-pid", 0, OPTION_PID, O(rss_pid), 1, 1 << 22, "a process id" },
        { "json", 0, OPTION_FLAG, O(json) },
        { "quiet", 'q', OPTION_FLAG, O(quiet) },
        { "help", 'h', OPTION_HELP },
};
#define N_OPTIONS (sizeof(option_specs) / sizeof(option_specs[0]))
#define OPTION_LONG_ONLY 256 /* getopt's value for option_specs[i] without a short name: 256 + i */

/* getopt_long's two views of the table, in the table's order. */
static void options_getopt(struct option longopts[N_OPTIONS + 1], char shortopts[2 * N_OPTIONS + 1]) {
        size_t k = 0;
        for (size_t i = 0; i < N_OPTIONS; i++) {
                const OptionSpec *spec = &option_specs[i];
                bool arg = spec->kind != OPTION_FLAG && spec->kind != OPTION_HELP;
                int val = spec->short_name ? spec->short_name : OPTION_LONG_ONLY + (int)i;
                longopts[i] = (struct option){ spec->name, arg ? required_argument : no_argument, NULL, val };
                if (spec->short_name) {
                        shortopts[k++] = (char)spec->short_name;
                        if (arg)
                                shortopts[k++] = ':';
                }
        }
        longopts[N_OPTIONS] = (struct option){};
        shortopts[k] = 0;
}

static const OptionSpec *option_find(int val) {
        for (size_t i = 0; i < N_OPTIONS; i++)
                if (option_specs[i].short_name ? option_specs[i].short_name == val : OPTION_LONG_ONLY + (int)i == val)
                        return &option_specs[i];
        return NULL;
}

/* Store one option's argument in *o: 0, or -EXIT_USAGE after printing why. */
static int option_set(const OptionSpec *spec, const char *arg, Options *o) {
        char *field = (char *)o + spec->offset;
        unsigned long long v;

        if (spec->kind == OPTION_FLAG) {
                *(bool *)field = true;
                return 0;
        }
        if (spec->kind == OPTION_SECONDS) {
                char *end;
                errno = 0;
                double d = strtod(arg, &end);
                *(double *)field = d;
                if (errno || end == arg || *end || !(d >= (double)spec->min) || d > (double)spec->max)
                        return usage("--%s: %s, not '%s'", spec->name, spec->expected, arg);
                return 0;
        }
        if (parse_uint(arg, spec->max, &v) < 0 || v < spec->min)
                return usage("--%s: %s, not '%s'", spec->name, spec->expected, arg);
        if (spec->kind == OPTION_U64)
                *(uint64_t *)field = v;
        else if (spec->kind == OPTION_PID)
                *(int *)field = (int)v;
        else
                *(unsigned *)field = (unsigned)v;
        return 0;
}

/* The MODE word and the optional ADDR:PORT after the options. */
static int parse_mode_and_target(int argc, char **argv, Options *o) {
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
        return 0;
}

/* The defaults that depend on the mode, then the checks across options. */
static int options_finish(Options *o) {
        bool chat = o->mode == MODE_CHAT;
        if (o->conns == 0)
                o->conns = o->mode == MODE_IDLE ? 1000 : 50;
        if (o->size == 0)
                o->size = chat ? 200 : 1024;
        if (o->pipeline == 0)
                o->pipeline = chat ? 16 : 1;
        if (o->sources == 0)
                o->sources = o->mode == MODE_IDLE ? o->conns / 20000 + 1 : 1;
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
        return 0;
}

/* 1: run with *o; 0: --help was printed; -EXIT_USAGE: a usage error was printed. */
static int parse_options(int argc, char **argv, Options *o) {
        struct option longopts[N_OPTIONS + 1];
        char shortopts[2 * N_OPTIONS + 1];
        int c, r;

        options_getopt(longopts, shortopts);
        *o = (Options){ .threads = 1, .members = 100, .broadcasters = 4, .duration = 5 };
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                const OptionSpec *spec = option_find(c);
                if (!spec)
                        return usage("unknown option");
                if (spec->kind == OPTION_HELP) {
                        help();
                        return 0;
                }
                r = option_set(spec, optarg, o);
                if (r < 0)
                        return r;
        }
        r = parse_mode_and_target(argc, argv, o);
        if (r < 0)
                return r;
        r = options_finish(o);
        return r < 0 ? r : 1;
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

/* One run: the workers, the clock and what the main thread saw while they ran. */
typedef struct Run {
        const Options *o;
        Worker *w;
        unsigned n_workers;
        bool tty; /* stderr is a terminal: progress overwrites one line */
        uint64_t t0, t_end;
        Totals held; /* when every worker was connected */
        Totals at_stop; /* at the deadline, before the workers drained */
        long rss_before, rss_held; /* --rss-pid, KiB; -1: not read */
} Run;

static void format_target(const Options *o, char *target, size_t size) {
        char host[64];
        if (o->target.ss_family == AF_INET6)
                snprintf(target, size, "[%s]:%u",
                         inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&o->target)->sin6_addr, host, sizeof(host)),
                         ntohs(((const struct sockaddr_in6 *)&o->target)->sin6_port));
        else
                snprintf(target, size, "%s:%u", inet_ntop(AF_INET, &((const struct sockaddr_in *)&o->target)->sin_addr, host, sizeof(host)),
                         ntohs(((const struct sockaddr_in *)&o->target)->sin_port));
}

static void *(*const mode_runs[_MODE_MAX])(void *) = {
        [MODE_ECHO] = run_stream, [MODE_ENHANCED] = run_stream, [MODE_CHURN] = run_churn, [MODE_IDLE] = run_idle, [MODE_CHAT] = run_chat,
};

/* Signals stop the run; enough file descriptors for every connection. */
static void prepare_process(const Options *o) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        pattern_init();
        unsigned conns = o->mode == MODE_CHAT ? o->members + o->stalled : o->conns;
        raise_nofile((rlim_t)conns + 256);
}

/* Each worker gets its share of the connections and of the count. 0 or -errno. */
static int start_workers(Run *run) {
        const Options *o = run->o;
        unsigned T = run->n_workers, first = 0;
        for (unsigned i = 0; i < T; i++) {
                unsigned n = o->mode == MODE_CHAT ? o->members : o->conns / T + (i < o->conns % T);
                run->w[i] = (Worker){
                        .opt = o, .id = i, .first = first, .n = n, .quota = o->count / T + (i < o->count % T), .run = mode_runs[o->mode]
                };
                first += n;
                int r = pthread_create(&run->w[i].thread, NULL, worker_main, &run->w[i]);
                if (r != 0)
                        return -r;
        }
        return 0;
}

static void print_progress(const Run *run, double elapsed, uint64_t *last_ops) {
        const Options *o = run->o;
        Totals t = totals(run->w, run->n_workers);
        if (o->mode == MODE_IDLE)
                fprintf(stderr, "[idle %5.0fs] open %llu%s", elapsed, (unsigned long long)t.open, run->tty ? "\r" : "\n");
        else
                fprintf(stderr, "[%s %5.1fs] %llu/s  total %llu  failures %llu%s", mode_names[o->mode], elapsed,
                        (unsigned long long)(t.ops - *last_ops), (unsigned long long)t.ops, (unsigned long long)t.failures,
                        run->tty ? "   \r" : "\n");
        *last_ops = t.ops;
}

/* Progress once a second until the deadline (or a signal); count mode ends with the workers. */
static void wait_for_end(const Run *run) {
        const Options *o = run->o;
        uint64_t last_ops = 0;
        for (unsigned tick = 1;; tick++) {
                double until = o->count ? 1e18 : o->duration == 0 ? 1e18 : o->duration;
                double elapsed = (double)(now_ns() - run->t0) / 1e9;
                double step = until - elapsed < 1.0 ? until - elapsed : tick - elapsed;
                if (step > 0)
                        sleep_s(step > 1.0 ? 1.0 : step);
                elapsed = (double)(now_ns() - run->t0) / 1e9;
                bool finished = o->count > 0;
                for (unsigned i = 0; i < run->n_workers; i++)
                        finished &= atomic_load(&run->w[i].finished);
                if (atomic_load(&bench_stop) || finished || (!o->count && o->duration > 0 && elapsed >= o->duration))
                        break;
                if (!o->quiet && elapsed >= tick - 0.001)
                        print_progress(run, elapsed, &last_ops);
        }
}

/* Note the time and the counters, then tell the workers to drain and wait for them. */
static void stop_workers(Run *run) {
        const Options *o = run->o;
        run->t_end = now_ns();
        run->at_stop = totals(run->w, run->n_workers);
        if (o->rss_pid) /* at the end of the hold: the server has accepted everything by now */
                run->rss_held = rss_kib(o->rss_pid);
        atomic_store(&bench_stop, true);
        for (unsigned i = 0; i < run->n_workers; i++)
                pthread_join(run->w[i].thread, NULL);
        if (o->count)
                run->t_end = now_ns();
        if (!o->quiet && run->tty)
                fputc('\n', stderr);
}

/* What every worker did, added up; the result rows of each mode are made from it. */
typedef struct Outcome {
        const Run *run;
        Totals t;
        Hist lat;
        double secs;
        uint64_t ops; /* count mode: all of them; duration mode: those before the deadline */
        const char *error; /* the first worker's error, or the mode's own verdict */
} Outcome;

static void rows_stream(Result *res, Outcome *out) {
        const Options *o = out->run->o;
        bool echo = o->mode == MODE_ECHO;
        row(res, "connections", "connections", o->conns, 0, "");
        row(res, "size", "message size", o->size, 0, "bytes");
        row(res, "pipeline", "pipeline", o->pipeline, 0, "");
        row(res, "seconds", "duration", out->secs, 2, "s");
        row(res, "round_trips", echo ? "round trips" : "requests", (double)out->ops, 0, "");
        row(res, "round_trips_per_s", echo ? "round trips/s" : "requests/s", (double)out->ops / out->secs, 0, "");
        row(res, "mib_per_s", "MiB/s (each way)", (double)out->ops * o->size / out->secs / 1048576.0, 1, "");
        row(res, "bytes_verified", "bytes verified", (double)out->t.bytes, 0, "");
        latency_rows(res, &out->lat, false);
}

static void rows_churn(Result *res, Outcome *out) {
        row(res, "workers", "concurrent workers", out->run->o->conns, 0, "");
        row(res, "seconds", "duration", out->secs, 2, "s");
        row(res, "connections", "connections", (double)out->ops, 0, "");
        row(res, "connections_per_s", "connections/s", (double)out->ops / out->secs, 0, "");
        row(res, "failures", "failures", (double)out->t.failures, 0, "");
        latency_rows(res, &out->lat, false);
}

static void rows_idle(Result *res, Outcome *out) {
        const Run *run = out->run;
        row(res, "requested", "connections requested", run->o->conns, 0, "");
        row(res, "open", "connections held", (double)run->held.open, 0, "");
        row(res, "seconds", "held for", out->secs, 2, "s");
        row(res, "echoed_after_hold", "echoed after the hold", (double)out->t.ops, 0, "");
        row(res, "failures", "failures", (double)out->t.failures, 0, "");
        if (run->rss_before >= 0 && run->rss_held >= 0) {
                row(res, "rss_before_kib", "server RSS before", (double)run->rss_before, 0, "KiB");
                row(res, "rss_held_kib", "server RSS holding", (double)run->rss_held, 0, "KiB");
                if (run->held.open)
                        row(res, "rss_per_conn_bytes", "server RSS/connection",
                            (double)(run->rss_held - run->rss_before) * 1024.0 / (double)run->held.open, 0, "bytes");
        }
        if (!out->error && run->held.open < run->o->conns)
                out->error = "not every connection could be opened";
}

static void rows_chat(Result *res, Outcome *out) {
        const Options *o = out->run->o;
        row(res, "members", "members", o->members, 0, "");
        row(res, "broadcasters", "broadcasters", o->broadcasters, 0, "");
        row(res, "size", "message size", o->size, 0, "bytes");
        row(res, "stalled", "stalled members", o->stalled, 0, "");
        row(res, "seconds", "duration", out->secs, 2, "s");
        row(res, "messages", "messages sent", (double)out->t.sent_msgs, 0, "");
        row(res, "deliveries", "deliveries", (double)out->ops, 0, "");
        row(res, "deliveries_per_s", "deliveries/s", (double)out->ops / out->secs, 0, "");
        row(res, "stalled_dropped", "stalled members dropped", (double)out->t.dropped, 0, "");
        row(res, "latency_p50_us", "to last member p50", hist_quantile(&out->lat, 0.50) / 1e3, 1, "us");
        row(res, "latency_p95_us", "to last member p95", hist_quantile(&out->lat, 0.95) / 1e3, 1, "us");
        row(res, "latency_p99_us", "to last member p99", hist_quantile(&out->lat, 0.99) / 1e3, 1, "us");
}

static void (*const mode_rows[_MODE_MAX])(Result *res, Outcome *out) = {
        [MODE_ECHO] = rows_stream, [MODE_ENHANCED] = rows_stream, [MODE_CHURN] = rows_churn,
        [MODE_IDLE] = rows_idle,   [MODE_CHAT] = rows_chat,
};

/* The result rows of the run; returns the error to report, NULL when it went well. */
static const char *collect_result(const Run *run, Result *res) {
        Outcome out = { .run = run, .t = totals(run->w, run->n_workers) };
        for (unsigned i = 0; i < run->n_workers; i++) {
                hist_merge(&out.lat, &run->w[i].st.lat);
                if (!out.error && run->w[i].st.error[0])
                        out.error = run->w[i].st.error;
        }
        out.secs = (double)(run->t_end - run->t0) / 1e9;
        out.ops = run->o->count ? out.t.ops : run->at_stop.ops;
        mode_rows[run->o->mode](res, &out);
        return out.error;
}

int main(int argc, char **argv) {
        Options o;
        int r = parse_options(argc, argv, &o);
        if (r <= 0)
                return -r; /* --help, or a usage error */

        char target[80];
        format_target(&o, target, sizeof(target));
        prepare_process(&o);

        Run run = { .o = &o, .n_workers = o.mode == MODE_CHAT ? 1 : o.threads, .rss_held = -1 };
        run.w = calloc(run.n_workers, sizeof(Worker));
        if (!run.w || pthread_barrier_init(&bench_ready, NULL, run.n_workers + 1) != 0) {
                fprintf(stderr, "tcpedu-bench: out of memory\n");
                return 1;
        }
        run.rss_before = o.rss_pid ? rss_kib(o.rss_pid) : -1;
        if (start_workers(&run) < 0) {
                fprintf(stderr, "tcpedu-bench: cannot start a thread\n");
                return 1;
        }
        if (!o.quiet)
                fprintf(stderr, "tcpedu-bench: %s against %s: connecting...\n", mode_names[o.mode], target);
        pthread_barrier_wait(&bench_ready);
        run.t0 = now_ns();
        run.held = totals(run.w, run.n_workers);
        run.tty = isatty(STDERR_FILENO);
        wait_for_end(&run);
        stop_workers(&run);

        Result res = {};
        const char *error = collect_result(&run, &res);
        if (error)
                fprintf(stderr, "tcpedu-bench: %s\n", error);
        print_result(&o, &res, target, error);
        pthread_barrier_destroy(&bench_ready);
        free(run.w);
        return error ? 1 : 0;
}
