/* cmd.h -- one line typed by the user (or read from a script) into a command.
 * Socket-free; the grammar is CLI.md's:
 *   /msg USER TEXT  /add USER  /accept USER  /decline USER  /remove USER
 *   /contacts  /status online|away|busy  /group create|leave GROUP
 *   /group add GROUP USER  /group members GROUP  /groups  /gmsg GROUP TEXT
 *   /wait SECONDS  /quit  /help
 * and this client's own: /query [USER|#GROUP]  /history USER|#GROUP [N]
 *   /reconnect
 * and a line without a leading '/' is a message to the last conversation. */
#ifndef CHAT_CMD_H
#define CHAT_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "chat_protocol.h"

#define CHAT_CMD_MAX_WAIT_MS (24LL * 3600 * 1000)
#define CHAT_CMD_MAX_HISTORY 10000 /* /history USER N: the largest N */

typedef enum chat_cmd_kind {
  CHAT_CMD_NONE = 0,  /* an empty line: nothing to do */
  CHAT_CMD_SAY,       /* text to the last conversation */
  CHAT_CMD_MSG,       /* name = user */
  CHAT_CMD_ADD, CHAT_CMD_ACCEPT, CHAT_CMD_DECLINE, CHAT_CMD_REMOVE, /* name */
  CHAT_CMD_CONTACTS,
  CHAT_CMD_STATUS,    /* status */
  CHAT_CMD_GROUP_CREATE, CHAT_CMD_GROUP_LEAVE, CHAT_CMD_GROUP_MEMBERS, /* name */
  CHAT_CMD_GROUP_ADD, /* name = group, user */
  CHAT_CMD_GROUPS,
  CHAT_CMD_GMSG,      /* name = group */
  CHAT_CMD_WAIT,      /* wait_ms */
  CHAT_CMD_QUIT,
  CHAT_CMD_HELP,
  CHAT_CMD_QUERY,     /* name (NULL: list the conversations), is_group */
  CHAT_CMD_HISTORY,   /* name, is_group, count (0: the default) */
  CHAT_CMD_RECONNECT
} chat_cmd_kind_t;

/* Pointers borrow from the parsed line. */
typedef struct chat_cmd {
  chat_cmd_kind_t kind;
  const char *name;     /* user or group */
  const char *user;     /* GROUP_ADD */
  const char *text;     /* SAY, MSG, GMSG: the rest of the line, as typed */
  size_t text_len;
  chat_status_t status; /* STATUS */
  int64_t wait_ms;      /* WAIT */
  int is_group;         /* QUERY, HISTORY: name was written #GROUP */
  int count;            /* HISTORY */
} chat_cmd_t;

/* Parses line (NUL-terminated, no LF; modified in place). Returns 0, or
 * -EINVAL with a one-line reason for a person in err (errlen bytes). */
int chat_cmd_parse(char *line, chat_cmd_t *cmd, char *err, size_t errlen);

/* The /help text, several lines ending in LF. */
const char *chat_cmd_help(void);

#endif /* CHAT_CMD_H */
