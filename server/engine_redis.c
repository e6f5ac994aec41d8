/* engine_redis.c -- the engine (engine.h) on Redis: the first step of
 * cluster mode (issue 14), a node whose store is a Redis that other nodes
 * may share. Keys and commands: redis_cmds.c; replies: redis_reply.c; the
 * connection: redis_link.c; reads: redis_reads.c; start-up checks:
 * redis_conn.c.
 *
 * Requests collect in the open batch during a loop turn. At the end of the
 * turn (a check handle, with an idle one so the loop does not block first,
 * as the committer does) the batch goes out pipelined on the one
 * connection: MULTI, the ops' commands, EXEC, then each read. Redis runs a
 * connection's commands in order, so a read sees every write added before
 * it; with appendfsync always Redis writes the EXEC to its append-only
 * file and fsyncs before it answers, so one fsync covers every `stored`
 * message of the turn, like the SQLite committer's group commit. One batch
 * is in flight at a time: a failed batch's ops are handed back (on_fail)
 * before anything added after them is sent, and the next waits
 * CHAT__REDIS_RETRY_MS. Callbacks run from the check handle once every
 * reply of the batch is in -- waiters first, then reads, each in request
 * order -- never from inside a call nor from inside hiredis.
 *
 * While Redis is unreachable a batch fails at once with -EIO (its reads
 * too), and redis_link.c reconnects with backoff; a batch held while the
 * connection is being made waits at most CHAT__REDIS_CONNECT_MS.
 *
 * A batch that fails with -ENOSPC (Redis's maxmemory: EXEC refused whole)
 * has its DEL_MSG ops sent again alone, so acks free memory, and its reads
 * asked again after them, as the committer retries deletes on a full disk.
 *
 * What "failed" means differs from SQLite in one way: a batch whose
 * connection dropped after its EXEC was sent may have been applied. Its ops
 * are still reported failed; every op is idempotent, so adding them again
 * is safe, and a send answered `internal` that did land is a repeat that
 * recipients drop by (from, msg_id).
 */
#include "redis_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"

#define RE(x) ((chat__redis_engine_t *)(void *)(x))
#define CRE(x) ((const chat__redis_engine_t *)(const void *)(x))

static void on_check(uv_check_t *h);
static void on_idle(uv_idle_t *h) { (void)h; }

void chat__redis_arm(chat__redis_engine_t *e) {
  if (e->freeing)
    return;
  uv_idle_start(&e->idle, on_idle);
  uv_check_start(&e->check, on_check);
}

static void disarm(chat__redis_engine_t *e) {
  uv_idle_stop(&e->idle);
  uv_check_stop(&e->check);
}

int chat__redis_grow(void **p, size_t *cap, size_t need, size_t size) {
  size_t ncap = *cap ? *cap : 16;
  if (need <= *cap)
    return 0;
  while (ncap < need)
    ncap *= 2;
  void *np = realloc(*p, ncap * size);
  if (np == NULL)
    return -ENOMEM;
  *p = np;
  *cap = ncap;
  return 0;
}

static int has_work(const chat__redis_batch_t *b) {
  return b->n > 0 || b->nw > 0 || b->nrd > 0;
}

/* ---- batches ------------------------------------------------------------- */

static void on_exec(redisAsyncContext *ac, void *reply, void *priv) {
  chat__redis_batch_t *b = priv;
  char why[256] = "";
  int st = chat__redis_exec_status(reply, why, sizeof(why));
  (void)ac;
  if (b->round == 1 && b->inject != 0 && reply != NULL)
    st = b->inject;
  else if (st != 0 && reply != NULL)
    CHAT_ERROR("Redis refused a batch of %zu changes: %s", b->n, why);
  if (b->round == 1)
    b->status = st;
  else
    b->del_status = st;
  chat__redis_reply_done(b);
}

/* Sends the batch's ops (all, or only its DEL_MSGs in round 2) as one
 * MULTI/EXEC, then its reads. Anything that cannot be sent fails the
 * batch and drops the connection (a MULTI half sent must not stay). */
