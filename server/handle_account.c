/* handle_account.c -- register, login, logout, ping, status.
 *
 * register and login hash on the hash pool; the connection is paused
 * meanwhile so that frames after them wait and replies stay in order. The
 * session may end before the hash returns: every completion checks. A hash
 * still queued when the session ends or closes is cancelled (srv.c) and
 * comes back with -ECANCELED, answered with nothing. When the pool's queue
 * is full the request is refused at once with rate_limited. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "handlers.h"

typedef struct account_op {
  chat_srv_t *srv;
  chat_session_t *s;  /* referenced */
  chat_user_t *u;     /* reserved (register) / target (login), may be NULL */
  json_t *id;         /* referenced, may be NULL */
  char *hash;         /* register: the new hash */
  char *p2p_host;     /* login */
  int p2p_port;
  chat_status_t status;
} account_op_t;

static account_op_t *op_new(chat_srv_t *srv, chat_session_t *s,
                            const chat_msg_t *m) {
  account_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return NULL;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  chat_session_ref(s);
  return op;
}

/* Ends the wait: lets the next frames in and drops the references. */
static void op_done(account_op_t *op) {
  chat_session_t *s = op->s;
  s->busy = 0;
  if (!s->ended && !s->closing)
    s->sink->resume(s->ctx);
  chat_session_unref(s);
  json_decref(op->id);
  free(op->hash);
  free(op->p2p_host);
  free(op);
}

/* The pool's queue is full: refused before any state changed. */
static void busy_hashing(chat_session_t *s, const json_t *id) {
  chat_session_error(s, id, CHAT_E_RATE_LIMITED,
                     "server busy hashing passwords; try again shortly");
}

static void op_start(account_op_t *op) {
  op->s->busy = 1;
  op->s->sink->pause(op->s->ctx);
}

/* ---- register ------------------------------------------------------------ */

static void reg_committed(void *arg, int status) {
  account_op_t *op = arg;
  if (status < 0 || chat_registry_confirm(op->u, op->hash) < 0) {
    CHAT_ERROR("register %s: %s", op->u->name, chat_strerror(status));
    chat_registry_unreserve(&op->srv->reg, op->u);
    chat_session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
  } else {
    op->srv->reg.nusers++;
    CHAT_INFO("registered %s", op->u->name);
    chat_session_send_new(op->s, chat_reply_ok(op->id));
  }
  op_done(op);
}

static void reg_hashed(void *arg, int status, const char *hash) {
  account_op_t *op = arg;
  op->s->hash_req = NULL;
  if (status < 0 || (op->hash = strdup(hash)) == NULL) {
    chat_registry_unreserve(&op->srv->reg, op->u);
    if (status != -ECANCELED) /* else the connection is going away */
      chat_session_error(op->s, op->id, CHAT_E_INTERNAL, "hashing failed");
    op_done(op);
    return;
  }
  chat_srv_op2(op->srv, CHAT_STORE_ADD_USER, op->u->name, op->hash);
  if (chat_committer_then(op->srv->committer, reg_committed, op) < 0)
    reg_committed(op, -ENOMEM);
}

int chat_handle_register(chat_srv_t *srv, chat_session_t *s,
                         const chat_msg_t *m, chat_error_t *err) {
  chat_user_t *u;
  int r = chat_registry_reserve(&srv->reg, m->user, &u);
  if (r == -EEXIST)
    return -CHAT_E_USER_EXISTS;
  if (r < 0)
    return r;
  account_op_t *op = op_new(srv, s, m);
  if (op == NULL) {
    chat_registry_unreserve(&srv->reg, u);
    return -ENOMEM;
  }
  op->u = u;
  op_start(op);
  r = chat_hash_make(srv->hashes, srv->loop, srv->cfg.hash_cost,
                     m->password, reg_hashed, op, &s->hash_req);
  if (r < 0) {
    chat_registry_unreserve(&srv->reg, u);
    op_done(op);
    if (r != -EAGAIN)
      return r;
    busy_hashing(s, m->id);
  }
  return 0;
}

/* ---- login --------------------------------------------------------------- */

/* The user's state after a successful login: the session takes over, an
 * older one is kicked, pending requests and held messages are pushed. */
