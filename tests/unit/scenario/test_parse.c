/* test_parse.c -- the .chat format: every command, its defaults, and the
 * errors a person gets for a mistyped line. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>

#include <cmocka.h>

#include "scenario.h"

static chat_scenario_script_t *parse_ok(const char *text) {
  chat_scenario_script_t *s = NULL;
  chat_scenario_error_t err;
  int rc = chat_scenario_parse(text, strlen(text), "t.chat", &s, &err);
  if (rc != 0)
    print_error("unexpected parse error at line %d: %s\n", err.line, err.text);
  assert_int_equal(rc, 0);
  assert_non_null(s);
  return s;
}

/* Returns the error line; the message must contain want. */
static int parse_bad(const char *text, const char *want) {
  chat_scenario_script_t *s = NULL;
  chat_scenario_error_t err;
  int rc = chat_scenario_parse(text, strlen(text), "t.chat", &s, &err);
  if (rc != -EINVAL)
    print_error("parsed without the expected error: %s\n", text);
  assert_int_equal(rc, -EINVAL);
  assert_null(s);
  if (strstr(err.text, want) == NULL)
    print_error("error '%s' does not mention '%s'\n", err.text, want);
  assert_non_null(strstr(err.text, want));
  return err.line;
}

static void test_full_example(void **state) {
  chat_scenario_script_t *s = parse_ok(
      "# contacts and a direct chat\n"
      "server start --heartbeat 2\n"
      "client alice --register\n"
      "client bob --register --no-p2p password=s3cret-pw\n"
      "\n"
      "alice: /add bob\n"
      "bob sees contact_request from=alice\n"
      "alice sees contact_added user=bob status=online within 5\n"
      "alice: /msg bob hello there   # not a comment: typed as is\n"
      "bob sees message from=alice body=\"hello there\" via=relay # comment\n"
      "kill bob\n"
      "kill -9 bob\n"
      "kill -KILL server\n"
      "server restart\n"
      "stop bob\n"
      "cont bob\n"
      "wait 1.5\n"
      "alice eof\n"
      "alice exits 0\n");
  assert_int_equal(s->nnames, 3);
  assert_string_equal(s->names[0], "server");
  assert_string_equal(s->names[1], "alice");
  assert_string_equal(s->names[2], "bob");
  assert_int_equal(s->nsteps, 17);

  chat_scenario_step_t *st = s->steps;
  assert_int_equal(st[0].kind, CHAT_SCENARIO_SERVER_START);
  assert_int_equal(st[0].line, 2);
  assert_int_equal(st[0].argc, 2);
  assert_string_equal(st[0].argv[0], "--heartbeat");
  assert_string_equal(st[0].argv[1], "2");

  assert_int_equal(st[2].kind, CHAT_SCENARIO_CLIENT);
  assert_int_equal(st[2].who, 2);
  assert_int_equal(st[2].argc, 2);
  assert_string_equal(st[2].argv[1], "--no-p2p");
  assert_string_equal(st[2].password, "s3cret-pw");
  assert_null(st[2].user);

  assert_int_equal(st[3].kind, CHAT_SCENARIO_SAY);
  assert_int_equal(st[3].who, 1);
  assert_string_equal(st[3].text, "/add bob");
  assert_int_equal(st[3].line, 6);

  assert_int_equal(st[4].kind, CHAT_SCENARIO_SEES);
  assert_string_equal(st[4].text, "contact_request");
  assert_int_equal(st[4].nconds, 1);
  assert_string_equal(st[4].conds[0].field, "from");
  assert_string_equal(st[4].conds[0].value, "alice");
  assert_true(st[4].within == CHAT_SCENARIO_DEFAULT_WITHIN);
  assert_true(st[5].within == 5.0);

  assert_string_equal(st[6].text, "/msg bob hello there   # not a comment: "
                                  "typed as is");
  assert_int_equal(st[7].nconds, 3);
  assert_string_equal(st[7].conds[1].value, "hello there");
  assert_string_equal(st[7].source, "bob sees message from=alice "
                                    "body=\"hello there\" via=relay # comment");

  assert_int_equal(st[8].kind, CHAT_SCENARIO_SIGNAL);
  assert_int_equal(st[8].signum, SIGTERM);
  assert_int_equal(st[9].signum, SIGKILL);
  assert_int_equal(st[10].signum, SIGKILL);
  assert_int_equal(st[10].who, CHAT_SCENARIO_SERVER);
  assert_int_equal(st[11].kind, CHAT_SCENARIO_SERVER_RESTART);
  assert_int_equal(st[12].signum, SIGSTOP);
  assert_int_equal(st[13].signum, SIGCONT);
  assert_int_equal(st[14].kind, CHAT_SCENARIO_WAIT);
  assert_true(st[14].within == 1.5);
  assert_int_equal(st[15].kind, CHAT_SCENARIO_EOF);
  assert_int_equal(st[16].kind, CHAT_SCENARIO_EXITS);
  assert_int_equal(st[16].exit_code, 0);
  assert_int_equal(st[16].exit_signal, 0);
  chat_scenario_script_free(s);
}

