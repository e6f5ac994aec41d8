/* commands.c -- runs what the user typed (parsed by cmd.c): messages go to
 * the outbox, everything else becomes one request whose id says how to show
 * the reply (see session.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cmd.h"

static int64_t wall_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) < 0)
    return 0;
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void send_text(chat_client_t *c, const char *to, const char *group,
                      const char *text, size_t len) {
  char msg_id[33];
  int rc;
  json_t *probe = json_stringn(text, len); /* jansson checks the UTF-8 */

  if (!probe) {
    chat__out_error(c, "bad_command", "the message is not valid UTF-8");
    return;
  }
  json_decref(probe);
  if (to && strcmp(to, c->opts.user) == 0) {
    chat__out_error(c, "bad_command", "you cannot message yourself");
    return;
  }
  chat__client_new_msg_id(msg_id);
  rc = chat_outbox_submit(c->ob, to, group, msg_id, text, len, wall_ms(),
                          (int64_t)chat__client_now(c));
  if (rc == -ENOBUFS)
    chat__out_error(c, "outbox_full", "too many messages waiting; try later");
  else if (rc < 0)
    chat__out_error(c, "bad_command", "cannot send: %s", chat_strerror(rc));
  snprintf(c->last_name, sizeof(c->last_name), "%s", to ? to : group);
  c->last_is_group = group != NULL;
  chat__client_rearm(c);
}

/* A request that needs the session; id tells session.c what it was. */
static void request(chat_client_t *c, json_t *m, const char *id) {
  if (c->net != CHAT_NET_READY && c->net != CHAT_NET_CONTACTS) {
    json_decref(m);
    chat__out_error(c, "not_connected",
                    "not connected to the server (reconnecting); try again");
    return;
  }
  chat__session_request(c, m, id);
}

/* The commands that are one request with one string field. The id is
 * "prefix:value": session.c tells the replies apart by those prefixes. */
static const struct one_field {
  chat_cmd_kind_t kind;
  const char *type, *key, *prefix;
} one_field[] = {
    {CHAT_CMD_ADD, "contact_add", "user", "add"},
    {CHAT_CMD_ACCEPT, "contact_accept", "user", "accept"},
    {CHAT_CMD_DECLINE, "contact_decline", "user", "decline"},
    {CHAT_CMD_REMOVE, "contact_remove", "user", "remove"},
    {CHAT_CMD_STATUS, "status", "status", "status"},
    {CHAT_CMD_GROUP_CREATE, "group_create", "group", "gcreate"},
    {CHAT_CMD_GROUP_LEAVE, "group_leave", "group", "gleave"},
    {CHAT_CMD_GROUP_MEMBERS, "group_members", "group", "gmembers"},
};

static void request_one_field(chat_client_t *c, const chat_cmd_t *cmd) {
  const char *v = cmd->kind == CHAT_CMD_STATUS ? chat_status_name(cmd->status)
                                               : cmd->name;
  char id[80];

  for (size_t i = 0; i < sizeof(one_field) / sizeof(one_field[0]); i++) {
    const struct one_field *f = &one_field[i];
    if (f->kind != cmd->kind)
      continue;
    snprintf(id, sizeof(id), "%s:%s", f->prefix, v);
    request(c, json_pack("{s:s,s:s}", "type", f->type, f->key, v), id);
    return;
  }
}

void chat__cmd_run(chat_client_t *c, char *line) {
  chat_cmd_t cmd;
  char err[200], id[80];

  if (chat_cmd_parse(line, &cmd, err, sizeof(err)) < 0) {
    chat__out_error(c, "bad_command", "%s", err);
    return;
  }
  switch (cmd.kind) {
  case CHAT_CMD_NONE:
    break;
  case CHAT_CMD_SAY:
    if (!c->last_name[0])
      chat__out_error(c, "bad_command",
                      "no conversation yet: start one with /msg USER TEXT");
    else if (c->last_is_group)
      send_text(c, NULL, c->last_name, cmd.text, cmd.text_len);
    else
      send_text(c, c->last_name, NULL, cmd.text, cmd.text_len);
    break;
  case CHAT_CMD_MSG:
    send_text(c, cmd.name, NULL, cmd.text, cmd.text_len);
    break;
  case CHAT_CMD_GMSG:
    send_text(c, NULL, cmd.name, cmd.text, cmd.text_len);
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
    request(c, chat_msg_new(CHAT_T_CONTACTS), "contacts");
    break;
  case CHAT_CMD_GROUP_ADD:
    snprintf(id, sizeof(id), "gadd:%s", cmd.name);
    request(c, json_pack("{s:s,s:s,s:s}", "type", "group_add", "group",
                         cmd.name, "user", cmd.user), id);
    break;
  case CHAT_CMD_GROUPS:
    request(c, chat_msg_new(CHAT_T_GROUPS), "groups");
    break;
  case CHAT_CMD_WAIT:
    chat__input_wait(c, cmd.wait_ms);
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
