/* bus_inbox.c -- the Redis bus's inbox (bus.h): a thread of its own reads
 * the node's stream with XREAD BLOCK from the last id it saw, turns each
 * entry (a batch entry: each of its items) into an event, and hands them
 * to the loop through a uv_async; it trims the stream up to what the loop
 * has settled (XTRIM MINID) before each read.
 *
 * Why a thread: XREAD BLOCK holds its connection until something comes,
 * so it cannot share the engine's pipelined one, and a blocking hiredis
 * context in a thread is the plainest way to wait on it (as redis-cli and
 * most stream consumers do). The thread only reads; everything else runs
 * on the loop thread. */
#include "bus_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "chat_log.h"

#define INBOX_COUNT 256        /* entries per XREAD */
#define RETRY_MS 200           /* after the reader lost its connection */

redisContext *chat__bus_sync_connect(const chat__redis_url_t *u, char *why,
                                     size_t len) {
  struct timeval tv = {3, 0};
  redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
  redisReply *r;
  if (c == NULL || c->err) {
    snprintf(why, len, "cannot reach Redis at %s:%d: %s", u->host, u->port,
             c ? c->errstr : "out of memory");
    redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, (struct timeval){CHAT__BUS_INBOX_BLOCK_MS / 1000 + 3, 0});
  /* Keep the read buffer between replies (hiredis frees one over 16 KiB
   * when it empties): every XREAD would grow it from nothing again. */
  c->reader->maxbuf = 0;
  r = redisCommand(c, "SELECT %d", u->db);
  if (r == NULL || r->type == REDIS_REPLY_ERROR) {
    snprintf(why, len, "Redis: SELECT %d failed", u->db);
    freeReplyObject(r);
    redisFree(c);
    return NULL;
  }
  freeReplyObject(r);
  return c;
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void ev_finish(ev_node_t *n) {
  n->ev.body = n->mem[4];
  n->ev.seq = n->mem[5] ? strtoull(n->mem[5], NULL, 10) : 0;
  n->ev.ts = n->mem[6] ? strtoll(n->mem[6], NULL, 10) : 0;
  n->ev.user = n->mem[0] ? n->mem[0] : "";
  n->ev.id = n->mem[7];
  n->ev.a = n->mem[1];
  n->ev.b = n->mem[2];
  n->ev.rcpts = n->mem[3];
}

/* One stream entry ([id, [field, value, ...]]) as an event. */
static ev_node_t *entry_event(const redisReply *e) {
  ev_node_t *n;
  const redisReply *f;
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
      e->element[1]->type != REDIS_REPLY_ARRAY)
    return NULL;
  f = e->element[1];
  if (e->element[0]->type != REDIS_REPLY_STRING ||
      (n = calloc(1, sizeof(*n))) == NULL)
    return NULL;
  n->mem[7] = dupn(e->element[0]->str, e->element[0]->len);
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    char **slot = NULL;
    int m = -1;
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        k->len != 1)
      continue;
    switch (k->str[0]) {
    case 't': n->ev.kind = v->len > 0 ? v->str[0] : 0; continue;
    case 'u': m = 0; break;
    case 'a': m = 1; break;
    case 'b': m = 2; break;
    case 'r': m = 3; break;
    case 'x': m = 4; n->ev.body_len = v->len; break;
    case 's': m = 5; break;
    case 'w': m = 6; break;
    default: continue;
    }
    slot = &n->mem[m];
    free(*slot);
    *slot = dupn(v->str, v->len);
  }
  ev_finish(n);
  return n;
}

/* Whether entry e (its shape checked) is a batch (t B), whose fields
 * are then all strings. */
static int is_batch(const redisReply *e) {
  const redisReply *f = e->element[1];
  int batch = 0;
  if (f->type != REDIS_REPLY_ARRAY)
    return 0;
  for (size_t i = 0; i < f->elements; i++)
    if (f->element[i]->type != REDIS_REPLY_STRING)
      return 0;
  for (size_t i = 0; i + 1 < f->elements; i += 2)
    if (f->element[i]->len == 1 && f->element[i]->str[0] == 't')
      batch = f->element[i + 1]->len == 1 && f->element[i + 1]->str[0] == 'B';
  return batch;
}

/* Whether e looks like a stream entry, [id, fields]: its fields are
 * checked by is_batch and entry_event. */
static int entry_ok(const redisReply *e) {
  return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
         e->element[0]->type == REDIS_REPLY_STRING;
}

/* The netstring at *p (before end): its bytes in *s, *len; advances *p.
 * 0, or -1 when malformed. */
static int ns_next(const char **p, const char *end, const char **s,
                   size_t *len) {
  size_t v = 0;
  const char *q = *p;
  if (q >= end || *q < '0' || *q > '9')
    return -1;
  while (q < end && *q >= '0' && *q <= '9' && v < (1u << 30))
    v = v * 10 + (size_t)(*q++ - '0');
  if (q >= end || *q != ':' || (size_t)(end - q - 1) < v)
    return -1;
  *s = q + 1;
  *len = v;
  *p = q + 1 + v;
  return 0;
}

