/* peer_net.c -- direct links over sockets: the listener that peers dial,
 * the links we dial, and each link's chat_conn_t (the real env's peer_*
 * functions). Every link speaks TLS 1.3 with this process's peer context
 * (common/chat_tls.h): a fresh Ed25519 key in a self-signed certificate,
 * both ends present theirs, and peer.c pins the other end's key to the one
 * the server vouched for. What travels on them is peer.c's business. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client_uv.h"

/* One link's socket. p is NULL for a link peer.c refused at once. */
typedef struct peer_conn {
  chat_conn_t conn; /* conn.data points to this */
  chat_peer_t *p;
} peer_conn_t;

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len) {
  peer_conn_t *w = conn->data;
  if (w->p)
    chat__peer_on_frame(w->p, obj);
}

static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err) {
  peer_conn_t *w = conn->data;
  if (w->p)
    chat__peer_on_bad_frame(w->p, err);
}

static void on_overflow(chat_conn_t *conn) { chat_conn_abort(conn); }

static void on_close(chat_conn_t *conn, int status) {
  peer_conn_t *w = conn->data;
  if (w->p)
    chat__peer_closed(w->p);
  free(w);
}

static const chat_conn_cbs_t peer_cbs = {on_frame, on_bad_frame, on_overflow,
                                         on_close};

static peer_conn_t *conn_new(chat_client_uv_t *u) {
  peer_conn_t *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->conn.data = w;
  if (chat_conn_init(u->io, &w->conn, &peer_cbs, NULL) < 0) {
    free(w);
    return NULL;
  }
  if (chat_conn_tls(&w->conn, u->peer_tls, NULL) < 0) {
    chat_conn_abort(&w->conn); /* on_close frees it; w->p is NULL */
    return NULL;
  }
  return w;
}

int chat__peer_tls_start(chat_client_uv_t *u) {
  char err[256] = "";
  int rc = chat_tls_peer_ctx(&u->peer_tls, err, sizeof(err));
  if (rc == 0)
    rc = chat_tls_ctx_key(u->peer_tls, u->c.key);
  if (rc < 0) {
    fprintf(stderr, "chat-client: cannot make a key for direct links: %s\n",
            err[0] ? err : chat_strerror(rc));
    u->c.key[0] = '\0';
    return rc;
  }
  CHAT_DEBUG("direct-link key %s", u->c.key);
  return 0;
}

/* ---- the env's peer functions ------------------------------------------- */

/* After the TLS handshake (status 0), or its failure (UV_EPROTO). */
static void on_dialed(chat_conn_t *conn, int status) {
  peer_conn_t *w = conn->data;
  if (!w->p)
    return;
  if (status == UV_EPROTO && chat_conn_tls_error(conn))
    CHAT_INFO("dialing %s: TLS handshake failed: %s", chat__peer_name(w->p),
              chat_conn_tls_error(conn));
  else if (status < 0)
    CHAT_INFO("dialing %s failed: %s", chat__peer_name(w->p),
              uv_strerror(status));
  chat__peer_dialed(w->p, status);
}

/* A dial's TCP connection is up, its TLS handshake starts. */
static void on_tcp_up(chat_conn_t *conn) {
  peer_conn_t *w = conn->data;
  if (w->p)
    chat__peer_tcp_up(w->p);
}

int chat__peer_env_dial(void *ctx, chat_peer_t *p, const char *host, int port,
                        int flags, void **link) {
  chat_client_uv_t *u = ctx;
  struct sockaddr_storage ss;
  peer_conn_t *w;
  int rc;

  /* A punch leaves from the server connection's address and port, which
   * the NAT has mapped already (docs/NAT.md). */
  if ((flags & CHAT_DIAL_PUNCH) && (!u->srv || !u->srv_local_ok))
    return -ENOTCONN;
  if (!(w = conn_new(u)))
    return -ENOMEM;
  w->p = p;
  *link = w;
  if (flags & CHAT_DIAL_PUNCH) {
    rc = chat_conn_bind_reuse(&w->conn, (struct sockaddr *)&u->srv_local);
    if (rc < 0) {
      CHAT_INFO("cannot punch to %s from the server port: %s",
                chat__peer_name(p), uv_strerror(rc));
      chat_conn_abort(&w->conn); /* on_close, on a later turn */
      return 0;
    }
  }
  if (flags & CHAT_DIAL_TLS_ACCEPT)
    chat_conn_tls_accepting(&w->conn);
  /* Hosts come from the server: numeric, unless a peer set --p2p-host to a
   * name, which is not resolved here (that would block the loop). */
  if (chat_addr_resolve_numeric(host, port, &ss) != 0) {
    CHAT_WARN("cannot dial %s at '%s': not a numeric address",
              chat__peer_name(p), host);
    chat_conn_abort(&w->conn); /* on_close, on a later turn, says refused */
    return 0;
  }
  chat_conn_on_tcp_up(&w->conn, on_tcp_up);
  chat_conn_connect(&w->conn, (struct sockaddr *)&ss, on_dialed);
  return 0;
}