static void send_batch(chat__redis_engine_t *e, chat__redis_batch_t *b) {
  chat__rcmd_t c[2];
  int r = 0, dels_only = b->round == 2;
  size_t nsend = 0;

  b->outstanding = 0;
  for (size_t i = 0; i < b->n; i++)
    if (!dels_only || b->ops[i].op.kind == CHAT_STORE_DEL_MSG)
      nsend++;
  if (nsend > 0) {
    memset(c, 0, sizeof(c));
    c[0].argc = 1;
    c[0].argv[0] = "MULTI";
    c[0].len[0] = 5;
    r = chat__redis_link_send(e, &c[0], NULL, NULL);
    for (size_t i = 0; r == 0 && i < b->n; i++) {
      if (dels_only && b->ops[i].op.kind != CHAT_STORE_DEL_MSG)
        continue;
      int k = chat__redis_op_cmds(&b->ops[i].op, e->shas, c);
      for (int j = 0; j < k; j++) {
        if (r < 0)
          chat__rcmd_free(&c[j]);
        else
          r = chat__redis_link_send(e, &c[j], NULL, NULL);
      }
    }
    if (r == 0 && b->inject != 0 && !dels_only) {
      memset(c, 0, sizeof(c)); /* GET without a key: EXEC aborts */
      c[0].argc = 1;
      c[0].argv[0] = "GET";
      c[0].len[0] = 3;
      r = chat__redis_link_send(e, &c[0], NULL, NULL);
    }
    if (r == 0) {
      memset(c, 0, sizeof(c));
      c[0].argc = 1;
      c[0].argv[0] = "EXEC";
      c[0].len[0] = 4;
      b->outstanding++;
      if ((r = chat__redis_link_send(e, &c[0], on_exec, b)) < 0)
        b->outstanding--;
    }
    if (r < 0) {
      if (dels_only)
        b->del_status = r;
      else
        b->status = r;
    }
  }
  for (size_t i = 0; i < b->nrd; i++) {
    chat__redis_rd_t *rd = b->rd[i];
    if (r == 0) {
      b->outstanding++;
      if ((r = chat__redis_send_read(e, rd)) == 0)
        continue;
      b->outstanding--;
    }
    rd->status = r;
  }
  if (r < 0)
    chat__redis_link_kill(e, "cannot send a batch");
  if (b->outstanding > 0) {
    chat__redis_link_expect(e, 1);
    return;
  }
  b->done = 1; /* nothing was sent that needs an answer */
  chat__redis_arm(e);
}

void chat__redis_reply_done(chat__redis_batch_t *b) {
  chat__redis_engine_t *e = b->e;
  if (--b->outstanding > 0)
    return;
  chat__redis_link_expect(e, 0);
  if (b->round == 1 && b->status == -ENOSPC && e->ac != NULL) {
    for (size_t i = 0; i < b->n; i++)
      if (b->ops[i].op.kind == CHAT_STORE_DEL_MSG) {
        b->round = 2; /* deletes alone, then the reads again */
        send_batch(e, b);
        return;
      }
  }
  b->done = 1;
  chat__redis_arm(e);
}

static void fire_waiters(chat__redis_batch_t *b, int status) {
  chat__redis_waiter_t *w = b->w;
  size_t nw = b->nw, wcap = b->wcap;
  /* taken out first: a callback may add waiters */
  b->w = NULL;
  b->nw = b->wcap = 0;
  for (size_t i = 0; i < nw; i++)
    w[i].cb(w[i].arg, w[i].after_ops ? status : 0);
  if (b->w == NULL) {
    b->w = w;
    b->wcap = wcap;
  } else {
    free(w);
  }
}

static void on_retry(uv_timer_t *t) {
  chat__redis_engine_t *e = t->data;
  e->backoff = 0;
  if (has_work(e->open))
    chat__redis_arm(e);
}

