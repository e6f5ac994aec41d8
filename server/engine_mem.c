/* engine_mem.c -- the engine (engine.h) in memory, for unit tests and
 * fuzzers: the SQLite engine's semantics (store_sqlite.c's SQL is the
 * reference) with nothing on disk. Small on purpose: tables are plain
 * arrays scanned in O(n).
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

/* A table row: users (name, pwhash, held), contacts (a < b), requests (src,
 * dst), members (grp, member), tokens (hash, user, used). Rows of requests
 * and members stay in the order added, as SQLite's ORDER BY id does. */
typedef struct row {
  char *a, *b;
  int64_t n;
} row_t;

typedef struct table {
  row_t *v;
  size_t len, cap;
} table_t;

/* An op with copies of its strings; a string moved into a table is NULL
 * here, so whatever is left is freed with the op. */
typedef struct own_op {
  chat_store_op_t op;
  char *a, *b, *to, *from, *group, *msg_id, *body;
} own_op_t;

typedef enum { Q_OP, Q_THEN, Q_USER, Q_GROUP, Q_HELD, Q_SENT } q_kind_t;

typedef struct item {
  struct item *next;
  q_kind_t kind;
  int ready; /* its batch was applied; status is known */
  int after_ops; /* Q_THEN: ops were queued before it in its batch */
  int status;
  own_op_t op;      /* Q_OP */
  void (*cb)(void); /* cast back by kind */
  void *arg;
  char *x, *y; /* name / rcpt / from; token hash / msg_id */
  int full;
  uint64_t after;
  uint32_t limit;
} item_t;

typedef struct mem_engine {
  chat_engine_t base;
  uv_idle_t idle;
  item_t *head, *tail;
  size_t nops; /* Q_OP items queued */
  table_t users, contacts, requests, members, tokens;
  own_op_t *msgs; /* PUT_MSG ops, by seq */
  size_t nmsgs, capmsgs;
  uint64_t max_seq;
  chat_engine_fail_cb on_fail;
  void *on_fail_arg;
  int fail_n, fail_err;
  int flushing;
  int flush_status;
} mem_engine_t;

#define ME(e) ((mem_engine_t *)(void *)(e))

/* ---- tables ------------------------------------------------------------- */

static row_t *find_row(const table_t *t, const char *a, const char *b) {
  for (size_t i = 0; i < t->len; i++)
    if (strcmp(t->v[i].a, a) == 0 && (b == NULL || strcmp(t->v[i].b, b) == 0))
      return &t->v[i];
  return NULL;
}

static int reserve(void **v, size_t *cap, size_t len, size_t more,
                   size_t size) {
  size_t need = len + more, ncap = *cap ? *cap : 8;
  if (need <= *cap)
    return 0;
  while (ncap < need)
    ncap *= 2;
  void *nv = realloc(*v, ncap * size);
  if (nv == NULL)
    return -ENOMEM;
  *v = nv;
  *cap = ncap;
  return 0;
}

/* Takes both strings (INSERT OR IGNORE: the caller checked first). */
static void insert_row(table_t *t, char **a, char **b, int64_t n) {
  row_t *r = &t->v[t->len++];
  r->a = *a;
  r->b = *b;
  r->n = n;
  *a = *b = NULL;
}

static void delete_row(table_t *t, row_t *r) {
  free(r->a);
  free(r->b);
  memmove(r, r + 1, (size_t)(t->v + t->len - (r + 1)) * sizeof(*r));
  t->len--;
}

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->len; i++) {
    free(t->v[i].a);
    free(t->v[i].b);
  }
  free(t->v);
}

static void own_op_free(own_op_t *o) {
  free(o->a);
  free(o->b);
  free(o->to);
  free(o->from);
  free(o->group);
  free(o->msg_id);
  free(o->body);
}

static char *dup_or_null(const char *s, int *bad) {
  char *d = s != NULL ? strdup(s) : NULL;
  if (s != NULL && d == NULL)
    *bad = 1;
  return d;
}

