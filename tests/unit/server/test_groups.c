/* test_groups.c -- PROTOCOL.md section 5 through the server core, at the
 * level of frames: membership (create, add, leave, members, groups) and
 * group_send fan-out (counts, one identical deliver per online member, the
 * ok only after the commit of the stored copies, delivery at login in
 * order, acks, no receipts, repeats, the offline quota). Only frames, the
 * store's public loader and the config are used, so the tests hold whatever
 * the server does inside. */
#include "fixture.h"

/* Every line a session is sent, as its bytes (a frame built as JSON is
 * recorded compactly dumped), so fan-out can be checked byte for byte. */
typedef struct raw {
  cap_t *c;
  json_t *lines;
} raw_t;

static raw_t g_raw[64];
static int g_nraw;

static json_t *raw_lines(cap_t *c) {
  for (int i = 0; i < g_nraw; i++)
    if (g_raw[i].c == c)
      return g_raw[i].lines;
  fail_msg("no raw capture for this session");
  return NULL;
}

static int raw_send(void *ctx, const json_t *obj) {
  size_t before = json_array_size(((cap_t *)ctx)->frames);
  int r = cap_send(ctx, obj);
  if (json_array_size(((cap_t *)ctx)->frames) > before) {
    char *t = json_dumps(obj, JSON_COMPACT);
    json_array_append_new(raw_lines(ctx), json_string(t));
    free(t);
  }
  return r;
}

static int raw_send_line(void *ctx, const char *line, size_t len) {
  size_t before = json_array_size(((cap_t *)ctx)->frames);
  int r = cap_send_line(ctx, line, len);
  if (json_array_size(((cap_t *)ctx)->frames) > before)
    json_array_append_new(raw_lines(ctx), json_stringn(line, len));
  return r;
}

static const chat_sink_t raw_sink = {raw_send,  raw_send_line, cap_close,
                                     cap_pause, cap_resume,    cap_release};

/* The last line c was sent, as bytes. */
static const char *raw_last(cap_t *c) {
  json_t *l = raw_lines(c);
  assert_true(json_array_size(l) > 0);
  return json_string_value(json_array_get(l, json_array_size(l) - 1));
}

static cap_t *connect_raw(fx_t *f) {
  cap_t *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->frames = json_array();
  assert_true(g_nraw < 64);
  g_raw[g_nraw].c = c;
  g_raw[g_nraw++].lines = json_array();
  c->s = chat_srv_session_new(&f->srv, &raw_sink, c, "10.0.0.1");
  assert_non_null(c->s);
  f->caps[f->ncaps++] = c;
  cap_expect_drop(c, "welcome", NULL);
  return c;
}

/* Registers (the first time) and logs in; frames after the ok stay. */
static cap_t *user(fx_t *f, const char *name) {
  cap_t *c = connect_raw(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", name,
          "password", "password1");
  json_decref(cap_next(c)); /* ok, or user_exists */
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "login", "user", name, "password",
          "password1");
  cap_expect_drop(c, "ok", NULL);
  return c;
}

static int setup(void **state) {
  *state = fx_new();
  return 0;
}

static int teardown(void **state) {
  fx_free(*state);
  for (int i = 0; i < g_nraw; i++)
    json_decref(g_raw[i].lines);
  g_nraw = 0;
  return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static json_t *expect_ok(cap_t *c, const char *id) {
  json_t *ok = cap_expect(c, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), id);
  return ok;
}

static void expect_err(cap_t *c, const char *id, const char *code) {
  json_t *e = cap_expect(c, "error", code);
  if (id)
    assert_string_equal(jstr(e, "id"), id);
  json_decref(e);
}

static void req(fx_t *f, cap_t *c, const char *type, const char *group) {
  fx_send(f, c, "{s:s,s:s,s:s}", "type", type, "id", type, "group", group);
}

static void add(fx_t *f, cap_t *c, const char *group, const char *u) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s}", "type", "group_add", "id", "add",
          "group", group, "user", u);
}

static void create_ok(fx_t *f, cap_t *c, const char *group) {
  req(f, c, "group_create", group);
  json_decref(expect_ok(c, "group_create"));
}

