/* test_build.c -- replies and events on the wire exactly as PROTOCOL.md shows
 * them, encode/dump, round trips through parse and decode, and the codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "chaos.h"

/* Encodes (and frees) obj, checks the line against want + LF. */
static void assert_line(json_t *obj, const char *want) {
  char *s;
  size_t len;

  assert_non_null(obj);
  assert_int_equal(chat_frame_encode(obj, &s, &len), 0);
  assert_int_equal(len, strlen(want) + 1);
  assert_int_equal(s[len - 1], '\n');
  assert_int_equal(s[len], '\0');
  s[len - 1] = '\0';
  assert_string_equal(s, want);
  free(s);
  json_decref(obj);
}

static void test_replies(void **state) {
  json_t *id = json_integer(7), *sid = json_string("r-1");
  chat_error_t err = {0};

  assert_line(chat_reply_ok(id), "{\"type\":\"ok\",\"id\":7}");
  assert_line(chat_reply_ok(sid), "{\"type\":\"ok\",\"id\":\"r-1\"}");
  assert_line(chat_reply_ok(NULL), "{\"type\":\"ok\"}");
  assert_line(chat_reply_error(id, CHAT_E_NOT_CONTACT, "bob is no contact"),
              "{\"type\":\"error\",\"id\":7,\"code\":\"not_contact\","
              "\"message\":\"bob is no contact\"}");
  assert_line(chat_reply_error(NULL, -CHAT_E_BAD_JSON, "x"),
              "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"x\"}");
  /* No wire name for an errno: the wire says internal. */
  assert_line(chat_reply_error(NULL, -ENOMEM, "m"),
              "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"m\"}");
  {
    json_t *e = chat_reply_error(NULL, CHAT_E_OFFLINE, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        chat_strerror(CHAT_E_OFFLINE));
    json_decref(e);
  }
  chat_error_set(&err, CHAT_E_BAD_REQUEST, "to", "field '%s' must be %s",
                 "to", "a user name");
  chat_error_set(&err, CHAT_E_INTERNAL, "x", "second loses");
  assert_line(chat_reply_from_error(sid, &err),
              "{\"type\":\"error\",\"id\":\"r-1\",\"code\":\"bad_request\","
              "\"message\":\"field 'to' must be a user name\"}");
  /* The id is copied: changing the original leaves the reply alone. */
  {
    json_t *r = chat_reply_ok(sid);
    json_string_set(sid, "changed");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "r-1");
    json_decref(r);
  }
  json_decref(id);
  json_decref(sid);
}

static void test_events(void **state) {
  static const char body[] = "hi \xe2\x9c\x93 \"q\"\n";

  assert_line(chat_ev_welcome("chat-server/0.1.0", 30, 65536),
              "{\"type\":\"welcome\",\"proto\":1,\"server\":\"chat-server/0.1.0\","
              "\"heartbeat\":30,\"max_frame\":65536}");
  assert_line(chat_ev_presence("bob", CHAT_STATUS_OFFLINE),
              "{\"type\":\"presence\",\"user\":\"bob\",\"status\":\"offline\"}");
  assert_line(chat_ev_contact_request("carol"),
              "{\"type\":\"contact_request\",\"from\":\"carol\"}");
  assert_line(chat_ev_contact_added("bob", CHAT_STATUS_AWAY),
              "{\"type\":\"contact_added\",\"user\":\"bob\",\"status\":\"away\"}");
  assert_line(chat_ev_contact_removed("bob"),
              "{\"type\":\"contact_removed\",\"user\":\"bob\"}");
  assert_line(chat_ev_kicked("logged_in_elsewhere"),
              "{\"type\":\"kicked\",\"reason\":\"logged_in_elsewhere\"}");
  assert_line(chat_ev_deliver("alice", NULL, "m1", body, strlen(body),
                              1700000000123LL, 0),
              "{\"type\":\"deliver\",\"from\":\"alice\",\"msg_id\":\"m1\","
              "\"body\":\"hi \xe2\x9c\x93 \\\"q\\\"\\n\",\"ts\":1700000000123,"
              "\"offline\":false}");
  assert_line(chat_ev_deliver("alice", "team", "m2", "abc", 2, 5, 1),
              "{\"type\":\"deliver\",\"group\":\"team\",\"from\":\"alice\","
              "\"msg_id\":\"m2\",\"body\":\"ab\",\"ts\":5,\"offline\":true}");
  assert_line(chat_ev_receipt("m1", "bob", "delivered"),
              "{\"type\":\"receipt\",\"msg_id\":\"m1\",\"to\":\"bob\","
              "\"state\":\"delivered\"}");
  assert_line(chat_ev_expect("alice", "0123456789abcdef0123456789abcdef"),
              "{\"type\":\"expect\",\"from\":\"alice\","
              "\"ticket\":\"0123456789abcdef0123456789abcdef\"}");
  assert_line(chat_ev_group_added("team", "alice"),
              "{\"type\":\"group_added\",\"group\":\"team\",\"by\":\"alice\"}");
  assert_line(chat_msg_new(CHAT_T_PONG), "{\"type\":\"pong\"}");
}

