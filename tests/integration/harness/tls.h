/* tls.h -- TLS for the integration tests: throwaway certificates made at run
 * time (tests/support/test_certs.h) in a temp dir of the test's own, and a
 * chat-server that also listens for TLS with them. */
#ifndef TH_TLS_H
#define TH_TLS_H

#include "harness.h"

typedef struct th_certs {
  char dir[256];
  /* Paths of the files test_certs.h writes (see there): */
  char ca[300];         /* the test CA */
  char cert[300];       /* DNS:localhost, IP:127.0.0.1, from ca */
  char key[300];
  char other_ca[300];   /* an unrelated CA */
  char other_cert[300]; /* DNS:elsewhere.test, from ca */
  char other_key[300];
} th_certs_t;

/* Makes the certificates in a fresh temp dir; fails the test when it
 * cannot. */
th_certs_t *th_certs_make(void);
/* Removes the files and the dir, frees. NULL is fine. */
void th_certs_free(th_certs_t *t);

/* th_server_start with --tls-listen 127.0.0.1:0 --tls-cert cert --tls-key
 * key before the extra args; *tls_port gets the port of its "listening on
 * HOST:PORT (tls)" line (the plain port stays th_server_port's). */
th_server_t *th_tls_server_start(const char *cert, const char *key,
                                 const char *const extra[], int *tls_port);
/* Reads the next "listening on HOST:PORT (tls)" line of s (after a start or
 * a restart) and returns its port; fails the test when none comes. */
int th_tls_server_port(th_server_t *s);

#endif /* TH_TLS_H */
