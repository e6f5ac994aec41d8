/* peer_tls.c -- raw TLS peers for tests: the construction of chat-client's
 * direct links (common/tls.c's peer context), rebuilt here with OpenSSL on
 * blocking sockets so that a test can be a man in the middle: dial with a
 * key nobody vouched for, or listen with one. */
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"

struct th_peer_tls {
  SSL_CTX *ctx;
  char key[65];
};

static int accept_any(int ok, X509_STORE_CTX *store) {
  (void)ok;
  (void)store;
  return 1;
}

static int key_hex(EVP_PKEY *pkey, char hex[65]) {
  unsigned char raw[32];
  size_t n = sizeof(raw);
  if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != sizeof(raw))
    return -1;
  for (size_t i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

th_peer_tls_t *th_peer_tls_new(void) {
  th_peer_tls_t *k = calloc(1, sizeof(*k));
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  X509 *x = X509_new();

  signal(SIGPIPE, SIG_IGN); /* SSL_write to a closed peer: an error */
  if (k == NULL || pkey == NULL || x == NULL)
    fail_msg("th_peer_tls_new: out of memory");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24L * 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"test-peer", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  k->ctx = SSL_CTX_new(TLS_method());
  if (X509_set_pubkey(x, pkey) != 1 || X509_sign(x, pkey, NULL) <= 0 ||
      k->ctx == NULL || key_hex(pkey, k->key) < 0 ||
      SSL_CTX_use_certificate(k->ctx, x) != 1 ||
      SSL_CTX_use_PrivateKey(k->ctx, pkey) != 1)
    fail_msg("th_peer_tls_new: cannot make a key and certificate");
  SSL_CTX_set_min_proto_version(k->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     accept_any);
  SSL_CTX_set_num_tickets(k->ctx, 0);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return k;
}

const char *th_peer_tls_key(const th_peer_tls_t *k) { return k->key; }

void th_peer_tls_free(th_peer_tls_t *k) {
  if (k == NULL)
    return;
  SSL_CTX_free(k->ctx);
  free(k);
}

/* Bounds every blocking read and write on fd: a handshake the other end
 * abandons fails instead of hanging the test. */
static void set_timeouts(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static th_client_t *handshake(int fd, th_peer_tls_t *k, int accepting) {
  SSL *ssl = SSL_new(k->ctx);
  int one = 1;
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
    fail_msg("SSL_new: out of memory");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  set_timeouts(fd, TH_DEADLINE_MS);
  if ((accepting ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
    SSL_free(ssl);
    close(fd);
    return NULL;
  }
  return th__client_wrap(fd, ssl);
}

th_client_t *th_client_dial_tls(int port, th_peer_tls_t *k) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fail_msg("socket: %s", strerror(errno));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
  return handshake(fd, k, 0);
}

int th_listen(int *port) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fail_msg("socket: %s", strerror(errno));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    fail_msg("listen on 127.0.0.1:0: %s", strerror(errno));
  *port = ntohs(a.sin_port);
  return fd;
}

th_client_t *th_accept_tls(int lfd, th_peer_tls_t *k, int timeout_ms) {
  struct pollfd p = {lfd, POLLIN, 0};
  int fd;
  if (poll(&p, 1, timeout_ms) != 1)
    return NULL;
  fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return NULL;
  return handshake(fd, k, 1);
}

int th_client_tls_peer_key(const th_client_t *c, char hex[65]) {
  SSL *ssl = th__client_ssl(c);
  X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
  return x != NULL ? key_hex(X509_get0_pubkey(x), hex) : -1;
}
