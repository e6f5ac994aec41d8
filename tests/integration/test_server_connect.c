/* test_server_connect.c -- PROTOCOL.md section 3, direct connections: the
 * error order, the ticket handed to both sides, the advertised host, and
 * the direct-link keys of section 7 (login's key, vouched in connect's ok
 * and in expect). */
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

static const char KA[] =
    "aaaa0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
static const char KB[] =
    "bbbb0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

/* Each side gets the other's key with the ticket: the requester in the ok,
 * the target in its expect; by password login and by token login. */
static void test_keys_with_ticket(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_connect(port);
  th_client_register(a, "alice", TH_FIXTURE_PW);
  json_t *ok = th_client_call_ok(a, "{s:s,s:s,s:s,s:s,s:b}", "type", "login",
                                 "user", "alice", "password", TH_FIXTURE_PW,
                                 "key", KA, "remember", 1);
  char token[65];
  snprintf(token, sizeof(token), "%s", th_str(ok, "token"));
  json_decref(ok);
  th_client_t *b = th_client_connect(port);
  th_client_register(b, "bob", TH_FIXTURE_PW);
  json_decref(th_client_call_ok(b, "{s:s,s:s,s:s,s:i,s:s}", "type", "login",
                                "user", "bob", "password", TH_FIXTURE_PW,
                                "p2p_port", 40123, "key", KB));
  th_make_contacts(a, "alice", b, "bob");
  json_t *r = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to",
                                "bob");
  assert_string_equal(th_str(r, "key"), KB);
  json_t *e = th_client_expect(b, "expect", TH_DEADLINE_MS);
  assert_string_equal(th_str(e, "key"), KA);
  json_decref(r);
  json_decref(e);

  /* alice again by token with a new key (a new process has a new one):
   * bob's expect carries the new key. */
  th_client_close(a);
  json_decref(th_client_expect(b, "presence", TH_DEADLINE_MS));
  a = th_client_connect(port);
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s,s:s}", "type", "login",
                                "user", "alice", "token", token, "key", KB));
  json_decref(th_client_expect(b, "presence", TH_DEADLINE_MS));
  json_decref(th_client_call_ok(a, "{s:s}", "type", "contacts"));
  r = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to", "bob");
  e = th_client_expect(b, "expect", TH_DEADLINE_MS);
  assert_string_equal(th_str(e, "key"), KB);
  json_decref(r);
  json_decref(e);
  th_client_close(a);
  th_client_close(b);
}

/* A side that announced no key: no key field for its peer (who then
 * refuses the link and relays, fallback bad_key). */
static void test_no_key_no_field(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_connect(port);
  th_client_register(b, "bob", TH_FIXTURE_PW);
  th_client_login(b, "bob", TH_FIXTURE_PW, 40123);
  th_make_contacts(a, "alice", b, "bob");
  json_t *r = th_client_call_ok(a, "{s:s,s:s}", "type", "connect", "to",
                                "bob");
  assert_null(json_object_get(r, "key"));
  json_t *e = th_client_expect(b, "expect", TH_DEADLINE_MS);
  assert_null(json_object_get(e, "key"));
  json_decref(r);
  json_decref(e);
  th_client_close(a);
  th_client_close(b);
}

/* A key that is not 64 lowercase hex digits is bad_request naming key, by
 * password and by token; nothing is logged in. */
static void test_bad_key_rejected(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_connect(port);
  static const char *const bad[] = {
      "AAAA0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
      "aaa0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
      "aaaaa0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
      "zzzz0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
      ""};
  th_client_register(a, "alice", TH_FIXTURE_PW);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *e = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "login", "user",
                               "alice", "password", TH_FIXTURE_PW, "key",
                               bad[i]);
    th_assert_type(e, "error", "bad_request");
    assert_non_null(strstr(th_str(e, "message"), "key"));
    json_decref(e);
  }
  json_t *e = th_client_call(a, "{s:s,s:s,s:s,s:i}", "type", "login", "user",
                             "alice", "token", KA, "key", 7);
  th_assert_type(e, "error", "bad_request");
  json_decref(e);
  /* still not logged in */
  th_client_call_error(a, "not_authenticated", "{s:s}", "type", "contacts");
  th_client_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_error_order, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_ticket_to_both, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_p2p_host_override, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_keys_with_ticket, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_no_key_no_field, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_bad_key_rejected, th_fixture_server_up, th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
