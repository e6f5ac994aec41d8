/* test_server_redis.c -- chat-server on the Redis engine (CLI.md --db
 * redis://, PROTOCOL.md section 6), against a redis-server of the test's
 * own (tests/support/redis_proc.h): what was answered `stored` survives a
 * SIGKILL of the server, a token too; start-up refuses a Redis that could
 * lose acknowledged writes (unless --db-unsafe), a bad URL and an
 * unreachable Redis; while Redis is down requests needing it are answered
 * `internal`, and the server recovers by itself, losing nothing
 * acknowledged. Every case skips when there is no redis-server. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "../support/redis_proc.h"

static void need_redis(rp_t *r, const char *const extra[]) {
  const char *why = rp_missing();
  if (why != NULL) {
    print_message("%s\n", why);
    skip();
  }
  if (rp_start(r, extra) != 0)
    fail_msg("redis-server did not start");
}

static th_server_t *server_on(const rp_t *r, const char *more) {
  const char *extra[] = {"--db", r->url, more, NULL};
  return th_server_start(extra);
}

static char *login_remember(th_client_t *c, const char *name) {
  json_t *ok = th_client_call_ok(c, "{s:s,s:s,s:s,s:b}", "type", "login",
                                 "user", name, "password", TH_FIXTURE_PW,
                                 "remember", 1);
  const char *t = th_str(ok, "token");
  assert_non_null(t);
  char *copy = strdup(t);
  json_decref(ok);
  return copy;
}

static void test_stored_survives_sigkill(void **state) {
  rp_t r;
  need_redis(&r, NULL);
  th_server_t *srv = server_on(&r, NULL);
  th_client_t *b = th_client_user(th_server_port(srv), "bob", TH_FIXTURE_PW);
  th_client_close(b);
  th_client_t *a = th_client_connect(th_server_port(srv));
  th_client_register(a, "alice", TH_FIXTURE_PW);
  char *token = login_remember(a, "alice");
  th_client_send_msg(a, "bob", "m1", "kept in redis", "stored");
  th_client_send_msg(a, "bob", "m2", "and this", "stored");
  th_client_close(a);
  th_server_restart(srv, SIGKILL);

  b = th_client_connect(th_server_port(srv));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  json_decref(th_client_expect_deliver(b, "alice", "m1", "kept in redis", 1));
  json_decref(th_client_expect_deliver(b, "alice", "m2", "and this", 1));
  th_client_ack(b, "alice", "m1");
  th_client_ack(b, "alice", "m2");
  /* the token outlived the server: a login without the password */
  a = th_client_connect(th_server_port(srv));
  json_decref(th_client_call_ok(a, "{s:s,s:s,s:s}", "type", "login", "user",
                                "alice", "token", token));
  free(token);
  th_client_close(a);
  th_client_close(b);
  /* acked: gone after another restart too */
  th_server_restart(srv, SIGTERM);
  b = th_client_connect(th_server_port(srv));
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  th_client_expect_silence(b, 300);
  th_client_close(b);
  assert_int_equal(th_server_stop(srv, SIGTERM), 0);
  th_server_free(srv);
  rp_free(&r);
}

/* Runs chat-server with args and expects it to exit nonzero, naming want
 * on stderr. */
static void refused(const char *db, const char *more, const char *want) {
  const char *argv[] = {CHAT_BIN_DIR "/chat-server", "--listen",
                        "127.0.0.1:0", "--hash-cost", "min", "--db", db,
                        more, NULL};
  th_proc_t *p = th_proc_spawn(argv, NULL);
  int st;
  if (th_proc_wait(p, TH_DEADLINE_MS, &st) != 0)
    fail_msg("chat-server --db %s did not exit", db);
  const char *err = th_proc_output(p, TH_STDERR);
  if (th_proc_exit_code(p) == 0 || strstr(err, want) == NULL)
    fail_msg("chat-server --db %s: exit %d, wanted '%s' in:\n%s", db,
             th_proc_exit_code(p), want, err);
  th_proc_free(p);
}