static void add_ok(fx_t *f, cap_t *c, const char *group, const char *u) {
  add(f, c, group, u);
  json_decref(expect_ok(c, "add"));
}

static void expect_group_added(cap_t *c, const char *group, const char *by) {
  json_t *e = cap_expect(c, "group_added", NULL);
  assert_string_equal(jstr(e, "group"), group);
  assert_string_equal(jstr(e, "by"), by);
  assert_null(json_object_get(e, "id"));
  json_decref(e);
}

static void expect_presence(cap_t *c, const char *u, const char *status) {
  json_t *p = cap_expect(c, "presence", NULL);
  assert_string_equal(jstr(p, "user"), u);
  assert_string_equal(jstr(p, "status"), status);
  json_decref(p);
}

/* The members list as "name:status,..." in the order given. */
static void expect_members(fx_t *f, cap_t *c, const char *group,
                           const char *want) {
  req(f, c, "group_members", group);
  json_t *ok = expect_ok(c, "group_members");
  json_t *list = json_object_get(ok, "members");
  assert_true(json_is_array(list));
  char got[512] = "";
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *m = json_array_get(list, i);
    size_t n = strlen(got);
    snprintf(got + n, sizeof(got) - n, "%s%s:%s", i ? "," : "",
             jstr(m, "user"), jstr(m, "status"));
  }
  assert_string_equal(got, want);
  json_decref(ok);
}

/* The groups list as "a,b,..." */
static void expect_groups(fx_t *f, cap_t *c, const char *want) {
  fx_send(f, c, "{s:s,s:s}", "type", "groups", "id", "groups");
  json_t *ok = expect_ok(c, "groups");
  json_t *list = json_object_get(ok, "groups");
  assert_true(json_is_array(list));
  char got[512] = "";
  for (size_t i = 0; i < json_array_size(list); i++) {
    size_t n = strlen(got);
    snprintf(got + n, sizeof(got) - n, "%s%s", i ? "," : "",
             json_string_value(json_array_get(list, i)));
  }
  assert_string_equal(got, want);
  json_decref(ok);
}

static void gsend(fx_t *f, cap_t *c, const char *group, const char *msg_id,
                  const char *body) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", msg_id,
          "group", group, "msg_id", msg_id, "body", body);
}

static void expect_sent(cap_t *c, const char *msg_id, int relayed,
                        int stored) {
  json_t *ok = expect_ok(c, msg_id);
  assert_string_equal(jstr(ok, "msg_id"), msg_id);
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")),
                   relayed);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), stored);
  json_decref(ok);
}

static void gsend_ok(fx_t *f, cap_t *c, const char *group, const char *msg_id,
                     int relayed, int stored) {
  gsend(f, c, group, msg_id, msg_id);
  expect_sent(c, msg_id, relayed, stored);
}

/* Pops a deliver and checks every field; group NULL for a 1:1 message.
 * Returns its ts. */
static int64_t expect_deliver(cap_t *c, const char *group, const char *from,
                              const char *msg_id, const char *body,
                              int offline) {
  json_t *d = cap_expect(c, "deliver", NULL);
  if (group)
    assert_string_equal(jstr(d, "group"), group);
  else
    assert_null(json_object_get(d, "group"));
  assert_string_equal(jstr(d, "from"), from);
  assert_string_equal(jstr(d, "msg_id"), msg_id);
  assert_string_equal(jstr(d, "body"), body);
  assert_true(json_is_boolean(json_object_get(d, "offline")));
  assert_int_equal(json_is_true(json_object_get(d, "offline")), offline);
  assert_null(json_object_get(d, "id"));
  int64_t ts = json_integer_value(json_object_get(d, "ts"));
  assert_true(ts > 1500000000000LL); /* ms since the epoch */
  json_decref(d);
  return ts;
}

static void ack(fx_t *f, cap_t *c, const char *from, const char *msg_id) {
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "ack", "msg_id", msg_id, "from",
          from);
}

/* Rows held in the database for msg_id, read through a second read-only
 * connection: "to" names joined by commas, in seq order. */
