/* test_quota.c -- the offline quota: messages held per recipient are
 * counted (stored, waiting and pushed alike, also after a restart); beyond
 * the quota a send is refused with rate_limited and "reason":
 * "offline_quota", and group_send reports the members it skipped. */
#include "fixture.h"

static int setup(void **state) {
  fx_t *f = fx_new();
  f->srv.cfg.offline_quota = 3;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_free(*state);
  return 0;
}

static void send_to(fx_t *f, cap_t *c, const char *to, const char *msg_id) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "to", to, "msg_id",
          msg_id, "body", "x", "id", msg_id);
}

static void expect_quota(cap_t *c, const char *id) {
  json_t *e = cap_expect(c, "error", "rate_limited");
  assert_string_equal(jstr(e, "reason"), "offline_quota");
  assert_string_equal(jstr(e, "id"), id);
  assert_non_null(strstr(jstr(e, "message"), "full"));
  json_decref(e);
}

static void test_fourth_refused_then_free_after_ack(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  send_to(f, a, "bob", "m1");
  send_to(f, a, "bob", "m2");
  send_to(f, a, "bob", "m3");
  for (int i = 0; i < 3; i++)
    cap_expect_drop(a, "ok", NULL);
  send_to(f, a, "bob", "m4");
  expect_quota(a, "m4");
  chat__user_t *bob = chat__registry_find(&f->srv.reg, "bob");
  assert_int_equal(bob->held, 3);
  /* a refusal is not a protocol error: many of them do not close */
  for (int i = 0; i < 12; i++) {
    send_to(f, a, "bob", "again");
    expect_quota(a, "again");
  }
  assert_false(a->closed);
  /* the count survives a restart (read from the store with bob) */
  fx_restart(f);
  f->srv.cfg.offline_quota = 3; /* the restart took the defaults */
  assert_null(chat__registry_find(&f->srv.reg, "bob")); /* not loaded yet */
  a = fx_user(f, "alice");
  send_to(f, a, "bob", "m5");
  expect_quota(a, "m5");
  bob = chat__registry_find(&f->srv.reg, "bob");
  assert_int_equal(bob->held, 3);
  cap_t *b2 = fx_user(f, "bob");
  for (int i = 1; i <= 3; i++)
    cap_expect_drop(b2, "deliver", NULL);
  fx_send(f, b2, "{s:s,s:s,s:s}", "type", "ack", "msg_id", "m1", "from",
          "alice");
  assert_int_equal(bob->held, 2);
  cap_expect_drop(a, "receipt", NULL);
  send_to(f, a, "bob", "m6");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "status"), "relayed");
  json_decref(ok);
}

/* A logged-in recipient that does not ack fills its quota too. */
static void test_pushed_unacked_count(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  cap_t *a = fx_user(f, "alice");
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "p%d", i);
    send_to(f, a, "bob", id);
    cap_expect_drop(a, "ok", NULL);
    cap_expect_drop(b, "deliver", NULL);
  }
  send_to(f, a, "bob", "p3");
  expect_quota(a, "p3");
  cap_empty(b); /* never pushed */
}

static void test_zero_is_unlimited(void **state) {
  fx_t *f = *state;
  f->srv.cfg.offline_quota = 0;
  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  cap_t *a = fx_user(f, "alice");
  for (int i = 0; i < 50; i++) {
    char id[8];
    snprintf(id, sizeof(id), "z%d", i);
    send_to(f, a, "bob", id);
    cap_expect_drop(a, "ok", NULL);
  }
}

static void test_group_send_over_quota(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob"),
        *c = fx_user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  fx_contacts(f, a, "alice", c, "carol");
  fx_send(f, a, "{s:s,s:s}", "type", "group_create", "group", "g");
  cap_expect_drop(a, "ok", NULL);
  fx_send(f, a, "{s:s,s:s,s:s}", "type", "group_add", "group", "g", "user",
          "bob");
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(b, "group_added", NULL);
  fx_send(f, a, "{s:s,s:s,s:s}", "type", "group_add", "group", "g", "user",
          "carol");
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(c, "group_added", NULL);
  fx_disconnect(f, b);
  cap_expect_drop(a, "presence", NULL); /* bob went offline */
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "b%d", i);
    send_to(f, a, "bob", id);
    cap_expect_drop(a, "ok", NULL);
  }
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "group_send", "group", "g",
          "msg_id", "g1", "body", "hi");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 1);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), 0);
  assert_int_equal(json_integer_value(json_object_get(ok, "over_quota")), 1);
  json_decref(ok);
  cap_expect_drop(c, "deliver", NULL);
  /* bob back, reading: no one is skipped, and the field is absent */
  cap_t *b2 = fx_user(f, "bob");
  cap_expect_drop(a, "presence", NULL);
  for (int i = 0; i < 3; i++) {
    json_t *d = cap_expect(b2, "deliver", NULL);
    fx_send(f, b2, "{s:s,s:s,s:s}", "type", "ack", "msg_id",
            jstr(d, "msg_id"), "from", "alice");
    json_decref(d);
    cap_expect_drop(a, "receipt", NULL);
  }
  fx_send(f, c, "{s:s,s:s,s:s,s:s}", "type", "group_send", "group", "g",
          "msg_id", "g2", "body", "hi");
  ok = cap_expect(c, "ok", NULL);
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 2);
  assert_null(json_object_get(ok, "over_quota"));
  json_decref(ok);
  cap_expect_drop(a, "deliver", NULL);
  cap_expect_drop(b2, "deliver", NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_fourth_refused_then_free_after_ack),
      T(test_pushed_unacked_count),
      T(test_zero_is_unlimited),
      T(test_group_send_over_quota),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
