/* test_commit_fault.c -- what a failed commit does to the server core
 * (store_retry.c and the committer's fail hook): a stored send is answered
 * internal and forgotten; acks are committed even when their batch fails for
 * space; every other change memory still holds is retried until it is on
 * disk, so a restart finds it. Faults come from chat__store_fail_next(). */
#include "fixture.h"

static void send_to(fx_t *f, cap_t *c, const char *to, const char *msg_id) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s}", "type", "send", "to", to, "msg_id",
          msg_id, "body", "x");
}

static void test_readonly_send_internal_nothing_lost(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  send_to(f, a, "bob", "ok1");
  cap_expect_drop(a, "ok", NULL);
  chat__store_fail_next(f->store, -EROFS);
  send_to(f, a, "bob", "lost");
  json_t *e = cap_expect(a, "error", "internal");
  json_decref(e);
  chat__user_t *bob = chat__registry_find(&f->srv.reg, "bob");
  assert_int_equal(bob->held, 1); /* ok1 only: the failed one is not held */
  assert_int_equal(f->srv.mb.count, 0); /* and memory holds neither */
  /* the same msg_id again is a new attempt, and now it works */
  send_to(f, a, "bob", "lost");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "status"), "stored");
  json_decref(ok);
  chat__committer_stats_t st;
  chat__committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  fx_restart(f);
  b = fx_user(f, "bob");
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "ok1");
  json_decref(d);
  d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "lost");
  json_decref(d);
  cap_empty(b);
}

/* A batch of acks that fails for space: the deletes go through alone. */
static void test_acks_committed_despite_enospc(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  send_to(f, a, "bob", "m1");
  send_to(f, a, "bob", "m2");
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(a, "ok", NULL);
  b = fx_user(f, "bob");
  cap_expect_drop(b, "deliver", NULL);
  cap_expect_drop(b, "deliver", NULL);
  chat__store_fail_next(f->store, -ENOSPC);
  fx_send(f, b, "{s:s,s:s,s:s}", "type", "ack", "msg_id", "m1", "from",
          "alice");
  chat__committer_stats_t st;
  chat__committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  fx_restart(f);
  b = fx_user(f, "bob");
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "m2"); /* m1 stays acked */
  json_decref(d);
  cap_empty(b);
}

/* Contact changes in a failed batch are committed by a later one. */
static void test_contact_change_retried(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  chat__store_fail_next(f->store, -EIO);
  fx_contacts(f, a, "alice", b, "bob");
  chat__committer_stats_t st;
  chat__committer_stats(f->committer, &st);
  assert_true(st.failed_batches >= 1);
  assert_int_equal(chat__committer_pending(f->committer), 0);
  fx_restart(f);
  a = fx_user(f, "alice");
  fx_send(f, a, "{s:s}", "type", "contacts");
  json_t *ok = cap_expect(a, "ok", NULL);
  json_t *list = json_object_get(ok, "contacts");
  assert_int_equal(json_array_size(list), 1);
  assert_string_equal(jstr(json_array_get(list, 0), "user"), "bob");
  json_decref(ok);
}

/* Relayed, unacked messages are written when the session ends; if that
 * write fails it is retried, so they survive a restart. */
static void test_unacked_write_retried(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  send_to(f, a, "bob", "r1");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "status"), "relayed");
  json_decref(ok);
  cap_expect_drop(b, "deliver", NULL);
  chat__store_fail_next(f->store, -EIO);
  fx_disconnect(f, b);
  chat__committer_stats_t st;
  chat__committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  assert_int_equal(chat__committer_pending(f->committer), 0);
  fx_restart(f);
  b = fx_user(f, "bob");
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "r1");
  assert_true(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
}

/* The hook judges each failed op against memory: only what memory still
 * holds is added again. */
static void test_retry_judged_against_memory(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  send_to(f, a, "bob", "held");
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(b, "deliver", NULL);
  chat__user_t *bob = chat__registry_find(&f->srv.reg, "bob");
  chat__user_t *alice = chat__registry_find(&f->srv.reg, "alice");
  chat__held_t *h = chat__mailbox_find(&f->srv.mb, bob, alice, "held");
  assert_non_null(h);
  chat__store_op_t ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].kind = CHAT_STORE_PUT_MSG; /* written from memory: again */
  ops[0].msg.seq = h->seq;
  ops[0].msg.to = "bob";
  ops[0].msg.from = "alice";
  ops[0].msg.msg_id = "held";
  ops[0].msg.body = "x";
  ops[0].msg.body_len = 1;
  ops[1] = ops[0]; /* a stored send still waits for it: its business */
  ops[1].msg.msg_id = "waited";
  ops[1].msg.seq = h->seq + 100;
  ops[2].kind = CHAT_STORE_ADD_CONTACT; /* what the core wanted: again */
  ops[2].a = "alice";
  ops[2].b = "bob";
  ops[3].kind = CHAT_STORE_DEL_CONTACT; /* in order after it: again */
  ops[3].a = "alice";
  ops[3].b = "bob";
  ops[4].kind = CHAT_STORE_ADD_USER; /* answered internal: never again */
  ops[4].a = "zed";
  ops[4].b = "hash";
  ops[5].kind = CHAT_STORE_DEL_MSG; /* always again */
  ops[5].msg.to = "bob";
  ops[5].msg.seq = 77;
  uint64_t waited = h->seq + 100;
  chat__srv_await(&f->srv, &waited, &waited);
  assert_int_equal(chat__committer_pending(f->committer), 0);
  chat__srv_commit_failed(&f->srv, ops, 6, -EIO);
  assert_int_equal(chat__committer_pending(f->committer), 4);
  chat__srv_unawait(&f->srv, &waited);
  fx_run(f);
  assert_int_equal(chat__committer_pending(f->committer), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_readonly_send_internal_nothing_lost),
      T(test_acks_committed_despite_enospc),
      T(test_contact_change_retried),
      T(test_unacked_write_retried),
      T(test_retry_judged_against_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
