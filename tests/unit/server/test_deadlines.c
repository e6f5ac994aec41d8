/* test_deadlines.c -- the sweep's two deadlines: a connection not logged in
 * within login_timeout is told not_authenticated and closed (once); a
 * logged-in one is judged by its last complete line, which
 * chat__srv_on_line only ever moves forward. */
#include "fixture.h"

static int setup(void **state) {
  fx_t *f = fx_new();
  f->srv.cfg.login_timeout = 60;
  f->srv.cfg.heartbeat = 30;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_free(*state);
  return 0;
}

static void test_login_timeout(void **state) {
  fx_t *f = *state;
  cap_t *anon = fx_connect(f);
  cap_t *a = fx_user(f, "alice");
  uint64_t t0 = anon->s->opened_ms;
  /* talking does not count as logging in */
  fx_send(f, anon, "{s:s}", "type", "ping");
  cap_expect_drop(anon, "pong", NULL);
  chat__srv_sweep(&f->srv, t0 + 59999);
  assert_false(anon->closed);
  cap_empty(anon);
  a->s->last_read_ms = t0 + 60000;
  chat__srv_sweep(&f->srv, t0 + 60000);
  assert_true(anon->closed);
  json_t *e = cap_expect(anon, "error", "not_authenticated");
  assert_null(json_object_get(e, "id"));
  assert_non_null(strstr(jstr(e, "message"), "60 s"));
  json_decref(e);
  /* a later sweep, before the connection is gone, says nothing again */
  chat__srv_sweep(&f->srv, t0 + 61000);
  cap_empty(anon);
  assert_false(a->closed);
  cap_empty(a);
  /* and it does not count as one of the peer's protocol errors */
  assert_int_equal(anon->s->proto_errors, 0);
}

static void test_login_in_progress_not_cut(void **state) {
  fx_t *f = *state;
  cap_t *c = fx_connect(f);
  c->s->busy = 1; /* a login waiting for the pool */
  chat__srv_sweep(&f->srv, c->s->opened_ms + 120000);
  assert_false(c->closed);
  c->s->busy = 0;
  chat__srv_sweep(&f->srv, c->s->opened_ms + 120000);
  assert_true(c->closed);
}

static void test_on_line_moves_forward_only(void **state) {
  fx_t *f = *state;
  cap_t *b = fx_user(f, "bob");
  uint64_t t = b->s->last_read_ms;
  chat__srv_on_line(&f->srv, b->s, t + 50000); /* a blank line read */
  assert_true(b->s->last_read_ms == t + 50000);
  chat__srv_on_line(&f->srv, b->s, t + 10); /* older: ignored */
  assert_true(b->s->last_read_ms == t + 50000);
  chat__srv_sweep(&f->srv, t + 90000 + 10);
  assert_false(b->closed); /* 40 s since the blank line */
  chat__srv_sweep(&f->srv, t + 50000 + 90000);
  assert_true(b->closed);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_login_timeout),
      T(test_login_in_progress_not_cut),
      T(test_on_line_moves_forward_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
