/* handle_account.c -- register, login (by password or session token),
 * logout, ping, status.
 *
 * register and login read the store and hash on the hash pool; the
 * connection is paused meanwhile so that frames after them wait and replies
 * stay in order. The session may end before either returns: every
 * completion checks, and a login whose connection is gone is never hashed:
 * a hash still queued when the session ends or closes is cancelled (srv.c)
 * and comes back with -ECANCELED, answered with nothing. When the pool's
 * queue is full the request is refused at once with rate_limited. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "cluster.h"
#include "handlers.h"

#include <sodium.h>

typedef struct account_op {
  chat__srv_t *srv;
  chat__session_t *s;  /* referenced */
  chat__user_t *u;     /* reserved (register) / target (login), pinned */
  json_t *id;         /* referenced, may be NULL */
  char *hash;         /* register: the new hash */
  char *p2p_host;     /* login */
  char *password;     /* login: kept for the hash after the load */
  int p2p_port;
  int remember;
  int by_token;       /* login by token (valid or not): no hash */
  chat_status_t status;
  char token[CHAT_TOKEN_HASH_HEX + 1]; /* login by token: its hash */
  char key[CHAT_KEY_LEN + 1];          /* login: the announced key, or "" */
  char lan[CHAT_MAX_LAN][CHAT_IP_MAX]; /* login: its LAN addresses */
  uint8_t n_lan;
} account_op_t;

static account_op_t *op_new(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m) {
  account_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return NULL;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  chat__session_ref(s);
  return op;
}

static void op_pin(account_op_t *op, chat__user_t *u) {
  op->u = u;
  if (u != NULL) {
    u->pins++;
    u->logins++;
  }
}

/* The lists a login loaded, when no login will use them: back to a stub,
 * unless a session or another login in progress needs them. */
static void drop_lists(chat__user_t *u) {
  if (u != NULL && u->session == NULL && u->full && u->logins <= 1)
    chat__registry_unfill(u);
}

/* Ends the wait: lets the next frames in and drops the references. */
static void op_done(account_op_t *op) {
  chat__session_t *s = op->s;
  s->busy = 0;
  if (!s->ended && !s->closing)
    s->sink->resume(s->ctx);
  if (op->u != NULL) {
    op->u->pins--;
    op->u->logins--;
  }
  chat__session_unref(s);
  json_decref(op->id);
  free(op->hash);
  free(op->p2p_host);
  if (op->password != NULL) {
    sodium_memzero(op->password, strlen(op->password));
    free(op->password);
  }
  free(op);
}

/* The pool's queue is full: refused before any state changed. The wait is
 * the server's, not the client's, so the connection's --login-timeout
 * starts again: a client that keeps trying through a long storm is not an
 * idle connection to cut off. */
static void busy_hashing(chat__srv_t *srv, chat__session_t *s,
                         const json_t *id) {
  s->opened_ms = uv_now(srv->loop);
  chat__session_error(s, id, CHAT_E_RATE_LIMITED,
                      "server busy hashing passwords; try again shortly");
}

static void op_start(account_op_t *op) {
  op->s->busy = 1;
  op->s->sink->pause(op->s->ctx);
}

/* ---- register ------------------------------------------------------------ */

static void reg_committed(void *arg, int status) {
  account_op_t *op = arg;
  if (status < 0 || chat__registry_confirm(op->u, op->hash) < 0) {
    CHAT_ERROR("register %s: %s", op->u->name, chat_strerror(status));
    chat__registry_unreserve(&op->srv->reg, op->u);
    chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
  } else {
    CHAT_INFO("registered %s", op->u->name);
    chat__session_send_new(op->s, chat_reply_ok(op->id));
  }
  op_done(op);
}

static void reg_hashed(void *arg, int status, const char *hash) {
  account_op_t *op = arg;
  op->s->hash_req = NULL;
  if (status < 0 || (op->hash = strdup(hash)) == NULL) {
    chat__registry_unreserve(&op->srv->reg, op->u);
    if (status != -ECANCELED) /* else the connection is going away */
      chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "hashing failed");
    op_done(op);
    return;
  }
  chat__srv_op2(op->srv, CHAT_STORE_ADD_USER, op->u->name, op->hash);
  if (chat__engine_then(op->srv->engine, reg_committed, op) < 0)
    reg_committed(op, -ENOMEM);
}

