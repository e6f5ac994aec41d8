/* route_cache.c -- route_cache.h: the directory's recent answers, each
 * kept for ttl from its lookup and looked up again from half of it. */
#include "route_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  uint64_t looked_ms; /* when the lookup that gave node was sent */
  int refreshing;     /* the caller was asked to look again */
  char *node;         /* into mem, after the user's name */
  char mem[];
} entry_t;

static int expired(const chat__route_cache_t *c, const entry_t *e,
                   uint64_t now_ms) {
  /* a clock that went back does not make an answer younger */
  return now_ms < e->looked_ms || now_ms - e->looked_ms >= c->ttl_ms;
}

static void clear(chat__route_cache_t *c) {
  size_t pos = 0;
  entry_t *e;
  while ((e = chat__hmap_next(&c->map, &pos)) != NULL)
    free(e);
  chat__hmap_free(&c->map);
  chat__hmap_init(&c->map);
}

/* Once a ttl, drops the entries ttl old (all of them when there is no
 * memory to list them: the cache is only a cache). */
static void sweep(chat__route_cache_t *c, uint64_t now_ms) {
  size_t pos = 0, n = 0;
  entry_t *e, **old;
  if (now_ms >= c->swept_ms && now_ms - c->swept_ms < c->ttl_ms)
    return;
  c->swept_ms = now_ms;
  if (c->map.len == 0)
    return;
  if ((old = malloc(c->map.len * sizeof(*old))) == NULL) {
    clear(c);
    return;
  }
  while ((e = chat__hmap_next(&c->map, &pos)) != NULL)
    if (expired(c, e, now_ms))
      old[n++] = e;
  for (size_t i = 0; i < n; i++) {
    chat__hmap_del(&c->map, old[i]->mem, strlen(old[i]->mem));
    free(old[i]);
  }
  free(old);
}

void chat__route_cache_init(chat__route_cache_t *c, uint64_t ttl_ms,
                            size_t max) {
  memset(c, 0, sizeof(*c));
  chat__hmap_init(&c->map);
  c->ttl_ms = ttl_ms;
  c->max = max;
}

void chat__route_cache_free(chat__route_cache_t *c) { clear(c); }

const char *chat__route_cache_get(chat__route_cache_t *c, const char *user,
                                  uint64_t now_ms, int *refresh) {
  size_t ul = strlen(user);
  entry_t *e;
  sweep(c, now_ms);
  if ((e = chat__hmap_get(&c->map, user, ul)) == NULL)
    return NULL;
  if (expired(c, e, now_ms)) {
    free(chat__hmap_del(&c->map, user, ul));
    return NULL;
  }
  if (refresh != NULL && !e->refreshing &&
      now_ms - e->looked_ms >= c->ttl_ms / 2) {
    e->refreshing = 1;
    *refresh = 1;
  }
  return e->node;
}

int chat__route_cache_put(chat__route_cache_t *c, const char *user,
                          const char *node, uint64_t looked_ms,
                          uint64_t now_ms) {
  size_t ul = strlen(user), nl = strlen(node);
  entry_t *e;
  sweep(c, now_ms);
  if (now_ms >= looked_ms && now_ms - looked_ms >= c->ttl_ms)
    return -ESTALE;
  e = chat__hmap_get(&c->map, user, ul);
  if (e != NULL && strcmp(e->node, node) == 0) {
    if (looked_ms > e->looked_ms)
      e->looked_ms = looked_ms;
    e->refreshing = 0;
    return 0;
  }
  chat__route_cache_forget(c, user);
  if (c->map.len >= c->max)
    return -ENOSPC;
  if ((e = malloc(sizeof(*e) + ul + 1 + nl + 1)) == NULL)
    return -ENOMEM;
  e->looked_ms = looked_ms;
  e->refreshing = 0;
  memcpy(e->mem, user, ul + 1);
  e->node = e->mem + ul + 1;
  memcpy(e->node, node, nl + 1);
  if (chat__hmap_put(&c->map, e->mem, ul, e) < 0) {
    free(e);
    return -ENOMEM;
  }
  return 0;
}

void chat__route_cache_forget(chat__route_cache_t *c, const char *user) {
  free(chat__hmap_del(&c->map, user, strlen(user)));
}

size_t chat__route_cache_len(const chat__route_cache_t *c) {
  return c->map.len;
}
