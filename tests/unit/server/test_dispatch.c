/* test_dispatch.c -- the order of checks and every error code of PROTOCOL.md
 * sections 2-4 that the server answers, driven without sockets. */
#include "fixture.h"

static void test_state_checks(void **state) {
  fx_t *f = *state;
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:i}", "type", "contacts", "id", 1);
  json_t *e = cap_expect(c, "error", "not_authenticated");
  assert_int_equal(json_integer_value(json_object_get(e, "id")), 1);
  json_decref(e);
  fx_send(f, c, "{s:s,s:s}", "type", "ping", "id", "p");
  e = cap_expect(c, "pong", NULL);
  assert_string_equal(jstr(e, "id"), "p");
  json_decref(e);
  /* fields before state: a send without fields is bad_request */
  fx_send(f, c, "{s:s}", "type", "send");
  cap_expect_drop(c, "error", "bad_request");
  /* type before fields */
  fx_send(f, c, "{s:s,s:s}", "type", "nope", "id", "x");
  e = cap_expect(c, "error", "unknown_type");
  assert_string_equal(jstr(e, "id"), "x");
  json_decref(e);
  /* server-to-client types are unknown here */
  fx_send(f, c, "{s:s}", "type", "welcome");
  cap_expect_drop(c, "error", "unknown_type");
  cap_t *u = fx_user(f, "alice");
  fx_send(f, u, "{s:s,s:s,s:s}", "type", "login", "user", "alice",
          "password", "password1");
  cap_expect_drop(u, "error", "already_authenticated");
  fx_send(f, u, "{s:s,s:s,s:s}", "type", "register", "user", "other",
          "password", "password1");
  cap_expect_drop(u, "error", "already_authenticated");
  cap_empty(c);
}

static void test_tenth_protocol_error_closes(void **state) {
  fx_t *f = *state;
  cap_t *c = fx_connect(f);
  chat_error_t err = {.code = CHAT_E_BAD_JSON, .message = "bad"};
  for (int i = 0; i < 9; i++) {
    chat__srv_on_bad_frame(&f->srv, c->s, &err);
    cap_expect_drop(c, "error", "bad_json");
  }
  assert_false(c->closed);
  fx_send(f, c, "{s:s}", "type", "status"); /* not_authenticated counts */
  cap_expect_drop(c, "error", NULL);
  assert_true(c->closed);
  /* nothing more is handled */
  fx_send(f, c, "{s:s}", "type", "ping");
  cap_empty(c);
}

static void test_frame_too_large_closes(void **state) {
  fx_t *f = *state;
  cap_t *c = fx_connect(f);
  chat_error_t err = {.code = CHAT_E_FRAME_TOO_LARGE, .message = "big"};
  chat__srv_on_bad_frame(&f->srv, c->s, &err);
  cap_expect_drop(c, "error", "frame_too_large");
  assert_true(c->closed);
}

static void test_auth_failures(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  (void)a;
  cap_t *c = fx_connect(f);
  const char *cases[][2] = {{"alice", "wrongpass"},
                            {"nobody", "password1"},
                            {"NOT VALID", "password1"},
                            {"alice", "short"}};
  for (int i = 0; i < 4; i++) {
    fx_send(f, c, "{s:s,s:s,s:s}", "type", "login", "user", cases[i][0],
            "password", cases[i][1]);
    cap_expect_drop(c, "error", "auth_failed");
    assert_false(c->paused); /* resumed after the hash */
  }
  assert_false(c->closed);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "login", "user", "alice",
          "password", "nopenope");
  cap_expect_drop(c, "error", "auth_failed");
  assert_true(c->closed);
}

static void test_register_errors(void **state) {
  fx_t *f = *state;
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", "bob",
          "password", "password1");
  cap_expect_drop(c, "ok", NULL);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", "bob",
          "password", "password2");
  cap_expect_drop(c, "error", "user_exists");
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", "Bob",
          "password", "password1");
  cap_expect_drop(c, "error", "bad_request");
}

