/* session.c -- the server conversation, whatever carries it (net.c's socket
 * or a test's env): connected, welcome, register, login, contacts (ready),
 * what the server says while we are logged in, logout, closed. Every frame
 * to the server leaves through chat__session_send; every reply comes back
 * through on_reply, which looks its request up in the table (requests.h)
 * and handles it in one switch. Pushed events are handled in on_event. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "client.h"

/* ---- sending ------------------------------------------------------------ */

void chat__session_reason(chat_client_t *c, const char *reason) {
  if (!c->disconnect_reason[0])
    snprintf(c->disconnect_reason, sizeof(c->disconnect_reason), "%s", reason);
}

int chat__session_send(chat_client_t *c, const json_t *obj) {
  if (c->net == CHAT_NET_DOWN || c->net == CHAT_NET_CONNECTING)
    return -ENOTCONN;
  return c->env->server_send(c->env_ctx, obj);
}

int chat__session_request(chat_client_t *c, json_t *obj, chat_req_kind_t kind,
                          const char *arg, const char *arg2) {
  char id[CHAT_REQ_ID_MAX];
  int rc;
  chat_req_t gone;
  if (!obj)
    return -ENOMEM;
  if ((rc = chat_reqs_add(&c->reqs, kind, arg, arg2, id)) < 0) {
    json_decref(obj);
    return rc;
  }
  json_object_set_new(obj, "id", json_string(id));
  rc = chat__session_send(c, obj);
  json_decref(obj);
  if (rc < 0) /* no reply will come */
    chat_reqs_take(&c->reqs, id, &gone);
  return rc;
}

/* ---- the login ---------------------------------------------------------- */

void chat__session_connected(chat_client_t *c) {
  c->disconnect_reason[0] = '\0';
  c->net = CHAT_NET_WELCOME;
  c->heartbeat_ms = 30000;
}

static void send_login(chat_client_t *c) {
  /* With a token from an earlier login, no password crosses the wire and
   * the server runs no hash; the first login asks for one. */
  json_t *m = c->token[0]
                  ? json_pack("{s:s,s:s,s:s}", "type", "login", "user",
                              c->opts.user, "token", c->token)
                  : json_pack("{s:s,s:s,s:s,s:b}", "type", "login", "user",
                              c->opts.user, "password", c->opts.password,
                              "remember", 1);
  if (m && c->p2p_port > 0)
    json_object_set_new(m, "p2p_port", json_integer(c->p2p_port));
  if (m && c->opts.p2p_host[0])
    json_object_set_new(m, "p2p_host", json_string(c->opts.p2p_host));
  /* Every login, token logins too: the server vouches for the key of this
   * session only (a new process has a new key). */
  if (m && c->key[0])
    json_object_set_new(m, "key", json_string(c->key));
  /* Where a peer behind the same NAT finds our listener (docs/NAT.md). */
  if (m && c->p2p_port > 0 && c->n_lan > 0) {
    json_t *lan = json_array();
    for (int i = 0; lan && i < c->n_lan; i++)
      json_array_append_new(lan, json_string(c->lan[i]));
    json_object_set_new(m, "lan", lan);
  }
  c->net = CHAT_NET_LOGIN;
  {
    char name[CHAT_SERVERS_NAME_MAX];
    CHAT_INFO("logging in at %s as %s with %s",
              chat_servers_name(chat_servers_current(&c->servers), name,
                                sizeof(name)),
              c->opts.user,
              c->token[0] ? "the session token" : "the password");
  }
  chat__session_request(c, m, CHAT_REQ_LOGIN, NULL, NULL);
}

/* Before the first login an error is final: exit 1 with the reason. */
static void fail_start(chat_client_t *c, const char *what, const char *code,
                       const char *message) {
  fprintf(stderr, "chat-client: %s: %s%s%s\n", what, code,
          message && *message ? ": " : "", message ? message : "");
  chat__client_stop(c, 1);
}

