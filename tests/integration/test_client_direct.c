/* test_client_direct.c -- chat-client's direct path and its fallbacks, with
 * real chat-server and chat-client processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS

static int count_lines(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

static void test_direct_both_ways_one_link(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  json_t *ev;

  th_cli_make_contacts(a, "alice", b, "bob");
  th_cli_cmd(a, "/msg bob first over the link");
  ev = th_cli_wait(a, D, "sent", "to", "bob", "via", "direct", "status",
                   "delivered", NULL);
  assert_null(json_object_get(ev, "fallback"));
  th_cli_wait(b, D, "message", "from", "alice", "body",
              "first over the link", "via", "direct", "offline", "false",
              NULL);
  /* Bob answers on the link alice opened: no connect of his own. */
  th_cli_cmd(b, "/msg alice answer over the same link");
  th_cli_wait(b, D, "sent", "to", "alice", "via", "direct", NULL);
  th_cli_wait(a, D, "message", "from", "bob", "body",
              "answer over the same link", "via", "direct", NULL);
  /* A bare line goes to the last conversation, on the open link. */
  th_cli_cmd(a, "second, no new connect");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "direct", NULL);
  th_cli_wait(b, D, "message", "body", "second, no new connect", "via",
              "direct", NULL);

  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  assert_int_equal(count_lines(th_proc_output(th_cli_proc(a), TH_STDERR),
                               "asking the server for a direct link"), 1);
  assert_int_equal(count_lines(th_proc_output(th_cli_proc(b), TH_STDERR),
                               "asking the server for a direct link"), 0);
  assert_int_equal(th_cli_count(b, "message", NULL), 2);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

static void test_no_p2p_peer_gets_relay(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  const char *const no_p2p[] = {"--no-p2p", NULL};
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", no_p2p);

  assert_int_equal(th_cli_count(b, "ready", "p2p_port", "0", NULL), 1);
  th_cli_make_contacts(a, "alice", b, "bob");
  th_cli_cmd(a, "/msg bob via the relay");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "status", "relayed",
              "fallback", "no_p2p", NULL);
  th_cli_wait(b, D, "message", "from", "alice", "body", "via the relay",
              "via", "relay", NULL);
  th_cli_wait(a, D, "receipt", "to", "bob", "state", "delivered", NULL);
  /* bob has no listener but may dial alice. */
  th_cli_cmd(b, "/msg alice dialed out");
  th_cli_wait(b, D, "sent", "to", "alice", "via", "direct", NULL);
  th_cli_wait(a, D, "message", "body", "dialed out", "via", "direct", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

static void test_not_contact_gets_relay(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  th_cli_cmd(a, "/msg bob stranger");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "fallback",
              "not_contact", NULL);
  th_cli_wait(b, D, "message", "from", "alice", "body", "stranger", NULL);
  th_cli_cmd(a, "/msg nobody hello");
  th_cli_wait(a, D, "error", "code", "no_such_user", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

/* A socket that accepts connections (in the kernel backlog) and never says
 * anything: a peer listener that hangs. */
static int silent_listener(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 16), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* bob, a raw protocol client, logs in naming p2p as his listener and
 * accepts the chat-client alice's (a's) contact request. */
static void raw_bob_accepts(th_client_t *bob, th_cli_t *a, int p2p) {
  th_client_register(bob, "bob", TH_CLI_PASSWORD);
  th_client_login(bob, "bob", TH_CLI_PASSWORD, p2p);
  th_cli_cmd(a, "/add bob");
  json_decref(th_client_expect(bob, "contact_request", D));
  th_client_send(bob, "{s:s,s:s,s:s}", "type", "contact_accept", "id", "1",
                 "user", "alice");
  th_cli_wait(a, D, "contact_added", "user", "bob", NULL);
}

static void test_silent_peer_times_out_to_relay(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), p2p;
  int lfd = silent_listener(&p2p);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_client_t *bob = th_client_connect(port);
  json_t *f;
  long long t0, dt;

  raw_bob_accepts(bob, a, p2p);

  t0 = th_now_ms();
  th_cli_cmd(a, "/msg bob are you there");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "status", "relayed",
              "fallback", "timeout", NULL);
  dt = th_now_ms() - t0;
  /* 3 s after the connect reply, with room for a slow machine. */
  assert_true(dt >= 2900);
  assert_true(dt <= 6000);
  f = th_client_expect(bob, "deliver", D);
  assert_string_equal(th_str(f, "body"), "are you there");
  json_decref(f);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  th_client_close(bob);
  close(lfd);
  th_server_free(s);
}

static void test_refused_dial_falls_back(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), p2p;
  int lfd = silent_listener(&p2p);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_client_t *bob = th_client_connect(port);
  json_t *f;

  close(lfd); /* nobody listens there any more: the dial is refused */
  raw_bob_accepts(bob, a, p2p);
  th_cli_cmd(a, "/msg bob knock knock");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "fallback",
              "refused", NULL);
  f = th_client_expect(bob, "deliver", D);
  assert_string_equal(th_str(f, "body"), "knock knock");
  json_decref(f);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  th_client_close(bob);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_direct_both_ways_one_link),
      cmocka_unit_test(test_no_p2p_peer_gets_relay),
      cmocka_unit_test(test_not_contact_gets_relay),
      cmocka_unit_test(test_silent_peer_times_out_to_relay),
      cmocka_unit_test(test_refused_dial_falls_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
