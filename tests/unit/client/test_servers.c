/* test_servers.c -- the --server list (servers.c): parsing and its usage
 * errors, and the rotation: in order at the start, on at once within a
 * round, a jittered backoff between rounds, the node after a lost one
 * first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "servers.h"

static chat_servers_t parsed(const char *list) {
  chat_servers_t s;
  char why[512];
  if (chat_servers_parse(&s, list, why, sizeof(why)) != 0)
    fail_msg("'%s' did not parse: %s", list, why);
  return s;
}

static void assert_at(const chat_servers_t *s, const char *host, int port) {
  assert_string_equal(chat_servers_current(s)->host, host);
  assert_int_equal(chat_servers_current(s)->port, port);
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_forms(void **state) {
  chat_servers_t s = parsed("127.0.0.1:7700");
  char name[CHAT_SERVERS_NAME_MAX];
  assert_int_equal(s.n, 1);
  assert_at(&s, "127.0.0.1", 7700);

  s = parsed("10.0.0.1:1, [::1]:7701 ,chat.example.org:65535");
  assert_int_equal(s.n, 3);
  assert_string_equal(s.addr[1].host, "::1"); /* no brackets kept */
  assert_int_equal(s.addr[1].port, 7701);
  assert_string_equal(s.addr[2].host, "chat.example.org");
  assert_string_equal(chat_servers_name(&s.addr[1], name, sizeof(name)),
                      "[::1]:7701");
  assert_string_equal(chat_servers_name(&s.addr[2], name, sizeof(name)),
                      "chat.example.org:65535");
  assert_at(&s, "10.0.0.1", 1); /* the first is tried first */
  assert_int_equal(chat_servers_round_over(&s), 0);
}

/* Each bad list: its code, and the usage error names the bad entry. */
static void test_parse_errors(void **state) {
  static const struct {
    const char *list;
    int rc;
    const char *named;
  } bad[] = {
      {"", -EINVAL, "empty entry"},
      {"a:1,", -EINVAL, "empty entry"},
      {"a:1,,b:2", -EINVAL, "empty entry"},
      {"a:1, ,b:2", -EINVAL, "empty entry"},
      {"a:1,nport", -EINVAL, "'nport'"},
      {"a:1,b:99999", -EINVAL, "'b:99999'"},
      {"a:1,b:0", -EINVAL, "'b:0'"},
      {"::1:7700", -EINVAL, "'::1:7700'"}, /* IPv6 needs its brackets */
      {"[::1]7700", -EINVAL, "'[::1]7700'"},
      {"a b:1", -EINVAL, "'a b:1'"},
      {"a:1,b:2,A:1", -EEXIST, "A:1 twice"}, /* names compare without case */
      {"[::1]:5,[::1]:5", -EEXIST, "[::1]:5 twice"},
  };
  chat_servers_t s;
  char why[512];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = chat_servers_parse(&s, bad[i].list, why, sizeof(why));
    if (rc != bad[i].rc || strstr(why, bad[i].named) == NULL)
      fail_msg("'%s': %d '%s', wanted %d naming %s", bad[i].list, rc, why,
               bad[i].rc, bad[i].named);
    assert_int_equal(s.n, 0);
  }
  /* why may be NULL; the code still says it */
  assert_int_equal(chat_servers_parse(&s, "x", NULL, 0), -EINVAL);
  assert_int_equal(chat_servers_parse(&s, NULL, why, sizeof(why)), -EINVAL);
  /* A host longer than any is named by its start. */
  {
    char list[600];
    memset(list, 'h', 400);
    strcpy(list + 400, ":1");
    assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "too long"));
  }
}

static void test_parse_bound(void **state) {
  char list[1024];
  size_t len = 0;
  chat_servers_t s;
  char why[256];
  for (int i = 0; i < CHAT_SERVERS_MAX; i++)
    len += (size_t)snprintf(list + len, sizeof(list) - len, "%sn%d:%d",
                            i ? "," : "", i, 7700 + i);
  assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)), 0);
  assert_int_equal(s.n, CHAT_SERVERS_MAX);
  snprintf(list + len, sizeof(list) - len, ",one-more:1");
  assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)), -E2BIG);
  assert_non_null(strstr(why, "at most 16"));
}

/* ---- the rotation ------------------------------------------------------- */

