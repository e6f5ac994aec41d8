/* test_dedup.c -- received messages are shown once, in bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "dedup.h"

static void test_duplicates_are_seen(void **state) {
  chat_dedup_t *d;
  assert_int_equal(chat_dedup_new(8, &d), 0);
  assert_int_equal(chat_dedup_check(d, "bob", "m1"), 0);
  assert_int_equal(chat_dedup_check(d, "bob", "m1"), 1);
  /* The key is the pair: another sender may use the same msg_id. */
  assert_int_equal(chat_dedup_check(d, "carol", "m1"), 0);
  assert_int_equal(chat_dedup_check(d, "bob", "m2"), 0);
  assert_int_equal(chat_dedup_check(d, "carol", "m1"), 1);
  assert_int_equal(chat_dedup_check(d, "Bob", "m1"), -EINVAL);
  assert_int_equal(chat_dedup_check(d, "bob", "m 1"), -EINVAL);
  assert_int_equal(chat_dedup_check(d, NULL, "m1"), -EINVAL);
  chat_dedup_free(d);
}

static void test_oldest_are_forgotten(void **state) {
  chat_dedup_t *d;
  char id[16];
  assert_int_equal(chat_dedup_new(4, &d), 0);
  for (int i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    assert_int_equal(chat_dedup_check(d, "bob", id), 0);
  }
  assert_int_equal(chat_dedup_check(d, "bob", "m0"), 1);
  assert_int_equal(chat_dedup_check(d, "bob", "m4"), 0); /* evicts m0 */
  assert_int_equal(chat_dedup_check(d, "bob", "m1"), 1);
  assert_int_equal(chat_dedup_check(d, "bob", "m0"), 0); /* new again */
  /* Many more than fit: the index stays consistent. */
  for (int i = 0; i < 1000; i++) {
    snprintf(id, sizeof(id), "x%d", i);
    assert_int_equal(chat_dedup_check(d, "bob", id), 0);
    assert_int_equal(chat_dedup_check(d, "bob", id), 1);
  }
  assert_int_equal(chat_dedup_check(d, "bob", "x996"), 1);
  assert_int_equal(chat_dedup_check(d, "bob", "x995"), 0);
  chat_dedup_free(d);
}

static void test_bad_capacity(void **state) {
  chat_dedup_t *d;
  assert_int_equal(chat_dedup_new(0, &d), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duplicates_are_seen),
      cmocka_unit_test(test_oldest_are_forgotten),
      cmocka_unit_test(test_bad_capacity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
