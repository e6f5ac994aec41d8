/* peer.c -- direct links: the peer_hello / peer_welcome handshake and msg /
 * ack on open links, over links the env provides (peer_net.c's TLS sockets
 * in the real program). The decisions are elsewhere: tickets.c says which
 * hellos pass (ticket and key), outbox.c what to send on which link and
 * whether a dialed link proved the key the server vouched for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "client.h"

typedef enum peer_state {
  P_DIALING,     /* we dialed; connect and TLS handshake in progress */
  P_HELLO_SENT,  /* we dialed and said hello; waiting for peer_welcome */
  P_AWAIT_HELLO, /* a peer dialed us; waiting for its peer_hello */
  P_WAIT_TICKET, /* its hello waits for the server's expect */
  P_OPEN,
  P_CLOSING
} peer_state_t;

struct chat_peer {
  chat_client_t *c;
  chat_peer_t *next, **pprev;
  void *io;                  /* the env's handle for the link */
  uint64_t link;             /* the outbox's id; 0 until it knows the link */
  int inbound;               /* counted in c->n_inbound until decided */
  peer_state_t state;
  uint64_t since;            /* accepted at (inbound) */
  char name[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1]; /* dialed: shown once the key is proven */
};

static chat_peer_t *peer_new(chat_client_t *c) {
  chat_peer_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->c = c;
  p->next = c->peers;
  if (c->peers)
    c->peers->pprev = &p->next;
  p->pprev = &c->peers;
  c->peers = p;
  return p;
}

static void peer_free(chat_peer_t *p) {
  *p->pprev = p->next;
  if (p->next)
    p->next->pprev = p->pprev;
  free(p);
}

static chat_peer_t *peer_by_link(chat_client_t *c, uint64_t link) {
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->link == link && link)
      return p;
  return NULL;
}

const char *chat__peer_name(const chat_peer_t *p) { return p->name; }

static void send_obj(chat_peer_t *p, json_t *obj) {
  if (obj)
    p->c->env->peer_send(p->c->env_ctx, p->io, obj);
  json_decref(obj);
}

static void close_link(chat_peer_t *p, int graceful) {
  p->state = P_CLOSING;
  p->c->env->peer_close(p->c->env_ctx, p->io, graceful);
}

static void inbound_decided(chat_peer_t *p) {
  if (p->inbound) {
    p->inbound = 0;
    p->c->n_inbound--;
  }
}

static void refuse(chat_peer_t *p, const char *why) {
  chat_client_t *c = p->c;
  CHAT_INFO("refusing a direct link: %s", why);
  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  inbound_decided(p);
  send_obj(p, chat_reply_error(NULL, CHAT_E_BAD_TICKET, why));
  close_link(p, 1);
}

/* The key p's link proved, or NULL. */
static const char *link_key(chat_peer_t *p, char hex[CHAT_KEY_LEN + 1]) {
  chat_client_t *c = p->c;
  if (!c->env->peer_key || c->env->peer_key(c->env_ctx, p->io, hex) < 0 ||
      !chat_key_valid(hex))
    return NULL;
  return hex;
}

/* For people: the link is up and who is at the other end was proven. */
static void note_secure(chat_peer_t *p) {
  chat__out_info(p->c, "direct link with %s: encrypted, %s's key verified",
                 p->name, p->name);
}

/* p->name is the hello's from, which the ticket proved. */
static void accept_link(chat_peer_t *p) {
  chat_client_t *c = p->c;
  inbound_decided(p);
  p->link = chat_outbox_link_accepted(c->ob, p->name, chat__client_now(c));
  if (!p->link) {
    close_link(p, 0);
    return;
  }
  p->state = P_OPEN;
  send_obj(p, json_pack("{s:s,s:s}", "type", "peer_welcome", "user",
                        c->opts.user));
  note_secure(p);
}

#define WHY_TICKET "ticket unknown, expired, used, or for another user"
#define WHY_KEY "the link's key is not the one the server vouched for"

void chat__peer_on_ticket(void *ctx, void *waiter,
                          chat_ticket_verdict_t verdict) {
  chat_peer_t *p = waiter;
  if (p->state != P_WAIT_TICKET)
    return;
  if (verdict == CHAT_TICKET_ACCEPT) {
    accept_link(p);
    p->c->env->peer_resume(p->c->env_ctx, p->io);
  } else {
    refuse(p, verdict == CHAT_TICKET_BAD_KEY ? WHY_KEY : WHY_TICKET);
  }
}

