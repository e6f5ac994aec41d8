/* test_server_connect.c -- PROTOCOL.md section 3, direct connections: the
 * error order, the ticket handed to both sides, the advertised host. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void connect_err(th_client_t *c, const char *to, const char *code) {
  th_client_call_error(c, code, "{s:s,s:s}", "type", "connect", "to", to);
}

static int is_ticket(const char *t) {
  if (t == NULL || strlen(t) != 32)
    return 0;
  for (int i = 0; i < 32; i++)
    if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
      return 0;
  return 1;
}

static void test_error_order(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  connect_err(a, "ghost", "no_such_user");
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  connect_err(a, "bob", "not_contact"); /* before offline/no_p2p */
  connect_err(a, "alice", "not_contact");
  th_make_contacts(a, "alice", b, "bob");
  connect_err(a, "bob", "no_p2p"); /* online, no listener */
  th_client_close(b);
  json_decref(th_client_expect(a, "presence", TH_DEADLINE_MS));
  connect_err(a, "bob", "offline");
  th_client_close(a);
}

static void test_ticket_to_both(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_connect(port);
  th_client_register(b, "bob", TH_FIXTURE_PW);
  th_client_login(b, "bob", TH_FIXTURE_PW, 40123);
  th_make_contacts(a, "alice", b, "bob");
  json_t *r = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to",
                                "bob");
  assert_string_equal(th_str(r, "to"), "bob");
  assert_string_equal(th_str(r, "host"), "127.0.0.1");
  assert_int_equal(th_int(r, "port"), 40123);
  assert_true(is_ticket(th_str(r, "ticket")));
  json_t *e = th_client_expect(b, "expect", TH_DEADLINE_MS);
  assert_string_equal(th_str(e, "from"), "alice");
  assert_string_equal(th_str(e, "ticket"), th_str(r, "ticket"));
  assert_null(json_object_get(e, "id"));
  /* every connect gets a fresh ticket */
  json_t *r2 = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to",
                                 "bob");
  assert_string_not_equal(th_str(r2, "ticket"), th_str(r, "ticket"));
  json_decref(th_client_expect(b, "expect", TH_DEADLINE_MS));
  json_decref(r);
  json_decref(r2);
  json_decref(e);
  th_client_close(a);
  th_client_close(b);
}

static void test_p2p_host_override(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_connect(port);
  th_client_register(b, "bob", TH_FIXTURE_PW);
  json_decref(th_client_call_ok(b, "{s:s,s:s,s:s,s:i,s:s}", "type", "login",
                                "user", "bob", "password", TH_FIXTURE_PW,
                                "p2p_port", 5555, "p2p_host", "bob.example"));
  th_make_contacts(a, "alice", b, "bob");
  json_t *r = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to",
                                "bob");
  assert_string_equal(th_str(r, "host"), "bob.example");
  assert_int_equal(th_int(r, "port"), 5555);
  json_decref(r);
  th_client_close(a);
  th_client_close(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_error_order, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_ticket_to_both, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_p2p_host_override, th_fixture_server_up, th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
