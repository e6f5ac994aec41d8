/* test_abuse_limits.c -- every size limit of PROTOCOL.md at and one past the
 * edge, and bad bytes (invalid UTF-8, escaped and raw NULs) in every string
 * field of every request type: the contract's error, the connection kept
 * (below the protocol-error limit), never a crash. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int up(void **state) {
  const char *const extra[] = {"--max-frame", "1024", "--rate-limit", "0",
                               NULL};
  return th_fixture_server_up_with(state, extra);
}

static char *rep(char ch, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, ch, n);
  s[n] = '\0';
  return s;
}

static void send_line(th_client_t *c, const char *line, size_t len) {
  assert_int_equal(th_client_send_raw(c, line, len), 0);
  assert_int_equal(th_client_send_raw(c, "\n", 1), 0);
}

/* The connection still answers (a ping gets its pong). */
static void assert_alive(th_client_t *c) {
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
}

/* The reply to a request with a bad field: an error with code that names
 * field in its message. */
static void expect_bad(th_client_t *c, const char *code, const char *field) {
  json_t *e = th_client_expect_error(c, code, TH_DEADLINE_MS);
  if (field != NULL && strstr(th_str(e, "message"), field) == NULL)
    fail_msg("error %s does not name %s: %s", code, field,
             th_str(e, "message"));
  json_decref(e);
}

static void test_user_name_32_ok_33_bad(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  char *n32 = rep('u', 32), *n33 = rep('u', 33);
  json_decref(th_client_call_ok(c, "{s:s,s:s,s:s}", "type", "register", "user",
                                n32, "password", TH_FIXTURE_PW));
  json_t *r = th_client_call(c, "{s:s,s:s,s:s}", "type", "register", "user",
                             n33, "password", TH_FIXTURE_PW);
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "user"));
  json_decref(r);
  /* a login with a name that breaks the rules is just a failed login */
  th_client_call_error(c, "auth_failed", "{s:s,s:s,s:s}", "type", "login",
                       "user", n33, "password", TH_FIXTURE_PW);
  th_client_login(c, n32, TH_FIXTURE_PW, 0);
  /* group names follow the same rule */
  json_decref(th_client_call_ok(c, "{s:s,s:s}", "type", "group_create",
                                "group", n32));
  th_client_call_error(c, "bad_request", "{s:s,s:s}", "type", "group_create",
                       "group", n33);
  /* and names with capitals or a leading '_' are not names */
  th_client_call_error(c, "bad_request", "{s:s,s:s}", "type", "contact_add",
                       "user", "Bob");
  th_client_call_error(c, "bad_request", "{s:s,s:s}", "type", "contact_add",
                       "user", "_bob");
  assert_alive(c);
  free(n32);
  free(n33);
  th_client_close(c);
}

static void test_password_8_256_ok_7_257_bad(void **state) {
  th_client_t *c = th_client_connect(th_server_port(*state));
  char *p7 = rep('p', 7), *p8 = rep('p', 8), *p256 = rep('p', 256),
       *p257 = rep('p', 257);
  json_decref(th_client_call_ok(c, "{s:s,s:s,s:s}", "type", "register",
                                "user", "eight", "password", p8));
  json_decref(th_client_call_ok(c, "{s:s,s:s,s:s}", "type", "register",
                                "user", "long", "password", p256));
  json_t *r = th_client_call(c, "{s:s,s:s,s:s}", "type", "register", "user",
                             "seven", "password", p7);
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "password"));
  json_decref(r);
  th_client_call_error(c, "bad_request", "{s:s,s:s,s:s}", "type", "register",
                       "user", "toolong", "password", p257);
  th_client_call_error(c, "auth_failed", "{s:s,s:s,s:s}", "type", "login",
                       "user", "eight", "password", p7);
  th_client_login(c, "long", p256, 0);
  th_client_t *d = th_client_connect(th_server_port(*state));
  th_client_login(d, "eight", p8, 0);
  free(p7);
  free(p8);
  free(p256);
  free(p257);
  th_client_close(c);
  th_client_close(d);
}

