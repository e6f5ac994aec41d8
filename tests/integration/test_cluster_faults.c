/* test_cluster_faults.c -- cluster mode under faults (PROTOCOL.md section
 * 6, docs/CLUSTER.md "Failure modes"): a node killed with SIGKILL (its
 * users offline within 3 x heartbeat; a restart under its name at once),
 * Redis stopped for 5 s (internal meanwhile, nothing acknowledged lost),
 * and two live nodes refused the same name. Every case has its own Redis
 * and nodes (cluster_fixture.h), and skips when there is no redis-server.
 * CLUSTER_TEST=NAME (a glob) runs only the cases it matches. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cluster_fixture.h"

/* ---- 5. a node killed with SIGKILL ---------------------------------------- */

static void test_node_killed(void **state) {
  cluster_t *c = *state;
  cf_need_redis(c);
  int p2 = th_free_port();
  cf_node_up(c, 0, "n1", 0);
  cf_node_up(c, 1, "n2", p2);
  int p1 = cf_port_of(c, 0);
  assert_int_equal(cf_port_of(c, 1), p2);
  th_client_t *a = cf_user_at(p1, "alice");
  th_client_t *b = cf_user_at(p2, "bob");
  th_make_contacts(a, "alice", b, "bob");
  /* relayed, not acked when n2 dies: kept where n1 can find it */
  th_client_send_msg(a, "bob", "d1", "before the crash", "relayed");
  json_decref(th_client_expect_deliver(b, "alice", "d1", "before the crash",
                                       0));

  assert_int_equal(th_server_stop(c->n[1], SIGKILL), 128 + SIGKILL);
  long long t0 = th_now_ms();
  cf_close(b);
  cf_await_presence(a, "bob", "offline", 3 * HB_MS + DEATH_MARGIN_MS, NULL);
  long long took = th_now_ms() - t0;
  print_message("bob offline on n1 %lld ms after n2 was killed (allowed: "
                "3 x heartbeat = %d ms, + %d ms margin)%s\n",
                took, 3 * HB_MS, DEATH_MARGIN_MS,
                took > 3 * HB_MS ? ": LATE" : "");

  /* nowhere now: stored; and bob may log in on n1 at once */
  th_client_send_msg(a, "bob", "d2", "after the crash", "stored");
  b = cf_login_at(p1, "bob");
  /* d1 first (order per sender); its offline flag is not asserted: it
   * was pushed once already */
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "msg_id"), "d1");
  assert_string_equal(th_str(d, "from"), "alice");
  assert_string_equal(th_str(d, "body"), "before the crash");
  json_decref(d);
  json_decref(th_client_expect_deliver(b, "alice", "d2", "after the crash", 1));
  th_client_ack(b, "alice", "d1");
  th_client_ack(b, "alice", "d2");
  cf_expect_receipt(a, "bob", "d1");
  cf_expect_receipt(a, "bob", "d2");
  cf_await_presence(a, "bob", "online", TH_DEADLINE_MS, NULL);

  /* n2 again under its name and port: its earlier life's key has expired
   * by now; then dave on it, n2 killed and restarted at once, while the
   * dead life's key still lives: the restart must not wait it out (it
   * listened on this very address), and cleans up after it */
  th_server_restart(c->n[1], SIGKILL);
  assert_int_equal(cf_port_of(c, 1), p2);
  th_client_t *dv = cf_user_at(p2, "dave");
  th_make_contacts(a, "alice", dv, "dave");
  assert_int_equal(th_server_stop(c->n[1], SIGKILL), 128 + SIGKILL);
  cf_close(dv);
  long long t1 = th_now_ms();
  th_server_restart(c->n[1], SIGKILL);
  long long start_ms = th_now_ms() - t1;
  const char *log = th_proc_output(th_server_proc(c->n[1]), TH_STDERR);
  print_message("n2 restarted under its name in %lld ms\n", start_ms);
  if (strstr(log, "waiting up to") != NULL || start_ms >= HB_MS) {
    th_server_dump(c->n[1]);
    fail_msg("the restart of n2 waited for its earlier life (%lld ms)",
             start_ms);
  }
  cf_await_presence(a, "dave", "offline", TH_DEADLINE_MS, NULL);
  dv = cf_login_at(p2, "dave");
  cf_await_presence(a, "dave", "online", TH_DEADLINE_MS, NULL);
  th_client_send_msg(a, "dave", "v1", "on the new n2", "relayed");
  json_decref(th_client_expect_deliver(dv, "alice", "v1", "on the new n2", 0));
  th_client_ack(dv, "alice", "v1");
  cf_expect_receipt(a, "dave", "v1");

  /* v1 is settled and n2 has read its inbox to the end: the inbox empties
   * (v1's entry was the last, which a trim to its own id kept), so when n2
   * dies now, dave's login on n1 finds nothing of n2's to deliver again */
  long long until = th_now_ms() + TH_DEADLINE_MS;
  char len[32] = "";
  while (rp_cmd(&c->r, "XLEN {node:n2}:inbox", len, sizeof(len)) == 0 &&
         strcmp(len, ":0") != 0 && th_now_ms() < until)
    poll(NULL, 0, 20); /* the reader trims on its next round */
  assert_string_equal(len, ":0");
  assert_int_equal(th_server_stop(c->n[1], SIGKILL), 128 + SIGKILL);
  th_server_free(c->n[1]);
  c->n[1] = NULL;
  cf_close(dv);
  dv = cf_login_at(p1, "dave");
  th_client_send_msg(a, "dave", "v2", "after n2 died again", "relayed");
  json_t *first = th_client_expect(dv, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(first, "msg_id"), "v2"); /* not v1 again */
  json_decref(first);
  cf_close(a);
  cf_close(b);
  cf_close(dv);
  cf_down(c);
}

