/* net.c -- the session with the server: connect, welcome, register, login,
 * heartbeat, and reconnecting with backoff when the connection is lost. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "backoff.h"
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

static void set_reason(chat_client_t *c, const char *reason) {
  if (!c->disconnect_reason[0])
    snprintf(c->disconnect_reason, sizeof(c->disconnect_reason), "%s", reason);
}

int chat__net_send(chat_client_t *c, const json_t *obj) {
  int rc;
  if (!c->srv || c->net == CHAT_NET_DOWN || c->net == CHAT_NET_CONNECTING)
    return -ENOTCONN;
  rc = chat_conn_send(c->srv, obj);
  if (rc == 0)
    c->last_write = chat__client_now(c);
  return rc;
}

int chat__net_request(chat_client_t *c, json_t *obj, const char *id) {
  int rc;
  if (!obj)
    return -ENOMEM;
  if (id)
    json_object_set_new(obj, "id", json_string(id));
  rc = chat__net_send(c, obj);
  json_decref(obj);
  return rc;
}

static void on_connected(chat_conn_t *conn, int status) {
  chat_client_t *c = conn->data;
  if (status < 0) {
    set_reason(c, uv_strerror(status));
    return; /* on_close follows */
  }
  c->net = CHAT_NET_WELCOME;
  c->last_read = c->last_write = chat__client_now(c);
  c->heartbeat_ms = 30000;
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
    set_reason(c, "timeout");
    chat_conn_abort(c->srv);
    return;
  }
  if (now - c->last_write >= (uint64_t)c->heartbeat_ms &&
      (ping = chat_msg_new(CHAT_T_PING))) {
    chat__net_send(c, ping);
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

static void send_login(chat_client_t *c) {
  json_t *m = json_pack("{s:s,s:s,s:s}", "type", "login", "user", c->opts.user,
                        "password", c->opts.password);
  if (m && c->p2p_port > 0)
    json_object_set_new(m, "p2p_port", json_integer(c->p2p_port));
  if (m && c->opts.p2p_host[0])
    json_object_set_new(m, "p2p_host", json_string(c->opts.p2p_host));
  c->net = CHAT_NET_LOGIN;
  chat__net_request(c, m, "login");
}

/* Before the first login an error is final: exit 1 with the reason. */
static void fail_start(chat_client_t *c, const char *what, const char *code,
                       const char *message) {
  fprintf(stderr, "chat-client: %s: %s%s%s\n", what, code,
          message && *message ? ": " : "", message ? message : "");
  chat__client_stop(c, 1);
}

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len) {
  chat_client_t *c = conn->data;
  chat_msg_t m;
  chat_error_t err = {0};

  c->last_read = chat__client_now(c);
  if (c->stopping && c->net != CHAT_NET_LOGOUT)
    return;
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, &err) < 0) {
    CHAT_WARN("ignoring a frame from the server: %s", err.message);
    return;
  }
  switch (c->net) {
  case CHAT_NET_WELCOME:
    if (m.type == CHAT_T_ERROR) { /* e.g. server_busy, then it closes */
      set_reason(c, m.code);
      if (!c->ever_ready)
        fail_start(c, "the server refused the connection", m.code, m.message);
      return;
    }
    if (m.type != CHAT_T_WELCOME)
      return;
    if (m.proto != CHAT_PROTO_VERSION)
      CHAT_WARN("server speaks protocol %lld", (long long)m.proto);
    c->heartbeat_ms = (int)(m.heartbeat * 1000);
    if (c->opts.do_register && !c->registered) {
      c->net = CHAT_NET_REGISTER;
      chat__net_request(c,
                        json_pack("{s:s,s:s,s:s}", "type", "register", "user",
                                  c->opts.user, "password", c->opts.password),
                        "register");
    } else {
      send_login(c);
    }
    return;
  case CHAT_NET_REGISTER:
    if (m.type == CHAT_T_OK ||
        (m.type == CHAT_T_ERROR && strcmp(m.code, "user_exists") == 0)) {
      c->registered = 1;
      send_login(c);
    } else if (m.type == CHAT_T_ERROR) {
      fail_start(c, "register failed", m.code, m.message);
    }
    return;
  case CHAT_NET_LOGIN:
    if (m.type == CHAT_T_OK && m.id) {
      c->net = CHAT_NET_CONTACTS;
      c->attempt = 0;
      chat__net_request(c, chat_msg_new(CHAT_T_CONTACTS), "login-contacts");
      chat__session_logged_in(c);
    } else if (m.type == CHAT_T_ERROR) {
      fail_start(c, "login failed", m.code, m.message);
    }
    return;
  default:
    chat__session_on_frame(c, &m);
  }
}

static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err) {
  CHAT_WARN("bad frame from the server: %s", err->message);
}

static void on_overflow(chat_conn_t *conn) {
  chat_client_t *c = conn->data;
  set_reason(c, "output overflow");
  chat_conn_abort(conn);
}

static void on_close(chat_conn_t *conn, int status) {
  chat_client_t *c = conn->data;
  chat_net_state_t was = c->net;
  int64_t delay;

  free(conn);
  c->srv = NULL;
  c->net = CHAT_NET_DOWN;
  if (status == UV_EOF)
    set_reason(c, "closed by the server");
  else if (status < 0)
    set_reason(c, uv_err_name(status));
  else
    set_reason(c, "closed");
  if (c->stopping) {
    chat__client_stop(c, c->exit_code); /* continues the shutdown */
    return;
  }
  if (!c->ever_ready) {
    char what[CHAT_HOST_MAX + 64];
    snprintf(what, sizeof(what), "cannot reach server %s:%d",
             c->opts.server_host, c->opts.server_port);
    fail_start(c, what, c->disconnect_reason, NULL);
    return;
  }
  if (was >= CHAT_NET_CONTACTS) {
    chat_outbox_server_down(c->ob, chat__client_now(c));
    chat__client_rearm(c);
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "disconnected",
                                 "reason", c->disconnect_reason));
  }
  delay = chat_backoff_delay(c->attempt++, randombytes_random());
  CHAT_INFO("reconnecting in %lld ms", (long long)delay);
  uv_timer_start(&c->reconnect_timer, on_reconnect_timer, (uint64_t)delay, 0);
}

void chat__net_drop(chat_client_t *c, const char *reason) {
  if (!c->srv)
    return;
  set_reason(c, reason);
  chat_conn_abort(c->srv);
}

void chat__net_logout(chat_client_t *c) {
  if (!c->srv)
    return;
  if (c->net >= CHAT_NET_CONTACTS && c->net != CHAT_NET_LOGOUT) {
    c->net = CHAT_NET_LOGOUT;
    chat__net_request(c, chat_msg_new(CHAT_T_LOGOUT), "logout");
  } else if (c->net != CHAT_NET_LOGOUT) {
    chat_conn_abort(c->srv);
  }
}

void chat__net_close(chat_client_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->reconnect_timer)) {
    uv_close((uv_handle_t *)&c->reconnect_timer, NULL);
    uv_close((uv_handle_t *)&c->hb_timer, NULL);
  }
  if (c->srv)
    chat_conn_abort(c->srv);
}
