/* engine.h -- the seam between the server core and whatever keeps what
 * outlives a session: accounts and password hashes, session tokens,
 * contacts and requests, groups and members, held messages, sequence
 * numbers.
 *
 * The store is the authority; the core keeps only what is live (logged-in
 * users, what their requests touch, messages in flight) and asks the engine
 * for the rest. Everything here is asynchronous by shape, because the next
 * engine is a network store: a request returns at once and its callback
 * runs later on the loop thread, never from inside the call.
 *
 * Three implementations, chosen once at start-up (like Redis's connection
 * types): engine_sqlite.c (the default: SQLite through the committer, whose
 * group commits make one fsync cover many writes, with reads on the same
 * store thread), engine_redis.c (Redis, one MULTI/EXEC per loop turn, the
 * first step of cluster mode) and engine_mem.c (in memory, for unit tests
 * and fuzzers).
 *
 * Ordering, which the core relies on:
 * - Writes are chat__store_op_t's (store.h), applied in the order added.
 *   chat__engine_then() calls back once everything added before it is
 *   durable (status 0) or has failed (the store's negative error; those ops
 *   took no effect).
 * - A read sees every write added before the read was asked for, so a user
 *   loaded right after its contact was added sees the contact.
 * - Callbacks of one kind run in the order their requests were made: the
 *   then callbacks among themselves, the reads among themselves. A batch's
 *   then callbacks may come before reads asked earlier in its turn (the
 *   SQLite engine answers a batch's waiters first; the memory engine keeps
 *   the strict order, which also meets this).
 */
#ifndef CHAT_ENGINE_H
#define CHAT_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

typedef struct chat__engine chat__engine_t;

/* A session token is kept only as this hash (libsodium's generic hash of
 * the 32 random bytes), in lowercase hex. */
#define CHAT_TOKEN_HASH_HEX 64

/* What the engine knows of one user and of one group: store.h's records
 * (chat__store_user_t, chat__store_group_t), borrowed for the callback. */
typedef chat__store_user_t chat__engine_user_t;
typedef chat__store_group_t chat__engine_group_t;

typedef void (*chat__engine_done_cb)(void *arg, int status);
typedef void (*chat__engine_user_cb)(void *arg, int status,
                                     const chat__engine_user_t *u);
typedef void (*chat__engine_group_cb)(void *arg, int status,
                                      const chat__engine_group_t *g);
/* msgs[0..n) oldest first (strings and bodies borrowed for the call); more
 * is nonzero when the store holds further messages after the last one. */
typedef void (*chat__engine_held_cb)(void *arg, int status,
                                     const chat__stored_msg_t *msgs, size_t n,
                                     int more);
/* m is the held 1:1 message from that sender with that msg_id, or NULL. */
typedef void (*chat__engine_sent_cb)(void *arg, int status,
                                     const chat__stored_msg_t *m);
/* Called for a batch of writes that failed, before its waiters, with the
 * ops that took no effect (borrowed), so the core can add again what it
 * still needs (committer.h explains why). */
typedef void (*chat__engine_fail_cb)(void *arg, const chat__store_op_t *ops,
                                     size_t n, int status);

typedef struct chat__engine_type {
  const char *name;
  /* Writes. add: 0, -EINVAL (a malformed op; nothing added) or -ENOMEM. */
  int (*add)(chat__engine_t *e, const chat__store_op_t *op);
  int (*then)(chat__engine_t *e, chat__engine_done_cb cb, void *arg);
  size_t (*pending)(const chat__engine_t *e);
  void (*on_fail)(chat__engine_t *e, chat__engine_fail_cb cb, void *arg);
  int (*flushing)(const chat__engine_t *e);
  /* Reads. Each returns 0 (cb will be called) or -ENOMEM. */
  int (*load_user)(chat__engine_t *e, const char *name, int full,
                   const char *token_hash, chat__engine_user_cb cb, void *arg);
  int (*load_group)(chat__engine_t *e, const char *name,
                    chat__engine_group_cb cb, void *arg);
  /* Messages held for rcpt with seq > after, oldest first, at most limit. */
  int (*load_held)(chat__engine_t *e, const char *rcpt, uint64_t after,
                   uint32_t limit, chat__engine_held_cb cb, void *arg);
  int (*find_sent)(chat__engine_t *e, const char *from, const char *msg_id,
                   chat__engine_sent_cb cb, void *arg);
  /* What this node counts its seqs up from: at or above every seq ever
   * stored. SQLite and memory give exactly the largest (0 when none); Redis,
   * which several nodes may share, gives each start a range of its own
   * (engine_redis_int.h chat__redis_sync_seq_base). Synchronous: start-up
   * only, before anything else is asked. */
  int (*max_seq)(chat__engine_t *e, uint64_t *seq);
  /* Shutdown: blocks until every write added so far is applied and every
   * callback has run (committer.h: chat__committer_flush_sync). Returns 0 or
   * the first failing batch's error. */
  int (*flush_sync)(chat__engine_t *e);
  /* Flushes, then frees. The loop must run once more afterwards so that
   * handles close (committer.h: chat__committer_free). */
  void (*free)(chat__engine_t *e);
} chat__engine_type_t;