static void test_msg_id_body_and_id_edges(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  char *id64 = rep('i', 64), *id65 = rep('i', 65);
  /* the body edges need frames above 1024 bytes: a server of its own */
  json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                             "bob", "msg_id", id64, "body", "x");
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "status"), "relayed");
  json_decref(r);
  json_decref(th_client_expect(b, "deliver", TH_DEADLINE_MS));
  r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob",
                     "msg_id", id65, "body", "x");
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "msg_id"));
  json_decref(r);
  th_client_call_error(a, "bad_request", "{s:s,s:s,s:s,s:s}", "type", "send",
                       "to", "bob", "msg_id", "bad id", "body", "x");
  r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob",
                     "msg_id", "e", "body", "");
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "body"));
  json_decref(r);

  /* id: a string of 64 bytes is echoed, 65 is refused without echo */
  th_client_send(a, "{s:s,s:s}", "type", "ping", "id", id64);
  json_t *p = th_client_expect(a, "pong", TH_DEADLINE_MS);
  assert_string_equal(th_str(p, "id"), id64);
  json_decref(p);
  th_client_send(a, "{s:s,s:s}", "type", "ping", "id", id65);
  json_t *e = th_client_expect_error(a, "bad_request", TH_DEADLINE_MS);
  assert_null(json_object_get(e, "id"));
  assert_non_null(strstr(th_str(e, "message"), "id"));
  json_decref(e);
  /* integers: 0 .. 2^53-1 */
  const char *ok_line = "{\"type\":\"ping\",\"id\":9007199254740991}";
  send_line(a, ok_line, strlen(ok_line));
  p = th_client_expect(a, "pong", TH_DEADLINE_MS);
  assert_true(json_integer_value(json_object_get(p, "id")) ==
              9007199254740991LL);
  json_decref(p);
  const char *bad_ids[] = {"9007199254740992", "-1", "1.5", "true", "null",
                           "[1]"};
  for (size_t i = 0; i < sizeof(bad_ids) / sizeof(*bad_ids); i++) {
    char line[96];
    int n = snprintf(line, sizeof(line), "{\"type\":\"ping\",\"id\":%s}",
                     bad_ids[i]);
    send_line(a, line, (size_t)n);
    e = th_client_expect_error(a, "bad_request", TH_DEADLINE_MS);
    assert_null(json_object_get(e, "id"));
    json_decref(e);
    if (i == 3) { /* 9 protocol errors so far on this one: start afresh */
      th_client_close(a);
      a = th_client_connect(port);
      th_client_login(a, "alice", TH_FIXTURE_PW, 0);
    }
  }
  assert_alive(a);
  free(id64);
  free(id65);
  th_client_close(a);
  th_client_close(b);
}

/* --max-frame 1024 on this server: a frame of exactly 1024 bytes (CR not
 * counted) is served, 1025 is frame_too_large and the connection closes. */
static void test_max_frame_exact_and_one_more(void **state) {
  int port = th_server_port(*state);
  const char *head = "{\"type\":\"ping\",\"id\":\"";
  const char *tail = "\"}";
  for (int extra = 0; extra <= 1; extra++) {
    th_client_t *c = th_client_connect(port);
    char line[1100];
    size_t fixed = strlen(head) + strlen(tail);
    size_t total = 1024 + (size_t)extra;
    /* pad with spaces after the object: still one frame of total bytes */
    int n = snprintf(line, sizeof(line), "%s%s%s", head, "x", tail);
    memset(line + n, ' ', total - (size_t)n);
    line[total] = '\r';
    assert_true(fixed + 1 <= total);
    send_line(c, line, total + 1);
    if (extra == 0) {
      json_t *p = th_client_expect(c, "pong", TH_DEADLINE_MS);
      assert_string_equal(th_str(p, "id"), "x");
      json_decref(p);
      assert_alive(c);
    } else {
      json_t *e = th_client_expect_error(c, "frame_too_large", TH_DEADLINE_MS);
      json_decref(e);
      assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
    }
    th_client_close(c);
  }
}

/* A body of 16384 bytes is taken, 16385 is bad_request; on a server whose
 * max_frame leaves room for both. */
