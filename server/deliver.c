/* deliver.c -- getting held messages to their recipients: pushing, the
 * unacked window, pages read from the store, the quota, and what is written
 * when.
 *
 * A message for a logged-in recipient whose window has room, and for whom
 * nothing older waits in the store, is pushed at once and kept in memory
 * only (a relay touches no disk unless it stays unacked for
 * CHAT_RELAY_WRITE_MS). Anything else goes to the store, and a logged-in
 * recipient reads it back in pages, oldest first, as acks open its window.
 */
#include "srv.h"
#include "cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"

/* ---- Writes -------------------------------------------------------------- */

void chat__srv_log_op(chat__srv_t *srv, const chat__store_op_t *op) {
  int r = chat__engine_add(srv->engine, op);
  if (r < 0)
    CHAT_ERROR("store op %d not queued: %s", (int)op->kind, chat_strerror(r));
}

void chat__srv_op2(chat__srv_t *srv, chat__store_op_kind_t kind, const char *a,
                   const char *b) {
  chat__store_op_t op;
  memset(&op, 0, sizeof(op));
  op.kind = kind;
  op.a = a;
  op.b = b;
  chat__srv_log_op(srv, &op);
}

void chat__srv_put_msg(chat__srv_t *srv, const char *to,
                       const chat__user_t *from, const char *group,
                       const char *msg_id, const char *body, size_t body_len,
                       uint64_t seq, int64_t ts, int offline) {
  chat__store_op_t op;
  memset(&op, 0, sizeof(op));
  op.kind = CHAT_STORE_PUT_MSG;
  op.msg.seq = seq;
  op.msg.to = to;
  op.msg.from = from->name;
  op.msg.group = group;
  op.msg.msg_id = msg_id;
  op.msg.body = body;
  op.msg.body_len = body_len;
  op.msg.ts = ts;
  op.msg.offline = offline;
  chat__srv_log_op(srv, &op);
}

void chat__srv_await(chat__srv_t *srv, const uint64_t *seq, void *waiter) {
  if (chat__hmap_put(&srv->awaited, (const char *)seq, sizeof(*seq), waiter) <
      0)
    CHAT_WARN("seq %llu: not marked as awaited (out of memory)",
              (unsigned long long)*seq);
}

void chat__srv_unawait(chat__srv_t *srv, const uint64_t *seq) {
  chat__hmap_del(&srv->awaited, (const char *)seq, sizeof(*seq));
}

static void unlink_unwritten(chat__srv_t *srv, chat__held_t *h) {
  if (h->wprev)
    h->wprev->wnext = h->wnext;
  else if (srv->wr_head == h)
    srv->wr_head = h->wnext;
  if (h->wnext)
    h->wnext->wprev = h->wprev;
  else if (srv->wr_tail == h)
    srv->wr_tail = h->wprev;
  h->wnext = h->wprev = NULL;
}

void chat__srv_track_unwritten(chat__srv_t *srv, chat__held_t *h) {
  h->pushed_ms = uv_now(srv->loop);
  h->wprev = srv->wr_tail;
  h->wnext = NULL;
  if (srv->wr_tail)
    srv->wr_tail->wnext = h;
  else
    srv->wr_head = h;
  srv->wr_tail = h;
}

void chat__srv_write_held(chat__srv_t *srv, chat__held_t *h) {
  if (h->written)
    return;
  /* Delivered again only after a session ended: as a held message. */
  chat__srv_put_msg(srv, h->to->name, h->from, h->group, chat__held_msg_id(h),
                    h->body, h->body_len, h->seq, h->ts, 1);
  unlink_unwritten(srv, h);
  h->written = 1;
  if (h->group == NULL)
    h->from->sent_held++;
  if (h->carry != NULL)
    chat__cluster_carry_written(srv, h);
}

void chat__srv_store_msg(chat__srv_t *srv, chat__user_t *to, chat__user_t *from,
                         const char *group, const char *msg_id,
                         const char *body, size_t body_len, uint64_t seq,
                         int64_t ts) {
  chat__session_t *s = to->session;
  /* In cluster mode `to` may be online on another node: its page tells
   * by ts and its login's time instead (page_read). */
  chat__srv_put_msg(srv, to->name, from, group, msg_id, body, body_len, seq, ts,
                    srv->bus == NULL && (s == NULL || s->ended));
  to->held++;
  to->wgen++;
  to->store_more = 1;
  if (group == NULL)
    from->sent_held++;
  if (srv->bus != NULL && seq <= to->store_after) {
    /* cluster mode: seqs are every node's clock, and the cursor may be
     * past this one (a page read another node's later seq): page again
     * from below it */
    if (!to->rewind || seq - 1 < to->rewind_to)
      to->rewind_to = seq - 1;
    to->rewind = 1;
  }
}

/* h->seq, acked, may be in the page being read (registry.h). Out of
 * memory, it is forgotten: at worst a repeat, which recipients drop. */
