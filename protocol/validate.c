/* validate.c -- chat_msg_decode: which types each role accepts, and the
 * fields of each, as tables. Adding a message type is adding a row.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* What a field may hold; the kind also says which chat_msg_t member (type)
 * receives it. */
enum kind {
  K_STR,      /* any string without NUL -> const char * */
  K_CRED,     /* any string -> const char *; one holding NUL becomes "",
               * which no rule accepts (login: auth_failed, not a login
               * as the name cut at the NUL) */
  K_HOST,     /* 1..255 bytes -> const char * */
  K_USER,     /* a name -> const char * */
  K_GROUP,    /* a name -> const char * */
  K_PASSWORD, /* 8..256 bytes -> const char * */
  K_MSG_ID,   /* -> const char * */
  K_BODY,     /* -> body, body_len */
  K_TICKET,   /* -> const char * */
  K_KEY,      /* 64 lowercase hex digits -> const char * */
  K_STATUS,   /* online|away|busy -> status */
  K_PRESENCE, /* online|away|busy|offline -> status */
  K_INT,      /* integer in [min, max] -> int64_t */
  K_BOOL,     /* -> int, 0 or 1 */
  K_ARRAY,    /* -> const json_t * */
  K_ADDRS,    /* array of at most CHAT_MAX_LAN numeric IP addresses
               * -> const json_t * */
};

enum need {
  REQ, /* missing or bad: bad_request */
  OPT, /* absent is fine, bad is bad_request */
  LAX, /* taken when present and well-formed, otherwise ignored */
};

#define CHAT_MAX_HOST 255
#define INT_MAX_53 CHAT_MAX_ID_INT
#define INT_MAX_31 2147483647LL

struct field {
  const char *key;
  unsigned char kind, need;
  unsigned short off; /* offsetof(chat_msg_t, member) */
  int64_t min, max;   /* K_INT only */
};

struct spec {
  const struct field *fields; /* NULL: the role does not accept the type */
  size_t count;
};

#define M(member) offsetof(chat_msg_t, member)
#define F(key, kind, need, member) {key, kind, need, M(member), 0, 0}
#define I(key, need, member, min, max) {key, K_INT, need, M(member), min, max}
#define ROW(type, arr) [type] = {arr, sizeof(arr) / sizeof(arr[0])}
#define EMPTY(type) [type] = {none, 0}

/* A zero-length array is not C11, so empty types point at this. */
static const struct field none[1] = {{NULL, 0, 0, 0, 0, 0}};

/* ---- client -> server: PROTOCOL.md sections 3 and 5 -------------------- */

static const struct field s_register[] = {
  F("user", K_USER, REQ, user), F("password", K_PASSWORD, REQ, password),
};
/* Only types: a bad name or password must look like any failed login. */
/* password or token: the server says which is missing (one of them is). */
static const struct field s_login[] = {
  F("user", K_CRED, REQ, user), F("password", K_CRED, OPT, password),
  F("token", K_CRED, OPT, token), F("remember", K_BOOL, OPT, remember),
  I("p2p_port", OPT, p2p_port, 0, 65535), F("p2p_host", K_HOST, OPT, p2p_host),
  F("status", K_STATUS, OPT, status), F("key", K_KEY, OPT, key),
  F("lan", K_ADDRS, OPT, lan),
};
static const struct field s_status[] = {F("status", K_STATUS, REQ, status)};
static const struct field s_user[] = {F("user", K_USER, REQ, user)};
static const struct field s_send[] = {
  F("to", K_USER, REQ, to), F("msg_id", K_MSG_ID, REQ, msg_id),
  F("body", K_BODY, REQ, body),
};
static const struct field s_ack[] = {
  F("msg_id", K_MSG_ID, REQ, msg_id), F("from", K_USER, REQ, from),
};
static const struct field s_connect[] = {F("to", K_USER, REQ, to)};
static const struct field s_group[] = {F("group", K_GROUP, REQ, group)};
static const struct field s_group_add[] = {
  F("group", K_GROUP, REQ, group), F("user", K_USER, REQ, user),
};
static const struct field s_group_send[] = {
  F("group", K_GROUP, REQ, group), F("msg_id", K_MSG_ID, REQ, msg_id),
  F("body", K_BODY, REQ, body),
};

