/* test_tls_client.c -- chat-client --tls against chat-server --tls-listen:
 * a whole conversation over TLS, a reconnect that is TLS again, the human
 * line saying whether the link is encrypted, and the refusals: a
 * certificate from another CA, a certificate for another name or address,
 * --tls-ca without --tls. Certificates are made at run time (tls.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_proc.h"
#include "harness.h"
#include "tls.h"

#define D TH_DEADLINE_MS

typedef struct fixture {
  th_certs_t *certs;
  th_server_t *srv;
  int tls_port;
} fixture_t;

static int up(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  f->certs = th_certs_make();
  f->srv = th_tls_server_start(f->certs->cert, f->certs->key, NULL,
                               &f->tls_port);
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

/* A chat-client --json over TLS to 127.0.0.1:port trusting ca; no listener
 * for direct links, so every message takes the server link under test. */
static th_cli_t *tls_cli(int port, const char *user, const char *ca) {
  const char *const extra[] = {"--tls", "--tls-ca", ca, "--no-p2p", NULL};
  return th_cli_start(port, user, extra);
}

static th_cli_t *tls_cli_ready(int port, const char *user, const char *ca) {
  const char *const extra[] = {"--tls", "--tls-ca", ca, "--no-p2p", NULL};
  return th_cli_ready(port, user, extra);
}

/* c exits 1 by itself with nothing on stdout and a one-line reason on
 * stderr containing each of the NULL-terminated needles. */
static void expect_refused(th_cli_t *c, ...) {
  th_proc_t *p = th_cli_proc(c);
  const char *err, *needle;
  int status;
  va_list ap;

  if (th_proc_wait(p, D, &status) != 0) {
    th_cli_dump(c);
    fail_msg("chat-client did not exit after a refused certificate");
  }
  err = th_proc_output(p, TH_STDERR);
  if (th_proc_exit_code(p) != 1)
    th_cli_dump(c);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_int_equal(th_cli_count(c, "ready", NULL), 0);
  va_start(ap, c);
  while ((needle = va_arg(ap, const char *)) != NULL) {
    if (strstr(err, needle) == NULL) {
      th_cli_dump(c);
      fail_msg("no '%s' in chat-client's stderr", needle);
    }
  }
  va_end(ap);
  /* one line: the reason, and nothing after it */
  assert_non_null(strchr(err, '\n'));
  assert_int_equal(strchr(err, '\n')[1], '\0');
}

static void test_conversation_over_tls(void **state) {
  fixture_t *f = *state;
  th_cli_t *a = tls_cli_ready(f->tls_port, "alice", f->certs->ca);
  th_cli_t *b = tls_cli_ready(f->tls_port, "bob", f->certs->ca);
  json_t *sent;
  const char *id;

  th_cli_make_contacts(a, "alice", b, "bob");
  th_cli_cmd(a, "/msg bob over tls");
  sent = th_cli_wait(a, D, "sent", "to", "bob", "via", "relay", "status",
                     "relayed", NULL);
  id = json_string_value(json_object_get(sent, "msg_id"));
  assert_non_null(id);
  th_cli_wait(b, D, "message", "from", "alice", "body", "over tls", "via",
              "relay", "msg_id", id, NULL);
  th_cli_wait(a, D, "receipt", "to", "bob", "msg_id", id, "state",
              "delivered", NULL);
  th_cli_cmd(b, "/msg alice and back");
  th_cli_wait(a, D, "message", "from", "bob", "body", "and back", NULL);
  th_cli_wait(b, D, "receipt", "to", "alice", "state", "delivered", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
}

/* The server goes away under a logged-in client and comes back on the same
 * TLS port: the client logs in again over TLS (there is no plain port it
 * could fall back to: the plain listener moves with every restart). */
static void test_reconnect_is_tls(void **state) {
  th_certs_t *certs = ((fixture_t *)*state)->certs;
  char listen[64];
  int port = th_free_port();
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  const char *const extra[] = {"--tls-listen", listen, "--tls-cert",
                               certs->cert,    "--tls-key", certs->key,
                               NULL};
  th_server_t *s = th_server_start(extra);
  assert_int_equal(th_tls_server_port(s), port);
  th_cli_t *a = tls_cli_ready(port, "alice", certs->ca);
  th_cli_t *b = tls_cli_ready(port, "bob", certs->ca);

  th_cli_make_contacts(a, "alice", b, "bob");
  th_server_stop(s, SIGKILL);
  th_cli_wait(a, D, "disconnected", NULL);
  th_cli_wait(b, D, "disconnected", NULL);
  th_cli_cmd(a, "/msg bob typed while down");
  th_server_restart(s, SIGKILL);
  assert_int_equal(th_tls_server_port(s), port);
  /* The backoff is at most a few seconds this early. */
  th_cli_wait(a, 40000, "ready", NULL);
  th_cli_wait(b, 40000, "ready", NULL);
  th_cli_wait(b, D, "message", "from", "alice", "body", "typed while down",
              NULL);
  assert_int_equal(th_cli_finish(a, 15000), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

/* People see whether the server link is encrypted. */
static void test_human_line_says_encrypted(void **state) {
  fixture_t *f = *state;
  char bin[4096], server[64], want[128];
  const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};
  int status;

  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);
  snprintf(server, sizeof(server), "127.0.0.1:%d", f->tls_port);
  const char *argv[] = {bin,     "--server", server,          "--user",
                        "alice", "--register", "--tls", "--tls-ca",
                        f->certs->ca, "--no-p2p", NULL};
  th_proc_t *p = th_proc_spawn(argv, env);
  snprintf(want, sizeof(want),
           "connected to 127.0.0.1:%d (TLSv1.3, certificate verified)",
           f->tls_port);
  if (th_proc_wait_line(p, TH_STDOUT, want, D) == NULL ||
      th_proc_wait_line(p, TH_STDOUT, "logged in as alice", D) == NULL)
    fail_msg("no '%s' then login; stdout:\n%s", want,
             th_proc_output(p, TH_STDOUT));
  th_proc_write(p, "/quit");
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 0);
  th_proc_free(p);

  /* the plain listener of the same server */
  snprintf(server, sizeof(server), "127.0.0.1:%d", th_server_port(f->srv));
  const char *plain[] = {bin, "--server", server, "--user", "alice",
                         "--no-p2p", NULL};
  p = th_proc_spawn(plain, env);
  snprintf(want, sizeof(want), "connected to 127.0.0.1:%d (not encrypted)",
           th_server_port(f->srv));
  if (th_proc_wait_line(p, TH_STDOUT, want, D) == NULL)
    fail_msg("no '%s'; stdout:\n%s", want, th_proc_output(p, TH_STDOUT));
  th_proc_write(p, "/quit");
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 0);
  th_proc_free(p);
}

