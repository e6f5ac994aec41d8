/* test_outbox.c -- every branch of the send path, on a fake clock, and the
 * pinning of a dialed link to the key the server vouched for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"

typedef struct rec {
  chat_ob_act_kind_t kind;
  uint64_t link;
  char to[40], group[40], msg_id[80], body[64], host[64], ticket[40];
  char key[72];
  char via[16], status[16], fallback[32], code[32];
  int port;
  int64_t relayed, stored, ts;
} rec_t;

typedef struct fx {
  chat_roster_t roster;
  chat_outbox_t *ob;
  rec_t acts[64];
  size_t n;   /* recorded */
  size_t pos; /* next to be taken by next_act() */
} fx_t;

static void cp(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

static void sink(void *ctx, const chat_ob_action_t *a) {
  fx_t *f = ctx;
  rec_t *r;
  assert_true(f->n < 64);
  r = &f->acts[f->n++];
  memset(r, 0, sizeof(*r));
  r->kind = a->kind;
  r->link = a->link;
  cp(r->to, sizeof(r->to), a->to);
  cp(r->group, sizeof(r->group), a->group);
  cp(r->msg_id, sizeof(r->msg_id), a->msg_id);
  if (a->body)
    snprintf(r->body, sizeof(r->body), "%.*s", (int)a->body_len, a->body);
  cp(r->host, sizeof(r->host), a->host);
  cp(r->ticket, sizeof(r->ticket), a->ticket);
  cp(r->key, sizeof(r->key), a->key);
  cp(r->via, sizeof(r->via), a->via);
  cp(r->status, sizeof(r->status), a->status);
  cp(r->fallback, sizeof(r->fallback), a->fallback);
  cp(r->code, sizeof(r->code), a->code);
  r->port = a->port;
  r->relayed = a->relayed;
  r->stored = a->stored;
  r->ts = a->ts;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  chat_roster_init(&f->roster);
  assert_int_equal(chat_outbox_new(&f->roster, sink, f, &f->ob), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  chat_outbox_free(f->ob);
  chat_roster_free(&f->roster);
  free(f);
  return 0;
}

static rec_t *next_act(fx_t *f, chat_ob_act_kind_t kind) {
  if (f->pos >= f->n)
    fail_msg("expected action %d, none left (%zu recorded)", kind, f->n);
  rec_t *r = &f->acts[f->pos++];
  if (r->kind != kind)
    fail_msg("expected action %d, got %d (to=%s msg_id=%s)", kind, r->kind,
             r->to, r->msg_id);
  return r;
}

static void no_more_acts(fx_t *f) {
  if (f->pos != f->n)
    fail_msg("unexpected action %d (to=%s msg_id=%s)", f->acts[f->pos].kind,
             f->acts[f->pos].to, f->acts[f->pos].msg_id);
}

static void submit(fx_t *f, const char *to, const char *id, int64_t now) {
  assert_int_equal(chat_outbox_submit(f->ob, to, NULL, id, "hello", 5,
                                      1700000000000LL, now), 0);
}

static const char T1[] = "0123456789abcdef0123456789abcdef";
/* bob's key as the server vouched for it, and someone else's */
static const char KB[] =
    "bbbb0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
static const char KX[] =
    "eeee0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

/* Logged in, bob an online contact; alice-msg m1 goes up to the dial. */
static uint64_t dial_bob(fx_t *f, const char *id, int64_t now) {
  rec_t *r;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, now);
  submit(f, "bob", id, now);
  r = next_act(f, CHAT_OB_CONNECT);
  assert_string_equal(r->to, "bob");
  no_more_acts(f);
  chat_outbox_connect_ok(f->ob, "bob", "127.0.0.1", 4000, T1, KB, now + 10);
  r = next_act(f, CHAT_OB_DIAL);
  assert_string_equal(r->host, "127.0.0.1");
  assert_int_equal(r->port, 4000);
  assert_string_equal(r->ticket, T1);
  assert_string_equal(r->key, KB);
  assert_string_equal(r->to, "bob");
  assert_true(r->link > 0);
  return r->link;
}

/* The handshake proved bob's key, then bob's welcome came. */
static void secure_up(fx_t *f, uint64_t link, int64_t now) {
  (void)chat_outbox_link_secured(f->ob, link, KB, now);
  chat_outbox_link_up(f->ob, link, now);
}

static void expect_relay(fx_t *f, const char *id, const char *fallback) {
  rec_t *r = next_act(f, CHAT_OB_RELAY_SEND);
  assert_string_equal(r->msg_id, id);
  assert_string_equal(r->to, "bob");
  assert_string_equal(r->body, "hello");
  assert_string_equal(r->fallback, fallback);
}

static void relay_ok_sent(fx_t *f, const char *id, const char *status,
                          const char *fallback) {
  rec_t *r;
  chat_outbox_relay_ok(f->ob, id, status, -1, -1, 0);
  r = next_act(f, CHAT_OB_SENT);
  assert_string_equal(r->msg_id, id);
  assert_string_equal(r->via, "relay");
  assert_string_equal(r->status, status);
  assert_string_equal(r->fallback, fallback);
}

static void test_not_contact_relays_at_once(void **state) {
  fx_t *f = *state;
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  expect_relay(f, "m1", "not_contact");
  no_more_acts(f);
  relay_ok_sent(f, "m1", "relayed", "not_contact");
  assert_int_equal(chat_outbox_pending(f->ob), 0);
}

static void test_offline_relays_at_once(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_OFFLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  expect_relay(f, "m1", "offline");
  relay_ok_sent(f, "m1", "stored", "offline");
  no_more_acts(f);
}

static void test_no_p2p_is_remembered_until_presence(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  next_act(f, CHAT_OB_CONNECT);
  chat_outbox_connect_failed(f->ob, "bob", "no_p2p", 5);
  expect_relay(f, "m1", "no_p2p");
  relay_ok_sent(f, "m1", "relayed", "no_p2p");
  /* The next message does not ask again. */
  submit(f, "bob", "m2", 10);
  expect_relay(f, "m2", "no_p2p");
  /* Bob logged in again: worth asking once more. */
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_OFFLINE);
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  submit(f, "bob", "m3", 20);
  next_act(f, CHAT_OB_CONNECT);
  no_more_acts(f);
}

