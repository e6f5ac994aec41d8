/* test_cluster.c -- the core's side of cluster mode (cluster.c) over a bus
 * of the test's own: what sessions here tell the other nodes (login with
 * its epoch, status, logout, routes of messages and receipts, connects),
 * and what the other nodes' events do here (presence only to contacts,
 * kicks by epoch, pages of messages stored elsewhere, receipts, contact
 * events applied to the cache, rejoining after being taken for dead).
 *
 * The fake bus records each call and answers it on the next turn of the
 * loop, never from inside the call, as the Redis bus does, with what the
 * test set for that kind of call. */
#include "fixture.h"

#include "cluster.h"

typedef struct answer {
  int status;
  const char *strs[8];
  size_t n;
  long long ival;
} answer_t;

typedef struct pending {
  struct pending *next;
  chat__bus_reply_cb cb;
  void *arg;
  answer_t a;
} pending_t;

typedef struct fake_bus {
  chat__bus_t base;
  uv_idle_t idle;
  pending_t *head, **tail;
  json_t *calls; /* [{"call": NAME, "user": ..., ...}] */
  answer_t login, route, rejoin, connect, group, msg, statuses;
  char trimmed[40]; /* the last trim asked */
} fake_bus_t;

#define FB(x) ((fake_bus_t *)(void *)(x))

static void on_idle(uv_idle_t *h) {
  fake_bus_t *b = h->data;
  pending_t *p = b->head;
  b->head = NULL;
  b->tail = &b->head;
  uv_idle_stop(h);
  while (p != NULL) {
    pending_t *next = p->next;
    p->cb(p->arg, p->a.status, (char *const *)p->a.strs, p->a.n, p->a.ival);
    free(p);
    p = next;
  }
}

static void later(fake_bus_t *b, chat__bus_reply_cb cb, void *arg,
                  const answer_t *a) {
  pending_t *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  p->cb = cb;
  p->arg = arg;
  p->a = *a;
  *b->tail = p;
  b->tail = &p->next;
  uv_idle_start(&b->idle, on_idle);
}

static void record(fake_bus_t *b, const char *call, const char *user,
                   const char *x, const char *y) {
  json_array_append_new(b->calls,
                        json_pack("{s:s,s:s,s:s,s:s}", "call", call, "user",
                                  user ? user : "", "a", x ? x : "", "b",
                                  y ? y : ""));
}

