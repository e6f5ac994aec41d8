/* conn_write.c -- the output half of a chat_conn_t: frames queued into one
 * buffer during a loop turn, bounded by max_output (what is in flight
 * counts), encrypted on TLS, and handed to one uv_write per turn (the
 * check phase, chat__conn_run, starts it).
 *
 * Memory rules as in conn.c: the buffer handed to uv_write is the write's
 * until its callback, and an idle connection holds none. */
#include "conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONN_OUT_MIN 512
/* A turn's buffer never starts bigger than this, so a connection that had
 * a burst does not take big blocks for single lines; beyond it doubling
 * costs little next to the bytes themselves. */
#define CONN_OUT_HINT_MAX (64u << 10)

/* Output that chat__conn_start_write can hand to the socket now: on TLS,
 * ciphertext waiting, or frames once the handshake is done. */
int chat__conn_has_output(const chat_conn_t *c) {
  if (c->tls == NULL)
    return c->out_len > 0;
  return chat__tls_pending(c) > 0 || (c->out_len > 0 && chat__tls_ready(c));
}

static void on_write(uv_write_t *req, int status) {
  chat_conn_t *c = req->handle->data;

  free(c->inflight);
  c->inflight = NULL;
  c->inflight_len = 0;
  c->writing = 0;
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  if (status < 0) {
    chat__conn_close_now(c, status);
    return;
  }
  if (chat__conn_has_output(c))
    chat__io_schedule(c->io, c); /* written by this turn's check */
  else
    chat__conn_try_finish(c);
}

/* A busy connection writes about as much each turn as the last: its next
 * buffer starts at this one's size rather than growing from CONN_OUT_MIN
 * again, each doubling a copy of all queued so far. The hint halves after a
 * turn that used less than a quarter, so a burst does not keep big buffers
 * for small writes; it is a size, not memory held while idle. */
static void out_settle(chat_conn_t *c) {
  if (c->out_len > c->out_cap / 4)
    c->out_hint = c->out_cap < CONN_OUT_HINT_MAX ? c->out_cap
                                                 : CONN_OUT_HINT_MAX;
  else
    c->out_hint /= 2;
  c->out = NULL;
  c->out_len = c->out_cap = 0;
}

/* On TLS: encrypts the frames queued (once the handshake is done) and takes
 * the ciphertext into *data. The plaintext buffer is freed as on plain TCP,
 * where it becomes the write's. */
static int tls_output(chat_conn_t *c, char **data, size_t *len) {
  int rc = 0;

  if (c->out_len > 0 && chat__tls_ready(c)) {
    rc = chat__tls_encrypt(c, c->out, c->out_len);
    free(c->out);
    out_settle(c);
  }
  return rc < 0 ? rc : chat__tls_take(c, data, len);
}

/* Hands everything queued to one uv_write; c->out is then empty and owns no
 * buffer, so an idle connection holds none. */
void chat__conn_start_write(chat_conn_t *c) {
  char *data = c->out;
  size_t len = c->out_len;
  uv_buf_t buf;
  int rc;

  if (c->tls != NULL && (rc = tls_output(c, &data, &len)) < 0) {
    chat__conn_close_now(c, rc);
    return;
  }
  buf = uv_buf_init(data, (unsigned)len);
  rc = uv_write(&c->req.write, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (rc < 0) {
    if (c->tls != NULL)
      free(data);
    chat__conn_close_now(c, rc);
    return;
  }
  c->io->stats.writes++;
  c->io->stats.bytes_written += len;
  c->inflight = data;
  c->inflight_len = len;
  if (c->tls == NULL)
    out_settle(c);
  c->writing = 1;
}

static int overflow(chat_conn_t *c) {
  if (!c->overflowed) {
    c->overflowed = 1;
    if (c->cbs->on_overflow != NULL)
      c->cbs->on_overflow(c);
  }
  return -ENOBUFS;
}

/* Appends to c->out within max_output (counting what is in flight). Returns
 * 0, -ENOBUFS (nothing appended, on_overflow not yet called) or -ENOMEM. */
static int out_append(chat_conn_t *c, const char *data, size_t n) {
  size_t used = c->out_len + c->inflight_len, need, cap;
  char *p;

  if (n > c->max_output - used)
    return -ENOBUFS;
  need = c->out_len + n;
  if (need > c->out_cap) {
    cap = c->out_cap > 0 ? c->out_cap
                         : c->out_hint > CONN_OUT_MIN ? c->out_hint
                                                      : CONN_OUT_MIN;
    while (cap < need)
      cap *= 2;
    if (cap > c->max_output)
      cap = c->max_output;
    p = realloc(c->out, cap);
    if (p == NULL)
      return -ENOMEM;
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
  return 0;
}

static int dump_cb(const char *buf, size_t len, void *ctx) {
  return out_append(ctx, buf, len);
}

static int can_send(const chat_conn_t *c) {
  return c->state == CHAT_CONN_OPEN || c->state == CHAT_CONN_CONNECTING;
}

/* Output was added: it goes out in this turn's check, unless a write is in
 * flight (its callback schedules the rest) or the connect is not done. */
static void queued(chat_conn_t *c) {
  if (c->state == CHAT_CONN_OPEN && !c->writing)
    chat__io_schedule(c->io, c);
}

int chat_conn_send(chat_conn_t *c, const json_t *obj) {
  size_t start = c->out_len;
  int rc;

  if (!can_send(c))
    return -EPIPE;
  rc = chat_frame_dump(obj, dump_cb, c);
  if (rc < 0) {
    c->out_len = start; /* drop the partial line */
    return rc == -ENOBUFS ? overflow(c) : rc;
  }
  queued(c);
  return 0;
}

int chat_conn_send_line(chat_conn_t *c, const char *line, size_t len) {
  int rc;

  if (line == NULL || len == 0 || line[len - 1] != '\n' ||
      memchr(line, '\n', len - 1) != NULL)
    return -EINVAL;
  if (!can_send(c))
    return -EPIPE;
  rc = out_append(c, line, len);
  if (rc < 0)
    return rc == -ENOBUFS ? overflow(c) : rc;
  queued(c);
  return 0;
}

size_t chat_conn_output_len(const chat_conn_t *c) {
  return c->out_len + c->inflight_len;
}
