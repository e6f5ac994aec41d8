/* hash.h -- argon2id password hashing off the loop thread, on a pool of its
 * own.
 *
 * crypto_pwhash takes tens of milliseconds and tens of MiB by design, so it
 * never runs on the loop thread; the callback comes back on the loop. The
 * hashes get dedicated threads (a chat__worker_t) with a bounded queue: a
 * login storm then neither delays commits nor queues without limit, and a
 * queued hash whose requester went away is cancelled, never computed. */
#ifndef CHAT_HASH_H
#define CHAT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server.h" /* chat_server_hash_cost_t */

/* Hashes that may wait for a thread; more are refused with -EAGAIN. At the
 * interactive cost on 1 thread (2 CPUs) that is about 40 s of work. */
#define CHAT_HASH_QUEUE_DEFAULT 1024

/* The hash threads run this much nicer than the rest of the server: with
 * as many hash threads as cores, the loop thread and the store thread would
 * otherwise queue for a core behind hashes, and every reply of a login storm
 * would wait a scheduler slice. */
#define CHAT_HASH_NICE 10

typedef struct chat__hash_pool chat__hash_pool_t;
typedef struct chat__hash_req chat__hash_req_t;
typedef struct chat__hasher chat__hasher_t;

/* One fewer than the CPUs this process may use, at least 1. The loop and
 * the store thread answer every client; a core of their own is what keeps
 * a `stored` reply as fast during a login storm as without one. With every
 * core hashing, even idle-class hashes that give way at once left the
 * storm's `stored` p99 at 2-4x quiet (cold caches, a scheduler tick here
 * and there); with one core left, 1.07x, at half the login rate on two
 * cores (docs/PERFORMANCE.md, "Login storm"). */
unsigned chat__hash_default_threads(void);

/* nthreads 0: chat__hash_default_threads();
 * max_queued 0: no bound. hasher: NULL (the pool's threads hash, at
 * CHAT_HASH_NICE and SCHED_IDLE), or a helper process with at least
 * nthreads slots (hasher.h) that the pool takes over, even on failure: the
 * threads then only wait for it, and hash themselves only if it dies.
 * Returns 0, -ENOMEM or a libuv error. */
int chat__hash_pool_new(uv_loop_t *loop, unsigned nthreads, size_t max_queued,
                        chat__hasher_t *hasher, chat__hash_pool_t **out);
/* For shutdown: refuses new hashes (-ESHUTDOWN) and cancels the queued ones
 * (their callbacks come later on the loop with -ECANCELED); the running
 * ones finish. Does not block. */
void chat__hash_pool_stop(chat__hash_pool_t *p);
/* Stops, waits for the running hashes only, calls every callback still to
 * come (here), ends the helper, and closes: run the loop once more before
 * closing it. NULL is a no-op. */
void chat__hash_pool_free(chat__hash_pool_t *p);

typedef struct chat__hash_stats {
  uint64_t computed;  /* hashes and verifies actually run */
  uint64_t in_helper; /* of those, run by the helper process */
  uint64_t cancelled; /* submitted, never run */
  uint64_t refused;   /* -EAGAIN: the queue was full */
} chat__hash_stats_t;
void chat__hash_pool_stats(chat__hash_pool_t *p, chat__hash_stats_t *out);
/* Hashes waiting for a thread. */
size_t chat__hash_pool_queued(chat__hash_pool_t *p);
/* Whether a hash asked now would be taken: 0, or -EAGAIN when the queue is
 * full (counted as refused). For a request that has work to do before its
 * hash (a login reads the store first), so that it is refused before that
 * work. A NULL pool (libuv's, unbounded) always admits. */
int chat__hash_pool_admit(chat__hash_pool_t *p);

/* For make: status 0 and hash (borrowed for the call) or a negative error.
 * For verify: status 0 when the password matches, -EACCES when not.
 * -ECANCELED for either after chat__hash_cancel() or a stop. */
typedef void (*chat__hash_cb)(void *arg, int status, const char *hash);

/* Hashes / verifies password on pool. pool NULL: on loop's libuv thread
 * pool instead (embedders without a pool, e.g. the fuzzer; no bound there).
 * *req (if req is not NULL) identifies the request for chat__hash_cancel()
 * until cb is called. Returns 0 (cb will be called, never from inside this
 * call), -EAGAIN (the pool's queue is full), -ESHUTDOWN (the pool is
 * stopping), -ENOMEM or a libuv error; cb will not be called then. */
int chat__hash_make(chat__hash_pool_t *pool, uv_loop_t *loop,
                    chat_server_hash_cost_t cost, const char *password,
                    chat__hash_cb cb, void *arg, chat__hash_req_t **req);
int chat__hash_verify(chat__hash_pool_t *pool, uv_loop_t *loop,
                      const char *hash, const char *password, chat__hash_cb cb,
                      void *arg, chat__hash_req_t **req);

/* The requester no longer wants the result: a request that has not started
 * is never computed, and its cb comes later with -ECANCELED; one already
 * running completes and its cb comes with its result. Only between the
 * submit and cb. */
void chat__hash_cancel(chat__hash_req_t *req);

/* The same, synchronously (start-up's dummy hash, tests). 0 or -ENOMEM. */
int chat__hash_make_sync(chat_server_hash_cost_t cost, const char *password,
                         char *out, size_t outlen);

#endif /* CHAT_HASH_H */
