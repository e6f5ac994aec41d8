/* tls.c -- certificates for the TLS tests and a chat-server with a TLS
 * listener (tls.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls.h"
#include "../../support/test_certs.h"

#define MAX_EXTRA 24

static const char *const files[] = {"ca.pem",       "server.pem",
                                    "server.key",   "other-ca.pem",
                                    "other.pem",    "other.key"};

th_certs_t *th_certs_make(void) {
  th_certs_t *t = calloc(1, sizeof(*t));
  const char *tmp = getenv("TMPDIR");
  if (t == NULL)
    abort();
  snprintf(t->dir, sizeof(t->dir), "%s/chat-tls-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(t->dir) == NULL)
    fail_msg("mkdtemp %s: %s", t->dir, strerror(errno));
  if (tc_make(t->dir) != 0)
    fail_msg("cannot make the test certificates in %s", t->dir);
  snprintf(t->ca, sizeof(t->ca), "%s/ca.pem", t->dir);
  snprintf(t->cert, sizeof(t->cert), "%s/server.pem", t->dir);
  snprintf(t->key, sizeof(t->key), "%s/server.key", t->dir);
  snprintf(t->other_ca, sizeof(t->other_ca), "%s/other-ca.pem", t->dir);
  snprintf(t->other_cert, sizeof(t->other_cert), "%s/other.pem", t->dir);
  snprintf(t->other_key, sizeof(t->other_key), "%s/other.key", t->dir);
  return t;
}

void th_certs_free(th_certs_t *t) {
  char path[512];
  if (t == NULL)
    return;
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", t->dir, files[i]);
    unlink(path);
  }
  rmdir(t->dir);
  free(t);
}

int th_tls_server_port(th_server_t *s) {
  const char *l = th_proc_wait_line(th_server_proc(s), TH_STDERR, " (tls)",
                                    TH_DEADLINE_MS);
  const char *a, *colon = NULL;
  int port;
  if (l == NULL || (a = strstr(l, "listening on ")) == NULL) {
    th_server_dump(s);
    fail_msg("chat-server did not log 'listening on HOST:PORT (tls)'");
  }
  a += strlen("listening on ");
  for (const char *q = a; *q && *q != ' '; q++)
    if (*q == ':')
      colon = q;
  port = colon ? atoi(colon + 1) : 0;
  if (port <= 0 || port > 65535)
    fail_msg("cannot read the TLS port from: %s", l);
  return port;
}

th_server_t *th_tls_server_start(const char *cert, const char *key,
                                 const char *const extra[], int *tls_port) {
  const char *args[MAX_EXTRA + 8];
  int n = 0;
  th_server_t *s;
  args[n++] = "--tls-listen";
  args[n++] = "127.0.0.1:0";
  args[n++] = "--tls-cert";
  args[n++] = cert;
  args[n++] = "--tls-key";
  args[n++] = key;
  for (int i = 0; extra && extra[i]; i++) {
    if (i == MAX_EXTRA)
      fail_msg("too many server args");
    args[n++] = extra[i];
  }
  args[n] = NULL;
  s = th_server_start(args);
  *tls_port = th_tls_server_port(s);
  return s;
}
