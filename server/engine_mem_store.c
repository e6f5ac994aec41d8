/* engine_mem_store.c -- the tables behind the in-memory engine
 * (engine_mem_store.h): plain arrays scanned in O(n), with the semantics of
 * store_sqlite.c's SQL, which is the reference. */
#include "engine_mem_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A table row: users (name, pwhash, held), contacts (a < b), requests (src,
 * dst), members (grp, member), tokens (hash, user, used). Rows of requests
 * and members stay in the order added, as SQLite's ORDER BY id does. */
typedef struct row {
  char *a, *b;
  int64_t n;
} row_t;

typedef struct table {
  row_t *v;
  size_t len, cap;
} table_t;

struct chat__memstore {
  table_t users, contacts, requests, members, tokens;
  chat__mem_op_t *msgs; /* PUT_MSG ops, by seq */
  size_t nmsgs, capmsgs;
  uint64_t max_seq;
};

/* ---- tables ------------------------------------------------------------- */

static row_t *find_row(const table_t *t, const char *a, const char *b) {
  for (size_t i = 0; i < t->len; i++)
    if (strcmp(t->v[i].a, a) == 0 && (b == NULL || strcmp(t->v[i].b, b) == 0))
      return &t->v[i];
  return NULL;
}

static int reserve(void **v, size_t *cap, size_t len, size_t more,
                   size_t size) {
  size_t need = len + more, ncap = *cap ? *cap : 8;
  if (need <= *cap)
    return 0;
  while (ncap < need)
    ncap *= 2;
  void *nv = realloc(*v, ncap * size);
  if (nv == NULL)
    return -ENOMEM;
  *v = nv;
  *cap = ncap;
  return 0;
}

/* Takes both strings (INSERT OR IGNORE: the caller checked first). */
static void insert_row(table_t *t, char **a, char **b, int64_t n) {
  row_t *r = &t->v[t->len++];
  r->a = *a;
  r->b = *b;
  r->n = n;
  *a = *b = NULL;
}

static void delete_row(table_t *t, row_t *r) {
  free(r->a);
  free(r->b);
  memmove(r, r + 1, (size_t)(t->v + t->len - (r + 1)) * sizeof(*r));
  t->len--;
}

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->len; i++) {
    free(t->v[i].a);
    free(t->v[i].b);
  }
  free(t->v);
}

void chat__mem_op_free(chat__mem_op_t *o) {
  free(o->a);
  free(o->b);
  free(o->to);
  free(o->from);
  free(o->group);
  free(o->msg_id);
  free(o->body);
}

static char *dup_or_null(const char *s, int *bad) {
  char *d = s != NULL ? strdup(s) : NULL;
  if (s != NULL && d == NULL)
    *bad = 1;
  return d;
}

int chat__mem_op_copy(chat__mem_op_t *o, const chat__store_op_t *op) {
  const chat__stored_msg_t *m = &op->msg;
  int bad = 0;
  memset(o, 0, sizeof(*o));
  o->op = *op;
  o->a = dup_or_null(op->a, &bad);
  o->b = dup_or_null(op->b, &bad);
  o->to = dup_or_null(m->to, &bad);
  o->from = dup_or_null(m->from, &bad);
  o->group = dup_or_null(m->group, &bad);
  o->msg_id = dup_or_null(m->msg_id, &bad);
  /* Never NULL, so an empty body reads back as "" (as SQLite's does). */
  if ((o->body = malloc(m->body_len + 1)) == NULL)
    bad = 1;
  else if (m->body_len > 0)
    memcpy(o->body, m->body, m->body_len);
  o->op.a = o->a;
  o->op.b = o->b;
  o->op.msg.to = o->to;
  o->op.msg.from = o->from;
  o->op.msg.group = o->group;
  o->op.msg.msg_id = o->msg_id;
  o->op.msg.body = o->body;
  if (bad) {
    chat__mem_op_free(o);
    return -ENOMEM;
  }
  return 0;
}

/* ---- applying a batch --------------------------------------------------- */

static table_t *table_of(chat__memstore_t *s, chat__store_op_kind_t k) {
  switch (k) {
  case CHAT_STORE_ADD_USER:
    return &s->users;
  case CHAT_STORE_ADD_CONTACT:
    return &s->contacts;
  case CHAT_STORE_ADD_REQUEST:
    return &s->requests;
  case CHAT_STORE_ADD_MEMBER:
    return &s->members;
  case CHAT_STORE_ADD_TOKEN:
    return &s->tokens;
  default:
    return NULL; /* deletes and touches never grow a table */
  }
}