static int fb_login(chat__bus_t *bb, const char *user, const char *epoch,
                    const char *status, const char *host, int port,
                    const char *key, chat__bus_reply_cb cb, void *arg) {
  record(FB(bb), "login", user, epoch, status);
  later(FB(bb), cb, arg, &FB(bb)->login);
  return 0;
}
static int fb_rejoin(chat__bus_t *bb, const char *user, const char *epoch,
                     const char *status, const char *host, int port,
                     const char *key, chat__bus_reply_cb cb, void *arg) {
  record(FB(bb), "rejoin", user, epoch, status);
  later(FB(bb), cb, arg, &FB(bb)->rejoin);
  return 0;
}
static int fb_status(chat__bus_t *bb, const char *user, const char *epoch,
                     const char *status) {
  record(FB(bb), "status", user, epoch, status);
  return 0;
}
static int fb_logout(chat__bus_t *bb, const char *user, const char *epoch) {
  record(FB(bb), "logout", user, epoch, NULL);
  return 0;
}
static int fb_route(chat__bus_t *bb, const char *user, char kind,
                    const char *x, const char *y, chat__bus_reply_cb cb,
                    void *arg) {
  char k[2] = {kind, 0};
  char name[16];
  snprintf(name, sizeof(name), "route %s", k);
  record(FB(bb), name, user, x, y);
  if (cb != NULL)
    later(FB(bb), cb, arg, &FB(bb)->route);
  return 0;
}
static int fb_msg(chat__bus_t *bb, const char *to, const char *from,
                  const char *msg_id, uint64_t seq, int64_t ts,
                  const char *body, size_t body_len, size_t wire,
                  chat__bus_reply_cb cb, void *arg) {
  record(FB(bb), "msg", to, from, msg_id);
  later(FB(bb), cb, arg, &FB(bb)->msg);
  return 0;
}
static int fb_statuses(chat__bus_t *bb, const char *const *users, size_t n,
                       chat__bus_reply_cb cb, void *arg) {
  record(FB(bb), "statuses", n > 0 ? users[0] : "", NULL, NULL);
  later(FB(bb), cb, arg, &FB(bb)->statuses);
  return 0;
}
static int fb_connect(chat__bus_t *bb, const char *user, const char *line,
                      chat__bus_reply_cb cb, void *arg) {
  record(FB(bb), "connect", user, line, NULL);
  later(FB(bb), cb, arg, &FB(bb)->connect);
  return 0;
}
static int fb_group(chat__bus_t *bb, const char *group, uint64_t seq,
                    chat__bus_reply_cb cb, void *arg) {
  char seqs[24];
  snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
  record(FB(bb), "group", group, seqs, NULL);
  if (cb != NULL)
    later(FB(bb), cb, arg, &FB(bb)->group);
  return 0;
}
static void fb_trim(chat__bus_t *bb, const char *id) {
  snprintf(FB(bb)->trimmed, sizeof(FB(bb)->trimmed), "%s", id);
}
static void fb_free(chat__bus_t *bb) { (void)bb; }

static const chat__bus_type_t fake_type = {
    .login = fb_login,
    .rejoin = fb_rejoin,
    .status = fb_status,
    .logout = fb_logout,
    .route = fb_route,
    .msg = fb_msg,
    .statuses = fb_statuses,
    .connect = fb_connect,
    .group = fb_group,
    .trim = fb_trim,
    .free = fb_free,
};

typedef struct cfx {
  fx_t *f;
  fake_bus_t bus;
} cfx_t;

static void idle_closed(uv_handle_t *h) { (void)h; }

static int setup(void **state) {
  cfx_t *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->f = fx_new();
  c->bus.base.type = &fake_type;
  c->bus.base.slot = 3;
  c->bus.base.node = "n1";
  c->bus.calls = json_array();
  c->bus.tail = &c->bus.head;
  c->bus.login = (answer_t){0, {"0", "0"}, 2, 0};
  c->bus.rejoin = (answer_t){0, {NULL}, 0, 1};
  uv_idle_init(&c->f->loop, &c->bus.idle);
  c->bus.idle.data = &c->bus;
  c->f->srv.bus = &c->bus.base;
  *state = c;
  return 0;
}

static int teardown(void **state) {
  cfx_t *c = *state;
  uv_close((uv_handle_t *)&c->bus.idle, idle_closed);
  fx_run(c->f);
  fx_free(c->f);
  assert_null(c->bus.head);
  json_decref(c->bus.calls);
  free(c);
  return 0;
}

/* The index of the first call named call (and for user), or -1. */
static int called(cfx_t *c, const char *call, const char *user) {
  for (size_t i = 0; i < json_array_size(c->bus.calls); i++) {
    json_t *x = json_array_get(c->bus.calls, i);
    if (strcmp(jstr(x, "call"), call) == 0 &&
        (user == NULL || strcmp(jstr(x, "user"), user) == 0))
      return (int)i;
  }
  return -1;
}

static const char *call_arg(cfx_t *c, int i, const char *k) {
  return jstr(json_array_get(c->bus.calls, (size_t)i), k);
}

static void event(cfx_t *c, char kind, const char *user, const char *a,
                  const char *b, const char *rcpts) {
  chat__bus_event_t ev = {.kind = kind, .user = user, .a = a, .b = b,
                          .rcpts = rcpts};
  chat__cluster_on_event(&c->f->srv, &ev);
  fx_run(c->f);
}

