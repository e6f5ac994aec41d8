/* test_match.c -- matching events against expectations, the in-order
 * consumption of a participant's events, and variables. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scenario.h"

static json_t *obj(const char *text) {
  json_t *o = json_loads(text, 0, NULL);
  assert_non_null(o);
  return o;
}

static void test_value_types(void **state) {
  json_t *o = obj("{\"s\":\"hello there\",\"i\":42,\"neg\":-7,\"r\":1.5,"
                  "\"t\":true,\"f\":false,\"n\":null,\"e\":\"\","
                  "\"a\":[{\"user\":\"bob\",\"status\":\"online\"}],"
                  "\"num_str\":\"42\"}");
  assert_true(chat_scenario_value_matches(json_object_get(o, "s"),
                                          "hello there"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "s"), "hello"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "i"), "42"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "i"), "42.0"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "i"), "43"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "i"), "42x"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "neg"), "-7"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "r"), "1.5"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "r"), "1"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "t"), "true"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "t"), "1"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "f"), "false"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "n"), "null"));
  assert_true(chat_scenario_value_matches(json_object_get(o, "e"), ""));
  /* A string is compared as a string: "42" is not the number 42. */
  assert_true(chat_scenario_value_matches(json_object_get(o, "num_str"), "42"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "i"), "\"42\""));
  /* Arrays and objects compare as JSON, key order aside. */
  assert_true(chat_scenario_value_matches(
      json_object_get(o, "a"), "[{\"status\":\"online\",\"user\":\"bob\"}]"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "a"), "[]"));
  assert_false(chat_scenario_value_matches(json_object_get(o, "a"), "[oops"));
  assert_false(chat_scenario_value_matches(NULL, "x"));
  json_decref(o);
}

static void test_event_and_conditions(void **state) {
  json_t *o = obj("{\"event\":\"message\",\"from\":\"alice\",\"body\":"
                  "\"still there?\",\"via\":\"relay\",\"offline\":true}");
  chat_scenario_cond_t c[] = {
      {"from", CHAT_SCENARIO_OP_EQ, "alice"},
      {"offline", CHAT_SCENARIO_OP_EQ, "true"},
      {"via", CHAT_SCENARIO_OP_NE, "direct"},
      {"body", CHAT_SCENARIO_OP_CONTAINS, "there"},
      {"msg", CHAT_SCENARIO_OP_NE, "x"}, /* absent counts as different */
  };
  assert_true(chat_scenario_event_matches(o, "message", c, 5));
  assert_true(chat_scenario_event_matches(o, "*", c, 5));
  assert_true(chat_scenario_event_matches(o, "message", NULL, 0));
  assert_false(chat_scenario_event_matches(o, "sent", NULL, 0));
  chat_scenario_cond_t wrong[] = {{"offline", CHAT_SCENARIO_OP_EQ, "false"}};
  assert_false(chat_scenario_event_matches(o, "message", wrong, 1));
  chat_scenario_cond_t missing[] = {{"group", CHAT_SCENARIO_OP_EQ, "dev"}};
  assert_false(chat_scenario_event_matches(o, "message", missing, 1));
  chat_scenario_cond_t has[] = {{"from", CHAT_SCENARIO_OP_CAPTURE, "v"}};
  assert_true(chat_scenario_event_matches(o, "message", has, 1));
  chat_scenario_cond_t hasnt[] = {{"group", CHAT_SCENARIO_OP_CAPTURE, "v"}};
  assert_false(chat_scenario_event_matches(o, "message", hasnt, 1));
  chat_scenario_cond_t notstr[] = {{"offline", CHAT_SCENARIO_OP_CONTAINS, "t"}};
  assert_false(chat_scenario_event_matches(o, "message", notstr, 1));
  assert_false(chat_scenario_event_matches(NULL, "message", NULL, 0));
  json_t *arr = json_array();
  assert_false(chat_scenario_event_matches(arr, "*", NULL, 0));
  json_decref(arr);
  json_decref(o);
}

static void test_explain(void **state) {
  json_t *o = obj("{\"event\":\"message\",\"from\":\"alice\",\"body\":\"hi\"}");
  chat_scenario_cond_t c[] = {{"from", CHAT_SCENARIO_OP_EQ, "alice"},
                              {"body", CHAT_SCENARIO_OP_EQ, "ho"}};
  char buf[256];
  chat_scenario_explain(o, "message", c, 2, buf, sizeof(buf));
  assert_string_equal(buf, "body is \"hi\" (wanted body=ho)");
  chat_scenario_cond_t m[] = {{"via", CHAT_SCENARIO_OP_EQ, "relay"}};
  chat_scenario_explain(o, "message", m, 1, buf, sizeof(buf));
  assert_string_equal(buf, "no field via (wanted via=relay)");
  chat_scenario_explain(o, "sent", m, 1, buf, sizeof(buf));
  assert_string_equal(buf, "another event");
  chat_scenario_explain(o, "message", c, 1, buf, sizeof(buf));
  assert_string_equal(buf, "");
  chat_scenario_cond_t spaced[] = {{"body", CHAT_SCENARIO_OP_EQ, "a b"}};
  chat_scenario_explain(o, "message", spaced, 1, buf, sizeof(buf));
  assert_string_equal(buf, "body is \"hi\" (wanted body=\"a b\")");
  chat_scenario_explain(NULL, "message", c, 1, buf, sizeof(buf));
  assert_string_equal(buf, "not a JSON object");
  json_decref(o);
}

