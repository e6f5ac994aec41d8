/* engine_mem.c -- the engine (engine.h) in memory, for unit tests and
 * fuzzers: the SQLite engine's semantics (store_sqlite.c's SQL is the
 * reference) with nothing on disk. The tables and their reads are in
 * engine_mem_store.c; this file is the asynchronous part.
 *
 * Requests (ops, waiters, reads) queue in one FIFO. Once per loop turn a
 * uv_idle applies every op queued so far as one batch, which takes effect
 * all or nothing, then runs the waiters and reads queued before the batch,
 * in request order. What callbacks add waits for the next turn, as with
 * the committer.
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_mem_store.h"

typedef enum { Q_OP, Q_THEN, Q_USER, Q_GROUP, Q_HELD, Q_SENT } q_kind_t;

typedef struct item {
  struct item *next;
  q_kind_t kind;
  int ready;     /* its batch was applied; status is known */
  int after_ops; /* Q_THEN: ops were queued before it in its batch */
  int status;
  chat__mem_op_t op; /* Q_OP */
  void (*cb)(void);  /* cast back by kind */
  void *arg;
  char *x, *y; /* name / rcpt / from; token hash / msg_id */
  int full;
  uint64_t after;
  uint32_t limit;
} item_t;

typedef struct mem_engine {
  chat__engine_t base;
  uv_idle_t idle;
  item_t *head, *tail;
  size_t nops; /* Q_OP items queued */
  chat__memstore_t *store;
  chat__engine_fail_cb on_fail;
  void *on_fail_arg;
  int fail_n, fail_err;
  int flushing;
  int flush_status;
} mem_engine_t;

#define ME(e) ((mem_engine_t *)(void *)(e))

/* ---- the queue ---------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

static item_t *push(mem_engine_t *me, q_kind_t kind, void (*cb)(void),
                    void *arg) {
  item_t *it = calloc(1, sizeof(*it));
  if (it == NULL)
    return NULL;
  it->kind = kind;
  it->cb = cb;
  it->arg = arg;
  if (me->tail != NULL)
    me->tail->next = it;
  else
    me->head = it;
  me->tail = it;
  if (kind == Q_OP)
    me->nops++;
  it->after_ops = me->nops > 0;
  uv_idle_start(&me->idle, on_idle);
  return it;
}

static void item_free(item_t *it) {
  if (it->kind == Q_OP)
    chat__mem_op_free(&it->op);
  free(it->x);
  free(it->y);
  free(it);
}

/* Takes every queued op out as one batch, applies it, and marks every
 * waiter and read queued so far ready with the batch's status. */
static void run_batch(mem_engine_t *me) {
  item_t **pp = &me->head, *it, *ops = NULL, **opt = &ops;
  size_t n = 0, nfail = 0;
  int err;

  me->tail = NULL;
  while ((it = *pp) != NULL) {
    if (it->kind == Q_OP) {
      *pp = it->next;
      it->next = NULL;
      *opt = it;
      opt = &it->next;
      n++;
    } else {
      me->tail = it;
      pp = &it->next;
    }
  }
  me->nops = 0;
  chat__mem_op_t **v = calloc(n ? n : 1, sizeof(*v));
  chat__store_op_t *fv = calloc(n ? n : 1, sizeof(*fv));
  if (v == NULL || fv == NULL) {
    err = -ENOMEM;
  } else {
    size_t i = 0;
    for (it = ops; it != NULL; it = it->next)
      v[i++] = &it->op;
    int fail = 0;
    if (n > 0 && me->fail_n > 0) {
      me->fail_n--;
      fail = me->fail_err;
    }
    err = chat__memstore_apply(me->store, v, n, fail, &nfail);
    for (i = 0; i < nfail; i++)
      fv[i] = v[i]->op;
  }
  /* A waiter learns the fate of the ops added before it; one with none
   * before it in this batch, and every read, sees 0 (a read of what did
   * take effect), as with the committer. */
  for (it = me->head; it != NULL; it = it->next) {
    if (!it->ready) {
      it->ready = 1;
      it->status = it->kind == Q_THEN && it->after_ops ? err : 0;
    }
  }
  if (err != 0 && me->flush_status == 0)
    me->flush_status = err;
  /* like the committer: not for a batch that a flush commits itself */
  if (err != 0 && nfail > 0 && fv != NULL && me->on_fail != NULL &&
      !me->flushing)
    me->on_fail(me->on_fail_arg, fv, nfail, err);
  free(v);
  free(fv);
  while ((it = ops) != NULL) {
    ops = it->next;
    item_free(it);
  }
}

