/* SPDX-License-Identifier: MIT */
/* Reading the journal back: journalctl -o json, parsed with json-c. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness-private.h"

/* Only entries written while this test program runs count. Tests match on _PID, and
 * pids are reused: an earlier run (the normal build before the ASan one, say) may have
 * had a daemon with the same pid, whose entries are still in the journal. */
static uint64_t harness_start_usec;

__attribute__((constructor)) static void record_harness_start(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        harness_start_usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool entry_is_ours(json_object *o) {
        json_object *v;
        if (!json_object_object_get_ex(o, "__REALTIME_TIMESTAMP", &v))
                return false;
        const char *s = json_object_get_string(v);
        return s && strtoull(s, NULL, 10) >= harness_start_usec;
}

static JList *journal_queryv(const char *const *matches) {
        char since[32];
        snprintf(since, sizeof(since), "@%llu", (unsigned long long)(harness_start_usec / 1000000u));
        const char *argv[40] = { "/usr/bin/journalctl", "--no-pager", "--all", "-o", "json", "--since", since };
        size_t n = 7;
        for (size_t i = 0; matches[i] && n < 39; i++)
                argv[n++] = matches[i];
        argv[n] = NULL;

        JList *l = calloc(1, sizeof(JList));
        if (!l)
                abort();
        track_jlist(l);
        RunResult rr;
        if (run_capture(argv, 30000, &rr) < 0 || rr.exit_code != 0) {
                printf("\n    harness: journalctl failed (exit %d): %s\n", rr.exit_code, rr.err ? rr.err : "");
                return l;
        }
        size_t cap = 0;
        for (char *save = NULL, *line = strtok_r(rr.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                json_object *o = json_tokener_parse(line);
                if (!o)
                        continue;
                if (!entry_is_ours(o)) {
                        json_object_put(o);
                        continue;
                }
                if (l->n == cap) {
                        cap = cap ? cap * 2 : 16;
                        json_object **e = realloc(l->e, cap * sizeof(json_object *));
                        if (!e)
                                abort();
                        l->e = e;
                }
                l->e[l->n++] = o;
        }
        return l;
}

static size_t collect_matches(const char **out, size_t max, const char *first, va_list ap) {
        size_t n = 0;
        for (const char *m = first; m && n < max - 1; m = va_arg(ap, const char *))
                out[n++] = m;
        out[n] = NULL;
        return n;
}

JList *journal_query(const char *match, ...) {
        const char *matches[32];
        va_list ap;
        va_start(ap, match);
        collect_matches(matches, 32, match, ap);
        va_end(ap);
        return journal_queryv(matches);
}

JList *journal_wait(size_t min, int timeout_ms, const char *match, ...) {
        const char *matches[32];
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        va_list ap;
        va_start(ap, match);
        collect_matches(matches, 32, match, ap);
        va_end(ap);
        uint64_t start = now_ms();
        for (;;) {
                JList *l = journal_queryv(matches);
                if (l->n >= min || remaining_ms(deadline) == 0)
                        return l;
                /* The daemon's writer thread and journald are asynchronous: ask again shortly
                 * (less often while waiting for something a minute away, like TIME_WAIT's end). */
                int pause = now_ms() - start < 10000 ? 100 : 500;
                (void)poll(NULL, 0, pause < remaining_ms(deadline) ? pause : remaining_ms(deadline));
        }
}

const char *jget(json_object *e, const char *field) {
        json_object *v;
        if (!e || !json_object_object_get_ex(e, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

JList *jfilter(const JList *l, const char *field, const char *value) {
        JList *r = calloc(1, sizeof(JList));
        if (!r)
                abort();
        track_jlist(r);
        r->e = calloc(l->n ? l->n : 1, sizeof(json_object *));
        if (!r->e)
                abort();
        for (size_t i = 0; i < l->n; i++) {
                const char *v = jget(l->e[i], field);
                if (value ? v && strcmp(v, value) == 0 : v == NULL)
                        r->e[r->n++] = json_object_get(l->e[i]);
        }
        return r;
}

void journal_print(const JList *l, const char *title) {
        printf("\n    ---- %s: %zu journal entries ----\n", title, l->n);
        for (size_t i = 0; i < l->n; i++)
                printf("    %s\n", jget(l->e[i], "MESSAGE") ? jget(l->e[i], "MESSAGE") : "(no MESSAGE)");
        fflush(stdout);
}
