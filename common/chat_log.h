/* chat_log.h -- levelled, one-line logging to stderr, shared by every program. */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

typedef enum chat_log_level {
  CHAT_LOG_ERROR = 0,
  CHAT_LOG_WARN,
  CHAT_LOG_INFO,
  CHAT_LOG_DEBUG
} chat_log_level_t;

/* Messages above level are dropped. Default CHAT_LOG_INFO. */
void chat_log_set_level(chat_log_level_t level);
chat_log_level_t chat_log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int chat_log_level_parse(const char *name, chat_log_level_t *level);
/* Prefix for every line, e.g. "chat-server" (borrowed, must outlive logging). */
void chat_log_set_prefix(const char *prefix);

/* Writes one line: "<ISO time> <prefix> <LEVEL> <text>\n". Newlines inside
 * the text are replaced, so one call is always one line. force writes it
 * whatever the level (e.g. the "listening on" line). */
void chat_log_write(chat_log_level_t level, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHAT_ERROR(...) chat_log_write(CHAT_LOG_ERROR, 0, __VA_ARGS__)
#define CHAT_WARN(...) chat_log_write(CHAT_LOG_WARN, 0, __VA_ARGS__)
#define CHAT_INFO(...) chat_log_write(CHAT_LOG_INFO, 0, __VA_ARGS__)
#define CHAT_DEBUG(...)                                          \
  do {                                                           \
    if (chat_log_get_level() >= CHAT_LOG_DEBUG)                  \
      chat_log_write(CHAT_LOG_DEBUG, 0, __VA_ARGS__);            \
  } while (0)

#endif /* CHAT_LOG_H */
