/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* Hand ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                                                        \
        ({                                                                                                                                 \
                typeof(p) _p_ = (p);                                                                                                       \
                (p) = NULL;                                                                                                                \
                _p_;                                                                                                                       \
        })
#define TAKE_FD(fd)                                                                                                                        \
        ({                                                                                                                                 \
                int _fd_ = (fd);                                                                                                           \
                (fd) = -1;                                                                                                                 \
                _fd_;                                                                                                                      \
        })

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void freep(void *p) {
        free(*(void **)p);
}

/* Close an fd, keeping errno, and tolerate -1. Returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
