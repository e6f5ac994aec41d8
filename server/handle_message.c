/* handle_message.c -- send and ack: relay to a logged-in recipient without
 * touching the disk, or store durably (committed before "ok stored").
 *
 * seq is the order of delivery, in memory and in the store alike; which
 * path a message takes is deliver.c's rule (chat__srv_can_push). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "cluster.h"
#include "handlers.h"

/* A stored send waiting for the commit of its PUT_MSG. */
typedef struct send_op {
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
  json_t *id;
  chat__user_t *to, *from; /* pinned */
  uint64_t seq;
  char msg_id[CHAT_MAX_MSG_ID + 1];
} send_op_t;

/* A reply state for m from s to `to`, holding the session and both users
 * (send_op_free lets go). NULL when out of memory. */
static send_op_t *send_op_new(chat__srv_t *srv, chat__session_t *s,
                              const chat_msg_t *m, chat__user_t *to) {
  send_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return NULL;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  op->to = to;
  op->from = s->user;
  snprintf(op->msg_id, sizeof(op->msg_id), "%s", m->msg_id);
  chat__session_ref(s);
  to->pins++;
  op->from->pins++;
  return op;
}

static void send_op_free(send_op_t *op) {
  op->to->pins--;
  op->from->pins--;
  chat__session_unref(op->s);
  json_decref(op->id);
  free(op);
}


/* Committed: stored. (A repeat of a msg_id the store holds from the
 * sender is kept once by the store itself, store_sqlite.c; the counts took
 * it as new, which only errs towards the quota until the recipient's next
 * login reads them again.) Failed: nothing was accepted (a page read comes
 * after the commit, so the recipient cannot have seen it): the counts go
 * back and the answer is internal; a retry is a fresh send. */
static void send_committed(void *arg, int status) {
  send_op_t *op = arg;
  chat__srv_unawait(op->srv, &op->seq);
  if (status == 0) {
    chat__srv_send_ok(op->s, op->id, op->msg_id, "stored");
  } else {
    chat__srv_store_failed(op->s, op->id, op->to, op->from, op->msg_id,
                           status);
  }
  send_op_free(op);
}

/* Replies once everything added so far (the PUT) is committed. */
static int reply_after_commit(chat__srv_t *srv, chat__session_t *s,
                              const chat_msg_t *m, chat__user_t *to,
                              uint64_t seq) {
  send_op_t *op = send_op_new(srv, s, m, to);
  if (op == NULL)
    return -ENOMEM;
  op->seq = seq;
  int r = chat__engine_then(srv->engine, send_committed, op);
  if (r < 0) {
    send_op_free(op);
    return r;
  }
  chat__srv_await(srv, &op->seq, op);
  return 0;
}

/* A send refused by the quota may still be a repeat of a held message,
 * which is answered with its status: the store says which. */
static void quota_repeat_checked(void *arg, int status,
                                 const chat__stored_msg_t *held) {
  send_op_t *op = arg;
  if (status == 0 && held != NULL)
    chat__srv_send_ok(op->s, op->id, op->msg_id, "stored");
  else
    chat__srv_quota_error(op->s, op->id, op->to->name);
  send_op_free(op);
}

static int quota_refuse(chat__srv_t *srv, chat__session_t *s,
                        const chat_msg_t *m, chat__user_t *to) {
  send_op_t *op = s->user->sent_held > 0 ? send_op_new(srv, s, m, to) : NULL;
  if (op != NULL) {
    if (chat__engine_find_sent(srv->engine, s->user->name, m->msg_id,
                               quota_repeat_checked, op) == 0)
      return 0;
    send_op_free(op);
  }
  chat__srv_quota_error(s, m->id, to->name);
  return 0;
}

int chat__handle_send(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m,
                      chat_error_t *err) {
  chat__user_t *me = s->user;
  size_t wire = chat__srv_deliver_len(srv, me->name, NULL, m, err);
  if (wire == 0)
    return -CHAT_E_BAD_REQUEST;
  chat__user_t *to = chat__registry_find(&srv->reg, m->to);
  if (to == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (to == me)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "to",
                          "field 'to' must name another user");

  /* A msg_id is unique per sender: held for this recipient (also as a
   * group copy) or, as a 1:1 message, for anyone, it is a repeat, answered
   * with its status and neither stored nor pushed again. */
  chat__held_t *h = to->mb_count > 0
                       ? chat__mailbox_find(&srv->mb, to, me, m->msg_id)
                       : NULL;
  if (h == NULL)
    h = chat__mailbox_find_sent(&srv->mb, me, m->msg_id);
  if (h != NULL) {
    chat__srv_send_ok(s, m->id, m->msg_id, "relayed");
    return 0;
  }
  if (s->dup_stored) { /* the store holds it (resident.c asked) */
    chat__srv_send_ok(s, m->id, m->msg_id, "stored");
    return 0;
  }

  if (!chat__srv_quota_open(srv, to))
    return quota_refuse(srv, s, m, to);
  /* On another node, or none, or earlier sends to it are still on their
   * way: */
  if (srv->bus != NULL &&
      (to->session == NULL || to->session->ended || to->carrying > 0))
    return chat__cluster_send(srv, s, m, to, wire);
  uint64_t seq = chat__srv_take_seq(srv);
  int64_t ts = chat__srv_now_wall_ms();
  if (chat__srv_can_push(srv, to, wire)) {
    int r = chat__mailbox_add(&srv->mb, to, me, NULL, m->msg_id, m->body,
                              m->body_len, wire, seq, ts, &h);
    if (r < 0)
      return r;
    to->held++;
    to->store_after = seq; /* nothing older waits in the store */
    chat__srv_track_unwritten(srv, h);
    chat__session_t *rs = to->session;
    chat__srv_push(srv, h);
    if (to->session == rs && !rs->ended) {
      chat__srv_send_ok(s, m->id, m->msg_id, "relayed");
      return 0;
    }
    /* The push ended the recipient's session (output over the cap), which
     * handed the message to the store: "stored", once committed. */
    return reply_after_commit(srv, s, m, to, seq);
  }
  /* Offline, or older messages wait for it in the store, or its window is
   * full: the store keeps it, and pages bring it in order. */
  chat__srv_store_msg(srv, to, me, NULL, m->msg_id, m->body, m->body_len, seq,
                      ts);
  int r = reply_after_commit(srv, s, m, to, seq);
  if (r < 0)
    return r;
  chat__srv_pump(srv, to); /* reads after the PUT: finds it */
  return 0;
}

int chat__handle_ack(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m,
                     chat_error_t *err) {
  chat__user_t *me = s->user;
  chat__user_t *from = chat__registry_find(&srv->reg, m->from);
  if (from == NULL)
    return 0; /* an ack of an unknown message is ignored */
  chat__held_t *h = chat__mailbox_find(&srv->mb, me, from, m->msg_id);
  if (h == NULL)
    return 0;
  int group = h->group != NULL;
  chat__srv_drop_held(srv, h, 1);
  chat__srv_pump(srv, me);
  if (!group && from->session && !from->session->ended) {
    size_t cap;
    char *line = chat__srv_line_buf(srv, 0, &cap);
    int n = line ? chat_line_receipt(line, cap, m->msg_id, me->name,
                                     "delivered")
                 : -ENOMEM;
    if (n > 0)
      chat__session_send_line(from->session, line, (size_t)n);
  } else if (!group) {
    chat__cluster_receipt(srv, from, m->msg_id, me->name);
  }
  return 0;
}
