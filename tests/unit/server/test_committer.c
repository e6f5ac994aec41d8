/* test_committer.c -- group commit on a real libuv loop and a file database:
 * callbacks after durability, one batch per turn, failures and recovery,
 * synchronous flush, and a loop that exits when nothing is pending. The
 * throughput and latency reports are in test_committer_perf.c. */
#include "committer_fixture.h"

static void add_users(fx_t *f, const char *prefix, int n) {
  char name[40];
  int i;

  for (i = 0; i < n; i++) {
    chat__store_op_t op;

    snprintf(name, sizeof(name), "%s%d", prefix, i);
    op = user_op(name); /* name is reused: the committer must copy it */
    assert_int_equal(chat__committer_add(f->c, &op), 0);
  }
}

/* What a second connection to the same file sees (committed data only). */
static int count_cb(void *ctx, const char *x, const char *y) {
  (*(int *)ctx)++;
  return 0;
}

static int committed_users(const fx_t *f) {
  chat__store_t *s = NULL;
  int n = 0;

  assert_int_equal(chat__store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat__store_load_users(s, count_cb, &n), 0);
  chat__store_close(s);
  return n;
}

/* A callback's record: how often, with what, and what was on disk then. */
typedef struct seen {
  fx_t *f;
  int calls;
  int status;
  int users_on_disk;
  int order; /* position among all callbacks fired */
} seen_t;

static int fired;

static void on_done(void *arg, int status) {
  seen_t *s = arg;

  s->calls++;
  s->status = status;
  s->order = ++fired;
  if (s->f != NULL)
    s->users_on_disk = committed_users(s->f);
}

/* ---- tests -------------------------------------------------------------- */

static void test_callback_after_commit(void **state) {
  fx_t *f = *state;
  seen_t s = {.f = f};

  add_users(f, "u", 3);
  assert_int_equal(chat__committer_then(f->c, on_done, &s), 0);
  assert_int_equal(chat__committer_pending(f->c), 3);
  assert_int_equal(s.calls, 0); /* never from inside then() */
  assert_int_equal(committed_users(f), 0);
  run_until_idle(f);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  assert_int_equal(s.users_on_disk, 3); /* visible when the callback ran */
  assert_int_equal(chat__committer_pending(f->c), 0);
  assert_int_equal(stats(f).batches, 1);
  assert_int_equal(stats(f).ops, 3);
}

static void test_nothing_pending_fires_later(void **state) {
  fx_t *f = *state;
  seen_t a = {0}, b = {0};

  assert_int_equal(chat__committer_then(f->c, on_done, &a), 0);
  assert_int_equal(chat__committer_then(f->c, on_done, &b), 0);
  assert_int_equal(a.calls, 0);
  run_until_idle(f);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(b.calls, 1);
  assert_true(a.order < b.order);
  assert_int_equal(stats(f).batches, 0); /* no transaction for nothing */
}

static void test_idle_committer_lets_loop_exit(void **state) {
  fx_t *f = *state;

  assert_int_equal(uv_loop_alive(&f->loop), 0);
  run_until_idle(f);
  add_users(f, "x", 1);
  assert_int_equal(uv_loop_alive(&f->loop), 1);
  run_until_idle(f);
  assert_int_equal(uv_loop_alive(&f->loop), 0);
  assert_int_equal(committed_users(f), 1);
}

/* Ops added in one turn, from a timer, make one batch; the commit must not
 * wait for the poll phase to time out. */
typedef struct burst {
  fx_t *f;
  uv_timer_t timer;
  uv_timer_t hold; /* long timer that would stall a blocking poll */
  seen_t seen;
} burst_t;

static void on_burst_done(void *arg, int status) {
  burst_t *b = arg;

  on_done(&b->seen, status);
  uv_close((uv_handle_t *)&b->hold, NULL);
}

static void on_burst(uv_timer_t *t) {
  burst_t *b = t->data;

  add_users(b->f, "burst", 1000);
  assert_int_equal(chat__committer_then(b->f->c, on_burst_done, b), 0);
  uv_close((uv_handle_t *)&b->timer, NULL);
}

