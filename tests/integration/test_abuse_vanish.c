/* test_abuse_vanish.c -- clients that vanish without a goodbye (a TCP reset,
 * SO_LINGER 0) in the middle of a frame, of a large frame, or with pushed
 * messages unacked: the server keeps serving everyone else, and every
 * unacked message is delivered again at the recipient's next login. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"

static int up(void **state) {
  const char *const extra[] = {"--rate-limit", "0", NULL};
  return th_fixture_server_up_with(state, extra);
}

/* Closes c with a reset instead of a FIN. */
static void reset(th_client_t *c) {
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(th_client_fd(c), SOL_SOCKET, SO_LINGER, &lg,
                              sizeof(lg)),
                   0);
  th_client_close(c);
}

static void assert_served(int port, th_client_t *a) {
  json_t *p = th_client_call(a, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_t *n = th_client_connect(port);
  p = th_client_call(n, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(n);
}

static void test_half_frame_then_reset(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  for (int i = 0; i < 20; i++) {
    th_client_t *v = i % 2 ? th_client_user(port, "ghost", TH_FIXTURE_PW)
                           : th_client_connect(port);
    const char *half = "{\"type\":\"send\",\"to\":\"alice\",\"msg_id\":\"x\",\"bo";
    assert_int_equal(th_client_send_raw(v, half, strlen(half)), 0);
    reset(v);
  }
  /* a large frame cut off half way */
  th_client_t *v = th_client_user(port, "ghost", TH_FIXTURE_PW);
  static char big[40000];
  int n = snprintf(big, sizeof(big),
                   "{\"type\":\"send\",\"to\":\"alice\",\"msg_id\":\"y\","
                   "\"body\":\"");
  memset(big + n, 'z', sizeof(big) - (size_t)n);
  assert_int_equal(th_client_send_raw(v, big, sizeof(big)), 0);
  reset(v);
  assert_served(port, a);
  /* nothing half-sent was taken as a message */
  th_client_expect_silence(a, 200);
  th_client_close(a);
}

static void test_unacked_then_reset_redelivered(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  char id[16];
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof(id), "u%d", i);
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", id, "body", "unacked");
    th_assert_type(r, "ok", NULL);
    assert_string_equal(th_str(r, "status"), "relayed");
    json_decref(r);
  }
  /* bob reads them, acks the first three, and vanishes */
  for (int i = 0; i < 10; i++)
    json_decref(th_client_expect(b, "deliver", TH_DEADLINE_MS));
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof(id), "u%d", i);
    th_client_ack(b, "alice", id);
  }
  for (int i = 0; i < 3; i++)
    json_decref(th_client_expect(a, "receipt", TH_DEADLINE_MS));
  reset(b);
  /* alice sees bob go offline (it is not a contact: wait by pinging) */
  assert_served(port, a);
  /* more while bob is away are stored */
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (;;) {
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", "later", "body", "stored");
    int stored = strcmp(th_str(r, "status"), "stored") == 0;
    json_decref(r);
    if (stored)
      break;
    assert_true(th_now_ms() < deadline); /* reset not yet seen: relayed */
    json_t *x = th_client_call(a, "{s:s}", "type", "ping");
    json_decref(x);
  }
  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  for (int i = 3; i < 10; i++) {
    json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "u%d", i);
    assert_string_equal(th_str(d, "msg_id"), id);
    assert_true(json_is_true(json_object_get(d, "offline")));
    json_decref(d);
  }
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "later");
  json_decref(d);
  th_client_expect_silence(b, 200); /* the acked ones do not come back */
  th_client_close(a);
  th_client_close(b);
}

/* A recipient that resets while the server is writing a stream of large
 * pushes to it: the writes fail, the session ends, nothing is lost. */
static void test_reset_during_pushes(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  static char body[16001];
  memset(body, 'p', 16000);
  char id[16];
  for (int i = 0; i < 30; i++) {
    snprintf(id, sizeof(id), "p%d", i);
    th_client_send(a, "{s:s,s:s,s:s,s:s,s:i}", "type", "send", "to", "bob",
                   "msg_id", id, "body", body, "id", i);
    if (i == 10)
      reset(b);
  }
  for (int i = 0; i < 30; i++) {
    json_t *r = th_client_expect(a, "ok", TH_DEADLINE_MS);
    json_decref(r);
  }
  assert_served(port, a);
  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  for (int i = 0; i < 30; i++) {
    json_t *dl = th_client_expect(b, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "p%d", i);
    assert_string_equal(th_str(dl, "msg_id"), id);
    json_decref(dl);
    th_client_ack(b, "alice", id);
  }
  th_client_close(a);
  th_client_close(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_half_frame_then_reset, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_unacked_then_reset_redelivered, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_reset_during_pushes, up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
