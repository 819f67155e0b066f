/* SPDX-License-Identifier: MIT */
/* Runs a fuzz target over files without libFuzzer: each argument is a file, or a directory whose
 * files are run in name order. The regular (gcc) builds replay every seed corpus with it, so the
 * inputs that once crashed stay fixed in every build, sanitized or not. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, len = 0;
        uint8_t *buf = malloc(cap);
        for (;;) {
                if (!buf)
                        abort();
                len += fread(buf + len, 1, cap - len, f);
                if (len < cap)
                        break;
                buf = realloc(buf, cap *= 2);
        }
        bool failed = ferror(f);
        fclose(f);
        if (failed) {
                fprintf(stderr, "%s: read error\n", path);
                free(buf);
                return -1;
        }
        /* An exact copy: a read past the input's end is an overflow under ASan, as in libFuzzer. */
        uint8_t *input = malloc(len ? len : 1);
        if (!input)
                abort();
        memcpy(input, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(input, len);
        free(input);
        return 0;
}

static int filter(const struct dirent *d) {
        return d->d_name[0] != '.';
}

int main(int argc, char **argv) {
        unsigned n = 0, failed = 0;
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += run_file(argv[i]) < 0;
                        n++;
                        continue;
                }
                struct dirent **list;
                int k = scandir(argv[i], &list, filter, alphasort);
                if (k < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                for (int j = 0; j < k; j++) {
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name);
                        failed += run_file(path) < 0;
                        n++;
                        free(list[j]);
                }
                free(list);
        }
        printf("%u passed, %u failed\n", n - failed, failed);
        return failed ? 1 : 0;
}
