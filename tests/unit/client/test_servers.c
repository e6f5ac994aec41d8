/* test_servers.c -- the --server list (servers.c): parsing and its usage
 * errors, and the rotation: in order at the start, on at once within a
 * round, a jittered backoff between rounds, the node after a lost one
 * first. Then the same through the client core (session.c) on a fake env:
 * exit 1 only when every address failed before the first login, and a
 * lost session that comes back elsewhere logs in with its token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "client.h"
#include "servers.h"

static chat_servers_t parsed(const char *list) {
  chat_servers_t s;
  char why[512];
  if (chat_servers_parse(&s, list, why, sizeof(why)) != 0)
    fail_msg("'%s' did not parse: %s", list, why);
  return s;
}

static void assert_at(const chat_servers_t *s, const char *host, int port) {
  assert_string_equal(chat_servers_current(s)->host, host);
  assert_int_equal(chat_servers_current(s)->port, port);
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_forms(void **state) {
  chat_servers_t s = parsed("127.0.0.1:7700");
  char name[CHAT_SERVERS_NAME_MAX];
  assert_int_equal(s.n, 1);
  assert_at(&s, "127.0.0.1", 7700);

  s = parsed("10.0.0.1:1, [::1]:7701 ,chat.example.org:65535");
  assert_int_equal(s.n, 3);
  assert_string_equal(s.addr[1].host, "::1"); /* no brackets kept */
  assert_int_equal(s.addr[1].port, 7701);
  assert_string_equal(s.addr[2].host, "chat.example.org");
  assert_string_equal(chat_servers_name(&s.addr[1], name, sizeof(name)),
                      "[::1]:7701");
  assert_string_equal(chat_servers_name(&s.addr[2], name, sizeof(name)),
                      "chat.example.org:65535");
  assert_at(&s, "10.0.0.1", 1); /* the first is tried first */
  assert_int_equal(chat_servers_round_over(&s), 0);
}

/* Each bad list: its code, and the usage error names the bad entry. */
static void test_parse_errors(void **state) {
  static const struct {
    const char *list;
    int rc;
    const char *named;
  } bad[] = {
      {"", -EINVAL, "empty entry"},
      {"a:1,", -EINVAL, "empty entry"},
      {"a:1,,b:2", -EINVAL, "empty entry"},
      {"a:1, ,b:2", -EINVAL, "empty entry"},
      {"a:1,nport", -EINVAL, "'nport'"},
      {"a:1,b:99999", -EINVAL, "'b:99999'"},
      {"a:1,b:0", -EINVAL, "'b:0'"},
      {"::1:7700", -EINVAL, "'::1:7700'"}, /* IPv6 needs its brackets */
      {"[::1]7700", -EINVAL, "'[::1]7700'"},
      {"a b:1", -EINVAL, "'a b:1'"},
      {"a:1,b:2,A:1", -EEXIST, "A:1 twice"}, /* names compare without case */
      {"[::1]:5,[::1]:5", -EEXIST, "[::1]:5 twice"},
  };
  chat_servers_t s;
  char why[512];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = chat_servers_parse(&s, bad[i].list, why, sizeof(why));
    if (rc != bad[i].rc || strstr(why, bad[i].named) == NULL)
      fail_msg("'%s': %d '%s', wanted %d naming %s", bad[i].list, rc, why,
               bad[i].rc, bad[i].named);
    assert_int_equal(s.n, 0);
  }
  /* why may be NULL; the code still says it */
  assert_int_equal(chat_servers_parse(&s, "x", NULL, 0), -EINVAL);
  assert_int_equal(chat_servers_parse(&s, NULL, why, sizeof(why)), -EINVAL);
  /* A host longer than any is named by its start. */
  {
    char list[600];
    memset(list, 'h', 400);
    strcpy(list + 400, ":1");
    assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "too long"));
  }
}

static void test_parse_bound(void **state) {
  char list[1024];
  size_t len = 0;
  chat_servers_t s;
  char why[256];
  for (int i = 0; i < CHAT_SERVERS_MAX; i++)
    len += (size_t)snprintf(list + len, sizeof(list) - len, "%sn%d:%d",
                            i ? "," : "", i, 7700 + i);
  assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)), 0);
  assert_int_equal(s.n, CHAT_SERVERS_MAX);
  snprintf(list + len, sizeof(list) - len, ",one-more:1");
  assert_int_equal(chat_servers_parse(&s, list, why, sizeof(why)), -E2BIG);
  assert_non_null(strstr(why, "at most 16"));
}

