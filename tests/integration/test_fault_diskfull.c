/* test_fault_diskfull.c -- a full disk, simulated with --db-max-mb: a stored
 * message that cannot be committed is answered internal and not kept, every
 * message answered stored survives (also SIGKILL), relay goes on, and once
 * acks free space new messages are stored again -- also when the acks are
 * committed in the same turns as puts that still do not fit. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define BODY_LEN 16000
#define MAX_TRIES 400 /* 1 MiB holds about 60 of them */

static char body[BODY_LEN + 1];

static int up(void **state) {
  const char *const extra[] = {"--db-max-mb", "1", "--rate-limit", "0", NULL};
  memset(body, 'f', BODY_LEN);
  return th_fixture_server_up_with(state, extra);
}

static json_t *send_big(th_client_t *c, const char *to, const char *msg_id) {
  return th_client_call(c, "{s:s,s:s,s:s,s:s}", "type", "send", "to", to,
                        "msg_id", msg_id, "body", body);
}

/* Sends to the offline user to until one is refused; returns how many were
 * stored (ids "<prefix><n>"), and the refused one's id in failed. */
static int fill(th_client_t *a, const char *to, const char *prefix,
                char *failed, size_t flen) {
  char id[32];
  for (int i = 0; i < MAX_TRIES; i++) {
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    json_t *r = send_big(a, to, id);
    if (strcmp(th_str(r, "type"), "error") == 0) {
      assert_string_equal(th_str(r, "code"), "internal");
      json_decref(r);
      snprintf(failed, flen, "%s", id);
      return i;
    }
    assert_string_equal(th_str(r, "status"), "stored");
    json_decref(r);
  }
  fail_msg("the database never filled up");
  return -1;
}

/* Receives n delivers from alice, in order, acking each (the server pushes
 * at most a window of unacked ones). */
static void collect_and_ack(th_client_t *b, const char *prefix, int n) {
  char id[32];
  for (int i = 0; i < n; i++) {
    json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    assert_string_equal(th_str(d, "msg_id"), id);
    assert_int_equal(strlen(th_str(d, "body")), BODY_LEN);
    json_decref(d);
    th_client_ack(b, "alice", id);
  }
}

static void test_full_store_refuses_keeps_and_recovers(void **state) {
  th_server_t *srv = *state;
  int port = th_server_port(srv);
  th_client_t *bob = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_close(bob);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *c = th_client_user(port, "carol", TH_FIXTURE_PW);
  char failed[32];
  int n = fill(a, "bob", "m", failed, sizeof(failed));
  assert_true(n > 10);
  /* the refused one was not kept: a repeat is refused again, not "stored" */
  json_t *r = send_big(a, "bob", failed);
  th_assert_type(r, "error", "internal");
  json_decref(r);
  /* relay to an online user needs no disk and still works */
  th_client_send_msg(a, "carol", "live", "relay works", "relayed");
  json_decref(th_client_expect_deliver(c, "alice", "live", "relay works", 0));
  th_client_ack(c, "alice", "live");
  json_decref(th_client_expect(a, "receipt", TH_DEADLINE_MS));
  th_client_close(a);
  th_client_close(c);

  /* the hardest restart: every "stored" one is there, the refused is not */
  th_server_restart(srv, SIGKILL);
  port = th_server_port(srv);
  bob = th_client_connect(port);
  th_client_login(bob, "bob", TH_FIXTURE_PW, 0);
  collect_and_ack(bob, "m", n);
  th_client_expect_silence(bob, 300);
  json_decref(th_client_call_ok(bob, "{s:s}", "type", "logout"));
  th_client_close(bob);

  /* the acks freed the space: stored messages are taken again */
  a = th_client_connect(port);
  th_client_login(a, "alice", TH_FIXTURE_PW, 0);
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (int i = 0; i < 5; i++) {
    char id[32];
    snprintf(id, sizeof(id), "again%d", i);
    r = send_big(a, "bob", id);
    if (strcmp(th_str(r, "type"), "error") == 0) {
      /* bob's logout may not be seen yet, or the deletes not yet committed */
      assert_true(th_now_ms() < deadline);
      i--;
    } else {
      assert_string_equal(th_str(r, "status"), "stored");
    }
    json_decref(r);
  }
  th_client_close(a);
}

