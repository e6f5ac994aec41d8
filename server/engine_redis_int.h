/* engine_redis_int.h -- private to the Redis engine's files: the key scheme
 * and the commands built from ops and reads (redis_cmds.c), the decoding
 * of replies (redis_reply.c), and the start-up side of the connection
 * (redis_conn.c). engine_redis.c is the seam itself (engine.h).
 *
 * The data model is docs/CLUSTER.md's; in short, every key carries a hash
 * tag, so a user's keys share one Redis Cluster slot:
 *   {u:NAME}:user      hash   pw -> password hash (the user exists)
 *   {u:NAME}:contacts  zset   contact names, score 0 (byte order)
 *   {u:NAME}:requests  zset   incoming requests, score = arrival order
 *   {u:NAME}:groups    zset   group names, score 0 (byte order)
 *   {u:NAME}:held      zset   messages held for NAME, score 0, member =
 *                             20-digit seq + the record (so byte order is
 *                             seq order and a page is one ZRANGEBYLEX)
 *   {u:NAME}:sent      hash   msg_id -> "SEQ RCPT" of each held 1:1
 *                             message from NAME (repeats, sent count)
 *   {g:NAME}:members   zset   members, score = join order
 *   {tok:HASH}         hash   user, used (ms) of one session token
 *   {chat}:max_seq     string the largest seq ever stored (20 digits)
 *   {chat}:schema      string the data model's version ("1")
 */
#ifndef CHAT_ENGINE_REDIS_INT_H
#define CHAT_ENGINE_REDIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>

#include "engine.h"

#define CHAT__REDIS_SCHEMA "1"
#define CHAT__REDIS_SEQ_LEN 20 /* seqs as %020llu: byte order = seq order */

/* ---- redis_cmds.c -------------------------------------------------------- */

/* The Lua scripts, loaded (SCRIPT LOAD) on every connection before any
 * other command, and called by their SHA1. */
typedef enum {
  CHAT__SC_PUT,   /* PUT_MSG: keeps a stored seq and a held 1:1 msg_id */
  CHAT__SC_DEL,   /* DEL_MSG: also frees the sender's msg_id */
  CHAT__SC_FIND,  /* find_sent */
  CHAT__SC_OADD,  /* add to a zset in arrival order, keeping a place */
  CHAT__SC_TOUCH, /* TOUCH_TOKEN: used = max(used, ts) */
  /* cluster mode's (bus_lua.c, bus.h) */
  CHAT__SC_BUS_LOGIN,  /* the directory: a session is the user's */
  CHAT__SC_BUS_REJOIN, /* a session asserts itself after a TICK's -1 */
  CHAT__SC_BUS_STATUS, /* its status changed */
  CHAT__SC_BUS_LOGOUT, /* it ended */
  CHAT__SC_BUS_ROUTE,  /* an event to the node a user is on */
  CHAT__SC_BUS_STATUSES, /* users' statuses, for a contacts request */
  CHAT__SC_BUS_CARRY,  /* a loop turn's items, to their recipients' nodes */
  CHAT__SC_BUS_CONNECT, /* a connect to a user on another node */
  CHAT__SC_BUS_GROUP,  /* "messages stored" to each node of a group */
  CHAT__SC_BUS_TICK,   /* liveness, and cleaning up after dead nodes */
  CHAT__SC_BUS_START,  /* a node's start */
  CHAT__SC_COUNT
} chat__redis_script_t;

const char *chat__redis_script_src(chat__redis_script_t s);
/* bus_lua.c: the cluster scripts' sources, by the same index (NULL for
 * the engine's own). */
extern const char *const chat__bus_lua[CHAT__SC_COUNT];

typedef char chat__redis_sha_t[41];

/* One command: argv with lengths; the strings it built are in mem and
 * go with chat__rcmd_free (after hiredis has copied them). */
#define CHAT__RCMD_ARGS 12
typedef struct chat__rcmd {
  int argc;
  const char *argv[CHAT__RCMD_ARGS];
  size_t len[CHAT__RCMD_ARGS];
  char *mem[CHAT__RCMD_ARGS];
  int nmem;
  int oom; /* an allocation failed: do not send */
} chat__rcmd_t;

void chat__rcmd_free(chat__rcmd_t *c);

/* The commands that apply op (at most 2) into out; returns how many.
 * An op already passed chat__store_op_check(). */
int chat__redis_op_cmds(const chat__store_op_t *op,
                        const chat__redis_sha_t *shas, chat__rcmd_t out[2]);

