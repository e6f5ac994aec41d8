/* registry.c -- the cache of users, contacts, requests and groups. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void chat__registry_init(chat__registry_t *r) {
  memset(r, 0, sizeof(*r));
  chat__hmap_init(&r->users);
  chat__hmap_init(&r->groups);
}

void chat__registry_unfill(chat__user_t *u) {
  free(u->contacts);
  free(u->requests);
  for (uint32_t i = 0; i < u->ngroups; i++)
    free(u->groups[i]);
  free(u->groups);
  u->contacts = u->requests = NULL;
  u->groups = NULL;
  u->ncontacts = u->ccontacts = u->nrequests = u->crequests = 0;
  u->ngroups = u->cgroups = 0;
  u->full = 0;
}

static void user_free(chat__user_t *u) {
  free(u->acked_paging);
  chat__registry_unfill(u);
  free(u->pwhash);
  free(u);
}

/* A change to u's lists that u cannot record: counted for its loader. */
static int untracked(chat__user_t *u) {
  if (u->full)
    return 0;
  u->gen++;
  return 1;
}

void chat__registry_free(chat__registry_t *r) {
  size_t pos = 0;
  chat__user_t *u;
  chat__group_t *g;
  while ((u = chat__hmap_next(&r->users, &pos)) != NULL)
    user_free(u);
  pos = 0;
  while ((g = chat__hmap_next(&r->groups, &pos)) != NULL) {
    free(g->members);
    free(g);
  }
  chat__hmap_free(&r->users);
  chat__hmap_free(&r->groups);
}

chat__user_t *chat__registry_find(const chat__registry_t *r, const char *name) {
  chat__user_t *u = chat__hmap_get(&r->users, name, strlen(name));
  return u && !u->reserved && !u->ghost ? u : NULL;
}

chat__user_t *chat__registry_next(const chat__registry_t *r, size_t *pos) {
  return chat__hmap_next(&r->users, pos);
}

static int user_new(chat__registry_t *r, const char *name, chat__user_t **out) {
  size_t n = strlen(name);
  chat__user_t *u = calloc(1, sizeof(*u) + n + 1);
  if (u == NULL)
    return -ENOMEM;
  memcpy(u->name, name, n + 1);
  int rc = chat__hmap_put(&r->users, u->name, n, u);
  if (rc < 0) {
    free(u);
    return rc;
  }
  *out = u;
  return 0;
}

chat__user_t *chat__registry_stub(chat__registry_t *r, const char *name) {
  chat__user_t *u = chat__hmap_get(&r->users, name, strlen(name));
  if (u != NULL) {
    u->ghost = 0; /* named by the store: it exists */
    return u;
  }
  return user_new(r, name, &u) == 0 ? u : NULL;
}

int chat__registry_add(chat__registry_t *r, const char *name,
                       const char *pwhash, chat__user_t **out) {
  chat__user_t *u;
  char *h = strdup(pwhash);
  if (h == NULL)
    return -ENOMEM;
  int rc = user_new(r, name, &u);
  if (rc < 0) {
    free(h);
    return rc;
  }
  u->pwhash = h;
  u->held_known = 1;
  /* as if logged in: lists kept (tests) */
  if (chat__registry_fill(r, u, NULL, 0, NULL, 0, NULL, 0) < 0)
    return -ENOMEM;
  if (out)
    *out = u;
  return 0;
}

int chat__registry_fill(chat__registry_t *r, chat__user_t *u,
                        char *const *contacts, uint32_t ncontacts,
                        char *const *requests, uint32_t nrequests,
                        char *const *groups, uint32_t ngroups) {
  chat__registry_unfill(u);
  u->contacts = calloc(ncontacts ? ncontacts : 1, sizeof(*u->contacts));
  u->requests = calloc(nrequests ? nrequests : 1, sizeof(*u->requests));
  u->groups = calloc(ngroups ? ngroups : 1, sizeof(*u->groups));
  if (u->contacts == NULL || u->requests == NULL || u->groups == NULL)
    goto fail;
  u->ccontacts = ncontacts ? ncontacts : 1;
  u->crequests = nrequests ? nrequests : 1;
  u->cgroups = ngroups ? ngroups : 1;
  /* The store sorts contacts and groups by name in byte order, as strcmp. */
  for (uint32_t i = 0; i < ncontacts; i++) {
    chat__user_t *c = chat__registry_stub(r, contacts[i]);
    if (c == NULL)
      goto fail;
    u->contacts[u->ncontacts++] = c;
  }
  for (uint32_t i = 0; i < nrequests; i++) {
    chat__user_t *c = chat__registry_stub(r, requests[i]);
    if (c == NULL)
      goto fail;
    u->requests[u->nrequests++] = c;
  }
  for (uint32_t i = 0; i < ngroups; i++) {
    if ((u->groups[i] = strdup(groups[i])) == NULL)
      goto fail;
    u->ngroups++;
  }
  u->full = 1;
  return 0;
fail:
  chat__registry_unfill(u);
  return -ENOMEM;
}

