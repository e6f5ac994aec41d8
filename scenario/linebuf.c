/* linebuf.c -- splitting a child's output into lines, holding at most max
 * bytes of an unfinished line so a runaway child cannot exhaust memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

void chat_scenario_linebuf_init(chat_scenario_linebuf_t *lb, size_t max) {
  memset(lb, 0, sizeof(*lb));
  lb->max = max > 0 ? max : 1;
}

void chat_scenario_linebuf_free(chat_scenario_linebuf_t *lb) {
  free(lb->buf);
  lb->buf = NULL;
  lb->len = lb->cap = 0;
}

static int emit(chat_scenario_linebuf_t *lb, chat_scenario_line_cb cb,
                void *ctx, int cut) {
  size_t len = lb->len;
  if (len > 0 && lb->buf[len - 1] == '\r')
    len--;
  if (lb->buf != NULL)
    lb->buf[len] = '\0';
  lb->len = 0;
  return cb(ctx, lb->buf != NULL ? lb->buf : "", len, cut);
}

/* Appends up to the room left under max (plus one byte for the NUL). */
static int append(chat_scenario_linebuf_t *lb, const char *data, size_t n) {
  if (lb->len + n + 1 > lb->cap) {
    size_t cap = lb->cap ? lb->cap : 256;
    while (cap < lb->len + n + 1)
      cap *= 2;
    if (cap > lb->max + 1)
      cap = lb->max + 1;
    char *buf = realloc(lb->buf, cap);
    if (buf == NULL)
      return -ENOMEM;
    lb->buf = buf;
    lb->cap = cap;
  }
  memcpy(lb->buf + lb->len, data, n);
  lb->len += n;
  return 0;
}

int chat_scenario_linebuf_feed(chat_scenario_linebuf_t *lb, const char *data,
                               size_t n, chat_scenario_line_cb cb, void *ctx) {
  while (n > 0) {
    const char *lf = memchr(data, '\n', n);
    size_t chunk = lf != NULL ? (size_t)(lf - data) : n;
    if (!lb->cutting) {
      size_t room = lb->max - lb->len;
      size_t take = chunk < room ? chunk : room;
      int rc = append(lb, data, take);
      if (rc != 0)
        return rc;
      if (take < chunk) { /* over max: deliver the head now, skip the rest */
        lb->cutting = 1;
        if ((rc = emit(lb, cb, ctx, 1)) != 0)
          return rc;
      }
    }
    if (lf == NULL)
      return 0;
    data += chunk + 1;
    n -= chunk + 1;
    if (lb->cutting) {
      lb->cutting = 0;
      lb->len = 0;
      continue;
    }
    int rc = emit(lb, cb, ctx, 0);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int chat_scenario_linebuf_finish(chat_scenario_linebuf_t *lb,
                                 chat_scenario_line_cb cb, void *ctx) {
  if (lb->cutting) {
    lb->cutting = 0;
    lb->len = 0;
    return 0;
  }
  return lb->len > 0 ? emit(lb, cb, ctx, 0) : 0;
}