/* A read, answered from the tables as they are now; the result is freed
 * after the callback. */
static void call_read(mem_engine_t *me, item_t *it) {
  chat__memstore_t *s = me->store;
  chat__store_user_t *u = NULL;
  chat__store_group_t *g = NULL;
  chat__stored_msg_t *m = NULL;
  size_t n = 0;
  int more = 0, r;

  switch (it->kind) {
  case Q_USER:
    r = chat__memstore_get_user(s, it->x, it->full, it->y, &u);
    ((chat__engine_user_cb)it->cb)(it->arg, r, u);
    break;
  case Q_GROUP:
    r = chat__memstore_get_group(s, it->x, &g);
    ((chat__engine_group_cb)it->cb)(it->arg, r, g);
    break;
  case Q_HELD:
    r = chat__memstore_get_held(s, it->x, it->after, it->limit, &m, &n, &more);
    ((chat__engine_held_cb)it->cb)(it->arg, r, m, n, more);
    break;
  case Q_SENT:
    r = chat__memstore_find_sent(s, it->x, it->y, &m);
    ((chat__engine_sent_cb)it->cb)(it->arg, r, m);
    break;
  default:
    break;
  }
  chat__store_user_free(u);
  chat__store_group_free(g);
  free(m);
}

/* Runs ready items from the head, one at a time, so a callback that adds
 * requests (or flushes) finds the queue consistent. */
static void run_ready(mem_engine_t *me) {
  item_t *it;
  while ((it = me->head) != NULL && it->ready) {
    me->head = it->next;
    if (me->head == NULL)
      me->tail = NULL;
    switch (it->kind) {
    case Q_THEN:
      ((chat__engine_done_cb)it->cb)(it->arg, it->status);
      break;
    case Q_USER:
    case Q_GROUP:
    case Q_HELD:
    case Q_SENT:
      call_read(me, it);
      break;
    case Q_OP:
      break; /* never ready: run_batch takes ops out */
    }
    item_free(it);
  }
}

static void on_idle(uv_idle_t *h) {
  mem_engine_t *me = h->data;
  run_ready(me);
  if (me->head != NULL) {
    run_batch(me);
    run_ready(me);
  }
  if (me->head == NULL)
    uv_idle_stop(
        &me->idle); /* an idle handle spins the loop: only when needed */
}

/* ---- the engine type ---------------------------------------------------- */

static int queue_read(chat__engine_t *e, q_kind_t kind, const char *x,
                      const char *y, void (*cb)(void), void *arg,
                      item_t **out) {
  char *xc = strdup(x), *yc = y != NULL ? strdup(y) : NULL;
  item_t *it = NULL;
  if (xc == NULL || (y != NULL && yc == NULL) ||
      (it = push(ME(e), kind, cb, arg)) == NULL) {
    free(xc);
    free(yc);
    return -ENOMEM;
  }
  it->x = xc;
  it->y = yc;
  if (out != NULL)
    *out = it;
  return 0;
}

static int mem_add(chat__engine_t *e, const chat__store_op_t *op) {
  chat__mem_op_t o;
  if (chat__store_op_check(op) != 0)
    return -EINVAL;
  if (chat__mem_op_copy(&o, op) != 0)
    return -ENOMEM;
  item_t *it = push(ME(e), Q_OP, NULL, NULL);
  if (it == NULL) {
    chat__mem_op_free(&o);
    return -ENOMEM;
  }
  it->op = o;
  return 0;
}

static int mem_then(chat__engine_t *e, chat__engine_done_cb cb, void *arg) {
  return push(ME(e), Q_THEN, (void (*)(void))cb, arg) != NULL ? 0 : -ENOMEM;
}

