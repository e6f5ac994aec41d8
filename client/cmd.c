/* cmd.c -- the command grammar of CLI.md. */
#include "cmd.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "/msg USER TEXT        send TEXT to USER (direct first, relay otherwise)\n"
    "/add USER             ask USER to be a contact (or accept USER's request)\n"
    "/accept USER          accept a contact request\n"
    "/decline USER         decline a contact request\n"
    "/remove USER          remove a contact\n"
    "/contacts             list contacts with presence\n"
    "/status online|away|busy\n"
    "/group create|leave GROUP\n"
    "/group add GROUP USER\n"
    "/group members GROUP\n"
    "/groups\n"
    "/gmsg GROUP TEXT      send TEXT to a group\n"
    "/query USER|#GROUP    talk to USER or GROUP: plain lines go there\n"
    "/query                list the conversations and their unread messages\n"
    "/history USER|#GROUP [N]  the last N messages (default 20)\n"
    "/reconnect            connect to the server again now\n"
    "/wait SECONDS         pause the script (for tests and demos)\n"
    "/quit                 log out and exit\n"
    "/help                 this text\n"
    "TEXT                  (no leading /) send TEXT to the conversation\n";

const char *chat_cmd_help(void) { return help_text; }

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err && errlen) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The next space-separated word of *p (NUL-terminated in place), or NULL. */
static char *word(char **p) {
  char *s = *p, *w;
  while (is_space(*s))
    s++;
  if (!*s) {
    *p = s;
    return NULL;
  }
  w = s;
  while (*s && !is_space(*s))
    s++;
  if (*s)
    *s++ = '\0';
  *p = s;
  return w;
}

/* The rest of the line after the spaces that separate it from the words. */
static char *rest(char **p) {
  char *s = *p;
  while (is_space(*s))
    s++;
  *p = s + strlen(s);
  return s;
}

static int no_more(char **p) {
  char *s = *p;
  while (is_space(*s))
    s++;
  return *s == '\0';
}

static int take_name(char **p, const char **out, const char *what,
                     const char *usage, char *err, size_t errlen) {
  char *w = word(p);
  if (!w)
    return fail(err, errlen, "usage: %s", usage);
  if (!chat_name_valid(w))
    return fail(err, errlen, "bad %s name '%.40s' (a-z 0-9 _ . -, at most 32)",
                what, w);
  *out = w;
  return 0;
}

static int take_text(char **p, chat_cmd_t *cmd, const char *usage, char *err,
                     size_t errlen) {
  char *t = rest(p);
  size_t n = strlen(t);
  if (n == 0)
    return fail(err, errlen, "usage: %s", usage);
  if (n > CHAT_MAX_BODY)
    return fail(err, errlen, "message too long (%zu bytes, at most %d)", n,
                CHAT_MAX_BODY);
  cmd->text = t;
  cmd->text_len = n;
  return 0;
}

typedef struct simple {
  const char *word;
  chat_cmd_kind_t kind;
  int takes_name; /* one user name */
} simple_t;

static const simple_t simple_cmds[] = {
    {"add", CHAT_CMD_ADD, 1},         {"accept", CHAT_CMD_ACCEPT, 1},
    {"decline", CHAT_CMD_DECLINE, 1}, {"remove", CHAT_CMD_REMOVE, 1},
    {"contacts", CHAT_CMD_CONTACTS, 0}, {"groups", CHAT_CMD_GROUPS, 0},
    {"quit", CHAT_CMD_QUIT, 0},       {"help", CHAT_CMD_HELP, 0},
    {"reconnect", CHAT_CMD_RECONNECT, 0},
};

/* USER or #GROUP (for /query and /history). */
static int take_target(char **p, chat_cmd_t *cmd, const char *usage,
                       char *err, size_t errlen) {
  char *w = word(p);
  if (!w)
    return fail(err, errlen, "usage: %s", usage);
  if (*w == '#') {
    cmd->is_group = 1;
    w++;
  }
  if (!chat_name_valid(w))
    return fail(err, errlen, "bad %s name '%.40s' (a-z 0-9 _ . -, at most 32)",
                cmd->is_group ? "group" : "user", w);
  cmd->name = w;
  return 0;
}

static int parse_history(char **p, chat_cmd_t *cmd, char *err,
                         size_t errlen) {
  static const char usage[] = "/history USER|#GROUP [N]";
  char *w, *end;
  long n;
  int rc;
  cmd->kind = CHAT_CMD_HISTORY;
  if ((rc = take_target(p, cmd, usage, err, errlen)) < 0)
    return rc;
  if (!(w = word(p)))
    return 0;
  n = strtol(w, &end, 10);
  if (*end || n <= 0 || n > CHAT_CMD_MAX_HISTORY)
    return fail(err, errlen, "bad count '%.20s' (1 to %d)", w,
                CHAT_CMD_MAX_HISTORY);
  cmd->count = (int)n;
  return 0;
}

