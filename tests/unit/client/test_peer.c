/* test_peer.c -- the listener's side of direct links (peer.c), driven
 * through the client core's env seam on a fake clock: which hellos get a
 * peer_welcome, which get an error and a close, and the hello deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static const char T1[] = "0123456789abcdef0123456789abcdef";
static const char T2[] = "fedcba9876543210fedcba9876543210";

/* One fake link: what the core sent on it and whether it closed it. */
typedef struct link {
  chat_peer_t *p;
  json_t *sent;   /* array of the frames the core sent */
  int closed;     /* 1 graceful, 2 at once */
  int paused;
} link_t;

typedef struct fx {
  uv_loop_t loop;
  chat_client_t c;
  uint64_t now;
  json_t *to_server;
  json_t *events;
  link_t links[8];
  int nlinks;
} fx_t;

static uint64_t env_now(void *ctx) { return ((fx_t *)ctx)->now; }
static int env_server_send(void *ctx, const json_t *obj) {
  return json_array_append(((fx_t *)ctx)->to_server, (json_t *)obj);
}
static void env_server_abort(void *ctx) {}
static int env_peer_dial(void *ctx, chat_peer_t *p, const char *host,
                         int port, void **link) {
  return -ENOMEM; /* these tests only listen */
}
static int env_peer_send(void *ctx, void *link, const json_t *obj) {
  link_t *l = link;
  if (l->closed)
    return -EPIPE;
  return json_array_append(l->sent, (json_t *)obj);
}
static void env_peer_close(void *ctx, void *link, int graceful) {
  link_t *l = link;
  if (!l->closed)
    l->closed = graceful ? 1 : 2;
}
static void env_peer_pause(void *ctx, void *link) {
  ((link_t *)link)->paused = 1;
}
static void env_peer_resume(void *ctx, void *link) {
  ((link_t *)link)->paused = 0;
}
static void env_event(void *ctx, const json_t *ev) {
  json_array_append(((fx_t *)ctx)->events, (json_t *)ev);
}
static int env_input_start(void *ctx) { return 0; }

static const chat_client_env_t env = {
    env_now,       env_server_send, env_server_abort, env_peer_dial,
    env_peer_send, env_peer_close,  env_peer_pause,   env_peer_resume,
    env_event,     env_input_start, NULL,             NULL,
    NULL};

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

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  chat_client_opts_t opts;
  assert_non_null(f);
  memset(&opts, 0, sizeof(opts));
  strcpy(opts.user, "alice");
  strcpy(opts.password, "alicepass1");
  f->now = 1000000;
  f->to_server = json_array();
  f->events = json_array();
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(chat_client_init_core(&f->c, &f->loop, &opts, &env, f), 0);
  f->c.p2p_port = 4000;
  /* Connected and logged in, no contacts. */
  chat__session_connected(&f->c);
  server_says(f, "{s:s,s:i,s:s,s:i,s:i}", "type", "welcome", "proto", 1,
              "server", "fake", "heartbeat", 30, "max_frame", 65536);
  server_says(f, "{s:s,s:s,s:s,s:s}", "type", "ok", "id", "login", "user",
              "alice", "host", "127.0.0.1");
  server_says(f, "{s:s,s:s,s:[]}", "type", "ok", "id", "login-contacts",
              "contacts");
  assert_int_equal(f->c.net, CHAT_NET_READY);
  *state = f;
  return 0;
}

/* The closes the core asked for, reported back. */
static void settle(fx_t *f) {
  for (int i = 0; i < f->nlinks; i++)
    if (f->links[i].closed && f->links[i].p) {
      chat_peer_t *p = f->links[i].p;
      f->links[i].p = NULL;
      chat__peer_closed(p);
    }
}

