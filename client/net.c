/* net.c -- the server connection over a socket: connect (to the address
 * of the --server list that servers.h chose), heartbeat, and reconnecting
 * when the connection is lost; a connect that gets no login answer in
 * CHAT_CLIENT_CONNECT_MS is given up. What travels on it is session.c's
 * business. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client_uv.h"

#define HB_TICK_MS 500

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len);
static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err);
static void on_overflow(chat_conn_t *conn);
static void on_close(chat_conn_t *conn, int status);

static const chat_conn_cbs_t srv_cbs = {on_frame, on_bad_frame, on_overflow,
                                        on_close};
static void connect_now(chat_client_uv_t *u);

/* A line longer than the server's max_frame breaks the contract, but
 * cutting the connection for it would only bring the same frame back after
 * the reconnect, forever (a held message is delivered at every login). So
 * it is reported and skipped, and the connection stays. The connection
 * itself reads lines up to CHAT_CLIENT_MAX_READ. */
static int on_line(chat_conn_t *conn, const char *line, size_t len) {
  chat_client_uv_t *u = conn->data;
  chat_client_t *c = &u->c;
  size_t limit = c->max_frame ? c->max_frame : CHAT_MAX_FRAME_DEFAULT;
  (void)line;
  if (len <= limit)
    return 0;
  u->last_read = chat__uv_now(u);
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
  chat_client_uv_t *u = ctx;
  int rc;
  if (!u->srv)
    return -ENOTCONN;
  rc = chat_conn_send(u->srv, obj);
  if (rc == 0)
    u->last_write = chat__uv_now(u);
  return rc;
}

void chat__net_env_abort(void *ctx) {
  chat_client_uv_t *u = ctx;
  if (u->srv)
    chat_conn_abort(u->srv);
}

/* "HOST:PORT" of the address connected to now, for people and logs. */
static const char *current_name(chat_client_uv_t *u) {
  return chat_servers_name(chat_servers_current(&u->c.servers), u->srv_name,
                           sizeof(u->srv_name));
}

void chat__net_reconnect(chat_client_uv_t *u) {
  if (u->c.stopping)
    return;
  chat_servers_reset_backoff(&u->c.servers);
  if (u->srv) { /* on_close reconnects (after the shortest backoff) */
    chat__session_drop(&u->c, "reconnect asked");
    return;
  }
  uv_timer_stop(&u->reconnect_timer);
  connect_now(u);
}

static void on_connected(chat_conn_t *conn, int status) {
  chat_client_uv_t *u = conn->data;
  chat_client_t *c = &u->c;
  const char *tls_err = chat_conn_tls_error(conn);
  if (status < 0) {
    /* A certificate that does not verify ends this attempt like a refused
     * connect: exit 1 before the first login, a reconnect after it. Never
     * plain TCP instead. */
    if (tls_err != NULL) {
      char why[sizeof(c->disconnect_reason)];
      snprintf(why, sizeof(why), "tls: %s", tls_err);
      chat__session_reason(c, why);
      if (c->ever_ready) /* before, the exit says it */
        CHAT_WARN("%s: %s", current_name(u), why);
    } else {
      chat__session_reason(c, uv_strerror(status));
    }
    return; /* on_close follows */
  }
  /* Where hole punches leave from (docs/NAT.md). */
  {
    int len = sizeof(u->srv_local);
    u->srv_local_ok = u->srv_reuse &&
                      uv_tcp_getsockname(&conn->tcp,
                                         (struct sockaddr *)&u->srv_local,
                                         &len) == 0;
  }
  CHAT_INFO("connected to %s", current_name(u));
  if (u->tls_ctx != NULL)
    chat__out_info(c, "connected to %s (%s, certificate verified)",
                   current_name(u), chat_conn_tls_version(conn));
  else
    chat__out_info(c, "connected to %s (not encrypted)", current_name(u));
  u->last_read = u->last_write = chat__uv_now(u);
  u->c.max_frame = CHAT_MAX_FRAME_DEFAULT;
  chat__session_connected(&u->c);
}

static void connect_now(chat_client_uv_t *u) {
  chat_client_t *c = &u->c;
  const chat_server_addr_t *to = chat_servers_current(&c->servers);
  const struct sockaddr_storage *sa = &u->server_addrs[c->servers.cur];
  chat_conn_t *conn = calloc(1, sizeof(*conn));
  chat_conn_opts_t opts = {CHAT_CLIENT_MAX_READ, 0};
  int rc;

  c->disconnect_reason[0] = '\0';
  if (!conn) {
    chat__client_stop(c, 1);
    return;
  }
  conn->data = u;
  if ((rc = chat_conn_init(u->io, conn, &srv_cbs, &opts)) < 0) {
    free(conn);
    CHAT_ERROR("cannot create a socket: %s", uv_strerror(rc));
    chat__client_stop(c, 1);
    return;
  }
  chat_conn_set_on_line(conn, on_line);
  /* A port that hole punches may share: bound (any port) with SO_REUSEADDR
   * and SO_REUSEPORT before the connect. Without it, no punching. */
  {
    struct sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    any.ss_family = sa->ss_family;
    u->srv_local_ok = 0;
    u->srv_reuse = chat_conn_bind_reuse(conn, (struct sockaddr *)&any) == 0;
    if (!u->srv_reuse)
      CHAT_DEBUG("server connection without SO_REUSEPORT: no hole punching");
  }
  /* The certificate must be for the node dialed now, not the first. */
  if (u->tls_ctx != NULL &&
      (rc = chat_conn_tls(conn, u->tls_ctx, to->host)) < 0) {
    CHAT_ERROR("cannot start TLS: %s", strerror(-rc));
    chat_conn_abort(conn);
    chat__client_stop(c, 1);
    return;
  }
  u->srv = conn;
  c->net = CHAT_NET_CONNECTING;
  u->connect_started = chat__uv_now(u);
  CHAT_DEBUG("connecting to %s", current_name(u));
  chat__out_info(c, "connecting to %s\xe2\x80\xa6", current_name(u));
  chat_conn_connect(conn, (const struct sockaddr *)sa, on_connected);
}