static void test_connect_error_falls_back_with_code(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  next_act(f, CHAT_OB_CONNECT);
  chat_outbox_connect_failed(f->ob, "bob", "not_contact", 5);
  expect_relay(f, "m1", "not_contact");
  chat_outbox_connect_failed(f->ob, "bob", "offline", 6); /* stale: ignored */
  no_more_acts(f);
  assert_int_equal(chat_outbox_links(f->ob), 0);
}

static void test_connect_reply_timeout(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  next_act(f, CHAT_OB_CONNECT);
  assert_int_equal(chat_outbox_next_deadline(f->ob),
                   CHAT_OB_CONNECT_TIMEOUT_MS);
  chat_outbox_tick(f->ob, CHAT_OB_CONNECT_TIMEOUT_MS - 1);
  no_more_acts(f);
  chat_outbox_tick(f->ob, CHAT_OB_CONNECT_TIMEOUT_MS);
  expect_relay(f, "m1", "timeout");
  no_more_acts(f);
}

static void test_direct_delivered(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  rec_t *r;
  secure_up(f, link, 100);
  r = next_act(f, CHAT_OB_DIRECT_SEND);
  assert_int_equal(r->link, link);
  assert_string_equal(r->msg_id, "m1");
  assert_string_equal(r->body, "hello");
  assert_int_equal(r->ts, 1700000000000LL);
  chat_outbox_direct_ack(f->ob, link, "m1", 200);
  r = next_act(f, CHAT_OB_SENT);
  assert_string_equal(r->via, "direct");
  assert_string_equal(r->status, "delivered");
  assert_string_equal(r->fallback, "");
  no_more_acts(f);
  assert_int_equal(chat_outbox_pending(f->ob), 0);
}

