/* committer.h -- group commit of store operations off the loop thread.
 *
 * The loop thread adds operations as it changes its in-memory state; they
 * collect in an open batch. While no batch is being committed, the open batch
 * is handed to the libuv thread pool at the end of the loop turn, and one
 * fsync'd transaction covers everything gathered meanwhile. Callbacks that
 * wait for durability (a "stored" reply, a registration) run on the loop
 * thread once every operation added before them is committed.
 */
#ifndef CHAT_COMMITTER_H
#define CHAT_COMMITTER_H

#include <uv.h>

#include "store.h"

typedef struct chat_committer chat_committer_t;

/* status is 0 when everything added before chat_committer_then() is on disk,
 * or the store's negative error when the batch holding it failed (its ops
 * took no effect). */
typedef void (*chat_committer_cb)(void *arg, int status);

/* The store is used from the thread pool while a batch is in flight and
 * from the loop thread otherwise; the committer must be the store's only
 * user once created. Returns 0 or -ENOMEM. */
int chat_committer_new(uv_loop_t *loop, chat_store_t *store,
                       chat_committer_t **out);

/* Adds one operation, copying every string it points to (the body too).
 * Returns 0 or -ENOMEM. */
int chat_committer_add(chat_committer_t *c, const chat_store_op_t *op);

/* Calls cb(arg, status) on the loop thread once every operation added so far
 * has committed (or failed). With nothing pending it is still called later,
 * never from inside this call. Returns 0 or -ENOMEM. */
int chat_committer_then(chat_committer_t *c, chat_committer_cb cb, void *arg);

/* Number of operations added and not yet committed. */
size_t chat_committer_pending(const chat_committer_t *c);

/* For shutdown: waits for the batch in flight, then commits the rest on the
 * calling (loop) thread and runs every waiting callback. Returns the last
 * commit's status. */
int chat_committer_flush_sync(chat_committer_t *c);

/* Frees the committer; call after chat_committer_flush_sync() once the loop
 * has no work in flight. Does not close the store. */
void chat_committer_free(chat_committer_t *c);

#endif /* CHAT_COMMITTER_H */
