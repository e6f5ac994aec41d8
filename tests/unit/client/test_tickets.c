/* test_tickets.c -- the listener's expect/hello matching on a fake clock,
 * with the dialer's key pinned to the one the expect vouched for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "tickets.h"

static const char T1[] = "0123456789abcdef0123456789abcdef";
static const char T2[] = "fedcba9876543210fedcba9876543210";
/* bob's key as vouched for by the server, and another one */
static const char KB[] =
    "bbbb0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
static const char KX[] =
    "eeee0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

typedef struct fx {
  chat_tickets_t *t;
  void *decided[16];
  int accepted[16];
  chat_ticket_verdict_t verdict[16];
  int n;
} fx_t;

static void cb(void *ctx, void *waiter, chat_ticket_verdict_t verdict) {
  fx_t *f = ctx;
  assert_true(f->n < 16);
  assert_int_not_equal(verdict, CHAT_TICKET_WAIT);
  f->decided[f->n] = waiter;
  f->verdict[f->n] = verdict;
  f->accepted[f->n++] = verdict == CHAT_TICKET_ACCEPT;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  assert_int_equal(chat_tickets_new("alice", cb, f, &f->t), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  chat_tickets_free(f->t);
  free(f);
  return 0;
}

static int w1, w2, w3;

static void test_expect_then_hello_accepts_once(void **state) {
  fx_t *f = *state;
  assert_int_equal(chat_tickets_expect(f->t, "bob", T1, KB, 0), 0);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 100),
                   CHAT_TICKET_ACCEPT);
  /* Single use: a replay is refused at once, not after a wait. */
  assert_int_equal(chat_tickets_hello(f->t, &w2, "bob", "alice", T1, KB, 200),
                   CHAT_TICKET_REFUSE);
  assert_int_equal(chat_tickets_waiting(f->t), 0);
  assert_int_equal(f->n, 0);
}

static void test_wrong_from_to_or_ticket(void **state) {
  fx_t *f = *state;
  chat_tickets_expect(f->t, "bob", T1, KB, 0);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "carol", "alice", T1, KB, 1),
                   CHAT_TICKET_REFUSE);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "dave", T1, KB, 1),
                   CHAT_TICKET_REFUSE);
  assert_int_equal(
      chat_tickets_hello(f->t, &w1, "bob", "alice", "nothex", KB, 1),
      CHAT_TICKET_REFUSE);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", NULL, T1, KB, 1),
                   CHAT_TICKET_REFUSE);
  /* The ticket survived the bad attempts. */
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 2),
                   CHAT_TICKET_ACCEPT);
}

static void test_ticket_expires_after_30s(void **state) {
  fx_t *f = *state;
  chat_tickets_expect(f->t, "bob", T1, KB, 1000);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB,
                                      1000 + CHAT_TICKET_TTL_MS),
                   CHAT_TICKET_REFUSE);
  chat_tickets_expect(f->t, "bob", T2, KB, 1000);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T2, KB,
                                      1000 + CHAT_TICKET_TTL_MS - 1),
                   CHAT_TICKET_ACCEPT);
}

/* An expired ticket is refused at once while remembered; once forgotten it
 * is unknown, and its hello waits for an expect that never comes. */
static void test_expired_ticket_stays_refused(void **state) {
  fx_t *f = *state;
  int64_t t0 = 1000, expired = t0 + CHAT_TICKET_TTL_MS;
  chat_tickets_expect(f->t, "bob", T1, KB, t0);
  chat_tickets_tick(f->t, expired);
  assert_int_equal(
      chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, expired),
      CHAT_TICKET_REFUSE);
  /* Forgotten a while after it expired (the next deadline says when). */
  assert_true(chat_tickets_next_deadline(f->t) > expired);
  chat_tickets_tick(f->t, chat_tickets_next_deadline(f->t));
  assert_int_equal(chat_tickets_next_deadline(f->t), -1);
  int64_t later = t0 + 3 * CHAT_TICKET_TTL_MS;
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, later),
                   CHAT_TICKET_WAIT);
  chat_tickets_tick(f->t, later + CHAT_TICKET_WAIT_MS);
  assert_int_equal(f->n, 1);
  assert_ptr_equal(f->decided[0], &w1);
  assert_int_equal(f->accepted[0], 0);
}

static void test_hello_waits_for_racing_expect(void **state) {
  fx_t *f = *state;
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 0),
                   CHAT_TICKET_WAIT);
  assert_int_equal(chat_tickets_hello(f->t, &w2, "carol", "alice", T2, KB, 0),
                   CHAT_TICKET_WAIT);
  assert_int_equal(chat_tickets_next_deadline(f->t), CHAT_TICKET_WAIT_MS);
  chat_tickets_tick(f->t, CHAT_TICKET_WAIT_MS - 1);
  assert_int_equal(f->n, 0);
  chat_tickets_expect(f->t, "bob", T1, KB, 4000);
  assert_int_equal(f->n, 1);
  assert_ptr_equal(f->decided[0], &w1);
  assert_int_equal(f->accepted[0], 1);
  assert_int_equal(chat_tickets_waiting(f->t), 1);
  /* Used by the waiter: a second hello is refused. */
  assert_int_equal(chat_tickets_hello(f->t, &w3, "bob", "alice", T1, KB, 4001),
                   CHAT_TICKET_REFUSE);
}

