/* test_send_fault.c -- a 1:1 send whose PUT fails to commit.
 *
 * Nothing was accepted: the sender is told internal and nothing is held.
 * A recipient logging in meanwhile reads its messages after that commit,
 * so it never sees the failed one, whichever of its login and the failed
 * commit comes back first. */
#include "fixture.h"

static void feed_send(fx_t *f, cap_t *c, const char *id, const char *msg_id) {
  fx_feed(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "id", id, "to", "bob",
          "msg_id", msg_id, "body", "hi bob");
}

static void expect_status(cap_t *c, const char *id, const char *status) {
  json_t *ok = cap_expect(c, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), id);
  assert_string_equal(jstr(ok, "status"), status);
  json_decref(ok);
}

static void expect_deliver(cap_t *c, const char *msg_id, int offline) {
  json_t *d = cap_expect(c, "deliver", NULL);
  assert_string_equal(jstr(d, "from"), "alice");
  assert_string_equal(jstr(d, "msg_id"), msg_id);
  assert_int_equal(json_is_true(json_object_get(d, "offline")), offline);
  json_decref(d);
}

static chat__held_t *held(fx_t *f, const char *msg_id) {
  return chat__mailbox_find(&f->srv.mb, chat__registry_find(&f->srv.reg, "bob"),
                            chat__registry_find(&f->srv.reg, "alice"), msg_id);
}

/* (c) bob logs in before the failed commit of alice's stored send returns. */
static void test_login_during_failed_commit_sees_nothing(void **state) {
  /* The store is the authority: bob's held messages are read after the
   * commit that would have stored m1, so a failed commit never reaches
   * him, and alice is told internal (nothing was accepted). */
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  cap_t *b2 = fx_connect(f);
  fx_feed(f, b2, "{s:s,s:s,s:s,s:s}", "type", "login", "id", "l1", "user",
          "bob", "password", "password1");
  chat__store_fail_next(f->store, -EROFS);
  feed_send(f, a, "s1", "m1"); /* bob is still offline: stored */
  fx_run(f);
  json_t *ok = cap_expect(b2, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "l1");
  json_decref(ok);
  cap_empty(b2);
  json_t *e = cap_expect(a, "error", NULL);
  assert_string_equal(jstr(e, "code"), "internal");
  json_decref(e);
  cap_empty(a);
  assert_null(held(f, "m1"));
  /* a retry is a fresh send, and now it goes through */
  feed_send(f, a, "s2", "m1");
  fx_run(f);
  expect_status(a, "s2", "relayed");
  expect_deliver(b2, "m1", 0);
  fx_restart(f);
  b = fx_user(f, "bob");
  expect_deliver(b, "m1", 1); /* unacked: held after the restart, once */
  cap_empty(b);
}

/* Plain failure: internal, nothing held; a repeat that arrives while the
 * failing commit is in flight is judged after it, as a fresh send. */
static void test_plain_failure_internal(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  chat__store_fail_next(f->store, -EROFS);
  feed_send(f, a, "s1", "m3");
  uv_run(&f->loop, UV_RUN_NOWAIT); /* its batch goes to the pool */
  fx_feed(f, a, "{s:s,s:s,s:s}", "type", "group_create", "id", "c1", "group",
          "other"); /* a change for the next batch */
  feed_send(f, a, "s2", "m3");
  fx_run(f);
  /* s2 came while s1's commit was in flight: its PUT rides with the next
   * batch, which the store takes since s1's copy never landed (the store
   * keeps one copy of a sender's msg_id). The group_create waited for the
   * store's answer on "other", read after that batch. */
  json_t *e = cap_expect(a, "error", "internal");
  assert_string_equal(jstr(e, "id"), "s1");
  json_decref(e);
  expect_status(a, "s2", "stored");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "c1");
  json_decref(ok);
  cap_empty(a);
  assert_null(held(f, "m3")); /* in the store, not in memory */
  /* now it is held: a repeat is answered with its status */
  feed_send(f, a, "s3", "m3");
  fx_run(f);
  expect_status(a, "s3", "stored");
  fx_restart(f);
  b = fx_user(f, "bob");
  expect_deliver(b, "m3", 1);
  cap_empty(b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_login_during_failed_commit_sees_nothing),
      T(test_plain_failure_internal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
