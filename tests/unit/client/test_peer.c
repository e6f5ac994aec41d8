/* test_peer.c -- direct links (peer.c), driven through the client core's
 * env seam on a fake clock. The listener's side: which hellos get a
 * peer_welcome (ticket and key), which get an error and a close, and the
 * hello deadline. The dialer's side: the ticket is shown only to a link
 * that proved the key the server vouched for (PROTOCOL.md 7). */
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
#include "nat.h"

static const char T1[] = "0123456789abcdef0123456789abcdef";
static const char T2[] = "fedcba9876543210fedcba9876543210";
/* bob's key as the server vouches for it, and a key nobody vouched for */
static const char KB[] =
    "bbbb0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
static const char KX[] =
    "eeee0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

/* One fake link: what the core sent on it and whether it closed it. */
typedef struct link {
  chat_peer_t *p;
  json_t *sent;   /* array of the frames the core sent */
  int closed;     /* 1 graceful, 2 at once */
  int paused;
  const char *key; /* what its TLS handshake proved, NULL: none */
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
                         int port, int flags, void **link) {
  fx_t *f = ctx;
  link_t *l = &f->links[f->nlinks++];
  l->sent = json_array();
  l->p = p;
  *link = l;
  return 0;
}
static int env_peer_key(void *ctx, void *link, char hex[CHAT_KEY_LEN + 1]) {
  link_t *l = link;
  if (!l->key)
    return -ENOENT;
  snprintf(hex, CHAT_KEY_LEN + 1, "%s", l->key);
  return 0;
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
    NULL,          env_peer_key};

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
  l->key = KB; /* by default it is bob, as the expects vouch */
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
  server_says(f, "{s:s,s:s,s:s,s:s}", "type", "expect", "from", from,
              "ticket", ticket, "key", KB);
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

/* ---- keys (PROTOCOL.md 7) --------------------------------------------- */

/* The dialer proved another key than the expect's (a man in the middle
 * with a ticket), or none: bad_ticket and a close, never a welcome. */
static void test_hello_with_wrong_key_refused(void **state) {
  fx_t *f = *state;
  expect(f, "bob", T1);
  link_t *l = dial_in(f);
  l->key = KX;
  hello(l, "bob", "alice", T1);
  assert_refused(l, "bad_ticket");
  assert_non_null(strstr(json_string_value(json_object_get(
                             json_array_get(l->sent, 0), "message")),
                         "key"));
  expect(f, "bob", T2);
  link_t *m = dial_in(f);
  m->key = NULL;
  hello(m, "bob", "alice", T2);
  assert_refused(m, "bad_ticket");
  settle(f);
}

/* A hello that waits for its expect is checked against the expect's key. */
static void test_waiting_hello_with_wrong_key_refused(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  l->key = KX;
  hello(l, "bob", "alice", T1);
  assert_int_equal(l->paused, 1);
  expect(f, "bob", T1);
  assert_refused(l, "bad_ticket");
}

/* An expect that vouches for no key lets nobody in. */
static void test_expect_without_key_refuses(void **state) {
  fx_t *f = *state;
  server_says(f, "{s:s,s:s,s:s}", "type", "expect", "from", "bob", "ticket",
              T1);
  link_t *l = dial_in(f);
  hello(l, "bob", "alice", T1);
  assert_refused(l, "bad_ticket");
}

/* Dialer side: bob is an online contact; /msg bob makes a connect, whose
 * reply (with key) makes a dial. Returns the dialed link. */
static link_t *msg_bob_dialed(fx_t *f, const char *key) {
  server_says(f, "{s:s,s:s,s:s}", "type", "contact_added", "user", "bob",
              "status", "online");
  char line[] = "/msg bob secret";
  chat__cmd_run(&f->c, line);
  json_t *req = json_array_get(f->to_server, json_array_size(f->to_server) - 1);
  assert_string_equal(json_string_value(json_object_get(req, "type")),
                      "connect");
  json_t *ok = json_pack("{s:s,s:O,s:s,s:s,s:i,s:s}", "type", "ok", "id",
                         json_object_get(req, "id"), "to", "bob", "host",
                         "127.0.0.1", "port", 4001, "ticket", T1);
  if (key)
    json_object_set_new(ok, "key", json_string(key));
  chat__session_on_frame(&f->c, ok);
  json_decref(ok);
  if (!key)
    return NULL;
  assert_int_equal(f->nlinks, 1);
  return &f->links[0];
}

