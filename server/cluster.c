/* cluster.c -- the core's side of cluster mode (cluster.h, bus.h,
 * docs/CLUSTER.md).
 *
 * A message for a user on another node is stored (the store is shared)
 * and that node is told ('m'); it reads the message back from the store in
 * its recipient's next page, as it would a message stored while the
 * recipient was busy. So a node that dies holds nothing another node
 * needs, and nothing it answered is lost. Presence, receipts, kicks and
 * contact events travel as events to the node the user is on. */
#include "cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "tickets.h"

static chat__session_t *live(const chat__user_t *u) {
  return u != NULL && u->session != NULL && !u->session->ended ? u->session
                                                                : NULL;
}

/* What contacts see of s: its status name. */
static const char *shown(const chat__session_t *s) {
  return chat_status_name((chat_status_t)s->status);
}

/* ---- events from other nodes ------------------------------------------- */

/* Messages were stored for u elsewhere, seq the lowest of them (0:
 * unknown): the next page brings them, in seq order per sender. Their
 * seqs come from the other node's run, which may be below what this node
 * paged last: then the page starts below them. */
static void stored_for(chat__srv_t *srv, const char *name, uint64_t seq) {
  chat__user_t *u = chat__registry_find(&srv->reg, name);
  if (live(u) == NULL)
    return; /* moved on, or gone: its next login reads the store */
  if (seq == 0 || seq <= u->store_after) {
    /* below the cursor (another node's run of seqs is lower): page again
     * from just below it; a seq unknown pages from the start */
    uint64_t to = seq > 0 ? seq - 1 : 0;
    if (!u->rewind || to < u->rewind_to)
      u->rewind_to = to;
    u->rewind = 1;
  }
  u->store_more = 1;
  u->wgen++;
  chat__srv_pump(srv, u);
}

static void presence(chat__srv_t *srv, const chat__bus_event_t *ev) {
  chat__user_t *u = chat__registry_find(&srv->reg, ev->user);
  chat_status_t st = chat_status_from_name(ev->a ? ev->a : "");
  json_t *obj = NULL;
  if (u == NULL || st == CHAT_STATUS_NONE)
    return; /* no contact of it is full here */
  if (u->session == NULL)
    u->rstatus = (uint8_t)st;
  char name[CHAT_MAX_NAME + 1];
  for (const char *p = ev->rcpts; chat__bus_next_name(&p, name);) {
    chat__user_t *c = chat__registry_find(&srv->reg, name);
    chat__session_t *cs = live(c);
    if (cs != NULL && c->full && chat__contact_is(c, u) &&
        (obj != NULL || (obj = chat_ev_presence(u->name, st)) != NULL))
      chat__session_send(cs, obj);
  }
  json_decref(obj);
}

/* u's session s goes because u logged in elsewhere. What it was pushed
 * and did not ack is written to the store as it ends; the node u is on
 * now is told behind those writes ('m'), so it pages them before anything
 * newer (a later message from a sender here reaches it after the notice:
 * one node's batches go out in order). */
static void moved_on(chat__srv_t *srv, chat__user_t *u, chat__session_t *s) {
  int had = u->mb_head != NULL;
  chat__srv_session_end(srv, s, "logged in elsewhere");
  if (had)
    chat__bus_route(srv->bus, u->name, 'm', "0", NULL, NULL, NULL);
}

/* A login elsewhere won: the session here goes without a word to its
 * contacts (the new one's presence reaches them). */
static void kick(chat__srv_t *srv, const chat__bus_event_t *ev) {
  chat__user_t *u = chat__registry_find(&srv->reg, ev->user);
  chat__session_t *s = live(u);
  if (s == NULL || ev->a == NULL || strcmp(s->epoch, ev->a) != 0)
    return;
  CHAT_INFO("%s logged in on another node: ending its session here",
            u->name);
  s->moved = 1;
  chat__session_send_new(s, chat_ev_kicked("logged_in_elsewhere"));
  moved_on(srv, u, s);
}

static void receipt(chat__srv_t *srv, const chat__bus_event_t *ev) {
  chat__user_t *u = chat__registry_find(&srv->reg, ev->user);
  chat__session_t *s = live(u);
  size_t cap;
  char *line;
  int n;
  if (ev->user == NULL || ev->a == NULL || ev->b == NULL ||
      !chat_name_valid(ev->user) || !chat_msg_id_valid(ev->a) ||
      !chat_name_valid(ev->b))
    return;
  if (s == NULL) {
    /* carried here on a stale route (route_cache.h): on to the node the
     * directory names, if any ('R': looked up afresh, and never back
     * here), so two stale caches cannot pass it to and fro */
    chat__bus_route(srv->bus, ev->user, 'R', ev->a, ev->b, NULL, NULL);
    return;
  }
  line = chat__srv_line_buf(srv, 0, &cap);
  n = line ? chat_line_receipt(line, cap, ev->a, ev->b, "delivered")
           : -ENOMEM;
  if (n > 0)
    chat__session_send_line(s, line, (size_t)n);
}

