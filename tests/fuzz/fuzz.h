/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the fuzz targets: each defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). A broken promise of the code under test is a crash, so that libFuzzer
 * keeps the input: FUZZ_CHECK aborts with the failed condition. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                                                                   \
        do {                                                                                                                               \
                if (!(cond)) {                                                                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                           \
                        abort();                                                                                                           \
                }                                                                                                                          \
        } while (0)

/* The input as a NUL-terminated string (the NUL is not counted): for the APIs that take C strings. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        for (size_t i = 0; i < size; i++)
                s[i] = (char)data[i];
        s[size] = 0;
        return s;
}

/* The input read as a script of actions, a byte at a time; 0 once it is used up. */
typedef struct Script {
        const uint8_t *p;
        size_t n;
} Script;

static inline uint8_t next(Script *s) {
        if (s->n == 0)
                return 0;
        s->n--;
        return *s->p++;
}
