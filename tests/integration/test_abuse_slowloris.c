/* test_abuse_slowloris.c -- connections that hold a slot without talking:
 * a line trickled a byte at a time never counts as a read, so it is closed
 * after 3 x heartbeat; a connection that never logs in is told
 * not_authenticated and closed after --login-timeout; blank lines are reads
 * and keep a logged-in connection alive. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int up(void **state) {
  const char *const extra[] = {"--heartbeat", "1", "--login-timeout", "1",
                               NULL};
  return th_fixture_server_up_with(state, extra);
}

/* Sends one byte of a never-ending frame every 100 ms until the server
 * closes; returns how long that took (ms). */
static long long trickle_until_closed(th_client_t *c) {
  const char *line = "{\"type\":\"ping\",\"id\":\"";
  long long start = th_now_ms();
  for (size_t i = 0; th_now_ms() - start < TH_DEADLINE_MS; i++) {
    char b = i < strlen(line) ? line[i] : 'x';
    if (th_client_send_raw(c, &b, 1) != 0)
      break;
    json_t *f = th_client_recv(c, 100);
    if (f != NULL) {
      /* the only thing it may get is the error before the close */
      th_assert_type(f, "error", NULL);
      json_decref(f);
    }
    if (th_client_closed(c))
      break;
  }
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  return th_now_ms() - start;
}

static void test_trickled_line_closed_after_deadline(void **state) {
  int port = th_server_port(*state);
  th_client_t *c = th_client_user(port, "slow", TH_FIXTURE_PW);
  long long took = trickle_until_closed(c);
  /* 3 x heartbeat, checked every 250 ms: not before ~3 s, not much after */
  assert_true(took >= 2500);
  assert_true(took < 3000 + TH_DEADLINE_MS / 2);
  th_client_close(c);
  /* the server still serves */
  th_client_t *d = th_client_user(port, "fine", TH_FIXTURE_PW);
  json_decref(th_client_call_ok(d, "{s:s}", "type", "contacts"));
  th_client_close(d);
}

static void test_login_never_finished_closed(void **state) {
  int port = th_server_port(*state);
  th_client_t *c = th_client_connect(port);
  long long start = th_now_ms();
  /* talking without logging in does not help */
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  json_t *e = th_client_expect_error(c, "not_authenticated", TH_DEADLINE_MS);
  long long took = th_now_ms() - start;
  assert_null(json_object_get(e, "id"));
  assert_non_null(strstr(th_str(e, "message"), "login"));
  json_decref(e);
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  assert_true(took >= 800);
  assert_true(took < 1000 + TH_DEADLINE_MS / 2);
  th_client_close(c);
  /* one that logs in in time stays (past the login timeout) */
  th_client_t *d = th_client_user(port, "quick", TH_FIXTURE_PW);
  for (int i = 0; i < 6; i++) {
    json_t *q = th_client_call(d, "{s:s}", "type", "ping");
    th_assert_type(q, "pong", NULL);
    json_decref(q);
    th_client_expect_silence(d, 300);
  }
  assert_false(th_client_closed(d));
  th_client_close(d);
}

/* Blank lines (LF, CRLF, spaces) are something read: a session that sends
 * nothing else survives well past 3 x heartbeat. */
static void test_blank_lines_keep_alive(void **state) {
  int port = th_server_port(*state);
  th_client_t *c = th_client_user(port, "blank", TH_FIXTURE_PW);
  th_client_t *idle = th_client_user(port, "idle", TH_FIXTURE_PW);
  const char *blanks[] = {"\n", "\r\n", "   \t\n"};
  long long start = th_now_ms();
  for (int i = 0; th_now_ms() - start < 4500; i++) {
    assert_int_equal(th_client_send_raw(c, blanks[i % 3], strlen(blanks[i % 3])),
                     0);
    json_t *f = th_client_recv(c, 400);
    if (f != NULL) {
      char *t = json_dumps(f, JSON_COMPACT);
      fail_msg("blank lines got an answer: %s", t);
    }
    assert_false(th_client_closed(c));
  }
  /* the one that said nothing is gone; the blank one still answers */
  assert_true(th_client_wait_closed(idle, TH_DEADLINE_MS));
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(c);
  th_client_close(idle);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_trickled_line_closed_after_deadline,
                                      up, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_login_never_finished_closed, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_blank_lines_keep_alive, up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
