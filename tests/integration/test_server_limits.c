/* test_server_limits.c -- heartbeat timeout, connection limit, output cap,
 * rate limit: the server protects itself and keeps serving the others. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>

#include "harness.h"

static int up_heartbeat(void **state) {
  const char *const extra[] = {"--heartbeat", "1", NULL};
  return th_fixture_server_up_with(state, extra);
}

static int up_two_clients(void **state) {
  const char *const extra[] = {"--max-clients", "2", NULL};
  return th_fixture_server_up_with(state, extra);
}

static int up_small_output(void **state) {
  const char *const extra[] = {"--max-output", "65536", "--rate-limit", "0",
                               NULL};
  return th_fixture_server_up_with(state, extra);
}

static int up_rate(void **state) {
  const char *const extra[] = {"--rate-limit", "2", NULL};
  return th_fixture_server_up_with(state, extra);
}

static void test_heartbeat_timeout(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  assert_int_equal(th_int(th_client_welcome(a), "heartbeat"), 1);
  th_make_contacts(a, "alice", b, "bob");
  long long start = th_now_ms();
  /* alice pings every 300 ms, bob says nothing: after 3 s bob is gone */
  json_t *p = NULL;
  while (p == NULL) {
    assert_true(th_now_ms() - start < TH_DEADLINE_MS);
    th_client_send(a, "{s:s}", "type", "ping");
    p = th_client_try_expect(a, "presence", 300);
  }
  long long waited = th_now_ms() - start;
  assert_string_equal(th_str(p, "user"), "bob");
  assert_string_equal(th_str(p, "status"), "offline");
  json_decref(p);
  assert_true(waited >= 2500); /* not before 3 x heartbeat (some slack) */
  assert_true(th_client_wait_closed(b, TH_DEADLINE_MS));
  assert_false(th_client_closed(a));
  th_client_close(a);
  th_client_close(b);
}

static void test_max_clients_server_busy(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_connect(port);
  th_client_t *b = th_client_connect(port);
  th_client_t *c = th_client_connect_raw(port);
  json_t *e = th_client_recv(c, TH_DEADLINE_MS);
  assert_non_null(e);
  th_assert_type(e, "error", "server_busy"); /* and no welcome first */
  json_decref(e);
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
  /* a freed slot is usable again */
  th_client_close(a);
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (;;) {
    th_client_t *d = th_client_connect_raw(port);
    json_t *f = th_client_recv(d, TH_DEADLINE_MS);
    assert_non_null(f);
    int welcomed = strcmp(th_str(f, "type"), "welcome") == 0;
    json_decref(f);
    th_client_close(d);
    if (welcomed)
      break;
    assert_true(th_now_ms() < deadline); /* the close may not be seen yet */
  }
  th_client_close(b);
}

/* A client that sends but never reads: its pongs pile up in the socket
 * buffers and then in the server, which cuts it off at --max-output. */
static void test_reader_that_never_reads_is_cut_off(void **state) {
  int port = th_server_port(*state);
  th_client_t *slow = th_client_user(port, "slow", TH_FIXTURE_PW);
  th_client_t *ok = th_client_user(port, "fine", TH_FIXTURE_PW);
  struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
  setsockopt(th_client_fd(slow), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  static char chunk[64 * 1024];
  const char *ping = "{\"type\":\"ping\",\"id\":\"0123456789abcdef\"}\n";
  size_t pl = strlen(ping), n = 0;
  while (n + pl <= sizeof(chunk)) {
    memcpy(chunk + n, ping, pl);
    n += pl;
  }
  long long start = th_now_ms();
  int cut = 0;
  while (!cut && th_now_ms() - start < 4 * TH_DEADLINE_MS) {
    int r = th_client_send_raw(slow, chunk, n);
    if (r == -EPIPE || r == -ECONNRESET)
      cut = 1;
    else if (r == -EAGAIN || r == -EWOULDBLOCK)
      break; /* the server stopped reading it: check below */
  }
  /* meanwhile the server answers others */
  json_t *p = th_client_call(ok, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  /* and the slow one is closed (reading drains what was sent before) */
  if (!cut)
    assert_true(th_client_wait_closed(slow, 4 * TH_DEADLINE_MS));
  th_client_close(slow);
  th_client_close(ok);
}

/* A recipient that does not ack gets at most max_output / 4 of bodies
 * pushed (at least one message); the rest is stored and pushed, in order,
 * as acks come. It is not cut off. */
static void test_unacked_window(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  static char body[6001];
  memset(body, 'b', 6000);
  body[6000] = '\0';
  char id[16];
  for (int i = 0; i < 8; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", id, "body", body);
    th_assert_type(r, "ok", NULL);
    /* 65536 / 4 = 16384 bytes of bodies: two of 6000 fit, a third not */
    assert_string_equal(th_str(r, "status"), i < 2 ? "relayed" : "stored");
    json_decref(r);
  }
  for (int i = 0; i < 8; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
    assert_string_equal(th_str(d, "msg_id"), id);
    assert_false(json_is_true(json_object_get(d, "offline")));
    json_decref(d);
    if (i >= 1)
      th_client_expect_silence(b, i < 7 ? 50 : 1); /* paced by acks */
    if (i >= 1) {
      /* ack the oldest unacked one (i - 1), which opens the window */
      snprintf(id, sizeof(id), "c%d", i - 1);
      th_client_ack(b, "alice", id);
    }
  }
  assert_false(th_client_closed(b));
  th_client_close(a);
  th_client_close(b);
}

static void test_rate_limited(void **state) {
  int port = th_server_port(*state);
  th_client_t *c = th_client_connect(port);
  /* 2/s with bursts of 10: 30 at once cannot all pass */
  char buf[30 * 40];
  size_t n = 0;
  for (int i = 0; i < 30; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                          "{\"type\":\"ping\",\"id\":%d}\n", i);
  th_client_send_raw(c, buf, n);
  int pongs = 0, limited = 0;
  for (int i = 0; i < 30; i++) {
    json_t *f = th_client_recv(c, TH_DEADLINE_MS);
    assert_non_null(f);
    if (strcmp(th_str(f, "type"), "pong") == 0)
      pongs++;
    else if (th_str(f, "code") && strcmp(th_str(f, "code"), "rate_limited") == 0)
      limited++;
    json_decref(f);
  }
  assert_int_equal(pongs + limited, 30);
  assert_true(pongs >= 10 && pongs <= 12);
  assert_true(limited >= 18);
  assert_false(th_client_closed(c));
  th_client_close(c);
}

static void test_sustained_abuse_closes(void **state) {
  int port = th_server_port(*state);
  th_client_t *c = th_client_connect(port);
  static char buf[200 * 20];
  size_t n = 0;
  for (int i = 0; i < 200; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"type\":\"ping\"}\n");
  th_client_send_raw(c, buf, n);
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_heartbeat_timeout, up_heartbeat,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_max_clients_server_busy,
                                      up_two_clients, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_reader_that_never_reads_is_cut_off,
                                      up_small_output, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_unacked_window, up_small_output,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_rate_limited, up_rate,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_sustained_abuse_closes, up_rate,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
