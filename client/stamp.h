/* stamp.h -- the time shown in front of an event for people. Socket-free. */
#ifndef CHAT_STAMP_H
#define CHAT_STAMP_H

#include <stddef.h>

/* "[12:34:56]" for ts_ms (ms since the epoch, local time) when it falls on
 * the same local day as now_ms, else "[2026-12-03 12:34:56]": a message
 * held since yesterday must not look like today's. len >= 24. */
void chat_stamp_format(char *buf, size_t len, long long ts_ms,
                       long long now_ms);

#endif /* CHAT_STAMP_H */
