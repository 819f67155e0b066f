/* SPDX-License-Identifier: MIT */
/* The log pipeline. sd_journal_send() blocks while journald is behind or stopped, and the event
 * loop must never wait for it: entries are built on the caller's stack, copied into a bounded
 * queue, and written by one thread. What does not fit is counted, and the count is logged as soon
 * as the journal takes entries again. Entries keep their order. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
/* The call site would be the writer thread's, on every entry: leave CODE_FILE and friends out. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "journal.h"

#define JOURNAL_QUEUE_MAX_BYTES (4u << 20)
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

typedef struct QueuedEntry {
        struct QueuedEntry *next;
        size_t len;
        unsigned n_fields;
        char data[];
} QueuedEntry;

struct Journal {
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        QueuedEntry *head, *tail;
        size_t queued_bytes, queued;
        bool stop;
        bool to_stderr;
        _Atomic uint64_t submitted, written, dropped_full, dropped_failed;
        uint64_t dropped_reported; /* writer thread only */
};

LogTarget log_target_from_string(const char *s) {
        static const char *const names[_LOG_TARGET_MAX] = { "auto", "journal", "stderr" };
        for (int i = 0; i < _LOG_TARGET_MAX; i++)
                if (strcmp(s, names[i]) == 0)
                        return (LogTarget)i;
        return _LOG_TARGET_INVALID;
}

void log_entry_init(LogEntry *e, int priority, const char *message_id) {
        e->len = 0;
        e->n_fields = 0;
        e->truncated = false;
        log_entry_add(e, "PRIORITY", "%d", priority);
        log_entry_add(e, "SYSLOG_IDENTIFIER", "tcpedud");
        if (message_id)
                log_entry_add(e, "MESSAGE_ID", "%s", message_id);
}