/* Room for every insert in the batch, so applying it cannot fail halfway. */
static int reserve_batch(chat__memstore_t *s, chat__mem_op_t **ops, size_t n) {
  size_t grow[CHAT_STORE_DEL_TOKEN + 1] = {0};
  for (size_t i = 0; i < n; i++)
    grow[ops[i]->op.kind]++;
  for (int k = 0; k <= CHAT_STORE_DEL_TOKEN; k++) {
    table_t *t = table_of(s, (chat__store_op_kind_t)k);
    if (t != NULL && reserve((void **)&t->v, &t->cap, t->len, grow[k],
                             sizeof(row_t)) != 0)
      return -ENOMEM;
  }
  return reserve((void **)&s->msgs, &s->capmsgs, s->nmsgs,
                 grow[CHAT_STORE_PUT_MSG], sizeof(chat__mem_op_t));
}

static size_t msg_pos(const chat__memstore_t *s, uint64_t seq) {
  size_t i = 0;
  while (i < s->nmsgs && s->msgs[i].op.msg.seq < seq)
    i++;
  return i;
}

static void put_msg(chat__memstore_t *s, chat__mem_op_t *o) {
  uint64_t seq = o->op.msg.seq;
  size_t i = msg_pos(s, seq);
  if (seq > s->max_seq)
    s->max_seq = seq; /* meta.max_seq moves even for a kept message */
  if (i < s->nmsgs && s->msgs[i].op.msg.seq == seq)
    return; /* INSERT OR IGNORE keeps the stored one */
  if (o->op.msg.group == NULL) /* the unique index messages_sent */
    for (size_t k = 0; k < s->nmsgs; k++) {
      const chat__stored_msg_t *m = &s->msgs[k].op.msg;
      if (m->group == NULL && strcmp(m->from, o->op.msg.from) == 0 &&
          strcmp(m->msg_id, o->op.msg.msg_id) == 0)
        return;
    }
  memmove(&s->msgs[i + 1], &s->msgs[i],
          (s->nmsgs - i) * sizeof(*s->msgs));
  s->msgs[i] = *o;
  s->nmsgs++;
  memset(o, 0, sizeof(*o)); /* the strings moved */
}

static void del_msg(chat__memstore_t *s, const chat__stored_msg_t *m) {
  size_t i = msg_pos(s, m->seq);
  if (i == s->nmsgs || s->msgs[i].op.msg.seq != m->seq ||
      strcmp(s->msgs[i].op.msg.to, m->to) != 0)
    return;
  chat__mem_op_free(&s->msgs[i]);
  memmove(&s->msgs[i], &s->msgs[i + 1],
          (s->nmsgs - i - 1) * sizeof(*s->msgs));
  s->nmsgs--;
}

static void apply_op(chat__memstore_t *s, chat__mem_op_t *o) {
  chat__store_op_kind_t k = o->op.kind;
  row_t *r;

  switch (k) {
  case CHAT_STORE_ADD_USER:
    if (find_row(&s->users, o->a, NULL) == NULL)
      insert_row(&s->users, &o->a, &o->b, 0);
    break;
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT: {
    /* an unordered pair, kept once with a < b */
    char **x = &o->a, **y = &o->b;
    if (strcmp(o->a, o->b) > 0) {
      x = &o->b;
      y = &o->a;
    }
    r = find_row(&s->contacts, *x, *y);
    if (k == CHAT_STORE_ADD_CONTACT && r == NULL)
      insert_row(&s->contacts, x, y, 0);
    else if (k == CHAT_STORE_DEL_CONTACT && r != NULL)
      delete_row(&s->contacts, r);
    break;
  }
  case CHAT_STORE_ADD_REQUEST:
  case CHAT_STORE_ADD_MEMBER:
    r = find_row(table_of(s, k), o->a, o->b);
    if (r == NULL)
      insert_row(table_of(s, k), &o->a, &o->b, 0);
    break;
  case CHAT_STORE_DEL_REQUEST:
  case CHAT_STORE_DEL_MEMBER: {
    table_t *t = k == CHAT_STORE_DEL_REQUEST ? &s->requests : &s->members;
    if ((r = find_row(t, o->a, o->b)) != NULL)
      delete_row(t, r); /* the last member gone ends the group */
    break;
  }
  case CHAT_STORE_PUT_MSG:
    put_msg(s, o);
    break;
  case CHAT_STORE_DEL_MSG:
    del_msg(s, &o->op.msg);
    break;
  case CHAT_STORE_ADD_TOKEN: /* INSERT OR REPLACE: a new owner and time */
    if ((r = find_row(&s->tokens, o->b, NULL)) != NULL)
      delete_row(&s->tokens, r);
    insert_row(&s->tokens, &o->b, &o->a, o->op.msg.ts);
    break;
  case CHAT_STORE_TOUCH_TOKEN:
    if ((r = find_row(&s->tokens, o->b, NULL)) != NULL &&
        o->op.msg.ts > r->n)
      r->n = o->op.msg.ts;
    break;
  case CHAT_STORE_DEL_TOKEN:
    if ((r = find_row(&s->tokens, o->b, NULL)) != NULL)
      delete_row(&s->tokens, r);
    break;
  }
}

