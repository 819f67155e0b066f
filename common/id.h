/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define ID_STR_LEN 36 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */

/* Format 16 bytes as an RFC 4122 UUID string (lowercase) into buf of at least ID_STR_LEN + 1 bytes. */
char *id_format(const uint8_t bytes[16], char *buf);
bool id_is_valid(const char *s);
