/* test_group_fault.c -- a group_send whose stored copies fail to commit.
 *
 * Once any member was pushed the message, it was accepted: the offline
 * copies stay held, are committed by a later batch, and the ok (with the
 * counts of the send) comes only then; a repeat meanwhile waits for the same
 * outcome. If nobody was pushed it, nothing was accepted: every copy goes,
 * the sender (and any repeat, whatever batch it waited on) is told internal,
 * and a retry is a fresh send. Faults come from chat__store_fail_next(). */
#include "fixture.h"

static void feed_gsend(fx_t *f, cap_t *c, const char *id, const char *msg_id) {
  fx_feed(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", id,
          "group", "g", "msg_id", msg_id, "body", "hello group");
}

/* Runs the loop one turn at a time until n batches have failed. */
static void run_until_failed(fx_t *f, uint64_t n) {
  chat__committer_stats_t st;
  for (;;) {
    chat__committer_stats(f->committer, &st);
    if (st.failed_batches >= n)
      return;
    if (uv_run(&f->loop, UV_RUN_ONCE) == 0) {
      chat__committer_stats(f->committer, &st);
      if (st.failed_batches < n)
        fail_msg("loop idle with %llu failed batches, want %llu",
                 (unsigned long long)st.failed_batches,
                 (unsigned long long)n);
    }
  }
}

static void expect_counts(cap_t *c, const char *id, const char *msg_id,
                          int relayed, int stored) {
  json_t *ok = cap_expect(c, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), id);
  assert_string_equal(jstr(ok, "msg_id"), msg_id);
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")),
                   relayed);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), stored);
  json_decref(ok);
}

static void expect_internal(cap_t *c, const char *id) {
  json_t *e = cap_expect(c, "error", "internal");
  assert_string_equal(jstr(e, "id"), id);
  json_decref(e);
}

static void expect_deliver(cap_t *c, const char *msg_id, int offline) {
  json_t *d = cap_expect(c, "deliver", NULL);
  assert_string_equal(jstr(d, "group"), "g");
  assert_string_equal(jstr(d, "from"), "alice");
  assert_string_equal(jstr(d, "msg_id"), msg_id);
  assert_string_equal(jstr(d, "body"), "hello group");
  assert_int_equal(json_is_true(json_object_get(d, "offline")), offline);
  json_decref(d);
}

/* Messages held for user anywhere (store and memory). */
static size_t held_for(fx_t *f, const char *user) {
  return chat__registry_find(&f->srv.reg, user)->held;
}

/* alice, bob and carol in group g (alice their contact); carol offline.
 * Every frame so far is dropped. */
static void trio(fx_t *f, cap_t **a, cap_t **b) {
  *a = fx_user(f, "alice");
  *b = fx_user(f, "bob");
  cap_t *c = fx_user(f, "carol");
  fx_contacts(f, *a, "alice", *b, "bob");
  fx_contacts(f, *a, "alice", c, "carol");
  fx_send(f, *a, "{s:s,s:s}", "type", "group_create", "group", "g");
  fx_send(f, *a, "{s:s,s:s,s:s}", "type", "group_add", "group", "g", "user",
          "bob");
  fx_send(f, *a, "{s:s,s:s,s:s}", "type", "group_add", "group", "g", "user",
          "carol");
  fx_disconnect(f, c);
  json_array_clear((*a)->frames);
  json_array_clear((*b)->frames);
}

/* (a) bob was pushed it, carol's copy failed: accepted, committed later. */
static void test_pushed_copy_keeps_message(void **state) {
  fx_t *f = *state;
  cap_t *a, *b;
  trio(f, &a, &b);
  chat__store_fail_next(f->store, -EROFS);
  feed_gsend(f, a, "s1", "m1");
  expect_deliver(b, "m1", 0);
  run_until_failed(f, 1);
  cap_empty(a); /* no internal; the ok waits for carol's copy */
  assert_int_equal(held_for(f, "carol"), 1);
  /* A repeat in the failure window finds bob's copy in flight: it is
   * answered with what memory holds and delivered to nobody again. */
  feed_gsend(f, a, "s2", "m1");
  expect_counts(a, "s2", "m1", 1, 0);
  cap_empty(b);
  fx_run(f); /* the retry after CHAT_COMMITTER_RETRY_MS commits */
  expect_counts(a, "s1", "m1", 1, 1);
  cap_empty(a);
  cap_empty(b);
  chat__committer_stats_t st;
  chat__committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  assert_int_equal(chat__committer_pending(f->committer), 0);
  /* carol's copy is on disk: a restart finds it */
  fx_restart(f);
  cap_t *c = fx_user(f, "carol");
  expect_deliver(c, "m1", 1);
  cap_empty(c);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "ack", "msg_id", "m1", "from",
          "alice");
  assert_int_equal(held_for(f, "carol"), 0);
  /* bob never acked: written when his session ended, delivered again */
  b = fx_user(f, "bob");
  expect_deliver(b, "m1", 1);
  cap_empty(b);
}

/* (a') the same, carol at login before the restart: she gets it once. */
static void test_kept_copy_delivered_at_login(void **state) {
  fx_t *f = *state;
  cap_t *a, *b;
  trio(f, &a, &b);
  chat__store_fail_next(f->store, -EIO);
  fx_send(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", "s1",
          "group", "g", "msg_id", "m2", "body", "hello group");
  expect_counts(a, "s1", "m2", 1, 1);
  cap_empty(a);
  expect_deliver(b, "m2", 0);
  cap_t *c = fx_user(f, "carol");
  expect_deliver(c, "m2", 1);
  cap_empty(c);
}

/* (b) nobody was pushed it: not accepted. A repeat that arrives while the
 * failing commit is in flight is a fresh send. */
static void test_nobody_pushed_internal(void **state) {
  fx_t *f = *state;
  cap_t *a, *b;
  trio(f, &a, &b);
  fx_disconnect(f, b);
  json_array_clear(a->frames);
  chat__store_fail_next(f->store, -EROFS);
  feed_gsend(f, a, "s1", "m3");
  uv_run(&f->loop, UV_RUN_NOWAIT); /* its batch goes to the pool */
  fx_feed(f, a, "{s:s,s:s,s:s}", "type", "group_create", "id", "c1", "group",
          "other"); /* a change for the next batch */
  feed_gsend(f, a, "s2", "m3");
  fx_run(f);
  expect_internal(a, "s1");
  /* s2 is judged after s1 failed: nothing of m3 is held, so it is stored
   * afresh (its commit comes back before c1's read of the store) */
  expect_counts(a, "s2", "m3", 0, 2);
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "c1");
  json_decref(ok);
  cap_empty(a);
  assert_int_equal(held_for(f, "bob"), 1);
  assert_int_equal(held_for(f, "carol"), 1);
  fx_restart(f);
  b = fx_user(f, "bob");
  expect_deliver(b, "m3", 1);
  cap_empty(b);
  cap_t *c = fx_user(f, "carol");
  expect_deliver(c, "m3", 1);
  cap_empty(c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_pushed_copy_keeps_message),
      T(test_kept_copy_delivered_at_login),
      T(test_nobody_pushed_internal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
