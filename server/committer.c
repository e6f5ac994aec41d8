/* committer.c -- group commit: ops gathered during loop turns, committed one
 * transaction at a time on a store thread of the committer's own.
 *
 * The store thread is a one-thread chat__worker_t rather than libuv's shared
 * pool, so a commit never waits behind unrelated slow work (password
 * hashes) queued there.
 *
 * Two batches take turns: the open one collects ops and callbacks on the
 * loop thread while the other is in flight. A batch keeps its strings in one
 * byte buffer and refers to them by offset, so the buffer can grow by
 * realloc, and both batches keep their buffers from one commit to the next:
 * at a steady rate adding an op allocates nothing.
 *
 * An idle handle (which makes the loop poll without blocking) and a check
 * handle (which runs after the poll) are active only while the open batch
 * has something to hand over and nothing is in flight: the check hands the
 * batch over at the end of the turn in which the ops were added, and when
 * nothing is pending the committer keeps the loop alive with nothing.
 */
#include "committer.h"

#include "committer_int.h"
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_STR SIZE_MAX
/* Buffers above these are given back after their batch, so one burst does
 * not pin its memory for the server's lifetime. */
#define KEEP_BUF_BYTES (1u << 20)
#define KEEP_RECS 16384u
/* And above these once the committer is idle (nothing open after a
 * commit): kept for the next batch under load, where reusing them saves
 * an allocation per op, they were most of what a node's memory grew by
 * after a burst of stored messages (5.6 MB: two batches' records and ops
 * at 16,384 each, docs/PERFORMANCE.md). */
#define IDLE_BUF_BYTES (64u << 10)
#define IDLE_RECS 256u

/* An op whose strings are offsets into its batch's buffer (NO_STR: NULL). */
typedef struct rec {
  chat__store_op_kind_t kind;
  size_t a, b, to, from, group, msg_id, body;
  size_t body_len;
  uint64_t seq;
  int64_t ts;
  int offline;
} rec_t;

typedef struct waiter {
  chat__committer_cb cb;
  void *arg;
  bool after_ops; /* registered with ops pending; else its status is 0 */
} waiter_t;

/* A read that runs on the store's thread right after its batch. */
typedef struct reader {
  chat__committer_read_fn fn;
  chat__committer_cb done;
  void *arg;
  int status;
} reader_t;

typedef struct batch {
  reader_t *rd;
  size_t nrd, rdcap;
  rec_t *recs;
  size_t n, cap;
  char *buf;
  size_t len, bufcap;
  chat__store_op_t *ops; /* built from recs when the batch is applied */
  size_t opscap;
  waiter_t *w;
  size_t nw, wcap;
  int status;
  size_t nfailed;       /* ops[0..nfailed) took no effect (after a failure) */
} batch_t;

