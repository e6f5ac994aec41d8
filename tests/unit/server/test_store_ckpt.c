/* test_store_ckpt.c -- WAL checkpoints on their own thread (store_ckpt.c):
 * they run once the log passes its limit, the log stays bounded while
 * commits keep coming, nothing committed is lost across them, and stores
 * without a WAL have no thread. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_ckpt.h"
#include "tmpdb.h"

#define WAIT_MS 10000

/* Commits n batches of per messages of 1 KiB to "bob", seqs from *seq. */
static void put_batches(chat__store_t *s, uint64_t *seq, int n, int per) {
  static char body[1025];
  chat__store_op_t *ops = calloc((size_t)per, sizeof(*ops));
  char (*ids)[24] = calloc((size_t)per, sizeof(*ids));

  assert_non_null(ops);
  assert_non_null(ids);
  memset(body, 'x', sizeof(body) - 1);
  for (int b = 0; b < n; b++) {
    for (int i = 0; i < per; i++) {
      chat__store_op_t *op = &ops[i];
      snprintf(ids[i], sizeof(ids[i]), "m%llu", (unsigned long long)*seq);
      op->kind = CHAT_STORE_PUT_MSG;
      op->msg.seq = (*seq)++;
      op->msg.to = "bob";
      op->msg.from = "alice";
      op->msg.msg_id = ids[i];
      op->msg.body = body;
      op->msg.body_len = sizeof(body) - 1;
      op->msg.ts = 1700000000000LL;
    }
    assert_int_equal(chat__store_apply(s, ops, (size_t)per), 0);
  }
  free(ids);
  free(ops);
}

static size_t count_held(chat__store_t *s) {
  size_t total = 0, n;
  uint64_t after = 0;
  int more = 1;

  while (more) {
    chat__stored_msg_t *m = NULL;
    assert_int_equal(chat__store_get_held(s, "bob", after, 1000, &m, &n,
                                          &more),
                     0);
    for (size_t i = 0; i < n; i++) {
      assert_true(m[i].seq > after); /* in order, each once */
      after = m[i].seq;
    }
    total += n;
    free(m);
  }
  return total;
}

static void test_checkpoints_on_their_thread(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  chat__ckpt_stats_t st;
  uint64_t seq = 1;

  (void)state;
  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  chat__ckpt_t *c = chat__store_checkpointer(s);
  assert_non_null(c);
  chat__ckpt_set_limits(c, 32, 100000);
  put_batches(s, &seq, 4, 50); /* about 50 pages a batch */
  assert_int_equal(chat__ckpt_wait(c, 1, WAIT_MS), 0);
  chat__ckpt_stats(c, &st);
  assert_true(st.runs >= 1);
  assert_int_equal(st.failed, 0);
  assert_int_equal(st.inline_runs, 0); /* the writer did none itself */
  chat__store_close(s);

  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  assert_int_equal(count_held(s), 200);
  chat__store_close(s);
  tmpdb_remove(&t);
}

/* Under a steady stream of commits the thread's runs may never find the
 * log fully copied when a commit starts, and only then does the log start
 * over. The writer's own catch-up past the hard limit bounds it: here the
 * thread is never woken, as if it never caught up. */
static void test_log_stays_bounded(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  chat__ckpt_stats_t st;
  uint64_t seq = 1;
  off_t wal_size;
  char wal[128];
  FILE *f;

  (void)state;
  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  chat__ckpt_t *c = chat__store_checkpointer(s);
  assert_non_null(c);
  chat__ckpt_set_limits(c, 100000, 64);
  put_batches(s, &seq, 200, 5); /* 1,000 messages, about 1,200 pages */
  chat__ckpt_stats(c, &st);
  assert_int_equal(st.runs, 0);
  assert_true(st.inline_runs >= 1000 / 64);
  assert_true(st.max_pages < 64 + 16); /* a commit adds about 6 pages */
  snprintf(wal, sizeof(wal), "%s-wal", t.path);
  assert_non_null(f = fopen(wal, "rb"));
  assert_int_equal(fseeko(f, 0, SEEK_END), 0);
  wal_size = ftello(f);
  fclose(f);
  assert_true(wal_size < (off_t)(64 + 16) * (4096 + 24) + 32);
  assert_int_equal(count_held(s), 1000);
  chat__store_close(s);

  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  assert_int_equal(count_held(s), 1000);
  chat__store_close(s);
  tmpdb_remove(&t);
}

static void test_no_thread_without_wal(void **state) {
  chat__store_t *s = NULL;

  (void)state;
  assert_int_equal(chat__store_open(":memory:", &s, NULL, 0), 0);
  assert_null(chat__store_checkpointer(s));
  chat__store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checkpoints_on_their_thread),
      cmocka_unit_test(test_log_stays_bounded),
      cmocka_unit_test(test_no_thread_without_wal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