/* Acks arriving while puts keep failing: the deletes are committed even
 * though their batch failed, so the space comes back; and they are not
 * delivered again after a restart. */
static void test_acks_free_space_while_puts_fail(void **state) {
  th_server_t *srv = *state;
  int port = th_server_port(srv);
  th_client_t *x = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_close(x);
  x = th_client_user(port, "dave", TH_FIXTURE_PW);
  th_client_close(x);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  char failed[32];
  int n = fill(a, "bob", "m", failed, sizeof(failed));
  th_client_t *bob = th_client_connect(port);
  th_client_login(bob, "bob", TH_FIXTURE_PW, 0);
  /* each ack goes with a put to dave (offline) that does not fit, unpaced */
  char id[32];
  int stored = 0, refused = 0;
  for (int i = 0; i < n; i++) {
    json_t *d = th_client_expect(bob, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "m%d", i);
    assert_string_equal(th_str(d, "msg_id"), id);
    json_decref(d);
    th_client_ack(bob, "alice", id);
    snprintf(id, sizeof(id), "d%d", i);
    th_client_send(a, "{s:s,s:s,s:s,s:s,s:i}", "type", "send", "to", "dave",
                   "msg_id", id, "body", body, "id", i);
  }
  int dave_ids[MAX_TRIES];
  for (int i = 0; i < n; i++) {
    json_t *r = th_client_recv(a, TH_DEADLINE_MS);
    assert_non_null(r);
    if (strcmp(th_str(r, "type"), "receipt") == 0) {
      json_decref(r);
      i--;
      continue;
    }
    if (strcmp(th_str(r, "type"), "ok") == 0) {
      assert_string_equal(th_str(r, "status"), "stored");
      dave_ids[stored++] = (int)th_int(r, "id");
    } else {
      th_assert_type(r, "error", "internal");
      refused++;
    }
    json_decref(r);
  }
  print_message("%d acked; to dave meanwhile %d stored, %d refused\n", n,
                stored, refused);
  json_decref(th_client_call_ok(bob, "{s:s}", "type", "logout"));
  th_client_close(bob);
  th_client_close(a);
  th_server_restart(srv, SIGKILL);
  port = th_server_port(srv);
  /* bob's acked messages are gone for good */
  bob = th_client_connect(port);
  th_client_login(bob, "bob", TH_FIXTURE_PW, 0);
  th_client_expect_silence(bob, 300);
  th_client_close(bob);
  /* dave gets exactly what was answered stored, in order */
  th_client_t *dave = th_client_connect(port);
  th_client_login(dave, "dave", TH_FIXTURE_PW, 0);
  for (int i = 0; i < stored; i++) {
    json_t *d = th_client_expect(dave, "deliver", TH_DEADLINE_MS);
    snprintf(id, sizeof(id), "d%d", dave_ids[i]);
    assert_string_equal(th_str(d, "msg_id"), id);
    json_decref(d);
    th_client_ack(dave, "alice", id);
  }
  th_client_expect_silence(dave, 300);
  json_decref(th_client_call_ok(dave, "{s:s}", "type", "logout"));
  th_client_close(dave);
  /* everything is acked: the store has room again */
  a = th_client_connect(port);
  th_client_login(a, "alice", TH_FIXTURE_PW, 0);
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof(id), "late%d", i);
    json_t *r = send_big(a, "dave", id);
    if (strcmp(th_str(r, "type"), "ok") != 0) {
      /* the logout or the deletes may not be through yet */
      assert_true(th_now_ms() < deadline);
      i--;
    }
    json_decref(r);
  }
  th_client_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_full_store_refuses_keeps_and_recovers, up,
          th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_acks_free_space_while_puts_fail, up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
