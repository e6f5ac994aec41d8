/* utf8.c -- UTF-8 well-formedness, as RFC 3629 and jansson define it. */
#include "protocol_int.h"

/* Length of the well-formed sequence at s[0..len), or 0 when it is not one. */
static size_t seq_len(const unsigned char *s, size_t len) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t n;

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0; /* continuation byte, overlong lead C0/C1, or beyond U+10FFFF */
  if (n > len)
    return 0;
  /* The second byte's range rules out overlongs, surrogates and > U+10FFFF. */
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

size_t chat__utf8_seq(const char *s, size_t len) {
  return seq_len((const unsigned char *)s, len);
}

size_t chat__utf8_prefix(const char *s, size_t len, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = len < max ? len : max, k = n;

  /* Find the lead byte of the last sequence; drop that sequence when it is
   * incomplete within the first n bytes. */
  while (k > 0 && n - k < 4 && (p[k - 1] & 0xC0) == 0x80)
    k--;
  if (k > 0 && p[k - 1] >= 0xC0 && seq_len(p + k - 1, n - k + 1) != n - k + 1)
    return k - 1;
  return n;
}

int chat__utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, n;

  while (i < len) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    n = seq_len(p + i, len - i);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}
