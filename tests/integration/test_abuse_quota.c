/* test_abuse_quota.c -- --offline-quota: a recipient's held messages are
 * bounded; a send beyond is refused with rate_limited and
 * "reason":"offline_quota" (never a silent drop), and sending works again
 * once the recipient has read and acked. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int up(void **state) {
  const char *const extra[] = {"--offline-quota", "5", NULL};
  return th_fixture_server_up_with(state, extra);
}

static json_t *send_msg(th_client_t *c, const char *to, const char *msg_id) {
  return th_client_call(c, "{s:s,s:s,s:s,s:s}", "type", "send", "to", to,
                        "msg_id", msg_id, "body", "hello");
}

static void assert_quota_error(json_t *r) {
  th_assert_type(r, "error", "rate_limited");
  assert_string_equal(th_str(r, "reason"), "offline_quota");
  assert_non_null(strstr(th_str(r, "message"), "full"));
  assert_true(th_int(r, "id") >= 0); /* it answers that request */
}

static void test_sixth_send_refused_until_acked(void **state) {
  int port = th_server_port(*state);
  th_client_t *bob = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_close(bob); /* registered, offline */
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "carol", TH_FIXTURE_PW);
  char id[16];
  for (int i = 1; i <= 5; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    json_t *r = send_msg(i % 2 ? a : c, "bob", id);
    th_assert_type(r, "ok", NULL);
    assert_string_equal(th_str(r, "status"), "stored");
    json_decref(r);
  }
  /* the 6th, from either sender, is refused with a clear error */
  json_t *r = send_msg(a, "bob", "m6");
  assert_quota_error(r);
  json_decref(r);
  r = send_msg(c, "bob", "m7");
  assert_quota_error(r);
  json_decref(r);
  /* a repeat of a held msg_id is still answered with its status */
  r = send_msg(a, "bob", "m1");
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "status"), "stored");
  json_decref(r);
  /* other recipients are not affected; the sender stays connected */
  r = send_msg(a, "carol", "x1");
  th_assert_type(r, "ok", NULL);
  json_decref(r);
  json_decref(th_client_expect(c, "deliver", TH_DEADLINE_MS));

  /* bob logs in: exactly the 5 stored ones, m6/m7 were never accepted */
  bob = th_client_connect(port);
  th_client_login(bob, "bob", TH_FIXTURE_PW, 0);
  for (int i = 1; i <= 5; i++) {
    json_t *d = th_client_expect(bob, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "m%d", i);
    assert_string_equal(th_str(d, "msg_id"), id);
    /* still unacked: pushed but held, so the quota still counts them */
    json_decref(d);
  }
  th_client_expect_silence(bob, 200);
  r = send_msg(a, "bob", "m8");
  assert_quota_error(r);
  json_decref(r);
  for (int i = 1; i <= 5; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    th_client_ack(bob, i % 2 ? "alice" : "carol", id);
  }
  /* once acked, sending works again (relayed now that bob is online) */
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (;;) {
    r = send_msg(a, "bob", "m9");
    if (strcmp(th_str(r, "type"), "ok") == 0)
      break;
    assert_quota_error(r); /* the acks may not have been read yet */
    json_decref(r);
    assert_true(th_now_ms() < deadline);
  }
  assert_string_equal(th_str(r, "status"), "relayed");
  json_decref(r);
  json_t *d = th_client_expect(bob, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "m9");
  json_decref(d);
  th_client_close(a);
  th_client_close(c);
  th_client_close(bob);
}

/* group_send counts each full member as not stored and says so. */
static void test_group_send_reports_over_quota(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "carol", TH_FIXTURE_PW);
  th_make_contacts(a, "alice", b, "bob");
  th_make_contacts(a, "alice", c, "carol");
  json_decref(th_client_call_ok(a, "{s:s,s:s}", "type", "group_create",
                                "group", "dev"));
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "group_add",
                                "group", "dev", "user", "bob"));
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "group_add",
                                "group", "dev", "user", "carol"));
  th_client_close(b);
  th_client_close(c);
  /* fill bob's mailbox; carol's stays empty (relayed or stored alike:
   * either way bob holds them until he acks) */
  char id[16];
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "b%d", i);
    json_t *r = send_msg(a, "bob", id);
    th_assert_type(r, "ok", NULL);
    json_decref(r);
  }
  json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "group_send",
                             "group", "dev", "msg_id", "g1", "body", "hi");
  th_assert_type(r, "ok", NULL);
  assert_int_equal(th_int(r, "stored"), 1);   /* carol */
  assert_int_equal(th_int(r, "relayed"), 0);
  assert_int_equal(th_int(r, "over_quota"), 1); /* bob */
  json_decref(r);
  /* fill carol too: nobody can take it, so it is refused outright */
  for (int i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    json_decref(send_msg(a, "carol", id));
  }
  r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "group_send", "group",
                     "dev", "msg_id", "g2", "body", "hi");
  assert_quota_error(r);
  json_decref(r);
  th_client_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sixth_send_refused_until_acked, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_group_send_reports_over_quota, up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