static void test_conditions_and_ops(void **state) {
  chat_scenario_script_t *s = parse_ok(
      "server start\n"
      "client alice\n"
      "alice sees sent to=bob msg_id=>m1 status!=stored 'body=it''s' x~y\n"
      "alice sees receipt msg_id=$m1 state=delivered\n"
      "alice sees * from=bob\n"
      "alice never message from=bob within 3\n"
      "alice never message\n"
      "alice exits SIGKILL within 4\n"
      "alice exits 1\n"
      "server logs \"listening on $server\"\n"
      "server exits 0\n");
  chat_scenario_step_t *st = s->steps;
  chat_scenario_cond_t *c = st[2].conds;
  assert_int_equal(st[2].nconds, 5);
  assert_int_equal(c[0].op, CHAT_SCENARIO_OP_EQ);
  assert_int_equal(c[1].op, CHAT_SCENARIO_OP_CAPTURE);
  assert_string_equal(c[1].field, "msg_id");
  assert_string_equal(c[1].value, "m1");
  assert_int_equal(c[2].op, CHAT_SCENARIO_OP_NE);
  assert_string_equal(c[2].value, "stored");
  assert_string_equal(c[3].field, "body");
  assert_string_equal(c[3].value, "its");
  assert_int_equal(c[4].op, CHAT_SCENARIO_OP_CONTAINS);
  assert_string_equal(st[3].conds[0].value, "$m1"); /* expanded at run time */
  assert_string_equal(st[4].text, "*");
  assert_int_equal(st[4].next, 0);
  assert_int_equal(st[5].kind, CHAT_SCENARIO_NEVER);
  assert_true(st[5].within == 3.0);
  assert_true(st[6].within == CHAT_SCENARIO_DEFAULT_NEVER);
  assert_int_equal(st[7].exit_signal, SIGKILL);
  assert_int_equal(st[7].exit_code, -1);
  assert_true(st[7].within == 4.0);
  assert_int_equal(st[8].exit_code, 1);
  assert_int_equal(st[9].kind, CHAT_SCENARIO_LOGS);
  assert_int_equal(st[9].who, CHAT_SCENARIO_SERVER);
  assert_string_equal(st[9].text, "listening on $server");
  assert_int_equal(st[10].who, CHAT_SCENARIO_SERVER);
  chat_scenario_script_free(s);
}

static void test_sees_next(void **state) {
  chat_scenario_script_t *s = parse_ok("server start\nclient a\n"
                                       "a sees next message body=x\n"
                                       "a sees next\n");
  assert_int_equal(s->steps[2].next, 1);
  assert_string_equal(s->steps[2].text, "message");
  assert_int_equal(s->steps[2].nconds, 1);
  /* A lone "next" is an event name. */
  assert_int_equal(s->steps[3].next, 0);
  assert_string_equal(s->steps[3].text, "next");
  chat_scenario_script_free(s);
}