static int teardown(void **state) {
  fx_t *f = *state;
  chat__client_stop(&f->c, 0);           /* logs out */
  chat__session_closed(&f->c, UV_EOF);   /* the server closes */
  settle(f);
  assert_null(f->c.peers);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  chat_client_free(&f->c);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (int i = 0; i < f->nlinks; i++)
    json_decref(f->links[i].sent);
  json_decref(f->to_server);
  json_decref(f->events);
  free(f);
  return 0;
}

static link_t *dial_in(fx_t *f) {
  link_t *l = &f->links[f->nlinks++];
  l->sent = json_array();
  l->p = chat__peer_accepted(&f->c, l);
  assert_non_null(l->p);
  return l;
}

static void peer_says(link_t *l, const char *fmt, ...) {
  va_list ap;
  json_t *obj;
  va_start(ap, fmt);
  obj = json_vpack_ex(NULL, 0, fmt, ap);
  va_end(ap);
  assert_non_null(obj);
  chat__peer_on_frame(l->p, obj);
  json_decref(obj);
}

static void hello(link_t *l, const char *from, const char *to,
                  const char *ticket) {
  peer_says(l, "{s:s,s:i,s:s,s:s,s:s}", "type", "peer_hello", "proto", 1,
            "from", from, "to", to, "ticket", ticket);
}

static void expect(fx_t *f, const char *from, const char *ticket) {
  server_says(f, "{s:s,s:s,s:s}", "type", "expect", "from", from, "ticket",
              ticket);
}

/* The i-th frame the core sent on l has this type (and code). */
static void assert_sent(const link_t *l, size_t i, const char *type,
                        const char *code) {
  json_t *m = json_array_get(l->sent, i);
  if (!m)
    fail_msg("frame %zu was not sent (only %zu)", i,
             json_array_size(l->sent));
  assert_string_equal(json_string_value(json_object_get(m, "type")), type);
  if (code)
    assert_string_equal(json_string_value(json_object_get(m, "code")), code);
}

static void assert_welcomed(const link_t *l) {
  assert_int_equal(json_array_size(l->sent), 1);
  assert_sent(l, 0, "peer_welcome", NULL);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(l->sent, 0), "user")),
      "alice");
  assert_int_equal(l->closed, 0);
}

static void assert_refused(const link_t *l, const char *code) {
  assert_int_equal(json_array_size(l->sent), 1);
  assert_sent(l, 0, "error", code);
  assert_int_equal(l->closed, 1); /* after the error is flushed */
}

static void test_expect_then_hello(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1);
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T1);
  assert_welcomed(l);
  /* The link works: a msg is shown as from bob and acked. */
  peer_says(l, "{s:s,s:s,s:s,s:I}", "type", "msg", "msg_id", "m1", "body",
            "hi", "ts", (json_int_t)1);
  assert_sent(l, 1, "ack", NULL);
  json_t *ev = json_array_get(f->events, json_array_size(f->events) - 1);
  assert_string_equal(json_string_value(json_object_get(ev, "event")),
                      "message");
  assert_string_equal(json_string_value(json_object_get(ev, "from")), "bob");
}

/* The race window: the hello first, its expect within 5 s. (Regression:
 * such a hello used to be dropped; fuzz/corpus/client/crash-hello-*.) */
static void test_hello_then_expect_within_5s(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T1);
  assert_int_equal(json_array_size(l->sent), 0);
  assert_int_equal(l->paused, 1);
  f->now += CHAT_TICKET_WAIT_MS - 1;
  chat__client_tick(&f->c);
  assert_int_equal(json_array_size(l->sent), 0);
  expect(f, "bob", T1);
  assert_welcomed(l);
  assert_int_equal(l->paused, 0);
}

static void test_hello_without_expect_refused_after_5s(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T2); /* forged: never issued */
  f->now += CHAT_TICKET_WAIT_MS - 1;
  chat__client_tick(&f->c);
  assert_int_equal(l->closed, 0);
  f->now += 1;
  chat__client_tick(&f->c);
  assert_refused(l, "bad_ticket");
  /* Its expect, later, changes nothing for it. */
  expect(f, "bob", T2);
  assert_int_equal(json_array_size(l->sent), 1);
}

