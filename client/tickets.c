/* tickets.c -- expect/hello matching for the peer listener. */
#include "tickets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"

/* A ticket is remembered a while after it expires so that a replay is still
 * refused at once rather than after a 5 s wait. */
#define FORGET_AFTER_MS (2 * CHAT_TICKET_TTL_MS)

typedef struct ticket {
  char from[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1];
  char key[CHAT_KEY_LEN + 1]; /* vouched for by the server, or "" */
  int64_t expires;
  int used;
} ticket_t;

typedef struct waiter {
  void *waiter;
  char from[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1];
  char key[CHAT_KEY_LEN + 1]; /* the link proved it, or "" */
  int64_t deadline;
} waiter_t;

struct chat_tickets {
  char self[CHAT_MAX_NAME + 1];
  chat_tickets_cb_t cb;
  void *ctx;
  ticket_t tickets[CHAT_TICKETS_MAX]; /* ring: oldest at head */
  size_t head, n;
  waiter_t waiters[CHAT_TICKET_WAITERS_MAX];
  size_t n_waiters;
};

int chat_tickets_new(const char *self, chat_tickets_cb_t cb, void *ctx,
                     chat_tickets_t **out) {
  chat_tickets_t *t;
  if (!self || !chat_name_valid(self) || !cb)
    return -EINVAL;
  if (!(t = calloc(1, sizeof(*t))))
    return -ENOMEM;
  strcpy(t->self, self);
  t->cb = cb;
  t->ctx = ctx;
  *out = t;
  return 0;
}

void chat_tickets_free(chat_tickets_t *t) { free(t); }

static ticket_t *ticket_find(chat_tickets_t *t, const char *ticket) {
  for (size_t i = 0; i < t->n; i++) {
    ticket_t *k = &t->tickets[(t->head + i) % CHAT_TICKETS_MAX];
    if (strcmp(k->ticket, ticket) == 0)
      return k;
  }
  return NULL;
}

/* When k is dropped: FORGET_AFTER_MS after its expect. */
static int64_t forget_at(const ticket_t *k) {
  return k->expires + FORGET_AFTER_MS - CHAT_TICKET_TTL_MS;
}

static void waiter_remove(chat_tickets_t *t, size_t i) {
  t->waiters[i] = t->waiters[--t->n_waiters];
}

/* Checks a hello against a known ticket and uses it up when it passes.
 * A good ticket on a link with the wrong key is used up too: single use,
 * whoever showed it. */
static chat_ticket_verdict_t ticket_accepts(ticket_t *k, const char *from,
                                            const char *key, int64_t now) {
  if (k->used || now >= k->expires || strcmp(k->from, from) != 0)
    return CHAT_TICKET_REFUSE;
  k->used = 1;
  if (!k->key[0] || !key[0] || strcmp(k->key, key) != 0)
    return CHAT_TICKET_BAD_KEY;
  return CHAT_TICKET_ACCEPT;
}

/* key if it is well-formed, else "" (none). */
static const char *key_or_none(const char *key) {
  return key && chat_key_valid(key) ? key : "";
}

int chat_tickets_expect(chat_tickets_t *t, const char *from,
                        const char *ticket, const char *key, int64_t now) {
  ticket_t *k;
  if (!from || !ticket || !chat_name_valid(from) || !chat_ticket_valid(ticket))
    return -EINVAL;
  if (ticket_find(t, ticket))
    return 0; /* a repeated expect changes nothing */
  if (t->n == CHAT_TICKETS_MAX) {
    t->head = (t->head + 1) % CHAT_TICKETS_MAX;
    t->n--;
  }
  k = &t->tickets[(t->head + t->n) % CHAT_TICKETS_MAX];
  t->n++;
  memset(k, 0, sizeof(*k));
  strcpy(k->from, from);
  strcpy(k->ticket, ticket);
  strcpy(k->key, key_or_none(key));
  k->expires = now + CHAT_TICKET_TTL_MS;
  for (size_t i = 0; i < t->n_waiters;) {
    waiter_t w = t->waiters[i];
    if (strcmp(w.ticket, ticket) != 0) {
      i++;
      continue;
    }
    waiter_remove(t, i);
    t->cb(t->ctx, w.waiter, ticket_accepts(k, w.from, w.key, now));
  }
  return 0;
}

chat_ticket_verdict_t chat_tickets_hello(chat_tickets_t *t, void *waiter,
                                         const char *from, const char *to,
                                         const char *ticket, const char *key,
                                         int64_t now) {
  ticket_t *k;
  waiter_t *w;
  if (!from || !to || !ticket || !chat_name_valid(from) ||
      !chat_ticket_valid(ticket) || strcmp(to, t->self) != 0)
    return CHAT_TICKET_REFUSE;
  key = key_or_none(key);
  if ((k = ticket_find(t, ticket)))
    return ticket_accepts(k, from, key, now);
  if (t->n_waiters == CHAT_TICKET_WAITERS_MAX)
    return CHAT_TICKET_REFUSE;
  w = &t->waiters[t->n_waiters++];
  w->waiter = waiter;
  strcpy(w->from, from);
  strcpy(w->ticket, ticket);
  strcpy(w->key, key);
  w->deadline = now + CHAT_TICKET_WAIT_MS;
  return CHAT_TICKET_WAIT;
}

void chat_tickets_forget(chat_tickets_t *t, void *waiter) {
  for (size_t i = 0; i < t->n_waiters; i++)
    if (t->waiters[i].waiter == waiter) {
      waiter_remove(t, i);
      return;
    }
}

void chat_tickets_tick(chat_tickets_t *t, int64_t now) {
  for (size_t i = 0; i < t->n_waiters;) {
    if (t->waiters[i].deadline > now) {
      i++;
      continue;
    }
    void *w = t->waiters[i].waiter;
    waiter_remove(t, i);
    t->cb(t->ctx, w, CHAT_TICKET_REFUSE);
  }
  /* Expect times only grow, so the oldest tickets sit at the head. */
  while (t->n && forget_at(&t->tickets[t->head]) <= now) {
    t->head = (t->head + 1) % CHAT_TICKETS_MAX;
    t->n--;
  }
}

int64_t chat_tickets_next_deadline(const chat_tickets_t *t) {
  int64_t best = -1;
  for (size_t i = 0; i < t->n_waiters; i++)
    if (best < 0 || t->waiters[i].deadline < best)
      best = t->waiters[i].deadline;
  if (t->n) {
    int64_t d = forget_at(&t->tickets[t->head]);
    if (best < 0 || d < best)
      best = d;
  }
  return best;
}

size_t chat_tickets_waiting(const chat_tickets_t *t) { return t->n_waiters; }
