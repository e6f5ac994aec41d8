/* store_sqlite.c -- the durable store (store.h) on SQLite.
 *
 * One connection, used by one thread at a time, with every statement of the
 * write path prepared once at open: a batch is BEGIN IMMEDIATE, a bind/step/
 * reset per op, COMMIT -- one WAL fsync per batch, whatever its size.
 *
 * The reads are in store_sqlite_read.c.
 *
 * No foreign keys: ops are replayed idempotently and in any batch order, and
 * the server checks references in memory before it writes anything.
 */
#include "store.h"

#include "store_ckpt.h"
#include "store_sqlite_int.h"
#include "store_vfs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define STORE_SCHEMA_VERSION 2
#define STORE_BUSY_TIMEOUT_MS 5000

/* The statements (enum ST_*) and struct chat__store are in
 * store_sqlite_int.h, shared with the reads in store_sqlite_read.c. */

static const char *const stmt_sql[ST_COUNT] = {
  [ST_BEGIN] = "BEGIN IMMEDIATE",
  [ST_COMMIT] = "COMMIT",
  [ST_ROLLBACK] = "ROLLBACK",
  [ST_ADD_USER] = "INSERT OR IGNORE INTO users(name, pwhash) VALUES(?1, ?2)",
  [ST_ADD_CONTACT] = "INSERT OR IGNORE INTO contacts(a, b) VALUES(?1, ?2)",
  [ST_DEL_CONTACT] = "DELETE FROM contacts WHERE a = ?1 AND b = ?2",
  [ST_ADD_REQUEST] =
      "INSERT OR IGNORE INTO requests(src, dst) VALUES(?1, ?2)",
  [ST_DEL_REQUEST] = "DELETE FROM requests WHERE src = ?1 AND dst = ?2",
  /* A 1:1 msg_id is unique per sender (PROTOCOL.md section 3): the
   * unique index messages_sent ignores a second copy held for anyone. */
  [ST_PUT_MSG] = "INSERT OR IGNORE INTO messages"
                 "(seq, rcpt, sender, grp, msg_id, body, ts, offline)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  [ST_DEL_MSG] = "DELETE FROM messages WHERE seq = ?1 AND rcpt = ?2",
  [ST_ADD_MEMBER] =
      "INSERT OR IGNORE INTO members(grp, member) VALUES(?1, ?2)",
  [ST_DEL_MEMBER] = "DELETE FROM members WHERE grp = ?1 AND member = ?2",
  [ST_BUMP_SEQ] = "UPDATE meta SET max_seq = max(max_seq, ?1) WHERE id = 1",
  [ST_ADD_TOKEN] =
      "INSERT OR REPLACE INTO tokens(hash, user, used) VALUES(?2, ?1, ?3)",
  [ST_TOUCH_TOKEN] = "UPDATE tokens SET used = max(used, ?3) WHERE hash = ?2",
  [ST_DEL_TOKEN] = "DELETE FROM tokens WHERE hash = ?2",
  [ST_GET_USER] = "SELECT pwhash,"
                  " (SELECT count(*) FROM messages WHERE rcpt = ?1)"
                  " FROM users WHERE name = ?1",
  [ST_GET_TOKEN] = "SELECT used FROM tokens WHERE hash = ?1 AND user = ?2",
  [ST_GET_CONTACTS] = "SELECT b FROM contacts WHERE a = ?1 UNION ALL"
                      " SELECT a FROM contacts WHERE b = ?1 ORDER BY 1",
  [ST_GET_REQUESTS] = "SELECT src FROM requests WHERE dst = ?1 ORDER BY id",
  [ST_GET_GROUPS] = "SELECT grp FROM members WHERE member = ?1 ORDER BY grp",
  [ST_GET_MEMBERS] = "SELECT member FROM members WHERE grp = ?1 ORDER BY id",
  [ST_GET_HELD] = "SELECT seq, rcpt, sender, grp, msg_id, body, ts, offline"
                  " FROM messages WHERE rcpt = ?1 AND seq > ?2"
                  " ORDER BY seq LIMIT ?3",
  [ST_COUNT_SENT] =
      "SELECT count(*) FROM messages WHERE sender = ?1 AND grp IS NULL",
  [ST_FIND_SENT] = "SELECT seq, rcpt, sender, grp, msg_id, body, ts, offline"
                   " FROM messages WHERE sender = ?1 AND msg_id = ?2"
                   " AND grp IS NULL ORDER BY seq LIMIT 1",
};

