/* main.c -- chat-server's command line (CLI.md). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_json_alloc.h"
#include "chat_log.h"
#include "server.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: chat-server [--listen HOST:PORT] [--db PATH] "
          "[--heartbeat SECONDS]\n"
          "                   [--tls-listen HOST:PORT --tls-cert FILE "
          "--tls-key FILE]\n"
          "                   [--max-frame BYTES] [--max-clients N] "
          "[--rate-limit N]\n"
          "                   [--log-level error|warn|info|debug]\n"
          "                   [--hash-cost min|interactive|moderate] "
          "[--max-output BYTES]\n"
          "                   [--offline-quota N] [--login-timeout S] "
          "[--db-max-mb N]\n"
          "\n"
          "  --listen HOST:PORT   address to serve (default 127.0.0.1:7700; "
          "port 0 picks one)\n"
          "  --tls-listen HOST:PORT\n"
          "                       also serve TLS there (port 0 picks one); "
          "needs both of\n"
          "  --tls-cert FILE      the PEM certificate chain to present\n"
          "  --tls-key FILE       its PEM private key\n"
          "  --db PATH            SQLite database (default chat.db; :memory: "
          "keeps nothing)\n"
          "  --heartbeat S        heartbeat in seconds (default 30); idle "
          "connections close after 3x\n"
          "  --max-frame BYTES    longest frame (default 65536)\n"
          "  --max-clients N      connections served at once (default 10000)\n"
          "  --rate-limit N       frames per second per connection, bursts of "
          "5x (default 1000, 0 = off)\n"
          "  --log-level LEVEL    error, warn, info (default) or debug\n"
          "  --hash-cost COST     argon2id cost: min (tests only), interactive "
          "(default), moderate\n"
          "  --max-output BYTES   output queued per connection before it is "
          "cut off (default 1048576)\n"
          "  --offline-quota N    messages held per recipient before sends to "
          "it are\n"
          "                       refused with rate_limited (default 10000, "
          "0 = no limit)\n"
          "  --login-timeout S    seconds a connection may take to log in "
          "(default 60)\n"
          "  --db-max-mb N        cap the database at N MiB; a full "
          "database refuses\n"
          "                       new stored messages with internal "
          "(default 0 = no cap)\n"
          "  --db redis://HOST:PORT[/N]\n"
          "                       keep everything in Redis (cluster mode; "
          "it needs appendonly\n"
          "                       yes, appendfsync always); --db-unsafe "
          "starts anyway;\n"
          "                       --node NAME names this node\n"
          "  --help, --version\n");
}

static int parse_num(const char *s, long long min, long long max,
                     long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  enum { O_LISTEN = 256, O_DB, O_HEARTBEAT, O_MAX_FRAME, O_MAX_CLIENTS,
         O_RATE, O_LOG, O_HASH, O_MAX_OUTPUT, O_QUOTA, O_LOGIN_TIMEOUT,
         O_DB_MAX, O_TLS_LISTEN, O_TLS_CERT, O_TLS_KEY, O_HELP, O_VERSION,
         O_DB_UNSAFE, O_NODE };
  static const struct option longopts[] = {
      {"listen", required_argument, NULL, O_LISTEN},
      {"db", required_argument, NULL, O_DB},
      {"heartbeat", required_argument, NULL, O_HEARTBEAT},
      {"max-frame", required_argument, NULL, O_MAX_FRAME},
      {"max-clients", required_argument, NULL, O_MAX_CLIENTS},
      {"rate-limit", required_argument, NULL, O_RATE},
      {"log-level", required_argument, NULL, O_LOG},
      {"hash-cost", required_argument, NULL, O_HASH},
      {"max-output", required_argument, NULL, O_MAX_OUTPUT},
      {"offline-quota", required_argument, NULL, O_QUOTA},
      {"login-timeout", required_argument, NULL, O_LOGIN_TIMEOUT},
      {"db-max-mb", required_argument, NULL, O_DB_MAX},
      {"tls-listen", required_argument, NULL, O_TLS_LISTEN},
      {"tls-cert", required_argument, NULL, O_TLS_CERT},
      {"tls-key", required_argument, NULL, O_TLS_KEY},
      {"db-unsafe", no_argument, NULL, O_DB_UNSAFE},
      {"node", required_argument, NULL, O_NODE},
      {"help", no_argument, NULL, O_HELP},
      {"version", no_argument, NULL, O_VERSION},
      {NULL, 0, NULL, 0}};
  chat_server_opts_t o;
  memset(&o, 0, sizeof(o));
  o.listen = "127.0.0.1:7700";
  o.db = "chat.db";
  chat_server_config_default(&o.cfg);
  chat_log_set_prefix("chat-server");
  /* A failed allocation inside jansson's lexer corrupts the string it reads
   * (akheron/jansson#362); a crash, with everything acknowledged already in
   * the store, is better than a misrouted message. */
  chat_json_alloc_abort_on_oom();

  int c;
  long long v;
  opterr = 0;
  int li = 0;
  while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
    int bad = 0;
    switch (c) {
    case O_LISTEN: o.listen = optarg; break;
    case O_DB: o.db = optarg; break;
    case O_TLS_LISTEN: o.tls_listen = optarg; break;
    case O_TLS_CERT: o.tls_cert = optarg; break;
    case O_TLS_KEY: o.tls_key = optarg; break;
    case O_HEARTBEAT:
      bad = parse_num(optarg, 1, 86400, &v);
      o.cfg.heartbeat = (int)v;
      break;
    case O_MAX_FRAME:
      bad = parse_num(optarg, 256, 64 << 20, &v);
      o.cfg.max_frame = (size_t)v;
      break;
    case O_MAX_CLIENTS:
      bad = parse_num(optarg, 1, 1000000, &v);
      o.cfg.max_clients = (int)v;
      break;
    case O_RATE:
      bad = parse_num(optarg, 0, 1000000, &v);
      o.cfg.rate_limit = (uint32_t)v;
      break;
    case O_MAX_OUTPUT:
      bad = parse_num(optarg, 4096, (long long)1 << 32, &v);
      o.cfg.max_output = (size_t)v;
      break;
    case O_QUOTA:
      bad = parse_num(optarg, 0, UINT32_MAX, &v);
      o.cfg.offline_quota = (uint32_t)v;
      break;
    case O_LOGIN_TIMEOUT:
      bad = parse_num(optarg, 1, 86400, &v);
      o.cfg.login_timeout = (int)v;
      break;
    case O_DB_MAX:
      bad = parse_num(optarg, 0, 1 << 20, &v);
      o.db_max_mb = (unsigned)v;
      break;
    case O_LOG: {
      chat_log_level_t level;
      bad = chat_log_level_parse(optarg, &level);
      if (!bad)
        chat_log_set_level(level);
      break;
    }
    case O_HASH: bad = chat_server_hash_cost_parse(optarg, &o.cfg.hash_cost); break;
    case O_DB_UNSAFE: o.db_unsafe = 1; break;
    case O_NODE: o.node = optarg; break;
    case O_HELP: usage(stdout); return 0;
    case O_VERSION: printf("chat-server %s\n", CHAT_VERSION); return 0;
    default:
      fprintf(stderr, "chat-server: unknown or incomplete option '%s'\n",
              argv[optind - 1]);
      usage(stderr);
      return 2;
    }
    if (bad) {
      /* argv[optind - 1] is the value when it came as a separate word */
      fprintf(stderr, "chat-server: bad value '%s' for --%s\n", optarg,
              longopts[li].name);
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "chat-server: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if ((o.tls_listen != NULL) != (o.tls_cert != NULL) ||
      (o.tls_listen != NULL) != (o.tls_key != NULL)) {
    fprintf(stderr, "chat-server: --tls-listen, --tls-cert and --tls-key "
                    "go together\n");
    usage(stderr);
    return 2;
  }
  return chat_server_run(&o) == 0 ? 0 : 1;
}
