/* roster.h -- the user's contacts and their presence, as the server reports
 * them (contacts at login, presence / contact_added / contact_removed events).
 * Socket-free. Also remembers which contacts refused direct connections
 * (no_p2p) until their presence changes, so that later messages to them go
 * straight through the relay. */
#ifndef CHAT_ROSTER_H
#define CHAT_ROSTER_H

#include <stddef.h>

#include "chat_protocol.h"

#define CHAT_ROSTER_MAX 100000 /* contacts kept; more is refused (-ENOBUFS) */

typedef struct chat_contact {
  char user[CHAT_MAX_NAME + 1];
  chat_status_t status;
  int no_p2p; /* a connect to it was answered no_p2p since its last presence */
} chat_contact_t;

typedef struct chat_roster {
  chat_contact_t *v; /* owned, sorted by user (byte order) */
  size_t n, cap;
} chat_roster_t;

void chat_roster_init(chat_roster_t *r);
void chat_roster_free(chat_roster_t *r);
void chat_roster_clear(chat_roster_t *r);
/* Adds user or updates its status; a changed status forgets no_p2p.
 * Returns 0, -EINVAL (bad name or status), -ENOMEM or -ENOBUFS. */
int chat_roster_set(chat_roster_t *r, const char *user, chat_status_t status);
/* Returns 0 or -ENOENT. */
int chat_roster_remove(chat_roster_t *r, const char *user);
/* NULL when user is not a contact. The pointer lives until the next change. */
chat_contact_t *chat_roster_find(const chat_roster_t *r, const char *user);

#endif /* CHAT_ROSTER_H */