static void test_open_link_is_reused(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  secure_up(f, link, 100);
  next_act(f, CHAT_OB_DIRECT_SEND);
  /* Queued behind the handshake: no second connect either. */
  submit(f, "bob", "m2", 150);
  assert_int_equal(next_act(f, CHAT_OB_DIRECT_SEND)->link, link);
  chat_outbox_direct_ack(f->ob, link, "m1", 200);
  chat_outbox_direct_ack(f->ob, link, "m2", 210);
  next_act(f, CHAT_OB_SENT);
  next_act(f, CHAT_OB_SENT);
  submit(f, "bob", "m3", 60000);
  assert_int_equal(next_act(f, CHAT_OB_DIRECT_SEND)->link, link);
  no_more_acts(f);
  assert_int_equal(chat_outbox_links(f->ob), 1);
}

static void test_messages_wait_for_the_handshake(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  submit(f, "bob", "m2", 50); /* no second connect or dial */
  no_more_acts(f);
  secure_up(f, link, 100);
  assert_string_equal(next_act(f, CHAT_OB_DIRECT_SEND)->msg_id, "m1");
  assert_string_equal(next_act(f, CHAT_OB_DIRECT_SEND)->msg_id, "m2");
  no_more_acts(f);
}

static void test_dial_refused(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  submit(f, "bob", "m2", 20);
  chat_outbox_link_down(f->ob, link, 30);
  expect_relay(f, "m1", "refused");
  expect_relay(f, "m2", "refused");
  no_more_acts(f);
  relay_ok_sent(f, "m1", "relayed", "refused");
  chat_outbox_link_down(f->ob, link, 40); /* again: ignored */
  no_more_acts(f);
}

static void test_handshake_timeout_3s(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0); /* connect reply at t=10 */
  assert_int_equal(chat_outbox_next_deadline(f->ob),
                   10 + CHAT_OB_WELCOME_TIMEOUT_MS);
  chat_outbox_tick(f->ob, 10 + CHAT_OB_WELCOME_TIMEOUT_MS - 1);
  no_more_acts(f);
  chat_outbox_tick(f->ob, 10 + CHAT_OB_WELCOME_TIMEOUT_MS);
  assert_int_equal(next_act(f, CHAT_OB_CLOSE_LINK)->link, link);
  expect_relay(f, "m1", "timeout");
  no_more_acts(f);
  /* A late welcome is for a link that no longer exists. */
  secure_up(f, link, 4000);
  no_more_acts(f);
}

static void test_no_ack_5s(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  secure_up(f, link, 100);
  next_act(f, CHAT_OB_DIRECT_SEND);
  submit(f, "bob", "m2", 1000);
  next_act(f, CHAT_OB_DIRECT_SEND);
  assert_int_equal(chat_outbox_next_deadline(f->ob),
                   100 + CHAT_OB_ACK_TIMEOUT_MS);
  chat_outbox_tick(f->ob, 100 + CHAT_OB_ACK_TIMEOUT_MS);
  /* The link is given up and everything unacked on it is relayed. */
  assert_int_equal(next_act(f, CHAT_OB_CLOSE_LINK)->link, link);
  expect_relay(f, "m1", "no_ack");
  expect_relay(f, "m2", "no_ack");
  no_more_acts(f);
  relay_ok_sent(f, "m2", "relayed", "no_ack");
  /* A late ack for m1 does not make a second "sent". */
  chat_outbox_direct_ack(f->ob, link, "m1", 5200);
  no_more_acts(f);
}

static void test_link_death_hands_unacked_to_relay(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  secure_up(f, link, 100);
  next_act(f, CHAT_OB_DIRECT_SEND);
  submit(f, "bob", "m2", 200);
  next_act(f, CHAT_OB_DIRECT_SEND);
  chat_outbox_direct_ack(f->ob, link, "m1", 300);
  next_act(f, CHAT_OB_SENT);
  chat_outbox_link_down(f->ob, link, 400);
  expect_relay(f, "m2", "no_ack");
  no_more_acts(f);
  assert_int_equal(chat_outbox_links(f->ob), 0);
  /* The next message starts over with a connect. */
  submit(f, "bob", "m3", 500);
  next_act(f, CHAT_OB_CONNECT);
  no_more_acts(f);
}

