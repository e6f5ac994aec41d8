/* cluster.h -- the core's side of cluster mode (bus.h): what a session's
 * login, status, end, sends and acks tell the other nodes, and what their
 * events do here. Private to the server core; every function is a no-op
 * or takes the single-node path when srv->bus is NULL. */
#ifndef CHAT_CLUSTER_H
#define CHAT_CLUSTER_H

#include "bus.h"
#include "srv.h"

/* The bus's handlers (arg: the chat__srv_t). */
void chat__cluster_on_event(void *arg, const chat__bus_event_t *ev);
void chat__cluster_on_lost(void *arg);

/* s (logging in as u with its status) becomes u's session in the
 * directory; done(arg, status) runs once the directory answered and u's
 * contacts elsewhere have their status here (status < 0: Redis away; the
 * login is refused with internal). 0 or -ENOMEM. */
int chat__cluster_login(chat__srv_t *srv, chat__session_t *s, chat__user_t *u,
                        const char *host, int p2p_port, const char *key,
                        void (*done)(void *arg, int status), void *arg);
/* connect m from s to `to`, who has no session on this node: answered
 * once the directory says where it is (offline, no_p2p, or ok with its
 * address and key, the expect sent to its node). 0 or -ENOMEM. */
int chat__cluster_connect(chat__srv_t *srv, chat__session_t *s,
                          const chat_msg_t *m, chat__user_t *to);
/* s, u's live session, ended / changed its status. */
void chat__cluster_logout(chat__srv_t *srv, chat__session_t *s);
void chat__cluster_status(chat__srv_t *srv, chat__session_t *s);

/* The send m from s to `to`, who has no session on this node: stored,
 * then its node (if any) told; answered relayed when to is logged in
 * elsewhere, stored when nowhere. 0 or a negative error (nothing sent). */
int chat__cluster_send(chat__srv_t *srv, chat__session_t *s,
                       const chat_msg_t *m, chat__user_t *to, size_t wire);
/* cluster_send.c: a message carried here for one of this node's users
 * (kind 'M'): pushed like a relay when it can be, else stored. */
void chat__cluster_on_carried(chat__srv_t *srv, const chat__bus_event_t *ev);
/* h, carried here, is acked (settled now) or written (settled once the
 * write is durable); its inbox entry may then be trimmed. */
void chat__cluster_carry_acked(chat__srv_t *srv, chat__held_t *h);
void chat__cluster_carry_written(chat__srv_t *srv, chat__held_t *h);
/* The inbox entry id was taken in whole (its last event handled); trims
 * what is settled. */
void chat__cluster_inbox_read(chat__srv_t *srv, const char *id);
/* Frees the carried entries' bookkeeping (shutdown). */
void chat__cluster_carry_free(chat__srv_t *srv);
/* A receipt for from's message msg_id, read by `by`, when from has no
 * session here. */
void chat__cluster_receipt(chat__srv_t *srv, const chat__user_t *from,
                           const char *msg_id, const char *by);
/* Messages were stored for group's members not on this node, the lowest
 * seq given: their nodes are told; cb gets the names of the members told
 * (logged in elsewhere). 0, or a negative error (-ENOSYS on one node),
 * when cb will not be called. */
int chat__cluster_group_stored(chat__srv_t *srv, const char *group,
                               uint64_t seq, chat__bus_reply_cb cb,
                               void *arg);
/* A `contacts` request: answered with the statuses the directory has
 * now for contacts on other nodes. 0 or -ENOMEM. */
int chat__cluster_contacts(chat__srv_t *srv, chat__session_t *s,
                           const chat_msg_t *m);
/* Event obj (borrowed) for user, who has no session here: sent to its
 * node, which also applies what it says to its cache (contact events). */
void chat__cluster_tell(chat__srv_t *srv, const char *user, const json_t *obj);

#endif /* CHAT_CLUSTER_H */
