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

typedef enum peer_state {
  P_DIALING,     /* we dialed (any way); connect and TLS handshake */
  P_HELLO_SENT,  /* we dialed and said hello; waiting for peer_welcome */
  P_AWAIT_HELLO, /* a peer dialed us; waiting for its peer_hello */
  P_WAIT_TICKET, /* its hello waits for the server's expect */
  P_WAIT_RACE,   /* its peer_reverse waits for our connect's ok */
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
  char ticket[CHAT_TICKET_LEN + 1]; /* the hello's (target) */
  chat_race_t *race;         /* a way of this race, until it is decided */
  chat_nat_way_t way;        /* how the link was made */
  int told;                  /* its race heard of its end already */
};

struct chat_race {
  chat_race_t *next;
  chat_client_t *c;
  int asker;                 /* 1: our connect, we say hello; 0: an expect */
  uint64_t link;             /* asker: the outbox's link */
  char name[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1];
  char key[CHAT_KEY_LEN + 1]; /* the other side's, as the server vouched */
  char punch_host[CHAT_HOST_MAX];
  int punch_port;
  chat_peer_t *punch;        /* the punch try in flight */
  chat_nat_t nat;
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

static void race_end(chat_race_t *r, chat_peer_t *keep);

/* The target's race for this hello's ticket is over: the ticket is used. */
static void target_race_done(chat_peer_t *p) {
  chat_client_t *c = p->c;
  for (chat_race_t *r = c->races; r; r = r->next)
    if (!r->asker && strcmp(r->name, p->name) == 0 &&
        strcmp(r->ticket, p->ticket) == 0) {
      if (p->race == r)
        chat_nat_secured(&r->nat, p->way);
      race_end(r, p);
      return;
    }
}

/* p->name is the hello's from, which the ticket proved. */
static void accept_link(chat_peer_t *p) {
  chat_client_t *c = p->c;
  inbound_decided(p);
  target_race_done(p);
  sodium_memzero(p->ticket, sizeof(p->ticket));
  p->link = chat_outbox_link_accepted(c->ob, p->name, chat__client_now(c));
  if (!p->link) {
    close_link(p, 0);
    return;
  }
  chat_outbox_link_path(c->ob, p->link, chat_nat_path(p->way));
  if (p->way != CHAT_NAT_DIALED)
    CHAT_INFO("direct link with %s: %s", p->name, chat_nat_path(p->way));
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

static void way_failed(chat_peer_t *p, int bad_key);

void chat__peer_closed(chat_peer_t *p) {
  chat_client_t *c = p->c;

  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  inbound_decided(p);
  if (p->race)
    way_failed(p, 0);
  if (p->link && !c->finished)
    chat_outbox_link_down(c->ob, p->link, chat__client_now(c));
  peer_free(p);
}

/* ---- races: the ways to one peer ---------------------------------------- */

static chat_race_t *race_new(chat_client_t *c, int asker, const char *name,
                             const char *ticket, const char *key,
                             const chat_dial_plan_t *plan) {
  chat_race_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->c = c;
  r->asker = asker;
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->ticket, sizeof(r->ticket), "%s", ticket);
  snprintf(r->key, sizeof(r->key), "%s", key);
  chat_nat_init(&r->nat, (int64_t)chat__client_now(c),
                plan && plan->punch_host ? plan->punch_ms : -1);
  if (plan && plan->punch_host && plan->punch_ms >= 0) {
    snprintf(r->punch_host, sizeof(r->punch_host), "%s", plan->punch_host);
    r->punch_port = plan->punch_port;
  }
  r->next = c->races;
  c->races = r;
  return r;
}

/* Unlinks and frees r; its ways but keep are closed without a word. */
static void race_end(chat_race_t *r, chat_peer_t *keep) {
  chat_client_t *c = r->c;
  chat_race_t **pp;
  for (pp = &c->races; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->race == r) {
      p->race = NULL;
      if (p != keep && p->state != P_CLOSING) {
        inbound_decided(p);
        close_link(p, 0);
      }
    }
  sodium_memzero(r->ticket, sizeof(r->ticket));
  free(r);
}

/* The asker's race gave up before its time: the outbox falls back now. */
static void race_give_up(chat_race_t *r, int in_time) {
  chat_client_t *c = r->c;
  uint64_t link = r->asker ? r->link : 0;
  const char *why = r->nat.bad_key ? "bad_key" : "refused";
  CHAT_INFO("no direct way to %s%s", r->name,
            in_time ? "" : " within the time allowed");
  race_end(r, NULL);
  /* At the budget's end the outbox's own timeout says why (timeout). */
  if (link && !in_time)
    return;
  if (link)
    chat_outbox_link_failed(c->ob, link, why, chat__client_now(c));
}

static void way_failed(chat_peer_t *p, int bad_key) {
  chat_race_t *r = p->race;
  int rc;
  if (!r)
    return;
  if (r->punch == p)
    r->punch = NULL;
  p->race = NULL;
  if (p->told)
    return;
  p->told = 1;
  /* An inbound reverse dial was never one of our ways. */
  if (r->asker && p->way == CHAT_NAT_REVERSE) {
    if (bad_key)
      r->nat.bad_key = 1;
    return;
  }
  rc = chat_nat_failed(&r->nat, p->way, bad_key,
                       (int64_t)chat__client_now(r->c));
  if (rc & CHAT_NAT_GIVE_UP)
    race_give_up(r, 1);
}

static chat_peer_t *way_dial(chat_race_t *r, const char *host, int port,
                             chat_nat_way_t way, int flags) {
  chat_client_t *c = r->c;
  chat_peer_t *p = peer_new(c);
  if (!p)
    return NULL;
  p->state = P_DIALING;
  p->race = r;
  p->way = way;
  snprintf(p->name, sizeof(p->name), "%s", r->name);
  if (c->env->peer_dial(c->env_ctx, p, host, port, flags, &p->io) < 0) {
    peer_free(p);
    return NULL;
  }
  return p;
}

/* The asker's way p won: it is the outbox's link now, and says hello. */
static void way_won(chat_race_t *r, chat_peer_t *p, const char *key) {
  chat_client_t *c = r->c;
  uint64_t link = r->link;
  char ticket[CHAT_TICKET_LEN + 1];
  int rc;

  snprintf(ticket, sizeof(ticket), "%s", r->ticket);
  p->race = NULL;
  race_end(r, p);
  p->link = link;
  rc = chat_outbox_link_secured(c->ob, link, key, chat__client_now(c));
  if (rc == -EPERM) {
    CHAT_WARN("direct link to %s refused: its key is not the one the server "
              "vouched for", p->name);
    sodium_memzero(ticket, sizeof(ticket));
    return; /* the outbox closed the link (CHAT_OB_CLOSE_LINK) */
  }
  if (rc < 0) { /* the outbox gave up on it meanwhile (timeout) */
    p->link = 0;
    close_link(p, 0);
    sodium_memzero(ticket, sizeof(ticket));
    return;
  }
  chat_outbox_link_path(c->ob, link, chat_nat_path(p->way));
  CHAT_INFO("direct link to %s: %s%s", p->name, chat_nat_path(p->way),
            p->way == CHAT_NAT_LAN ? " (LAN address)" : "");
  p->state = P_HELLO_SENT;
  send_obj(p, json_pack("{s:s,s:i,s:s,s:s,s:s}", "type", "peer_hello",
                        "proto", CHAT_PROTO_VERSION, "from", c->opts.user,
                        "to", p->name, "ticket", ticket));
  sodium_memzero(ticket, sizeof(ticket));
}

static void punch_try(chat_race_t *r) {
  int flags = CHAT_DIAL_PUNCH | (r->asker ? 0 : CHAT_DIAL_TLS_ACCEPT);
  CHAT_DEBUG("punch %d to %s at %s:%d", r->nat.punch_tries, r->name,
             r->punch_host, r->punch_port);
  r->punch = way_dial(r, r->punch_host, r->punch_port, CHAT_NAT_PUNCHED,
                      flags);
  if (!r->punch) {
    int rc = chat_nat_failed(&r->nat, CHAT_NAT_PUNCHED, 0,
                             (int64_t)chat__client_now(r->c));
    if (rc & CHAT_NAT_GIVE_UP)
      race_give_up(r, 1);
  }
}

/* Runs what the races' clocks say; returns when r may have been freed. */
static void race_tick(chat_race_t *r, int64_t now) {
  int acts = chat_nat_tick(&r->nat, now);
  if ((acts & CHAT_NAT_STOP_PUNCH) && r->punch) {
    chat_peer_t *p = r->punch;
    r->punch = NULL;
    p->told = 1; /* its window is over: the tick knows */
    p->race = NULL;
    close_link(p, 0);
  }
  if (acts & CHAT_NAT_GIVE_UP) {
    race_give_up(r, now < r->nat.end);
    return;
  }
  if (acts & CHAT_NAT_START_PUNCH)
    punch_try(r);
}

static void races_tick(chat_client_t *c) {
  int64_t now = (int64_t)chat__client_now(c);
  chat_race_t *r = c->races, *next;
  for (; r; r = next) {
    next = r->next;
    int64_t t = chat_nat_next_deadline(&r->nat);
    if (t >= 0 && t <= now)
      race_tick(r, now);
    /* a give-up may have ended other races' ways, never other races */
  }
}

/* ---- dialing ------------------------------------------------------------ */

void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket,
                     const char *key, const chat_dial_plan_t *plan) {
  chat_race_t *r = race_new(c, 1, to, ticket, key ? key : "", plan);

  if (!r) {
    CHAT_ERROR("out of memory dialing %s", to);
    return; /* the outbox's handshake timeout takes it to the relay */
  }
  r->link = link;
  if (way_dial(r, host, port, CHAT_NAT_DIALED, 0))
    chat_nat_started(&r->nat);
  else
    CHAT_ERROR("cannot dial %s", to);
  for (size_t i = 0; plan && plan->lan && i < json_array_size(plan->lan) &&
                     i < CHAT_MAX_LAN; i++) {
    const char *a = json_string_value(json_array_get(plan->lan, i));
    if (!a || !chat_ip_valid(a) || strcmp(a, host) == 0)
      continue;
    CHAT_INFO("dialing %s at its LAN address %s:%d", to, a, port);
    if (way_dial(r, a, port, CHAT_NAT_LAN, 0))
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
    way_failed(p, 1);
    return;
  }
  if (status < 0)
    return; /* chat__peer_closed follows: refused */
  key = link_key(p, hex);
  if (!key || strcmp(key, r->key) != 0) {
    CHAT_WARN("direct link to %s (%s) refused: its key is not the one the "
              "server vouched for", p->name, chat_nat_path(p->way));
    way_failed(p, 1);
    close_link(p, 1); /* after our TLS Finished: no frame of ours */
    return;
  }
  if (r->asker) {
    if (!chat_nat_secured(&r->nat, p->way)) {
      close_link(p, 1); /* another way won */
      return;
    }
    way_won(r, p, key);
    return;
  }
  /* The target's way (reverse or punch): the asker says hello on it if it
   * wins; a reverse dial first says who it is. */
  if (p->way == CHAT_NAT_PUNCHED && r->punch == p)
    chat_nat_punch_connected(&r->nat);
  p->state = P_AWAIT_HELLO;
  p->since = chat__client_now(c);
  if (p->way == CHAT_NAT_REVERSE)
    send_obj(p, json_pack("{s:s,s:i,s:s,s:s}", "type", "peer_reverse",
                          "proto", CHAT_PROTO_VERSION, "from", c->opts.user,
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
      race_end(r, NULL); /* the outbox gave up on it */
      break;
    }
  p = peer_by_link(c, link);
  if (!p)
    return;
  p->link = 0; /* the outbox has forgotten it already */
  close_link(p, 1);
}

void chat__peer_close_all(chat_client_t *c) {
  while (c->races)
    race_end(c->races, NULL);
  for (chat_peer_t *p = c->peers; p; p = p->next)
    close_link(p, 1);
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
  if (!(r = race_new(c, 0, from, ticket, key, plan)))
    return;
  if (host && port > 0) {
    CHAT_INFO("dialing back %s at %s:%d", from, host, port);
    if (way_dial(r, host, port, CHAT_NAT_REVERSE, 0))
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
  inbound_decided(p);
  p->way = CHAT_NAT_REVERSE;
  if (!chat_nat_secured(&r->nat, CHAT_NAT_REVERSE)) {
    close_link(p, 1);
    return;
  }
  way_won(r, p, key);
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
  races_tick(c);
  for (p = c->peers; p; p = p->next)
    if ((p->state == P_AWAIT_HELLO || p->state == P_WAIT_RACE) &&
        now - p->since >= CHAT_CLIENT_HELLO_MS) {
      inbound_decided(p);
      close_link(p, 0);
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
