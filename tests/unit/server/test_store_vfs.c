/* test_store_vfs.c -- the WAL write-combining VFS (store_vfs.c): a commit's
 * frames go out in few writes, pages spilled to the log in the middle of a
 * transaction read back right, and another connection (default VFS) sees
 * every commit at once and whole. */
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
#include "store_vfs.h"
#include "tmpdb.h"

static void exec_ok(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

  if (rc != SQLITE_OK)
    fail_msg("%s: %s", sql, err ? err : "?");
}

static int64_t one_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  int64_t v;

  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void test_commit_frames_combined(void **state) {
  tmpdb_t t;
  chat__store_t *s = NULL;
  chat__store_vfs_stats_t a, b;
  chat__store_op_t ops[500];
  char ids[500][16];
  size_t n;

  (void)state;
  tmpdb_make(&t);
  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  memset(ops, 0, sizeof(ops));
  for (int i = 0; i < 500; i++) {
    snprintf(ids[i], sizeof(ids[i]), "m%d", i);
    ops[i].kind = CHAT_STORE_PUT_MSG;
    ops[i].msg.seq = (uint64_t)i + 1;
    ops[i].msg.to = i % 2 ? "bob" : "carol";
    ops[i].msg.from = "alice";
    ops[i].msg.msg_id = ids[i];
    ops[i].msg.body = "a body of a few bytes";
    ops[i].msg.body_len = 21;
  }
  chat__store_vfs_stats(&a);
  assert_int_equal(chat__store_apply(s, ops, 500), 0);
  chat__store_vfs_stats(&b);
  /* Two writes a frame came in; with 64 KiB a write, few go out. */
  assert_true(b.writes - a.writes >= 20);
  assert_true((b.flushes - a.flushes) * 4 <= b.writes - a.writes);
  chat__store_close(s);

  assert_int_equal(chat__store_open(t.path, &s, NULL, 0), 0);
  chat__stored_msg_t *m = NULL;
  int more = 0;
  assert_int_equal(chat__store_get_held(s, "bob", 0, 1000, &m, &n, &more), 0);
  assert_int_equal(n, 250);
  free(m);
  chat__store_close(s);
  tmpdb_remove(&t);
}

/* A cache of ten pages spills a big transaction to the log before it
 * commits; reading those pages back must see what was written, some of it
 * still in the buffer. A reader on the default VFS sees nothing of it
 * before the commit and all of it after. */
static void test_spill_read_back_and_reader(void **state) {
  tmpdb_t t;
  sqlite3 *w = NULL, *r = NULL;
  const char *vfs = chat__store_vfs();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

  (void)state;
  assert_non_null(vfs);
  tmpdb_make(&t);
  assert_int_equal(sqlite3_open_v2(t.path, &w, flags, vfs), SQLITE_OK);
  exec_ok(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
             " PRAGMA cache_size=10;"
             " CREATE TABLE t(k INTEGER PRIMARY KEY, n INTEGER, v BLOB NOT NULL)");
  assert_int_equal(sqlite3_open_v2(t.path, &r, SQLITE_OPEN_READWRITE, NULL),
                   SQLITE_OK);
  exec_ok(w, "BEGIN;"
             " WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c"
             " WHERE i < 3000) INSERT INTO t SELECT i, 7 * i, randomblob(300)"
             " FROM c");
  /* Every row, read back inside the transaction, through spilled pages. */
  assert_int_equal(one_int(w, "SELECT count(*) FROM t"), 3000);
  assert_int_equal(one_int(w, "SELECT sum(n) + sum(length(v)) FROM t"),
                   7 * 3000 * 3001 / 2 + 3000 * 300);
  assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 0);
  exec_ok(w, "COMMIT");
  assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 3000);
  assert_int_equal(one_int(r, "SELECT sum(n) + sum(length(v)) FROM t"),
                   7 * 3000 * 3001 / 2 + 3000 * 300);
  /* And after more commits, small ones, each seen at once. */
  for (int i = 0; i < 20; i++) {
    exec_ok(w, "UPDATE t SET v = zeroblob(10) WHERE k % 20 = 0");
    exec_ok(w, "INSERT INTO t(n, v) VALUES(0, zeroblob(100))");
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 3001 + i);
  }
  assert_int_equal(sqlite3_close(r), SQLITE_OK);
  assert_int_equal(sqlite3_close(w), SQLITE_OK);
  tmpdb_remove(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commit_frames_combined),
      cmocka_unit_test(test_spill_read_back_and_reader),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