typedef struct rows {
  const char *msg_id;
  char to[256];
} rows_t;

static int row_cb(void *ctx, const chat_stored_msg_t *m) {
  rows_t *r = ctx;
  if (strcmp(m->msg_id, r->msg_id) == 0) {
    size_t n = strlen(r->to);
    snprintf(r->to + n, sizeof(r->to) - n, "%s%s", n ? "," : "", m->to);
  }
  return 0;
}

static void expect_rows(fx_t *f, const char *msg_id, const char *want) {
  char uri[96], err[128];
  snprintf(uri, sizeof(uri), "file:%s?mode=ro", f->path);
  chat_store_t *st;
  assert_int_equal(chat_store_open(uri, &st, err, sizeof(err)), 0);
  rows_t r = {.msg_id = msg_id, .to = ""};
  assert_int_equal(chat_store_load_messages(st, row_cb, &r), 0);
  chat_store_close(st);
  assert_string_equal(r.to, want);
}

/* alice with contacts bob, carol and dave, all online, in group g. */
static void four(fx_t *f, cap_t **a, cap_t **b, cap_t **c, cap_t **d) {
  *a = user(f, "alice");
  *b = user(f, "bob");
  *c = user(f, "carol");
  *d = user(f, "dave");
  fx_contacts(f, *a, "alice", *b, "bob");
  fx_contacts(f, *a, "alice", *c, "carol");
  fx_contacts(f, *a, "alice", *d, "dave");
  create_ok(f, *a, "g");
  add_ok(f, *a, "g", "bob");
  add_ok(f, *a, "g", "carol");
  add_ok(f, *a, "g", "dave");
  expect_group_added(*b, "g", "alice");
  expect_group_added(*c, "g", "alice");
  expect_group_added(*d, "g", "alice");
}

/* ---- membership ---------------------------------------------------------- */

static void test_create(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob");
  expect_groups(f, a, "");
  create_ok(f, a, "dev");
  expect_members(f, a, "dev", "alice:online"); /* the first member */
  req(f, a, "group_create", "dev");
  expect_err(a, "group_create", "group_exists");
  req(f, b, "group_create", "dev"); /* taken for everyone */
  expect_err(b, "group_create", "group_exists");
  expect_groups(f, b, "");
  const char *bad[] = {"Dev", "", "-dev", "d v", "dev/x",
                       "abcdefghijklmnopqrstuvwxyz0123456"}; /* 33 bytes */
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    req(f, a, "group_create", bad[i]);
    expect_err(a, "group_create", "bad_request");
  }
  fx_send(f, a, "{s:s,s:s}", "type", "group_create", "id", "nogroup");
  expect_err(a, "nogroup", "bad_request");
  fx_send(f, a, "{s:s,s:s,s:i}", "type", "group_create", "id", "num",
          "group", 7);
  expect_err(a, "num", "bad_request");
  create_ok(f, a, "abcdefghijklmnopqrstuvwxyz012345"); /* 32: fine */
  expect_groups(f, a, "abcdefghijklmnopqrstuvwxyz012345,dev");
  cap_empty(a);
  cap_empty(b);
}

static void test_add_errors(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  fx_contacts(f, b, "bob", c, "carol");
  create_ok(f, a, "g");
  add(f, b, "g", "carol"); /* bob is not a member */
  expect_err(b, "add", "not_member");
  add(f, a, "g", "carol"); /* carol is not alice's contact */
  expect_err(a, "add", "not_contact");
  add(f, a, "g", "nobody");
  expect_err(a, "add", "no_such_user");
  add(f, a, "nope", "bob");
  expect_err(a, "add", "no_such_group");
  add(f, a, "g", "Bad Name");
  expect_err(a, "add", "bad_request");
  cap_empty(b);
  cap_empty(c);
  expect_members(f, a, "g", "alice:online");
  /* a member who is not the owner adds his own contact */
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  add_ok(f, b, "g", "carol");
  expect_group_added(c, "g", "bob");
  cap_empty(a); /* only the added user hears of it */
  expect_members(f, c, "g", "alice:online,bob:online,carol:online");
}