static void test_value_text(void **state) {
  json_t *o = obj("{\"s\":\"ab\",\"i\":5,\"a\":[1,2]}");
  char *t = chat_scenario_value_text(json_object_get(o, "s"));
  assert_string_equal(t, "ab");
  free(t);
  t = chat_scenario_value_text(json_object_get(o, "i"));
  assert_string_equal(t, "5");
  free(t);
  t = chat_scenario_value_text(json_object_get(o, "a"));
  assert_string_equal(t, "[1,2]");
  free(t);
  assert_null(chat_scenario_value_text(NULL));
  json_decref(o);
}

static void push(chat_scenario_queue_t *q, const char *line) {
  assert_int_equal(chat_scenario_queue_push(q, line, strlen(line), 0, 1), 0);
}

/* The documented semantics: an expectation takes the first unconsumed event
 * that matches; events it skipped stay for later expectations; a consumed
 * event never matches again. */
static void test_queue_order(void **state) {
  chat_scenario_queue_t q;
  chat_scenario_queue_init(&q);
  push(&q, "{\"event\":\"presence\",\"user\":\"bob\",\"status\":\"online\"}");
  push(&q, "{\"event\":\"message\",\"from\":\"bob\",\"body\":\"one\"}");
  push(&q, "not json at all");
  push(&q, "{\"event\":\"message\",\"from\":\"bob\",\"body\":\"two\"}");
  push(&q, "[1,2]");
  assert_null(q.items[2].obj);
  assert_null(q.items[4].obj);

  chat_scenario_cond_t from_bob[] = {{"from", CHAT_SCENARIO_OP_EQ, "bob"}};
  chat_scenario_cond_t two[] = {{"body", CHAT_SCENARIO_OP_EQ, "two"}};
  /* Out of order: "two" first, skipping presence and "one". */
  ssize_t i = chat_scenario_queue_find(&q, "message", two, 1);
  assert_int_equal(i, 3);
  q.items[i].consumed = 1;
  /* The skipped ones are still there, first one first. */
  i = chat_scenario_queue_find(&q, "message", from_bob, 1);
  assert_int_equal(i, 1);
  q.items[i].consumed = 1;
  assert_int_equal(chat_scenario_queue_find(&q, "message", from_bob, 1), -1);
  i = chat_scenario_queue_find(&q, "*", NULL, 0);
  assert_int_equal(i, 0);
  q.items[i].consumed = 1;
  assert_int_equal(chat_scenario_queue_find(&q, "*", NULL, 0), -1);
  /* Text search (for stderr lines) sees non-JSON lines too. */
  assert_int_equal(chat_scenario_queue_find_text(&q, "json at"), 2);
  assert_int_equal(chat_scenario_queue_find_text(&q, "nowhere"), -1);
  chat_scenario_queue_clear(&q);
  assert_int_equal(q.n, 0);
  assert_int_equal(chat_scenario_queue_find(&q, "*", NULL, 0), -1);
}

static void test_queue_rejects_duplicate_keys_and_bounds(void **state) {
  chat_scenario_queue_t q;
  chat_scenario_queue_init(&q);
  push(&q, "{\"event\":\"a\",\"event\":\"b\"}");
  assert_null(q.items[0].obj);
  /* Only the given length is read, not the rest of the buffer. */
  const char *two = "{\"event\":\"x\"}{\"event\":\"y\"}";
  assert_int_equal(chat_scenario_queue_push(&q, two, 13, 7, 1), 0);
  assert_non_null(q.items[1].obj);
  assert_int_equal(q.items[1].ms, 7);
  assert_string_equal(q.items[1].line, "{\"event\":\"x\"}");
  for (size_t i = q.n; i < CHAT_SCENARIO_QUEUE_MAX; i++)
    assert_int_equal(chat_scenario_queue_push(&q, "x", 1, 0, 0), 0);
  assert_int_equal(chat_scenario_queue_push(&q, "x", 1, 0, 0), -ENOSPC);
  assert_int_equal(q.dropped, 1);
  chat_scenario_queue_clear(&q);
}

