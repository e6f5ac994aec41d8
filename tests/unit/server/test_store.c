/* test_store.c -- the SQLite store: every op kind, loader order, replay,
 * rollback on real and injected faults, reopening, and a big batch. */
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

#include "store.h"
#include "tmpdb.h"

/* ---- helpers ------------------------------------------------------------ */

/* Everything a loader reports, as text: "x,y;" per pair row. */
typedef struct dump {
  char buf[1 << 14];
  size_t len;
  int calls;
  int stop_after; /* a nonzero cb return after this many calls, if > 0 */
} dump_t;

static int dump_pair(void *ctx, const char *x, const char *y) {
  dump_t *d = ctx;
  int n = snprintf(d->buf + d->len, sizeof(d->buf) - d->len, "%s,%s;", x, y);

  assert_true(n > 0 && (size_t)n < sizeof(d->buf) - d->len);
  d->len += (size_t)n;
  d->calls++;
  return d->stop_after > 0 && d->calls >= d->stop_after ? 42 : 0;
}

static int dump_msg(void *ctx, const chat__stored_msg_t *m) {
  dump_t *d = ctx;
  int n = snprintf(d->buf + d->len, sizeof(d->buf) - d->len,
                   "%llu:%s>%s/%s/%s/%.*s/%lld;", (unsigned long long)m->seq,
                   m->from, m->to, m->group ? m->group : "-", m->msg_id,
                   (int)m->body_len, m->body, (long long)m->ts);

  assert_true(n > 0 && (size_t)n < sizeof(d->buf) - d->len);
  d->len += (size_t)n;
  d->calls++;
  return 0;
}

typedef int (*pair_loader_t)(chat__store_t *,
                             int (*)(void *, const char *, const char *),
                             void *);

static void expect_pairs(chat__store_t *s, pair_loader_t load,
                         const char *want) {
  dump_t *d = calloc(1, sizeof(*d));

  assert_non_null(d);
  assert_int_equal(load(s, dump_pair, d), 0);
  assert_string_equal(d->buf, want);
  free(d);
}

static void expect_msgs(chat__store_t *s, const char *want) {
  dump_t *d = calloc(1, sizeof(*d));

  assert_non_null(d);
  assert_int_equal(chat__store_load_messages(s, dump_msg, d), 0);
  assert_string_equal(d->buf, want);
  free(d);
}

static chat__store_op_t pair(chat__store_op_kind_t kind, const char *a,
                             const char *b) {
  chat__store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = kind;
  op.a = a;
  op.b = b;
  return op;
}

static chat__store_op_t put(uint64_t seq, const char *to, const char *from,
                            const char *group, const char *id,
                            const char *body) {
  chat__store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_PUT_MSG;
  op.msg.seq = seq;
  op.msg.to = to;
  op.msg.from = from;
  op.msg.group = group;
  op.msg.msg_id = id;
  op.msg.body = body;
  op.msg.body_len = strlen(body);
  op.msg.ts = 1700000000000LL + (int64_t)seq;
  return op;
}

static chat__store_op_t del(uint64_t seq, const char *to) {
  chat__store_op_t op;

  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_DEL_MSG;
  op.msg.seq = seq;
  op.msg.to = to;
  return op;
}

static chat__store_t *open_mem(void) {
  chat__store_t *s = NULL;
  char err[256] = "";

  assert_int_equal(chat__store_open(":memory:", &s, err, sizeof(err)), 0);
  assert_non_null(s);
  return s;
}

#define APPLY_OK(s, ...)                                                     \
  do {                                                                       \
    chat__store_op_t ops_[] = {__VA_ARGS__};                                  \
    assert_int_equal(                                                        \
        chat__store_apply(s, ops_, sizeof(ops_) / sizeof(ops_[0])), 0);       \
  } while (0)

/* ---- tests -------------------------------------------------------------- */

static void test_empty(void **state) {
  chat__store_t *s = open_mem();
  uint64_t seq = 99;

  expect_pairs(s, chat__store_load_users, "");
  expect_pairs(s, chat__store_load_contacts, "");
  expect_pairs(s, chat__store_load_requests, "");
  expect_pairs(s, chat__store_load_groups, "");
  expect_msgs(s, "");
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 0);
  assert_int_equal(chat__store_apply(s, NULL, 0), 0);
  chat__store_close(s);
}

