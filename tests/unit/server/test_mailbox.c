/* test_mailbox.c -- order by seq, the (to, from, msg_id) and (from,
 * msg_id) indexes, removal, window accounting and pins. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox.h"

typedef struct env {
  chat__registry_t r;
  chat__mailbox_t mb;
  chat__user_t *a, *b, *c;
} env_t;

static int setup(void **state) {
  env_t *e = calloc(1, sizeof(*e));
  chat__registry_init(&e->r);
  chat__mailbox_init(&e->mb);
  chat__registry_add(&e->r, "alice", "h", &e->a);
  chat__registry_add(&e->r, "bob", "h", &e->b);
  chat__registry_add(&e->r, "carol", "h", &e->c);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env_t *e = *state;
  chat__mailbox_free(&e->mb);
  chat__registry_free(&e->r);
  free(e);
  return 0;
}

static chat__held_t *add(env_t *e, chat__user_t *to, chat__user_t *from,
                         const char *id, uint64_t seq) {
  chat__held_t *h;
  assert_int_equal(
      chat__mailbox_add(&e->mb, to, from, NULL, id, "body", 4, 40, seq, 1, &h),
      0);
  return h;
}

static void test_order_and_index(void **state) {
  env_t *e = *state;
  add(e, e->b, e->a, "m1", 10);
  add(e, e->b, e->c, "m1", 12); /* other sender: fine */
  add(e, e->b, e->a, "m0", 11); /* out of order: sorted */
  chat__held_t *h;
  assert_int_equal(
      chat__mailbox_add(&e->mb, e->b, e->a, NULL, "m1", "x", 1, 1, 13, 1, &h),
      -EEXIST);
  /* a 1:1 msg_id is the sender's, whoever it went to */
  assert_int_equal(
      chat__mailbox_add(&e->mb, e->c, e->a, NULL, "m1", "x", 1, 1, 14, 1, &h),
      -EEXIST);
  assert_ptr_equal(chat__mailbox_find_sent(&e->mb, e->a, "m1"),
                   chat__mailbox_find(&e->mb, e->b, e->a, "m1"));
  uint64_t want[] = {10, 11, 12};
  int i = 0;
  for (h = e->b->mb_head; h; h = h->next)
    assert_int_equal(h->seq, want[i++]);
  assert_int_equal(i, 3);
  assert_int_equal(e->b->mb_count, 3);
  h = chat__mailbox_find(&e->mb, e->b, e->c, "m1");
  assert_non_null(h);
  assert_string_equal(chat__held_msg_id(h), "m1");
  chat__mailbox_remove(&e->mb, h);
  assert_null(chat__mailbox_find(&e->mb, e->b, e->c, "m1"));
  assert_int_equal(e->mb.count, 2);
}

static void test_window_and_pins(void **state) {
  env_t *e = *state;
  chat__held_t *h1 = add(e, e->b, e->a, "m1", 1);
  chat__held_t *h2 = add(e, e->b, e->a, "m2", 2);
  assert_int_equal(e->b->mb_npushed, 2);
  assert_int_equal(e->b->mb_unacked_bytes, 80); /* wire lengths */
  assert_int_equal(e->a->pins, 2);
  assert_int_equal(e->b->pins, 2);
  chat__mailbox_remove(&e->mb, h1);
  assert_int_equal(e->b->mb_npushed, 1);
  assert_int_equal(e->b->mb_unacked_bytes, 40);
  chat__mailbox_remove(&e->mb, h2);
  assert_int_equal(e->a->pins, 0);
  assert_int_equal(e->b->mb_unacked_bytes, 0);
  assert_null(e->b->mb_head);
  assert_null(chat__mailbox_find_sent(&e->mb, e->a, "m1"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {T(test_order_and_index),
                                     T(test_window_and_pins)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
