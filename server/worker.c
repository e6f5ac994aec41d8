/* worker.c -- dedicated threads with a FIFO queue; done back on the loop.
 *
 * One mutex guards both lists: the queue (jobs waiting to start) and the
 * finished list (jobs whose done is still to be called). Threads take from
 * the head of the queue and append to the finished list, then wake the loop
 * through an eventfd (see below); the loop thread takes the whole finished
 * list at once and calls the done functions outside the lock, so a done may
 * submit again. Cancelled jobs go through the finished list too, so done is never
 * called from inside chat__worker_cancel() or chat__worker_stop().
 *
 * The wake-up is an eventfd written after the lock is released, not a
 * uv_async_t: uv_async_send() marks the handle busy, writes, then marks it
 * done, and the loop thread spins (sched_yield every 997 tries) while it
 * sees it busy. The write wakes the loop, which preempts the writer at
 * once when the writer is an idle-class hash thread, so the loop then spun
 * for 5-25 ms at a time waiting for a thread that the scheduler would not
 * run: that was the `stored` p99 of a login storm (perf: 73 % of the loop
 * thread's samples in uv__async_spin). A single write() leaves nothing
 * half done to wait for.
 */
#include "worker.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { JOB_IDLE = 0, JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

struct chat__worker {
  uv_loop_t *loop;
  uv_poll_t poll;         /* on efd */
  int efd;
  atomic_int signalled;   /* efd written, the loop has not taken the list */
  uv_mutex_t mu;
  uv_cond_t cv;           /* signalled when a job is queued or on stop */
  chat__worker_job_t *head, *tail;       /* queued */
  chat__worker_job_t *fin_head, *fin_tail; /* finished, done not yet called */
  size_t nqueued;
  size_t max_queued;
  int nice;
  bool stopping;
  /* Loop thread only. */
  size_t outstanding;     /* submitted, done not yet called */
  unsigned nthreads;
  uv_thread_t *threads;
};

static void push_finished(chat__worker_t *w, chat__worker_job_t *job,
                          int status) {
  job->state = JOB_FINISHED;
  job->status = status;
  job->next = NULL;
  if (w->fin_tail != NULL)
    w->fin_tail->next = job;
  else
    w->fin_head = job;
  w->fin_tail = job;
}

/* Any thread, without the lock: makes the loop take the finished list. One
 * write per batch: a thread that finds signalled set knows the loop has yet
 * to take the list, and the loop clears it before it takes the list. */
static void wake(chat__worker_t *w) {
  uint64_t one = 1;
  ssize_t n;

  if (atomic_exchange(&w->signalled, 1) != 0)
    return;
  do
    n = write(w->efd, &one, sizeof(one));
  while (n < 0 && errno == EINTR);
}

static void thread_main(void *arg) {
  chat__worker_t *w = arg;
  chat__worker_job_t *job;

  if (w->nice != 0) { /* this thread only: Linux renices threads alone */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    int cur;
    errno = 0;
    cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0)
      (void)setpriority(PRIO_PROCESS, (id_t)tid, cur + w->nice);
    /* And SCHED_IDLE: a nice thread still holds its CPU until the
     * scheduler's next tick when the loop or the store thread wakes up
     * (milliseconds a `stored` reply waits behind a hash on a busy
     * machine); an idle-class thread gives way at once. Best effort. */
    struct sched_param sp = {0};
    (void)sched_setscheduler(tid, SCHED_IDLE, &sp);
  }
  uv_mutex_lock(&w->mu);
  for (;;) {
    while (w->head == NULL && !w->stopping)
      uv_cond_wait(&w->cv, &w->mu);
    if (w->head == NULL) /* stopping: the queue was emptied by stop */
      break;
    job = w->head;
    w->head = job->next;
    if (w->head == NULL)
      w->tail = NULL;
    w->nqueued--;
    job->state = JOB_RUNNING;
    uv_mutex_unlock(&w->mu);

    job->work(job);

    uv_mutex_lock(&w->mu);
    push_finished(w, job, 0);
    uv_mutex_unlock(&w->mu);
    wake(w);
    uv_mutex_lock(&w->mu);
  }
  uv_mutex_unlock(&w->mu);
}