static size_t mem_pending(const chat__engine_t *e) {
  return ((const mem_engine_t *)(const void *)e)->nops;
}

static void mem_on_fail(chat__engine_t *e, chat__engine_fail_cb cb, void *arg) {
  ME(e)->on_fail = cb;
  ME(e)->on_fail_arg = arg;
}

static int mem_flushing(const chat__engine_t *e) {
  return ((const mem_engine_t *)(const void *)e)->flushing;
}

static int mem_load_user(chat__engine_t *e, const char *name, int full,
                         const char *token_hash, chat__engine_user_cb cb,
                         void *arg) {
  item_t *it;
  int r = queue_read(e, Q_USER, name, token_hash, (void (*)(void))cb, arg, &it);
  if (r == 0)
    it->full = full;
  return r;
}

static int mem_load_group(chat__engine_t *e, const char *name,
                          chat__engine_group_cb cb, void *arg) {
  return queue_read(e, Q_GROUP, name, NULL, (void (*)(void))cb, arg, NULL);
}

static int mem_load_held(chat__engine_t *e, const char *rcpt, uint64_t after,
                         uint32_t limit, chat__engine_held_cb cb, void *arg) {
  item_t *it;
  int r = queue_read(e, Q_HELD, rcpt, NULL, (void (*)(void))cb, arg, &it);
  if (r == 0) {
    it->after = after;
    it->limit = limit;
  }
  return r;
}

static int mem_find_sent(chat__engine_t *e, const char *from,
                         const char *msg_id, chat__engine_sent_cb cb,
                         void *arg) {
  return queue_read(e, Q_SENT, from, msg_id, (void (*)(void))cb, arg, NULL);
}

static int mem_max_seq(chat__engine_t *e, uint64_t *seq) {
  *seq = chat__memstore_max_seq(ME(e)->store);
  return 0;
}

/* Applies and calls back everything, including what callbacks add. */
static int mem_flush_sync(chat__engine_t *e) {
  mem_engine_t *me = ME(e);
  int outer = me->flushing, outer_status = me->flush_status;
  me->flushing = 1;
  me->flush_status = 0;
  run_ready(me);
  while (me->head != NULL) {
    run_batch(me);
    run_ready(me);
  }
  int r = me->flush_status;
  me->flushing = outer;
  me->flush_status = outer_status != 0 ? outer_status : r;
  uv_idle_stop(&me->idle);
  return r;
}

static void on_close(uv_handle_t *h) {
  free(h->data);
}

/* Flushes, then frees: the memory goes in the idle handle's close
 * callback, so the loop must run once more (engine.h). */
static void mem_free(chat__engine_t *e) {
  mem_engine_t *me = ME(e);
  mem_flush_sync(e);
  chat__memstore_free(me->store);
  me->store = NULL;
  uv_close((uv_handle_t *)&me->idle, on_close);
}

static const chat__engine_type_t mem_type = {
    .name = "mem",
    .add = mem_add,
    .then = mem_then,
    .pending = mem_pending,
    .on_fail = mem_on_fail,
    .flushing = mem_flushing,
    .load_user = mem_load_user,
    .load_group = mem_load_group,
    .load_held = mem_load_held,
    .find_sent = mem_find_sent,
    .max_seq = mem_max_seq,
    .flush_sync = mem_flush_sync,
    .free = mem_free,
};

int chat__engine_mem_new(uv_loop_t *loop, chat__engine_t **out) {
  mem_engine_t *me = calloc(1, sizeof(*me));
  *out = NULL;
  if (me == NULL)
    return -ENOMEM;
  if (chat__memstore_new(&me->store) != 0) {
    free(me);
    return -ENOMEM;
  }
  me->base.type = &mem_type;
  uv_idle_init(loop, &me->idle);
  me->idle.data = me;
  *out = &me->base;
  return 0;
}

void chat__engine_mem_fail(chat__engine_t *e, int n, int err) {
  ME(e)->fail_n = n;
  ME(e)->fail_err = err > 0 ? -err : err;
}