static int parse_group(char **p, chat_cmd_t *cmd, char *err, size_t errlen) {
  static const char usage[] =
      "/group create|leave|members GROUP, /group add GROUP USER";
  char *sub = word(p);
  int rc;
  if (!sub)
    return fail(err, errlen, "usage: %s", usage);
  if (strcmp(sub, "create") == 0)
    cmd->kind = CHAT_CMD_GROUP_CREATE;
  else if (strcmp(sub, "leave") == 0)
    cmd->kind = CHAT_CMD_GROUP_LEAVE;
  else if (strcmp(sub, "members") == 0)
    cmd->kind = CHAT_CMD_GROUP_MEMBERS;
  else if (strcmp(sub, "add") == 0)
    cmd->kind = CHAT_CMD_GROUP_ADD;
  else
    return fail(err, errlen, "usage: %s", usage);
  if ((rc = take_name(p, &cmd->name, "group", usage, err, errlen)) < 0)
    return rc;
  if (cmd->kind == CHAT_CMD_GROUP_ADD &&
      (rc = take_name(p, &cmd->user, "user", usage, err, errlen)) < 0)
    return rc;
  return 0;
}

static int parse_wait(char **p, chat_cmd_t *cmd, char *err, size_t errlen) {
  char *w = word(p), *end;
  double s;
  if (!w)
    return fail(err, errlen, "usage: /wait SECONDS");
  s = strtod(w, &end);
  if (*end || end == w || !isfinite(s) || s < 0 ||
      s * 1000 > (double)CHAT_CMD_MAX_WAIT_MS)
    return fail(err, errlen, "bad number of seconds '%.20s'", w);
  cmd->kind = CHAT_CMD_WAIT;
  cmd->wait_ms = (int64_t)(s * 1000 + 0.5);
  return 0;
}

int chat_cmd_parse(char *line, chat_cmd_t *cmd, char *err, size_t errlen) {
  char *p = line, *verb;
  int rc = 0;

  memset(cmd, 0, sizeof(*cmd));
  if (err && errlen)
    err[0] = '\0';
  if (line[0] != '/') {
    if (no_more(&p))
      return 0; /* nothing typed */
    cmd->kind = CHAT_CMD_SAY;
    p = line;
    if (strlen(line) > CHAT_MAX_BODY)
      return fail(err, errlen, "message too long (%zu bytes, at most %d)",
                  strlen(line), CHAT_MAX_BODY);
    cmd->text = line;
    cmd->text_len = strlen(line);
    return 0;
  }
  p = line + 1;
  verb = word(&p);
  if (!verb)
    return fail(err, errlen, "empty command; /help lists them");

  if (strcmp(verb, "msg") == 0) {
    cmd->kind = CHAT_CMD_MSG;
    if ((rc = take_name(&p, &cmd->name, "user", "/msg USER TEXT", err,
                        errlen)) < 0)
      return rc;
    return take_text(&p, cmd, "/msg USER TEXT", err, errlen);
  }
  if (strcmp(verb, "gmsg") == 0) {
    cmd->kind = CHAT_CMD_GMSG;
    if ((rc = take_name(&p, &cmd->name, "group", "/gmsg GROUP TEXT", err,
                        errlen)) < 0)
      return rc;
    return take_text(&p, cmd, "/gmsg GROUP TEXT", err, errlen);
  }
  if (strcmp(verb, "status") == 0) {
    char *w = word(&p);
    cmd->kind = CHAT_CMD_STATUS;
    cmd->status = w ? chat_status_from_name(w) : CHAT_STATUS_NONE;
    if (cmd->status == CHAT_STATUS_NONE || cmd->status == CHAT_STATUS_OFFLINE)
      return fail(err, errlen, "usage: /status online|away|busy");
  } else if (strcmp(verb, "group") == 0) {
    rc = parse_group(&p, cmd, err, errlen);
  } else if (strcmp(verb, "wait") == 0) {
    rc = parse_wait(&p, cmd, err, errlen);
  } else if (strcmp(verb, "query") == 0) {
    cmd->kind = CHAT_CMD_QUERY;
    if (!no_more(&p))
      rc = take_target(&p, cmd, "/query [USER|#GROUP]", err, errlen);
  } else if (strcmp(verb, "history") == 0) {
    rc = parse_history(&p, cmd, err, errlen);
  } else {
    size_t i;
    for (i = 0; i < sizeof(simple_cmds) / sizeof(simple_cmds[0]); i++)
      if (strcmp(verb, simple_cmds[i].word) == 0)
        break;
    if (i == sizeof(simple_cmds) / sizeof(simple_cmds[0]))
      return fail(err, errlen, "unknown command /%.40s; /help lists them",
                  verb);
    cmd->kind = simple_cmds[i].kind;
    if (simple_cmds[i].takes_name) {
      char usage[32];
      snprintf(usage, sizeof(usage), "/%s USER", simple_cmds[i].word);
      rc = take_name(&p, &cmd->name, "user", usage, err, errlen);
    }
  }
  if (rc < 0)
    return rc;
  if (!no_more(&p))
    return fail(err, errlen, "too many words for /%s", verb);
  return 0;
}