static void test_client_options(void **state) {
  chat_scenario_script_t *s = parse_ok(
      "timeout 30\n"
      "server start --db $dir/x.db\n"
      "client alice-phone user=alice nowait --p2p-port 0 --p2p-host 127.0.0.1\n"
      "client alice-phone\n"
      "alice-phone sees ready\n");
  assert_int_equal(s->nsteps, 4); /* timeout is a setting, not a step */
  chat_scenario_step_t *st = &s->steps[1];
  assert_string_equal(st->user, "alice");
  assert_int_equal(st->nowait, 1);
  assert_int_equal(st->argc, 4);
  assert_string_equal(st->argv[0], "--p2p-port");
  assert_string_equal(st->argv[3], "127.0.0.1");
  assert_true(st->within == 30.0);
  assert_int_equal(s->steps[2].argc, 0);
  assert_true(s->steps[3].within == 30.0);
  chat_scenario_script_free(s);
}

static void test_errors_name_the_line(void **state) {
  assert_int_equal(parse_bad("server start\nclient alice\nbob: hi\n",
                             "unknown participant 'bob'"), 3);
  assert_int_equal(parse_bad("client alice\n", "before `server start`"), 1);
  assert_int_equal(parse_bad("server start\nserver start\n",
                             "already started"), 2);
  assert_int_equal(parse_bad("server start\nclient alice\nalice sees\n",
                             "event name"), 3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice sees message body\n", "field=value"), 3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice sees message body=\"open\n",
                             "unterminated quote"), 3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice sees message within\n", "within"), 3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice sees message within -1\n", "seconds"), 3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice sees message within 99999\n", "seconds"),
                   3);
  assert_int_equal(parse_bad("server start\nclient alice\n"
                             "alice exits maybe\n", "exit code"), 3);
  assert_int_equal(parse_bad("server start\nclient Alice\n", "participant "
                             "name"), 2);
  assert_int_equal(parse_bad("server start\nclient kill\n", "participant "
                             "name"), 2);
  assert_int_equal(parse_bad("server start\nclient alice\nalice dances\n",
                             "unknown command"), 3);
  assert_int_equal(parse_bad("server start\nserver sees x\n", "no events"), 2);
  assert_int_equal(parse_bad("server start\nserver: hi\n", "server cannot"),
                   2);
  assert_int_equal(parse_bad("server start\nclient a\nkill -FOO a\n",
                             "unknown signal"), 3);
  assert_int_equal(parse_bad("server start\nclient a\na: /msg b $nope\n",
                             "$nope"), 3);
  /* $server exists only once a server was started. */
  assert_int_equal(parse_bad("wait 1\nserver logs $server\n", "before"), 2);
  /* A capture defines its variable for the lines after it only. */
  assert_int_equal(parse_bad("server start\nclient a\na sees x id=$m\n"
                             "a sees x id=>m\n", "$m"), 3);
  assert_int_equal(parse_bad("server start\nclient a\na sees x id=>\n",
                             "variable name"), 3);
  assert_int_equal(parse_bad("# only a comment\n\n", "no steps"), 0);
  assert_int_equal(parse_bad("server start\nclient a\na: eof\n",
                             "write `a eof` to close stdin"), 3);
}

/* Nodes (chat-scenario --nodes N): `server NODE ...`, `kill server NODE`,
 * `client NAME node=NODE failover`, and the script's highest node. */
