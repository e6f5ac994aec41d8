/* stamp.c -- event times for people: the date only when it is not today. */
#include "stamp.h"

#include <time.h>

void chat_stamp_format(char *buf, size_t len, long long ts_ms,
                       long long now_ms) {
  time_t t = (time_t)(ts_ms / 1000), now = (time_t)(now_ms / 1000);
  struct tm tm, today;
  localtime_r(&t, &tm);
  localtime_r(&now, &today);
  if (tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday)
    strftime(buf, len, "[%H:%M:%S]", &tm);
  else
    strftime(buf, len, "[%Y-%m-%d %H:%M:%S]", &tm);
}
