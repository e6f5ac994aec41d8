/* gate.h -- a worker job that holds its thread until the test opens it, and
 * running the loop until something happened (with a deadline), so tests
 * decide the order of events across threads instead of timing them. */
#ifndef TEST_SERVER_GATE_H
#define TEST_SERVER_GATE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "worker.h"

/* Generous: only a broken build ever waits this long. */
#define GATE_DEADLINE_MS 20000

typedef struct gate {
  chat__worker_job_t job;
  uv_sem_t started, open;
  int done, status;
} gate_t;

static inline void gate_work(chat__worker_job_t *job) {
  gate_t *g = job->data;
  uv_sem_post(&g->started);
  uv_sem_wait(&g->open);
}

static inline void gate_done(chat__worker_job_t *job, int status) {
  gate_t *g = job->data;
  g->done = 1;
  g->status = status;
}

/* Queues a gate on w and waits until a thread of w is held by it. */
static inline void gate_hold(gate_t *g, chat__worker_t *w) {
  memset(g, 0, sizeof(*g));
  assert_int_equal(uv_sem_init(&g->started, 0), 0);
  assert_int_equal(uv_sem_init(&g->open, 0), 0);
  g->job.data = g;
  assert_int_equal(chat__worker_submit(w, &g->job, gate_work, gate_done), 0);
  uv_sem_wait(&g->started);
}

static inline void gate_open(gate_t *g) { uv_sem_post(&g->open); }

/* After its done ran. */
static inline void gate_destroy(gate_t *g) {
  uv_sem_destroy(&g->started);
  uv_sem_destroy(&g->open);
}

static inline void gate_on_timer(uv_timer_t *t) { (void)t; }

/* Runs loop one turn at a time until pred(arg) holds; 0, or -ETIMEDOUT
 * after ms (a timer wakes the loop to check). */
static inline int run_until(uv_loop_t *loop, int (*pred)(void *), void *arg,
                            uint64_t ms) {
  uv_timer_t t;
  int r = 0;
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, gate_on_timer, 10, 10);
  while (!pred(arg)) {
    uv_run(loop, UV_RUN_ONCE);
    if (uv_now(loop) > end) {
      r = -ETIMEDOUT;
      break;
    }
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return r;
}

#endif /* TEST_SERVER_GATE_H */
