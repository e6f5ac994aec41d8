/* store_ckpt.h -- the SQLite store's checkpointer (private to store_sqlite*.c).
 *
 * In WAL mode every commit appends pages to the log, and a checkpoint copies
 * them back into the database file. SQLite's default runs the checkpoint
 * inside the commit that crosses 1,000 pages, on the committing thread: the
 * store thread then reads the log and writes and syncs the database while
 * every `stored` reply waits. Here a thread of its own, on a connection of
 * its own, does that work while the store thread goes on committing.
 */
#ifndef CHAT_STORE_CKPT_H
#define CHAT_STORE_CKPT_H

#include <stdint.h>

#include <sqlite3.h>

/* Log sizes, in pages, that the wal hook acts on. Past CHAT__CKPT_PAGES
 * the checkpointer is woken. Past CHAT__CKPT_HARD_PAGES the writer
 * checkpoints itself: under a steady stream of commits the checkpointer's
 * passive runs never find the log fully copied when a commit starts, and
 * only then may the log start over, so without this it would grow for as
 * long as the stream lasts. Most of it has been copied by then, so the
 * writer's share is small. */
#define CHAT__CKPT_PAGES 1000
#define CHAT__CKPT_HARD_PAGES 8192

typedef struct chat__ckpt chat__ckpt_t;

typedef struct chat__ckpt_stats {
  uint64_t runs;       /* checkpoints the thread completed */
  uint64_t failed;     /* ... that returned an error (retried on the next) */
  uint64_t inline_runs; /* checkpoints the writer ran past the hard limit */
  uint32_t max_pages;  /* the largest log the wal hook has seen */
} chat__ckpt_stats_t;

/* Installs a wal hook on db (the writer's connection, whose database file is
 * path) and starts the thread with a connection of its own. 0, or -EIO /
 * -ENOMEM, and then db keeps SQLite's own checkpoints. */
int chat__ckpt_start(sqlite3 *db, const char *path, chat__ckpt_t **out);
/* Stops and joins the thread and closes its connection; before db is
 * closed (whose close then makes the last checkpoint). NULL is a no-op. */
void chat__ckpt_stop(chat__ckpt_t *c);
void chat__ckpt_stats(chat__ckpt_t *c, chat__ckpt_stats_t *out);
/* Replaces the two limits above (pages) for this store. For tests. */
void chat__ckpt_set_limits(chat__ckpt_t *c, uint32_t pages,
                           uint32_t hard_pages);
/* Blocks until the thread has completed at least runs checkpoints or
 * timeout_ms passed: 0 or -ETIMEDOUT. For tests. */
int chat__ckpt_wait(chat__ckpt_t *c, uint64_t runs, unsigned timeout_ms);

#endif /* CHAT_STORE_CKPT_H */
