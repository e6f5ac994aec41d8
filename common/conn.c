/* conn.c -- a libuv TCP connection that speaks JSON Lines: reads split into
 * frames for on_frame (decrypted first on TLS), closing, and the lifetime
 * of the handle; the output half is conn_write.c.
 *
 * Memory rules: every buffer is freed or handed over in the callback that
 * ends its use. The shared read buffer is never kept: each read is used up or
 * its rest saved into the decoder before on_read returns. The decoder and the
 * output buffers are freed in the handle's close callback only, because a
 * callee may close the connection while it still holds the borrowed line.
 */
#include "conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat_addr.h"

#define CONN_MAX_OUTPUT_DEFAULT (1024 * 1024)

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void begin_close(chat_conn_t *c, int status);

/* ---- closing ------------------------------------------------------------ */

static void set_status(chat_conn_t *c, int status) {
  if (c->close_status == 0)
    c->close_status = status;
}

static void free_handle_cb(uv_handle_t *h) { free(h); }

static void on_tcp_close(uv_handle_t *h) {
  chat_conn_t *c = h->data;
  void (*connect_cb)(chat_conn_t *, int) = c->connect_cb;
  chat__tls_t *tls = c->tls; /* its error stays readable in the callbacks */

  /* Write callbacks (with UV_ECANCELED) ran before this one, so nothing of
   * libuv's still points into these buffers. */
  free(c->out);
  free(c->inflight);
  c->out = c->inflight = NULL;
  c->out_len = c->out_cap = c->inflight_len = 0;
  chat_decoder_free(&c->dec);
  c->state = CHAT_CONN_CLOSED;
  if (connect_cb != NULL) {
    /* A connect that failed before it started. */
    c->connect_cb = NULL;
    connect_cb(c, c->close_status != 0 ? c->close_status : UV_ECANCELED);
  }
  c->cbs->on_close(c, c->close_status); /* may free c */
  chat__tls_free(tls);
}

/* Ends the handle now; on_close follows from its close callback. */
static void close_now(chat_conn_t *c, int status) {
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  set_status(c, status);
  c->state = CHAT_CONN_CLOSING;
  c->reading = 0;
  chat__io_unschedule(c->io, c);
  if (c->deadline != NULL) {
    uv_close((uv_handle_t *)c->deadline, free_handle_cb);
    c->deadline = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, on_tcp_close);
}

void chat__conn_close_now(chat_conn_t *c, int status) { close_now(c, status); }

static void on_deadline(uv_timer_t *t) {
  chat_conn_t *c = t->data;
  close_now(c, c->writing || c->out_len > 0 ? UV_ETIMEDOUT : 0);
}

static int read_start(chat_conn_t *c);


/* An accepted TLS connection closed before its handshake is over, with
 * frames queued (a server's server_busy): the handshake goes on so that they
 * reach the client, within the close deadline. A dialer's close does not
 * wait: its connect callback must not report success after it. */
static int tls_handshake_owed(const chat_conn_t *c) {
  return c->tls != NULL && c->connect_cb == NULL && !chat__tls_ready(c) &&
         c->out_len > 0 && !c->eof;
}

/* A closing connection whose output is written: close, or first shut the
 * write side and wait for the peer's EOF (see chat_conn_close). */
static void try_finish(chat_conn_t *c) {
  int fd;

  if (c->state != CHAT_CONN_CLOSING || uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  if (c->writing || chat__conn_has_output(c))
    return;
  if (tls_handshake_owed(c))
    return;
  if (c->tls != NULL && chat__tls_ready(c)) {
    chat__tls_close_notify(c); /* once; a clean end for the peer's TLS */
    if (chat__tls_pending(c) > 0) {
      chat__conn_start_write(c);
      return;
    }
  }
  if (!c->linger || c->eof) {
    close_now(c, 0);
    return;
  }
  if (!c->shut) {
    c->shut = 1;
    /* libuv's write queue is empty (nothing in flight), so a direct
     * shutdown cannot overtake queued data. */
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
        shutdown(fd, SHUT_WR) != 0 || read_start(c) != 0)
      close_now(c, 0);
  }
}

void chat__conn_try_finish(chat_conn_t *c) { try_finish(c); }

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  chat_conn_t *c = h->data;
  /* Safe to share: libuv runs alloc, read and on_read for one stream before
   * any other, and on_read leaves nothing in the buffer. */
  *buf = uv_buf_init(c->io->rbuf, CHAT__IO_READ_BUF);
}

