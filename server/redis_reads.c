/* redis_reads.c -- the Redis engine's reads (engine.h's load_user,
 * load_group, load_held, find_sent): each is queued in the open batch,
 * sent behind its ops (redis_cmds.c builds the commands), decoded when its
 * reply comes (redis_reply.c), and handed to its callback by
 * engine_redis.c once its whole batch is in. */
#include "redis_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"

#define RE(x) ((chat__redis_engine_t *)(void *)(x))

static void rd_clear(chat__redis_rd_t *rd) {
  chat__store_user_free(rd->user);
  chat__store_group_free(rd->group);
  free(rd->msgs);
  for (size_t i = 0; i < rd->nstrs; i++)
    free(rd->strs[i]);
  free(rd->strs);
  rd->strs = NULL;
  rd->nstrs = 0;
  rd->ival = 0;
  rd->user = NULL;
  rd->group = NULL;
  rd->msgs = NULL;
  rd->n = 0;
  rd->more = 0;
}

void chat__redis_rd_free(chat__redis_rd_t *rd) {
  rd_clear(rd);
  for (int i = 0; i < rd->nargs; i++)
    free(rd->args[i]);
  for (int i = 0; i < rd->nv; i++)
    free(rd->vargs[i]);
  free(rd->vargs);
  free(rd->vlens);
  free(rd->a);
  free(rd->b);
  free(rd);
}

void chat__redis_rd_fire(chat__redis_rd_t *rd) {
  int ok = rd->status == 0;
  switch (rd->kind) {
  case CHAT__RD_USER:
    ((chat__engine_user_cb)rd->cb)(rd->arg, rd->status, ok ? rd->user : NULL);
    break;
  case CHAT__RD_GROUP:
    ((chat__engine_group_cb)rd->cb)(rd->arg, rd->status, ok ? rd->group : NULL);
    break;
  case CHAT__RD_HELD:
    ((chat__engine_held_cb)rd->cb)(rd->arg, rd->status, ok ? rd->msgs : NULL,
                                   ok ? rd->n : 0, ok ? rd->more : 0);
    break;
  case CHAT__RD_SENT:
    ((chat__engine_sent_cb)rd->cb)(rd->arg, rd->status, ok ? rd->msgs : NULL);
    break;
  case CHAT__RD_CALL:
    ((chat__redis_call_cb)rd->cb)(rd->arg, rd->status, ok ? rd->strs : NULL,
                                  ok ? rd->nstrs : 0, ok ? rd->ival : 0);
    break;
  }
}

/* A script's reply as strings (bulk strings, integers as text) or an
 * integer. */
static int call_parse(chat__redis_rd_t *rd, const redisReply *r) {
  const redisReply *const *el = &r;
  size_t n = 1;
  if (r->type == REDIS_REPLY_NIL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER) {
    rd->ival = r->integer;
    return 0;
  }
  if (r->type == REDIS_REPLY_ARRAY) {
    el = (const redisReply *const *)r->element;
    n = r->elements;
  }
  if (n > 0 && (rd->strs = calloc(n, sizeof(*rd->strs))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const redisReply *e = el[i];
    char num[24];
    const char *s = "";
    size_t len = 0;
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
      s = e->str;
      len = e->len;
    } else if (e->type == REDIS_REPLY_INTEGER) {
      len = (size_t)snprintf(num, sizeof(num), "%lld", e->integer);
      s = num;
    } else if (e->type != REDIS_REPLY_NIL) {
      return -EIO;
    }
    if ((rd->strs[i] = malloc(len + 1)) == NULL)
      return -ENOMEM;
    memcpy(rd->strs[i], s, len);
    rd->strs[i][len] = '\0';
    rd->nstrs = i + 1;
  }
  return 0;
}

static void on_read(redisAsyncContext *ac, void *reply, void *priv) {
  chat__redis_rd_t *rd = priv;
  const redisReply *r = reply;
  (void)ac;
  rd_clear(rd);
  if (r == NULL) {
    rd->status = -EIO;
  } else if (r->type == REDIS_REPLY_ERROR) {
    CHAT_WARN("Redis read failed: %s", r->str);
    rd->status = -EIO;
  } else {
    switch (rd->kind) {
    case CHAT__RD_USER:
      rd->status =
          chat__redis_user_parse(r, rd->a, rd->full, rd->b, &rd->user);
      break;
    case CHAT__RD_GROUP:
      rd->status = chat__redis_group_parse(r, &rd->group);
      break;
    case CHAT__RD_HELD:
      rd->status =
          chat__redis_held_parse(r, rd->limit, &rd->msgs, &rd->n, &rd->more);
      break;
    case CHAT__RD_SENT:
      rd->status = chat__redis_sent_parse(r, &rd->msgs);
      break;
    case CHAT__RD_CALL:
      rd->status = call_parse(rd, r);
      break;
    }
  }
  chat__redis_reply_done(rd->batch);
}