/* The store has answered whether the name is taken. */
static void reg_checked(void *arg, int status, chat__user_t *u,
                        int64_t unused) {
  account_op_t *op = arg;
  if (status < 0 || u != NULL) {
    if (status < 0)
      chat__registry_unreserve(&op->srv->reg, op->u);
    chat__session_error(op->s, op->id,
                        status < 0 ? CHAT_E_INTERNAL : CHAT_E_USER_EXISTS,
                        status < 0 ? "storage failed" : NULL);
    op_done(op);
    return;
  }
  if (op->s->ended || op->s->closing) { /* nobody to answer: no hash */
    chat__registry_unreserve(&op->srv->reg, op->u);
    op_done(op);
    return;
  }
  int r =
      chat__hash_make(op->srv->hashes, op->srv->loop, op->srv->cfg.hash_cost,
                      op->password, reg_hashed, op, &op->s->hash_req);
  if (r < 0) {
    chat__registry_unreserve(&op->srv->reg, op->u);
    if (r == -EAGAIN)
      busy_hashing(op->srv, op->s, op->id);
    else
      chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "hashing failed");
    op_done(op);
  }
}

int chat__handle_register(chat__srv_t *srv, chat__session_t *s,
                          const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *u;
  /* Refused before the store is read for it: in a storm the retries of
   * refused requests must not queue reads where commits wait. */
  if (chat__hash_pool_admit(srv->hashes) < 0) {
    busy_hashing(srv, s, m->id);
    return 0;
  }
  int r = chat__registry_reserve(&srv->reg, m->user, &u);
  if (r == -EEXIST)
    return -CHAT_E_USER_EXISTS;
  if (r < 0)
    return r;
  account_op_t *op = op_new(srv, s, m);
  if (op == NULL || (op->password = strdup(m->password)) == NULL) {
    chat__registry_unreserve(&srv->reg, u);
    if (op != NULL)
      op_done(op);
    return -ENOMEM;
  }
  op_pin(op, u);
  op_start(op);
  /* Not cached says nothing: the store may have it. */
  r = chat__srv_load_user(srv, m->user, 0, NULL, reg_checked, op);
  if (r < 0) {
    chat__registry_unreserve(&srv->reg, u);
    op_done(op);
    return r;
  }
  return 0;
}

/* ---- login --------------------------------------------------------------- */

/* 32 random bytes as 64 hex digits (the token) and the hex of its generic
 * hash (what the store keeps). */
static void token_new(char token[65], char hash[65]) {
  unsigned char raw[32], h[32];
  randombytes_buf(raw, sizeof(raw));
  sodium_bin2hex(token, 65, raw, sizeof(raw));
  crypto_generichash(h, sizeof(h), (const unsigned char *)token, 64, NULL, 0);
  sodium_bin2hex(hash, 65, h, sizeof(h));
  sodium_memzero(raw, sizeof(raw));
}

/* The hash of a token as the client sent it; 0, or -1 when it is not 64
 * lowercase hex digits. */
static int token_hash(const char *token, char hash[65]) {
  size_t n = strlen(token);
  if (n != 64)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!((token[i] >= '0' && token[i] <= '9') ||
          (token[i] >= 'a' && token[i] <= 'f')))
      return -1;
  unsigned char h[32];
  crypto_generichash(h, sizeof(h), (const unsigned char *)token, n, NULL, 0);
  sodium_bin2hex(hash, 65, h, sizeof(h));
  return 0;
}

static void token_op(chat__srv_t *srv, chat__store_op_kind_t kind,
                     const char *user, const char *hash) {
  chat__store_op_t op;
  memset(&op, 0, sizeof(op));
  op.kind = kind;
  op.a = user;
  op.b = hash;
  op.msg.ts = chat__srv_now_wall_ms();
  chat__srv_log_op(srv, &op);
}

/* The user's state after a successful login: the session takes over, an
 * older one is kicked, pending requests and held messages are pushed. */
