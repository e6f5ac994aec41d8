/* outbox.c -- the send path of every typed message: direct, relay, retries.
 * See outbox.h for the rules; this file only keeps the states straight. */
#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef enum msg_state {
  M_NEW,         /* waits for the server session before it can be routed */
  M_WAIT_LINK,   /* waits for link `link` to come up */
  M_DIRECT_SENT, /* sent on link `link`; ack due by deadline */
  M_RELAY_WAIT,  /* to be relayed when the server is up (and deadline passed) */
  M_RELAY_SENT,  /* send issued; the server's reply is due */
  /* Relayed (sent shown to the user), kept until its receipt: a server
   * that dies before the recipient acks may not have it on disk. */
  M_RECEIPT,     /* waits for the receipt */
  M_RESENT       /* sent again after a reconnect; the reply is not shown */
} msg_state_t;

typedef struct ob_msg {
  struct ob_msg *prev, *next;
  msg_state_t state;
  char to[CHAT_MAX_NAME + 1];    /* "" for a group message */
  char group[CHAT_MAX_NAME + 1]; /* "" for a 1:1 message */
  char msg_id[CHAT_MAX_MSG_ID + 1];
  char fallback[32];             /* "" while it has not fallen back */
  char *body;                    /* owned */
  size_t body_len;
  int64_t ts;
  uint64_t link;
  int64_t deadline;              /* -1: none */
} ob_msg_t;

typedef enum link_state {
  L_CONNECTING, /* connect sent to the server, reply due by deadline */
  L_DIALING,    /* dial and TLS handshake, key not proven yet */
  L_SECURED,    /* the listener proved the vouched key; hello said,
                 * peer_welcome due by the same deadline */
  L_OPEN
} link_state_t;

typedef struct ob_link {
  struct ob_link *prev, *next;
  uint64_t id;
  char peer[CHAT_MAX_NAME + 1];
  char key[CHAT_KEY_LEN + 1]; /* dialed: the key the connect reply vouched */
  link_state_t state;
  int64_t deadline;
  int64_t last_active;
  char path[8];               /* "dialed", "reverse", "punched" or "" */
} ob_link_t;

struct chat_outbox {
  chat_roster_t *roster;
  chat_ob_sink_t sink;
  void *ctx;
  ob_msg_t *msgs, *msgs_tail; /* in the order typed */
  size_t n_msgs;
  size_t n_receipt;           /* of them in M_RECEIPT or M_RESENT */
  ob_link_t *links;
  size_t n_links;
  uint64_t next_link;
  int server_up;
};

/* ---- lists ------------------------------------------------------------ */

static ob_msg_t *msg_find(const chat_outbox_t *ob, const char *msg_id) {
  for (ob_msg_t *m = ob->msgs; m; m = m->next)
    if (strcmp(m->msg_id, msg_id) == 0)
      return m;
  return NULL;
}

static int after_sent(const ob_msg_t *m) {
  return m->state == M_RECEIPT || m->state == M_RESENT;
}

static void msg_free(chat_outbox_t *ob, ob_msg_t *m) {
  if (after_sent(m))
    ob->n_receipt--;
  if (m->prev)
    m->prev->next = m->next;
  else
    ob->msgs = m->next;
  if (m->next)
    m->next->prev = m->prev;
  else
    ob->msgs_tail = m->prev;
  ob->n_msgs--;
  free(m->body);
  free(m);
}

static ob_link_t *link_find(const chat_outbox_t *ob, uint64_t id) {
  for (ob_link_t *l = ob->links; l; l = l->next)
    if (l->id == id)
      return l;
  return NULL;
}

/* The link to use for peer: an open one if any, else one being set up. */
static ob_link_t *link_for_peer(const chat_outbox_t *ob, const char *peer) {
  ob_link_t *pending = NULL;
  for (ob_link_t *l = ob->links; l; l = l->next) {
    if (strcmp(l->peer, peer) != 0)
      continue;
    if (l->state == L_OPEN)
      return l;
    if (!pending)
      pending = l;
  }
  return pending;
}

static ob_link_t *link_new(chat_outbox_t *ob, const char *peer,
                           link_state_t state) {
  ob_link_t *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->id = ++ob->next_link;
  strcpy(l->peer, peer);
  l->state = state;
  l->deadline = -1;
  l->next = ob->links;
  if (ob->links)
    ob->links->prev = l;
  ob->links = l;
  ob->n_links++;
  return l;
}