int chat__memstore_apply(chat__memstore_t *s, chat__mem_op_t **ops, size_t n,
                         int fail_err, size_t *nfail) {
  int err = fail_err;
  *nfail = n;
  if (n == 0)
    return 0;
  if (err == 0 && (err = reserve_batch(s, ops, n)) == 0) {
    for (size_t i = 0; i < n; i++)
      apply_op(s, ops[i]);
    *nfail = 0;
    return 0;
  }
  if (err == -ENOSPC) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (ops[i]->op.kind == CHAT_STORE_DEL_MSG)
        del_msg(s, &ops[i]->op.msg);
      else
        ops[k++] = ops[i];
    }
    *nfail = k;
  }
  return err;
}

int chat__memstore_new(chat__memstore_t **out) {
  *out = calloc(1, sizeof(**out));
  return *out != NULL ? 0 : -ENOMEM;
}

void chat__memstore_free(chat__memstore_t *s) {
  if (s == NULL)
    return;
  table_free(&s->users);
  table_free(&s->contacts);
  table_free(&s->requests);
  table_free(&s->members);
  table_free(&s->tokens);
  for (size_t i = 0; i < s->nmsgs; i++)
    chat__mem_op_free(&s->msgs[i]);
  free(s->msgs);
  free(s);
}

uint64_t chat__memstore_max_seq(const chat__memstore_t *s) {
  return s->max_seq;
}

/* ---- reads ----------------------------------------------------------------
 */

/* One string of every row whose column col (0: a, 1: b) is key: the other
 * column when other, else the matching one, into a fresh vector. */
static int collect(const table_t *t, int col, const char *key, int other,
                   char ***out, uint32_t *n) {
  char **v = calloc(t->len ? t->len : 1, sizeof(*v));
  uint32_t k = 0;
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < t->len; i++) {
    const row_t *r = &t->v[i];
    const char *match = col == 0 ? r->a : r->b;
    const char *take = other ? (col == 0 ? r->b : r->a) : match;
    if (strcmp(match, key) != 0)
      continue;
    if ((v[k] = strdup(take)) == NULL) {
      while (k > 0)
        free(v[--k]);
      free(v);
      return -ENOMEM;
    }
    k++;
  }
  *out = v;
  *n = k;
  return 0;
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Contacts: b where a = name and a where b = name, by name (ORDER BY 1 in
 * BINARY collation, which strcmp matches). */
static int get_contacts(const chat__memstore_t *s, const char *name,
                        chat__store_user_t *u) {
  char **c2;
  uint32_t n2;
  if (collect(&s->contacts, 0, name, 1, &u->contacts, &u->ncontacts) != 0 ||
      collect(&s->contacts, 1, name, 1, &c2, &n2) != 0)
    return -ENOMEM;
  char **c = realloc(u->contacts, ((size_t)u->ncontacts + n2 + 1) *
                                      sizeof(*c));
  if (c == NULL) {
    for (uint32_t i = 0; i < n2; i++)
      free(c2[i]);
    free(c2);
    return -ENOMEM;
  }
  memcpy(c + u->ncontacts, c2, n2 * sizeof(*c));
  free(c2);
  u->contacts = c;
  u->ncontacts += n2;
  qsort(c, u->ncontacts, sizeof(*c), cmp_str);
  return 0;
}

static int fill_user(const chat__memstore_t *s, const char *name, int full,
                     const char *token_hash, chat__store_user_t *u) {
  const row_t *r = find_row(&s->users, name, NULL);
  u->token_used = -1;
  if (r == NULL)
    return 0;
  u->exists = 1;
  if ((u->pwhash = strdup(r->b)) == NULL)
    return -ENOMEM;
  /* Both counted over the messages, as the SQL counts over its indexes. */
  for (size_t i = 0; i < s->nmsgs; i++) {
    const chat__stored_msg_t *m = &s->msgs[i].op.msg;
    if (strcmp(m->to, name) == 0 && u->held < UINT32_MAX)
      u->held++;
    if (m->group == NULL && strcmp(m->from, name) == 0 &&
        u->sent_held < UINT32_MAX)
      u->sent_held++;
  }
  if (token_hash != NULL) {
    const row_t *t = find_row(&s->tokens, token_hash, name);
    if (t != NULL)
      u->token_used = t->n < 0 ? -1 : t->n;
  }
  if (!full)
    return 0;
  if (get_contacts(s, name, u) != 0 ||
      collect(&s->requests, 1, name, 1, &u->requests, &u->nrequests) != 0 ||
      collect(&s->members, 1, name, 1, &u->groups, &u->ngroups) != 0)
    return -ENOMEM;
  qsort(u->groups, u->ngroups, sizeof(*u->groups), cmp_str);
  return 0;
}

