/* backoff.h -- how long to wait before reconnecting to the server: 1 s
 * doubling per failed attempt, capped at 30 s, with jitter so that many
 * clients cut off by one server restart do not all come back at once. */
#ifndef CHAT_BACKOFF_H
#define CHAT_BACKOFF_H

#include <stdint.h>

#define CHAT_BACKOFF_BASE_MS 1000
#define CHAT_BACKOFF_MAX_MS 30000

/* The delay before attempt `attempt` (0 for the first retry), in ms: a value
 * in [cap/2, cap] where cap = min(30 s, 1 s * 2^attempt), chosen by rnd
 * (any 32-bit random number). */
int64_t chat_backoff_delay(unsigned attempt, uint32_t rnd);

#endif /* CHAT_BACKOFF_H */
