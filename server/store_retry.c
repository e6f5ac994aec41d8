/* store_retry.c -- what happens to writes whose batch failed (engine.h's
 * fail hook).
 *
 * Every change the core makes is what it still wants, in the order made,
 * so every failed op is added again (the engine waits a little before the
 * next batch) -- except ADD_USER, which its registration answers internal
 * and undoes (handle_account.c), and a PUT_MSG that its request still waits
 * for (srv->awaited): that request decides (a stored send answers internal,
 * since nothing was accepted; a group send some member already got writes
 * its copies again), so nothing lands after a client was told it did not. */
#include <errno.h>

#include "chat_log.h"
#include "srv.h"

void chat__srv_commit_failed(void *arg, const chat__store_op_t *ops, size_t n,
                             int status) {
  chat__srv_t *srv = arg;
  size_t again = 0;

  for (size_t i = 0; i < n; i++) {
    if (ops[i].kind == CHAT_STORE_ADD_USER)
      continue;
    if (ops[i].kind == CHAT_STORE_PUT_MSG &&
        chat__hmap_get(&srv->awaited, (const char *)&ops[i].msg.seq,
                       sizeof(ops[i].msg.seq)) != NULL)
      continue;
    if (chat__engine_add(srv->engine, &ops[i]) == 0)
      again++;
  }
  CHAT_ERROR("commit of %zu changes failed (%s); %zu will be retried", n,
             chat_strerror(status), again);
}