static void on_welcome(chat_client_t *c, const chat_msg_t *m) {
  if (m->type == CHAT_T_ERROR) { /* e.g. server_busy, then it closes */
    chat__session_reason(c, m->code);
    /* With a list, a refused connection is a failed try like a refused
     * connect: another node may take us (and the exit, when none does,
     * says why each failed). */
    if (!c->ever_ready && c->servers.n <= 1)
      fail_start(c, "the server refused the connection", m->code, m->message);
    else
      c->env->server_abort(c->env_ctx);
    return;
  }
  if (m->type != CHAT_T_WELCOME)
    return;
  if (m->proto != CHAT_PROTO_VERSION)
    CHAT_WARN("server speaks protocol %lld", (long long)m->proto);
  c->heartbeat_ms = (int)(m->heartbeat * 1000);
  if (m->max_frame > 0)
    c->max_frame = (size_t)m->max_frame;
  if (c->opts.do_register && !c->registered) {
    c->net = CHAT_NET_REGISTER;
    chat__session_request(c,
                          json_pack("{s:s,s:s,s:s}", "type", "register", "user",
                                    c->opts.user, "password", c->opts.password),
                          CHAT_REQ_REGISTER, NULL, NULL);
  } else {
    send_login(c);
  }
}

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

/* The login succeeded: ready event; the first time, input starts. */
static void logged_in(chat_client_t *c) {
  int first = !c->ever_ready;
  c->net = CHAT_NET_CONTACTS;
  c->ever_ready = 1;
  /* A server that cut us for an oversized line is not hurried back to. */
  chat_servers_up(&c->servers, c->oversize_cut);
  chat__session_request(c, chat_msg_new(CHAT_T_CONTACTS),
                        CHAT_REQ_LOGIN_CONTACTS, NULL, NULL);
  chat__out_event(c, json_pack("{s:s,s:s,s:i}", "event", "ready", "user",
                               c->opts.user, "p2p_port", c->p2p_port));
  if (first && c->env->input_start(c->env_ctx) < 0)
    chat__client_stop(c, 1);
}

/* The login is complete once the contacts are known: only then can the
 * outbox choose paths. */
static void on_ready(chat_client_t *c, const chat_msg_t *m) {
  if (c->net != CHAT_NET_CONTACTS)
    return; /* logging out already */
  roster_from(c, m->contacts);
  c->net = CHAT_NET_READY;
  chat_outbox_server_up(c->ob, chat__client_now(c));
}

/* ---- replies ------------------------------------------------------------ */

static json_t *copy_list(const json_t *list) {
  return list ? json_deep_copy(list) : json_array();
}

/* The fields that say what a command was about, for ok and error events. */
static void add_subject(json_t *ev, const chat_req_t *r) {
  switch (r->kind) {
  case CHAT_REQ_ADD:
  case CHAT_REQ_ACCEPT:
  case CHAT_REQ_DECLINE:
  case CHAT_REQ_REMOVE:
  case CHAT_REQ_CONNECT:
    json_object_set_new(ev, "user", json_string(r->arg));
    break;
  case CHAT_REQ_STATUS:
    json_object_set_new(ev, "status", json_string(r->arg));
    break;
  case CHAT_REQ_GROUP_CREATE:
  case CHAT_REQ_GROUP_LEAVE:
  case CHAT_REQ_GROUP_MEMBERS:
    json_object_set_new(ev, "group", json_string(r->arg));
    break;
  case CHAT_REQ_GROUP_ADD:
    json_object_set_new(ev, "group", json_string(r->arg));
    json_object_set_new(ev, "user", json_string(r->arg2));
    break;
  default:
    break;
  }
}

static void emit_ok(chat_client_t *c, const chat_req_t *r) {
  json_t *ev = json_pack("{s:s,s:s}", "event", "ok", "command",
                         chat_req_command(r->kind));
  if (ev)
    add_subject(ev, r);
  chat__out_event(c, ev);
}

