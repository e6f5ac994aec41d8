/* group_fixture.h -- what test_groups.c (membership) and test_group_send.c
 * (fan-out) share: sessions whose every line is also kept as bytes, so
 * fan-out can be checked byte for byte, users, and helpers that send a
 * group request and check its reply. Header-only, on top of fixture.h;
 * setup and teardown are the cmocka fixture of each test. */
#ifndef TEST_SERVER_GROUP_FIXTURE_H
#define TEST_SERVER_GROUP_FIXTURE_H

#include "fixture.h"

/* Every line a session is sent, as its bytes (a frame built as JSON is
 * recorded compactly dumped), so fan-out can be checked byte for byte. */
typedef struct raw {
  cap_t *c;
  json_t *lines;
} raw_t;

static raw_t g_raw[64];
static int g_nraw;

static inline json_t *raw_lines(cap_t *c) {
  for (int i = 0; i < g_nraw; i++)
    if (g_raw[i].c == c)
      return g_raw[i].lines;
  fail_msg("no raw capture for this session");
  return NULL;
}

static inline int raw_send(void *ctx, const json_t *obj) {
  size_t before = json_array_size(((cap_t *)ctx)->frames);
  int r = cap_send(ctx, obj);
  if (json_array_size(((cap_t *)ctx)->frames) > before) {
    char *t = json_dumps(obj, JSON_COMPACT);
    json_array_append_new(raw_lines(ctx), json_string(t));
    free(t);
  }
  return r;
}

static inline int raw_send_line(void *ctx, const char *line, size_t len) {
  size_t before = json_array_size(((cap_t *)ctx)->frames);
  int r = cap_send_line(ctx, line, len);
  if (json_array_size(((cap_t *)ctx)->frames) > before)
    json_array_append_new(raw_lines(ctx), json_stringn(line, len));
  return r;
}

static const chat__sink_t raw_sink = {raw_send,  raw_send_line, cap_close,
                                      cap_pause, cap_resume,    cap_release,
                                      NULL};

/* The last line c was sent, as bytes. */
static inline const char *raw_last(cap_t *c) {
  json_t *l = raw_lines(c);
  assert_true(json_array_size(l) > 0);
  return json_string_value(json_array_get(l, json_array_size(l) - 1));
}

static inline cap_t *connect_raw(fx_t *f) {
  cap_t *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->frames = json_array();
  assert_true(g_nraw < 64);
  g_raw[g_nraw].c = c;
  g_raw[g_nraw++].lines = json_array();
  c->s = chat__srv_session_new(&f->srv, &raw_sink, c, "10.0.0.1");
  assert_non_null(c->s);
  f->caps[f->ncaps++] = c;
  cap_expect_drop(c, "welcome", NULL);
  return c;
}

/* Registers (the first time) and logs in; frames after the ok stay. */
static inline cap_t *user(fx_t *f, const char *name) {
  cap_t *c = connect_raw(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", name, "password",
          "password1");
  json_decref(cap_next(c)); /* ok, or user_exists */
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "login", "user", name, "password",
          "password1");
  cap_expect_drop(c, "ok", NULL);
  return c;
}

static inline int setup(void **state) {
  *state = fx_new();
  return 0;
}

static inline int teardown(void **state) {
  fx_free(*state);
  for (int i = 0; i < g_nraw; i++)
    json_decref(g_raw[i].lines);
  g_nraw = 0;
  return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static inline json_t *expect_ok(cap_t *c, const char *id) {
  json_t *ok = cap_expect(c, "ok", NULL);
  assert_string_equal(jstr(ok, "id"), id);
  return ok;
}

static inline void expect_err(cap_t *c, const char *id, const char *code) {
  json_t *e = cap_expect(c, "error", code);
  if (id)
    assert_string_equal(jstr(e, "id"), id);
  json_decref(e);
}

static inline void req(fx_t *f, cap_t *c, const char *type, const char *group) {
  fx_send(f, c, "{s:s,s:s,s:s}", "type", type, "id", type, "group", group);
}

static inline void add(fx_t *f, cap_t *c, const char *group, const char *u) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s}", "type", "group_add", "id", "add", "group",
          group, "user", u);
}

static inline void create_ok(fx_t *f, cap_t *c, const char *group) {
  req(f, c, "group_create", group);
  json_decref(expect_ok(c, "group_create"));
}

