/* test_fastpath.c -- the fast path against the full path (chat_frame_parse
 * plus chat_msg_decode), over every line of both corpora and many generated
 * variants: whenever the fast path accepts a line, the full path must accept
 * it too and find exactly the same members and values. Declining is always
 * allowed; a few lines that it must take are checked as well, so a scanner
 * that declined everything would fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "corpus.h"

static long g_lines, g_scanned, g_requests;

/* ---- the comparison ---------------------------------------------------- */

static void check_string(const chat_fast_field_t *f, const json_t *v) {
  char *dec;

  assert_non_null(v);
  assert_true(json_is_string(v));
  assert_int_equal(f->len, json_string_length(v));
  dec = malloc(f->len + 1);
  assert_non_null(dec);
  chat_fast_unescape(f, dec);
  assert_memory_equal(dec, json_string_value(v), f->len);
  free(dec);
}

/* The generic scanner: accepted means parsed, with the same members. */
static void check_scan(const char *line, size_t len) {
  chat_fast_field_t fields[CHAT_FAST_MAX_FIELDS];
  int n = chat_fast_scan(line, len, fields, CHAT_FAST_MAX_FIELDS);
  json_t *obj = NULL;
  chat_error_t err;
  int rc;

  if (n < 0)
    return;
  g_scanned++;
  rc = chat_frame_parse(line, len, &obj, &err);
  if (rc != 0)
    fail_msg("fast scan took a line the full parse refuses (%d: %s): %.*s",
             rc, err.message, (int)len, line);
  assert_int_equal(json_object_size(obj), (size_t)n);
  for (int i = 0; i < n; i++) {
    const chat_fast_field_t *f = &fields[i];
    char key[256];
    const json_t *v;
    assert_true(f->key_len < sizeof(key));
    memcpy(key, f->key, f->key_len);
    key[f->key_len] = '\0';
    v = json_object_get(obj, key);
    assert_non_null(v);
    switch (f->kind) {
    case CHAT_FAST_STRING: check_string(f, v); break;
    case CHAT_FAST_INT:
      assert_true(json_is_integer(v));
      assert_true(json_integer_value(v) == f->num);
      break;
    case CHAT_FAST_BOOL:
      assert_true(json_is_boolean(v));
      assert_int_equal(json_is_true(v), (int)f->num);
      break;
    default: fail_msg("kind %d", f->kind);
    }
  }
  json_decref(obj);
}

static void check_name(const char *fast, const char *full) {
  if (full == NULL)
    assert_string_equal(fast, "");
  else
    assert_string_equal(fast, full);
}

/* The request: accepted means decoded (role SERVER) to the same message. */
static void check_request(const char *line, size_t len) {
  chat_fast_req_t req;
  json_t *obj = NULL;
  chat_msg_t m;
  chat_error_t err;
  int rc;

  g_lines++;
  check_scan(line, len);
  if (!chat_fast_request(line, len, &req))
    return;
  g_requests++;
  rc = chat_frame_parse(line, len, &obj, &err);
  if (rc == 0)
    rc = chat_msg_decode(obj, CHAT_ROLE_SERVER, &m, &err);
  if (rc != 0)
    fail_msg("fast path took a request the full path refuses (%d: %s): "
             "%.*s", rc, err.message, (int)len, line);
  assert_int_equal(req.type, m.type);
  if (req.id_kind == CHAT_FAST_NONE) {
    assert_null(m.id);
  } else if (req.id_kind == CHAT_FAST_INT) {
    assert_true(json_is_integer(m.id));
    assert_true(json_integer_value(m.id) == req.id_num);
  } else {
    assert_true(json_is_string(m.id));
    assert_int_equal(req.id_len, json_string_length(m.id));
    assert_memory_equal(req.id_str, json_string_value(m.id), req.id_len);
  }
  check_name(req.to, m.to);
  check_name(req.group, m.group);
  check_name(req.from, m.from);
  check_name(req.msg_id, m.msg_id);
  if (m.body == NULL) {
    assert_int_equal(req.body.kind, CHAT_FAST_NONE);
  } else {
    char *dec = malloc(req.body.len + 1);
    assert_non_null(dec);
    assert_int_equal(req.body.len, m.body_len);
    chat_fast_unescape(&req.body, dec);
    assert_memory_equal(dec, m.body, m.body_len);
    free(dec);
  }
  json_decref(obj);
}

