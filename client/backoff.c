/* backoff.c -- jittered exponential reconnect delays ("equal jitter"). */
#include "backoff.h"

int64_t chat_backoff_delay(unsigned attempt, uint32_t rnd) {
  int64_t cap = CHAT_BACKOFF_BASE_MS;
  for (unsigned i = 0; i < attempt && cap < CHAT_BACKOFF_MAX_MS; i++)
    cap *= 2;
  if (cap > CHAT_BACKOFF_MAX_MS)
    cap = CHAT_BACKOFF_MAX_MS;
  return cap / 2 + (int64_t)(rnd % (uint32_t)(cap / 2 + 1));
}
