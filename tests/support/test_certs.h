/* test_certs.h -- throwaway certificates for the TLS tests, made with the
 * OpenSSL API into a directory the test owns (nothing private is committed).
 * Header-only, static functions, so any test executable can include it.
 *
 * tc_make(dir) writes:
 *   ca.pem          a test CA (P-256), trusted by the tests' clients
 *   server.pem      a certificate from that CA for DNS:localhost and
 *                   IP:127.0.0.1, and its key in server.key
 *   other-ca.pem    an unrelated CA: verifying against it must fail
 *   other.pem       a certificate for DNS:elsewhere.test from the test CA
 *                   (a wrong host name for 127.0.0.1 and localhost), with
 *                   other.key
 * Returns 0, or -1 with nothing promised about dir.
 */
#ifndef TEST_CERTS_H
#define TEST_CERTS_H

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *tc_key(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }

static int tc_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509_EXTENSION *e;
  int ok;

  X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
  e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  if (e == NULL)
    return -1;
  ok = X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return ok == 1 ? 0 : -1;
}

/* A certificate for key named cn, signed by ca_key (self-signed when ca is
 * NULL). san: a subjectAltName value, or NULL for a CA. */
static X509 *tc_cert(EVP_PKEY *key, const char *cn, X509 *ca,
                     EVP_PKEY *ca_key, const char *san, long serial) {
  X509 *x = X509_new();
  X509_NAME *name;

  if (x == NULL)
    return NULL;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7L * 24 * 3600);
  X509_set_pubkey(x, key);
  name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name);
  if (san == NULL) {
    if (tc_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        tc_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
      goto fail;
  } else if (tc_ext(x, ca, NID_subject_alt_name, san) < 0 ||
             tc_ext(x, ca, NID_basic_constraints, "CA:FALSE") < 0) {
    goto fail;
  }
  if (X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256()) <= 0)
    goto fail;
  return x;
fail:
  X509_free(x);
  return NULL;
}

static int tc_write(const char *dir, const char *file, X509 *x,
                    EVP_PKEY *key) {
  char path[512];
  FILE *f;
  int ok;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  f = fopen(path, "w");
  if (f == NULL)
    return -1;
  ok = x != NULL ? PEM_write_X509(f, x)
                 : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

static int tc_make(const char *dir) {
  EVP_PKEY *ca_key = tc_key(), *srv_key = tc_key(), *oca_key = tc_key(),
           *oth_key = tc_key();
  X509 *ca = NULL, *srv = NULL, *oca = NULL, *oth = NULL;
  int rc = -1;

  if (ca_key == NULL || srv_key == NULL || oca_key == NULL || oth_key == NULL)
    goto out;
  ca = tc_cert(ca_key, "chat test CA", NULL, NULL, NULL, 1);
  oca = tc_cert(oca_key, "chat other CA", NULL, NULL, NULL, 2);
  if (ca == NULL || oca == NULL)
    goto out;
  srv = tc_cert(srv_key, "localhost", ca, ca_key,
                "DNS:localhost,IP:127.0.0.1", 3);
  oth = tc_cert(oth_key, "elsewhere.test", ca, ca_key, "DNS:elsewhere.test",
                4);
  if (srv == NULL || oth == NULL)
    goto out;
  if (tc_write(dir, "ca.pem", ca, NULL) == 0 &&
      tc_write(dir, "other-ca.pem", oca, NULL) == 0 &&
      tc_write(dir, "server.pem", srv, NULL) == 0 &&
      tc_write(dir, "server.key", NULL, srv_key) == 0 &&
      tc_write(dir, "other.pem", oth, NULL) == 0 &&
      tc_write(dir, "other.key", NULL, oth_key) == 0)
    rc = 0;
out:
  X509_free(ca);
  X509_free(oca);
  X509_free(srv);
  X509_free(oth);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(srv_key);
  EVP_PKEY_free(oca_key);
  EVP_PKEY_free(oth_key);
  return rc;
}

#endif /* TEST_CERTS_H */
