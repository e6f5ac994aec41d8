/* store_retry.c -- after a commit failed (disk full, read-only, I/O error),
 * add again every change that the in-memory state still holds, so the store
 * catches up with memory once the fault is gone instead of silently missing
 * contacts, memberships, acks or unacked messages until the next restart.
 *
 * A new stored message whose sender still waits for it (h->waiter) is left
 * to that waiter, which decides from the whole message (was it pushed to
 * anyone?) whether to drop it and answer internal or to add it again
 * (handle_message.c, handle_group.c); a registration answered internal is
 * not added again either. Everything else is judged against memory now,
 * because later changes may have undone it meanwhile (a contact added and
 * removed, a message acked). The committer waits a little before the next
 * batch, so this does not spin against a store that keeps failing. */
#include "chat_log.h"
#include "srv.h"

/* Nonzero when memory still wants op's effect. */
static int still_needed(chat_srv_t *srv, const chat_store_op_t *op) {
  chat_registry_t *reg = &srv->reg;
  chat_user_t *a, *b;
  chat_group_t *g;
  chat_held_t *h;

  switch (op->kind) {
  case CHAT_STORE_ADD_USER:
    return 0; /* answered internal and undone (handle_account.c) */
  case CHAT_STORE_ADD_CONTACT:
  case CHAT_STORE_DEL_CONTACT:
    a = chat_registry_find(reg, op->a);
    b = chat_registry_find(reg, op->b);
    if (a == NULL || b == NULL)
      return 0;
    return chat_contact_is(a, b) == (op->kind == CHAT_STORE_ADD_CONTACT);
  case CHAT_STORE_ADD_REQUEST:
  case CHAT_STORE_DEL_REQUEST:
    a = chat_registry_find(reg, op->a);
    b = chat_registry_find(reg, op->b);
    if (a == NULL || b == NULL)
      return 0;
    return chat_request_has(a, b) == (op->kind == CHAT_STORE_ADD_REQUEST);
  case CHAT_STORE_ADD_MEMBER:
  case CHAT_STORE_DEL_MEMBER:
    b = chat_registry_find(reg, op->b);
    g = chat_registry_group(reg, op->a);
    return (g != NULL && b != NULL && chat_group_is_member(g, b)) ==
           (op->kind == CHAT_STORE_ADD_MEMBER);
  case CHAT_STORE_PUT_MSG:
    a = chat_registry_find(reg, op->msg.to);
    b = chat_registry_find(reg, op->msg.from);
    if (a == NULL || b == NULL)
      return 0;
    h = chat_mailbox_find(&srv->mb, a, b, op->msg.msg_id);
    return h != NULL && h->seq == op->msg.seq && h->waiter == NULL;
  case CHAT_STORE_DEL_MSG:
    /* A seq is never held again once dropped: deleting it is always right
     * (and finding it in memory would cost a walk of the mailbox). */
    return 1;
  case CHAT_STORE_ADD_TOKEN:
  case CHAT_STORE_TOUCH_TOKEN:
  case CHAT_STORE_DEL_TOKEN:
    return 1; /* a client holds the token; its state only moves forward */
  }
  return 0;
}

void chat_srv_commit_failed(void *arg, const chat_store_op_t *ops, size_t n,
                            int status) {
  chat_srv_t *srv = arg;
  size_t again = 0;

  for (size_t i = 0; i < n; i++) {
    if (!still_needed(srv, &ops[i]))
      continue;
    if (chat_committer_add(srv->committer, &ops[i]) == 0)
      again++;
  }
  CHAT_ERROR("commit of %zu changes failed (%s); %zu will be retried", n,
             chat_strerror(status), again);
}
