/* redis_conn.c -- the Redis engine's start-up: the URL, a blocking
 * connection that checks Redis is fit to be the store (it writes an
 * acknowledged command to disk before answering), the data model's
 * version, the scripts, and the largest seq. The loop's connection is
 * engine_redis.c's; this one is only used before the server serves. */
#include "engine_redis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CONNECT_TIMEOUT_S 3
#define COMMAND_TIMEOUT_S 10

int chat__redis_url_parse(const char *url, chat__redis_url_t *u, char *errbuf,
                          size_t errlen) {
  static const char scheme[] = "redis://";
  const char *p, *host, *hend;
  char *end;
  long v;

  memset(u, 0, sizeof(*u));
  u->port = 6379;
#define BAD(...)                                                             \
  do {                                                                       \
    if (errbuf != NULL && errlen > 0)                                        \
      snprintf(errbuf, errlen, __VA_ARGS__);                                 \
    return -EINVAL;                                                          \
  } while (0)
  if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
    BAD("'%s' is not redis://HOST:PORT[/N]", url);
  p = url + sizeof(scheme) - 1;
  if (*p == '[') { /* [v6 address] */
    host = p + 1;
    if ((hend = strchr(host, ']')) == NULL)
      BAD("'%s': no ']' after the IPv6 address", url);
    p = hend + 1;
  } else {
    host = p;
    hend = p + strcspn(p, ":/");
    p = hend;
  }
  if (hend == host || (size_t)(hend - host) >= sizeof(u->host) ||
      memchr(host, '@', (size_t)(hend - host)) != NULL)
    BAD("'%s': bad host (user names and passwords are not supported)", url);
  memcpy(u->host, host, (size_t)(hend - host));
  if (*p == ':') {
    errno = 0;
    v = strtol(p + 1, &end, 10);
    if (errno || end == p + 1 || v < 1 || v > 65535)
      BAD("'%s': bad port", url);
    u->port = (int)v;
    p = end;
  }
  if (*p == '/' && p[1] != '\0') {
    errno = 0;
    v = strtol(p + 1, &end, 10);
    if (errno || end == p + 1 || v < 0 || v > 1000000 || *end != '\0')
      BAD("'%s': bad database number", url);
    u->db = (int)v;
    p = end;
  } else if (*p == '/') {
    p++;
  }
  if (*p != '\0')
    BAD("'%s': unexpected '%s' (want redis://HOST:PORT[/N])", url, p);
#undef BAD
  return 0;
}

static int fail(char *errbuf, size_t errlen, const char *fmt, const char *a,
                const char *b) {
  if (errbuf != NULL && errlen > 0)
    snprintf(errbuf, errlen, fmt, a, b ? b : "");
  return -EIO;
}

/* The value of a CONFIG GET reply (["name", "value"]), or NULL. */
static const char *config_value(const redisReply *r) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return NULL;
  return r->element[1]->str;
}

static const struct {
  const char *name, *want, *why;
} need[CHAT__REDIS_SETTINGS] = {
    {"appendonly", "yes", "without the append-only file an acknowledged "
                          "message is lost when Redis stops"},
    {"appendfsync", "always", "Redis must write each write to disk before "
                              "it answers"},
    {"no-appendfsync-on-rewrite", "no", "Redis would skip its writes to disk "
                                        "while it rewrites the append-only "
                                        "file"},
};

const char *chat__redis_setting_name(int i) { return need[i].name; }

int chat__redis_check_setting(int i, const redisReply *r, char *errbuf,
                              size_t errlen) {
  const char *v = config_value(r);
  if (v == NULL) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen,
               "cannot read Redis setting %s (CONFIG GET refused?); "
               "--db-unsafe starts anyway",
               need[i].name);
    return -EIO;
  }
  if (strcmp(v, need[i].want) != 0) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen,
               "Redis has %s %s, which could lose acknowledged messages "
               "(%s): set %s %s, or pass --db-unsafe",
               need[i].name, v, need[i].why, need[i].name, need[i].want);
    return -EIO;
  }
  return 0;
}

static redisReply *run(redisContext *c, int argc, const char **argv) {
  return redisCommandArgv(c, argc, argv, NULL);
}