/* The last event is sent via relay with this fallback (after the server's
 * ok for the send). */
static void assert_relayed_with(fx_t *f, const char *fallback) {
  json_t *req = json_array_get(f->to_server, json_array_size(f->to_server) - 1);
  assert_string_equal(json_string_value(json_object_get(req, "type")), "send");
  server_says(f, "{s:s,s:O,s:s,s:s}", "type", "ok", "id",
              json_object_get(req, "id"), "msg_id",
              json_string_value(json_object_get(req, "msg_id")), "status",
              "relayed");
  json_t *ev = json_array_get(f->events, json_array_size(f->events) - 1);
  assert_string_equal(json_string_value(json_object_get(ev, "event")), "sent");
  assert_string_equal(json_string_value(json_object_get(ev, "via")), "relay");
  assert_string_equal(json_string_value(json_object_get(ev, "fallback")),
                      fallback);
}

/* Nothing is said before the handshake; the right key gets the hello. */
static void test_dialer_says_hello_after_key_proven(void **state) {
  fx_t *f = *state;
  link_t *l = msg_bob_dialed(f, KB);
  assert_int_equal(json_array_size(l->sent), 0);
  l->key = KB;
  chat__peer_dialed(l->p, 0);
  assert_sent(l, 0, "peer_hello", NULL);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(l->sent, 0), "ticket")),
      T1);
  peer_says(l, "{s:s,s:s}", "type", "peer_welcome", "user", "bob");
  assert_sent(l, 1, "msg", NULL);
}

/* A listener that proves another key never sees the ticket: the link is
 * closed, the message relayed with bad_key. */
static void test_dialer_refuses_wrong_key(void **state) {
  fx_t *f = *state;
  link_t *l = msg_bob_dialed(f, KB);
  l->key = KX;
  chat__peer_dialed(l->p, 0);
  assert_int_equal(json_array_size(l->sent), 0);
  assert_int_not_equal(l->closed, 0);
  assert_relayed_with(f, "bad_key");
  settle(f);
}

/* A handshake that fails is bad_key too; the close that follows is no
 * second outcome. */
static void test_dialer_handshake_failure_is_bad_key(void **state) {
  fx_t *f = *state;
  link_t *l = msg_bob_dialed(f, KB);
  chat__peer_dialed(l->p, UV_EPROTO);
  assert_int_equal(json_array_size(l->sent), 0);
  assert_relayed_with(f, "bad_key");
  l->closed = 2; /* the transport closes it */
  settle(f);
  assert_int_equal(chat_outbox_links(f->c.ob), 0);
}

/* A connect reply without a key: no dial at all, relay with bad_key. */
static void test_dialer_without_vouched_key_relays(void **state) {
  fx_t *f = *state;
  msg_bob_dialed(f, NULL);
  assert_int_equal(f->nlinks, 0);
  assert_relayed_with(f, "bad_key");
}

/* Target side of a hole punch on a slow link: the try's TCP connection is
 * up within its window, but the TLS handshake (the asker is the TLS client)
 * ends after it. The window no longer cuts the try once TCP is up, so the
 * asker's hello still finds it (docs/NAT.md; with 100 ms each way the
 * handshake ends ~500 ms into the window, tests/nat/topology.sh delay). */
static void test_punch_connected_outlives_its_window(void **state) {
  fx_t *f = *state;
  server_says(f, "{s:s,s:s,s:s,s:s,s:s,s:i,s:i}", "type", "expect", "from",
              "bob", "ticket", T1, "key", KB, "punch_host", "198.51.100.7",
              "punch_port", 40000, "punch_ms", 100);
  assert_int_equal(f->nlinks, 0);
  f->now += 100;
  chat__peer_sweep(&f->c);
  assert_int_equal(f->nlinks, 1); /* punch try 1 */
  link_t *l = &f->links[0];
  f->now += 200;
  chat__peer_tcp_up(l->p); /* simultaneous open done, TLS under way */
  f->now += CHAT_NAT_PUNCH_WINDOW_MS; /* the window is over */
  chat__peer_sweep(&f->c);
  assert_int_equal(l->closed, 0);
  assert_int_equal(f->nlinks, 1); /* no try 2 on top of it */
  l->key = KB;
  chat__peer_dialed(l->p, 0);
  hello(l, "bob", "alice", T1);
  assert_welcomed(l);
}

