/* registry.h -- the users and groups a node holds now: a cache of the
 * store (engine.h), bounded by what is live.
 *
 * A user is a stub (it exists; name, held-message counts) or full (also its
 * contacts, incoming requests and group names: while it is logged in, or
 * logging in). Contacts are symmetric, but only full users keep lists:
 * changing a stub's side costs nothing, since its next full load reads the
 * store, which has the change. A full load that races with a change to its
 * user is detected through gen and read again (resident.c).
 *
 * A group is cached with all its members (as stubs or full users).
 *
 * Nothing here owns a user beyond the cache: chat__srv_sweep() frees what no
 * live session reaches and nothing pins (pins: in-memory messages and
 * asynchronous operations that hold a pointer).
 */
#ifndef CHAT_REGISTRY_H
#define CHAT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

struct chat__session;
struct chat__held;
typedef struct chat__group chat__group_t;

typedef struct chat__user {
  char *pwhash;                 /* owned; NULL while reserved or unknown */
  struct chat__session *session; /* the logged-in session, or NULL */
  /* Full users only (else NULL / 0): */
  struct chat__user **contacts;  /* sorted by name */
  struct chat__user **requests;  /* incoming contact requests, oldest first */
  char **groups;                /* group names, sorted, owned */
  uint32_t ncontacts, ccontacts, nrequests, crequests, ngroups, cgroups;
  /* The mailbox in memory: messages pushed to the session and not yet
   * acked, in seq order (mailbox.c). Everything else is in the store. */
  struct chat__held *mb_head, *mb_tail;
  size_t mb_unacked_bytes;      /* deliver lines pushed, not yet acked */
  uint32_t mb_npushed;          /* messages pushed and not yet acked */
  uint32_t mb_count;            /* messages in memory */
  uint32_t held;                /* messages held for it, anywhere */
  uint32_t sent_held;           /* 1:1 messages from it in the store */
  uint32_t pins;                /* holders of this pointer (see top) */
  uint32_t logins;              /* logins of it in progress */
  uint32_t gen;                 /* changes while not full (resident.c) */
  uint32_t wgen;                /* messages stored for it (deliver.c) */
  uint64_t login_seq;           /* next seq when its session started */
  int64_t login_ms;             /* and the wall clock's ms then */
  uint64_t store_after;         /* paging: held seqs above this are in the
                                 * store and not yet in memory */
  unsigned reserved : 1;        /* a registration in progress */
  unsigned ghost : 1;           /* being loaded, not known to exist yet */
  unsigned full : 1;
  unsigned held_known : 1;      /* held and sent_held came from the store */
  unsigned store_more : 1;      /* the store may hold more for it */
  unsigned paging : 1;          /* a page of its messages is being read */
  unsigned marked : 1;          /* sweep */
  unsigned rewind : 1;          /* cluster: page again from above
                                 * rewind_to (cluster.c) */
  uint64_t rewind_to;           /* cluster: a message stored elsewhere
                                 * has a seq above this, maybe below the
                                 * cursor (store_after) */
  /* Written messages acked while a page was being read: that page may
   * still return them (its read came before their DEL_MSG), and must not
   * push them again. Emptied when the page is in. Owned. */
  uint64_t *acked_paging;
  uint32_t nacked_paging, cacked_paging;
  /* cluster: sends to this user carried through the bus and not answered
   * yet, in order (cluster_send.c); a send here waits behind them */
  void *cq_head, *cq_tail;
  uint32_t carrying;
  uint8_t rstatus;              /* cluster: its status on another node as
                                 * last heard (0: offline), while it has no
                                 * session here */
  char name[];                  /* NUL-terminated, at most CHAT_MAX_NAME */
} chat__user_t;

struct chat__group {
  chat__user_t **members; /* in the order they were added */
  uint32_t nmembers, cmembers;
  unsigned marked : 1;   /* sweep */
  char name[];
};

typedef struct chat__registry {
  chat__hmap_t users;  /* name -> chat__user_t */
  chat__hmap_t groups; /* name -> chat__group_t */
} chat__registry_t;

void chat__registry_init(chat__registry_t *r);
/* Frees every user and group (not their mailboxes: free those first). */
void chat__registry_free(chat__registry_t *r);

/* A cached registered user, or NULL (also for a reserved name or one whose
 * load has not said yet that it exists). */
