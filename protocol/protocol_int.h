/* protocol_int.h -- helpers shared by the protocol library's files; private. */
#ifndef CHAT_PROTOCOL_INT_H
#define CHAT_PROTOCOL_INT_H

#include <stddef.h>

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

/* Memory through jansson's allocator, so json_set_alloc_funcs() governs the
 * whole library (and tests can fail the Nth allocation). */
void *chat__malloc(size_t size);
void chat__free(void *ptr);

#endif /* CHAT_PROTOCOL_INT_H */
