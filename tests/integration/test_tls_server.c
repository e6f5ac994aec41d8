/* test_tls_server.c -- chat-server --tls-listen from the outside: start-up
 * errors name the file, any TLS client (openssl s_client through pipes)
 * speaks the protocol, garbage and a handshake that stalls cost nothing
 * lasting (closed within the idle bound, the descriptor count comes back)
 * while others are served, and --max-clients counts both listeners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"
#include "tls.h"

#define D TH_DEADLINE_MS

typedef struct fixture {
  th_certs_t *certs;
  th_server_t *srv;
  int tls_port;
} fixture_t;

static int up_with(void **state, const char *const extra[]) {
  fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  f->certs = th_certs_make();
  f->srv = th_tls_server_start(f->certs->cert, f->certs->key, extra,
                               &f->tls_port);
  *state = f;
  return 0;
}

static int up(void **state) { return up_with(state, NULL); }

/* Idle connections close after 3 x heartbeat: 3 s. */
static int up_hb(void **state) {
  const char *const extra[] = {"--heartbeat", "1", NULL};
  return up_with(state, extra);
}

static int up_one(void **state) {
  const char *const extra[] = {"--max-clients", "1", NULL};
  return up_with(state, extra);
}

static int certs_only(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  f->certs = th_certs_make();
  *state = f;
  return 0;
}

static int down(void **state) {
  fixture_t *f = *state;
  int code = f->srv != NULL ? th_server_stop(f->srv, SIGTERM) : 0;
  th_server_free(f->srv);
  th_certs_free(f->certs);
  free(f);
  return code == 0 ? 0 : -1;
}

static th_cli_t *tls_cli_ready(fixture_t *f, const char *user) {
  const char *const extra[] = {"--tls", "--tls-ca", f->certs->ca, "--no-p2p",
                               NULL};
  return th_cli_ready(f->tls_port, user, extra);
}

/* ---- start-up errors ----------------------------------------------------- */

/* chat-server with the TLS flags given must exit code without listening,
 * saying needle on stderr; its database is not even created. */
static void expect_start_error(fixture_t *f, const char *cert,
                               const char *key, int code,
                               const char *needle) {
  char bin[4096], db[400];
  int status;
  snprintf(bin, sizeof(bin), "%s/chat-server", CHAT_BIN_DIR);
  snprintf(db, sizeof(db), "%s/chat.db", f->certs->dir);
  const char *argv[16];
  int n = 0;
  argv[n++] = bin;
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--db";
  argv[n++] = db;
  argv[n++] = "--tls-listen";
  argv[n++] = "127.0.0.1:0";
  if (cert != NULL) {
    argv[n++] = "--tls-cert";
    argv[n++] = cert;
  }
  if (key != NULL) {
    argv[n++] = "--tls-key";
    argv[n++] = key;
  }
  argv[n] = NULL;
  th_proc_t *p = th_proc_spawn(argv, NULL);
  if (th_proc_wait(p, D, &status) != 0)
    fail_msg("chat-server did not exit on a bad TLS set-up");
  const char *err = th_proc_output(p, TH_STDERR);
  if (th_proc_exit_code(p) != code || strstr(err, needle) == NULL)
    fail_msg("want exit %d and '%s'; got exit %d and:\n%s", code, needle,
             th_proc_exit_code(p), err);
  assert_null(strstr(err, "listening on"));
  assert_int_not_equal(access(db, F_OK), 0);
  th_proc_free(p);
}

static void test_startup_errors(void **state) {
  fixture_t *f = *state;
  char missing[400];
  snprintf(missing, sizeof(missing), "%s/missing.pem", f->certs->dir);

  expect_start_error(f, missing, f->certs->key, 1, missing);
  expect_start_error(f, missing, f->certs->key, 1, "No such file");
  expect_start_error(f, f->certs->cert, missing, 1, missing);
  /* a key from another certificate */
  expect_start_error(f, f->certs->cert, f->certs->other_key, 1,
                     f->certs->other_key);
  /* a key where the certificate belongs, a certificate as the key */
  expect_start_error(f, f->certs->key, f->certs->key, 1, f->certs->key);
  expect_start_error(f, f->certs->cert, f->certs->cert, 1, f->certs->cert);
  /* the three flags go together */
  expect_start_error(f, f->certs->cert, NULL, 2, "go together");
  expect_start_error(f, NULL, NULL, 2, "go together");
}

