/* SPDX-License-Identifier: MIT */
#include "bench.h"

/* Values below 64 ns have a bucket each; above, 32 sub-buckets per power of two (3% wide). */
static unsigned bucket_of(uint64_t v) {
        if (v < 64)
                return (unsigned)v;
        unsigned e = 63u - (unsigned)__builtin_clzll(v);
        if (e > 40)
                return HIST_BUCKETS - 1;
        return 64 + (e - 6) * 32 + (unsigned)((v >> (e - 5)) & 31);
}

static double bucket_mid(unsigned i) {
        if (i < 64)
                return i;
        unsigned e = (i - 64) / 32 + 6, sub = (i - 64) % 32;
        double lo = (double)(1ull << e) + (double)sub * (double)(1ull << (e - 5));
        return lo + (double)(1ull << (e - 5)) / 2;
}

void hist_add(Hist *h, uint64_t ns) {
        h->b[bucket_of(ns)]++;
        h->n++;
}

void hist_merge(Hist *into, const Hist *from) {
        for (unsigned i = 0; i < HIST_BUCKETS; i++)
                into->b[i] += from->b[i];
        into->n += from->n;
}

double hist_quantile(const Hist *h, double q) {
        if (h->n == 0)
                return 0;
        uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
        if (want >= h->n)
                want = h->n - 1;
        for (unsigned i = 0; i < HIST_BUCKETS; i++) {
                seen += h->b[i];
                if (seen > want)
                        return bucket_mid(i);
        }
        return bucket_mid(HIST_BUCKETS - 1);
}
