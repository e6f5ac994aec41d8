/* test_client_tickets.c -- abuse of a real chat-client's listener.
 *
 * The test plays the server for bob's chat-client (a listening socket that
 * answers the login and sends `expect` frames when the test wants), and
 * dials bob's p2p port with raw sockets (the harness's raw client, over TLS
 * with a key of its own: PROTOCOL.md 7) to present forged, foreign, used
 * and late tickets, a key the expect did not vouch for, no TLS at all, say
 * nothing, trickle, or send garbage. After each abuse a legitimate peer
 * must still get through: its message reaches bob's output and is acked.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_proc.h"
#include "harness.h"

static const char T1[] = "0123456789abcdef0123456789abcdef";
static const char T2[] = "fedcba9876543210fedcba9876543210";

/* ---- a fake server for one client --------------------------------------- */

typedef struct fsrv {
  int lfd, fd, port;
  char buf[1 << 16];
  size_t len;
} fsrv_t;

static void fsrv_listen(fsrv_t *s) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  memset(s, 0, sizeof(*s));
  s->fd = -1;
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(s->lfd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->lfd, 4), 0);
  assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
  s->port = ntohs(a.sin_port);
}

static void fsrv_close(fsrv_t *s) {
  if (s->fd >= 0)
    close(s->fd);
  close(s->lfd);
}

static void fsrv_accept(fsrv_t *s) {
  struct pollfd p = {s->lfd, POLLIN, 0};
  if (poll(&p, 1, TH_DEADLINE_MS) != 1)
    fail_msg("the client did not connect to the fake server");
  s->fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s->fd >= 0);
}

static void fsrv_send(fsrv_t *s, const char *fmt, ...) {
  va_list ap;
  json_t *obj;
  char *line;
  va_start(ap, fmt);
  obj = json_vpack_ex(NULL, 0, fmt, ap);
  va_end(ap);
  assert_non_null(obj);
  line = json_dumps(obj, JSON_COMPACT);
  assert_non_null(line);
  size_t n = strlen(line);
  line[n] = '\n'; /* over the NUL: one write, one line */
  assert_int_equal(send(s->fd, line, n + 1, MSG_NOSIGNAL), (ssize_t)n + 1);
  free(line);
  json_decref(obj);
}

/* The next frame from the client (a new reference), answering pings. */
static json_t *fsrv_recv(fsrv_t *s, int timeout_ms) {
  long long end = th_now_ms() + timeout_ms;
  for (;;) {
    char *nl = memchr(s->buf, '\n', s->len);
    if (nl) {
      json_t *obj = json_loadb(s->buf, (size_t)(nl - s->buf), 0, NULL);
      s->len -= (size_t)(nl + 1 - s->buf);
      memmove(s->buf, nl + 1, s->len);
      assert_non_null(obj);
      if (strcmp(th_str(obj, "type"), "ping") == 0) {
        fsrv_send(s, "{s:s}", "type", "pong");
        json_decref(obj);
        continue;
      }
      return obj;
    }
    long long left = end - th_now_ms();
    struct pollfd p = {s->fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left) != 1)
      return NULL;
    ssize_t r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len - 1, 0);
    if (r <= 0)
      return NULL;
    s->len += (size_t)r;
  }
}

/* The next request, which must be type with id (a new reference). */
static json_t *fsrv_take_request(fsrv_t *s, const char *type, const char *id) {
  json_t *m = fsrv_recv(s, TH_DEADLINE_MS);
  if (!m)
    fail_msg("no %s from the client", type);
  assert_string_equal(th_str(m, "type"), type);
  assert_string_equal(th_str(m, "id"), id);
  return m;
}

static void fsrv_expect_request(fsrv_t *s, const char *type, const char *id) {
  json_decref(fsrv_take_request(s, type, id));
}

/* ---- bob, logged in to the fake server ------------------------------------ */