/* ---- the rotation ------------------------------------------------------- */

static void test_start_in_order_at_once(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_next(&s, 0, 12345), 0); /* a failed */
  assert_at(&s, "b", 2);
  assert_int_equal(chat_servers_round_over(&s), 0);
  assert_int_equal(chat_servers_next(&s, 0, 12345), 0); /* b failed */
  assert_at(&s, "c", 3);
  /* c is the last of the round: before a first login, that is the end */
  assert_int_equal(chat_servers_round_over(&s), 1);
  /* after one, a backoff, then a new round from a */
  assert_int_equal(chat_servers_next(&s, 0, 0), 500);
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_round_over(&s), 0);
}

static void test_loss_starts_after_the_lost(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  int64_t d;
  chat_servers_next(&s, 0, 0); /* a refused */
  chat_servers_up(&s, 0);      /* logged in at b */
  assert_at(&s, "b", 2);
  /* b dies: c first, after the jittered shortest step */
  d = chat_servers_next(&s, 1, 777);
  assert_true(d >= 500 && d <= 1000);
  assert_at(&s, "c", 3);
  assert_int_equal(chat_servers_next(&s, 0, 1), 0); /* c failed: a now */
  assert_at(&s, "a", 1);
  assert_int_equal(chat_servers_next(&s, 0, 1), 0); /* a failed: b last */
  assert_at(&s, "b", 2);
  assert_int_equal(chat_servers_round_over(&s), 1);
  /* the whole round failed: the next step, 1 to 2 s, then c again */
  d = chat_servers_next(&s, 0, 777);
  assert_true(d >= 1000 && d <= 2000);
  assert_at(&s, "c", 3);
}

/* Round after failed round the delay doubles up to 30 s; any jitter stays
 * in [cap/2, cap]. */
static void test_backoff_grows_and_caps(void **state) {
  chat_servers_t s = parsed("a:1,b:2");
  int64_t cap = 1000;
  chat_servers_up(&s, 0);
  for (int round = 0; round < 12; round++) {
    uint32_t rnd = (uint32_t)round * 2654435761u;
    int64_t d = chat_servers_next(&s, round == 0, rnd);
    assert_int_equal(d, chat_backoff_delay((unsigned)round, rnd));
    assert_true(d >= cap / 2 && d <= cap);
    assert_int_equal(chat_servers_next(&s, 0, rnd), 0); /* the other */
    cap = cap * 2 > 30000 ? 30000 : cap * 2;
  }
}

/* A login resets the step, unless the node is not to be hurried back to;
 * /reconnect resets it too. */
static void test_up_and_reset(void **state) {
  chat_servers_t s = parsed("a:1");
  chat_servers_up(&s, 0);
  chat_servers_next(&s, 1, 0); /* 500 */
  chat_servers_next(&s, 0, 0); /* 1000 */
  assert_int_equal(chat_servers_next(&s, 0, 0), 2000);
  chat_servers_up(&s, 1); /* cut for an oversized line: keeps growing */
  assert_int_equal(chat_servers_next(&s, 1, 0), 4000);
  chat_servers_up(&s, 0);
  assert_int_equal(chat_servers_next(&s, 1, 0), 500);
  chat_servers_next(&s, 0, 0);
  chat_servers_reset_backoff(&s);
  assert_int_equal(chat_servers_next(&s, 0, 0), 500);
}

/* One address behaves as the single server always did: every end, lost
 * or failed, waits chat_backoff_delay(attempt++), reset by a login. */
static void test_one_address_as_before(void **state) {
  chat_servers_t s = parsed("only:7700");
  unsigned attempt = 0;
  chat_servers_up(&s, 0);
  for (int i = 0; i < 8; i++) {
    uint32_t rnd = 1000u + (uint32_t)i * 40503u;
    assert_int_equal(chat_servers_next(&s, i == 0, rnd),
                     chat_backoff_delay(attempt++, rnd));
    assert_at(&s, "only", 7700);
    assert_int_equal(chat_servers_round_over(&s), 1);
  }
}

