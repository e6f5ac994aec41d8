/* redis_reply.c -- the Redis engine's records and replies: a held message
 * as one zset member (its 20-digit seq, then netstrings), and Redis's
 * answers turned into store.h's results. A parser here never trusts a
 * length it reads: every field is checked against what is left. */
#include "engine_redis_int.h"

#include "chat_protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ------------------------------------------------------------- */

static size_t ns_size(size_t n) {
  char d[24];
  return (size_t)snprintf(d, sizeof(d), "%zu", n) + 1 + n;
}

static char *ns_put(char *p, const char *s, size_t n) {
  p += sprintf(p, "%zu:", n);
  if (n > 0)
    memcpy(p, s, n);
  return p + n;
}

char *chat__redis_msg_encode(const chat__stored_msg_t *m, size_t *len) {
  char ts[24], grp_flag[2] = "=";
  int tsn = snprintf(ts, sizeof(ts), "%lld", (long long)m->ts);
  size_t glen = m->group != NULL ? strlen(m->group) + 1 : 0;
  size_t n = CHAT__REDIS_SEQ_LEN + ns_size(strlen(m->to)) +
             ns_size(strlen(m->from)) + ns_size(glen) +
             ns_size(strlen(m->msg_id)) + ns_size((size_t)tsn) + ns_size(1) +
             ns_size(m->body_len);
  char *s = malloc(n + 1), *p;
  if (s == NULL)
    return NULL;
  p = s + sprintf(s, "%020llu", (unsigned long long)m->seq);
  p = ns_put(p, m->to, strlen(m->to));
  p = ns_put(p, m->from, strlen(m->from));
  if (m->group != NULL) {
    p += sprintf(p, "%zu:", glen);
    memcpy(p, grp_flag, 1);
    memcpy(p + 1, m->group, glen - 1);
    p += glen;
  } else {
    p = ns_put(p, "", 0);
  }
  p = ns_put(p, m->msg_id, strlen(m->msg_id));
  p = ns_put(p, ts, (size_t)tsn);
  p = ns_put(p, m->offline ? "1" : "0", 1);
  p = ns_put(p, m->body_len > 0 ? m->body : "", m->body_len);
  *len = (size_t)(p - s);
  return s;
}

/* The next netstring at *p (before end): its bytes and length. */
static int ns_get(const char **p, const char *end, const char **s,
                  size_t *n) {
  const char *q = *p;
  size_t v = 0;
  if (q >= end || *q < '0' || *q > '9')
    return -EIO;
  while (q < end && *q >= '0' && *q <= '9') {
    if (v > (SIZE_MAX - 9) / 10)
      return -EIO;
    v = v * 10 + (size_t)(*q++ - '0');
  }
  if (q >= end || *q != ':' || (size_t)(end - q - 1) < v)
    return -EIO;
  *s = q + 1;
  *n = v;
  *p = q + 1 + v;
  return 0;
}

/* One record, decoded: fields point into the member. */
typedef struct rec {
  uint64_t seq;
  const char *f[7];
  size_t n[7];
} rec_t;

enum { F_TO, F_FROM, F_GROUP, F_MSG_ID, F_TS, F_OFFLINE, F_BODY };

static int rec_decode(const char *s, size_t len, rec_t *r) {
  const char *p = s + CHAT__REDIS_SEQ_LEN, *end = s + len;
  if (len < CHAT__REDIS_SEQ_LEN)
    return -EIO;
  r->seq = 0;
  for (int i = 0; i < CHAT__REDIS_SEQ_LEN; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EIO;
    r->seq = r->seq * 10 + (uint64_t)(s[i] - '0');
  }
  for (int i = 0; i < 7; i++)
    if (ns_get(&p, end, &r->f[i], &r->n[i]) != 0)
      return -EIO;
  if (p != end || (r->n[F_GROUP] > 0 && r->f[F_GROUP][0] != '=') ||
      r->n[F_TS] == 0 || r->n[F_TS] > 20 || r->n[F_OFFLINE] != 1)
    return -EIO;
  return 0;
}

