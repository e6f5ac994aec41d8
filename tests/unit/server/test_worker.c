/* test_worker.c -- chat__worker_t: FIFO order, done on the loop thread,
 * cancel before start, the bounded queue, and shutdown with queued jobs.
 * Gates (gate.h) hold the threads, so every order asserted here is decided
 * by the test, not by timing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "gate.h"
#include "worker.h"

#define NJOBS 16

typedef struct rec {
  chat__worker_job_t job;
  int id;
  int ran;            /* work ran (set on the worker thread) */
  int done, status;
  uv_thread_t done_thread;
  struct log *log;
} rec_t;

typedef struct log {
  uv_mutex_t mu;
  int work_order[NJOBS], nwork;
  int done_order[NJOBS], ndone;
} log_t;

static void rec_work(chat__worker_job_t *job) {
  rec_t *r = job->data;
  r->ran = 1;
  uv_mutex_lock(&r->log->mu);
  r->log->work_order[r->log->nwork++] = r->id;
  uv_mutex_unlock(&r->log->mu);
}

static void rec_done(chat__worker_job_t *job, int status) {
  rec_t *r = job->data;
  r->done = 1;
  r->status = status;
  r->done_thread = uv_thread_self();
  r->log->done_order[r->log->ndone++] = r->id;
}

typedef struct t {
  uv_loop_t loop;
  log_t log;
  rec_t recs[NJOBS];
} t_t;

static int setup(void **state) {
  t_t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  assert_int_equal(uv_mutex_init(&t->log.mu), 0);
  for (int i = 0; i < NJOBS; i++) {
    t->recs[i].id = i;
    t->recs[i].log = &t->log;
    t->recs[i].job.data = &t->recs[i];
  }
  *state = t;
  return 0;
}

static int teardown(void **state) {
  t_t *t = *state;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  uv_mutex_destroy(&t->log.mu);
  free(t);
  return 0;
}

static void submit(chat__worker_t *w, rec_t *r) {
  assert_int_equal(chat__worker_submit(w, &r->job, rec_work, rec_done), 0);
}

static int ndone_is(void *arg) {
  t_t *t = arg;
  return t->log.ndone == NJOBS;
}

/* One thread: jobs start and finish in submission order; every done runs on
 * the loop thread, and never inside submit. */
static void test_fifo_and_done_on_loop(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  gate_t g;
  uv_thread_t self = uv_thread_self();

  assert_int_equal(chat__worker_new(&t->loop, 1, 0, &w), 0);
  gate_hold(&g, w);
  for (int i = 0; i < NJOBS; i++)
    submit(w, &t->recs[i]);
  assert_int_equal(chat__worker_queued(w), NJOBS);
  assert_int_equal(t->log.ndone, 0);
  gate_open(&g);
  assert_int_equal(run_until(&t->loop, ndone_is, t, GATE_DEADLINE_MS), 0);
  for (int i = 0; i < NJOBS; i++) {
    assert_int_equal(t->log.work_order[i], i);
    assert_int_equal(t->log.done_order[i], i);
    assert_int_equal(t->recs[i].status, 0);
    assert_true(uv_thread_equal(&t->recs[i].done_thread, &self));
  }
  assert_true(g.done);
  assert_int_equal(g.status, 0);
  gate_destroy(&g);
  chat__worker_free(w);
}

/* The loop does not wait on an idle worker: its handle is unref'd while no
 * done is to come. */
static void test_idle_does_not_hold_loop(void **state) {
  t_t *t = *state;
  chat__worker_t *w;

  assert_int_equal(chat__worker_new(&t->loop, 2, 0, &w), 0);
  assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
  submit(w, &t->recs[0]);
  uv_run(&t->loop, UV_RUN_DEFAULT); /* returns once the done ran */
  assert_true(t->recs[0].done);
  assert_true(t->recs[0].ran);
  chat__worker_free(w);
}

/* A cancelled job never runs; its done comes later with -ECANCELED; a
 * running one cannot be cancelled. */
static void test_cancel_before_start(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  gate_t g;

  assert_int_equal(chat__worker_new(&t->loop, 1, 0, &w), 0);
  gate_hold(&g, w);
  for (int i = 0; i < 3; i++)
    submit(w, &t->recs[i]);
  assert_int_equal(chat__worker_cancel(w, &t->recs[1].job), 0);
  assert_int_equal(chat__worker_cancel(w, &t->recs[1].job), -EBUSY);
  assert_int_equal(chat__worker_cancel(w, &g.job), -EBUSY); /* running */
  assert_false(t->recs[1].done); /* not from inside cancel */
  assert_int_equal(chat__worker_queued(w), 2);
  gate_open(&g);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(t->recs[1].status, -ECANCELED);
  assert_false(t->recs[1].ran);
  assert_true(t->recs[0].ran && t->recs[2].ran);
  assert_int_equal(t->recs[0].status, 0);
  assert_int_equal(t->recs[2].status, 0);
  assert_int_equal(t->log.nwork, 2);
  assert_int_equal(t->log.work_order[0], 0);
  assert_int_equal(t->log.work_order[1], 2);
  gate_destroy(&g);
  chat__worker_free(w);
}