static inline void add_ok(fx_t *f, cap_t *c, const char *group, const char *u) {
  add(f, c, group, u);
  json_decref(expect_ok(c, "add"));
}

static inline void expect_group_added(cap_t *c, const char *group,
                                      const char *by) {
  json_t *e = cap_expect(c, "group_added", NULL);
  assert_string_equal(jstr(e, "group"), group);
  assert_string_equal(jstr(e, "by"), by);
  assert_null(json_object_get(e, "id"));
  json_decref(e);
}

static inline void expect_presence(cap_t *c, const char *u,
                                   const char *status) {
  json_t *p = cap_expect(c, "presence", NULL);
  assert_string_equal(jstr(p, "user"), u);
  assert_string_equal(jstr(p, "status"), status);
  json_decref(p);
}

/* The members list as "name:status,..." in the order given. */
static inline void expect_members(fx_t *f, cap_t *c, const char *group,
                                  const char *want) {
  req(f, c, "group_members", group);
  json_t *ok = expect_ok(c, "group_members");
  json_t *list = json_object_get(ok, "members");
  assert_true(json_is_array(list));
  char got[512] = "";
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *m = json_array_get(list, i);
    size_t n = strlen(got);
    snprintf(got + n, sizeof(got) - n, "%s%s:%s", i ? "," : "", jstr(m, "user"),
             jstr(m, "status"));
  }
  assert_string_equal(got, want);
  json_decref(ok);
}

/* The groups list as "a,b,..." */
static inline void expect_groups(fx_t *f, cap_t *c, const char *want) {
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

static inline void gsend(fx_t *f, cap_t *c, const char *group,
                         const char *msg_id, const char *body) {
  fx_send(f, c, "{s:s,s:s,s:s,s:s,s:s}", "type", "group_send", "id", msg_id,
          "group", group, "msg_id", msg_id, "body", body);
}

static inline void expect_sent(cap_t *c, const char *msg_id, int relayed,
                               int stored) {
  json_t *ok = expect_ok(c, msg_id);
  assert_string_equal(jstr(ok, "msg_id"), msg_id);
  assert_int_equal(json_integer_value(json_object_get(ok, "relayed")), relayed);
  assert_int_equal(json_integer_value(json_object_get(ok, "stored")), stored);
  json_decref(ok);
}

static inline void gsend_ok(fx_t *f, cap_t *c, const char *group,
                            const char *msg_id, int relayed, int stored) {
  gsend(f, c, group, msg_id, msg_id);
  expect_sent(c, msg_id, relayed, stored);
}

/* Pops a deliver and checks every field; group NULL for a 1:1 message.
 * Returns its ts. */
static inline int64_t expect_deliver(cap_t *c, const char *group,
                                     const char *from, const char *msg_id,
                                     const char *body, int offline) {
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

static inline void ack(fx_t *f, cap_t *c, const char *from,
                       const char *msg_id) {
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "ack", "msg_id", msg_id, "from", from);
}

/* Rows held in the database for msg_id, read through a second read-only
 * connection: "to" names joined by commas, in seq order. */
typedef struct rows {
  const char *msg_id;
  char to[256];
} rows_t;

static inline int row_cb(void *ctx, const chat__stored_msg_t *m) {
  rows_t *r = ctx;
  if (strcmp(m->msg_id, r->msg_id) == 0) {
    size_t n = strlen(r->to);
    snprintf(r->to + n, sizeof(r->to) - n, "%s%s", n ? "," : "", m->to);
  }
  return 0;
}

static inline void expect_rows(fx_t *f, const char *msg_id, const char *want) {
  char uri[96], err[128];
  snprintf(uri, sizeof(uri), "file:%s?mode=ro", f->path);
  chat__store_t *st;
  assert_int_equal(chat__store_open(uri, &st, err, sizeof(err)), 0);
  rows_t r = {.msg_id = msg_id, .to = ""};
  assert_int_equal(chat__store_load_messages(st, row_cb, &r), 0);
  chat__store_close(st);
  assert_string_equal(r.to, want);
}

/* alice with contacts bob, carol and dave, all online, in group g. */
static inline void four(fx_t *f, cap_t **a, cap_t **b, cap_t **c, cap_t **d) {
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

/* A test of either file, on a fresh fixture. */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

#endif /* TEST_SERVER_GROUP_FIXTURE_H */
