/* roster.c -- contacts and presence, kept sorted for lookups and listing. */
#include "roster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void chat_roster_init(chat_roster_t *r) { memset(r, 0, sizeof(*r)); }

void chat_roster_free(chat_roster_t *r) {
  free(r->v);
  memset(r, 0, sizeof(*r));
}

void chat_roster_clear(chat_roster_t *r) { r->n = 0; }

/* Index of user, or of where it would go (then *found is 0). */
static size_t lookup(const chat_roster_t *r, const char *user, int *found) {
  size_t lo = 0, hi = r->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(r->v[mid].user, user);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

int chat_roster_set(chat_roster_t *r, const char *user, chat_status_t status) {
  int found;
  size_t i;

  if (!user || !chat_name_valid(user) || status == CHAT_STATUS_NONE)
    return -EINVAL;
  i = lookup(r, user, &found);
  if (found) {
    if (r->v[i].status != status)
      r->v[i].no_p2p = 0;
    r->v[i].status = status;
    return 0;
  }
  if (r->n >= CHAT_ROSTER_MAX)
    return -ENOBUFS;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    chat_contact_t *v = realloc(r->v, cap * sizeof(*v));
    if (!v)
      return -ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(*r->v));
  memset(&r->v[i], 0, sizeof(*r->v));
  strcpy(r->v[i].user, user);
  r->v[i].status = status;
  r->n++;
  return 0;
}

int chat_roster_remove(chat_roster_t *r, const char *user) {
  int found;
  size_t i = lookup(r, user, &found);
  if (!found)
    return -ENOENT;
  memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(*r->v));
  r->n--;
  return 0;
}

chat_contact_t *chat_roster_find(const chat_roster_t *r, const char *user) {
  int found;
  size_t i;
  if (!user)
    return NULL;
  i = lookup(r, user, &found);
  return found ? &r->v[i] : NULL;
}
