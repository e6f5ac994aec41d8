/* test_fast_line.c -- chat__srv_on_fast_line against chat__srv_on_frame: two
 * servers in the same state get the same lines, one through the fast path
 * (where it takes them) and one through the full parse; every session of
 * both must then have received the same frames (only deliver's ts, a wall
 * clock, may differ). Covers relay, duplicates, escapes, acks, receipts,
 * storing for an offline user, groups, and the error replies. */
#include "fixture.h"

typedef struct world {
  fx_t *f;
  cap_t *alice, *bob, *guest;
} world_t;

static void make_world(world_t *w) {
  fx_t *f = w->f = fx_new();
  w->alice = fx_user(f, "alice");
  w->bob = fx_user(f, "bob");
  fx_contacts(f, w->alice, "alice", w->bob, "bob");
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", "carol",
          "password", "password1");
  cap_expect_drop(c, "ok", NULL);
  fx_disconnect(f, c);
  fx_send(f, w->alice, "{s:s,s:s}", "type", "group_create", "group", "g");
  cap_expect_drop(w->alice, "ok", NULL);
  fx_send(f, w->alice, "{s:s,s:s,s:s}", "type", "group_add", "group", "g",
          "user", "bob");
  cap_expect_drop(w->alice, "ok", NULL);
  cap_expect_drop(w->bob, "group_added", NULL);
  w->guest = fx_connect(f); /* never logs in */
}

static int setup(void **state) {
  world_t *w = calloc(2, sizeof(*w));
  assert_non_null(w);
  make_world(&w[0]);
  make_world(&w[1]);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world_t *w = *state;
  fx_free(w[0].f);
  fx_free(w[1].f);
  free(w);
  return 0;
}

static cap_t *who(world_t *w, char c) {
  return c == 'a' ? w->alice : c == 'b' ? w->bob : w->guest;
}

/* Feeds line to world 0 through the full path and to world 1 through the
 * fast one; returns whether the fast path took it. */
static int feed(world_t *w, char from, const char *line) {
  json_t *obj = NULL;
  chat_error_t err;
  size_t len = strlen(line);
  int taken;

  if (chat_frame_parse(line, len, &obj, &err) == 0)
    chat__srv_on_frame(&w[0].f->srv, who(&w[0], from)->s, obj);
  else
    chat__srv_on_bad_frame(&w[0].f->srv, who(&w[0], from)->s, &err);
  fx_run(w[0].f);

  taken = chat__srv_on_fast_line(&w[1].f->srv, who(&w[1], from)->s, line, len);
  if (!taken) {
    if (obj != NULL)
      chat__srv_on_frame(&w[1].f->srv, who(&w[1], from)->s, obj);
    else
      chat__srv_on_bad_frame(&w[1].f->srv, who(&w[1], from)->s, &err);
  }
  fx_run(w[1].f);
  json_decref(obj);
  return taken;
}

/* Both worlds' sessions got the same frames; returns how many. */
static int same_output(world_t *w) {
  int n = 0;
  for (const char *c = "abg"; *c; c++) {
    cap_t *x = who(&w[0], *c), *y = who(&w[1], *c);
    json_t *fx, *fy;
    while ((fx = cap_next(x)) != NULL) {
      fy = cap_next(y);
      assert_non_null(fy);
      if (json_object_get(fx, "ts")) {
        assert_true(json_is_integer(json_object_get(fy, "ts")));
        json_object_del(fx, "ts");
        json_object_del(fy, "ts");
      }
      if (!json_equal(fx, fy)) {
        char *a = json_dumps(fx, JSON_COMPACT),
             *b = json_dumps(fy, JSON_COMPACT);
        fail_msg("full path: %s\nfast path: %s", a, b);
      }
      json_decref(fx);
      json_decref(fy);
      n++;
    }
    assert_null(cap_next(y));
  }
  return n;
}

#define FAST(w, from, line, frames)                                          \
  do {                                                                       \
    assert_int_equal(feed(w, from, line), 1);                                \
    assert_int_equal(same_output(w), frames);                                \
  } while (0)
#define FULL(w, from, line, frames)                                          \
  do {                                                                       \
    assert_int_equal(feed(w, from, line), 0);                                \
    assert_int_equal(same_output(w), frames);                                \
  } while (0)