/* A contact event for u from another node: what it says is applied to
 * u's lists here (they are the store's, changed there), then it is
 * shown. */
static void contact_event(chat__srv_t *srv, chat__user_t *u, const json_t *obj) {
  const char *type = json_string_value(json_object_get(obj, "type"));
  const char *other = json_string_value(json_object_get(obj, "user"));
  chat__user_t *o;
  if (type == NULL)
    return;
  if (strcmp(type, "group_added") == 0) {
    const char *g = json_string_value(json_object_get(obj, "group"));
    if (g != NULL && chat_name_valid(g))
      chat__user_group_add(u, g);
    return;
  }
  if (strcmp(type, "contact_request") == 0)
    other = json_string_value(json_object_get(obj, "from"));
  if (other == NULL || !chat_name_valid(other) ||
      (o = chat__registry_stub(&srv->reg, other)) == NULL)
    return;
  if (strcmp(type, "contact_request") == 0) {
    chat__request_add(o, u);
  } else if (strcmp(type, "contact_added") == 0) {
    chat__contact_add(u, o);
    chat__request_del(o, u);
    chat__request_del(u, o);
    chat_status_t st = chat_status_from_name(
        json_string_value(json_object_get(obj, "status")) ?: "");
    if (o->session == NULL && st != CHAT_STATUS_NONE)
      o->rstatus = (uint8_t)st;
  } else if (strcmp(type, "contact_removed") == 0) {
    chat__contact_del(u, o);
  }
}

static void event_line(chat__srv_t *srv, const chat__bus_event_t *ev) {
  chat__user_t *u = chat__registry_find(&srv->reg, ev->user);
  chat__session_t *s = live(u);
  json_t *obj;
  if (s == NULL || ev->a == NULL ||
      (obj = json_loads(ev->a, JSON_REJECT_DUPLICATES, NULL)) == NULL)
    return;
  if (u->full)
    contact_event(srv, u, obj);
  chat__session_send(s, obj);
  json_decref(obj);
}

static void on_event(chat__srv_t *srv, const chat__bus_event_t *ev);

void chat__cluster_on_event(void *arg, const chat__bus_event_t *ev) {
  chat__srv_t *srv = arg;
  on_event(srv, ev);
  if (ev->entry_end)
    chat__cluster_inbox_read(srv, ev->id);
}

static void on_event(chat__srv_t *srv, const chat__bus_event_t *ev) {
  switch (ev->kind) {
  case 'm': {
    uint64_t seq = ev->a != NULL ? strtoull(ev->a, NULL, 10) : 0;
    if (ev->rcpts != NULL) {
      char name[CHAT_MAX_NAME + 1];
      for (const char *p = ev->rcpts; chat__bus_next_name(&p, name);)
        stored_for(srv, name, seq);
    } else {
      stored_for(srv, ev->user, seq);
    }
    break;
  }
  case 'p':
    presence(srv, ev);
    break;
  case 'k':
    kick(srv, ev);
    break;
  case 'r':
    receipt(srv, ev);
    break;
  case 'e':
    event_line(srv, ev);
    break;
  case 'M':
    chat__cluster_on_carried(srv, ev);
    break;
  case 'f': /* the bus's own: its route cache (route_cache.h) */
    break;
  default:
    CHAT_DEBUG("cluster: an event of unknown kind %c", ev->kind);
    break;
  }
}

typedef struct rejoin_op {
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
} rejoin_op_t;

static void rejoined(void *arg, int status, char *const *strs, size_t n,
                     long long ival) {
  rejoin_op_t *op = arg;
  chat__session_t *s = op->s;
  (void)strs;
  (void)n;
  if (status == 0 && ival == 0 && !s->ended && s->user != NULL &&
      s->user->session == s) {
    /* its user logged in elsewhere while this node was taken for dead */
    s->moved = 1;
    chat__session_send_new(s, chat_ev_kicked("logged_in_elsewhere"));
    moved_on(op->srv, s->user, s);
  }
  chat__session_unref(s);
  free(op);
}

