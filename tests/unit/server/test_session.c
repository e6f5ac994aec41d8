/* test_session.c -- sessions and presence: kicks, presence only to
 * contacts, requests and held messages at login, heartbeat sweep. */
#include "fixture.h"

static void test_kick(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b1 = fx_user(f, "bob");
  fx_contacts(f, a, "alice", b1, "bob");
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob", "msg_id",
          "k1", "body", "x");
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(b1, "deliver", NULL);
  cap_t *b2 = fx_connect(f);
  fx_send(f, b2, "{s:s,s:s,s:s,s:s}", "type", "login", "user", "bob",
          "password", "password1", "status", "busy");
  json_t *k = cap_expect(b1, "kicked", NULL);
  assert_string_equal(jstr(k, "reason"), "logged_in_elsewhere");
  json_decref(k);
  assert_true(b1->closed);
  cap_expect_drop(b2, "ok", NULL);
  cap_expect_drop(b2, "deliver", NULL); /* moved to the new session */
  json_t *p = cap_expect(a, "presence", NULL);
  assert_string_equal(jstr(p, "status"), "busy");
  json_decref(p);
  fx_disconnect(f, b1); /* the old connection closing is not an offline */
  cap_empty(a);
  assert_int_equal(f->srv.nlogged_in, 2);
}

static void test_presence_only_to_contacts(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  cap_t *x = fx_user(f, "xena");
  fx_contacts(f, a, "alice", b, "bob");
  fx_send(f, b, "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(b, "ok", NULL);
  json_t *p = cap_expect(a, "presence", NULL);
  assert_string_equal(jstr(p, "user"), "bob");
  assert_string_equal(jstr(p, "status"), "away");
  json_decref(p);
  fx_disconnect(f, b);
  p = cap_expect(a, "presence", NULL);
  assert_string_equal(jstr(p, "status"), "offline");
  json_decref(p);
  cap_empty(x);
}

static void test_login_order(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  fx_send(f, a, "{s:s,s:s}", "type", "contact_add", "user", "bob");
  cap_expect_drop(a, "ok", NULL);
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob", "msg_id",
          "h1", "body", "x");
  cap_expect_drop(a, "ok", NULL);
  cap_t *b2 = fx_connect(f);
  fx_send(f, b2, "{s:s,s:s,s:s}", "type", "login", "user", "bob",
          "password", "password1");
  json_t *ok = cap_expect(b2, "ok", NULL);
  assert_string_equal(jstr(ok, "user"), "bob");
  assert_string_equal(jstr(ok, "host"), "10.0.0.1");
  json_decref(ok);
  cap_expect_drop(b2, "contact_request", NULL);
  cap_expect_drop(b2, "deliver", NULL);
  cap_empty(b2);
}

static void test_heartbeat_sweep(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  uint64_t now = uv_now(&f->loop);
  a->s->last_read_ms = now + 100000; /* alice is active */
  b->s->last_read_ms = now;
  chat__srv_sweep(&f->srv, now + 89999);
  assert_false(b->closed);
  chat__srv_sweep(&f->srv, now + 90000 + 1000);
  assert_true(b->closed);
  assert_false(a->closed);
  json_t *p = cap_expect(a, "presence", NULL);
  assert_string_equal(jstr(p, "status"), "offline");
  json_decref(p);
}

static void test_logout(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  fx_send(f, a, "{s:s,s:i}", "type", "logout", "id", 9);
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_int_equal(json_integer_value(json_object_get(ok, "id")), 9);
  json_decref(ok);
  assert_true(a->closed);
  assert_int_equal(f->srv.nlogged_in, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_kick), T(test_presence_only_to_contacts), T(test_login_order),
      T(test_heartbeat_sweep), T(test_logout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
