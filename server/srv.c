/* srv.c -- the server core: start-up, sessions and their end, presence,
 * the periodic sweep, and the helpers the handlers share. Delivery of held
 * messages is in deliver.c, loading from the engine in resident.c. */
#include "srv.h"
#include "cluster.h"

#include <errno.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_log.h"
#include "tickets.h"

void chat_server_config_default(chat_server_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->heartbeat = CHAT_HEARTBEAT_DEFAULT;
  cfg->max_frame = CHAT_MAX_FRAME_DEFAULT;
  cfg->max_output = CHAT_MAX_OUTPUT_DEFAULT;
  cfg->max_clients = CHAT_MAX_CLIENTS_DEFAULT;
  cfg->rate_limit = CHAT_RATE_LIMIT_DEFAULT;
  cfg->hash_cost = CHAT_HASH_INTERACTIVE;
  cfg->offline_quota = CHAT_OFFLINE_QUOTA_DEFAULT;
  cfg->login_timeout = CHAT_LOGIN_TIMEOUT_DEFAULT;
}

int64_t chat__srv_now_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int chat__srv_init(chat__srv_t *srv, uv_loop_t *loop,
                   const chat_server_config_t *cfg, chat__engine_t *engine) {
  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->cfg = *cfg;
  srv->engine = engine;
  srv->sessions.next = srv->sessions.prev = &srv->sessions;
  chat__registry_init(&srv->reg);
  chat__mailbox_init(&srv->mb);
  chat__hmap_init(&srv->loads);
  chat__hmap_init(&srv->awaited);
  if (sodium_init() < 0)
    return -EIO;
  /* The store is read per user on demand: start-up needs only the seq. */
  uint64_t max_seq = 0;
  int r = engine->type->max_seq(engine, &max_seq);
  if (r < 0) {
    chat__srv_free(srv);
    return r;
  }
  srv->next_seq = max_seq + 1;
  srv->seq_slot = -1; /* cluster mode: rebased into its slot at first use */
  engine->type->on_fail(engine, chat__srv_commit_failed, srv);
  /* Unknown users are verified against this, so a failed login costs the
   * same whether the name exists or not. Once, before serving. */
  char pw[33];
  chat__ticket_new(pw); /* 32 random hex digits */
  r = chat__hash_make_sync(cfg->hash_cost, pw, srv->dummy_hash,
                           sizeof(srv->dummy_hash));
  if (r < 0) {
    chat__srv_free(srv);
    return r;
  }
  CHAT_INFO("store opened (%s engine), next seq %llu", engine->type->name,
            (unsigned long long)srv->next_seq);
  return 0;
}

void chat__srv_free(chat__srv_t *srv) {
  chat__cluster_carry_free(srv);
  chat__srv_loads_free(srv);
  chat__hmap_free(&srv->awaited);
  chat__mailbox_free(&srv->mb);
  chat__registry_free(&srv->reg);
  free(srv->line);
  free(srv->body);
  srv->line = srv->body = NULL;
  srv->line_cap = 0;
}

char *chat__srv_line_buf(chat__srv_t *srv, size_t body_len, size_t *cap) {
  size_t need = chat_line_max(body_len);
  if (need > srv->line_cap) {
    /* Grown once to the largest body seen (at most ~100 KiB), then kept. */
    char *p = realloc(srv->line, need);
    if (p == NULL)
      return NULL;
    srv->line = p;
    srv->line_cap = need;
  }
  *cap = srv->line_cap;
  return srv->line;
}

/* ---- Sessions ------------------------------------------------------------ */

chat__session_t *chat__srv_session_new(chat__srv_t *srv,
                                       const chat__sink_t *sink, void *ctx,
                                       const char *host) {
  chat__session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->srv = srv;
  s->sink = sink;
  s->ctx = ctx;
  s->refs = 1;
  snprintf(s->host, sizeof(s->host), "%s", host ? host : "");
  s->last_read_ms = s->opened_ms = uv_now(srv->loop);
  chat__ratelimit_init(&s->rl, srv->cfg.rate_limit, s->last_read_ms);
  s->next = &srv->sessions;
  s->prev = srv->sessions.prev;
  s->prev->next = s;
  srv->sessions.prev = s;
  srv->nsessions++;
  json_t *w = chat_ev_welcome(CHAT_SRV_NAME, srv->cfg.heartbeat,
                              srv->cfg.max_frame);
  chat__session_send_new(s, w);
  return s;
}

void chat__session_ref(chat__session_t *s) { s->refs++; }

void chat__session_unref(chat__session_t *s) {
  if (--s->refs > 0)
    return;
  free(s->p2p_host);
  const chat__sink_t *sink = s->sink;
  void *ctx = s->ctx;
  free(s);
  if (sink->release)
    sink->release(ctx);
}