/* Version 1. Groups exist only through their members, so removing the last
 * member ends the group with no extra statement. meta.max_seq remembers the
 * largest seq ever stored, since held messages are deleted once acked. */
static const char schema_sql[] =
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

/* Version 2: the store is the authority, read per user on demand. Indexes
 * for every per-user read, whether a message was stored while its
 * recipient was away, and session tokens by hash. (A mailbox's size is
 * counted over its index when its user is loaded: a counter kept by
 * triggers cost an UPDATE per message written or acked.) */
static const char schema_v2_sql[] =
    "ALTER TABLE messages ADD COLUMN offline INTEGER NOT NULL DEFAULT 1;"
    "CREATE INDEX contacts_b ON contacts(b);"
    "CREATE INDEX requests_dst ON requests(dst, id);"
    "CREATE INDEX members_member ON members(member, grp);"
    /* Version 1 allowed one msg_id to several recipients: the later
     * copies get a msg_id of their own (still valid: 64 bytes at most). */
    "UPDATE messages SET msg_id = substr(msg_id, 1, 40) || '-' || seq"
    " WHERE grp IS NULL AND seq NOT IN (SELECT min(seq) FROM messages"
    " WHERE grp IS NULL GROUP BY sender, msg_id);"
    "CREATE UNIQUE INDEX messages_sent ON messages(sender, msg_id)"
    " WHERE grp IS NULL;"
    "CREATE TABLE tokens(hash TEXT PRIMARY KEY, user TEXT NOT NULL,"
    " used INTEGER NOT NULL) WITHOUT ROWID;"
    "PRAGMA user_version = 2;";


static int map_err(int rc) {
  switch (rc & 0xff) {
  case SQLITE_FULL:
    return -ENOSPC;
  case SQLITE_READONLY:
    return -EROFS;
  default:
    return -EIO;
  }
}

static void set_err(char *errbuf, size_t errlen, const char *what,
                    sqlite3 *db) {
  if (errbuf != NULL && errlen > 0)
    snprintf(errbuf, errlen, "%s: %s", what,
             db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

int64_t chat__store_query_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = -1;

  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Asks for WAL mode and sets *wal to whether the database is in it now
 * (":memory:" stays "memory"). SQLITE_OK or the error. */
static int set_wal(sqlite3 *db, bool *wal) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);

  *wal = false;
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *m = (const char *)sqlite3_column_text(st, 0);
    *wal = m != NULL && strcmp(m, "wal") == 0;
  }
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    rc = SQLITE_OK;
  sqlite3_finalize(st);
  return rc;
}

static int init_schema(sqlite3 *db, char *errbuf, size_t errlen) {
  int64_t version = chat__store_query_int(db, "PRAGMA user_version");
  int rc;

  if (version < 0) {
    set_err(errbuf, errlen, "reading schema version", db);
    return -EIO;
  }
  if (version == STORE_SCHEMA_VERSION)
    return 0;
  if (version != 0 && version != 1) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen,
               "database schema version %lld is not %d (newer server?)",
               (long long)version, STORE_SCHEMA_VERSION);
    return -EIO;
  }
  /* A new database gets version 1 and then the same upgrade an old one
   * gets, in one transaction. */
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK && version == 0)
    rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, schema_v2_sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    set_err(errbuf, errlen, "creating schema", db);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -EIO;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    set_err(errbuf, errlen, "committing schema", db);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -EIO;
  }
  return 0;
}

int chat__store_open(const char *path, chat__store_t **out, char *errbuf,
                     size_t errlen) {
  chat__store_t *s;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
              SQLITE_OPEN_NOMUTEX;
  bool wal;
  int i;

  *out = NULL;
  if (path == NULL) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen, "no database path");
    return -EIO;
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    set_err(errbuf, errlen, "opening database", NULL);
    return -EIO;
  }
  atomic_init(&s->fail_next, 0);
  /* The writer's WAL writes go through store_vfs.c (NULL: the default). */
  if (sqlite3_open_v2(path, &s->db, flags, chat__store_vfs()) != SQLITE_OK) {
    set_err(errbuf, errlen, path, s->db);
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
  if (set_wal(s->db, &wal) != SQLITE_OK ||
      sqlite3_exec(s->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF",
                   NULL, NULL, NULL) != SQLITE_OK) {
    set_err(errbuf, errlen, path, s->db);
    goto fail;
  }
  if (init_schema(s->db, errbuf, errlen) != 0)
    goto fail;
  /* A commit's working set is the index leaves of the users it touches:
   * with 100 senders, about 1 MB. A 512 KiB cache read them back from the
   * OS every commit, a tenth of the stored path's time; 16 MB was no
   * faster than 4. The committer gives the cache back when it goes idle
   * (chat__store_trim), so an idle node does not keep it (issue 12,
   * docs/PERFORMANCE.md). */
  if (sqlite3_exec(s->db, "PRAGMA cache_size=-4096", NULL, NULL, NULL) !=
      SQLITE_OK) {
    set_err(errbuf, errlen, path, s->db);
    goto fail;
  }
  /* Without a thread for them (it could not start), SQLite's own
   * checkpoints on commit still bound the log. */
  if (wal && sqlite3_db_readonly(s->db, "main") == 0)
    (void)chat__ckpt_start(s->db, path, &s->ckpt);
  for (i = 0; i < ST_COUNT; i++) {
    if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &s->stmt[i], NULL) != SQLITE_OK) {
      set_err(errbuf, errlen, "preparing statements", s->db);
      goto fail;
    }
  }
  *out = s;
  return 0;