static void test_vars(void **state) {
  chat_scenario_vars_t v;
  chat_scenario_vars_init(&v);
  assert_int_equal(chat_scenario_vars_set(&v, "server", "127.0.0.1:4000"), 0);
  assert_int_equal(chat_scenario_vars_set(&v, "m1", "abc"), 0);
  assert_int_equal(chat_scenario_vars_set(&v, "m1", "def"), 0);
  assert_string_equal(chat_scenario_vars_get(&v, "m1"), "def");
  assert_null(chat_scenario_vars_get(&v, "m"));
  char *out, bad[16];
  assert_int_equal(chat_scenario_vars_expand(
                       &v, "at $server, ${m1}x $$5 $5 a$ $m1.", &out, bad,
                       sizeof(bad)), 0);
  assert_string_equal(out, "at 127.0.0.1:4000, defx $5 $5 a$ def.");
  free(out);
  assert_int_equal(chat_scenario_vars_expand(&v, "", &out, NULL, 0), 0);
  assert_string_equal(out, "");
  free(out);
  assert_int_equal(chat_scenario_vars_expand(&v, "x $nope y", &out, bad,
                                             sizeof(bad)), -ENOENT);
  assert_string_equal(bad, "nope");
  assert_int_equal(chat_scenario_vars_expand(&v, "${m1", &out, NULL, 0),
                   -EINVAL);
  assert_int_equal(chat_scenario_vars_expand(&v, "${}", &out, NULL, 0),
                   -EINVAL);
  chat_scenario_vars_free(&v);
}

typedef struct lines {
  char got[8][64];
  int cut[8];
  int n;
} lines_t;

static int collect(void *ctx, const char *line, size_t len, int cut) {
  lines_t *l = ctx;
  assert_true(l->n < 8);
  assert_int_equal(strlen(line), len);
  snprintf(l->got[l->n], sizeof(l->got[0]), "%s", line);
  l->cut[l->n++] = cut;
  return 0;
}

static void test_linebuf(void **state) {
  chat_scenario_linebuf_t lb;
  lines_t l;
  memset(&l, 0, sizeof(l));
  chat_scenario_linebuf_init(&lb, 8);
  /* Lines split across reads, CRLF, empty lines, a too-long line. */
  assert_int_equal(chat_scenario_linebuf_feed(&lb, "ab", 2, collect, &l), 0);
  assert_int_equal(l.n, 0);
  assert_int_equal(chat_scenario_linebuf_feed(&lb, "c\r\n\nxy", 6, collect, &l),
                   0);
  assert_int_equal(chat_scenario_linebuf_feed(&lb, "z\n0123456789abc\nok", 18,
                                              collect, &l), 0);
  assert_int_equal(chat_scenario_linebuf_feed(&lb, "\n01234567", 9, collect,
                                              &l), 0);
  assert_int_equal(chat_scenario_linebuf_feed(&lb, "8\ntail", 6, collect, &l),
                   0);
  assert_int_equal(chat_scenario_linebuf_finish(&lb, collect, &l), 0);
  assert_int_equal(l.n, 7);
  assert_string_equal(l.got[0], "abc");
  assert_string_equal(l.got[1], "");
  assert_string_equal(l.got[2], "xyz");
  assert_string_equal(l.got[3], "01234567");
  assert_int_equal(l.cut[3], 1);
  assert_string_equal(l.got[4], "ok");
  assert_int_equal(l.cut[4], 0);
  assert_string_equal(l.got[5], "01234567");
  assert_int_equal(l.cut[5], 1);
  assert_string_equal(l.got[6], "tail");
  assert_true(lb.cap <= 9);
  chat_scenario_linebuf_free(&lb);
}

static void test_transcript(void **state) {
  chat_scenario_transcript_t t;
  chat_scenario_transcript_init(&t, 20);
  assert_int_equal(chat_scenario_transcript_add(&t, 5, "alice",
                                                CHAT_SCENARIO_T_STDIN,
                                                "/msg bob hi\n"), 0);
  assert_int_equal(chat_scenario_transcript_add(&t, 1234, "bob",
                                                CHAT_SCENARIO_T_STDOUT,
                                                "{}"), 0);
  assert_int_equal(chat_scenario_transcript_add(&t, 1300, "bob",
                                                CHAT_SCENARIO_T_STDERR,
                                                "a line that is too long"),
                   -ENOSPC);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  chat_scenario_transcript_print(&t, f);
  fclose(f);
  assert_string_equal(buf, "[      5 ms] alice    <  /msg bob hi\n"
                           "[   1234 ms] bob      >  {}\n"
                           "(1 later lines not kept: transcript over 20 "
                           "bytes)\n");
  free(buf);
  chat_scenario_transcript_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_value_types),
      cmocka_unit_test(test_event_and_conditions),
      cmocka_unit_test(test_explain),
      cmocka_unit_test(test_value_text),
      cmocka_unit_test(test_queue_order),
      cmocka_unit_test(test_queue_rejects_duplicate_keys_and_bounds),
      cmocka_unit_test(test_vars),
      cmocka_unit_test(test_linebuf),
      cmocka_unit_test(test_transcript),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