struct chat__committer {
  uv_loop_t *loop;
  chat__store_t *store;
  uv_idle_t idle;
  uv_check_t check;
  chat__worker_t *worker; /* the store thread */
  chat__worker_job_t job;
  batch_t b[2];
  batch_t *open;
  batch_t *flying;  /* handed to the pool, result not yet handled */
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

/* ---- batches ------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t size,
                size_t first) {
  size_t ncap = *cap ? *cap : first;
  void *np;

  if (need <= *cap)
    return 0;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2 / size)
      return -ENOMEM;
    ncap *= 2;
  }
  np = realloc(*p, ncap * size);
  if (np == NULL)
    return -ENOMEM;
  *p = np;
  *cap = ncap;
  return 0;
}

static size_t put_bytes(batch_t *b, const void *p, size_t n, bool nul) {
  size_t off = b->len;

  memcpy(b->buf + off, p, n);
  b->len += n;
  if (nul)
    b->buf[b->len++] = '\0';
  return off;
}

static size_t put_str(batch_t *b, const char *s) {
  return s != NULL ? put_bytes(b, s, strlen(s), true) : NO_STR;
}

static const char *str_at(const batch_t *b, size_t off) {
  return off == NO_STR ? NULL : b->buf + off;
}

/* Turns recs into store ops; runs wherever the batch is applied. */
static int build_ops(batch_t *b) {
  size_t i;

  if (grow((void **)&b->ops, &b->opscap, b->n, sizeof(*b->ops), 64) != 0)
    return -ENOMEM;
  for (i = 0; i < b->n; i++) {
    const rec_t *r = &b->recs[i];
    chat__store_op_t *op = &b->ops[i];

    op->kind = r->kind;
    op->a = str_at(b, r->a);
    op->b = str_at(b, r->b);
    op->msg.seq = r->seq;
    op->msg.to = str_at(b, r->to);
    op->msg.from = str_at(b, r->from);
    op->msg.group = str_at(b, r->group);
    op->msg.msg_id = str_at(b, r->msg_id);
    op->msg.body = str_at(b, r->body);
    op->msg.body_len = r->body_len;
    op->msg.ts = r->ts;
    op->msg.offline = r->offline;
  }
  return 0;
}

/* After a failed batch: ops[0..nfailed) are those that took no effect. On
 * -ENOSPC the DEL_MSG ops (which only free space) are retried alone, first
 * moved to the end so the others stay in order at the front. A DEL_MSG of a
 * message PUT earlier in the same batch finds nothing, which is right: the
 * owner sees the failed PUT and will not add it again for an acked message. */
static void apply_batch(chat__store_t *store, batch_t *b) {
  size_t i, k, d, keep = 0, ndel;
  chat__store_op_t *tmp;

  b->nfailed = 0;
  b->status = build_ops(b);
  if (b->status == 0)
    b->status = chat__store_apply(store, b->ops, b->n);
  if (b->status == 0)
    return;
  b->nfailed = b->status == -ENOMEM ? 0 : b->n;
  if (b->status != -ENOSPC)
    return;
  /* Stable partition: the others to the front, the deletes behind. */
  for (i = 0; i < b->n; i++)
    if (b->ops[i].kind != CHAT_STORE_DEL_MSG)
      keep++;
  ndel = b->n - keep;
  if (ndel == 0 || (tmp = malloc(b->n * sizeof(*tmp))) == NULL)
    return;
  for (i = 0, k = 0, d = keep; i < b->n; i++)
    tmp[b->ops[i].kind == CHAT_STORE_DEL_MSG ? d++ : k++] = b->ops[i];
  memcpy(b->ops, tmp, b->n * sizeof(*tmp));
  free(tmp);
  if (chat__store_apply(store, b->ops + keep, ndel) == 0)
    b->nfailed = keep;
}

/* The batch's ops (if any), then its reads, on the thread that owns the
 * store now. */
static void run_batch(chat__store_t *store, batch_t *b) {
  if (b->n > 0)
    apply_batch(store, b);
  for (size_t i = 0; i < b->nrd; i++)
    b->rd[i].status = b->rd[i].fn(store, b->rd[i].arg);
}

/* Hands the reads' results back, on the loop thread. Like waiters, the list
 * is taken out first: a done callback may ask for more. */
static void fire_reads(batch_t *b) {
  reader_t *rd = b->rd;
  size_t i, n = b->nrd, cap = b->rdcap;

  b->rd = NULL;
  b->nrd = b->rdcap = 0;
  for (i = 0; i < n; i++)
    rd[i].done(rd[i].arg, rd[i].status);
  if (b->rd == NULL) {
    b->rd = rd;
    b->rdcap = cap;
  } else {
    free(rd);
  }
}

/* Frees b's buffers (b empty) where they exceed the given sizes. */
static void trim_batch(batch_t *b, size_t keep_bytes, size_t keep_recs) {
  if (b->bufcap > keep_bytes) {
    free(b->buf);
    b->buf = NULL;
    b->bufcap = 0;
  }
  if (b->cap > keep_recs) {
    free(b->recs);
    free(b->ops);
    b->recs = NULL;
    b->ops = NULL;
    b->cap = b->opscap = 0;
  }
}

static void reset_batch(batch_t *b) {
  b->n = 0;
  b->len = 0;
  b->status = 0;
  trim_batch(b, KEEP_BUF_BYTES, KEEP_RECS);
}

static void free_batch(batch_t *b) {
  free(b->rd);
  free(b->recs);
  free(b->buf);
  free(b->ops);
  free(b->w);
  memset(b, 0, sizeof(*b));
}

/* Runs b's callbacks. The list is taken out first, since a callback may
 * register new ones (they go to another batch or a fresh list here). */
static void fire_waiters(batch_t *b, int status) {
  waiter_t *w = b->w;
  size_t i, nw = b->nw, wcap = b->wcap;

  b->w = NULL;
  b->nw = b->wcap = 0;
  for (i = 0; i < nw; i++)
    w[i].cb(w[i].arg, w[i].after_ops ? status : 0);
  if (b->w == NULL) { /* keep the array for next time */
    b->w = w;
    b->wcap = wcap;
  } else {
    free(w);
  }
}

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

static void count(chat__committer_t *c, const batch_t *b) {
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
static void finish_batch(chat__committer_t *c, batch_t *b) {
  int status = b->status;

  count(c, b);
  if (status != 0 && !c->freeing) {
    if (c->fail_cb != NULL && b->nfailed > 0)
      c->fail_cb(c->fail_arg, b->ops, b->nfailed, status);
    c->backoff = true;
    uv_timer_start(&c->retry, on_retry, CHAT_COMMITTER_RETRY_MS, 0);
  }
  reset_batch(b);
  fire_waiters(b, status);
  fire_reads(b);
}

static void finish_flying(chat__committer_t *c) {
  batch_t *b = c->flying;

  c->flying = NULL;
  finish_batch(c, b);
}

static void work_cb(chat__worker_job_t *job) {
  chat__committer_t *c = job->data;

  run_batch(c->store, c->flying);
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
    batch_t *b = c->flying;
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
    trim_batch(&c->b[0], IDLE_BUF_BYTES, IDLE_RECS);
    trim_batch(&c->b[1], IDLE_BUF_BYTES, IDLE_RECS);
    if (!c->freeing)
      uv_timer_start(&c->trim_timer, on_trim_timer, CHAT_COMMITTER_TRIM_MS, 0);
  }
  maybe_release(c);
}

static void on_check(uv_check_t *h) {
  chat__committer_t *c = h->data;
  batch_t *b = c->open;

  disarm(c);
  if (c->work_busy)
    return; /* after_work_cb re-arms */
  if (b->n == 0 && b->nrd == 0) { /* only callbacks, nothing pending */
    fire_waiters(b, 0);
    return;
  }
  submit(c);
}

/* Hands the open batch to the store thread; the other becomes the open
 * one. */
static void submit(chat__committer_t *c) {
  batch_t *b = c->open;
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

static bool add_len(size_t *total, const char *s) {
  size_t n;

  if (s == NULL)
    return true;
  n = strlen(s) + 1;
  if (n > SIZE_MAX - *total)
    return false;
  *total += n;
  return true;
}

int chat__committer_add(chat__committer_t *c, const chat__store_op_t *op) {
  batch_t *b = c->open;
  const chat__stored_msg_t *m = &op->msg;
  bool is_msg =
      op->kind == CHAT_STORE_PUT_MSG || op->kind == CHAT_STORE_DEL_MSG;
  bool put = op->kind == CHAT_STORE_PUT_MSG;
  bool stamped = put || op->kind == CHAT_STORE_ADD_TOKEN ||
                 op->kind == CHAT_STORE_TOUCH_TOKEN;
  size_t need = 0;
  rec_t *r;

  if (chat__store_op_check(op) != 0)
    return -EINVAL;
  /* Copy only what the kind uses: a DEL_MSG needs no body. */
  if (!is_msg && !(add_len(&need, op->a) && add_len(&need, op->b)))
    return -ENOMEM;
  if (is_msg && !add_len(&need, m->to))
    return -ENOMEM;
  if (put && !(add_len(&need, m->from) && add_len(&need, m->group) &&
               add_len(&need, m->msg_id)))
    return -ENOMEM;
  if (put && m->body_len > SIZE_MAX - need)
    return -ENOMEM;
  if (put)
    need += m->body_len;
  if (need > SIZE_MAX - b->len ||
      grow((void **)&b->buf, &b->bufcap, b->len + need, 1, 4096) != 0 ||
      grow((void **)&b->recs, &b->cap, b->n + 1, sizeof(*b->recs), 64) != 0)
    return -ENOMEM;

  r = &b->recs[b->n++];
  r->kind = op->kind;
  r->a = is_msg ? NO_STR : put_str(b, op->a);
  r->b = is_msg ? NO_STR : put_str(b, op->b);
  r->to = is_msg ? put_str(b, m->to) : NO_STR;
  r->from = put ? put_str(b, m->from) : NO_STR;
  r->group = put ? put_str(b, m->group) : NO_STR;
  r->msg_id = put ? put_str(b, m->msg_id) : NO_STR;
  r->body = put ? put_bytes(b, m->body_len ? m->body : "", m->body_len,
                            false)
                : NO_STR;
  r->body_len = put ? m->body_len : 0;
  r->seq = is_msg ? m->seq : 0;
  r->ts = stamped ? m->ts : 0;
  r->offline = put ? m->offline : 0;
  arm(c);
  return 0;
}

static int add_waiter(batch_t *b, chat__committer_cb cb, void *arg,
                      bool after_ops) {
  if (grow((void **)&b->w, &b->wcap, b->nw + 1, sizeof(*b->w), 16) != 0)
    return -ENOMEM;
  b->w[b->nw].cb = cb;
  b->w[b->nw].arg = arg;
  b->w[b->nw].after_ops = after_ops;
  b->nw++;
  return 0;
}

int chat__committer_then(chat__committer_t *c, chat__committer_cb cb,
                         void *arg) {
  int r;

  /* Everything added so far is in the open batch if it has ops, else in
   * the batch in flight, else nowhere (already committed). */
  if (c->open->n > 0)
    return add_waiter(c->open, cb, arg, true);
  if (c->flying != NULL)
    return add_waiter(c->flying, cb, arg, true);
  r = add_waiter(c->open, cb, arg, false);
  if (r == 0)
    arm(c);
  return r;
}

int chat__committer_read(chat__committer_t *c, chat__committer_read_fn fn,
                         chat__committer_cb done, void *arg) {
  batch_t *b = c->open;

  /* The open batch runs after the one in flight, and its reads after its
   * ops: so the read sees everything added before it. */
  if (grow((void **)&b->rd, &b->rdcap, b->nrd + 1, sizeof(*b->rd), 16) != 0)
    return -ENOMEM;
  b->rd[b->nrd].fn = fn;
  b->rd[b->nrd].done = done;
  b->rd[b->nrd].arg = arg;
  b->rd[b->nrd].status = 0;
  b->nrd++;
  arm(c);
  return 0;
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
    batch_t *b = c->flying;

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
    batch_t *b = c->open;
    int status = 0;

    if (b->n > 0 || b->nrd > 0) {
      bool had_ops = b->n > 0;
      run_batch(c->store, b);
      if (had_ops) {
        count(c, b);
        status = b->status;
        if (first_err == 0)
          first_err = status;
      }
    }
    reset_batch(b);
    fire_waiters(b, status);
    fire_reads(b);
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
  free_batch(&c->b[0]);
  free_batch(&c->b[1]);
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
