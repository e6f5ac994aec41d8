/* tls.c -- TLS contexts, and the SSL object under a connection: ciphertext
 * in through one memory BIO, ciphertext out through another, so the socket
 * stays libuv's and OpenSSL never blocks or touches a descriptor (the shape
 * of h2o's and Redis's TLS connections). conn.c calls the chat__tls_*
 * functions at the points where plain TCP reads and writes.
 *
 * OpenSSL keeps an error queue per thread: every entry here starts with
 * ERR_clear_error() and a failure drains the queue into the connection's
 * reason, so one connection's error never shows up as another's.
 */
#include "conn_int.h"
#include "chat_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_ERR_LEN 160

enum tls_kind { TLS_SERVER, TLS_CLIENT, TLS_PEER };

struct chat_tls_ctx {
  SSL_CTX *ssl_ctx;
  enum tls_kind kind;
  char key[CHAT_TLS_KEY_HEX]; /* peer: the own public key */
};

struct chat__tls {
  SSL *ssl;
  BIO *rbio, *wbio;  /* owned by ssl */
  enum tls_kind kind;
  unsigned done : 1, notified : 1;
  char err[TLS_ERR_LEN]; /* empty until a handshake fails */
};

/* ---- errors ------------------------------------------------------------- */

/* The first queued OpenSSL error's reason, or fallback; clears the queue. */
static void take_error(char *err, size_t len, const char *what,
                       const char *fallback) {
  unsigned long e = ERR_get_error();
  const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

  if (reason == NULL)
    reason = fallback;
  if (what != NULL)
    snprintf(err, len, "%s: %s", what, reason);
  else
    snprintf(err, len, "%s", reason);
  ERR_clear_error();
}

/* A readable file, or the reason it is not, before OpenSSL's vaguer one. */
static int check_file(const char *path, char *err, size_t len) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, len, "%s: %s", path, strerror(errno));
    return -errno;
  }
  fclose(f);
  return 0;
}

/* ---- contexts ----------------------------------------------------------- */

static chat_tls_ctx_t *ctx_new(const SSL_METHOD *method, enum tls_kind kind) {
  chat_tls_ctx_t *t = calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->ssl_ctx = SSL_CTX_new(method);
  if (t->ssl_ctx == NULL) {
    free(t);
    return NULL;
  }
  t->kind = kind;
  SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION);
  /* Idle connections give their 34 KiB of record buffers back. */
  SSL_CTX_set_mode(t->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(t->ssl_ctx, SSL_OP_NO_RENEGOTIATION);
  /* Nobody resumes sessions here: no tickets to mint, send or keep. */
  SSL_CTX_set_session_cache_mode(t->ssl_ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(t->ssl_ctx, 0);
  return t;
}

int chat_tls_server_ctx(const char *cert_file, const char *key_file,
                        chat_tls_ctx_t **out, char *err, size_t errlen) {
  chat_tls_ctx_t *t;
  int rc;

  *out = NULL;
  if ((rc = check_file(cert_file, err, errlen)) < 0 ||
      (rc = check_file(key_file, err, errlen)) < 0)
    return rc;
  ERR_clear_error();
  t = ctx_new(TLS_server_method(), TLS_SERVER);
  if (t == NULL) {
    take_error(err, errlen, NULL, "out of memory");
    return -ENOMEM;
  }
  if (SSL_CTX_use_certificate_chain_file(t->ssl_ctx, cert_file) != 1) {
    take_error(err, errlen, cert_file, "not a PEM certificate");
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(t->ssl_ctx, key_file, SSL_FILETYPE_PEM) !=
      1) {
    take_error(err, errlen, key_file, "not a PEM private key");
    goto fail;
  }
  if (SSL_CTX_check_private_key(t->ssl_ctx) != 1) {
    take_error(err, errlen, key_file, "does not match the certificate");
    goto fail;
  }
  *out = t;
  return 0;
fail:
  chat_tls_ctx_free(t);
  return -EINVAL;
}

int chat_tls_client_ctx(const char *ca_file, chat_tls_ctx_t **out, char *err,
                        size_t errlen) {
  chat_tls_ctx_t *t;
  int rc;

  *out = NULL;
  if (ca_file != NULL && (rc = check_file(ca_file, err, errlen)) < 0)
    return rc;
  ERR_clear_error();
  t = ctx_new(TLS_client_method(), TLS_CLIENT);
  if (t == NULL) {
    take_error(err, errlen, NULL, "out of memory");
    return -ENOMEM;
  }
  SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_PEER, NULL);
  if (ca_file != NULL
          ? SSL_CTX_load_verify_locations(t->ssl_ctx, ca_file, NULL) != 1
          : SSL_CTX_set_default_verify_paths(t->ssl_ctx) != 1) {
    take_error(err, errlen, ca_file != NULL ? ca_file : "system CAs",
               "no PEM certificate");
    chat_tls_ctx_free(t);
    return -EINVAL;
  }
  *out = t;
  return 0;
}

