/* handle_group.c -- groups (PROTOCOL.md section 5): create, add, leave,
 * members, groups, and group_send with fan-out. One encoded deliver line is
 * shared by every online member; offline members get a stored copy, and the
 * ok waits for that commit. Group messages get no receipts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "handlers.h"
#include "repeats.h"

static int member_group(chat_srv_t *srv, chat_session_t *s,
                        const chat_msg_t *m, chat_group_t **out) {
  chat_group_t *g = chat_registry_group(&srv->reg, m->group);
  if (g == NULL)
    return -CHAT_E_NO_SUCH_GROUP;
  if (!chat_group_is_member(g, s->user))
    return -CHAT_E_NOT_MEMBER;
  *out = g;
  return 0;
}

int chat_handle_group_create(chat_srv_t *srv, chat_session_t *s,
                             const chat_msg_t *m, chat_error_t *err) {
  chat_group_t *g;
  int r = chat_group_new(&srv->reg, m->group, &g);
  if (r == -EEXIST)
    return -CHAT_E_GROUP_EXISTS;
  if (r < 0)
    return r;
  if (chat_group_add(g, s->user) < 0) {
    chat_group_remove(&srv->reg, g, s->user);
    return -ENOMEM;
  }
  chat_srv_op2(srv, CHAT_STORE_ADD_MEMBER, g->name, s->user->name);
  chat_session_send_new(s, chat_reply_ok(m->id));
  return 0;
}

int chat_handle_group_add(chat_srv_t *srv, chat_session_t *s,
                          const chat_msg_t *m, chat_error_t *err) {
  chat_group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat_user_t *u = chat_registry_find(&srv->reg, m->user);
  if (u == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (chat_group_is_member(g, u)) {
    chat_session_send_new(s, chat_reply_ok(m->id));
    return 0;
  }
  if (!chat_contact_is(s->user, u))
    return -CHAT_E_NOT_CONTACT;
  if (chat_group_add(g, u) < 0)
    return -ENOMEM;
  chat_srv_op2(srv, CHAT_STORE_ADD_MEMBER, g->name, u->name);
  chat_session_send_new(s, chat_reply_ok(m->id));
  if (u->session && !u->session->ended)
    chat_session_send_new(u->session,
                          chat_ev_group_added(g->name, s->user->name));
  return 0;
}

int chat_handle_group_leave(chat_srv_t *srv, chat_session_t *s,
                            const chat_msg_t *m, chat_error_t *err) {
  chat_group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat_srv_op2(srv, CHAT_STORE_DEL_MEMBER, g->name, s->user->name);
  chat_group_remove(&srv->reg, g, s->user);
  chat_session_send_new(s, chat_reply_ok(m->id));
  return 0;
}

static int by_name(const void *a, const void *b) {
  const chat_user_t *x = *(chat_user_t *const *)a;
  const chat_user_t *y = *(chat_user_t *const *)b;
  return strcmp(x->name, y->name);
}

int chat_handle_group_members(chat_srv_t *srv, chat_session_t *s,
                              const chat_msg_t *m, chat_error_t *err) {
  chat_group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat_user_t **sorted = malloc(g->nmembers * sizeof(*sorted));
  if (sorted == NULL)
    return -ENOMEM;
  memcpy(sorted, g->members, g->nmembers * sizeof(*sorted));
  qsort(sorted, g->nmembers, sizeof(*sorted), by_name);
  json_t *list = chat_srv_user_list(sorted, g->nmembers);
  free(sorted);
  return chat_srv_reply_list(s, m->id, "members", list);
}

int chat_handle_groups(chat_srv_t *srv, chat_session_t *s,
                       const chat_msg_t *m, chat_error_t *err) {
  json_t *list = json_array();
  for (uint32_t i = 0; list != NULL && i < s->user->ngroups; i++) /* sorted */
    json_array_append_new(list, json_string(s->user->groups[i]->name));
  return chat_srv_reply_list(s, m->id, "groups", list);
}

