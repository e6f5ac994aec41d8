/* test_ratelimit.c -- the token bucket: bursts of 5x, refill, off at 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_burst_then_refill(void **state) {
  chat__ratelimit_t rl;
  chat__ratelimit_init(&rl, 10, 1000);
  for (int i = 0; i < 50; i++)
    assert_true(chat__ratelimit_take(&rl, 10, 1000));
  assert_false(chat__ratelimit_take(&rl, 10, 1000));
  assert_false(chat__ratelimit_take(&rl, 10, 1050)); /* half a token */
  assert_true(chat__ratelimit_take(&rl, 10, 1100));  /* one token */
  assert_false(chat__ratelimit_take(&rl, 10, 1100));
  /* a long pause refills to the burst, no more */
  int n = 0;
  while (chat__ratelimit_take(&rl, 10, 100000))
    n++;
  assert_int_equal(n, 50);
}

static void test_slow_rate_and_off(void **state) {
  chat__ratelimit_t rl;
  chat__ratelimit_init(&rl, 1, 0);
  for (int i = 0; i < 5; i++)
    assert_true(chat__ratelimit_take(&rl, 1, 0));
  assert_false(chat__ratelimit_take(&rl, 1, 999));
  assert_true(chat__ratelimit_take(&rl, 1, 1000));
  for (int i = 0; i < 1000; i++)
    assert_true(chat__ratelimit_take(&rl, 0, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_burst_then_refill),
                                     cmocka_unit_test(test_slow_rate_and_off)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
