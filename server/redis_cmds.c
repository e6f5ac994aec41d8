/* redis_cmds.c -- the Redis engine's keys, its Lua scripts, and the
 * commands that apply an op or make a read (engine_redis_int.h has the key
 * scheme; docs/CLUSTER.md explains it).
 *
 * Plain commands where one command is the op (HSETNX, ZADD, ZREM, HSET,
 * DEL); a script where the op decides on what is stored (PUT_MSG keeps a
 * stored seq and a held msg_id, DEL_MSG frees the sender's msg_id, ordered
 * adds keep their place, TOUCH_TOKEN only moves forward). Scripts carry a
 * shebang so that Redis knows their flags: under maxmemory, a MULTI holding
 * a writing script is refused whole at EXEC (nothing applied: -ENOSPC),
 * while DEL_MSG's (allow-oom) still runs, so acks free memory as they free
 * disk space for the SQLite engine. */
#include "engine_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields of a record are netstrings (LEN:BYTES) after the 20-digit seq:
 * to, from, group ("" for none, else "=" NAME), msg_id, ts, offline,
 * body. The scripts read the first four. */
static const char *const script_src[CHAT__SC_COUNT] = {
    [CHAT__SC_PUT] =
        "#!lua\n"
        "local cur = redis.call('GET', KEYS[3])\n"
        "if not cur or cur < ARGV[1] then redis.call('SET', KEYS[3], ARGV[1]) "
        "end\n"
        "if redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1], '(' .. ARGV[1] "
        ".. ';', 'LIMIT', 0, 1)[1] then return 0 end\n"
        "if ARGV[3] ~= '' and redis.call('HSETNX', KEYS[2], ARGV[3], "
        "ARGV[1] .. ' ' .. ARGV[4]) == 0 then return 0 end\n"
        "redis.call('ZADD', KEYS[1], 0, ARGV[2])\n"
        "return 1\n",
    [CHAT__SC_DEL] =
        "#!lua flags=allow-oom\n"
        "local m = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1], '(' .. "
        "ARGV[1] .. ';', 'LIMIT', 0, 1)[1]\n"
        "if not m then return 0 end\n"
        "redis.call('ZREM', KEYS[1], m)\n"
        "local f, pos = {}, 21\n"
        "for i = 1, 4 do\n"
        "  local c = string.find(m, ':', pos, true)\n"
        "  local n = tonumber(string.sub(m, pos, c - 1))\n"
        "  f[i] = string.sub(m, c + 1, c + n)\n"
        "  pos = c + n + 1\n"
        "end\n"
        "if f[3] == '' then\n"
        "  local sk = '{u:' .. f[2] .. '}:sent'\n"
        "  if redis.call('HGET', sk, f[4]) == ARGV[1] .. ' ' .. f[1] then\n"
        "    redis.call('HDEL', sk, f[4])\n"
        "  end\n"
        "end\n"
        "return 1\n",
    [CHAT__SC_FIND] =
        "#!lua flags=no-writes\n"
        "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
        "if not v then return false end\n"
        "local sp = string.find(v, ' ', 1, true)\n"
        "local seq = string.sub(v, 1, sp - 1)\n"
        "return redis.call('ZRANGEBYLEX', '{u:' .. string.sub(v, sp + 1) .. "
        "'}:held', '[' .. seq, '(' .. seq .. ';', 'LIMIT', 0, 1)[1] or false\n",
    [CHAT__SC_OADD] =
        "#!lua\n"
        "if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
        "local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
        "local s = 1\n"
        "if last[2] then s = tonumber(last[2]) + 1 end\n"
        "redis.call('ZADD', KEYS[1], s, ARGV[1])\n"
        "return 1\n",
    [CHAT__SC_TOUCH] =
        "#!lua\n"
        "local u = redis.call('HGET', KEYS[1], 'used')\n"
        "if u and tonumber(u) < tonumber(ARGV[1]) then\n"
        "  redis.call('HSET', KEYS[1], 'used', ARGV[1])\n"
        "end\n"
        "return 0\n",
};

const char *chat__redis_script_src(chat__redis_script_t s) {
  return script_src[s] != NULL ? script_src[s] : chat__bus_lua[s];
}

/* ---- building commands --------------------------------------------------- */

void chat__rcmd_free(chat__rcmd_t *c) {
  for (int i = 0; i < c->nmem; i++)
    free(c->mem[i]);
  c->nmem = 0;
  c->argc = 0;
}

