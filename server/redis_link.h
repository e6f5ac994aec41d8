/* redis_link.h -- private to the Redis engine: its state, shared by
 * engine_redis.c (the seam: batches, reads, callbacks in order) and
 * redis_link.c (the loop's connection: connect, handshake, reconnect with
 * backoff, deadlines, and driving it by hand for flush_sync). */
#ifndef CHAT_REDIS_LINK_H
#define CHAT_REDIS_LINK_H

#include <hiredis.h>
#include <async.h>
#include <uv.h>

#include "engine_mem_store.h" /* chat__mem_op_t: an op with its strings */
#include "engine_redis_int.h"

#define CHAT__REDIS_RETRY_MS 250        /* after a failed batch, as the
                                         * committer's */
#define CHAT__REDIS_CONNECT_MS 3000     /* connect + handshake */
#define CHAT__REDIS_REPLY_MS 5000       /* a batch's replies */
#define CHAT__REDIS_FLUSH_MS 10000      /* flush_sync, all of it */
#define CHAT__REDIS_RECONNECT_MIN_MS 50 /* reconnect backoff, doubling */
#define CHAT__REDIS_RECONNECT_MAX_MS 2000

typedef struct chat__redis_waiter {
  chat__engine_done_cb cb;
  void *arg;
  int after_ops; /* ops were added before it: it gets the batch's status */
} chat__redis_waiter_t;

typedef enum { CHAT__RD_USER, CHAT__RD_GROUP, CHAT__RD_HELD,
               CHAT__RD_SENT, CHAT__RD_CALL } chat__redis_rd_kind_t;

/* A script call's result (chat__redis_call): the reply's strings (an
 * array's, or the one string; nil: none), or its integer in ival. */
typedef void (*chat__redis_call_cb)(void *arg, int status, char *const *strs,
                                    size_t n, long long ival);
#define CHAT__CALL_ARGS 8

struct chat__redis_batch;

/* One read: its inputs (copied) and, once answered, its result. */
typedef struct chat__redis_rd {
  chat__redis_rd_kind_t kind;
  void (*cb)(void);
  void *arg;
  char *a, *b; /* name / rcpt / from; token hash / msg_id */
  int full;
  uint64_t after;
  uint32_t limit;
  int status;
  chat__store_user_t *user;
  chat__store_group_t *group;
  chat__stored_msg_t *msgs;
  size_t n;
  int more;
  /* CHAT__RD_CALL: */
  chat__redis_script_t script;
  char *args[CHAT__CALL_ARGS];
  size_t arglens[CHAT__CALL_ARGS];
  int nargs;
  char **vargs; /* chat__redis_callv's, owned: any number */
  int raw;      /* 1: chat__redis_cmdv's (vargs is the command itself);
                 * 2: chat__redis_cmdf's (vargs[0] holds it in RESP, vlens[0]
                 * bytes from off) */
  size_t off;
  size_t *vlens;
  int nv;
  char **strs;
  size_t nstrs;
  long long ival;
  struct chat__redis_batch *batch;
} chat__redis_rd_t;

/* Ops, waiters and reads of one loop turn; one batch is in flight at a
 * time, as with the committer, so a failed batch's ops can be added again
 * in order before anything after them is sent. */
typedef struct chat__redis_batch {
  struct chat__redis_engine *e;
  chat__mem_op_t *ops;
  size_t n, cap;
  chat__redis_waiter_t *w;
  size_t nw, wcap;
  chat__redis_rd_t **rd;
  size_t nrd, rdcap;
  int status;         /* of the ops */
  int round;          /* 1: ops and reads; 2: DEL_MSG alone after -ENOSPC */
  int del_status;     /* round 2's */
  size_t outstanding; /* replies still to come */
  int inject;         /* an injected failure (tests) */
  int down;           /* failed without being sent: Redis was down */
  int done;           /* every reply is in: the check finishes it */
} chat__redis_batch_t;

typedef enum { CHAT__LINK_DOWN, CHAT__LINK_CONNECTING,
               CHAT__LINK_READY } chat__link_state_t;

typedef struct chat__redis_engine {
  chat__engine_t base;
  uv_loop_t *loop;
  chat__redis_url_t url;
  char where[300]; /* HOST:PORT/N, for logs */
  int unsafe;
  chat__redis_sha_t shas[CHAT__SC_COUNT];
  redisContext *sync; /* start-up's blocking connection (max_seq) */
  redisAsyncContext *ac;
  chat__link_state_t state;
  size_t handshake;   /* handshake replies still to come */
  int was_ready;      /* for "lost" / "back" log lines */
  unsigned reconnect_ms;
  uv_idle_t idle;     /* with check: work at the end of this turn */
  uv_check_t check;
  uv_timer_t retry;   /* the pause after a failed batch */
  uv_timer_t reconnect;
  uv_timer_t deadline; /* connect or reply deadline */
  int handles;        /* not yet closed */
  chat__redis_batch_t b[2];
  chat__redis_batch_t *open, *flying;
  int backoff;
  int flushing, freeing;
  int fail_n, fail_err;
  chat__engine_fail_cb on_fail;
  void *on_fail_arg;
} chat__redis_engine_t;

