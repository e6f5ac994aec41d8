/* client.c -- chat-client's core lifecycle (drain, log out, stop), its
 * deadlines, the one place where the outbox's actions become frames, and
 * events handed to the env. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chat_log.h"
#include "client.h"

uint64_t chat__client_now(chat_client_t *c) {
  return c->env->now(c->env_ctx);
}

int64_t chat__client_wall(chat_client_t *c) {
  if (c->env->wall)
    return c->env->wall(c->env_ctx);
  return (int64_t)chat__client_now(c);
}

void chat__client_record(chat_client_t *c, const char *conv, int is_group,
                         const char *from, const char *body, size_t len,
                         int64_t ts) {
  if (c->env->hist_add)
    c->env->hist_add(c->env_ctx, conv, is_group, from, body, len, ts);
}

void chat__client_new_msg_id(char out[33]) {
  unsigned char bin[16];
  randombytes_buf(bin, sizeof(bin));
  sodium_bin2hex(out, 33, bin, sizeof(bin));
}

/* ---- events ------------------------------------------------------------- */

void chat__out_event(chat_client_t *c, json_t *ev) {
  if (!ev)
    return;
  c->env->event(c->env_ctx, ev);
  json_decref(ev);
}

void chat__out_info(chat_client_t *c, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  if (c->opts.json)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  chat__out_event(c, json_pack("{s:s,s:s}", "event", "info", "text", buf));
}

void chat__out_error(chat_client_t *c, const char *code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  chat__out_event(c, json_pack("{s:s,s:s,s:s}", "event", "error", "code", code,
                               "message", buf));
}

/* ---- time --------------------------------------------------------------- */

static int64_t earliest(int64_t a, int64_t b) {
  if (a < 0)
    return b;
  if (b < 0)
    return a;
  return a < b ? a : b;
}

int64_t chat_client_next_deadline(chat_client_t *c) {
  int64_t t = -1;
  if (c->finished)
    return -1;
  t = earliest(t, chat_outbox_next_deadline(c->ob));
  if (c->tickets)
    t = earliest(t, chat_tickets_next_deadline(c->tickets));
  t = earliest(t, chat__peer_next_deadline(c));
  return earliest(t, c->stop_at);
}

/* The exit code once everything sent is confirmed: a one-shot --message
 * that was refused is a failure; in a script the error event says it. */
static int drained_code(const chat_client_t *c) {
  return c->opts.to && c->failed_sends ? 1 : 0;
}

void chat_client_settle(chat_client_t *c) {
  if (c->input_done && !c->stopping && chat_outbox_pending(c->ob) == 0)
    chat__client_stop(c, drained_code(c));
}

/* The drain after end of input, or the logout, took too long. */
static void stop_due(chat_client_t *c) {
  c->stop_at = -1;
  if (!c->stopping) {
    CHAT_WARN("%zu message(s) still unconfirmed after %d s; exiting",
              chat_outbox_pending(c->ob), CHAT_CLIENT_DRAIN_MS / 1000);
    fprintf(stderr, "chat-client: %zu message(s) not confirmed by the "
                    "server or the peer\n", chat_outbox_pending(c->ob));
    chat__client_stop(c, CHAT_CLIENT_EXIT_UNCONFIRMED);
  } else if (c->net != CHAT_NET_DOWN) {
    c->env->server_abort(c->env_ctx); /* no logout reply in time */
  }
}

void chat__client_tick(chat_client_t *c) {
  int64_t now = (int64_t)chat__client_now(c);
  if (c->finished)
    return;
  chat_outbox_tick(c->ob, now);
  if (c->tickets)
    chat_tickets_tick(c->tickets, now);
  chat__peer_sweep(c);
  if (c->stop_at >= 0 && now >= c->stop_at)
    stop_due(c);
  chat_client_settle(c);
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
    if (ev && a->path)
      json_object_set_new(ev, "path", json_string(a->path));
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
    chat__peer_dial(c, a->link, a->to, a->host, a->port, a->ticket, a->key,
                    c->dial_plan);
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

int chat_client_init_core(chat_client_t *c, uv_loop_t *loop,
                          const chat_client_opts_t *opts,
                          const chat_client_env_t *env, void *ctx) {
  int rc;
  (void)loop;
  memset(c, 0, sizeof(*c));
  c->env = env;
  c->env_ctx = ctx;
  c->opts = *opts;
  c->servers = opts->servers; /* the rotation starts at the first */
  c->stop_at = -1;
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
  return 0;
}

void chat__client_stop(chat_client_t *c, int code) {
  if (!c->stopping) {
    c->stopping = 1;
    c->exit_code = code;
    c->stop_at = -1;
    chat__peer_close_all(c);
    if (!c->kicked && c->net >= CHAT_NET_CONTACTS) {
      chat__session_logout(c);
      c->stop_at = (int64_t)chat__client_now(c) + CHAT_CLIENT_LOGOUT_MS;
    } else if (c->net != CHAT_NET_DOWN) {
      c->env->server_abort(c->env_ctx);
    }
  }
  if (c->net == CHAT_NET_DOWN)
    c->finished = 1;
}

void chat__client_finish(chat_client_t *c, int drain) {
  if (c->input_done || c->stopping)
    return;
  c->input_done = 1;
  if (!drain || chat_outbox_pending(c->ob) == 0) {
    chat__client_stop(c, drained_code(c));
    return;
  }
  c->stop_at = (int64_t)chat__client_now(c) + CHAT_CLIENT_DRAIN_MS;
}

void chat_client_free(chat_client_t *c) {
  sodium_memzero(c->token, sizeof(c->token));
  chat_outbox_free(c->ob);
  chat_dedup_free(c->dedup);
  chat_tickets_free(c->tickets);
  chat_roster_free(&c->roster);
  chat_reqs_free(&c->reqs);
  chat_convs_free(&c->convs);
  sodium_memzero(c->opts.password, sizeof(c->opts.password));
}