static const struct spec server_specs[CHAT_T__COUNT] = {
  ROW(CHAT_T_REGISTER, s_register),
  ROW(CHAT_T_LOGIN, s_login),
  EMPTY(CHAT_T_LOGOUT),
  EMPTY(CHAT_T_PING),
  EMPTY(CHAT_T_PONG), /* a client may answer a ping; no reply */
  ROW(CHAT_T_STATUS, s_status),
  ROW(CHAT_T_CONTACT_ADD, s_user),
  ROW(CHAT_T_CONTACT_ACCEPT, s_user),
  ROW(CHAT_T_CONTACT_DECLINE, s_user),
  ROW(CHAT_T_CONTACT_REMOVE, s_user),
  EMPTY(CHAT_T_CONTACTS),
  ROW(CHAT_T_SEND, s_send),
  ROW(CHAT_T_ACK, s_ack),
  ROW(CHAT_T_CONNECT, s_connect),
  ROW(CHAT_T_GROUP_CREATE, s_group),
  ROW(CHAT_T_GROUP_ADD, s_group_add),
  ROW(CHAT_T_GROUP_LEAVE, s_group),
  ROW(CHAT_T_GROUP_MEMBERS, s_group),
  EMPTY(CHAT_T_GROUPS),
  ROW(CHAT_T_GROUP_SEND, s_group_send),
};

/* ---- server -> client -------------------------------------------------- */

static const struct field c_welcome[] = {
  I("proto", REQ, proto, 0, INT_MAX_53), F("server", K_STR, OPT, server),
  I("heartbeat", REQ, heartbeat, 1, INT_MAX_31),
  I("max_frame", REQ, max_frame, 1, INT_MAX_31),
};
/* An ok carries the fields of the request it answers; the caller knows
 * which, so here nothing beyond type and id can be wrong. The send reply's
 * "status" (relayed|stored) is no presence value: it lands in msg->state. */
static const struct field c_ok[] = {
  F("user", K_STR, LAX, user), F("host", K_STR, LAX, host),
  I("port", LAX, port, 0, 65535), F("to", K_STR, LAX, to),
  F("ticket", K_TICKET, LAX, ticket), F("msg_id", K_MSG_ID, LAX, msg_id),
  F("status", K_STR, LAX, state), I("relayed", LAX, relayed, 0, INT64_MAX),
  I("stored", LAX, stored, 0, INT64_MAX),
  F("contacts", K_ARRAY, LAX, contacts), F("members", K_ARRAY, LAX, members),
  F("token", K_STR, LAX, token),
  F("groups", K_ARRAY, LAX, groups), F("key", K_KEY, LAX, key),
  F("lan", K_ADDRS, LAX, lan), F("punch_host", K_HOST, LAX, punch_host),
  I("punch_port", LAX, punch_port, 1, 65535),
  I("punch_ms", LAX, punch_ms, 0, 10000), F("reverse", K_BOOL, LAX, reverse),
};
static const struct field c_error[] = {
  F("code", K_STR, REQ, code), F("message", K_STR, OPT, message),
};
static const struct field c_kicked[] = {F("reason", K_STR, REQ, reason)};
static const struct field c_user_presence[] = {
  F("user", K_USER, REQ, user), F("status", K_PRESENCE, REQ, status),
};
static const struct field c_from[] = {F("from", K_USER, REQ, from)};
static const struct field c_deliver[] = {
  F("group", K_GROUP, OPT, group), F("from", K_USER, REQ, from),
  F("msg_id", K_MSG_ID, REQ, msg_id), F("body", K_BODY, REQ, body),
  I("ts", REQ, ts, 0, INT64_MAX), F("offline", K_BOOL, REQ, offline),
};
static const struct field c_receipt[] = {
  F("msg_id", K_MSG_ID, REQ, msg_id), F("to", K_USER, REQ, to),
  F("state", K_STR, REQ, state),
};
/* A key that is absent or malformed vouches for no one: the link is then
 * refused, which is the client's decision, not a bad frame. */
static const struct field c_expect[] = {
  F("from", K_USER, REQ, from), F("ticket", K_TICKET, REQ, ticket),
  F("key", K_KEY, LAX, key),
  F("host", K_HOST, LAX, host), I("port", LAX, port, 1, 65535),
  F("punch_host", K_HOST, LAX, punch_host),
  I("punch_port", LAX, punch_port, 1, 65535),
  I("punch_ms", LAX, punch_ms, 0, 10000),
};
static const struct field c_group_added[] = {
  F("group", K_GROUP, REQ, group), F("by", K_USER, REQ, by),
};

static const struct spec client_specs[CHAT_T__COUNT] = {
  ROW(CHAT_T_WELCOME, c_welcome),
  ROW(CHAT_T_OK, c_ok),
  ROW(CHAT_T_ERROR, c_error),
  EMPTY(CHAT_T_PONG),
  ROW(CHAT_T_KICKED, c_kicked),
  ROW(CHAT_T_PRESENCE, c_user_presence),
  ROW(CHAT_T_CONTACT_REQUEST, c_from),
  ROW(CHAT_T_CONTACT_ADDED, c_user_presence),
  ROW(CHAT_T_CONTACT_REMOVED, s_user),
  ROW(CHAT_T_DELIVER, c_deliver),
  ROW(CHAT_T_RECEIPT, c_receipt),
  ROW(CHAT_T_EXPECT, c_expect),
  ROW(CHAT_T_GROUP_ADDED, c_group_added),
};