static void test_accepted_link_is_used(void **state) {
  fx_t *f = *state;
  uint64_t link;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  link = chat_outbox_link_accepted(f->ob, "bob", 10);
  assert_true(link > 0);
  assert_string_equal(chat_outbox_link_peer(f->ob, link), "bob");
  submit(f, "bob", "m1", 20);
  assert_int_equal(next_act(f, CHAT_OB_DIRECT_SEND)->link, link);
  no_more_acts(f);
}

static void test_idle_link_closed_after_5_minutes(void **state) {
  fx_t *f = *state;
  uint64_t link;
  chat_outbox_server_up(f->ob, 0);
  link = chat_outbox_link_accepted(f->ob, "bob", 1000);
  chat_outbox_link_activity(f->ob, link, 2000);
  assert_int_equal(chat_outbox_next_deadline(f->ob), 2000 + CHAT_OB_IDLE_MS);
  chat_outbox_tick(f->ob, 2000 + CHAT_OB_IDLE_MS - 1);
  no_more_acts(f);
  chat_outbox_tick(f->ob, 2000 + CHAT_OB_IDLE_MS);
  assert_int_equal(next_act(f, CHAT_OB_CLOSE_LINK)->link, link);
  no_more_acts(f);
  assert_int_equal(chat_outbox_links(f->ob), 0);
  assert_int_equal(chat_outbox_next_deadline(f->ob), -1);
}

static void test_relay_statuses(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_OFFLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  submit(f, "bob", "m2", 0);
  next_act(f, CHAT_OB_RELAY_SEND);
  next_act(f, CHAT_OB_RELAY_SEND);
  assert_int_equal(chat_outbox_pending(f->ob), 2);
  relay_ok_sent(f, "m2", "stored", "offline");
  relay_ok_sent(f, "m1", "relayed", "offline");
  chat_outbox_relay_ok(f->ob, "m1", "relayed", -1, -1, 0); /* duplicate */
  no_more_acts(f);
  assert_int_equal(chat_outbox_pending(f->ob), 0);
}

static void test_relay_error_is_reported_or_retried(void **state) {
  fx_t *f = *state;
  rec_t *r;
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  next_act(f, CHAT_OB_RELAY_SEND);
  chat_outbox_relay_failed(f->ob, "m1", "rate_limited", "slow down", 100);
  no_more_acts(f);
  assert_int_equal(chat_outbox_next_deadline(f->ob), 100 + CHAT_OB_RETRY_MS);
  chat_outbox_tick(f->ob, 100 + CHAT_OB_RETRY_MS);
  expect_relay(f, "m1", "not_contact");
  chat_outbox_relay_failed(f->ob, "m1", "no_such_user", "no user bob", 1200);
  r = next_act(f, CHAT_OB_FAILED);
  assert_string_equal(r->code, "no_such_user");
  assert_string_equal(r->msg_id, "m1");
  no_more_acts(f);
  assert_int_equal(chat_outbox_pending(f->ob), 0);
}

static void test_disconnect_resends_after_relogin(void **state) {
  fx_t *f = *state;
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_OFFLINE);
  chat_roster_set(&f->roster, "carol", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  submit(f, "bob", "m1", 0);
  expect_relay(f, "m1", "offline");
  assert_int_equal(chat_outbox_submit(f->ob, "carol", NULL, "m2", "yo", 2, 0,
                                      0), 0);
  next_act(f, CHAT_OB_CONNECT);
  chat_outbox_server_down(f->ob, 10);
  /* Typed while disconnected: waits. */
  submit(f, "bob", "m3", 20);
  no_more_acts(f);
  assert_int_equal(chat_outbox_pending(f->ob), 3);
  assert_int_equal(chat_outbox_links(f->ob), 0);
  /* A connect reply from the old session cannot arrive; ignore stale ones. */
  chat_outbox_connect_ok(f->ob, "carol", "127.0.0.1", 1, T1, KB, 30);
  no_more_acts(f);
  chat_outbox_server_up(f->ob, 1000);
  expect_relay(f, "m1", "offline");            /* same msg_id again */
  assert_string_equal(next_act(f, CHAT_OB_CONNECT)->to, "carol");
  expect_relay(f, "m3", "offline");
  no_more_acts(f);
}

