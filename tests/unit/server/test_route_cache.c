/* test_route_cache.c -- route_cache.h: answers are used only within ttl of
 * their lookup, a lookup older than the epoch is not kept, forget and the
 * bound on entries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route_cache.h"

#define TTL 1000

static void test_hit_within_ttl(void **state) {
  chat__route_cache_t c;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_null(chat__route_cache_get(&c, "bob", 5000));
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 5000, 5001), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 5002), "n2");
  assert_string_equal(chat__route_cache_get(&c, "bob", 5999), "n2");
  assert_null(chat__route_cache_get(&c, "carol", 5999));
  /* ttl after the epoch began, and so after the lookup: gone */
  assert_null(chat__route_cache_get(&c, "bob", 6000));
  assert_int_equal(chat__route_cache_len(&c), 0);
  chat__route_cache_free(&c);
}

/* An answer is never used ttl or more after its lookup was sent, however
 * late in an epoch it comes. */
static void test_old_lookup_not_kept(void **state) {
  chat__route_cache_t c;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_null(chat__route_cache_get(&c, "x", 10000)); /* epoch from 10000 */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 9990, 10005),
                   -ESTALE);
  assert_null(chat__route_cache_get(&c, "bob", 10006));
  /* sent in this epoch, answered late in it: kept until the epoch ends */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 10500, 10990), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 10999), "n2");
  assert_null(chat__route_cache_get(&c, "bob", 11000));
  /* a clock that went back starts a new epoch rather than trusting */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 11000, 11001), 0);
  assert_null(chat__route_cache_get(&c, "bob", 10000));
  chat__route_cache_free(&c);
}

static void test_move_and_forget(void **state) {
  chat__route_cache_t c;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 0, 1), 0);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n3", 2, 3), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 4), "n3");
  assert_int_equal(chat__route_cache_len(&c), 1);
  chat__route_cache_forget(&c, "bob");
  chat__route_cache_forget(&c, "nobody");
  assert_null(chat__route_cache_get(&c, "bob", 5));
  chat__route_cache_free(&c);
}

static void test_bounded(void **state) {
  chat__route_cache_t c;
  char name[16];
  (void)state;
  chat__route_cache_init(&c, TTL, 3);
  for (int i = 0; i < 3; i++) {
    snprintf(name, sizeof(name), "u%d", i);
    assert_int_equal(chat__route_cache_put(&c, name, "n2", 0, 0), 0);
  }
  assert_int_equal(chat__route_cache_put(&c, "u3", "n2", 0, 0), -ENOSPC);
  assert_null(chat__route_cache_get(&c, "u3", 1));
  assert_string_equal(chat__route_cache_get(&c, "u2", 1), "n2");
  /* the next epoch has room again */
  assert_int_equal(chat__route_cache_put(&c, "u3", "n2", TTL, TTL), 0);
  assert_int_equal(chat__route_cache_len(&c), 1);
  chat__route_cache_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hit_within_ttl),
      cmocka_unit_test(test_old_lookup_not_kept),
      cmocka_unit_test(test_move_and_forget),
      cmocka_unit_test(test_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
