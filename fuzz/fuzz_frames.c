/* fuzz_frames.c -- libFuzzer target: bytes -> decoder -> lines -> messages.
 *
 * Input layout (so the fuzzer steers the splits and the limit):
 *   byte 0   max_frame: low 2 bits pick the mode, the other 6 bits (v) the
 *            value: 0 default (65536), 1 256, 2 v+1 (1..64), 3 64+4v (64..316)
 *   byte 1   bits 0-2: k, chunk-size bytes that follow (0: one chunk);
 *            bit 3: chat_decoder_save() after every line;
 *            bit 4: one allocation fails (a byte after the chunk sizes says
 *            which, 1..256); bit 5: feed the next chunk right after a line,
 *            before the last chunk is used up (feed must save its rest)
 *   k bytes  chunk sizes, used in turn: b < 200 is b+1 bytes, else
 *            (b-199)*64
 *   rest     the stream
 * Every chunk is its own allocation, freed as soon as the decoder no longer
 * borrows it, so ASan sees a decoder that keeps a stale pointer.
 *
 * Oracle: a naive splitter written from PROTOCOL.md section 1. Whatever the
 * splits, saves and (retried) allocation failures, the decoder must give the
 * same lines, then too_large or the same number of pending bytes.
 */
#include "chat_protocol.h"
#include "fuzz_common.h"
#include "fuzz_line.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void check_fast(const char *line, size_t len);

enum { END_PENDING, END_TOO_LARGE };

/* Lines as (offset, length) into one byte buffer, and how the stream ended. */
struct outcome {
  char *bytes;
  size_t len, cap;
  size_t *lines; /* pairs */
  size_t nlines, lines_cap;
  int end;
  size_t pending;
};

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (p == NULL)
    abort();
  return p;
}

static void outcome_line(struct outcome *o, const char *line, size_t len) {
  if (o->cap - o->len < len) {
    o->cap = (o->cap + len) * 2;
    o->bytes = xrealloc(o->bytes, o->cap);
  }
  if (o->nlines == o->lines_cap) {
    o->lines_cap = o->lines_cap ? o->lines_cap * 2 : 16;
    o->lines = xrealloc(o->lines, o->lines_cap * 2 * sizeof(size_t));
  }
  if (len > 0)
    memcpy(o->bytes + o->len, line, len);
  o->lines[2 * o->nlines] = o->len;
  o->lines[2 * o->nlines + 1] = len;
  o->nlines++;
  o->len += len;
}

static void outcome_free(struct outcome *o) {
  free(o->bytes);
  free(o->lines);
}