/* EVALSHA sha 0 vargs... of a chat__redis_callv; vargs as they are of a
 * chat__redis_cmdv. */
static int send_callv(chat__redis_engine_t *e, chat__redis_rd_t *rd) {
  if (rd->raw == 2)
    return chat__redis_link_sendf(e, rd->vargs[0] + rd->off, rd->vlens[0],
                                  on_read, rd);
  if (rd->raw)
    return chat__redis_link_sendv(e, rd->nv, (const char **)rd->vargs,
                                  rd->vlens, on_read, rd);
  const char **argv = malloc((size_t)(rd->nv + 3) * sizeof(*argv));
  size_t *len = malloc((size_t)(rd->nv + 3) * sizeof(*len));
  int r = -ENOMEM;
  if (argv != NULL && len != NULL) {
    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = e->shas[rd->script];
    len[1] = strlen(argv[1]);
    argv[2] = "0";
    len[2] = 1;
    for (int i = 0; i < rd->nv; i++) {
      argv[i + 3] = rd->vargs[i];
      len[i + 3] = rd->vlens[i];
    }
    r = chat__redis_link_sendv(e, rd->nv + 3, argv, len, on_read, rd);
  }
  free(argv);
  free(len);
  return r;
}

/* Sends one read's commands, its reply-bearing one last. */
int chat__redis_send_read(chat__redis_engine_t *e, chat__redis_rd_t *rd) {
  chat__rcmd_t c[CHAT__READ_CMDS];
  int n = 0, r = 0;
  switch (rd->kind) {
  case CHAT__RD_USER:
    n = chat__redis_user_cmds(rd->a, rd->full, rd->b, c);
    break;
  case CHAT__RD_GROUP:
    n = chat__redis_group_cmds(rd->a, c);
    break;
  case CHAT__RD_HELD:
    n = chat__redis_held_cmds(rd->a, rd->after, rd->limit, c);
    break;
  case CHAT__RD_SENT:
    n = chat__redis_sent_cmds(rd->a, rd->b, e->shas, c);
    break;
  case CHAT__RD_CALL:
    if (rd->vargs != NULL)
      return send_callv(e, rd);
    n = chat__redis_call_cmds(rd->script, (const char *const *)rd->args,
                              rd->arglens, rd->nargs, e->shas, c);
    break;
  }
  for (int i = 0; i < n; i++) {
    if (r < 0)
      chat__rcmd_free(&c[i]);
    else
      r = chat__redis_link_send(e, &c[i], i == n - 1 ? on_read : NULL, rd);
  }
  return r;
}

static int queue_read(chat__engine_t *ce, chat__redis_rd_kind_t kind,
                      const char *a, const char *b, void (*cb)(void), void *arg,
                      chat__redis_rd_t **out) {
  chat__redis_engine_t *e = RE(ce);
  chat__redis_batch_t *bt = e->open;
  chat__redis_rd_t *rd = calloc(1, sizeof(*rd));
  if (rd == NULL || (rd->a = strdup(a)) == NULL ||
      (b != NULL && (rd->b = strdup(b)) == NULL) ||
      chat__redis_grow((void **)&bt->rd, &bt->rdcap, bt->nrd + 1,
                       sizeof(*bt->rd)) != 0) {
    if (rd != NULL)
      chat__redis_rd_free(rd);
    return -ENOMEM;
  }
  rd->kind = kind;
  rd->cb = cb;
  rd->arg = arg;
  rd->batch = bt;
  bt->rd[bt->nrd++] = rd;
  if (out != NULL)
    *out = rd;
  chat__redis_arm(e);
  return 0;
}

int chat__redis_load_user(chat__engine_t *ce, const char *name, int full,
                          const char *token_hash, chat__engine_user_cb cb,
                          void *arg) {
  chat__redis_rd_t *rd;
  int r = queue_read(ce, CHAT__RD_USER, name, token_hash, (void (*)(void))cb,
                     arg, &rd);
  if (r == 0)
    rd->full = full;
  return r;
}