static void link_free(chat_outbox_t *ob, ob_link_t *l) {
  if (l->prev)
    l->prev->next = l->next;
  else
    ob->links = l->next;
  if (l->next)
    l->next->prev = l->prev;
  ob->n_links--;
  free(l);
}

/* ---- actions ---------------------------------------------------------- */

static void emit(chat_outbox_t *ob, chat_ob_act_kind_t kind, const ob_msg_t *m,
                 const ob_link_t *l, chat_ob_action_t *a) {
  a->kind = kind;
  if (m) {
    a->to = m->to[0] ? m->to : NULL;
    a->group = m->group[0] ? m->group : NULL;
    a->msg_id = m->msg_id;
    a->body = m->body;
    a->body_len = m->body_len;
    a->ts = m->ts;
    a->fallback = m->fallback[0] ? m->fallback : NULL;
  }
  if (l) {
    a->link = l->id;
    if (!m)
      a->to = l->peer;
  }
  ob->sink(ob->ctx, a);
}

static void emit_simple(chat_outbox_t *ob, chat_ob_act_kind_t kind,
                        const ob_msg_t *m, const ob_link_t *l) {
  chat_ob_action_t a;
  memset(&a, 0, sizeof(a));
  emit(ob, kind, m, l, &a);
}

/* ---- routing ---------------------------------------------------------- */

static void relay(chat_outbox_t *ob, ob_msg_t *m, const char *reason) {
  if (reason && !m->fallback[0]) {
    strncpy(m->fallback, reason, sizeof(m->fallback) - 1);
    m->fallback[sizeof(m->fallback) - 1] = '\0';
  }
  m->link = 0;
  m->deadline = -1;
  if (!ob->server_up) {
    m->state = M_RELAY_WAIT;
    return;
  }
  m->state = M_RELAY_SENT;
  emit_simple(ob, CHAT_OB_RELAY_SEND, m, NULL);
}

static void direct_send(chat_outbox_t *ob, ob_msg_t *m, ob_link_t *l,
                        int64_t now) {
  m->state = M_DIRECT_SENT;
  m->link = l->id;
  m->deadline = now + CHAT_OB_ACK_TIMEOUT_MS;
  l->last_active = now;
  emit_simple(ob, CHAT_OB_DIRECT_SEND, m, l);
}

static void route(chat_outbox_t *ob, ob_msg_t *m, int64_t now) {
  ob_link_t *l;
  const chat_contact_t *c;

  if (m->group[0]) {
    relay(ob, m, NULL);
    return;
  }
  l = link_for_peer(ob, m->to);
  if (l && l->state == L_OPEN) {
    direct_send(ob, m, l, now);
    return;
  }
  if (l) {
    m->state = M_WAIT_LINK;
    m->link = l->id;
    return;
  }
  if (!ob->server_up) {
    m->state = M_NEW;
    return;
  }
  c = chat_roster_find(ob->roster, m->to);
  if (!c) {
    relay(ob, m, "not_contact");
  } else if (c->status == CHAT_STATUS_OFFLINE) {
    relay(ob, m, "offline");
  } else if (c->no_p2p) {
    relay(ob, m, "no_p2p");
  } else if (!(l = link_new(ob, m->to, L_CONNECTING))) {
    relay(ob, m, "internal");
  } else {
    l->deadline = now + CHAT_OB_CONNECT_TIMEOUT_MS;
    m->state = M_WAIT_LINK;
    m->link = l->id;
    emit_simple(ob, CHAT_OB_CONNECT, NULL, l);
  }
}

/* The link is gone: messages waiting for it fall back with wait_reason,
 * messages sent on it and not acked with "no_ack". Frees l. */
static void fail_link(chat_outbox_t *ob, ob_link_t *l, const char *wait_reason,
                      int close) {
  uint64_t id = l->id;
  if (close)
    emit_simple(ob, CHAT_OB_CLOSE_LINK, NULL, l);
  link_free(ob, l);
  for (ob_msg_t *m = ob->msgs; m; m = m->next) {
    if (m->link != id)
      continue;
    if (m->state == M_WAIT_LINK)
      relay(ob, m, wait_reason);
    else if (m->state == M_DIRECT_SENT)
      relay(ob, m, "no_ack");
  }
}

/* ---- public ----------------------------------------------------------- */

int chat_outbox_new(chat_roster_t *roster, chat_ob_sink_t sink, void *ctx,
                    chat_outbox_t **out) {
  chat_outbox_t *ob = calloc(1, sizeof(*ob));
  if (!ob)
    return -ENOMEM;
  ob->roster = roster;
  ob->sink = sink;
  ob->ctx = ctx;
  *out = ob;
  return 0;
}

