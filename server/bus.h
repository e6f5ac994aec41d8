/* bus.h -- cluster mode's link between nodes (PROTOCOL.md section 6,
 * docs/CLUSTER.md): the presence directory (which node holds each
 * logged-in user, in which session), node liveness, and events routed to
 * the node a user is on, through the shared Redis.
 *
 * Calls ride the engine's connection as reads behind its batch of writes
 * (bus_redis.c), so an event about a message (kind 'm') is sent only after
 * the message is durable, and a node that dies between the two has lost
 * nothing: the message waits in the store for its recipient's next page or
 * login. Events for this node are read from its inbox, a Redis Stream, by a
 * thread of the bus's own from the last id it saw, so a reconnect loses
 * none; they reach the core on the loop thread (on_event).
 *
 * NULL on a single node (SQLite or memory engine): the core's callers
 * check srv->bus. */
#ifndef CHAT_BUS_H
#define CHAT_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "chat_protocol.h"
#include "engine.h"

typedef struct chat__bus chat__bus_t;

/* An event from another node (or this one's reaper), borrowed for the
 * call. kind: 'm' messages were stored for user (or for each name in
 * rcpts); 'p' user's presence is a (a status name) for rcpts, its
 * contacts on this node; 'k' user's session with epoch a must go (a
 * login elsewhere won); 'r' a receipt for user's message a, read by b;
 * 'e' the event line a (a JSON frame) for user; 'M' a message for user
 * from a, msg_id b, with its seq, ts and body; 'f' the users in rcpts
 * logged in, out or were reaped (the bus's own: its route cache drops
 * them before the core sees it). */
typedef struct chat__bus_event {
  char kind;
  const char *user, *a, *b, *rcpts;
  const char *id;    /* its inbox entry's id (for trim) */
  int entry_end;     /* the last event of that entry: after it the entry has
                      * been read whole */
  /* 'M' (a message for user, carried whole: from a, msg_id b): */
  uint64_t seq;
  int64_t ts;
  const char *body;
  size_t body_len;
  size_t wire;       /* its deliver line's length as the sender's node
                      * counted it, or 0 (not sent: count it here) */
} chat__bus_event_t;

typedef void (*chat__bus_event_cb)(void *arg, const chat__bus_event_t *ev);

/* The next name of a space-separated list (an event's rcpts: names never
 * hold spaces) into name; advances *p. 1, or 0 at the list's end. Empty
 * and over-long names are skipped. */
static inline int chat__bus_next_name(const char **p,
                                      char name[CHAT_MAX_NAME + 1]) {
  while (*p != NULL && **p) {
    const char *sp = strchr(*p, ' ');
    size_t len = sp ? (size_t)(sp - *p) : strlen(*p);
    const char *at = *p;
    *p = sp ? sp + 1 : *p + len;
    if (len > 0 && len <= CHAT_MAX_NAME) {
      memcpy(name, at, len);
      name[len] = '\0';
      return 1;
    }
  }
  return 0;
}
/* This node was taken for dead by the others (its liveness key expired,
 * e.g. Redis was away longer than the key lives): each of its sessions
 * must assert itself again (chat__bus_rejoin). */
typedef void (*chat__bus_lost_cb)(void *arg);
/* A call's result: strs (borrowed) or ival, as the script returns them;
 * status < 0: the call failed (Redis away). */
typedef void (*chat__bus_reply_cb)(void *arg, int status, char *const *strs,
                                   size_t n, long long ival);

/* The session's epoch: 16 hex digits, random per login. */
#define CHAT_BUS_EPOCH_LEN 16

/* Joins the cluster on engine (the Redis engine) as node: blocks until
 * the node's name is free (an earlier life of it, whose key still lives,
 * is waited out; a live node of that name refuses the start), cleans up
 * what an earlier life left, starts the inbox reader and the liveness
 * timer (ttl_ms: how long the others wait before taking it for dead).
 * addr (this node's listening address) tells an earlier life on this host
 * from another live node. 0, or -EIO / -EEXIST with the reason in errbuf,
 * or -ENOMEM. */
int chat__bus_redis_new(uv_loop_t *loop, chat__engine_t *engine, const char *node,
                  const char *addr, unsigned ttl_ms, chat__bus_event_cb on_event,
                  chat__bus_lost_cb on_lost, void *arg, chat__bus_t **out,
                  char *errbuf, size_t errlen);

/* The calls, as a table (like engine.h's) so that unit tests can put a
 * bus of their own under the core (tests/unit/server/test_cluster.c). */
