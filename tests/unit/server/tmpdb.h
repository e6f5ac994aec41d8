/* tmpdb.h -- a fresh directory per test for a database file, removed with
 * everything SQLite left in it (the -wal, -shm and -journal files).
 * Header-only; include after cmocka.h. */
#ifndef TEST_SERVER_TMPDB_H
#define TEST_SERVER_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct tmpdb {
  char dir[64];
  char path[96];
} tmpdb_t;

static inline void tmpdb_make(tmpdb_t *t) {
  snprintf(t->dir, sizeof(t->dir), "/tmp/chat-store-XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  snprintf(t->path, sizeof(t->path), "%s/chat.db", t->dir);
}

static inline void tmpdb_remove(tmpdb_t *t) {
  static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
  char p[128];

  for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", t->path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(t->dir), 0);
}

#endif /* TEST_SERVER_TMPDB_H */
