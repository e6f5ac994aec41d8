/* bus_batch.c -- each loop turn's carried messages and receipts (bus.h
 * msg, route 'r'), sent when the turn ends as one CARRY script call.
 *
 * Items are grouped per recipient as they are added, each group's items
 * packed as netstrings into one buffer, so the script does one directory
 * lookup per recipient, not per item, and one XADD per target node
 * (docs/CLUSTER.md). Order per recipient is the order of adding; the call
 * rides the engine's one connection, so turns stay in order too. */
#include "bus_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

/* A batch is sent before its turn ends once it holds this much. Big
 * commands cost more than they save: hiredis copies a command into its
 * output buffer and moves the unwritten rest down after every partial
 * write, the allocations pass glibc's mmap threshold (server.c) and are
 * faulted in page by page, and the receiving node's XREAD reply grows as
 * large. The groups' cap keeps the script's unpack() well inside Lua's
 * stack. */
#define BATCH_BYTES (256u << 10)
#define BATCH_GROUPS 512

typedef struct out_item {
  chat__bus_reply_cb cb; /* may be NULL */
  void *arg;
  int group;
} out_item_t;

typedef struct out_group {
  char *to;              /* owned until the call takes it */
  size_t to_len;
  char *buf;             /* the items' netstrings; likewise */
  size_t len, cap;
} out_group_t;

typedef struct out_batch {
  out_item_t *items;
  int n, cap;
  out_group_t *groups;
  int ngroups, gcap;
  size_t bytes;          /* the groups' buffers together */
  chat__hmap_t by_to;    /* recipient -> group index + 1; keys are the
                          * groups' names, so it dies before they move */
} out_batch_t;

static void batch_free(out_batch_t *o) {
  if (o == NULL)
    return;
  chat__hmap_free(&o->by_to);
  for (int i = 0; i < o->ngroups; i++) {
    free(o->groups[i].to);
    free(o->groups[i].buf);
  }
  free(o->groups);
  free(o->items);
  free(o);
}

/* Answers an item with status, and node (NULL: nowhere) as where its
 * recipient is. */
static void item_done(out_item_t *it, int status, const char *node) {
  char *strs[1] = {(char *)node};
  if (it->cb != NULL)
    it->cb(it->arg, status, node != NULL ? strs : NULL, node != NULL ? 1 : 0,
           0);
  it->cb = NULL;
}

static void carried(void *arg, int status, char *const *strs, size_t n,
                    long long ival) {
  out_batch_t *o = arg;
  (void)ival;
  if (status == 0 && n != (size_t)o->ngroups)
    status = -EIO;
  for (int i = 0; i < o->n; i++) {
    const char *node = status == 0 ? strs[o->items[i].group] : NULL;
    item_done(&o->items[i], status, node != NULL && node[0] ? node : NULL);
  }
  batch_free(o);
}

void chat__bus_on_flush(uv_check_t *h) {
  redis_bus_t *b = h->data;
  out_batch_t *o = b->out;
  int nv;
  char **v;
  size_t *len;
  uv_check_stop(h);
  b->out = NULL;
  if (o == NULL || o->n == 0) {
    batch_free(o);
    return;
  }
  /* The map's keys are the groups' names, which the call takes. */
  chat__hmap_free(&o->by_to);
  chat__hmap_init(&o->by_to);
  nv = 1 + 2 * o->ngroups;
  v = calloc((size_t)nv, sizeof(*v));
  len = calloc((size_t)nv, sizeof(*len));
  if (v == NULL || len == NULL || (v[0] = strdup(b->node)) == NULL) {
    free(v);
    free(len);
    for (int i = 0; i < o->n; i++)
      item_done(&o->items[i], -ENOMEM, NULL);
    batch_free(o);
    return;
  }
  len[0] = strlen(v[0]);
  int bad = 0;
  for (int g = 0; g < o->ngroups; g++) {
    out_group_t *gr = &o->groups[g];
    /* a group whose only item failed to be added has no buffer */
    if (gr->buf == NULL && (gr->buf = malloc(1)) == NULL)
      bad = 1;
    v[1 + 2 * g] = gr->to;
    len[1 + 2 * g] = gr->to_len;
    v[2 + 2 * g] = gr->buf;
    len[2 + 2 * g] = gr->len;
    gr->to = gr->buf = NULL;
  }
  if (bad) { /* not sent: v is still ours (a call takes it over) */
    for (int i = 0; i < nv; i++)
      free(v[i]);
    free(v);
    free(len);
  }
  if (bad || chat__redis_callv(b->engine, CHAT__SC_BUS_CARRY, v, len, nv,
                               carried, o) < 0) {
    for (int i = 0; i < o->n; i++)
      item_done(&o->items[i], -ENOMEM, NULL);
    batch_free(o);
  }
}