/* ---- openssl s_client ---------------------------------------------------- */

static int have_openssl(char *path, size_t len) {
  const char *env = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
  for (char *save, *d = strtok_r(dirs, ":", &save); d;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(path, len, "%s/openssl", d);
    if (access(path, X_OK) == 0)
      return 1;
  }
  return 0;
}

/* The next frame of type from s_client's stdout (other frames skipped);
 * a new reference. Fails the test at the deadline. */
static json_t *sc_expect(th_proc_t *p, const char *type) {
  long long end = th_now_ms() + D;
  while (th_now_ms() < end) {
    const char *l = th_proc_read_line(p, TH_STDOUT, (int)(end - th_now_ms()));
    if (l == NULL)
      break;
    json_t *o = json_loads(l, 0, NULL);
    if (o != NULL && strcmp(th_str(o, "type") ? th_str(o, "type") : "",
                            type) == 0)
      return o;
    json_decref(o);
  }
  th__server_dump_all();
  fail_msg("s_client: no '%s' frame; stdout:\n%s\nstderr:\n%s", type,
           th_proc_output(p, TH_STDOUT), th_proc_output(p, TH_STDERR));
  return NULL;
}

static void sc_send(th_proc_t *p, const char *line) {
  assert_int_equal(th_proc_write(p, line), 0);
}

static void test_openssl_s_client(void **state) {
  fixture_t *f = *state;
  char openssl[4096], connect[64];
  json_t *o;

  if (!have_openssl(openssl, sizeof(openssl))) {
    fprintf(stderr, "openssl not found in PATH: s_client test skipped\n");
    skip();
  }
  th_cli_t *bob = tls_cli_ready(f, "bob");
  snprintf(connect, sizeof(connect), "127.0.0.1:%d", f->tls_port);
  const char *argv[] = {openssl, "s_client", "-quiet", "-connect", connect,
                        "-CAfile", f->certs->ca, "-verify_return_error",
                        "-verify_hostname", "localhost", NULL};
  th_proc_t *p = th_proc_spawn(argv, NULL);

  json_decref(sc_expect(p, "welcome"));
  sc_send(p, "{\"type\":\"register\",\"id\":1,\"user\":\"alice\","
             "\"password\":\"wonderland\"}");
  json_decref(sc_expect(p, "ok"));
  sc_send(p, "{\"type\":\"login\",\"id\":2,\"user\":\"alice\","
             "\"password\":\"wonderland\"}");
  o = sc_expect(p, "ok");
  assert_int_equal(th_int(o, "id"), 2);
  json_decref(o);
  sc_send(p, "{\"type\":\"contact_add\",\"id\":3,\"user\":\"bob\"}");
  json_decref(sc_expect(p, "ok"));
  th_cli_wait(bob, D, "contact_request", "from", "alice", NULL);
  th_cli_cmd(bob, "/accept alice");
  json_decref(sc_expect(p, "contact_added"));

  sc_send(p, "{\"type\":\"send\",\"id\":4,\"to\":\"bob\",\"msg_id\":\"m1\","
             "\"body\":\"hi from s_client\"}");
  o = sc_expect(p, "ok");
  assert_string_equal(th_str(o, "status"), "relayed");
  json_decref(o);
  th_cli_wait(bob, D, "message", "from", "alice", "body", "hi from s_client",
              "msg_id", "m1", NULL);
  o = sc_expect(p, "receipt");
  assert_string_equal(th_str(o, "msg_id"), "m1");
  assert_string_equal(th_str(o, "state"), "delivered");
  json_decref(o);

  th_cli_cmd(bob, "/msg alice hello openssl");
  o = sc_expect(p, "deliver");
  assert_string_equal(th_str(o, "from"), "bob");
  assert_string_equal(th_str(o, "body"), "hello openssl");
  char ack[256];
  snprintf(ack, sizeof(ack),
           "{\"type\":\"ack\",\"msg_id\":\"%s\",\"from\":\"bob\"}",
           th_str(o, "msg_id"));
  json_decref(o);
  sc_send(p, ack);
  th_cli_wait(bob, D, "receipt", "to", "alice", "state", "delivered", NULL);

  sc_send(p, "{\"type\":\"logout\",\"id\":5}");
  json_decref(sc_expect(p, "ok"));
  th_proc_free(p);
  assert_int_equal(th_cli_finish(bob, D), 0);
  th_cli_free(bob);
}

