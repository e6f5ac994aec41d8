/* session.c -- what the server says once we are logged in: replies to our
 * requests (matched by the string id we gave them) and pushed events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client.h"

static void roster_from(chat_client_t *c, const json_t *list) {
  size_t i;
  json_t *e;
  chat_roster_clear(&c->roster);
  json_array_foreach(list, i, e) {
    const char *user = json_string_value(json_object_get(e, "user"));
    const char *st = json_string_value(json_object_get(e, "status"));
    if (user && st)
      chat_roster_set(&c->roster, user, chat_status_from_name(st));
  }
}

/* The login is complete once the contacts are known: only then can the
 * outbox choose paths. */
static void on_ready(chat_client_t *c, const chat_msg_t *m) {
  roster_from(c, m->contacts);
  c->net = CHAT_NET_READY;
  chat_outbox_server_up(c->ob, chat__client_now(c));
  chat__client_rearm(c);
}

void chat__session_logged_in(chat_client_t *c) {
  int first = !c->ever_ready;
  c->ever_ready = 1;
  chat__out_event(c, json_pack("{s:s,s:s,s:i}", "event", "ready", "user",
                               c->opts.user, "p2p_port", c->p2p_port));
  if (first && c->env->input_start(c->env_ctx) < 0)
    chat__client_stop(c, 1);
}

static json_t *copy_list(const json_t *list) {
  return list ? json_deep_copy(list) : json_array();
}

static void on_ok(chat_client_t *c, const chat_msg_t *m, const char *id) {
  uint64_t now = chat__client_now(c);
  const char *arg = strchr(id, ':');
  arg = arg ? arg + 1 : "";

  if (strcmp(id, "login-contacts") == 0) {
    on_ready(c, m);
  } else if (strncmp(id, "s:", 2) == 0) {
    chat_outbox_relay_ok(c->ob, arg, m->state ? m->state : "relayed", -1, -1,
                         now);
  } else if (strncmp(id, "g:", 2) == 0) {
    chat_outbox_relay_ok(c->ob, arg, NULL, m->relayed < 0 ? 0 : m->relayed,
                         m->stored < 0 ? 0 : m->stored, now);
  } else if (strncmp(id, "c:", 2) == 0) {
    if (!m->host || !m->ticket || m->port <= 0)
      chat_outbox_connect_failed(c->ob, arg, "bad_request", now);
    else
      chat_outbox_connect_ok(c->ob, arg, m->host, (int)m->port, m->ticket,
                             now);
  } else if (strcmp(id, "contacts") == 0) {
    roster_from(c, m->contacts);
    chat__out_event(c, json_pack("{s:s,s:o}", "event", "contacts", "contacts",
                                 copy_list(m->contacts)));
  } else if (strncmp(id, "gmembers:", 9) == 0) {
    chat__out_event(c, json_pack("{s:s,s:s,s:o}", "event", "group_members",
                                 "group", arg, "members",
                                 copy_list(m->members)));
  } else if (strcmp(id, "groups") == 0) {
    chat__out_event(c, json_pack("{s:s,s:o}", "event", "groups", "groups",
                                 copy_list(m->groups)));
  } else if (strncmp(id, "add:", 4) == 0) {
    chat__out_info(c, "contact request sent to %s", arg);
  } else if (strncmp(id, "accept:", 7) == 0) {
    chat__out_info(c, "accepted %s", arg);
  } else if (strncmp(id, "decline:", 8) == 0) {
    chat__out_info(c, "declined %s", arg);
  } else if (strncmp(id, "remove:", 7) == 0) {
    chat_roster_remove(&c->roster, arg);
    chat__out_info(c, "removed %s", arg);
  } else if (strncmp(id, "status:", 7) == 0) {
    chat__out_info(c, "status is now %s", arg);
  } else if (strncmp(id, "gcreate:", 8) == 0) {
    chat__out_info(c, "created #%s", arg);
  } else if (strncmp(id, "gleave:", 7) == 0) {
    chat__out_info(c, "left #%s", arg);
  } else if (strncmp(id, "gadd:", 5) == 0) {
    chat__out_info(c, "added to #%s", arg);
  }
  chat__client_rearm(c);
}