struct chat__engine {
  const chat__engine_type_t *type;
};

/* The SQLite engine over an open store, which it then owns (closed by
 * free). 0 or -ENOMEM (the store is not taken then). */
int chat__engine_sqlite_new(uv_loop_t *loop, chat__store_t *store,
                            chat__engine_t **out);
/* The committer under the SQLite engine, for tests and statistics. */
struct chat__committer *chat__engine_sqlite_committer(chat__engine_t *e);

/* The in-memory engine: the same contract, nothing kept on disk. Its
 * callbacks run from a uv_idle on loop. 0 or -ENOMEM. */
int chat__engine_mem_new(uv_loop_t *loop, chat__engine_t **out);
/* Makes the next n batches of writes fail with err (tests). */
void chat__engine_mem_fail(chat__engine_t *e, int n, int err);

/* The Redis engine (engine_redis.c) on redis://HOST:PORT[/N]: connects
 * before it returns, and refuses (-EIO, the reason in errbuf) a URL that
 * does not parse, a Redis it cannot reach, or one whose settings could
 * lose an acknowledged write (appendonly, appendfsync,
 * no-appendfsync-on-rewrite), unless unsafe. Then it reconnects by itself
 * whenever the connection is lost; meanwhile requests fail with -EIO.
 * 0, -EIO or -ENOMEM. */
int chat__engine_redis_new(uv_loop_t *loop, const char *url, int unsafe,
                           chat__engine_t **out, char *errbuf, size_t errlen);
/* Makes the next n batches of writes fail in Redis (a command that aborts
 * their MULTI), reported as err (tests). */
void chat__engine_redis_fail(chat__engine_t *e, int n, int err);

/* Callers use these; they read like plain functions. */
static inline int chat__engine_add(chat__engine_t *e,
                                   const chat__store_op_t *op) {
  return e->type->add(e, op);
}
static inline int chat__engine_then(chat__engine_t *e, chat__engine_done_cb cb,
                                    void *arg) {
  return e->type->then(e, cb, arg);
}
static inline size_t chat__engine_pending(const chat__engine_t *e) {
  return e->type->pending(e);
}
static inline int chat__engine_load_user(chat__engine_t *e, const char *name,
                                         int full, const char *token_hash,
                                         chat__engine_user_cb cb, void *arg) {
  return e->type->load_user(e, name, full, token_hash, cb, arg);
}
static inline int chat__engine_load_group(chat__engine_t *e, const char *name,
                                          chat__engine_group_cb cb, void *arg) {
  return e->type->load_group(e, name, cb, arg);
}
static inline int chat__engine_load_held(chat__engine_t *e, const char *rcpt,
                                         uint64_t after, uint32_t limit,
                                         chat__engine_held_cb cb, void *arg) {
  return e->type->load_held(e, rcpt, after, limit, cb, arg);
}
static inline int chat__engine_find_sent(chat__engine_t *e, const char *from,
                                         const char *msg_id,
                                         chat__engine_sent_cb cb, void *arg) {
  return e->type->find_sent(e, from, msg_id, cb, arg);
}
static inline int chat__engine_flushing(const chat__engine_t *e) {
  return e->type->flushing(e);
}
static inline int chat__engine_flush_sync(chat__engine_t *e) {
  return e->type->flush_sync(e);
}
static inline void chat__engine_free(chat__engine_t *e) {
  if (e != NULL)
    e->type->free(e);
}

#endif /* CHAT_ENGINE_H */
