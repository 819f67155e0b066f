/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the config library share and nobody else sees: the key table and the value
 * parsers it drives (config-keys.c), the inih wrapper that reads one file's text
 * (config-parse.c), and loading, validation and comparison (config.c, config-validate.c). */

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum SectionKind {
        SECTION_NONE,
        SECTION_DAEMON,
        SECTION_SERVER,
        SECTION_BAD, /* an unknown or malformed header: its keys are skipped, the header was reported */
} SectionKind;

typedef enum KeyType {
        KEY_STRING,
        KEY_BOOL,
        KEY_UINT,
        KEY_SIZE,
        KEY_SECONDS,
        KEY_LOG_TRANSITIONS,
        KEY_KERNEL_SOURCE,
        KEY_LOG_LEVEL,
        KEY_SERVER_TYPE,
        KEY_LISTEN,
        KEY_CHAT_PROTOCOL,
        KEY_HANDLER,
        _KEY_TYPE_MAX,
} KeyType;

#define TYPES_ALL 0u
#define TYPE_BIT(t) (1u << (t))

typedef struct ConfigKey {
        SectionKind section;
        const char *name;
        KeyType type;
        size_t offset;
        size_t size; /* for strings: buffer size */
        uint64_t min, max;
        const char *def; /* NULL: required */
        const char *help;
        unsigned types; /* server keys: the types it applies to (TYPES_ALL: every type) */
} ConfigKey;

/* config-keys.c */
/* The one list of keys: parsing, defaults, range checks and --dump-config all read it. */
extern const ConfigKey config_keys[];
extern const size_t config_keys_n;
/* Parse v into the key's field of base (a DaemonConfig or a ServerConfig); on failure write the
 * message a user sees to why and return -EINVAL or -ERANGE. */
int config_key_set(const ConfigKey *k, void *base, const char *v, char *why, size_t why_size);
void config_key_format(const ConfigKey *k, const void *base, char *buf, size_t size);
/* The key called name in section, and its slot: its index among that section's keys. */
const ConfigKey *config_key_find(SectionKind section, const char *name, size_t *ret_slot);
/* The section's key closest to a misspelt name, or NULL when none is close. */
const char *config_key_suggest(SectionKind section, const char *name);
void config_apply_defaults(SectionKind section, void *base);