static void test_same_as_full_path(void **state) {
  world_t *w = *state;

  /* relayed: ok to alice, deliver to bob */
  FAST(w, 'a', "{\"type\":\"send\",\"id\":1,\"to\":\"bob\",\"msg_id\":\"m1\","
               "\"body\":\"hi\"}", 2);
  /* a repeat: only the ok */
  FAST(w, 'a', "{\"type\":\"send\",\"id\":2,\"to\":\"bob\",\"msg_id\":\"m1\","
               "\"body\":\"hi\"}", 1);
  /* the ack: a receipt to alice */
  FAST(w, 'b', "{\"type\":\"ack\",\"msg_id\":\"m1\",\"from\":\"alice\"}", 1);
  /* an ack of nothing, and of an unknown user: no reply */
  FAST(w, 'b', "{\"type\":\"ack\",\"msg_id\":\"m1\",\"from\":\"alice\"}", 0);
  FAST(w, 'b', "{\"type\":\"ack\",\"msg_id\":\"m1\",\"from\":\"zed\"}", 0);
  /* escapes in the body, a string id, spaces */
  FAST(w, 'a',
       " { \"type\" : \"send\", \"id\":\"s-1\", \"to\":\"bob\", "
       "\"msg_id\":\"m2\", \"body\":\"a\\\"b\\\\c\\nd\\/e\\t\xc3\xa9\" }",
       2);
  /* to an offline user: stored, ok after the commit */
  FAST(w, 'a', "{\"type\":\"send\",\"id\":3,\"to\":\"carol\",\"msg_id\":\"m3\","
               "\"body\":\"later\"}", 1);
  /* handler errors */
  FAST(w, 'a',
       "{\"type\":\"send\",\"id\":4,\"to\":\"nobody\",\"msg_id\":\"m4\","
       "\"body\":\"x\"}",
       1);
  FAST(w, 'a', "{\"type\":\"send\",\"id\":5,\"to\":\"alice\",\"msg_id\":\"m5\","
               "\"body\":\"x\"}", 1);
  /* before login */
  FAST(w, 'g', "{\"type\":\"send\",\"id\":6,\"to\":\"bob\",\"msg_id\":\"m6\","
               "\"body\":\"x\"}", 1);
  /* groups: deliver to bob, ok to alice; unknown group; not a member */
  FAST(w, 'a', "{\"type\":\"group_send\",\"id\":7,\"group\":\"g\","
               "\"msg_id\":\"g1\",\"body\":\"yo\"}", 2);
  FAST(w, 'a', "{\"type\":\"group_send\",\"id\":8,\"group\":\"g\","
               "\"msg_id\":\"g1\",\"body\":\"yo\"}", 1);
  FAST(w, 'b', "{\"type\":\"ack\",\"msg_id\":\"g1\",\"from\":\"alice\"}", 0);
  FAST(w, 'a', "{\"type\":\"group_send\",\"id\":9,\"group\":\"zz\","
               "\"msg_id\":\"g2\",\"body\":\"yo\"}", 1);
  /* what the fast path leaves alone gets the full path's answers */
  FULL(w, 'a', "{\"type\":\"send\",\"id\":10,\"to\":\"bob\",\"msg_id\":\"m7\","
               "\"body\":\"\\u0041\"}", 2);
  FULL(w, 'a', "{\"type\":\"send\",\"id\":11,\"to\":\"bob\"}", 1);
  FULL(w, 'a', "{\"type\":\"send\",\"id\":11,\"to\":\"bob\",\"to\":\"x\"}", 1);
  FULL(w, 'a', "{\"type\":\"ping\",\"id\":12}", 1);
  FULL(w, 'a', "not json", 1);
  /* the pushed, unacked messages are the same in both */
  assert_int_equal(w[0].f->srv.mb.count, w[1].f->srv.mb.count);
}

/* The rate limit applies to fast lines too, echoing their id. */
static void test_rate_limit(void **state) {
  world_t *w = *state;
  w[0].f->srv.cfg.rate_limit = w[1].f->srv.cfg.rate_limit = 1;
  chat__ratelimit_init(&w[0].alice->s->rl, 1, uv_now(&w[0].f->loop));
  chat__ratelimit_init(&w[1].alice->s->rl, 1, uv_now(&w[1].f->loop));
  int got = 0;
  for (int i = 0; i < 5; i++) {
    char line[160];
    snprintf(line, sizeof(line),
             "{\"type\":\"send\",\"id\":%d,\"to\":\"bob\",\"msg_id\":\"r%d\","
             "\"body\":\"x\"}", i, i);
    assert_int_equal(feed(w, 'a', line), 1);
    got += same_output(w);
  }
  assert_true(got >= 5); /* an ok or a rate_limited for each */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_same_as_full_path, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
