/* store_sqlite_read.c -- the SQLite store's reads (store.h): per user and
 * per group on demand, held messages a page at a time, and the whole-table
 * scans of tests and tools. On the store's thread, with the statements
 * store_sqlite.c prepared at open.
 */
#include "store.h"

#include "store_sqlite_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* ---- Reads ----------------------------------------------------------------
 */

/* Binds ?1 (and ?2 when y is given) as text. */
static int bind_texts(sqlite3_stmt *st, const char *x, const char *y) {
  int rc = sqlite3_bind_text(st, 1, x, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && y != NULL)
    rc = sqlite3_bind_text(st, 2, y, -1, SQLITE_STATIC);
  return rc;
}

static void done_stmt(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* The first column of every row of st (bound already) as strings into
 * *out / *n. 0, -ENOMEM or -EIO. */
static int collect(sqlite3_stmt *st, char ***out, uint32_t *n) {
  char **v = NULL;
  uint32_t len = 0, cap = 0;
  int rc, ret = 0;

  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *x = (const char *)sqlite3_column_text(st, 0);
    if (x == NULL) {
      ret = -ENOMEM;
      break;
    }
    if (len == cap) {
      uint32_t ncap = cap ? cap * 2 : 16;
      char **nv = realloc(v, ncap * sizeof(*v));
      if (nv == NULL) {
        ret = -ENOMEM;
        break;
      }
      v = nv;
      cap = ncap;
    }
    if ((v[len] = strdup(x)) == NULL) {
      ret = -ENOMEM;
      break;
    }
    len++;
  }
  if (ret == 0 && rc != SQLITE_DONE)
    ret = -EIO;
  done_stmt(st);
  if (ret != 0) {
    while (len > 0)
      free(v[--len]);
    free(v);
    return ret;
  }
  *out = v;
  *n = len;
  return 0;
}