/* bob exists in the store but has no session on this node; alice (here)
 * and bob are contacts. */
static cap_t *alice_and_remote_bob(cfx_t *c) {
  fx_t *f = c->f;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  fx_disconnect(f, b);
  cap_expect_drop(a, "presence", NULL); /* bob offline (here) */
  return a;
}

/* ---- what sessions here tell the others --------------------------------- */

static void test_login_records_epoch_and_remote_statuses(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  int i = called(c, "login", "alice");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), a->s->epoch);
  assert_int_equal(strlen(a->s->epoch), CHAT_BUS_EPOCH_LEN);
  assert_string_equal(call_arg(c, i, "b"), "online");
  /* bob logs in elsewhere: alice, logging in again here, sees him busy */
  c->bus.login = (answer_t){0, {"0", "0", "bob", "busy"}, 4, 0};
  cap_t *a2 = fx_connect(c->f);
  fx_send(c->f, a2, "{s:s,s:s,s:s}", "type", "login", "user", "alice",
          "password", "password1");
  cap_expect_drop(a2, "ok", NULL);
  fx_send(c->f, a2, "{s:s}", "type", "contacts");
  json_t *ok = cap_expect(a2, "ok", NULL);
  json_t *bob = json_array_get(json_object_get(ok, "contacts"), 0);
  assert_string_equal(jstr(bob, "user"), "bob");
  assert_string_equal(jstr(bob, "status"), "busy");
  json_decref(ok);
}

static void test_login_refused_when_directory_fails(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *a = fx_user(f, "alice");
  fx_disconnect(f, a);
  c->bus.login = (answer_t){-EIO, {NULL}, 0, 0};
  cap_t *a2 = fx_connect(f);
  fx_send(f, a2, "{s:s,s:s,s:s}", "type", "login", "user", "alice",
          "password", "password1");
  cap_expect_drop(a2, "error", "internal");
  assert_int_equal(f->srv.nlogged_in, 0);
}

static void test_status_and_logout_told(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  char epoch[CHAT_BUS_EPOCH_LEN + 1];
  snprintf(epoch, sizeof(epoch), "%s", a->s->epoch);
  fx_send(c->f, a, "{s:s,s:s}", "type", "status", "status", "away");
  cap_expect_drop(a, "ok", NULL);
  int i = called(c, "status", "alice");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), epoch);
  assert_string_equal(call_arg(c, i, "b"), "away");
  fx_disconnect(c->f, a);
  i = called(c, "logout", "alice");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), epoch);
}

static void test_send_to_other_node_is_relayed(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  c->bus.msg = (answer_t){0, {"n2"}, 1, 0};
  fx_send(c->f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob",
          "msg_id", "x1", "body", "across");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "status"), "relayed");
  json_decref(ok);
  int i = called(c, "msg", "bob");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), "alice");
  assert_string_equal(call_arg(c, i, "b"), "x1");
  /* carried, not stored: bob's node has it; nothing waits here */
  cap_t *b = fx_connect(c->f);
  fx_send(c->f, b, "{s:s,s:s,s:s}", "type", "login", "user", "bob",
          "password", "password1");
  cap_expect_drop(b, "ok", NULL);
  cap_empty(b);
}

static void test_send_to_nobody_online_is_stored(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  c->bus.msg = (answer_t){0, {NULL}, 0, 0};
  fx_send(c->f, a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob",
          "msg_id", "x2", "body", "later");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "status"), "stored");
  json_decref(ok);
  /* and bob, logging in here, gets it from the store */
  cap_t *b = fx_connect(c->f);
  fx_send(c->f, b, "{s:s,s:s,s:s}", "type", "login", "user", "bob",
          "password", "password1");
  cap_expect_drop(b, "ok", NULL);
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "body"), "later");
  json_decref(d);
}