static void test_nodes(void **state) {
  chat_scenario_script_t *s = parse_ok(
      "server start --heartbeat 1\n"
      "client alice node=n2 failover --register\n"
      "client bob\n"
      "kill -9 server n2\n"
      "kill server\n"
      "stop server n1\n"
      "cont server n1\n"
      "server n2 restart\n"
      "server restart\n"
      "server n2 logs \"login bob\" within 5\n"
      "server n3 exits 0\n"
      "server logs \"login alice\"\n"
      "client alice\n");
  chat_scenario_step_t *st = s->steps;
  assert_int_equal(s->max_node, 3);
  assert_int_equal(st[0].node, 0);
  assert_int_equal(st[1].kind, CHAT_SCENARIO_CLIENT);
  assert_int_equal(st[1].node, 2);
  assert_int_equal(st[1].failover, 1);
  assert_int_equal(st[1].argc, 1); /* node= and failover are the runner's */
  assert_string_equal(st[1].argv[0], "--register");
  assert_int_equal(st[2].node, 0); /* the runner places it */
  assert_int_equal(st[2].failover, 0);
  assert_int_equal(st[3].kind, CHAT_SCENARIO_SIGNAL);
  assert_int_equal(st[3].signum, SIGKILL);
  assert_int_equal(st[3].who, CHAT_SCENARIO_SERVER);
  assert_int_equal(st[3].node, 2);
  assert_int_equal(st[4].node, 0); /* every node */
  assert_int_equal(st[5].signum, SIGSTOP);
  assert_int_equal(st[5].node, 1);
  assert_int_equal(st[6].signum, SIGCONT);
  assert_int_equal(st[6].node, 1);
  assert_int_equal(st[7].kind, CHAT_SCENARIO_SERVER_RESTART);
  assert_int_equal(st[7].node, 2);
  assert_int_equal(st[8].kind, CHAT_SCENARIO_SERVER_RESTART);
  assert_int_equal(st[8].node, 0);
  assert_int_equal(st[9].kind, CHAT_SCENARIO_LOGS);
  assert_int_equal(st[9].who, CHAT_SCENARIO_SERVER);
  assert_int_equal(st[9].node, 2);
  assert_string_equal(st[9].text, "login bob");
  assert_true(st[9].within == 5.0);
  assert_int_equal(st[10].kind, CHAT_SCENARIO_EXITS);
  assert_int_equal(st[10].node, 3);
  assert_int_equal(st[10].exit_code, 0);
  assert_int_equal(st[11].node, 0);
  assert_int_equal(st[12].node, 0); /* a restart keeps its node */
  chat_scenario_script_free(s);

  /* Without nodes named, nothing changes; a client may still be called n2:
   * only the word after `server` is a node. */
  s = parse_ok("server start\nclient n2\nn2: hi\nkill n2\nserver logs x\n");
  assert_int_equal(s->max_node, 0);
  assert_int_equal(s->steps[3].who, 1);
  assert_int_equal(s->steps[3].node, 0);
  chat_scenario_script_free(s);
}

static void test_node_errors(void **state) {
  assert_int_equal(parse_bad("server start\nserver n2 start\n",
                             "`server start` starts every node"), 2);
  assert_int_equal(parse_bad("server n1 start\n", "starts every node"), 1);
  assert_int_equal(parse_bad("server start\nkill server n9\n",
                             "'n9' is not a node (n1 to n8)"), 2);
  assert_int_equal(parse_bad("server start\nserver n0 restart\n",
                             "'n0' is not a node"), 2);
  assert_int_equal(parse_bad("server start\nserver n12 logs x\n",
                             "'n12' is not a node"), 2);
  assert_int_equal(parse_bad("server start\nstop server 2\n",
                             "'2' is not a node"), 2);
  assert_int_equal(parse_bad("server start\nclient a node=2\n",
                             "'2' is not a node"), 2);
  assert_int_equal(parse_bad("server start\nclient a node=\n",
                             "'' is not a node"), 2);
  assert_int_equal(parse_bad("server start\nkill server n2 n1\n",
                             "expected `kill NAME` or `kill server [NODE]`"),
                   2);
  assert_int_equal(parse_bad("kill -9 server n2\n", "before `server start`"),
                   1);
  assert_int_equal(parse_bad("server start\nserver n2 sees x\n",
                             "no events"), 2);
  assert_int_equal(parse_bad("server start\nserver n2 dances\n",
                             "`server [NODE] restart`"), 2);
  assert_int_equal(parse_bad("server start\nkill\n", "expected `kill NAME`"),
                   2);
  assert_int_equal(parse_bad("server start\nstop\n", "expected `stop NAME`"),
                   2);
}