static void test_users(void **state) {
  chat__store_t *s = open_mem();

  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "carol", "$argon2id$c"),
           pair(CHAT_STORE_ADD_USER, "alice", "$argon2id$a"),
           pair(CHAT_STORE_ADD_USER, "bob", "$argon2id$b"));
  /* A second registration of a name keeps the first hash. */
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "alice", "$argon2id$other"));
  expect_pairs(s, chat__store_load_users,
               "alice,$argon2id$a;bob,$argon2id$b;carol,$argon2id$c;");
  chat__store_close(s);
}

static void test_contacts_any_order(void **state) {
  chat__store_t *s = open_mem();

  APPLY_OK(s, pair(CHAT_STORE_ADD_CONTACT, "bob", "alice"),
           pair(CHAT_STORE_ADD_CONTACT, "alice", "bob"),
           pair(CHAT_STORE_ADD_CONTACT, "carol", "alice"),
           pair(CHAT_STORE_ADD_CONTACT, "bob", "dave"));
  expect_pairs(s, chat__store_load_contacts, "alice,bob;alice,carol;bob,dave;");
  APPLY_OK(s, pair(CHAT_STORE_DEL_CONTACT, "bob", "alice"),
           pair(CHAT_STORE_DEL_CONTACT, "bob", "dave"),
           pair(CHAT_STORE_DEL_CONTACT, "x", "y"));
  expect_pairs(s, chat__store_load_contacts, "alice,carol;");
  chat__store_close(s);
}

static void test_requests_oldest_first(void **state) {
  chat__store_t *s = open_mem();

  APPLY_OK(s, pair(CHAT_STORE_ADD_REQUEST, "zed", "amy"),
           pair(CHAT_STORE_ADD_REQUEST, "amy", "bob"));
  APPLY_OK(s, pair(CHAT_STORE_ADD_REQUEST, "bob", "amy"),
           pair(CHAT_STORE_ADD_REQUEST, "zed", "amy")); /* repeat: stays */
  expect_pairs(s, chat__store_load_requests, "zed,amy;amy,bob;bob,amy;");
  /* Direction matters. */
  APPLY_OK(s, pair(CHAT_STORE_DEL_REQUEST, "amy", "zed"),
           pair(CHAT_STORE_DEL_REQUEST, "amy", "bob"));
  expect_pairs(s, chat__store_load_requests, "zed,amy;bob,amy;");
  chat__store_close(s);
}

static void test_groups_member_order(void **state) {
  chat__store_t *s = open_mem();

  APPLY_OK(s, pair(CHAT_STORE_ADD_MEMBER, "team", "zed"),
           pair(CHAT_STORE_ADD_MEMBER, "alpha", "owner"),
           pair(CHAT_STORE_ADD_MEMBER, "team", "amy"),
           pair(CHAT_STORE_ADD_MEMBER, "team", "mia"),
           pair(CHAT_STORE_ADD_MEMBER, "team", "zed"));
  expect_pairs(s, chat__store_load_groups,
               "alpha,owner;team,zed;team,amy;team,mia;");
  /* A member who leaves and comes back is now the newest. */
  APPLY_OK(s, pair(CHAT_STORE_DEL_MEMBER, "team", "zed"),
           pair(CHAT_STORE_ADD_MEMBER, "team", "zed"),
           pair(CHAT_STORE_DEL_MEMBER, "alpha", "owner"),
           pair(CHAT_STORE_DEL_MEMBER, "nogroup", "nobody"));
  expect_pairs(s, chat__store_load_groups, "team,amy;team,mia;team,zed;");
  chat__store_close(s);
}

static void test_messages(void **state) {
  chat__store_t *s = open_mem();
  uint64_t seq;

  /* Put out of order; loaded in seq order. */
  APPLY_OK(s, put(7, "bob", "alice", NULL, "m7", "seven"),
           put(3, "carol", "alice", "team", "m3", "three"),
           put(5, "bob", "carol", NULL, "m5", ""));
  expect_msgs(s, "3:alice>carol/team/m3/three/1700000000003;"
                 "5:carol>bob/-/m5//1700000000005;"
                 "7:alice>bob/-/m7/seven/1700000000007;");
  /* A repeated seq keeps the stored message. */
  APPLY_OK(s, put(7, "bob", "mallory", NULL, "m7x", "changed"));
  /* DEL_MSG needs the right recipient. */
  APPLY_OK(s, del(3, "bob"), del(5, "bob"), del(99, "bob"));
  expect_msgs(s, "3:alice>carol/team/m3/three/1700000000003;"
                 "7:alice>bob/-/m7/seven/1700000000007;");
  APPLY_OK(s, del(7, "bob"), del(3, "carol"));
  expect_msgs(s, "");
  /* The largest seq is remembered after its message is gone. */
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 7);
  chat__store_close(s);
}

