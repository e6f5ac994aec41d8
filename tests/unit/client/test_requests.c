/* test_requests.c -- the table of requests awaiting their reply: ids, the
 * login's fixed names, lookups that forget, and the command names events
 * carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "requests.h"

static void test_ids_and_take(void **state) {
  chat_reqs_t t;
  chat_req_t r;
  char a[CHAT_REQ_ID_MAX], b[CHAT_REQ_ID_MAX];
  chat_reqs_init(&t);
  assert_int_equal(chat_reqs_add(&t, CHAT_REQ_ADD, "bob", NULL, a), 0);
  assert_int_equal(chat_reqs_add(&t, CHAT_REQ_GROUP_ADD, "dev", "carol", b),
                   0);
  assert_string_not_equal(a, b);
  assert_int_equal(chat_reqs_take(&t, b, &r), 0);
  assert_int_equal(r.kind, CHAT_REQ_GROUP_ADD);
  assert_string_equal(r.arg, "dev");
  assert_string_equal(r.arg2, "carol");
  assert_int_equal(chat_reqs_take(&t, b, &r), -ENOENT); /* once */
  assert_int_equal(chat_reqs_take(&t, "r999", &r), -ENOENT);
  assert_int_equal(chat_reqs_take(&t, a, &r), 0);
  assert_int_equal(r.kind, CHAT_REQ_ADD);
  assert_string_equal(r.arg, "bob");
  assert_int_equal(t.n, 0);
  chat_reqs_free(&t);
}

static void test_login_names_and_clear(void **state) {
  chat_reqs_t t;
  chat_req_t r;
  char id[CHAT_REQ_ID_MAX];
  chat_reqs_init(&t);
  assert_int_equal(chat_reqs_add(&t, CHAT_REQ_LOGIN, NULL, NULL, id), 0);
  assert_string_equal(id, "login");
  /* A second login (after a reconnect) replaces the first. */
  assert_int_equal(chat_reqs_add(&t, CHAT_REQ_LOGIN, NULL, NULL, id), 0);
  assert_int_equal(t.n, 1);
  assert_int_equal(chat_reqs_add(&t, CHAT_REQ_LOGIN_CONTACTS, NULL, NULL, id),
                   0);
  assert_string_equal(id, "login-contacts");
  for (int i = 0; i < 100; i++)
    assert_int_equal(chat_reqs_add(&t, CHAT_REQ_SEND, "m", NULL, id), 0);
  chat_reqs_clear(&t);
  assert_int_equal(chat_reqs_take(&t, "login", &r), -ENOENT);
  chat_reqs_free(&t);
}

static void test_command_names(void **state) {
  assert_string_equal(chat_req_command(CHAT_REQ_ADD), "add");
  assert_string_equal(chat_req_command(CHAT_REQ_GROUP_CREATE),
                      "group_create");
  assert_string_equal(chat_req_command(CHAT_REQ_SEND), "msg");
  assert_string_equal(chat_req_command(CHAT_REQ_GROUP_SEND), "gmsg");
  assert_null(chat_req_command(CHAT_REQ_LOGIN));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_and_take),
      cmocka_unit_test(test_login_names_and_clear),
      cmocka_unit_test(test_command_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
