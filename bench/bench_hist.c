/* bench_hist.c -- a log-linear latency histogram (see bench_hist.h). */
#include "bench_hist.h"

#include <string.h>

void bench_hist_init(bench_hist_t *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v) {
  if (v < 2 * BENCH_HIST_SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
  unsigned shift = msb - 6;
  unsigned sub = (unsigned)(v >> shift);             /* 64..127 */
  return 2 * BENCH_HIST_SUB + (msb - 7) * BENCH_HIST_SUB +
         (sub - BENCH_HIST_SUB);
}

static uint64_t bucket_mid(unsigned idx) {
  if (idx < 2 * BENCH_HIST_SUB)
    return idx;
  unsigned k = idx - 2 * BENCH_HIST_SUB;
  unsigned msb = 7 + k / BENCH_HIST_SUB;
  uint64_t sub = BENCH_HIST_SUB + k % BENCH_HIST_SUB;
  unsigned shift = msb - 6;
  return (sub << shift) + ((uint64_t)1 << shift) / 2;
}

void bench_hist_record(bench_hist_t *h, uint64_t ns) {
  h->buckets[bucket_of(ns)]++;
  h->count++;
  h->sum += (double)ns;
  if (ns > h->max)
    h->max = ns;
  if (ns < h->min)
    h->min = ns;
}

uint64_t bench_hist_quantile(const bench_hist_t *h, double q) {
  if (h->count == 0)
    return 0;
  if (q <= 0)
    return h->min;
  if (q >= 1)
    return h->max;
  /* The smallest value with at least q of the samples at or below it. */
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if ((double)rank < q * (double)h->count)
    rank++;
  if (rank == 0)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t v = bucket_mid(i);
      if (v > h->max)
        v = h->max;
      if (v < h->min)
        v = h->min;
      return v;
    }
  }
  return h->max;
}
