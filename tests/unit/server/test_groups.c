/* test_groups.c -- PROTOCOL.md section 5 through the server core, at the
 * level of frames: membership (create, add, leave, members, groups). Only
 * frames, the store's public loader and the config are used, so the tests
 * hold whatever the server does inside. group_send fan-out is in
 * test_group_send.c. */
#include "group_fixture.h"

/* ---- membership ---------------------------------------------------------- */

static void test_create(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob");
  expect_groups(f, a, "");
  create_ok(f, a, "dev");
  expect_members(f, a, "dev", "alice:online"); /* the first member */
  req(f, a, "group_create", "dev");
  expect_err(a, "group_create", "group_exists");
  req(f, b, "group_create", "dev"); /* taken for everyone */
  expect_err(b, "group_create", "group_exists");
  expect_groups(f, b, "");
  const char *bad[] = {"Dev", "", "-dev", "d v", "dev/x",
                       "abcdefghijklmnopqrstuvwxyz0123456"}; /* 33 bytes */
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    req(f, a, "group_create", bad[i]);
    expect_err(a, "group_create", "bad_request");
  }
  fx_send(f, a, "{s:s,s:s}", "type", "group_create", "id", "nogroup");
  expect_err(a, "nogroup", "bad_request");
  fx_send(f, a, "{s:s,s:s,s:i}", "type", "group_create", "id", "num",
          "group", 7);
  expect_err(a, "num", "bad_request");
  create_ok(f, a, "abcdefghijklmnopqrstuvwxyz012345"); /* 32: fine */
  expect_groups(f, a, "abcdefghijklmnopqrstuvwxyz012345,dev");
  cap_empty(a);
  cap_empty(b);
}

static void test_add_errors(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  fx_contacts(f, b, "bob", c, "carol");
  create_ok(f, a, "g");
  add(f, b, "g", "carol"); /* bob is not a member */
  expect_err(b, "add", "not_member");
  add(f, a, "g", "carol"); /* carol is not alice's contact */
  expect_err(a, "add", "not_contact");
  add(f, a, "g", "nobody");
  expect_err(a, "add", "no_such_user");
  add(f, a, "nope", "bob");
  expect_err(a, "add", "no_such_group");
  add(f, a, "g", "Bad Name");
  expect_err(a, "add", "bad_request");
  cap_empty(b);
  cap_empty(c);
  expect_members(f, a, "g", "alice:online");
  /* a member who is not the owner adds his own contact */
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  add_ok(f, b, "g", "carol");
  expect_group_added(c, "g", "bob");
  cap_empty(a); /* only the added user hears of it */
  expect_members(f, c, "g", "alice:online,bob:online,carol:online");
}

static void test_readd_and_offline_add(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  fx_contacts(f, a, "alice", c, "carol");
  create_ok(f, a, "g");
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  add_ok(f, a, "g", "bob"); /* again: ok, no event */
  cap_empty(b);
  add_ok(f, a, "g", "alice"); /* oneself: already a member */
  cap_empty(a);
  expect_members(f, a, "g", "alice:online,bob:online");
  /* carol is offline when added: nothing is queued for her */
  fx_disconnect(f, c);
  expect_presence(a, "carol", "offline");
  add_ok(f, a, "g", "carol");
  cap_t *c2 = user(f, "carol");
  expect_presence(a, "carol", "online");
  cap_empty(c2);
  expect_groups(f, c2, "g"); /* she sees it in groups */
  cap_empty(b);
}

static void test_leave(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  create_ok(f, a, "g");
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  req(f, c, "group_leave", "g");
  expect_err(c, "group_leave", "not_member");
  req(f, c, "group_leave", "nope");
  expect_err(c, "group_leave", "no_such_group");
  req(f, c, "group_members", "g");
  expect_err(c, "group_members", "not_member");
  /* the owner leaves first: bob keeps the group */
  req(f, a, "group_leave", "g");
  json_decref(expect_ok(a, "group_leave"));
  expect_groups(f, a, "");
  req(f, a, "group_members", "g");
  expect_err(a, "group_members", "not_member");
  req(f, a, "group_leave", "g"); /* twice */
  expect_err(a, "group_leave", "not_member");
  expect_members(f, b, "g", "bob:online");
  req(f, c, "group_create", "g"); /* still taken */
  expect_err(c, "group_create", "group_exists");
  /* the last member leaves: the group ends and the name is free */
  req(f, b, "group_leave", "g");
  json_decref(expect_ok(b, "group_leave"));
  req(f, b, "group_members", "g");
  expect_err(b, "group_members", "no_such_group");
  create_ok(f, c, "g");
  expect_members(f, c, "g", "carol:online"); /* no old member came back */
  expect_groups(f, b, "");
  cap_empty(a);
  cap_empty(b);
}