static void test_readd_and_offline_add(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  fx_contacts(f, a, "alice", c, "carol");
  create_ok(f, a, "g");
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  add_ok(f, a, "g", "bob"); /* again: ok, no event */
  cap_empty(b);
  add_ok(f, a, "g", "alice"); /* oneself: already a member */
  cap_empty(a);
  expect_members(f, a, "g", "alice:online,bob:online");
  /* carol is offline when added: nothing is queued for her */
  fx_disconnect(f, c);
  expect_presence(a, "carol", "offline");
  add_ok(f, a, "g", "carol");
  cap_t *c2 = user(f, "carol");
  expect_presence(a, "carol", "online");
  cap_empty(c2);
  expect_groups(f, c2, "g"); /* she sees it in groups */
  cap_empty(b);
}

static void test_leave(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob"), *c = user(f, "carol");
  fx_contacts(f, a, "alice", b, "bob");
  create_ok(f, a, "g");
  add_ok(f, a, "g", "bob");
  expect_group_added(b, "g", "alice");
  req(f, c, "group_leave", "g");
  expect_err(c, "group_leave", "not_member");
  req(f, c, "group_leave", "nope");
  expect_err(c, "group_leave", "no_such_group");
  req(f, c, "group_members", "g");
  expect_err(c, "group_members", "not_member");
  /* the owner leaves first: bob keeps the group */
  req(f, a, "group_leave", "g");
  json_decref(expect_ok(a, "group_leave"));
  expect_groups(f, a, "");
  req(f, a, "group_members", "g");
  expect_err(a, "group_members", "not_member");
  req(f, a, "group_leave", "g"); /* twice */
  expect_err(a, "group_leave", "not_member");
  expect_members(f, b, "g", "bob:online");
  req(f, c, "group_create", "g"); /* still taken */
  expect_err(c, "group_create", "group_exists");
  /* the last member leaves: the group ends and the name is free */
  req(f, b, "group_leave", "g");
  json_decref(expect_ok(b, "group_leave"));
  req(f, b, "group_members", "g");
  expect_err(b, "group_members", "no_such_group");
  create_ok(f, c, "g");
  expect_members(f, c, "g", "carol:online"); /* no old member came back */
  expect_groups(f, b, "");
  cap_empty(a);
  cap_empty(b);
}

static void test_leaving_stops_delivery(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  req(f, c, "group_leave", "g");
  json_decref(expect_ok(c, "group_leave"));
  gsend_ok(f, a, "g", "m1", 2, 0);
  expect_deliver(b, "g", "alice", "m1", "m1", 0);
  expect_deliver(d, "g", "alice", "m1", "m1", 0);
  cap_empty(c);
  gsend(f, c, "g", "m2", "let me in");
  expect_err(c, "m2", "not_member");
  cap_empty(a);
  cap_empty(b);
  /* an offline member who left gets nothing at login either */
  fx_disconnect(f, d);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, b, "g", "m3", 1, 1);
  expect_deliver(a, "g", "bob", "m3", "m3", 0);
  cap_t *d2 = user(f, "dave");
  expect_presence(a, "dave", "online");
  expect_deliver(d2, "g", "alice", "m1", "m1", 1); /* pushed, unacked */
  expect_deliver(d2, "g", "bob", "m3", "m3", 1);
  ack(f, d2, "alice", "m1");
  req(f, d2, "group_leave", "g");
  json_decref(expect_ok(d2, "group_leave"));
  fx_disconnect(f, d2);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, b, "g", "m4", 1, 0);
  expect_deliver(a, "g", "bob", "m4", "m4", 0);
  cap_t *d3 = user(f, "dave");
  expect_presence(a, "dave", "online");
  /* m3, sent while dave was a member, is held still; m4 never came */
  expect_deliver(d3, "g", "bob", "m3", "m3", 1);
  cap_empty(d3);
}

