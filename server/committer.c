/* committer.c -- group commit: ops gathered during loop turns, committed one
 * transaction at a time on a store thread of the committer's own.
 *
 * The store thread is a one-thread chat__worker_t rather than libuv's shared
 * pool, so a commit never waits behind unrelated slow work (password
 * hashes) queued there.
 *
 * Two batches (committer_batch.c) take turns: the open one collects ops
 * and callbacks on the loop thread while the other is in flight.
 *
 * An idle handle (which makes the loop poll without blocking) and a check
 * handle (which runs after the poll) are active only while the open batch
 * has something to hand over and nothing is in flight: the check hands the
 * batch over at the end of the turn in which the ops were added, and when
 * nothing is pending the committer keeps the loop alive with nothing.
 */
#include "committer.h"

#include "committer_batch.h"
#include "committer_int.h"
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct chat__committer {
  uv_loop_t *loop;
  chat__store_t *store;
  uv_idle_t idle;
  uv_check_t check;
  chat__worker_t *worker; /* the store thread */
  chat__worker_job_t job;
  chat__batch_t b[2];
  chat__batch_t *open;
  chat__batch_t *flying;  /* handed to the pool, result not yet handled */
  bool work_busy;   /* job submitted, its done not yet run */
  uv_mutex_t mu;    /* guards flying_done, for flush_sync */
  uv_cond_t cv;
  bool flying_done;
  bool freeing;
  bool flushing;    /* inside flush_sync */
  bool backoff;     /* a batch failed: the next waits for the timer */
  uv_timer_t retry;
  chat__committer_fail_cb fail_cb;
  void *fail_arg;
  int open_handles;
  uv_timer_t trim_timer; /* unref'd: an idle committer keeps no loop alive */
  chat__worker_job_t trim_job; /* gives the store's cache back when idle */
  bool trim_busy;
  chat__committer_stats_t stats;
};

/* ---- handing batches over ----------------------------------------------- */

static void on_idle(uv_idle_t *h) {}
static void on_check(uv_check_t *h);
static void submit(chat__committer_t *c);

static void arm(chat__committer_t *c) {
  if (c->work_busy || c->freeing || c->backoff)
    return;
  uv_idle_start(&c->idle, on_idle);
  uv_check_start(&c->check, on_check);
}

static void disarm(chat__committer_t *c) {
  uv_idle_stop(&c->idle);
  uv_check_stop(&c->check);
}

static void count(chat__committer_t *c, const chat__batch_t *b) {
  c->stats.batches++;
  if (b->status != 0) {
    c->stats.failed_batches++;
  } else {
    c->stats.ops += b->n;
  }
  if (b->n > c->stats.max_batch)
    c->stats.max_batch = b->n;
}

static void on_retry(uv_timer_t *t) {
  chat__committer_t *c = t->data;

  c->backoff = false;
  if (c->open->n > 0 || c->open->nw > 0 || c->open->nrd > 0)
    arm(c);
}

/* Handles the result of a batch that was in flight, on the loop thread. */
static void finish_batch(chat__committer_t *c, chat__batch_t *b) {
  int status = b->status;

  count(c, b);
  if (status != 0 && !c->freeing) {
    if (c->fail_cb != NULL && b->nfailed > 0)
      c->fail_cb(c->fail_arg, b->ops, b->nfailed, status);
    c->backoff = true;
    uv_timer_start(&c->retry, on_retry, CHAT_COMMITTER_RETRY_MS, 0);
  }
  chat__batch_reset(b);
  chat__batch_fire_waiters(b, status);
  chat__batch_fire_reads(b);
}

static void finish_flying(chat__committer_t *c) {
  chat__batch_t *b = c->flying;

  c->flying = NULL;
  finish_batch(c, b);
}

static void work_cb(chat__worker_job_t *job) {
  chat__committer_t *c = job->data;

  chat__batch_run(c->store, c->flying);
  uv_mutex_lock(&c->mu);
  c->flying_done = true;
  uv_cond_signal(&c->cv);
  uv_mutex_unlock(&c->mu);
}

static void maybe_release(chat__committer_t *c) {
  if (c->freeing && c->open_handles == 0 && !c->work_busy && !c->trim_busy) {
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->mu);
    free(c);
  }
}