static void login_complete(chat__srv_t *srv, account_op_t *op) {
  chat__session_t *s = op->s;
  chat__user_t *u = op->u;
  chat__session_t *old = u->session;

  s->user = u;
  s->status = op->status ? op->status : CHAT_STATUS_ONLINE;
  s->p2p_port = (uint16_t)op->p2p_port;
  s->p2p_host = op->p2p_host;
  op->p2p_host = NULL;
  memcpy(s->key, op->key, sizeof(s->key));
  memcpy(s->lan, op->lan, sizeof(s->lan));
  s->n_lan = op->n_lan;
  u->session = s;
  u->login_seq = srv->next_seq;
  u->login_ms = chat__srv_now_wall_ms();
  if (old) {
    /* The old session is no longer the user's: its end sends no offline.
     * What it was pushed and did not ack goes to the store and comes to
     * this session in order, as held messages. */
    chat__session_send_new(old, chat_ev_kicked("logged_in_elsewhere"));
    chat__srv_session_end(srv, old, "kicked");
    chat__srv_unload_mailbox(srv, u);
    CHAT_INFO("login %s from %s (kicked the older session)", u->name, s->host);
  } else {
    srv->nlogged_in++;
    /* Pages only when something is held: a page in flight sends every new
     * message the store's way, to keep the order. The count came from the
     * store with this login's read, or has been kept since. */
    u->store_more = u->held > 0;
    CHAT_INFO("login %s from %s", u->name, s->host);
  }

  json_t *ok = chat_reply_ok(op->id);
  json_object_set_new(ok, "user", json_string(u->name));
  json_object_set_new(ok, "host", json_string(s->host));
  if (op->token[0]) {
    token_op(srv, CHAT_STORE_TOUCH_TOKEN, u->name, op->token);
    snprintf(s->token, sizeof(s->token), "%s", op->token);
  } else if (op->remember) {
    char token[65], hash[65];
    token_new(token, hash);
    token_op(srv, CHAT_STORE_ADD_TOKEN, u->name, hash);
    snprintf(s->token, sizeof(s->token), "%s", hash);
    json_object_set_new(ok, "token", json_string(token));
    sodium_memzero(token, sizeof(token));
  }
  chat__session_send_new(s, ok);
  for (uint32_t i = 0; i < u->nrequests && !s->ended; i++)
    chat__session_send_new(s, chat_ev_contact_request(u->requests[i]->name));
  chat__srv_pump(srv, u);
  if (!s->ended)
    chat__srv_presence_to_contacts(srv, u, s->status);
}

static void login_failed(account_op_t *op) {
  chat__session_t *s = op->s;
  chat__user_t *u = op->u;
  drop_lists(u);
  s->failed_logins++;
  chat__session_error(s, op->id, CHAT_E_AUTH_FAILED, "wrong user or password");
  if (s->failed_logins >= CHAT_MAX_FAILED_LOGINS) {
    CHAT_INFO("%s: %d failed logins, closing", s->host, (int)s->failed_logins);
    chat__session_close(s);
  }
}

static void login_clustered(void *arg, int status) {
  account_op_t *op = arg;
  chat__session_t *s = op->s;
  if (s->ended || s->closing) {
    drop_lists(op->u);
  } else if (status < 0) {
    drop_lists(op->u);
    s->epoch[0] = '\0';
    chat__session_error(s, op->id, CHAT_E_INTERNAL, "storage failed");
  } else {
    login_complete(op->srv, op);
  }
  op_done(op);
}

static void login_verified(void *arg, int status, const char *unused) {
  account_op_t *op = arg;
  chat__session_t *s = op->s;
  s->hash_req = NULL;
  if (s->ended || s->closing || status == -ECANCELED) {
    drop_lists(op->u);
    op_done(op);
    return;
  }
  if (status != 0 || op->u == NULL || op->u->reserved || !op->u->full) {
    login_failed(op);
  } else if (op->srv->bus != NULL) {
    /* the directory first: the session's epoch, and the statuses of its
     * contacts on other nodes before it can ask for them */
    s->status = op->status ? op->status : CHAT_STATUS_ONLINE;
    if (chat__cluster_login(op->srv, s, op->u,
                            op->p2p_host ? op->p2p_host : s->host,
                            op->p2p_port, op->key, login_clustered, op) == 0)
      return; /* login_clustered finishes */
    drop_lists(op->u);
    chat__session_error(s, op->id, CHAT_E_INTERNAL, "out of memory");
  } else {
    login_complete(op->srv, op);
  }
  op_done(op);
}