static int own_op_copy(own_op_t *o, const chat_store_op_t *op) {
  const chat_stored_msg_t *m = &op->msg;
  int bad = 0;
  memset(o, 0, sizeof(*o));
  o->op = *op;
  o->a = dup_or_null(op->a, &bad);
  o->b = dup_or_null(op->b, &bad);
  o->to = dup_or_null(m->to, &bad);
  o->from = dup_or_null(m->from, &bad);
  o->group = dup_or_null(m->group, &bad);
  o->msg_id = dup_or_null(m->msg_id, &bad);
  /* Never NULL, so an empty body reads back as "" (as SQLite's does). */
  if ((o->body = malloc(m->body_len + 1)) == NULL)
    bad = 1;
  else if (m->body_len > 0)
    memcpy(o->body, m->body, m->body_len);
  o->op.a = o->a;
  o->op.b = o->b;
  o->op.msg.to = o->to;
  o->op.msg.from = o->from;
  o->op.msg.group = o->group;
  o->op.msg.msg_id = o->msg_id;
  o->op.msg.body = o->body;
  if (bad) {
    own_op_free(o);
    return -ENOMEM;
  }
  return 0;
}

/* ---- applying a batch --------------------------------------------------- */

static table_t *table_of(mem_engine_t *me, chat_store_op_kind_t k) {
  switch (k) {
  case CHAT_STORE_ADD_USER:
    return &me->users;
  case CHAT_STORE_ADD_CONTACT:
    return &me->contacts;
  case CHAT_STORE_ADD_REQUEST:
    return &me->requests;
  case CHAT_STORE_ADD_MEMBER:
    return &me->members;
  case CHAT_STORE_ADD_TOKEN:
    return &me->tokens;
  default:
    return NULL; /* deletes and touches never grow a table */
  }
}

/* Room for every insert in the batch, so applying it cannot fail halfway. */
static int reserve_batch(mem_engine_t *me, own_op_t **ops, size_t n) {
  size_t grow[CHAT_STORE_DEL_TOKEN + 1] = {0};
  for (size_t i = 0; i < n; i++)
    grow[ops[i]->op.kind]++;
  for (int k = 0; k <= CHAT_STORE_DEL_TOKEN; k++) {
    table_t *t = table_of(me, (chat_store_op_kind_t)k);
    if (t != NULL && reserve((void **)&t->v, &t->cap, t->len, grow[k],
                             sizeof(row_t)) != 0)
      return -ENOMEM;
  }
  return reserve((void **)&me->msgs, &me->capmsgs, me->nmsgs,
                 grow[CHAT_STORE_PUT_MSG], sizeof(own_op_t));
}

static size_t msg_pos(const mem_engine_t *me, uint64_t seq) {
  size_t i = 0;
  while (i < me->nmsgs && me->msgs[i].op.msg.seq < seq)
    i++;
  return i;
}

/* The held count follows the triggers: it moves only for a user that
 * exists when the message comes or goes. */
static void bump_held(mem_engine_t *me, const char *rcpt, int d) {
  row_t *u = find_row(&me->users, rcpt, NULL);
  if (u != NULL)
    u->n += d;
}

static void put_msg(mem_engine_t *me, own_op_t *o) {
  uint64_t seq = o->op.msg.seq;
  size_t i = msg_pos(me, seq);
  if (seq > me->max_seq)
    me->max_seq = seq; /* meta.max_seq moves even for a kept message */
  if (i < me->nmsgs && me->msgs[i].op.msg.seq == seq)
    return; /* INSERT OR IGNORE keeps the stored one */
  memmove(&me->msgs[i + 1], &me->msgs[i],
          (me->nmsgs - i) * sizeof(*me->msgs));
  me->msgs[i] = *o;
  me->nmsgs++;
  memset(o, 0, sizeof(*o)); /* the strings moved */
  bump_held(me, me->msgs[i].op.msg.to, 1);
}

