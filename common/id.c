/* SPDX-License-Identifier: MIT */
#include "id.h"

char *id_format(const uint8_t b[16], char *buf) {
        static const char hex[] = "0123456789abcdef";
        char *p = buf;
        for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *p++ = '-';
                *p++ = hex[b[i] >> 4];
                *p++ = hex[b[i] & 15];
        }
        *p = 0;
        return buf;
}

bool id_is_valid(const char *s) {
        for (int i = 0; i < ID_STR_LEN; i++) {
                char c = s[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return s[ID_STR_LEN] == 0;
}
