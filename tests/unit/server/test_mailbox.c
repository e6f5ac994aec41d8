/* test_mailbox.c -- order by seq, the (to, from, msg_id) index, removal,
 * the waiting cursor and unacked accounting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox.h"

typedef struct env {
  chat_registry_t r;
  chat_mailbox_t mb;
  chat_user_t *a, *b, *c;
} env_t;

static int setup(void **state) {
  env_t *e = calloc(1, sizeof(*e));
  chat_registry_init(&e->r);
  chat_mailbox_init(&e->mb);
  chat_registry_add(&e->r, "alice", "h", &e->a);
  chat_registry_add(&e->r, "bob", "h", &e->b);
  chat_registry_add(&e->r, "carol", "h", &e->c);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env_t *e = *state;
  chat_mailbox_free(&e->mb);
  chat_registry_free(&e->r);
  free(e);
  return 0;
}

static chat_held_t *add(env_t *e, chat_user_t *to, chat_user_t *from,
                        const char *id, uint64_t seq,
                        chat_held_state_t st) {
  chat_held_t *h;
  assert_int_equal(chat_mailbox_add(&e->mb, to, from, NULL, id, "body", 4,
                                    4, seq, 1, st, &h),
                   0);
  return h;
}

static void test_order_and_index(void **state) {
  env_t *e = *state;
  add(e, e->b, e->a, "m1", 10, CHAT_HELD_STORED);
  add(e, e->b, e->c, "m1", 12, CHAT_HELD_STORED); /* other sender: fine */
  add(e, e->b, e->a, "m0", 11, CHAT_HELD_STORED); /* out of order: sorted */
  chat_held_t *h;
  assert_int_equal(chat_mailbox_add(&e->mb, e->b, e->a, NULL, "m1", "x", 1,
                                    1, 13, 1, CHAT_HELD_STORED, &h),
                   -EEXIST);
  uint64_t want[] = {10, 11, 12};
  int i = 0;
  for (h = e->b->mb_head; h; h = h->next)
    assert_int_equal(h->seq, want[i++]);
  assert_int_equal(i, 3);
  h = chat_mailbox_find(&e->mb, e->b, e->c, "m1");
  assert_non_null(h);
  assert_int_equal(h->seq, 12);
  assert_string_equal(chat_held_msg_id(h), "m1");
  assert_null(chat_mailbox_find(&e->mb, e->a, e->b, "m1"));
  chat_mailbox_remove(&e->mb, h);
  assert_null(chat_mailbox_find(&e->mb, e->b, e->c, "m1"));
  assert_int_equal(e->mb.count, 2);
  assert_int_equal(e->b->mb_tail->seq, 11);
}

static void test_waiting_cursor_and_unacked(void **state) {
  env_t *e = *state;
  chat_held_t *h1 = add(e, e->b, e->a, "m1", 1, CHAT_HELD_STORED);
  chat_held_t *h2 = add(e, e->b, e->a, "m2", 2, CHAT_HELD_STORED);
  assert_ptr_equal(e->b->mb_waiting, h1);
  chat_mailbox_set_state(h1, CHAT_HELD_PUSHED);
  assert_ptr_equal(e->b->mb_waiting, h2);
  assert_int_equal(e->b->mb_unacked_bytes, 4);
  assert_int_equal(e->b->mb_npushed, 1);
  chat_mailbox_set_state(h2, CHAT_HELD_PUSHED);
  assert_null(e->b->mb_waiting);
  chat_held_t *h3 = add(e, e->b, e->a, "m3", 3, CHAT_HELD_STORED);
  assert_ptr_equal(e->b->mb_waiting, h3);
  chat_mailbox_remove(&e->mb, h1); /* acked */
  assert_int_equal(e->b->mb_npushed, 1);
  assert_int_equal(e->b->mb_unacked_bytes, 4);
  chat_mailbox_set_state(h2, CHAT_HELD_STORED); /* session ended */
  assert_ptr_equal(e->b->mb_waiting, h2);
  assert_int_equal(e->b->mb_unacked_bytes, 0);
  chat_mailbox_remove(&e->mb, h2);
  assert_ptr_equal(e->b->mb_waiting, h3);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {T(test_order_and_index),
                                     T(test_waiting_cursor_and_unacked)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
