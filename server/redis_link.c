/* redis_link.c -- the Redis engine's connection on the loop (hiredis async
 * with a libuv adapter of our own, below): connect, a handshake before
 * anything else is sent (SELECT, the scripts, the persistence settings
 * again, since the Redis that comes back may not be the one checked at
 * start), reconnect
 * with a doubling backoff, a deadline on connecting and on replies (a
 * Redis that stops answering is dropped like one that went away), and
 * driving the connection by hand for flush_sync. */
#include "redis_link.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sds.h>

#include "chat_log.h"

/* ---- the adapter ----------------------------------------------------------
 * hiredis's adapters/libuv.h, with two changes. A poll error is handed to
 * hiredis as an event on the socket, so it reads the error itself: libuv
 * reports POLLERR as status UV_EBADF and stops the handle, which the stock
 * adapter ignores -- a connect refused (Redis down) was then never noticed
 * until a deadline. And the handle is unreferenced: it does not keep the
 * loop alive; the deadline timer does while anything is awaited, so a
 * server that stops with nothing in flight is not held by an idle
 * connection. */

typedef struct uv_events {
  redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
  uv_poll_t handle;
  int events;
} uv_events_t;

static void ev_poll(uv_poll_t *h, int status, int events) {
  uv_events_t *p = h->data;
  if (status < 0)
    events = UV_READABLE | UV_WRITABLE; /* hiredis finds the error */
  if (p->ac != NULL && (events & UV_WRITABLE))
    redisAsyncHandleWrite(p->ac);
  if (p->ac != NULL && (events & UV_READABLE))
    redisAsyncHandleRead(p->ac);
  if (status < 0 && p->ac != NULL && p->events != 0)
    uv_poll_start(&p->handle, p->events, ev_poll); /* libuv stopped it */
}

static void ev_update(uv_events_t *p, int add, int flag) {
  p->events = add ? p->events | flag : p->events & ~flag;
  if (p->events != 0)
    uv_poll_start(&p->handle, p->events, ev_poll);
  else
    uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d) { ev_update(d, 1, UV_READABLE); }
static void ev_del_read(void *d) { ev_update(d, 0, UV_READABLE); }
static void ev_add_write(void *d) { ev_update(d, 1, UV_WRITABLE); }
static void ev_del_write(void *d) { ev_update(d, 0, UV_WRITABLE); }

static void ev_closed(uv_handle_t *h) { free(h->data); }

static void ev_cleanup(void *d) {
  uv_events_t *p = d;
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->handle, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  uv_events_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return -EIO;
  }
  uv_unref((uv_handle_t *)&p->handle);
  p->handle.data = p;
  p->ac = ac;
  ac->ev.data = p;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_reconnect(uv_timer_t *t) {
  chat__redis_link_start(t->data);
}

/* Down: requests fail at once (engine_redis.c) until the next attempt. */
static void went_down(chat__redis_engine_t *e, const char *why) {
  e->ac = NULL;
  e->state = CHAT__LINK_DOWN;
  e->handshake = 0;
  uv_timer_stop(&e->deadline);
  if (e->freeing)
    return;
  if (e->was_ready) {
    CHAT_ERROR("lost the connection to Redis at %s (%s); reconnecting",
               e->where, why);
    e->was_ready = 0;
  } else {
    CHAT_DEBUG("Redis at %s: %s; retrying in %u ms", e->where, why,
               e->reconnect_ms);
  }
  uv_timer_start(&e->reconnect, on_reconnect, e->reconnect_ms, 0);
  e->reconnect_ms *= 2;
  if (e->reconnect_ms > CHAT__REDIS_RECONNECT_MAX_MS)
    e->reconnect_ms = CHAT__REDIS_RECONNECT_MAX_MS;
  chat__redis_arm(e); /* batches held while connecting fail now */
}

void chat__redis_link_kill(chat__redis_engine_t *e, const char *why) {
  redisAsyncContext *ac = e->ac;
  if (ac == NULL)
    return;
  CHAT_WARN("dropping the connection to Redis at %s: %s", e->where, why);
  /* From a reply callback hiredis frees it once the callback returns;
   * otherwise now. Either way pending callbacks get NULL, then
   * on_disconnect runs -- but only for a connection that was up. */
  int in_cb = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
  redisAsyncFree(ac); /* ac may be gone now */
  if (!in_cb && e->ac == ac)
    went_down(e, why); /* it never connected: no on_disconnect */
}

