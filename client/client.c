/* client.c -- chat-client's lifecycle (start, drain, log out, stop) and the
 * one place where the outbox's actions become frames. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "client.h"

uint64_t chat__client_now(chat_client_t *c) {
  return c->env->now(c->env_ctx);
}

void chat__client_new_msg_id(char out[33]) {
  unsigned char bin[16];
  randombytes_buf(bin, sizeof(bin));
  sodium_bin2hex(out, 33, bin, sizeof(bin));
}

static void on_ob_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  chat_outbox_tick(c->ob, (int64_t)chat__client_now(c));
  chat__client_rearm(c);
}

static void on_tk_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  chat_tickets_tick(c->tickets, (int64_t)chat__client_now(c));
  chat__client_rearm(c);
}

void chat__client_tick(chat_client_t *c) {
  int64_t now = (int64_t)chat__client_now(c);
  chat_outbox_tick(c->ob, now);
  if (c->tickets)
    chat_tickets_tick(c->tickets, now);
  chat__peer_sweep(c);
  chat__client_rearm(c);
}

static void arm(uv_timer_t *t, uv_timer_cb cb, int64_t deadline, uint64_t now) {
  if (deadline < 0) {
    uv_timer_stop(t);
    return;
  }
  uv_timer_start(t, cb, (uint64_t)deadline > now ? (uint64_t)deadline - now : 0,
                 0);
}

void chat__client_rearm(chat_client_t *c) {
  uint64_t now = chat__client_now(c);
  if (c->handles_closed)
    return;
  arm(&c->ob_timer, on_ob_timer, chat_outbox_next_deadline(c->ob), now);
  if (c->tickets)
    arm(&c->tk_timer, on_tk_timer, chat_tickets_next_deadline(c->tickets),
        now);
  if (c->input_done && !c->stopping && chat_outbox_pending(c->ob) == 0)
    chat__client_stop(c, c->opts.to && c->failed_sends ? 1 : 0);
}

/* ---- the outbox's actions ---------------------------------------------- */

static void send_relay(chat_client_t *c, const chat_ob_action_t *a) {
  json_t *m;
  if (a->group)
    m = json_pack("{s:s,s:s,s:s}", "type", "group_send", "group", a->group,
                  "msg_id", a->msg_id);
  else
    m = json_pack("{s:s,s:s,s:s}", "type", "send", "to", a->to, "msg_id",
                  a->msg_id);
  if (m)
    json_object_set_new(m, "body", json_stringn(a->body, a->body_len));
  /* Not connected: the outbox hears of it (server_down) and resends. */
  chat__session_request(c, m, a->group ? CHAT_REQ_GROUP_SEND : CHAT_REQ_SEND,
                        a->msg_id, NULL);
}

static void emit_sent(chat_client_t *c, const chat_ob_action_t *a) {
  json_t *ev;
  if (a->group) {
    ev = json_pack("{s:s,s:s,s:s,s:I,s:I}", "event", "sent", "group",
                   a->group, "msg_id", a->msg_id, "relayed",
                   (json_int_t)a->relayed, "stored", (json_int_t)a->stored);
  } else {
    ev = json_pack("{s:s,s:s,s:s,s:s,s:s}", "event", "sent", "to", a->to,
                   "msg_id", a->msg_id, "via", a->via, "status", a->status);
    if (ev && a->fallback)
      json_object_set_new(ev, "fallback", json_string(a->fallback));
  }
  chat__out_event(c, ev);
}

static void on_action(void *ctx, const chat_ob_action_t *a) {
  chat_client_t *c = ctx;
  json_t *m;

  switch (a->kind) {
  case CHAT_OB_RELAY_SEND:
    send_relay(c, a);
    break;
  case CHAT_OB_CONNECT:
    CHAT_INFO("asking the server for a direct link to %s", a->to);
    chat__session_request(
        c, json_pack("{s:s,s:s}", "type", "connect", "to", a->to),
        CHAT_REQ_CONNECT, a->to, NULL);
    break;
  case CHAT_OB_DIAL:
    CHAT_INFO("dialing %s at %s:%d", a->to, a->host, a->port);
    chat__peer_dial(c, a->link, a->to, a->host, a->port, a->ticket);
    break;
  case CHAT_OB_DIRECT_SEND:
    m = json_pack("{s:s,s:s,s:s%,s:I}", "type", "msg", "msg_id", a->msg_id,
                  "body", a->body, a->body_len, "ts", (json_int_t)a->ts);
    if (m)
      chat__peer_send(c, a->link, m); /* a failure ends in no_ack */
    json_decref(m);
    break;
  case CHAT_OB_CLOSE_LINK:
    chat__peer_close_link(c, a->link);
    break;
  case CHAT_OB_SENT:
    emit_sent(c, a);
    break;
  case CHAT_OB_FAILED:
    c->failed_sends++;
    m = json_pack("{s:s,s:s,s:s,s:s,s:s}", "event", "error", "code", a->code,
                  "message", a->message, "msg_id", a->msg_id, "command",
                  a->group ? "gmsg" : "msg");
    if (m)
      json_object_set_new(m, a->group ? "group" : "to",
                          json_string(a->group ? a->group : a->to));
    chat__out_event(c, m);
    break;
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum) {
  chat_client_t *c = s->data;
  CHAT_INFO("signal %d: logging out", signum);
  chat__client_stop(c, 0);
}

static void on_stop_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  if (!c->stopping) { /* the drain after end of input took too long */
    CHAT_WARN("%zu message(s) still unconfirmed after %d s; exiting",
              chat_outbox_pending(c->ob), CHAT_CLIENT_DRAIN_MS / 1000);
    fprintf(stderr, "chat-client: %zu message(s) not confirmed by the "
                    "server or the peer\n", chat_outbox_pending(c->ob));
    chat__client_stop(c, CHAT_CLIENT_EXIT_UNCONFIRMED);
  } else if (c->net != CHAT_NET_DOWN) {
    c->env->server_abort(c->env_ctx); /* no logout reply in time */
  }
}

