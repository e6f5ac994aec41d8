/* net.h -- the only libuv-facing part of the server: the listener, one
 * chat_conn_t per client backing its session's sink, the heartbeat sweep
 * timer and the shutdown signals. */
#ifndef CHAT_NET_H
#define CHAT_NET_H

#include <sys/socket.h>
#include <uv.h>

#include "srv.h"

typedef struct chat_net chat_net_t;

/* Binds and listens on addr, serving srv. *out is freed by chat_net_free().
 * Returns 0 or a libuv error (with *out NULL). */
int chat_net_start(uv_loop_t *loop, chat_srv_t *srv,
                   const struct sockaddr *addr, chat_net_t **out);
/* The address actually bound (port 0 resolved) as HOST:PORT. */
int chat_net_address(chat_net_t *net, char *buf, size_t len);
/* Stops accepting and ends every session (their unacked messages are
 * written); connections close on their own. Idempotent. Also run on
 * SIGINT/SIGTERM, after which on_stop is called (may be NULL). */
void chat_net_stop(chat_net_t *net);
void chat_net_on_stop(chat_net_t *net, void (*cb)(void *arg), void *arg);
/* Closes the remaining handles; run the loop afterwards to finish. */
void chat_net_free(chat_net_t *net);

#endif /* CHAT_NET_H */
