/* mailbox.h -- the messages a node holds in memory: those pushed to a
 * logged-in recipient and not yet acked, per recipient in seq order.
 *
 * Everything else that is held lives only in the store (engine.h): messages
 * for offline users, and those a logged-in user has not been pushed yet
 * (they come in pages as acks open its window, srv.c). So memory is bounded
 * by the sessions and their windows, never by what is stored.
 *
 * An index by (recipient, sender, msg_id) finds duplicates and acks, and one
 * by (sender, msg_id) for 1:1 messages finds a msg_id re-sent to someone
 * else. "written" says the message is in the store too (it came from a page,
 * or was written when it stayed unacked for a second or its session ended),
 * so dropping it needs a DEL_MSG. Unwritten ones wait on the server's list
 * of messages to write after CHAT_RELAY_WRITE_MS (srv.c).
 *
 * A held message pins its sender and recipient (registry.h).
 */
#ifndef CHAT_MAILBOX_H
#define CHAT_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "registry.h"

typedef struct chat__held {
  struct chat__held *next, *prev;   /* the recipient's queue */
  struct chat__held *wnext, *wprev; /* unwritten ones, oldest push first */
  chat__user_t *to, *from;
  char *group;                   /* in key[]'s allocation; NULL for 1:1 */
  char *body;                    /* in key[]'s allocation, body_len bytes */
  size_t body_len;
  uint32_t wire_len;             /* the deliver line's bytes as sent (escapes
                                  * included): what the window counts */
  uint64_t seq;
  int64_t ts;
  uint64_t pushed_ms;            /* loop time of the push */
  struct chat__carry *carry;     /* cluster: its inbox entry, until the
                                  * message is acked or written */
  unsigned written : 1;          /* in the store too */
  unsigned offline : 1;          /* deliver it with offline:true */
  uint16_t klen;                 /* key: "to/from/msg_id" */
  uint16_t id_off;               /* msg_id = key + id_off */
  char key[];                    /* then the group's NUL-terminated name,
                                  * then the body */
} chat__held_t;

static inline const char *chat__held_msg_id(const chat__held_t *h) {
  return h->key + h->id_off;
}

typedef struct chat__mailbox {
  chat__hmap_t index;     /* key -> chat__held_t */
  chat__hmap_t by_sender; /* "from/msg_id" (a tail of key) -> chat__held_t,
                           * 1:1 messages only: a msg_id is unique per
                           * sender, whoever it went to */
  size_t count;
} chat__mailbox_t;

void chat__mailbox_init(chat__mailbox_t *mb);
/* Frees every held message and the index. */
void chat__mailbox_free(chat__mailbox_t *mb);

chat__held_t *chat__mailbox_find(const chat__mailbox_t *mb,
                                 const chat__user_t *to,
                                 const chat__user_t *from, const char *msg_id);
/* The 1:1 message held in memory from `from` under msg_id, or NULL. */
chat__held_t *chat__mailbox_find_sent(const chat__mailbox_t *mb,
                                      const chat__user_t *from,
                                      const char *msg_id);

/* Appends a pushed message to to's queue, counting wire_len (the deliver
 * line's length, chat__srv_deliver_len) in its window. body and group are
 * copied. Returns 0, -EEXIST for a (to, from, msg_id) already held (or, for
 * a 1:1 message, a (from, msg_id) held for anyone), -EINVAL for names too
 * long, or -ENOMEM. */
int chat__mailbox_add(chat__mailbox_t *mb, chat__user_t *to, chat__user_t *from,
                      const char *group, const char *msg_id, const char *body,
                      size_t body_len, size_t wire_len, uint64_t seq,
                      int64_t ts, chat__held_t **out);

/* Unlinks and frees h (the caller unlinks it from the write list first). */
void chat__mailbox_remove(chat__mailbox_t *mb, chat__held_t *h);

#endif /* CHAT_MAILBOX_H */
