/* SPDX-License-Identifier: MIT */
#pragma once

/* The log pipeline (journal.c): entries built on the caller's stack, written by one thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpedud.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* the journal if its socket exists, else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -22,
} LogTarget;

/* One journal entry being built on the stack: "KEY=value" fields, NUL-separated. */
typedef struct LogEntry {
        char buf[4096];
        size_t len;
        unsigned n_fields;
        bool truncated;
} LogEntry;

typedef struct JournalStats {
        uint64_t submitted; /* entries handed to the pipeline */
        uint64_t written; /* entries the journal (or stderr) accepted */
        uint64_t dropped_full; /* not queued: the queue was at its bound (journald too slow or hung) */
        uint64_t dropped_failed; /* queued, but the write failed (journald gone) */
        size_t queued;
        bool to_stderr;
} JournalStats;

int journal_new(LogTarget target, Journal **ret);
Journal *journal_free(Journal *j);
void log_entry_init(LogEntry *e, int priority, const char *message_id);
void log_entry_add(LogEntry *e, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Never blocks: an entry that does not fit the queue is counted as dropped. */
void journal_submit(Journal *j, const LogEntry *e);
void journal_stats(Journal *j, JournalStats *ret);
LogTarget log_target_from_string(const char *s);

/* Stable MESSAGE_IDs, one per kind of event (docs/journal.md). */
#define MID_TRANSITION "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a01"
#define MID_CONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a02"
#define MID_DISCONNECT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a03"
#define MID_REFUSED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a04"
#define MID_SUMMARY "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a05"
#define MID_SERVER_START "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a06"
#define MID_SERVER_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a07"
#define MID_RELOAD "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a08"
#define MID_RELOAD_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a09"
#define MID_LOG_DROPPED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0a"
#define MID_DAEMON_START "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0b"
#define MID_DAEMON_STOP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0c"
#define MID_LIMIT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0d"
#define MID_CONTROL "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0e"
#define MID_CHAT_JOIN "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a0f"
#define MID_CHAT_LEAVE "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a10"
#define MID_CHAT_RENAME "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a11"
#define MID_CHAT_DROP "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a12"
#define MID_CONNECT_FAILED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a13"
#define MID_UNWATCHED "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a14"
#define MID_RETRANSMIT "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a15"
#define MID_RESET "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a16"
#define MID_KERNEL_SOURCE "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a17"
