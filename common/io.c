/* io.c -- per-loop state shared by connections: the one read buffer and the
 * check-phase flush of everything queued during a loop turn. */
#include "conn_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void idle_cb(uv_idle_t *h) {
  /* Nothing to do: being active is the point (see struct chat_io). */
  (void)h;
}

static void unlink_pending(chat_conn_t *c) {
  *c->pend_prev = c->pend_next;
  if (c->pend_next != NULL)
    c->pend_next->pend_prev = c->pend_prev;
  c->pend_next = NULL;
  c->pend_prev = NULL;
  c->scheduled = 0;
}

static void check_cb(uv_check_t *h) {
  chat_io_t *io = h->data;
  chat_conn_t *batch = io->pending;

  /* Work through a detached batch: a connection scheduled again by what runs
   * here waits for the next turn instead of running twice now. */
  io->pending = NULL;
  if (batch != NULL)
    batch->pend_prev = &batch;
  while (batch != NULL) {
    chat_conn_t *c = batch;
    unlink_pending(c);
    chat__conn_run(c);
  }
  if (io->pending == NULL)
    uv_idle_stop(&io->idle);
}

void chat__io_schedule(chat_io_t *io, chat_conn_t *c) {
  if (c->scheduled || uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  c->pend_next = io->pending;
  if (io->pending != NULL)
    io->pending->pend_prev = &c->pend_next;
  io->pending = c;
  c->pend_prev = &io->pending;
  c->scheduled = 1;
  uv_idle_start(&io->idle, idle_cb);
}

void chat__io_unschedule(chat_io_t *io, chat_conn_t *c) {
  if (c->scheduled)
    unlink_pending(c);
  if (io->pending == NULL)
    uv_idle_stop(&io->idle);
}

int chat_io_new(uv_loop_t *loop, chat_io_t **out) {
  chat_io_t *io;

  *out = NULL;
  io = calloc(1, sizeof(*io));
  if (io == NULL)
    return -ENOMEM;
  io->rbuf = malloc(CHAT__IO_READ_BUF);
  if (io->rbuf == NULL) {
    free(io);
    return -ENOMEM;
  }
  /* libuv writes to sockets with write(2): a peer's reset would otherwise
   * kill the process with SIGPIPE instead of failing that one write. */
  signal(SIGPIPE, SIG_IGN);
  io->loop = loop;
  io->close_timeout_ms = CHAT__CONN_CLOSE_TIMEOUT_MS;
  /* Neither init can fail on a valid loop. */
  uv_check_init(loop, &io->check);
  uv_idle_init(loop, &io->idle);
  io->check.data = io;
  io->idle.data = io;
  io->handles_open = 2;
  uv_check_start(&io->check, check_cb);
  uv_unref((uv_handle_t *)&io->check);
  *out = io;
  return 0;
}

static void io_close_cb(uv_handle_t *h) {
  chat_io_t *io = h->data;
  if (--io->handles_open == 0) {
    free(io->rbuf);
    free(io);
  }
}

void chat_io_free(chat_io_t *io) {
  if (io == NULL)
    return;
  uv_close((uv_handle_t *)&io->check, io_close_cb);
  uv_close((uv_handle_t *)&io->idle, io_close_cb);
}

void chat_io_set_close_timeout(chat_io_t *io, unsigned ms) {
  io->close_timeout_ms = ms > 0 ? ms : CHAT__CONN_CLOSE_TIMEOUT_MS;
}

void chat_io_get_stats(const chat_io_t *io, chat_io_stats_t *stats) {
  *stats = io->stats;
}
