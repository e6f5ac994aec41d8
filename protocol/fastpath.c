/* fastpath.c -- the hot frames without jansson: a scanner for flat JSON
 * objects and, on top of it, the server's send, ack and group_send.
 *
 * The rule that keeps this safe: accept only what chat_frame_parse plus
 * chat_msg_decode would accept, with the same values, and decline everything
 * else. A declined line goes the full way, so every error, its code and its
 * text stay those of the full path; the fast path never reports an error.
 * It therefore does not try to be clever: nesting, null, reals, negative or
 * long numbers, \u escapes, escaped keys, duplicate keys and unknown keys
 * are all declined, not handled. tests/unit/protocol/test_fastpath.c runs
 * both paths over the corpora and checks that they agree.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <string.h>

/* Digits in an integer the scanner takes: 10^17 - 1 fits int64 with room,
 * and covers every integer a hot frame carries (ids, ts). */
#define FAST_MAX_DIGITS 17

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && is_ws(*p))
    p++;
  return p;
}

/* A string whose opening quote is at p[-1]: fills f (raw, raw_len, len,
 * escaped) and returns the byte after the closing quote, or NULL to decline.
 * Accepts exactly the escapes that decode to themselves or to one control
 * byte; rejects what jansson rejects (control bytes, bad UTF-8). */
static const char *scan_string(const char *p, const char *end,
                               chat_fast_field_t *f) {
  size_t escapes = 0;

  f->raw = p;
  while (p < end) {
    /* Whole words of plain ASCII: nothing to decode or validate. */
    while (end - p >= 8) {
      uint64_t v = chat__load8(p);
      if ((v & CHAT__HIGHS) != 0 || chat__json_special8(v) != 0)
        break;
      p += 8;
    }
    if (p >= end)
      break;
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      f->raw_len = (size_t)(p - f->raw);
      f->len = f->raw_len - escapes;
      f->escaped = escapes > 0;
      f->kind = CHAT_FAST_STRING;
      return p + 1;
    }
    if (c == '\\') {
      if (p + 1 >= end)
        return NULL;
      switch (p[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
      case 't':
        break;
      default:
        return NULL; /* \u (maybe U+0000 or a surrogate) or invalid */
      }
      escapes++;
      p += 2;
      continue;
    }
    if (c < 0x20)
      return NULL;
    if (c >= 0x80) {
      size_t n = chat__utf8_seq(p, (size_t)(end - p));
      if (n == 0)
        return NULL;
      p += n;
      continue;
    }
    p++;
  }
  return NULL; /* unterminated */
}

/* A non-negative integer in canonical form (no leading zero, no sign, no
 * fraction or exponent, at most FAST_MAX_DIGITS digits). */
static const char *scan_int(const char *p, const char *end,
                            chat_fast_field_t *f) {
  const char *start = p;
  int64_t v = 0;

  while (p < end && *p >= '0' && *p <= '9') {
    if (p - start >= FAST_MAX_DIGITS)
      return NULL;
    v = v * 10 + (*p - '0');
    p++;
  }
  if (p == start || (start[0] == '0' && p - start > 1))
    return NULL;
  /* A real, an exponent or junk glued to the digits: the full path decides. */
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || *p == '-' ||
                  *p == '+' || (*p >= '0' && *p <= '9')))
    return NULL;
  f->kind = CHAT_FAST_INT;
  f->raw = start;
  f->raw_len = (size_t)(p - start);
  f->num = v;
  return p;
}

static const char *scan_word(const char *p, const char *end, const char *w,
                             size_t n) {
  if ((size_t)(end - p) < n || memcmp(p, w, n) != 0)
    return NULL;
  p += n;
  /* "truex" is no literal: jansson reads it as one invalid token. */
  if (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9')))
    return NULL;
  return p;
}

static const char *scan_value(const char *p, const char *end,
                              chat_fast_field_t *f) {
  if (p >= end)
    return NULL;
  if (*p == '"')
    return scan_string(p + 1, end, f);
  if (*p >= '0' && *p <= '9')
    return scan_int(p, end, f);
  f->kind = CHAT_FAST_BOOL;
  f->raw = p;
  f->num = *p == 't';
  f->raw_len = f->num ? 4 : 5;
  /* Anything else -- null, a negative number, an array, an object, junk --
   * is declined. */
  return scan_word(p, end, f->num ? "true" : "false", f->raw_len);
}

int chat_fast_scan(const char *line, size_t len, chat_fast_field_t *fields,
                   int max) {
  const char *p = line, *end = line + len;
  int n = 0;

  p = skip_ws(p, end);
  if (p >= end || *p != '{')
    return -1;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') {
    p++;
  } else {
    for (;;) {
      chat_fast_field_t key, *f;
      if (n >= max || p >= end || *p != '"')
        return -1;
      if ((p = scan_string(p + 1, end, &key)) == NULL || key.escaped)
        return -1;
      for (int i = 0; i < n; i++)
        if (fields[i].key_len == key.raw_len &&
            memcmp(fields[i].key, key.raw, key.raw_len) == 0)
          return -1; /* a duplicate: bad_json on the full path */
      f = &fields[n];
      memset(f, 0, sizeof(*f));
      f->key = key.raw;
      f->key_len = key.raw_len;
      p = skip_ws(p, end);
      if (p >= end || *p != ':')
        return -1;
      p = skip_ws(p + 1, end);
      if ((p = scan_value(p, end, f)) == NULL)
        return -1;
      n++;
      p = skip_ws(p, end);
      if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
        continue;
      }
      if (p < end && *p == '}') {
        p++;
        break;
      }
      return -1;
    }
  }
  return skip_ws(p, end) == end ? n : -1;
}

