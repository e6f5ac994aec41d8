/* server.h -- the chat-server program as a function: open the store, load,
 * listen, serve until SIGINT/SIGTERM, shut down cleanly. */
#ifndef CHAT_SERVER_H
#define CHAT_SERVER_H

#include "srv.h"

typedef struct chat_server_opts {
  const char *listen; /* HOST:PORT */
  /* --tls-listen HOST:PORT with its PEM chain and key; all NULL or none. */
  const char *tls_listen, *tls_cert, *tls_key;
  const char *db;     /* path, ":memory:" or redis://HOST:PORT[/N] */
  int db_unsafe;      /* Redis: start even when it could lose writes */
  const char *node;   /* this node's name (cluster mode), or NULL */
  unsigned db_max_mb; /* cap on the database file, 0 = none */
  chat_srv_config_t cfg;
} chat_server_opts_t;

/* Runs the server to completion. Returns 0 after a clean shutdown, or a
 * negative error when it could not start (already logged). */
int chat_server_run(const chat_server_opts_t *opts);

#endif /* CHAT_SERVER_H */
