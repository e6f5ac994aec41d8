/* bus_redis.c -- bus.h on Redis: calls of the cluster scripts (bus_lua.c)
 * through the engine's batches, the node's inbox read by a thread of its
 * own, and the liveness timer.
 *
 * Why a thread for the inbox: XREAD BLOCK holds its connection until
 * something comes, so it cannot share the engine's pipelined one, and a
 * blocking hiredis context in a thread is the plainest way to wait on it
 * (as redis-cli and most stream consumers do). The thread only reads: it
 * hands each batch of entries to the loop (a uv_async) and deletes them
 * from the stream; everything else runs on the loop thread. */
#include "bus.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "chat_log.h"
#include "chat_protocol.h"
#include "redis_link.h"

#define INBOX_COUNT 256        /* entries per XREAD */
#define INBOX_BLOCK_MS 500     /* how long a stop may wait for the thread */
#define RETRY_MS 200           /* after the reader lost its connection */
#define REAP_CHUNK "200"       /* users a tick cleans up per dead node */

typedef struct ev_node {
  struct ev_node *next;
  chat__bus_event_t ev;
  char *mem[8];
} ev_node_t;

typedef struct redis_bus {
  chat__bus_t base;          /* first: a chat__bus_t * is a redis_bus_t * */
  uv_loop_t *loop;
  chat__engine_t *engine;
  chat__redis_url_t url;
  char node[128];
  char addr[128];
  char instance[33];
  char alive[400];           /* the liveness key's value:
                              * "INSTANCE ADDR HOST PID" */
  char host[128];            /* gethostname() */
  char inbox[160];
  char ttl[16];
  unsigned ttl_ms;
  chat__bus_event_cb on_event;
  chat__bus_lost_cb on_lost;
  void *arg;
  uv_timer_t tick;
  uv_async_t async;
  int handles;
  int ticking;               /* a tick call is in flight */
  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  ev_node_t *head, **tail;   /* under mu */
  volatile int stop;         /* under mu for writes; read by the thread */
  redisContext *rc;          /* the thread's */
  char last_id[64];          /* the thread's */
  char trim_id[64];          /* under mu: XTRIM MINID this next ("": no) */
  /* The loop turn's carried messages and receipts, sent as one BATCH at
   * its end (on_flush): one script call and one XADD per target node,
   * however many items. */
  uv_check_t flush;
  struct out_batch *out;
} redis_bus_t;

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

#define RB(x) ((redis_bus_t *)(void *)(x))

/* ---- the blocking side (start, the thread) ------------------------------- */

static redisContext *sync_connect(const chat__redis_url_t *u, char *why,
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
  redisSetTimeout(c, (struct timeval){INBOX_BLOCK_MS / 1000 + 3, 0});
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

/* START, as a plain EVAL on the blocking connection (its scripts are not
 * loaded there). Returns 0 when the node is alive, 1 with the holder's
 * value and pttl when another instance holds the name, or -EIO. */
static int start_once(redis_bus_t *b, int force, char *holder, size_t hlen,
                      long long *pttl) {
  const char *argv[] = {"EVAL", chat__bus_lua[CHAT__SC_BUS_START], "0",
                        b->node, b->alive, b->ttl, force ? "1" : "0"};
  redisReply *r = redisCommandArgv(b->rc, 7, argv, NULL);
  int ret = -EIO;
  if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
    if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_INTEGER) {
      b->base.slot = (int)r->element[0]->integer;
      ret = b->base.slot >= 0 ? 0 : -ENOSPC;
    } else if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING) {
      snprintf(holder, hlen, "%s", r->element[0]->str);
      *pttl = atoll(r->element[1]->str ? r->element[1]->str : "0");
      ret = 1;
    }
  } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
    CHAT_ERROR("Redis: starting the node: %s", r->str);
  }
  freeReplyObject(r);
  return ret;
}

/* Whether the liveness key's holder ("INSTANCE ADDR HOST PID") is an
 * earlier life of this node that is certainly gone: it listened where we
 * listen now, or it ran on this host under a pid that no longer exists. */
