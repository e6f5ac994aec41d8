/* ratelimit.h -- a token bucket per connection: rate tokens a second, up to
 * burst saved. Time comes in as milliseconds, so tests drive it directly. */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stdint.h>

typedef struct chat__ratelimit {
  uint64_t last_ms;  /* when tokens were last topped up */
  uint32_t tokens_m; /* tokens in thousandths, so slow rates still refill */
} chat__ratelimit_t;

/* Starts full (a burst is allowed at once). */
void chat__ratelimit_init(chat__ratelimit_t *rl, uint32_t rate,
                          uint64_t now_ms);
/* Takes one token: returns 1 when allowed, 0 when over the limit. rate 0
 * means no limit. The burst is 5 x rate. */
int chat__ratelimit_take(chat__ratelimit_t *rl, uint32_t rate, uint64_t now_ms);

#endif /* CHAT_RATELIMIT_H */