void chat_outbox_free(chat_outbox_t *ob) {
  if (!ob)
    return;
  while (ob->msgs)
    msg_free(ob, ob->msgs);
  while (ob->links)
    link_free(ob, ob->links);
  free(ob);
}

int chat_outbox_submit(chat_outbox_t *ob, const char *to, const char *group,
                       const char *msg_id, const char *body, size_t body_len,
                       int64_t ts, int64_t now) {
  ob_msg_t *m;
  const char *name = to ? to : group;

  if ((to == NULL) == (group == NULL) || !chat_name_valid(name) ||
      !msg_id || !chat_msg_id_valid(msg_id) || !body ||
      !chat_body_valid(body, body_len))
    return -EINVAL;
  if (msg_find(ob, msg_id))
    return -EEXIST;
  /* Full: the oldest kept only for its receipt makes room (it was
   * relayed; only a server crash in its first second could lose it). */
  if (ob->n_msgs >= CHAT_OB_MAX_MESSAGES && ob->n_receipt > 0)
    for (ob_msg_t *old = ob->msgs; old; old = old->next)
      if (after_sent(old)) {
        msg_free(ob, old);
        break;
      }
  if (ob->n_msgs >= CHAT_OB_MAX_MESSAGES)
    return -ENOBUFS;
  m = calloc(1, sizeof(*m));
  if (!m || !(m->body = malloc(body_len + 1))) {
    free(m);
    return -ENOMEM;
  }
  memcpy(m->body, body, body_len);
  m->body[body_len] = '\0';
  m->body_len = body_len;
  strcpy(to ? m->to : m->group, name);
  strcpy(m->msg_id, msg_id);
  m->ts = ts;
  m->deadline = -1;
  m->prev = ob->msgs_tail;
  if (ob->msgs_tail)
    ob->msgs_tail->next = m;
  else
    ob->msgs = m;
  ob->msgs_tail = m;
  ob->n_msgs++;
  route(ob, m, now);
  return 0;
}

void chat_outbox_server_up(chat_outbox_t *ob, int64_t now) {
  ob->server_up = 1;
  for (ob_msg_t *m = ob->msgs; m; m = m->next) {
    if (m->state == M_NEW) {
      route(ob, m, now);
    } else if (m->state == M_RELAY_WAIT) {
      relay(ob, m, NULL);
    } else if (m->state == M_RECEIPT || m->state == M_RESENT) {
      /* The same msg_id again: a server that still holds it answers with
       * its status, one that lost it takes it anew. */
      m->state = M_RESENT;
      emit_simple(ob, CHAT_OB_RELAY_SEND, m, NULL);
    }
  }
}

void chat_outbox_server_down(chat_outbox_t *ob, int64_t now) {
  ob_link_t *next;
  ob->server_up = 0;
  /* A connect whose reply is lost is asked again once the server is back:
   * its messages start over. Dialing and open links do not need the server. */
  for (ob_link_t *l = ob->links; l; l = next) {
    uint64_t id = l->id;
    next = l->next;
    if (l->state != L_CONNECTING)
      continue;
    link_free(ob, l);
    for (ob_msg_t *m = ob->msgs; m; m = m->next)
      if (m->state == M_WAIT_LINK && m->link == id) {
        m->state = M_NEW;
        m->link = 0;
      }
  }
  for (ob_msg_t *m = ob->msgs; m; m = m->next)
    if (m->state == M_RELAY_SENT)
      m->state = M_RELAY_WAIT;
}

static ob_link_t *connecting_link(const chat_outbox_t *ob, const char *to) {
  for (ob_link_t *l = ob->links; l; l = l->next)
    if (l->state == L_CONNECTING && to && strcmp(l->peer, to) == 0)
      return l;
  return NULL;
}

void chat_outbox_connect_ok(chat_outbox_t *ob, const char *to,
                            const char *host, int port, const char *ticket,
                            const char *key, int64_t now) {
  chat_ob_action_t a;
  ob_link_t *l = connecting_link(ob, to);
  if (!l)
    return;
  if (!key || !chat_key_valid(key)) {
    /* Nobody to pin: a link we cannot authenticate is no direct link. */
    fail_link(ob, l, "bad_key", 0);
    return;
  }
  strcpy(l->key, key);
  l->state = L_DIALING;
  l->deadline = now + CHAT_OB_WELCOME_TIMEOUT_MS;
  memset(&a, 0, sizeof(a));
  a.host = host;
  a.port = port;
  a.ticket = ticket;
  a.key = l->key;
  emit(ob, CHAT_OB_DIAL, NULL, l, &a);
}

