/* test_conv.c -- conversations: where plain lines go, unread counts, group
 * names for completion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "conv.h"

static void test_last_conversation_without_query(void **state) {
  chat_convs_t cv;
  chat_convs_init(&cv);
  assert_string_equal(cv.cur, "");
  /* The first one to write becomes the conversation... */
  assert_int_equal(chat_convs_received(&cv, "bob", 0), 0);
  assert_string_equal(cv.cur, "bob");
  /* ...others count as unread... */
  assert_int_equal(chat_convs_received(&cv, "carol", 0), 1);
  assert_int_equal(chat_convs_unread(&cv), 1);
  /* ...and sending moves it (CLI.md's "last conversation"). */
  chat_convs_sent(&cv, "carol", 0);
  assert_string_equal(cv.cur, "carol");
  assert_int_equal(chat_convs_unread(&cv), 0);
  chat_convs_free(&cv);
}

/* A plain line sends to the current conversation, naming it by its own
 * buffer: that must leave it current (it was copied onto itself, and the
 * next plain line found no conversation). */
static void test_sent_to_current_by_its_own_name(void **state) {
  chat_convs_t cv;
  chat_convs_init(&cv);
  chat_convs_received(&cv, "alice", 0);
  chat_convs_sent(&cv, cv.cur, cv.cur_is_group);
  assert_string_equal(cv.cur, "alice");
  chat_convs_received(&cv, "dev", 1);
  chat_convs_query(&cv, "dev", 1);
  chat_convs_query(&cv, cv.cur, cv.cur_is_group);
  assert_string_equal(cv.cur, "dev");
  chat_convs_free(&cv);
}

static void test_query_pins(void **state) {
  chat_convs_t cv;
  chat_convs_init(&cv);
  chat_convs_received(&cv, "bob", 0);
  chat_convs_received(&cv, "dev", 1);
  assert_int_equal(chat_convs_unread(&cv), 1);
  assert_int_equal(chat_convs_query(&cv, "dev", 1), 0);
  assert_string_equal(cv.cur, "dev");
  assert_true(cv.cur_is_group);
  assert_int_equal(chat_convs_unread(&cv), 0);
  /* /msg elsewhere does not move a chosen conversation. */
  chat_convs_sent(&cv, "carol", 0);
  assert_string_equal(cv.cur, "dev");
  /* A user and a group of the same name are two conversations. */
  assert_int_equal(chat_convs_received(&cv, "dev", 0), 1);
  assert_int_equal(chat_convs_received(&cv, "dev", 1), 0);
  chat_convs_free(&cv);
}

static void test_groups(void **state) {
  chat_convs_t cv;
  chat_convs_init(&cv);
  chat_convs_group_add(&cv, "dev");
  chat_convs_group_add(&cv, "ops");
  chat_convs_group_add(&cv, "dev");
  assert_int_equal(cv.ngroups, 2);
  chat_convs_group_remove(&cv, "dev");
  assert_int_equal(cv.ngroups, 1);
  assert_string_equal(cv.groups[0], "ops");
  for (int i = 0; i < 50; i++) {
    char g[8];
    snprintf(g, sizeof(g), "g%d", i);
    chat_convs_group_add(&cv, g);
  }
  assert_int_equal(cv.ngroups, 51);
  chat_convs_free(&cv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_last_conversation_without_query),
      cmocka_unit_test(test_sent_to_current_by_its_own_name),
      cmocka_unit_test(test_query_pins),
      cmocka_unit_test(test_groups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
