/* bus_batch.c -- each loop turn's carried messages and receipts (bus.h
 * msg, route 'r'), sent when the turn ends in two calls: LOOKUP (where each
 * recipient is), then one PUSH per target node with all its items packed
 * in C, so no body passes through Lua and Redis's cost per item is a
 * directory lookup and a share of one XADD (docs/CLUSTER.md). A PUSH whose
 * recipient moved since LOOKUP is refused; its items go round again. */
#include "bus_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out_item {
  chat__bus_reply_cb cb; /* may be NULL */
  void *arg;
  char *to;              /* owned */
  char *payload;         /* owned: netstrings kind, to, a, b, seq, ts, body */
  size_t len;
  int pushing;           /* in a PUSH whose answer is still to come */
} out_item_t;

typedef struct out_batch {
  struct redis_bus *b;
  out_item_t *items;
  int n, cap;
  int pushes;     /* PUSH calls still to answer */
} out_batch_t;

/* One PUSH: the items of a batch for one node. */
typedef struct out_push {
  out_batch_t *o;
  char node[128];
  int *idx;       /* the items' indexes */
  int n;
} out_push_t;

/* netstring of s (len) at p; returns the end. */
static char *ns_put(char *p, const char *s, size_t len) {
  p += sprintf(p, "%zu:", len);
  memcpy(p, s, len);
  return p + len;
}

static void batch_free(out_batch_t *o) {
  if (o == NULL)
    return;
  for (int i = 0; i < o->n; i++) {
    free(o->items[i].to);
    free(o->items[i].payload);
  }
  free(o->items);
  free(o);
}

static void item_done(out_item_t *it, int status, const char *node) {
  char *strs[1] = {(char *)node};
  if (it->cb != NULL)
    it->cb(it->arg, status, node != NULL ? strs : NULL, node != NULL ? 1 : 0,
           0);
  it->cb = NULL;
}

/* Answers every item not answered yet (a failure: status < 0). */
static void batch_fail(out_batch_t *o, int status) {
  for (int i = 0; i < o->n; i++)
    item_done(&o->items[i], status, NULL);
}

static int batch_add_item(redis_bus_t *b, out_item_t *it);

static void pushed(void *arg, int status, char *const *strs, size_t n,
                   long long ival) {
  out_push_t *p = arg;
  out_batch_t *o = p->o;
  (void)strs;
  (void)n;
  for (int i = 0; i < p->n; i++) {
    out_item_t *it = &o->items[p->idx[i]];
    if (status == 0 && ival == 0) {
      /* a recipient moved since LOOKUP: all of them go round again */
      if (batch_add_item(o->b, it) == 0)
        continue; /* it went, payload and all, to the next turn's batch */
      status = -ENOMEM;
    }
    item_done(it, status, status == 0 ? p->node : NULL);
    free(it->payload);
    it->payload = NULL;
  }
  free(p->idx);
  free(p);
  if (--o->pushes == 0)
    batch_free(o);
}

/* One PUSH for the items idx[0..n) of o, all for node. 0 or -ENOMEM. */
static int push_to(out_batch_t *o, const char *node, int *idx, int n) {
  size_t total = 0;
  char *blob, *q;
  out_push_t *p = calloc(1, sizeof(*p));
  for (int i = 0; i < n; i++)
    total += o->items[idx[i]].len + 24;
  char **v = calloc((size_t)n + 3, sizeof(*v));
  size_t *len = calloc((size_t)n + 3, sizeof(*len));
  if (p == NULL || v == NULL || len == NULL || (blob = malloc(total)) == NULL) {
    free(p);
    free(v);
    free(len);
    return -ENOMEM;
  }
  q = blob;
  for (int i = 0; i < n; i++)
    q = ns_put(q, o->items[idx[i]].payload, o->items[idx[i]].len);
  v[0] = strdup(o->b->node);
  v[1] = strdup(node);
  v[2] = blob;
  len[0] = v[0] ? strlen(v[0]) : 0;
  len[1] = v[1] ? strlen(v[1]) : 0;
  len[2] = (size_t)(q - blob);
  for (int i = 0; i < n; i++) {
    v[i + 3] = strdup(o->items[idx[i]].to);
    len[i + 3] = v[i + 3] ? strlen(v[i + 3]) : 0;
  }
  p->o = o;
  p->idx = idx;
  p->n = n;
  snprintf(p->node, sizeof(p->node), "%s", node);
  o->pushes++;
  if (v[0] == NULL || v[1] == NULL) {
    for (int i = 0; i < n + 3; i++)
      free(v[i]);
    free(v);
    free(len);
    o->pushes--;
    free(p);
    return -ENOMEM;
  }
  if (chat__redis_callv(o->b->engine, CHAT__SC_BUS_PUSH, v, len, n + 3,
                        pushed, p) < 0) {
    o->pushes--;
    free(p);
    return -ENOMEM;
  }
  return 0;
}

/* Where each item's recipient is: the items for this node or for nobody
 * are answered now (the caller stores them), the others pushed to their
 * nodes, one PUSH each. */