static void on_ok(chat_client_t *c, const chat_req_t *r, const chat_msg_t *m) {
  uint64_t now = chat__client_now(c);

  switch (r->kind) {
  case CHAT_REQ_REGISTER:
    c->registered = 1;
    send_login(c);
    break;
  case CHAT_REQ_LOGIN:
    if (m->token != NULL && strlen(m->token) == 64)
      snprintf(c->token, sizeof(c->token), "%s", m->token);
    logged_in(c);
    break;
  case CHAT_REQ_LOGIN_CONTACTS:
    on_ready(c, m);
    break;
  case CHAT_REQ_LOGOUT:
    break; /* the server closes the connection */
  case CHAT_REQ_SEND:
    chat_outbox_relay_ok(c->ob, r->arg, m->state ? m->state : "relayed", -1,
                         -1, now);
    break;
  case CHAT_REQ_GROUP_SEND:
    chat_outbox_relay_ok(c->ob, r->arg, NULL, m->relayed < 0 ? 0 : m->relayed,
                         m->stored < 0 ? 0 : m->stored, now);
    break;
  case CHAT_REQ_CONNECT:
    if (!m->host || !m->ticket || m->port <= 0)
      chat_outbox_connect_failed(c->ob, r->arg, "bad_request", now);
    else {
      /* The NAT ways ride beside the outbox's dial (client.c's DIAL). */
      chat_dial_plan_t plan = {m->lan, m->reverse == 1, m->punch_host,
                               (int)m->punch_port,
                               m->punch_host && m->punch_port > 0
                                   ? m->punch_ms : -1};
      c->dial_plan = &plan;
      chat_outbox_connect_ok(c->ob, r->arg, m->host, (int)m->port, m->ticket,
                             m->key, now);
      c->dial_plan = NULL;
    }
    break;
  case CHAT_REQ_CONTACTS:
    roster_from(c, m->contacts);
    chat__out_event(c, json_pack("{s:s,s:o}", "event", "contacts", "contacts",
                                 copy_list(m->contacts)));
    break;
  case CHAT_REQ_GROUP_MEMBERS:
    chat__out_event(c, json_pack("{s:s,s:s,s:o}", "event", "group_members",
                                 "group", r->arg, "members",
                                 copy_list(m->members)));
    break;
  case CHAT_REQ_GROUPS: {
    size_t i;
    json_t *g;
    json_array_foreach(m->groups, i, g)
      if (json_is_string(g))
        chat_convs_group_add(&c->convs, json_string_value(g));
    chat__out_event(c, json_pack("{s:s,s:o}", "event", "groups", "groups",
                                 copy_list(m->groups)));
    break;
  }
  case CHAT_REQ_REMOVE:
    chat_roster_remove(&c->roster, r->arg);
    emit_ok(c, r);
    break;
  case CHAT_REQ_GROUP_CREATE:
    chat_convs_group_add(&c->convs, r->arg);
    emit_ok(c, r);
    break;
  case CHAT_REQ_GROUP_LEAVE:
    chat_convs_group_remove(&c->convs, r->arg);
    emit_ok(c, r);
    break;
  case CHAT_REQ_ADD:
  case CHAT_REQ_ACCEPT:
  case CHAT_REQ_DECLINE:
  case CHAT_REQ_STATUS:
  case CHAT_REQ_GROUP_ADD:
    emit_ok(c, r);
    break;
  }
}

static void on_error(chat_client_t *c, const chat_req_t *r,
                     const chat_msg_t *m) {
  uint64_t now = chat__client_now(c);
  const char *code = m->code, *text = m->message ? m->message : "";
  json_t *ev;

  switch (r ? r->kind : 0) {
  case CHAT_REQ_REGISTER:
    if (strcmp(code, "user_exists") == 0) { /* same password: logs in */
      c->registered = 1;
      send_login(c);
    } else {
      fail_start(c, "register failed", code, text);
    }
    return;
  case CHAT_REQ_LOGIN:
    if (c->token[0] && strcmp(code, "auth_failed") == 0) {
      /* The token ended (logout elsewhere, expiry, a new store): the
       * password once more, and a new token. */
      sodium_memzero(c->token, sizeof(c->token));
      send_login(c);
      return;
    }
    fail_start(c, "login failed", code, text);
    return;
  case CHAT_REQ_LOGIN_CONTACTS:
    chat__session_drop(c, code); /* try the whole login again */
    return;
  case CHAT_REQ_SEND:
  case CHAT_REQ_GROUP_SEND:
    chat_outbox_relay_failed(c->ob, r->arg, code, text, now);
    return;
  case CHAT_REQ_CONNECT:
    chat_outbox_connect_failed(c->ob, r->arg, code, now);
    return;
  default:
    break;
  }
  ev = json_pack("{s:s,s:s,s:s}", "event", "error", "code", code, "message",
                 text);
  if (ev && r && chat_req_command(r->kind)) {
    json_object_set_new(ev, "command", json_string(chat_req_command(r->kind)));
    add_subject(ev, r);
  }
  chat__out_event(c, ev);
}

