/* store.h -- the server's durable state, behind one header.
 *
 * The store is the authority on everything that outlives a session. The
 * server reads it per user on demand (never all of it: start-up reads the
 * schema and the next seq), and every change is written as an operation in
 * a batch that commits as one transaction. SQLite appears only in the
 * store's own files (store_sqlite.c, store_sqlite_read.c, and the WAL
 * helpers store_ckpt.c and store_vfs.c); the server reaches it through
 * engine.h. A chat__store_t is used by one thread at a time (the
 * committer's), besides the checkpointer's own connection.
 *
 * Durability: the database runs in WAL mode with synchronous=FULL, so when
 * chat__store_apply() returns 0 the batch is on disk and survives SIGKILL and
 * power loss alike.
 */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct chat__store chat__store_t;

/* Opens (creating when needed) the database at path; ":memory:" keeps
 * nothing. A path starting "file:" is an SQLite URI, so
 * "file:/x/chat.db?mode=ro" opens an existing database read-only (every
 * chat__store_apply() then fails with -EROFS). Creates or checks the schema.
 * Returns 0 or -EIO (*out NULL; a reason is in errbuf when given, also for
 * a database written by a newer schema version). */
int chat__store_open(const char *path, chat__store_t **out, char *errbuf,
                     size_t errlen);
void chat__store_close(chat__store_t *s);

/* ---- Reads -------------------------------------------------------------
 * Synchronous, on whichever thread uses the store (the engine runs them on
 * its store thread). Each returns 0 or -EIO / -ENOMEM. */

typedef struct chat__stored_msg {
  uint64_t seq;        /* accept order, unique, increasing */
  const char *to;      /* recipient */
  const char *from;    /* sender */
  const char *group;   /* NULL for a 1:1 message */
  const char *msg_id;
  const char *body;    /* body_len bytes, not NUL-terminated in general */
  size_t body_len;
  int64_t ts;          /* ms since the epoch, when the server accepted it */
  int offline;         /* stored while its recipient was away (deliver's
                        * "offline"); PUT_MSG of an unset one stores 0 */
} chat__stored_msg_t;

/* What the store holds of one user. Owned by whoever got it from
 * chat__store_get_user (free with chat__store_user_free). */
typedef struct chat__store_user {
  int exists;           /* 0: no such user; nothing else is set */
  char *pwhash;         /* crypto_pwhash_str format */
  uint32_t held;        /* messages held for the user (its mailbox) */
  uint32_t sent_held;   /* 1:1 messages held *from* the user, to anyone */
  int64_t token_used;   /* with a token hash asked: the ms of its last use
                         * when it is this user's token, else -1 */
  uint8_t status;       /* cluster mode (Redis): the chat_status_t its
                         * session on some node shows, 0 when none */
  /* Only for a full load (a login); else NULL and 0. */
  char **contacts;      /* sorted by name (byte order) */
  uint32_t ncontacts;
  char **requests;      /* incoming contact requests, oldest first */
  uint32_t nrequests;
  char **groups;        /* sorted by name */
  uint32_t ngroups;
} chat__store_user_t;

typedef struct chat__store_group {
  int exists;
  char **members;       /* in the order they were added */
  uint32_t nmembers;
} chat__store_group_t;

/* name's record; full adds contacts, requests and groups; token_hash
 * (NULL: none) asks for that token's last use. */
int chat__store_get_user(chat__store_t *s, const char *name, int full,
                         const char *token_hash, chat__store_user_t **out);
void chat__store_user_free(chat__store_user_t *u);
int chat__store_get_group(chat__store_t *s, const char *name,
                          chat__store_group_t **out);
void chat__store_group_free(chat__store_group_t *g);
/* Messages held for rcpt with seq > after, oldest first, at most limit
 * (1 to CHAT_STORE_PAGE_MAX; *n of them in *out, one allocation:
 * free(*out)); *more is nonzero when there are further ones. */
#define CHAT_STORE_PAGE_MAX 4096
int chat__store_get_held(chat__store_t *s, const char *rcpt, uint64_t after,
                         uint32_t limit, chat__stored_msg_t **out, size_t *n,
                         int *more);
/* The held 1:1 message from `from` with msg_id (*out one allocation, free
 * it), or *out NULL when there is none. */
int chat__store_find_sent(chat__store_t *s, const char *from,
                          const char *msg_id, chat__stored_msg_t **out);
/* ---- Whole-table scans, for tests and tools (the server reads per user) -- */
/* Each loader calls cb once per row, in the order given, with borrowed
 * strings valid only during the call. A nonzero return from cb stops the walk
 * and is returned. Otherwise 0, or -EIO. */

/* Users with their password hash (libsodium's crypto_pwhash_str format),
 * by name. */
