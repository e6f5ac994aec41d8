/* test_hash_pool.c -- password hashes on their own pool: a commit is not
 * delayed by queued hashes, an abandoned login or registration is never
 * hashed, a full queue refuses with rate_limited, and a stop drops the
 * queued hashes without answering.
 *
 * Gates (gate.h) hold every hash thread, so "the hashes are still queued"
 * is a fact the test arranges, not a race it hopes to win. */
#include "committer_int.h"
#include "fixture.h"
#include "gate.h"
#include "hash_int.h"

#define HASH_THREADS 2
#define NHASH 40
#define NUVPOOL 4

typedef struct counts {
  int hashed_cbs;
  int commit_cbs;
  int commit_status;
  /* seen by the commit callback */
  uint64_t computed_at_commit;
  size_t queued_at_commit;
  int hashed_cbs_at_commit;
  chat__hash_pool_t *pool;
} counts_t;

static void on_hashed(void *arg, int status, const char *hash) {
  counts_t *c = arg;
  assert_int_equal(status, 0);
  assert_non_null(hash);
  c->hashed_cbs++;
}

static void on_commit(void *arg, int status) {
  counts_t *c = arg;
  chat__hash_stats_t st;
  chat__hash_pool_stats(c->pool, &st);
  c->commit_cbs++;
  c->commit_status = status;
  c->computed_at_commit = st.computed;
  c->queued_at_commit = chat__hash_pool_queued(c->pool);
  c->hashed_cbs_at_commit = c->hashed_cbs;
}

static int commit_seen(void *arg) { return ((counts_t *)arg)->commit_cbs > 0; }
static int all_hashed(void *arg) {
  return ((counts_t *)arg)->hashed_cbs == NHASH;
}

/* libuv's own pool, held too: the committer must not need it either. */
typedef struct uvgate {
  uv_work_t req;
  uv_sem_t *started, *open;
  int done;
} uvgate_t;

static void uvgate_work(uv_work_t *req) {
  uvgate_t *g = req->data;
  uv_sem_post(g->started);
  uv_sem_wait(g->open);
}

static void uvgate_after(uv_work_t *req, int status) {
  ((uvgate_t *)req->data)->done = 1;
}

/* Every hash thread and every libuv pool thread is held and NHASH hashes
 * are queued; a commit added then still completes, and its callback sees
 * all NHASH hashes still queued, none computed. */
static void test_commit_while_hash_pool_saturated(void **state) {
  (void)state;
  uv_loop_t loop;
  chat__store_t *store;
  chat__committer_t *cm;
  chat__hash_pool_t *pool;
  char err[128];
  counts_t c = {0};
  gate_t gates[HASH_THREADS];
  uvgate_t uvg[NUVPOOL];
  uv_sem_t uv_started, uv_open;

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(chat__store_open(":memory:", &store, err, sizeof(err)), 0);
  assert_int_equal(chat__committer_new(&loop, store, &cm), 0);
  assert_int_equal(
      chat__hash_pool_new(&loop, HASH_THREADS, 0, NULL, &pool), 0);
  c.pool = pool;

  assert_int_equal(uv_sem_init(&uv_started, 0), 0);
  assert_int_equal(uv_sem_init(&uv_open, 0), 0);
  for (int i = 0; i < NUVPOOL; i++) {
    uvg[i] = (uvgate_t){.started = &uv_started, .open = &uv_open};
    uvg[i].req.data = &uvg[i];
    assert_int_equal(
        uv_queue_work(&loop, &uvg[i].req, uvgate_work, uvgate_after), 0);
  }
  for (int i = 0; i < NUVPOOL; i++)
    uv_sem_wait(&uv_started); /* every libuv pool thread is held */
  for (int i = 0; i < HASH_THREADS; i++)
    gate_hold(&gates[i], chat__hash_pool_worker(pool));
  for (int i = 0; i < NHASH; i++)
    assert_int_equal(chat__hash_make(pool, &loop, CHAT_HASH_MIN, "password1",
                                     on_hashed, &c, NULL),
                     0);
  assert_int_equal(chat__hash_pool_queued(pool), NHASH);

  chat__store_op_t op = {
      .kind = CHAT_STORE_ADD_USER, .a = "alice", .b = "$argon2id$dummy"};
  assert_int_equal(chat__committer_add(cm, &op), 0);
  assert_int_equal(chat__committer_then(cm, on_commit, &c), 0);
  int r = run_until(&loop, commit_seen, &c, GATE_DEADLINE_MS);

  /* Let everything go before asserting, so a failure cannot hang. */
  for (int i = 0; i < HASH_THREADS; i++)
    gate_open(&gates[i]);
  for (int i = 0; i < NUVPOOL; i++)
    uv_sem_post(&uv_open);
  int r2 = run_until(&loop, all_hashed, &c, GATE_DEADLINE_MS);
  uv_run(&loop, UV_RUN_DEFAULT);

  assert_int_equal(r, 0);
  assert_int_equal(c.commit_status, 0);
  assert_int_equal(c.computed_at_commit, 0);
  assert_int_equal(c.queued_at_commit, NHASH);
  assert_int_equal(c.hashed_cbs_at_commit, 0);
  assert_int_equal(r2, 0);
  chat__hash_stats_t st;
  chat__hash_pool_stats(pool, &st);
  assert_int_equal(st.computed, NHASH);
  for (int i = 0; i < NUVPOOL; i++)
    assert_true(uvg[i].done);
  for (int i = 0; i < HASH_THREADS; i++) {
    assert_true(gates[i].done);
    gate_destroy(&gates[i]);
  }
  uv_sem_destroy(&uv_started);
  uv_sem_destroy(&uv_open);
  chat__hash_pool_free(pool);
  chat__committer_free(cm);
  uv_run(&loop, UV_RUN_DEFAULT);
  chat__store_close(store);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- through the server core --------------------------------------------- */

static void hold_all(fx_t *f, gate_t *g, int n) {
  for (int i = 0; i < n; i++)
    gate_hold(&g[i], chat__hash_pool_worker(f->hashes));
}

static void open_all(gate_t *g, int n) {
  for (int i = 0; i < n; i++)
    gate_open(&g[i]);
}

static void destroy_all(gate_t *g, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(g[i].done);
    gate_destroy(&g[i]);
  }
}

