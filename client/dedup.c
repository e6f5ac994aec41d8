/* dedup.c -- a ring of recent (from, msg_id) pairs with a chained hash index. */
#include "dedup.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"

typedef struct entry {
  char from[CHAT_MAX_NAME + 1];
  char msg_id[CHAT_MAX_MSG_ID + 1];
  uint32_t hash;
  int32_t next; /* next entry in the same bucket, -1 at the end */
} entry_t;

struct chat_dedup {
  entry_t *ring;
  size_t cap, count, pos; /* pos: the slot written next (the oldest if full) */
  int32_t *buckets;       /* -1: empty */
  size_t mask;
};

static uint32_t hash_of(const char *from, const char *msg_id) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = from; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  h = (h ^ 0xffu) * 16777619u; /* a separator no name contains */
  for (const char *p = msg_id; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return h;
}

int chat_dedup_new(size_t capacity, chat_dedup_t **out) {
  chat_dedup_t *d;
  size_t nb = 1;

  if (capacity < 1 || capacity > (1u << 24))
    return -EINVAL;
  while (nb < capacity * 2)
    nb <<= 1;
  d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->ring = calloc(capacity, sizeof(*d->ring));
  d->buckets = malloc(nb * sizeof(*d->buckets));
  if (!d->ring || !d->buckets) {
    chat_dedup_free(d);
    return -ENOMEM;
  }
  memset(d->buckets, 0xff, nb * sizeof(*d->buckets));
  d->cap = capacity;
  d->mask = nb - 1;
  *out = d;
  return 0;
}

void chat_dedup_free(chat_dedup_t *d) {
  if (!d)
    return;
  free(d->ring);
  free(d->buckets);
  free(d);
}

static void unlink_slot(chat_dedup_t *d, int32_t slot) {
  int32_t *p = &d->buckets[d->ring[slot].hash & d->mask];
  while (*p != -1) {
    if (*p == slot) {
      *p = d->ring[slot].next;
      return;
    }
    p = &d->ring[*p].next;
  }
}

int chat_dedup_check(chat_dedup_t *d, const char *from, const char *msg_id) {
  uint32_t h;
  int32_t i, slot;
  entry_t *e;

  if (!from || !msg_id || !chat_name_valid(from) || !chat_msg_id_valid(msg_id))
    return -EINVAL;
  h = hash_of(from, msg_id);
  for (i = d->buckets[h & d->mask]; i != -1; i = d->ring[i].next) {
    e = &d->ring[i];
    if (e->hash == h && strcmp(e->from, from) == 0 &&
        strcmp(e->msg_id, msg_id) == 0)
      return 1;
  }
  slot = (int32_t)d->pos;
  if (d->count == d->cap)
    unlink_slot(d, slot);
  else
    d->count++;
  e = &d->ring[slot];
  strcpy(e->from, from);
  strcpy(e->msg_id, msg_id);
  e->hash = h;
  e->next = d->buckets[h & d->mask];
  d->buckets[h & d->mask] = slot;
  d->pos = (d->pos + 1) % d->cap;
  return 0;
}