/* ---- group_send ------------------------------------------------------------ */

/* A group_send waiting for the commit of its stored copies: each copy's
 * h->waiter points here meanwhile. copies[] names their recipients (users
 * outlive everything; a recipient may leave the group meanwhile, its copy
 * stays). */
typedef struct gsend_op {
  chat_srv_t *srv;
  chat_session_t *s; /* referenced */
  json_t *id;
  chat_user_t *from;
  chat_repeats_t rep;
  int relayed, stored, over_quota;
  uint32_t ncopies;
  char group[CHAT_MAX_NAME + 1];
  char msg_id[CHAT_MAX_MSG_ID + 1];
  chat_user_t *copies[];
} gsend_op_t;

/* over_quota: members whose mailbox was full, so they got no copy (an
 * optional field, present only when nonzero). */
static void gsend_reply(chat_session_t *s, const json_t *id,
                        const char *msg_id, int relayed, int stored,
                        int over_quota) {
  json_t *ok = chat_reply_ok(id);
  json_object_set_new(ok, "msg_id", json_string(msg_id));
  json_object_set_new(ok, "relayed", json_integer(relayed));
  json_object_set_new(ok, "stored", json_integer(stored));
  if (over_quota > 0)
    json_object_set_new(ok, "over_quota", json_integer(over_quota));
  chat_session_send_new(s, ok);
}

/* The copies of from's msg_id held for g's members now: counts, and the
 * reply state of a send still waiting for them (NULL if none). Returns
 * nonzero when any copy is held. */
static int count_copies(chat_srv_t *srv, const chat_group_t *g,
                        const chat_user_t *from, const char *msg_id,
                        int *relayed, int *stored, gsend_op_t **waiting) {
  int dup = 0;
  *relayed = *stored = 0;
  *waiting = NULL;
  for (uint32_t i = 0; i < g->nmembers; i++) {
    chat_held_t *h = chat_mailbox_find(&srv->mb, g->members[i], from, msg_id);
    if (h == NULL || h->group == NULL || strcmp(h->group, g->name) != 0)
      continue;
    dup = 1;
    if (h->waiter != NULL)
      *waiting = h->waiter;
    if (h->state == CHAT_HELD_PUSHED)
      (*relayed)++;
    else
      (*stored)++;
  }
  return dup;
}

/* op's copy for its i-th recipient, if still held. */
static chat_held_t *copy_at(gsend_op_t *op, uint32_t i) {
  chat_held_t *h =
      chat_mailbox_find(&op->srv->mb, op->copies[i], op->from, op->msg_id);
  return h != NULL && h->waiter == op ? h : NULL;
}

/* Drops op's references and frees it (its copies must be let go of). */
static void gsend_free(gsend_op_t *op) {
  chat_repeats_free(&op->rep);
  chat_session_unref(op->s);
  json_decref(op->id);
  free(op);
}

/* Answers the send and its repeats, lets go of the copies and frees op.
 * accepted 0: internal. The send gets its own counts; a repeat gets the
 * counts of the copies held now. */
static void gsend_finish(gsend_op_t *op, int accepted) {
  for (uint32_t i = 0; i < op->ncopies; i++) {
    chat_held_t *h = copy_at(op, i);
    if (h != NULL)
      h->waiter = NULL;
  }
  if (!accepted)
    chat_session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
  else
    gsend_reply(op->s, op->id, op->msg_id, op->relayed, op->stored,
                op->over_quota);
  int relayed = op->relayed, stored = op->stored;
  gsend_op_t *unused;
  chat_group_t *g = chat_registry_group(&op->srv->reg, op->group);
  if (accepted && g != NULL && op->rep.n > 0) /* a walk of every member */
    count_copies(op->srv, g, op->from, op->msg_id, &relayed, &stored,
                 &unused);
  for (uint32_t i = 0; i < op->rep.n; i++) {
    if (!accepted)
      chat_session_error(op->rep.v[i].s, op->rep.v[i].id, CHAT_E_INTERNAL,
                         "storage failed");
    else
      gsend_reply(op->rep.v[i].s, op->rep.v[i].id, op->msg_id, relayed,
                  stored, 0);
  }
  gsend_free(op);
}