static void test_bad_arguments(void **state) {
  assert_null(chat_msg_new(CHAT_T_NONE));
  assert_null(chat_msg_new(CHAT_T__COUNT));
  assert_null(chat_ev_presence(NULL, CHAT_STATUS_ONLINE));
  assert_null(chat_ev_presence("bob", CHAT_STATUS_NONE));
  assert_null(chat_ev_deliver("a", NULL, "m", NULL, 0, 1, 0));
  assert_null(chat_ev_deliver("a", NULL, "m", "\xff", 1, 1, 0)); /* not UTF-8 */
  assert_null(chat_ev_kicked("\xc0\x80"));
}

/* Every event, encoded and read back as its receiver would, gives back the
 * same fields. */
static void test_round_trips(void **state) {
  json_t *evs[] = {
    chat_ev_welcome("s/1", 15, 4096),
    chat_ev_presence("bob", CHAT_STATUS_BUSY),
    chat_ev_contact_added("bob", CHAT_STATUS_OFFLINE),
    chat_ev_deliver("alice", "g1", "m-9", "x\0y", 1, 42, 1),
    chat_ev_expect("alice", "ffffffffffffffffffffffffffffffff"),
  };
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
    char *s;
    size_t len;
    json_t *back;
    chat_msg_t msg;
    chat_error_t err;

    assert_non_null(evs[i]);
    assert_int_equal(chat_frame_encode(evs[i], &s, &len), 0);
    assert_int_equal(chat_frame_parse(s, len - 1, &back, &err), 0);
    assert_true(json_equal(back, evs[i]));
    assert_int_equal(chat_msg_decode(back, CHAT_ROLE_CLIENT, &msg, &err), 0);
    switch (msg.type) {
    case CHAT_T_WELCOME:
      assert_int_equal(msg.proto, CHAT_PROTO_VERSION);
      assert_int_equal(msg.heartbeat, 15);
      assert_int_equal(msg.max_frame, 4096);
      assert_string_equal(msg.server, "s/1");
      break;
    case CHAT_T_PRESENCE:
      assert_int_equal(msg.status, CHAT_STATUS_BUSY);
      break;
    case CHAT_T_CONTACT_ADDED:
      assert_int_equal(msg.status, CHAT_STATUS_OFFLINE);
      break;
    case CHAT_T_DELIVER:
      assert_string_equal(msg.group, "g1");
      assert_string_equal(msg.body, "x");
      assert_int_equal(msg.body_len, 1);
      assert_int_equal(msg.ts, 42);
      assert_int_equal(msg.offline, 1);
      break;
    case CHAT_T_EXPECT:
      assert_string_equal(msg.from, "alice");
      break;
    default:
      fail();
    }
    free(s);
    json_decref(back);
    json_decref(evs[i]);
  }
}

struct sink {
  char buf[256];
  size_t len;
  int calls, fail_at, rc;
};