static void on_deadline(uv_timer_t *t) {
  chat__redis_engine_t *e = t->data;
  chat__redis_link_kill(e, e->state == CHAT__LINK_CONNECTING
                               ? "no answer to the handshake in time"
                               : "no reply in time");
}

int chat__redis_link_send(chat__redis_engine_t *e, chat__rcmd_t *c,
                          redisCallbackFn *fn, void *priv) {
  int r = 0;
  if (c->oom)
    r = -ENOMEM;
  else if (e->ac == NULL ||
           redisAsyncCommandArgv(e->ac, fn, priv, c->argc, c->argv,
                                 c->len) != REDIS_OK)
    r = -EIO;
  chat__rcmd_free(c);
  return r;
}

int chat__redis_link_sendv(chat__redis_engine_t *e, int argc,
                           const char **argv, const size_t *lens,
                           redisCallbackFn *fn, void *priv) {
  if (e->ac == NULL ||
      redisAsyncCommandArgv(e->ac, fn, priv, argc, argv, lens) != REDIS_OK)
    return -EIO;
  return 0;
}

int chat__redis_link_sendf(chat__redis_engine_t *e, const char *cmd,
                           size_t len, redisCallbackFn *fn, void *priv) {
  if (e->ac == NULL ||
      redisAsyncFormattedCommand(e->ac, fn, priv, cmd, len) != REDIS_OK)
    return -EIO;
  return 0;
}

void chat__redis_link_expect(chat__redis_engine_t *e, int on) {
  if (e->state != CHAT__LINK_READY)
    return; /* connecting has its own deadline */
  if (on)
    uv_timer_start(&e->deadline, on_deadline, CHAT__REDIS_REPLY_MS, 0);
  else
    uv_timer_stop(&e->deadline);
}

/* ---- the handshake ------------------------------------------------------- */

/* Which handshake command a reply answers: SELECT, SCRIPT LOAD i, CONFIG
 * GET i. */
enum { HS_SELECT = 0, HS_SCRIPT = 1, HS_CONFIG = HS_SCRIPT + CHAT__SC_COUNT };

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv) {
  chat__redis_engine_t *e = ac->data;
  const redisReply *r = reply;
  int i = (int)(intptr_t)priv;
  char why[300] = "";

  if (e == NULL || e->ac != ac || r == NULL)
    return; /* going away: went_down says so */
  if (r->type == REDIS_REPLY_ERROR) {
    snprintf(why, sizeof(why), "%s", r->str);
  } else if (i >= HS_SCRIPT && i < HS_CONFIG) {
    if (r->type != REDIS_REPLY_STRING ||
        strcmp(r->str, e->shas[i - HS_SCRIPT]) != 0)
      snprintf(why, sizeof(why), "SCRIPT LOAD gave another SHA1");
  } else if (i >= HS_CONFIG) {
    if (chat__redis_check_setting(i - HS_CONFIG, r, why, sizeof(why)) != 0)
      CHAT_ERROR("Redis at %s: %s", e->where, why);
  }
  if (why[0] != '\0') {
    chat__redis_link_kill(e, why);
    return;
  }
  if (--e->handshake > 0)
    return;
  uv_timer_stop(&e->deadline);
  e->state = CHAT__LINK_READY;
  e->reconnect_ms = CHAT__REDIS_RECONNECT_MIN_MS;
  if (!e->was_ready)
    CHAT_INFO("connected to Redis at %s", e->where);
  e->was_ready = 1;
  chat__redis_arm(e); /* batches held meanwhile go now */
}