static void on_error(chat_client_t *c, const chat_msg_t *m, const char *id) {
  uint64_t now = chat__client_now(c);
  const char *code = m->code, *text = m->message ? m->message : "";

  if (id && (strncmp(id, "s:", 2) == 0 || strncmp(id, "g:", 2) == 0)) {
    chat_outbox_relay_failed(c->ob, id + 2, code, text, now);
  } else if (id && strncmp(id, "c:", 2) == 0) {
    chat_outbox_connect_failed(c->ob, id + 2, code, now);
  } else if (id && strcmp(id, "login-contacts") == 0) {
    chat__session_drop(c, code); /* try the whole login again */
  } else {
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "error", "code",
                                 code, "message", text));
  }
  chat__client_rearm(c);
}

int chat__session_show_message(chat_client_t *c, const char *from,
                               const char *group, const char *msg_id,
                               const char *body, size_t body_len, int64_t ts,
                               const char *via, int offline) {
  json_t *ev;
  if (chat_dedup_check(c->dedup, from, msg_id) != 0)
    return 0; /* seen (or not valid): acked, never shown twice */
  if (!c->last_name[0]) {
    snprintf(c->last_name, sizeof(c->last_name), "%s", group ? group : from);
    c->last_is_group = group != NULL;
  }
  ev = json_pack("{s:s}", "event", "message");
  if (!ev)
    return 0;
  if (group)
    json_object_set_new(ev, "group", json_string(group));
  json_object_set_new(ev, "from", json_string(from));
  json_object_set_new(ev, "body", json_stringn(body, body_len));
  json_object_set_new(ev, "msg_id", json_string(msg_id));
  json_object_set_new(ev, "ts", json_integer(ts));
  json_object_set_new(ev, "via", json_string(via));
  json_object_set_new(ev, "offline", json_boolean(offline));
  chat__out_event(c, ev);
  return 1;
}

static void on_deliver(chat_client_t *c, const chat_msg_t *m) {
  chat__session_show_message(c, m->from, m->group, m->msg_id, m->body,
                             m->body_len, m->ts, "relay", m->offline > 0);
  /* Duplicates are acked too, or the server would keep them forever. */
  chat__session_request(c,
                        json_pack("{s:s,s:s,s:s}", "type", "ack", "msg_id",
                                  m->msg_id, "from", m->from),
                        NULL);
}

void chat__session_on_event(chat_client_t *c, const chat_msg_t *m) {
  const char *id = m->id ? json_string_value(m->id) : NULL;

  switch (m->type) {
  case CHAT_T_OK:
    if (id)
      on_ok(c, m, id);
    break;
  case CHAT_T_ERROR:
    on_error(c, m, id);
    break;
  case CHAT_T_DELIVER:
    on_deliver(c, m);
    break;
  case CHAT_T_RECEIPT:
    chat__out_event(c, json_pack("{s:s,s:s,s:s,s:s}", "event", "receipt", "to",
                                 m->to, "msg_id", m->msg_id, "state",
                                 m->state));
    break;
  case CHAT_T_PRESENCE:
    chat_roster_set(&c->roster, m->user, m->status);
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "presence", "user",
                                 m->user, "status",
                                 chat_status_name(m->status)));
    break;
  case CHAT_T_CONTACT_REQUEST:
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "contact_request",
                                 "from", m->from));
    break;
  case CHAT_T_CONTACT_ADDED:
    chat_roster_set(&c->roster, m->user, m->status);
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "contact_added",
                                 "user", m->user, "status",
                                 chat_status_name(m->status)));
    break;
  case CHAT_T_CONTACT_REMOVED:
    chat_roster_remove(&c->roster, m->user);
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "contact_removed",
                                 "user", m->user));
    break;
  case CHAT_T_GROUP_ADDED:
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "group_added",
                                 "group", m->group, "by", m->by));
    break;
  case CHAT_T_EXPECT:
    chat__peer_on_expect(c, m->from, m->ticket);
    break;
  case CHAT_T_KICKED:
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "kicked", "reason",
                                 m->reason));
    c->kicked = 1;
    chat__client_stop(c, 1);
    break;
  default: /* pong, a second welcome: nothing to do */
    break;
  }
}
