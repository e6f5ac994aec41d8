/* engine_fixture.h -- what test_engine.c runs its cases on: a loop with
 * one engine (SQLite on ":memory:" through the committer, the in-memory
 * one, or Redis on a redis-server the test runs, emptied before each
 * case), ops to add, and reads that wait for their callback and
 * turn the answer into a string, so each case reads as what the store
 * should say. Header-only, like committer_fixture.h. */
#ifndef TEST_SERVER_ENGINE_FIXTURE_H
#define TEST_SERVER_ENGINE_FIXTURE_H

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
#include <sqlite3.h>
#include <uv.h>

#include "engine.h"
#include "../../support/redis_proc.h"

typedef struct fx {
  uv_loop_t loop;
  chat__engine_t *e;
  chat__store_t *store; /* the SQLite engine's, owned by it; NULL for mem */
  int redis;           /* the Redis engine */
  int skip;            /* Redis was asked for and there is none */
  int in_call;         /* set around every request: callbacks must not see it */
  int fired;           /* callbacks run so far */
  char log[256];       /* their tags, in the order they ran */
} fx_t;

static inline int setup_sqlite(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(chat__store_open(":memory:", &f->store, NULL, 0), 0);
  assert_int_equal(chat__engine_sqlite_new(&f->loop, f->store, &f->e), 0);
  *state = f;
  return 0;
}

static inline int setup_mem(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(chat__engine_mem_new(&f->loop, &f->e), 0);
  *state = f;
  return 0;
}

/* The redis-server of the Redis cases (started by main, rp_start), or
 * NULL with fx_redis_why saying why there is none. */
static rp_t *fx_redis;
static const char *fx_redis_why = "redis-server did not start";

static inline int setup_redis(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  char reply[256], err[512] = "";
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->redis = 1;
  *state = f;
  if (fx_redis == NULL) {
    f->skip = 1; /* the case skips, saying why */
    return 0;
  }
  assert_int_equal(rp_cmd(fx_redis, "FLUSHALL", reply, sizeof(reply)), 0);
  assert_string_equal(reply, "+OK");
  int r = chat__engine_redis_new(&f->loop, fx_redis->url, 0, &f->e, err,
                                 sizeof(err));
  if (r != 0)
    fail_msg("chat__engine_redis_new(%s): %s", fx_redis->url, err);
  return 0;
}

