/* test_committer.c -- group commit on a real libuv loop and a file database:
 * callbacks after durability, one batch per turn, failures and recovery,
 * synchronous flush, and a loop that exits when nothing is pending. */
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
#include <uv.h>

#include "committer.h"

/* ---- fixture: a loop, a temp database, a store and a committer ---------- */

typedef struct fx {
  uv_loop_t loop;
  uv_timer_t deadline; /* fails the test if the loop is still busy by then */
  char dir[64];
  char path[96];
  chat_store_t *store;
  chat_committer_t *c;
} fx_t;

static void on_deadline(uv_timer_t *t) {
  fail_msg("deadline reached: the loop did not finish its work");
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(uv_timer_init(&f->loop, &f->deadline), 0);
  snprintf(f->dir, sizeof(f->dir), "/tmp/chat-committer-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/chat.db", f->dir);
  assert_int_equal(chat_store_open(f->path, &f->store, NULL, 0), 0);
  assert_int_equal(chat_committer_new(&f->loop, f->store, &f->c), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
  fx_t *f = *state;
  char p[128];
  size_t i;

  chat_committer_free(f->c);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  /* Finishes closing the committer's handles; every handle is closed. */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  chat_store_close(f->store);
  for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(f->dir), 0);
  free(f);
  return 0;
}

/* Runs the loop until it has nothing left to do, which must be soon. */
static void run_until_idle(fx_t *f) {
  assert_int_equal(uv_timer_start(&f->deadline, on_deadline, 60000, 0), 0);
  uv_unref((uv_handle_t *)&f->deadline);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  uv_timer_stop(&f->deadline);
}

static chat_store_op_t user_op(const char *name) {
  chat_store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_ADD_USER;
  op.a = name;
  op.b = "$argon2id$hash";
  return op;
}

static chat_store_op_t msg_op(uint64_t seq, const char *body, size_t len) {
  chat_store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_PUT_MSG;
  op.msg.seq = seq;
  op.msg.to = "bob";
  op.msg.from = "amy";
  op.msg.msg_id = "id";
  op.msg.body = body;
  op.msg.body_len = len;
  op.msg.ts = 1;
  return op;
}

static void add_users(fx_t *f, const char *prefix, int n) {
  char name[40];
  int i;

  for (i = 0; i < n; i++) {
    chat_store_op_t op;

    snprintf(name, sizeof(name), "%s%d", prefix, i);
    op = user_op(name); /* name is reused: the committer must copy it */
    assert_int_equal(chat_committer_add(f->c, &op), 0);
  }
}

/* What a second connection to the same file sees (committed data only). */
static int count_cb(void *ctx, const char *x, const char *y) {
  (*(int *)ctx)++;
  return 0;
}

static int committed_users(const fx_t *f) {
  chat_store_t *s = NULL;
  int n = 0;

  assert_int_equal(chat_store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat_store_load_users(s, count_cb, &n), 0);
  chat_store_close(s);
  return n;
}

static int msg_cb(void *ctx, const chat_stored_msg_t *m) {
  (*(int *)ctx)++;
  return 0;
}

