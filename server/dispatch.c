/* dispatch.c -- from a frame to a handler: rate limit, decode, session state,
 * the one switch on the type, and the mapping of errors to replies. */
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "handlers.h"

static void log_frame(chat__session_t *s, const json_t *obj) {
  char *t = json_dumps(obj, JSON_COMPACT);
  CHAT_DEBUG("<- %s %s", s->user ? s->user->name : s->host, t ? t : "?");
  free(t);
}

/* obj's id when PROTOCOL.md allows it, else NULL. */
static const json_t *valid_id(const json_t *id) {
  if (json_is_string(id))
    return json_string_length(id) <= CHAT_MAX_ID_STRING ? id : NULL;
  if (json_is_integer(id) && json_integer_value(id) >= 0 &&
      json_integer_value(id) <= CHAT_MAX_ID_INT)
    return id;
  return NULL;
}

/* Types allowed before login. */
static int open_type(chat_type_t t) {
  return t == CHAT_T_REGISTER || t == CHAT_T_LOGIN || t == CHAT_T_PING;
}

static chat__handler_fn handler_for(chat_type_t t) {
  switch (t) {
  case CHAT_T_REGISTER: return chat__handle_register;
  case CHAT_T_LOGIN: return chat__handle_login;
  case CHAT_T_LOGOUT: return chat__handle_logout;
  case CHAT_T_PING: return chat__handle_ping;
  case CHAT_T_STATUS: return chat__handle_status;
  case CHAT_T_CONTACT_ADD: return chat__handle_contact_add;
  case CHAT_T_CONTACT_ACCEPT: return chat__handle_contact_accept;
  case CHAT_T_CONTACT_DECLINE: return chat__handle_contact_decline;
  case CHAT_T_CONTACT_REMOVE: return chat__handle_contact_remove;
  case CHAT_T_CONTACTS: return chat__handle_contacts;
  case CHAT_T_SEND: return chat__handle_send;
  case CHAT_T_ACK: return chat__handle_ack;
  case CHAT_T_CONNECT: return chat__handle_connect;
  case CHAT_T_GROUP_CREATE: return chat__handle_group_create;
  case CHAT_T_GROUP_ADD: return chat__handle_group_add;
  case CHAT_T_GROUP_LEAVE: return chat__handle_group_leave;
  case CHAT_T_GROUP_MEMBERS: return chat__handle_group_members;
  case CHAT_T_GROUPS: return chat__handle_groups;
  case CHAT_T_GROUP_SEND: return chat__handle_group_send;
  default: return NULL; /* not a request the server takes */
  }
}

/* What every request goes through before it is decoded: the session must
 * still take frames, and the rate limit. Returns nonzero to go on. id is
 * the request's valid id (or NULL), echoed when the frame is refused. */
static int admit(chat__srv_t *srv, chat__session_t *s, const json_t *id) {
  if (s->ended || s->closing)
    return 0;
  s->last_read_ms = uv_now(srv->loop);
  if (!chat__ratelimit_take(&s->rl, srv->cfg.rate_limit, s->last_read_ms)) {
    /* The frame is not decoded, but a valid id is echoed all the same, so
     * the requester knows which request was refused. */
    chat__session_error(s, id, CHAT_E_RATE_LIMITED,
                        "too many requests; slow down");
    if (++s->limited_run >= CHAT_MAX_RATE_LIMITED_RUN) {
      CHAT_INFO("%s: rate limited %d times in a row, closing",
                s->user ? s->user->name : s->host, (int)s->limited_run);
      chat__session_close(s);
    }
    return 0;
  }
  s->limited_run = 0;
  return 1;
}

/* A decoded request whose names are in the cache (resident.c): session
 * state, then its handler. */
