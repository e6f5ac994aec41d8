/* test_client_crash.c -- PROTOCOL.md section 3: "the sending client keeps
 * every message until its receipt and sends it again (same msg_id) after a
 * reconnect, so a crash of the server loses nothing end to end". The
 * recipient is a raw client that never acks; the server is killed right
 * after the push, before its own one-second write could run. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS


static void test_relayed_resent_after_sigkill(void **state) {
  char listen[64];
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", th_free_port());
  const char *const extra[] = {"--listen", listen, NULL};
  const char *const no_p2p[] = {"--no-p2p", NULL};
  th_server_t *s = th_server_start(extra);
  int port = th_server_port(s);
  th_client_t *bob = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_cli_t *a = th_cli_ready(port, "alice", no_p2p);

  th_cli_cmd(a, "/msg bob keep me");
  json_t *sent = th_cli_wait(a, D, "sent", "to", "bob", "status", "relayed",
                             NULL);
  char msg_id[80];
  snprintf(msg_id, sizeof(msg_id), "%s",
           json_string_value(json_object_get(sent, "msg_id")));
  json_decref(th_client_expect_deliver(bob, "alice", msg_id, "keep me", 0));
  th_server_stop(s, SIGKILL); /* bob never acked */
  th_client_close(bob);

  th_server_restart(s, SIGKILL);
  assert_int_equal(th_server_port(s), port);
  /* alice logs back in by herself (with her session token) and sends it
   * again; bob, logging in, gets it once, as the same message */
  th_cli_wait(a, 40000, "ready", NULL);
  bob = th_client_connect(port);
  th_client_login(bob, "bob", TH_FIXTURE_PW, 0);
  json_t *d = th_client_expect(bob, "deliver", 40000);
  assert_string_equal(th_str(d, "msg_id"), msg_id);
  assert_string_equal(th_str(d, "body"), "keep me");
  json_decref(d);
  th_client_ack(bob, "alice", msg_id);
  th_cli_wait(a, D, "receipt", "msg_id", msg_id, NULL);
  th_client_expect_silence(bob, 300);
  /* told once, though sent twice */
  assert_int_equal(th_cli_count(a, "sent", "msg_id", msg_id, NULL), 1);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  th_client_close(bob);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_relayed_resent_after_sigkill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