static int committed_msgs(const fx_t *f) {
  chat_store_t *s = NULL;
  int n = 0;

  assert_int_equal(chat_store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat_store_load_messages(s, msg_cb, &n), 0);
  chat_store_close(s);
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

static chat_committer_stats_t stats(const fx_t *f) {
  chat_committer_stats_t st;

  chat_committer_stats(f->c, &st);
  return st;
}

/* ---- tests -------------------------------------------------------------- */

static void test_callback_after_commit(void **state) {
  fx_t *f = *state;
  seen_t s = {.f = f};

  add_users(f, "u", 3);
  assert_int_equal(chat_committer_then(f->c, on_done, &s), 0);
  assert_int_equal(chat_committer_pending(f->c), 3);
  assert_int_equal(s.calls, 0); /* never from inside then() */
  assert_int_equal(committed_users(f), 0);
  run_until_idle(f);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  assert_int_equal(s.users_on_disk, 3); /* visible when the callback ran */
  assert_int_equal(chat_committer_pending(f->c), 0);
  assert_int_equal(stats(f).batches, 1);
  assert_int_equal(stats(f).ops, 3);
}

static void test_nothing_pending_fires_later(void **state) {
  fx_t *f = *state;
  seen_t a = {0}, b = {0};

  assert_int_equal(chat_committer_then(f->c, on_done, &a), 0);
  assert_int_equal(chat_committer_then(f->c, on_done, &b), 0);
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
  assert_int_equal(chat_committer_then(b->f->c, on_burst_done, b), 0);
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
  assert_int_equal(chat_committer_then(f->c, on_done, &first), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* handed over */
  /* The loop is not running, so the batch cannot be reported done yet. */
  assert_int_equal(chat_committer_pending(f->c), 1);
  /* Nothing open: this waits for the batch in flight. */
  assert_int_equal(chat_committer_then(f->c, on_done, &during), 0);
  add_users(f, "b", 100);
  assert_int_equal(chat_committer_then(f->c, on_done, &last), 0);
  assert_int_equal(chat_committer_pending(f->c), 101);
  run_until_idle(f);
  assert_int_equal(first.status, 0);
  assert_int_equal(first.users_on_disk, 1);
  assert_int_equal(during.calls, 1);
  assert_int_equal(during.users_on_disk, 1);
  assert_int_equal(last.users_on_disk, 101);
  assert_true(first.order < during.order && during.order < last.order);
  assert_int_equal(stats(f).batches, 2);
  assert_int_equal(stats(f).max_batch, 100);
}

static void test_failed_batch_then_recovery(void **state) {
  fx_t *f = *state;
  seen_t before = {.f = f}, failed = {.f = f}, ok = {.f = f};
  seen_t full = {.f = f}, ok2 = {.f = f};
  static char body[4096];
  int i;

  /* Registered with nothing pending: not affected by the failure. */
  assert_int_equal(chat_committer_then(f->c, on_done, &before), 0);
  add_users(f, "lost", 5);
  assert_int_equal(chat_committer_then(f->c, on_done, &failed), 0);
  chat_store_fail_next(f->store, -EIO);
  run_until_idle(f);
  assert_int_equal(before.status, 0);
  assert_int_equal(failed.calls, 1);
  assert_int_equal(failed.status, -EIO);
  assert_int_equal(failed.users_on_disk, 0);

  add_users(f, "kept", 2);
  assert_int_equal(chat_committer_then(f->c, on_done, &ok), 0);
  run_until_idle(f);
  assert_int_equal(ok.status, 0);
  assert_int_equal(ok.users_on_disk, 2);

  /* A real fault: the database may not grow. Then space comes back. */
  assert_int_equal(chat_store_limit_pages(f->store, 1), 0);
  memset(body, 'z', sizeof(body));
  for (i = 0; i < 50; i++) {
    chat_store_op_t op = msg_op((uint64_t)i + 1, body, sizeof(body));

    assert_int_equal(chat_committer_add(f->c, &op), 0);
  }
  assert_int_equal(chat_committer_then(f->c, on_done, &full), 0);
  run_until_idle(f);
  assert_int_equal(full.status, -ENOSPC);
  assert_int_equal(committed_msgs(f), 0);
  assert_int_equal(chat_store_limit_pages(f->store, 1u << 30), 0);
  {
    chat_store_op_t op = msg_op(100, body, sizeof(body));

    assert_int_equal(chat_committer_add(f->c, &op), 0);
  }
  assert_int_equal(chat_committer_then(f->c, on_done, &ok2), 0);
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
    assert_int_equal(chat_committer_then(ch->f->c, on_chain, ch), 0);
  }
}

static void test_callbacks_add_more(void **state) {
  fx_t *f = *state;
  chain_t ch = {.f = f};

  add_users(f, "chain0-", 10);
  assert_int_equal(chat_committer_then(f->c, on_chain, &ch), 0);
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
  assert_int_equal(chat_committer_then(f->c, on_done, &flying), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* 50 in flight */
  add_users(f, "g", 20);
  assert_int_equal(chat_committer_then(f->c, on_done, &rest), 0);
  /* This one adds 10 more from inside the flush. */
  assert_int_equal(chat_committer_then(f->c, on_chain, &ch), 0);
  assert_int_equal(chat_committer_flush_sync(f->c), 0);
  assert_int_equal(flying.status, 0);
  assert_int_equal(flying.users_on_disk, 50);
  assert_int_equal(rest.calls, 1);
  assert_int_equal(rest.users_on_disk, 70);
  assert_int_equal(ch.step, 3);
  assert_int_equal(chat_committer_pending(f->c), 0);
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

  assert_int_equal(chat_committer_flush_sync(f->c), 0); /* nothing to do */
  add_users(f, "x", 2);
  assert_int_equal(chat_committer_then(f->c, on_done, &s), 0);
  chat_store_fail_next(f->store, -EROFS);
  assert_int_equal(chat_committer_flush_sync(f->c), -EROFS);
  assert_int_equal(s.status, -EROFS);
  assert_int_equal(committed_users(f), 0);
}

static void test_free_flushes_pending(void **state) {
  fx_t *f = *state;
  seen_t s = {0};

  add_users(f, "p", 4);
  assert_int_equal(chat_committer_then(f->c, on_done, &s), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1);
  add_users(f, "q", 4);
  chat_committer_free(f->c); /* teardown then frees NULL */
  f->c = NULL;
  assert_int_equal(s.calls, 1);
  assert_int_equal(committed_users(f), 8);
}

static void test_rejects_invalid(void **state) {
  fx_t *f = *state;
  chat_store_op_t bad = user_op(NULL);

  add_users(f, "v", 1);
  assert_int_equal(chat_committer_add(f->c, &bad), -EINVAL);
  bad = msg_op(0, "x", 1); /* seq 0 */
  assert_int_equal(chat_committer_add(f->c, &bad), -EINVAL);
  bad = msg_op(1, NULL, 5); /* a length with no body */
  assert_int_equal(chat_committer_add(f->c, &bad), -EINVAL);
  bad = user_op("w");
  bad.kind = (chat_store_op_kind_t)77;
  assert_int_equal(chat_committer_add(f->c, &bad), -EINVAL);
  assert_int_equal(chat_committer_pending(f->c), 1);
  run_until_idle(f);
  assert_int_equal(stats(f).failed_batches, 0);
  assert_int_equal(committed_users(f), 1);
}

static int check_copy(void *ctx, const chat_stored_msg_t *m) {
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
  chat_store_op_t op = msg_op(7, body, sizeof(body) - 1);
  chat_store_t *s = NULL;
  int n = 0;

  op.msg.to = to;
  op.msg.group = "grp";
  assert_int_equal(chat_committer_add(f->c, &op), 0);
  memset(body, 'X', sizeof(body));
  memcpy(to, "zzz", 4);
  run_until_idle(f);
  assert_int_equal(chat_store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat_store_load_messages(s, check_copy, &n), 0);
  assert_int_equal(n, 1);
  chat_store_close(s);
}

/* ---- throughput: a measurement, printed, not a pass/fail threshold ------ */

enum { TP_TOTAL = 100000, TP_PER_TURN = 500 };

typedef struct producer {
  fx_t *f;
  uv_idle_t idle;
  uint64_t next_seq;
  int acked;
  int errors;
  char body[64];
} producer_t;

static void on_stored(void *arg, int status) {
  producer_t *p = arg;

  if (status != 0)
    p->errors++;
  p->acked++;
}

/* One loop turn of a busy server: a few hundred messages for offline users,
 * each with a "stored" reply waiting for the commit. */
static void on_produce(uv_idle_t *h) {
  producer_t *p = h->data;
  int i;

  for (i = 0; i < TP_PER_TURN && p->next_seq <= TP_TOTAL; i++) {
    chat_store_op_t op = msg_op(p->next_seq++, p->body, sizeof(p->body));

    assert_int_equal(chat_committer_add(p->f->c, &op), 0);
    assert_int_equal(chat_committer_then(p->f->c, on_stored, p), 0);
  }
  if (p->next_seq > TP_TOTAL)
    uv_close((uv_handle_t *)&p->idle, NULL);
}

static void test_throughput_report(void **state) {
  fx_t *f = *state;
  producer_t p = {.f = f, .next_seq = 1};
  chat_committer_stats_t st;
  uint64_t t0, t1;

  memset(p.body, 'm', sizeof(p.body));
  assert_int_equal(uv_idle_init(&f->loop, &p.idle), 0);
  p.idle.data = &p;
  assert_int_equal(uv_idle_start(&p.idle, on_produce), 0);
  t0 = uv_hrtime();
  run_until_idle(f);
  t1 = uv_hrtime();
  st = stats(f);
  assert_int_equal(p.acked, TP_TOTAL);
  assert_int_equal(p.errors, 0);
  assert_int_equal(st.ops, TP_TOTAL);
  assert_int_equal(committed_msgs(f), TP_TOTAL);
  printf("committer throughput: %d PUT_MSG (64 B) in %.3f s = %.0f ops/s, "
         "%llu fsync'd batches (avg %.0f, max %llu ops)\n",
         TP_TOTAL, (double)(t1 - t0) / 1e9,
         TP_TOTAL / ((double)(t1 - t0) / 1e9),
         (unsigned long long)st.batches, (double)st.ops / (double)st.batches,
         (unsigned long long)st.max_batch);
}

/* Worst case for group commit: each batch holds one op because the next op
 * waits for the previous commit. Measures the cost of one fsync'd commit. */
enum { LAT_ROUNDS = 200 };

typedef struct pinger {
  fx_t *f;
  int done;
  int errors;
} pinger_t;

static void on_ping(void *arg, int status) {
  pinger_t *p = arg;
  chat_store_op_t op;

  if (status != 0)
    p->errors++;
  if (++p->done >= LAT_ROUNDS)
    return;
  op = msg_op((uint64_t)p->done + 1, "ping", 4);
  assert_int_equal(chat_committer_add(p->f->c, &op), 0);
  assert_int_equal(chat_committer_then(p->f->c, on_ping, p), 0);
}

static void test_commit_latency_report(void **state) {
  fx_t *f = *state;
  pinger_t p = {.f = f};
  chat_store_op_t op = msg_op(1, "ping", 4);
  uint64_t t0, t1;

  assert_int_equal(chat_committer_add(f->c, &op), 0);
  assert_int_equal(chat_committer_then(f->c, on_ping, &p), 0);
  t0 = uv_hrtime();
  run_until_idle(f);
  t1 = uv_hrtime();
  assert_int_equal(p.done, LAT_ROUNDS);
  assert_int_equal(p.errors, 0);
  assert_int_equal(stats(f).batches, LAT_ROUNDS);
  printf("commit latency: %d one-op batches in %.3f s = %.2f ms each\n",
         LAT_ROUNDS, (double)(t1 - t0) / 1e9,
         (double)(t1 - t0) / 1e6 / LAT_ROUNDS);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_callback_after_commit),
      T(test_nothing_pending_fires_later),
      T(test_idle_committer_lets_loop_exit),
      T(test_one_batch_per_turn),
      T(test_group_commit_while_in_flight),
      T(test_failed_batch_then_recovery),
      T(test_callbacks_add_more),
      T(test_flush_sync),
      T(test_flush_sync_reports_failure),
      T(test_free_flushes_pending),
      T(test_rejects_invalid),
      T(test_copies_body_exactly),
      T(test_throughput_report),
      T(test_commit_latency_report),
  };
#undef T

  return cmocka_run_group_tests(tests, NULL, NULL);
}