static void test_body_16384_ok_16385_bad(void **state) {
  const char *extra[] = {"--rate-limit", "0", NULL};
  th_server_t *srv = th_server_start(extra);
  int port = th_server_port(srv);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  char *max = rep('b', 16384), *over = rep('b', 16385);
  json_t *r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to",
                             "bob", "msg_id", "max", "body", max);
  th_assert_type(r, "ok", NULL);
  json_decref(r);
  json_t *d = th_client_expect(b, "deliver", TH_DEADLINE_MS);
  assert_int_equal(strlen(th_str(d, "body")), 16384);
  json_decref(d);
  r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "send", "to", "bob",
                     "msg_id", "over", "body", over);
  th_assert_type(r, "error", "bad_request");
  assert_non_null(strstr(th_str(r, "message"), "body"));
  json_decref(r);
  /* a multi-byte body counts bytes: 5462 x 3 bytes = 16386 > 16384 */
  size_t n = 5462 * 3;
  char *wide = malloc(n + 1);
  assert_non_null(wide);
  for (size_t i = 0; i < n; i += 3)
    memcpy(wide + i, "\xe2\x82\xac", 3); /* U+20AC */
  wide[n] = '\0';
  json_decref(th_client_call_ok(a, "{s:s,s:s}", "type", "group_create",
                                "group", "g"));
  th_client_call_error(a, "bad_request", "{s:s,s:s,s:s,s:s}", "type",
                       "group_send", "group", "g", "msg_id", "wide", "body",
                       wide);
  r = th_client_call(a, "{s:s,s:s,s:s,s:s}", "type", "group_send", "group",
                     "g", "msg_id", "max", "body", max);
  th_assert_type(r, "ok", NULL);
  json_decref(r);
  assert_alive(a);
  free(max);
  free(over);
  free(wide);
  th_client_close(a);
  th_client_close(b);
  assert_int_equal(th_server_stop(srv, SIGTERM), 0);
  th_server_free(srv);
}

/* Every string field of every request type (and type and id themselves),
 * with a raw NUL byte and invalid UTF-8: bad_json (the frame layer refuses
 * such text, PROTOCOL.md section 1), no id echoed; with an escaped U+0000,
 * legal JSON, the error of the field (nul_outcome); either way the
 * connection kept. No login is needed: the frame check runs first. */
static const struct {
  const char *type;
  const char *fields[4];
} reqs[] = {
    {"register", {"user", "password"}},
    {"login", {"user", "password", "p2p_host", "status"}},
    {"status", {"status"}},
    {"contact_add", {"user"}},
    {"contact_accept", {"user"}},
    {"contact_decline", {"user"}},
    {"contact_remove", {"user"}},
    {"send", {"to", "msg_id", "body"}},
    {"ack", {"msg_id", "from"}},
    {"connect", {"to"}},
    {"group_create", {"group"}},
    {"group_add", {"group", "user"}},
    {"group_leave", {"group"}},
    {"group_members", {"group"}},
    {"group_send", {"group", "msg_id", "body"}},
    {"ping", {"type", "id"}},
    {"logout", {"type"}},
    {"contacts", {"type"}},
    {"groups", {"type"}},
};

static const struct {
  const char *bytes;
  size_t len;
} bad_values[] = {
    {"ab\\u0000cd", 10},  /* escaped U+0000 */
    {"ab\0cd", 5},        /* a raw NUL byte */
    {"ab\xff\xfe" "cd", 6}, /* not UTF-8 */
    {"ab\xc3", 3},        /* a cut sequence */
    {"\xed\xa0\x80", 3},  /* an encoded surrogate */
    {"ab\\ud800cd", 10},  /* a lone surrogate escape */
};

/* An escaped U+0000 is legal JSON, so it is not bad_json: validation
 * refuses it by field (PROTOCOL.md section 2), login takes it as a failed
 * login, a type holding it is unknown, and an id may hold anything. */
static const char *nul_outcome(const char *type, const char *field) {
  if (strcmp(field, "type") == 0)
    return "unknown_type";
  if (strcmp(field, "id") == 0)
    return "pong";
  if (strcmp(type, "login") == 0 &&
      (strcmp(field, "user") == 0 || strcmp(field, "password") == 0))
    return "auth_failed";
  return "bad_request";
}