static int read_start(chat_conn_t *c) {
  int rc;
  if (c->reading)
    return 0;
  rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc == 0)
    c->reading = 1;
  return rc;
}

static void read_stop(chat_conn_t *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* Hands out complete lines until the input is used up or a callee pauses or
 * closes the connection. */
static void dispatch(chat_conn_t *c) {
  const chat_conn_cbs_t *cbs = c->cbs;

  while (c->state == CHAT_CONN_OPEN && !c->paused) {
    const char *line;
    size_t len;
    json_t *obj = NULL;
    chat_error_t err;
    int rc = chat_decoder_next(&c->dec, &line, &len);

    if (rc == 0 && c->tls != NULL) {
      /* The decoder let go of the read buffer: decrypt more into it. */
      ssize_t n = chat__tls_read(c, c->io->rbuf, CHAT__IO_READ_BUF);
      if (n > 0) {
        chat_decoder_feed(&c->dec, c->io->rbuf, (size_t)n);
        continue;
      }
      if (n == 0) {
        chat__tls_trim(c); /* all input decrypted */
      } else if (n == UV_EOF) {
        c->eof = 1; /* close_notify: nothing more will come */
        begin_close(c, UV_EOF);
      } else if (n < 0) {
        close_now(c, (int)n);
      }
    }
    if (rc == 0)
      break;
    c->last_line_ms = uv_now(c->io->loop);
    if (rc == 1) {
      if (c->on_line != NULL && c->on_line(c, line, len))
        continue;
      rc = chat_frame_parse(line, len, &obj, &err);
      if (rc == 0) {
        if (cbs->on_frame != NULL)
          cbs->on_frame(c, obj, line, len);
        json_decref(obj);
      } else if (rc == -CHAT_E_BAD_JSON) { /* err says what */
        if (cbs->on_bad_frame != NULL)
          cbs->on_bad_frame(c, &err);
      } else if (rc < 0) {
        close_now(c, rc == -ENOMEM ? UV_ENOMEM : rc);
      }
      continue; /* rc 1: a blank line */
    }
    if (rc == -CHAT_E_FRAME_TOO_LARGE) {
      memset(&err, 0, sizeof(err));
      chat_error_set(&err, CHAT_E_FRAME_TOO_LARGE, NULL,
                     "frame longer than %zu bytes", c->dec.max_frame);
      /* The rest of that line is still coming: drain it before closing,
       * also when the callee closes the connection itself. */
      c->linger = 1;
      if (cbs->on_bad_frame != NULL)
        cbs->on_bad_frame(c, &err);
      begin_close(c, -CHAT_E_FRAME_TOO_LARGE);
      break;
    }
    close_now(c, rc == -ENOMEM ? UV_ENOMEM : rc);
  }
  /* What SSL_read may have written (an alert) goes out now, not with the
   * next frame. (A KeyUpdate's answer is not among it: OpenSSL sends that
   * before our next record.) */
  if (chat__tls_pending(c) > 0)
    chat__io_schedule(c->io, c);
  /* The read buffer is about to be reused: keep the unread rest. */
  if (c->state == CHAT_CONN_OPEN && chat_decoder_save(&c->dec) < 0)
    close_now(c, UV_ENOMEM);
}

/* The handshake is over: a dialer's connect callback runs now, and frames
 * queued meanwhile (a server's welcome) go out. */
static void tls_handshake_done(chat_conn_t *c) {
  void (*cb)(chat_conn_t *, int) = c->connect_cb;

  c->connect_cb = NULL;
  c->last_line_ms = uv_now(c->io->loop);
  if (c->paused)
    read_stop(c); /* read on only for the handshake (see on_connect) */
  if (c->out_len > 0)
    chat__io_schedule(c->io, c);
  if (cb != NULL)
    cb(c, 0);
}

/* Ciphertext in: into the SSL object, its replies scheduled for writing,
 * and the plaintext it yields through dispatch. */
static void tls_read(chat_conn_t *c, const char *data, size_t n) {
  int rc = chat__tls_input(c, data, n);

  if (rc < 0) {
    close_now(c, rc);
    return;
  }
  if (chat__tls_pending(c) > 0)
    chat__io_schedule(c->io, c);
  if (rc == 1)
    tls_handshake_done(c);
  if (c->state == CHAT_CONN_OPEN)
    dispatch(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  chat_conn_t *c = s->data;

  if (nread == 0)
    return;
  if (nread < 0) {
    read_stop(c); /* libuv has stopped already after EOF; keep the bit right */
    if (nread != UV_EOF) {
      /* After the output was written, a reset is no longer news. */
      close_now(c, c->shut ? 0 : (int)nread);
      return;
    }
    c->eof = 1;
    if (c->state == CHAT_CONN_OPEN)
      begin_close(c, UV_EOF); /* writes what is queued: the peer may read on */
    else
      try_finish(c);
    return;
  }
  c->io->stats.reads++;
  c->io->stats.bytes_read += (size_t)nread;
  if (c->state != CHAT_CONN_OPEN) {
    /* Closing before the handshake is over: it goes on, for the frames
     * waiting for it (see try_finish); plaintext after it is dropped. */
    if (c->state == CHAT_CONN_CLOSING && tls_handshake_owed(c)) {
      tls_read(c, buf->base, (size_t)nread);
      return;
    }
    c->linger = 1; /* closing: input is dropped, but the peer is sending */
    return;
  }
  if (c->tls != NULL) {
    tls_read(c, buf->base, (size_t)nread);
    return;
  }
  chat_decoder_feed(&c->dec, buf->base, (size_t)nread);
  dispatch(c);
}

/* ---- the check phase ---------------------------------------------------- */

void chat__conn_run(chat_conn_t *c) {
  if (c->resume_pending) {
    c->resume_pending = 0;
    if (c->state == CHAT_CONN_OPEN && !c->paused) {
      dispatch(c);
      if (c->state == CHAT_CONN_OPEN && !c->paused) {
        int rc = read_start(c);
        if (rc < 0)
          close_now(c, rc);
      }
    }
  }
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  if ((c->state == CHAT_CONN_OPEN || c->state == CHAT_CONN_CLOSING) &&
      !c->writing && chat__conn_has_output(c))
    chat__conn_start_write(c);
  try_finish(c);
}

/* ---- lifetime ----------------------------------------------------------- */

int chat_conn_init(chat_io_t *io, chat_conn_t *c, const chat_conn_cbs_t *cbs,
                   const chat_conn_opts_t *opts) {
  void *data = c->data;
  int rc;

  memset(c, 0, sizeof(*c));
  c->data = data;
  if (cbs == NULL || cbs->on_close == NULL)
    return UV_EINVAL;
  rc = uv_tcp_init(io->loop, &c->tcp);
  if (rc < 0)
    return rc;
  c->tcp.data = c;
  c->io = io;
  c->cbs = cbs;
  chat_decoder_init(&c->dec, opts != NULL ? opts->max_frame : 0);
  c->max_output = opts != NULL && opts->max_output > 0
                      ? opts->max_output
                      : CONN_MAX_OUTPUT_DEFAULT;
  c->state = CHAT_CONN_IDLE;
  return 0;
}

void chat_conn_set_on_line(chat_conn_t *c, chat_conn_line_cb on_line) {
  c->on_line = on_line;
}

int chat_conn_accept(chat_conn_t *c, uv_stream_t *server) {
  int rc;

  if (c->state != CHAT_CONN_IDLE)
    return UV_EINVAL;
  rc = uv_accept(server, (uv_stream_t *)&c->tcp);
  if (rc < 0)
    return rc;
  /* Frames are small and answered one by one: Nagle would only add delay. */
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = CHAT_CONN_OPEN;
  c->last_line_ms = uv_now(c->io->loop);
  if (c->tls != NULL)
    chat__tls_start(c, 0);
  return read_start(c);
}

static void on_connect(uv_connect_t *req, int status) {
  chat_conn_t *c = req->handle->data;
  void (*cb)(chat_conn_t *, int) = c->connect_cb;

  c->connect_cb = NULL;
  if (status == 0 && c->state == CHAT_CONN_CONNECTING && c->tls != NULL) {
    /* Open for TLS records; the owner hears of it after the handshake. */
    c->state = CHAT_CONN_OPEN;
    c->connect_cb = cb;
    chat__tls_start(c, !c->tls_accept);
    status = read_start(c); /* even when paused: the handshake needs it */
    if (status == 0) {
      chat__io_schedule(c->io, c); /* the ClientHello */
      if (c->tcp_up_cb != NULL)
        c->tcp_up_cb(c);
      return;
    }
    c->connect_cb = NULL;
  } else if (status == 0 && c->state == CHAT_CONN_CONNECTING) {
    c->state = CHAT_CONN_OPEN;
    c->last_line_ms = uv_now(c->io->loop);
    status = c->paused ? 0 : read_start(c);
    if (status == 0) {
      if (c->out_len > 0)
        chat__io_schedule(c->io, c);
      if (cb != NULL)
        cb(c, 0);
      return;
    }
  } else if (status == 0) {
    status = UV_ECANCELED;
  }
  if (cb != NULL)
    cb(c, status);
  close_now(c, status);
}

int chat_conn_bind_reuse(chat_conn_t *c, const struct sockaddr *local) {
  int fd, one = 1, rc;
  socklen_t len = local->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in);

  if (c->state != CHAT_CONN_IDLE)
    return UV_EINVAL;
  /* libuv would set the options too late (it binds as it creates the
   * socket), so the socket is made here and handed to it. */
  fd = socket(local->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(fd, local, len) != 0) {
    rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
  }
  rc = uv_tcp_open(&c->tcp, fd);
  if (rc < 0)
    close(fd);
  return rc;
}

void chat_conn_tls_accepting(chat_conn_t *c) { c->tls_accept = 1; }

void chat_conn_on_tcp_up(chat_conn_t *c, void (*cb)(chat_conn_t *c)) {
  c->tcp_up_cb = cb;
}

int chat_conn_connect(chat_conn_t *c, const struct sockaddr *addr,
                      void (*cb)(chat_conn_t *c, int status)) {
  int rc;

  if (c->state != CHAT_CONN_IDLE || addr == NULL)
    return UV_EINVAL;
  c->connect_cb = cb;
  c->state = CHAT_CONN_CONNECTING;
  uv_tcp_nodelay(&c->tcp, 1); /* applied when libuv creates the socket */
  rc = uv_tcp_connect(&c->req.connect, &c->tcp, addr, on_connect);
  if (rc < 0)
    close_now(c, rc); /* on_tcp_close calls cb, then on_close */
  return 0;
}

static void begin_close(chat_conn_t *c, int status) {
  if (c->state == CHAT_CONN_IDLE || c->state == CHAT_CONN_CONNECTING) {
    close_now(c, status);
    return;
  }
  if (c->state != CHAT_CONN_OPEN)
    return;
  c->state = CHAT_CONN_CLOSING;
  c->resume_pending = 0;
  set_status(c, status);
  /* Unhandled input means the peer is still talking (see try_finish). */
  if (chat_decoder_pending(&c->dec) > 0)
    c->linger = 1;
  /* Keep reading, only to drop: a peer blocked writing to us could
   * otherwise never get round to reading our last output. */
  if (!c->eof && read_start(c) < 0) {
    close_now(c, 0);
    return;
  }
  if (!c->writing && chat__conn_has_output(c))
    chat__conn_start_write(c);
  try_finish(c);
  if (!uv_is_closing((uv_handle_t *)&c->tcp) && c->deadline == NULL) {
    uv_timer_t *t = malloc(sizeof(*t));
    if (t == NULL) {
      close_now(c, UV_ENOMEM);
      return;
    }
    uv_timer_init(c->io->loop, t);
    t->data = c;
    uv_timer_start(t, on_deadline, c->io->close_timeout_ms, 0);
    c->deadline = t;
  }
}

void chat_conn_close(chat_conn_t *c) {
  if (c->state != CHAT_CONN_CLOSED)
    begin_close(c, 0);
}

void chat_conn_abort(chat_conn_t *c) {
  if (c->state != CHAT_CONN_CLOSED)
    close_now(c, 0);
}

/* ---- flow control ------------------------------------------------------- */

void chat_conn_pause(chat_conn_t *c) {
  if (c->state != CHAT_CONN_OPEN && c->state != CHAT_CONN_CONNECTING)
    return;
  c->paused = 1;
  c->resume_pending = 0;
  read_stop(c);
}

void chat_conn_resume(chat_conn_t *c) {
  if (!c->paused)
    return;
  c->paused = 0;
  /* Never dispatch from here: the caller may be inside a callback of this
   * very connection. The check phase hands out what waits, then reads. */
  if (c->state == CHAT_CONN_OPEN) {
    c->resume_pending = 1;
    chat__io_schedule(c->io, c);
  }
}

int chat_conn_peer(const chat_conn_t *c, char *host, size_t len, int *port) {
  struct sockaddr_storage ss;
  int n = sizeof(ss);
  int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n);

  if (rc < 0)
    return rc;
  return chat_addr_host((struct sockaddr *)&ss, host, len, port);
}