/* redis_link.c */
void chat__redis_link_start(chat__redis_engine_t *e);
/* Drops the connection: every command in flight is answered NULL (its
 * batch fails), and a reconnect follows unless the engine is freeing. */
void chat__redis_link_kill(chat__redis_engine_t *e, const char *why);
/* Sends one command (freed here); fn may be NULL. 0 or -EIO / -ENOMEM. */
int chat__redis_link_send(chat__redis_engine_t *e, chat__rcmd_t *c,
                          redisCallbackFn *fn, void *priv);
/* Starts (on) or stops the deadline on the replies of a batch in flight. */
void chat__redis_link_expect(chat__redis_engine_t *e, int on);
/* Waits (poll, not the loop: flush_sync may run inside a loop callback)
 * for the connection to make progress, until deadline_ms (uv_now scale:
 * uv_hrtime() / 1e6). 0, or -ETIMEDOUT. */
int chat__redis_link_drive(chat__redis_engine_t *e, uint64_t deadline_ms);
void chat__redis_link_close(chat__redis_engine_t *e);

/* engine_redis.c: the check handle's work is due (arm); one of a batch's
 * replies is in (reply_done). */
void chat__redis_arm(chat__redis_engine_t *e);
void chat__redis_reply_done(chat__redis_batch_t *b);
/* *p (of *cap elements of size) grown to hold need: 0 or -ENOMEM. */
int chat__redis_grow(void **p, size_t *cap, size_t need, size_t size);

/* redis_reads.c: engine.h's reads, and what the batches do with them. */
int chat__redis_load_user(chat__engine_t *e, const char *name, int full,
                          const char *token_hash, chat__engine_user_cb cb,
                          void *arg);
int chat__redis_load_group(chat__engine_t *e, const char *name,
                           chat__engine_group_cb cb, void *arg);
int chat__redis_load_held(chat__engine_t *e, const char *rcpt, uint64_t after,
                          uint32_t limit, chat__engine_held_cb cb, void *arg);
int chat__redis_find_sent(chat__engine_t *e, const char *from,
                          const char *msg_id, chat__engine_sent_cb cb,
                          void *arg);
/* A cluster script (bus_lua.c) called with args (copied; lens NULL: C
 * strings, else their lengths), as a read: it runs behind the writes
 * added before it, and cb gets its result. 0 or -ENOMEM / -EINVAL (too
 * many args). */
int chat__redis_call(chat__engine_t *e, chat__redis_script_t script,
                     const char *const *args, const size_t *lens, int nargs,
                     chat__redis_call_cb cb, void *arg);
/* The same with any number of args: vargs (each malloc'd) and vlens
 * (malloc'd) are taken over, also on failure. */
int chat__redis_callv(chat__engine_t *e, chat__redis_script_t script,
                      char **vargs, size_t *vlens, int nv,
                      chat__redis_call_cb cb, void *arg);
/* A plain command (vargs[0] its name), as a read like a script call:
 * vargs and vlens are taken over, also on failure. cb gets its reply's
 * strings (XADD: the entry's id) or integer. */
int chat__redis_cmdv(chat__engine_t *e, char **vargs, size_t *vlens, int nv,
                     chat__redis_call_cb cb, void *arg);
/* The same with the command already in RESP: the len bytes at buf + off
 * (buf malloc'd; taken over, also on failure). A caller that builds a big
 * command in place saves hiredis formatting a second copy of it. */
int chat__redis_cmdf(chat__engine_t *e, char *buf, size_t off, size_t len,
                     chat__redis_call_cb cb, void *arg);
/* Sends one command of argc args (copied by hiredis). 0 or -EIO. */
int chat__redis_link_sendv(chat__redis_engine_t *e, int argc,
                           const char **argv, const size_t *lens,
                           redisCallbackFn *fn, void *priv);
/* Sends one command already in RESP (copied by hiredis). 0 or -EIO. */
int chat__redis_link_sendf(chat__redis_engine_t *e, const char *cmd,
                           size_t len, redisCallbackFn *fn, void *priv);
/* Sends one read's commands: 0, or a negative code (nothing awaited). */
int chat__redis_send_read(chat__redis_engine_t *e, chat__redis_rd_t *rd);
/* Its callback with its result; then it is freed. */
void chat__redis_rd_fire(chat__redis_rd_t *rd);
void chat__redis_rd_free(chat__redis_rd_t *rd);

#endif /* CHAT_REDIS_LINK_H */
