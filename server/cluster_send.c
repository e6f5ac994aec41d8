/* cluster_send.c -- messages between nodes (docs/CLUSTER.md, "A message
 * to a user on another node").
 *
 * A message for a user logged in on another node is carried to that
 * node's inbox whole (bus kind 'M'), and answered `relayed` once Redis has
 * the inbox entry (appendfsync always: on disk). That node pushes it as it
 * would a relay of its own: memory only while it is acked in time, written
 * to the store after CHAT_RELAY_WRITE_MS unacked, or at once when its
 * recipient's window is full or it has moved on. So the common case costs
 * Redis one XADD and no store write, as a relay costs a single node no
 * disk write. A node that dies with such a message read and unacked loses
 * it, as a single node does within its first second; the sending client
 * resends what no receipt confirmed (PROTOCOL.md 6).
 *
 * A user logged in nowhere gets the message stored, answered `stored`. */
#include "cluster.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"

typedef struct send_op {
  struct send_op *next; /* to's queue of carried sends (cq_head) */
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
  json_t *id;
  chat__user_t *to, *from; /* pinned */
  uint64_t seq;
  int64_t ts;
  char *body; /* owned: stored when nobody carried it */
  size_t body_len;
  int done;   /* its answer is in: status, and where (here: stored) */
  int status;
  int carried_away; /* to another node */
  char msg_id[CHAT_MAX_MSG_ID + 1];
} send_op_t;

static void send_op_free(send_op_t *op) {
  op->to->pins--;
  op->from->pins--;
  chat__session_unref(op->s);
  json_decref(op->id);
  free(op->body);
  free(op);
}


static void stored(void *arg, int status) {
  send_op_t *op = arg;
  chat__srv_unawait(op->srv, &op->seq);
  if (status == 0) {
    /* relayed when its recipient logged in here meanwhile: its session
     * reads it from the store at once */
    chat__session_t *ts = op->to->session;
    chat__srv_send_ok(op->s, op->id, op->msg_id,
                      ts != NULL && !ts->ended ? "relayed" : "stored");
  } else {
    chat__srv_store_failed(op->s, op->id, op->to, op->from, op->msg_id,
                           status);
  }
  send_op_free(op);
}

/* What a send's answer means, in the order the sends were made. */
static void finish(send_op_t *op) {
  chat__srv_t *srv = op->srv;
  if (op->status < 0) {
    /* Redis away: the XADD may or may not have been applied; a retry with
     * the same msg_id is dropped by the recipient if it was */
    chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
    send_op_free(op);
    return;
  }
  if (op->carried_away) {
    chat__srv_send_ok(op->s, op->id, op->msg_id, "relayed");
    send_op_free(op);
    return;
  }
  chat__srv_store_msg(srv, op->to, op->from, NULL, op->msg_id, op->body,
                      op->body_len, op->seq, op->ts);
  if (chat__engine_then(srv->engine, stored, op) < 0) {
    chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "out of memory");
    send_op_free(op);
    return;
  }
  chat__srv_await(srv, &op->seq, op);
  chat__srv_pump(srv, op->to); /* logged in here meanwhile */
}

/* Where the message went: another node (relayed), or nowhere / here
 * (then it is stored, and pages bring it to a session here). Answers come
 * in order today (one CARRY call per loop turn, on one connection), but
 * what they do is done in the order of the sends to each recipient
 * whatever the bus does: a message stored here after a later one was
 * pushed would reach its recipient out of order. */
static void carried(void *arg, int status, char *const *strs, size_t n,
                    long long ival) {
  send_op_t *op = arg;
  chat__user_t *to = op->to;
  (void)ival;
  op->done = 1;
  op->status = status;
  op->carried_away =
      status == 0 && n > 0 && strcmp(strs[0], op->srv->bus->node) != 0;
  while ((op = to->cq_head) != NULL && op->done) {
    to->cq_head = op->next;
    to->carrying--;
    finish(op); /* may free op, and to's last pin: to is read first */
  }
}

