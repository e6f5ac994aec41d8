/* decoder.c -- the incremental line splitter: bytes in, lines out.
 *
 * Lines wholly inside the fed chunk are returned in place (zero copy); only a
 * line begun in an earlier chunk is copied into d->part. A line may take at
 * most max_frame bytes plus an optional CR plus the LF, so no search ever looks
 * further than that "window", and nothing longer is ever held: a line is
 * declared too large as soon as the window is full without an LF.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <errno.h>
#include <string.h>

#define PART_MIN_CAP 256

/* The most bytes one line can occupy: content, a CR, the LF. */
static size_t window(const chat_decoder_t *d) {
  return d->max_frame + 2;
}

static void part_release(chat_decoder_t *d) {
  chat__free(d->part);
  d->part = NULL;
  d->part_len = d->part_cap = d->part_pos = d->part_scan = 0;
}

static int die(chat_decoder_t *d, int err) {
  part_release(d);
  d->chunk = NULL;
  d->chunk_len = 0;
  d->dead = err;
  return err;
}

/* Makes room for need unread bytes, moving the unread ones to the front. */
static int part_reserve(chat_decoder_t *d, size_t need) {
  size_t held = d->part_len - d->part_pos, cap;
  char *p;

  if (need <= d->part_cap) {
    if (d->part_pos > 0) {
      memmove(d->part, d->part + d->part_pos, held);
      d->part_scan -= d->part_pos;
      d->part_len = held;
      d->part_pos = 0;
    }
    return 0;
  }
  /* Grow geometrically, but never past what one line can need (save() may
   * ask for more: then exactly that). */
  cap = d->part_cap * 2;
  if (cap < PART_MIN_CAP)
    cap = PART_MIN_CAP;
  if (cap > window(d))
    cap = window(d);
  if (cap < need)
    cap = need;
  p = chat__malloc(cap);
  if (p == NULL)
    return -ENOMEM;
  if (held > 0)
    memcpy(p, d->part + d->part_pos, held);
  chat__free(d->part);
  d->part = p;
  d->part_cap = cap;
  d->part_scan -= d->part_pos;
  d->part_len = held;
  d->part_pos = 0;
  return 0;
}

static int part_append(chat_decoder_t *d, const char *data, size_t n) {
  int rc = part_reserve(d, d->part_len - d->part_pos + n);

  if (rc < 0)
    return rc;
  memcpy(d->part + d->part_len, data, n);
  d->part_len += n;
  return 0;
}

static void chunk_skip(chat_decoder_t *d, size_t n) {
  d->chunk += n;
  d->chunk_len -= n;
  if (d->chunk_len == 0)
    d->chunk = NULL;
}

/* start[0..n) is a line without its LF: strip a CR and check the size. */
static int line_out(chat_decoder_t *d, const char *start, size_t n,
                    const char **line, size_t *len) {
  if (n > 0 && start[n - 1] == '\r')
    n--;
  if (n > d->max_frame)
    return die(d, -CHAT_E_FRAME_TOO_LARGE);
  *line = start;
  *len = n;
  return 1;
}

/* An unterminated held line of held bytes ending in last: is it already
 * known to be too large? max_frame + 1 bytes are fine only if the last is a
 * CR that an LF may still follow. */
static int held_too_large(const chat_decoder_t *d, size_t held, char last) {
  return held >= window(d) || (held == d->max_frame + 1 && last != '\r');
}

int chat_decoder_init(chat_decoder_t *d, size_t max_frame) {
  memset(d, 0, sizeof(*d));
  /* 0 means the default; the cap keeps window() from overflowing. */
  if (max_frame == 0)
    max_frame = CHAT_MAX_FRAME_DEFAULT;
  if (max_frame > SIZE_MAX / 4)
    max_frame = SIZE_MAX / 4;
  d->max_frame = max_frame;
  return 0;
}

void chat_decoder_free(chat_decoder_t *d) {
  part_release(d);
  d->chunk = NULL;
  d->chunk_len = 0;
}

