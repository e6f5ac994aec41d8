/* test_cluster_routes.c -- cluster mode's cached routes (server/
 * route_cache.h, docs/CLUSTER.md "A message to a user on another node"):
 * a node carries a loop turn's messages and receipts to the node it last
 * found each recipient on, for up to a second, so what it sends right
 * after a recipient moved may land on the node it left. Nothing may be
 * lost or shown twice for it:
 *   - a message to a user who moved to another node reaches its new
 *     session, once and in order, and its receipt reaches the sender;
 *   - a receipt for a sender who moved follows it to its new node;
 *   - a dead node's inbox is kept, and read, for a grace period after the
 *     reaper drained it: a message carried there late is moved to its
 *     recipient's held messages, and the node is forgotten afterwards.
 * Senders and recipients here are not contacts, so no presence event
 * drops a route before the next send (the 'f' event of a login may, which
 * the assertions allow: they hold either way). Each case has its own
 * redis-server and nodes (cluster_fixture.h); skipped without one. */
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

#define MSGS 20
/* server/bus_redis_int.h: CHAT__BUS_DRAIN_GRACE_MS, and the reaper ticks
 * every heartbeat / 2 (1 s here) */
#define GRACE_MS 12000

/* MSGS sends from a to "bob", ids PREFIX000..., pipelined; each must be
 * answered ok (relayed or stored: a stale route may give either). */
static void send_many(th_client_t *a, const char *prefix) {
  for (int i = 0; i < MSGS; i++) {
    char id[16], body[32];
    snprintf(id, sizeof(id), "%s%03d", prefix, i);
    snprintf(body, sizeof(body), "%s body %d", prefix, i);
    th_client_send(a, "{s:s,s:i,s:s,s:s,s:s}", "type", "send", "id", i, "to",
                   "bob", "msg_id", id, "body", body);
  }
  for (int i = 0; i < MSGS; i++) {
    json_t *ok = th_client_expect(a, "ok", TH_DEADLINE_MS);
    const char *st = th_str(ok, "status");
    if (st == NULL || (strcmp(st, "relayed") && strcmp(st, "stored")))
      fail_msg("send %lld: status %s", th_int(ok, "id"), st ? st : "none");
    json_decref(ok);
  }
}

/* b gets PREFIX000.. PREFIX(MSGS-1) from alice, each once, in order, and
 * acks each. Repeats of messages shown before (shown: their prefix, or
 * NULL) may come first and are acked and dropped, as a client does
 * (PROTOCOL.md: at-least-once; a new session gets again what its old
 * node had not trimmed from its inbox yet, docs/CLUSTER.md). */
static void receive_all(th_client_t *b, const char *prefix,
                        const char *shown) {
  for (int i = 0; i < MSGS;) {
    char id[16];
    json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
    const char *got = th_str(d, "msg_id");
    snprintf(id, sizeof(id), "%s%03d", prefix, i);
    assert_string_equal(th_str(d, "from"), "alice");
    if (shown != NULL && strncmp(got, shown, strlen(shown)) == 0) {
      th_client_ack(b, "alice", got);
      json_decref(d);
      continue;
    }
    if (strcmp(got, id) != 0)
      fail_msg("bob got %s, wanted %s (a repeat, or out of order)", got, id);
    th_client_ack(b, "alice", id);
    json_decref(d);
    i++;
  }
}

/* a gets a receipt of each of PREFIX000.. once (receipts of earlier
 * messages shown again, prefix shown, are dropped: their repeats were
 * acked again). */
static void receipts(th_client_t *a, const char *prefix, const char *shown) {
  int got[MSGS] = {0};
  for (int k = 0; k < MSGS; k++) {
    json_t *r = th_client_expect(a, "receipt", TH_DEADLINE_MS);
    const char *id = th_str(r, "msg_id");
    if (shown != NULL && strncmp(id, shown, strlen(shown)) == 0) {
      json_decref(r);
      k--;
      continue;
    }
    int i = atoi(id + strlen(prefix));
    assert_true(strncmp(id, prefix, strlen(prefix)) == 0 && i >= 0 &&
                i < MSGS && !got[i]);
    got[i] = 1;
    assert_string_equal(th_str(r, "to"), "bob");
    json_decref(r);
  }
}

/* bob moves from n2 to n3 while alice (on n1) keeps sending: every message
 * reaches bob's new session once and in order, and every receipt alice. */
static void test_recipient_moves(void **state) {
  cluster_t *c = *state;
  cf_up(c, 3);
  th_client_t *a = cf_track(th_client_user(cf_port_of(c, 0), "alice", PW));
  th_client_t *b = cf_track(th_client_user(cf_port_of(c, 1), "bob", PW));
  send_many(a, "m"); /* n1 now routes bob to n2 */
  receive_all(b, "m", NULL);
  receipts(a, "m", NULL);
  th_client_t *b2 = cf_track(th_client_connect(cf_port_of(c, 2)));
  th_client_login(b2, "bob", PW, 0);
  send_many(a, "s"); /* at once: likely on the route to n2 */
  receive_all(b2, "s", "m");
  receipts(a, "s", "m");
  json_t *k = th_client_expect(b, "kicked", TH_DEADLINE_MS);
  json_decref(k);
  th_client_expect_silence(b2, 300);
}

