/* protocol_int.h -- helpers shared by the protocol library's files; private. */
#ifndef CHAT_PROTOCOL_INT_H
#define CHAT_PROTOCOL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Nonzero when s[0..len) is well-formed UTF-8: no overlong forms, no
 * surrogates, nothing above U+10FFFF (the same rules jansson applies). */
int chat__utf8_valid(const char *s, size_t len);
/* Bytes in the well-formed sequence starting at s (len > 0), or 0. */
size_t chat__utf8_seq(const char *s, size_t len);
/* The longest prefix of s[0..len) of at most max bytes that does not end
 * inside a multi-byte sequence, so a cut string stays valid UTF-8. */
size_t chat__utf8_prefix(const char *s, size_t len, size_t max);

/* The rules of chat_protocol.h for strings that carry their own length, so a
 * NUL byte inside is caught rather than cutting the string short. */
int chat__name_validn(const char *s, size_t len);
int chat__msg_id_validn(const char *s, size_t len);
int chat__ticket_validn(const char *s, size_t len);
int chat__key_validn(const char *s, size_t len);
int chat__password_validn(const char *s, size_t len);

/* Eight bytes at a time (SWAR; the any-byte tests of "Bit Twiddling
 * Hacks", exact for "is there any"): the hot strings (message bodies) are
 * scanned a word per step until a word holds something to look at. */
#define CHAT__ONES 0x0101010101010101ULL
#define CHAT__HIGHS 0x8080808080808080ULL
static inline uint64_t chat__load8(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v)); /* unaligned, and no aliasing trouble */
  return v;
}
/* Nonzero when some byte of v is zero. */
static inline uint64_t chat__has_zero8(uint64_t v) {
  return (v - CHAT__ONES) & ~v & CHAT__HIGHS;
}
/* Zero when no byte of v is one JSON must escape: a control (< 0x20), '"'
 * or '\\'. Bytes of 0x80 and above need none. */
static inline uint64_t chat__json_special8(uint64_t v) {
  return ((v - CHAT__ONES * 0x20) & ~v & CHAT__HIGHS) |
         chat__has_zero8(v ^ (CHAT__ONES * '"')) |
         chat__has_zero8(v ^ (CHAT__ONES * '\\'));
}

/* Memory through jansson's allocator, so json_set_alloc_funcs() governs the
 * whole library (and tests can fail the Nth allocation). */
void *chat__malloc(size_t size);
void chat__free(void *ptr);

#endif /* CHAT_PROTOCOL_INT_H */
