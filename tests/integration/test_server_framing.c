/* test_server_framing.c -- PROTOCOL.md sections 1 and 2 over a real socket:
 * JSON Lines framing, error replies, id echo, the protocol-error limit. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int up_small_frames(void **state) {
  const char *const extra[] = {"--max-frame", "1024", NULL};
  return th_fixture_server_up_with(state, extra);
}

static void send_str(th_client_t *c, const char *s) {
  assert_int_equal(th_client_send_raw(c, s, strlen(s)), 0);
}

static void test_welcome(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  const json_t *w = th_client_welcome(c);
  assert_int_equal(th_int(w, "proto"), 1);
  assert_int_equal(th_int(w, "heartbeat"), 30);
  assert_int_equal(th_int(w, "max_frame"), 65536);
  assert_non_null(th_str(w, "server"));
  assert_true(strncmp(th_str(w, "server"), "chat-server/", 12) == 0);
  assert_null(json_object_get(w, "id"));
  th_client_close(c);
}

static void test_crlf_and_blank_lines(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  send_str(c, "\r\n   \t\n\n{\"type\":\"ping\",\"id\":1}\r\n \r\n");
  json_t *f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  assert_int_equal(th_int(f, "id"), 1);
  json_decref(f);
  th_client_expect_silence(c, 300); /* blank lines get no reply */
  th_client_close(c);
}

static void test_split_writes(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  send_str(c, "{\"type\":\"pi");
  th_client_expect_silence(c, 100);
  send_str(c, "ng\",\"id\":\"a\"}\n{\"type\":\"ping\",\"id\":\"b\"}\n");
  json_t *f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  assert_string_equal(th_str(f, "id"), "a");
  json_decref(f);
  f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  assert_string_equal(th_str(f, "id"), "b");
  json_decref(f);
  th_client_close(c);
}

static void test_bad_json_keeps_connection(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  const char *bad[] = {"nope\n", "[1,2]\n", "{\"type\":\"ping\"\n",
                       "{\"a\":1,\"a\":2}\n", "\"str\"\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    send_str(c, bad[i]);
    json_t *e = th_client_expect_error(c, "bad_json", TH_DEADLINE_MS);
    assert_null(json_object_get(e, "id"));
    assert_non_null(th_str(e, "message"));
    json_decref(e);
  }
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(c);
}

static void test_frame_too_large_closes(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  char *big = malloc(4000);
  memset(big, 'x', 4000);
  th_client_send_raw(c, big, 4000); /* no LF: the server must not wait */
  free(big);
  json_t *e = th_client_expect_error(c, "frame_too_large", TH_DEADLINE_MS);
  json_decref(e);
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
}

static void test_frame_at_limit_is_fine(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  /* exactly 1024 bytes before the CR LF, which are not counted */
  char line[1100];
  const char *head = "{\"type\":\"ping\",\"id\":\"x\",\"pad\":\"";
  size_t n = strlen(head);
  memcpy(line, head, n);
  while (n < 1024 - 2)
    line[n++] = 'p';
  memcpy(line + n, "\"}\r\n", 4);
  th_client_send_raw(c, line, 1024 + 2);
  json_t *f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  json_decref(f);
  th_client_close(c);
}

static void test_tenth_protocol_error_closes(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  for (int i = 0; i < 9; i++) {
    if (i % 3 == 0)
      send_str(c, "garbage\n");
    else if (i % 3 == 1)
      th_client_send(c, "{s:s}", "type", "no_such_type");
    else
      th_client_send(c, "{s:s}", "type", "contacts"); /* not_authenticated */
    json_decref(th_client_expect(c, "error", TH_DEADLINE_MS));
  }
  /* still open: other requests work and do not count */
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  json_decref(p);
  send_str(c, "{\"no_type\":1}\n");
  json_decref(th_client_expect_error(c, "bad_request", TH_DEADLINE_MS));
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
}

static void test_unknown_type(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_send(c, "{s:s,s:s}", "type", "teleport", "id", "t1");
  json_t *e = th_client_expect_error(c, "unknown_type", TH_DEADLINE_MS);
  assert_string_equal(th_str(e, "id"), "t1");
  json_decref(e);
  /* a server-to-client type is unknown to the server too */
  th_client_send(c, "{s:s,s:i}", "type", "deliver", "id", 5);
  e = th_client_expect_error(c, "unknown_type", TH_DEADLINE_MS);
  assert_int_equal(th_int(e, "id"), 5);
  json_decref(e);
  th_client_close(c);
}

static void test_missing_or_bad_type(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_send(c, "{s:i}", "id", 3);
  json_t *e = th_client_expect_error(c, "bad_request", TH_DEADLINE_MS);
  assert_int_equal(th_int(e, "id"), 3);
  assert_non_null(strstr(th_str(e, "message"), "type"));
  json_decref(e);
  th_client_send(c, "{s:i}", "type", 7);
  e = th_client_expect_error(c, "bad_request", TH_DEADLINE_MS);
  assert_non_null(strstr(th_str(e, "message"), "type"));
  json_decref(e);
  th_client_close(c);
}

static void test_id_echo(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_send(c, "{s:s,s:s}", "type", "ping", "id", "abc");
  json_t *f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  assert_string_equal(th_str(f, "id"), "abc");
  json_decref(f);
  th_client_send(c, "{s:s,s:I}", "type", "contacts", "id",
                 (json_int_t)9007199254740991LL);
  f = th_client_expect_error(c, "not_authenticated", TH_DEADLINE_MS);
  assert_true(json_integer_value(json_object_get(f, "id")) ==
              9007199254740991LL);
  json_decref(f);
  th_client_send(c, "{s:s}", "type", "ping");
  f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  assert_null(json_object_get(f, "id"));
  json_decref(f);
  th_client_close(c);
}

static void test_invalid_id_not_echoed(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  char long_id[80];
  memset(long_id, 'i', 65);
  long_id[65] = '\0';
  th_client_send(c, "{s:s,s:i}", "type", "ping", "id", -1);
  th_client_send(c, "{s:s,s:I}", "type", "ping", "id",
                 (json_int_t)9007199254740992LL);
  th_client_send(c, "{s:s,s:s}", "type", "ping", "id", long_id);
  th_client_send(c, "{s:s,s:{}}", "type", "ping", "id");
  th_client_send(c, "{s:s,s:f}", "type", "ping", "id", 1.5);
  for (int i = 0; i < 5; i++) {
    json_t *e = th_client_expect_error(c, "bad_request", TH_DEADLINE_MS);
    assert_null(json_object_get(e, "id"));
    assert_non_null(strstr(th_str(e, "message"), "id"));
    json_decref(e);
  }
  th_client_close(c);
}

static void test_unknown_fields_ignored(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_send(c, "{s:s,s:s,s:{s:[i]}}", "type", "ping", "id", "u",
                 "future", "x", 1);
  json_t *f = th_client_expect(c, "pong", TH_DEADLINE_MS);
  json_decref(f);
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_welcome, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_crlf_and_blank_lines,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_split_writes, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_bad_json_keeps_connection,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_frame_too_large_closes,
                                      up_small_frames, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_frame_at_limit_is_fine,
                                      up_small_frames, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_tenth_protocol_error_closes,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_unknown_type, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_missing_or_bad_type,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_id_echo, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_invalid_id_not_echoed,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_unknown_fields_ignored,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
