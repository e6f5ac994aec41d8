/* peer_race.c -- the ways of one attempt at a direct link (docs/NAT.md):
 * the asker's dials (the listener's address, LAN addresses, a punch) and
 * the target's (reverse, punch), each a chat_peer_t of the race. nat.c
 * decides when to try which way and when to give up; this file starts
 * and ends the ways, and hands the winner to the outbox (peer.c has the
 * handshake on it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "peer_int.h"

chat_race_t *chat__race_new(chat_client_t *c, int asker, const char *name,
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
void chat__race_end(chat_race_t *r, chat_peer_t *keep) {
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
        chat__peer_decided(p);
        chat__peer_shut(p, 0);
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
  chat__race_end(r, NULL);
  /* At the budget's end the outbox's own timeout says why (timeout). */
  if (link && !in_time)
    return;
  if (link)
    chat_outbox_link_failed(c->ob, link, why, chat__client_now(c));
}

void chat__race_way_failed(chat_peer_t *p, int bad_key) {
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

chat_peer_t *chat__race_way_dial(chat_race_t *r, const char *host, int port,
                                 chat_nat_way_t way, int flags) {
  chat_client_t *c = r->c;
  chat_peer_t *p = chat__peer_new(c);
  if (!p)
    return NULL;
  p->state = P_DIALING;
  p->race = r;
  p->way = way;
  snprintf(p->name, sizeof(p->name), "%s", r->name);
  if (c->env->peer_dial(c->env_ctx, p, host, port, flags, &p->io) < 0) {
    chat__peer_free(p);
    return NULL;
  }
  return p;
}

/* The asker's way p won: it is the outbox's link now, and says hello. */
void chat__race_way_won(chat_race_t *r, chat_peer_t *p, const char *key) {
  chat_client_t *c = r->c;
  uint64_t link = r->link;
  char ticket[CHAT_TICKET_LEN + 1];
  int rc;

  snprintf(ticket, sizeof(ticket), "%s", r->ticket);
  p->race = NULL;
  chat__race_end(r, p);
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
    chat__peer_shut(p, 0);
    sodium_memzero(ticket, sizeof(ticket));
    return;
  }
  chat_outbox_link_path(c->ob, link, chat_nat_path(p->way));
  CHAT_INFO("direct link to %s: %s%s", p->name, chat_nat_path(p->way),
            p->way == CHAT_NAT_LAN ? " (LAN address)" : "");
  p->state = P_HELLO_SENT;
  chat__peer_send_obj(p, json_pack("{s:s,s:i,s:s,s:s,s:s}", "type",
                                   "peer_hello", "proto", CHAT_PROTO_VERSION,
                                   "from", c->opts.user, "to", p->name,
                                   "ticket", ticket));
  sodium_memzero(ticket, sizeof(ticket));
}

static void punch_try(chat_race_t *r) {
  int flags = CHAT_DIAL_PUNCH | (r->asker ? 0 : CHAT_DIAL_TLS_ACCEPT);
  CHAT_DEBUG("punch %d to %s at %s:%d", r->nat.punch_tries, r->name,
             r->punch_host, r->punch_port);
  r->punch = chat__race_way_dial(r, r->punch_host, r->punch_port,
                                 CHAT_NAT_PUNCHED, flags);
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
    chat__peer_shut(p, 0);
  }
  if (acts & CHAT_NAT_GIVE_UP) {
    race_give_up(r, now < r->nat.end);
    return;
  }
  if (acts & CHAT_NAT_START_PUNCH)
    punch_try(r);
}

void chat__races_tick(chat_client_t *c) {
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