static void login_loaded(void *arg, int status, chat__user_t *u,
                         int64_t token_used) {
  account_op_t *op = arg;
  chat__session_t *s = op->s;
  op_pin(op, u);
  if (s->ended || s->closing) { /* gone: never hashed */
    login_verified(op, -ECANCELED, NULL);
    return;
  }
  if (status < 0) {
    drop_lists(u);
    chat__session_error(s, op->id, CHAT_E_INTERNAL, "storage failed");
    op_done(op);
    return;
  }
  if (op->by_token) {
    /* A token costs no hash: it is 256 random bits, compared by the store
     * through its hash. A malformed one never gets here with a user. */
    int64_t now = chat__srv_now_wall_ms();
    int ok = u != NULL && token_used >= 0 &&
             now - token_used <= CHAT_TOKEN_TTL_MS;
    login_verified(op, ok ? 0 : -EACCES, NULL);
    return;
  }
  /* An unknown user costs the same verify as a known one. */
  int r = chat__hash_verify(op->srv->hashes, op->srv->loop,
                            u ? u->pwhash : op->srv->dummy_hash, op->password,
                            login_verified, op, &s->hash_req);
  if (r < 0) {
    drop_lists(u);
    if (r == -EAGAIN)
      busy_hashing(op->srv, s, op->id);
    else
      chat__session_error(s, op->id, CHAT_E_INTERNAL, "hashing failed");
    op_done(op);
  }
}

int chat__handle_login(chat__srv_t *srv, chat__session_t *s,
                       const chat_msg_t *m, chat_error_t *err) {
  if (m->password == NULL && m->token == NULL)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "password",
                          "field 'password' (or 'token') is required");
  account_op_t *op = op_new(srv, s, m);
  if (op == NULL)
    return -ENOMEM;
  op->p2p_port = m->p2p_port > 0 ? (int)m->p2p_port : 0;
  op->status = m->status;
  op->remember = m->remember == 1;
  if (m->key) /* validated by the decoder: 64 lowercase hex digits */
    memcpy(op->key, m->key, CHAT_KEY_LEN);
  /* The decoder checked it: at most CHAT_MAX_LAN numeric addresses. */
  for (size_t i = 0; m->lan && i < json_array_size(m->lan); i++)
    snprintf(op->lan[op->n_lan++], CHAT_IP_MAX, "%s",
             json_string_value(json_array_get(m->lan, i)));
  if ((m->p2p_host && (op->p2p_host = strdup(m->p2p_host)) == NULL) ||
      (m->password && (op->password = strdup(m->password)) == NULL)) {
    op_done(op);
    return -ENOMEM;
  }
  op_start(op);
  int valid = chat_name_valid(m->user);
  op->by_token = m->token != NULL;
  if (op->by_token)
    valid = valid && token_hash(m->token, op->token) == 0;
  else
    valid = valid && chat_password_valid(m->password);
  if (!valid) {
    /* A name or password that breaks the rules fails like a wrong one
     * (the same hash for a password, none for a token). */
    login_loaded(op, 0, NULL, -1);
    return 0;
  }
  if (!op->by_token && chat__hash_pool_admit(srv->hashes) < 0) {
    /* No room for its hash: refused before the store is read for it (a
     * storm's retries must not queue reads where commits wait). */
    busy_hashing(srv, s, op->id);
    op_done(op);
    return 0;
  }
  int r = chat__srv_load_user(srv, m->user, 1, op->token[0] ? op->token : NULL,
                              login_loaded, op);
  if (r < 0) {
    op_done(op);
    return r;
  }
  return 0;
}

/* ---- logout, ping, status -------------------------------------------------
 */

int chat__handle_logout(chat__srv_t *srv, chat__session_t *s,
                        const chat_msg_t *m, chat_error_t *err) {
  /* A token ends with a logout of a session it opened or was issued to. */
  if (s->token[0])
    token_op(srv, CHAT_STORE_DEL_TOKEN, s->user->name, s->token);
  chat__session_send_new(s, chat_reply_ok(m->id));
  chat__srv_session_end(srv, s, "logout");
  return 0;
}

int chat__handle_ping(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m,
                      chat_error_t *err) {
  json_t *pong = chat_msg_new(CHAT_T_PONG);
  if (pong && m->id)
    json_object_set(pong, "id", (json_t *)m->id);
  chat__session_send_new(s, pong);
  return 0;
}

int chat__handle_status(chat__srv_t *srv, chat__session_t *s,
                        const chat_msg_t *m, chat_error_t *err) {
  s->status = m->status;
  chat__session_send_new(s, chat_reply_ok(m->id));
  chat__srv_presence_to_contacts(srv, s->user, m->status);
  chat__cluster_status(srv, s);
  return 0;
}
