/* test_hmap.c -- put/get/del at scale, deletion keeps every probe chain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

enum { N = 20000 };
static char keys[N][16];

static void test_put_get_del(void **state) {
  chat__hmap_t m;
  chat__hmap_init(&m);
  assert_null(chat__hmap_get(&m, "x", 1));
  for (int i = 0; i < N; i++) {
    int n = snprintf(keys[i], sizeof(keys[i]), "k%d", i);
    assert_int_equal(chat__hmap_put(&m, keys[i], (size_t)n, keys[i]), 0);
  }
  assert_int_equal(chat__hmap_put(&m, "k7", 2, NULL), -EEXIST);
  assert_int_equal(m.len, N);
  /* delete every third, then every key must still be found or absent */
  for (int i = 0; i < N; i += 3)
    assert_ptr_equal(chat__hmap_del(&m, keys[i], strlen(keys[i])), keys[i]);
  assert_null(chat__hmap_del(&m, keys[0], strlen(keys[0])));
  for (int i = 0; i < N; i++) {
    void *v = chat__hmap_get(&m, keys[i], strlen(keys[i]));
    if (i % 3 == 0)
      assert_null(v);
    else
      assert_ptr_equal(v, keys[i]);
  }
  size_t pos = 0, seen = 0;
  while (chat__hmap_next(&m, &pos))
    seen++;
  assert_int_equal(seen, m.len);
  chat__hmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_put_get_del)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