static void test_one_batch_per_turn(void **state) {
  fx_t *f = *state;
  burst_t b = {.f = f, .seen = {.f = f}};
  uint64_t t0;

  assert_int_equal(uv_timer_init(&f->loop, &b.timer), 0);
  assert_int_equal(uv_timer_init(&f->loop, &b.hold), 0);
  b.timer.data = &b;
  assert_int_equal(uv_timer_start(&b.timer, on_burst, 0, 0), 0);
  assert_int_equal(uv_timer_start(&b.hold, on_deadline, 50000, 0), 0);
  uv_update_time(&f->loop);
  t0 = uv_now(&f->loop);
  run_until_idle(f);
  assert_true(uv_now(&f->loop) - t0 < 50000);
  assert_int_equal(b.seen.calls, 1);
  assert_int_equal(b.seen.status, 0);
  assert_int_equal(b.seen.users_on_disk, 1000);
  assert_int_equal(stats(f).batches, 1);
  assert_int_equal(stats(f).max_batch, 1000);
}

/* While a batch is in flight, everything added meanwhile forms the next. */
static void test_group_commit_while_in_flight(void **state) {
  fx_t *f = *state;
  seen_t first = {.f = f}, during = {.f = f}, last = {.f = f};

  add_users(f, "a", 1);
  assert_int_equal(chat__committer_then(f->c, on_done, &first), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* handed over */
  /* The loop is not running, so the batch cannot be reported done yet. */
  assert_int_equal(chat__committer_pending(f->c), 1);
  /* Nothing open: this waits for the batch in flight. */
  assert_int_equal(chat__committer_then(f->c, on_done, &during), 0);
  add_users(f, "b", 100);
  assert_int_equal(chat__committer_then(f->c, on_done, &last), 0);
  assert_int_equal(chat__committer_pending(f->c), 101);
  run_until_idle(f);
  assert_int_equal(first.status, 0);
  /* The second batch may already be on disk when the first's callbacks
   * run (test_next_batch_overlaps_callbacks). */
  assert_true(first.users_on_disk >= 1);
  assert_int_equal(during.calls, 1);
  assert_true(during.users_on_disk >= 1);
  assert_int_equal(last.users_on_disk, 101);
  assert_true(first.order < during.order && during.order < last.order);
  assert_int_equal(stats(f).batches, 2);
  assert_int_equal(stats(f).max_batch, 100);
}

/* The next batch goes to the store thread before the callbacks of the one
 * before it run, so the replies they send and the next commit overlap: a
 * callback of the first batch sees the second become durable. */
typedef struct overlap {
  fx_t *f;
  int saw;
} overlap_t;

static void on_first_wait_second(void *arg, int status) {
  overlap_t *o = arg;
  uint64_t deadline = uv_hrtime() + 10 * (uint64_t)1000000000;

  assert_int_equal(status, 0);
  while ((o->saw = committed_users(o->f)) < 101 && uv_hrtime() < deadline)
    uv_sleep(1);
}

static void test_next_batch_overlaps_callbacks(void **state) {
  fx_t *f = *state;
  overlap_t o = {.f = f};

  add_users(f, "a", 1);
  assert_int_equal(chat__committer_then(f->c, on_first_wait_second, &o), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* handed over */
  add_users(f, "b", 100);
  run_until_idle(f);
  assert_int_equal(o.saw, 101);
  assert_int_equal(stats(f).batches, 2);
}

/* Idle for CHAT_COMMITTER_TRIM_MS, the committer has the store thread give
 * the page cache back (an idle node keeps no burst's pages). */
static void on_trim_poll(uv_timer_t *t) {
  fx_t *f = t->data;

  if (stats(f).trims >= 1)
    uv_close((uv_handle_t *)t, NULL);
}

static void test_idle_gives_cache_back(void **state) {
  fx_t *f = *state;
  static char body[1024];
  uv_timer_t poll;
  size_t before, after;

  memset(body, 'x', sizeof(body));
  for (uint64_t seq = 1; seq <= 2000; seq++) {
    chat__store_op_t op = msg_op(seq, body, sizeof(body));
    assert_int_equal(chat__committer_add(f->c, &op), 0);
  }
  run_until_idle(f); /* the trim timer keeps no loop alive */
  assert_int_equal(stats(f).trims, 0);
  before = chat__store_cache_bytes(f->store);
  assert_true(before > (size_t)1 << 20);
  assert_int_equal(uv_timer_init(&f->loop, &poll), 0);
  poll.data = f;
  assert_int_equal(uv_timer_start(&poll, on_trim_poll, 10, 10), 0);
  run_until_idle(f);
  assert_int_equal(stats(f).trims, 1);
  after = chat__store_cache_bytes(f->store);
  assert_true(after < before / 4);
}

static void test_failed_batch_then_recovery(void **state) {
  fx_t *f = *state;
  seen_t before = {.f = f}, failed = {.f = f}, ok = {.f = f};
  seen_t full = {.f = f}, ok2 = {.f = f};
  static char body[4096];
  int i;

  /* Registered with nothing pending: not affected by the failure. */
  assert_int_equal(chat__committer_then(f->c, on_done, &before), 0);
  add_users(f, "lost", 5);
  assert_int_equal(chat__committer_then(f->c, on_done, &failed), 0);
  chat__store_fail_next(f->store, -EIO);
  run_until_idle(f);
  assert_int_equal(before.status, 0);
  assert_int_equal(failed.calls, 1);
  assert_int_equal(failed.status, -EIO);
  assert_int_equal(failed.users_on_disk, 0);

  add_users(f, "kept", 2);
  assert_int_equal(chat__committer_then(f->c, on_done, &ok), 0);
  run_until_idle(f);
  assert_int_equal(ok.status, 0);
  assert_int_equal(ok.users_on_disk, 2);

  /* A real fault: the database may not grow. Then space comes back. */
  assert_int_equal(chat__store_limit_pages(f->store, 1), 0);
  memset(body, 'z', sizeof(body));
  for (i = 0; i < 50; i++) {
    chat__store_op_t op = msg_op((uint64_t)i + 1, body, sizeof(body));

    assert_int_equal(chat__committer_add(f->c, &op), 0);
  }
  assert_int_equal(chat__committer_then(f->c, on_done, &full), 0);
  run_until_idle(f);
  assert_int_equal(full.status, -ENOSPC);
  assert_int_equal(committed_msgs(f), 0);
  assert_int_equal(chat__store_limit_pages(f->store, 1u << 30), 0);
  {
    chat__store_op_t op = msg_op(100, body, sizeof(body));

    assert_int_equal(chat__committer_add(f->c, &op), 0);
  }
  assert_int_equal(chat__committer_then(f->c, on_done, &ok2), 0);
  run_until_idle(f);
  assert_int_equal(ok2.status, 0);
  assert_int_equal(committed_msgs(f), 1);
  assert_int_equal(stats(f).batches, 4);
  assert_int_equal(stats(f).failed_batches, 2);
  assert_int_equal(stats(f).ops, 3);
}

/* A callback that adds more work, as a server does after a commit. */
typedef struct chain {
  fx_t *f;
  int step;
  int statuses[3];
} chain_t;

static void on_chain(void *arg, int status) {
  chain_t *ch = arg;

  ch->statuses[ch->step++] = status;
  if (ch->step < 3) {
    char prefix[32];

    snprintf(prefix, sizeof(prefix), "chain%d-", ch->step);
    add_users(ch->f, prefix, 10);
    assert_int_equal(chat__committer_then(ch->f->c, on_chain, ch), 0);
  }
}

static void test_callbacks_add_more(void **state) {
  fx_t *f = *state;
  chain_t ch = {.f = f};

  add_users(f, "chain0-", 10);
  assert_int_equal(chat__committer_then(f->c, on_chain, &ch), 0);
  run_until_idle(f);
  assert_int_equal(ch.step, 3);
  assert_int_equal(ch.statuses[2], 0);
  assert_int_equal(committed_users(f), 30);
  assert_int_equal(stats(f).batches, 3);
}

static void test_flush_sync(void **state) {
  fx_t *f = *state;
  seen_t flying = {.f = f}, rest = {.f = f};
  chain_t ch = {.f = f, .step = 1};

  add_users(f, "f", 50);
  assert_int_equal(chat__committer_then(f->c, on_done, &flying), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* 50 in flight */
  add_users(f, "g", 20);
  assert_int_equal(chat__committer_then(f->c, on_done, &rest), 0);
  /* This one adds 10 more from inside the flush. */
  assert_int_equal(chat__committer_then(f->c, on_chain, &ch), 0);
  assert_int_equal(chat__committer_flush_sync(f->c), 0);
  assert_int_equal(flying.status, 0);
  assert_int_equal(flying.users_on_disk, 50);
  assert_int_equal(rest.calls, 1);
  assert_int_equal(rest.users_on_disk, 70);
  assert_int_equal(ch.step, 3);
  assert_int_equal(chat__committer_pending(f->c), 0);
  assert_int_equal(committed_users(f), 80);
  /* The work request still completes on the loop, harmlessly. */
  run_until_idle(f);
  assert_int_equal(flying.calls, 1);
  /* The committer still works after a flush. */
  add_users(f, "h", 1);
  run_until_idle(f);
  assert_int_equal(committed_users(f), 81);
}

static void test_flush_sync_reports_failure(void **state) {
  fx_t *f = *state;
  seen_t s = {.f = f};

  assert_int_equal(chat__committer_flush_sync(f->c), 0); /* nothing to do */
  add_users(f, "x", 2);
  assert_int_equal(chat__committer_then(f->c, on_done, &s), 0);
  chat__store_fail_next(f->store, -EROFS);
  assert_int_equal(chat__committer_flush_sync(f->c), -EROFS);
  assert_int_equal(s.status, -EROFS);
  assert_int_equal(committed_users(f), 0);
}

static void test_free_flushes_pending(void **state) {
  fx_t *f = *state;
  seen_t s = {0};

  add_users(f, "p", 4);
  assert_int_equal(chat__committer_then(f->c, on_done, &s), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1);
  add_users(f, "q", 4);
  chat__committer_free(f->c); /* teardown then frees NULL */
  f->c = NULL;
  assert_int_equal(s.calls, 1);
  assert_int_equal(committed_users(f), 8);
}

static void test_rejects_invalid(void **state) {
  fx_t *f = *state;
  chat__store_op_t bad = user_op(NULL);

  add_users(f, "v", 1);
  assert_int_equal(chat__committer_add(f->c, &bad), -EINVAL);
  bad = msg_op(0, "x", 1); /* seq 0 */
  assert_int_equal(chat__committer_add(f->c, &bad), -EINVAL);
  bad = msg_op(1, NULL, 5); /* a length with no body */
  assert_int_equal(chat__committer_add(f->c, &bad), -EINVAL);
  bad = user_op("w");
  bad.kind = (chat__store_op_kind_t)77;
  assert_int_equal(chat__committer_add(f->c, &bad), -EINVAL);
  assert_int_equal(chat__committer_pending(f->c), 1);
  run_until_idle(f);
  assert_int_equal(stats(f).failed_batches, 0);
  assert_int_equal(committed_users(f), 1);
}

static int check_copy(void *ctx, const chat__stored_msg_t *m) {
  static const char want[] = "a\0b\"c'\xe2\x82\xac";

  assert_int_equal(m->seq, 7);
  assert_string_equal(m->to, "bob");
  assert_string_equal(m->group, "grp");
  assert_int_equal(m->body_len, sizeof(want) - 1);
  assert_memory_equal(m->body, want, sizeof(want) - 1);
  (*(int *)ctx)++;
  return 0;
}

static void test_copies_body_exactly(void **state) {
  fx_t *f = *state;
  char body[] = "a\0b\"c'\xe2\x82\xac";
  char to[8] = "bob";
  chat__store_op_t op = msg_op(7, body, sizeof(body) - 1);
  chat__store_t *s = NULL;
  int n = 0;

  op.msg.to = to;
  op.msg.group = "grp";
  assert_int_equal(chat__committer_add(f->c, &op), 0);
  memset(body, 'X', sizeof(body));
  memcpy(to, "zzz", 4);
  run_until_idle(f);
  assert_int_equal(chat__store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat__store_load_messages(s, check_copy, &n), 0);
  assert_int_equal(n, 1);
  chat__store_close(s);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_callback_after_commit),
      T(test_nothing_pending_fires_later),
      T(test_idle_committer_lets_loop_exit),
      T(test_one_batch_per_turn),
      T(test_group_commit_while_in_flight),
      T(test_next_batch_overlaps_callbacks),
      T(test_idle_gives_cache_back),
      T(test_failed_batch_then_recovery),
      T(test_callbacks_add_more),
      T(test_flush_sync),
      T(test_flush_sync_reports_failure),
      T(test_free_flushes_pending),
      T(test_rejects_invalid),
      T(test_copies_body_exactly),
  };
#undef T

  return cmocka_run_group_tests(tests, NULL, NULL);
}