/* ---- 6. Redis away for 5 s ---------------------------------------------- */

#define MAX_SENT 128

typedef struct sent {
  char id[MAX_SENT][16];
  int n;
} sent_t;

static void sent_add(sent_t *s, const char *id) {
  assert_true(s->n < MAX_SENT);
  snprintf(s->id[s->n++], sizeof(s->id[0]), "%s", id);
}

static int sent_find(const sent_t *s, const char *id) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->id[i], id) == 0)
      return i;
  return -1;
}

static void test_redis_away(void **state) {
  cluster_t *c = *state;
  cf_up(c, 2);
  th_client_t *a = cf_user_at(cf_port_of(c, 0), "alice");
  th_client_t *b = cf_user_at(cf_port_of(c, 1), "bob");
  th_make_contacts(a, "alice", b, "bob");
  sent_t accepted = {0}, refused = {0};
  th_client_send_msg(a, "bob", "before", "before the outage", "relayed");
  sent_add(&accepted, "before");

  /* Redis away for 5 s (longer than a node's liveness key lives): every
   * send is answered, internal, and the connections stay */
  rp_stop(&c->r, SIGKILL);
  long long t0 = th_now_ms();
  int i = 0;
  while (th_now_ms() - t0 < 5000) {
    char id[16];
    snprintf(id, sizeof(id), "away%d", i++);
    long long t = th_now_ms();
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", id, "body", "while away");
    assert_true(th_now_ms() - t < TH_DEADLINE_MS / 2);
    if (cf_field_is(r, "type", "ok")) {
      char *s = json_dumps(r, JSON_COMPACT);
      fail_msg("a send while Redis was away was accepted: %s", s ? s : "?");
    }
    th_assert_type(r, "error", "internal");
    json_decref(r);
    sent_add(&refused, id);
    cf_ping(b); /* bob's connection stays too */
    struct timespec ts = {0, 250 * 1000000}; /* the next send */
    nanosleep(&ts, NULL);
  }
  print_message("%d sends answered internal while Redis was away\n", i);
  if (rp_restart(&c->r) != 0)
    fail_msg("redis-server did not come back");

  /* The nodes recover by themselves: sends until one is relayed (each
   * refused one tried again with its msg_id) */
  long long t1 = th_now_ms(), deadline = t1 + 3 * TH_DEADLINE_MS;
  int j = 0, relayed = 0, internal = 0;
  while (!relayed) {
    char id[16];
    snprintf(id, sizeof(id), "after%d", j);
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", id, "body", "after");
    if (cf_field_is(r, "type", "ok")) {
      const char *st = th_str(r, "status");
      assert_true(st != NULL &&
                  (strcmp(st, "relayed") == 0 || strcmp(st, "stored") == 0));
      relayed = strcmp(st, "relayed") == 0;
      if (!relayed)
        print_message("%s answered stored (bob was taken for gone)\n", id);
      sent_add(&accepted, id);
      j++;
    } else {
      th_assert_type(r, "error", "internal");
      internal++;
    }
    json_decref(r);
    if (th_now_ms() > deadline)
      fail_msg("no send was relayed within %d ms of Redis's return",
               3 * TH_DEADLINE_MS);
    cf_ping(b);
    if (!relayed) {
      struct timespec ts = {0, 50 * 1000000}; /* the next try */
      nanosleep(&ts, NULL);
    }
  }
  print_message("relayed again %lld ms after Redis came back (%d internal, "
                "%d accepted on the way)\n",
                th_now_ms() - t1, internal, j);

  /* every accepted message reaches bob once; no refused one ever does */
  int got[MAX_SENT] = {0}, have = 0;
  long long until = th_now_ms() + 2 * TH_DEADLINE_MS;
  while (have < accepted.n) {
    json_t *d = th_client_try_expect(b, "deliver", 500);
    if (d == NULL) {
      if (th_now_ms() > until) {
        for (int k = 0; k < accepted.n; k++)
          if (!got[k])
            fprintf(stderr, "  never delivered: %s\n", accepted.id[k]);
        th__server_dump_all();
        fail_msg("bob got %d of %d accepted messages", have, accepted.n);
      }
      cf_ping(b);
      continue;
    }
    const char *id = th_str(d, "msg_id");
    if (sent_find(&refused, id) >= 0)
      fail_msg("%s was answered internal and delivered anyway", id);
    int k = sent_find(&accepted, id);
    assert_true(k >= 0);
    if (got[k]++)
      fail_msg("%s delivered twice", id);
    have++;
    th_client_ack(b, "alice", id);
    json_decref(d);
  }
  th_client_expect_silence(b, QUIET_MS);
  for (int k = 0; k < accepted.n; k++)
    cf_expect_receipt(a, "bob", accepted.id[k]);
  cf_close(a);
  cf_close(b);
  cf_down(c);
}