typedef struct fx {
  fsrv_t srv;
  th_cli_t *bob;
  int p2p_port;
  char bob_key[65];      /* what bob's login announced */
  th_peer_tls_t *alice;  /* the legitimate dialer's key, vouched in expects */
  th_peer_tls_t *mallory; /* a key nobody vouched for */
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  json_t *ready;
  assert_non_null(f);
  fsrv_listen(&f->srv);
  f->bob = th_cli_start(f->srv.port, "bob", NULL);
  fsrv_accept(&f->srv);
  fsrv_send(&f->srv, "{s:s,s:i,s:s,s:i,s:i}", "type", "welcome", "proto", 1,
            "server", "fake", "heartbeat", 30, "max_frame", 65536);
  fsrv_expect_request(&f->srv, "register", "register");
  fsrv_send(&f->srv, "{s:s,s:s}", "type", "ok", "id", "register");
  json_t *login = fsrv_take_request(&f->srv, "login", "login");
  /* A fresh key, as 64 lowercase hex digits. */
  assert_non_null(th_str(login, "key"));
  assert_int_equal(strspn(th_str(login, "key"), "0123456789abcdef"), 64);
  snprintf(f->bob_key, sizeof(f->bob_key), "%s", th_str(login, "key"));
  json_decref(login);
  fsrv_send(&f->srv, "{s:s,s:s,s:s,s:s}", "type", "ok", "id", "login", "user",
            "bob", "host", "127.0.0.1");
  fsrv_expect_request(&f->srv, "contacts", "login-contacts");
  fsrv_send(&f->srv, "{s:s,s:s,s:[{s:s,s:s}]}", "type", "ok", "id",
            "login-contacts", "contacts", "user", "alice", "status", "online");
  ready = th_cli_wait(f->bob, TH_DEADLINE_MS, "ready", "user", "bob", NULL);
  f->p2p_port = (int)th_int(ready, "p2p_port");
  assert_true(f->p2p_port > 0);
  f->alice = th_peer_tls_new();
  f->mallory = th_peer_tls_new();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  th_cli_free(f->bob);
  fsrv_close(&f->srv);
  th_peer_tls_free(f->alice);
  th_peer_tls_free(f->mallory);
  free(f);
  return 0;
}

/* The server's expect, vouching for alice's key. */
static void expect(fx_t *f, const char *from, const char *ticket) {
  fsrv_send(&f->srv, "{s:s,s:s,s:s,s:s}", "type", "expect", "from", from,
            "ticket", ticket, "key", th_peer_tls_key(f->alice));
}

/* A TLS link to bob with key k; bob proves the key his login announced. */
static th_client_t *dial_as(fx_t *f, th_peer_tls_t *k) {
  char hex[65];
  th_client_t *p = th_client_dial_tls(f->p2p_port, k);
  if (!p) {
    th_cli_dump(f->bob);
    fail_msg("TLS handshake with bob's listener failed");
  }
  assert_int_equal(th_client_tls_peer_key(p, hex), 0);
  assert_string_equal(hex, f->bob_key);
  return p;
}

static th_client_t *dial(fx_t *f) { return dial_as(f, f->alice); }

static void say_hello(th_client_t *p, const char *from, const char *to,
                      const char *ticket) {
  assert_int_equal(th_client_send(p, "{s:s,s:i,s:s,s:s,s:s}", "type",
                                  "peer_hello", "proto", 1, "from", from, "to",
                                  to, "ticket", ticket),
                   0);
}

/* The peer gets `error code` and then the link is closed. */
static void assert_refused(fx_t *f, th_client_t *p, const char *code) {
  json_t *m = th_client_recv(p, TH_DEADLINE_MS);
  if (!m) {
    th_cli_dump(f->bob);
    fail_msg("no error %s before the close", code);
  }
  th_assert_type(m, "error", code);
  json_decref(m);
  assert_true(th_client_wait_closed(p, TH_DEADLINE_MS));
}

/* A msg on the open link p is acked and reaches bob's output. */
static void msg_acked(fx_t *f, th_client_t *p, const char *id,
                      const char *body) {
  th_client_send(p, "{s:s,s:s,s:s,s:I}", "type", "msg", "msg_id", id, "body",
                 body, "ts", (json_int_t)1);
  json_decref(th_client_expect(p, "ack", TH_DEADLINE_MS));
  th_cli_wait(f->bob, TH_DEADLINE_MS, "message", "msg_id", id, NULL);
}

/* A legitimate peer with a fresh ticket gets through, and its message
 * reaches bob and is acked. */
static void assert_still_works(fx_t *f, const char *ticket, const char *id) {
  th_client_t *p = dial(f);
  expect(f, "alice", ticket);
  say_hello(p, "alice", "bob", ticket);
  json_t *m = th_client_expect(p, "peer_welcome", TH_DEADLINE_MS);
  assert_string_equal(th_str(m, "user"), "bob");
  json_decref(m);
  th_client_send(p, "{s:s,s:s,s:s,s:I}", "type", "msg", "msg_id", id, "body",
                 "still here", "ts", (json_int_t)1700000000000);
  m = th_client_expect(p, "ack", TH_DEADLINE_MS);
  assert_string_equal(th_str(m, "msg_id"), id);
  json_decref(m);
  th_cli_wait(f->bob, TH_DEADLINE_MS, "message", "from", "alice", "msg_id", id,
              "via", "direct", NULL);
  th_client_close(p);
}