fail:
  chat__store_close(s);
  return -EIO;
}

void chat__store_close(chat__store_t *s) {
  int i;

  if (s == NULL)
    return;
  /* First, so that the writer's close makes the last checkpoint alone. */
  chat__ckpt_stop(s->ckpt);
  for (i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(s->stmt[i]);
  sqlite3_close(s->db);
  free(s);
}

/* ---- Changes ------------------------------------------------------------ */

int chat__store_op_check(const chat__store_op_t *op) {
  const chat__stored_msg_t *m = &op->msg;

  switch (op->kind) {
  case CHAT_STORE_ADD_USER:
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT:
  case CHAT_STORE_ADD_REQUEST:
  case CHAT_STORE_DEL_REQUEST:
  case CHAT_STORE_ADD_MEMBER:
  case CHAT_STORE_DEL_MEMBER:
  case CHAT_STORE_ADD_TOKEN:
    return op->a != NULL && op->b != NULL ? 0 : -EINVAL;
  case CHAT_STORE_TOUCH_TOKEN:
  case CHAT_STORE_DEL_TOKEN:
    return op->b != NULL ? 0 : -EINVAL;
  case CHAT_STORE_PUT_MSG:
    if (m->from == NULL || m->msg_id == NULL ||
        (m->body == NULL && m->body_len > 0) || m->body_len > INT32_MAX)
      return -EINVAL;
    /* fall through */
  case CHAT_STORE_DEL_MSG:
    return m->to != NULL && m->seq > 0 && m->seq <= INT64_MAX ? 0 : -EINVAL;
  }
  return -EINVAL;
}

static int bind_pair(sqlite3_stmt *st, const char *x, const char *y) {
  int rc = sqlite3_bind_text(st, 1, x, -1, SQLITE_STATIC);

  return rc == SQLITE_OK ? sqlite3_bind_text(st, 2, y, -1, SQLITE_STATIC) : rc;
}

static int bind_msg(sqlite3_stmt *st, const chat__stored_msg_t *m) {
  int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)m->seq);

  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, 2, m->to, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, 3, m->from, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = m->group != NULL
             ? sqlite3_bind_text(st, 4, m->group, -1, SQLITE_STATIC)
             : sqlite3_bind_null(st, 4);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, 5, m->msg_id, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    /* A NULL pointer would bind SQL NULL, so an empty body points at "". */
    rc = sqlite3_bind_blob(st, 6, m->body_len > 0 ? m->body : "",
                           (int)m->body_len, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(st, 7, m->ts);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(st, 8, m->offline ? 1 : 0);
  return rc;
}

