/* conn_fixture.h -- one loop with a listener on 127.0.0.1:0, a server-side
 * chat_conn, a chat_conn client and a raw libuv peer, for the connection
 * tests. Header-only (static functions) so each test file stays one
 * executable. Nothing here asserts inside a libuv callback: callbacks record,
 * test bodies check, so a failure never longjmps out of uv_run. */
#ifndef CONN_FIXTURE_H
#define CONN_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "chat_conn.h"
#include "chat_tls.h"

#define FX_DEADLINE_MS 20000 /* generous: a busy 2-core machine under ASan */
#define FX_EVENTS 4096

typedef struct fx fx_t;

/* A chat_conn that records what happens to it. */
typedef struct fx_conn {
  chat_conn_t conn;
  fx_t *fx;
  int used;                 /* chat_conn_init succeeded */
  json_t *frames;           /* every frame received, in order */
  int bad_json, too_large, overflows;
  int connected, connect_status, connect_seq;
  int closed, close_status, close_seq;
  size_t frames_at_close;   /* frames received when on_close ran */
  /* behaviour, set by a test */
  int pause_at;             /* pause() after the frame with this "n" */
  int blip_at;              /* pause() then resume() after this "n" */
  int close_at;             /* chat_conn_close() after this "n" */
  int abort_at;             /* chat_conn_abort() after this "n" */
  int reply_bad;            /* send an error reply to each bad frame */
  int close_on_bad;         /* and chat_conn_close() after it */
  int line_ok;              /* the borrowed line stayed readable */
} fx_conn_t;

struct fx {
  uv_loop_t loop;
  chat_io_t *io;
  uv_tcp_t listener;
  int port;
  fx_conn_t srv, cli;
  chat_conn_opts_t srv_opts;
  const chat_conn_cbs_t *srv_cbs; /* the server side's; NULL: fx_cbs */
  chat_conn_line_cb srv_on_line;  /* set on the server side when accepted */
  chat_tls_ctx_t *srv_tls;        /* the server side speaks TLS with it */
  int srv_accepted;
  /* the raw peer */
  uv_tcp_t raw;
  int raw_used, raw_connected, raw_reading, raw_eof, raw_closed;
  char *raw_buf;
  size_t raw_len, raw_cap;
  int raw_writes_done;
  int raw_write_error;      /* the first failure but UV_ECANCELED */
  int raw_half_close_ok;    /* keep writing after EOF instead of closing */
  /* deadline */
  uv_timer_t timer;
  int timed_out;
  int seq;
};

/* ---- recording callbacks ------------------------------------------------ */

static inline void fx_on_frame(chat_conn_t *c, json_t *obj, const char *line,
                        size_t len) {
  fx_conn_t *p = (fx_conn_t *)c;
  json_int_t n = json_integer_value(json_object_get(obj, "n"));
  char *copy = malloc(len);

  memcpy(copy, line, len);
  json_array_append(p->frames, obj);
  if (n != 0 && n == p->pause_at)
    chat_conn_pause(c);
  if (n != 0 && n == p->blip_at) {
    chat_conn_pause(c);
    chat_conn_resume(c);
  }
  if (n != 0 && n == p->close_at)
    chat_conn_close(c);
  if (n != 0 && n == p->abort_at)
    chat_conn_abort(c);
  /* The line is borrowed for the whole call, even after a close. */
  p->line_ok = memcmp(copy, line, len) == 0;
  free(copy);
}

static inline void fx_on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  fx_conn_t *p = (fx_conn_t *)c;
  if (err->code == CHAT_E_BAD_JSON)
    p->bad_json++;
  else if (err->code == CHAT_E_FRAME_TOO_LARGE)
    p->too_large++;
  if (p->reply_bad) {
    json_t *e = chat_reply_from_error(NULL, err);
    chat_conn_send(c, e);
    json_decref(e);
  }
  if (p->close_on_bad)
    chat_conn_close(c);
}

static inline void fx_on_overflow(chat_conn_t *c) { ((fx_conn_t *)c)->overflows++; }

static inline void fx_on_close(chat_conn_t *c, int status) {
  fx_conn_t *p = (fx_conn_t *)c;
  p->closed++;
  p->close_status = status;
  p->close_seq = ++p->fx->seq;
  p->frames_at_close = json_array_size(p->frames);
}

static inline void fx_on_connect(chat_conn_t *c, int status) {
  fx_conn_t *p = (fx_conn_t *)c;
  p->connected++;
  p->connect_status = status;
  p->connect_seq = ++p->fx->seq;
}

static const chat_conn_cbs_t fx_cbs = {fx_on_frame, fx_on_bad_frame,
                                       fx_on_overflow, fx_on_close};