/* Calls done for everything finished so far, on the loop thread. */
static void deliver(chat__worker_t *w) {
  chat__worker_job_t *job, *next;

  uv_mutex_lock(&w->mu);
  job = w->fin_head;
  w->fin_head = w->fin_tail = NULL;
  uv_mutex_unlock(&w->mu);
  for (; job != NULL; job = next) {
    next = job->next;
    job->state = JOB_IDLE;
    job->next = NULL;
    if (--w->outstanding == 0)
      uv_unref((uv_handle_t *)&w->poll);
    job->done(job, job->status);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  chat__worker_t *w = h->data;
  uint64_t v;

  (void)status;
  (void)events;
  (void)!read(w->efd, &v, sizeof(v)); /* EAGAIN: a wake already taken */
  atomic_store(&w->signalled, 0);     /* before the list is taken */
  deliver(w);
}

int chat__worker_new(uv_loop_t *loop, unsigned nthreads, size_t max_queued,
                     chat__worker_t **out) {
  chat__worker_opts_t o = {nthreads, max_queued, 0};

  return chat__worker_new_opts(loop, &o, out);
}

int chat__worker_new_opts(uv_loop_t *loop, const chat__worker_opts_t *opts,
                          chat__worker_t **out) {
  unsigned nthreads = opts->nthreads;
  chat__worker_t *w;
  unsigned i;
  int r;

  *out = NULL;
  if (nthreads == 0)
    return -EINVAL;
  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  w->threads = calloc(nthreads, sizeof(*w->threads));
  if (w->threads == NULL) {
    free(w);
    return -ENOMEM;
  }
  w->loop = loop;
  w->max_queued = opts->max_queued;
  w->nice = opts->nice;
  if ((r = uv_mutex_init(&w->mu)) != 0)
    goto fail_mu;
  if ((r = uv_cond_init(&w->cv)) != 0)
    goto fail_cv;
  w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->efd < 0) {
    r = -errno;
    goto fail_efd;
  }
  if ((r = uv_poll_init(loop, &w->poll, w->efd)) != 0)
    goto fail_poll;
  w->poll.data = w;
  if ((r = uv_poll_start(&w->poll, UV_READABLE, on_poll)) != 0) {
    /* The handle is initialised: it must be closed, as after free. */
    w->nthreads = 0;
    chat__worker_free(w);
    return r;
  }
  uv_unref((uv_handle_t *)&w->poll); /* nothing outstanding yet */
  for (i = 0; i < nthreads; i++) {
    if ((r = uv_thread_create(&w->threads[i], thread_main, w)) != 0)
      break;
    w->nthreads++;
  }
  if (w->nthreads < nthreads) {
    /* The threads that did start stop again; the handle closes on the
     * next loop run, as after chat__worker_free(). */
    chat__worker_free(w);
    return r;
  }
  *out = w;
  return 0;

fail_poll:
  close(w->efd);
fail_efd:
  uv_cond_destroy(&w->cv);
fail_cv:
  uv_mutex_destroy(&w->mu);
fail_mu:
  free(w->threads);
  free(w);
  return r;
}

int chat__worker_submit(chat__worker_t *w, chat__worker_job_t *job,
                        chat__worker_work_fn work, chat__worker_done_fn done) {
  uv_mutex_lock(&w->mu);
  if (w->stopping) {
    uv_mutex_unlock(&w->mu);
    return -ESHUTDOWN;
  }
  if (w->max_queued > 0 && w->nqueued >= w->max_queued) {
    uv_mutex_unlock(&w->mu);
    return -EAGAIN;
  }
  job->work = work;
  job->done = done;
  job->next = NULL;
  job->state = JOB_QUEUED;
  job->status = 0;
  if (w->tail != NULL)
    w->tail->next = job;
  else
    w->head = job;
  w->tail = job;
  w->nqueued++;
  uv_cond_signal(&w->cv);
  uv_mutex_unlock(&w->mu);
  if (w->outstanding++ == 0)
    uv_ref((uv_handle_t *)&w->poll);
  return 0;
}

int chat__worker_cancel(chat__worker_t *w, chat__worker_job_t *job) {
  chat__worker_job_t **pp, *prev = NULL;

  uv_mutex_lock(&w->mu);
  if (job->state != JOB_QUEUED) {
    uv_mutex_unlock(&w->mu);
    return -EBUSY;
  }
  for (pp = &w->head; *pp != job; pp = &(*pp)->next)
    prev = *pp;
  *pp = job->next;
  if (w->tail == job)
    w->tail = prev;
  w->nqueued--;
  push_finished(w, job, -ECANCELED);
  uv_mutex_unlock(&w->mu);
  wake(w);
  return 0;
}

void chat__worker_stop(chat__worker_t *w) {
  chat__worker_job_t *job, *next;
  bool any;

  uv_mutex_lock(&w->mu);
  w->stopping = true;
  for (job = w->head; job != NULL; job = next) {
    next = job->next;
    push_finished(w, job, -ECANCELED);
  }
  w->head = w->tail = NULL;
  w->nqueued = 0;
  uv_cond_broadcast(&w->cv);
  any = w->fin_head != NULL;
  uv_mutex_unlock(&w->mu);
  if (any)
    wake(w);
}

static void on_close(uv_handle_t *h) {
  chat__worker_t *w = h->data;

  close(w->efd); /* only now: libuv polled it until the handle closed */
  uv_cond_destroy(&w->cv);
  uv_mutex_destroy(&w->mu);
  free(w->threads);
  free(w);
}

void chat__worker_free(chat__worker_t *w) {
  unsigned i;

  if (w == NULL)
    return;
  chat__worker_stop(w);
  for (i = 0; i < w->nthreads; i++)
    uv_thread_join(&w->threads[i]);
  /* No thread is left to add to the finished list, and a done that submits
   * now gets -ESHUTDOWN, so this drains it for good. */
  deliver(w);
  uv_close((uv_handle_t *)&w->poll, on_close);
}

size_t chat__worker_queued(chat__worker_t *w) {
  size_t n;

  uv_mutex_lock(&w->mu);
  n = w->nqueued;
  uv_mutex_unlock(&w->mu);
  return n;
}

int chat__worker_full(chat__worker_t *w) {
  int full;

  uv_mutex_lock(&w->mu);
  full = w->max_queued > 0 && w->nqueued >= w->max_queued;
  uv_mutex_unlock(&w->mu);
  return full;
}

unsigned chat__worker_default_threads(void) {
  unsigned n = uv_available_parallelism();

  return n > 0 ? n : 1;
}
