/* hmap.c -- the string-keyed hash map of hmap.h (linear probing). */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Eight bytes a step (FxHash's rotate-xor-multiply, as rustc's hash maps
 * use), then murmur3's finalizer so the low bits the mask keeps depend on
 * every byte. Keys are names and msg_ids of tens of bytes, hashed several
 * times per message: FNV-1a's byte loop was a tenth of the relay's CPU. */
static uint32_t hash_bytes(const char *k, size_t n) {
  const uint64_t mul = 0x517cc1b727220a95ULL;
  uint64_t h = n, w;
  size_t i = 0;

  for (; i + 8 <= n; i += 8) {
    memcpy(&w, k + i, 8);
    h = (((h << 5) | (h >> 59)) ^ w) * mul;
  }
  if (i < n) {
    w = 0;
    memcpy(&w, k + i, n - i);
    h = (((h << 5) | (h >> 59)) ^ w) * mul;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return (uint32_t)h;
}

void chat__hmap_init(chat__hmap_t *m) { memset(m, 0, sizeof(*m)); }

void chat__hmap_free(chat__hmap_t *m) {
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

static size_t find(const chat__hmap_t *m, const char *key, size_t klen,
                   uint32_t h, int *found) {
  size_t mask = m->cap - 1;
  size_t i = h & mask;
  for (;;) {
    const chat__hmap_slot_t *s = &m->slots[i];
    if (s->key == NULL) {
      *found = 0;
      return i;
    }
    if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

void *chat__hmap_get(const chat__hmap_t *m, const char *key, size_t klen) {
  if (m->len == 0)
    return NULL;
  int found;
  size_t i = find(m, key, klen, hash_bytes(key, klen), &found);
  return found ? m->slots[i].val : NULL;
}

static int grow(chat__hmap_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  chat__hmap_slot_t *ns = calloc(ncap, sizeof(*ns));
  if (ns == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    chat__hmap_slot_t *s = &m->slots[i];
    if (s->key == NULL)
      continue;
    size_t j = s->hash & (ncap - 1);
    while (ns[j].key)
      j = (j + 1) & (ncap - 1);
    ns[j] = *s;
  }
  free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  return 0;
}

int chat__hmap_put(chat__hmap_t *m, const char *key, size_t klen, void *val) {
  /* Keep the load at most 1/2: a miss (every put, and the lookups of
   * messages not yet held) probes 2.5 slots on average there, 8.5 at 3/4;
   * the mailbox's tables are probed four times per message. */
  if ((m->len + 1) * 2 > m->cap) {
    int r = grow(m);
    if (r < 0)
      return r;
  }
  uint32_t h = hash_bytes(key, klen);
  int found;
  size_t i = find(m, key, klen, h, &found);
  if (found)
    return -EEXIST;
  m->slots[i].key = key;
  m->slots[i].klen = (uint32_t)klen;
  m->slots[i].hash = h;
  m->slots[i].val = val;
  m->len++;
  return 0;
}

void *chat__hmap_del(chat__hmap_t *m, const char *key, size_t klen) {
  if (m->len == 0)
    return NULL;
  int found;
  size_t i = find(m, key, klen, hash_bytes(key, klen), &found);
  if (!found)
    return NULL;
  void *val = m->slots[i].val;
  size_t mask = m->cap - 1;
  /* Backward shift: move later entries of the run into the hole when their
   * home slot is not between the hole and where they sit. */
  size_t j = i;
  for (;;) {
    m->slots[i].key = NULL;
    for (;;) {
      j = (j + 1) & mask;
      if (m->slots[j].key == NULL) {
        m->len--;
        return val;
      }
      size_t home = m->slots[j].hash & mask;
      if ((j > i && (home <= i || home > j)) ||
          (j < i && (home <= i && home > j)))
        break;
    }
    m->slots[i] = m->slots[j];
    i = j;
  }
}

void *chat__hmap_next(const chat__hmap_t *m, size_t *pos) {
  while (*pos < m->cap) {
    const chat__hmap_slot_t *s = &m->slots[(*pos)++];
    if (s->key)
      return s->val;
  }
  return NULL;
}