int chat__cluster_send(chat__srv_t *srv, chat__session_t *s,
                       const chat_msg_t *m, chat__user_t *to, size_t wire) {
  chat__user_t *me = s->user;
  send_op_t *op = calloc(1, sizeof(*op));
  int r;
  if (op == NULL || (op->body = malloc(m->body_len + 1)) == NULL) {
    free(op);
    return -ENOMEM;
  }
  memcpy(op->body, m->body, m->body_len);
  op->body[m->body_len] = '\0';
  op->body_len = m->body_len;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  op->to = to;
  op->from = me;
  snprintf(op->msg_id, sizeof(op->msg_id), "%s", m->msg_id);
  chat__session_ref(s);
  to->pins++;
  me->pins++;
  op->seq = chat__srv_take_seq(srv);
  op->ts = chat__srv_now_wall_ms();
  r = chat__bus_msg(srv->bus, to->name, me->name, op->msg_id, op->seq, op->ts,
                    op->body, op->body_len, wire, carried, op);
  if (r < 0) {
    send_op_free(op);
    return r;
  }
  if (to->cq_head == NULL)
    to->cq_head = op;
  else
    ((send_op_t *)to->cq_tail)->next = op;
  to->cq_tail = op;
  to->carrying++;
  return 0;
}

/* ---- inbox entries that carried messages --------------------------------- */

typedef struct chat__carry {
  struct chat__carry *next;
  chat__held_t *h; /* in memory, unsettled */
  int settled;
  char id[40];
} chat__carry_t;

/* The stream id just after id ("MS-SEQ" -> "MS-SEQ+1") into out, or ""
 * when id is not one. */
static void id_after(const char *id, char *out, size_t size) {
  unsigned long long ms, seq;
  char tail;
  out[0] = '\0';
  if (sscanf(id, "%llu-%llu%c", &ms, &seq, &tail) == 2 && seq < ULLONG_MAX)
    snprintf(out, size, "%llu-%llu", ms, seq + 1);
}

/* Frees the settled entries at the head, and trims the inbox up to the
 * first unsettled one, or, when none is, past the last entry read whole:
 * XTRIM MINID keeps its own id, and an entry left there after this node's
 * death is taken for unsettled (a login elsewhere delivers it again). */
static void carry_trim(chat__srv_t *srv) {
  chat__carry_t *c;
  char past[48];
  const char *to = past;
  while ((c = srv->carry_head) != NULL && c->settled) {
    srv->carry_head = c->next;
    if (srv->carry_head == NULL)
      srv->carry_tail = NULL;
    free(c);
  }
  if (srv->carry_head != NULL)
    to = srv->carry_head->id;
  else
    id_after(srv->inbox_last, past, sizeof(past));
  if (srv->bus != NULL && to[0] && strcmp(to, srv->inbox_trimmed) != 0) {
    snprintf(srv->inbox_trimmed, sizeof(srv->inbox_trimmed), "%s", to);
    chat__bus_trim(srv->bus, to);
  }
}

static chat__carry_t *carry_new(chat__srv_t *srv, const char *id) {
  chat__carry_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL; /* untracked: trimmed with the rest (a node death then
                  * loses it; its sender resends) */
  snprintf(c->id, sizeof(c->id), "%s", id ? id : "");
  if (srv->carry_tail != NULL)
    srv->carry_tail->next = c;
  else
    srv->carry_head = c;
  srv->carry_tail = c;
  return c;
}

typedef struct carry_wait {
  chat__srv_t *srv;
  chat__carry_t *c;
} carry_wait_t;

static void carry_durable(void *arg, int status) {
  carry_wait_t *w = arg;
  /* settled even on a failed write: store_retry.c writes it again, and a
   * node that never manages to has lost its store anyway */
  (void)status;
  w->c->settled = 1;
  carry_trim(w->srv);
  free(w);
}

/* c settles once everything added to the store so far is durable. */
static void settle_when_durable(chat__srv_t *srv, chat__carry_t *c) {
  carry_wait_t *w = malloc(sizeof(*w));
  if (w != NULL) {
    *w = (carry_wait_t){srv, c};
    if (chat__engine_then(srv->engine, carry_durable, w) == 0)
      return;
    free(w);
  }
  c->settled = 1; /* out of memory: let it go */
  carry_trim(srv);
}