static void on_reply(chat_client_t *c, const chat_msg_t *m) {
  chat_req_t r;
  const char *id = m->id ? json_string_value(m->id) : NULL;
  int known = id && chat_reqs_take(&c->reqs, id, &r) == 0;
  if (m->type == CHAT_T_OK) {
    if (known)
      on_ok(c, &r, m);
  } else {
    on_error(c, known ? &r : NULL, m);
  }
}

/* ---- messages and pushed events ----------------------------------------- */

int chat__session_show_message(chat_client_t *c, const char *from,
                               const char *group, const char *msg_id,
                               const char *body, size_t body_len, int64_t ts,
                               const char *via, const char *path,
                               int offline) {
  json_t *ev;
  if (chat_dedup_check(c->dedup, from, msg_id) != 0)
    return 0; /* seen (or not valid): acked, never shown twice */
  /* It may start the conversation or add to the unread count. */
  chat_convs_received(&c->convs, group ? group : from, group != NULL);
  c->prompt_dirty = 1;
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
  if (path)
    json_object_set_new(ev, "path", json_string(path));
  json_object_set_new(ev, "offline", json_boolean(offline));
  chat__client_record(c, group ? group : from, group != NULL, from, body,
                      body_len, ts);
  chat__out_event(c, ev);
  return 1;
}

static void on_deliver(chat_client_t *c, const chat_msg_t *m) {
  json_t *ack;
  chat__session_show_message(c, m->from, m->group, m->msg_id, m->body,
                             m->body_len, m->ts, "relay", NULL, m->offline > 0);
  /* Duplicates are acked too, or the server would keep them forever. */
  ack = json_pack("{s:s,s:s,s:s}", "type", "ack", "msg_id", m->msg_id, "from",
                  m->from);
  if (ack)
    chat__session_send(c, ack);
  json_decref(ack);
}

static void on_event(chat_client_t *c, const chat_msg_t *m) {
  switch (m->type) {
  case CHAT_T_OK:
  case CHAT_T_ERROR:
    on_reply(c, m);
    break;
  case CHAT_T_DELIVER:
    on_deliver(c, m);
    break;
  case CHAT_T_RECEIPT:
    chat_outbox_receipt(c->ob, m->msg_id);
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
    chat_convs_group_add(&c->convs, m->group);
    chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "group_added",
                                 "group", m->group, "by", m->by));
    break;
  case CHAT_T_EXPECT:
    /* A ticket is for a logged-in user's listener: one that comes while
     * registering or logging in (no real server sends it) is no ticket. */
    if (c->net != CHAT_NET_CONTACTS && c->net != CHAT_NET_READY)
      break;
    {
      chat_dial_plan_t plan = {NULL, m->host && m->port > 0, m->punch_host,
                               (int)m->punch_port,
                               m->punch_host && m->punch_port > 0
                                   ? m->punch_ms : -1};
      chat__peer_on_expect(c, m->from, m->ticket, m->key, m->host,
                           (int)m->port, &plan);
    }
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

/* ---- the entry point for frames ----------------------------------------- */

void chat__session_on_frame(chat_client_t *c, const json_t *obj) {
  chat_msg_t m;
  chat_error_t err = {0};

  if (c->stopping && c->net != CHAT_NET_LOGOUT)
    return;
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, &err) < 0) {
    CHAT_WARN("ignoring a frame from the server: %s", err.message);
    return;
  }
  switch (c->net) {
  case CHAT_NET_DOWN:
  case CHAT_NET_CONNECTING:
    break; /* nothing can be read before the connection is up */
  case CHAT_NET_WELCOME:
    on_welcome(c, &m);
    break;
  default:
    on_event(c, &m);
  }
}

