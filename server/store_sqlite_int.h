/* store_sqlite_int.h -- what the SQLite store's files share (private to
 * store_sqlite.c and store_sqlite_read.c): its prepared statements and the
 * struct behind chat__store_t.
 */
#ifndef CHAT_STORE_SQLITE_INT_H
#define CHAT_STORE_SQLITE_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"
#include "store_ckpt.h"

/* Prepared once at open (store_sqlite.c's stmt_sql), in this order. */
enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_ADD_USER,
  ST_ADD_CONTACT,
  ST_DEL_CONTACT,
  ST_ADD_REQUEST,
  ST_DEL_REQUEST,
  ST_PUT_MSG,
  ST_DEL_MSG,
  ST_ADD_MEMBER,
  ST_DEL_MEMBER,
  ST_BUMP_SEQ,
  ST_ADD_TOKEN,
  ST_TOUCH_TOKEN,
  ST_DEL_TOKEN,
  ST_GET_USER,
  ST_GET_TOKEN,
  ST_GET_CONTACTS,
  ST_GET_REQUESTS,
  ST_GET_GROUPS,
  ST_GET_MEMBERS,
  ST_GET_HELD,
  ST_COUNT_SENT,
  ST_FIND_SENT,
  ST_COUNT
};

struct chat__store {
  sqlite3 *db;
  chat__ckpt_t *ckpt; /* NULL: no WAL, or SQLite checkpoints on commit */
  sqlite3_stmt *stmt[ST_COUNT];
  atomic_int fail_next; /* negative code for the next apply, or 0 */
};

/* Returns the single integer a pragma or query yields, or -1 on error. */
int64_t chat__store_query_int(sqlite3 *db, const char *sql);

#endif /* CHAT_STORE_SQLITE_INT_H */