static void free_strs(char **v, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void chat__store_user_free(chat__store_user_t *u) {
  if (u == NULL)
    return;
  free(u->pwhash);
  free_strs(u->contacts, u->ncontacts);
  free_strs(u->requests, u->nrequests);
  free_strs(u->groups, u->ngroups);
  free(u);
}

static int64_t one_int(sqlite3_stmt *st, int64_t none) {
  int64_t v = none;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else if (rc != SQLITE_DONE)
    v = INT64_MIN;
  done_stmt(st);
  return v;
}

int chat__store_get_user(chat__store_t *s, const char *name, int full,
                         const char *token_hash, chat__store_user_t **out) {
  chat__store_user_t *u = calloc(1, sizeof(*u));
  sqlite3_stmt *st = s->stmt[ST_GET_USER];
  int rc, ret = 0;

  *out = NULL;
  if (u == NULL)
    return -ENOMEM;
  u->token_used = -1;
  if (bind_texts(st, name, NULL) != SQLITE_OK) {
    done_stmt(st);
    free(u);
    return -EIO;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *h = (const char *)sqlite3_column_text(st, 0);
    int64_t held = sqlite3_column_int64(st, 1);
    u->exists = 1;
    u->held = held < 0 ? 0 : held > UINT32_MAX ? UINT32_MAX : (uint32_t)held;
    if (h == NULL || (u->pwhash = strdup(h)) == NULL)
      ret = -ENOMEM;
  } else if (rc != SQLITE_DONE) {
    ret = -EIO;
  }
  done_stmt(st);
  if (ret == 0 && u->exists) {
    st = s->stmt[ST_COUNT_SENT];
    int64_t n = bind_texts(st, name, NULL) == SQLITE_OK ? one_int(st, 0)
                                                        : INT64_MIN;
    if (n == INT64_MIN)
      ret = -EIO;
    u->sent_held = n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  }
  if (ret == 0 && u->exists && token_hash != NULL) {
    st = s->stmt[ST_GET_TOKEN];
    int64_t used = bind_texts(st, token_hash, name) == SQLITE_OK
                       ? one_int(st, -1)
                       : INT64_MIN;
    if (used == INT64_MIN)
      ret = -EIO;
    u->token_used = used < 0 ? -1 : used;
  }
  if (ret == 0 && u->exists && full) {
    st = s->stmt[ST_GET_CONTACTS];
    ret = bind_texts(st, name, NULL) == SQLITE_OK
              ? collect(st, &u->contacts, &u->ncontacts)
              : -EIO;
    st = s->stmt[ST_GET_REQUESTS];
    if (ret == 0)
      ret = bind_texts(st, name, NULL) == SQLITE_OK
                ? collect(st, &u->requests, &u->nrequests)
                : -EIO;
    st = s->stmt[ST_GET_GROUPS];
    if (ret == 0)
      ret = bind_texts(st, name, NULL) == SQLITE_OK
                ? collect(st, &u->groups, &u->ngroups)
                : -EIO;
  }
  if (ret != 0) {
    chat__store_user_free(u);
    return ret;
  }
  *out = u;
  return 0;
}

void chat__store_group_free(chat__store_group_t *g) {
  if (g == NULL)
    return;
  free_strs(g->members, g->nmembers);
  free(g);
}

int chat__store_get_group(chat__store_t *s, const char *name,
                          chat__store_group_t **out) {
  chat__store_group_t *g = calloc(1, sizeof(*g));
  sqlite3_stmt *st = s->stmt[ST_GET_MEMBERS];
  int ret;

  *out = NULL;
  if (g == NULL)
    return -ENOMEM;
  ret = bind_texts(st, name, NULL) == SQLITE_OK
            ? collect(st, &g->members, &g->nmembers)
            : -EIO;
  if (ret != 0) {
    free(g);
    return ret;
  }
  g->exists = g->nmembers > 0; /* a group exists through its members */
  *out = g;
  return 0;
}

/* Rows of (seq, rcpt, sender, grp, msg_id, body, ts) into one allocation:
 * the structs first, then every string and body behind them. */
static int collect_msgs(sqlite3_stmt *st, uint32_t limit,
                        chat__stored_msg_t **out, size_t *n, int *more) {
  char *blk = NULL;
  size_t len = 0, cap = 0, count = 0;
  int rc, ret = 0;
  /* Two passes would need the rows twice; instead keep offsets in the
   * struct slots while the block grows, and fix them up at the end. */
  size_t head = (size_t)limit * sizeof(chat__stored_msg_t);

  *out = NULL;
  *n = 0;
  if (more)
    *more = 0;
  cap = head + 4096;
  if ((blk = malloc(cap)) == NULL) {
    done_stmt(st);
    return -ENOMEM;
  }
  len = head;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (count == limit) {
      if (more)
        *more = 1;
      break;
    }
    const char *cols[4];
    size_t lens[4], need = 0;
    for (int i = 0; i < 4; i++) {
      cols[i] = (const char *)sqlite3_column_text(st, i + 1);
      lens[i] = cols[i] ? strlen(cols[i]) + 1 : 0;
      need += lens[i];
    }
    const void *body = sqlite3_column_blob(st, 5);
    size_t blen = (size_t)sqlite3_column_bytes(st, 5);
    need += blen;
    if (len + need > cap) {
      size_t ncap = cap;
      while (len + need > ncap)
        ncap *= 2;
      char *nb = realloc(blk, ncap);
      if (nb == NULL) {
        ret = -ENOMEM;
        break;
      }
      blk = nb;
      cap = ncap;
    }
    chat__stored_msg_t *m = (chat__stored_msg_t *)(void *)blk + count;
    size_t offs[4];
    for (int i = 0; i < 4; i++) {
      offs[i] = cols[i] ? len : SIZE_MAX;
      if (cols[i]) {
        memcpy(blk + len, cols[i], lens[i]);
        len += lens[i];
      }
    }
    size_t boff = len;
    if (blen > 0)
      memcpy(blk + len, body, blen);
    len += blen;
    m->seq = (uint64_t)sqlite3_column_int64(st, 0);
    m->to = (const char *)(uintptr_t)offs[0];
    m->from = (const char *)(uintptr_t)offs[1];
    m->group = (const char *)(uintptr_t)offs[2];
    m->msg_id = (const char *)(uintptr_t)offs[3];
    m->body = (const char *)(uintptr_t)boff;
    m->body_len = blen;
    m->ts = sqlite3_column_int64(st, 6);
    m->offline = sqlite3_column_int(st, 7) != 0;
    count++;
  }
  if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
    ret = -EIO;
  done_stmt(st);
  if (ret != 0) {
    free(blk);
    return ret;
  }
  for (size_t i = 0; i < count; i++) {
    chat__stored_msg_t *m = (chat__stored_msg_t *)(void *)blk + i;
#define FIX(f) m->f = (uintptr_t)m->f == SIZE_MAX ? NULL : blk + (uintptr_t)m->f
    FIX(to);
    FIX(from);
    FIX(group);
    FIX(msg_id);
    FIX(body);
#undef FIX
  }
  *out = (chat__stored_msg_t *)(void *)blk;
  *n = count;
  return 0;
}

int chat__store_get_held(chat__store_t *s, const char *rcpt, uint64_t after,
                         uint32_t limit, chat__stored_msg_t **out, size_t *n,
                         int *more) {
  sqlite3_stmt *st = s->stmt[ST_GET_HELD];
  /* The result's structs are allocated for limit up front: a page is a
   * window's worth, never a mailbox. */
  if (limit == 0)
    limit = 1;
  if (limit > CHAT_STORE_PAGE_MAX)
    limit = CHAT_STORE_PAGE_MAX;
  /* one more than asked, to learn whether there are more */
  if (bind_texts(st, rcpt, NULL) != SQLITE_OK ||
      sqlite3_bind_int64(st, 2, (sqlite3_int64)after) != SQLITE_OK ||
      sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1) != SQLITE_OK) {
    done_stmt(st);
    return -EIO;
  }
  return collect_msgs(st, limit, out, n, more);
}