static void test_start_in_order_at_once(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_next(&s, 0, 12345), 0); /* a failed */
  assert_at(&s, "b", 2);
  assert_int_equal(chat_servers_round_over(&s), 0);
  assert_int_equal(chat_servers_next(&s, 0, 12345), 0); /* b failed */
  assert_at(&s, "c", 3);
  /* c is the last of the round: before a first login, that is the end */
  assert_int_equal(chat_servers_round_over(&s), 1);
  /* after one, a backoff, then a new round from a */
  assert_int_equal(chat_servers_next(&s, 0, 0), 500);
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_round_over(&s), 0);
}

static void test_loss_starts_after_the_lost(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  int64_t d;
  chat_servers_next(&s, 0, 0); /* a refused */
  chat_servers_up(&s, 0);      /* logged in at b */
  assert_at(&s, "b", 2);
  /* b dies: c first, after the jittered shortest step */
  d = chat_servers_next(&s, 1, 777);
  assert_true(d >= 500 && d <= 1000);
  assert_at(&s, "c", 3);
  assert_int_equal(chat_servers_next(&s, 0, 1), 0); /* c failed: a now */
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_next(&s, 0, 1), 0); /* a failed: b last */
  assert_at(&s, "b", 2);
  assert_int_equal(chat_servers_round_over(&s), 1);
  /* the whole round failed: the next step, 1 to 2 s, then c again */
  d = chat_servers_next(&s, 0, 777);
  assert_true(d >= 1000 && d <= 2000);
  assert_at(&s, "c", 3);
}

/* Round after failed round the delay doubles up to 30 s; any jitter stays
 * in [cap/2, cap]. */
static void test_backoff_grows_and_caps(void **state) {
  chat_servers_t s = parsed("a:1,b:2");
  int64_t cap = 1000;
  chat_servers_up(&s, 0);
  for (int round = 0; round < 12; round++) {
    uint32_t rnd = (uint32_t)round * 2654435761u;
    int64_t d = chat_servers_next(&s, round == 0, rnd);
    assert_int_equal(d, chat_backoff_delay((unsigned)round, rnd));
    assert_true(d >= cap / 2 && d <= cap);
    assert_int_equal(chat_servers_next(&s, 0, rnd), 0); /* the other */
    cap = cap * 2 > 30000 ? 30000 : cap * 2;
  }
}

/* A login resets the step, unless the node is not to be hurried back to;
 * /reconnect resets it too. */
static void test_up_and_reset(void **state) {
  chat_servers_t s = parsed("a:1");
  chat_servers_up(&s, 0);
  chat_servers_next(&s, 1, 0); /* 500 */
  chat_servers_next(&s, 0, 0); /* 1000 */
  assert_int_equal(chat_servers_next(&s, 0, 0), 2000);
  chat_servers_up(&s, 1); /* cut for an oversized line: keeps growing */
  assert_int_equal(chat_servers_next(&s, 1, 0), 4000);
  chat_servers_up(&s, 0);
  assert_int_equal(chat_servers_next(&s, 1, 0), 500);
  chat_servers_next(&s, 0, 0);
  chat_servers_reset_backoff(&s);
  assert_int_equal(chat_servers_next(&s, 0, 0), 500);
}

/* One address behaves as the single server always did: every end, lost
 * or failed, waits chat_backoff_delay(attempt++), reset by a login. */
static void test_one_address_as_before(void **state) {
  chat_servers_t s = parsed("only:7700");
  unsigned attempt = 0;
  chat_servers_up(&s, 0);
  for (int i = 0; i < 8; i++) {
    uint32_t rnd = 1000u + (uint32_t)i * 40503u;
    assert_int_equal(chat_servers_next(&s, i == 0, rnd),
                     chat_backoff_delay(attempt++, rnd));
    assert_at(&s, "only", 7700);
    assert_int_equal(chat_servers_round_over(&s), 1);
  }
}

static void test_remove(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  chat_servers_remove(&s, 1);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.addr[1].host, "c");
  chat_servers_remove(&s, 0);
  chat_servers_remove(&s, 0); /* never the last one */
  assert_int_equal(s.n, 1);
  assert_at(&s, "c", 3);
  chat_servers_remove(&s, 5);
  assert_int_equal(s.n, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_forms),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_bound),
      cmocka_unit_test(test_start_in_order_at_once),
      cmocka_unit_test(test_loss_starts_after_the_lost),
      cmocka_unit_test(test_backoff_grows_and_caps),
      cmocka_unit_test(test_up_and_reset),
      cmocka_unit_test(test_one_address_as_before),
      cmocka_unit_test(test_remove),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
