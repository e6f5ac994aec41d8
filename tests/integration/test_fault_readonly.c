/* test_fault_readonly.c -- a database that cannot be written (opened
 * read-only through an SQLite URI, since root ignores file permissions):
 * the server still serves what needs no disk (login, relay), refuses what
 * must be durable (a stored send, a registration) with internal, and loses
 * nothing that was accepted before. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void test_readonly_refuses_writes_loses_nothing(void **state) {
  th_server_t *rw = th_server_start(NULL);
  int port = th_server_port(rw);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "carol", TH_FIXTURE_PW);
  th_client_close(b);
  th_client_close(c);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                             "bob", "msg_id", "before", "body", "kept");
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "status"), "stored");
  json_decref(r);
  th_client_close(a);
  assert_int_equal(th_server_stop(rw, SIGTERM), 0);

  char uri[4200];
  snprintf(uri, sizeof(uri), "file:%s?mode=ro", th_server_db(rw));
  const char *extra[] = {"--db", uri, NULL};
  th_server_t *ro = th_server_start(extra);
  port = th_server_port(ro);
  a = th_client_connect(port);
  th_client_login(a, "alice", TH_FIXTURE_PW, 0); /* login needs no write */
  th_client_call_error(a, "internal", "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                       "bob", "msg_id", "ro1", "body", "cannot be stored");
  th_client_t *x = th_client_connect(port);
  th_client_call_error(x, "internal", "{s:s,s:s,s:s}", "type", "register",
                       "user", "dave", "password", TH_FIXTURE_PW);
  /* the refused registration left nothing behind: not even a login */
  th_client_call_error(x, "auth_failed", "{s:s,s:s,s:s}", "type", "login",
                       "user", "dave", "password", TH_FIXTURE_PW);
  th_client_close(x);
  /* relay needs no disk */
  c = th_client_connect(port);
  th_client_login(c, "carol", TH_FIXTURE_PW, 0);
  th_client_send_msg(a, "carol", "live", "relayed", "relayed");
  json_decref(th_client_expect_deliver(c, "alice", "live", "relayed", 0));
  th_client_ack(c, "alice", "live");
  json_decref(th_client_expect(a, "receipt", TH_DEADLINE_MS));
  /* the message stored before is delivered (reading works) */
  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "before");
  json_decref(d);
  th_client_expect_silence(b, 200); /* ro1 was never accepted */
  th_client_close(a);
  th_client_close(b);
  th_client_close(c);
  /* a read-only store cannot take the final commit, but it shuts down */
  assert_int_equal(th_server_stop(ro, SIGTERM), 0);
  th_server_free(ro);

  /* writable again: what was accepted before is all there */
  th_server_restart(rw, SIGTERM);
  port = th_server_port(rw);
  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "before");
  json_decref(d);
  th_client_expect_silence(b, 200);
  th_client_close(b);
  assert_int_equal(th_server_stop(rw, SIGTERM), 0);
  th_server_free(rw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_readonly_refuses_writes_loses_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
