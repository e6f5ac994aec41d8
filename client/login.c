/* login.c -- the server session's life as the core sees it, whatever carries
 * it (net.c's socket, or a test's env): connected, welcome, register, login,
 * contacts (ready), logout, closed; and the one way frames go to the server.
 * What the server says once we are logged in is session.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "backoff.h"
#include "chat_log.h"
#include "client.h"

void chat__session_reason(chat_client_t *c, const char *reason) {
  if (!c->disconnect_reason[0])
    snprintf(c->disconnect_reason, sizeof(c->disconnect_reason), "%s", reason);
}

int chat__session_send(chat_client_t *c, const json_t *obj) {
  if (c->net == CHAT_NET_DOWN || c->net == CHAT_NET_CONNECTING)
    return -ENOTCONN;
  return c->env->server_send(c->env_ctx, obj);
}

int chat__session_request(chat_client_t *c, json_t *obj, const char *id) {
  int rc;
  if (!obj)
    return -ENOMEM;
  if (id)
    json_object_set_new(obj, "id", json_string(id));
  rc = chat__session_send(c, obj);
  json_decref(obj);
  return rc;
}

void chat__session_connected(chat_client_t *c) {
  c->disconnect_reason[0] = '\0';
  c->net = CHAT_NET_WELCOME;
  c->heartbeat_ms = 30000;
}

static void send_login(chat_client_t *c) {
  json_t *m = json_pack("{s:s,s:s,s:s}", "type", "login", "user", c->opts.user,
                        "password", c->opts.password);
  if (m && c->p2p_port > 0)
    json_object_set_new(m, "p2p_port", json_integer(c->p2p_port));
  if (m && c->opts.p2p_host[0])
    json_object_set_new(m, "p2p_host", json_string(c->opts.p2p_host));
  c->net = CHAT_NET_LOGIN;
  chat__session_request(c, m, "login");
}

/* Before the first login an error is final: exit 1 with the reason. */
static void fail_start(chat_client_t *c, const char *what, const char *code,
                       const char *message) {
  fprintf(stderr, "chat-client: %s: %s%s%s\n", what, code,
          message && *message ? ": " : "", message ? message : "");
  chat__client_stop(c, 1);
}

void chat__session_on_frame(chat_client_t *c, const json_t *obj) {
  chat_msg_t m;
  chat_error_t err = {0};

  if (c->stopping && c->net != CHAT_NET_LOGOUT)
    return;
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, &err) < 0) {
    CHAT_WARN("ignoring a frame from the server: %s", err.message);
    return;
  }
  switch (c->net) {
  case CHAT_NET_WELCOME:
    if (m.type == CHAT_T_ERROR) { /* e.g. server_busy, then it closes */
      chat__session_reason(c, m.code);
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
      chat__session_request(c,
                            json_pack("{s:s,s:s,s:s}", "type", "register",
                                      "user", c->opts.user, "password",
                                      c->opts.password),
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
      chat__session_request(c, chat_msg_new(CHAT_T_CONTACTS),
                            "login-contacts");
      chat__session_logged_in(c);
    } else if (m.type == CHAT_T_ERROR) {
      fail_start(c, "login failed", m.code, m.message);
    }
    return;
  case CHAT_NET_DOWN:
  case CHAT_NET_CONNECTING:
    return; /* nothing can be read before the connection is up */
  default:
    chat__session_on_event(c, &m);
  }
}

int chat__session_closed(chat_client_t *c, int status) {
  chat_net_state_t was = c->net;

  c->net = CHAT_NET_DOWN;
  if (status == UV_EOF)
    chat__session_reason(c, "closed by the server");
  else if (status < 0)
    chat__session_reason(c, uv_err_name(status));
  else
    chat__session_reason(c, "closed");
  if (c->stopping) {
    chat__client_stop(c, c->exit_code); /* continues the shutdown */
    return 0;
  }
  if (!c->ever_ready) {
    char what[CHAT_HOST_MAX + 64];
    snprintf(what, sizeof(what), "cannot reach server %s:%d",
             c->opts.server_host, c->opts.server_port);
    fail_start(c, what, c->disconnect_reason, NULL);
    return 0;
  }
  if (was >= CHAT_NET_CONTACTS) {
    chat_outbox_server_down(c->ob, (int64_t)chat__client_now(c));
    chat__client_rearm(c);
    chat__out_event(c, json_pack("{s:s,s:s}", "event", "disconnected",
                                 "reason", c->disconnect_reason));
  }
  return 1;
}

int64_t chat__session_backoff(chat_client_t *c) {
  return chat_backoff_delay(c->attempt++, randombytes_random());
}

void chat__session_drop(chat_client_t *c, const char *reason) {
  if (c->net == CHAT_NET_DOWN)
    return;
  chat__session_reason(c, reason);
  c->env->server_abort(c->env_ctx);
}

void chat__session_logout(chat_client_t *c) {
  if (c->net == CHAT_NET_DOWN)
    return;
  if (c->net >= CHAT_NET_CONTACTS && c->net != CHAT_NET_LOGOUT) {
    c->net = CHAT_NET_LOGOUT;
    chat__session_request(c, chat_msg_new(CHAT_T_LOGOUT), "logout");
  } else if (c->net != CHAT_NET_LOGOUT) {
    c->env->server_abort(c->env_ctx);
  }
}