/* The target dials back as soon as the server's expect reaches it, which
 * can be before the connect's ok reaches us (two connections, no order
 * between them): the peer_reverse waits for the ok, paused, and then wins
 * the race. (Regression: it was refused as "no direct link was asked", and
 * nat.public ended punched or relayed instead of reverse.) */
static void test_reverse_before_connect_ok_waits(void **state) {
  fx_t *f = *state;
  server_says(f, "{s:s,s:s,s:s}", "type", "contact_added", "user", "bob",
              "status", "online");
  char line[] = "/msg bob secret";
  chat__cmd_run(&f->c, line);
  json_t *req = json_array_get(f->to_server, json_array_size(f->to_server) - 1);
  assert_string_equal(json_string_value(json_object_get(req, "type")),
                      "connect");
  link_t *l = dial_in(f); /* bob's dial back, proving KB */
  peer_says(l, "{s:s,s:i,s:s,s:s}", "type", "peer_reverse", "proto", 1,
            "from", "bob", "to", "alice");
  assert_int_equal(json_array_size(l->sent), 0);
  assert_int_equal(l->closed, 0);
  assert_int_equal(l->paused, 1);
  f->now += CHAT_OB_CONNECT_TIMEOUT_MS - 1; /* the ok comes late */
  chat__client_tick(&f->c);
  assert_int_equal(l->closed, 0);
  server_says(f, "{s:s,s:O,s:s,s:s,s:i,s:s,s:s,s:b}", "type", "ok", "id",
              json_object_get(req, "id"), "to", "bob", "host", "127.0.0.1",
              "port", 4001, "ticket", T1, "key", KB, "reverse", 1);
  assert_int_equal(chat_client_next_deadline(&f->c), (int64_t)f->now);
  chat__client_tick(&f->c); /* the turn after the ok, as client_uv.c */
  assert_int_equal(l->paused, 0);
  assert_sent(l, 0, "peer_hello", NULL);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(l->sent, 0), "ticket")),
      T1);
  peer_says(l, "{s:s,s:s}", "type", "peer_welcome", "user", "bob");
  assert_sent(l, 1, "msg", NULL);
  settle(f);
}

/* A peer_reverse nobody asks for, then or within the hello deadline, is
 * cut at the deadline like any silent link. */
static void test_unasked_reverse_cut_at_deadline(void **state) {
  fx_t *f = *state;
  link_t *l = dial_in(f);
  peer_says(l, "{s:s,s:i,s:s,s:s}", "type", "peer_reverse", "proto", 1,
            "from", "bob", "to", "alice");
  assert_int_equal(l->closed, 0);
  f->now += CHAT_CLIENT_HELLO_MS;
  chat__client_tick(&f->c);
  assert_int_not_equal(l->closed, 0);
  assert_int_equal(f->c.n_inbound, 0);
  settle(f);
}

/* Our own key goes with every login, token logins too. */
static void test_login_announces_key(void **state) {
  fx_t *f = *state;
  snprintf(f->c.key, sizeof(f->c.key), "%s", KX);
  snprintf(f->c.token, sizeof(f->c.token), "%s", KB); /* any 64 hex */
  chat__session_closed(&f->c, UV_EOF);
  chat__session_connected(&f->c);
  server_says(f, "{s:s,s:i,s:s,s:i,s:i}", "type", "welcome", "proto", 1,
              "server", "fake", "heartbeat", 30, "max_frame", 65536);
  json_t *req = json_array_get(f->to_server, json_array_size(f->to_server) - 1);
  assert_string_equal(json_string_value(json_object_get(req, "type")), "login");
  assert_non_null(json_object_get(req, "token"));
  assert_string_equal(json_string_value(json_object_get(req, "key")), KX);
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
      T(test_hello_with_wrong_key_refused),
      T(test_waiting_hello_with_wrong_key_refused),
      T(test_expect_without_key_refuses),
      T(test_punch_connected_outlives_its_window),
      T(test_dialer_says_hello_after_key_proven),
      T(test_dialer_refuses_wrong_key),
      T(test_dialer_handshake_failure_is_bad_key),
      T(test_dialer_without_vouched_key_relays),
      T(test_reverse_before_connect_ok_waits),
      T(test_unasked_reverse_cut_at_deadline),
      T(test_login_announces_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
