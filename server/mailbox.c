/* mailbox.c -- per-recipient queues of pushed messages and their indexes. */
#include "mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"

#define KEY_MAX (CHAT_MAX_NAME * 2 + CHAT_MAX_MSG_ID + 3)

void chat__mailbox_init(chat__mailbox_t *mb) {
  memset(mb, 0, sizeof(*mb));
  chat__hmap_init(&mb->index);
  chat__hmap_init(&mb->by_sender);
}

void chat__mailbox_free(chat__mailbox_t *mb) {
  size_t pos = 0;
  chat__held_t *h;
  while ((h = chat__hmap_next(&mb->index, &pos)) != NULL)
    free(h); /* key, group and body included */
  chat__hmap_free(&mb->index);
  chat__hmap_free(&mb->by_sender);
  mb->count = 0;
}

/* '/' is in neither names nor msg_ids, so the key is unambiguous. */
static size_t make_key(char *buf, const chat__user_t *to,
                       const chat__user_t *from, const char *msg_id,
                       size_t *id_off) {
  size_t a = strlen(to->name), b = strlen(from->name), c = strlen(msg_id);
  if (a + b + c + 2 > KEY_MAX)
    return 0;
  memcpy(buf, to->name, a);
  buf[a] = '/';
  memcpy(buf + a + 1, from->name, b);
  buf[a + 1 + b] = '/';
  memcpy(buf + a + b + 2, msg_id, c + 1);
  if (id_off)
    *id_off = a + b + 2;
  return a + b + c + 2;
}

chat__held_t *chat__mailbox_find(const chat__mailbox_t *mb,
                                 const chat__user_t *to,
                                 const chat__user_t *from, const char *msg_id) {
  char key[KEY_MAX + 1];
  size_t n = make_key(key, to, from, msg_id, NULL);
  return n ? chat__hmap_get(&mb->index, key, n) : NULL;
}

chat__held_t *chat__mailbox_find_sent(const chat__mailbox_t *mb,
                                      const chat__user_t *from,
                                      const char *msg_id) {
  char key[KEY_MAX + 1];
  size_t a = strlen(from->name), b = strlen(msg_id);
  if (a + b + 1 > KEY_MAX)
    return NULL;
  memcpy(key, from->name, a);
  key[a] = '/';
  memcpy(key + a + 1, msg_id, b);
  return chat__hmap_get(&mb->by_sender, key, a + 1 + b);
}

/* h's "from/msg_id": the tail of its key after "to/". */
static const char *sender_key(const chat__held_t *h, size_t *len) {
  size_t skip = strlen(h->to->name) + 1;
  *len = h->klen - skip;
  return h->key + skip;
}

int chat__mailbox_add(chat__mailbox_t *mb, chat__user_t *to, chat__user_t *from,
                      const char *group, const char *msg_id, const char *body,
                      size_t body_len, size_t wire_len, uint64_t seq,
                      int64_t ts, chat__held_t **out) {
  char key[KEY_MAX + 1];
  size_t id_off;
  size_t n = make_key(key, to, from, msg_id, &id_off);
  if (n == 0)
    return -EINVAL;
  /* One allocation per message: struct, key, group, body. A repeat is
   * found by the puts below (-EEXIST), not by lookups before them: two
   * probes of each table per message fewer, and repeats are rare. */
  size_t glen = group ? strlen(group) + 1 : 0;
  chat__held_t *h = malloc(sizeof(*h) + n + 1 + glen + body_len);
  if (h == NULL)
    return -ENOMEM;
  memset(h, 0, sizeof(*h));
  memcpy(h->key, key, n + 1);
  h->klen = (uint16_t)n;
  h->id_off = (uint16_t)id_off;
  if (group) {
    h->group = h->key + n + 1;
    memcpy(h->group, group, glen);
  }
  h->body = h->key + n + 1 + glen;
  h->to = to;
  int rc = chat__hmap_put(&mb->index, h->key, n, h);
  if (rc < 0) {
    free(h);
    return rc; /* -EEXIST or -ENOMEM */
  }
  if (group == NULL) {
    size_t slen;
    const char *skey = sender_key(h, &slen);
    if ((rc = chat__hmap_put(&mb->by_sender, skey, slen, h)) < 0) {
      chat__hmap_del(&mb->index, h->key, n);
      free(h);
      return rc;
    }
  }
  memcpy(h->body, body, body_len);
  h->body_len = body_len;
  h->wire_len = (uint32_t)wire_len;
  h->to = to;
  h->from = from;
  h->seq = seq;
  h->ts = ts;
  /* Pages come in seq order and new messages get the highest seq, so
   * appending keeps the queue sorted; walk back just in case. */
  chat__held_t *after = to->mb_tail;
  while (after && after->seq > seq)
    after = after->prev;
  h->prev = after;
  h->next = after ? after->next : to->mb_head;
  if (h->next)
    h->next->prev = h;
  else
    to->mb_tail = h;
  if (after)
    after->next = h;
  else
    to->mb_head = h;
  mb->count++;
  to->mb_count++;
  to->mb_unacked_bytes += h->wire_len;
  to->mb_npushed++;
  to->pins++;
  from->pins++;
  if (out)
    *out = h;
  return 0;
}

void chat__mailbox_remove(chat__mailbox_t *mb, chat__held_t *h) {
  h->to->mb_unacked_bytes -= h->wire_len;
  h->to->mb_npushed--;
  h->to->pins--;
  h->from->pins--;
  if (h->prev)
    h->prev->next = h->next;
  else
    h->to->mb_head = h->next;
  if (h->next)
    h->next->prev = h->prev;
  else
    h->to->mb_tail = h->prev;
  chat__hmap_del(&mb->index, h->key, h->klen);
  if (h->group == NULL) {
    size_t slen;
    const char *skey = sender_key(h, &slen);
    chat__hmap_del(&mb->by_sender, skey, slen);
  }
  mb->count--;
  h->to->mb_count--;
  free(h);
}