static void del_msg(mem_engine_t *me, const chat_stored_msg_t *m) {
  size_t i = msg_pos(me, m->seq);
  if (i == me->nmsgs || me->msgs[i].op.msg.seq != m->seq ||
      strcmp(me->msgs[i].op.msg.to, m->to) != 0)
    return;
  bump_held(me, m->to, -1);
  own_op_free(&me->msgs[i]);
  memmove(&me->msgs[i], &me->msgs[i + 1],
          (me->nmsgs - i - 1) * sizeof(*me->msgs));
  me->nmsgs--;
}

static void apply_op(mem_engine_t *me, own_op_t *o) {
  chat_store_op_kind_t k = o->op.kind;
  row_t *r;

  switch (k) {
  case CHAT_STORE_ADD_USER:
    if (find_row(&me->users, o->a, NULL) == NULL)
      insert_row(&me->users, &o->a, &o->b, 0);
    break;
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT: {
    /* an unordered pair, kept once with a < b */
    char **x = &o->a, **y = &o->b;
    if (strcmp(o->a, o->b) > 0) {
      x = &o->b;
      y = &o->a;
    }
    r = find_row(&me->contacts, *x, *y);
    if (k == CHAT_STORE_ADD_CONTACT && r == NULL)
      insert_row(&me->contacts, x, y, 0);
    else if (k == CHAT_STORE_DEL_CONTACT && r != NULL)
      delete_row(&me->contacts, r);
    break;
  }
  case CHAT_STORE_ADD_REQUEST:
  case CHAT_STORE_ADD_MEMBER:
    r = find_row(table_of(me, k), o->a, o->b);
    if (r == NULL)
      insert_row(table_of(me, k), &o->a, &o->b, 0);
    break;
  case CHAT_STORE_DEL_REQUEST:
  case CHAT_STORE_DEL_MEMBER: {
    table_t *t = k == CHAT_STORE_DEL_REQUEST ? &me->requests : &me->members;
    if ((r = find_row(t, o->a, o->b)) != NULL)
      delete_row(t, r); /* the last member gone ends the group */
    break;
  }
  case CHAT_STORE_PUT_MSG:
    put_msg(me, o);
    break;
  case CHAT_STORE_DEL_MSG:
    del_msg(me, &o->op.msg);
    break;
  case CHAT_STORE_ADD_TOKEN: /* INSERT OR REPLACE: a new owner and time */
    if ((r = find_row(&me->tokens, o->b, NULL)) != NULL)
      delete_row(&me->tokens, r);
    insert_row(&me->tokens, &o->b, &o->a, o->op.msg.ts);
    break;
  case CHAT_STORE_TOUCH_TOKEN:
    if ((r = find_row(&me->tokens, o->b, NULL)) != NULL &&
        o->op.msg.ts > r->n)
      r->n = o->op.msg.ts;
    break;
  case CHAT_STORE_DEL_TOKEN:
    if ((r = find_row(&me->tokens, o->b, NULL)) != NULL)
      delete_row(&me->tokens, r);
    break;
  }
}

/* Applies ops[0..n) as one batch: 0, or an error and nothing changed. With
 * an injected -ENOSPC the DEL_MSG ops still apply, as the committer retries
 * them alone; *nfail then counts the others, moved to the front. */