void chat_fast_unescape(const chat_fast_field_t *f, char *out) {
  const char *p = f->raw, *end = f->raw + f->raw_len;

  if (!f->escaped) {
    memcpy(out, p, f->raw_len);
    return;
  }
  while (p < end) {
    const char *bs = memchr(p, '\\', (size_t)(end - p));
    size_t run = (size_t)((bs ? bs : end) - p);
    memcpy(out, p, run);
    out += run;
    if (bs == NULL)
      break;
    switch (bs[1]) {
    case 'b': *out++ = '\b'; break;
    case 'f': *out++ = '\f'; break;
    case 'n': *out++ = '\n'; break;
    case 'r': *out++ = '\r'; break;
    case 't': *out++ = '\t'; break;
    default: *out++ = bs[1]; break; /* " \ / */
    }
    p = bs + 2;
  }
}

/* ---- The server's hot requests ---------------------------------------- */

static int key_is(const chat_fast_field_t *f, const char *key) {
  size_t n = strlen(key);
  return f->key_len == n && memcmp(f->key, key, n) == 0;
}

/* A plain (unescaped) string field that passes rule into dst (size bytes). */
static int take_plain(const chat_fast_field_t *f,
                      int (*rule)(const char *, size_t), char *dst,
                      size_t size) {
  if (f->kind != CHAT_FAST_STRING || f->escaped || f->raw_len >= size ||
      !rule(f->raw, f->raw_len))
    return -1;
  memcpy(dst, f->raw, f->raw_len);
  dst[f->raw_len] = '\0';
  return 0;
}

static int take_id(const chat_fast_field_t *f, chat_fast_req_t *req) {
  if (f->kind == CHAT_FAST_INT) {
    if (f->num > CHAT_MAX_ID_INT)
      return -1;
    req->id_kind = CHAT_FAST_INT;
    req->id_num = f->num;
    return 0;
  }
  /* A string id is echoed in the reply: only one without escapes, whose
   * raw bytes are already what jansson would write back. */
  if (f->kind != CHAT_FAST_STRING || f->escaped ||
      f->raw_len > CHAT_MAX_ID_STRING)
    return -1;
  req->id_kind = CHAT_FAST_STRING;
  req->id_str = f->raw;
  req->id_len = f->raw_len;
  return 0;
}

static chat_type_t hot_type(const chat_fast_field_t *f) {
  if (f->kind != CHAT_FAST_STRING || f->escaped)
    return CHAT_T_NONE;
  if (f->raw_len == 4 && memcmp(f->raw, "send", 4) == 0)
    return CHAT_T_SEND;
  if (f->raw_len == 3 && memcmp(f->raw, "ack", 3) == 0)
    return CHAT_T_ACK;
  if (f->raw_len == 10 && memcmp(f->raw, "group_send", 10) == 0)
    return CHAT_T_GROUP_SEND;
  return CHAT_T_NONE;
}

int chat_fast_request(const char *line, size_t len, chat_fast_req_t *req) {
  chat_fast_field_t fields[CHAT_FAST_MAX_FIELDS];
  int n = chat_fast_scan(line, len, fields, CHAT_FAST_MAX_FIELDS);
  unsigned seen = 0, want;
  enum { F_TYPE = 1, F_TO = 2, F_GROUP = 4, F_FROM = 8, F_MSG_ID = 16,
         F_BODY = 32 };

  memset(req, 0, sizeof(*req));
  if (n < 0)
    return 0;
  for (int i = 0; i < n; i++)
    if (key_is(&fields[i], "type")) {
      req->type = hot_type(&fields[i]);
      seen |= F_TYPE;
    }
  switch (req->type) {
  case CHAT_T_SEND: want = F_TYPE | F_TO | F_MSG_ID | F_BODY; break;
  case CHAT_T_ACK: want = F_TYPE | F_FROM | F_MSG_ID; break;
  case CHAT_T_GROUP_SEND: want = F_TYPE | F_GROUP | F_MSG_ID | F_BODY; break;
  default: return 0;
  }

  for (int i = 0; i < n; i++) {
    const chat_fast_field_t *f = &fields[i];
    unsigned bit;
    int rc;
    if (key_is(f, "type"))
      continue;
    if (key_is(f, "id")) {
      if (take_id(f, req) < 0)
        return 0;
      continue;
    }
    if (key_is(f, "to")) {
      bit = F_TO;
      rc = take_plain(f, chat__name_validn, req->to, sizeof(req->to));
    } else if (key_is(f, "group")) {
      bit = F_GROUP;
      rc = take_plain(f, chat__name_validn, req->group, sizeof(req->group));
    } else if (key_is(f, "from")) {
      bit = F_FROM;
      rc = take_plain(f, chat__name_validn, req->from, sizeof(req->from));
    } else if (key_is(f, "msg_id")) {
      bit = F_MSG_ID;
      rc = take_plain(f, chat__msg_id_validn, req->msg_id,
                      sizeof(req->msg_id));
    } else if (key_is(f, "body")) {
      bit = F_BODY;
      /* \u is never accepted, so no escape can make a U+0000. */
      rc = f->kind == CHAT_FAST_STRING && f->len >= 1 &&
                   f->len <= CHAT_MAX_BODY
               ? 0
               : -1;
      req->body = *f;
    } else {
      return 0; /* unknown to this type: the full path ignores or refuses */
    }
    if (rc < 0 || !(want & bit))
      return 0;
    seen |= bit;
  }
  return seen == want;
}
