/* registry.h -- who exists: users (with password hash), contacts, pending
 * contact requests and groups, all in memory. The store is only the durable
 * log of these; the handlers write the matching store operations.
 *
 * Users are never deleted once registered, so a chat_user_t pointer stays
 * valid for the life of the registry. A name being registered is "reserved":
 * it blocks a racing register but is invisible to everything else.
 */
#ifndef CHAT_REGISTRY_H
#define CHAT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

struct chat_session;
struct chat_held;
typedef struct chat_group chat_group_t;

typedef struct chat_user {
  char *pwhash;                 /* owned; NULL while reserved */
  struct chat_session *session; /* the logged-in session, or NULL */
  struct chat_user **contacts;  /* sorted by name */
  struct chat_user **requests;  /* incoming contact requests, oldest first */
  chat_group_t **groups;        /* sorted by name */
  uint32_t ncontacts, ccontacts, nrequests, crequests, ngroups, cgroups;
  /* The mailbox: held messages for this user in seq order (mailbox.c). */
  struct chat_held *mb_head, *mb_tail;
  struct chat_held *mb_waiting; /* the oldest one not pushed, or NULL */
  size_t mb_unacked_bytes;      /* deliver lines pushed, not yet acked */
  uint32_t mb_npushed;          /* messages pushed and not yet acked */
  uint32_t mb_count;            /* messages held, pushed or not */
  unsigned reserved : 1;
  char name[];                  /* NUL-terminated, at most CHAT_MAX_NAME */
} chat_user_t;

struct chat_group {
  chat_user_t **members; /* in the order they were added */
  uint32_t nmembers, cmembers;
  char name[];
};

typedef struct chat_registry {
  chat_hmap_t users;  /* name -> chat_user_t */
  chat_hmap_t groups; /* name -> chat_group_t */
  size_t nusers;
} chat_registry_t;

void chat_registry_init(chat_registry_t *r);
/* Frees every user and group (not their mailboxes: free those first). */
void chat_registry_free(chat_registry_t *r);

/* A registered user, or NULL (also for a reserved name). */
chat_user_t *chat_registry_find(const chat_registry_t *r, const char *name);
/* Adds a registered user (start-up load). pwhash is copied.
 * Returns 0, -EEXIST or -ENOMEM. */
int chat_registry_add(chat_registry_t *r, const char *name, const char *pwhash,
                      chat_user_t **out);
/* Reserves name for a registration in progress. Returns 0, -EEXIST when the
 * name is registered or reserved, or -ENOMEM. */
int chat_registry_reserve(chat_registry_t *r, const char *name,
                          chat_user_t **out);
/* Completes a reservation: the user exists from now on. pwhash is copied.
 * Returns 0 or -ENOMEM (the reservation stays). */
int chat_registry_confirm(chat_user_t *u, const char *pwhash);
/* Drops a reservation (the registration failed) and frees u. */
void chat_registry_unreserve(chat_registry_t *r, chat_user_t *u);
/* Walk all users (reserved ones included): *pos = 0 first. */
chat_user_t *chat_registry_next(const chat_registry_t *r, size_t *pos);

/* Contacts are symmetric: these change both users. Returns 0 or -ENOMEM
 * (add of an existing contact is 0). */
int chat_contact_is(const chat_user_t *a, const chat_user_t *b);
int chat_contact_add(chat_user_t *a, chat_user_t *b);
void chat_contact_del(chat_user_t *a, chat_user_t *b);

/* A pending request from -> to (stored on the target's side). */
int chat_request_has(const chat_user_t *from, const chat_user_t *to);
int chat_request_add(chat_user_t *from, chat_user_t *to); /* 0 or -ENOMEM */
void chat_request_del(chat_user_t *from, chat_user_t *to);

/* Groups. */
chat_group_t *chat_registry_group(const chat_registry_t *r, const char *name);
/* Creates an empty group. Returns 0, -EEXIST or -ENOMEM. */
int chat_group_new(chat_registry_t *r, const char *name, chat_group_t **out);
int chat_group_is_member(const chat_group_t *g, const chat_user_t *u);
/* 0 (also when already a member) or -ENOMEM. */
int chat_group_add(chat_group_t *g, chat_user_t *u);
/* Removes u; when the group becomes empty it is deleted and freed, and 1 is
 * returned (else 0). */
int chat_group_remove(chat_registry_t *r, chat_group_t *g, chat_user_t *u);

#endif /* CHAT_REGISTRY_H */
