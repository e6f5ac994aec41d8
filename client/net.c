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
static void connect_now(chat_client_t *c);

/* A line longer than the server's max_frame breaks the contract, but
 * cutting the connection for it would only bring the same frame back after
 * the reconnect, forever (a held message is delivered at every login). So
 * it is reported and skipped, and the connection stays. The connection
 * itself reads lines up to CHAT_CLIENT_MAX_READ. */
static int on_line(chat_conn_t *conn, const char *line, size_t len) {
  chat_client_t *c = conn->data;
  size_t limit = c->max_frame ? c->max_frame : CHAT_MAX_FRAME_DEFAULT;
  (void)line;
  if (len <= limit)
    return 0;
  c->last_read = chat__client_now(c);
  CHAT_WARN("skipping a frame of %zu bytes from the server (max_frame %zu)",
            len, limit);
  chat__out_event(c, json_pack("{s:s,s:s,s:s,s:I}", "event", "error", "code",
                               "frame_too_large", "message",
                               "the server sent a frame longer than its "
                               "max_frame; it was skipped",
                               "bytes", (json_int_t)len));
  return 1;
}

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

void chat__net_reconnect(chat_client_t *c) {
  if (c->stopping)
    return;
  c->attempt = 0;
  if (c->srv) { /* on_close reconnects (after the shortest backoff) */
    chat__session_drop(c, "reconnect asked");
    return;
  }
  uv_timer_stop(&c->reconnect_timer);
  connect_now(c);
}

static void on_connected(chat_conn_t *conn, int status) {
  chat_client_t *c = conn->data;
  if (status < 0) {
    chat__session_reason(c, uv_strerror(status));
    return; /* on_close follows */
  }
  c->last_read = c->last_write = chat__client_now(c);
  c->max_frame = CHAT_MAX_FRAME_DEFAULT;
  chat__session_connected(c);
}

static void connect_now(chat_client_t *c) {
  chat_conn_t *conn = calloc(1, sizeof(*conn));
  chat_conn_opts_t opts = {CHAT_CLIENT_MAX_READ, 0};
  int rc;

  c->disconnect_reason[0] = '\0';
  if (!conn) {
    chat__client_stop(c, 1);
    return;
  }
  conn->data = c;
  if ((rc = chat_conn_init(c->io, conn, &srv_cbs, &opts)) < 0) {
    free(conn);
    CHAT_ERROR("cannot create a socket: %s", uv_strerror(rc));
    chat__client_stop(c, 1);
    return;
  }
  chat_conn_set_on_line(conn, on_line);
  c->srv = conn;
  c->net = CHAT_NET_CONNECTING;
  c->connect_started = chat__client_now(c);
  chat__out_info(c, "connecting to %s:%d\xe2\x80\xa6", c->opts.server_host,
                 c->opts.server_port);
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

  if (!c->srv || c->net == CHAT_NET_LOGOUT)
    return;
  /* A server that accepts and then says nothing (or a connect that hangs)
   * is given up on quickly, with the reason, instead of after 3 missed
   * heartbeats. */
  if (c->net < CHAT_NET_READY &&
      now - c->connect_started >= CHAT_CLIENT_CONNECT_MS) {
    char why[96];
    snprintf(why, sizeof(why), "timeout: %s within %d s",
             c->net == CHAT_NET_CONNECTING ? "no connection"
             : c->net == CHAT_NET_WELCOME  ? "no welcome from the server"
                                           : "no answer to the login",
             CHAT_CLIENT_CONNECT_MS / 1000);
    chat__session_reason(c, why);
    chat_conn_abort(c->srv);
    return;
  }
  if (c->net < CHAT_NET_WELCOME)
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
  /* A line over CHAT_CLIENT_MAX_READ cut the connection: do not hurry back
   * for the same line (the backoff keeps growing across logins). */
  c->oversize_cut = status == -CHAT_E_FRAME_TOO_LARGE;
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