static size_t rec_size(const rec_t *r) {
  /* to, from, group (without its '='), msg_id, each NUL-terminated, and
   * the body */
  return r->n[F_TO] + 1 + r->n[F_FROM] + 1 + r->n[F_GROUP] +
         r->n[F_MSG_ID] + 1 + r->n[F_BODY];
}

static const char *put_str(char **p, const char *s, size_t n) {
  char *d = *p;
  memcpy(d, s, n);
  d[n] = '\0';
  *p += n + 1;
  return d;
}

/* Fills m from r with its strings copied at *p. */
static void rec_unpack(const rec_t *r, chat__stored_msg_t *m, char **p) {
  char ts[24];
  memcpy(ts, r->f[F_TS], r->n[F_TS]);
  ts[r->n[F_TS]] = '\0';
  m->seq = r->seq;
  m->to = put_str(p, r->f[F_TO], r->n[F_TO]);
  m->from = put_str(p, r->f[F_FROM], r->n[F_FROM]);
  m->group = r->n[F_GROUP] > 0
                 ? put_str(p, r->f[F_GROUP] + 1, r->n[F_GROUP] - 1)
                 : NULL;
  m->msg_id = put_str(p, r->f[F_MSG_ID], r->n[F_MSG_ID]);
  m->ts = strtoll(ts, NULL, 10);
  m->offline = r->f[F_OFFLINE][0] == '1';
  m->body = *p; /* never NULL, even when empty */
  if (r->n[F_BODY] > 0)
    memcpy(*p, r->f[F_BODY], r->n[F_BODY]);
  m->body_len = r->n[F_BODY];
  *p += r->n[F_BODY];
}

/* ---- replies ------------------------------------------------------------- */

static int is_array(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_ARRAY;
}

/* Messages from members[0..n) into one allocation (structs, then their
 * strings and bodies), as chat__store_get_held hands them out. */
static int msgs_from(redisReply *const *el, size_t n,
                     chat__stored_msg_t **out) {
  size_t size = (n ? n : 1) * sizeof(chat__stored_msg_t);
  rec_t *recs = calloc(n ? n : 1, sizeof(*recs));
  if (recs == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (el[i]->type != REDIS_REPLY_STRING ||
        rec_decode(el[i]->str, el[i]->len, &recs[i]) != 0) {
      free(recs);
      return -EIO;
    }
    size += rec_size(&recs[i]);
  }
  chat__stored_msg_t *v = malloc(size);
  if (v == NULL) {
    free(recs);
    return -ENOMEM;
  }
  char *p = (char *)(v + (n ? n : 1));
  for (size_t i = 0; i < n; i++)
    rec_unpack(&recs[i], &v[i], &p);
  free(recs);
  *out = v;
  return 0;
}

int chat__redis_held_parse(const redisReply *r, uint32_t limit,
                           chat__stored_msg_t **out, size_t *n, int *more) {
  *out = NULL;
  *n = 0;
  *more = 0;
  if (!is_array(r))
    return -EIO;
  size_t k = r->elements > limit ? limit : r->elements;
  int e = msgs_from(r->element, k, out);
  if (e == 0) {
    *n = k;
    *more = r->elements > limit;
  }
  return e;
}

int chat__redis_sent_parse(const redisReply *r, chat__stored_msg_t **out) {
  *out = NULL;
  if (r == NULL || r->type == REDIS_REPLY_ERROR)
    return -EIO;
  if (r->type == REDIS_REPLY_NIL)
    return 0;
  redisReply *const one[1] = {(redisReply *)r};
  return msgs_from(one, 1, out);
}

/* Strings of an array reply into a fresh vector. */
static int strs_from(const redisReply *r, char ***out, uint32_t *n) {
  if (!is_array(r) || r->elements > UINT32_MAX)
    return -EIO;
  char **v = calloc(r->elements ? r->elements : 1, sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *x = r->element[i];
    if (x->type != REDIS_REPLY_STRING || memchr(x->str, 0, x->len) != NULL) {
      *out = v;
      *n = (uint32_t)i;
      return -EIO;
    }
    if ((v[i] = strndup(x->str, x->len)) == NULL) {
      *out = v;
      *n = (uint32_t)i;
      return -ENOMEM;
    }
  }
  *out = v;
  *n = (uint32_t)r->elements;
  return 0;
}

