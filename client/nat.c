/* nat.c -- the timing of one attempt at a direct link across NATs: ways,
 * punch windows, the winner, giving up (nat.h). No sockets, no clock. */
#include "nat.h"

#include <stddef.h>

const char *chat_nat_path(chat_nat_way_t way) {
  switch (way) {
  case CHAT_NAT_REVERSE: return "reverse";
  case CHAT_NAT_PUNCHED: return "punched";
  case CHAT_NAT_DIALED:
  case CHAT_NAT_LAN: break;
  }
  return "dialed";
}

void chat_nat_init(chat_nat_t *n, int64_t now, int64_t punch_ms) {
  n->start = now;
  n->end = now + CHAT_NAT_BUDGET_MS;
  n->punch_at = punch_ms >= 0 ? now + punch_ms : -1;
  /* A try that could not end before the relay takes over is not made. */
  if (n->punch_at >= n->end)
    n->punch_at = -1;
  n->punch_end = -1;
  n->punch_tries = 0;
  n->punch_connected = 0;
  n->pending = 0;
  n->waiting_reverse = 0;
  n->won = n->over = n->bad_key = 0;
  n->winner = CHAT_NAT_DIALED;
}

void chat_nat_started(chat_nat_t *n) { n->pending++; }

void chat_nat_expect_reverse(chat_nat_t *n) { n->waiting_reverse = 1; }

int chat_nat_running(const chat_nat_t *n) { return !n->won && !n->over; }

void chat_nat_punch_connected(chat_nat_t *n) {
  if (n->punch_end >= 0)
    n->punch_connected = 1;
}

/* Nothing under way and nothing to come: only the relay is left. A reverse
 * dial that may still come keeps the attempt alive until its end. */
static int exhausted(const chat_nat_t *n) {
  return n->pending == 0 && n->punch_end < 0 && n->punch_at < 0 &&
         !n->waiting_reverse;
}

int chat_nat_failed(chat_nat_t *n, chat_nat_way_t way, int bad_key,
                    int64_t now) {
  if (!chat_nat_running(n))
    return 0;
  if (bad_key)
    n->bad_key = 1;
  if (way == CHAT_NAT_PUNCHED) {
    if (n->punch_end >= 0) {
      n->punch_end = -1;
      n->punch_connected = 0;
    }
  } else if (n->pending > 0) {
    n->pending--;
  }
  (void)now;
  if (exhausted(n)) {
    n->over = 1;
    return CHAT_NAT_GIVE_UP;
  }
  return 0;
}

int chat_nat_secured(chat_nat_t *n, chat_nat_way_t way) {
  if (!chat_nat_running(n))
    return 0;
  n->won = 1;
  n->winner = way;
  return 1;
}

int chat_nat_tick(chat_nat_t *n, int64_t now) {
  int out = 0;
  if (!chat_nat_running(n))
    return 0;
  if (now >= n->end) {
    n->over = 1;
    return CHAT_NAT_GIVE_UP;
  }
  if (n->punch_end >= 0 && now >= n->punch_end && !n->punch_connected) {
    out |= CHAT_NAT_STOP_PUNCH;
    n->punch_end = -1;
  }
  if (n->punch_end < 0 && n->punch_at >= 0 && now >= n->punch_at) {
    out |= CHAT_NAT_START_PUNCH;
    n->punch_tries++;
    n->punch_end = n->punch_at + CHAT_NAT_PUNCH_WINDOW_MS;
    n->punch_connected = 0;
    /* The tries keep the server's rhythm on both sides, even when one
     * started late. */
    n->punch_at = n->punch_tries < CHAT_NAT_PUNCH_TRIES ? n->punch_end : -1;
    if (n->punch_at >= n->end)
      n->punch_at = -1;
  }
  if (!(out & CHAT_NAT_START_PUNCH) && exhausted(n)) {
    n->over = 1;
    out |= CHAT_NAT_GIVE_UP;
  }
  return out;
}

int64_t chat_nat_next_deadline(const chat_nat_t *n) {
  int64_t t = n->end;
  if (!chat_nat_running(n))
    return -1;
  if (exhausted(n))
    return n->start; /* due now: give up */
  if (n->punch_end >= 0 && !n->punch_connected && n->punch_end < t)
    t = n->punch_end;
  if (n->punch_at >= 0 && n->punch_at < t &&
      (n->punch_end < 0 || n->punch_connected))
    t = n->punch_at;
  return t;
}