/* A batch with every reply in (or failed without a connection): its
 * failed ops to on_fail, then its waiters, then its reads. */
static void finish(chat__redis_engine_t *e, chat__redis_batch_t *b) {
  int status = b->status;
  size_t nfailed = status != 0 ? b->n : 0;

  if (e->flying == b)
    e->flying = NULL;
  if (status != 0 && b->round == 2 && b->del_status == 0) {
    /* the deletes applied: the others, in order, are what failed */
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
      if (b->ops[i].op.kind == CHAT_STORE_DEL_MSG) {
        chat__mem_op_free(&b->ops[i]);
        continue;
      }
      b->ops[k++] = b->ops[i];
    }
    nfailed = b->n = k;
  }
  if (status != 0 && !e->freeing) {
    chat__store_op_t *v = nfailed > 0 ? calloc(nfailed, sizeof(*v)) : NULL;
    for (size_t i = 0; v != NULL && i < nfailed; i++)
      v[i] = b->ops[i].op;
    if (v != NULL && e->on_fail != NULL && !e->flushing)
      e->on_fail(e->on_fail_arg, v, nfailed, status);
    free(v);
  }
  /* a pause after a failure, so ops added back (or reads asked again)
   * do not spin against a Redis that keeps failing */
  if ((status != 0 || b->down) && !e->freeing && !e->flushing) {
    e->backoff = 1;
    uv_timer_start(&e->retry, on_retry, CHAT__REDIS_RETRY_MS, 0);
  }
  for (size_t i = 0; i < b->n; i++)
    chat__mem_op_free(&b->ops[i]);
  b->n = 0;
  b->status = 0;
  b->round = 0;
  b->del_status = 0;
  b->inject = 0;
  b->down = 0;
  b->done = 0;
  fire_waiters(b, status);
  chat__redis_rd_t **rd = b->rd;
  size_t nrd = b->nrd;
  b->rd = NULL;
  b->nrd = b->rdcap = 0;
  for (size_t i = 0; i < nrd; i++) {
    chat__redis_rd_fire(rd[i]);
    chat__redis_rd_free(rd[i]);
  }
  free(rd);
}

/* The open batch goes out (or, with Redis down, fails at once). */
static void launch(chat__redis_engine_t *e) {
  chat__redis_batch_t *b = e->open;
  e->open = b == &e->b[0] ? &e->b[1] : &e->b[0];
  e->flying = b;
  b->round = 1;
  b->status = 0;
  if (b->n > 0 && e->fail_n > 0) {
    e->fail_n--;
    b->inject = e->fail_err;
  }
  if (e->state == CHAT__LINK_DOWN) {
    b->status = b->n > 0 ? -EIO : 0;
    for (size_t i = 0; i < b->nrd; i++)
      b->rd[i]->status = -EIO;
    b->down = 1;
    b->done = 1;
    return;
  }
  send_batch(e, b);
}

static void on_check(uv_check_t *h) {
  chat__redis_engine_t *e = h->data;
  disarm(e);
  if (e->flying != NULL && e->flying->done)
    finish(e, e->flying);
  if (e->flying != NULL || e->backoff || e->freeing)
    return; /* its replies, the retry timer, or nothing: each re-arms */
  if (e->open->n == 0 && e->open->nrd == 0) {
    if (e->open->nw > 0)
      fire_waiters(e->open, 0); /* nothing pending */
    return;
  }
  if (e->state == CHAT__LINK_CONNECTING)
    return; /* the handshake's end (or failure) re-arms */
  launch(e);
  if (e->flying != NULL && e->flying->done)
    finish(e, e->flying); /* failed at once */
}

/* ---- the engine type ----------------------------------------------------- */

static int re_add(chat__engine_t *ce, const chat__store_op_t *op) {
  chat__redis_engine_t *e = RE(ce);
  chat__redis_batch_t *b = e->open;
  if (chat__store_op_check(op) != 0)
    return -EINVAL;
  if (chat__redis_grow((void **)&b->ops, &b->cap, b->n + 1, sizeof(*b->ops)) !=
          0 ||
      chat__mem_op_copy(&b->ops[b->n], op) != 0)
    return -ENOMEM;
  b->n++;
  chat__redis_arm(e);
  return 0;
}