/* The store's page cache (4 MiB) is sized for bursts: it holds the index
 * pages a batch touches, which a smaller one read back from the OS every
 * commit (a tenth of the stored path). Idle, it would only pin memory, so
 * once the committer has been idle for CHAT_COMMITTER_TRIM_MS the store
 * thread gives it back, and hands what glibc holds free to the system
 * (the sweep's malloc_trim may be seconds away). */
static void trim_work(chat__worker_job_t *job) {
  chat__committer_t *c = job->data;

  chat__store_trim(c->store);
  malloc_trim(0);
}

static void trim_done(chat__worker_job_t *job, int status) {
  chat__committer_t *c = job->data;

  c->trim_busy = false;
  if (status == 0)
    c->stats.trims++;
  maybe_release(c);
}

static void on_trim_timer(uv_timer_t *t) {
  chat__committer_t *c = t->data;

  if (c->trim_busy || c->freeing || c->work_busy || c->open->n > 0 ||
      c->open->nrd > 0)
    return; /* busy again: the next idle spell restarts the timer */
  if (chat__worker_submit(c->worker, &c->trim_job, trim_work, trim_done) ==
      0)
    c->trim_busy = true;
}

static void after_work_cb(chat__worker_job_t *job, int status) {
  chat__committer_t *c = job->data;

  c->work_busy = false;
  if (c->flying != NULL) { /* else flush_sync already handled it */
    chat__batch_t *b = c->flying;
    if (status < 0) /* never started: the worker was stopped */
      b->status = status;
    c->flying = NULL;
    /* The next commit starts before this one's callbacks run: they send
     * the replies, and the store thread would sit idle meanwhile (a sixth
     * of its time on the stored path). After a failure the next waits for
     * the retry timer instead. b becomes the open batch here; its
     * callbacks are taken out of it before they run, so what they add
     * goes to the next batch, as before. */
    if (b->status == 0 && !c->freeing && !c->backoff &&
        (c->open->n > 0 || c->open->nrd > 0))
      submit(c);
    finish_batch(c, b);
  }
  if (c->open->n > 0 || c->open->nw > 0 || c->open->nrd > 0) {
    arm(c);
  } else if (!c->work_busy) { /* idle: both batches are empty */
    chat__batch_trim(&c->b[0], CHAT__BATCH_IDLE_BYTES, CHAT__BATCH_IDLE_RECS);
    chat__batch_trim(&c->b[1], CHAT__BATCH_IDLE_BYTES, CHAT__BATCH_IDLE_RECS);
    if (!c->freeing)
      uv_timer_start(&c->trim_timer, on_trim_timer, CHAT_COMMITTER_TRIM_MS, 0);
  }
  maybe_release(c);
}

static void on_check(uv_check_t *h) {
  chat__committer_t *c = h->data;
  chat__batch_t *b = c->open;

  disarm(c);
  if (c->work_busy)
    return; /* after_work_cb re-arms */
  if (b->n == 0 && b->nrd == 0) { /* only callbacks, nothing pending */
    chat__batch_fire_waiters(b, 0);
    return;
  }
  submit(c);
}

/* Hands the open batch to the store thread; the other becomes the open
 * one. */
static void submit(chat__committer_t *c) {
  chat__batch_t *b = c->open;
  int r;

  c->open = b == &c->b[0] ? &c->b[1] : &c->b[0];
  c->flying = b;
  c->flying_done = false;
  c->work_busy = true;
  r = chat__worker_submit(c->worker, &c->job, work_cb, after_work_cb);
  if (r != 0) { /* unbounded and never stopped before free; be safe */
    c->work_busy = false;
    b->status = r;
    finish_flying(c);
    if (c->open->n > 0 || c->open->nw > 0 || c->open->nrd > 0)
      arm(c);
  }
}

/* ---- API ---------------------------------------------------------------- */

int chat__committer_new(uv_loop_t *loop, chat__store_t *store,
                        chat__committer_t **out) {
  chat__committer_t *c = calloc(1, sizeof(*c));

  *out = NULL;
  if (c == NULL)
    return -ENOMEM;
  if (uv_mutex_init(&c->mu) != 0) {
    free(c);
    return -ENOMEM;
  }
  if (uv_cond_init(&c->cv) != 0) {
    uv_mutex_destroy(&c->mu);
    free(c);
    return -ENOMEM;
  }
  if (chat__worker_new(loop, 1, 0, &c->worker) != 0) {
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->mu);
    free(c);
    return -ENOMEM;
  }
  c->loop = loop;
  c->store = store;
  c->open = &c->b[0];
  c->job.data = c;
  c->trim_job.data = c;
  uv_idle_init(loop, &c->idle);
  uv_check_init(loop, &c->check);
  uv_timer_init(loop, &c->retry);
  uv_timer_init(loop, &c->trim_timer);
  uv_unref((uv_handle_t *)&c->trim_timer);
  c->idle.data = c;
  c->check.data = c;
  c->retry.data = c;
  c->trim_timer.data = c;
  c->open_handles = 4;
  *out = c;
  return 0;
}

