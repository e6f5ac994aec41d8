/* handle_message.c -- send and ack: relay to a logged-in recipient without
 * touching the disk, or store durably (committed before "ok stored").
 *
 * A message goes into the recipient's mailbox either way; the mailbox order
 * (seq) is the order of delivery. Relayed messages are written only when
 * the recipient's session ends without acking them (srv.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "handlers.h"
#include "repeats.h"

/* A stored send waiting for the commit of its PUT_MSG (h->waiter points
 * here meanwhile), with the repeats that arrived in the meantime. */
typedef struct send_op {
  chat_srv_t *srv;
  chat_session_t *s; /* referenced */
  json_t *id;
  chat_user_t *to, *from;
  chat_repeats_t rep;
  char msg_id[CHAT_MAX_MSG_ID + 1];
} send_op_t;

static void reply_status(chat_session_t *s, const json_t *id,
                         const char *msg_id, const char *status) {
  size_t cap;
  char *line = chat_srv_line_buf(s->srv, 0, &cap);
  int n = line ? chat_line_send_ok(line, cap, id, msg_id, status) : -ENOMEM;
  if (n < 0) {
    CHAT_ERROR("ok for %s: %s", msg_id, chat_strerror(n));
    return;
  }
  chat_session_send_line(s, line, (size_t)n);
}

static const char *held_status(const chat_held_t *h) {
  return h->state == CHAT_HELD_PUSHED ? "relayed" : "stored";
}

/* The PUT failed. Not pushed to anyone: nothing was accepted, so it goes
 * and everyone waiting is told internal. Pushed meanwhile (the recipient
 * logged in or its window opened before the failure came back), or even
 * acked: it was accepted and reached the recipient, so it is kept and the
 * answer is relayed. Kept unwritten while pushed (the session's end writes
 * it, an ack needs no DEL); if the session has already ended, it is stored
 * and its PUT is added again. Returns the status to answer, NULL for
 * internal. */
static const char *send_failed(send_op_t *op, chat_held_t *h, int status) {
  CHAT_ERROR("storing %s -> %s %s: %s", op->from->name, op->to->name,
             op->msg_id, chat_strerror(status));
  if (h != NULL && !h->delivered) {
    chat_mailbox_remove(&op->srv->mb, h);
    return NULL;
  }
  if (h != NULL) {
    h->written = 0;
    if (h->state == CHAT_HELD_STORED)
      chat_srv_write_held(op->srv, h);
  }
  return "relayed";
}

static void send_committed(void *arg, int status) {
  send_op_t *op = arg;
  chat_held_t *h = chat_mailbox_find(&op->srv->mb, op->to, op->from,
                                     op->msg_id);
  if (h != NULL && h->waiter != op)
    h = NULL; /* gone (acked) and sent again meanwhile: not ours */
  if (h != NULL)
    h->waiter = NULL;
  /* Repeats get the message's status now (gone: delivered and acked). */
  const char *st, *rst;
  if (status == 0) {
    st = "stored";
    rst = h != NULL ? held_status(h) : "relayed";
  } else {
    st = rst = send_failed(op, h, status);
  }
  if (st == NULL)
    chat_session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
  else
    reply_status(op->s, op->id, op->msg_id, st);
  for (uint32_t i = 0; i < op->rep.n; i++) {
    if (rst == NULL)
      chat_session_error(op->rep.v[i].s, op->rep.v[i].id, CHAT_E_INTERNAL,
                         "storage failed");
    else
      reply_status(op->rep.v[i].s, op->rep.v[i].id, op->msg_id, rst);
  }
  chat_repeats_free(&op->rep);
  chat_session_unref(op->s);
  json_decref(op->id);
  free(op);
}

/* Replies once h's PUT_MSG is committed (or has failed). */
static int reply_after_commit(chat_srv_t *srv, chat_session_t *s,
                              const chat_msg_t *m, chat_held_t *h) {
  send_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return -ENOMEM;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  op->to = h->to;
  op->from = s->user;
  snprintf(op->msg_id, sizeof(op->msg_id), "%s", m->msg_id);
  chat_session_ref(s);
  int r = chat_committer_then(srv->committer, send_committed, op);
  if (r < 0) {
    chat_session_unref(s);
    json_decref(op->id);
    free(op);
    return r;
  }
  h->waiter = op;
  return 0;
}