static void login(fx_t *f, cap_t *c, const char *id, const char *user) {
  fx_feed(f, c, "{s:s,s:s,s:s,s:s}", "type", "login", "id", id, "user", user,
          "password", "password1");
}

/* What fx_disconnect does, without waiting for the loop to go idle (the
 * held gates keep it busy). */
static void drop(fx_t *f, cap_t *c) {
  c->gone = 1;
  chat__srv_session_end(&f->srv, c->s, "closed");
  chat__session_unref(c->s);
}

static int has_frame(void *c) {
  return json_array_size(((cap_t *)c)->frames) > 0;
}

/* A login or register reads the store before it hashes: wait until the
 * hashes are queued. */
static fx_t *g_fx;
static size_t g_want;
static int hashes_queued(void *unused) {
  return chat__hash_pool_queued(g_fx->hashes) >= g_want;
}

static void wait_queued(fx_t *f, size_t n) {
  g_fx = f;
  g_want = n;
  assert_int_equal(run_until(&f->loop, hashes_queued, NULL, GATE_DEADLINE_MS),
                   0);
}

/* Logins queued behind held threads: one whose connection went away and
 * one closed (e.g. by the login timeout) are never hashed and get no reply;
 * one still wanted is hashed and answered. Counted by the pool. */
static void test_abandoned_login_not_hashed(void **state) {
  fx_t *f = *state;
  gate_t g[HASH_THREADS];
  chat__hash_stats_t before, after;

  fx_user(f, "bob"); /* registered (and hashed) before counting */
  cap_t *gone = fx_connect(f), *closed = fx_connect(f), *kept = fx_connect(f);
  chat__hash_pool_stats(f->hashes, &before);
  hold_all(f, g, HASH_THREADS);
  login(f, gone, "l1", "bob");
  login(f, closed, "l2", "nobody"); /* an unknown user: the dummy verify */
  login(f, kept, "l3", "bob");
  wait_queued(f, 3);
  size_t queued = chat__hash_pool_queued(f->hashes);
  drop(f, gone);
  chat__session_close(closed->s);
  size_t queued_after = chat__hash_pool_queued(f->hashes);
  open_all(g, HASH_THREADS);
  int r = run_until(&f->loop, has_frame, kept, GATE_DEADLINE_MS);
  fx_run(f);
  destroy_all(g, HASH_THREADS);
  chat__hash_pool_stats(f->hashes, &after);

  assert_int_equal(r, 0);
  assert_int_equal(queued, 3);
  assert_int_equal(queued_after, 1);
  assert_int_equal(after.computed - before.computed, 1);
  assert_int_equal(after.cancelled - before.cancelled, 2);
  json_t *ok = cap_expect(kept, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "l3");
  json_decref(ok);
  cap_empty(gone);
  cap_empty(closed);
  assert_null(kept->s->hash_req);
  assert_null(closed->s->hash_req);
}