/* The open batch (opened, and its flush armed, when there is none), or
 * NULL when out of memory. */
static out_batch_t *open_batch(redis_bus_t *b) {
  out_batch_t *o = b->out;
  if (o == NULL) {
    if ((o = calloc(1, sizeof(*o))) == NULL)
      return NULL;
    chat__hmap_init(&o->by_to);
    b->out = o;
    uv_check_start(&b->flush, chat__bus_on_flush);
  }
  return o;
}

/* The group of `to` in o (a new one when it has none): its index, or
 * -ENOMEM. */
static int group_of(out_batch_t *o, const char *to) {
  size_t tl = strlen(to);
  void *hit = chat__hmap_get(&o->by_to, to, tl);
  out_group_t *gr;
  if (hit != NULL)
    return (int)((intptr_t)hit - 1);
  if (o->ngroups == o->gcap) {
    int cap = o->gcap ? 2 * o->gcap : 16;
    out_group_t *ng = realloc(o->groups, (size_t)cap * sizeof(*ng));
    if (ng == NULL)
      return -ENOMEM;
    o->groups = ng;
    o->gcap = cap;
    /* the map's keys point into the groups' names, not the array: safe */
  }
  gr = &o->groups[o->ngroups];
  *gr = (out_group_t){0};
  if ((gr->to = malloc(tl + 1)) == NULL)
    return -ENOMEM;
  memcpy(gr->to, to, tl + 1);
  gr->to_len = tl;
  if (chat__hmap_put(&o->by_to, gr->to, tl,
                     (void *)(intptr_t)(o->ngroups + 1)) < 0) {
    free(gr->to);
    return -ENOMEM;
  }
  return o->ngroups++;
}

static int ndigits(size_t v) {
  int d = 1;
  while (v >= 10) {
    v /= 10;
    d++;
  }
  return d;
}

/* "LEN:" at p (no NUL), LEN in decimal; returns the end. Eight of these
 * per item: sprintf was 6 % of a node's CPU. */
static char *len_put(char *p, size_t v) {
  int d = ndigits(v);
  for (int i = d - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  p[d] = ':';
  return p + d + 1;
}

/* Room for more bytes at the end of gr's buffer. 0 or -ENOMEM. */
static int group_reserve(out_group_t *gr, size_t more) {
  size_t cap = gr->cap ? gr->cap : 256;
  char *nb;
  if (gr->len + more <= gr->cap)
    return 0;
  while (cap < gr->len + more)
    cap *= 2;
  if ((nb = realloc(gr->buf, cap)) == NULL)
    return -ENOMEM;
  gr->buf = nb;
  gr->cap = cap;
  return 0;
}

int chat__bus_batch_add(redis_bus_t *b, const char *to,
                        const char *const f[7], const size_t flen[7],
                        chat__bus_reply_cb cb, void *arg) {
  out_batch_t *o = open_batch(b);
  size_t total = 0;
  out_group_t *gr;
  int g;
  if (o == NULL)
    return -ENOMEM;
  if (o->n == o->cap) {
    int cap = o->cap ? 2 * o->cap : 64;
    out_item_t *ni = realloc(o->items, (size_t)cap * sizeof(*ni));
    if (ni == NULL)
      return -ENOMEM;
    o->items = ni;
    o->cap = cap;
  }
  if ((g = group_of(o, to)) < 0)
    return g;
  gr = &o->groups[g];
  /* The item is itself a netstring of the seven, so its length first. */
  for (int k = 0; k < 7; k++)
    total += (size_t)ndigits(flen[k]) + 1 + flen[k];
  if (group_reserve(gr, (size_t)ndigits(total) + 1 + total) < 0)
    return -ENOMEM;
  char *p = len_put(gr->buf + gr->len, total);
  for (int k = 0; k < 7; k++) {
    p = len_put(p, flen[k]);
    memcpy(p, f[k], flen[k]);
    p += flen[k];
  }
  o->bytes += (size_t)(p - gr->buf) - gr->len;
  gr->len = (size_t)(p - gr->buf);
  o->items[o->n++] = (out_item_t){cb, arg, g};
  if (o->bytes >= BATCH_BYTES || o->ngroups >= BATCH_GROUPS)
    chat__bus_on_flush(&b->flush); /* now: the next add opens another */
  return 0;
}

void chat__bus_batch_cancel(redis_bus_t *b, int status) {
  out_batch_t *o = b->out;
  if (o != NULL)
    for (int i = 0; i < o->n; i++)
      item_done(&o->items[i], status, NULL);
  batch_free(o);
  b->out = NULL;
}
