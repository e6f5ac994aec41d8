/* test_held_offline.c -- the "offline" flag of a held message read from the
 * store (chat__srv_held_offline): stored so, or accepted before the
 * recipient's session began; in cluster mode by time, where a message
 * stored in the very millisecond the login completed was stored while the
 * recipient was away (a send to a logged-in user is carried, not stored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "srv.h"

static chat__stored_msg_t msg(uint64_t seq, int64_t ts, int offline) {
  chat__stored_msg_t m;

  memset(&m, 0, sizeof(m));
  m.seq = seq;
  m.ts = ts;
  m.offline = offline;
  return m;
}

static void test_single_node_by_seq(void **state) {
  chat__srv_t srv;
  chat__user_t u;

  (void)state;
  memset(&srv, 0, sizeof(srv));
  memset(&u, 0, sizeof(u));
  u.login_seq = 100; /* the next seq when the session began */
  u.login_ms = 5000;
  chat__stored_msg_t before = msg(99, 9000, 0);
  chat__stored_msg_t after = msg(100, 1000, 0);
  chat__stored_msg_t stored = msg(200, 9000, 1);
  assert_true(chat__srv_held_offline(&srv, &u, &before));
  assert_false(chat__srv_held_offline(&srv, &u, &after));
  assert_true(chat__srv_held_offline(&srv, &u, &stored));
}

static void test_cluster_by_time(void **state) {
  chat__srv_t srv;
  chat__user_t u;
  int bus; /* only its being set matters here */

  (void)state;
  memset(&srv, 0, sizeof(srv));
  memset(&u, 0, sizeof(u));
  srv.bus = (void *)&bus;
  u.login_seq = 100;
  u.login_ms = 5000;
  chat__stored_msg_t before = msg(500, 4999, 0);
  chat__stored_msg_t same_ms = msg(500, 5000, 0);
  chat__stored_msg_t after = msg(1, 5001, 0);
  assert_true(chat__srv_held_offline(&srv, &u, &before));
  assert_true(chat__srv_held_offline(&srv, &u, &same_ms));
  assert_false(chat__srv_held_offline(&srv, &u, &after));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_node_by_seq),
      cmocka_unit_test(test_cluster_by_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