static void looked_up(void *arg, int status, char *const *strs, size_t n,
                      long long ival) {
  out_batch_t *o = arg;
  (void)ival;
  if (status < 0 || n != (size_t)o->n) {
    batch_fail(o, status < 0 ? status : -EIO);
    batch_free(o);
    return;
  }
  o->pushes = 1; /* this function's own, dropped below */
  for (int i = 0; i < o->n; i++) {
    const char *node = strs[i];
    int *idx, k = 0;
    if (o->items[i].payload == NULL || o->items[i].pushing)
      continue; /* answered, or in a PUSH already */
    if (node[0] == '\0' || strcmp(node, o->b->node) == 0) {
      item_done(&o->items[i], 0, node[0] ? node : NULL);
      free(o->items[i].payload);
      o->items[i].payload = NULL;
      continue;
    }
    if ((idx = malloc((size_t)o->n * sizeof(*idx))) == NULL) {
      item_done(&o->items[i], -ENOMEM, NULL);
      continue;
    }
    for (int j = i; j < o->n; j++)
      if (o->items[j].payload != NULL && !o->items[j].pushing &&
          strcmp(strs[j], node) == 0)
        idx[k++] = j;
    for (int j = 0; j < k; j++) /* in this push: not in another */
      o->items[idx[j]].pushing = 1;
    if (push_to(o, node, idx, k) < 0) {
      for (int j = 0; j < k; j++) {
        item_done(&o->items[idx[j]], -ENOMEM, NULL);
        free(o->items[idx[j]].payload);
        o->items[idx[j]].payload = NULL;
      }
      free(idx);
    }
  }
  if (--o->pushes == 0)
    batch_free(o);
}

void chat__bus_on_flush(uv_check_t *h) {
  redis_bus_t *b = h->data;
  out_batch_t *o = b->out;
  char **v;
  size_t *len;
  uv_check_stop(h);
  b->out = NULL;
  if (o == NULL || o->n == 0) {
    batch_free(o);
    return;
  }
  v = calloc((size_t)o->n + 1, sizeof(*v));
  len = calloc((size_t)o->n + 1, sizeof(*len));
  if (v == NULL || len == NULL || (v[0] = strdup(b->node)) == NULL) {
    free(v);
    free(len);
    batch_fail(o, -ENOMEM);
    batch_free(o);
    return;
  }
  len[0] = strlen(v[0]);
  for (int i = 0; i < o->n; i++) {
    v[i + 1] = strdup(o->items[i].to);
    len[i + 1] = v[i + 1] ? strlen(v[i + 1]) : 0;
  }
  if (chat__redis_callv(b->engine, CHAT__SC_BUS_LOOKUP, v, len, o->n + 1,
                        looked_up, o) < 0) {
    batch_fail(o, -ENOMEM);
    batch_free(o);
  }
}

/* A free slot at the end of the open batch (opened, and its flush armed,
 * when there is none), or NULL when out of memory. */
static out_item_t *open_slot(redis_bus_t *b) {
  out_batch_t *o = b->out;
  if (o == NULL) {
    if ((o = calloc(1, sizeof(*o))) == NULL)
      return NULL;
    o->b = b;
    b->out = o;
    uv_check_start(&b->flush, chat__bus_on_flush);
  }
  if (o->n == o->cap) {
    int cap = o->cap ? 2 * o->cap : 64;
    out_item_t *ni = realloc(o->items, (size_t)cap * sizeof(*ni));
    if (ni == NULL)
      return NULL;
    o->items = ni;
    o->cap = cap;
  }
  return &o->items[o->n];
}

int chat__bus_batch_add(redis_bus_t *b, const char *to,
                        const char *const f[7], const size_t flen[7],
                        chat__bus_reply_cb cb, void *arg) {
  out_item_t *slot = open_slot(b);
  size_t total = 0;
  char *item, *p, *t;
  if (slot == NULL)
    return -ENOMEM;
  for (int k = 0; k < 7; k++)
    total += flen[k] + 24;
  if ((item = malloc(total)) == NULL)
    return -ENOMEM;
  if ((t = strdup(to)) == NULL) {
    free(item);
    return -ENOMEM;
  }
  p = item;
  for (int k = 0; k < 7; k++)
    p = ns_put(p, f[k], flen[k]);
  *slot = (out_item_t){cb, arg, t, item, (size_t)(p - item), 0};
  b->out->n++;
  return 0;
}

/* it (of a batch in flight) into the open batch, which takes its strings
 * over. 0 or -ENOMEM (it keeps them). */
static int batch_add_item(redis_bus_t *b, out_item_t *it) {
  out_item_t *slot = open_slot(b);
  if (slot == NULL)
    return -ENOMEM;
  *slot = *it;
  slot->pushing = 0;
  b->out->n++;
  it->cb = NULL;
  it->to = NULL;
  it->payload = NULL;
  return 0;
}

void chat__bus_batch_cancel(redis_bus_t *b, int status) {
  if (b->out != NULL) {
    batch_fail(b->out, status);
    batch_free(b->out);
  }
  b->out = NULL;
}
