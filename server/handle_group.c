/* handle_group.c -- groups (PROTOCOL.md section 5): create, add, leave,
 * members, groups, and group_send with fan-out. One encoded deliver line is
 * shared by every online member; offline members get a stored copy, and the
 * ok waits for that commit. Group messages get no receipts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "cluster.h"
#include "handlers.h"

static int member_group(chat__srv_t *srv, chat__session_t *s,
                        const chat_msg_t *m, chat__group_t **out) {
  chat__group_t *g = chat__registry_group(&srv->reg, m->group);
  if (g == NULL)
    return -CHAT_E_NO_SUCH_GROUP;
  if (!chat__group_is_member(g, s->user))
    return -CHAT_E_NOT_MEMBER;
  *out = g;
  return 0;
}

/* ev (stolen) for name on another node, in cluster mode. */
static void tell_json(chat__srv_t *srv, const char *name, json_t *ev) {
  if (ev != NULL)
    chat__cluster_tell(srv, name, ev);
  json_decref(ev);
}

typedef struct ok_op {
  chat__session_t *s; /* referenced */
  json_t *id;
} ok_op_t;

static void ok_durable(void *arg, int status) {
  ok_op_t *op = arg;
  if (status == 0)
    chat__session_send_new(op->s, chat_reply_ok(op->id));
  else
    chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
  chat__session_unref(op->s);
  json_decref(op->id);
  free(op);
}

/* ok to a membership change. In cluster mode only once it is durable:
 * other nodes read groups from the store for every request, and one made
 * after this ok must see the change (a member just added must get the
 * next message; one who left must not). */
static void reply_ok(chat__srv_t *srv, chat__session_t *s, const json_t *id) {
  ok_op_t *op;
  if (srv->bus != NULL && (op = malloc(sizeof(*op))) != NULL) {
    *op = (ok_op_t){s, json_incref((json_t *)id)};
    chat__session_ref(s);
    if (chat__engine_then(srv->engine, ok_durable, op) == 0)
      return;
    chat__session_unref(s);
    json_decref(op->id);
    free(op);
  }
  chat__session_send_new(s, chat_reply_ok(id));
}

int chat__handle_group_create(chat__srv_t *srv, chat__session_t *s,
                              const chat_msg_t *m, chat_error_t *err) {
  chat__group_t *g;
  int r = chat__group_new(&srv->reg, m->group, &g);
  if (r == -EEXIST)
    return -CHAT_E_GROUP_EXISTS;
  if (r < 0)
    return r;
  if (chat__group_add(g, s->user) < 0) {
    chat__group_remove(&srv->reg, g, s->user);
    return -ENOMEM;
  }
  chat__srv_op2(srv, CHAT_STORE_ADD_MEMBER, g->name, s->user->name);
  reply_ok(srv, s, m->id);
  return 0;
}