/* alice moves from n1 to n3 with her messages unacked: bob's acks (n2
 * routes alice to n1) bring every receipt to her new session. */
static void test_sender_moves(void **state) {
  cluster_t *c = *state;
  cf_up(c, 3);
  th_client_t *a = cf_track(th_client_user(cf_port_of(c, 0), "alice", PW));
  th_client_t *b = cf_track(th_client_user(cf_port_of(c, 1), "bob", PW));
  /* n2 learns where alice is: a message from bob to her */
  th_client_send_msg(b, "alice", "hi", "hello alice", "relayed");
  json_decref(th_client_expect_deliver(a, "bob", "hi", "hello alice", 0));
  th_client_ack(a, "bob", "hi");
  send_many(a, "m");
  for (int i = 0; i < MSGS; i++)
    json_decref(th_client_expect(b, "deliver", TH_DEADLINE_MS));
  th_client_t *a2 = cf_track(th_client_connect(cf_port_of(c, 2)));
  th_client_login(a2, "alice", PW, 0);
  for (int i = 0; i < MSGS; i++) {
    char id[16];
    snprintf(id, sizeof(id), "m%03d", i);
    th_client_ack(b, "alice", id);
  }
  receipts(a2, "m", NULL);
}

/* One carried message (kind M) as the x field of an inbox entry. */
static void item(char *out, size_t len, const char *to, const char *from,
                 const char *msg_id, const char *seq, const char *body) {
  char f[512], ts[24];
  snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL) * 1000);
  int n = snprintf(f, sizeof(f), "1:M%zu:%s%zu:%s%zu:%s%zu:%s%zu:%s%zu:%s",
                   strlen(to), to, strlen(from), from, strlen(msg_id), msg_id,
                   strlen(seq), seq, strlen(ts), ts, strlen(body), body);
  snprintf(out, len, "%d:%s", n, f);
}

static long long num(cluster_t *c, const char *cmd) {
  char out[64];
  if (rp_cmd(&c->r, cmd, out, sizeof(out)) != 0 || out[0] != ':')
    fail_msg("%s: %s", cmd, out);
  return atoll(out + 1);
}

/* Waits until cmd answers the integer want. */
static void await_num(cluster_t *c, const char *cmd, long long want,
                      int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms, got = -1;
  while (th_now_ms() < deadline) {
    if ((got = num(c, cmd)) == want)
      return;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fail_msg("%s: %lld, wanted %lld", cmd, got, want);
}

/* A message from alice to bob carried to node zz's inbox, as a node on a
 * stale route would. */
static void carry_to_zz(cluster_t *c, const char *msg_id, const char *seq,
                        const char *body) {
  char x[1024], cmd[1200];
  item(x, sizeof(x), "bob", "alice", msg_id, seq, body);
  snprintf(cmd, sizeof(cmd), "XADD {node:zz}:inbox * t B x %s", x);
  assert_int_equal(rp_cmd(&c->r, cmd, x, sizeof(x)), 0);
}

/* A node "zz" that died with nobody on it: its inbox is drained by the
 * reaper, kept, drained again when a stale route lands a message there,
 * and forgotten after the grace. bob finds both messages at his login. */
static void test_dead_inbox_grace(void **state) {
  cluster_t *c = *state;
  cf_up(c, 1);
  th_client_t *b = cf_track(th_client_user(cf_port_of(c, 0), "bob", PW));
  th_client_t *a = cf_track(th_client_user(cf_port_of(c, 0), "alice", PW));
  cf_close(b);
  /* bob's logout is through: his at entry is gone */
  await_num(c, "EXISTS {u:bob}:at", 0, TH_DEADLINE_MS);
  assert_int_equal(num(c, "SADD {chat}:nodes zz"), 1);
  carry_to_zz(c, "late1", "9000001", "first");
  await_num(c, "ZCARD {u:bob}:held", 1, 3 * TH_DEADLINE_MS);
  await_num(c, "XLEN {node:zz}:inbox", 0, TH_DEADLINE_MS);
  await_num(c, "EXISTS {node:zz}:drained", 1, TH_DEADLINE_MS);
  assert_int_equal(num(c, "SISMEMBER {chat}:nodes zz"), 1);
  /* a stale route's late message: moved as well */
  carry_to_zz(c, "late2", "9000002", "second");
  await_num(c, "ZCARD {u:bob}:held", 2, 3 * TH_DEADLINE_MS);
  /* and after the grace, zz is forgotten */
  await_num(c, "SISMEMBER {chat}:nodes zz", 0, GRACE_MS + TH_DEADLINE_MS);
  assert_int_equal(num(c, "EXISTS {node:zz}:inbox"), 0);
  th_client_t *b2 = cf_track(th_client_connect(cf_port_of(c, 0)));
  th_client_login(b2, "bob", PW, 0);
  json_decref(th_client_expect_deliver(b2, "alice", "late1", "first", 1));
  json_decref(th_client_expect_deliver(b2, "alice", "late2", "second", 1));
  (void)a;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_recipient_moves, cf_setup,
                                      cf_teardown),
      cmocka_unit_test_setup_teardown(test_sender_moves, cf_setup,
                                      cf_teardown),
      cmocka_unit_test_setup_teardown(test_dead_inbox_grace, cf_setup,
                                      cf_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
