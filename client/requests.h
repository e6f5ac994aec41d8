/* requests.h -- the requests this client has sent to the server and not yet
 * seen answered: id -> what it was and for whom. A reply is matched to its
 * request here and nowhere else, by the id the request carried: "r1", "r2",
 * ... for commands and messages, and the fixed "register", "login",
 * "login-contacts" and "logout" for the login's own requests (one of each
 * at a time; test drivers answer them by those names).
 * Socket-free. The table is emptied when the connection ends (a reply can
 * no longer come; the outbox resends its messages itself). */
#ifndef CHAT_REQUESTS_H
#define CHAT_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "chat_protocol.h"

typedef enum chat_req_kind {
  CHAT_REQ_REGISTER = 1,
  CHAT_REQ_LOGIN,
  CHAT_REQ_LOGIN_CONTACTS, /* the contacts that complete a login */
  CHAT_REQ_LOGOUT,
  CHAT_REQ_SEND,           /* arg: msg_id */
  CHAT_REQ_GROUP_SEND,     /* arg: msg_id */
  CHAT_REQ_CONNECT,        /* arg: user */
  CHAT_REQ_ADD,            /* arg: user (and the same for the next four) */
  CHAT_REQ_ACCEPT,
  CHAT_REQ_DECLINE,
  CHAT_REQ_REMOVE,
  CHAT_REQ_STATUS,         /* arg: status name */
  CHAT_REQ_CONTACTS,
  CHAT_REQ_GROUP_CREATE,   /* arg: group (and the same for the next two) */
  CHAT_REQ_GROUP_LEAVE,
  CHAT_REQ_GROUP_MEMBERS,
  CHAT_REQ_GROUP_ADD,      /* arg: group, arg2: user */
  CHAT_REQ_GROUPS
} chat_req_kind_t;

#define CHAT_REQ_ID_MAX 24

typedef struct chat_req {
  char id[CHAT_REQ_ID_MAX];
  chat_req_kind_t kind;
  char arg[40];               /* a name, a status or a msg_id */
  char arg2[CHAT_MAX_NAME + 1];
} chat_req_t;

typedef struct chat_reqs {
  chat_req_t *v;
  size_t n, cap;
  uint64_t next_id;
} chat_reqs_t;

void chat_reqs_init(chat_reqs_t *t);
void chat_reqs_free(chat_reqs_t *t);
/* Records a request; arg and arg2 may be NULL. Its id (the login's fixed
 * name for the login's requests) goes to id. Returns 0 or -ENOMEM. */
int chat_reqs_add(chat_reqs_t *t, chat_req_kind_t kind, const char *arg,
                  const char *arg2, char id[CHAT_REQ_ID_MAX]);
/* Finds the request with this id, copies it to *out and forgets it.
 * Returns 0, or -ENOENT when there is none (a stray or late reply). */
int chat_reqs_take(chat_reqs_t *t, const char *id, chat_req_t *out);
/* Forgets every request (the connection is gone). */
void chat_reqs_clear(chat_reqs_t *t);
/* The command a request answers, as the "command" field of ok and error
 * events ("add", "group_create", "msg", ...), or NULL for the login's own
 * requests, which answer no command. */
const char *chat_req_command(chat_req_kind_t kind);

#endif /* CHAT_REQUESTS_H */
