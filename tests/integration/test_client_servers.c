/* test_client_servers.c -- chat-client --server A,B,... (CLI.md): the first
 * node that answers is used (a dead address first is passed over), a
 * SIGKILLed node is left for the other by the client itself, which logs in
 * there with its session token and gets what is sent to it; every address
 * dead is exit 1 naming each, a bad list exit 2 naming the entry; with
 * --tls each node's certificate is checked against the host dialed.
 *
 * The failover case runs two chat-server nodes on one redis-server of the
 * test's own (tests/support/redis_proc.h) and skips without one. Both of
 * its clients end on the surviving node: messages between nodes are not
 * this test's business. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"
#include "tls.h"
#include "../support/redis_proc.h"

#define D TH_DEADLINE_MS

/* A port on ip that refuses every connect and that no other test can take
 * meanwhile: bound, never listening, until the fd is closed. */
static int hold_dead_port(const char *ip, int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    fail_msg("cannot hold a port on %s", ip);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Waits for a line of c's log (stderr) containing needle; fails with the
 * transcripts when none comes. */
static void log_says(th_cli_t *c, const char *needle) {
  if (th_proc_wait_line(th_cli_proc(c), TH_STDERR, needle, D) == NULL) {
    th_cli_dump(c);
    th__server_dump_all();
    fail_msg("the client never logged '%s'", needle);
  }
}

static void server_log_says(th_server_t *s, const char *needle) {
  if (th_proc_wait_line(th_server_proc(s), TH_STDERR, needle, D) == NULL) {
    th__server_dump_all();
    fail_msg("chat-server never logged '%s'", needle);
  }
}

static th_server_t *node_on(const rp_t *r, const char *name) {
  const char *extra[] = {"--db", r->url, "--node", name, NULL};
  return th_server_start(extra);
}

static void test_failover_to_the_other_node(void **state) {
  const char *why = rp_missing();
  const char *const no_p2p[] = {"--no-p2p", NULL};
  char list[128], want[160];
  rp_t r;
  int dead, p1, p2, held;

  if (why != NULL) {
    print_message("%s\n", why);
    skip();
  }
  if (rp_start(&r, NULL) != 0)
    fail_msg("redis-server did not start");
  th_server_t *n1 = node_on(&r, "n1");
  th_server_t *n2 = node_on(&r, "n2");
  p1 = th_server_port(n1);
  p2 = th_server_port(n2);
  held = hold_dead_port("127.0.0.1", &dead);
  snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
           dead, p1, p2);

  /* The dead address is passed over at once: alice is on n1. */
  th_cli_t *a = th_cli_start_at(list, "alice", no_p2p, NULL);
  th_cli_wait(a, D, "ready", "user", "alice", NULL);
  snprintf(want, sizeof(want), "connected to 127.0.0.1:%d", p1);
  log_says(a, want);
  snprintf(want, sizeof(want),
           "logging in at 127.0.0.1:%d as alice with the password", p1);
  log_says(a, want);
  server_log_says(n1, "login alice from");
  th_cli_t *b = th_cli_ready(p2, "bob", no_p2p);

  /* n1 dies without a goodbye: alice moves to n2 by herself, with her
   * token, and what bob (on n2) sends her then reaches her. */
  assert_int_equal(th_server_stop(n1, SIGKILL), 128 + SIGKILL);
  th_cli_wait(a, D, "disconnected", NULL);
  th_cli_wait(a, D, "ready", "user", "alice", NULL);
  /* The node after the lost one is tried first, and takes her: the first
   * try after the loss goes to n2 (neither the dead address nor n1 again),
   * and no other try comes before her token login there. */
  {
    char lost[64], next[64];
    int tries = 0;
    snprintf(lost, sizeof(lost), "127.0.0.1:%d: ", p1); /* EOF or reset */
    snprintf(next, sizeof(next), "; next: 127.0.0.1:%d in ", p2);
    snprintf(want, sizeof(want),
             "logging in at 127.0.0.1:%d as alice with the session token", p2);
    for (;;) {
      const char *l = th_proc_read_line(th_cli_proc(a), TH_STDERR, D);
      if (l == NULL) {
        th_cli_dump(a);
        fail_msg("the client never logged '%s'", want);
      }
      if (strstr(l, want) != NULL)
        break;
      if (strstr(l, "; next: ") == NULL)
        continue;
      if (tries++ > 0 || strstr(l, lost) == NULL || strstr(l, next) == NULL) {
        th_cli_dump(a);
        fail_msg("after the loss of n1, not n2 first: %s", l);
      }
    }
    assert_int_equal(tries, 1);
  }
  server_log_says(n2, "login alice from");
  th_cli_cmd(b, "/msg alice after the failover");
  th_cli_wait(b, D, "sent", "to", "alice", "via", "relay", "status",
              "relayed", NULL);
  th_cli_wait(a, D, "message", "from", "bob", "body", "after the failover",
              "via", "relay", NULL);
  th_cli_cmd(a, "/msg bob got it");
  th_cli_wait(b, D, "message", "from", "alice", "body", "got it", NULL);

  /* --json carried CLI.md's events only: one disconnected, and the one
   * reconnecting before the first try (n2 answered it). */
  assert_int_equal(th_cli_count(a, "disconnected", NULL), 1);
  assert_int_equal(th_cli_count(a, "reconnecting", NULL), 1);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  assert_int_equal(th_server_stop(n2, SIGTERM), 0);
  th_server_free(n1);
  th_server_free(n2);
  close(held);
  rp_free(&r);
}

