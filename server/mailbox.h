/* mailbox.h -- messages the server holds, per recipient in accept order.
 *
 * A held message is either stored (waiting for the recipient's next login)
 * or pushed (sent as deliver to the logged-in recipient and not yet acked).
 * Each recipient's queue is in seq order, which is the order the server
 * accepted them, so one sender's messages to one recipient stay in order.
 * An index by (recipient, sender, msg_id) finds duplicates and acks.
 *
 * Messages are pushed oldest first, so a queue is a run of pushed messages
 * followed by a run of waiting ones; to->mb_waiting points at the first
 * waiting one, which is the next to push.
 *
 * "written" says the message is in the store (a PUT_MSG was given to the
 * committer), so dropping it needs a DEL_MSG. Relayed messages are not
 * written until the recipient's session ends without acking them.
 */
#ifndef CHAT_MAILBOX_H
#define CHAT_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "registry.h"

typedef enum chat_held_state {
  CHAT_HELD_STORED = 0, /* waiting for a login */
  CHAT_HELD_PUSHED      /* delivered to a session, not acked */
} chat_held_state_t;

typedef struct chat_held {
  struct chat_held *next, *prev; /* the recipient's queue */
  chat_user_t *to, *from;
  char *group;                   /* in key[]'s allocation; NULL for 1:1 */
  char *body;                    /* in key[]'s allocation, body_len bytes */
  size_t body_len;
  uint32_t wire_len;             /* the deliver line's bytes as sent (escapes
                                  * included): what the window counts */
  uint64_t seq;
  int64_t ts;
  unsigned state : 1;            /* chat_held_state_t */
  unsigned written : 1;          /* a PUT_MSG was committed or is pending */
  unsigned offline : 1;          /* deliver it with offline:true */
  unsigned delivered : 1;        /* a deliver line went out at least once */
  void *waiter;                  /* while a sender waits for its PUT_MSG to
                                  * commit: that send's reply state (see
                                  * handle_message.c / handle_group.c by
                                  * whether group is set), else NULL */
  uint16_t klen;                 /* key: "to/from/msg_id" */
  uint16_t id_off;               /* msg_id = key + id_off */
  char key[];                    /* then the group's NUL-terminated name,
                                  * then the body */
} chat_held_t;

static inline const char *chat_held_msg_id(const chat_held_t *h) {
  return h->key + h->id_off;
}

typedef struct chat_mailbox {
  chat_hmap_t index;     /* key -> chat_held_t */
  chat_hmap_t by_sender; /* "from/msg_id" (a tail of key) -> chat_held_t,
                          * 1:1 messages only: a msg_id is unique per
                          * sender, whoever it went to */
  size_t count;
} chat_mailbox_t;

void chat_mailbox_init(chat_mailbox_t *mb);
/* Frees every held message and the index. */
void chat_mailbox_free(chat_mailbox_t *mb);

chat_held_t *chat_mailbox_find(const chat_mailbox_t *mb, const chat_user_t *to,
                               const chat_user_t *from, const char *msg_id);

/* The 1:1 message held from `from` under msg_id, to whomever, or NULL. */
chat_held_t *chat_mailbox_find_sent(const chat_mailbox_t *mb,
                                    const chat_user_t *from,
                                    const char *msg_id);

/* Appends a message to to's queue (seq must exceed every seq in it, except
 * at start-up, where the store hands them over in seq order anyway). body and
 * group are copied. wire_len is the deliver line's length
 * (chat_srv_deliver_len). Returns 0, -EEXIST for a (to, from, msg_id) already
 * held (or, for a 1:1 message, a (from, msg_id) held for anyone),
 * or -ENOMEM. */
int chat_mailbox_add(chat_mailbox_t *mb, chat_user_t *to, chat_user_t *from,
                     const char *group, const char *msg_id, const char *body,
                     size_t body_len, size_t wire_len, uint64_t seq, int64_t ts,
                     chat_held_state_t state, chat_held_t **out);

/* Marks h pushed (counting its bytes as unacked) or stored again. */
void chat_mailbox_set_state(chat_held_t *h, chat_held_state_t state);

/* Unlinks and frees h. */
void chat_mailbox_remove(chat_mailbox_t *mb, chat_held_t *h);

#endif /* CHAT_MAILBOX_H */
