/* bus_batch.c -- each loop turn's carried messages and receipts (bus.h
 * msg, route 'r'), sent when the turn ends.
 *
 * Items are grouped per recipient as they are added. A recipient the
 * route cache knows (route_cache.h) when its first item of the turn comes
 * has its items packed as netstrings straight into its node's buffer,
 * which the flush sends as one plain XADD, in RESP built in place. The
 * others' items are packed per recipient and go in one CARRY script call,
 * which looks each recipient up once and XADDs once per target node
 * (docs/CLUSTER.md), and whose answer fills the cache. Order per
 * recipient is the order of adding; the calls ride the engine's one
 * connection, so turns stay in order too. */
#include "bus_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "hmap.h"

/* A batch is sent before its turn ends once it holds this much. Redis
 * reads a big argument whole and then runs that one command, and under
 * appendfsync always each of its turns that writes ends in an fsync: at
 * 256 KiB that was an fsync per 230 carried 1 KiB messages; 512 KiB gave
 * 8 % more cross-node throughput and 15 % less Redis CPU per message
 * (docs/PERFORMANCE.md). Bigger still cost more than it saved: hiredis
 * copies a command into its output buffer and moves the unwritten rest
 * down after every partial write, and the receiving node's XREAD replies
 * grow as large (1 MiB: its CPU per message up 10 %, latency up 15 %).
 * The groups' cap keeps the script's unpack() well inside Lua's stack. */
#define BATCH_BYTES (512u << 10)
#define BATCH_GROUPS 512

typedef struct out_item {
  chat__bus_reply_cb cb; /* may be NULL */
  void *arg;
  int group;
} out_item_t;

typedef struct out_group {
  char *to;              /* owned */
  size_t to_len;
  int via;               /* the node buffer its items go to (o->vias), or
                          * -1: the CARRY call, packed in buf */
  char *buf;             /* a CARRY group's items; owned until sent */
  size_t len, cap;
  char *node;            /* the answer: where to is (NULL: nowhere) */
  int status;
} out_group_t;

/* The XADD of one target node: its command's RESP header goes in the
 * HEAD_ROOM bytes before the items, written at the flush. */
typedef struct out_via {
  char *node;            /* owned */
  char *buf;             /* owned until sent */
  size_t len, cap;       /* len counts the room */
} out_via_t;

/* "*10 ... $LEN\r\n" of send_xadd, with a node name of up to 127 bytes */
#define HEAD_ROOM 320

typedef struct out_batch {
  redis_bus_t *bus;
  out_item_t *items;
  int n, cap;
  out_group_t *groups;
  int ngroups, gcap;
  out_via_t *vias;
  int nvias, vcap;
  size_t bytes;          /* the items together */
  chat__hmap_t by_to;    /* recipient -> group index + 1; keys are the
                          * groups' names */
  /* after the flush: */
  int pending;           /* calls not answered yet */
  uint64_t sent_ms;      /* when they were sent (uv_now) */
  int *slow;             /* the CARRY call's groups, in its order */
  int nslow;
} out_batch_t;

/* One XADD of the flush: the groups whose via is v. */
typedef struct via_call {
  out_batch_t *o;
  int v;
} via_call_t;