int chat__memstore_get_user(const chat__memstore_t *s, const char *name,
                            int full, const char *token_hash,
                            chat__store_user_t **out) {
  chat__store_user_t *u = calloc(1, sizeof(*u));
  int r = u != NULL ? fill_user(s, name, full, token_hash, u) : -ENOMEM;
  *out = NULL;
  if (r != 0) {
    chat__store_user_free(u);
    return r;
  }
  *out = u;
  return 0;
}

int chat__memstore_get_group(const chat__memstore_t *s, const char *name,
                             chat__store_group_t **out) {
  chat__store_group_t *g = calloc(1, sizeof(*g));
  *out = NULL;
  if (g == NULL ||
      collect(&s->members, 0, name, 1, &g->members, &g->nmembers) != 0) {
    free(g);
    return -ENOMEM;
  }
  g->exists = g->nmembers > 0; /* a group exists through its members */
  *out = g;
  return 0;
}

static size_t str_size(const char *x) {
  return x != NULL ? strlen(x) + 1 : 0;
}

static const char *put_str(char **p, const char *x) {
  if (x == NULL)
    return NULL;
  size_t n = strlen(x) + 1;
  char *d = memcpy(*p, x, n);
  *p += n;
  return d;
}

/* Copies of pick[0..n) in one allocation: the structs, then their strings
 * and bodies, as chat__store_get_held hands them out. */
static chat__stored_msg_t *pack(const chat__stored_msg_t *const *pick,
                                size_t n) {
  size_t size = (n ? n : 1) * sizeof(chat__stored_msg_t);
  for (size_t i = 0; i < n; i++)
    size += str_size(pick[i]->to) + str_size(pick[i]->from) +
            str_size(pick[i]->group) + str_size(pick[i]->msg_id) +
            pick[i]->body_len;
  chat__stored_msg_t *v = malloc(size);
  if (v == NULL)
    return NULL;
  char *p = (char *)(v + (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    v[i] = *pick[i];
    v[i].to = put_str(&p, pick[i]->to);
    v[i].from = put_str(&p, pick[i]->from);
    v[i].group = put_str(&p, pick[i]->group);
    v[i].msg_id = put_str(&p, pick[i]->msg_id);
    v[i].body = p; /* never NULL, even when empty */
    if (pick[i]->body_len > 0)
      memcpy(p, pick[i]->body, pick[i]->body_len);
    p += pick[i]->body_len;
  }
  return v;
}

int chat__memstore_get_held(const chat__memstore_t *s, const char *rcpt,
                            uint64_t after, uint32_t limit,
                            chat__stored_msg_t **out, size_t *n, int *more) {
  size_t k = 0;
  if (limit == 0)
    limit = 1; /* as chat__store_get_held */
  *out = NULL;
  *n = 0;
  *more = 0;
  /* Count first, so a large limit allocates nothing for itself. */
  for (size_t i = 0; i < s->nmsgs; i++) {
    const chat__stored_msg_t *m = &s->msgs[i].op.msg;
    if (m->seq <= after || strcmp(m->to, rcpt) != 0)
      continue;
    if (k == limit) {
      *more = 1;
      break;
    }
    k++;
  }
  const chat__stored_msg_t **pick = calloc(k ? k : 1, sizeof(*pick));
  if (pick == NULL)
    return -ENOMEM;
  size_t j = 0;
  for (size_t i = 0; j < k && i < s->nmsgs; i++) {
    const chat__stored_msg_t *m = &s->msgs[i].op.msg;
    if (m->seq > after && strcmp(m->to, rcpt) == 0)
      pick[j++] = m;
  }
  *out = pack(pick, k);
  free(pick);
  if (*out == NULL)
    return -ENOMEM;
  *n = k;
  return 0;
}

int chat__memstore_find_sent(const chat__memstore_t *s, const char *from,
                             const char *msg_id, chat__stored_msg_t **out) {
  *out = NULL;
  /* the lowest seq, as SQLite walks its (sender, msg_id) index */
  for (size_t i = 0; i < s->nmsgs; i++) {
    const chat__stored_msg_t *m = &s->msgs[i].op.msg;
    if (m->group == NULL && strcmp(m->from, from) == 0 &&
        strcmp(m->msg_id, msg_id) == 0)
      return (*out = pack(&m, 1)) != NULL ? 0 : -ENOMEM;
  }
  return 0;
}
