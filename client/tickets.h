/* tickets.h -- the peer listener's side of the direct-link handshake.
 *
 * The server tells us `expect {from, ticket, key}` when someone asks to
 * connect to us; that peer then dials us, proves in the TLS handshake that
 * it holds a key, and says `peer_hello {from, to, ticket}`. A hello is
 * accepted only with a matching expect for our own user, once, and only when
 * the key the link proved is the one the expect vouched for (PROTOCOL.md 7;
 * an expect without a key vouches for no one). The expect and the hello race
 * (different connections), so a hello whose ticket is unknown waits up to
 * 5 s for it. Tickets expire 30 s after their expect.
 *
 * Socket-free: time comes in as milliseconds; waiting hellos are opaque
 * pointers ("waiters") resolved later through one callback. */
#ifndef CHAT_TICKETS_H
#define CHAT_TICKETS_H

#include <stddef.h>
#include <stdint.h>

#define CHAT_TICKET_TTL_MS 30000   /* an expect is good this long */
#define CHAT_TICKET_WAIT_MS 5000   /* a hello waits this long for its expect */
#define CHAT_TICKETS_MAX 1024      /* remembered tickets; the oldest go first */
#define CHAT_TICKET_WAITERS_MAX 64 /* hellos waiting at once; more are refused */

typedef enum chat_ticket_verdict {
  CHAT_TICKET_ACCEPT = 0,
  CHAT_TICKET_REFUSE,  /* unknown, expired, used, or for another user */
  CHAT_TICKET_WAIT,
  CHAT_TICKET_BAD_KEY  /* the ticket was good (and is now used up), but the
                        * link's key is not the one vouched for */
} chat_ticket_verdict_t;

/* A waiting hello was decided: ACCEPT, REFUSE or BAD_KEY. Must not call back
 * into the table (the waiter is already forgotten). */
typedef void (*chat_tickets_cb_t)(void *ctx, void *waiter,
                                  chat_ticket_verdict_t verdict);

typedef struct chat_tickets chat_tickets_t;

/* self: our user name (copied). Returns 0, -EINVAL or -ENOMEM. */
int chat_tickets_new(const char *self, chat_tickets_cb_t cb, void *ctx,
                     chat_tickets_t **out);
void chat_tickets_free(chat_tickets_t *t);

/* The server's expect. key: the dialer's key as the server vouched for it
 * (NULL or malformed: none, so every hello for this ticket is BAD_KEY).
 * Decides the hellos waiting for this ticket. Returns 0 or -EINVAL (bad
 * name or ticket). */
int chat_tickets_expect(chat_tickets_t *t, const char *from,
                        const char *ticket, const char *key, int64_t now);
/* A peer's hello on a link whose handshake proved key (NULL: none). ACCEPT
 * (the ticket is now used), REFUSE, BAD_KEY (used up too), or WAIT: waiter
 * is kept and decided later through the callback. */
chat_ticket_verdict_t chat_tickets_hello(chat_tickets_t *t, void *waiter,
                                         const char *from, const char *to,
                                         const char *ticket, const char *key,
                                         int64_t now);
/* The waiter's connection is gone; forget it (no callback). */
void chat_tickets_forget(chat_tickets_t *t, void *waiter);
/* Refuses waiters whose 5 s are up, drops old tickets. */
void chat_tickets_tick(chat_tickets_t *t, int64_t now);
/* The next time tick has something to do, or -1. */
int64_t chat_tickets_next_deadline(const chat_tickets_t *t);
size_t chat_tickets_waiting(const chat_tickets_t *t);

#endif /* CHAT_TICKETS_H */
