/* test_server_tokens.c -- PROTOCOL.md section 3, session tokens: issued
 * with "remember", a login by token needs no password, survives restarts,
 * ends at logout, and a bad one fails like a wrong password. Also what
 * section 3 says of a crash: a relayed message not acked within a second
 * is in the store. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define QUIET_MS 300

static int is_token(const char *t) {
  if (t == NULL || strlen(t) != 64)
    return 0;
  for (const char *p = t; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return 0;
  return 1;
}

/* Logs name in with password and remember:true; returns the token (owned). */
static char *login_remember(th_client_t *c, const char *name) {
  json_t *ok = th_client_call_ok(c, "{s:s,s:s,s:s,s:b}", "type", "login",
                                 "user", name, "password", TH_FIXTURE_PW,
                                 "remember", 1);
  const char *t = th_str(ok, "token");
  assert_true(is_token(t));
  char *copy = strdup(t);
  json_decref(ok);
  return copy;
}

static json_t *token_login(int port, const char *name, const char *token,
                           th_client_t **out) {
  th_client_t *c = th_client_connect(port);
  json_t *r = th_client_call(c, "{s:s,s:s,s:s}", "type", "login", "user",
                             name, "token", token);
  *out = c;
  return r;
}

static void test_token_login_and_restart(void **state) {
  th_server_t *srv = *state;
  th_client_t *a = th_client_connect(th_server_port(srv));
  th_client_register(a, "alice", TH_FIXTURE_PW);
  char *token = login_remember(a, "alice");
  th_client_close(a);
  /* no password: the token alone */
  th_client_t *a2;
  json_t *r = token_login(th_server_port(srv), "alice", token, &a2);
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "user"), "alice");
  assert_null(json_object_get(r, "token")); /* no new one unasked */
  json_decref(r);
  th_client_close(a2);
  /* it survives a restart (TERM and KILL alike) */
  th_server_restart(srv, SIGTERM);
  r = token_login(th_server_port(srv), "alice", token, &a2);
  th_assert_type(r, "ok", NULL);
  json_decref(r);
  th_client_close(a2);
  th_server_restart(srv, SIGKILL);
  r = token_login(th_server_port(srv), "alice", token, &a2);
  th_assert_type(r, "ok", NULL);
  json_decref(r);
  /* logout of a session it opened ends it */
  json_decref(th_client_call_ok(a2, "{s:s}", "type", "logout"));
  th_client_close(a2);
  r = token_login(th_server_port(srv), "alice", token, &a2);
  th_assert_type(r, "error", "auth_failed");
  json_decref(r);
  th_client_close(a2);
  /* the password still works, and a new token can be had */
  a = th_client_connect(th_server_port(srv));
  char *token2 = login_remember(a, "alice");
  assert_string_not_equal(token, token2);
  th_client_close(a);
  free(token);
  free(token2);
}

static void test_bad_tokens_fail_like_passwords(void **state) {
  th_server_t *srv = *state;
  th_client_t *a = th_client_connect(th_server_port(srv));
  th_client_register(a, "alice", TH_FIXTURE_PW);
  th_client_register(a, "bob", TH_FIXTURE_PW);
  char *token = login_remember(a, "alice");
  th_client_t *c = th_client_connect(th_server_port(srv));
  const char *bad[] = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "not hex", /* malformed */
      "ABCDEF0000000000000000000000000000000000000000000000000000000000",
  };
  for (int i = 0; i < 3; i++) {
    json_t *r = th_client_call(c, "{s:s,s:s,s:s}", "type", "login", "user",
                               "alice", "token", bad[i]);
    th_assert_type(r, "error", "auth_failed");
    json_decref(r);
  }
  /* alice's token is not bob's */
  json_t *r = th_client_call(c, "{s:s,s:s,s:s}", "type", "login", "user",
                             "bob", "token", token);
  th_assert_type(r, "error", "auth_failed");
  json_decref(r);
  /* the 5th failed login on one connection is answered, then it closes */
  r = th_client_call(c, "{s:s,s:s,s:s}", "type", "login", "user", "bob",
                     "token", bad[0]);
  th_assert_type(r, "error", "auth_failed");
  json_decref(r);
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
  /* neither password nor token: bad_request naming password */
  c = th_client_connect(th_server_port(srv));
  th_client_call_error(c, "bad_request", "{s:s,s:s}", "type", "login", "user",
                       "alice");
  th_client_close(c);
  th_client_close(a);
  free(token);
}

/* A relayed message the recipient has not acked for a second is in the
 * store: SIGKILL does not lose it. The wait is the guarantee under test
 * (time must pass), with a wide margin over its 1 s. */
static void test_relayed_unacked_survives_sigkill(void **state) {
  th_server_t *srv = *state;
  th_client_t *a = th_fixture_user(state, "alice"),
              *b = th_fixture_user(state, "bob");
  th_client_send_msg(a, "bob", "r1", "do not lose me", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "r1", "do not lose me", 0));
  /* bob never acks */
  struct timespec ts = {3, 0};
  nanosleep(&ts, NULL);
  th_server_stop(srv, SIGKILL);
  th_client_close(a);
  th_client_close(b);
  th_server_restart(srv, SIGKILL);
  th_client_t *b2 = th_client_connect(th_server_port(srv));
  th_client_login(b2, "bob", TH_FIXTURE_PW, 0);
  json_decref(th_client_expect_deliver(b2, "alice", "r1", "do not lose me", 1));
  th_client_ack(b2, "alice", "r1");
  th_client_expect_silence(b2, QUIET_MS);
  th_client_close(b2);
}

int main(void) {
#define T(fn) \
  cmocka_unit_test_setup_teardown(fn, th_fixture_server_up, \
                                  th_fixture_server_down)
  const struct CMUnitTest tests[] = {
      T(test_token_login_and_restart),
      T(test_bad_tokens_fail_like_passwords),
      T(test_relayed_unacked_survives_sigkill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