int chat_client_init_core(chat_client_t *c, uv_loop_t *loop,
                          const chat_client_opts_t *opts,
                          const chat_client_env_t *env, void *ctx) {
  int rc;
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->env = env;
  c->env_ctx = ctx;
  c->opts = *opts;
  chat_roster_init(&c->roster);
  chat_reqs_init(&c->reqs);
  chat_convs_init(&c->convs);
  if ((rc = chat_outbox_new(&c->roster, on_action, c, &c->ob)) < 0 ||
      (rc = chat_dedup_new(CHAT_DEDUP_DEFAULT, &c->dedup)) < 0)
    return rc;
  if (!opts->no_p2p &&
      (rc = chat_tickets_new(opts->user, chat__peer_on_ticket, c,
                             &c->tickets)) < 0)
    return rc;
  uv_timer_init(loop, &c->ob_timer);
  uv_timer_init(loop, &c->tk_timer);
  uv_timer_init(loop, &c->stop_timer);
  uv_timer_init(loop, &c->reconnect_timer);
  uv_timer_init(loop, &c->hb_timer);
  c->reconnect_timer.data = c->hb_timer.data = c;
  c->ob_timer.data = c->tk_timer.data = c->stop_timer.data = c;
  uv_signal_init(loop, &c->sigint);
  uv_signal_init(loop, &c->sigterm);
  c->sigint.data = c->sigterm.data = c;
  return 0;
}

/* ---- the real env: sockets, stdin, stdout ------------------------------- */

static uint64_t uv_env_now(void *ctx) {
  chat_client_t *c = ctx;
  return uv_now(c->loop);
}

static int uv_env_input_start(void *ctx) { return chat__input_start(ctx); }

static const chat_client_env_t uv_env = {
    uv_env_now,           chat__net_env_send,    chat__net_env_abort,
    chat__peer_env_dial,  chat__peer_env_send,   chat__peer_env_close,
    chat__peer_env_pause, chat__peer_env_resume, chat__out_print,
    uv_env_input_start};

void chat__client_reconnect(chat_client_t *c) {
  if (c->io) /* the real env */
    chat__net_reconnect(c);
}

int chat_client_init(chat_client_t *c, uv_loop_t *loop,
                     const chat_client_opts_t *opts) {
  int rc = chat_client_init_core(c, loop, opts, &uv_env, c);
  if (rc < 0)
    return rc;
  chat__hist_open(c); /* without it nothing is kept; not fatal */
  return chat_io_new(loop, &c->io);
}

int chat_client_run(chat_client_t *c) {
  if ((!c->opts.no_p2p && chat__peer_listen(c) < 0) ||
      chat__net_start(c) < 0) {
    chat__client_stop(c, 1);
  } else {
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  }
  uv_run(c->loop, UV_RUN_DEFAULT);
  chat_io_free(c->io);
  c->io = NULL;
  uv_run(c->loop, UV_RUN_DEFAULT);
  return c->exit_code;
}

static void close_handle(uv_handle_t *h) {
  if (h->loop && !uv_is_closing(h))
    uv_close(h, NULL);
}

/* Everything but live connections, which close on their own. */
static void close_handles(chat_client_t *c) {
  if (c->handles_closed)
    return;
  c->handles_closed = 1;
  chat__input_stop(c);
  chat__net_close(c);
  close_handle((uv_handle_t *)&c->ob_timer);
  close_handle((uv_handle_t *)&c->tk_timer);
  close_handle((uv_handle_t *)&c->stop_timer);
  close_handle((uv_handle_t *)&c->sigint);
  close_handle((uv_handle_t *)&c->sigterm);
  if (c->listening) {
    close_handle((uv_handle_t *)&c->listener);
    close_handle((uv_handle_t *)&c->peer_timer);
  }
  chat__peer_close_all(c);
}

void chat__client_stop(chat_client_t *c, int code) {
  if (!c->stopping) {
    c->stopping = 1;
    c->exit_code = code;
    chat__input_stop(c);
    chat__peer_close_all(c);
    uv_timer_stop(&c->reconnect_timer);
    if (!c->kicked && c->net >= CHAT_NET_CONTACTS) {
      chat__session_logout(c);
      uv_timer_start(&c->stop_timer, on_stop_timer, CHAT_CLIENT_LOGOUT_MS, 0);
    } else if (c->net != CHAT_NET_DOWN) {
      c->env->server_abort(c->env_ctx);
    }
  }
  if (c->net == CHAT_NET_DOWN)
    close_handles(c);
}

void chat__client_finish(chat_client_t *c, int drain) {
  if (c->input_done || c->stopping)
    return;
  c->input_done = 1;
  if (!drain || chat_outbox_pending(c->ob) == 0) {
    chat__client_stop(c, 0);
    return;
  }
  uv_timer_start(&c->stop_timer, on_stop_timer, CHAT_CLIENT_DRAIN_MS, 0);
}

void chat_client_free(chat_client_t *c) {
  chat_outbox_free(c->ob);
  chat_dedup_free(c->dedup);
  chat_tickets_free(c->tickets);
  chat_roster_free(&c->roster);
  chat_reqs_free(&c->reqs);
  chat_convs_free(&c->convs);
  chat__hist_close(c);
  sodium_memzero(c->opts.password, sizeof(c->opts.password));
}
