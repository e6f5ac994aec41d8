/* bus_redis_int.h -- private to the Redis bus's files: bus_redis.c (the
 * calls, liveness, start and stop), bus_inbox.c (the inbox reader thread
 * and what it hands the loop) and bus_batch.c (each loop turn's carried
 * messages and receipts, sent at the turn's end). */
#ifndef CHAT_BUS_REDIS_INT_H
#define CHAT_BUS_REDIS_INT_H

#include <pthread.h>

#include "bus.h"
#include "redis_link.h"
#include "route_cache.h"

typedef struct ev_node {
  struct ev_node *next;
  chat__bus_event_t ev;
  char *mem[8];             /* owned strings (entries other than batches) */
  struct ev_chunk *chunk;   /* or: a batch item, read in place */
} ev_node_t;

/* A read's batch items: their events point into the XREAD reply, which
 * lives as long as one of them is unfreed (bus_inbox.c). */
typedef struct ev_chunk {
  redisReply *reply;
  size_t left;              /* events not yet freed (loop thread) */
  ev_node_t nodes[];
} ev_chunk_t;

typedef struct redis_bus {
  chat__bus_t base;          /* first: a chat__bus_t * is a redis_bus_t * */
  uv_loop_t *loop;
  chat__engine_t *engine;
  chat__redis_url_t url;
  char node[128];
  char addr[128];
  char instance[33];
  char alive[400];           /* the liveness key's value:
                              * "INSTANCE ADDR HOST PID" */
  char host[128];            /* gethostname() */
  char inbox[160];
  char ttl[16];
  unsigned ttl_ms;
  chat__bus_event_cb on_event;
  chat__bus_lost_cb on_lost;
  void *arg;
  uv_timer_t tick;
  uv_async_t async;
  int handles;
  int ticking;               /* a tick call is in flight */
  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  ev_node_t *head, **tail;   /* under mu */
  volatile int stop;         /* under mu for writes; read by the thread */
  redisContext *rc;          /* the thread's */
  char last_id[64];          /* the thread's */
  char trim_id[64];          /* under mu: XTRIM MINID this next ("": no) */
  /* The loop turn's carried messages and receipts, sent at its end
   * (on_flush, bus_batch.c): one XADD per target node, however many
   * items, and a CARRY call for recipients the route cache does not
   * know. */
  uv_check_t flush;
  struct out_batch *out;     /* bus_batch.c */
/* A node's XADD buffer starts at most this big (a batch is sent at 512
 * KiB, bus_batch.c). */
#define CHAT__BUS_VIA_HINT_MAX (1024u << 10)
  size_t via_hint;           /* the size a node's XADD buffer starts at */
  chat__route_cache_t routes; /* recipients' nodes, as CARRY found them
                               * (loop thread only) */
} redis_bus_t;

/* How long a node trusts the directory's answer on where a user is
 * (route_cache.h), and how many it keeps. The reaper keeps a dead node's
 * inbox this long and more after draining it (bus_lua.c TICK), so a
 * message carried on a stale answer is still found there. */
#define CHAT__BUS_ROUTE_TTL_MS 1000
#define CHAT__BUS_ROUTES_MAX 65536
/* How long after a dead node's inbox was first found drained the reaper
 * keeps reading it: longer than an answer is trusted plus the longest a
 * batch may wait for its replies (CHAT__REDIS_REPLY_MS), twice over. */
#define CHAT__BUS_DRAIN_GRACE_MS \
  (2 * (CHAT__BUS_ROUTE_TTL_MS + CHAT__REDIS_REPLY_MS))

#define RB(x) ((redis_bus_t *)(void *)(x))

/* bus_inbox.c */
/* A blocking connection to u with its database selected, or NULL (the
 * reason in why). */
redisContext *chat__bus_sync_connect(const chat__redis_url_t *u, char *why,
                                     size_t len);
/* The reader thread's body (arg: the bus). */
void *chat__bus_reader(void *arg);
/* The async handle's callback: the events the thread read, to on_event. */
void chat__bus_on_async(uv_async_t *h);
void chat__bus_ev_free(ev_node_t *n);
/* The events of XREAD reply r, appended in order at **tail (*tail is
 * advanced to the new end).
 * r is taken over: freed, or kept until the last event pointing into it
 * is freed (chat__bus_ev_free). last_id gets the last entry's id.
 * 0, or -ENOMEM (r freed, nothing appended, last_id unchanged). */
int chat__bus_inbox_events(redisReply *r, char *last_id, size_t idsize,
                           ev_node_t ***tail);
/* How long the reader blocks in XREAD: a stop waits at most this. */
#define CHAT__BUS_INBOX_BLOCK_MS 500

/* bus_batch.c */
/* Adds an item for `to` (nf fields: kind, to, a, b, seq, ts, body, and
 * for a message its deliver line's length) to the turn's batch, sent when
 * the loop turn ends (the flush handle): to the node the route cache
 * names, or, when it names none or fresh is set, through the CARRY script
 * (the directory itself). 0 or -ENOMEM (nothing added). */
int chat__bus_batch_add(redis_bus_t *b, const char *to, const char *const *f,
                        const size_t *flen, int nf, int fresh,
                        chat__bus_reply_cb cb, void *arg);
/* The flush handle's callback. */
void chat__bus_on_flush(uv_check_t *h);
/* Answers the open batch's items with status (a stop) and drops it. */
void chat__bus_batch_cancel(redis_bus_t *b, int status);

#endif /* CHAT_BUS_REDIS_INT_H */