typedef struct chat__bus_type {
  /* The directory. cb gets {max_seq, contact, status, ...}: the largest
   * seq stored by any node, then user's contacts that are logged in
   * anywhere (may be NULL). */
  int (*login)(chat__bus_t *bus, const char *user, const char *epoch,
               const char *status, const char *host, int p2p_port,
               const char *key, chat__bus_reply_cb cb, void *arg);
  /* After on_lost: the live session (as in login) asserts itself again;
   * cb gets ival 0 when the user has a newer session elsewhere. */
  int (*rejoin)(chat__bus_t *bus, const char *user, const char *epoch,
                const char *status, const char *host, int p2p_port,
                const char *key, chat__bus_reply_cb cb, void *arg);
  int (*status)(chat__bus_t *bus, const char *user, const char *epoch,
                const char *status);
  int (*logout)(chat__bus_t *bus, const char *user, const char *epoch);
  /* Sends event (kind, a, b) to the node user is on, unless that is this
   * node; cb (may be NULL) gets that node's name in strs[0], or n == 0
   * when user is not logged in anywhere. Kind 'R' sends a receipt ('r')
   * where the directory says now, not where this node last found user
   * (a receipt that came to a node user is not on). */
  int (*route)(chat__bus_t *bus, const char *user, char kind, const char *a,
               const char *b, chat__bus_reply_cb cb, void *arg);
  /* Carries a message (seq, ts, body) from `from` to the node `to` is on,
   * unless that is this node; cb gets that node's name in strs[0], or
   * n == 0 when `to` is logged in nowhere (nothing was sent). wire is its
   * deliver line's length (chat__srv_deliver_len), carried along so that
   * the receiving node need not escape the body again to count it. */
  int (*msg)(chat__bus_t *bus, const char *to, const char *from,
             const char *msg_id, uint64_t seq, int64_t ts, const char *body,
             size_t body_len, size_t wire, chat__bus_reply_cb cb, void *arg);
  /* A connect to user: cb gets {node, host, port, key} of its session, or
   * n == 0 when it is not logged in; expect_line (a JSON frame) goes to
   * its node when it listens (port not "0"). */
  int (*connect)(chat__bus_t *bus, const char *user, const char *expect_line,
                 chat__bus_reply_cb cb, void *arg);
  /* The statuses of users[0..n) as the directory has them now: cb gets
   * one string per user ("" when logged in nowhere). */
  int (*statuses)(chat__bus_t *bus, const char *const *users, size_t n,
                  chat__bus_reply_cb cb, void *arg);
  /* Tells each other node with members of group on it that messages were
   * stored for them (one event per node, seq the lowest stored); cb (may
   * be NULL) gets the names of the members it told of them. */
  int (*group)(chat__bus_t *bus, const char *group, uint64_t seq,
               chat__bus_reply_cb cb, void *arg);
  /* Inbox entries before id (an event's) may go: what they carried is
   * settled (read, acked or stored). Until then they stay, so that a node
   * that dies leaves its unsettled messages for the others (LOGIN, TICK
   * move them to the store). id is copied. */
  void (*trim)(chat__bus_t *bus, const char *id);
  /* Stops the reader and the timer; the loop must run once more. */
  void (*free)(chat__bus_t *bus);
} chat__bus_type_t;

struct chat__bus {
  const chat__bus_type_t *type;
  const char *node; /* this node's name (borrowed from the bus) */
  /* This node's slot, 0 to CHAT_BUS_SLOTS - 1, unique among live nodes
   * (the bus keeps it, and may change it when it was lost): a part of
   * every seq the node makes, so that two nodes never make the same one
   * (srv.c chat__srv_take_seq). */
  int slot;
};

#define CHAT_BUS_SLOTS 1024

/* Each returns 0 (cb will be called) or a negative error (it will not). */
static inline int chat__bus_login(chat__bus_t *b, const char *user,
                                  const char *epoch, const char *status,
                                  const char *host, int port, const char *key,
                                  chat__bus_reply_cb cb, void *arg) {
  return b->type->login(b, user, epoch, status, host, port, key, cb, arg);
}
static inline int chat__bus_rejoin(chat__bus_t *b, const char *user,
                                   const char *epoch, const char *status,
                                   const char *host, int port,
                                   const char *key, chat__bus_reply_cb cb,
                                   void *arg) {
  return b->type->rejoin(b, user, epoch, status, host, port, key, cb, arg);
}
static inline int chat__bus_status(chat__bus_t *b, const char *user,
                                   const char *epoch, const char *status) {
  return b->type->status(b, user, epoch, status);
}
static inline int chat__bus_logout(chat__bus_t *b, const char *user,
                                   const char *epoch) {
  return b->type->logout(b, user, epoch);
}
static inline int chat__bus_route(chat__bus_t *b, const char *user, char kind,
                                  const char *x, const char *y,
                                  chat__bus_reply_cb cb, void *arg) {
  return b->type->route(b, user, kind, x, y, cb, arg);
}
static inline int chat__bus_msg(chat__bus_t *b, const char *to,
                                const char *from, const char *msg_id,
                                uint64_t seq, int64_t ts, const char *body,
                                size_t body_len, size_t wire,
                                chat__bus_reply_cb cb, void *arg) {
  return b->type->msg(b, to, from, msg_id, seq, ts, body, body_len, wire, cb,
                      arg);
}
static inline int chat__bus_statuses(chat__bus_t *b, const char *const *users,
                                     size_t n, chat__bus_reply_cb cb,
                                     void *arg) {
  return b->type->statuses(b, users, n, cb, arg);
}
static inline int chat__bus_connect(chat__bus_t *b, const char *user,
                                    const char *line, chat__bus_reply_cb cb,
                                    void *arg) {
  return b->type->connect(b, user, line, cb, arg);
}
static inline int chat__bus_group(chat__bus_t *b, const char *group,
                                  uint64_t seq, chat__bus_reply_cb cb,
                                  void *arg) {
  return b->type->group(b, group, seq, cb, arg);
}
static inline void chat__bus_trim(chat__bus_t *b, const char *id) {
  b->type->trim(b, id);
}
static inline void chat__bus_free(chat__bus_t *b) {
  if (b != NULL)
    b->type->free(b);
}

#endif /* CHAT_BUS_H */
