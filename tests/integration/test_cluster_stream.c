/* test_cluster_stream.c -- PROTOCOL.md section 6 end to end with
 * chat-client: a stream of 10,000 messages from alice (on node n1) to bob
 * (on node n2), and a node killed (SIGKILL) in the middle of it: the
 * sender's node in one case, the receiver's in the other. Each client is
 * given both nodes (--server a,b) and moves to the survivor by itself.
 * The stream must end with every message delivered, in order, shown
 * once: what a node answered before it died is in Redis, and what it
 * never answered the sender's outbox sends again (docs/CLUSTER.md).
 *
 * Two chat-server nodes and a redis-server of the test's own
 * (tests/support/redis_proc.h); skips without redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_proc.h"
#include "harness.h"
#include "../support/redis_proc.h"

#define N 10000
#define BATCH 500
#define KILL_AT 3000          /* messages bob has seen when a node dies */
#define STREAM_MS (240 * 1000) /* the whole stream, on a busy machine */

/* --rate-limit 0: the stream is piped into chat-client at once, faster
 * than the default limit allows a connection (whose flood protection is
 * tested elsewhere, test_abuse_ratelimit). */
static th_server_t *node_on(const rp_t *r, const char *name) {
  const char *extra[] = {"--db",        r->url, "--node",       name,
                         "--heartbeat", "2",    "--rate-limit", "0",
                         NULL};
  return th_server_start(extra);
}

/* What bob has shown of alice's stream so far, read line by line as it
 * comes (th_proc_output keeps only the last 256 KiB, and parsing all of
 * it at every step would be quadratic). */
typedef struct seen {
  int n; /* messages from alice so far */
} seen_t;

/* One line of bob's stdout: each message from alice must be the next of
 * s-00000, s-00001, ... (in order, each once). */
static void take_line(th_cli_t *b, seen_t *st, const char *l) {
  json_t *ev = json_loads(l, 0, NULL);
  const char *e = json_string_value(json_object_get(ev, "event"));
  const char *from = json_string_value(json_object_get(ev, "from"));
  if (e != NULL && strcmp(e, "message") == 0 && from != NULL &&
      strcmp(from, "alice") == 0) {
    char want[16];
    const char *body = json_string_value(json_object_get(ev, "body"));
    snprintf(want, sizeof(want), "s-%05d", st->n);
    if (body == NULL || strcmp(body, want) != 0) {
      th_cli_dump(b);
      fail_msg("message %d from alice is '%s', want '%s' (in order, each "
               "once)", st->n, body ? body : "(none)", want);
    }
    st->n++;
  }
  json_decref(ev);
}

/* Reads bob's stdout until he has shown at least n (n < 0: until it is
 * quiet for quiet_ms), failing at the deadline. */
static void bob_reaches(th_cli_t *b, seen_t *st, int n, int timeout_ms) {
  long long end = th_now_ms() + timeout_ms;
  while (st->n < n) {
    const char *l = th_proc_read_line(th_cli_proc(b), TH_STDOUT, 200);
    if (l != NULL)
      take_line(b, st, l);
    else if (th_now_ms() > end) {
      th_cli_dump(b);
      fail_msg("bob saw %d of %d messages", st->n, n);
    }
  }
}

/* Reads what bob shows within ms (nothing more may be from alice). */
static void bob_quiet(th_cli_t *b, seen_t *st, int ms) {
  long long end = th_now_ms() + ms;
  while (th_now_ms() < end) {
    const char *l = th_proc_read_line(th_cli_proc(b), TH_STDOUT, 100);
    if (l != NULL)
      take_line(b, st, l);
  }
}

static void stream_with_a_node_killed(int kill_senders_node) {
  const char *const no_p2p[] = {"--no-p2p", NULL};
  const char *why = rp_missing();
  char l1[96], l2[96];
  rp_t r;

  if (why != NULL) {
    print_message("%s\n", why);
    skip();
  }
  if (rp_start(&r, NULL) != 0)
    fail_msg("redis-server did not start");
  th_server_t *n1 = node_on(&r, "n1"), *n2 = node_on(&r, "n2");
  snprintf(l1, sizeof(l1), "127.0.0.1:%d,127.0.0.1:%d", th_server_port(n1),
           th_server_port(n2));
  snprintf(l2, sizeof(l2), "127.0.0.1:%d,127.0.0.1:%d", th_server_port(n2),
           th_server_port(n1));
  /* No listeners: every message goes through the nodes, none direct. */
  th_cli_t *a = th_cli_start_at(l1, "alice", no_p2p, NULL);
  th_cli_t *b = th_cli_start_at(l2, "bob", no_p2p, NULL);
  th_cli_wait(a, TH_DEADLINE_MS, "ready", NULL);
  th_cli_wait(b, TH_DEADLINE_MS, "ready", NULL);
  th_cli_make_contacts(a, "alice", b, "bob");

  seen_t st = {0};
  int killed = 0;
  for (int i = 0; i < N; i++) {
    th_cli_cmd(a, "/msg bob s-%05d", i);
    if ((i + 1) % BATCH != 0)
      continue;
    /* keep the outbox under its bound: the sender waits for the stream */
    bob_reaches(b, &st, i + 1 - 2 * BATCH, STREAM_MS);
    if (!killed && st.n >= KILL_AT) {
      th_server_t *victim = kill_senders_node ? n1 : n2;
      assert_int_equal(th_server_stop(victim, SIGKILL), 128 + SIGKILL);
      killed = 1;
    }
  }
  assert_true(killed);
  bob_reaches(b, &st, N, STREAM_MS);
  /* everything alice sent is confirmed: she exits 0 at the end of input */
  assert_int_equal(th_cli_finish(a, STREAM_MS), 0);
  /* and nothing more comes (a repeat would be shown twice, and fail) */
  bob_quiet(b, &st, 1000);
  assert_int_equal(st.n, N);
  assert_int_equal(th_cli_finish(b, TH_DEADLINE_MS), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_t *alive = kill_senders_node ? n2 : n1;
  assert_int_equal(th_server_stop(alive, SIGTERM), 0);
  th_server_free(n1);
  th_server_free(n2);
  rp_free(&r);
}

static void test_senders_node_killed(void **state) {
  stream_with_a_node_killed(1);
}

static void test_receivers_node_killed(void **state) {
  stream_with_a_node_killed(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_senders_node_killed),
      cmocka_unit_test(test_receivers_node_killed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
