/* test_store_migrate.c -- store_sqlite.c opening a schema version 1
 * database (written here by hand, as a v1 server left it): the upgrade to
 * version 2 counts each user's held messages, and the per-user reads and
 * the held-count triggers work on the result. */
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

#include "store.h"

/* schema_sql of store_sqlite.c, version 1, as it was shipped */
static const char v1_sql[] =
    "CREATE TABLE users(name TEXT PRIMARY KEY, pwhash TEXT NOT NULL);"
    "CREATE TABLE contacts(a TEXT NOT NULL, b TEXT NOT NULL,"
    " PRIMARY KEY(a, b)) WITHOUT ROWID;"
    "CREATE TABLE requests(id INTEGER PRIMARY KEY, src TEXT NOT NULL,"
    " dst TEXT NOT NULL, UNIQUE(src, dst));"
    "CREATE TABLE members(id INTEGER PRIMARY KEY, grp TEXT NOT NULL,"
    " member TEXT NOT NULL, UNIQUE(grp, member));"
    "CREATE TABLE messages(seq INTEGER PRIMARY KEY, rcpt TEXT NOT NULL,"
    " sender TEXT NOT NULL, grp TEXT, msg_id TEXT NOT NULL,"
    " body BLOB NOT NULL, ts INTEGER NOT NULL);"
    "CREATE INDEX messages_rcpt ON messages(rcpt, seq);"
    "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK(id = 1),"
    " max_seq INTEGER NOT NULL);"
    "INSERT INTO meta(id, max_seq) VALUES(1, 0);"
    "PRAGMA user_version = 1;";

static const char v1_data[] =
    "INSERT INTO users VALUES('alice', 'pwa'), ('bob', 'pwb'),"
    " ('carol', 'pwc');"
    "INSERT INTO contacts VALUES('alice', 'bob');"
    "INSERT INTO requests(src, dst) VALUES('carol', 'alice');"
    "INSERT INTO members(grp, member) VALUES('g', 'bob'), ('g', 'alice');"
    "INSERT INTO messages VALUES(3, 'alice', 'bob', NULL, 'm3', 'hi', 13),"
    " (5, 'alice', 'carol', 'g', 'm5', 'grp', 15),"
    " (6, 'bob', 'alice', NULL, 'm6', 'yo', 16),"
    " (8, 'alice', 'bob', NULL, 'm8', '', 18);"
    "UPDATE meta SET max_seq = 10;";

static int64_t user_version(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
      SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void expect_user(chat__store_t *s, const char *name, uint32_t held,
                        uint32_t sent) {
  chat__store_user_t *u = NULL;
  assert_int_equal(chat__store_get_user(s, name, 1, NULL, &u), 0);
  assert_true(u->exists);
  assert_int_equal(u->held, held);
  assert_int_equal(u->sent_held, sent);
  chat__store_user_free(u);
}

static void test_migrate_v1(void **state) {
  char dir[] = "/tmp/chat-migrate-XXXXXX", path[96], p[128], err[256] = "";
  static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
  chat__store_t *s = NULL;
  chat__store_user_t *u = NULL;
  chat__stored_msg_t *msgs = NULL;
  size_t n = 0;
  int more = -1;
  uint64_t seq = 0;
  sqlite3 *db;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/chat.db", dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, v1_sql, NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, v1_data, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(user_version(path), 1);

  assert_int_equal(chat__store_open(path, &s, err, sizeof(err)), 0);
  assert_int_equal(user_version(path), 2);
  expect_user(s, "alice", 3, 1);
  expect_user(s, "bob", 1, 2);
  expect_user(s, "carol", 0, 0);
  assert_int_equal(chat__store_get_user(s, "alice", 1, NULL, &u), 0);
  assert_string_equal(u->pwhash, "pwa");
  assert_int_equal(u->ncontacts, 1);
  assert_string_equal(u->contacts[0], "bob");
  assert_int_equal(u->nrequests, 1);
  assert_string_equal(u->requests[0], "carol");
  assert_int_equal(u->ngroups, 1);
  assert_string_equal(u->groups[0], "g");
  chat__store_user_free(u);
  assert_int_equal(chat__store_get_held(s, "alice", 3, 1, &msgs, &n, &more), 0);
  assert_int_equal(n, 1);
  assert_int_equal(more, 1);
  assert_int_equal(msgs[0].seq, 5);
  assert_string_equal(msgs[0].group, "g");
  free(msgs);
  assert_int_equal(chat__store_find_sent(s, "bob", "m8", &msgs), 0);
  assert_non_null(msgs);
  assert_int_equal(msgs[0].seq, 8);
  assert_int_equal(msgs[0].body_len, 0);
  free(msgs);
  assert_int_equal(chat__store_max_seq(s, &seq), 0);
  assert_int_equal(seq, 10);

  /* the triggers keep the counts from here on */
  chat__store_op_t ops[2] = {{.kind = CHAT_STORE_DEL_MSG},
                             {.kind = CHAT_STORE_PUT_MSG}};
  ops[0].msg.seq = 3;
  ops[0].msg.to = "alice";
  ops[1].msg = (chat__stored_msg_t){.seq = 11,
                                    .to = "carol",
                                    .from = "bob",
                                    .msg_id = "m11",
                                    .body = "x",
                                    .body_len = 1,
                                    .ts = 21};
  assert_int_equal(chat__store_apply(s, ops, 2), 0);
  expect_user(s, "alice", 2, 1);
  expect_user(s, "bob", 1, 2);
  expect_user(s, "carol", 1, 0);
  chat__store_close(s);

  /* opened again: already version 2, counts as they were */
  assert_int_equal(chat__store_open(path, &s, err, sizeof(err)), 0);
  expect_user(s, "alice", 2, 1);
  expect_user(s, "carol", 1, 0);
  chat__store_close(s);
  for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migrate_v1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
