/* dedup.h -- remembers the (from, msg_id) of the last messages received, so a
 * message that comes twice (relay redelivery, or direct and then relayed when
 * an ack was lost) is shown once. Memory is fixed at creation: the oldest
 * entries are forgotten first. Socket-free. */
#ifndef CHAT_DEDUP_H
#define CHAT_DEDUP_H

#include <stddef.h>

#define CHAT_DEDUP_DEFAULT 4096 /* entries: ~0.5 MiB */

typedef struct chat_dedup chat_dedup_t;

/* capacity >= 1. Returns 0, -EINVAL or -ENOMEM. */
int chat_dedup_new(size_t capacity, chat_dedup_t **out);
void chat_dedup_free(chat_dedup_t *d);
/* Returns 1 when (from, msg_id) was seen already, 0 when it is new (and now
 * remembered), -EINVAL when either is not a valid name / msg_id. */
int chat_dedup_check(chat_dedup_t *d, const char *from, const char *msg_id);

#endif /* CHAT_DEDUP_H */