/* ---- peer <-> peer: PROTOCOL.md section 4 ------------------------------ */

static const struct field p_hello[] = {
  I("proto", REQ, proto, 0, INT_MAX_53), F("from", K_USER, REQ, from),
  F("to", K_USER, REQ, to), F("ticket", K_TICKET, REQ, ticket),
};
/* The expect's side dialed back (a reverse dial): the asker says hello. */
static const struct field p_reverse[] = {
  I("proto", REQ, proto, 0, INT_MAX_53), F("from", K_USER, REQ, from),
  F("to", K_USER, REQ, to),
};
static const struct field p_msg[] = {
  F("msg_id", K_MSG_ID, REQ, msg_id), F("body", K_BODY, REQ, body),
  I("ts", REQ, ts, 0, INT64_MAX),
};
/* The sender is the one proven in the handshake: a "from" is ignored. */
static const struct field p_ack[] = {F("msg_id", K_MSG_ID, REQ, msg_id)};

static const struct spec peer_specs[CHAT_T__COUNT] = {
  ROW(CHAT_T_PEER_HELLO, p_hello),
  ROW(CHAT_T_PEER_WELCOME, s_user),
  ROW(CHAT_T_PEER_REVERSE, p_reverse),
  ROW(CHAT_T_MSG, p_msg),
  ROW(CHAT_T_ACK, p_ack),
  EMPTY(CHAT_T_PING),
  EMPTY(CHAT_T_PONG),
  ROW(CHAT_T_ERROR, c_error),
};

/* ---- checking ---------------------------------------------------------- */

static const char *describe(const struct field *f, char *buf, size_t size) {
  switch (f->kind) {
  case K_STR:
  case K_CRED: return "a string";
  case K_HOST: return "a host of 1 to 255 bytes";
  case K_USER: return "a user name";
  case K_GROUP: return "a group name";
  case K_PASSWORD: return "a string of 8 to 256 bytes";
  case K_MSG_ID: return "a msg_id of 1 to 64 letters, digits, '_' or '-'";
  case K_BODY: return "a non-empty string of at most 16384 bytes";
  case K_TICKET: return "32 lowercase hex digits";
  case K_KEY: return "64 lowercase hex digits";
  case K_STATUS: return "one of online, away, busy";
  case K_PRESENCE: return "one of online, away, busy, offline";
  case K_INT:
    snprintf(buf, size, "an integer from %lld to %lld", (long long)f->min,
             (long long)f->max);
    return buf;
  case K_BOOL: return "a boolean";
  case K_ARRAY: return "an array";
  case K_ADDRS: return "an array of at most 4 numeric IP addresses";
  }
  return "valid";
}

/* Checks v against f and stores it in msg. Returns 0 or -1 (bad value). */
static int take(const struct field *f, const json_t *v, chat_msg_t *msg) {
  char *base = (char *)msg + f->off;
  const char *s;
  size_t len;
  int ok;

  switch (f->kind) {
  case K_INT: {
    json_int_t n;
    if (!json_is_integer(v))
      return -1;
    n = json_integer_value(v);
    if (n < f->min || n > f->max)
      return -1;
    *(int64_t *)(void *)base = n;
    return 0;
  }
  case K_BOOL:
    if (!json_is_boolean(v))
      return -1;
    *(int *)(void *)base = json_is_true(v);
    return 0;
  case K_ARRAY:
    if (!json_is_array(v))
      return -1;
    *(const json_t **)(void *)base = v;
    return 0;
  case K_ADDRS: {
    size_t i;
    if (!json_is_array(v) || json_array_size(v) > CHAT_MAX_LAN)
      return -1;
    for (i = 0; i < json_array_size(v); i++) {
      const json_t *e = json_array_get(v, i);
      if (!json_is_string(e) ||
          json_string_length(e) >= CHAT_IP_MAX ||
          strlen(json_string_value(e)) != json_string_length(e) ||
          !chat_ip_valid(json_string_value(e)))
        return -1;
    }
    *(const json_t **)(void *)base = v;
    return 0;
  }
  default:
    break;
  }

  if (!json_is_string(v))
    return -1;
  s = json_string_value(v);
  len = json_string_length(v);
  /* Parsed text may hold U+0000 (JSON_ALLOW_NUL), which would cut a C
   * string short. The rule checks below see every byte, so they catch it
   * for their kinds. */
  switch (f->kind) {
  case K_STR: ok = memchr(s, '\0', len) == NULL; break;
  case K_CRED:
    ok = 1;
    if (memchr(s, '\0', len) != NULL)
      s = "";
    break;
  case K_HOST:
    ok = len >= 1 && len <= CHAT_MAX_HOST && memchr(s, '\0', len) == NULL;
    break;
  case K_USER:
  case K_GROUP: ok = chat__name_validn(s, len); break;
  case K_PASSWORD: ok = chat__password_validn(s, len); break;
  case K_MSG_ID: ok = chat__msg_id_validn(s, len); break;
  case K_TICKET: ok = chat__ticket_validn(s, len); break;
  case K_KEY: ok = chat__key_validn(s, len); break;
  case K_BODY:
    /* jansson already checked UTF-8 (on parse and in json_stringn). */
    ok = len >= 1 && len <= CHAT_MAX_BODY && memchr(s, '\0', len) == NULL;
    if (ok)
      msg->body_len = len;
    break;
  case K_STATUS:
  case K_PRESENCE: {
    chat_status_t st = chat_status_from_name(s);
    ok = st != CHAT_STATUS_NONE &&
         (f->kind == K_PRESENCE || st != CHAT_STATUS_OFFLINE) &&
         strlen(s) == len;
    if (ok)
      msg->status = st;
    return ok ? 0 : -1;
  }
  default: ok = 0; break;
  }
  if (!ok)
    return -1;
  *(const char **)(void *)base = s;
  return 0;
}

