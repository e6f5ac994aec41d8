/* committer.h -- group commit of store operations off the loop thread.
 *
 * The loop thread adds operations as it changes its in-memory state; they
 * collect in an open batch. While no batch is being committed (nor paused
 * after a failure, see chat__committer_on_fail), the open batch is handed
 * to the committer's own store thread (a one-thread chat__worker_t, so
 * commits never queue behind other work) at the end of the loop turn; one
 * fsync'd transaction covers everything gathered meanwhile. Callbacks that
 * wait for durability (a "stored" reply, a registration) run on the loop
 * thread once every operation added before them is committed.
 */
#ifndef CHAT_COMMITTER_H
#define CHAT_COMMITTER_H

#include <uv.h>

#include "store.h"

typedef struct chat__committer chat__committer_t;

/* status is 0 when everything added before chat__committer_then() is on disk,
 * or the store's negative error when the batch holding it failed (its ops
 * took no effect). */
typedef void (*chat__committer_cb)(void *arg, int status);

/* The store is used from the store thread while a batch is in flight and
 * from the loop thread otherwise; the committer must be the store's only
 * user once created (load everything before). The committer's handles keep
 * the loop alive only while something is pending. Returns 0 or -ENOMEM. */
int chat__committer_new(uv_loop_t *loop, chat__store_t *store,
                        chat__committer_t **out);

/* Adds one operation, copying every string it points to (the body too).
 * Returns 0, -EINVAL (the op fails chat__store_op_check(); nothing is added)
 * or -ENOMEM. */
int chat__committer_add(chat__committer_t *c, const chat__store_op_t *op);

/* Calls cb(arg, status) on the loop thread once every operation added so far
 * has committed (or failed). With nothing pending it is still called later
 * with status 0 (at the end of this loop turn, or once the pause after a
 * failed batch is over), never from inside this call.
 * Callbacks run in the order they were registered, and may add operations
 * and register callbacks. Returns 0 or -ENOMEM (cb will not be called). */
int chat__committer_then(chat__committer_t *c, chat__committer_cb cb,
                         void *arg);

/* Called on the loop thread for a batch that failed, before its waiters,
 * with the ops that took no effect (borrowed for the call) and the error,
 * so the owner can add again what its in-memory state still needs (the
 * committer itself cannot know which ops a waiter will give up on). Ops it
 * adds go into the open batch. Two things make a full disk survivable:
 * when a batch fails with -ENOSPC, its DEL_MSG ops are committed on their
 * own (so acks free space; those are not passed to cb), and after a failed
 * batch the next one waits CHAT_COMMITTER_RETRY_MS, so ops added back do
 * not spin against a store that keeps failing. Not called for batches that
 * chat__committer_flush_sync() commits itself. cb NULL turns it off. */
#define CHAT_COMMITTER_RETRY_MS 250
/* After this long with nothing to commit, the store thread gives back the
 * store's page cache and the memory glibc holds free. */
#define CHAT_COMMITTER_TRIM_MS 500
typedef void (*chat__committer_fail_cb)(void *arg, const chat__store_op_t *ops,
                                        size_t n, int status);
void chat__committer_on_fail(chat__committer_t *c, chat__committer_fail_cb cb,
                             void *arg);

/* A read of the store: runs on the store's thread, returns 0 or a negative
 * error, and keeps its result in arg for the done callback. */
typedef int (*chat__committer_read_fn)(chat__store_t *store, void *arg);

/* Runs fn on the store's thread once every operation added before this call
 * is committed (or has failed), then done(arg, fn's result) on the loop
 * thread, never from inside this call. Reads ride with a batch, so they
 * wait behind at most the batch in flight. Returns 0 or -ENOMEM. */
int chat__committer_read(chat__committer_t *c, chat__committer_read_fn fn,
                         chat__committer_cb done, void *arg);

/* Number of operations added and not yet committed. */
size_t chat__committer_pending(const chat__committer_t *c);

/* For shutdown: blocks the calling (loop) thread until the batch in flight
 * is done (it waits on a condition variable, it does not run the loop, so it
 * is safe inside a loop callback, e.g. a signal handler's), then commits the
 * rest on this thread and runs every waiting callback, including those that
 * callbacks add meanwhile. Returns 0 when all of it committed, else the first
 * failing batch's error. */
int chat__committer_flush_sync(chat__committer_t *c);

/* Nonzero while chat__committer_flush_sync() runs (shutdown). A callback
 * that would otherwise add its failed ops again and wait for another batch
 * must not, or a flush against a store that keeps failing never ends. */
int chat__committer_flushing(const chat__committer_t *c);

/* Frees the committer, flushing first (as chat__committer_flush_sync()) if
 * anything is pending. Does not close the store. Its libuv handles are
 * closed, so the memory is released only in their close callbacks: run the
 * loop once more afterwards (uv_run(loop, UV_RUN_DEFAULT) returns at once
 * when nothing else is active) before closing the loop. */
void chat__committer_free(chat__committer_t *c);

/* Counters since chat__committer_new(), for tests and monitoring. A batch is
 * one transaction (one fsync); callback-only turns are not batches. */
typedef struct chat__committer_stats {
  uint64_t batches;        /* transactions attempted */
  uint64_t failed_batches; /* of which rolled back */
  uint64_t ops;            /* ops in committed batches */
  uint64_t max_batch;      /* most ops in one batch */
  uint64_t trims;          /* times the store's cache was given back */
} chat__committer_stats_t;

void chat__committer_stats(const chat__committer_t *c,
                           chat__committer_stats_t *out);

#endif /* CHAT_COMMITTER_H */
