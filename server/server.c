/* server.c -- start-up and shutdown: TLS context, store, engine, hash pool,
 * listeners; on
 * a signal, end the sessions, drop the queued password hashes, commit
 * everything, close the store. */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "chat_addr.h"
#include "chat_log.h"
#include "cluster.h"
#include "hash.h"
#include "hasher.h"
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
  chat__engine_t *engine;
  chat__hash_pool_t *hashes;
} stop_ctx_t;

static void on_stop(void *arg) {
  stop_ctx_t *stop = arg;
  /* Queued logins and registrations belong to connections being closed:
   * none is hashed (their sessions cancelled them as they ended; this also
   * catches any left), so the exit waits at most for the running ones. */
  chat__hash_pool_stop(stop->hashes);
  /* Sessions have ended and written their unacked messages: commit now so
   * they are durable before the last connections finish closing. */
  int r = chat__engine_flush_sync(stop->engine);
  if (r < 0)
    CHAT_ERROR("final commit failed: %s", chat_strerror(r));
}

static int parse_listen(const char *what, const char *listen,
                        struct sockaddr_storage *addr) {
  char host[CHAT_HOST_MAX];
  int port;
  int r = chat_addr_split(listen, host, &port);
  if (r == 0)
    r = chat_addr_resolve(host, port, addr);
  if (r < 0)
    CHAT_ERROR("bad %s address '%s': %s", what, listen, chat_strerror(r));
  return r;
}

/* Logs "listening on HOST:PORT" (and " (tls)") at every level: tests and
 * scripts that asked for port 0 learn the port from it. */
static void log_listening(chat__net_t *net, int tls, const char *asked) {
  char where[CHAT_HOST_MAX + 16];
  if (chat__net_address(net, tls, where, sizeof(where)) < 0)
    snprintf(where, sizeof(where), "%s", asked);
  chat_log_write(CHAT_LOG_INFO, 1, "listening on %s%s", where,
                 tls ? " (tls)" : "");
}

/* The engine --db names: redis://... is the Redis engine (cluster mode's
 * store), anything else an SQLite file. Errors are logged. */
static int open_engine(uv_loop_t *loop, const chat_server_opts_t *opts,
                       chat__engine_t **out) {
  char errbuf[512] = "";
  chat__store_t *store;
  int r;

  if (strncmp(opts->db, "redis://", 8) == 0) {
    if (opts->db_max_mb > 0)
      CHAT_WARN("--db-max-mb applies to SQLite only; set Redis's maxmemory");
    r = chat__engine_redis_new(loop, opts->db, opts->db_unsafe, out, errbuf,
                               sizeof(errbuf));
    if (r < 0)
      CHAT_ERROR("cannot use %s: %s", opts->db,
                 errbuf[0] ? errbuf : chat_strerror(r));
    else if (opts->db_unsafe)
      CHAT_WARN("--db-unsafe: Redis's persistence settings are not "
                "checked; a stored message may be lost");
    return r;
  }
  r = chat__store_open(opts->db, &store, errbuf, sizeof(errbuf));
  if (r < 0) {
    CHAT_ERROR("cannot open database %s: %s", opts->db, errbuf);
    return r;
  }
  if (opts->db_max_mb > 0) {
    r = chat__store_limit_bytes(store, (uint64_t)opts->db_max_mb << 20);
    if (r < 0) {
      CHAT_ERROR("cannot cap database %s at %u MB", opts->db,
                 opts->db_max_mb);
      chat__store_close(store);
      return r;
    }
  }
  r = chat__engine_sqlite_new(loop, store, out);
  if (r < 0) {
    CHAT_ERROR("start-up: out of memory");
    chat__store_close(store);
  }
  return r;
}

/* Cluster mode: this node joins the others on the engine's Redis, named
 * --node or, by default, by its listening address. Its liveness key lives
 * 2 x heartbeat and is refreshed 4 times as often, so a node that dies is
 * taken for dead, and its users offline, within 2.5 x heartbeat
 * (PROTOCOL.md 6 allows 3). */