static inline int fx_conn_init(fx_t *fx, fx_conn_t *p, const chat_conn_opts_t *o) {
  int rc = chat_conn_init(fx->io, &p->conn, &fx_cbs, o);
  p->used = rc == 0;
  return rc;
}

/* The frame's "n", or -1. */
static inline json_int_t fx_n(const fx_conn_t *p, size_t i) {
  json_t *f = json_array_get(p->frames, i);
  return f ? json_integer_value(json_object_get(f, "n")) : -1;
}

/* ---- loop helpers ------------------------------------------------------- */

static inline void fx_timer_cb(uv_timer_t *t) { ((fx_t *)t->data)->timed_out = 1; }

/* Runs the loop until expr holds; fails the test after FX_DEADLINE_MS. */
#define FX_WAIT(fx, expr)                                                   \
  do {                                                                      \
    (fx)->timed_out = 0;                                                    \
    uv_timer_start(&(fx)->timer, fx_timer_cb, FX_DEADLINE_MS, 0);           \
    while (!(expr)) {                                                       \
      if ((fx)->timed_out)                                                  \
        fail_msg("timed out waiting for %s", #expr);                        \
      uv_run(&(fx)->loop, UV_RUN_ONCE);                                     \
    }                                                                       \
    uv_timer_stop(&(fx)->timer);                                            \
  } while (0)

/* n loop turns that do not block. */
static inline void fx_turns(fx_t *fx, int n) {
  while (n-- > 0)
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static inline void fx_on_accept(uv_stream_t *server, int status) {
  fx_t *fx = server->data;
  if (status < 0 || fx->srv.used)
    return;
  fx->srv.used = chat_conn_init(fx->io, &fx->srv.conn,
                                fx->srv_cbs ? fx->srv_cbs : &fx_cbs,
                                &fx->srv_opts) == 0;
  if (fx->srv.used)
    chat_conn_set_on_line(&fx->srv.conn, fx->srv_on_line);
  if (fx->srv.used && fx->srv_tls != NULL &&
      chat_conn_tls(&fx->srv.conn, fx->srv_tls, NULL) != 0)
    return;
  if (fx->srv.used &&
      chat_conn_accept(&fx->srv.conn, server) == 0)
    fx->srv_accepted = 1;
}

static inline int fx_setup(void **state) {
  fx_t *fx = calloc(1, sizeof(*fx));
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int n = sizeof(ss);

  assert_non_null(fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(chat_io_new(&fx->loop, &fx->io), 0);
  /* Longer than FX_WAIT's deadline: a test that only passes because the
   * close deadline cut a connection off fails instead. */
  chat_io_set_close_timeout(fx->io, 3 * FX_DEADLINE_MS);
  fx->srv.fx = fx->cli.fx = fx;
  fx->srv.frames = json_array();
  fx->cli.frames = json_array();
  uv_timer_init(&fx->loop, &fx->timer);
  fx->timer.data = fx;
  uv_tcp_init(&fx->loop, &fx->listener);
  fx->listener.data = fx;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&fx->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&fx->listener, 16, fx_on_accept),
                   0);
  assert_int_equal(
      uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&ss, &n), 0);
  fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  *state = fx;
  return 0;
}

static inline void fx_raw_close_cb(uv_handle_t *h) { ((fx_t *)h->data)->raw_closed = 1; }

static inline void fx_close_raw(fx_t *fx) {
  if (fx->raw_used && !uv_is_closing((uv_handle_t *)&fx->raw))
    uv_close((uv_handle_t *)&fx->raw, fx_raw_close_cb);
}

/* Closes everything and runs the loop dry: ASan then sees every leak, and
 * uv_loop_close() fails if any handle was forgotten. */
static inline int fx_teardown(void **state) {
  fx_t *fx = *state;
  if (fx->srv.used && fx->srv.conn.state != CHAT_CONN_CLOSED)
    chat_conn_abort(&fx->srv.conn);
  if (fx->cli.used && fx->cli.conn.state != CHAT_CONN_CLOSED)
    chat_conn_abort(&fx->cli.conn);
  fx_close_raw(fx);
  uv_close((uv_handle_t *)&fx->listener, NULL);
  uv_close((uv_handle_t *)&fx->timer, NULL);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  chat_io_free(fx->io);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  if (fx->srv.used)
    assert_int_equal(fx->srv.closed, 1);
  if (fx->cli.used)
    assert_int_equal(fx->cli.closed, 1);
  json_decref(fx->srv.frames);
  json_decref(fx->cli.frames);
  free(fx->raw_buf);
  free(fx);
  return 0;
}

/* ---- connecting --------------------------------------------------------- */

