/* fixture.c -- cmocka setup and teardown functions that give each test a
 * fresh chat-server in *state, so the test files do not each repeat them. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"

int th_fixture_server_up_with(void **state, const char *const extra[]) {
  *state = th_server_start(extra);
  return 0;
}

int th_fixture_server_up(void **state) {
  return th_fixture_server_up_with(state, NULL);
}

/* A non-zero exit fails the test: that is how a leak ASan found in the
 * server at shutdown, or a crash on the way out, is noticed. */
int th_fixture_server_down(void **state) {
  int code = th_server_stop(*state, SIGTERM);
  th_server_free(*state);
  return code == 0 ? 0 : -1;
}

th_client_t *th_fixture_user(void **state, const char *name) {
  return th_client_user(th_server_port(*state), name, TH_FIXTURE_PW);
}