void log_entry_add(LogEntry *e, const char *key, const char *fmt, ...) {
        size_t room = sizeof(e->buf) - e->len;
        int n = snprintf(e->buf + e->len, room, "%s=", key);
        if (n < 0 || (size_t)n >= room) {
                e->truncated = true;
                return;
        }
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(e->buf + e->len + n, room - (size_t)n, fmt, ap);
        va_end(ap);
        if (m < 0 || (size_t)(n + m) >= room) {
                e->truncated = true;
                return;
        }
        /* journald's plain field form cannot carry a newline: fold it. */
        for (char *p = e->buf + e->len + n; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        e->len += (size_t)(n + m) + 1;
        e->n_fields++;
}

static const char *entry_field(const char *data, size_t len, unsigned n, const char *key) {
        size_t klen = strlen(key);
        const char *p = data;
        for (unsigned i = 0; i < n && p < data + len; i++) {
                size_t l = strlen(p);
                if (l > klen && p[klen] == '=' && memcmp(p, key, klen) == 0)
                        return p + klen + 1;
                p += l + 1;
        }
        return NULL;
}

static int write_entry(Journal *j, const QueuedEntry *q) {
        if (j->to_stderr) {
                const char *msg = entry_field(q->data, q->len, q->n_fields, "MESSAGE");
                if (msg && fprintf(stderr, "tcpedud: %s\n", msg) < 0)
                        return -EIO;
                return 0;
        }
        struct iovec iov[64];
        const char *p = q->data;
        unsigned n = 0;
        for (; n < q->n_fields && n < ELEMENTSOF(iov); n++) {
                size_t l = strlen(p);
                iov[n] = (struct iovec){ (void *)p, l };
                p += l + 1;
        }
        return sd_journal_sendv(iov, (int)n);
}

static void report_drops(Journal *j) {
        uint64_t full = atomic_load(&j->dropped_full), failed = atomic_load(&j->dropped_failed);
        if (full + failed == j->dropped_reported)
                return;
        LogEntry e;
        log_entry_init(&e, LOG_WARNING, MID_LOG_DROPPED);
        log_entry_add(&e, "MESSAGE",
                      "%" PRIu64 " log entries could not be written (%" PRIu64 " with the queue full, %" PRIu64 " failed writes in all)",
                      full + failed - j->dropped_reported, full, failed);
        log_entry_add(&e, "TCPEDU_EVENT", "log-dropped");
        log_entry_add(&e, "TCPEDU_DROPPED_FULL", "%" PRIu64, full);
        log_entry_add(&e, "TCPEDU_DROPPED_FAILED", "%" PRIu64, failed);
        QueuedEntry *q = malloc(sizeof(QueuedEntry) + e.len);
        if (!q)
                return;
        memcpy(q->data, e.buf, e.len);
        q->len = e.len;
        q->n_fields = e.n_fields;
        if (write_entry(j, q) >= 0)
                j->dropped_reported = full + failed;
        free(q);
}

static bool drops_unreported(Journal *j) {
        return atomic_load(&j->dropped_full) + atomic_load(&j->dropped_failed) != j->dropped_reported;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Entries are taken one batch at a time, and leave the queue's count (and its bound) only once
 * written: the bound covers the batch being written too, and status's "queued" is what waits.
 * Losses are reported once the journal takes entries again, at most once a second, and also when
 * nothing else comes to be written: an idle daemon still says what it lost. */
static void *writer_thread(void *userdata) {
        Journal *j = userdata;
        uint64_t last_report = 0;
        bool healthy = true; /* the last write succeeded */

        pthread_mutex_lock(&j->lock);
        for (;;) {
                while (!j->head && !j->stop) {
                        if (!healthy || !drops_unreported(j)) {
                                pthread_cond_wait(&j->cond, &j->lock);
                                continue;
                        }
                        uint64_t due = last_report + 1000000u;
                        if (monotonic_usec() >= due)
                                break;
                        struct timespec ts = { .tv_sec = (time_t)(due / 1000000u), .tv_nsec = (long)(due % 1000000u) * 1000 };
                        (void)pthread_cond_timedwait(&j->cond, &j->lock, &ts);
                }
                if (!j->head && j->stop)
                        break;
                QueuedEntry *batch = j->head;
                j->head = j->tail = NULL;
                pthread_mutex_unlock(&j->lock);

                while (batch) {
                        QueuedEntry *next = batch->next;
                        healthy = write_entry(j, batch) >= 0;
                        atomic_fetch_add(healthy ? &j->written : &j->dropped_failed, 1);
                        pthread_mutex_lock(&j->lock);
                        j->queued--;
                        j->queued_bytes -= batch->len;
                        pthread_mutex_unlock(&j->lock);
                        free(batch);
                        batch = next;
                }
                uint64_t now = monotonic_usec();
                if (healthy && drops_unreported(j) && now >= last_report + 1000000u) {
                        report_drops(j);
                        last_report = now;
                }
                pthread_mutex_lock(&j->lock);
        }
        pthread_mutex_unlock(&j->lock);
        report_drops(j);
        return NULL;
}

int journal_new(LogTarget target, Journal **ret) {
        Journal *j = calloc(1, sizeof(Journal));
        if (!j)
                return -ENOMEM;
        pthread_mutex_init(&j->lock, NULL);
        /* the writer waits for the next report on the monotonic clock */
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&j->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (target == LOG_TARGET_AUTO)
                j->to_stderr = access(JOURNAL_SOCKET, F_OK) < 0;
        else
                j->to_stderr = target == LOG_TARGET_STDERR;

        /* The writer must not take the daemon's signals: sd-event handles them on the main thread. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int r = pthread_create(&j->thread, NULL, writer_thread, j);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                free(j);
                return -r;
        }
        j->thread_started = true;
        *ret = j;
        return 0;
}

Journal *journal_free(Journal *j) {
        if (!j)
                return NULL;
        pthread_mutex_lock(&j->lock);
        j->stop = true;
        pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);

        if (j->thread_started) {
                /* A hung journald must not hang the exit: wait a bounded time, then count what is left. */
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += 3;
                if (pthread_timedjoin_np(j->thread, NULL, &deadline) != 0) {
                        fprintf(stderr, "tcpedud: journal not responding, %zu log entries not written\n", j->queued);
                        return NULL; /* the thread still uses j; the process is about to exit */
                }
        }
        for (QueuedEntry *q = j->head; q;) {
                QueuedEntry *n = q->next;
                free(q);
                q = n;
        }
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->cond);
        free(j);
        return NULL;
}

void journal_submit(Journal *j, const LogEntry *e) {
        atomic_fetch_add(&j->submitted, 1);
        QueuedEntry *q = malloc(sizeof(QueuedEntry) + e->len);
        if (!q) {
                atomic_fetch_add(&j->dropped_full, 1);
                return;
        }
        memcpy(q->data, e->buf, e->len);
        q->len = e->len;
        q->n_fields = e->n_fields;
        q->next = NULL;

        pthread_mutex_lock(&j->lock);
        if (j->queued_bytes + e->len > JOURNAL_QUEUE_MAX_BYTES) {
                pthread_mutex_unlock(&j->lock);
                free(q);
                atomic_fetch_add(&j->dropped_full, 1);
                return;
        }
        bool was_empty = !j->head;
        if (j->tail)
                j->tail->next = q;
        else
                j->head = q;
        j->tail = q;
        j->queued++;
        j->queued_bytes += e->len;
        if (was_empty)
                pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);
}

void journal_stats(Journal *j, JournalStats *ret) {
        pthread_mutex_lock(&j->lock);
        ret->queued = j->queued;
        pthread_mutex_unlock(&j->lock);
        ret->submitted = atomic_load(&j->submitted);
        ret->written = atomic_load(&j->written);
        ret->dropped_full = atomic_load(&j->dropped_full);
        ret->dropped_failed = atomic_load(&j->dropped_failed);
        ret->to_stderr = j->to_stderr;
}
