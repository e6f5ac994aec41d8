/* bench_hist.h -- a log-linear latency histogram in nanoseconds.
 *
 * Values below 128 ns are exact; above, each power of two is split in 64
 * buckets, so a reported percentile is within 1/64 (1.6 %) of a true sample.
 * Fixed size, no allocation, so recording is a few instructions on the hot
 * path and a run of any length costs the same memory.
 */
#ifndef CHAT_BENCH_HIST_H
#define CHAT_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB 64
#define BENCH_HIST_BUCKETS (2 * BENCH_HIST_SUB + 57 * BENCH_HIST_SUB)

typedef struct bench_hist {
  uint64_t count;
  uint64_t max;
  uint64_t min;
  double sum;
  uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist_t;

void bench_hist_init(bench_hist_t *h);
void bench_hist_record(bench_hist_t *h, uint64_t ns);
/* The value at quantile q (0..1): the midpoint of its bucket, clamped to the
 * observed min and max. 0 when empty. */
uint64_t bench_hist_quantile(const bench_hist_t *h, double q);

#endif /* CHAT_BENCH_HIST_H */