static void batch_free(out_batch_t *o) {
  if (o == NULL)
    return;
  chat__hmap_free(&o->by_to);
  for (int i = 0; i < o->ngroups; i++) {
    free(o->groups[i].to);
    free(o->groups[i].buf);
    free(o->groups[i].node);
  }
  for (int i = 0; i < o->nvias; i++) {
    free(o->vias[i].node);
    free(o->vias[i].buf);
  }
  free(o->vias);
  free(o->slow);
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

/* One call of the flush answered: when it was the last, every item is
 * answered, in the order they were added. */
static void call_done(out_batch_t *o) {
  if (--o->pending > 0)
    return;
  for (int i = 0; i < o->n; i++) {
    out_group_t *gr = &o->groups[o->items[i].group];
    item_done(&o->items[i], gr->status, gr->status == 0 ? gr->node : NULL);
  }
  batch_free(o);
}

static void set_node(out_group_t *gr, const char *node) {
  if (node != NULL && node[0] && (gr->node = strdup(node)) == NULL)
    gr->status = -ENOMEM;
}

/* The CARRY call's answer: each of its recipients' node ("" nowhere),
 * which the route cache keeps for the next turns. */
static void carried(void *arg, int status, char *const *strs, size_t n,
                    long long ival) {
  out_batch_t *o = arg;
  redis_bus_t *b = o->bus;
  uint64_t now = uv_now(b->loop);
  (void)ival;
  if (status == 0 && n != (size_t)o->nslow)
    status = -EIO;
  for (int k = 0; k < o->nslow; k++) {
    out_group_t *gr = &o->groups[o->slow[k]];
    gr->status = status;
    if (status != 0)
      continue;
    set_node(gr, strs[k]);
    if (strs[k][0] && strcmp(strs[k], b->node) != 0)
      (void)chat__route_cache_put(&b->routes, gr->to, strs[k], o->sent_ms,
                                  now);
  }
  call_done(o);
}

/* An XADD's answer: its groups are at its node (as the cache said). */
static void xadded(void *arg, int status, char *const *strs, size_t n,
                   long long ival) {
  via_call_t *vc = arg;
  out_batch_t *o = vc->o;
  (void)ival;
  if (status == 0 && n != 1)
    status = -EIO;
  for (int g = 0; g < o->ngroups; g++) {
    out_group_t *gr = &o->groups[g];
    if (gr->via != vc->v)
      continue;
    gr->status = status;
    if (status == 0)
      set_node(gr, o->vias[vc->v].node);
  }
  free(vc);
  call_done(o);
}

/* The CARRY call for the groups the cache knows nothing of: it looks each
 * recipient up and XADDs to its node, atomically. 0 or -ENOMEM. */
static int send_carry(redis_bus_t *b, out_batch_t *o) {
  int nv = 1 + 2 * o->nslow, k;
  char **v = calloc((size_t)nv, sizeof(*v));
  size_t *len = calloc((size_t)nv, sizeof(*len));
  if (v == NULL || len == NULL || (v[0] = strdup(b->node)) == NULL) {
    free(v);
    free(len);
    return -ENOMEM;
  }
  len[0] = strlen(v[0]);
  for (k = 0; k < o->nslow; k++) {
    out_group_t *gr = &o->groups[o->slow[k]];
    if ((v[1 + 2 * k] = malloc(gr->to_len + 1)) == NULL)
      break;
    memcpy(v[1 + 2 * k], gr->to, gr->to_len + 1);
    len[1 + 2 * k] = gr->to_len;
    /* a group whose only item failed to be added has no buffer */
    v[2 + 2 * k] = gr->buf != NULL ? gr->buf : malloc(1);
    len[2 + 2 * k] = gr->len;
    if (v[2 + 2 * k] == NULL)
      break;
    gr->buf = NULL;
  }
  if (k < o->nslow) { /* not sent: v is still ours */
    for (int i = 0; i < nv; i++)
      free(v[i]);
    free(v);
    free(len);
    return -ENOMEM;
  }
  return chat__redis_callv(b->engine, CHAT__SC_BUS_CARRY, v, len, nv, carried,
                           o);
}

/* The XADD of via v's items, as one x field (one argument: Redis reads
 * an argument of 32 KiB or more in one read, where it reads 16 KiB a turn
 * otherwise). No script: Lua hashes every byte of every string it is
 * given, a microsecond per KiB of body. The items were packed where the
 * command needs them; its header goes in the room before them. 0 or
 * -ENOMEM. */
static int send_xadd(redis_bus_t *b, out_batch_t *o, int v) {
  out_via_t *ov = &o->vias[v];
  char head[HEAD_ROOM];
  size_t total = ov->len - HEAD_ROOM,
         keylen = strlen(ov->node) + sizeof("{node:}:inbox") - 1;
  via_call_t *vc;
  int hl, r;
  /* XADD key MAXLEN ~ 100000 * t B x <total> */
  hl = snprintf(head, sizeof(head),
                "*10\r\n$4\r\nXADD\r\n$%zu\r\n{node:%s}:inbox\r\n"
                "$6\r\nMAXLEN\r\n$1\r\n~\r\n$6\r\n100000\r\n$1\r\n*\r\n"
                "$1\r\nt\r\n$1\r\nB\r\n$1\r\nx\r\n$%zu\r\n",
                keylen, ov->node, total);
  if (hl < 0 || (size_t)hl >= sizeof(head))
    return -ENOMEM; /* node names are shorter: cannot happen */
  if ((vc = malloc(sizeof(*vc))) == NULL)
    return -ENOMEM;
  memcpy(ov->buf + HEAD_ROOM - hl, head, (size_t)hl);
  memcpy(ov->buf + ov->len, "\r\n", 2); /* via_reserve kept room */
  *vc = (via_call_t){o, v};
  r = chat__redis_cmdf(b->engine, ov->buf, HEAD_ROOM - (size_t)hl,
                       (size_t)hl + total + 2, xadded, vc);
  ov->buf = NULL; /* taken over, also on failure */
  if (r < 0)
    free(vc);
  return r;
}

void chat__bus_on_flush(uv_check_t *h) {
  redis_bus_t *b = h->data;
  out_batch_t *o = b->out;
  int r = 0;
  uv_check_stop(h);
  b->out = NULL;
  if (o == NULL || o->n == 0) {
    batch_free(o);
    return;
  }
  /* The map's keys are the groups' names: not needed from here on. */
  chat__hmap_free(&o->by_to);
  chat__hmap_init(&o->by_to);
  o->sent_ms = uv_now(b->loop);
  if ((o->slow = calloc((size_t)o->ngroups, sizeof(*o->slow))) == NULL)
    r = -ENOMEM;
  for (int g = 0; r == 0 && g < o->ngroups; g++)
    if (o->groups[g].via < 0)
      o->slow[o->nslow++] = g;
  /* pending counts the calls, plus one held until all are queued, so
   * that none can finish the batch before the last is sent */
  o->pending = 1;
  if (r == 0 && o->nslow > 0 && (r = send_carry(b, o)) == 0)
    o->pending++;
  for (int k = 0; r == 0 && k < o->nvias; k++)
    if (o->vias[k].len > 0 && (r = send_xadd(b, o, k)) == 0)
      o->pending++; /* (a node whose only item failed to be added: none) */
  if (r < 0) {
    /* what was queued is answered in turn; the rest fails now */
    for (int g = 0; g < o->ngroups; g++)
      if (o->groups[g].node == NULL && o->groups[g].status == 0)
        o->groups[g].status = r;
    CHAT_WARN("cluster: carrying a turn's messages: %s", chat_strerror(r));
  }
  call_done(o);
}

/* The open batch (opened, and its flush armed, when there is none), or
 * NULL when out of memory. */
static out_batch_t *open_batch(redis_bus_t *b) {
  out_batch_t *o = b->out;
  if (o == NULL) {
    if ((o = calloc(1, sizeof(*o))) == NULL)
      return NULL;
    o->bus = b;
    chat__hmap_init(&o->by_to);
    b->out = o;
    uv_check_start(&b->flush, chat__bus_on_flush);
  }
  return o;
}

/* A lookup of where a user is, made ahead of its cached answer's end. */
typedef struct refresh {
  redis_bus_t *b;
  uint64_t sent_ms;
  char user[];
} refresh_t;

static void refreshed(void *arg, int status, char *const *strs, size_t n,
                      long long ival) {
  refresh_t *rf = arg;
  redis_bus_t *b = rf->b;
  (void)ival;
  if (status == 0 && n > 0 && strs[0][0] && strcmp(strs[0], b->node) != 0)
    (void)chat__route_cache_put(&b->routes, rf->user, strs[0], rf->sent_ms,
                                uv_now(b->loop));
  else if (status == 0) /* logged in nowhere, or here */
    chat__route_cache_forget(&b->routes, rf->user);
  free(rf); /* on an error the entry just runs out */
}

/* The directory's answer for user, as CARRY looks it up, into the route
 * cache: a plain read, so no fsync and no script. */
static void refresh_route(redis_bus_t *b, const char *user) {
  size_t ul = strlen(user);
  refresh_t *rf = malloc(sizeof(*rf) + ul + 1);
  char **v = calloc(3, sizeof(*v));
  size_t *len = calloc(3, sizeof(*len));
  if (rf == NULL || v == NULL || len == NULL ||
      (v[0] = strdup("HGET")) == NULL || (v[1] = malloc(ul + 8)) == NULL ||
      (v[2] = strdup("node")) == NULL) {
    if (v != NULL)
      for (int i = 0; i < 3; i++)
        free(v[i]);
    free(v);
    free(len);
    free(rf);
    return; /* the entry just runs out */
  }
  len[0] = 4;
  len[1] = (size_t)sprintf(v[1], "{u:%s}:at", user);
  len[2] = 4;
  rf->b = b;
  rf->sent_ms = uv_now(b->loop);
  memcpy(rf->user, user, ul + 1);
  if (chat__redis_cmdv(b->engine, v, len, 3, refreshed, rf) < 0)
    free(rf); /* v and len were taken over */
}

/* The index of node's buffer in o (a new one when it has none), or
 * -ENOMEM. */
static int via_of(out_batch_t *o, const char *node) {
  int k;
  for (k = 0; k < o->nvias && strcmp(o->vias[k].node, node) != 0; k++)
    ;
  if (k < o->nvias)
    return k;
  if (o->nvias == o->vcap) {
    int cap = o->vcap ? 2 * o->vcap : 4;
    out_via_t *nv = realloc(o->vias, (size_t)cap * sizeof(*nv));
    if (nv == NULL)
      return -ENOMEM;
    o->vias = nv;
    o->vcap = cap;
  }
  o->vias[k] = (out_via_t){0};
  if ((o->vias[k].node = strdup(node)) == NULL)
    return -ENOMEM;
  o->nvias++;
  return k;
}

/* The group of `to` in o (a new one when it has none, going to the node
 * the route cache names now, if any): its index, or -ENOMEM. An item
 * that must ask the directory (fresh) for a recipient whose group goes by
 * the cache gets a group of its own, not in the map. */
static int group_of(out_batch_t *o, const char *to, int fresh) {
  redis_bus_t *b = o->bus;
  size_t tl = strlen(to);
  void *hit = chat__hmap_get(&o->by_to, to, tl);
  const char *node;
  out_group_t *gr;
  int g, refresh = 0;
  if (hit != NULL) {
    g = (int)((intptr_t)hit - 1);
    if (!fresh || o->groups[g].via < 0)
      return g;
  }
  if (o->ngroups == o->gcap) {
    int cap = o->gcap ? 2 * o->gcap : 16;
    out_group_t *ng = realloc(o->groups, (size_t)cap * sizeof(*ng));
    if (ng == NULL)
      return -ENOMEM;
    o->groups = ng;
    o->gcap = cap;
    /* the map's keys point into the groups' names, not the array: safe */
  }
  g = o->ngroups;
  gr = &o->groups[g];
  *gr = (out_group_t){0};
  gr->via = -1;
  if ((gr->to = malloc(tl + 1)) == NULL)
    return -ENOMEM;
  memcpy(gr->to, to, tl + 1);
  gr->to_len = tl;
  node = fresh ? NULL
               : chat__route_cache_get(&b->routes, to, uv_now(b->loop),
                                       &refresh);
  if (refresh)
    refresh_route(b, to);
  if (node != NULL && (gr->via = via_of(o, node)) < 0) {
    free(gr->to);
    return -ENOMEM;
  }
  if (hit == NULL &&
      chat__hmap_put(&o->by_to, gr->to, tl, (void *)(intptr_t)(g + 1)) < 0) {
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

/* Room for more bytes at the end of via v's buffer, and for the "\r\n"
 * that ends its command. A new buffer starts at the size the last one
 * reached (b->via_hint), so a steady stream does not grow one by copies
 * every turn. 0 or -ENOMEM. */
static int via_reserve(redis_bus_t *b, out_via_t *ov, size_t more) {
  size_t need = (ov->len ? ov->len : HEAD_ROOM) + more + 2, cap = ov->cap;
  char *nb;
  if (need <= ov->cap)
    return 0;
  if (cap == 0)
    cap = b->via_hint > 4096 ? b->via_hint : 4096;
  while (cap < need)
    cap *= 2;
  if ((nb = realloc(ov->buf, cap)) == NULL)
    return -ENOMEM;
  if (ov->len == 0)
    ov->len = HEAD_ROOM;
  ov->buf = nb;
  ov->cap = cap;
  if (cap > b->via_hint)
    b->via_hint = cap < CHAT__BUS_VIA_HINT_MAX ? cap : CHAT__BUS_VIA_HINT_MAX;
  return 0;
}

int chat__bus_batch_add(redis_bus_t *b, const char *to, const char *const *f,
                        const size_t *flen, int nf, int fresh,
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
  if ((g = group_of(o, to, fresh)) < 0)
    return g;
  gr = &o->groups[g];
  /* The item is itself a netstring of its fields, so its length first. */
  for (int k = 0; k < nf; k++)
    total += (size_t)ndigits(flen[k]) + 1 + flen[k];
  size_t size = (size_t)ndigits(total) + 1 + total;
  char **buf = gr->via >= 0 ? &o->vias[gr->via].buf : &gr->buf;
  size_t *len = gr->via >= 0 ? &o->vias[gr->via].len : &gr->len;
  if ((gr->via >= 0 ? via_reserve(b, &o->vias[gr->via], size)
                    : group_reserve(gr, size)) < 0)
    return -ENOMEM;
  char *p = len_put(*buf + *len, total);
  for (int k = 0; k < nf; k++) {
    p = len_put(p, flen[k]);
    memcpy(p, f[k], flen[k]);
    p += flen[k];
  }
  *len += size;
  o->bytes += size;
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