/* ---- garbage and a stalled handshake ------------------------------------- */

static int fd_count(pid_t pid) {
  char path[64];
  int n = 0;
  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    fail_msg("opendir %s: %s", path, strerror(errno));
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* Waits until the server closes fd (EOF or reset); returns when it saw that
 * (th_now_ms), or -1 at the deadline. Whatever the server sends (a TLS
 * alert) is read and dropped. */
static long long wait_closed(int fd, long long deadline) {
  char buf[4096];
  for (;;) {
    long long left = deadline - th_now_ms();
    if (left <= 0)
      return -1;
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
      return th_now_ms();
  }
}

static void test_garbage_and_stalled_handshake(void **state) {
  fixture_t *f = *state;
  pid_t pid = th_proc_pid(th_server_proc(f->srv));
  int before = fd_count(pid);
  th_cli_t *a = tls_cli_ready(f, "alice");
  th_cli_t *b = tls_cli_ready(f, "bob");
  th_cli_make_contacts(a, "alice", b, "bob");

  /* Not TLS at all: the handshake fails at once and the server says why. */
  th_client_t *g = th_client_connect_raw(f->tls_port);
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  assert_int_equal(th_client_send_raw(g, junk, sizeof(junk) - 1), 0);
  assert_true(wait_closed(th_client_fd(g), th_now_ms() + D) > 0);
  th_client_close(g);
  assert_non_null(th_proc_wait_line(th_server_proc(f->srv), TH_STDERR,
                                    "TLS handshake failed", D));

  /* A record header promising a ClientHello that never comes, and a
   * connection that says nothing at all. */
  long long t0 = th_now_ms();
  th_client_t *s1 = th_client_connect_raw(f->tls_port);
  th_client_t *s2 = th_client_connect_raw(f->tls_port);
  const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
  assert_int_equal(th_client_send_raw(s1, hello, sizeof(hello) - 1), 0);

  /* Meanwhile the others are served. */
  th_cli_cmd(a, "/msg bob while they stall");
  th_cli_wait(b, D, "message", "from", "alice", "body", "while they stall",
              NULL);
  th_cli_wait(a, D, "receipt", "to", "bob", "state", "delivered", NULL);

  /* Closed within the idle bound: 3 x heartbeat (3 s), checked every
   * 250 ms; not before, or it was something else that closed them. */
  long long c1 = wait_closed(th_client_fd(s1), t0 + 3000 + D / 2);
  long long c2 = wait_closed(th_client_fd(s2), t0 + 3000 + D / 2);
  assert_true(c1 > 0 && c2 > 0);
  assert_true(c1 - t0 >= 2500);
  assert_true(c2 - t0 >= 2500);
  th_client_close(s1);
  th_client_close(s2);

  th_cli_cmd(b, "/msg alice still here");
  th_cli_wait(a, D, "message", "from", "bob", "body", "still here", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);

  /* Nothing lasting: the descriptors come back. */
  long long end = th_now_ms() + D;
  int now;
  while ((now = fd_count(pid)) != before && th_now_ms() < end) {
    struct pollfd none;
    poll(&none, 0, 50); /* polling a count: there is no event to wait on */
  }
  assert_int_equal(now, before);
}

/* One --max-clients count over both listeners. */
static void test_max_clients_both_listeners(void **state) {
  fixture_t *f = *state;
  char bin[4096], server[64];
  const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};
  int status;

  th_client_t *plain = th_client_connect(th_server_port(f->srv));
  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);
  snprintf(server, sizeof(server), "127.0.0.1:%d", f->tls_port);
  const char *argv[] = {bin, "--server", server, "--user", "alice",
                        "--register", "--no-p2p", "--tls", "--tls-ca",
                        f->certs->ca, NULL};
  th_proc_t *p = th_proc_spawn(argv, env);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR), "server_busy"));
  th_proc_free(p);
  th_client_close(plain);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_startup_errors, certs_only, down),
      cmocka_unit_test_setup_teardown(test_openssl_s_client, up, down),
      cmocka_unit_test_setup_teardown(test_garbage_and_stalled_handshake,
                                      up_hb, down),
      cmocka_unit_test_setup_teardown(test_max_clients_both_listeners, up_one,
                                      down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
