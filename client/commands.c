/* commands.c -- runs what the user typed (parsed by cmd.c): messages go to
 * the outbox, server commands become one request each (its kind and subject
 * recorded in the request table, see session.c for the reply), and the
 * client's own commands (/query, /history, /reconnect, /wait, /quit, /help)
 * are answered here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cmd.h"

#define HISTORY_DEFAULT 20

/* An error that answers a command: the command's name rides along so that
 * a script knows which line failed. */
static void cmd_error(chat_client_t *c, const char *command, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void cmd_error(chat_client_t *c, const char *command, const char *code,
                      const char *fmt, ...) {
  char buf[512];
  va_list ap;
  json_t *msg;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  /* The message may quote what was typed, which need not be UTF-8. */
  if (!(msg = json_string(buf))) {
    for (char *p = buf; *p; p++)
      if ((unsigned char)*p >= 0x80)
        *p = '?';
    msg = json_string(buf);
  }
  chat__out_event(c, json_pack("{s:s,s:s,s:o,s:s}", "event", "error", "code",
                               code, "message", msg, "command", command));
}

void chat__cmd_send(chat_client_t *c, const char *to, const char *group,
                    const char *text, size_t len) {
  const char *command = group ? "gmsg" : "msg";
  char msg_id[33];
  int rc;
  int64_t ts = chat__client_wall(c);
  json_t *probe = json_stringn(text, len); /* jansson checks the UTF-8 */

  if (!probe) {
    cmd_error(c, command, "bad_command", "the message is not valid UTF-8");
    c->failed_sends++;
    return;
  }
  json_decref(probe);
  if (to && strcmp(to, c->opts.user) == 0) {
    cmd_error(c, command, "bad_command", "you cannot message yourself");
    c->failed_sends++;
    return;
  }
  chat__client_new_msg_id(msg_id);
  rc = chat_outbox_submit(c->ob, to, group, msg_id, text, len, ts,
                          (int64_t)chat__client_now(c));
  if (rc == -ENOBUFS) {
    cmd_error(c, command, "outbox_full", "too many messages waiting; try later");
    c->failed_sends++;
    return;
  }
  if (rc < 0) {
    cmd_error(c, command, "bad_command", "cannot send: %s", chat_strerror(rc));
    c->failed_sends++;
    return;
  }
  chat__client_record(c, to ? to : group, group != NULL, c->opts.user, text,
                      len, ts);
  if (c->net != CHAT_NET_READY) /* it waits in the outbox: say so */
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "queued",
                                 group ? "group" : "to", to ? to : group,
                                 "msg_id", msg_id));
  chat_convs_sent(&c->convs, to ? to : group, group != NULL);
  c->prompt_dirty = 1;
}

/* A request that needs the session (see session.c for its reply). */
static void request(chat_client_t *c, json_t *m, chat_req_kind_t kind,
                    const char *arg, const char *arg2) {
  if (c->net != CHAT_NET_READY && c->net != CHAT_NET_CONTACTS) {
    json_decref(m);
    cmd_error(c, chat_req_command(kind), "not_connected",
              "not connected to the server (reconnecting); try again");
    return;
  }
  chat__session_request(c, m, kind, arg, arg2);
}

/* The commands that are one request with one string field. */
static const struct one_field {
  chat_cmd_kind_t kind;
  chat_req_kind_t req;
  const char *type, *key;
} one_field[] = {
    {CHAT_CMD_ADD, CHAT_REQ_ADD, "contact_add", "user"},
    {CHAT_CMD_ACCEPT, CHAT_REQ_ACCEPT, "contact_accept", "user"},
    {CHAT_CMD_DECLINE, CHAT_REQ_DECLINE, "contact_decline", "user"},
    {CHAT_CMD_REMOVE, CHAT_REQ_REMOVE, "contact_remove", "user"},
    {CHAT_CMD_STATUS, CHAT_REQ_STATUS, "status", "status"},
    {CHAT_CMD_GROUP_CREATE, CHAT_REQ_GROUP_CREATE, "group_create", "group"},
    {CHAT_CMD_GROUP_LEAVE, CHAT_REQ_GROUP_LEAVE, "group_leave", "group"},
    {CHAT_CMD_GROUP_MEMBERS, CHAT_REQ_GROUP_MEMBERS, "group_members", "group"},
};

static void request_one_field(chat_client_t *c, const chat_cmd_t *cmd) {
  const char *v = cmd->kind == CHAT_CMD_STATUS ? chat_status_name(cmd->status)
                                               : cmd->name;
  for (size_t i = 0; i < sizeof(one_field) / sizeof(one_field[0]); i++) {
    const struct one_field *f = &one_field[i];
    if (f->kind == cmd->kind) {
      request(c, json_pack("{s:s,s:s}", "type", f->type, f->key, v), f->req,
              v, NULL);
      return;
    }
  }
}

/* /query NAME: plain lines go there from now on. /query alone lists the
 * conversations with their unread counts. */
