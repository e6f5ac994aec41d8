/* net.c -- listeners, connections, heartbeat sweep and signals.
 *
 * A client is one net_client_t: its chat_conn_t and its session. The memory
 * is freed when the session's last reference goes (release), which is never
 * before the connection's on_close, because the transport's own reference is
 * dropped there. */
#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "chat_addr.h"
#include "chat_conn.h"
#include "chat_log.h"

struct chat__net {
  uv_loop_t *loop;
  chat__srv_t *srv;
  chat_io_t *io;
  uv_tcp_t listener;
  uv_tcp_t tls_listener; /* open when tls_ctx is set */
  chat_tls_ctx_t *tls_ctx;
  uv_timer_t sweep;
  uv_timer_t relayed;  /* writes relayed messages left unacked */
  uv_signal_t sigint, sigterm;
  chat_conn_opts_t opts;
  size_t nclients;
  int stopped;
  int handles;        /* open handles */
  int free_requested; /* chat__net_free was called: free when handles close */
  void (*on_stop)(void *arg);
  void *on_stop_arg;
};

typedef struct net_client {
  chat_conn_t conn;
  chat__net_t *net;
  chat__session_t *s; /* NULL for a connection turned away (server_busy) */
} net_client_t;

/* ---- The session's sink ---------------------------------------------------
 */

static int sink_send(void *ctx, const json_t *obj) {
  net_client_t *nc = ctx;
  return chat_conn_send(&nc->conn, obj);
}

static int sink_send_line(void *ctx, const char *line, size_t len) {
  net_client_t *nc = ctx;
  return chat_conn_send_line(&nc->conn, line, len);
}

static void sink_close(void *ctx) {
  net_client_t *nc = ctx;
  /* Before the TLS handshake is over nothing queued can reach the client
   * anyway, and one that stalls there (closed by the idle sweep) must not
   * keep its slot for the close timeout on top of the idle bound. */
  if (chat_conn_is_tls(&nc->conn) && chat_conn_tls_version(&nc->conn) == NULL)
    chat_conn_abort(&nc->conn);
  else
    chat_conn_close(&nc->conn);
}

static void sink_pause(void *ctx) {
  net_client_t *nc = ctx;
  chat_conn_pause(&nc->conn);
}

static void sink_resume(void *ctx) {
  net_client_t *nc = ctx;
  chat_conn_resume(&nc->conn);
}

static void sink_release(void *ctx) { free(ctx); }

/* The kernel keeps a smoothed RTT for every TCP connection: no ping of our
 * own is needed to time a hole punch. */
static int sink_rtt_ms(void *ctx) {
  net_client_t *nc = ctx;
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  uv_os_fd_t fd;

  if (uv_fileno((uv_handle_t *)&nc->conn.tcp, &fd) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return -1;
  return (int)(ti.tcpi_rtt / 1000);
}

static const chat__sink_t sink = {sink_send,  sink_send_line, sink_close,
                                  sink_pause, sink_resume,    sink_release,
                                  sink_rtt_ms};

/* ---- Connection callbacks --------------------------------------------------
 */

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len) {
  net_client_t *nc = c->data;
  if (nc->s)
    chat__srv_on_frame(nc->net->srv, nc->s, obj);
}

static int on_line(chat_conn_t *c, const char *line, size_t len) {
  net_client_t *nc = c->data;
  return nc->s ? chat__srv_on_fast_line(nc->net->srv, nc->s, line, len) : 0;
}

static void on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  net_client_t *nc = c->data;
  if (nc->s)
    chat__srv_on_bad_frame(nc->net->srv, nc->s, err);
}

static void on_overflow(chat_conn_t *c) {
  net_client_t *nc = c->data;
  /* It does not read: what is queued would not go out anyway. */
  chat_conn_abort(c);
  if (nc->s) {
    CHAT_INFO("%s: output over %zu bytes, ending the session",
              nc->s->user ? nc->s->user->name : nc->s->host,
              nc->net->opts.max_output);
    chat__srv_session_end(nc->net->srv, nc->s, "output over the cap");
  }
}