int chat__redis_load_group(chat__engine_t *ce, const char *name,
                           chat__engine_group_cb cb, void *arg) {
  return queue_read(ce, CHAT__RD_GROUP, name, NULL, (void (*)(void))cb, arg,
                    NULL);
}

int chat__redis_load_held(chat__engine_t *ce, const char *rcpt, uint64_t after,
                          uint32_t limit, chat__engine_held_cb cb, void *arg) {
  chat__redis_rd_t *rd;
  int r = queue_read(ce, CHAT__RD_HELD, rcpt, NULL, (void (*)(void))cb, arg,
                     &rd);
  if (r == 0) {
    rd->after = after;
    /* as chat__store_get_held: 1 to CHAT_STORE_PAGE_MAX */
    rd->limit = limit == 0                     ? 1
                : limit > CHAT_STORE_PAGE_MAX ? CHAT_STORE_PAGE_MAX
                                               : limit;
  }
  return r;
}

int chat__redis_find_sent(chat__engine_t *ce, const char *from,
                          const char *msg_id, chat__engine_sent_cb cb,
                          void *arg) {
  return queue_read(ce, CHAT__RD_SENT, from, msg_id, (void (*)(void))cb, arg,
                    NULL);
}

int chat__redis_call(chat__engine_t *ce, chat__redis_script_t script,
                     const char *const *args, const size_t *lens, int nargs,
                     chat__redis_call_cb cb, void *arg) {
  chat__redis_rd_t *rd;
  char *copy[CHAT__CALL_ARGS];
  size_t len[CHAT__CALL_ARGS];
  int i, r = 0;
  if (nargs > CHAT__CALL_ARGS)
    return -EINVAL;
  for (i = 0; i < nargs && r == 0; i++) {
    const char *a = args[i] ? args[i] : "";
    len[i] = lens != NULL ? lens[i] : strlen(a);
    if ((copy[i] = malloc(len[i] + 1)) == NULL) {
      r = -ENOMEM;
      break;
    }
    memcpy(copy[i], a, len[i]);
    copy[i][len[i]] = '\0';
  }
  if (r == 0)
    r = queue_read(ce, CHAT__RD_CALL, "", NULL, (void (*)(void))cb, arg, &rd);
  if (r < 0) {
    while (i-- > 0)
      free(copy[i]);
    return r;
  }
  rd->script = script;
  memcpy(rd->args, copy, (size_t)nargs * sizeof(*copy));
  memcpy(rd->arglens, len, (size_t)nargs * sizeof(*len));
  rd->nargs = nargs;
  return 0;
}

static int queue_v(chat__engine_t *ce, chat__redis_script_t script, int raw,
                   size_t off, char **vargs, size_t *vlens, int nv,
                   chat__redis_call_cb cb, void *arg) {
  chat__redis_rd_t *rd;
  int r = queue_read(ce, CHAT__RD_CALL, "", NULL, (void (*)(void))cb, arg, &rd);
  if (r < 0) {
    for (int i = 0; i < nv; i++)
      free(vargs[i]);
    free(vargs);
    free(vlens);
    return r;
  }
  rd->script = script;
  rd->raw = raw;
  rd->off = off;
  rd->vargs = vargs;
  rd->vlens = vlens;
  rd->nv = nv;
  return 0;
}

int chat__redis_callv(chat__engine_t *ce, chat__redis_script_t script,
                      char **vargs, size_t *vlens, int nv,
                      chat__redis_call_cb cb, void *arg) {
  return queue_v(ce, script, 0, 0, vargs, vlens, nv, cb, arg);
}

int chat__redis_cmdv(chat__engine_t *ce, char **vargs, size_t *vlens, int nv,
                     chat__redis_call_cb cb, void *arg) {
  return queue_v(ce, CHAT__SC_COUNT, 1, 0, vargs, vlens, nv, cb, arg);
}

int chat__redis_cmdf(chat__engine_t *ce, char *buf, size_t off, size_t len,
                     chat__redis_call_cb cb, void *arg) {
  char **v = malloc(sizeof(*v));
  size_t *l = malloc(sizeof(*l));
  if (v == NULL || l == NULL) {
    free(v);
    free(l);
    free(buf);
    return -ENOMEM;
  }
  v[0] = buf;
  l[0] = len;
  return queue_v(ce, CHAT__SC_COUNT, 2, off, v, l, 1, cb, arg);
}
