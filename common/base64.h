/* SPDX-License-Identifier: MIT */
#pragma once

/* Standard base64 (RFC 4648, with padding): how the control protocol carries bytes that are not
 * UTF-8 text. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes needed for the encoding of len bytes, NUL included. */
static inline size_t base64_encoded_size(size_t len) {
        return (len + 2) / 3 * 4 + 1;
}

/* Writes the encoding and a NUL into out (base64_encoded_size(len) bytes); returns its length. */
size_t base64_encode(const uint8_t *in, size_t len, char *out);

/* Decodes into out (at least len / 4 * 3 bytes). Returns the length, or -EINVAL for anything that
 * is not canonical padded base64 (whitespace included). */
ssize_t base64_decode(const char *in, size_t len, uint8_t *out);

/* Whether the bytes are valid UTF-8 with no NUL: such data travels as a JSON string. */
bool bytes_are_text(const uint8_t *p, size_t len);
