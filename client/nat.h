/* nat.h -- the timing of one attempt at a direct link across NATs: which
 * ways are still open, when each hole punch starts and ends, which way won,
 * and when to give up (docs/NAT.md).
 *
 * Both sides of a link keep one: the asker (who sent `connect`) for its
 * outbox link, the target for the ticket of its `expect`. The ways run side
 * by side: plain dials (the listener's public address and, behind the same
 * NAT, its LAN addresses), a reverse dial (the target dials the asker's
 * listener) and up to CHAT_NAT_PUNCH_TRIES hole punches (both dial each
 * other's server-connection address from their own, each try in a window of
 * CHAT_NAT_PUNCH_WINDOW_MS, the first at the moment the server set). The
 * first way to authenticate wins; the others are closed. The attempt ends
 * CHAT_NAT_BUDGET_MS after it began (the relay takes over then, PROTOCOL.md
 * 4), or sooner when every way has failed.
 *
 * Socket-free: time comes in as milliseconds, and the caller does what the
 * returned actions say. */
#ifndef CHAT_NAT_H
#define CHAT_NAT_H

#include <stdint.h>

#define CHAT_NAT_BUDGET_MS 3000      /* then the relay (PROTOCOL.md 4) */
#define CHAT_NAT_PUNCH_TRIES 3
#define CHAT_NAT_PUNCH_WINDOW_MS 500 /* one try's SYNs get this long */

typedef enum chat_nat_way {
  CHAT_NAT_DIALED = 0, /* the listener's advertised address */
  CHAT_NAT_LAN,        /* a LAN address of a peer behind the same NAT */
  CHAT_NAT_REVERSE,    /* the target dialed the asker's listener */
  CHAT_NAT_PUNCHED     /* simultaneous open from the server ports */
} chat_nat_way_t;

/* The `path` of CLI.md: "dialed" (LAN too), "reverse" or "punched". */
const char *chat_nat_path(chat_nat_way_t way);

/* What chat_nat_tick asks for (bits). */
#define CHAT_NAT_START_PUNCH 1 /* open try number chat_nat_t.punch_tries */
#define CHAT_NAT_STOP_PUNCH 2  /* close the try in flight: its window is over */
#define CHAT_NAT_GIVE_UP 4     /* nothing won: close every way, relay */

typedef struct chat_nat {
  int64_t start, end;    /* the attempt began; the budget's end */
  int64_t punch_at;      /* the next try starts at, or -1: no (more) tries */
  int64_t punch_end;     /* the try in flight ends at, or -1: none */
  int punch_tries;       /* tries started */
  int punch_connected;   /* the try in flight has a TCP connection */
  int pending;           /* other ways under way (dials, a reverse) */
  int waiting_reverse;   /* a reverse dial may still come to us */
  int won;               /* a way won: nothing more to do */
  int over;              /* gave up */
  int bad_key;           /* some way met a key that was not the vouched one */
  chat_nat_way_t winner;
} chat_nat_t;

/* A new attempt at now. punch_ms: when the first punch try starts, counted
 * from now (the server's punch_ms), or < 0 for no punching. */
void chat_nat_init(chat_nat_t *n, int64_t now, int64_t punch_ms);
/* A way other than a punch try has started (a dial), or may still come in
 * (expect_reverse: the target was asked to dial back). */
void chat_nat_started(chat_nat_t *n);
void chat_nat_expect_reverse(chat_nat_t *n);
/* A punch try's TCP connection is up (its TLS handshake runs): its window
 * no longer cuts it off. */
void chat_nat_punch_connected(chat_nat_t *n);
/* A way that was started failed (bad_key: it reached someone who proved
 * another key): a punch try, or one counted by chat_nat_started. An inbound
 * reverse dial that fails is no way of ours: the asker just closes it.
 * Returns CHAT_NAT_GIVE_UP when nothing is left to try, else 0. */
int chat_nat_failed(chat_nat_t *n, chat_nat_way_t way, int bad_key, int64_t now);
/* A way authenticated. Returns 1 when it is the first (it wins: use it,
 * close the others), 0 when another won before (close this one) or the
 * attempt is over. */
int chat_nat_secured(chat_nat_t *n, chat_nat_way_t way);
/* What is due at now (CHAT_NAT_* bits). */
int chat_nat_tick(chat_nat_t *n, int64_t now);
/* When chat_nat_tick next has something to do, or -1. */
int64_t chat_nat_next_deadline(const chat_nat_t *n);
/* Nonzero while the attempt is neither won nor over. */
int chat_nat_running(const chat_nat_t *n);

#endif /* CHAT_NAT_H */