/* Peers pin keys, not names: any certificate passes the chain check, and
 * the key in it is compared with the vouched one after the handshake. The
 * handshake itself (CertificateVerify) proves the key's possession. */
static int accept_any(int ok, X509_STORE_CTX *store) {
  (void)ok;
  (void)store;
  return 1;
}

/* A self-signed certificate for pkey, valid from an hour ago (clock skew)
 * for a year. */
static X509 *self_signed(EVP_PKEY *pkey) {
  X509 *x = X509_new();
  X509_NAME *name;

  if (x == NULL)
    return NULL;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
  name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)"chat-peer", -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (X509_set_pubkey(x, pkey) != 1 || X509_sign(x, pkey, NULL) <= 0) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static int key_hex(EVP_PKEY *pkey, char hex[CHAT_TLS_KEY_HEX]) {
  unsigned char raw[32];
  size_t n = sizeof(raw);

  if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != sizeof(raw))
    return -ENOENT;
  for (size_t i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

int chat_tls_peer_ctx(chat_tls_ctx_t **out, char *err, size_t errlen) {
  chat_tls_ctx_t *t;
  EVP_PKEY *pkey = NULL;
  X509 *x = NULL;

  *out = NULL;
  ERR_clear_error();
  t = ctx_new(TLS_method(), TLS_PEER);
  if (t == NULL) {
    take_error(err, errlen, NULL, "out of memory");
    return -ENOMEM;
  }
  SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(t->ssl_ctx,
                     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     accept_any);
  pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (pkey == NULL || (x = self_signed(pkey)) == NULL ||
      SSL_CTX_use_certificate(t->ssl_ctx, x) != 1 ||
      SSL_CTX_use_PrivateKey(t->ssl_ctx, pkey) != 1 ||
      key_hex(pkey, t->key) < 0) {
    take_error(err, errlen, "peer key", "cannot make a key pair");
    X509_free(x);
    EVP_PKEY_free(pkey);
    chat_tls_ctx_free(t);
    return -EINVAL;
  }
  X509_free(x);      /* the context holds its own references */
  EVP_PKEY_free(pkey);
  *out = t;
  return 0;
}

int chat_tls_ctx_key(const chat_tls_ctx_t *ctx, char hex[CHAT_TLS_KEY_HEX]) {
  if (ctx == NULL || ctx->kind != TLS_PEER)
    return -EINVAL;
  memcpy(hex, ctx->key, CHAT_TLS_KEY_HEX);
  return 0;
}

void chat_tls_ctx_free(chat_tls_ctx_t *ctx) {
  if (ctx == NULL)
    return;
  SSL_CTX_free(ctx->ssl_ctx);
  free(ctx);
}

/* ---- one connection ----------------------------------------------------- */

int chat_conn_tls(chat_conn_t *c, chat_tls_ctx_t *ctx, const char *host) {
  chat__tls_t *t;

  if (c->state != CHAT_CONN_IDLE || c->tls != NULL || ctx == NULL)
    return -EINVAL;
  ERR_clear_error();
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  t->kind = ctx->kind;
  t->ssl = SSL_new(ctx->ssl_ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL)
    goto fail;
  /* An empty input BIO means "wait for more", not end of stream. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  if (ctx->kind == TLS_CLIENT && host != NULL) {
    /* An address is checked against the certificate's IP entries; a name
     * against its DNS names, and also sent as SNI. */
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1 &&
        (SSL_set1_host(t->ssl, host) != 1 ||
         SSL_set_tlsext_host_name(t->ssl, host) != 1))
      goto fail;
    ERR_clear_error(); /* set1_ip_asc's complaint about a name */
  }
  c->tls = t;
  return 0;
fail:
  if (t->ssl != NULL) {
    SSL_free(t->ssl); /* and the BIOs it owns */
  } else {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
  }
  free(t);
  ERR_clear_error();
  return -ENOMEM;
}

int chat_conn_is_tls(const chat_conn_t *c) { return c->tls != NULL; }

const char *chat_conn_tls_error(const chat_conn_t *c) {
  return c->tls != NULL && c->tls->err[0] != '\0' ? c->tls->err : NULL;
}

int chat_conn_tls_peer_key(const chat_conn_t *c, char hex[CHAT_TLS_KEY_HEX]) {
  if (c->tls == NULL || !c->tls->done || c->tls->kind != TLS_PEER)
    return -ENOENT;
  /* get0: the SSL object keeps the certificate; no reference to drop. */
  X509 *x = SSL_get0_peer_certificate(c->tls->ssl);
  return x != NULL ? key_hex(X509_get0_pubkey(x), hex) : -ENOENT;
}

const char *chat_conn_tls_version(const chat_conn_t *c) {
  return c->tls != NULL && c->tls->done ? SSL_get_version(c->tls->ssl) : NULL;
}

/* ---- for conn.c --------------------------------------------------------- */

