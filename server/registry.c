/* registry.c -- users, contacts, contact requests and groups in memory. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void chat_registry_init(chat_registry_t *r) {
  memset(r, 0, sizeof(*r));
  chat_hmap_init(&r->users);
  chat_hmap_init(&r->groups);
}

static void user_free(chat_user_t *u) {
  free(u->pwhash);
  free(u->contacts);
  free(u->requests);
  free(u->groups);
  free(u);
}

void chat_registry_free(chat_registry_t *r) {
  size_t pos = 0;
  chat_user_t *u;
  chat_group_t *g;
  while ((u = chat_hmap_next(&r->users, &pos)) != NULL)
    user_free(u);
  pos = 0;
  while ((g = chat_hmap_next(&r->groups, &pos)) != NULL) {
    free(g->members);
    free(g);
  }
  chat_hmap_free(&r->users);
  chat_hmap_free(&r->groups);
}

chat_user_t *chat_registry_find(const chat_registry_t *r, const char *name) {
  chat_user_t *u = chat_hmap_get(&r->users, name, strlen(name));
  return u && !u->reserved ? u : NULL;
}

chat_user_t *chat_registry_next(const chat_registry_t *r, size_t *pos) {
  return chat_hmap_next(&r->users, pos);
}

static int user_new(chat_registry_t *r, const char *name, chat_user_t **out) {
  size_t n = strlen(name);
  chat_user_t *u = calloc(1, sizeof(*u) + n + 1);
  if (u == NULL)
    return -ENOMEM;
  memcpy(u->name, name, n + 1);
  int rc = chat_hmap_put(&r->users, u->name, n, u);
  if (rc < 0) {
    free(u);
    return rc;
  }
  *out = u;
  return 0;
}

int chat_registry_add(chat_registry_t *r, const char *name, const char *pwhash,
                      chat_user_t **out) {
  chat_user_t *u;
  char *h = strdup(pwhash);
  if (h == NULL)
    return -ENOMEM;
  int rc = user_new(r, name, &u);
  if (rc < 0) {
    free(h);
    return rc;
  }
  u->pwhash = h;
  r->nusers++;
  if (out)
    *out = u;
  return 0;
}

int chat_registry_reserve(chat_registry_t *r, const char *name,
                          chat_user_t **out) {
  int rc = user_new(r, name, out);
  if (rc == 0)
    (*out)->reserved = 1;
  return rc;
}

int chat_registry_confirm(chat_user_t *u, const char *pwhash) {
  char *h = strdup(pwhash);
  if (h == NULL)
    return -ENOMEM;
  free(u->pwhash);
  u->pwhash = h;
  u->reserved = 0;
  return 0;
}

void chat_registry_unreserve(chat_registry_t *r, chat_user_t *u) {
  chat_hmap_del(&r->users, u->name, strlen(u->name));
  user_free(u);
}

/* ---- Sorted and ordered pointer arrays ---------------------------------- */

static int grow(void ***arr, uint32_t *cap, uint32_t need) {
  if (need <= *cap)
    return 0;
  uint32_t ncap = *cap ? *cap * 2 : 4;
  while (ncap < need)
    ncap *= 2;
  void **na = realloc(*arr, ncap * sizeof(**arr));
  if (na == NULL)
    return -ENOMEM;
  *arr = na;
  *cap = ncap;
  return 0;
}

/* Index of name in a by-name sorted array of users, or where it would go. */
static uint32_t lower_bound(chat_user_t **a, uint32_t n, const char *name,
                            int *found) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(a[mid]->name, name);
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

static int sorted_add(chat_user_t ***a, uint32_t *n, uint32_t *cap,
                      chat_user_t *u) {
  int found;
  uint32_t i = lower_bound(*a, *n, u->name, &found);
  if (found)
    return 0;
  int rc = grow((void ***)a, cap, *n + 1);
  if (rc < 0)
    return rc;
  memmove(*a + i + 1, *a + i, (*n - i) * sizeof(**a));
  (*a)[i] = u;
  (*n)++;
  return 0;
}

static void sorted_del(chat_user_t **a, uint32_t *n, const chat_user_t *u) {
  int found;
  uint32_t i = lower_bound(a, *n, u->name, &found);
  if (!found)
    return;
  memmove(a + i, a + i + 1, (*n - i - 1) * sizeof(*a));
  (*n)--;
}

