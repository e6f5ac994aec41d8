/* server.c -- start-up and shutdown: store, engine, hash pool, listener; on
 * a signal, end the sessions, drop the queued password hashes, commit
 * everything, close the store. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "chat_addr.h"
#include "chat_log.h"
#include "net.h"

/* Each client needs a descriptor; leave room for the store and the loop. */
#define FD_RESERVE 64

static void raise_fd_limit(int max_clients) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  rlim_t want = (rlim_t)max_clients + FD_RESERVE;
  if (rl.rlim_cur >= want)
    return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                    ? want
                    : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
    CHAT_WARN("open-file limit %llu is below --max-clients %d + %d",
              (unsigned long long)rl.rlim_cur, max_clients, FD_RESERVE);
}

typedef struct stop_ctx {
  chat_engine_t *engine;
  chat_hash_pool_t *hashes;
} stop_ctx_t;

static void on_stop(void *arg) {
  stop_ctx_t *stop = arg;
  /* Queued logins and registrations belong to connections being closed:
   * none is hashed (their sessions cancelled them as they ended; this also
   * catches any left), so the exit waits at most for the running ones. */
  chat_hash_pool_stop(stop->hashes);
  /* Sessions have ended and written their unacked messages: commit now so
   * they are durable before the last connections finish closing. */
  int r = chat_engine_flush_sync(stop->engine);
  if (r < 0)
    CHAT_ERROR("final commit failed: %s", chat_strerror(r));
}

int chat_server_run(const chat_server_opts_t *opts) {
  char host[CHAT_HOST_MAX];
  int port;
  struct sockaddr_storage addr;
  int r = chat_addr_split(opts->listen, host, &port);
  if (r == 0)
    r = chat_addr_resolve(host, port, &addr);
  if (r < 0) {
    CHAT_ERROR("bad listen address '%s': %s", opts->listen, chat_strerror(r));
    return r;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit(opts->cfg.max_clients);

  char errbuf[256] = "";
  chat_store_t *store;
  r = chat_store_open(opts->db, &store, errbuf, sizeof(errbuf));
  if (r < 0) {
    CHAT_ERROR("cannot open database %s: %s", opts->db, errbuf);
    return r;
  }
  if (opts->db_max_mb > 0) {
    r = chat_store_limit_bytes(store, (uint64_t)opts->db_max_mb << 20);
    if (r < 0) {
      CHAT_ERROR("cannot cap database %s at %u MB", opts->db,
                 opts->db_max_mb);
      chat_store_close(store);
      return r;
    }
  }
  uv_loop_t *loop = uv_default_loop();
  chat_srv_t *srv = malloc(sizeof(*srv));
  chat_engine_t *engine = NULL;
  chat_hash_pool_t *hashes = NULL;
  if (srv == NULL || (r = chat_engine_sqlite_new(loop, store, &engine)) < 0 ||
      (r = chat_hash_pool_new(loop, 0, CHAT_HASH_QUEUE_DEFAULT, &hashes)) <
          0) {
    CHAT_ERROR("start-up: out of memory");
    if (engine != NULL)
      chat_engine_free(engine); /* closes the store */
    else
      chat_store_close(store);
    uv_run(loop, UV_RUN_DEFAULT);
    free(srv);
    return -ENOMEM;
  }
  r = chat_srv_init(srv, loop, &opts->cfg, engine);
  if (r < 0) {
    CHAT_ERROR("opening %s: %s", opts->db, chat_strerror(r));
    chat_hash_pool_free(hashes);
    chat_engine_free(engine);
    uv_run(loop, UV_RUN_DEFAULT);
    free(srv);
    return r;
  }
  srv->hashes = hashes;
  stop_ctx_t stop = {engine, hashes};
  chat_net_t *net;
  r = chat_net_start(loop, srv, (struct sockaddr *)&addr, &net);
  if (r < 0) {
    CHAT_ERROR("listen on %s: %s", opts->listen, uv_strerror(r));
  } else {
    char where[CHAT_HOST_MAX + 16];
    if (chat_net_address(net, where, sizeof(where)) < 0)
      snprintf(where, sizeof(where), "%s", opts->listen);
    chat_log_write(CHAT_LOG_INFO, 1, "listening on %s", where);
    chat_net_on_stop(net, on_stop, &stop);
    uv_run(loop, UV_RUN_DEFAULT);
    CHAT_INFO("stopped");
  }
  if (net)
    chat_net_stop(net);
  chat_net_free(net);
  uv_run(loop, UV_RUN_DEFAULT); /* connections and handles finish closing */
  /* Joins the hash threads (waiting only for hashes already running) and
   * runs the callbacks of any still to come, before the engine goes. */
  chat_hash_pool_free(hashes);
  srv->hashes = NULL;
  int fr = chat_engine_flush_sync(engine);
  if (fr < 0)
    CHAT_ERROR("final commit failed: %s", chat_strerror(fr));
  chat_engine_free(engine); /* closes the store */
  uv_run(loop, UV_RUN_DEFAULT);
  chat_srv_free(srv);
  free(srv);
  uv_loop_close(loop);
  return r < 0 ? r : 0;
}