static int apply_batch(mem_engine_t *me, own_op_t **ops, size_t n,
                       size_t *nfail) {
  int err = 0;
  *nfail = n;
  if (n == 0)
    return 0;
  if (me->fail_n > 0) {
    me->fail_n--;
    err = me->fail_err;
  } else if ((err = reserve_batch(me, ops, n)) == 0) {
    for (size_t i = 0; i < n; i++)
      apply_op(me, ops[i]);
    *nfail = 0;
    return 0;
  }
  if (err == -ENOSPC) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (ops[i]->op.kind == CHAT_STORE_DEL_MSG)
        del_msg(me, &ops[i]->op.msg);
      else
        ops[k++] = ops[i];
    }
    *nfail = k;
  }
  return err;
}

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
    own_op_free(&it->op);
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
  own_op_t **v = calloc(n ? n : 1, sizeof(*v));
  chat_store_op_t *fv = calloc(n ? n : 1, sizeof(*fv));
  if (v == NULL || fv == NULL) {
    err = -ENOMEM;
  } else {
    size_t i = 0;
    for (it = ops; it != NULL; it = it->next)
      v[i++] = &it->op;
    err = apply_batch(me, v, n, &nfail);
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

static void call_user(mem_engine_t *me, item_t *it);
static void call_group(mem_engine_t *me, item_t *it);
static void call_held(mem_engine_t *me, item_t *it);
static void call_sent(mem_engine_t *me, item_t *it);

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
      ((chat_engine_done_cb)it->cb)(it->arg, it->status);
      break;
    case Q_USER:
      call_user(me, it);
      break;
    case Q_GROUP:
      call_group(me, it);
      break;
    case Q_HELD:
      call_held(me, it);
      break;
    case Q_SENT:
      call_sent(me, it);
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
    uv_idle_stop(&me->idle); /* an idle handle spins the loop: only when needed */
}

/* ---- reads: results built from the tables when their turn comes --------- */

/* The first (or, with second, the other) string of every row matching
 * key in column col, into a fresh vector. */
static int collect(const table_t *t, int col, const char *key, int other,
                   char ***out, uint32_t *n) {
  char **v = calloc(t->len ? t->len : 1, sizeof(*v));
  uint32_t k = 0;
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < t->len; i++) {
    const row_t *r = &t->v[i];
    const char *match = col == 0 ? r->a : r->b;
    const char *take = other ? (col == 0 ? r->b : r->a) : match;
    if (strcmp(match, key) != 0)
      continue;
    if ((v[k] = strdup(take)) == NULL) {
      while (k > 0)
        free(v[--k]);
      free(v);
      return -ENOMEM;
    }
    k++;
  }
  *out = v;
  *n = k;
  return 0;
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static int get_user(mem_engine_t *me, item_t *it, chat_store_user_t *u) {
  const row_t *r = find_row(&me->users, it->x, NULL);
  u->token_used = -1;
  if (r == NULL)
    return 0;
  u->exists = 1;
  u->held = r->n < 0 ? 0 : r->n > UINT32_MAX ? UINT32_MAX : (uint32_t)r->n;
  if ((u->pwhash = strdup(r->b)) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < me->nmsgs; i++) {
    const chat_stored_msg_t *m = &me->msgs[i].op.msg;
    if (m->group == NULL && strcmp(m->from, it->x) == 0 &&
        u->sent_held < UINT32_MAX)
      u->sent_held++;
  }
  if (it->y != NULL) {
    const row_t *t = find_row(&me->tokens, it->y, it->x);
    if (t != NULL)
      u->token_used = t->n < 0 ? -1 : t->n;
  }
  if (!it->full)
    return 0;
  /* contacts: b where a = name, and a where b = name, by name */
  char **c1, **c2;
  uint32_t n1, n2;
  if (collect(&me->contacts, 0, it->x, 1, &c1, &n1) != 0)
    return -ENOMEM;
  if (collect(&me->contacts, 1, it->x, 1, &c2, &n2) != 0) {
    u->contacts = c1;
    u->ncontacts = n1;
    return -ENOMEM;
  }
  char **c = realloc(c1, ((size_t)n1 + n2 + 1) * sizeof(*c));
  if (c == NULL) {
    u->contacts = c1;
    u->ncontacts = n1;
    for (uint32_t i = 0; i < n2; i++)
      free(c2[i]);
    free(c2);
    return -ENOMEM;
  }
  memcpy(c + n1, c2, n2 * sizeof(*c));
  free(c2);
  qsort(c, n1 + n2, sizeof(*c), cmp_str);
  u->contacts = c;
  u->ncontacts = n1 + n2;
  if (collect(&me->requests, 1, it->x, 1, &u->requests, &u->nrequests) != 0 ||
      collect(&me->members, 1, it->x, 1, &u->groups, &u->ngroups) != 0)
    return -ENOMEM;
  qsort(u->groups, u->ngroups, sizeof(*u->groups), cmp_str);
  return 0;
}

