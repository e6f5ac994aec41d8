/* route_cache.c -- route_cache.h: the directory's recent answers, dropped
 * whole every ttl. */
#include "route_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  char *node; /* into mem, after the user's name */
  char mem[];
} entry_t;

static void clear(chat__route_cache_t *c) {
  size_t pos = 0;
  entry_t *e;
  while ((e = chat__hmap_next(&c->map, &pos)) != NULL)
    free(e);
  chat__hmap_free(&c->map);
  chat__hmap_init(&c->map);
}

/* Starts a new epoch (an empty cache) once the current one is ttl old. */
static void age(chat__route_cache_t *c, uint64_t now_ms) {
  if (now_ms - c->epoch_ms < c->ttl_ms && now_ms >= c->epoch_ms)
    return;
  clear(c);
  c->epoch_ms = now_ms;
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
                                  uint64_t now_ms) {
  entry_t *e;
  age(c, now_ms);
  e = chat__hmap_get(&c->map, user, strlen(user));
  return e != NULL ? e->node : NULL;
}

int chat__route_cache_put(chat__route_cache_t *c, const char *user,
                          const char *node, uint64_t looked_ms,
                          uint64_t now_ms) {
  size_t ul = strlen(user), nl = strlen(node);
  entry_t *e;
  age(c, now_ms);
  /* Every entry of an epoch must be younger than ttl when the epoch
   * ends: an answer to a lookup sent before it began is not kept. */
  if (looked_ms < c->epoch_ms)
    return -ESTALE;
  e = chat__hmap_get(&c->map, user, ul);
  if (e != NULL && strcmp(e->node, node) == 0)
    return 0;
  chat__route_cache_forget(c, user);
  if (c->map.len >= c->max)
    return -ENOSPC;
  if ((e = malloc(sizeof(*e) + ul + 1 + nl + 1)) == NULL)
    return -ENOMEM;
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