static void on_reconnect_timer(uv_timer_t *t) {
  chat_client_uv_t *u = t->data;
  if (!u->c.stopping && !u->srv)
    connect_now(u);
}

static void on_hb_timer(uv_timer_t *t) {
  chat_client_uv_t *u = t->data;
  chat_client_t *c = &u->c;
  uint64_t now = chat__uv_now(u);
  json_t *ping;

  if (!u->srv || c->net == CHAT_NET_LOGOUT)
    return;
  /* A server that accepts and then says nothing (or a connect that hangs)
   * is given up on quickly, with the reason, instead of after 3 missed
   * heartbeats. */
  if (c->net < CHAT_NET_READY &&
      now - u->connect_started >= CHAT_CLIENT_CONNECT_MS) {
    char why[96];
    snprintf(why, sizeof(why), "timeout: %s within %d s",
             c->net == CHAT_NET_CONNECTING ? "no connection"
             : c->net == CHAT_NET_WELCOME  ? "no welcome from the server"
                                           : "no answer to the login",
             CHAT_CLIENT_CONNECT_MS / 1000);
    chat__session_reason(c, why);
    chat_conn_abort(u->srv);
    return;
  }
  if (c->net < CHAT_NET_WELCOME)
    return;
  if (now - u->last_read >= 3 * (uint64_t)c->heartbeat_ms) {
    chat__session_reason(c, "timeout");
    chat_conn_abort(u->srv);
    return;
  }
  if (now - u->last_write >= (uint64_t)c->heartbeat_ms &&
      (ping = chat_msg_new(CHAT_T_PING))) {
    chat__session_send(c, ping);
    json_decref(ping);
  }
}

/* Every address of the list, once, before the loop runs (names block in
 * getaddrinfo). One that does not resolve is left out of the rotation with
 * a warning; when none does, the client exits 1 with the reason. */
static int resolve_all(chat_client_uv_t *u) {
  chat_servers_t *s = &u->c.servers;
  int rc = -EINVAL;
  for (int i = 0; i < s->n;) {
    rc = chat_addr_resolve(s->addr[i].host, s->addr[i].port,
                           &u->server_addrs[i]);
    if (rc == 0) {
      i++;
      continue;
    }
    if (s->n == 1) {
      fprintf(stderr, "chat-client: cannot resolve server %s: %s\n",
              s->addr[i].host, chat_strerror(rc));
      return rc;
    }
    CHAT_WARN("cannot resolve server %s: %s; leaving it out",
              s->addr[i].host, chat_strerror(rc));
    chat_servers_remove(s, i);
    memmove(&u->server_addrs[i], &u->server_addrs[i + 1],
            (size_t)(s->n - i) * sizeof(u->server_addrs[0]));
  }
  return 0;
}

int chat__net_start(chat_client_uv_t *u) {
  chat_client_t *c = &u->c;
  int rc = resolve_all(u);
  if (rc < 0)
    return rc;
  if (c->opts.tls) {
    char err[256];
    rc = chat_tls_client_ctx(c->opts.tls_ca, &u->tls_ctx, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "chat-client: tls: %s\n", err);
      return rc;
    }
  }
  uv_timer_start(&u->hb_timer, on_hb_timer, HB_TICK_MS, HB_TICK_MS);
  uv_unref((uv_handle_t *)&u->hb_timer);
  connect_now(u);
  return 0;
}

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len) {
  chat_client_uv_t *u = conn->data;
  u->last_read = chat__uv_now(u);
  chat__session_on_frame(&u->c, obj);
}

static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err) {
  CHAT_WARN("bad frame from the server: %s", err->message);
}

static void on_overflow(chat_conn_t *conn) {
  chat_client_uv_t *u = conn->data;
  chat__session_reason(&u->c, "output overflow");
  chat_conn_abort(conn);
}

static void on_close(chat_conn_t *conn, int status) {
  chat_client_uv_t *u = conn->data;
  chat_client_t *c = &u->c;
  int64_t delay;

  free(conn);
  u->srv = NULL;
  /* A line over CHAT_CLIENT_MAX_READ cut the connection: do not hurry back
   * for the same line (the backoff keeps growing across logins). */
  c->oversize_cut = status == -CHAT_E_FRAME_TOO_LARGE;
  if (!chat__session_closed(c, status))
    return;
  delay = chat__session_backoff(c); /* session.c logged where and when */
  uv_timer_start(&u->reconnect_timer, on_reconnect_timer, (uint64_t)delay, 0);
}

void chat__net_close(chat_client_uv_t *u) {
  if (!uv_is_closing((uv_handle_t *)&u->reconnect_timer)) {
    uv_close((uv_handle_t *)&u->reconnect_timer, NULL);
    uv_close((uv_handle_t *)&u->hb_timer, NULL);
  }
  if (u->srv)
    chat_conn_abort(u->srv);
}
