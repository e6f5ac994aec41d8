/* test_client_human.c -- chat-client's output for people (no --json, stdout
 * a pipe: no colours, no prompt): a message held while the recipient was
 * offline is marked with the time it was written, errors name the command
 * they answer, and confirmations read as sentences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS

static th_proc_t *human(int port, const char *user) {
  char bin[4096], server[64];
  const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};
  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);
  snprintf(server, sizeof(server), "127.0.0.1:%d", port);
  const char *argv[] = {bin, "--server", server, "--user", user, "--register",
                        NULL};
  return th_proc_spawn(argv, env);
}

static void expect_line(th_proc_t *p, const char *needle) {
  if (!th_proc_wait_line(p, TH_STDOUT, needle, D)) {
    fprintf(stderr, "---- stdout ----\n%s---- end ----\n",
            th_proc_output(p, TH_STDOUT));
    fail_msg("no line with '%s'", needle);
  }
}

static void test_people_output(void **state) {
  int port = th_server_port(*state), status;
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  th_proc_t *a = human(port, "alice");
  const char *line;

  expect_line(a, "logged in as alice");
  th_proc_write(a, "/add bob");
  expect_line(a, "contact request sent to bob");
  th_proc_write(a, "/add nobody");
  line = th_proc_wait_line(a, TH_STDOUT, "error no_such_user", D);
  assert_non_null(line);
  assert_non_null(strstr(line, "(/add nobody)"));
  th_proc_write(a, "/quit");
  assert_int_equal(th_proc_wait(a, D, &status), 0);
  assert_int_equal(th_proc_exit_code(a), 0);
  th_proc_free(a);

  /* Held while alice is away: shown later, marked, with its own time. */
  th_cli_cmd(b, "/msg alice written while you were away");
  th_cli_wait(b, D, "sent", "to", "alice", "status", "stored", NULL);
  a = human(port, "alice");
  line = th_proc_wait_line(a, TH_STDOUT, "written while you were away", D);
  assert_non_null(line);
  assert_non_null(strstr(line, "<bob>"));
  assert_non_null(strstr(line, "written at that time while you were offline"));
  assert_true(line[0] == '['); /* its time, today: [HH:MM:SS] */
  th_proc_close_stdin(a);
  assert_int_equal(th_proc_wait(a, D, &status), 0);
  assert_int_equal(th_proc_exit_code(a), 0);
  th_proc_free(a);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_people_output, th_fixture_server_up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