/* Records why the handshake or stream failed (first reason wins). */
static int fail(chat__tls_t *t, int ssl_err) {
  long v = SSL_get_verify_result(t->ssl);

  if (t->err[0] == '\0') {
    if (v != X509_V_OK && t->kind == TLS_CLIENT)
      snprintf(t->err, sizeof(t->err), "certificate verify failed: %s",
               X509_verify_cert_error_string(v));
    else if (ssl_err == SSL_ERROR_SSL)
      take_error(t->err, sizeof(t->err), NULL, "handshake failed");
    else
      snprintf(t->err, sizeof(t->err), "TLS error %d", ssl_err);
  }
  ERR_clear_error();
  return UV_EPROTO;
}

/* Runs the handshake as far as the input allows: 1 when it just finished,
 * 0 when it needs more input (or was done before), UV_EPROTO. */
static int handshake(chat__tls_t *t) {
  int r, e;

  if (t->done)
    return 0;
  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->done = 1;
    return 1;
  }
  e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  return fail(t, e);
}

void chat__tls_start(chat_conn_t *c, int dialing) {
  if (dialing)
    SSL_set_connect_state(c->tls->ssl);
  else
    SSL_set_accept_state(c->tls->ssl);
  if (dialing)
    (void)handshake(c->tls); /* the ClientHello, into the output BIO */
}

int chat__tls_input(chat_conn_t *c, const char *data, size_t n) {
  chat__tls_t *t = c->tls;

  /* A memory BIO takes it all: at most one read's worth waits here, as the
   * socket is not read while the connection is paused. */
  if (BIO_write(t->rbio, data, (int)n) != (int)n)
    return UV_ENOMEM;
  return handshake(t);
}

ssize_t chat__tls_read(chat_conn_t *c, char *buf, size_t cap) {
  chat__tls_t *t = c->tls;
  size_t got = 0;
  int r, e;

  if (!t->done)
    return 0;
  ERR_clear_error();
  r = SSL_read_ex(t->ssl, buf, cap, &got);
  if (r == 1)
    return (ssize_t)got;
  e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  if (e == SSL_ERROR_ZERO_RETURN)
    return UV_EOF; /* the peer's close_notify */
  return fail(t, e);
}

int chat__tls_ready(const chat_conn_t *c) { return c->tls->done; }

int chat__tls_encrypt(chat_conn_t *c, const char *data, size_t n) {
  chat__tls_t *t = c->tls;
  size_t put = 0;

  ERR_clear_error();
  /* Into a memory BIO a write is never partial. */
  if (SSL_write_ex(t->ssl, data, n, &put) != 1 || put != n)
    return fail(t, SSL_get_error(t->ssl, 0));
  return 0;
}

size_t chat__tls_pending(const chat_conn_t *c) {
  return c->tls != NULL ? BIO_ctrl_pending(c->tls->wbio) : 0;
}

/* A memory BIO keeps the capacity of its largest burst after it is read
 * empty; an idle connection should hold no buffers (as on plain TCP), so an
 * emptied BIO that grew past this is replaced by a fresh one. */
#define TLS_BIO_KEEP (16 * 1024)

static BIO *fresh_if_grown(BIO *b) {
  BUF_MEM *bm = NULL;
  BIO *n;

  if (BIO_ctrl_pending(b) > 0 || BIO_get_mem_ptr(b, &bm) != 1 || bm == NULL ||
      bm->max <= TLS_BIO_KEEP)
    return NULL;
  n = BIO_new(BIO_s_mem());
  if (n != NULL)
    BIO_set_mem_eof_return(n, -1);
  return n; /* NULL: keep the old one, it still works */
}

void chat__tls_trim(chat_conn_t *c) {
  chat__tls_t *t = c->tls;
  BIO *b;

  if ((b = fresh_if_grown(t->rbio)) != NULL) {
    SSL_set0_rbio(t->ssl, b); /* frees the old one */
    t->rbio = b;
  }
  if ((b = fresh_if_grown(t->wbio)) != NULL) {
    SSL_set0_wbio(t->ssl, b);
    t->wbio = b;
  }
}

int chat__tls_take(chat_conn_t *c, char **buf, size_t *len) {
  size_t n = BIO_ctrl_pending(c->tls->wbio);
  char *p = malloc(n > 0 ? n : 1);

  *buf = NULL;
  *len = 0;
  if (p == NULL)
    return UV_ENOMEM;
  if (n > 0 && BIO_read(c->tls->wbio, p, (int)n) != (int)n) {
    free(p);
    return UV_EPROTO;
  }
  *buf = p;
  *len = n;
  chat__tls_trim(c);
  return 0;
}

void chat__tls_close_notify(chat_conn_t *c) {
  chat__tls_t *t = c->tls;

  if (t->notified || !t->done)
    return;
  t->notified = 1;
  ERR_clear_error();
  (void)SSL_shutdown(t->ssl); /* queues the alert; the peer's is not awaited */
  ERR_clear_error();
}

void chat__tls_free(chat__tls_t *t) {
  if (t == NULL)
    return;
  SSL_free(t->ssl);
  free(t);
}