static void test_remove(void **state) {
  chat_servers_t s = parsed("a:1,b:2,c:3");
  chat_servers_remove(&s, 1);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.addr[1].host, "c");
  chat_servers_remove(&s, 0);
  chat_servers_remove(&s, 0); /* never the last one */
  assert_int_equal(s.n, 1);
  assert_at(&s, "c", 3);
  chat_servers_remove(&s, 5);
  assert_int_equal(s.n, 1);
}

/* ---- through the core --------------------------------------------------- */

typedef struct fx {
  uv_loop_t loop;
  chat_client_t c;
  json_t *to_server;
  json_t *events;
  int aborted;
} fx_t;

static uint64_t env_now(void *ctx) { return 1000000; }
static int env_server_send(void *ctx, const json_t *obj) {
  return json_array_append(((fx_t *)ctx)->to_server, (json_t *)obj);
}
static void env_server_abort(void *ctx) { ((fx_t *)ctx)->aborted = 1; }
static int env_peer_dial(void *ctx, chat_peer_t *p, const char *host,
                         int port, int flags, void **link) {
  return -ENOTSUP;
}
static int env_peer_send(void *ctx, void *link, const json_t *obj) {
  return -EPIPE;
}
static void env_peer_close(void *ctx, void *link, int graceful) {}
static void env_peer_pause(void *ctx, void *link) {}
static void env_event(void *ctx, const json_t *ev) {
  json_array_append(((fx_t *)ctx)->events, (json_t *)ev);
}
static int env_input_start(void *ctx) { return 0; }

static const chat_client_env_t env = {
    env_now,        env_server_send, env_server_abort, env_peer_dial,
    env_peer_send,  env_peer_close,  env_peer_pause,   env_peer_pause,
    env_event,      env_input_start, NULL,             NULL,
    NULL,           NULL};

static fx_t *fx_new(const char *list) {
  fx_t *f = calloc(1, sizeof(*f));
  chat_client_opts_t opts;
  assert_non_null(f);
  memset(&opts, 0, sizeof(opts));
  opts.servers = parsed(list);
  strcpy(opts.user, "alice");
  strcpy(opts.password, "alicepass1");
  opts.no_p2p = 1;
  opts.json = 1;
  f->to_server = json_array();
  f->events = json_array();
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(chat_client_init_core(&f->c, &f->loop, &opts, &env, f), 0);
  return f;
}

static void fx_free(fx_t *f) {
  if (!f->c.finished) {
    chat__client_stop(&f->c, 0);
    if (f->c.net != CHAT_NET_DOWN)
      chat__session_closed(&f->c, UV_EOF);
  }
  assert_true(f->c.finished);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  chat_client_free(&f->c);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  json_decref(f->to_server);
  json_decref(f->events);
  free(f);
}

static void server_says(fx_t *f, const char *fmt, ...) {
  va_list ap;
  json_t *obj;
  va_start(ap, fmt);
  obj = json_vpack_ex(NULL, 0, fmt, ap);
  va_end(ap);
  assert_non_null(obj);
  chat__session_on_frame(&f->c, obj);
  json_decref(obj);
}

static void welcome(fx_t *f) {
  chat__session_connected(&f->c);
  server_says(f, "{s:s,s:i,s:s,s:i,s:i}", "type", "welcome", "proto", 1,
              "server", "fake", "heartbeat", 30, "max_frame", 65536);
}

/* What net.c does to the core at each connect. */
static void connecting(fx_t *f) {
  f->c.disconnect_reason[0] = '\0';
  f->c.net = CHAT_NET_CONNECTING;
}

/* The last frame sent to the server. */
static json_t *last_sent(fx_t *f) {
  size_t n = json_array_size(f->to_server);
  assert_true(n > 0);
  return json_array_get(f->to_server, n - 1);
}

