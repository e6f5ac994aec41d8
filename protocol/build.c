/* build.c -- replies and events, field for field as PROTOCOL.md shows them.
 *
 * jansson keeps insertion order when dumping, so "type" is always first and
 * the rest follow the order of the protocol text.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <string.h>

/* Each adder steals nothing from the caller and returns -1 on any failure
 * (including a NULL or non-UTF-8 string), so builders can chain with ||. */
static int add_str(json_t *o, const char *key, const char *v) {
  return v == NULL ? -1 : json_object_set_new(o, key, json_string(v));
}

static int add_int(json_t *o, const char *key, json_int_t v) {
  return json_object_set_new(o, key, json_integer(v));
}

static json_t *fail(json_t *o) {
  json_decref(o);
  return NULL;
}

json_t *chat_msg_new(chat_type_t type) {
  const char *name = chat_type_name(type);
  json_t *o;

  if (name == NULL || (o = json_object()) == NULL)
    return NULL;
  if (add_str(o, "type", name) < 0)
    return fail(o);
  return o;
}

/* A deep copy: ids are scalars, so this is one small allocation, and the
 * reply never shares a value the caller might later change. */
static int add_id(json_t *o, const json_t *id) {
  return id == NULL ? 0 : json_object_set_new(o, "id", json_deep_copy(id));
}

json_t *chat_reply_ok(const json_t *id) {
  json_t *o = chat_msg_new(CHAT_T_OK);

  if (o == NULL || add_id(o, id) < 0)
    return fail(o);
  return o;
}

/* An unknown code (e.g. a negated errno) goes out as "internal": the wire
 * only knows the codes of PROTOCOL.md. message NULL uses chat_strerror(). */
json_t *chat_reply_error(const json_t *id, int code, const char *message) {
  json_t *o = chat_msg_new(CHAT_T_ERROR);
  const char *name = chat_code_name(code);

  if (name == NULL)
    name = chat_code_name(CHAT_E_INTERNAL);
  /* A message that is not valid UTF-8 cannot be a JSON string; an error
   * reply must still go out, so fall back to the code's own text. */
  if (message == NULL || !chat__utf8_valid(message, strlen(message)))
    message = chat_strerror(code);
  if (o == NULL || add_id(o, id) < 0 || add_str(o, "code", name) < 0 ||
      add_str(o, "message", message) < 0)
    return fail(o);
  return o;
}

json_t *chat_reply_from_error(const json_t *id, const chat_error_t *err) {
  if (err == NULL)
    return chat_reply_error(id, CHAT_E_INTERNAL, NULL);
  return chat_reply_error(id, err->code ? err->code : CHAT_E_INTERNAL,
                          err->message[0] ? err->message : NULL);
}

json_t *chat_ev_welcome(const char *server, int heartbeat, size_t max_frame) {
  json_t *o = chat_msg_new(CHAT_T_WELCOME);

  if (o == NULL || add_int(o, "proto", CHAT_PROTO_VERSION) < 0 ||
      add_str(o, "server", server) < 0 ||
      add_int(o, "heartbeat", heartbeat) < 0 ||
      add_int(o, "max_frame", (json_int_t)max_frame) < 0)
    return fail(o);
  return o;
}

static json_t *user_status(chat_type_t type, const char *user,
                           chat_status_t status) {
  json_t *o = chat_msg_new(type);

  if (o == NULL || add_str(o, "user", user) < 0 ||
      add_str(o, "status", chat_status_name(status)) < 0)
    return fail(o);
  return o;
}

json_t *chat_ev_presence(const char *user, chat_status_t status) {
  return user_status(CHAT_T_PRESENCE, user, status);
}

json_t *chat_ev_contact_added(const char *user, chat_status_t status) {
  return user_status(CHAT_T_CONTACT_ADDED, user, status);
}

static json_t *one_str(chat_type_t type, const char *key, const char *v) {
  json_t *o = chat_msg_new(type);

  if (o == NULL || add_str(o, key, v) < 0)
    return fail(o);
  return o;
}

json_t *chat_ev_contact_request(const char *from) {
  return one_str(CHAT_T_CONTACT_REQUEST, "from", from);
}

json_t *chat_ev_contact_removed(const char *user) {
  return one_str(CHAT_T_CONTACT_REMOVED, "user", user);
}

json_t *chat_ev_kicked(const char *reason) {
  return one_str(CHAT_T_KICKED, "reason", reason);
}

json_t *chat_ev_deliver(const char *from, const char *group,
                        const char *msg_id, const char *body, size_t body_len,
                        int64_t ts, int offline) {
  json_t *o = chat_msg_new(CHAT_T_DELIVER);

  if (o == NULL || (group != NULL && add_str(o, "group", group) < 0) ||
      add_str(o, "from", from) < 0 || add_str(o, "msg_id", msg_id) < 0 ||
      body == NULL ||
      json_object_set_new(o, "body", json_stringn(body, body_len)) < 0 ||
      add_int(o, "ts", ts) < 0 ||
      json_object_set_new(o, "offline", json_boolean(offline)) < 0)
    return fail(o);
  return o;
}

json_t *chat_ev_receipt(const char *msg_id, const char *to, const char *state) {
  json_t *o = chat_msg_new(CHAT_T_RECEIPT);

  if (o == NULL || add_str(o, "msg_id", msg_id) < 0 ||
      add_str(o, "to", to) < 0 || add_str(o, "state", state) < 0)
    return fail(o);
  return o;
}

json_t *chat_ev_expect(const char *from, const char *ticket) {
  json_t *o = chat_msg_new(CHAT_T_EXPECT);

  if (o == NULL || add_str(o, "from", from) < 0 ||
      add_str(o, "ticket", ticket) < 0)
    return fail(o);
  return o;
}

json_t *chat_ev_group_added(const char *group, const char *by) {
  json_t *o = chat_msg_new(CHAT_T_GROUP_ADDED);

  if (o == NULL || add_str(o, "group", group) < 0 || add_str(o, "by", by) < 0)
    return fail(o);
  return o;
}