static void test_members_sorted_with_status(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice");
  const char *names[] = {"zed", "bob", "b.b", "b-b", "b0", "b_b", "carol"};
  cap_t *u[7];
  for (int i = 0; i < 7; i++) {
    u[i] = user(f, names[i]);
    fx_contacts(f, a, "alice", u[i], names[i]);
  }
  create_ok(f, a, "g");
  for (int i = 0; i < 7; i++) {
    add_ok(f, a, "g", names[i]);
    expect_group_added(u[i], "g", "alice");
  }
  fx_send(f, u[0], "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(u[0], "ok", NULL);
  expect_presence(a, "zed", "away");
  fx_send(f, u[1], "{s:s,s:s}", "type", "status", "status", "busy");
  cap_expect_drop(u[1], "ok", NULL);
  expect_presence(a, "bob", "busy");
  fx_disconnect(f, u[6]);
  expect_presence(a, "carol", "offline");
  const char *want = "alice:online,b-b:online,b.b:online,b0:online,"
                     "b_b:online,bob:busy,carol:offline,zed:away";
  expect_members(f, a, "g", want);
  expect_members(f, u[2], "g", want); /* any member may ask */
  cap_t *x = user(f, "xavier");
  req(f, x, "group_members", "g");
  expect_err(x, "group_members", "not_member");
  req(f, x, "group_members", "nope");
  expect_err(x, "group_members", "no_such_group");
}

static void test_groups_sorted(void **state) {
  fx_t *f = *state;
  cap_t *a = user(f, "alice"), *b = user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  const char *names[] = {"ab", "a_b", "a0", "a.b", "a-b"};
  for (int i = 0; i < 5; i++)
    create_ok(f, b, names[i]);
  create_ok(f, a, "mine");
  add_ok(f, b, "a0", "alice");
  expect_group_added(a, "a0", "bob");
  add_ok(f, b, "ab", "alice");
  expect_group_added(a, "ab", "bob");
  expect_groups(f, b, "a-b,a.b,a0,a_b,ab");
  expect_groups(f, a, "a0,ab,mine");
  req(f, b, "group_leave", "a.b");
  json_decref(expect_ok(b, "group_leave"));
  expect_groups(f, b, "a-b,a0,a_b,ab");
}

static void test_membership_survives_restart(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  create_ok(f, a, "gone");
  req(f, a, "group_leave", "gone"); /* ends it */
  json_decref(expect_ok(a, "group_leave"));
  req(f, c, "group_leave", "g");
  json_decref(expect_ok(c, "group_leave"));
  fx_disconnect(f, d);
  gsend_ok(f, b, "g", "r1", 1, 1);
  fx_restart(f);
  cap_t *a2 = user(f, "alice");
  expect_deliver(a2, "g", "bob", "r1", "r1", 1); /* was pushed, unacked */
  expect_groups(f, a2, "g");
  expect_members(f, a2, "g", "alice:online,bob:offline,dave:offline");
  req(f, a2, "group_members", "gone");
  expect_err(a2, "group_members", "no_such_group");
  create_ok(f, a2, "gone");
  cap_t *d2 = user(f, "dave");
  expect_presence(a2, "dave", "online");
  expect_deliver(d2, "g", "bob", "r1", "r1", 1);
  cap_empty(d2);
}

/* ---- group_send ---------------------------------------------------------- */

/* bob (not the owner) writes to alice, carol (away), dave, with erin and
 * frank offline: relayed 3, stored 2, the ok only after the stored copies
 * are committed, one identical line for the three online members. */
static void test_fanout(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  cap_t *e = user(f, "erin"), *fr = user(f, "frank");
  fx_contacts(f, a, "alice", e, "erin");
  fx_contacts(f, a, "alice", fr, "frank");
  add_ok(f, a, "g", "erin");
  add_ok(f, a, "g", "frank");
  expect_group_added(e, "g", "alice");
  expect_group_added(fr, "g", "alice");
  fx_disconnect(f, e);
  fx_disconnect(f, fr);
  expect_presence(a, "erin", "offline");
  expect_presence(a, "frank", "offline");
  fx_send(f, c, "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(c, "ok", NULL);
  expect_presence(a, "carol", "away");

  json_t *obj = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id",
                          "q1", "group", "g", "msg_id", "f1", "body",
                          "standup \"now\" \xc3\xa9");
  chat_srv_on_frame(&f->srv, b->s, obj);
  json_decref(obj);
  cap_empty(b); /* nothing committed yet: no ok */
  expect_rows(f, "f1", "");
  for (int i = 0; i < 10000 && json_array_size(b->frames) == 0; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  expect_rows(f, "f1", "erin,frank"); /* durable when the ok comes */
  json_t *ok = expect_ok(b, "q1");
  assert_string_equal(jstr(ok, "msg_id"), "f1");
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 3);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), 2);
  assert_null(json_object_get(ok, "over_quota"));
  json_decref(ok);
  fx_run(f);
  cap_empty(b); /* no deliver of its own message */

  cap_t *on[] = {a, c, d};
  int64_t ts = 0;
  for (int i = 0; i < 3; i++) {
    int64_t t = expect_deliver(on[i], "g", "bob", "f1",
                               "standup \"now\" \xc3\xa9", 0);
    assert_true(ts == 0 || t == ts);
    ts = t;
    assert_string_equal(raw_last(on[i]), raw_last(a));
    cap_empty(on[i]); /* exactly one */
  }
  cap_t *e2 = user(f, "erin");
  expect_presence(a, "erin", "online");
  int64_t t = expect_deliver(e2, "g", "bob", "f1", "standup \"now\" \xc3\xa9",
                             1);
  assert_true(t == ts);
  cap_empty(e2);
  ack(f, e2, "bob", "f1");
  expect_rows(f, "f1", "frank");
  cap_empty(b); /* no receipt */
}