void chat_outbox_connect_failed(chat_outbox_t *ob, const char *to,
                                const char *code, int64_t now) {
  ob_link_t *l = connecting_link(ob, to);
  if (!l)
    return;
  if (code && strcmp(code, "no_p2p") == 0) {
    chat_contact_t *c = chat_roster_find(ob->roster, to);
    if (c)
      c->no_p2p = 1;
  }
  fail_link(ob, l, code ? code : "internal", 0);
}

void chat_outbox_relay_ok(chat_outbox_t *ob, const char *msg_id,
                          const char *status, int64_t relayed, int64_t stored,
                          int64_t now) {
  chat_ob_action_t a;
  ob_msg_t *m = msg_id ? msg_find(ob, msg_id) : NULL;
  int relayed_1to1 = m && !m->group[0] && status &&
                     strcmp(status, "relayed") == 0;
  if (m && m->state == M_RESENT) { /* the user was told already */
    if (relayed_1to1)
      m->state = M_RECEIPT;
    else
      msg_free(ob, m);
    return;
  }
  if (!m || m->state != M_RELAY_SENT)
    return;
  memset(&a, 0, sizeof(a));
  a.via = "relay";
  a.status = status;
  a.relayed = relayed;
  a.stored = stored;
  emit(ob, CHAT_OB_SENT, m, NULL, &a);
  /* stored is on the server's disk; relayed waits for its receipt */
  if (relayed_1to1) {
    m->state = M_RECEIPT;
    ob->n_receipt++;
  } else {
    msg_free(ob, m);
  }
}

void chat_outbox_receipt(chat_outbox_t *ob, const char *msg_id) {
  ob_msg_t *m = msg_id ? msg_find(ob, msg_id) : NULL;
  if (m && after_sent(m))
    msg_free(ob, m);
}

void chat_outbox_relay_failed(chat_outbox_t *ob, const char *msg_id,
                              const char *code, const char *message,
                              int64_t now) {
  chat_ob_action_t a;
  ob_msg_t *m = msg_id ? msg_find(ob, msg_id) : NULL;
  if (m && m->state == M_RESENT) { /* shown as sent already: let it go */
    msg_free(ob, m);
    return;
  }
  if (!m || m->state != M_RELAY_SENT)
    return;
  /* Nothing was accepted; these pass, so try again a little later. */
  if (code && (strcmp(code, "rate_limited") == 0 ||
               strcmp(code, "internal") == 0 ||
               strcmp(code, "server_busy") == 0)) {
    m->state = M_RELAY_WAIT;
    m->deadline = now + CHAT_OB_RETRY_MS;
    return;
  }
  memset(&a, 0, sizeof(a));
  a.code = code ? code : "internal";
  a.message = message ? message : "";
  emit(ob, CHAT_OB_FAILED, m, NULL, &a);
  msg_free(ob, m);
}

int chat_outbox_link_secured(chat_outbox_t *ob, uint64_t link,
                             const char *key, int64_t now) {
  ob_link_t *l = link_find(ob, link);
  if (!l || l->state != L_DIALING)
    return -ENOENT;
  if (!key || strcmp(key, l->key) != 0) {
    fail_link(ob, l, "bad_key", 1);
    return -EPERM;
  }
  l->state = L_SECURED;
  return 0;
}

void chat_outbox_link_failed(chat_outbox_t *ob, uint64_t link,
                             const char *reason, int64_t now) {
  ob_link_t *l = link_find(ob, link);
  if (l)
    fail_link(ob, l, reason ? reason : "refused", 0);
}

void chat_outbox_link_up(chat_outbox_t *ob, uint64_t link, int64_t now) {
  ob_link_t *l = link_find(ob, link);
  if (!l || l->state != L_SECURED)
    return;
  l->state = L_OPEN;
  l->deadline = -1;
  l->last_active = now;
  for (ob_msg_t *m = ob->msgs; m; m = m->next)
    if (m->state == M_WAIT_LINK && m->link == link)
      direct_send(ob, m, l, now);
}

uint64_t chat_outbox_link_accepted(chat_outbox_t *ob, const char *peer,
                                   int64_t now) {
  ob_link_t *l;
  if (!peer || !chat_name_valid(peer) || !(l = link_new(ob, peer, L_OPEN)))
    return 0;
  l->last_active = now;
  return l->id;
}

