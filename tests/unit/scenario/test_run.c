/* test_run.c -- the runner end to end against stand-in programs (fake/):
 * passing scripts pass, and each kind of breakage fails with a transcript
 * that says what happened, with every child reaped and the temporary
 * directory removed. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../support/free_port.h"
#include "run.h"
#include "scenario.h"

static char bin_dir[PATH_MAX];

/* Runs a script given as text with options (NULL: the defaults); *out gets
 * what the runner printed. */
static int run_opts(const char *text, const chat_scenario_opts_t *with,
                    char **out, double *secs) {
  chat_scenario_script_t *s = NULL;
  chat_scenario_error_t err;
  int rc = chat_scenario_parse(text, strlen(text), "t.chat", &s, &err);
  if (rc != 0)
    print_error("parse error %d: %s\n", err.line, err.text);
  assert_int_equal(rc, 0);
  size_t len = 0;
  FILE *f = open_memstream(out, &len);
  assert_non_null(f);
  chat_scenario_opts_t o = {.max_time = 60.0, .slow = 1.0};
  if (with != NULL)
    o = *with;
  o.bin_dir = bin_dir;
  o.out = f;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  rc = chat_scenario_run(s, &o);
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (secs != NULL)
    *secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  fclose(f);
  chat_scenario_script_free(s);
  /* Every process the runner started is reaped by now. */
  int status;
  assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  /* And its directory is gone. */
  const char *d = strstr(*out, "directory /");
  if (d != NULL) {
    char dir[PATH_MAX];
    sscanf(d + 10, "%4095s", dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
  }
  return rc;
}

static int run_text(const char *text, char **out, double *secs) {
  return run_opts(text, NULL, out, secs);
}

static size_t count_in(const char *out, const char *what) {
  size_t n = 0;
  for (const char *p = strstr(out, what); p != NULL; p = strstr(p + 1, what))
    n++;
  return n;
}

static void expect_in(const char *out, const char *want) {
  if (strstr(out, want) == NULL)
    fprintf(stderr, "expected '%s' in:\n%s\n", want, out);
  assert_non_null(strstr(out, want));
}

static int expect_fail(const char *text, const char *line, const char *why) {
  char *out;
  int rc = run_text(text, &out, NULL);
  assert_int_equal(rc, CHAT_SCENARIO_FAIL);
  expect_in(out, "=== transcript of t.chat");
  expect_in(out, line);
  expect_in(out, why);
  free(out);
  return rc;
}

static void test_passes(void **state) {
  char *out;
  int rc = run_text(
      "server start --heartbeat 2\n"
      "client alice nowait --register\n"
      "client bob password=s3cret-x nowait\n"
      "alice sees ready user=alice password=alice-password args~--register\n"
      "alice: /echo {\"event\":\"message\",\"from\":\"bob\",\"body\":\"hi there\"}\n"
      "alice: /echo {\"event\":\"sent\",\"to\":\"bob\",\"msg_id\":\"m-1\"}\n"
      "alice: /echo {\"event\":\"receipt\",\"to\":\"bob\",\"msg_id\":\"m-1\"}\n"
      "alice sees sent to=bob msg_id=>m\n"
      "alice sees receipt msg_id=$m\n"
      "alice sees message from=bob body=\"hi there\"\n"
      "alice never message within 0.2\n"
      "bob sees ready password=s3cret-x args~\"--server $server \"\n"
      "bob: /err a line on stderr\n"
      "bob logs \"on stderr\"\n"
      "stop bob\n"
      "cont bob\n"
      "server restart\n"
      "server logs \"--listen 127.0.0.1:$port \"\n"
      "kill -9 bob\n"
      "bob exits KILL\n"
      "client bob\n"
      "bob never ready within 0.1\n"
      "client bob2 user=bob nowait\n"
      "bob2 sees ready user=bob password=s3cret-x\n"
      "alice eof\n"
      "alice exits 0\n"
      "kill server\n"
      "server exits 0\n",
      &out, NULL);
  if (rc != 0)
    fputs(out, stderr);
  assert_int_equal(rc, CHAT_SCENARIO_PASS);
  expect_in(out, "PASS t.chat (28 steps,");
  free(out);
}

static void test_timeout_shows_unmatched_events(void **state) {
  char *out;
  double secs;
  int rc = run_text(
      "server start\n"
      "client alice\n"
      "alice: /echo {\"event\":\"message\",\"from\":\"bob\",\"body\":\"hullo\"}\n"
      "alice sees message from=bob body=hello within 0.5\n",
      &out, &secs);
  assert_int_equal(rc, CHAT_SCENARIO_FAIL);
  expect_in(out, "FAIL t.chat:4: alice sees message from=bob body=hello "
                 "within 0.5\n  timed out after 0.5 s; alice's unconsumed "
                 "events:\n");
  expect_in(out, "{\"event\":\"message\",\"from\":\"bob\",\"body\":\"hullo\"}\n"
                 "                 ^ body is \"hullo\" (wanted body=hello)\n");
  expect_in(out, "alice    <  /echo {\"event\"");
  expect_in(out, "alice    >  {\"event\":\"ready\"");
  assert_true(secs < 10);
  free(out);
}

/* `sees next` checks order: the first unconsumed event of that name. */
static void test_next_checks_order(void **state) {
  const char *setup =
      "server start\nclient alice\n"
      "alice: /echo {\"event\":\"presence\",\"user\":\"x\"}\n"
      "alice: /echo {\"event\":\"message\",\"body\":\"m2\"}\n"
      "alice: /echo {\"event\":\"message\",\"body\":\"m1\"}\n";
  char text[1024], *out;
  snprintf(text, sizeof(text), "%s%s", setup,
           "alice sees next message body=m2\nalice sees next message "
           "body=m1\nalice sees presence\n");
  assert_int_equal(run_text(text, &out, NULL), CHAT_SCENARIO_PASS);
  free(out);
  snprintf(text, sizeof(text), "%s%s", setup,
           "alice sees next message body=m1\n");
  expect_fail(text, "FAIL t.chat:6: alice sees next message body=m1",
              "alice's next message event does not match: body is \"m2\" "
              "(wanted body=m1)");
}

static void test_never_violated(void **state) {
  expect_fail("server start\nclient alice\n"
              "alice: /echo {\"event\":\"message\",\"from\":\"eve\"}\n"
              "alice never message from=eve within 5\n",
              "FAIL t.chat:4:", "alice saw what it should never see");
}

static void test_exit_code_mismatch(void **state) {
  expect_fail("server start\nclient alice\nalice: /exit 3\nalice exits 0\n",
              "FAIL t.chat:4: alice exits 0", "alice ended with exit status 3");
}

static void test_gone_process_fails_at_once(void **state) {
  char *out;
  double secs;
  int rc = run_text("server start\nclient alice\nalice: /exit 0\n"
                    "alice sees message within 30\n", &out, &secs);
  assert_int_equal(rc, CHAT_SCENARIO_FAIL);
  expect_in(out, "alice is gone (exit status 0) and printed nothing that "
                 "matches");
  assert_true(secs < 20);
  free(out);
}

static void test_crash_is_caught(void **state) {
  expect_fail("server start\nclient alice\nalice: /crash\nwait 10\n",
              "FAIL t.chat:4: wait 10", "alice crashed: killed by signal 11");
  expect_fail("server start --crash\nwait 10\n", "FAIL t.chat",
              "server crashed: killed by signal 11");
}

static void test_sanitizer_report_is_caught(void **state) {
  expect_fail("server start\nclient alice\n"
              "alice: /err ==1==ERROR: AddressSanitizer: heap-use-after-free\n"
              "wait 10\n",
              "FAIL t.chat:4:", "alice: sanitizer report on stderr");
}

static void test_non_json_stdout_fails(void **state) {
  expect_fail("server start\nclient alice\nalice: /echo hello\n"
              "alice: /echo {\"event\":\"x\"}\nalice sees x\n",
              "that stdout line is not a JSON object",
              "alice printed 1 stdout line(s) that are not JSON objects");
}

static void test_unclean_stop_fails(void **state) {
  expect_fail("server start\nclient alice\nalice: /term-exit 4\n"
              "alice: /echo {\"event\":\"x\"}\nalice sees x\n",
              "teardown: SIGTERM",
              "alice did not stop cleanly on SIGTERM: exit status 4");
}

static void test_server_never_listens(void **state) {
  expect_fail("timeout 0.5\nserver start --silent\n",
              "FAIL t.chat:2: server start --silent",
              "timed out after 0.5 s waiting for the server's 'listening on' "
              "line");
}

static void test_client_still_running(void **state) {
  expect_fail("server start\nclient alice\nclient alice\n",
              "FAIL t.chat:3:", "alice is still running");
}

/* SIGINT to the runner: it stops, and still stops and reaps everyone (a
 * frozen client included) and removes its directory (run_text checks). */
static void test_interrupt_cleans_up(void **state) {
  char *out;
  double secs;
  int rc = run_text("server start\nclient alice\nclient bob\nstop bob\n"
                    "alice: /interrupt-runner\nwait 30\n", &out, &secs);
  assert_int_equal(rc, CHAT_SCENARIO_INTERRUPTED);
  expect_in(out, "FAIL t.chat:6: wait 30\n  interrupted by Interrupt");
  expect_in(out, "bob      -- exited: exit status 0");
  assert_true(secs < 20);
  free(out);
}

/* --nodes 2 (the fake server does not care that there is no Redis: each
 * node gets a file of its own). Every node starts with its --node, clients
 * go round robin and keep their node, `failover` lists every node, and
 * server steps without a node are about all of them. */
static void test_nodes(void **state) {
  chat_scenario_opts_t o = {.max_time = 60.0, .slow = 1.0, .nodes = 2};
  char *out;
  int rc = run_opts(
      "server start --heartbeat 2\n"
      "server n1 logs \"--node n1\"\n"
      "server n2 logs \"/server-n2.db --hash-cost min --node n2 --heartbeat "
      "2\"\n"
      "client alice nowait\n"
      "client bob nowait\n"
      "client carol nowait\n"
      "client dave node=n1 nowait\n"
      "client erin failover nowait\n"
      "alice sees ready args~\"--server $server --user alice\"\n"
      "erin sees ready args~\"--server $server,127.0.0.1:\"\n"
      "kill bob\n"
      "client bob nowait\n"
      "kill -9 server n2\n"
      "server n2 exits KILL\n"
      "kill -9 server n2\n",
      &o, &out, NULL);
  /* The last line fails: n2 is down already. */
  assert_int_equal(rc, CHAT_SCENARIO_FAIL);
  expect_in(out, "FAIL t.chat:15: kill -9 server n2\n  n2 is not running "
                 "(killed by signal 9");
  expect_in(out, "alice    -- on n1");
  expect_in(out, "carol    -- on n1");
  expect_in(out, "dave     -- on n1"); /* pinned, in n2's turn */
  expect_in(out, "erin     -- on n1");
  assert_int_equal(count_in(out, "bob      -- on n2"), 2);
  assert_int_equal(count_in(out, "n1       -- teardown: SIGTERM"), 1);
  assert_int_equal(count_in(out, "n2       -- teardown: SIGTERM"), 0);
  free(out);

  o.verbose = 1; /* the transcript of a pass too */
  rc = run_opts(
      "server start\n"
      "client alice nowait\n"
      "client bob nowait\n"
      "alice sees ready\n"
      "bob sees ready\n"
      "stop server\n"
      "cont server\n"
      "kill -9 server n2\n"
      "server n2 restart\n"
      "server n2 logs \"--listen 127.0.0.1:\"\n"
      "kill server\n"
      "server exits 0\n"
      "server restart\n"
      "server logs \"--node n2\"\n",
      &o, &out, NULL);
  if (rc != 0)
    fputs(out, stderr);
  assert_int_equal(rc, CHAT_SCENARIO_PASS);
  /* A port below the ephemeral range (free_port.h), and a restart comes
   * back on the same port. */
  const char *first = strstr(out, "n2       $  chat-server --listen "
                                  "127.0.0.1:");
  assert_non_null(first);
  int port = atoi(first + strlen("n2       $  chat-server --listen "
                                 "127.0.0.1:"));
  assert_true(port > 0 && port < fp_ephemeral_low());
  char same[96];
  snprintf(same, sizeof(same), "n2       $  chat-server --listen "
                               "127.0.0.1:%d ", port);
  assert_int_equal(count_in(out, same), 3);
  assert_int_equal(count_in(out, "n1       $  chat-server --listen "
                                 "127.0.0.1:"), 2);
  assert_int_equal(count_in(out, "n2       -- teardown: SIGTERM"), 1);
  free(out);
}

/* --place overrides the script's node=; a script naming a node that does
 * not run is refused before anything starts. */
static void test_nodes_placed(void **state) {
  chat_scenario_place_t place[] = {{"bob", 1}, {"alice", 2}};
  chat_scenario_opts_t o = {.max_time = 60.0, .slow = 1.0, .nodes = 2,
                            .place = place, .nplace = 2, .failover = 1,
                            .verbose = 1};
  char *out;
  int rc = run_opts("server start\nclient alice nowait\n"
                    "client bob node=n2 nowait\n"
                    "bob sees ready args~\"--server $server,127.0.0.1:\"\n"
                    /* Not torn down before its SIGTERM trap is set. */
                    "alice sees ready\n",
                    &o, &out, NULL);
  if (rc != 0)
    fputs(out, stderr);
  assert_int_equal(rc, CHAT_SCENARIO_PASS);
  expect_in(out, "alice    -- on n2");
  expect_in(out, "bob      -- on n1");
  free(out);

  o.nodes = 0;
  o.nplace = 0;
  o.verbose = 0;
  assert_int_equal(run_opts("server start\nkill server n3\n", &o, &out,
                            NULL), CHAT_SCENARIO_FAIL);
  expect_in(out, "FAIL t.chat\n  it names node n3, but 1 node runs: run it "
                 "with --nodes 3 or more\n");
  assert_null(strstr(out, "chat-server"));
  free(out);
}

/* Failures name the node that holds things up. */
static void test_nodes_failures(void **state) {
  chat_scenario_opts_t o = {.max_time = 60.0, .slow = 1.0, .nodes = 2};
  char *out;
  assert_int_equal(run_opts("timeout 0.5\nserver start --silent\n", &o, &out,
                            NULL), CHAT_SCENARIO_FAIL);
  expect_in(out, "timed out after 0.5 s waiting for n1's 'listening on' line");
  free(out);
  assert_int_equal(run_opts("server start\nserver n2 logs nothing within "
                            "0.3\n", &o, &out, NULL), CHAT_SCENARIO_FAIL);
  expect_in(out, "FAIL t.chat:2: server n2 logs nothing within 0.3\n  timed "
                 "out after 0.3 s");
  free(out);
  assert_int_equal(run_opts("server start --crash\nwait 10\n", &o, &out,
                            NULL), CHAT_SCENARIO_FAIL);
  expect_in(out, "crashed: killed by signal 11");
  free(out);
  assert_int_equal(run_opts("server start\nkill server\nkill server\n", &o,
                            &out, NULL), CHAT_SCENARIO_FAIL);
  expect_in(out, "FAIL t.chat:3: kill server\n  no node is running");
  free(out);
}

static void test_missing_program(void **state) {
  char saved[PATH_MAX];
  memcpy(saved, bin_dir, sizeof(saved));
  snprintf(bin_dir, sizeof(bin_dir), "/nonexistent");
  expect_fail("server start\n", "FAIL t.chat:1:", "cannot start");
  memcpy(bin_dir, saved, sizeof(saved));
}

int main(void) {
  if (realpath("fake", bin_dir) == NULL) {
    perror("fake (run from tests/unit/scenario)");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_passes),
      cmocka_unit_test(test_timeout_shows_unmatched_events),
      cmocka_unit_test(test_next_checks_order),
      cmocka_unit_test(test_never_violated),
      cmocka_unit_test(test_exit_code_mismatch),
      cmocka_unit_test(test_gone_process_fails_at_once),
      cmocka_unit_test(test_crash_is_caught),
      cmocka_unit_test(test_sanitizer_report_is_caught),
      cmocka_unit_test(test_non_json_stdout_fails),
      cmocka_unit_test(test_unclean_stop_fails),
      cmocka_unit_test(test_server_never_listens),
      cmocka_unit_test(test_client_still_running),
      cmocka_unit_test(test_interrupt_cleans_up),
      cmocka_unit_test(test_missing_program),
      cmocka_unit_test(test_nodes),
      cmocka_unit_test(test_nodes_placed),
      cmocka_unit_test(test_nodes_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