/* The same for a registration: the name is free again afterwards. */
static void test_abandoned_register_not_hashed(void **state) {
  fx_t *f = *state;
  gate_t g[HASH_THREADS];
  chat__hash_stats_t before, after;

  cap_t *c = fx_connect(f);
  chat__hash_pool_stats(f->hashes, &before);
  hold_all(f, g, HASH_THREADS);
  fx_feed(f, c, "{s:s,s:s,s:s,s:s}", "type", "register", "id", "r1", "user",
          "carol", "password", "password1");
  wait_queued(f, 1);
  drop(f, c);
  open_all(g, HASH_THREADS);
  fx_run(f);
  destroy_all(g, HASH_THREADS);
  chat__hash_pool_stats(f->hashes, &after);
  assert_int_equal(after.computed - before.computed, 0);
  assert_int_equal(after.cancelled - before.cancelled, 1);
  cap_empty(c);
  cap_t *d = fx_user(f, "carol"); /* the name was given back */
  (void)d;
}

/* Replaces the fixture's pool by one thread with max_queued places. */
static void small_pool(fx_t *f, size_t max_queued) {
  chat__hash_pool_free(f->hashes);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(
      chat__hash_pool_new(&f->loop, 1, max_queued, NULL, &f->hashes), 0);
  f->srv.hashes = f->hashes;
}

/* A full queue refuses at once with rate_limited (the connection stays
 * usable and the name is not taken); what was queued is answered. */
static void test_full_queue_rate_limited(void **state) {
  fx_t *f = *state;
  gate_t g;

  fx_user(f, "bob");
  small_pool(f, 2);
  cap_t *a = fx_connect(f), *b = fx_connect(f), *c = fx_connect(f);
  gate_hold(&g, chat__hash_pool_worker(f->hashes));
  login(f, a, "l1", "bob");
  login(f, b, "l2", "bob");
  wait_queued(f, 1); /* l1 queued behind the gate, l2 and l3 reading */
  login(f, c, "l3", "bob");
  assert_int_equal(run_until(&f->loop, has_frame, c, GATE_DEADLINE_MS), 0);
  json_t *e = cap_next(c);
  fx_feed(f, c, "{s:s,s:s,s:s,s:s}", "type", "register", "id", "r1", "user",
          "dave", "password", "password1");
  assert_int_equal(run_until(&f->loop, has_frame, c, GATE_DEADLINE_MS), 0);
  json_t *e2 = cap_next(c);
  gate_open(&g);
  fx_run(f);
  gate_destroy(&g);

  assert_non_null(e);
  assert_string_equal(jstr(e, "type"), "error");
  assert_string_equal(jstr(e, "code"), "rate_limited");
  assert_string_equal(jstr(e, "id"), "l3");
  assert_non_null(strstr(jstr(e, "message"), "busy hashing"));
  json_decref(e);
  assert_non_null(e2);
  assert_string_equal(jstr(e2, "code"), "rate_limited");
  assert_string_equal(jstr(e2, "id"), "r1");
  json_decref(e2);
  assert_null(chat__registry_find(&f->srv.reg, "dave"));
  chat__hash_stats_t st;
  chat__hash_pool_stats(f->hashes, &st);
  assert_int_equal(st.refused, 2);
  /* a and b: the second login of bob kicks the first */
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(b, "ok", NULL);
  cap_empty(c);
  assert_false(c->s->busy);
  fx_send(f, c, "{s:s,s:s,s:s,s:s}", "type", "register", "id", "r2", "user",
          "dave", "password", "password1");
  cap_expect_drop(c, "ok", NULL);
}

/* With the queue already full, a password login or a registration is
 * refused at once, before the store is read for it: in a login storm the
 * refused attempts (clients retry) must not queue reads on the store's
 * thread, where durable writes wait behind them. */
static void test_full_queue_refused_before_reading(void **state) {
  fx_t *f = *state;
  gate_t g;

  fx_user(f, "bob");
  small_pool(f, 1);
  cap_t *a = fx_connect(f), *c = fx_connect(f);
  gate_hold(&g, chat__hash_pool_worker(f->hashes));
  login(f, a, "l1", "bob");
  wait_queued(f, 1); /* full */
  login(f, c, "l2", "bob"); /* not run: no loop turn between */
  json_t *e = cap_next(c);
  fx_feed(f, c, "{s:s,s:s,s:s,s:s}", "type", "register", "id", "r1", "user",
          "dave", "password", "password1");
  json_t *e2 = cap_next(c);
  gate_open(&g);
  fx_run(f);
  gate_destroy(&g);

  assert_non_null(e);
  assert_string_equal(jstr(e, "code"), "rate_limited");
  assert_string_equal(jstr(e, "id"), "l2");
  json_decref(e);
  assert_non_null(e2);
  assert_string_equal(jstr(e2, "code"), "rate_limited");
  assert_string_equal(jstr(e2, "id"), "r1");
  json_decref(e2);
  assert_false(c->s->busy);
  assert_null(chat__registry_find(&f->srv.reg, "dave"));
  cap_expect_drop(a, "ok", NULL);
  cap_empty(c);
}