static void test_node_names(void **state) {
  assert_int_equal(chat_scenario_node_parse("n1"), 1);
  assert_int_equal(chat_scenario_node_parse("n8"), 8);
  assert_int_equal(CHAT_SCENARIO_MAX_NODES, 8);
  const char *bad[] = {"n9", "n0", "n", "", "N2", "n02", "2", "n1x", "n10",
                       "node1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_scenario_node_parse(bad[i]), -EINVAL);
}

static void test_nul_in_middle(void **state) {
  const char text[] = "wait 1\nwa\0it 2\n";
  chat_scenario_script_t *s = NULL;
  chat_scenario_error_t err;
  assert_int_equal(chat_scenario_parse(text, sizeof(text) - 1, "t", &s, &err),
                   -EINVAL);
  assert_non_null(strstr(err.text, "NUL"));
}

static void test_crlf_and_blank_lines(void **state) {
  chat_scenario_script_t *s = parse_ok(
      "server start\r\n   \r\nclient alice\r\nalice: /quit\r\n  # x\r\n");
  assert_int_equal(s->nsteps, 3);
  assert_string_equal(s->steps[2].text, "/quit");
  assert_int_equal(s->steps[2].line, 4);
  chat_scenario_script_free(s);
}

static void test_split_words(void **state) {
  char **w;
  assert_int_equal(chat_scenario_split_words(
                       "a  b=\"x y\" 'c d' e\\f \"q\\\"t\\n\" # rest", &w), 5);
  assert_string_equal(w[0], "a");
  assert_string_equal(w[1], "b=x y");
  assert_string_equal(w[2], "c d");
  assert_string_equal(w[3], "e\\f");
  assert_string_equal(w[4], "q\"t\n");
  assert_null(w[5]);
  chat_scenario_words_free(w);
  assert_int_equal(chat_scenario_split_words("a#b \"#\" '' #c", &w), 3);
  assert_string_equal(w[0], "a#b");
  assert_string_equal(w[1], "#");
  assert_string_equal(w[2], "");
  chat_scenario_words_free(w);
  assert_int_equal(chat_scenario_split_words("x 'open", &w), -EINVAL);
  assert_int_equal(chat_scenario_split_words("   ", &w), 0);
  chat_scenario_words_free(w);
}

static void test_signal_names(void **state) {
  assert_int_equal(chat_scenario_signal_parse("TERM"), SIGTERM);
  assert_int_equal(chat_scenario_signal_parse("SIGKILL"), SIGKILL);
  assert_int_equal(chat_scenario_signal_parse("kill"), SIGKILL);
  assert_int_equal(chat_scenario_signal_parse("9"), 9);
  assert_int_equal(chat_scenario_signal_parse("STOP"), SIGSTOP);
  assert_int_equal(chat_scenario_signal_parse("0"), -EINVAL);
  assert_int_equal(chat_scenario_signal_parse("9x"), -EINVAL);
  assert_int_equal(chat_scenario_signal_parse("NOPE"), -EINVAL);
}

static void test_parse_file(void **state) {
  chat_scenario_script_t *s = NULL;
  chat_scenario_error_t err;
  assert_int_equal(chat_scenario_parse_file("/nonexistent/x.chat", &s, &err),
                   -ENOENT);
  assert_int_equal(err.line, 0);
  char path[] = "/tmp/test_parse_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "server start\nwait 0.5\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chat_scenario_parse_file(path, &s, &err), 0);
  assert_string_equal(s->path, path);
  assert_int_equal(s->nsteps, 2);
  chat_scenario_script_free(s);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_example),
      cmocka_unit_test(test_conditions_and_ops),
      cmocka_unit_test(test_sees_next),
      cmocka_unit_test(test_client_options),
      cmocka_unit_test(test_errors_name_the_line),
      cmocka_unit_test(test_nodes),
      cmocka_unit_test(test_node_errors),
      cmocka_unit_test(test_node_names),
      cmocka_unit_test(test_nul_in_middle),
      cmocka_unit_test(test_crlf_and_blank_lines),
      cmocka_unit_test(test_split_words),
      cmocka_unit_test(test_signal_names),
      cmocka_unit_test(test_parse_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