static void test_other_ca_refused(void **state) {
  fixture_t *f = *state;
  th_cli_t *c = tls_cli(f->tls_port, "alice", f->certs->other_ca);
  expect_refused(c, "chat-client: ", "tls: certificate verify failed",
                 NULL);
  th_cli_free(c);
  /* without --tls-ca the system's CAs do not know the test CA either */
  const char *const sys[] = {"--tls", NULL};
  c = th_cli_start(f->tls_port, "alice", sys);
  expect_refused(c, "certificate verify failed", NULL);
  th_cli_free(c);
}

/* A certificate from the trusted CA, but for elsewhere.test. */
static void test_other_name_refused(void **state) {
  fixture_t *f = *state;
  int port;
  char server[64];
  th_server_t *s = th_tls_server_start(f->certs->other_cert,
                                       f->certs->other_key, NULL, &port);
  th_cli_t *c = tls_cli(port, "alice", f->certs->ca);
  expect_refused(c, "certificate verify failed", "IP address mismatch",
                 NULL);
  th_cli_free(c);

  snprintf(server, sizeof(server), "localhost:%d", port);
  const char *const by_name[] = {"--tls", "--tls-ca", f->certs->ca,
                                 "--server", server, NULL};
  c = th_cli_start(port, "alice", by_name);
  expect_refused(c, "certificate verify failed", "hostname mismatch", NULL);
  th_cli_free(c);

  /* the right certificate verifies by name too */
  snprintf(server, sizeof(server), "localhost:%d", f->tls_port);
  const char *const good[] = {"--tls", "--tls-ca", f->certs->ca, "--server",
                              server, "--no-p2p", NULL};
  c = th_cli_ready(f->tls_port, "alice", good);
  assert_int_equal(th_cli_finish(c, D), 0);
  th_cli_free(c);
  assert_int_equal(th_server_stop(s, SIGTERM), 0);
  th_server_free(s);
}

/* A plain client on the TLS port is not let in either (and is told no
 * lie): it gets no welcome and gives up. */
static void test_plain_client_on_tls_port(void **state) {
  fixture_t *f = *state;
  th_cli_t *c = th_cli_start(f->tls_port, "alice", NULL);
  th_proc_t *p = th_cli_proc(c);
  int status;

  if (th_proc_wait(p, 2 * D, &status) != 0) {
    th_cli_dump(c);
    fail_msg("a plain chat-client on the TLS port did not give up");
  }
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_int_equal(th_cli_count(c, "ready", NULL), 0);
  th_cli_free(c);
}

static void test_flags(void **state) {
  fixture_t *f = *state;
  char bin[4096];
  int status;
  const char *env[] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD, NULL};

  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);
  /* --tls-ca alone: a usage error, not a quiet switch to TLS */
  const char *alone[] = {bin, "--user", "alice", "--tls-ca", f->certs->ca,
                         NULL};
  th_proc_t *p = th_proc_spawn(alone, env);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 2);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR), "--tls-ca needs --tls"));
  th_proc_free(p);

  /* a CA file that is not there: exit 1 naming it */
  char server[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", f->tls_port);
  const char *missing[] = {bin, "--server", server, "--user", "alice",
                           "--tls", "--tls-ca", "/nonexistent/ca.pem", NULL};
  p = th_proc_spawn(missing, env);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 1);
  assert_non_null(strstr(th_proc_output(p, TH_STDERR),
                         "/nonexistent/ca.pem: No such file or directory"));
  th_proc_free(p);

  const char *help[] = {bin, "--help", NULL};
  p = th_proc_spawn(help, env);
  assert_int_equal(th_proc_wait(p, D, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 0);
  assert_non_null(strstr(th_proc_output(p, TH_STDOUT), "--tls-ca FILE"));
  th_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_conversation_over_tls, up, down),
      cmocka_unit_test_setup_teardown(test_reconnect_is_tls, up, down),
      cmocka_unit_test_setup_teardown(test_human_line_says_encrypted, up,
                                      down),
      cmocka_unit_test_setup_teardown(test_other_ca_refused, up, down),
      cmocka_unit_test_setup_teardown(test_other_name_refused, up, down),
      cmocka_unit_test_setup_teardown(test_plain_client_on_tls_port, up,
                                      down),
      cmocka_unit_test_setup_teardown(test_flags, up, down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
