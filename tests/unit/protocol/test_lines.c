/* test_lines.c -- the line writers against jansson: for many inputs, each
 * writer's line must equal byte for byte what chat_frame_encode makes of the
 * matching builder's object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"

static void expect_same(json_t *obj, const char *line, int len) {
  char *want;
  size_t want_len;

  assert_non_null(obj);
  assert_int_equal(chat_frame_encode(obj, &want, &want_len), 0);
  assert_true(len > 0);
  if ((size_t)len != want_len || memcmp(want, line, want_len) != 0)
    fail_msg("writer: %.*s\njansson: %s", len, line, want);
  free(want);
  json_decref(obj);
}

/* Every byte value that can occur in valid UTF-8 text, in short and long
 * bodies: all controls, the specials, DEL, and multi-byte characters. */
static size_t make_body(char *b, int variant) {
  size_t n = 0;
  switch (variant) {
  case 0:
    for (int c = 1; c < 0x80; c++)
      b[n++] = (char)c;
    break;
  case 1:
  {
    static const char text[] =
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \"q\" \\ /";
    memcpy(b, text, sizeof(text) - 1);
    n = sizeof(text) - 1;
  }
    break;
  case 2:
    b[n++] = 'x';
    break;
  case 3:
    for (; n < CHAT_MAX_BODY; n++)
      b[n] = (char)(n % 7 == 0 ? '"' : n % 11 == 0 ? '\n' : 'a' + n % 26);
    break;
  case 4:
    for (; n < CHAT_MAX_BODY; n++)
      b[n] = (char)(1 + n % 31); /* every line escaped: the worst case */
    break;
  case 5: /* a NUL inside: jansson writes \u0000, so must the writer */
    memcpy(b, "a\0b", 3);
    n = 3;
    break;
  }
  return n;
}

static void test_deliver(void **state) {
  static const char *const groups[] = {NULL, "g", "team.a-1_x"};
  static const int64_t stamps[] = {0, 1, 1700000000123LL, INT64_MAX, -5};
  char *body = malloc(CHAT_MAX_BODY);
  size_t cap = chat_line_max(CHAT_MAX_BODY) + 200;
  char *line = malloc(cap);

  assert_non_null(body);
  assert_non_null(line);
  for (int v = 0; v < 6; v++) {
    size_t n = make_body(body, v);
    for (size_t g = 0; g < 3; g++)
      for (size_t t = 0; t < 5; t++)
        for (int off = 0; off <= 1; off++) {
          int len = chat_line_deliver(line, cap, "alice", groups[g],
                                      "A-z_09", body, n, stamps[t], off);
          expect_same(chat_ev_deliver("alice", groups[g], "A-z_09", body, n,
                                      stamps[t], off),
                      line, len);
          /* the length bound: exact for the longest ts and offline false */
          size_t bound = chat_line_deliver_len(
              "alice", groups[g], "A-z_09", chat_json_escaped_len(body, n));
          if (stamps[t] >= 0)
            assert_true((size_t)len <= bound);
          if (stamps[t] == INT64_MAX && !off)
            assert_int_equal((size_t)len, bound);
        }
  }
  free(body);
  free(line);
}

static void test_receipt_and_ok(void **state) {
  char line[2048];
  json_t *id, *ok;
  int len;

  len = chat_line_receipt(line, sizeof(line), "m1", "bob", "delivered");
  expect_same(chat_ev_receipt("m1", "bob", "delivered"), line, len);

  /* ids: none, integers, strings with everything jansson escapes */
  json_t *ids[] = {
    NULL, json_integer(0), json_integer(CHAT_MAX_ID_INT), json_integer(42),
    json_string("r1"), json_string(""), json_string("a\"b\\c/d\n\x01\x7f"),
    json_string("\xc3\xa9\xe2\x82\xac"),
  };
  static const char *const statuses[] = {"relayed", "stored"};
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    for (size_t s = 0; s < 2; s++) {
      id = ids[i];
      len = chat_line_send_ok(line, sizeof(line), id, "m-9", statuses[s]);
      ok = chat_reply_ok(id);
      json_object_set_new(ok, "msg_id", json_string("m-9"));
      json_object_set_new(ok, "status", json_string(statuses[s]));
      expect_same(ok, line, len);
    }
    json_decref(ids[i]);
  }
}

static void test_refusals(void **state) {
  char line[2048];
  json_t *real = json_real(1.5);

  /* names that would need escaping are refused, never written raw */
  assert_int_equal(chat_line_receipt(line, sizeof(line), "m\"", "bob", "d"),
                   -EINVAL);
  assert_int_equal(chat_line_receipt(line, sizeof(line), "m", "b\\", "d"),
                   -EINVAL);
  assert_int_equal(chat_line_receipt(line, sizeof(line), "m", "b\xc3\xa9",
                                     "d"),
                   -EINVAL);
  assert_int_equal(chat_line_deliver(line, sizeof(line), "a\n", NULL, "m",
                                     "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_line_deliver(line, sizeof(line), "a", NULL, NULL,
                                     "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_line_send_ok(line, sizeof(line), real, "m", "s"),
                   -EINVAL);
  /* too long to be a name or an id */
  char lng[200];
  memset(lng, 'a', sizeof(lng) - 1);
  lng[sizeof(lng) - 1] = '\0';
  assert_int_equal(chat_line_receipt(line, sizeof(line), "m", lng, "d"),
                   -EINVAL);
  json_t *long_id = json_string(lng);
  assert_int_equal(chat_line_send_ok(line, sizeof(line), long_id, "m", "s"),
                   -EINVAL);
  json_decref(long_id);
  /* a buffer below chat_line_max */
  assert_int_equal(chat_line_receipt(line, 10, "m", "bob", "delivered"),
                   -ENOBUFS);
  assert_int_equal(chat_line_deliver(line, sizeof(line), "a", NULL, "m",
                                     "x", 1000, 0, 0),
                   -ENOBUFS);
  json_decref(real);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deliver),
    cmocka_unit_test(test_receipt_and_ok),
    cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
