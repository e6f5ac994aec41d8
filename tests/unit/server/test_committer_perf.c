/* test_committer_perf.c -- how fast group commit is, on a real libuv loop
 * and a file database: throughput of a busy server's stored messages and
 * the latency of one fsync'd commit. The times are printed, not compared
 * with a threshold; the asserts check the counts (ops, callbacks, batches). */
#include "committer_fixture.h"

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
    chat__store_op_t op = msg_op(p->next_seq++, p->body, sizeof(p->body));

    assert_int_equal(chat__committer_add(p->f->c, &op), 0);
    assert_int_equal(chat__committer_then(p->f->c, on_stored, p), 0);
  }
  if (p->next_seq > TP_TOTAL)
    uv_close((uv_handle_t *)&p->idle, NULL);
}

static void test_throughput_report(void **state) {
  fx_t *f = *state;
  producer_t p = {.f = f, .next_seq = 1};
  chat__committer_stats_t st;
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
  chat__store_op_t op;

  if (status != 0)
    p->errors++;
  if (++p->done >= LAT_ROUNDS)
    return;
  op = msg_op((uint64_t)p->done + 1, "ping", 4);
  assert_int_equal(chat__committer_add(p->f->c, &op), 0);
  assert_int_equal(chat__committer_then(p->f->c, on_ping, p), 0);
}

static void test_commit_latency_report(void **state) {
  fx_t *f = *state;
  pinger_t p = {.f = f};
  chat__store_op_t op = msg_op(1, "ping", 4);
  uint64_t t0, t1;

  assert_int_equal(chat__committer_add(f->c, &op), 0);
  assert_int_equal(chat__committer_then(f->c, on_ping, &p), 0);
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
      T(test_throughput_report),
      T(test_commit_latency_report),
  };
#undef T

  return cmocka_run_group_tests(tests, NULL, NULL);
}