static void arg_n(chat__rcmd_t *c, const char *s, size_t n) {
  c->argv[c->argc] = s;
  c->len[c->argc++] = n;
}

static void arg(chat__rcmd_t *c, const char *s) { arg_n(c, s, strlen(s)); }

/* An argument the command owns (NULL: out of memory, remembered). */
static void arg_own(chat__rcmd_t *c, char *s, size_t n) {
  if (s == NULL) {
    c->oom = 1;
    arg_n(c, "", 0);
    return;
  }
  c->mem[c->nmem++] = s;
  arg_n(c, s, n);
}

static void arg_fmt(chat__rcmd_t *c, const char *fmt, const char *x,
                    const char *y) {
  size_t n = strlen(fmt) + strlen(x) + (y ? strlen(y) : 0);
  char *s = malloc(n + 1);
  int len = s ? snprintf(s, n + 1, fmt, x, y ? y : "") : 0;
  arg_own(c, s, len > 0 ? (size_t)len : 0);
}

/* The key of one of NAME's records: "{u:NAME}:what". */
static void key_user(chat__rcmd_t *c, const char *name, const char *what) {
  arg_fmt(c, "{u:%s}:%s", name, what);
}

static void arg_u64(chat__rcmd_t *c, const char *fmt, uint64_t v) {
  char *s = malloc(24);
  int len = s ? snprintf(s, 24, fmt, (unsigned long long)v) : 0;
  arg_own(c, s, len > 0 ? (size_t)len : 0);
}

static void arg_i64(chat__rcmd_t *c, int64_t v) {
  char *s = malloc(24);
  int len = s ? snprintf(s, 24, "%lld", (long long)v) : 0;
  arg_own(c, s, len > 0 ? (size_t)len : 0);
}

static void evalsha(chat__rcmd_t *c, const chat__redis_sha_t *shas,
                    chat__redis_script_t s, const char *nkeys) {
  memset(c, 0, sizeof(*c));
  arg(c, "EVALSHA");
  arg(c, shas[s]);
  arg(c, nkeys);
}

static void cmd(chat__rcmd_t *c, const char *name) {
  memset(c, 0, sizeof(*c));
  arg(c, name);
}

int chat__redis_op_cmds(const chat__store_op_t *op,
                        const chat__redis_sha_t *shas, chat__rcmd_t out[2]) {
  const chat__stored_msg_t *m = &op->msg;
  chat__rcmd_t *c = &out[0];
  size_t len;

  switch (op->kind) {
  case CHAT_STORE_ADD_USER: /* INSERT OR IGNORE: the first hash stays */
    cmd(c, "HSETNX");
    key_user(c, op->a, "user");
    arg(c, "pw");
    arg(c, op->b);
    return 1;
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT: {
    const char *verb = op->kind == CHAT_STORE_ADD_CONTACT ? "ZADD" : "ZREM";
    for (int i = 0; i < 2; i++) {
      cmd(&out[i], verb);
      key_user(&out[i], i == 0 ? op->a : op->b, "contacts");
      if (op->kind == CHAT_STORE_ADD_CONTACT)
        arg(&out[i], "0");
      arg(&out[i], i == 0 ? op->b : op->a);
    }
    return 2;
  }
  case CHAT_STORE_ADD_REQUEST: /* a = from, b = to: kept with the target */
    evalsha(c, shas, CHAT__SC_OADD, "1");
    key_user(c, op->b, "requests");
    arg(c, op->a);
    return 1;
  case CHAT_STORE_DEL_REQUEST:
    cmd(c, "ZREM");
    key_user(c, op->b, "requests");
    arg(c, op->a);
    return 1;
  case CHAT_STORE_ADD_MEMBER: /* a = group, b = user */
    evalsha(c, shas, CHAT__SC_OADD, "1");
    arg_fmt(c, "{g:%s}:members", op->a, NULL);
    arg(c, op->b);
    cmd(&out[1], "ZADD");
    key_user(&out[1], op->b, "groups");
    arg(&out[1], "0");
    arg(&out[1], op->a);
    return 2;
  case CHAT_STORE_DEL_MEMBER: /* a zset emptied is gone: so is the group */
    cmd(c, "ZREM");
    arg_fmt(c, "{g:%s}:members", op->a, NULL);
    arg(c, op->b);
    cmd(&out[1], "ZREM");
    key_user(&out[1], op->b, "groups");
    arg(&out[1], op->a);
    return 2;
  case CHAT_STORE_PUT_MSG:
    evalsha(c, shas, CHAT__SC_PUT, "3");
    key_user(c, m->to, "held");
    key_user(c, m->from, "sent");
    arg(c, "{chat}:max_seq");
    arg_u64(c, "%020llu", m->seq);
    {
      char *rec = chat__redis_msg_encode(m, &len);
      arg_own(c, rec, len);
    }
    arg(c, m->group == NULL ? m->msg_id : "");
    arg(c, m->to);
    return 1;
  case CHAT_STORE_DEL_MSG:
    evalsha(c, shas, CHAT__SC_DEL, "1");
    key_user(c, m->to, "held");
    arg_u64(c, "%020llu", m->seq);
    return 1;
  case CHAT_STORE_ADD_TOKEN: /* INSERT OR REPLACE: owner and time */
    cmd(c, "HSET");
    arg_fmt(c, "{tok:%s}", op->b, NULL);
    arg(c, "user");
    arg(c, op->a);
    arg(c, "used");
    arg_i64(c, m->ts);
    return 1;
  case CHAT_STORE_TOUCH_TOKEN:
    evalsha(c, shas, CHAT__SC_TOUCH, "1");
    arg_fmt(c, "{tok:%s}", op->b, NULL);
    arg_i64(c, m->ts);
    return 1;
  case CHAT_STORE_DEL_TOKEN:
    cmd(c, "DEL");
    arg_fmt(c, "{tok:%s}", op->b, NULL);
    return 1;
  }
  return 0;
}

