/* test_group_send.c -- PROTOCOL.md section 5 through the server core, at
 * the level of frames: group_send fan-out (counts, one identical deliver per
 * online member, the ok only after the commit of the stored copies, delivery
 * at login in order, acks, no receipts, repeats, the offline quota). Only
 * frames, the store's public loader and the config are used, so the tests
 * hold whatever the server does inside. Membership is in test_groups.c. */
#include "group_fixture.h"

/* ---- group_send ---------------------------------------------------------- */

/* bob (not the owner) writes to alice, carol (away), dave, with erin and
 * frank offline: relayed 3, stored 2, the ok only after the stored copies
 * are committed, one identical line for the three online members. */
static void test_fanout(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  cap_t *e = user(f, "erin"), *fr = user(f, "frank");
  fx_contacts(f, a, "alice", e, "erin");
  fx_contacts(f, a, "alice", fr, "frank");
  add_ok(f, a, "g", "erin");
  add_ok(f, a, "g", "frank");
  expect_group_added(e, "g", "alice");
  expect_group_added(fr, "g", "alice");
  fx_disconnect(f, e);
  fx_disconnect(f, fr);
  expect_presence(a, "erin", "offline");
  expect_presence(a, "frank", "offline");
  fx_send(f, c, "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(c, "ok", NULL);
  expect_presence(a, "carol", "away");

  json_t *obj = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id",
                          "q1", "group", "g", "msg_id", "f1", "body",
                          "standup \"now\" \xc3\xa9");
  chat__srv_on_frame(&f->srv, b->s, obj);
  json_decref(obj);
  cap_empty(b); /* nothing committed yet: no ok */
  expect_rows(f, "f1", "");
  for (int i = 0; i < 10000 && json_array_size(b->frames) == 0; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  expect_rows(f, "f1", "erin,frank"); /* durable when the ok comes */
  json_t *ok = expect_ok(b, "q1");
  assert_string_equal(jstr(ok, "msg_id"), "f1");
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 3);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), 2);
  assert_null(json_object_get(ok, "over_quota"));
  json_decref(ok);
  fx_run(f);
  cap_empty(b); /* no deliver of its own message */

  cap_t *on[] = {a, c, d};
  int64_t ts = 0;
  for (int i = 0; i < 3; i++) {
    int64_t t = expect_deliver(on[i], "g", "bob", "f1",
                               "standup \"now\" \xc3\xa9", 0);
    assert_true(ts == 0 || t == ts);
    ts = t;
    assert_string_equal(raw_last(on[i]), raw_last(a));
    cap_empty(on[i]); /* exactly one */
  }
  cap_t *e2 = user(f, "erin");
  expect_presence(a, "erin", "online");
  int64_t t = expect_deliver(e2, "g", "bob", "f1", "standup \"now\" \xc3\xa9",
                             1);
  assert_true(t == ts);
  cap_empty(e2);
  ack(f, e2, "bob", "f1");
  expect_rows(f, "f1", "frank");
  cap_empty(b); /* no receipt */
}

/* Only relayed copies: the ok needs no disk, and nothing is written. */
static void test_fanout_all_online(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  gsend_ok(f, a, "g", "o1", 3, 0);
  expect_rows(f, "o1", "");
  cap_t *on[] = {b, c, d};
  for (int i = 0; i < 3; i++) {
    expect_deliver(on[i], "g", "alice", "o1", "o1", 0);
    assert_string_equal(raw_last(on[i]), raw_last(b));
    cap_empty(on[i]);
  }
  cap_empty(a);
  /* a group of one: nobody to tell */
  create_ok(f, a, "solo");
  gsend_ok(f, a, "solo", "o2", 0, 0);
  cap_empty(a);
  cap_empty(b);
}

/* Offline members get group messages in order, interleaved with 1:1
 * messages from the same sender; acks drop them; no receipts for groups. */
