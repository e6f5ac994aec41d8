/* test_server_relay.c -- PROTOCOL.md section 3, messages through the relay:
 * relayed and stored sends, deliver, ack and receipt, offline delivery in
 * order, redelivery of unacked messages, duplicates, kicks. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define QUIET_MS 300

static th_client_t *relogin(void **state, const char *name) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  th_client_login(c, name, TH_FIXTURE_PW, 0);
  return c;
}

/* Closes b and waits until the server has ended its session, which its
 * contact a sees as presence offline. */
static void close_and_wait_offline(th_client_t *a, th_client_t *b,
                                   const char *bn) {
  th_client_close(b);
  for (;;) {
    json_t *p = th_client_expect(a, "presence", TH_DEADLINE_MS);
    int done = strcmp(th_str(p, "user"), bn) == 0 &&
               strcmp(th_str(p, "status"), "offline") == 0;
    json_decref(p);
    if (done)
      return;
  }
}

static void test_relay_ack_receipt(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  /* not contacts: anyone registered may be messaged */
  th_client_send_msg(a, "bob", "m1", "hello bob", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "m1", "hello bob", 0));
  th_client_ack(b, "alice", "m1");
  json_t *rc = th_client_expect(a, "receipt", TH_DEADLINE_MS);
  assert_string_equal(th_str(rc, "msg_id"), "m1");
  assert_string_equal(th_str(rc, "to"), "bob");
  assert_string_equal(th_str(rc, "state"), "delivered");
  json_decref(rc);
  th_client_expect_silence(b, QUIET_MS); /* ack gets no reply */
  /* once acked, it is not held: the same msg_id is a new message */
  th_client_send_msg(a, "bob", "m1", "again", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "m1", "again", 0));
  th_client_close(a);
  th_client_close(b);
}

static void test_send_errors(void **state) {
  th_client_t *a = th_fixture_user(state, "alice");
  th_client_call_error(a, "no_such_user", "{s:s,s:s,s:s,s:s}", "type", "send",
                       "to", "ghost", "msg_id", "m1", "body", "x");
  th_client_call_error(a, "bad_request", "{s:s,s:s,s:s,s:s}", "type", "send",
                       "to", "alice", "msg_id", "m1", "body", "x");
  th_client_call_error(a, "bad_request", "{s:s,s:s,s:s,s:s}", "type", "send",
                       "to", "alice", "msg_id", "bad id!", "body", "x");
  th_client_call_error(a, "bad_request", "{s:s,s:s,s:s,s:s}", "type", "send",
                       "to", "alice", "msg_id", "m2", "body", "");
  /* acks of unknown messages are ignored */
  th_client_ack(a, "ghost", "m1");
  th_client_ack(a, "alice", "nope");
  th_client_expect_silence(a, QUIET_MS);
  th_client_close(a);
}

static void test_offline_store_then_deliver_in_order(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_make_contacts(a, "alice", b, "bob");
  close_and_wait_offline(a, b, "bob");
  char id[16], body[32];
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    snprintf(body, sizeof(body), "message %d", i);
    th_client_send_msg(a, "bob", id, body, "stored");
  }
  th_client_t *c = th_fixture_user(state, "carol");
  th_client_send(c, "{s:s,s:s}", "type", "contact_add", "user", "bob");
  json_decref(th_client_expect(c, "ok", TH_DEADLINE_MS));
  b = th_client_connect(th_server_port(*state));
  th_client_send(b, "{s:s,s:s,s:s}", "type", "login", "user", "bob", "password",
                 TH_FIXTURE_PW);
  /* order: ok, contact requests, then held messages oldest first */
  json_t *f = th_client_recv(b, TH_DEADLINE_MS);
  th_assert_type(f, "ok", NULL);
  json_decref(f);
  f = th_client_recv(b, TH_DEADLINE_MS);
  th_assert_type(f, "contact_request", NULL);
  json_decref(f);
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    snprintf(body, sizeof(body), "message %d", i);
    f = th_client_recv(b, TH_DEADLINE_MS);
    assert_non_null(f);
    th_assert_type(f, "deliver", NULL);
    assert_string_equal(th_str(f, "msg_id"), id);
    assert_string_equal(th_str(f, "body"), body);
    assert_true(json_is_true(json_object_get(f, "offline")));
    json_decref(f);
    th_client_ack(b, "alice", id);
    json_t *rc = th_client_expect(a, "receipt", TH_DEADLINE_MS);
    assert_string_equal(th_str(rc, "msg_id"), id);
    json_decref(rc);
  }
  th_client_close(b);
  /* all acked: nothing comes again */
  b = relogin(state, "bob");
  json_decref(th_client_expect(b, "contact_request", TH_DEADLINE_MS));
  th_client_expect_silence(b, QUIET_MS);
  th_client_close(a);
  th_client_close(b);
  th_client_close(c);
}