static void call_user(mem_engine_t *me, item_t *it) {
  chat_store_user_t *u = calloc(1, sizeof(*u));
  int r = it->status;
  if (r == 0)
    r = u == NULL ? -ENOMEM : get_user(me, it, u);
  ((chat_engine_user_cb)it->cb)(it->arg, r, r == 0 ? u : NULL);
  chat_store_user_free(u);
}

static void call_group(mem_engine_t *me, item_t *it) {
  chat_store_group_t *g = calloc(1, sizeof(*g));
  int r = it->status;
  if (r == 0)
    r = g == NULL ? -ENOMEM
                  : collect(&me->members, 0, it->x, 1, &g->members,
                            &g->nmembers);
  if (r == 0)
    g->exists = g->nmembers > 0; /* a group exists through its members */
  ((chat_engine_group_cb)it->cb)(it->arg, r, r == 0 ? g : NULL);
  chat_store_group_free(g);
}

/* Copies of the messages that match, so a callback that flushes or frees
 * the engine leaves them intact. */
static chat_stored_msg_t *copy_msgs(const chat_stored_msg_t *const *src,
                                    size_t n, own_op_t **own) {
  chat_stored_msg_t *v = calloc(n ? n : 1, sizeof(*v));
  *own = calloc(n ? n : 1, sizeof(**own));
  if (v == NULL || *own == NULL) {
    free(v);
    free(*own);
    *own = NULL;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    chat_store_op_t op = {.kind = CHAT_STORE_PUT_MSG, .msg = *src[i]};
    if (own_op_copy(&(*own)[i], &op) != 0) {
      while (i > 0)
        own_op_free(&(*own)[--i]);
      free(v);
      free(*own);
      *own = NULL;
      return NULL;
    }
    v[i] = (*own)[i].op.msg;
  }
  return v;
}

static void free_copies(chat_stored_msg_t *v, own_op_t *own, size_t n) {
  for (size_t i = 0; own != NULL && i < n; i++)
    own_op_free(&own[i]);
  free(own);
  free(v);
}

static void call_held(mem_engine_t *me, item_t *it) {
  const chat_stored_msg_t **pick = NULL;
  chat_stored_msg_t *v = NULL;
  own_op_t *own = NULL;
  uint32_t limit = it->limit ? it->limit : 1; /* as chat_store_get_held */
  size_t n = 0;
  int more = 0, r = it->status;

  if (r == 0 && (pick = calloc(limit, sizeof(*pick))) == NULL)
    r = -ENOMEM;
  for (size_t i = 0; r == 0 && i < me->nmsgs; i++) {
    const chat_stored_msg_t *m = &me->msgs[i].op.msg;
    if (m->seq <= it->after || strcmp(m->to, it->x) != 0)
      continue;
    if (n == limit) {
      more = 1;
      break;
    }
    pick[n++] = m;
  }
  if (r == 0 && (v = copy_msgs(pick, n, &own)) == NULL)
    r = -ENOMEM;
  ((chat_engine_held_cb)it->cb)(it->arg, r, r == 0 ? v : NULL,
                                r == 0 ? n : 0, r == 0 ? more : 0);
  free_copies(v, own, n);
  free(pick);
}

static void call_sent(mem_engine_t *me, item_t *it) {
  const chat_stored_msg_t *m = NULL;
  chat_stored_msg_t *v = NULL;
  own_op_t *own = NULL;
  int r = it->status;

  /* the lowest seq, as SQLite walks its (sender, msg_id) index */
  for (size_t i = 0; r == 0 && m == NULL && i < me->nmsgs; i++) {
    const chat_stored_msg_t *x = &me->msgs[i].op.msg;
    if (x->group == NULL && strcmp(x->from, it->x) == 0 &&
        strcmp(x->msg_id, it->y) == 0)
      m = x;
  }
  if (m != NULL && (v = copy_msgs(&m, 1, &own)) == NULL)
    r = -ENOMEM;
  ((chat_engine_sent_cb)it->cb)(it->arg, r, r == 0 ? v : NULL);
  free_copies(v, own, 1);
}

