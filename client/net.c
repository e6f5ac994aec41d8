/* net.c -- the server connection over a socket: connect, heartbeat, and
 * reconnecting with backoff when the connection is lost. What travels on it
 * is login.c's and session.c's business. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client.h"

#define HB_TICK_MS 500

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len);
static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err);
static void on_overflow(chat_conn_t *conn);
static void on_close(chat_conn_t *conn, int status);

static const chat_conn_cbs_t srv_cbs = {on_frame, on_bad_frame, on_overflow,
                                        on_close};

int chat__net_env_send(void *ctx, const json_t *obj) {
  chat_client_t *c = ctx;
  int rc;
  if (!c->srv)
    return -ENOTCONN;
  rc = chat_conn_send(c->srv, obj);
  if (rc == 0)
    c->last_write = chat__client_now(c);
  return rc;
}

void chat__net_env_abort(void *ctx) {
  chat_client_t *c = ctx;
  if (c->srv)
    chat_conn_abort(c->srv);
}

static void on_connected(chat_conn_t *conn, int status) {
  chat_client_t *c = conn->data;
  if (status < 0) {
    chat__session_reason(c, uv_strerror(status));
    return; /* on_close follows */
  }
  c->last_read = c->last_write = chat__client_now(c);
  chat__session_connected(c);
}

static void connect_now(chat_client_t *c) {
  chat_conn_t *conn = calloc(1, sizeof(*conn));
  int rc;

  c->disconnect_reason[0] = '\0';
  if (!conn) {
    chat__client_stop(c, 1);
    return;
  }
  conn->data = c;
  if ((rc = chat_conn_init(c->io, conn, &srv_cbs, NULL)) < 0) {
    free(conn);
    CHAT_ERROR("cannot create a socket: %s", uv_strerror(rc));
    chat__client_stop(c, 1);
    return;
  }
  c->srv = conn;
  c->net = CHAT_NET_CONNECTING;
  chat_conn_connect(conn, (const struct sockaddr *)&c->server_addr,
                    on_connected);
}

static void on_reconnect_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  if (!c->stopping && !c->srv)
    connect_now(c);
}

static void on_hb_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  uint64_t now = chat__client_now(c);
  json_t *ping;

  if (!c->srv || c->net < CHAT_NET_WELCOME || c->net == CHAT_NET_LOGOUT)
    return;
  if (now - c->last_read >= 3 * (uint64_t)c->heartbeat_ms) {
    chat__session_reason(c, "timeout");
    chat_conn_abort(c->srv);
    return;
  }
  if (now - c->last_write >= (uint64_t)c->heartbeat_ms &&
      (ping = chat_msg_new(CHAT_T_PING))) {
    chat__session_send(c, ping);
    json_decref(ping);
  }
}

int chat__net_start(chat_client_t *c) {
  int rc = chat_addr_resolve(c->opts.server_host, c->opts.server_port,
                             &c->server_addr);
  if (rc < 0) {
    fprintf(stderr, "chat-client: cannot resolve server %s: %s\n",
            c->opts.server_host, chat_strerror(rc));
    return rc;
  }
  uv_timer_start(&c->hb_timer, on_hb_timer, HB_TICK_MS, HB_TICK_MS);
  uv_unref((uv_handle_t *)&c->hb_timer);
  connect_now(c);
  return 0;
}

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len) {
  chat_client_t *c = conn->data;
  c->last_read = chat__client_now(c);
  chat__session_on_frame(c, obj);
}

static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err) {
  CHAT_WARN("bad frame from the server: %s", err->message);
}

static void on_overflow(chat_conn_t *conn) {
  chat_client_t *c = conn->data;
  chat__session_reason(c, "output overflow");
  chat_conn_abort(conn);
}

static void on_close(chat_conn_t *conn, int status) {
  chat_client_t *c = conn->data;
  int64_t delay;

  free(conn);
  c->srv = NULL;
  if (!chat__session_closed(c, status))
    return;
  delay = chat__session_backoff(c);
  CHAT_INFO("reconnecting in %lld ms", (long long)delay);
  uv_timer_start(&c->reconnect_timer, on_reconnect_timer, (uint64_t)delay, 0);
}

void chat__net_close(chat_client_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->reconnect_timer)) {
    uv_close((uv_handle_t *)&c->reconnect_timer, NULL);
    uv_close((uv_handle_t *)&c->hb_timer, NULL);
  }
  if (c->net != CHAT_NET_DOWN)
    c->env->server_abort(c->env_ctx);
}
