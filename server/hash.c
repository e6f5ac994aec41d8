/* hash.c -- argon2id via libsodium, off the loop thread: on the hash pool's
 * own threads (which hand it to the helper process when the pool has one,
 * hasher.h), or on libuv's pool when there is no hash pool. */
#include "hash.h"

#include "hash_int.h"
#include "hasher.h"
#include "chat_log.h"
#include "worker.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chat__hash_pool {
  chat__worker_t *worker;
  chat__hasher_t *hasher; /* owned; NULL: hashes run on worker's threads */
  int hasher_lost;        /* atomic: said once that it is gone */
  uint64_t computed;  /* atomic: counted on the hash threads */
  uint64_t in_helper; /* atomic: likewise */
  uint64_t cancelled, refused;
};

/* A request; chat__hash_req_t is this. On a pool it runs as job, else as
 * req on libuv's pool. */
typedef struct chat__hash_req {
  chat__worker_job_t job;
  uv_work_t req;
  chat__hash_pool_t *pool; /* NULL: libuv's pool */
  chat__hash_cb cb;
  void *arg;
  int verify;
  chat_server_hash_cost_t cost;
  int status;
  char *password; /* owned, wiped before free */
  char hash[crypto_pwhash_STRBYTES];
} hash_work_t;

int chat_server_hash_cost_parse(const char *name,
                                chat_server_hash_cost_t *cost) {
  if (strcmp(name, "min") == 0)
    *cost = CHAT_HASH_MIN;
  else if (strcmp(name, "interactive") == 0)
    *cost = CHAT_HASH_INTERACTIVE;
  else if (strcmp(name, "moderate") == 0)
    *cost = CHAT_HASH_MODERATE;
  else
    return -EINVAL;
  return 0;
}

static void limits(chat_server_hash_cost_t cost, unsigned long long *ops,
                   size_t *mem) {
  switch (cost) {
  case CHAT_HASH_MIN:
    *ops = crypto_pwhash_OPSLIMIT_MIN;
    *mem = crypto_pwhash_MEMLIMIT_MIN;
    break;
  case CHAT_HASH_MODERATE:
    *ops = crypto_pwhash_OPSLIMIT_MODERATE;
    *mem = crypto_pwhash_MEMLIMIT_MODERATE;
    break;
  default:
    *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    break;
  }
}

