/* worker.h -- a few dedicated threads with a FIFO job queue, results back
 * on the loop thread.
 *
 * libuv's own pool (uv_queue_work) is shared by everything in the process
 * and has no priorities, so a burst of slow jobs (password hashes) makes
 * unrelated short ones (commits) wait behind it. A chat__worker_t is a pool
 * of its own: give each kind of work its own worker and they cannot delay
 * each other.
 *
 * A job's work function runs on one of the worker's threads; its done
 * function runs afterwards on the loop thread (woken through an eventfd).
 * Jobs start in the order they were submitted. Everything but the work function
 * is called on the loop thread only.
 */
#ifndef CHAT_WORKER_H
#define CHAT_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct chat__worker chat__worker_t;
typedef struct chat__worker_job chat__worker_job_t;

/* Runs on a worker thread. */
typedef void (*chat__worker_work_fn)(chat__worker_job_t *job);
/* Runs on the loop thread: status 0 after work ran, -ECANCELED when the job
 * was cancelled (or the worker stopped) before it started; work did not
 * run then. The job is the caller's again from here on (it may be freed or
 * submitted again inside done). */
typedef void (*chat__worker_done_fn)(chat__worker_job_t *job, int status);

/* Caller-owned, usually embedded in the caller's own request; it must stay
 * valid from chat__worker_submit() until its done function has been called.
 * Only data is the caller's to touch. */
struct chat__worker_job {
  void *data;
  /* private */
  chat__worker_work_fn work;
  chat__worker_done_fn done;
  chat__worker_job_t *next;
  int state;
  int status;
};

typedef struct chat__worker_opts {
  unsigned nthreads;  /* at least 1 */
  size_t max_queued;  /* 0: no bound */
  /* Added to the threads' nice value (Linux schedules threads on their
   * own), 0 leaves it. Bulk CPU work (hashes) runs niced so that the loop
   * and the store thread, which answer clients, get a core when they need
   * one. */
  int nice;
} chat__worker_opts_t;

/* As chat__worker_new(), with the threads reniced by opts->nice (a failure
 * to renice is ignored: the jobs still run). */
int chat__worker_new_opts(uv_loop_t *loop, const chat__worker_opts_t *opts,
                          chat__worker_t **out);

/* Starts nthreads (at least 1) threads. max_queued bounds the jobs waiting
 * to start (running ones do not count); 0 means no bound. The poll handle
 * keeps the loop alive only while some job's done is still to come.
 * Returns 0, -EINVAL (nthreads 0), -ENOMEM or a libuv error (when a thread
 * could not start; the loop must then run once more, as after
 * chat__worker_free(), to release what was set up). */
int chat__worker_new(uv_loop_t *loop, unsigned nthreads, size_t max_queued,
                     chat__worker_t **out);

/* Queues job. Returns 0 (done will be called, never from inside this call),
 * -EAGAIN (max_queued jobs are waiting already) or -ESHUTDOWN (the worker
 * is stopping); on an error done will not be called. */
int chat__worker_submit(chat__worker_t *w, chat__worker_job_t *job,
                        chat__worker_work_fn work, chat__worker_done_fn done);

/* Takes job out of the queue if it has not started: its work will not run
 * and done is called later (on a later loop turn) with -ECANCELED.
 * Returns 0, or -EBUSY when the job has started or finished already (done
 * comes with its own status). */
int chat__worker_cancel(chat__worker_t *w, chat__worker_job_t *job);

/* Stops accepting jobs and cancels every queued one (each done is called
 * later with -ECANCELED). Does not wait for the running ones. Idempotent. */
void chat__worker_stop(chat__worker_t *w);

/* Stops (as chat__worker_stop), waits for the running jobs only, joins the
 * threads, then calls, here, done for every job whose done was still to
 * come, in order. The poll handle is closed, so the memory is released in
 * its close callback: run the loop once more before closing it. NULL is a
 * no-op. */
void chat__worker_free(chat__worker_t *w);

/* Jobs waiting to start. */
size_t chat__worker_queued(chat__worker_t *w);
/* Nonzero when a submit now would be refused -EAGAIN (the queue is at its
 * bound). */
int chat__worker_full(chat__worker_t *w);

/* Default thread count for CPU-bound work: the CPUs this process may use,
 * at least 1. */
unsigned chat__worker_default_threads(void);

#endif /* CHAT_WORKER_H */