/* ---- corpora ------------------------------------------------------------ */

/* Every line of a byte stream, split as a connection splits it. */
static void check_stream(const char *data, size_t len) {
  chat_decoder_t d;
  const char *line;
  size_t n;

  chat_decoder_init(&d, 0);
  chat_decoder_feed(&d, data, len);
  while (chat_decoder_next(&d, &line, &n) == 1)
    check_request(line, n);
  chat_decoder_free(&d);
}

static long each_input(const char *dir) {
  size_t n;
  char **names = corpus_cases(dir, &n);
  long count = 0;

  for (size_t i = 0; i < n; i++) {
    char path[512];
    size_t len;
    char *data;
    snprintf(path, sizeof(path), "%s/%s/input", dir, names[i]);
    if ((data = corpus_read(path, &len)) == NULL)
      continue;
    check_stream(data, len);
    free(data);
    count++;
  }
  corpus_cases_free(names, n);
  return count;
}

static void test_corpora(void **state) {
  long before = g_requests;
  assert_true(each_input("messages") > 600);
  assert_true(each_input("frames") > 60);
  /* The corpus holds valid sends, acks and group_sends: some must have
   * taken the fast path, or this test would prove nothing. */
  assert_true(g_requests - before >= 10);
}

/* ---- generated variants ------------------------------------------------ */

static const char *const bases[] = {
  "{\"type\":\"send\",\"id\":7,\"to\":\"bob\",\"msg_id\":\"m-1\",\"body\":\"hi\"}",
  "{\"type\":\"send\",\"id\":\"r1\",\"to\":\"b.o_b-9\",\"msg_id\":\"A_z-09\","
  "\"body\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti \xc3\xa9 \xe2\x82\xac "
  "\xf0\x9f\x98\x80\"}",
  " { \"type\" : \"ack\" , \"msg_id\" : \"x\" , \"from\" : \"alice\" } \t",
  "{\"type\":\"group_send\",\"group\":\"g1\",\"msg_id\":\"k\",\"body\":\"[{}]\","
  "\"id\":9007199254740991}",
  "{\"id\":0,\"msg_id\":\"q\",\"from\":\"z\",\"type\":\"ack\"}",
  "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\","
  "\"flag\":true,\"n\":12}",
  "{\"a\":false,\"b\":1,\"c\":\"\",\"d\":true}",
};

static const char mutations[] = "\"\\{}[],: 0-1.eEu/\x80\xff\xc3\x01\tnbtf";

static void check_buf(const char *s, size_t n) { check_request(s, n); }

static void test_variants(void **state) {
  char buf[512];
  long accepted_bases = g_requests;

  for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
    const char *base = bases[b];
    size_t n = strlen(base);
    assert_true(n + 2 < sizeof(buf));
    check_buf(base, n);
    for (size_t i = 0; i < n; i++) {
      /* delete byte i */
      memcpy(buf, base, i);
      memcpy(buf + i, base + i + 1, n - i - 1);
      check_buf(buf, n - 1);
      /* replace it, and insert before it, with each interesting byte */
      for (size_t k = 0; k < sizeof(mutations) - 1; k++) {
        memcpy(buf, base, n);
        buf[i] = mutations[k];
        check_buf(buf, n);
        memcpy(buf, base, i);
        buf[i] = mutations[k];
        memcpy(buf + i + 1, base + i, n - i);
        check_buf(buf, n + 1);
      }
      /* a NUL byte */
      memcpy(buf, base, n);
      buf[i] = '\0';
      check_buf(buf, n);
      /* cut short */
      check_buf(base, i);
    }
  }
  /* The valid bases with only hot fields (the first five) are taken. */
  assert_true(g_requests - accepted_bases >= 5);

  /* Random multi-byte mutations, reproducible. */
  unsigned long seed = 12345;
  for (int round = 0; round < 200000; round++) {
    const char *base = bases[round % 5];
    size_t n = strlen(base);
    memcpy(buf, base, n);
    for (int k = 0; k < 1 + round % 3; k++) {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      size_t at = (seed >> 33) % n;
      buf[at] = mutations[(seed >> 20) % (sizeof(mutations) - 1)];
    }
    check_buf(buf, n);
  }
}