static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);

  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int apply_op(chat__store_t *s, const chat__store_op_t *op,
                    uint64_t *max_seq) {
  sqlite3_stmt *st;
  const char *x = op->a, *y = op->b;
  int rc;

  switch (op->kind) {
  case CHAT_STORE_ADD_USER:
    st = s->stmt[ST_ADD_USER];
    break;
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT:
    st = s->stmt[op->kind == CHAT_STORE_ADD_CONTACT ? ST_ADD_CONTACT
                                                    : ST_DEL_CONTACT];
    if (strcmp(x, y) > 0) { /* strcmp orders bytes as unsigned, as SQLite */
      x = op->b;
      y = op->a;
    }
    break;
  case CHAT_STORE_ADD_REQUEST:
    st = s->stmt[ST_ADD_REQUEST];
    break;
  case CHAT_STORE_DEL_REQUEST:
    st = s->stmt[ST_DEL_REQUEST];
    break;
  case CHAT_STORE_ADD_MEMBER:
    st = s->stmt[ST_ADD_MEMBER];
    break;
  case CHAT_STORE_DEL_MEMBER:
    st = s->stmt[ST_DEL_MEMBER];
    break;
  case CHAT_STORE_PUT_MSG:
    st = s->stmt[ST_PUT_MSG];
    rc = bind_msg(st, &op->msg);
    if (op->msg.seq > *max_seq)
      *max_seq = op->msg.seq;
    return rc == SQLITE_OK ? run(st) : rc;
  case CHAT_STORE_DEL_MSG:
    st = s->stmt[ST_DEL_MSG];
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)op->msg.seq);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_text(st, 2, op->msg.to, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? run(st) : rc;
  case CHAT_STORE_ADD_TOKEN:
  case CHAT_STORE_TOUCH_TOKEN:
  case CHAT_STORE_DEL_TOKEN:
    st = s->stmt[op->kind == CHAT_STORE_ADD_TOKEN     ? ST_ADD_TOKEN
                 : op->kind == CHAT_STORE_TOUCH_TOKEN ? ST_TOUCH_TOKEN
                                                      : ST_DEL_TOKEN];
    rc = bind_pair(st, x, y);
    if (rc == SQLITE_OK && op->kind != CHAT_STORE_DEL_TOKEN)
      rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)op->msg.ts);
    return rc == SQLITE_OK ? run(st) : rc;
  default:
    return SQLITE_MISUSE; /* chat__store_op_check() let it through: a bug */
  }
  rc = bind_pair(st, x, y);
  return rc == SQLITE_OK ? run(st) : rc;
}

int chat__store_apply(chat__store_t *s, const chat__store_op_t *ops, size_t n) {
  uint64_t max_seq = 0;
  size_t i;
  int rc, err;

  if (n == 0)
    return 0;
  for (i = 0; i < n; i++)
    if (chat__store_op_check(&ops[i]) != 0)
      return -EINVAL;
  rc = run(s->stmt[ST_BEGIN]);
  if (rc != SQLITE_OK)
    return map_err(rc);
  for (i = 0; i < n && rc == SQLITE_OK; i++)
    rc = apply_op(s, &ops[i], &max_seq);
  /* One meta update per batch, not per message. */
  if (rc == SQLITE_OK && max_seq > 0) {
    rc = sqlite3_bind_int64(s->stmt[ST_BUMP_SEQ], 1, (sqlite3_int64)max_seq);
    if (rc == SQLITE_OK)
      rc = run(s->stmt[ST_BUMP_SEQ]);
  }
  err = rc == SQLITE_OK ? atomic_exchange(&s->fail_next, 0) : 0;
  if (rc == SQLITE_OK && err == 0) {
    rc = run(s->stmt[ST_COMMIT]);
    if (rc == SQLITE_OK)
      return 0;
  }
  if (err == 0)
    err = map_err(rc);
  /* A failed COMMIT may leave the transaction open (SQLITE_BUSY, FULL);
   * some errors roll back by themselves, then ROLLBACK is a harmless no-op. */
  if (!sqlite3_get_autocommit(s->db))
    run(s->stmt[ST_ROLLBACK]);
  return err;
}

/* ---- Fault injection ---------------------------------------------------- */

void chat__store_trim(chat__store_t *s) { sqlite3_db_release_memory(s->db); }

size_t chat__store_cache_bytes(chat__store_t *s) {
  int cur = 0, hi = 0;

  if (sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) !=
      SQLITE_OK)
    return 0;
  return cur > 0 ? (size_t)cur : 0;
}

chat__ckpt_t *chat__store_checkpointer(chat__store_t *s) { return s->ckpt; }

void chat__store_fail_next(chat__store_t *s, int err) {
  if (err > 0)
    err = -err;
  atomic_store(&s->fail_next, err);
}

int chat__store_limit_pages(chat__store_t *s, unsigned max_pages) {
  char sql[64];

  snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%u", max_pages);
  return chat__store_query_int(s->db, sql) < 0 ? -EIO : 0;
}

int chat__store_limit_bytes(chat__store_t *s, uint64_t max_bytes) {
  int64_t page = chat__store_query_int(s->db, "PRAGMA page_size");
  uint64_t pages;

  if (page <= 0)
    return -EIO;
  pages = max_bytes / (uint64_t)page;
  if (pages < 1)
    pages = 1;
  if (pages > UINT32_MAX)
    pages = UINT32_MAX;
  return chat__store_limit_pages(s, (unsigned)pages);
}
