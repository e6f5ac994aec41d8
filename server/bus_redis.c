/* bus_redis.c -- bus.h on Redis: the calls of the cluster scripts
 * (bus_lua.c) through the engine's batches, the liveness timer, and a
 * node's start (its name taken, what an earlier life left cleaned up) and
 * stop. The inbox reader is bus_inbox.c; each loop turn's carried messages
 * and receipts, bus_batch.c. */
#include "bus_redis_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "chat_log.h"
#include "chat_protocol.h"

#define REAP_CHUNK "200"       /* users a tick cleans up per dead node */

/* ---- start ---------------------------------------------------------------- */

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

/* ---- liveness and the calls ----------------------------------------------- */

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
  char slot[16], grace[16];
  snprintf(slot, sizeof(slot), "%d", b->base.slot);
  snprintf(grace, sizeof(grace), "%d", CHAT__BUS_DRAIN_GRACE_MS);
  const char *args[] = {b->node, b->alive, b->ttl, REAP_CHUNK, slot, grace};
  if (b->ticking)
    return;
  if (chat__redis_call(b->engine, CHAT__SC_BUS_TICK, args, NULL, 6, tick_done,
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

/* v in decimal at buf (room for 21 bytes), NUL-terminated; its length. */
static size_t u64_put(char *buf, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do
    tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  for (size_t i = 0; i < n; i++)
    buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
  return n;
}

static int rb_msg(chat__bus_t *bb, const char *to, const char *from,
                  const char *msg_id, uint64_t seq, int64_t ts,
                  const char *body, size_t body_len, size_t wire,
                  chat__bus_reply_cb cb, void *arg) {
  char seqs[24], tss[24], wires[24];
  /* not snprintf: it was about 5 % of the sending node's CPU */
  const char *f[8] = {"M", to, from, msg_id, seqs, tss, body, wires};
  size_t len[8] = {1, strlen(to), strlen(from), strlen(msg_id),
                   u64_put(seqs, seq), u64_put(tss, ts < 0 ? 0 : (uint64_t)ts),
                   body_len, u64_put(wires, wire)};
  return chat__bus_batch_add(RB(bb), to, f, len, 8, 0, cb, arg);
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
  if (kind == 'r' || kind == 'R') { /* receipts, as many as messages:
                                      * batched */
    const char *f[7] = {"r", user, x ? x : "", y ? y : "", "", "", ""};
    size_t len[7] = {1, strlen(user), strlen(f[2]), strlen(f[3]), 0, 0, 0};
    return chat__bus_batch_add(RB(bb), user, f, len, 7, kind == 'R', cb,
                               arg);
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
  chat__route_cache_init(&b->routes, CHAT__BUS_ROUTE_TTL_MS,
                         CHAT__BUS_ROUTES_MAX);
  pthread_mutex_init(&b->mu, NULL);
  if ((b->rc = chat__bus_sync_connect(&b->url, errbuf, errlen)) == NULL) {
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
  uv_async_init(loop, &b->async, chat__bus_on_async);
  uv_check_init(loop, &b->flush);
  b->tick.data = b->async.data = b->flush.data = b;
  b->handles = 3;
  if (pthread_create(&b->thread, NULL, chat__bus_reader, b) != 0) {
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
    chat__route_cache_free(&b->routes);
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
    b->rc = chat__bus_sync_connect(&b->url, why, sizeof(why));
  if (b->rc != NULL) {
    redisReply *r = redisCommand(b->rc, "DEL {node:%s}:alive", b->node);
    freeReplyObject(r);
    redisFree(b->rc);
    b->rc = NULL;
  }
  for (n = b->head; n != NULL; n = next) {
    next = n->next;
    chat__bus_ev_free(n);
  }
  b->head = NULL;
  uv_timer_stop(&b->tick);
  chat__bus_batch_cancel(b, -ECANCELED); /* the last turn's: sessions gone */
  uv_close((uv_handle_t *)&b->flush, on_closed);
  uv_close((uv_handle_t *)&b->tick, on_closed);
  uv_close((uv_handle_t *)&b->async, on_closed);
}