static int node_name_valid(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 100)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)n[i]) && strchr("._:-[]", n[i]) == NULL)
      return 0;
  return 1;
}

static int join_cluster(uv_loop_t *loop, const chat_server_opts_t *opts,
                        chat__net_t *net, chat__srv_t *srv,
                        chat__bus_t **out) {
  char where[CHAT_HOST_MAX + 16], errbuf[512] = "";
  const char *node = opts->node;
  if (chat__net_address(net, 0, where, sizeof(where)) < 0)
    snprintf(where, sizeof(where), "%s", opts->listen);
  if (node == NULL)
    node = where;
  if (!node_name_valid(node)) {
    CHAT_ERROR("bad --node '%s': 1 to 100 letters, digits and ._:-[]", node);
    return -EINVAL;
  }
  int r = chat__bus_redis_new(loop, srv->engine, node, where,
                        (unsigned)srv->cfg.heartbeat * 2000,
                        chat__cluster_on_event, chat__cluster_on_lost, srv,
                        out, errbuf, sizeof(errbuf));
  if (r < 0) {
    CHAT_ERROR("cannot join the cluster as node %s: %s", node,
               errbuf[0] ? errbuf : chat_strerror(r));
    return r;
  }
  srv->bus = *out;
  return 0;
}

/* glibc raises its mmap and trim thresholds each time a large block is
 * freed (up to 32 MiB and 64 MiB), after which the store thread's arena
 * keeps the top of a burst (pages of held messages read for many logins)
 * for good: 18 MB of RSS after 200 users drained 200,000 messages, which
 * malloc_trim does not reach in a thread's arena. Fixed thresholds keep
 * blocks of 128 KiB and more in their own mappings and give an arena's top
 * back past 256 KiB, so a node's memory follows what is live. The
 * environment (GLIBC_TUNABLES, MALLOC_*_) may still set others.
 *
 * On the Redis engine the large blocks are hiredis's commands, output
 * buffer and replies (a loop turn's carried messages, up to 512 KiB each,
 * bus_batch.c), made and freed many times a second, and a loop turn's
 * output buffers to its sessions: there blocks up to 4 MiB come from the
 * heap, and an arena's top is given back past 32 MiB. With glibc's moving
 * thresholds each burst's top was trimmed and faulted in again page by
 * page: 0.3 us more per 1 KiB message on the receiving node, and in a
 * fresh mapping each 1.5 us more (docs/PERFORMANCE.md, cluster). What a
 * node keeps beyond what is live stays bounded by the 32 MiB. */
static void tune_malloc(const char *db) {
  int redis = strncmp(db, "redis://", 8) == 0;
  if (getenv("GLIBC_TUNABLES") != NULL || getenv("MALLOC_MMAP_THRESHOLD_") ||
      getenv("MALLOC_TRIM_THRESHOLD_"))
    return;
  mallopt(M_MMAP_THRESHOLD, redis ? 4 << 20 : 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, redis ? 32 << 20 : 256 * 1024);
}

