/* lines.c -- the hot outgoing frames written straight into a buffer.
 *
 * deliver, receipt and the ok of a send go out once or more per message;
 * building a jansson object and dumping it costs a malloc per field and a
 * callback per token. These writers produce the same bytes as
 * chat_frame_encode does for the builders of build.c (jansson's compact
 * form: no spaces, keys in insertion order, only '"', '\\' and control
 * bytes escaped, \uXXXX in upper case for controls without a short form),
 * which test_lines.c checks against the real thing.
 */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <errno.h>
#include <string.h>

/* The longest name, msg_id or state taken (valid ones have at most 64). */
#define PLAIN_MAX 128
/* Room for every fixed part of any line written here with three strings of
 * PLAIN_MAX bytes and a string id of CHAT_MAX_ID_STRING bytes escaped
 * six-fold, with room to spare: so the caller needs no sums of its own. */
#define LINE_FIXED 1024

size_t chat_line_max(size_t body_len) {
  return LINE_FIXED + 6 * body_len;
}

/* Nonzero when s can go between quotes as it is, and is not too long. */
static int plain(const char *s, size_t *len) {
  size_t n = 0;

  if (s == NULL)
    return 0;
  for (; s[n] != '\0'; n++)
    if (n >= PLAIN_MAX || (unsigned char)s[n] < 0x20 ||
        (unsigned char)s[n] > 0x7e || s[n] == '"' || s[n] == '\\')
      return 0;
  *len = n;
  return 1;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_i64(char *p, int64_t v) {
  char tmp[24];
  size_t n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0)
    *p++ = '-';
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

/* s[0..n) as the inside of a JSON string, the way jansson escapes it. Runs
 * that need no escape are copied whole. */
static char *put_escaped(char *p, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t run = 0;

  for (size_t i = 0; i < n; i++) {
    /* Skip whole words with nothing to escape (most text is all of it). */
    while (i + 8 <= n && chat__json_special8(chat__load8(s + i)) == 0)
      i += 8;
    if (i >= n)
      break;
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    p = put(p, s + run, i - run);
    run = i + 1;
    *p++ = '\\';
    switch (c) {
    case '"': *p++ = '"'; break;
    case '\\': *p++ = '\\'; break;
    case '\b': *p++ = 'b'; break;
    case '\f': *p++ = 'f'; break;
    case '\n': *p++ = 'n'; break;
    case '\r': *p++ = 'r'; break;
    case '\t': *p++ = 't'; break;
    default:
      p = PUT_LIT(p, "u00");
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
      break;
    }
  }
  return put(p, s + run, n - run);
}

size_t chat_json_escaped_len(const char *s, size_t n) {
  size_t len = n;
  for (size_t i = 0; i < n; i++) {
    while (i + 8 <= n && chat__json_special8(chat__load8(s + i)) == 0)
      i += 8;
    if (i >= n)
      break;
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
        c == '\r' || c == '\t')
      len += 1;
    else if (c < 0x20)
      len += 5;
  }
  return len;
}

size_t chat_line_deliver_len(const char *from, const char *group,
                             const char *msg_id, size_t body_escaped_len) {
  /* The same parts chat_line_deliver writes, with the longest ts (19
   * digits) and offline false, so the answer holds whenever it goes out. */
  size_t n = sizeof("{\"type\":\"deliver\"") - 1;
  if (group != NULL)
    n += sizeof(",\"group\":\"\"") - 1 + strlen(group);
  n += sizeof(",\"from\":\"\"") - 1 + strlen(from);
  n += sizeof(",\"msg_id\":\"\"") - 1 + strlen(msg_id);
  n += sizeof(",\"body\":\"") - 1 + body_escaped_len;
  n += sizeof("\",\"ts\":") - 1 + 19;
  n += sizeof(",\"offline\":false}\n") - 1;
  return n;
}

static char *put_key_str(char *p, const char *key, size_t klen,
                         const char *v, size_t vlen) {
  *p++ = ',';
  *p++ = '"';
  p = put(p, key, klen);
  p = PUT_LIT(p, "\":\"");
  p = put(p, v, vlen);
  *p++ = '"';
  return p;
}

#define KEY_STR(p, key, v, vlen) put_key_str((p), key, sizeof(key) - 1, v, vlen)

int chat_line_deliver(char *out, size_t cap, const char *from,
                      const char *group, const char *msg_id, const char *body,
                      size_t body_len, int64_t ts, int offline) {
  size_t nf, ng = 0, nm;
  char *p = out;

  if (!plain(from, &nf) || !plain(msg_id, &nm) ||
      (group != NULL && !plain(group, &ng)) || body == NULL)
    return -EINVAL;
  if (cap < chat_line_max(body_len))
    return -ENOBUFS;
  p = PUT_LIT(p, "{\"type\":\"deliver\"");
  if (group != NULL)
    p = KEY_STR(p, "group", group, ng);
  p = KEY_STR(p, "from", from, nf);
  p = KEY_STR(p, "msg_id", msg_id, nm);
  p = PUT_LIT(p, ",\"body\":\"");
  p = put_escaped(p, body, body_len);
  p = PUT_LIT(p, "\",\"ts\":");
  p = put_i64(p, ts);
  if (offline)
    p = PUT_LIT(p, ",\"offline\":true}\n");
  else
    p = PUT_LIT(p, ",\"offline\":false}\n");
  return (int)(p - out);
}

int chat_line_receipt(char *out, size_t cap, const char *msg_id,
                      const char *to, const char *state) {
  size_t nm, nt, ns;
  char *p = out;

  if (!plain(msg_id, &nm) || !plain(to, &nt) || !plain(state, &ns))
    return -EINVAL;
  if (cap < chat_line_max(0))
    return -ENOBUFS;
  p = PUT_LIT(p, "{\"type\":\"receipt\"");
  p = KEY_STR(p, "msg_id", msg_id, nm);
  p = KEY_STR(p, "to", to, nt);
  p = KEY_STR(p, "state", state, ns);
  p = PUT_LIT(p, "}\n");
  return (int)(p - out);
}

int chat_line_send_ok(char *out, size_t cap, const json_t *id,
                      const char *msg_id, const char *status) {
  size_t nm, ns, nid = 0;
  char *p = out;

  if (!plain(msg_id, &nm) || !plain(status, &ns))
    return -EINVAL;
  if (id != NULL && json_is_string(id))
    nid = json_string_length(id);
  else if (id != NULL && !json_is_integer(id))
    return -EINVAL;
  if (nid > CHAT_MAX_ID_STRING)
    return -EINVAL;
  if (cap < chat_line_max(0))
    return -ENOBUFS;
  p = PUT_LIT(p, "{\"type\":\"ok\"");
  if (id != NULL && json_is_string(id)) {
    p = PUT_LIT(p, ",\"id\":\"");
    p = put_escaped(p, json_string_value(id), nid);
    *p++ = '"';
  } else if (id != NULL) {
    p = PUT_LIT(p, ",\"id\":");
    p = put_i64(p, json_integer_value(id));
  }
  p = KEY_STR(p, "msg_id", msg_id, nm);
  p = KEY_STR(p, "status", status, ns);
  p = PUT_LIT(p, "}\n");
  return (int)(p - out);
}