void chat_outbox_link_activity(chat_outbox_t *ob, uint64_t link, int64_t now) {
  ob_link_t *l = link_find(ob, link);
  if (l)
    l->last_active = now;
}

void chat_outbox_link_down(chat_outbox_t *ob, uint64_t link, int64_t now) {
  ob_link_t *l = link_find(ob, link);
  if (l)
    fail_link(ob, l, "refused", 0);
}

void chat_outbox_direct_ack(chat_outbox_t *ob, uint64_t link,
                            const char *msg_id, int64_t now) {
  chat_ob_action_t a;
  ob_link_t *l = link_find(ob, link);
  ob_msg_t *m = msg_id ? msg_find(ob, msg_id) : NULL;
  if (!l)
    return;
  l->last_active = now;
  /* The ack may come on another link to the same peer (both dialed). */
  if (!m || m->state != M_DIRECT_SENT || strcmp(m->to, l->peer) != 0)
    return;
  memset(&a, 0, sizeof(a));
  a.via = "direct";
  a.status = "delivered";
  a.path = l->path[0] ? l->path : NULL;
  emit(ob, CHAT_OB_SENT, m, NULL, &a);
  msg_free(ob, m);
}

void chat_outbox_tick(chat_outbox_t *ob, int64_t now) {
  ob_link_t *l, *lnext;
  ob_msg_t *m;

  for (l = ob->links; l; l = lnext) {
    lnext = l->next;
    if (l->state == L_CONNECTING && l->deadline <= now) {
      fail_link(ob, l, "timeout", 0);
    } else if ((l->state == L_DIALING || l->state == L_SECURED) &&
               l->deadline <= now) {
      fail_link(ob, l, "timeout", 1);
    } else if (l->state == L_OPEN && l->last_active + CHAT_OB_IDLE_MS <= now) {
      int busy = 0;
      for (m = ob->msgs; m && !busy; m = m->next)
        busy = m->link == l->id && m->state == M_DIRECT_SENT;
      if (!busy) {
        emit_simple(ob, CHAT_OB_CLOSE_LINK, NULL, l);
        link_free(ob, l);
      }
    }
  }
  /* A missing ack means the link is no good: close it, relay what it held.
   * fail_link may change later messages, so restart after each one. */
  for (;;) {
    for (m = ob->msgs; m; m = m->next)
      if (m->state == M_DIRECT_SENT && m->deadline <= now)
        break;
    if (!m)
      break;
    l = link_find(ob, m->link);
    if (l)
      fail_link(ob, l, "timeout", 1);
    else
      relay(ob, m, "no_ack");
  }
  if (ob->server_up)
    for (m = ob->msgs; m; m = m->next)
      if (m->state == M_RELAY_WAIT && m->deadline >= 0 && m->deadline <= now)
        relay(ob, m, NULL);
}

int64_t chat_outbox_next_deadline(const chat_outbox_t *ob) {
  int64_t best = -1, d;
#define CONSIDER(x)                    \
  do {                                 \
    d = (x);                           \
    if (d >= 0 && (best < 0 || d < best)) \
      best = d;                        \
  } while (0)
  for (const ob_link_t *l = ob->links; l; l = l->next)
    CONSIDER(l->state == L_OPEN ? l->last_active + CHAT_OB_IDLE_MS
                                : l->deadline);
  for (const ob_msg_t *m = ob->msgs; m; m = m->next)
    if (m->state == M_DIRECT_SENT ||
        (m->state == M_RELAY_WAIT && ob->server_up))
      CONSIDER(m->deadline);
#undef CONSIDER
  return best;
}

size_t chat_outbox_pending(const chat_outbox_t *ob) {
  return ob->n_msgs - ob->n_receipt;
}

size_t chat_outbox_awaiting_receipt(const chat_outbox_t *ob) {
  return ob->n_receipt;
}

int chat_outbox_has(const chat_outbox_t *ob, const char *msg_id) {
  return msg_id && msg_find(ob, msg_id) != NULL;
}

size_t chat_outbox_links(const chat_outbox_t *ob) { return ob->n_links; }

const char *chat_outbox_link_peer(const chat_outbox_t *ob, uint64_t link) {
  const ob_link_t *l = link_find(ob, link);
  return l && l->state == L_OPEN ? l->peer : NULL;
}

void chat_outbox_link_path(chat_outbox_t *ob, uint64_t link,
                           const char *path) {
  ob_link_t *l = link_find(ob, link);
  if (l && path)
    snprintf(l->path, sizeof(l->path), "%s", path);
}