static inline int teardown(void **state) {
  fx_t *f = *state;
  chat__engine_free(f->e);
  /* engine.h: the loop runs once more so the engine's handles close */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* Runs the loop until *n callbacks have fired, with a bound on turns. */
static inline void run_until(fx_t *f, int n) {
  for (int i = 0; f->fired < n && i < 100000; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->fired, n);
}

static inline void note(fx_t *f, const char *tag) {
  assert_false(f->in_call); /* never from inside the call */
  f->fired++;
  strncat(f->log, tag, sizeof(f->log) - strlen(f->log) - 1);
}

/* ---- ops ------------------------------------------------------------------
 */

static inline void add(fx_t *f, chat__store_op_kind_t kind, const char *a,
                       const char *b) {
  chat__store_op_t op = {.kind = kind, .a = a, .b = b};
  assert_int_equal(chat__engine_add(f->e, &op), 0);
}

static inline void add_tok(fx_t *f, chat__store_op_kind_t kind,
                           const char *user, const char *hash, int64_t ts) {
  chat__store_op_t op = {.kind = kind, .a = user, .b = hash};
  op.msg.ts = ts;
  assert_int_equal(chat__engine_add(f->e, &op), 0);
}

static inline void put(fx_t *f, uint64_t seq, const char *to, const char *from,
                const char *group, const char *msg_id, const char *body) {
  chat__store_op_t op = {.kind = CHAT_STORE_PUT_MSG};
  op.msg = (chat__stored_msg_t){.seq = seq,
                                .to = to,
                                .from = from,
                                .group = group,
                                .msg_id = msg_id,
                                .body = body,
                                .body_len = strlen(body),
                                .ts = 1000 + (int64_t)seq};
  assert_int_equal(chat__engine_add(f->e, &op), 0);
}

static inline void del(fx_t *f, uint64_t seq, const char *to) {
  chat__store_op_t op = {.kind = CHAT_STORE_DEL_MSG};
  op.msg.seq = seq;
  op.msg.to = to;
  assert_int_equal(chat__engine_add(f->e, &op), 0);
}

/* ---- reads, as strings ----------------------------------------------------
 */

typedef struct res {
  fx_t *f;
  int status;
  int full; /* a full load was asked: print the lists, empty or not */
  char s[512];
} res_t;

static inline void cat(char *s, size_t cap, const char *x) {
  strncat(s, x, cap - strlen(s) - 1);
}

static inline void list(char *s, size_t cap, const char *name, char **v,
                 uint32_t n) {
  cat(s, cap, " ");
  cat(s, cap, name);
  cat(s, cap, "=[");
  for (uint32_t i = 0; i < n; i++) {
    if (i > 0)
      cat(s, cap, ",");
    cat(s, cap, v[i]);
  }
  cat(s, cap, "]");
}

static inline void user_cb(void *arg, int status,
                           const chat__engine_user_t *u) {
  res_t *r = arg;
  note(r->f, "u");
  r->status = status;
  if (status != 0 || u == NULL)
    return;
  if (!u->exists) {
    snprintf(r->s, sizeof(r->s), "none");
    return;
  }
  snprintf(r->s, sizeof(r->s), "%s held=%u sent=%u tok=%lld", u->pwhash,
           u->held, u->sent_held, (long long)u->token_used);
  if (r->full) {
    list(r->s, sizeof(r->s), "c", u->contacts, u->ncontacts);
    list(r->s, sizeof(r->s), "r", u->requests, u->nrequests);
    list(r->s, sizeof(r->s), "g", u->groups, u->ngroups);
  }
}

static inline void group_cb(void *arg, int status,
                            const chat__engine_group_t *g) {
  res_t *r = arg;
  note(r->f, "g");
  r->status = status;
  if (status == 0 && g != NULL) {
    snprintf(r->s, sizeof(r->s), "%s", g->exists ? "yes" : "none");
    list(r->s, sizeof(r->s), "m", g->members, g->nmembers);
  }
}

static inline void msg_str(char *s, size_t cap, const chat__stored_msg_t *m) {
  char b[160];
  snprintf(b, sizeof(b), "%llu:%s>%s%s%s#%s=%.*s@%lld",
           (unsigned long long)m->seq, m->from, m->to, m->group ? "/" : "",
           m->group ? m->group : "", m->msg_id, (int)m->body_len, m->body,
           (long long)m->ts);
  cat(s, cap, b);
}

static inline void held_cb(void *arg, int status,
                           const chat__stored_msg_t *msgs, size_t n, int more) {
  res_t *r = arg;
  note(r->f, "h");
  r->status = status;
  r->s[0] = 0;
  for (size_t i = 0; i < n; i++) {
    msg_str(r->s, sizeof(r->s), &msgs[i]);
    cat(r->s, sizeof(r->s), " ");
  }
  cat(r->s, sizeof(r->s), more ? "more" : "end");
}

static inline void sent_cb(void *arg, int status, const chat__stored_msg_t *m) {
  res_t *r = arg;
  note(r->f, "s");
  r->status = status;
  r->s[0] = 0;
  if (m != NULL)
    msg_str(r->s, sizeof(r->s), m);
  else
    cat(r->s, sizeof(r->s), "none");
}

static inline void then_cb(void *arg, int status) {
  res_t *r = arg;
  note(r->f, "t");
  r->status = status;
  snprintf(r->s, sizeof(r->s), "then %d", status);
}

/* Each asks, checks it was not answered inside the call, and waits. */
static inline const char *user(fx_t *f, const char *name, int full,
                        const char *tok) {
  static res_t r;
  memset(&r, 0, sizeof(r));
  r.f = f;
  r.full = full;
  int n = f->fired;
  f->in_call = 1;
  assert_int_equal(chat__engine_load_user(f->e, name, full, tok, user_cb, &r),
                   0);
  f->in_call = 0;
  run_until(f, n + 1);
  assert_int_equal(r.status, 0);
  return r.s;
}

static inline const char *group(fx_t *f, const char *name) {
  static res_t r;
  memset(&r, 0, sizeof(r));
  r.f = f;
  int n = f->fired;
  f->in_call = 1;
  assert_int_equal(chat__engine_load_group(f->e, name, group_cb, &r), 0);
  f->in_call = 0;
  run_until(f, n + 1);
  assert_int_equal(r.status, 0);
  return r.s;
}

static inline const char *held(fx_t *f, const char *rcpt, uint64_t after,
                        uint32_t limit) {
  static res_t r;
  memset(&r, 0, sizeof(r));
  r.f = f;
  int n = f->fired;
  f->in_call = 1;
  assert_int_equal(
      chat__engine_load_held(f->e, rcpt, after, limit, held_cb, &r), 0);
  f->in_call = 0;
  run_until(f, n + 1);
  assert_int_equal(r.status, 0);
  return r.s;
}

static inline const char *sent(fx_t *f, const char *from, const char *msg_id) {
  static res_t r;
  memset(&r, 0, sizeof(r));
  r.f = f;
  int n = f->fired;
  f->in_call = 1;
  assert_int_equal(chat__engine_find_sent(f->e, from, msg_id, sent_cb, &r), 0);
  f->in_call = 0;
  run_until(f, n + 1);
  assert_int_equal(r.status, 0);
  return r.s;
}

/* Waits for everything added so far; returns the waiter's status. */
static inline int settle(fx_t *f) {
  res_t r = {.f = f};
  int n = f->fired;
  f->in_call = 1;
  assert_int_equal(chat__engine_then(f->e, then_cb, &r), 0);
  f->in_call = 0;
  run_until(f, n + 1);
  return r.status;
}

#endif /* TEST_SERVER_ENGINE_FIXTURE_H */
