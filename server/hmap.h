/* hmap.h -- a string-keyed hash map of borrowed keys to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), so lookups stay short however many users come and go. Keys are
 * byte strings with a length and are borrowed: each key must live as long as
 * its entry, which is natural when the key is stored inside the value.
 */
#ifndef CHAT_HMAP_H
#define CHAT_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct chat__hmap_slot {
  const char *key; /* NULL: empty */
  void *val;
  uint32_t hash;
  uint32_t klen;
} chat__hmap_slot_t;

typedef struct chat__hmap {
  chat__hmap_slot_t *slots;
  size_t cap; /* a power of two, or 0 */
  size_t len;
} chat__hmap_t;

void chat__hmap_init(chat__hmap_t *m);
/* Frees the table; the keys and values are the caller's. */
void chat__hmap_free(chat__hmap_t *m);
void *chat__hmap_get(const chat__hmap_t *m, const char *key, size_t klen);
/* Returns 0, -EEXIST (the key is there; nothing changed) or -ENOMEM. */
int chat__hmap_put(chat__hmap_t *m, const char *key, size_t klen, void *val);
/* Removes the key; returns its value or NULL when it was not there. */
void *chat__hmap_del(chat__hmap_t *m, const char *key, size_t klen);
/* Iteration: start with *pos = 0; returns the next value or NULL at the end.
 * The map must not change during a walk. */
void *chat__hmap_next(const chat__hmap_t *m, size_t *pos);

#endif /* CHAT_HMAP_H */