static int sink_write(const char *b, size_t n, void *ctx) {
  struct sink *k = ctx;

  if (++k->calls == k->fail_at)
    return k->rc;
  assert_true(k->len + n < sizeof(k->buf));
  memcpy(k->buf + k->len, b, n);
  k->len += n;
  return 0;
}

static void test_encode_and_dump(void **state) {
  json_t *o = json_pack("{s:s, s:[i, {s:n}], s:s}", "type", "x", "a", 1, "b",
                        "u", "\xc3\xa9\t/");
  json_t *arr = json_array();
  struct sink k = {0};
  char *s;
  size_t len;

  assert_int_equal(chat_frame_dump(o, sink_write, &k), 0);
  assert_int_equal(chat_frame_encode(o, &s, &len), 0);
  assert_int_equal(k.len, len);
  assert_memory_equal(k.buf, s, len);
  assert_string_equal(s, "{\"type\":\"x\",\"a\":[1,{\"b\":null}],"
                         "\"u\":\"\xc3\xa9\\t/\"}\n");
  free(s);

  assert_int_equal(chat_frame_encode(arr, &s, &len), -EINVAL);
  assert_null(s);
  assert_int_equal(chat_frame_encode(NULL, &s, &len), -EINVAL);
  assert_int_equal(chat_frame_dump(arr, sink_write, &k), -EINVAL);

  /* A failing callback stops the dump with its own code. */
  memset(&k, 0, sizeof(k));
  k.fail_at = 2;
  k.rc = -EPIPE;
  assert_int_equal(chat_frame_dump(o, sink_write, &k), -EPIPE);
  assert_int_equal(k.calls, 2);
  memset(&k, 0, sizeof(k));
  k.fail_at = 1;
  k.rc = 1;
  assert_int_equal(chat_frame_dump(o, sink_write, &k), -EIO);
  /* ...also when only the final LF fails. */
  memset(&k, 0, sizeof(k));
  assert_int_equal(chat_frame_dump(o, sink_write, &k), 0);
  {
    int last = k.calls;
    memset(&k, 0, sizeof(k));
    k.fail_at = last;
    k.rc = -ENOSPC;
    assert_int_equal(chat_frame_dump(o, sink_write, &k), -ENOSPC);
    assert_int_equal(k.calls, last);
    assert_true(k.len > 0 && k.buf[k.len - 1] == '}');
  }
  /* jansson ignores a failure inside an object key; the dump must not. */
  for (int at = 1; at < 12; at++) {
    memset(&k, 0, sizeof(k));
    k.fail_at = at;
    k.rc = -EPIPE;
    assert_int_equal(chat_frame_dump(o, sink_write, &k), -EPIPE);
    assert_int_equal(k.calls, at);
  }
  json_decref(arr);
  json_decref(o);
}

/* Builders under allocation failure: NULL, never a half-built leak. */
static void test_build_enomem(void **state) {
  int n, done = 0;

  for (n = 0; n < 200 && !done; n++) {
    json_t *o, *id;
    chaos_live = 0;
    chaos_arm(n);
    id = json_integer(3);
    o = id ? chat_reply_error(id, CHAT_E_OFFLINE, "gone") : NULL;
    json_decref(id);
    json_decref(o);
    o = chat_ev_deliver("alice", "g", "m1", "body", 4, 1, 0);
    done = o != NULL;
    json_decref(o);
    chaos_disarm();
    assert_int_equal(chaos_live, 0);
  }
  assert_true(done);
  assert_true(n > 5);
}