int chat_server_run(const chat_server_opts_t *opts) {
  struct sockaddr_storage addr, tls_addr;
  int r = parse_listen("listen", opts->listen, &addr);

  tune_malloc(opts->db);
  if (r < 0)
    return r;
  /* The certificate and key before anything is opened or created: a file
   * that is missing, unreadable, not PEM or a key that does not match the
   * certificate stops the start with the file named. */
  chat_tls_ctx_t *tls_ctx = NULL;
  char errbuf[256] = "";
  if (opts->tls_listen != NULL) {
    r = parse_listen("tls-listen", opts->tls_listen, &tls_addr);
    if (r < 0)
      return r;
    r = chat_tls_server_ctx(opts->tls_cert, opts->tls_key, &tls_ctx, errbuf,
                            sizeof(errbuf));
    if (r < 0) {
      CHAT_ERROR("cannot use --tls-cert %s --tls-key %s: %s", opts->tls_cert,
                 opts->tls_key, errbuf);
      return r;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit(opts->cfg.max_clients);

  /* The hashing helper is forked first, while this process has one
   * thread (hasher.h); without it the pool's threads hash. */
  unsigned nhash = chat__hash_default_threads();
  chat__hasher_t *hasher = NULL;
  if ((r = chat__hasher_start(nhash, &hasher)) < 0)
    CHAT_WARN("no hashing helper process (%s): hashing in the server",
              chat_strerror(r));

  uv_loop_t *loop = uv_default_loop();
  chat__engine_t *engine = NULL;
  if ((r = open_engine(loop, opts, &engine)) < 0) {
    chat__hasher_free(hasher);
    chat_tls_ctx_free(tls_ctx);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return r;
  }
  chat__srv_t *srv = malloc(sizeof(*srv));
  chat__hash_pool_t *hashes = NULL;
  if (srv == NULL)
    chat__hasher_free(hasher); /* else the pool takes it, even failing */
  if (srv == NULL ||
      (r = chat__hash_pool_new(loop, nhash, CHAT_HASH_QUEUE_DEFAULT, hasher,
                               &hashes)) < 0) {
    CHAT_ERROR("start-up: out of memory");
    chat_tls_ctx_free(tls_ctx);
    chat__engine_free(engine); /* closes the store */
    uv_run(loop, UV_RUN_DEFAULT);
    free(srv);
    return -ENOMEM;
  }
  r = chat__srv_init(srv, loop, &opts->cfg, engine);
  if (r < 0) {
    CHAT_ERROR("opening %s: %s", opts->db, chat_strerror(r));
    chat_tls_ctx_free(tls_ctx);
    chat__hash_pool_free(hashes);
    chat__engine_free(engine);
    uv_run(loop, UV_RUN_DEFAULT);
    free(srv);
    return r;
  }
  srv->hashes = hashes;
  stop_ctx_t stop = {engine, hashes};
  chat__net_t *net;
  r = chat__net_start(loop, srv, (struct sockaddr *)&addr, &net);
  if (r < 0) {
    CHAT_ERROR("listen on %s: %s", opts->listen, uv_strerror(r));
    chat_tls_ctx_free(tls_ctx);
  } else if (tls_ctx != NULL &&
             (r = chat__net_listen_tls(net, (struct sockaddr *)&tls_addr,
                                       tls_ctx)) < 0) {
    CHAT_ERROR("listen on %s (tls): %s", opts->tls_listen, uv_strerror(r));
  }
  chat__bus_t *bus = NULL;
  if (r == 0 && strncmp(opts->db, "redis://", 8) == 0)
    r = join_cluster(loop, opts, net, srv, &bus);
  if (r == 0) {
    log_listening(net, 0, opts->listen);
    if (tls_ctx != NULL)
      log_listening(net, 1, opts->tls_listen);
    chat__net_on_stop(net, on_stop, &stop);
    uv_run(loop, UV_RUN_DEFAULT);
    CHAT_INFO("stopped");
  }
  if (net)
    chat__net_stop(net);
  chat__net_free(net);
  uv_run(loop, UV_RUN_DEFAULT); /* connections and handles finish closing */
  /* Joins the hash threads (waiting only for hashes already running) and
   * runs the callbacks of any still to come, before the engine goes. */
  chat__hash_pool_free(hashes);
  srv->hashes = NULL;
  int fr = chat__engine_flush_sync(engine); /* the sessions' logouts too */
  srv->bus = NULL;
  chat__bus_free(bus);
  if (fr < 0)
    CHAT_ERROR("final commit failed: %s", chat_strerror(fr));
  chat__engine_free(engine); /* closes the store */
  uv_run(loop, UV_RUN_DEFAULT);
  chat__srv_free(srv);
  free(srv);
  uv_loop_close(loop);
  return r < 0 ? r : 0;
}