int chat__committer_add(chat__committer_t *c, const chat__store_op_t *op) {
  int r = chat__batch_add_op(c->open, op);

  if (r == 0)
    arm(c);
  return r;
}

int chat__committer_then(chat__committer_t *c, chat__committer_cb cb,
                         void *arg) {
  int r;

  /* Everything added so far is in the open batch if it has ops, else in
   * the batch in flight, else nowhere (already committed). */
  if (c->open->n > 0)
    return chat__batch_add_waiter(c->open, cb, arg, true);
  if (c->flying != NULL)
    return chat__batch_add_waiter(c->flying, cb, arg, true);
  r = chat__batch_add_waiter(c->open, cb, arg, false);
  if (r == 0)
    arm(c);
  return r;
}

int chat__committer_read(chat__committer_t *c, chat__committer_read_fn fn,
                         chat__committer_cb done, void *arg) {
  /* The open batch runs after the one in flight, and its reads after its
   * ops: so the read sees everything added before it. */
  int r = chat__batch_add_read(c->open, fn, done, arg);

  if (r == 0)
    arm(c);
  return r;
}

size_t chat__committer_pending(const chat__committer_t *c) {
  return c->open->n + (c->flying != NULL ? c->flying->n : 0);
}

int chat__committer_flushing(const chat__committer_t *c) {
  return c->flushing || c->freeing;
}

int chat__committer_flush_sync(chat__committer_t *c) {
  int first_err = 0;
  bool outer = c->flushing; /* a callback may flush again */

  c->flushing = true;
  if (c->flying != NULL) {
    chat__batch_t *b = c->flying;

    /* After the signal the worker no longer touches the store or b; the
     * work req itself completes whenever the loop runs next. */
    uv_mutex_lock(&c->mu);
    while (!c->flying_done)
      uv_cond_wait(&c->cv, &c->mu);
    uv_mutex_unlock(&c->mu);
    first_err = b->status;
    finish_flying(c);
  }
  /* Callbacks may add more; keep going until nothing is left. */
  while (c->open->n > 0 || c->open->nw > 0 || c->open->nrd > 0) {
    chat__batch_t *b = c->open;
    int status = 0;

    if (b->n > 0 || b->nrd > 0) {
      bool had_ops = b->n > 0;
      chat__batch_run(c->store, b);
      if (had_ops) {
        count(c, b);
        status = b->status;
        if (first_err == 0)
          first_err = status;
      }
    }
    chat__batch_reset(b);
    chat__batch_fire_waiters(b, status);
    chat__batch_fire_reads(b);
  }
  disarm(c);
  c->flushing = outer;
  return first_err;
}

static void on_close(uv_handle_t *h) {
  chat__committer_t *c = h->data;

  c->open_handles--;
  maybe_release(c);
}

void chat__committer_free(chat__committer_t *c) {
  if (c == NULL)
    return;
  if (c->flying != NULL || c->open->n > 0 || c->open->nw > 0 ||
      c->open->nrd > 0)
    chat__committer_flush_sync(c);
  c->freeing = true;
  /* Nothing is in flight after the flush; this joins the store thread
   * (and runs a done still to come, which only clears work_busy). */
  chat__worker_free(c->worker);
  c->worker = NULL;
  chat__batch_free(&c->b[0]);
  chat__batch_free(&c->b[1]);
  uv_close((uv_handle_t *)&c->idle, on_close);
  uv_close((uv_handle_t *)&c->check, on_close);
  uv_close((uv_handle_t *)&c->retry, on_close);
  uv_close((uv_handle_t *)&c->trim_timer, on_close);
}

void chat__committer_on_fail(chat__committer_t *c, chat__committer_fail_cb cb,
                             void *arg) {
  c->fail_cb = cb;
  c->fail_arg = arg;
}

void chat__committer_stats(const chat__committer_t *c,
                           chat__committer_stats_t *out) {
  *out = c->stats;
}

chat__worker_t *chat__committer_worker(chat__committer_t *c) {
  return c->worker;
}