static size_t build(char *out, size_t cap, const char *type,
                    const char *bad_field, size_t v) {
  /* every field of the request gets a plausible value, one gets the bad one */
  size_t n = 0;
  out[n++] = '{';
  const char *keys[] = {"type", "id", "user", "password", "p2p_host",
                        "status", "to", "msg_id", "body", "from", "group"};
  for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
    const char *key = keys[k];
    if (n > 1)
      out[n++] = ',';
    n += (size_t)snprintf(out + n, cap - n, "\"%s\":\"", key);
    if (strcmp(key, bad_field) == 0) {
      memcpy(out + n, bad_values[v].bytes, bad_values[v].len);
      n += bad_values[v].len;
    } else if (strcmp(key, "type") == 0) {
      n += (size_t)snprintf(out + n, cap - n, "%s", type);
    } else if (strcmp(key, "status") == 0) {
      n += (size_t)snprintf(out + n, cap - n, "online");
    } else if (strcmp(key, "password") == 0) {
      n += (size_t)snprintf(out + n, cap - n, TH_FIXTURE_PW);
    } else {
      n += (size_t)snprintf(out + n, cap - n, "x1");
    }
    out[n++] = '"';
  }
  out[n++] = '}';
  return n;
}

static void test_bad_bytes_in_every_string_field(void **state) {
  int port = th_server_port(*state);
  int cases = 0;
  for (size_t t = 0; t < sizeof(reqs) / sizeof(*reqs); t++) {
    for (size_t f = 0; f < 4 && reqs[t].fields[f]; f++) {
      th_client_t *c = th_client_connect(port);
      for (size_t v = 0; v < sizeof(bad_values) / sizeof(*bad_values); v++) {
        char line[512];
        size_t n = build(line, sizeof(line), reqs[t].type, reqs[t].fields[f],
                         v);
        send_line(c, line, n);
        json_t *e = th_client_recv(c, TH_DEADLINE_MS);
        if (e == NULL)
          fail_msg("%s.%s value %zu: no reply", reqs[t].type,
                   reqs[t].fields[f], v);
        const char *want = v == 0 ? nul_outcome(reqs[t].type,
                                                reqs[t].fields[f])
                                  : "bad_json";
        const char *got = strcmp(th_str(e, "type"), "error") == 0
                              ? th_str(e, "code")
                              : th_str(e, "type");
        if (strcmp(got, want) != 0)
          fail_msg("%s.%s value %zu: %s %s, want %s", reqs[t].type,
                   reqs[t].fields[f], v, th_str(e, "type"), th_str(e, "code"),
                   want);
        if (strcmp(want, "bad_request") == 0 &&
            strstr(th_str(e, "message"), reqs[t].fields[f]) == NULL)
          fail_msg("%s.%s: '%s' does not name the field", reqs[t].type,
                   reqs[t].fields[f], th_str(e, "message"));
        if (v != 0)
          assert_null(json_object_get(e, "id"));
        json_decref(e);
        cases++;
      }
      assert_alive(c); /* 6 protocol errors: below the limit of 10 */
      th_client_close(c);
    }
  }
  assert_true(cases >= 6 * 27);
  /* and the server serves a real user afterwards */
  th_client_t *u = th_client_user(port, "after", TH_FIXTURE_PW);
  assert_alive(u);
  th_client_close(u);
}

/* Wrong JSON types for every field of send: bad_request naming the field. */
static void test_wrong_types_named(void **state) {
  int port = th_server_port(*state);
  th_client_t *a = th_client_user(port, "alice", TH_FIXTURE_PW);
  th_client_t *b = th_client_user(port, "bob", TH_FIXTURE_PW);
  const char *lines[][2] = {
      {"{\"type\":\"send\",\"to\":1,\"msg_id\":\"a\",\"body\":\"b\"}", "to"},
      {"{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":[],\"body\":\"b\"}",
       "msg_id"},
      {"{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"a\",\"body\":{}}",
       "body"},
      {"{\"type\":\"send\",\"to\":\"bob\",\"msg_id\":\"a\"}", "body"},
      {"{\"type\":7}", "type"},
      {"{\"type\":\"status\",\"status\":\"offline\"}", "status"},
      {"{\"type\":\"ack\",\"msg_id\":\"a\",\"from\":null}", "from"},
  };
  for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
    send_line(a, lines[i][0], strlen(lines[i][0]));
    expect_bad(a, "bad_request", lines[i][1]);
  }
  assert_alive(a);
  th_client_close(a);
  th_client_close(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_user_name_32_ok_33_bad, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_password_8_256_ok_7_257_bad, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_msg_id_body_and_id_edges, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_max_frame_exact_and_one_more, up,
                                      th_fixture_server_down),
      cmocka_unit_test(test_body_16384_ok_16385_bad),
      cmocka_unit_test_setup_teardown(test_bad_bytes_in_every_string_field, up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_wrong_types_named, up,
                                      th_fixture_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
