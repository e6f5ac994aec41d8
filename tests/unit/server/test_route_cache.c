/* test_route_cache.c -- route_cache.h: answers are used only within ttl of
 * their lookup, a lookup ttl old is not kept, a refresh is asked for once
 * from half a ttl and renews the answer, forget, and the bound on entries
 * (entries ttl old are swept). */
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
  assert_null(chat__route_cache_get(&c, "bob", 5000, NULL));
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 5000, 5001), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 5002, NULL), "n2");
  assert_string_equal(chat__route_cache_get(&c, "bob", 5999, NULL), "n2");
  assert_null(chat__route_cache_get(&c, "carol", 5999, NULL));
  /* ttl after the lookup: gone */
  assert_null(chat__route_cache_get(&c, "bob", 6000, NULL));
  assert_int_equal(chat__route_cache_len(&c), 0);
  chat__route_cache_free(&c);
}

/* An answer is never used ttl or more after its lookup was sent, however
 * late it comes. */
static void test_old_lookup_not_kept(void **state) {
  chat__route_cache_t c;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 9000, 10000),
                   -ESTALE);
  assert_null(chat__route_cache_get(&c, "bob", 10001, NULL));
  /* answered late, kept until ttl after the lookup */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 10500, 10990), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 11499, NULL), "n2");
  assert_null(chat__route_cache_get(&c, "bob", 11500, NULL));
  assert_int_equal(chat__route_cache_len(&c), 0);
  /* a clock that went back does not make an answer younger */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 12000, 12001), 0);
  assert_null(chat__route_cache_get(&c, "bob", 11000, NULL));
  chat__route_cache_free(&c);
}

/* From half a ttl the caller is asked, once, to look again; the answer
 * renews the entry, so a steady stream never misses. */
static void test_refresh_ahead(void **state) {
  chat__route_cache_t c;
  int refresh = 0;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 1000, 1001), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 1499, &refresh), "n2");
  assert_int_equal(refresh, 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 1500, &refresh), "n2");
  assert_int_equal(refresh, 1);
  refresh = 0; /* asked once per answer */
  assert_string_equal(chat__route_cache_get(&c, "bob", 1600, &refresh), "n2");
  assert_int_equal(refresh, 0);
  /* the look-up sent at 1500 answers: good until 2500, asked again at 2000 */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 1500, 1510), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 2400, &refresh), "n2");
  assert_int_equal(refresh, 1);
  /* an older answer does not shorten it */
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 1450, 2410), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 2499, NULL), "n2");
  /* no answer came: it runs out */
  assert_null(chat__route_cache_get(&c, "bob", 2500, NULL));
  chat__route_cache_free(&c);
}

static void test_move_and_forget(void **state) {
  chat__route_cache_t c;
  (void)state;
  chat__route_cache_init(&c, TTL, 100);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n2", 0, 1), 0);
  assert_int_equal(chat__route_cache_put(&c, "bob", "n3", 2, 3), 0);
  assert_string_equal(chat__route_cache_get(&c, "bob", 4, NULL), "n3");
  assert_int_equal(chat__route_cache_len(&c), 1);
  chat__route_cache_forget(&c, "bob");
  chat__route_cache_forget(&c, "nobody");
  assert_null(chat__route_cache_get(&c, "bob", 5, NULL));
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
  assert_null(chat__route_cache_get(&c, "u3", 1, NULL));
  assert_string_equal(chat__route_cache_get(&c, "u2", 1, NULL), "n2");
  /* a ttl on, the old entries are swept: room again */
  assert_int_equal(chat__route_cache_put(&c, "u3", "n2", TTL, TTL), 0);
  assert_int_equal(chat__route_cache_len(&c), 1);
  chat__route_cache_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hit_within_ttl),
      cmocka_unit_test(test_old_lookup_not_kept),
      cmocka_unit_test(test_refresh_ahead),
      cmocka_unit_test(test_move_and_forget),
      cmocka_unit_test(test_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
