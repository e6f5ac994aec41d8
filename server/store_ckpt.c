/* store_ckpt.c -- WAL checkpoints on a thread of their own (store_ckpt.h).
 *
 * The writer's wal hook runs on the store thread right after each commit,
 * with the log's size. It only sets a flag and signals; the thread runs a
 * PASSIVE checkpoint, which never blocks the writer (nor waits for it), on
 * its own connection. Woken again while it ran, it runs again.
 */
#include "store_ckpt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

#define CKPT_BUSY_TIMEOUT_MS 5000

struct chat__ckpt {
  sqlite3 *db; /* the thread's own connection */
  sqlite3 *writer;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;   /* the thread waits for work, tests for runs */
  bool wanted;    /* a checkpoint is asked for */
  bool stopping;
  uint32_t pages, hard_pages; /* the limits of store_ckpt.h, under mu */
  chat__ckpt_stats_t stats;   /* under mu */
};

static void run_thread(void *arg) {
  chat__ckpt_t *c = arg;

  uv_mutex_lock(&c->mu);
  for (;;) {
    while (!c->wanted && !c->stopping)
      uv_cond_wait(&c->cv, &c->mu);
    if (c->stopping)
      break;
    c->wanted = false;
    uv_mutex_unlock(&c->mu);
    /* An error (a full disk, SQLITE_BUSY from the writer's own catch-up)
     * leaves the log as it was: the next wake-up tries again, and the
     * frames are safe in the log meanwhile. */
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       NULL, NULL);
    uv_mutex_lock(&c->mu);
    if (rc == SQLITE_OK)
      c->stats.runs++;
    else
      c->stats.failed++;
    uv_cond_broadcast(&c->cv);
  }
  uv_mutex_unlock(&c->mu);
}

/* SQLite calls this on the writer's thread after each commit in WAL mode,
 * in place of its own checkpoint-on-commit. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages) {
  chat__ckpt_t *c = arg;
  bool hard;

  uv_mutex_lock(&c->mu);
  hard = (uint32_t)pages >= c->hard_pages;
  if ((uint32_t)pages > c->stats.max_pages)
    c->stats.max_pages = (uint32_t)pages;
  if (!hard && (uint32_t)pages >= c->pages && !c->wanted) {
    c->wanted = true;
    uv_cond_broadcast(&c->cv);
  }
  uv_mutex_unlock(&c->mu);
  if (hard) {
    /* Copies what the thread has not, after which the next commit starts
     * the log over. SQLITE_BUSY while the thread's run holds the
     * checkpoint lock: the next commit tries again. */
    if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                  NULL) == SQLITE_OK) {
      uv_mutex_lock(&c->mu);
      c->stats.inline_runs++;
      uv_mutex_unlock(&c->mu);
    }
  }
  return SQLITE_OK; /* an error here would fail a statement that committed */
}

int chat__ckpt_start(sqlite3 *db, const char *path, chat__ckpt_t **out) {
  chat__ckpt_t *c = calloc(1, sizeof(*c));
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;

  *out = NULL;
  if (c == NULL)
    return -ENOMEM;
  if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
    sqlite3_close(c->db);
    free(c);
    return -EIO;
  }
  sqlite3_busy_timeout(c->db, CKPT_BUSY_TIMEOUT_MS);
  /* Its own commits (none) would otherwise checkpoint too. */
  sqlite3_wal_autocheckpoint(c->db, 0);
  c->writer = db;
  c->pages = CHAT__CKPT_PAGES;
  c->hard_pages = CHAT__CKPT_HARD_PAGES;
  if (uv_mutex_init(&c->mu) != 0) {
    sqlite3_close(c->db);
    free(c);
    return -ENOMEM;
  }
  if (uv_cond_init(&c->cv) != 0) {
    uv_mutex_destroy(&c->mu);
    sqlite3_close(c->db);
    free(c);
    return -ENOMEM;
  }
  if (uv_thread_create(&c->thread, run_thread, c) != 0) {
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->mu);
    sqlite3_close(c->db);
    free(c);
    return -ENOMEM;
  }
  sqlite3_wal_hook(db, on_wal, c);
  *out = c;
  return 0;
}

void chat__ckpt_stop(chat__ckpt_t *c) {
  if (c == NULL)
    return;
  sqlite3_wal_hook(c->writer, NULL, NULL);
  uv_mutex_lock(&c->mu);
  c->stopping = true;
  uv_cond_broadcast(&c->cv);
  uv_mutex_unlock(&c->mu);
  uv_thread_join(&c->thread);
  uv_cond_destroy(&c->cv);
  uv_mutex_destroy(&c->mu);
  sqlite3_close(c->db);
  free(c);
}

void chat__ckpt_stats(chat__ckpt_t *c, chat__ckpt_stats_t *out) {
  uv_mutex_lock(&c->mu);
  *out = c->stats;
  uv_mutex_unlock(&c->mu);
}

void chat__ckpt_set_limits(chat__ckpt_t *c, uint32_t pages,
                           uint32_t hard_pages) {
  uv_mutex_lock(&c->mu);
  c->pages = pages;
  c->hard_pages = hard_pages;
  uv_mutex_unlock(&c->mu);
}

int chat__ckpt_wait(chat__ckpt_t *c, uint64_t runs, unsigned timeout_ms) {
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  int ret = 0;

  uv_mutex_lock(&c->mu);
  while (c->stats.runs < runs) {
    uint64_t now = uv_hrtime();
    if (now >= deadline ||
        (uv_cond_timedwait(&c->cv, &c->mu, deadline - now) != 0 &&
         c->stats.runs < runs)) {
      ret = -ETIMEDOUT;
      break;
    }
  }
  uv_mutex_unlock(&c->mu);
  return ret;
}