int chat__session_send(chat__session_t *s, const json_t *obj) {
  if (s->ended || obj == NULL)
    return obj == NULL ? -ENOMEM : -EPIPE;
  if (chat_log_get_level() >= CHAT_LOG_DEBUG) {
    char *t = json_dumps(obj, JSON_COMPACT);
    CHAT_DEBUG("-> %s %s", s->user ? s->user->name : s->host, t ? t : "?");
    free(t);
  }
  return s->sink->send(s->ctx, obj);
}

int chat__session_send_line(chat__session_t *s, const char *line, size_t len) {
  if (s->ended)
    return -EPIPE;
  if (chat_log_get_level() >= CHAT_LOG_DEBUG)
    CHAT_DEBUG("-> %s %.*s", s->user ? s->user->name : s->host,
               (int)(len > 0 ? len - 1 : 0), line);
  return s->sink->send_line(s->ctx, line, len);
}

int chat__session_send_new(chat__session_t *s, json_t *obj) {
  int r = chat__session_send(s, obj);
  json_decref(obj);
  return r;
}

void chat__session_close(chat__session_t *s) {
  if (s->closing)
    return;
  s->closing = 1;
  if (s->hash_req != NULL) /* its answer could not be sent anyway */
    chat__hash_cancel(s->hash_req);
  s->sink->close(s->ctx);
}

void chat__session_error(chat__session_t *s, const json_t *id, int code,
                         const char *text) {
  if (text == NULL)
    text = chat_strerror(-code);
  chat__session_send_new(s, chat_reply_error(id, code, text));
  if (chat_code_is_protocol_error(code) &&
      ++s->proto_errors >= CHAT_MAX_PROTOCOL_ERRORS) {
    CHAT_INFO("%s: %d protocol errors, closing",
              s->user ? s->user->name : s->host, (int)s->proto_errors);
    chat__session_close(s);
  }
}

json_t *chat__srv_user_list(chat__user_t *const *users, uint32_t n) {
  json_t *list = json_array();
  for (uint32_t i = 0; list != NULL && i < n; i++)
    json_array_append_new(
        list, json_pack("{s:s,s:s}", "user", users[i]->name, "status",
                        chat_status_name(chat__srv_status_of(users[i]))));
  return list;
}

int chat__srv_reply_list(chat__session_t *s, const json_t *id, const char *key,
                         json_t *list) {
  json_t *ok = list != NULL ? chat_reply_ok(id) : NULL;
  if (ok == NULL) {
    json_decref(list);
    return -ENOMEM;
  }
  json_object_set_new(ok, key, list);
  chat__session_send_new(s, ok);
  return 0;
}

/* ---- Presence and delivery ----------------------------------------------- */

/* ---- Seqs ------------------------------------------------------------------ */

/* A seq in cluster mode: the ms since CHAT_SEQ_EPOCH_MS, this node's slot
 * and a counter (a hybrid logical clock): unique, since no two live nodes
 * share a slot and each node's seqs increase; ordered by time across
 * nodes, so held messages from different senders on different nodes come
 * oldest first, as on one node. More than 4096 in one ms move on to the
 * next ms; the clock never goes back. */
#define SEQ_CTR_BITS 12
#define SEQ_SLOT_BITS 10
#define SEQ_MS_SHIFT (SEQ_CTR_BITS + SEQ_SLOT_BITS)
#define CHAT_SEQ_EPOCH_MS 1767225600000LL /* 2026-01-01 */

static uint64_t seq_at(uint64_t ms, int slot) {
  return ms << SEQ_MS_SHIFT | (uint64_t)slot << SEQ_CTR_BITS;
}

/* next_seq is in this node's slot and not below floor + 1. */
static void seq_rebase(chat__srv_t *srv, uint64_t floor) {
  uint64_t next = seq_at(floor >> SEQ_MS_SHIFT, srv->bus->slot);
  if (next <= floor)
    next = seq_at((floor >> SEQ_MS_SHIFT) + 1, srv->bus->slot);
  if (next > srv->next_seq || srv->seq_slot != srv->bus->slot)
    srv->next_seq = next;
  srv->seq_slot = srv->bus->slot;
}

uint64_t chat__srv_take_seq(chat__srv_t *srv) {
  if (srv->bus == NULL)
    return srv->next_seq++;
  if (srv->seq_slot != srv->bus->slot)
    seq_rebase(srv, srv->next_seq);
  int64_t ms = chat__srv_now_wall_ms() - CHAT_SEQ_EPOCH_MS;
  uint64_t now = seq_at(ms > 0 ? (uint64_t)ms : 0, srv->seq_slot);
  if (now > srv->next_seq)
    srv->next_seq = now;
  uint64_t seq = srv->next_seq++;
  if ((srv->next_seq & ((1u << SEQ_CTR_BITS) - 1)) == 0) /* counter full */
    srv->next_seq = seq_at((seq >> SEQ_MS_SHIFT) + 1, srv->seq_slot);
  return seq;
}