static const char *field(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

static const char TOKEN[] =
    "7070707070707070707070707070707070707070707070707070707070707070";

/* Before the first login every address gets its try, at once and with
 * nothing on stdout; when the last fails the client stops with exit 1. */
static void test_core_start_round(void **state) {
  fx_t *f = fx_new("a:1,b:2,c:3");
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNREFUSED), 1);
  assert_int_equal(chat__session_backoff(&f->c), 0);
  assert_at(&f->c.servers, "b", 2);
  /* b answers with server_busy: another failed try, the core cuts it */
  chat__session_connected(&f->c);
  server_says(f, "{s:s,s:s,s:s}", "type", "error", "code", "server_busy",
              "message", "full");
  assert_int_equal(f->aborted, 1);
  assert_int_equal(f->c.stopping, 0);
  assert_int_equal(chat__session_closed(&f->c, UV_EOF), 1);
  assert_int_equal(chat__session_backoff(&f->c), 0);
  assert_at(&f->c.servers, "c", 3);
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ETIMEDOUT), 0);
  assert_true(f->c.stopping);
  assert_int_equal(f->c.exit_code, 1);
  /* the one line says why each failed */
  assert_non_null(strstr(f->c.start_why, "a:1: ECONNREFUSED"));
  assert_non_null(strstr(f->c.start_why, "b:2: server_busy"));
  assert_non_null(strstr(f->c.start_why, "c:3: ETIMEDOUT"));
  assert_int_equal(json_array_size(f->events), 0); /* no stdout event */
  fx_free(f);
}

/* A session lost at b comes back at c after a jittered delay, with the
 * token instead of the password. */
static void test_core_loss_moves_on_with_token(void **state) {
  fx_t *f = fx_new("a:1,b:2,c:3");
  json_t *ev;
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNREFUSED), 1);
  chat__session_backoff(&f->c);
  welcome(f); /* at b */
  assert_string_equal(field(last_sent(f), "type"), "login");
  assert_string_equal(field(last_sent(f), "password"), "alicepass1");
  server_says(f, "{s:s,s:s,s:s,s:s,s:s}", "type", "ok", "id", "login",
              "user", "alice", "host", "127.0.0.1", "token", TOKEN);
  server_says(f, "{s:s,s:s,s:[]}", "type", "ok", "id", "login-contacts",
              "contacts");
  assert_int_equal(f->c.net, CHAT_NET_READY);
  json_array_clear(f->events);

  assert_int_equal(chat__session_closed(&f->c, UV_ECONNRESET), 1);
  int64_t d = chat__session_backoff(&f->c);
  assert_true(d >= 500 && d <= 1000);
  assert_at(&f->c.servers, "c", 3);
  ev = json_array_get(f->events, 0);
  assert_string_equal(field(ev, "event"), "disconnected");
  ev = json_array_get(f->events, 1);
  assert_string_equal(field(ev, "event"), "reconnecting");
  assert_int_equal(json_integer_value(json_object_get(ev, "in_ms")), d);

  welcome(f); /* at c */
  assert_string_equal(field(last_sent(f), "type"), "login");
  assert_string_equal(field(last_sent(f), "token"), TOKEN);
  assert_null(json_object_get(last_sent(f), "password"));
  /* after the first login a whole failed round is no exit: c fails, a
   * at once, b last, then a backoff */
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNRESET), 1);
  assert_int_equal(chat__session_backoff(&f->c), 0);
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNREFUSED), 1);
  assert_int_equal(chat__session_backoff(&f->c), 0);
  assert_at(&f->c.servers, "b", 2);
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNREFUSED), 1);
  d = chat__session_backoff(&f->c);
  assert_true(d >= 1000 && d <= 2000);
  assert_at(&f->c.servers, "c", 3);
  assert_int_equal(f->c.stopping, 0);
  fx_free(f);
}

/* One address: the exit line is the one it always was. */
static void test_core_one_address_exit(void **state) {
  fx_t *f = fx_new("127.0.0.1:7700");
  connecting(f);
  assert_int_equal(chat__session_closed(&f->c, UV_ECONNREFUSED), 0);
  assert_true(f->c.stopping);
  assert_int_equal(f->c.exit_code, 1);
  assert_string_equal(f->c.start_why, ""); /* the old line, not the list */
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_forms),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_bound),
      cmocka_unit_test(test_start_in_order_at_once),
      cmocka_unit_test(test_loss_starts_after_the_lost),
      cmocka_unit_test(test_backoff_grows_and_caps),
      cmocka_unit_test(test_up_and_reset),
      cmocka_unit_test(test_one_address_as_before),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_core_start_round),
      cmocka_unit_test(test_core_loss_moves_on_with_token),
      cmocka_unit_test(test_core_one_address_exit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