static void login_complete(chat_srv_t *srv, account_op_t *op) {
  chat_session_t *s = op->s;
  chat_user_t *u = op->u;
  chat_session_t *old = u->session;

  s->user = u;
  s->status = op->status ? op->status : CHAT_STATUS_ONLINE;
  s->p2p_port = (uint16_t)op->p2p_port;
  s->p2p_host = op->p2p_host;
  op->p2p_host = NULL;
  u->session = s;
  if (old) {
    /* The old session is no longer the user's: its end sends no offline
     * and leaves the pushed messages to this session. */
    chat_session_send_new(old, chat_ev_kicked("logged_in_elsewhere"));
    chat_srv_session_end(srv, old, "kicked");
    CHAT_INFO("login %s from %s (kicked the older session)", u->name, s->host);
  } else {
    srv->nlogged_in++;
    CHAT_INFO("login %s from %s", u->name, s->host);
  }

  json_t *ok = chat_reply_ok(op->id);
  json_object_set_new(ok, "user", json_string(u->name));
  json_object_set_new(ok, "host", json_string(s->host));
  chat_session_send_new(s, ok);
  for (uint32_t i = 0; i < u->nrequests && !s->ended; i++)
    chat_session_send_new(s, chat_ev_contact_request(u->requests[i]->name));
  /* Messages pushed to a kicked session go out again, in order. */
  for (chat_held_t *h = u->mb_head; h; h = h->next)
    if (h->state == CHAT_HELD_PUSHED)
      chat_mailbox_set_state(h, CHAT_HELD_STORED);
  chat_srv_pump(srv, u);
  if (!s->ended)
    chat_srv_presence_to_contacts(srv, u, s->status);
}

static void login_verified(void *arg, int status, const char *unused) {
  account_op_t *op = arg;
  chat_session_t *s = op->s;
  s->hash_req = NULL;
  if (s->ended || s->closing || status == -ECANCELED) {
    op_done(op);
    return;
  }
  if (status != 0 || op->u == NULL || op->u->reserved) {
    s->failed_logins++;
    chat_session_error(s, op->id, CHAT_E_AUTH_FAILED,
                       "wrong user or password");
    if (s->failed_logins >= CHAT_MAX_FAILED_LOGINS) {
      CHAT_INFO("%s: %d failed logins, closing", s->host,
                (int)s->failed_logins);
      chat_session_close(s);
    }
  } else {
    login_complete(op->srv, op);
  }
  op_done(op);
}

int chat_handle_login(chat_srv_t *srv, chat_session_t *s, const chat_msg_t *m,
                      chat_error_t *err) {
  int valid = chat_name_valid(m->user) && chat_password_valid(m->password);
  chat_user_t *u = valid ? chat_registry_find(&srv->reg, m->user) : NULL;
  account_op_t *op = op_new(srv, s, m);
  if (op == NULL)
    return -ENOMEM;
  op->u = u;
  op->p2p_port = m->p2p_port > 0 ? (int)m->p2p_port : 0;
  op->status = m->status;
  if (m->p2p_host && (op->p2p_host = strdup(m->p2p_host)) == NULL) {
    op_done(op);
    return -ENOMEM;
  }
  op_start(op);
  /* An unknown user costs the same verify as a known one. */
  int r = chat_hash_verify(srv->hashes, srv->loop,
                           u ? u->pwhash : srv->dummy_hash, m->password,
                           login_verified, op, &s->hash_req);
  if (r < 0) {
    op_done(op);
    if (r != -EAGAIN)
      return r;
    busy_hashing(s, m->id);
  }
  return 0;
}

/* ---- logout, ping, status ------------------------------------------------- */

int chat_handle_logout(chat_srv_t *srv, chat_session_t *s,
                       const chat_msg_t *m, chat_error_t *err) {
  chat_session_send_new(s, chat_reply_ok(m->id));
  chat_srv_session_end(srv, s, "logout");
  return 0;
}

int chat_handle_ping(chat_srv_t *srv, chat_session_t *s, const chat_msg_t *m,
                     chat_error_t *err) {
  json_t *pong = chat_msg_new(CHAT_T_PONG);
  if (pong && m->id)
    json_object_set(pong, "id", (json_t *)m->id);
  chat_session_send_new(s, pong);
  return 0;
}

int chat_handle_status(chat_srv_t *srv, chat_session_t *s,
                       const chat_msg_t *m, chat_error_t *err) {
  s->status = m->status;
  chat_session_send_new(s, chat_reply_ok(m->id));
  chat_srv_presence_to_contacts(srv, s->user, m->status);
  return 0;
}
