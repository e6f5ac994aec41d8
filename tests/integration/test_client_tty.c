/* test_client_tty.c -- chat-client on a real terminal (a tmux pane): the
 * prompt is drawn once; a message that arrives while a line is half typed is
 * printed above it, the typed text stays on the prompt, and Enter sends all
 * of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"
#include "tty.h"

#define D TH_DEADLINE_MS

static void test_half_typed_line_survives(void **state) {
  th_server_t *s;
  char cmd[1024], *pane;
  th_cli_t *bob;
  th_tty_t *t;

  if (!th_tty_available())
    skip();
  s = th_server_start(NULL);
  snprintf(cmd, sizeof(cmd),
           "CHAT_PASSWORD=%s %s/chat-client --server 127.0.0.1:%d "
           "--user alice --register 2>/dev/null; sleep 60",
           TH_CLI_PASSWORD, CHAT_BIN_DIR, th_server_port(s));
  t = th_tty_start(120, 30, cmd);
  free(th_tty_wait(t, "logged in as alice", D));
  bob = th_cli_ready(th_server_port(s), "bob", NULL);
  th_tty_type(t, "/add bob");
  th_tty_keys(t, "Enter", NULL);
  th_cli_wait(bob, D, "contact_request", "from", "alice", NULL);
  th_cli_cmd(bob, "/accept alice");
  pane = th_tty_wait(t, "bob is now a contact", D);
  /* The first line typed shows its prompt once (it used to be drawn twice
   * when the prompt first appeared: "alice> alice> /add bob"). */
  assert_string_equal(th_tty_line_with(pane, "/add bob"), "alice> /add bob");
  free(pane);
  pane = th_tty_screen(t);
  assert_null(strstr(pane, "alice> alice>"));
  free(pane);

  th_tty_type(t, "hello bob, half of this");
  th_tty_wait_last(t, "alice> hello bob, half of this", D);
  th_cli_cmd(bob, "/msg alice interrupting you");
  /* The message is above, the half-typed line is still the prompt line
   * (the message and the redrawn line leave the client in one write). */
  th_tty_wait_last(t, "alice\xe2\x86\x92" "bob> hello bob, half of this", D);
  pane = th_tty_screen(t);
  assert_non_null(strstr(pane, "<bob> interrupting you"));
  assert_true(strstr(pane, "<bob> interrupting you") <
              strstr(pane, "> hello bob, half of this"));
  free(pane);

  th_tty_type(t, " is typed");
  th_tty_keys(t, "Enter", NULL);
  th_cli_wait(bob, D, "message", "from", "alice", "body",
              "hello bob, half of this is typed", NULL);
  free(th_tty_wait(t, "delivered directly, encrypted", D));
  /* bob's link to alice was TLS with his vouched key: said once, for
   * people (--json has no such event). */
  pane = th_tty_screen(t);
  assert_non_null(strstr(pane, "direct link with bob: encrypted, bob's key "
                               "verified"));
  assert_non_null(strstr(pane, "<bob> interrupting you  (direct, encrypted)"));
  free(pane);

  th_tty_type(t, "/quit");
  th_tty_keys(t, "Enter", NULL);
  th_tty_free(t);
  assert_int_equal(th_cli_finish(bob, D), 0);
  th_cli_free(bob);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_half_typed_line_survives),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