static int holder_gone(const redis_bus_t *b, const char *holder) {
  char inst[64], addr[128], host[128];
  long pid = 0;
  if (sscanf(holder, "%63s %127s %127s %ld", inst, addr, host, &pid) < 2)
    return 0;
  if (strcmp(addr, b->addr) == 0)
    return 1;
  return pid > 0 && strcmp(host, b->host) == 0 && pid != (long)getpid() &&
         kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Another holder is waited out while its key runs down; one that
 * refreshes it is alive. */
static int join(redis_bus_t *b, char *errbuf, size_t errlen) {
  char holder[400];
  long long pttl = 0, last = -1;
  uint64_t deadline = uv_hrtime() / 1000000 + b->ttl_ms + 2000;
  for (;;) {
    int r = start_once(b, 0, holder, sizeof(holder), &pttl);
    if (r == -ENOSPC) {
      snprintf(errbuf, errlen, "all %d slots are taken: too many live nodes",
               CHAT_BUS_SLOTS);
      return -EIO;
    }
    if (r < 0) {
      snprintf(errbuf, errlen, "Redis: cannot start node %s", b->node);
      return -EIO;
    }
    if (r == 0)
      return 0;
    if (holder_gone(b, holder)) {
      CHAT_INFO("node %s: taking over from its earlier life", b->node);
      return start_once(b, 1, holder, sizeof(holder), &pttl) == 0 ? 0 : -EIO;
    }
    if ((last >= 0 && pttl > last + 100) ||
        uv_hrtime() / 1000000 > deadline) {
      snprintf(errbuf, errlen,
               "another live node is named %s (--node must be unique)",
               b->node);
      return -EEXIST;
    }
    if (last < 0)
      CHAT_INFO("node %s: waiting up to %lld ms for its earlier life to "
                "expire", b->node, pttl);
    last = pttl;
    usleep(100 * 1000);
  }
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

/* The items of a batch entry (B: its x holds netstrings, each an item of
 * netstrings kind, user, a, b, seq, ts, body), each as an event with the
 * entry's id, appended at *tail. */
static ev_node_t **batch_events(const char *id, const char *x, size_t xlen,
                                ev_node_t **tail) {
  static const int slot[7] = {-1, 0, 1, 2, 5, 6, 4};
  const char *p = x, *end = x + xlen, *item;
  size_t ilen;
  while (ns_next(&p, end, &item, &ilen) == 0) {
    const char *q = item, *iend = item + ilen, *v;
    size_t vlen;
    ev_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
      break;
    for (int k = 0; k < 7 && ns_next(&q, iend, &v, &vlen) == 0; k++) {
      if (k == 0)
        n->ev.kind = vlen > 0 ? v[0] : 0;
      else
        n->mem[slot[k]] = dupn(v, vlen);
      if (slot[k] == 4)
        n->ev.body_len = vlen;
    }
    n->mem[7] = dupn(id, strlen(id));
    ev_finish(n);
    *tail = n;
    tail = &n->next;
  }
  return tail;
}

static void ev_free(ev_node_t *n) {
  for (int i = 0; i < 8; i++)
    free(n->mem[i]);
  free(n);
}

/* Reads once; hands the entries over, then deletes them. 0, or -1 when
 * the connection is broken. */
/* XTRIM MINID of what the loop settled (rb_trim), on the reader's own
 * connection: entries before it carried nothing unsettled. */
static void trim_inbox(redis_bus_t *b) {
  char id[64];
  pthread_mutex_lock(&b->mu);
  snprintf(id, sizeof(id), "%s", b->trim_id);
  b->trim_id[0] = '\0';
  pthread_mutex_unlock(&b->mu);
  if (id[0]) {
    const char *argv[] = {"XTRIM", b->inbox, "MINID", id};
    freeReplyObject(redisCommandArgv(b->rc, 4, argv, NULL));
  }
}

static int read_inbox(redis_bus_t *b) {
  char count[16], block[16];
  trim_inbox(b);
  snprintf(count, sizeof(count), "%d", INBOX_COUNT);
  snprintf(block, sizeof(block), "%d", INBOX_BLOCK_MS);
  const char *argv[] = {"XREAD",   "COUNT", count,     "BLOCK",
                        block,     "STREAMS", b->inbox, b->last_id};
  redisReply *r = redisCommandArgv(b->rc, 8, argv, NULL);
  if (r == NULL)
    return -1;
  if (r->type == REDIS_REPLY_ERROR) {
    CHAT_WARN("Redis: reading the inbox: %s", r->str);
    freeReplyObject(r);
    return -1;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
      r->element[0]->type == REDIS_REPLY_ARRAY &&
      r->element[0]->elements == 2) {
    const redisReply *ents = r->element[0]->element[1];
    ev_node_t *first = NULL, **tail = &first;
    for (size_t i = 0; i < ents->elements; i++) {
      const redisReply *e = ents->element[i];
      ev_node_t *n = entry_event(e);
      if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
          e->element[0]->type == REDIS_REPLY_STRING)
        snprintf(b->last_id, sizeof(b->last_id), "%s", e->element[0]->str);
      if (n != NULL && n->ev.kind == 'B') {
        /* a batch: its items are the events */
        if (n->mem[4] != NULL)
          tail = batch_events(n->mem[7], n->mem[4], n->ev.body_len, tail);
        ev_free(n);
      } else if (n != NULL) {
        *tail = n;
        tail = &n->next;
      }
    }
    if (first != NULL) {
      pthread_mutex_lock(&b->mu);
      *b->tail = first;
      b->tail = tail;
      pthread_mutex_unlock(&b->mu);
      uv_async_send(&b->async);
    }
  }
  freeReplyObject(r);
  return 0;
}

static void *reader(void *arg) {
  redis_bus_t *b = arg;
  char why[256];
  while (!b->stop) {
    if (b->rc == NULL) {
      if ((b->rc = sync_connect(&b->url, why, sizeof(why))) == NULL) {
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

static void on_async(uv_async_t *h) {
  redis_bus_t *b = h->data;
  ev_node_t *n, *next;
  pthread_mutex_lock(&b->mu);
  n = b->head;
  b->head = NULL;
  b->tail = &b->head;
  pthread_mutex_unlock(&b->mu);
  for (; n != NULL; n = next) {
    next = n->next;
    if (n->ev.kind != 0 && b->on_event != NULL)
      b->on_event(b->arg, &n->ev);
    ev_free(n);
  }
}

static void tick_done(void *arg, int status, char *const *strs, size_t n,
                      long long unused) {
  redis_bus_t *b = arg;
  long long ival;
  int slot;
  (void)unused;
  b->ticking = 0;
  if (status < 0 || n != 2)
    return; /* Redis away: the engine logs it; the next tick tries again */
  ival = atoll(strs[0]);
  slot = atoi(strs[1]);
  if (slot != b->base.slot) {
    /* its key expired (Redis away): seqs go on in another slot */
    CHAT_WARN("node %s: slot %d was lost; now %d", b->node, b->base.slot,
              slot);
    if (slot >= 0)
      b->base.slot = slot;
  }
  if (ival < 0) {
    CHAT_WARN("node %s was taken for dead by the cluster (Redis away "
              "too long?); its sessions assert themselves again", b->node);
    if (b->on_lost != NULL)
      b->on_lost(b->arg);
  } else if (ival > 0) {
    CHAT_INFO("node %s: cleaned up %lld user(s) of dead nodes", b->node,
              ival);
  }
}

static void on_tick(uv_timer_t *t) {
  redis_bus_t *b = t->data;
  char slot[16];
  snprintf(slot, sizeof(slot), "%d", b->base.slot);
  const char *args[] = {b->node, b->alive, b->ttl, REAP_CHUNK, slot};
  if (b->ticking)
    return;
  if (chat__redis_call(b->engine, CHAT__SC_BUS_TICK, args, NULL, 5, tick_done,
                       b) ==
      0)
    b->ticking = 1;
}

static int call(redis_bus_t *b, chat__redis_script_t s, const char **args,
                int nargs, chat__bus_reply_cb cb, void *arg) {
  args[0] = b->node;
  return chat__redis_call(b->engine, s, args, NULL, nargs,
                          (chat__redis_call_cb)cb, arg);
}

/* The calls: bus.h explains each. */

static void ignore(void *arg, int status, char *const *strs, size_t n,
                   long long ival) {
  (void)arg;
  (void)strs;
  (void)n;
  (void)ival;
  if (status < 0)
    CHAT_WARN("a cluster call failed: %s", chat_strerror(status));
}

static int rb_login(chat__bus_t *bb, const char *user, const char *epoch,
                    const char *status, const char *host, int p2p_port,
                    const char *key, chat__bus_reply_cb cb, void *arg) {
  char port[16];
  snprintf(port, sizeof(port), "%d", p2p_port);
  const char *a[] = {NULL, user, epoch, status, host, port, key};
  return call(RB(bb), CHAT__SC_BUS_LOGIN, a, 7, cb ? cb : ignore, arg);
}

static int rb_rejoin(chat__bus_t *bb, const char *user, const char *epoch,
                     const char *status, const char *host, int p2p_port,
                     const char *key, chat__bus_reply_cb cb, void *arg) {
  char port[16];
  snprintf(port, sizeof(port), "%d", p2p_port);
  const char *a[] = {NULL, user, epoch, status, host, port, key};
  return call(RB(bb), CHAT__SC_BUS_REJOIN, a, 7, cb ? cb : ignore, arg);
}

/* ---- the turn's batch of carried messages and receipts ------------------ */

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

static void on_flush(uv_check_t *h) {
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

/* Adds an item for `to` (fields: kind, to, a, b, seq, ts, body) to the
 * turn's batch. 0 or -ENOMEM (nothing added). */
static int batch_add(redis_bus_t *b, const char *to, const char *const f[7],
                     const size_t flen[7], chat__bus_reply_cb cb, void *arg) {
  out_batch_t *o = b->out;
  size_t total = 0;
  char *item, *p, *t;
  if (o == NULL) {
    if ((o = calloc(1, sizeof(*o))) == NULL)
      return -ENOMEM;
    o->b = b;
    b->out = o;
    uv_check_start(&b->flush, on_flush);
  }
  if (o->n == o->cap) {
    int cap = o->cap ? 2 * o->cap : 64;
    out_item_t *ni = realloc(o->items, (size_t)cap * sizeof(*ni));
    if (ni == NULL)
      return -ENOMEM;
    o->items = ni;
    o->cap = cap;
  }
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
  o->items[o->n++] = (out_item_t){cb, arg, t, item, (size_t)(p - item), 0};
  return 0;
}

/* it (of a batch in flight) into the open batch, which takes its strings
 * over. 0 or -ENOMEM (it keeps them). */
static int batch_add_item(redis_bus_t *b, out_item_t *it) {
  out_batch_t *o = b->out;
  if (o == NULL) {
    if ((o = calloc(1, sizeof(*o))) == NULL)
      return -ENOMEM;
    o->b = b;
    b->out = o;
    uv_check_start(&b->flush, on_flush);
  }
  if (o->n == o->cap) {
    int cap = o->cap ? 2 * o->cap : 64;
    out_item_t *ni = realloc(o->items, (size_t)cap * sizeof(*ni));
    if (ni == NULL)
      return -ENOMEM;
    o->items = ni;
    o->cap = cap;
  }
  o->items[o->n] = *it;
  o->items[o->n++].pushing = 0;
  it->cb = NULL;
  it->to = NULL;
  it->payload = NULL;
  return 0;
}

static int rb_msg(chat__bus_t *bb, const char *to, const char *from,
                  const char *msg_id, uint64_t seq, int64_t ts,
                  const char *body, size_t body_len, chat__bus_reply_cb cb,
                  void *arg) {
  char seqs[24], tss[24];
  snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
  snprintf(tss, sizeof(tss), "%lld", (long long)ts);
  const char *f[7] = {"M", to, from, msg_id, seqs, tss, body};
  size_t len[7] = {1, strlen(to), strlen(from), strlen(msg_id),
                   strlen(seqs), strlen(tss), body_len};
  return batch_add(RB(bb), to, f, len, cb, arg);
}

static void rb_trim(chat__bus_t *bb, const char *id) {
  redis_bus_t *b = RB(bb);
  pthread_mutex_lock(&b->mu);
  snprintf(b->trim_id, sizeof(b->trim_id), "%s", id);
  pthread_mutex_unlock(&b->mu);
}

static int rb_statuses(chat__bus_t *bb, const char *const *users, size_t n,
                       chat__bus_reply_cb cb, void *arg) {
  redis_bus_t *b = RB(bb);
  char **v = calloc(n + 1, sizeof(*v));
  size_t *len = calloc(n + 1, sizeof(*len));
  int bad = v == NULL || len == NULL;
  for (size_t i = 0; !bad && i <= n; i++) {
    v[i] = strdup(i == 0 ? b->node : users[i - 1]);
    bad = v[i] == NULL;
    len[i] = bad ? 0 : strlen(v[i]);
  }
  if (bad) {
    for (size_t i = 0; v != NULL && i <= n; i++)
      free(v[i]);
    free(v);
    free(len);
    return -ENOMEM;
  }
  return chat__redis_callv(b->engine, CHAT__SC_BUS_STATUSES, v, len,
                           (int)n + 1, (chat__redis_call_cb)cb, arg);
}

static int rb_connect(chat__bus_t *bb, const char *user,
                      const char *expect_line, chat__bus_reply_cb cb,
                      void *arg) {
  const char *a[] = {NULL, user, expect_line};
  return call(RB(bb), CHAT__SC_BUS_CONNECT, a, 3, cb, arg);
}

static int rb_status(chat__bus_t *bb, const char *user, const char *epoch,
                     const char *status) {
  const char *a[] = {NULL, user, epoch, status};
  return call(RB(bb), CHAT__SC_BUS_STATUS, a, 4, ignore, NULL);
}

static int rb_logout(chat__bus_t *bb, const char *user, const char *epoch) {
  const char *a[] = {NULL, user, epoch};
  return call(RB(bb), CHAT__SC_BUS_LOGOUT, a, 3, ignore, NULL);
}

static int rb_route(chat__bus_t *bb, const char *user, char kind,
                    const char *x, const char *y, chat__bus_reply_cb cb,
                    void *arg) {
  if (kind == 'r') { /* receipts, as many as messages: batched */
    const char *f[7] = {"r", user, x ? x : "", y ? y : "", "", "", ""};
    size_t len[7] = {1, strlen(user), strlen(f[2]), strlen(f[3]), 0, 0, 0};
    return batch_add(RB(bb), user, f, len, cb, arg);
  }
  char k[2] = {kind, '\0'};
  const char *a[] = {NULL, user, k, x ? x : "", y ? y : ""};
  return call(RB(bb), CHAT__SC_BUS_ROUTE, a, 5, cb ? cb : ignore, arg);
}

static int rb_group(chat__bus_t *bb, const char *group, uint64_t seq,
                    chat__bus_reply_cb cb, void *arg) {
  char seqs[24];
  snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
  const char *a[] = {NULL, group, seqs};
  return call(RB(bb), CHAT__SC_BUS_GROUP, a, 3, cb ? cb : ignore, arg);
}


static void rb_free(chat__bus_t *bb);

static const chat__bus_type_t redis_bus_type = {
    .login = rb_login,
    .rejoin = rb_rejoin,
    .status = rb_status,
    .logout = rb_logout,
    .route = rb_route,
    .msg = rb_msg,
    .statuses = rb_statuses,
    .connect = rb_connect,
    .group = rb_group,
    .trim = rb_trim,
    .free = rb_free,
};

/* ---- life ------------------------------------------------------------------ */

int chat__bus_redis_new(uv_loop_t *loop, chat__engine_t *engine, const char *node,
                  const char *addr, unsigned ttl_ms, chat__bus_event_cb on_event,
                  chat__bus_lost_cb on_lost, void *arg, chat__bus_t **out,
                  char *errbuf, size_t errlen) {
  redis_bus_t *b;
  unsigned char raw[16];
  int r;

  *out = NULL;
  if ((b = calloc(1, sizeof(*b))) == NULL)
    return -ENOMEM;
  b->base.type = &redis_bus_type;
  b->base.node = b->node;
  b->loop = loop;
  b->engine = engine;
  b->url = ((chat__redis_engine_t *)(void *)engine)->url;
  snprintf(b->node, sizeof(b->node), "%s", node);
  snprintf(b->addr, sizeof(b->addr), "%s", addr);
  snprintf(b->inbox, sizeof(b->inbox), "{node:%s}:inbox", node);
  b->ttl_ms = ttl_ms;
  snprintf(b->ttl, sizeof(b->ttl), "%u", ttl_ms);
  randombytes_buf(raw, sizeof(raw));
  sodium_bin2hex(b->instance, sizeof(b->instance), raw, sizeof(raw));
  b->on_event = on_event;
  b->on_lost = on_lost;
  b->arg = arg;
  snprintf(b->last_id, sizeof(b->last_id), "0");
  b->tail = &b->head;
  pthread_mutex_init(&b->mu, NULL);
  if ((b->rc = sync_connect(&b->url, errbuf, errlen)) == NULL) {
    pthread_mutex_destroy(&b->mu);
    free(b);
    return -EIO;
  }
  if (gethostname(b->host, sizeof(b->host) - 1) != 0 || !b->host[0])
    snprintf(b->host, sizeof(b->host), "-");
  for (char *p = b->host; *p; p++)
    if (*p == ' ')
      *p = '_';
  snprintf(b->alive, sizeof(b->alive), "%s %s %s %ld", b->instance, b->addr,
           b->host, (long)getpid());
  if ((r = join(b, errbuf, errlen)) < 0) {
    redisFree(b->rc);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return r;
  }
  uv_timer_init(loop, &b->tick);
  uv_async_init(loop, &b->async, on_async);
  uv_check_init(loop, &b->flush);
  b->tick.data = b->async.data = b->flush.data = b;
  b->handles = 3;
  if (pthread_create(&b->thread, NULL, reader, b) != 0) {
    snprintf(errbuf, errlen, "cannot start the inbox reader");
    b->stop = 1;
  } else {
    b->thread_started = 1;
  }
  unsigned every = ttl_ms / 4 > 0 ? ttl_ms / 4 : 1;
  uv_timer_start(&b->tick, on_tick, every, every);
  uv_unref((uv_handle_t *)&b->tick);
  uv_unref((uv_handle_t *)&b->async);
  CHAT_INFO("node %s joined the cluster in slot %d (dead after %u ms "
            "without a tick)", b->node, b->base.slot, ttl_ms);
  *out = &b->base;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  redis_bus_t *b = h->data;
  if (--b->handles == 0) {
    pthread_mutex_destroy(&b->mu);
    free(b);
  }
}

static void rb_free(chat__bus_t *bb) {
  redis_bus_t *b = RB(bb);
  ev_node_t *n, *next;
  char why[256];
  if (b == NULL)
    return;
  b->stop = 1;
  if (b->thread_started)
    pthread_join(b->thread, NULL);
  /* A clean stop: the others need not wait for the key to expire. Its
   * users' entries went with their sessions' logouts. */
  if (b->rc == NULL)
    b->rc = sync_connect(&b->url, why, sizeof(why));
  if (b->rc != NULL) {
    redisReply *r = redisCommand(b->rc, "DEL {node:%s}:alive", b->node);
    freeReplyObject(r);
    redisFree(b->rc);
    b->rc = NULL;
  }
  for (n = b->head; n != NULL; n = next) {
    next = n->next;
    ev_free(n);
  }
  b->head = NULL;
  uv_timer_stop(&b->tick);
  if (b->out != NULL) { /* the last turn's items: their sessions are gone */
    batch_fail(b->out, -ECANCELED);
    batch_free(b->out);
  }
  b->out = NULL;
  uv_close((uv_handle_t *)&b->flush, on_closed);
  uv_close((uv_handle_t *)&b->tick, on_closed);
  uv_close((uv_handle_t *)&b->async, on_closed);
}