void chat_decoder_feed(chat_decoder_t *d, const char *data, size_t len) {
  /* A caller that feeds before using up the last chunk loses nothing: the
   * rest is saved first (or the decoder dies of ENOMEM rather than skip). */
  if (d->chunk_len > 0 && chat_decoder_save(d) < 0)
    die(d, -ENOMEM);
  if (d->dead || len == 0)
    return;
  d->chunk = data;
  d->chunk_len = len;
}

/* The next line when some bytes are held in d->part. */
static int next_held(chat_decoder_t *d, const char **line, size_t *len) {
  size_t held = d->part_len - d->part_pos, w, take;
  const char *lf;
  int rc;

  /* After save() the held bytes may contain whole lines. */
  if (d->part_scan < d->part_len) {
    size_t end = d->part_pos + window(d);
    if (end > d->part_len)
      end = d->part_len;
    if (d->part_scan < end) {
      lf = memchr(d->part + d->part_scan, '\n', end - d->part_scan);
      if (lf != NULL) {
        const char *start = d->part + d->part_pos;
        size_t n = (size_t)(lf - start);
        d->part_pos += n + 1;
        d->part_scan = d->part_pos;
        return line_out(d, start, n, line, len);
      }
    }
    d->part_scan = d->part_len;
  }
  if (held_too_large(d, held, d->part[d->part_len - 1]))
    return die(d, -CHAT_E_FRAME_TOO_LARGE);
  if (d->chunk_len == 0)
    return 0;

  w = window(d) - held;
  take = d->chunk_len < w ? d->chunk_len : w;
  lf = memchr(d->chunk, '\n', take);
  if (lf != NULL) {
    size_t j = (size_t)(lf - d->chunk);
    if ((rc = part_append(d, d->chunk, j)) < 0)
      return rc;
    chunk_skip(d, j + 1);
    held = d->part_len - d->part_pos;
    d->part_pos = d->part_scan = d->part_len;
    /* The line lives in part until the next call, which frees it. */
    return line_out(d, d->part, held, line, len);
  }
  if (d->chunk_len >= w)
    return die(d, -CHAT_E_FRAME_TOO_LARGE);
  if ((rc = part_append(d, d->chunk, d->chunk_len)) < 0)
    return rc;
  chunk_skip(d, d->chunk_len);
  d->part_scan = d->part_len;
  if (held_too_large(d, d->part_len - d->part_pos, d->part[d->part_len - 1]))
    return die(d, -CHAT_E_FRAME_TOO_LARGE);
  return 0;
}

int chat_decoder_next(chat_decoder_t *d, const char **line, size_t *len) {
  size_t take;
  const char *lf;
  int rc;

  if (d->dead)
    return d->dead;
  if (d->part_pos < d->part_len)
    return next_held(d, line, len);
  /* Drained: an idle connection holds no buffer. */
  if (d->part != NULL)
    part_release(d);
  if (d->chunk_len == 0)
    return 0;

  take = d->chunk_len < window(d) ? d->chunk_len : window(d);
  lf = memchr(d->chunk, '\n', take);
  if (lf != NULL) {
    const char *start = d->chunk;
    size_t n = (size_t)(lf - start);
    chunk_skip(d, n + 1);
    return line_out(d, start, n, line, len);
  }
  if (held_too_large(d, d->chunk_len, d->chunk[d->chunk_len - 1]))
    return die(d, -CHAT_E_FRAME_TOO_LARGE);
  if ((rc = part_append(d, d->chunk, d->chunk_len)) < 0)
    return rc;
  chunk_skip(d, d->chunk_len);
  d->part_scan = d->part_len;
  return 0;
}

int chat_decoder_save(chat_decoder_t *d) {
  int rc;

  if (d->dead || d->chunk_len == 0)
    return 0;
  if ((rc = part_append(d, d->chunk, d->chunk_len)) < 0)
    return rc;
  chunk_skip(d, d->chunk_len);
  return 0;
}

size_t chat_decoder_pending(const chat_decoder_t *d) {
  if (d->dead)
    return 0;
  return d->part_len - d->part_pos + d->chunk_len;
}
