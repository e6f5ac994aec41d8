/* net.h -- the only libuv-facing part of the server: the listeners (plain
 * and, with --tls-listen, TLS), one chat_conn_t per client backing its
 * session's sink, the heartbeat sweep timer and the shutdown signals. */
#ifndef CHAT_NET_H
#define CHAT_NET_H

#include <sys/socket.h>
#include <uv.h>

#include "chat_tls.h"
#include "srv.h"

typedef struct chat__net chat__net_t;

/* Binds and listens on addr, serving srv. *out is freed by chat__net_free().
 * Returns 0 or a libuv error (with *out NULL). */
int chat__net_start(uv_loop_t *loop, chat__srv_t *srv,
                    const struct sockaddr *addr, chat__net_t **out);
/* Also listens for TLS on addr with the server context ctx, which net owns
 * from this call on (also when it fails). Connections accepted there are
 * sessions like the others: one --max-clients count over both listeners,
 * the same timeouts (a handshake that stalls is an idle connection). Call
 * once, after chat__net_start. Returns 0 or a libuv error. */
int chat__net_listen_tls(chat__net_t *net, const struct sockaddr *addr,
                         chat_tls_ctx_t *ctx);
/* The address actually bound (port 0 resolved) as HOST:PORT, of the plain
 * listener (tls 0) or the TLS one (tls 1). */
int chat__net_address(chat__net_t *net, int tls, char *buf, size_t len);
/* Stops accepting and ends every session (their unacked messages are
 * written); connections close on their own. Idempotent. Also run on
 * SIGINT/SIGTERM, after which on_stop is called (may be NULL). */
void chat__net_stop(chat__net_t *net);
void chat__net_on_stop(chat__net_t *net, void (*cb)(void *arg), void *arg);
/* Closes the remaining handles; run the loop afterwards to finish. */
void chat__net_free(chat__net_t *net);

#endif /* CHAT_NET_H */
