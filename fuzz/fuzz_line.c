/* fuzz_line.c -- one line: parse, decode for each role, reply, re-encode.
 *
 * Oracles: plain jansson (with duplicate keys rejected) must agree with
 * chat_frame_parse wherever the protocol does not deliberately differ (depth
 * over 32, integers beyond int64); an independent UTF-8 check; and the
 * round trip encode -> parse -> equal object, same decode result per role.
 * Replies the library builds from what it decoded must be frames the other
 * side accepts: a server that cannot build its error reply is a bug.
 */
#include "fuzz_line.h"

#include "chat_protocol.h"
#include "fuzz_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const chat_role_t roles[] = {CHAT_ROLE_SERVER, CHAT_ROLE_CLIENT,
                                    CHAT_ROLE_PEER};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* Calls that allocate through jansson may fail once, on purpose: then (and
 * only then) the same call is made again and must succeed. */
#define RETRY_NULL(var, expr)                                                 \
  do {                                                                        \
    unsigned f0_ = chat__fuzz_alloc_failures();                               \
    (var) = (expr);                                                           \
    if ((var) == NULL) {                                                      \
      FUZZ_CHECK(chat__fuzz_alloc_failures() != f0_);                         \
      (var) = (expr);                                                         \
      FUZZ_CHECK((var) != NULL);                                              \
    }                                                                         \
  } while (0)

/* Strict UTF-8 (RFC 3629), written apart from protocol/utf8.c on purpose. */
static int utf8_ok(const unsigned char *s, size_t n) {
  size_t i = 0;

  while (i < n) {
    unsigned c = s[i], need, cp, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i <= need)
      return 0;
    for (unsigned k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += need + 1;
  }
  return 1;
}

/* Nesting of arrays and objects: {} is 1, {"a":[]} is 2. */
static int depth(const json_t *v) {
  int best = 0, d;
  size_t i;
  const char *key;
  json_t *child;

  if (json_is_array(v)) {
    json_array_foreach(v, i, child) {
      if ((d = depth(child)) > best)
        best = d;
    }
    return best + 1;
  }
  if (json_is_object(v)) {
    json_object_foreach((json_t *)v, key, child) {
      if ((d = depth(child)) > best)
        best = d;
    }
    return best + 1;
  }
  return 0;
}

static int is_blank(const char *line, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (line[i] != ' ' && line[i] != '\t')
      return 0;
  return 1;
}

/* Known bug 1 (fuzz/README.md): jansson's lexer ignores a failed
 * allocation while it saves a token (lex_save() drops the result of
 * strbuffer_append_byte(): akheron/jansson#362, open upstream), so a failure
 * injected into json_loadb() can silently drop a byte of a string, or read
 * past its buffer. protocol/ cannot detect it, so parsing runs without
 * injected failures unless CHAT_FUZZ_KNOWN_BUGS=1. */
static int parse(const char *line, size_t len, json_t **obj,
                 chat_error_t *err) {
  unsigned f0 = chat__fuzz_alloc_failures();
  int shielded = !chat__fuzz_known_bugs(), rc;

  if (shielded)
    chat__fuzz_alloc_suspend();
  rc = chat_frame_parse(line, len, obj, err);
  /* An injected failure may surface as ENOMEM or (inside jansson) as some
   * other parse error; either way the retry tells the truth. */
  if (rc < 0 && chat__fuzz_alloc_failures() != f0)
    rc = chat_frame_parse(line, len, obj, err);
  if (shielded)
    chat__fuzz_alloc_resume();
  FUZZ_CHECK(rc != -ENOMEM);
  return rc;
}