/* Runs chat-client --server list (no --json unless asked) with the right
 * password and waits for its exit; returns the process (freed by the
 * caller). */
static th_proc_t *run_client(const char *list, int json) {
  const char *argv[] = {CHAT_BIN_DIR "/chat-client", "--server", list,
                        "--user",    "alice",          json ? "--json" : NULL,
                        NULL};
  const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};
  th_proc_t *p = th_proc_spawn(argv, env);
  int st;
  if (th_proc_wait(p, 2 * D, &st) != 0)
    fail_msg("chat-client --server %s did not exit", list);
  return p;
}

static void test_every_address_dead(void **state) {
  char list[128], want[128];
  int d1, d2;
  int h1 = hold_dead_port("127.0.0.1", &d1);
  int h2 = hold_dead_port("127.0.0.1", &d2);
  snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", d1, d2);
  th_proc_t *p = run_client(list, 1);
  const char *err = th_proc_output(p, TH_STDERR);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_string_equal(th_proc_output(p, TH_STDOUT), ""); /* --json */
  snprintf(want, sizeof(want), "cannot reach any server: 127.0.0.1:%d: ", d1);
  if (strstr(err, want) == NULL)
    fail_msg("wanted '%s' in:\n%s", want, err);
  snprintf(want, sizeof(want), "; 127.0.0.1:%d: ", d2);
  assert_non_null(strstr(err, want));
  th_proc_free(p);
  close(h1);
  close(h2);
}

static void test_bad_lists(void **state) {
  static const struct {
    const char *list, *named;
  } bad[] = {
      {"127.0.0.1:7700,,127.0.0.1:7701", "empty entry"},
      {"127.0.0.1:7700,nohost", "'nohost'"},
      {"127.0.0.1:7700,::1:7701", "'::1:7701'"},
      {"127.0.0.1:7700, 127.0.0.1:7700", "127.0.0.1:7700 twice"},
      {"a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,l:1,m:1,n:1,o:1,p:1,q:1",
       "at most 16"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    th_proc_t *p = run_client(bad[i].list, 0);
    const char *err = th_proc_output(p, TH_STDERR);
    if (th_proc_exit_code(p) != 2 || strstr(err, bad[i].named) == NULL ||
        strstr(err, "usage: chat-client") == NULL)
      fail_msg("--server '%s': exit %d, wanted 2 naming %s:\n%s",
               bad[i].list, th_proc_exit_code(p), bad[i].named, err);
    th_proc_free(p);
  }
}

/* The certificates are for localhost and 127.0.0.1. The first address is
 * dead and its host (127.0.0.2) in no certificate; the second is a node
 * whose certificate is for another name; the third is good. A client that
 * checked any host but the one it dialed would refuse the third node or
 * take the second. */
static void test_tls_checks_the_host_dialed(void **state) {
  th_certs_t *t = th_certs_make();
  int other_port, good_port, dead;
  th_server_t *other =
      th_tls_server_start(t->other_cert, t->other_key, NULL, &other_port);
  th_server_t *good = th_tls_server_start(t->cert, t->key, NULL, &good_port);
  int held = hold_dead_port("127.0.0.2", &dead);
  char list[128], want[128];
  snprintf(list, sizeof(list), "127.0.0.2:%d,127.0.0.1:%d,127.0.0.1:%d",
           dead, other_port, good_port);
  const char *const tls[] = {"--tls", "--tls-ca", t->ca, "--no-p2p", NULL};

  th_cli_t *a = th_cli_start_at(list, "alice", tls, NULL);
  th_cli_wait(a, D, "ready", "user", "alice", NULL);
  snprintf(want, sizeof(want), "127.0.0.1:%d: tls: certificate verify failed",
           other_port);
  log_says(a, want);
  snprintf(want, sizeof(want), "connected to 127.0.0.1:%d", good_port);
  log_says(a, want);
  assert_int_equal(th_cli_count(a, "reconnecting", NULL), 0);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);

  /* People see each try and the node that took them. */
  {
    th_proc_t *p;
    const char *argv[] = {CHAT_BIN_DIR "/chat-client", "--server", list,
                          "--user", "alice", "--tls", "--tls-ca", t->ca,
                          "--no-p2p", NULL};
    const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};
    int st;
    p = th_proc_spawn(argv, env);
    th_proc_close_stdin(p);
    if (th_proc_wait(p, 2 * D, &st) != 0)
      fail_msg("chat-client did not exit at the end of its input");
    const char *out = th_proc_output(p, TH_STDOUT);
    snprintf(want, sizeof(want), "connecting to 127.0.0.2:%d", dead);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "connected to 127.0.0.1:%d (TLSv1.3, "
             "certificate verified)", good_port);
    if (strstr(out, want) == NULL)
      fail_msg("wanted '%s' in:\n%s", want, out);
    assert_int_equal(th_proc_exit_code(p), 0);
    th_proc_free(p);
  }
  assert_int_equal(th_server_stop(other, SIGTERM), 0);
  assert_int_equal(th_server_stop(good, SIGTERM), 0);
  th_server_free(other);
  th_server_free(good);
  close(held);
  th_certs_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failover_to_the_other_node),
      cmocka_unit_test(test_every_address_dead),
      cmocka_unit_test(test_bad_lists),
      cmocka_unit_test(test_tls_checks_the_host_dialed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
