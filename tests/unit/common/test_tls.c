/* test_tls.c -- chat_conn over TLS on real loopback TCP: frames both ways
 * across many records, the connect callback after the handshake, chain and
 * host name verification, garbage instead of a handshake, pause and resume
 * with plaintext still inside the SSL object, and the peer context's key
 * pinning. Certificates are made by the test (tests/support/test_certs.h). */
#include "conn_fixture.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "../../support/test_certs.h"

static char g_dir[64];

static void path(char *out, size_t len, const char *file) {
  snprintf(out, len, "%s/%s", g_dir, file);
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int group_setup(void **state) {
  snprintf(g_dir, sizeof(g_dir), "/tmp/chat-tls-XXXXXX");
  if (mkdtemp(g_dir) == NULL || tc_make(g_dir) != 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static chat_tls_ctx_t *server_ctx(const char *cert, const char *key) {
  char c[128], k[128], err[256];
  chat_tls_ctx_t *t = NULL;

  path(c, sizeof(c), cert);
  path(k, sizeof(k), key);
  if (chat_tls_server_ctx(c, k, &t, err, sizeof(err)) != 0)
    fail_msg("server ctx: %s", err);
  return t;
}

static chat_tls_ctx_t *client_ctx(const char *ca) {
  char c[128], err[256];
  chat_tls_ctx_t *t = NULL;

  path(c, sizeof(c), ca);
  if (chat_tls_client_ctx(c, &t, err, sizeof(err)) != 0)
    fail_msg("client ctx: %s", err);
  return t;
}

/* Connects fx->cli over TLS with ctx, verifying host; waits for the connect
 * callback and returns its status. */
static int tls_connect(fx_t *fx, chat_tls_ctx_t *ctx, const char *host) {
  struct sockaddr_in sa;

  fx_loopback(fx, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(chat_conn_tls(&fx->cli.conn, ctx, host), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  FX_WAIT(fx, fx->cli.connected);
  return fx->cli.connect_status;
}

static void test_exchange_many_records(void **state) {
  fx_t *fx = *state;
  chat_tls_ctx_t *sctx = server_ctx("server.pem", "server.key");
  chat_tls_ctx_t *cctx = client_ctx("ca.pem");
  struct sockaddr_in sa;
  const int n = 600;

  fx->srv_tls = sctx;
  fx_loopback(fx, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(chat_conn_tls(&fx->cli.conn, cctx, "localhost"), 0);
  assert_true(chat_conn_is_tls(&fx->cli.conn));
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  /* Queued before the handshake: waits for it, then goes out encrypted. */
  assert_int_equal(fx_send(&fx->cli.conn, 1, 0), 0);
  FX_WAIT(fx, fx->cli.connected);
  assert_int_equal(fx->cli.connect_status, 0);
  assert_string_equal(chat_conn_tls_version(&fx->cli.conn), "TLSv1.3");
  /* Contexts may go while their connections live. */
  chat_tls_ctx_free(sctx);
  chat_tls_ctx_free(cctx);

  /* Frames of every size up to 40 KB: lines cross records and reads. */
  for (int i = 2; i <= n; i++) {
    assert_int_equal(fx_send(&fx->cli.conn, i, (size_t)(i * 67) % 40000), 0);
    if (i % 20 == 0) /* within the 1 MiB output bound */
      FX_WAIT(fx, json_array_size(fx->srv.frames) == (size_t)i);
  }
  FX_WAIT(fx, json_array_size(fx->srv.frames) == (size_t)n);
  fx_assert_sequence(&fx->srv, 1, n);
  for (int i = 1; i <= 50; i++)
    assert_int_equal(fx_send(&fx->srv.conn, i, 3000), 0);
  FX_WAIT(fx, json_array_size(fx->cli.frames) == 50);
  fx_assert_sequence(&fx->cli, 1, 50);
  assert_null(chat_conn_tls_error(&fx->cli.conn));

  /* A clean close reaches the other side as the end of the stream. */
  chat_conn_close(&fx->cli.conn);
  FX_WAIT(fx, fx->cli.closed && fx->srv.closed);
  assert_int_equal(fx->cli.close_status, 0);
  assert_int_equal(fx->srv.close_status, UV_EOF);
}

/* The reason is readable in on_close (and the connect callback). */
static char g_reason[256];
static void reason_on_close(chat_conn_t *c, int status) {
  const char *r = chat_conn_tls_error(c);
  snprintf(g_reason, sizeof(g_reason), "%s", r != NULL ? r : "(none)");
  fx_on_close(c, status);
}

static void expect_refused(fx_t *fx, const char *ca, const char *host,
                           const char *reason) {
  static const chat_conn_cbs_t cbs = {fx_on_frame, fx_on_bad_frame,
                                      fx_on_overflow, reason_on_close};
  chat_tls_ctx_t *cctx = client_ctx(ca);
  struct sockaddr_in sa;

  fx_loopback(fx, &sa);
  fx->cli.used = chat_conn_init(fx->io, &fx->cli.conn, &cbs, NULL) == 0;
  assert_true(fx->cli.used);
  assert_int_equal(chat_conn_tls(&fx->cli.conn, cctx, host), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  FX_WAIT(fx, fx->cli.closed && fx->srv.closed);
  assert_int_equal(fx->cli.connect_status, UV_EPROTO);
  assert_int_equal(fx->cli.close_status, UV_EPROTO);
  if (strstr(g_reason, reason) == NULL)
    fail_msg("reason '%s' does not say '%s'", g_reason, reason);
  assert_int_equal(json_array_size(fx->srv.frames), 0);
  chat_tls_ctx_free(cctx);
}

static void test_unknown_ca_says_why(void **state) {
  fx_t *fx = *state;
  fx->srv_tls = server_ctx("server.pem", "server.key");
  expect_refused(fx, "other-ca.pem", "localhost", "certificate verify failed");
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_wrong_host_says_why(void **state) {
  fx_t *fx = *state;
  /* A valid chain for another name. */
  fx->srv_tls = server_ctx("other.pem", "other.key");
  expect_refused(fx, "ca.pem", "localhost", "hostname mismatch");
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_wrong_address_says_why(void **state) {
  fx_t *fx = *state;
  fx->srv_tls = server_ctx("other.pem", "other.key");
  expect_refused(fx, "ca.pem", "127.0.0.1", "IP address mismatch");
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_address_verified(void **state) {
  fx_t *fx = *state;
  chat_tls_ctx_t *cctx = client_ctx("ca.pem");

  fx->srv_tls = server_ctx("server.pem", "server.key");
  assert_int_equal(tls_connect(fx, cctx, "127.0.0.1"), 0);
  assert_int_equal(fx_send(&fx->cli.conn, 7, 0), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  chat_tls_ctx_free(cctx);
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_plaintext_to_tls_port(void **state) {
  fx_t *fx = *state;

  static const chat_conn_cbs_t cbs = {fx_on_frame, fx_on_bad_frame,
                                      fx_on_overflow, reason_on_close};

  fx->srv_tls = server_ctx("server.pem", "server.key");
  fx->srv_cbs = &cbs;
  g_reason[0] = '\0';
  fx_raw(fx);
  fx_raw_read_start(fx);
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\n");
  FX_WAIT(fx, fx->srv.closed && fx->raw_eof);
  assert_int_equal(fx->srv.close_status, UV_EPROTO);
  assert_string_not_equal(g_reason, "(none)"); /* OpenSSL's words */
  assert_int_equal(json_array_size(fx->srv.frames), 0);
  chat_tls_ctx_free(fx->srv_tls);
}

/* A server that closes right after accepting (server_busy) still delivers
 * what it queued: the handshake goes on for it, then the close. */
/* A raw OpenSSL client on a non-blocking socket, driven between loop turns
 * (the server side runs on this thread's loop). */
static SSL *raw_tls_client(fx_t *fx, SSL_CTX **ctx, int *fd) {
  struct sockaddr_in sa;
  SSL *ssl;

  fx_loopback(fx, &sa);
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(*fd >= 0);
  assert_int_equal(connect(*fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  fcntl(*fd, F_SETFL, O_NONBLOCK);
  *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(*ctx, TLS1_3_VERSION);
  ssl = SSL_new(*ctx);
  SSL_set_fd(ssl, *fd);
  SSL_set_connect_state(ssl);
  for (int i = 0; SSL_do_handshake(ssl) != 1; i++) {
    struct pollfd p = {*fd, POLLIN, 0};
    if (i > 2000)
      fail_msg("no handshake");
    fx_turns(fx, 1);
    poll(&p, 1, 10);
  }
  return ssl;
}

/* A peer's KeyUpdate asking for ours: OpenSSL answers it before our next
 * record (RFC 8446 4.6.3), so the connection goes on both ways with the
 * new keys. */
static void test_key_update_both_ways(void **state) {
  fx_t *fx = *state;
  const char line[] = "{\"type\":\"t\",\"n\":1}\n";
  SSL_CTX *ctx;
  int fd, got = 0;
  char buf[256];

  fx->srv_tls = server_ctx("server.pem", "server.key");
  SSL *ssl = raw_tls_client(fx, &ctx, &fd);
  assert_int_equal(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
  assert_int_equal(SSL_write(ssl, line, (int)strlen(line)), (int)strlen(line));
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(fx_send(&fx->srv.conn, 2, 0), 0);
  for (int i = 0; i < 2000 && got <= 0; i++) {
    struct pollfd p = {fd, POLLIN, 0};
    fx_turns(fx, 1);
    poll(&p, 1, 10);
    got = SSL_read(ssl, buf, sizeof(buf) - 1);
  }
  assert_true(got > 0);
  buf[got] = '\0';
  assert_non_null(strstr(buf, "\"n\":2"));
  /* and the client's next record, under its new keys, is read too */
  assert_int_equal(SSL_write(ssl, line, (int)strlen(line)), (int)strlen(line));
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_close_before_handshake_sends_queued(void **state) {
  fx_t *fx = *state;
  chat_tls_ctx_t *cctx = client_ctx("ca.pem");
  struct sockaddr_in sa;

  fx->srv_tls = server_ctx("server.pem", "server.key");
  fx_loopback(fx, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(chat_conn_tls(&fx->cli.conn, cctx, "localhost"), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  FX_WAIT(fx, fx->srv_accepted);
  assert_null(chat_conn_tls_version(&fx->srv.conn)); /* not read a byte */
  assert_int_equal(fx_send(&fx->srv.conn, 1, 0), 0);
  chat_conn_close(&fx->srv.conn);
  FX_WAIT(fx, fx->cli.closed && fx->srv.closed);
  assert_int_equal(fx->cli.connect_status, 0);
  assert_int_equal(json_array_size(fx->cli.frames), 1);
  fx_assert_sequence(&fx->cli, 1, 1);
  assert_int_equal(fx->srv.close_status, 0);
  assert_int_equal(fx->cli.close_status, UV_EOF);
  chat_tls_ctx_free(cctx);
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_pause_keeps_decrypted_frames(void **state) {
  fx_t *fx = *state;
  chat_tls_ctx_t *cctx = client_ctx("ca.pem");

  fx->srv_tls = server_ctx("server.pem", "server.key");
  fx->srv.pause_at = 3;
  assert_int_equal(tls_connect(fx, cctx, "localhost"), 0);
  for (int i = 1; i <= 200; i++)
    assert_int_equal(fx_send(&fx->cli.conn, i, 500), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 3);
  fx_turns(fx, 20);
  assert_int_equal(json_array_size(fx->srv.frames), 3);
  fx->srv.pause_at = 0;
  chat_conn_resume(&fx->srv.conn);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 200);
  fx_assert_sequence(&fx->srv, 1, 200);
  chat_tls_ctx_free(cctx);
  chat_tls_ctx_free(fx->srv_tls);
}

static void test_peer_keys_pinned(void **state) {
  fx_t *fx = *state;
  chat_tls_ctx_t *a = NULL, *b = NULL;
  char err[256], ka[CHAT_TLS_KEY_HEX], kb[CHAT_TLS_KEY_HEX];
  char seen[CHAT_TLS_KEY_HEX];

  assert_int_equal(chat_tls_peer_ctx(&a, err, sizeof(err)), 0);
  assert_int_equal(chat_tls_peer_ctx(&b, err, sizeof(err)), 0);
  assert_int_equal(chat_tls_ctx_key(a, ka), 0);
  assert_int_equal(chat_tls_ctx_key(b, kb), 0);
  assert_int_equal(strlen(ka), 64);
  assert_string_not_equal(ka, kb);

  fx->srv_tls = b; /* the listener */
  assert_int_equal(tls_connect(fx, a, NULL), 0);
  assert_string_equal(chat_conn_tls_version(&fx->cli.conn), "TLSv1.3");
  /* The dialer sees the listener's key, the listener the dialer's. */
  assert_int_equal(chat_conn_tls_peer_key(&fx->cli.conn, seen), 0);
  assert_string_equal(seen, kb);
  assert_int_equal(fx_send(&fx->cli.conn, 1, 0), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(chat_conn_tls_peer_key(&fx->srv.conn, seen), 0);
  assert_string_equal(seen, ka);
  chat_tls_ctx_free(a);
  chat_tls_ctx_free(b);
}

static void test_ctx_errors_name_the_file(void **state) {
  chat_tls_ctx_t *t = NULL;
  char err[256], cert[128], key[128];

  assert_true(chat_tls_server_ctx("/nonexistent/cert.pem", "x", &t, err,
                                  sizeof(err)) < 0);
  assert_null(t);
  assert_non_null(strstr(err, "/nonexistent/cert.pem"));
  path(cert, sizeof(cert), "server.pem");
  path(key, sizeof(key), "other.key");
  assert_true(chat_tls_server_ctx(cert, key, &t, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "other.key"));
  /* A key given as the certificate. */
  path(cert, sizeof(cert), "server.key");
  path(key, sizeof(key), "server.key");
  assert_true(chat_tls_server_ctx(cert, key, &t, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "server.key"));
  assert_true(chat_tls_client_ctx("/nonexistent/ca.pem", &t, err,
                                  sizeof(err)) < 0);
  assert_non_null(strstr(err, "/nonexistent/ca.pem"));
  assert_int_equal(chat_tls_ctx_key(NULL, err), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exchange_many_records, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_unknown_ca_says_why, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_wrong_host_says_why, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_wrong_address_says_why, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_address_verified, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_plaintext_to_tls_port, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_key_update_both_ways, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_close_before_handshake_sends_queued,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_pause_keeps_decrypted_frames,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_peer_keys_pinned, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_ctx_errors_name_the_file),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