static void test_leaving_stops_delivery(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  req(f, c, "group_leave", "g");
  json_decref(expect_ok(c, "group_leave"));
  gsend_ok(f, a, "g", "m1", 2, 0);
  expect_deliver(b, "g", "alice", "m1", "m1", 0);
  expect_deliver(d, "g", "alice", "m1", "m1", 0);
  cap_empty(c);
  gsend(f, c, "g", "m2", "let me in");
  expect_err(c, "m2", "not_member");
  cap_empty(a);
  cap_empty(b);
  /* an offline member who left gets nothing at login either */
  fx_disconnect(f, d);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, b, "g", "m3", 1, 1);
  expect_deliver(a, "g", "bob", "m3", "m3", 0);
  cap_t *d2 = user(f, "dave");
  expect_presence(a, "dave", "online");
  expect_deliver(d2, "g", "alice", "m1", "m1", 1); /* pushed, unacked */
  expect_deliver(d2, "g", "bob", "m3", "m3", 1);
  ack(f, d2, "alice", "m1");
  req(f, d2, "group_leave", "g");
  json_decref(expect_ok(d2, "group_leave"));
  fx_disconnect(f, d2);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, b, "g", "m4", 1, 0);
  expect_deliver(a, "g", "bob", "m4", "m4", 0);
  cap_t *d3 = user(f, "dave");
  expect_presence(a, "dave", "online");
  /* m3, sent while dave was a member, is held still; m4 never came */
  expect_deliver(d3, "g", "bob", "m3", "m3", 1);
  cap_empty(d3);
}

static void test_members_sorted_with_status(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice");
  const char *names[] = {"zed", "bob", "b.b", "b-b", "b0", "b_b", "carol"};
  cap_t *u[7];
  for (int i = 0; i < 7; i++) {
    u[i] = user(f, names[i]);
    fx_contacts(f, a, "alice", u[i], names[i]);
  }
  create_ok(f, a, "g");
  for (int i = 0; i < 7; i++) {
    add_ok(f, a, "g", names[i]);
    expect_group_added(u[i], "g", "alice");
  }
  fx_send(f, u[0], "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(u[0], "ok", NULL);
  expect_presence(a, "zed", "away");
  fx_send(f, u[1], "{s:s,s:s}", "type", "status", "status", "busy");
  cap_expect_drop(u[1], "ok", NULL);
  expect_presence(a, "bob", "busy");
  fx_disconnect(f, u[6]);
  expect_presence(a, "carol", "offline");
  const char *want = "alice:online,b-b:online,b.b:online,b0:online,"
                     "b_b:online,bob:busy,carol:offline,zed:away";
  expect_members(f, a, "g", want);
  expect_members(f, u[2], "g", want); /* any member may ask */
  cap_t *x = user(f, "xavier");
  req(f, x, "group_members", "g");
  expect_err(x, "group_members", "not_member");
  req(f, x, "group_members", "nope");
  expect_err(x, "group_members", "no_such_group");
}

static void test_groups_sorted(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  const char *names[] = {"ab", "a_b", "a0", "a.b", "a-b"};
  for (int i = 0; i < 5; i++)
    create_ok(f, b, names[i]);
  create_ok(f, a, "mine");
  add_ok(f, b, "a0", "alice");
  expect_group_added(a, "a0", "bob");
  add_ok(f, b, "ab", "alice");
  expect_group_added(a, "ab", "bob");
  expect_groups(f, b, "a-b,a.b,a0,a_b,ab");
  expect_groups(f, a, "a0,ab,mine");
  req(f, b, "group_leave", "a.b");
  json_decref(expect_ok(b, "group_leave"));
  expect_groups(f, b, "a-b,a0,a_b,ab");
}

static void test_membership_survives_restart(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  create_ok(f, a, "gone");
  req(f, a, "group_leave", "gone"); /* ends it */
  json_decref(expect_ok(a, "group_leave"));
  req(f, c, "group_leave", "g");
  json_decref(expect_ok(c, "group_leave"));
  fx_disconnect(f, d);
  gsend_ok(f, b, "g", "r1", 1, 1);
  fx_restart(f);
  cap_t *a2 = user(f, "alice");
  expect_deliver(a2, "g", "bob", "r1", "r1", 1); /* was pushed, unacked */
  expect_groups(f, a2, "g");
  expect_members(f, a2, "g", "alice:online,bob:offline,dave:offline");
  req(f, a2, "group_members", "gone");
  expect_err(a2, "group_members", "no_such_group");
  create_ok(f, a2, "gone");
  cap_t *d2 = user(f, "dave");
  expect_presence(a2, "dave", "online");
  expect_deliver(d2, "g", "bob", "r1", "r1", 1);
  cap_empty(d2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_create),
      T(test_add_errors),
      T(test_readd_and_offline_add),
      T(test_leave),
      T(test_leaving_stops_delivery),
      T(test_members_sorted_with_status),
      T(test_groups_sorted),
      T(test_membership_survives_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