static void test_offline_order_and_acks(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, b);
  expect_presence(a, "bob", "offline");
  const char *ids[] = {"g1", "m1", "g2", "m2", "g3"};
  for (int i = 0; i < 5; i++) {
    if (ids[i][0] == 'g') {
      gsend_ok(f, a, "g", ids[i], 2, 1);
    } else {
      fx_send(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "id", ids[i],
              "to", "bob", "msg_id", ids[i], "body", ids[i]);
      json_t *ok = expect_ok(a, ids[i]);
      assert_string_equal(jstr(ok, "status"), "stored");
      json_decref(ok);
    }
  }
  for (int i = 0; i < 5; i += 2) {
    expect_deliver(c, "g", "alice", ids[i], ids[i], 0);
    expect_deliver(d, "g", "alice", ids[i], ids[i], 0);
  }
  cap_t *b2 = user(f, "bob");
  expect_presence(a, "bob", "online");
  for (int i = 0; i < 5; i++)
    expect_deliver(b2, ids[i][0] == 'g' ? "g" : NULL, "alice", ids[i],
                   ids[i], 1);
  cap_empty(b2);
  for (int i = 0; i < 5; i++)
    ack(f, b2, "alice", ids[i]);
  for (int i = 1; i < 5; i += 2) {
    json_t *r = cap_expect(a, "receipt", NULL);
    assert_string_equal(jstr(r, "msg_id"), ids[i]);
    json_decref(r);
  }
  cap_empty(a); /* none for g1..g3 */
  ack(f, c, "alice", "g1"); /* an online member's ack: no receipt either */
  cap_empty(a);
  /* acked ones are gone; carol's unacked g2, g3 come again */
  fx_disconnect(f, b2);
  fx_disconnect(f, c);
  expect_presence(a, "bob", "offline");
  expect_presence(a, "carol", "offline");
  fx_restart(f);
  cap_t *b3 = user(f, "bob");
  cap_empty(b3);
  cap_t *c2 = user(f, "carol");
  expect_deliver(c2, "g", "alice", "g2", "g2", 1);
  expect_deliver(c2, "g", "alice", "g3", "g3", 1);
  cap_empty(c2);
}

static void test_repeat_not_delivered_twice(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, d);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, a, "g", "r1", 2, 1);
  /* the same msg_id again: not stored or pushed again; the counts are of
   * the copies in flight (dave's is in the store only) */
  gsend_ok(f, a, "g", "r1", 2, 0);
  expect_deliver(b, "g", "alice", "r1", "r1", 0);
  expect_deliver(c, "g", "alice", "r1", "r1", 0);
  cap_empty(b);
  cap_empty(c);
  expect_rows(f, "r1", "dave");
  /* bob acked: the repeat reports what is still held */
  ack(f, b, "alice", "r1");
  gsend_ok(f, a, "g", "r1", 1, 0);
  cap_empty(b);
  cap_empty(c);
  cap_t *d2 = user(f, "dave");
  expect_presence(a, "dave", "online");
  expect_deliver(d2, "g", "alice", "r1", "r1", 1);
  cap_empty(d2);
  /* another sender may use the same msg_id: it is unique per sender */
  gsend_ok(f, b, "g", "r1", 3, 0);
  expect_deliver(a, "g", "bob", "r1", "r1", 0);
  expect_deliver(c, "g", "bob", "r1", "r1", 0);
  expect_deliver(d2, "g", "bob", "r1", "r1", 0);
  cap_empty(a);
}

static void test_send_not_member(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  cap_t *x = user(f, "xavier");
  gsend(f, x, "g", "n1", "hello?");
  expect_err(x, "n1", "not_member");
  gsend(f, x, "nope", "n2", "hello?");
  expect_err(x, "n2", "no_such_group");
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "group_send", "id", "n3",
          "group", "g", "msg_id", "n3"); /* no body */
  expect_err(a, "n3", "bad_request");
  fx_send(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", "n4",
          "group", "g", "msg_id", "bad id!", "body", "x");
  expect_err(a, "n4", "bad_request");
  cap_empty(b);
  cap_empty(c);
  cap_empty(d);
  expect_rows(f, "n1", "");
}

static void test_over_quota(void **state) {
  fx_t *f = *state;
  f->srv.cfg.offline_quota = 2;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, c);
  fx_disconnect(f, d);
  expect_presence(a, "carol", "offline");
  expect_presence(a, "dave", "offline");
  for (int i = 0; i < 2; i++) { /* fill carol's mailbox */
    char id[8];
    snprintf(id, sizeof(id), "c%d", i);
    fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "carol",
            "msg_id", id, "body", id);
    cap_expect_drop(a, "ok", NULL);
  }
  gsend(f, a, "g", "q1", "q1");
  json_t *ok = expect_ok(a, "q1");
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 1);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), 1);
  assert_int_equal(json_integer_value(json_object_get(ok, "over_quota")), 1);
  json_decref(ok);
  expect_deliver(b, "g", "alice", "q1", "q1", 0);
  expect_rows(f, "q1", "dave");
  cap_t *c2 = user(f, "carol");
  expect_presence(a, "carol", "online");
  expect_deliver(c2, NULL, "alice", "c0", "c0", 1);
  expect_deliver(c2, NULL, "alice", "c1", "c1", 1);
  cap_empty(c2); /* q1 skipped for her */
}

