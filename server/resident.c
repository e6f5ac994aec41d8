/* resident.c -- making sure what a request names is in the cache before
 * its handler runs, so that handlers stay synchronous over the registry.
 *
 * A request that names a user or group the node does not hold (a send to
 * someone offline, a contact request to a stranger) is copied, the
 * session's input is paused, and the engine is asked; when every answer is
 * in, the handler runs as if nothing had happened and the input resumes.
 * So requests of one session stay in order, and a node holds a user only
 * while something live needs it (chat__srv_sweep lets go of the rest).
 *
 * The same step asks the store whether a msg_id is a repeat, when the
 * sender has messages there (sent_held): the in-memory index knows only
 * what is in flight.
 */
#include "srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"

void chat__srv_run(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m);

/* ---- Loading users ------------------------------------------------------ */

typedef struct load_waiter {
  chat__srv_user_cb cb;
  void *arg;
  struct load_waiter *next;
} load_waiter_t;

/* A load of one user: shared by every stub load of that name in flight
 * (keyed in srv->loads); a full load (a login) has its own. */
typedef struct user_load {
  chat__srv_t *srv;
  chat__user_t *u;      /* the cache entry, pinned (a hidden one if new) */
  load_waiter_t *waiters, **tail;
  uint32_t gen;        /* u->gen when asked: a change means read again */
  uint32_t wgen;       /* u->wgen when asked: nothing stored since? */
  int full, shared;
  char token[CHAT_TOKEN_HASH_HEX + 1];
  char name[CHAT_MAX_NAME + 1];
} user_load_t;

static int submit(user_load_t *l);

static void finish(user_load_t *l, int status, chat__user_t *u,
                   int64_t token_used) {
  chat__srv_t *srv = l->srv;
  if (l->shared)
    chat__hmap_del(&srv->loads, l->name, strlen(l->name));
  l->u->pins--;
  load_waiter_t *w = l->waiters;
  free(l);
  while (w != NULL) {
    load_waiter_t *next = w->next;
    w->cb(w->arg, status, u, token_used);
    free(w);
    w = next;
  }
}

static void user_loaded(void *arg, int status, const chat__engine_user_t *rec) {
  user_load_t *l = arg;
  chat__srv_t *srv = l->srv;
  chat__user_t *u = l->u;
  if (status < 0) {
    finish(l, status, NULL, -1);
    return;
  }
  if (!rec->exists) {
    /* Only a name that exists can be in anyone's list, so a hidden entry
     * is referenced by nothing else: the sweep takes it. */
    finish(l, 0, NULL, -1);
    return;
  }
  if (u->pwhash == NULL || strcmp(u->pwhash, rec->pwhash) != 0) {
    char *h = strdup(rec->pwhash);
    if (h == NULL) {
      finish(l, -ENOMEM, NULL, -1);
      return;
    }
    free(u->pwhash);
    u->pwhash = h;
  }
  u->reserved = 0; /* it exists: a racing registration will learn so */
  u->ghost = 0;
  if (u->session == NULL) /* cluster mode: its status on another node */
    u->rstatus = rec->status;
  if (!u->held_known || (l->full && u->wgen == l->wgen)) {
    /* The store's counts, unless counts kept since an earlier load are
     * newer than this read (something was stored for it meanwhile). A
     * login takes them afresh, which also ends any drift. */
    u->held = rec->held;
    u->sent_held = rec->sent_held;
    u->held_known = 1;
  }
  if (l->full && !u->full) {
    if (u->gen != l->gen) {
      /* Its lists changed while we read them: read again (the new read
       * sees every change made before it). */
      l->gen = u->gen;
      if (submit(l) == 0)
        return;
      finish(l, -ENOMEM, NULL, -1);
      return;
    }
    if (chat__registry_fill(&srv->reg, u, rec->contacts, rec->ncontacts,
                            rec->requests, rec->nrequests, rec->groups,
                            rec->ngroups) < 0) {
      finish(l, -ENOMEM, NULL, -1);
      return;
    }
  }
  finish(l, 0, u, rec->token_used);
}

static int submit(user_load_t *l) {
  return chat__engine_load_user(l->srv->engine, l->name, l->full,
                                l->token[0] ? l->token : NULL, user_loaded, l);
}

