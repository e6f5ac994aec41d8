/* input.c -- commands from stdin: a script (pipe or file: lines as they
 * come, /wait pauses, end of input drains and exits) or, on a terminal, the
 * interactive prompt (prompt.c); with --listen-only nothing, with --to the
 * one message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_log.h"
#include "input.h"
#include "prompt.h"

#define READ_CHUNK 65536

typedef enum in_mode { IN_NONE, IN_STREAM, IN_FILE, IN_TTY } in_mode_t;

/* stdin exists once per process, and so does this. */
typedef struct input {
  chat_client_uv_t *u;
  chat_client_t *c;
  int started;
  in_mode_t mode;
  uv_pipe_t pipe;
  uv_idle_t idle;
  uv_timer_t wait_timer;
  char *buf;            /* unprocessed bytes: buf[off .. len) */
  size_t off, len, cap;
  int eof, waiting, reading, discarding, stopped, in_pump;
} input_t;

static input_t g_in;
static char g_chunk[READ_CHUNK];

static void pump(input_t *in);
static void take_wait(input_t *in);

/* ---- script mode -------------------------------------------------------- */

static void append(input_t *in, const char *data, size_t n) {
  if (in->discarding) { /* the rest of a line that was too long */
    const char *nl = memchr(data, '\n', n);
    if (!nl)
      return;
    in->discarding = 0;
    n -= (size_t)(nl + 1 - data);
    data = nl + 1;
  }
  if (in->off > 0) {
    memmove(in->buf, in->buf + in->off, in->len - in->off);
    in->len -= in->off;
    in->off = 0;
  }
  if (in->len + n + 1 > in->cap) {
    size_t cap = in->len + n + 1 + 4096;
    char *b = realloc(in->buf, cap);
    if (!b) {
      CHAT_ERROR("out of memory reading stdin");
      in->eof = 1;
      return;
    }
    in->buf = b;
    in->cap = cap;
  }
  memcpy(in->buf + in->len, data, n);
  in->len += n;
  if (!memchr(in->buf, '\n', in->len) && in->len > CHAT_CLIENT_MAX_LINE) {
    chat__out_error(in->c, "bad_command", "line too long (over %d bytes)",
                    CHAT_CLIENT_MAX_LINE);
    in->len = 0;
    in->discarding = 1;
  }
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  buf->base = g_chunk;
  buf->len = sizeof(g_chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  input_t *in = s->data;
  if (n < 0) {
    if (n != UV_EOF)
      CHAT_WARN("reading stdin: %s", uv_strerror((int)n));
    in->eof = 1;
  } else if (n > 0) {
    append(in, buf->base, (size_t)n);
  }
  pump(in);
}

/* Regular files cannot be polled; reading them never blocks for long. */
static void on_idle(uv_idle_t *h) {
  input_t *in = h->data;
  ssize_t n = read(0, g_chunk, sizeof(g_chunk));
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0)
    in->eof = 1;
  else
    append(in, g_chunk, (size_t)n);
  pump(in);
}

/* Reads only while no complete line waits, so memory stays bounded. */
static void update_reading(input_t *in) {
  int have_line = in->len > in->off &&
                  memchr(in->buf + in->off, '\n', in->len - in->off);
  int want = !in->eof && !in->waiting && !in->stopped && !have_line;
  if (want == in->reading)
    return;
  in->reading = want;
  if (in->mode == IN_STREAM) {
    if (want)
      uv_read_start((uv_stream_t *)&in->pipe, on_alloc, on_read);
    else
      uv_read_stop((uv_stream_t *)&in->pipe);
  } else if (in->mode == IN_FILE) {
    if (want)
      uv_idle_start(&in->idle, on_idle);
    else
      uv_idle_stop(&in->idle);
  }
}

static void run_line(input_t *in, char *line, size_t len) {
  if (len > 0 && line[len - 1] == '\r')
    len--;
  line[len] = '\0';
  chat__cmd_run(in->c, line);
  take_wait(in);
}

static void pump(input_t *in) {
  chat_client_t *c = in->c;
  if (in->in_pump || in->mode == IN_TTY)
    return;
  in->in_pump = 1;
  while (!in->waiting && !in->stopped && !c->stopping && !c->input_done) {
    size_t avail = in->len - in->off;
    char *start = avail ? in->buf + in->off : NULL;
    char *nl = avail ? memchr(start, '\n', avail) : NULL;
    if (nl) {
      in->off += (size_t)(nl - start) + 1;
      run_line(in, start, (size_t)(nl - start));
    } else if (in->eof && avail > 0) { /* a last line without LF */
      in->off = in->len;
      run_line(in, start, avail);
    } else if (in->eof) {
      chat__client_finish(c, 1);
    } else {
      break;
    }
  }
  in->in_pump = 0;
  if (!in->stopped) {
    update_reading(in);
  } else {
    free(in->buf); /* input_stop could not while we were in here */
    in->buf = NULL;
  }
}

static void on_wait_timer(uv_timer_t *t) {
  input_t *in = t->data;
  in->waiting = 0;
  pump(in);
}

/* /wait: the core asks (c->wait_ms) and the reader stops running lines
 * for that long; the loop goes on. */
static void take_wait(input_t *in) {
  int64_t ms = in->c->wait_ms;
  in->c->wait_ms = 0;
  if (ms <= 0 || in->mode == IN_TTY)
    return; /* a person waits by not typing */
  in->waiting = 1;
  uv_timer_start(&in->wait_timer, on_wait_timer, (uint64_t)ms, 0);
}

/* ---- start / stop ------------------------------------------------------- */

int chat__input_start(chat_client_uv_t *u) {
  input_t *in = &g_in;
  chat_client_t *c = &u->c;
  uv_handle_type t = uv_guess_handle(0);

  memset(in, 0, sizeof(*in));
  in->u = u;
  in->c = c;
  in->started = 1;
  uv_timer_init(u->loop, &in->wait_timer);
  in->wait_timer.data = in;
  if (c->opts.listen_only)
    return 0; /* no commands: the loop runs until a signal */
  if (c->opts.to) { /* one shot: send, and finish once it is confirmed */
    chat__cmd_send(c, c->opts.to, NULL, c->opts.message,
                   strlen(c->opts.message));
    chat__client_finish(c, 1);
    return 0;
  }
  if (c->interactive) {
    in->mode = IN_TTY;
    return chat__prompt_start(u);
  }
  if (t == UV_NAMED_PIPE || t == UV_TCP || t == UV_TTY) {
    uv_pipe_init(u->loop, &in->pipe, 0);
    in->pipe.data = in;
    if (uv_pipe_open(&in->pipe, 0) == 0) {
      in->mode = IN_STREAM;
    } else {
      uv_close((uv_handle_t *)&in->pipe, NULL);
    }
  }
  if (in->mode == IN_NONE) {
    uv_idle_init(u->loop, &in->idle);
    in->idle.data = in;
    in->mode = IN_FILE;
  }
  pump(in);
  return 0;
}

void chat__input_stop(chat_client_uv_t *u) {
  input_t *in = &g_in;
  (void)u;
  if (!in->started || in->stopped)
    return;
  in->stopped = 1;
  uv_close((uv_handle_t *)&in->wait_timer, NULL);
  if (in->mode == IN_STREAM)
    uv_close((uv_handle_t *)&in->pipe, NULL);
  else if (in->mode == IN_FILE)
    uv_close((uv_handle_t *)&in->idle, NULL);
  else if (in->mode == IN_TTY)
    chat__prompt_stop();
  if (!in->in_pump) {
    free(in->buf);
    in->buf = NULL;
  }
}