static int handshake(chat__redis_engine_t *e) {
  chat__rcmd_t c;
  char db[16];
  int r;

  snprintf(db, sizeof(db), "%d", e->url.db);
  memset(&c, 0, sizeof(c));
  c.argc = 2;
  c.argv[0] = "SELECT";
  c.argv[1] = db;
  c.len[0] = 6;
  c.len[1] = strlen(db);
  e->handshake = 0;
  if ((r = chat__redis_link_send(e, &c, on_handshake,
                                 (void *)(intptr_t)HS_SELECT)) < 0)
    return r;
  e->handshake++;
  for (int i = 0; i < CHAT__SC_COUNT; i++) {
    memset(&c, 0, sizeof(c));
    c.argc = 3;
    c.argv[0] = "SCRIPT";
    c.argv[1] = "LOAD";
    c.argv[2] = chat__redis_script_src(i);
    for (int k = 0; k < 3; k++)
      c.len[k] = strlen(c.argv[k]);
    if ((r = chat__redis_link_send(e, &c, on_handshake,
                                   (void *)(intptr_t)(HS_SCRIPT + i))) < 0)
      return r;
    e->handshake++;
  }
  for (int i = 0; !e->unsafe && i < CHAT__REDIS_SETTINGS; i++) {
    memset(&c, 0, sizeof(c));
    c.argc = 3;
    c.argv[0] = "CONFIG";
    c.argv[1] = "GET";
    c.argv[2] = chat__redis_setting_name(i);
    for (int k = 0; k < 3; k++)
      c.len[k] = strlen(c.argv[k]);
    if ((r = chat__redis_link_send(e, &c, on_handshake,
                                   (void *)(intptr_t)(HS_CONFIG + i))) < 0)
      return r;
    e->handshake++;
  }
  return 0;
}

/* ---- connecting ---------------------------------------------------------- */

void chat__redis_link_start(chat__redis_engine_t *e) {
  redisAsyncContext *ac;

  if (e->freeing || e->ac != NULL)
    return;
  uv_timer_stop(&e->reconnect);
  /* Commands given before the connection is up wait in hiredis's buffer,
   * so the handshake goes first on the wire, before any batch. */
  ac = redisAsyncConnect(e->url.host, e->url.port);
  if (ac == NULL) {
    went_down(e, "out of memory");
    return;
  }
  if (ac->err) {
    char why[128];
    snprintf(why, sizeof(why), "%s", ac->errstr);
    redisAsyncFree(ac);
    went_down(e, why);
    return;
  }
  if (ev_attach(ac, e->loop) != 0) {
    redisAsyncFree(ac);
    went_down(e, "cannot watch its socket");
    return;
  }
  ac->data = e;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  e->ac = ac;
  e->state = CHAT__LINK_CONNECTING;
  uv_timer_start(&e->deadline, on_deadline, CHAT__REDIS_CONNECT_MS, 0);
  if (handshake(e) < 0)
    chat__redis_link_kill(e, "cannot send the handshake");
}

static void on_connect(const redisAsyncContext *ac, int status) {
  chat__redis_engine_t *e = ac->data;
  if (status == REDIS_OK || e == NULL || e->ac != ac)
    return;
  /* hiredis frees it right after this (with NULL for its callbacks) */
  went_down(e, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  chat__redis_engine_t *e = ac->data;
  if (e == NULL || e->ac != ac)
    return;
  went_down(e, status == REDIS_OK ? "dropped"
                                  : ac->errstr[0] ? ac->errstr
                                                  : "connection lost");
}

/* ---- by hand ------------------------------------------------------------- */

int chat__redis_link_drive(chat__redis_engine_t *e, uint64_t deadline_ms) {
  redisAsyncContext *ac = e->ac;
  uint64_t now = now_ms();
  struct pollfd p;

  if (ac == NULL)
    return 0;
  if (now >= deadline_ms)
    return -ETIMEDOUT;
  p.fd = ac->c.fd;
  p.events = POLLIN;
  if (!(ac->c.flags & REDIS_CONNECTED) || sdslen(ac->c.obuf) > 0)
    p.events |= POLLOUT;
  p.revents = 0;
  int r = poll(&p, 1, (int)(deadline_ms - now));
  if (r < 0 && errno != EINTR)
    return -ETIMEDOUT; /* treated as a dead connection */
  if (r == 0)
    return -ETIMEDOUT;
  /* As the adapter does on the loop: each call may end the connection,
   * after which e->ac is no longer ac. */
  if (p.revents & (POLLOUT | POLLERR | POLLHUP))
    redisAsyncHandleWrite(ac);
  if (e->ac == ac && (p.revents & (POLLIN | POLLERR | POLLHUP)))
    redisAsyncHandleRead(ac);
  return 0;
}

void chat__redis_link_close(chat__redis_engine_t *e) {
  redisAsyncContext *ac = e->ac;
  if (ac != NULL) {
    redisAsyncFree(ac); /* on_disconnect: freeing, so no reconnect */
    e->ac = NULL;
  }
  e->state = CHAT__LINK_DOWN;
}