static void test_unacked_redelivered_after_session_end(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_make_contacts(a, "alice", b, "bob");
  th_client_send_msg(a, "bob", "u1", "one", "relayed");
  th_client_send_msg(a, "bob", "u2", "two", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "u1", "one", 0));
  json_decref(th_client_expect_deliver(b, "alice", "u2", "two", 0));
  th_client_ack(b, "alice", "u1");
  json_decref(th_client_expect(a, "receipt", TH_DEADLINE_MS));
  close_and_wait_offline(a, b, "bob"); /* u2 never acked */
  /* a message sent after the end is kept behind it */
  th_client_send_msg(a, "bob", "u3", "later", "stored");
  b = relogin(state, "bob");
  json_decref(th_client_expect_deliver(b, "alice", "u2", "two", 1));
  json_decref(th_client_expect_deliver(b, "alice", "u3", "later", 1));
  th_client_close(a);
  th_client_close(b);
}

static void test_duplicate_msg_id(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_make_contacts(a, "alice", b, "bob");
  th_client_send_msg(a, "bob", "d1", "first", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "d1", "first", 0));
  /* held: not pushed again */
  th_client_send_msg(a, "bob", "d1", "first", "relayed");
  th_client_expect_silence(b, QUIET_MS);
  close_and_wait_offline(a, b, "bob");
  /* written at the end */
  th_client_send_msg(a, "bob", "d1", "first", "stored");
  th_client_send_msg(a, "bob", "d2", "second", "stored");
  th_client_send_msg(a, "bob", "d2", "second", "stored");
  /* another sender may use the same msg_id */
  th_client_t *c = th_fixture_user(state, "carol");
  th_client_send_msg(c, "bob", "d2", "carol's", "stored");
  b = relogin(state, "bob");
  json_decref(th_client_expect_deliver(b, "alice", "d1", "first", 1));
  json_decref(th_client_expect_deliver(b, "alice", "d2", "second", 1));
  json_decref(th_client_expect_deliver(b, "carol", "d2", "carol's", 1));
  th_client_expect_silence(b, QUIET_MS);
  th_client_close(a);
  th_client_close(b);
  th_client_close(c);
}

static void test_kick_moves_unacked(void **state) {
  th_client_t *a = th_fixture_user(state, "alice"),
              *b1 = th_fixture_user(state, "bob");
  th_make_contacts(a, "alice", b1, "bob");
  th_client_send_msg(a, "bob", "k1", "to the first session", "relayed");
  json_decref(
      th_client_expect_deliver(b1, "alice", "k1", "to the first session", 0));
  th_client_t *b2 = th_client_connect(th_server_port(*state));
  th_client_send(b2, "{s:s,s:s,s:s,s:s}", "type", "login", "user", "bob",
                 "password", TH_FIXTURE_PW, "status", "away");
  json_decref(th_client_expect(b2, "ok", TH_DEADLINE_MS));
  json_t *k = th_client_expect(b1, "kicked", TH_DEADLINE_MS);
  assert_string_equal(th_str(k, "reason"), "logged_in_elsewhere");
  json_decref(k);
  assert_true(th_client_wait_closed(b1, TH_DEADLINE_MS));
  json_t *d = th_client_expect(b2, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "k1");
  json_decref(d);
  /* contacts see the new presence only, never offline */
  json_t *p = th_client_expect(a, "presence", TH_DEADLINE_MS);
  assert_string_equal(th_str(p, "status"), "away");
  json_decref(p);
  th_client_expect_silence(a, QUIET_MS);
  th_client_ack(b2, "alice", "k1");
  json_decref(th_client_expect(a, "receipt", TH_DEADLINE_MS));
  /* the new session is the user's */
  th_client_send_msg(a, "bob", "k2", "x", "relayed");
  json_decref(th_client_expect_deliver(b2, "alice", "k2", "x", 0));
  th_client_close(a);
  th_client_close(b1);
  th_client_close(b2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_relay_ack_receipt, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_send_errors, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_offline_store_then_deliver_in_order,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_unacked_redelivered_after_session_end, th_fixture_server_up,
          th_fixture_server_down),
      cmocka_unit_test_setup_teardown(
          test_duplicate_msg_id, th_fixture_server_up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_kick_moves_unacked,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