static inline void fx_loopback(fx_t *fx, struct sockaddr_in *sa) {
  uv_ip4_addr("127.0.0.1", fx->port, sa);
}

/* A chat_conn client and its accepted server side, both open. */
static inline void fx_pair(fx_t *fx, const chat_conn_opts_t *cli_opts) {
  struct sockaddr_in sa;
  fx_loopback(fx, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, cli_opts), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  FX_WAIT(fx, fx->cli.connected && fx->srv_accepted);
  assert_int_equal(fx->cli.connect_status, 0);
}

static inline void fx_raw_connect_cb(uv_connect_t *req, int status) {
  fx_t *fx = req->handle->data;
  fx->raw_connected = status == 0 ? 1 : -1;
  free(req);
}

/* A raw peer that does not read until fx_raw_read_start. */
static inline void fx_raw(fx_t *fx) {
  struct sockaddr_in sa;
  uv_connect_t *req = malloc(sizeof(*req));
  fx_loopback(fx, &sa);
  uv_tcp_init(&fx->loop, &fx->raw);
  fx->raw.data = fx;
  fx->raw_used = 1;
  assert_int_equal(
      uv_tcp_connect(req, &fx->raw, (struct sockaddr *)&sa, fx_raw_connect_cb),
      0);
  FX_WAIT(fx, fx->raw_connected && fx->srv_accepted);
  assert_int_equal(fx->raw_connected, 1);
}

static inline void fx_raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  fx_t *fx = h->data;
  if (fx->raw_cap - fx->raw_len < 65536) {
    fx->raw_cap = fx->raw_cap * 2 + 65536;
    fx->raw_buf = realloc(fx->raw_buf, fx->raw_cap + 1);
  }
  *buf = uv_buf_init(fx->raw_buf + fx->raw_len,
                     (unsigned)(fx->raw_cap - fx->raw_len));
}

static inline void fx_raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  fx_t *fx = s->data;
  if (nread > 0) {
    fx->raw_len += (size_t)nread;
    fx->raw_buf[fx->raw_len] = '\0';
  } else if (nread < 0) {
    /* Like nc: the peer's end of the stream ends ours. */
    fx->raw_eof = nread == UV_EOF ? 1 : -1;
    if (fx->raw_half_close_ok && nread == UV_EOF)
      uv_read_stop(s);
    else
      fx_close_raw(fx);
  }
}

static inline void fx_raw_read_start(fx_t *fx) {
  uv_read_start((uv_stream_t *)&fx->raw, fx_raw_alloc, fx_raw_read);
}

typedef struct fx_wreq {
  uv_write_t req;
  char data[];
} fx_wreq_t;

static inline void fx_raw_write_cb(uv_write_t *req, int status) {
  fx_t *fx = req->handle->data;
  fx->raw_writes_done++;
  if (status < 0 && status != UV_ECANCELED && fx->raw_write_error == 0)
    fx->raw_write_error = status;
  free(req);
}

static inline void fx_raw_write(fx_t *fx, const char *data, size_t len) {
  fx_wreq_t *w = malloc(sizeof(*w) + len);
  uv_buf_t b;
  memcpy(w->data, data, len);
  b = uv_buf_init(w->data, (unsigned)len);
  assert_int_equal(uv_write(&w->req, (uv_stream_t *)&fx->raw, &b, 1,
                            fx_raw_write_cb),
                   0);
}

static inline void fx_raw_writes(fx_t *fx, const char *s) {
  fx_raw_write(fx, s, strlen(s));
}

static inline chat_io_stats_t fx_stats(fx_t *fx) {
  chat_io_stats_t st;
  chat_io_get_stats(fx->io, &st);
  return st;
}

/* {"type":"t","n":n} plus a pad of pad bytes. */
static json_t *fx_frame(int n, size_t pad) {
  json_t *o = json_pack("{s:s, s:i}", "type", "t", "n", n);
  if (pad > 0) {
    char *s = malloc(pad + 1);
    memset(s, 'x', pad);
    s[pad] = '\0';
    json_object_set_new(o, "pad", json_string(s));
    free(s);
  }
  return o;
}

static inline int fx_send(chat_conn_t *c, int n, size_t pad) {
  json_t *o = fx_frame(n, pad);
  int rc = chat_conn_send(c, o);
  json_decref(o);
  return rc;
}

/* Frames 1..count, in order, n counted from first. */
static inline void fx_assert_sequence(const fx_conn_t *p, int first, int count) {
  assert_int_equal(json_array_size(p->frames), (size_t)count);
  for (int i = 0; i < count; i++)
    assert_int_equal(fx_n(p, (size_t)i), first + i);
}

#endif /* CONN_FIXTURE_H */
