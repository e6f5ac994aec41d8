/* test_server_durability.c -- what survives a restart: stored messages
 * after SIGKILL, unacked messages after SIGTERM, accounts and contacts. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void send_ok(th_client_t *c, const char *to, const char *id,
                    const char *body, const char *status) {
  json_t *r = th_client_call(c, "{s:s,s:s,s:s,s:s}", "type", "send", "to", to,
                             "msg_id", id, "body", body);
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "status"), status);
  json_decref(r);
}

static void expect_deliver(th_client_t *c, const char *id, const char *body) {
  json_t *d = th_client_expect(c, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), id);
  assert_string_equal(th_str(d, "body"), body);
  assert_true(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
}

static void test_sigkill_after_stored(void **state) {
  th_server_t *s = *state;
  th_client_t *a = th_client_user(th_server_port(s), "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(th_server_port(s), "bob", TH_FIXTURE_PW);
  th_make_contacts(a, "alice", b, "bob");
  th_client_close(b);
  json_decref(th_client_expect(a, "presence", TH_DEADLINE_MS));
  send_ok(a, "bob", "k1", "survives kill -9", "stored");
  th_client_close(a);
  th_server_restart(s, SIGKILL);
  b = th_client_connect(th_server_port(s));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  expect_deliver(b, "k1", "survives kill -9");
  /* contacts survived too */
  json_t *l = th_client_call_ok(b, "{s:s}", "type", "contacts");
  assert_string_equal(
      th_str(json_array_get(json_object_get(l, "contacts"), 0), "user"),
      "alice");
  json_decref(l);
  th_client_close(b);
}

static void test_sigterm_keeps_unacked(void **state) {
  th_server_t *s = *state;
  th_client_t *a = th_client_user(th_server_port(s), "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(th_server_port(s), "bob", TH_FIXTURE_PW);
  send_ok(a, "bob", "t1", "pushed, never acked", "relayed");
  json_decref(th_client_expect(b, "deliver", TH_DEADLINE_MS));
  assert_int_equal(th_server_stop(s, SIGTERM), 0);
  assert_true(th_client_wait_closed(b, TH_DEADLINE_MS));
  th_client_close(a);
  th_client_close(b);
  th_server_restart(s, SIGTERM);
  b = th_client_connect(th_server_port(s));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  expect_deliver(b, "t1", "pushed, never acked");
  th_client_close(b);
}

static void test_sigint_exits_zero(void **state) {
  th_server_t *s = *state;
  th_client_t *a = th_client_user(th_server_port(s), "alice", TH_FIXTURE_PW);
  assert_int_equal(th_server_stop(s, SIGINT), 0);
  th_client_close(a);
}

static void test_unacked_after_session_end_survive_sigkill(void **state) {
  th_server_t *s = *state;
  th_client_t *a = th_client_user(th_server_port(s), "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(th_server_port(s), "bob", TH_FIXTURE_PW);
  th_make_contacts(a, "alice", b, "bob");
  send_ok(a, "bob", "e1", "relayed first", "relayed");
  json_decref(th_client_expect(b, "deliver", TH_DEADLINE_MS));
  th_client_close(b);
  json_decref(th_client_expect(a, "presence", TH_DEADLINE_MS));
  /* "stored" commits everything added before it, e1's write included */
  send_ok(a, "bob", "e2", "stored second", "stored");
  th_client_close(a);
  th_server_restart(s, SIGKILL);
  b = th_client_connect(th_server_port(s));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  expect_deliver(b, "e1", "relayed first");
  expect_deliver(b, "e2", "stored second");
  th_client_close(b);
}

static void test_accounts_survive(void **state) {
  th_server_t *s = *state;
  th_client_t *a = th_client_connect(th_server_port(s));
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "register", "user",
                                "alice", "password", TH_FIXTURE_PW));
  th_client_close(a);
  th_server_restart(s, SIGKILL); /* register's ok came after the commit */
  a = th_client_connect(th_server_port(s));
  th_client_login(a, "alice", TH_FIXTURE_PW, 0);
  json_t *r = th_client_call(a, "{s:s}", "type", "logout");
  json_decref(r);
  th_client_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sigkill_after_stored,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_sigterm_keeps_unacked,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_sigint_exits_zero, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_unacked_after_session_end_survive_sigkill, th_fixture_server_up,
          th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_accounts_survive, th_fixture_server_up, th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