static void test_connect_across_nodes(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  c->bus.connect = (answer_t){0, {"n2", "192.0.2.9", "4242", ""}, 4, 0};
  fx_send(c->f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(jstr(ok, "host"), "192.0.2.9");
  assert_int_equal(json_integer_value(json_object_get(ok, "port")), 4242);
  const char *ticket = jstr(ok, "ticket");
  assert_int_equal(strlen(ticket), 32);
  /* the expect sent to bob's node carries the same ticket */
  int i = called(c, "connect", "bob");
  assert_true(i >= 0);
  json_t *ex = json_loads(call_arg(c, i, "a"), 0, NULL);
  assert_string_equal(jstr(ex, "type"), "expect");
  assert_string_equal(jstr(ex, "from"), "alice");
  assert_string_equal(jstr(ex, "ticket"), ticket);
  json_decref(ex);
  json_decref(ok);
  /* not logged in anywhere: offline; logged in without a listener: no_p2p */
  c->bus.connect = (answer_t){0, {NULL}, 0, 0};
  fx_send(c->f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  cap_expect_drop(a, "error", "offline");
  c->bus.connect = (answer_t){0, {"n2", "192.0.2.9", "0", ""}, 4, 0};
  fx_send(c->f, a, "{s:s,s:s}", "type", "connect", "to", "bob");
  cap_expect_drop(a, "error", "no_p2p");
}

/* ---- what other nodes' events do here ------------------------------------ */

static void test_presence_event_only_to_contacts(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  cap_t *x = fx_user(c->f, "xena");
  event(c, 'p', "bob", "away", NULL, "alice xena");
  json_t *p = cap_expect(a, "presence", NULL);
  assert_string_equal(jstr(p, "user"), "bob");
  assert_string_equal(jstr(p, "status"), "away");
  json_decref(p);
  cap_empty(x);
  /* and alice's contact list says so */
  fx_send(c->f, a, "{s:s}", "type", "contacts");
  json_t *ok = cap_expect(a, "ok", NULL);
  assert_string_equal(
      jstr(json_array_get(json_object_get(ok, "contacts"), 0), "status"),
      "away");
  json_decref(ok);
  /* the directory is read afresh for the list: a presence event still on
   * its way does not make it say less */
  c->bus.statuses = (answer_t){0, {"busy"}, 1, 0};
  fx_send(c->f, a, "{s:s}", "type", "contacts");
  ok = cap_expect(a, "ok", NULL);
  assert_string_equal(
      jstr(json_array_get(json_object_get(ok, "contacts"), 0), "status"),
      "busy");
  json_decref(ok);
  assert_true(called(c, "statuses", "bob") >= 0);
}

static void test_kick_event_needs_the_epoch(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  event(c, 'k', "bob", "0000000000000000", NULL, NULL);
  cap_empty(b);
  assert_false(b->closed);
  event(c, 'k', "bob", b->s->epoch, NULL, NULL);
  json_t *k = cap_expect(b, "kicked", NULL);
  assert_string_equal(jstr(k, "reason"), "logged_in_elsewhere");
  json_decref(k);
  assert_true(b->closed);
  /* bob is online elsewhere: no offline here, and no logout either */
  cap_empty(a);
  assert_int_equal(called(c, "logout", "bob"), -1);
}

static void test_stored_elsewhere_is_paged(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  fx_contacts(f, a, "alice", b, "bob");
  /* another node (a lower run of seqs) stored a message from alice while
   * bob was online here. Its time is after bob's login: within the login's
   * millisecond it would count as stored while away (chat__srv_held_offline),
   * and this test would depend on the clock ticking in between. */
  chat__user_t *alice = chat__registry_find(&f->srv.reg, "alice");
  chat__user_t *bob = chat__registry_find(&f->srv.reg, "bob");
  chat__srv_put_msg(&f->srv, "bob", alice, NULL, "far1", "from afar", 9, 7,
                    bob->login_ms + 1, 0);
  fx_run(f);
  cap_empty(b);
  event(c, 'm', "bob", NULL, NULL, NULL);
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "far1");
  assert_false(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
  /* its ack routes a receipt to alice's node (alice is not here for it) */
  fx_disconnect(f, a);
  fx_send(f, b, "{s:s,s:s,s:s}", "type", "ack", "from", "alice", "msg_id",
          "far1");
  int i = called(c, "route r", "alice");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), "far1");
  assert_string_equal(call_arg(c, i, "b"), "bob");
}

