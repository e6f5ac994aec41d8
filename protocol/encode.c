/* encode.c -- one JSON object to one compact line ending in LF. */
#include "chat_protocol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ENCODE_MIN_CAP 256

struct grow_buf {
  char *p;
  size_t len, cap;
  int nomem;
};

static int grow_append(const char *data, size_t n, void *ctx) {
  struct grow_buf *b = ctx;

  if (b->nomem) /* jansson may carry on after a failure: refuse the rest */
    return -1;
  if (b->cap - b->len < n + 1) { /* + 1 keeps room for a closing NUL */
    size_t cap = b->cap ? b->cap * 2 : ENCODE_MIN_CAP;
    char *p;
    while (cap - b->len < n + 1)
      cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
      b->nomem = 1;
      return -1;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

/* Returns 0, -EINVAL (not an object) or -ENOMEM. A failure inside jansson
 * itself counts as -ENOMEM: with checked strings and no cycles (all this
 * project builds) its only way to fail is an allocation (cycle detection
 * allocates). The buffer is NUL-terminated after the LF for convenience;
 * *len counts up to and including the LF. */
int chat_frame_encode(const json_t *obj, char **out, size_t *len) {
  struct grow_buf b = {0};

  *out = NULL;
  *len = 0;
  if (!json_is_object(obj))
    return -EINVAL;
  if (json_dump_callback(obj, grow_append, &b, JSON_COMPACT) != 0 ||
      b.nomem || grow_append("\n", 1, &b) != 0) {
    free(b.p);
    return -ENOMEM;
  }
  b.p[b.len] = '\0';
  *out = b.p;
  *len = b.len;
  return 0;
}

struct dump_ctx {
  chat_frame_write_cb write;
  void *ctx;
  int rc;
};

/* jansson 2.14 ignores some callback failures (e.g. while writing an object
 * key) and carries on, so the first failure is remembered and every later
 * write refused here. */
static int dump_write(const char *buf, size_t n, void *ctx) {
  struct dump_ctx *d = ctx;
  int rc;

  if (d->rc != 0)
    return -1;
  rc = d->write(buf, n, d->ctx);

  if (rc != 0) {
    d->rc = rc < 0 ? rc : -EIO;
    return -1;
  }
  return 0;
}

/* Returns 0; -EINVAL (not an object, or no callback); -ENOMEM when jansson
 * itself fails (see chat_frame_encode); or the callback's own
 * negative return (a positive one becomes -EIO), after which nothing more is
 * written. jansson dumps compactly without an intermediate buffer of its own
 * (it calls back per token), so nothing is allocated here. */
int chat_frame_dump(const json_t *obj, chat_frame_write_cb write, void *ctx) {
  struct dump_ctx d = {write, ctx, 0};

  if (!json_is_object(obj) || write == NULL)
    return -EINVAL;
  if (json_dump_callback(obj, dump_write, &d, JSON_COMPACT) != 0 || d.rc)
    return d.rc ? d.rc : -ENOMEM;
  if (dump_write("\n", 1, &d) != 0)
    return d.rc;
  return 0;
}