int chat__redis_sync_open(const chat__redis_url_t *u, int check, int unsafe,
                          chat__redis_sha_t *shas, redisContext **out,
                          char *errbuf, size_t errlen) {
  struct timeval ct = {CONNECT_TIMEOUT_S, 0}, rt = {COMMAND_TIMEOUT_S, 0};
  char where[300], db[16];
  redisReply *r = NULL;
  int ret = -EIO;

  *out = NULL;
  snprintf(where, sizeof(where), "%s:%d", u->host, u->port);
  redisContext *c = redisConnectWithTimeout(u->host, u->port, ct);
  if (c == NULL)
    return fail(errbuf, errlen, "cannot reach Redis at %s: out of memory",
                where, NULL);
  if (c->err) {
    fail(errbuf, errlen, "cannot reach Redis at %s: %s", where, c->errstr);
    redisFree(c);
    return -EIO;
  }
  redisSetTimeout(c, rt);
  snprintf(db, sizeof(db), "%d", u->db);
  r = run(c, 2, (const char *[]){"SELECT", db});
  if (r == NULL || r->type == REDIS_REPLY_ERROR) {
    fail(errbuf, errlen, "Redis at %s: SELECT %s failed", where, db);
    goto out;
  }
  freeReplyObject(r);
  r = NULL;
  for (int i = 0; check && !unsafe && i < CHAT__REDIS_SETTINGS; i++) {
    r = run(c, 3, (const char *[]){"CONFIG", "GET", need[i].name});
    if (c->err) {
      fail(errbuf, errlen, "Redis at %s: %s", where, c->errstr);
      goto out;
    }
    if (chat__redis_check_setting(i, r, errbuf, errlen) != 0)
      goto out;
    freeReplyObject(r);
    r = NULL;
  }
  /* The data model's version: written by the first node, checked by the
   * others, so a later model never meets data it does not understand. */
  r = run(c, 3, (const char *[]){"SETNX", "{chat}:schema",
                                 CHAT__REDIS_SCHEMA});
  freeReplyObject(r);
  r = run(c, 2, (const char *[]){"GET", "{chat}:schema"});
  if (r == NULL || r->type != REDIS_REPLY_STRING) {
    fail(errbuf, errlen, "Redis at %s: cannot read {chat}:schema (%s)", where,
         r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    goto out;
  }
  if (strcmp(r->str, CHAT__REDIS_SCHEMA) != 0) {
    fail(errbuf, errlen,
         "Redis at %s holds chat data of version %s (newer server?)", where,
         r->str);
    goto out;
  }
  freeReplyObject(r);
  r = NULL;
  for (int i = 0; i < CHAT__SC_COUNT; i++) {
    r = run(c, 3, (const char *[]){"SCRIPT", "LOAD",
                                   chat__redis_script_src(i)});
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40) {
      fail(errbuf, errlen, "Redis at %s: SCRIPT LOAD failed (%s)", where,
           r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
      goto out;
    }
    memcpy(shas[i], r->str, 41);
    freeReplyObject(r);
    r = NULL;
  }
  *out = c;
  c = NULL;
  ret = 0;
out:
  freeReplyObject(r);
  redisFree(c);
  return ret;
}

int chat__redis_sync_max_seq(redisContext *c, uint64_t *seq) {
  redisReply *r = run(c, 2, (const char *[]){"GET", "{chat}:max_seq"});
  int ret = -EIO;
  if (r != NULL && r->type == REDIS_REPLY_NIL) {
    *seq = 0;
    ret = 0;
  } else if (r != NULL && r->type == REDIS_REPLY_STRING && r->len > 0 &&
             r->len <= CHAT__REDIS_SEQ_LEN) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(r->str, &end, 10);
    if (!errno && *end == '\0') {
      *seq = v;
      ret = 0;
    }
  }
  freeReplyObject(r);
  return ret;
}

int chat__redis_sync_seq_base(redisContext *c, uint64_t *base) {
  uint64_t max = 0;
  int ret = chat__redis_sync_max_seq(c, &max);
  if (ret < 0)
    return ret;
  /* INCR is atomic: no two starts, of this node or another, get one run. */
  redisReply *r = run(c, 2, (const char *[]){"INCR", "{chat}:runs"});
  ret = -EIO;
  if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0 &&
      (uint64_t)r->integer < CHAT__REDIS_RUNS_MAX) {
    uint64_t start = (uint64_t)r->integer << CHAT__REDIS_RUN_BITS;
    /* Seqs stored before runs were counted may lie above: stay over them. */
    *base = start > max ? start : max;
    ret = 0;
  }
  freeReplyObject(r);
  return ret;
}
