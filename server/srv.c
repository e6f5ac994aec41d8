/* srv.c -- the server core: start-up load, sessions and their end, presence,
 * pushing held messages, and the helpers the handlers share. */
#include "srv.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_log.h"
#include "tickets.h"

void chat_srv_config_default(chat_srv_config_t *cfg) {
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

int64_t chat_srv_now_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Start-up load ------------------------------------------------------ */

static int load_user(void *ctx, const char *user, const char *pwhash) {
  chat_srv_t *srv = ctx;
  int r = chat_registry_add(&srv->reg, user, pwhash, NULL);
  return r == -EEXIST ? 0 : r;
}

static int load_contact(void *ctx, const char *a, const char *b) {
  chat_srv_t *srv = ctx;
  chat_user_t *ua = chat_registry_find(&srv->reg, a);
  chat_user_t *ub = chat_registry_find(&srv->reg, b);
  if (ua == NULL || ub == NULL || ua == ub)
    return 0; /* dangling row: ignore */
  return chat_contact_add(ua, ub);
}

static int load_request(void *ctx, const char *from, const char *to) {
  chat_srv_t *srv = ctx;
  chat_user_t *uf = chat_registry_find(&srv->reg, from);
  chat_user_t *ut = chat_registry_find(&srv->reg, to);
  if (uf == NULL || ut == NULL || uf == ut)
    return 0;
  return chat_request_add(uf, ut);
}

static int load_group(void *ctx, const char *group, const char *member) {
  chat_srv_t *srv = ctx;
  chat_user_t *u = chat_registry_find(&srv->reg, member);
  if (u == NULL)
    return 0;
  chat_group_t *g = chat_registry_group(&srv->reg, group);
  if (g == NULL) {
    int r = chat_group_new(&srv->reg, group, &g);
    if (r < 0)
      return r;
  }
  return chat_group_add(g, u);
}

static int load_msg(void *ctx, const chat_stored_msg_t *m) {
  chat_srv_t *srv = ctx;
  chat_user_t *to = chat_registry_find(&srv->reg, m->to);
  chat_user_t *from = chat_registry_find(&srv->reg, m->from);
  if (to == NULL || from == NULL)
    return 0;
  chat_held_t *h;
  int r = chat_mailbox_add(&srv->mb, to, from, m->group, m->msg_id, m->body,
                           m->body_len, m->seq, m->ts, CHAT_HELD_STORED, &h);
  if (r == -EEXIST || r == -EINVAL)
    return 0;
  if (r < 0)
    return r;
  h->written = 1;
  h->offline = 1;
  return 0;
}

int chat_srv_init(chat_srv_t *srv, uv_loop_t *loop,
                  const chat_srv_config_t *cfg, chat_store_t *store,
                  chat_committer_t *committer) {
  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->cfg = *cfg;
  srv->committer = committer;
  srv->sessions.next = srv->sessions.prev = &srv->sessions;
  chat_registry_init(&srv->reg);
  chat_mailbox_init(&srv->mb);
  if (sodium_init() < 0)
    return -EIO;
  int r;
  uint64_t max_seq = 0;
  if ((r = chat_store_load_users(store, load_user, srv)) < 0 ||
      (r = chat_store_load_contacts(store, load_contact, srv)) < 0 ||
      (r = chat_store_load_requests(store, load_request, srv)) < 0 ||
      (r = chat_store_load_groups(store, load_group, srv)) < 0 ||
      (r = chat_store_load_messages(store, load_msg, srv)) < 0 ||
      (r = chat_store_max_seq(store, &max_seq)) < 0) {
    chat_srv_free(srv);
    return r;
  }
  srv->next_seq = max_seq + 1;
  if (committer != NULL)
    chat_committer_on_fail(committer, chat_srv_commit_failed, srv);
  /* Unknown users are verified against this, so a failed login costs the
   * same whether the name exists or not. Once, before serving. */
  char pw[33];
  chat_ticket_new(pw); /* 32 random hex digits */
  r = chat_hash_make_sync(cfg->hash_cost, pw, srv->dummy_hash,
                          sizeof(srv->dummy_hash));
  if (r < 0) {
    chat_srv_free(srv);
    return r;
  }
  CHAT_INFO("loaded %zu users, %zu held messages, next seq %llu",
            srv->reg.nusers, srv->mb.count,
            (unsigned long long)srv->next_seq);
  return 0;
}

void chat_srv_free(chat_srv_t *srv) {
  chat_mailbox_free(&srv->mb);
  chat_registry_free(&srv->reg);
  free(srv->line);
  free(srv->body);
  srv->line = srv->body = NULL;
  srv->line_cap = 0;
}

char *chat_srv_line_buf(chat_srv_t *srv, size_t body_len, size_t *cap) {
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

chat_session_t *chat_srv_session_new(chat_srv_t *srv, const chat_sink_t *sink,
                                     void *ctx, const char *host) {
  chat_session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->srv = srv;
  s->sink = sink;
  s->ctx = ctx;
  s->refs = 1;
  snprintf(s->host, sizeof(s->host), "%s", host ? host : "");
  s->last_read_ms = s->opened_ms = uv_now(srv->loop);
  chat_ratelimit_init(&s->rl, srv->cfg.rate_limit, s->last_read_ms);
  s->next = &srv->sessions;
  s->prev = srv->sessions.prev;
  s->prev->next = s;
  srv->sessions.prev = s;
  srv->nsessions++;
  json_t *w = chat_ev_welcome(CHAT_SRV_NAME, srv->cfg.heartbeat,
                              srv->cfg.max_frame);
  chat_session_send_new(s, w);
  return s;
}

void chat_session_ref(chat_session_t *s) { s->refs++; }

void chat_session_unref(chat_session_t *s) {
  if (--s->refs > 0)
    return;
  free(s->p2p_host);
  const chat_sink_t *sink = s->sink;
  void *ctx = s->ctx;
  free(s);
  if (sink->release)
    sink->release(ctx);
}

int chat_session_send(chat_session_t *s, const json_t *obj) {
  if (s->ended || obj == NULL)
    return obj == NULL ? -ENOMEM : -EPIPE;
  if (chat_log_get_level() >= CHAT_LOG_DEBUG) {
    char *t = json_dumps(obj, JSON_COMPACT);
    CHAT_DEBUG("-> %s %s", s->user ? s->user->name : s->host, t ? t : "?");
    free(t);
  }
  return s->sink->send(s->ctx, obj);
}

int chat_session_send_line(chat_session_t *s, const char *line, size_t len) {
  if (s->ended)
    return -EPIPE;
  if (chat_log_get_level() >= CHAT_LOG_DEBUG)
    CHAT_DEBUG("-> %s %.*s", s->user ? s->user->name : s->host,
               (int)(len > 0 ? len - 1 : 0), line);
  return s->sink->send_line(s->ctx, line, len);
}

int chat_session_send_new(chat_session_t *s, json_t *obj) {
  int r = chat_session_send(s, obj);
  json_decref(obj);
  return r;
}

void chat_session_close(chat_session_t *s) {
  if (s->closing)
    return;
  s->closing = 1;
  if (s->hash_req != NULL) /* its answer could not be sent anyway */
    chat_hash_cancel(s->hash_req);
  s->sink->close(s->ctx);
}

void chat_session_error(chat_session_t *s, const json_t *id, int code,
                        const char *text) {
  if (text == NULL)
    text = chat_strerror(-code);
  chat_session_send_new(s, chat_reply_error(id, code, text));
  if (chat_code_is_protocol_error(code) &&
      ++s->proto_errors >= CHAT_MAX_PROTOCOL_ERRORS) {
    CHAT_INFO("%s: %d protocol errors, closing",
              s->user ? s->user->name : s->host, (int)s->proto_errors);
    chat_session_close(s);
  }
}

json_t *chat_srv_user_list(chat_user_t *const *users, uint32_t n) {
  json_t *list = json_array();
  for (uint32_t i = 0; list != NULL && i < n; i++)
    json_array_append_new(
        list, json_pack("{s:s,s:s}", "user", users[i]->name, "status",
                        chat_status_name(chat_srv_status_of(users[i]))));
  return list;
}

int chat_srv_reply_list(chat_session_t *s, const json_t *id, const char *key,
                        json_t *list) {
  json_t *ok = list != NULL ? chat_reply_ok(id) : NULL;
  if (ok == NULL) {
    json_decref(list);
    return -ENOMEM;
  }
  json_object_set_new(ok, key, list);
  chat_session_send_new(s, ok);
  return 0;
}

/* ---- Store operations ---------------------------------------------------- */

void chat_srv_log_op(chat_srv_t *srv, const chat_store_op_t *op) {
  int r = chat_committer_add(srv->committer, op);
  if (r < 0)
    CHAT_ERROR("store op %d not queued: %s", (int)op->kind, chat_strerror(r));
}

void chat_srv_op2(chat_srv_t *srv, chat_store_op_kind_t kind, const char *a,
                  const char *b) {
  chat_store_op_t op;
  memset(&op, 0, sizeof(op));
  op.kind = kind;
  op.a = a;
  op.b = b;
  chat_srv_log_op(srv, &op);
}

void chat_srv_write_held(chat_srv_t *srv, chat_held_t *h) {
  chat_store_op_t op;
  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_PUT_MSG;
  op.msg.seq = h->seq;
  op.msg.to = h->to->name;
  op.msg.from = h->from->name;
  op.msg.group = h->group;
  op.msg.msg_id = chat_held_msg_id(h);
  op.msg.body = h->body;
  op.msg.body_len = h->body_len;
  op.msg.ts = h->ts;
  chat_srv_log_op(srv, &op);
  h->written = 1;
}

/* ---- Presence and delivery ----------------------------------------------- */

chat_status_t chat_srv_status_of(const chat_user_t *u) {
  return u->session ? (chat_status_t)u->session->status : CHAT_STATUS_OFFLINE;
}

void chat_srv_presence_to_contacts(chat_srv_t *srv, chat_user_t *u,
                                   chat_status_t status) {
  json_t *ev = NULL;
  for (uint32_t i = 0; i < u->ncontacts; i++) {
    chat_user_t *c = u->contacts[i];
    if (c->session == NULL)
      continue;
    if (ev == NULL && (ev = chat_ev_presence(u->name, status)) == NULL)
      return;
    chat_session_send(c->session, ev);
  }
  json_decref(ev);
}

int chat_srv_push(chat_srv_t *srv, chat_held_t *h) {
  chat_session_t *s = h->to->session;
  if (s == NULL || s->ended)
    return -EPIPE;
  /* Pushed even if the line cannot be written: pump() moves on, and an
   * unacked message is delivered again at the next login. */
  chat_mailbox_set_state(h, CHAT_HELD_PUSHED);
  size_t cap;
  char *line = chat_srv_line_buf(srv, h->body_len, &cap);
  if (line == NULL)
    return -ENOMEM;
  int n = chat_line_deliver(line, cap, h->from->name, h->group,
                            chat_held_msg_id(h), h->body, h->body_len, h->ts,
                            h->offline);
  if (n < 0)
    return n;
  /* Marked first: once the line is out h may be gone (an ack handled
   * before this returns); a failed send takes the mark back. */
  unsigned was = h->delivered;
  h->delivered = 1;
  int r = chat_session_send_line(s, line, (size_t)n);
  if (r < 0)
    h->delivered = was;
  return r;
}

int chat_srv_quota_open(const chat_srv_t *srv, const chat_user_t *to) {
  return srv->cfg.offline_quota == 0 || to->mb_count < srv->cfg.offline_quota;
}

void chat_srv_quota_error(chat_session_t *s, const json_t *id,
                          const char *to) {
  char text[160];
  snprintf(text, sizeof(text),
           "the mailbox of %s is full (offline quota); try again once it "
           "has read its messages", to);
  json_t *e = chat_reply_error(id, CHAT_E_RATE_LIMITED, text);
  if (e != NULL)
    json_object_set_new(e, "reason", json_string("offline_quota"));
  chat_session_send_new(s, e);
}

int chat_srv_window_open(const chat_srv_t *srv, const chat_user_t *u,
                         size_t len) {
  if (u->mb_npushed == 0)
    return 1;
  return u->mb_npushed < CHAT_WINDOW_MSGS &&
         u->mb_unacked_bytes + len <= srv->cfg.max_output / CHAT_WINDOW_DIV;
}

void chat_srv_pump(chat_srv_t *srv, chat_user_t *u) {
  chat_session_t *s = u->session;
  chat_held_t *h;
  while (s && !s->ended && (h = u->mb_waiting) != NULL &&
         chat_srv_window_open(srv, u, h->body_len))
    chat_srv_push(srv, h);
}

/* Writes every unwritten message of u so it survives a restart, and marks
 * the pushed ones for redelivery at the next login. */
static void keep_unacked(chat_srv_t *srv, chat_user_t *u) {
  for (chat_held_t *h = u->mb_head; h; h = h->next) {
    if (!h->written)
      chat_srv_write_held(srv, h);
    h->offline = 1;
    if (h->state == CHAT_HELD_PUSHED)
      chat_mailbox_set_state(h, CHAT_HELD_STORED);
  }
}

void chat_srv_session_end(chat_srv_t *srv, chat_session_t *s,
                          const char *why) {
  if (s->ended)
    return;
  s->ended = 1;
  if (s->hash_req != NULL) /* nobody is left to answer */
    chat_hash_cancel(s->hash_req);
  s->next->prev = s->prev;
  s->prev->next = s->next;
  s->next = s->prev = s;
  srv->nsessions--;
  chat_user_t *u = s->user;
  if (u && u->session == s) { /* not for a session that was kicked */
    CHAT_INFO("logout %s (%s)", u->name, why);
    u->session = NULL;
    srv->nlogged_in--;
    keep_unacked(srv, u);
    chat_srv_presence_to_contacts(srv, u, CHAT_STATUS_OFFLINE);
  }
  chat_session_close(s);
}

void chat_srv_sweep(chat_srv_t *srv, uint64_t now_ms) {
  uint64_t limit = (uint64_t)srv->cfg.heartbeat * 3000;
  uint64_t login_limit = (uint64_t)srv->cfg.login_timeout * 1000;
  chat_session_t *s = srv->sessions.next;
  while (s != &srv->sessions) {
    chat_session_t *next = s->next;
    if (s->busy) {
      /* a login or register waits for the pool: judge it when it is done */
    } else if (now_ms >= s->last_read_ms &&
               now_ms - s->last_read_ms >= limit) {
      chat_srv_session_end(srv, s, "heartbeat timeout");
    } else if (s->user == NULL && !s->closing && login_limit > 0 &&
               now_ms >= s->opened_ms && now_ms - s->opened_ms >= login_limit) {
      /* Not a protocol error of the peer's frames: do not count it. */
      char text[64];
      snprintf(text, sizeof(text), "no login within %d s; closing",
               srv->cfg.login_timeout);
      chat_session_send_new(s, chat_reply_error(NULL,
                                                CHAT_E_NOT_AUTHENTICATED,
                                                text));
      CHAT_INFO("%s: no login within %d s, closing", s->host,
                srv->cfg.login_timeout);
      chat_session_close(s);
    }
    s = next;
  }
}

void chat_srv_end_all(chat_srv_t *srv) {
  while (srv->sessions.next != &srv->sessions)
    chat_srv_session_end(srv, srv->sessions.next, "shutdown");
}