/* ---- the cases ------------------------------------------------------------ */

/* A ticket never issued: the hello waits 5 s for an expect, then is refused. */
static void test_forged_ticket(void **state) {
  fx_t *f = *state;
  th_client_t *p = dial(f);
  long long t0 = th_now_ms();
  say_hello(p, "alice", "bob", T1);
  assert_refused(f, p, "bad_ticket");
  assert_true(th_now_ms() - t0 >= 4000); /* it did wait for the expect */
  th_client_close(p);
  assert_still_works(f, T2, "m-forged");
}

/* alice's ticket presented by carol, or by alice to another user. */
static void test_someone_elses_ticket(void **state) {
  fx_t *f = *state;
  /* Whether bob reads the expect before or after a hello, these are
   * refused: the sender or the addressee does not match. */
  expect(f, "alice", T1);
  th_client_t *carol = dial(f);
  say_hello(carol, "carol", "bob", T1);
  assert_refused(f, carol, "bad_ticket");
  th_client_t *other = dial(f);
  say_hello(other, "alice", "dave", T1);
  assert_refused(f, other, "bad_ticket");
  /* T1 survived both: alice's own hello passes. */
  th_client_t *alice = dial(f);
  say_hello(alice, "alice", "bob", T1);
  json_t *m = th_client_expect(alice, "peer_welcome", TH_DEADLINE_MS);
  json_decref(m);
  th_client_close(carol);
  th_client_close(other);
  th_client_close(alice);
  assert_still_works(f, T2, "m-foreign");
}

/* A second hello with a ticket that was used. */
static void test_used_ticket(void **state) {
  fx_t *f = *state;
  th_client_t *first = dial(f), *again;
  expect(f, "alice", T1);
  say_hello(first, "alice", "bob", T1);
  json_decref(th_client_expect(first, "peer_welcome", TH_DEADLINE_MS));
  again = dial(f);
  say_hello(again, "alice", "bob", T1);
  assert_refused(f, again, "bad_ticket");
  th_client_close(again);
  /* The first link still carries messages. */
  msg_acked(f, first, "m-1", "on the first link");
  th_client_close(first);
  assert_still_works(f, T2, "m-used");
}

/* The race window: the hello is read before its expect, which comes within
 * 5 s; the hello is then accepted. */
static void test_hello_before_expect(void **state) {
  fx_t *f = *state;
  th_client_t *p = dial(f);
  say_hello(p, "alice", "bob", T1);
  /* bob logs when a hello starts waiting: then send the expect. */
  if (!th_proc_wait_line(th_cli_proc(f->bob), TH_STDERR,
                         "waits for the server's expect", TH_DEADLINE_MS)) {
    th_cli_dump(f->bob);
    fail_msg("the hello did not wait for its expect");
  }
  expect(f, "alice", T1);
  json_t *m = th_client_expect(p, "peer_welcome", TH_DEADLINE_MS);
  json_decref(m);
  msg_acked(f, p, "m-race", "raced");
  th_client_close(p);
}

/* Links that say nothing, or trickle a hello that never ends, are cut at
 * the hello deadline (10 s after they connect); bob keeps working. */
static void test_silent_and_trickling_peers_cut(void **state) {
  fx_t *f = *state;
  /* silent: not even a TLS handshake; trickle: inside TLS */
  th_client_t *silent = th_client_connect_raw(f->p2p_port), *trickle = dial(f);
  static const char slow[] =
      "{\"type\":\"peer_hello\",\"proto\":1,\"from\":\"alice\",\"to\":\"bob\","
      "\"ticket\":\"0123456789abcdef0123456789abcdef\"";
  long long t0 = th_now_ms(), cut_silent = 0, cut_trickle = 0;
  size_t i = 0;

  while ((!cut_silent || !cut_trickle) && th_now_ms() - t0 < 25000) {
    if (!cut_trickle && i < sizeof(slow) - 1 &&
        th_client_send_raw(trickle, slow + i, 1) == 0)
      i++;
    if (!cut_trickle && th_client_wait_closed(trickle, 250))
      cut_trickle = th_now_ms();
    if (!cut_silent && th_client_wait_closed(silent, 250))
      cut_silent = th_now_ms();
  }
  if (!cut_silent || !cut_trickle)
    fail_msg("not cut within 25 s (silent %lld, trickling %lld)", cut_silent,
             cut_trickle);
  /* Not before the deadline (minus the test's own slack). */
  assert_true(cut_silent - t0 >= 9000);
  assert_true(cut_trickle - t0 >= 9000);
  th_client_close(silent);
  th_client_close(trickle);
  assert_still_works(f, T2, "m-slow");
}