static void on_hello(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  chat_ticket_verdict_t v;
  char hex[CHAT_KEY_LEN + 1];
  if (m->type != CHAT_T_PEER_HELLO || m->proto != CHAT_PROTO_VERSION) {
    refuse(p, "expected peer_hello, proto 1");
    return;
  }
  snprintf(p->name, sizeof(p->name), "%s", m->from);
  v = chat_tickets_hello(c->tickets, p, m->from, m->to, m->ticket,
                         link_key(p, hex), chat__client_now(c));
  if (v == CHAT_TICKET_ACCEPT) {
    accept_link(p);
  } else if (v == CHAT_TICKET_WAIT) {
    /* Nothing more is read until the expect decides. */
    CHAT_INFO("hello from %s waits for the server's expect", p->name);
    p->state = P_WAIT_TICKET;
    c->env->peer_pause(c->env_ctx, p->io);
  } else {
    refuse(p, v == CHAT_TICKET_BAD_KEY ? WHY_KEY : WHY_TICKET);
  }
}

static void on_open_frame(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  uint64_t now = chat__client_now(c);

  chat_outbox_link_activity(c->ob, p->link, now);
  switch (m->type) {
  case CHAT_T_MSG:
    /* The sender is the peer proven in the handshake, never a field. */
    chat__session_show_message(c, p->name, NULL, m->msg_id, m->body,
                               m->body_len, m->ts, "direct", 0);
    send_obj(p, json_pack("{s:s,s:s}", "type", "ack", "msg_id", m->msg_id));
    break;
  case CHAT_T_ACK:
    chat_outbox_direct_ack(c->ob, p->link, m->msg_id, now);
    break;
  case CHAT_T_PING:
    send_obj(p, chat_msg_new(CHAT_T_PONG));
    break;
  case CHAT_T_ERROR:
    CHAT_WARN("peer %s: error %s", p->name, m->code);
    break;
  default:
    break;
  }
}

void chat__peer_on_frame(chat_peer_t *p, const json_t *obj) {
  chat_client_t *c = p->c;
  chat_msg_t m;
  chat_error_t err = {0};

  if (p->state == P_CLOSING)
    return;
  if (chat_msg_decode(obj, CHAT_ROLE_PEER, &m, &err) < 0) {
    if (p->state == P_AWAIT_HELLO) {
      refuse(p, err.message);
      return;
    }
    send_obj(p, chat_reply_from_error(m.id, &err));
    return;
  }
  switch (p->state) {
  case P_AWAIT_HELLO:
    on_hello(p, &m);
    break;
  case P_HELLO_SENT:
    if (m.type == CHAT_T_PEER_WELCOME && strcmp(m.user, p->name) == 0) {
      p->state = P_OPEN;
      note_secure(p);
      chat_outbox_link_up(c->ob, p->link, chat__client_now(c));
    } else {
      CHAT_INFO("direct link to %s refused (%s)", p->name,
                m.type == CHAT_T_ERROR ? m.code : "no welcome");
      close_link(p, 0); /* chat__peer_closed tells the outbox */
    }
    break;
  case P_OPEN:
    on_open_frame(p, &m);
    break;
  default:
    break;
  }
}

void chat__peer_on_bad_frame(chat_peer_t *p, const chat_error_t *err) {
  if (p->state == P_CLOSING)
    return;
  send_obj(p, chat_reply_from_error(NULL, err));
  /* A bad line keeps an open link (PROTOCOL.md 1), but before the handshake
   * anything but a good peer_hello ends it (4): the peer is no one yet. */
  if (p->state == P_AWAIT_HELLO) {
    CHAT_INFO("refusing a direct link: %s", err->message);
    inbound_decided(p);
    close_link(p, 1);
  }
}

void chat__peer_closed(chat_peer_t *p) {
  chat_client_t *c = p->c;

  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  inbound_decided(p);
  if (p->link && !c->finished)
    chat_outbox_link_down(c->ob, p->link, chat__client_now(c));
  peer_free(p);
}

/* ---- dialing ------------------------------------------------------------ */

