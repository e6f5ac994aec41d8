/* route_cache.h -- where recently carried-to users were: a node's memory of
 * the directory's answers, so that a loop turn's carried messages go to
 * their recipients' nodes as one plain XADD per node instead of through
 * the CARRY script (bus_batch.c, docs/CLUSTER.md "A message to a user on
 * another node").
 *
 * An answer is used only within ttl of the lookup that gave it (sent at
 * looked_ms), and an entry is dropped once that old: by a sweep once a
 * ttl, so memory is bounded by the users carried to within one ttl (and
 * by max entries). The reaper's grace for a dead node's inbox (bus_lua.c
 * TICK) only has to outlast ttl plus a batch's reply deadline.
 *
 * Refresh ahead: once an entry is half a ttl old, get asks its caller
 * (once) to look the user up again, and the answer (put) renews it. A
 * steady stream to a user so never meets a miss, whose items would go
 * through the CARRY script (bodies hashed by Lua) until its answer came:
 * when the whole cache was dropped each ttl, every recipient missed at
 * once, and each loop turn until the answers came carried them again.
 *
 * A stale answer is safe: the node it names pushes what it still can,
 * stores a message for a user no longer there and tells the user's node
 * (cluster_send.c), and forwards a receipt (cluster.c). Socket-free: the
 * caller passes the time (ms, any monotonic clock). */
#ifndef CHAT_ROUTE_CACHE_H
#define CHAT_ROUTE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

typedef struct chat__route_cache {
  chat__hmap_t map;   /* user -> entry (its key inside the entry) */
  uint64_t ttl_ms;
  uint64_t swept_ms;  /* when entries ttl old were last dropped */
  size_t max;         /* entries at most; more are not kept */
} chat__route_cache_t;

void chat__route_cache_init(chat__route_cache_t *c, uint64_t ttl_ms,
                            size_t max);
void chat__route_cache_free(chat__route_cache_t *c);
/* The node user was on at a lookup sent less than ttl before now, or
 * NULL. When refresh is not NULL and the answer is half a ttl old, *refresh
 * is set to 1, once per answer: the caller should look user up again and
 * put what it finds (or forget user). The pointer is the cache's: valid
 * until the next call on it. */
const char *chat__route_cache_get(chat__route_cache_t *c, const char *user,
                                  uint64_t now_ms, int *refresh);
/* Keeps that user is on node, as a lookup sent at looked_ms found it. 0,
 * or -ENOMEM / -ENOSPC (full) / -ESTALE (the lookup is ttl old already):
 * not kept, which is never an error for the caller. */
int chat__route_cache_put(chat__route_cache_t *c, const char *user,
                          const char *node, uint64_t looked_ms,
                          uint64_t now_ms);
/* Drops what the cache knows of user (a presence change: it moved). */
void chat__route_cache_forget(chat__route_cache_t *c, const char *user);
size_t chat__route_cache_len(const chat__route_cache_t *c);

#endif /* CHAT_ROUTE_CACHE_H */
