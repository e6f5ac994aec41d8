/* engine_mem_store.h -- private to engine_mem*.c: the in-memory tables
 * behind the mem engine, with store.h's semantics (store_sqlite.c's SQL is
 * the reference): idempotent ops applied all or nothing, and per-user reads
 * that hand back owned results like chat_store_get_*. */
#ifndef CHAT_ENGINE_MEM_STORE_H
#define CHAT_ENGINE_MEM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* An op with copies of its strings (op points into them). Applying it may
 * move a string into the tables (the field is NULL then); the rest is freed
 * with chat__mem_op_free. */
typedef struct chat__mem_op {
  chat__store_op_t op;
  char *a, *b, *to, *from, *group, *msg_id, *body;
} chat__mem_op_t;

/* 0 or -ENOMEM (o is then empty). The body is never NULL. */
int chat__mem_op_copy(chat__mem_op_t *o, const chat__store_op_t *op);
void chat__mem_op_free(chat__mem_op_t *o);

typedef struct chat__memstore chat__memstore_t;

/* 0 or -ENOMEM. */
int chat__memstore_new(chat__memstore_t **out);
void chat__memstore_free(chat__memstore_t *s);
/* Applies ops[0..n) (checked already) as one batch: 0, or an error and
 * nothing changed: fail_err when nonzero (an injected failure), else
 * -ENOMEM. With fail_err -ENOSPC the DEL_MSG ops still apply, as the
 * committer retries them alone; the others are moved to the front and
 * *nfail counts them (n on any other failure, 0 on success). */
int chat__memstore_apply(chat__memstore_t *s, chat__mem_op_t **ops, size_t n,
                         int fail_err, size_t *nfail);
uint64_t chat__memstore_max_seq(const chat__memstore_t *s);
/* As chat__store_get_user / get_group / get_held / find_sent: 0 or -ENOMEM,
 * the result owned by the caller (chat__store_user_free,
 * chat__store_group_free, free). */
int chat__memstore_get_user(const chat__memstore_t *s, const char *name,
                            int full, const char *token_hash,
                            chat__store_user_t **out);
int chat__memstore_get_group(const chat__memstore_t *s, const char *name,
                             chat__store_group_t **out);
int chat__memstore_get_held(const chat__memstore_t *s, const char *rcpt,
                            uint64_t after, uint32_t limit,
                            chat__stored_msg_t **out, size_t *n, int *more);
int chat__memstore_find_sent(const chat__memstore_t *s, const char *from,
                             const char *msg_id, chat__stored_msg_t **out);

#endif /* CHAT_ENGINE_MEM_STORE_H */