/* Lines it must take, and lines it must leave to the full path although
 * they are valid (the full path gives the same answer either way). */
static void test_takes_and_declines(void **state) {
  static const char *const take[] = {
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\"}",
    "{\"type\":\"ack\",\"msg_id\":\"m\",\"from\":\"bob\",\"id\":\"\"}",
    "{\"type\":\"group_send\",\"group\":\"g\",\"msg_id\":\"m\",\"body\":\"\\n\"}",
  };
  static const char *const decline[] = {
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"\\u0041\"}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\",\"x\":1}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\","
    "\"id\":\"a\\/b\"}",
    "{\"type\":\"ping\"}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\","
    "\"id\":1.0}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\","
    "\"id\":12345678901234567}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\","
    "\"id\":9007199254740992}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"\"}",
    "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\",\"body\":\"x\"}x",
    "{\"type\":\"send\",\"to\":\"bob\",\"to\":\"bob\",\"msg_id\":\"m\","
    "\"body\":\"x\"}",
    "{\"type\":\"ack\",\"msg_id\":\"m\",\"from\":\"bob\",\"body\":\"x\"}",
  };
  chat_fast_req_t req;

  for (size_t i = 0; i < sizeof(take) / sizeof(take[0]); i++) {
    assert_int_equal(chat_fast_request(take[i], strlen(take[i]), &req), 1);
    check_request(take[i], strlen(take[i]));
  }
  for (size_t i = 0; i < sizeof(decline) / sizeof(decline[0]); i++) {
    if (chat_fast_request(decline[i], strlen(decline[i]), &req) != 0)
      fail_msg("took %s", decline[i]);
  }
}

/* The body limit counts decoded bytes: 16384 escaped newlines are 32768
 * raw bytes and still a valid body; one more is too long. */
static void test_body_limit(void **state) {
  const char *head = "{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"m\","
                     "\"body\":\"";
  size_t hl = strlen(head);
  char *line = malloc(hl + 2 * (CHAT_MAX_BODY + 1) + 8);
  chat_fast_req_t req;
  size_t n;

  assert_non_null(line);
  for (int extra = 0; extra <= 1; extra++) {
    memcpy(line, head, hl);
    n = hl;
    for (int i = 0; i < CHAT_MAX_BODY + extra; i++) {
      line[n++] = '\\';
      line[n++] = 'n';
    }
    memcpy(line + n, "\"}", 2);
    n += 2;
    assert_int_equal(chat_fast_request(line, n, &req), extra ? 0 : 1);
    if (!extra)
      assert_int_equal(req.body.len, CHAT_MAX_BODY);
    check_request(line, n);
  }
  free(line);
}

static void test_summary(void **state) {
  print_message("fastpath: %ld lines, %ld scanned, %ld requests taken\n",
                g_lines, g_scanned, g_requests);
  assert_true(g_scanned > 0 && g_requests > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_corpora),
    cmocka_unit_test(test_variants),
    cmocka_unit_test(test_takes_and_declines),
    cmocka_unit_test(test_body_limit),
    cmocka_unit_test(test_summary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