/* ---- 7. two live nodes may not share a name ------------------------------- */

static void test_duplicate_node_name(void **state) {
  cluster_t *c = *state;
  cf_up(c, 1);
  th_client_t *a = cf_user_at(cf_port_of(c, 0), "alice");

  const char *argv[] = {CHAT_BIN_DIR "/chat-server", "--listen",
                        "127.0.0.1:0", "--hash-cost", "min", "--db", c->r.url,
                        "--node", "n1", "--heartbeat", HB_ARG, NULL};
  long long t0 = th_now_ms();
  th_proc_t *p = th_proc_spawn(argv, NULL);
  int st;
  if (th_proc_wait(p, TH_DEADLINE_MS, &st) != 0) {
    fprintf(stderr, "%s", th_proc_output(p, TH_STDERR));
    th_proc_free(p);
    fail_msg("a second node n1 did not exit within %d ms", TH_DEADLINE_MS);
  }
  long long took = th_now_ms() - t0;
  const char *err = th_proc_output(p, TH_STDERR);
  int code = th_proc_exit_code(p);
  print_message("a second n1 refused in %lld ms, exit %d\n", took, code);
  /* the message names the node; it never said it was listening */
  int named = 0;
  for (const char *l = err; *l;) {
    size_t len = strcspn(l, "\n");
    char line[1024];
    snprintf(line, sizeof(line), "%.*s", (int)(len < 1000 ? len : 1000), l);
    if (strstr(line, "n1") != NULL && strstr(line, "node") != NULL)
      named = 1;
    l += len + (l[len] == '\n');
  }
  if (code == 0 || code >= 128 || !named ||
      strstr(err, "listening on") != NULL)
    fail_msg("second n1: exit %d, wanted a refusal naming n1:\n%s", code, err);
  th_proc_free(p);
  /* within a few seconds: its key's life (2 x heartbeat) and some */
  assert_true(took < 2 * HB_MS + 3000);

  /* the live n1 was not disturbed: alice is still there, reachable from
   * another node */
  cf_node_up(c, 1, "n2", 0);
  th_client_t *b = cf_user_at(cf_port_of(c, 1), "bob");
  th_client_send_msg(b, "alice", "u1", "still there?", "relayed");
  json_decref(th_client_expect_deliver(a, "bob", "u1", "still there?", 0));
  th_client_ack(a, "bob", "u1");
  cf_expect_receipt(b, "alice", "u1");
  cf_close(a);
  cf_close(b);
  cf_down(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_node_killed, cf_setup,
                                      cf_teardown),
      cmocka_unit_test_setup_teardown(test_redis_away, cf_setup,
                                      cf_teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_node_name, cf_setup,
                                      cf_teardown),
  };
  /* CLUSTER_TEST=test_name (a glob) runs only the cases it matches */
  if (getenv("CLUSTER_TEST") != NULL)
    cmocka_set_test_filter(getenv("CLUSTER_TEST"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
