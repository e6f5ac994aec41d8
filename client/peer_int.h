/* peer_int.h -- private to peer.c (the direct-link handshake, dialing and
 * accepting) and peer_race.c (the ways of one attempt across NATs): a link
 * and a race, and what each file calls of the other. */
#ifndef CHAT_PEER_INT_H
#define CHAT_PEER_INT_H

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

/* peer.c */
/* A new link of c (linked into c->peers), or NULL when out of memory. */
chat_peer_t *chat__peer_new(chat_client_t *c);
/* Unlinks and frees p (its transport already gone or never made). */
void chat__peer_free(chat_peer_t *p);
/* Sends obj (taken; NULL: nothing) on p's link. */
void chat__peer_send_obj(chat_peer_t *p, json_t *obj);
/* Closes p's link (graceful: after its queued output). */
void chat__peer_shut(chat_peer_t *p, int graceful);
/* An inbound link no longer counts against the inbound cap. */
void chat__peer_decided(chat_peer_t *p);

/* peer_race.c */
chat_race_t *chat__race_new(chat_client_t *c, int asker, const char *name,
                            const char *ticket, const char *key,
                            const chat_dial_plan_t *plan);
/* Unlinks and frees r; its ways but keep are closed without a word. */
void chat__race_end(chat_race_t *r, chat_peer_t *keep);
/* The way p of its race failed (bad_key: it proved another key). */
void chat__race_way_failed(chat_peer_t *p, int bad_key);
/* Dials one way of r; NULL when it could not start. */
chat_peer_t *chat__race_way_dial(chat_race_t *r, const char *host, int port,
                                 chat_nat_way_t way, int flags);
/* The asker's way p won: it is the outbox's link now, and says hello. */
void chat__race_way_won(chat_race_t *r, chat_peer_t *p, const char *key);
/* Runs what the races' clocks say. */
void chat__races_tick(chat_client_t *c);

#endif /* CHAT_PEER_INT_H */
