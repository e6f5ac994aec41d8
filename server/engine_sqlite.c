/* engine_sqlite.c -- the engine (engine.h) on the SQLite store: writes go
 * through the committer's group commits, reads run on the same store thread
 * behind the writes added before them (chat__committer_read), so a read
 * always sees what the core wrote first. No SQL here: store_sqlite.c has
 * it all. */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "committer.h"

typedef struct sqlite_engine {
  chat__engine_t base;
  chat__store_t *store;
  chat__committer_t *committer;
} sqlite_engine_t;

#define SE(e) ((sqlite_engine_t *)(void *)(e))

/* One read in flight: its inputs, copied, and its result. */
typedef enum { R_USER, R_GROUP, R_HELD, R_SENT } read_kind_t;

typedef struct read_job {
  read_kind_t kind;
  void *cb;
  void *arg;
  int full;
  uint64_t after;
  uint32_t limit;
  int more;
  size_t n;
  chat__store_user_t *user;
  chat__store_group_t *group;
  chat__stored_msg_t *msgs;
  char *a, *b; /* name / rcpt / from, and token hash / msg_id */
} read_job_t;

static int read_fn(chat__store_t *store, void *arg) {
  read_job_t *j = arg;
  switch (j->kind) {
  case R_USER:
    return chat__store_get_user(store, j->a, j->full, j->b, &j->user);
  case R_GROUP:
    return chat__store_get_group(store, j->a, &j->group);
  case R_HELD:
    return chat__store_get_held(store, j->a, j->after, j->limit, &j->msgs,
                                &j->n, &j->more);
  case R_SENT:
    return chat__store_find_sent(store, j->a, j->b, &j->msgs);
  }
  return -EINVAL;
}

static void job_free(read_job_t *j) {
  chat__store_user_free(j->user);
  chat__store_group_free(j->group);
  free(j->msgs);
  free(j->a);
  free(j->b);
  free(j);
}

static void read_done(void *arg, int status) {
  read_job_t *j = arg;
  switch (j->kind) {
  case R_USER:
    ((chat__engine_user_cb)j->cb)(j->arg, status, status == 0 ? j->user : NULL);
    break;
  case R_GROUP:
    ((chat__engine_group_cb)j->cb)(j->arg, status,
                                   status == 0 ? j->group : NULL);
    break;
  case R_HELD:
    ((chat__engine_held_cb)j->cb)(j->arg, status, j->msgs,
                                  status == 0 ? j->n : 0, j->more);
    break;
  case R_SENT:
    ((chat__engine_sent_cb)j->cb)(j->arg, status, status == 0 ? j->msgs : NULL);
    break;
  }
  job_free(j);
}

static read_job_t *job_new(read_kind_t kind, const char *a, const char *b,
                           void *cb, void *arg) {
  read_job_t *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->kind = kind;
  j->cb = cb;
  j->arg = arg;
  if ((j->a = strdup(a)) == NULL || (b != NULL && (j->b = strdup(b)) == NULL)) {
    job_free(j);
    return NULL;
  }
  return j;
}

static int job_submit(chat__engine_t *e, read_job_t *j) {
  if (j == NULL)
    return -ENOMEM;
  int r = chat__committer_read(SE(e)->committer, read_fn, read_done, j);
  if (r < 0)
    job_free(j);
  return r;
}

static int se_load_user(chat__engine_t *e, const char *name, int full,
                        const char *token_hash, chat__engine_user_cb cb,
                        void *arg) {
  read_job_t *j = job_new(R_USER, name, token_hash, (void *)cb, arg);
  if (j != NULL)
    j->full = full;
  return job_submit(e, j);
}

static int se_load_group(chat__engine_t *e, const char *name,
                         chat__engine_group_cb cb, void *arg) {
  return job_submit(e, job_new(R_GROUP, name, NULL, (void *)cb, arg));
}

static int se_load_held(chat__engine_t *e, const char *rcpt, uint64_t after,
                        uint32_t limit, chat__engine_held_cb cb, void *arg) {
  read_job_t *j = job_new(R_HELD, rcpt, NULL, (void *)cb, arg);
  if (j != NULL) {
    j->after = after;
    j->limit = limit;
  }
  return job_submit(e, j);
}

static int se_find_sent(chat__engine_t *e, const char *from, const char *msg_id,
                        chat__engine_sent_cb cb, void *arg) {
  return job_submit(e, job_new(R_SENT, from, msg_id, (void *)cb, arg));
}

static int se_add(chat__engine_t *e, const chat__store_op_t *op) {
  return chat__committer_add(SE(e)->committer, op);
}

static int se_then(chat__engine_t *e, chat__engine_done_cb cb, void *arg) {
  return chat__committer_then(SE(e)->committer, cb, arg);
}

static size_t se_pending(const chat__engine_t *e) {
  return chat__committer_pending(((const sqlite_engine_t *)(const void *)e)
                                    ->committer);
}

static void se_on_fail(chat__engine_t *e, chat__engine_fail_cb cb, void *arg) {
  chat__committer_on_fail(SE(e)->committer, cb, arg);
}

static int se_flushing(const chat__engine_t *e) {
  return chat__committer_flushing(
      ((const sqlite_engine_t *)(const void *)e)->committer);
}

static int se_max_seq(chat__engine_t *e, uint64_t *seq) {
  return chat__store_max_seq(SE(e)->store, seq);
}

static int se_flush_sync(chat__engine_t *e) {
  return chat__committer_flush_sync(SE(e)->committer);
}

static void se_free(chat__engine_t *e) {
  sqlite_engine_t *se = SE(e);
  chat__committer_free(se->committer); /* flushes first */
  chat__store_close(se->store);
  free(se);
}

static const chat__engine_type_t sqlite_type = {
    .name = "sqlite",
    .add = se_add,
    .then = se_then,
    .pending = se_pending,
    .on_fail = se_on_fail,
    .flushing = se_flushing,
    .load_user = se_load_user,
    .load_group = se_load_group,
    .load_held = se_load_held,
    .find_sent = se_find_sent,
    .max_seq = se_max_seq,
    .flush_sync = se_flush_sync,
    .free = se_free,
};

int chat__engine_sqlite_new(uv_loop_t *loop, chat__store_t *store,
                            chat__engine_t **out) {
  sqlite_engine_t *se = calloc(1, sizeof(*se));
  *out = NULL;
  if (se == NULL)
    return -ENOMEM;
  int r = chat__committer_new(loop, store, &se->committer);
  if (r < 0) {
    free(se);
    return r;
  }
  se->base.type = &sqlite_type;
  se->store = store;
  *out = &se->base;
  return 0;
}

struct chat__committer *chat__engine_sqlite_committer(chat__engine_t *e) {
  return SE(e)->committer;
}