/* A member whose output overflows on the shared line: its session ends, its
 * copy counts as stored and is kept, and members after it still get the
 * very same bytes. */
static void test_member_overflow_mid_fanout(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  b->limit = b->bytes + 10;
  gsend(f, a, "g", "v1", "v1");
  assert_true(b->closed);
  expect_presence(a, "bob", "offline"); /* during the fan-out */
  expect_sent(a, "v1", 2, 1);
  expect_deliver(c, "g", "alice", "v1", "v1", 0);
  expect_deliver(d, "g", "alice", "v1", "v1", 0);
  assert_string_equal(raw_last(c), raw_last(d));
  fx_disconnect(f, b);
  expect_rows(f, "v1", "bob");
  cap_t *b2 = user(f, "bob");
  expect_presence(a, "bob", "online");
  expect_deliver(b2, "g", "alice", "v1", "v1", 1);
}

/* The ten-member shape of scenario 16: two offline, then one online member
 * leaves, then an offline one. */
static void test_ten_members(void **state) {
  fx_t *f = *state;
  const char *n[] = {"alice", "bob",   "carol", "dave", "erin",
                     "frank", "grace", "heidi", "ivan", "judy"};
  cap_t *u[10];
  for (int i = 0; i < 10; i++)
    u[i] = user(f, n[i]);
  for (int i = 1; i < 10; i++)
    fx_contacts(f, u[0], n[0], u[i], n[i]);
  create_ok(f, u[0], "dev");
  for (int i = 1; i < 10; i++) {
    add_ok(f, u[0], "dev", n[i]);
    expect_group_added(u[i], "dev", "alice");
  }
  fx_disconnect(f, u[8]);
  fx_disconnect(f, u[9]);
  expect_presence(u[0], "ivan", "offline");
  expect_presence(u[0], "judy", "offline");
  gsend_ok(f, u[0], "dev", "t1", 7, 2);
  for (int i = 1; i < 8; i++)
    expect_deliver(u[i], "dev", "alice", "t1", "t1", 0);
  expect_rows(f, "t1", "ivan,judy");
  /* heidi (online) leaves */
  req(f, u[7], "group_leave", "dev");
  json_decref(expect_ok(u[7], "group_leave"));
  gsend_ok(f, u[1], "dev", "t2", 6, 2); /* bob: alice + 5 online */
  expect_deliver(u[0], "dev", "bob", "t2", "t2", 0);
  for (int i = 2; i < 7; i++)
    expect_deliver(u[i], "dev", "bob", "t2", "t2", 0);
  cap_empty(u[7]);
  /* ivan comes back, reads, leaves and goes */
  cap_t *ivan = user(f, "ivan");
  expect_presence(u[0], "ivan", "online");
  expect_deliver(ivan, "dev", "alice", "t1", "t1", 1);
  expect_deliver(ivan, "dev", "bob", "t2", "t2", 1);
  ack(f, ivan, "alice", "t1");
  ack(f, ivan, "bob", "t2");
  req(f, ivan, "group_leave", "dev");
  json_decref(expect_ok(ivan, "group_leave"));
  fx_disconnect(f, ivan);
  expect_presence(u[0], "ivan", "offline");
  gsend_ok(f, u[0], "dev", "t3", 6, 1);
  expect_rows(f, "t3", "judy");
  expect_members(f, u[0], "dev",
                 "alice:online,bob:online,carol:online,dave:online,"
                 "erin:online,frank:online,grace:online,judy:offline");
  cap_t *judy = user(f, "judy");
  expect_presence(u[0], "judy", "online");
  expect_deliver(judy, "dev", "alice", "t1", "t1", 1);
  expect_deliver(judy, "dev", "bob", "t2", "t2", 1);
  expect_deliver(judy, "dev", "alice", "t3", "t3", 1);
  cap_empty(judy);
  cap_t *ivan2 = user(f, "ivan");
  expect_presence(u[0], "ivan", "online");
  cap_empty(ivan2);
  cap_empty(u[7]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_fanout),
      T(test_fanout_all_online),
      T(test_offline_order_and_acks),
      T(test_repeat_not_delivered_twice),
      T(test_send_not_member),
      T(test_over_quota),
      T(test_member_overflow_mid_fanout),
      T(test_ten_members),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
