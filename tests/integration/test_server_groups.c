/* test_server_groups.c -- PROTOCOL.md section 5: create, add (contacts
 * only), group_added, members, groups, group_send fan-out with relayed and
 * stored counts, delivery at login, no receipts, leave. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void test_group_flow(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "carol", TH_FIXTURE_PW);
  th_make_contacts(a, "alice", b, "bob");
  th_make_contacts(a, "alice", c, "carol");
  json_decref(th_client_call_ok(a, "{s:s,s:s}", "type", "group_create",
                                "group", "dev"));
  th_client_call_error(b, "group_exists", "{s:s,s:s}", "type", "group_create",
                       "group", "dev");
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "group_add",
                                "group", "dev", "user", "bob"));
  json_t *ga = th_client_expect(b, "group_added", TH_DEADLINE_MS);
  assert_string_equal(th_str(ga, "group"), "dev");
  assert_string_equal(th_str(ga, "by"), "alice");
  json_decref(ga);
  /* bob may add only his contacts: carol is not one */
  th_client_call_error(b, "not_contact", "{s:s,s:s,s:s}", "type", "group_add",
                       "group", "dev", "user", "carol");
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "group_add",
                                "group", "dev", "user", "carol"));
  json_decref(th_client_expect(c, "group_added", TH_DEADLINE_MS));
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "group_add",
                                "group", "dev", "user", "carol"));
  th_client_expect_silence(c, 200); /* again: no event */
  json_t *r = th_client_call_ok(b, "{s:s,s:s}", "type", "group_members",
                                "group", "dev");
  json_t *mem = json_object_get(r, "members");
  assert_int_equal(json_array_size(mem), 3);
  assert_string_equal(th_str(json_array_get(mem, 0), "user"), "alice");
  assert_string_equal(th_str(json_array_get(mem, 2), "user"), "carol");
  assert_string_equal(th_str(json_array_get(mem, 2), "status"), "online");
  json_decref(r);
  /* carol goes away: one relayed, one stored */
  th_client_close(c);
  for (;;) {
    json_t *p = th_client_expect(a, "presence", TH_DEADLINE_MS);
    int off = strcmp(th_str(p, "status"), "offline") == 0;
    json_decref(p);
    if (off)
      break;
  }
  r = th_client_call_ok(a, "{s:s,s:s,s:s,s:s}", "type", "group_send",
                        "group", "dev", "msg_id", "g1", "body", "hello all");
  assert_int_equal(th_int(r, "relayed"), 1);
  assert_int_equal(th_int(r, "stored"), 1);
  json_decref(r);
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "group"), "dev");
  assert_string_equal(th_str(d, "from"), "alice");
  assert_false(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
  th_client_ack(b, "alice", "g1");
  th_client_expect_silence(a, 300); /* no receipts for groups */
  c = th_client_connect(port);
  th_client_login(c, "carol", TH_FIXTURE_PW, 0);
  d = th_client_expect(c, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "group"), "dev");
  assert_true(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
  r = th_client_call_ok(c, "{s:s}", "type", "groups");
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(r, "groups"), 0)),
                      "dev");
  json_decref(r);
  json_decref(th_client_call_ok(c, "{s:s,s:s}", "type", "group_leave",
                                "group", "dev"));
  th_client_call_error(c, "not_member", "{s:s,s:s}", "type", "group_members",
                       "group", "dev");
  th_client_close(a);
  th_client_close(b);
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_group_flow, th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