static int count_msg(void *ctx, const chat__stored_msg_t *m) {
  const chat__stored_msg_t *want = ctx;

  assert_int_equal(m->seq, want->seq);
  assert_string_equal(m->to, want->to);
  assert_string_equal(m->msg_id, want->msg_id);
  assert_int_equal(m->body_len, want->body_len);
  assert_memory_equal(m->body, want->body, want->body_len);
  return 0;
}

static void test_binary_and_utf8_bodies(void **state) {
  static const char body[] =
      "quote' \"double\" ; DROP TABLE users; --\0"
      "\xff\xfe\x01 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 \\n";
  chat__store_t *s = open_mem();
  chat__store_op_t op = put(1, "b\xc3\xa9" "b", "o'brien", NULL, "id\"1", "");

  op.msg.body = body;
  op.msg.body_len = sizeof(body) - 1; /* embedded NUL included */
  APPLY_OK(s, op);
  assert_int_equal(chat__store_load_messages(s, count_msg, &op.msg), 0);
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "o'brien", "h\"a'sh"));
  expect_pairs(s, chat__store_load_users, "o'brien,h\"a'sh;");
  chat__store_close(s);
}

static void test_idempotent_replay(void **state) {
  chat__store_t *s = open_mem();
  chat__store_op_t batch[] = {
      pair(CHAT_STORE_ADD_USER, "amy", "h1"),
      pair(CHAT_STORE_ADD_CONTACT, "bob", "amy"),
      pair(CHAT_STORE_ADD_REQUEST, "amy", "cat"),
      pair(CHAT_STORE_ADD_MEMBER, "g", "amy"),
      put(1, "bob", "amy", NULL, "x", "hi"),
      put(2, "bob", "amy", NULL, "y", "yo"),
      del(1, "bob"),
      pair(CHAT_STORE_DEL_REQUEST, "amy", "cat"),
  };
  int round;

  for (round = 0; round < 3; round++) {
    assert_int_equal(chat__store_apply(s, batch, 8), 0);
    expect_pairs(s, chat__store_load_users, "amy,h1;");
    expect_pairs(s, chat__store_load_contacts, "amy,bob;");
    expect_pairs(s, chat__store_load_requests, "");
    expect_pairs(s, chat__store_load_groups, "g,amy;");
    expect_msgs(s, "2:amy>bob/-/y/yo/1700000000002;");
  }
  chat__store_close(s);
}

static void test_invalid_ops(void **state) {
  chat__store_t *s = open_mem();
  chat__store_op_t ok = pair(CHAT_STORE_ADD_USER, "amy", "h");
  chat__store_op_t bad[6];
  size_t i;

  bad[0] = pair(CHAT_STORE_ADD_USER, "amy", NULL);
  bad[1] = pair(CHAT_STORE_ADD_CONTACT, NULL, "b");
  bad[2] = put(0, "bob", "amy", NULL, "id", "seq zero");
  bad[3] = put(1, "bob", "amy", NULL, NULL, "no id");
  bad[4] = put(1, "bob", "amy", NULL, "id", "x");
  bad[4].msg.body = NULL; /* body_len 1 with no body */
  bad[5] = ok;
  bad[5].kind = (chat__store_op_kind_t)1000;
  for (i = 0; i < 6; i++) {
    chat__store_op_t two[2] = {ok, bad[i]};

    assert_int_equal(chat__store_op_check(&bad[i]), -EINVAL);
    assert_int_equal(chat__store_apply(s, two, 2), -EINVAL);
  }
  expect_pairs(s, chat__store_load_users, "");
  chat__store_close(s);
}