/* Only relayed copies: the ok needs no disk, and nothing is written. */
static void test_fanout_all_online(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  gsend_ok(f, a, "g", "o1", 3, 0);
  expect_rows(f, "o1", "");
  cap_t *on[] = {b, c, d};
  for (int i = 0; i < 3; i++) {
    expect_deliver(on[i], "g", "alice", "o1", "o1", 0);
    assert_string_equal(raw_last(on[i]), raw_last(b));
    cap_empty(on[i]);
  }
  cap_empty(a);
  /* a group of one: nobody to tell */
  create_ok(f, a, "solo");
  gsend_ok(f, a, "solo", "o2", 0, 0);
  cap_empty(a);
  cap_empty(b);
}

/* Offline members get group messages in order, interleaved with 1:1
 * messages from the same sender; acks drop them; no receipts for groups. */
static void test_offline_order_and_acks(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, b);
  expect_presence(a, "bob", "offline");
  const char *ids[] = {"g1", "m1", "g2", "m2", "g3"};
  for (int i = 0; i < 5; i++) {
    if (ids[i][0] == 'g') {
      gsend_ok(f, a, "g", ids[i], 2, 1);
    } else {
      fx_send(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "send", "id", ids[i],
              "to", "bob", "msg_id", ids[i], "body", ids[i]);
      json_t *ok = expect_ok(a, ids[i]);
      assert_string_equal(jstr(ok, "status"), "stored");
      json_decref(ok);
    }
  }
  for (int i = 0; i < 5; i += 2) {
    expect_deliver(c, "g", "alice", ids[i], ids[i], 0);
    expect_deliver(d, "g", "alice", ids[i], ids[i], 0);
  }
  cap_t *b2 = user(f, "bob");
  expect_presence(a, "bob", "online");
  for (int i = 0; i < 5; i++)
    expect_deliver(b2, ids[i][0] == 'g' ? "g" : NULL, "alice", ids[i],
                   ids[i], 1);
  cap_empty(b2);
  for (int i = 0; i < 5; i++)
    ack(f, b2, "alice", ids[i]);
  for (int i = 1; i < 5; i += 2) {
    json_t *r = cap_expect(a, "receipt", NULL);
    assert_string_equal(jstr(r, "msg_id"), ids[i]);
    json_decref(r);
  }
  cap_empty(a); /* none for g1..g3 */
  ack(f, c, "alice", "g1"); /* an online member's ack: no receipt either */
  cap_empty(a);
  /* acked ones are gone; carol's unacked g2, g3 come again */
  fx_disconnect(f, b2);
  fx_disconnect(f, c);
  expect_presence(a, "bob", "offline");
  expect_presence(a, "carol", "offline");
  fx_restart(f);
  cap_t *b3 = user(f, "bob");
  cap_empty(b3);
  cap_t *c2 = user(f, "carol");
  expect_deliver(c2, "g", "alice", "g2", "g2", 1);
  expect_deliver(c2, "g", "alice", "g3", "g3", 1);
  cap_empty(c2);
}

