/* ratelimit.c -- token bucket; see ratelimit.h. */
#include "ratelimit.h"

#define BURST_FACTOR 5

static uint64_t cap_m(uint32_t rate) {
  uint64_t c = (uint64_t)rate * BURST_FACTOR * 1000;
  return c > UINT32_MAX ? UINT32_MAX : c;
}

void chat__ratelimit_init(chat__ratelimit_t *rl, uint32_t rate,
                          uint64_t now_ms) {
  rl->last_ms = now_ms;
  rl->tokens_m = (uint32_t)cap_m(rate);
}

int chat__ratelimit_take(chat__ratelimit_t *rl, uint32_t rate,
                         uint64_t now_ms) {
  if (rate == 0)
    return 1;
  if (now_ms > rl->last_ms) {
    /* rate tokens per second = rate thousandths per millisecond */
    uint64_t t = rl->tokens_m + (now_ms - rl->last_ms) * (uint64_t)rate;
    uint64_t c = cap_m(rate);
    rl->tokens_m = (uint32_t)(t > c ? c : t);
    rl->last_ms = now_ms;
  }
  if (rl->tokens_m < 1000)
    return 0;
  rl->tokens_m -= 1000;
  return 1;
}