static void test_injected_failure_rolls_back(void **state) {
  chat__store_t *s = open_mem();
  uint64_t seq;

  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "amy", "h"));
  chat__store_fail_next(s, -EIO);
  {
    chat__store_op_t ops[] = {pair(CHAT_STORE_ADD_USER, "bob", "h"),
                              put(9, "amy", "bob", NULL, "m", "lost"),
                              pair(CHAT_STORE_ADD_MEMBER, "g", "bob")};

    assert_int_equal(chat__store_apply(s, ops, 3), -EIO);
  }
  expect_pairs(s, chat__store_load_users, "amy,h;");
  expect_pairs(s, chat__store_load_groups, "");
  expect_msgs(s, "");
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 0);
  /* The fault is one-shot. */
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "bob", "h"));
  expect_pairs(s, chat__store_load_users, "amy,h;bob,h;");
  /* Any code can be injected; zero cancels. */
  chat__store_fail_next(s, -ENOSPC);
  chat__store_fail_next(s, 0);
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "cat", "h"));
  chat__store_fail_next(s, -ENOSPC);
  {
    chat__store_op_t op = pair(CHAT_STORE_ADD_USER, "dan", "h");

    assert_int_equal(chat__store_apply(s, &op, 1), -ENOSPC);
  }
  expect_pairs(s, chat__store_load_users, "amy,h;bob,h;cat,h;");
  chat__store_close(s);
}

static void test_full_maps_to_enospc(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  char big[2000];
  chat__store_op_t ops[64];
  char ids[64][16];
  uint64_t seq;
  int i;

  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  APPLY_OK(s, put(1, "amy", "bob", NULL, "first", "kept"));
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  for (i = 0; i < 64; i++) {
    snprintf(ids[i], sizeof(ids[i]), "m%d", i);
    ops[i] = put((uint64_t)i + 2, "amy", "bob", NULL, ids[i], big);
  }
  /* The database cannot grow past its current size. */
  assert_int_equal(chat__store_limit_pages(s, 1), 0);
  assert_int_equal(chat__store_apply(s, ops, 64), -ENOSPC);
  expect_msgs(s, "1:bob>amy/-/first/kept/1700000000001;");
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 1);
  /* Space comes back: the same batch now commits. */
  assert_int_equal(chat__store_limit_pages(s, 1u << 30), 0);
  assert_int_equal(chat__store_apply(s, ops, 64), 0);
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 65);
  chat__store_close(s);
  tmpdb_remove(&t);
}

static void test_readonly_maps_to_erofs(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  char uri[160];
  chat__store_op_t op = pair(CHAT_STORE_ADD_USER, "bob", "h");

  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "amy", "h"));
  chat__store_close(s);

  snprintf(uri, sizeof(uri), "file:%s?mode=ro", t.path);
  assert_int_equal(chat__store_open(uri, &s, NULL, 0), 0);
  assert_int_equal(chat__store_apply(s, &op, 1), -EROFS);
  expect_pairs(s, chat__store_load_users, "amy,h;");
  chat__store_close(s);
  tmpdb_remove(&t);
}

static void test_reopen_keeps_everything(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  uint64_t seq;

  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "amy", "ha"),
           pair(CHAT_STORE_ADD_USER, "bob", "hb"),
           pair(CHAT_STORE_ADD_CONTACT, "bob", "amy"),
           pair(CHAT_STORE_ADD_REQUEST, "cat", "amy"),
           pair(CHAT_STORE_ADD_MEMBER, "g", "bob"),
           pair(CHAT_STORE_ADD_MEMBER, "g", "amy"),
           put(10, "amy", "bob", NULL, "a", "one"),
           put(11, "bob", "amy", "g", "b", "two"),
           put(12, "amy", "bob", NULL, "c", "three"));
  APPLY_OK(s, del(12, "amy"));
  chat__store_close(s);

  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  expect_pairs(s, chat__store_load_users, "amy,ha;bob,hb;");
  expect_pairs(s, chat__store_load_contacts, "amy,bob;");
  expect_pairs(s, chat__store_load_requests, "cat,amy;");
  expect_pairs(s, chat__store_load_groups, "g,bob;g,amy;");
  expect_msgs(s, "10:bob>amy/-/a/one/1700000000010;"
                 "11:amy>bob/g/b/two/1700000000011;");
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 12);
  chat__store_close(s);
  tmpdb_remove(&t);
}