static int add_waiter(chat__redis_batch_t *b, chat__engine_done_cb cb,
                      void *arg, int after_ops) {
  if (chat__redis_grow((void **)&b->w, &b->wcap, b->nw + 1, sizeof(*b->w)) != 0)
    return -ENOMEM;
  b->w[b->nw++] = (chat__redis_waiter_t){cb, arg, after_ops};
  return 0;
}

static int re_then(chat__engine_t *ce, chat__engine_done_cb cb, void *arg) {
  chat__redis_engine_t *e = RE(ce);
  /* Everything added so far is in the open batch if it has ops, else in
   * the batch in flight, else applied already. */
  if (e->open->n > 0)
    return add_waiter(e->open, cb, arg, 1);
  if (e->flying != NULL)
    return add_waiter(e->flying, cb, arg, 1);
  int r = add_waiter(e->open, cb, arg, 0);
  if (r == 0)
    chat__redis_arm(e);
  return r;
}

static size_t re_pending(const chat__engine_t *ce) {
  const chat__redis_engine_t *e = CRE(ce);
  return e->open->n + (e->flying != NULL ? e->flying->n : 0);
}

static void re_on_fail(chat__engine_t *ce, chat__engine_fail_cb cb, void *arg) {
  RE(ce)->on_fail = cb;
  RE(ce)->on_fail_arg = arg;
}

static int re_flushing(const chat__engine_t *ce) {
  return CRE(ce)->flushing || CRE(ce)->freeing;
}

/* On the blocking connection start-up made (opened again if it was
 * closed or broke): the loop's connection may not be up yet. */
static int re_max_seq(chat__engine_t *ce, uint64_t *seq) {
  chat__redis_engine_t *e = RE(ce);
  char why[256];
  for (int attempt = 0; attempt < 2; attempt++) {
    if (e->sync == NULL &&
        chat__redis_sync_open(&e->url, 0, 1, e->shas, &e->sync, why,
                              sizeof(why)) != 0) {
      CHAT_ERROR("%s", why);
      return -EIO;
    }
    if (chat__redis_sync_seq_base(e->sync, seq) == 0)
      return 0;
    redisFree(e->sync);
    e->sync = NULL;
  }
  return -EIO;
}

/* Blocks until everything added so far is applied and every callback has
 * run, including what callbacks add. It may run inside a loop callback
 * (chat-server's stop handler calls it), where uv_run must not be called
 * again; so instead of the loop it drives the hiredis connection itself:
 * poll() on its socket, then redisAsyncHandleWrite/Read as the adapter
 * would. Replies land in the same callbacks; this loop finishes batches
 * as on_check does. The adapter's poll handle stays registered meanwhile
 * and later finds nothing to read, which hiredis takes in its stride. A
 * Redis that does not answer within CHAT__REDIS_FLUSH_MS fails the rest
 * with -EIO; one that is down gets one connection attempt. */
static int re_flush_sync(chat__engine_t *ce) {
  chat__redis_engine_t *e = RE(ce);
  int outer = e->flushing, first = 0, tried = 0;
  uint64_t deadline = uv_hrtime() / 1000000 + CHAT__REDIS_FLUSH_MS;

  e->flushing = 1;
  for (;;) {
    chat__redis_batch_t *b = e->flying;
    if (b != NULL && b->done) {
      if (b->n > 0 && b->status != 0 && first == 0)
        first = b->status;
      finish(e, b);
      continue;
    }
    if (b == NULL) {
      if (!has_work(e->open))
        break;
      if (e->open->n == 0 && e->open->nrd == 0) {
        fire_waiters(e->open, 0);
        continue;
      }
      if (e->state == CHAT__LINK_DOWN && !tried) {
        tried = 1;
        chat__redis_link_start(e);
        continue;
      }
      if (e->state != CHAT__LINK_CONNECTING) {
        e->backoff = 0;
        uv_timer_stop(&e->retry);
        launch(e);
        continue;
      }
    }
    if (chat__redis_link_drive(e, deadline) != 0)
      chat__redis_link_kill(e, "no answer within the final flush's time");
  }
  e->flushing = outer;
  return first;
}