/* max_queued bounds the waiting jobs (the running one does not count). */
static void test_bounded_queue(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  gate_t g;

  assert_int_equal(chat__worker_new(&t->loop, 1, 3, &w), 0);
  gate_hold(&g, w);
  for (int i = 0; i < 3; i++)
    submit(w, &t->recs[i]);
  assert_int_equal(
      chat__worker_submit(w, &t->recs[3].job, rec_work, rec_done), -EAGAIN);
  /* a cancel frees a place */
  assert_int_equal(chat__worker_cancel(w, &t->recs[0].job), 0);
  submit(w, &t->recs[3]);
  gate_open(&g);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(t->log.nwork, 3);
  assert_int_equal(t->recs[0].status, -ECANCELED);
  for (int i = 1; i <= 3; i++)
    assert_true(t->recs[i].ran);
  gate_destroy(&g);
  chat__worker_free(w);
}

/* free with jobs queued while the only thread is held: the queue is
 * emptied by free's stop (nothing else can empty it), and only then does a
 * helper thread open the gate, so free waits for the running job alone,
 * runs none of the queued, and calls every done, -ECANCELED for the queued,
 * before it returns. */
typedef struct opener {
  chat__worker_t *w;
  gate_t *g;
} opener_t;

static void opener_main(void *arg) {
  opener_t *o = arg;
  while (chat__worker_queued(o->w) > 0)
    uv_sleep(1);
  gate_open(o->g);
}

static void test_free_cancels_queued(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  gate_t g;
  uv_thread_t th;

  assert_int_equal(chat__worker_new(&t->loop, 1, 0, &w), 0);
  gate_hold(&g, w);
  for (int i = 0; i < NJOBS; i++)
    submit(w, &t->recs[i]);
  opener_t o = {w, &g};
  assert_int_equal(uv_thread_create(&th, opener_main, &o), 0);
  chat__worker_free(w);
  uv_thread_join(&th);
  assert_true(g.done);
  assert_int_equal(g.status, 0);
  assert_int_equal(t->log.nwork, 0);
  assert_int_equal(t->log.ndone, NJOBS);
  for (int i = 0; i < NJOBS; i++) {
    assert_int_equal(t->recs[i].status, -ECANCELED);
    assert_int_equal(t->log.done_order[i], i);
  }
  gate_destroy(&g);
}

/* After stop nothing is accepted; the queued are cancelled, on the loop. */
static void test_stop_refuses(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  gate_t g;

  assert_int_equal(chat__worker_new(&t->loop, 1, 0, &w), 0);
  gate_hold(&g, w);
  submit(w, &t->recs[0]);
  chat__worker_stop(w);
  assert_false(t->recs[0].done); /* later, on the loop */
  assert_int_equal(
      chat__worker_submit(w, &t->recs[1].job, rec_work, rec_done), -ESHUTDOWN);
  gate_open(&g);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(t->recs[0].status, -ECANCELED);
  assert_false(t->recs[0].ran);
  assert_true(g.done);
  gate_destroy(&g);
  chat__worker_free(w);
}

/* A done may submit again (to another worker here, as a chain would). */
static chat__worker_t *g_next;
static void resubmit_done(chat__worker_job_t *job, int status) {
  rec_t *r = job->data;
  rec_done(job, status);
  if (r->id == 0)
    submit(g_next, r + 1);
}

static void test_done_may_submit(void **state) {
  t_t *t = *state;
  chat__worker_t *w;

  assert_int_equal(chat__worker_new(&t->loop, 2, 0, &w), 0);
  g_next = w;
  assert_int_equal(
      chat__worker_submit(w, &t->recs[0].job, rec_work, resubmit_done), 0);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_true(t->recs[0].done && t->recs[1].done);
  assert_true(t->recs[1].ran);
  chat__worker_free(w);
}

static int thread_nice(void) {
  return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

static int g_job_nice;
static void nice_work(chat__worker_job_t *job) { g_job_nice = thread_nice(); }

/* opts.nice renices the worker's threads, and only them. */
static void test_nice(void **state) {
  t_t *t = *state;
  chat__worker_t *w;
  chat__worker_opts_t o = {1, 0, 5};
  int before = thread_nice();

  assert_int_equal(chat__worker_new_opts(&t->loop, &o, &w), 0);
  assert_int_equal(
      chat__worker_submit(w, &t->recs[0].job, nice_work, rec_done), 0);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_true(t->recs[0].done);
  assert_int_equal(g_job_nice, before + 5 > 19 ? 19 : before + 5);
  assert_int_equal(thread_nice(), before);
  chat__worker_free(w);
}

static void test_default_threads(void **state) {
  (void)state;
  assert_true(chat__worker_default_threads() >= 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_fifo_and_done_on_loop), T(test_idle_does_not_hold_loop),
      T(test_cancel_before_start),   T(test_bounded_queue),
      T(test_free_cancels_queued),   T(test_stop_refuses),
      T(test_done_may_submit),
      T(test_nice),                  T(test_default_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
