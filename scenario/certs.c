/* certs.c -- throwaway TLS certificates for a scenario run over TLS
 * (--tls): the test CA and a server certificate for 127.0.0.1 and
 * localhost, made in the scenario's temporary directory, never kept. */
#include "run_int.h"

#include "test_certs.h" /* tests/support: the tests' certificate maker */

int peer_make_certs(run_t *r) { return tc_make(r->dir) == 0 ? 0 : -EIO; }