/* The commands of each read, its one reply-bearing command last (reads of
 * several commands are wrapped in MULTI/EXEC, so one array answers them).
 * Return how many (at most CHAT__READ_CMDS). */
#define CHAT__READ_CMDS 10
int chat__redis_user_cmds(const char *name, int full, const char *token_hash,
                          chat__rcmd_t out[CHAT__READ_CMDS]);
int chat__redis_group_cmds(const char *name, chat__rcmd_t out[1]);
int chat__redis_held_cmds(const char *rcpt, uint64_t after, uint32_t limit,
                          chat__rcmd_t out[1]);
int chat__redis_sent_cmds(const char *from, const char *msg_id,
                          const chat__redis_sha_t *shas, chat__rcmd_t out[1]);
/* EVALSHA of a cluster script with args (at most CHAT__RCMD_ARGS - 3). */
int chat__redis_call_cmds(chat__redis_script_t script,
                          const char *const *args, const size_t *lens,
                          int nargs, const chat__redis_sha_t *shas,
                          chat__rcmd_t out[1]);

/* ---- redis_reply.c ------------------------------------------------------- */

/* Each returns 0, -EIO (a reply not of the expected shape, or an error
 * reply) or -ENOMEM, and hands out owned results as store.h's readers do. */
int chat__redis_user_parse(const redisReply *r, const char *name, int full,
                           const char *token_hash, chat__store_user_t **out);
int chat__redis_group_parse(const redisReply *r, chat__store_group_t **out);
/* limit as asked (the reply holds up to limit + 1: *more). */
int chat__redis_held_parse(const redisReply *r, uint32_t limit,
                           chat__stored_msg_t **out, size_t *n, int *more);
int chat__redis_sent_parse(const redisReply *r, chat__stored_msg_t **out);
/* A held message's zset member, as PUT_MSG stores it (malloc'd, *len). */
char *chat__redis_msg_encode(const chat__stored_msg_t *m, size_t *len);
/* 0 when an EXEC's reply shows every command applied; else a negative
 * code (OOM: -ENOSPC, anything else -EIO) and, with errbuf, Redis's text. */
int chat__redis_exec_status(const redisReply *r, char *errbuf, size_t errlen);

/* ---- redis_conn.c -------------------------------------------------------- */

typedef struct chat__redis_url {
  char host[256];
  int port;
  int db;
} chat__redis_url_t;

/* redis://HOST[:PORT][/N] (HOST may be [v6]); 0 or -EINVAL with a reason. */
int chat__redis_url_parse(const char *url, chat__redis_url_t *u, char *errbuf,
                          size_t errlen);

/* A blocking connection for start-up: connects (with a timeout), selects
 * the database, with check (and not unsafe) checks the settings below,
 * checks or writes the schema version, and loads the scripts into shas.
 * 0 or -EIO with the reason in errbuf. */
int chat__redis_sync_open(const chat__redis_url_t *u, int check, int unsafe,
                          chat__redis_sha_t *shas, redisContext **out,
                          char *errbuf, size_t errlen);
/* The settings that make an acknowledged write durable (appendonly yes,
 * appendfsync always, no-appendfsync-on-rewrite no), by index: the name,
 * and a check of one CONFIG GET reply: 0, or -EIO naming the setting and
 * the fix in errbuf. */
#define CHAT__REDIS_SETTINGS 3
const char *chat__redis_setting_name(int i);
int chat__redis_check_setting(int i, const redisReply *r, char *errbuf,
                              size_t errlen);
/* GET {chat}:max_seq on a blocking connection: 0 or -EIO. */
int chat__redis_sync_max_seq(redisContext *c, uint64_t *seq);
/* Every start of a node on one Redis takes a range of seqs of its own: run
 * number N (INCR {chat}:runs) hands out seqs above N << RUN_BITS. So two
 * nodes sharing a Redis never give two messages one seq (a PUT_MSG of a seq
 * already stored keeps the first: the second would be lost), and a
 * restarted node stays above everything stored before. 2^40 seqs a run,
 * 2^23 runs before seqs would pass INT64_MAX. *base is what the core
 * counts up from (engine.h max_seq). 0 or -EIO. */
#define CHAT__REDIS_RUN_BITS 40
#define CHAT__REDIS_RUNS_MAX (1ULL << 23)
int chat__redis_sync_seq_base(redisContext *c, uint64_t *base);

#endif /* CHAT_ENGINE_REDIS_INT_H */
