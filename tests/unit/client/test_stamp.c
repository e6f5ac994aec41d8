/* test_stamp.c -- the date appears exactly when the time is not today. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stamp.h"

static void test_today_and_not(void **state) {
  char buf[32];
  /* 2026-12-04 12:00:00 UTC */
  long long now = 1796385600LL * 1000;
  setenv("TZ", "UTC", 1);
  tzset();
  chat_stamp_format(buf, sizeof(buf), now - 3600 * 1000, now);
  assert_string_equal(buf, "[11:00:00]");
  chat_stamp_format(buf, sizeof(buf), now - 13LL * 3600 * 1000, now);
  assert_string_equal(buf, "[2026-12-03 23:00:00]");
  chat_stamp_format(buf, sizeof(buf), now - 366LL * 24 * 3600 * 1000, now);
  assert_string_equal(buf, "[2025-12-03 12:00:00]");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_today_and_not)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
