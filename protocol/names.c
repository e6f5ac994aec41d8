/* names.c -- wire names of message types and presence values. */
#include "chat_protocol.h"

#include <string.h>

static const char *const type_names[CHAT_T__COUNT] = {
  [CHAT_T_NONE] = NULL,
  [CHAT_T_REGISTER] = "register",
  [CHAT_T_LOGIN] = "login",
  [CHAT_T_LOGOUT] = "logout",
  [CHAT_T_PING] = "ping",
  [CHAT_T_STATUS] = "status",
  [CHAT_T_CONTACT_ADD] = "contact_add",
  [CHAT_T_CONTACT_ACCEPT] = "contact_accept",
  [CHAT_T_CONTACT_DECLINE] = "contact_decline",
  [CHAT_T_CONTACT_REMOVE] = "contact_remove",
  [CHAT_T_CONTACTS] = "contacts",
  [CHAT_T_SEND] = "send",
  [CHAT_T_ACK] = "ack",
  [CHAT_T_CONNECT] = "connect",
  [CHAT_T_GROUP_CREATE] = "group_create",
  [CHAT_T_GROUP_ADD] = "group_add",
  [CHAT_T_GROUP_LEAVE] = "group_leave",
  [CHAT_T_GROUP_MEMBERS] = "group_members",
  [CHAT_T_GROUPS] = "groups",
  [CHAT_T_GROUP_SEND] = "group_send",
  [CHAT_T_WELCOME] = "welcome",
  [CHAT_T_OK] = "ok",
  [CHAT_T_ERROR] = "error",
  [CHAT_T_PONG] = "pong",
  [CHAT_T_KICKED] = "kicked",
  [CHAT_T_PRESENCE] = "presence",
  [CHAT_T_CONTACT_REQUEST] = "contact_request",
  [CHAT_T_CONTACT_ADDED] = "contact_added",
  [CHAT_T_CONTACT_REMOVED] = "contact_removed",
  [CHAT_T_DELIVER] = "deliver",
  [CHAT_T_RECEIPT] = "receipt",
  [CHAT_T_EXPECT] = "expect",
  [CHAT_T_GROUP_ADDED] = "group_added",
  [CHAT_T_PEER_HELLO] = "peer_hello",
  [CHAT_T_PEER_WELCOME] = "peer_welcome",
  [CHAT_T_PEER_REVERSE] = "peer_reverse",
  [CHAT_T_MSG] = "msg",
};

const char *chat_type_name(chat_type_t type) {
  if ((int)type <= CHAT_T_NONE || type >= CHAT_T__COUNT)
    return NULL;
  return type_names[type];
}

/* A linear scan of 35 short names: cheaper than it looks next to a JSON
 * parse, and the first byte rules most out. */
chat_type_t chat_type_from_name(const char *name) {
  if (name == NULL)
    return CHAT_T_NONE;
  for (int t = CHAT_T_NONE + 1; t < CHAT_T__COUNT; t++)
    if (type_names[t][0] == name[0] && strcmp(type_names[t], name) == 0)
      return (chat_type_t)t;
  return CHAT_T_NONE;
}

static const char *const status_names[] = {
  [CHAT_STATUS_NONE] = NULL,
  [CHAT_STATUS_ONLINE] = "online",
  [CHAT_STATUS_AWAY] = "away",
  [CHAT_STATUS_BUSY] = "busy",
  [CHAT_STATUS_OFFLINE] = "offline",
};

const char *chat_status_name(chat_status_t s) {
  if ((int)s <= CHAT_STATUS_NONE || s > CHAT_STATUS_OFFLINE)
    return NULL;
  return status_names[s];
}

chat_status_t chat_status_from_name(const char *name) {
  if (name == NULL)
    return CHAT_STATUS_NONE;
  for (int s = CHAT_STATUS_ONLINE; s <= CHAT_STATUS_OFFLINE; s++)
    if (strcmp(status_names[s], name) == 0)
      return (chat_status_t)s;
  return CHAT_STATUS_NONE;
}
