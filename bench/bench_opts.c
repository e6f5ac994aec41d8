/* bench_opts.c -- chat-bench's command line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench.h"
#include "chat_addr.h"

static const char usage_text[] =
    "usage: chat-bench [--server HOST:PORT] [--server-b HOST:PORT]\n"
    "                  [--pairs N] [--messages M] [--size BYTES]\n"
    "                  [--mode relay|direct|offline|group]\n"
    "                  [--group-size N] [--window W] [--json] [--idle N]\n"
    "                  [--server-pid PID]\n"
    "                  [--concurrency C] [--password PW] [--prefix P]\n"
    "                  [--timeout S] [--tls [--tls-ca FILE]]\n"
    "                  [--handshakes N]\n"
    "\n"
    "Registers and logs in 2*N users (sender i and receiver i), then each\n"
    "sender sends M messages of BYTES bytes to its receiver with at most W\n"
    "unacknowledged, and reports messages per second, send-to-deliver latency\n"
    "(p50/p99/max) and errors by kind.\n"
    "\n"
    "  --server HOST:PORT  server to load (default 127.0.0.1:7700)\n"
    "  --server-b HOST:PORT\n"
    "                      receivers (the second user of every pair)\n"
    "                      register and log in here instead of --server:\n"
    "                      another node of the same cluster, so every\n"
    "                      message crosses nodes (messages go one way,\n"
    "                      sender -> receiver; senders and --idle sessions\n"
    "                      stay on --server). Relay, offline and direct\n"
    "                      modes; with --tls its HOST is verified too\n"
    "  --pairs N           sender/receiver pairs (default 10)\n"
    "  --messages M        messages per sender (default 1000; 0 = only log in)\n"
    "  --size BYTES        body size, 32..16384 (default 64)\n"
    "  --mode MODE         relay: both online, send through the server\n"
    "                      direct: over peer links (connect + ticket)\n"
    "                      offline: store all, then log receivers in\n"
    "                      group: one owner sends M group messages, one at\n"
    "                      a time, to a group whose members are all online;\n"
    "                      latency is group_send to the LAST member's\n"
    "                      deliver (--pairs and --window do not apply)\n"
    "                      (default relay)\n"
    "  --group-size N      group mode: members, the sender included\n"
    "                      (default 500)\n"
    "  --window W          unacknowledged messages per sender (default 16):\n"
    "                      un-ok'ed sends (relay, offline), un-acked msgs\n"
    "                      (direct)\n"
    "  --json              print the result as one JSON object\n"
    "  --idle N            first open N logged-in idle sessions and report\n"
    "                      the server's RSS growth per session (needs\n"
    "                      --server-pid); without --pairs only that runs\n"
    "  --server-pid PID    the local server's pid, for /proc/PID/status\n"
    "  --concurrency C     registers/logins in flight (default 32)\n"
    "  --password PW       password of every bench user (default\n"
    "                      chat-bench-password)\n"
    "  --prefix P          user name prefix (default random, so runs against\n"
    "                      one server never collide)\n"
    "  --timeout S         overall deadline in seconds (default 300)\n"
    "  --tls               speak TLS to the server (its --tls-listen port),\n"
    "                      verifying its certificate and the HOST of\n"
    "                      --server; direct mode's peer links stay plain\n"
    "  --tls-ca FILE       trust the CAs in FILE (PEM) instead of the\n"
    "                      system's; implies --tls\n"
    "  --handshakes N      only open N TLS connections, --concurrency at a\n"
    "                      time, each closed once its handshake is done;\n"
    "                      reports handshakes per second (and the server's\n"
    "                      CPU per handshake with --server-pid); implies\n"
    "                      --tls\n"
    "  --help, --version\n"
    "\n"
    "Run the server with --hash-cost min (logins hash with argon2id) and\n"
    "--rate-limit 0 (a sender far exceeds 1000 frames/s). Exit status: 0 when\n"
    "there were no errors, 1 otherwise, 2 on a usage error.\n";

static int parse_long(const char *s, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

static int bad(const char *flag, const char *val, const char *why) {
  fprintf(stderr, "chat-bench: bad %s '%s': %s\n", flag, val, why);
  fputs(usage_text, stderr);
  return -EINVAL;
}

static void random_prefix(char *out, size_t len) {
  unsigned char r[3];
  randombytes_buf(r, sizeof(r));
  snprintf(out, len, "b%02x%02x%02x-", r[0], r[1], r[2]);
}

static int prefix_valid(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || n > BENCH_PREFIX_MAX)
    return 0;
  char probe[BENCH_NAME_MAX];
  snprintf(probe, sizeof(probe), "%ss1", p);
  return chat_name_valid(probe);
}

int bench_opts_parse(bench_opts_t *o, int argc, char **argv) {
  enum {
    O_SERVER = 256, O_PAIRS, O_MESSAGES, O_SIZE, O_MODE, O_WINDOW, O_JSON,
    O_IDLE, O_PID, O_CONC, O_PASSWORD, O_PREFIX, O_TIMEOUT, O_HELP, O_VERSION,
    O_GROUP_SIZE, O_TLS, O_TLS_CA, O_HANDSHAKES, O_SERVER_B
  };
  static const struct option longopts[] = {
      {"server", required_argument, 0, O_SERVER},
      {"server-b", required_argument, 0, O_SERVER_B},
      {"pairs", required_argument, 0, O_PAIRS},
      {"messages", required_argument, 0, O_MESSAGES},
      {"size", required_argument, 0, O_SIZE},
      {"mode", required_argument, 0, O_MODE},
      {"window", required_argument, 0, O_WINDOW},
      {"group-size", required_argument, 0, O_GROUP_SIZE},
      {"json", no_argument, 0, O_JSON},
      {"idle", required_argument, 0, O_IDLE},
      {"server-pid", required_argument, 0, O_PID},
      {"concurrency", required_argument, 0, O_CONC},
      {"password", required_argument, 0, O_PASSWORD},
      {"prefix", required_argument, 0, O_PREFIX},
      {"timeout", required_argument, 0, O_TIMEOUT},
      {"help", no_argument, 0, O_HELP},
      {"version", no_argument, 0, O_VERSION},
      {"tls", no_argument, 0, O_TLS},
      {"tls-ca", required_argument, 0, O_TLS_CA},
      {"handshakes", required_argument, 0, O_HANDSHAKES},
      {0, 0, 0, 0}};

  memset(o, 0, sizeof(*o));
  snprintf(o->host, sizeof(o->host), "127.0.0.1");
  o->port = 7700;
  o->pairs = 10;
  o->messages = 1000;
  o->size = 64;
  o->mode = BENCH_RELAY;
  o->window = 16;
  o->group_size = 500;
  o->concurrency = 32;
  o->timeout_s = 300;
  snprintf(o->password, sizeof(o->password), "chat-bench-password");
  random_prefix(o->prefix, sizeof(o->prefix));

  opterr = 0;
  optind = 1;
  int c;
  long v;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case O_SERVER:
      if (chat_addr_split(optarg, o->host, &o->port) < 0 || o->port == 0)
        return bad("--server", optarg, "want HOST:PORT");
      break;
    case O_SERVER_B:
      if (chat_addr_split(optarg, o->host_b, &o->port_b) < 0 || o->port_b == 0)
        return bad("--server-b", optarg, "want HOST:PORT");
      break;
    case O_PAIRS:
      if (parse_long(optarg, 0, 1000000, &v) < 0)
        return bad("--pairs", optarg, "want 0..1000000");
      o->pairs = (int)v;
      o->pairs_given = 1;
      break;
    case O_MESSAGES:
      if (parse_long(optarg, 0, LONG_MAX / 2, &v) < 0)
        return bad("--messages", optarg, "want a count");
      o->messages = v;
      break;
    case O_SIZE:
      if (parse_long(optarg, BENCH_MIN_SIZE, CHAT_MAX_BODY, &v) < 0)
        return bad("--size", optarg, "want 32..16384");
      o->size = (size_t)v;
      break;
    case O_MODE:
      if (!strcmp(optarg, "relay"))
        o->mode = BENCH_RELAY;
      else if (!strcmp(optarg, "direct"))
        o->mode = BENCH_DIRECT;
      else if (!strcmp(optarg, "offline"))
        o->mode = BENCH_OFFLINE;
      else if (!strcmp(optarg, "group"))
        o->mode = BENCH_GROUP;
      else
        return bad("--mode", optarg, "want relay, direct, offline or group");
      break;
    case O_GROUP_SIZE:
      if (parse_long(optarg, 2, 100000, &v) < 0)
        return bad("--group-size", optarg, "want 2..100000");
      o->group_size = (int)v;
      break;
    case O_WINDOW:
      if (parse_long(optarg, 1, 1000000, &v) < 0)
        return bad("--window", optarg, "want 1..1000000");
      o->window = (int)v;
      break;
    case O_JSON:
      o->json = 1;
      break;
    case O_IDLE:
      if (parse_long(optarg, 0, 1000000, &v) < 0)
        return bad("--idle", optarg, "want 0..1000000");
      o->idle = (int)v;
      break;
    case O_PID:
      if (parse_long(optarg, 1, INT_MAX, &v) < 0)
        return bad("--server-pid", optarg, "want a pid");
      o->server_pid = (int)v;
      break;
    case O_CONC:
      if (parse_long(optarg, 1, 100000, &v) < 0)
        return bad("--concurrency", optarg, "want 1..100000");
      o->concurrency = (int)v;
      break;
    case O_PASSWORD:
      if (!chat_password_valid(optarg) ||
          strlen(optarg) >= sizeof(o->password))
        return bad("--password", "...", "want 8..256 bytes");
      snprintf(o->password, sizeof(o->password), "%s", optarg);
      break;
    case O_PREFIX:
      if (!prefix_valid(optarg))
        return bad("--prefix", optarg,
                   "want 1..20 of [a-z0-9_.-], starting with [a-z0-9]");
      snprintf(o->prefix, sizeof(o->prefix), "%s", optarg);
      break;
    case O_TIMEOUT: {
      char *end;
      errno = 0;
      double t = strtod(optarg, &end);
      if (errno || end == optarg || *end || !(t > 0) || t > 86400 * 7)
        return bad("--timeout", optarg, "want seconds > 0");
      o->timeout_s = t;
      break;
    }
    case O_TLS:
      o->tls = 1;
      break;
    case O_TLS_CA:
      if (optarg[0] == '\0' || strlen(optarg) >= sizeof(o->tls_ca))
        return bad("--tls-ca", optarg, "want a PEM file");
      snprintf(o->tls_ca, sizeof(o->tls_ca), "%s", optarg);
      o->tls = 1;
      break;
    case O_HANDSHAKES:
      if (parse_long(optarg, 1, 100000000, &v) < 0)
        return bad("--handshakes", optarg, "want 1..100000000");
      o->handshakes = v;
      o->tls = 1;
      break;
    case O_HELP:
      fputs(usage_text, stdout);
      return 1;
    case O_VERSION:
      printf("chat-bench %s\n", CHAT_VERSION);
      return 1;
    default:
      fprintf(stderr, "chat-bench: unknown or incomplete option '%s'\n",
              argv[optind - 1]);
      fputs(usage_text, stderr);
      return -EINVAL;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "chat-bench: unexpected argument '%s'\n", argv[optind]);
    fputs(usage_text, stderr);
    return -EINVAL;
  }
  if (o->idle > 0 && !o->pairs_given)
    o->pairs = 0;
  if (o->handshakes > 0) {
    if (o->pairs_given || o->idle > 0 || o->mode != BENCH_RELAY) {
      fprintf(stderr, "chat-bench: --handshakes takes neither --pairs, "
                      "--idle nor --mode\n");
      return -EINVAL;
    }
    o->pairs = 0;
  }
  if (o->port_b && (o->mode == BENCH_GROUP || o->handshakes > 0)) {
    fprintf(stderr, "chat-bench: --server-b takes neither --mode group nor "
                    "--handshakes (it moves the receivers of pairs)\n");
    return -EINVAL;
  }
  if (o->mode == BENCH_GROUP) {
    if (o->pairs_given || o->idle > 0) {
      fprintf(stderr, "chat-bench: --mode group takes neither --pairs nor "
                      "--idle\n");
      return -EINVAL;
    }
    o->pairs = 0;
    o->window = 1;
  }
  /* A password with JSON specials would need escaping in the frames we build
   * by hand; the bench has no reason to support that. */
  for (const char *p = o->password; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
      fprintf(stderr, "chat-bench: --password must not hold quotes, "
                      "backslashes or control characters\n");
      return -EINVAL;
    }
  return 0;
}