static void test_register_race_reserves_name(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_connect(f), *b = fx_connect(f);
  json_t *r1 = json_pack("{s:s,s:s,s:s}", "type", "register", "user", "zed",
                         "password", "password1");
  /* both arrive before the first hash is done */
  chat__srv_on_frame(&f->srv, a->s, r1);
  chat__srv_on_frame(&f->srv, b->s, r1);
  json_decref(r1);
  cap_expect_drop(b, "error", "user_exists");
  assert_true(a->paused);
  fx_run(f);
  cap_expect_drop(a, "ok", NULL);
  assert_false(a->paused);
}

static void test_contact_errors(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  cap_t *b = fx_user(f, "bob");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_add", "user", "alice");
  cap_expect_drop(a, "error", "bad_request");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_add", "user", "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_accept", "user", "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_accept", "user", "bob");
  cap_expect_drop(a, "error", "bad_request");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_remove", "user", "bob");
  cap_expect_drop(a, "error", "not_contact");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_remove", "user", "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, a, "{s:s,s:s}", "type", "contact_decline", "user", "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  cap_empty(b);
}

static void test_send_errors(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "ghost", "msg_id",
          "m", "body", "x");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "alice", "msg_id",
          "m", "body", "x");
  cap_expect_drop(a, "error", "bad_request");
  fx_send(f, a, "{s:s,s:s,s:s}", "type", "ack", "msg_id", "m", "from",
          "ghost");
  cap_empty(a); /* acks are never answered */
}

static void test_connect_error_order(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  cap_t *b = fx_user(f, "bob");
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  cap_expect_drop(a, "error", "not_contact");
  fx_contacts(f, a, "alice", b, "bob");
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  cap_expect_drop(a, "error", "no_p2p");
  fx_disconnect(f, b);
  cap_expect_drop(a, "presence", NULL);
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  cap_expect_drop(a, "error", "offline");
  cap_t *b2 = fx_connect(f);
  fx_send(f, b2, "{s:s,s:s,s:s,s:i}", "type", "login", "user", "bob",
          "password", "password1", "p2p_port", 4000);
  cap_expect_drop(b2, "ok", NULL);
  cap_expect_drop(a, "presence", NULL);
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  json_t *ok = cap_expect(a, "ok", NULL);
  json_t *ex = cap_expect(b2, "expect", NULL);
  assert_string_equal(jstr(ok, "host"), "10.0.0.1");
  assert_int_equal(json_integer_value(json_object_get(ok, "port")), 4000);
  assert_int_equal(strlen(jstr(ok, "ticket")), 32);
  assert_string_equal(jstr(ok, "ticket"), jstr(ex, "ticket"));
  assert_string_equal(jstr(ex, "from"), "alice");
  json_decref(ok);
  json_decref(ex);
}

#define KA "aaaa0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
#define KB "bbbb0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"

static cap_t *nat_user(fx_t *f, const char *name, const char *key, int port,
                       const char *lan) {
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", name,
          "password", "password1");
  cap_expect_drop(c, "ok", NULL);
  fx_send(f, c, "{s:s,s:s,s:s,s:s,s:i,s:[s]}", "type", "login", "user", name,
          "password", "password1", "key", key, "p2p_port", port, "lan", lan);
  cap_expect_drop(c, "ok", NULL);
  return c;
}

/* docs/DIRECT.md: seen at one address, the asker gets the target's LAN
 * addresses and nothing else; seen at two, a reverse dial (the asker's
 * listener in the expect) and a punch toward each other's server
 * connection, at a moment inside the budget. */