static void test_loader_stops_on_nonzero(void **state) {
  chat__store_t *s = open_mem();
  dump_t *d = calloc(1, sizeof(*d));

  assert_non_null(d);
  APPLY_OK(s, pair(CHAT_STORE_ADD_USER, "a", "1"),
           pair(CHAT_STORE_ADD_USER, "b", "2"),
           pair(CHAT_STORE_ADD_USER, "c", "3"));
  d->stop_after = 2;
  assert_int_equal(chat__store_load_users(s, dump_pair, d), 42);
  assert_int_equal(d->calls, 2);
  free(d);
  chat__store_close(s);
}

static void test_open_errors(void **state) {
  tmpdb_t t;
  static int sentinel;
  chat__store_t *s = (chat__store_t *)&sentinel; /* must be reset to NULL */
  char err[256] = "";
  char uri[160];

  assert_int_equal(
      chat__store_open("/nonexistent-dir/x/chat.db", &s, err, sizeof(err)),
      -EIO);
  assert_null(s);
  assert_non_null(strstr(err, "/nonexistent-dir/x/chat.db"));

  /* A database from a future schema is refused, not damaged. */
  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  chat__store_close(s);
  {
    FILE *f;

    /* No sqlite3 shell is assumed: bump user_version through the header
     * (bytes 60..63, big-endian). */
    f = fopen(t.path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 60, SEEK_SET), 0);
    assert_int_equal(fwrite("\0\0\0\x07", 1, 4, f), 4);
    assert_int_equal(fclose(f), 0);
  }
  err[0] = '\0';
  assert_int_equal(chat__store_open(t.path, &s, err, sizeof(err)), -EIO);
  assert_null(s);
  assert_non_null(strstr(err, "version 7"));
  /* Read-only open of a file that does not exist. */
  snprintf(uri, sizeof(uri), "file:%s/none.db?mode=ro", t.dir);
  assert_int_equal(chat__store_open(uri, &s, err, sizeof(err)), -EIO);
  assert_null(s);
  tmpdb_remove(&t);
}

static int check_order(void *ctx, const chat__stored_msg_t *m) {
  uint64_t *next = ctx;
  char want[32];

  assert_int_equal(m->seq, *next);
  snprintf(want, sizeof(want), "id-%llu", (unsigned long long)m->seq);
  assert_string_equal(m->msg_id, want);
  assert_int_equal(m->body_len, 64);
  (*next)++;
  return 0;
}

static void test_big_batch(void **state) {
  enum { N = 10000 };
  tmpdb_t t;
  chat__store_t *s = NULL;
  chat__store_op_t *ops = calloc(N, sizeof(*ops));
  char(*ids)[32] = calloc(N, sizeof(*ids));
  char body[65];
  uint64_t next = 1, seq;
  size_t i;

  assert_non_null(ops);
  assert_non_null(ids);
  memset(body, 'b', 64);
  body[64] = '\0';
  /* Seqs given in a scrambled order (a stride coprime to N). */
  for (i = 0; i < N; i++) {
    uint64_t sq = (i * 7919) % N + 1;

    snprintf(ids[i], sizeof(ids[i]), "id-%llu", (unsigned long long)sq);
    ops[i] = put(sq, i % 2 ? "amy" : "bob", "cat", NULL, ids[i], body);
  }
  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  assert_int_equal(chat__store_apply(s, ops, N), 0);
  chat__store_close(s);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  assert_int_equal(chat__store_load_messages(s, check_order, &next), 0);
  assert_int_equal(next, N + 1);
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, N);
  chat__store_close(s);
  tmpdb_remove(&t);
  free(ids);
  free(ops);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_users),
      cmocka_unit_test(test_contacts_any_order),
      cmocka_unit_test(test_requests_oldest_first),
      cmocka_unit_test(test_groups_member_order),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_binary_and_utf8_bodies),
      cmocka_unit_test(test_idempotent_replay),
      cmocka_unit_test(test_invalid_ops),
      cmocka_unit_test(test_injected_failure_rolls_back),
      cmocka_unit_test(test_full_maps_to_enospc),
      cmocka_unit_test(test_readonly_maps_to_erofs),
      cmocka_unit_test(test_reopen_keeps_everything),
      cmocka_unit_test(test_loader_stops_on_nonzero),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_big_batch),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