static void on_close(chat_conn_t *c, int status) {
  net_client_t *nc = c->data;
  chat__session_t *s = nc->s;
  const char *tls_err = chat_conn_tls_error(c);
  if (tls_err != NULL)
    CHAT_INFO("%s: TLS handshake failed: %s", s ? s->host : "connection",
              tls_err);
  if (s == NULL) {
    free(nc);
    return;
  }
  nc->net->nclients--;
  chat__srv_session_end(nc->net->srv, s,
                        status == UV_EOF || status == 0 ? "closed"
                                                        : uv_strerror(status));
  chat__session_unref(s); /* may free nc */
}

static const chat_conn_cbs_t conn_cbs = {on_frame, on_bad_frame, on_overflow,
                                         on_close};

/* ---- Listener ---------------------------------------------------------------
 */

static void on_connection(uv_stream_t *server, int status) {
  chat__net_t *net = server->data;
  if (status < 0) {
    CHAT_WARN("accept: %s", uv_strerror(status));
    return;
  }
  net_client_t *nc = calloc(1, sizeof(*nc));
  if (nc == NULL) {
    CHAT_ERROR("accept: out of memory");
    return;
  }
  nc->net = net;
  int r = chat_conn_init(net->io, &nc->conn, &conn_cbs, &net->opts);
  if (r < 0) {
    CHAT_ERROR("accept: %s", uv_strerror(r));
    free(nc);
    return;
  }
  nc->conn.data = nc;
  chat_conn_set_on_line(&nc->conn, on_line);
  if (server == (uv_stream_t *)&net->tls_listener &&
      (r = chat_conn_tls(&nc->conn, net->tls_ctx, NULL)) < 0) {
    CHAT_ERROR("accept: %s", strerror(-r));
    chat_conn_abort(&nc->conn); /* on_close frees nc */
    return;
  }
  r = chat_conn_accept(&nc->conn, server);
  if (r < 0) {
    CHAT_WARN("accept: %s", uv_strerror(r));
    chat_conn_abort(&nc->conn); /* on_close frees nc */
    return;
  }
  if (net->stopped || net->nclients >= (size_t)net->srv->cfg.max_clients) {
    json_t *e = chat_reply_error(NULL, CHAT_E_SERVER_BUSY,
                                 "connection limit reached");
    chat_conn_send(&nc->conn, e);
    json_decref(e);
    chat_conn_close(&nc->conn);
    return;
  }
  char host[CHAT_HOST_MAX];
  int port;
  if (chat_conn_peer(&nc->conn, host, sizeof(host), &port) < 0)
    host[0] = '\0';
  nc->s = chat__srv_session_new(net->srv, &sink, nc, host);
  if (nc->s == NULL) {
    chat_conn_abort(&nc->conn);
    return;
  }
  nc->s->obs_port = port > 0 && port <= 65535 ? (uint16_t)port : 0;
  net->nclients++;
  CHAT_DEBUG("connection from %s:%d", host, port);
}

static void on_sweep(uv_timer_t *t) {
  chat__net_t *net = t->data;
  chat__srv_t *srv = net->srv;
  /* Blank lines count as reads too (PROTOCOL.md: the server closes a
   * connection it has read nothing from); frames never get here for them,
   * so take the connection's clock of complete lines. Every session of srv
   * has this file's sink. */
  for (chat__session_t *s = srv->sessions.next; s != &srv->sessions;
       s = s->next) {
    net_client_t *nc = s->ctx;
    chat__srv_on_line(srv, s, nc->conn.last_line_ms);
  }
  chat__srv_sweep(srv, uv_now(net->loop));
}

/* Often, so that nothing answered relayed stays unwritten much longer than
 * CHAT_RELAY_WRITE_MS; cheap, since it only looks at the oldest one. */
#define RELAYED_TICK_MS 100

static void on_relayed_tick(uv_timer_t *t) {
  chat__net_t *net = t->data;
  chat__srv_write_relayed(net->srv, uv_now(net->loop), CHAT_RELAY_WRITE_MS);
}

static void on_signal(uv_signal_t *h, int signum) {
  chat__net_t *net = h->data;
  CHAT_INFO("signal %d: shutting down", signum);
  chat__net_stop(net);
  if (net->on_stop)
    net->on_stop(net->on_stop_arg);
}