void chat__srv_seq_above(chat__srv_t *srv, uint64_t seq) {
  if (srv->bus != NULL && seq >= srv->next_seq)
    seq_rebase(srv, seq);
}

chat_status_t chat__srv_status_of(const chat__user_t *u) {
  if (u->session)
    return (chat_status_t)u->session->status;
  return u->rstatus ? (chat_status_t)u->rstatus : CHAT_STATUS_OFFLINE;
}

void chat__srv_presence_to_contacts(chat__srv_t *srv, chat__user_t *u,
                                    chat_status_t status) {
  json_t *ev = NULL;
  for (uint32_t i = 0; i < u->ncontacts; i++) {
    chat__user_t *c = u->contacts[i];
    if (c->session == NULL)
      continue;
    if (ev == NULL && (ev = chat_ev_presence(u->name, status)) == NULL)
      return;
    chat__session_send(c->session, ev);
  }
  json_decref(ev);
}

/* u's session ends: what it was pushed and has not acked goes to the
 * store (written now if it was not), to be delivered again, in order, at
 * its next login; memory keeps none of it. */
void chat__srv_unload_mailbox(chat__srv_t *srv, chat__user_t *u) {
  chat__held_t *h;
  while ((h = u->mb_head) != NULL) {
    chat__srv_write_held(srv, h);
    chat__srv_drop_held(srv, h, 0);
  }
  u->store_more = 1;
  u->store_after = 0;
}

void chat__srv_session_end(chat__srv_t *srv, chat__session_t *s,
                           const char *why) {
  if (s->ended)
    return;
  s->ended = 1;
  if (s->hash_req != NULL) /* nobody is left to answer */
    chat__hash_cancel(s->hash_req);
  s->next->prev = s->prev;
  s->prev->next = s->next;
  s->next = s->prev = s;
  srv->nsessions--;
  chat__user_t *u = s->user;
  if (u && u->session == s) { /* not for a session that was kicked */
    CHAT_INFO("logout %s (%s)", u->name, why);
    u->session = NULL;
    srv->nlogged_in--;
    chat__srv_unload_mailbox(srv, u);
    if (!s->moved) /* else its session elsewhere speaks for it */
      chat__srv_presence_to_contacts(srv, u, CHAT_STATUS_OFFLINE);
    chat__cluster_logout(srv, s);
    chat__registry_unfill(u); /* a stub again: its lists are the store's */
  }
  chat__session_close(s);
}

void chat__srv_sweep(chat__srv_t *srv, uint64_t now_ms) {
  uint64_t limit = (uint64_t)srv->cfg.heartbeat * 3000;
  uint64_t login_limit = (uint64_t)srv->cfg.login_timeout * 1000;
  chat__session_t *s = srv->sessions.next;
  while (s != &srv->sessions) {
    chat__session_t *next = s->next;
    if (s->busy) {
      /* a login or register waits for the pool: judge it when it is done */
    } else if (now_ms >= s->last_read_ms &&
               now_ms - s->last_read_ms >= limit) {
      chat__srv_session_end(srv, s, "heartbeat timeout");
    } else if (s->user == NULL && !s->closing && login_limit > 0 &&
               now_ms >= s->opened_ms && now_ms - s->opened_ms >= login_limit) {
      /* Not a protocol error of the peer's frames: do not count it. */
      char text[64];
      snprintf(text, sizeof(text), "no login within %d s; closing",
               srv->cfg.login_timeout);
      chat__session_send_new(
          s, chat_reply_error(NULL, CHAT_E_NOT_AUTHENTICATED, text));
      CHAT_INFO("%s: no login within %d s, closing", s->host,
                srv->cfg.login_timeout);
      chat__session_close(s);
    }
    s = next;
  }
  chat__srv_write_relayed(srv, now_ms, CHAT_RELAY_WRITE_MS);
  chat__registry_sweep(&srv->reg);
  /* What a burst freed (batches, pages, the users the sweep let go) goes
   * back to the system: a node's memory follows what is live now, not its
   * busiest second. A walk of the free lists, once a sweep. */
  malloc_trim(0);
}

void chat__srv_end_all(chat__srv_t *srv) {
  while (srv->sessions.next != &srv->sessions)
    chat__srv_session_end(srv, srv->sessions.next, "shutdown");
}