int chat__peer_env_send(void *ctx, void *link, const json_t *obj) {
  peer_conn_t *w = link;
  return chat_conn_send(&w->conn, obj);
}

void chat__peer_env_close(void *ctx, void *link, int graceful) {
  peer_conn_t *w = link;
  if (graceful)
    chat_conn_close(&w->conn);
  else
    chat_conn_abort(&w->conn);
}

int chat__peer_env_key(void *ctx, void *link, char hex[CHAT_KEY_LEN + 1]) {
  peer_conn_t *w = link;
  return chat_conn_tls_peer_key(&w->conn, hex);
}

void chat__peer_env_pause(void *ctx, void *link) {
  peer_conn_t *w = link;
  chat_conn_pause(&w->conn);
}

void chat__peer_env_resume(void *ctx, void *link) {
  peer_conn_t *w = link;
  chat_conn_resume(&w->conn);
}

/* ---- addresses ---------------------------------------------------------- */

/* Our own addresses, for a peer behind the same NAT: every interface's
 * but loopback and link-local, at most CHAT_MAX_LAN, IPv4 first. */
void chat__peer_env_lan(chat_client_uv_t *u) {
  uv_interface_address_t *ifs;
  int n, pass, i;
  chat_client_t *c = &u->c;

  c->n_lan = 0;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return;
  for (pass = 0; pass < 2; pass++)
    for (i = 0; i < n && c->n_lan < CHAT_MAX_LAN; i++) {
      const struct sockaddr *sa = (const struct sockaddr *)&ifs[i].address;
      char ip[CHAT_IP_MAX];
      if (ifs[i].is_internal || sa->sa_family != (pass ? AF_INET6 : AF_INET))
        continue;
      if (sa->sa_family == AF_INET6 &&
          IN6_IS_ADDR_LINKLOCAL(&ifs[i].address.address6.sin6_addr))
        continue;
      if ((sa->sa_family == AF_INET
               ? uv_ip4_name(&ifs[i].address.address4, ip, sizeof(ip))
               : uv_ip6_name(&ifs[i].address.address6, ip, sizeof(ip))) != 0 ||
          !chat_ip_valid(ip))
        continue;
      snprintf(c->lan[c->n_lan++], CHAT_IP_MAX, "%s", ip);
    }
  uv_free_interface_addresses(ifs, n);
}

/* ---- listening ---------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
  chat_client_uv_t *u = server->data;
  peer_conn_t *w;

  if (status < 0 || u->c.stopping)
    return;
  if (!(w = conn_new(u)))
    return;
  if (chat_conn_accept(&w->conn, server) < 0) {
    chat_conn_abort(&w->conn);
    return;
  }
  if (!(w->p = chat__peer_accepted(&u->c, w)))
    chat_conn_abort(&w->conn);
}

int chat__peer_listen(chat_client_uv_t *u) {
  chat_client_t *c = &u->c;
  struct sockaddr_storage ss;
  struct sockaddr_storage bound;
  int len = sizeof(bound), rc;
  char host[64];
  int port;

  uv_tcp_init(u->loop, &u->listener);
  u->listener.data = u;
  u->listening = 1;
  /* Dual-stack where IPv6 exists, plain IPv4 otherwise. */
  uv_ip6_addr("::", c->opts.p2p_port, (struct sockaddr_in6 *)&ss);
  rc = uv_tcp_bind(&u->listener, (struct sockaddr *)&ss, 0);
  if (rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) {
    uv_ip4_addr("0.0.0.0", c->opts.p2p_port, (struct sockaddr_in *)&ss);
    rc = uv_tcp_bind(&u->listener, (struct sockaddr *)&ss, 0);
  }
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&u->listener, 128, on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&u->listener, (struct sockaddr *)&bound, &len);
  if (rc == 0)
    rc = chat_addr_host((struct sockaddr *)&bound, host, sizeof(host), &port);
  if (rc < 0) {
    fprintf(stderr, "chat-client: cannot listen for direct connections on "
                    "port %d: %s\n", c->opts.p2p_port, chat_strerror(rc));
    return rc;
  }
  c->p2p_port = port;
  return 0;
}
