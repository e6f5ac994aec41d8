/* test_fault_sigkill.c -- a burst of sends to an offline user, pipelined on
 * one connection, with the server SIGKILLed in the middle: after a restart
 * on the same database, every msg_id answered "stored" before the kill is
 * delivered, in send order, none twice in one session. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define BURST 3000
#define CHUNK 50
#define KILL_AFTER 100 /* stored oks seen before the kill */

static void test_sigkill_mid_burst(void **state) {
  const char *extra[] = {"--rate-limit", "0", NULL};
  th_server_t *srv = th_server_start(extra);
  int port = th_server_port(srv);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_close(b);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  /* the burst in chunks written back to back, replies read only as they
   * happen to be there; the kill comes once KILL_AFTER are in, while the
   * rest is still being written, read and committed */
  static char acked[BURST];
  int oks = 0, last = -1, killed = 0;
  char chunk[CHUNK * 160];
  for (int i = 0; i < BURST; i += CHUNK) {
    size_t n = 0;
    for (int j = i; j < i + CHUNK; j++)
      n += (size_t)snprintf(chunk + n, sizeof(chunk) - n,
                            "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":"
                            "\"k%04d\",\"body\":\"burst %d %s\",\"id\":%d}\n",
                            j, j, "................................", j);
    if (th_client_send_raw(a, chunk, n) != 0)
      assert_true(killed);
    json_t *r;
    while ((r = th_client_recv(a, killed ? 0 : 1)) != NULL) {
      th_assert_type(r, "ok", NULL);
      assert_string_equal(th_str(r, "status"), "stored");
      int id = (int)th_int(r, "id");
      assert_true(id > last); /* answered in order */
      last = id;
      acked[id] = 1;
      oks++;
      json_decref(r);
    }
    if (!killed && oks >= KILL_AFTER) {
      assert_int_equal(th_proc_signal(th_server_proc(srv), SIGKILL), 0);
      killed = 1;
    }
  }
  if (!killed)
    assert_int_equal(th_proc_signal(th_server_proc(srv), SIGKILL), 0);
  /* whatever was answered before the kill counts too */
  json_t *r;
  while ((r = th_client_recv(a, TH_DEADLINE_MS)) != NULL) {
    th_assert_type(r, "ok", NULL);
    acked[th_int(r, "id")] = 1;
    oks++;
    json_decref(r);
  }
  th_client_close(a);
  th_server_restart(srv, SIGKILL);
  port = th_server_port(srv);
  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  static char seen[BURST];
  int got = 0, prev = -1;
  for (;;) {
    json_t *d = th_client_try_expect(b, "deliver", oks > got ? TH_DEADLINE_MS
                                                             : 500);
    if (d == NULL)
      break;
    const char *mid = th_str(d, "msg_id");
    int k = atoi(mid + 1);
    assert_true(k >= 0 && k < BURST);
    if (seen[k])
      fail_msg("%s delivered twice", mid);
    seen[k] = 1;
    assert_true(k > prev); /* send order */
    prev = k;
    got++;
    th_client_ack(b, "alice", mid);
    json_decref(d);
  }
  for (int i = 0; i < BURST; i++)
    if (acked[i] && !seen[i])
      fail_msg("k%04d was answered stored but is lost", i);
  print_message("%d answered stored before the kill, %d delivered after\n",
                oks, got);
  assert_true(got >= oks);
  th_client_close(b);
  assert_int_equal(th_server_stop(srv, SIGTERM), 0);
  th_server_free(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill_mid_burst),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