/* chat_frame_parse's answer against plain jansson and the rules. */
static void check_parse(const char *line, size_t len, int rc,
                        const json_t *obj, const chat_error_t *err) {
  json_error_t jerr;
  json_t *j;

  if (is_blank(line, len)) {
    FUZZ_CHECK(rc == 1 && obj == NULL);
    return;
  }
  FUZZ_CHECK(rc == 0 || rc == -CHAT_E_BAD_JSON);
  if (rc < 0) {
    FUZZ_CHECK(obj == NULL);
    FUZZ_CHECK(err->code == CHAT_E_BAD_JSON && err->message[0] != '\0');
  } else {
    FUZZ_CHECK(json_is_object(obj) && err->code == 0);
    FUZZ_CHECK(memchr(line, '\0', len) == NULL);
    FUZZ_CHECK(utf8_ok((const unsigned char *)line, len));
    FUZZ_CHECK(depth(obj) <= CHAT_MAX_DEPTH);
  }

  /* jansson skips a raw NUL after a number ({"n":3<NUL>} loads), so it is
   * no oracle for such lines: the protocol says bad_json. */
  if (memchr(line, '\0', len) != NULL) {
    FUZZ_CHECK(rc < 0);
    return;
  }
  chat__fuzz_alloc_suspend();
  j = json_loadb(line, len,
                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (j != NULL) {
    if (json_is_object(j) && depth(j) <= CHAT_MAX_DEPTH)
      FUZZ_CHECK(rc == 0 && json_equal(j, obj));
    else
      FUZZ_CHECK(rc < 0);
    json_decref(j);
  } else if (rc == 0) {
    /* The one deliberate difference: an integer beyond int64 is a real. */
    FUZZ_CHECK(strstr(jerr.text, "too big") != NULL);
  }
  chat__fuzz_alloc_resume();
}

struct cmp_ctx {
  const char *want;
  size_t len, pos;
};

/* chat_frame_dump must write exactly what chat_frame_encode returned. */
static int compare_write(const char *buf, size_t len, void *ctx) {
  struct cmp_ctx *c = ctx;

  FUZZ_CHECK(len <= c->len - c->pos && memcmp(c->want + c->pos, buf, len) == 0);
  c->pos += len;
  return 0;
}

/* jansson's dump allocates (a hashtable that detects reference cycles);
 * an injected failure there must come back as -ENOMEM and a retry works
 * (fuzz/README.md, crash-encode-einval-on-oom). */
static void encode(const json_t *frame, char **buf, size_t *n) {
  unsigned f0 = chat__fuzz_alloc_failures();
  int rc = chat_frame_encode(frame, buf, n);

  if (rc != 0 && chat__fuzz_alloc_failures() != f0) {
    FUZZ_CHECK(rc == -ENOMEM);
    rc = chat_frame_encode(frame, buf, n);
  }
  FUZZ_CHECK(rc == 0);
}

/* Encodes frame as one line, checks its shape, parses it back into an equal
 * object and returns that (a new reference). */
static json_t *round_trip(const json_t *frame) {
  char *buf;
  size_t n;
  json_t *back = NULL;
  chat_error_t err;
  struct cmp_ctx cmp;
  unsigned f0;
  int rc;

  encode(frame, &buf, &n);
  FUZZ_CHECK(n >= 3 && buf[n - 1] == '\n' && buf[n] == '\0');
  FUZZ_CHECK(memchr(buf, '\n', n - 1) == NULL && strlen(buf) == n);
  cmp = (struct cmp_ctx){buf, n, 0};
  f0 = chat__fuzz_alloc_failures();
  rc = chat_frame_dump(frame, compare_write, &cmp);
  if (rc != 0 && chat__fuzz_alloc_failures() != f0) {
    FUZZ_CHECK(rc == -ENOMEM);
    cmp.pos = 0;
    rc = chat_frame_dump(frame, compare_write, &cmp);
  }
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(cmp.pos == n);
  FUZZ_CHECK(parse(buf, n - 1, &back, &err) == 0);
  FUZZ_CHECK(json_equal(frame, back));
  free(buf);
  return back;
}

static void check_reply(const json_t *reply, chat_role_t role,
                        chat_type_t type, int code, const json_t *id) {
  json_t *back = round_trip(reply);
  chat_msg_t m;
  chat_error_t err;

  FUZZ_CHECK(chat_msg_decode(back, role, &m, &err) == 0);
  FUZZ_CHECK(m.type == type);
  FUZZ_CHECK(id == NULL ? m.id == NULL : json_equal(id, m.id));
  if (type == CHAT_T_ERROR)
    FUZZ_CHECK(chat_code_from_name(m.code) == code);
  json_decref(back);
}

/* What a successful decode promises about the fields. */
static void check_fields(const json_t *obj, chat_role_t role,
                         const chat_msg_t *m) {
  const char *strs[] = {m->user, m->password, m->to, m->from, m->by,
                        m->msg_id, m->body, m->group, m->ticket, m->host,
                        m->p2p_host, m->reason, m->code, m->message,
                        m->state, m->server, m->key};
  size_t total = 0;
  /* An ok and a login take any string as user/to; elsewhere they are names. */
  int names = !(role == CHAT_ROLE_CLIENT && m->type == CHAT_T_OK);

  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    if (strs[i] != NULL)
      total += strlen(strs[i]); /* ASan: they must still be alive */
  (void)total;
  FUZZ_CHECK(m->type > CHAT_T_NONE && m->type < CHAT_T__COUNT);
  FUZZ_CHECK(strcmp(chat_type_name(m->type),
                    json_string_value(json_object_get(obj, "type"))) == 0);
  FUZZ_CHECK(json_object_get(obj, "id") == NULL || m->id != NULL);
  if (names && m->user != NULL &&
      !(role == CHAT_ROLE_SERVER && m->type == CHAT_T_LOGIN))
    FUZZ_CHECK(chat_name_valid(m->user));
  if (names) {
    FUZZ_CHECK(m->to == NULL || chat_name_valid(m->to));
    FUZZ_CHECK(m->from == NULL || chat_name_valid(m->from));
    FUZZ_CHECK(m->by == NULL || chat_name_valid(m->by));
    FUZZ_CHECK(m->group == NULL || chat_name_valid(m->group));
  }
  if (role == CHAT_ROLE_SERVER && m->type == CHAT_T_REGISTER)
    FUZZ_CHECK(chat_password_valid(m->password));
  FUZZ_CHECK(m->msg_id == NULL || chat_msg_id_valid(m->msg_id));
  FUZZ_CHECK(m->ticket == NULL || chat_ticket_valid(m->ticket));
  FUZZ_CHECK(m->key == NULL || chat_key_valid(m->key));
  if (m->body != NULL) {
    FUZZ_CHECK(chat_body_valid(m->body, m->body_len));
    FUZZ_CHECK(m->body_len ==
               json_string_length(json_object_get(obj, "body")));
  }
  FUZZ_CHECK(m->status >= CHAT_STATUS_NONE &&
             m->status <= CHAT_STATUS_OFFLINE);
  FUZZ_CHECK(m->offline >= -1 && m->offline <= 1);
  FUZZ_CHECK(m->p2p_port >= -1 && m->p2p_port <= 65535);
  FUZZ_CHECK(m->port >= -1 && m->port <= 65535);
  FUZZ_CHECK(m->ts >= -1);
}


/* What the receiving side would send back, built by the library. */
static void check_answers(chat_role_t role, int rc, const chat_msg_t *m,
                          const chat_error_t *err) {
  json_t *out;
  chat_msg_t d;
  chat_error_t derr;

  if (role == CHAT_ROLE_CLIENT)
    return; /* a client answers nothing it cannot parse */
  if (rc < 0) {
    RETRY_NULL(out, chat_reply_from_error(m->id, err));
    check_reply(out, role == CHAT_ROLE_SERVER ? CHAT_ROLE_CLIENT
                                              : CHAT_ROLE_PEER,
                CHAT_T_ERROR, err->code, m->id);
    json_decref(out);
    return;
  }
  if (role != CHAT_ROLE_SERVER)
    return;
  RETRY_NULL(out, chat_reply_ok(m->id));
  check_reply(out, CHAT_ROLE_CLIENT, CHAT_T_OK, 0, m->id);
  json_decref(out);
  if (m->type == CHAT_T_SEND || m->type == CHAT_T_GROUP_SEND) {
    /* What the server accepted, the recipient must accept as relayed. */
    json_t *back;
    RETRY_NULL(out, chat_ev_deliver("alice", m->group, m->msg_id, m->body,
                                    m->body_len, 1700000000000LL, 1));
    back = round_trip(out);
    FUZZ_CHECK(chat_msg_decode(back, CHAT_ROLE_CLIENT, &d, &derr) == 0);
    FUZZ_CHECK(d.type == CHAT_T_DELIVER && d.body_len == m->body_len);
    FUZZ_CHECK(memcmp(d.body, m->body, m->body_len) == 0);
    FUZZ_CHECK(strcmp(d.msg_id, m->msg_id) == 0 && d.offline == 1);
    json_decref(back);
    json_decref(out);
  }
}

static int decode(const json_t *obj, chat_role_t role) {
  chat_msg_t m;
  chat_error_t err;
  int rc = chat_msg_decode(obj, role, &m, &err);

  FUZZ_CHECK(rc == 0 || rc == -CHAT_E_BAD_REQUEST ||
             rc == -CHAT_E_UNKNOWN_TYPE);
  if (m.id != NULL)
    FUZZ_CHECK(m.id == json_object_get(obj, "id"));
  if (rc == 0) {
    FUZZ_CHECK(err.code == 0);
    check_fields(obj, role, &m);
  } else {
    FUZZ_CHECK(err.code == -rc && err.message[0] != '\0');
    FUZZ_CHECK(strlen(err.field) < sizeof(err.field));
  }
  check_answers(role, rc, &m, &err);
  return rc;
}

static void check_object(const json_t *obj) {
  int rcs[NROLES];
  json_t *back;

  for (size_t r = 0; r < NROLES; r++)
    rcs[r] = decode(obj, roles[r]);
  back = round_trip(obj);
  for (size_t r = 0; r < NROLES; r++) {
    chat_msg_t m;
    FUZZ_CHECK(chat_msg_decode(back, roles[r], &m, NULL) == rcs[r]);
  }
  json_decref(back);
}

void chat__fuzz_check_line(const char *line, size_t len) {
  json_t *obj = NULL;
  chat_error_t err;
  int rc = parse(line, len, &obj, &err);

  check_parse(line, len, rc, obj, &err);
  if (rc == 0)
    check_object(obj);
  json_decref(obj);
}