static void query(chat_client_t *c, const chat_cmd_t *cmd) {
  json_t *ev, *list;
  if (cmd->name) {
    if (!cmd->is_group && strcmp(cmd->name, c->opts.user) == 0) {
      cmd_error(c, "query", "bad_command", "you cannot talk to yourself");
      return;
    }
    chat_convs_query(&c->convs, cmd->name, cmd->is_group);
    c->prompt_dirty = 1;
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "ok", "command",
                                 "query", cmd->is_group ? "group" : "user",
                                 cmd->name));
    return;
  }
  list = json_array();
  for (size_t i = 0; list && i < c->convs.n; i++) {
    const chat_conv_t *v = &c->convs.v[i];
    json_array_append_new(
        list, json_pack("{s:s,s:i,s:b}", v->is_group ? "group" : "user",
                        v->name, "unread", (int)v->unread, "current",
                        strcmp(v->name, c->convs.cur) == 0 &&
                            v->is_group == c->convs.cur_is_group));
  }
  ev = json_pack("{s:s,s:o}", "event", "conversations", "conversations",
                 list ? list : json_array());
  chat__out_event(c, ev);
}

static void history(chat_client_t *c, const chat_cmd_t *cmd) {
  int n = cmd->count > 0 ? cmd->count : HISTORY_DEFAULT;
  json_t *msgs = c->env->hist_read
                     ? c->env->hist_read(c->env_ctx, cmd->name, cmd->is_group, n)
                     : NULL;
  chat__out_event(c, json_pack("{s:s,s:s,s:o}", "event", "history",
                               cmd->is_group ? "group" : "user", cmd->name,
                               "messages", msgs ? msgs : json_array()));
}

/* The command a line names, for its error event: "msg" for a plain line,
 * else the word after '/', cut at the first byte that cannot be in a
 * command's name (so that it is always valid UTF-8). */
static void cmd_name(const char *line, char *verb, size_t len) {
  size_t n = 0;
  if (line[0] != '/') {
    snprintf(verb, len, "msg");
    return;
  }
  line++;
  while (n + 1 < len && ((line[n] >= 'a' && line[n] <= 'z') ||
                         (line[n] >= '0' && line[n] <= '9') || line[n] == '_'))
    verb[n] = line[n], n++;
  verb[n] = '\0';
}

void chat__cmd_run(chat_client_t *c, char *line) {
  chat_cmd_t cmd;
  char err[200], verb[24];

  cmd_name(line, verb, sizeof(verb));
  if (chat_cmd_parse(line, &cmd, err, sizeof(err)) < 0) {
    cmd_error(c, verb, "bad_command", "%s", err);
    return;
  }
  switch (cmd.kind) {
  case CHAT_CMD_NONE:
    break;
  case CHAT_CMD_SAY:
    if (!c->convs.cur[0])
      cmd_error(c, "msg", "bad_command",
                "no conversation yet: /query USER or /msg USER TEXT");
    else if (c->convs.cur_is_group)
      chat__cmd_send(c, NULL, c->convs.cur, cmd.text, cmd.text_len);
    else
      chat__cmd_send(c, c->convs.cur, NULL, cmd.text, cmd.text_len);
    break;
  case CHAT_CMD_MSG:
    chat__cmd_send(c, cmd.name, NULL, cmd.text, cmd.text_len);
    break;
  case CHAT_CMD_GMSG:
    chat__cmd_send(c, NULL, cmd.name, cmd.text, cmd.text_len);
    break;
  case CHAT_CMD_ADD:
  case CHAT_CMD_ACCEPT:
  case CHAT_CMD_DECLINE:
  case CHAT_CMD_REMOVE:
  case CHAT_CMD_STATUS:
  case CHAT_CMD_GROUP_CREATE:
  case CHAT_CMD_GROUP_LEAVE:
  case CHAT_CMD_GROUP_MEMBERS:
    request_one_field(c, &cmd);
    break;
  case CHAT_CMD_CONTACTS:
    request(c, chat_msg_new(CHAT_T_CONTACTS), CHAT_REQ_CONTACTS, NULL, NULL);
    break;
  case CHAT_CMD_GROUP_ADD:
    request(c, json_pack("{s:s,s:s,s:s}", "type", "group_add", "group",
                         cmd.name, "user", cmd.user),
            CHAT_REQ_GROUP_ADD, cmd.name, cmd.user);
    break;
  case CHAT_CMD_GROUPS:
    request(c, chat_msg_new(CHAT_T_GROUPS), CHAT_REQ_GROUPS, NULL, NULL);
    break;
  case CHAT_CMD_QUERY:
    query(c, &cmd);
    break;
  case CHAT_CMD_HISTORY:
    history(c, &cmd);
    break;
  case CHAT_CMD_RECONNECT:
    c->reconnect_asked = 1; /* the transport's business */
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "ok", "command",
                                 "reconnect"));
    break;
  case CHAT_CMD_WAIT:
    c->wait_ms = cmd.wait_ms; /* the script reader pauses */
    break;
  case CHAT_CMD_QUIT:
    chat__client_finish(c, 1);
    break;
  case CHAT_CMD_HELP:
    if (c->opts.json)
      fputs(chat_cmd_help(), stderr);
    else
      chat__out_info(c, "%s", chat_cmd_help());
    break;
  }
}