void chat__cluster_on_lost(void *arg) {
  chat__srv_t *srv = arg;
  /* Its users may have been taken offline, and some may have logged in
   * elsewhere since: each session asserts itself again, or goes. */
  for (chat__session_t *s = srv->sessions.next; s != &srv->sessions;
       s = s->next) {
    rejoin_op_t *op;
    if (s->ended || s->user == NULL || s->user->session != s ||
        !s->epoch[0] || (op = malloc(sizeof(*op))) == NULL)
      continue;
    *op = (rejoin_op_t){srv, s};
    chat__session_ref(s);
    if (chat__bus_rejoin(srv->bus, s->user->name, s->epoch, shown(s),
                         s->p2p_host ? s->p2p_host : s->host, s->p2p_port,
                         s->key, rejoined, op) < 0) {
      chat__session_unref(s);
      free(op);
    }
  }
}

/* ---- what sessions here tell the others -------------------------------- */

typedef struct login_op {
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
  chat__user_t *u;    /* pinned */
  void (*done)(void *arg, int status);
  void *arg;
} login_op_t;

static void login_done(login_op_t *op, int status) {
  op->u->pins--;
  op->done(op->arg, status);
  chat__session_unref(op->s);
  free(op);
}

static void logged_in(void *arg, int status, char *const *strs, size_t n,
                      long long ival) {
  login_op_t *op = arg;
  uint64_t max_seq = 0;
  (void)ival;
  if (status == 0 && n > 1) {
    max_seq = strtoull(strs[0], NULL, 10);
    /* messages carried to its older session's node and not settled there,
     * now among its held ones: its session pages them before anything
     * newer is pushed (login_complete: store_more) */
    long moved = strtol(strs[1], NULL, 10);
    if (moved > 0) {
      CHAT_INFO("%s: %ld message(s) carried to its older session's node "
                "now wait in the store", op->u->name, moved);
      op->u->held += (uint32_t)moved;
      op->u->store_more = 1;
      op->u->wgen++;
    }
  }
  for (size_t i = 2; status == 0 && i + 1 < n; i += 2) {
    chat__user_t *c = chat__registry_find(&op->srv->reg, strs[i]);
    chat_status_t st = chat_status_from_name(strs[i + 1]);
    if (c != NULL && c->session == NULL && st != CHAT_STATUS_NONE)
      c->rstatus = (uint8_t)st;
  }
  /* Order per sender across a move: this user's earlier messages still
   * held may carry seqs of another node's clock, ahead of ours. */
  if (status == 0)
    chat__srv_seq_above(op->srv, max_seq);
  login_done(op, status);
}

int chat__cluster_login(chat__srv_t *srv, chat__session_t *s, chat__user_t *u,
                        const char *host, int p2p_port, const char *key,
                        void (*done)(void *arg, int status), void *arg) {
  unsigned char raw[CHAT_BUS_EPOCH_LEN / 2];
  login_op_t *op = malloc(sizeof(*op));
  if (op == NULL)
    return -ENOMEM;
  randombytes_buf(raw, sizeof(raw));
  sodium_bin2hex(s->epoch, sizeof(s->epoch), raw, sizeof(raw));
  *op = (login_op_t){srv, s, u, done, arg};
  chat__session_ref(s);
  u->pins++;
  int r = chat__bus_login(srv->bus, u->name, s->epoch, shown(s), host,
                          p2p_port, key, logged_in, op);
  if (r < 0) {
    u->pins--;
    chat__session_unref(s);
    free(op);
  }
  return r;
}

void chat__cluster_logout(chat__srv_t *srv, chat__session_t *s) {
  if (srv->bus != NULL && !s->moved && s->epoch[0])
    chat__bus_logout(srv->bus, s->user->name, s->epoch);
}

void chat__cluster_status(chat__srv_t *srv, chat__session_t *s) {
  if (srv->bus != NULL && s->epoch[0])
    chat__bus_status(srv->bus, s->user->name, s->epoch, shown(s));
}

void chat__cluster_receipt(chat__srv_t *srv, const chat__user_t *from,
                           const char *msg_id, const char *by) {
  if (srv->bus != NULL)
    chat__bus_route(srv->bus, from->name, 'r', msg_id, by, NULL, NULL);
}

int chat__cluster_group_stored(chat__srv_t *srv, const char *group,
                               uint64_t seq, chat__bus_reply_cb cb,
                               void *arg) {
  return srv->bus != NULL ? chat__bus_group(srv->bus, group, seq, cb, arg)
                          : -ENOSYS;
}

void chat__cluster_tell(chat__srv_t *srv, const char *user, const json_t *obj) {
  char *line;
  if (srv->bus == NULL || (line = json_dumps(obj, JSON_COMPACT)) == NULL)
    return;
  chat__bus_route(srv->bus, user, 'e', line, NULL, NULL, NULL);
  free(line);
}

/* ---- connect ------------------------------------------------------------ */

typedef struct connect_op {
  chat__session_t *s; /* referenced */
  json_t *id;
  char to[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1];
  int reverse;
} connect_op_t;