static void carried(cfx_t *c, const char *to, const char *from,
                    const char *msg_id, uint64_t seq, const char *body) {
  char id[32];
  snprintf(id, sizeof(id), "%llu-0", (unsigned long long)seq);
  chat__bus_event_t ev = {.kind = 'M', .user = to, .a = from, .b = msg_id,
                          .seq = seq, .ts = chat__srv_now_wall_ms(),
                          .body = body, .body_len = strlen(body), .id = id,
                          .entry_end = 1};
  chat__cluster_on_event(&c->f->srv, &ev);
  fx_run(c->f);
}

/* A message carried from another node is pushed as a relay (once, even
 * when it comes again), its ack routes a receipt to the sender's node, and
 * one for a user no longer here is stored and its node told. */
static void test_carried_message(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *b = fx_user(f, "bob");
  cap_t *k = fx_user(f, "alice");
  fx_disconnect(f, k); /* alice is on another node */
  carried(c, "bob", "alice", "c1", 77, "hello from afar");
  json_t *d = cap_expect(b, "deliver", NULL);
  assert_string_equal(jstr(d, "from"), "alice");
  assert_string_equal(jstr(d, "body"), "hello from afar");
  assert_false(json_is_true(json_object_get(d, "offline")));
  json_decref(d);
  /* its inbox entry stays until the message is settled */
  assert_string_equal(c->bus.trimmed, "77-0");
  carried(c, "bob", "alice", "c1", 77, "hello from afar"); /* again */
  cap_empty(b);
  fx_send(f, b, "{s:s,s:s,s:s}", "type", "ack", "from", "alice", "msg_id",
          "c1");
  /* settled, and its entry read to the end: the entry itself goes (a
   * MINID of its own id would keep it, and a login elsewhere after this
   * node's death would deliver it again) */
  assert_string_equal(c->bus.trimmed, "77-1");
  int i = called(c, "route r", "alice");
  assert_true(i >= 0);
  assert_string_equal(call_arg(c, i, "a"), "c1");
  /* bob has gone: a message for him is stored and his node told */
  fx_disconnect(f, b);
  carried(c, "bob", "alice", "c2", 78, "kept");
  assert_true(called(c, "route m", "bob") >= 0);
  cap_t *b2 = fx_connect(f);
  fx_send(f, b2, "{s:s,s:s,s:s}", "type", "login", "user", "bob",
          "password", "password1");
  cap_expect_drop(b2, "ok", NULL);
  d = cap_expect(b2, "deliver", NULL);
  assert_string_equal(jstr(d, "msg_id"), "c2");
  json_decref(d);
  /* malformed: dropped */
  carried(c, "bob", "Not A Name", "c3", 79, "x");
  cap_empty(b2);
}

static void test_receipt_event(void **state) {
  cfx_t *c = *state;
  cap_t *a = alice_and_remote_bob(c);
  event(c, 'r', "alice", "m77", "bob", NULL);
  json_t *r = cap_expect(a, "receipt", NULL);
  assert_string_equal(jstr(r, "msg_id"), "m77");
  assert_string_equal(jstr(r, "to"), "bob");
  json_decref(r);
  /* a malformed one is dropped */
  event(c, 'r', "alice", "m78", "Not A Name", NULL);
  cap_empty(a);
}

