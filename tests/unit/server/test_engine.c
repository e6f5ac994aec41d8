/* test_engine.c -- the engine contract (engine.h): every case runs against
 * the SQLite engine, the in-memory one and the Redis one, which must answer
 * alike (store_sqlite.c's SQL is the reference). The Redis cases run on a
 * redis-server this test starts (tests/support/redis_proc.h) and skip,
 * saying why, when there is none. */
#include "engine_fixture.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static void users(fx_t *f, int n, ...) {
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++)
    add(f, CHAT_STORE_ADD_USER, va_arg(ap, const char *), "pw");
  va_end(ap);
}

static void test_users(void **state) {
  fx_t *f = *state;
  add(f, CHAT_STORE_ADD_USER, "alice", "pw1");
  add(f, CHAT_STORE_ADD_USER, "alice", "pw2"); /* kept: the first stays */
  assert_int_equal(settle(f), 0);
  assert_string_equal(user(f, "alice", 0, NULL),
                      "pw1 held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "bob", 1, H1), "none");
  assert_string_equal(user(f, "alice", 1, NULL),
                      "pw1 held=0 sent=0 tok=-1 c=[] r=[] g=[]");
}

static void test_add_checks(void **state) {
  fx_t *f = *state;
  chat__store_op_t bad = {.kind = CHAT_STORE_ADD_USER, .a = "x"};
  assert_int_equal(chat__engine_add(f->e, &bad), -EINVAL);
  bad = (chat__store_op_t){.kind = CHAT_STORE_DEL_MSG};
  bad.msg.to = "x"; /* seq 0 */
  assert_int_equal(chat__engine_add(f->e, &bad), -EINVAL);
  bad =
      (chat__store_op_t){.kind = (chat__store_op_kind_t)99, .a = "x", .b = "y"};
  assert_int_equal(chat__engine_add(f->e, &bad), -EINVAL);
  assert_int_equal(chat__engine_pending(f->e), 0);
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  assert_int_equal(chat__engine_pending(f->e), 1);
  assert_int_equal(settle(f), 0);
  assert_int_equal(chat__engine_pending(f->e), 0);
}

static void test_contacts(void **state) {
  fx_t *f = *state;
  users(f, 4, "b", "a", "c", "d");
  add(f, CHAT_STORE_ADD_CONTACT, "c", "a");
  add(f, CHAT_STORE_ADD_CONTACT, "a", "b");
  add(f, CHAT_STORE_ADD_CONTACT, "b", "a"); /* the same pair */
  add(f, CHAT_STORE_ADD_CONTACT, "d", "c");
  add(f, CHAT_STORE_ADD_CONTACT, "b", "c");
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[b,c] r=[] g=[]");
  assert_string_equal(user(f, "c", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[a,b,d] r=[] g=[]");
  add(f, CHAT_STORE_DEL_CONTACT, "a", "c"); /* either order */
  add(f, CHAT_STORE_DEL_CONTACT, "a", "d"); /* not there */
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[b] r=[] g=[]");
  assert_string_equal(user(f, "c", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[b,d] r=[] g=[]");
}

static void test_requests(void **state) {
  fx_t *f = *state;
  users(f, 1, "a");
  add(f, CHAT_STORE_ADD_REQUEST, "z", "a");
  add(f, CHAT_STORE_ADD_REQUEST, "x", "a");
  add(f, CHAT_STORE_ADD_REQUEST, "y", "a");
  add(f, CHAT_STORE_ADD_REQUEST, "a", "y"); /* outgoing: not listed */
  add(f, CHAT_STORE_ADD_REQUEST, "z", "a"); /* again: keeps its place */
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[] r=[z,x,y] g=[]");
  add(f, CHAT_STORE_DEL_REQUEST, "z", "a");
  add(f, CHAT_STORE_DEL_REQUEST, "a", "x"); /* the wrong way round */
  add(f, CHAT_STORE_ADD_REQUEST, "z", "a"); /* back, now the newest */
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[] r=[x,y,z] g=[]");
}

static void test_groups(void **state) {
  fx_t *f = *state;
  users(f, 3, "a", "b", "c");
  add(f, CHAT_STORE_ADD_MEMBER, "g2", "a");
  add(f, CHAT_STORE_ADD_MEMBER, "g1", "c");
  add(f, CHAT_STORE_ADD_MEMBER, "g1", "a");
  add(f, CHAT_STORE_ADD_MEMBER, "g1", "b");
  add(f, CHAT_STORE_ADD_MEMBER, "g1", "c"); /* again: keeps its place */
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[] r=[] g=[g1,g2]");
  assert_string_equal(group(f, "g1"), "yes m=[c,a,b]");
  add(f, CHAT_STORE_DEL_MEMBER, "g1", "c");
  add(f, CHAT_STORE_ADD_MEMBER, "g1", "c");
  assert_string_equal(group(f, "g1"), "yes m=[a,b,c]");
  assert_string_equal(group(f, "nope"), "none m=[]");
  /* the last member leaving ends the group */
  add(f, CHAT_STORE_DEL_MEMBER, "g2", "a");
  assert_string_equal(group(f, "g2"), "none m=[]");
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[] r=[] g=[g1]");
  add(f, CHAT_STORE_ADD_MEMBER, "g2", "b"); /* a new group by that name */
  assert_string_equal(group(f, "g2"), "yes m=[b]");
}

static void test_held_paging(void **state) {
  fx_t *f = *state;
  users(f, 2, "r", "s");
  put(f, 5, "r", "s", NULL, "m5", "five");
  put(f, 3, "r", "s", "grp", "m3", "three");
  put(f, 9, "r", "s", NULL, "m9", "");
  put(f, 4, "s", "r", NULL, "m4", "other");
  put(f, 7, "r", "s", NULL, "m7", "seven");
  assert_string_equal(held(f, "r", 0, 2),
                      "3:s>r/grp#m3=three@1003 5:s>r#m5=five@1005 more");
  assert_string_equal(held(f, "r", 5, 2),
                      "7:s>r#m7=seven@1007 9:s>r#m9=@1009 end");
  assert_string_equal(held(f, "r", 4, 3), /* exactly the rest */
                      "5:s>r#m5=five@1005 7:s>r#m7=seven@1007 "
                      "9:s>r#m9=@1009 end");
  assert_string_equal(held(f, "r", 9, 10), "end");
  assert_string_equal(held(f, "r", 0, 0), /* limit 0 reads as 1 */
                      "3:s>r/grp#m3=three@1003 more");
  assert_string_equal(held(f, "nobody", 0, 10), "end");
}

static void test_held_counts(void **state) {
  fx_t *f = *state;
  users(f, 2, "r", "s");
  put(f, 1, "r", "s", NULL, "m1", "one");
  put(f, 2, "r", "s", "g", "m2", "two");
  put(f, 3, "r", "s", NULL, "m3", "three");
  assert_string_equal(user(f, "r", 0, NULL), "pw held=3 sent=0 tok=-1");
  assert_string_equal(user(f, "s", 0, NULL), "pw held=0 sent=2 tok=-1");
  del(f, 1, "r");
  del(f, 1, "r"); /* gone already */
  del(f, 3, "s"); /* not s's */
  put(f, 2, "r", "s", NULL, "other", "changed"); /* seq taken: kept */
  assert_string_equal(user(f, "r", 0, NULL), "pw held=2 sent=0 tok=-1");
  assert_string_equal(user(f, "s", 0, NULL), "pw held=0 sent=1 tok=-1");
  assert_string_equal(held(f, "r", 0, 10),
                      "2:s>r/g#m2=two@1002 3:s>r#m3=three@1003 end");
  del(f, 2, "r");
  del(f, 3, "r");
  assert_string_equal(user(f, "r", 0, NULL), "pw held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "s", 0, NULL), "pw held=0 sent=0 tok=-1");
}

/* The held count is counted over the messages when a user is read, so it
 * never drifts from load_held, whenever the user came. */
static void test_held_count_before_user(void **state) {
  fx_t *f = *state;
  put(f, 1, "late", "s", NULL, "m1", "one");
  users(f, 1, "late");
  assert_string_equal(user(f, "late", 0, NULL), "pw held=1 sent=0 tok=-1");
  assert_string_equal(held(f, "late", 0, 10), "1:s>late#m1=one@1001 end");
  del(f, 1, "late");
  assert_string_equal(user(f, "late", 0, NULL), "pw held=0 sent=0 tok=-1");
  put(f, 2, "late", "s", NULL, "m2", "two");
  put(f, 3, "late", "s", NULL, "m3", "three");
  assert_string_equal(user(f, "late", 0, NULL), "pw held=2 sent=0 tok=-1");
}

/* A sender's 1:1 msg_id is held once, whoever it went to (PROTOCOL.md
 * section 3); group copies share theirs. */
static void test_msg_id_unique_per_sender(void **state) {
  fx_t *f = *state;
  users(f, 3, "a", "b", "c");
  put(f, 1, "b", "a", NULL, "m1", "to b");
  put(f, 2, "c", "a", NULL, "m1", "to c"); /* a repeat: not stored */
  assert_string_equal(user(f, "c", 0, NULL), "pw held=0 sent=0 tok=-1");
  assert_string_equal(sent(f, "a", "m1"), "1:a>b#m1=to b@1001");
  put(f, 3, "b", "a", "g", "m2", "copy");
  put(f, 4, "c", "a", "g", "m2", "copy");
  assert_string_equal(user(f, "c", 0, NULL), "pw held=1 sent=0 tok=-1");
  del(f, 1, "b"); /* acked: the msg_id is free again */
  put(f, 5, "c", "a", NULL, "m1", "again");
  assert_string_equal(sent(f, "a", "m1"), "5:a>c#m1=again@1005");
}

static void test_find_sent(void **state) {
  fx_t *f = *state;
  users(f, 2, "a", "b");
  put(f, 1, "b", "a", NULL, "m1", "hi");
  put(f, 2, "b", "a", "g", "m2", "group");
  put(f, 3, "a", "b", NULL, "m1", "back");
  assert_string_equal(sent(f, "a", "m1"), "1:a>b#m1=hi@1001");
  assert_string_equal(sent(f, "a", "m2"), "none"); /* a group message */
  assert_string_equal(sent(f, "b", "m1"), "3:b>a#m1=back@1003");
  assert_string_equal(sent(f, "a", "m9"), "none");
  del(f, 1, "b");
  assert_string_equal(sent(f, "a", "m1"), "none");
}

static void test_tokens(void **state) {
  fx_t *f = *state;
  users(f, 2, "u", "v");
  add_tok(f, CHAT_STORE_ADD_TOKEN, "u", H1, 100);
  assert_string_equal(user(f, "u", 0, H1), "pw held=0 sent=0 tok=100");
  assert_string_equal(user(f, "u", 0, NULL), "pw held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "u", 0, H2), "pw held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "v", 0, H1), "pw held=0 sent=0 tok=-1");
  add_tok(f, CHAT_STORE_TOUCH_TOKEN, NULL, H1, 50); /* older: kept 100 */
  assert_string_equal(user(f, "u", 0, H1), "pw held=0 sent=0 tok=100");
  add_tok(f, CHAT_STORE_TOUCH_TOKEN, NULL, H1, 200);
  add_tok(f, CHAT_STORE_TOUCH_TOKEN, NULL, H2, 300); /* no such token */
  assert_string_equal(user(f, "u", 0, H1), "pw held=0 sent=0 tok=200");
  assert_string_equal(user(f, "u", 0, H2), "pw held=0 sent=0 tok=-1");
  add_tok(f, CHAT_STORE_ADD_TOKEN, "v", H1, 150); /* replaced, owner too */
  assert_string_equal(user(f, "u", 0, H1), "pw held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "v", 0, H1), "pw held=0 sent=0 tok=150");
  add_tok(f, CHAT_STORE_DEL_TOKEN, NULL, H1, 0);
  add_tok(f, CHAT_STORE_DEL_TOKEN, NULL, H1, 0);
  assert_string_equal(user(f, "v", 0, H1), "pw held=0 sent=0 tok=-1");
}

/* A read asked right after an add sees it, and nothing answers inside a
 * call (note() checks in_call for every callback). */
static void test_read_your_writes(void **state) {
  fx_t *f = *state;
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  add(f, CHAT_STORE_ADD_CONTACT, "a", "b");
  assert_string_equal(user(f, "a", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[b] r=[] g=[]");
  put(f, 1, "a", "b", NULL, "m", "x");
  assert_string_equal(held(f, "a", 0, 5), "1:b>a#m=x@1001 end");
  /* with nothing pending, a waiter still comes later with 0 */
  assert_int_equal(settle(f), 0);
}

static res_t order_res[8];

static void test_callback_order(void **state) {
  fx_t *f = *state;
  for (int i = 0; i < 8; i++)
    order_res[i] = (res_t){.f = f};
  f->in_call = 1;
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  assert_int_equal(
      chat__engine_load_user(f->e, "a", 0, NULL, user_cb, &order_res[0]), 0);
  assert_int_equal(chat__engine_then(f->e, then_cb, &order_res[1]), 0);
  assert_int_equal(chat__engine_load_group(f->e, "g", group_cb, &order_res[2]),
                   0);
  add(f, CHAT_STORE_ADD_MEMBER, "g", "a");
  assert_int_equal(
      chat__engine_load_held(f->e, "a", 0, 1, held_cb, &order_res[3]), 0);
  assert_int_equal(
      chat__engine_find_sent(f->e, "a", "m", sent_cb, &order_res[4]), 0);
  assert_int_equal(chat__engine_then(f->e, then_cb, &order_res[5]), 0);
  f->in_call = 0;
  run_until(f, 6);
  /* Waiters in order, reads in order; a batch's waiters may come before
   * its reads (the SQLite engine answers them first, engine.h). */
  if (strcmp(f->e->type->name, "mem") != 0)
    assert_string_equal(f->log, "ttughs");
  else
    assert_string_equal(f->log, "utghst");
  assert_string_equal(order_res[0].s, "pw held=0 sent=0 tok=-1");
}

/* Waiters come after the ops before them; callbacks may add more. */
static res_t chain_res[2];

static void chain_cb(void *arg, int status) {
  fx_t *f = arg;
  note(f, "c");
  assert_int_equal(status, 0);
  add(f, CHAT_STORE_ADD_USER, "late", "pw");
  chain_res[1] = (res_t){.f = f};
  assert_int_equal(
      chat__engine_load_user(f->e, "late", 0, NULL, user_cb, &chain_res[1]), 0);
}

static void test_then_after_ops(void **state) {
  fx_t *f = *state;
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  assert_int_equal(chat__engine_then(f->e, chain_cb, f), 0);
  run_until(f, 2);
  assert_string_equal(f->log, "cu");
  assert_string_equal(chain_res[1].s, "pw held=0 sent=0 tok=-1");
  assert_string_equal(user(f, "a", 0, NULL), "pw held=0 sent=0 tok=-1");
}

typedef struct failed {
  fx_t *f;
  int calls, status, fired_before;
  size_t n;
  chat__store_op_kind_t kind[4];
} failed_t;

static void fail_cb(void *arg, const chat__store_op_t *ops, size_t n,
                    int status) {
  failed_t *x = arg;
  x->calls++;
  x->status = status;
  x->n = n;
  x->fired_before = x->f->fired;
  for (size_t i = 0; i < n && i < 4; i++)
    x->kind[i] = ops[i].kind;
}

static void arm_failure(fx_t *f, int err) {
  if (f->store != NULL)
    chat__store_fail_next(f->store, err);
  else if (f->redis)
    chat__engine_redis_fail(f->e, 1, err);
  else
    chat__engine_mem_fail(f->e, 1, err);
}

static void test_failure(void **state) {
  fx_t *f = *state;
  failed_t x = {.f = f};
  res_t before = {.f = f}, after = {.f = f}, rd = {.f = f};

  chat__engine_t *e = f->e;
  e->type->on_fail(e, fail_cb, &x);
  arm_failure(f, -EIO);
  f->in_call = 1;
  assert_int_equal(chat__engine_then(e, then_cb, &before), 0);
  add(f, CHAT_STORE_ADD_USER, "x", "pw");
  add(f, CHAT_STORE_ADD_CONTACT, "x", "y");
  assert_int_equal(chat__engine_then(e, then_cb, &after), 0);
  assert_int_equal(chat__engine_load_user(e, "x", 1, NULL, user_cb, &rd), 0);
  f->in_call = 0;
  run_until(f, 3);
  assert_int_equal(before.status, 0); /* nothing was added before it */
  assert_int_equal(after.status, -EIO);
  assert_int_equal(x.calls, 1);
  assert_int_equal(x.status, -EIO);
  assert_int_equal(x.fired_before, 0); /* before the batch's waiters */
  assert_int_equal(x.n, 2);
  assert_int_equal(x.kind[0], CHAT_STORE_ADD_USER);
  assert_int_equal(x.kind[1], CHAT_STORE_ADD_CONTACT);
  assert_int_equal(rd.status, 0); /* a read sees what took effect */
  assert_string_equal(rd.s, "none");
  /* the next batch goes through */
  add(f, CHAT_STORE_ADD_USER, "y", "pw");
  assert_int_equal(settle(f), 0);
  assert_string_equal(user(f, "y", 1, NULL),
                      "pw held=0 sent=0 tok=-1 c=[] r=[] g=[]");
  assert_string_equal(user(f, "x", 0, NULL), "none");
  assert_int_equal(x.calls, 1);
}

/* A full store still frees space: the DEL_MSG ops of a batch that failed
 * with -ENOSPC apply, and only the others come back. */
static void test_failure_nospace(void **state) {
  fx_t *f = *state;
  failed_t x = {.f = f};
  users(f, 1, "r");
  put(f, 1, "r", "s", NULL, "m1", "one");
  assert_int_equal(settle(f), 0);
  f->e->type->on_fail(f->e, fail_cb, &x);
  arm_failure(f, -ENOSPC);
  put(f, 2, "r", "s", NULL, "m2", "two");
  del(f, 1, "r");
  assert_int_equal(settle(f), -ENOSPC);
  assert_int_equal(x.calls, 1);
  assert_int_equal(x.n, 1);
  assert_int_equal(x.kind[0], CHAT_STORE_PUT_MSG);
  assert_string_equal(held(f, "r", 0, 10), "end");
  assert_string_equal(user(f, "r", 0, NULL), "pw held=0 sent=0 tok=-1");
}

/* max_seq is what a node counts up from: at or above every seq stored,
 * deletions included. One node's engines give exactly the largest; Redis,
 * which several nodes may share, gives each start a range of its own. */
static void test_max_seq(void **state) {
  fx_t *f = *state;
  int shared = strcmp(f->e->type->name, "redis") == 0;
  uint64_t seq = 99;
  assert_int_equal(f->e->type->max_seq(f->e, &seq), 0);
  if (!shared)
    assert_int_equal(seq, 0);
  put(f, 7, "r", "s", NULL, "m7", "x");
  put(f, 3, "r", "s", NULL, "m3", "x");
  del(f, 7, "r");
  assert_int_equal(settle(f), 0);
  assert_int_equal(f->e->type->max_seq(f->e, &seq), 0);
  if (shared)
    assert_true(seq >= 7);
  else
    assert_int_equal(seq, 7); /* deleting never lowers it */
}

/* Two starts on one Redis (two nodes, or a restart) never count over the
 * same seqs, and each stays above what was stored before it. */
static void test_seq_runs(void **state) {
  fx_t *f = *state;
  uint64_t a = 0, b = 0, c = 0;
  assert_int_equal(f->e->type->max_seq(f->e, &a), 0);
  assert_int_equal(f->e->type->max_seq(f->e, &b), 0);
  assert_true(b >= a + (1ULL << 40)); /* a's run has 2^40 seqs to itself */
  put(f, b + 5, "r", "s", NULL, "m1", "x");
  assert_int_equal(settle(f), 0);
  assert_int_equal(f->e->type->max_seq(f->e, &c), 0);
  assert_true(c > b + 5);
  assert_true(c < (1ULL << 63)); /* a seq the store takes */
}

static void test_flush_sync(void **state) {
  fx_t *f = *state;
  res_t t = {.f = f}, u = {.f = f};
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  assert_int_equal(chat__engine_then(f->e, then_cb, &t), 0);
  assert_int_equal(chat__engine_load_user(f->e, "a", 0, NULL, user_cb, &u), 0);
  assert_int_equal(chat__engine_flush_sync(f->e), 0);
  assert_int_equal(f->fired, 2); /* all of it, now */
  assert_string_equal(u.s, "pw held=0 sent=0 tok=-1");
  assert_int_equal(chat__engine_pending(f->e), 0);
  arm_failure(f, -EIO);
  add(f, CHAT_STORE_ADD_USER, "b", "pw");
  assert_int_equal(chat__engine_flush_sync(f->e), -EIO);
  assert_string_equal(user(f, "b", 0, NULL), "none");
}

/* free flushes: what was added is applied and every callback has run */
static void test_free_flushes(void **state) {
  fx_t *f = *state;
  res_t t = {.f = f}, u = {.f = f};
  add(f, CHAT_STORE_ADD_USER, "a", "pw");
  assert_int_equal(chat__engine_then(f->e, then_cb, &t), 0);
  assert_int_equal(chat__engine_load_user(f->e, "a", 0, NULL, user_cb, &u), 0);
  chat__engine_free(f->e);
  f->e = NULL; /* teardown runs the loop once more */
  assert_int_equal(f->fired, 2);
  assert_int_equal(t.status, 0);
  assert_string_equal(u.s, "pw held=0 sent=0 tok=-1");
}

/* A Redis case: the same function, skipped without a redis-server. */
#define REDIS_CASE(t)                                                        \
  static void t##_redis(void **state) {                                      \
    fx_t *f = *state;                                                        \
    if (f->skip) {                                                           \
      print_message("redis engine: %s\n", fx_redis_why);                     \
      skip();                                                                \
    }                                                                        \
    t(state);                                                                \
  }
REDIS_CASE(test_users)
REDIS_CASE(test_add_checks)
REDIS_CASE(test_contacts)
REDIS_CASE(test_requests)
REDIS_CASE(test_groups)
REDIS_CASE(test_held_paging)
REDIS_CASE(test_held_counts)
REDIS_CASE(test_held_count_before_user)
REDIS_CASE(test_find_sent)
REDIS_CASE(test_tokens)
REDIS_CASE(test_read_your_writes)
REDIS_CASE(test_callback_order)
REDIS_CASE(test_msg_id_unique_per_sender)
REDIS_CASE(test_then_after_ops)
REDIS_CASE(test_failure)
REDIS_CASE(test_failure_nospace)
REDIS_CASE(test_max_seq)
REDIS_CASE(test_seq_runs)
REDIS_CASE(test_flush_sync)
REDIS_CASE(test_free_flushes)

#define BOTH(t)                                                              \
  cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown),               \
      cmocka_unit_test_setup_teardown(t, setup_mem, teardown),              \
      cmocka_unit_test_setup_teardown(t##_redis, setup_redis, teardown)

int main(void) {
  /* One redis-server for every Redis case (each empties it first); it is
   * stopped and reaped at the end, or at exit whatever happened. */
  static rp_t redis;
  const char *missing = rp_missing();
  if (missing != NULL)
    fx_redis_why = missing;
  else if (rp_start(&redis, NULL) == 0)
    fx_redis = &redis;
  const struct CMUnitTest tests[] = {
      BOTH(test_users),
      BOTH(test_add_checks),
      BOTH(test_contacts),
      BOTH(test_requests),
      BOTH(test_groups),
      BOTH(test_held_paging),
      BOTH(test_held_counts),
      BOTH(test_held_count_before_user),
      BOTH(test_find_sent),
      BOTH(test_tokens),
      BOTH(test_read_your_writes),
      BOTH(test_callback_order),
      BOTH(test_msg_id_unique_per_sender),
      BOTH(test_then_after_ops),
      BOTH(test_failure),
      BOTH(test_failure_nospace),
      BOTH(test_max_seq),
      cmocka_unit_test_setup_teardown(test_seq_runs_redis, setup_redis,
                                      teardown),
      BOTH(test_flush_sync),
      BOTH(test_free_flushes),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (fx_redis != NULL)
    rp_free(fx_redis);
  return failed;
}
