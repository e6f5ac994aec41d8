/* chat_populate.c -- fills a store with synthetic accounts, contacts and
 * held messages, through store.h, in big transactions.
 *
 * usage: chat-populate --db FILE [--users N] [--contacts C] [--messages M]
 *                      [--size S] [--recipients R] [--batch B]
 *                      [--password P] [--prefix C] [--hash-cost
 * min|interactive]
 *
 * Users are u0000001..uN (another first letter with --prefix), all with the
 * same password (default "password1"): one argon2id hash at the "min" cost
 * (OPSLIMIT_MIN, MEMLIMIT_MIN; --hash-cost interactive for the server's
 * default cost) is computed once and stored for every account, so a
 * benchmark can log in as anyone. Run it again on the same file with another
 * prefix to add a second set of accounts. Contact rows pair user i with i+1,
 * i+2, ... (wrapping), C in all. Messages: M held 1:1 messages of S bytes,
 * message j (0-based) to user (j % R) + 1 from the next user (its contact when
 * C >= N), seqs 1..M in order, msg_id "p<j>", offline. Every B ops go in one
 * chat__store_apply() (one transaction). Prints the time each phase took. Exit
 * 0 or 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define NAME_LEN 16

typedef struct populate_opts {
  const char *db;
  uint64_t users, contacts, messages, recipients, batch;
  size_t size;
  const char *password;
  int interactive;
} populate_opts_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char prefix = 'u';

static void user_name(char *buf, uint64_t i) {
  snprintf(buf, NAME_LEN, "%c%07" PRIu64, prefix, i);
}

/* A batch owns its name strings: two per op, fixed width. */
typedef struct batch {
  chat__store_op_t *ops;
  char (*names)[2][NAME_LEN];
  char (*ids)[24];
  size_t n, cap;
} batch_t;

static int batch_flush(chat__store_t *s, batch_t *b) {
  int rc = chat__store_apply(s, b->ops, b->n);
  if (rc != 0) {
    fprintf(stderr, "chat-populate: chat__store_apply: %s\n", strerror(-rc));
    return -1;
  }
  b->n = 0;
  return 0;
}

static uint64_t parse_u64(const char *flag, const char *v) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || *end || end == v) {
    fprintf(stderr, "chat-populate: %s: want a count, got '%s'\n", flag, v);
    exit(1);
  }
  return x;
}

