/* committer_batch.c -- one batch of the committer (committer_batch.h):
 * ops kept as records whose strings are offsets into one byte buffer, the
 * callbacks and reads that ride with them, and applying it to the store.
 */
#include "committer_batch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_STR CHAT__BATCH_NO_STR
/* Buffers above these are given back after their batch, so one burst does
 * not pin its memory for the server's lifetime. */
#define KEEP_BUF_BYTES (1u << 20)
#define KEEP_RECS 16384u

/* Grows *p (of *cap elements of size bytes) to at least need, doubling
 * from first: 0 or -ENOMEM (*p unchanged). */
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

static size_t put_bytes(chat__batch_t *b, const void *p, size_t n,
                        bool nul) {
  size_t off = b->len;

  memcpy(b->buf + off, p, n);
  b->len += n;
  if (nul)
    b->buf[b->len++] = '\0';
  return off;
}

static size_t put_str(chat__batch_t *b, const char *s) {
  return s != NULL ? put_bytes(b, s, strlen(s), true) : NO_STR;
}

static const char *str_at(const chat__batch_t *b, size_t off) {
  return off == NO_STR ? NULL : b->buf + off;
}

/* Turns recs into store ops; runs wherever the batch is applied. */
static int build_ops(chat__batch_t *b) {
  size_t i;

  if (grow((void **)&b->ops, &b->opscap, b->n, sizeof(*b->ops), 64) != 0)
    return -ENOMEM;
  for (i = 0; i < b->n; i++) {
    const chat__batch_rec_t *r = &b->recs[i];
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
static void apply_batch(chat__store_t *store, chat__batch_t *b) {
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
void chat__batch_run(chat__store_t *store, chat__batch_t *b) {
  if (b->n > 0)
    apply_batch(store, b);
  for (size_t i = 0; i < b->nrd; i++)
    b->rd[i].status = b->rd[i].fn(store, b->rd[i].arg);
}

/* Hands the reads' results back, on the loop thread. Like waiters, the list
 * is taken out first: a done callback may ask for more. */
void chat__batch_fire_reads(chat__batch_t *b) {
  chat__batch_reader_t *rd = b->rd;
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
void chat__batch_trim(chat__batch_t *b, size_t keep_bytes,
                      size_t keep_recs) {
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

void chat__batch_reset(chat__batch_t *b) {
  b->n = 0;
  b->len = 0;
  b->status = 0;
  chat__batch_trim(b, KEEP_BUF_BYTES, KEEP_RECS);
}

void chat__batch_free(chat__batch_t *b) {
  free(b->rd);
  free(b->recs);
  free(b->buf);
  free(b->ops);
  free(b->w);
  memset(b, 0, sizeof(*b));
}

/* Runs b's callbacks. The list is taken out first, since a callback may
 * register new ones (they go to another batch or a fresh list here). */
void chat__batch_fire_waiters(chat__batch_t *b, int status) {
  chat__batch_waiter_t *w = b->w;
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

int chat__batch_add_op(chat__batch_t *b, const chat__store_op_t *op) {
  const chat__stored_msg_t *m = &op->msg;
  bool is_msg =
      op->kind == CHAT_STORE_PUT_MSG || op->kind == CHAT_STORE_DEL_MSG;
  bool put = op->kind == CHAT_STORE_PUT_MSG;
  bool stamped = put || op->kind == CHAT_STORE_ADD_TOKEN ||
                 op->kind == CHAT_STORE_TOUCH_TOKEN;
  size_t need = 0;
  chat__batch_rec_t *r;

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
  return 0;
}

int chat__batch_add_waiter(chat__batch_t *b, chat__committer_cb cb,
                           void *arg, bool after_ops) {
  if (grow((void **)&b->w, &b->wcap, b->nw + 1, sizeof(*b->w), 16) != 0)
    return -ENOMEM;
  b->w[b->nw].cb = cb;
  b->w[b->nw].arg = arg;
  b->w[b->nw].after_ops = after_ops;
  b->nw++;
  return 0;
}

int chat__batch_add_read(chat__batch_t *b, chat__committer_read_fn fn,
                         chat__committer_cb done, void *arg) {
  if (grow((void **)&b->rd, &b->rdcap, b->nrd + 1, sizeof(*b->rd), 16) != 0)
    return -ENOMEM;
  b->rd[b->nrd].fn = fn;
  b->rd[b->nrd].done = done;
  b->rd[b->nrd].arg = arg;
  b->rd[b->nrd].status = 0;
  b->nrd++;
  return 0;
}
