/* committer_batch.h -- a batch of the committer (private to committer*.c).
 *
 * A batch collects ops, the callbacks that wait for them and the reads
 * that run after them, on the loop thread; the store thread applies it.
 * Its strings live in one byte buffer, referred to by offset, so the
 * buffer grows by realloc and is kept from one commit to the next: at a
 * steady rate adding an op allocates nothing.
 */
#ifndef CHAT_COMMITTER_BATCH_H
#define CHAT_COMMITTER_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "committer.h"
#include "store.h"

#define CHAT__BATCH_NO_STR SIZE_MAX
/* Buffers above these are given back once the committer is idle (nothing
 * open after a commit): kept for the next batch under load, where reusing
 * them saves an allocation per op, they were most of what a node's memory
 * grew by after a burst of stored messages (5.6 MB: two batches' records
 * and ops at 16,384 each, docs/PERFORMANCE.md). */
#define CHAT__BATCH_IDLE_BYTES (64u << 10)
#define CHAT__BATCH_IDLE_RECS 256u

/* An op whose strings are offsets into its batch's buffer
 * (CHAT__BATCH_NO_STR: NULL). */
typedef struct chat__batch_rec {
  chat__store_op_kind_t kind;
  size_t a, b, to, from, group, msg_id, body;
  size_t body_len;
  uint64_t seq;
  int64_t ts;
  int offline;
} chat__batch_rec_t;

typedef struct chat__batch_waiter {
  chat__committer_cb cb;
  void *arg;
  bool after_ops; /* registered with ops pending; else its status is 0 */
} chat__batch_waiter_t;

/* A read that runs on the store's thread right after its batch. */
typedef struct chat__batch_reader {
  chat__committer_read_fn fn;
  chat__committer_cb done;
  void *arg;
  int status;
} chat__batch_reader_t;

typedef struct chat__batch {
  chat__batch_reader_t *rd;
  size_t nrd, rdcap;
  chat__batch_rec_t *recs;
  size_t n, cap;
  char *buf;
  size_t len, bufcap;
  chat__store_op_t *ops; /* built from recs when the batch is applied */
  size_t opscap;
  chat__batch_waiter_t *w;
  size_t nw, wcap;
  int status;
  size_t nfailed;       /* ops[0..nfailed) took no effect (after a failure) */
} chat__batch_t;


/* Copies op (checked with chat__store_op_check) into b: 0, -EINVAL or
 * -ENOMEM. */
int chat__batch_add_op(chat__batch_t *b, const chat__store_op_t *op);
int chat__batch_add_waiter(chat__batch_t *b, chat__committer_cb cb,
                           void *arg, bool after_ops);
int chat__batch_add_read(chat__batch_t *b, chat__committer_read_fn fn,
                         chat__committer_cb done, void *arg);
/* On the thread that owns the store now: b's ops in one transaction (with
 * the retry of its deletes alone on -ENOSPC), then its reads. */
void chat__batch_run(chat__store_t *store, chat__batch_t *b);
/* On the loop thread. Each takes its list out of b first, so callbacks
 * may add to b (when it is the open batch again) or to another. */
void chat__batch_fire_waiters(chat__batch_t *b, int status);
void chat__batch_fire_reads(chat__batch_t *b);
/* Empties b's ops, keeping buffers up to 1 MiB and 16,384 records. */
void chat__batch_reset(chat__batch_t *b);
/* Frees b's buffers (b empty) where they exceed the given sizes. */
void chat__batch_trim(chat__batch_t *b, size_t keep_bytes, size_t keep_recs);
void chat__batch_free(chat__batch_t *b);

#endif /* CHAT_COMMITTER_BATCH_H */