static void test_repeat_not_delivered_twice(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, d);
  expect_presence(a, "dave", "offline");
  gsend_ok(f, a, "g", "r1", 2, 1);
  gsend_ok(f, a, "g", "r1", 2, 1); /* the same msg_id again */
  expect_deliver(b, "g", "alice", "r1", "r1", 0);
  expect_deliver(c, "g", "alice", "r1", "r1", 0);
  cap_empty(b);
  cap_empty(c);
  expect_rows(f, "r1", "dave");
  /* bob acked: the repeat reports what is still held */
  ack(f, b, "alice", "r1");
  gsend_ok(f, a, "g", "r1", 1, 1);
  cap_empty(b);
  cap_empty(c);
  cap_t *d2 = user(f, "dave");
  expect_presence(a, "dave", "online");
  expect_deliver(d2, "g", "alice", "r1", "r1", 1);
  cap_empty(d2);
  /* another sender may use the same msg_id: it is unique per sender */
  gsend_ok(f, b, "g", "r1", 3, 0);
  expect_deliver(a, "g", "bob", "r1", "r1", 0);
  expect_deliver(c, "g", "bob", "r1", "r1", 0);
  expect_deliver(d2, "g", "bob", "r1", "r1", 0);
  cap_empty(a);
}

static void test_send_not_member(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  cap_t *x = user(f, "xavier");
  gsend(f, x, "g", "n1", "hello?");
  expect_err(x, "n1", "not_member");
  gsend(f, x, "nope", "n2", "hello?");
  expect_err(x, "n2", "no_such_group");
  fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "group_send", "id", "n3",
          "group", "g", "msg_id", "n3"); /* no body */
  expect_err(a, "n3", "bad_request");
  fx_send(f, a, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", "n4",
          "group", "g", "msg_id", "bad id!", "body", "x");
  expect_err(a, "n4", "bad_request");
  cap_empty(b);
  cap_empty(c);
  cap_empty(d);
  expect_rows(f, "n1", "");
}

static void test_over_quota(void **state) {
  fx_t *f = *state;
  f->srv.cfg.offline_quota = 2;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  fx_disconnect(f, c);
  fx_disconnect(f, d);
  expect_presence(a, "carol", "offline");
  expect_presence(a, "dave", "offline");
  for (int i = 0; i < 2; i++) { /* fill carol's mailbox */
    char id[8];
    snprintf(id, sizeof(id), "c%d", i);
    fx_send(f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "carol",
            "msg_id", id, "body", id);
    cap_expect_drop(a, "ok", NULL);
  }
  gsend(f, a, "g", "q1", "q1");
  json_t *ok = expect_ok(a, "q1");
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), 1);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), 1);
  assert_int_equal(json_integer_value(json_object_get(ok, "over_quota")), 1);
  json_decref(ok);
  expect_deliver(b, "g", "alice", "q1", "q1", 0);
  expect_rows(f, "q1", "dave");
  cap_t *c2 = user(f, "carol");
  expect_presence(a, "carol", "online");
  expect_deliver(c2, NULL, "alice", "c0", "c0", 1);
  expect_deliver(c2, NULL, "alice", "c1", "c1", 1);
  cap_empty(c2); /* q1 skipped for her */
}

/* A member whose output overflows on the shared line: its session ends, its
 * copy counts as stored and is kept, and members after it still get the
 * very same bytes. */