int chat_contact_is(const chat_user_t *a, const chat_user_t *b) {
  int found;
  lower_bound(a->contacts, a->ncontacts, b->name, &found);
  return found;
}

int chat_contact_add(chat_user_t *a, chat_user_t *b) {
  /* Make room on both sides first so that a failure changes nothing. */
  if (grow((void ***)&a->contacts, &a->ccontacts, a->ncontacts + 1) < 0 ||
      grow((void ***)&b->contacts, &b->ccontacts, b->ncontacts + 1) < 0)
    return -ENOMEM;
  sorted_add(&a->contacts, &a->ncontacts, &a->ccontacts, b);
  sorted_add(&b->contacts, &b->ncontacts, &b->ccontacts, a);
  return 0;
}

void chat_contact_del(chat_user_t *a, chat_user_t *b) {
  sorted_del(a->contacts, &a->ncontacts, b);
  sorted_del(b->contacts, &b->ncontacts, a);
}

int chat_request_has(const chat_user_t *from, const chat_user_t *to) {
  for (uint32_t i = 0; i < to->nrequests; i++)
    if (to->requests[i] == from)
      return 1;
  return 0;
}

int chat_request_add(chat_user_t *from, chat_user_t *to) {
  if (chat_request_has(from, to))
    return 0;
  int rc = grow((void ***)&to->requests, &to->crequests, to->nrequests + 1);
  if (rc < 0)
    return rc;
  to->requests[to->nrequests++] = from;
  return 0;
}

void chat_request_del(chat_user_t *from, chat_user_t *to) {
  for (uint32_t i = 0; i < to->nrequests; i++)
    if (to->requests[i] == from) {
      memmove(to->requests + i, to->requests + i + 1,
              (to->nrequests - i - 1) * sizeof(*to->requests));
      to->nrequests--;
      return;
    }
}

/* ---- Groups -------------------------------------------------------------- */

chat_group_t *chat_registry_group(const chat_registry_t *r, const char *name) {
  return chat_hmap_get(&r->groups, name, strlen(name));
}

int chat_group_new(chat_registry_t *r, const char *name, chat_group_t **out) {
  size_t n = strlen(name);
  chat_group_t *g = calloc(1, sizeof(*g) + n + 1);
  if (g == NULL)
    return -ENOMEM;
  memcpy(g->name, name, n + 1);
  int rc = chat_hmap_put(&r->groups, g->name, n, g);
  if (rc < 0) {
    free(g);
    return rc;
  }
  *out = g;
  return 0;
}

int chat_group_is_member(const chat_group_t *g, const chat_user_t *u) {
  for (uint32_t i = 0; i < g->nmembers; i++)
    if (g->members[i] == u)
      return 1;
  return 0;
}

static int group_cmp_add(chat_user_t *u, chat_group_t *g) {
  /* u->groups sorted by group name */
  uint32_t i = 0;
  while (i < u->ngroups && strcmp(u->groups[i]->name, g->name) < 0)
    i++;
  if (i < u->ngroups && u->groups[i] == g)
    return 0;
  memmove(u->groups + i + 1, u->groups + i,
          (u->ngroups - i) * sizeof(*u->groups));
  u->groups[i] = g;
  u->ngroups++;
  return 0;
}

int chat_group_add(chat_group_t *g, chat_user_t *u) {
  if (chat_group_is_member(g, u))
    return 0;
  if (grow((void ***)&g->members, &g->cmembers, g->nmembers + 1) < 0 ||
      grow((void ***)&u->groups, &u->cgroups, u->ngroups + 1) < 0)
    return -ENOMEM;
  g->members[g->nmembers++] = u;
  return group_cmp_add(u, g);
}

int chat_group_remove(chat_registry_t *r, chat_group_t *g, chat_user_t *u) {
  for (uint32_t i = 0; i < g->nmembers; i++)
    if (g->members[i] == u) {
      memmove(g->members + i, g->members + i + 1,
              (g->nmembers - i - 1) * sizeof(*g->members));
      g->nmembers--;
      break;
    }
  for (uint32_t i = 0; i < u->ngroups; i++)
    if (u->groups[i] == g) {
      memmove(u->groups + i, u->groups + i + 1,
              (u->ngroups - i - 1) * sizeof(*u->groups));
      u->ngroups--;
      break;
    }
  if (g->nmembers > 0)
    return 0;
  chat_hmap_del(&r->groups, g->name, strlen(g->name));
  free(g->members);
  free(g);
  return 1;
}