static int outcome_equal(const struct outcome *a, const struct outcome *b) {
  return a->end == b->end && a->pending == b->pending &&
         a->nlines == b->nlines && a->len == b->len &&
         (a->nlines == 0 ||
          memcmp(a->lines, b->lines, a->nlines * 2 * sizeof(size_t)) == 0) &&
         (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
}

/* PROTOCOL.md section 1, as plainly as it reads. */
static void naive_split(const uint8_t *in, size_t len, size_t max_frame,
                        struct outcome *o) {
  size_t start = 0, tail;

  for (size_t i = 0; i < len; i++) {
    if (in[i] != '\n')
      continue;
    size_t n = i - start;
    if (n > 0 && in[i - 1] == '\r')
      n--;
    if (n > max_frame) {
      o->end = END_TOO_LARGE;
      return;
    }
    outcome_line(o, (const char *)in + start, n);
    start = i + 1;
  }
  tail = len - start;
  /* An unterminated line is too large once it cannot become a frame any
   * more: over max_frame + 1, or max_frame + 1 without a CR at the end. */
  if (tail > max_frame + 1 || (tail == max_frame + 1 && in[len - 1] != '\r')) {
    o->end = END_TOO_LARGE;
    return;
  }
  o->end = END_PENDING;
  o->pending = tail;
}

struct plan {
  size_t max_frame; /* as given to chat_decoder_init (0: default) */
  uint8_t sizes[7];
  unsigned nsizes, next_size;
  int save, impatient;
  unsigned fail_at;
};

static size_t chunk_size(struct plan *p) {
  uint8_t b;

  if (p->nsizes == 0)
    return SIZE_MAX;
  b = p->sizes[p->next_size++ % p->nsizes];
  return b < 200 ? (size_t)b + 1 : (size_t)(b - 199) * 64;
}

/* The chunks the decoder may still borrow. At most two: the one fed last
 * and (until feed saved its rest) the one before. */
struct chunks {
  char *live[2];
};

static void chunks_free_old(struct chunks *c) {
  free(c->live[0]);
  c->live[0] = NULL;
}

static void chunks_free_all(struct chunks *c) {
  chunks_free_old(c);
  free(c->live[1]);
  c->live[1] = NULL;
}

/* Feeds the next chunk of in; returns the bytes fed. */
static size_t feed_next(chat_decoder_t *d, struct plan *p, struct chunks *c,
                        const uint8_t *in, size_t left) {
  size_t n = chunk_size(p);
  char *copy;

  if (n > left)
    n = left;
  copy = xrealloc(NULL, n);
  memcpy(copy, in, n);
  chunks_free_old(c);
  c->live[0] = c->live[1];
  c->live[1] = copy;
  chat_decoder_feed(d, copy, n);
  /* feed saved the rest of the previous chunk (or died trying) */
  chunks_free_old(c);
  return n;
}

static void check_held(const chat_decoder_t *d, const struct plan *p) {
  FUZZ_CHECK(chat_decoder_pending(d) <= d->max_frame + 1);
  /* save() may hold a whole chunk; without it one line's window at most */
  if (!p->save && !p->impatient)
    FUZZ_CHECK(d->part_cap <= d->max_frame + 2);
}

/* Runs the decoder over in as the plan says. Returns 0, or -ENOMEM when an
 * injected failure killed the decoder inside feed (a documented outcome
 * that no longer compares with the oracle). */
static int run_decoder(const uint8_t *in, size_t len, struct plan *p,
                       struct outcome *o) {
  chat_decoder_t d;
  struct chunks c = {{NULL, NULL}};
  size_t pos = 0;
  int rc = 0, more = 1;

  FUZZ_CHECK(chat_decoder_init(&d, p->max_frame) == 0);
  FUZZ_CHECK(d.max_frame == (p->max_frame ? p->max_frame
                                          : CHAT_MAX_FRAME_DEFAULT));
  chat__fuzz_alloc_fail_at(p->fail_at);
  while (more) {
    const char *line;
    size_t n;
    unsigned f0;

    if (pos < len)
      pos += feed_next(&d, p, &c, in + pos, len - pos);
    else
      more = 0;
    for (;;) {
      f0 = chat__fuzz_alloc_failures();
      rc = chat_decoder_next(&d, &line, &n);
      if (rc == -ENOMEM && d.dead == -ENOMEM) {
        /* feed could not save the last chunk's rest: the decoder is gone */
        FUZZ_CHECK(p->impatient && chat__fuzz_alloc_failures() > 0);
        goto out;
      }
      if (rc == -ENOMEM) {
        FUZZ_CHECK(chat__fuzz_alloc_failures() != f0);
        continue; /* nothing was consumed: retry */
      }
      if (rc == 0) {
        check_held(&d, p);
        chunks_free_all(&c);
        break;
      }
      if (rc == -CHAT_E_FRAME_TOO_LARGE) {
        FUZZ_CHECK(chat_decoder_pending(&d) == 0);
        /* dead: later input is ignored and the answer stays */
        chunks_free_all(&c);
        chat_decoder_feed(&d, "{}\n", 3);
        FUZZ_CHECK(chat_decoder_next(&d, &line, &n) == rc);
        o->end = END_TOO_LARGE;
        rc = 0;
        goto out;
      }
      FUZZ_CHECK(rc == 1);
      FUZZ_CHECK(n <= d.max_frame);
      outcome_line(o, line, n);
      chat__fuzz_check_line(line, n);
      check_fast(line, n);
      if (p->save) {
        f0 = chat__fuzz_alloc_failures();
        if ((rc = chat_decoder_save(&d)) < 0) {
          FUZZ_CHECK(rc == -ENOMEM && chat__fuzz_alloc_failures() != f0);
          FUZZ_CHECK(chat_decoder_save(&d) == 0);
        }
        chunks_free_all(&c); /* nothing is borrowed after a save */
      }
      if (p->impatient && pos < len)
        pos += feed_next(&d, p, &c, in + pos, len - pos);
    }
  }
  o->end = END_PENDING;
  o->pending = chat_decoder_pending(&d);
  rc = 0;
out:
  chat__fuzz_alloc_fail_at(0);
  chunks_free_all(&c);
  chat_decoder_free(&d);
  FUZZ_CHECK(d.part == NULL && chat_decoder_pending(&d) == 0);
  return rc;
}

static void read_plan(const uint8_t **p, const uint8_t *end, struct plan *pl) {
  uint8_t b0 = chat__fuzz_byte(p, end), b1 = chat__fuzz_byte(p, end);
  unsigned v = b0 >> 2;

  memset(pl, 0, sizeof(*pl));
  switch (b0 & 3) {
  case 0: pl->max_frame = 0; break;
  case 1: pl->max_frame = 256; break;
  case 2: pl->max_frame = v + 1; break;
  default: pl->max_frame = 64 + 4 * (size_t)v; break;
  }
  pl->nsizes = b1 & 7;
  for (unsigned i = 0; i < pl->nsizes; i++)
    pl->sizes[i] = chat__fuzz_byte(p, end);
  pl->save = (b1 >> 3) & 1;
  if ((b1 >> 4) & 1)
    pl->fail_at = (unsigned)chat__fuzz_byte(p, end) + 1;
  pl->impatient = (b1 >> 5) & 1;
}

/* The fast path (fastpath.c) against the full one: a line chat_fast_scan
 * takes must parse to an object with exactly those members and values, and
 * a request chat_fast_request takes must decode (role SERVER) to the same
 * fields. Declining is always allowed. The oracle never fails allocating. */
static void check_fast_str(const chat_fast_field_t *f, const json_t *v) {
  char *dec = xrealloc(NULL, f->len);
  FUZZ_CHECK(json_is_string(v) && json_string_length(v) == f->len);
  chat_fast_unescape(f, dec);
  FUZZ_CHECK(f->len == 0 || memcmp(dec, json_string_value(v), f->len) == 0);
  free(dec);
}

static void check_fast_name(const char *fast, const char *full) {
  FUZZ_CHECK(full ? strcmp(fast, full) == 0 : fast[0] == '\0');
}

static void check_fast(const char *line, size_t len) {
  chat_fast_field_t f[CHAT_FAST_MAX_FIELDS];
  chat_fast_req_t req;
  int n = chat_fast_scan(line, len, f, CHAT_FAST_MAX_FIELDS);
  int taken = chat_fast_request(line, len, &req);
  json_t *obj = NULL;
  chat_error_t err;
  chat_msg_t m;

  FUZZ_CHECK(n >= 0 || !taken);
  if (n < 0)
    return;
  chat__fuzz_alloc_suspend();
  FUZZ_CHECK(chat_frame_parse(line, len, &obj, &err) == 0);
  FUZZ_CHECK(json_object_size(obj) == (size_t)n);
  for (int i = 0; i < n; i++) {
    char key[CHAT_MAX_FRAME_DEFAULT + 1];
    const json_t *v;
    FUZZ_CHECK(f[i].key_len < sizeof(key));
    memcpy(key, f[i].key, f[i].key_len);
    key[f[i].key_len] = '\0';
    v = json_object_get(obj, key);
    FUZZ_CHECK(v != NULL);
    if (f[i].kind == CHAT_FAST_STRING)
      check_fast_str(&f[i], v);
    else if (f[i].kind == CHAT_FAST_INT)
      FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) == f[i].num);
    else
      FUZZ_CHECK(f[i].kind == CHAT_FAST_BOOL && json_is_boolean(v) &&
                 json_is_true(v) == (int)f[i].num);
  }
  if (taken) {
    FUZZ_CHECK(chat_msg_decode(obj, CHAT_ROLE_SERVER, &m, &err) == 0);
    FUZZ_CHECK(m.type == req.type);
    if (req.id_kind == CHAT_FAST_INT)
      FUZZ_CHECK(json_is_integer(m.id) && json_integer_value(m.id) == req.id_num);
    else if (req.id_kind == CHAT_FAST_STRING)
      FUZZ_CHECK(json_is_string(m.id) && json_string_length(m.id) == req.id_len &&
                 memcmp(json_string_value(m.id), req.id_str, req.id_len) == 0);
    else
      FUZZ_CHECK(m.id == NULL);
    check_fast_name(req.to, m.to);
    check_fast_name(req.group, m.group);
    check_fast_name(req.from, m.from);
    check_fast_name(req.msg_id, m.msg_id);
    if (m.body != NULL) {
      FUZZ_CHECK(req.body.kind == CHAT_FAST_STRING &&
                 req.body.len == m.body_len);
      json_t *b = json_stringn(m.body, m.body_len);
      check_fast_str(&req.body, b);
      json_decref(b);
    } else {
      FUZZ_CHECK(req.body.kind == CHAT_FAST_NONE);
    }
  }
  json_decref(obj);
  chat__fuzz_alloc_resume();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  struct plan plan;
  struct outcome got = {0}, want = {0};

  chat__fuzz_alloc_install();
  read_plan(&p, end, &plan);
  naive_split(p, (size_t)(end - p),
              plan.max_frame ? plan.max_frame : CHAT_MAX_FRAME_DEFAULT, &want);
  if (run_decoder(p, (size_t)(end - p), &plan, &got) == 0)
    FUZZ_CHECK(outcome_equal(&got, &want));
  else
    FUZZ_CHECK(plan.fail_at != 0);
  outcome_free(&got);
  outcome_free(&want);
  return 0;
}