static void test_refuses_unsafe_redis(void **state) {
  rp_t r;
  const char *no_aof[] = {"--appendonly", "no", NULL};
  need_redis(&r, no_aof);
  refused(r.url, NULL, "appendonly no");
  /* started anyway when asked, and says so */
  th_server_t *srv = server_on(&r, "--db-unsafe");
  assert_non_null(strstr(th_proc_output(th_server_proc(srv), TH_STDERR),
                         "--db-unsafe"));
  assert_int_equal(th_server_stop(srv, SIGTERM), 0);
  th_server_free(srv);
  rp_free(&r);

  const char *everysec[] = {"--appendfsync", "everysec", NULL};
  need_redis(&r, everysec);
  refused(r.url, NULL, "appendfsync everysec");
  char url[80];
  snprintf(url, sizeof(url), "%s/99999", r.url); /* no such database */
  refused(url, "--db-unsafe", "SELECT 99999");
  rp_free(&r);

  refused("redis://127.0.0.1:notaport", NULL, "bad port");
  refused("redis://127.0.0.1:1/x", NULL, "bad database number");
  char down[64];
  snprintf(down, sizeof(down), "redis://127.0.0.1:%d", th_free_port());
  refused(down, NULL, "cannot reach Redis");
}

/* Sends until the reply is ok (stored) or the deadline passes: each try
 * is answered at once (internal while Redis is away). */
static void send_until_stored(th_client_t *a, const char *msg_id) {
  long long deadline = th_now_ms() + 3 * TH_DEADLINE_MS;
  for (;;) {
    json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                               "bob", "msg_id", msg_id, "body", "after");
    const char *type = th_str(r, "type");
    if (strcmp(type, "ok") == 0) {
      assert_string_equal(th_str(r, "status"), "stored");
      json_decref(r);
      return;
    }
    assert_string_equal(th_str(r, "code"), "internal");
    json_decref(r);
    if (th_now_ms() > deadline)
      fail_msg("the server did not recover after Redis came back");
    struct timespec ts = {0, 20 * 1000000}; /* the next try */
    nanosleep(&ts, NULL);
  }
}

static void test_redis_outage(void **state) {
  rp_t r;
  need_redis(&r, NULL);
  th_server_t *srv = server_on(&r, NULL);
  int port = th_server_port(srv);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_close(b);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_send_msg(a, "bob", "m1", "before", "stored");

  /* Redis goes away for a while (several reconnect attempts): every
   * stored send is refused, each at once, nothing accepted */
  rp_stop(&r, SIGKILL);
  long long t0 = th_now_ms();
  int refusals = 0;
  do {
    long long t = th_now_ms();
    th_client_call_error(a, "internal", "{s:s,s:s,s:s,s:s}", "type", "send",
                         "to", "bob", "msg_id", "m2", "body", "while away");
    assert_true(th_now_ms() - t < TH_DEADLINE_MS / 2);
    refusals++;
    struct timespec ts = {0, 100 * 1000000}; /* Redis stays away ~2 s */
    nanosleep(&ts, NULL);
  } while (th_now_ms() - t0 < 2000);
  print_message("%d sends refused while Redis was away\n", refusals);
  json_t *pong = th_client_call(a, "{s:s}", "type", "ping"); /* alive */
  th_assert_type(pong, "pong", NULL);
  json_decref(pong);

  /* back on the same data: the node reconnects by itself */
  if (rp_restart(&r) != 0)
    fail_msg("redis-server did not come back");
  send_until_stored(a, "m3");
  th_client_close(a);

  b = th_client_connect(port);
  th_client_login(b, "bob", TH_FIXTURE_PW, 0);
  json_decref(th_client_expect_deliver(b, "alice", "m1", "before", 1));
  json_decref(th_client_expect_deliver(b, "alice", "m3", "after", 1));
  th_client_expect_silence(b, 300); /* m2 was refused: never delivered */
  th_client_close(b);
  assert_int_equal(th_server_stop(srv, SIGTERM), 0);
  th_server_free(srv);
  rp_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stored_survives_sigkill),
      cmocka_unit_test(test_refuses_unsafe_redis),
      cmocka_unit_test(test_redis_outage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