void chat__cluster_carry_acked(chat__srv_t *srv, chat__held_t *h) {
  chat__carry_t *c = h->carry;
  h->carry = NULL;
  c->h = NULL;
  c->settled = 1;
  carry_trim(srv);
}

void chat__cluster_carry_written(chat__srv_t *srv, chat__held_t *h) {
  chat__carry_t *c = h->carry;
  h->carry = NULL;
  c->h = NULL;
  settle_when_durable(srv, c);
}

void chat__cluster_inbox_read(chat__srv_t *srv, const char *id) {
  if (id != NULL && id[0])
    snprintf(srv->inbox_last, sizeof(srv->inbox_last), "%s", id);
  carry_trim(srv);
}

void chat__cluster_carry_free(chat__srv_t *srv) {
  chat__carry_t *c, *next;
  for (c = srv->carry_head; c != NULL; c = next) {
    next = c->next;
    if (c->h != NULL)
      c->h->carry = NULL;
    free(c);
  }
  srv->carry_head = srv->carry_tail = NULL;
}

/* ---- a message carried here --------------------------------------------- */

void chat__cluster_on_carried(chat__srv_t *srv, const chat__bus_event_t *ev) {
  const char *body = ev->body ? ev->body : "";
  chat__user_t *to, *from;
  chat__session_t *s;
  chat__held_t *h;
  size_t wire;

  if (ev->a == NULL || ev->b == NULL || !chat_name_valid(ev->a) ||
      !chat_name_valid(ev->user) || !chat_msg_id_valid(ev->b) ||
      ev->seq == 0 || (to = chat__registry_stub(&srv->reg, ev->user)) ==
                          NULL ||
      (from = chat__registry_stub(&srv->reg, ev->a)) == NULL) {
    CHAT_WARN("cluster: a malformed message event, dropped");
    return;
  }
  s = to->session;
  /* The sender's node counted the line (it checks max_frame with it):
   * taken when it is one the body can make, escaped or not. */
  wire = chat_line_deliver_len(ev->a, NULL, ev->b, ev->body_len);
  if (ev->wire >= wire && ev->wire - wire <= 5 * ev->body_len)
    wire = ev->wire;
  else
    wire = chat_line_deliver_len(ev->a, NULL, ev->b,
                                 chat_json_escaped_len(body, ev->body_len));
  int r = -EAGAIN; /* not added */
  if (s != NULL && !s->ended && to->full && chat__srv_can_push(srv, to, wire))
    r = chat__mailbox_add(&srv->mb, to, from, NULL, ev->b, body,
                          ev->body_len, wire, ev->seq, ev->ts, &h);
  /* A repeat of one in memory: the recipient has it. mailbox_add checks
   * that on the way in; when it was not asked, it is checked here. */
  if (r == -EEXIST ||
      (r != 0 && s != NULL && !s->ended &&
       (chat__mailbox_find(&srv->mb, to, from, ev->b) != NULL ||
        chat__mailbox_find_sent(&srv->mb, from, ev->b) != NULL)))
    return;
  if (r == 0) {
    /* As a relay here: the store's cursor is left alone (this seq is
     * another node's clock); its inbox entry stays until it is acked or
     * written */
    chat__carry_t *c = carry_new(srv, ev->id);
    if (c != NULL) {
      c->h = h;
      h->carry = c;
    }
    to->held++;
    chat__srv_track_unwritten(srv, h);
    chat__srv_push(srv, h);
    return;
  }
  chat__carry_t *c = carry_new(srv, ev->id);
  /* Its window is full, older messages wait in the store, or it has moved
   * on (its node is told behind the PUT): the store keeps it. */
  chat__srv_store_msg(srv, to, from, NULL, ev->b, body, ev->body_len,
                      ev->seq, ev->ts);
  if (c != NULL)
    settle_when_durable(srv, c);
  if (s != NULL && !s->ended) {
    chat__srv_pump(srv, to);
  } else {
    char seqs[24];
    snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)ev->seq);
    chat__bus_route(srv->bus, to->name, 'm', seqs, NULL, NULL, NULL);
  }
}