static void gsend_committed(void *arg, int status);

/* The stored copies failed to commit. If no member was pushed the message,
 * nothing was accepted: every copy goes and the answer is internal (a
 * retry is a fresh send). If some member was (at the send, or since: a
 * copy pushed at login, or acked and gone), the message was accepted and
 * must reach the others too: their copies stay, their PUT_MSG ops are added
 * again, and the ok waits for that commit, however many failures it takes
 * (the committer waits CHAT_COMMITTER_RETRY_MS between them; a client that
 * gives up meanwhile repeats the send and waits for the same outcome).
 * Only at shutdown (a flush) or when out of memory does it stop waiting:
 * the copies are added once more without a reply. */
static void gsend_failed(gsend_op_t *op, int status) {
  int accepted = op->relayed > 0;
  for (uint32_t i = 0; i < op->ncopies && !accepted; i++) {
    chat_held_t *h = copy_at(op, i);
    accepted = h == NULL || h->delivered;
  }
  CHAT_ERROR("group_send %s from %s (%s): %u stored copies failed (%s); %s",
             op->group, op->from->name, op->msg_id, op->ncopies,
             chat_strerror(status),
             accepted ? "pushed to some members: kept and retried"
                      : "pushed to nobody: dropped");
  if (!accepted) {
    for (uint32_t i = 0; i < op->ncopies; i++) {
      chat_held_t *h = copy_at(op, i);
      if (h != NULL)
        chat_mailbox_remove(&op->srv->mb, h);
    }
    gsend_finish(op, 0);
    return;
  }
  for (uint32_t i = 0; i < op->ncopies; i++) {
    chat_held_t *h = copy_at(op, i);
    if (h != NULL)
      chat_srv_write_held(op->srv, h);
  }
  if (!chat_committer_flushing(op->srv->committer) &&
      chat_committer_then(op->srv->committer, gsend_committed, op) == 0)
    return;
  CHAT_ERROR("group_send %s (%s): not waiting for the copies any more; the "
             "sender gets no reply", op->group, op->msg_id);
  for (uint32_t i = 0; i < op->ncopies; i++) {
    chat_held_t *h = copy_at(op, i);
    if (h != NULL)
      h->waiter = NULL; /* store_retry.c retries them from now on */
  }
  gsend_free(op);
}

static void gsend_committed(void *arg, int status) {
  gsend_op_t *op = arg;
  if (status < 0)
    gsend_failed(op, status);
  else
    gsend_finish(op, 1);
}

/* Waits for the commit of the copies just stored, seqs [first, last). */
static int gsend_wait(chat_srv_t *srv, chat_session_t *s, const chat_msg_t *m,
                      const chat_group_t *g, uint64_t first, uint64_t last,
                      int relayed, int stored, int over_quota) {
  gsend_op_t *op = calloc(1, sizeof(*op) + (size_t)stored * sizeof(*op->copies));
  if (op == NULL)
    return -ENOMEM;
  op->srv = srv;
  op->s = s;
  op->id = json_incref((json_t *)m->id);
  op->from = s->user;
  snprintf(op->group, sizeof(op->group), "%s", g->name);
  snprintf(op->msg_id, sizeof(op->msg_id), "%s", m->msg_id);
  op->relayed = relayed;
  op->stored = stored;
  op->over_quota = over_quota;
  chat_session_ref(s);
  /* gsend_committed never runs from inside this call, so the copies can
   * be taken after it. */
  int r = chat_committer_then(srv->committer, gsend_committed, op);
  if (r < 0) {
    gsend_free(op);
    return r;
  }
  for (uint32_t i = 0; i < g->nmembers && op->ncopies < (uint32_t)stored;
       i++) {
    chat_held_t *h =
        chat_mailbox_find(&srv->mb, g->members[i], s->user, m->msg_id);
    if (h != NULL && h->group != NULL && h->seq >= first && h->seq < last &&
        h->state == CHAT_HELD_STORED && h->waiter == NULL) {
      h->waiter = op;
      op->copies[op->ncopies++] = g->members[i];
    }
  }
  return 0;
}

