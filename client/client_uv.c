/* client_uv.c -- the real client: the env that gives the core its sockets,
 * terminal, stdout and clock, the loop that runs it, and the one place
 * (on_settle, a prepare handle: once per loop turn, before the loop waits)
 * where the core's requests are taken up and its next deadline armed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client_uv.h"
#include "input.h"
#include "output.h"

uint64_t chat__uv_now(chat_client_uv_t *u) { return uv_now(u->loop); }

static uint64_t env_now(void *ctx) { return chat__uv_now(ctx); }

static int env_input_start(void *ctx) { return chat__input_start(ctx); }

static int64_t env_wall(void *ctx) {
  uv_timeval64_t tv;
  (void)ctx;
  if (uv_gettimeofday(&tv) < 0)
    return 0;
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void env_hist_add(void *ctx, const char *conv, int is_group,
                         const char *from, const char *body, size_t body_len,
                         int64_t ts) {
  chat_client_uv_t *u = ctx;
  chat_hist_message(u->hist, conv, is_group, from, body, body_len, ts);
}

static json_t *env_hist_read(void *ctx, const char *conv, int is_group,
                             int n) {
  chat_client_uv_t *u = ctx;
  return chat_hist_read(u->hist, conv, is_group, n);
}

static const chat_client_env_t uv_env = {
    env_now,              chat__net_env_send,    chat__net_env_abort,
    chat__peer_env_dial,  chat__peer_env_send,   chat__peer_env_close,
    chat__peer_env_pause, chat__peer_env_resume, chat__out_print,
    env_input_start,      env_wall,              env_hist_add,
    env_hist_read,        chat__peer_env_key};

static void close_handle(uv_handle_t *h) {
  if (h->loop && !uv_is_closing(h))
    uv_close(h, NULL);
}

/* Everything but live connections, which close on their own. */
static void close_handles(chat_client_uv_t *u) {
  u->handles_closed = 1;
  chat__input_stop(u);
  chat__net_close(u);
  close_handle((uv_handle_t *)&u->settle);
  close_handle((uv_handle_t *)&u->wake);
  close_handle((uv_handle_t *)&u->sigint);
  close_handle((uv_handle_t *)&u->sigterm);
  if (u->listening)
    close_handle((uv_handle_t *)&u->listener);
}

static void on_wake(uv_timer_t *t) {
  chat_client_uv_t *u = t->data;
  chat__client_tick(&u->c); /* on_settle re-arms */
}

static void on_settle(uv_prepare_t *h) {
  chat_client_uv_t *u = h->data;
  chat_client_t *c = &u->c;
  int64_t at;

  if (u->handles_closed)
    return;
  chat_client_settle(c);
  if (c->stopping) {
    chat__input_stop(u);
    uv_timer_stop(&u->reconnect_timer);
  }
  if (c->finished) {
    close_handles(u);
    return;
  }
  if (c->reconnect_asked) {
    c->reconnect_asked = 0;
    chat__net_reconnect(u);
  }
  if (c->prompt_dirty) {
    c->prompt_dirty = 0;
    chat__input_prompt_changed(c);
  }
  at = chat_client_next_deadline(c);
  if (at < 0) {
    uv_timer_stop(&u->wake);
  } else {
    uint64_t now = chat__uv_now(u);
    uv_timer_start(&u->wake, on_wake,
                   (uint64_t)at > now ? (uint64_t)at - now : 0, 0);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  chat_client_uv_t *u = s->data;
  CHAT_INFO("signal %d: logging out", signum);
  chat__client_stop(&u->c, 0);
}

int chat_client_uv_init(chat_client_uv_t *u, uv_loop_t *loop,
                        const chat_client_opts_t *opts) {
  int rc;
  memset(u, 0, sizeof(*u));
  u->loop = loop;
  if ((rc = chat_client_init_core(&u->c, loop, opts, &uv_env, u)) < 0)
    return rc;
  chat_hist_open(opts->user, &u->hist); /* none: nothing kept, not fatal */
  uv_prepare_init(loop, &u->settle);
  uv_timer_init(loop, &u->wake);
  uv_timer_init(loop, &u->reconnect_timer);
  uv_timer_init(loop, &u->hb_timer);
  u->settle.data = u->wake.data = u;
  u->reconnect_timer.data = u->hb_timer.data = u;
  uv_signal_init(loop, &u->sigint);
  uv_signal_init(loop, &u->sigterm);
  u->sigint.data = u->sigterm.data = u;
  /* The prepare handle alone must not keep the loop running. */
  uv_prepare_start(&u->settle, on_settle);
  uv_unref((uv_handle_t *)&u->settle);
  return chat_io_new(loop, &u->io);
}

int chat_client_uv_run(chat_client_uv_t *u) {
  if (chat__peer_tls_start(u) < 0 ||
      (!u->c.opts.no_p2p && chat__peer_listen(u) < 0) ||
      (chat__peer_env_lan(u), chat__net_start(u)) < 0) {
    chat__client_stop(&u->c, 1);
  } else {
    uv_signal_start(&u->sigint, on_signal, SIGINT);
    uv_signal_start(&u->sigterm, on_signal, SIGTERM);
  }
  uv_run(u->loop, UV_RUN_DEFAULT);
  if (!u->handles_closed) /* stopped before the loop ever turned */
    close_handles(u);
  chat_io_free(u->io);
  u->io = NULL;
  uv_run(u->loop, UV_RUN_DEFAULT);
  return u->c.exit_code;
}

void chat_client_uv_free(chat_client_uv_t *u) {
  chat_tls_ctx_free(u->peer_tls); /* links hold their own references */
  u->peer_tls = NULL;
  chat_client_free(&u->c);
  chat_tls_ctx_free(u->tls_ctx);
  u->tls_ctx = NULL;
  chat_hist_close(u->hist);
}
