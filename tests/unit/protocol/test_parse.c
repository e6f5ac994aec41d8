/* test_parse.c -- chat_frame_parse details beyond the frame corpus: result
 * types, error reporting, huge nesting, and allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "chaos.h"

static int parse(const char *s, json_t **out, chat_error_t *err) {
  return chat_frame_parse(s, strlen(s), out, err);
}

static void test_blank_and_err_null(void **state) {
  json_t *o = (json_t *)1;

  assert_int_equal(chat_frame_parse("", 0, &o, NULL), 1);
  assert_null(o);
  assert_int_equal(parse(" \t ", &o, NULL), 1);
  assert_int_equal(parse("[", &o, NULL), -CHAT_E_BAD_JSON);
  assert_null(o);
  /* Only the given length is read: what follows is not part of the line. */
  assert_int_equal(chat_frame_parse("{}garbage", 2, &o, NULL), 0);
  json_decref(o);
}

static void test_error_fields(void **state) {
  json_t *o;
  chat_error_t err;

  chat_error_set(&err, CHAT_E_INTERNAL, "stale", "stale");
  assert_int_equal(parse("{\"a\":1,\"a\":1}", &o, &err), -CHAT_E_BAD_JSON);
  assert_int_equal(err.code, CHAT_E_BAD_JSON);
  assert_string_equal(err.field, "");
  assert_non_null(strstr(err.message, "duplicate"));
  assert_int_equal(parse("{\"a\":1}", &o, &err), 0);
  assert_int_equal(err.code, 0); /* cleared on entry */
  json_decref(o);
}

static void test_numbers(void **state) {
  json_t *o;

  assert_int_equal(parse("{\"i\":9223372036854775807,\"r\":2.5,"
                         "\"b\":-9223372036854775809}", &o, NULL), 0);
  assert_true(json_is_integer(json_object_get(o, "i")));
  assert_true(json_integer_value(json_object_get(o, "i")) == INT64_MAX);
  assert_true(json_is_real(json_object_get(o, "r")));
  assert_true(json_is_real(json_object_get(o, "b")));
  assert_true(json_real_value(json_object_get(o, "b")) < -9.2e18);
  json_decref(o);
  /* Widening keeps strings (with escapes) intact around big integers. */
  assert_int_equal(parse("{\"s\":\"\\\"12345678901234567890\",\"n\":"
                         "[12345678901234567890,1]}", &o, NULL), 0);
  assert_string_equal(json_string_value(json_object_get(o, "s")),
                      "\"12345678901234567890");
  assert_true(json_is_real(json_array_get(json_object_get(o, "n"), 0)));
  assert_true(json_is_integer(json_array_get(json_object_get(o, "n"), 1)));
  json_decref(o);
  assert_int_equal(parse("{\"n\":-1e999}", &o, NULL), -CHAT_E_BAD_JSON);
  assert_int_equal(parse("{\"n\":01}", &o, NULL), -CHAT_E_BAD_JSON);
  assert_int_equal(parse("{\"n\":012345678901234567890}", &o, NULL),
                   -CHAT_E_BAD_JSON);
}

static void test_deep_nesting_is_cheap(void **state) {
  const size_t n = 1000000;
  char *s = malloc(2 * n + 1);
  json_t *o;
  chat_error_t err;

  assert_non_null(s);
  memset(s, '[', n);
  memset(s + n, ']', n);
  s[2 * n] = '\0';
  assert_int_equal(chat_frame_parse(s, 2 * n, &o, &err), -CHAT_E_BAD_JSON);
  assert_non_null(strstr(err.message, "nested deeper than 32"));
  /* Depth counts arrays and objects alike; strings do not count. */
  memset(s, '{', n);
  assert_int_equal(chat_frame_parse(s, n, &o, &err), -CHAT_E_BAD_JSON);
  assert_non_null(strstr(err.message, "nested"));
  free(s);
}

/* Fail the Nth allocation for N = 0, 1, ... until parsing succeeds: no run
 * crashes or leaks, and each fails cleanly or succeeds whole. */
static void test_enomem(void **state) {
  /* Every token is under 16 bytes: jansson 2.14 asserts (lex_unget_unsave)
   * when growing its token buffer fails, which no caller can prevent. */
  static const char line[] =
      "{\"type\":\"send\",\"id\":1,\"to\":\"bob\",\"msg_id\":\"m1\","
      "\"body\":\"hello\",\"x\":[1,{\"y\":[2,3]}]}";
  int n, nomem = 0;

  for (n = 0; n < 1000; n++) {
    json_t *o = NULL;
    chat_error_t err;
    int rc;

    chaos_live = 0;
    chaos_arm(n);
    rc = chat_frame_parse(line, strlen(line), &o, &err);
    if (rc == 0) {
      chat_msg_t msg;
      assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, NULL), 0);
      json_decref(o);
    }
    chaos_disarm();
    assert_int_equal(chaos_live, 0);
    if (rc == 0)
      break;
    /* jansson reports some failed allocations as syntax errors. */
    assert_true(rc == -ENOMEM || rc == -CHAT_E_BAD_JSON);
    assert_null(o);
    nomem += rc == -ENOMEM;
  }
  assert_true(n < 1000);
  assert_true(nomem > 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_blank_and_err_null),
    cmocka_unit_test(test_error_fields),
    cmocka_unit_test(test_numbers),
    cmocka_unit_test(test_deep_nesting_is_cheap),
    cmocka_unit_test(test_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
