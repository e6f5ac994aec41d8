/* test_abuse_ratelimit.c -- the per-connection token bucket (--rate-limit N,
 * bursts of 5 x N): a burst beyond it gets rate_limited for the excess, a
 * connection with moderate excess survives and is served again once tokens
 * return, sustained abuse closes it, and --rate-limit 0 turns it off. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int up_rate(void **state) {
  const char *const extra[] = {"--rate-limit", "4", NULL}; /* burst of 20 */
  return th_fixture_server_up_with(state, extra);
}

static int up_off(void **state) {
  const char *const extra[] = {"--rate-limit", "0", NULL};
  return th_fixture_server_up_with(state, extra);
}

/* Sends n pings in one write; counts the pongs and rate_limited errors
 * among the replies, which must all come. */
static void burst(th_client_t *c, int n, int *pongs, int *limited) {
  size_t cap = (size_t)n * 32, len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"type\":\"ping\",\"id\":%d}\n", i);
  assert_int_equal(th_client_send_raw(c, buf, len), 0);
  free(buf);
  *pongs = *limited = 0;
  for (int i = 0; i < n; i++) {
    json_t *f = th_client_recv(c, TH_DEADLINE_MS);
    if (f == NULL)
      fail_msg("reply %d of %d missing", i, n);
    const char *code = th_str(f, "code");
    if (strcmp(th_str(f, "type"), "pong") == 0)
      (*pongs)++;
    else if (code != NULL && strcmp(code, "rate_limited") == 0)
      (*limited)++;
    else
      fail_msg("unexpected reply %s", th_str(f, "type"));
    json_decref(f);
  }
}

static void test_burst_beyond_5n_limited(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  /* login used a token or two; a few more may refill meanwhile */
  int pongs, limited;
  burst(c, 60, &pongs, &limited);
  assert_int_equal(pongs + limited, 60);
  assert_in_range(pongs, 15, 24);
  assert_true(limited >= 36);
  assert_false(th_client_closed(c));
  th_client_close(c);
}

static void test_moderate_excess_survives(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  int pongs, limited;
  burst(c, 40, &pongs, &limited);
  assert_true(limited >= 15 && limited < 100); /* a run below the cut-off */
  /* after a pause the bucket has refilled: served again, still connected */
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (;;) {
    json_t *p = th_client_call(c, "{s:s}", "type", "ping");
    int ok = strcmp(th_str(p, "type"), "pong") == 0;
    json_decref(p);
    if (ok)
      break;
    assert_true(th_now_ms() < deadline);
    th_client_expect_silence(c, 250);
  }
  th_client_expect_silence(c, 1500); /* 6 tokens back at 4/s */
  burst(c, 4, &pongs, &limited);
  assert_int_equal(pongs, 4);
  json_decref(th_client_call_ok(c, "{s:s}", "type", "contacts"));
  assert_false(th_client_closed(c));
  th_client_close(c);
}

/* 100 rate_limited answers in a row close the connection; others go on. */
static void test_sustained_abuse_closes(void **state) {
  int port = th_server_port(*state);
  th_client_t *other = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "alice", TH_FIXTURE_PW);
  static char buf[400 * 20];
  size_t n = 0;
  for (int i = 0; i < 400; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"type\":\"ping\"}\n");
  th_client_send_raw(c, buf, n);
  int limited = 0;
  json_t *f;
  while ((f = th_client_recv(c, TH_DEADLINE_MS)) != NULL) {
    const char *code = th_str(f, "code");
    if (code != NULL && strcmp(code, "rate_limited") == 0)
      limited++;
    json_decref(f);
  }
  assert_true(th_client_closed(c));
  assert_true(limited >= 100 && limited < 400);
  json_t *p = th_client_call(other, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(c);
  th_client_close(other);
}

static void test_rate_limit_zero_is_off(void **state) {
  th_client_t *c =
      th_client_user(th_server_port(*state), "alice", TH_FIXTURE_PW);
  int pongs, limited;
  burst(c, 2000, &pongs, &limited);
  assert_int_equal(pongs, 2000);
  assert_int_equal(limited, 0);
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_burst_beyond_5n_limited, up_rate,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_moderate_excess_survives, up_rate,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_sustained_abuse_closes, up_rate,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_rate_limit_zero_is_off, up_off,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