/* ---- reads --------------------------------------------------------------- */

int chat__redis_user_cmds(const char *name, int full, const char *token_hash,
                          chat__rcmd_t out[CHAT__READ_CMDS]) {
  int n = 0;
  cmd(&out[n++], "MULTI");
  cmd(&out[n], "HGET");
  key_user(&out[n], name, "user");
  arg(&out[n++], "pw");
  cmd(&out[n], "ZCARD");
  key_user(&out[n++], name, "held");
  cmd(&out[n], "HLEN");
  key_user(&out[n++], name, "sent");
  if (token_hash != NULL) {
    cmd(&out[n], "HMGET");
    arg_fmt(&out[n], "{tok:%s}", token_hash, NULL);
    arg(&out[n], "user");
    arg(&out[n++], "used");
  }
  if (full) {
    static const char *const lists[] = {"contacts", "requests", "groups"};
    for (int i = 0; i < 3; i++) {
      cmd(&out[n], "ZRANGE");
      key_user(&out[n], name, lists[i]);
      arg(&out[n], "0");
      arg(&out[n++], "-1");
    }
  }
  /* cluster mode's directory: the status of its session on any node */
  cmd(&out[n], "HGET");
  key_user(&out[n], name, "at");
  arg(&out[n++], "status");
  cmd(&out[n++], "EXEC");
  return n;
}

int chat__redis_group_cmds(const char *name, chat__rcmd_t out[1]) {
  cmd(&out[0], "ZRANGE");
  arg_fmt(&out[0], "{g:%s}:members", name, NULL);
  arg(&out[0], "0");
  arg(&out[0], "-1");
  return 1;
}

int chat__redis_held_cmds(const char *rcpt, uint64_t after, uint32_t limit,
                          chat__rcmd_t out[1]) {
  chat__rcmd_t *c = &out[0];
  if (after > INT64_MAX)
    after = INT64_MAX; /* no seq is above it */
  cmd(c, "ZRANGEBYLEX");
  key_user(c, rcpt, "held");
  arg_u64(c, "[%020llu", after + 1);
  arg(c, "+");
  arg(c, "LIMIT");
  arg(c, "0");
  arg_u64(c, "%llu", (uint64_t)limit + 1); /* one more: is there more? */
  return 1;
}

int chat__redis_sent_cmds(const char *from, const char *msg_id,
                          const chat__redis_sha_t *shas, chat__rcmd_t out[1]) {
  chat__rcmd_t *c = &out[0];
  evalsha(c, shas, CHAT__SC_FIND, "1");
  key_user(c, from, "sent");
  arg(c, msg_id);
  return 1;
}

int chat__redis_call_cmds(chat__redis_script_t script,
                          const char *const *args, const size_t *lens,
                          int nargs, const chat__redis_sha_t *shas,
                          chat__rcmd_t out[1]) {
  evalsha(&out[0], shas, script, "0");
  for (int i = 0; i < nargs && out[0].argc < CHAT__RCMD_ARGS; i++)
    arg_n(&out[0], args[i], lens[i]);
  return 1;
}
