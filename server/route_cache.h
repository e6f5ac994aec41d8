/* route_cache.h -- where recently carried-to users were: a node's memory of
 * the directory's answers, so that a loop turn's carried messages go to
 * their recipients' nodes as one plain XADD per node instead of through
 * the CARRY script (bus_batch.c, docs/CLUSTER.md "A message to a user on
 * another node").
 *
 * An answer is used only within ttl of the lookup that gave it: the whole
 * cache is dropped every ttl (an epoch), and an answer from a lookup made
 * before the current epoch began is not kept. So memory is bounded by the
 * users carried to in one epoch (and by max entries), and the reaper's
 * grace for a dead node's inbox (bus_lua.c TICK) only has to outlast ttl
 * plus a batch's reply deadline.
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
  uint64_t epoch_ms;  /* when the current epoch began */
  size_t max;         /* entries at most; more are not kept */
} chat__route_cache_t;

void chat__route_cache_init(chat__route_cache_t *c, uint64_t ttl_ms,
                            size_t max);
void chat__route_cache_free(chat__route_cache_t *c);
/* The node user was on at a lookup made less than ttl before now, or NULL.
 * The pointer is the cache's: valid until the next call on it. */
const char *chat__route_cache_get(chat__route_cache_t *c, const char *user,
                                  uint64_t now_ms);
/* Keeps that user is on node, as a lookup sent at looked_ms found it (an
 * answer older than the current epoch is dropped). 0, or -ENOMEM / -ENOSPC
 * (full) / -ESTALE (too old): not kept, which is never an error for the
 * caller. */
int chat__route_cache_put(chat__route_cache_t *c, const char *user,
                          const char *node, uint64_t looked_ms,
                          uint64_t now_ms);
/* Drops what the cache knows of user (a presence change: it moved). */
void chat__route_cache_forget(chat__route_cache_t *c, const char *user);
size_t chat__route_cache_len(const chat__route_cache_t *c);

#endif /* CHAT_ROUTE_CACHE_H */
