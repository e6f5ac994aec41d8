/* log.c -- one line per call on stderr, written with a single write(2) so the
 * lines of concurrent processes sharing a terminal or pipe never interleave. */
#include "chat_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A line longer than this is cut (and marked) rather than allocated: logging
 * must not fail or grow memory because a peer sent something big. */
#define LOG_LINE_MAX 8192

static chat_log_level_t log_level = CHAT_LOG_INFO;
static const char *log_prefix = "chat";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void chat_log_set_level(chat_log_level_t level) {
  if (level >= CHAT_LOG_ERROR && level <= CHAT_LOG_DEBUG)
    log_level = level;
}

chat_log_level_t chat_log_get_level(void) { return log_level; }

int chat_log_level_parse(const char *name, chat_log_level_t *level) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  if (name == NULL)
    return -EINVAL;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcasecmp(name, names[i]) == 0) {
      if (level != NULL)
        *level = (chat_log_level_t)i;
      return 0;
    }
  }
  return -EINVAL;
}

void chat_log_set_prefix(const char *prefix) {
  log_prefix = prefix != NULL ? prefix : "chat";
}

/* Writes all of buf, retrying on EINTR and short writes. Errors are dropped:
 * there is nowhere left to report them. */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

void chat_log_write(chat_log_level_t level, int force, const char *fmt, ...) {
  char line[LOG_LINE_MAX];
  struct timespec ts;
  struct tm tm;
  size_t head, len;
  int n;

  if (level > log_level && !force)
    return;
  if (level < CHAT_LOG_ERROR || level > CHAT_LOG_DEBUG)
    level = CHAT_LOG_ERROR;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, log_prefix,
               level_names[level]);
  if (n < 0)
    return;
  head = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

  va_list ap;
  va_start(ap, fmt);
  n = vsnprintf(line + head, sizeof(line) - head, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  len = head + (size_t)n;
  if (len > sizeof(line) - 2) {
    /* Cut: keep room for the marker and the LF. */
    static const char marker[] = "...[truncated]";
    len = sizeof(line) - 2;
    memcpy(line + len - (sizeof(marker) - 1), marker, sizeof(marker) - 1);
  }

  /* One call is one line: a newline in the text would let whoever controls
   * the text forge log lines, so CR and LF become spaces. */
  for (size_t i = head; i < len; i++) {
    if (line[i] == '\n' || line[i] == '\r')
      line[i] = ' ';
  }
  line[len++] = '\n';
  write_all(STDERR_FILENO, line, len);
}