/* The decimal number of the n bytes at s (0 when there is none). Not
 * strtoull: an item's last field has no NUL yet when it is read. */
static uint64_t dec(const char *s, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
    v = v * 10 + (uint64_t)(s[i] - '0');
  return v;
}

/* How many netstrings x holds at most (its items, malformed ones too). */
static size_t count_items(const char *x, size_t xlen) {
  const char *p = x, *end = x + xlen, *item;
  size_t ilen, n = 0;
  while (ns_next(&p, end, &item, &ilen) == 0)
    n++;
  return n;
}

/* The items of one x field of a batch entry (B: netstrings, each an item
 * of netstrings kind, user, a, b, seq, ts, body and, for a message, the
 * length of its deliver line; later ones are ignored), each as an event
 * taken from chunk c, appended at *tail. Read in place: no copy of the
 * bodies, no allocation per item. Each field gets its NUL by overwriting
 * the byte after it, which begins the next netstring, so a byte is
 * overwritten only once what it began has been parsed: the item's last
 * field's once the next item's length is read. */
static ev_node_t **batch_events(ev_chunk_t *c, size_t cap, const char *id,
                                char *x, size_t xlen, ev_node_t **tail,
                                ev_node_t **last) {
  const char *p = x, *end = x + xlen, *item;
  char *pending = NULL; /* the previous item's end */
  size_t ilen;
  while (c != NULL && c->left < cap && ns_next(&p, end, &item, &ilen) == 0) {
    const char *q = item, *iend = item + ilen, *v[8] = {0};
    size_t vlen[8] = {0};
    int k, nv;
    if (pending != NULL)
      *pending = '\0';
    pending = NULL;
    for (nv = 0; nv < 8 && ns_next(&q, iend, &v[nv], &vlen[nv]) == 0; nv++)
      ;
    if (nv < 7 || vlen[0] == 0)
      continue; /* malformed: not an item */
    for (k = 0; k < nv; k++) {
      char *after = (char *)v[k] + vlen[k];
      if (after < iend)
        *after = '\0';
      else
        pending = after;
    }
    ev_node_t *n = &c->nodes[c->left++];
    memset(n, 0, sizeof(*n));
    n->chunk = c;
    n->ev.kind = v[0][0];
    n->ev.user = v[1];
    n->ev.a = v[2];
    n->ev.b = v[3];
    n->ev.seq = dec(v[4], vlen[4]);
    n->ev.ts = (int64_t)dec(v[5], vlen[5]);
    n->ev.body = v[6];
    n->ev.body_len = vlen[6];
    n->ev.wire = nv > 7 ? (size_t)dec(v[7], vlen[7]) : 0;
    n->ev.id = id;
    *tail = n;
    tail = &n->next;
    *last = n;
  }
  if (pending != NULL)
    *pending = '\0'; /* the field's end, or hiredis's NUL after it */
  return tail;
}

void chat__bus_ev_free(ev_node_t *n) {
  ev_chunk_t *c = n->chunk;
  if (c != NULL) {
    if (--c->left == 0) {
      freeReplyObject(c->reply);
      free(c);
    }
    return;
  }
  for (int i = 0; i < 8; i++)
    free(n->mem[i]);
  free(n);
}

/* Queues XTRIM MINID of what the loop settled (rb_trim) on the reader's
 * own connection, to go with the next XREAD: entries before it carried
 * nothing unsettled. Sent together they cost one of Redis's turns, not
 * two, and each turn that writes ends in an fsync (appendfsync always):
 * asked apart, the XTRIM's fsync delayed every read. 1 when queued, 0
 * when there is nothing to trim, -1 when out of memory. */
static int queue_trim(redis_bus_t *b) {
  char id[64];
  pthread_mutex_lock(&b->mu);
  snprintf(id, sizeof(id), "%s", b->trim_id);
  b->trim_id[0] = '\0';
  pthread_mutex_unlock(&b->mu);
  if (!id[0])
    return 0;
  const char *argv[] = {"XTRIM", b->inbox, "MINID", id};
  return redisAppendCommandArgv(b->rc, 4, argv, NULL) == REDIS_OK ? 1 : -1;
}

/* How many items batch entry e's x fields hold at most. */
static size_t batch_items(const redisReply *e) {
  const redisReply *f = e->element[1];
  size_t n = 0;
  for (size_t j = 0; j + 1 < f->elements; j += 2)
    if (f->element[j]->len == 1 && f->element[j]->str[0] == 'x')
      n += count_items(f->element[j + 1]->str, f->element[j + 1]->len);
  return n;
}

