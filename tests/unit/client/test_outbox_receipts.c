/* test_outbox_receipts.c -- a relayed 1:1 message is kept until its
 * receipt and sent again after a reconnect (PROTOCOL.md section 3: a
 * server that dies may lose what it relayed in the last second); stored,
 * group and direct messages are not kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"

typedef struct rec {
  chat_ob_act_kind_t kind;
  char msg_id[80], status[16];
} rec_t;

typedef struct fx {
  chat_roster_t roster;
  chat_outbox_t *ob;
  rec_t acts[32];
  size_t n;
} fx_t;

static void sink(void *ctx, const chat_ob_action_t *a) {
  fx_t *f = ctx;
  assert_true(f->n < 32);
  rec_t *r = &f->acts[f->n++];
  r->kind = a->kind;
  snprintf(r->msg_id, sizeof(r->msg_id), "%s", a->msg_id ? a->msg_id : "");
  snprintf(r->status, sizeof(r->status), "%s", a->status ? a->status : "");
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  chat_roster_init(&f->roster);
  assert_int_equal(chat_outbox_new(&f->roster, sink, f, &f->ob), 0);
  chat_outbox_server_up(f->ob, 0); /* bob is no contact: relay at once */
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

static size_t count(const fx_t *f, chat_ob_act_kind_t kind, const char *id) {
  size_t n = 0;
  for (size_t i = 0; i < f->n; i++)
    n += f->acts[i].kind == kind && strcmp(f->acts[i].msg_id, id) == 0;
  return n;
}

static void send_one(fx_t *f, const char *id, const char *status) {
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, id, "hi", 2, 1, 0),
                   0);
  assert_int_equal(count(f, CHAT_OB_RELAY_SEND, id), 1);
  chat_outbox_relay_ok(f->ob, id, status, -1, -1, 1);
  assert_int_equal(count(f, CHAT_OB_SENT, id), 1);
}

static void test_relayed_kept_until_receipt(void **state) {
  fx_t *f = *state;
  send_one(f, "m1", "relayed");
  /* confirmed to the user, so the end of input does not wait for it */
  assert_int_equal(chat_outbox_pending(f->ob), 0);
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), 1);
  assert_true(chat_outbox_has(f->ob, "m1"));
  chat_outbox_receipt(f->ob, "m1");
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), 0);
  assert_false(chat_outbox_has(f->ob, "m1"));
  chat_outbox_receipt(f->ob, "m1"); /* again, or unknown: nothing */
}

static void test_resent_after_reconnect_shown_once(void **state) {
  fx_t *f = *state;
  send_one(f, "m1", "relayed");
  chat_outbox_server_down(f->ob, 2);
  chat_outbox_server_up(f->ob, 3);
  assert_int_equal(count(f, CHAT_OB_RELAY_SEND, "m1"), 2); /* same msg_id */
  /* the new server has it (written, or sent again): no second "sent" */
  chat_outbox_relay_ok(f->ob, "m1", "relayed", -1, -1, 4);
  assert_int_equal(count(f, CHAT_OB_SENT, "m1"), 1);
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), 1);
  /* still kept: another reconnect sends it once more */
  chat_outbox_server_down(f->ob, 5);
  chat_outbox_server_up(f->ob, 6);
  assert_int_equal(count(f, CHAT_OB_RELAY_SEND, "m1"), 3);
  /* stored this time: on disk, let go */
  chat_outbox_relay_ok(f->ob, "m1", "stored", -1, -1, 7);
  assert_int_equal(count(f, CHAT_OB_SENT, "m1"), 1);
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), 0);
  assert_false(chat_outbox_has(f->ob, "m1"));
}

static void test_resend_refused_let_go_silently(void **state) {
  fx_t *f = *state;
  send_one(f, "m1", "relayed");
  chat_outbox_server_down(f->ob, 2);
  chat_outbox_server_up(f->ob, 3);
  chat_outbox_relay_failed(f->ob, "m1", "no_such_user", "gone", 4);
  assert_int_equal(count(f, CHAT_OB_FAILED, "m1"), 0); /* told once: sent */
  assert_false(chat_outbox_has(f->ob, "m1"));
}

static void test_stored_and_group_not_kept(void **state) {
  fx_t *f = *state;
  send_one(f, "s1", "stored");
  assert_false(chat_outbox_has(f->ob, "s1"));
  assert_int_equal(chat_outbox_submit(f->ob, NULL, "dev", "g1", "hi", 2, 1, 0),
                   0);
  chat_outbox_relay_ok(f->ob, "g1", NULL, 2, 1, 1);
  assert_false(chat_outbox_has(f->ob, "g1"));
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), 0);
}

static void test_full_outbox_lets_go_of_the_oldest_kept(void **state) {
  fx_t *f = *state;
  char id[32];
  for (int i = 0; i < CHAT_OB_MAX_MESSAGES; i++) {
    snprintf(id, sizeof(id), "k%d", i);
    assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, id, "x", 1, 1, 0),
                     0);
    chat_outbox_relay_ok(f->ob, id, "relayed", -1, -1, 1);
    f->n = 0; /* the record holds 32 actions: keep only the counts */
  }
  assert_int_equal(chat_outbox_awaiting_receipt(f->ob), CHAT_OB_MAX_MESSAGES);
  /* a new message still goes out: the oldest kept one makes room */
  assert_int_equal(chat_outbox_submit(f->ob, "bob", NULL, "new", "x", 1, 1, 0),
                   0);
  assert_false(chat_outbox_has(f->ob, "k0"));
  assert_true(chat_outbox_has(f->ob, "k1"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_relayed_kept_until_receipt),
      T(test_resent_after_reconnect_shown_once),
      T(test_resend_refused_let_go_silently),
      T(test_stored_and_group_not_kept),
      T(test_full_outbox_lets_go_of_the_oldest_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
