/* test_server_contacts.c -- PROTOCOL.md section 3, presence and contacts:
 * consent on both sides, requests at login, presence only to contacts. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define QUIET_MS 300

static json_t *call_user(th_client_t *c, const char *type, const char *u) {
  return th_client_call(c, "{s:s,s:s}", "type", type, "user", u);
}

static void ok_user(th_client_t *c, const char *type, const char *u) {
  json_t *r = call_user(c, type, u);
  th_assert_type(r, "ok", NULL);
  json_decref(r);
}

static void err_user(th_client_t *c, const char *type, const char *u,
                     const char *code) {
  th_client_call_error(c, code, "{s:s,s:s}", "type", type, "user", u);
}

static void test_add_accept_flow(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  ok_user(a, "contact_add", "bob");
  json_t *rq = th_client_expect(b, "contact_request", TH_DEADLINE_MS);
  assert_string_equal(th_str(rq, "from"), "alice");
  json_decref(rq);
  json_decref(th_client_call_ok(b, "{s:s,s:s}", "type", "status", "status",
                                "away"));
  ok_user(b, "contact_accept", "alice");
  json_t *ea = th_client_expect(a, "contact_added", TH_DEADLINE_MS);
  assert_string_equal(th_str(ea, "user"), "bob");
  assert_string_equal(th_str(ea, "status"), "away");
  json_t *eb = th_client_expect(b, "contact_added", TH_DEADLINE_MS);
  assert_string_equal(th_str(eb, "user"), "alice");
  assert_string_equal(th_str(eb, "status"), "online");
  json_decref(ea);
  json_decref(eb);
  json_t *l = th_client_call_ok(a, "{s:s}", "type", "contacts");
  json_t *arr = json_object_get(l, "contacts");
  assert_int_equal(json_array_size(arr), 1);
  assert_string_equal(th_str(json_array_get(arr, 0), "user"), "bob");
  assert_string_equal(th_str(json_array_get(arr, 0), "status"), "away");
  json_decref(l);
  th_client_close(a);
  th_client_close(b);
}

static void test_request_at_every_login(void **state) {
  th_client_t *a = th_fixture_user(state, "alice");
  th_client_t *b = th_fixture_user(state, "bob");
  th_client_close(b);
  th_client_t *c = th_fixture_user(state, "carol");
  ok_user(a, "contact_add", "bob");
  ok_user(c, "contact_add", "bob");
  for (int round = 0; round < 2; round++) {
    b = th_client_connect(th_server_port(*state));
    th_client_login(b, "bob", TH_FIXTURE_PW, 0);
    json_t *r1 = th_client_expect(b, "contact_request", TH_DEADLINE_MS);
    json_t *r2 = th_client_expect(b, "contact_request", TH_DEADLINE_MS);
    assert_string_equal(th_str(r1, "from"), "alice"); /* oldest first */
    assert_string_equal(th_str(r2, "from"), "carol");
    json_decref(r1);
    json_decref(r2);
    th_client_close(b);
  }
  /* answered requests are not repeated */
  b = th_client_connect(th_server_port(*state));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  ok_user(b, "contact_accept", "alice");
  ok_user(b, "contact_decline", "carol");
  th_client_close(b);
  b = th_client_connect(th_server_port(*state));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  th_client_expect_silence(b, QUIET_MS);
  th_client_close(b);
  th_client_close(a);
  th_client_close(c);
}

static void test_add_back_accepts(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  ok_user(a, "contact_add", "bob");
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  ok_user(b, "contact_add", "alice");
  json_decref(th_client_expect(a, "contact_added", TH_DEADLINE_MS));
  json_decref(th_client_expect(b, "contact_added", TH_DEADLINE_MS));
  th_client_close(a);
  th_client_close(b);
}

static void test_repeat_add_is_silent_ok(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  ok_user(a, "contact_add", "bob");
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  ok_user(a, "contact_add", "bob"); /* pending: no new request */
  th_client_expect_silence(b, QUIET_MS);
  ok_user(b, "contact_accept", "alice");
  json_decref(th_client_expect(a, "contact_added", TH_DEADLINE_MS));
  json_decref(th_client_expect(b, "contact_added", TH_DEADLINE_MS));
  ok_user(a, "contact_add", "bob"); /* existing contact */
  th_client_expect_silence(b, QUIET_MS);
  th_client_expect_silence(a, 1);
  th_client_close(a);
  th_client_close(b);
}