void chat__srv_run(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m);
void chat__srv_run(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m) {
  chat_error_t err;
  /* pong gets no reply in any state (PROTOCOL.md section 2), so it is not
   * one of the requests that need a login either. */
  if (m->type == CHAT_T_PONG)
    return;
  chat__handler_fn fn = handler_for(m->type);
  if (fn == NULL) {
    chat__session_error(s, m->id, CHAT_E_UNKNOWN_TYPE, NULL);
    return;
  }
  if (s->user == NULL && !open_type(m->type)) {
    chat__session_error(s, m->id, CHAT_E_NOT_AUTHENTICATED, "log in first");
    return;
  }
  if (s->user != NULL &&
      (m->type == CHAT_T_REGISTER || m->type == CHAT_T_LOGIN)) {
    chat__session_error(s, m->id, CHAT_E_ALREADY_AUTHENTICATED,
                        "this session is logged in");
    return;
  }
  memset(&err, 0, sizeof(err));
  int r = fn(srv, s, m, &err);
  if (r < 0) {
    int code = -r;
    if (code < CHAT_E_BAD_JSON || code >= CHAT_E__END) {
      CHAT_ERROR("%s handler: %s", chat_type_name(m->type), chat_strerror(r));
      code = CHAT_E_INTERNAL;
    }
    chat__session_error(s, m->id, code, err.code ? err.message : NULL);
  }
}

void chat__srv_on_frame(chat__srv_t *srv, chat__session_t *s,
                        const json_t *obj) {
  if (chat_log_get_level() >= CHAT_LOG_DEBUG && !s->ended && !s->closing)
    log_frame(s, obj);
  if (!admit(srv, s, valid_id(json_object_get(obj, "id"))))
    return;

  chat_msg_t m;
  chat_error_t err;
  if (chat_msg_decode(obj, CHAT_ROLE_SERVER, &m, &err) < 0) {
    chat__session_error(s, m.id, err.code, err.message);
    return;
  }
  chat__srv_run_resident(srv, s, &m);
}

int chat__srv_on_fast_line(chat__srv_t *srv, chat__session_t *s,
                           const char *line, size_t len) {
  chat_fast_req_t f;
  /* At debug level every frame is logged as jansson prints it: the full
   * path does that. */
  if (chat_log_get_level() >= CHAT_LOG_DEBUG ||
      !chat_fast_request(line, len, &f))
    return 0;

  /* The handlers take a chat_msg_t, as chat_msg_decode fills it. Only the
   * id needs a jansson value (replies and async ops keep it). */
  json_t *id = NULL;
  if (f.id_kind == CHAT_FAST_INT)
    id = json_integer(f.id_num);
  else if (f.id_kind == CHAT_FAST_STRING)
    id = json_stringn(f.id_str, f.id_len);
  if (f.id_kind != CHAT_FAST_NONE && id == NULL)
    return 0; /* out of memory: let the full path say so */

  chat_msg_t m;
  chat_msg_init(&m);
  m.type = f.type;
  m.id = id;
  m.to = f.to[0] ? f.to : NULL;
  m.group = f.group[0] ? f.group : NULL;
  m.from = f.from[0] ? f.from : NULL;
  m.msg_id = f.msg_id;
  if (f.body.kind == CHAT_FAST_STRING) {
    /* Unescaped bodies are used in place (the line is borrowed for the
     * call, and the handlers copy what they keep). */
    if (f.body.escaped) {
      if (srv->body == NULL && (srv->body = malloc(CHAT_MAX_BODY)) == NULL) {
        json_decref(id);
        return 0;
      }
      chat_fast_unescape(&f.body, srv->body);
      m.body = srv->body;
    } else {
      m.body = f.body.raw;
    }
    m.body_len = f.body.len;
  }
  if (admit(srv, s, id))
    chat__srv_run_resident(srv, s, &m);
  json_decref(id);
  return 1;
}

void chat__srv_on_line(chat__srv_t *srv, chat__session_t *s, uint64_t now_ms) {
  if (now_ms > s->last_read_ms)
    s->last_read_ms = now_ms;
}

void chat__srv_on_bad_frame(chat__srv_t *srv, chat__session_t *s,
                            const chat_error_t *err) {
  if (s->ended || s->closing)
    return;
  s->last_read_ms = uv_now(srv->loop);
  chat__session_error(s, NULL, err->code,
                      err->message[0] ? err->message : NULL);
  if (err->code == CHAT_E_FRAME_TOO_LARGE)
    chat__session_close(s);
}