static void mark_user(chat__user_t *u) {
  u->marked = 1;
  if (!u->full)
    return;
  for (uint32_t i = 0; i < u->ncontacts; i++)
    u->contacts[i]->marked = 1;
  for (uint32_t i = 0; i < u->nrequests; i++)
    u->requests[i]->marked = 1;
}

static int grow(void ***arr, uint32_t *cap, uint32_t need);

size_t chat__registry_sweep(chat__registry_t *r) {
  size_t pos = 0, freed = 0;
  chat__user_t *u;
  chat__group_t *g;
  /* Mark what live users reach: their lists, and the groups they are in
   * with every member (a group of nobody live goes). */
  while ((u = chat__hmap_next(&r->users, &pos)) != NULL) {
    /* Lists nobody uses any more (a login that failed): a stub again. */
    if (u->full && u->session == NULL && u->logins == 0)
      chat__registry_unfill(u);
    if (u->full || u->pins > 0 || u->reserved)
      mark_user(u);
  }
  pos = 0;
  while ((g = chat__hmap_next(&r->groups, &pos)) != NULL) {
    for (uint32_t i = 0; i < g->nmembers && !g->marked; i++)
      if (g->members[i]->full)
        g->marked = 1;
    if (g->marked)
      for (uint32_t i = 0; i < g->nmembers; i++)
        g->members[i]->marked = 1;
  }
  /* Deleting from the hmap moves entries, so victims are gathered in one
   * walk (which also clears the marks) and freed after it. */
  uint32_t nvict = 0, cap = 0;
  void **vict = NULL;
  pos = 0;
  while ((g = chat__hmap_next(&r->groups, &pos)) != NULL) {
    if (g->marked) {
      g->marked = 0;
    } else if (nvict < cap || grow(&vict, &cap, nvict + 1) == 0) {
      vict[nvict++] = g;
    }
  }
  for (uint32_t i = 0; i < nvict; i++)
    chat__registry_drop_group(r, vict[i]);
  nvict = 0;
  pos = 0;
  while ((u = chat__hmap_next(&r->users, &pos)) != NULL) {
    if (u->marked) {
      u->marked = 0;
    } else if (nvict < cap || grow(&vict, &cap, nvict + 1) == 0) {
      vict[nvict++] = u;
    }
  }
  for (uint32_t i = 0; i < nvict; i++) {
    u = vict[i];
    chat__hmap_del(&r->users, u->name, strlen(u->name));
    user_free(u);
    freed++;
  }
  free(vict);
  return freed;
}

void chat__registry_drop_group(chat__registry_t *r, chat__group_t *g) {
  chat__hmap_del(&r->groups, g->name, strlen(g->name));
  free(g->members);
  free(g);
}

int chat__registry_reserve(chat__registry_t *r, const char *name,
                           chat__user_t **out) {
  chat__user_t *u = chat__hmap_get(&r->users, name, strlen(name));
  if (u != NULL) {
    /* Cached and known, or being registered: taken. A hidden entry (a
     * load in flight) says nothing yet: the caller asks the store. */
    if (!u->ghost || u->reserved)
      return -EEXIST;
    u->reserved = 1;
    *out = u;
    return 0;
  }
  int rc = user_new(r, name, out);
  if (rc == 0)
    (*out)->reserved = 1;
  return rc;
}

int chat__registry_confirm(chat__user_t *u, const char *pwhash) {
  char *h = strdup(pwhash);
  if (h == NULL)
    return -ENOMEM;
  free(u->pwhash);
  u->pwhash = h;
  u->reserved = 0;
  u->ghost = 0;
  u->held_known = 1; /* a new account holds nothing and sent nothing */
  u->held = u->sent_held = 0;
  return 0;
}