/* ---- the end ------------------------------------------------------------ */

/* Before the first login, a try that failed: the next address is tried at
 * once, and when none is left the client exits 1 with why each failed
 * (one address: "cannot reach server HOST:PORT: REASON", as always).
 * Returns 1 when it stopped. */
static int start_failed(chat_client_t *c) {
  char name[CHAT_SERVERS_NAME_MAX];
  size_t len = strlen(c->start_why);
  chat_servers_name(chat_servers_current(&c->servers), name, sizeof(name));
  if (c->servers.n <= 1) {
    char what[CHAT_SERVERS_NAME_MAX + 32];
    snprintf(what, sizeof(what), "cannot reach server %s", name);
    fail_start(c, what, c->disconnect_reason, NULL);
    return 1;
  }
  snprintf(c->start_why + len, sizeof(c->start_why) - len, "%s%s: %s",
           len ? "; " : "", name, c->disconnect_reason);
  if (chat_servers_round_over(&c->servers)) {
    fail_start(c, "cannot reach any server", c->start_why, NULL);
    return 1;
  }
  return 0;
}

int chat__session_closed(chat_client_t *c, int status) {
  chat_net_state_t was = c->net;

  c->net = CHAT_NET_DOWN;
  chat_reqs_clear(&c->reqs);
  if (status == UV_EOF)
    chat__session_reason(c, "closed by the server");
  else if (status == -CHAT_E_FRAME_TOO_LARGE)
    chat__session_reason(c, "frame_too_large");
  else if (status < 0)
    chat__session_reason(c, uv_err_name(status));
  else
    chat__session_reason(c, "closed");
  if (c->stopping) {
    chat__client_stop(c, c->exit_code); /* continues the shutdown */
    return 0;
  }
  if (!c->ever_ready && start_failed(c))
    return 0;
  if (was >= CHAT_NET_CONTACTS) {
    chat_outbox_server_down(c->ob, (int64_t)chat__client_now(c));
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "disconnected",
                                 "reason", c->disconnect_reason));
  }
  /* A lost session starts a new round at the next node, after a jittered
   * delay; a failed try moves on at once within its round. */
  {
    char gone[CHAT_SERVERS_NAME_MAX], next[CHAT_SERVERS_NAME_MAX];
    chat_servers_name(chat_servers_current(&c->servers), gone, sizeof(gone));
    c->reconnect_ms = chat_servers_next(
        &c->servers, was >= CHAT_NET_CONTACTS, randombytes_random());
    CHAT_INFO("%s: %s; next: %s in %lld ms", gone, c->disconnect_reason,
              chat_servers_name(chat_servers_current(&c->servers), next,
                                sizeof(next)),
              (long long)c->reconnect_ms);
  }
  return 1;
}

int64_t chat__session_backoff(chat_client_t *c) {
  int64_t ms = c->reconnect_ms;
  if (ms > 0) /* none between the addresses of one round: nothing waits */
    chat__out_event(c, json_pack("{s:s,s:I}", "event", "reconnecting",
                                 "in_ms", (json_int_t)ms));
  return ms;
}

void chat__session_drop(chat_client_t *c, const char *reason) {
  if (c->net == CHAT_NET_DOWN)
    return;
  chat__session_reason(c, reason);
  c->env->server_abort(c->env_ctx);
}

void chat__session_logout(chat_client_t *c) {
  if (c->net == CHAT_NET_DOWN)
    return;
  if (c->net >= CHAT_NET_CONTACTS && c->net != CHAT_NET_LOGOUT) {
    c->net = CHAT_NET_LOGOUT;
    chat__session_request(c, chat_msg_new(CHAT_T_LOGOUT), CHAT_REQ_LOGOUT,
                          NULL, NULL);
  } else if (c->net != CHAT_NET_LOGOUT) {
    c->env->server_abort(c->env_ctx);
  }
}
