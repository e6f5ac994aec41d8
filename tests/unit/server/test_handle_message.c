/* test_handle_message.c -- send and ack: relayed vs stored, receipts,
 * duplicates, order, the push window, and what a session end writes. */
#include "fixture.h"

static void send_msg(fx_t *f, cap_t *c, const char *to, const char *id,
                     const char *body, const char *status) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "id", id, "to", to,
          "msg_id", id, "body", body);
  json_t *ok = cap_expect(c, "ok", NULL);
  assert_string_equal(jstr(ok, "msg_id"), id);
  assert_string_equal(jstr(ok, "status"), status);
  assert_string_equal(jstr(ok, "id"), id);
  json_decref(ok);
}

static void expect_deliver(cap_t *c, const char *from, const char *id,
                           int offline) {
  json_t *d = cap_expect(c, "deliver", NULL);
  assert_string_equal(jstr(d, "from"), from);
  assert_string_equal(jstr(d, "msg_id"), id);
  assert_int_equal(json_is_true(json_object_get(d, "offline")), offline);
  assert_null(json_object_get(d, "group"));
  json_decref(d);
}

static void ack(fx_t *f, cap_t *c, const char *from, const char *id) {
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "ack", "msg_id", id, "from", from);
}

static void test_relay_then_receipt(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  send_msg(f, a, "bob", "m1", "hi", "relayed");
  expect_deliver(b, "alice", "m1", 0);
  assert_int_equal(f->srv.mb.count, 1);
  assert_int_equal(chat__committer_pending(f->committer), 0); /* no disk */
  ack(f, b, "alice", "m1");
  cap_empty(b);
  json_t *r = cap_expect(a, "receipt", NULL);
  assert_string_equal(jstr(r, "to"), "bob");
  assert_string_equal(jstr(r, "state"), "delivered");
  json_decref(r);
  assert_int_equal(f->srv.mb.count, 0);
  ack(f, b, "alice", "m1"); /* again: ignored */
  cap_empty(a);
}

static void test_stored_survives_restart_in_order(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  send_msg(f, a, "bob", "s1", "one", "stored");
  send_msg(f, a, "bob", "s2", "two", "stored");
  send_msg(f, a, "bob", "s1", "one", "stored"); /* duplicate */
  /* held in the store only: memory follows sessions, not mailboxes (the
   * repeat may be counted until bob's next login reads the count) */
  assert_true(chat__registry_find(&f->srv.reg, "bob")->held >= 2);
  assert_int_equal(f->srv.mb.count, 0);
  fx_restart(f);
  assert_int_equal(f->srv.mb.count, 0); /* start-up reads no messages */
  cap_t *b2 = fx_user(f, "bob");
  expect_deliver(b2, "alice", "s1", 1);
  expect_deliver(b2, "alice", "s2", 1);
  /* the login read the count from the store: the repeat was never held */
  assert_int_equal(chat__registry_find(&f->srv.reg, "bob")->held, 2);
  cap_empty(b2);
}

static void test_session_end_writes_unacked(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  send_msg(f, a, "bob", "u1", "one", "relayed");
  send_msg(f, a, "bob", "u2", "two", "relayed");
  expect_deliver(b, "alice", "u1", 0);
  expect_deliver(b, "alice", "u2", 0);
  ack(f, b, "alice", "u1");
  json_decref(cap_expect(a, "receipt", NULL));
  fx_disconnect(f, b); /* u2 written now */
  fx_restart(f);
  assert_int_equal(f->srv.mb.count, 0);
  cap_t *b2 = fx_user(f, "bob");
  expect_deliver(b2, "alice", "u2", 1);
  assert_int_equal(f->srv.mb.count, 1); /* pushed: in memory until acked */
  /* acking a written message deletes it from the store */
  ack(f, b2, "alice", "u2");
  fx_restart(f);
  assert_int_equal(f->srv.mb.count, 0);
}

static void test_duplicate_of_relayed(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  send_msg(f, a, "bob", "d1", "x", "relayed");
  send_msg(f, a, "bob", "d1", "x", "relayed");
  expect_deliver(b, "alice", "d1", 0);
  cap_empty(b); /* pushed once */
}

static void test_window_paces_pushes(void **state) {
  fx_t *f = *state;
  f->srv.cfg.max_output = 4 * 1000; /* window: 1000 bytes of bodies */
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  char body[601];
  memset(body, 'x', 600);
  body[600] = '\0';
  send_msg(f, a, "bob", "w1", body, "relayed"); /* first always goes */
  send_msg(f, a, "bob", "w2", body, "stored");  /* 1200 > 1000 */
  send_msg(f, a, "bob", "w3", "short", "stored"); /* behind w2: waits */
  expect_deliver(b, "alice", "w1", 0);
  cap_empty(b);
  ack(f, b, "alice", "w1");
  expect_deliver(b, "alice", "w2", 0);
  expect_deliver(b, "alice", "w3", 0); /* 605 fits */
  json_decref(cap_expect(a, "receipt", NULL));
}

static void test_overflow_while_pushing_stores(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  b->limit = b->bytes + 10; /* the next frame overflows */
  /* the push ends bob's session, which writes the message: so the sender
   * hears "stored", after the commit */
  send_msg(f, a, "bob", "o1", "hello", "stored");
  assert_true(b->closed);
  assert_null(f->srv.reg.users.len ? chat__registry_find(&f->srv.reg, "bob")
                                         ->session
                                   : NULL);
  fx_disconnect(f, b);
  fx_restart(f);
  cap_t *b2 = fx_user(f, "bob");
  expect_deliver(b2, "alice", "o1", 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_relay_then_receipt),
      T(test_stored_survives_restart_in_order),
      T(test_session_end_writes_unacked),
      T(test_duplicate_of_relayed),
      T(test_window_paces_pushes),
      T(test_overflow_while_pushing_stores),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