static void test_member_overflow_mid_fanout(void **state) {
  fx_t *f = *state;
  cap_t *a, *b, *c, *d;
  four(f, &a, &b, &c, &d);
  b->limit = b->bytes + 10;
  gsend(f, a, "g", "v1", "v1");
  assert_true(b->closed);
  expect_presence(a, "bob", "offline"); /* during the fan-out */
  expect_sent(a, "v1", 2, 1);
  expect_deliver(c, "g", "alice", "v1", "v1", 0);
  expect_deliver(d, "g", "alice", "v1", "v1", 0);
  assert_string_equal(raw_last(c), raw_last(d));
  fx_disconnect(f, b);
  expect_rows(f, "v1", "bob");
  cap_t *b2 = user(f, "bob");
  expect_presence(a, "bob", "online");
  expect_deliver(b2, "g", "alice", "v1", "v1", 1);
}

/* The ten-member shape of scenario 16: two offline, then one online member
 * leaves, then an offline one. */
static void test_ten_members(void **state) {
  fx_t *f = *state;
  const char *n[] = {"alice", "bob",   "carol", "dave", "erin",
                     "frank", "grace", "heidi", "ivan", "judy"};
  cap_t *u[10];
  for (int i = 0; i < 10; i++)
    u[i] = user(f, n[i]);
  for (int i = 1; i < 10; i++)
    fx_contacts(f, u[0], n[0], u[i], n[i]);
  create_ok(f, u[0], "dev");
  for (int i = 1; i < 10; i++) {
    add_ok(f, u[0], "dev", n[i]);
    expect_group_added(u[i], "dev", "alice");
  }
  fx_disconnect(f, u[8]);
  fx_disconnect(f, u[9]);
  expect_presence(u[0], "ivan", "offline");
  expect_presence(u[0], "judy", "offline");
  gsend_ok(f, u[0], "dev", "t1", 7, 2);
  for (int i = 1; i < 8; i++)
    expect_deliver(u[i], "dev", "alice", "t1", "t1", 0);
  expect_rows(f, "t1", "ivan,judy");
  /* heidi (online) leaves */
  req(f, u[7], "group_leave", "dev");
  json_decref(expect_ok(u[7], "group_leave"));
  gsend_ok(f, u[1], "dev", "t2", 6, 2); /* bob: alice + 5 online */
  expect_deliver(u[0], "dev", "bob", "t2", "t2", 0);
  for (int i = 2; i < 7; i++)
    expect_deliver(u[i], "dev", "bob", "t2", "t2", 0);
  cap_empty(u[7]);
  /* ivan comes back, reads, leaves and goes */
  cap_t *ivan = user(f, "ivan");
  expect_presence(u[0], "ivan", "online");
  expect_deliver(ivan, "dev", "alice", "t1", "t1", 1);
  expect_deliver(ivan, "dev", "bob", "t2", "t2", 1);
  ack(f, ivan, "alice", "t1");
  ack(f, ivan, "bob", "t2");
  req(f, ivan, "group_leave", "dev");
  json_decref(expect_ok(ivan, "group_leave"));
  fx_disconnect(f, ivan);
  expect_presence(u[0], "ivan", "offline");
  gsend_ok(f, u[0], "dev", "t3", 6, 1);
  expect_rows(f, "t3", "judy");
  expect_members(f, u[0], "dev",
                 "alice:online,bob:online,carol:online,dave:online,"
                 "erin:online,frank:online,grace:online,judy:offline");
  cap_t *judy = user(f, "judy");
  expect_presence(u[0], "judy", "online");
  expect_deliver(judy, "dev", "alice", "t1", "t1", 1);
  expect_deliver(judy, "dev", "bob", "t2", "t2", 1);
  expect_deliver(judy, "dev", "alice", "t3", "t3", 1);
  cap_empty(judy);
  cap_t *ivan2 = user(f, "ivan");
  expect_presence(u[0], "ivan", "online");
  cap_empty(ivan2);
  cap_empty(u[7]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_create),
      T(test_add_errors),
      T(test_readd_and_offline_add),
      T(test_leave),
      T(test_leaving_stops_delivery),
      T(test_members_sorted_with_status),
      T(test_groups_sorted),
      T(test_membership_survives_restart),
      T(test_fanout),
      T(test_fanout_all_online),
      T(test_offline_order_and_acks),
      T(test_repeat_not_delivered_twice),
      T(test_send_not_member),
      T(test_over_quota),
      T(test_member_overflow_mid_fanout),
      T(test_ten_members),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
