/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>

#include "base64.h"
#include "utf8.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const uint8_t *in, size_t len, char *out) {
        size_t o = 0, i = 0;
        for (; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = alphabet[v >> 18 & 63];
                out[o++] = alphabet[v >> 12 & 63];
                out[o++] = alphabet[v >> 6 & 63];
                out[o++] = alphabet[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
                out[o++] = alphabet[v >> 18 & 63];
                out[o++] = alphabet[v >> 12 & 63];
                out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
                out[o++] = '=';
        }
        out[o] = 0;
        return o;
}

static int value_of(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

ssize_t base64_decode(const char *in, size_t len, uint8_t *out) {
        size_t o = 0;
        if (len % 4)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
                int v[4];
                for (int k = 0; k < 4 - pad; k++)
                        if ((v[k] = value_of(in[i + k])) < 0)
                                return -EINVAL;
                for (int k = 4 - pad; k < 4; k++)
                        v[k] = 0;
                uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
                /* canonical: the bits the padding hides must be zero */
                if ((pad == 1 && (x & 0xff)) || (pad == 2 && (x & 0xffff)))
                        return -EINVAL;
                out[o++] = (uint8_t)(x >> 16);
                if (pad < 2)
                        out[o++] = (uint8_t)(x >> 8);
                if (pad < 1)
                        out[o++] = (uint8_t)x;
        }
        return (ssize_t)o;
}

bool bytes_are_text(const uint8_t *p, size_t len) {
        for (size_t i = 0; i < len;) {
                unsigned cp;
                size_t n = utf8_decode(p + i, len - i, &cp);
                if (n == 0 || cp == 0)
                        return false;
                i += n;
        }
        return true;
}