static void test_messages_before_login_wait(void **state) {
  fx_t *f = *state;
  submit(f, "bob", "m1", 0);
  no_more_acts(f);
  assert_int_equal(chat_outbox_next_deadline(f->ob), -1);
  chat_outbox_server_up(f->ob, 5);
  expect_relay(f, "m1", "not_contact");
}

static void test_open_link_works_without_server(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  secure_up(f, link, 100);
  next_act(f, CHAT_OB_DIRECT_SEND);
  chat_outbox_server_down(f->ob, 150);
  submit(f, "bob", "m2", 200);
  assert_int_equal(next_act(f, CHAT_OB_DIRECT_SEND)->link, link);
  /* The link dies while the server is down: both wait for the relay. */
  chat_outbox_link_down(f->ob, link, 300);
  no_more_acts(f);
  chat_outbox_server_up(f->ob, 2000);
  expect_relay(f, "m1", "no_ack");
  expect_relay(f, "m2", "no_ack");
  no_more_acts(f);
}

static void test_group_always_relayed(void **state) {
  fx_t *f = *state;
  rec_t *r;
  chat_outbox_server_up(f->ob, 0);
  assert_int_equal(chat_outbox_submit(f->ob, NULL, "dev", "g1", "hi", 2, 0, 0),
                   0);
  r = next_act(f, CHAT_OB_RELAY_SEND);
  assert_string_equal(r->group, "dev");
  assert_string_equal(r->to, "");
  assert_string_equal(r->fallback, "");
  chat_outbox_relay_ok(f->ob, "g1", NULL, 2, 1, 10);
  r = next_act(f, CHAT_OB_SENT);
  assert_string_equal(r->group, "dev");
  assert_int_equal(r->relayed, 2);
  assert_int_equal(r->stored, 1);
  no_more_acts(f);
}

static void test_bad_submissions(void **state) {
  fx_t *f = *state;
  assert_int_equal(chat_outbox_submit(f->ob, "Bob", NULL, "m1", "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "m 1", "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "m1", "", 0, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_outbox_submit(f->ob, "bob", "dev", "m1", "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_outbox_submit(f->ob, NULL, NULL, "m1", "x", 1, 0, 0),
                   -EINVAL);
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "m1", "x", 1, 0, 0),
                   0);
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "m1", "x", 1, 0, 0),
                   -EEXIST);
  no_more_acts(f);
}

static void test_outbox_is_bounded(void **state) {
  fx_t *f = *state;
  char id[32];
  for (int i = 0; i < CHAT_OB_MAX_MESSAGES; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, id, "x", 1, 0, 0),
                     0);
  }
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "last", "x", 1, 0,
                                      0), -ENOBUFS);
}

/* ---- pinning (PROTOCOL.md 7) --------------------------------------- */

/* A connect reply that vouches for no key (or a malformed one): nothing
 * is dialed, the message goes by relay with bad_key. */
static void test_no_key_vouched_relays_bad_key(void **state) {
  fx_t *f = *state;
  const char *keys[] = {NULL, "", "BBBB", KB + 1};
  chat_roster_set(&f->roster, "bob", CHAT_STATUS_ONLINE);
  chat_outbox_server_up(f->ob, 0);
  for (int i = 0; i < 4; i++) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    submit(f, "bob", id, 0);
    next_act(f, CHAT_OB_CONNECT);
    chat_outbox_connect_ok(f->ob, "bob", "127.0.0.1", 4000, T1, keys[i], 10);
    expect_relay(f, id, "bad_key");
    no_more_acts(f);
    relay_ok_sent(f, id, "relayed", "bad_key");
  }
  assert_int_equal(chat_outbox_links(f->ob), 0);
}

/* The listener proved another key: the link is closed before any hello,
 * everything waiting for it is relayed with bad_key, a late welcome does
 * nothing. */
