/* test_cmd.c -- the command grammar of CLI.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static chat_cmd_t cmd;
static char line[20000];
static char err[200];

static int parse(const char *s) {
  snprintf(line, sizeof(line), "%s", s);
  return chat_cmd_parse(line, &cmd, err, sizeof(err));
}

static void test_msg(void **state) {
  assert_int_equal(parse("/msg bob hello there  world "), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_MSG);
  assert_string_equal(cmd.name, "bob");
  assert_string_equal(cmd.text, "hello there  world ");
  assert_int_equal(cmd.text_len, strlen("hello there  world "));
  assert_int_equal(parse("/msg   bob\t  x"), 0);
  assert_string_equal(cmd.text, "x");
  assert_int_equal(parse("/msg bob"), -EINVAL);
  assert_non_null(strstr(err, "usage"));
  assert_int_equal(parse("/msg bob    "), -EINVAL);
  assert_int_equal(parse("/msg Bob hi"), -EINVAL);
  assert_non_null(strstr(err, "Bob"));
}

static void test_say_and_empty(void **state) {
  assert_int_equal(parse("just text / with slash"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_SAY);
  assert_string_equal(cmd.text, "just text / with slash");
  assert_int_equal(parse(""), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_NONE);
  assert_int_equal(parse("   \t"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_NONE);
}

static void test_contacts_commands(void **state) {
  static const struct { const char *s; chat_cmd_kind_t k; } ok[] = {
      {"/add bob", CHAT_CMD_ADD},         {"/accept bob", CHAT_CMD_ACCEPT},
      {"/decline bob", CHAT_CMD_DECLINE}, {"/remove bob", CHAT_CMD_REMOVE},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    assert_int_equal(parse(ok[i].s), 0);
    assert_int_equal(cmd.kind, ok[i].k);
    assert_string_equal(cmd.name, "bob");
  }
  assert_int_equal(parse("/add"), -EINVAL);
  assert_int_equal(parse("/add bob carol"), -EINVAL);
  assert_non_null(strstr(err, "too many"));
  assert_int_equal(parse("/contacts"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_CONTACTS);
  assert_int_equal(parse("/contacts x"), -EINVAL);
}

static void test_status(void **state) {
  assert_int_equal(parse("/status away"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_STATUS);
  assert_int_equal(cmd.status, CHAT_STATUS_AWAY);
  assert_int_equal(parse("/status busy"), 0);
  assert_int_equal(cmd.status, CHAT_STATUS_BUSY);
  assert_int_equal(parse("/status offline"), -EINVAL);
  assert_int_equal(parse("/status"), -EINVAL);
  assert_int_equal(parse("/status sleepy"), -EINVAL);
}

static void test_groups(void **state) {
  assert_int_equal(parse("/group create dev"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GROUP_CREATE);
  assert_string_equal(cmd.name, "dev");
  assert_int_equal(parse("/group leave dev"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GROUP_LEAVE);
  assert_int_equal(parse("/group members dev"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GROUP_MEMBERS);
  assert_int_equal(parse("/group add dev bob"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GROUP_ADD);
  assert_string_equal(cmd.name, "dev");
  assert_string_equal(cmd.user, "bob");
  assert_int_equal(parse("/group add dev"), -EINVAL);
  assert_int_equal(parse("/group rename dev x"), -EINVAL);
  assert_int_equal(parse("/group"), -EINVAL);
  assert_int_equal(parse("/groups"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GROUPS);
  assert_int_equal(parse("/gmsg dev hi all"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_GMSG);
  assert_string_equal(cmd.name, "dev");
  assert_string_equal(cmd.text, "hi all");
}

static void test_wait_quit_help_unknown(void **state) {
  assert_int_equal(parse("/wait 1.5"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_WAIT);
  assert_int_equal(cmd.wait_ms, 1500);
  assert_int_equal(parse("/wait 0"), 0);
  assert_int_equal(cmd.wait_ms, 0);
  assert_int_equal(parse("/wait -1"), -EINVAL);
  assert_int_equal(parse("/wait soon"), -EINVAL);
  assert_int_equal(parse("/wait nan"), -EINVAL);
  assert_int_equal(parse("/wait 1e12"), -EINVAL);
  assert_int_equal(parse("/quit"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_QUIT);
  assert_int_equal(parse("/help"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_HELP);
  assert_non_null(strstr(chat_cmd_help(), "/gmsg GROUP TEXT"));
  assert_int_equal(parse("/dance"), -EINVAL);
  assert_non_null(strstr(err, "unknown command /dance"));
  assert_int_equal(parse("/"), -EINVAL);
}

static void test_too_long(void **state) {
  static char big[CHAT_MAX_BODY + 20];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(parse(big), -EINVAL);
  assert_non_null(strstr(err, "too long"));
  memcpy(big, "/msg bob ", 9);
  assert_int_equal(parse(big), -EINVAL);
  big[9 + CHAT_MAX_BODY] = '\0';
  assert_int_equal(parse(big), 0);
  assert_int_equal(cmd.text_len, CHAT_MAX_BODY);
}

static void test_query_history_reconnect(void **state) {
  assert_int_equal(parse("/query bob"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_QUERY);
  assert_string_equal(cmd.name, "bob");
  assert_false(cmd.is_group);
  assert_int_equal(parse("/query #dev"), 0);
  assert_string_equal(cmd.name, "dev");
  assert_true(cmd.is_group);
  assert_int_equal(parse("/query"), 0);
  assert_null(cmd.name);
  assert_int_equal(parse("/query Bob"), -EINVAL);
  assert_int_equal(parse("/query bob carol"), -EINVAL);
  assert_int_equal(parse("/history bob"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_HISTORY);
  assert_int_equal(cmd.count, 0);
  assert_int_equal(parse("/history #dev 5"), 0);
  assert_true(cmd.is_group);
  assert_int_equal(cmd.count, 5);
  assert_int_equal(parse("/history bob 0"), -EINVAL);
  assert_int_equal(parse("/history bob many"), -EINVAL);
  assert_int_equal(parse("/history"), -EINVAL);
  assert_int_equal(parse("/reconnect"), 0);
  assert_int_equal(cmd.kind, CHAT_CMD_RECONNECT);
  assert_int_equal(parse("/reconnect now"), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg),
      cmocka_unit_test(test_say_and_empty),
      cmocka_unit_test(test_contacts_commands),
      cmocka_unit_test(test_status),
      cmocka_unit_test(test_groups),
      cmocka_unit_test(test_wait_quit_help_unknown),
      cmocka_unit_test(test_too_long),
      cmocka_unit_test(test_query_history_reconnect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