static void note_acked_paging(chat__user_t *u, uint64_t seq) {
  if (u->nacked_paging == u->cacked_paging) {
    uint32_t cap = u->cacked_paging ? 2 * u->cacked_paging : 16;
    uint64_t *v = realloc(u->acked_paging, cap * sizeof(*v));
    if (v == NULL)
      return;
    u->acked_paging = v;
    u->cacked_paging = cap;
  }
  u->acked_paging[u->nacked_paging++] = seq;
}

static int acked_paging(const chat__user_t *u, uint64_t seq) {
  for (uint32_t i = 0; i < u->nacked_paging; i++)
    if (u->acked_paging[i] == seq)
      return 1;
  return 0;
}

void chat__srv_drop_held(chat__srv_t *srv, chat__held_t *h, int acked) {
  unlink_unwritten(srv, h);
  if (h->carry != NULL) /* acked: unwritten ones are written before a drop */
    chat__cluster_carry_acked(srv, h);
  if (acked) {
    if (h->written && h->to->paging)
      note_acked_paging(h->to, h->seq);
    if (h->written) {
      chat__store_op_t op;
      memset(&op, 0, sizeof(op));
      op.kind = CHAT_STORE_DEL_MSG;
      op.msg.to = h->to->name;
      op.msg.seq = h->seq;
      chat__srv_log_op(srv, &op);
      if (h->group == NULL && h->from->sent_held > 0)
        h->from->sent_held--;
    }
    if (h->to->held > 0)
      h->to->held--;
  }
  chat__mailbox_remove(&srv->mb, h);
}

void chat__srv_write_relayed(chat__srv_t *srv, uint64_t now_ms,
                             uint64_t delay_ms) {
  chat__held_t *h;
  while ((h = srv->wr_head) != NULL && h->pushed_ms + delay_ms <= now_ms)
    chat__srv_write_held(srv, h); /* unlinks it */
}

/* ---- Replies to sends ------------------------------------------------------ */

void chat__srv_send_ok(chat__session_t *s, const json_t *id,
                       const char *msg_id, const char *status) {
  size_t cap;
  char *line = chat__srv_line_buf(s->srv, 0, &cap);
  int n = line ? chat_line_send_ok(line, cap, id, msg_id, status) : -ENOMEM;
  if (n < 0) {
    CHAT_ERROR("ok for %s: %s", msg_id, chat_strerror(n));
    return;
  }
  chat__session_send_line(s, line, (size_t)n);
}

void chat__srv_store_failed(chat__session_t *s, const json_t *id,
                            chat__user_t *to, chat__user_t *from,
                            const char *msg_id, int status) {
  CHAT_ERROR("storing %s -> %s %s: %s", from->name, to->name, msg_id,
             chat_strerror(status));
  if (to->held > 0)
    to->held--;
  if (from->sent_held > 0)
    from->sent_held--;
  chat__session_error(s, id, CHAT_E_INTERNAL, "storage failed");
}

/* ---- Limits -------------------------------------------------------------- */

size_t chat__srv_deliver_len(const chat__srv_t *srv, const char *from,
                             const char *group, const chat_msg_t *m,
                             chat_error_t *err) {
  size_t len = chat_line_deliver_len(from, group, m->msg_id,
                                     chat_json_escaped_len(m->body,
                                                           m->body_len));
  if (len - 1 <= srv->cfg.max_frame)
    return len;
  chat_error_set(err, CHAT_E_BAD_REQUEST, "body",
                 "field 'body' would make a deliver of %zu bytes once "
                 "escaped, over max_frame (%zu)", len - 1, srv->cfg.max_frame);
  return 0;
}

int chat__srv_quota_open(const chat__srv_t *srv, const chat__user_t *to) {
  /* A stub met through a group has no count yet: its quota is checked
   * when it is loaded for a 1:1 send (resident.c). */
  return srv->cfg.offline_quota == 0 || !to->held_known ||
         to->held < srv->cfg.offline_quota;
}

void chat__srv_quota_error(chat__session_t *s, const json_t *id,
                           const char *to) {
  char text[160];
  snprintf(text, sizeof(text),
           "the mailbox of %s is full (offline quota); try again once it "
           "has read its messages", to);
  json_t *e = chat_reply_error(id, CHAT_E_RATE_LIMITED, text);
  if (e != NULL)
    json_object_set_new(e, "reason", json_string("offline_quota"));
  chat__session_send_new(s, e);
}

int chat__srv_window_open(const chat__srv_t *srv, const chat__user_t *u,
                          size_t len) {
  if (u->mb_npushed == 0)
    return 1;
  return u->mb_npushed < CHAT_WINDOW_MSGS &&
         u->mb_unacked_bytes + len <= srv->cfg.max_output / CHAT_WINDOW_DIV;
}