static void test_wrong_key_closes_and_relays(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  submit(f, "bob", "m2", 20);
  assert_int_equal(chat_outbox_link_secured(f->ob, link, KX, 30), -EPERM);
  assert_int_equal(next_act(f, CHAT_OB_CLOSE_LINK)->link, link);
  expect_relay(f, "m1", "bad_key");
  expect_relay(f, "m2", "bad_key");
  no_more_acts(f);
  relay_ok_sent(f, "m1", "relayed", "bad_key");
  chat_outbox_link_up(f->ob, link, 40);
  chat_outbox_link_down(f->ob, link, 50);
  no_more_acts(f);
  assert_int_equal(chat_outbox_links(f->ob), 0);
}

/* No key proven at all (NULL) counts as a wrong one. */
static void test_no_key_proven_is_bad_key(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  assert_int_equal(chat_outbox_link_secured(f->ob, link, NULL, 30), -EPERM);
  next_act(f, CHAT_OB_CLOSE_LINK);
  expect_relay(f, "m1", "bad_key");
  no_more_acts(f);
}

/* A TLS handshake that failed: bad_key, and the link is forgotten (the
 * transport's close that follows changes nothing). */
static void test_handshake_failure_is_bad_key(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  chat_outbox_link_failed(f->ob, link, "bad_key", 30);
  expect_relay(f, "m1", "bad_key");
  no_more_acts(f);
  chat_outbox_link_down(f->ob, link, 40);
  no_more_acts(f);
}

/* A welcome counts only on a link whose key was proven; the proof does not
 * stretch the 3 s, and it is taken once. */
static void test_welcome_needs_proven_key(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  chat_outbox_link_up(f->ob, link, 20); /* not proven yet: ignored */
  no_more_acts(f);
  assert_int_equal(chat_outbox_link_secured(f->ob, link, KB, 30), 0);
  assert_int_equal(chat_outbox_link_secured(f->ob, link, KB, 31), -ENOENT);
  no_more_acts(f);
  assert_int_equal(chat_outbox_next_deadline(f->ob),
                   10 + CHAT_OB_WELCOME_TIMEOUT_MS);
  chat_outbox_tick(f->ob, 10 + CHAT_OB_WELCOME_TIMEOUT_MS);
  assert_int_equal(next_act(f, CHAT_OB_CLOSE_LINK)->link, link);
  expect_relay(f, "m1", "timeout");
  no_more_acts(f);
}

/* After a proven key and a welcome: direct, delivered. */
static void test_proven_key_goes_direct(void **state) {
  fx_t *f = *state;
  uint64_t link = dial_bob(f, "m1", 0);
  assert_int_equal(chat_outbox_link_secured(f->ob, link, KB, 30), 0);
  no_more_acts(f);
  chat_outbox_link_up(f->ob, link, 40);
  assert_string_equal(next_act(f, CHAT_OB_DIRECT_SEND)->msg_id, "m1");
  chat_outbox_direct_ack(f->ob, link, "m1", 50);
  rec_t *r = next_act(f, CHAT_OB_SENT);
  assert_string_equal(r->via, "direct");
  assert_string_equal(r->fallback, "");
  no_more_acts(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_not_contact_relays_at_once),
      T(test_offline_relays_at_once),
      T(test_no_p2p_is_remembered_until_presence),
      T(test_connect_error_falls_back_with_code),
      T(test_connect_reply_timeout),
      T(test_direct_delivered),
      T(test_open_link_is_reused),
      T(test_messages_wait_for_the_handshake),
      T(test_dial_refused),
      T(test_handshake_timeout_3s),
      T(test_no_ack_5s),
      T(test_link_death_hands_unacked_to_relay),
      T(test_accepted_link_is_used),
      T(test_idle_link_closed_after_5_minutes),
      T(test_relay_statuses),
      T(test_relay_error_is_reported_or_retried),
      T(test_disconnect_resends_after_relogin),
      T(test_messages_before_login_wait),
      T(test_open_link_works_without_server),
      T(test_group_always_relayed),
      T(test_bad_submissions),
      T(test_outbox_is_bounded),
      T(test_no_key_vouched_relays_bad_key),
      T(test_wrong_key_closes_and_relays),
      T(test_no_key_proven_is_bad_key),
      T(test_handshake_failure_is_bad_key),
      T(test_welcome_needs_proven_key),
      T(test_proven_key_goes_direct),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
