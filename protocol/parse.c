/* parse.c -- one line to one JSON object, with every bad_json rule.
 *
 * A cheap pre-scan runs before jansson: it rejects NUL bytes, malformed UTF-8
 * and nesting deeper than CHAT_MAX_DEPTH (so a line of 10000 '[' costs one pass
 * and no recursion), and spots integer literals beyond int64. jansson then
 * parses with duplicate keys rejected and trailing garbage an error.
 *
 * Integers beyond int64: PROTOCOL.md makes bad_json only "a number that fits
 * neither a 64-bit integer nor a double", so 99999999999999999999 is a valid
 * frame. jansson rejects such a literal ("too big integer"), so the line is
 * copied with ".0" after each such literal and parsed again: the number then
 * arrives as a real (1e20). A literal beyond the double range stays bad_json.
 * No protocol field accepts a real, so such a number can only ever be an
 * ignored unknown field or a bad_request, never a silently rounded value.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <errno.h>
#include <string.h>

#define INT64_DIGITS 19

struct scan {
  int depth_exceeded;
  int big_int;        /* an integer literal beyond int64 was seen */
  size_t bad_at;      /* offset of a NUL or malformed UTF-8 */
  int bad_what;       /* 0 none, 1 NUL, 2 UTF-8 */
};

static int is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
         c == 'e' || c == 'E';
}

/* Does the number token s[0..n) spell an integer outside int64? */
static int int_literal_overflows(const char *s, size_t n) {
  int neg = 0;

  for (size_t i = 0; i < n; i++)
    if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
      return 0;
  if (n > 0 && s[0] == '-') {
    neg = 1;
    s++;
    n--;
  }
  if (n != INT64_DIGITS)
    return n > INT64_DIGITS;
  return memcmp(s, neg ? "9223372036854775808" : "9223372036854775807",
                INT64_DIGITS) > 0;
}

/* One pass over the line outside jansson. Returns 0 or -1 (see s->bad_what
 * and s->depth_exceeded). */
static int prescan(const char *line, size_t len, struct scan *s) {
  int in_string = 0, depth = 0;
  size_t i = 0;

  memset(s, 0, sizeof(*s));
  while (i < len) {
    unsigned char c = (unsigned char)line[i];
    if (c == 0) {
      s->bad_what = 1;
      s->bad_at = i;
      return -1;
    }
    if (c >= 0x80) {
      size_t n = chat__utf8_seq(line + i, len - i);
      if (n == 0) {
        s->bad_what = 2;
        s->bad_at = i;
        return -1;
      }
      i += n;
      continue;
    }
    if (in_string) {
      if (c == '"')
        in_string = 0;
      else if (c == '\\' && i + 1 < len && (unsigned char)line[i + 1] < 0x80 &&
               line[i + 1] != 0)
        i++; /* the escaped byte cannot end the string */
      i++;
      continue;
    }
    if (c == '"') {
      in_string = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > CHAT_MAX_DEPTH) {
        s->depth_exceeded = 1;
        return -1;
      }
    } else if (c == ']' || c == '}') {
      if (depth > 0)
        depth--;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      while (i < len && is_number_char(line[i]))
        i++;
      if (int_literal_overflows(line + start, i - start))
        s->big_int = 1;
      continue;
    }
    i++;
  }
  return 0;
}

/* A copy of line with ".0" after each integer literal beyond int64, so that
 * jansson reads it as a real. The caller frees it with chat__free(). */
static char *widen_big_ints(const char *line, size_t len, size_t *out_len) {
  size_t cap = len + 2 * (len / INT64_DIGITS + 1), n = 0, i = 0;
  char *out = chat__malloc(cap);
  int in_string = 0;

  if (out == NULL)
    return NULL;
  while (i < len) {
    char c = line[i];
    if (in_string) {
      out[n++] = c;
      if (c == '"')
        in_string = 0;
      else if (c == '\\' && i + 1 < len)
        out[n++] = line[++i];
      i++;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      while (i < len && is_number_char(line[i]))
        i++;
      memcpy(out + n, line + start, i - start);
      n += i - start;
      if (int_literal_overflows(line + start, i - start)) {
        out[n++] = '.';
        out[n++] = '0';
      }
    } else {
      if (c == '"')
        in_string = 1;
      out[n++] = c;
      i++;
    }
  }
  *out_len = n;
  return out;
}

static const char *kind_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  default: return "not an object";
  }
}

int chat_frame_parse(const char *line, size_t len, json_t **out,
                     chat_error_t *err) {
  struct scan s;
  json_error_t jerr;
  json_t *obj;
  char *widened = NULL;
  size_t i;

  *out = NULL;
  if (err != NULL)
    memset(err, 0, sizeof(*err));
  for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
    ;
  if (i == len)
    return 1;

  if (prescan(line, len, &s) < 0) {
    if (s.depth_exceeded)
      return chat_error_set(err, CHAT_E_BAD_JSON, "",
                            "JSON nested deeper than %d levels",
                            CHAT_MAX_DEPTH);
    return chat_error_set(err, CHAT_E_BAD_JSON, "", "%s at byte %zu",
                          s.bad_what == 1 ? "NUL byte" : "invalid UTF-8",
                          s.bad_at);
  }
  if (s.big_int) {
    widened = widen_big_ints(line, len, &len);
    if (widened == NULL)
      return -ENOMEM;
    line = widened;
  }
  /* U+0000 ("\u0000") is legal JSON: it is decoded, and validation refuses
   * it by field (chat_msg_decode), so the error names what was wrong. */
  obj = json_loadb(line, len,
                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
                   &jerr);
  chat__free(widened);
  if (obj == NULL) {
    /* jansson reports some allocation failures as out_of_memory, some with
     * no text at all, and some as a syntax error near the token it could not
     * copy; only the first two can be told apart here. */
    if (json_error_code(&jerr) == json_error_out_of_memory ||
        jerr.text[0] == '\0')
      return -ENOMEM;
    /* jansson's own texts ("duplicate object key", "end of file expected",
     * "real number overflow"...) name the problem well enough. Positions in
     * a widened copy would mislead, so those go without. */
    if (s.big_int)
      return chat_error_set(err, CHAT_E_BAD_JSON, "", "invalid JSON: %s",
                            jerr.text);
    return chat_error_set(err, CHAT_E_BAD_JSON, "",
                          "invalid JSON: %s at byte %d", jerr.text,
                          jerr.position);
  }
  if (!json_is_object(obj)) {
    const char *what = kind_name(obj);
    json_decref(obj);
    return chat_error_set(err, CHAT_E_BAD_JSON, "",
                          "a frame must be a JSON object, not %s", what);
  }
  *out = obj;
  return 0;
}