int chat__store_load_users(chat__store_t *s,
                           int (*cb)(void *ctx, const char *user,
                                     const char *pwhash),
                           void *ctx);
/* Contact pairs, each once, a < b in byte order. */
int chat__store_load_contacts(chat__store_t *s,
                              int (*cb)(void *ctx, const char *a,
                                        const char *b),
                              void *ctx);
/* Pending contact requests, oldest first. */
int chat__store_load_requests(chat__store_t *s,
                              int (*cb)(void *ctx, const char *from,
                                        const char *to),
                              void *ctx);
/* Groups (by name) and their members (member order: the order they were
 * added); all rows of one group are consecutive. */
int chat__store_load_groups(chat__store_t *s,
                            int (*cb)(void *ctx, const char *group,
                                      const char *member),
                            void *ctx);

/* Held messages in seq order. */
int chat__store_load_messages(chat__store_t *s,
                              int (*cb)(void *ctx, const chat__stored_msg_t *m),
                              void *ctx);
/* The largest seq ever stored (0 when none), so new seqs keep increasing. */
int chat__store_max_seq(chat__store_t *s, uint64_t *seq);

/* ---- Changes ------------------------------------------------------------ */

typedef enum chat__store_op_kind {
  CHAT_STORE_ADD_USER,      /* a = user, b = pwhash */
  CHAT_STORE_ADD_CONTACT,   /* a, b (any order) */
  CHAT_STORE_DEL_CONTACT,   /* a, b (any order) */
  CHAT_STORE_ADD_REQUEST,   /* a = from, b = to */
  CHAT_STORE_DEL_REQUEST,   /* a = from, b = to */
  CHAT_STORE_PUT_MSG,       /* msg */
  CHAT_STORE_DEL_MSG,       /* msg.to and msg.seq (other fields ignored) */
  CHAT_STORE_ADD_MEMBER,    /* a = group, b = user (creates the group) */
  CHAT_STORE_DEL_MEMBER,    /* a = group, b = user (the last one ends it) */
  CHAT_STORE_ADD_TOKEN,     /* a = user, b = token hash (hex), msg.ts = now */
  CHAT_STORE_TOUCH_TOKEN,   /* b = token hash, msg.ts = now */
  CHAT_STORE_DEL_TOKEN      /* b = token hash */
} chat__store_op_kind_t;

/* One change. The strings are borrowed by chat__store_apply() for the call
 * only; whoever builds a batch owns them (see committer.h). */
typedef struct chat__store_op {
  chat__store_op_kind_t kind;
  const char *a, *b;
  chat__stored_msg_t msg;
} chat__store_op_t;

/* Applies ops in order as one transaction and commits it. Adding what exists
 * or deleting what does not is not an error (replay is safe); a PUT_MSG of a
 * seq already stored keeps the stored message. Returns 0 once the
 * transaction is on disk, or after rolling it back (then none of the ops
 * took effect): -EINVAL (an op lacks a string it needs, has an unknown kind
 * or a seq of 0 or above INT64_MAX; nothing was attempted), -ENOSPC (disk or
 * page limit full), -EROFS (read-only database) or -EIO (anything else).
 * n == 0 returns 0 without touching the database. */
int chat__store_apply(chat__store_t *s, const chat__store_op_t *ops, size_t n);

/* Checks one op the way chat__store_apply() does: 0 or -EINVAL. */
int chat__store_op_check(const chat__store_op_t *op);

/* Gives back the memory of pages the connection caches (they are read
 * again from the file, or the OS's cache, when next needed). On the
 * store's thread, when it is idle. */
void chat__store_trim(chat__store_t *s);
/* Bytes the connection's page cache holds now; on the store's thread (or
 * while it is idle). */
size_t chat__store_cache_bytes(chat__store_t *s);

/* ---- Fault injection, for tests ---------------------------------------- */

/* The thread that checkpoints the WAL (store_ckpt.h), or NULL when there is
 * none (":memory:", read-only, or it could not start). */
struct chat__ckpt *chat__store_checkpointer(chat__store_t *s);

/* Makes the next chat__store_apply() with n > 0 run its ops, then roll back
 * and return err (a negative code) instead of committing. err == 0 cancels.
 * May be called from any thread. */
void chat__store_fail_next(chat__store_t *s, int err);
/* Caps the database at max_pages pages (PRAGMA max_page_count, this
 * connection only; never below its current size), so growing it fails with
 * -ENOSPC as a full disk would. 0 or -EIO. */
int chat__store_limit_pages(chat__store_t *s, unsigned max_pages);
/* The same cap in bytes (rounded down to whole pages, at least one): what
 * the server's --db-max-mb sets. 0 or -EIO. */
int chat__store_limit_bytes(chat__store_t *s, uint64_t max_bytes);

#endif /* CHAT_STORE_H */
