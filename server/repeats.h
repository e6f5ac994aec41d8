/* repeats.h -- repeats of a send or group_send that arrive while the
 * original still waits for its commit.
 *
 * A repeat waits for the original's outcome and is answered with it, rather
 * than waiting for a commit of its own: that could be a later batch, which
 * says nothing about the original's copies (they may have failed and been
 * dropped while the later batch committed). The original's reply state
 * keeps the list; the repeat finds it through the held message's waiter.
 */
#ifndef CHAT_REPEATS_H
#define CHAT_REPEATS_H

#include <jansson.h>
#include <stdint.h>

#include "srv.h"

/* Repeats one original keeps waiting at once; a client that repeats faster
 * than the store recovers is told to slow down beyond this (each waiting
 * repeat holds its session and request id). */
#define CHAT_MAX_REPEATS 8

typedef struct chat__repeat {
  chat__session_t *s; /* referenced */
  json_t *id;        /* the repeat's request id, referenced (may be NULL) */
} chat__repeat_t;

typedef struct chat__repeats {
  chat__repeat_t *v;
  uint32_t n;
} chat__repeats_t;

/* Adds a repeat from s with request id (both referenced, released by
 * chat__repeats_free). Returns 0, -ENOBUFS when CHAT_MAX_REPEATS already
 * wait, or -ENOMEM. */
int chat__repeats_add(chat__repeats_t *r, chat__session_t *s, const json_t *id);

/* The error for a repeat refused with -ENOBUFS: rate_limited. */
void chat__repeats_refuse(chat__session_t *s, const json_t *id);

/* Releases every repeat's references and the list (r is left empty). */
void chat__repeats_free(chat__repeats_t *r);

#endif /* CHAT_REPEATS_H */