int chat__srv_can_push(const chat__srv_t *srv, const chat__user_t *u,
                       size_t len) {
  chat__session_t *s = u->session;
  return s != NULL && !s->ended && !u->store_more && !u->paging &&
         chat__srv_window_open(srv, u, len);
}

/* ---- Pushing ------------------------------------------------------------- */

int chat__srv_push(chat__srv_t *srv, chat__held_t *h) {
  chat__session_t *s = h->to->session;
  if (s == NULL || s->ended)
    return -EPIPE;
  size_t cap;
  char *line = chat__srv_line_buf(srv, h->body_len, &cap);
  if (line == NULL)
    return -ENOMEM;
  int n = chat_line_deliver(line, cap, h->from->name, h->group,
                            chat__held_msg_id(h), h->body, h->body_len, h->ts,
                            h->offline);
  if (n < 0)
    return n;
  /* Nothing after this may touch h: an overflowing send ends the session,
   * which hands h to the store and frees it. */
  return chat__session_send_line(s, line, (size_t)n);
}

/* A page read for a user: the user is pinned meanwhile. */
typedef struct page_op {
  chat__srv_t *srv;
  chat__user_t *u;
  uint32_t wgen;
} page_op_t;

static void page_read(void *arg, int status, const chat__stored_msg_t *msgs,
                      size_t n, int more) {
  page_op_t *op = arg;
  chat__srv_t *srv = op->srv;
  chat__user_t *u = op->u;
  u->paging = 0;
  u->pins--;
  int stored_meanwhile = u->wgen != op->wgen;
  free(op);
  if (status < 0) {
    u->nacked_paging = 0;
    CHAT_ERROR("reading held messages of %s: %s", u->name,
               chat_strerror(status));
    return; /* store_more stays: the next ack or login tries again */
  }
  chat__session_t *s = u->session;
  size_t i;
  for (i = 0; i < n && s != NULL && !s->ended && u->session == s; i++) {
    const chat__stored_msg_t *m = &msgs[i];
    chat__user_t *from = chat__registry_stub(&srv->reg, m->from);
    if (from == NULL)
      break;
    size_t wire = chat_line_deliver_len(m->from, m->group, m->msg_id,
                                        chat_json_escaped_len(m->body,
                                                              m->body_len));
    if (!chat__srv_window_open(srv, u, wire))
      break;
    chat__held_t *h;
    if (acked_paging(u, m->seq)) { /* acked while this page was read */
      u->store_after = m->seq;
      continue;
    }
    int r = chat__mailbox_add(&srv->mb, u, from, m->group, m->msg_id, m->body,
                              m->body_len, wire, m->seq, m->ts, &h);
    u->store_after = m->seq;
    if (r == -EEXIST)
      continue; /* in memory already (pushed live, written since) */
    if (r < 0)
      break;
    h->written = 1;
    h->offline = chat__srv_held_offline(srv, u, m);
    chat__srv_push(srv, h);
  }
  u->nacked_paging = 0; /* the next page's read comes after their DELs */
  /* Stop when the window is full or the session went; what is left stays
   * in the store for the next page. */
  if (i == n && !more && !stored_meanwhile)
    u->store_more = 0;
  if (s != NULL && !s->ended && u->session == s && i == n)
    chat__srv_pump(srv, u);
}

int chat__srv_held_offline(const chat__srv_t *srv, const chat__user_t *u,
                           const chat__stored_msg_t *m) {
  if (m->offline)
    return 1;
  if (srv->bus == NULL)
    return m->seq < u->login_seq;
  /* Same millisecond as the login: stored while away, since a send to a
   * logged-in user is carried to its node, not stored. (With `<`, a
   * message stored just before a quick login on another node showed
   * "offline":false: test_cluster's test_node_killed, now and then.) */
  return m->ts <= u->login_ms;
}

void chat__srv_pump(chat__srv_t *srv, chat__user_t *u) {
  chat__session_t *s = u->session;
  if (u->rewind && !u->paging) {
    u->rewind = 0;
    if (u->rewind_to < u->store_after)
      u->store_after = u->rewind_to;
  }
  if (s == NULL || s->ended || !u->store_more || u->paging ||
      u->mb_npushed >= CHAT_WINDOW_MSGS ||
      !chat__srv_window_open(srv, u, 1))
    return;
  uint32_t room = CHAT_WINDOW_MSGS - u->mb_npushed;
  if (room > CHAT_PAGE_MAX)
    room = CHAT_PAGE_MAX;
  page_op_t *op = malloc(sizeof(*op));
  if (op == NULL)
    return;
  op->srv = srv;
  op->u = u;
  op->wgen = u->wgen;
  u->paging = 1;
  u->pins++;
  if (chat__engine_load_held(srv->engine, u->name, u->store_after, room,
                             page_read, op) < 0) {
    u->paging = 0;
    u->pins--;
    free(op);
  }
}