static uint32_t count_of(const redisReply *r, int *bad) {
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
    *bad = 1;
    return 0;
  }
  return r->integer > UINT32_MAX ? UINT32_MAX : (uint32_t)r->integer;
}

int chat__redis_user_parse(const redisReply *r, const char *name, int full,
                           const char *token_hash, chat__store_user_t **out) {
  size_t want = 4 + (token_hash != NULL) + (full ? 3 : 0), i = 3;
  int bad = 0, e = 0;
  *out = NULL;
  if (!is_array(r) || r->elements != want)
    return -EIO;
  chat__store_user_t *u = calloc(1, sizeof(*u));
  if (u == NULL)
    return -ENOMEM;
  u->token_used = -1;
  const redisReply *pw = r->element[0];
  if (pw->type == REDIS_REPLY_NIL) {
    *out = u; /* no such user: nothing else is set */
    return 0;
  }
  if (pw->type != REDIS_REPLY_STRING) {
    free(u);
    return -EIO;
  }
  u->exists = 1;
  u->held = count_of(r->element[1], &bad);
  u->sent_held = count_of(r->element[2], &bad);
  if ((u->pwhash = strndup(pw->str, pw->len)) == NULL)
    e = -ENOMEM;
  if (token_hash != NULL) {
    const redisReply *t = r->element[i++];
    if (!is_array(t) || t->elements != 2) {
      bad = 1;
    } else if (t->element[0]->type == REDIS_REPLY_STRING &&
               t->element[1]->type == REDIS_REPLY_STRING &&
               strlen(name) == t->element[0]->len &&
               memcmp(name, t->element[0]->str, t->element[0]->len) == 0) {
      long long used = strtoll(t->element[1]->str, NULL, 10);
      u->token_used = used < 0 ? -1 : used;
    }
  }
  if (full && e == 0 && !bad) {
    e = strs_from(r->element[i], &u->contacts, &u->ncontacts);
    if (e == 0)
      e = strs_from(r->element[i + 1], &u->requests, &u->nrequests);
    if (e == 0)
      e = strs_from(r->element[i + 2], &u->groups, &u->ngroups);
  }
  const redisReply *at = r->element[want - 1];
  if (at->type == REDIS_REPLY_STRING) {
    char st[16];
    snprintf(st, sizeof(st), "%.*s", (int)at->len, at->str);
    u->status = (uint8_t)chat_status_from_name(st);
  }
  if (e == 0 && bad)
    e = -EIO;
  if (e != 0) {
    chat__store_user_free(u);
    return e;
  }
  *out = u;
  return 0;
}

int chat__redis_group_parse(const redisReply *r, chat__store_group_t **out) {
  chat__store_group_t *g = calloc(1, sizeof(*g));
  *out = NULL;
  if (g == NULL)
    return -ENOMEM;
  int e = strs_from(r, &g->members, &g->nmembers);
  if (e != 0) {
    chat__store_group_free(g);
    return e;
  }
  g->exists = g->nmembers > 0; /* a group exists through its members */
  *out = g;
  return 0;
}

/* Redis's error text to a code: out of memory (maxmemory) is the
 * store being full. */
static int err_code(const char *s) {
  return strstr(s, "OOM") != NULL ? -ENOSPC : -EIO;
}

int chat__redis_exec_status(const redisReply *r, char *errbuf, size_t errlen) {
  const char *text = NULL;
  int e = 0;
  if (r == NULL) {
    text = "connection lost";
    e = -EIO;
  } else if (r->type == REDIS_REPLY_ERROR) {
    text = r->str;
    e = err_code(r->str);
  } else if (r->type == REDIS_REPLY_NIL) {
    text = "transaction aborted";
    e = -EIO;
  } else if (r->type != REDIS_REPLY_ARRAY) {
    text = "unexpected reply to EXEC";
    e = -EIO;
  } else {
    for (size_t i = 0; i < r->elements; i++)
      if (r->element[i]->type == REDIS_REPLY_ERROR) {
        text = r->element[i]->str;
        e = err_code(text);
        break;
      }
  }
  if (e != 0 && errbuf != NULL && errlen > 0)
    snprintf(errbuf, errlen, "%s", text);
  return e;
}