static void test_contact_request_event_applies(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *b = fx_user(f, "bob");
  cap_t *k = fx_user(f, "carol");
  fx_disconnect(f, k); /* carol is on another node */
  /* carol asked there: the store has the request, bob hears of it here */
  chat__srv_op2(&f->srv, CHAT_STORE_ADD_REQUEST, "carol", "bob");
  fx_run(f);
  event(c, 'e', "bob", "{\"type\":\"contact_request\",\"from\":\"carol\"}",
        NULL, NULL);
  json_t *r = cap_expect(b, "contact_request", NULL);
  assert_string_equal(jstr(r, "from"), "carol");
  json_decref(r);
  fx_send(f, b, "{s:s,s:s}", "type", "contact_accept", "user", "carol");
  cap_expect_drop(b, "ok", NULL);
  cap_expect_drop(b, "contact_added", NULL);
  /* the contact_added for carol went to her node */
  assert_true(called(c, "route e", "carol") >= 0);
}

static void test_lost_node_rejoins(void **state) {
  cfx_t *c = *state;
  fx_t *f = c->f;
  cap_t *a = fx_user(f, "alice"), *b = fx_user(f, "bob");
  (void)a;
  c->bus.rejoin = (answer_t){0, {NULL}, 0, 1};
  chat__cluster_on_lost(&f->srv);
  fx_run(f);
  assert_true(called(c, "rejoin", "alice") >= 0);
  assert_true(called(c, "rejoin", "bob") >= 0);
  assert_false(b->closed);
  /* bob logged in elsewhere meanwhile: its session here goes */
  c->bus.rejoin = (answer_t){0, {NULL}, 0, 0};
  chat__cluster_on_lost(&f->srv);
  fx_run(f);
  cap_expect_drop(b, "kicked", NULL);
  assert_true(b->closed);
}

/* ---- seqs --------------------------------------------------------------- */

#define SLOT_OF(x) ((int)(((x) >> 12) & 1023))

/* Seqs in cluster mode: increasing, in this node's slot (so no other live
 * node makes the same one), above another node's clock when asked, and in
 * the new slot when the bus changes it. */
static void test_seqs_in_slot_and_time(void **state) {
  cfx_t *c = *state;
  chat__srv_t *srv = &c->f->srv;
  uint64_t prev = chat__srv_take_seq(srv);
  int64_t ms = chat__srv_now_wall_ms() - 1767225600000LL;
  assert_int_equal(SLOT_OF(prev), 3);
  /* its time part is now's */
  assert_true((int64_t)(prev >> 22) >= ms - 1000 &&
              (int64_t)(prev >> 22) <= ms + 1000);
  for (int i = 0; i < 10000; i++) { /* more than one ms's counter */
    uint64_t x = chat__srv_take_seq(srv);
    assert_true(x > prev);
    assert_int_equal(SLOT_OF(x), 3);
    prev = x;
  }
  uint64_t far = ((prev >> 22) + 5000) << 22 | 7u << 12 | 5; /* slot 7 */
  chat__srv_seq_above(srv, far);
  uint64_t x = chat__srv_take_seq(srv);
  assert_true(x > far);
  assert_int_equal(SLOT_OF(x), 3);
  c->bus.base.slot = 9;
  uint64_t y = chat__srv_take_seq(srv);
  assert_true(y > x);
  assert_int_equal(SLOT_OF(y), 9);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_login_records_epoch_and_remote_statuses),
      T(test_login_refused_when_directory_fails),
      T(test_status_and_logout_told),
      T(test_send_to_other_node_is_relayed),
      T(test_send_to_nobody_online_is_stored),
      T(test_connect_across_nodes),
      T(test_presence_event_only_to_contacts),
      T(test_kick_event_needs_the_epoch),
      T(test_stored_elsewhere_is_paged),
      T(test_receipt_event),
      T(test_carried_message),
      T(test_contact_request_event_applies),
      T(test_lost_node_rejoins),
      T(test_seqs_in_slot_and_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
