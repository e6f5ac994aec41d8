/* test_client_direct.c -- chat-client's direct path and its fallbacks, with
 * real chat-server and chat-client processes; direct links are TLS with the
 * key the server vouched for (PROTOCOL.md 7), and a listener that cannot
 * prove it (a man in the middle, no key, no TLS) costs the direct path:
 * fallback bad_key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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

/* bob, a raw protocol client, logs in naming p2p as his listener and key
 * as his direct-link key (NULL: none), and accepts the chat-client alice's
 * (a's) contact request. */
static void raw_bob_accepts_key(th_client_t *bob, th_cli_t *a, int p2p,
                                const char *key) {
  th_client_register(bob, "bob", TH_CLI_PASSWORD);
  json_t *login = json_pack("{s:s,s:s,s:s,s:i}", "type", "login", "user",
                            "bob", "password", TH_CLI_PASSWORD, "p2p_port",
                            p2p);
  if (key)
    json_object_set_new(login, "key", json_string(key));
  json_decref(th_client_call_ok(bob, "O", login));
  json_decref(login);
  th_cli_cmd(a, "/add bob");
  json_decref(th_client_expect(bob, "contact_request", D));
  th_client_send(bob, "{s:s,s:s,s:s}", "type", "contact_accept", "id", "1",
                 "user", "alice");
  th_cli_wait(a, D, "contact_added", "user", "bob", NULL);
}

/* Any key: these listeners never get as far as proving one. */
static const char SOME_KEY[] =
    "5eed0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

static void raw_bob_accepts(th_client_t *bob, th_cli_t *a, int p2p) {
  raw_bob_accepts_key(bob, a, p2p, SOME_KEY);
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

/* The man in the middle: bob's login vouches for key K1, but the listener
 * he advertises proves K2 (it has a valid ticket coming, and would take
 * it). alice's chat-client finishes the handshake, sees K2, and closes
 * without a word: no peer_hello, so the ticket is never shown; the message
 * goes by relay with bad_key and reaches bob by deliver. */
static void test_listener_with_other_key_refused(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), p2p;
  int lfd = th_listen(&p2p);
  th_peer_tls_t *k1 = th_peer_tls_new(), *k2 = th_peer_tls_new();
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_client_t *bob = th_client_connect(port);
  th_client_t *link;
  json_t *f;

  raw_bob_accepts_key(bob, a, p2p, th_peer_tls_key(k1));
  th_cli_cmd(a, "/msg bob for bob only");
  f = th_client_expect(bob, "expect", D); /* the ticket alice will not show */
  json_decref(f);
  link = th_accept_tls(lfd, k2, D);
  if (!link) {
    th_cli_dump(a);
    fail_msg("alice did not dial, or the handshake failed");
  }
  /* alice proved her key (K2's holder learns it, that is all) and closes
   * without any frame. */
  assert_null(th_client_recv(link, D));
  assert_true(th_client_closed(link));
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "status", "relayed",
              "fallback", "bad_key", NULL);
  f = th_client_expect(bob, "deliver", D);
  assert_string_equal(th_str(f, "body"), "for bob only");
  json_decref(f);
  assert_int_equal(th_cli_count(a, "sent", "via", "direct", NULL), 0);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  th_client_close(link);
  th_client_close(bob);
  th_peer_tls_free(k1);
  th_peer_tls_free(k2);
  close(lfd);
  th_server_free(s);
}

/* bob announced no key: nothing vouches for his listener, so alice does not
 * even dial; relay with bad_key. */
static void test_no_key_vouched_no_dial(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), p2p;
  int lfd = th_listen(&p2p);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_client_t *bob = th_client_connect(port);
  struct pollfd pfd = {lfd, POLLIN, 0};
  json_t *f;

  raw_bob_accepts_key(bob, a, p2p, NULL);
  th_cli_cmd(a, "/msg bob keyless");
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "fallback",
              "bad_key", NULL);
  f = th_client_expect(bob, "deliver", D);
  json_decref(f);
  assert_int_equal(poll(&pfd, 1, 0), 0); /* nobody dialed */
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  th_client_close(bob);
  close(lfd);
  th_server_free(s);
}

/* A listener that speaks no TLS (here: it answers the ClientHello with a
 * plaintext line): the handshake fails, which counts as bad_key. */
static void test_handshake_failure_is_bad_key(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s), p2p;
  int lfd = th_listen(&p2p);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_client_t *bob = th_client_connect(port);
  struct pollfd pfd = {lfd, POLLIN, 0};
  static const char plain[] = "{\"type\":\"peer_welcome\",\"user\":\"bob\"}\n";
  json_t *f;
  int fd;

  raw_bob_accepts(bob, a, p2p);
  th_cli_cmd(a, "/msg bob plain listener");
  assert_int_equal(poll(&pfd, 1, D), 1);
  fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(send(fd, plain, sizeof(plain) - 1, MSG_NOSIGNAL),
                   (ssize_t)sizeof(plain) - 1);
  th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "fallback",
              "bad_key", NULL);
  f = th_client_expect(bob, "deliver", D);
  assert_string_equal(th_str(f, "body"), "plain listener");
  json_decref(f);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
  close(fd);
  th_client_close(bob);
  close(lfd);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_direct_both_ways_one_link),
      cmocka_unit_test(test_no_p2p_peer_gets_relay),
      cmocka_unit_test(test_not_contact_gets_relay),
      cmocka_unit_test(test_silent_peer_times_out_to_relay),
      cmocka_unit_test(test_refused_dial_falls_back),
      cmocka_unit_test(test_listener_with_other_key_refused),
      cmocka_unit_test(test_no_key_vouched_no_dial),
      cmocka_unit_test(test_handshake_failure_is_bad_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
