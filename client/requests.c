/* requests.c -- the table of requests awaiting their reply. */
#include "requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chat_reqs_init(chat_reqs_t *t) {
  memset(t, 0, sizeof(*t));
  t->next_id = 1;
}

void chat_reqs_free(chat_reqs_t *t) {
  free(t->v);
  memset(t, 0, sizeof(*t));
}

static const char *fixed_id(chat_req_kind_t kind) {
  switch (kind) {
  case CHAT_REQ_REGISTER: return "register";
  case CHAT_REQ_LOGIN: return "login";
  case CHAT_REQ_LOGIN_CONTACTS: return "login-contacts";
  case CHAT_REQ_LOGOUT: return "logout";
  default: return NULL;
  }
}

int chat_reqs_add(chat_reqs_t *t, chat_req_kind_t kind, const char *arg,
                  const char *arg2, char id[CHAT_REQ_ID_MAX]) {
  const char *fixed = fixed_id(kind);
  chat_req_t *r, old;
  if (fixed) /* a login step again: the earlier one will not be answered */
    chat_reqs_take(t, fixed, &old);
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    chat_req_t *v = realloc(t->v, cap * sizeof(*v));
    if (!v)
      return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  r = &t->v[t->n++];
  memset(r, 0, sizeof(*r));
  if (fixed)
    snprintf(r->id, sizeof(r->id), "%s", fixed);
  else
    snprintf(r->id, sizeof(r->id), "r%llu", (unsigned long long)t->next_id++);
  memcpy(id, r->id, sizeof(r->id));
  r->kind = kind;
  snprintf(r->arg, sizeof(r->arg), "%s", arg ? arg : "");
  snprintf(r->arg2, sizeof(r->arg2), "%s", arg2 ? arg2 : "");
  return 0;
}

int chat_reqs_take(chat_reqs_t *t, const char *id, chat_req_t *out) {
  for (size_t i = 0; i < t->n; i++) {
    if (strcmp(t->v[i].id, id) != 0)
      continue;
    *out = t->v[i];
    /* Requests are answered roughly in order: keep the order. */
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
    t->n--;
    return 0;
  }
  return -ENOENT;
}

void chat_reqs_clear(chat_reqs_t *t) { t->n = 0; }

const char *chat_req_command(chat_req_kind_t kind) {
  switch (kind) {
  case CHAT_REQ_SEND: return "msg";
  case CHAT_REQ_GROUP_SEND: return "gmsg";
  case CHAT_REQ_ADD: return "add";
  case CHAT_REQ_ACCEPT: return "accept";
  case CHAT_REQ_DECLINE: return "decline";
  case CHAT_REQ_REMOVE: return "remove";
  case CHAT_REQ_STATUS: return "status";
  case CHAT_REQ_CONTACTS: return "contacts";
  case CHAT_REQ_GROUP_CREATE: return "group_create";
  case CHAT_REQ_GROUP_LEAVE: return "group_leave";
  case CHAT_REQ_GROUP_MEMBERS: return "group_members";
  case CHAT_REQ_GROUP_ADD: return "group_add";
  case CHAT_REQ_GROUPS: return "groups";
  case CHAT_REQ_CONNECT: return "msg"; /* a direct send's first step */
  default: return NULL;
  }
}