static void connected(void *arg, int status, char *const *strs, size_t n,
                      long long ival) {
  connect_op_t *op = arg;
  chat__session_t *s = op->s;
  (void)ival;
  if (status < 0) {
    chat__session_error(s, op->id, CHAT_E_INTERNAL, "storage failed");
  } else if (n < 4) {
    chat__session_error(s, op->id, CHAT_E_OFFLINE, NULL);
  } else if (strcmp(strs[2], "0") == 0) {
    chat__session_error(s, op->id, CHAT_E_NO_P2P, NULL);
  } else {
    json_t *ok = chat_reply_ok(op->id);
    json_object_set_new(ok, "to", json_string(op->to));
    json_object_set_new(ok, "host", json_string(strs[1]));
    json_object_set_new(ok, "port", json_integer(atoi(strs[2])));
    json_object_set_new(ok, "ticket", json_string(op->ticket));
    if (strs[3][0])
      json_object_set_new(ok, "key", json_string(strs[3]));
    if (op->reverse && strs[3][0])
      json_object_set_new(ok, "reverse", json_true());
    chat__session_send_new(s, ok);
  }
  sodium_memzero(op->ticket, sizeof(op->ticket));
  json_decref(op->id);
  chat__session_unref(s);
  free(op);
}

int chat__cluster_connect(chat__srv_t *srv, chat__session_t *s,
                          const chat_msg_t *m, chat__user_t *to) {
  connect_op_t *op = calloc(1, sizeof(*op));
  json_t *ex;
  char *line;
  int r;
  if (op == NULL)
    return -ENOMEM;
  chat__ticket_new(op->ticket);
  snprintf(op->to, sizeof(op->to), "%s", to->name);
  /* The target dials back when we listen and both sides have keys; across
   * nodes nothing times a hole punch (each node knows one side's RTT). */
  op->reverse = s->p2p_port && s->key[0];
  ex = chat_ev_expect(s->user->name, op->ticket);
  if (ex && s->key[0])
    json_object_set_new(ex, "key", json_string(s->key));
  if (ex && op->reverse) {
    json_object_set_new(ex, "host",
                        json_string(s->p2p_host ? s->p2p_host : s->host));
    json_object_set_new(ex, "port", json_integer(s->p2p_port));
  }
  line = ex ? json_dumps(ex, JSON_COMPACT) : NULL;
  json_decref(ex);
  if (line == NULL) {
    free(op);
    return -ENOMEM;
  }
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  chat__session_ref(s);
  r = chat__bus_connect(srv->bus, to->name, line, connected, op);
  free(line);
  if (r < 0) {
    json_decref(op->id);
    chat__session_unref(s);
    free(op);
  }
  return r;
}

/* ---- contacts ----------------------------------------------------------- */

typedef struct contacts_op {
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
  json_t *id;
} contacts_op_t;

/* The directory's statuses, for contacts with no session here (a presence
 * event from another node may still be on its way: the reply must not say
 * less than the directory, which a login updates before its `ok`). */
static void contacts_read(void *arg, int status, char *const *strs, size_t n,
                          long long ival) {
  contacts_op_t *op = arg;
  chat__session_t *s = op->s;
  chat__user_t *me = s->user;
  (void)ival;
  if (!s->ended && me != NULL && me->session == s && me->full) {
    for (uint32_t i = 0; status == 0 && i < me->ncontacts && i < n; i++) {
      chat__user_t *c = me->contacts[i];
      if (c->session == NULL) {
        chat_status_t st = chat_status_from_name(strs[i]);
        c->rstatus = (uint8_t)(st != CHAT_STATUS_NONE ? st : 0);
      }
    }
    chat__srv_reply_list(s, op->id, "contacts",
                         chat__srv_user_list(me->contacts, me->ncontacts));
  }
  json_decref(op->id);
  chat__session_unref(s);
  free(op);
}

int chat__cluster_contacts(chat__srv_t *srv, chat__session_t *s,
                           const chat_msg_t *m) {
  chat__user_t *me = s->user;
  const char **names = malloc(me->ncontacts * sizeof(*names));
  contacts_op_t *op = malloc(sizeof(*op));
  int r;
  if (names == NULL || op == NULL) {
    free(names);
    free(op);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < me->ncontacts; i++)
    names[i] = me->contacts[i]->name;
  *op = (contacts_op_t){srv, s, json_incref((json_t *)m->id)};
  chat__session_ref(s);
  r = chat__bus_statuses(srv->bus, names, me->ncontacts, contacts_read, op);
  free(names);
  if (r < 0) {
    json_decref(op->id);
    chat__session_unref(s);
    free(op);
  }
  return r;
}