static void test_codes(void **state) {
  assert_string_equal(chat_code_name(CHAT_E_BAD_JSON), "bad_json");
  assert_string_equal(chat_code_name(-CHAT_E_BAD_JSON), "bad_json");
  assert_string_equal(chat_code_name(CHAT_E_INTERNAL), "internal");
  assert_string_equal(chat_code_name(CHAT_E_FRAME_TOO_LARGE), "frame_too_large");
  assert_null(chat_code_name(0));
  assert_null(chat_code_name(CHAT_E__END));
  assert_null(chat_code_name(-ENOMEM));
  for (int c = CHAT_E_BAD_JSON; c < CHAT_E__END; c++) {
    assert_int_equal(chat_code_from_name(chat_code_name(c)), c);
    assert_non_null(chat_strerror(c));
    assert_string_equal(chat_strerror(c), chat_strerror(-c));
  }
  assert_int_equal(chat_code_from_name("nope"), 0);
  assert_int_equal(chat_code_from_name(NULL), 0);
  assert_string_equal(chat_strerror(-ENOMEM), strerror(ENOMEM));
  assert_string_equal(chat_strerror(0), "success");
  assert_non_null(chat_strerror(123456));

  assert_true(chat_code_is_protocol_error(CHAT_E_BAD_JSON));
  assert_true(chat_code_is_protocol_error(-CHAT_E_BAD_REQUEST));
  assert_true(chat_code_is_protocol_error(CHAT_E_UNKNOWN_TYPE));
  assert_true(chat_code_is_protocol_error(CHAT_E_NOT_AUTHENTICATED));
  assert_true(chat_code_is_protocol_error(CHAT_E_ALREADY_AUTHENTICATED));
  assert_false(chat_code_is_protocol_error(CHAT_E_AUTH_FAILED));
  assert_false(chat_code_is_protocol_error(CHAT_E_FRAME_TOO_LARGE));
  assert_false(chat_code_is_protocol_error(-ENOMEM));

  {
    chat_error_t err = {0};
    char longf[100];
    memset(longf, 'f', 99);
    longf[99] = '\0';
    assert_int_equal(chat_error_set(NULL, CHAT_E_OFFLINE, "x", "y"),
                     -CHAT_E_OFFLINE);
    assert_int_equal(chat_error_set(&err, -CHAT_E_OFFLINE, longf, NULL),
                     -CHAT_E_OFFLINE);
    assert_int_equal(err.code, CHAT_E_OFFLINE);
    assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
    assert_string_equal(err.message, chat_strerror(CHAT_E_OFFLINE));
  }
}

/* Error texts quote what the peer sent; cut short, they must stay valid
 * UTF-8 or no reply could be built at all (found by fuzz_frames). */
static void test_error_text_cut_on_utf8_boundary(void **state) {
  char line[160];
  json_t *obj = NULL, *reply;
  chat_msg_t msg;
  chat_error_t err;
  size_t cut;

  (void)state;
  for (cut = 60; cut <= 66; cut++) {
    /* "aaa…é" with the two bytes of é straddling every byte near 64. */
    snprintf(line, sizeof(line), "{\"type\":\"%.*s\xc3\xa9\",\"id\":7}",
             (int)cut, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(chat_frame_parse(line, strlen(line), &obj, &err), 0);
    assert_int_equal(chat_msg_decode(obj, CHAT_ROLE_SERVER, &msg, &err),
                     -CHAT_E_UNKNOWN_TYPE);
    reply = chat_reply_from_error(msg.id, &err);
    assert_non_null(reply);
    assert_string_equal(json_string_value(json_object_get(reply, "code")),
                        "unknown_type");
    assert_int_equal(json_integer_value(json_object_get(reply, "id")), 7);
    json_decref(reply);
    json_decref(obj);
  }
  /* A message that is not UTF-8 at all falls back to the code's text. */
  reply = chat_reply_error(NULL, CHAT_E_BAD_REQUEST, "bad \xff byte");
  assert_non_null(reply);
  assert_string_equal(json_string_value(json_object_get(reply, "message")),
                      chat_strerror(CHAT_E_BAD_REQUEST));
  json_decref(reply);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_replies),
    cmocka_unit_test(test_events),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_round_trips),
    cmocka_unit_test(test_encode_and_dump),
    cmocka_unit_test(test_build_enomem),
    cmocka_unit_test(test_codes),
    cmocka_unit_test(test_error_text_cut_on_utf8_boundary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
