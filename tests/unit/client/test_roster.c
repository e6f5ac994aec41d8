/* test_roster.c -- contacts, presence, the no_p2p memory; reconnect delays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "backoff.h"
#include "roster.h"

static void test_sorted_set_find_remove(void **state) {
  chat_roster_t r;
  chat_roster_init(&r);
  assert_int_equal(chat_roster_set(&r, "carol", CHAT_STATUS_ONLINE), 0);
  assert_int_equal(chat_roster_set(&r, "alice", CHAT_STATUS_AWAY), 0);
  assert_int_equal(chat_roster_set(&r, "bob", CHAT_STATUS_OFFLINE), 0);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.v[0].user, "alice");
  assert_string_equal(r.v[1].user, "bob");
  assert_string_equal(r.v[2].user, "carol");
  assert_int_equal(chat_roster_find(&r, "bob")->status, CHAT_STATUS_OFFLINE);
  assert_null(chat_roster_find(&r, "dave"));
  assert_int_equal(chat_roster_set(&r, "Bad!", CHAT_STATUS_ONLINE), -EINVAL);
  assert_int_equal(chat_roster_set(&r, "dave", CHAT_STATUS_NONE), -EINVAL);
  assert_int_equal(chat_roster_remove(&r, "bob"), 0);
  assert_int_equal(chat_roster_remove(&r, "bob"), -ENOENT);
  assert_null(chat_roster_find(&r, "bob"));
  assert_string_equal(r.v[1].user, "carol");
  chat_roster_clear(&r);
  assert_null(chat_roster_find(&r, "carol"));
  /* Growing past the first allocation keeps the order. */
  char name[16];
  for (int i = 99; i >= 0; i--) {
    snprintf(name, sizeof(name), "u%03d", i);
    assert_int_equal(chat_roster_set(&r, name, CHAT_STATUS_ONLINE), 0);
  }
  assert_string_equal(r.v[0].user, "u000");
  assert_string_equal(r.v[99].user, "u099");
  chat_roster_free(&r);
}

static void test_no_p2p_forgotten_on_presence_change(void **state) {
  chat_roster_t r;
  chat_roster_init(&r);
  chat_roster_set(&r, "bob", CHAT_STATUS_ONLINE);
  chat_roster_find(&r, "bob")->no_p2p = 1;
  chat_roster_set(&r, "bob", CHAT_STATUS_ONLINE); /* no change */
  assert_int_equal(chat_roster_find(&r, "bob")->no_p2p, 1);
  chat_roster_set(&r, "bob", CHAT_STATUS_AWAY);
  assert_int_equal(chat_roster_find(&r, "bob")->no_p2p, 0);
  chat_roster_free(&r);
}

static void test_backoff(void **state) {
  /* 1 s doubling, capped at 30 s, jittered into [cap/2, cap]. */
  assert_int_equal(chat_backoff_delay(0, 0), 500);
  assert_int_equal(chat_backoff_delay(0, 500), 1000);
  assert_int_equal(chat_backoff_delay(1, 1000), 2000);
  assert_int_equal(chat_backoff_delay(3, 0), 4000);
  assert_int_equal(chat_backoff_delay(4, 8000), 16000);
  assert_int_equal(chat_backoff_delay(5, 15000), 30000);
  assert_int_equal(chat_backoff_delay(40, 15000), 30000);
  for (uint32_t rnd = 0; rnd < 100000; rnd += 777) {
    int64_t d = chat_backoff_delay(9, rnd * 2654435761u);
    assert_true(d >= 15000 && d <= 30000);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sorted_set_find_remove),
      cmocka_unit_test(test_no_p2p_forgotten_on_presence_change),
      cmocka_unit_test(test_backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