int chat_handle_group_send(chat_srv_t *srv, chat_session_t *s,
                           const chat_msg_t *m, chat_error_t *err) {
  chat_group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat_user_t *me = s->user;
  size_t wire = chat_srv_deliver_len(srv, me->name, g->name, m, err);
  if (wire == 0)
    return -CHAT_E_BAD_REQUEST;
  int relayed = 0, stored = 0, over_quota = 0;
  gsend_op_t *waiting;
  if (count_copies(srv, g, me, m->msg_id, &relayed, &stored, &waiting)) {
    /* A repeat. While the original waits for its copies, so does this. */
    if (waiting == NULL) {
      gsend_reply(s, m->id, m->msg_id, relayed, stored, 0);
      return 0;
    }
    r = chat_repeats_add(&waiting->rep, s, m->id);
    if (r == -ENOBUFS)
      chat_repeats_refuse(s, m->id);
    return r == -ENOBUFS ? 0 : r;
  }
  relayed = stored = 0;
  int64_t ts = chat_srv_now_wall_ms();
  uint64_t first = srv->next_seq;
  /* One line for every member: written once, sent as the same bytes.
   * Nothing below writes another line into the scratch buffer. */
  size_t cap;
  char *line = chat_srv_line_buf(srv, m->body_len, &cap);
  int n = line ? chat_line_deliver(line, cap, me->name, g->name, m->msg_id,
                                   m->body, m->body_len, ts, 0)
               : -ENOMEM;
  if (n < 0)
    return n;
  size_t len = (size_t)n;
  for (uint32_t i = 0; i < g->nmembers; i++) {
    chat_user_t *u = g->members[i];
    if (u == me)
      continue;
    chat_held_t *h;
    if (!chat_srv_quota_open(srv, u)) {
      over_quota++;
      continue;
    }
    r = chat_mailbox_add(&srv->mb, u, me, g->name, m->msg_id, m->body,
                         m->body_len, wire, srv->next_seq++, ts, CHAT_HELD_STORED,
                         &h);
    if (r == -EEXIST) /* a 1:1 message with the same msg_id: skip */
      continue;
    if (r < 0)
      break;
    chat_session_t *us = u->session;
    /* The shared line goes out when nothing older waits for this member
     * and its window has room; otherwise acks will pump it later. */
    if (us && !us->ended && u->mb_waiting == h &&
        chat_srv_window_open(srv, u, h->wire_len)) {
      chat_mailbox_set_state(h, CHAT_HELD_PUSHED);
      if (us->sink->send_line(us->ctx, line, len) == 0)
        h->delivered = 1;
    } else if (!us || us->ended) {
      h->offline = 1;
    }
    if (h->state == CHAT_HELD_PUSHED) {
      relayed++;
    } else {
      if (!h->written)
        chat_srv_write_held(srv, h);
      stored++;
    }
  }
  if (r < 0 && r != -EEXIST)
    CHAT_ERROR("group_send %s: %s", g->name, chat_strerror(r));
  if (stored == 0 && relayed == 0 && over_quota > 0) {
    /* Nobody got a copy: refuse it as a send to one full mailbox is. */
    char who[CHAT_MAX_NAME + 32];
    snprintf(who, sizeof(who), "every other member of %s", g->name);
    chat_srv_quota_error(s, m->id, who);
    return 0;
  }
  if (stored == 0) {
    gsend_reply(s, m->id, m->msg_id, relayed, stored, over_quota);
    return 0;
  }
  /* On failure the copies are still committed (store_retry.c), just with
   * no reply. */
  return gsend_wait(srv, s, m, g, first, srv->next_seq, relayed, stored,
                    over_quota);
}