int chat__handle_group_add(chat__srv_t *srv, chat__session_t *s,
                           const chat_msg_t *m, chat_error_t *err) {
  chat__group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat__user_t *u = chat__registry_find(&srv->reg, m->user);
  if (u == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (chat__group_is_member(g, u)) {
    chat__session_send_new(s, chat_reply_ok(m->id));
    return 0;
  }
  if (!chat__contact_is(s->user, u))
    return -CHAT_E_NOT_CONTACT;
  if (chat__group_add(g, u) < 0)
    return -ENOMEM;
  chat__srv_op2(srv, CHAT_STORE_ADD_MEMBER, g->name, u->name);
  reply_ok(srv, s, m->id);
  if (u->session && !u->session->ended)
    chat__session_send_new(u->session,
                           chat_ev_group_added(g->name, s->user->name));
  else
    tell_json(srv, u->name, chat_ev_group_added(g->name, s->user->name));
  return 0;
}

int chat__handle_group_leave(chat__srv_t *srv, chat__session_t *s,
                             const chat_msg_t *m, chat_error_t *err) {
  chat__group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat__srv_op2(srv, CHAT_STORE_DEL_MEMBER, g->name, s->user->name);
  chat__group_remove(&srv->reg, g, s->user);
  reply_ok(srv, s, m->id);
  return 0;
}

static int by_name(const void *a, const void *b) {
  const chat__user_t *x = *(chat__user_t *const *)a;
  const chat__user_t *y = *(chat__user_t *const *)b;
  return strcmp(x->name, y->name);
}

int chat__handle_group_members(chat__srv_t *srv, chat__session_t *s,
                               const chat_msg_t *m, chat_error_t *err) {
  chat__group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat__user_t **sorted = malloc(g->nmembers * sizeof(*sorted));
  if (sorted == NULL)
    return -ENOMEM;
  memcpy(sorted, g->members, g->nmembers * sizeof(*sorted));
  qsort(sorted, g->nmembers, sizeof(*sorted), by_name);
  json_t *list = chat__srv_user_list(sorted, g->nmembers);
  free(sorted);
  return chat__srv_reply_list(s, m->id, "members", list);
}

int chat__handle_groups(chat__srv_t *srv, chat__session_t *s,
                        const chat_msg_t *m, chat_error_t *err) {
  json_t *list = json_array();
  for (uint32_t i = 0; list != NULL && i < s->user->ngroups; i++) /* sorted */
    json_array_append_new(list, json_string(s->user->groups[i]));
  return chat__srv_reply_list(s, m->id, "groups", list);
}

/* ---- group_send ---------------------------------------------------------- */

/* A group_send waiting for the commit of its stored copies. It keeps what
 * it needs to write them again: once any member was pushed the message, it
 * was accepted and must reach the others too. */
typedef struct gsend_op {
  chat__srv_t *srv;
  chat__session_t *s; /* referenced */
  json_t *id;
  chat__user_t *from; /* pinned */
  int relayed, stored, over_quota;
  /* cluster mode: the other nodes are told of the stored copies, and the
   * members logged in there count as relayed (PROTOCOL.md 6) */
  int told_pending;   /* their answer is still to come */
  int committed;      /* the copies are durable; the reply waits for it */
  int released;       /* done with, but freed when that answer comes */
  int64_t ts;
  char *body;
  size_t body_len;
  uint32_t ncopies;
  char group[CHAT_MAX_NAME + 1];
  char msg_id[CHAT_MAX_MSG_ID + 1];
  struct {
    chat__user_t *to; /* pinned */
    uint64_t seq;
  } copies[];
} gsend_op_t;

/* over_quota: members whose mailbox was full, so they got no copy (an
 * optional field, present only when nonzero). */
static void gsend_reply(chat__session_t *s, const json_t *id,
                        const char *msg_id, int relayed, int stored,
                        int over_quota) {
  json_t *ok = chat_reply_ok(id);
  json_object_set_new(ok, "msg_id", json_string(msg_id));
  json_object_set_new(ok, "relayed", json_integer(relayed));
  json_object_set_new(ok, "stored", json_integer(stored));
  if (over_quota > 0)
    json_object_set_new(ok, "over_quota", json_integer(over_quota));
  chat__session_send_new(s, ok);
}

static void gsend_free(gsend_op_t *op) {
  for (uint32_t i = 0; i < op->ncopies; i++) {
    chat__srv_unawait(op->srv, &op->copies[i].seq);
    op->copies[i].to->pins--;
  }
  free(op->body);
  op->from->pins--;
  chat__session_unref(op->s);
  json_decref(op->id);
  free(op);
}

/* gsend_free, unless the other nodes' answer is still to come (which
 * frees it then). */
static void gsend_release(gsend_op_t *op) {
  if (op->told_pending)
    op->released = 1;
  else
    gsend_free(op);
}

/* Members on other nodes that were told: relayed, not stored. */
static void gsend_told(void *arg, int status, char *const *strs, size_t n,
                       long long ival) {
  gsend_op_t *op = arg;
  (void)ival;
  op->told_pending = 0;
  if (op->released) {
    gsend_free(op);
    return;
  }
  for (size_t i = 0; status == 0 && i < n; i++)
    for (uint32_t j = 0; j < op->ncopies; j++)
      if (strcmp(op->copies[j].to->name, strs[i]) == 0 && op->stored > 0) {
        op->relayed++;
        op->stored--;
        break;
      }
  if (op->committed) {
    gsend_reply(op->s, op->id, op->msg_id, op->relayed, op->stored,
                op->over_quota);
    gsend_free(op);
  }
}

static void gsend_committed(void *arg, int status) {
  gsend_op_t *op = arg;
  chat__srv_t *srv = op->srv;
  if (status == 0) {
    if (op->told_pending) {
      op->committed = 1; /* gsend_told replies */
      return;
    }
    gsend_reply(op->s, op->id, op->msg_id, op->relayed, op->stored,
                op->over_quota);
    gsend_free(op);
    return;
  }
  int accepted = op->relayed > 0;
  CHAT_ERROR("group_send %s from %s (%s): %u stored copies failed (%s); %s",
             op->group, op->from->name, op->msg_id, op->ncopies,
             chat_strerror(status),
             accepted ? "pushed to some members: written again"
                      : "pushed to nobody: dropped");
  if (!accepted || chat__engine_flushing(srv->engine)) {
    for (uint32_t i = 0; i < op->ncopies; i++)
      if (op->copies[i].to->held > 0)
        op->copies[i].to->held--;
    if (!accepted)
      chat__session_error(op->s, op->id, CHAT_E_INTERNAL, "storage failed");
    gsend_release(op);
    return;
  }
  /* Accepted: every copy must land. Written again, waited for again (the
   * engine waits CHAT_COMMITTER_RETRY_MS between failed batches). */
  for (uint32_t i = 0; i < op->ncopies; i++)
    chat__srv_put_msg(srv, op->copies[i].to->name, op->from, op->group,
                      op->msg_id, op->body, op->body_len, op->copies[i].seq,
                      op->ts, 1);
  if (chat__engine_then(srv->engine, gsend_committed, op) < 0)
    gsend_release(op);
}

/* The copies of from's msg_id in memory for g's members: nonzero when
 * there are any (a repeat), with how many. */
static int count_copies(chat__srv_t *srv, const chat__group_t *g,
                        const chat__user_t *from, const char *msg_id,
                        int *relayed) {
  *relayed = 0;
  for (uint32_t i = 0; i < g->nmembers; i++) {
    chat__held_t *h = chat__mailbox_find(&srv->mb, g->members[i], from, msg_id);
    if (h != NULL && h->group != NULL && strcmp(h->group, g->name) == 0)
      (*relayed)++;
  }
  return *relayed > 0;
}

int chat__handle_group_send(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m, chat_error_t *err) {
  chat__group_t *g;
  int r = member_group(srv, s, m, &g);
  if (r < 0)
    return r;
  chat__user_t *me = s->user;
  size_t wire = chat__srv_deliver_len(srv, me->name, g->name, m, err);
  if (wire == 0)
    return -CHAT_E_BAD_REQUEST;
  int relayed = 0, stored = 0, over_quota = 0;
  if (count_copies(srv, g, me, m->msg_id, &relayed)) {
    gsend_reply(s, m->id, m->msg_id, relayed, 0, 0);
    return 0;
  }
  gsend_op_t *op = calloc(1, sizeof(*op) + g->nmembers * sizeof(op->copies[0]));
  if (op == NULL ||
      (op->body = malloc(m->body_len ? m->body_len : 1)) == NULL) {
    free(op);
    return -ENOMEM;
  }
  memcpy(op->body, m->body, m->body_len);
  op->body_len = m->body_len;
  op->srv = srv;
  op->s = s;
  chat__session_ref(s);
  op->id = json_incref((json_t *)m->id);
  op->from = me;
  me->pins++;
  snprintf(op->group, sizeof(op->group), "%s", g->name);
  snprintf(op->msg_id, sizeof(op->msg_id), "%s", m->msg_id);
  op->ts = chat__srv_now_wall_ms();
  /* One line for every member pushed now: written once, sent as the same
   * bytes. Nothing below writes another line into the scratch buffer. */
  size_t cap;
  char *line = chat__srv_line_buf(srv, m->body_len, &cap);
  int n = line ? chat_line_deliver(line, cap, me->name, g->name, m->msg_id,
                                   m->body, m->body_len, op->ts, 0)
               : -ENOMEM;
  if (n < 0) {
    gsend_free(op);
    return n;
  }
  size_t len = (size_t)n;
  /* Sessions that overflow end after the loop, not in the middle of it. */
  for (uint32_t i = 0; i < g->nmembers; i++) {
    chat__user_t *u = g->members[i];
    if (u == me)
      continue;
    if (!chat__srv_quota_open(srv, u)) {
      over_quota++;
      continue;
    }
    uint64_t seq = chat__srv_take_seq(srv);
    chat__held_t *h;
    if (chat__srv_can_push(srv, u, wire) &&
        chat__mailbox_add(&srv->mb, u, me, g->name, m->msg_id, m->body,
                          m->body_len, wire, seq, op->ts, &h) == 0) {
      u->held++;
      u->store_after = seq;
      chat__srv_track_unwritten(srv, h);
      chat__session_t *us = u->session;
      us->sink->send_line(us->ctx, line, len);
      if (u->session == us && !us->ended) {
        relayed++;
      } else {
        /* The line overflowed the member's output: its session ended and
         * handed the copy to the store (srv.c). */
        stored++;
      }
      continue;
    }
    chat__srv_store_msg(srv, u, me, g->name, m->msg_id, m->body, m->body_len,
                        seq, op->ts);
    op->copies[op->ncopies].to = u;
    op->copies[op->ncopies].seq = seq;
    chat__srv_await(srv, &op->copies[op->ncopies].seq, op);
    u->pins++;
    op->ncopies++;
    stored++;
  }
  if (stored == 0 && relayed == 0 && over_quota > 0) {
    /* Nobody got a copy: refuse it as a send to one full mailbox is. */
    char who[CHAT_MAX_NAME + 32];
    snprintf(who, sizeof(who), "every other member of %s", g->name);
    chat__srv_quota_error(s, m->id, who);
    gsend_free(op);
    return 0;
  }
  op->relayed = relayed;
  op->stored = stored;
  op->over_quota = over_quota;
  if (stored == 0 || chat__engine_then(srv->engine, gsend_committed, op) < 0) {
    gsend_reply(s, m->id, m->msg_id, relayed, stored, over_quota);
    gsend_free(op);
    return 0;
  }
  /* Members logged in whose copies went to the store read them next:
   * here, and on the other nodes, told once each behind the PUTs. */
  for (uint32_t i = 0; i < op->ncopies; i++)
    chat__srv_pump(srv, op->copies[i].to);
  if (op->ncopies > 0 &&
      chat__cluster_group_stored(srv, g->name, op->copies[0].seq, gsend_told,
                                 op) == 0)
    op->told_pending = 1;
  return 0;
}