int chat__net_start(uv_loop_t *loop, chat__srv_t *srv,
                    const struct sockaddr *addr, chat__net_t **out) {
  *out = NULL;
  chat__net_t *net = calloc(1, sizeof(*net));
  if (net == NULL)
    return UV_ENOMEM;
  net->loop = loop;
  net->srv = srv;
  net->opts.max_frame = srv->cfg.max_frame;
  net->opts.max_output = srv->cfg.max_output;
  int r = chat_io_new(loop, &net->io);
  if (r < 0) {
    free(net);
    return r;
  }
  uv_tcp_init(loop, &net->listener);
  uv_timer_init(loop, &net->sweep);
  uv_timer_init(loop, &net->relayed);
  uv_signal_init(loop, &net->sigint);
  uv_signal_init(loop, &net->sigterm);
  net->handles = 5;
  net->listener.data = net->sweep.data = net->sigint.data =
      net->sigterm.data = net->relayed.data = net;
  *out = net;
  if ((r = uv_tcp_bind(&net->listener, addr, 0)) < 0 ||
      (r = uv_listen((uv_stream_t *)&net->listener, 511, on_connection)) < 0)
    return r;
  /* Often enough that the shorter of the two deadlines is kept within a
   * quarter of itself. */
  uint64_t every = (uint64_t)srv->cfg.heartbeat * 1000 / 4;
  if (srv->cfg.login_timeout > 0 &&
      (uint64_t)srv->cfg.login_timeout * 1000 / 4 < every)
    every = (uint64_t)srv->cfg.login_timeout * 1000 / 4;
  if (every < 100)
    every = 100;
  if (every > 5000)
    every = 5000;
  uv_timer_start(&net->sweep, on_sweep, every, every);
  uv_timer_start(&net->relayed, on_relayed_tick, RELAYED_TICK_MS,
                 RELAYED_TICK_MS);
  uv_signal_start(&net->sigint, on_signal, SIGINT);
  uv_signal_start(&net->sigterm, on_signal, SIGTERM);
  return 0;
}

int chat__net_listen_tls(chat__net_t *net, const struct sockaddr *addr,
                         chat_tls_ctx_t *ctx) {
  int r;
  if (net->tls_ctx != NULL || net->stopped) {
    chat_tls_ctx_free(ctx);
    return UV_EINVAL;
  }
  net->tls_ctx = ctx;
  uv_tcp_init(net->loop, &net->tls_listener);
  net->tls_listener.data = net;
  net->handles++;
  if ((r = uv_tcp_bind(&net->tls_listener, addr, 0)) < 0 ||
      (r = uv_listen((uv_stream_t *)&net->tls_listener, 511,
                     on_connection)) < 0)
    return r;
  return 0;
}

int chat__net_address(chat__net_t *net, int tls, char *buf, size_t len) {
  struct sockaddr_storage ss;
  int n = sizeof(ss);
  if (tls && net->tls_ctx == NULL)
    return UV_EINVAL;
  int r = uv_tcp_getsockname(tls ? &net->tls_listener : &net->listener,
                             (struct sockaddr *)&ss, &n);
  if (r < 0)
    return r;
  return chat_addr_format((struct sockaddr *)&ss, buf, len);
}

void chat__net_on_stop(chat__net_t *net, void (*cb)(void *arg), void *arg) {
  net->on_stop = cb;
  net->on_stop_arg = arg;
}

static void on_handle_closed(uv_handle_t *h) {
  chat__net_t *net = h->data;
  if (--net->handles == 0 && net->free_requested)
    free(net);
}

/* Stops accepting and closes the handles; 0 if that was done already. */
static int close_handles(chat__net_t *net) {
  if (net->stopped)
    return 0;
  net->stopped = 1;
  uv_close((uv_handle_t *)&net->listener, on_handle_closed);
  if (net->tls_ctx != NULL)
    uv_close((uv_handle_t *)&net->tls_listener, on_handle_closed);
  uv_close((uv_handle_t *)&net->sweep, on_handle_closed);
  uv_close((uv_handle_t *)&net->relayed, on_handle_closed);
  uv_close((uv_handle_t *)&net->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&net->sigterm, on_handle_closed);
  return 1;
}

void chat__net_stop(chat__net_t *net) {
  if (close_handles(net))
    chat__srv_end_all(net->srv);
}

void chat__net_free(chat__net_t *net) {
  if (net == NULL)
    return;
  chat_io_free(net->io);
  close_handles(net);
  /* Connections still closing hold their own references to it. */
  chat_tls_ctx_free(net->tls_ctx);
  net->tls_ctx = NULL;
  net->free_requested = 1;
  if (net->handles == 0)
    free(net);
}