void chat__registry_unreserve(chat__registry_t *r, chat__user_t *u) {
  /* Something may hold the pointer (a load that raced): hidden, it goes
   * with the next sweep. */
  u->reserved = 0;
  u->ghost = 1;
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
static uint32_t lower_bound(chat__user_t **a, uint32_t n, const char *name,
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

static int sorted_add(chat__user_t ***a, uint32_t *n, uint32_t *cap,
                      chat__user_t *u) {
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

static void sorted_del(chat__user_t **a, uint32_t *n, const chat__user_t *u) {
  int found;
  uint32_t i = lower_bound(a, *n, u->name, &found);
  if (!found)
    return;
  memmove(a + i, a + i + 1, (*n - i - 1) * sizeof(*a));
  (*n)--;
}

int chat__contact_is(const chat__user_t *a, const chat__user_t *b) {
  int found;
  lower_bound(a->contacts, a->ncontacts, b->name, &found);
  return found;
}

int chat__contact_is(const chat__user_t *a, const chat__user_t *b);

int chat__contact_add(chat__user_t *a, chat__user_t *b) {
  /* Make room on both sides first so that a failure changes nothing. */
  if ((a->full &&
       grow((void ***)&a->contacts, &a->ccontacts, a->ncontacts + 1) < 0) ||
      (b->full &&
       grow((void ***)&b->contacts, &b->ccontacts, b->ncontacts + 1) < 0))
    return -ENOMEM;
  if (!untracked(a))
    sorted_add(&a->contacts, &a->ncontacts, &a->ccontacts, b);
  if (!untracked(b))
    sorted_add(&b->contacts, &b->ncontacts, &b->ccontacts, a);
  return 0;
}

void chat__contact_del(chat__user_t *a, chat__user_t *b) {
  if (!untracked(a))
    sorted_del(a->contacts, &a->ncontacts, b);
  if (!untracked(b))
    sorted_del(b->contacts, &b->ncontacts, a);
}

int chat__request_has(const chat__user_t *from, const chat__user_t *to) {
  for (uint32_t i = 0; i < to->nrequests; i++)
    if (to->requests[i] == from)
      return 1;
  return 0;
}

int chat__request_add(chat__user_t *from, chat__user_t *to) {
  if (untracked(to) || chat__request_has(from, to))
    return 0;
  int rc = grow((void ***)&to->requests, &to->crequests, to->nrequests + 1);
  if (rc < 0)
    return rc;
  to->requests[to->nrequests++] = from;
  return 0;
}

void chat__request_del(chat__user_t *from, chat__user_t *to) {
  if (untracked(to))
    return;
  for (uint32_t i = 0; i < to->nrequests; i++)
    if (to->requests[i] == from) {
      memmove(to->requests + i, to->requests + i + 1,
              (to->nrequests - i - 1) * sizeof(*to->requests));
      to->nrequests--;
      return;
    }
}

/* ---- Groups -------------------------------------------------------------- */

chat__group_t *chat__registry_group(const chat__registry_t *r,
                                    const char *name) {
  return chat__hmap_get(&r->groups, name, strlen(name));
}

int chat__group_new(chat__registry_t *r, const char *name,
                    chat__group_t **out) {
  size_t n = strlen(name);
  chat__group_t *g = calloc(1, sizeof(*g) + n + 1);
  if (g == NULL)
    return -ENOMEM;
  memcpy(g->name, name, n + 1);
  int rc = chat__hmap_put(&r->groups, g->name, n, g);
  if (rc < 0) {
    free(g);
    return rc;
  }
  *out = g;
  return 0;
}

int chat__group_is_member(const chat__group_t *g, const chat__user_t *u) {
  for (uint32_t i = 0; i < g->nmembers; i++)
    if (g->members[i] == u)
      return 1;
  return 0;
}

int chat__user_in_group(const chat__user_t *u, const char *name) {
  for (uint32_t i = 0; i < u->ngroups; i++)
    if (strcmp(u->groups[i], name) == 0)
      return 1;
  return 0;
}

/* Adds name to u's sorted group names. 0 or -ENOMEM. */
int chat__user_group_add(chat__user_t *u, const char *name) {
  if (untracked(u) || chat__user_in_group(u, name))
    return 0;
  if (grow((void ***)&u->groups, &u->cgroups, u->ngroups + 1) < 0)
    return -ENOMEM;
  char *copy = strdup(name);
  if (copy == NULL)
    return -ENOMEM;
  uint32_t i = 0;
  while (i < u->ngroups && strcmp(u->groups[i], name) < 0)
    i++;
  memmove(u->groups + i + 1, u->groups + i,
          (u->ngroups - i) * sizeof(*u->groups));
  u->groups[i] = copy;
  u->ngroups++;
  return 0;
}

static void user_group_del(chat__user_t *u, const char *name) {
  if (untracked(u))
    return;
  for (uint32_t i = 0; i < u->ngroups; i++)
    if (strcmp(u->groups[i], name) == 0) {
      free(u->groups[i]);
      memmove(u->groups + i, u->groups + i + 1,
              (u->ngroups - i - 1) * sizeof(*u->groups));
      u->ngroups--;
      return;
    }
}

int chat__group_add(chat__group_t *g, chat__user_t *u) {
  if (chat__group_is_member(g, u))
    return 0;
  if (grow((void ***)&g->members, &g->cmembers, g->nmembers + 1) < 0 ||
      chat__user_group_add(u, g->name) < 0)
    return -ENOMEM;
  g->members[g->nmembers++] = u;
  return 0;
}

int chat__group_remove(chat__registry_t *r, chat__group_t *g, chat__user_t *u) {
  for (uint32_t i = 0; i < g->nmembers; i++)
    if (g->members[i] == u) {
      memmove(g->members + i, g->members + i + 1,
              (g->nmembers - i - 1) * sizeof(*g->members));
      g->nmembers--;
      break;
    }
  user_group_del(u, g->name);
  if (g->nmembers > 0)
    return 0;
  chat__registry_drop_group(r, g);
  return 1;
}

int chat__group_load(chat__registry_t *r, chat__group_t *g,
                     char *const *members, uint32_t n) {
  if (grow((void ***)&g->members, &g->cmembers, n) < 0)
    return -ENOMEM;
  for (uint32_t i = 0; i < n; i++) {
    chat__user_t *u = chat__registry_stub(r, members[i]);
    if (u == NULL)
      return -ENOMEM;
    if (!chat__group_is_member(g, u))
      g->members[g->nmembers++] = u;
  }
  return 0;
}
