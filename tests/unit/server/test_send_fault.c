/* test_send_fault.c -- a 1:1 send whose PUT fails to commit.
 *
 * Not pushed to anyone: nothing was accepted, the sender (and a repeat, on
 * whatever batch it waited) is told internal and nothing stays held. Pushed
 * meanwhile (the recipient logged in before the failed commit came back):
 * it was accepted and reached the recipient, so the sender gets ok relayed
 * and the message stays held, unwritten, until an ack or the session's end.
 *
 * Hashes and commits run on threads of their own, so where a login must be
 * verified before a commit comes back, a gate holds the committer's store
 * thread until the login's ok has arrived. */
#include "committer_int.h"
#include "fixture.h"
#include "gate.h"

static int has_frame(void *c) {
  return json_array_size(((cap_t *)c)->frames) > 0;
}

/* Feeds a login on c and a send from a to bob whose commit fails, and runs
 * the loop until the login is answered while the commit is held back. */
static void login_before_failed_commit(fx_t *f, cap_t *c, cap_t *a,
                                       const char *msg_id) {
  gate_t g;
  gate_hold(&g, chat__committer_worker(f->committer));
  fx_feed(f, c, "{s:s,s:s,s:s,s:s}", "type", "login", "id", "l1", "user",
          "bob", "password", "password1");
  chat_store_fail_next(f->store, -EROFS);
  fx_feed(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "id", "s1", "to",
          "bob", "msg_id", msg_id, "body", "hi bob");
  int r = run_until(&f->loop, has_frame, c, GATE_DEADLINE_MS);
  size_t held_back = chat_committer_pending(f->committer);
  gate_open(&g); /* before any assert, or a failure leaves it shut */
  fx_run(f);
  assert_true(g.done);
  gate_destroy(&g);
  assert_int_equal(r, 0);
  assert_true(held_back >= 1); /* the PUT (and an ack's DEL) waited */
}

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

static chat_held_t *held(fx_t *f, const char *msg_id) {
  return chat_mailbox_find(&f->srv.mb, chat_registry_find(&f->srv.reg, "bob"),
                           chat_registry_find(&f->srv.reg, "alice"), msg_id);
}

/* (c) bob logs in before the failed commit of alice's stored send returns. */
static void test_pushed_before_failure_relayed(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  cap_t *b2 = fx_connect(f);
  /* bob is still offline when the send comes: stored */
  login_before_failed_commit(f, b2, a, "m1");
  json_t *ok = cap_expect(b2, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "l1");
  json_decref(ok);
  expect_deliver(b2, "m1", 1);
  cap_empty(b2);
  expect_status(a, "s1", "relayed");
  cap_empty(a);
  chat_committer_stats_t st;
  chat_committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  assert_int_equal(chat_committer_pending(f->committer), 0);
  chat_held_t *h = held(f, "m1");
  assert_non_null(h);
  assert_int_equal(h->state, CHAT_HELD_PUSHED);
  assert_false(h->written); /* the failed PUT is not on disk */
  /* a repeat reports it as it is now */
  feed_send(f, a, "s2", "m1");
  fx_run(f);
  expect_status(a, "s2", "relayed");
  cap_empty(b2);
  /* bob leaves without acking: written then, delivered again after a
   * restart */
  fx_restart(f);
  b = fx_user(f, "bob");
  expect_deliver(b, "m1", 1);
  cap_empty(b);
  fx_send(f, b, "{s:s,s:s,s:s}", "type", "ack", "msg_id", "m1", "from",
          "alice");
  assert_null(held(f, "m1"));
  fx_restart(f);
  b = fx_user(f, "bob");
  cap_empty(b);
}

/* (c') the same, and bob acks it at once, before the failure returns:
 * alice gets her receipt and ok relayed; nothing is held or stored. bob's
 * sink acks every deliver as it is sent. */
static fx_t *g_fx;
static cap_t *g_acker;

static int ack_send_line(void *ctx, const char *line, size_t len) {
  int r = cap_send_line(ctx, line, len);
  json_t *d = json_loadb(line, len, 0, NULL);
  if (ctx == g_acker && strcmp(jstr(d, "type"), "deliver") == 0) {
    json_t *ack = json_pack("{s:s,s:s,s:s}", "type", "ack", "msg_id",
                            jstr(d, "msg_id"), "from", jstr(d, "from"));
    chat_srv_on_frame(&g_fx->srv, g_acker->s, ack);
    json_decref(ack);
  }
  json_decref(d);
  return r;
}

static const chat_sink_t ack_sink = {cap_send,  ack_send_line, cap_close,
                                     cap_pause, cap_resume,    cap_release};

static void test_acked_before_failure_relayed(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  b = calloc(1, sizeof(*b));
  assert_non_null(b);
  b->frames = json_array();
  b->s = chat_srv_session_new(&f->srv, &ack_sink, b, "10.0.0.2");
  assert_non_null(b->s);
  f->caps[f->ncaps++] = b;
  cap_expect_drop(b, "welcome", NULL);
  g_fx = f;
  g_acker = b;
  login_before_failed_commit(f, b, a, "m2");
  cap_expect_drop(b, "ok", NULL);
  expect_deliver(b, "m2", 1);
  cap_empty(b);
  json_t *rc = cap_expect(a, "receipt", NULL);
  assert_string_equal(jstr(rc, "msg_id"), "m2");
  json_decref(rc);
  expect_status(a, "s1", "relayed");
  cap_empty(a);
  assert_null(held(f, "m2"));
  chat_committer_stats_t st;
  chat_committer_stats(f->committer, &st);
  assert_int_equal(st.failed_batches, 1);
  g_acker = NULL;
  fx_restart(f);
  b = fx_user(f, "bob");
  cap_empty(b);
}

/* (d) plain failure: internal, nothing held; a repeat waiting on a later
 * batch is told internal too (that batch commits, but the message went). */
static void test_plain_failure_internal(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  chat_store_fail_next(f->store, -EROFS);
  feed_send(f, a, "s1", "m3");
  uv_run(&f->loop, UV_RUN_NOWAIT); /* its batch goes to the pool */
  fx_feed(f, a, "{s:s,s:s,s:s}", "type", "group_create", "id", "c1", "group",
          "other"); /* a change for the next batch */
  feed_send(f, a, "s2", "m3");
  fx_run(f);
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "c1");
  json_decref(ok);
  json_t *e = cap_expect(a, "error", "internal");
  assert_string_equal(jstr(e, "id"), "s1");
  json_decref(e);
  e = cap_expect(a, "error", "internal");
  assert_string_equal(jstr(e, "id"), "s2");
  json_decref(e);
  cap_empty(a);
  assert_null(held(f, "m3"));
  assert_int_equal(chat_registry_find(&f->srv.reg, "bob")->mb_count, 0);
  /* a retry is a fresh send */
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
      T(test_pushed_before_failure_relayed),
      T(test_acked_before_failure_relayed),
      T(test_plain_failure_internal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