static int id_valid(const json_t *id) {
  if (json_is_string(id))
    return json_string_length(id) <= CHAT_MAX_ID_STRING;
  if (json_is_integer(id))
    return json_integer_value(id) >= 0 &&
           json_integer_value(id) <= CHAT_MAX_ID_INT;
  return 0;
}

void chat_msg_init(chat_msg_t *msg) {
  memset(msg, 0, sizeof(*msg));
  msg->p2p_port = msg->port = msg->proto = msg->ts = -1;
  msg->heartbeat = msg->max_frame = msg->relayed = msg->stored = -1;
  msg->offline = -1;
  msg->punch_port = msg->punch_ms = -1;
  msg->reverse = -1;
}

static const struct spec *role_specs(chat_role_t role) {
  switch (role) {
  case CHAT_ROLE_SERVER: return server_specs;
  case CHAT_ROLE_CLIENT: return client_specs;
  case CHAT_ROLE_PEER: return peer_specs;
  }
  return NULL;
}

int chat_msg_decode(const json_t *obj, chat_role_t role, chat_msg_t *msg,
                    chat_error_t *err) {
  const struct spec *specs = role_specs(role), *spec;
  const json_t *type, *id;
  chat_type_t t;
  char buf[64];

  chat_msg_init(msg);
  if (err != NULL)
    memset(err, 0, sizeof(*err));
  if (specs == NULL)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "", "unknown role %d",
                          (int)role);
  if (!json_is_object(obj))
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "", "not a JSON object");

  /* A valid id is kept even when an earlier check fails, so the error can
   * echo it; an invalid one is reported only after type (the order of
   * PROTOCOL.md) and is never echoed. */
  id = json_object_get(obj, "id");
  if (id != NULL && id_valid(id))
    msg->id = id;

  type = json_object_get(obj, "type");
  if (type == NULL)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "type",
                          "field 'type' is required");
  if (!json_is_string(type))
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "type",
                          "field 'type' must be a string");
  t = chat_type_from_name(json_string_value(type));
  if (t == CHAT_T_NONE || specs[t].fields == NULL ||
      strlen(json_string_value(type)) != json_string_length(type)) {
    const char *name = json_string_value(type);
    int n = (int)chat__utf8_prefix(name, strlen(name), 64);

    return chat_error_set(err, CHAT_E_UNKNOWN_TYPE, "type",
                          "unknown type '%.*s'", n, name);
  }
  msg->type = t;
  if (id != NULL && msg->id == NULL)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "id",
                          "field 'id' must be a string of at most %d bytes "
                          "or an integer from 0 to 2^53-1",
                          CHAT_MAX_ID_STRING);

  spec = &specs[t];
  for (size_t i = 0; i < spec->count; i++) {
    const struct field *f = &spec->fields[i];
    const json_t *v = json_object_get(obj, f->key);
    if (v == NULL) {
      if (f->need == REQ)
        return chat_error_set(err, CHAT_E_BAD_REQUEST, f->key,
                              "field '%s' is required", f->key);
      continue;
    }
    if (take(f, v, msg) < 0 && f->need != LAX)
      return chat_error_set(err, CHAT_E_BAD_REQUEST, f->key,
                            "field '%s' must be %s", f->key,
                            describe(f, buf, sizeof(buf)));
  }
  return 0;
}