/* Garbage as the first line: bad_json and close. A line over max_frame:
 * frame_too_large and close. Garbage on an open link: bad_json, and the
 * link goes on. */
static void test_garbage_and_oversized_lines(void **state) {
  fx_t *f = *state;
  th_client_t *p = dial(f);
  static const char junk[] = "hello, is this the chat?\n";
  assert_int_equal(th_client_send_raw(p, junk, sizeof(junk) - 1), 0);
  assert_refused(f, p, "bad_json");
  th_client_close(p);

  p = dial(f);
  size_t big = 70000;
  char *line = malloc(big);
  assert_non_null(line);
  memset(line, 'x', big);
  /* The peer may close before it has read it all: ignore send errors. */
  th_client_send_raw(p, line, big);
  free(line);
  assert_refused(f, p, "frame_too_large");
  th_client_close(p);

  expect(f, "alice", T1);
  p = dial(f);
  say_hello(p, "alice", "bob", T1);
  json_decref(th_client_expect(p, "peer_welcome", TH_DEADLINE_MS));
  assert_int_equal(th_client_send_raw(p, junk, sizeof(junk) - 1), 0);
  json_t *m = th_client_recv(p, TH_DEADLINE_MS);
  assert_non_null(m);
  th_assert_type(m, "error", "bad_json");
  json_decref(m);
  msg_acked(f, p, "m-after", "after the junk");
  th_client_close(p);
  assert_still_works(f, T2, "m-garbage");
}

/* A dialer with a good ticket whose TLS key is not the one the expect
 * vouched for (a man in the middle that saw or stole a ticket): bad_ticket
 * and close, nothing shown; the ticket is used up by it. Also when the
 * hello has to wait for the expect. */
static void test_dialer_with_other_key_refused(void **state) {
  fx_t *f = *state;
  expect(f, "alice", T1);
  th_client_t *m = dial_as(f, f->mallory);
  say_hello(m, "alice", "bob", T1);
  json_t *e = th_client_recv(m, TH_DEADLINE_MS);
  assert_non_null(e);
  th_assert_type(e, "error", "bad_ticket");
  assert_non_null(strstr(th_str(e, "message"), "key"));
  json_decref(e);
  assert_true(th_client_wait_closed(m, TH_DEADLINE_MS));
  th_client_close(m);
  /* The hello first, the expect later: the same verdict. */
  m = dial_as(f, f->mallory);
  say_hello(m, "alice", "bob", T2);
  if (!th_proc_wait_line(th_cli_proc(f->bob), TH_STDERR,
                         "waits for the server's expect", TH_DEADLINE_MS))
    fail_msg("the hello did not wait for its expect");
  expect(f, "alice", T2);
  assert_refused(f, m, "bad_ticket");
  th_client_close(m);
  /* The ticket it showed is gone even for alice. */
  th_client_t *a = dial(f);
  say_hello(a, "alice", "bob", T1);
  assert_refused(f, a, "bad_ticket");
  th_client_close(a);
  assert_int_equal(th_cli_count(f->bob, "message", NULL), 0);
  assert_still_works(f, "00000000000000000000000000000003", "m-mitm");
}

/* A dialer that speaks no TLS: its plaintext hello ends the handshake and
 * the link, with no welcome and nothing kept: more such dials than bob
 * keeps half-open links leave him as before. */
static void test_plaintext_dialer_refused(void **state) {
  fx_t *f = *state;
  expect(f, "alice", T1);
  for (int i = 0; i < 70; i++) {
    th_client_t *p = th_client_connect_raw(f->p2p_port);
    say_hello(p, "alice", "bob", T1);
    /* Whatever bob answers (a TLS alert at most) is no frame. */
    assert_true(th_client_wait_closed(p, TH_DEADLINE_MS));
    th_client_close(p);
  }
  assert_int_equal(th_cli_count(f->bob, "message", NULL), 0);
  /* T1 was never used: a real TLS dialer gets through with it. */
  th_client_t *a = dial(f);
  say_hello(a, "alice", "bob", T1);
  json_decref(th_client_expect(a, "peer_welcome", TH_DEADLINE_MS));
  msg_acked(f, a, "m-plain", "after the plaintext ones");
  th_client_close(a);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_forged_ticket),
      T(test_someone_elses_ticket),
      T(test_used_ticket),
      T(test_hello_before_expect),
      T(test_silent_and_trickling_peers_cut),
      T(test_garbage_and_oversized_lines),
      T(test_dialer_with_other_key_refused),
      T(test_plaintext_dialer_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