int chat__hash_make_sync(chat_server_hash_cost_t cost, const char *password,
                         char *out, size_t outlen) {
  unsigned long long ops;
  size_t mem;
  if (outlen < crypto_pwhash_STRBYTES)
    return -EINVAL;
  limits(cost, &ops, &mem);
  if (crypto_pwhash_str_alg(out, password, strlen(password), ops, mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return -ENOMEM; /* libsodium fails only when it cannot get the memory */
  return 0;
}

static void compute(hash_work_t *w) {
  if (w->verify)
    w->status = crypto_pwhash_str_verify(w->hash, w->password,
                                         strlen(w->password)) == 0
                    ? 0
                    : -EACCES;
  else
    w->status =
        chat__hash_make_sync(w->cost, w->password, w->hash, sizeof(w->hash));
}

static void finish(hash_work_t *w, int status) {
  if (status < 0) /* cancelled: never computed */
    w->status = status;
  sodium_memzero(w->password, strlen(w->password));
  free(w->password);
  w->cb(w->arg, w->status, w->verify || w->status < 0 ? NULL : w->hash);
  free(w);
}

static void libuv_work(uv_work_t *req) { compute(req->data); }

static void libuv_after(uv_work_t *req, int status) {
  finish(req->data, status);
}

/* In the helper when there is one; in this thread when it is gone (or the
 * request does not fit its records), so a lost helper costs latency, never
 * a login. */
static void compute_pooled(hash_work_t *w) {
  chat__hash_pool_t *p = w->pool;
  int r;

  if (p->hasher != NULL) {
    r = chat__hasher_call(p->hasher, w->verify, w->cost, w->password,
                          w->hash, sizeof(w->hash));
    if (r == 0 || r == -EACCES) {
      w->status = r;
      __atomic_fetch_add(&p->in_helper, 1, __ATOMIC_RELAXED);
      return;
    }
    if (r == -EPIPE && __atomic_exchange_n(&p->hasher_lost, 1,
                                           __ATOMIC_RELAXED) == 0)
      CHAT_ERROR("the hashing helper (pid %ld) is gone; hashing in the "
                 "server process from now on",
                 (long)chat__hasher_pid(p->hasher));
  }
  compute(w);
}

static void job_work(chat__worker_job_t *job) {
  hash_work_t *w = job->data;

  compute_pooled(w);
  __atomic_fetch_add(&w->pool->computed, 1, __ATOMIC_RELAXED);
}

static void job_done(chat__worker_job_t *job, int status) {
  hash_work_t *w = job->data;

  if (status == -ECANCELED)
    w->pool->cancelled++;
  finish(w, status);
}

static int submit(chat__hash_pool_t *pool, uv_loop_t *loop, int verify,
                  chat_server_hash_cost_t cost, const char *hash,
                  const char *password, chat__hash_cb cb, void *arg,
                  chat__hash_req_t **req) {
  hash_work_t *w = calloc(1, sizeof(*w));
  int r;

  if (w == NULL)
    return -ENOMEM;
  w->password = strdup(password);
  if (w->password == NULL) {
    free(w);
    return -ENOMEM;
  }
  if (hash)
    snprintf(w->hash, sizeof(w->hash), "%s", hash);
  w->verify = verify;
  w->cost = cost;
  w->cb = cb;
  w->arg = arg;
  w->pool = pool;
  w->job.data = w;
  w->req.data = w;
  if (pool != NULL) {
    r = chat__worker_submit(pool->worker, &w->job, job_work, job_done);
    if (r == -EAGAIN)
      pool->refused++;
  } else {
    r = uv_queue_work(loop, &w->req, libuv_work, libuv_after);
  }
  if (r < 0) {
    sodium_memzero(w->password, strlen(w->password));
    free(w->password);
    free(w);
    return r;
  }
  if (req != NULL)
    *req = w;
  return 0;
}

int chat__hash_make(chat__hash_pool_t *pool, uv_loop_t *loop,
                    chat_server_hash_cost_t cost, const char *password,
                    chat__hash_cb cb, void *arg, chat__hash_req_t **req) {
  return submit(pool, loop, 0, cost, NULL, password, cb, arg, req);
}

int chat__hash_verify(chat__hash_pool_t *pool, uv_loop_t *loop,
                      const char *hash, const char *password, chat__hash_cb cb,
                      void *arg, chat__hash_req_t **req) {
  return submit(pool, loop, 1, 0, hash, password, cb, arg, req);
}

void chat__hash_cancel(chat__hash_req_t *w) {
  /* Either fails harmlessly once the hash has started. */
  if (w->pool != NULL)
    chat__worker_cancel(w->pool->worker, &w->job);
  else
    uv_cancel((uv_req_t *)&w->req);
}

/* ---- the pool ------------------------------------------------------------ */

int chat__hash_pool_new(uv_loop_t *loop, unsigned nthreads, size_t max_queued,
                        chat__hasher_t *hasher, chat__hash_pool_t **out) {
  chat__hash_pool_t *p = calloc(1, sizeof(*p));
  int r;

  *out = NULL;
  if (p == NULL) {
    chat__hasher_free(hasher);
    return -ENOMEM;
  }
  if (nthreads == 0)
    nthreads = chat__hash_default_threads();
  /* With a helper these threads only wait for it, and it is the helper
   * that runs idle-class; without one they hash, so they give way. */
  chat__worker_opts_t o = {nthreads, max_queued,
                           hasher != NULL ? 0 : CHAT_HASH_NICE};
  r = chat__worker_new_opts(loop, &o, &p->worker);
  if (r < 0) {
    chat__hasher_free(hasher);
    free(p);
    return r;
  }
  p->hasher = hasher;
  *out = p;
  return 0;
}

unsigned chat__hash_default_threads(void) {
  unsigned n = chat__worker_default_threads();

  return n > 1 ? n - 1 : 1;
}

void chat__hash_pool_stop(chat__hash_pool_t *p) {
  chat__worker_stop(p->worker);
}

void chat__hash_pool_free(chat__hash_pool_t *p) {
  if (p == NULL)
    return;
  chat__worker_free(p->worker); /* runs the callbacks still to come */
  chat__hasher_free(p->hasher);  /* no call is in progress any more */
  free(p);
}

void chat__hash_pool_stats(chat__hash_pool_t *p, chat__hash_stats_t *out) {
  out->computed = __atomic_load_n(&p->computed, __ATOMIC_RELAXED);
  out->in_helper = __atomic_load_n(&p->in_helper, __ATOMIC_RELAXED);
  out->cancelled = p->cancelled;
  out->refused = p->refused;
}

size_t chat__hash_pool_queued(chat__hash_pool_t *p) {
  return chat__worker_queued(p->worker);
}

int chat__hash_pool_admit(chat__hash_pool_t *p) {
  if (p == NULL || !chat__worker_full(p->worker))
    return 0;
  p->refused++;
  return -EAGAIN;
}

chat__worker_t *chat__hash_pool_worker(chat__hash_pool_t *p) {
  return p->worker;
}