chat__user_t *chat__registry_find(const chat__registry_t *r, const char *name);
/* The cached user name, created as a stub (no hash, counts unknown) when
 * it is not cached. NULL only when out of memory. Callers make sure the
 * name exists in the store (a contact list, a group's members). A reserved
 * name is returned as it is. */
chat__user_t *chat__registry_stub(chat__registry_t *r, const char *name);
/* Adds a registered user (tests). pwhash is copied.
 * Returns 0, -EEXIST or -ENOMEM. */
int chat__registry_add(chat__registry_t *r, const char *name,
                       const char *pwhash, chat__user_t **out);
/* Makes u full with these lists (names borrowed; users found or stubbed).
 * Returns 0 or -ENOMEM (u stays a stub). */
int chat__registry_fill(chat__registry_t *r, chat__user_t *u,
                        char *const *contacts, uint32_t ncontacts,
                        char *const *requests, uint32_t nrequests,
                        char *const *groups, uint32_t ngroups);
/* Drops u's lists: it is a stub again. */
void chat__registry_unfill(chat__user_t *u);
/* Frees every user and group that is not marked, not full and not pinned
 * (a load in flight pins its user), and clears the marks. Returns how
 * many users it freed. */
size_t chat__registry_sweep(chat__registry_t *r);
/* Sets a loaded group's members (names borrowed; users found or stubbed),
 * without touching their lists. 0 or -ENOMEM. */
int chat__group_load(chat__registry_t *r, chat__group_t *g,
                     char *const *members, uint32_t n);
/* Removes a group from the cache without touching its members' lists. */
void chat__registry_drop_group(chat__registry_t *r, chat__group_t *g);
/* Reserves name for a registration in progress. Returns 0, -EEXIST when the
 * name is registered or reserved, or -ENOMEM. */
int chat__registry_reserve(chat__registry_t *r, const char *name,
                           chat__user_t **out);
/* Completes a reservation: the user exists from now on. pwhash is copied.
 * Returns 0 or -ENOMEM (the reservation stays). */
int chat__registry_confirm(chat__user_t *u, const char *pwhash);
/* Drops a reservation (the registration failed) and frees u. */
void chat__registry_unreserve(chat__registry_t *r, chat__user_t *u);
/* Walk all users (reserved ones included): *pos = 0 first. */
chat__user_t *chat__registry_next(const chat__registry_t *r, size_t *pos);

/* Contacts are symmetric: these change both users' lists, where full
 * (a stub's change is counted in its gen). Returns 0 or -ENOMEM (add of an
 * existing contact is 0). chat__contact_is needs a full a. */
int chat__contact_is(const chat__user_t *a, const chat__user_t *b);
int chat__contact_add(chat__user_t *a, chat__user_t *b);
void chat__contact_del(chat__user_t *a, chat__user_t *b);

/* A pending request from -> to (kept on the target's side: chat__request_has
 * knows only for a full `to`). */
int chat__request_has(const chat__user_t *from, const chat__user_t *to);
int chat__request_add(chat__user_t *from, chat__user_t *to); /* 0 or -ENOMEM */
void chat__request_del(chat__user_t *from, chat__user_t *to);

/* Groups. */
chat__group_t *chat__registry_group(const chat__registry_t *r,
                                    const char *name);
/* Adds group name to the full user u's list (kept sorted), without a
 * group object (cluster mode: a group joined on another node). 0 (also
 * when listed) or -ENOMEM. */
int chat__user_group_add(chat__user_t *u, const char *name);
/* Nonzero when the full user u lists group name. */
int chat__user_in_group(const chat__user_t *u, const char *name);
/* Creates an empty group. Returns 0, -EEXIST or -ENOMEM. */
int chat__group_new(chat__registry_t *r, const char *name, chat__group_t **out);
int chat__group_is_member(const chat__group_t *g, const chat__user_t *u);
/* 0 (also when already a member) or -ENOMEM. */
int chat__group_add(chat__group_t *g, chat__user_t *u);
/* Removes u (and the group from u's list); when the group becomes empty it
 * is deleted and freed, and 1 is returned (else 0). */
int chat__group_remove(chat__registry_t *r, chat__group_t *g, chat__user_t *u);

#endif /* CHAT_REGISTRY_H */