static void test_connect_nat_fields(void **state) {
  fx_t *f = *state;
  cap_t *a = nat_user(f, "alice", KA, 5000, "192.168.1.10");
  cap_t *b = nat_user(f, "bob", KB, 4000, "192.168.1.20");
  fx_contacts(f, a, "alice", b, "bob");
  a->s->obs_port = 41000;
  b->s->obs_port = 42000;
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  json_t *ok = cap_expect(a, "ok", NULL);
  json_t *ex = cap_expect(b, "expect", NULL);
  json_t *lan = json_object_get(ok, "lan");
  assert_int_equal(json_array_size(lan), 1);
  assert_string_equal(json_string_value(json_array_get(lan, 0)),
                      "192.168.1.20");
  assert_null(json_object_get(ok, "reverse"));
  assert_null(json_object_get(ok, "punch_host"));
  assert_null(json_object_get(ex, "host"));
  assert_null(json_object_get(ex, "punch_host"));
  json_decref(ok);
  json_decref(ex);

  snprintf(a->s->host, sizeof(a->s->host), "%s", "198.51.100.7");
  fx_send(f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  ok = cap_expect(a, "ok", NULL);
  ex = cap_expect(b, "expect", NULL);
  assert_null(json_object_get(ok, "lan"));
  assert_true(json_is_true(json_object_get(ok, "reverse")));
  assert_string_equal(jstr(ok, "punch_host"), "10.0.0.1");
  assert_int_equal(json_integer_value(json_object_get(ok, "punch_port")),
                   42000);
  assert_string_equal(jstr(ex, "host"), "198.51.100.7");
  assert_int_equal(json_integer_value(json_object_get(ex, "port")), 5000);
  assert_string_equal(jstr(ex, "punch_host"), "198.51.100.7");
  assert_int_equal(json_integer_value(json_object_get(ex, "punch_port")),
                   41000);
  /* no RTT known (the test sink has none): both punch after the lead */
  assert_int_equal(json_integer_value(json_object_get(ok, "punch_ms")), 100);
  assert_int_equal(json_integer_value(json_object_get(ex, "punch_ms")), 100);
  json_decref(ok);
  json_decref(ex);

  /* a bad lan is bad_request naming it, not auth_failed */
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:s,s:s,s:[s]}", "type", "login", "user", "carol",
          "password", "password1", "lan", "10.0.0.1:80");
  json_t *e = cap_expect(c, "error", "bad_request");
  assert_non_null(strstr(jstr(e, "message"), "lan"));
  json_decref(e);
}

static void test_group_errors(void **state) {
  fx_t *f = *state;
  cap_t *a = fx_user(f, "alice");
  cap_t *b = fx_user(f, "bob");
  fx_send(f, a, "{s:s,s:s}", "type", "group_members", "group", "dev");
  cap_expect_drop(a, "error", "no_such_group");
  fx_send(f, a, "{s:s,s:s}", "type", "group_create", "group", "dev");
  cap_expect_drop(a, "ok", NULL);
  fx_send(f, b, "{s:s,s:s}", "type", "group_create", "group", "dev");
  cap_expect_drop(b, "error", "group_exists");
  fx_send(f, b, "{s:s,s:s}", "type", "group_members", "group", "dev");
  cap_expect_drop(b, "error", "not_member");
  fx_send(f, a, "{s:s,s:s,s:s}", "type", "group_add", "group", "dev", "user",
          "bob");
  cap_expect_drop(a, "error", "not_contact");
  fx_send(f, a, "{s:s,s:s,s:s}", "type", "group_add", "group", "dev", "user",
          "ghost");
  cap_expect_drop(a, "error", "no_such_user");
  fx_send(f, b, "{s:s,s:s,s:s,s:s}", "type", "group_send", "group", "dev",
          "msg_id", "g1", "body", "x");
  cap_expect_drop(b, "error", "not_member");
}

static void test_rate_limit(void **state) {
  fx_t *f = *state;
  f->srv.cfg.rate_limit = 1; /* burst 5 */
  cap_t *c = fx_connect(f);
  for (int i = 0; i < 5; i++) {
    fx_send(f, c, "{s:s}", "type", "ping");
    cap_expect_drop(c, "pong", NULL);
  }
  for (int i = 0; i < CHAT_MAX_RATE_LIMITED_RUN; i++) {
    assert_false(c->closed);
    fx_send(f, c, "{s:s}", "type", "ping");
    cap_expect_drop(c, "error", "rate_limited");
  }
  assert_true(c->closed);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_state_checks),       T(test_tenth_protocol_error_closes),
      T(test_frame_too_large_closes), T(test_auth_failures),
      T(test_register_errors),    T(test_register_race_reserves_name),
      T(test_contact_errors),     T(test_send_errors),
      T(test_connect_error_order), T(test_connect_nat_fields),
      T(test_group_errors),
      T(test_rate_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
