/* SPDX-License-Identifier: MIT */
/* base64 (common/base64.c): what session-send's "data_base64" carries from a control client.
 * Decoding gets exactly the output room the header promises is enough; what decodes re-encodes to
 * the same text (canonical base64 only), and every input survives an encode-decode round trip. */
#include <errno.h>
#include <string.h>

#include "base64.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *)data;

        /* decode: at least len / 4 * 3 bytes of room, and no more, so that ASan sees an overflow */
        size_t room = size / 4 * 3;
        uint8_t *out = malloc(room ? room : 1);
        FUZZ_CHECK(out);
        ssize_t n = base64_decode(text, size, out);
        FUZZ_CHECK(n == -EINVAL || (n >= 0 && (size_t)n <= room));
        if (n >= 0) {
                char *again = malloc(base64_encoded_size((size_t)n));
                FUZZ_CHECK(again);
                size_t l = base64_encode(out, (size_t)n, again);
                FUZZ_CHECK(l == size && memcmp(again, text, size) == 0);
                FUZZ_CHECK(again[l] == 0);
                free(again);
        }
        free(out);

        /* encode, then decode back */
        char *enc = malloc(base64_encoded_size(size));
        FUZZ_CHECK(enc);
        size_t el = base64_encode(data, size, enc);
        FUZZ_CHECK(el + 1 == base64_encoded_size(size) && strlen(enc) == el);
        uint8_t *dec = malloc(el / 4 * 3 + 1);
        FUZZ_CHECK(dec);
        n = base64_decode(enc, el, dec);
        FUZZ_CHECK(n >= 0 && (size_t)n == size && memcmp(dec, data, size) == 0);
        free(dec);
        free(enc);

        /* text or not: the choice between "data" and "data_base64" in replies */
        bool t = bytes_are_text(data, size);
        FUZZ_CHECK(!t || !memchr(data, 0, size));
        return 0;
}