/* A connection refused because the server is busy hashing is not an idle
 * one: its login clock starts again, so a client retrying through a long
 * storm is not cut off by --login-timeout for the server's delay. */
static void test_busy_refusal_restarts_login_clock(void **state) {
  fx_t *f = *state;
  gate_t g;

  f->srv.cfg.login_timeout = 60;
  fx_user(f, "bob");
  small_pool(f, 1);
  cap_t *a = fx_connect(f), *c = fx_connect(f);
  c->s->opened_ms = 0; /* opened long ago, as after a minute of retries */
  gate_hold(&g, chat__hash_pool_worker(f->hashes));
  login(f, a, "l1", "bob");
  wait_queued(f, 1); /* full */
  login(f, c, "l2", "bob");
  json_t *e = cap_next(c);
  uint64_t now = uv_now(&f->loop);
  chat__srv_sweep(&f->srv, now + 59000);
  int cut = c->closed;
  gate_open(&g);
  fx_run(f);
  gate_destroy(&g);

  assert_non_null(e);
  assert_string_equal(jstr(e, "code"), "rate_limited");
  json_decref(e);
  assert_true(c->s->opened_ms >= now - 1000 && c->s->opened_ms <= now);
  assert_false(cut);
  cap_empty(c);
  /* the clock still runs: a minute after the refusal it is cut */
  chat__srv_sweep(&f->srv, c->s->opened_ms + 60000);
  assert_true(c->closed);
  cap_expect_drop(a, "ok", NULL);
}

/* Shutdown: stopping the pool cancels the queued hashes; their sessions
 * get no reply, and nothing queued is computed. */
static void test_stop_drops_queued(void **state) {
  fx_t *f = *state;
  gate_t g;
  chat__hash_stats_t before, after;

  fx_user(f, "bob");
  small_pool(f, 0);
  cap_t *c[8];
  for (int i = 0; i < 8; i++)
    c[i] = fx_connect(f);
  chat__hash_pool_stats(f->hashes, &before);
  gate_hold(&g, chat__hash_pool_worker(f->hashes));
  for (int i = 0; i < 8; i++)
    login(f, c[i], "l", "bob");
  wait_queued(f, 8);
  chat__hash_pool_stop(f->hashes);
  gate_open(&g);
  fx_run(f);
  gate_destroy(&g);
  chat__hash_pool_stats(f->hashes, &after);
  assert_int_equal(after.computed - before.computed, 0);
  assert_int_equal(after.cancelled - before.cancelled, 8);
  for (int i = 0; i < 8; i++) {
    cap_empty(c[i]);
    assert_null(c[i]->s->hash_req);
  }
}

/* Two logins of one user at once, the wrong password's hash first (one
 * hash thread: FIFO): its failure must not drop the lists the other login
 * needs (it did: the right password was then refused). */
static void test_failed_login_keeps_a_racing_one(void **state) {
  fx_t *f = *state;
  gate_t g;

  cap_t *b = fx_user(f, "bob");
  fx_disconnect(f, b);
  small_pool(f, 8);
  cap_t *wrong = fx_connect(f), *right = fx_connect(f);
  gate_hold(&g, chat__hash_pool_worker(f->hashes));
  fx_feed(f, wrong, "{s:s,s:s,s:s,s:s}", "type", "login", "id", "w1", "user",
          "bob", "password", "not-the-password");
  login(f, right, "r1", "bob");
  wait_queued(f, 2);
  gate_open(&g);
  fx_run(f);
  gate_destroy(&g);
  json_t *e = cap_expect(wrong, "error", "auth_failed");
  json_decref(e);
  json_t *ok = cap_expect(right, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), "r1");
  json_decref(ok);
  assert_true(chat__registry_find(&f->srv.reg, "bob")->full);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
  /* Before libuv starts its pool: the test holds every thread of it. */
  setenv("UV_THREADPOOL_SIZE", "4", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commit_while_hash_pool_saturated),
      T(test_abandoned_login_not_hashed),
      T(test_abandoned_register_not_hashed),
      T(test_full_queue_rate_limited),
      T(test_full_queue_refused_before_reading),
      T(test_busy_refusal_restarts_login_clock),
      T(test_stop_drops_queued),
      T(test_failed_login_keeps_a_racing_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