static void test_add_errors(void **state) {
  th_client_t *a = th_fixture_user(state, "alice");
  err_user(a, "contact_add", "alice", "bad_request");
  err_user(a, "contact_add", "ghost", "no_such_user");
  err_user(a, "contact_add", "Not A Name", "bad_request");
  err_user(a, "contact_accept", "ghost", "no_such_user");
  th_client_t *b = th_fixture_user(state, "bob");
  err_user(a, "contact_accept", "bob", "bad_request"); /* nothing pending */
  err_user(a, "contact_remove", "bob", "not_contact");
  err_user(a, "contact_remove", "ghost", "no_such_user");
  th_client_close(a);
  th_client_close(b);
}

static void test_decline_is_silent(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  ok_user(a, "contact_add", "bob");
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  ok_user(b, "contact_decline", "alice");
  th_client_expect_silence(a, QUIET_MS);
  err_user(b, "contact_accept", "alice", "bad_request");
  /* alice may ask again */
  ok_user(a, "contact_add", "bob");
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  th_client_close(a);
  th_client_close(b);
}

static void test_remove(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_make_contacts(a, "alice", b, "bob");
  ok_user(a, "contact_remove", "bob");
  json_t *ev = th_client_expect(b, "contact_removed", TH_DEADLINE_MS);
  assert_string_equal(th_str(ev, "user"), "alice");
  json_decref(ev);
  json_t *l = th_client_call_ok(b, "{s:s}", "type", "contacts");
  assert_int_equal(json_array_size(json_object_get(l, "contacts")), 0);
  json_decref(l);
  err_user(b, "contact_remove", "alice", "not_contact");
  th_client_close(a);
  th_client_close(b);
}

static void test_contacts_sorted_with_status(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"), *mike = NULL;
  const char *names[] = {"zoe", "bob", "mike"};
  for (int i = 0; i < 3; i++) {
    th_client_t *o = th_fixture_user(state, names[i]);
    th_make_contacts(a, "alice", o, names[i]);
    if (strcmp(names[i], "mike") != 0) {
      th_client_close(o); /* zoe and bob go offline */
      json_decref(th_client_expect(a, "presence", TH_DEADLINE_MS));
    } else {
      mike = o;
      json_decref(th_client_call_ok(o, "{s:s,s:s}", "type", "status",
                                    "status", "busy"));
    }
  }
  json_t *l = th_client_call_ok(a, "{s:s}", "type", "contacts");
  json_t *arr = json_object_get(l, "contacts");
  assert_int_equal(json_array_size(arr), 3);
  const char *want[][2] = {
      {"bob", "offline"}, {"mike", "busy"}, {"zoe", "offline"}};
  for (int i = 0; i < 3; i++) {
    assert_string_equal(th_str(json_array_get(arr, i), "user"), want[i][0]);
    assert_string_equal(th_str(json_array_get(arr, i), "status"),
                        want[i][1]);
  }
  json_decref(l);
  th_client_close(a);
  th_client_close(mike);
}

static void expect_presence(th_client_t *c, const char *u, const char *st) {
  json_t *p = th_client_expect(c, "presence", TH_DEADLINE_MS);
  assert_string_equal(th_str(p, "user"), u);
  assert_string_equal(th_str(p, "status"), st);
  json_decref(p);
}

static void test_presence_only_to_contacts(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_client_t *x =
      th_fixture_user(state, "xavier"); /* not a contact of anyone */
  th_make_contacts(a, "alice", b, "bob");
  json_decref(th_client_call_ok(b, "{s:s,s:s}", "type", "status", "status",
                                "away"));
  expect_presence(a, "bob", "away");
  th_client_close(b);
  expect_presence(a, "bob", "offline");
  b = th_client_connect(th_server_port(*state));
  th_client_send(b, "{s:s,s:s,s:s,s:s}", "type", "login", "user", "bob",
                 "password", TH_FIXTURE_PW, "status", "busy");
  json_decref(th_client_expect(b, "ok", TH_DEADLINE_MS));
  expect_presence(a, "bob", "busy");
  json_decref(th_client_call_ok(b, "{s:s}", "type", "logout"));
  expect_presence(a, "bob", "offline");
  /* xavier saw none of it */
  th_client_expect_silence(x, QUIET_MS);
  th_client_close(a);
  th_client_close(b);
  th_client_close(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_add_accept_flow, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_request_at_every_login,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_add_back_accepts, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_repeat_add_is_silent_ok,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_add_errors, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_decline_is_silent, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_remove, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_contacts_sorted_with_status,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_presence_only_to_contacts,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
