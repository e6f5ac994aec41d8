/* test_nat.c -- the timing of a direct attempt across NATs on a fake
 * clock: punch windows and tries, the first way to authenticate wins,
 * giving up when every way failed or the 3 s are over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nat.h"

#define W CHAT_NAT_PUNCH_WINDOW_MS

/* The server set the punch 150 ms out: three tries, each in its window. */
static void test_three_punch_tries_on_schedule(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 1000, 150);
  chat_nat_started(&n); /* the plain dial, which hangs (dropped SYN) */
  assert_int_equal(chat_nat_next_deadline(&n), 1150);
  assert_int_equal(chat_nat_tick(&n, 1149), 0);
  assert_int_equal(chat_nat_tick(&n, 1150), CHAT_NAT_START_PUNCH);
  assert_int_equal(n.punch_tries, 1);
  assert_int_equal(chat_nat_next_deadline(&n), 1150 + W);
  assert_int_equal(chat_nat_tick(&n, 1150 + W),
                   CHAT_NAT_STOP_PUNCH | CHAT_NAT_START_PUNCH);
  assert_int_equal(n.punch_tries, 2);
  assert_int_equal(chat_nat_tick(&n, 1150 + 2 * W),
                   CHAT_NAT_STOP_PUNCH | CHAT_NAT_START_PUNCH);
  assert_int_equal(n.punch_tries, 3);
  /* no fourth try; the last window ends, the dial still hangs */
  assert_int_equal(chat_nat_tick(&n, 1150 + 3 * W), CHAT_NAT_STOP_PUNCH);
  assert_int_equal(chat_nat_next_deadline(&n), 1000 + CHAT_NAT_BUDGET_MS);
  assert_int_equal(chat_nat_tick(&n, 3999), 0);
  assert_int_equal(chat_nat_tick(&n, 4000), CHAT_NAT_GIVE_UP);
  assert_int_equal(chat_nat_next_deadline(&n), -1);
  assert_int_equal(chat_nat_tick(&n, 5000), 0);
}

/* A try that failed at once (RST) waits for the next window. */
static void test_failed_try_waits_for_its_window(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, 100);
  chat_nat_started(&n);
  assert_int_equal(chat_nat_tick(&n, 100), CHAT_NAT_START_PUNCH);
  assert_int_equal(chat_nat_failed(&n, CHAT_NAT_PUNCHED, 0, 105), 0);
  assert_int_equal(chat_nat_next_deadline(&n), 100 + W);
  assert_int_equal(chat_nat_tick(&n, 300), 0);
  assert_int_equal(chat_nat_tick(&n, 100 + W), CHAT_NAT_START_PUNCH);
}

/* A connected try (TLS under way) is not cut at its window's end, and no
 * new try starts meanwhile; when it fails the next one comes. */
static void test_connected_try_is_kept(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, 100);
  chat_nat_started(&n);
  assert_int_equal(chat_nat_tick(&n, 100), CHAT_NAT_START_PUNCH);
  chat_nat_punch_connected(&n);
  assert_int_equal(chat_nat_tick(&n, 100 + W), 0);
  assert_int_equal(n.punch_tries, 1);
  assert_int_equal(chat_nat_failed(&n, CHAT_NAT_PUNCHED, 0, 700), 0);
  assert_int_equal(chat_nat_tick(&n, 700), CHAT_NAT_START_PUNCH);
  assert_int_equal(n.punch_tries, 2);
}

/* Whichever way authenticates first wins; later ones lose. */
static void test_first_secured_wins(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, 100);
  chat_nat_started(&n);
  chat_nat_expect_reverse(&n);
  assert_int_equal(chat_nat_tick(&n, 100), CHAT_NAT_START_PUNCH);
  assert_int_equal(chat_nat_secured(&n, CHAT_NAT_PUNCHED), 1);
  assert_string_equal(chat_nat_path(n.winner), "punched");
  assert_int_equal(chat_nat_secured(&n, CHAT_NAT_REVERSE), 0);
  assert_int_equal(chat_nat_secured(&n, CHAT_NAT_DIALED), 0);
  assert_int_equal(chat_nat_tick(&n, 5000), 0); /* won: never gives up */
  assert_int_equal(chat_nat_next_deadline(&n), -1);
}

/* Without punching or a reverse dial, the attempt ends as soon as the
 * dials have failed (refused at once): the relay need not wait 3 s. */
static void test_all_failed_gives_up_early(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, -1);
  chat_nat_started(&n);
  chat_nat_started(&n); /* a LAN address too */
  assert_int_equal(chat_nat_failed(&n, CHAT_NAT_LAN, 1, 5), 0);
  assert_int_equal(chat_nat_failed(&n, CHAT_NAT_DIALED, 0, 6),
                   CHAT_NAT_GIVE_UP);
  assert_int_equal(n.bad_key, 1);
  assert_int_equal(chat_nat_secured(&n, CHAT_NAT_DIALED), 0);
}

/* A reverse dial that may still come keeps the attempt until the budget's
 * end; punches exhausted do not end it either. */
static void test_reverse_keeps_the_attempt(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, -1);
  chat_nat_started(&n);
  chat_nat_expect_reverse(&n);
  assert_int_equal(chat_nat_failed(&n, CHAT_NAT_DIALED, 0, 10), 0);
  assert_int_equal(chat_nat_tick(&n, 2000), 0);
  assert_int_equal(chat_nat_secured(&n, CHAT_NAT_REVERSE), 1);
  assert_string_equal(chat_nat_path(n.winner), "reverse");
}

/* A punch the server set too late for the budget is never tried; tries
 * that would start after the budget are dropped. */
static void test_punch_inside_the_budget(void **state) {
  chat_nat_t n;
  (void)state;
  chat_nat_init(&n, 0, CHAT_NAT_BUDGET_MS);
  assert_int_equal(chat_nat_tick(&n, 0), CHAT_NAT_GIVE_UP);
  chat_nat_init(&n, 0, 2000);
  chat_nat_started(&n);
  assert_int_equal(chat_nat_tick(&n, 2000), CHAT_NAT_START_PUNCH);
  assert_int_equal(chat_nat_tick(&n, 2000 + W),
                   CHAT_NAT_STOP_PUNCH | CHAT_NAT_START_PUNCH);
  assert_int_equal(n.punch_at, -1); /* a third would start at 3000 */
  assert_int_equal(chat_nat_tick(&n, 3000), CHAT_NAT_GIVE_UP);
}

static void test_paths(void **state) {
  (void)state;
  assert_string_equal(chat_nat_path(CHAT_NAT_DIALED), "dialed");
  assert_string_equal(chat_nat_path(CHAT_NAT_LAN), "dialed");
  assert_string_equal(chat_nat_path(CHAT_NAT_REVERSE), "reverse");
  assert_string_equal(chat_nat_path(CHAT_NAT_PUNCHED), "punched");
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test(f)
      T(test_three_punch_tries_on_schedule),
      T(test_failed_try_waits_for_its_window),
      T(test_connected_try_is_kept),
      T(test_first_secured_wins),
      T(test_all_failed_gives_up_early),
      T(test_reverse_keeps_the_attempt),
      T(test_punch_inside_the_budget),
      T(test_paths),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
