/* test_tickets.c -- 32 lowercase hex digits, and no repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chat_protocol.h"
#include "tickets.h"

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_format_and_unique(void **state) {
  assert_true(sodium_init() >= 0);
  enum { N = 2000 };
  char(*t)[33] = malloc(N * sizeof(*t));
  for (int i = 0; i < N; i++) {
    chat__ticket_new(t[i]);
    assert_int_equal(strlen(t[i]), 32);
    assert_true(chat_ticket_valid(t[i]));
  }
  qsort(t, N, sizeof(*t), cmp);
  for (int i = 1; i < N; i++)
    assert_string_not_equal(t[i - 1], t[i]);
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_format_and_unique)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
