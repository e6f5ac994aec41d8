/* committer_fixture.h -- what test_committer.c and test_committer_perf.c
 * share: a loop with a deadline, a temp database, a store and a committer,
 * ops to feed it, and what a second connection sees committed. Header-only;
 * setup and teardown are the cmocka fixture of each test. */
#ifndef TEST_SERVER_COMMITTER_FIXTURE_H
#define TEST_SERVER_COMMITTER_FIXTURE_H

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
  chat__store_t *store;
  chat__committer_t *c;
} fx_t;

static inline void on_deadline(uv_timer_t *t) {
  fail_msg("deadline reached: the loop did not finish its work");
}

static inline int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(uv_timer_init(&f->loop, &f->deadline), 0);
  snprintf(f->dir, sizeof(f->dir), "/tmp/chat-committer-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/chat.db", f->dir);
  assert_int_equal(chat__store_open(f->path, &f->store, NULL, 0), 0);
  assert_int_equal(chat__committer_new(&f->loop, f->store, &f->c), 0);
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
  fx_t *f = *state;
  char p[128];
  size_t i;

  chat__committer_free(f->c);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  /* Finishes closing the committer's handles; every handle is closed. */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  chat__store_close(f->store);
  for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(f->dir), 0);
  free(f);
  return 0;
}

/* Runs the loop until it has nothing left to do, which must be soon. */
static inline void run_until_idle(fx_t *f) {
  assert_int_equal(uv_timer_start(&f->deadline, on_deadline, 60000, 0), 0);
  uv_unref((uv_handle_t *)&f->deadline);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  uv_timer_stop(&f->deadline);
}

static inline chat__store_op_t user_op(const char *name) {
  chat__store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_ADD_USER;
  op.a = name;
  op.b = "$argon2id$hash";
  return op;
}

static inline chat__store_op_t msg_op(uint64_t seq, const char *body,
                                      size_t len) {
  chat__store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_PUT_MSG;
  op.msg.seq = seq;
  op.msg.to = "bob";
  op.msg.from = "amy";
  /* A sender's 1:1 msg_id is stored once, so each seq has its own; a ring
   * of buffers keeps several ops valid at once. */
  static char ids[16][24];
  static unsigned next;
  char *id = ids[next++ % 16];
  snprintf(id, sizeof(ids[0]), "id%llu", (unsigned long long)seq);
  op.msg.msg_id = id;
  op.msg.body = body;
  op.msg.body_len = len;
  op.msg.ts = 1;
  return op;
}

static inline int msg_cb(void *ctx, const chat__stored_msg_t *m) {
  (*(int *)ctx)++;
  return 0;
}

static inline int committed_msgs(const fx_t *f) {
  chat__store_t *s = NULL;
  int n = 0;

  assert_int_equal(chat__store_open(f->path, &s, NULL, 0), 0);
  assert_int_equal(chat__store_load_messages(s, msg_cb, &n), 0);
  chat__store_close(s);
  return n;
}

static inline chat__committer_stats_t stats(const fx_t *f) {
  chat__committer_stats_t st;

  chat__committer_stats(f->c, &st);
  return st;
}

#endif /* TEST_SERVER_COMMITTER_FIXTURE_H */