int chat__srv_load_user(chat__srv_t *srv, const char *name, int full,
                        const char *token_hash, chat__srv_user_cb cb,
                        void *arg) {
  size_t n = strlen(name);
  int shared = !full && token_hash == NULL;
  user_load_t *l = shared ? chat__hmap_get(&srv->loads, name, n) : NULL;
  load_waiter_t *w = calloc(1, sizeof(*w));
  if (w == NULL || n > CHAT_MAX_NAME) {
    free(w);
    return w == NULL ? -ENOMEM : -EINVAL;
  }
  w->cb = cb;
  w->arg = arg;
  if (l != NULL) { /* one read answers them all */
    *l->tail = w;
    l->tail = &w->next;
    return 0;
  }
  if ((l = calloc(1, sizeof(*l))) == NULL) {
    free(w);
    return -ENOMEM;
  }
  l->srv = srv;
  memcpy(l->name, name, n + 1);
  l->full = full;
  l->shared = shared;
  if (token_hash != NULL)
    snprintf(l->token, sizeof(l->token), "%s", token_hash);
  l->waiters = w;
  l->tail = &w->next;
  /* A cache entry from the start (hidden until the store says the name
   * exists), so list changes made meanwhile are counted in its gen. */
  l->u = chat__hmap_get(&srv->reg.users, name, n);
  if (l->u == NULL && (l->u = chat__registry_stub(&srv->reg, name)) != NULL)
    l->u->ghost = 1;
  if (l->u == NULL || (shared && chat__hmap_put(&srv->loads, l->name, n, l) <
                                     0)) {
    free(l);
    free(w);
    return -ENOMEM;
  }
  l->u->pins++; /* the sweep keeps it while the read is out */
  l->gen = l->u->gen;
  l->wgen = l->u->wgen;
  int r = submit(l);
  if (r < 0) {
    if (shared)
      chat__hmap_del(&srv->loads, l->name, n);
    l->u->pins--;
    free(l);
    free(w);
  }
  return r;
}

void chat__srv_loads_free(chat__srv_t *srv) {
  /* Loads are finished by the engine's flush before this runs; the map
   * itself is all that is left. */
  chat__hmap_free(&srv->loads);
}

/* ---- Requests waiting for loads ----------------------------------------- */

/* A copy of a request, with everything it points to. */
typedef struct pending {
  chat__srv_t *srv;
  chat__session_t *s;   /* referenced */
  chat_msg_t m;
  int waiting;         /* answers still to come */
  int failed;          /* a load failed: answer internal */
  int dup_stored;      /* the store holds this msg_id from the sender */
  int sent_asked;      /* the store was asked for a repeat */
  char to[CHAT_MAX_NAME + 1], user[CHAT_MAX_NAME + 1];
  char group[CHAT_MAX_NAME + 1];
  char msg_id[CHAT_MAX_MSG_ID + 1];
  char *body;
} pending_t;

static void pending_free(pending_t *p) {
  json_decref((json_t *)p->m.id);
  free(p->body);
  chat__session_unref(p->s);
  free(p);
}

static void sent_found(void *arg, int status, const chat__stored_msg_t *m);
static int send_needs_check(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m);

static void pending_done(pending_t *p) {
  if (--p->waiting > 0)
    return;
  chat__session_t *s = p->s;
  chat__srv_t *srv = p->srv;
  if (!p->failed && !p->sent_asked && !s->ended &&
      send_needs_check(srv, s, &p->m)) {
    /* The recipient is known now, and the send would be relayed: ask the
     * store whether it is a repeat first. */
    p->sent_asked = 1;
    p->waiting = 1;
    if (chat__engine_find_sent(srv->engine, s->user->name, p->m.msg_id,
                               sent_found, p) == 0)
      return;
    p->failed = 1;
    p->waiting = 0;
  }
  s->busy = 0;
  if (!s->ended && !s->closing) {
    if (p->failed) {
      chat__session_error(s, p->m.id, CHAT_E_INTERNAL, "storage failed");
    } else {
      s->dup_stored = p->dup_stored;
      chat__srv_run(srv, s, &p->m);
      s->dup_stored = 0;
    }
    if (!s->ended && !s->closing)
      s->sink->resume(s->ctx);
  }
  pending_free(p);
}

static void user_ready(void *arg, int status, chat__user_t *u,
                       int64_t token_used) {
  pending_t *p = arg;
  if (status < 0)
    p->failed = 1;
  pending_done(p);
}

static void group_loaded(void *arg, int status, const chat__engine_group_t *g) {
  pending_t *p = arg;
  chat__srv_t *srv = p->srv;
  chat__group_t *old = chat__registry_group(&srv->reg, p->group);
  if (status == 0 && srv->bus != NULL && old != NULL) {
    /* cluster mode: other nodes change groups too; the store's is the
     * one (no handler holds a group across a wait, so this is safe) */
    chat__registry_drop_group(&srv->reg, old);
    old = NULL;
  }
  if (status < 0) {
    p->failed = 1;
  } else if (g->exists && old == NULL) {
    chat__group_t *grp;
    if (chat__group_new(&srv->reg, p->group, &grp) < 0 ||
        chat__group_load(&srv->reg, grp, g->members, g->nmembers) < 0)
      p->failed = 1;
  }
  pending_done(p);
}

static void sent_found(void *arg, int status, const chat__stored_msg_t *m) {
  pending_t *p = arg;
  if (status < 0)
    p->failed = 1;
  else
    p->dup_stored = m != NULL;
  pending_done(p);
}