int main(int argc, char **argv) {
  populate_opts_t o = {NULL, 1000, 0, 0, 0, 50000, 1024, "password1", 0};
  static const struct option longs[] = {
      {"db", 1, 0, 'd'},       {"users", 1, 0, 'u'},
      {"contacts", 1, 0, 'c'}, {"messages", 1, 0, 'm'},
      {"size", 1, 0, 's'},     {"recipients", 1, 0, 'r'},
      {"batch", 1, 0, 'b'},    {"password", 1, 0, 'p'},
      {"prefix", 1, 0, 'x'},   {"hash-cost", 1, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 'd': o.db = optarg; break;
    case 'u': o.users = parse_u64("--users", optarg); break;
    case 'c': o.contacts = parse_u64("--contacts", optarg); break;
    case 'm': o.messages = parse_u64("--messages", optarg); break;
    case 's': o.size = parse_u64("--size", optarg); break;
    case 'r': o.recipients = parse_u64("--recipients", optarg); break;
    case 'b': o.batch = parse_u64("--batch", optarg); break;
    case 'p': o.password = optarg; break;
    case 'x':
      if (strlen(optarg) != 1 || optarg[0] < 'a' || optarg[0] > 'z') {
        fprintf(stderr, "chat-populate: --prefix: want one letter a-z\n");
        return 1;
      }
      prefix = optarg[0];
      break;
    case 'h':
      if (strcmp(optarg, "min") != 0 && strcmp(optarg, "interactive") != 0) {
        fprintf(stderr, "chat-populate: --hash-cost: want min or "
                        "interactive\n");
        return 1;
      }
      o.interactive = strcmp(optarg, "interactive") == 0;
      break;
    default: return 1;
    }
  }
  if (!o.db || o.users < 2 || o.users > 9999999 || o.batch == 0 ||
      o.size == 0) {
    fprintf(stderr, "usage: chat-populate --db FILE [--users 2..9999999] "
                    "[--contacts C] [--messages M] [--size S] "
                    "[--recipients R] [--batch B] [--password P]\n");
    return 1;
  }
  if (o.recipients == 0 || o.recipients > o.users) o.recipients = o.users;
  if (sodium_init() < 0) return 1;

  double t0 = now_s();
  char pwhash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(pwhash, o.password, strlen(o.password),
                        o.interactive ? crypto_pwhash_OPSLIMIT_INTERACTIVE
                                      : crypto_pwhash_OPSLIMIT_MIN,
                        o.interactive ? crypto_pwhash_MEMLIMIT_INTERACTIVE
                                      : crypto_pwhash_MEMLIMIT_MIN) != 0) {
    fprintf(stderr, "chat-populate: crypto_pwhash_str failed\n");
    return 1;
  }

  char err[256] = "";
  chat__store_t *s;
  if (chat__store_open(o.db, &s, err, sizeof err) != 0) {
    fprintf(stderr, "chat-populate: %s: %s\n", o.db, err);
    return 1;
  }

  batch_t b = {0};
  b.cap = o.batch;
  b.ops = calloc(b.cap, sizeof *b.ops);
  b.names = calloc(b.cap, sizeof *b.names);
  b.ids = calloc(b.cap, sizeof *b.ids);
  char *body = malloc(o.size);
  if (!b.ops || !b.names || !b.ids || !body) {
    fprintf(stderr, "chat-populate: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < o.size; i++) body[i] = 'a' + (char)(i % 26);

  double t1 = now_s();
  for (uint64_t i = 1; i <= o.users; i++) {
    chat__store_op_t *op = &b.ops[b.n];
    user_name(b.names[b.n][0], i);
    *op = (chat__store_op_t){CHAT_STORE_ADD_USER, b.names[b.n][0], pwhash, {0}};
    if (++b.n == b.cap && batch_flush(s, &b)) return 1;
  }
  if (batch_flush(s, &b)) return 1;
  double t2 = now_s();

  /* Row k pairs i = k % N + 1 with the user `step` after it, step growing
   * each time all N users have had one, so no pair repeats while
   * C < N * (N - 1) / 2. */
  for (uint64_t k = 0; k < o.contacts; k++) {
    uint64_t i = k % o.users, step = k / o.users + 1;
    uint64_t j = (i + step) % o.users;
    chat__store_op_t *op = &b.ops[b.n];
    user_name(b.names[b.n][0], i + 1);
    user_name(b.names[b.n][1], j + 1);
    *op = (chat__store_op_t){
        CHAT_STORE_ADD_CONTACT, b.names[b.n][0], b.names[b.n][1], {0}};
    if (++b.n == b.cap && batch_flush(s, &b)) return 1;
  }
  if (batch_flush(s, &b)) return 1;
  double t3 = now_s();

  uint64_t max_seq = 0;
  if (chat__store_max_seq(s, &max_seq) != 0) return 1;
  int64_t ts = (int64_t)time(NULL) * 1000;
  for (uint64_t j = 0; j < o.messages; j++) {
    uint64_t r = j % o.recipients;
    chat__store_op_t *op = &b.ops[b.n];
    user_name(b.names[b.n][0], r + 1);
    user_name(b.names[b.n][1], (r + 1) % o.users + 1);
    snprintf(b.ids[b.n], sizeof b.ids[b.n], "p%" PRIu64, j);
    *op = (chat__store_op_t){CHAT_STORE_PUT_MSG, NULL, NULL, {0}};
    op->msg.seq = max_seq + j + 1;
    op->msg.to = b.names[b.n][0];
    op->msg.from = b.names[b.n][1];
    op->msg.msg_id = b.ids[b.n];
    op->msg.body = body;
    op->msg.body_len = o.size;
    op->msg.ts = ts;
    op->msg.offline = 1;
    if (++b.n == b.cap && batch_flush(s, &b)) return 1;
  }
  if (batch_flush(s, &b)) return 1;
  double t4 = now_s();
  chat__store_close(s);

  printf("{\"db\":\"%s\",\"users\":%" PRIu64 ",\"contacts\":%" PRIu64
         ",\"messages\":%" PRIu64 ",\"size\":%zu,\"recipients\":%" PRIu64
         ",\"hash_s\":%.3f,\"users_s\":%.3f,\"contacts_s\":%.3f,"
         "\"messages_s\":%.3f,\"total_s\":%.3f}\n",
         o.db, o.users, o.contacts, o.messages, o.size, o.recipients,
         t1 - t0, t2 - t1, t3 - t2, t4 - t3, now_s() - t0);
  free(b.ops);
  free(b.names);
  free(b.ids);
  free(body);
  return 0;
}
