/* test_abuse_flood.c -- many connections: beyond --max-clients each gets
 * server_busy and is closed while the sessions already there keep working;
 * 10,000 idle connections (some logged in) leave the server answering at
 * once, and it lets them all go cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "harness.h"

#define IDLE_CONNS 10000
#define LOGGED_IN 200

static int up_three(void **state) {
  const char *const extra[] = {"--max-clients", "3", NULL};
  return th_fixture_server_up_with(state, extra);
}

static int up_many(void **state) {
  const char *const extra[] = {"--max-clients", "10100", "--rate-limit", "0",
                               NULL};
  return th_fixture_server_up_with(state, extra);
}

static void test_beyond_max_clients_server_busy(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  th_client_t *c = th_client_connect(port); /* the third slot, idle */
  th_client_t *extra[20];
  for (int i = 0; i < 20; i++)
    extra[i] = th_client_connect_raw(port);
  for (int i = 0; i < 20; i++) {
    json_t *e = th_client_recv(extra[i], TH_DEADLINE_MS);
    assert_non_null(e);
    th_assert_type(e, "error", "server_busy"); /* no welcome first */
    assert_non_null(th_str(e, "message"));
    json_decref(e);
    assert_true(th_client_wait_closed(extra[i], TH_DEADLINE_MS));
  }
  /* meanwhile the sessions there are served as before */
  json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                             "bob", "msg_id", "m1", "body", "still here");
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "status"), "relayed");
  json_decref(r);
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "body"), "still here");
  json_decref(d);
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  for (int i = 0; i < 20; i++)
    th_client_close(extra[i]);
  th_client_close(a);
  th_client_close(b);
  th_client_close(c);
}

static void raise_nofile(rlim_t want) {
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur >= want)
    return;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
    skip(); /* the machine does not allow it: nothing to test here */
  rl.rlim_cur = want;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Reads from fd until a full line arrived (the welcome); 1 when it did. */
static int read_line(int fd, int timeout_ms) {
  char buf[512];
  size_t n = 0;
  long long end = th_now_ms() + timeout_ms;
  while (th_now_ms() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    ssize_t r = recv(fd, buf + n, sizeof(buf) - n, 0);
    if (r <= 0)
      return 0;
    n += (size_t)r;
    if (memchr(buf, '\n', n) != NULL)
      return 1;
    if (n == sizeof(buf))
      return 0;
  }
  return 0;
}

static void send_all(int fd, const char *s) {
  size_t len = strlen(s), off = 0;
  while (off < len) {
    ssize_t r = send(fd, s + off, len - off, MSG_NOSIGNAL);
    assert_true(r > 0);
    off += (size_t)r;
  }
}

/* Reads lines until one contains needle; 1 when found. */
static int wait_for(int fd, const char *needle, int timeout_ms) {
  static char buf[8192];
  size_t n = 0;
  long long end = th_now_ms() + timeout_ms;
  while (th_now_ms() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
    if (r <= 0)
      return 0;
    n += (size_t)r;
    buf[n] = '\0';
    if (strstr(buf, needle) != NULL)
      return 1;
    if (n > sizeof(buf) / 2) { /* keep the tail only */
      memmove(buf, buf + n - 256, 256);
      n = 256;
    }
  }
  return 0;
}

static void test_ten_thousand_idle_connections(void **state) {
  int port = th_server_port(*state);
  raise_nofile(IDLE_CONNS + 256);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int *fds = calloc(IDLE_CONNS, sizeof(int));
  assert_non_null(fds);
  long long start = th_now_ms();
  /* in batches no larger than the listen backlog, each welcomed (so
   * accepted by the server) before the next: no SYN retries */
  const int batch = 250;
  for (int i = 0; i < IDLE_CONNS; i += batch) {
    for (int j = i; j < i + batch && j < IDLE_CONNS; j++) {
      fds[j] = socket(AF_INET, SOCK_STREAM, 0);
      assert_true(fds[j] >= 0);
      if (connect(fds[j], (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fail_msg("connect %d: %s", j, strerror(errno));
    }
    for (int j = i; j < i + batch && j < IDLE_CONNS; j++)
      if (!read_line(fds[j], TH_DEADLINE_MS))
        fail_msg("connection %d got no welcome", j);
    assert_true(th_now_ms() - start < 6 * TH_DEADLINE_MS);
  }
  long long connected = th_now_ms() - start;
  /* some of them log in: register and login pipelined on each */
  char line[160];
  for (int i = 0; i < LOGGED_IN; i++) {
    snprintf(line, sizeof(line),
             "{\"type\":\"register\",\"user\":\"u%d\",\"password\":\"%s\"}\n"
             "{\"type\":\"login\",\"user\":\"u%d\",\"password\":\"%s\","
             "\"id\":\"in\"}\n",
             i, TH_FIXTURE_PW, i, TH_FIXTURE_PW);
    send_all(fds[i * (IDLE_CONNS / LOGGED_IN)], line);
  }
  for (int i = 0; i < LOGGED_IN; i++)
    if (!wait_for(fds[i * (IDLE_CONNS / LOGGED_IN)], "\"id\":\"in\"",
                  3 * TH_DEADLINE_MS))
      fail_msg("login %d not answered", i);
  /* with all of them open, a new client is answered at once */
  th_client_t *c = th_client_user(port, "probe", TH_FIXTURE_PW);
  long long t0 = th_now_ms();
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  long long ping_ms = th_now_ms() - t0;
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  print_message("10000 connected in %lld ms; ping with them open: %lld ms\n",
                connected, ping_ms);
  assert_true(ping_ms < 2000);
  /* and a message between two of the logged-in idle ones goes through */
  send_all(fds[0], "{\"type\":\"send\",\"to\":\"u1\",\"msg_id\":\"hi\","
                   "\"body\":\"among many\",\"id\":\"s\"}\n");
  assert_true(wait_for(fds[0], "\"relayed\"", TH_DEADLINE_MS));
  assert_true(wait_for(fds[IDLE_CONNS / LOGGED_IN], "among many",
                       TH_DEADLINE_MS));
  for (int i = 0; i < IDLE_CONNS; i++)
    close(fds[i]);
  free(fds);
  /* once they are gone, the server is as before */
  p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
  th_client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_beyond_max_clients_server_busy,
                                      up_three, th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_ten_thousand_idle_connections,
                                      up_many, th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