void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket) {
  chat_peer_t *p = peer_new(c);

  if (!p) {
    CHAT_ERROR("out of memory dialing %s", to);
    return; /* the outbox's handshake timeout takes it to the relay */
  }
  p->link = link;
  p->state = P_DIALING;
  snprintf(p->name, sizeof(p->name), "%s", to);
  snprintf(p->ticket, sizeof(p->ticket), "%s", ticket);
  if (c->env->peer_dial(c->env_ctx, p, host, port, &p->io) < 0) {
    CHAT_ERROR("cannot dial %s", to);
    peer_free(p); /* as above */
    return;
  }
}

void chat__peer_dialed(chat_peer_t *p, int status) {
  chat_client_t *c = p->c;
  char hex[CHAT_KEY_LEN + 1];
  int rc;

  if (p->state != P_DIALING)
    return;
  if (status == UV_EPROTO) {
    /* It could not prove any key: treated as one that proves a wrong one. */
    CHAT_INFO("direct link to %s: TLS handshake failed", p->name);
    if (p->link)
      chat_outbox_link_failed(c->ob, p->link, "bad_key", chat__client_now(c));
    p->link = 0; /* told; chat__peer_closed follows */
    p->state = P_CLOSING;
    return;
  }
  if (status < 0)
    return; /* chat__peer_closed follows: refused */
  rc = p->link ? chat_outbox_link_secured(c->ob, p->link, link_key(p, hex),
                                          chat__client_now(c))
               : -ENOENT;
  if (rc == -EPERM) {
    /* The outbox closed the link (CHAT_OB_CLOSE_LINK): the ticket was never
     * shown to whoever answered. */
    CHAT_WARN("direct link to %s refused: its key is not the one the server "
              "vouched for", p->name);
    return;
  }
  if (rc < 0) { /* the outbox gave up on it meanwhile (timeout) */
    close_link(p, 0);
    return;
  }
  p->state = P_HELLO_SENT;
  send_obj(p, json_pack("{s:s,s:i,s:s,s:s,s:s}", "type", "peer_hello",
                        "proto", CHAT_PROTO_VERSION, "from", c->opts.user,
                        "to", p->name, "ticket", p->ticket));
  sodium_memzero(p->ticket, sizeof(p->ticket));
}

int chat__peer_send(chat_client_t *c, uint64_t link, const json_t *obj) {
  chat_peer_t *p = peer_by_link(c, link);
  if (!p || p->state != P_OPEN)
    return -ENOTCONN;
  return c->env->peer_send(c->env_ctx, p->io, obj);
}

void chat__peer_close_link(chat_client_t *c, uint64_t link) {
  chat_peer_t *p = peer_by_link(c, link);
  if (!p)
    return;
  p->link = 0; /* the outbox has forgotten it already */
  close_link(p, 1);
}

void chat__peer_close_all(chat_client_t *c) {
  for (chat_peer_t *p = c->peers; p; p = p->next)
    close_link(p, 1);
}

/* ---- accepting ---------------------------------------------------------- */

void chat__peer_on_expect(chat_client_t *c, const char *from,
                          const char *ticket, const char *key) {
  if (!c->tickets)
    return;
  chat_tickets_expect(c->tickets, from, ticket, key, chat__client_now(c));
}

chat_peer_t *chat__peer_accepted(chat_client_t *c, void *link) {
  chat_peer_t *p;
  if (c->stopping || !c->tickets)
    return NULL;
  if (c->n_inbound >= CHAT_CLIENT_MAX_INBOUND)
    return NULL; /* too many half-open links: shed this one */
  if (!(p = peer_new(c)))
    return NULL;
  p->io = link;
  p->inbound = 1;
  c->n_inbound++;
  p->state = P_AWAIT_HELLO;
  p->since = chat__client_now(c);
  return p;
}

/* Inbound links that never say hello (or trickle it) are cut off. */
void chat__peer_sweep(chat_client_t *c) {
  uint64_t now = chat__client_now(c);
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->state == P_AWAIT_HELLO && now - p->since >= CHAT_CLIENT_HELLO_MS) {
      inbound_decided(p);
      close_link(p, 0);
    }
}

int64_t chat__peer_next_deadline(chat_client_t *c) {
  int64_t t = -1;
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->state == P_AWAIT_HELLO &&
        (t < 0 || (int64_t)(p->since + CHAT_CLIENT_HELLO_MS) < t))
      t = (int64_t)(p->since + CHAT_CLIENT_HELLO_MS);
  return t;
}