static void test_waiter_refused_after_5s(void **state) {
  fx_t *f = *state;
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 100),
                   CHAT_TICKET_WAIT);
  chat_tickets_tick(f->t, 100 + CHAT_TICKET_WAIT_MS);
  assert_int_equal(f->n, 1);
  assert_ptr_equal(f->decided[0], &w1);
  assert_int_equal(f->accepted[0], 0);
  assert_int_equal(chat_tickets_waiting(f->t), 0);
  /* The expect arriving later decides nothing more. */
  chat_tickets_expect(f->t, "bob", T1, KB, 6000);
  assert_int_equal(f->n, 1);
}

static void test_racing_expect_from_someone_else(void **state) {
  fx_t *f = *state;
  chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 0);
  chat_tickets_expect(f->t, "carol", T1, KB, 10);
  assert_int_equal(f->n, 1);
  assert_int_equal(f->accepted[0], 0);
}

static void test_forgotten_waiter_is_not_called(void **state) {
  fx_t *f = *state;
  chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 0);
  chat_tickets_forget(f->t, &w1);
  chat_tickets_expect(f->t, "bob", T1, KB, 10);
  chat_tickets_tick(f->t, 100000);
  assert_int_equal(f->n, 0);
}

static void test_waiters_are_bounded(void **state) {
  fx_t *f = *state;
  static char ws[CHAT_TICKET_WAITERS_MAX + 1];
  for (int i = 0; i < CHAT_TICKET_WAITERS_MAX; i++)
    assert_int_equal(
        chat_tickets_hello(f->t, &ws[i], "bob", "alice", T1, KB, 0),
        CHAT_TICKET_WAIT);
  assert_int_equal(chat_tickets_hello(f->t, &ws[CHAT_TICKET_WAITERS_MAX],
                                      "bob", "alice", T2, KB, 0),
                   CHAT_TICKET_REFUSE);
}

static void test_old_tickets_are_dropped(void **state) {
  fx_t *f = *state;
  char t[CHAT_TICKET_LEN + 1];
  /* More expects than the table holds: the oldest make room. */
  for (int i = 0; i < CHAT_TICKETS_MAX + 10; i++) {
    snprintf(t, sizeof(t), "%032x", i);
    assert_int_equal(chat_tickets_expect(f->t, "bob", t, KB, i), 0);
  }
  snprintf(t, sizeof(t), "%032x", CHAT_TICKETS_MAX + 9);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", t, KB, 2000),
                   CHAT_TICKET_ACCEPT);
  chat_tickets_tick(f->t, 1000000);
  assert_int_equal(chat_tickets_next_deadline(f->t), -1);
  assert_int_equal(chat_tickets_expect(f->t, "bob", "short", KB, 0), -EINVAL);
}

/* ---- keys (PROTOCOL.md 7) --------------------------------------------- */

/* A good ticket on a link that proved another key (or none): BAD_KEY, and
 * the ticket is used up, so the right dialer cannot follow with it either
 * (it asks for a new one). */
static void test_wrong_key_uses_up_the_ticket(void **state) {
  fx_t *f = *state;
  chat_tickets_expect(f->t, "bob", T1, KB, 0);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KX, 1),
                   CHAT_TICKET_BAD_KEY);
  assert_int_equal(chat_tickets_hello(f->t, &w2, "bob", "alice", T1, KB, 2),
                   CHAT_TICKET_REFUSE);
  chat_tickets_expect(f->t, "bob", T2, KB, 3);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T2, NULL, 4),
                   CHAT_TICKET_BAD_KEY);
}

/* An expect without a key (or with a malformed one) vouches for no one. */
static void test_expect_without_key_accepts_nobody(void **state) {
  fx_t *f = *state;
  chat_tickets_expect(f->t, "bob", T1, NULL, 0);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KB, 1),
                   CHAT_TICKET_BAD_KEY);
  chat_tickets_expect(f->t, "bob", T2, "BBBB", 0);
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T2, "BBBB", 1),
                   CHAT_TICKET_BAD_KEY);
}

/* A hello that waits for its expect keeps its key: the expect decides it
 * with ACCEPT or BAD_KEY. */
static void test_waiting_hello_checked_against_late_expect(void **state) {
  fx_t *f = *state;
  assert_int_equal(chat_tickets_hello(f->t, &w1, "bob", "alice", T1, KX, 0),
                   CHAT_TICKET_WAIT);
  assert_int_equal(chat_tickets_hello(f->t, &w2, "bob", "alice", T2, KB, 0),
                   CHAT_TICKET_WAIT);
  chat_tickets_expect(f->t, "bob", T1, KB, 10);
  chat_tickets_expect(f->t, "bob", T2, KB, 10);
  assert_int_equal(f->n, 2);
  assert_ptr_equal(f->decided[0], &w1);
  assert_int_equal(f->verdict[0], CHAT_TICKET_BAD_KEY);
  assert_ptr_equal(f->decided[1], &w2);
  assert_int_equal(f->verdict[1], CHAT_TICKET_ACCEPT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_expect_then_hello_accepts_once),
      T(test_wrong_from_to_or_ticket),
      T(test_ticket_expires_after_30s),
      T(test_expired_ticket_stays_refused),
      T(test_hello_waits_for_racing_expect),
      T(test_waiter_refused_after_5s),
      T(test_racing_expect_from_someone_else),
      T(test_forgotten_waiter_is_not_called),
      T(test_waiters_are_bounded),
      T(test_old_tickets_are_dropped),
      T(test_wrong_key_uses_up_the_ticket),
      T(test_expect_without_key_accepts_nobody),
      T(test_waiting_hello_checked_against_late_expect),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
