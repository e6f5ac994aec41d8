/* peer.c -- direct links: the peer_hello / peer_welcome handshake and msg /
 * ack on open links, over links the env provides (peer_net.c's TLS sockets
 * in the real program). The decisions are elsewhere: tickets.c says which
 * hellos pass (ticket and key), outbox.c what to send on which link and
 * whether a dialed link proved the key the server vouched for, nat.c when
 * to try which way across NATs.
 *
 * Every attempt at a link is a race (docs/NAT.md): the asker (who sent
 * connect) dials the listener's address and, behind the same NAT, its LAN
 * addresses; the target may dial back (reverse) and both may punch. Each
 * way is a chat_peer_t of the race. The application roles never change
 * with the way: the asker proves nothing but its key and says peer_hello
 * with the ticket, the target checks the ticket and says peer_welcome. The
 * TCP and TLS roles follow the way: whoever dials is the TLS client, except
 * in a punch (both dial), where the asker is. The asker takes the first way
 * whose other end proved the vouched key and closes the rest; the target
 * ends its race when the ticket is used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "client.h"
#include "nat.h"
#include "peer_int.h"

chat_peer_t *chat__peer_new(chat_client_t *c) {
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

void chat__peer_free(chat_peer_t *p) {
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

void chat__peer_send_obj(chat_peer_t *p, json_t *obj) {
  if (obj)
    p->c->env->peer_send(p->c->env_ctx, p->io, obj);
  json_decref(obj);
}

void chat__peer_shut(chat_peer_t *p, int graceful) {
  p->state = P_CLOSING;
  p->c->env->peer_close(p->c->env_ctx, p->io, graceful);
}

void chat__peer_decided(chat_peer_t *p) {
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
  chat__peer_decided(p);
  chat__peer_send_obj(p, chat_reply_error(NULL, CHAT_E_BAD_TICKET, why));
  chat__peer_shut(p, 1);
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

/* The target's race for this hello's ticket is over: the ticket is used. */
static void target_race_done(chat_peer_t *p) {
  chat_client_t *c = p->c;
  for (chat_race_t *r = c->races; r; r = r->next)
    if (!r->asker && strcmp(r->name, p->name) == 0 &&
        strcmp(r->ticket, p->ticket) == 0) {
      if (p->race == r)
        chat_nat_secured(&r->nat, p->way);
      chat__race_end(r, p);
      return;
    }
}

