/* test_server_accounts.c -- PROTOCOL.md section 3, accounts and sessions:
 * register, login and its failures, session state errors, logout. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void expect_reply_error(th_client_t *c, const char *code,
                               const char *fmt_type, const char *user,
                               const char *pw) {
  th_client_call_error(c, code, "{s:s,s:s,s:s}", "type", fmt_type, "user", user,
                       "password", pw);
}

static void test_register_then_exists(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  json_decref(th_client_call_ok(c, "{s:s,s:s,s:s}", "type", "register", "user",
                                "alice", "password", TH_FIXTURE_PW));
  expect_reply_error(c, "user_exists", "register", "alice", "otherpass1");
  th_client_close(c);
  /* also from another connection */
  c = th_client_connect(th_server_port(*state));
  expect_reply_error(c, "user_exists", "register", "alice", TH_FIXTURE_PW);
  th_client_close(c);
}

static void test_register_bad_fields(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  expect_reply_error(c, "bad_request", "register", "Alice", TH_FIXTURE_PW);
  expect_reply_error(c, "bad_request", "register", "-x", TH_FIXTURE_PW);
  expect_reply_error(c, "bad_request", "register", "bob", "short");
  json_t *r = th_client_call(c, "{s:s,s:s}", "type", "register", "user",
                             "bob");
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "password"));
  json_decref(r);
  th_client_close(c);
}

static void test_login_ok_carries_user_and_host(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_register(c, "alice", TH_FIXTURE_PW);
  json_t *r = th_client_call_ok(c, "{s:s,s:s,s:s}", "type", "login", "user",
                                "alice", "password", TH_FIXTURE_PW);
  assert_string_equal(th_str(r, "user"), "alice");
  assert_string_equal(th_str(r, "host"), "127.0.0.1");
  json_decref(r);
  th_client_close(c);
}

static void test_pipelined_register_login(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  const char *lines =
      "{\"type\":\"register\",\"id\":1,\"user\":\"carol\",\"password\":"
      "\"" TH_FIXTURE_PW "\"}\n{\"type\":\"login\",\"id\":2,\"user\":\"carol\","
                         "\"password\":\"" TH_FIXTURE_PW
      "\"}\n{\"type\":\"contacts\",\"id\":3}\n";
  th_client_send_raw(c, lines, strlen(lines));
  for (int i = 1; i <= 3; i++) {
    json_t *f = th_client_recv(c, TH_DEADLINE_MS);
    assert_non_null(f);
    th_assert_type(f, "ok", NULL);
    assert_int_equal(th_int(f, "id"), i);
    json_decref(f);
  }
  th_client_close(c);
}

static void test_auth_failed_variants(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_register(c, "alice", TH_FIXTURE_PW);
  expect_reply_error(c, "auth_failed", "login", "alice", "wrongpass1");
  expect_reply_error(c, "auth_failed", "login", "nobody", TH_FIXTURE_PW);
  expect_reply_error(c, "auth_failed", "login", "Bad Name!", TH_FIXTURE_PW);
  th_client_close(c);
  c = th_client_connect(th_server_port(*state));
  expect_reply_error(c, "auth_failed", "login", "alice", "short");
  /* the connection is still usable and a right password works */
  th_client_login(c, "alice", TH_FIXTURE_PW, 0);
  th_client_close(c);
}

static void test_login_bad_field_types(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_call_error(c, "bad_request", "{s:s,s:s,s:i}", "type", "login",
                       "user", "alice", "password", 12345678);
  th_client_call_error(c, "bad_request", "{s:s,s:s,s:s,s:i}", "type", "login",
                       "user", "alice", "password", TH_FIXTURE_PW, "p2p_port",
                       70000);
  th_client_close(c);
}

static void test_fifth_failed_login_closes(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_register(c, "alice", TH_FIXTURE_PW);
  for (int i = 0; i < 4; i++)
    expect_reply_error(c, "auth_failed", "login", "alice", "wrongpass1");
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  json_decref(p); /* still open after four */
  th_client_send(c, "{s:s,s:s,s:s}", "type", "login", "user", "alice",
                 "password", "wrongpass1");
  json_decref(th_client_expect_error(c, "auth_failed", TH_DEADLINE_MS));
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
}

static void test_not_authenticated(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  const char *types[] = {"logout",  "contacts", "status", "send",
                         "connect", "groups",   "ack"};
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    /* well-formed where fields matter, so the state check is what fails */
    th_client_call_error(c, "not_authenticated",
                         "{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", types[i],
                         "status", "away", "to", "bob", "msg_id", "m1", "body",
                         "hi", "from", "bob", "user", "bob");
  }
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(c);
}

static void test_fields_checked_before_state(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  /* no fields */
  th_client_call_error(c, "bad_request", "{s:s}", "type", "send");
  th_client_close(c);
}

static void test_already_authenticated(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  expect_reply_error(c, "already_authenticated", "login", "alice",
                     TH_FIXTURE_PW);
  expect_reply_error(c, "already_authenticated", "register", "zed",
                     TH_FIXTURE_PW);
  th_client_close(c);
}

static void test_logout_closes(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  json_decref(th_client_call_ok(c, "{s:s}", "type", "logout"));
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
}

static void test_status_values(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  json_decref(th_client_call_ok(c, "{s:s,s:s}", "type", "status", "status",
                                "busy"));
  th_client_call_error(c, "bad_request", "{s:s,s:s}", "type", "status",
                       "status", "offline");
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_then_exists,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_register_bad_fields,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_login_ok_carries_user_and_host,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_pipelined_register_login,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_auth_failed_variants,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_login_bad_field_types,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_fifth_failed_login_closes,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_not_authenticated, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_fields_checked_before_state,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_already_authenticated,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_logout_closes, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_status_values, th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