/* ---- the engine type ---------------------------------------------------- */

static int queue_read(chat_engine_t *e, q_kind_t kind, const char *x,
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

static int mem_add(chat_engine_t *e, const chat_store_op_t *op) {
  own_op_t o;
  if (chat_store_op_check(op) != 0)
    return -EINVAL;
  if (own_op_copy(&o, op) != 0)
    return -ENOMEM;
  item_t *it = push(ME(e), Q_OP, NULL, NULL);
  if (it == NULL) {
    own_op_free(&o);
    return -ENOMEM;
  }
  it->op = o;
  return 0;
}

static int mem_then(chat_engine_t *e, chat_engine_done_cb cb, void *arg) {
  return push(ME(e), Q_THEN, (void (*)(void))cb, arg) != NULL ? 0 : -ENOMEM;
}

static size_t mem_pending(const chat_engine_t *e) {
  return ((const mem_engine_t *)(const void *)e)->nops;
}

static void mem_on_fail(chat_engine_t *e, chat_engine_fail_cb cb, void *arg) {
  ME(e)->on_fail = cb;
  ME(e)->on_fail_arg = arg;
}

static int mem_flushing(const chat_engine_t *e) {
  return ((const mem_engine_t *)(const void *)e)->flushing;
}

static int mem_load_user(chat_engine_t *e, const char *name, int full,
                         const char *token_hash, chat_engine_user_cb cb,
                         void *arg) {
  item_t *it;
  int r = queue_read(e, Q_USER, name, token_hash, (void (*)(void))cb, arg, &it);
  if (r == 0)
    it->full = full;
  return r;
}

static int mem_load_group(chat_engine_t *e, const char *name,
                          chat_engine_group_cb cb, void *arg) {
  return queue_read(e, Q_GROUP, name, NULL, (void (*)(void))cb, arg, NULL);
}

static int mem_load_held(chat_engine_t *e, const char *rcpt, uint64_t after,
                         uint32_t limit, chat_engine_held_cb cb, void *arg) {
  item_t *it;
  int r = queue_read(e, Q_HELD, rcpt, NULL, (void (*)(void))cb, arg, &it);
  if (r == 0) {
    it->after = after;
    it->limit = limit;
  }
  return r;
}

static int mem_find_sent(chat_engine_t *e, const char *from,
                         const char *msg_id, chat_engine_sent_cb cb,
                         void *arg) {
  return queue_read(e, Q_SENT, from, msg_id, (void (*)(void))cb, arg, NULL);
}

static int mem_max_seq(chat_engine_t *e, uint64_t *seq) {
  *seq = ME(e)->max_seq;
  return 0;
}

/* Applies and calls back everything, including what callbacks add. */
static int mem_flush_sync(chat_engine_t *e) {
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
static void mem_free(chat_engine_t *e) {
  mem_engine_t *me = ME(e);
  mem_flush_sync(e);
  table_free(&me->users);
  table_free(&me->contacts);
  table_free(&me->requests);
  table_free(&me->members);
  table_free(&me->tokens);
  for (size_t i = 0; i < me->nmsgs; i++)
    own_op_free(&me->msgs[i]);
  free(me->msgs);
  uv_close((uv_handle_t *)&me->idle, on_close);
}

static const chat_engine_type_t mem_type = {
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

int chat_engine_mem_new(uv_loop_t *loop, chat_engine_t **out) {
  mem_engine_t *me = calloc(1, sizeof(*me));
  *out = NULL;
  if (me == NULL)
    return -ENOMEM;
  me->base.type = &mem_type;
  uv_idle_init(loop, &me->idle);
  me->idle.data = me;
  *out = &me->base;
  return 0;
}

void chat_engine_mem_fail(chat_engine_t *e, int n, int err) {
  ME(e)->fail_n = n;
  ME(e)->fail_err = err > 0 ? -err : err;
}