int chat_handle_send(chat_srv_t *srv, chat_session_t *s, const chat_msg_t *m,
                     chat_error_t *err) {
  chat_user_t *me = s->user;
  size_t wire = chat_srv_deliver_len(srv, me->name, NULL, m, err);
  if (wire == 0)
    return -CHAT_E_BAD_REQUEST;
  chat_user_t *to = chat_registry_find(&srv->reg, m->to);
  if (to == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (to == me)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "to",
                          "field 'to' must name another user");

  /* A msg_id is unique per sender: held for this recipient (also as a
   * group copy) or, as a 1:1 message, for anyone, it is a repeat. */
  chat_held_t *h = chat_mailbox_find(&srv->mb, to, me, m->msg_id);
  if (h == NULL)
    h = chat_mailbox_find_sent(&srv->mb, me, m->msg_id);
  if (h) { /* a repeat: nothing stored or pushed again */
    if (h->waiter != NULL && h->group == NULL) {
      /* The original waits for its commit: so does this one. (A group
       * copy under this msg_id is a client's mistake; it gets the copy's
       * status at once.) */
      send_op_t *op = h->waiter;
      int r = chat_repeats_add(&op->rep, s, m->id);
      if (r == -ENOBUFS)
        chat_repeats_refuse(s, m->id);
      return r == -ENOBUFS ? 0 : r;
    }
    reply_status(s, m->id, m->msg_id, held_status(h));
    return 0;
  }

  if (!chat_srv_quota_open(srv, to)) {
    chat_srv_quota_error(s, m->id, to->name);
    return 0;
  }
  int r = chat_mailbox_add(&srv->mb, to, me, NULL, m->msg_id, m->body,
                           m->body_len, wire, srv->next_seq, chat_srv_now_wall_ms(),
                           CHAT_HELD_STORED, &h);
  if (r < 0)
    return r;
  srv->next_seq++;
  chat_session_t *ts = to->session;
  if (ts && !ts->ended) {
    chat_srv_pump(srv, to); /* pushes it unless older ones wait before it */
    if (h->state == CHAT_HELD_PUSHED) {
      reply_status(s, m->id, m->msg_id, "relayed");
      return 0;
    }
    /* Not pushed: the recipient's window is full (it does not ack), or the
     * push ended its session (its output overflowed), which wrote it. */
  } else {
    h->offline = 1;
  }
  if (!h->written)
    chat_srv_write_held(srv, h);
  /* On failure it will still be committed (store_retry.c), just no reply. */
  return reply_after_commit(srv, s, m, h);
}

int chat_handle_ack(chat_srv_t *srv, chat_session_t *s, const chat_msg_t *m,
                    chat_error_t *err) {
  chat_user_t *me = s->user;
  chat_user_t *from = chat_registry_find(&srv->reg, m->from);
  if (from == NULL)
    return 0; /* an ack of an unknown message is ignored */
  chat_held_t *h = chat_mailbox_find(&srv->mb, me, from, m->msg_id);
  if (h == NULL)
    return 0;
  if (h->written) {
    chat_store_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = CHAT_STORE_DEL_MSG;
    op.msg.to = me->name;
    op.msg.seq = h->seq;
    chat_srv_log_op(srv, &op);
  }
  int group = h->group != NULL;
  chat_mailbox_remove(&srv->mb, h);
  chat_srv_pump(srv, me);
  if (!group && from->session && !from->session->ended) {
    size_t cap;
    char *line = chat_srv_line_buf(srv, 0, &cap);
    int n = line ? chat_line_receipt(line, cap, m->msg_id, me->name,
                                     "delivered")
                 : -ENOMEM;
    if (n > 0)
      chat_session_send_line(from->session, line, (size_t)n);
  }
  return 0;
}
