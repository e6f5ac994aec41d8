/* server.h -- the chat-server program as a function: open the store, load,
 * listen, serve until SIGINT/SIGTERM, shut down cleanly.
 *
 * The server's only public header: main.c needs nothing else. Every other
 * header in server/ is private to it, and its names carry chat__ (as
 * common/'s private parts do); unit tests include them to reach the
 * socket-free modules. */
#ifndef CHAT_SERVER_H
#define CHAT_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef enum chat_server_hash_cost {
  CHAT_HASH_MIN = 0,      /* libsodium's minimum: for tests only */
  CHAT_HASH_INTERACTIVE,  /* OPSLIMIT/MEMLIMIT_INTERACTIVE, the default */
  CHAT_HASH_MODERATE
} chat_server_hash_cost_t;

/* Parses "min", "interactive" or "moderate". 0 or -EINVAL. */
int chat_server_hash_cost_parse(const char *name,
                                chat_server_hash_cost_t *cost);

typedef struct chat_server_config {
  int heartbeat;           /* seconds, in welcome; idle cut-off is 3x */
  size_t max_frame;
  size_t max_output;
  int max_clients;
  uint32_t rate_limit;     /* frames/s per connection, 0 = off */
  chat_server_hash_cost_t hash_cost;
  uint32_t offline_quota;  /* held messages per recipient, 0 = no limit */
  int login_timeout;       /* seconds until a connection must be logged in */
} chat_server_config_t;

/* Fills the defaults of CLI.md. */
void chat_server_config_default(chat_server_config_t *cfg);

typedef struct chat_server_opts {
  const char *listen; /* HOST:PORT */
  /* --tls-listen HOST:PORT with its PEM chain and key; all NULL or none. */
  const char *tls_listen, *tls_cert, *tls_key;
  const char *db;     /* path, ":memory:" or redis://HOST:PORT[/N] */
  int db_unsafe;      /* Redis: start even when it could lose writes */
  const char *node;   /* this node's name (cluster mode), or NULL */
  unsigned db_max_mb; /* cap on the database file, 0 = none */
  chat_server_config_t cfg;
} chat_server_opts_t;

/* Runs the server to completion. Returns 0 after a clean shutdown, or a
 * negative error when it could not start (already logged). */
int chat_server_run(const chat_server_opts_t *opts);

#endif /* CHAT_SERVER_H */