static void test_someone_elses_ticket_refused(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1); /* issued for bob -> alice */
  link_t *carol = dial_in(f), *to_dave = dial_in(f), *bob = dial_in(f);
  hello(carol, "carol", "alice", T1);
  assert_refused(carol, "bad_ticket");
  hello(to_dave, "bob", "dave", T1);
  assert_refused(to_dave, "bad_ticket");
  /* The ticket survived both: bob's own hello passes. */
  hello(bob, "bob", "alice", T1);
  assert_welcomed(bob);
  settle(f);
}

static void test_used_ticket_refused(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1);
  link_t *first = dial_in(f), *again = dial_in(f);
  hello(first, "bob", "alice", T1);
  assert_welcomed(first);
  hello(again, "bob", "alice", T1);
  assert_refused(again, "bad_ticket");
  settle(f);
  /* The first link is unharmed. */
  peer_says(first, "{s:s}", "type", "ping");
  assert_sent(first, 1, "pong", NULL);
}

static void test_expired_ticket_refused(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1);
  f->now += CHAT_TICKET_TTL_MS;
  chat__client_tick(&f->c);
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T1);
  assert_refused(l, "bad_ticket");
}

/* A peer that says nothing (or never finishes its line: the core sees no
 * frame either way) is cut at the hello deadline, and only then. */
static void test_silent_peer_cut_at_deadline(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  f->now += CHAT_CLIENT_HELLO_MS - 1;
  chat__client_tick(&f->c);
  assert_int_equal(l->closed, 0);
  assert_int_equal(f->c.n_inbound, 1);
  f->now += 1;
  chat__client_tick(&f->c);
  assert_int_equal(l->closed, 2);
  assert_int_equal(f->c.n_inbound, 0);
  assert_int_equal(json_array_size(l->sent), 0);
}

static void test_garbage_before_hello_closes(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  chat_error_t err = {CHAT_E_BAD_JSON, "", "invalid JSON"};
  chat__peer_on_bad_frame(l->p, &err);
  assert_refused(l, "bad_json");
  assert_int_equal(f->c.n_inbound, 0);
  /* A frame that is no hello closes too. */
  link_t *m = dial_in(f);
  peer_says(m, "{s:s}", "type", "ping");
  assert_refused(m, "bad_ticket");
}

static void test_garbage_on_open_link_keeps_it(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1);
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T1);
  chat_error_t err = {CHAT_E_BAD_JSON, "", "invalid JSON"};
  chat__peer_on_bad_frame(l->p, &err);
  assert_sent(l, 1, "error", "bad_json");
  assert_int_equal(l->closed, 0);
  peer_says(l, "{s:s}", "type", "ping");
  assert_sent(l, 2, "pong", NULL);
}

static void test_half_open_links_are_bounded(void **state) {
  fx_t *f = *state;
  link_t extra = {0};
  for (int i = 0; i < CHAT_CLIENT_MAX_INBOUND; i++)
    assert_non_null(chat__peer_accepted(&f->c, &extra));
  assert_null(chat__peer_accepted(&f->c, &extra));
  /* They are all cut at the deadline, which makes room again. */
  f->now += CHAT_CLIENT_HELLO_MS;
  chat__client_tick(&f->c);
  assert_int_equal(f->c.n_inbound, 0);
  while (f->c.peers)
    chat__peer_closed(f->c.peers);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_expect_then_hello),
      T(test_hello_then_expect_within_5s),
      T(test_hello_without_expect_refused_after_5s),
      T(test_someone_elses_ticket_refused),
      T(test_used_ticket_refused),
      T(test_expired_ticket_refused),
      T(test_silent_peer_cut_at_deadline),
      T(test_garbage_before_hello_closes),
      T(test_garbage_on_open_link_keeps_it),
      T(test_half_open_links_are_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