int chat__store_find_sent(chat__store_t *s, const char *from,
                          const char *msg_id, chat__stored_msg_t **out) {
  sqlite3_stmt *st = s->stmt[ST_FIND_SENT];
  size_t n;
  int r;
  if (bind_texts(st, from, msg_id) != SQLITE_OK) {
    done_stmt(st);
    return -EIO;
  }
  r = collect_msgs(st, 1, out, &n, NULL);
  if (r == 0 && n == 0) {
    free(*out);
    *out = NULL;
  }
  return r;
}

/* ---- Whole-table scans (tests and tools; the server never calls these) -- */

/* Walks a two-text-column query; cb's nonzero return stops the walk. */
static int load_pairs(chat__store_t *s, const char *sql,
                      int (*cb)(void *ctx, const char *x, const char *y),
                      void *ctx) {
  sqlite3_stmt *st;
  int rc, ret = 0;

  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return -EIO;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *x = (const char *)sqlite3_column_text(st, 0);
    const char *y = (const char *)sqlite3_column_text(st, 1);

    if (x == NULL || y == NULL) { /* only on out-of-memory */
      ret = -EIO;
      break;
    }
    ret = cb(ctx, x, y);
    if (ret != 0)
      break;
  }
  if (ret == 0 && rc != SQLITE_DONE)
    ret = -EIO;
  sqlite3_finalize(st);
  return ret;
}

int chat__store_load_users(chat__store_t *s,
                           int (*cb)(void *ctx, const char *user,
                                     const char *pwhash),
                           void *ctx) {
  return load_pairs(s, "SELECT name, pwhash FROM users ORDER BY name", cb,
                    ctx);
}

int chat__store_load_contacts(chat__store_t *s,
                              int (*cb)(void *ctx, const char *a,
                                        const char *b),
                              void *ctx) {
  return load_pairs(s, "SELECT a, b FROM contacts ORDER BY a, b", cb, ctx);
}

int chat__store_load_requests(chat__store_t *s,
                              int (*cb)(void *ctx, const char *from,
                                        const char *to),
                              void *ctx) {
  return load_pairs(s, "SELECT src, dst FROM requests ORDER BY id", cb, ctx);
}

int chat__store_load_groups(chat__store_t *s,
                            int (*cb)(void *ctx, const char *group,
                                      const char *member),
                            void *ctx) {
  return load_pairs(s, "SELECT grp, member FROM members ORDER BY grp, id", cb,
                    ctx);
}

int chat__store_load_messages(chat__store_t *s,
                              int (*cb)(void *ctx, const chat__stored_msg_t *m),
                              void *ctx) {
  sqlite3_stmt *st;
  int rc, ret = 0;

  if (sqlite3_prepare_v2(s->db,
                         "SELECT seq, rcpt, sender, grp, msg_id, body, ts"
                         " FROM messages ORDER BY seq",
                         -1, &st, NULL) != SQLITE_OK)
    return -EIO;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    chat__stored_msg_t m;

    m.seq = (uint64_t)sqlite3_column_int64(st, 0);
    m.to = (const char *)sqlite3_column_text(st, 1);
    m.from = (const char *)sqlite3_column_text(st, 2);
    m.group = (const char *)sqlite3_column_text(st, 3);
    m.msg_id = (const char *)sqlite3_column_text(st, 4);
    m.body = sqlite3_column_blob(st, 5);
    m.body_len = (size_t)sqlite3_column_bytes(st, 5);
    m.ts = sqlite3_column_int64(st, 6);
    if (m.body == NULL)
      m.body = ""; /* SQLite gives NULL for an empty blob */
    if (m.to == NULL || m.from == NULL || m.msg_id == NULL ||
        (m.group == NULL && sqlite3_column_type(st, 3) != SQLITE_NULL)) {
      ret = -EIO;
      break;
    }
    ret = cb(ctx, &m);
    if (ret != 0)
      break;
  }
  if (ret == 0 && rc != SQLITE_DONE)
    ret = -EIO;
  sqlite3_finalize(st);
  return ret;
}

int chat__store_max_seq(chat__store_t *s, uint64_t *seq) {
  int64_t v = chat__store_query_int(s->db, "SELECT max((SELECT max_seq FROM meta),"
                               " ifnull((SELECT max(seq) FROM messages), 0))");

  if (v < 0)
    return -EIO;
  *seq = (uint64_t)v;
  return 0;
}