int chat__bus_inbox_events(redisReply *r, char *last_id, size_t idsize,
                           ev_node_t ***tail) {
  const redisReply *ents;
  ev_chunk_t *c = NULL;
  size_t cap = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
      r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->elements != 2 ||
      r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
    freeReplyObject(r); /* nil: nothing came within the block time */
    return 0;
  }
  ents = r->element[0]->element[1];
  for (size_t i = 0; i < ents->elements; i++)
    if (entry_ok(ents->element[i]) && is_batch(ents->element[i]))
      cap += batch_items(ents->element[i]);
  if (cap > 0 &&
      (c = malloc(sizeof(*c) + cap * sizeof(c->nodes[0]))) == NULL) {
    freeReplyObject(r);
    return -ENOMEM;
  }
  if (c != NULL) {
    c->reply = r;
    c->left = 0;
  }
  for (size_t i = 0; i < ents->elements; i++) {
    const redisReply *e = ents->element[i];
    ev_node_t *n;
    if (!entry_ok(e))
      continue;
    snprintf(last_id, idsize, "%s", e->element[0]->str);
    if (is_batch(e)) {
      /* a batch: its items are the events, read in place */
      const redisReply *f = e->element[1];
      ev_node_t *last = NULL;
      for (size_t j = 0; j + 1 < f->elements; j += 2)
        if (f->element[j]->len == 1 && f->element[j]->str[0] == 'x')
          *tail = batch_events(c, cap, e->element[0]->str,
                               f->element[j + 1]->str, f->element[j + 1]->len,
                               *tail, &last);
      if (last != NULL)
        last->ev.entry_end = 1;
    } else if ((n = entry_event(e)) != NULL) {
      n->ev.entry_end = 1;
      **tail = n;
      *tail = &n->next;
    }
  }
  if (c != NULL && c->left > 0)
    return 0; /* r is the chunk's now */
  free(c);
  freeReplyObject(r);
  return 0;
}

/* Reads once (trimming first, in the same round trip) and hands the
 * events over. 0, or -1 when the connection is broken. */
static int read_inbox(redis_bus_t *b) {
  char count[16], block[16];
  int trims = queue_trim(b);
  snprintf(count, sizeof(count), "%d", INBOX_COUNT);
  snprintf(block, sizeof(block), "%d", CHAT__BUS_INBOX_BLOCK_MS);
  const char *argv[] = {"XREAD",   "COUNT", count,     "BLOCK",
                        block,     "STREAMS", b->inbox, b->last_id};
  void *t = NULL;
  redisReply *r = NULL;
  ev_node_t *first = NULL, **tail = &first;
  if (trims < 0 || redisAppendCommandArgv(b->rc, 8, argv, NULL) != REDIS_OK)
    return -1;
  if (trims > 0) {
    if (redisGetReply(b->rc, &t) != REDIS_OK)
      return -1;
    freeReplyObject(t); /* an error only leaves the entries for later */
  }
  if (redisGetReply(b->rc, (void **)&r) != REDIS_OK || r == NULL)
    return -1;
  if (r->type == REDIS_REPLY_ERROR) {
    CHAT_WARN("Redis: reading the inbox: %s", r->str);
    freeReplyObject(r);
    return -1;
  }
  if (chat__bus_inbox_events(r, b->last_id, sizeof(b->last_id), &tail) < 0)
    return -1; /* read again from last_id, after a reconnect */
  if (first != NULL) {
    pthread_mutex_lock(&b->mu);
    *b->tail = first;
    b->tail = tail;
    pthread_mutex_unlock(&b->mu);
    uv_async_send(&b->async);
  }
  return 0;
}

void *chat__bus_reader(void *arg) {
  redis_bus_t *b = arg;
  char why[256];
  while (!b->stop) {
    if (b->rc == NULL) {
      if ((b->rc = chat__bus_sync_connect(&b->url, why, sizeof(why))) == NULL) {
        usleep(RETRY_MS * 1000);
        continue;
      }
      CHAT_INFO("node %s: inbox reader connected", b->node);
    }
    if (read_inbox(b) < 0) {
      redisFree(b->rc);
      b->rc = NULL;
      if (!b->stop)
        usleep(RETRY_MS * 1000);
    }
  }
  return NULL;
}

/* ---- the loop side -------------------------------------------------------- */

/* Drops the route cache's entries of the space-separated names. */
static void forget_all(redis_bus_t *b, const char *names) {
  char name[CHAT_MAX_NAME + 1];
  for (const char *p = names; chat__bus_next_name(&p, name);)
    chat__route_cache_forget(&b->routes, name);
}

void chat__bus_on_async(uv_async_t *h) {
  redis_bus_t *b = h->data;
  ev_node_t *n, *next;
  pthread_mutex_lock(&b->mu);
  n = b->head;
  b->head = NULL;
  b->tail = &b->head;
  pthread_mutex_unlock(&b->mu);
  for (; n != NULL; n = next) {
    next = n->next;
    /* the user's presence changed, or a login elsewhere won, or (f) the
     * users in rcpts logged in, out or were reaped: where they are must be
     * looked up again */
    if ((n->ev.kind == 'p' || n->ev.kind == 'k') && n->ev.user != NULL)
      chat__route_cache_forget(&b->routes, n->ev.user);
    if (n->ev.kind == 'f' && n->ev.rcpts != NULL)
      forget_all(b, n->ev.rcpts);
    if (n->ev.kind != 0 && b->on_event != NULL)
      b->on_event(b->arg, &n->ev);
    chat__bus_ev_free(n);
  }
}
