/* client_uv.h -- the real chat-client around its core: libuv sockets for the
 * server (net.c) and for direct links (peer_net.c), the terminal or script
 * on stdin (input.h), events printed on stdout (output.h), signals, and the
 * core's clock and deadlines (client_uv.c).
 *
 * After every loop turn that ran a callback, one prepare handle settles the
 * core and takes up what it asked for (input to stop, a reconnect, a new
 * prompt) and arms the one timer that wakes the core at its next deadline:
 * nothing else re-arms anything. */
#ifndef CHAT_CLIENT_UV_H
#define CHAT_CLIENT_UV_H

#include <uv.h>

#include "chat_conn.h"
#include "chat_tls.h"
#include "client.h"
#include "hist.h"

typedef struct chat_client_uv {
  chat_client_t c;             /* the core; the env's ctx is this struct */
  uv_loop_t *loop;
  chat_io_t *io;
  uv_prepare_t settle;         /* after events: see above */
  uv_timer_t wake;             /* the core's next deadline */
  uv_signal_t sigint, sigterm;
  int handles_closed;
  chat_hist_t *hist;           /* NULL: nothing is kept */

  /* the server connection (net.c) */
  chat_conn_t *srv;            /* NULL when there is none */
  chat_tls_ctx_t *tls_ctx;     /* --tls: every connect (reconnects too) */
  /* c.servers' addresses, resolved at start, in the same order */
  struct sockaddr_storage server_addrs[CHAT_SERVERS_MAX];
  char srv_name[CHAT_SERVERS_NAME_MAX]; /* the current one's, for lines */
  uint64_t last_read, last_write;
  uint64_t connect_started;    /* the current connect attempt began */
  uv_timer_t hb_timer, reconnect_timer;
  struct sockaddr_storage srv_local; /* the connection's own address... */
  int srv_reuse, srv_local_ok;       /* ...which punches may bind too */

  /* the listener for direct links and the TLS context of every link,
   * accepted or dialed (peer_net.c): this process's own key */
  uv_tcp_t listener;
  int listening;
  chat_tls_ctx_t *peer_tls;
} chat_client_uv_t;

/* The real client. Returns 0 or a negative error. */
int chat_client_uv_init(chat_client_uv_t *u, uv_loop_t *loop,
                        const chat_client_opts_t *opts);
/* Runs until the client stops; returns the exit code. */
int chat_client_uv_run(chat_client_uv_t *u);
void chat_client_uv_free(chat_client_uv_t *u);
/* The env's clock: uv_now. */
uint64_t chat__uv_now(chat_client_uv_t *u);

/* net.c: the server connection over a socket, with heartbeat, connect
 * timeout and reconnect (the env's server_send / server_abort). */
int chat__net_start(chat_client_uv_t *u); /* first connect; < 0: exit 1 */
void chat__net_close(chat_client_uv_t *u);
/* /reconnect: drop the connection (if any) and connect again now. */
void chat__net_reconnect(chat_client_uv_t *u);
int chat__net_env_send(void *ctx, const json_t *obj);
void chat__net_env_abort(void *ctx);

/* peer_net.c: the listener and links over sockets (the env's peer_*). */
/* A fresh key for direct links (PROTOCOL.md 7) in u->peer_tls, announced as
 * u->c.key. 0, or < 0 with the reason on stderr. */
int chat__peer_tls_start(chat_client_uv_t *u);
int chat__peer_listen(chat_client_uv_t *u);
int chat__peer_env_dial(void *ctx, chat_peer_t *p, const char *host, int port,
                        int flags, void **link);
/* The machine's own addresses for login's lan (docs/NAT.md). */
void chat__peer_env_lan(chat_client_uv_t *u);
int chat__peer_env_send(void *ctx, void *link, const json_t *obj);
void chat__peer_env_close(void *ctx, void *link, int graceful);
void chat__peer_env_pause(void *ctx, void *link);
void chat__peer_env_resume(void *ctx, void *link);
int chat__peer_env_key(void *ctx, void *link, char hex[CHAT_KEY_LEN + 1]);

#endif /* CHAT_CLIENT_UV_H */
