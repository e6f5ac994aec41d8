/* test_client_resilience.c -- chat-client loses nothing: a peer killed
 * mid-conversation, an offline recipient, a server restarted (SIGTERM and
 * SIGKILL) under a conversation, and the exit codes of CLI.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS

/* c gets alice's messages with the bodies fmt % 1..n, in any order. */
static void wait_numbered(th_cli_t *c, const char *fmt, int n) {
  char body[32];
  for (int i = 1; i <= n; i++) {
    snprintf(body, sizeof(body), fmt, i);
    th_cli_wait(c, D, "message", "from", "alice", "body", body, NULL);
  }
}

/* None of those messages was shown twice. */
static void assert_numbered_once(th_cli_t *c, const char *fmt, int n) {
  char body[32];
  for (int i = 1; i <= n; i++) {
    snprintf(body, sizeof(body), fmt, i);
    assert_int_equal(th_cli_count(c, "message", "body", body, NULL), 1);
  }
}

static void test_peer_killed_mid_conversation(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);

  th_cli_make_contacts(a, "alice", b, "bob");
  th_cli_cmd(a, "/msg bob m0");
  th_cli_wait(a, D, "sent", "via", "direct", NULL);
  th_cli_wait(b, D, "message", "body", "m0", "via", "direct", NULL);

  th_proc_signal(th_cli_proc(b), SIGKILL);
  for (int i = 1; i <= 5; i++)
    th_cli_cmd(a, "/msg bob m%d", i);
  for (int i = 1; i <= 5; i++) {
    json_t *ev = th_cli_wait(a, D, "sent", "to", "bob", NULL);
    /* The link died or bob is gone: either way the relay stores it. */
    assert_string_equal(json_string_value(json_object_get(ev, "via")),
                        "relay");
    assert_non_null(json_object_get(ev, "fallback"));
  }
  th_cli_free(b);

  b = th_cli_ready(port, "bob", NULL);
  wait_numbered(b, "m%d", 5);
  th_cli_cmd(b, "/msg alice back again");
  th_cli_wait(a, D, "message", "body", "back again", NULL);
  assert_int_equal(th_cli_finish(b, D), 0);
  assert_int_equal(th_cli_finish(a, D), 0);
  /* Nothing twice (m0 came before the kill, to the first bob). */
  assert_numbered_once(b, "m%d", 5);
  assert_int_equal(th_cli_count(b, "message", "body", "m0", NULL), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

static void test_offline_recipient_stored_then_delivered(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  json_t *sent;
  const char *id;

  th_cli_make_contacts(a, "alice", b, "bob");
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(b);
  th_cli_wait(a, D, "presence", "user", "bob", "status", "offline", NULL);
  th_cli_cmd(a, "/msg bob while you were out");
  sent = th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "status",
                     "stored", "fallback", "offline", NULL);
  id = json_string_value(json_object_get(sent, "msg_id"));

  b = th_cli_ready(port, "bob", NULL);
  th_cli_wait(b, D, "message", "from", "alice", "body", "while you were out",
              "msg_id", id, "via", "relay", "offline", "true", NULL);
  th_cli_wait(a, D, "receipt", "to", "bob", "msg_id", id, "state",
              "delivered", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}


static void restart_under_conversation(int sig) {
  char listen[64];
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", th_free_port());
  const char *const extra[] = {"--listen", listen, NULL};
  const char *const no_p2p[] = {"--no-p2p", NULL};
  th_server_t *s = th_server_start(extra);
  int port = th_server_port(s);
  /* Both without listeners: every message takes the relay. */
  th_cli_t *a = th_cli_ready(port, "alice", no_p2p);
  th_cli_t *b = th_cli_ready(port, "bob", no_p2p);

  th_cli_make_contacts(a, "alice", b, "bob");
  th_cli_cmd(a, "/msg bob before");
  th_cli_wait(b, D, "message", "body", "before", NULL);

  th_server_stop(s, sig);
  th_cli_wait(a, D, "disconnected", NULL);
  th_cli_wait(b, D, "disconnected", NULL);
  /* Typed while the server is down: kept, sent after the relogin. */
  for (int i = 1; i <= 3; i++)
    th_cli_cmd(a, "/msg bob during %d", i);
  th_server_restart(s, sig);
  assert_int_equal(th_server_port(s), port);
  /* The backoff is at most a few seconds this early. */
  th_cli_wait(a, 40000, "ready", NULL);
  th_cli_wait(b, 40000, "ready", NULL);
  th_cli_cmd(a, "/msg bob after");
  wait_numbered(b, "during %d", 3);
  th_cli_wait(b, D, "message", "body", "after", NULL);
  assert_int_equal(th_cli_finish(a, 15000), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  assert_numbered_once(b, "during %d", 3);
  assert_int_equal(th_cli_count(a, "sent", "to", "bob", NULL), 5);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

static void test_server_restart_sigterm(void **state) {
  restart_under_conversation(SIGTERM);
}

static void test_server_restart_sigkill(void **state) {
  restart_under_conversation(SIGKILL);
}

static void test_exit_codes(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), status;
  char bin[4096], server[64];
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);

  /* --help: usage on stdout, 0. A bad flag: usage on stderr, 2. */
  const char *help[] = {bin, "--help", NULL};
  th_proc_t *p = th_proc_spawn(help, NULL);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 0);
  assert_non_null(strstr(th_proc_output(p, TH_STDOUT), "usage: chat-client"));
  th_proc_free(p);
  const char *bad[] = {bin, "--user", "x", "--frobnicate", NULL};
  p = th_proc_spawn(bad, NULL);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 2);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR), "usage: chat-client"));
  th_proc_free(p);

  /* A wrong password: exit 1 with a reason. */
  snprintf(server, sizeof(server), "127.0.0.1:%d", port);
  const char *login[] = {bin, "--json", "--server", server, "--user", "alice",
                         NULL};
  const char *wrong[] = {"CHAT_PASSWORD=not-the-password", NULL};
  p = th_proc_spawn(login, wrong);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR), "auth_failed"));
  assert_string_equal(th_proc_output(p, TH_STDOUT), "");
  th_proc_free(p);
  /* --register of an existing name with another password: also 1. */
  const char *reg[] = {bin, "--server", server, "--user", "alice",
                       "--register", NULL};
  p = th_proc_spawn(reg, wrong);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 1);
  th_proc_free(p);

  /* The same name again wins: the first client is kicked and exits 1. */
  th_cli_t *a2 = th_cli_ready(port, "alice", NULL);
  th_cli_wait(a, D, "kicked", "reason", "logged_in_elsewhere", NULL);
  assert_int_equal(th_proc_wait(th_cli_proc(a), D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(a)), 1);

  /* SIGTERM: logs out and exits 0. */
  th_proc_signal(th_cli_proc(a2), SIGTERM);
  assert_int_equal(th_proc_wait(th_cli_proc(a2), D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(a2)), 0);

  /* No server: exit 1 with a reason. */
  th_server_stop(s, SIGTERM);
  p = th_proc_spawn(login, (const char *const[]){"CHAT_PASSWORD=password-1",
                                                 NULL});
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR), "cannot reach"));
  th_proc_free(p);
  th_cli_free(a);
  th_cli_free(a2);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_peer_killed_mid_conversation),
      cmocka_unit_test(test_offline_recipient_stored_then_delivered),
      cmocka_unit_test(test_server_restart_sigterm),
      cmocka_unit_test(test_server_restart_sigkill),
      cmocka_unit_test(test_exit_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