/* The user a request names, when it must be in the cache to answer. */
static const char *named_user(const chat_msg_t *m) {
  switch (m->type) {
  case CHAT_T_SEND:
  case CHAT_T_CONNECT:
    return m->to;
  case CHAT_T_CONTACT_ADD:
  case CHAT_T_CONTACT_ACCEPT:
  case CHAT_T_CONTACT_DECLINE:
  case CHAT_T_CONTACT_REMOVE:
  case CHAT_T_GROUP_ADD:
    return m->user;
  default:
    return NULL;
  }
}

static const char *named_group(const chat_msg_t *m) {
  switch (m->type) {
  case CHAT_T_GROUP_CREATE:
  case CHAT_T_GROUP_ADD:
  case CHAT_T_GROUP_LEAVE:
  case CHAT_T_GROUP_MEMBERS:
  case CHAT_T_GROUP_SEND:
    return m->group;
  default:
    return NULL;
  }
}

static void copy_str(char *dst, size_t size, const char **field) {
  if (*field == NULL)
    return;
  snprintf(dst, size, "%s", *field);
  *field = dst;
}

/* Nonzero when m is a send that would be relayed from memory and whose
 * msg_id the store may hold from the sender (it has messages there). A
 * send that goes to the store needs no question: the store refuses a
 * second copy of a sender's msg_id itself (store_sqlite.c), and asking
 * would cost every such send a round trip. */
static int send_needs_check(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m) {
  if (m->type != CHAT_T_SEND || s->user == NULL || s->user->sent_held == 0 ||
      m->msg_id == NULL || m->to == NULL)
    return 0;
  chat__user_t *u = chat__registry_find(&srv->reg, m->to);
  return u != NULL && u->held_known && chat__srv_can_push(srv, u, 1) &&
         chat__mailbox_find_sent(&srv->mb, s->user, m->msg_id) == NULL &&
         chat__mailbox_find(&srv->mb, u, s->user, m->msg_id) == NULL;
}

void chat__srv_run_resident(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m) {
  const char *uname = s->user != NULL ? named_user(m) : NULL;
  const char *gname = s->user != NULL ? named_group(m) : NULL;
  chat__user_t *u = uname ? chat__registry_find(&srv->reg, uname) : NULL;
  /* In cluster mode a contact request or answer reads its user afresh:
   * the event it makes shows that user's status, which may be on another
   * node and, for a user who is no contact of anyone here, not kept. */
  int contact_op = m->type == CHAT_T_CONTACT_ADD ||
                   m->type == CHAT_T_CONTACT_ACCEPT;
  int need_user = uname && chat_name_valid(uname) &&
                  (u == NULL || !u->held_known ||
                   (srv->bus != NULL && contact_op && u->session == NULL));
  /* In cluster mode a group is read afresh for every request: members
   * may have been added or left on other nodes. */
  int need_group = gname && chat_name_valid(gname) &&
                   (srv->bus != NULL ||
                    chat__registry_group(&srv->reg, gname) == NULL);
  /* Asked now only when the recipient is known; else after its load. */
  int need_sent = !need_user && send_needs_check(srv, s, m);
  if (!need_user && !need_group && !need_sent) {
    chat__srv_run(srv, s, m);
    return;
  }
  pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL || (m->body != NULL && (p->body = malloc(m->body_len + 1)) ==
                                           NULL)) {
    free(p);
    chat__session_error(s, m->id, CHAT_E_INTERNAL, "out of memory");
    return;
  }
  p->srv = srv;
  p->s = s;
  chat__session_ref(s);
  p->m = *m;
  p->m.id = json_incref((json_t *)m->id);
  copy_str(p->to, sizeof(p->to), &p->m.to);
  copy_str(p->user, sizeof(p->user), &p->m.user);
  copy_str(p->group, sizeof(p->group), &p->m.group);
  copy_str(p->msg_id, sizeof(p->msg_id), &p->m.msg_id);
  if (m->body != NULL) {
    memcpy(p->body, m->body, m->body_len);
    p->body[m->body_len] = '\0';
    p->m.body = p->body;
  }
  /* Other pointers of m (from, password, host...) belong to requests that
   * never wait here. */
  p->waiting = 1; /* this function's own, dropped below */
  s->busy = 1;
  s->sink->pause(s->ctx);
  if (need_user) {
    p->waiting++;
    if (chat__srv_load_user(srv, uname, 0, NULL, user_ready, p) < 0) {
      p->waiting--;
      p->failed = 1;
    }
  }
  if (need_group) {
    p->waiting++;
    if (chat__engine_load_group(srv->engine, gname, group_loaded, p) < 0) {
      p->waiting--;
      p->failed = 1;
    }
  }
  if (need_sent) {
    p->sent_asked = 1;
    p->waiting++;
    if (chat__engine_find_sent(srv->engine, s->user->name, m->msg_id,
                               sent_found, p) < 0) {
      p->waiting--;
      p->failed = 1;
    }
  }
  pending_done(p);
}
