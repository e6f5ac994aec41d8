/* bench_handshake.c -- --handshakes N: TLS handshakes per second.
 *
 * opts.concurrency connections at a time; each connects, completes its
 * handshake (the connect callback), is counted and closed at once (with a
 * close_notify), and its slot opens the next one until N were done. The
 * server's welcome, sent after the handshake, is dropped unread. The
 * server's CPU time over the window (with --server-pid) divided by N is
 * its cost per handshake on its one loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

typedef struct bench_hs {
  chat_conn_t conn;
  bench_t *b;
  int live;
} bench_hs_t;

static void on_close(chat_conn_t *c, int status);
static const chat_conn_cbs_t hs_cbs = {NULL, NULL, NULL, on_close};

static long long self_cpu_ns(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) < 0)
    return 0;
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ll +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ll;
}

static void finish(bench_t *b) {
  b->hs_span.end_ns = bench_now_ns();
  b->hs_span.count = b->hs_done;
  b->hs_bench_cpu_ns += self_cpu_ns();
  if (b->hs_server_cpu_ns >= 0) {
    long long cpu = bench_cpu_ns(b->opts.server_pid);
    b->hs_server_cpu_ns = cpu >= 0 ? cpu - b->hs_server_cpu_ns : -1;
  }
  bench_stop(b, NULL);
}

static void on_connect(chat_conn_t *c, int status) {
  bench_hs_t *h = c->data;
  bench_t *b = h->b;
  if (b->stopping)
    return;
  if (status < 0) {
    char why[512];
    const char *tls = chat_conn_tls_error(c);
    bench_note_error(b, BENCH_E_CONNECT, 1);
    snprintf(why, sizeof(why), "cannot connect to %s:%d: %s%s%s",
             b->opts.host, b->opts.port, uv_strerror(status),
             tls ? ": " : "", tls ? tls : "");
    bench_stop(b, why);
    return;
  }
  b->hs_done++;
  b->progress++;
  chat_conn_close(c);
  if (b->hs_done == b->opts.handshakes)
    finish(b);
}

/* Opens the next connection in slot h. */
static int open_one(bench_t *b, bench_hs_t *h) {
  int rc;
  memset(&h->conn, 0, sizeof(h->conn));
  h->conn.data = h;
  if ((rc = chat_conn_init(b->io, &h->conn, &hs_cbs, NULL)) < 0)
    return rc;
  h->live = 1;
  b->live_conns++;
  b->hs_started++;
  if ((rc = chat_conn_tls(&h->conn, b->tls_ctx, b->opts.host)) < 0 ||
      (rc = chat_conn_connect(&h->conn,
                              (const struct sockaddr *)&b->server_addr,
                              on_connect)) < 0) {
    chat_conn_abort(&h->conn);
    return rc;
  }
  return 0;
}

static void on_close(chat_conn_t *c, int status) {
  bench_hs_t *h = c->data;
  bench_t *b = h->b;
  h->live = 0;
  b->live_conns--;
  if (b->stopping || b->hs_started >= b->opts.handshakes)
    return;
  int rc = open_one(b, h);
  if (rc < 0 && !b->stopping) {
    char why[128];
    bench_note_error(b, BENCH_E_CONNECT, 1);
    snprintf(why, sizeof(why), "cannot open a connection: %s",
             uv_strerror(rc));
    bench_stop(b, why);
  }
}

int bench_handshake_start(bench_t *b) {
  long slots = b->opts.concurrency;
  if (slots > b->opts.handshakes)
    slots = b->opts.handshakes;
  b->hs = calloc((size_t)slots, sizeof(*b->hs));
  if (!b->hs)
    return -ENOMEM;
  b->hs_server_cpu_ns = -1;
  if (b->opts.server_pid) {
    long long cpu = bench_cpu_ns(b->opts.server_pid);
    b->hs_server_cpu_ns = cpu >= 0 ? cpu : -1;
  }
  b->hs_bench_cpu_ns = -self_cpu_ns();
  b->hs_span.start_ns = bench_now_ns();
  for (long i = 0; i < slots && !b->stopping; i++) {
    b->hs[i].b = b;
    int rc = open_one(b, &b->hs[i]);
    if (rc < 0 && !b->stopping) {
      char why[128];
      bench_note_error(b, BENCH_E_CONNECT, 1);
      snprintf(why, sizeof(why), "cannot open a connection: %s",
               uv_strerror(rc));
      bench_stop(b, why);
    }
  }
  return 0;
}

void bench_handshake_close_all(bench_t *b) {
  long slots = b->opts.concurrency < b->opts.handshakes
                   ? b->opts.concurrency
                   : b->opts.handshakes;
  for (long i = 0; b->hs && i < slots; i++)
    if (b->hs[i].live)
      chat_conn_close(&b->hs[i].conn);
}

void bench_handshake_free(bench_t *b) {
  free(b->hs);
  b->hs = NULL;
}