/* p->name is the hello's from, which the ticket proved. */
static void accept_link(chat_peer_t *p) {
  chat_client_t *c = p->c;
  chat__peer_decided(p);
  target_race_done(p);
  sodium_memzero(p->ticket, sizeof(p->ticket));
  p->link = chat_outbox_link_accepted(c->ob, p->name, chat__client_now(c));
  if (!p->link) {
    chat__peer_shut(p, 0);
    return;
  }
  chat_outbox_link_path(c->ob, p->link, chat_nat_path(p->way));
  if (p->way != CHAT_NAT_DIALED)
    CHAT_INFO("direct link with %s: %s", p->name, chat_nat_path(p->way));
  p->state = P_OPEN;
  chat__peer_send_obj(p, json_pack("{s:s,s:s}", "type", "peer_welcome",
                                   "user", c->opts.user));
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
  snprintf(p->ticket, sizeof(p->ticket), "%s", m->ticket);
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

static void on_reverse(chat_peer_t *p, const chat_msg_t *m);

static void on_open_frame(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  uint64_t now = chat__client_now(c);

  chat_outbox_link_activity(c->ob, p->link, now);
  switch (m->type) {
  case CHAT_T_MSG:
    /* The sender is the peer proven in the handshake, never a field. */
    chat__session_show_message(c, p->name, NULL, m->msg_id, m->body,
                               m->body_len, m->ts, "direct",
                               chat_nat_path(p->way), 0);
    chat__peer_send_obj(
        p, json_pack("{s:s,s:s}", "type", "ack", "msg_id", m->msg_id));
    break;
  case CHAT_T_ACK:
    chat_outbox_direct_ack(c->ob, p->link, m->msg_id, now);
    break;
  case CHAT_T_PING:
    chat__peer_send_obj(p, chat_msg_new(CHAT_T_PONG));
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
    chat__peer_send_obj(p, chat_reply_from_error(m.id, &err));
    return;
  }
  switch (p->state) {
  case P_AWAIT_HELLO:
    if (m.type == CHAT_T_PEER_REVERSE)
      on_reverse(p, &m);
    else
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
      chat__peer_shut(p, 0); /* chat__peer_closed tells the outbox */
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
  chat__peer_send_obj(p, chat_reply_from_error(NULL, err));
  /* A bad line keeps an open link (PROTOCOL.md 1), but before the handshake
   * anything but a good peer_hello ends it (4): the peer is no one yet. */
  if (p->state == P_AWAIT_HELLO) {
    CHAT_INFO("refusing a direct link: %s", err->message);
    chat__peer_decided(p);
    chat__peer_shut(p, 1);
  }
}

void chat__peer_closed(chat_peer_t *p) {
  chat_client_t *c = p->c;

  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  chat__peer_decided(p);
  if (p->race)
    chat__race_way_failed(p, 0);
  if (p->link && !c->finished)
    chat_outbox_link_down(c->ob, p->link, chat__client_now(c));
  chat__peer_free(p);
}

/* ---- dialing ------------------------------------------------------------ */

void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket,
                     const char *key, const chat_dial_plan_t *plan) {
  chat_race_t *r = chat__race_new(c, 1, to, ticket, key ? key : "", plan);

  if (!r) {
    CHAT_ERROR("out of memory dialing %s", to);
    return; /* the outbox's handshake timeout takes it to the relay */
  }
  r->link = link;
  if (chat__race_way_dial(r, host, port, CHAT_NAT_DIALED, 0))
    chat_nat_started(&r->nat);
  else
    CHAT_ERROR("cannot dial %s", to);
  for (size_t i = 0; plan && plan->lan && i < json_array_size(plan->lan) &&
                     i < CHAT_MAX_LAN; i++) {
    const char *a = json_string_value(json_array_get(plan->lan, i));
    if (!a || !chat_ip_valid(a) || strcmp(a, host) == 0)
      continue;
    CHAT_INFO("dialing %s at its LAN address %s:%d", to, a, port);
    if (chat__race_way_dial(r, a, port, CHAT_NAT_LAN, 0))
      chat_nat_started(&r->nat);
  }
  if (plan && plan->reverse)
    chat_nat_expect_reverse(&r->nat);
  /* Nothing under way: races_tick gives up on its next turn (the outbox
   * must not be called back from inside its DIAL). */
}

void chat__peer_dialed(chat_peer_t *p, int status) {
  chat_client_t *c = p->c;
  chat_race_t *r = p->race;
  char hex[CHAT_KEY_LEN + 1];
  const char *key;

  if (p->state != P_DIALING || !r)
    return;
  if (status == UV_EPROTO) {
    /* It could not prove any key: treated as one that proves a wrong one. */
    CHAT_INFO("direct link to %s (%s): TLS handshake failed", p->name,
              chat_nat_path(p->way));
    p->state = P_CLOSING; /* chat__peer_closed follows */
    chat__race_way_failed(p, 1);
    return;
  }
  if (status < 0)
    return; /* chat__peer_closed follows: refused */
  key = link_key(p, hex);
  if (!key || strcmp(key, r->key) != 0) {
    CHAT_WARN("direct link to %s (%s) refused: its key is not the one the "
              "server vouched for", p->name, chat_nat_path(p->way));
    chat__race_way_failed(p, 1);
    chat__peer_shut(p, 1); /* after our TLS Finished: no frame of ours */
    return;
  }
  if (r->asker) {
    if (!chat_nat_secured(&r->nat, p->way)) {
      chat__peer_shut(p, 1); /* another way won */
      return;
    }
    chat__race_way_won(r, p, key);
    return;
  }
  /* The target's way (reverse or punch): the asker says hello on it if it
   * wins; a reverse dial first says who it is. */
  if (p->way == CHAT_NAT_PUNCHED && r->punch == p)
    chat_nat_punch_connected(&r->nat);
  p->state = P_AWAIT_HELLO;
  p->since = chat__client_now(c);
  if (p->way == CHAT_NAT_REVERSE)
    chat__peer_send_obj(p, json_pack("{s:s,s:i,s:s,s:s}", "type",
                                     "peer_reverse", "proto",
                                     CHAT_PROTO_VERSION, "from", c->opts.user,
                                     "to", p->name));
}

void chat__peer_tcp_up(chat_peer_t *p) {
  chat_race_t *r = p->race;
  if (p->state == P_DIALING && r && p->way == CHAT_NAT_PUNCHED &&
      r->punch == p)
    chat_nat_punch_connected(&r->nat);
}

int chat__peer_send(chat_client_t *c, uint64_t link, const json_t *obj) {
  chat_peer_t *p = peer_by_link(c, link);
  if (!p || p->state != P_OPEN)
    return -ENOTCONN;
  return c->env->peer_send(c->env_ctx, p->io, obj);
}

void chat__peer_close_link(chat_client_t *c, uint64_t link) {
  chat_peer_t *p;
  for (chat_race_t *r = c->races; r; r = r->next)
    if (r->asker && r->link == link) {
      chat__race_end(r, NULL); /* the outbox gave up on it */
      break;
    }
  p = peer_by_link(c, link);
  if (!p)
    return;
  p->link = 0; /* the outbox has forgotten it already */
  chat__peer_shut(p, 1);
}

void chat__peer_close_all(chat_client_t *c) {
  while (c->races)
    chat__race_end(c->races, NULL);
  for (chat_peer_t *p = c->peers; p; p = p->next)
    chat__peer_shut(p, 1);
}

/* ---- accepting ---------------------------------------------------------- */

void chat__peer_on_expect(chat_client_t *c, const char *from,
                          const char *ticket, const char *key,
                          const char *host, int port,
                          const chat_dial_plan_t *plan) {
  chat_race_t *r;
  int punch = plan && plan->punch_host && plan->punch_ms >= 0;
  if (!c->tickets)
    return;
  chat_tickets_expect(c->tickets, from, ticket, key, chat__client_now(c));
  /* The server asks us to dial back or to punch (docs/NAT.md): only
   * toward a key it vouched for. */
  if (c->stopping || !key || !chat_key_valid(key) ||
      (!(host && port > 0) && !punch))
    return;
  if (!(r = chat__race_new(c, 0, from, ticket, key, plan)))
    return;
  if (host && port > 0) {
    CHAT_INFO("dialing back %s at %s:%d", from, host, port);
    if (chat__race_way_dial(r, host, port, CHAT_NAT_REVERSE, 0))
      chat_nat_started(&r->nat);
  }
}

/* A target dialed back (we asked for the link): we say hello on it if it
 * is the first of our ways to prove the key the server vouched for. */
static chat_race_t *asked_race(chat_client_t *c, const char *name) {
  for (chat_race_t *r = c->races; r; r = r->next)
    if (r->asker && strcmp(r->name, name) == 0 && chat_nat_running(&r->nat))
      return r;
  return NULL;
}

static void reverse_joins(chat_peer_t *p, chat_race_t *r);

static void on_reverse(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  chat_race_t *r;

  if (m->proto != CHAT_PROTO_VERSION || strcmp(m->to, c->opts.user) != 0) {
    refuse(p, "expected peer_reverse to us, proto 1");
    return;
  }
  snprintf(p->name, sizeof(p->name), "%s", m->from);
  if (!(r = asked_race(c, p->name))) {
    /* The server sent the expect that made this dial before our ok, and
     * the two came on different connections: the ok may still come.
     * Nothing more is read until it does (chat__peer_dial) or the hello
     * deadline cuts the link (chat__peer_sweep). */
    CHAT_INFO("dial back from %s waits for the server's answer", p->name);
    p->state = P_WAIT_RACE;
    c->env->peer_pause(c->env_ctx, p->io);
    return;
  }
  reverse_joins(p, r);
}

/* p, a dial back from r's peer, proves the key the server vouched for and
 * wins r, or is refused. */
static void reverse_joins(chat_peer_t *p, chat_race_t *r) {
  char hex[CHAT_KEY_LEN + 1];
  const char *key = link_key(p, hex);

  if (!key || strcmp(key, r->key) != 0) {
    r->nat.bad_key = 1;
    refuse(p, WHY_KEY);
    return;
  }
  chat__peer_decided(p);
  p->way = CHAT_NAT_REVERSE;
  if (!chat_nat_secured(&r->nat, CHAT_NAT_REVERSE)) {
    chat__peer_shut(p, 1);
    return;
  }
  chat__race_way_won(r, p, key);
}

chat_peer_t *chat__peer_accepted(chat_client_t *c, void *link) {
  chat_peer_t *p;
  if (c->stopping || !c->tickets)
    return NULL;
  if (c->n_inbound >= CHAT_CLIENT_MAX_INBOUND)
    return NULL; /* too many half-open links: shed this one */
  if (!(p = chat__peer_new(c)))
    return NULL;
  p->io = link;
  p->inbound = 1;
  c->n_inbound++;
  p->state = P_AWAIT_HELLO;
  p->since = chat__client_now(c);
  return p;
}

/* Inbound links that never say hello (or trickle it) are cut off; races
 * run their clocks. */
void chat__peer_sweep(chat_client_t *c) {
  uint64_t now = chat__client_now(c);
  chat_peer_t *p;
  chat_race_t *r;
  /* Dial backs that came before our connect's ok join its race now (not
   * from chat__peer_dial: the outbox must not be called back from inside
   * its DIAL). Links are only closed here, freed by chat__peer_closed. */
  for (p = c->peers; p; p = p->next)
    if (p->state == P_WAIT_RACE && (r = asked_race(c, p->name))) {
      c->env->peer_resume(c->env_ctx, p->io);
      reverse_joins(p, r);
    }
  chat__races_tick(c);
  for (p = c->peers; p; p = p->next)
    if ((p->state == P_AWAIT_HELLO || p->state == P_WAIT_RACE) &&
        now - p->since >= CHAT_CLIENT_HELLO_MS) {
      chat__peer_decided(p);
      chat__peer_shut(p, 0);
    }
}

int64_t chat__peer_next_deadline(chat_client_t *c) {
  int64_t t = -1;
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->state == P_WAIT_RACE && asked_race(c, p->name))
      return (int64_t)chat__client_now(c); /* join it on the next turn */
  for (chat_race_t *r = c->races; r; r = r->next) {
    int64_t d = chat_nat_next_deadline(&r->nat);
    if (d >= 0 && (t < 0 || d < t))
      t = d;
  }
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if ((p->state == P_AWAIT_HELLO || p->state == P_WAIT_RACE) &&
        (t < 0 || (int64_t)(p->since + CHAT_CLIENT_HELLO_MS) < t))
      t = (int64_t)(p->since + CHAT_CLIENT_HELLO_MS);
  return t;
}