static void on_handle_closed(uv_handle_t *h) {
  chat__redis_engine_t *e = h->data;
  if (--e->handles == 0)
    free(e);
}

static void batch_free(chat__redis_batch_t *b) {
  for (size_t i = 0; i < b->n; i++)
    chat__mem_op_free(&b->ops[i]);
  for (size_t i = 0; i < b->nrd; i++)
    chat__redis_rd_free(b->rd[i]);
  free(b->ops);
  free(b->w);
  free(b->rd);
}

/* Flushes, then frees: the memory goes once the handles have closed, so
 * the loop must run once more (engine.h). */
static void re_free(chat__engine_t *ce) {
  chat__redis_engine_t *e = RE(ce);
  re_flush_sync(ce);
  e->freeing = 1;
  chat__redis_link_close(e);
  redisFree(e->sync);
  e->sync = NULL;
  batch_free(&e->b[0]);
  batch_free(&e->b[1]);
  uv_close((uv_handle_t *)&e->idle, on_handle_closed);
  uv_close((uv_handle_t *)&e->check, on_handle_closed);
  uv_close((uv_handle_t *)&e->retry, on_handle_closed);
  uv_close((uv_handle_t *)&e->reconnect, on_handle_closed);
  uv_close((uv_handle_t *)&e->deadline, on_handle_closed);
}

static const chat__engine_type_t redis_type = {
    .name = "redis",
    .add = re_add,
    .then = re_then,
    .pending = re_pending,
    .on_fail = re_on_fail,
    .flushing = re_flushing,
    .load_user = chat__redis_load_user,
    .load_group = chat__redis_load_group,
    .load_held = chat__redis_load_held,
    .find_sent = chat__redis_find_sent,
    .max_seq = re_max_seq,
    .flush_sync = re_flush_sync,
    .free = re_free,
};

int chat__engine_redis_new(uv_loop_t *loop, const char *url, int unsafe,
                           chat__engine_t **out, char *errbuf, size_t errlen) {
  chat__redis_engine_t *e = calloc(1, sizeof(*e));
  int r;

  *out = NULL;
  if (e == NULL)
    return -ENOMEM;
  if ((r = chat__redis_url_parse(url, &e->url, errbuf, errlen)) < 0 ||
      (r = chat__redis_sync_open(&e->url, 1, unsafe, e->shas, &e->sync, errbuf,
                                 errlen)) < 0) {
    free(e);
    return -EIO;
  }
  e->base.type = &redis_type;
  e->loop = loop;
  e->unsafe = unsafe;
  snprintf(e->where, sizeof(e->where), "%s:%d/%d", e->url.host, e->url.port,
           e->url.db);
  e->open = &e->b[0];
  e->b[0].e = e->b[1].e = e;
  e->reconnect_ms = CHAT__REDIS_RECONNECT_MIN_MS;
  uv_idle_init(loop, &e->idle);
  uv_check_init(loop, &e->check);
  uv_timer_init(loop, &e->retry);
  uv_timer_init(loop, &e->reconnect);
  uv_timer_init(loop, &e->deadline);
  e->idle.data = e->check.data = e->retry.data = e->reconnect.data =
      e->deadline.data = e;
  e->handles = 5;
  uv_unref((uv_handle_t *)&e->reconnect); /* a stop does not wait for it */
  chat__redis_link_start(e);
  *out = &e->base;
  return 0;
}

void chat__engine_redis_fail(chat__engine_t *ce, int n, int err) {
  RE(ce)->fail_n = n;
  RE(ce)->fail_err = err > 0 ? -err : err;
}
